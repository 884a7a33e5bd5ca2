/* Fusion and the static memory plan. For each step function (grad, eval, predict):
 *   1. live values: what the step's outputs need;
 *   2. kernels: every GEMM is its own kernel; every maximal run of elementwise,
 *      row-reduction and accumulation ops over the same rows between GEMMs becomes
 *      one fused kernel (a loop over rows with column loops inside);
 *   3. materialization: a fused value is written to memory only if another kernel
 *      reads it or it is an output of the step; everything else stays in registers
 *      (and is recomputed where two column loops need it);
 *   4. memory: arena offsets by liveness over the kernel order, first fit.
 * Nothing here knows about LLVM. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) abort();
  return p;
}

const char *sn_step_name(sn_step_kind k) {
  static const char *names[] = {"grad_step", "eval_step", "predict"};
  return names[k];
}

int sn_plan_base(const sn_graph *g, int v) {
  while (sn_opdefs[g->ops[v].code].cls == SN_CLS_VIEW) v = g->ops[v].in[0];
  return v;
}

static bool fusible(const sn_graph *g, int v) {
  sn_opclass c = sn_opdefs[g->ops[v].code].cls;
  return c == SN_CLS_ELEM || c == SN_CLS_ROWRED || c == SN_CLS_ACCUM;
}

static bool is_scalar(const sn_type *t) { return !t->batched && t->rank == 0; }

/* A scalar computed from constants only: generated inline wherever used. */
static bool is_free(const sn_graph *g, int v, const char *free_) {
  const sn_op *op = &g->ops[v];
  if (op->code == SN_OP_CONST || op->code == SN_OP_INV_ROWS) return true;
  if (sn_opdefs[op->code].cls != SN_CLS_ELEM || !is_scalar(&op->type)) return false;
  for (int i = 0; i < op->n_in; i++)
    if (!free_[op->in[i]]) return false;
  return true;
}

/* Whether op reads its input i at other positions than its own: a gathering op
 * reads all of them so, mask_keys its mask (at the sample and column), conv_wgrad
 * the convolution's input (at the window's taps). */
static bool reads_elsewhere(const sn_op *op, int i) {
  return sn_opdefs[op->code].gathers ||
         ((op->code == SN_OP_MASK_KEYS || op->code == SN_OP_CONV_WGRAD) && i == 1);
}

/* The rows a fused op iterates over: (batched, rows_mult). */
static void op_domain(const sn_graph *g, int v, bool *batched, int64_t *mult) {
  const sn_op *op = &g->ops[v];
  const sn_type *t = &op->type;
  sn_opclass c = sn_opdefs[op->code].cls;
  if (c == SN_CLS_ROWRED || c == SN_CLS_ACCUM) t = &g->ops[op->in[0]].type;
  *batched = t->batched;
  int64_t m = 1;
  /* element-level values iterate rows over all but the last dim; row-level ones
   * (one value per row: the reductions' outputs, [N] values) over all dims */
  bool row_level = (c == SN_CLS_ROWRED) ? false : (c == SN_CLS_ACCUM && op->code == SN_OP_SUM_ALL);
  if (c == SN_CLS_ELEM && t->batched && t->rank == 0) row_level = true;
  int n = row_level ? t->rank : t->rank - 1;
  for (int i = 0; i < n; i++) m *= t->dim[i];
  *mult = m;
}

static void mark(const sn_graph *g, int v, char *live) {
  if (v < 0 || live[v]) return;
  live[v] = 1;
  for (int i = 0; i < g->ops[v].n_in; i++) mark(g, g->ops[v].in[i], live);
}

typedef struct kbuild {
  sn_kernel *k;
  int n, cap;
} kbuild;

static sn_kernel *new_kernel(kbuild *kb, sn_kernel_kind kind) {
  if (kb->n == kb->cap) {
    kb->cap = kb->cap ? 2 * kb->cap : 16;
    kb->k = realloc(kb->k, sizeof(sn_kernel) * (size_t)kb->cap);
    if (!kb->k) abort();
  }
  sn_kernel *k = &kb->k[kb->n++];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  return k;
}

static void push(int **a, int *n, int v) {
  *a = realloc(*a, sizeof(int) * (size_t)(*n + 1));
  if (!*a) abort();
  (*a)[(*n)++] = v;
}

/* ---------------------------------------------------------------------------
 * Memory: first fit over [offset, offset+size) blocks, by kernel order. */

typedef struct block {
  int64_t off, size;
  int value;
} block;

static int64_t value_bytes(const sn_graph *g, int v) {
  const sn_type *t = &g->ops[v].type;
  int64_t es = (t->dtype == SN_F64) ? 8 : 4;
  int64_t n = sn_type_elems(t) * (t->batched ? g->batch_capacity : 1) * es;
  return (n + 63) / 64 * 64;
}

static int64_t first_fit(block *b, int nb, int64_t size) {
  int64_t at = 0;
  for (int i = 0; i < nb; i++) { /* b sorted by offset */
    if (b[i].off - at >= size) return at;
    if (b[i].off + b[i].size > at) at = b[i].off + b[i].size;
  }
  return at;
}

static void plan_memory(const sn_graph *g, sn_step *st, const char *live) {
  int n = g->n;
  int *last = xcalloc((size_t)n, sizeof(int));
  for (int v = 0; v < n; v++) last[v] = -1;
  /* last use of each buffer: users of views count for the base */
  for (int u = 0; u < n; u++) {
    if (!live[u] || st->kernel_of[u] < 0) continue;
    for (int i = 0; i < g->ops[u].n_in; i++) {
      int b = sn_plan_base(g, g->ops[u].in[i]);
      if (st->kernel_of[u] > last[b]) last[b] = st->kernel_of[u];
    }
  }
  block *blocks = xcalloc((size_t)n, sizeof(block));
  int nb = 0;
  int64_t top = 0;
  for (int k = 0; k < st->n_kernels; k++) {
    for (int v = 0; v < n; v++) {
      if (!live[v] || st->kernel_of[v] != k || st->buf[v].kind != SN_BUF_ARENA) continue;
      int64_t size = value_bytes(g, v), off = first_fit(blocks, nb, size);
      int at = 0;
      while (at < nb && blocks[at].off < off) at++;
      memmove(&blocks[at + 1], &blocks[at], sizeof(block) * (size_t)(nb - at));
      blocks[at] = (block){off, size, v};
      nb++;
      st->buf[v].offset = off;
      if (off + size > top) top = off + size;
    }
    for (int i = 0; i < nb;) { /* free what is dead after kernel k */
      if (last[blocks[i].value] <= k) {
        memmove(&blocks[i], &blocks[i + 1], sizeof(block) * (size_t)(nb - i - 1));
        nb--;
      } else i++;
    }
  }
  st->arena_bytes = top;
  free(blocks);
  free(last);
}

/* ---------------------------------------------------------------------------
 * Kernels with column sums, in parts (plan.h: sn_kernel.parts) */

enum { SN_PARTS = 8, PARTS_MIN_ELEMS = 1 << 17 };

static void plan_parts(const sn_graph *g, sn_step *st) {
  int64_t es = g->dtype == SN_F64 ? 8 : 4, need = 0, at = (st->arena_bytes + 63) / 64 * 64;
  for (int k = 0; k < st->n_kernels; k++) {
    sn_kernel *kk = &st->k[k];
    if (kk->kind == SN_K_GEMM && g->ops[kk->gemm].code == SN_OP_CONV_GEMM_WGRAD) {
      /* its rows in SN_PARTS parts, each summing into a slice (runtime/conv_gemm.c) */
      int64_t cols = sn_type_elems(&g->ops[kk->gemm].type);
      kk->parts = SN_PARTS;
      kk->scratch = at;
      if (SN_PARTS * cols * es > need) need = SN_PARTS * cols * es;
      continue;
    }
    if (kk->kind != SN_K_FUSED || !kk->batched) continue;
    int64_t cols = 0, width = 0;
    bool ok = true;
    for (int i = 0; i < kk->n_roots; i++) {
      const sn_op *op = &g->ops[kk->roots[i]];
      bool sums = op->code == SN_OP_COLSUM || op->code == SN_OP_CONV_WGRAD;
      const sn_type *t = sums ? &g->ops[op->in[0]].type : &op->type;
      if (sums)
        cols += sn_type_elems(&op->type);
      else if (sn_opdefs[op->code].cls == SN_CLS_ACCUM) ok = false;
      width += t->rank ? t->dim[t->rank - 1] : 1;
    }
    if (!ok || !cols || kk->rows_mult * width * g->batch_capacity < PARTS_MIN_ELEMS) continue;
    kk->parts = SN_PARTS;
    kk->scratch = at;
    if (SN_PARTS * cols * es > need) need = SN_PARTS * cols * es;
  }
  if (need) st->arena_bytes = at + (need + 63) / 64 * 64;
}

/* ---------------------------------------------------------------------------
 * One step function */

/* Step 1 of plan_step: the values the step's outputs need (live). */
static void plan_live(const sn_graph *g, sn_step_kind kind, char *live) {
  if (kind == SN_STEP_PREDICT) {
    mark(g, g->output, live);
  } else {
    mark(g, g->loss_sum, live);
    for (int k = 0; k < g->n_metrics; k++) mark(g, g->metric_sum[k], live);
    if (kind == SN_STEP_GRAD) {
      for (int k = 0; k < g->n_params; k++) mark(g, g->param_grad[k], live);
      for (int k = 0; k < g->n_state_updates; k++) mark(g, g->state_update[k], live);
    }
  }
}

/* Step 2 of plan_step: the live values grouped into kernels, in schedule (= value)
 * order: a GEMM alone, the rest fused while they share a row domain; free_ marks
 * the values that need no kernel. */
static void plan_kernels(const sn_graph *g, sn_step *st, const char *live, char *free_) {
  int n = g->n;
  kbuild kb = {0};
  int open = -1;
  for (int v = 0; v < n; v++) {
    if (!live[v]) continue;
    const sn_op *op = &g->ops[v];
    sn_opclass cls = sn_opdefs[op->code].cls;
    free_[v] = is_free(g, v, free_);
    if (cls == SN_CLS_SOURCE || cls == SN_CLS_VIEW || free_[v]) continue;
    if (cls == SN_CLS_GEMM) {
      for (int i = 0; i < op->n_in && open >= 0; i++)
        if (st->kernel_of[sn_plan_base(g, op->in[i])] == open) open = -1;
      sn_kernel *k = new_kernel(&kb, SN_K_GEMM);
      k->gemm = v;
      st->kernel_of[v] = kb.n - 1;
      if (open >= 0) {
        /* The open kernel (always the last before this GEMM) runs after the GEMM,
         * which does not need it: members added later may read the GEMM. */
        sn_kernel t = kb.k[open];
        kb.k[open] = kb.k[kb.n - 1];
        kb.k[kb.n - 1] = t;
        st->kernel_of[v] = open;
        open = kb.n - 1;
        for (int i = 0; i < kb.k[open].n_ops; i++) st->kernel_of[kb.k[open].ops[i]] = open;
      }
      continue;
    }
    bool batched;
    int64_t mult;
    op_domain(g, v, &batched, &mult);
    if (open >= 0) {
      sn_kernel *k = &kb.k[open];
      if (k->batched != batched || k->rows_mult != mult) open = -1;
      /* results of accumulations exist only after the row loop, and a view reads
       * memory that this kernel would write only at the end of its row */
      for (int i = 0; i < op->n_in && open >= 0; i++) {
        int in = op->in[i], b = sn_plan_base(g, in);
        if (st->kernel_of[in] == open && sn_opdefs[g->ops[in].code].cls == SN_CLS_ACCUM) open = -1;
        if ((b != in || reads_elsewhere(op, i)) && st->kernel_of[b] == open) open = -1;
      }
    }
    if (open < 0) {
      sn_kernel *k = new_kernel(&kb, SN_K_FUSED);
      k->batched = batched;
      k->rows_mult = mult;
      open = kb.n - 1;
    }
    sn_kernel *k = &kb.k[open];
    push(&k->ops, &k->n_ops, v);
    st->kernel_of[v] = open;
  }
  st->k = kb.k;
  st->n_kernels = kb.n;
}

/* Step 3 of plan_step: which values are materialized and in which buffer (the
 * arena, or the step's inputs and outputs), and each kernel's roots. */
static void plan_buffers(const sn_graph *g, sn_step_kind kind, sn_step *st, const char *live,
                         const char *free_) {
  int n = g->n;
  for (int v = 0; v < n; v++) {
    if (!live[v]) continue;
    const sn_op *op = &g->ops[v];
    sn_opclass cls = sn_opdefs[op->code].cls;
    if (op->code == SN_OP_PARAM)
      st->buf[v] = (sn_buf){g->params[op->param].buffer ? SN_BUF_STATE : SN_BUF_PARAMS,
                            g->params[op->param].offset};
    if (op->code == SN_OP_INPUT) st->buf[v] = (sn_buf){SN_BUF_INPUT, 0};
    if (op->code == SN_OP_LABEL) st->buf[v] = (sn_buf){SN_BUF_LABEL, 0};
    if (op->code == SN_OP_TARGET) st->buf[v] = (sn_buf){SN_BUF_TARGET, 0};
    if (cls == SN_CLS_GEMM || cls == SN_CLS_ACCUM) st->buf[v].kind = SN_BUF_ARENA;
    for (int i = 0; i < op->n_in; i++) {
      int in = op->in[i], b = sn_plan_base(g, in);
      if (free_[in] || !fusible(g, b)) continue;
      /* read by another kernel, through a view, or at other positions (gathers) */
      if (st->kernel_of[b] != st->kernel_of[v] || b != in || reads_elsewhere(op, i))
        st->buf[b].kind = SN_BUF_ARENA;
    }
  }
  if (kind == SN_STEP_PREDICT) {
    st->buf[sn_plan_base(g, g->output)] = (sn_buf){SN_BUF_OUT, 0};
  } else {
    st->buf[g->loss_sum] = (sn_buf){SN_BUF_LOSS, 0};
    for (int k = 0; k < g->n_metrics; k++) st->buf[g->metric_sum[k]] = (sn_buf){SN_BUF_METRIC, k};
    if (kind == SN_STEP_GRAD) {
      for (int k = 0; k < g->n_params; k++)
        if (g->param_grad[k] >= 0)
          /* a gradient reshaped back to its parameter's shape: the base is laid out
           * the same, so it is written into the gradient buffer directly */
          st->buf[sn_plan_base(g, g->param_grad[k])] = (sn_buf){SN_BUF_GRADS, g->params[k].offset};
      for (int k = 0; k < g->n_state_updates; k++)
        st->buf[g->state_update[k]] = (sn_buf){SN_BUF_STATE, g->params[g->state_param[k]].offset};
    }
  }
  for (int k = 0; k < st->n_kernels; k++) {
    sn_kernel *kk = &st->k[k];
    for (int i = 0; i < kk->n_ops; i++)
      if (st->buf[kk->ops[i]].kind != SN_BUF_NONE) push(&kk->roots, &kk->n_roots, kk->ops[i]);
  }
}

static void plan_step(const sn_graph *g, sn_step_kind kind, sn_step *st) {
  int n = g->n;
  st->g = g;
  char *live = xcalloc((size_t)n, 1);
  char *free_ = xcalloc((size_t)n, 1);
  st->kernel_of = xcalloc((size_t)n, sizeof(int));
  st->buf = xcalloc((size_t)n, sizeof(sn_buf));
  for (int v = 0; v < n; v++) st->kernel_of[v] = -1;

  plan_live(g, kind, live);
  plan_kernels(g, st, live, free_);
  plan_buffers(g, kind, st, live, free_);
  plan_memory(g, st, live);
  plan_parts(g, st);
  free(live);
  free(free_);
}

void sn_plan_build(const sn_graph *train, const sn_graph *infer, sn_plan *p) {
  memset(p, 0, sizeof *p);
  p->g = train;
  for (int s = 0; s < SN_STEP_COUNT; s++) {
    plan_step(s == SN_STEP_GRAD ? train : infer, (sn_step_kind)s, &p->steps[s]);
    if (p->steps[s].arena_bytes > p->arena_bytes) p->arena_bytes = p->steps[s].arena_bytes;
  }
}

void sn_plan_free(sn_plan *p) {
  for (int s = 0; s < SN_STEP_COUNT; s++) {
    sn_step *st = &p->steps[s];
    for (int k = 0; k < st->n_kernels; k++) {
      free(st->k[k].ops);
      free(st->k[k].roots);
    }
    free(st->k);
    free(st->kernel_of);
    free(st->buf);
  }
  memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------------------
 * Printing, for `emit --what plan` and the structural tests. */

static void buf_print(const sn_buf *b, FILE *out) {
  switch (b->kind) {
  case SN_BUF_NONE: fputs("reg", out); break;
  case SN_BUF_ARENA: fprintf(out, "arena+%lld", (long long)b->offset); break;
  case SN_BUF_PARAMS: fprintf(out, "params+%lld", (long long)b->offset); break;
  case SN_BUF_GRADS: fprintf(out, "grads+%lld", (long long)b->offset); break;
  case SN_BUF_INPUT: fputs("x", out); break;
  case SN_BUF_LABEL: fputs("y", out); break;
  case SN_BUF_OUT: fputs("out", out); break;
  case SN_BUF_LOSS: fputs("loss_sum", out); break;
  case SN_BUF_METRIC: fprintf(out, "metric[%lld]", (long long)b->offset); break;
  case SN_BUF_TARGET: fputs("t", out); break;
  case SN_BUF_STATE: fprintf(out, "state+%lld", (long long)b->offset); break;
  }
}

void sn_plan_print(const sn_plan *p, FILE *out) {
  char a[160], b[160], c[160];
  for (int s = 0; s < SN_STEP_COUNT; s++) {
    const sn_step *st = &p->steps[s];
    const sn_graph *g = st->g;
    fprintf(out, "%s: %d kernels, arena %lld bytes\n", sn_step_name((sn_step_kind)s),
            st->n_kernels, (long long)st->arena_bytes);
    for (int k = 0; k < st->n_kernels; k++) {
      const sn_kernel *kk = &st->k[k];
      if (kk->kind == SN_K_GEMM) {
        const sn_op *op = &g->ops[kk->gemm];
        sn_value_name(g, op->in[0], a, sizeof a);
        sn_value_name(g, op->in[1], b, sizeof b);
        sn_value_name(g, kk->gemm, c, sizeof c);
        if (op->code == SN_OP_MATMUL || op->code == SN_OP_BATCH_MATMUL)
          fprintf(out, "  %s k%d %s%s x %s%s -> %s ", op->code == SN_OP_BATCH_MATMUL ? "batch_gemm" : "gemm", k, a,
                  op->ta ? "^T" : "", b, op->tb ? "^T" : "", c);
        else /* a recurrent scan or an implicit-GEMM convolution: a runtime call */
          fprintf(out, "  call k%d %s(%s, %s, ..) -> %s ", k, sn_opdefs[op->code].name, a, b, c);
        sn_type_print(&op->type, out);
        if (kk->parts) fprintf(out, " in %d parts", kk->parts);
        fputs(" @", out);
        buf_print(&st->buf[kk->gemm], out);
        fprintf(out, "   ; %s\n", op->layer);
        continue;
      }
      fprintf(out, "  kernel k%d rows %s%s%lld", k, kk->batched ? "N" : "", kk->batched ? "*" : "",
              (long long)kk->rows_mult);
      if (kk->parts) fprintf(out, " in %d parts", kk->parts);
      fprintf(out, ": %d ops:", kk->n_ops);
      for (int i = 0; i < kk->n_ops; i++) fprintf(out, " %s", sn_opdefs[g->ops[kk->ops[i]].code].name);
      fputs("\n    writes:", out);
      for (int i = 0; i < kk->n_roots; i++) {
        sn_value_name(g, kk->roots[i], a, sizeof a);
        fprintf(out, " %s@", a);
        buf_print(&st->buf[kk->roots[i]], out);
      }
      fputc('\n', out);
    }
  }
}
