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
