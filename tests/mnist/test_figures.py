#!/usr/bin/python3
"""apps/mnist/plots/figures.py: a diverged sweep point (accuracy NaN) is drawn visibly,
a grey cell with dark text and a legend entry, and a sweep where every point diverged
still draws. Run by ctest (tests/mnist/CMakeLists.txt); exits 77 (skipped) when this
python3 has no matplotlib.

    /usr/bin/python3 tests/mnist/test_figures.py apps/mnist/plots
"""
import math
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors
    import numpy as np
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, sys.argv[1])
import figures  # noqa: E402


def row(lr, lam, accuracy):
    return {"learning_rate": str(lr), "lambda": str(lam), "test_accuracy": str(accuracy),
            "activation": "sigmoid", "optimiser": "adam", "epochs": "2"}


def luminance(rgb):
    r, g, b = rgb[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def rendered(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3] / 255.0


def pixel(fig, image, ax, x, y):
    """The colour drawn at data point (x, y) of ax."""
    px, py = ax.transData.transform((x, y))
    return image[int(round(fig.bbox.height - py)), int(round(px))]


failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


# 2 x 2 grid, the point lr 1 / lambda 0 diverged (column 1, row 0).
rows = [row(0.001, 0, 0.95), row(1, 0, math.nan), row(0.001, 1e-4, 0.93), row(1, 1e-4, 0.12)]
fig = figures.draw_sweep(rows, "learning_rate", "lambda", "lr", "lambda", True, False)
ax = fig.axes[0]
image = rendered(fig)
background = np.array(matplotlib.colors.to_rgb(fig.get_facecolor()))
# Off the label (0.35 of a cell below the centre): the cell's own colour.
cell = pixel(fig, image, ax, 1, 0 - 0.35)
check(np.abs(cell - background).max() > 0.15,
      f"the diverged cell is filled (drawn {cell}), not left as the background {background}")
labels = [t for t in ax.texts if t.get_text() == "diverged"]
check(len(labels) == 1, "the diverged cell is labelled 'diverged'")
if labels:
    text = matplotlib.colors.to_rgb(labels[0].get_color())
    check(abs(luminance(text) - luminance(cell)) > 0.4,
          f"its label ({text}) stands out from the cell ({cell})")
legend = ax.get_legend()
check(legend is not None and any("diverged" in t.get_text() for t in legend.get_texts()),
      "the legend names the grey cells as diverged")
trained = [im for im in ax.images][0]
check(trained.norm.vmin == 12.0 and trained.norm.vmax == 95.0,
      f"the colour bar spans the points that trained (12..95, got "
      f"{trained.norm.vmin}..{trained.norm.vmax})")
matplotlib.pyplot.close(fig)

# Every point diverged: still a figure, every cell labelled.
rows = [row(1, 0, math.nan), row(10, 0, math.nan)]
fig = figures.draw_sweep(rows, "learning_rate", "lambda", "lr", "lambda", True, False)
check(sum(t.get_text() == "diverged" for t in fig.axes[0].texts) == 2,
      "a sweep where every point diverged draws, each cell labelled")
matplotlib.pyplot.close(fig)

# No point diverged: no legend (the committed figures are drawn as before).
rows = [row(0.001, 0, 0.95), row(1, 0, 0.5)]
fig = figures.draw_sweep(rows, "learning_rate", "lambda", "lr", "lambda", True, False)
check(fig.axes[0].get_legend() is None, "without a diverged point there is no legend")
matplotlib.pyplot.close(fig)

# A point with no row (a sweep cut short): "not run" on white, not "diverged".
rows = [row(0.001, 0, 0.95), row(1, 0, math.nan), row(0.001, 1e-4, 0.93)]
fig = figures.draw_sweep(rows, "learning_rate", "lambda", "lr", "lambda", True, False)
ax = fig.axes[0]
texts = [t.get_text() for t in ax.texts]
check(texts.count("diverged") == 1 and texts.count("not run") == 1,
      f"one cell diverged and one not run are labelled apart (labels {texts})")
image = rendered(fig)
missing = pixel(fig, image, ax, 1, 1 - 0.35)
check(np.abs(missing - np.array([1.0, 1.0, 1.0])).max() < 0.05,
      f"the cell not run is white (drawn {missing})")
legend_texts = [t.get_text() for t in ax.get_legend().get_texts()]
check(any("not run" in t for t in legend_texts) and any("diverged" in t for t in legend_texts),
      f"the legend names both ({legend_texts})")
matplotlib.pyplot.close(fig)

sys.exit(1 if failures else 0)
