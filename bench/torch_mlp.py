#!/usr/bin/python3
"""PyTorch reference for bench/run.sh: the seed model of specs/mnist_mlp.yaml.

    /usr/bin/python3 bench/torch_mlp.py BATCH_SIZE EPOCHS THREADS [DATA_DIR] [--limit N]

The same MLP as the seed spec (784 -> 128 -> 128 -> 10, ReLU, Glorot-uniform weights,
zero biases), Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7), CrossEntropyLoss on logits,
Fashion-MNIST read from the IDX .gz files (scaled by 1/255). As the spec does, the last
10% of the training set is held out for validation and the model trains on the first
90%, shuffled every epoch.

Prints JSON lines: one per epoch with its training seconds (evaluation excluded), then
one with the final test accuracy. Installs nothing: without torch it prints a line
saying it skipped, and exits 0.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common as tc  # noqa: E402


def main():
    args = tc.parse_args(__doc__)
    torch, np = tc.skipped_if_no_torch()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    tc.glorot_zero(torch, model)
    tc.run(torch, np, args, model, shape=(784,))


if __name__ == "__main__":
    main()
