#!/usr/bin/env bash
# specnet <-> PyTorch: weights written by specnet load into the matching torch.nn
# model and give the same predictions; weights written from PyTorch load into
# specnet and give the same loss; the CNN block of docs/outputs.md (NCHW) gives
# specnet's probabilities. Needs Debian's python3-torch and python3-numpy in
# /usr/bin/python3 and the Fashion-MNIST files; exits 77 (skipped) without them.
#   test_torch.sh SPECNET
set -uo pipefail
specnet=$1
py=/usr/bin/python3
here=$(dirname "$0")
if ! [ -x "$py" ] || ! "$py" -c 'import numpy, torch' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 lacks torch or numpy (apt-get install python3-torch python3-numpy)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# conv1d, the masked 1-D pools, lstm and gru (tests/interop/conv1d_*.yaml,
# recurrent_seq.yaml): three small models trained for an epoch on random data, their
# weights loaded into the same models in torch.nn (these need no Fashion-MNIST)
"$py" "$here/torch_interop.py" conv1d-data "$tmp" || exit 1
for kind in seq text rnn; do
  cspec=$here/conv1d_$kind.yaml data=$kind
  [ $kind = rnn ] && cspec=$here/recurrent_seq.yaml data=seq
  "$specnet" train "$cspec" --out "$tmp/c_$kind" --quiet \
    --set "data.train={format: npy, x: $tmp/${data}_x.npy, y: $tmp/${data}_y.npy}" || exit 1
  "$specnet" predict "$cspec" --weights "$tmp/c_$kind/model.safetensors" --input "$tmp/${data}_x.npy" --probs \
    --output "$tmp/c_$kind.csv" --quiet || exit 1
  if "$py" "$here/torch_interop.py" conv1d-check $kind "$tmp/c_$kind" "$tmp/c_$kind.csv" "$tmp/${data}_x.npy"; then
    echo "ok: PyTorch loads specnet's $(basename "$cspec" .yaml) weights ($kind) and predicts the same"
  else
    echo "FAIL: PyTorch's predictions with $(basename "$cspec" .yaml) ($kind) differ from specnet's"
    fail=1
  fi
done

data=/usr/share/datasets/fashion-mnist
[ -n "${SPECNET_DATA:-}" ] && [ -e "$SPECNET_DATA/fashion_mnist/t10k-images-idx3-ubyte.gz" ] &&
  data=$SPECNET_DATA/fashion_mnist
images=$data/t10k-images-idx3-ubyte.gz labels=$data/t10k-labels-idx1-ubyte.gz
if ! [ -e "$images" ] || ! [ -e "$labels" ]; then
  echo "SKIP: Fashion-MNIST not found in $data (apt-get install dataset-fashion-mnist)"
  [ $fail = 0 ] && exit 77
  exit $fail
fi
spec=specs/mnist_mlp.yaml
# the seed model, briefly: one epoch on the first 5000 training images
"$specnet" train "$spec" --out "$tmp/run" --quiet --set train.epochs=1 \
  --set 'data.train={builtin: fashion_mnist, split: train, limit: 5000}' || exit 1

"$specnet" predict "$spec" --weights "$tmp/run/model.safetensors" --input "$images" --probs \
  --output "$tmp/probs.csv" --quiet || exit 1
if "$py" "$here/torch_interop.py" predict "$tmp/run" "$tmp/probs.csv" "$images"; then
  echo "ok: PyTorch loads specnet's weights and predicts the same"
else
  echo "FAIL: PyTorch's predictions differ from specnet's"
  fail=1
fi

torch_loss=$("$py" "$here/torch_interop.py" write "$tmp/run" "$tmp/torch.safetensors" "$images" "$labels") || exit 1
spec_loss=$("$specnet" eval "$spec" --weights "$tmp/torch.safetensors" | sed -E 's/^test_loss ([0-9.e-]+) .*/\1/')
if awk -v a="$spec_loss" -v b="$torch_loss" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }'; then
  echo "ok: specnet loads PyTorch's weights: test loss $spec_loss, PyTorch $torch_loss"
else
  echo "FAIL: specnet's test loss $spec_loss with PyTorch's weights, PyTorch's $torch_loss"
  fail=1
fi
exit $fail
