#!/usr/bin/python3
"""The nn_epoch_bench epoch in PyTorch, for comparison on the same machine.

784-256-10, sigmoid hidden layer, softmax + cross-entropy (nn.CrossEntropyLoss on the
logits), Adam (lr 1e-3), batch 128, one epoch over 60,000 random samples (uniform [0,1)
inputs, random labels), float32, a fresh permutation each epoch with each batch
gathered by index (as the xgrad trainer does). Prints seconds per epoch: the median
of --epochs epochs after one warm-up epoch (wall and process CPU time), and
"RESULT torch_s_<threads>t <seconds>" / "RESULT torch_cpu_s_<threads>t <seconds>".

Run it with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 apps/bench/torch_epoch_bench.py --threads 1
Exits 0 with a "skipped" message when torch is not importable.
"""
import argparse
import os
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (>= 3)")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be >= 3")
    # One owner of the threads (../shared/DESIGN.md §6): Debian's torch computes through the system
    # OpenBLAS, whose own pool must get the same count as torch's, before torch loads it;
    # torch at 1 thread over OpenBLAS at 2 spin-waits and runs several times slower.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import torch
    except ImportError as err:
        print(f"torch_epoch_bench: skipped, torch is not importable by {sys.executable} ({err})")
        return 0

    torch.set_num_threads(args.threads)
    torch.manual_seed(20261122)
    rows, n_in, n_hidden, n_out, batch = 60000, 784, 256, 10, 128
    x = torch.rand(rows, n_in, dtype=torch.float32)
    y = torch.randint(0, n_out, (rows,))
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_hidden), torch.nn.Sigmoid(), torch.nn.Linear(n_hidden, n_out)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    times, cpu_times, loss_sum = [], [], 0.0
    for epoch in range(args.epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        perm = torch.randperm(rows)
        loss_sum = 0.0
        for b in range(0, rows, batch):
            idx = perm[b : b + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
        if epoch > 0:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    med = statistics.median(times)
    med_cpu = statistics.median(cpu_times)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}: "
        f"{med:.3f} s/epoch (median of {len(times)}: "
        + " ".join(f"{t:.3f}" for t in times)
        + f"), process CPU {med_cpu:.3f} s/epoch, last-epoch loss {loss_sum / rows:.6f}"
    )
    print(f"RESULT torch_s_{args.threads}t {med:.4f}")
    print(f"RESULT torch_cpu_s_{args.threads}t {med_cpu:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
