#!/usr/bin/env bash
# The performance benchmark of issue 7: specnet against PyTorch (CPU, Debian's
# python3-torch), side by side, in one go. Not part of CI; installs nothing.
#
#   ./build.sh build && bench/run.sh            # the full run: about 14 min on 2 quiet cores
#   QUICK=1 bench/run.sh                        # a smoke run: 1 epoch on 10,800 MLP and
#                                               # 2,700 CNN images, once; about 2-3 min
#
# What runs, alternating specnet and PyTorch (specnet first on odd repeats, PyTorch first
# on even ones), every (model, batch) at every thread count:
#   - the seed MLP, specs/mnist_mlp.yaml (784-128-128-10, Adam), batch 32, 128 and 256,
#     against bench/torch_mlp.py;
#   - the CNN, specs/fashion_cnn.yaml, batch 64, against bench/torch_cnn.py (the same
#     layers in NCHW);
#   - the char transformer of issue 15 (config lm32: tests/interop/char_transformer.yaml,
#     867k parameters, batch 32, context 64, AdamW) against
#     bench/torch_char_transformer.py, per training step (bench/lm_bench.py; LM_STEPS=40
#     steps per run); its table comes after the others.
# Both train on the same 54,000 Fashion-MNIST images per epoch (the specs hold out the
# last 10% of the 60,000 for validation). Timed: each tool's own training seconds per
# epoch (specnet: `seconds` in metrics.jsonl; PyTorch: the loop in torch_common.py);
# compiling, loading data and evaluation are outside it for both.
#
# Reported per configuration: the median s/epoch over all epochs of all repeats, at each
# tool's best thread count (and at every thread count); specnet / PyTorch; achieved
# GFLOP/s (training FLOPs of the matrix products and convolutions, arithmetic in
# bench/bench.py) against the measured sgemm peak of bench/sgemm_peak.c (a 2048^3
# product, 1 and 2 threads) and the "sgemm-only" epoch (all of a step's GEMMs at the
# model's shapes timed alone: the floor if nothing but OpenBLAS ran); peak RSS (wait4);
# the JIT compile time of each spec, cold (empty SPECNET_CACHE_DIR and --no-cache) and
# cached (a second compile with the cache on). The training runs use --no-cache too.
#
# Threads, deliberately: each run is pinned to one thread count T in THREADS:
#   specnet: --threads T and OPENBLAS_NUM_THREADS=T OMP_NUM_THREADS=T;
#   PyTorch: torch.set_num_threads(T), OPENBLAS_NUM_THREADS=T OMP_NUM_THREADS=T
#            MKL_NUM_THREADS=T, and OMP_WAIT_POLICY=PASSIVE (TORCH_OMP_WAIT_POLICY=default
#            leaves it unset: its spinning OpenMP threads then fight OpenBLAS's for the 2
#            cores and PyTorch at 2 threads runs ~10x slower than at 1).
#
# Options (environment):
#   EPOCHS=3          epochs per MLP run            CNN_EPOCHS=1   epochs per CNN run
#   REPEATS=3         runs per (config, tool, T)    COMPILE_REPEATS=3
#   THREADS="1 2"     CONFIGS="mlp32 mlp128 mlp256 cnn64 lm32" (mlpB / cnnB: any batch B;
#                     lm32 the char transformer)
#   MLP_LIMIT=0 CNN_LIMIT=0   train on the first N images only (0: all); the s/epoch
#                     columns are then scaled to 54,000 samples (marked †)
#   QUICK=1           EPOCHS=1 REPEATS=1 COMPILE_REPEATS=1 MLP_LIMIT=12000
#                     CNN_LIMIT=3000, a short test set, a quicker sgemm_peak
#   SPECNET=build/cli/specnet   PYTHON=/usr/bin/python3 (the one with python3-torch)
#   OUT=bench/out
# Output: the Markdown report on stdout, progress on stderr, bench/out/results.json
# (every raw number, the machine, the load), bench/out/runs/ (each run's log).
# Without PyTorch the PyTorch runs are skipped with a message; without a C compiler or
# the OpenBLAS headers, the sgemm columns read n/a.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-bench/out}
SPECNET=${SPECNET:-build/cli/specnet}
export PYTHON OUT SPECNET
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$SPECNET" ]; then
  echo "bench/run.sh: $SPECNET not found; build it first: ./build.sh build (or set SPECNET=)" >&2
  exit 1
fi
if [ ! -x "$PYTHON" ]; then
  echo "bench/run.sh: $PYTHON not found; the harness needs a Python 3 (set PYTHON=)" >&2
  exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OUT

# the sgemm peak probe: rebuilt when its source is newer
SGEMM_PEAK=$OUT/sgemm_peak
export SGEMM_PEAK
if [ ! -x "$SGEMM_PEAK" ] || [ bench/sgemm_peak.c -nt "$SGEMM_PEAK" ]; then
  if ! ${CC:-cc} -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -o "$SGEMM_PEAK" bench/sgemm_peak.c \
      -lopenblas; then
    echo "bench/run.sh: could not build bench/sgemm_peak.c (needs libopenblas-dev); going on without it" >&2
    rm -f "$SGEMM_PEAK"
  fi
fi

# lm32 (the char transformer) has its own harness; bench.py runs the others
CONFIGS=${CONFIGS:-mlp32 mlp128 mlp256 cnn64 lm32}
lm=0 rest=""
for c in $CONFIGS; do
  if [ "$c" = lm32 ]; then lm=1; else rest="$rest $c"; fi
done
if [ -n "$rest" ]; then CONFIGS=${rest# } "$PYTHON" bench/bench.py; fi
if [ $lm = 1 ]; then "$PYTHON" bench/lm_bench.py; fi
