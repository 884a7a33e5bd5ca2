/* Data-parallel support that needs no MPI: agreement between ranks built on the
 * sn_comm callbacks, the weights checksum that proves every rank starts from the
 * same weights, and the training-state file that --resume continues from.
 *
 * The training state is a safetensors file of F64 tensors, written through
 * sn_safetensors_write with a stand-in model whose "parameters" are the state's
 * pieces; F64 holds every f32 value and every integer we store (steps, counts, two
 * 32-bit halves of the seed and of the hash) exactly. */
#include "dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sn_comm_first_failed(const sn_comm *c, bool failed) {
  if (!c || c->size <= 1) return failed ? 0 : -1;
  /* max over ranks of (size - rank) among the failed ones: the lowest failed rank */
  double v = failed ? (double)(c->size - c->rank) : 0;
  if (c->max_f64(c->ctx, &v, 1)) return -2;
  return v > 0 ? c->size - (int)v : -1;
}

int sn_dist_same(const sn_comm *c, const double *v, int n, int *differs, sn_error *err) {
  *differs = -1;
  if (!c || c->size <= 1) return 0;
  if (n < 1 || n > 64) return sn_fail(err, "sn_dist_same: %d values (1 to 64)", n);
  double both[128];
  for (int i = 0; i < n; i++) {
    both[i] = v[i];
    both[n + i] = -v[i];
  }
  if (c->max_f64(c->ctx, both, 2 * n)) return sn_fail(err, "communication between ranks failed");
  for (int i = 0; i < n && *differs < 0; i++)
    if (both[i] != -both[n + i]) *differs = i; /* max != min */
  return 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

uint64_t sn_weights_hash(const sn_model *m) {
  const size_t es = m->dtype == SN_RT_F64 ? sizeof(double) : sizeof(float);
  uint64_t h = UINT64_C(14695981039346656037);
  if (m->params) h = fnv1a(h, m->params, (size_t)m->param_count * es);
  if (m->state) h = fnv1a(h, m->state, (size_t)m->state_count * es);
  return h;
}

/* ---------------------------------------------------------------------------
 * The training-state file */

enum {
  PROG_N = 24,     /* values in __train__.progress */
  REC_F = 40,      /* values per flattened epoch record */
  PROG_FORMAT = 1, /* bumped when the layout changes */
};

/* Slots of __train__.progress. */
enum {
  P_FORMAT,
  P_EPOCHS,
  P_STEP,
  P_BEST_EPOCH,
  P_BEST,
  P_WAIT,
  P_STOPPED,
  P_BATCH,
  P_SEED_HI,
  P_SEED_LO,
  P_PARAMS,
  P_OPT,
  P_STATE,
  P_HASH_HI,
  P_HASH_LO,
  P_METRICS,
  P_DTYPE,
  P_REC_F,
  P_HAS_BEST,
  P_TRAIN_N,
};

static double hi32(uint64_t v) { return (double)(v >> 32); }
static double lo32(uint64_t v) { return (double)(v & UINT64_C(0xffffffff)); }

static void pack_eval(const sn_eval_result *r, double *v) {
  v[0] = r->loss;
  for (int k = 0; k < 8; k++) v[1 + k] = r->metrics[k];
  v[9] = (double)r->samples;
  v[10] = r->seconds;
}

static void unpack_eval(const double *v, sn_eval_result *r) {
  r->loss = v[0];
  for (int k = 0; k < 8; k++) r->metrics[k] = v[1 + k];
  r->samples = (int64_t)v[9];
  r->seconds = v[10];
}

static void pack_record(const sn_epoch_record *r, double *v) {
  memset(v, 0, REC_F * sizeof *v);
  v[0] = r->epoch;
  v[1] = r->loss;
  for (int k = 0; k < 8; k++) v[2 + k] = r->metrics[k];
  v[10] = r->lr;
  v[11] = r->seconds;
  v[12] = r->eval_seconds;
  v[13] = r->samples_per_second;
  v[14] = r->has_val;
  v[15] = r->has_test;
  pack_eval(&r->val, v + 16);
  pack_eval(&r->test, v + 27);
  v[38] = r->data_wait_seconds;
}

static void unpack_record(const double *v, sn_epoch_record *r) {
  memset(r, 0, sizeof *r);
  r->epoch = (int)v[0];
  r->loss = v[1];
  for (int k = 0; k < 8; k++) r->metrics[k] = v[2 + k];
  r->lr = v[10];
  r->seconds = v[11];
  r->eval_seconds = v[12];
  r->samples_per_second = v[13];
  r->has_val = v[14] != 0;
  r->has_test = v[15] != 0;
  unpack_eval(v + 16, &r->val);
  unpack_eval(v + 27, &r->test);
  r->data_wait_seconds = v[38];
}

/* count values of the model dtype at src into doubles */
static void to_f64(const sn_model *m, const void *src, int64_t count, double *dst) {
  for (int64_t i = 0; i < count; i++)
    dst[i] = m->dtype == SN_RT_F64 ? ((const double *)src)[i] : (double)((const float *)src)[i];
}

static void from_f64(const sn_model *m, const double *src, int64_t count, void *dst) {
  for (int64_t i = 0; i < count; i++) {
    if (m->dtype == SN_RT_F64)
      ((double *)dst)[i] = src[i];
    else
      ((float *)dst)[i] = (float)src[i];
  }
}

static sn_param_info tensor(const char *name, int rank, int64_t d0, int64_t d1, int64_t offset) {
  sn_param_info p = {.rank = rank, .shape = {d0, d1}, .offset = offset};
  snprintf(p.name, sizeof p.name, "%s", name);
  p.count = rank == 2 ? d0 * d1 : d0;
  return p;
}

int sn_run_state_write(const char *path, const sn_model *m, const sn_train_opts *o,
                       int64_t train_n, const sn_run_state *st, const sn_epoch_record *recs,
                       const void *best_params, const void *best_state, sn_error *err) {
  const int64_t P = m->param_count, Q = m->state_count, S = m->opt_state_count;
  const int64_t E = st->epochs_done;
  const bool best = best_params != NULL;
  const int64_t total = PROG_N + E * REC_F + S + (best ? P + Q : 0);
  double *buf = malloc((size_t)total * sizeof(double));
  if (!buf) return sn_fail(err, "%s: out of memory for the training state", path);
  double *prog = buf;
  memset(prog, 0, PROG_N * sizeof *prog);
  const uint64_t hash = sn_weights_hash(m);
  prog[P_FORMAT] = PROG_FORMAT;
  prog[P_EPOCHS] = (double)E;
  prog[P_STEP] = (double)st->step;
  prog[P_BEST_EPOCH] = st->best_epoch;
  prog[P_BEST] = st->best;
  prog[P_WAIT] = st->wait;
  prog[P_STOPPED] = st->stopped;
  prog[P_BATCH] = (double)o->batch_size;
  prog[P_SEED_HI] = hi32(o->seed);
  prog[P_SEED_LO] = lo32(o->seed);
  prog[P_PARAMS] = (double)P;
  prog[P_OPT] = (double)S;
  prog[P_STATE] = (double)Q;
  prog[P_HASH_HI] = hi32(hash);
  prog[P_HASH_LO] = lo32(hash);
  prog[P_METRICS] = m->n_metrics;
  prog[P_DTYPE] = m->dtype;
  prog[P_REC_F] = REC_F;
  prog[P_HAS_BEST] = best;
  prog[P_TRAIN_N] = (double)train_n;
  int64_t at = PROG_N;
  sn_param_info info[5];
  int n = 0;
  info[n++] = tensor("__train__.progress", 1, PROG_N, 0, 0);
  info[n++] = tensor("__train__.records", 2, E, REC_F, at);
  for (int64_t e = 0; e < E; e++) pack_record(&recs[e], buf + at + e * REC_F);
  at += E * REC_F;
  info[n++] = tensor("__optimizer__.state", 1, S, 0, at);
  to_f64(m, m->opt_state, S, buf + at);
  at += S;
  if (best) {
    info[n++] = tensor("__best__.params", 1, P, 0, at);
    to_f64(m, best_params, P, buf + at);
    at += P;
    info[n++] = tensor("__best__.state", 1, Q, 0, at);
    to_f64(m, best_state, Q, buf + at);
  }
  sn_model fake = {.dtype = SN_RT_F64, .param_count = total, .n_params = n, .params_info = info,
                   .params = buf};
  int rc = sn_safetensors_write(path, &fake, err);
  free(buf);
  return rc;
}

int sn_run_state_read(const char *path, const char *checkpoint, sn_model *m,
                      const sn_train_opts *o, int64_t train_n, sn_run_state *st,
                      sn_epoch_record **recs, int min_records, void *best_params,
                      void *best_state, bool *has_best, sn_error *err) {
  const int64_t P = m->param_count, Q = m->state_count, S = m->opt_state_count;
  double prog[PROG_N];
  sn_param_info pinfo = tensor("__train__.progress", 1, PROG_N, 0, 0);
  sn_model pm = {.dtype = SN_RT_F64, .param_count = PROG_N, .n_params = 1, .params_info = &pinfo,
                 .params = prog};
  if (sn_safetensors_read(path, &pm, err)) return -1;
  if (prog[P_FORMAT] != PROG_FORMAT || prog[P_REC_F] != REC_F)
    return sn_fail(err, "%s: training-state format %g is not the one this specnet writes (%d)",
                   path, prog[P_FORMAT], PROG_FORMAT);
  /* whole numbers in range, as written: converting anything else to an integer below
   * is undefined (a step of 1e300 came back as a negative step and a NaN loss) */
  const double E_d = prog[P_EPOCHS], step = prog[P_STEP];
  const double best_e = prog[P_BEST_EPOCH], wait = prog[P_WAIT];
  if (!(E_d >= 0 && E_d <= 1e7 && E_d == floor(E_d)) ||
      !(step >= 0 && step <= 0x1p53 && step == floor(step)) ||
      !(best_e >= 0 && best_e <= E_d && best_e == floor(best_e)) ||
      !(wait >= 0 && wait <= E_d && wait == floor(wait)))
    return sn_fail(err,
                   "%s: %g epochs done, step %g, best epoch %g and %g epochs without improvement "
                   "make no sense",
                   path, E_d, step, best_e, wait);
  if (prog[P_PARAMS] != (double)P || prog[P_OPT] != (double)S || prog[P_STATE] != (double)Q ||
      prog[P_METRICS] != m->n_metrics || prog[P_DTYPE] != m->dtype)
    return sn_fail(err,
                   "%s: the run was of another model (%.0f parameters, %.0f optimizer and %.0f "
                   "state values, %s); this spec compiles to %lld, %lld and %lld (%s)",
                   path, prog[P_PARAMS], prog[P_OPT], prog[P_STATE],
                   prog[P_DTYPE] == SN_RT_F64 ? "f64" : "f32", (long long)P, (long long)S,
                   (long long)Q, m->dtype == SN_RT_F64 ? "f64" : "f32");
  if (prog[P_BATCH] != (double)o->batch_size)
    return sn_fail(err,
                   "%s: the run trained with batch_size %.0f, this spec says %lld; resume with "
                   "the same batch_size (the step count and schedule depend on it)",
                   path, prog[P_BATCH], (long long)o->batch_size);
  if (prog[P_SEED_HI] != hi32(o->seed) || prog[P_SEED_LO] != lo32(o->seed))
    return sn_fail(err,
                   "%s: the run used another seed (this spec's is %llu); resume with the same "
                   "seed (shuffling and dropout depend on it)",
                   path, (unsigned long long)o->seed);
  if (prog[P_TRAIN_N] != (double)train_n)
    return sn_fail(err, "%s: the run trained on %.0f samples, this spec's training set has %lld",
                   path, prog[P_TRAIN_N], (long long)train_n);
  const int64_t E = (int64_t)E_d;
  const bool best = prog[P_HAS_BEST] != 0;
  const int64_t total = E * REC_F + S + (best ? P + Q : 0);
  double *buf = malloc((size_t)total * sizeof(double) + 8);
  int cap = (int)(E > min_records ? E : min_records) + 1;
  sn_epoch_record *r = calloc((size_t)cap, sizeof *r);
  if (!buf || !r) {
    free(buf);
    free(r);
    return sn_fail(err, "%s: out of memory for the training state", path);
  }
  sn_param_info info[4];
  int n = 0;
  info[n++] = tensor("__train__.records", 2, E, REC_F, 0);
  info[n++] = tensor("__optimizer__.state", 1, S, 0, E * REC_F);
  if (best) {
    info[n++] = tensor("__best__.params", 1, P, 0, E * REC_F + S);
    info[n++] = tensor("__best__.state", 1, Q, 0, E * REC_F + S + P);
  }
  sn_model rm = {.dtype = SN_RT_F64, .param_count = total, .n_params = n, .params_info = info,
                 .params = buf};
  int rc = -1;
  if (sn_safetensors_read(path, &rm, err) || sn_safetensors_read(checkpoint, m, err)) goto done;
  const uint64_t hash = sn_weights_hash(m);
  if (hi32(hash) != prog[P_HASH_HI] || lo32(hash) != prog[P_HASH_LO]) {
    sn_fail(err,
            "%s does not hold the weights %s was written with (was the run stopped while it "
            "wrote them, or the file replaced?)",
            checkpoint, path);
    goto done;
  }
  for (int64_t e = 0; e < E; e++) unpack_record(buf + e * REC_F, &r[e]);
  from_f64(m, buf + E * REC_F, S, m->opt_state);
  *has_best = best && best_params;
  if (*has_best) {
    from_f64(m, buf + E * REC_F + S, P, best_params);
    if (best_state) from_f64(m, buf + E * REC_F + S + P, Q, best_state);
  }
  st->epochs_done = (int)E;
  st->step = (int64_t)prog[P_STEP];
  st->best_epoch = (int)prog[P_BEST_EPOCH];
  st->best = prog[P_BEST];
  st->wait = (int)prog[P_WAIT];
  st->stopped = prog[P_STOPPED] != 0;
  free(*recs);
  *recs = r;
  r = NULL;
  rc = 0;
done:
  free(buf);
  free(r);
  return rc;
}
