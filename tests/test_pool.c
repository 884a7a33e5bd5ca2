/* The thread pool (runtime/pool.c): every index of a sn_par_for range is visited
 * exactly once, in parts aligned to the grain, for 1 to 4 threads; parts really
 * run at the same time; sn_par_update covers every parameter once, cutting the
 * row-split weights on whole parts of their rows; nested jobs and jobs after fork()
 * complete; and
 * sn_par_sgemm / sn_par_dgemm, cut into blocks, equal one whole cblas call for
 * every transposition and for shapes that do not divide evenly; the small-batch
 * kernels' path, cut by rows or by columns, gives the same bits at every thread count,
 * and sn_par_sgemm takes the path sn_gemm_small_chosen names. */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "small_gemm.h"
#include "specnet/runtime.h"

#include "check.h"

/* under valgrind (SPECNET_VALGRIND=1, tests/CMakeLists.txt): threads run one at a
 * time there, so no rendezvous, and smaller sizes */
static bool valgrind;

typedef struct cover {
  _Atomic int *hits;
  int64_t count, grain;
  _Atomic int misaligned, nested;
  bool nest;
} cover;

static void mark(void *ctx, int64_t lo, int64_t hi) {
  cover *c = ctx;
  if (lo % c->grain || (hi % c->grain && hi != c->count) || lo >= hi || hi > c->count) atomic_fetch_add(&c->misaligned, 1);
  if (c->nest) { /* a job inside a job runs serially on this thread */
    cover inner = {.hits = c->hits + lo, .count = hi - lo, .grain = 1};
    sn_par_for(mark, &inner, hi - lo, 1);
    atomic_fetch_add(&c->nested, 1);
    return;
  }
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void test_cover(void) {
  const int64_t counts[] = {1, 2, 5, 255, 256, 257, 1000, 100003};
  const int64_t grains[] = {1, 16, 256};
  size_t n_counts = sizeof counts / sizeof *counts - (valgrind ? 1 : 0);
  for (int t = 1; t <= 4; t++) {
    sn_set_threads(t);
    CHECK(sn_threads() == t, "sn_threads() = %d after sn_set_threads(%d)", sn_threads(), t);
    for (size_t ci = 0; ci < n_counts; ci++)
      for (size_t gi = 0; gi < sizeof grains / sizeof *grains; gi++)
        for (int nest = 0; nest < 2; nest++) {
          int64_t n = counts[ci];
          cover c = {.hits = calloc((size_t)n, sizeof(_Atomic int)), .count = n, .grain = grains[gi], .nest = nest};
          for (int rep = 0; rep < 3; rep++) sn_par_for(mark, &c, n, c.grain);
          int bad = 0;
          for (int64_t i = 0; i < n; i++) bad += c.hits[i] != 3;
          CHECK(!bad, "threads %d count %lld grain %lld nested %d: %d indices not visited exactly once per job", t,
                (long long)n, (long long)c.grain, nest, bad);
          CHECK(!c.misaligned, "threads %d count %lld grain %lld: %d parts off the grain", t, (long long)n,
                (long long)c.grain, (int)c.misaligned);
          free((void *)c.hits);
        }
  }
}

/* sn_par_update: for 1 to 4 threads and tables of row-split weights (rows not a
 * multiple of the grain, a weight at either end, few and many other parameters),
 * every parameter is updated exactly once per call; from 2 threads on, a range
 * never crosses a split weight's edge, and inside one starts and ends on a whole
 * part of its rows: a multiple of SN_PAR_ROW_GRAIN rows, as the products cut them. */
typedef struct upd {
  _Atomic int *hits;
  const int64_t *split;
  int nsplit;
  _Atomic int bad_range;
} upd;

static void mark_update(void *ctx, int64_t lo, int64_t hi) {
  upd *u = ctx;
  for (int i = 0; i < u->nsplit; i++) {
    int64_t off = u->split[3 * i], rows = u->split[3 * i + 1], cols = u->split[3 * i + 2], end = off + rows * cols;
    if (hi <= off || lo >= end) continue;
    bool inside = lo >= off && hi <= end;
    bool whole = (lo - off) % (SN_PAR_ROW_GRAIN * cols) == 0 && ((hi - off) % (SN_PAR_ROW_GRAIN * cols) == 0 || hi == end);
    if (!inside || !whole) atomic_fetch_add(&u->bad_range, 1);
  }
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&u->hits[i], 1);
}

static void test_update(void) {
  static const int64_t t1[] = {0, 128, 784};                    /* the seed MLP's dense1 */
  static const int64_t t2[] = {10, 37, 5, 200, 100, 3};         /* ragged rows, gaps between */
  static const int64_t t3[] = {1000, 64, 100, 300000 - 640, 64, 10}; /* many others, one at the end */
  static const int64_t t4[] = {0, 33, 7};
  const struct {
    const int64_t *split;
    int nsplit;
    int64_t count;
  } cases[] = {{t1, 1, 118282}, {t2, 2, 1000}, {t3, 2, 300000}, {t4, 1, 33 * 7}, {NULL, 0, 5000}};
  for (int t = 1; t <= 4; t++) {
    sn_set_threads(t);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
      int64_t n = cases[c].count;
      upd u = {.hits = calloc((size_t)n, sizeof(_Atomic int)), .split = cases[c].split, .nsplit = cases[c].nsplit};
      for (int rep = 0; rep < 3; rep++) sn_par_update(mark_update, &u, n, cases[c].split, cases[c].nsplit);
      int bad = 0;
      for (int64_t i = 0; i < n; i++) bad += u.hits[i] != 3;
      CHECK(!bad, "update, threads %d, case %zu: %d parameters not updated exactly once per call", t, c, bad);
      CHECK(t == 1 || !u.bad_range, "update, threads %d, case %zu: %d ranges cross a weight's edge or a part of its rows", t, c,
            (int)u.bad_range);
      free((void *)u.hits);
    }
  }
}

/* Two parts that each wait for the other to start: passes only if two threads
 * run them at once (each gives up after 10 s, so a broken pool fails, not hangs). */
typedef struct meet {
  _Atomic int entered, met;
} meet;

static void rendezvous(void *ctx, int64_t lo, int64_t hi) {
  (void)lo, (void)hi;
  meet *m = ctx;
  atomic_fetch_add(&m->entered, 1);
  double t0 = sn_now();
  while (atomic_load(&m->entered) < 2 && sn_now() - t0 < 10) {
  }
  if (atomic_load(&m->entered) >= 2) atomic_fetch_add(&m->met, 1);
}

static void test_concurrent(void) {
  sn_set_threads(2);
  for (int rep = 0; rep < 5; rep++) {
    meet m = {0};
    sn_par_for(rendezvous, &m, 2, 1);
    CHECK(m.met == 2, "2 threads: the two parts did not run at the same time (met %d)", (int)m.met);
  }
}

/* fork() after the workers started: the child has no workers until it starts its own. */
static void test_fork(void) {
  sn_set_threads(2);
  cover c = {.hits = calloc(1000, sizeof(_Atomic int)), .count = 1000, .grain = 1};
  sn_par_for(mark, &c, 1000, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    cover d = {.hits = calloc(1000, sizeof(_Atomic int)), .count = 1000, .grain = 1};
    meet m = {0};
    sn_par_for(mark, &d, 1000, 1);
    if (!valgrind) sn_par_for(rendezvous, &m, 2, 1);
    else m.met = 2;
    int bad = 0;
    for (int i = 0; i < 1000; i++) bad += d.hits[i] != 1;
    free((void *)d.hits);
    sn_set_threads(1); /* joins the child's workers: _exit runs no atexit handler */
    _exit(bad || m.met != 2 ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pool in a forked child: status %d", status);
  free((void *)c.hits);
}

/* fork() from inside a part of a job: the child's pool must not think it is still
 * inside a job (it would run everything serially). */
typedef struct fork_in_task {
  _Atomic int status;
} fork_in_task;

static void fork_here(void *ctx, int64_t lo, int64_t hi) {
  (void)hi;
  fork_in_task *f = ctx;
  if (lo != 0) return;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    meet m = {0};
    sn_par_for(rendezvous, &m, 2, 1);
    sn_set_threads(1);
    _exit(m.met == 2 ? 0 : 1);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  atomic_store(&f->status, status);
}

static void test_fork_in_task(void) {
  sn_set_threads(2);
  fork_in_task f = {-1};
  sn_par_for(fork_here, &f, 2, 1);
  int status = atomic_load(&f.status);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pool in a child forked inside a task: status %d", status);
}

static double urand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (double)(*s >> 8) / 16777216.0 - 0.5;
}

static void test_gemm(void) {
  const int shapes[][3] = {{32, 128, 784}, {128, 784, 32}, {100, 37, 53}, {7, 300, 64}, {300, 7, 64},
                           {64, 64, 64},   {2000, 9, 16},  {33, 65, 1},   {7, 40, 53},  {5, 20, 0}};
  unsigned seed = 7;
  for (int t = 1; t <= (valgrind ? 2 : 3); t += 1) {
    sn_set_threads(t);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      for (int pad = 0; pad <= 3; pad += 3) /* leading dimensions longer than the rows */
        for (int ta = 0; ta < 2; ta++)
          for (int tb = 0; tb < 2; tb++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
            size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1, nc = (size_t)M * ldc;
            float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *R = calloc(nc, 4);
            double *Ad = malloc(na * 8), *Bd = malloc(nb * 8), *Cd = malloc(nc * 8), *Rd = calloc(nc, 8);
            for (size_t i = 0; i < na; i++) Ad[i] = A[i] = (float)urand(&seed);
            for (size_t i = 0; i < nb; i++) Bd[i] = B[i] = (float)urand(&seed);
            int cta = ta ? CblasTrans : CblasNoTrans, ctb = tb ? CblasTrans : CblasNoTrans;
            openblas_set_num_threads(1);
            if (K > 0) { /* the reference; K = 0 gives zeros (OpenBLAS rejects lda = 0) */
              cblas_sgemm(CblasRowMajor, cta, ctb, M, N, K, 1, A, lda, B, ldb, 0, R, ldc);
              cblas_dgemm(CblasRowMajor, cta, ctb, M, N, K, 1, Ad, lda, Bd, ldb, 0, Rd, ldc);
            }
            memset(C, 0xff, nc * 4); /* NaNs: every element must be written, no padding */
            memset(Cd, 0xff, nc * 8);
            sn_par_sgemm(cta, ctb, M, N, K, A, lda, B, ldb, C, ldc);
            sn_par_dgemm(cta, ctb, M, N, K, Ad, lda, Bd, ldb, Cd, ldc);
            double es = 0, ed = 0;
            int padding_written = 0;
            for (int i = 0; i < M; i++)
              for (int j = 0; j < ldc; j++) {
                size_t at = (size_t)i * ldc + j;
                if (j >= N) {
                  padding_written += !isnan(C[at]) || !isnan(Cd[at]);
                  continue;
                }
                double d1 = fabs((double)C[at] - R[at]), d2 = fabs(Cd[at] - Rd[at]);
                es = isnan(d1) ? INFINITY : fmax(es, d1);
                ed = isnan(d2) ? INFINITY : fmax(ed, d2);
              }
            /* OpenBLAS on a block sums as OpenBLAS on the whole; the small-batch kernels
             * sum in another order: a few roundings of sums of K products */
            double tol = 1e-5 * sqrt(K > 0 ? K : 1);
            CHECK(es <= tol, "sgemm %dx%dx%d ta %d tb %d pad %d threads %d: max diff %g", M, N, K, ta, tb, pad, t, es);
            CHECK(ed <= 1e-13 * sqrt(K > 0 ? K : 1), "dgemm %dx%dx%d ta %d tb %d pad %d threads %d: max diff %g", M,
                  N, K, ta, tb, pad, t, ed);
            CHECK(!padding_written, "gemm %dx%dx%d ta %d tb %d pad %d: %d padding elements written", M, N, K, ta, tb,
                  pad, padding_written);
            free(A), free(B), free(C), free(R), free(Ad), free(Bd), free(Cd), free(Rd);
          }
  }
}

/* Both paths of sn_par_sgemm forced (sn_par_sgemm_path), on products long in M (cut
 * by rows across the threads) and long in N (by columns), with padded leading
 * dimensions: the small kernels' C is the same to the bit at 1, 2 and 3 threads and
 * near OpenBLAS's; the rule's C is bit for bit the path it names. */
static void test_gemm_paths(void) {
  const int shapes[][5] = {/* ta, tb, M, N, K */
                           {0, 1, 700, 20, 100}, {0, 0, 700, 40, 33}, {1, 0, 500, 36, 70}, {0, 0, 20, 500, 70},
                           {0, 1, 30, 300, 70},  {1, 0, 40, 700, 300}, {0, 1, 2100, 33, 64},
                           {1, 0, 128, 784, 32}, {1, 0, 33, 400, 80}, {0, 1, 32, 128, 784}};
  unsigned seed = 11;
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    int ta = shapes[s][0], tb = shapes[s][1], M = shapes[s][2], N = shapes[s][3], K = shapes[s][4];
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C1 = calloc(nc, 4), *Ct = calloc(nc, 4), *R = calloc(nc, 4);
    for (size_t i = 0; i < na; i++) A[i] = (float)urand(&seed);
    for (size_t i = 0; i < nb; i++) B[i] = (float)urand(&seed);
    int cta = ta ? CblasTrans : CblasNoTrans, ctb = tb ? CblasTrans : CblasNoTrans;
    for (int t = 1; t <= (valgrind ? 2 : 3); t++) {
      sn_set_threads(t);
      sn_par_sgemm_path(SN_GEMM_SMALL, cta, ctb, M, N, K, A, lda, B, ldb, t == 1 ? C1 : Ct, ldc);
      if (t > 1)
        CHECK(!memcmp(C1, Ct, nc * 4), "small path %dx%dx%d ta %d tb %d: %d threads differ from 1 in bits", M, N, K,
              ta, tb, t);
    }
    sn_par_sgemm_path(SN_GEMM_BLAS, cta, ctb, M, N, K, A, lda, B, ldb, R, ldc);
    double e = 0;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) e = fmax(e, fabs((double)C1[(size_t)i * ldc + j] - R[(size_t)i * ldc + j]));
    CHECK(e <= 1e-5 * sqrt(K), "small path %dx%dx%d ta %d tb %d: max diff %g from OpenBLAS", M, N, K, ta, tb, e);
    sn_par_sgemm(cta, ctb, M, N, K, A, lda, B, ldb, Ct, ldc);
    bool small = sn_gemm_small_chosen(cta, ctb, M, N, K);
    CHECK(!memcmp(Ct, small ? C1 : R, nc * 4), "sn_par_sgemm %dx%dx%d ta %d tb %d: not the %s path's bits", M, N, K,
          ta, tb, small ? "small" : "OpenBLAS");
    free(A), free(B), free(C1), free(Ct), free(R);
  }
}

int main(void) {
  valgrind = getenv("SPECNET_VALGRIND") && !strcmp(getenv("SPECNET_VALGRIND"), "1");
  test_cover();
  test_update();
  if (!valgrind) test_concurrent();
  /* a forked child inherits the parent's worker stacks without their threads,
   * which valgrind reports as possibly lost */
  if (!valgrind) test_fork();
  if (!valgrind) test_fork_in_task();
  test_gemm();
  test_gemm_paths();
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("pool: all checks passed\n");
  return 0;
}
