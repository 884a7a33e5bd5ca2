#!/usr/bin/python3
"""PyTorch reference for bench/run.sh: the CNN of specs/fashion_cnn.yaml.

    /usr/bin/python3 bench/torch_cnn.py BATCH_SIZE EPOCHS THREADS [DATA_DIR] [--limit N]

The same architecture as the spec, layer for layer:

    conv 16 3x3 same, relu -> maxpool 2 -> conv 32 3x3 same -> batchnorm -> relu
    -> maxpool 2 -> flatten -> dropout 0.3 -> dense 64 relu -> dense 10 (logits)

in PyTorch's NCHW layout (specnet's is NHWC: same arithmetic, other memory order);
Glorot-uniform weights and zero biases as the spec's defaults; batch norm with the
spec's epsilon 1e-3 and momentum 0.99 in Keras's convention (0.01 in PyTorch's);
Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7); CrossEntropyLoss on logits.
Fashion-MNIST from the IDX .gz files (scaled by 1/255); the last 10% of the training
images are held out as the spec's `validation: {split: 0.1}` does.

Prints JSON lines: one per epoch with its training seconds (evaluation excluded), then
one with the final test accuracy. Without torch: a `skipped` line, exit 0.
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
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding="same"),
        nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32 * 7 * 7, 64), nn.ReLU(),
        nn.Linear(64, 10))
    tc.glorot_zero(torch, model)
    tc.run(torch, np, args, model, shape=(1, 28, 28))


if __name__ == "__main__":
    main()
