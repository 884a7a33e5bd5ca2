#!/usr/bin/env bash
# HDF5 sources (runtime/data_hdf5.c) end to end. h5py writes the files
# (tests/hdf5/make_files.py); test_data_hdf5 (C) checks every dtype and layout
# against numpy's values; then the same samples trained from an NPY file and from
# HDF5 datasets (chunks read directly, gzip chunks through libhdf5) give bitwise the
# same weights and metrics, with a validation split, standardize, and the loader
# thread on and off; the run's resolved spec trains the same; eval reads an HDF5 test
# source; predict reads FILE.h5 and
# FILE.h5:/dataset.
#   tests/test_data_hdf5.sh SPECNET TEST_DATA_HDF5
# Needs /usr/bin/python3 with numpy and h5py (Debian python3-h5py): a failure, not a
# skip, without them.
set -uo pipefail
specnet=$(realpath "$1")
ctest=$(realpath "$2")
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

"$py" "$here/hdf5/make_files.py" "$tmp" || { echo "FAIL: make_files.py (python3-h5py installed?)"; exit 1; }
check "every dtype and layout reads as numpy's values (test_data_hdf5)" "$ctest" "$tmp"

"$py" - "$tmp" <<'PY'
import sys
import h5py
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(5)
y = r.integers(0, 3, 700)
img = (r.integers(0, 60, (700, 6, 5)) + 60 * y[:, None, None]).astype(np.uint8)
np.save(d + "/img.npy", img)
np.save(d + "/y.npy", y.astype(np.int16))
with h5py.File(d + "/img.h5", "w") as f:
    f.create_dataset("train/images", data=img, chunks=(64, 6, 5))   # read directly
    f.create_dataset("train/zipped", data=img, chunks=(50, 6, 5), compression="gzip")
    f.create_dataset("train/labels", data=y.astype(np.int16))
PY
spec() { # NAME SOURCE: the spec training from SOURCE
  cat > "$tmp/$1.yaml" <<YAML
specnet: 1
name: hdf5_$1
seed: 3
data:
  train: $2
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
}
spec npy "{format: npy, x: img.npy, y: y.npy}"
spec direct "{format: hdf5, path: img.h5, x: /train/images, y: /train/labels}"
spec zipped "{format: hdf5, path: img.h5, x: train/zipped, y: train/labels}"
for pf in 1 0; do
  for run in npy direct zipped; do
    SPECNET_PREFETCH=$pf "$specnet" train "$tmp/$run.yaml" --out "$tmp/$run-$pf" --quiet --threads 2 ||
      { echo "FAIL: train $run"; fail=1; }
  done
  for run in direct zipped; do
    check "$run (prefetch $pf): the weights of the NPY run" \
      cmp -s "$tmp/npy-$pf/model.safetensors" "$tmp/$run-$pf/model.safetensors"
    check "$run (prefetch $pf): the metrics of the NPY run" "$py" - "$tmp/npy-$pf" "$tmp/$run-$pf" <<'PY'
import json, sys
keys = ("loss", "accuracy", "val_loss", "val_accuracy")
a, b = ([{k: json.loads(l)[k] for k in keys} for l in open(d + "/metrics.jsonl")] for d in sys.argv[1:])
assert a == b, (a, b)
assert a[-1]["val_accuracy"] > 0.6, a  # it learned: the test is not vacuous
PY
  done
done

# the run's resolved spec names the file absolutely and the datasets as written, and
# trains the same weights from any folder
(cd / && "$specnet" train "$tmp/direct-1/spec.resolved.yaml" --out "$tmp/resolved" --quiet --threads 2) ||
  { echo "FAIL: train spec.resolved.yaml"; fail=1; }
check "spec.resolved.yaml: the weights of the spec" \
  cmp -s "$tmp/direct-1/model.safetensors" "$tmp/resolved/model.safetensors"
check "spec.resolved.yaml: dataset names as written" \
  grep -q 'x: "train/zipped", y: "train/labels"' "$tmp/zipped-1/spec.resolved.yaml"

# eval with an HDF5 test source: the accuracy numpy computes from predict's classes
sed 's|  validation: {split: 0.2}|  test: {format: hdf5, path: img.h5, x: /train/zipped, y: /train/labels, limit: 300}|' \
  "$tmp/direct.yaml" > "$tmp/eval.yaml"
"$specnet" eval "$tmp/eval.yaml" --weights "$tmp/direct-1/model.safetensors" > "$tmp/eval.txt" 2>&1 ||
  { echo "FAIL: eval"; cat "$tmp/eval.txt"; fail=1; }
for input in img.h5 img.h5:/train/zipped img.npy; do
  "$specnet" predict "$tmp/direct.yaml" --weights "$tmp/direct-1/model.safetensors" \
    --input "$tmp/$input" --output "$tmp/pred-${input//[:\/]/_}.csv" >/dev/null 2>"$tmp/pred.err" ||
    { echo "FAIL: predict $input"; cat "$tmp/pred.err"; fail=1; }
done
check "predict: FILE.h5 and FILE.h5:/dataset give the classes of the NPY file" \
  cmp -s "$tmp/pred-img.npy.csv" "$tmp/pred-img.h5.csv"
check "predict: FILE.h5:/dataset" cmp -s "$tmp/pred-img.npy.csv" "$tmp/pred-img.h5__train_zipped.csv"
check "eval's test accuracy is predict's on the first 300 samples" "$py" - "$tmp" <<'PY'
import csv, re, sys
import numpy as np
d = sys.argv[1]
y = np.load(d + "/y.npy")[:300]
cls = np.array([int(r[-1]) for r in csv.reader(open(d + "/pred-img.npy.csv"))])[:300]
text = open(d + "/eval.txt").read()
m = re.search(r"accuracy[^0-9]*([0-9.]+)", text)
assert m, text
assert abs(float(m.group(1)) - (cls == y).mean()) < 1e-4, (m.group(1), (cls == y).mean(), text)
PY
"$specnet" predict "$tmp/npy.yaml" --weights "$tmp/direct-1/model.safetensors" --input "$tmp/img.h5" \
  --output "$tmp/x.csv" >/dev/null 2>"$tmp/pred.err"
check "predict FILE.h5 without a dataset name (the spec is not HDF5) is an error" \
  grep -q "img.h5: which dataset? give --input" "$tmp/pred.err"

# specnet data on FILE.h5:/dataset and on a spec with an HDF5 source: numpy's numbers
"$specnet" data "$tmp/img.h5:/train/zipped" "$tmp/direct.yaml" >"$tmp/data.out" 2>&1 ||
  { echo "FAIL: specnet data"; cat "$tmp/data.out"; fail=1; }
check "specnet data: samples, shape, type, bytes, classes and first samples as numpy reads them" \
  "$py" - "$tmp" <<'PY'
import os, re, sys
import numpy as np
d = sys.argv[1]
text = open(d + "/data.out").read()
img, y = np.load(d + "/img.npy"), np.load(d + "/y.npy")
head, spec = text.split(d + "/direct.yaml", 1)
assert re.search(r"samples +700\n", head) and "sample shape   (6, 5)" in head and "stored as      uint8" in head, head
assert f"bytes on disk  {os.path.getsize(d + '/img.h5')}" in head, head
first = " ".join(str(v) for v in img[1].ravel()[:8])  # the first 8 values, then ...
assert f"sample 1       {first} ...  min {img[1].min()} max {img[1].max()} mean {img[1].mean():.7g}" in head, head
counts = np.bincount(y, minlength=3)  # over the source, before the validation split
assert "class counts   " + " ".join(f"{k}:{c}" for k, c in enumerate(counts)) in spec, spec
PY
"$specnet" data "$tmp/img.h5" >/dev/null 2>"$tmp/data.err"
check "specnet data FILE.h5 without a dataset: exit 1, says how to name one" \
  grep -q "img.h5: which dataset? name it as" "$tmp/data.err"
exit $fail
