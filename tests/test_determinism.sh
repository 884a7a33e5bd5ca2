#!/usr/bin/env bash
# The same spec, seed and thread count twice give identical per-epoch metrics
# (timings aside) and bit-identical weights; a different seed gives different ones.
set -euo pipefail
specnet=$1
spec=tests/specs/train_blobs.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for run in a b; do "$specnet" train "$spec" --out "$tmp/$run" --quiet; done
"$specnet" train "$spec" --out "$tmp/c" --quiet --set seed=1234
strip() { sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$1"; }
strip "$tmp/a/metrics.jsonl" >"$tmp/a.txt"
strip "$tmp/b/metrics.jsonl" >"$tmp/b.txt"
strip "$tmp/c/metrics.jsonl" >"$tmp/c.txt"
test -s "$tmp/a.txt" || { echo "FAIL: no metrics written"; exit 1; }
diff "$tmp/a.txt" "$tmp/b.txt" || { echo "FAIL: same seed, different metrics"; exit 1; }
cmp "$tmp/a/model.safetensors" "$tmp/b/model.safetensors" || { echo "FAIL: same seed, different weights"; exit 1; }
if diff -q "$tmp/a.txt" "$tmp/c.txt" >/dev/null; then echo "FAIL: seed has no effect"; exit 1; fi
echo "ok: identical metrics and weights for the same seed ($(wc -l <"$tmp/a.txt") epochs)"

# The thread count does not change a single bit at batch 32: the small-batch GEMM
# kernels sum in an order independent of how columns are cut across threads, the
# update is elementwise, and batches are gathered the same on the pool.
for t in 1 2 3; do
  "$specnet" train specs/mnist_mlp.yaml --out "$tmp/t$t" --quiet --threads "$t" \
    --set train.epochs=1 --set 'data.train={builtin: fashion_mnist, split: train, limit: 6400}' \
    --set 'data.test={builtin: fashion_mnist, split: test, limit: 500}'
done
cmp "$tmp/t1/model.safetensors" "$tmp/t2/model.safetensors" || { echo "FAIL: --threads 1 and 2 give different weights"; exit 1; }
cmp "$tmp/t1/model.safetensors" "$tmp/t3/model.safetensors" || { echo "FAIL: --threads 1 and 3 give different weights"; exit 1; }
echo "ok: identical weights with 1, 2 and 3 threads (seed MLP, batch 32, 180 steps)"

# Fused kernels whose rows are independent (im2col, pooling, activations) run on
# the thread pool: cut into parts or not, the weights are the same bits.
cnn_args=(--quiet --threads 2 --no-cache --set train.epochs=1
  --set 'data.train={builtin: fashion_mnist, split: train, limit: 640}'
  --set 'data.test={builtin: fashion_mnist, split: test, limit: 100}')
"$specnet" train specs/fashion_cnn.yaml --out "$tmp/rows_par" "${cnn_args[@]}"
SPECNET_SERIAL_ROWS=1 "$specnet" train specs/fashion_cnn.yaml --out "$tmp/rows_serial" "${cnn_args[@]}"
cmp "$tmp/rows_par/model.safetensors" "$tmp/rows_serial/model.safetensors" ||
  { echo "FAIL: row-parallel fused kernels change the CNN's weights"; exit 1; }
echo "ok: row-parallel and serial fused kernels give identical CNN weights"

# The CNN's convolutions sum in orders fixed by the plan, not by the threads
# (conv2d2's conv_gemm_wgrad in 8 parts, conv_gemm_dgrad a sample per task, the
# column sums in parts): 1, 2 and 3 threads give the same weights.
for t in 1 2 3; do
  "$specnet" train specs/fashion_cnn.yaml --out "$tmp/cnn_t$t" --quiet --threads "$t" --no-cache --set train.epochs=1 \
    --set 'data.train={builtin: fashion_mnist, split: train, limit: 640}' \
    --set 'data.test={builtin: fashion_mnist, split: test, limit: 100}'
done
cmp "$tmp/cnn_t1/model.safetensors" "$tmp/cnn_t2/model.safetensors" ||
  { echo "FAIL: the CNN's weights differ between 1 and 2 threads"; exit 1; }
cmp "$tmp/cnn_t1/model.safetensors" "$tmp/cnn_t3/model.safetensors" ||
  { echo "FAIL: the CNN's weights differ between 1 and 3 threads"; exit 1; }
echo "ok: identical CNN weights with 1, 2 and 3 threads"
