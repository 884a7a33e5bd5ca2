/* The spec checker: the `model:` section. Activations, initializers and the
 * options of each layer kind (the layer table), each item of the layer list, and
 * the layer graph: names resolve to layers, cycles are errors, and sn_spec.order
 * is a topological order. Shapes are not checked here (build_graph.c does). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* Names of the enums, in enum order */

static const char *const ACTS[] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = name,
#include "acts.def"
#undef ACTDEF
    NULL};
/* each activation's option keys (its one option, or none), and its default */
static const char *const ACT_KEYS[][2] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = {option, NULL},
#include "acts.def"
#undef ACTDEF
};
static const double ACT_DEFAULT[] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = dflt,
#include "acts.def"
#undef ACTDEF
};
static const char *const INITS[] = {"zeros",         "ones",       "glorot_uniform",
                                    "glorot_normal", "he_uniform", "he_normal",
                                    "normal",        "uniform",    NULL}; /* sn_init_kind */
static const char *const PADDINGS[] = {"valid", "same", NULL}; /* sn_padding */

const char *sn_act_name(sn_act a) { return ENUM_NAME(ACTS, a); }
const char *sn_act_option(sn_act a) { return a >= 0 && a < SN_ACT_COUNT ? ACT_KEYS[a][0] : NULL; }
const char *sn_init_name(sn_init_kind k) { return ENUM_NAME(INITS, k); }

/* ---------------------------------------------------------------------------
 * model: activations, initializers and the options of each layer */

static double default_alpha(sn_act a) { return a >= 0 && a < SN_ACT_COUNT ? ACT_DEFAULT[a] : 0.0; }

/* The option of the activation l->activation (alpha of leaky_relu and elu), from
 * its options (map may be NULL), into l->alpha. */
static void read_act_option(checker *c, const sn_node *map, sn_layer_spec *l) {
  const char *key = sn_act_option(l->activation);
  const sn_node *v = key ? sn_node_get(map, key) : NULL;
  if (v) ck_get_real(c, v, key, 0, false, INFINITY, false, &l->alpha);
}

/* `activation: NAME`, or `activation: {leaky_relu: {alpha: F}}` for those that
 * take an option. */
static void activation_field(checker *c, const sn_node *n, sn_layer_spec *l) {
  const sn_node *name, *opts, *map;
  if (n->kind != SN_NODE_MAP && !ck_is_name(n)) {
    ck_type_error(c, n, "activation", "an activation name");
    return;
  }
  int a;
  if (!ck_choice(c, n, "activation", &name, &opts) ||
      (a = ck_lookup(c, name, "activation", ACTS)) < 0)
    return;
  l->activation = (sn_act)a;
  l->alpha = default_alpha(l->activation);
  if (sn_act_option(l->activation)) {
    if (ck_options(c, name, opts, ACT_KEYS[a], &map)) read_act_option(c, map, l);
  } else {
    ck_no_options(c, name, opts);
  }
}

/* A bare initializer name, `{normal: {std: F}}` or `{uniform: {limit: F}}` (limit
 * 0.05 when left out, as Keras's RandomUniform); INITS is in sn_init_kind order. */
static void initializer(checker *c, const sn_node *n, const char *what, sn_init_kind *kind,
                        double *arg) {
  static const char *const NORMAL_KEYS[] = {"std", NULL};
  static const char *const UNIFORM_KEYS[] = {"limit", NULL};
  const sn_node *name, *opts, *map;
  int k;
  if (!ck_choice(c, n, what, &name, &opts) || (k = ck_lookup(c, name, "initializer", INITS)) < 0)
    return;
  if (k == SN_INIT_UNIFORM) {
    if (!ck_options(c, name, opts, UNIFORM_KEYS, &map)) return;
    double limit = 0.05;
    const sn_node *v = sn_node_get(map, "limit");
    if (v && !ck_get_real(c, v, "limit", 0, true, INFINITY, false, &limit)) return;
    *kind = SN_INIT_UNIFORM;
    *arg = limit;
    return;
  }
  if (k != SN_INIT_NORMAL) {
    ck_no_options(c, name, opts);
    *kind = (sn_init_kind)k;
    *arg = 0;
    return;
  }
  if (!ck_options(c, name, opts, NORMAL_KEYS, &map)) return;
  const sn_node *std = sn_node_get(map, "std");
  if (!std) {
    sn_diag_error(c->d, (map ? map : name)->loc, "missing required key 'std' in normal");
    sn_diag_hint(c->d, "write {normal: {std: 0.05}}");
    return;
  }
  if (ck_get_real(c, std, "std", 0, true, INFINITY, false, arg)) *kind = SN_INIT_NORMAL;
}

/* `3` or `[3, 5]`: a window side for both axes, or (height, width). */
static void get_pair(checker *c, const sn_node *n, const char *what, int out[2]) {
  if (n->kind == SN_NODE_SEQ && n->n == 2) {
    int v[2];
    if (ck_get_int32(c, n->items[0], what, 1, MAX_WINDOW, &v[0]) &&
        ck_get_int32(c, n->items[1], what, 1, MAX_WINDOW, &v[1])) {
      out[0] = v[0];
      out[1] = v[1];
    }
    return;
  }
  if (n->kind != SN_NODE_SCALAR) {
    ck_type_error(c, n, what, "a positive integer or a list [height, width]");
    return;
  }
  int v;
  if (ck_get_int32(c, n, what, 1, MAX_WINDOW, &v)) out[0] = out[1] = v;
}

static void padding_field(checker *c, const sn_node *n, sn_padding *out) {
  if (!ck_is_name(n)) {
    ck_type_error(c, n, "padding", "valid or same");
    return;
  }
  int k = ck_lookup(c, n, "padding", PADDINGS);
  if (k >= 0) *out = (sn_padding)k;
}

/* Reads the options a layer kind has; `map` is NULL when none are written, `at`
 * is where a missing required key is reported then. */
typedef void (*layer_read_fn)(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l);

static void read_weights(checker *c, const sn_node *map, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "activation"))) activation_field(c, v, l);
  if ((v = sn_node_get(map, "use_bias"))) ck_get_bool(c, v, "use_bias", &l->use_bias);
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
  if ((v = sn_node_get(map, "bias_init")))
    initializer(c, v, "bias_init", &l->bias_init, &l->bias_init_arg);
}

/* A layer's option key, reported as missing (where: the layer kind) when absent:
 * at the options' mapping, or at the layer item (at) when it has none. */
static const sn_node *required(checker *c, const sn_node *map, const sn_node *at, const char *key,
                               const char *where) {
  const sn_node *v = sn_node_get(map, key);
  if (!v) ck_missing(c, map ? map : at, key, where);
  return v;
}

static void read_dense(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = required(c, map, at, "units", "dense")))
    ck_get_int32(c, v, "units", 1, MAX_UNITS, &l->units);
  read_weights(c, map, l);
}

/* A convolution's filters, required (kind: the layer kind, for the message). */
static void read_filters(checker *c, const sn_node *map, const sn_node *at, const char *kind,
                         sn_layer_spec *l) {
  const sn_node *v = required(c, map, at, "filters", kind);
  if (v) ck_get_int32(c, v, "filters", 1, MAX_UNITS, &l->filters);
}

static void read_conv2d(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  read_filters(c, map, at, "conv2d", l);
  if ((v = required(c, map, at, "kernel_size", "conv2d")))
    get_pair(c, v, "kernel_size", l->kernel_size);
  if ((v = sn_node_get(map, "strides"))) get_pair(c, v, "strides", l->strides);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
  read_weights(c, map, l);
}

/* conv1d: one window side, one stride, the [N, 1, T, C] view's second axis. */
static void read_conv1d(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  read_filters(c, map, at, "conv1d", l);
  if ((v = required(c, map, at, "kernel_size", "conv1d")))
    ck_get_int32(c, v, "kernel_size", 1, MAX_WINDOW, &l->kernel_size[1]);
  if ((v = sn_node_get(map, "strides")))
    ck_get_int32(c, v, "strides", 1, MAX_WINDOW, &l->strides[1]);
  if ((v = sn_node_get(map, "dilation")))
    ck_get_int32(c, v, "dilation", 1, MAX_WINDOW, &l->dilation);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
  read_weights(c, map, l);
}

static void read_recurrent(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = required(c, map, at, "units", sn_layer_kind_name(l->kind))))
    ck_get_int32(c, v, "units", 1, MAX_UNITS, &l->units);
  if ((v = sn_node_get(map, "return_sequences")))
    ck_get_bool(c, v, "return_sequences", &l->return_sequences);
}

static void read_pool(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "pool_size"))) get_pair(c, v, "pool_size", l->pool_size);
  l->strides[0] = l->pool_size[0]; /* Keras: strides default to pool_size */
  l->strides[1] = l->pool_size[1];
  if ((v = sn_node_get(map, "strides"))) get_pair(c, v, "strides", l->strides);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
}

static void read_reshape(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *n = required(c, map, at, "target_shape", "reshape");
  if (!n) return;
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 4) {
    ck_type_error(c, n, "target_shape", "a list of 1 to 4 integers (one may be -1)");
    if (ck_is_int_text(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  bool ok = true;
  const sn_node *inferred = NULL;
  for (int i = 0; i < n->n; i++) {
    const sn_node *it = n->items[i];
    int64_t dim;
    if (ck_is_int_text(it) && !strcmp(it->text, "-1")) {
      if (inferred) {
        sn_diag_error(c->d, it->loc, "target_shape may have one -1, got a second");
        ok = false;
      }
      inferred = it;
      l->target_shape[i] = -1;
    } else if (ck_get_int(c, it, "a target_shape dimension", 1, MAX_INPUT_ELEMS, &dim)) {
      l->target_shape[i] = dim;
    } else {
      ok = false;
    }
  }
  if (ok) l->target_rank = n->n;
}

static void read_dropout(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v = required(c, map, at, "rate", "dropout");
  if (v) ck_get_real(c, v, "rate", 0, false, 1, true, &l->rate);
}

static void read_norm(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "momentum")))
    ck_get_real(c, v, "momentum", 0, false, 1, true, &l->momentum);
  if ((v = sn_node_get(map, "epsilon")))
    ck_get_real(c, v, "epsilon", 0, true, INFINITY, false, &l->epsilon);
}

static void read_embedding(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v, *vv = required(c, map, at, "vocab", "embedding");
  bool ok = true;
  if (vv) ok = ck_get_int32(c, vv, "vocab", 1, MAX_UNITS, &l->vocab);
  const sn_node *dv = required(c, map, at, "dim", "embedding");
  if (dv) ok = ck_get_int32(c, dv, "dim", 1, MAX_UNITS, &l->dim) && ok;
  if (vv && dv && ok && (int64_t)l->vocab * l->dim > MAX_INPUT_ELEMS)
    sn_diag_error(c->d, vv->loc, "embedding has vocab x dim = %lld parameters; at most %lld",
                  (long long)l->vocab * l->dim, (long long)MAX_INPUT_ELEMS);
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
}

static void read_act_layer(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  (void)at;
  read_act_option(c, map, l);
}

static void read_concat(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v = sn_node_get(map, "axis");
  if (v) ck_get_int32(c, v, "axis", -4, 3, &l->axis); /* per sample: rank 4 at most */
}

/* sequence layers: position_embedding, attention */
static void read_position_embedding(checker *c, const sn_node *map, const sn_node *at,
                                    sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
}

static void read_attention(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = required(c, map, at, "heads", "attention"))) {
    ck_get_int32(c, v, "heads", 1, MAX_UNITS, &l->heads);
    l->heads_loc = v->loc;
  }
  if ((v = sn_node_get(map, "causal"))) ck_get_bool(c, v, "causal", &l->causal);
  if ((v = sn_node_get(map, "dropout"))) ck_get_real(c, v, "dropout", 0, false, 1, true, &l->rate);
  if ((v = sn_node_get(map, "use_bias"))) ck_get_bool(c, v, "use_bias", &l->use_bias);
}

/* ---------------------------------------------------------------------------
 * model: the layer table. One entry per layer name; "did you mean" and the
 * default names (dense1, relu2) come from it. */

static const char *const DENSE_KEYS[] = {"units",       "activation", "use_bias",
                                         "kernel_init", "bias_init",  NULL};
static const char *const CONV_KEYS[] = {"filters",     "kernel_size", "strides",
                                        "padding",     "activation",  "use_bias",
                                        "kernel_init", "bias_init",   NULL};
static const char *const CONV1D_KEYS[] = {"filters",    "kernel_size", "strides",   "padding",
                                          "dilation",   "activation",  "use_bias",  "kernel_init",
                                          "bias_init",  NULL};
static const char *const RECURRENT_KEYS[] = {"units", "return_sequences", NULL};
static const char *const POOL_KEYS[] = {"pool_size", "strides", "padding", NULL};
static const char *const RESHAPE_KEYS[] = {"target_shape", NULL};
static const char *const DROPOUT_KEYS[] = {"rate", NULL};
static const char *const BN_KEYS[] = {"momentum", "epsilon", NULL};
static const char *const LN_KEYS[] = {"epsilon", NULL};
static const char *const EMBED_KEYS[] = {"vocab", "dim", "kernel_init", NULL};
static const char *const CONCAT_KEYS[] = {"axis", NULL};
static const char *const POS_EMBED_KEYS[] = {"kernel_init", NULL};
static const char *const ATTENTION_KEYS[] = {"heads", "causal", "dropout", "use_bias", NULL};

typedef struct layer_def {
  const char *name;
  sn_layer_kind kind;
  sn_act act;              /* activation layers */
  const char *const *keys; /* option keys; NULL: the layer takes no options */
  layer_read_fn read;
  int min_inputs, max_inputs;
} layer_def;

static const layer_def LAYER_DEFS[] = {
    {"dense", SN_LAYER_DENSE, 0, DENSE_KEYS, read_dense, 1, 1},
    {"conv2d", SN_LAYER_CONV2D, 0, CONV_KEYS, read_conv2d, 1, 1},
    {"max_pool2d", SN_LAYER_MAX_POOL2D, 0, POOL_KEYS, read_pool, 1, 1},
    {"avg_pool2d", SN_LAYER_AVG_POOL2D, 0, POOL_KEYS, read_pool, 1, 1},
    {"global_avg_pool2d", SN_LAYER_GLOBAL_AVG_POOL2D, 0, NULL, NULL, 1, 1},
    {"flatten", SN_LAYER_FLATTEN, 0, NULL, NULL, 1, 1},
    {"reshape", SN_LAYER_RESHAPE, 0, RESHAPE_KEYS, read_reshape, 1, 1},
    {"dropout", SN_LAYER_DROPOUT, 0, DROPOUT_KEYS, read_dropout, 1, 1},
    {"batch_norm", SN_LAYER_BATCH_NORM, 0, BN_KEYS, read_norm, 1, 1},
    {"layer_norm", SN_LAYER_LAYER_NORM, 0, LN_KEYS, read_norm, 1, 1},
    {"embedding", SN_LAYER_EMBEDDING, 0, EMBED_KEYS, read_embedding, 1, 1},
/* every activation as a layer (`- relu`, `- leaky_relu: {alpha: 0.1}`) */
#define ACTDEF(id, name, op, grad_op, from, option, dflt) \
    {name, SN_LAYER_ACTIVATION, SN_ACT_##id, ACT_KEYS[SN_ACT_##id], read_act_layer, 1, 1},
#include "acts.def"
#undef ACTDEF
    /* sequences [N, T, C] */
    {"conv1d", SN_LAYER_CONV1D, 0, CONV1D_KEYS, read_conv1d, 1, 1},
    {"global_avg_pool1d", SN_LAYER_GLOBAL_AVG_POOL1D, 0, NULL, NULL, 1, 1},
    {"global_max_pool1d", SN_LAYER_GLOBAL_MAX_POOL1D, 0, NULL, NULL, 1, 1},
    {"lstm", SN_LAYER_LSTM, 0, RECURRENT_KEYS, read_recurrent, 1, 1},
    {"gru", SN_LAYER_GRU, 0, RECURRENT_KEYS, read_recurrent, 1, 1},
    {"add", SN_LAYER_ADD, 0, NULL, NULL, 2, MAX_INPUTS},
    {"multiply", SN_LAYER_MULTIPLY, 0, NULL, NULL, 2, MAX_INPUTS},
    {"concat", SN_LAYER_CONCAT, 0, CONCAT_KEYS, read_concat, 2, MAX_INPUTS},
    /* sequences */
    {"position_embedding", SN_LAYER_POSITION_EMBEDDING, 0, POS_EMBED_KEYS, read_position_embedding,
     1, 1},
    {"attention", SN_LAYER_ATTENTION, 0, ATTENTION_KEYS, read_attention, 1, 1},
};
enum { N_LAYER_DEFS = sizeof LAYER_DEFS / sizeof *LAYER_DEFS };

/* The layer names, NULL-terminated, for lookups and hints. */
static const char *const *layer_names(const char *names[N_LAYER_DEFS + 1]) {
  for (int i = 0; i < N_LAYER_DEFS; i++) names[i] = LAYER_DEFS[i].name;
  names[N_LAYER_DEFS] = NULL;
  return names;
}

bool sn_spec_softmax_output(const sn_spec *s) {
  return s->n_layers > 0 && s->layers[s->n_layers - 1].activation == SN_ACT_SOFTMAX &&
         !s->from_logits;
}

const char *sn_layer_kind_name(sn_layer_kind k) {
  if (k == SN_LAYER_ACTIVATION) return "activation";
  for (int i = 0; i < N_LAYER_DEFS; i++)
    if (LAYER_DEFS[i].kind == k) return LAYER_DEFS[i].name;
  return "?";
}

/* Defaults of a layer of kind `def`, before its options are read. */
static void layer_defaults(sn_layer_spec *l, const layer_def *def) {
  l->kind = def->kind;
  l->activation = def->kind == SN_LAYER_ACTIVATION ? def->act : SN_ACT_LINEAR;
  l->alpha = default_alpha(l->activation);
  l->use_bias = true;
  l->kernel_init = SN_INIT_GLOROT_UNIFORM;
  l->bias_init = SN_INIT_ZEROS;
  switch (def->kind) {
  case SN_LAYER_CONV2D:
    l->strides[0] = l->strides[1] = 1;
    break;
  case SN_LAYER_CONV1D:
    l->kernel_size[0] = l->strides[0] = l->strides[1] = l->dilation = 1;
    break;
  case SN_LAYER_MAX_POOL2D:
  case SN_LAYER_AVG_POOL2D:
    l->pool_size[0] = l->pool_size[1] = 2;
    break;
  case SN_LAYER_BATCH_NORM:
    l->momentum = 0.99;
    l->epsilon = 1e-3;
    break;
  case SN_LAYER_LAYER_NORM:
    l->epsilon = 1e-3;
    break;
  case SN_LAYER_EMBEDDING:
    l->use_bias = false;
    l->kernel_init = SN_INIT_UNIFORM; /* Keras's embeddings: uniform in [-0.05, 0.05] */
    l->kernel_init_arg = 0.05;
    break;
  case SN_LAYER_CONCAT:
    l->axis = -1;
    break;
  case SN_LAYER_POSITION_EMBEDDING:
    l->use_bias = false;
    l->kernel_init = SN_INIT_NORMAL; /* GPT-2's: normal, std 0.02 */
    l->kernel_init_arg = 0.02;
    break;
  default:
    break;
  }
}

/* ---------------------------------------------------------------------------
 * model: one item of the layer list */

/* What the graph pass needs beyond sn_layer_spec. */
typedef struct layer_aux {
  const layer_def *def;  /* NULL when the kind is wrong */
  const sn_node *inputs; /* the `inputs:` value, or NULL */
  int src[MAX_INPUTS];   /* resolved inputs: a layer index, -1 the model input, -2 none */
} layer_aux;

/* Layer names become parameter names ("h1.weight"), so no dots. */
static void layer_name(checker *c, const sn_node *n, sn_layer_spec *l) {
  const char *s = ck_get_str(c, n, "name");
  if (!s) return;
  size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
  if (s[len]) {
    sn_diag_error(c->d, n->loc, "layer name '%s' may only use letters, digits, '_' and '-'", s);
    return;
  }
  if (!strcmp(s, "input")) {
    sn_diag_error(c->d, n->loc, "layer name 'input' is reserved for the model input");
    return;
  }
  ck_copy_field(c, n, "layer name", l->name, sizeof l->name);
}

static void layer_inputs(checker *c, const sn_node *n, sn_layer_spec *l) {
  if (!ck_nonempty_list(c, n, "inputs", "a non-empty list of layer names")) return;
  if (n->n > MAX_INPUTS) {
    sn_diag_error(c->d, n->loc, "a layer takes at most %d inputs, got %d", MAX_INPUTS, n->n);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    l->input_locs[i] = n->items[i]->loc;
    if (ck_get_str(c, n->items[i], "an input name"))
      ck_copy_field(c, n->items[i], "an input name", l->inputs[i], sizeof l->inputs[i]);
  }
  l->n_inputs = n->n;
}

static const layer_def *find_layer_def(const char *name) {
  for (int i = 0; i < N_LAYER_DEFS; i++)
    if (!strcmp(name, LAYER_DEFS[i].name)) return &LAYER_DEFS[i];
  return NULL;
}

/* One item of model.layers: `- flatten`, `- dense: {...}`, or a mapping with one
 * layer key beside `name:` and `inputs:`. `counts` numbers the layers of each kind. */
static void layer(checker *c, const sn_node *item, sn_layer_spec *l, layer_aux *aux, int *counts) {
  static const char *const ITEM_KEYS[] = {"name", "inputs", NULL};
  const char *names[N_LAYER_DEFS + 1];
  layer_names(names);
  l->loc = item->loc;
  const sn_node *kind = NULL, *opts = NULL, *name = NULL;
  if (ck_is_name(item)) {
    kind = item;
  } else if (item->kind == SN_NODE_MAP) {
    for (int i = 0; i < item->n; i++) {
      const sn_node *k = item->keys[i];
      if (!strcmp(k->text, "name")) {
        name = item->items[i];
      } else if (!strcmp(k->text, "inputs")) {
        aux->inputs = item->items[i];
      } else if (find_layer_def(k->text)) {
        if (kind) {
          sn_diag_error(c->d, k->loc, "a layer has one kind, got '%s' and '%s'", kind->text,
                        k->text);
        } else {
          kind = k;
          opts = item->items[i];
        }
      }
    }
    /* A key that is no layer is the kind when there is none (a misspelt layer),
     * else an unknown key. */
    for (int i = 0; i < item->n; i++) {
      const sn_node *k = item->keys[i];
      if (ck_in_list(k->text, ITEM_KEYS) || find_layer_def(k->text)) continue;
      if (!kind) {
        kind = k;
        opts = item->items[i];
        continue;
      }
      sn_diag_error(c->d, k->loc, "unknown key '%s' in a layer", k->text);
      ck_hint_closest(c, k->text, ITEM_KEYS, names);
    }
  } else {
    ck_type_error(c, item, "a layer", "a name (- flatten) or a mapping (- dense: {units: 10})");
    return;
  }
  if (name) layer_name(c, name, l);
  if (aux->inputs) layer_inputs(c, aux->inputs, l);
  if (!kind) {
    char buf[512];
    sn_diag_error(c->d, item->loc, "layer has no kind");
    sn_diag_hint(c->d, "expected one of: %s", ck_join(names, buf, sizeof buf));
    return;
  }
  int k = ck_lookup(c, kind, "layer", names);
  if (k < 0) return;
  const layer_def *def = &LAYER_DEFS[k];
  aux->def = def;
  layer_defaults(l, def);
  ++counts[k];
  if (!name) snprintf(l->name, sizeof l->name, "%s%d", def->name, counts[k]);
  const sn_node *map = NULL;
  if (!def->keys || !def->keys[0])
    ck_no_options(c, kind, opts);
  else if (!ck_options(c, kind, opts, def->keys, &map))
    return;
  if (def->read) def->read(c, map, item, l);
}

/* ---------------------------------------------------------------------------
 * model: the layer graph. Names resolve to layers, each layer gets as many
 * inputs as its kind takes, cycles are errors, and sn_spec.order is a topological
 * order that keeps list order where it can (Kahn's algorithm taking the lowest
 * ready index first). */

typedef struct named {
  const char *name;
  int index;
} named;

static int cmp_named(const void *pa, const void *pb) {
  const named *a = pa, *b = pb;
  int r = strcmp(a->name, b->name);
  return r ? r : (a->index > b->index) - (a->index < b->index);
}

/* Index of the first layer called `name` in the sorted table, or -1. */
static int find_named(const named *tab, int n, const char *name) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(tab[mid].name, name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && !strcmp(tab[lo].name, name) ? tab[lo].index : -1;
}

/* A min-heap of layer indices: the ready layers, lowest first. */
static void heap_push(int *h, int *n, int v) {
  int i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = v;
}

static int heap_pop(int *h, int *n) {
  int top = h[0], v = h[--*n], i = 0;
  for (;;) {
    int k = 2 * i + 1;
    if (k >= *n) break;
    if (k + 1 < *n && h[k + 1] < h[k]) k++;
    if (h[k] >= v) break;
    h[i] = h[k];
    i = k;
  }
  h[i] = v;
  return top;
}

/* The back edge u -> v (v takes u's output) closes the loop stk[at..sp) -> v. */
static void report_cycle(checker *c, const layer_aux *aux, int u, int v, const int *stk, int sp) {
  const sn_layer_spec *L = c->s->layers;
  int a = u < v ? u : v, b = u < v ? v : u, k = 0, at = sp - 1;
  while (k < L[v].n_inputs - 1 && aux[v].src[k] != u) k++;
  while (at > 0 && stk[at] != v) at--;
  sn_diag_error(c->d, L[v].input_locs[k],
                "cycle: layer '%s' (line %d) and layer '%s' (line %d) feed each other", L[a].name,
                L[a].loc.line, L[b].name, L[b].loc.line);
  if (sp - at <= 2) return;
  char path[512];
  size_t len = 0;
  for (int i = at; i <= sp && len < sizeof path; i++) {
    int w = snprintf(path + len, sizeof path - len, "%s%s", i > at ? " -> " : "",
                     L[i < sp ? stk[i] : v].name);
    len = w < 0 ? sizeof path : len + (size_t)w;
  }
  if (len >= sizeof path) memcpy(path + sizeof path - 4, "...", 4);
  sn_diag_hint(c->d, "the loop: %s", path);
}

/* Without `inputs:`, a layer takes the previous one; then each layer must have as
 * many inputs as its kind takes. */
static void default_inputs(checker *c, const layer_aux *aux) {
  sn_layer_spec *L = c->s->layers;
  int n = c->s->n_layers;
  for (int i = 0; i < n; i++) {
    const char *prev = i ? L[i - 1].name : "input";
    if (aux[i].inputs || !*prev) continue; /* a previous layer without a name is reported */
    snprintf(L[i].inputs[0], sizeof L[i].inputs[0], "%s", prev);
    L[i].input_locs[0] = L[i].loc;
    L[i].n_inputs = 1;
  }
  for (int i = 0; i < n; i++) {
    const layer_def *def = aux[i].def;
    int k = L[i].n_inputs;
    if (!def || !k || !L[i].name[0]) continue;
    sn_loc at = aux[i].inputs ? aux[i].inputs->loc : L[i].loc;
    if (k < def->min_inputs) {
      sn_diag_error(c->d, at, "layer '%s' (%s) needs at least %d inputs, got %d", L[i].name,
                    def->name, def->min_inputs, k);
      if (!aux[i].inputs) sn_diag_hint(c->d, "name the layers it joins: inputs: [a, b]");
    } else if (k > def->max_inputs) {
      sn_diag_error(c->d, at, "layer '%s' (%s) takes 1 input, got %d", L[i].name, def->name, k);
      sn_diag_hint(c->d, "join them first with add, multiply or concat");
    }
  }
}

/* The graph pass's arrays, n layers each (adj: n * MAX_INPUTS edges). */
typedef struct graph_work {
  named *tab;
  const char **cands;
  int *indeg, *start, *adj, *heap, *order, *color, *stk, *pos;
} graph_work;

static bool work_alloc(graph_work *w, int n) {
  size_t z = (size_t)n;
  w->tab = malloc(sizeof *w->tab * z);
  w->cands = malloc(sizeof *w->cands * (z + 2));
  w->indeg = calloc(z, sizeof *w->indeg);
  w->start = calloc(z + 1, sizeof *w->start);
  w->adj = malloc(sizeof *w->adj * z * MAX_INPUTS);
  w->heap = malloc(sizeof *w->heap * z);
  w->order = malloc(sizeof *w->order * z);
  w->color = calloc(z, sizeof *w->color);
  w->stk = malloc(sizeof *w->stk * z);
  w->pos = malloc(sizeof *w->pos * z);
  return w->tab && w->cands && w->indeg && w->start && w->adj && w->heap && w->order &&
         w->color && w->stk && w->pos;
}

static void work_free(graph_work *w) {
  void *owned[] = {w->tab,  w->cands, w->indeg, w->start, w->adj,
                   w->heap, w->order, w->color, w->stk,   w->pos};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
}

/* Names: duplicates are errors, then each input resolves to a layer (aux->src),
 * counting each layer's inputs (indeg) and outputs (start[j + 1]). */
static void resolve_inputs(checker *c, layer_aux *aux, graph_work *w) {
  const sn_layer_spec *L = c->s->layers;
  int n = c->s->n_layers, nt = 0;
  for (int i = 0; i < n; i++)
    if (L[i].name[0]) w->tab[nt++] = (named){L[i].name, i};
  qsort(w->tab, (size_t)nt, sizeof *w->tab, cmp_named);
  for (int j = 1, g = 0; j < nt; j++) {
    if (strcmp(w->tab[j].name, w->tab[g].name)) {
      g = j;
      continue;
    }
    sn_diag_error(c->d, L[w->tab[j].index].loc, "duplicate layer name '%s' (also used at line %d)",
                  w->tab[j].name, L[w->tab[g].index].loc.line);
  }
  for (int i = 0; i < n; i++) w->cands[i] = L[i].name;
  w->cands[n] = "input";
  w->cands[n + 1] = NULL;
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < L[i].n_inputs; k++) {
      const char *in = L[i].inputs[k];
      aux[i].src[k] = -2;
      if (!*in) continue;
      if (!strcmp(in, "input")) {
        aux[i].src[k] = -1;
        continue;
      }
      int j = find_named(w->tab, nt, in);
      if (j < 0) {
        sn_diag_error(c->d, L[i].input_locs[k], "unknown layer '%s' in inputs", in);
        ck_hint_closest(c, in, w->cands, NULL);
      } else if (j == i) {
        sn_diag_error(c->d, L[i].input_locs[k], "layer '%s' takes its own output as input", in);
      } else {
        aux[i].src[k] = j;
        w->indeg[i]++;
        w->start[j + 1]++;
      }
    }
  }
}

/* Edges producer -> consumer as lists of consumers (adj[start[u] .. start[u + 1])),
 * then Kahn's algorithm taking the lowest ready index first. Returns how many
 * layers it placed in w->order; the rest lie on a cycle or after one. */
static int topological_order(const checker *c, const layer_aux *aux, graph_work *w) {
  const sn_layer_spec *L = c->s->layers;
  int n = c->s->n_layers, nh = 0, placed = 0;
  for (int i = 0; i < n; i++) w->start[i + 1] += w->start[i];
  for (int i = 0; i < n; i++) w->pos[i] = w->start[i];
  for (int i = 0; i < n; i++)
    for (int k = 0; k < L[i].n_inputs; k++)
      if (aux[i].src[k] >= 0) w->adj[w->pos[aux[i].src[k]]++] = i;
  for (int i = 0; i < n; i++)
    if (!w->indeg[i]) heap_push(w->heap, &nh, i);
  while (nh) {
    int u = heap_pop(w->heap, &nh);
    w->order[placed++] = u;
    w->color[u] = 2;
    for (int e = w->start[u]; e < w->start[u + 1]; e++)
      if (!--w->indeg[w->adj[e]]) heap_push(w->heap, &nh, w->adj[e]);
  }
  return placed;
}

/* A depth-first search over the layers not placed finds each cycle's closing edge. */
static void report_cycles(checker *c, const layer_aux *aux, graph_work *w) {
  int n = c->s->n_layers, *stk = w->stk, *pos = w->pos, *color = w->color;
  for (int r = 0; r < n; r++) {
    if (color[r]) continue;
    int sp = 0;
    stk[sp] = r;
    pos[sp++] = w->start[r];
    color[r] = 1;
    while (sp) {
      int u = stk[sp - 1];
      if (pos[sp - 1] == w->start[u + 1]) {
        color[u] = 2;
        sp--;
        continue;
      }
      int v = w->adj[pos[sp - 1]++];
      if (color[v] == 1) {
        report_cycle(c, aux, u, v, stk, sp);
      } else if (!color[v]) {
        color[v] = 1;
        stk[sp] = v;
        pos[sp++] = w->start[v];
      }
    }
  }
}

/* Only the last layer is the model output: any other that no layer reads is a
 * likely mistake. */
static void warn_unused(checker *c, const graph_work *w) {
  const sn_layer_spec *L = c->s->layers;
  for (int i = 0; i < c->s->n_layers - 1; i++) {
    /* a layer that failed to parse has no name and was reported already */
    if (w->start[i + 1] > w->start[i] || !L[i].name[0]) continue;
    sn_diag_warning(c->d, L[i].loc,
                    "the output of layer '%s' is not used: no layer takes it, and only the "
                    "last layer is the model output",
                    L[i].name);
    sn_diag_hint(c->d, "list '%s' in the inputs of a later layer, or remove it", L[i].name);
  }
}

static void graph(checker *c, layer_aux *aux) {
  sn_spec *s = c->s;
  int n = s->n_layers, errors0 = c->d->errors;
  default_inputs(c, aux);
  graph_work w;
  if (!work_alloc(&w, n)) {
    sn_diag_error(c->d, s->layers[0].loc, "out of memory");
    work_free(&w);
    return;
  }
  resolve_inputs(c, aux, &w);
  int placed = topological_order(c, aux, &w);
  if (placed < n) report_cycles(c, aux, &w);
  if (placed == n && c->d->errors == errors0) {
    warn_unused(c, &w);
    s->order = w.order;
    w.order = NULL;
  }
  work_free(&w);
}

static void model_input(checker *c, const sn_node *n) {
  sn_spec *s = c->s;
  s->input_loc = n->loc;
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 4) {
    ck_type_error(c, n, "input", "a list of 1 to 4 positive integers");
    double v;
    if (n->kind == SN_NODE_SCALAR && ck_parse_real(n->text, &v) == 0)
      sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  int64_t elems = 1;
  bool ok = true;
  for (int i = 0; i < n->n; i++) {
    int64_t dim;
    if (!ck_get_int(c, n->items[i], "an input dimension", 1, MAX_INPUT_ELEMS, &dim)) {
      ok = false;
      continue;
    }
    s->input_shape[i] = dim;
    if (ok && elems <= MAX_INPUT_ELEMS) elems *= dim; /* both <= 2^31: no overflow */
  }
  if (ok && elems > MAX_INPUT_ELEMS) {
    sn_diag_error(c->d, n->loc, "input has more than %lld values per sample",
                  (long long)MAX_INPUT_ELEMS);
    return;
  }
  s->input_rank = n->n;
}

void ck_model_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"input", "layers", "pad_id", NULL};
  if (!ck_is_map(c, n, "model")) return;
  ck_check_keys(c, n, "model", KEYS);
  sn_spec *s = c->s;
  const sn_node *v;
  if ((v = sn_node_get(n, "input")))
    model_input(c, v);
  else
    ck_missing(c, n, "input", "model");
  if ((v = sn_node_get(n, "pad_id")) && ck_get_int32(c, v, "pad_id", 0, INT32_MAX, &s->pad_id))
    s->pad_id_loc = v->loc;
  if (!(v = sn_node_get(n, "layers"))) {
    ck_missing(c, n, "layers", "model");
    return;
  }
  if (v->kind != SN_NODE_SEQ || v->n == 0) {
    ck_type_error(c, v, "layers", "a non-empty list");
    return;
  }
  if (v->n > MAX_LAYERS) {
    sn_diag_error(c->d, v->loc, "model has %d layers; at most %d are supported", v->n, MAX_LAYERS);
    return;
  }
  s->layers = calloc((size_t)v->n, sizeof *s->layers);
  layer_aux *aux = calloc((size_t)v->n, sizeof *aux);
  if (!s->layers || !aux) {
    sn_diag_error(c->d, v->loc, "out of memory");
    free(aux);
    return;
  }
  s->n_layers = v->n;
  int counts[N_LAYER_DEFS] = {0};
  for (int i = 0; i < v->n; i++) layer(c, v->items[i], &s->layers[i], &aux[i], counts);
  graph(c, aux);
  free(aux);
}
