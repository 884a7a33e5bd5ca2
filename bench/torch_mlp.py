#!/usr/bin/python3
"""PyTorch reference for bench/bench_mlp.sh: the seed model of specs/mnist_mlp.yaml.

    /usr/bin/python3 bench/torch_mlp.py BATCH_SIZE EPOCHS THREADS [DATA_DIR]

The same MLP as the seed spec (784 -> 128 -> 128 -> 10, ReLU, Glorot-uniform weights,
zero biases), Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7), CrossEntropyLoss on logits,
Fashion-MNIST read from the IDX .gz files (scaled by 1/255). As the spec does, the last
10% of the training set is held out for validation and the model trains on the first
90%, shuffled every epoch.

Prints JSON lines: one per epoch with its training seconds (evaluation excluded), then
one with the final test accuracy. Installs nothing: without torch it prints a line
saying it skipped, and exits 0.
"""
import gzip
import json
import os
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print(json.dumps({"skipped": f"PyTorch is not available for {sys.executable}: {e}"}))
    sys.exit(0)

VALIDATION_SPLIT = 0.1


def read_idx(path):
    """An IDX file (gzip) as a numpy uint8 array of its stored shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    batch_size, epochs, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data_dir = sys.argv[4] if len(sys.argv) > 4 else "/usr/share/datasets/fashion-mnist"
    torch.set_num_threads(threads)
    torch.manual_seed(42)

    x, y = load(data_dir, "train")
    n = len(x) - int(len(x) * VALIDATION_SPLIT)
    x, y = x[:n].contiguous(), y[:n].contiguous()
    x_test, y_test = load(data_dir, "test")

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    for m in model:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        loss_total, batches = 0.0, 0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_total += loss.item()
            batches += 1
        seconds = time.perf_counter() - t0
        print(json.dumps({"epoch": epoch, "loss": loss_total / batches, "seconds": seconds,
                          "batch_size": batch_size, "threads": threads}), flush=True)

    model.eval()
    with torch.no_grad():
        correct = (model(x_test).argmax(dim=1) == y_test).sum().item()
    print(json.dumps({"test_accuracy": correct / len(x_test), "batch_size": batch_size,
                      "threads": threads}), flush=True)


if __name__ == "__main__":
    main()
