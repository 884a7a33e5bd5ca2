#!/usr/bin/env bash
# Seeds for the binary-format fuzz targets, written into OUT/<target>/ (run.sh
# calls this; nothing binary is kept in the repo):
#   idx          every file tests/data_errors/make.sh makes (good, truncated,
#                bad magic, gzip ...), plus a valid 1-D and 4-D file
#   safetensors  valid checkpoints of fuzz_safetensors.c's model in F32, F64, F16
#                and BF16, with __metadata__, and a few broken ones
#   npy          arrays of several dtypes and shapes, versions 1 and 2, and the
#                broken ones of make.sh
#   csv          the broken CSV files of tests/data_errors/ (text; the target's
#                own seeds are in tests/fuzz/corpus/csv/)
#   text         the text files of make.sh (not UTF-8, a NUL byte); the target's
#                own seeds are in tests/fuzz/corpus/text/
#
#   tests/fuzz/make_seeds.sh OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out/idx" "$out/safetensors" "$out/npy" "$out/csv" "$out/text"

bash "$here/../data_errors/make.sh" "$out/data"
cp "$out"/data/*.idx* "$out/idx/"
cp "$out"/data/*.npy "$out/npy/"
mkdir -p "$out/csv"
cp "$here"/../data_errors/*.csv "$out/csv/"
cp "$out"/data/text-*.txt "$out/text/"
bytes() {
  local b
  for b in "$@"; do printf "\\$(printf '%03o' "$b")"; done
}
bytes 0 0 8 1 0 0 0 4 7 8 9 10 >"$out/idx/labels-1d.idx"
bytes 0 0 8 5 0 0 0 1 0 0 0 2 0 0 0 1 0 0 0 2 0 0 0 1 1 2 3 4 >"$out/idx/five-dims.idx"
gzip -n -c "$out/idx/five-dims.idx" >"$out/idx/five-dims.idx.gz"

# st NAME DTYPE ESIZE [META]: header (8-byte little-endian length + JSON), then
# 16 elements of ESIZE bytes (dense1.weight 3x4, dense1.bias 3, scale []).
st() {
  local name=$1 dt=$2 es=$3 meta=${4:-}
  local w=$((12 * es)) b=$((15 * es)) e=$((16 * es))
  local json="{${meta}\"dense1.weight\":{\"dtype\":\"$dt\",\"shape\":[3,4],\"data_offsets\":[0,$w]},\"dense1.bias\":{\"dtype\":\"$dt\",\"shape\":[3],\"data_offsets\":[$w,$b]},\"scale\":{\"dtype\":\"$dt\",\"shape\":[],\"data_offsets\":[$b,$e]}}"
  local n=${#json}
  {
    bytes $((n & 255)) $((n >> 8 & 255)) 0 0 0 0 0 0
    printf '%s' "$json"
    head -c "$e" /dev/zero | tr '\0' '\077'
  } >"$out/safetensors/$name"
}
st f32.safetensors F32 4
st f64.safetensors F64 8 '"__metadata__":{"format":"pt","note":"\u00e9\n"},'
st f16.safetensors F16 2
st bf16.safetensors BF16 2
st i32.safetensors I32 4
head -c 40 "$out/safetensors/f32.safetensors" >"$out/safetensors/cut.safetensors"
bytes 255 255 255 255 255 255 255 255 >"$out/safetensors/huge-length.safetensors"

# npy NAME VERSION DESCR SHAPE NBYTES: magic, version, header length (2 bytes in
# version 1, 4 in 2), the header dict padded to 64 bytes, then NBYTES of data.
npy() {
  local name=$1 ver=$2 descr=$3 shape=$4 nbytes=$5
  local dict="{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }"
  local pre=$((ver == 1 ? 10 : 12))
  local len=$(((pre + ${#dict} + 1 + 63) / 64 * 64 - pre))
  {
    bytes 147
    printf 'NUMPY'
    bytes "$ver" 0 $((len & 255)) $((len >> 8 & 255))
    [ "$ver" -eq 1 ] || bytes 0 0
    printf '%-*s\n' $((len - 1)) "$dict"
    head -c "$nbytes" /dev/zero | tr '\0' '\001'
  } >"$out/npy/$name"
}
npy f4-3x2.npy 1 '<f4' '(3, 2)' 24
npy u1-3.npy 1 '|u1' '(3,)' 3
npy i8-3.npy 2 '<i8' '(3,)' 24
npy f8-2x2x2.npy 1 '<f8' '(2, 2, 2)' 64
npy f2-4x1.npy 1 '<f2' '(4, 1)' 8
npy scalar.npy 1 '<f4' '()' 4
npy fortran.npy 1 '<f4' '(2, 2)' 16
sed -i 's/False/True/' "$out/npy/fortran.npy"
npy big-endian.npy 1 '>f4' '(2,)' 8
npy short.npy 1 '<f4' '(100,)' 8
