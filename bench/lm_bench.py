#!/usr/bin/python3
"""The char transformer of issue 15 in bench/run.sh: specnet against PyTorch, per
training step, side by side (CONFIGS=lm32, LM_STEPS, THREADS, REPEATS).

The model is tests/interop/char_transformer.yaml (867k parameters; the interop test
checks that specnet and bench/torch_char_transformer.py compute the same logits
from the same weights), batch 32, context 64, AdamW lr 1e-3. The windows are bytes
of the fortunes text (/usr/share/games/fortunes, random bytes without it), taken in
order. Until specnet has the per-position cross-entropy, both tools train on the
stand-in loss mean(logits^2) (the same elementwise work over N x T x 256), so the
step times compare and the losses do not. Timed: specnet's training seconds of its
one epoch (metrics.jsonl; compiling, loading and evaluation outside) divided by the
steps; PyTorch's median step after 3 warm-up steps. Prints a Markdown table;
writes OUT/lm_results.json.
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
REPEATS = int(os.environ.get("REPEATS", "1" if QUICK else "3"))
THREADS = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
SPEC = os.path.join(ROOT, "tests", "interop", "char_transformer.yaml")
T, V = 64, 256


def windows(np, n):
    """n windows of T bytes of the fortunes text, in order (random bytes without it)."""
    text = b""
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path):
            continue
        with open(path, "rb") as f:
            text += f.read()
    if len(text) < n * T + 1:
        return np.random.default_rng(0).integers(0, V, size=(n, T)).astype(np.float32), "random bytes"
    a = np.frombuffer(text[:n * T], dtype=np.uint8).reshape(n, T)
    return a.astype(np.float32), "fortunes"


def env(threads, torch=False):
    e = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if torch:
        e.update(MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    return e


def specnet_step(x_path, y_path, threads, rep):
    run = os.path.join(OUT, "runs", f"lm-specnet-t{threads}-r{rep}")
    cmd = [SPECNET, "train", SPEC, "--out", run, "--quiet", "--threads", str(threads),
           "--set", f"data.train={{format: npy, x: {x_path}, y: {y_path}}}",
           "--set", "train.batch_size=32", "--set", "train.epochs=1", "--set", "train.shuffle=false"]
    r = subprocess.run(cmd, env=env(threads), capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        return None
    with open(os.path.join(run, "metrics.jsonl")) as f:
        e = json.loads(f.readline())
    return e["seconds"] / STEPS


def torch_step(x_path, threads):
    cmd = [PYTHON, os.path.join(ROOT, "bench", "torch_char_transformer.py"), x_path, str(STEPS), str(threads)]
    r = subprocess.run(cmd, env=env(threads, torch=True), capture_output=True, text=True)
    for line in r.stdout.splitlines():
        e = json.loads(line)
        if "skipped" in e:
            sys.stderr.write(f"lm_bench: PyTorch skipped: {e['skipped']}\n")
            return None
        return e["median_step_seconds"]
    sys.stderr.write(r.stderr)
    return None


def main():
    import numpy as np
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)
    x, source = windows(np, STEPS * 32)
    x_path, y_path = os.path.join(OUT, "lm_tokens.npy"), os.path.join(OUT, "lm_zeros.npy")
    np.save(x_path, x)
    np.save(y_path, np.zeros((len(x), T * V), dtype=np.float32))
    res = {"steps": STEPS, "batch": 32, "source": source, "specnet": {}, "pytorch": {}}
    for rep in range(REPEATS):
        for t in THREADS:  # alternating, so that a busy moment hits both tools
            order = ("specnet", "pytorch") if rep % 2 == 0 else ("pytorch", "specnet")
            for tool in order:
                s = specnet_step(x_path, y_path, t, rep) if tool == "specnet" else torch_step(x_path, t)
                sys.stderr.write(f"lm_bench: {tool} threads {t} repeat {rep}: {s} s/step\n")
                if s is not None:
                    res[tool].setdefault(str(t), []).append(s)
    med = {tool: {t: statistics.median(v) for t, v in res[tool].items()} for tool in ("specnet", "pytorch")}
    res["median"] = med
    res["min"] = {tool: {t: min(v) for t, v in res[tool].items()} for tool in ("specnet", "pytorch")}
    with open(os.path.join(OUT, "lm_results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"\n## Char transformer (issue 15): seconds per training step, batch 32, context 64\n")
    print(f"{STEPS} steps per run, {REPEATS} repeats, median; data: {source}; loss: mean(logits^2) "
          "for both (a stand-in: see bench/lm_bench.py)\n")
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


if __name__ == "__main__":
    main()
