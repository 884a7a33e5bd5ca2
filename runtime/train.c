/* The training and evaluation loops: epochs of shuffled batches through the
 * generated step functions, the learning-rate schedule, early stopping, per-epoch
 * loss and metrics, the progress line, the summary line and the run's records
 * (metrics.jsonl, metrics.csv, curves.svg through report.c).
 *
 * With a comm (specnet/runtime.h: sn_comm) the loop is one rank of a data-parallel job:
 * see "Data parallelism" below. After every epoch rank 0 writes a checkpoint and the
 * training state that resuming continues from (dist.c).
 *
 * Not here: the maths (generated code does forward, backward and the optimizer
 * update), checkpoints (safetensors.c), the file formats of the records (report.c),
 * MPI (the specnet command's cli/dist.c implements sn_comm with it).
 *
 * Letters: n = samples in a data set, B = rows in one batch (the last batch of an
 * epoch may be partial), E = input_elems per sample, T = target_elems per sample,
 * L = int labels per sample (label_elems, at least 1), K = n_metrics.
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
 * sn_dataset_get (data_store.c), on the loader thread.
 *
 * Memory: sn_train allocates everything before the first epoch (staging slots, the
 * shuffle index, the early-stopping snapshot, the epoch records); nothing is
 * allocated per batch. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "report.h"
#include "specnet/runtime.h"

enum { MAX_METRICS = 8 };
#define SN_PI 3.14159265358979323846

static size_t dtype_bytes(const sn_model *m) {
  return m->dtype == SN_RT_F64 ? sizeof(double) : sizeof(float);
}

/* L: int labels per sample of a model or a set (0 stands for 1) */
static int64_t model_labels(const sn_model *m) { return m->label_elems > 0 ? m->label_elems : 1; }
static int64_t set_labels(const sn_dataset *ds) {
  return ds->label_elems > 0 ? ds->label_elems : 1;
}

double sn_metric_value(const char *name, double mean) {
  return strcmp(name, "perplexity") == 0 ? exp(mean) : mean;
}

/* ---------------------------------------------------------------------------
 * Staging a batch */

/* What a step reads: pointers into a staging slot or straight into the data set. */
typedef struct staged {
  const void *x;    /* (B, E) model dtype */
  const int32_t *y; /* (B, L), or NULL when the set has no labels */
  const void *t;    /* (B, T) model dtype, or NULL when the model reads none */
  int64_t rows;     /* B */
} staged;

typedef struct slot {
  void *x;    /* (cap, E) model dtype */
  int32_t *y; /* (cap, L) */
  void *t;    /* (cap, T) model dtype, when T > 0 */
  staged b;
} slot;

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
    if (par && rows * E >= 16384) sn_par_for(gather_rows, &g, rows, 8);
    else gather_rows(&g, 0, rows);
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
 * for batch b (loader_get) and hands it back when its step is done (loader_put). */

typedef struct loader {
  const sn_model *m;
  slot slots[2];
  /* the job */
  const sn_dataset *ds;
  const int64_t *idx;
  int64_t bs, n_batches;
  int64_t shard, shards; /* this rank takes rows [g shard/shards, g (shard+1)/shards) of
                          * each batch of g rows (data-parallel); 0, 1: all of them */
  double waited; /* seconds the consumer waited for batches in this job */
  /* the background thread; everything below is under mu */
  bool threaded;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t job;     /* bumped by each loader_start */
  int64_t produced; /* batches of the job staged */
  int64_t consumed; /* batches of the job handed back */
  bool busy;        /* the thread is working on a job */
  bool abort;       /* stop the current job */
  bool quit;        /* end the thread */
} loader;

/* Batch b of the job: the global batch is rows [b bs, b bs + g) of the order, the last
 * one partial; this loader's shard of it starts at *start and has *rows (maybe 0). */
static void job_rows(const loader *L, int64_t b, int64_t *start, int64_t *rows) {
  const int64_t first = b * L->bs;
  const int64_t g = L->ds->n - first < L->bs ? L->ds->n - first : L->bs;
  const int64_t lo = g * L->shard / L->shards, hi = g * (L->shard + 1) / L->shards;
  *start = first + lo;
  *rows = hi - lo;
}

static void *loader_thread(void *arg) {
  loader *L = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&L->mu);
  for (;;) {
    while (!L->quit && L->job == seen) pthread_cond_wait(&L->cv, &L->mu);
    if (L->quit) break;
    seen = L->job;
    L->busy = true;
    for (int64_t b = 0; b < L->n_batches; b++) {
      /* slot b % 2 is free once batch b - 2 is handed back */
      while (!L->quit && !L->abort && b - L->consumed >= 2) pthread_cond_wait(&L->cv, &L->mu);
      if (L->quit || L->abort) break;
      int64_t start, rows;
      job_rows(L, b, &start, &rows);
      pthread_mutex_unlock(&L->mu);
      stage(L->m, L->ds, L->idx, start, rows, &L->slots[b % 2], false);
      pthread_mutex_lock(&L->mu);
      L->produced = b + 1;
      pthread_cond_broadcast(&L->cv);
    }
    L->busy = false;
    pthread_cond_broadcast(&L->cv);
  }
  pthread_mutex_unlock(&L->mu);
  return NULL;
}

static void loader_free(loader *L) {
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
static int loader_init(loader *L, const sn_model *m, int64_t cap, bool threaded, sn_error *err) {
  memset(L, 0, sizeof *L);
  L->m = m;
  const size_t es = dtype_bytes(m);
  const int64_t T = m->target_elems > 0 ? m->target_elems : 0;
  for (int i = 0; i < 2; i++) {
    L->slots[i].x = malloc((size_t)cap * (size_t)m->input_elems * es);
    L->slots[i].y = malloc((size_t)cap * (size_t)model_labels(m) * sizeof(int32_t));
    L->slots[i].t = T ? malloc((size_t)cap * (size_t)T * es) : NULL;
    if (!L->slots[i].x || !L->slots[i].y || (T && !L->slots[i].t)) {
      loader_free(L);
      return sn_fail(err, "out of memory for the batch buffers (%lld samples of %lld elements)",
                     (long long)cap, (long long)m->input_elems);
    }
  }
  if (threaded) {
    if (pthread_mutex_init(&L->mu, NULL) || pthread_cond_init(&L->cv, NULL)) {
      loader_free(L);
      return sn_fail(err, "cannot set up the batch loader thread");
    }
    int e = pthread_create(&L->thread, NULL, loader_thread, L);
    if (e) {
      pthread_cond_destroy(&L->cv);
      pthread_mutex_destroy(&L->mu);
      loader_free(L);
      return sn_fail(err, "cannot start the batch loader thread: %s", strerror(e));
    }
    L->threaded = true;
  }
  return 0;
}

/* Starts a job: the batches of bs rows of ds in the order idx (NULL: in order), of each
 * batch the shard `shard` of `shards`. */
static void loader_start(loader *L, const sn_dataset *ds, const int64_t *idx, int64_t bs,
                         int shard, int shards) {
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
    L->produced = L->consumed = 0;
    L->job++;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
  }
}

static const staged *loader_get(loader *L, int64_t b) {
  double t0 = sn_now();
  slot *s = &L->slots[b % 2];
  if (L->threaded) {
    pthread_mutex_lock(&L->mu);
    while (L->produced <= b) pthread_cond_wait(&L->cv, &L->mu);
    pthread_mutex_unlock(&L->mu);
  } else {
    int64_t start, rows;
    job_rows(L, b, &start, &rows);
    stage(L->m, L->ds, L->idx, start, rows, s, true);
  }
  L->waited += sn_now() - t0;
  return &s->b;
}

static void loader_put(loader *L, int64_t b) {
  if (!L->threaded) return;
  pthread_mutex_lock(&L->mu);
  L->consumed = b + 1;
  pthread_cond_broadcast(&L->cv);
  pthread_mutex_unlock(&L->mu);
}

/* ---------------------------------------------------------------------------
 * Checks shared by sn_evaluate, sn_predict_all and sn_train */

static int check_model(const sn_model *m, sn_error *err) {
  if (m->batch_capacity < 1)
    return sn_fail(err, "model batch capacity is %lld; it must be at least 1",
                   (long long)m->batch_capacity);
  if (m->input_elems < 1)
    return sn_fail(err, "model input has %lld elements per sample", (long long)m->input_elems);
  if (m->n_metrics < 0 || m->n_metrics > MAX_METRICS)
    return sn_fail(err, "model has %d metrics; at most %d are supported", m->n_metrics,
                   MAX_METRICS);
  if (m->param_count > 0 && !m->params)
    return sn_fail(err, "model buffers are not allocated (call sn_model_alloc first)");
  if (m->target_elems < 0)
    return sn_fail(err, "model target_elems is %lld", (long long)m->target_elems);
  return 0;
}

static const char *origin_of(const sn_dataset *ds) { return ds->origin[0] ? ds->origin : "memory"; }

/* targets: whether the set must carry what the loss reads (not for predict). */
static int check_dataset(const sn_model *m, const sn_dataset *ds, const char *what, bool targets,
                         sn_error *err) {
  if (ds->n < 1) return sn_fail(err, "%s set is empty", what);
  if (!ds->x && !ds->store) return sn_fail(err, "%s set has no samples loaded", what);
  if (sn_dataset_check(ds, err)) return -1;
  if (ds->sample_elems != m->input_elems)
    return sn_fail(err,
                   "%s set has %lld elements per sample (from %s) but the model input "
                   "has %lld",
                   what, (long long)ds->sample_elems, origin_of(ds), (long long)m->input_elems);
  if (!targets) return 0;
  if (m->target_elems > 0 && (!ds->t || ds->target_elems != m->target_elems))
    return sn_fail(err,
                   "%s set (from %s) has %lld float targets per sample, but the model's loss "
                   "reads %lld",
                   what, origin_of(ds), ds->t ? (long long)ds->target_elems : 0LL,
                   (long long)m->target_elems);
  if (m->target_elems == 0 && !ds->y)
    return sn_fail(err, "%s set (from %s) has no class labels, but the model's loss reads them",
                   what, origin_of(ds));
  if (m->target_elems == 0 && set_labels(ds) != model_labels(m))
    return sn_fail(err,
                   "%s set (from %s) has %lld labels per sample, but the model's loss reads %lld",
                   what, origin_of(ds), (long long)set_labels(ds), (long long)model_labels(m));
  return 0;
}

/* ---------------------------------------------------------------------------
 * Evaluation and prediction */


/* eval_step over ds in batches of batch_capacity, in the data set's order. With a
 * comm (size > 1) each rank evaluates its contiguous slice of ds and the sums are
 * added up, so every rank gets the result for the whole set. */
static int evaluate(sn_model *m, const sn_dataset *ds, loader *L, const sn_comm *C,
                    sn_eval_result *out, sn_error *err) {
  const int K = m->n_metrics;
  double t0 = sn_now();
  double loss_total = 0, metric_total[MAX_METRICS] = {0};
  if (sn_dataset_check(ds, err)) return -1;
  sn_dataset part = *ds;
  if (C) part = sn_dataset_rows(ds, ds->n * C->rank / C->size, ds->n * (C->rank + 1) / C->size);
  loader_start(L, &part, NULL, m->batch_capacity, 0, 1);
  for (int64_t b = 0; b < L->n_batches; b++) {
    const staged *bt = loader_get(L, b);
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    sn_step_args a = {
        .x = bt->x,
        .y = bt->y,
        .rows = bt->rows,
        .params = m->params,
        .grads = m->grads,
        .opt_state = m->opt_state,
        .arena = m->arena,
        .loss_sum = &loss_sum,
        .metric_sums = metric_sums,
        .t = bt->t,
        .state = m->state,
    };
    m->eval_step(&a);
    loader_put(L, b);
    loss_total += loss_sum;
    for (int k = 0; k < K; k++) metric_total[k] += metric_sums[k];
  }
  if (sn_dataset_check(ds, err)) return -1;
  if (C) {
    double sums[1 + MAX_METRICS];
    sums[0] = loss_total;
    for (int k = 0; k < K; k++) sums[1 + k] = metric_total[k];
    if (C->sum_f64(C->ctx, sums, 1 + K)) return sn_fail(err, "communication between ranks failed");
    loss_total = sums[0];
    for (int k = 0; k < K; k++) metric_total[k] = sums[1 + k];
  }
  memset(out, 0, sizeof *out);
  out->samples = ds->n;
  out->loss = loss_total / (double)ds->n;
  for (int k = 0; k < K; k++)
    out->metrics[k] = sn_metric_value(m->metric_names[k], metric_total[k] / (double)ds->n);
  out->seconds = sn_now() - t0;
  return 0;
}

int sn_evaluate(sn_model *m, const sn_dataset *ds, sn_eval_result *out, sn_error *err) {
  if (check_model(m, err) || check_dataset(m, ds, "evaluation", true, err)) return -1;
  if (!m->eval_step) return sn_fail(err, "model has no eval_step function");
  loader L;
  if (loader_init(&L, m, m->batch_capacity, !sn_dataset_direct(ds) || m->dtype != SN_RT_F32, err))
    return -1;
  int rc = evaluate(m, ds, &L, NULL, out, err);
  loader_free(&L);
  return rc;
}

int sn_predict_all(sn_model *m, const sn_dataset *ds, double *out, sn_error *err) {
  if (check_model(m, err) || check_dataset(m, ds, "input", false, err)) return -1;
  if (!m->predict) return sn_fail(err, "model has no predict function");
  if (m->output_elems < 1)
    return sn_fail(err, "model output has %lld elements per sample", (long long)m->output_elems);
  const int64_t O = m->output_elems;
  void *buf = malloc((size_t)m->batch_capacity * (size_t)O * dtype_bytes(m)); /* (cap, O) */
  loader L;
  if (!buf) return sn_fail(err, "out of memory for the output batch");
  if (loader_init(&L, m, m->batch_capacity, false, err)) {
    free(buf);
    return -1;
  }
  sn_dataset in = *ds; /* no targets: predict reads x only */
  in.y = NULL;
  in.t = NULL;
  loader_start(&L, &in, NULL, m->batch_capacity, 0, 1);
  for (int64_t b = 0; b < L.n_batches; b++) {
    const staged *bt = loader_get(&L, b);
    sn_step_args a = {
        .x = bt->x,
        .rows = bt->rows,
        .params = m->params,
        .grads = m->grads,
        .opt_state = m->opt_state,
        .arena = m->arena,
        .out = buf,
        .state = m->state,
    };
    m->predict(&a);
    double *o = out + b * m->batch_capacity * O;
    for (int64_t i = 0; i < bt->rows * O; i++)
      o[i] = m->dtype == SN_RT_F32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
  }
  loader_free(&L);
  free(buf);
  return 0;
}

/* ---------------------------------------------------------------------------
 * Learning-rate schedules
 *
 * Step s (1-based) of S = steps_per_epoch per epoch lies in epoch e = (s-1) / S
 * (0-based). base is train.optimizer's learning_rate.
 *   constant      base
 *   step          base * gamma^floor(e / every)         (per epoch, as PyTorch's StepLR)
 *   exponential   base * gamma^e                        (per epoch, as ExponentialLR)
 *   cosine        per step, W = round(warmup_epochs * S) warmup steps of N = epochs * S:
 *                 s <= W: base * s / W                  (linear, the first step > 0)
 *                 s >  W: base * (1 + cos(pi * (s - W - 1) / (N - W))) / 2
 *                 (the peak right after warmup, decaying towards 0 at the end of the
 *                 last step; the last step's rate is small but not 0). */
double sn_schedule_lr(const sn_schedule *s, double base, int64_t step, int64_t steps_per_epoch,
                      int epochs) {
  if (steps_per_epoch < 1) steps_per_epoch = 1;
  if (step < 1) step = 1;
  const int64_t e = (step - 1) / steps_per_epoch;
  switch (s->kind) {
  case SN_SCHED_CONSTANT:
    return base;
  case SN_SCHED_STEP:
    return base * pow(s->gamma, (double)(e / (s->every > 0 ? s->every : 1)));
  case SN_SCHED_EXPONENTIAL:
    return base * pow(s->gamma, (double)e);
  case SN_SCHED_COSINE: {
    const int64_t N = (int64_t)(epochs > 0 ? epochs : 1) * steps_per_epoch;
    int64_t W = (int64_t)llround(s->warmup_epochs * (double)steps_per_epoch);
    if (W < 0) W = 0;
    if (W > N) W = N;
    if (step <= W) return base * (double)step / (double)W;
    double p = N > W ? (double)(step - W - 1) / (double)(N - W) : 1.0;
    if (p > 1) p = 1;
    return base * 0.5 * (1.0 + cos(SN_PI * p));
  }
  }
  return base;
}

/* ---------------------------------------------------------------------------
 * Reporting (through opts->reporter; the library prints nothing) */

static void report_note(const sn_train_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_note(const sn_train_opts *o, const char *fmt, ...) {
  if (!o->reporter || !o->reporter->note || o->quiet) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  o->reporter->note(o->reporter->ctx, line);
}

static void batches_done(const sn_train_opts *o) {
  if (o->reporter && o->reporter->batches_done) o->reporter->batches_done(o->reporter->ctx);
}

/* ---------------------------------------------------------------------------
 * Early stopping */

typedef struct monitor {
  int set;       /* 0 training, 1 validation, 2 test */
  int metric;    /* -1 loss, else the metric index */
  bool maximize; /* as Keras's mode "auto": names with "acc" go up, the rest down */
} monitor;

static int resolve_monitor(const sn_model *m, const sn_early_stopping *es, bool has_val,
                           bool has_test, monitor *mon, sn_error *err) {
  const char *name = es->monitor[0] ? es->monitor : "val_loss";
  const char *rest = name;
  mon->set = 0;
  if (!strncmp(name, "val_", 4))
    mon->set = 1, rest = name + 4;
  else if (!strncmp(name, "test_", 5))
    mon->set = 2, rest = name + 5;
  mon->metric = -2;
  if (!strcmp(rest, "loss")) mon->metric = -1;
  for (int k = 0; k < m->n_metrics && mon->metric == -2; k++)
    if (!strcmp(rest, m->metric_names[k])) mon->metric = k;
  if (mon->metric == -2) {
    char known[512] = "loss, val_loss";
    size_t n = strlen(known);
    for (int k = 0; k < m->n_metrics && n < sizeof known; k++)
      n += (size_t)snprintf(known + n, sizeof known - n, ", %s, val_%s", m->metric_names[k],
                            m->metric_names[k]);
    return sn_fail(err, "early_stopping monitors '%s', which training does not report (known: %s)",
                   name, known);
  }
  if ((mon->set == 1 && !has_val) || (mon->set == 2 && !has_test))
    return sn_fail(err,
                   "early_stopping monitors '%s' but there is no %s set; hint: add "
                   "data.validation: {split: 0.1}, or monitor loss",
                   name, mon->set == 1 ? "validation" : "test");
  mon->maximize = strstr(rest, "acc") != NULL;
  return 0;
}

static double monitored(const monitor *mon, const sn_epoch_record *rec) {
  if (mon->set == 0) return mon->metric < 0 ? rec->loss : rec->metrics[mon->metric];
  const sn_eval_result *r = mon->set == 1 ? &rec->val : &rec->test;
  return mon->metric < 0 ? r->loss : r->metrics[mon->metric];
}

/* ---------------------------------------------------------------------------
 * Training */

static int check_train(const sn_model *m, const sn_dataset *train, const sn_dataset *val,
                       const sn_dataset *test, const sn_train_opts *o, sn_error *err) {
  if (check_model(m, err) || check_dataset(m, train, "training", true, err)) return -1;
  if (val && check_dataset(m, val, "validation", true, err)) return -1;
  if (test && check_dataset(m, test, "test", true, err)) return -1;
  if (!m->train_step && !(m->grad_step && m->update))
    return sn_fail(err, "model has no train_step (nor grad_step and update) function");
  if ((val || test) && !m->eval_step) return sn_fail(err, "model has no eval_step function");
  if (o->epochs < 0) return sn_fail(err, "epochs is %d; it must be 0 or more", o->epochs);
  if (o->batch_size < 1 || o->batch_size > m->batch_capacity)
    return sn_fail(err,
                   "batch_size is %lld; it must be between 1 and %lld (the compiled "
                   "batch capacity)",
                   (long long)o->batch_size, (long long)m->batch_capacity);
  for (int k = 0; k < m->n_metrics; k++)
    if (!m->metric_names || !m->metric_names[k])
      return sn_fail(err, "model metric %d has no name", k);
  const sn_schedule *s = &o->schedule;
  if ((s->kind == SN_SCHED_STEP || s->kind == SN_SCHED_EXPONENTIAL) && !(s->gamma > 0))
    return sn_fail(err, "schedule gamma is %g; it must be > 0", s->gamma);
  if (s->kind == SN_SCHED_STEP && s->every < 1)
    return sn_fail(err, "schedule every is %d; it must be >= 1", s->every);
  if (s->kind == SN_SCHED_COSINE && !(s->warmup_epochs >= 0))
    return sn_fail(err, "schedule warmup_epochs is %g; it must be >= 0", s->warmup_epochs);
  if (o->early.enabled && (o->early.patience < 0 || !(o->early.min_delta >= 0)))
    return sn_fail(err, "early_stopping needs patience >= 0 and min_delta >= 0");
  return 0;
}

/* ---------------------------------------------------------------------------
 * Data parallelism (docs/distributed.md)
 *
 * With a comm of N > 1 ranks every rank runs this loop on the same model, data and
 * options. Each global batch of g rows (the same shuffled order on every rank: the
 * shuffle depends on the seed and the epoch only) is cut into N shards, rank r taking
 * rows [g r/N, g (r+1)/N): shards differ by at most one row, and a rank may get none
 * of a small last batch. grad_step returns the gradient of the mean loss over its
 * shard; weighting it by rows_r / g and summing over the ranks gives the gradient of
 * the mean over the global batch, the one a single process computes. Then every rank
 * runs the same update on the same summed gradient, so the weights stay identical.
 * The loss and metric sums of each step and of evaluation are summed too, so every
 * rank reports the numbers of the whole batch and set. State buffers (batch-norm
 * running statistics) are updated by each rank from its shard, then replaced by the
 * row-weighted average over the ranks (the plain mean when shards are equal). */

static void scale_buf(const sn_model *m, void *buf, int64_t count, double w) {
  if (w == 1.0) return;
  if (m->dtype == SN_RT_F64) {
    double *p = buf;
    for (int64_t i = 0; i < count; i++) p[i] *= w;
  } else {
    float *p = buf;
    const float fw = (float)w;
    for (int64_t i = 0; i < count; i++) p[i] *= fw;
  }
}

static int sum_buf(const sn_comm *C, const sn_model *m, void *buf, int64_t count) {
  return m->dtype == SN_RT_F64 ? C->sum_f64(C->ctx, buf, count) : C->sum_f32(C->ctx, buf, count);
}

static int comm_failed(sn_error *err) {
  return sn_fail(err, "communication between ranks failed");
}

/* Whether any rank failed (local != 0 on that rank): a collective. 0 when none did; a
 * failed rank keeps its own message, the others get one naming the first that failed. */
static int agree(const sn_comm *C, int local, sn_error *err) {
  if (!C) return local;
  int first = sn_comm_first_failed(C, local != 0);
  if (first == -1) return 0;
  if (first == -2) return comm_failed(err);
  if (local) return -1;
  return sn_fail(err, "stopped because rank %d of %d failed (its error is above)", first, C->size);
}

/* ---------------------------------------------------------------------------
 * One epoch */

/* Runs one epoch of training batches; fills rec's loss, metrics, lr and seconds.
 * `step` is the global optimizer step, advanced once per batch. */
static int train_epoch(sn_model *m, const sn_dataset *ds, const sn_train_opts *o,
                       const sn_comm *C, int epoch, int64_t *idx, loader *L, int64_t *step,
                       sn_epoch_record *rec, sn_error *err) {
  const int K = m->n_metrics;
  const int64_t n = ds->n, bs = o->batch_size;
  const int64_t batches = (n + bs - 1) / bs;
  const bool progress = o->progress && o->reporter && o->reporter->batch && (!C || C->rank == 0);
  /* rank 0 draws dropout masks as one process would; the others from their own seeds */
  const uint64_t seed =
      C && C->rank > 0 ? o->seed ^ sn_rand_u64(o->seed, SN_STREAM_RANK, (uint64_t)C->rank)
                       : o->seed;
  double t0 = sn_now(), next_draw = t0;
  if (sn_dataset_check(ds, err)) return -1; /* the file changed since the last epoch */
  if (idx) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    sn_shuffle_blocks(idx, n, o->shuffle_block, o->seed, (uint64_t)epoch);
  }
  /* the loader stages nothing between jobs, so the samples may change here */
  if (ds->epoch_fill) ds->epoch_fill(ds, epoch);
  loader_start(L, ds, idx, bs, C ? C->rank : 0, C ? C->size : 1);
  double batch_mean_total = 0, metric_total[MAX_METRICS] = {0};
  for (int64_t b = 0; b < batches; b++) {
    const staged *bt = loader_get(L, b);
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    ++*step;
    rec->lr = sn_schedule_lr(&o->schedule, o->learning_rate, *step, batches, o->epochs);
    sn_step_args a = {
        .x = bt->x,
        .y = bt->y,
        .rows = bt->rows,
        .params = m->params,
        .grads = m->grads,
        .opt_state = m->opt_state,
        .arena = m->arena,
        .step = *step,
        .lr = rec->lr,
        .seed = seed,
        .loss_sum = &loss_sum,
        .metric_sums = metric_sums,
        .t = bt->t,
        .state = m->state,
    };
    int64_t rows = bt->rows;
    if (!C) {
      if (m->train_step) {
        m->train_step(&a);
      } else {
        m->grad_step(&a);
        m->update(&a);
      }
      loader_put(L, b);
    } else {
      const int64_t global = n - b * bs < bs ? n - b * bs : bs;
      const double w = (double)rows / (double)global;
      if (rows > 0) {
        m->grad_step(&a);
        scale_buf(m, m->grads, m->param_count, w);
      } else { /* no rows of this batch here: no gradient, no statistics */
        memset(m->grads, 0, (size_t)m->param_count * dtype_bytes(m));
      }
      loader_put(L, b);
      const bool own_finite = isfinite(loss_sum);
      double sums[2 + MAX_METRICS];
      sums[0] = loss_sum;
      for (int k = 0; k < K; k++) sums[1 + k] = metric_sums[k];
      sums[1 + K] = !own_finite; /* ranks whose loss is not finite */
      if (C->sum_f64(C->ctx, sums, 2 + K)) return comm_failed(err);
      loss_sum = sums[0];
      for (int k = 0; k < K; k++) metric_sums[k] = sums[1 + k];
      if (sums[1 + K] > 0 || !isfinite(loss_sum)) {
        /* Every rank sees the same sums, so all stop here, before the update (the
         * weights stay those of the last good step); name the first bad rank. */
        int bad = sn_comm_first_failed(C, !own_finite);
        if (bad == -2) return comm_failed(err);
        if (progress) batches_done(o);
        char where[64] = "";
        if (bad >= 0) snprintf(where, sizeof where, " on rank %d of %d", bad, C->size);
        return sn_fail(err, "loss is %s at epoch %d step %lld%s; try a lower learning_rate",
                       isnan(loss_sum) ? "nan" : "inf", epoch, (long long)*step, where);
      }
      if (sum_buf(C, m, m->grads, m->param_count)) return comm_failed(err);
      a.rows = global;
      m->update(&a);
      if (m->state_count > 0) {
        scale_buf(m, m->state, m->state_count, w);
        if (sum_buf(C, m, m->state, m->state_count)) return comm_failed(err);
      }
      rows = global;
    }
    if (!isfinite(loss_sum)) {
      if (progress) batches_done(o);
      return sn_fail(err, "loss is %s at epoch %d step %lld; try a lower learning_rate",
                     isnan(loss_sum) ? "nan" : "inf", epoch, (long long)*step);
    }
    batch_mean_total += loss_sum / (double)rows;
    for (int k = 0; k < K; k++) metric_total[k] += metric_sums[k];
    if (progress) {
      double now = sn_now();
      if (now >= next_draw || b + 1 == batches) {
        sn_batch_progress p = {epoch, o->epochs, b + 1, batches, b * bs + rows,
                               batch_mean_total / (double)(b + 1), metric_total, now - t0};
        o->reporter->batch(o->reporter->ctx, m, &p);
        next_draw = now + 0.1;
      }
    }
  }
  rec->seconds = sn_now() - t0;
  rec->data_wait_seconds = L->waited;
  if (progress) batches_done(o);
  if (sn_dataset_check(ds, err)) return -1; /* a sample read short: the epoch is void */
  rec->loss = batch_mean_total / (double)batches;
  for (int k = 0; k < K; k++)
    rec->metrics[k] = sn_metric_value(m->metric_names[k], metric_total[k] / (double)n);
  rec->samples_per_second = rec->seconds > 0 ? (double)n / rec->seconds : 0;
  return 0;
}

/* ---------------------------------------------------------------------------
 * Record files */

/* Opens one record file (mode "w" or "a"); NULL path: nothing to do. */
static int open_record(const char *path, const char *mode, FILE **f, sn_error *err) {
  *f = NULL;
  if (!path) return 0;
  *f = fopen(path, mode);
  if (!*f) return sn_fail(err, "cannot write %s: %s", path, strerror(errno));
  return 0;
}

/* Resuming: keeps the first `keep` lines of path (the epochs the training state
 * holds; a run stopped after writing a line but before its checkpoint wrote one line
 * too many), atomically. *lines: the lines kept (a missing file has none). */
static int keep_lines(const char *path, int64_t keep, int64_t *lines, sn_error *err) {
  *lines = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : sn_fail(err, "cannot read %s: %s", path, strerror(errno));
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap * 2 + 65536;
      char *t = realloc(text, cap);
      if (!t) {
        free(text);
        fclose(f);
        return sn_fail(err, "out of memory reading %s", path);
      }
      text = t;
    }
    size_t k = fread(text + len, 1, cap - len, f);
    len += k;
    if (k == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(text);
    return sn_fail(err, "cannot read %s", path);
  }
  size_t end = 0;
  while (end < len && *lines < keep) {
    const char *nl = memchr(text + end, '\n', len - end);
    if (!nl) break; /* an unfinished last line is dropped */
    end = (size_t)(nl - text) + 1;
    ++*lines;
  }
  int rc = 0;
  if (end < len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o || fwrite(text, 1, end, o) != end || fclose(o) != 0 || rename(tmp, path) != 0) {
      rc = sn_fail(err, "cannot rewrite %s: %s", path, strerror(errno));
      unlink(tmp);
    }
  }
  free(text);
  return rc;
}

/* Rank 0: the record files, emptied (or, resuming, kept up to the epochs done). */
static int open_records(sn_model *m, const sn_train_opts *o, bool has_val, bool has_test,
                        int epochs_done, FILE **jsonl, FILE **csv, sn_error *err) {
  int64_t lines = 0;
  const bool append = o->resume;
  if (append && o->metrics_path && keep_lines(o->metrics_path, epochs_done, &lines, err)) return -1;
  if (open_record(o->metrics_path, append ? "a" : "w", jsonl, err)) return -1;
  if (append && o->csv_path && keep_lines(o->csv_path, (int64_t)epochs_done + 1, &lines, err))
    return -1;
  if (open_record(o->csv_path, append ? "a" : "w", csv, err)) return -1;
  if (*csv && lines == 0 && sn_report_csv_header(*csv, o->csv_path, m, has_val, has_test, err))
    return -1;
  return 0;
}

/* Rank 0, after an epoch (and at the end): the weights, then what --resume needs. */
static int write_checkpoint(const sn_model *m, const sn_train_opts *o, int64_t train_n,
                            const sn_run_state *st, const sn_epoch_record *recs,
                            const void *best_params, const void *best_state, sn_error *err) {
  if (o->checkpoint_path && sn_safetensors_write(o->checkpoint_path, m, err)) return -1;
  if (o->checkpoint_path && o->state_path &&
      sn_run_state_write(o->state_path, m, o, train_n, st, recs, best_params, best_state, err))
    return -1;
  return 0;
}

/* ---------------------------------------------------------------------------
 * Training */

/* Resuming with several ranks: rank 0 read the files; everyone gets what it read. */
static int share_resumed(const sn_comm *C, sn_model *m, sn_run_state *st, sn_epoch_record **recs,
                         int *recs_cap, int epochs, void *best_params, void *best_state,
                         bool *has_best, sn_error *err) {
  if (C->bcast(C->ctx, st, (int64_t)sizeof *st, 0)) return comm_failed(err);
  int local = 0;
  if (C->rank != 0 && st->epochs_done >= *recs_cap) {
    int cap = (st->epochs_done > epochs ? st->epochs_done : epochs) + 1;
    sn_epoch_record *r = calloc((size_t)cap, sizeof *r);
    if (!r) {
      local = sn_fail(err, "out of memory for the epoch records");
    } else {
      free(*recs);
      *recs = r;
      *recs_cap = cap;
    }
  }
  if (agree(C, local, err)) return -1;
  const size_t es = dtype_bytes(m);
  bool hb = *has_best;
  if (C->bcast(C->ctx, *recs, (int64_t)(sizeof **recs * (size_t)st->epochs_done), 0) ||
      C->bcast(C->ctx, m->params, m->param_count * (int64_t)es, 0) ||
      (m->state_count > 0 && C->bcast(C->ctx, m->state, m->state_count * (int64_t)es, 0)) ||
      C->bcast(C->ctx, m->opt_state, m->opt_state_count * (int64_t)es, 0) ||
      C->bcast(C->ctx, &hb, (int64_t)sizeof hb, 0))
    return comm_failed(err);
  *has_best = hb;
  if (hb && best_params &&
      (C->bcast(C->ctx, best_params, m->param_count * (int64_t)es, 0) ||
       (m->state_count > 0 && C->bcast(C->ctx, best_state, m->state_count * (int64_t)es, 0))))
    return comm_failed(err);
  return 0;
}

/* After each epoch: the ranks run the same update on the same gradients, so their
 * weights stay equal bit for bit, unless their CPUs round differently (each host's
 * JIT compiles for its own CPU: FMA contraction, vector width). Then rank 0's weights,
 * state and optimizer state go to every rank, and *drifted says so. */
static int resync(const sn_comm *C, sn_model *m, bool *drifted, sn_error *err) {
  const uint64_t h = sn_weights_hash(m);
  const double v[2] = {(double)(h >> 32), (double)(h & 0xffffffffu)};
  int differs;
  if (sn_dist_same(C, v, 2, &differs, err)) return -1;
  if (differs < 0) return 0;
  const int64_t es = (int64_t)dtype_bytes(m);
  if (C->bcast(C->ctx, m->params, m->param_count * es, 0) ||
      (m->state_count > 0 && C->bcast(C->ctx, m->state, m->state_count * es, 0)) ||
      C->bcast(C->ctx, m->opt_state, m->opt_state_count * es, 0))
    return comm_failed(err);
  *drifted = true;
  return 0;
}

/* Several ranks: they must hold the same weights, data sizes and options, or the
 * shards and the summed gradients mean nothing. */
static int check_same(const sn_comm *C, const sn_model *m, const sn_dataset *train,
                      const sn_dataset *val, const sn_dataset *test, const sn_train_opts *o,
                      const sn_run_state *st, sn_error *err) {
  static const char *const what[] = {
      "the initial weights (their checksums differ)", "the initial weights (their checksums differ)",
      "the training set size", "the validation set size", "the test set size", "batch_size",
      "epochs", "seed", "seed", "the model (parameter count)", "the model (state count)",
      "the model (optimizer state count)", "shuffle", "shuffle's block", "the epochs done (resume)",
      "the optimizer step (resume)", "the learning rate", "the model dtype"};
  const uint64_t h = sn_weights_hash(m);
  const double v[] = {(double)(h >> 32), (double)(h & 0xffffffffu), (double)train->n,
                      val ? (double)val->n : -1, test ? (double)test->n : -1,
                      (double)o->batch_size, o->epochs, (double)(o->seed >> 32),
                      (double)(o->seed & 0xffffffffu), (double)m->param_count,
                      (double)m->state_count, (double)m->opt_state_count, o->shuffle,
                      (double)o->shuffle_block, st->epochs_done, (double)st->step, o->learning_rate, m->dtype};
  _Static_assert(sizeof v / sizeof *v == sizeof what / sizeof *what, "one name per value");
  int differs;
  if (sn_dist_same(C, v, (int)(sizeof v / sizeof *v), &differs, err)) return -1;
  if (differs >= 0)
    return sn_fail(err,
                   "the %d ranks disagree on %s; every rank must run the same spec, seed, data "
                   "and --weights",
                   C->size, what[differs]);
  return 0;
}

int sn_train(sn_model *m, const sn_dataset *train, const sn_dataset *val, const sn_dataset *test,
             const sn_train_opts *opts, sn_error *err) {
  if (opts->result) memset(opts->result, 0, sizeof *opts->result);
  const sn_comm *C = opts->comm && opts->comm->size > 1 ? opts->comm : NULL;
  const bool lead = !C || C->rank == 0; /* writes the records and checkpoints, prints */
  const sn_early_stopping *es = &opts->early;
  monitor mon = {0};

  int rc = -1, local = 0;
  FILE *jsonl = NULL, *csv = NULL;
  int64_t *idx = NULL;
  void *best_params = NULL, *best_state = NULL;
  sn_epoch_record *recs = NULL;
  int recs_cap = opts->epochs + 1;
  sn_run_state st = {.best = NAN};
  bool has_best = false;
  loader L;
  bool have_loader = false;
  const size_t es_bytes = dtype_bytes(m);
  const bool snapshot = es->enabled && es->restore_best;

  /* Everything that can fail on one rank alone comes first; then the ranks agree. */
  local = check_train(m, train, val, test, opts, err);
  if (!local && C && !(m->grad_step && m->update))
    local = sn_fail(err, "data-parallel training needs the model's grad_step and update "
                         "functions (gradients are summed between them)");
  if (!local && C && (!C->sum_f32 || !C->sum_f64 || !C->max_f64 || !C->bcast ||
                      C->rank < 0 || C->rank >= C->size))
    local = sn_fail(err, "the comm given to sn_train is incomplete (rank %d of %d)", C->rank,
                    C->size);
  if (!local && opts->resume && !(opts->checkpoint_path && opts->state_path))
    local = sn_fail(err, "resuming needs checkpoint_path and state_path");
  if (!local && es->enabled)
    local = resolve_monitor(m, es, val != NULL, test != NULL, &mon, err);
  /* One pair of slots serves training (batch_size rows) and evaluation
   * (batch_capacity rows, at least as many). */
  if (!local) {
    /* A loader thread beside a pool that has every core would take turns with the
     * pool's threads mid-step: then the pool stages each batch itself. */
    local = loader_init(&L, m, m->batch_capacity, !opts->no_prefetch && sn_threads() < sn_cpus(), err);
    have_loader = !local;
  }
  if (!local) {
    if (opts->shuffle) idx = malloc((size_t)train->n * sizeof(int64_t));
    if (snapshot) {
      best_params = malloc((size_t)m->param_count * es_bytes + 1);
      best_state = malloc((size_t)m->state_count * es_bytes + 1);
    }
    recs = calloc((size_t)recs_cap, sizeof *recs);
    if ((opts->shuffle && !idx) || (snapshot && (!best_params || !best_state)) || !recs)
      local = sn_fail(err, "out of memory for the training buffers (%lld samples)",
                      (long long)train->n);
  }
  if (agree(C, local, err)) goto done;
  /* Then rank 0 reads what it resumes from, and shares it; the ranks check that they
   * hold the same weights; rank 0 opens the record files. */
  if (opts->resume) {
    if (lead) {
      local = sn_run_state_read(opts->state_path, opts->checkpoint_path, m, opts, train->n, &st,
                                &recs, opts->epochs, best_params, best_state, &has_best, err);
      if (!local && st.epochs_done >= recs_cap) recs_cap = st.epochs_done + 1;
    }
    if (agree(C, local, err)) goto done;
    if (C && share_resumed(C, m, &st, &recs, &recs_cap, opts->epochs, best_params, best_state,
                           &has_best, err))
      goto done;
  }
  if (C && check_same(C, m, train, val, test, opts, &st, err)) goto done;
  if (lead)
    local = open_records(m, opts, val != NULL, test != NULL, st.epochs_done, &jsonl, &csv, err);
  if (agree(C, local, err)) goto done;

  const int done_before = st.epochs_done;
  const bool show_lr = opts->schedule.kind != SN_SCHED_CONSTANT;
  double last_svg = -1e300;
  bool drift_noted = false;
  if (opts->resume && lead) {
    char why[96] = "";
    if (st.stopped) snprintf(why, sizeof why, ": early stopping had ended the run; nothing left to train");
    else if (done_before >= opts->epochs) snprintf(why, sizeof why, ": all %d epochs are done", opts->epochs);
    report_note(opts, "resuming after epoch %d (step %lld)%s", done_before, (long long)st.step, why);
  }
  for (int epoch = done_before + 1; epoch <= opts->epochs && !st.stopped; epoch++) {
    sn_epoch_record rec = {.epoch = epoch, .lr = opts->learning_rate};
    if (train_epoch(m, train, opts, C, epoch, idx, &L, &st.step, &rec, err)) goto done;
    bool drifted = false;
    if (C && resync(C, m, &drifted, err)) goto done;
    if (drifted && lead && !drift_noted) {
      report_note(opts,
                  "note: the ranks' weights drifted apart in epoch %d (CPUs that round differently?); "
                  "rank 0's now hold on every rank, after each epoch",
                  epoch);
      drift_noted = true;
    }

    double t0 = sn_now();
    if (val) {
      if (evaluate(m, val, &L, C, &rec.val, err)) goto done;
      rec.has_val = true;
    }
    if (test) {
      if (evaluate(m, test, &L, C, &rec.test, err)) goto done;
      rec.has_test = true;
    }
    rec.eval_seconds = sn_now() - t0;
    recs[st.epochs_done++] = rec;

    if (es->enabled) {
      double v = monitored(&mon, &rec);
      bool better = isfinite(v) && (st.best_epoch == 0 || (mon.maximize ? v > st.best + es->min_delta
                                                                       : v < st.best - es->min_delta));
      if (better) {
        st.best = v;
        st.best_epoch = epoch;
        st.wait = 0;
        if (snapshot) {
          memcpy(best_params, m->params, (size_t)m->param_count * es_bytes);
          if (m->state_count > 0) memcpy(best_state, m->state, (size_t)m->state_count * es_bytes);
          has_best = true;
        }
      } else if (++st.wait >= es->patience) { /* as Keras: patience epochs without improvement */
        st.stopped = epoch < opts->epochs;
      }
    }

    if (lead) {
      if (!opts->quiet && opts->reporter && opts->reporter->epoch)
        opts->reporter->epoch(opts->reporter->ctx, m, opts->epochs, &rec, show_lr);
      local = (jsonl && sn_report_jsonl(jsonl, opts->metrics_path, m, &rec, err)) ||
              (csv && sn_report_csv(csv, opts->csv_path, m, &rec, err));
      if (!local && opts->curves_path &&
          (sn_now() - last_svg > 2.0 || epoch == opts->epochs || st.stopped)) {
        local = sn_curves_svg(opts->curves_path, opts->title, recs, st.epochs_done, m->n_metrics,
                              m->metric_names, es->enabled ? st.best_epoch : 0, err);
        last_svg = sn_now();
      }
      if (!local)
        local = write_checkpoint(m, opts, train->n, &st, recs, has_best ? best_params : NULL,
                                 best_state, err);
    }
    if (agree(C, local, err)) goto done;
    if (opts->on_epoch) opts->on_epoch(&rec, opts->on_epoch_ctx);
  }

  bool restored = false;
  if (snapshot && has_best && st.best_epoch > 0 && st.best_epoch != st.epochs_done &&
      st.epochs_done > done_before) {
    memcpy(m->params, best_params, (size_t)m->param_count * es_bytes);
    if (m->state_count > 0) memcpy(m->state, best_state, (size_t)m->state_count * es_bytes);
    restored = true;
    /* the checkpoint holds the weights the run ends with */
    local = lead ? write_checkpoint(m, opts, train->n, &st, recs, best_params, best_state, err) : 0;
    if (agree(C, local, err)) goto done;
  }
  if (lead && es->enabled && st.best_epoch > 0 && st.epochs_done > done_before) {
    const char *name = es->monitor[0] ? es->monitor : "val_loss";
    char how[160], kept[80] = "";
    if (st.stopped)
      snprintf(how, sizeof how, "%s did not improve for %d epoch%s; stopped after epoch %d of %d", name, st.wait,
               st.wait == 1 ? "" : "s", st.epochs_done, opts->epochs);
    else
      snprintf(how, sizeof how, "ran all %d epochs", st.epochs_done);
    if (restored) snprintf(kept, sizeof kept, "; restored the weights of epoch %d", st.best_epoch);
    else if (snapshot) snprintf(kept, sizeof kept, "; kept the last weights (they are the best)");
    report_note(opts, "early stopping: %s; best %s %.4f at epoch %d%s", how, name, st.best, st.best_epoch, kept);
  }
  if (opts->result) {
    opts->result->epochs_run = st.epochs_done;
    opts->result->stopped_early = st.stopped;
    opts->result->best_epoch = st.best_epoch;
    opts->result->best_value = st.best_epoch > 0 ? st.best : NAN;
    opts->result->restored = restored;
  }
  rc = 0;

done:
  if (rc && lead && opts->curves_path && recs && recs[0].epoch > 0) { /* what finished, for a look */
    sn_error ignored;
    int n = 0;
    while (n < recs_cap && recs[n].epoch > 0) n++;
    sn_curves_svg(opts->curves_path, opts->title, recs, n, m->n_metrics, m->metric_names, 0,
                  &ignored);
  }
  if (jsonl && fclose(jsonl) != 0 && rc == 0)
    rc = sn_fail(err, "cannot write %s: %s", opts->metrics_path, strerror(errno));
  if (csv && fclose(csv) != 0 && rc == 0)
    rc = sn_fail(err, "cannot write %s: %s", opts->csv_path, strerror(errno));
  if (have_loader) loader_free(&L);
  free(idx);
  free(best_params);
  free(best_state);
  free(recs);
  return rc;
}
