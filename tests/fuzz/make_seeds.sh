#!/usr/bin/env bash
# Seeds for the binary-format fuzz targets, written into OUT/<target>/ (run.sh
# calls this; nothing binary is kept in the repo):
#   idx          every file tests/data_errors/make.sh makes (good, truncated,
#                bad magic, gzip ...), plus a valid 1-D and 4-D file
#   safetensors  valid checkpoints of fuzz_safetensors.c's model in F32, F64, F16
#                and BF16, with __metadata__, and a few broken ones
#
#   tests/fuzz/make_seeds.sh OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out/idx" "$out/safetensors"

bash "$here/../data_errors/make.sh" "$out/idx"
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
