/* The training and evaluation loops: epochs of shuffled batches through the
 * generated step functions, per-epoch loss and metrics, the progress line, the
 * summary line and metrics.jsonl.
 *
 * Not here: the maths (generated code does forward, backward and the optimizer
 * update), learning-rate schedules and early stopping (later), checkpoints
 * (safetensors.c).
 *
 * Letters: n = samples in a data set, B = rows in one batch (the last batch of an
 * epoch may be partial), E = input_elems per sample, K = n_metrics.
 *
 * Memory: sn_train allocates its buffers once, before the first epoch; nothing is
 * allocated per batch. A batch is staged contiguously: rows gathered by the
 * shuffled index (and converted to double for an f64 model). Unshuffled f32
 * batches are passed straight from the data set. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/runtime.h"

enum { MAX_METRICS = 8 };

/* ---------------------------------------------------------------------------
 * Staging a batch */

/* The input rows [start, start+rows) of the order `idx` (NULL: the data set's own
 * order) in the model's dtype. Returns a pointer into the data set when no copy is
 * needed, else fills `stage` ((B, E) in the model's dtype) and returns it. */
static const void *stage_x(const sn_model *m, const sn_dataset *ds, const int64_t *idx,
                           int64_t start, int64_t rows, void *stage) {
  const int64_t E = ds->sample_elems;
  if (m->dtype == SN_RT_F32) {
    if (!idx) return ds->x + start * E;
    float *dst = stage;
    for (int64_t r = 0; r < rows; r++)
      memcpy(dst + r * E, ds->x + idx[start + r] * E, (size_t)E * sizeof(float));
    return dst;
  }
  double *dst = stage;
  for (int64_t r = 0; r < rows; r++) {
    const float *src = ds->x + (idx ? idx[start + r] : start + r) * E;
    double *row = dst + r * E;
    for (int64_t e = 0; e < E; e++) row[e] = src[e];
  }
  return dst;
}

/* The labels of the same rows: (B) int32. */
static const int32_t *stage_y(const sn_dataset *ds, const int64_t *idx, int64_t start, int64_t rows,
                              int32_t *stage) {
  if (!idx) return ds->y + start;
  for (int64_t r = 0; r < rows; r++) stage[r] = ds->y[idx[start + r]];
  return stage;
}

static size_t dtype_bytes(const sn_model *m) {
  return m->dtype == SN_RT_F64 ? sizeof(double) : sizeof(float);
}

/* ---------------------------------------------------------------------------
 * Checks shared by sn_evaluate and sn_train */

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
  return 0;
}

static int check_dataset(const sn_model *m, const sn_dataset *ds, const char *what, sn_error *err) {
  if (ds->n < 1) return sn_fail(err, "%s set is empty", what);
  if (!ds->x || !ds->y) return sn_fail(err, "%s set has no samples loaded", what);
  if (ds->sample_elems != m->input_elems)
    return sn_fail(err,
                   "%s set has %lld elements per sample (from %s) but the model input "
                   "has %lld",
                   what, (long long)ds->sample_elems, ds->origin[0] ? ds->origin : "memory",
                   (long long)m->input_elems);
  return 0;
}

/* ---------------------------------------------------------------------------
 * Evaluation */

/* eval_step over ds in batches of batch_capacity, in the data set's order.
 * `stage` holds (batch_capacity, E) in the model's dtype; only an f64 model uses it. */
static void evaluate(sn_model *m, const sn_dataset *ds, void *stage, sn_eval_result *out) {
  const int K = m->n_metrics;
  const int64_t cap = m->batch_capacity;
  double t0 = sn_now();
  double loss_total = 0, metric_total[MAX_METRICS] = {0};
  for (int64_t start = 0; start < ds->n; start += cap) {
    int64_t rows = ds->n - start < cap ? ds->n - start : cap;
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    sn_step_args a = {
        .x = stage_x(m, ds, NULL, start, rows, stage),
        .y = ds->y + start,
        .rows = rows,
        .params = m->params,
        .grads = m->grads,
        .opt_state = m->opt_state,
        .arena = m->arena,
        .step = 0,
        .lr = 0,
        .seed = 0,
        .loss_sum = &loss_sum,
        .metric_sums = metric_sums,
    };
    m->eval_step(&a);
    loss_total += loss_sum;
    for (int k = 0; k < K; k++) metric_total[k] += metric_sums[k];
  }
  memset(out, 0, sizeof *out);
  out->samples = ds->n;
  out->loss = loss_total / (double)ds->n;
  for (int k = 0; k < K; k++) out->metrics[k] = metric_total[k] / (double)ds->n;
  out->seconds = sn_now() - t0;
}

int sn_evaluate(sn_model *m, const sn_dataset *ds, sn_eval_result *out, sn_error *err) {
  if (check_model(m, err) || check_dataset(m, ds, "evaluation", err)) return -1;
  if (!m->eval_step) return sn_fail(err, "model has no eval_step function");
  void *stage = NULL;
  if (m->dtype == SN_RT_F64) {
    stage = malloc((size_t)m->batch_capacity * (size_t)m->input_elems * sizeof(double));
    if (!stage) return sn_fail(err, "out of memory for an evaluation batch");
  }
  evaluate(m, ds, stage, out);
  free(stage);
  return 0;
}

/* ---------------------------------------------------------------------------
 * Reporting: number formatting, metrics.jsonl, progress and summary lines */

/* The shortest %.Ng (N = 15..17) that reads back as exactly v; non-finite
 * numbers are JSON null. buf holds at least 32 chars. */
static const char *json_num(char *buf, double v) {
  if (!isfinite(v)) return strcpy(buf, "null");
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

/* Metric names come from the compiler; escape anything JSON would choke on. */
static void json_key(FILE *f, const char *prefix, const char *name) {
  fprintf(f, ", \"%s", prefix);
  for (const char *c = name; *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(f, "\\%c", *c);
    else if ((unsigned char)*c < 0x20)
      fprintf(f, "\\u%04x", (unsigned char)*c);
    else
      fputc(*c, f);
  }
  fputs("\": ", f);
}

static void json_eval(FILE *f, const sn_model *m, const char *prefix, const sn_eval_result *r) {
  char b[32];
  json_key(f, prefix, "loss");
  fputs(json_num(b, r->loss), f);
  for (int k = 0; k < m->n_metrics; k++) {
    json_key(f, prefix, m->metric_names[k]);
    fputs(json_num(b, r->metrics[k]), f);
  }
}

/* One line of metrics.jsonl, flushed so a reader sees each epoch as it ends. */
static int write_jsonl(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                       sn_error *err) {
  char b[32];
  fprintf(f, "{\"epoch\": %d", rec->epoch);
  json_key(f, "", "loss");
  fputs(json_num(b, rec->loss), f);
  for (int k = 0; k < m->n_metrics; k++) {
    json_key(f, "", m->metric_names[k]);
    fputs(json_num(b, rec->metrics[k]), f);
  }
  if (rec->has_val) json_eval(f, m, "val_", &rec->val);
  if (rec->has_test) json_eval(f, m, "test_", &rec->test);
  json_key(f, "", "lr");
  fputs(json_num(b, rec->lr), f);
  json_key(f, "", "seconds");
  fputs(json_num(b, rec->seconds), f);
  json_key(f, "", "eval_seconds");
  fputs(json_num(b, rec->eval_seconds), f);
  json_key(f, "", "samples_per_second");
  fputs(json_num(b, rec->samples_per_second), f);
  fputs("}\n", f);
  if (fflush(f) != 0 || ferror(f))
    return sn_fail(err, "cannot write %s: %s", path, strerror(errno));
  return 0;
}

/* Short names for the progress line, where width matters. */
static const char *short_name(const char *metric) {
  return strcmp(metric, "accuracy") == 0 ? "acc" : metric;
}

static void format_eta(char *buf, size_t size, double seconds) {
  if (!isfinite(seconds) || seconds < 0) seconds = 0;
  long s = lround(seconds);
  if (s < 60)
    snprintf(buf, size, "%lds", s);
  else if (s < 3600)
    snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
  else
    snprintf(buf, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
}

/* Redraws the progress line on stderr:
 *   epoch 3/10 [=====>    ] 1200/1875 loss 0.3121 acc 0.8862 41230 samples/s ETA 4s
 * loss is the mean of the batch means so far, metrics are per sample so far. */
static void draw_progress(const sn_model *m, int epoch, int epochs, int64_t batch, int64_t batches,
                          int64_t samples, double loss_mean, const double *metric_total,
                          double elapsed) {
  enum { WIDTH = 20 };
  char bar[WIDTH + 1];
  int64_t filled = batches > 0 ? batch * WIDTH / batches : WIDTH;
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '=' : ' ';
  if (filled > 0 && filled < WIDTH) bar[filled - 1] = '>';
  bar[WIDTH] = 0;
  fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f", epoch, epochs, bar, (long long)batch,
          (long long)batches, loss_mean);
  for (int k = 0; k < m->n_metrics; k++)
    fprintf(stderr, " %s %.4f", short_name(m->metric_names[k]), metric_total[k] / (double)samples);
  char eta[32];
  format_eta(eta, sizeof eta, elapsed / (double)batch * (double)(batches - batch));
  fprintf(stderr, " %.0f samples/s ETA %s\x1b[K", elapsed > 0 ? samples / elapsed : 0.0, eta);
  fflush(stderr);
}

static void clear_progress(void) {
  fputs("\r\x1b[K", stderr);
  fflush(stderr);
}

/*   epoch 3/10  loss 0.3121  accuracy 0.8862  test_loss 0.3510  ...  1.42s (42100 samples/s) */
static void print_summary(const sn_model *m, int epochs, const sn_epoch_record *rec) {
  printf("epoch %d/%d  loss %.4f", rec->epoch, epochs, rec->loss);
  for (int k = 0; k < m->n_metrics; k++) printf("  %s %.4f", m->metric_names[k], rec->metrics[k]);
  const struct {
    bool has;
    const char *prefix;
    const sn_eval_result *r;
  } sets[] = {
      {rec->has_val, "val_", &rec->val},
      {rec->has_test, "test_", &rec->test},
  };
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    if (!sets[s].has) continue;
    printf("  %sloss %.4f", sets[s].prefix, sets[s].r->loss);
    for (int k = 0; k < m->n_metrics; k++)
      printf("  %s%s %.4f", sets[s].prefix, m->metric_names[k], sets[s].r->metrics[k]);
  }
  printf("  %.2fs (%.0f samples/s)\n", rec->seconds, rec->samples_per_second);
  fflush(stdout);
}

/* ---------------------------------------------------------------------------
 * Training */

static int check_train(const sn_model *m, const sn_dataset *train, const sn_dataset *val,
                       const sn_dataset *test, const sn_train_opts *o, sn_error *err) {
  if (check_model(m, err) || check_dataset(m, train, "training", err)) return -1;
  if (val && check_dataset(m, val, "validation", err)) return -1;
  if (test && check_dataset(m, test, "test", err)) return -1;
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
  return 0;
}

/* Runs one epoch of training batches; fills rec's loss, metrics and seconds.
 * `step` is the global optimizer step, advanced once per batch. */
static int train_epoch(sn_model *m, const sn_dataset *ds, const sn_train_opts *o, int epoch,
                       int64_t *idx, void *xstage, int32_t *ystage, int64_t *step,
                       sn_epoch_record *rec, sn_error *err) {
  const int K = m->n_metrics;
  const int64_t n = ds->n, bs = o->batch_size;
  const int64_t batches = (n + bs - 1) / bs;
  double t0 = sn_now(), next_draw = t0;
  if (idx) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    sn_shuffle(idx, n, o->seed, (uint64_t)epoch);
  }
  double batch_mean_total = 0, metric_total[MAX_METRICS] = {0};
  for (int64_t b = 0; b < batches; b++) {
    int64_t start = b * bs, rows = n - start < bs ? n - start : bs;
    double loss_sum = 0, metric_sums[MAX_METRICS] = {0};
    sn_step_args a = {
        .x = stage_x(m, ds, idx, start, rows, xstage),
        .y = stage_y(ds, idx, start, rows, ystage),
        .rows = rows,
        .params = m->params,
        .grads = m->grads,
        .opt_state = m->opt_state,
        .arena = m->arena,
        .step = ++*step,
        .lr = o->learning_rate,
        .seed = o->seed,
        .loss_sum = &loss_sum,
        .metric_sums = metric_sums,
    };
    if (m->train_step) {
      m->train_step(&a);
    } else {
      m->grad_step(&a);
      m->update(&a);
    }
    if (!isfinite(loss_sum)) {
      if (o->progress) clear_progress();
      return sn_fail(err, "loss is %s at epoch %d step %lld; try a lower learning_rate",
                     isnan(loss_sum) ? "nan" : "inf", epoch, (long long)*step);
    }
    batch_mean_total += loss_sum / (double)rows;
    for (int k = 0; k < K; k++) metric_total[k] += metric_sums[k];
    if (o->progress) {
      double now = sn_now();
      if (now >= next_draw || b + 1 == batches) {
        draw_progress(m, epoch, o->epochs, b + 1, batches, start + rows,
                      batch_mean_total / (double)(b + 1), metric_total, now - t0);
        next_draw = now + 0.1;
      }
    }
  }
  rec->seconds = sn_now() - t0;
  if (o->progress) clear_progress();
  rec->loss = batch_mean_total / (double)batches;
  for (int k = 0; k < K; k++) rec->metrics[k] = metric_total[k] / (double)n;
  rec->samples_per_second = rec->seconds > 0 ? (double)n / rec->seconds : 0;
  return 0;
}

int sn_train(sn_model *m, const sn_dataset *train, const sn_dataset *val, const sn_dataset *test,
             const sn_train_opts *opts, sn_error *err) {
  if (check_train(m, train, val, test, opts, err)) return -1;
  int rc = -1;
  FILE *jsonl = NULL;
  int64_t *idx = NULL;
  int32_t *ystage = NULL;
  /* One staging buffer serves training (batch_size rows) and evaluation
   * (batch_capacity rows, at least as many). */
  void *xstage = malloc((size_t)m->batch_capacity * (size_t)m->input_elems * dtype_bytes(m));
  ystage = malloc((size_t)opts->batch_size * sizeof(int32_t));
  if (opts->shuffle) idx = malloc((size_t)train->n * sizeof(int64_t));
  if (!xstage || !ystage || (opts->shuffle && !idx)) {
    sn_fail(err, "out of memory for the batch buffers (%lld samples of %lld elements)",
            (long long)m->batch_capacity, (long long)m->input_elems);
    goto done;
  }
  if (opts->metrics_path) {
    jsonl = fopen(opts->metrics_path, "w");
    if (!jsonl) {
      sn_fail(err, "cannot write %s: %s", opts->metrics_path, strerror(errno));
      goto done;
    }
  }

  int64_t step = 0;
  for (int epoch = 1; epoch <= opts->epochs; epoch++) {
    sn_epoch_record rec = {.epoch = epoch, .lr = opts->learning_rate};
    if (train_epoch(m, train, opts, epoch, idx, xstage, ystage, &step, &rec, err)) goto done;

    double t0 = sn_now();
    if (val) {
      evaluate(m, val, xstage, &rec.val);
      rec.has_val = true;
    }
    if (test) {
      evaluate(m, test, xstage, &rec.test);
      rec.has_test = true;
    }
    rec.eval_seconds = sn_now() - t0;

    if (!opts->quiet) print_summary(m, opts->epochs, &rec);
    if (jsonl && write_jsonl(jsonl, opts->metrics_path, m, &rec, err)) goto done;
    if (opts->on_epoch) opts->on_epoch(&rec, opts->on_epoch_ctx);
  }
  rc = 0;

done:
  if (jsonl && fclose(jsonl) != 0 && rc == 0)
    rc = sn_fail(err, "cannot write %s: %s", opts->metrics_path, strerror(errno));
  free(idx);
  free(ystage);
  free(xstage);
  return rc;
}
