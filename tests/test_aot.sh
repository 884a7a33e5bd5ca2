#!/usr/bin/env bash
# Ahead-of-time binaries and libraries against the JIT: a standalone executable and
# an embedded C library built from a trained spec predict exactly what
# `specnet predict` predicts, sample for sample; their accuracy equals
# `specnet eval`'s; the portable CPU target and the separate weights file work; the
# executable needs neither LLVM nor libyaml.
set -uo pipefail
specnet=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
data=/usr/share/datasets/fashion-mnist
spec=specs/mnist_mlp.yaml
if [ ! -f "$data/t10k-images-idx3-ubyte.gz" ]; then echo "SKIP: no Fashion-MNIST"; exit 77; fi
# a short training run is enough: what is compared is the same weights run two ways
"$specnet" train "$spec" --set train.epochs=1 --set 'data.train={builtin: fashion_mnist, split: train, limit: 6000}' \
  --out "$tmp/run" --quiet || exit 1
w=$tmp/run/model.safetensors
images=$data/t10k-images-idx3-ubyte.gz labels=$data/t10k-labels-idx1-ubyte.gz

"$specnet" predict "$spec" --weights "$w" --input "$images" --output "$tmp/jit.txt" >/dev/null || exit 1
"$specnet" build "$spec" --weights "$w" -o "$tmp/model" --quiet || exit 1
"$tmp/model" --input "$images" --output "$tmp/aot.txt"
check "the executable predicts what specnet predict does, for all 10000 samples" cmp "$tmp/jit.txt" "$tmp/aot.txt"
check "the executable links neither LLVM nor libyaml" bash -c '! ldd "$1" | grep -qE "libLLVM|libyaml"' _ "$tmp/model"
zcat "$labels" | tail -c 10000 | od -An -v -tu1 | tr -s ' ' '\n' | grep -v '^$' >"$tmp/labels.txt"
acc=$(paste -d' ' "$tmp/aot.txt" "$tmp/labels.txt" | awk '$1 == $2 { c++ } END { printf "%.4f", c / NR }')
eval_acc=$("$specnet" eval "$spec" --weights "$w" | sed -E 's/.*test_accuracy ([0-9.]+).*/\1/' | cut -c1-6)
check "the executable's accuracy ($acc) equals specnet eval's ($eval_acc)" test "$acc" = "$eval_acc"
"$tmp/model" --input "$images" --probs | head -1 >"$tmp/probs.txt"
check "--probs writes 10 probabilities summing to 1" \
  awk -F, '{ s = 0; for (i = 1; i <= NF; i++) s += $i; exit !(NF == 10 && s > 0.9999 && s < 1.0001) }' "$tmp/probs.txt"

"$specnet" build "$spec" --weights "$w" -o "$tmp/portable" --cpu x86-64-v3 --quiet || exit 1
"$tmp/portable" --input "$images" --output "$tmp/v3.txt"
same=$(paste -d' ' "$tmp/jit.txt" "$tmp/v3.txt" | awk '$1 == $2 { c++ } END { print c }')
check "the x86-64-v3 build agrees with the native one on >= 9990 of 10000 ($same)" test "$same" -ge 9990

# the embedded library, as examples/embed_c uses it
"$specnet" build "$spec" --weights "$w" --lib -o "$tmp/lib" --quiet || exit 1
cc -O2 examples/embed_c/classify.c -I "$tmp/lib" -L "$tmp/lib" -lmnist_mlp -lopenblas -lz -lm -o "$tmp/classify" || exit 1
out=$("$tmp/classify" "$images" "$labels")
lib_acc=$(sed -nE 's/^accuracy ([0-9.]+).*/\1/p' <<<"$out")
check "the C program with the library gets the same accuracy ($lib_acc)" test "$lib_acc" = "$acc"
# the compile lines of docs/aot.md and examples/embed_c/README.md, run as written
check "--lib writes the pkg-config file" grep -q '^Libs: -L${libdir} -lmnist_mlp -lopenblas -lm$' "$tmp/lib/mnist_mlp.pc"
if command -v pkg-config >/dev/null; then
  for doc in docs/aot.md examples/embed_c/README.md; do
    line=$(grep -m1 '^cc classify.c' "$doc")
    rm -rf "$tmp/doc" && mkdir "$tmp/doc" && cp -r "$tmp/lib" examples/embed_c/classify.c "$tmp/doc/"
    check "the compile line of $doc builds the example ($line)" \
      bash -c 'cd "$1" && eval "$2" && ./classify "$3" "$4" | grep -q "^accuracy $5 "' _ "$tmp/doc" "$line" "$images" "$labels" "$acc"
  done
else
  echo "skip: the documented compile lines (no pkg-config)"
fi
"$specnet" build "$spec" --weights "$w" --lib --weights-file -o "$tmp/libw" --quiet || exit 1
check "--weights-file writes the weights beside the library" test -s "$tmp/libw/mnist_mlp.weights"
check "the header declares mnist_mlp_load_weights" grep -q 'int mnist_mlp_load_weights(const char \*path);' "$tmp/libw/mnist_mlp.h"
sed 's|mnist_mlp_predict(x|if (mnist_mlp_load_weights(getenv("W"))) return 3;\n  mnist_mlp_predict(x|' \
  examples/embed_c/classify.c >"$tmp/classify_w.c"
cc -O2 "$tmp/classify_w.c" -I "$tmp/libw" -L "$tmp/libw" -lmnist_mlp -lopenblas -lz -lm -o "$tmp/classify_w" || exit 1
w_acc=$(W="$tmp/libw/mnist_mlp.weights" "$tmp/classify_w" "$images" "$labels" | sed -nE 's/^accuracy ([0-9.]+).*/\1/p')
check "weights loaded from the file give the same accuracy ($w_acc)" test "$w_acc" = "$acc"
check "a missing weights file is reported by mnist_mlp_load_weights" \
  bash -c 'W=/nonexistent "$1" "$2" "$3" >/dev/null; test $? -eq 3' _ "$tmp/classify_w" "$images" "$labels"

# a conv2d model's library: conv2d2 is an implicit GEMM (conv_gemm), which the
# archive carries (conv_gemm.c's cblas variants); its accuracy is the executable's
cnn=specs/fashion_cnn.yaml
"$specnet" train "$cnn" --set train.epochs=1 --set 'data.train={builtin: fashion_mnist, split: train, limit: 640}' \
  --out "$tmp/cnnrun" --quiet || exit 1
"$specnet" build "$cnn" --weights "$tmp/cnnrun/model.safetensors" -o "$tmp/cnnmodel" --quiet || exit 1
"$tmp/cnnmodel" --input "$images" --output "$tmp/cnn.txt"
cnn_acc=$(paste -d' ' "$tmp/cnn.txt" "$tmp/labels.txt" | awk '$1 == $2 { c++ } END { printf "%.4f", c / NR }')
"$specnet" build "$cnn" --weights "$tmp/cnnrun/model.safetensors" --lib -o "$tmp/cnnlib" --quiet || exit 1
sed 's/mnist_mlp/fashion_cnn/g; s/MNIST_MLP/FASHION_CNN/g' examples/embed_c/classify.c >"$tmp/classify_cnn.c"
cc -O2 "$tmp/classify_cnn.c" -I "$tmp/cnnlib" -L "$tmp/cnnlib" -lfashion_cnn -lopenblas -lz -lm -o "$tmp/classify_cnn" || exit 1
cnn_lib_acc=$("$tmp/classify_cnn" "$images" "$labels" | sed -nE 's/^accuracy ([0-9.]+).*/\1/p')
check "fashion_cnn's library (conv_gemm in the archive) gets the executable's accuracy ($cnn_lib_acc, $cnn_acc)" \
  test -n "$cnn_acc" -a "$cnn_lib_acc" = "$cnn_acc"

# the training binary: the spec's own data, and files given on its command line
strip() { sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$1"; }
"$specnet" build tests/specs/train_blobs.yaml --train -o "$tmp/trainer" --quiet || exit 1
"$tmp/trainer" --out "$tmp/tb1" --quiet
"$specnet" train tests/specs/train_blobs.yaml --out "$tmp/tb2" --quiet
check "the training binary gives specnet train's metrics, epoch by epoch" \
  diff <(strip "$tmp/tb1/metrics.jsonl") <(strip "$tmp/tb2/metrics.jsonl")
check "the training binary writes the same weights, bit for bit" cmp "$tmp/tb1/model.safetensors" "$tmp/tb2/model.safetensors"
check "the training binary links neither LLVM nor libyaml" bash -c '! ldd "$1" | grep -qE "libLLVM|libyaml"' _ "$tmp/trainer"
"$specnet" build specs/regression.yaml --train -o "$tmp/regtrainer" --quiet || exit 1
(cd "$tmp" && ./regtrainer --out "$tmp/rt1" --quiet --epochs 4 --train "$OLDPWD/specs/data/regression_train.csv" \
  --test "$OLDPWD/specs/data/regression_test.csv")
"$specnet" train specs/regression.yaml --set train.epochs=4 --out "$tmp/rt2" --quiet
check "with CSV files on its command line, the same metrics as specnet train" \
  diff <(strip "$tmp/rt1/metrics.jsonl") <(strip "$tmp/rt2/metrics.jsonl")
(cd "$tmp" && ./regtrainer --out "$tmp/rt3" --quiet --epochs 4)
check "run from another folder, it finds the spec's own data (paths made absolute at build time)" \
  diff <(strip "$tmp/rt3/metrics.jsonl") <(strip "$tmp/rt2/metrics.jsonl")
check "the training binary reports a missing data file" \
  bash -c '! "$1" --train /nonexistent.csv --out "$2/x" 2>"$2/err" && grep -q "/nonexistent.csv" "$2/err"' _ "$tmp/regtrainer" "$tmp"

# errors
code() { "$@" >/dev/null 2>&1; echo $?; }
check "build without --weights is a usage error (2)" test "$(code "$specnet" build "$spec" -o "$tmp/x")" -eq 2
check "an unknown --cpu is a usage error (2)" test "$(code "$specnet" build "$spec" --weights "$w" -o "$tmp/x" --cpu pentium)" -eq 2
check "the executable rejects a file of the wrong sample size" \
  bash -c 'printf "1,2,3\n" >"$2/bad.csv"; ! "$1" --input "$2/bad.csv" 2>/dev/null' _ "$tmp/model" "$tmp"
# a NaN or an f32 overflow in the input is an error, as in specnet predict (it
# used to come out as class 0)
# (an f8 NPY file written with the standard library: no numpy needed)
npy_with() {
  python3 -c 'import struct, sys
h = "{\x27descr\x27: \x27<f8\x27, \x27fortran_order\x27: False, \x27shape\x27: (1, 784), }"
h += " " * (117 - len(h)) + "\n"
x = [0.0] * 784
x[5] = float(sys.argv[1])
sys.stdout.buffer.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<784d", *x))' "$1"
}
for v in nan 1e39; do
  npy_with "$v" >"$tmp/in_$v.npy"
  check "the executable rejects a sample holding $v" \
    bash -c '! "$1" --input "$2" 2>"$3/err" && grep -q "element 5 of sample 0 is" "$3/err"' _ "$tmp/model" "$tmp/in_$v.npy" "$tmp"
done
npy_with 0.5 >"$tmp/in_ok.npy"
check "the executable reads that file when every value is finite" bash -c '"$1" --input "$2" | grep -qx "[0-9]"' _ "$tmp/model" "$tmp/in_ok.npy"
for bad in 0 -1 1025 2x ''; do
  check "the executable rejects --threads '$bad' (2)" test "$(code "$tmp/model" --input "$images" --threads "$bad")" -eq 2
done
check "the executable takes --threads 2" test "$(code "$tmp/model" --input "$images" --threads 2)" -eq 0
for opt in "--epochs abc" "--epochs -1" "--seed 1x" "--seed -5" "--threads 0"; do
  check "the training binary rejects $opt (2)" test "$(code "$tmp/trainer" $opt --out "$tmp/tbx" --quiet)" -eq 2
done
exit $fail
