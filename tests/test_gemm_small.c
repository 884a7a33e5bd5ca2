/* The small-batch GEMM kernels (runtime/gemm_small.c), every variant this CPU runs
 * (AVX-512 and AVX2 on a Zen 4/5, AVX2 alone on a Zen 3; the output says which were
 * tested and which not), called directly, not through the pool:
 *
 *   - against a double-precision triple loop, for C = A B^T, A B and A^T B with M, N
 *     and K each over {1, 7, 33, 65, 129}, and K = 0, 1100, 2085 (past the kernels'
 *     blocks of k): |C - ref| <= K eps sum_k |a_ik b_kj|;
 *   - leading dimensions longer than the rows, the padding of A and B holding NaN (a
 *     kernel that reads past a row's end into a sum gives NaN) and C's padding a
 *     sentinel that must survive, as must every column outside n0..n1;
 *   - column ranges n0..n1 that do not start at 0, and the same product cut into
 *     three column ranges at odd places giving bit-identical columns (what makes
 *     results independent of the thread count);
 *   - which variant the process chose, against SPECNET_CPU (the suite runs this test
 *     again with SPECNET_CPU=x86-64-v3: no AVX-512 then). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "small_gemm.h"
#include "specnet/runtime.h"

#include "check.h"

static const int sizes[] = {1, 7, 33, 65, 129};
enum { N_SIZES = sizeof sizes / sizeof *sizes, PAD_A = 3, PAD_B = 5, PAD_C = 7, GUARD = 64 };

static const float sentinel = -12345.5f; /* C's cells no kernel may write */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static float uniform(void) { /* in [-1, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((double)(rng >> 40) / (double)(1u << 23) - 1.0);
}

/* One product: op(A) is M x K, op(B) is K x N, stored with padded leading
 * dimensions; ref and mag (sum |a b|) of C in double, M x N. */
typedef struct problem {
  bool ta, tb;
  int M, N, K, lda, ldb, ldc;
  float *A, *B;      /* (ta ? K : M) rows of lda, (tb ? N : K) rows of ldb; NaN padding */
  double *ref, *mag; /* (M, N) */
  bool pack;         /* tb: the packed path, where the variant has one */
} problem;

static float *padded(int rows, int cols, int ld) {
  float *p = malloc(((size_t)rows * ld + 1) * sizeof *p);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < ld; c++) p[(size_t)r * ld + c] = c < cols ? uniform() : NAN;
  return p;
}

static problem make(bool ta, bool tb, int M, int N, int K) {
  problem p = {ta, tb, M, N, K, (ta ? M : K) + PAD_A, (tb ? K : N) + PAD_B, N + PAD_C, NULL, NULL, NULL, NULL, false};
  p.A = padded(ta ? K : M, ta ? M : K, p.lda);
  p.B = padded(tb ? N : K, tb ? K : N, p.ldb);
  p.ref = malloc((size_t)M * N * sizeof *p.ref);
  p.mag = malloc((size_t)M * N * sizeof *p.mag);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0, m = 0;
      for (int k = 0; k < K; k++) {
        double a = ta ? p.A[(size_t)k * p.lda + i] : p.A[(size_t)i * p.lda + k];
        double b = tb ? p.B[(size_t)j * p.ldb + k] : p.B[(size_t)k * p.ldb + j];
        s += a * b, m += fabs(a * b);
      }
      p.ref[(size_t)i * N + j] = s, p.mag[(size_t)i * N + j] = m;
    }
  return p;
}

static void drop(problem *p) { free(p->A), free(p->B), free(p->ref), free(p->mag); }

static size_t c_len(const problem *p) { return (size_t)p->M * p->ldc + GUARD; }

static float *fresh_c(const problem *p) {
  float *C = malloc(c_len(p) * sizeof *C);
  for (size_t i = 0; i < c_len(p); i++) C[i] = sentinel;
  return C;
}

static const char *op_name(const problem *p) {
  return p->tb ? (p->pack ? "A B^T packed" : "A B^T") : p->ta ? "A^T B" : "A B";
}

/* Columns n0..n1 of C against the reference; every other cell still the sentinel. */
static void check_c(const sn_small_gemm_kernels *v, const problem *p, const float *C, int n0, int n1) {
  int wrong = 0, written = 0;
  double worst = 0;
  for (size_t x = 0; x < c_len(p); x++) {
    size_t i = x / p->ldc;
    int j = (int)(x % p->ldc);
    if (i < (size_t)p->M && j >= n0 && j < n1) {
      double r = p->ref[i * p->N + j], e = fabs(C[x] - r);
      double tol = p->K * (double)FLT_EPSILON * p->mag[i * p->N + j] + 1e-30;
      if (!(e <= tol)) wrong++; /* NaN fails too */
      if (e / tol > worst) worst = e / tol;
    } else if (memcmp(&C[x], &sentinel, sizeof sentinel)) {
      written++;
    }
  }
  CHECK(!wrong, "%s %s M %d N %d K %d columns %d..%d: %d elements off the reference (worst %.3g x tolerance)",
        v->name, op_name(p), p->M, p->N, p->K, n0, n1, wrong, worst);
  CHECK(!written, "%s %s M %d N %d K %d columns %d..%d: %d cells outside the columns written", v->name,
        op_name(p), p->M, p->N, p->K, n0, n1, written);
}

static void run(const sn_small_gemm_kernels *v, const problem *p, float *C, int n0, int n1) {
  v->gemm(p->ta, p->tb, p->pack, p->M, n0, n1, p->K, p->A, p->lda, p->B, p->ldb, C, p->ldc);
}

/* one variant on one problem: the whole width, an inner range, and three pieces */
static void test_problem(const sn_small_gemm_kernels *v, const problem *p) {
  float *whole = fresh_c(p), *part = fresh_c(p), *pieces = fresh_c(p);
  run(v, p, whole, 0, p->N);
  check_c(v, p, whole, 0, p->N);
  if (p->N > 1) { /* n0 > 0 and n1 < N */
    int n0 = 1 + (p->N - 1) / 3, n1 = p->N - (p->N - 1) / 4;
    run(v, p, part, n0, n1);
    check_c(v, p, part, n0, n1);
  }
  /* cut at odd places (the pool cuts at multiples of 4 or 16: a stricter test) */
  int c1 = p->N < 5 ? p->N / 2 : 5, c2 = c1 + (p->N - c1) / 2 + 1;
  if (c2 > p->N) c2 = p->N;
  run(v, p, pieces, 0, c1);
  run(v, p, pieces, c1, c2);
  run(v, p, pieces, c2, p->N);
  CHECK(!memcmp(whole, pieces, c_len(p) * sizeof *whole),
        "%s %s M %d N %d K %d: columns cut at %d and %d differ from the whole in some bits", v->name, op_name(p),
        p->M, p->N, p->K, c1, c2);
  run(v, p, pieces, 0, p->N); /* and again: the same bits */
  CHECK(!memcmp(whole, pieces, c_len(p) * sizeof *whole), "%s %s M %d N %d K %d: a second run differs", v->name,
        op_name(p), p->M, p->N, p->K);
  if (!p->tb &&
      p->K > 0) { /* the accumulating entry (NN, TN): C += op(A) B on C = op(A) B gives twice it */
    v->gemm_acc(p->ta, p->M, 0, p->N, p->K, p->A, p->lda, p->B, p->ldb, pieces, p->ldc);
    int off = 0;
    for (size_t x = 0; x < c_len(p); x++) {
      bool in = x / p->ldc < (size_t)p->M && (int)(x % p->ldc) < p->N;
      if (in)
        off += fabsf(pieces[x] - 2 * whole[x]) > 1e-5f * (1 + fabsf(2 * whole[x]));
      else
        off += memcmp(&pieces[x], &whole[x], sizeof *whole) != 0;
    }
    CHECK(!off, "%s %s M %d N %d K %d: the accumulating entry is off at %d cells", v->name,
          op_name(p), p->M, p->N, p->K, off);
  }
  free(whole), free(part), free(pieces);
}

static void test_variant(const sn_small_gemm_kernels *v) {
  static const bool ops[4][3] = {{false, true, false}, {false, true, true}, {false, false, false}, {true, false, false}};
  /* NT, NT packed, NN, TN */
  int products = 0;
  int f0 = failures;
  for (int o = 0; o < 4; o++)
    for (int a = 0; a < N_SIZES; a++)
      for (int b = 0; b < N_SIZES; b++)
        for (int c = 0; c < N_SIZES; c++) {
          problem p = make(ops[o][0], ops[o][1], sizes[a], sizes[b], sizes[c]);
          p.pack = ops[o][2];
          test_problem(v, &p);
          drop(&p);
          products++;
        }
  /* K = 0 (C's columns become 0), and K past every variant's block of k (256 to
   * 1024): partial sums stored in C and added to */
  static const int more[][3] = {{7, 33, 0}, {7, 33, 1100}, {33, 65, 2085}};
  for (int o = 0; o < 4; o++)
    for (int s = 0; s < 3; s++) {
      problem p = make(ops[o][0], ops[o][1], more[s][0], more[s][1], more[s][2]);
      p.pack = ops[o][2];
      test_problem(v, &p);
      drop(&p);
      products++;
    }
  printf("%-7s tested: %d products (NT, NT packed, NN, TN, NN and TN accumulating; M, N, K over 1 "
         "7 33 65 129; K = 0, 1100, 2085), %d failures\n",
         v->name, products, failures - f0);
}

/* the variant this process chose, against SPECNET_CPU, SPECNET_GEMM_KERNELS and
 * SPECNET_SMALL_GEMM */
static void test_choice(void) {
  const char *chosen = sn_small_gemm_variant(), *cpu = getenv("SPECNET_CPU"), *want = getenv("SPECNET_GEMM_KERNELS");
  const char *off = getenv("SPECNET_SMALL_GEMM");
  printf("chosen: %s (SPECNET_CPU=%s, SPECNET_GEMM_KERNELS=%s)\n", chosen, cpu ? cpu : "", want ? want : "");
  bool below_v4 = cpu && (!strcmp(cpu, "x86-64-v3") || !strcmp(cpu, "x86-64-v2") || !strcmp(cpu, "x86-64"));
  bool below_v3 = cpu && (!strcmp(cpu, "x86-64-v2") || !strcmp(cpu, "x86-64"));
  if (below_v4) CHECK(strcmp(chosen, "avx512"), "SPECNET_CPU=%s but the avx512 kernels were chosen", cpu);
  if (below_v3) CHECK(!strcmp(chosen, "none"), "SPECNET_CPU=%s but the %s kernels were chosen", cpu, chosen);
  if (off && !strcmp(off, "0")) CHECK(!strcmp(chosen, "none"), "SPECNET_SMALL_GEMM=0 but %s chosen", chosen);
  if (below_v4 || want || off) return;
  const char *best = "none"; /* unrestricted: the fastest this CPU supports */
  for (int i = 0; sn_small_gemm_variant_at(i); i++)
    if (sn_small_gemm_variant_at(i)->supported()) {
      best = sn_small_gemm_variant_at(i)->name;
      break;
    }
  CHECK(!strcmp(chosen, best), "chose %s, but this CPU runs %s", chosen, best);
  CHECK(sn_small_gemm_available() == !!strcmp(chosen, "none"), "sn_small_gemm_available() disagrees with %s",
        chosen);
}

int main(void) {
  int tested = 0, compiled = 0;
  for (int i = 0; sn_small_gemm_variant_at(i); i++, compiled++) {
    const sn_small_gemm_kernels *v = sn_small_gemm_variant_at(i);
    if (!v->supported()) {
      printf("%-7s NOT TESTED: this CPU does not support it\n", v->name);
      continue;
    }
    test_variant(v);
    tested++;
  }
  if (!tested)
    printf("NO VARIANT TESTED: %s\n", compiled ? "this CPU supports none of them" : "none compiled in (not x86-64)");
  test_choice();
  if (failures) fprintf(stderr, "%d failures\n", failures);
  return failures != 0;
}
