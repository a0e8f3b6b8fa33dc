#!/usr/bin/python3
"""Draws every figure of the runge study from the experiments' CSVs.

    /usr/bin/python3 apps/runge/plots/make_figures.py [--results DIR] [--out DIR] [--only-present]

By default reads the committed apps/runge/results/*.csv (written by `runge experiment ...`
and bench/run_bench.sh) and writes docs/figures/runge-*.png. `runge experiment` itself
calls this script with --results OUT_DIR --out OUT_DIR/figures for the CSVs it just
wrote. A figure whose CSV is missing is skipped with a message. Needs Debian's
python3-matplotlib and python3-numpy (use /usr/bin/python3).
"""
import argparse
import csv
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def epochs_of(rows):
    """The epochs the rows were trained for, as a title shows it ("20" or "20-3000")."""
    vals = sorted({int(float(r["epochs"])) for r in rows if r.get("epochs")})
    if not vals:
        return "?"
    return str(vals[0]) if len(vals) == 1 else f"{vals[0]}-{vals[-1]}"


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return math.nan


class Figures:
    def __init__(self, results, out, quiet_missing=False):
        self.results = results
        self.out = out
        self.quiet_missing = quiet_missing
        self.written = []

    def csv(self, name):
        path = os.path.join(self.results, name)
        if not os.path.exists(path):
            if not self.quiet_missing:
                how = ("BENCH_OUT=" + path + " apps/runge/bench/run_bench.sh BUILD_DIR"
                       if name == "bench.csv" else "the experiment that writes it")
                print(f"skip: {path} missing (run {how})")
            return None
        return read(path)

    def save(self, fig, name):
        path = os.path.join(self.out, name)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.written.append(path)
        print(f"wrote {path}")


def ols_line(figs):
    rows = figs.csv("baselines_report000.csv")
    if rows:
        return fnum(rows[0]["test_mse"])
    return None


def fig1(figs):
    """Report 000 Fig. 1: test MSE vs learning rate."""
    sgd, gd = figs.csv("fig1_sgd.csv"), figs.csv("fig1_gd.csv")
    if not sgd or not gd:
        return
    ols = ols_line(figs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, layers in zip(axes, ["1", "2"]):
        for mode, rows, style in (("SGD", sgd, "-"), ("GD", gd, "--")):
            for opt in ("rmsprop", "adam"):
                sel = [r for r in rows if r["layers"] == layers and r["optimiser"] == opt]
                x = [fnum(r["lr"]) for r in sel]
                y = [fnum(r["mse"]) for r in sel]
                ax.plot(x, y, style, marker="o", ms=3, label=f"{mode} {opt}")
        if ols:
            ax.axhline(ols, color="k", lw=1, ls=":", label="OLS degree 12")
        ax.axhline(0.05**2, color="grey", lw=1, ls="-.", label="noise floor $\\sigma^2$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate $\\eta$")
        ax.set_title(f"{layers} hidden layer(s) of 50 sigmoid nodes, {epochs_of(sgd + gd)} epochs")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test MSE")
    axes[1].legend(fontsize=8)
    figs.save(fig, "runge-fig1-learning-rate.png")


def fig2(figs):
    rows = figs.csv("fig2_curves.csv")
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, layers in zip(axes, ["1", "2"]):
        keys = sorted({(r["mode"], r["optimiser"], r["lr"]) for r in rows if r["layers"] == layers})
        for mode, opt, lr in keys:
            sel = [r for r in rows
                   if r["layers"] == layers and r["mode"] == mode and r["optimiser"] == opt]
            ax.plot([int(r["epoch"]) for r in sel], [fnum(r["test_mse"]) for r in sel],
                    label=f"{mode.upper()} {opt} ($\\eta$={fnum(lr):.3g})")
        ax.axhline(0.05**2, color="grey", lw=1, ls="-.", label="noise floor")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{layers} hidden layer(s) of 50 sigmoid nodes")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test MSE")
    axes[1].legend(fontsize=8)
    figs.save(fig, "runge-fig2-curves.png")


def fig3(figs):
    fit, pts = figs.csv("fig3_fit.csv"), figs.csv("fig3_points.csv")
    if not fit or not pts:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for part, c in (("train", "tab:grey"), ("test", "tab:red")):
        sel = [p for p in pts if p["part"] == part]
        ax.scatter([fnum(p["x"]) for p in sel], [fnum(p["y"]) for p in sel], s=8, c=c,
                   alpha=0.6, label=f"{part} data")
    x = [fnum(r["x"]) for r in fit]
    ax.plot(x, [fnum(r["true"]) for r in fit], "k-", lw=2, label="Runge function")
    ax.plot(x, [fnum(r["nn"]) for r in fit], "tab:blue", lw=1.5, label="FFNN 2x50 sigmoid, Adam")
    ax.plot(x, [fnum(r["ols12"]) for r in fit], "tab:orange", lw=1.5, ls="--",
            label="OLS degree 12")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("Fit of the Runge function (report 000 Fig. 3)")
    ax.legend(fontsize=8)
    figs.save(fig, "runge-fig3-fit.png")


def heat(ax, rows, xkey, ykey, xlog=True, vmin=None, vmax=None):
    """log10 test MSE over (x, y); diverged points shown hatched-white (NaN)."""
    xs = sorted({fnum(r[xkey]) for r in rows})
    ys = sorted({fnum(r[ykey]) for r in rows})
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(fnum(r[ykey])), xs.index(fnum(r[xkey]))] = fnum(r["log10_mse"])
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels([f"{math.log10(v):.1f}" if xlog and v > 0 else f"{v:g}" for v in xs],
                       fontsize=7)
    ax.set_yticks(range(len(ys)))
    ax.set_yticklabels([f"{v:g}" for v in ys], fontsize=7)
    for i in range(len(ys)):
        for j in range(len(xs)):
            v = grid[i, j]
            ax.text(j, i, "div" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                    fontsize=5.5, color="w" if np.isnan(v) or v > (vmin + vmax) / 2 else "k")
    return im


def fig4(figs):
    rows = figs.csv("fig4.csv")
    if not rows:
        return
    acts = ["sigmoid", "relu", "leaky_relu"]
    layers = sorted({int(r["layers"]) for r in rows})
    vals = [fnum(r["log10_mse"]) for r in rows if not math.isnan(fnum(r["log10_mse"]))]
    # Exploded runs (log10 MSE up to +5) would wash out the interesting range: the colour
    # scale stops at 0 (MSE 1) and the printed numbers keep the exact values.
    vmin, vmax = min(vals), min(max(vals), 0.0)
    fig, axes = plt.subplots(len(layers), 3, figsize=(13, 3.2 * len(layers)), squeeze=False,
                             constrained_layout=True)
    for i, l in enumerate(layers):
        for j, a in enumerate(acts):
            sel = [r for r in rows if int(r["layers"]) == l and r["activation"] == a]
            ax = axes[i][j]
            if not sel:
                ax.axis("off")
                continue
            im = heat(ax, sel, "lr", "nodes", vmin=vmin, vmax=vmax)
            ax.set_title(f"{l} hidden layer(s), {a}", fontsize=9)
            ax.set_xlabel("log10 learning rate", fontsize=8)
            ax.set_ylabel("nodes per layer", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="log10 test MSE")
    fig.suptitle(f"Adam SGD, {epochs_of(rows)} epochs (report 000 Fig. 4)")
    figs.save(fig, "runge-fig4-architecture.png")


def fig5(figs):
    rows = figs.csv("fig5.csv")
    if not rows:
        return
    vals = [fnum(r["log10_mse"]) for r in rows if not math.isnan(fnum(r["log10_mse"]))]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, pen in zip(axes, ["l1", "l2"]):
        sel = [r for r in rows if r["penalty"] == pen]
        im = heat(ax, sel, "lr", "lambda", vmin=min(vals), vmax=max(vals))
        ax.set_title(f"{pen.upper()} ({sel[0]['layers']} x {sel[0]['nodes']} "
                     f"{sel[0]['activation']})")
        ax.set_xlabel("log10 learning rate")
        ax.set_ylabel("$\\lambda$")
    fig.colorbar(im, ax=axes, label="log10 test MSE")
    figs.save(fig, "runge-fig5-regularisation.png")


def fig6(figs):
    parts = [(p, figs.csv(f"fig6_{p}.csv")) for p in ("l1", "l2")]
    if any(rows is None for _, rows in parts):
        return
    vals = [fnum(r["log10_mse"]) for _, rows in parts for r in rows
            if not math.isnan(fnum(r["log10_mse"]))]
    acts = ["sigmoid", "relu", "leaky_relu"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), squeeze=False, constrained_layout=True)
    for i, (pen, rows) in enumerate(parts):
        for j, a in enumerate(acts):
            sel = [r for r in rows if r["activation"] == a]
            ax = axes[i][j]
            im = heat(ax, sel, "layers", "nodes", xlog=False, vmin=min(vals), vmax=max(vals))
            ax.set_title(f"{pen.upper()} $\\lambda$={fnum(sel[0]['lambda']):g}, "
                         f"$\\eta$={fnum(sel[0]['lr']):.3g}, {a}", fontsize=9)
            ax.set_xlabel("hidden layers")
            ax.set_ylabel("nodes per layer")
    fig.colorbar(im, ax=axes, label="log10 test MSE")
    figs.save(fig, "runge-fig6-architecture-regularised.png")


def fig_cv(figs):
    rows = figs.csv("cv_summary.csv")
    if not rows:
        return
    seeds = [s for s in dict.fromkeys(r["data_seed"] for r in rows) if s != "mean"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.8 / len(models)
    for k, m in enumerate(models):
        y = [100 * fnum(next(r["mean_r2"] for r in rows if r["data_seed"] == s and r["model"] == m))
             for s in seeds]
        ax.bar(np.arange(len(seeds)) + k * w, y, w, label=m)
    ax.axhline(96.4, color="k", ls=":", label="report 000 network (96.4%)")
    ax.axhline(96.0, color="grey", ls="--", label="report 000 OLS (96.0%)")
    ax.set_xticks(np.arange(len(seeds)) + 0.4 - w / 2)
    ax.set_xticklabels([f"draw {s}" for s in seeds])
    ax.set_ylabel("5-fold CV $R^2$ (%)")
    ax.set_ylim(90, 98)
    ax.set_title("Cross-validated $R^2$ on report 000's protocol (300 points, $\\sigma$=0.05)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figs.save(fig, "runge-cv-r2.png")


def fig_sparse(figs):
    rows = figs.csv("sparse_generalisation.csv")
    if not rows:
        return

    def label(r):
        if r["model"] == "ffnn":
            return f"FFNN {r['penalty'].upper()}"
        if r["model"] == "ffnn_avg1se":
            return "FFNN avg (1 SE)"
        return r["model"].split("_degree")[0].replace("_", " ")

    # Development draws (the methods were designed on them) and held-out draws (run once,
    # after the design was fixed); CSVs from before the split have no "set" column.
    sets = list(dict.fromkeys(r.get("set") or "dev" for r in rows))
    labels = list(dict.fromkeys(label(r) for r in rows))

    def panel(ax, part, labels, value, title, legend):
        """Boxes with every draw as a dot, one per model, and report 001's line."""
        data = [[value(r) for r in part if label(r) == l] for l in labels]
        ax.boxplot(data, labels=labels, showmeans=True)
        for k, vals in enumerate(data):
            ax.scatter(np.full(len(vals), k + 1) + np.linspace(-0.12, 0.12, len(vals)), vals,
                       s=10, alpha=0.6)
        ax.axhline(-1.82, color="k", ls=":", label=legend)
        ax.set_title(title.format(draws=len({r["data_seed"] for r in part})))
        ax.tick_params(axis="x", labelrotation=25)
        ax.legend(loc="upper right", fontsize=8)

    # One more panel: the held-out fits against f(x) itself at the same fresh x, so
    # without the noise floor log10 0.1² = -2 (column fresh_mse_vs_true_function).
    vs_truth = "fresh_mse_vs_true_function" in rows[0]
    fig, axes = plt.subplots(1, len(sets) + vs_truth, figsize=(9 * (len(sets) + vs_truth), 4.8),
                             squeeze=False)
    for ax, name in zip(axes[0], sets):
        panel(ax, [r for r in rows if (r.get("set") or "dev") == name], labels,
              lambda r: fnum(r["log10_fresh_mse"]),
              name + " draws ({draws}): N=18, $\\sigma$=0.1, 100 fresh points each",
              "report 001 best (L1 FFNN, one draw): -1.82")
        # The linear baselines' worst draws (up to +2.4) would flatten the networks' boxes.
        ax.set_ylim(-2.25, -0.6)
    axes[0][0].set_ylabel("log10 MSE on 100 fresh points (linear outliers above -0.6 cut)")
    if vs_truth:
        ax = axes[0][-1]
        part = [r for r in rows
                if (r.get("set") or "dev") == sets[-1] and r["model"] != "true_function"]
        panel(ax, part, [l for l in labels if l != "true function"],
              lambda r: np.log10(fnum(r["fresh_mse_vs_true_function"])),
              sets[-1] + " draws ({draws}): the same fits against f(x), noise removed",
              "report 001 best: -1.82")
        ax.set_ylabel("log10 MSE against f(x) at the 100 fresh x (linear outliers above -0.6 cut)")
        ax.set_ylim(-2.9, -0.6)
    figs.save(fig, "runge-sparse.png")


def fig_franke(figs):
    rows = figs.csv("franke_grid.csv")
    if not rows:
        return
    vals = [fnum(r["log10_mse"]) for r in rows if not math.isnan(fnum(r["log10_mse"]))]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    im = heat(ax, rows, "lr", "lambda", vmin=min(vals), vmax=max(vals))
    ax.set_xlabel("log10 learning rate")
    ax.set_ylabel("L2 $\\lambda$")
    ax.set_title(f"Franke, 1x128 ReLU, SGD batch 10, {epochs_of(rows)} epochs\n"
                 "(bootstrap mean test MSE, report 003 Fig. 6)")
    fig.colorbar(im, ax=ax, label="log10 test MSE")
    figs.save(fig, "runge-franke.png")


def fig_bench(figs):
    rows = figs.csv("bench.csv")
    if not rows:
        return
    # Process CPU time when the CSV has it: the machine is shared, and wall time then
    # measures the neighbours as much as the code. Runs on two threads (impl *_2threads)
    # gain in wall time only: they get a panel of their own, in wall time.
    key = "cpu_seconds" if "cpu_seconds" in rows[0] else "seconds"
    per = "cpu_us_per_step" if key == "cpu_seconds" else "us_per_step"
    one_thread = [r for r in rows if not r["impl"].endswith("_2threads")]
    cases = list(dict.fromkeys(r["case"] for r in one_thread))
    both = [r for r in rows if r["case"] == "full" and not r["impl"].endswith("float32")]
    wall_panel = any(r["impl"] == "xgrad_2threads" for r in both)
    panels = len(cases) + (1 if wall_panel else 0)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5), squeeze=False)

    def bars(ax, subset, time_key, per_key, reference, name_reference=True):
        # run_bench.sh repeats the full-batch case: one bar per implementation, the median.
        impls = list(dict.fromkeys(r["impl"] for r in subset))
        runs = {i: [r for r in subset if r["impl"] == i] for i in impls}
        med = {i: (statistics.median(fnum(r[time_key]) for r in runs[i]),
                   statistics.median(fnum(r[per_key]) for r in runs[i])) for i in impls}
        ax.bar(impls, [med[i][0] for i in impls],
               color=["tab:green" if i.startswith("xgrad") else "tab:grey" for i in impls])
        for k, i in enumerate(impls):
            ref = reference(i, med)
            # A peer's time over xgrad's (the goals are ratios).
            ratio = (f"\n{med[i][1] / med[ref][1]:.1f}×" + (f" {ref}" if name_reference else "")
                     if not i.startswith("xgrad") and ref in med else "")
            ax.text(k, med[i][0], f"{med[i][1]:.0f} µs/step{ratio}", ha="center", va="bottom",
                    fontsize=7)
        ax.margins(y=0.12)  # room for the two-line labels
        ax.tick_params(axis="x", labelrotation=20)
        return runs, impls

    for ax, c in zip(axes[0], cases):
        subset = [r for r in one_thread if r["case"] == c]
        # In the same dtype: float32 peers against xgrad_float32.
        runs, impls = bars(ax, subset, key, per, lambda i, med: "xgrad_float32"
                           if i.endswith("float32") and "xgrad_float32" in med else "xgrad")
        n = max(len(v) for v in runs.values())
        ax.set_ylabel(("CPU seconds" if key == "cpu_seconds" else "seconds") +
                      (f", median of {n} runs" if n > 1 else ""))
        ax.set_title(f"{c}: {runs[impls[0]][0]['steps']} steps, 1-50-50-1 sigmoid, Adam")
    if wall_panel:
        ax = axes[0][-1]
        runs, impls = bars(ax, both, "seconds", "us_per_step", lambda i, med: "xgrad_2threads",
                           name_reference=False)
        n = max(len(v) for v in runs.values())
        ax.set_ylabel("wall seconds" + (f", median of {n} runs" if n > 1 else ""))
        ax.set_title("full, float64, wall time; ratios over xgrad_2threads\n"
                     "(xgrad: 2 shards on 2 threads; peers at 1 thread, PyTorch also at 2)",
                     fontsize=10)
    figs.save(fig, "runge-bench.png")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", "..", ".."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--results", default=os.path.join(repo, "apps", "runge", "results"),
                   help="folder of the experiments' CSVs (default: %(default)s)")
    p.add_argument("--out", default=os.path.join(repo, "docs", "figures"),
                   help="folder of the PNGs (default: %(default)s)")
    p.add_argument("--only-present", action="store_true",
                   help="draw the figures whose CSVs are there, without a line for each missing one")
    a = p.parse_args()
    if not os.path.isdir(a.results):
        print(f"make_figures: --results {a.results} is not a folder (run `runge experiment "
              "NAME --out-dir DIR` first, then pass that DIR)", file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    figs = Figures(a.results, a.out, a.only_present)
    for f in (fig1, fig2, fig3, fig4, fig5, fig6, fig_cv, fig_sparse, fig_franke, fig_bench):
        f(figs)
    print(f"{len(figs.written)} figure(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
