#!/usr/bin/python3
"""The char transformer of issue 15 in bench/run.sh: specnet against PyTorch, per
training step, side by side (CONFIGS=lm32, LM_STEPS, THREADS, REPEATS).

The model is tests/interop/char_transformer.yaml (867k parameters; the interop test
checks that specnet and bench/torch_char_transformer.py compute the same logits
from the same weights), batch 32, context 64, AdamW lr 1e-3. The windows are bytes
of the fortunes text (/usr/share/games/fortunes, random bytes without it), taken in
order, labelled with the next byte at every position; both tools train on the
cross-entropy of every position (mean over N x T). Timed: specnet's training
seconds of its one epoch (metrics.jsonl; compiling, loading and evaluation outside)
divided by the steps; PyTorch's median step after 3 warm-up steps.

Then the losses (LM_LOSS_STEPS, 300; 0 skips it): specs/char_transformer.yaml
(AdamW lr 1e-3, weight decay 0.01, batch 32) and the same model in PyTorch each
train that many steps on the same windows in the same order, from their own
initial weights, and are scored on the same 64 windows of the last 10% of the text
(the mean cross-entropy over every position, nats per byte); issue 15 asks for
the two within 0.05 nats. Prints Markdown tables; writes OUT/lm_results.json.
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECNET = os.environ.get("SPECNET", os.path.join(ROOT, "build", "cli", "specnet"))
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "out"))
QUICK = os.environ.get("QUICK", "0") not in ("", "0")
STEPS = int(os.environ.get("LM_STEPS", "10" if QUICK else "40"))
LOSS_STEPS = int(os.environ.get("LM_LOSS_STEPS", "50" if QUICK else "300"))
REPEATS = int(os.environ.get("REPEATS", "1" if QUICK else "3"))
THREADS = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
SPEC = os.path.join(ROOT, "specs", "char_transformer.yaml")
T, V = 64, 256


def corpus():
    text = b""
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path):
            continue
        with open(path, "rb") as f:
            text += f.read()
    return text


def windows(np, text, n, start=0):
    """n windows of T bytes of text from start, in order, and the next byte at every
    position (random bytes without the text)"""
    if len(text) < start + n * T + 1:
        text, start = np.random.default_rng(0).integers(0, V, size=n * T + 1).astype(np.uint8).tobytes(), 0
    a = np.frombuffer(text[start:start + n * T + 1], dtype=np.uint8)
    x = a[:n * T].reshape(n, T).astype(np.float32)
    y = a[1:n * T + 1].reshape(n, T).astype(np.int32)
    return x, y


def save_windows(np, name, x, y):
    xp, yp = os.path.join(OUT, f"{name}_tokens.npy"), os.path.join(OUT, f"{name}_next.npy")
    np.save(xp, x)
    np.save(yp, y)
    return xp, yp


def env(threads, torch=False):
    e = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if torch:
        e.update(MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    return e


def specnet_run(train, threads, name, val, weights=None):
    """one epoch over train's windows in order, scored on val's; the first line of
    metrics.jsonl"""
    run = os.path.join(OUT, "runs", name)
    cmd = [SPECNET, "train", SPEC, "--out", run, "--quiet", "--threads", str(threads),
           *(["--weights", weights] if weights else []),
           "--set", f"data.train={{format: npy, x: {train[0]}, y: {train[1]}}}",
           "--set", "train.batch_size=32", "--set", "train.epochs=1", "--set", "train.shuffle=false"]
    cmd += ["--set", f"data.validation={{format: npy, x: {val[0]}, y: {val[1]}}}"]
    r = subprocess.run(cmd, env=env(threads), capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        return None
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return json.loads(f.readline())


def specnet_step(train, val, threads, rep):
    e = specnet_run(train, threads, f"lm-specnet-t{threads}-r{rep}", val)
    return e and e["seconds"] / STEPS


def torch_run(train, steps, threads, val=None, save_init=None):
    """PyTorch's JSON line; steps + 3 steps train (the first 3 untimed)"""
    cmd = [PYTHON, os.path.join(ROOT, "bench", "torch_char_transformer.py"), train[0], str(steps), str(threads),
           "--loss", "ce", "--targets", train[1]]
    if val:
        cmd += ["--weight-decay", "0.01", "--val", val[0], "--val-targets", val[1]]
    if save_init:
        cmd += ["--save-init", save_init]
    r = subprocess.run(cmd, env=env(threads, torch=True), capture_output=True, text=True)
    for line in r.stdout.splitlines():
        e = json.loads(line)
        if "skipped" in e:
            sys.stderr.write(f"lm_bench: PyTorch skipped: {e['skipped']}\n")
            return None
        return e
    sys.stderr.write(r.stderr)
    return None


def torch_step(train, threads):
    e = torch_run(train, STEPS, threads)
    return e and e["median_step_seconds"]


def losses(np, text, val, threads):
    """validation loss of both tools after LOSS_STEPS steps on the same windows"""
    train = save_windows(np, "lm_loss_train", *windows(np, text, LOSS_STEPS * 32))
    init = os.path.join(OUT, "lm_torch_init.safetensors")
    p = torch_run(train, LOSS_STEPS - 3, threads, val, save_init=init)
    s = specnet_run(train, threads, "lm-specnet-loss", val)
    same = specnet_run(train, threads, "lm-specnet-loss-torch-init", val, init) if p else None
    return {"steps": LOSS_STEPS, "specnet": s and s["val_loss"], "pytorch": p and p["val_loss"],
            "specnet_from_torch_init": same and same["val_loss"]}


def main():
    import numpy as np
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)
    text = corpus()
    source = "fortunes" if len(text) > (STEPS + LOSS_STEPS) * 32 * T else "random bytes"
    train = save_windows(np, "lm", *windows(np, text, STEPS * 32))
    val = save_windows(np, "lm_val", *windows(np, text, 64, start=len(text) * 9 // 10))
    res = {"steps": STEPS, "batch": 32, "source": source, "specnet": {}, "pytorch": {}}
    for rep in range(REPEATS):
        for t in THREADS:  # alternating, so that a busy moment hits both tools
            order = ("specnet", "pytorch") if rep % 2 == 0 else ("pytorch", "specnet")
            for tool in order:
                s = specnet_step(train, val, t, rep) if tool == "specnet" else torch_step(train, t)
                sys.stderr.write(f"lm_bench: {tool} threads {t} repeat {rep}: {s} s/step\n")
                if s is not None:
                    res[tool].setdefault(str(t), []).append(s)
    if LOSS_STEPS > 0:
        res["loss"] = losses(np, text, val, max(THREADS))
    med = {tool: {t: statistics.median(v) for t, v in res[tool].items()} for tool in ("specnet", "pytorch")}
    res["median"] = med
    res["min"] = {tool: {t: min(v) for t, v in res[tool].items()} for tool in ("specnet", "pytorch")}
    with open(os.path.join(OUT, "lm_results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"\n## Char transformer (issue 15): seconds per training step, batch 32, context 64\n")
    print(f"{STEPS} steps per run, {REPEATS} repeats, median; data: {source}; loss: cross-entropy "
          "of every position\n")
    print("| threads | specnet s/step | PyTorch s/step | specnet / PyTorch | fastest runs: specnet, PyTorch |")
    print("|---|---|---|---|---|")
    for t in THREADS:
        s, p = med["specnet"].get(str(t)), med["pytorch"].get(str(t))
        if s and p:
            print(f"| {t} | {s:.4f} | {p:.4f} | {s / p:.2f} | {res['min']['specnet'][str(t)]:.4f}, "
                  f"{res['min']['pytorch'][str(t)]:.4f} |")
        else:
            print(f"| {t} | {s} | {p} | n/a | |")
    if med["specnet"] and med["pytorch"]:
        bs, bp = min(med["specnet"].values()), min(med["pytorch"].values())
        print(f"\nbest against best: specnet {bs:.4f} s, PyTorch {bp:.4f} s: {bs / bp:.2f}x "
              f"(issue 15's goal: at most 0.5x)")
    if "loss" in res:
        L = res["loss"]
        print(f"\n## Char transformer: validation loss after {L['steps']} steps (nats per byte)\n")
        print("| start | specnet | PyTorch | difference |\n|---|---|---|---|")
        for what, key in (("each tool's own initial weights", "specnet"),
                          ("PyTorch's initial weights for both", "specnet_from_torch_init")):
            if L[key] is not None and L["pytorch"] is not None:
                print(f"| {what} | {L[key]:.4f} | {L['pytorch']:.4f} | {L[key] - L['pytorch']:+.4f} |")
            else:
                print(f"| {what} | {L[key]} | {L['pytorch']} | n/a |")
        print("\nissue 15: within 0.05 nats")


if __name__ == "__main__":
    main()
