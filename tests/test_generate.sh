#!/usr/bin/env bash
# Text generation (specnet generate, the AOT executable's --generate) against a model
# whose next token is known by construction: a bytes bigram model (embedding with
# the identity table, dense 256 softmax) whose weights, written here with NumPy, make
# each letter's successor certain, or one of two successors equally likely:
#   - greedy (--temperature 0) continues 'abc' with 'defg...', wrapping after 'z',
#     past the 8-token window (the window slides) and from a prompt longer than it;
#   - --top-k 1 at temperature 1 is greedy; with two equally likely successors and
#     --top-k 2 every step is one of them and both occur; the same seed gives the
#     same text, another seed another; the AOT executable gives the CLI's text;
#   - the key/value cache (the default where the model allows it; the bigram and a
#     small causal transformer) gives the text of a full forward pass per token
#     (--no-kv-cache), in the CLI and the executable, past the window too;
#   - errors: a prompt character outside a chars vocabulary (exit 2, named), a spec
#     that is not a language model (exit 1), a negative temperature (exit 2).
set -uo pipefail
specnet=$(realpath "$1")
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: /usr/bin/python3 lacks numpy"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

for i in $(seq 20); do echo "abcdefghijklmnopqrstuvwxyz"; done >"$tmp/abc.txt"
cat >"$tmp/shift.yaml" <<EOF
specnet: 1
name: shift
seed: 5
data:
  train: {format: text, path: $tmp/abc.txt, tokenizer: bytes, mode: lm, context: 8}
model:
  input: [8]
  layers:
    - embedding: {vocab: 256, dim: 256}
    - dense: {units: 256, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
EOF
"$py" - "$tmp" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, "tests/interop")
from torch_interop import write_safetensors  # numpy only
d = sys.argv[1]
a, z = ord("a"), ord("z")
for name, steps in (("one", [1]), ("two", [1, 2])):
    w = np.zeros((256, 256), np.float32)  # dense (out, in): logit of next given current
    for b in range(256):
        for s in steps:
            nxt = a + (b - a + s) % 26 if a <= b <= z else a
            w[nxt, b] = 30.0
    write_safetensors(f"{d}/{name}.safetensors", {"embedding1.weight": np.eye(256, dtype=np.float32),
                                                 "dense1.weight": w, "dense1.bias": np.zeros(256, np.float32)})
EOF
[ -f "$tmp/one.safetensors" ] || { echo "FAIL: could not write the weights"; exit 1; }
gen() { "$specnet" generate "$tmp/shift.yaml" "$@"; }

check "greedy: 'abc' goes on 'defg...', wrapping after 'z', past the 8-token window" \
  test "$(gen --weights "$tmp/one.safetensors" --prompt abc --tokens 30 --temperature 0)" = \
  "abcdefghijklmnopqrstuvwxyzabcdefg"
check "a prompt longer than the window continues from its last token" \
  test "$(gen --weights "$tmp/one.safetensors" --prompt abcdefghijkl --tokens 5 --temperature 0)" = \
  "abcdefghijklmnopq"
check "--top-k 1 at temperature 1 is greedy" \
  test "$(gen --weights "$tmp/one.safetensors" --prompt x --tokens 4 --top-k 1)" = "xyzab"
gen --weights "$tmp/two.safetensors" --prompt a --tokens 300 --top-k 2 --seed 1 >"$tmp/s1.txt"
check "two equally likely successors: every step is +1 or +2, and both occur" "$py" - "$tmp/s1.txt" <<'EOF'
import sys
t = open(sys.argv[1]).read().rstrip("\n")
assert len(t) == 301, len(t)
steps = [(ord(y) - ord(x)) % 26 for x, y in zip(t, t[1:])]
assert set(steps) == {1, 2}, set(steps)
assert 100 < steps.count(1) < 200, steps.count(1)  # 150 expected, sd 8.7
EOF
gen --weights "$tmp/two.safetensors" --prompt a --tokens 50 --temperature 1e-310 --seed 1 >"$tmp/cold.txt"
check "a temperature near 0: still one of the two likeliest successors (no NaN weights)" "$py" - "$tmp/cold.txt" <<'EOF'
import sys
t = open(sys.argv[1]).read().rstrip("\n")
assert len(t) == 51, len(t)
assert {(ord(y) - ord(x)) % 26 for x, y in zip(t, t[1:])} <= {1, 2}, t
EOF
gen --weights "$tmp/two.safetensors" --prompt a --tokens 300 --top-k 2 --seed 1 >"$tmp/s1b.txt"
gen --weights "$tmp/two.safetensors" --prompt a --tokens 300 --top-k 2 --seed 2 >"$tmp/s2.txt"
check "the same seed gives the same text" cmp -s "$tmp/s1.txt" "$tmp/s1b.txt"
check "another seed another text" bash -c '! cmp -s "$1" "$2"' _ "$tmp/s1.txt" "$tmp/s2.txt"

"$specnet" build "$tmp/shift.yaml" --weights "$tmp/two.safetensors" -o "$tmp/shift_exe" --quiet
check "the AOT executable's --generate gives the CLI's text (same seed)" \
  cmp -s "$tmp/s1.txt" <("$tmp/shift_exe" --generate --prompt a --tokens 300 --top-k 2 --seed 1)
check "the AOT executable: greedy too" \
  test "$("$tmp/shift_exe" --generate --prompt abc --tokens 5 --temperature 0 2>&1)" = "abcdefgh"
printf '97,98,99,100,101,102,103,104\n' >"$tmp/ids.csv"
if [ -w /dev/full ]; then # a full disk: an error and exit 1, not a silent success
  check "generate to a full disk: exit 1, says so" bash -c \
    '"$1" generate "$2" --weights "$3" --tokens 5 2>&1 >/dev/full | grep -q "cannot write the text" &&
     { "$1" generate "$2" --weights "$3" --tokens 5 >/dev/full 2>&1; test $? -eq 1; }' \
    _ "$specnet" "$tmp/shift.yaml" "$tmp/one.safetensors"
  check "the AOT executable to a full disk: exit 1, with --generate and --input" bash -c \
    '"$1" --generate --tokens 5 2>&1 >/dev/full | grep -q "cannot write the text" &&
     { "$1" --generate --tokens 5 >/dev/full 2>&1; test $? -eq 1; } &&
     "$1" --input "$2" 2>&1 >/dev/full | grep -q "cannot write the output" &&
     { "$1" --input "$2" >/dev/full 2>&1; test $? -eq 1; }' _ "$tmp/shift_exe" "$tmp/ids.csv"
fi
for bad in abc 0 -2 99999999999; do
  check "the AOT executable: --threads $bad is a usage error (2), with and without --generate" bash -c \
    '"$1" --generate --threads "$2" 2>&1 | grep -q "threads needs a whole number from 1 to 1024" &&
     { "$1" --generate --threads "$2" >/dev/null 2>&1; test $? -eq 2; } &&
     { "$1" --input "$1" --threads "$2" >/dev/null 2>&1; test $? -eq 2; }' _ "$tmp/shift_exe" "$bad"
done

# the key/value cache (the default where the model allows it) against a full
# forward pass per token (--no-kv-cache): the same text, past the window too
gen --weights "$tmp/two.safetensors" --prompt a --tokens 300 --top-k 2 --seed 1 --no-kv-cache >"$tmp/s1full.txt"
check "bigram: --no-kv-cache gives the cached path's text" cmp -s "$tmp/s1.txt" "$tmp/s1full.txt"
cat >"$tmp/tiny_gpt.yaml" <<EOF
specnet: 1
name: tiny_gpt
seed: 5
data:
  train: {format: text, path: $tmp/abc.txt, tokenizer: bytes, mode: lm, context: 8, windows: 64}
model:
  input: [8]
  layers:
    - {name: tok, embedding: {vocab: 256, dim: 16}}
    - {name: x0, position_embedding: {}}
    - {name: ln1, layer_norm: {}}
    - {name: att, attention: {heads: 2, causal: true}}
    - {name: mid, add: {}, inputs: [x0, att]}
    - {name: up, dense: {units: 32, activation: gelu_tanh}}
    - {name: down, dense: {units: 16}}
    - {name: out, add: {}, inputs: [mid, down]}
    - {name: head, dense: {units: 256, activation: softmax}}
train:
  loss: sparse_categorical_crossentropy
  epochs: 1
EOF
"$specnet" train "$tmp/tiny_gpt.yaml" --out "$tmp/gpt" --quiet
"$specnet" build "$tmp/tiny_gpt.yaml" --weights "$tmp/gpt/model.safetensors" -o "$tmp/gpt_exe" --quiet
for seed in 1 2 3; do
  opts=(--prompt ab --tokens 30 --temperature 0.9 --top-k 5 --seed $seed)
  gpt=("$specnet" generate "$tmp/tiny_gpt.yaml" --weights "$tmp/gpt/model.safetensors" "${opts[@]}")
  kv=$("${gpt[@]}")
  check "transformer, seed $seed: the key/value cache gives the full pass's text" \
    test -n "$kv" -a "$kv" = "$("${gpt[@]}" --no-kv-cache)"
  check "transformer, seed $seed: the AOT executable gives it with and without the cache" bash -c \
    'test "$1" = "$("$2" --generate "${@:3}")" && test "$1" = "$("$2" --generate "${@:3}" --no-kv-cache)"' \
    _ "$kv" "$tmp/gpt_exe" "${opts[@]}"
done

# model.pad_id on a language model: the full pass leaves the padding id out of
# attention's keys; the cache does not mask, so it must not run such a model
# (here the padding id 0 is the line break of a chars table, which the prompt holds)
sed -e 's/tokenizer: bytes/tokenizer: chars/' -e 's/vocab: 256/vocab: 27/' -e 's/units: 256/units: 27/' \
  -e 's/^  input: \[8\]/  input: [8]\n  pad_id: 0/' "$tmp/tiny_gpt.yaml" >"$tmp/pad_gpt.yaml"
"$specnet" train "$tmp/pad_gpt.yaml" --out "$tmp/pad_gpt" --quiet
for seed in 1 2 3; do
  pad=("$specnet" generate "$tmp/pad_gpt.yaml" --weights "$tmp/pad_gpt/model.safetensors" --prompt $'ab\ncd\n' --tokens 20 --seed $seed)
  check "pad_id: the default (cache where it applies) gives the full pass's text, seed $seed" \
    test "$("${pad[@]}")" = "$("${pad[@]}" --no-kv-cache)"
done

# a chars vocabulary (a-z and the line break): '!' is not in it
sed -e 's/tokenizer: bytes/tokenizer: chars/' -e 's/vocab: 256/vocab: 27/' -e 's/units: 256/units: 27/' \
  "$tmp/shift.yaml" >"$tmp/chars.yaml"
"$specnet" train "$tmp/chars.yaml" --set train.epochs=0 --out "$tmp/chars" --quiet
check "a prompt character outside the chars vocabulary: exit 2, named" bash -c \
  '"$1" generate "$2" --weights "$3" --prompt "ab!" 2>&1 >/dev/null | grep -q "character .!. (U+0021) at byte 2 is not in the model.s vocabulary of 27" &&
   { "$1" generate "$2" --weights "$3" --prompt "ab!" >/dev/null 2>&1; test $? -eq 2; }' \
  _ "$specnet" "$tmp/chars.yaml" "$tmp/chars/model.safetensors"
check "chars: the vocabulary's own characters generate (27 ids back to letters)" bash -c \
  'out=$("$1" generate "$2" --weights "$3" --prompt ab --tokens 20 --seed 4) && [ ${#out} -ge 22 ] &&
   ! printf %s "$out" | grep -q "[^a-z]"' _ "$specnet" "$tmp/chars.yaml" "$tmp/chars/model.safetensors"
# a model with more outputs (40) than the vocabulary has characters (27): only ids
# with text are drawn, so 30 tokens are 30 characters (untrained: ids 27..39 are as
# likely as the rest)
sed -e 's/vocab: 27/vocab: 40/' -e 's/units: 27/units: 40/' "$tmp/chars.yaml" >"$tmp/wide.yaml"
"$specnet" train "$tmp/wide.yaml" --set train.epochs=0 --out "$tmp/wide" --quiet
"$specnet" build "$tmp/wide.yaml" --weights "$tmp/wide/model.safetensors" -o "$tmp/wide_exe" --quiet
"$specnet" generate "$tmp/wide.yaml" --weights "$tmp/wide/model.safetensors" --prompt ab --tokens 30 --seed 4 >"$tmp/wide.txt"
check "more outputs than characters: 30 tokens are 30 characters of the vocabulary" bash -c \
  'test "$(wc -c <"$1")" -eq 33 && ! grep -q "[^a-z]" "$1"' _ "$tmp/wide.txt"
check "more outputs than characters: the AOT executable gives the same text" \
  cmp -s "$tmp/wide.txt" <("$tmp/wide_exe" --generate --prompt ab --tokens 30 --seed 4)
# a vocab.json that is not this model's: more characters than its embedding reads
# (the cache would read past the table), none, or a code point beyond Unicode
for bad in big:"$(seq -s ', ' 32 71)" none: huge:1114112; do
  mkdir -p "$tmp/vocab_${bad%%:*}"
  cp "$tmp/chars/model.safetensors" "$tmp/vocab_${bad%%:*}/"
  printf '{"tokenizer": "chars", "first_id": 0, "pad_id": -1, "codepoints": [%s]}\n' "${bad#*:}" \
    >"$tmp/vocab_${bad%%:*}/vocab.json"
done
check "a vocab.json larger than the embedding: exit 1 at the embedding's line" bash -c \
  '"$1" generate "$2" --weights "$3" 2>&1 >/dev/null | grep -q "chars.yaml:[0-9]*:[0-9]*: error: embedding1: embedding vocab 27 is smaller than the text.s vocabulary of 40 tokens" &&
   { "$1" generate "$2" --weights "$3" >/dev/null 2>&1; test $? -eq 1; }' \
  _ "$specnet" "$tmp/chars.yaml" "$tmp/vocab_big/model.safetensors"
for bad in none huge; do
  check "a vocab.json with $bad characters is refused (exit 1)" bash -c \
    '"$1" generate "$2" --weights "$3" 2>&1 >/dev/null | grep -q "vocab.json: not a vocabulary file" &&
     { "$1" generate "$2" --weights "$3" >/dev/null 2>&1; test $? -eq 1; }' \
    _ "$specnet" "$tmp/chars.yaml" "$tmp/vocab_$bad/model.safetensors"
done
check "generate on a spec that is not a language model: exit 1, says why" bash -c \
  '"$1" generate specs/mnist_mlp.yaml --weights "$2" 2>&1 | grep -q "generate needs a language model" &&
   { "$1" generate specs/mnist_mlp.yaml --weights "$2" >/dev/null 2>&1; test $? -eq 1; }' \
  _ "$specnet" "$tmp/one.safetensors"
check "a negative temperature is a usage error (2)" bash -c \
  '"$1" generate "$2" --weights "$3" --temperature -1 >/dev/null 2>&1; test $? -eq 2' \
  _ "$specnet" "$tmp/shift.yaml" "$tmp/one.safetensors"
exit $fail
