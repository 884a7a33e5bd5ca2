/* Implicit-GEMM convolutions (the ops conv_gemm, conv_gemm_wgrad and
 * conv_gemm_dgrad): conv2d's product with im2col's patches without the patches in
 * memory, and its gradients without theirs. The output rows
 * (pixels, M = N OH OW) are taken a tile at a time: the tile's patches are gathered
 * into a buffer on the stack (a tile of at most 64 rows x K, which stays in L1/L2)
 * and multiplied at once, by the small-GEMM kernels of gemm_small.c (f32, where a
 * variant was chosen) or by OpenBLAS on the tile. Generated code calls these as it
 * calls sn_par_sgemm, one call per op.
 *
 * Letters: x [N, H, W, C] NHWC; w [K, F] with K = KH KW C in im2col's column order
 * (kh, kw, c); y and dy [N, OH, OW, F]; a tile is rows r0..r0+mt of the [M, F] view.
 *
 *   forward   y[tile]  = patches(x)[tile] w                 (threads take tiles)
 *   weight    dw       = sum over parts p of dw_p,  dw_p = sum over the part's
 *                        tiles of patches(x)[tile]^T dy[tile]
 *   input     dx[n]    = col2im over sample n's tiles of dy[tile] w^T   (threads take samples)
 *
 * The input gradient's tile products go into the buffer and are added into dx at
 * their taps at once (col2im from L1, never the [M, K] patches' gradient in
 * memory); a sample's dx is written by its own tiles only, in order, so the
 * threads take whole samples and the result does not depend on them.
 *
 * The weight gradient's rows are cut into a fixed number of parts (the plan's,
 * `parts`), whatever the threads: each part sums its tiles into its own [K, F]
 * slice of the scratch the plan reserves after the arena, and the slices are added
 * in order, so the result has the same bits for any thread count. Nothing is
 * allocated.
 *
 * Compiled with SN_CONV_GEMM_CBLAS the file gives the sn_conv_gemm_cblas_*
 * variants: serial, OpenBLAS on every tile (the object `specnet build --lib`
 * archives carry; they have no pool). */
#include <cblas.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "specnet/runtime.h"

#ifndef SN_CONV_GEMM_CBLAS
#include "small_gemm.h"
#define SMALL_OK() sn_small_gemm_available()
#define PAR_FOR(fn, ctx, count) sn_par_for(fn, ctx, count, 1)
#define NAME(base, sfx) sn_##base##_##sfx
#else
#define SMALL_OK() false
#define PAR_FOR(fn, ctx, count) fn(ctx, 0, count)
#define NAME(base, sfx) sn_##base##_cblas_##sfx
/* never called: SMALL_OK() is false */
static inline void sn_small_gemm(bool ta, bool tb, bool pack, int M, int n0, int n1, int K,
                                 const float *A, int lda, const float *B, int ldb, float *C,
                                 int ldc) {
  (void)ta, (void)tb, (void)pack, (void)M, (void)n0, (void)n1, (void)K, (void)A, (void)lda, (void)B,
      (void)ldb;
  (void)C, (void)ldc;
}
static inline void sn_small_gemm_acc(bool ta, int M, int n0, int n1, int K, const float *A, int lda,
                                     const float *B, int ldb, float *C, int ldc) {
  (void)ta, (void)M, (void)n0, (void)n1, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C,
      (void)ldc;
}
#endif

enum {
  TILE_BYTES = 64 * 1024, /* the gathered tile: a stack buffer */
  TILE_ROWS = 64,         /* at most; fewer where K is long (K <= SN_CONV_GEMM_MAX_K) */
};

_Static_assert(TILE_BYTES / 8 / SN_CONV_GEMM_MAX_K >= 8,
               "a tile of f64 patches has 8 rows at least");

/* the geometry generated code passes (geo[]) */
typedef struct geom {
  int64_t n, H, W, C, KH, KW, SH, SW, PT, PL, DH, DW, OH, OW, F;
  int64_t K, M, mt; /* patch length, rows, rows per tile */
} geom;

static geom geom_of(const int64_t *g, int64_t es) {
  geom q = {.n = g[0],
            .H = g[1],
            .W = g[2],
            .C = g[3],
            .KH = g[4],
            .KW = g[5],
            .SH = g[6],
            .SW = g[7],
            .PT = g[8],
            .PL = g[9],
            .DH = g[10],
            .DW = g[11],
            .OH = g[12],
            .OW = g[13],
            .F = g[14],
            .K = g[4] * g[5] * g[3],
            .M = g[0] * g[12] * g[13]};
  q.mt = q.K > 0 ? TILE_BYTES / es / q.K : 1;
  q.mt = q.mt > TILE_ROWS ? TILE_ROWS : q.mt < 1 ? 1 : q.mt;
  return q;
}

/* n bytes from s to d: 64-byte blocks the compiler copies inline (a patch row is
 * a few taps of tens of bytes: a call to memcpy each would cost more than the copy) */
static inline void copy(char *d, const char *s, size_t n) {
  for (; n >= 64; n -= 64, d += 64, s += 64) __builtin_memcpy(d, s, 64);
  if (n) memcpy(d, s, n);
}

/* patches rows r0..r0+mt into buf [mt, K] (zeros for taps outside the image), es
 * bytes an element. Per row and kernel row kh: the KW taps are one run of KW C
 * values of x where they are adjacent (no dilation along w) and all inside the
 * image, else tap by tap. */
static void gather(const geom *q, const char *x, int64_t es, int64_t r0, int64_t mt, char *buf) {
  size_t tap = (size_t)(q->C * es), span = (size_t)q->KW * tap;
  int64_t ow = r0 % q->OW, oh = r0 / q->OW % q->OH, n = r0 / (q->OW * q->OH);
  char *dst = buf;
  for (int64_t t = 0; t < mt; t++) {
    const char *xn = x + (size_t)(n * q->H * q->W) * tap;
    int64_t ih0 = oh * q->SH - q->PT, iw0 = ow * q->SW - q->PL;
    bool run = q->DW == 1 && iw0 >= 0 && iw0 + q->KW <= q->W;
    for (int64_t kh = 0; kh < q->KH; kh++, dst += span) {
      int64_t ih = ih0 + kh * q->DH;
      if (ih < 0 || ih >= q->H) {
        memset(dst, 0, span);
        continue;
      }
      const char *xr = xn + (size_t)(ih * q->W) * tap;
      if (run) {
        copy(dst, xr + (size_t)iw0 * tap, span);
        continue;
      }
      for (int64_t kw = 0; kw < q->KW; kw++) {
        int64_t iw = iw0 + kw * q->DW;
        if (iw < 0 || iw >= q->W)
          memset(dst + (size_t)kw * tap, 0, tap);
        else
          copy(dst + (size_t)kw * tap, xr + (size_t)iw * tap, tap);
      }
    }
    if (++ow == q->OW) {
      ow = 0;
      if (++oh == q->OH) oh = 0, n++;
    }
  }
}

/* the adds of the col2im below are about a third of the input gradient's time (its
 * tile products the rest): vectors as wide as the CPU has (an ifunc picks the
 * clone once) */
#if defined(__x86_64__) && !defined(SN_CONV_GEMM_CBLAS) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* d[0..n) += s[0..n): 64 bytes at a time while they last (a patch tap is usually
 * a multiple), as the compiler's vectors of the clone, no alias checks */
typedef float vf64b __attribute__((vector_size(64)));
typedef double vd64b __attribute__((vector_size(64)));
#define ADD(REAL, V)                                                                               \
  static inline void add_##REAL(REAL *d, const REAL *s, int64_t n) {                               \
    enum { L = 64 / sizeof(REAL) };                                                                \
    int64_t c = 0;                                                                                 \
    for (; c + L <= n; c += L) {                                                                   \
      V a, b;                                                                                      \
      __builtin_memcpy(&a, d + c, 64);                                                             \
      __builtin_memcpy(&b, s + c, 64);                                                             \
      a += b;                                                                                      \
      __builtin_memcpy(d + c, &a, 64);                                                             \
    }                                                                                              \
    for (; c < n; c++) d[c] += s[c];                                                               \
  }
ADD(float, vf64b)
ADD(double, vd64b)
#undef ADD

/* col2im of one tile: rows r0..r0+mt of a sample's output (r0 counted within the
 * sample), their patches' gradient in buf [mt, K], added into the sample's dx, dxn
 * [H, W, C], at the taps inside the image */
#define SCATTER(REAL)                                                                              \
  CLONES static void scatter_##REAL(const geom *q, const REAL *buf, int64_t r0, int64_t mt,        \
                                    REAL *dxn) {                                                   \
    int64_t ow = r0 % q->OW, oh = r0 / q->OW, C = q->C;                                            \
    for (int64_t t = 0; t < mt; t++) {                                                             \
      const REAL *src = buf + t * q->K;                                                            \
      for (int64_t kh = 0; kh < q->KH; kh++) {                                                     \
        int64_t ih = oh * q->SH - q->PT + kh * q->DH;                                              \
        if (ih < 0 || ih >= q->H) continue;                                                        \
        for (int64_t kw = 0; kw < q->KW; kw++) {                                                   \
          int64_t iw = ow * q->SW - q->PL + kw * q->DW;                                            \
          if (iw < 0 || iw >= q->W) continue;                                                      \
          REAL *d = dxn + (ih * q->W + iw) * C;                                                    \
          const REAL *sv = src + (kh * q->KW + kw) * C;                                            \
          add_##REAL(d, sv, C);                                                                    \
        }                                                                                          \
      }                                                                                            \
      if (++ow == q->OW) ow = 0, oh++;                                                             \
    }                                                                                              \
  }
SCATTER(float)
SCATTER(double)
#undef SCATTER

/* ---------------------------------------------------------------------------
 * The two float types (conv_gemm_impl.h) */

#define SCATTER_FN_(real) scatter_##real
#define SCATTER_FN(real) SCATTER_FN_(real)

#define REAL float
#define SFX f32
#define SMALL_TYPE 1
#define CBLAS_GEMM cblas_sgemm
#include "conv_gemm_impl.h"
#undef REAL
#undef SFX
#undef SMALL_TYPE
#undef CBLAS_GEMM

#define REAL double
#define SFX f64
#define SMALL_TYPE 0
#define CBLAS_GEMM cblas_dgemm
#include "conv_gemm_impl.h"
#undef REAL
#undef SFX
#undef SMALL_TYPE
#undef CBLAS_GEMM
