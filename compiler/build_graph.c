/* Spec -> forward graph: the model's layers as IR ops (in the spec's topological
 * order, each layer reading its named inputs), then the loss and the metrics. Each
 * layer kind is one entry in the table below and one build function; shape problems
 * are reported at the layer's spec line, naming the layers that produced the
 * offending inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct builder {
  const sn_spec *s;
  sn_graph *g;
  sn_diag *d;
  int *value;    /* per layer: its output value, -1 until built */
} builder;

/* One resolved input of a layer: its value and who produced it, for messages. */
typedef struct input {
  int v;
  const char *from; /* layer name, or "input" */
  int line;         /* line of that layer (the model input's line) */
} input;

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

static const sn_type *TY(builder *b, int v) { return &b->g->ops[v].type; }

/* "got [N, 28, 28] from 'flatten1' (line 12)" */
static void got(builder *b, const input *in, char *buf, size_t len) {
  char sh[128];
  shape_str(TY(b, in->v), sh, sizeof sh);
  if (!strcmp(in->from, "input")) snprintf(buf, len, "got %s from the model input (line %d)", sh, in->line);
  else snprintf(buf, len, "got %s from '%s' (line %d)", sh, in->from, in->line);
}

static int act_op(builder *b, int x, sn_act act, double alpha, const sn_layer_spec *l) {
  static const sn_opcode ops[] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = SN_OP_##op,
#include "acts.def"
#undef ACTDEF
  };
  if (act == SN_ACT_LINEAR) return x;
  if (act == SN_ACT_SOFTMAX && TY(b, x)->rank < 1) {
    sn_diag_error(b->d, l->loc, "%s: softmax needs a last dimension to normalize over", l->name);
    return -1;
  }
  sn_op like = at(l);
  if (!sn_act_option(act)) return sn_emit(b->g, ops[act], x, -1, -1, &like);
  sn_op op = {.code = ops[act], .n_in = 1, .in = {x}, .c = alpha}; /* the option, in c */
  op.loc = like.loc;
  memcpy(op.layer, like.layer, sizeof op.layer);
  char err[256];
  return sn_graph_add(b->g, &op, err, sizeof err);
}

/* The alpha an activation uses: the parser fills in the default of its kind. */
static double act_alpha(const sn_layer_spec *l, sn_act a) { return l->alpha; }

/* ---------------------------------------------------------------------------
 * Layers: each takes its resolved inputs and returns its output value (-1 after
 * reporting an error). */

static int build_flatten(builder *b, const sn_layer_spec *l, const input *in, int n) {
  sn_type t = *TY(b, in[0].v);
  if (!t.batched) {
    sn_diag_error(b->d, l->loc, "%s: flatten needs batch data", l->name);
    return -1;
  }
  t.dim[0] = sn_type_elems(&t);
  t.rank = 1;
  sn_op like = at(l);
  return sn_emit_typed(b->g, SN_OP_RESHAPE, in[0].v, &t, &like);
}

static int build_reshape(builder *b, const sn_layer_spec *l, const input *in, int n) {
  sn_type t = *TY(b, in[0].v);
  int64_t total = sn_type_elems(&t), known = 1;
  int infer = -1;
  t.rank = l->target_rank;
  for (int i = 0; i < l->target_rank; i++) {
    t.dim[i] = l->target_shape[i];
    if (t.dim[i] == -1) infer = i;
    else known *= t.dim[i];
  }
  if (infer >= 0 && known > 0 && total % known == 0) t.dim[infer] = total / known;
  if ((infer >= 0 && (known <= 0 || total % known)) || sn_type_elems(&t) != total) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc, "%s: cannot reshape %lld values per sample into target_shape; %s", l->name,
                  (long long)total, g2);
    return -1;
  }
  sn_op like = at(l);
  return sn_emit_typed(b->g, SN_OP_RESHAPE, in[0].v, &t, &like);
}

static int build_dense(builder *b, const sn_layer_spec *l, const input *in, int n) {
  const sn_type *t = TY(b, in[0].v);
  if (!t->batched || t->rank < 1 || t->rank > 2) { /* [N, T, features]: per position */
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc,
                  "%s: dense expects input of shape [N, features] or [N, positions, features], %s",
                  l->name, g2);
    sn_diag_hint(b->d, "add '- flatten' before this layer");
    return -1;
  }
  int64_t fan_in = t->dim[t->rank - 1], out = l->units;
  sn_op like = at(l);
  char name[128];
  int64_t wshape[2] = {out, fan_in}; /* torch.nn.Linear layout (out, in) */
  snprintf(name, sizeof name, "%s.weight", l->name);
  int w = sn_param_add(b->g, name, 2, wshape, l->kernel_init, l->kernel_init_arg, fan_in, out, &like);
  sn_op mm = {.code = SN_OP_MATMUL, .n_in = 2, .in = {in[0].v, w}, .tb = 1, .loc = l->loc};
  memcpy(mm.layer, like.layer, sizeof mm.layer);
  char err[256];
  int y = sn_graph_add(b->g, &mm, err, sizeof err);
  if (y < 0) {
    sn_diag_error(b->d, l->loc, "%s: %s", l->name, err);
    return -1;
  }
  if (l->use_bias) {
    snprintf(name, sizeof name, "%s.bias", l->name);
    int bias = sn_param_add(b->g, name, 1, &out, l->bias_init, l->bias_init_arg, fan_in, out, &like);
    y = sn_emit(b->g, SN_OP_ADD, y, bias, -1, &like);
  }
  return act_op(b, y, l->activation, act_alpha(l, l->activation), l);
}

static int build_activation(builder *b, const sn_layer_spec *l, const input *in, int n) {
  return act_op(b, in[0].v, l->activation, act_alpha(l, l->activation), l);
}

/* add, multiply: inputs of one shape, combined pairwise. */
static int build_join(builder *b, const sn_layer_spec *l, const input *in, int n) {
  for (int i = 1; i < n; i++)
    if (!sn_type_eq(TY(b, in[0].v), TY(b, in[i].v))) {
      char g0[256], gi[256];
      got(b, &in[0], g0, sizeof g0);
      got(b, &in[i], gi, sizeof gi);
      sn_diag_error(b->d, l->loc, "%s: inputs of %s must have one shape: %s, but %s", l->name,
                    l->kind == SN_LAYER_ADD ? "add" : "multiply", g0, gi);
      return -1;
    }
  sn_op like = at(l);
  int y = in[0].v;
  for (int i = 1; i < n; i++)
    y = sn_emit(b->g, l->kind == SN_LAYER_ADD ? SN_OP_ADD : SN_OP_MUL, y, in[i].v, -1, &like);
  return y;
}

static int build_concat(builder *b, const sn_layer_spec *l, const input *in, int n) {
  const sn_type *t0 = TY(b, in[0].v);
  int axis = l->axis < 0 ? t0->rank + l->axis : l->axis;
  if (axis < 0 || axis >= t0->rank) {
    sn_diag_error(b->d, l->loc, "%s: concat along axis %d, but its inputs have %d ax%s per sample (%d to %d)",
                  l->name, l->axis, t0->rank, t0->rank == 1 ? "is" : "es", -t0->rank, t0->rank - 1);
    return -1;
  }
  sn_op like = at(l);
  int y = in[0].v;
  for (int i = 1; i < n; i++) {
    sn_op op = {.code = SN_OP_CONCAT, .n_in = 2, .in = {y, in[i].v}, .loc = l->loc};
    op.a[0] = axis;
    memcpy(op.layer, like.layer, sizeof op.layer);
    char err[256];
    int v = sn_graph_add(b->g, &op, err, sizeof err);
    if (v < 0) {
      char g0[256], gi[256];
      got(b, &in[0], g0, sizeof g0);
      got(b, &in[i], gi, sizeof gi);
      sn_diag_error(b->d, l->loc, "%s: concat needs equal shapes but for axis %d: %s, but %s", l->name, l->axis,
                    g0, gi);
      return -1;
    }
    y = v;
  }
  return y;
}

/* Training: each element kept with probability 1 - rate and scaled by 1/(1 - rate);
 * inference: the identity. */
static int build_dropout(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!b->g->training || l->rate <= 0) return in[0].v;
  sn_op op = at(l);
  op.code = SN_OP_DROPOUT;
  op.n_in = 1;
  op.in[0] = in[0].v;
  op.c = l->rate;
  op.a[0] = (int64_t)(l - b->s->layers) + 1; /* one mask stream per layer */
  char err[256];
  return sn_graph_add(b->g, &op, err, sizeof err);
}

static int scale_shift(builder *b, const sn_layer_spec *l, int xhat, int64_t C) {
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.weight", l->name);
  int gamma = sn_param_add(b->g, name, 1, &C, SN_INIT_ONES, 0, C, C, &like);
  snprintf(name, sizeof name, "%s.bias", l->name);
  int beta = sn_param_add(b->g, name, 1, &C, SN_INIT_ZEROS, 0, C, C, &like);
  return sn_emit(b->g, SN_OP_ADD, sn_emit(b->g, SN_OP_MUL, xhat, gamma, -1, &like), beta, -1, &like);
}

/* 1 / sqrt(v + eps) */
static int inv_std(builder *b, int var, double eps, const sn_op *like) {
  int s = sn_emit(b->g, SN_OP_SQRT, sn_emit(b->g, SN_OP_ADD, var, sn_emit_const(b->g, eps), -1, like), -1, -1, like);
  return sn_emit(b->g, SN_OP_DIV, sn_emit_const(b->g, 1.0), s, -1, like);
}

/* Per channel (the last axis) over all other positions of the batch: batch
 * statistics in training, which also update the running ones (Keras's momentum
 * form, biased variance); running statistics in inference. PyTorch's names:
 * weight, bias, running_mean, running_var. */
static int build_batch_norm(builder *b, const sn_layer_spec *l, const input *in, int n) {
  sn_graph *g = b->g;
  const sn_type *t = TY(b, in[0].v);
  if (!t->batched || t->rank < 1) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc, "%s: batch_norm needs batch data with a channel axis, %s", l->name, g2);
    return -1;
  }
  int64_t C = t->dim[t->rank - 1], per = sn_type_elems(t) / C;
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.running_mean", l->name);
  int rm = sn_state_add(g, name, C, SN_INIT_ZEROS, &like);
  int rm_param = g->ops[rm].param;
  snprintf(name, sizeof name, "%s.running_var", l->name);
  int rv = sn_state_add(g, name, C, SN_INIT_ONES, &like);
  int rv_param = g->ops[rv].param;
  int x = in[0].v, xhat;
  if (g->training) {
    int invr = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_INV_ROWS, -1, -1, -1, &like),
                       sn_emit_const(g, 1.0 / (double)per), -1, &like);
    int mean = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_COLSUM, x, -1, -1, &like), invr, -1, &like);
    int xc = sn_emit(g, SN_OP_SUB, x, mean, -1, &like);
    int var = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_COLSUM, sn_emit(g, SN_OP_MUL, xc, xc, -1, &like), -1, -1, &like),
                      invr, -1, &like);
    xhat = sn_emit(g, SN_OP_MUL, xc, inv_std(b, var, l->epsilon, &like), -1, &like);
    int mom = sn_emit_const(g, l->momentum), rest = sn_emit_const(g, 1 - l->momentum);
    if (g->n_state_updates + 2 > 64) {
      sn_diag_error(b->d, l->loc, "%s: more than 32 batch_norm layers", l->name);
      return -1;
    }
    g->state_param[g->n_state_updates] = rm_param;
    g->state_update[g->n_state_updates++] = sn_emit(
        g, SN_OP_ADD, sn_emit(g, SN_OP_MUL, rm, mom, -1, &like), sn_emit(g, SN_OP_MUL, mean, rest, -1, &like), -1, &like);
    g->state_param[g->n_state_updates] = rv_param;
    g->state_update[g->n_state_updates++] = sn_emit(
        g, SN_OP_ADD, sn_emit(g, SN_OP_MUL, rv, mom, -1, &like), sn_emit(g, SN_OP_MUL, var, rest, -1, &like), -1, &like);
  } else {
    xhat = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_SUB, x, rm, -1, &like), inv_std(b, rv, l->epsilon, &like), -1, &like);
  }
  return scale_shift(b, l, xhat, C);
}

/* Per sample over the last axis (torch.nn.LayerNorm(C)): the same in training
 * and inference. */
static int build_layer_norm(builder *b, const sn_layer_spec *l, const input *in, int n) {
  sn_graph *g = b->g;
  const sn_type *t = TY(b, in[0].v);
  if (!t->batched || t->rank < 1) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc, "%s: layer_norm needs batch data with a last axis, %s", l->name, g2);
    return -1;
  }
  int64_t C = t->dim[t->rank - 1];
  sn_op like = at(l);
  int x = in[0].v, invc = sn_emit_const(g, 1.0 / (double)C);
  int mean = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_ROW_SUM, x, -1, -1, &like), invc, -1, &like);
  int xc = sn_emit(g, SN_OP_SUB, x, mean, -1, &like);
  int var = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_ROW_SUM, sn_emit(g, SN_OP_MUL, xc, xc, -1, &like), -1, -1, &like),
                    invc, -1, &like);
  return scale_shift(b, l, sn_emit(g, SN_OP_MUL, xc, inv_std(b, var, l->epsilon, &like), -1, &like), C);
}

/* NHWC images: [N, H, W, C]. */
static bool need_image(builder *b, const sn_layer_spec *l, const input *in, const char *kind) {
  const sn_type *t = TY(b, in[0].v);
  if (t->batched && t->rank == 3) return true;
  char g2[256];
  got(b, &in[0], g2, sizeof g2);
  sn_diag_error(b->d, l->loc, "%s: %s expects images of shape [N, height, width, channels], %s", l->name, kind, g2);
  if (t->batched && t->rank == 2)
    sn_diag_hint(b->d, "give the channel axis: model.input: [%lld, %lld, 1]", (long long)t->dim[0], (long long)t->dim[1]);
  return false;
}

/* Window geometry as Keras/TensorFlow: valid, or same (output ceil(in / stride),
 * padding split with the extra row/column at the bottom/right). */
static bool window(builder *b, const sn_layer_spec *l, const input *in, const int k[2], const int s[2], sn_op *op) {
  const sn_type *t = TY(b, in[0].v);
  int64_t out[2], pad[2];
  for (int d = 0; d < 2; d++) {
    int64_t size = t->dim[d];
    if (l->padding == SN_PAD_SAME) {
      out[d] = (size + s[d] - 1) / s[d];
      int64_t total = (out[d] - 1) * s[d] + k[d] - size;
      pad[d] = total > 0 ? total / 2 : 0;
    } else {
      out[d] = size >= k[d] ? (size - k[d]) / s[d] + 1 : 0;
      pad[d] = 0;
    }
  }
  if (out[0] < 1 || out[1] < 1) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc, "%s: a %dx%d window does not fit its input with padding: valid; %s", l->name, k[0], k[1], g2);
    sn_diag_hint(b->d, "use padding: same, a smaller window, or fewer downsampling layers before this one");
    return false;
  }
  op->a[SN_WIN_KH] = k[0];
  op->a[SN_WIN_KW] = k[1];
  op->a[SN_WIN_SH] = s[0];
  op->a[SN_WIN_SW] = s[1];
  op->a[SN_WIN_PT] = pad[0];
  op->a[SN_WIN_PL] = pad[1];
  op->a[SN_WIN_OH] = out[0];
  op->a[SN_WIN_OW] = out[1];
  return true;
}

static int add_op(builder *b, sn_op *op, const sn_layer_spec *l) {
  char err[256];
  int v = sn_graph_add(b->g, op, err, sizeof err);
  if (v < 0) sn_diag_error(b->d, l->loc, "%s: %s", l->name, err);
  return v;
}

/* conv2d as im2col + GEMM: patches [N, OH, OW, KH*KW*Ci] (columns (kh, kw, in), so
 * that channels are contiguous) times the weight, kept in torch's (out, in, kh, kw)
 * layout and transposed each step to (out, kh, kw, in) (a few thousand values). */
static int build_conv2d(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_image(b, l, in, "conv2d")) return -1;
  sn_graph *g = b->g;
  const sn_type *t = TY(b, in[0].v);
  int64_t ci = t->dim[2], co = l->filters, kh = l->kernel_size[0], kw = l->kernel_size[1];
  sn_op op = at(l);
  op.code = SN_OP_IM2COL;
  op.n_in = 1;
  op.in[0] = in[0].v;
  if (!window(b, l, in, l->kernel_size, l->strides, &op)) return -1;
  bool pointwise = kh == 1 && kw == 1 && l->strides[0] == 1 && l->strides[1] == 1;
  int patches = pointwise ? in[0].v : add_op(b, &op, l);
  if (patches < 0) return -1;
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.weight", l->name);
  int64_t wshape[4] = {co, ci, kh, kw}; /* torch.nn.Conv2d layout */
  int w = sn_param_add(g, name, 4, wshape, l->kernel_init, l->kernel_init_arg, ci * kh * kw, co * kh * kw, &like);
  if (kh > 1 || kw > 1) {
    sn_op tr = at(l);
    tr.code = SN_OP_TRANSPOSE;
    tr.n_in = 1;
    tr.in[0] = w;
    tr.a[0] = 0, tr.a[1] = 2, tr.a[2] = 3, tr.a[3] = 1;
    if ((w = add_op(b, &tr, l)) < 0) return -1;
  }
  sn_type w2 = {.dtype = g->dtype, .rank = 2, .dim = {co, ci * kh * kw}};
  int wm = sn_emit_typed(g, SN_OP_RESHAPE, w, &w2, &like);
  sn_op mm = at(l);
  mm.code = SN_OP_MATMUL;
  mm.n_in = 2;
  mm.in[0] = patches;
  mm.in[1] = wm;
  mm.tb = 1;
  int y = add_op(b, &mm, l);
  if (y < 0) return -1;
  if (l->use_bias) {
    snprintf(name, sizeof name, "%s.bias", l->name);
    int bias = sn_param_add(g, name, 1, &co, l->bias_init, l->bias_init_arg, ci * kh * kw, co * kh * kw, &like);
    y = sn_emit(g, SN_OP_ADD, y, bias, -1, &like);
  }
  return act_op(b, y, l->activation, act_alpha(l, l->activation), l);
}

static int build_pool(builder *b, const sn_layer_spec *l, const input *in, int n) {
  bool global = l->kind == SN_LAYER_GLOBAL_AVG_POOL2D;
  if (!need_image(b, l, in, global ? "global_avg_pool2d" : l->kind == SN_LAYER_MAX_POOL2D ? "max_pool2d" : "avg_pool2d"))
    return -1;
  const sn_type *t = TY(b, in[0].v);
  sn_op op = at(l);
  op.code = l->kind == SN_LAYER_MAX_POOL2D ? SN_OP_MAX_POOL : SN_OP_AVG_POOL;
  op.n_in = 1;
  op.in[0] = in[0].v;
  if (global) {
    int k[2] = {(int)t->dim[0], (int)t->dim[1]}, s[2] = {1, 1};
    sn_layer_spec gl = *l;
    gl.padding = SN_PAD_VALID;
    if (!window(b, &gl, in, k, s, &op)) return -1;
  } else {
    int s[2] = {l->strides[0] ? l->strides[0] : l->pool_size[0], l->strides[1] ? l->strides[1] : l->pool_size[1]};
    if (!window(b, l, in, l->pool_size, s, &op)) return -1;
  }
  int y = add_op(b, &op, l);
  if (y < 0 || !global) return y;
  sn_type flat = {.dtype = b->g->dtype, .batched = true, .rank = 1, .dim = {t->dim[2]}};
  sn_op like = at(l);
  return sn_emit_typed(b->g, SN_OP_RESHAPE, y, &flat, &like); /* [N, 1, 1, C] -> [N, C] */
}

/* ids [N, T..] (integers stored as floats) -> [N, T.., dim], torch.nn.Embedding's
 * weight (vocab, dim). */
static int build_embedding(builder *b, const sn_layer_spec *l, const input *in, int n) {
  const sn_type *t = TY(b, in[0].v);
  if (!t->batched || t->rank + 1 > SN_MAX_RANK) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    sn_diag_error(b->d, l->loc, "%s: embedding expects batch data of ids, %s", l->name, g2);
    return -1;
  }
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.weight", l->name);
  int64_t shape[2] = {l->vocab, l->dim};
  int tab = sn_param_add(b->g, name, 2, shape, l->kernel_init, l->kernel_init_arg, l->vocab, l->dim, &like);
  sn_op op = at(l);
  op.code = SN_OP_EMBED;
  op.n_in = 2;
  op.in[0] = tab;
  op.in[1] = in[0].v;
  return add_op(b, &op, l);
}

typedef int (*layer_build_fn)(builder *b, const sn_layer_spec *l, const input *in, int n);

static const layer_build_fn layer_builders[] = {
    [SN_LAYER_FLATTEN] = build_flatten,
    [SN_LAYER_DENSE] = build_dense,
    [SN_LAYER_ACTIVATION] = build_activation,
    [SN_LAYER_CONV2D] = build_conv2d,
    [SN_LAYER_MAX_POOL2D] = build_pool,
    [SN_LAYER_AVG_POOL2D] = build_pool,
    [SN_LAYER_GLOBAL_AVG_POOL2D] = build_pool,
    [SN_LAYER_RESHAPE] = build_reshape,
    [SN_LAYER_DROPOUT] = build_dropout,
    [SN_LAYER_BATCH_NORM] = build_batch_norm,
    [SN_LAYER_LAYER_NORM] = build_layer_norm,
    [SN_LAYER_EMBEDDING] = build_embedding,
    [SN_LAYER_ADD] = build_join,
    [SN_LAYER_CONCAT] = build_concat,
    [SN_LAYER_MULTIPLY] = build_join,
};

/* ---------------------------------------------------------------------------
 * Loss and metrics */

static sn_op loss_like(const sn_spec *s, const char *what) {
  sn_op like = {.loc = s->loss_loc};
  snprintf(like.layer, sizeof like.layer, "%s", what);
  return like;
}

static int emit_c2(sn_graph *g, sn_opcode code, int x, double c, double c2, const sn_op *like) {
  sn_op op = {.code = code, .n_in = 1, .in = {x}, .c = c, .c2 = c2, .loc = like->loc};
  memcpy(op.layer, like->layer, sizeof op.layer);
  char err[256];
  return sn_graph_add(g, &op, err, sizeof err);
}

/* The mean over the last axis of [N, K]: one value per sample. */
static int row_mean(sn_graph *g, int x, const sn_op *like) {
  int64_t k = g->ops[x].type.dim[g->ops[x].type.rank - 1];
  return sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_ROW_SUM, x, -1, -1, like), sn_emit_const(g, 1.0 / (double)k), -1,
                 like);
}

static const double PROB_EPS = 1e-7; /* Keras's clipping of probabilities */

/* A per-position value [N, T] (one loss or metric value per position of a sequence
 * output [N, T, V]) as one value per sample, the mean over its positions: every
 * sample has T positions, so the mean over samples of it is the mean over N*T. */
static int per_sample(sn_graph *g, int v, const sn_op *like) {
  while (v >= 0 && g->ops[v].type.rank > 0) v = row_mean(g, v, like);
  return v;
}

/* The loss per sample, or per position for a sequence output [N, T, V], and the
 * value metrics compare against (`pred`: logits where the loss fused the output
 * activation, else the output). */
static int build_loss(builder *b, int out, int *pred) {
  sn_graph *g = b->g;
  const sn_spec *s = b->s;
  sn_op like = loss_like(s, "loss");
  const sn_type *ot = TY(b, out);
  char sh[128];
  shape_str(ot, sh, sizeof sh);
  if (!ot->batched || ot->rank < 1 || ot->rank > 2) {
    sn_diag_error(
        b->d, s->loss_loc,
        "the loss needs a model output of shape [N, outputs] or [N, positions, outputs], got %s",
        sh);
    sn_diag_hint(b->d, "flatten the last layer's output, or end with a dense layer");
    return -1;
  }
  const sn_op *oo = &g->ops[out];
  bool softmax_out = oo->code == SN_OP_SOFTMAX, sigmoid_out = oo->code == SN_OP_SIGMOID;
  *pred = out;
  char err[256];
  if (s->loss == SN_LOSS_SPARSE_CCE) { /* one label per position: i32[N] or i32[N, T] */
    sn_op lab = {.code = SN_OP_LABEL,
                 .type = {.dtype = SN_I32, .batched = true, .rank = ot->rank - 1}};
    for (int i = 0; i + 1 < ot->rank; i++) lab.type.dim[i] = ot->dim[i];
    g->label = sn_graph_add(g, &lab, err, sizeof err);
  } else {
    sn_op tgt = {.code = SN_OP_TARGET, .type = *ot};
    g->target = sn_graph_add(g, &tgt, err, sizeof err);
  }
  int t = g->target;
  switch (s->loss) {
  case SN_LOSS_SPARSE_CCE:
  case SN_LOSS_CCE: {
    /* softmax followed by cross-entropy is one stable op on the logits */
    int z;
    if (softmax_out && !s->from_logits) z = oo->in[0];
    else if (s->from_logits) z = out;
    else {
      int p = emit_c2(g, SN_OP_CLAMP, out, PROB_EPS, 1 - PROB_EPS, &like);
      if (s->loss == SN_LOSS_SPARSE_CCE) {
        sn_diag_error(b->d, s->loss_loc,
                      "sparse_categorical_crossentropy on probabilities needs a softmax output layer");
        sn_diag_hint(b->d, "use activation: softmax on the last layer, or from_logits: true with a linear one");
        return -1;
      }
      int lp = sn_emit(g, SN_OP_LOG, p, -1, -1, &like);
      return sn_emit(g, SN_OP_NEG, sn_emit(g, SN_OP_ROW_SUM, sn_emit(g, SN_OP_MUL, t, lp, -1, &like), -1, -1, &like),
                     -1, -1, &like);
    }
    *pred = z;
    if (s->loss == SN_LOSS_SPARSE_CCE) return sn_emit(g, SN_OP_SOFTMAX_XENT, z, g->label, -1, &like);
    return sn_emit(g, SN_OP_SOFTMAX_CCE, z, t, -1, &like);
  }
  case SN_LOSS_BCE: {
    int z = -1;
    if (sigmoid_out && !s->from_logits) z = oo->in[0];
    else if (s->from_logits) z = out;
    if (z >= 0) {
      *pred = z;
      return row_mean(g, sn_emit(g, SN_OP_BCE_LOGITS, z, t, -1, &like), &like);
    }
    /* -(t log p + (1 - t) log(1 - p)) on clipped probabilities */
    int p = emit_c2(g, SN_OP_CLAMP, out, PROB_EPS, 1 - PROB_EPS, &like);
    int one = sn_emit_const(g, 1.0);
    int a = sn_emit(g, SN_OP_MUL, t, sn_emit(g, SN_OP_LOG, p, -1, -1, &like), -1, &like);
    int q = sn_emit(g, SN_OP_LOG, sn_emit(g, SN_OP_SUB, one, p, -1, &like), -1, -1, &like);
    int c = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_SUB, one, t, -1, &like), q, -1, &like);
    return sn_emit(g, SN_OP_NEG, row_mean(g, sn_emit(g, SN_OP_ADD, a, c, -1, &like), &like), -1, -1, &like);
  }
  case SN_LOSS_MSE:
  case SN_LOSS_MAE:
  case SN_LOSS_HUBER: {
    int d = sn_emit(g, SN_OP_SUB, out, t, -1, &like);
    int e = s->loss == SN_LOSS_MSE   ? sn_emit(g, SN_OP_MUL, d, d, -1, &like)
            : s->loss == SN_LOSS_MAE ? sn_emit(g, SN_OP_ABS, d, -1, -1, &like)
                                     : emit_c2(g, SN_OP_HUBER, d, s->huber_delta, 0, &like);
    return row_mean(g, e, &like);
  }
  }
  return -1;
}

/* One value per sample (or per position of a sequence output) whose sum over the
 * data is the metric's total; `loss` is the per-sample loss. */
static int build_metric(builder *b, int k, int out, int pred, int loss) {
  sn_graph *g = b->g;
  const sn_spec *s = b->s;
  sn_op like = loss_like(s, s->metrics[k]);
  bool sparse = s->loss == SN_LOSS_SPARSE_CCE, bce = s->loss == SN_LOSS_BCE,
       cce = s->loss == SN_LOSS_CCE;
  switch (s->metric_kind[k]) {
  case SN_METRIC_PERPLEXITY: /* the runtime reports exp of the mean (sn_metric_value) */
    if (sparse || cce) return loss;
    break;
  case SN_METRIC_BITS_PER_TOKEN:
    if (sparse || cce)
      return sn_emit(g, SN_OP_MUL, loss, sn_emit_const(g, 1.0 / log(2.0)), -1, &like);
    break;
  case SN_METRIC_ACCURACY:
    if (bce) { /* binary accuracy: mean over outputs of (p > 0.5) == (t > 0.5) */
      double thr = pred == out ? 0.5 : 0.0; /* on logits the threshold is 0 */
      int a = sn_emit(g, SN_OP_GT, pred, sn_emit_const(g, thr), -1, &like);
      int c = sn_emit(g, SN_OP_GT, g->target, sn_emit_const(g, 0.5), -1, &like);
      int miss = sn_emit(g, SN_OP_ABS, sn_emit(g, SN_OP_SUB, a, c, -1, &like), -1, -1, &like);
      return row_mean(g, sn_emit(g, SN_OP_SUB, sn_emit_const(g, 1.0), miss, -1, &like), &like);
    }
    if (sparse || cce) {
      int want = sparse ? g->label : sn_emit(g, SN_OP_ROW_ARGMAX, g->target, -1, -1, &like);
      return sn_emit(g, SN_OP_EQ, sn_emit(g, SN_OP_ROW_ARGMAX, pred, -1, -1, &like), want, -1, &like);
    }
    break;
  case SN_METRIC_TOP_K:
    if (sparse || cce) { /* the true class is among the k largest: fewer than k beat it */
      int want = sparse ? g->label : sn_emit(g, SN_OP_ROW_ARGMAX, g->target, -1, -1, &like);
      int zy = sn_emit(g, SN_OP_PICK, pred, want, -1, &like);
      int beat = sn_emit(g, SN_OP_ROW_SUM, sn_emit(g, SN_OP_GT, pred, zy, -1, &like), -1, -1, &like);
      return sn_emit(g, SN_OP_GT, sn_emit_const(g, (double)s->metric_k[k]), beat, -1, &like);
    }
    break;
  case SN_METRIC_MSE:
  case SN_METRIC_MAE:
    if (!sparse) {
      int d = sn_emit(g, SN_OP_SUB, out, g->target, -1, &like);
      int e = s->metric_kind[k] == SN_METRIC_MSE ? sn_emit(g, SN_OP_MUL, d, d, -1, &like)
                                                  : sn_emit(g, SN_OP_ABS, d, -1, -1, &like);
      return row_mean(g, e, &like);
    }
    break;
  }
  sn_diag_error(b->d, s->loss_loc, "metric %s does not apply to this loss", s->metrics[k]);
  sn_diag_hint(b->d, sparse ? "mse and mae need float targets (a regression or one-hot loss)"
                            : "accuracy, top_k_accuracy, perplexity and bits_per_token need a "
                              "classification loss");
  return -1;
}

/* ---------------------------------------------------------------------------
 * The whole model */

static int find_layer(const sn_spec *s, const char *name) {
  for (int i = 0; i < s->n_layers; i++)
    if (!strcmp(s->layers[i].name, name)) return i;
  return -1;
}

static int resolve_inputs(builder *b, int li, input *in) {
  const sn_spec *s = b->s;
  const sn_layer_spec *l = &s->layers[li];
  int n = l->n_inputs;
  if (n == 0) { /* the previous layer in the list, or the model input */
    n = 1;
    if (li == 0) in[0] = (input){b->g->input, "input", s->input_loc.line};
    else in[0] = (input){b->value[li - 1], s->layers[li - 1].name, s->layers[li - 1].loc.line};
  } else {
    for (int i = 0; i < n; i++) {
      if (!strcmp(l->inputs[i], "input")) {
        in[i] = (input){b->g->input, "input", s->input_loc.line};
        continue;
      }
      int j = find_layer(s, l->inputs[i]);
      in[i] = (input){j >= 0 ? b->value[j] : -1, l->inputs[i], j >= 0 ? s->layers[j].loc.line : 0};
    }
  }
  for (int i = 0; i < n; i++)
    if (in[i].v < 0) return -1; /* unknown or not built: reported by the parser or earlier */
  return n;
}

int sn_build_graph(const sn_spec *s, sn_dtype dtype, bool training, sn_graph *g, sn_diag *d) {
  sn_graph_init(g, dtype);
  g->training = training;
  builder b = {s, g, d, NULL};
  g->batch_capacity = s->batch_size;
  g->lr = s->learning_rate;
  g->beta1 = s->beta1;
  g->beta2 = s->beta2;
  g->epsilon = s->epsilon;
  g->opt = s->optimizer;
  g->weight_decay = s->weight_decay;
  g->momentum = s->momentum;
  g->rho = s->rho;
  g->nesterov = s->nesterov;
  g->clip_grad_norm = s->clip_grad_norm;
  sn_op in = {.code = SN_OP_INPUT, .loc = s->input_loc, .layer = "input"};
  in.type.dtype = dtype;
  in.type.batched = true;
  in.type.rank = s->input_rank;
  for (int i = 0; i < s->input_rank; i++) in.type.dim[i] = s->input_shape[i];
  char err[256];
  g->input = sn_graph_add(g, &in, err, sizeof err);
  int errors0 = d->errors;
  g->layer_out = calloc((size_t)s->n_layers + 1, sizeof(int));
  b.value = g->layer_out;
  if (!g->layer_out) abort();
  for (int i = 0; i < s->n_layers; i++) g->layer_out[i] = -1;
  g->n_layers = s->n_layers;
  for (int k = 0; k < s->n_layers; k++) {
    int li = s->order ? s->order[k] : k;
    const sn_layer_spec *l = &s->layers[li];
    input ins[8];
    int n = resolve_inputs(&b, li, ins);
    if (n < 0) continue;
    g->layer_out[li] = layer_builders[l->kind](&b, l, ins, n);
  }
  if (d->errors > errors0) return -1;
  int out = g->layer_out[s->n_layers - 1];
  g->output = out;
  int pred;
  sn_op like = loss_like(s, "loss");
  int l = per_sample(g, build_loss(&b, out, &pred), &like);
  if (l < 0) return -1;
  g->logits = pred;
  g->loss_sum = sn_emit(g, SN_OP_SUM_ALL, l, -1, -1, &like);
  g->objective = sn_emit(g, SN_OP_MUL, g->loss_sum, sn_emit(g, SN_OP_INV_ROWS, -1, -1, -1, &like), -1, &like);
  for (int k = 0; k < s->n_metrics; k++) {
    sn_op mlike = loss_like(s, s->metrics[k]);
    int m = per_sample(g, build_metric(&b, k, out, pred, l), &mlike);
    if (m < 0) continue;
    /* a sum of its own (a[0]), even where the metric's value is the loss's (mse
     * with an mse loss): each output has one place */
    sn_op ml = loss_like(s, s->metrics[k]);
    ml.code = SN_OP_SUM_ALL;
    ml.n_in = 1;
    ml.in[0] = m;
    ml.a[0] = k + 1;
    g->metric_sum[g->n_metrics] = sn_graph_add(g, &ml, err, sizeof err);
    snprintf(g->metric_name_buf[g->n_metrics], sizeof g->metric_name_buf[0], "%s", s->metrics[k]);
    g->metric_names[g->n_metrics] = g->metric_name_buf[g->n_metrics];
    g->n_metrics++;
  }
  return d->errors > errors0 ? -1 : 0;
}
