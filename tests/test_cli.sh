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
check "unknown option is a usage error (2)" test "$(code train "$spec" --epohcs 3)" -eq 2
for args in "eval $spec --weights w --out d" "predict $spec --weights w --input i --split test" \
  "eval $spec --weights w --jobs 2" "check $spec --weights w" "check $spec --probs" "check $spec --lib" \
  "build $spec --weights w --out d" "emit $spec --what ir --threads 2" "test $spec --out d"; do
  cmd=${args%% *} opt=$(grep -oE -- '--[a-z-]+$|--[a-z-]+ [^ ]+$' <<<"$args" | cut -d' ' -f1)
  # shellcheck disable=SC2086
  check "an option that does not apply is a usage error (2) naming the command: $args" \
    bash -c '"$1" $2 2>&1 >/dev/null | grep -q "^specnet: error: $3 does not take $4$" && { "$1" $2 >/dev/null 2>&1; test $? -eq 2; }' \
    _ "$specnet" "$args" "$cmd" "$opt"
done
"$specnet" train "$spec" --epochs 1 --batch-size 8 --lr 0.05 --out "$tmp/short" --quiet
check "train --epochs, --batch-size and --lr set train.epochs, train.batch_size and the optimizer's learning_rate" \
  bash -c 'grep -q "^  epochs: 1$" "$1" && grep -q "^  batch_size: 8$" "$1" && grep -q "adam: {learning_rate: 0.05," "$1"' _ "$tmp/short/spec.resolved.yaml"
check "--lr on a bare optimizer name (sgd) sets its learning_rate" \
  bash -c '"$1" train "$2" --set train.optimizer=sgd --lr 0.5 --epochs 0 --out "$3" --quiet &&
           grep -A1 "optimizer:" "$3/spec.resolved.yaml" | grep -q "sgd: {learning_rate: 0.5"' _ "$specnet" "$spec" "$tmp/sgd"
check "--epochs takes a whole number only (2)" test "$(code train "$spec" --epochs 1.5)" -eq 2
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
check "emit --what spec prints what a run writes to spec.resolved.yaml (defaults filled in)" \
  diff <("$specnet" emit "$spec" --what spec --set train.epochs=0) "$tmp/e0/spec.resolved.yaml"

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
# --resume: a refused resume leaves the run's record alone; DIR alone resumes as recorded
"$specnet" train "$spec" --set train.epochs=1 --set train.batch_size=16 --out "$tmp/res" --quiet
cp "$tmp/res/spec.resolved.yaml" "$tmp/res.before"
err=$("$specnet" train "$spec" --set train.epochs=2 --resume "$tmp/res" 2>&1 >/dev/null)
check "--resume with a spec that differs is an error (1)" \
  test "$("$specnet" train "$spec" --set train.epochs=2 --resume "$tmp/res" >/dev/null 2>&1; echo $?)" -eq 1
check "the difference is named key by key" grep -q "train.batch_size: 16 in the run, 32 here" <<<"$err"
check "a refused --resume leaves spec.resolved.yaml as it was" cmp -s "$tmp/res/spec.resolved.yaml" "$tmp/res.before"
check "--resume DIR alone resumes as recorded, with a new train.epochs" \
  "$specnet" train --resume "$tmp/res" --set train.epochs=2 --quiet
check "the resumed run has 2 epochs of metrics" test "$(wc -l <"$tmp/res/metrics.jsonl")" -eq 2
check "the record says 2 epochs now" grep -q "^  epochs: 2$" "$tmp/res/spec.resolved.yaml"
check "a spec that agrees but for train.epochs resumes" \
  "$specnet" train "$spec" --set train.epochs=3 --set train.batch_size=16 --resume "$tmp/res" --quiet
check "--resume of a folder without a run is an error (1)" \
  test "$("$specnet" train --resume "$tmp/nope" >/dev/null 2>&1; echo $?)" -eq 1
# a training state whose step (slot 2 of __train__.progress, the first tensor) is
# 1e300: refused, not trained on as step -2^63 into a NaN loss
cp -r "$tmp/res" "$tmp/tampered"
state=$tmp/tampered/train_state.safetensors
at=$(($(od -An -tu8 -N8 "$state") + 8 + 2 * 8))
printf '\234\165\000\210\074\344\067\176' | dd of="$state" bs=1 seek="$at" conv=notrunc status=none
err=$("$specnet" train --resume "$tmp/tampered" --set train.epochs=4 2>&1 >/dev/null)
check "--resume with a training state of step 1e300 is an error (1)" test $? -eq 1
check "... that names the step" grep -q "step 1e+300, .*make no sense" <<<"$err"
# --set under a built-in set's short form (train: fashion_mnist:train)
check "--set data.train.limit applies to a built-in short form" \
  bash -c '"$1" emit specs/mnist_mlp.yaml --what spec --set data.train.limit=2000 | grep -A3 "^  train:" | grep -q "limit: 2000"' _ "$specnet"
check "a misspelt key under it is still an error with a hint" \
  bash -c '"$1" check specs/mnist_mlp.yaml --set data.test.lmit=5 2>&1 | grep -q "did you mean .limit."' _ "$specnet"
# without --out, a new run never overwrites an earlier one: runs/NAME-2, -3, ...
mkdir "$tmp/cwd"
specnet=$(realpath "$specnet")
(cd "$tmp/cwd" && "$specnet" train "$OLDPWD/$spec" --epochs 1 --quiet)
out2=$(cd "$tmp/cwd" && "$specnet" train "$OLDPWD/$spec" --epochs 2 2>&1)
check "a second run goes to runs/NAME-2 and says so" \
  grep -q "^runs/train_blobs holds an earlier run: this one goes to runs/train_blobs-2$" <<<"$out2"
check "the earlier run is kept" test "$(wc -l <"$tmp/cwd/runs/train_blobs/metrics.jsonl")" -eq 1
check "the second run is complete" test "$(wc -l <"$tmp/cwd/runs/train_blobs-2/metrics.jsonl")" -eq 2
(cd "$tmp/cwd" && "$specnet" train "$OLDPWD/$spec" --epochs 3 --out runs/train_blobs --quiet)
check "--out DIR is exact (it is overwritten)" test "$(wc -l <"$tmp/cwd/runs/train_blobs/metrics.jsonl")" -eq 3
# eval names its numbers as metrics.jsonl does
"$specnet" train "$spec" --epochs 2 --out "$tmp/ev" --quiet
ev=$("$specnet" eval "$spec" --weights "$tmp/ev/model.safetensors" --split validation)
check "eval --split validation prints val_loss and val_accuracy, as metrics.jsonl" \
  bash -c 'grep -qE "^val_loss [0-9.e-]+  val_accuracy [0-9.]+ " <<<"$1" && grep -q "\"val_loss\": " "$2"' _ "$ev" "$tmp/ev/metrics.jsonl"
# a split the spec does not have: an error at the data section's line, with a hint
grep -v 'validation' "$spec" >"$tmp/noval.yaml" # its data.validation and the expectation on it
"$specnet" eval "$tmp/noval.yaml" --weights "$tmp/ev/model.safetensors" --split validation 2>"$tmp/noval.err"
check "eval --split validation without validation data: file:line:col and a hint" \
  bash -c 'grep -qE "noval.yaml:[0-9]+:[0-9]+: error: the spec has no validation data" "$1" &&
    grep -q "hint: add data.validation" "$1"' _ "$tmp/noval.err"
# the README quotes the seed spec: the same keys and values as specs/mnist_mlp.yaml
check "README's first spec is specs/mnist_mlp.yaml (comments aside)" /usr/bin/python3 -c '
import re, sys
r = open("README.md").read().split("`specs/mnist_mlp.yaml`, the seed model")[1]
block = r.split("```yaml\n", 1)[1].split("```", 1)[0]
strip = lambda t: [re.sub(r"\s+#.*", "", l).rstrip() for l in t.splitlines() if l.strip() and not l.strip().startswith("#")]
sys.exit(strip(block) != strip(open("specs/mnist_mlp.yaml").read()))'
# check's layer table: columns as wide as the longest name, trainable and
# non-trainable (batch_norm running statistics) apart, "connected to" for graphs
sed -e 's/- dense: {units: 32, activation: relu}/- {name: a_rather_long_layer_name_for_the_table, dense: {units: 32}}\n    - batch_norm\n    - {name: skip, add: {}, inputs: [a_rather_long_layer_name_for_the_table, batch_norm1]}/' \
  "$spec" >"$tmp/table.yaml"
table=$("$specnet" check "$tmp/table.yaml")
check "check's columns line up past a long layer name" \
  bash -c 'test "$(awk "{ print index(\$0, \"f32[\") }" <<<"$1" | sed 1d | sed \$d | sort -u | wc -l)" -eq 1' _ "$table"
check "check's totals split trainable and non-trainable parameters" \
  grep -q '^total parameters: 548 (trainable 484, non-trainable 64; ' <<<"$table"
check "check's table of a graph spec has a connected-to column" \
  bash -c 'grep -q "connected to$" <<<"$1" && grep -qE "^skip .* a_rather_long_layer_name_for_the_table, batch_norm1$" <<<"$1"' _ "$table"
check "check's table of a plain list has no connected-to column" \
  bash -c '! "$1" check "$2" | grep -q "connected to"' _ "$specnet" "$spec"
# the packages build.sh installs are the ones README.md and docs/install.md name
for pkg in $(sed -n '/^PACKAGES=(/,/)/p' build.sh | tr -d '()' | sed 's/PACKAGES=//'); do
  check "README.md and docs/install.md name $pkg, which build.sh installs" \
    bash -c 'grep -q "\`$1\`" README.md && grep -q "\`$1\`" docs/install.md' _ "$pkg"
done
# one rule for relative paths, named in the error
"$specnet" train specs/regression.yaml --set 'data.train={format: csv, path: nothere.csv, label: last}' \
  --out "$tmp/nothere" >"$tmp/nothere.out" 2>&1
check "a missing data file says which folder relative paths are read from" \
  grep -q "hint: relative data paths in a spec and in --set are read from the spec's folder (specs/), --input from the current folder" "$tmp/nothere.out"
# Ctrl-C: a note that --resume continues the run
"$specnet" train tests/specs/train_blobs.yaml --set train.epochs=1000000 --out "$tmp/intr" \
  --quiet >/dev/null 2>"$tmp/intr.err" &
intr=$!
for _ in $(seq 600); do [ -s "$tmp/intr/metrics.jsonl" ] && break; sleep 0.1; done # an epoch done
kill -INT $intr
wait $intr
check "Ctrl-C during training says how --resume continues" \
  grep -q "interrupted; \`specnet train --resume $tmp/intr\` continues after the last finished epoch" "$tmp/intr.err"
# attention in a text classifier: causal is a warning, and so is padding it cannot mask yet
if [ -d /usr/share/games/fortunes ]; then
  cat >"$tmp/att.yaml" <<'EOF'
specnet: 1
name: att_classify
data:
  train: {format: text, path: "/usr/share/games/fortunes/[a-d]*", tokenizer: bytes, mode: classify, length: 64}
model:
  input: [64]
  layers:
    - embedding: {vocab: 256, dim: 16}
    - attention: {heads: 2, causal: true}
    - global_avg_pool1d
    - dense: {units: 8, activation: softmax}
train:
  loss: sparse_categorical_crossentropy
EOF
  "$specnet" check "$tmp/att.yaml" >/dev/null 2>"$tmp/att.err"
  check "causal attention in a classify spec: a warning at the layer" \
    grep -q "att.yaml:9:7: warning: attention1: causal attention in a classifier" "$tmp/att.err"
  check "attention over padded ids: no warning about the padding (its keys are masked)" \
    bash -c '! grep -qi "padding" "$1"' _ "$tmp/att.err"
fi
# the resolved spec of a method-form sweep (choice, log_uniform, halving) is a spec
# that reads back the same
"$specnet" emit tests/parse/ok_sweep_method.yaml --what spec >"$tmp/sweep_resolved.yaml"
check "a resolved method sweep reads back, with the same resolved form" bash -c \
  '"$1" emit "$2" --what spec | tail -n +2 | cmp -s - <(tail -n +2 "$2")' _ "$specnet" "$tmp/sweep_resolved.yaml"
exit $fail
