#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, one after the other.
#
#   tests/fuzz/run.sh SECONDS [BUILD_DIR]      (BUILD_DIR: build-fuzz)
#
# Build the targets first (docs/testing.md, "Fuzzing"). Per target the corpus
# lives in BUILD_DIR/fuzz/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET/,
# and for the spec target from every spec in the repo, for the binary formats
# from make_seeds.sh; it grows from run to run. A crash, leak, timeout (10 s) or
# out-of-memory (2 GiB) leaves its input in BUILD_DIR/fuzz/crashes/TARGET/ and
# makes the script exit 1 after the other targets ran. Reproduce with
#   BUILD_DIR/tests/fuzz/TARGET FILE
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [BUILD_DIR]}
build=$(cd "${2:-$root/build-fuzz}" && pwd) || exit 2
bin=$build/tests/fuzz
work=$build/fuzz
mkdir -p "$work/corpus" "$work/crashes" "$work/logs"

bash "$here/make_seeds.sh" "$work/seeds" || exit 2
targets=()
for t in spec idx safetensors csv npy text; do
  [ -x "$bin/fuzz_$t" ] && targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $bin (build with SPECNET_FUZZ=ON)" >&2; exit 2; }

status=0
for t in "${targets[@]}"; do
  corpus=$work/corpus/$t
  mkdir -p "$corpus" "$work/crashes/$t"
  # Seeds: copied under names of their own, so a rerun does not duplicate them.
  seed() { for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$corpus/seed-$(echo "$f" | cksum | cut -d' ' -f1)"; done; return 0; }
  [ -d "$here/corpus/$t" ] && seed "$here/corpus/$t"/*
  [ -d "$work/seeds/$t" ] && seed "$work/seeds/$t"/*
  extra=()
  case $t in
    spec)
      seed $(find "$root/tests/specs" "$root/specs" "$root/tests/parse" -name '*.yaml' 2>/dev/null)
      extra=(-dict="$here/spec.dict" -max_len=8192)
      ;;
    *) extra=(-max_len=4096) ;;
  esac
  log=$work/logs/$t.log
  start=$SECONDS
  "$bin/fuzz_$t" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/$t/" "${extra[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
  units=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then
    echo "fuzz_$t: ${execs:-?} runs in $((SECONDS - start)) s, no crash (${cov:-cov: ?}, corpus $units)"
  else
    status=1
    echo "fuzz_$t: FAILED after ${execs:-?} runs (exit $rc); input in $work/crashes/$t/, log $log:"
    grep -E '^==[0-9]+==ERROR|SUMMARY|runtime error|^[^ ]+\.c:[0-9]+' "$log" | head -n 20
  fi
done
exit $status
