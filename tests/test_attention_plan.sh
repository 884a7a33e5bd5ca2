#!/usr/bin/env bash
# Structural properties of attention's plan, read from `specnet emit --what plan`
# on a causal attention spec: the products are batched GEMMs; the scaling, the
# causal mask and the softmax are one fused kernel; the softmax's gradient (with
# the mask's and the scale's) is one fused kernel; with a padding mask the key mask
# joins both kernels. And in the char transformer the
# big bias-gradient kernels run in parts. Each check names what it expects.
set -uo pipefail
specnet=$1
spec=tests/specs/ops/attention_causal.yaml
fail=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
count() { grep -cE "$1" <<<"$2"; }
plan=$("$specnet" emit "$spec" --what plan) || { echo "FAIL: emit --what plan"; exit 1; }
grad=$(sed -n '/^grad_step/,/^eval_step/p' <<<"$plan")
pred=$(sed -n '/^predict/,$p' <<<"$plan")

check "grad_step: 2 batched products forward, 4 backward" test "$(count '^  batch_gemm ' "$grad")" -eq 6
check "predict: 2 batched products" test "$(count '^  batch_gemm ' "$pred")" -eq 2
# the softmax's ops once each, in one kernel with the scale and the mask
fwd='^  kernel k[0-9]+ rows N\*[0-9]+: [0-9]+ ops:( transpose)? mul mask_causal row_max sub exp row_sum div$'
check "grad_step: scale + causal mask + softmax in one kernel" test "$(count "$fwd" "$grad")" -eq 1
check "predict: scale + causal mask + softmax in one kernel" test "$(count "$fwd" "$pred")" -eq 1
check "grad_step: exp appears in no other kernel" test "$(count ' exp' "$grad")" -eq 2 # + the loss's
bwd='^  kernel k[0-9]+ rows N\*[0-9]+: 6 ops: mul row_sum sub mul mask_causal mul$'
check "grad_step: softmax backward (with the mask's and the scale's gradients) in one kernel" \
  test "$(count "$bwd" "$grad")" -eq 1
check "grad_step: mask_causal in 2 kernels only (forward, backward)" test "$(count 'mask_causal' "$grad")" -eq 2
# the T x T scores kernel sits between the two forward products
between=$(sed -n '/batch_gemm/,/batch_gemm/p' <<<"$pred" | grep -c '^  kernel')
check "predict: one kernel between the score product and the value product" test "$between" -eq 1
# over padded ids (attention_masked.yaml: one layer, and one causal): the key padding
# mask before and after the softmax in its forward kernel, both gradients in its
# backward kernel; a spec without padding has no mask_keys
mplan=$("$specnet" emit tests/specs/ops/attention_masked.yaml --what plan) || { echo "FAIL: emit attention_masked"; exit 1; }
mgrad=$(sed -n '/^grad_step/,/^eval_step/p' <<<"$mplan")
mfwd='^  kernel k[0-9]+ rows N\*[0-9]+: [0-9]+ ops: mul( mask_causal)? mask_keys row_max sub exp row_sum div mask_keys$'
check "grad_step: scale + masks + softmax + zeroed padded keys in one kernel per layer" \
  test "$(count "$mfwd" "$mgrad")" -eq 2
mbwd='^  kernel k[0-9]+ rows N\*[0-9]+: [0-9]+ ops: mask_keys mul row_sum sub mul mask_keys( mask_causal)? mul$'
check "grad_step: softmax backward with both masks' gradients in one kernel per layer" \
  test "$(count "$mbwd" "$mgrad")" -eq 2
check "grad_step: mask_keys in 4 kernels only (2 layers, forward and backward)" \
  test "$(count 'mask_keys' "$mgrad")" -eq 4
check "no padding: no mask_keys in the plan" test "$(count 'mask_keys' "$plan")" -eq 0

# the char transformer's bias gradients (column sums over N x 64 rows) run in parts
ct=$("$specnet" emit tests/interop/char_transformer.yaml --what plan) || { echo "FAIL: emit char_transformer"; exit 1; }
check "char transformer: the gelu gradient and its bias gradient run in parts" \
  test "$(count '^  kernel k[0-9]+ rows N\*64 in 8 parts: [0-9]+ ops: gelu_tanh_grad colsum$' "$ct")" -eq 4
exit $fail
