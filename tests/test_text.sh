#!/usr/bin/env bash
# Text sources end to end (issue 15), on a text generated here: a Markov chain over
# 12 Greek letters (UTF-8, so the chars tokenizer has work to do), each letter
# followed by one of three others. A bigram model (embedding -> dense over the
# vocabulary, at every position) trains on it with the last 10% held out by
# position, and its validation loss must lie between two bounds computed here from
# the held-out windows themselves:
#   - below the unigram entropy of the held-out tokens (what a model that ignores the
#     current token gets at best): it learned the bigram statistics;
#   - not below the empirical conditional entropy of the held-out pairs (the least
#     cross-entropy any bigram model can have on them): the loss is the mean over
#     every position of -log p(next token), with nothing easier in its labels.
# (That the held-out text is in no training window is test_data_text's check.)
# Also: the counts `specnet check` prints, perplexity = exp(val_loss) and
# bits_per_token = val_loss / ln 2 in metrics.jsonl, predict on a text (the next
# letter at every position; also from a model executable), the validation loss
# against PyTorch's cross_entropy on the same weights and windows (when
# /usr/bin/python3 has torch), vocab.json read back by eval (a changed table is an
# error), an embedding smaller than the vocabulary, and classify through the command.
#
#   tests/test_text.sh SPECNET     (skipped, 77, without python3)
set -euo pipefail
specnet=$(realpath "$1")
command -v python3 >/dev/null || exit 77
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

python3 - <<'EOF'
import random
letters = "αβγδεζηθικλμ"
rng = random.Random(11)
nxt = {a: [letters[(i + k) % 12] for k in (1, 3, 7)] for i, a in enumerate(letters)}
out, a = [], letters[0]
for _ in range(20000):
    out.append(a)
    a = rng.choices(nxt[a], weights=[0.7, 0.2, 0.1])[0]
open("markov.txt", "w", encoding="utf-8").write("".join(out))
EOF

spec() { # NAME EMBEDDING_VOCAB
  cat >"$1.yaml" <<EOF
specnet: 1
name: $1
seed: 4
data:
  train: {format: text, path: markov.txt, tokenizer: chars, mode: lm, context: 16, windows: 3000}
  validation: {split: 0.1}
model:
  input: [16]
  layers:
    - embedding: {vocab: $2, dim: 8}
    - dense: {units: 12, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.02}}
  batch_size: 32
  epochs: 3
  metrics: [perplexity, bits_per_token]
EOF
}
spec bigram 12
spec small 8

# 20000 tokens: 18000 train (3000 random windows), 2000 held out: (2000-17)//16+1 = 124 windows
"$specnet" check bigram.yaml >check.txt
grep -q "data.train: text, lm, chars tokenizer, vocabulary 12: 18000 tokens, 3000 random (per epoch) windows of 16 tokens" check.txt ||
  fail "check: $(cat check.txt)"
grep -q "data.validation: text, lm, chars tokenizer, vocabulary 12: 2000 tokens, 124 swept windows of 16 tokens" check.txt ||
  fail "check: $(cat check.txt)"
grep -q 'data.train: characters "αβγδεζηθικλμ"' check.txt || fail "check: $(cat check.txt)"

"$specnet" train bigram.yaml --out run --quiet >/dev/null
python3 - <<'EOF' || exit 1
import json, math, collections
text = open("markov.txt", encoding="utf-8").read()
held = text[int(len(text) * 0.9):]
C = 16
n = (len(held) - C - 1) // C + 1
pairs = [(held[i * C + j], held[i * C + j + 1]) for i in range(n) for j in range(C)]
first = collections.Counter(a for a, _ in pairs)
target = collections.Counter(b for _, b in pairs)
both = collections.Counter(pairs)
N = len(pairs)
h1 = -sum(v / N * math.log(v / N) for v in target.values())
h2 = -sum(v / N * math.log(v / first[a]) for (a, _), v in both.items())
last = [json.loads(l) for l in open("run/metrics.jsonl")][-1]
v = last["val_loss"]
print(f"val_loss {v:.4f}: bigram bound {h2:.4f}, unigram entropy {h1:.4f}")
ok = h2 - 1e-3 <= v < h1 - 0.5
ok &= abs(last["val_perplexity"] - math.exp(v)) < 1e-6 * math.exp(v)
ok &= abs(last["val_bits_per_token"] - v / math.log(2)) < 1e-6
vocab = json.load(open("run/vocab.json"))
ok &= vocab["codepoints"] == sorted(ord(c) for c in "αβγδεζηθικλμ") and vocab["first_id"] == 0
if not ok:
    print("FAIL:", last, vocab)
    raise SystemExit(1)
EOF

# the run's generations.txt (for its report): the first of its three samples is what
# `specnet generate` prints with the same options (seed 1), in the run's characters
"$specnet" generate bigram.yaml --weights run/model.safetensors --tokens 200 --temperature 0.8 --top-k 40 \
  --seed 1 >gen1.txt || fail "generate on the run"
python3 -c '
t = open("run/generations.txt", encoding="utf-8").read()
g = open("gen1.txt", encoding="utf-8").read()
assert len(g) == 201 and t.startswith(g), (g[:40], t[:40])
assert set(t) <= set("αβγδεζηθικλμ\n"), set(t)
' || fail "generations.txt does not start with generate's seed-1 text, or holds characters the text does not"
[ ! -e run/predictions.csv ] || fail "a language model's run wrote predictions.csv (a row of [positions, vocabulary] per window)"
"$specnet" report run -o run/report.html >/dev/null && grep -q "Sample generations" run/report.html ||
  fail "the report of a language model shows no sample generations"

# predict on a text: one window of 16 letters; each position's arg-max is the likeliest
# successor (letter i + 1, probability 0.7), so the ids read 1, 2, .., 11, 0, 1, .., 4
printf 'αβγδεζηθικλμαβγδε' >in.txt
pred=$("$specnet" predict bigram.yaml --weights run/model.safetensors --input in.txt --quiet)
[ "$pred" = "1,2,3,4,5,6,7,8,9,10,11,0,1,2,3,4" ] || fail "predict on in.txt: $pred"
# beside weights whose vocab.json is another model's (more characters than the
# embedding's vocab: their ids would be clamped to its last row), predict refuses
mkdir -p other && cp run/model.safetensors other/
python3 -c 'import json; json.dump({"tokenizer": "chars", "first_id": 0, "pad_id": -1,
  "codepoints": sorted(ord(c) for c in "abcdefghijklmnopqrstuvwxyzαβγδεζηθικλμ")}, open("other/vocab.json", "w"))'
"$specnet" predict bigram.yaml --weights other/model.safetensors --input in.txt >/dev/null 2>err.txt &&
  fail "predict took a vocab.json larger than the model's embedding"
grep -q "embedding vocab 12 is smaller than the text's vocabulary of 38 tokens" err.txt ||
  fail "predict with another model's vocab.json: $(cat err.txt)"

# the same from a model executable (specnet build), on the ids as a CSV row
"$specnet" build bigram.yaml --weights run/model.safetensors -o model >/dev/null
echo "0,1,2,3,4,5,6,7,8,9,10,11,0,1,2,3" >ids.csv
pred=$(./model --input ids.csv)
[ "$pred" = "1,2,3,4,5,6,7,8,9,10,11,0,1,2,3,4" ] || fail "model executable on ids.csv: $pred"

# eval reads vocab.json beside the weights: the same table gives the last epoch's figure
val=$("$specnet" eval bigram.yaml --weights run/model.safetensors --split validation)
want=$(python3 -c 'import json; print("%.6f" % [json.loads(l) for l in open("run/metrics.jsonl")][-1]["val_loss"])')
got=$(echo "$val" | sed -n 's/^val_loss \([0-9.]*\).*/\1/p')
python3 -c "import sys; sys.exit(abs($got - $want) > 1e-5)" || fail "eval val_loss $got, training said $want"
# PyTorch on the same weights and held-out windows: the mean cross-entropy over
# every position of every window (torch.nn.functional.cross_entropy) is specnet's
# validation loss. (The weights are checked against the table beside them, so this
# runs before vocab.json is changed below.)
py=/usr/bin/python3
if [ -x "$py" ] && "$py" -c 'import numpy, torch' 2>/dev/null; then
  torch_loss=$("$py" - <<'EOF'
import json, struct
import numpy as np, torch
def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    return {k: torch.from_numpy(np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], "<f4")
                                .reshape(v["shape"]).astype(np.float64))
            for k, v in h.items() if k != "__metadata__"}
w = read("run/model.safetensors")
table = json.load(open("run/vocab.json"))["codepoints"]
text = open("markov.txt", encoding="utf-8").read()
held = [table.index(ord(c)) for c in text[int(len(text) * 0.9):]]
C = 16
n = (len(held) - C - 1) // C + 1
x = torch.tensor([held[i * C:i * C + C] for i in range(n)])
y = torch.tensor([held[i * C + 1:i * C + C + 1] for i in range(n)])
emb = torch.nn.Embedding.from_pretrained(w["embedding1.weight"])
dense = torch.nn.Linear(8, 12).double()
dense.load_state_dict({"weight": w["dense1.weight"], "bias": w["dense1.bias"]})
with torch.no_grad():
    logits = dense(emb(x))  # [n, 16, 12]
    print("%.12g" % torch.nn.functional.cross_entropy(logits.reshape(-1, 12), y.reshape(-1)).item())
EOF
  )
  python3 -c "import sys; sys.exit(abs($got - $torch_loss) > 1e-5 * $torch_loss)" ||
    fail "validation loss: specnet $got, PyTorch $torch_loss"
else
  echo "(PyTorch cross-check skipped: /usr/bin/python3 lacks torch or numpy)"
fi

# a table without μ (U+03BC): the training text no longer fits it
python3 -c '
import json; v = json.load(open("run/vocab.json")); v["codepoints"].remove(0x3bc)
open("run/vocab.json", "w").write(json.dumps(v))'
if "$specnet" eval bigram.yaml --weights run/model.safetensors 2>err.txt; then fail "eval with a changed vocab.json succeeded"; fi
grep -q "markov.txt:1: character U+03BC at byte offset [0-9]* is not in the vocabulary of the training text (11 characters)" err.txt ||
  fail "changed vocab.json: $(cat err.txt)"

if "$specnet" train small.yaml --out run2 2>err.txt >/dev/null; then fail "an embedding of 8 for 12 tokens trained"; fi
grep -q "small.yaml:10:7: error: embedding1: embedding vocab 8 is smaller than the text's vocabulary of 12 tokens" err.txt ||
  fail "small embedding: $(cat err.txt)"
# classify: three category files (records between lines holding %; a blank record
# is skipped), the chars table from id 1 (0 pads), classes.json and vocab.json
mkdir topics
printf 'one\n%%\ntwo\n%%\nthree\n%%\nfour\n' >topics/alpha
printf 'uno\n%%\n\n%%\ndos\n%%\ntres\n' >topics/beta
printf 'eins\n%%\nzwei\n' >topics/gamma
cat >cls.yaml <<EOF
specnet: 1
name: cls
data:
  train: {format: text, path: topics, tokenizer: chars, mode: classify, length: 8}
model:
  input: [8]
  layers:
    - embedding: {vocab: 32, dim: 4}
    - flatten
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
EOF
"$specnet" check cls.yaml >check.txt
# the characters of the files (the separators' % and newlines too), ids 1..15
grep -q "data.train: text, classify, chars tokenizer, vocabulary 16 (id 0 pads): 9 records of 8 tokens in 3 categories: alpha 4, beta 3, gamma 2" check.txt ||
  fail "classify check: $(cat check.txt)"
grep -q 'data.train: characters "\\n%defhinorstuwz"' check.txt || fail "classify characters: $(cat check.txt)"
"$specnet" train cls.yaml --out cls --quiet >/dev/null
[ "$(cat cls/classes.json)" = '["alpha", "beta", "gamma"]' ] || fail "classes.json: $(cat cls/classes.json)"
grep -q '"first_id": 1, "pad_id": 0' cls/vocab.json || fail "vocab.json: $(cat cls/vocab.json)"
echo "test_text: ok"
