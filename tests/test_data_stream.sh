#!/usr/bin/env bash
# Samples as stored through the specnet binary (issue 16): the same NPY spec trained
# with its samples read as stored and forced into memory (SPECNET_DATA_IN_MEMORY=1,
# the f32 path of earlier releases) gives bitwise-identical weights and metrics, for
# uint8 images (scale + standardize, a validation split) and float64 features, with
# and without the prefetch thread; shards (a glob) train as the one file they were cut
# from; predict on a stored .npy agrees with eval.
# Data written here with NumPy; exits 77 (skipped) without /usr/bin/python3 + numpy.
set -uo pipefail
specnet=$1
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: no python3-numpy"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

"$py" - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(7)
y = r.integers(0, 3, 700)
img = (r.integers(0, 60, (700, 6, 5)) + 60 * y[:, None, None]).astype(np.uint8)
np.save(d + "/img.npy", img)
np.save(d + "/f64.npy", img.astype(np.float64) / 7.0 + r.normal(0, 0.1, img.shape))
np.save(d + "/y.npy", y.astype(np.int16))
for i, (lo, hi) in enumerate(((0, 250), (250, 251), (251, 700))):  # shards, one of 1 sample
    np.save(d + "/img-%d.npy" % i, img[lo:hi])
    np.save(d + "/y-%d.npy" % i, y[lo:hi].astype(np.int16))
PY
for x in img f64; do
  cat > "$tmp/$x.yaml" <<YAML
specnet: 1
name: stream_$x
seed: 3
data:
  train: {format: npy, x: $x.npy, y: y.npy}
  validation: {split: 0.2}
  preprocess:
    - scale: 0.25
    - standardize
model:
  input: [6, 5]
  layers:
    - flatten
    - dense: {units: 16, activation: relu}
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.01}}
  batch_size: 32
  epochs: 3
  shuffle: true
  metrics: [accuracy]
YAML
  for mode in stored memory; do
    for pf in 1 0; do
      env SPECNET_DATA_IN_MEMORY=$([ $mode = memory ] && echo 1 || echo 0) SPECNET_PREFETCH=$pf \
        "$specnet" train "$tmp/$x.yaml" --out "$tmp/$x-$mode-$pf" --quiet --threads 2 ||
        { echo "FAIL: train $x $mode"; fail=1; }
    done
  done
  for run in stored-0 memory-1 memory-0; do
    check "$x: stored-1 and $run give the same weights" \
      cmp -s "$tmp/$x-stored-1/model.safetensors" "$tmp/$x-$run/model.safetensors"
  done
  check "$x: stored and in memory give the same metrics" "$py" - "$tmp/$x-stored-1" "$tmp/$x-memory-1" <<'PY'
import json, sys
keys = ("loss", "accuracy", "val_loss", "val_accuracy")
a, b = ([{k: json.loads(l)[k] for k in keys} for l in open(d + "/metrics.jsonl")] for d in sys.argv[1:])
assert a == b, (a, b)
assert a[-1]["val_accuracy"] > 0.6, a  # it learned: the test is not vacuous
PY
done

# shards (x: img-*.npy) train exactly as the one file they were cut from
sed 's/x: img.npy, y: y.npy/x: img-*.npy, y: y-*.npy/' "$tmp/img.yaml" > "$tmp/shards.yaml"
"$specnet" train "$tmp/shards.yaml" --out "$tmp/shards" --quiet --threads 2 || { echo "FAIL: train shards"; fail=1; }
check "shards img-*.npy give the weights of img.npy" \
  cmp -s "$tmp/img-stored-1/model.safetensors" "$tmp/shards/model.safetensors"

# predict on the stored file agrees with eval's accuracy on the training split
"$specnet" predict "$tmp/img.yaml" --weights "$tmp/img-stored-1/model.safetensors" \
  --input "$tmp/img.npy" --output "$tmp/pred.csv" >/dev/null 2>&1 || { echo "FAIL: predict"; fail=1; }
check "predict on a stored .npy gives one class per sample, as accurate as training" "$py" - "$tmp" <<'PY'
import csv, sys
import numpy as np
d = sys.argv[1]
y = np.load(d + "/y.npy")
rows = list(csv.reader(open(d + "/pred.csv")))
cls = np.array([int(r[-1]) for r in rows])  # one class per line, no header
assert len(cls) == len(y), (len(cls), len(y))
assert (cls == y).mean() > 0.6, (cls == y).mean()
PY
exit $fail
