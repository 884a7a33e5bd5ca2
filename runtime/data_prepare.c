/* The data pipeline of a run, in one place for `specnet train` and for training
 * binaries (`specnet build --train`): load each source so that it fits the model
 * (sample size, labels or float targets, label range), preprocess (scale, then
 * normalize), hold out the validation split, and standardize with the statistics
 * of what remains of the training set (inputs, and float targets when asked). Every error names the part it came from,
 * so the caller can point at the spec line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/runtime.h"

static int preprocess(const sn_data_config *c, sn_dataset *ds, sn_error *err) {
  if (c->scale != 1.0 && c->scale != 0.0 && sn_dataset_scale(ds, (float)c->scale, err)) return -1;
  if (c->n_norm > 0 && sn_dataset_normalize(ds, c->norm_mean, c->norm_std, c->n_norm, err)) return -1;
  return 0;
}

/* train: the training set when this is another one (its class names, if any, are
 * the table the other set's names map to). */
static int load_one(const sn_data_config *c, const sn_model *m, const sn_source *src_in,
                    sn_dataset *out, const sn_dataset *train, sn_error *err) {
  sn_source src = *src_in;
  src.target_elems = m->target_elems; /* what the loss reads: labels or float targets */
  src.label_elems = m->label_elems;
  if (train && train->class_names) {
    src.class_names = (const char *const *)train->class_names;
    src.n_class_names = train->n_class_names;
  }
  if (train && sn_text_same_tokenizer(&src, train, err)) return -1;
  if (train && train->chars) { /* a text source reads the training text's characters */
    src.chars = train->chars;
    src.n_chars = train->n_chars;
  }
  if (sn_dataset_load(&src, out, err)) return -1;
  if (train && !train->class_names && out->class_names)
    return sn_fail(
        err,
        "%.3000s: the labels are names ('%.100s', ...), but the training set's are class indices",
        out->origin, out->class_names[0]);
  if (out->class_names && out->n_class_names > m->output_elems)
    return sn_fail(
        err, "%.3000s: %d classes by name ('%.100s' ... '%.100s'), but the model has %lld outputs",
        out->origin, out->n_class_names, out->class_names[0],
        out->class_names[out->n_class_names - 1], (long long)m->output_elems);
  if (out->sample_elems != m->input_elems)
    return sn_fail(err, "%.3000s: samples have %lld value%s each, but model.input has %lld",
                   out->origin, (long long)out->sample_elems, out->sample_elems == 1 ? "" : "s",
                   (long long)m->input_elems);
  const int64_t L = m->label_elems > 0 ? m->label_elems : 1,
                has = out->label_elems > 0 ? out->label_elems : 1;
  const int64_t classes = m->classes > 0 ? m->classes : m->output_elems;
  if (m->target_elems == 0 && has != L)
    return sn_fail(
        err, "%.3000s: %lld label%s per sample, but the model's loss reads %lld (its output is %s)",
        out->origin, (long long)has, has == 1 ? "" : "s", (long long)L,
        L == 1 ? "one row of scores per sample" : "a row of scores per position");
  for (int64_t i = 0; m->target_elems == 0 && i < out->n * L; i++)
    if (out->y[i] < 0 || out->y[i] >= classes)
      return sn_fail(
          err, "%.3000s: label %d of sample %lld is out of range for a model with %lld outputs%s",
          sn_dataset_label_origin(out), out->y[i], (long long)(i / L), (long long)classes,
          L > 1 ? " per position" : "");
  return preprocess(c, out, err);
}

/* Per target column over the training set, two passes (no cancellation); a
 * constant column keeps std 1. */
static void target_stats(const sn_dataset *ds, double *mean, double *std) {
  const int64_t K = ds->target_elems;
  for (int64_t k = 0; k < K; k++) mean[k] = std[k] = 0;
  for (int64_t i = 0; i < ds->n * K; i++) mean[i % K] += ds->t[i];
  for (int64_t k = 0; k < K; k++) mean[k] /= (double)(ds->n ? ds->n : 1);
  for (int64_t i = 0; i < ds->n * K; i++) {
    double d = ds->t[i] - mean[i % K];
    std[i % K] += d * d;
  }
  for (int64_t k = 0; k < K; k++) {
    std[k] = sqrt(std[k] / (double)(ds->n ? ds->n : 1));
    if (!(std[k] > 1e-12 * (fabs(mean[k]) + 1))) std[k] = 1.0;
  }
}

static void standardize_targets(sn_dataset *ds, const double *mean, const double *std) {
  const int64_t K = ds->target_elems;
  for (int64_t i = 0; i < ds->n * K; i++) ds->t[i] = (float)((ds->t[i] - mean[i % K]) / std[i % K]);
}

static int prepare_targets(sn_data *d, sn_error *err) {
  if (!d->train.t)
    return sn_fail(err, "standardize_targets needs float targets (a regression loss: mse, mae, huber), "
                        "but %.3000s gives class labels", d->train.origin);
  const int64_t K = d->train.target_elems;
  d->tgt_mean = malloc((size_t)K * sizeof(double));
  d->tgt_std = malloc((size_t)K * sizeof(double));
  if (!d->tgt_mean || !d->tgt_std) return sn_fail(err, "out of memory for target statistics");
  d->tgt_n = K;
  target_stats(&d->train, d->tgt_mean, d->tgt_std);
  sn_dataset *sets[3] = {&d->train, d->has_val ? &d->val : NULL, d->has_test ? &d->test : NULL};
  for (int i = 0; i < 3; i++)
    if (sets[i]) standardize_targets(sets[i], d->tgt_mean, d->tgt_std);
  return 0;
}

int sn_data_prepare(const sn_data_config *c, const sn_model *m, sn_data *d, sn_data_part *part, sn_error *err) {
  memset(d, 0, sizeof *d);
  *part = SN_PART_TRAIN;
  if (load_one(c, m, &c->train, &d->train, NULL, err)) return -1;
  *part = SN_PART_VALIDATION;
  if (c->validation.kind != SN_SRC_NONE) {
    if (load_one(c, m, &c->validation, &d->val, &d->train, err)) return -1;
    d->has_val = true;
  } else if (c->validation_split > 0) {
    if (sn_dataset_split(&d->train, c->validation_split, &d->val, err)) return -1;
    d->has_val = true;
  }
  *part = SN_PART_TEST;
  if (c->test.kind != SN_SRC_NONE) {
    if (load_one(c, m, &c->test, &d->test, &d->train, err)) return -1;
    d->has_test = true;
  }
  *part = SN_PART_PREPROCESS;
  if (c->standardize) {
    int64_t F = sn_dataset_features(&d->train);
    d->std_mean = malloc((size_t)F * sizeof(double));
    d->std_std = malloc((size_t)F * sizeof(double));
    if (!d->std_mean || !d->std_std) return sn_fail(err, "out of memory for standardize statistics");
    d->std_n = F;
    if (sn_dataset_stats(&d->train, d->std_mean, d->std_std, err)) return -1;
    sn_dataset *sets[3] = {&d->train, d->has_val ? &d->val : NULL, d->has_test ? &d->test : NULL};
    for (int i = 0; i < 3; i++)
      if (sets[i] && sn_dataset_normalize(sets[i], d->std_mean, d->std_std, F, err)) return -1;
  }
  if (c->standardize_targets) return prepare_targets(d, err);
  return 0;
}

int sn_data_preprocess(const sn_data_config *c, const sn_data *d, sn_dataset *ds, sn_error *err) {
  if (preprocess(c, ds, err)) return -1;
  if (c->standardize && d->std_mean) return sn_dataset_normalize(ds, d->std_mean, d->std_std, d->std_n, err);
  return 0;
}

void sn_data_free(sn_data *d) {
  sn_dataset_free(&d->train);
  sn_dataset_free(&d->val);
  sn_dataset_free(&d->test);
  double *owned[] = {d->std_mean, d->std_std, d->tgt_mean, d->tgt_std};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
  memset(d, 0, sizeof *d);
}
