#!/usr/bin/python3
"""PyTorch and scikit-learn peers of runge_bench, on the same machine in the same run.

1-50-50-1 sigmoid, Adam (lr 1e-3), MSE, 240 Runge points (report 000: 300 points, sigma
0.05, 20% held out), float64 like xgrad's runge app, one thread each (--threads):
    full    3000 full-batch steps
    batch5  3000 epochs of minibatches of 5 (144,000 steps)
Prints CSV rows "impl,case,threads,steps,seconds,cpu_seconds,us_per_step,cpu_us_per_step,
test_mse" (wall and process CPU time); a peer that is not
installed is skipped with a message on stderr.
"""
import argparse
import contextlib
import sys
import time
import warnings

import numpy as np


def data():
    rng = np.random.default_rng(44)
    x = rng.uniform(-1, 1, 300)
    y = 1 / (1 + 25 * x**2) + 0.05 * rng.standard_normal(300)
    idx = rng.permutation(300)
    tr, te = idx[:240], idx[240:]
    mx, sx = x[tr].mean(), x[tr].std()
    my, sy = y[tr].mean(), y[tr].std()
    xs = ((x - mx) / sx)[:, None]
    ys = ((y - my) / sy)[:, None]
    return xs[tr], ys[tr], xs[te], y[te], my, sy


def torch_peer(case, epochs, dtype_name, threads):
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(1)
    dtype = getattr(torch, dtype_name)
    xtr, ytr, xte, yte, my, sy = data()
    X = torch.tensor(xtr, dtype=dtype)
    Y = torch.tensor(ytr, dtype=dtype)
    net = torch.nn.Sequential(torch.nn.Linear(1, 50), torch.nn.Sigmoid(),
                              torch.nn.Linear(50, 50), torch.nn.Sigmoid(),
                              torch.nn.Linear(50, 1)).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    n = X.shape[0]
    batch = n if case == "full" else 5
    gen = torch.Generator().manual_seed(1)
    steps = 0
    # torch's products go to OpenBLAS (Debian's build), whose own threads follow
    # OPENBLAS_NUM_THREADS, not set_num_threads: limited here too.
    with blas_threads(threads):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen) if batch < n else None
            for b in range(0, n, batch):
                if perm is None:
                    xb, yb = X, Y
                else:
                    rows = perm[b:b + batch]
                    xb, yb = X[rows], Y[rows]
                opt.zero_grad()
                loss = loss_fn(net(xb), yb)
                loss.backward()
                opt.step()
                steps += 1
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
    with torch.no_grad():
        pred = net(torch.tensor(xte, dtype=dtype)).numpy()[:, 0] * sy + my
    return steps, secs, cpu, float(np.mean((pred - yte) ** 2)), torch.get_num_threads()


def sklearn_peer(case, epochs, threads):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    xtr, ytr, xte, yte, my, sy = data()
    batch = xtr.shape[0] if case == "full" else 5
    m = MLPRegressor(hidden_layer_sizes=(50, 50), activation="logistic", solver="adam",
                     learning_rate_init=1e-3, alpha=0.0, batch_size=batch, max_iter=epochs,
                     tol=0.0, n_iter_no_change=epochs + 1, shuffle=True, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with blas_threads(threads) as used:
            c0 = time.process_time()
            t0 = time.perf_counter()
            m.fit(xtr, ytr[:, 0])
            secs = time.perf_counter() - t0
            cpu = time.process_time() - c0
    steps = m.n_iter_ * ((xtr.shape[0] + batch - 1) // batch)
    pred = m.predict(xte) * sy + my
    return steps, secs, cpu, float(np.mean((pred - yte) ** 2)), used


@contextlib.contextmanager
def blas_threads(threads):
    """Every loaded BLAS at `threads` (0: as it is); yields the count in use."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield 1 if threads <= 0 else threads
        return
    limits = threadpool_limits(limits=threads, user_api="blas") if threads > 0 else None
    try:
        counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        yield max(counts) if counts else 1
    finally:
        if limits is not None:
            limits.restore_original_limits()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3000)
    p.add_argument("--cases", default="full,batch5")
    p.add_argument("--peers", default="torch,torch_float32,sklearn")
    p.add_argument("--float32-cases", default="full",
                   help="cases also run by PyTorch in float32 (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of torch's pools and of the BLAS both peers use; 0 leaves each "
                        "library's own default, which the CSV's threads column then shows "
                        "(default: %(default)s)")
    a = p.parse_args()
    for peer in a.peers.split(","):
        for case in a.cases.split(","):
            if peer == "torch_float32" and case not in a.float32_cases.split(","):
                continue
            try:
                if peer == "torch":
                    steps, secs, cpu, mse, used = torch_peer(case, a.epochs, "float64", a.threads)
                elif peer == "torch_float32":
                    steps, secs, cpu, mse, used = torch_peer(case, a.epochs, "float32", a.threads)
                elif peer == "sklearn":
                    steps, secs, cpu, mse, used = sklearn_peer(case, a.epochs, a.threads)
                else:
                    print(f"peers.py: unknown peer {peer}", file=sys.stderr)
                    continue
            except ImportError as e:
                print(f"peers.py: skipping {peer}: {e}", file=sys.stderr)
                break
            print(f"{peer},{case},{used},{steps},{secs:.4f},{cpu:.4f},{1e6 * secs / steps:.3f},"
                  f"{1e6 * cpu / steps:.3f},{mse:.6g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
