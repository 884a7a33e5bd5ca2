/* Data parallelism for the training loop (train.c): the collectives over the
 * sn_comm callbacks that keep the ranks' weights identical. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_impl.h"

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

int sn_dist_comm_failed(sn_error *err) {
  return sn_fail(err, "communication between ranks failed");
}

/* Whether any rank failed (local != 0 on that rank): a collective. 0 when none did; a
 * failed rank keeps its own message, the others get one naming the first that failed. */
int sn_dist_agree(const sn_comm *C, int local, sn_error *err) {
  if (!C) return local;
  int first = sn_comm_first_failed(C, local != 0);
  if (first == -1) return 0;
  if (first == -2) return sn_dist_comm_failed(err);
  if (local) return -1;
  return sn_fail(err, "stopped because rank %d of %d failed (its error is above)", first, C->size);
}

/* This rank's gradient of a data-parallel step, weighted by w = its rows / the
 * global batch's rows (zero when it has no rows of the batch). */
void sn_dist_grad(sn_model *m, sn_step_args *a, double w) {
  if (a->rows > 0) {
    m->grad_step(a);
    scale_buf(m, m->grads, m->param_count, w);
  } else { /* no rows of this batch here: no gradient, no statistics */
    memset(m->grads, 0, (size_t)m->param_count * dtype_bytes(m));
  }
}

/* The step's loss and metric sums (a->loss_sum, a->metric_sums) summed over the
 * ranks. *stop: the loss is not finite on some rank (every rank sees the same sums,
 * so all stop, before the update: the weights stay those of the last good step);
 * *bad: the first such rank, or -1. */
int sn_dist_sum_losses(const sn_comm *C, int K, const sn_step_args *a, bool *stop, int *bad,
                       sn_error *err) {
  const bool own_finite = isfinite(*a->loss_sum);
  double sums[2 + MAX_METRICS];
  sums[0] = *a->loss_sum;
  for (int k = 0; k < K; k++) sums[1 + k] = a->metric_sums[k];
  sums[1 + K] = !own_finite; /* ranks whose loss is not finite */
  if (C->sum_f64(C->ctx, sums, 2 + K)) return sn_dist_comm_failed(err);
  *a->loss_sum = sums[0];
  for (int k = 0; k < K; k++) a->metric_sums[k] = sums[1 + k];
  *stop = sums[1 + K] > 0 || !isfinite(*a->loss_sum);
  *bad = -1;
  if (*stop && (*bad = sn_comm_first_failed(C, !own_finite)) == -2) return sn_dist_comm_failed(err);
  return 0;
}

/* The gradients summed over the ranks, the update of the global batch on every rank,
 * then the state buffers as the row-weighted average over the ranks. */
int sn_dist_update(const sn_comm *C, sn_model *m, sn_step_args *a, int64_t global, double w,
                   sn_error *err) {
  if (sum_buf(C, m, m->grads, m->param_count)) return sn_dist_comm_failed(err);
  a->rows = global;
  m->update(a);
  if (m->state_count > 0) {
    scale_buf(m, m->state, m->state_count, w);
    if (sum_buf(C, m, m->state, m->state_count)) return sn_dist_comm_failed(err);
  }
  return 0;
}

/* Resuming with several ranks: rank 0 read the files; everyone gets what it read. */
int sn_dist_share_resumed(const sn_comm *C, sn_model *m, sn_run_state *st, sn_epoch_record **recs,
                          int *recs_cap, int epochs, void *best_params, void *best_state,
                          bool *has_best, sn_error *err) {
  if (C->bcast(C->ctx, st, (int64_t)sizeof *st, 0)) return sn_dist_comm_failed(err);
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
  if (sn_dist_agree(C, local, err)) return -1;
  const size_t es = dtype_bytes(m);
  bool hb = *has_best;
  if (C->bcast(C->ctx, *recs, (int64_t)(sizeof **recs * (size_t)st->epochs_done), 0) ||
      C->bcast(C->ctx, m->params, m->param_count * (int64_t)es, 0) ||
      (m->state_count > 0 && C->bcast(C->ctx, m->state, m->state_count * (int64_t)es, 0)) ||
      C->bcast(C->ctx, m->opt_state, m->opt_state_count * (int64_t)es, 0) ||
      C->bcast(C->ctx, &hb, (int64_t)sizeof hb, 0))
    return sn_dist_comm_failed(err);
  *has_best = hb;
  if (hb && best_params &&
      (C->bcast(C->ctx, best_params, m->param_count * (int64_t)es, 0) ||
       (m->state_count > 0 && C->bcast(C->ctx, best_state, m->state_count * (int64_t)es, 0))))
    return sn_dist_comm_failed(err);
  return 0;
}

/* After each epoch: the ranks run the same update on the same gradients, so their
 * weights stay equal bit for bit, unless their CPUs round differently (each host's
 * JIT compiles for its own CPU: FMA contraction, vector width). Then rank 0's weights,
 * state and optimizer state go to every rank, and *drifted says so. */
int sn_dist_resync(const sn_comm *C, sn_model *m, bool *drifted, sn_error *err) {
  const uint64_t h = sn_weights_hash(m);
  const double v[2] = {(double)(h >> 32), (double)(h & 0xffffffffu)};
  int differs;
  if (sn_dist_same(C, v, 2, &differs, err)) return -1;
  if (differs < 0) return 0;
  const int64_t es = (int64_t)dtype_bytes(m);
  if (C->bcast(C->ctx, m->params, m->param_count * es, 0) ||
      (m->state_count > 0 && C->bcast(C->ctx, m->state, m->state_count * es, 0)) ||
      C->bcast(C->ctx, m->opt_state, m->opt_state_count * es, 0))
    return sn_dist_comm_failed(err);
  *drifted = true;
  return 0;
}

/* Several ranks: they must hold the same weights, data sizes and options, or the
 * shards and the summed gradients mean nothing. */
int sn_dist_check_same(const sn_comm *C, const sn_model *m, const sn_dataset *train,
                       const sn_dataset *val, const sn_dataset *test, const sn_train_opts *o,
                       const sn_run_state *st, sn_error *err) {
  static const char *const what[] = {"the initial weights (their checksums differ)",
                                     "the initial weights (their checksums differ)",
                                     "the training set size",
                                     "the validation set size",
                                     "the test set size",
                                     "batch_size",
                                     "epochs",
                                     "seed",
                                     "seed",
                                     "the model (parameter count)",
                                     "the model (state count)",
                                     "the model (optimizer state count)",
                                     "shuffle",
                                     "shuffle's block",
                                     "the epochs done (resume)",
                                     "the optimizer step (resume)",
                                     "the learning rate",
                                     "the model dtype"};
  const uint64_t h = sn_weights_hash(m);
  const double v[] = {(double)(h >> 32),
                      (double)(h & 0xffffffffu),
                      (double)train->n,
                      val ? (double)val->n : -1,
                      test ? (double)test->n : -1,
                      (double)o->batch_size,
                      o->epochs,
                      (double)(o->seed >> 32),
                      (double)(o->seed & 0xffffffffu),
                      (double)m->param_count,
                      (double)m->state_count,
                      (double)m->opt_state_count,
                      o->shuffle,
                      (double)o->shuffle_block,
                      st->epochs_done,
                      (double)st->step,
                      o->learning_rate,
                      m->dtype};
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
