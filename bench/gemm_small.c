/* gemm_small: specnet's small-batch GEMM kernels (runtime/gemm_small.c), every
 * variant this CPU runs, side by side with OpenBLAS, on one thread, at the GEMMs of
 * one training step of the seed MLP 784-128-128-10 (specnet emit specs/mnist_mlp.yaml
 * --what plan) at batch 32 and 64 (the kernels serve batch sides up to 64):
 *
 *   cc -O2 -Iruntime -Iruntime/include -o bench/out/gemm_small bench/gemm_small.c \
 *      runtime/gemm_small.c -lopenblas
 *   bench/out/gemm_small [--quick]
 *
 * The rounds of the variants alternate (A B C A B C ...), so a neighbour's load on a
 * shared machine falls on all of them alike; each figure is the median of 7 rounds of
 * >= 20 ms (5 ms with --quick). Prints one line per shape: microseconds per call and
 * GFLOP/s (2MNK / s) for each variant and for cblas_sgemm, then the sum over a step.
 * No assertions: a measurement, not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "small_gemm.h"

#include "bench_util.h"

typedef struct {
  const char *name; /* what it is in a training step */
  int ta, tb;       /* op(A) = A^T when ta, op(B) = B^T when tb */
  int m, n, k;      /* C is m x n, k inner */
} gemm_shape;

enum { MAX_KINDS = 4, ROUNDS = 7 };

/* kind < n_variants: that variant; kind == n_variants: OpenBLAS */
static void call(int kind, const gemm_shape *g, const float *a, const float *b, float *c) {
  int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  const sn_small_gemm_kernels *v = sn_small_gemm_variant_at(kind);
  if (v && v->supported())
    v->gemm(g->ta, g->tb, g->m, 0, g->n, g->k, a, lda, b, ldb, c, g->n);
  else
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->m, g->n,
                g->k, 1.0f, a, lda, b, ldb, 0.0f, c, g->n);
}

int main(int argc, char **argv) {
  double min_round = argc > 1 && !strcmp(argv[1], "--quick") ? 0.005 : 0.02;
  int kinds[MAX_KINDS], nk = 0;
  const char *names[MAX_KINDS];
  for (int i = 0; sn_small_gemm_variant_at(i) && nk < MAX_KINDS - 1; i++) {
    if (!sn_small_gemm_variant_at(i)->supported()) {
      printf("# %s: not supported by this CPU, not measured\n", sn_small_gemm_variant_at(i)->name);
      continue;
    }
    names[nk] = sn_small_gemm_variant_at(i)->name, kinds[nk++] = i;
  }
  names[nk] = "openblas", kinds[nk++] = 1000;
  openblas_set_num_threads(1);

  gemm_shape shapes[32];
  int ns = 0;
  for (int b = 32; b <= 64; b *= 2) {
    shapes[ns++] = (gemm_shape){"dense1 forward   NT", 0, 1, b, 128, 784};
    shapes[ns++] = (gemm_shape){"dense2 forward   NT", 0, 1, b, 128, 128};
    shapes[ns++] = (gemm_shape){"dense3 forward   NT", 0, 1, b, 10, 128};
    shapes[ns++] = (gemm_shape){"dense3 in grad   NN", 0, 0, b, 128, 10};
    shapes[ns++] = (gemm_shape){"dense2 in grad   NN", 0, 0, b, 128, 128};
    shapes[ns++] = (gemm_shape){"dense3 w grad    TN", 1, 0, 10, 128, b};
    shapes[ns++] = (gemm_shape){"dense2 w grad    TN", 1, 0, 128, 128, b};
    shapes[ns++] = (gemm_shape){"dense1 w grad    TN", 1, 0, 128, 784, b};
  }
  float *a = malloc(784 * 128 * sizeof *a), *b = malloc(784 * 128 * sizeof *b), *c = malloc(784 * 128 * sizeof *c);
  for (int i = 0; i < 784 * 128; i++) a[i] = (float)(i % 17) / 17 - 0.5f, b[i] = (float)(i % 13) / 13 - 0.5f;

  printf("%-20s %-14s", "shape", "M x N x K");
  for (int q = 0; q < nk; q++) printf(" %17s", names[q]);
  printf("   (us per call, GFLOP/s; 1 thread)\n");
  double step[2][MAX_KINDS] = {{0}};
  for (int s = 0; s < ns; s++) {
    const gemm_shape *g = &shapes[s];
    long calls[MAX_KINDS];
    for (int q = 0; q < nk; q++) { /* warm up, then enough calls to fill a round */
      for (int i = 0; i < 3; i++) call(kinds[q], g, a, b, c);
      calls[q] = 1;
      for (;;) {
        double t0 = bench_now();
        for (long i = 0; i < calls[q]; i++) call(kinds[q], g, a, b, c);
        double t = bench_now() - t0;
        if (t >= min_round) break;
        calls[q] = t <= 0 ? calls[q] * 16 : (long)((double)calls[q] * 1.3 * min_round / t) + 1;
      }
    }
    double t[MAX_KINDS][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
      for (int q = 0; q < nk; q++) {
        double t0 = bench_now();
        for (long i = 0; i < calls[q]; i++) call(kinds[q], g, a, b, c);
        t[q][r] = (bench_now() - t0) / (double)calls[q];
      }
    char dims[32];
    snprintf(dims, sizeof dims, "%dx%dx%d", g->m, g->n, g->k);
    printf("%-20s %-14s", g->name, dims);
    for (int q = 0; q < nk; q++) {
      qsort(t[q], ROUNDS, sizeof t[q][0], bench_cmp_double);
      double sec = t[q][ROUNDS / 2];
      step[s >= ns / 2][q] += sec;
      printf(" %8.2f %6.1f GF", 1e6 * sec, 2.0 * g->m * g->n * g->k / sec * 1e-9);
    }
    printf("\n");
  }
  for (int h = 0; h < 2; h++) {
    printf("%-20s %-14s", h ? "step, batch 64" : "step, batch 32", "");
    for (int q = 0; q < nk; q++) printf(" %8.2f %9s", 1e6 * step[h][q], "");
    printf("\n");
  }
  free(a), free(b), free(c);
  return 0;
}
