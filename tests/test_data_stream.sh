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
  # stored: streamed from the file; memory: f32 at load; held (the default alone): the
  # file's bytes read whole at the start, converted per batch
  for mode in stored memory held; do
    for pf in 1 0; do
      case $mode in stored) mem=(SPECNET_DATA_IN_MEMORY=0) ;; memory) mem=(SPECNET_DATA_IN_MEMORY=1) ;;
        held) mem=(-u SPECNET_DATA_IN_MEMORY SPECNET_DATA_STATS=1) ;; esac
      env "${mem[@]}" SPECNET_PREFETCH=$pf \
        "$specnet" train "$tmp/$x.yaml" --out "$tmp/$x-$mode-$pf" --quiet --threads 2 2>"$tmp/$x-$mode-$pf.err" ||
        { echo "FAIL: train $x $mode"; fail=1; }
    done
  done
  check "$x: the default holds the small file in memory" grep -q "read .* held in memory" "$tmp/$x-held-1.err"
  for run in stored-0 memory-1 memory-0 held-1 held-0; do
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

# shuffle: {block: N}: blocks of N samples in shuffled order. Block 1 is the plain
# shuffle (the same weights); block 50 reads the same from the file as from memory,
# and still learns
sed 's/  shuffle: true/  shuffle: {block: 1}/' "$tmp/img.yaml" > "$tmp/block1.yaml"
sed 's/  shuffle: true/  shuffle: {block: 50}/' "$tmp/img.yaml" > "$tmp/block50.yaml"
"$specnet" train "$tmp/block1.yaml" --out "$tmp/block1" --quiet --threads 2 || { echo "FAIL: train block1"; fail=1; }
check "shuffle: {block: 1} gives the weights of shuffle: true" \
  cmp -s "$tmp/img-stored-1/model.safetensors" "$tmp/block1/model.safetensors"
for mode in 0 1; do
  SPECNET_DATA_IN_MEMORY=$mode "$specnet" train "$tmp/block50.yaml" --out "$tmp/block50-$mode" --quiet \
    --threads 2 || { echo "FAIL: train block50"; fail=1; }
done
check "shuffle: {block: 50}: stored and in memory give the same weights" \
  cmp -s "$tmp/block50-0/model.safetensors" "$tmp/block50-1/model.safetensors"
check "shuffle: {block: 50}: another order than shuffle: true" \
  bash -c '! cmp -s "$0" "$1"' "$tmp/img-stored-1/model.safetensors" "$tmp/block50-0/model.safetensors"
check "shuffle: {block: 50} learns" "$py" -c '
import json, sys
last = json.loads(open(sys.argv[1]).readlines()[-1])
assert last["val_accuracy"] > 0.6, last' "$tmp/block50-0/metrics.jsonl"
check "the resolved spec keeps shuffle: {block: 50}" grep -q "^  shuffle: {block: 50}$" "$tmp/block50-0/spec.resolved.yaml"

# a YAML list of shards (a glob inside it) trains as the one file too
sed 's/x: img.npy, y: y.npy/x: [img-0.npy, "img-[12].npy"], y: [y-0.npy, y-1.npy, y-2.npy]/' \
  "$tmp/img.yaml" > "$tmp/list.yaml"
"$specnet" train "$tmp/list.yaml" --out "$tmp/list" --quiet --threads 2 || { echo "FAIL: train list"; fail=1; }
check "a list of shards gives the weights of img.npy" \
  cmp -s "$tmp/img-stored-1/model.safetensors" "$tmp/list/model.safetensors"

# CSV shards: a list and a glob train as the one file they were cut from
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(5)
y = r.integers(0, 3, 300)
x = r.normal(0, 1, (300, 4)) + y[:, None]
rows = ["%r,%r,%r,%r,%d" % (*map(float, x[i]), y[i]) for i in range(300)]
head = "a,b,c,d,label\n"
open(d + "/all.csv", "w").write(head + "\n".join(rows) + "\n")
for i, (lo, hi) in enumerate(((0, 120), (120, 121), (121, 300))):
    open(d + "/part-%d.csv" % i, "w").write(head + "\n".join(rows[lo:hi]) + "\n")
open(d + "/other.csv", "w").write("a,b,c,e,label\n" + "\n".join(rows[:5]) + "\n")
PY
for form in all '[part-0.csv, "part-[12].csv"]' '"part-*.csv"' '[part-0.csv, other.csv]'; do
  name=$(echo "$form" | tr -dc 'a-z0-9')
  cat > "$tmp/csv-$name.yaml" <<YAML
specnet: 1
name: csv_shards
seed: 4
data:
  train: {format: csv, path: $([ "$form" = all ] && echo all.csv || echo "$form"), label: label}
model:
  input: [4]
  layers:
    - dense: {units: 8, activation: relu}
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.01}}
  batch_size: 32
  epochs: 2
  shuffle: true
YAML
  "$specnet" train "$tmp/csv-$name.yaml" --out "$tmp/csv-$name" --quiet --threads 2 2>"$tmp/csv-$name.err"
done
for name in part0csvpart12csv partcsv; do
  check "csv shards ($name) give the weights of the one csv" \
    cmp -s "$tmp/csv-all/model.safetensors" "$tmp/csv-$name/model.safetensors"
done
check "a csv shard with other columns: an error naming it and the spec line" \
  grep -q "csv-part0csvothercsv.yaml:5:10: error: .*other.csv:1: column 4 is 'e' in the header, but 'd' in the first shard .*part-0.csv" \
  "$tmp/csv-part0csvothercsv.err"

# IDX shards, one gzip: read through a decompressed copy in the cache folder, made
# once, reused while the source is unchanged, made afresh (the old one removed) when
# it changes; they train as the raw file
"$py" - "$tmp" <<'PY'
import gzip, struct, sys
import numpy as np
d = sys.argv[1]
img, y = np.load(d + "/img.npy"), np.load(d + "/y.npy").astype(np.uint8)
def idx(a):
    return struct.pack(">BBBB", 0, 0, 8, a.ndim) + b"".join(struct.pack(">I", n) for n in a.shape) + a.tobytes()
open(d + "/img.idx", "wb").write(idx(img))
open(d + "/lab.idx", "wb").write(idx(y))
gzip.open(d + "/img-a.idx.gz", "wb").write(idx(img[:300]))
open(d + "/img-b.idx", "wb").write(idx(img[300:]))
open(d + "/lab-a.idx", "wb").write(idx(y[:300]))
gzip.open(d + "/lab-b.idx.gz", "wb").write(idx(y[300:]))
PY
sed 's/format: npy, x: img.npy, y: y.npy/format: idx, images: img.idx, labels: lab.idx/' "$tmp/img.yaml" > "$tmp/idx.yaml"
sed 's/format: npy, x: img.npy, y: y.npy/format: idx, images: [img-a.idx.gz, img-b.idx], labels: [lab-a.idx, lab-b.idx.gz]/' \
  "$tmp/img.yaml" > "$tmp/idx-shards.yaml"
export SPECNET_CACHE_DIR="$tmp/cache"
"$specnet" train "$tmp/idx.yaml" --out "$tmp/idx" --quiet --threads 2 || { echo "FAIL: train idx"; fail=1; }
"$specnet" train "$tmp/idx-shards.yaml" --out "$tmp/idx-shards" --quiet --threads 2 || { echo "FAIL: train idx shards"; fail=1; }
check "idx shards (one gzip) give the weights of the raw idx" \
  cmp -s "$tmp/idx/model.safetensors" "$tmp/idx-shards/model.safetensors"
check "the raw idx gives the weights of the npy" \
  cmp -s "$tmp/img-stored-1/model.safetensors" "$tmp/idx/model.safetensors"
cached=$(ls "$tmp/cache/data/"img-a.idx.gz-*.idx 2>/dev/null)
check "one decompressed copy of the gzip images, as big as the raw file" \
  test "$(echo "$cached" | wc -w)" = 1 -a "$(stat -c %s "$cached" 2>/dev/null)" = $((4 + 4 * 3 + 300 * 30))
check "no copy of the (small) gzip labels file" test -z "$(ls "$tmp/cache/data/" | grep lab-b)"
before=$(stat -c %i.%Y "$cached")
sleep 1
"$specnet" train "$tmp/idx-shards.yaml" --out "$tmp/idx-again" --quiet --threads 2 || { echo "FAIL: train again"; fail=1; }
check "the cached copy is reused while the source is unchanged" test "$(stat -c %i.%Y "$cached")" = "$before"
touch "$tmp/img-a.idx.gz"
"$specnet" train "$tmp/idx-shards.yaml" --out "$tmp/idx-touched" --quiet --threads 2 || { echo "FAIL: train touched"; fail=1; }
now=$(ls "$tmp/cache/data/"img-a.idx.gz-*.idx 2>/dev/null)
check "a changed source gets a new copy, the old one removed" \
  test "$(echo "$now" | wc -w)" = 1 -a "$now" != "$cached" -a -z "$(ls "$tmp/cache/data/" | grep tmp)"
check "and trains the same" cmp -s "$tmp/idx/model.safetensors" "$tmp/idx-touched/model.safetensors"
# no cache folder to write: one gzip file is read into memory (the same weights),
# gzip shards are an error naming the file; a corrupt gzip file leaves no copy
SPECNET_CACHE_DIR=/proc/specnet-none "$specnet" train "$tmp/idx-shards.yaml" --out "$tmp/idx-nocache" \
  --quiet --threads 2 2>"$tmp/nocache.err"
check "gzip shards without a cache folder: an error naming the file" \
  grep -q "img-a.idx.gz: cannot write its decompressed copy into the cache folder" "$tmp/nocache.err"
sed 's/images: \[img-a.idx.gz, img-b.idx\], labels: \[lab-a.idx, lab-b.idx.gz\]/images: img.idx.gz, labels: lab.idx/' \
  "$tmp/idx-shards.yaml" > "$tmp/idx-gz.yaml"
gzip -c "$tmp/img.idx" > "$tmp/img.idx.gz"
SPECNET_CACHE_DIR=/proc/specnet-none "$specnet" train "$tmp/idx-gz.yaml" --out "$tmp/idx-gz" --quiet --threads 2 ||
  { echo "FAIL: train gzip in memory"; fail=1; }
check "one gzip file without a cache folder: read into memory, the same weights" \
  cmp -s "$tmp/idx/model.safetensors" "$tmp/idx-gz/model.safetensors"
head -c 300 "$tmp/img.idx.gz" > "$tmp/cut.idx.gz"
"$specnet" data "$tmp/cut.idx.gz" 2>"$tmp/cut.err"
check "a cut gzip file: an error naming it" grep -q "cut.idx.gz: .*truncated\|cut.idx.gz: corrupt" "$tmp/cut.err"
check "and no copy or temporary file left in the cache" test -z "$(ls "$tmp/cache/data/" | grep cut)"
unset SPECNET_CACHE_DIR

# specnet data: the numbers it prints for a spec (shards, labels) and bare files
# (a float target file, a glob of shards), against NumPy's
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(9)
np.save(d + "/t.npy", r.normal(2, 3, (700, 2)))
PY
sed 's/  validation: {split: 0.2}/  test: {format: npy, x: f64.npy, y: t.npy}/' "$tmp/list.yaml" > "$tmp/data.yaml"
"$specnet" data "$tmp/data.yaml" "$tmp/img-*.npy" "$tmp/all.csv" > "$tmp/data.out" 2>&1 ||
  { echo "FAIL: specnet data"; cat "$tmp/data.out"; fail=1; }
check "specnet data prints the numbers NumPy gives" "$py" - "$tmp" <<'PY'
import os, re, sys
import numpy as np
d = sys.argv[1]
out = open(d + "/data.out").read()
blocks = re.split(r"\n(?=\S)", out.strip())
assert len(blocks) == 4, out
def field(b, name):
    m = re.search(r"^  %s +(.*)$" % name, b, re.M)
    assert m, (name, b)
    return m.group(1)
img, y, f64, t = (np.load(d + f) for f in ("/img.npy", "/y.npy", "/f64.npy", "/t.npy"))
train, test, glob_, csv = blocks
size = lambda *fs: sum(os.path.getsize(d + "/" + f) for f in fs)
assert field(train, "samples") == "700" and field(train, "sample shape") == "(6, 5)", train
assert field(train, "stored as") == "uint8" and field(train, "files") == "3 shards", train
xb, yb = size("img-0.npy", "img-1.npy", "img-2.npy"), size("y-0.npy", "y-1.npy", "y-2.npy")
assert field(train, "bytes on disk") == "%d (samples %d, labels %d)" % (xb + yb, xb, yb), train
assert field(train, "labels") == "0 to 2, 3 classes present", train
assert field(train, "class counts") == " ".join("%d:%d" % (c, (y == c).sum()) for c in range(3)), train
for i in range(3):
    vals = field(train, "sample %d" % i).split()
    s = img[i].ravel().astype(np.float64)
    assert [float(v) for v in vals[:8]] == list(s[:8]), (vals, s[:8])
    assert vals[8:] == ["...", "min", "%g" % s.min(), "max", "%g" % s.max(), "mean", vals[-1]], vals
    assert abs(float(vals[-1]) - s.mean()) < 1e-4 * abs(s.mean()), (vals[-1], s.mean())
assert field(test, "stored as") == "float64", test
for c in range(2):
    m, sd = (float(v) for v in field(test, "target %d" % c).split()[1::2])
    assert abs(m - t[:, c].mean()) < 1e-5 and abs(sd - t[:, c].std()) < 1e-5, (m, sd)
v = [float(x) for x in field(test, "sample 1").split()[:8]]
assert np.allclose(v, f64[1].ravel()[:8].astype(np.float32), rtol=1e-6), v
assert field(glob_, "files") == "3 shards" and field(glob_, "samples") == "700", glob_
assert field(csv, "samples") == "300" and field(csv, "sample shape") == "(5)", csv
assert field(csv, "stored as") == "float32 (read into memory)", csv
PY
"$specnet" data "$tmp/none.npy" > "$tmp/none.out" 2>&1
check "specnet data on a missing file: exit 1" test $? = 1
check "and an error naming it" grep -q "none.npy: cannot open" "$tmp/none.out"
# a label of 2^31 - 2 (the largest the loaders take): counted without a table of
# 2^31 classes (16 GB; it crashed at 2^31 - 1), so in 4 GB of address space
"$py" -c 'import sys, numpy as np
np.save(sys.argv[1] + "/xmax.npy", np.zeros((3, 2), np.float32))
np.save(sys.argv[1] + "/ymax.npy", np.array([2**31 - 2, 0, 0], np.int32))' "$tmp"
printf '%s\n' 'specnet: 1' 'name: ymax' 'data: {train: {format: npy, x: xmax.npy, y: ymax.npy}}' \
  'model: {input: [2], layers: [{dense: {units: 3, activation: softmax}}]}' \
  'train: {loss: sparse_categorical_crossentropy}' > "$tmp/ymax.yaml"
# (an AddressSanitizer build reserves terabytes of shadow memory: no limit for it)
limit=4000000
if ldd "$specnet" 2>/dev/null | grep -q libasan; then limit=unlimited; fi
(ulimit -v "$limit" && "$specnet" data "$tmp/ymax.yaml") > "$tmp/ymax.out" 2>&1
check "specnet data with a label of 2^31 - 2: exit 0" test $? = 0
check "and its count" grep -q "^  class counts   0:2 2147483646:1" "$tmp/ymax.out"

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
# predict writes its CSV a chunk of batches at a time (about 8 MB of outputs: 512
# rows of 2048 outputs here, so 700 samples cross a chunk boundary): every row is
# x W + b of the saved weights, computed here with NumPy
"$py" - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
np.save(d + "/t2048.npy", np.random.default_rng(3).normal(0, 1, (700, 2048)).astype(np.float32))
PY
cat > "$tmp/wide.yaml" <<YAML
specnet: 1
name: wide
seed: 1
data:
  train: {format: npy, x: f64.npy, y: t2048.npy}
model:
  input: [6, 5]
  layers:
    - flatten
    - dense: {units: 2048}
train:
  loss: mse
  optimizer: {sgd: {learning_rate: 0.01}}
  batch_size: 32
  epochs: 1
YAML
"$specnet" train "$tmp/wide.yaml" --out "$tmp/wide" --quiet --threads 2 || { echo "FAIL: train wide"; fail=1; }
"$specnet" predict "$tmp/wide.yaml" --weights "$tmp/wide/model.safetensors" --input "$tmp/f64.npy" \
  --output "$tmp/wide.csv" --quiet --threads 2 || { echo "FAIL: predict wide"; fail=1; }
check "predict in chunks: every row is x W + b (NumPy)" "$py" - "$tmp" <<'PY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
raw = open(d + "/wide/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def tensor(t):
    a, b = head[t]["data_offsets"]
    return np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(head[t]["shape"])
ts = [k for k in head if k != "__metadata__"]
W = tensor(next(k for k in ts if len(head[k]["shape"]) == 2))
b = tensor(next(k for k in ts if len(head[k]["shape"]) == 1))
x = np.load(d + "/f64.npy").reshape(700, 30).astype(np.float32).astype(np.float64)
want = x @ (W if W.shape == (30, 2048) else W.T).astype(np.float64) + b
got = np.loadtxt(d + "/wide.csv", delimiter=",")
assert got.shape == want.shape, (got.shape, want.shape)
err = np.abs(got - want).max() / np.abs(want).max()
assert err < 1e-5, err
PY

exit $fail
