/* Spec -> forward graph: the model's layers as IR ops, then the loss and the
 * metrics. Each layer kind is one entry in the table at the bottom and one build
 * function; shape problems are reported at the layer's spec line. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct builder {
  const sn_spec *s;
  sn_graph *g;
  sn_diag *d;
  int errors;
} builder;

static sn_op at(const sn_layer_spec *l) {
  sn_op o = {0};
  o.loc = l->loc;
  snprintf(o.layer, sizeof o.layer, "%s", l->name);
  return o;
}

static void shape_str(const sn_type *t, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "[%s", t->batched ? "N" : "");
  for (int i = 0; i < t->rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", (i || t->batched) ? ", " : "",
                          (long long)t->dim[i]);
  if (n < len) snprintf(buf + n, len - n, "]");
}

static int apply_activation(builder *b, int x, sn_act act, const sn_layer_spec *l) {
  sn_op like = at(l);
  switch (act) {
  case SN_ACT_LINEAR: return x;
  case SN_ACT_RELU: return sn_emit(b->g, SN_OP_RELU, x, -1, -1, &like);
  case SN_ACT_SIGMOID: return sn_emit(b->g, SN_OP_SIGMOID, x, -1, -1, &like);
  case SN_ACT_TANH: return sn_emit(b->g, SN_OP_TANH, x, -1, -1, &like);
  case SN_ACT_SOFTMAX:
    if (b->g->ops[x].type.rank < 1) {
      sn_diag_error(b->d, l->loc, "%s: softmax needs a last dimension to normalize over", l->name);
      return -1;
    }
    return sn_emit(b->g, SN_OP_SOFTMAX, x, -1, -1, &like);
  default:
    sn_diag_error(b->d, l->loc, "%s: activation %s is not supported yet", l->name, sn_act_name(act));
    return -1;
  }
}

static int build_flatten(builder *b, int x, const sn_layer_spec *l, int prev_layer) {
  sn_type t = b->g->ops[x].type;
  t.dim[0] = sn_type_elems(&t);
  t.rank = 1;
  sn_op like = at(l);
  return sn_emit_typed(b->g, SN_OP_RESHAPE, x, &t, &like);
}

static int build_dense(builder *b, int x, const sn_layer_spec *l, int prev_layer) {
  const sn_type *t = &b->g->ops[x].type;
  if (!t->batched || t->rank != 1) {
    char got[128];
    shape_str(t, got, sizeof got);
    if (prev_layer >= 0)
      sn_diag_error(b->d, l->loc, "%s: dense expects input of shape [N, features], got %s from '%s' (line %d)",
                    l->name, got, b->s->layers[prev_layer].name, b->s->layers[prev_layer].loc.line);
    else
      sn_diag_error(b->d, l->loc, "%s: dense expects input of shape [N, features], got %s from the model input",
                    l->name, got);
    sn_diag_hint(b->d, "add '- flatten' before this layer");
    return -1;
  }
  int64_t in = t->dim[0], out = l->units;
  sn_op like = at(l);
  char name[128];
  int64_t wshape[2] = {out, in}; /* torch.nn.Linear layout (out, in) */
  snprintf(name, sizeof name, "%s.weight", l->name);
  int w = sn_param_add(b->g, name, 2, wshape, l->kernel_init, l->kernel_init_arg, in, out, &like);
  sn_op mm = {.code = SN_OP_MATMUL, .n_in = 2, .in = {x, w}, .tb = 1, .loc = l->loc};
  memcpy(mm.layer, like.layer, sizeof mm.layer);
  char err[256];
  int y = sn_graph_add(b->g, &mm, err, sizeof err);
  if (y < 0) {
    sn_diag_error(b->d, l->loc, "%s: %s", l->name, err);
    return -1;
  }
  if (l->use_bias) {
    snprintf(name, sizeof name, "%s.bias", l->name);
    int bias = sn_param_add(b->g, name, 1, &out, l->bias_init, l->bias_init_arg, in, out, &like);
    y = sn_emit(b->g, SN_OP_ADD, y, bias, -1, &like);
  }
  return apply_activation(b, y, l->activation, l);
}

static int build_activation(builder *b, int x, const sn_layer_spec *l, int prev_layer) {
  return apply_activation(b, x, l->activation, l);
}

typedef int (*layer_build_fn)(builder *b, int x, const sn_layer_spec *l, int prev_layer);

static const layer_build_fn layer_builders[] = {
    [SN_LAYER_FLATTEN] = build_flatten,
    [SN_LAYER_DENSE] = build_dense,
    [SN_LAYER_ACTIVATION] = build_activation,
};

/* ---------------------------------------------------------------------------
 * Loss and metrics */

static int build_loss(builder *b, int out) {
  sn_graph *g = b->g;
  const sn_spec *s = b->s;
  sn_op like = {.loc = s->loss_loc};
  snprintf(like.layer, sizeof like.layer, "loss");
  const sn_type *ot = &g->ops[out].type;
  if (!ot->batched || ot->rank != 1) {
    char got[128];
    shape_str(ot, got, sizeof got);
    sn_diag_error(b->d, s->loss_loc,
                  "sparse_categorical_crossentropy needs model output [N, classes], got %s", got);
    return -1;
  }
  sn_type lt = {.dtype = SN_I32, .batched = true};
  sn_op lab = {.code = SN_OP_LABEL, .type = lt};
  char err[256];
  g->label = sn_graph_add(g, &lab, err, sizeof err);
  /* softmax followed by cross-entropy is one stable op on the logits. */
  int logits;
  if (g->ops[out].code == SN_OP_SOFTMAX && !s->from_logits) logits = g->ops[out].in[0];
  else if (s->from_logits) logits = out;
  else {
    sn_diag_error(b->d, s->loss_loc,
                  "sparse_categorical_crossentropy on probabilities needs a softmax output layer");
    sn_diag_hint(b->d, "use activation: softmax on the last layer, or from_logits: true with a linear one");
    return -1;
  }
  g->logits = logits;
  int l = sn_emit(g, SN_OP_SOFTMAX_XENT, logits, g->label, -1, &like);
  g->loss_sum = sn_emit(g, SN_OP_SUM_ALL, l, -1, -1, &like);
  int inv = sn_emit(g, SN_OP_INV_ROWS, -1, -1, -1, &like);
  g->objective = sn_emit(g, SN_OP_MUL, g->loss_sum, inv, -1, &like);
  for (int k = 0; k < s->n_metrics; k++) {
    if (strcmp(s->metrics[k], "accuracy") == 0) {
      snprintf(like.layer, sizeof like.layer, "accuracy");
      int am = sn_emit(g, SN_OP_ROW_ARGMAX, logits, -1, -1, &like);
      int eq = sn_emit(g, SN_OP_EQ, am, g->label, -1, &like);
      g->metric_sum[g->n_metrics] = sn_emit(g, SN_OP_SUM_ALL, eq, -1, -1, &like);
      g->metric_names[g->n_metrics++] = "accuracy";
    }
  }
  return 0;
}

int sn_build_graph(const sn_spec *s, sn_dtype dtype, sn_graph *g, sn_diag *d) {
  sn_graph_init(g, dtype);
  builder b = {s, g, d, 0};
  g->batch_capacity = s->batch_size;
  g->lr = s->learning_rate;
  g->beta1 = s->beta1;
  g->beta2 = s->beta2;
  g->epsilon = s->epsilon;
  sn_op in = {.code = SN_OP_INPUT, .loc = s->input_loc, .layer = "input"};
  in.type.dtype = dtype;
  in.type.batched = true;
  in.type.rank = s->input_rank;
  for (int i = 0; i < s->input_rank; i++) in.type.dim[i] = s->input_shape[i];
  char err[256];
  g->input = sn_graph_add(g, &in, err, sizeof err);
  int x = g->input, errors0 = d->errors;
  g->layer_out = calloc((size_t)s->n_layers + 1, sizeof(int));
  if (!g->layer_out) abort();
  for (int i = 0; i < s->n_layers; i++) {
    const sn_layer_spec *l = &s->layers[i];
    x = layer_builders[l->kind](&b, x, l, i - 1);
    if (x < 0) return -1; /* later layers would only repeat the same mistake */
    g->layer_out[g->n_layers++] = x;
  }
  g->output = x;
  if (build_loss(&b, x)) return -1;
  return d->errors > errors0 ? -1 : 0;
}
