/* gemm_small: the pool's f32 GEMM (runtime/pool.c) at the products a training step
 * really runs, through the small-batch kernels (runtime/gemm_small.c) and through
 * OpenBLAS, at 1 and 2 threads: the measurements behind use_small's rule in pool.c.
 *
 *   cmake --build build    # for build/runtime/libspecnet_rt.a
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iruntime -Iruntime/include \
 *      -o bench/out/gemm_small bench/gemm_small.c build/runtime/libspecnet_rt.a \
 *      -lopenblas -lpthread -lm
 *   bench/out/gemm_small [--quick]                            # the best variant
 *   SPECNET_GEMM_KERNELS=avx2 bench/out/gemm_small [--quick]  # the AVX2 one
 *
 * The shapes (logged from par_gemm during `specnet train`): the seed MLP
 * (specs/mnist_mlp.yaml, 784-128-128-10) at batch 32 and 256, and fashion_cnn
 * (specs/fashion_cnn.yaml, im2col convolutions in NHWC) at batch 64. Both paths go
 * through sn_par_sgemm_path, so each is cut across the threads as a training step
 * cuts it. Rounds of the two paths alternate, so a neighbour's load on a shared
 * machine falls on both alike; each figure is the median of 7 rounds of >= 20 ms
 * (5 ms with --quick). Per shape and thread count: microseconds per call of each
 * path, small / OpenBLAS, and which path the rule takes ('<' the rule picked the
 * faster one, '!' the slower by more than 10 %). Then, per model and thread count,
 * the sum over a step of each path, of the rule's choices, and of the faster one.
 * No assertions: a measurement, not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "small_gemm.h"
#include "specnet/runtime.h"

#include "bench_util.h"

typedef struct {
  const char *model; /* which step it belongs to */
  const char *name;  /* what it is in that step */
  int ta, tb;        /* op(A) = A^T when ta, op(B) = B^T when tb */
  int m, n, k;       /* C is m x n, k inner */
} gemm_shape;

enum { ROUNDS = 7, MAX_SHAPES = 48, N_THREADS = 2 };

/* the 8 products of one step of the seed MLP at batch b */
static int mlp_shapes(gemm_shape *s, const char *model, int b) {
  gemm_shape g[] = {
      {model, "dense1 forward", 0, 1, b, 128, 784}, {model, "dense2 forward", 0, 1, b, 128, 128},
      {model, "dense3 forward", 0, 1, b, 10, 128},  {model, "dense3 in grad", 0, 0, b, 128, 10},
      {model, "dense2 in grad", 0, 0, b, 128, 128}, {model, "dense3 w grad", 1, 0, 10, 128, b},
      {model, "dense2 w grad", 1, 0, 128, 128, b},  {model, "dense1 w grad", 1, 0, 128, 784, b},
  };
  memcpy(s, g, sizeof g);
  return (int)(sizeof g / sizeof *g);
}

/* the 11 products of one step of fashion_cnn at batch 64 (b = 64): the convolutions
 * as im2col GEMMs over b 28x28 (conv2d1, 3x3x1 -> 16) and b 14x14 (conv2d2, 3x3x16 ->
 * 32) pixels, then the dense head 1568-64-10 */
static int cnn_shapes(gemm_shape *s, const char *model, int b) {
  gemm_shape g[] = {
      {model, "conv1 forward", 0, 1, b * 784, 16, 9},
      {model, "conv2 forward", 0, 1, b * 196, 32, 144},
      {model, "dense1 forward", 0, 1, b, 64, 1568},
      {model, "dense2 forward", 0, 1, b, 10, 64},
      {model, "dense2 in grad", 0, 0, b, 64, 10},
      {model, "dense2 w grad", 1, 0, 10, 64, b},
      {model, "dense1 in grad", 0, 0, b, 1568, 64},
      {model, "dense1 w grad", 1, 0, 64, 1568, b},
      {model, "conv2 in grad", 0, 0, b * 196, 144, 32},
      {model, "conv2 w grad", 1, 0, 32, 144, b * 196},
      {model, "conv1 w grad", 1, 0, 16, 9, b * 784},
  };
  memcpy(s, g, sizeof g);
  return (int)(sizeof g / sizeof *g);
}

/* beyond the models, where the rule draws its lines: an A of 0.8 to 7 MiB for the dot
 * products, large products of every kind, K below a vector */
static int probe_shapes(gemm_shape *s, const char *model) {
  gemm_shape g[] = {
      {model, "NT A 1.6 MiB", 0, 1, 512, 128, 784},  {model, "NT A 3.1 MiB", 0, 1, 1024, 128, 784},
      {model, "NT A 2 MiB", 0, 1, 2048, 256, 256},   {model, "NT K 9", 0, 1, 64, 128, 9},
      {model, "NT K 32", 0, 1, 64, 128, 32},         {model, "NT K 64", 0, 1, 64, 128, 64},
      {model, "NT conv-like", 0, 1, 256, 32, 144},   {model, "NT conv-like", 0, 1, 1024, 32, 144},
      {model, "NT conv-like", 0, 1, 4096, 32, 144},  {model, "NT conv-like", 0, 1, 12544, 128, 144},
      {model, "NT conv-like", 0, 1, 12544, 32, 784}, {model, "NT big", 0, 1, 1024, 1024, 1024},
      {model, "NN big", 0, 0, 1024, 1024, 1024},     {model, "TN big", 1, 0, 1024, 1024, 1024},
      {model, "NN tall", 0, 0, 2048, 256, 256},      {model, "TN deep", 1, 0, 256, 256, 2048},
  };
  memcpy(s, g, sizeof g);
  return (int)(sizeof g / sizeof *g);
}

static void call(sn_gemm_path path, const gemm_shape *g, const float *a, const float *b, float *c) {
  int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  sn_par_sgemm_path(path, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    g->m, g->n, g->k, a, lda, b, ldb, c, g->n);
}

/* calls of `path` that fill a round of min_round seconds (after a warm-up) */
static long calls_per_round(sn_gemm_path path, const gemm_shape *g, const float *a, const float *b,
                            float *c, double min_round) {
  for (int i = 0; i < 3; i++) call(path, g, a, b, c);
  long calls = 1;
  for (;;) {
    double t0 = bench_now();
    for (long i = 0; i < calls; i++) call(path, g, a, b, c);
    double t = bench_now() - t0;
    if (t >= min_round) return calls;
    calls = t <= 0 ? calls * 16 : (long)((double)calls * 1.3 * min_round / t) + 1;
  }
}

/* sec[0]: the small kernels, sec[1]: OpenBLAS; medians of ROUNDS alternating rounds */
static void measure(const gemm_shape *g, const float *a, const float *b, float *c, double min_round,
                    double sec[2]) {
  const sn_gemm_path path[2] = {SN_GEMM_SMALL, SN_GEMM_BLAS};
  long calls[2];
  double t[2][ROUNDS];
  for (int q = 0; q < 2; q++) calls[q] = calls_per_round(path[q], g, a, b, c, min_round);
  for (int r = 0; r < ROUNDS; r++)
    for (int q = 0; q < 2; q++) {
      double t0 = bench_now();
      for (long i = 0; i < calls[q]; i++) call(path[q], g, a, b, c);
      t[q][r] = (bench_now() - t0) / (double)calls[q];
    }
  for (int q = 0; q < 2; q++) {
    qsort(t[q], ROUNDS, sizeof t[q][0], bench_cmp_double);
    sec[q] = t[q][ROUNDS / 2];
  }
}

static float *filled(size_t n, int mod) {
  float *p = malloc(n * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = (float)(i % (size_t)mod) / (float)mod - 0.5f;
  return p;
}

int main(int argc, char **argv) {
  double min_round = argc > 1 && !strcmp(argv[1], "--quick") ? 0.005 : 0.02;
  if (!sn_small_gemm_available()) {
    printf("no small-batch kernel variant runs here (CPU, SPECNET_CPU or SPECNET_SMALL_GEMM=0): "
           "nothing to compare\n");
    return 0;
  }
  gemm_shape shapes[MAX_SHAPES];
  int ns = 0;
  ns += mlp_shapes(shapes + ns, "mlp32", 32);
  ns += mlp_shapes(shapes + ns, "mlp256", 256);
  ns += cnn_shapes(shapes + ns, "cnn64", 64);
  ns += probe_shapes(shapes + ns, "probe");

  printf("small-batch kernels: %s; us per call, small / OpenBLAS, the rule's path\n",
         sn_small_gemm_variant());
  printf("%-7s %-15s %-3s %-15s", "model", "product", "op", "M x N x K");
  for (int t = 1; t <= N_THREADS; t++)
    printf(" | %d thr: %9s %9s %6s %4s", t, "small", "blas", "ratio", "rule");
  printf("\n");
  /* per model and thread count: small, blas, the rule's, the faster's */
  double sum[MAX_SHAPES][N_THREADS][4] = {{{0}}};
  int model_of[MAX_SHAPES], nm = 0;
  const char *models[MAX_SHAPES];
  for (int s = 0; s < ns; s++) {
    const gemm_shape *g = &shapes[s];
    if (!nm || strcmp(models[nm - 1], g->model)) models[nm++] = g->model;
    model_of[s] = nm - 1;
    float *a = filled((size_t)g->m * g->k, 17), *b = filled((size_t)g->k * g->n, 13);
    float *c = malloc((size_t)g->m * g->n * sizeof *c);
    char dims[40];
    snprintf(dims, sizeof dims, "%dx%dx%d", g->m, g->n, g->k);
    printf("%-7s %-15s %c%c  %-15s", g->model, g->name, g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', dims);
    bool rule_small = sn_gemm_small_chosen(g->ta ? CblasTrans : CblasNoTrans,
                                           g->tb ? CblasTrans : CblasNoTrans, g->m, g->n, g->k);
    for (int t = 1; t <= N_THREADS; t++) {
      sn_set_threads(t);
      double sec[2];
      measure(g, a, b, c, min_round, sec);
      double rule = sec[rule_small ? 0 : 1], best = sec[0] < sec[1] ? sec[0] : sec[1];
      double *m = sum[model_of[s]][t - 1];
      m[0] += sec[0], m[1] += sec[1], m[2] += rule, m[3] += best;
      printf(" |        %9.1f %9.1f %6.2f %-5s%c", 1e6 * sec[0], 1e6 * sec[1], sec[0] / sec[1],
             rule_small ? "small" : "blas", rule > 1.1 * best ? '!' : '<');
    }
    printf("\n");
    free(a), free(b), free(c);
  }
  printf("\nsum over a step, us:      small     blas     rule   faster\n");
  for (int m = 0; m < nm; m++)
    for (int t = 0; t < N_THREADS; t++)
      printf("%-7s %d thr          %9.1f %8.1f %8.1f %8.1f\n", models[m], t + 1, 1e6 * sum[m][t][0],
             1e6 * sum[m][t][1], 1e6 * sum[m][t][2], 1e6 * sum[m][t][3]);
  return 0;
}
