#!/usr/bin/python3
"""Regenerates every MNIST figure of docs/results-mnist.md from the CSVs the mnist app
writes (one command; /usr/bin/python3 has matplotlib):

    /usr/bin/python3 apps/mnist/plots/figures.py [RESULTS_DIR] [FIGURES_DIR]

RESULTS_DIR (default results/mnist) holds one folder per `mnist train --out` run
(history.csv, confusion_percent.csv, misclassified.csv) and sweep CSVs (sweep-*.csv).
Writes docs/figures/mnist-*.png: learning curves (report 000 Fig. 9), confusion heatmap
(Fig. 10), misclassified digits (report 001 Fig. 11), sweep heatmaps (Figs. 7-8).
A missing input skips its figure with a message.
"""
import csv
import glob
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def dataset_of(run_dir):
    try:
        with open(os.path.join(run_dir, "run.txt")) as f:
            for line in f:
                if line.startswith("data set:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def learning_curves(results, out, runs, name, title):
    present = [(label, d) for label, d in runs if os.path.exists(os.path.join(results, d, "history.csv"))]
    if not present:
        print(f"skip {name}: none of {[d for _, d in runs]} in {results}")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, d) in enumerate(present):
        rows = read_csv(os.path.join(results, d, "history.csv"))
        e = [int(r["epoch"]) for r in rows]
        color = f"C{i}"
        # `mnist train --validation N` writes validation_* columns instead of test_*.
        scored = "validation" if "validation_accuracy" in rows[0] else "test"
        tr = [100 * float(r["train_accuracy"]) for r in rows]
        te = [100 * float(r[f"{scored}_accuracy"]) for r in rows]
        if not all(math.isnan(v) for v in tr):
            axes[0].plot(e, tr, "--", color=color, label=f"{label} train")
        axes[0].plot(e, te, "-", color=color, label=f"{label} {scored}")
        axes[1].plot(e, [float(r[f"{scored}_loss"]) for r in rows], "-", color=color,
                     label=f"{label} {scored}")
        if not all(math.isnan(float(r["train_loss"])) for r in rows):
            axes[1].plot(e, [float(r["train_loss"]) for r in rows], "--", color=color, label=f"{label} train")
    axes[0].set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    axes[0].set_ylim(bottom=max(80, axes[0].get_ylim()[0]))
    if max(int(r["epoch"]) for r in read_csv(os.path.join(results, present[0][1], "history.csv"))) <= 10:
        axes[0].set_xticks(e)
    axes[1].set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


def confusion(results, out, run, name):
    path = os.path.join(results, run, "confusion_percent.csv")
    if not os.path.exists(path):
        print(f"skip {name}: no {path}")
        return
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    m = np.array([[float(v) for v in r[1:]] for r in rows])
    counts = np.loadtxt(os.path.join(results, run, "confusion_counts.csv"), delimiter=",", skiprows=1)[:, 1:]
    acc = 100 * np.trace(counts) / counts.sum()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(np.log10(m + 0.01), cmap="Blues")
    for t in range(10):
        for p in range(10):
            v = m[t, p]
            if v >= 0.05:
                ax.text(p, t, f"{v:.1f}" if t != p else f"{v:.1f}", ha="center", va="center",
                        fontsize=7, color="white" if t == p else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit",
           title=f"{dataset_of(os.path.join(results, run))} test set, {acc:.2f}% correct\n"
                 "row percentages (colour: log scale)")
    fig.colorbar(im, ax=ax, label="log10(% of true digit)")
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


def misclassified(results, out, run, name, count=40):
    path = os.path.join(results, run, "misclassified.csv")
    if not os.path.exists(path):
        print(f"skip {name}: no {path}")
        return
    rows = read_csv(path)[:count]
    cols = 10
    nrows = max(1, math.ceil(len(rows) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 1.1, nrows * 1.3))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, r in zip(np.ravel(axes), rows):
        img = np.array([int(v) for v in r["pixels"].split()], dtype=np.uint8).reshape(28, 28)
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"#{r['index']}: {r['true']}→{r['predicted']}", fontsize=8)
    fig.suptitle(f"Misclassified {dataset_of(os.path.join(results, run))} test digits "
                 "(index: true→predicted)", fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


DIVERGED_COLOUR = "#b0b0b0"  # mid grey: apart from every viridis colour, dark text readable


def draw_sweep(rows, xkey, ykey, xlabel, ylabel, logx, logy):
    """The heatmap of a sweep's rows (test accuracy per grid point) as a new figure.
    A diverged point (accuracy NaN) is a grey cell labelled "diverged" in black, and the
    legend says so; a point the CSV has no row for (a sweep cut short or still running)
    is a white cell labelled "not run"; the colour bar spans the points that trained."""
    xs = sorted({float(r[xkey]) for r in rows})
    ys = sorted({float(r[ykey]) for r in rows})
    grid = np.full((len(ys), len(xs)), np.nan)
    present = np.zeros(grid.shape, dtype=bool)
    for r in rows:
        i, j = ys.index(float(r[ykey])), xs.index(float(r[xkey]))
        grid[i, j] = 100 * float(r["test_accuracy"])
        present[i, j] = True
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 2.5, 0.8 * len(ys) + 1.8))
    trained = grid[~np.isnan(grid)]
    lo, hi = (trained.min(), trained.max()) if trained.size else (0.0, 100.0)
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad(DIVERGED_COLOUR)  # NaN cells: grey, not transparent (white on white)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, origin="lower", aspect="auto",
                   vmin=lo, vmax=hi if hi > lo else lo + 1)
    for i in range(len(ys)):
        for j in range(len(xs)):
            v = grid[i, j]
            if not present[i, j]:
                ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1,
                                                          facecolor="white", edgecolor="none"))
                ax.text(j, i, "not run", ha="center", va="center", fontsize=8, color="dimgray")
            elif math.isnan(v):
                ax.text(j, i, "diverged", ha="center", va="center", fontsize=8, color="black")
            else:  # viridis is dark below the middle
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if v < lo + 0.5 * (hi - lo) else "black")
    fmt = (lambda v: f"1e{math.log10(v):.1f}" if v > 0 else "0")
    ax.set_xticks(range(len(xs)), [fmt(v) if logx else f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [fmt(v) if logy else f"{v:g}" for v in ys])
    r0 = rows[0]
    ax.set(xlabel=xlabel, ylabel=ylabel,
           title=f"test accuracy (%), {r0['activation']}, {r0['optimiser']}, {r0['epochs']} epochs")
    fig.colorbar(im, ax=ax)  # the range of the points that trained
    handles = []
    if (np.isnan(grid) & present).any():
        handles.append(matplotlib.patches.Patch(facecolor=DIVERGED_COLOUR, edgecolor="black",
                                                label="diverged (NaN loss)"))
    if not present.all():
        handles.append(matplotlib.patches.Patch(facecolor="white", edgecolor="black",
                                                label="not run (no row in the CSV)"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, -0.03), fontsize=8,
                  frameon=False)
    fig.tight_layout()
    return fig


def sweep(results, out, csv_name, name, xkey, ykey, xlabel, ylabel, logx, logy):
    path = os.path.join(results, csv_name)
    if not os.path.exists(path):
        print(f"skip {name}: no {path}")
        return
    fig = draw_sweep(read_csv(path), xkey, ykey, xlabel, ylabel, logx, logy)
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "results/mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else "docs/figures"
    os.makedirs(out, exist_ok=True)
    learning_curves(results, out, [("default recipe", "best-seed1"), ("report 000 config", "r000"),
                                   ("report 001 config", "r001"), ("report 003 config", "r003")],
                    "mnist-learning-curves.png", "MNIST: accuracy per epoch")
    learning_curves(results, out, [("logistic (Adam)", "logistic000"), ("logistic (SGD)", "logistic003")],
                    "mnist-logistic-curves.png", "MNIST softmax regression")
    learning_curves(results, out, [("Fashion-MNIST seed 1", "fashion-seed1")],
                    "mnist-fashion-curves.png", "Fashion-MNIST: accuracy per epoch")
    learning_curves(results, out, [("sigmoid", "act-sigmoid"), ("ReLU", "act-relu"),
                                   ("LeakyReLU", "act-leaky_relu")],
                    "mnist-activations.png", "784-256-10, Adam 1e-3 (report 000 Fig. 9)")
    confusion(results, out, "best-seed1", "mnist-confusion.png")
    confusion(results, out, "r000", "mnist-confusion-r000.png")
    misclassified(results, out, "best-seed1", "mnist-misclassified.png")
    sweep(results, out, "sweep-lr-lambda.csv", "mnist-sweep-lr-lambda.png", "learning_rate", "lambda",
          "learning rate", "L2 lambda", True, True)
    sweep(results, out, "sweep-lr-lambda-adam.csv", "mnist-sweep-lr-lambda-adam.png", "learning_rate",
          "lambda", "learning rate", "L2 lambda", True, True)
    sweep(results, out, "sweep-layers-nodes.csv", "mnist-sweep-layers-nodes.png", "nodes", "layers",
          "nodes per hidden layer", "hidden layers", False, False)


if __name__ == "__main__":
    main()
