#!/usr/bin/env bash
# Data bigger than memory (issue 16): one epoch of the seed MLP on a 600,000-image
# uint8 NPY (Fashion-MNIST's training images repeated 10 times, copy k shifted k
# pixels to the right so that samples differ), samples as stored (read in place with pread)
# against the same data forced into memory as f32 (SPECNET_DATA_IN_MEMORY=1, the
# path of earlier releases). Reports peak RSS (/usr/bin/time -v) and samples/s (the
# run's metrics.jsonl) and the disk used; removes its data. With one file, the same
# samples also as an HDF5 file (chunks of CHUNK samples, uncompressed; h5py) read per
# batch: the HDF5 row of issue 16, side by side with the NPY runs.
#
#   bench/data_scale.sh                  # build/cli/specnet, 10 copies, batch 32
#   SPECNET=path COPIES=10 BATCH=32 THREADS=2 KEEP=1 PYTHON=/usr/bin/python3 bench/data_scale.sh
#   HDF5=0 CHUNK=1024 bench/data_scale.sh  # no HDF5 run; chunk size of the HDF5 file
#   ROUNDS=3 bench/data_scale.sh         # NPY and HDF5 trained 3 times in turn (median)
#   SHARDS=10 bench/data_scale.sh        # 10 NPY shards of COPIES copies each (6M
#                                        # samples, 4.7 GB; x: x-*.npy), stored only
#
# Needs python3-numpy (and python3-h5py for the HDF5 run) and the Fashion-MNIST IDX
# files (Debian's dataset-fashion-mnist or $SPECNET_DATA). Not a test: numbers depend
# on the machine and its load.
set -euo pipefail
cd "$(dirname "$0")/.."
SPECNET=${SPECNET:-build/cli/specnet}
COPIES=${COPIES:-10}
BATCH=${BATCH:-32}
THREADS=${THREADS:-2}
SHARDS=${SHARDS:-1}
HDF5=${HDF5:-1}
CHUNK=${CHUNK:-1024}
[ "$SHARDS" = 1 ] || HDF5=0
PYTHON=${PYTHON:-/usr/bin/python3} # the one with python3-numpy
work=$(mktemp -d "${TMPDIR:-/tmp}/specnet-data-scale.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

"$PYTHON" - "$work" "$COPIES" "$SHARDS" "$HDF5" "$CHUNK" <<'PY'
import gzip, os, sys
import numpy as np
work, copies, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hdf5, chunk = sys.argv[4] == "1", int(sys.argv[5])
dirs = [os.path.join(os.environ.get("SPECNET_DATA", ""), d) for d in ("fashion_mnist", "fashion-mnist", "")]
dirs.append("/usr/share/datasets/fashion-mnist")
def find(base):
    for d in dirs:
        for p in (os.path.join(d, base), os.path.join(d, base + ".gz")):
            if os.path.isfile(p): return p
    sys.exit("data_scale.sh: Fashion-MNIST %s not found (set SPECNET_DATA)" % base)
def idx(path, offset):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f: return np.frombuffer(f.read(), np.uint8, offset=offset)
img = idx(find("train-images-idx3-ubyte"), 16).reshape(-1, 28, 28)
lab = idx(find("train-labels-idx1-ubyte"), 8)
n = len(img)
for s in range(shards):  # shard s: copies s*copies .. (s+1)*copies-1
    name = "x.npy" if shards == 1 else "x-%03d.npy" % s
    x = np.lib.format.open_memmap(os.path.join(work, name), "w+", np.uint8, (n * copies, 28, 28))
    for k in range(copies):
        c = s * copies + k  # shift c % 28 pixels right, and every 28 copies one row down
        x[k * n:(k + 1) * n] = np.roll(np.roll(img, c % 28, axis=2), c // 28, axis=1)
    x.flush()
    del x
    np.save(os.path.join(work, name.replace("x", "y", 1)), np.tile(lab, copies).astype(np.uint8))
if hdf5:  # the same samples as x.h5: /x chunked (chunk, 28, 28), /y; copied a copy at a time
    import h5py
    x = np.load(os.path.join(work, "x.npy"), mmap_mode="r")
    with h5py.File(os.path.join(work, "x.h5"), "w") as f:
        d = f.create_dataset("x", x.shape, np.uint8, chunks=(chunk, 28, 28))
        for k in range(copies):
            d[k * n:(k + 1) * n] = x[k * n:(k + 1) * n]
        f.create_dataset("y", data=np.load(os.path.join(work, "y.npy")))
PY

cat > "$work/data_scale.yaml" <<YAML
# The seed MLP (specs/mnist_mlp.yaml) on the repeated set, one epoch
specnet: 1
name: data_scale
seed: 42
data:
  train: {format: npy, x: $([ "$SHARDS" = 1 ] && echo x.npy || echo "x-*.npy"), y: $([ "$SHARDS" = 1 ] && echo y.npy || echo "y-*.npy")}
  validation: {split: 0.1}
  preprocess:
    - scale: 0.00392156862745098
model:
  input: [28, 28]
  layers:
    - flatten
    - dense: {units: 128, activation: relu}
    - dense: {units: 128, activation: relu}
    - dense: {units: 10, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.001}}
  batch_size: $BATCH
  epochs: 1
  shuffle: true
  metrics: [accuracy]
YAML

sed 's|  train: {format: npy, x: x.npy, y: y.npy}|  train: {format: hdf5, path: x.h5, x: /x, y: /y}|' \
  "$work/data_scale.yaml" >"$work/data_scale_hdf5.yaml"

# one run: prints "peak_rss_mb samples_per_second"; $3: the spec's name part
run() {
  local out="$work/run-$1"
  env ${2:+$2} /usr/bin/time -v "$SPECNET" train "$work/data_scale${3:-}.yaml" --out "$out" \
    --threads "$THREADS" --quiet >"$work/log-$1" 2>&1 || { cat "$work/log-$1"; exit 1; }
  local rss sps
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/log-$1")
  sps=$("$PYTHON" -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).readlines()[-1])["samples_per_second"]))' "$out/metrics.jsonl")
  echo "$((rss / 1024)) $sps"
}

"$SPECNET" check "$work/data_scale.yaml" >/dev/null
[ "$SHARDS" = 1 ] && read -r mem_rss mem_sps < <(run memory SPECNET_DATA_IN_MEMORY=1)
read -r map_rss map_sps < <(run stored)
[ "$HDF5" = 1 ] && read -r h5_rss h5_sps < <(run hdf5 "" _hdf5)
# HDF5 against NPY under a changing load: ROUNDS more pairs, NPY and HDF5 in turn
pairs=""
for ((r = 2; r <= ${ROUNDS:-1}; r++)); do
  read -r _ s1 < <(run "stored-$r")
  read -r _ s2 < <(run "hdf5-$r" "" _hdf5)
  pairs+=" $s1/$s2"
done
disk=$(du -sm "$work" | cut -f1)
samples=$((COPIES * SHARDS * 60000))
echo "data_scale: $samples uint8 samples of 28x28 in $SHARDS file(s), one epoch of the seed MLP, batch $BATCH, $THREADS threads"
printf '%-36s %14s %14s\n' "path" "peak RSS (MB)" "samples/s"
[ "$SHARDS" = 1 ] && printf '%-36s %14s %14s\n' "in memory (SPECNET_DATA_IN_MEMORY=1)" "$mem_rss" "$mem_sps"
printf '%-36s %14s %14s\n' "as stored (read per batch)" "$map_rss" "$map_sps"
[ "$HDF5" = 1 ] && printf '%-36s %14s %14s\n' "HDF5, chunks of $CHUNK (read per batch)" "$h5_rss" "$h5_sps"
[ "$SHARDS" = 1 ] && "$PYTHON" -c "print('as stored / in memory: %.0f %% of the samples/s, %.0f %% of the RSS' % (100 * $map_sps / $mem_sps, 100 * $map_rss / $mem_rss))"
[ "$HDF5" = 1 ] && "$PYTHON" -c "print('HDF5 / NPY as stored: %.0f %% of the samples/s, %d MB peak RSS' % (100 * $h5_sps / $map_sps, $h5_rss))"
[ -n "$pairs" ] && "$PYTHON" - "$map_sps/$h5_sps" $pairs <<'PY'
import statistics, sys
pairs = [tuple(map(int, p.split("/"))) for p in sys.argv[1:]]
print("rounds (NPY/HDF5 samples/s):", " ".join("%d/%d" % p for p in pairs))
print("HDF5 / NPY, median of %d rounds: %.0f %%" % (len(pairs), 100 * statistics.median(h / n for n, h in pairs)))
PY
echo "disk used: $disk MB in $work ($( [ "${KEEP:-0}" = 1 ] && echo kept || echo removed))"
