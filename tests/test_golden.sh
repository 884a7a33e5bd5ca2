#!/usr/bin/env bash
# Golden IR and plan tests. Each tests/golden/*.yaml is a spec followed by the
# expected output of `specnet emit SPEC --what STAGE` for each stage it names,
# QBE-style, every line commented:
#
#   # >>> grad
#   # param %dense1.weight : f32[8,12] = ...
#   # >>> plan
#   # grad_step: 13 kernels, arena 896 bytes
#
# A change to autodiff, fusion or planning shows as a diff here. After a change
# that is meant, rewrite the blocks with one command and review the diff:
#
#   tests/test_golden.sh build/cli/specnet --update
#
# Run from the repository root (the output names spec lines by path).
set -uo pipefail
specnet=$1
update=${2:-}
fail=0
shopt -s nullglob
files=(tests/golden/*.yaml)
[ ${#files[@]} -gt 0 ] || { echo "FAIL: no golden files under tests/golden"; exit 1; }
for f in "${files[@]}"; do
  stages=$(sed -n 's/^# >>> \([a-z]*\)$/\1/p' "$f")
  if [ -z "$stages" ]; then
    echo "FAIL: $f names no stage (# >>> grad, # >>> plan, ...)"
    fail=1
    continue
  fi
  if [ "$update" = --update ]; then
    spec=$(sed '/^# >>> [a-z]*$/,$d' "$f")
    {
      printf '%s\n' "$spec"
      for st in $stages; do
        echo "# >>> $st"
        "$specnet" emit "$f" --what "$st" | sed 's/^/# /; s/ *$//'
      done
    } >"$f.new" && mv "$f.new" "$f"
    echo "updated: $f ($(echo $stages))"
    continue
  fi
  for st in $stages; do
    want=$(awk -v st="# >>> $st" '$0 == st { on = 1; next } /^# >>> [a-z]+$/ { on = 0 } on { sub(/^# ?/, ""); print }' "$f")
    got=$("$specnet" emit "$f" --what "$st" 2>&1 | sed 's/ *$//')
    if [ "$want" = "$got" ]; then
      echo "ok: $f $st ($(wc -l <<<"$got") lines)"
    else
      echo "FAIL: $f $st differs from the expected block (< expected, > now):"
      diff <(echo "$want") <(echo "$got") | head -60
      fail=1
    fi
  done
done
exit $fail
