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
import signal
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
# Before each timed run, wait up to QUIET_WAIT seconds for a moment when other processes
# use less than QUIET_SHARE of the CPUs (sampled over 2 s); 0: do not wait.
QUIET_WAIT = env_int("QUIET_WAIT", 0)
QUIET_SHARE = float(os.environ.get("QUIET_SHARE", "0.15"))
# One extra specnet run per configuration with --profile (not timed): where the time goes.
PROFILE = env_int("PROFILE", 1)


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
TMP = None  # one temporary folder for all cache folders, removed at the end


def tmpdir():
    return tempfile.mkdtemp(prefix="cache-", dir=TMP)
CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def run_proc(cmd, env_extra, log_path, quiet=True):
    """Run cmd (stdout and stderr into log_path); its rc, wall time, peak RSS (from
    wait4), CPU time, and the share of the machine's CPU other processes used meanwhile.
    quiet: first wait for a calm moment (QUIET_WAIT)."""
    waited, busy_before = wait_quiet() if quiet else (0.0, None)
    env = dict(os.environ)
    for k, v in env_extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    load = loadavg()
    t_before = cpu_ticks()
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    t_after = cpu_ticks()
    own = ru.ru_utime + ru.ru_stime
    r = {"cmd": cmd, "env": env_extra, "rc": p.returncode, "wall_seconds": round(wall, 4),
         "peak_rss_mb": round(ru.ru_maxrss / 1024.0, 1), "cpu_seconds": round(own, 4),
         "load1_before": load[0] if load else None, "log": os.path.relpath(log_path, ROOT)}
    if QUIET_WAIT > 0:
        r["quiet_wait_seconds"], r["busy_share_before"] = waited, busy_before
    if t_before and t_after and wall > 0:
        busy = (t_after[0] - t_before[0]) / CLK
        r["other_cpu_share"] = round(max(0.0, busy - own) / (wall * NCPU), 4)
        r["steal_share"] = round((t_after[1] - t_before[1]) / CLK / (wall * NCPU), 4)
    return r


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def busy_share(seconds=2.0):
    """The share of all CPUs busy over the next `seconds` (nothing of ours runs then)."""
    a = cpu_ticks()
    time.sleep(seconds)
    b = cpu_ticks()
    if not a or not b:
        return 0.0
    return (b[0] - a[0]) / CLK / (seconds * NCPU)


def wait_quiet():
    """Seconds waited for the machine to calm down (QUIET_WAIT), and the last busy share."""
    if QUIET_WAIT <= 0:
        return 0.0, None
    t0 = time.perf_counter()
    while True:
        share = busy_share()
        waited = time.perf_counter() - t0
        if share < QUIET_SHARE or waited >= QUIET_WAIT:
            return round(waited, 1), round(share, 3)


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


def specnet_profile(cfg, threads, cache_dir):
    """One untimed 1-epoch specnet run with --profile: the kernels of the training step
    (grad_step and the optimizer update), slowest first."""
    tag = f"profile-{cfg['name']}-t{threads}"
    run_dir = os.path.join(OUT, "runs", tag)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [SPECNET, "train", cfg["spec"], "--out", run_dir, "--quiet", "--profile",
           "--threads", str(threads), "--set", "train.epochs=1",
           "--set", f"train.batch_size={cfg['batch']}"] + limit_set(cfg)
    env = {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "SPECNET_CACHE_DIR": cache_dir}
    r = run_proc(cmd, env, os.path.join(OUT, "runs", tag + ".txt"))
    kernels = []
    with open(os.path.join(ROOT, r["log"])) as f:
        for line in f:
            m = re.match(r"\s*([\d.]+)\s+([\d.]+)%\s+(\d+)\s+([\d.]+)\s+(.*\S)", line)
            if m and (m.group(5).startswith("grad_step") or m.group(5).startswith("update")):
                kernels.append({"seconds": float(m.group(1)), "calls": int(m.group(3)),
                                "us_per_call": float(m.group(4)), "kernel": m.group(5)})
    total = sum(k["seconds"] for k in kernels)
    for k in kernels:
        k["share_of_step"] = k["seconds"] / total if total else None
    # GEMM-like: the GEMM calls, the implicit-GEMM convolutions (conv_gemm and its
    # gradients) and the direct convolution's kernels (conv, conv_wgrad)
    gemm = sum(k["seconds"] for k in kernels
               if re.search(r" gemm | conv_gemm| kernel: conv ", k["kernel"]))
    epoch_seconds = None
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            epoch_seconds = json.loads(f.readline())["seconds"]
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"config": cfg["name"], "threads": threads, "log": r["log"], "rc": r["rc"],
            "epoch_seconds": epoch_seconds, "other_cpu_share": r.get("other_cpu_share"),
            "train_step_kernel_seconds": total, "gemm_seconds": gemm,
            "kernels": sorted(kernels, key=lambda k: -k["seconds"])}


def compile_times(spec):
    """Cold (empty cache folder and --no-cache) and cached (second compile of the same
    spec with the cache on) compile times of a spec, from `specnet train` with
    train.epochs=0 (compile, initialize, write the weights; no training)."""
    res = {"spec": spec, "cold": [], "cached": []}
    base = ["--set", "train.epochs=0", "--threads", "1"]
    for i in range(COMPILE_REPEATS):
        d = tmpdir()
        r = run_proc([SPECNET, "train", spec, "--out", os.path.join(OUT, "runs", "compile"),
                      "--no-cache"] + base, {"SPECNET_CACHE_DIR": d, "OPENBLAS_NUM_THREADS": 1},
                     os.path.join(OUT, "runs", f"compile-cold-{os.path.basename(spec)}-{i}.log"))
        with open(os.path.join(ROOT, r["log"])) as f:
            r["compile"] = parse_compile(f.read())
        res["cold"].append(r)
        shutil.rmtree(d, ignore_errors=True)
    d = tmpdir()
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
         "cores": NCPU, "kernel": platform.release()}
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
    """One run of bench/sgemm_peak.c: (its JSON, None) or (None, why not)."""
    if not os.path.exists(SGEMM):
        return None, f"{SGEMM} not built (bench/run.sh builds it with cc ... -lopenblas)"
    wait_quiet()
    cmd = [SGEMM] + (["--quick"] if QUICK else []) + ["--threads", ",".join(map(str, THREADS))]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"sgemm_peak failed: {p.stderr.strip()}"
    return json.loads(p.stdout), None


def sgemm_best(measurements):
    """The machine's capability from several sgemm_peak runs (at the start and at the end
    of the benchmark, so that a busy moment does not set the peak): per GEMM and per step,
    the fastest of the runs."""
    ms = [m for m in measurements if m]
    if not ms:
        return None
    best = dict(ms[0])
    for key in ("gemms", "steps"):
        pick = {}
        for m in ms:
            for g in m[key]:
                k = (g["set"], g.get("name"), g["threads"])
                if k not in pick or g["seconds"] < pick[k]["seconds"]:
                    pick[k] = g
        best[key] = list(pick.values())
    best["runs"] = len(ms)
    return best


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


def fmt(x, spec=".3f", none="n/a"):
    return none if x is None else format(x, spec)


def report(configs, summ, sg, mach, env_info, profiles):
    """The Markdown report, as lines."""
    L = []
    w = L.append
    scaled = any(c["limit"] for c in configs)
    star = " †" if scaled else ""
    w(f"specnet vs PyTorch, one run of bench/run.sh ({'QUICK=1, ' if QUICK else ''}"
      f"REPEATS={REPEATS}, EPOCHS={EPOCHS}, CNN_EPOCHS={CNN_EPOCHS}, "
      f"threads {' and '.join(map(str, THREADS))}), {mach['date']}")
    w("")
    w(f"| model | batch | specnet s/epoch{star} | PyTorch s/epoch{star} | specnet / PyTorch "
      "| specnet GFLOP/s | % of sgemm peak (2 thr) | PyTorch GFLOP/s | sgemm-only s/epoch |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        s, p = c["tools"].get("specnet"), c["tools"].get("pytorch")

        def best(x):
            return "n/a" if not x else f"{x['seconds_per_54k']:.3f} ({x['best_threads']} thr)"

        ratio = fmt(c.get("ratio"), ".2f")
        share = c.get("specnet_share_of_2thread_peak")
        share = "n/a" if share is None else f"{100 * share:.0f} %"
        floor = "n/a"
        if "sgemm_floor_seconds_per_54k" in c:
            floor = f"{c['sgemm_floor_seconds_per_54k']:.3f} ({c['sgemm_floor_threads']} thr)"
        sg_s = fmt(s and s["gflops"], ".1f")
        sg_p = fmt(p and p["gflops"], ".1f")
        w(f"| {cfg['model']} | {cfg['batch']} | {best(s)} | {best(p)} | {ratio} | {sg_s} | "
          f"{share} | {sg_p} | {floor} |")
    w("")
    if scaled:
        w(f"† measured on fewer samples (MLP_LIMIT={MLP_LIMIT}, CNN_LIMIT={CNN_LIMIT} images, "
          f"less the 10% validation split) and scaled to the {EPOCH_SAMPLES:,} samples of a "
          "full epoch.")
        w("")

    w("Median s/epoch at each thread count (min-max over all epochs of all repeats; n epochs):")
    w("")
    w("| model | batch |" + "".join(f" specnet {t} thr |" for t in THREADS)
      + "".join(f" PyTorch {t} thr |" for t in THREADS))
    w("|---|---:|" + "---:|" * (2 * len(THREADS)))
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        cells = []
        for tool in ("specnet", "pytorch"):
            per = c["tools"].get(tool, {}).get("per_threads", {})
            for t in THREADS:
                x = per.get(t)
                if not x:
                    cells.append("n/a")
                    continue
                k = EPOCH_SAMPLES / x["samples"]
                cells.append(f"{x['median_seconds'] * k:.3f} ({x['min_seconds'] * k:.2f}-"
                             f"{x['max_seconds'] * k:.2f}; {x['n']})")
        w(f"| {cfg['model']} | {cfg['batch']} | " + " | ".join(cells) + " |")
    w("")

    w("| model | batch | specnet peak RSS, MB | PyTorch peak RSS, MB | specnet test acc. | "
      "PyTorch test acc. |")
    w("|---|---:|---:|---:|---:|---:|")
    for cfg in configs:
        c = summ["configs"][cfg["name"]]
        cells = []
        for tool in ("specnet", "pytorch"):
            x = c["tools"].get(tool)
            cells.append("n/a" if not x else
                         f"{max(v['peak_rss_mb'] for v in x['per_threads'].values()):.0f}")
        for tool in ("specnet", "pytorch"):
            x = c["tools"].get(tool)
            cells.append(fmt(x and x["test_accuracy"], ".4f"))
        w(f"| {cfg['model']} | {cfg['batch']} | " + " | ".join(cells) + " |")
    w("")

    w("| spec | JIT compile, cold: median (each run), ms | of which LLVM, ms | cached: median "
      "(each run), ms | cold, in the training runs: median (n), ms |")
    w("|---|---:|---:|---:|---:|")
    for spec, c in summ["compile"].items():
        def each(xs):
            return ", ".join(f"{x:.0f}" for x in xs)
        w(f"| {spec} | {fmt(c['cold_median_ms'], '.0f')} ({each(c['cold_ms'])}) | "
          f"{fmt(c['cold_llvm_median_ms'], '.0f')} | "
          f"{fmt(c['cached_median_ms'], '.0f')} ({each(c['cached_ms'])}) | "
          f"{fmt(c['cold_in_training_runs_median_ms'], '.0f')} "
          f"({len(c['cold_in_training_runs_ms'])}) |")
    w("")

    if sg:
        w(f"Measured OpenBLAS sgemm (bench/sgemm_peak.c; the faster of {sg.get('runs', 1)} runs, at the start and the end), GFLOP/s: a large square product, and "
          "all GEMMs of one training step at each model's shapes:")
        w("")
        sets = []
        for s in sg["steps"]:
            if s["set"] not in sets:
                sets.append(s["set"])
        w("| threads | " + " | ".join(sets) + " |")
        w("|---:|" + "---:|" * len(sets))
        for t in THREADS:
            row = {s["set"]: s for s in sg["steps"] if s["threads"] == t}
            w(f"| {t} | " + " | ".join(fmt(row.get(x, {}).get("gflops"), ".1f") for x in sets)
              + " |")
        w("")

    if profiles:
        w("Where specnet's training step spends its time (one untimed --profile run per "
          "configuration at specnet's best thread count; grad_step and update only):")
        w("")
        w("| model | batch | thr | epoch, s | in step kernels | of which GEMMs | slowest kernels "
          "(share of the step's kernel time) |")
        w("|---|---:|---:|---:|---:|---:|---|")
        for pr in profiles:
            cfg = next(c for c in configs if c["name"] == pr["config"])
            tot = pr["train_step_kernel_seconds"]
            top = "; ".join(
                f"{short_kernel(k['kernel'])} {100 * k['share_of_step']:.0f} %"
                for k in pr["kernels"][:4])
            gshare = f"{100 * pr['gemm_seconds'] / tot:.0f} %" if tot else "n/a"
            ep = pr["epoch_seconds"]
            kshare = f"{100 * tot / ep:.0f} %" if ep and tot else "n/a"
            w(f"| {cfg['model']} | {cfg['batch']} | {pr['threads']} | {fmt(ep)} | {kshare} | "
              f"{gshare} | {top or 'n/a'} |")
        w("")

    w("Targets (issue 7):")
    w("")
    w("| target | now | met |")
    w("|---|---|---|")
    for name, now, met in targets(configs, summ):
        w(f"| {name} | {now} | {'yes' if met else ('n/a' if met is None else 'no')} |")
    w("")

    cpu = mach.get("lscpu_model_name", "?")
    flags = ", ".join(k for k, v in mach.get("flags", {}).items() if v)
    w(f"Machine: {cpu}, {mach['cores']} cores ({flags}), "
      f"{mach.get('lscpu_hypervisor_vendor', 'no') or 'no'} hypervisor, "
      f"{mach.get('mem_total_gb', '?')} GB; Debian {mach.get('debian', '?')}; "
      f"{(sg or {}).get('openblas', {}).get('config', 'OpenBLAS ?')}; LLVM {mach.get('llvm', '?')}; "
      f"PyTorch {mach.get('torch', 'n/a')}; specnet at {mach.get('git_head', '?')} "
      f"(uncommitted: {mach.get('git_uncommitted')}).")
    w(f"Load: 1-minute load average {env_info['load_before']} before, {env_info['load_after']} "
      f"after; during the timed runs, other processes used {env_info['other_cpu_share_text']} "
      f"of the machine's CPU (median per run; max {env_info['other_cpu_max_text']}); "
      f"{env_info['elapsed_min']:.1f} min in all"
      + (f", of which {env_info['quiet_wait_total_seconds'] / 60:.1f} min waiting for calm "
         f"moments (QUIET_WAIT={QUIET_WAIT})" if QUIET_WAIT > 0 else "") + ".")
    return L


def short_kernel(name):
    """'grad_step k12 gemm f32[N,128]^T x f32[N,784] (dense1)' -> 'gemm [N,128]^T x [N,784] (dense1)'."""
    name = re.sub(r"^grad_step (k\d+ )?", "", name)
    name = name.replace("kernel: ", "").replace("f32", "")
    return name if len(name) <= 48 else name[:45] + "..."


def targets(configs, summ):
    """(what, where we stand, met: True/False/None) for issue 7's targets."""
    out = []
    cs = summ["configs"]
    c = cs.get("mlp32")
    r = c and c.get("ratio")
    out.append(("MLP batch 32: specnet <= 0.2x PyTorch s/epoch",
                "n/a" if r is None else f"{r:.2f}x", None if r is None else r <= 0.2))
    c = cs.get("mlp256")
    sh_ = c and c.get("specnet_share_of_2thread_peak")
    peak2 = summ["sgemm_peak_gflops"].get(2)
    out.append(("MLP batch 256: >= 50% of measured 2-thread sgemm GFLOP/s",
                "n/a" if sh_ is None else
                f"{100 * sh_:.0f} % ({c['tools']['specnet']['gflops']:.1f} of {peak2:.1f})",
                None if sh_ is None else sh_ >= 0.5))
    comp = summ["compile"].get("specs/mnist_mlp.yaml")
    ms = comp and comp["cold_median_ms"]
    out.append(("seed spec JIT compile <= 150 ms cold", "n/a" if ms is None else f"{ms:.0f} ms",
                None if ms is None else ms <= 150))
    rss = [v["peak_rss_mb"] for cfg in configs if cfg["kind"] == "mlp"
           for v in cs[cfg["name"]]["tools"].get("specnet", {}).get("per_threads", {}).values()]
    out.append(("seed MLP peak RSS <= 400 MB",
                "n/a" if not rss else f"{max(rss):.0f} MB (largest run)",
                None if not rss else max(rss) <= 400))
    c = cs.get("cnn64")
    r = c and c.get("ratio")
    out.append(("CNN batch 64: faster than PyTorch", "n/a" if r is None else f"{r:.2f}x",
                None if r is None else r < 1))
    return out


def main():
    global TMP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: clauses
    TMP = tempfile.mkdtemp(prefix="specnet-bench-")
    try:
        bench()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def bench():
    t_start = time.perf_counter()
    configs = [make_config(n) for n in CONFIG_NAMES]
    shutil.rmtree(os.path.join(OUT, "runs"), ignore_errors=True)  # this run's logs only
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)
    if not os.access(os.path.join(ROOT, SPECNET) if not os.path.isabs(SPECNET) else SPECNET,
                     os.X_OK):
        sys.exit(f"bench: {SPECNET} not found; build it first (./build.sh build) or set SPECNET=")
    torch_msg = torch_available()
    if torch_msg:
        log(f"bench: skipping PyTorch: {torch_msg}")
    load_before = loadavg()
    stat_before = cpu_ticks()
    mach = machine(torch_msg)

    log("bench: measuring OpenBLAS sgemm (bench/sgemm_peak.c) ...")
    sg_first, sg_msg = sgemm_peak()
    if sg_msg:
        log(f"bench: {sg_msg}; GFLOP/s peaks will read n/a")

    compiles = {}
    for spec in dict.fromkeys(c["spec"] for c in configs):
        log(f"bench: compile times of {spec} (cold x{COMPILE_REPEATS}, cached x{COMPILE_REPEATS}) ...")
        compiles[spec] = compile_times(spec)

    runs = []
    cache_dir = tmpdir()
    total = REPEATS * len(configs) * len(THREADS) * (1 if torch_msg else 2)
    k = 0
    try:
        for rep in range(1, REPEATS + 1):
            for cfg in configs:
                for t in THREADS:
                    # alternate: specnet then PyTorch on odd repeats, the other way on even
                    order = ["specnet", "pytorch"] if rep % 2 else ["pytorch", "specnet"]
                    for tool in order:
                        if tool == "pytorch" and torch_msg:
                            continue
                        k += 1
                        r = (specnet_train(cfg, t, rep, cache_dir) if tool == "specnet"
                             else torch_train(cfg, t, rep))
                        runs.append(r)
                        secs = [e["seconds"] for e in r["epochs"]]
                        what = (f"{med(secs):.3f} s/epoch over {r['epochs'][0]['samples']} samples"
                                if secs else f"FAILED ({r.get('error') or r.get('skipped')}; "
                                             f"see {r['log']})")
                        log(f"[{k}/{total}] repeat {rep}: {cfg['name']} {tool} {t} thr: {what}; "
                            f"{r['wall_seconds']:.1f} s wall, {r['peak_rss_mb']:.0f} MB, "
                            f"others used {100 * r.get('other_cpu_share', 0):.0f} % of the CPUs")
        sg_last = None
        if sg_first:
            log("bench: measuring OpenBLAS sgemm again ...")
            sg_last, _ = sgemm_peak()
        sg = sgemm_best([sg_first, sg_last])
        profiles = []
        if PROFILE:
            for cfg in configs:
                rs = [r for r in runs if r["tool"] == "specnet" and r["config"] == cfg["name"]
                      and r["epochs"]]
                per = {t: med([e["seconds"] for r in rs if r["threads"] == t for e in r["epochs"]])
                       for t in {r["threads"] for r in rs}}
                t = min(per, key=per.get) if per else THREADS[0]
                log(f"bench: one --profile run of {cfg['name']} at {t} thread(s) ...")
                profiles.append(specnet_profile(cfg, t, cache_dir))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    summ = summarize(configs, runs, sg, compiles)
    stat_after = cpu_ticks()
    elapsed = time.perf_counter() - t_start
    others = sorted(r["other_cpu_share"] for r in runs if "other_cpu_share" in r)
    env_info = {
        "load_before": load_before[0] if load_before else "?",
        "load_after": (loadavg() or ["?"])[0],
        "other_cpu_share_median": med(others),
        "other_cpu_share_max": others[-1] if others else None,
        "other_cpu_share_text": f"{100 * med(others):.0f} %" if others else "?",
        "other_cpu_max_text": f"{100 * others[-1]:.0f} %" if others else "?",
        "elapsed_min": elapsed / 60,
        "quiet_wait_total_seconds": sum(r.get("quiet_wait_seconds", 0) for r in runs),
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    }
    if stat_before and stat_after:
        env_info["steal_share_overall"] = round(
            (stat_after[1] - stat_before[1]) / CLK / (elapsed * NCPU), 4)
    lines = report(configs, summ, sg, mach, env_info, profiles)
    results = {
        "settings": {"quick": QUICK, "epochs": EPOCHS, "cnn_epochs": CNN_EPOCHS,
                     "repeats": REPEATS, "compile_repeats": COMPILE_REPEATS,
                     "mlp_limit": MLP_LIMIT, "cnn_limit": CNN_LIMIT, "threads": THREADS,
                     "configs": CONFIG_NAMES, "specnet": SPECNET, "python": PYTHON,
                     "torch_omp_wait_policy": TORCH_OMP_WAIT,
                     "epoch_samples": EPOCH_SAMPLES},
        "flops": {"mlp_macs_per_layer": MLP_MACS, "cnn_macs_per_layer": CNN_MACS,
                  "training_flops_per_sample": FLOPS,
                  "rule": "6 x MACs per layer (forward 2, weight grad 2, input grad 2), "
                          "minus the first layer's input gradient (2 x its MACs)"},
        "machine": mach, "load": env_info, "pytorch_skipped": torch_msg,
        "sgemm": sg, "sgemm_runs": [sg_first, sg_last], "sgemm_error": sg_msg,
        "compile": compiles, "runs": runs, "profiles": profiles,
        "summary": summ, "targets": [{"target": a, "now": b, "met": c}
                                     for a, b, c in targets(configs, summ)],
        "markdown": "\n".join(lines),
    }
    path = os.path.join(OUT, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print("\n".join(lines))
    log(f"bench: raw numbers in {os.path.relpath(path, ROOT)}; per-run logs in "
        f"{os.path.relpath(os.path.join(OUT, 'runs'), ROOT)}/")


if __name__ == "__main__":
    main()
