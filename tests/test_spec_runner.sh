#!/usr/bin/env bash
# `specnet test` itself: --jobs N prints the same lines in the same order as one
# at a time, with the closing line; a failing spec makes exit code 3; --junit
# writes one testcase per spec with the failure's reason; bad option values are
# usage errors.
set -uo pipefail
specnet=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
strip_times() { sed -E 's/ \([0-9.]+s\)//' "$1"; }

# A small suite: some error specs, a training spec, a spec without expect: and
# one that fails (it expects an error the spec does not have).
mkdir -p "$tmp/suite/sub"
cp tests/specs/errors/num_units_zero.yaml tests/specs/errors/yaml_alias_bomb.yaml \
  tests/specs/errors/utf8_invalid_byte.yaml "$tmp/suite/"
cp tests/specs/train_blobs.yaml "$tmp/suite/sub/"
sed '/^expect:/,$d' tests/specs/train_blobs.yaml >"$tmp/suite/sub/no_expect.yaml"
{
  sed '/^expect:/,$d' tests/specs/train_blobs.yaml
  printf 'expect:\n  error: {contains: "<&\\"quoted\\"&>"}\n'
} >"$tmp/suite/sub/wrong.yaml"

"$specnet" test "$tmp/suite" >"$tmp/seq.out" 2>"$tmp/seq.err"
rc=$?
check "a failing spec gives exit code 3 (got $rc)" test $rc -eq 3
check "closing line counts passed, failed and skipped" \
  test "$(tail -n 1 "$tmp/seq.out")" = "4 passed, 1 failed, 1 skipped"

"$specnet" test "$tmp/suite" --jobs 3 --junit "$tmp/j.xml" >"$tmp/par.out" 2>"$tmp/par.err"
rc=$?
check "--jobs 3: exit code 3 (got $rc)" test $rc -eq 3
check "--jobs 3 prints the same lines in the same order" \
  diff <(strip_times "$tmp/seq.out") <(strip_times "$tmp/par.out")
check "--jobs 3 keeps each spec's diagnostics" \
  diff <(sort "$tmp/seq.err") <(sort "$tmp/par.err")

x="$tmp/j.xml"
check "junit: a testsuite with the counts" \
  grep -qE '<testsuite name="specnet" tests="6" failures="1" errors="0" skipped="1" time="[0-9.]+"' "$x"
check "junit: one testcase per spec" test "$(grep -c '<testcase ' "$x")" -eq 6
check "junit: classname is the folder" grep -qE '<testcase classname="[^"]*suite\.sub" name="train_blobs.yaml"' "$x"
check "junit: the failure message is the reason, escaped" \
  grep -qF '<failure message="spec was accepted; expected an error containing &quot;&lt;&amp;&quot;quoted&quot;&amp;&gt;&quot;" type="FAIL">' "$x"
check "junit: the skipped spec" grep -qF '<skipped message="no expect: block"/>' "$x"
check "junit: no raw bytes that are not UTF-8" bash -c '! LC_ALL=C grep -qP "[\x80-\xff]" "$1" || iconv -f UTF-8 -t UTF-8 "$1" >/dev/null' _ "$x"
if command -v xmllint >/dev/null; then check "junit: well-formed XML" xmllint --noout "$x"; fi

# a run folder inside the tree (runs/NAME/ with its spec.resolved.yaml) is not a test
mkdir -p "$tmp/proj"
cp tests/specs/errors/num_units_zero.yaml "$tmp/proj/"
"$specnet" train tests/specs/train_blobs.yaml --set train.epochs=1 --out "$tmp/proj/runs/train_blobs" --quiet
"$specnet" test "$tmp/proj" >"$tmp/proj.out" 2>&1
check "test PATH skips run folders (those holding metrics.jsonl)" \
  bash -c '! grep -q spec.resolved "$1" && test "$(tail -n 1 "$1")" = "1 passed, 0 failed"' _ "$tmp/proj.out"
check "a run folder named itself is searched" \
  bash -c '"$1" test "$2" | grep -q "spec.resolved.yaml"' _ "$specnet" "$tmp/proj/runs/train_blobs"

code() { "$specnet" "$@" >/dev/null 2>&1; echo $?; }
check "--jobs 0 is a usage error" test "$(code test "$tmp/suite" --jobs 0)" -eq 2
check "--jobs x is a usage error" test "$(code test "$tmp/suite" --jobs x)" -eq 2
check "--junit into a missing folder is a usage error" test "$(code test "$tmp/suite" --junit "$tmp/no/such/j.xml")" -eq 2
check "the error corpus passes with --jobs 4" bash -c '"$1" test tests/specs/errors --jobs 4 | tail -n 1 | grep -qE "^[0-9]+ passed, 0 failed$"' _ "$specnet"
exit $fail
