/* Reverse-mode autodiff in the IR: walks the ops from the objective back to the
 * parameters and appends, per op, the gradient ops its rule in ops.c produces.
 * Gradients of a value used several times are summed. Also here: the expansion of
 * composite ops into primitives, which runs after autodiff so that gradient rules
 * see softmax-cross-entropy as one op. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static int *grow(int *a, int *cap, int need) {
  if (need <= *cap) return a;
  int n = *cap;
  while (*cap < need) *cap = *cap ? 2 * *cap : 256;
  a = realloc(a, sizeof(int) * (size_t)*cap);
  if (!a) abort();
  for (int i = n; i < *cap; i++) a[i] = -1;
  return a;
}

void sn_autodiff(sn_graph *g) {
  int n0 = g->n, cap = 0;
  char *needs = calloc((size_t)n0, 1); /* value depends on a parameter */
  int *grad = grow(NULL, &cap, n0);
  for (int v = 0; v < n0; v++) {
    const sn_op *op = &g->ops[v];
    needs[v] = op->code == SN_OP_PARAM && g->params[op->param].buffer == 0;
    for (int i = 0; i < op->n_in; i++) needs[v] |= needs[op->in[i]];
  }
  grad[g->objective] = sn_emit_const(g, 1.0);
  for (int v = g->objective; v >= 0; v--) {
    if (grad[v] < 0 || !needs[v] || g->ops[v].n_in == 0) continue;
    const sn_opdef *def = &sn_opdefs[g->ops[v].code];
    if (!def->grad) {
      fprintf(stderr, "specnet: internal error: no gradient rule for %s\n", def->name);
      abort();
    }
    int dx[SN_MAX_IN] = {-1, -1, -1, -1};
    sn_op op = g->ops[v]; /* the rule may grow g->ops */
    def->grad(g, v, grad[v], dx);
    grad = grow(grad, &cap, g->n);
    for (int i = 0; i < op.n_in; i++) {
      int in = op.in[i];
      if (dx[i] < 0 || !needs[in]) continue;
      grad[in] = grad[in] < 0 ? dx[i] : sn_emit(g, SN_OP_ADD, grad[in], dx[i], -1, &op);
      grad = grow(grad, &cap, g->n);
    }
  }
  for (int k = 0; k < g->n_params; k++) {
    int v = grad[g->param_op[k]];
    /* Two parameters may get one value (the biases b_ih and b_hh of a recurrent
     * layer, both added to the same sum): each gradient needs a place of its own,
     * so the second gets a copy (distinct by a[0], past hash-consing). */
    for (int j = 0; j < k && v >= 0; j++)
      if (g->param_grad[j] == v) {
        sn_op cp = {.code = SN_OP_COPY, .n_in = 1, .in = {v}, .loc = g->ops[g->param_op[k]].loc};
        memcpy(cp.layer, g->ops[g->param_op[k]].layer, sizeof cp.layer);
        cp.a[0] = k + 1;
        char err[256];
        v = sn_graph_add(g, &cp, err, sizeof err);
        break;
      }
    g->param_grad[k] = v;
  }
  free(needs);
  free(grad);
}

static void mark(const sn_graph *g, int v, char *live) {
  if (v < 0 || live[v]) return;
  live[v] = 1;
  for (int i = 0; i < g->ops[v].n_in; i++) mark(g, g->ops[v].in[i], live);
}

static int remap_root(const int *map, int v) { return v < 0 ? -1 : map[v]; }

void sn_expand(sn_graph *g) {
  char *live = calloc((size_t)g->n, 1);
  int *map = malloc(sizeof(int) * (size_t)g->n);
  if (!live || !map) abort();
  mark(g, g->output, live);
  mark(g, g->loss_sum, live);
  mark(g, g->objective, live);
  mark(g, g->input, live);
  mark(g, g->label, live);
  mark(g, g->target, live);
  for (int k = 0; k < g->n_metrics; k++) mark(g, g->metric_sum[k], live);
  for (int k = 0; k < g->n_state_updates; k++) mark(g, g->state_update[k], live);
  for (int k = 0; k < g->n_params; k++) {
    mark(g, g->param_grad[k], live);
    mark(g, g->param_op[k], live);
  }
  sn_graph h;
  sn_graph_init(&h, g->dtype);
  for (int v = 0; v < g->n; v++) {
    map[v] = -1;
    if (!live[v]) continue;
    sn_op op = g->ops[v];
    for (int i = 0; i < op.n_in; i++) op.in[i] = map[op.in[i]];
    const sn_opdef *def = &sn_opdefs[op.code];
    if (def->expand) {
      map[v] = def->expand(&h, &op);
    } else {
      char err[256];
      map[v] = sn_graph_add(&h, &op, err, sizeof err);
      if (map[v] < 0) {
        fprintf(stderr, "specnet: internal error while expanding: %s\n", err);
        abort();
      }
    }
  }
  /* Everything but the ops carries over. */
  sn_op *ops = h.ops;
  int *hash = h.hash, n = h.n, cap = h.cap, hash_cap = h.hash_cap;
  free(g->ops);
  free(g->hash);
  g->ops = ops;
  g->hash = hash;
  g->n = n;
  g->cap = cap;
  g->hash_cap = hash_cap;
  g->input = remap_root(map, g->input);
  g->label = remap_root(map, g->label);
  g->target = remap_root(map, g->target);
  g->logits = remap_root(map, g->logits);
  g->output = remap_root(map, g->output);
  g->loss_sum = remap_root(map, g->loss_sum);
  g->objective = remap_root(map, g->objective);
  for (int k = 0; k < g->n_metrics; k++) g->metric_sum[k] = remap_root(map, g->metric_sum[k]);
  for (int k = 0; k < g->n_state_updates; k++) g->state_update[k] = remap_root(map, g->state_update[k]);
  for (int k = 0; k < g->n_params; k++) {
    g->param_op[k] = remap_root(map, g->param_op[k]);
    g->param_grad[k] = remap_root(map, g->param_grad[k]);
  }
  free(live);
  free(map);
}
