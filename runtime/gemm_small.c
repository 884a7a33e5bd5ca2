/* f32 matrix products with a small batch side, in AVX2 + FMA, without packing.
 *
 * At batch 32 a training step's GEMMs are 32 x 128 x 784 and smaller: OpenBLAS packs
 * both operands on every call (and each thread packs the shared one again when a
 * product is cut across threads), which at these sizes costs a fifth to a third of
 * the multiply itself. These kernels read the operands where they lie instead:
 *
 *   NT  C = A B^T, A [M, K], B [N, K] (a dense layer's forward pass, X W^T): every
 *       C[i, j] is a dot product of two contiguous rows; a 3 x 4 tile of them keeps
 *       12 eight-lane accumulators over k, then sums each across its lanes.
 *   NN  C = A B,   A [M, K], B [K, N] (an input gradient, dY W), and
 *   TN  C = A^T B, A [K, M], B [K, N] (a weight gradient, dY^T X): a 6 x 16 tile of
 *       C in 12 accumulators gets A's element broadcast times B's row, k by k.
 *
 * Loops run over column blocks outside and row blocks inside, with k in blocks of
 * KC, so the block of B a tile reads stays in L1 while every row block passes it.
 * Sums are in a fixed order that does not depend on how the columns are cut across
 * threads, so results do not depend on the thread count. pool.c decides when to
 * use them (use_small) and cuts the columns across its threads. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "small_gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { KC = 512 };

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* lanes 0..n-1 on (n in 0..8) */
TARGET INLINE __m256i lanes(int n) { return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n)); }

/* ---------------------------------------------------------------------------
 * NT: dot products */

/* Sums 4 vectors across their lanes: {sum a, sum b, sum c, sum d}. */
TARGET INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
  __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* C[MR x NR] (+)= A[MR rows] . B[NR rows] over k in [0, K); first: store, not add */
TARGET INLINE void nt_tile(int MR, int NR, int K, const float *A, int lda, const float *B, int ldb, float *C,
                           int ldc, bool first) {
  __m256 acc[3][4];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) acc[r][c] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 a[3];
#pragma GCC unroll 3
    for (int r = 0; r < MR; r++) a[r] = _mm256_loadu_ps(A + (size_t)r * lda + k);
#pragma GCC unroll 4
    for (int c = 0; c < NR; c++) {
      __m256 b = _mm256_loadu_ps(B + (size_t)c * ldb + k);
#pragma GCC unroll 3
      for (int r = 0; r < MR; r++) acc[r][c] = _mm256_fmadd_ps(a[r], b, acc[r][c]);
    }
  }
  if (k < K) { /* the last K % 8: masked loads read zeros past the end */
    __m256i m = lanes(K - k);
    __m256 a[3];
#pragma GCC unroll 3
    for (int r = 0; r < MR; r++) a[r] = _mm256_maskload_ps(A + (size_t)r * lda + k, m);
#pragma GCC unroll 4
    for (int c = 0; c < NR; c++) {
      __m256 b = _mm256_maskload_ps(B + (size_t)c * ldb + k, m);
#pragma GCC unroll 3
      for (int r = 0; r < MR; r++) acc[r][c] = _mm256_fmadd_ps(a[r], b, acc[r][c]);
    }
  }
#pragma GCC unroll 3
  for (int r = 0; r < MR; r++) {
    float *c = C + (size_t)r * ldc;
    __m128 s = hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
    if (NR == 4) {
      if (!first) s = _mm_add_ps(s, _mm_loadu_ps(c));
      _mm_storeu_ps(c, s);
    } else {
      float t[4];
      _mm_storeu_ps(t, s);
      for (int j = 0; j < NR; j++) c[j] = first ? t[j] : c[j] + t[j];
    }
  }
}

/* the tile with compile-time sizes, so that the accumulators live in registers */
TARGET static void nt_tile_any(int MR, int NR, int K, const float *A, int lda, const float *B, int ldb, float *C,
                               int ldc, bool first) {
#define NT_CASE(mr, nr)                                                                            \
  case (mr) * 8 + (nr): nt_tile(mr, nr, K, A, lda, B, ldb, C, ldc, first); return;
  switch (MR * 8 + NR) {
    NT_CASE(3, 4) NT_CASE(3, 3) NT_CASE(3, 2) NT_CASE(3, 1)
    NT_CASE(2, 4) NT_CASE(2, 3) NT_CASE(2, 2) NT_CASE(2, 1)
    NT_CASE(1, 4) NT_CASE(1, 3) NT_CASE(1, 2) NT_CASE(1, 1)
  }
#undef NT_CASE
}

TARGET static void gemm_nt(int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb, float *C,
                           int ldc) {
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kc = K - k0 < KC ? K - k0 : KC;
    for (int j = n0; j < n1; j += 4) {
      int nr = n1 - j < 4 ? n1 - j : 4;
      for (int i = 0; i < M; i += 3) {
        int mr = M - i < 3 ? M - i : 3;
        nt_tile_any(mr, nr, kc, A + (size_t)i * lda + k0, lda, B + (size_t)j * ldb + k0, ldb, C + (size_t)i * ldc + j,
                    ldc, k0 == 0);
      }
    }
  }
}

/* ---------------------------------------------------------------------------
 * NN and TN: broadcasts of A times rows of B */

/* C[MR x 16 (masked: m0, m1)] (+)= op(A)[MR rows] B[k rows], k in [0, K) */
TARGET INLINE void bc_tile(int MR, bool ta, bool full, int K, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc, __m256i m0, __m256i m1, bool first) {
  __m256 acc[6][2];
  for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int k = 0; k < K; k++) {
    const float *b = B + (size_t)k * ldb;
    __m256 b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
    __m256 b1 = full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      __m256 a = _mm256_broadcast_ss(ta ? A + (size_t)k * lda + r : A + (size_t)r * lda + k);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    float *c = C + (size_t)r * ldc;
    if (full) {
      if (!first) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(c));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(c + 8));
      }
      _mm256_storeu_ps(c, acc[r][0]);
      _mm256_storeu_ps(c + 8, acc[r][1]);
    } else {
      if (!first) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(c, m0));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(c + 8, m1));
      }
      _mm256_maskstore_ps(c, m0, acc[r][0]);
      _mm256_maskstore_ps(c + 8, m1, acc[r][1]);
    }
  }
}

TARGET static void bc_tile_any(int MR, bool ta, bool full, int K, const float *A, int lda, const float *B, int ldb,
                               float *C, int ldc, __m256i m0, __m256i m1, bool first) {
#define BC_CASE(mr)                                                                                \
  case mr:                                                                                         \
    if (ta) bc_tile(mr, true, full, K, A, lda, B, ldb, C, ldc, m0, m1, first);                     \
    else bc_tile(mr, false, full, K, A, lda, B, ldb, C, ldc, m0, m1, first);                       \
    return;
  switch (MR) { BC_CASE(6) BC_CASE(5) BC_CASE(4) BC_CASE(3) BC_CASE(2) BC_CASE(1) }
#undef BC_CASE
}

TARGET static void gemm_bc(bool ta, int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc) {
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kc = K - k0 < KC ? K - k0 : KC;
    const float *Ak = ta ? A + (size_t)k0 * lda : A + k0;
    for (int j = n0; j < n1; j += 16) {
      int nc = n1 - j < 16 ? n1 - j : 16;
      __m256i m0 = lanes(nc < 8 ? nc : 8), m1 = lanes(nc > 8 ? nc - 8 : 0);
      for (int i = 0; i < M; i += 6) {
        int mr = M - i < 6 ? M - i : 6;
        const float *Ai = ta ? Ak + i : Ak + (size_t)i * lda;
        if (nc == 16)
          bc_tile_any(mr, ta, true, kc, Ai, lda, B + (size_t)k0 * ldb + j, ldb, C + (size_t)i * ldc + j, ldc, m0, m1,
                      k0 == 0);
        else
          bc_tile_any(mr, ta, false, kc, Ai, lda, B + (size_t)k0 * ldb + j, ldb, C + (size_t)i * ldc + j, ldc, m0,
                      m1, k0 == 0);
      }
    }
  }
}

bool sn_small_gemm_available(void) {
  static _Atomic int have = -1; /* racing first calls compute the same answer */
  if (atomic_load_explicit(&have, memory_order_relaxed) < 0) {
    __builtin_cpu_init();
    atomic_store_explicit(&have, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                          memory_order_relaxed);
  }
  return atomic_load_explicit(&have, memory_order_relaxed);
}

void sn_small_gemm(bool ta, bool tb, int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc) {
  if (K <= 0) {
    for (int i = 0; i < M; i++)
      for (int j = n0; j < n1; j++) C[(size_t)i * ldc + j] = 0;
    return;
  }
  if (tb) gemm_nt(M, n0, n1, K, A, lda, B, ldb, C, ldc);
  else gemm_bc(ta, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

#else /* no AVX2 kernels on this compiler or architecture: OpenBLAS does it all */

bool sn_small_gemm_available(void) { return false; }

void sn_small_gemm(bool ta, bool tb, int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc) {
  (void)ta, (void)tb, (void)M, (void)n0, (void)n1, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C,
      (void)ldc;
}

#endif
