#!/usr/bin/env bash
# Writes the small, deliberately broken data files that the specs in
# tests/specs/errors/data_*.yaml point at, into tests/data_errors/gen/ (or DIR):
# IDX files that are truncated, have bad magic bytes, a wrong element type,
# absurd dimensions, trailing bytes, mismatched counts or out-of-range labels,
# gzip streams that are corrupt or cut off, and NPY files with a bad magic, a cut,
# a dtype or layout that is not read, or an absurd shape, and text that is not
# UTF-8 or holds a NUL byte, and HDF5 datasets that are not read (make_hdf5.py,
# with h5py). Made at test time (a CTest fixture and
# the cmake configure step run this) so that no binary files live in the repo.
#
#   tests/data_errors/make.sh [DIR]
#
# Needs bash and gzip (and python3-h5py for the HDF5 files). Files appear atomically (written aside, then moved),
# so parallel runs never see half a file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gen}
mkdir -p "$out"
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# bytes N...: each N (0-255) as one byte
bytes() {
  local b
  for b in "$@"; do printf "\\$(printf '%03o' "$b")"; done
}
# u32 N: big-endian uint32
u32() { bytes $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
# idx TYPE DIM...: an IDX header (00 00 TYPE NDIMS, then the dims)
idx() {
  local type=$1 d
  shift
  bytes 0 0 "$type" $#
  for d in "$@"; do u32 "$d"; done
}
pixels() { bytes 0 64 128 255 1 2 3 4 250 251 252 253; } # 3 samples of 2x2

# Good files, the partners of the broken ones: 3 images of 2x2, labels 0 1 2.
{ idx 8 3 2 2; pixels; } >"$tmp/good-images.idx"
{ idx 8 3; bytes 0 1 2; } >"$tmp/good-labels.idx"

{ idx 8 3; bytes 0 9 2; } >"$tmp/labels-9.idx"               # a label of 9 for 3 outputs
{ idx 8 2; bytes 0 1; } >"$tmp/labels-2.idx"                  # 2 labels for 3 images
{ idx 8 3 1; bytes 0 1 2; } >"$tmp/labels-2d.idx"             # labels with 2 dimensions
{ idx 8 3 2 2; bytes 0 64 128 255 1 2 3 4; } >"$tmp/truncated-images.idx" # 8 of 12 bytes
{ bytes 80 75 3 4; pixels; } >"$tmp/badmagic-images.idx"      # a zip file's magic
{ idx 13 3 2 2; pixels; } >"$tmp/float-images.idx"            # type 0x0D (float32)
{ idx 8 3 2 2; pixels; bytes 9 9 9 9 9; } >"$tmp/trailing-images.idx"
{ idx 8 3 4; pixels; } >"$tmp/flat-images.idx"                 # shards: 3 samples of 4, not 2x2
{ idx 8 4294967295 65535 65535; pixels; } >"$tmp/absurd-images.idx"
{ idx 8 3 2 2 1 1 1; pixels; } >"$tmp/sixdims-images.idx"     # 6 dimensions
{ idx 8 3 2 0; } >"$tmp/zerodim-images.idx"
{ idx 8 0 2 2; } >"$tmp/nosamples-images.idx"
{ idx 8 0; } >"$tmp/nosamples-labels.idx"
bytes 0 0 8 >"$tmp/short-header.idx"
: >"$tmp/empty.idx"

# gzip: a valid stream, its trailer cut off, and a header followed by a deflate
# block of the reserved type 3 (invalid).
gzip -n -c "$tmp/good-images.idx" >"$tmp/good-images.idx.gz"
size=$(wc -c <"$tmp/good-images.idx.gz")
head -c $((size - 8)) "$tmp/good-images.idx.gz" >"$tmp/cut-images.idx.gz"
bytes 31 139 8 0 0 0 0 0 0 3 255 255 255 255 255 255 255 255 >"$tmp/corrupt-images.idx.gz"
{ idx 8 3 2 2; pixels; } | gzip -n -c | head -c 20 >"$tmp/truncated-images.idx.gz"

# npy NAME VERSION DESCR SHAPE NBYTES: magic, version, header length (2 bytes in
# version 1, 4 in 2), the header dict padded to 64 bytes, then NBYTES of 01 bytes.
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
  } >"$tmp/$name"
}
npy x-f4-3x2.npy 1 '<f4' '(3, 2)' 24     # good: 3 samples of 2 features
npy y-u1-3.npy 2 '|u1' '(3,)' 3          # good: 3 labels (all 1)
npy y-u1-2.npy 1 '|u1' '(2,)' 2          # 2 labels for 3 samples
npy x-truncated.npy 1 '<f4' '(3, 2)' 20  # 20 of 24 bytes
npy x-f8-3x2.npy 1 '<f8' '(3, 2)' 48     # shards: another dtype than x-f4-3x2.npy
npy x-f4-3x3.npy 1 '<f4' '(3, 3)' 36     # shards: another sample shape
npy x-complex.npy 1 '<c8' '(3, 2)' 48    # complex64: not a supported dtype
npy x-object.npy 1 '|O' '(3, 2)' 48      # pickled Python objects: never
npy x-huge.npy 1 '<f8' '(4294967296, 4294967296)' 8
npy x-fortran.npy 1 '<f4' '(3, 2)' 24
npy y-i4-max.npy 1 '<i4' '(3,)' 0            # labels 2^31 - 1, 0, 0
bytes 255 255 255 127 0 0 0 0 0 0 0 0 >>"$tmp/y-i4-max.npy"
npy y-u1-label5.npy 1 '|u1' '(3,)' 0        # labels 0, 5, 0
bytes 0 5 0 >>"$tmp/y-u1-label5.npy"
sed -i 's/False/True/' "$tmp/x-fortran.npy"
{ printf 'NUMPY?'; bytes 1 0 0 0; } >"$tmp/x-badmagic.npy"

# Text sources (tests/specs/errors/text_*.yaml): a byte that is not UTF-8 on line 2,
# and a NUL byte, which classify mode keeps for padding.
{ printf 'fine text\nthen '; bytes 255; printf ' here\n'; } >"$tmp/text-bad-utf8.txt"
{ printf 'a record\n%%\nnul '; bytes 0; printf ' inside\n'; } >"$tmp/text-nul.txt"

# HDF5 (tests/specs/errors/data_hdf5_*.yaml): written with h5py (python3-h5py). Without
# it the files are missing and those specs fail, naming the file.
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  /usr/bin/python3 "$here/make_hdf5.py" "$tmp"
else
  echo "make.sh: no /usr/bin/python3 with h5py (python3-h5py): HDF5 error files not written" >&2
fi

for f in "$tmp"/*; do mv -f "$f" "$out/"; done
