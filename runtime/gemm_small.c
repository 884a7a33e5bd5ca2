/* f32 matrix products with a small batch side, without packing, in two variants:
 * AVX2 + FMA (16 ymm registers) and AVX-512 F/BW/DQ/VL + FMA (32 zmm registers).
 *
 * At batch 32 a training step's GEMMs are 32 x 128 x 784 and smaller: OpenBLAS packs
 * both operands on every call (and each thread packs the shared one again when a
 * product is cut across threads), which at these sizes costs a fifth to a third of
 * the multiply itself. These kernels read the operands where they lie instead:
 *
 *   NT  C = A B^T, A [M, K], B [N, K] (a dense layer's forward pass, X W^T): every
 *       C[i, j] is a dot product of two contiguous rows; a tile of them keeps one
 *       accumulator per element over k, then sums each across its lanes.
 *       AVX2: 3 x 4 tile, 12 eight-lane accumulators. AVX-512: 4 x 6 tile, 24
 *       sixteen-lane accumulators + 6 rows of B + 1 of A = 31 of the 32 registers.
 *       Packed (AVX-512, when the caller asks: tall products): each block of B
 *       transposed once into a buffer on the stack, then the NN tile below runs on
 *       it; on Zen 5 2.3-2.6x the dot products' speed at 2048 x 128..512 x 128..512
 *       and 6x at 12544 x 32 x 144, but 1.3-2x slower below M = 256, where the
 *       transposition is not repaid (pool.c asks by the whole product's M).
 *   NN  C = A B,   A [M, K], B [K, N] (an input gradient, dY W), and
 *   TN  C = A^T B, A [K, M], B [K, N] (a weight gradient, dY^T X): a tile of C gets
 *       A's element broadcast times B's row, k by k. AVX2: 6 x 16 tile in 12
 *       accumulators. AVX-512: 8 x 48 tile in 24 accumulators + 3 vectors of B's row
 *       + 1 broadcast = 28 registers; the last vector of a tile is masked.
 *
 * Loops run over column blocks outside and row blocks inside, with k in blocks (AVX2:
 * 512; AVX-512: 1024 for NT, 256 for NN and TN), so the block of B a tile reads stays
 * in L1 while every row block passes it.
 * Tails (K % lanes, the last columns) use masked loads and stores: nothing past a
 * row's end is read into a sum and nothing outside columns n0..n1 is written.
 * Within a variant, each element's sum runs in a fixed order that does not depend on
 * how the columns are cut across threads or where its tile starts, so results do not
 * depend on the thread count and are bit-identical between runs. The two variants
 * sum in different orders: their results differ in the last bits.
 *
 * Which variant runs is chosen once (choose_variant below): the best this CPU has,
 * no higher than SPECNET_CPU allows (x86-64-v3: AVX2; x86-64-v2, x86-64: none, all
 * products to OpenBLAS), SPECNET_GEMM_KERNELS=avx2|avx512 to pick one for
 * comparisons, SPECNET_SMALL_GEMM=0 for none. pool.c decides when to use them
 * (use_small) and whether NT packs, and cuts the columns across its threads. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "small_gemm.h"
#include "specnet/runtime.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* K = 0: columns n0..n1 of C become 0 */
static void zero_columns(int M, int n0, int n1, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = n0; j < n1; j++) C[(size_t)i * ldc + j] = 0;
}

/* A variant's two kernels: NT (dot products) and NN/TN (broadcasts, ta: TN) */
typedef void nt_kernel(int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb, float *C,
                       int ldc);
typedef void bc_kernel(bool ta, bool acc, int M, int n0, int n1, int K, const float *A, int lda,
                       const float *B, int ldb, float *C, int ldc);

/* A variant's sn_small_gemm_fn: K = 0 zeroes the columns, NT goes to nt (to ntp when
 * asked to pack and the variant has a packed NT), NN and TN to bc */
static inline void run_variant(nt_kernel *nt, nt_kernel *ntp, bc_kernel *bc, bool ta, bool tb, bool pack, int M,
                               int n0, int n1, int K, const float *A, int lda, const float *B, int ldb, float *C,
                               int ldc) {
  if (K <= 0) zero_columns(M, n0, n1, C, ldc);
  else if (tb) (pack && ntp ? ntp : nt)(M, n0, n1, K, A, lda, B, ldb, C, ldc);
  else
    bc(ta, false, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

/* ===========================================================================
 * AVX2 + FMA: 16 ymm registers */

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

/* acc: C += op(A) B (else C = op(A) B) */
TARGET static void gemm_bc(bool ta, bool acc, int M, int n0, int n1, int K, const float *A, int lda,
                           const float *B, int ldb, float *C, int ldc) {
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
          bc_tile_any(mr, ta, true, kc, Ai, lda, B + (size_t)k0 * ldb + j, ldb,
                      C + (size_t)i * ldc + j, ldc, m0, m1, !acc && k0 == 0);
        else
          bc_tile_any(mr, ta, false, kc, Ai, lda, B + (size_t)k0 * ldb + j, ldb,
                      C + (size_t)i * ldc + j, ldc, m0, m1, !acc && k0 == 0);
      }
    }
  }
}

static void avx2_gemm(bool ta, bool tb, bool pack, int M, int n0, int n1, int K, const float *A, int lda,
                      const float *B, int ldb, float *C, int ldc) {
  run_variant(gemm_nt, NULL, gemm_bc, ta, tb, pack, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

static void avx2_gemm_acc(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                          const float *B, int ldb, float *C, int ldc) {
  if (K > 0) gemm_bc(ta, true, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

static bool avx2_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#undef TARGET

/* ===========================================================================
 * AVX-512 F/BW/DQ/VL + FMA: 32 zmm registers, 16 lanes, mask registers for tails */

#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

enum { KC512 = 256 }; /* NN, TN: 48 columns x 256 rows of B, 48 KiB: Zen 5's L1 */

/* lanes 0..n-1 on (n in 0..16) */
static inline __mmask16 lanes16(int n) { return (__mmask16)((1u << n) - 1); }

/* ---------------------------------------------------------------------------
 * NT: dot products, 4 x 6 tile */

/* Sums 4 vectors across their lanes, {sum a, sum b, sum c, sum d}: the upper 8 lanes
 * onto the lower 8, then as hsum4 above. */
TARGET INLINE __m128 hsum4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
  __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
  __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
  __m256 ab = _mm256_hadd_ps(a8, b8), cd = _mm256_hadd_ps(c8, d8);
  __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* 4 x 6: 24 accumulators + 6 rows of B + 1 of A = 31 registers (6 x 4 measured the
 * same, 8 x 3 slower). k in blocks of 1024, not KC512: each block of k ends in
 * horizontal sums, which at 256 cost a fifth of the dense1 forward pass, and 6 rows
 * of B x 1024 (24 KiB) still fit L1. */
enum { NT_MR = 4, NT_NR = 6, NT_KC = 1024 };

/* C[MR x NR] (+)= A[MR rows] . B[NR rows] over k in [0, K); first: store, not add */
TARGET INLINE void nt512_tile(int MR, int NR, int K, const float *A, int lda, const float *B, int ldb, float *C,
                              int ldc, bool first) {
  __m512 acc[NT_MR][8]; /* columns NT_NR.. stay 0: hsum4_512 takes 4 at a time */
  for (int r = 0; r < NT_MR; r++)
    for (int c = 0; c < 8; c++) acc[r][c] = _mm512_setzero_ps();
  for (int k = 0; k < K; k += 16) {
    __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : lanes16(K - k); /* masked lanes read as 0 */
    __m512 b[NT_NR];
#pragma GCC unroll 8
    for (int c = 0; c < NR; c++) b[c] = _mm512_maskz_loadu_ps(m, B + (size_t)c * ldb + k);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      __m512 a = _mm512_maskz_loadu_ps(m, A + (size_t)r * lda + k);
#pragma GCC unroll 8
      for (int c = 0; c < NR; c++) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
#pragma GCC unroll 2
    for (int c0 = 0; c0 < NR; c0 += 4) {
      float *c = C + (size_t)r * ldc + c0;
      __mmask8 cm = (__mmask8)((1u << (NR - c0 < 4 ? NR - c0 : 4)) - 1);
      __m128 s = hsum4_512(acc[r][c0], acc[r][c0 + 1], acc[r][c0 + 2], acc[r][c0 + 3]);
      if (!first) s = _mm_add_ps(s, _mm_maskz_loadu_ps(cm, c));
      _mm_mask_storeu_ps(c, cm, s);
    }
  }
}

TARGET static void nt512_tile_any(int MR, int NR, int K, const float *A, int lda, const float *B, int ldb, float *C,
                                  int ldc, bool first) {
#define NT_CASE(mr, nr)                                                                            \
  case (mr) * 16 + (nr): nt512_tile(mr, nr, K, A, lda, B, ldb, C, ldc, first); return;
#define NT_ROW(mr) NT_CASE(mr, 6) NT_CASE(mr, 5) NT_CASE(mr, 4) NT_CASE(mr, 3) NT_CASE(mr, 2) NT_CASE(mr, 1)
  switch (MR * 16 + NR) { NT_ROW(4) NT_ROW(3) NT_ROW(2) NT_ROW(1) }
#undef NT_ROW
#undef NT_CASE
}

TARGET static void gemm512_nt(int M, int n0, int n1, int K, const float *A, int lda, const float *B, int ldb,
                              float *C, int ldc) {
  for (int k0 = 0; k0 < K; k0 += NT_KC) {
    int kc = K - k0 < NT_KC ? K - k0 : NT_KC;
    for (int j = n0; j < n1; j += NT_NR) {
      int nr = n1 - j < NT_NR ? n1 - j : NT_NR;
      for (int i = 0; i < M; i += NT_MR) {
        int mr = M - i < NT_MR ? M - i : NT_MR;
        nt512_tile_any(mr, nr, kc, A + (size_t)i * lda + k0, lda, B + (size_t)j * ldb + k0, ldb,
                       C + (size_t)i * ldc + j, ldc, k0 == 0);
      }
    }
  }
}

/* ---------------------------------------------------------------------------
 * NN and TN: broadcasts of A times rows of B, 8 x 48 tile */

/* C[MR x 16 NV, the last 16 masked by ml] (+)= op(A)[MR rows] B[k rows], k in [0, K) */
TARGET INLINE void bc512_tile(int MR, int NV, bool ta, int K, const float *A, int lda, const float *B, int ldb,
                              float *C, int ldc, __mmask16 ml, bool first) {
  __m512 acc[8][3];
  for (int r = 0; r < 8; r++)
    for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    const float *b = B + (size_t)k * ldb;
    __m512 bv[3];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) bv[v] = v < NV - 1 ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(ml, b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      __m512 a = _mm512_set1_ps(ta ? A[(size_t)k * lda + r] : A[(size_t)r * lda + k]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    float *c = C + (size_t)r * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) {
      __mmask16 m = v < NV - 1 ? (__mmask16)0xffff : ml;
      if (!first) acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(m, c + 16 * v));
      _mm512_mask_storeu_ps(c + 16 * v, m, acc[r][v]);
    }
  }
}

TARGET static void bc512_tile_any(int MR, int NV, bool ta, int K, const float *A, int lda, const float *B, int ldb,
                                  float *C, int ldc, __mmask16 ml, bool first) {
#define BC_CASE(mr, nv)                                                                            \
  case (mr) * 4 + (nv):                                                                            \
    if (ta) bc512_tile(mr, nv, true, K, A, lda, B, ldb, C, ldc, ml, first);                        \
    else bc512_tile(mr, nv, false, K, A, lda, B, ldb, C, ldc, ml, first);                          \
    return;
  switch (MR * 4 + NV) {
    BC_CASE(8, 3) BC_CASE(8, 2) BC_CASE(8, 1) BC_CASE(7, 3) BC_CASE(7, 2) BC_CASE(7, 1)
    BC_CASE(6, 3) BC_CASE(6, 2) BC_CASE(6, 1) BC_CASE(5, 3) BC_CASE(5, 2) BC_CASE(5, 1)
    BC_CASE(4, 3) BC_CASE(4, 2) BC_CASE(4, 1) BC_CASE(3, 3) BC_CASE(3, 2) BC_CASE(3, 1)
    BC_CASE(2, 3) BC_CASE(2, 2) BC_CASE(2, 1) BC_CASE(1, 3) BC_CASE(1, 2) BC_CASE(1, 1)
  }
#undef BC_CASE
}

TARGET static void gemm512_bc(bool ta, bool acc, int M, int n0, int n1, int K, const float *A,
                              int lda, const float *B, int ldb, float *C, int ldc) {
  for (int k0 = 0; k0 < K; k0 += KC512) {
    int kc = K - k0 < KC512 ? K - k0 : KC512;
    const float *Ak = ta ? A + (size_t)k0 * lda : A + k0;
    for (int j = n0; j < n1; j += 48) {
      int nc = n1 - j < 48 ? n1 - j : 48;
      int nv = (nc + 15) / 16;
      __mmask16 ml = lanes16(nc - 16 * (nv - 1));
      for (int i = 0; i < M; i += 8) {
        int mr = M - i < 8 ? M - i : 8;
        const float *Ai = ta ? Ak + i : Ak + (size_t)i * lda;
        bc512_tile_any(mr, nv, ta, kc, Ai, lda, B + (size_t)k0 * ldb + j, ldb,
                       C + (size_t)i * ldc + j, ldc, ml, !acc && k0 == 0);
      }
    }
  }
}

/* NT for tall products: each block of B (48 rows x KC512 of k) transposed once into
 * a buffer on the stack, which the broadcast tile then reads as the B of A B: the
 * block is packed once for all M rows, and no tile ends in horizontal sums. */
TARGET static void gemm512_nt_packed(int M, int n0, int n1, int K, const float *A, int lda, const float *B,
                                     int ldb, float *C, int ldc) {
  float bt[KC512 * 48];
  for (int k0 = 0; k0 < K; k0 += KC512) {
    int kc = K - k0 < KC512 ? K - k0 : KC512;
    for (int j = n0; j < n1; j += 48) {
      int nc = n1 - j < 48 ? n1 - j : 48;
      int nv = (nc + 15) / 16;
      __mmask16 ml = lanes16(nc - 16 * (nv - 1));
      for (int c = 0; c < nc; c++) {
        const float *b = B + (size_t)(j + c) * ldb + k0;
        for (int k = 0; k < kc; k++) bt[k * 48 + c] = b[k];
      }
      for (int i = 0; i < M; i += 8) {
        int mr = M - i < 8 ? M - i : 8;
        bc512_tile_any(mr, nv, false, kc, A + (size_t)i * lda + k0, lda, bt, 48, C + (size_t)i * ldc + j, ldc, ml,
                       k0 == 0);
      }
    }
  }
}

static void avx512_gemm(bool ta, bool tb, bool pack, int M, int n0, int n1, int K, const float *A, int lda,
                        const float *B, int ldb, float *C, int ldc) {
  run_variant(gemm512_nt, gemm512_nt_packed, gemm512_bc, ta, tb, pack, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

static void avx512_gemm_acc(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                            const float *B, int ldb, float *C, int ldc) {
  if (K > 0) gemm512_bc(ta, true, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

static bool avx512_supported(void) {
  __builtin_cpu_init();
  return avx2_supported() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

#undef TARGET
#undef INLINE

/* ===========================================================================
 * The variants and the choice among them */

/* fastest first; level: the x86-64 level (SPECNET_CPU) it needs */
static const struct {
  sn_small_gemm_kernels k;
  int level;
} variants[] = {
    {{"avx512", avx512_supported, avx512_gemm, 16, avx512_gemm_acc}, 4},
    {{"avx2", avx2_supported, avx2_gemm, 8, avx2_gemm_acc}, 3},
};
enum { N_VARIANTS = sizeof variants / sizeof *variants };

#else /* no kernels on this compiler or architecture: OpenBLAS does it all */

static const struct {
  sn_small_gemm_kernels k;
  int level;
} variants[1];
enum { N_VARIANTS = 0 };

#endif

const sn_small_gemm_kernels *sn_small_gemm_variant_at(int i) {
  return i >= 0 && i < N_VARIANTS ? &variants[i].k : NULL;
}

/* The highest x86-64 level SPECNET_CPU allows: native, unset or a name the CLI would
 * reject (it checks before the runtime looks) leave it to the CPU. */
static int cpu_level_cap(void) {
  const char *e = getenv("SPECNET_CPU");
  if (!e || !*e) return 4;
  if (!strcmp(e, "x86-64-v3")) return 3;
  if (!strcmp(e, "x86-64-v2")) return 2;
  if (!strcmp(e, "x86-64")) return 1;
  return 4;
}

/* Index of the variant sn_small_gemm runs, -1 for none: SPECNET_SMALL_GEMM=0 none;
 * else among those this CPU supports within SPECNET_CPU's level, the one
 * SPECNET_GEMM_KERNELS names if it is one of them, else the fastest. */
static int choose_variant(void) {
  const char *off = getenv("SPECNET_SMALL_GEMM");
  if (off && !strcmp(off, "0")) return -1;
  const char *want = getenv("SPECNET_GEMM_KERNELS");
  int cap = cpu_level_cap(), best = -1;
  for (int i = 0; i < N_VARIANTS; i++) {
    if (variants[i].level > cap || !variants[i].k.supported()) continue;
    if (want && !strcmp(want, variants[i].k.name)) return i;
    if (best < 0) best = i;
  }
  return best;
}

static _Atomic int chosen = -2; /* -2: not chosen yet; racing first calls choose the same */

static int variant_index(void) {
  int v = atomic_load_explicit(&chosen, memory_order_relaxed);
  if (v == -2) {
    v = choose_variant();
    atomic_store_explicit(&chosen, v, memory_order_relaxed);
  }
  return v;
}

bool sn_small_gemm_available(void) { return variant_index() >= 0; }

int sn_small_gemm_lanes(void) {
  int v = variant_index();
  return v >= 0 ? variants[v].k.lanes : 0;
}

const char *sn_small_gemm_variant(void) {
  int v = variant_index();
  return v >= 0 ? variants[v].k.name : "none";
}

void sn_small_gemm(bool ta, bool tb, bool pack, int M, int n0, int n1, int K, const float *A, int lda,
                   const float *B, int ldb, float *C, int ldc) {
  int v = variant_index();
  if (v >= 0) variants[v].k.gemm(ta, tb, pack, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}

void sn_small_gemm_acc(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                       const float *B, int ldb, float *C, int ldc) {
  int v = variant_index();
  if (v >= 0) variants[v].k.gemm_acc(ta, M, n0, n1, K, A, lda, B, ldb, C, ldc);
}
