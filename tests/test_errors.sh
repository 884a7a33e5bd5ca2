#!/usr/bin/env bash
# The error corpus as the command line meets it. `specnet test` (the spec:errors/*
# tests) checks each message; this checks, for every spec in tests/specs/errors/,
# that `specnet train` exits 1 within a few seconds, writes no weights, and that
# its first error reads "PATH:LINE:COL: error: ...". Also --set typos, which a spec
# cannot carry.
set -uo pipefail
specnet=$1
dir=${2:-tests/specs/errors}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for spec in "$dir"/*.yaml; do
  n=$((n + 1))
  rm -rf "$tmp/run"
  timeout 30 "$specnet" train "$spec" --out "$tmp/run" --quiet >"$tmp/out" 2>"$tmp/err"
  rc=$?
  # the first line that is not a warning or a hint (warnings may come first)
  first=$(grep -m 1 -v -E ': (warning|hint): ' "$tmp/err")
  rest=${first#"$spec":}
  if [ $rc -ne 1 ]; then
    echo "FAIL: $spec: exit code $rc, expected 1"
    fail=1
  elif [ "$rest" = "$first" ] || ! [[ $rest =~ ^[0-9]+:[0-9]+:\ error:\ . ]]; then
    echo "FAIL: $spec: first line is not '$spec:LINE:COL: error: ...': $first"
    fail=1
  elif [ -e "$tmp/run/model.safetensors" ]; then
    echo "FAIL: $spec: weights were written"
    fail=1
  fi
done
echo "checked $n error specs"
[ "$n" -ge 40 ] || { echo "FAIL: only $n error specs (expected at least 40)"; fail=1; }

# Resource attacks at a larger scale than the corpus keeps in files: an alias bomb
# of 10^9 nodes, a million open brackets, and a 17 MiB file. Each is refused in a
# few seconds (the budgets are checked before anything is copied or read whole).
{
  printf 'specnet: 1\nname: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n'
  prev=a
  for l in b c d e f g h i; do
    printf '%s: &%s [' $l $l
    for k in 1 2 3 4 5 6 7 8 9; do printf '*%s, ' $prev; done
    printf '*%s]\n' $prev
    prev=$l
  done
} >"$tmp/bomb.yaml"
head -c 1000000 /dev/zero | tr '\0' '[' >"$tmp/brackets.yaml"
{ printf 'specnet: 1\nname: big\n'; head -c $((17 << 20)) /dev/zero | tr '\0' '#'; } >"$tmp/big.yaml"
for case in "bomb.yaml:aliases expand to more than" "brackets.yaml:nesting deeper than 64 levels" \
  "big.yaml:larger than 16 MiB"; do
  file=${case%%:*}
  want=${case#*:}
  out=$(timeout 10 "$specnet" check "$tmp/$file" 2>&1)
  rc=$?
  if [ $rc -ne 1 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: $file: exit code $rc (124: took over 10 s), expected 1 and '$want': $out"
    fail=1
  fi
done

# --set typos: exit 1, the position in the argument, and a hint.
spec=tests/specs/train_blobs.yaml
out=$("$specnet" check "$spec" --set train.epohcs=1 2>&1)
rc=$?
if [ $rc -ne 1 ]; then
  echo "FAIL: --set train.epohcs=1: exit code $rc, expected 1"
  fail=1
fi
for want in "--set:1:7: error: unknown key 'epohcs' in train" "--set:1:7: hint: did you mean 'epochs'?"; do
  grep -qF -- "$want" <<<"$out" || {
    echo "FAIL: --set train.epohcs=1: no '$want' in: $out"
    fail=1
  }
done
out=$("$specnet" check "$spec" --set 'model.layers.0.dense.unitz=3' 2>&1)
rc=$?
if [ $rc -ne 1 ] || ! grep -qF "hint: did you mean 'units'?" <<<"$out"; then
  echo "FAIL: --set model.layers.0.dense.unitz=3: exit code $rc: $out"
  fail=1
fi
out=$("$specnet" check "$spec" --set 'train.epochs=[1' 2>&1)
rc=$?
if [ $rc -ne 1 ] || ! grep -qE -- "^--set:1:[0-9]+: error: invalid YAML" <<<"$out"; then
  echo "FAIL: --set 'train.epochs=[1': exit code $rc: $out"
  fail=1
fi
[ $fail -eq 0 ] && echo "ok"
exit $fail
