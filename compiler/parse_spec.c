/* The spec checker: turns the YAML tree (yaml_tree.c) into a typed sn_spec,
 * checking strictly and reporting every problem of the spec in one run, each at
 * the node it is about: unknown keys (with "did you mean"), wrong types, missing
 * required keys, out-of-range numbers, a layer graph that does not connect (unknown
 * names, cycles), sweep settings that would not check; and, as warnings, likely
 * mistakes (softmax applied twice, a loss that does not fit the output).
 *
 * Not for shapes (build_graph.c checks those: they need the layer types) and not
 * for data files (the runtime opens them).
 *
 * Defaults are Keras's where Keras has one; docs/spec-reference.md lists every
 * key with its default, and write_spec.c writes them all out. A layer without
 * `name:` is called after its kind and its place among layers of that kind:
 * dense1, dense2, flatten1, relu1. Every layer's inputs are filled in: as written
 * (`inputs: [a, b]`), or else the previous layer ("input" for the first). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ---------------------------------------------------------------------------
 * Likely mistakes: a spec that checks but probably does not mean what it says */

/* The layer a single-input layer reads: its index, -1 for the model input, -2 when
 * unknown (a join, or a name that did not resolve). */
static int input_of(const sn_spec *s, const sn_layer_spec *l) {
  if (l->n_inputs != 1) return -2;
  if (!strcmp(l->inputs[0], "input")) return -1;
  for (int i = 0; i < s->n_layers; i++)
    if (!strcmp(s->layers[i].name, l->inputs[0])) return i;
  return -2;
}

/* The width of the last axis of layer i's output (-1: the model input) where the
 * kind fixes it (units, filters, dim), looking back through layers that keep it;
 * 0 when unknown. */
static int width(const sn_spec *s, int i) {
  for (int steps = 0; steps <= s->n_layers && i >= -1; steps++) {
    if (i == -1) return s->input_rank ? (int)s->input_shape[s->input_rank - 1] : 0;
    const sn_layer_spec *l = &s->layers[i];
    switch (l->kind) {
    case SN_LAYER_DENSE:
    case SN_LAYER_LSTM:
    case SN_LAYER_GRU:
      return l->units;
    case SN_LAYER_CONV2D:
    case SN_LAYER_CONV1D:
      return l->filters;
    case SN_LAYER_EMBEDDING:
      return l->dim;
    case SN_LAYER_ACTIVATION:
    case SN_LAYER_DROPOUT:
    case SN_LAYER_BATCH_NORM:
    case SN_LAYER_LAYER_NORM:
      i = input_of(s, l);
      break;
    default:
      return 0;
    }
  }
  return 0;
}

/* The layer whose activation ends the model: the last layer, looking back through
 * flatten, reshape and dropout. Returns its index (or -1 when the output ends in
 * no activation of its own), with the activation and the width it acts over. */
static int output_activation(const sn_spec *s, sn_act *act, int *units) {
  int i = s->n_layers - 1;
  for (int steps = 0; steps < s->n_layers && i >= 0; steps++) {
    const sn_layer_spec *l = &s->layers[i];
    switch (l->kind) {
    case SN_LAYER_FLATTEN:
    case SN_LAYER_RESHAPE:
    case SN_LAYER_DROPOUT:
      i = input_of(s, l);
      break;
    case SN_LAYER_DENSE:
    case SN_LAYER_CONV2D:
    case SN_LAYER_CONV1D:
    case SN_LAYER_ACTIVATION:
      *act = l->activation;
      *units = l->kind == SN_LAYER_ACTIVATION ? width(s, input_of(s, l)) : width(s, i);
      return i;
    default:
      return -1;
    }
  }
  return -1;
}

void ck_warn_mistakes(checker *c) {
  const sn_spec *s = c->s;
  if (s->n_layers == 0 || !s->layers[s->n_layers - 1].name[0]) return;
  const sn_layer_spec *last = &s->layers[s->n_layers - 1];
  if (last->kind == SN_LAYER_DROPOUT) {
    sn_diag_warning(c->d, last->loc,
                    "dropout is the last layer (%s): it zeroes model outputs in training",
                    last->name);
    sn_diag_hint(c->d, "put dropout before the output layer");
  }
  if (!sn_node_get(sn_node_get(s->root, "train"), "loss")) return;
  sn_act act = SN_ACT_LINEAR;
  int units = 0, o = output_activation(s, &act, &units);
  if (o < 0) return;
  char who[128];
  if (o == s->n_layers - 1)
    snprintf(who, sizeof who, "the last layer (%s)", s->layers[o].name);
  else
    snprintf(who, sizeof who, "the model output (from layer %s)", s->layers[o].name);
  const char *loss = sn_loss_name(s->loss), *a = sn_act_name(act);
  bool cce = s->loss == SN_LOSS_SPARSE_CCE || s->loss == SN_LOSS_CCE;
  bool bce = s->loss == SN_LOSS_BCE;
  bool accuracy = false;
  for (int i = 0; i < s->n_metrics; i++) accuracy |= s->metric_kind[i] == SN_METRIC_ACCURACY;

  for (int i = 0; i < s->n_metrics; i++)
    if (cce && units > 0 && s->metric_kind[i] == SN_METRIC_TOP_K && s->metric_k[i] >= units) {
      sn_diag_warning(c->d, s->metric_loc[i],
                      "top_k_accuracy with k = %d over %d classes is always 1.0", s->metric_k[i],
                      units);
      sn_diag_hint(c->d, "choose k below the number of classes (the default k is 5)");
    }
  if (s->from_logits && ((cce && act == SN_ACT_SOFTMAX) || (bce && act == SN_ACT_SIGMOID))) {
    sn_diag_warning(c->d, s->loss_loc,
                    "%s ends in %s but the loss has from_logits: true, so %s is applied twice", who,
                    a, a);
    sn_diag_hint(c->d, "drop from_logits, or end the model in a linear layer");
  }
  if (act == SN_ACT_SOFTMAX && units == 1) {
    sn_diag_warning(c->d, s->loss_loc, "%s ends in softmax over 1 unit, which always outputs 1",
                    who);
    sn_diag_hint(c->d, "for one yes/no output use sigmoid with binary_crossentropy");
  } else if (bce && act == SN_ACT_SOFTMAX && units > 1) {
    sn_diag_warning(c->d, s->loss_loc,
                    "binary_crossentropy after softmax over %d units: softmax makes the outputs "
                    "compete, binary cross-entropy scores each one on its own",
                    units);
    sn_diag_hint(c->d, "use activation: sigmoid for independent yes/no outputs, or "
                       "categorical_crossentropy for one class per sample");
  }
  if (cce && act == SN_ACT_SIGMOID) {
    sn_diag_warning(c->d, s->loss_loc,
                    "%s after a sigmoid output: the outputs do not sum to 1 over the classes",
                    loss);
    sn_diag_hint(c->d, "use activation: softmax, or a linear last layer with from_logits: true");
  }
  if ((s->loss == SN_LOSS_MSE || s->loss == SN_LOSS_MAE) && act == SN_ACT_SOFTMAX &&
      (units > 1 || accuracy)) {
    sn_diag_warning(c->d, s->loss_loc, "%s on a softmax output: the model looks like a classifier",
                    loss);
    sn_diag_hint(c->d, "for classes use sparse_categorical_crossentropy (integer labels) or "
                       "categorical_crossentropy (one-hot)");
  }
  if ((cce || bce) && act == SN_ACT_RELU) {
    sn_diag_warning(c->d, s->loss_loc, "%s ends in relu, but %s needs logits or probabilities", who,
                    loss);
    sn_diag_hint(c->d, "end in a linear layer with from_logits: true, or in softmax or sigmoid");
  }
}

/* ---------------------------------------------------------------------------
 * The spec */

static void top_name(checker *c, const sn_node *n) {
  const char *s = ck_get_str(c, n, "name");
  if (!s) return;
  size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
  if (s[len]) {
    sn_diag_error(c->d, n->loc, "name '%s' may only use letters, digits, '_', '.' and '-'", s);
    sn_diag_hint(c->d, "the name becomes a folder under runs/");
  } else if (!strcmp(s, ".") || !strcmp(s, "..")) {
    sn_diag_error(c->d, n->loc, "name must not be '%s'", s);
  } else {
    ck_copy_field(c, n, "name", c->s->name, sizeof c->s->name);
  }
}

static void check_spec(checker *c, const sn_node *root) {
  static const char *const KEYS[] = {"specnet", "name",   "seed",  "data", "model",
                                     "train",   "expect", "sweep", NULL};
  sn_spec *s = c->s;
  int errors0 = c->d->errors;
  if (root->kind != SN_NODE_MAP) {
    ck_type_error(c, root, "a spec", "a mapping (specnet: 1, name: ..., data: ...)");
    return;
  }
  /* A different version may mean different keys: say only that. */
  const sn_node *v = sn_node_get(root, "specnet");
  if (v) {
    int64_t version;
    if (!ck_get_int(c, v, "specnet", INT64_MIN, INT64_MAX, &version)) return;
    if (version != 1) {
      sn_diag_error(c->d, v->loc, "unsupported spec version %lld; this specnet reads version 1",
                    (long long)version);
      return;
    }
    s->version = 1;
  } else {
    ck_missing(c, root, "specnet", "the spec");
    sn_diag_hint(c->d, "start the spec with 'specnet: 1'");
  }
  ck_check_keys(c, root, "the spec", KEYS);
  if ((v = sn_node_get(root, "name")))
    top_name(c, v);
  else
    ck_missing(c, root, "name", "the spec");
  int64_t seed;
  if ((v = sn_node_get(root, "seed")) && ck_get_int(c, v, "seed", 0, INT64_MAX, &seed))
    s->seed = (uint64_t)seed;
  if ((v = sn_node_get(root, "data")))
    ck_data_section(c, v);
  else
    ck_missing(c, root, "data", "the spec");
  if ((v = sn_node_get(root, "model")))
    ck_model_section(c, v);
  else
    ck_missing(c, root, "model", "the spec");
  if ((v = sn_node_get(root, "train")))
    ck_train_section(c, v);
  else
    ck_missing(c, root, "train", "the spec");
  if ((v = sn_node_get(root, "expect"))) ck_expect_section(c, v);
  if (s->data.standardize_targets && s->loss != SN_LOSS_MSE && s->loss != SN_LOSS_MAE &&
      s->loss != SN_LOSS_HUBER) {
    sn_diag_error(c->d, s->data.standardize_targets_loc,
                  "standardize_targets needs a regression loss (mse, mae or huber), the loss is %s",
                  sn_loss_name(s->loss));
    sn_diag_hint(c->d, "class labels and 0/1 targets are not standardized");
  }
  if ((v = sn_node_get(root, "sweep")) && !c->inner)
    ck_sweep_section(c, v, c->d->errors == errors0);
  ck_warn_mistakes(c);
}

/* The defaults of every field a spec may leave out (Keras's where it has one). */
static void spec_defaults(sn_spec *s) {
  s->data.scale = 1;
  s->loss = SN_LOSS_SPARSE_CCE;
  s->huber_delta = 1.0;
  s->optimizer = SN_OPT_ADAM;
  s->learning_rate = 0.001;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->epsilon = 1e-7;
  s->batch_size = 32;
  s->epochs = 1;
  s->shuffle = true;
  s->pad_id = -1;
}

sn_spec *ck_check_tree(sn_node *root, const char *path, sn_diag *d, bool inner) {
  int errors0 = d->errors, first = d->n;
  if (!path) path = "<spec>";
  sn_spec *s = calloc(1, sizeof *s);
  char *p = strdup(path);
  if (!s || !p) {
    sn_diag_error(d, (sn_loc){path, 0, 0}, "out of memory");
    free(s);
    free(p);
    sn_node_free(root);
    return NULL;
  }
  s->path = p;
  s->root = root;
  spec_defaults(s);

  const char *slash = strrchr(p, '/');
  checker c = {
      .d = d, .s = s, .dir = p, .dir_len = slash ? (int)(slash - p) + 1 : 0, .inner = inner};
  check_spec(&c, root);
  sn_diag_sort(d, first);
  if (d->errors != errors0) {
    sn_spec_free(s);
    return NULL;
  }
  return s;
}

sn_spec *sn_spec_from_tree(sn_node *root, const char *path, sn_diag *d) {
  return ck_check_tree(root, path, d, false);
}

/* Before `--set data.train.limit=N` on `train: fashion_mnist:train`: the built-in
 * short form becomes its long form {builtin: fashion_mnist, split: train}, so that a
 * key under it applies. Any other value is left for sn_node_set to report. */
static void promote_builtin(sn_node *root, const char *assignment) {
  static const char *const roles[] = {"train", "test", "validation"};
  sn_node *data = sn_node_get(root, "data");
  if (!data || data->kind != SN_NODE_MAP) return;
  for (size_t r = 0; r < sizeof roles / sizeof *roles; r++) {
    char prefix[32];
    int len = snprintf(prefix, sizeof prefix, "data.%s.", roles[r]);
    if (strncmp(assignment, prefix, (size_t)len)) continue;
    for (int i = 0; i < data->n; i++) {
      sn_node *v = data->items[i];
      if (strcmp(data->keys[i]->text, roles[r]) || v->kind != SN_NODE_SCALAR || v->quoted) continue;
      const char *colon = strchr(v->text, ':');
      if (!colon || strchr(colon + 1, ':') || strpbrk(v->text, "{}[],\"'#&*!|>%@` ")) return;
      char text[200];
      if (snprintf(text, sizeof text, "{builtin: %.*s, split: %s}", (int)(colon - v->text), v->text,
                   colon + 1) >= (int)sizeof text)
        return;
      sn_diag quiet = {0};
      sn_node *long_form = sn_yaml_parse_string(text, "--set", &quiet);
      sn_diag_free(&quiet);
      if (!long_form || long_form->kind != SN_NODE_MAP) {
        sn_node_free(long_form);
        return;
      }
      long_form->loc = v->loc; /* errors about it point at the spec's line */
      for (int k = 0; k < long_form->n; k++)
        long_form->keys[k]->loc = long_form->items[k]->loc = v->loc;
      sn_node_free(v);
      data->items[i] = long_form;
      return;
    }
  }
}

sn_spec *sn_spec_load(const char *path, const char *const *sets, int n_sets, sn_diag *d) {
  int errors0 = d->errors;
  sn_node *root = sn_yaml_parse_file(path, d);
  if (!root) return NULL;
  for (int i = 0; i < n_sets; i++) {
    promote_builtin(root, sets[i]);
    sn_node_set(root, sets[i], d); /* report every bad --set, then check the rest */
  }
  sn_spec *s = sn_spec_from_tree(root, path, d);
  if (s && d->errors != errors0) {
    sn_spec_free(s);
    return NULL;
  }
  return s;
}

void sn_spec_free(sn_spec *s) {
  if (!s) return;
  free((char *)s->path);
  sn_node_free(s->root);
  free(s->layers);
  free(s->order);
  free(s);
}
