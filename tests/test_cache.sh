#!/usr/bin/env bash
# The compile cache: a second compile of the same spec uses the cached objects (and
# says so), gives identical results, and a corrupted entry (anywhere in it) is
# detected and rebuilt rather than trusted; --no-cache neither reads nor writes it;
# a different spec or dtype gets its own entry.
set -uo pipefail
specnet=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SPECNET_CACHE_DIR=$tmp/cache
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
spec=tests/specs/train_blobs.yaml
# the whole output first: `| head -1` would kill the run with SIGPIPE mid-training
run() { "$specnet" train "$spec" --out "$tmp/$1" "${@:2}" >"$tmp/$1.out"; head -1 "$tmp/$1.out"; }
strip() { sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$1"; }

first=$(run a)
check "a cold compile does not claim the cache ($first)" bash -c '! grep -q "from the cache" <<<"$1"' _ "$first"
check "the cold compile wrote one entry" test "$(ls "$SPECNET_CACHE_DIR" | wc -l)" -eq 1
second=$(run b)
check "the second compile is a hit ($second)" grep -q "from the cache" <<<"$second"
check "a hit gives identical metrics" diff <(strip "$tmp/a/metrics.jsonl") <(strip "$tmp/b/metrics.jsonl")
entry=$(ls "$SPECNET_CACHE_DIR"/*.o)
printf '\xff\xff\xff\xff' | dd of="$entry" bs=1 seek=200 conv=notrunc status=none
third=$(run c)
check "a corrupted entry is not used ($third)" bash -c '! grep -q "from the cache" <<<"$1"' _ "$third"
check "after the rebuild the results are the same" diff <(strip "$tmp/a/metrics.jsonl") <(strip "$tmp/c/metrics.jsonl")
fourth=$(run d)
check "the rebuilt entry is a hit again" grep -q "from the cache" <<<"$fourth"
head -c 100 "$entry" >"$entry.cut" && mv "$entry.cut" "$entry"
check "a truncated entry is rebuilt" bash -c '! grep -q "from the cache" <<<"$1"' _ "$(run e)"
# an entry holds every object of the program (one per module compiled in
# parallel); damage to the last one is caught as well
printf '\x5a\x5a\x5a\x5a' | dd of="$entry" bs=1 seek=$(($(stat -c %s "$entry") - 40)) conv=notrunc status=none
check "a corrupted last object is not used" bash -c '! grep -q "from the cache" <<<"$1"' _ "$(run e2)"
rm -rf "$SPECNET_CACHE_DIR"
run f --no-cache >/dev/null
check "--no-cache writes nothing" test ! -e "$SPECNET_CACHE_DIR"
run g >/dev/null
"$specnet" train "$spec" --out "$tmp/h" --dtype f64 >/dev/null
check "f64 gets an entry of its own" test "$(ls "$SPECNET_CACHE_DIR" | wc -l)" -eq 2
exit $fail
