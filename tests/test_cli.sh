#!/usr/bin/env bash
# The command line as a user meets it: exit codes, run folder contents, epochs 0,
# starting from saved weights, eval agreeing with training's own evaluation, the
# resolved spec reading back to the same model.
set -uo pipefail
specnet=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
code() { "$specnet" "$@" >/dev/null 2>&1; echo $?; }
spec=tests/specs/train_blobs.yaml

check "no arguments is a usage error (2)" test "$(code)" -eq 2
check "unknown command is a usage error (2)" test "$(code trian "$spec")" -eq 2
check "unknown option is a usage error (2)" test "$(code train "$spec" --epochs 3)" -eq 2
check "did-you-mean for a misspelt command" bash -c '"$1" trian x 2>&1 | grep -q "did you mean .train."' _ "$specnet"
check "a missing spec file is a spec error (1)" test "$(code check "$tmp/nope.yaml")" -eq 1
check "a --set typo is a spec error (1)" test "$(code check "$spec" --set train.epohcs=2)" -eq 1
check "a --set typo names --set and hints" bash -c '"$1" check "$2" --set train.epohcs=2 2>&1 | grep -q "did you mean .epochs."' _ "$specnet" "$spec"

"$specnet" train "$spec" --set train.epochs=0 --out "$tmp/e0" --quiet
check "epochs 0 writes the initial weights" test -s "$tmp/e0/model.safetensors"
check "epochs 0 trains nothing" test ! -s "$tmp/e0/metrics.jsonl"
check "the resolved spec is written" test -s "$tmp/e0/spec.resolved.yaml"
check "the resolved spec reads back to the same layer table" \
  diff <("$specnet" check "$spec") <("$specnet" check "$tmp/e0/spec.resolved.yaml")

"$specnet" train "$spec" --out "$tmp/run" --quiet
check "metrics.jsonl has one line per epoch" test "$(wc -l <"$tmp/run/metrics.jsonl")" -eq 5
last=$(tail -1 "$tmp/run/metrics.jsonl" | sed -E 's/.*"test_loss": ([0-9.e-]+).*/\1/')
evald=$("$specnet" eval "$spec" --weights "$tmp/run/model.safetensors" | sed -E 's/^test_loss ([0-9.]+) .*/\1/')
check "eval of the saved weights gives training's last test loss ($last vs $evald)" \
  awk -v a="$last" -v b="$evald" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-6 + 1e-5 * a) }'
"$specnet" train "$spec" --set train.epochs=1 --weights "$tmp/run/model.safetensors" --out "$tmp/cont" --quiet
first=$(head -1 "$tmp/cont/metrics.jsonl" | sed -E 's/.*"loss": ([0-9.e-]+).*/\1/')
fresh=$(head -1 "$tmp/run/metrics.jsonl" | sed -E 's/.*"loss": ([0-9.e-]+).*/\1/')
check "--weights starts from the saved weights (first-epoch loss $first < fresh $fresh / 4)" \
  awk -v a="$first" -v b="$fresh" 'BEGIN { exit !(a < b / 4) }'
check "weights of another model are refused with an error" \
  test "$(code train tests/specs/train_spirals.yaml --weights "$tmp/run/model.safetensors" --out "$tmp/bad")" -eq 1
exit $fail
