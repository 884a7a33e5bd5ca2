/* f32 GEMMs with a small batch side, without packing (gemm_small.c); pool.c calls
 * them for the products of small-batch training steps. */
#ifndef SPECNET_SMALL_GEMM_H
#define SPECNET_SMALL_GEMM_H

#include <stdbool.h>

/* whether this CPU has AVX2 and FMA (and the kernels were compiled in) */
bool sn_small_gemm_available(void);
/* Columns n0..n1 of C = op(A) op(B), row-major, alpha 1, beta 0. Not for ta && tb.
 * K may be 0 (C's columns become 0). */
void sn_small_gemm(bool ta, bool tb, int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc);

#endif
