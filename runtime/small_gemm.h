/* f32 GEMMs with a small batch side, without packing (gemm_small.c); pool.c calls
 * them for the products its rule (use_small) gives them: those with a small side,
 * and with AVX-512 most f32 products. Variants: "avx512" and
 * "avx2"; one is chosen once per process by CPU features, SPECNET_CPU,
 * SPECNET_GEMM_KERNELS and SPECNET_SMALL_GEMM (see gemm_small.c). */
#ifndef SPECNET_SMALL_GEMM_H
#define SPECNET_SMALL_GEMM_H

#include <stdbool.h>

/* Columns n0..n1 of C = op(A) op(B), row-major, alpha 1, beta 0. Not for ta && tb.
 * K may be 0 (C's columns become 0). Nothing outside rows 0..M-1, columns n0..n1 of
 * C is written; nothing of A or B past op(A)'s M x K, op(B)'s K x N is read.
 * pack (with tb): B^T's blocks are transposed first and multiplied as A B, which
 * pays on tall products; a variant without that path ignores it. The sums run in
 * another order than without it: the caller decides by the whole product, never by
 * a thread's part of it. */
typedef void sn_small_gemm_fn(bool ta, bool tb, bool pack, int M, int n0, int n1, int K, const float *A, int lda,
                              const float *B, int ldb, float *C, int ldc);

/* Columns n0..n1 of C += op(A) B (not B^T), as sn_small_gemm_fn otherwise: an
 * accumulation, for products summed a block of K at a time (conv_gemm.c). */
typedef void sn_small_gemm_acc_fn(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                                  const float *B, int ldb, float *C, int ldc);

typedef struct sn_small_gemm_kernels {
  const char *name;               /* "avx512", "avx2" */
  bool (*supported)(void);        /* this CPU runs it (whatever SPECNET_CPU says) */
  sn_small_gemm_fn *gemm;         /* call only where supported() */
  int lanes;                      /* floats a vector: 16, 8 */
  sn_small_gemm_acc_fn *gemm_acc; /* the same for C += op(A) B */
} sn_small_gemm_kernels;

/* whether a variant was chosen (the CPU has AVX2 and FMA at least, the kernels were
 * compiled in, and neither SPECNET_CPU nor SPECNET_SMALL_GEMM=0 rules them out) */
bool sn_small_gemm_available(void);
/* the chosen variant's lanes (chosen once, at the first call), 0 for none */
int sn_small_gemm_lanes(void);
/* the chosen variant (call only where sn_small_gemm_available()) */
void sn_small_gemm(bool ta, bool tb, bool pack, int M, int n0, int n1, int K, const float *A, int lda,
                   const float *B, int ldb, float *C, int ldc);

/* the chosen variant's C += op(A) B (call only where sn_small_gemm_available()) */
void sn_small_gemm_acc(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                       const float *B, int ldb, float *C, int ldc);

/* Every variant compiled in, fastest first (for tests and benchmarks): i = 0, 1, ...
 * until NULL. */
const sn_small_gemm_kernels *sn_small_gemm_variant_at(int i);

/* pool.c's side, for benchmarks and tests: sn_par_sgemm (threads, cuts and all) with
 * the path forced. SN_GEMM_RULE: as sn_par_sgemm, the rule of use_small in pool.c;
 * SN_GEMM_BLAS: OpenBLAS; SN_GEMM_SMALL: the chosen variant where
 * sn_small_gemm_available() and not ta && tb, else OpenBLAS. */
typedef enum sn_gemm_path { SN_GEMM_RULE, SN_GEMM_BLAS, SN_GEMM_SMALL } sn_gemm_path;
void sn_par_sgemm_path(sn_gemm_path path, int ta, int tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, float *C, int ldc);
/* whether sn_par_sgemm runs this product (ta, tb: CblasTrans or not) in the small kernels */
bool sn_gemm_small_chosen(int ta, int tb, int M, int N, int K);

#endif
