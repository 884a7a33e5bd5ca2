/* The training and evaluation loops: epochs of shuffled batches through the
 * generated step functions, the learning-rate schedule, early stopping, per-epoch
 * loss and metrics, the run's records (metrics.jsonl, metrics.csv, curves.svg
 * through report.c). Progress, epoch lines and notes go to opts->reporter: the
 * library prints nothing itself.
 *
 * With a comm (specnet/runtime.h: sn_comm) the loop is one rank of a data-parallel job:
 * see train_dist.c. After every epoch rank 0 writes a checkpoint and the
 * training state that resuming continues from (dist.c).
 *
 * Not here: the maths (generated code does forward, backward and the optimizer
 * update), staging batches (train_loader.c), the collectives of data parallelism
 * (train_dist.c), opening the record files and writing checkpoints (train_record.c,
 * safetensors.c), the file formats of the records (report.c), MPI (the specnet
 * command's cli/dist.c implements sn_comm with it).
 *
 * Letters: n = samples in a data set, B = rows in one batch (the last batch of an
 * epoch may be partial), E = input_elems per sample, T = target_elems per sample,
 * L = int labels per sample (label_elems, at least 1), K = n_metrics.
 *
 * Batches are staged by the loader (train_loader.c): a background thread
 * prefetches batch b+1 while the step runs on batch b.
 *
 * Memory: sn_train allocates everything before the first epoch (staging slots, the
 * shuffle index, the early-stopping snapshot, the epoch records); nothing is
 * allocated per batch. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_store.h"
#include "dist.h"
#include "report.h"
#include "train_impl.h"
#include "specnet/runtime.h"

#define SN_PI 3.14159265358979323846

double sn_metric_value(const char *name, double mean) {
  return strcmp(name, "perplexity") == 0 ? exp(mean) : mean;
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

/* A step's arguments for the staged batch bt over the model's buffers (the rest
 * zero: the caller sets what its step reads or writes). */
static inline sn_step_args batch_args(const sn_model *m, const staged *bt) {
  return (sn_step_args){.x = bt->x, .y = bt->y, .t = bt->t, .rows = bt->rows, .params = m->params,
                        .grads = m->grads, .opt_state = m->opt_state, .arena = m->arena,
                        .state = m->state};
}


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
  sn_loader_start(L, &part, NULL, m->batch_capacity, 0, 1);
  for (int64_t b = 0; b < L->n_batches; b++) {
    const staged *bt = sn_loader_get(L, b);
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    sn_step_args a = batch_args(m, bt);
    a.loss_sum = &loss_sum;
    a.metric_sums = metric_sums;
    m->eval_step(&a);
    sn_loader_put(L, b);
    loss_total += loss_sum;
    for (int k = 0; k < K; k++) metric_total[k] += metric_sums[k];
  }
  if (sn_dataset_check(ds, err)) return -1;
  if (C) {
    double sums[1 + MAX_METRICS];
    sums[0] = loss_total;
    for (int k = 0; k < K; k++) sums[1 + k] = metric_total[k];
    if (C->sum_f64(C->ctx, sums, 1 + K)) return sn_dist_comm_failed(err);
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
  if (sn_loader_init(&L, m, m->batch_capacity, !sn_dataset_direct(ds) || m->dtype != SN_RT_F32, err))
    return -1;
  int rc = evaluate(m, ds, &L, NULL, out, err);
  sn_loader_free(&L);
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
  if (sn_loader_init(&L, m, m->batch_capacity, false, err)) {
    free(buf);
    return -1;
  }
  sn_dataset in = *ds; /* no targets: predict reads x only */
  in.y = NULL;
  in.t = NULL;
  sn_loader_start(&L, &in, NULL, m->batch_capacity, 0, 1);
  for (int64_t b = 0; b < L.n_batches; b++) {
    const staged *bt = sn_loader_get(&L, b);
    sn_step_args a = batch_args(m, bt); /* y and t are NULL: the set has neither */
    a.out = buf;
    m->predict(&a);
    double *o = out + b * m->batch_capacity * O;
    for (int64_t i = 0; i < bt->rows * O; i++)
      o[i] = m->dtype == SN_RT_F32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
  }
  sn_loader_free(&L);
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
  sn_loader_start(L, ds, idx, bs, C ? C->rank : 0, C ? C->size : 1);
  double batch_mean_total = 0, metric_total[MAX_METRICS] = {0};
  for (int64_t b = 0; b < batches; b++) {
    const staged *bt = sn_loader_get(L, b);
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    ++*step;
    rec->lr = sn_schedule_lr(&o->schedule, o->learning_rate, *step, batches, o->epochs);
    sn_step_args a = batch_args(m, bt);
    a.step = *step;
    a.lr = rec->lr;
    a.seed = seed;
    a.loss_sum = &loss_sum;
    a.metric_sums = metric_sums;
    int64_t rows = bt->rows;
    if (!C) {
      if (m->train_step) {
        m->train_step(&a);
      } else {
        m->grad_step(&a);
        m->update(&a);
      }
      sn_loader_put(L, b);
    } else {
      const int64_t global = n - b * bs < bs ? n - b * bs : bs;
      const double w = (double)rows / (double)global;
      sn_dist_grad(m, &a, w);
      sn_loader_put(L, b);
      bool stop = false;
      int bad = -1;
      if (sn_dist_sum_losses(C, K, &a, &stop, &bad, err)) return -1;
      if (stop) {
        if (progress) batches_done(o);
        char where[64] = "";
        if (bad >= 0) snprintf(where, sizeof where, " on rank %d of %d", bad, C->size);
        return sn_fail(err, "loss is %s at epoch %d step %lld%s; try a lower learning_rate",
                       isnan(loss_sum) ? "nan" : "inf", epoch, (long long)*step, where);
      }
      if (sn_dist_update(C, m, &a, global, w, err)) return -1;
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
 * Training */

/* A training run's buffers and where it stands: everything sn_train allocates before
 * the first epoch and frees at the end. */
typedef struct run {
  sn_model *m;
  const sn_dataset *train, *val, *test;
  const sn_train_opts *o;
  const sn_comm *C;          /* NULL: alone */
  bool lead;                 /* writes the records and checkpoints, prints */
  monitor mon;               /* early stopping's monitored value */
  bool snapshot;             /* early stopping keeps the best weights */
  FILE *jsonl, *csv;         /* rank 0's record files */
  int64_t *idx;              /* the shuffled order */
  void *best_params, *best_state;
  bool has_best;             /* best_params holds a snapshot */
  sn_epoch_record *recs;     /* one per epoch done */
  int recs_cap;
  sn_run_state st;
  loader L;
  bool have_loader;
} run;

/* Everything that can fail on one rank alone: the options, the comm, the monitored
 * value, the loader and the buffers. 0 or -1 (this rank's error in err). */
static int run_prepare(run *R, sn_error *err) {
  sn_model *m = R->m;
  const sn_train_opts *o = R->o;
  const sn_comm *C = R->C;
  const sn_early_stopping *es = &o->early;
  int local = check_train(m, R->train, R->val, R->test, o, err);
  if (!local && C && !(m->grad_step && m->update))
    local = sn_fail(err, "data-parallel training needs the model's grad_step and update "
                         "functions (gradients are summed between them)");
  if (!local && C && (!C->sum_f32 || !C->sum_f64 || !C->max_f64 || !C->bcast ||
                      C->rank < 0 || C->rank >= C->size))
    local = sn_fail(err, "the comm given to sn_train is incomplete (rank %d of %d)", C->rank,
                    C->size);
  if (!local && o->resume && !(o->checkpoint_path && o->state_path))
    local = sn_fail(err, "resuming needs checkpoint_path and state_path");
  if (!local && es->enabled)
    local = resolve_monitor(m, es, R->val != NULL, R->test != NULL, &R->mon, err);
  /* Alone, a small stored set is read into memory once (as stored: u8 images stay
   * u8): its batches then cost no system call a sample. Ranks of a distributed run
   * read only their part of the files, so they keep streaming. */
  const sn_dataset *sets[] = {R->train, R->val, R->test};
  for (int i = 0; i < 3 && !local && !C; i++)
    if (sets[i]) local = sn_store_hold(sets[i]->store, sn_store_hold_limit(), err);
  /* One pair of slots serves training (batch_size rows) and evaluation
   * (batch_capacity rows, at least as many). */
  if (!local) {
    /* A loader thread beside a pool that has every core would take turns with the
     * pool's threads mid-step: then the pool stages each batch itself. */
    local = sn_loader_init(&R->L, m, m->batch_capacity, !o->no_prefetch && sn_threads() < sn_cpus(), err);
    R->have_loader = !local;
  }
  if (!local) {
    const size_t es_bytes = dtype_bytes(m);
    if (o->shuffle) R->idx = malloc((size_t)R->train->n * sizeof(int64_t));
    if (R->snapshot) {
      R->best_params = malloc((size_t)m->param_count * es_bytes + 1);
      R->best_state = malloc((size_t)m->state_count * es_bytes + 1);
    }
    R->recs = calloc((size_t)R->recs_cap, sizeof *R->recs);
    if ((o->shuffle && !R->idx) || (R->snapshot && (!R->best_params || !R->best_state)) || !R->recs)
      local = sn_fail(err, "out of memory for the training buffers (%lld samples)",
                      (long long)R->train->n);
  }
  return local;
}

/* Rank 0 reads what it resumes from and shares it; the ranks check that they hold
 * the same weights; rank 0 opens the record files. */
static int run_open(run *R, sn_error *err) {
  const sn_train_opts *o = R->o;
  const sn_comm *C = R->C;
  int local = 0;
  if (o->resume) {
    if (R->lead) {
      local = sn_run_state_read(o->state_path, o->checkpoint_path, R->m, o, R->train->n, &R->st,
                                &R->recs, o->epochs, R->best_params, R->best_state, &R->has_best,
                                err);
      if (!local && R->st.epochs_done >= R->recs_cap) R->recs_cap = R->st.epochs_done + 1;
    }
    if (sn_dist_agree(C, local, err)) return -1;
    if (C && sn_dist_share_resumed(C, R->m, &R->st, &R->recs, &R->recs_cap, o->epochs,
                                   R->best_params, R->best_state, &R->has_best, err))
      return -1;
  }
  if (C && sn_dist_check_same(C, R->m, R->train, R->val, R->test, o, &R->st, err)) return -1;
  if (R->lead)
    local = sn_train_open_records(R->m, o, R->val != NULL, R->test != NULL, R->st.epochs_done,
                                  &R->jsonl, &R->csv, err);
  return sn_dist_agree(C, local, err);
}

/* Early stopping after an epoch: the best value so far (and its weights), or one
 * more epoch without improvement. */
static void early_update(run *R, int epoch, const sn_epoch_record *rec) {
  const sn_early_stopping *es = &R->o->early;
  sn_model *m = R->m;
  sn_run_state *st = &R->st;
  const size_t es_bytes = dtype_bytes(m);
  double v = monitored(&R->mon, rec);
  bool better = isfinite(v) && (st->best_epoch == 0 || (R->mon.maximize ? v > st->best + es->min_delta
                                                                        : v < st->best - es->min_delta));
  if (better) {
    st->best = v;
    st->best_epoch = epoch;
    st->wait = 0;
    if (R->snapshot) {
      memcpy(R->best_params, m->params, (size_t)m->param_count * es_bytes);
      if (m->state_count > 0) memcpy(R->best_state, m->state, (size_t)m->state_count * es_bytes);
      R->has_best = true;
    }
  } else if (++st->wait >= es->patience) { /* as Keras: patience epochs without improvement */
    st->stopped = epoch < R->o->epochs;
  }
}

/* Rank 0 after an epoch: the epoch line, the record files, curves.svg (at most every
 * 2 s, and after the last epoch), the checkpoint. *last_svg: when curves.svg was
 * last drawn. 0 or -1. */
static int run_record_epoch(run *R, int epoch, const sn_epoch_record *rec, bool show_lr,
                            double *last_svg, sn_error *err) {
  sn_model *m = R->m;
  const sn_train_opts *o = R->o;
  if (!o->quiet && o->reporter && o->reporter->epoch)
    o->reporter->epoch(o->reporter->ctx, m, o->epochs, rec, show_lr);
  int local = (R->jsonl && sn_report_jsonl(R->jsonl, o->metrics_path, m, rec, err)) ||
              (R->csv && sn_report_csv(R->csv, o->csv_path, m, rec, err));
  if (!local && o->curves_path &&
      (sn_now() - *last_svg > 2.0 || epoch == o->epochs || R->st.stopped)) {
    local = sn_curves_svg(o->curves_path, o->title, R->recs, R->st.epochs_done, m->n_metrics,
                          m->metric_names, o->early.enabled ? R->st.best_epoch : 0, err);
    *last_svg = sn_now();
  }
  if (!local)
    local = sn_train_checkpoint(m, o, R->train->n, &R->st, R->recs,
                                R->has_best ? R->best_params : NULL, R->best_state, err);
  return local;
}

/* Epochs done_before + 1 .. opts->epochs, or until early stopping ends the run. */
static int run_epochs(run *R, int done_before, sn_error *err) {
  const sn_train_opts *opts = R->o;
  const sn_comm *C = R->C;
  sn_model *m = R->m;
  const bool show_lr = opts->schedule.kind != SN_SCHED_CONSTANT;
  double last_svg = -1e300;
  bool drift_noted = false;
  for (int epoch = done_before + 1; epoch <= opts->epochs && !R->st.stopped; epoch++) {
    sn_epoch_record rec = {.epoch = epoch, .lr = opts->learning_rate};
    if (train_epoch(m, R->train, opts, C, epoch, R->idx, &R->L, &R->st.step, &rec, err)) return -1;
    bool drifted = false;
    if (C && sn_dist_resync(C, m, &drifted, err)) return -1;
    if (drifted && R->lead && !drift_noted) {
      report_note(opts,
                  "note: the ranks' weights drifted apart in epoch %d (CPUs that round differently?); "
                  "rank 0's now hold on every rank, after each epoch",
                  epoch);
      drift_noted = true;
    }

    double t0 = sn_now();
    if (R->val) {
      if (evaluate(m, R->val, &R->L, C, &rec.val, err)) return -1;
      rec.has_val = true;
    }
    if (R->test) {
      if (evaluate(m, R->test, &R->L, C, &rec.test, err)) return -1;
      rec.has_test = true;
    }
    rec.eval_seconds = sn_now() - t0;
    R->recs[R->st.epochs_done++] = rec;

    if (opts->early.enabled) early_update(R, epoch, &rec);
    int local = R->lead ? run_record_epoch(R, epoch, &rec, show_lr, &last_svg, err) : 0;
    if (sn_dist_agree(C, local, err)) return -1;
    if (opts->on_epoch) opts->on_epoch(&rec, opts->on_epoch_ctx);
  }
  return 0;
}

/* After the epochs: early stopping's best weights restored (and checkpointed), its
 * note, and opts->result. 0 or -1. */
static int run_finish(run *R, int done_before, sn_error *err) {
  const sn_train_opts *opts = R->o;
  const sn_early_stopping *es = &opts->early;
  sn_model *m = R->m;
  sn_run_state *st = &R->st;
  const size_t es_bytes = dtype_bytes(m);
  bool restored = false;
  if (R->snapshot && R->has_best && st->best_epoch > 0 && st->best_epoch != st->epochs_done &&
      st->epochs_done > done_before) {
    memcpy(m->params, R->best_params, (size_t)m->param_count * es_bytes);
    if (m->state_count > 0) memcpy(m->state, R->best_state, (size_t)m->state_count * es_bytes);
    restored = true;
    /* the checkpoint holds the weights the run ends with */
    int local = R->lead ? sn_train_checkpoint(m, opts, R->train->n, st, R->recs, R->best_params,
                                              R->best_state, err)
                        : 0;
    if (sn_dist_agree(R->C, local, err)) return -1;
  }
  if (R->lead && es->enabled && st->best_epoch > 0 && st->epochs_done > done_before) {
    const char *name = es->monitor[0] ? es->monitor : "val_loss";
    char how[160], kept[80] = "";
    if (st->stopped)
      snprintf(how, sizeof how, "%s did not improve for %d epoch%s; stopped after epoch %d of %d", name,
               st->wait, st->wait == 1 ? "" : "s", st->epochs_done, opts->epochs);
    else
      snprintf(how, sizeof how, "ran all %d epochs", st->epochs_done);
    if (restored) snprintf(kept, sizeof kept, "; restored the weights of epoch %d", st->best_epoch);
    else if (R->snapshot) snprintf(kept, sizeof kept, "; kept the last weights (they are the best)");
    report_note(opts, "early stopping: %s; best %s %.4f at epoch %d%s", how, name, st->best,
                st->best_epoch, kept);
  }
  if (opts->result) {
    opts->result->epochs_run = st->epochs_done;
    opts->result->stopped_early = st->stopped;
    opts->result->best_epoch = st->best_epoch;
    opts->result->best_value = st->best_epoch > 0 ? st->best : NAN;
    opts->result->restored = restored;
  }
  return 0;
}

/* The end of a run, finished or not (rc): curves.svg of what finished when it
 * failed, the record files closed (a failed close fails the run), the buffers freed. */
static int run_close(run *R, int rc, sn_error *err) {
  const sn_train_opts *opts = R->o;
  sn_model *m = R->m;
  if (rc && R->lead && opts->curves_path && R->recs && R->recs[0].epoch > 0) { /* what finished, for a look */
    sn_error ignored;
    int n = 0;
    while (n < R->recs_cap && R->recs[n].epoch > 0) n++;
    sn_curves_svg(opts->curves_path, opts->title, R->recs, n, m->n_metrics, m->metric_names, 0,
                  &ignored);
  }
  if (R->jsonl && fclose(R->jsonl) != 0 && rc == 0)
    rc = sn_fail(err, "cannot write %s: %s", opts->metrics_path, strerror(errno));
  if (R->csv && fclose(R->csv) != 0 && rc == 0)
    rc = sn_fail(err, "cannot write %s: %s", opts->csv_path, strerror(errno));
  if (R->have_loader) sn_loader_free(&R->L);
  free(R->idx);
  free(R->best_params);
  free(R->best_state);
  free(R->recs);
  return rc;
}

int sn_train(sn_model *m, const sn_dataset *train, const sn_dataset *val, const sn_dataset *test,
             const sn_train_opts *opts, sn_error *err) {
  if (opts->result) memset(opts->result, 0, sizeof *opts->result);
  const sn_comm *C = opts->comm && opts->comm->size > 1 ? opts->comm : NULL;
  run R = {.m = m, .train = train, .val = val, .test = test, .o = opts, .C = C,
           .lead = !C || C->rank == 0, .snapshot = opts->early.enabled && opts->early.restore_best,
           .recs_cap = opts->epochs + 1, .st = {.best = NAN}};
  /* Everything that can fail on one rank alone comes first; then the ranks agree. */
  int rc = -1;
  if (sn_dist_agree(C, run_prepare(&R, err), err) || run_open(&R, err)) return run_close(&R, rc, err);
  const int done_before = R.st.epochs_done;
  if (opts->resume && R.lead) {
    char why[96] = "";
    if (R.st.stopped) snprintf(why, sizeof why, ": early stopping had ended the run; nothing left to train");
    else if (done_before >= opts->epochs) snprintf(why, sizeof why, ": all %d epochs are done", opts->epochs);
    report_note(opts, "resuming after epoch %d (step %lld)%s", done_before, (long long)R.st.step, why);
  }
  if (!run_epochs(&R, done_before, err) && !run_finish(&R, done_before, err)) rc = 0;
  return run_close(&R, rc, err);
}
