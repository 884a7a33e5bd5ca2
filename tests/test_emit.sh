#!/usr/bin/env bash
# Structural properties of the compiled seed model, read from `specnet emit`:
# what got fused into one kernel, what stayed a GEMM, and how wide the kernels are
# vectorized for the AVX2 level, the AVX-512 level and the host. Each check names what it expects.
set -uo pipefail
specnet=$1
spec=specs/mnist_mlp.yaml
fail=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
plan=$("$specnet" emit "$spec" --what plan) || { echo "FAIL: emit --what plan"; exit 1; }
grad=$(sed -n '/^grad_step/,/^eval_step/p' <<<"$plan")
eval_=$(sed -n '/^eval_step/,/^predict/p' <<<"$plan")

check "forward and backward: 8 GEMMs in grad_step (3 forward, 3 weight grads, 2 input grads)" \
  test "$(grep -c '^  gemm' <<<"$grad")" -eq 8
check "bias + relu is one kernel" grep -q 'kernel k1 rows N\*1: 2 ops: add relu$' <<<"$grad"
check "relu gradient and bias gradient are one kernel" grep -q '2 ops: relu_grad colsum$' <<<"$grad"
check "softmax cross-entropy, its gradient, accuracy and bias gradient are one kernel" \
  grep -qE 'kernel k5 .*add row_max .*pick .*sum_all row_argmax eq sum_all .*onehot .*colsum$' <<<"$grad"
check "grad_step writes every gradient into the flat gradient buffer" \
  test "$(grep -o '@grads+[0-9]*' <<<"$grad" | sort -u | wc -l)" -eq 6
check "eval_step: 3 GEMMs and 3 kernels" test "$(grep -cE '^  (gemm|kernel)' <<<"$eval_")" -eq 6
check "eval_step computes no gradient" bash -c '! grep -q "relu_grad\|colsum\|onehot" <<<"$1"' _ "$eval_"

llvm=$("$specnet" emit "$spec" --what llvm) || { echo "FAIL: emit --what llvm"; exit 1; }
# identical kernels are one function: grad_step's 5 fused kernels are bias+relu and
# relu_grad+colsum twice each, and the loss kernel; eval and predict call grad_step's
# bias+relu rather than copies of it
check "grad_step's 5 fused kernels are 3 distinct functions" \
  test "$(grep -cE '^define internal (fastcc )?void @grad_step.k' <<<"$llvm")" -eq 3
check "the plan still has 5 fused kernels in grad_step" test "$(grep -c '^  kernel' <<<"$grad")" -eq 5
gradfn=$(sed -n '/^define void @sn_grad_step(/,/^}/p' <<<"$llvm")
# a kernel whose rows are independent runs through the thread pool: the step stores
# the kernel and its arguments in a box and passes the box and a task (rows.taskN,
# which calls the boxed kernel on a range of rows; one per number of arguments) to
# sn_par_for
pooled='store ptr @grad_step\.k[0-9]+, ptr %box'
check "sn_grad_step runs each of its 5 fused kernels (directly or as a pool task)" \
  test "$(grep -cE "call (fastcc )?void @grad_step\.k[0-9]+\(|$pooled" <<<"$gradfn")" -eq 5
check "bias+relu runs as a pool task, the kernels with column sums directly" \
  bash -c 'grep -q "store ptr @grad_step.k1, ptr %box" <<<"$1" && grep -q "@sn_par_for(ptr nonnull @rows.task" <<<"$1" &&
    grep -qE "call (fastcc )?void @grad_step.k8\(" <<<"$1"' _ "$gradfn"
evalfn=$(sed -n '/^define void @sn_eval_step(/,/^}/p' <<<"$llvm")
check "eval_step calls grad_step's bias+relu kernel for both hidden layers" \
  test "$(grep -cE 'call (fastcc )?void @grad_step\.k1\(|store ptr @grad_step\.k1, ptr %box' <<<"$evalfn")" -eq 2
check "eval_step and predict have no copies of it" \
  bash -c '! grep -qE "^define .*@(eval_step|predict)\.k[13]\(" <<<"$1"' _ "$llvm"
check "the Adam update is one kernel over the flat buffer" grep -qE '^define internal (fastcc )?void @update.k\(' <<<"$llvm"
# The update is cut as the products are: dense1's weight (offset 0, 128 rows of 784,
# 3.2 M multiply-adds at batch 32) by rows, as its gradient A^T B; dense2's (524 K)
# and dense3's are below SN_PAR_GEMM_MIN, so they are not in the table.
check "the update cuts dense1's weight by rows, only it" \
  grep -q '^@update.rows = private constant \[3 x i64\] \[i64 0, i64 128, i64 784\]' <<<"$llvm"
check "the update runs through sn_par_update with that table" grep -q 'call void @sn_par_update(ptr nonnull @update.task, ptr nonnull %box[.a-z]*, i64 118282, ptr nonnull @update.rows, i32 1)' <<<"$llvm"
# The CNN's data-moving kernels: max pooling with windows apart is differentiated
# as a gather (max_unpool, row-parallel, fused with what follows), never a scatter;
# im2col and col2im read whole channel runs (vector loads, not gathers).
cnn=specs/fashion_cnn.yaml
cnnplan=$("$specnet" emit "$cnn" --what plan) || { echo "FAIL: emit $cnn"; exit 1; }
check "fashion_cnn: both max-pool gradients are max_unpool gathers fused with relu_grad" \
  test "$(grep -c '^  kernel .*: [0-9]* ops: max_unpool relu_grad' <<<"$cnnplan")" -eq 2
check "fashion_cnn: no scattering max_pool_grad" bash -c '! grep -q max_pool_grad <<<"$1"' _ "$cnnplan"
cnnllvm=$(SPECNET_CPU=x86-64-v4 "$specnet" emit "$cnn" --what llvm)
# (im2col and col2im over 114 channels: a conv2d whose patch is over 1024 values;
# fashion_cnn has neither now)
gradplan=$(sed -n '/^grad_step/,/^eval_step/p' <<<"$cnnplan")
wide=tests/specs/ops/conv_wide_patch.yaml
widegrad=$("$specnet" emit "$wide" --what plan | sed -n '/^grad_step/,/^eval_step/p')
widellvm=$(SPECNET_CPU=x86-64-v4 "$specnet" emit "$wide" --what llvm)
for kop in im2col col2im; do
  kn=$(grep -E "^  kernel k[0-9]+ rows [^:]*: [0-9]+ ops: $kop( |\$)" <<<"$widegrad" | tail -1 | grep -oE 'k[0-9]+' | head -1)
  body=$(sed -nE "/^define internal (fastcc )?void @grad_step\.$kn\(/,/^}/p" <<<"$widellvm")
  check "conv_wide_patch grad_step $kn ($kop): whole channel runs (vector loads or memcpy), no gathers" \
    bash -c 'test -n "$2" && grep -qE "load <16 x float>|llvm.memcpy" <<<"$1" && ! grep -q masked.gather <<<"$1"' _ "$body" "$kn"
done

# fashion_cnn's first convolution (one input channel, a patch of 9 values) is a
# direct convolution: conv, its bias and relu one kernel forward, its weight gradient
# (conv_wgrad) fused with the relu and bias gradients in a kernel in parts; no
# im2col, GEMM or col2im for it. conv2d2 (a patch of 144) is an implicit GEMM:
# conv_gemm forward, conv_gemm_wgrad (in parts) for its weight, conv_gemm_dgrad for
# its input: no im2col, GEMM or col2im either.
check "fashion_cnn: conv2d1 is one direct kernel (conv add relu), the only conv" \
  test "$(grep -c '^  kernel k[0-9]* rows N\*784: 3 ops: conv add relu$' <<<"$gradplan")" -eq 1 -a \
       "$(grep -c ' ops: .*\bconv\b' <<<"$gradplan")" -eq 1
check "fashion_cnn: conv2d1's weight gradient is conv_wgrad with the relu and bias gradients, in parts" \
  grep -qE '^  kernel k[0-9]+ rows N\*784 in [0-9]+ parts: 4 ops: max_unpool relu_grad colsum conv_wgrad$' <<<"$gradplan"
check "fashion_cnn: no GEMM, im2col or col2im for either convolution" \
  test "$(grep -cE '^  gemm .*; conv2d[12]$' <<<"$cnnplan")" -eq 0 -a "$(grep -cE 'im2col|col2im' <<<"$cnnplan")" -eq 0
check "fashion_cnn: conv2d2 is conv_gemm in every step, conv_gemm_wgrad in parts and conv_gemm_dgrad" \
  test "$(grep -c '^  call k[0-9]* conv_gemm(.*f32\[N,14,14,32\] @.*; conv2d2$' <<<"$cnnplan")" -eq 3 -a \
       "$(grep -c '^  call k[0-9]* conv_gemm_wgrad(.*f32\[144,32\] in 8 parts @.*; conv2d2$' <<<"$gradplan")" -eq 1 -a \
       "$(grep -c '^  call k[0-9]* conv_gemm_dgrad(.*f32\[N,14,14,16\] @.*; conv2d2$' <<<"$gradplan")" -eq 1
# the direct kernel is vectorized across the filters (16: one 16-wide vector, or
# two 8-wide), the weights hoisted (no gathers), for both target levels
convk=$(grep -E '^  kernel k[0-9]+ rows N\*784: 3 ops: conv add relu$' <<<"$gradplan" | grep -oE 'k[0-9]+' | head -1)
wgradk=$(grep -E 'conv_wgrad$' <<<"$gradplan" | grep -oE 'k[0-9]+' | head -1)
for level in x86-64-v3:8 x86-64-v4:16; do
  cpu=${level%:*} w=${level#*:}
  cnnll=$(SPECNET_CPU=$cpu "$specnet" emit "$cnn" --what llvm)
  for kn in $convk $wgradk; do
    body=$(sed -nE "/^define internal (fastcc )?void @grad_step\.$kn\(/,/^}/p" <<<"$cnnll")
    check "fashion_cnn $cpu grad_step $kn (direct conv): fmuladd on <$w x float>, no gathers" \
      bash -c 'grep -q "fmuladd.v$2f32" <<<"$1" && ! grep -q masked.gather <<<"$1"' _ "$body" "$w"
  done
done

# --dtype f64 is f64 throughout: every scalar the step and the update take (learning
# rate, Adam's alpha, gradient scale) and every constant is a double.
for f64spec in specs/mnist_mlp.yaml specs/fashion_cnn.yaml; do
  check "$f64spec --dtype f64: no float anywhere in the generated code" \
    test "$("$specnet" emit "$f64spec" --what llvm --dtype f64 | grep -cw float)" -eq 0
done
check "--dtype f64: the update kernel takes the learning rate as a double" \
  grep -qE '^define internal (fastcc )?void @update\.k\(.*double %[0-9]+' <<<"$("$specnet" emit "$spec" --what llvm --dtype f64)"

# Vectorization, per target: the same spec compiled for the AVX2 level and for the
# AVX-512 level (emit runs no code, so both are checked on every host), then for
# this host, whose width follows its features and LLVM's tuning for its CPU.
width() { # width TARGET FUNCTION PATTERN: the vector widths in FUNCTION
  SPECNET_CPU=$1 "$specnet" emit "$spec" --what llvm |
    sed -nE "/^define internal (fastcc )?void @$2\(/,/^}/p" | grep -oE "$3" | sort -u | tr '\n' ' '
}
check "x86-64-v3: bias+relu kernel is vectorized 8-wide" \
  test "$(width x86-64-v3 grad_step.k1 '<[0-9]+ x float>')" = "<8 x float> "
check "x86-64-v3: Adam kernel is vectorized 8-wide" \
  test "$(width x86-64-v3 update.k 'sqrt.v[0-9]+f32')" = "sqrt.v8f32 "
check "x86-64-v4: bias+relu kernel is vectorized 16-wide" \
  grep -q '<16 x float>' <<<"$(width x86-64-v4 grad_step.k1 '<[0-9]+ x float>')"
check "x86-64-v4: Adam kernel is vectorized 16-wide" \
  grep -q 'sqrt.v16f32' <<<"$(width x86-64-v4 update.k 'sqrt.v[0-9]+f32')"
check "SPECNET_CPU and --cpu give the same code" \
  test "$(SPECNET_CPU=x86-64-v3 "$specnet" emit "$spec" --what asm | md5sum)" = \
       "$("$specnet" emit "$spec" --what asm --cpu x86-64-v3 | md5sum)"
check "an unknown --cpu is a usage error (2)" \
  bash -c '"$1" emit "$2" --what plan --cpu pentium4 2>/dev/null; test $? -eq 2' _ "$specnet" "$spec"
# Recurrent layers are not unrolled: each lstm/gru is one scan call forward and one
# backward, whatever the number of steps (tests/specs/ops/lstm.yaml has 4; 64 here).
rnn=tests/specs/ops/lstm.yaml
rnn4=$("$specnet" emit "$rnn" --what plan) || { echo "FAIL: emit $rnn"; exit 1; }
rnn64=$("$specnet" emit "$rnn" --what plan --set model.input=[64,3] --set data.train.features=192) ||
  { echo "FAIL: emit $rnn with 64 steps"; exit 1; }
rnngrad=$(sed -n '/^grad_step/,/^eval_step/p' <<<"$rnn64")
check "lstm: one scan call per layer forward and one backward in grad_step (2 layers)" \
  test "$(grep -c '^  call k[0-9]* lstm(' <<<"$rnngrad")" -eq 2 -a "$(grep -c '^  call k[0-9]* lstm_grad(' <<<"$rnngrad")" -eq 2
check "lstm: 64 steps compile to as many kernels as 4 steps" \
  test "$(grep -cE '^  (gemm|kernel|call)' <<<"$rnn64")" -eq "$(grep -cE '^  (gemm|kernel|call)' <<<"$rnn4")"

if grep -qw avx512f /proc/cpuinfo; then
  check "native (AVX-512 host): bias+relu kernel is vectorized 8- or 16-wide" \
    grep -qE '<(8|16) x float>' <<<"$(width native grad_step.k1 '<[0-9]+ x float>')"
elif grep -qw avx2 /proc/cpuinfo; then
  check "native (AVX2 host): bias+relu kernel is vectorized 8-wide" \
    test "$(width native grad_step.k1 '<[0-9]+ x float>')" = "<8 x float> "
  check "x86-64-v4 code is refused on this host for training" \
    bash -c 'SPECNET_CPU=x86-64-v4 "$1" train "$2" --set train.epochs=0 --out "$(mktemp -d)" 2>&1 | grep -q "needs avx512"' _ "$specnet" "$spec"
fi
exit $fail
