/* Staging batches for the training and evaluation loops (train.c).
 *
 * Batches are staged by a background thread (double buffering): while the step
 * function runs on batch b, the loader thread gathers batch b+1 by the shuffled
 * index and converts it to the model dtype, into the other of two staging slots. The
 * batches, their order and their contents are exactly those of staging on the
 * calling thread (opts->no_prefetch), which the tests check. When the thread pool
 * has every CPU, the calling thread stages each batch on the pool instead (a third
 * thread would take turns with the pool's mid-step). Unshuffled f32 data in memory
 * without preprocessing needs no staging: the step reads the data set in place.
 * Samples as stored (an NPY or IDX file read in place) are converted here, per batch, by
 * sn_dataset_get (data_store.c), on the loader thread. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spin.h"
#include "train_impl.h"

/* ---------------------------------------------------------------------------
 * Staging a batch */

/* `count` floats from src into dst in the model's dtype. */
static void put_row(const sn_model *m, void *dst, int64_t at, const float *src, int64_t count) {
  if (m->dtype == SN_RT_F32) {
    memcpy((float *)dst + at, src, (size_t)count * sizeof(float));
  } else {
    double *d = (double *)dst + at;
    for (int64_t e = 0; e < count; e++) d[e] = src[e];
  }
}

typedef struct gather {
  const sn_model *m;
  const sn_dataset *ds;
  const int64_t *idx;
  int64_t start;
  slot *s;
} gather;

/* Rows [lo, hi) of the batch, converted by the data set (stored type, preprocessing:
 * sn_dataset_get); in the set's order one run of samples. */
static void gather_rows(void *ctx, int64_t lo, int64_t hi) {
  const gather *g = ctx;
  const int64_t E = g->ds->sample_elems;
  const sn_dtype_rt dt = g->m->dtype;
  char *x = (char *)g->s->x + (size_t)(lo * E) * dtype_bytes(g->m);
  if (!g->idx) {
    sn_dataset_get(g->ds, g->start + lo, hi - lo, dt, x);
    return;
  }
  for (int64_t r = lo; r < hi; r++, x += (size_t)E * dtype_bytes(g->m))
    sn_dataset_get(g->ds, g->idx[g->start + r], 1, dt, x);
}

/* Rows [start, start+rows) of the order idx (NULL: the data set's own order) into s;
 * par: the samples are copied on the thread pool (the training thread only). */
static void stage(const sn_model *m, const sn_dataset *ds, const int64_t *idx, int64_t start,
                  int64_t rows, slot *s, bool par) {
  const int64_t E = ds->sample_elems, T = m->target_elems;
  const bool direct = !idx && m->dtype == SN_RT_F32 && sn_dataset_direct(ds); /* in place */
  s->b.rows = rows;
  if (direct) {
    s->b.x = ds->x + start * E;
  } else {
    gather g = {m, ds, idx, start, s};
    if (par && rows * E >= 16384)
      sn_par_for(gather_rows, &g, rows, 8);
    else
      gather_rows(&g, 0, rows);
    s->b.x = s->x;
  }
  const int64_t L = set_labels(ds);
  if (!ds->y) {
    s->b.y = NULL;
  } else if (!idx) {
    s->b.y = ds->y + start * L;
  } else {
    for (int64_t r = 0; r < rows; r++)
      memcpy(s->y + r * L, ds->y + idx[start + r] * L, (size_t)L * sizeof(int32_t));
    s->b.y = s->y;
  }
  if (T <= 0 || !ds->t) {
    s->b.t = NULL;
  } else if (!idx && m->dtype == SN_RT_F32) {
    s->b.t = ds->t + start * T;
  } else {
    for (int64_t r = 0; r < rows; r++)
      put_row(m, s->t, r * T, ds->t + (idx ? idx[start + r] : start + r) * T, T);
    s->b.t = s->t;
  }
}

/* ---------------------------------------------------------------------------
 * The loader: a job is the batches of one data set in one order; the consumer asks
 * for batch b (sn_loader_get) and hands it back when its step is done (sn_loader_put). */

/* Batch b of the job: the global batch is rows [b bs, b bs + g) of the order, the last
 * one partial; this loader's shard of it starts at *start and has *rows (maybe 0). */
static void job_rows(const loader *L, int64_t b, int64_t *start, int64_t *rows) {
  const int64_t first = b * L->bs;
  const int64_t g = L->ds->n - first < L->bs ? L->ds->n - first : L->bs;
  const int64_t lo = g * L->shard / L->shards, hi = g * (L->shard + 1) / L->shards;
  *start = first + lo;
  *rows = hi - lo;
}

/* The samples of batch b, prefetched (sn_dataset_prefetch) while batch b - 1 is
 * staged: in a shuffled order they are scattered over the data set. */
static void prefetch_batch(const loader *L, int64_t b) {
  if (b >= L->n_batches) return;
  int64_t start, rows;
  job_rows(L, b, &start, &rows);
  for (int64_t r = 0; r < rows; r++) sn_dataset_prefetch(L->ds, L->idx ? L->idx[start + r] : start + r);
}

/* How long a side spins for the other's counter before it sleeps: a step of a
 * small model hands a batch over every ~100 us, and in a virtual machine a futex
 * wake-up costs microseconds on the waker and more on the woken. */
#define LOADER_SPIN_SECONDS 2e-3

/* Spins (mu not held) until *v > floor or the spin time is up; true if it got there. */
static bool spin_above(_Atomic int64_t *v, int64_t floor) {
  sn_spin sp = {0};
  while (atomic_load(v) <= floor)
    if (!sn_spin_on(&sp, LOADER_SPIN_SECONDS)) return false;
  return true;
}

/* cond_wait on L->cv (mu held), counted in sleepers so the other side knows to wake it */
static void sleep_on(loader *L) {
  atomic_fetch_add(&L->sleepers, 1);
  pthread_cond_wait(&L->cv, &L->mu);
  atomic_fetch_sub(&L->sleepers, 1);
}

/* After a counter's store (seq_cst): wakes a sleeper if there is one. A sleeper counts
 * itself before it checks the counter under mu, so either it sees the store or we
 * see it counted. */
static void wake_sleepers(loader *L, bool locked) {
  if (!atomic_load(&L->sleepers)) return;
  if (!locked) pthread_mutex_lock(&L->mu);
  pthread_cond_broadcast(&L->cv);
  if (!locked) pthread_mutex_unlock(&L->mu);
}

static void *loader_thread(void *arg) {
  loader *L = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&L->mu);
  for (;;) {
    while (!L->quit && L->job == seen) sleep_on(L);
    if (L->quit) break;
    seen = L->job;
    L->busy = true;
    for (int64_t b = 0; b < L->n_batches; b++) {
      /* slot b % 2 is free once batch b - 2 is handed back */
      if (b - atomic_load(&L->consumed) >= 2) {
        pthread_mutex_unlock(&L->mu);
        spin_above(&L->consumed, b - 2);
        pthread_mutex_lock(&L->mu);
      }
      while (!L->quit && !L->abort && b - atomic_load(&L->consumed) >= 2) sleep_on(L);
      if (L->quit || L->abort) break;
      int64_t start, rows;
      job_rows(L, b, &start, &rows);
      pthread_mutex_unlock(&L->mu);
      prefetch_batch(L, b + 1);
      stage(L->m, L->ds, L->idx, start, rows, &L->slots[b % 2], false);
      pthread_mutex_lock(&L->mu);
      atomic_store(&L->produced, b + 1);
      wake_sleepers(L, true);
    }
    L->busy = false;
    pthread_cond_broadcast(&L->cv);
  }
  pthread_mutex_unlock(&L->mu);
  return NULL;
}

void sn_loader_free(loader *L) {
  if (L->threaded) {
    pthread_mutex_lock(&L->mu);
    L->quit = true;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
    L->threaded = false;
  }
  for (int i = 0; i < 2; i++) {
    free(L->slots[i].x);
    free(L->slots[i].y);
    free(L->slots[i].t);
  }
  memset(L->slots, 0, sizeof L->slots);
}

/* Slots for `cap` rows; a thread when `threaded`. */
int sn_loader_init(loader *L, const sn_model *m, int64_t cap, bool threaded, sn_error *err) {
  memset(L, 0, sizeof *L);
  L->m = m;
  const size_t es = dtype_bytes(m);
  const int64_t T = m->target_elems > 0 ? m->target_elems : 0;
  for (int i = 0; i < (threaded ? 2 : 1); i++) { /* staged on this thread: one slot */
    L->slots[i].x = malloc((size_t)cap * (size_t)m->input_elems * es);
    L->slots[i].y = malloc((size_t)cap * (size_t)model_labels(m) * sizeof(int32_t));
    L->slots[i].t = T ? malloc((size_t)cap * (size_t)T * es) : NULL;
    if (!L->slots[i].x || !L->slots[i].y || (T && !L->slots[i].t)) {
      sn_loader_free(L);
      return sn_fail(err, "out of memory for the batch buffers (%lld samples of %lld elements)",
                     (long long)cap, (long long)m->input_elems);
    }
  }
  if (threaded) {
    if (pthread_mutex_init(&L->mu, NULL) || pthread_cond_init(&L->cv, NULL)) {
      sn_loader_free(L);
      return sn_fail(err, "cannot set up the batch loader thread");
    }
    int e = pthread_create(&L->thread, NULL, loader_thread, L);
    if (e) {
      pthread_cond_destroy(&L->cv);
      pthread_mutex_destroy(&L->mu);
      sn_loader_free(L);
      return sn_fail(err, "cannot start the batch loader thread: %s", strerror(e));
    }
    L->threaded = true;
  }
  return 0;
}

/* Starts a job: the batches of bs rows of ds in the order idx (NULL: in order), of each
 * batch the shard `shard` of `shards`. */
void sn_loader_start(loader *L, const sn_dataset *ds, const int64_t *idx, int64_t bs, int shard,
                     int shards) {
  if (L->threaded) {
    pthread_mutex_lock(&L->mu);
    while (L->busy) { /* a job left unfinished (not in normal use): stop it first */
      L->abort = true;
      pthread_cond_broadcast(&L->cv);
      pthread_cond_wait(&L->cv, &L->mu);
    }
    L->abort = false;
  }
  L->ds = ds;
  L->idx = idx;
  L->bs = bs;
  L->shard = shard;
  L->shards = shards;
  L->n_batches = (ds->n + bs - 1) / bs;
  L->waited = 0;
  if (L->threaded) {
    atomic_store(&L->produced, 0);
    atomic_store(&L->consumed, 0);
    L->job++;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
  }
}

const staged *sn_loader_get(loader *L, int64_t b) {
  double t0 = sn_now();
  /* staged here, the batch goes to the same slot each time: a second one would
   * only add its size to what each step passes through the caches */
  slot *s = &L->slots[L->threaded ? b % 2 : 0];
  if (L->threaded) {
    if (!spin_above(&L->produced, b)) {
      pthread_mutex_lock(&L->mu);
      while (atomic_load(&L->produced) <= b) sleep_on(L);
      pthread_mutex_unlock(&L->mu);
    }
  } else {
    int64_t start, rows;
    job_rows(L, b, &start, &rows);
    if (b == 0) prefetch_batch(L, 0);
    stage(L->m, L->ds, L->idx, start, rows, s, true);
    prefetch_batch(L, b + 1); /* in the caches by the next step */
  }
  L->waited += sn_now() - t0;
  return &s->b;
}

void sn_loader_put(loader *L, int64_t b) {
  if (!L->threaded) return;
  atomic_store(&L->consumed, b + 1);
  wake_sleepers(L, false);
}
