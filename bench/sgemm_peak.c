/* sgemm_peak: what OpenBLAS's cblas_sgemm achieves on this machine, measured, at the
 * shapes the benchmarked models use and at a large square shape (the machine's
 * practical f32 peak), with 1 and 2 threads. bench/run.sh builds and runs it:
 *
 *   cc -O2 -o bench/out/sgemm_peak bench/sgemm_peak.c -lopenblas
 *   bench/out/sgemm_peak [--quick] [--threads 1,2] [--square 2048]
 *
 * Prints one JSON object on stdout:
 *   openblas: openblas_get_config(), openblas_get_corename(), openblas_get_num_procs()
 *   gemms: one entry per (set, shape, threads): the shape (row-major, C = op(A) op(B),
 *          M x N result, K inner), seconds per call (the median of 5 timed rounds, each
 *          round long enough to time: >= 50 ms, >= 10 ms with --quick), GFLOP/s = 2MNK/s
 *   steps: per (set, threads), the sum over the set's GEMMs: seconds and FLOPs of one
 *          training step's matrix products, that is the floor "OpenBLAS alone" would give
 *          a step of the model if nothing but its GEMMs ran.
 *
 * The sets mirror the GEMMs specnet's plan issues per training step (specnet emit SPEC
 * --what plan), with specnet's transposes:
 *   mlp_bB (B = 32, 128, 256): the seed MLP 784-128-128-10: 3 forward, 3 weight
 *          gradients, 2 input gradients (the first layer's input gradient is never built)
 *   cnn_b64: specs/fashion_cnn.yaml at batch 64, convolutions as im2col GEMMs:
 *          conv1 (B*784 x 16, K 9), conv2 (B*196 x 32, K 144), dense 1568-64, 64-10;
 *          4 forward, 4 weight gradients, 3 input gradients
 *   square: M = N = K = 2048 (--square), the peak reference.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

typedef struct {
    const char *set;  /* which model step it belongs to */
    const char *name; /* what it is in that step */
    int ta, tb;       /* op(A) = A^T when ta, op(B) = B^T when tb */
    long m, n, k;
} gemm_shape;

/* Seconds per call of one shape: warm up, find a call count that fills min_round
 * seconds, then the median of 5 rounds. */
static double time_gemm(const gemm_shape *g, float *a, float *b, float *c, double min_round) {
    const long m = g->m, n = g->n, k = g->k;
    /* row-major: op(A) is m x k, op(B) is k x n; leading dimensions of the stored A, B */
    const int lda = g->ta ? (int)m : (int)k;
    const int ldb = g->tb ? (int)k : (int)n;
    const enum CBLAS_TRANSPOSE ta = g->ta ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = g->tb ? CblasTrans : CblasNoTrans;
#define CALL() cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0f, a, lda, b, ldb, \
                           0.0f, c, (int)n)
    for (int i = 0; i < 3; i++) CALL();
    long calls = 1;
    for (;;) {
        double t0 = bench_now();
        for (long i = 0; i < calls; i++) CALL();
        double t = bench_now() - t0;
        if (t >= min_round || calls > (1L << 30)) break;
        calls = t <= 0 ? calls * 16 : (long)(calls * (1.3 * min_round / t)) + 1;
    }
    double rounds[5];
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        for (long i = 0; i < calls; i++) CALL();
        rounds[r] = (bench_now() - t0) / (double)calls;
    }
#undef CALL
    qsort(rounds, 5, sizeof rounds[0], bench_cmp_double);
    return rounds[2];
}

static void json_string(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    double min_round = 0.05;
    long sq = 2048;
    int threads[8] = {1, 2}, nthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            min_round = 0.01;
        } else if (!strcmp(argv[i], "--square") && i + 1 < argc) {
            sq = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *p = strtok(argv[++i], ", "); p && nthreads < 8; p = strtok(NULL, ", "))
                threads[nthreads++] = atoi(p);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads 1,2] [--square N]\n", argv[0]);
            return 2;
        }
    }
    if (sq < 64 || sq > 8192) sq = 2048;

    /* every GEMM of one training step, as specnet plans it (see the header comment) */
    static const char *const mlp_sets[] = {"mlp_b32", "mlp_b128", "mlp_b256"};
    static const long mlp_batch[] = {32, 128, 256};
    gemm_shape shapes[64];
    int ns = 0;
    for (int s = 0; s < 3; s++) {
        const char *set = mlp_sets[s];
        const long b = mlp_batch[s];
        shapes[ns++] = (gemm_shape){set, "dense1 forward", 0, 1, b, 128, 784};
        shapes[ns++] = (gemm_shape){set, "dense2 forward", 0, 1, b, 128, 128};
        shapes[ns++] = (gemm_shape){set, "dense3 forward", 0, 1, b, 10, 128};
        shapes[ns++] = (gemm_shape){set, "dense3 input grad", 0, 0, b, 128, 10};
        shapes[ns++] = (gemm_shape){set, "dense3 weight grad", 1, 0, 10, 128, b};
        shapes[ns++] = (gemm_shape){set, "dense2 input grad", 0, 0, b, 128, 128};
        shapes[ns++] = (gemm_shape){set, "dense2 weight grad", 1, 0, 128, 128, b};
        shapes[ns++] = (gemm_shape){set, "dense1 weight grad", 1, 0, 128, 784, b};
    }
    {
        const char *set = "cnn_b64";
        const long b = 64;
        shapes[ns++] = (gemm_shape){set, "conv1 forward (im2col)", 0, 1, b * 784, 16, 9};
        shapes[ns++] = (gemm_shape){set, "conv2 forward (im2col)", 0, 1, b * 196, 32, 144};
        shapes[ns++] = (gemm_shape){set, "dense1 forward", 0, 1, b, 64, 1568};
        shapes[ns++] = (gemm_shape){set, "dense2 forward", 0, 1, b, 10, 64};
        shapes[ns++] = (gemm_shape){set, "dense2 input grad", 0, 0, b, 64, 10};
        shapes[ns++] = (gemm_shape){set, "dense2 weight grad", 1, 0, 10, 64, b};
        shapes[ns++] = (gemm_shape){set, "dense1 input grad", 0, 0, b, 1568, 64};
        shapes[ns++] = (gemm_shape){set, "dense1 weight grad", 1, 0, 64, 1568, b};
        shapes[ns++] = (gemm_shape){set, "conv2 input grad (col)", 0, 0, b * 196, 144, 32};
        shapes[ns++] = (gemm_shape){set, "conv2 weight grad", 1, 0, 32, 144, b * 196};
        shapes[ns++] = (gemm_shape){set, "conv1 weight grad", 1, 0, 16, 9, b * 784};
    }
    shapes[ns++] = (gemm_shape){"square", "square", 0, 0, sq, sq, sq};

    size_t max_elems = 0;
    for (int i = 0; i < ns; i++) {
        size_t ea = (size_t)(shapes[i].m * shapes[i].k), eb = (size_t)(shapes[i].k * shapes[i].n),
               ec = (size_t)(shapes[i].m * shapes[i].n);
        if (ea > max_elems) max_elems = ea;
        if (eb > max_elems) max_elems = eb;
        if (ec > max_elems) max_elems = ec;
    }
    float *a = malloc(max_elems * sizeof *a), *b = malloc(max_elems * sizeof *b),
          *c = malloc(max_elems * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_peak: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < max_elems; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f - 0.06f;
        b[i] = (float)((i * 5) % 11) * 0.01f - 0.05f;
        c[i] = 0.0f;
    }

    printf("{\"openblas\": {\"config\": ");
    json_string(openblas_get_config());
    printf(", \"corename\": ");
    json_string(openblas_get_corename());
    printf(", \"num_procs\": %d, \"default_threads\": %d},\n", openblas_get_num_procs(),
           openblas_get_num_threads());
    printf(" \"min_round_seconds\": %g,\n \"gemms\": [", min_round);

    double step_sec[8][8] = {{0}}, step_flop[8] = {0};
    const char *step_set[8];
    int nsets = 0;
    int first = 1;
    for (int ti = 0; ti < nthreads; ti++) {
        openblas_set_num_threads(threads[ti]);
        for (int i = 0; i < ns; i++) {
            const gemm_shape *g = &shapes[i];
            double sec = time_gemm(g, a, b, c, min_round);
            double flop = 2.0 * (double)g->m * (double)g->n * (double)g->k;
            printf("%s\n  {\"set\": \"%s\", \"name\": \"%s\", \"threads\": %d, \"trans_a\": %d, "
                   "\"trans_b\": %d, \"m\": %ld, \"n\": %ld, \"k\": %ld, \"flop\": %.0f, "
                   "\"seconds\": %.9g, \"gflops\": %.3f}",
                   first ? "" : ",", g->set, g->name, threads[ti], g->ta, g->tb, g->m, g->n,
                   g->k, flop, sec, flop / sec * 1e-9);
            first = 0;
            fflush(stdout);
            int s = 0;
            while (s < nsets && strcmp(step_set[s], g->set)) s++;
            if (s == nsets && nsets < 8) step_set[nsets++] = g->set;
            if (s < 8) {
                step_sec[s][ti] += sec;
                if (ti == 0) step_flop[s] += flop;
            }
        }
    }
    printf("\n ],\n \"steps\": [");
    first = 1;
    for (int s = 0; s < nsets; s++)
        for (int ti = 0; ti < nthreads; ti++) {
            printf("%s\n  {\"set\": \"%s\", \"threads\": %d, \"flop\": %.0f, \"seconds\": %.9g, "
                   "\"gflops\": %.3f}",
                   first ? "" : ",", step_set[s], threads[ti], step_flop[s], step_sec[s][ti],
                   step_flop[s] / step_sec[s][ti] * 1e-9);
            first = 0;
        }
    printf("\n ]}\n");
    free(a);
    free(b);
    free(c);
    return 0;
}
