#!/usr/bin/env bash
# What a run leaves behind and the commands around it, through the specnet binary:
#   - metrics.csv holds exactly the columns and numbers of metrics.jsonl
#   - curves.svg is well-formed XML with a train, validation and test series per panel
#   - CSV sources (specs/csv_flowers.yaml): predict's classes give eval's accuracy,
#     on the labelled test CSV and on a features-only copy of it
#   - NPY sources written here with NumPy (when /usr/bin/python3 has it): class
#     labels, one-hot float targets (categorical_crossentropy), regression (mse);
#     predict on an .npy agrees with eval
#   - early stopping's summary line names the restored epoch
#   - a sweep of 4 runs (specs/sweep_blobs.yaml, --jobs 2) prints its table, sorted
#   - SPECNET_PREFETCH=0 gives the same metrics and weights as prefetching
# Needs /usr/bin/python3 for the XML and number checks; exits 77 (skipped) without.
set -uo pipefail
specnet=$1
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no /usr/bin/python3"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

# --- metrics.csv and curves.svg -------------------------------------------------
"$specnet" train tests/specs/train_blobs.yaml --out "$tmp/blobs" --quiet
check "metrics.csv equals metrics.jsonl (same keys in order, same numbers)" "$py" - "$tmp/blobs" <<'EOF'
import csv, json, math, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
with open(d + "/metrics.csv") as f:
    r = list(csv.reader(f))
assert r[0] == list(rows[0].keys()), (r[0], list(rows[0].keys()))
assert len(r) == len(rows) + 1
for j, c in zip(rows, r[1:]):
    for (k, v), cell in zip(j.items(), c):
        if v is None:
            assert cell == "", (k, cell)
        else:
            assert float(cell) == float(v), (k, cell, v)
EOF
check "curves.svg is well-formed XML with every series in each panel" "$py" - "$tmp/blobs/curves.svg" <<'EOF'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
svg = doc.documentElement
assert svg.tagName == "svg" and svg.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
panels = [g for g in doc.getElementsByTagName("g") if g.getAttribute("class") == "panel"]
assert [p.getAttribute("data-name") for p in panels] == ["loss", "accuracy"], panels
for p in panels:
    series = sorted(g.getAttribute("data-series") for g in p.getElementsByTagName("g"))
    assert series == ["test", "train", "validation"], series
    for g in p.getElementsByTagName("g"):
        pts = g.getElementsByTagName("polyline")[0].getAttribute("points").split()
        assert len(pts) == 5, pts  # one point per epoch
texts = [t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild]
assert "epoch" in texts and "train" in texts and "validation" in texts and "test" in texts
EOF

# --- standardize_targets: a regression on prices near 2e5 ---------------------------
# y = 200000 + 30000 x1 - 20000 x2 + 10000 x3 (exact, no noise): the model learns
# (y - mean) / std, predict and the AOT executable answer in the data's units.
awk 'BEGIN { srand(11); print "x1,x2,x3,price"
  for (i = 0; i < 400; i++) { a = rand(); b = rand(); c = rand()
    printf "%.6f,%.6f,%.6f,%.6f\n", a, b, c, 200000 + 30000 * a - 20000 * b + 10000 * c } }' >"$tmp/price.csv"
cat >"$tmp/price.yaml" <<EOF
specnet: 1
name: price
seed: 1
data:
  train: {format: csv, path: $tmp/price.csv, label: price, header: true}
  preprocess:
    - standardize_targets
model:
  input: [3]
  layers:
    - dense: {units: 1}
train:
  loss: mse
  optimizer: {adam: {learning_rate: 0.05}}
  epochs: 40
EOF
"$specnet" train "$tmp/price.yaml" --out "$tmp/price" --quiet
check "standardize_targets: the standardized loss reaches 1e-3 (raw targets stay near 1e8)" \
  awk -v a="$(tail -1 "$tmp/price/metrics.jsonl" | sed -E 's/.*"loss": ([0-9.e+-]+).*/\1/')" 'BEGIN { exit !(a < 1e-3) }'
check "targets.json holds the training targets' mean and std" "$py" - "$tmp/price" "$tmp/price.csv" <<'EOF'
import csv, json, math, sys
t = json.load(open(sys.argv[1] + "/targets.json"))
y = [float(r["price"]) for r in csv.DictReader(open(sys.argv[2]))]
m = sum(y) / len(y)
s = math.sqrt(sum((v - m) ** 2 for v in y) / len(y))
assert abs(t["mean"][0] - m) < 1e-6 * m and abs(t["std"][0] - s) < 1e-6 * s, (t, m, s)
EOF
tail -n +2 "$tmp/price.csv" | cut -d, -f1-3 >"$tmp/price_x.csv"
"$specnet" predict "$tmp/price.yaml" --weights "$tmp/price/model.safetensors" --input "$tmp/price_x.csv" \
  --output "$tmp/price_pred.csv" --quiet
check "predict answers in the data's units (within 0.5% of the price)" bash -c \
  'paste -d, "$1" <(tail -n +2 "$2" | cut -d, -f4) | awk -F, "(\$1 - \$2) ^ 2 > (0.005 * \$2) ^ 2 { bad = 1 } END { exit bad }"' \
  _ "$tmp/price_pred.csv" "$tmp/price.csv"
"$specnet" build "$tmp/price.yaml" --weights "$tmp/price/model.safetensors" -o "$tmp/price_exe" --quiet
"$tmp/price_exe" --input "$tmp/price_x.csv" --output "$tmp/price_exe.csv"
check "the AOT executable answers in the same units as predict" bash -c \
  'paste -d, "$1" "$2" | awk -F, "(\$1 - \$2) ^ 2 > (1e-5 * \$2) ^ 2 { bad = 1 } END { exit bad }"' \
  _ "$tmp/price_pred.csv" "$tmp/price_exe.csv"
"$specnet" train "$tmp/price.yaml" --out "$tmp/price_val" --quiet --set 'data.validation={split: 0.25}'
check "predictions.csv of a standardize_targets run: true and predicted prices in the data's units" "$py" - \
  "$tmp/price_val/predictions.csv" "$tmp/price.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
prices = [float(r["price"]) for r in csv.DictReader(open(sys.argv[2]))][300:]  # the last 25% held out
assert len(rows) == 100 == len(prices), (len(rows), len(prices))
for r, p in zip(rows, prices):
    t, y = float(r[1]), float(r[2])
    assert abs(t - p) < 1e-3 * p and abs(y - p) < 0.005 * p, (t, y, p)
EOF
check "standardize_targets with class labels is a spec error at the step" bash -c \
  '"$1" check specs/mnist_mlp.yaml --set "data.preprocess=[standardize_targets]" 2>&1 |
   grep -q "^--set:1:18: error: standardize_targets needs a regression loss"' _ "$specnet"

# --- curves.svg with wide tick labels (a regression on targets near 2e5) -------------
awk 'BEGIN { srand(5); print "x,y"; for (i = 0; i < 200; i++) { x = rand(); printf "%.6f,%.3f\n", x, 190000 + 10000 * x } }' \
  >"$tmp/wide.csv"
cat >"$tmp/wide.yaml" <<EOF
specnet: 1
name: wide
seed: 1
data:
  train: {format: csv, path: $tmp/wide.csv, label: y, header: true}
model:
  input: [1]
  layers:
    - dense: {units: 1}
train:
  loss: mse
  optimizer: {sgd: {learning_rate: 0.001}}
  epochs: 3
  metrics: [mae]
EOF
"$specnet" train "$tmp/wide.yaml" --out "$tmp/wide" --quiet
check "curves.svg: the y-axis title stays left of the widest tick label (1.9e+05 and wider)" "$py" - "$tmp/wide/curves.svg" <<'EOF'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
panels = [g for g in doc.getElementsByTagName("g") if g.getAttribute("class") == "panel"]
assert panels
for p in panels:
    texts = p.getElementsByTagName("text")
    ticks = [t for t in texts if t.getAttribute("text-anchor") == "end"]
    title = [t for t in texts if "rotate" in t.getAttribute("transform")][0]
    # 11 px DejaVu Sans: digits 0.64 em wide; the rotated 12 px title reaches 6 px right
    left = min(float(t.getAttribute("x")) - 0.64 * 11 * len(t.firstChild.data) for t in ticks)
    widest = max(len(t.firstChild.data) for t in ticks)
    assert widest >= 7, [t.firstChild.data for t in ticks]
    assert float(title.getAttribute("x")) + 6 < left, (title.getAttribute("x"), left)
EOF

# --- CSV: eval and predict agree ------------------------------------------------
spec=specs/csv_flowers.yaml
"$specnet" train "$spec" --set train.epochs=12 --out "$tmp/flowers" --quiet
eval_acc=$("$specnet" eval "$spec" --weights "$tmp/flowers/model.safetensors" |
  sed -E 's/.*test_accuracy ([0-9.]+).*/\1/')
"$specnet" predict "$spec" --weights "$tmp/flowers/model.safetensors" \
  --input specs/data/flowers_test.csv --output "$tmp/pred.csv" --quiet
pred_acc=$(paste -d, "$tmp/pred.csv" <(tail -n +2 specs/data/flowers_test.csv | cut -d, -f3) |
  awk -F, '{ n++; c += ($1 == $2) } END { printf "%.6f", c / n }')
check "predict's classes on the test CSV give eval's accuracy ($pred_acc vs $eval_acc)" \
  test "$pred_acc" = "$eval_acc"
check "predict writes one line per sample" test "$(wc -l <"$tmp/pred.csv")" -eq 60
tail -n +2 specs/data/flowers_test.csv | cut -d, -f1,2,4,5 >"$tmp/features.csv"
check "a features-only CSV (no header, no label) predicts the same" \
  cmp -s "$tmp/pred.csv" <("$specnet" predict "$spec" --weights "$tmp/flowers/model.safetensors" \
  --input "$tmp/features.csv")
check "--probs writes 3 probabilities per line, summing to 1" bash -c \
  '"$1" predict "$2" --weights "$3" --input specs/data/flowers_test.csv --probs |
   awk -F, "NF != 3 || (\$1 + \$2 + \$3 - 1) ^ 2 > 1e-10 { bad = 1 } END { exit bad }"' \
  _ "$specnet" "$spec" "$tmp/flowers/model.safetensors"
cut -d, -f1-3 "$tmp/features.csv" >"$tmp/narrow.csv"
check "predict on a file of the wrong width is a data error (1) naming it" bash -c \
  '"$1" predict "$2" --weights "$3" --input "$4" 2>&1 >/dev/null |
   grep -q "narrow.csv: samples have 3 values each, but model.input has 4" &&
   { "$1" predict "$2" --weights "$3" --input "$4" >/dev/null 2>&1; test $? -eq 1; }' \
  _ "$specnet" "$spec" "$tmp/flowers/model.safetensors" "$tmp/narrow.csv"

# --- CSV class labels by name ----------------------------------------------------
# the flowers with species named (setosa < versicolor < virginica sort as 0, 1, 2)
for part in train test; do
  awk -F, -v OFS=, 'NR > 1 { $3 = ($3 == 0 ? "setosa" : $3 == 1 ? "versicolor" : "virginica") } { print }' \
    "specs/data/flowers_$part.csv" >"$tmp/named_$part.csv"
done
sed -e "s|data/flowers_train.csv|$tmp/named_train.csv|; s|data/flowers_test.csv|$tmp/named_test.csv|" \
  "$spec" >"$tmp/named.yaml"
"$specnet" train "$tmp/named.yaml" --set train.epochs=12 --out "$tmp/named" --quiet
check "names as class labels train as their indices would (same metrics)" \
  diff <(sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$tmp/named/metrics.jsonl") \
       <(sed -E 's/, "[a-z_]*(seconds|second)": [^,}]*//g' "$tmp/flowers/metrics.jsonl")
check "the run records the class table in classes.json" \
  test "$(cat "$tmp/named/classes.json")" = '["setosa", "versicolor", "virginica"]'
"$specnet" predict "$tmp/named.yaml" --weights "$tmp/named/model.safetensors" \
  --input "$tmp/named_test.csv" --output "$tmp/named_pred.csv" --quiet
check "predict prints the class names, the same classes as with indices" \
  diff <(sed 's/^setosa$/0/; s/^versicolor$/1/; s/^virginica$/2/' "$tmp/named_pred.csv") "$tmp/pred.csv"
named_acc=$(paste -d, "$tmp/named_pred.csv" <(tail -n +2 "$tmp/named_test.csv" | cut -d, -f3) |
  awk -F, '{ n++; c += ($1 == $2) } END { printf "%.6f", c / n }')
check "predict's names give eval's accuracy ($named_acc vs $eval_acc)" test "$named_acc" = "$eval_acc"
"$specnet" build "$tmp/named.yaml" --weights "$tmp/named/model.safetensors" -o "$tmp/named_exe" --quiet
check "the AOT executable prints the class names too" \
  cmp -s "$tmp/named_pred.csv" <("$tmp/named_exe" --input "$tmp/features.csv")

# --- early stopping ---------------------------------------------------------------
out=$("$specnet" train tests/specs/train_blobs.yaml --out "$tmp/early" --set train.epochs=30 \
  --set 'train.early_stopping={monitor: val_loss, patience: 1, min_delta: 0.01, restore_best: true}' 2>&1)
check "early stopping stops and says which weights it kept" \
  grep -Eq '^early stopping: val_loss did not improve for 1 epoch; stopped after epoch [0-9]+ of 30; best val_loss [0-9.]+ at epoch [0-9]+; restored the weights of epoch [0-9]+$' <<<"$out"
check "metrics.jsonl ends at the stopping epoch" \
  test "$(wc -l <"$tmp/early/metrics.jsonl")" -lt 30

# --- prefetching changes nothing but the time ---------------------------------------
SPECNET_PREFETCH=0 "$specnet" train tests/specs/train_blobs.yaml --out "$tmp/noprefetch" --quiet
check "SPECNET_PREFETCH=0 gives the same weights" cmp -s "$tmp/blobs/model.safetensors" "$tmp/noprefetch/model.safetensors"
check "SPECNET_PREFETCH=0 gives the same losses" \
  diff <(sed -E 's/, "seconds".*//' "$tmp/blobs/metrics.jsonl") <(sed -E 's/, "seconds".*//' "$tmp/noprefetch/metrics.jsonl")

# --- a sweep of 4 runs ------------------------------------------------------------
"$specnet" train specs/sweep_blobs.yaml --out "$tmp/sweep" --jobs 2 >"$tmp/sweep.txt" 2>&1
check "the sweep exits 0" test $? -eq 0
table=$(sed -n '/^ *run /,$p' "$tmp/sweep.txt" | grep -E '^ +[0-9]+ ')
check "the sweep prints a table of 4 runs" test "$(wc -l <<<"$table")" -eq 4
check "the table is sorted by val_loss, lowest first" \
  bash -c 'awk "{ print \$4 }" <<<"$1" | sort -g -c' _ "$table"
check "every run has its folder and metrics" \
  bash -c 'for i in 1 2 3 4; do test -s "$1/sweep-$i/metrics.jsonl" || exit 1; done' _ "$tmp/sweep"
check "sweep.csv has a header and 4 rows" test "$(wc -l <"$tmp/sweep/sweep.csv")" -eq 5
check "each run got its own settings" \
  bash -c 'grep -q "learning_rate: 0.01" "$1/sweep-3/spec.resolved.yaml" && grep -q "batch_size: 64" "$1/sweep-4/spec.resolved.yaml"' _ "$tmp/sweep"

# --- NPY, float targets ------------------------------------------------------------
if "$py" -c 'import numpy' 2>/dev/null; then
  "$py" - "$tmp" <<'EOF'
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(3)
def blobs(n):
    y = np.arange(n) % 3
    centers = np.array([[0, 3], [3, -2], [-3, -2]], dtype=np.float64)
    x = centers[y] + rng.normal(0, 0.7, (n, 2))
    # samples of shape (2, 3): the 2 coordinates and derived features, as an image-like array
    x = np.stack([x, x ** 2 / 10, np.sin(x)], axis=2).astype(np.float32)
    return x, y
for name, n in (("train", 600), ("test", 150)):
    x, y = blobs(n)
    np.save(f"{d}/x_{name}.npy", x)
    np.save(f"{d}/y_{name}.npy", y.astype(np.int64))
    np.save(f"{d}/t_{name}.npy", np.eye(3, dtype=np.float64)[y])  # one-hot, float64
    w = np.array([1.5, -2.0, 0.5, 0.25, 1.0, -1.0])
    np.save(f"{d}/r_{name}.npy", (x.reshape(n, -1) @ w + 0.3).astype(np.float32))  # regression
EOF
  cat >"$tmp/npy.yaml" <<'EOF'
specnet: 1
name: npy_blobs
seed: 1
data:
  train: {format: npy, x: x_train.npy, y: y_train.npy}
  test: {format: npy, x: x_test.npy, y: y_test.npy}
model:
  input: [2, 3]
  layers:
    - flatten
    - dense: {units: 16, activation: relu}
    - dense: {units: 3, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
  optimizer: {adam: {learning_rate: 0.01}}
  epochs: 5
  metrics: [accuracy]
EOF
  "$specnet" train "$tmp/npy.yaml" --out "$tmp/npy" --quiet
  acc=$(tail -1 "$tmp/npy/metrics.jsonl" | sed -E 's/.*"test_accuracy": ([0-9.]+).*/\1/')
  check "an NPY classifier learns (test accuracy $acc)" awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }'
  eval_acc=$("$specnet" eval "$tmp/npy.yaml" --weights "$tmp/npy/model.safetensors" |
    sed -E 's/.*test_accuracy ([0-9.]+).*/\1/')
  "$specnet" predict "$tmp/npy.yaml" --weights "$tmp/npy/model.safetensors" --input "$tmp/x_test.npy" \
    --output "$tmp/npy_pred.csv" --quiet
  pred_acc=$("$py" -c 'import numpy as np, sys
p = np.loadtxt(sys.argv[1], dtype=np.int64); y = np.load(sys.argv[2])
print("%.6f" % (p == y).mean())' "$tmp/npy_pred.csv" "$tmp/y_test.npy")
  check "predict on .npy gives eval's accuracy ($pred_acc vs $eval_acc)" test "$pred_acc" = "$eval_acc"

  sed -e 's/y_train.npy/t_train.npy/; s/y_test.npy/t_test.npy/' \
      -e 's/sparse_categorical_crossentropy/categorical_crossentropy/' "$tmp/npy.yaml" >"$tmp/onehot.yaml"
  "$specnet" train "$tmp/onehot.yaml" --out "$tmp/onehot" --quiet
  acc=$(tail -1 "$tmp/onehot/metrics.jsonl" | sed -E 's/.*"test_accuracy": ([0-9.]+).*/\1/')
  check "one-hot float64 targets train categorical_crossentropy (test accuracy $acc)" \
    awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }'
  check "integer labels are one-hot encoded for categorical_crossentropy" \
    "$specnet" train "$tmp/npy.yaml" --out "$tmp/onehot2" --quiet --set train.loss=categorical_crossentropy

  cat >"$tmp/reg.yaml" <<'EOF'
specnet: 1
name: npy_regression
seed: 1
data:
  train: {format: npy, x: x_train.npy, y: r_train.npy}
  test: {format: npy, x: x_test.npy, y: r_test.npy}
  validation: {split: 0.2}
model:
  input: [2, 3]
  layers:
    - flatten
    - dense: {units: 1}
train:
  loss: mse
  optimizer: {adam: {learning_rate: 0.05}}
  epochs: 30
  metrics: [mae]
EOF
  "$specnet" train "$tmp/reg.yaml" --out "$tmp/reg" --quiet
  mse=$(tail -1 "$tmp/reg/metrics.jsonl" | sed -E 's/.*"test_loss": ([0-9.e-]+).*/\1/')
  check "a linear regression on float NPY targets fits (test mse $mse)" awk -v a="$mse" 'BEGIN { exit !(a < 0.01) }'
  "$specnet" predict "$tmp/reg.yaml" --weights "$tmp/reg/model.safetensors" --input "$tmp/x_test.npy" \
    --output "$tmp/reg_pred.csv" --quiet
  check "predict writes the regression's values" "$py" -c 'import numpy as np, sys
p = np.loadtxt(sys.argv[1]); r = np.load(sys.argv[2])
assert p.shape == r.shape and np.abs(p - r).max() < 0.5, np.abs(p - r).max()' "$tmp/reg_pred.csv" "$tmp/r_test.npy"
  check "labels for a float-target loss of another width are an error (1)" bash -c \
    '"$1" train "$2" --out "$3/bad" --quiet --set model.layers.1.dense.units=2 2>&1 | grep -q "1 target values per sample, but the model.s loss reads 2"' \
    _ "$specnet" "$tmp/reg.yaml" "$tmp"
else
  echo "skip: NPY checks (no numpy in /usr/bin/python3)"
fi
exit $fail
