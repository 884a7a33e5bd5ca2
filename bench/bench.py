#!/usr/bin/python3
"""The benchmark of issue 7, driven by bench/run.sh (read that file's header first).

specnet against PyTorch (CPU), side by side and alternating, on the seed MLP
(specs/mnist_mlp.yaml) at batch 32, 128, 256 and the CNN (specs/fashion_cnn.yaml) at
batch 64: median training seconds per epoch, the ratio, achieved GFLOP/s against a
measured sgemm peak (bench/sgemm_peak.c), JIT compile time cold and cached, peak RSS.
A Markdown report on stdout, every raw number in bench/out/results.json.

Standard library only (PyTorch runs in its own processes: bench/torch_mlp.py,
bench/torch_cnn.py); installs nothing.
"""
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH_SAMPLES = 54000  # Fashion-MNIST train (60,000) minus the spec's 10% validation split


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v != "" else default
    except ValueError:
        sys.exit(f"bench: {name}={v!r} is not an integer")


QUICK = os.environ.get("QUICK", "") not in ("", "0")
EPOCHS = env_int("EPOCHS", 1 if QUICK else 3)              # epochs per MLP run
CNN_EPOCHS = env_int("CNN_EPOCHS", 1)                      # epochs per CNN run
REPEATS = env_int("REPEATS", 1 if QUICK else 3)            # runs per (config, tool, threads)
COMPILE_REPEATS = env_int("COMPILE_REPEATS", 1 if QUICK else 3)
MLP_LIMIT = env_int("MLP_LIMIT", 12000 if QUICK else 0)    # training images used (0: all)
CNN_LIMIT = env_int("CNN_LIMIT", 3000 if QUICK else 0)
THREADS = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
CONFIG_NAMES = os.environ.get("CONFIGS", "mlp32 mlp128 mlp256 cnn64").split()
SPECNET = os.environ.get("SPECNET", "build/cli/specnet")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
OUT = os.environ.get("OUT", os.path.join(ROOT, "bench", "out"))
SGEMM = os.environ.get("SGEMM_PEAK", os.path.join(OUT, "sgemm_peak"))
# PyTorch's OpenMP threads busy-wait between parallel regions by default; on 2 cores,
# next to OpenBLAS's own threads, that makes torch.set_num_threads(2) about 10x slower
# than 1 thread. PASSIVE gives PyTorch its best 2-thread figure; "default" leaves it unset.
TORCH_OMP_WAIT = os.environ.get("TORCH_OMP_WAIT_POLICY", "PASSIVE")


# ---------------------------------------------------------------------------------------
# FLOPs per training sample: the matrix products and convolutions only (the elementwise
# work, pooling, batch norm, softmax and the optimizer are left out, as is usual).
# A layer with M multiply-accumulates per sample costs, in one training step:
#   forward              2*M  (y = x W^T)
#   weight gradient      2*M  (dW = dy^T x)
#   input gradient       2*M  (dx = dy W), skipped for the first layer: its input is the
#                             data, and nothing needs its gradient (specnet never builds it)
# so 6*M per layer and 4*M for the first layer.

def dense_macs(n_in, n_out):
    return n_in * n_out


def conv_macs(out_h, out_w, c_in, c_out, kh, kw):
    # every output position of every filter: a kh*kw*c_in dot product
    return out_h * out_w * c_out * (kh * kw * c_in)


def training_flops(layer_macs):
    """FLOPs per sample of one training step for layers with these MACs, in order."""
    return sum(6 * m for m in layer_macs) - 2 * layer_macs[0]


MLP_MACS = [dense_macs(784, 128), dense_macs(128, 128), dense_macs(128, 10)]
# = [100352, 16384, 1280] -> 6*118016 - 2*100352 = 507,392 FLOP/sample, 27.40 GFLOP/epoch
CNN_MACS = [conv_macs(28, 28, 1, 16, 3, 3),    # conv 16 3x3 same on 28x28x1:  112,896
            conv_macs(14, 14, 16, 32, 3, 3),   # conv 32 3x3 same on 14x14x16: 903,168
            dense_macs(7 * 7 * 32, 64),        # dense 1568 -> 64:             100,352
            dense_macs(64, 10)]                # dense 64 -> 10:                   640
# -> 6*1117056 - 2*112896 = 6,476,544 FLOP/sample, 349.7 GFLOP/epoch
FLOPS = {"mlp": training_flops(MLP_MACS), "cnn": training_flops(CNN_MACS)}


def make_config(name):
    m = re.fullmatch(r"(mlp|cnn)(\d+)", name)
    if not m:
        sys.exit(f"bench: unknown config {name!r} (mlpB or cnnB, B the batch size)")
    kind, batch = m.group(1), int(m.group(2))
    mlp = kind == "mlp"
    return {
        "name": name, "kind": kind, "batch": batch,
        "model": "MLP 784-128-128-10" if mlp else "CNN (fashion_cnn)",
        "spec": "specs/mnist_mlp.yaml" if mlp else "specs/fashion_cnn.yaml",
        "torch": "bench/torch_mlp.py" if mlp else "bench/torch_cnn.py",
        "epochs": EPOCHS if mlp else CNN_EPOCHS,
        "limit": MLP_LIMIT if mlp else CNN_LIMIT,
        "flops_per_sample": FLOPS[kind],
        "sgemm_set": f"{kind}_b{batch}",
    }


# ---------------------------------------------------------------------------------------
# processes, with their peak RSS, CPU time, and how busy the rest of the machine was

def cpu_ticks():
    """(busy, steal) jiffies of the whole machine from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return user + nice + system + irq + softirq + steal, steal


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


NCPU = os.cpu_count() or 1
CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def run_proc(cmd, env_extra, log_path, timeout=3600):
    """Run cmd (stdout and stderr into log_path); its rc, wall time, peak RSS (from
    wait4), CPU time, and the share of the machine's CPU other processes used meanwhile."""
    env = dict(os.environ)
    for k, v in env_extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    load = loadavg()
    t_before = cpu_ticks()
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    t_after = cpu_ticks()
    own = ru.ru_utime + ru.ru_stime
    r = {"cmd": cmd, "env": env_extra, "rc": p.returncode, "wall_seconds": round(wall, 4),
         "peak_rss_mb": round(ru.ru_maxrss / 1024.0, 1), "cpu_seconds": round(own, 4),
         "load1_before": load[0] if load else None, "log": os.path.relpath(log_path, ROOT)}
    if t_before and t_after and wall > 0:
        busy = (t_after[0] - t_before[0]) / CLK
        r["other_cpu_share"] = round(max(0.0, busy - own) / (wall * NCPU), 4)
        r["steal_share"] = round((t_after[1] - t_before[1]) / CLK / (wall * NCPU), 4)
    return r


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# specnet

COMPILE_RE = re.compile(r"compiled in ([\d.]+) ms(, from the cache)? \(([^)]*)\)")


def parse_compile(text):
    m = COMPILE_RE.search(text)
    if not m:
        return None
    stages = {}
    for part in m.group(3).split(","):
        kv = part.strip().rsplit(" ", 1)
        if len(kv) == 2:
            try:
                stages[kv[0]] = float(kv[1])
            except ValueError:
                pass
    return {"ms": float(m.group(1)), "cached": bool(m.group(2)), "stages": stages,
            "line": m.group(0)}


def limit_set(cfg, split="train"):
    if not cfg["limit"]:
        return []
    return ["--set", f"data.{split}={{builtin: fashion_mnist, split: {split}, "
                     f"limit: {cfg['limit']}}}"]


def specnet_train(cfg, threads, rep, cache_dir):
    tag = f"specnet-{cfg['name']}-t{threads}-r{rep}"
    run_dir = os.path.join(OUT, "runs", tag)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [SPECNET, "train", cfg["spec"], "--out", run_dir, "--no-cache",
           "--threads", str(threads),
           "--set", f"train.epochs={cfg['epochs']}", "--set", f"train.batch_size={cfg['batch']}"]
    cmd += limit_set(cfg)
    if QUICK:  # a shorter evaluation too; it is not timed, it only costs wall time
        cmd += ["--set", "data.test={builtin: fashion_mnist, split: test, limit: 1000}"]
    env = {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "SPECNET_CACHE_DIR": cache_dir, "SPECNET_PROFILE": None}
    r = run_proc(cmd, env, os.path.join(OUT, "runs", tag + ".log"))
    r.update({"tool": "specnet", "config": cfg["name"], "threads": threads, "repeat": rep,
              "epochs": []})
    with open(os.path.join(ROOT, r["log"])) as f:
        r["compile"] = parse_compile(f.read())
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                r["epochs"].append({
                    "epoch": e["epoch"], "seconds": e["seconds"],
                    "samples": round(e["samples_per_second"] * e["seconds"]),
                    "loss": e.get("loss"), "test_accuracy": e.get("test_accuracy")})
    except (OSError, ValueError, KeyError) as e:
        r["error"] = f"no metrics: {e}"
    return r


def compile_times(spec):
    """Cold (empty cache folder and --no-cache) and cached (second compile of the same
    spec with the cache on) compile times of a spec, from `specnet train` with
    train.epochs=0 (compile, initialize, write the weights; no training)."""
    res = {"spec": spec, "cold": [], "cached": []}
    base = ["--set", "train.epochs=0", "--threads", "1"]
    for i in range(COMPILE_REPEATS):
        d = tempfile.mkdtemp(prefix="specnet-bench-cache-")
        r = run_proc([SPECNET, "train", spec, "--out", os.path.join(OUT, "runs", "compile"),
                      "--no-cache"] + base, {"SPECNET_CACHE_DIR": d, "OPENBLAS_NUM_THREADS": 1},
                     os.path.join(OUT, "runs", f"compile-cold-{os.path.basename(spec)}-{i}.log"))
        with open(os.path.join(ROOT, r["log"])) as f:
            r["compile"] = parse_compile(f.read())
        res["cold"].append(r)
        shutil.rmtree(d, ignore_errors=True)
    d = tempfile.mkdtemp(prefix="specnet-bench-cache-")
    for i in range(COMPILE_REPEATS + 1):  # the first one fills the cache
        r = run_proc([SPECNET, "train", spec, "--out", os.path.join(OUT, "runs", "compile")]
                     + base, {"SPECNET_CACHE_DIR": d, "OPENBLAS_NUM_THREADS": 1},
                     os.path.join(OUT, "runs", f"compile-cache-{os.path.basename(spec)}-{i}.log"))
        with open(os.path.join(ROOT, r["log"])) as f:
            r["compile"] = parse_compile(f.read())
        if i == 0:
            res["cache_fill"] = r
        else:
            res["cached"].append(r)
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(os.path.join(OUT, "runs", "compile"), ignore_errors=True)
    return res


# ---------------------------------------------------------------------------------------
# PyTorch

def torch_train(cfg, threads, rep):
    tag = f"pytorch-{cfg['name']}-t{threads}-r{rep}"
    cmd = [PYTHON, cfg["torch"], str(cfg["batch"]), str(cfg["epochs"]), str(threads)]
    if cfg["limit"]:
        cmd += ["--limit", str(cfg["limit"])]
    if QUICK:
        cmd += ["--no-test"]
    env = {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads,
           "OMP_WAIT_POLICY": None if TORCH_OMP_WAIT == "default" else TORCH_OMP_WAIT}
    r = run_proc(cmd, env, os.path.join(OUT, "runs", tag + ".jsonl"))
    r.update({"tool": "pytorch", "config": cfg["name"], "threads": threads, "repeat": rep,
              "epochs": []})
    acc = None
    with open(os.path.join(ROOT, r["log"])) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if "skipped" in e:
                r["skipped"] = e["skipped"]
            elif "epoch" in e:
                r["epochs"].append({"epoch": e["epoch"], "seconds": e["seconds"],
                                    "samples": e["samples"], "loss": e["loss"]})
            elif "test_accuracy" in e:
                acc = e["test_accuracy"]
    if r["epochs"] and acc is not None:
        r["epochs"][-1]["test_accuracy"] = acc
    if r["rc"] != 0 and "skipped" not in r:
        r["error"] = f"exit status {r['rc']}"
    return r


def torch_available():
    if not os.path.exists(PYTHON):
        return f"{PYTHON} not found (set PYTHON=...)"
    p = subprocess.run([PYTHON, "-c", "import torch, numpy; print(torch.__version__)"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"PyTorch is not importable from {PYTHON}: " + \
            (p.stderr.strip().splitlines() or ["?"])[-1]
    return None


# ---------------------------------------------------------------------------------------
# the machine

def sh(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
        return p.stdout.strip() if p.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine(torch_missing):
    m = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
         "hostname_hash": None, "cores": NCPU, "kernel": platform.release()}
    lscpu = sh(["lscpu"]) or ""
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        k, v = k.strip(), v.strip()
        if k in ("Model name", "Vendor ID", "CPU family", "Model", "Hypervisor vendor",
                 "L2 cache", "L3 cache", "Thread(s) per core", "Core(s) per socket"):
            m["lscpu_" + k.lower().replace(" ", "_").replace("(s)", "s")] = v
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    m["flags"] = {f: f in flags for f in ("avx2", "fma", "avx512f")}
    try:
        with open("/proc/meminfo") as f:
            m["mem_total_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/etc/debian_version") as f:
            m["debian"] = f.read().strip()
    except OSError:
        pass
    m["specnet_version"] = sh([SPECNET, "--version"])
    m["llvm"] = sh(["llvm-config-19", "--version"]) or sh(["llvm-config", "--version"])
    m["cc"] = (sh(["cc", "--version"]) or "").split("\n")[0] or None
    m["git_head"] = sh(["git", "rev-parse", "--short", "HEAD"])
    diff = sh(["git", "diff", "--shortstat", "HEAD"])
    m["git_uncommitted"] = diff or "none"
    if not torch_missing:
        m["torch"] = sh([PYTHON, "-c", "import torch; print(torch.__version__)"])
        m["torch_parallel"] = sh([PYTHON, "-c", "import torch; print(torch.__config__.parallel_info())"])
    return m


def sgemm_peak():
    if not os.path.exists(SGEMM):
        return None, f"{SGEMM} not built (bench/run.sh builds it with cc ... -lopenblas)"
    cmd = [SGEMM] + (["--quick"] if QUICK else []) + ["--threads", ",".join(map(str, THREADS))]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"sgemm_peak failed: {p.stderr.strip()}"
    return json.loads(p.stdout), None


# ---------------------------------------------------------------------------------------
# summary

def med(xs):
    return statistics.median(xs) if xs else None


def summarize(configs, runs, sg, compiles):
    """Per config: each tool's median s/epoch per thread count and at its best."""
    peak = {}
    floors = {}
    if sg:
        for s in sg["steps"]:
            if s["set"] == "square":
                peak[s["threads"]] = s["gflops"]
            floors.setdefault(s["set"], {})[s["threads"]] = s["seconds"]
    out = {}
    for cfg in configs:
        c = {"tools": {}}
        for tool in ("specnet", "pytorch"):
            per = {}
            for t in THREADS:
                rs = [r for r in runs if r["tool"] == tool and r["config"] == cfg["name"]
                      and r["threads"] == t]
                eps = [e for r in rs for e in r["epochs"]]
                if not eps:
                    continue
                samples = eps[0]["samples"]
                secs = [e["seconds"] for e in eps]
                accs = [e["test_accuracy"] for e in eps if e.get("test_accuracy") is not None]
                per[t] = {
                    "median_seconds": med(secs), "min_seconds": min(secs),
                    "max_seconds": max(secs), "n": len(secs), "samples": samples,
                    "seconds_per_54k": med(secs) * EPOCH_SAMPLES / samples,
                    "gflops": cfg["flops_per_sample"] * samples / med(secs) * 1e-9,
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                    "test_accuracy": accs[-1] if accs else None,
                }
            if per:
                best = min(per, key=lambda t: per[t]["median_seconds"])
                c["tools"][tool] = {"per_threads": per, "best_threads": best, **per[best]}
        s, p = c["tools"].get("specnet"), c["tools"].get("pytorch")
        if s and p:
            c["ratio"] = s["seconds_per_54k"] / p["seconds_per_54k"]
        if s and peak.get(2):
            c["specnet_share_of_2thread_peak"] = s["gflops"] / peak[2]
        if cfg["sgemm_set"] in floors:
            fl = floors[cfg["sgemm_set"]]
            t = min(fl, key=fl.get)
            c["sgemm_floor_seconds_per_54k"] = fl[t] * EPOCH_SAMPLES / cfg["batch"]
            c["sgemm_floor_threads"] = t
        out[cfg["name"]] = c
    comp = {}
    for spec, res in compiles.items():
        cold = [r["compile"]["ms"] for r in res["cold"] if r.get("compile")]
        cached = [r["compile"]["ms"] for r in res["cached"]
                  if r.get("compile") and r["compile"]["cached"]]
        llvm = [r["compile"]["stages"].get("llvm") for r in res["cold"]
                if r.get("compile") and "llvm" in r["compile"]["stages"]]
        in_runs = [r["compile"]["ms"] for r in runs
                   if r["tool"] == "specnet" and r.get("compile")
                   and next(c for c in configs if c["name"] == r["config"])["spec"] == spec]
        comp[spec] = {"cold_median_ms": med(cold), "cold_ms": cold,
                      "cold_llvm_median_ms": med(llvm),
                      "cached_median_ms": med(cached), "cached_ms": cached,
                      "cold_in_training_runs_median_ms": med(in_runs),
                      "cold_in_training_runs_ms": in_runs}
    return {"configs": out, "compile": comp, "sgemm_peak_gflops": peak}


def f3(x):
    return "n/a" if x is None else f"{x:.3f}"


def report(configs, summ, sg, mach, load, torch_msg, elapsed):
    L = []
    w = L.append
    scaled = any(c["limit"] for c in configs)
    star = " †" if scaled else ""
    w(f"specnet vs PyTorch, one run of bench/run.sh ({'QUICK, ' if QUICK else ''}"
      f"REPEATS={REPEATS}, EPOCHS={EPOCHS}, CNN_EPOCHS={CNN_EPOCHS}, threads {THREADS})")
    w("")
    w(f"| model | batch | specnet s/epoch{star} | PyTorch s/epoch{star} | specnet / PyTorch "
      "| specnet GFLOP/s | % of sgemm peak (2 thr) | PyTorch GFLOP/s | sgemm-only s/epoch |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        s, p = c["tools"].get("specnet"), c["tools"].get("pytorch")
        cell = lambda x: "n/a" if not x else f"{x['seconds_per_54k']:.3f} ({x['best_threads']} thr)"
        ratio = f"{c['ratio']:.2f}" if "ratio" in c else "n/a"
        share = (f"{100 * c['specnet_share_of_2thread_peak']:.0f} %"
                 if "specnet_share_of_2thread_peak" in c else "n/a")
        floor = (f"{c['sgemm_floor_seconds_per_54k']:.3f} ({c['sgemm_floor_threads']} thr)"
                 if "sgemm_floor_seconds_per_54k" in c else "n/a")
        w(f"| {cfg['model']} | {cfg['batch']} | {cell(s)} | {cell(p)} | {ratio} | "
          f"{'n/a' if not s else f'{s[chr(103) + chr(102) + chr(108) + chr(111) + chr(112) + chr(115)]:.1f}'} | "
          f"{share} | {'n/a' if not p else f'{p[chr(103) + chr(102) + chr(108) + chr(111) + chr(112) + chr(115)]:.1f}'} | {floor} |")
    w("")
    if scaled:
        w("† measured on fewer samples (MLP_LIMIT / CNN_LIMIT) and scaled to the "
          f"{EPOCH_SAMPLES:,} samples of a full epoch.")
        w("")
    # per thread count
    w("Median s/epoch per thread count (min-max over all epochs of all repeats, n):")
    w("")
    head = "| model | batch |" + "".join(f" specnet {t} thr |" for t in THREADS) + \
        "".join(f" PyTorch {t} thr |" for t in THREADS)
    w(head)
    w("|---|---:|" + "---:|" * (2 * len(THREADS)))
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        cells = []
        for tool in ("specnet", "pytorch"):
            per = c["tools"].get(tool, {}).get("per_threads", {})
            for t in THREADS:
                x = per.get(t)
                k = EPOCH_SAMPLES / x["samples"] if x else 1
                cells.append("n/a" if not x else
                             f"{x['median_seconds'] * k:.3f} ({x['min_seconds'] * k:.2f}-"
                             f"{x['max_seconds'] * k:.2f}, {x['n']})")
        w(f"| {cfg['model']} | {cfg['batch']} | " + " | ".join(cells) + " |")
    w("")
    # compile, memory, accuracy
    w("| model | batch | specnet peak RSS MB | PyTorch peak RSS MB | specnet test acc. | "
      "PyTorch test acc. |")
    w("|---|---:|---:|---:|---:|---:|")
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        s, p = c["tools"].get("specnet"), c["tools"].get("pytorch")
        rss = lambda x: "n/a" if not x else f"{max(v['peak_rss_mb'] for v in x['per_threads'].values()):.0f}"
        acc = lambda x: "n/a" if not x or x["test_accuracy"] is None else f"{x['test_accuracy']:.4f}"
        w(f"| {cfg['model']} | {cfg['batch']} | {rss(s)} | {rss(p)} | {acc(s)} | {acc(p)} |")
    w("")
    w("| spec | JIT compile cold, ms (median; runs) | of which LLVM, ms | cached, ms (median; runs) "
      "| cold, in the training runs (median, n) |")
    w("|---|---:|---:|---:|---:|")
    for spec, c in summ["compile"].items():
        runs_ = lambda xs: ", ".join(f"{x:.0f}" for x in xs)
        w(f"| {spec} | {f3(c['cold_median_ms'])[:-2] if c['cold_median_ms'] is not None else 'n/a'} "
          f"({runs_(c['cold_ms'])}) | "
          f"{'n/a' if c['cold_llvm_median_ms'] is None else f'{c[chr(99)+chr(111)+chr(108)+chr(100)+chr(95)+chr(108)+chr(108)+chr(118)+chr(109)+chr(95)+chr(109)+chr(101)+chr(100)+chr(105)+chr(97)+chr(110)+chr(95)+chr(109)+chr(115)]:.0f}'} | "
          f"{'n/a' if c['cached_median_ms'] is None else f'{c[chr(99)+chr(97)+chr(99)+chr(104)+chr(101)+chr(100)+chr(95)+chr(109)+chr(101)+chr(100)+chr(105)+chr(97)+chr(110)+chr(95)+chr(109)+chr(115)]:.0f}'} "
          f"({runs_(c['cached_ms'])}) | "
          f"{'n/a' if c['cold_in_training_runs_median_ms'] is None else f'{c[chr(99)+chr(111)+chr(108)+chr(100)+chr(95)+chr(105)+chr(110)+chr(95)+chr(116)+chr(114)+chr(97)+chr(105)+chr(110)+chr(105)+chr(110)+chr(103)+chr(95)+chr(114)+chr(117)+chr(110)+chr(115)+chr(95)+chr(109)+chr(101)+chr(100)+chr(105)+chr(97)+chr(110)+chr(95)+chr(109)+chr(115)]:.0f}'} "
          f"(n={len(c['cold_in_training_runs_ms'])}) |")
    w("")
    return L
