/* The resolved spec: the typed sn_spec written back as YAML, with every default
 * filled in, so that a run folder says exactly what was run (spec.resolved.yaml).
 * Reading the output back gives the same sn_spec (positions and the derived
 * synthetic-data seeds aside): every layer is written with its name, its inputs
 * and all its options, every choice as a one-key mapping with all its options.
 *
 * Not a YAML emitter: the tree writer is sn_node_write (yaml_tree.c). Everything
 * written here is either a number, a name the checker has restricted to safe
 * characters, or quoted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"

/* ---------------------------------------------------------------------------
 * Scalars */

/* Doubles in the shortest form that reads back exactly. */
static void num(FILE *out, double v) {
  char buf[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    double back;
    if (sscanf(buf, "%lf", &back) == 1 && back == v) break;
  }
  fputs(buf, out);
  bool has_dot = false;
  for (const char *p = buf; *p; p++) has_dot |= (*p == '.' || *p == 'e' || *p == 'n' || *p == 'i');
  if (!has_dot) fputs(".0", out); /* stays a float in YAML */
}

/* "{name: {key: v}}": a choice with one numeric option. */
static void nested_num(FILE *out, const char *name, const char *key, double v) {
  fprintf(out, "{%s: {%s: ", name, key);
  num(out, v);
  fputs("}}", out);
}

/* "key: v", a flow mapping's first option. */
static void key_num(FILE *out, const char *key, double v) {
  fprintf(out, "%s: ", key);
  num(out, v);
}

/* ", key: v", a flow mapping's next option. */
static void num_field(FILE *out, const char *key, double v) {
  fputs(", ", out);
  key_num(out, key, v);
}

static const char *boolean(bool b) { return b ? "true" : "false"; }

static void quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7F)
      fprintf(out, "\\x%02X", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

/* A name (layer, run, metric): plain when it reads back as the same string. */
static void word(FILE *out, const char *s) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
  bool plain = s[0] != '-' && s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_.-")] == '\0';
  for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++) plain = plain && strcmp(s, nulls[i]);
  if (plain)
    fputs(s, out);
  else
    quoted(out, s);
}

/* Paths are written absolute, so the file reads the same from the run folder. */
static void path(FILE *out, const char *p) {
  char *abs = realpath(p, NULL), cwd[4096];
  if (abs) {
    quoted(out, abs);
  } else if (p[0] != '/' && getcwd(cwd, sizeof cwd)) {
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *joined = malloc(n);
    if (joined) snprintf(joined, n, "%s/%s", cwd, p);
    quoted(out, joined ? joined : p);
    free(joined);
  } else {
    quoted(out, p);
  }
  free(abs);
}

static void pair(FILE *out, const int v[2]) { fprintf(out, "[%d, %d]", v[0], v[1]); }

/* ---------------------------------------------------------------------------
 * Choices */

static void init(FILE *out, sn_init_kind k, double arg) {
  if (k == SN_INIT_NORMAL || k == SN_INIT_UNIFORM)
    nested_num(out, sn_init_name(k), k == SN_INIT_NORMAL ? "std" : "limit", arg);
  else
    fputs(sn_init_name(k), out);
}

static void activation(FILE *out, sn_act a, double alpha) {
  if (sn_act_option(a))
    nested_num(out, sn_act_name(a), sn_act_option(a), alpha);
  else
    fputs(sn_act_name(a), out);
}

/* The options every layer with weights shares. */
static void weights(FILE *out, const sn_layer_spec *l) {
  fputs(", activation: ", out);
  activation(out, l->activation, l->alpha);
  fprintf(out, ", use_bias: %s, kernel_init: ", boolean(l->use_bias));
  init(out, l->kernel_init, l->kernel_init_arg);
  fputs(", bias_init: ", out);
  init(out, l->bias_init, l->bias_init_arg);
}

static const char *padding(sn_padding p) { return p == SN_PAD_SAME ? "same" : "valid"; }

static void layer(FILE *out, const sn_layer_spec *l) {
  fputs("    - name: ", out);
  word(out, l->name);
  fputs("\n      inputs: [", out);
  for (int i = 0; i < l->n_inputs; i++) {
    if (i) fputs(", ", out);
    word(out, l->inputs[i]);
  }
  /* the layer's key (an activation layer's is its activation) and its options */
  const char *key =
      l->kind == SN_LAYER_ACTIVATION ? sn_act_name(l->activation) : sn_layer_kind_name(l->kind);
  fprintf(out, "]\n      %s: {", key);
  switch (l->kind) {
  case SN_LAYER_DENSE:
    fprintf(out, "units: %d", l->units);
    weights(out, l);
    break;
  case SN_LAYER_CONV2D:
    fprintf(out, "filters: %d, kernel_size: ", l->filters);
    pair(out, l->kernel_size);
    fputs(", strides: ", out);
    pair(out, l->strides);
    fprintf(out, ", padding: %s", padding(l->padding));
    weights(out, l);
    break;
  case SN_LAYER_CONV1D:
    fprintf(out, "filters: %d, kernel_size: %d, strides: %d, padding: %s, dilation: %d", l->filters,
            l->kernel_size[1], l->strides[1], padding(l->padding), l->dilation);
    weights(out, l);
    break;
  case SN_LAYER_LSTM:
  case SN_LAYER_GRU:
    fprintf(out, "units: %d, return_sequences: %s", l->units, boolean(l->return_sequences));
    break;
  case SN_LAYER_MAX_POOL2D:
  case SN_LAYER_AVG_POOL2D:
    fputs("pool_size: ", out);
    pair(out, l->pool_size);
    fputs(", strides: ", out);
    pair(out, l->strides);
    fprintf(out, ", padding: %s", padding(l->padding));
    break;
  case SN_LAYER_RESHAPE:
    fputs("target_shape: [", out);
    for (int i = 0; i < l->target_rank; i++)
      fprintf(out, "%s%" PRId64, i ? ", " : "", l->target_shape[i]);
    fputs("]", out);
    break;
  case SN_LAYER_DROPOUT:
    key_num(out, "rate", l->rate);
    break;
  case SN_LAYER_BATCH_NORM:
    key_num(out, "momentum", l->momentum);
    num_field(out, "epsilon", l->epsilon);
    break;
  case SN_LAYER_LAYER_NORM:
    key_num(out, "epsilon", l->epsilon);
    break;
  case SN_LAYER_EMBEDDING:
    fprintf(out, "vocab: %d, dim: %d, kernel_init: ", l->vocab, l->dim);
    init(out, l->kernel_init, l->kernel_init_arg);
    break;
  case SN_LAYER_ACTIVATION:
    if (sn_act_option(l->activation)) key_num(out, sn_act_option(l->activation), l->alpha);
    break;
  case SN_LAYER_CONCAT:
    fprintf(out, "axis: %d", l->axis);
    break;
  case SN_LAYER_POSITION_EMBEDDING:
    fputs("kernel_init: ", out);
    init(out, l->kernel_init, l->kernel_init_arg);
    break;
  case SN_LAYER_ATTENTION:
    fprintf(out, "heads: %d, causal: %s", l->heads, boolean(l->causal));
    num_field(out, "dropout", l->rate);
    fprintf(out, ", use_bias: %s", boolean(l->use_bias));
    break;
  default: /* flatten, global_avg_pool2d, add, multiply: no options */
    break;
  }
  fputs("}\n", out);
}

/* A path field: one path, or a list of them (shards: one per line). */
static void paths(FILE *out, const char *list) {
  if (!strchr(list, '\n')) {
    path(out, list);
    return;
  }
  fputc('[', out);
  char one[4096];
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, "\n");
    snprintf(one, sizeof one, "%.*s", (int)len, p);
    fputs(p == list ? "" : ", ", out);
    path(out, one);
    p += len + (p[len] == '\n');
  }
  fputc(']', out);
}

static void text_source(FILE *out, const sn_source *s) {
  bool lm = s->text_mode == SN_TEXT_LM;
  fputs("{format: text, path: ", out);
  path(out, s->path);
  fprintf(out, ", tokenizer: %s, mode: %s", s->tokenizer == SN_TOK_CHARS ? "chars" : "bytes",
          lm ? "lm" : "classify");
  if (lm) fprintf(out, ", context: %" PRId64, s->context);
  if (lm && s->windows) fprintf(out, ", windows: %" PRId64, s->windows);
  if (lm && !s->windows) fprintf(out, ", stride: %" PRId64, s->stride ? s->stride : s->context);
  if (!lm) fprintf(out, ", length: %" PRId64, s->length);
  if (s->range[0] != 0 || s->range[1] != 0) {
    fputs(", range: [", out);
    num(out, s->range[0]);
    fputs(", ", out);
    num(out, s->range[1]);
    fputs("]", out);
  }
}

static void source(FILE *out, const sn_source *s) {
  switch (s->kind) {
  case SN_SRC_BUILTIN:
    fprintf(out, "{builtin: %s, split: %s", s->name, s->split[0] ? s->split : "train");
    break;
  case SN_SRC_IDX:
  case SN_SRC_NPY: { /* two files: images and labels, or x and y */
    const bool idx = s->kind == SN_SRC_IDX;
    fprintf(out, "{format: %s, %s: ", idx ? "idx" : "npy", idx ? "images" : "x");
    paths(out, s->images);
    fprintf(out, ", %s: ", idx ? "labels" : "y");
    paths(out, s->labels);
    break;
  }
  case SN_SRC_HDF5: /* x and y name datasets inside the file: not paths */
    fputs("{format: hdf5, path: ", out);
    path(out, s->path);
    fputs(", x: ", out);
    quoted(out, s->images);
    fputs(", y: ", out);
    quoted(out, s->labels);
    break;
  case SN_SRC_CSV:
    fputs("{format: csv, path: ", out);
    paths(out, s->path);
    fputs(", label: ", out);
    if (s->label_col[0])
      quoted(out, s->label_col); /* quoted: a column called "3" or "last" stays a name */
    else if (s->label_index < 0)
      fputs("last", out);
    else
      fprintf(out, "%d", s->label_index);
    fprintf(out, ", header: %s", boolean(s->header));
    break;
  case SN_SRC_TEXT:
    text_source(out, s);
    break;
  case SN_SRC_SYNTHETIC:
    fprintf(out,
            "{synthetic: %s, samples: %" PRId64 ", classes: %d, features: %d, noise: ", s->name,
            s->samples, s->classes, s->features);
    num(out, s->noise);
    break;
  default:
    fputs("{", out);
  }
  if (s->limit) fprintf(out, ", limit: %" PRId64, s->limit);
  fputs("}", out);
}

static void numbers(FILE *out, const double *v, int n) {
  fputc('[', out);
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", out);
    num(out, v[i]);
  }
  fputc(']', out);
}

/* ---------------------------------------------------------------------------
 * Sections */

static void data(FILE *out, const sn_data_spec *d) {
  fputs("data:\n  train: ", out);
  source(out, &d->train);
  fputc('\n', out);
  if (d->test.kind != SN_SRC_NONE) {
    fputs("  test: ", out);
    source(out, &d->test);
    fputc('\n', out);
  }
  if (d->validation.kind != SN_SRC_NONE) {
    fputs("  validation: ", out);
    source(out, &d->validation);
    fputc('\n', out);
  } else if (d->validation_split > 0) {
    fputs("  validation: {split: ", out);
    num(out, d->validation_split);
    fputs("}\n", out);
  }
  fputs("  preprocess:\n    - scale: ", out);
  num(out, d->scale);
  fputc('\n', out);
  if (d->n_norm) {
    fputs("    - normalize: {mean: ", out);
    numbers(out, d->norm_mean, d->n_norm);
    fputs(", std: ", out);
    numbers(out, d->norm_std, d->n_norm);
    fputs("}\n", out);
  }
  if (d->standardize) fputs("    - standardize\n", out);
  if (d->standardize_targets) fputs("    - standardize_targets\n", out);
}

static void model(FILE *out, const sn_spec *s) {
  fputs("model:\n  input: [", out);
  for (int i = 0; i < s->input_rank; i++)
    fprintf(out, "%s%" PRId64, i ? ", " : "", s->input_shape[i]);
  fputs("]\n", out);
  if (s->pad_id >= 0 && s->pad_id_loc.line) fprintf(out, "  pad_id: %d\n", s->pad_id); /* model.pad_id */
  fputs("  layers:\n", out);
  for (int i = 0; i < s->n_layers; i++) layer(out, &s->layers[i]);
}

static void optimizer(FILE *out, const sn_spec *s) {
  fprintf(out, "  optimizer:\n    %s: {learning_rate: ", sn_optimizer_name(s->optimizer));
  num(out, s->learning_rate);
  switch (s->optimizer) {
  case SN_OPT_ADAM:
  case SN_OPT_ADAMW:
    num_field(out, "beta1", s->beta1);
    num_field(out, "beta2", s->beta2);
    num_field(out, "epsilon", s->epsilon);
    if (s->optimizer == SN_OPT_ADAMW) num_field(out, "weight_decay", s->weight_decay);
    break;
  case SN_OPT_SGD:
    num_field(out, "momentum", s->momentum);
    fprintf(out, ", nesterov: %s", boolean(s->nesterov));
    break;
  case SN_OPT_RMSPROP:
    num_field(out, "rho", s->rho);
    num_field(out, "momentum", s->momentum);
    num_field(out, "epsilon", s->epsilon);
    break;
  }
  fputs("}\n", out);
}

static void schedule(FILE *out, const sn_schedule *sc) {
  fputs("  schedule: ", out);
  switch (sc->kind) {
  case SN_SCHED_STEP:
    fprintf(out, "{step: {every: %d, gamma: ", sc->every);
    num(out, sc->gamma);
    fputs("}}", out);
    break;
  case SN_SCHED_COSINE:
    nested_num(out, "cosine", "warmup_epochs", sc->warmup_epochs);
    break;
  case SN_SCHED_EXPONENTIAL:
    nested_num(out, "exponential", "gamma", sc->gamma);
    break;
  default:
    fputs("constant", out);
  }
  fputc('\n', out);
}

static void train(FILE *out, const sn_spec *s) {
  fputs("train:\n  loss: ", out);
  switch (s->loss) {
  case SN_LOSS_MSE:
  case SN_LOSS_MAE:
    fputs(sn_loss_name(s->loss), out);
    break;
  case SN_LOSS_HUBER:
    nested_num(out, "huber", "delta", s->huber_delta);
    break;
  default:
    fprintf(out, "{%s: {from_logits: %s}}", sn_loss_name(s->loss), boolean(s->from_logits));
  }
  fputc('\n', out);
  optimizer(out, s);
  if (s->clip_grad_norm > 0) {
    fputs("  clip_grad_norm: ", out);
    num(out, s->clip_grad_norm);
    fputc('\n', out);
  }
  schedule(out, &s->schedule);
  if (s->early.enabled) {
    fputs("  early_stopping: {monitor: ", out);
    word(out, s->early.monitor);
    fprintf(out, ", patience: %d, min_delta: ", s->early.patience);
    num(out, s->early.min_delta);
    fprintf(out, ", restore_best: %s}\n", boolean(s->early.restore_best));
  }
  fprintf(out, "  batch_size: %" PRId64 "\n  epochs: %d\n  shuffle: ", s->batch_size, s->epochs);
  if (s->shuffle && s->shuffle_block > 0)
    fprintf(out, "{block: %" PRId64 "}", s->shuffle_block);
  else
    fputs(boolean(s->shuffle), out);
  fputs("\n  metrics: [", out);
  for (int i = 0; i < s->n_metrics; i++) {
    if (i) fputs(", ", out);
    if (s->metric_kind[i] == SN_METRIC_TOP_K)
      fprintf(out, "{%s: {k: %d}}", s->metrics[i], s->metric_k[i]);
    else
      fputs(s->metrics[i], out);
  }
  fputs("]\n", out);
}

static void expect(FILE *out, const sn_spec *s) {
  if (!s->n_expect) return;
  fputs("expect:\n", out);
  for (int i = 0; i < s->n_expect; i++) {
    const sn_expect_spec *e = &s->expect[i];
    fprintf(out, "  %s: {", e->key);
    if (!strcmp(e->key, "gradcheck")) {
      fputs("max_rel_error: ", out);
      num(out, e->max_rel_error);
    } else if (!strcmp(e->key, "error")) {
      fputs("contains: ", out);
      quoted(out, e->contains);
    } else {
      if (e->has_min) {
        fputs("min: ", out);
        num(out, e->min);
      }
      if (e->has_max) {
        fputs(e->has_min ? ", max: " : "max: ", out);
        num(out, e->max);
      }
    }
    fputs("}\n", out);
  }
}

/* One parameter of the method form: its values, or its distribution. */
static void sweep_parameter(FILE *out, const sn_sweep_axis *ax) {
  fprintf(out, "    %s: ", ax->key);
  if (ax->n_values > 0) {
    fputs("{choice: [", out);
    for (int j = 0; j < ax->n_values; j++) fprintf(out, "%s%s", j ? ", " : "", ax->values[j]); /* flow YAML */
    fputs("]}\n", out);
    return;
  }
  fprintf(out, "{%s: [", ax->whole ? "int" : ax->log ? "log_uniform" : "uniform");
  num(out, ax->lo);
  fputs(", ", out);
  num(out, ax->hi);
  fputs("]}\n", out);
}

/* The method form (method, trials, parameters, scheduler), which says everything a
 * sweep can hold; the older random: {count, ranges} form only for ranges rounded to
 * integers, which the method form has no word for. */
static void sweep(FILE *out, const sn_sweep_spec *sw) {
  if (sw->kind == SN_SWEEP_NONE) return;
  fputs("sweep:\n", out);
  bool rounded = false;
  for (int i = 0; i < sw->n_axes; i++) rounded |= sw->kind == SN_SWEEP_RANDOM && sw->axes[i].integer && !sw->axes[i].whole;
  if (rounded) {
    fprintf(out, "  random:\n    count: %d\n    ranges:\n", sw->count);
    for (int i = 0; i < sw->n_axes; i++) {
      const sn_sweep_axis *ax = &sw->axes[i];
      fprintf(out, "      %s: {min: ", ax->key);
      num(out, ax->lo);
      num_field(out, "max", ax->hi);
      fprintf(out, ", log: %s, integer: %s}\n", boolean(ax->log), boolean(ax->integer));
    }
  } else {
    fprintf(out, "  method: %s\n", sw->kind == SN_SWEEP_GRID ? "grid" : "random");
    if (sw->kind == SN_SWEEP_RANDOM) fprintf(out, "  trials: %d\n", sw->count);
    fputs("  parameters:\n", out);
    for (int i = 0; i < sw->n_axes; i++) sweep_parameter(out, &sw->axes[i]);
  }
  fputs("  metric: ", out);
  word(out, sw->metric);
  fprintf(out, "\n  mode: %s\n", sw->maximize ? "max" : "min");
  if (sw->halving) {
    fprintf(out, "  scheduler: {halving: {min_epochs: %d, eta: %d, metric: ", sw->min_epochs, sw->eta);
    word(out, sw->halving_metric);
    fputs("}}\n", out);
  }
}

void sn_spec_write_resolved(const sn_spec *s, FILE *out) {
  fputs("# ", out);
  for (const unsigned char *p = (const unsigned char *)s->path; *p; p++)
    fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, out); /* one comment line */
  fputs(" resolved: every default filled in\n", out);
  fprintf(out, "specnet: %d\nname: ", s->version);
  word(out, s->name);
  fprintf(out, "\nseed: %" PRIu64 "\n", s->seed);
  data(out, &s->data);
  model(out, s);
  train(out, s);
  expect(out, s);
  sweep(out, &s->sweep);
}
