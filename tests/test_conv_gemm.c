/* The implicit-GEMM convolutions (runtime/conv_gemm.c) against the convolution
 * written out in f64: the forward product, the weight gradient and the input
 * gradient, f32 and f64, for
 * geometries with strides, padding on either side, dilation, a row count that no
 * tile divides, fewer rows than parts and a patch long enough to shorten the tile;
 * at 1, 2 and 3 threads, every result the same bits whatever the threads. ctest runs
 * it with the host's small-GEMM kernels, with SPECNET_CPU=x86-64-v3 (AVX2) and with
 * SPECNET_SMALL_GEMM=0 (OpenBLAS on every tile). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/runtime.h"

#include "check.h"

/* geo as the runtime takes it: n, H, W, C, KH, KW, SH, SW, PT, PL, DH, DW, OH, OW, F */
enum { G_N, G_H, G_W, G_C, G_KH, G_KW, G_SH, G_SW, G_PT, G_PL, G_DH, G_DW, G_OH, G_OW, G_F };

/* the patch value of output row r at column k (order (kh, kw, c)), 0 outside */
static double patch(const int64_t *g, const double *x, int64_t r, int64_t k) {
  int64_t c = k % g[G_C], kw = k / g[G_C] % g[G_KW], kh = k / (g[G_C] * g[G_KW]);
  int64_t ow = r % g[G_OW], oh = r / g[G_OW] % g[G_OH], n = r / (g[G_OW] * g[G_OH]);
  int64_t ih = oh * g[G_SH] - g[G_PT] + kh * g[G_DH], iw = ow * g[G_SW] - g[G_PL] + kw * g[G_DW];
  if (ih < 0 || ih >= g[G_H] || iw < 0 || iw >= g[G_W]) return 0;
  return x[((n * g[G_H] + ih) * g[G_W] + iw) * g[G_C] + c];
}

static double urand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (double)((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

static void run(const int64_t *g, const char *what) {
  int64_t K = g[G_KH] * g[G_KW] * g[G_C], F = g[G_F], M = g[G_N] * g[G_OH] * g[G_OW];
  int64_t nx = g[G_N] * g[G_H] * g[G_W] * g[G_C], parts = 8;
  double *x = malloc(sizeof(double) * (size_t)nx), *w = malloc(sizeof(double) * (size_t)(K * F));
  double *dy = malloc(sizeof(double) * (size_t)(M * F)),
         *y_ref = calloc((size_t)(M * F), sizeof(double));
  double *dw_ref = calloc((size_t)(K * F), sizeof(double));
  float *xf = malloc(sizeof(float) * (size_t)nx), *wf = malloc(sizeof(float) * (size_t)(K * F));
  float *dyf = malloc(sizeof(float) * (size_t)(M * F));
  unsigned s = 7;
  for (int64_t i = 0; i < nx; i++) xf[i] = (float)(x[i] = urand(&s));
  for (int64_t i = 0; i < K * F; i++) wf[i] = (float)(w[i] = urand(&s));
  for (int64_t i = 0; i < M * F; i++) dyf[i] = (float)(dy[i] = urand(&s));
  for (int64_t r = 0; r < M; r++)
    for (int64_t k = 0; k < K; k++) {
      double p = patch(g, x, r, k);
      for (int64_t f = 0; f < F; f++) {
        y_ref[r * F + f] += p * w[k * F + f];
        dw_ref[k * F + f] += p * dy[r * F + f];
      }
    }
  /* the input gradient: dx = col2im(dy w^T), from wt [F, K] */
  int64_t C = g[G_C];
  double *dx_ref = calloc((size_t)nx, sizeof(double)),
         *wt = malloc(sizeof(double) * (size_t)(K * F));
  float *wtf = malloc(sizeof(float) * (size_t)(K * F));
  for (int64_t k = 0; k < K; k++)
    for (int64_t f = 0; f < F; f++) wtf[f * K + k] = (float)(wt[f * K + k] = w[k * F + f]);
  for (int64_t r = 0; r < M; r++)
    for (int64_t k = 0; k < K; k++) {
      int64_t c = k % C, kw = k / C % g[G_KW], kh = k / (C * g[G_KW]);
      int64_t ow = r % g[G_OW], oh = r / g[G_OW] % g[G_OH], n = r / (g[G_OW] * g[G_OH]);
      int64_t ih = oh * g[G_SH] - g[G_PT] + kh * g[G_DH],
              iw = ow * g[G_SW] - g[G_PL] + kw * g[G_DW];
      if (ih < 0 || ih >= g[G_H] || iw < 0 || iw >= g[G_W]) continue;
      double sum = 0;
      for (int64_t f = 0; f < F; f++) sum += dy[r * F + f] * w[k * F + f];
      dx_ref[((n * g[G_H] + ih) * g[G_W] + iw) * C + c] += sum;
    }
  float *dx1 = NULL;
  double *dxd1 = NULL;
  float *y1 = NULL, *dw1 = NULL;
  double *yd1 = NULL, *dwd1 = NULL;
  for (int t = 1; t <= 3; t++) {
    sn_set_threads(t);
    float *y = malloc(sizeof(float) * (size_t)(M * F)),
          *dw = malloc(sizeof(float) * (size_t)(K * F));
    float *scratch = malloc(sizeof(float) * (size_t)(2 * parts * K * F));
    double *yd = malloc(sizeof(double) * (size_t)(M * F)),
           *dwd = malloc(sizeof(double) * (size_t)(K * F));
    double *scratchd = malloc(sizeof(double) * (size_t)(2 * parts * K * F));
    sn_conv_gemm_f32(g, xf, wf, y);
    sn_conv_gemm_wgrad_f32(g, dyf, xf, parts, scratch, dw);
    sn_conv_gemm_f64(g, x, w, yd);
    sn_conv_gemm_wgrad_f64(g, dy, x, parts, scratchd, dwd);
    int bad = 0, badd = 0;
    for (int64_t i = 0; i < M * F; i++) {
      bad += fabs(y[i] - y_ref[i]) > 1e-4 * (1 + fabs(y_ref[i]));
      badd += fabs(yd[i] - y_ref[i]) > 1e-12 * (1 + fabs(y_ref[i]));
    }
    CHECK(!bad && !badd, "%s, %d threads: forward differs at %d (f32), %d (f64) of %lld", what, t,
          bad, badd, (long long)(M * F));
    bad = badd = 0;
    for (int64_t i = 0; i < K * F; i++) {
      bad += fabs(dw[i] - dw_ref[i]) > 1e-4 * (1 + fabs(dw_ref[i]));
      badd += fabs(dwd[i] - dw_ref[i]) > 1e-11 * (1 + fabs(dw_ref[i]));
    }
    CHECK(!bad && !badd, "%s, %d threads: weight gradient differs at %d (f32), %d (f64) of %lld",
          what, t, bad, badd, (long long)(K * F));
    float *dx = malloc(sizeof(float) * (size_t)nx);
    double *dxd = malloc(sizeof(double) * (size_t)nx);
    {
      sn_conv_gemm_dgrad_f32(g, dyf, wtf, dx);
      sn_conv_gemm_dgrad_f64(g, dy, wt, dxd);
      bad = badd = 0;
      for (int64_t i = 0; i < nx; i++) {
        bad += fabs(dx[i] - dx_ref[i]) > 1e-4 * (1 + fabs(dx_ref[i]));
        badd += fabs(dxd[i] - dx_ref[i]) > 1e-11 * (1 + fabs(dx_ref[i]));
      }
      CHECK(!bad && !badd, "%s, %d threads: input gradient differs at %d (f32), %d (f64) of %lld",
            what, t, bad, badd, (long long)nx);
    }
    if (t == 1) {
      y1 = y, dw1 = dw, yd1 = yd, dwd1 = dwd, dx1 = dx, dxd1 = dxd;
    } else {
      CHECK(!memcmp(dx, dx1, sizeof(float) * (size_t)nx) &&
                !memcmp(dxd, dxd1, sizeof(double) * (size_t)nx),
            "%s: the input gradient at %d threads is not the same bits as at 1", what, t);
      free(dx), free(dxd);
      CHECK(!memcmp(y, y1, sizeof(float) * (size_t)(M * F)) &&
                !memcmp(yd, yd1, sizeof(double) * (size_t)(M * F)),
            "%s: the forward at %d threads is not the same bits as at 1", what, t);
      CHECK(!memcmp(dw, dw1, sizeof(float) * (size_t)(K * F)) &&
                !memcmp(dwd, dwd1, sizeof(double) * (size_t)(K * F)),
            "%s: the weight gradient at %d threads is not the same bits as at 1", what, t);
      free(y), free(dw), free(yd), free(dwd);
    }
    free(scratch), free(scratchd);
  }
  printf("ok: %s (M %lld, K %lld, F %lld), forward, weight and input gradients, f32 and f64, 1-3 "
         "threads, same "
         "bits (%s kernels)\n",
         what, (long long)M, (long long)K, (long long)F, sn_small_gemm_variant());
  free(y1), free(dw1), free(yd1), free(dwd1), free(dx1), free(dxd1), free(dx_ref), free(wt),
      free(wtf);
  free(x), free(w), free(dy), free(y_ref), free(dw_ref), free(xf), free(wf), free(dyf);
}

int main(void) {
  /* fashion_cnn's conv2: 3x3 same over [14, 14, 16], 32 filters */
  run((const int64_t[]){5, 14, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 14, 14, 32},
      "3x3 same, 16 -> 32 channels");
  /* strides (2, 3), padding 1 on top and 2 on the left, 17 filters (no vector multiple) */
  run((const int64_t[]){3, 9, 11, 5, 4, 5, 2, 3, 1, 2, 1, 1, 4, 4, 17},
      "4x5 strides (2, 3), padded");
  /* dilation (2, 1), valid */
  run((const int64_t[]){2, 8, 7, 6, 3, 2, 1, 1, 0, 0, 2, 1, 4, 6, 9}, "3x2 dilated (2, 1), valid");
  /* stride 1, padding only on the bottom and right (same with an even kernel) */
  run((const int64_t[]){3, 6, 7, 9, 2, 4, 1, 1, 0, 1, 1, 1, 6, 7, 11},
      "2x4 same, padded bottom and right");
  /* dilation (1, 2), same: 3 x 3 taps over 9 x 10, padding 1 and 2 */
  run((const int64_t[]){2, 9, 10, 5, 3, 3, 1, 1, 1, 2, 1, 2, 9, 10, 7}, "3x3 dilated (1, 2), same");
  /* fewer rows (3) than parts (8) */
  run((const int64_t[]){3, 3, 3, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, 5}, "3 rows, 8 parts");
  /* a patch of 900: shorter tiles (18 rows f32, 9 f64) */
  run((const int64_t[]){2, 6, 6, 100, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6, 20}, "a patch of 900");
  return failures != 0;
}
