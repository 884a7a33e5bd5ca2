/* The op table: for every IR op, in one place, its class, its shape rule, its
 * gradient rule (written as IR ops) and, for composites, its expansion into
 * primitives. Lowering of the primitive classes is in emit_llvm.c.
 *
 * Broadcasting of binary elementwise ops (either operand may be the smaller):
 *   same type            [N,..,C] op [N,..,C]
 *   scalar               [N,..,C] op []
 *   column (bias)        [N,..,C] op [C]
 *   row                  [N,..,C] op [N,..]      (one value per row)
 *   sample               [N,d..]  op [d..]       (one value per sample position:
 *                                                  a position embedding)
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static void type_str(const sn_type *t, char *buf, size_t len) {
  char *p = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&p, &n);
  if (!f) {
    snprintf(buf, len, "?");
    return;
  }
  sn_type_print(t, f);
  fclose(f);
  snprintf(buf, len, "%s", p);
  free(p);
}

static const sn_type *T(const sn_graph *g, int v) { return &g->ops[v].type; }

static bool is_float(const sn_type *t) { return t->dtype != SN_I32; }

/* ---------------------------------------------------------------------------
 * Shape rules */

static int infer_same_as_a(const sn_graph *g, sn_op *op, char *err, size_t len) {
  op->type = *T(g, op->in[0]);
  if (!is_float(&op->type)) return sn_fail_buf(err, len, "%s needs a float operand", sn_opdefs[op->code].name);
  return 0;
}

static int infer_scalar(const sn_graph *g, sn_op *op, char *err, size_t len) {
  memset(&op->type, 0, sizeof op->type);
  op->type.dtype = g->dtype;
  return 0;
}

/* How `small` broadcasts against `big`; 0 if it does not. */
typedef enum { BC_NONE = 0, BC_SAME, BC_SCALAR, BC_COL, BC_ROW, BC_SAMPLE } bcast;

static bcast broadcast_kind(const sn_type *big, const sn_type *small) {
  if (sn_type_eq(big, small)) return BC_SAME;
  if (!small->batched && small->rank == 0) return BC_SCALAR;
  if (!small->batched && small->rank == 1 && big->rank >= 1 &&
      small->dim[0] == big->dim[big->rank - 1])
    return BC_COL;
  if (small->batched == big->batched && small->rank == big->rank - 1) {
    for (int i = 0; i < small->rank; i++)
      if (small->dim[i] != big->dim[i]) return BC_NONE;
    return BC_ROW;
  }
  if (big->batched && !small->batched && small->rank == big->rank) {
    for (int i = 0; i < small->rank; i++)
      if (small->dim[i] != big->dim[i]) return BC_NONE;
    return BC_SAMPLE;
  }
  return BC_NONE;
}

/* Larger of two types by broadcast order: a value that the other broadcasts to. */
static int infer_binary(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *a = T(g, op->in[0]), *b = T(g, op->in[1]);
  if (!is_float(a) || !is_float(b))
    return sn_fail_buf(err, len, "%s needs float operands", sn_opdefs[op->code].name);
  if (broadcast_kind(a, b)) op->type = *a;
  else if (broadcast_kind(b, a)) op->type = *b;
  else {
    char sa[96], sb[96];
    type_str(a, sa, sizeof sa);
    type_str(b, sb, sizeof sb);
    return sn_fail_buf(err, len, "%s of %s and %s: shapes do not broadcast",
                       sn_opdefs[op->code].name, sa, sb);
  }
  return 0;
}

static int infer_eq(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *a = T(g, op->in[0]), *b = T(g, op->in[1]);
  if (!sn_type_eq(a, b) || a->dtype != SN_I32) return sn_fail_buf(err, len, "eq needs two equal i32 operands");
  op->type = *a;
  op->type.dtype = g->dtype;
  return 0;
}

static int infer_reshape(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->batched != op->type.batched || sn_type_elems(x) != sn_type_elems(&op->type)) {
    char sa[96], sb[96];
    type_str(x, sa, sizeof sa);
    type_str(&op->type, sb, sizeof sb);
    return sn_fail_buf(err, len, "cannot reshape %s to %s: element counts differ", sa, sb);
  }
  op->type.dtype = x->dtype;
  return 0;
}

static int infer_broadcast(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  op->type.dtype = x->dtype;
  if (!broadcast_kind(&op->type, x))
    return sn_fail_buf(err, len, "broadcast: operand does not broadcast");
  return 0;
}

static int infer_onehot(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->dtype != SN_I32 || x->batched != op->type.batched || x->rank + 1 != op->type.rank)
    return sn_fail_buf(err, len, "onehot: index shape does not match");
  op->type.dtype = g->dtype;
  return 0;
}

/* Matrix view of an operand: rows, cols; batch data [N, d1.., K] is (N d1.., K),
 * its rows written as -(d1..) (a negative count stands for N times it). */
static int matrix_view(const sn_type *t, int64_t *r, int64_t *c) {
  if (t->batched && t->rank >= 1) {
    int64_t m = 1;
    for (int i = 0; i < t->rank - 1; i++) m *= t->dim[i];
    *r = -m;
    *c = t->dim[t->rank - 1];
    return 0;
  }
  if (!t->batched && t->rank == 2) {
    *r = t->dim[0];
    *c = t->dim[1];
    return 0;
  }
  return -1;
}

static int infer_matmul(const sn_graph *g, sn_op *op, char *err, size_t len) {
  int64_t ar, ac, br, bc;
  const sn_type *a = T(g, op->in[0]), *b = T(g, op->in[1]);
  if (matrix_view(a, &ar, &ac) || matrix_view(b, &br, &bc))
    return sn_fail_buf(err, len, "matmul needs [N,..,K] or [M,K] operands");
  int64_t m = op->ta ? ac : ar, k1 = op->ta ? ar : ac;
  int64_t k2 = op->tb ? bc : br, n = op->tb ? br : bc;
  if (k1 != k2) {
    char sa[96], sb[96];
    type_str(a, sa, sizeof sa);
    type_str(b, sb, sizeof sb);
    return sn_fail_buf(err, len, "matmul of %s%s and %s%s: inner dimensions differ", sa,
                       op->ta ? "^T" : "", sb, op->tb ? "^T" : "");
  }
  if (n < 0) return sn_fail_buf(err, len, "matmul: batch dimension cannot be the output's columns");
  memset(&op->type, 0, sizeof op->type);
  op->type.dtype = a->dtype;
  if (m < 0) { /* rows of batch data: keep a's leading dims */
    op->type = *a;
    op->type.dim[a->rank - 1] = n;
  } else {
    op->type.rank = 2;
    op->type.dim[0] = m;
    op->type.dim[1] = n;
  }
  return 0;
}

/* [N, B.., M, K] x [N, B.., K, P]: both batched, the same leading axes */
static int infer_batch_matmul(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *a = T(g, op->in[0]), *b = T(g, op->in[1]);
  int r = a->rank;
  bool ok = a->batched && b->batched && r >= 2 && b->rank == r && a->dtype == b->dtype && is_float(a);
  for (int i = 0; ok && i < r - 2; i++) ok = a->dim[i] == b->dim[i];
  int64_t m = 0, k1 = 0, k2 = 0, n = 0;
  if (ok) {
    m = a->dim[r - (op->ta ? 1 : 2)], k1 = a->dim[r - (op->ta ? 2 : 1)];
    k2 = b->dim[r - (op->tb ? 1 : 2)], n = b->dim[r - (op->tb ? 2 : 1)];
  }
  if (!ok || k1 != k2) {
    char sa[96], sb[96];
    type_str(a, sa, sizeof sa);
    type_str(b, sb, sizeof sb);
    return sn_fail_buf(err, len,
                       "batch_matmul of %s%s and %s%s: leading axes or inner dimensions differ", sa,
                       op->ta ? "^T" : "", sb, op->tb ? "^T" : "");
  }
  op->type = *a;
  op->type.dim[r - 2] = m;
  op->type.dim[r - 1] = n;
  return 0;
}

/* [.., T, T]: the last two axes equal (a causal mask over query x key positions) */
static int infer_square(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (!is_float(x) || x->rank < 2 || x->dim[x->rank - 1] != x->dim[x->rank - 2])
    return sn_fail_buf(err, len, "%s needs float [.., T, T] operands", sn_opdefs[op->code].name);
  op->type = *x;
  return 0;
}

/* x [N, .., T, T] and a per-sample key mask m [N, T] */
static int infer_mask_keys(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]), *m = T(g, op->in[1]);
  if (!is_float(x) || !x->batched || x->rank < 2 || x->dim[x->rank - 1] != x->dim[x->rank - 2])
    return sn_fail_buf(err, len, "mask_keys needs float batch [.., T, T] scores");
  if (!m->batched || m->rank != 1 || m->dim[0] != x->dim[x->rank - 1])
    return sn_fail_buf(err, len, "mask_keys needs a batch mask [T] with T the scores' last axis");
  op->type = *x;
  return 0;
}

static int infer_batch_sum(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (!x->batched || x->rank < 1) return sn_fail_buf(err, len, "batch_sum needs batch data");
  op->type = *x;
  op->type.batched = false;
  return 0;
}

static int infer_rowred(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->rank < 1)
    return sn_fail_buf(err, len, "%s needs a last dimension", sn_opdefs[op->code].name);
  op->type = *x;
  op->type.rank--;
  op->type.dtype = op->code == SN_OP_ROW_ARGMAX ? SN_I32 : x->dtype;
  return 0;
}

static int infer_pick(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]), *i = T(g, op->in[1]);
  if (x->rank < 1 || i->dtype != SN_I32 || i->batched != x->batched || i->rank != x->rank - 1)
    return sn_fail_buf(err, len, "pick: index shape does not match");
  op->type = *i;
  op->type.dtype = x->dtype;
  return 0;
}

static int infer_colsum(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->rank < 1) return sn_fail_buf(err, len, "colsum needs a last dimension");
  memset(&op->type, 0, sizeof op->type);
  op->type.dtype = x->dtype;
  op->type.rank = 1;
  op->type.dim[0] = x->dim[x->rank - 1];
  return 0;
}

static int infer_sum_all(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->rank != 0) return sn_fail_buf(err, len, "sum_all needs one value per row");
  return infer_scalar(g, op, err, len);
}

/* Whether i32 labels y hold one class per row of the logits z: [N, ..] for [N, .., C]. */
static bool labels_fit(const sn_type *z, const sn_type *y) {
  if (!z->batched || z->rank < 1 || y->dtype != SN_I32 || !y->batched || y->rank != z->rank - 1)
    return false;
  for (int i = 0; i < y->rank; i++)
    if (y->dim[i] != z->dim[i]) return false;
  return true;
}

static int infer_xent(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *z = T(g, op->in[0]), *y = T(g, op->in[1]);
  if (!labels_fit(z, y))
    return sn_fail_buf(err, len,
                       "softmax cross-entropy needs [N,..,C] logits and [N,..] class labels");
  op->type = *y;
  op->type.dtype = z->dtype;
  if (op->code == SN_OP_SOFTMAX_XENT_GRAD) op->type = *z;
  return 0;
}

static int infer_cce(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *z = T(g, op->in[0]), *t = T(g, op->in[1]);
  if (!z->batched || z->rank < 1 || !sn_type_eq(z, t))
    return sn_fail_buf(err, len,
                       "categorical cross-entropy needs [N,..,C] logits and [N,..,C] targets");
  op->type = *z;
  op->type.rank--;
  return 0;
}

/* concat: a[0] = the axis (of dim[], the batch not counted) the inputs are joined
 * along; every other dimension must match. */
static int infer_concat(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *a = T(g, op->in[0]), *b = T(g, op->in[1]);
  int64_t axis = op->a[0];
  bool ok = a->batched == b->batched && a->rank == b->rank && a->rank >= 1 && a->dtype == b->dtype &&
            axis >= 0 && axis < a->rank;
  for (int i = 0; ok && i < a->rank; i++) ok = i == axis || a->dim[i] == b->dim[i];
  if (!ok) {
    char sa[96], sb[96];
    type_str(a, sa, sizeof sa);
    type_str(b, sb, sizeof sb);
    return sn_fail_buf(err, len,
                       "concat of %s and %s along axis %lld: every other dimension must match", sa,
                       sb, (long long)axis);
  }
  op->type = *a;
  op->type.dim[axis] += b->dim[axis];
  return 0;
}

/* slice: a[0] = offset along axis a[1]; the width is the op's type. */
static int infer_slice(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  int r = x->rank;
  int64_t axis = op->a[1];
  bool ok = r >= 1 && op->type.rank == r && axis >= 0 && axis < r && op->a[0] >= 0 &&
            op->a[0] + op->type.dim[axis] <= x->dim[axis];
  for (int i = 0; ok && i < r; i++) ok = i == axis || op->type.dim[i] == x->dim[i];
  if (!ok) return sn_fail_buf(err, len, "slice outside its operand");
  op->type.dtype = x->dtype;
  return 0;
}

/* split_heads: a[0] the part, a[1] the parts P, a[2] the heads H */
static int infer_split_heads(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  int64_t P = op->a[1], H = op->a[2];
  if (!x->batched || x->rank != 2 || P < 1 || H < 1 || op->a[0] < 0 || op->a[0] >= P || x->dim[1] % (P * H))
    return sn_fail_buf(err, len, "split_heads needs [N, T, P*D] with heads dividing D");
  op->type = *x;
  op->type.rank = 3;
  op->type.dim[0] = H;
  op->type.dim[1] = x->dim[0];
  op->type.dim[2] = x->dim[1] / (P * H);
  return 0;
}

static int infer_merge_heads(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  int64_t P = op->a[1], H = op->a[2];
  if (!x->batched || x->rank != 3 || x->dim[0] != H || P < 1 || op->a[0] < 0 || op->a[0] >= P)
    return sn_fail_buf(err, len, "merge_heads needs [N, H, T, d]");
  op->type = *x;
  op->type.rank = 2;
  op->type.dim[0] = x->dim[1];
  op->type.dim[1] = P * H * x->dim[2];
  return 0;
}

/* Window ops over NHWC batch data; the output size comes with the geometry. */
static int infer_window(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (!x->batched || x->rank != 3) return sn_fail_buf(err, len, "%s needs [N, H, W, C] data", sn_opdefs[op->code].name);
  int64_t c = x->dim[2];
  op->type = *x;
  op->type.dim[0] = op->a[SN_WIN_OH];
  op->type.dim[1] = op->a[SN_WIN_OW];
  op->type.dim[2] = op->code == SN_OP_IM2COL ? c * op->a[SN_WIN_KH] * op->a[SN_WIN_KW] : c;
  if (op->type.dim[0] < 1 || op->type.dim[1] < 1) return sn_fail_buf(err, len, "window larger than its input");
  /* dilated taps: im2col (and col2im) only; pools read adjacent positions */
  bool dilated = op->a[SN_WIN_DH] != 1 || op->a[SN_WIN_DW] != 1;
  if (op->a[SN_WIN_DH] < 1 || op->a[SN_WIN_DW] < 1 || (dilated && op->code != SN_OP_IM2COL))
    return sn_fail_buf(err, len, "%s: bad dilation", sn_opdefs[op->code].name);
  return 0;
}

/* conv, conv_gemm: x [N, H, W, C] and w [KH*KW*C, F], the geometry in a[] as im2col's. */
static int infer_conv(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]), *w = T(g, op->in[1]);
  const int64_t *a = op->a;
  int64_t k = a[SN_WIN_KH] * a[SN_WIN_KW];
  if (!x->batched || x->rank != 3 || !is_float(x) || w->batched || w->rank != 2 ||
      w->dtype != x->dtype || w->dim[0] != k * x->dim[2])
    return sn_fail_buf(err, len, "%s needs x [N, H, W, C] and w [KH*KW*C, F]",
                       sn_opdefs[op->code].name);
  if (a[SN_WIN_OH] < 1 || a[SN_WIN_OW] < 1 || a[SN_WIN_SH] < 1 || a[SN_WIN_SW] < 1 ||
      a[SN_WIN_DH] < 1 || a[SN_WIN_DW] < 1 || k < 1)
    return sn_fail_buf(err, len, "%s: bad window geometry", sn_opdefs[op->code].name);
  op->type = *x;
  op->type.dim[0] = a[SN_WIN_OH];
  op->type.dim[1] = a[SN_WIN_OW];
  op->type.dim[2] = w->dim[1];
  return 0;
}

/* conv_wgrad, conv_gemm_wgrad: dy [N, OH, OW, F] and x [N, H, W, C] give [KH*KW*C, F]. */
static int infer_conv_wgrad(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *dy = T(g, op->in[0]), *x = T(g, op->in[1]);
  if (!dy->batched || dy->rank != 3 || !x->batched || x->rank != 3 || dy->dtype != x->dtype ||
      !is_float(x) || dy->dim[0] != op->a[SN_WIN_OH] || dy->dim[1] != op->a[SN_WIN_OW])
    return sn_fail_buf(err, len, "%s needs dy [N, OH, OW, F] and x [N, H, W, C]",
                       sn_opdefs[op->code].name);
  memset(&op->type, 0, sizeof op->type);
  op->type.dtype = x->dtype;
  op->type.rank = 2;
  op->type.dim[0] = op->a[SN_WIN_KH] * op->a[SN_WIN_KW] * x->dim[2];
  op->type.dim[1] = dy->dim[2];
  return 0;
}

static int infer_embed(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *tab = T(g, op->in[0]), *ids = T(g, op->in[1]);
  if (tab->batched || tab->rank != 2 || !ids->batched || ids->rank + 1 > SN_MAX_RANK)
    return sn_fail_buf(err, len, "embedding needs a [V, D] table and [N, ..] ids");
  op->type = *ids;
  op->type.dtype = tab->dtype;
  op->type.dim[op->type.rank++] = tab->dim[1];
  return 0;
}

static int infer_transpose(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *x = T(g, op->in[0]);
  if (x->rank < 2) return sn_fail_buf(err, len, "transpose needs 2 axes or more (per sample for batch data)");
  int seen = 0; /* a[0..rank) must be a permutation */
  for (int k = 0; k < x->rank; k++)
    if (op->a[k] >= 0 && op->a[k] < x->rank) seen |= 1 << op->a[k];
  if (seen != (1 << x->rank) - 1) return sn_fail_buf(err, len, "transpose: the axes are not a permutation");
  op->type = *x;
  for (int k = 0; k < x->rank; k++) op->type.dim[k] = x->dim[op->a[k]];
  return 0;
}

/* The recurrent scans: xw [N, T, G H] and W_hh [G H, H] (G gates) give
 * [N, T, width H]; gru also takes b_hh [3H]; either may take a mask [N, T] after. */
static int infer_scan(const sn_graph *g, sn_op *op, int gates, int width, char *err, size_t len) {
  const sn_type *xw = T(g, op->in[0]), *w = T(g, op->in[1]);
  if (!xw->batched || xw->rank != 2 || w->batched || w->rank != 2 || w->dim[0] != gates * w->dim[1] ||
      xw->dim[1] != w->dim[0] || !is_float(xw) || w->dtype != xw->dtype)
    return sn_fail_buf(err, len, "%s needs xw [N, T, %dH] and W_hh [%dH, H]", sn_opdefs[op->code].name, gates, gates);
  int n_data = sn_opdefs[op->code].n_in;
  if (op->n_in > n_data) {
    const sn_type *m = T(g, op->in[n_data]);
    if (op->n_in != n_data + 1 || !m->batched || m->rank != 1 || m->dim[0] != xw->dim[0] || m->dtype != xw->dtype)
      return sn_fail_buf(err, len, "%s: the mask must be [N, T]", sn_opdefs[op->code].name);
  }
  op->type = *xw;
  op->type.dim[1] = width * w->dim[1];
  return 0;
}
static int infer_lstm(const sn_graph *g, sn_op *op, char *err, size_t len) {
  return infer_scan(g, op, 4, 6, err, len);
}
static int infer_gru(const sn_graph *g, sn_op *op, char *err, size_t len) {
  const sn_type *b = T(g, op->in[2]);
  if (b->batched || b->rank != 1 || b->dim[0] != T(g, op->in[1])->dim[0])
    return sn_fail_buf(err, len, "gru needs b_hh [3H]");
  return infer_scan(g, op, 3, 5, err, len);
}

/* Scatter accumulations: the result type is given (the type of what was gathered). */
static int infer_given(const sn_graph *g, sn_op *op, char *err, size_t len) {
  op->type.dtype = T(g, op->in[0])->dtype;
  return 0;
}

/* ---------------------------------------------------------------------------
 * Gradient rules */

#define OP(v) (&g->ops[v])

int sn_unbroadcast(sn_graph *g, int dy, const sn_type *to, const sn_op *like) {
  while (!sn_type_eq(T(g, dy), to)) {
    const sn_type *t = T(g, dy);
    if (!to->batched && to->rank == 1 && t->rank >= 1 && t->dim[t->rank - 1] == to->dim[0] &&
        (t->batched || t->rank > 1))
      dy = sn_emit(g, SN_OP_COLSUM, dy, -1, -1, like);
    else if (t->rank > to->rank)
      dy = sn_emit(g, SN_OP_ROW_SUM, dy, -1, -1, like);
    else if (t->batched && t->rank == 0)
      dy = sn_emit(g, SN_OP_SUM_ALL, dy, -1, -1, like);
    else if (t->batched && !to->batched && t->rank == to->rank)
      dy = sn_emit(g, SN_OP_BATCH_SUM, dy, -1, -1, like);
    else {
      fprintf(stderr, "specnet: internal error: cannot unbroadcast\n");
      abort();
    }
  }
  return dy;
}

/* matmul and batch_matmul: the same rule per product */
static void grad_matmul(sn_graph *g, int v, int dy, int dx[]) {
  const sn_op op = *OP(v);
  int a = op.in[0], b = op.in[1];
  sn_op m;
  char err[256];
  /* C = op(a) op(b):  dA = dC op(b)^T (or its transpose), dB = op(a)^T dC. */
  if (!op.ta) m = (sn_op){.code = op.code, .n_in = 2, .in = {dy, b}, .tb = !op.tb};
  else m = (sn_op){.code = op.code, .n_in = 2, .in = {b, dy}, .ta = op.tb, .tb = 1};
  m.loc = op.loc;
  memcpy(m.layer, op.layer, sizeof m.layer);
  dx[0] = sn_graph_add(g, &m, err, sizeof err);
  if (!op.tb) m = (sn_op){.code = op.code, .n_in = 2, .in = {a, dy}, .ta = !op.ta};
  else m = (sn_op){.code = op.code, .n_in = 2, .in = {dy, a}, .ta = 1, .tb = op.ta};
  m.loc = op.loc;
  memcpy(m.layer, op.layer, sizeof m.layer);
  dx[1] = sn_graph_add(g, &m, err, sizeof err);
  if (dx[0] < 0 || dx[1] < 0) {
    fprintf(stderr, "specnet: internal error in matmul gradient: %s\n", err);
    abort();
  }
}

static void grad_add(sn_graph *g, int v, int dy, int dx[]) {
  const sn_op *op = OP(v);
  sn_op like = *op;
  sn_type ta = *T(g, op->in[0]), tb = *T(g, op->in[1]);
  dx[0] = sn_unbroadcast(g, dy, &ta, &like);
  dx[1] = sn_unbroadcast(g, dy, &tb, &like);
}

static void grad_sub(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  sn_type ta = *T(g, like.in[0]), tb = *T(g, like.in[1]);
  dx[0] = sn_unbroadcast(g, dy, &ta, &like);
  dx[1] = sn_unbroadcast(g, sn_emit(g, SN_OP_NEG, dy, -1, -1, &like), &tb, &like);
}

static void grad_mul(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  int a = like.in[0], b = like.in[1];
  sn_type ta = *T(g, a), tb = *T(g, b);
  dx[0] = sn_unbroadcast(g, sn_emit(g, SN_OP_MUL, dy, b, -1, &like), &ta, &like);
  dx[1] = sn_unbroadcast(g, sn_emit(g, SN_OP_MUL, dy, a, -1, &like), &tb, &like);
}

static void grad_div(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  int b = like.in[1];
  sn_type ta = *T(g, like.in[0]), tb = *T(g, b);
  /* y = a / b:  da = dy / b,  db = -dy * y / b */
  dx[0] = sn_unbroadcast(g, sn_emit(g, SN_OP_DIV, dy, b, -1, &like), &ta, &like);
  int t = sn_emit(g, SN_OP_MUL, dy, sn_emit(g, SN_OP_DIV, v, b, -1, &like), -1, &like);
  dx[1] = sn_unbroadcast(g, sn_emit(g, SN_OP_NEG, t, -1, -1, &like), &tb, &like);
}

static void grad_neg(sn_graph *g, int v, int dy, int dx[]) {
  dx[0] = sn_emit(g, SN_OP_NEG, dy, -1, -1, OP(v));
}
static void grad_exp(sn_graph *g, int v, int dy, int dx[]) {
  dx[0] = sn_emit(g, SN_OP_MUL, dy, v, -1, OP(v));
}
static void grad_log(sn_graph *g, int v, int dy, int dx[]) {
  dx[0] = sn_emit(g, SN_OP_DIV, dy, OP(v)->in[0], -1, OP(v));
}
static void grad_copy(sn_graph *g, int v, int dy, int dx[]) { dx[0] = dy; }

/* op added to g; a gradient rule that builds an op the graph refuses is a bug in
 * the rule: an internal error naming what (the op) and the process aborts. */
static int must_add(sn_graph *g, sn_op *op, const char *what) {
  char err[256];
  int v = sn_graph_add(g, op, err, sizeof err);
  if (v < 0) {
    fprintf(stderr, "specnet: internal error in %s: %s\n", what, err);
    abort();
  }
  return v;
}

/* An op like `proto` (attributes such as alpha, annotations) with other inputs and,
 * when t is given, another type. */
static int add_like(sn_graph *g, const sn_op *proto, sn_opcode code, int a, int b, const sn_type *t) {
  sn_op op = *proto;
  op.code = code;
  op.n_in = sn_opdefs[code].n_in;
  op.in[0] = a;
  op.in[1] = b;
  if (t) op.type = *t;
  return must_add(g, &op, sn_opdefs[code].name);
}
/* An activation's gradient: its gradient op (acts.def) on (y or x, dy), with the
 * activation's option (alpha, in c) carried over. */
static void grad_act(sn_graph *g, int v, int dy, int dx[]) {
  static const struct {
    sn_opcode op, grad;
    bool from_x;
  } acts[] = {
#define Y false
#define X true
#define ACTDEF(id, name, op, grad_op, from, option, dflt) {SN_OP_##op, SN_OP_##grad_op, from},
#include "acts.def"
#undef ACTDEF
#undef X
#undef Y
  };
  for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
    if (acts[i].op == OP(v)->code) {
      dx[0] = add_like(g, OP(v), acts[i].grad, acts[i].from_x ? OP(v)->in[0] : v, dy, NULL);
      return;
    }
  fprintf(stderr, "specnet: internal error: %s is not an activation of acts.def\n", sn_opdefs[OP(v)->code].name);
  abort();
}
static void grad_sqrt(sn_graph *g, int v, int dy, int dx[]) { /* dy / (2 y) */
  sn_op like = *OP(v);
  dx[0] = sn_emit(g, SN_OP_DIV, sn_emit(g, SN_OP_MUL, dy, sn_emit_const(g, 0.5), -1, &like), v, -1, &like);
}
static void grad_dropout(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = g->ops[v];
  op.in[0] = dy;
  char err[256];
  dx[0] = sn_graph_add(g, &op, err, sizeof err);
}
static void grad_abs(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  dx[0] = sn_emit(g, SN_OP_MUL, dy, sn_emit(g, SN_OP_SIGN, like.in[0], -1, -1, &like), -1, &like);
}
static void grad_huber(sn_graph *g, int v, int dy, int dx[]) {
  dx[0] = add_like(g, OP(v), SN_OP_HUBER_GRAD, OP(v)->in[0], dy, NULL);
}
static void grad_clamp(sn_graph *g, int v, int dy, int dx[]) {
  /* gradient flows where the value was not clamped: (x == clamp(x)) */
  sn_op like = *OP(v);
  int x = like.in[0];
  int inside = sn_emit(g, SN_OP_SUB, sn_emit_const(g, 1.0),
                       sn_emit(g, SN_OP_SIGN, sn_emit(g, SN_OP_ABS, sn_emit(g, SN_OP_SUB, x, v, -1, &like), -1, -1, &like), -1, -1, &like),
                       -1, &like);
  dx[0] = sn_emit(g, SN_OP_MUL, dy, inside, -1, &like);
}
static int emit_slice(sn_graph *g, int x, int64_t axis, int64_t off, int64_t width, const sn_op *like) {
  sn_op op = {.code = SN_OP_SLICE, .n_in = 1, .in = {x}, .type = g->ops[x].type, .loc = like->loc};
  memcpy(op.layer, like->layer, sizeof op.layer);
  op.a[0] = off;
  op.a[1] = axis;
  op.type.dim[axis] = width;
  return must_add(g, &op, "slice");
}
static void grad_split_heads(sn_graph *g, int v, int dy, int dx[]) {
  dx[0] = add_like(g, OP(v), SN_OP_MERGE_HEADS, dy, -1, NULL);
}
static void grad_concat(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  const sn_type *a = T(g, like.in[0]), *b = T(g, like.in[1]);
  int64_t axis = like.a[0], ca = a->dim[axis], cb = b->dim[axis];
  dx[0] = emit_slice(g, dy, axis, 0, ca, &like);
  dx[1] = emit_slice(g, dy, axis, ca, cb, &like);
}
static void grad_bce_logits(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  int z = like.in[0], t = like.in[1];
  dx[0] = sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_SUB, sn_emit(g, SN_OP_SIGMOID, z, -1, -1, &like), t, -1, &like), dy, -1, &like);
}
static void grad_softmax_cce(sn_graph *g, int v, int dy, int dx[]) {
  /* d/dz [lse(z) sum(t) - sum(t z)] = softmax(z) sum(t) - t */
  sn_op like = *OP(v);
  int z = like.in[0], t = like.in[1];
  int p = sn_emit(g, SN_OP_SOFTMAX, z, -1, -1, &like);
  int st = sn_emit(g, SN_OP_ROW_SUM, t, -1, -1, &like);
  int gz = sn_emit(g, SN_OP_SUB, sn_emit(g, SN_OP_MUL, p, st, -1, &like), t, -1, &like);
  dx[0] = sn_emit(g, SN_OP_MUL, gz, dy, -1, &like);
}
/* masked positions were constants: no gradient flows there */
static void grad_mask_causal(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  op.c = 0;
  dx[0] = add_like(g, &op, SN_OP_MASK_CAUSAL, dy, -1, NULL);
}
/* masked keys were constants: no gradient flows there, none into the mask */
static void grad_mask_keys(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  op.c = 0;
  dx[0] = add_like(g, &op, SN_OP_MASK_KEYS, dy, op.in[1], NULL);
}
static void grad_im2col(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  sn_type t = *T(g, op.in[0]);
  dx[0] = add_like(g, &op, SN_OP_COL2IM, dy, -1, &t);
}
/* conv: dw the sum over rows of x's taps times dy (conv_wgrad; conv_gemm's is
 * conv_gemm_wgrad); dx col2im (im2col's gradient) of the patches' gradient dy w^T,
 * a GEMM (live only where x needs a gradient); for conv_gemm the same a tile at a
 * time, conv_gemm_dgrad. dw first: conv_wgrad then fuses into the kernel that
 * makes dy, before the GEMM. */
static void grad_conv(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  sn_type t = *T(g, op.in[0]);
  bool gemm = op.code == SN_OP_CONV_GEMM;
  dx[1] = add_like(g, &op, gemm ? SN_OP_CONV_GEMM_WGRAD : SN_OP_CONV_WGRAD, dy, op.in[0], NULL);
  sn_op mm = {.code = SN_OP_MATMUL, .tb = 1, .loc = op.loc};
  memcpy(mm.layer, op.layer, sizeof mm.layer);
  int w = op.in[1];
  if (gemm) { /* conv_gemm_dgrad on w^T [F, K] (a small kernel) */
    sn_op tr = {.code = SN_OP_TRANSPOSE, .n_in = 1, .in = {w}, .a = {1, 0}, .loc = op.loc};
    memcpy(tr.layer, op.layer, sizeof tr.layer);
    dx[0] = add_like(g, &op, SN_OP_CONV_GEMM_DGRAD, dy, must_add(g, &tr, "transpose"), &t);
    return;
  }
  dx[0] = add_like(g, &op, SN_OP_COL2IM, add_like(g, &mm, SN_OP_MATMUL, dy, w, NULL), -1, &t);
}
static void grad_transpose(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v), inv = op;
  for (int k = 0; k < T(g, op.in[0])->rank; k++) inv.a[op.a[k]] = k;
  sn_type t = *T(g, op.in[0]);
  dx[0] = add_like(g, &inv, SN_OP_TRANSPOSE, dy, -1, &t);
}
static void grad_max_pool(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  sn_type t = *T(g, op.in[0]);
  bool apart = op.a[SN_WIN_SH] >= op.a[SN_WIN_KH] && op.a[SN_WIN_SW] >= op.a[SN_WIN_KW];
  dx[0] = add_like(g, &op, apart ? SN_OP_MAX_UNPOOL : SN_OP_MAX_POOL_GRAD, dy, op.in[0], &t);
}
static void grad_avg_pool(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  sn_type t = *T(g, op.in[0]);
  dx[0] = add_like(g, &op, SN_OP_AVG_POOL_GRAD, dy, -1, &t);
}
/* zeros of type t */
static int zeros(sn_graph *g, const sn_type *t, const sn_op *like) {
  return sn_emit_typed(g, SN_OP_BROADCAST, sn_emit_const(g, 0.0), t, like);
}
static int emit_concat(sn_graph *g, int a, int b, int64_t axis, const sn_op *like) {
  sn_op op = {.code = SN_OP_CONCAT, .n_in = 2, .in = {a, b}, .loc = like->loc};
  memcpy(op.layer, like->layer, sizeof op.layer);
  op.a[0] = axis;
  return must_add(g, &op, "concat");
}
/* dy in the slice's place, zeros before and after it */
static void grad_slice(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  sn_type t = *T(g, like.in[0]);
  int64_t axis = like.a[1], off = like.a[0], after = t.dim[axis] - off - like.type.dim[axis];
  int y = dy;
  if (off > 0) {
    t.dim[axis] = off;
    y = emit_concat(g, zeros(g, &t, &like), y, axis, &like);
  }
  if (after > 0) {
    t.dim[axis] = after;
    y = emit_concat(g, y, zeros(g, &t, &like), axis, &like);
  }
  dx[0] = y;
}
/* h_{t-1} of every step of a scan's output [N, T, width H]: its h (the first H),
 * one step later, zeros at step 0 */
static int scan_hprev(sn_graph *g, int out, int64_t H, const sn_op *like) {
  const sn_type *t = T(g, out);
  int64_t steps = t->dim[0];
  int h = emit_slice(g, out, 1, 0, H, like);
  sn_type z = {.dtype = t->dtype, .batched = true, .rank = 2, .dim = {1, H}};
  if (steps == 1) return zeros(g, &z, like);
  return emit_concat(g, zeros(g, &z, like), emit_slice(g, h, 0, 0, steps - 1, like), 0, like);
}
/* dW_hh = dgates^T h_{t-1}, one GEMM over all (n, t) */
static int scan_dwhh(sn_graph *g, int dgates, int hprev, const sn_op *like) {
  sn_op mm = {.code = SN_OP_MATMUL, .ta = 1, .loc = like->loc};
  memcpy(mm.layer, like->layer, sizeof mm.layer);
  return add_like(g, &mm, SN_OP_MATMUL, dgates, hprev, NULL);
}
/* The reverse scans read only the h part of dout (the gradient of the scan's
 * output). When dout is h's gradient followed by zeros (grad_slice of the layer's
 * h), they read h's gradient itself, rows H wide, and the concat is never built.
 * The grad op's a[0] is the width of dout's rows. */
static int scan_dout(sn_graph *g, int dy, int64_t H, int64_t *width) {
  const sn_op *c = OP(dy);
  *width = T(g, dy)->dim[1];
  if (c->code != SN_OP_CONCAT || c->a[0] != 1 || T(g, c->in[0])->dim[1] != H) return dy;
  const sn_op *z = OP(c->in[1]);
  if (z->code != SN_OP_BROADCAST || OP(z->in[0])->code != SN_OP_CONST || OP(z->in[0])->c != 0) return dy;
  *width = H;
  return c->in[0];
}
/* The reverse scan of v (lstm or gru): (dout, out, W_hh[, mask]) -> type t */
static int scan_grad(sn_graph *g, int v, sn_opcode code, int dy, int64_t H, const sn_type *t) {
  const sn_op *fw = OP(v);
  int n_data = sn_opdefs[fw->code].n_in;
  sn_op op = *fw;
  op.code = code;
  op.n_in = 3;
  op.in[1] = v;
  op.in[2] = fw->in[1];
  if (fw->n_in > n_data) op.in[op.n_in++] = fw->in[n_data];
  op.in[0] = scan_dout(g, dy, H, &op.a[0]);
  op.type = *t;
  char err[256];
  int r = sn_graph_add(g, &op, err, sizeof err);
  if (r < 0) {
    fprintf(stderr, "specnet: internal error in %s: %s\n", sn_opdefs[code].name, err);
    abort();
  }
  return r;
}
/* lstm: dxw from the reverse scan; dW_hh = dxw^T h_{t-1} over all (n, t); the
 * mask has no gradient */
static void grad_lstm(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  int64_t H = T(g, like.in[1])->dim[1];
  int dxw = scan_grad(g, v, SN_OP_LSTM_GRAD, dy, H, T(g, like.in[0]));
  dx[0] = dxw;
  dx[1] = scan_dwhh(g, dxw, scan_hprev(g, v, H, &like), &like);
}
/* gru: the reverse scan gives the gradients of xw and of W_hh h + b_hh (hh); dW_hh
 * = dhh^T h_{t-1}, db_hh = the sum of dhh */
static void grad_gru(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  int64_t H = T(g, like.in[1])->dim[1];
  sn_type t = *T(g, like.in[0]);
  t.dim[1] = 6 * H;
  int both = scan_grad(g, v, SN_OP_GRU_GRAD, dy, H, &t);
  dx[0] = emit_slice(g, both, 1, 0, 3 * H, &like);
  int dhh = emit_slice(g, both, 1, 3 * H, 3 * H, &like);
  dx[1] = scan_dwhh(g, dhh, scan_hprev(g, v, H, &like), &like);
  dx[2] = sn_unbroadcast(g, dhh, T(g, like.in[2]), &like);
}
static void grad_embed(sn_graph *g, int v, int dy, int dx[]) {
  sn_op op = *OP(v);
  sn_type t = *T(g, op.in[0]);
  dx[0] = add_like(g, &op, SN_OP_SCATTER_ROWS, dy, op.in[1], &t);
}

static void grad_reshape(sn_graph *g, int v, int dy, int dx[]) {
  sn_type t = *T(g, OP(v)->in[0]);
  dx[0] = sn_emit_typed(g, SN_OP_RESHAPE, dy, &t, OP(v));
}

static void grad_unbroadcast(sn_graph *g, int v, int dy, int dx[]) {
  sn_type t = *T(g, OP(v)->in[0]);
  sn_op like = *OP(v);
  dx[0] = sn_unbroadcast(g, dy, &t, &like);
}

/* row_sum, colsum, sum_all: the gradient spreads back over what was summed. */
static void grad_spread(sn_graph *g, int v, int dy, int dx[]) {
  sn_type t = *T(g, OP(v)->in[0]);
  dx[0] = sn_emit_typed(g, SN_OP_BROADCAST, dy, &t, OP(v));
}

static void grad_softmax(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  /* dx = y * (dy - sum_c(dy * y)) */
  int s = sn_emit(g, SN_OP_ROW_SUM, sn_emit(g, SN_OP_MUL, dy, v, -1, &like), -1, -1, &like);
  dx[0] = sn_emit(g, SN_OP_MUL, v, sn_emit(g, SN_OP_SUB, dy, s, -1, &like), -1, &like);
}

static void grad_xent(sn_graph *g, int v, int dy, int dx[]) {
  sn_op like = *OP(v);
  dx[0] = sn_emit(g, SN_OP_SOFTMAX_XENT_GRAD, like.in[0], like.in[1], dy, &like);
}

/* ---------------------------------------------------------------------------
 * Expansions: softmax and cross-entropy as stable primitive chains. The shared
 * pieces (row max, exp, row sum) are one value each thanks to hash-consing, so the
 * loss and its gradient share them when fused. */

static int softmax_parts(sn_graph *g, const sn_op *op, int z, int *s) {
  int m = sn_emit(g, SN_OP_ROW_MAX, z, -1, -1, op);
  int e = sn_emit(g, SN_OP_EXP, sn_emit(g, SN_OP_SUB, z, m, -1, op), -1, -1, op);
  *s = sn_emit(g, SN_OP_ROW_SUM, e, -1, -1, op);
  return e;
}

static int expand_softmax(sn_graph *g, const sn_op *op) {
  int s, e = softmax_parts(g, op, op->in[0], &s);
  return sn_emit(g, SN_OP_DIV, e, s, -1, op);
}

/* loss = log(sum_c exp(z_c - m)) + m - z_y */
static int expand_xent(sn_graph *g, const sn_op *op) {
  int z = op->in[0], y = op->in[1], s;
  softmax_parts(g, op, z, &s);
  int m = sn_emit(g, SN_OP_ROW_MAX, z, -1, -1, op);
  int lse = sn_emit(g, SN_OP_ADD, sn_emit(g, SN_OP_LOG, s, -1, -1, op), m, -1, op);
  return sn_emit(g, SN_OP_SUB, lse, sn_emit(g, SN_OP_PICK, z, y, -1, op), -1, op);
}

/* dz = (softmax(z) - onehot(y)) * dl */
static int expand_xent_grad(sn_graph *g, const sn_op *op) {
  int z = op->in[0], y = op->in[1], dl = op->in[2], s;
  int e = softmax_parts(g, op, z, &s);
  int p = sn_emit(g, SN_OP_DIV, e, s, -1, op);
  sn_type zt = *T(g, z);
  int oh = sn_emit_typed(g, SN_OP_ONEHOT, y, &zt, op);
  return sn_emit(g, SN_OP_MUL, sn_emit(g, SN_OP_SUB, p, oh, -1, op), dl, -1, op);
}

/* -sum_c t_c log softmax(z)_c = lse(z) sum(t) - sum(t z) */
static int expand_softmax_cce(sn_graph *g, const sn_op *op) {
  int z = op->in[0], t = op->in[1], s;
  softmax_parts(g, op, z, &s);
  int m = sn_emit(g, SN_OP_ROW_MAX, z, -1, -1, op);
  int lse = sn_emit(g, SN_OP_ADD, sn_emit(g, SN_OP_LOG, s, -1, -1, op), m, -1, op);
  int st = sn_emit(g, SN_OP_ROW_SUM, t, -1, -1, op);
  int tz = sn_emit(g, SN_OP_ROW_SUM, sn_emit(g, SN_OP_MUL, t, z, -1, op), -1, -1, op);
  return sn_emit(g, SN_OP_SUB, sn_emit(g, SN_OP_MUL, lse, st, -1, op), tz, -1, op);
}

/* max(z, 0) - z t + log(1 + exp(-|z|)): no overflow for any z */
static int expand_bce_logits(sn_graph *g, const sn_op *op) {
  int z = op->in[0], t = op->in[1];
  int e = sn_emit(g, SN_OP_EXP, sn_emit(g, SN_OP_NEG, sn_emit(g, SN_OP_ABS, z, -1, -1, op), -1, -1, op), -1, -1, op);
  int sp = sn_emit(g, SN_OP_LOG, sn_emit(g, SN_OP_ADD, sn_emit_const(g, 1.0), e, -1, op), -1, -1, op);
  int lin = sn_emit(g, SN_OP_SUB, sn_emit(g, SN_OP_RELU, z, -1, -1, op), sn_emit(g, SN_OP_MUL, z, t, -1, op), -1, op);
  return sn_emit(g, SN_OP_ADD, lin, sp, -1, op);
}

/* ---------------------------------------------------------------------------
 * The table */

const sn_opdef sn_opdefs[SN_OP_COUNT] = {
#define OPDEF(id, name, cls, n_in, infer, grad, expand, gathers) \
  [SN_OP_##id] = {name, SN_CLS_##cls, n_in, infer, grad, expand, gathers},
#include "ops.def"
#undef OPDEF
};
