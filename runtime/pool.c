/* The thread pool every parallel part of a training step runs on: the GEMMs
 * (sn_par_sgemm / sn_par_dgemm, called by generated code) and the optimizer
 * update (sn_par_for). One pool owns the cores: OpenBLAS runs one thread inside
 * each of our threads, never its own pool beside ours (two pools spinning on the
 * same cores slow a step down several times).
 *
 * A job is a range [0, count) cut into contiguous parts rounded to `grain`. The
 * parts are claimed, not assigned: thread t (the caller is 0) first takes the
 * parts of its own share, the t-th of n contiguous runs of them, then any part
 * left in another's share, so a worker the OS has not scheduled yet costs nothing
 * but its part, and step after step the same thread touches the same data (the
 * optimizer's slice of the parameters stays in its core's cache). Workers wait for
 * the next job spinning (a step issues one every few microseconds), then asleep on
 * a futex, so an idle pool
 * costs nothing. Dispatch takes no lock and allocates nothing. A job started from
 * inside a job, or while another thread's job runs, runs serially on the calling
 * thread. */
#define _GNU_SOURCE
#include "specnet/runtime.h"

#include "small_gemm.h"
#include "spin.h"

#include <cblas.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { MAX_THREADS = 256 };
/* A worker spins this long for the next job, then sleeps. Generous, because in a
 * virtual machine waking a sleeping thread can cost a hundred microseconds. */
#define SPIN_SECONDS 2e-3
enum { PARTS_PER_THREAD = 4 }; /* sn_par_for: a stalled thread holds up 1/4 of its share */

static struct pool {
  int n;                   /* threads, the caller's included */
  int started;             /* workers running */
  pthread_t th[MAX_THREADS];
  uint32_t job;            /* id of the last job (the dispatching thread's counter) */
  _Atomic uint32_t gen;    /* futex word: the id of the job to wake up for */
  uint32_t gen0;           /* gen when the workers were started */
  _Atomic int shares;      /* threads the current job's parts are shared among */
  _Atomic int done;        /* parts finished */
  _Atomic int sleepers;
  _Atomic int busy;        /* a job is in flight */
  _Atomic int stop;
  _Atomic int closing;     /* exiting: no more workers */
  _Atomic bool configured;
  /* the current job: written before claim is published, constant until done */
  sn_task_fn fn;
  void *ctx;
  int64_t count, grain;
  int parts;
} P = {.n = 1};

/* Parts are claimed from per-thread shares: share t of the current job is its
 * parts [first, end), and S[t] = job id << 32 | end << 16 | the next unclaimed part
 * (one word: a worker still looking at the previous job can never claim a part of
 * it with the next job's bounds). A worker that wakes late finds its share taken by
 * the others, so a busy machine (other processes on our cores) degrades to serial
 * speed, not to waiting. One cache line each: the owner's claims do not contend
 * with the others'. */
static struct share {
  _Alignas(64) _Atomic uint64_t next;
} S[MAX_THREADS];

static _Thread_local bool in_job;
static _Thread_local int my_share; /* the caller 0, worker i i + 1 */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Claims the next part of share t of job `job`, or -1 when none is left there (or
 * the job is over). */
static int claim_in(int t, uint32_t job) {
  uint64_t c = atomic_load_explicit(&S[t].next, memory_order_acquire);
  for (;;) {
    uint32_t next = (uint32_t)c & 0xffff, end = (uint32_t)(c >> 16) & 0xffff;
    if ((uint32_t)(c >> 32) != job || next >= end) return -1;
    if (atomic_compare_exchange_weak_explicit(&S[t].next, &c, c + 1, memory_order_acq_rel,
                                              memory_order_acquire))
      return (int)next;
  }
}

/* The next part for this thread: its own share first, then the others' in turn. */
static int claim_part(uint32_t job) {
  int shares = atomic_load_explicit(&P.shares, memory_order_relaxed), i;
  int me = my_share < shares ? my_share : 0;
  if ((i = claim_in(me, job)) >= 0) return i;
  for (int k = 1; k < shares; k++)
    if ((i = claim_in((me + k) % shares, job)) >= 0) return i;
  return -1;
}

static int64_t units_of(int64_t count, int64_t grain) { return count / grain + (count % grain != 0); }

/* the first unit of part i of `parts` over `units`: the remainder goes to the first parts */
static int64_t part_start(int64_t units, int parts, int i) {
  return i * (units / parts) + (i < units % parts ? i : units % parts);
}

static void run_parts(uint32_t job) {
  int i;
  while ((i = claim_part(job)) >= 0) {
    int64_t units = units_of(P.count, P.grain);
    int64_t lo = part_start(units, P.parts, i) * P.grain, hi = part_start(units, P.parts, i + 1) * P.grain;
    if (hi > P.count) hi = P.count;
    if (lo < hi) P.fn(P.ctx, lo, hi);
    atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
  }
}

static void *worker(void *arg) {
  my_share = (int)(intptr_t)arg;
  in_job = true;
  uint32_t seen = P.gen0; /* not P.gen: the first job may have been posted already */
  for (;;) {
    uint32_t g;
    sn_spin sp = {0};
    while ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) == seen) {
      if (sn_spin_on(&sp, SPIN_SECONDS)) continue;
      atomic_fetch_add(&P.sleepers, 1);
      futex_wait(&P.gen, seen); /* returns at once if gen moved on meanwhile */
      atomic_fetch_sub(&P.sleepers, 1);
      sp = (sn_spin){0};
    }
    seen = g;
    if (atomic_load_explicit(&P.stop, memory_order_acquire)) return NULL;
    run_parts(g);
  }
}

static void stop_workers(void) {
  if (!P.started) return;
  while (atomic_exchange_explicit(&P.busy, 1, memory_order_acquire)) sched_yield(); /* another thread's job */
  atomic_store(&P.stop, 1);
  atomic_fetch_add(&P.gen, 1);
  futex_wake_all(&P.gen);
  for (int i = 0; i < P.started; i++) pthread_join(P.th[i], NULL);
  P.started = 0;
  P.job = atomic_load(&P.gen);
  atomic_store(&P.stop, 0);
  atomic_store_explicit(&P.busy, 0, memory_order_release);
}

/* A forked child has none of the parent's threads: start afresh when needed. */
static void after_fork_child(void) {
  in_job = false; /* fork() may be called from inside a task */
  P.started = 0;
  atomic_store(&P.sleepers, 0);
  atomic_store(&P.busy, 0);
  atomic_store(&P.stop, 0);
}

static void at_exit(void) {
  atomic_store(&P.closing, 1); /* jobs from here on (other threads') run serially */
  stop_workers();
}

int sn_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static int default_threads(void) {
  const char *env[] = {"SPECNET_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"};
  for (size_t i = 0; i < sizeof env / sizeof *env; i++) {
    const char *v = getenv(env[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return sn_cpus();
}

static void init_once(void) {
  pthread_atfork(NULL, NULL, after_fork_child);
  atexit(at_exit);
}

void sn_set_threads(int n) {
  pthread_once(&once, init_once);
  if (in_job) return; /* from inside a task: the pool is in use */
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (P.started) stop_workers();
  P.n = n;
  atomic_store(&P.configured, true);
  /* OpenBLAS runs inside our threads; its own would compete with them */
  openblas_set_num_threads(1);
}

int sn_threads(void) {
  if (!atomic_load(&P.configured)) sn_set_threads(default_threads());
  return P.n;
}

static bool start_workers(void) {
  P.gen0 = atomic_load(&P.gen);
  while (P.started < P.n - 1) {
    if (pthread_create(&P.th[P.started], NULL, worker, (void *)(intptr_t)(P.started + 1))) {
      P.n = P.started + 1; /* fewer threads than asked: do not retry on every job */
      break;
    }
    P.started++;
  }
  return P.started > 0;
}

static void par_run(sn_task_fn fn, void *ctx, int64_t count, int64_t grain, int max_parts) {
  if (count <= 0) return;
  if (grain < 1) grain = 1;
  int n = sn_threads();
  int64_t units = units_of(count, grain);
  int parts = units < max_parts ? (int)units : max_parts;
  /* serial: one thread, one part, nested, or another thread's job in flight */
  if (parts > 0xffff) parts = 0xffff;
  if (parts < 2 || n < 2 || in_job || atomic_load(&P.closing) ||
      atomic_exchange_explicit(&P.busy, 1, memory_order_acquire)) {
    fn(ctx, 0, count);
    return;
  }
  if (P.started < P.n - 1 && !start_workers()) {
    atomic_store_explicit(&P.busy, 0, memory_order_release);
    fn(ctx, 0, count);
    return;
  }
  P.fn = fn;
  P.ctx = ctx;
  P.count = count;
  P.grain = grain;
  P.parts = parts;
  atomic_store_explicit(&P.done, 0, memory_order_relaxed);
  uint32_t job = ++P.job;
  /* share t: parts [t parts / k, (t + 1) parts / k) of k = min(threads, parts) */
  int k = parts < P.started + 1 ? parts : P.started + 1;
  atomic_store_explicit(&P.shares, k, memory_order_relaxed);
  for (int t = 0; t < k; t++) {
    uint64_t first = (uint64_t)t * (uint64_t)parts / (uint64_t)k, end = (uint64_t)(t + 1) * (uint64_t)parts / (uint64_t)k;
    atomic_store_explicit(&S[t].next, (uint64_t)job << 32 | end << 16 | first, memory_order_release);
  }
  atomic_store(&P.gen, job); /* seq_cst: ordered before the sleepers check */
  if (atomic_load(&P.sleepers)) futex_wake_all(&P.gen);
  in_job = true;
  run_parts(job);
  in_job = false;
  /* parts a worker claimed and is still running */
  long spins = 0;
  while (atomic_load_explicit(&P.done, memory_order_acquire) < parts) {
    if (++spins < 20000) sn_cpu_relax();
    else sched_yield();
  }
  atomic_store_explicit(&P.busy, 0, memory_order_release);
}

void sn_par_for(sn_task_fn fn, void *ctx, int64_t count, int64_t grain) {
  int n = sn_threads();
  par_run(fn, ctx, count, grain, n > 1 ? n * PARTS_PER_THREAD : 1);
}

/* ---------------------------------------------------------------------------
 * The optimizer update, cut as the products were (sn_par_update in runtime.h) */

/* Parameters outside the split weights, at most this many, all go to part 0 */
enum { UPDATE_REST_FIRST = 65536, UPDATE_GRAIN = 256 };

typedef struct update_job {
  sn_task_fn fn;
  void *ctx;
  int64_t count, rest; /* all parameters; those outside the split weights */
  const int64_t *split;
  int nsplit, parts;
} update_job;

/* rows [r0, r1) of part p of `parts` of a weight with `rows` rows, as par_gemm cuts a
 * product along them (grain SN_PAR_ROW_GRAIN) */
static void split_rows(int64_t rows, int parts, int p, int64_t *r0, int64_t *r1) {
  int64_t units = units_of(rows, SN_PAR_ROW_GRAIN);
  int k = units < parts ? (int)units : parts;
  if (p >= k) {
    *r0 = *r1 = rows;
    return;
  }
  *r0 = part_start(units, k, p) * SN_PAR_ROW_GRAIN;
  *r1 = part_start(units, k, p + 1) * SN_PAR_ROW_GRAIN;
  if (*r1 > rows) *r1 = rows;
}

/* fn on [lo, hi) of the parameters outside the split weights, counted among those
 * alone (rest index a maps to the a-th parameter no split weight holds) */
static void update_rest(const update_job *u, int64_t lo, int64_t hi) {
  int64_t at = 0, a = 0; /* at: parameter index; a: rest index there */
  for (int i = 0; i <= u->nsplit && a < hi; i++) {
    int64_t end = i < u->nsplit ? u->split[3 * i] : u->count; /* this gap: [at, end) */
    int64_t g0 = a, g1 = a + (end - at);
    int64_t x0 = lo > g0 ? lo : g0, x1 = hi < g1 ? hi : g1;
    if (x0 < x1) u->fn(u->ctx, at + (x0 - g0), at + (x1 - g0));
    a = g1;
    if (i < u->nsplit) at = end + u->split[3 * i + 1] * u->split[3 * i + 2];
  }
}

static void update_part(void *ctx, int64_t lo, int64_t hi) {
  const update_job *u = ctx;
  for (int64_t p = lo; p < hi; p++) {
    for (int i = 0; i < u->nsplit; i++) {
      int64_t r0, r1, cols = u->split[3 * i + 2];
      split_rows(u->split[3 * i + 1], u->parts, (int)p, &r0, &r1);
      if (r0 < r1) u->fn(u->ctx, u->split[3 * i] + r0 * cols, u->split[3 * i] + r1 * cols);
    }
    if (u->rest <= UPDATE_REST_FIRST) {
      if (p == 0) update_rest(u, 0, u->rest);
    } else {
      int64_t units = units_of(u->rest, UPDATE_GRAIN);
      int64_t r0 = part_start(units, u->parts, (int)p) * UPDATE_GRAIN, r1 = part_start(units, u->parts, (int)p + 1) * UPDATE_GRAIN;
      update_rest(u, r0, r1 < u->rest ? r1 : u->rest);
    }
  }
}

void sn_par_update(sn_task_fn fn, void *ctx, int64_t count, const int64_t *split, int nsplit) {
  int n = sn_threads();
  if (nsplit <= 0 || n < 2) {
    sn_par_for(fn, ctx, count, UPDATE_GRAIN);
    return;
  }
  update_job u = {fn, ctx, count, count, split, nsplit, n};
  for (int i = 0; i < nsplit; i++) u.rest -= split[3 * i + 1] * split[3 * i + 2];
  /* one part per thread: part t is thread t's share (par_run), as in par_gemm */
  par_run(update_part, &u, n, 1, n);
}

/* ---------------------------------------------------------------------------
 * GEMMs: C = A' B' (row-major, alpha 1, beta 0) cut along the longer of M and N
 * into blocks of 16 (a multiple of OpenBLAS's register tiles); each thread calls
 * the single-threaded OpenBLAS on its block. Small products stay on the caller:
 * below about 128 K multiply-adds a dispatch costs more than it saves. */

typedef struct gemm_job {
  bool dbl, ta, tb, split_n, small;
  int M, N, K, lda, ldb, ldc;
  const char *A, *B;
  char *C;
  bool pack; /* small, tb: the packed NT path (by the whole product's M: pack_nt) */
} gemm_job;

static void gemm_part(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  size_t es = j->dbl ? 8 : 4;
  const char *A = j->A, *B = j->B;
  char *C = j->C;
  int M = j->M, N = j->N;
  if (j->small) { /* the kernels take a range of C's columns; rows by offsets */
    int n0 = j->split_n ? (int)lo : 0, n1 = j->split_n ? (int)hi : N;
    if (!j->split_n) {
      A += (size_t)lo * (j->ta ? 1 : (size_t)j->lda) * es;
      C += (size_t)lo * (size_t)j->ldc * es;
      M = (int)(hi - lo);
    }
    sn_small_gemm(j->ta, j->tb, j->pack, M, n0, n1, j->K, (const float *)A, j->lda, (const float *)B, j->ldb, (float *)C,
                  j->ldc);
    return;
  }
  if (j->split_n) { /* columns lo..hi of C and of op(B) */
    B += (size_t)lo * (j->tb ? (size_t)j->ldb : 1) * es;
    C += (size_t)lo * es;
    N = (int)(hi - lo);
  } else { /* rows lo..hi of C and of op(A) */
    A += (size_t)lo * (j->ta ? 1 : (size_t)j->lda) * es;
    C += (size_t)lo * (size_t)j->ldc * es;
    M = (int)(hi - lo);
  }
  enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
  if (j->dbl)
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, j->K, 1.0, (const double *)A, j->lda, (const double *)B, j->ldb,
                0.0, (double *)C, j->ldc);
  else
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, j->K, 1.0f, (const float *)A, j->lda, (const float *)B, j->ldb,
                0.0f, (float *)C, j->ldc);
}

/* the kernels can take it: f32, not A^T B^T, a variant chosen (gemm_small.c chooses
 * it, or none: SPECNET_SMALL_GEMM=0 leaves every product to OpenBLAS, for comparisons) */
static bool small_possible(const gemm_job *j) { return sn_small_gemm_available() && !j->dbl && !(j->ta && j->tb); }

/* A B^T in the small kernels packs B^T's blocks (the AVX-512 variant; the AVX2 one
 * ignores it) when the product is tall: from M = 256 the transposition is repaid
 * over the rows (2048 x 128..512 x 128..512: 0.38-0.44 of the dot products' time,
 * 12544 x 32 x 144: 0.16, 256 x 128 x 784: 0.8; at M = 32..128 1.3-2.1x slower).
 * By the whole product's M, so that cutting it across threads changes no bit. */
static bool pack_nt(const gemm_job *j) { return j->tb && j->M >= 256; }

/* Which products the unpacked kernels of gemm_small.c take from OpenBLAS: a rule by
 * shape and variant, never by timing. Measured with bench/gemm_small.c (every product
 * of the seed MLP at batch 32 and 256 and of fashion_cnn at batch 64, and probes
 * around the lines, at 1 and 2 threads) on a Zen 5 against OpenBLAS 0.3.21, whose
 * kernels there are its Haswell (AVX2) ones; ratios are small / OpenBLAS time
 * (docs/performance.md):
 *
 *   A B^T below M = 256 (dot products), both variants: K >= 64. Each tile ends in
 *     horizontal sums: with fewer than 4 (AVX-512) or 8 (AVX2) vectors per sum those
 *     cost more than packing saves (64x128x32 1.2-1.7, 64x128x9 2-8).
 *   A B^T from M = 256, AVX-512: always, packed (pack_nt), as an A B below; AVX2
 *     (dot products): K >= 64 and M <= 2048, since OpenBLAS packs op(B) once for
 *     all rows and from M in the thousands its packed kernel wins (12544x32x784
 *     1.8-2.6, 12544x128x144 1.0-2.7; 4096x32x144 0.7-1.2).
 *   AVX-512, A B and A^T B: always. 16-lane broadcast kernels against OpenBLAS's
 *     8-lane ones: 0.3-0.85 on every A B and A^T B measured, 64x64x10 to 1024^3,
 *     M = 12544, K = 50176.
 *   AVX2: where some side is at most 64, so that OpenBLAS's packing is not repaid
 *     along it: 0.3-1.1 there, mostly below 0.9 (12544x144x32 0.6-0.75, 10x128x256
 *     0.3-0.5), 0.9-1.4 with every side 256 to 2048, 1.2-2 at 1024^3. */
static bool use_small(const gemm_job *j) {
  if (!small_possible(j)) return false;
  if (sn_small_gemm_lanes() == 16) /* AVX-512 */
    return !j->tb || pack_nt(j) || j->K >= 64;
  if (j->tb && (j->K < 64 || j->M > 2048)) return false;
  int side = j->M < j->N ? j->M : j->N;
  return (side < j->K ? side : j->K) <= 64;
}

static void par_gemm(sn_gemm_path path, bool dbl, int ta, int tb, int M, int N, int K, const void *A, int lda,
                     const void *B, int ldb, void *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* OpenBLAS rejects lda = 0; C = 0 */
    for (int i = 0; i < M; i++) memset((char *)C + (size_t)i * ldc * (dbl ? 8 : 4), 0, (size_t)N * (dbl ? 8 : 4));
    return;
  }
  gemm_job j = {dbl, ta == CblasTrans, tb == CblasTrans, N >= M, false, M, N, K, lda, ldb, ldc, A, B, C, false};
  if (path == SN_GEMM_RULE ? use_small(&j) : path == SN_GEMM_SMALL && small_possible(&j)) {
    /* cut along the longer side, as below; each element's sum runs in the same order
     * wherever its row or column block starts, so the cut changes no bit */
    j.small = true;
    j.pack = pack_nt(&j);
    /* A^T B with 32 rows or more is a weight's gradient: cut by its rows, as X W^T
     * cuts W's rows (by N, the longer side at small batches) and as sn_par_update
     * cuts the update, so that each core keeps its rows of all four (by N where
     * there are too few rows for every thread) */
    int n = sn_threads();
    if (j.ta && M >= 32 && units_of(M, SN_PAR_ROW_GRAIN) >= n) j.split_n = false;
    int64_t span = j.split_n ? N : M;
    if ((int64_t)M * N * K < SN_PAR_GEMM_MIN || span < 32 || n < 2) gemm_part(&j, 0, span);
    else par_run(gemm_part, &j, span, j.split_n ? (j.tb ? SN_PAR_ROW_GRAIN : 16) : (j.ta ? SN_PAR_ROW_GRAIN : 24), n);
    return;
  }
  int64_t span = j.split_n ? N : M;
  if ((int64_t)M * N * K < 131072 || span < 32) {
    gemm_part(&j, 0, span);
    return;
  }
  /* one part per thread: smaller products lose more to OpenBLAS's per-call
   * packing than a stalled thread costs, except for the largest */
  int n = sn_threads();
  par_run(gemm_part, &j, span, 16, (int64_t)M * N * K >= (4 << 20) ? 2 * n : n);
}

void sn_par_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc) {
  par_gemm(SN_GEMM_RULE, false, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
}

void sn_par_dgemm(int ta, int tb, int M, int N, int K, const double *A, int lda, const double *B, int ldb,
                  double *C, int ldc) {
  par_gemm(SN_GEMM_RULE, true, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
}

void sn_par_sgemm_path(sn_gemm_path path, int ta, int tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, float *C, int ldc) {
  par_gemm(path, false, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
}

bool sn_gemm_small_chosen(int ta, int tb, int M, int N, int K) {
  gemm_job j = {false, ta == CblasTrans, tb == CblasTrans, N >= M, false, M, N, K, 0, 0, 0, NULL, NULL, NULL, false};
  return M > 0 && N > 0 && K > 0 && use_small(&j);
}

/* ---------------------------------------------------------------------------
 * Batched GEMMs (attention's per-sample, per-head products): count independent
 * products C_i = op(A_i) op(B_i), operand i at A + i sA (elements). They are
 * small (T x T x d), so the threads take whole products, each product on one
 * thread as gemm_part would run it. */

typedef struct batch_job {
  gemm_job one; /* the first product; the others are at strides */
  int64_t sa, sb, sc;
} batch_job;

static void batch_part(void *ctx, int64_t lo, int64_t hi) {
  const batch_job *j = ctx;
  size_t es = j->one.dbl ? 8 : 4;
  for (int64_t i = lo; i < hi; i++) {
    gemm_job g = j->one;
    g.A += (size_t)(i * j->sa) * es;
    g.B += (size_t)(i * j->sb) * es;
    g.C += (size_t)(i * j->sc) * es;
    gemm_part(&g, 0, g.split_n ? g.N : g.M);
  }
}

static void par_gemm_batched(bool dbl, int ta, int tb, int M, int N, int K, const void *A, int lda, int64_t sa,
                             const void *B, int ldb, int64_t sb, void *C, int ldc, int64_t sc, int64_t count) {
  if (M <= 0 || N <= 0 || count <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < count; i++)
      par_gemm(SN_GEMM_RULE, dbl, ta, tb, M, N, K, A, lda, B, ldb, (char *)C + (size_t)(i * sc) * (dbl ? 8 : 4), ldc);
    return;
  }
  batch_job j = {{dbl, ta == CblasTrans, tb == CblasTrans, true, false, M, N, K, lda, ldb, ldc, A, B, C, false}, sa, sb, sc};
  j.one.small = use_small(&j.one);
  j.one.pack = pack_nt(&j.one);
  int n = sn_threads();
  if ((int64_t)M * N * K * count < 131072 || n < 2 || count < 2) batch_part(&j, 0, count);
  else par_run(batch_part, &j, count, 1, count < n * PARTS_PER_THREAD ? count : n * PARTS_PER_THREAD);
}

void sn_par_sgemm_batched(int ta, int tb, int M, int N, int K, const float *A, int lda, int64_t sa, const float *B,
                          int ldb, int64_t sb, float *C, int ldc, int64_t sc, int64_t count) {
  par_gemm_batched(false, ta, tb, M, N, K, A, lda, sa, B, ldb, sb, C, ldc, sc, count);
}

void sn_par_dgemm_batched(int ta, int tb, int M, int N, int K, const double *A, int lda, int64_t sa, const double *B,
                          int ldb, int64_t sb, double *C, int ldc, int64_t sc, int64_t count) {
  par_gemm_batched(true, ta, tb, M, N, K, A, lda, sa, B, ldb, sb, C, ldc, sc, count);
}
