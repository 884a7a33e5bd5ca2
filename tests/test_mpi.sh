#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/distributed.md): 2 ranks on this machine,
# shared memory and loopback only.
#
#   equivalence  the seed spec for 2 epochs at its global batch of 32, -np 2 against
#                -np 1: every epoch's training loss within a relative 5e-3, test
#                accuracy within 0.5 points. Why 5e-3: the two runs
#                sum the same gradients in another order (two 16-row GEMMs and an
#                allreduce instead of one 32-row GEMM), so they differ by float rounding
#                only, which the 3376 Adam steps amplify: measured 1.7e-9 after epoch 1
#                and 1.4e-4 after epoch 2. One process with 2 OpenBLAS threads instead
#                of 1 (another summation order, no MPI) differs from itself by 2.8e-4
#                and 7.5e-4: that is the noise. 5e-3 is 7 times the noise and 20 times
#                below a real error: dropping one rank's half of every batch moves the
#                loss by 11% (and test accuracy by 2-3.5 points). Why 0.5 points (the
#                MPI issue asked for 0.2): test accuracy after 2 epochs moves more
#                than that with rounding alone; one process with the AVX2 and then
#                the AVX-512 small-batch GEMM kernels (another summation order, same
#                maths) gives 0.8673 and 0.8641, 0.32 points apart (Zen 5).
#   faults       rank 1 alone is given a data file that does not exist, or data whose
#                loss overflows: every rank exits non-zero, the failing rank's message
#                is printed (with its rank for the loss), nothing hangs (timeout 120 s)
#   --resume     1 epoch, then --resume to 2, on 2 ranks: the same weights (bit for
#                bit) and metrics as 2 epochs in one go; the same without mpirun
#   spec errors  printed once (by rank 0), each other rank says it stopped
#   reads        each rank reads only its part of NPY shards (SPECNET_DATA_STATS=1)
#   rank 0 alone prints and writes; specnet without mpirun needs no MPI start-up
#
# Skipped (77) when specnet was built without MPI (SPECNET_MPI=OFF), mpirun is
# missing, or the Fashion-MNIST files are (the equivalence test needs them).
set -uo pipefail
specnet=$(realpath "$1")
built_with_mpi=${2:-OFF}
src=$PWD
case $built_with_mpi in ON | on | 1 | TRUE | true) ;; *)
  echo "SKIP: specnet built without MPI (SPECNET_MPI=$built_with_mpi)"
  exit 77
  ;;
esac
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
data=/usr/share/datasets/fashion-mnist
[ -n "${SPECNET_DATA:-}" ] && [ -e "$SPECNET_DATA/fashion_mnist/t10k-images-idx3-ubyte.gz" ] &&
  data=$SPECNET_DATA/fashion_mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST in $data"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

# Two ranks on this machine: shared memory between them, TCP (mpirun's own wiring)
# on loopback only; one OpenBLAS thread per rank (2 cores).
mpi=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none
     --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo -x OPENBLAS_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
# Under AddressSanitizer (./build.sh sanitize) the ranks skip leak checking: Open MPI's
# plugins keep allocations past MPI_Finalize, reported from unloaded modules that no
# suppression can name. Memory errors are still checked; sn_train's data-parallel
# path is leak-checked by test_train (a fake comm, no MPI).
[ -n "${ASAN_OPTIONS:-}" ] && mpi+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
export OPENBLAS_NUM_THREADS=1
# the value of "key" in line N of a metrics.jsonl
field() { sed -n "${3}p" "$1" | sed -E "s/.*\"$2\": ([-0-9.eE+]+).*/\1/"; }
# lines of metrics.jsonl without the timings, which differ from run to run
strip() { sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$1"; }

# --- equivalence on the seed spec -------------------------------------------
seed=$src/specs/mnist_mlp.yaml
"$specnet" train "$seed" --set train.epochs=2 --out "$tmp/np1" --quiet || fail=1
timeout 600 "${mpi[@]}" -np 2 "$specnet" train "$seed" --set train.epochs=2 --out "$tmp/np2" \
  >"$tmp/np2.out" 2>&1 || { cat "$tmp/np2.out"; fail=1; }
for e in 1 2; do
  a=$(field "$tmp/np1/metrics.jsonl" loss $e) b=$(field "$tmp/np2/metrics.jsonl" loss $e)
  check "epoch $e training loss: 2 ranks $b, 1 rank $a (relative 5e-3)" \
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 5e-3 * a) }'
done
a=$(field "$tmp/np1/metrics.jsonl" test_accuracy 2) b=$(field "$tmp/np2/metrics.jsonl" test_accuracy 2)
check "test accuracy: 2 ranks $b, 1 rank $a (within 0.5 points)" \
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0.8 && d <= 0.005 + 1e-9) }'
check "rank 0 alone prints the epoch lines" test "$(grep -c '^epoch 2/2' "$tmp/np2.out")" -eq 1
check "rank 0 wrote the run folder" test -s "$tmp/np2/model.safetensors" -a -s "$tmp/np2/curves.svg" \
  -a "$(wc -l <"$tmp/np2/metrics.jsonl")" -eq 2 -a "$(wc -l <"$tmp/np2/metrics.csv")" -eq 3

# --- a small CSV spec for the faults and --resume -----------------------------
awk 'BEGIN { srand(7); print "a,b,c,d,label";
             for (i = 0; i < 150; i++) { k = i % 3;
               printf "%.3f,%.3f,%.3f,%.3f,%d\n", k + rand(), 2 * k - rand(), rand(), k * rand(), k } }' \
  >"$tmp/good.csv"
sed '2,$s/^[^,]*,[^,]*,[^,]*,[^,]*,/3e38,3e38,3e38,3e38,/' "$tmp/good.csv" >"$tmp/huge.csv"
cat >"$tmp/small.yaml" <<'EOF'
specnet: 1
name: mpi_small
seed: 5
data:
  train: {format: csv, path: good.csv, header: true, label: label}
  validation: {split: 0.2}
model:
  input: [4]
  layers:
    - dense: {units: 16, activation: relu}
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.01}}
  batch_size: 16
  epochs: 2
  metrics: [accuracy]
EOF
small=$tmp/small.yaml

# --- faults -------------------------------------------------------------------
run_fault() { # NAME SET: rank 1 gets --set SET
  timeout 120 "${mpi[@]}" \
    -np 1 bash -c '"$@"; echo "rank $OMPI_COMM_WORLD_RANK exit $?"' _ \
    "$specnet" train "$small" --quiet --out "$tmp/$1" : \
    -np 1 bash -c '"$@"; echo "rank $OMPI_COMM_WORLD_RANK exit $?"' _ \
    "$specnet" train "$small" --quiet --out "$tmp/$1" --set "$2" >"$tmp/$1.out" 2>&1
  echo "mpirun exit $?" >>"$tmp/$1.out"
}
run_fault missing "data.train.path=$tmp/nope.csv"
check "missing data on rank 1: no hang" grep -q "^mpirun exit 0" "$tmp/missing.out"
check "missing data on rank 1: rank 1 names the file" grep -q "nope.csv: cannot open" "$tmp/missing.out"
check "missing data on rank 1: rank 0 says rank 1 failed" \
  grep -q "stopped because rank 1 of 2 failed" "$tmp/missing.out"
check "missing data on rank 1: both ranks exit 1" \
  test "$(grep -c '^rank [01] exit 1$' "$tmp/missing.out")" -eq 2
run_fault overflow "data.train.path=$tmp/huge.csv"
check "overflowing loss on rank 1: no hang" grep -q "^mpirun exit 0" "$tmp/overflow.out"
check "overflowing loss on rank 1: the message names the step and rank 1" \
  grep -Eq "error: loss is (nan|inf) at epoch 1 step 1 on rank 1 of 2" "$tmp/overflow.out"
check "overflowing loss on rank 1: both ranks exit 1" \
  test "$(grep -c '^rank [01] exit 1$' "$tmp/overflow.out")" -eq 2
check "overflowing loss on rank 1: no checkpoint of a broken step" test ! -e "$tmp/overflow/model.safetensors"
# the exit status of mpirun itself, without the wrapper
timeout 120 "${mpi[@]}" -np 2 "$specnet" train "$small" --quiet --out "$tmp/m" \
  --set "data.train.path=$tmp/nope.csv" >/dev/null 2>&1
rc=$?
check "mpirun exits non-zero when the ranks fail ($rc)" test $rc -ne 0 -a $rc -ne 124

# a spec error: every rank reads the same spec, rank 0 alone prints the diagnostic
timeout 120 "${mpi[@]}" -np 2 "$specnet" train "$small" --quiet --out "$tmp/bad" \
  --set train.epohcs=1 >"$tmp/bad.out" 2>&1
check "a spec error under mpirun is printed once" \
  test "$(grep -c "unknown key 'epohcs'" "$tmp/bad.out")" -eq 1
check "rank 1 says rank 0 prints it" grep -q "rank 1 stops on 1 error in the spec" "$tmp/bad.out"

# --- --resume -----------------------------------------------------------------
"${mpi[@]}" -np 2 "$specnet" train "$small" --quiet --out "$tmp/full" || fail=1
"${mpi[@]}" -np 2 "$specnet" train "$small" --quiet --out "$tmp/part" --set train.epochs=1 || fail=1
check "each epoch leaves a training state" test -s "$tmp/part/train_state.safetensors"
"${mpi[@]}" -np 2 "$specnet" train "$small" --resume "$tmp/part" >"$tmp/resume.out" 2>&1 || {
  cat "$tmp/resume.out"
  fail=1
}
check "resume says where it starts" grep -q "^resuming after epoch 1 (step 8)" "$tmp/resume.out"
check "2 ranks: 1 epoch + --resume to 2 gives the weights of 2 epochs in one go" \
  cmp "$tmp/full/model.safetensors" "$tmp/part/model.safetensors"
check "2 ranks: ... and the same metrics.jsonl" diff <(strip "$tmp/full/metrics.jsonl") <(strip "$tmp/part/metrics.jsonl")
check "2 ranks: metrics.csv has its header and 2 rows" test "$(wc -l <"$tmp/part/metrics.csv")" -eq 3
"$specnet" train "$small" --quiet --out "$tmp/full1" || fail=1
"$specnet" train "$small" --quiet --out "$tmp/part1" --set train.epochs=1 || fail=1
"$specnet" train "$small" --quiet --resume "$tmp/part1" || fail=1
check "1 process: 1 epoch + --resume to 2 gives the weights of 2 epochs in one go" \
  cmp "$tmp/full1/model.safetensors" "$tmp/part1/model.safetensors"
"$specnet" train "$small" --quiet --resume "$tmp/part1" --set train.batch_size=8 --set train.epochs=3 \
  2>"$tmp/bs.err"
check "resuming with another batch_size is refused" grep -q "train.batch_size: [0-9]* in the run, 8 here" "$tmp/bs.err"
check "--resume with --weights is a usage error (2)" \
  bash -c '"$1" train "$2" --resume "$3" --weights x >/dev/null 2>&1; test $? -eq 2' _ "$specnet" "$small" "$tmp/part1"

# --- each rank reads only its part ---------------------------------------------
# NPY shards as stored: SPECNET_DATA_STATS=1 has each process say how many samples
# it read from its store. 2 epochs of 800 training samples and 200 held out for
# validation read 2 * (800 + 200) = 2000 samples, and predictions.csv the 200 once
# more: 2200 in one process. With 2 ranks each reads its half of every batch and of
# every evaluation, 1000, and rank 0 the 200 of predictions.csv, which it alone
# writes: 1200 and 1000, never the whole set each.
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  /usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(2)
y = r.integers(0, 3, 1000)
x = (r.integers(0, 80, (1000, 8)) + 60 * y[:, None]).astype(np.uint8)
for i, (lo, hi) in enumerate(((0, 600), (600, 1000))):
    np.save("%s/x-%d.npy" % (d, i), x[lo:hi])
    np.save("%s/y-%d.npy" % (d, i), y[lo:hi])
PY
  cat >"$tmp/reads.yaml" <<'EOF'
specnet: 1
name: mpi_reads
seed: 5
data:
  train: {format: npy, x: ["x-*.npy"], y: ["y-*.npy"]}
  validation: {split: 0.2}
  preprocess: [{scale: 0.01}]
model:
  input: [8]
  layers:
    - dense: {units: 16, activation: relu}
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  batch_size: 32
  epochs: 2
  shuffle: true
EOF
  SPECNET_DATA_STATS=1 "$specnet" train "$tmp/reads.yaml" --quiet --out "$tmp/reads1" 2>"$tmp/reads1.err"
  "${mpi[@]}" -x SPECNET_DATA_STATS=1 -np 2 "$specnet" train "$tmp/reads.yaml" --quiet --out "$tmp/reads2" \
    2>"$tmp/reads2.err"
  line="^specnet: data: .*x-0.npy and its other shards: read"
  # alone, the small files are held in memory; the ranks of a distributed run stream
  check "1 process reads 2200 samples" grep -q "$line 2200 samples (17600 bytes) of 1000, held in memory\$" \
    "$tmp/reads1.err"
  check "2 ranks: one reads 1200 samples, the other 1000" \
    test "$(grep -c "$line 1200 samples (9600 bytes) of 1000\$" "$tmp/reads2.err")" -eq 1 -a \
    "$(grep -c "$line 1000 samples (8000 bytes) of 1000\$" "$tmp/reads2.err")" -eq 1
else
  echo "skipped: the reads per rank (no python3-numpy)"
fi

# --- without mpirun -----------------------------------------------------------
check "mpirun -np 1 gives the numbers of a run without mpirun" \
  diff <(strip "$tmp/full1/metrics.jsonl") <(
    "${mpi[@]}" -np 1 "$specnet" train "$small" --quiet --out "$tmp/np1small" >/dev/null 2>&1
    strip "$tmp/np1small/metrics.jsonl"
  )

exit $fail
