/* What a run writes for its report (docs/outputs.md), beside the training record of
 * runtime/report.c: the model's predictions on the held-out set (predictions.csv),
 * the inputs of the most confidently wrong image samples (wrong_samples.npy), the
 * run's timing (run.json), the spec as given (spec.yaml) and, with --profile, the
 * kernel table (profile.txt). Only what the report cannot recompute from the
 * folder; reading it back is run_record.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "run_record.h"

/* ---------------------------------------------------------------------------
 * predictions.csv */

/* The kind of output the loss says the model has. */
static pred_kind kind_of(const sn_spec *s, int64_t O) {
  sn_loss_targets t = sn_spec_loss_targets(s);
  if (t == SN_TARGETS_CLASSES && O > 1) return PRED_CLASSES;
  if (t == SN_TARGETS_BINARY && O == 1) return PRED_BINARY;
  return PRED_VALUES;
}

/* One output row as class probabilities p (K of them): softmax of logits, or the
 * outputs as they are when the model ends in softmax/sigmoid. */
static void probabilities(const sn_spec *s, pred_kind kind, const double *row, int64_t O,
                          double *p) {
  if (kind == PRED_BINARY) {
    double q = sn_spec_from_logits(s) ? 1 / (1 + exp(-row[0])) : row[0];
    p[0] = 1 - q;
    p[1] = q;
    return;
  }
  if (!sn_spec_from_logits(s)) {
    memcpy(p, row, (size_t)O * sizeof *p);
    return;
  }
  double mx = row[0], sum = 0;
  for (int64_t k = 1; k < O; k++) mx = fmax(mx, row[k]);
  for (int64_t k = 0; k < O; k++) sum += p[k] = exp(row[k] - mx);
  for (int64_t k = 0; k < O; k++) p[k] /= sum;
}

/* Sample i's true class: its label, or the largest target (one-hot rows). */
static int64_t true_class(const sn_dataset *ds, pred_kind kind, int64_t i) {
  if (ds->y && !ds->t) return ds->y[i];
  const float *t = ds->t + i * ds->target_elems;
  if (kind == PRED_BINARY) return t[0] >= 0.5f;
  int64_t best = 0;
  for (int64_t k = 1; k < ds->target_elems; k++)
    if (t[k] > t[best]) best = k;
  return best;
}

static int64_t argmax(const double *p, int64_t K) {
  int64_t best = 0;
  for (int64_t k = 1; k < K; k++)
    if (p[k] > p[best]) best = k;
  return best;
}

static void header(FILE *f, pred_kind kind, int64_t K) {
  if (kind != PRED_VALUES) {
    fputs("index,label,predicted,confidence", f);
    for (int64_t k = 0; k < K; k++) fprintf(f, ",p%lld", (long long)k);
  } else {
    fputs("index", f);
    for (int64_t k = 0; k < K; k++) fprintf(f, ",target%lld", (long long)k);
    for (int64_t k = 0; k < K; k++) fprintf(f, ",output%lld", (long long)k);
  }
  fputc('\n', f);
}

/* Writes the rows; for classes, conf[i] gets the confidence of a wrong prediction
 * (-1 for a right one), for the wrong-sample grid. */
static void rows(FILE *f, const sn_spec *s, const sn_dataset *ds, const sn_data *d, const double *out,
                 int64_t O, pred_kind kind, double *p, double *conf) {
  const int64_t K = kind == PRED_BINARY ? 2 : O;
  for (int64_t i = 0; i < ds->n; i++) {
    const double *row = out + i * O;
    fprintf(f, "%lld", (long long)i);
    if (kind == PRED_VALUES) {
      /* in the data's units: standardize_targets' y * std + mean */
      const double *a = d->tgt_n == O ? d->tgt_std : NULL, *b = d->tgt_n == O ? d->tgt_mean : NULL;
      for (int64_t k = 0; k < O; k++) {
        double t = ds->t ? ds->t[i * ds->target_elems + k] : (double)ds->y[i];
        fprintf(f, ",%.9g", a ? t * a[k] + b[k] : t);
      }
      for (int64_t k = 0; k < O; k++) fprintf(f, ",%.9g", a ? row[k] * a[k] + b[k] : row[k]);
      fputc('\n', f);
      continue;
    }
    probabilities(s, kind, row, O, p);
    int64_t label = true_class(ds, kind, i), pred = argmax(p, K);
    fprintf(f, ",%lld,%lld,%.9g", (long long)label, (long long)pred, p[pred]);
    for (int64_t k = 0; k < K; k++) fprintf(f, ",%.9g", p[k]);
    fputc('\n', f);
    conf[i] = label == pred ? -1 : p[pred];
  }
}

/* ---------------------------------------------------------------------------
 * wrong_samples.npy: the inputs of the most confidently wrong samples */

/* Whether a set's samples are images: (H, W) or (H, W, C) with C 1 or 3, as stored. */
bool run_is_image(const sn_dataset *ds) {
  return (ds->rank == 2 && ds->shape[0] > 1 && ds->shape[1] > 1) ||
         (ds->rank == 3 && ds->shape[0] > 1 && ds->shape[1] > 1 &&
          (ds->shape[2] == 1 || ds->shape[2] == 3));
}

static const double *g_conf; /* by_confidence's: qsort takes no context */

static int by_confidence(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  if (g_conf[a] != g_conf[b]) return g_conf[a] > g_conf[b] ? -1 : 1;
  return a < b ? -1 : a > b;
}

int run_wrong_order(const double *conf, int64_t n, int64_t *idx, int cap) {
  int64_t m = 0;
  int64_t *all = malloc((size_t)(n ? n : 1) * sizeof *all);
  if (!all) return 0;
  for (int64_t i = 0; i < n; i++)
    if (conf[i] >= 0) all[m++] = i;
  g_conf = conf;
  qsort(all, (size_t)m, sizeof *all, by_confidence);
  int k = m < cap ? (int)m : cap;
  memcpy(idx, all, (size_t)k * sizeof *idx);
  free(all);
  return k;
}

static void write_wrong(const char *dir, const sn_dataset *ds, const double *conf) {
  char path[4200];
  snprintf(path, sizeof path, "%s/wrong_samples.npy", dir);
  int64_t idx[RUN_WRONG_MAX];
  int k = run_is_image(ds) ? run_wrong_order(conf, ds->n, idx, RUN_WRONG_MAX) : 0;
  if (!k) {
    remove(path); /* an older run's */
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f) return;
  char shape[96], hdr[256];
  if (ds->rank == 2)
    snprintf(shape, sizeof shape, "(%d, %lld, %lld)", k, (long long)ds->shape[0],
             (long long)ds->shape[1]);
  else
    snprintf(shape, sizeof shape, "(%d, %lld, %lld, %lld)", k, (long long)ds->shape[0],
             (long long)ds->shape[1], (long long)ds->shape[2]);
  int len =
      snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  int total = 10 + len + 1, pad = (64 - total % 64) % 64; /* header padded to 64 bytes */
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned short hl = (unsigned short)(len + pad + 1);
  unsigned char hlb[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
  fwrite(hlb, 1, 2, f);
  fprintf(f, "%s%*s\n", hdr, pad, "");
  /* float32 little-endian (every host we build for), as the model saw them: the
   * samples preprocessed (the set may hold them as stored, sn_dataset_get converts) */
  float *row = malloc((size_t)ds->sample_elems * sizeof(float));
  for (int j = 0; row && j < k; j++) {
    sn_dataset_get(ds, idx[j], 1, SN_RT_F32, row);
    fwrite(row, sizeof(float), (size_t)ds->sample_elems, f);
  }
  free(row);
  fclose(f);
}

int run_write_predictions(const sn_spec *s, sn_model *m, const sn_dataset *ds, const sn_data *d, const char *dir,
                          sn_error *err) {
  const int64_t O = m->output_elems;
  pred_kind kind = kind_of(s, O);
  char path[4200];
  snprintf(path, sizeof path, "%s/predictions.csv", dir);
  if (m->label_elems > 1 || (m->classes > 0 && m->classes < O)) {
    /* a sequence output (a language model: [positions, vocabulary] per sample) has
     * no row of its own to show; its report shows generations.txt */
    unlink(path);
    return 0;
  }
  double *out = malloc((size_t)(ds->n * O + 2) * sizeof *out); /* (n, O) */
  double *p = malloc((size_t)(O + 2) * sizeof *p);             /* (K) */
  double *conf = malloc((size_t)(ds->n + 1) * sizeof *conf);   /* (n) */
  FILE *f = NULL;
  int rc = -1;
  if (!out || !p || !conf) {
    sn_fail(err, "out of memory for %lld predictions", (long long)ds->n);
  } else if (!sn_predict_all(m, ds, out, err)) {
    if (!(f = fopen(path, "w"))) {
      sn_fail(err, "cannot write %s: %s", path, strerror(errno));
    } else {
      header(f, kind, kind == PRED_BINARY ? 2 : O);
      rows(f, s, ds, d, out, O, kind, p, conf);
      rc = fclose(f) ? sn_fail(err, "cannot write %s: %s", path, strerror(errno)) : 0;
      if (!rc && kind != PRED_VALUES) write_wrong(dir, ds, conf);
    }
  }
  free(out);
  free(p);
  free(conf);
  return rc;
}

/* ---------------------------------------------------------------------------
 * run.json, spec.yaml, profile.txt */

int run_write_info(const char *dir, const sn_spec *s, const sn_compiled *c, const char *split,
                   double wall_seconds) {
  char path[4200];
  snprintf(path, sizeof path, "%s/run.json", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  const sn_compile_times *t = sn_compiled_times(c);
  double total = t->build + t->autodiff + t->plan + t->emit + t->optimize + t->jit;
  fputs("{\"name\": ", f);
  sn_json_string(f, sn_spec_name(s));
  fputs(", \"predictions\": ", f);
  if (split)
    sn_json_string(f, split);
  else
    fputs("null", f);
  fprintf(f,
          ", \"compile_seconds\": %.6g, \"compile_graph_seconds\": %.6g, "
          "\"compile_plan_seconds\": %.6g, \"compile_emit_seconds\": %.6g, "
          "\"compile_llvm_seconds\": %.6g, \"compile_link_seconds\": %.6g, \"compile_cached\": %s, "
          "\"wall_seconds\": %.6g}\n",
          total, t->build + t->autodiff, t->plan, t->emit, t->optimize, t->jit,
          t->cached ? "true" : "false", wall_seconds);
  return fclose(f);
}

int run_copy_spec(const char *spec_path, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/spec.yaml", dir);
  FILE *in = fopen(spec_path, "rb");
  if (!in) return -1;
  FILE *out = fopen(path, "wb");
  if (!out) {
    fclose(in);
    return -1;
  }
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  fclose(in);
  return fclose(out);
}

void run_write_profile(const sn_compiled *c, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/profile.txt", dir);
  FILE *f = fopen(path, "w");
  if (!f) return;
  sn_compiled_profile(c, f);
  fclose(f);
}
