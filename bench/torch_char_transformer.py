#!/usr/bin/python3
"""PyTorch reference for bench/run.sh's char transformer (issue 15's performance
target): the model of tests/interop/char_transformer.yaml (bytes as tokens, context
64, token + position embedding, 4 pre-norm blocks of layer_norm -> causal
attention (4 heads) -> add -> layer_norm -> dense 4D GELU (tanh) -> dense D -> add,
D = 128, final layer_norm, dense 256; 867k parameters), the class that the interop
test checks against specnet, trained with AdamW as specnet's (lr 1e-3, betas (0.9,
0.999), eps 1e-7, weight decay 0.004).

    /usr/bin/python3 bench/torch_char_transformer.py TOKENS.npy STEPS THREADS [--batch 32]
        [--loss ce|mse0] [--targets NEXT.npy] [--weight-decay WD]
        [--val VTOKENS.npy --val-targets VNEXT.npy] [--save-init W.safetensors]

TOKENS.npy holds windows (n, 64) of byte ids; NEXT.npy the next byte at every
position (n, 64) for --loss ce (the cross-entropy of every position, mean over N x T);
--loss mse0 is the mean squared logit over N x T*256 (the stand-in loss that
specnet's timing run uses while the sequence loss is not there: the same amount of
elementwise work). Windows are taken in order, batch after batch. Prints one JSON
line: the median and mean seconds per step (after 3 warm-up steps), the last
loss and, with --val, the mean cross-entropy over every position of the validation
windows after training (val_loss, nats per token). --save-init writes the initial
weights under specnet's names (tests/interop/char_transformer.yaml's layers), so
that specnet can train from the same start (`--weights`). Installs nothing: without torch it prints a `skipped` line and exits 0.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tokens")
    p.add_argument("steps", type=int)
    p.add_argument("threads", type=int)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--loss", choices=["ce", "mse0"], default="mse0")
    p.add_argument("--targets")
    p.add_argument("--weight-decay", type=float, default=0.004)
    p.add_argument("--val")
    p.add_argument("--val-targets")
    p.add_argument("--save-init")
    args = p.parse_args()
    try:
        import numpy as np
        import torch
        import torch_interop as ti
    except ImportError as e:
        print(json.dumps({"skipped": f"PyTorch is not available for {sys.executable}: {e}"}), flush=True)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    net = ti.CharTransformer()
    with torch.no_grad():
        net.pos.normal_(0, 0.02)
    if args.save_init:
        state = net.state_dict()
        ti.write_safetensors(args.save_init, {n: state[k].numpy() for k, n in ti.specnet_names().items()})
    ids = torch.from_numpy(np.load(args.tokens).astype(np.int64))
    nxt = torch.from_numpy(np.load(args.targets).astype(np.int64)) if args.targets else None
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=args.weight_decay)
    times, loss = [], None
    n = len(ids) // args.batch
    for step in range(args.steps + 3):
        b = (step % n) * args.batch
        x = ids[b:b + args.batch]
        t0 = time.perf_counter()
        logits = net(x)
        if args.loss == "ce":
            l = torch.nn.functional.cross_entropy(logits.reshape(-1, ti.V), nxt[b:b + args.batch].reshape(-1))
        else:
            l = (logits * logits).mean()
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        loss = l.item()
        if step >= 3:
            times.append(time.perf_counter() - t0)
    out = {"tool": "pytorch", "threads": args.threads, "steps": args.steps,
           "median_step_seconds": statistics.median(times),
           "mean_step_seconds": statistics.fmean(times), "loss": loss}
    if args.val:
        out["val_loss"] = val_loss(torch, np, ti, net, args.val, args.val_targets, args.batch)
    print(json.dumps(out), flush=True)


def val_loss(torch, np, ti, net, tokens, targets, batch):
    """mean cross-entropy over every position of every validation window"""
    ids = torch.from_numpy(np.load(tokens).astype(np.int64))
    nxt = torch.from_numpy(np.load(targets).astype(np.int64))
    total = 0.0
    with torch.no_grad():
        for b in range(0, len(ids), batch):
            logits = net(ids[b:b + batch])
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, ti.V), nxt[b:b + batch].reshape(-1),
                                                       reduction="sum").item()
    return total / nxt.numel()


if __name__ == "__main__":
    main()
