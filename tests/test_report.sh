#!/usr/bin/env bash
# The pages a person looks at, checked as they see them (issue 17):
#   - `specnet train --report` on a classifier (specs/sweep_blobs.yaml: noisy blobs,
#     so there are mistakes), on Fashion-MNIST images (a small slice) and on a
#     regression (specs/regression.yaml); `specnet report` and `specnet compare`
#   - every number on a page equals the one tests/report_check.py computes with
#     NumPy from the run's predictions.csv, metrics.jsonl and the data itself
#   - every inline SVG is well-formed XML; nothing outside the page is referenced
#   - in headless Chromium each page loads without a console message and its
#     screenshot has the window's size and is not blank (a control page with a
#     console.error shows the check can fail)
#   - bad input: a folder without metrics.jsonl, one folder to compare, runs of
#     different specs
# Needs /usr/bin/python3 with NumPy (exit 77, skipped, without); the Chromium and
# the Fashion-MNIST parts say NOT TESTED and skip only themselves when missing.
set -uo pipefail
specnet=$1
py=/usr/bin/python3
check_py=$(dirname "$0")/report_check.py
"$py" -c "import numpy" 2>/dev/null || { echo "SKIP: /usr/bin/python3 with numpy needed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

# --- runs with --report ------------------------------------------------------------
sed '/^sweep:/,/^$/d' specs/sweep_blobs.yaml >"$tmp/blobs.yaml" # one run, not the sweep
"$specnet" train "$tmp/blobs.yaml" --out "$tmp/cls" --report --quiet \
  >"$tmp/cls.log" 2>&1
check "train --report on a classifier writes report.html" test -s "$tmp/cls/report.html"
check "the classifier's page: numbers equal predictions.csv and metrics.jsonl" \
  "$py" "$check_py" report "$tmp/cls" "$tmp/cls/report.html"
check "the classifier's page: SVGs well-formed, self-contained" "$py" "$check_py" svg "$tmp/cls/report.html"

"$specnet" train specs/regression.yaml --epochs 4 --out "$tmp/reg" --quiet >"$tmp/reg.log" 2>&1
check "specnet report on a regression run" "$specnet" report "$tmp/reg" -o "$tmp/reg.html"
check "the regression page: mse and residuals equal predictions.csv" \
  "$py" "$check_py" report "$tmp/reg" "$tmp/reg.html"
check "the regression page: SVGs well-formed, self-contained" "$py" "$check_py" svg "$tmp/reg.html"

fashion=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
[ -n "${SPECNET_DATA:-}" ] && [ -f "$SPECNET_DATA/t10k-images-idx3-ubyte.gz" ] &&
  fashion=$SPECNET_DATA/t10k-images-idx3-ubyte.gz
pages=("$tmp/cls/report.html" "$tmp/reg.html")
if [ -f "$fashion" ]; then
  "$specnet" train specs/mnist_mlp.yaml --set data.train.limit=2000 --set data.test.limit=300 \
    --epochs 2 --profile --out "$tmp/img" --report --quiet >"$tmp/img.log" 2>&1
  check "the image classifier's page: numbers" "$py" "$check_py" report "$tmp/img" "$tmp/img/report.html"
  check "the image classifier's page: the most confidently wrong samples, drawn" \
    "$py" "$check_py" images "$tmp/img" "$tmp/img/report.html" "$fashion" 300
  check "--profile: the kernel table is on the page" grep -q '<pre id="profile">profile:' "$tmp/img/report.html"
  check "Fashion-MNIST's class names label the matrix" grep -q '>Ankle boot<' "$tmp/img/report.html"
  pages+=("$tmp/img/report.html")
else
  echo "NOT TESTED: the image grid (Fashion-MNIST missing: $fashion)"
fi

# --- compare -------------------------------------------------------------------------
"$specnet" train "$tmp/blobs.yaml" --lr 0.01 --out "$tmp/cls2" --quiet \
  >/dev/null 2>&1
"$specnet" compare "$tmp/cls" "$tmp/cls2" -o "$tmp/compare.html" >"$tmp/compare.txt" 2>"$tmp/compare.err"
check "compare exits 0" test $? -eq 0
check "compare prints the differing key with each run's value" grep -q \
  "train.optimizer.adam.learning_rate: cls = 0.003, cls2 = 0.01" "$tmp/compare.txt"
check "compare's page: final and best equal metrics.jsonl" \
  "$py" "$check_py" compare "$tmp/compare.html" "$tmp/cls" "$tmp/cls2"
check "compare's page: SVGs well-formed, self-contained" "$py" "$check_py" svg "$tmp/compare.html"
pages+=("$tmp/compare.html")

"$specnet" compare "$tmp/cls" "$tmp/reg" >"$tmp/diff.txt" 2>"$tmp/diff.err"
check "runs of different specs: compared, exit 0" test $? -eq 0
check "runs of different specs: a figure only one has is named" \
  grep -q "note: accuracy is not compared: only cls has it" "$tmp/diff.err"
check "runs of different specs: the different losses are named" grep -q "different losses" "$tmp/diff.err"

# --- bad input -----------------------------------------------------------------------
mkdir -p "$tmp/empty"
"$specnet" report "$tmp/empty" >/dev/null 2>"$tmp/err"
check "report of a folder without metrics exits 1" test $? -eq 1
check "... naming metrics.jsonl" grep -q "$tmp/empty/metrics.jsonl: cannot read the run's metrics" "$tmp/err"
"$specnet" compare "$tmp/cls" "$tmp/empty" >/dev/null 2>"$tmp/err"
check "compare with a folder without metrics exits 1" test $? -eq 1
"$specnet" compare "$tmp/cls" >/dev/null 2>"$tmp/err"
check "compare of one folder is a usage error (exit 2)" test $? -eq 2
printf '{"epoch": 1, "loss": }\n' >"$tmp/empty/metrics.jsonl"
"$specnet" report "$tmp/empty" >/dev/null 2>"$tmp/err"
check "a broken metrics.jsonl line is an error with its line" grep -q "metrics.jsonl:1: not a line" "$tmp/err"
# A wrong_samples.npy whose shape claims 2^62 values (the product wraps to 0 bytes in
# 64 bits): the page is written without the image grid, not read past the file.
cp -r "$tmp/cls" "$tmp/hostile"
"$py" - "$tmp/hostile/wrong_samples.npy" <<'EOF'
import sys
h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2147483648, 2147483648), }"
h += b" " * (63 - len(h) % 64) + b"\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + bytes(8))
EOF
"$specnet" report "$tmp/hostile" -o "$tmp/hostile.html" >/dev/null 2>"$tmp/err"
check "a wrong_samples.npy with an overflowing shape: report exits 0" test $? -eq 0
check "... and draws no grid from it" bash -c "! grep -q 'id=\"wrong\"' '$tmp/hostile.html'"

# --- in a browser ----------------------------------------------------------------------
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "NOT TESTED: chromium missing (the pages were not loaded in a browser)"
else
  sandbox=()
  [ "$(id -u)" -eq 0 ] && sandbox=(--no-sandbox) # Chromium refuses root otherwise
  # load PAGE PNG: a screenshot of 1024x768; stderr keeps the console messages
  load() {
    timeout 120 "$browser" --headless "${sandbox[@]}" --disable-gpu --user-data-dir="$tmp/chrome" \
      --enable-logging=stderr --v=0 --window-size=1024,768 --screenshot="$2" "file://$1" \
      >/dev/null 2>"$2.log"
  }
  printf '<!DOCTYPE html><html><head><meta charset="utf-8"><title>control</title></head><body>' >"$tmp/control.html"
  printf '<p>x</p><script>console.error("control-error")</script></body></html>\n' >>"$tmp/control.html"
  load "$tmp/control.html" "$tmp/control.png"
  check "the console check sees a control page's console.error" grep -q 'CONSOLE.*control-error' "$tmp/control.png.log"
  for p in "${pages[@]}"; do
    load "$p" "$p.png"
    check "chromium loads $(basename "$(dirname "$p")")/$(basename "$p")" test -s "$p.png"
    check "... with no console message" bash -c "! grep -q CONSOLE '$p.png.log'"
    check "... and a 1024x768 screenshot that is not blank" "$py" "$check_py" shot "$p.png" 1024 768
  done
fi

[ $fail -eq 0 ] && echo "report tests passed"
exit $fail
