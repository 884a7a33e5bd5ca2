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
  /* The padding mask of sequences: per layer (and the model input), [N, T] with
   * 1.0 where the step along the first per-sample axis holds data and 0.0 where it
   * holds padding, or -1 (no padding; see layer_mask) */
  int *mask;
  int input_mask;
  int out_mask;  /* set by a build function that makes its output's mask (conv1d) */
} builder;

/* One resolved input of a layer: its value and who produced it, for messages. */
typedef struct input {
  int v;
  const char *from; /* layer name, or "input" */
  int line;         /* line of that layer (the model input's line) */
  int mask;         /* its padding mask [N, T], or -1 */
} input;

static sn_op at(const sn_layer_spec *l) {
  sn_op o = {0};
  o.loc = l->loc;
  snprintf(o.layer, sizeof o.layer, "%s", l->name);
  return o;
}

/* Layer l's op `code` on x, and on y unless y < 0; its options still to set. */
static sn_op op_at(const sn_layer_spec *l, sn_opcode code, int x, int y) {
  sn_op o = at(l);
  o.code = code;
  o.in[o.n_in++] = x;
  if (y >= 0) o.in[o.n_in++] = y;
  return o;
}

static void shape_str(const sn_type *t, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "[%s", t->batched ? "N" : "");
  for (int i = 0; i < t->rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", (i || t->batched) ? ", " : "",
                          (long long)t->dim[i]);
  if (n < len) snprintf(buf + n, len - n, "]");
}

/* A pointer into g->ops, which adding an op may move: a build function that reads a
 * type after emitting keeps a copy (const sn_type t_v = *TY(b, x), *t = &t_v). */
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

static int emit_c2(sn_graph *g, sn_opcode code, int x, double c, double c2, const sn_op *like) {
  sn_op op = {.code = code, .n_in = 1, .in = {x}, .c = c, .c2 = c2, .loc = like->loc};
  memcpy(op.layer, like->layer, sizeof op.layer);
  char err[256];
  return sn_graph_add(g, &op, err, sizeof err);
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
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
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
  sn_op op = op_at(l, SN_OP_DROPOUT, in[0].v, -1);
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

/* An error (what, then what the input is) unless in is batch data with at least
 * one axis. */
static int need_batched(builder *b, const sn_layer_spec *l, const input *in, const char *what) {
  const sn_type *t = TY(b, in->v);
  if (t->batched && t->rank >= 1) return 0;
  char g2[256];
  got(b, in, g2, sizeof g2);
  sn_diag_error(b->d, l->loc, "%s: %s, %s", l->name, what, g2);
  return -1;
}

/* Per channel (the last axis) over all other positions of the batch: batch
 * statistics in training, which also update the running ones (Keras's momentum
 * form, biased variance); running statistics in inference. PyTorch's names:
 * weight, bias, running_mean, running_var. */
static int build_batch_norm(builder *b, const sn_layer_spec *l, const input *in, int n) {
  sn_graph *g = b->g;
  if (need_batched(b, l, &in[0], "batch_norm needs batch data with a channel axis")) return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
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
  if (need_batched(b, l, &in[0], "layer_norm needs batch data with a last axis")) return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
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
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  if (t->batched && t->rank == 3) return true;
  char g2[256];
  got(b, &in[0], g2, sizeof g2);
  sn_diag_error(b->d, l->loc, "%s: %s expects images of shape [N, height, width, channels], %s", l->name, kind, g2);
  if (t->batched && t->rank == 2)
    sn_diag_hint(b->d, "give the channel axis: model.input: [%lld, %lld, 1]", (long long)t->dim[0], (long long)t->dim[1]);
  return false;
}

/* Window geometry as Keras/TensorFlow over an [H, W] plane: valid, or same (output
 * ceil(in / stride), padding split with the extra row/column at the bottom/right).
 * Taps are dil[] apart, so a window spans (k - 1) dil + 1 positions. Returns false
 * when a valid window does not fit. */
static bool window_geometry(const int64_t size[2], const int k[2], const int s[2], const int dil[2], sn_padding padding,
                            sn_op *op) {
  int64_t out[2], pad[2];
  for (int d = 0; d < 2; d++) {
    int64_t span = (int64_t)(k[d] - 1) * dil[d] + 1;
    if (padding == SN_PAD_SAME) {
      out[d] = (size[d] + s[d] - 1) / s[d];
      int64_t total = (out[d] - 1) * s[d] + span - size[d];
      pad[d] = total > 0 ? total / 2 : 0;
    } else {
      out[d] = size[d] >= span ? (size[d] - span) / s[d] + 1 : 0;
      pad[d] = 0;
    }
  }
  op->a[SN_WIN_KH] = k[0];
  op->a[SN_WIN_KW] = k[1];
  op->a[SN_WIN_SH] = s[0];
  op->a[SN_WIN_SW] = s[1];
  op->a[SN_WIN_PT] = pad[0];
  op->a[SN_WIN_PL] = pad[1];
  op->a[SN_WIN_OH] = out[0];
  op->a[SN_WIN_OW] = out[1];
  op->a[SN_WIN_DH] = dil[0];
  op->a[SN_WIN_DW] = dil[1];
  return out[0] >= 1 && out[1] >= 1;
}

/* The window of a 2-D layer over its [N, H, W, C] input. */
static bool window(builder *b, const sn_layer_spec *l, const input *in, const int k[2], const int s[2], sn_op *op) {
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  static const int undilated[2] = {1, 1};
  if (window_geometry(t->dim, k, s, undilated, l->padding, op)) return true;
  char g2[256];
  got(b, &in[0], g2, sizeof g2);
  sn_diag_error(b->d, l->loc, "%s: a %dx%d window does not fit its input with padding: valid; %s", l->name, k[0], k[1], g2);
  sn_diag_hint(b->d, "use padding: same, a smaller window, or fewer downsampling layers before this one");
  return false;
}

static int add_op(builder *b, sn_op *op, const sn_layer_spec *l) {
  char err[256];
  int v = sn_graph_add(b->g, op, err, sizeof err);
  if (v < 0) sn_diag_error(b->d, l->loc, "%s: %s", l->name, err);
  return v;
}

/* Layer l's product x y (code: SN_OP_MATMUL or SN_OP_BATCH_MATMUL; tb: y transposed);
 * -1 (reported) when the shapes do not fit. */
static int product(builder *b, const sn_layer_spec *l, sn_opcode code, int x, int y, bool tb) {
  sn_op mm = op_at(l, code, x, y);
  mm.tb = tb;
  return add_op(b, &mm, l);
}

/* A convolution's weight, kept in torch's layout (out, in, taps..) ((out, in, kh,
 * kw) for conv2d, (out, in, k) for conv1d) and transposed each step (a few
 * thousand values) into the layout its product reads: `axes` are the transpose's
 * (NULL: none). Sets *k to the taps per input channel. */
static int conv_weight(builder *b, const sn_layer_spec *l, int64_t ci, int ntaps,
                       const int64_t *taps, const int64_t *axes, int64_t *k) {
  int64_t co = l->filters, wshape[4] = {co, ci};
  *k = 1;
  for (int i = 0; i < ntaps; i++) *k *= wshape[2 + i] = taps[i];
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.weight", l->name);
  int w = sn_param_add(b->g, name, 2 + ntaps, wshape, l->kernel_init, l->kernel_init_arg, ci * *k,
                       co * *k, &like);
  if (!axes) return w;
  sn_op tr = op_at(l, SN_OP_TRANSPOSE, w, -1);
  memcpy(tr.a, axes, sizeof(int64_t) * (size_t)(2 + ntaps));
  return add_op(b, &tr, l);
}

/* A convolution's output y: its bias added and its activation; fan_in, fan_out
 * as the weight's (the bias's init may use them). */
static int conv_finish(builder *b, const sn_layer_spec *l, int y, int64_t fan_in, int64_t fan_out) {
  if (y < 0) return -1;
  sn_op like = at(l);
  if (l->use_bias) {
    char name[128];
    int64_t co = l->filters;
    snprintf(name, sizeof name, "%s.bias", l->name);
    int bias =
        sn_param_add(b->g, name, 1, &co, l->bias_init, l->bias_init_arg, fan_in, fan_out, &like);
    y = sn_emit(b->g, SN_OP_ADD, y, bias, -1, &like);
  }
  return act_op(b, y, l->activation, act_alpha(l, l->activation), l);
}

/* A convolution's product: patches [N, .., taps*Ci] (columns (taps, in), so that
 * channels are contiguous) times the weight transposed to (out, taps.., in).
 * `shape` is the result's type when it is to be viewed otherwise than the product
 * ([N, 1, T, out] as [N, T, out]). */
static int conv_product(builder *b, const sn_layer_spec *l, int patches, int64_t ci, int ntaps,
                        const int64_t *taps, const sn_type *shape) {
  sn_graph *g = b->g;
  int64_t co = l->filters, k, axes[4] = {0}, ktaps = 1;
  for (int i = 0; i < ntaps; i++) axes[1 + i] = 2 + i; /* (out, in, taps..) -> (out, taps.., in) */
  axes[1 + ntaps] = 1;
  for (int i = 0; i < ntaps; i++) ktaps *= taps[i];
  int w = conv_weight(b, l, ci, ntaps, taps, ktaps > 1 ? axes : NULL, &k);
  if (w < 0) return -1;
  sn_op like = at(l);
  sn_type w2 = {.dtype = g->dtype, .rank = 2, .dim = {co, ci * k}};
  int wm = sn_emit_typed(g, SN_OP_RESHAPE, w, &w2, &like);
  int y = product(b, l, SN_OP_MATMUL, patches, wm, true);
  if (y >= 0 && shape) y = sn_emit_typed(g, SN_OP_RESHAPE, y, shape, &like);
  return conv_finish(b, l, y, ci * k, co * k);
}

/* A patch (taps times input channels) of at most this many values makes conv2d a
 * direct convolution (the op conv): the patches of a convolution over few channels
 * (an image's first layer) are as many values per pixel as its output, and their
 * product a GEMM with a depth of a few values, so im2col, the GEMM and the bias
 * kernel cost far more than the arithmetic. */
enum { DIRECT_CONV_PATCH = 32 };

/* conv2d as the op conv (code SN_OP_CONV) or conv_gemm (SN_OP_CONV_GEMM) over the
 * window `geo`: the weight transposed to (kh, kw, in, out) and viewed as
 * [KH*KW*in, out], filters contiguous. */
static int conv_direct(builder *b, const sn_layer_spec *l, sn_opcode code, int x, const sn_op *geo,
                       int64_t ci, const int64_t *taps) {
  sn_graph *g = b->g;
  int64_t co = l->filters, k;
  static const int64_t axes[4] = {2, 3, 1, 0}; /* (out, in, kh, kw) -> (kh, kw, in, out) */
  int w = conv_weight(b, l, ci, 2, taps, axes, &k);
  if (w < 0) return -1;
  sn_op like = at(l);
  sn_type w2 = {.dtype = g->dtype, .rank = 2, .dim = {k * ci, co}};
  sn_op op = *geo;
  op.code = code;
  op.n_in = 2;
  op.in[0] = x;
  op.in[1] = sn_emit_typed(g, SN_OP_RESHAPE, w, &w2, &like);
  return conv_finish(b, l, add_op(b, &op, l), ci * k, co * k);
}

/* conv2d as a direct convolution when its patch is small; else an implicit GEMM
 * (conv_gemm: im2col's product a tile of pixels at a time, the patches never in
 * memory) up to a patch of SN_CONV_GEMM_MAX_K values; else (and a 1x1 stride-1
 * convolution, which is the GEMM alone) im2col + GEMM. */
static int build_conv2d(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_image(b, l, in, "conv2d")) return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  int64_t taps[2] = {l->kernel_size[0], l->kernel_size[1]};
  sn_op op = op_at(l, SN_OP_IM2COL, in[0].v, -1);
  if (!window(b, l, in, l->kernel_size, l->strides, &op)) return -1;
  bool pointwise = taps[0] == 1 && taps[1] == 1 && l->strides[0] == 1 && l->strides[1] == 1;
  if (!pointwise && taps[0] * taps[1] * t->dim[2] <= DIRECT_CONV_PATCH)
    return conv_direct(b, l, SN_OP_CONV, in[0].v, &op, t->dim[2], taps);
  if (!pointwise && taps[0] * taps[1] * t->dim[2] <= SN_CONV_GEMM_MAX_K)
    return conv_direct(b, l, SN_OP_CONV_GEMM, in[0].v, &op, t->dim[2], taps);
  int patches = pointwise ? in[0].v : add_op(b, &op, l);
  if (patches < 0) return -1;
  return conv_product(b, l, patches, t->dim[2], 2, taps, NULL);
}

/* Sequences: [N, steps, channels]. */
static bool need_sequence(builder *b, const sn_layer_spec *l, const input *in) {
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  if (t->batched && t->rank == 2) return true;
  char g2[256];
  got(b, &in[0], g2, sizeof g2);
  sn_diag_error(b->d, l->loc, "%s: %s expects sequences of shape [N, steps, channels], %s", l->name,
                sn_layer_kind_name(l->kind), g2);
  if (t->batched && t->rank == 1)
    sn_diag_hint(b->d, "give the channel axis (model.input: [%lld, 1]) or put an embedding before it",
                 (long long)t->dim[0]);
  return false;
}

/* [N, T, C] seen as the image [N, 1, T, C] that the window ops take. */
static int as_image(builder *b, const sn_layer_spec *l, int x) {
  const sn_type t_v = *TY(b, x), *t = &t_v;
  sn_type im = {.dtype = t->dtype, .batched = true, .rank = 3, .dim = {1, t->dim[0], t->dim[1]}};
  sn_op like = at(l);
  return sn_emit_typed(b->g, SN_OP_RESHAPE, x, &im, &like);
}

/* The mask of a conv1d's output steps: an output step holds data when the input
 * step at the centre of its window does ((k - 1) d / 2 steps after its first,
 * rounded down). So a
 * same, stride-1 conv1d keeps its input's mask; a valid one drops the steps at the
 * ends; with strides, every stride-th centre. As a 1-tap max_pool over the mask
 * whose offset is the centre's (negative padding where it lies right of the start). */
static int conv1d_mask(builder *b, const sn_layer_spec *l, int m, const sn_op *geo) {
  if (m < 0) return -1;
  int64_t T = TY(b, m)->dim[0], OT = geo->a[SN_WIN_OW], s = geo->a[SN_WIN_SW];
  int64_t centre = (int64_t)(l->kernel_size[1] - 1) * l->dilation / 2, pl = geo->a[SN_WIN_PL] - centre;
  if (pl == 0 && s == 1 && OT == T) return m;
  sn_graph *g = b->g;
  sn_op like = at(l);
  sn_type im = {.dtype = g->dtype, .batched = true, .rank = 3, .dim = {1, T, 1}};
  sn_op op = op_at(l, SN_OP_MAX_POOL, sn_emit_typed(g, SN_OP_RESHAPE, m, &im, &like), -1);
  const int64_t a[] = {[SN_WIN_KH] = 1, [SN_WIN_KW] = 1, [SN_WIN_SH] = 1, [SN_WIN_SW] = s,  [SN_WIN_PT] = 0,
                       [SN_WIN_PL] = pl, [SN_WIN_OH] = 1, [SN_WIN_OW] = OT, [SN_WIN_DH] = 1, [SN_WIN_DW] = 1};
  memcpy(op.a, a, sizeof a);
  int y = add_op(b, &op, l);
  if (y < 0) return -1;
  sn_type flat = {.dtype = g->dtype, .batched = true, .rank = 1, .dim = {OT}};
  return sn_emit_typed(g, SN_OP_RESHAPE, y, &flat, &like);
}

/* conv1d: conv2d's im2col + GEMM on the [N, 1, T, C] view, a 1 x k window with
 * dilation; the weight (out, in, k) as torch.nn.Conv1d. */
static int build_conv1d(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_sequence(b, l, in)) return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  int64_t T = t->dim[0], ci = t->dim[1], k = l->kernel_size[1];
  sn_op op = at(l);
  op.code = SN_OP_IM2COL;
  op.n_in = 1;
  int64_t size[2] = {1, T};
  int dil[2] = {1, l->dilation};
  if (!window_geometry(size, l->kernel_size, l->strides, dil, l->padding, &op)) {
    char g2[256];
    got(b, &in[0], g2, sizeof g2);
    int64_t span = (k - 1) * l->dilation + 1;
    sn_diag_error(b->d, l->loc, "%s: a window of %lld steps (kernel_size %lld, dilation %d) does not fit a sequence of %lld with padding: valid; %s",
                  l->name, (long long)span, (long long)k, l->dilation, (long long)T, g2);
    sn_diag_hint(b->d, "use padding: same, a smaller kernel_size or dilation, or fewer strided layers before this one");
    return -1;
  }
  int64_t OT = op.a[SN_WIN_OW];
  b->out_mask = conv1d_mask(b, l, in[0].mask, &op);
  if (k == 1 && l->strides[1] == 1) return conv_product(b, l, in[0].v, ci, 1, &k, NULL); /* pointwise */
  op.in[0] = as_image(b, l, in[0].v);
  int patches = add_op(b, &op, l);
  if (patches < 0) return -1;
  sn_type out = {.dtype = t->dtype, .batched = true, .rank = 2, .dim = {OT, l->filters}};
  return conv_product(b, l, patches, ci, 1, &k, &out);
}

static int build_pool(builder *b, const sn_layer_spec *l, const input *in, int n) {
  bool global = l->kind == SN_LAYER_GLOBAL_AVG_POOL2D;
  if (!need_image(b, l, in, global ? "global_avg_pool2d" : l->kind == SN_LAYER_MAX_POOL2D ? "max_pool2d" : "avg_pool2d"))
    return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  sn_op op =
      op_at(l, l->kind == SN_LAYER_MAX_POOL2D ? SN_OP_MAX_POOL : SN_OP_AVG_POOL, in[0].v, -1);
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

/* Large enough that a padded step never wins a max, small enough for f32. */
static const double MASKED_OUT = 1e30;

/* global_avg_pool1d, global_max_pool1d: [N, T, C] -> [N, C] over the steps that
 * the input's mask keeps (all of them when it has none), as one window op over the
 * [N, 1, T, C] view. Masked, the average is sum(x m) / max(sum m, 1) and the max
 * is taken over x m - (1 - m) 1e30; a sample with no step kept gives 0. */
static int build_pool1d(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_sequence(b, l, in)) return -1;
  sn_graph *g = b->g;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  int64_t T = t->dim[0], C = t->dim[1];
  bool mx = l->kind == SN_LAYER_GLOBAL_MAX_POOL1D;
  if (T > INT32_MAX) { /* the window's side is an int */
    sn_diag_error(b->d, l->loc, "%s: %lld steps; %s pools at most %d", l->name, (long long)T,
                  sn_layer_kind_name(l->kind), INT32_MAX);
    return -1;
  }
  int x = in[0].v, m = in[0].mask;
  sn_op like = at(l);
  if (m >= 0) {
    x = sn_emit(g, SN_OP_MUL, x, m, -1, &like); /* m [N, T]: one value per row of [N, T, C] */
    if (mx) {
      int off = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_SUB, m, sn_emit_const(g, 1.0), -1, &like),
                        sn_emit_const(g, MASKED_OUT), -1, &like);
      x = sn_emit(g, SN_OP_ADD, x, off, -1, &like);
    }
  }
  sn_op op = op_at(l, mx ? SN_OP_MAX_POOL : SN_OP_AVG_POOL, as_image(b, l, x), -1);
  /* one window; its stride as long as it, so the max's gradient is a gather */
  int64_t size[2] = {1, T};
  int k[2] = {1, (int)T}, dil[2] = {1, 1};
  window_geometry(size, k, k, dil, SN_PAD_VALID, &op);
  int y = add_op(b, &op, l);
  if (y < 0) return -1;
  sn_type flat = {.dtype = g->dtype, .batched = true, .rank = 1, .dim = {C}};
  y = sn_emit_typed(g, SN_OP_RESHAPE, y, &flat, &like); /* [N, 1, 1, C] -> [N, C] */
  if (m < 0) return y;
  int kept = sn_emit(g, SN_OP_ROW_SUM, m, -1, -1, &like); /* [N] */
  int scale = mx ? sn_emit(g, SN_OP_GT, kept, sn_emit_const(g, 0.5), -1, &like)
                 : sn_emit(g, SN_OP_DIV, sn_emit_const(g, (double)T), emit_c2(g, SN_OP_CLAMP, kept, 1, INFINITY, &like),
                           -1, &like);
  return sn_emit(g, SN_OP_MUL, y, scale, -1, &like);
}

static int slice(builder *b, const sn_layer_spec *l, int x, int axis, int64_t off, int64_t width) {
  sn_op op = op_at(l, SN_OP_SLICE, x, -1);
  op.type = *TY(b, x);
  op.type.dim[axis] = width;
  op.a[0] = off;
  op.a[1] = axis;
  return add_op(b, &op, l);
}

/* lstm, gru: [N, T, C] -> h of every step [N, T, units] or of the last [N, units].
 * The input product of all steps is one GEMM (xw = x W_ih^T + biases); the
 * recurrence is one scan op (a runtime loop over the steps, a GEMM per step) whose
 * output holds h and what the backward pass needs. Over padded ids the input's mask
 * goes into the scan (a padded step keeps the state: the last step's h is the
 * state at the last real token) and zeroes h at the padded steps. torch.nn.LSTM / GRU's names,
 * layouts (gates i f g o; r z n) and initialization (uniform in +-1/sqrt(units)). */
static int build_recurrent(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_sequence(b, l, in)) return -1;
  sn_graph *g = b->g;
  bool lstm = l->kind == SN_LAYER_LSTM;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  int64_t T = t->dim[0], C = t->dim[1], H = l->units, G = (lstm ? 4 : 3) * H;
  double limit = 1 / sqrt((double)H);
  sn_op like = at(l);
  char name[128];
  int64_t wih[2] = {G, C}, whh[2] = {G, H};
  snprintf(name, sizeof name, "%s.weight_ih_l0", l->name);
  int w_ih = sn_param_add(g, name, 2, wih, SN_INIT_UNIFORM, limit, C, G, &like);
  snprintf(name, sizeof name, "%s.weight_hh_l0", l->name);
  int w_hh = sn_param_add(g, name, 2, whh, SN_INIT_UNIFORM, limit, H, G, &like);
  snprintf(name, sizeof name, "%s.bias_ih_l0", l->name);
  int b_ih = sn_param_add(g, name, 1, &G, SN_INIT_UNIFORM, limit, C, G, &like);
  snprintf(name, sizeof name, "%s.bias_hh_l0", l->name);
  int b_hh = sn_param_add(g, name, 1, &G, SN_INIT_UNIFORM, limit, H, G, &like);
  int xw = product(b, l, SN_OP_MATMUL, in[0].v, w_ih, true);
  if (xw < 0) return -1;
  xw = sn_emit(g, SN_OP_ADD, xw, b_ih, -1, &like);
  if (lstm) xw = sn_emit(g, SN_OP_ADD, xw, b_hh, -1, &like); /* gru: b_hn is inside r (...) */
  sn_op scan = at(l);
  scan.code = lstm ? SN_OP_LSTM : SN_OP_GRU;
  scan.n_in = lstm ? 2 : 3;
  scan.in[0] = xw;
  scan.in[1] = w_hh;
  scan.in[2] = b_hh;
  if (in[0].mask >= 0) scan.in[scan.n_in++] = in[0].mask; /* padded steps carry the state over */
  int out = add_op(b, &scan, l);
  if (out < 0) return -1;
  int h = slice(b, l, out, 1, 0, H); /* [N, T, H] */
  if (l->return_sequences && h >= 0 && in[0].mask >= 0) /* zeros at the padded steps (pad_packed_sequence) */
    h = sn_emit(g, SN_OP_MUL, h, in[0].mask, -1, &like);  /* m [N, T]: one value per row of [N, T, H] */
  if (l->return_sequences || h < 0) return h;
  int last = slice(b, l, h, 0, T - 1, 1);
  sn_type flat = {.dtype = g->dtype, .batched = true, .rank = 1, .dim = {H}};
  return last < 0 ? -1 : sn_emit_typed(g, SN_OP_RESHAPE, last, &flat, &like);
}

/* ids [N, T..] (integers stored as floats) -> [N, T.., dim], torch.nn.Embedding's
 * weight (vocab, dim). */
static int build_embedding(builder *b, const sn_layer_spec *l, const input *in, int n) {
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
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
  sn_op op = op_at(l, SN_OP_EMBED, tab, in[0].v);
  return add_op(b, &op, l);
}

/* ---------------------------------------------------------------------------
 * Sequences [N, T, D] */

/* x + P, a learned [T, D] table shared by every sample (GPT-2's wpe) */
static int build_position_embedding(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_sequence(b, l, in)) return -1;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.weight", l->name);
  int64_t shape[2] = {t->dim[0], t->dim[1]};
  int pos = sn_param_add(b->g, name, 2, shape, l->kernel_init, l->kernel_init_arg, shape[0], shape[1], &like);
  return sn_emit(b->g, SN_OP_ADD, in[0].v, pos, -1, &like);
}

static int emit_attr(builder *b, const sn_layer_spec *l, sn_opcode code, int x, int y, const int64_t *a, int na,
                     const sn_type *t) {
  sn_op op = at(l);
  op.code = code;
  op.n_in = sn_opdefs[code].n_in;
  op.in[0] = x;
  op.in[1] = y;
  for (int i = 0; i < na; i++) op.a[i] = a[i];
  if (t) op.type = *t;
  return add_op(b, &op, l);
}

/* [N, T, 3D] -> part j of (q, k, v), heads split out: [N, H, T, D/H] (one gather:
 * its gradient puts the three parts back into one [N, T, 3D] in one kernel) */
static int split_heads(builder *b, const sn_layer_spec *l, int qkv, int j) {
  int64_t a[3] = {j, 3, l->heads};
  return emit_attr(b, l, SN_OP_SPLIT_HEADS, qkv, -1, a, 3, NULL);
}

/* y = x W^T (+ bias): parameters LAYER.WNAME (out, in) and LAYER.BNAME */
static int projection(builder *b, const sn_layer_spec *l, int x, const char *wname, const char *bname, int64_t out,
                      int64_t in) {
  sn_op like = at(l);
  char name[128];
  snprintf(name, sizeof name, "%s.%s", l->name, wname);
  int64_t shape[2] = {out, in};
  int w = sn_param_add(b->g, name, 2, shape, SN_INIT_GLOROT_UNIFORM, 0, in, out, &like);
  int y = product(b, l, SN_OP_MATMUL, x, w, true);
  if (y < 0 || !l->use_bias) return y;
  snprintf(name, sizeof name, "%s.%s", l->name, bname);
  int bias = sn_param_add(b->g, name, 1, &out, SN_INIT_ZEROS, 0, in, out, &like);
  return sn_emit(b->g, SN_OP_ADD, y, bias, -1, &like);
}

static int mask_keys(builder *b, const sn_layer_spec *l, int x, int m, double c) {
  sn_op op = op_at(l, SN_OP_MASK_KEYS, x, m);
  op.c = c;
  return add_op(b, &op, l);
}

/* softmax over the keys of scores z [N, H, T, T]; with a padding mask m [N, T]
 * (key_padding_mask), padded keys score -1e30 (a weight of exactly 0, as -inf
 * gives) and their weights are set to 0 after the softmax, so a query whose keys
 * are all padding gets weights 0 (an output of out_proj.bias) instead of NaN. */
static int masked_softmax(builder *b, const sn_layer_spec *l, int z, int m) {
  sn_op like = at(l);
  if (m < 0) return sn_emit(b->g, SN_OP_SOFTMAX, z, -1, -1, &like);
  if ((z = mask_keys(b, l, z, m, -MASKED_OUT)) < 0) return -1;
  return mask_keys(b, l, sn_emit(b->g, SN_OP_SOFTMAX, z, -1, -1, &like), m, 0.0);
}

/* Multi-head self-attention as torch.nn.MultiheadAttention(D, heads, batch_first):
 *   q, k, v = split(x Win^T + bin)                 [N, H, T, d], d = D / H
 *   p = softmax(mask(q k^T / sqrt(d)))            [N, H, T, T]  one fused kernel
 * (mask: causal, and the padded keys when the input has a padding mask)
 *   y = merge(dropout(p) v) Wout^T + bout          [N, T, D]
 * The scale, the causal and key padding masks and the softmax fuse into one kernel,
 * and so does the softmax's gradient; the products are batch_matmuls (a GEMM per
 * sample and head). */
static int build_attention(builder *b, const sn_layer_spec *l, const input *in, int n) {
  if (!need_sequence(b, l, in)) return -1;
  sn_graph *g = b->g;
  const sn_type t_v = *TY(b, in[0].v), *t = &t_v;
  int64_t D = t->dim[1], H = l->heads;
  if (D % H) {
    sn_diag_error(b->d, l->heads_loc.line ? l->heads_loc : l->loc, "%s: heads (%lld) must divide the width D = %lld of its input",
                  l->name, (long long)H, (long long)D);
    sn_diag_hint(b->d, "each head takes D / heads features");
    return -1;
  }
  const sn_source *src = &b->s->data.train;
  if (l->causal && src->kind == SN_SRC_TEXT && src->text_mode == SN_TEXT_CLASSIFY)
    sn_diag_warning(b->d, l->loc,
                    "%s: causal attention in a classifier: each position sees only the text before it, "
                    "so a pooled summary of a record misses most of its context",
                    l->name);
  sn_op like = at(l);
  int qkv = projection(b, l, in[0].v, "in_proj_weight", "in_proj_bias", 3 * D, D);
  if (qkv < 0) return -1;
  int q = split_heads(b, l, qkv, 0), k = split_heads(b, l, qkv, 1), v = split_heads(b, l, qkv, 2);
  if (q < 0 || k < 0 || v < 0) return -1;
  int s = product(b, l, SN_OP_BATCH_MATMUL, q, k, true);
  if (s < 0) return -1;
  int z = sn_emit(g, SN_OP_MUL, s, sn_emit_const(g, 1.0 / sqrt((double)(D / H))), -1, &like);
  if (l->causal) {
    sn_op m = op_at(l, SN_OP_MASK_CAUSAL, z, -1);
    m.c = -INFINITY;
    if ((z = add_op(b, &m, l)) < 0) return -1;
  }
  int p = masked_softmax(b, l, z, in[0].mask);
  if (p < 0) return -1;
  if (g->training && l->rate > 0) {
    sn_op d = op_at(l, SN_OP_DROPOUT, p, -1);
    d.c = l->rate;
    d.a[0] = (int64_t)(l - b->s->layers) + 1;
    if ((p = add_op(b, &d, l)) < 0) return -1;
  }
  int o = product(b, l, SN_OP_BATCH_MATMUL, p, v, false);
  if (o < 0) return -1;
  int64_t perm[3] = {1, 0, 2};
  int merged = emit_attr(b, l, SN_OP_TRANSPOSE, o, -1, perm, 3, NULL);
  if (merged < 0) return -1;
  merged = sn_emit_typed(g, SN_OP_RESHAPE, merged, t, &like);
  return projection(b, l, merged, "out_proj.weight", "out_proj.bias", D, D);
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
    [SN_LAYER_POSITION_EMBEDDING] = build_position_embedding,
    [SN_LAYER_ATTENTION] = build_attention,
    [SN_LAYER_CONV1D] = build_conv1d,
    [SN_LAYER_GLOBAL_AVG_POOL1D] = build_pool1d,
    [SN_LAYER_GLOBAL_MAX_POOL1D] = build_pool1d,
    [SN_LAYER_LSTM] = build_recurrent,
    [SN_LAYER_GRU] = build_recurrent,
};

/* The padding mask of a layer's output: the layers that keep the steps of their
 * input (elementwise, normalizing over the last axis, the joins, embedding, which
 * adds the last axis to [N, T] ids, a reshape within each step, attention, lstm and
 * gru with return_sequences) pass their inputs' masks on (the product where two
 * differ); conv1d makes its own (build_conv1d); every other layer ends it. */
static int layer_mask(builder *b, const sn_layer_spec *l, const input *in, int n, int y) {
  switch (l->kind) {
  case SN_LAYER_CONV1D:
    return b->out_mask;
  case SN_LAYER_ACTIVATION:
  case SN_LAYER_RESHAPE: /* when it keeps the steps: [T] -> [T, 1] */
  case SN_LAYER_DROPOUT:
  case SN_LAYER_LAYER_NORM:
  case SN_LAYER_BATCH_NORM:
  case SN_LAYER_EMBEDDING:
  case SN_LAYER_POSITION_EMBEDDING:
  case SN_LAYER_ADD:
  case SN_LAYER_MULTIPLY:
  case SN_LAYER_CONCAT:
  case SN_LAYER_LSTM: /* with return_sequences */
  case SN_LAYER_GRU:
  case SN_LAYER_ATTENTION: /* its outputs at padded queries: left out downstream */
    break;
  default:
    return -1;
  }
  const sn_type t_v = *TY(b, y), *t = &t_v;
  int m = -1;
  for (int i = 0; i < n; i++) {
    int mi = in[i].mask;
    if (mi < 0 || mi == m) continue;
    sn_op like = at(l);
    m = m < 0 ? mi : sn_emit(b->g, SN_OP_MUL, m, mi, -1, &like);
  }
  /* a concat or reshape that changes the steps: no mask after it */
  if (m >= 0 && (t->rank < 2 || TY(b, m)->dim[0] != t->dim[0])) return -1;
  return m;
}

/* The mask of the model input: ids [T] that differ from pad_id (by more than 0.5,
 * so that ids stored as floats compare exactly). */
static int input_mask(builder *b) {
  const sn_spec *s = b->s;
  if (s->pad_id < 0) return -1;
  if (s->input_rank != 1) {
    sn_diag_error(b->d, s->pad_id_loc.line ? s->pad_id_loc : s->input_loc,
                  "pad_id needs a model input of ids, of shape [steps]; model.input has %d axes", s->input_rank);
    return -1;
  }
  sn_graph *g = b->g;
  sn_op like = {.loc = s->input_loc, .layer = "input"};
  int d = sn_emit(g, SN_OP_ABS, sn_emit(g, SN_OP_SUB, g->input, sn_emit_const(g, s->pad_id), -1, &like), -1, -1, &like);
  return sn_emit(g, SN_OP_GT, d, sn_emit_const(g, 0.5), -1, &like);
}

/* ---------------------------------------------------------------------------
 * Loss and metrics */

static sn_op loss_like(const sn_spec *s, const char *what) {
  sn_op like = {.loc = s->loss_loc};
  snprintf(like.layer, sizeof like.layer, "%s", what);
  return like;
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
  /* copies: adding ops below may move g->ops */
  const sn_type out_type = *TY(b, out), *ot = &out_type;
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
  const sn_op out_op = g->ops[out], *oo = &out_op;
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
    if (li == 0) in[0] = (input){b->g->input, "input", s->input_loc.line, b->input_mask};
    else in[0] = (input){b->value[li - 1], s->layers[li - 1].name, s->layers[li - 1].loc.line, b->mask[li - 1]};
  } else {
    for (int i = 0; i < n; i++) {
      if (!strcmp(l->inputs[i], "input")) {
        in[i] = (input){b->g->input, "input", s->input_loc.line, b->input_mask};
        continue;
      }
      int j = find_layer(s, l->inputs[i]);
      in[i] = (input){j >= 0 ? b->value[j] : -1, l->inputs[i], j >= 0 ? s->layers[j].loc.line : 0,
                      j >= 0 ? b->mask[j] : -1};
    }
  }
  for (int i = 0; i < n; i++)
    if (in[i].v < 0) return -1; /* unknown or not built: reported by the parser or earlier */
  return n;
}

int sn_build_graph(const sn_spec *s, sn_dtype dtype, bool training, sn_graph *g, sn_diag *d) {
  sn_graph_init(g, dtype);
  g->training = training;
  builder b = {s, g, d, NULL, NULL, -1, -1};
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
  b.mask = calloc((size_t)s->n_layers + 1, sizeof(int));
  if (!g->layer_out || !b.mask) abort();
  for (int i = 0; i < s->n_layers; i++) g->layer_out[i] = b.mask[i] = -1;
  g->n_layers = s->n_layers;
  b.input_mask = input_mask(&b);
  for (int k = 0; k < s->n_layers; k++) {
    int li = s->order ? s->order[k] : k;
    const sn_layer_spec *l = &s->layers[li];
    input ins[8];
    int n = resolve_inputs(&b, li, ins);
    if (n < 0) continue;
    b.out_mask = -1;
    g->layer_out[li] = layer_builders[l->kind](&b, l, ins, n);
    if (g->layer_out[li] >= 0) b.mask[li] = layer_mask(&b, l, ins, n, g->layer_out[li]);
    if (g->oversized >= 0) { /* sizes past it would overflow: stop here */
      const sn_op *op = &g->ops[g->oversized];
      char sh[128];
      shape_str(&op->type, sh, sizeof sh);
      if (op->code == SN_OP_PARAM)
        sn_diag_error(d, l->loc, "%s: parameter '%s' %s would hold more than %lld values", l->name,
                      g->params[op->param].name, sh, (long long)SN_MAX_ELEMS);
      else
        sn_diag_error(d, l->loc, "%s: a value of shape %s (%s) would hold more than %lld values per sample",
                      l->name, sh, sn_opdefs[op->code].name, (long long)SN_MAX_ELEMS);
      sn_diag_hint(d, "make the layer or the sequence smaller");
      break;
    }
  }
  free(b.mask);
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
