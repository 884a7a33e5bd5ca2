#!/usr/bin/env bash
# Seconds per training epoch of the seed model (specs/mnist_mlp.yaml: a 784-128-128-10
# ReLU MLP, Adam, Fashion-MNIST), specnet against PyTorch on the CPU, at batch sizes 32
# and 256. Not part of CI; installs nothing. Build first (./build.sh build), then:
#
#   bench/bench_mlp.sh                      # defaults below
#   EPOCHS=5 REPEATS=3 THREADS="1 2" BATCHES="32 256" bench/bench_mlp.sh
#
# What is timed: each tool's own per-epoch training time, evaluation excluded: specnet's
# `seconds` from metrics.jsonl, PyTorch's from bench/torch_mlp.py. Both train on the
# same 54,000 samples (the spec holds out the last 10% for validation) in shuffled
# batches. Compile time and data loading are outside the epoch for both.
#
# Threads, deliberately: every run is pinned to one thread count T from THREADS, for
# both tools, via OPENBLAS_NUM_THREADS=T and OMP_NUM_THREADS=T in that run's
# environment (specnet's matrix products are OpenBLAS calls; torch also gets
# torch.set_num_threads(T)). Left unset, OpenBLAS starts one thread per core, which at
# batch 32 is often slower than one thread. Each tool is reported at its best T.
#
# Runs alternate (for each repeat: each batch size, each thread count, specnet then
# PyTorch) so that drift in the machine's speed hits both alike. The table shows the
# median over all epochs of all repeats. Raw numbers: bench/out/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-3}
REPEATS=${REPEATS:-2}
THREADS=${THREADS:-"1 2"}
BATCHES=${BATCHES:-"32 256"}
SPECNET=${SPECNET:-build/cli/specnet}
SPEC=${SPEC:-specs/mnist_mlp.yaml}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=bench/out

if [ ! -x "$SPECNET" ]; then
  echo "bench_mlp.sh: $SPECNET not found; build it first: ./build.sh build" >&2
  exit 1
fi
if [ ! -x "$PYTHON" ]; then
  echo "bench_mlp.sh: $PYTHON not found (set PYTHON=...)" >&2
  exit 1
fi
mkdir -p "$OUT"
results=$OUT/results.tsv
printf 'tool\tbatch\tthreads\tepoch\tseconds\ttest_accuracy\n' >"$results"

run_specnet() { # batch threads repeat
  local dir=$OUT/specnet-b$1-t$2-r$3
  rm -rf "$dir"
  OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$2 "$SPECNET" train "$SPEC" \
    --set train.batch_size="$1" --set train.epochs="$EPOCHS" --out "$dir" --quiet
  "$PYTHON" - "$dir/metrics.jsonl" "$1" "$2" >>"$results" <<'EOF'
import json, sys
path, batch, threads = sys.argv[1:4]
for line in open(path):
    r = json.loads(line)
    acc = r.get("test_accuracy")
    print(f"specnet\t{batch}\t{threads}\t{r['epoch']}\t{r['seconds']}\t{'' if acc is None else acc}")
EOF
}

run_torch() { # batch threads
  local log=$OUT/torch-b$1-t$2.jsonl
  OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$2 "$PYTHON" bench/torch_mlp.py "$1" "$EPOCHS" "$2" \
    >"$log"
  "$PYTHON" - "$log" "$1" "$2" >>"$results" <<'EOF'
import json, sys
path, batch, threads = sys.argv[1:4]
rows = [json.loads(line) for line in open(path)]
if rows and "skipped" in rows[0]:
    print(rows[0]["skipped"], file=sys.stderr)
    sys.exit(0)
acc = next((r["test_accuracy"] for r in rows if "test_accuracy" in r), "")
for r in rows:
    if "epoch" in r:
        print(f"pytorch\t{batch}\t{threads}\t{r['epoch']}\t{r['seconds']}\t{acc}")
EOF
}

for rep in $(seq 1 "$REPEATS"); do
  for b in $BATCHES; do
    for t in $THREADS; do
      echo "repeat $rep/$REPEATS: batch $b, $t thread(s): specnet, pytorch" >&2
      run_specnet "$b" "$t" "$rep"
      run_torch "$b" "$t"
    done
  done
done

"$PYTHON" - "$results" <<'EOF'
import csv, statistics, sys
runs = {}  # (tool, batch, threads) -> [seconds per epoch], [test accuracy]
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    secs, accs = runs.setdefault((r["tool"], int(r["batch"]), int(r["threads"])), ([], []))
    secs.append(float(r["seconds"]))
    if r["test_accuracy"]:
        accs.append(float(r["test_accuracy"]))

def best(tool, batch):
    """(median s/epoch, threads, last test accuracy) at the fastest thread count."""
    c = [(statistics.median(s), t, a[-1] if a else None)
         for (tl, b, t), (s, a) in runs.items() if tl == tool and b == batch and s]
    return min(c) if c else None

def cell(x):
    return "n/a" if x is None else f"{x[0]:.3f} ({x[1]} thr)"

def acc(x):
    return "n/a" if x is None or x[2] is None else f"{x[2]:.4f}"

print("| batch | specnet s/epoch (median) | pytorch s/epoch (median, best thread count) "
      "| specnet/pytorch |")
print("|---:|---:|---:|---:|")
batches = sorted({b for (_, b, _) in runs})
for b in batches:
    s, p = best("specnet", b), best("pytorch", b)
    ratio = f"{s[0] / p[0]:.2f}" if s and p else "n/a"
    print(f"| {b} | {cell(s)} | {cell(p)} | {ratio} |")
print()
print("| batch | specnet test accuracy | pytorch test accuracy |")
print("|---:|---:|---:|")
for b in batches:
    print(f"| {b} | {acc(best('specnet', b))} | {acc(best('pytorch', b))} |")
EOF
