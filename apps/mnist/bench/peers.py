#!/usr/bin/python3
"""PyTorch and scikit-learn training report 000's network (784-256-10 sigmoid, softmax +
cross-entropy, Adam lr 1e-3, batch 128, float32) on MNIST, per-epoch time and peak RSS.

    /usr/bin/python3 peers.py MNIST_DIR THREADS EPOCHS {torch|sklearn}

Prints one line "peer=... threads=... median_epoch_s=... test_accuracy=... peak_rss_mb=...".
A missing library is reported and skipped (exit 0), never faked.
"""
import gzip
import os
import resource
import sys
import time

import numpy as np


def load(path):
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def find(d, base):
    for p in (os.path.join(d, base), os.path.join(d, base + ".gz")):
        if os.path.exists(p):
            return p
    raise SystemExit(f"{d}: no {base}[.gz]")


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    d, threads, epochs, peer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    xtr = load(find(d, "train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    ytr = load(find(d, "train-labels-idx1-ubyte")).astype(np.int64)
    xte = load(find(d, "t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    yte = load(find(d, "t10k-labels-idx1-ubyte")).astype(np.int64)
    times = []
    if peer == "torch":
        try:
            import torch
        except ImportError:
            print("peer=torch skipped: python3-torch is not installed")
            return
        # One owner of parallelism (../shared/DESIGN.md §6): PyTorch's own pool at 2 threads plus
        # OpenBLAS at 2 spin against each other (3x slower here). PyTorch's best setting
        # on this machine is 1 intra-op thread with OpenBLAS owning the cores
        # (OPENBLAS_NUM_THREADS=threads, set by mnist_bench.sh).
        torch.set_num_threads(1)
        torch.manual_seed(1)
        X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.Sigmoid(),
                                    torch.nn.Linear(256, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(X.shape[0])
            for i in range(0, X.shape[0], 128):
                idx = perm[i:i + 128]
                opt.zero_grad()
                loss = loss_fn(model(X[idx]), Y[idx])
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        with torch.no_grad():
            acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
        version = torch.__version__
    elif peer == "sklearn":
        try:
            import sklearn
            from sklearn.neural_network import MLPClassifier
            from threadpoolctl import threadpool_limits
        except ImportError as e:
            print(f"peer=sklearn skipped: {e}")
            return
        clf = MLPClassifier(hidden_layer_sizes=(256,), activation="logistic", solver="adam",
                            batch_size=128, learning_rate_init=1e-3, random_state=1)
        classes = np.arange(10)
        with threadpool_limits(limits=threads):
            for _ in range(epochs):
                t0 = time.perf_counter()
                # partial_fit shuffles its own minibatch order (shuffle=True, by index, as
                # xgrad and the PyTorch loop do): a copy xtr[perm] here would time an extra
                # pass over the 60,000 images that the others do not make.
                clf.partial_fit(xtr, ytr, classes=classes)
                times.append(time.perf_counter() - t0)
        acc = clf.score(xte, yte)
        version = sklearn.__version__
    else:
        raise SystemExit(f"unknown peer {peer}")
    times.sort()
    print(f"peer={peer} version={version} threads={threads} (BLAS) epochs={epochs} "
          f"median_epoch_s={times[len(times) // 2]:.4f} min_epoch_s={times[0]:.4f} "
          f"test_accuracy={acc:.4f} peak_rss_mb={peak_mb():.0f}")


if __name__ == "__main__":
    main()
