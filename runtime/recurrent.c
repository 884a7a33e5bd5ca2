/* The recurrent layers' scans (lstm, gru), forward and backward, in f32 and f64:
 * generated code calls them as it calls sn_par_sgemm, one call per layer and step
 * function, and they loop over the steps, a GEMM per step. The math is in
 * recurrent_impl.h, included once per float type. Compiled with
 * SN_RECURRENT_CBLAS, the file gives the sn_*_cblas_* variants instead, whose GEMM
 * is a plain cblas call: the object `specnet build --lib` puts into an archive
 * beside the model (no thread pool there). */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "specnet/runtime.h"

/* e^x in f32 without a call (glibc's expf and tanhf were most of a step's gate
 * arithmetic): x = n ln 2 + r,
 * |r| <= ln 2 / 2, e^r by Cephes's expf polynomial (about 1 ulp), 2^n from the bits.
 * n comes from rounding by adding 1.5 2^23 (its low bits are then n), so that no
 * float becomes an int; a NaN passes through the clamps (compares are false) and
 * the polynomial. */
static inline float fast_expf(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.0f ? -87.0f : x;
  float t = x * 1.44269504f + 12582912.0f, n = t - 12582912.0f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits - 0x4B400000u + 127u) << 23; /* n + 127 in the exponent field */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
static inline float fast_tanhf(float x) { return 2.0f / (1.0f + fast_expf(-2.0f * x)) - 1.0f; }

#ifdef SN_RECURRENT_CBLAS
static void cblas_s(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc) {
  cblas_sgemm(CblasRowMajor, (CBLAS_TRANSPOSE)ta, (CBLAS_TRANSPOSE)tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}
static void cblas_d(int ta, int tb, int M, int N, int K, const double *A, int lda, const double *B, int ldb,
                    double *C, int ldc) {
  cblas_dgemm(CblasRowMajor, (CBLAS_TRANSPOSE)ta, (CBLAS_TRANSPOSE)tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}
#define SGEMM cblas_s
#define DGEMM cblas_d
#define SFX_F32 cblas_f32
#define SFX_F64 cblas_f64
#else
#define SGEMM sn_par_sgemm
#define DGEMM sn_par_dgemm
#define SFX_F32 f32
#define SFX_F64 f64
#endif

#define REAL float
#define SFX SFX_F32
#define GEMM SGEMM
#define EXP fast_expf
#define TANH fast_tanhf
#include "recurrent_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef EXP
#undef TANH

#define REAL double
#define SFX SFX_F64
#define GEMM DGEMM
#define EXP exp
#define TANH tanh
#include "recurrent_impl.h"
