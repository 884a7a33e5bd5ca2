/* Graph storage for the IR: adding ops (with hash-consing, so identical ops are
 * one value), parameters, and the readable text form printed by `emit --what ir`.
 * The op semantics (shape and gradient rules) live in ops.c, not here. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "specnet: out of memory\n");
    abort();
  }
  return q;
}

void sn_graph_init(sn_graph *g, sn_dtype dtype) {
  memset(g, 0, sizeof *g);
  g->dtype = dtype;
  g->input = g->label = g->target = g->logits = g->output = -1;
  g->loss_sum = g->objective = -1;
  g->oversized = -1;
  g->hash_cap = 1024;
  g->hash = xrealloc(NULL, sizeof(int) * (size_t)g->hash_cap);
  for (int i = 0; i < g->hash_cap; i++) g->hash[i] = -1;
}

void sn_graph_free(sn_graph *g) {
  void *owned[] = {g->ops, g->hash, g->params, g->param_op, g->param_grad, g->layer_out};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
  memset(g, 0, sizeof *g);
}

/* ---------------------------------------------------------------------------
 * Hash-consing: the key is everything but the annotations (loc, layer). */

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t op_hash(const sn_op *op) {
  uint64_t h = (uint64_t)op->code;
  for (int i = 0; i < op->n_in; i++) h = mix(h, (uint64_t)op->in[i]);
  h = mix(h, (uint64_t)op->ta * 2 + (uint64_t)op->tb);
  uint64_t cb;
  memcpy(&cb, &op->c, sizeof cb);
  h = mix(h, cb);
  h = mix(h, (uint64_t)op->param);
  memcpy(&cb, &op->c2, sizeof cb);
  h = mix(h, cb);
  for (size_t i = 0; i < sizeof op->a / sizeof *op->a; i++) h = mix(h, (uint64_t)op->a[i]);
  h = mix(h, (uint64_t)op->type.dtype * 2 + op->type.batched);
  for (int i = 0; i < op->type.rank; i++) h = mix(h, (uint64_t)op->type.dim[i]);
  return h;
}

bool sn_type_eq(const sn_type *a, const sn_type *b) {
  if (a->dtype != b->dtype || a->batched != b->batched || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

static bool op_same(const sn_op *a, const sn_op *b) {
  if (a->code != b->code || a->n_in != b->n_in || a->ta != b->ta || a->tb != b->tb ||
      a->param != b->param || memcmp(&a->c, &b->c, sizeof a->c) != 0 ||
      memcmp(&a->c2, &b->c2, sizeof a->c2) != 0 || memcmp(a->a, b->a, sizeof a->a) != 0)
    return false;
  for (int i = 0; i < a->n_in; i++)
    if (a->in[i] != b->in[i]) return false;
  return sn_type_eq(&a->type, &b->type);
}

static void hash_insert(sn_graph *g, int v) {
  uint64_t h = op_hash(&g->ops[v]);
  int mask = g->hash_cap - 1;
  int i = (int)(h & (uint64_t)mask);
  while (g->hash[i] >= 0) i = (i + 1) & mask;
  g->hash[i] = v;
}

static void hash_grow(sn_graph *g) {
  g->hash_cap *= 2;
  g->hash = xrealloc(g->hash, sizeof(int) * (size_t)g->hash_cap);
  for (int i = 0; i < g->hash_cap; i++) g->hash[i] = -1;
  for (int v = 0; v < g->n; v++) hash_insert(g, v);
}

/* The product of n dims into *count; false past SN_MAX_ELEMS (no overflow on the way). */
static bool elems_fit(int n, const int64_t *dim, int64_t *count) {
  int64_t c = 1;
  for (int i = 0; i < n; i++)
    if (dim[i] < 0 || __builtin_mul_overflow(c, dim[i], &c) || c > SN_MAX_ELEMS) return false;
  *count = c;
  return true;
}

int sn_graph_add(sn_graph *g, const sn_op *op_in, char *err, size_t errlen) {
  sn_op op = *op_in;
  const sn_opdef *def = &sn_opdefs[op.code];
  for (int i = 0; i < op.n_in; i++)
    if (op.in[i] < 0 || op.in[i] >= g->n) {
      snprintf(err, errlen, "internal: %s input %d is not a value", def->name, i);
      return -1;
    }
  if (def->infer && def->infer(g, &op, err, errlen)) return -1;
  if (op.code != SN_OP_INPUT && op.code != SN_OP_LABEL) {
    uint64_t h = op_hash(&op);
    int mask = g->hash_cap - 1;
    for (int i = (int)(h & (uint64_t)mask); g->hash[i] >= 0; i = (i + 1) & mask)
      if (op_same(&g->ops[g->hash[i]], &op)) return g->hash[i];
  }
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 256;
    g->ops = xrealloc(g->ops, sizeof(sn_op) * (size_t)g->cap);
  }
  int v = g->n++;
  int64_t count;
  if (g->oversized < 0 && !elems_fit(op.type.rank, op.type.dim, &count)) g->oversized = v;
  g->ops[v] = op;
  if (2 * g->n > g->hash_cap) hash_grow(g);
  else hash_insert(g, v);
  return v;
}

static int add_or_die(sn_graph *g, sn_op *op, const sn_op *like) {
  if (like) {
    op->loc = like->loc;
    memcpy(op->layer, like->layer, sizeof op->layer);
  }
  char err[256];
  int v = sn_graph_add(g, op, err, sizeof err);
  if (v < 0) {
    /* Passes after build_graph only combine values whose shapes were checked;
     * a failure here is a bug in a gradient or expansion rule. */
    fprintf(stderr, "specnet: internal error in %s: %s\n", sn_opdefs[op->code].name, err);
    abort();
  }
  return v;
}

static bool is_const(const sn_graph *g, int v, double c) {
  return v >= 0 && g->ops[v].code == SN_OP_CONST && g->ops[v].c == c;
}

int sn_emit(sn_graph *g, sn_opcode code, int a, int b, int c, const sn_op *like) {
  /* x * 1 is x: keeps the seed of autodiff out of the gradient graph. */
  if (code == SN_OP_MUL && is_const(g, a, 1.0)) return b;
  if (code == SN_OP_MUL && is_const(g, b, 1.0)) return a;
  sn_op op = {.code = code, .n_in = sn_opdefs[code].n_in, .in = {a, b, c}};
  op.type.dtype = g->dtype;
  return add_or_die(g, &op, like);
}

int sn_emit_typed(sn_graph *g, sn_opcode code, int a, const sn_type *t, const sn_op *like) {
  sn_op op = {.code = code, .n_in = sn_opdefs[code].n_in, .in = {a}, .type = *t};
  return add_or_die(g, &op, like);
}

int sn_emit_const(sn_graph *g, double v) {
  sn_op op = {.code = SN_OP_CONST, .c = v};
  op.type.dtype = g->dtype;
  return add_or_die(g, &op, NULL);
}

static int param_add(sn_graph *g, const char *name, int rank, const int64_t *shape,
                     sn_init_kind init, double init_arg, int64_t fan_in, int64_t fan_out,
                     const sn_op *like, int buffer) {
  int k = g->n_params++;
  g->params = xrealloc(g->params, sizeof(sn_param_info) * (size_t)g->n_params);
  g->param_op = xrealloc(g->param_op, sizeof(int) * (size_t)g->n_params);
  g->param_grad = xrealloc(g->param_grad, sizeof(int) * (size_t)g->n_params);
  sn_param_info *p = &g->params[k];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->rank = rank;
  for (int i = 0; i < rank; i++) p->shape[i] = shape[i];
  if (!elems_fit(rank, shape, &p->count)) p->count = 0; /* the op is oversized: the graph is refused */
  /* Each parameter starts on a 64-byte boundary (16 floats) for aligned loads. */
  int64_t *top = buffer ? &g->state_count : &g->param_count;
  p->offset = (*top + 15) / 16 * 16;
  *top = p->offset + p->count;
  p->buffer = buffer;
  p->init = init;
  p->init_arg = init_arg;
  p->fan_in = fan_in;
  p->fan_out = fan_out;
  sn_op op = {.code = SN_OP_PARAM, .param = k};
  op.type.dtype = g->dtype;
  op.type.rank = rank;
  for (int i = 0; i < rank; i++) op.type.dim[i] = shape[i];
  g->param_op[k] = add_or_die(g, &op, like);
  g->param_grad[k] = -1;
  return g->param_op[k];
}

int sn_param_add(sn_graph *g, const char *name, int rank, const int64_t *shape,
                 sn_init_kind init, double init_arg, int64_t fan_in, int64_t fan_out,
                 const sn_op *like) {
  return param_add(g, name, rank, shape, init, init_arg, fan_in, fan_out, like, 0);
}

int sn_state_add(sn_graph *g, const char *name, int64_t count, sn_init_kind init, const sn_op *like) {
  return param_add(g, name, 1, &count, init, 0, 1, 1, like, 1);
}

int64_t sn_type_elems(const sn_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

/* ---------------------------------------------------------------------------
 * Printing */

static const char *dtype_name(sn_dtype d) {
  return d == SN_F32 ? "f32" : d == SN_F64 ? "f64" : "i32";
}

void sn_type_print(const sn_type *t, FILE *out) {
  fprintf(out, "%s[", dtype_name(t->dtype));
  const char *sep = "";
  if (t->batched) {
    fputs("N", out);
    sep = ",";
  }
  for (int i = 0; i < t->rank; i++) {
    fprintf(out, "%s%" PRId64, sep, t->dim[i]);
    sep = ",";
  }
  fputs("]", out);
}

void sn_value_name(const sn_graph *g, int v, char *buf, size_t len) {
  const sn_op *op = &g->ops[v];
  if (op->code == SN_OP_PARAM) snprintf(buf, len, "%%%s", g->params[op->param].name);
  else if (v == g->input) snprintf(buf, len, "%%x");
  else if (v == g->label) snprintf(buf, len, "%%y");
  else if (v == g->target) snprintf(buf, len, "%%t");
  else snprintf(buf, len, "%%%d", v);
}

static void mark(const sn_graph *g, int v, char *live) {
  if (v < 0 || live[v]) return;
  live[v] = 1;
  for (int i = 0; i < g->ops[v].n_in; i++) mark(g, g->ops[v].in[i], live);
}

void sn_graph_print(const sn_graph *g, FILE *out, bool with_backward) {
  char *live = calloc((size_t)g->n + 1, 1);
  if (!live) return;
  mark(g, g->output, live);
  mark(g, g->loss_sum, live);
  mark(g, g->objective, live);
  for (int k = 0; k < g->n_metrics; k++) mark(g, g->metric_sum[k], live);
  if (with_backward)
    for (int k = 0; k < g->n_params; k++) mark(g, g->param_grad[k], live);
  for (int k = 0; k < g->n_params; k++) mark(g, g->param_op[k], live);
  char name[160], arg[160];
  for (int v = 0; v < g->n; v++) {
    if (!live[v]) continue;
    const sn_op *op = &g->ops[v];
    sn_value_name(g, v, name, sizeof name);
    char line[1024];
    int n = 0;
    switch (op->code) {
    case SN_OP_PARAM: {
      n = snprintf(line, sizeof line, "param %s = %s", name, sn_init_name(g->params[op->param].init));
      break;
    }
    case SN_OP_INPUT: n = snprintf(line, sizeof line, "input %s", name); break;
    case SN_OP_LABEL: n = snprintf(line, sizeof line, "label %s", name); break;
    case SN_OP_TARGET: n = snprintf(line, sizeof line, "target %s", name); break;
    case SN_OP_CONST: n = snprintf(line, sizeof line, "%s = const %.9g", name, op->c); break;
    default: {
      n = snprintf(line, sizeof line, "%s = %s", name, sn_opdefs[op->code].name);
      for (int i = 0; i < op->n_in && n < (int)sizeof line; i++) {
        sn_value_name(g, op->in[i], arg, sizeof arg);
        bool t = sn_opdefs[op->code].cls == SN_CLS_GEMM && ((i == 0 && op->ta) || (i == 1 && op->tb));
        n += snprintf(line + n, sizeof line - (size_t)n, "%s %s%s", i ? "," : "", arg,
                      t ? "^T" : "");
      }
    }
    }
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    FILE *lf = fmemopen(line + n, sizeof line - (size_t)n, "w");
    if (lf) {
      fputs(" : ", lf);
      sn_type_print(&op->type, lf);
      n += (int)ftell(lf);
      fclose(lf);
    }
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    line[n] = 0;
    fputs(line, out);
    if (op->layer[0] || op->loc.line)
      fprintf(out, "%*s; %s %d:%d", n < 56 ? 56 - n : 1, "", op->layer, op->loc.line, op->loc.col);
    fputc('\n', out);
  }
  for (int k = 0; k < g->n_params && with_backward; k++) {
    if (g->param_grad[k] < 0) continue;
    sn_value_name(g, g->param_grad[k], arg, sizeof arg);
    fprintf(out, "grad %%%s = %s\n", g->params[k].name, arg);
  }
  free(live);
}
