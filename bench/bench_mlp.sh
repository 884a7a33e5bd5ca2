#!/usr/bin/env bash
# The seed-MLP part of bench/run.sh, kept for the old command line:
#
#   EPOCHS=3 REPEATS=2 THREADS="1 2" BATCHES="32 256" bench/bench_mlp.sh
#
# runs bench/run.sh with CONFIGS="mlp32 mlp256" (one mlpB per batch in BATCHES); every
# other option of bench/run.sh applies. The report is on stdout, raw numbers in
# bench/out/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=
for b in ${BATCHES:-32 256}; do configs="$configs mlp$b"; done
CONFIGS=${CONFIGS:-${configs# }} exec bench/run.sh
