#!/usr/bin/env bash
# lstm and gru ahead of time: tests/specs/ops/recurrent_masked.yaml (an lstm into a
# gru and a second lstm over padded ids), trained briefly, built as an executable
# (which links the runtime's scans) and as a --lib archive (which carries their
# cblas variants: the C program links the archive, OpenBLAS and libm alone) gives
# `specnet predict`'s probabilities on padded samples of every length.
set -uo pipefail
specnet=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
spec=tests/specs/ops/recurrent_masked.yaml
"$specnet" train "$spec" --set train.epochs=3 --out "$tmp/run" --quiet || exit 1
w=$tmp/run/model.safetensors
# 40 samples of 6 ids in 1..4, the first k real and the rest padding (id 0), k = 0..6
awk 'BEGIN { srand(5); for (i = 0; i < 40; i++) { k = i % 7; s = "";
  for (t = 0; t < 6; t++) s = s (t ? "," : "") (t < k ? 1 + int(4 * rand()) : 0); print s } }' >"$tmp/x.csv"
"$specnet" predict "$spec" --weights "$w" --input "$tmp/x.csv" --probs --output "$tmp/jit.csv" --quiet || exit 1
close() { # close A B: the same rows, every value within 1e-6
  paste -d, "$1" "$2" | awk -F, '{ n = NF / 2; if (n != 3) exit 1;
    for (i = 1; i <= n; i++) { d = $i - $(i + n); if (d > 1e-6 || d < -1e-6) exit 1 } } END { exit NR != 40 }'
}

"$specnet" build "$spec" --weights "$w" -o "$tmp/model" --quiet || exit 1
"$tmp/model" --input "$tmp/x.csv" --probs --output "$tmp/exe.csv"
check "the executable gives specnet predict's probabilities" close "$tmp/jit.csv" "$tmp/exe.csv"

"$specnet" build "$spec" --weights "$w" --lib -o "$tmp/lib" --quiet || exit 1
check "the archive holds the model and the recurrent scans" \
  bash -c 'ar t "$1" | grep -qx recurrent.o && nm "$1" | grep -q "T sn_lstm_cblas_f32"' _ "$tmp/lib/librecurrent_masked.a"
cat >"$tmp/main.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include "recurrent_masked.h"
int main(int argc, char **argv) { /* x.csv (40 samples) -> probabilities CSV on stdout */
  enum { E = RECURRENT_MASKED_INPUT_ELEMS, O = RECURRENT_MASKED_OUTPUT_ELEMS, N = 40 };
  static float x[N * E], y[N * O];
  FILE *f = argc > 1 ? fopen(argv[1], "r") : NULL;
  for (int i = 0; f && i < N * E; i++)
    if (fscanf(f, " %f ,", &x[i]) != 1) return 1;
  void *scratch = malloc(RECURRENT_MASKED_SCRATCH_BYTES);
  if (!f || !scratch || recurrent_masked_predict(x, N, y, scratch)) return 1;
  for (int i = 0; i < N; i++)
    for (int k = 0; k < O; k++) printf("%.9g%c", y[i * O + k], k + 1 < O ? ',' : '\n');
  free(scratch);
  fclose(f);
  return 0;
}
CEOF
check "a C program links the archive with OpenBLAS and libm alone" \
  cc -O2 "$tmp/main.c" -I "$tmp/lib" -L "$tmp/lib" -lrecurrent_masked -lopenblas -lm -o "$tmp/c"
"$tmp/c" "$tmp/x.csv" >"$tmp/lib.csv"
check "the C library gives specnet predict's probabilities" close "$tmp/jit.csv" "$tmp/lib.csv"
exit $fail
