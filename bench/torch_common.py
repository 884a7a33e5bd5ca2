"""Shared by bench/torch_mlp.py and bench/torch_cnn.py: argument parsing, Fashion-MNIST
from the IDX .gz files, the training loop and its JSON-lines output.

Both scripts train on what a specnet spec with `validation: {split: 0.1}` trains on:
the first LIMIT training images (all 60,000 by default), minus the last 10% of those,
held out for validation; shuffled every epoch. Only the training loop is timed
(evaluation, data loading, model construction and torch's import are outside it).

Installs nothing: without torch the caller prints a `skipped` line and exits 0.
"""
import argparse
import gzip
import json
import os
import sys
import time

VALIDATION_SPLIT = 0.1
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def skipped_if_no_torch():
    """(torch, numpy) or print a `skipped` JSON line and exit 0."""
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"PyTorch is not available for {sys.executable}: {e}"}),
              flush=True)
        sys.exit(0)
    return torch, np


def parse_args(doc):
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("batch_size", type=int)
    p.add_argument("epochs", type=int)
    p.add_argument("threads", type=int, help="torch.set_num_threads (set OMP_NUM_THREADS "
                   "and OPENBLAS_NUM_THREADS in the environment to the same value)")
    p.add_argument("data_dir", nargs="?", default=DEFAULT_DATA)
    p.add_argument("--limit", type=int, default=0,
                   help="use only the first LIMIT training images (0: all), as specnet's "
                        "data.train limit")
    p.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    return p.parse_args()


def read_idx(np, path):
    """An IDX file (gzip) as a numpy uint8 array of its stored shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(torch, np, data_dir, split, shape):
    """(x float32 scaled by 1/255 and reshaped to (n,) + shape, y int64)."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(np, os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(np, os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape((len(x),) + tuple(shape)).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def train_data(torch, np, args, shape):
    x, y = load(torch, np, args.data_dir, "train", shape)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    n = len(x) - int(len(x) * VALIDATION_SPLIT)
    return x[:n].contiguous(), y[:n].contiguous(), n


def run(torch, np, args, model, shape):
    """Train `model` (Adam as the specs: lr 1e-3, betas (0.9, 0.999), eps 1e-7) with
    cross-entropy on logits; print one JSON line per epoch, then the test accuracy."""
    x, y, n = train_data(torch, np, args, shape)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    common = {"batch_size": args.batch_size, "threads": args.threads,
              "torch_threads": torch.get_num_threads(), "samples": n}

    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        loss_total, batches = 0.0, 0
        for start in range(0, n, args.batch_size):
            idx = perm[start:start + args.batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_total += loss.item()
            batches += 1
        seconds = time.perf_counter() - t0
        print(json.dumps({"epoch": epoch, "loss": loss_total / batches, "seconds": seconds,
                          **common}), flush=True)

    if args.no_test:
        return
    x_test, y_test = load(torch, np, args.data_dir, "test", shape)
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x_test), 1000):
            out = model(x_test[start:start + 1000])
            correct += (out.argmax(dim=1) == y_test[start:start + 1000]).sum().item()
    print(json.dumps({"test_accuracy": correct / len(x_test), **common}), flush=True)


def glorot_zero(torch, model):
    """Glorot-uniform weights, zero biases: the specs' defaults (Keras's)."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
