#!/usr/bin/env bash
# Generation speed (issue 15): milliseconds per token of specs/char_transformer.yaml
# (context 64, 4 blocks, D 128) with the key/value cache (one position per token)
# and with a full forward pass over the window per token (--no-kv-cache), side by
# side, in the AOT executable (`specnet generate` runs the same runtime code after
# a JIT compile whose time varies more than 63 tokens take). The weights come from a short training run (the speed does not depend
# on them). ms/token = (time for N tokens - time for 0 tokens) / N, the best of
# REPEAT runs; N = 63 keeps the text inside the window (the cache's case); LONG
# tokens go past it, where the cache gives way to the full pass. Prints the load.
#
#   bench/generate.sh                    # build/cli/specnet, 1 thread, 5 repeats
#   SPECNET=path THREADS=1 REPEAT=5 LONG=300 WEIGHTS=model.safetensors bench/generate.sh
#
# Needs the fortunes text (Debian's fortunes-min or fortunes). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
SPECNET=${SPECNET:-build/cli/specnet}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-5}
LONG=${LONG:-300}
spec=specs/char_transformer.yaml
work=$(mktemp -d "${TMPDIR:-/tmp}/specnet-generate.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OPENBLAS_NUM_THREADS=1 SPECNET_NUM_THREADS=$THREADS
w=${WEIGHTS:-}
if [ -z "$w" ]; then
  "$SPECNET" train "$spec" --epochs 1 --set data.train.windows=64 --out "$work/run" --quiet >/dev/null
  w=$work/run/model.safetensors
fi
"$SPECNET" build "$spec" --weights "$w" -o "$work/model" --quiet

best() { # best CMD...: the least wall time of REPEAT runs, in seconds
  local b=
  for _ in $(seq "$REPEAT"); do
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    b=$(awk -v b="$b" -v t="$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')" \
      'BEGIN { print (b == "" || t < b) ? t : b }')
  done
  echo "$b"
}
per_token() { # per_token N CMD...: ms per token over N tokens
  local n=$1
  shift
  local t0 tn
  t0=$(best "$@" --tokens 0)
  tn=$(best "$@" --tokens "$n")
  awk -v a="$t0" -v b="$tn" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }'
}
echo "load: $(uptime | sed 's/.*load average/load average/')"
echo "threads $THREADS; best of $REPEAT; ms/token"
run=("$work/model" --generate --seed 3 --temperature 0.8 --top-k 20)
kv=$(per_token 63 "${run[@]}")
full=$(per_token 63 "${run[@]}" --no-kv-cache)
long=$(per_token "$LONG" "${run[@]}")
echo "63 tokens (inside the window): kv cache $kv, full pass $full" \
  "($(awk -v a="$full" -v b="$kv" 'BEGIN { printf "%.1fx", a / b }' ) faster)"
echo "$LONG tokens (63 cached, then a full pass per token once the window slides): $long"
