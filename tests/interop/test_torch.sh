#!/usr/bin/env bash
# specnet <-> PyTorch: weights written by specnet load into the matching torch.nn
# model and give the same predictions; weights written from PyTorch load into
# specnet and give the same loss; the CNN block of docs/outputs.md (NCHW) gives
# specnet's probabilities; attention over padded ids gives torch's outputs and
# gradients with key_padding_mask, and pooled over the tokens its logits. The same for a char transformer (embedding, position
# embedding, causal multi-head attention, gelu_tanh), on its logits; conv1d, the
# masked 1-D pools, lstm and gru models (tests/interop/conv1d_*.yaml,
# recurrent_seq.yaml) give the same predictions in torch.nn; lstm and gru over
# padded ids (recurrent_text.yaml) the logits and gradients of
# pack_padded_sequence. Needs Debian's
# python3-torch and python3-numpy in /usr/bin/python3, and for the seed model and
# the CNN the Fashion-MNIST files; exits 77 (skipped) without them.
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

# One attention layer, not causal, no biases: torch.nn.MultiheadAttention's outputs
"$py" "$here/torch_interop.py" mha_data "$tmp" || exit 1
if "$specnet" predict tests/interop/attention_small.yaml --set "data.train={format: npy, x: $tmp/x.npy, y: $tmp/y.npy}" \
  --weights "$tmp/mha.safetensors" --input "$tmp/x.npy" --probs --output "$tmp/mha.csv" --quiet &&
  "$py" "$here/torch_interop.py" mha_compare "$tmp" "$tmp/mha.csv"; then
  echo "ok: attention without causal mask or biases gives torch.nn.MultiheadAttention's outputs"
else
  echo "FAIL: attention without causal mask or biases differs from torch.nn.MultiheadAttention"
  fail=1
fi

# Attention over padded ids: the padded keys masked as key_padding_mask masks them
"$py" "$here/torch_interop.py" mha_pad_data "$tmp" || exit 1
if "$specnet" predict tests/interop/attention_padded.yaml --set "data.train={format: npy, x: $tmp/pad_x.npy, y: $tmp/pad_y.npy}" \
  --weights "$tmp/pad.safetensors" --input "$tmp/pad_x.npy" --probs --output "$tmp/pad.csv" --quiet &&
  "$py" "$here/torch_interop.py" mha_pad_compare "$tmp" "$tmp/pad.csv"; then
  echo "ok: attention over padded ids gives torch.nn.MultiheadAttention's outputs with key_padding_mask"
else
  echo "FAIL: attention over padded ids differs from torch.nn.MultiheadAttention with key_padding_mask"
  fail=1
fi
if "$specnet" predict tests/interop/attention_padded_pool.yaml --set "data.train={format: npy, x: $tmp/pad_x.npy, y: $tmp/pool_y.npy}" \
  --weights "$tmp/pad_pool.safetensors" --input "$tmp/pad_x.npy" --probs --output "$tmp/pad_pool.csv" --quiet &&
  "$py" "$here/torch_interop.py" mha_pad_pool_compare "$tmp" "$tmp/pad_pool.csv"; then
  echo "ok: attention over padded ids, pooled over the tokens: torch's logits"
else
  echo "FAIL: attention over padded ids, pooled over the tokens: the logits differ from torch's"
  fail=1
fi
# and its gradients (one SGD step, lr 1) against torch's in f64
for dt in f32 f64; do
  tol=2e-5
  [ $dt = f64 ] && tol=1e-10
  if "$specnet" train tests/interop/attention_padded.yaml --dtype $dt --set "data.train={format: npy, x: $tmp/pad_x.npy, y: $tmp/pad_y.npy}" \
    --weights "$tmp/pad.safetensors" --out "$tmp/pad_$dt" --quiet &&
    "$py" "$here/torch_interop.py" mha_pad_grad_check "$tmp" "$tmp/pad_$dt" 1 $tol; then
    echo "ok: attention over padded ids ($dt): the gradients of torch with key_padding_mask"
  else
    echo "FAIL: attention over padded ids ($dt): the gradients differ from torch's with key_padding_mask"
    fail=1
  fi
done
if "$specnet" build tests/interop/attention_padded.yaml --set "data.train={format: npy, x: $tmp/pad_x.npy, y: $tmp/pad_y.npy}" \
  --weights "$tmp/pad.safetensors" -o "$tmp/pad_exe" --quiet &&
  "$tmp/pad_exe" --input "$tmp/pad_x.npy" --probs --output "$tmp/pad_aot.csv" &&
  "$py" "$here/torch_interop.py" mha_pad_compare "$tmp" "$tmp/pad_aot.csv"; then
  echo "ok: attention over padded ids: the AOT executable gives torch's outputs with key_padding_mask"
else
  echo "FAIL: attention over padded ids: the AOT executable differs from torch with key_padding_mask"
  fail=1
fi

# The char transformer: PyTorch's weights (made up) give PyTorch's logits in
# specnet, and specnet's (after an epoch of training) give specnet's in PyTorch.
lm=tests/interop/char_transformer.yaml
"$py" "$here/torch_interop.py" lm_data "$tmp" || exit 1
lmdata="data.train={format: npy, x: $tmp/tokens.npy, y: $tmp/targets.npy}"
lm_check() { # lm_check WEIGHTS WHAT
  "$specnet" predict "$lm" --set "$lmdata" --weights "$1" --input "$tmp/tokens.npy" --probs \
    --output "$tmp/logits.csv" --quiet || return 1
  "$py" "$here/torch_interop.py" lm_compare "$1" "$tmp/tokens.npy" "$tmp/logits.csv"
}
if lm_check "$tmp/torch.safetensors"; then
  echo "ok: char transformer: specnet loads PyTorch's weights and gives the same logits"
else
  echo "FAIL: char transformer: specnet's logits with PyTorch's weights differ from PyTorch's"
  fail=1
fi
if "$specnet" train "$lm" --set "$lmdata" --out "$tmp/lmrun" --quiet && lm_check "$tmp/lmrun/model.safetensors"; then
  echo "ok: char transformer: PyTorch loads specnet's trained weights and gives the same logits"
else
  echo "FAIL: char transformer: PyTorch's logits with specnet's weights differ from specnet's"
  fail=1
fi

# the same model ahead of time: the executable (the pool's batched products) and the
# C library (a loop of OpenBLAS calls per batched product)
if "$specnet" build "$lm" --set "$lmdata" --weights "$tmp/torch.safetensors" -o "$tmp/lm_exe" --quiet &&
  "$tmp/lm_exe" --input "$tmp/tokens.npy" --probs --output "$tmp/logits.csv" &&
  "$py" "$here/torch_interop.py" lm_compare "$tmp/torch.safetensors" "$tmp/tokens.npy" "$tmp/logits.csv"; then
  echo "ok: char transformer: the AOT executable gives PyTorch's logits"
else
  echo "FAIL: char transformer: the AOT executable's logits differ from PyTorch's"
  fail=1
fi
cat >"$tmp/lm_lib.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "char_transformer_interop.h"
int main(int argc, char **argv) { /* tokens.f32 (16 windows) -> logits CSV on stdout */
  enum { E = CHAR_TRANSFORMER_INTEROP_INPUT_ELEMS, O = CHAR_TRANSFORMER_INTEROP_OUTPUT_ELEMS };
  static float x[16 * E], y[16 * O];
  FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
  if (!f || fread(x, sizeof x, 1, f) != 1) return 1;
  void *scratch = malloc(CHAR_TRANSFORMER_INTEROP_SCRATCH_BYTES);
  if (!scratch || char_transformer_interop_predict(x, 16, y, scratch)) return 1;
  for (int i = 0; i < 16; i++)
    for (int k = 0; k < O; k++) printf("%.9g%c", y[i * O + k], k + 1 < O ? ',' : '\n');
  return 0;
}
EOF
if "$specnet" build "$lm" --set "$lmdata" --weights "$tmp/torch.safetensors" --lib -o "$tmp/lm_lib" --quiet &&
  cc -O2 "$tmp/lm_lib.c" -I "$tmp/lm_lib" -L "$tmp/lm_lib" -lchar_transformer_interop -lopenblas -lm -o "$tmp/lm_c" &&
  "$tmp/lm_c" "$tmp/tokens.f32" >"$tmp/logits.csv" &&
  "$py" "$here/torch_interop.py" lm_compare "$tmp/torch.safetensors" "$tmp/tokens.npy" "$tmp/logits.csv"; then
  echo "ok: char transformer: the C library (--lib) gives PyTorch's logits"
else
  echo "FAIL: char transformer: the C library's logits differ from PyTorch's"
  fail=1
fi

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

# lstm then gru over padded ids (tests/interop/recurrent_text.yaml) with made-up
# weights: the logits and one SGD step's gradients of torch.nn.LSTM / GRU over
# pack_padded_sequence, in f32 (the gradients as the weights' change, to about
# 6e-8 |w|) and f64
"$py" "$here/torch_interop.py" rnn-text-weights "$tmp" || exit 1
rspec=$here/recurrent_text.yaml
for dt in f32 f64; do
  tol=2e-5
  [ $dt = f64 ] && tol=1e-10
  rset="data.train={format: npy, x: $tmp/text_x.npy, y: $tmp/text_y.npy}"
  if "$specnet" predict "$rspec" --dtype $dt --set "$rset" --weights "$tmp/rnn0.safetensors" --input "$tmp/text_x.npy" \
    --probs --output "$tmp/rt_$dt.csv" --quiet &&
    "$specnet" train "$rspec" --dtype $dt --set "$rset" --weights "$tmp/rnn0.safetensors" --out "$tmp/rt_$dt" --quiet &&
    "$py" "$here/torch_interop.py" rnn-text-check "$tmp" "$tmp/rt_$dt.csv" "$tmp/rt_$dt" 1 $tol; then
    echo "ok: lstm and gru over padding ($dt): pack_padded_sequence's logits and gradients"
  else
    echo "FAIL: lstm and gru over padding ($dt) differ from pack_padded_sequence's"
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
  exit 1
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

# the convolutional model (NHWC in specnet, NCHW in PyTorch): docs/outputs.md's block,
# run as written, against a briefly trained specs/fashion_cnn.yaml
cnn=specs/fashion_cnn.yaml
"$specnet" train "$cnn" --out "$tmp/cnn" --quiet --set train.epochs=1 \
  --set 'data.train={builtin: fashion_mnist, split: train, limit: 3000}' || exit 1
"$specnet" predict "$cnn" --weights "$tmp/cnn/model.safetensors" --input "$images" --probs \
  --output "$tmp/cnn_probs.csv" --quiet || exit 1
if "$py" "$here/torch_cnn.py" docs/outputs.md "$tmp/cnn" "$tmp/cnn_probs.csv" "$images"; then
  echo "ok: docs/outputs.md's NCHW PyTorch model gives specnet's CNN probabilities"
else
  echo "FAIL: docs/outputs.md's NCHW PyTorch model differs from specnet's CNN"
  fail=1
fi
exit $fail
