/* The resolved spec: the typed sn_spec written back as YAML, with every default
 * filled in, so that a run folder says exactly what was run (spec.resolved.yaml).
 * Reading the output back gives the same sn_spec. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

static const char *init_name(sn_init_kind k) {
  static const char *names[] = {"zeros",      "ones",      "glorot_uniform", "glorot_normal",
                                "he_uniform", "he_normal", "normal"};
  return names[k];
}

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

static void quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

/* Paths are written absolute, so the file reads the same from the run folder. */
static void path(FILE *out, const char *p) {
  char *abs = realpath(p, NULL);
  quoted(out, abs ? abs : p);
  free(abs);
}


static void init(FILE *out, sn_init_kind k, double arg) {
  if (k == SN_INIT_NORMAL) {
    fputs("{normal: {std: ", out);
    num(out, arg);
    fputs("}}", out);
  } else {
    fputs(init_name(k), out);
  }
}

static void source(FILE *out, const sn_source *s) {
  switch (s->kind) {
  case SN_SRC_BUILTIN: fprintf(out, "{builtin: %s, split: %s", s->name, s->split[0] ? s->split : "train"); break;
  case SN_SRC_IDX:
    fputs("{format: idx, images: ", out);
    path(out, s->images);
    fputs(", labels: ", out);
    path(out, s->labels);
    break;
  case SN_SRC_SYNTHETIC:
    fprintf(out, "{synthetic: %s, samples: %" PRId64 ", classes: %d, features: %d, noise: ", s->name,
            s->samples, s->classes, s->features);
    num(out, s->noise);
    break;
  default: fputs("{", out);
  }
  if (s->limit) fprintf(out, ", limit: %" PRId64, s->limit);
  fputs("}", out);
}

void sn_spec_write_resolved(const sn_spec *s, FILE *out) {
  fprintf(out, "# %s resolved: every default filled in\n", s->path);
  fprintf(out, "specnet: %d\nname: %s\nseed: %" PRIu64 "\n", s->version, s->name, s->seed);
  fputs("data:\n  train: ", out);
  source(out, &s->data.train);
  fputc('\n', out);
  if (s->data.test.kind != SN_SRC_NONE) {
    fputs("  test: ", out);
    source(out, &s->data.test);
    fputc('\n', out);
  }
  if (s->data.validation.kind != SN_SRC_NONE) {
    fputs("  validation: ", out);
    source(out, &s->data.validation);
    fputc('\n', out);
  } else if (s->data.validation_split > 0) {
    fputs("  validation: {split: ", out);
    num(out, s->data.validation_split);
    fputs("}\n", out);
  }
  fputs("  preprocess:\n    - scale: ", out);
  num(out, s->data.scale);
  fputs("\nmodel:\n  input: [", out);
  for (int i = 0; i < s->input_rank; i++) fprintf(out, "%s%" PRId64, i ? ", " : "", s->input_shape[i]);
  fputs("]\n  layers:\n", out);
  for (int i = 0; i < s->n_layers; i++) {
    const sn_layer_spec *l = &s->layers[i];
    fprintf(out, "    - name: %s\n", l->name);
    switch (l->kind) {
    case SN_LAYER_FLATTEN: fputs("      flatten: {}\n", out); break;
    case SN_LAYER_ACTIVATION: fprintf(out, "      %s: {}\n", sn_act_name(l->activation)); break;
    case SN_LAYER_DENSE:
      fprintf(out, "      dense: {units: %d, activation: %s, use_bias: %s, kernel_init: ", l->units,
              sn_act_name(l->activation), l->use_bias ? "true" : "false");
      init(out, l->kernel_init, l->kernel_init_arg);
      fputs(", bias_init: ", out);
      init(out, l->bias_init, l->bias_init_arg);
      fputs("}\n", out);
      break;
    default: fputs("      unsupported: {}\n", out); break;
    }
  }
  fprintf(out, "train:\n  loss: {sparse_categorical_crossentropy: {from_logits: %s}}\n",
          s->from_logits ? "true" : "false");
  fputs("  optimizer:\n    adam: {learning_rate: ", out);
  num(out, s->learning_rate);
  fputs(", beta1: ", out);
  num(out, s->beta1);
  fputs(", beta2: ", out);
  num(out, s->beta2);
  fputs(", epsilon: ", out);
  num(out, s->epsilon);
  fprintf(out, "}\n  batch_size: %" PRId64 "\n  epochs: %d\n  shuffle: %s\n  metrics: [", s->batch_size,
          s->epochs, s->shuffle ? "true" : "false");
  for (int i = 0; i < s->n_metrics; i++) fprintf(out, "%s%s", i ? ", " : "", s->metrics[i]);
  fputs("]\n", out);
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
