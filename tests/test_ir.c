/* The middle end on graphs built by hand, without a spec: hash-consing, shape
 * rules and their errors, the gradient ops autodiff derives (the activations of
 * acts.def among them), and what the expansion keeps. Numerical gradients are the
 * gradcheck specs' job (tests/specs/ops); this is structure. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#include "check.h"

/* x : f64[N, 3] and w : f64[2, 3] in a fresh graph */
static void start(sn_graph *g, int *x, int *w) {
  sn_graph_init(g, SN_F64);
  sn_op in = {.code = SN_OP_INPUT, .layer = "input"};
  in.type = (sn_type){.dtype = SN_F64, .batched = true, .rank = 1, .dim = {3}};
  char err[256];
  *x = sn_graph_add(g, &in, err, sizeof err);
  g->input = *x;
  int64_t shape[2] = {2, 3};
  *w = sn_param_add(g, "d.weight", 2, shape, SN_INIT_ZEROS, 0, 3, 2, NULL);
}

static int matmul_t(sn_graph *g, int a, int b, char *err, size_t len) {
  sn_op op = {.code = SN_OP_MATMUL, .n_in = 2, .in = {a, b}, .tb = 1};
  return sn_graph_add(g, &op, err, len);
}

/* objective = sum over rows and columns of y, over N */
static void finish(sn_graph *g, int y) {
  g->output = y;
  g->loss_sum = sn_emit(g, SN_OP_SUM_ALL, sn_emit(g, SN_OP_ROW_SUM, y, -1, -1, NULL), -1, -1, NULL);
  g->objective = sn_emit(g, SN_OP_MUL, g->loss_sum, sn_emit(g, SN_OP_INV_ROWS, -1, -1, -1, NULL), -1, NULL);
}

static int count_code(const sn_graph *g, sn_opcode c) {
  int n = 0;
  for (int v = 0; v < g->n; v++) n += g->ops[v].code == c;
  return n;
}

static void test_hash_cons_and_shapes(void) {
  sn_graph g;
  int x, w;
  char err[256] = "";
  start(&g, &x, &w);
  int a = matmul_t(&g, x, w, err, sizeof err);
  CHECK(a >= 0, "x W^T: %s", err);
  CHECK(g.ops[a].type.batched && g.ops[a].type.rank == 1 && g.ops[a].type.dim[0] == 2,
        "x [N,3] W^T [3,2] is [N,2]");
  int n = g.n;
  CHECK(matmul_t(&g, x, w, err, sizeof err) == a && g.n == n, "the same product twice is one value");
  int r1 = sn_emit(&g, SN_OP_RELU, a, -1, -1, NULL), r2 = sn_emit(&g, SN_OP_RELU, a, -1, -1, NULL);
  CHECK(r1 == r2, "relu of one value twice is one value");
  sn_op lk = {.code = SN_OP_LEAKY_RELU, .n_in = 1, .in = {a}, .c = 0.2};
  int l1 = sn_graph_add(&g, &lk, err, sizeof err);
  lk.c = 0.3;
  int l2 = sn_graph_add(&g, &lk, err, sizeof err);
  CHECK(l1 >= 0 && l2 >= 0 && l1 != l2, "attributes are part of the key: alpha 0.2 and 0.3 differ");
  /* a product whose inner sizes differ is refused with a message */
  int64_t shape[2] = {2, 4};
  int w4 = sn_param_add(&g, "e.weight", 2, shape, SN_INIT_ZEROS, 0, 4, 2, NULL);
  err[0] = 0;
  CHECK(matmul_t(&g, x, w4, err, sizeof err) < 0 && err[0], "x [N,3] times [2,4]^T is a shape error");
  /* elementwise broadcast: a bias [2] against [N,2]; a [3] bias is refused */
  int64_t b2 = 2, b3 = 3;
  int bias = sn_param_add(&g, "d.bias", 1, &b2, SN_INIT_ZEROS, 0, 0, 0, NULL);
  int bad = sn_param_add(&g, "f.bias", 1, &b3, SN_INIT_ZEROS, 0, 0, 0, NULL);
  sn_op add = {.code = SN_OP_ADD, .n_in = 2, .in = {a, bias}};
  CHECK(sn_graph_add(&g, &add, err, sizeof err) >= 0, "[N,2] + [2] broadcasts: %s", err);
  add.in[1] = bad;
  err[0] = 0;
  CHECK(sn_graph_add(&g, &add, err, sizeof err) < 0 && err[0], "[N,2] + [3] is a shape error");
  sn_graph_free(&g);
}

/* d/dW of sum(relu(x W^T)) / N: relu_grad of the output, then dY^T x into [2,3] */
static void test_autodiff_dense(void) {
  sn_graph g;
  int x, w;
  char err[256];
  start(&g, &x, &w);
  int a = matmul_t(&g, x, w, err, sizeof err);
  finish(&g, sn_emit(&g, SN_OP_RELU, a, -1, -1, NULL));
  sn_autodiff(&g);
  int gw = g.param_grad[0];
  CHECK(gw >= 0, "the weight has a gradient");
  if (gw < 0) return;
  const sn_op *op = &g.ops[gw];
  CHECK(op->code == SN_OP_MATMUL && op->ta && !op->tb, "dW is dY^T x (a matmul with A transposed), got %s",
        sn_opdefs[op->code].name);
  CHECK(!op->type.batched && op->type.rank == 2 && op->type.dim[0] == 2 && op->type.dim[1] == 3,
        "dW has W's shape [2,3]");
  CHECK(op->in[1] == x, "dW reads x");
  CHECK(g.ops[op->in[0]].code == SN_OP_RELU_GRAD, "dY is relu_grad (of the output and the upstream gradient)");
  CHECK(count_code(&g, SN_OP_RELU_GRAD) == 1, "one relu_grad");
  /* expansion keeps the roots and leaves no composite behind */
  sn_expand(&g);
  CHECK(g.param_grad[0] >= 0 && g.ops[g.param_grad[0]].code == SN_OP_MATMUL, "expand keeps dW");
  for (int v = 0; v < g.n; v++)
    CHECK(sn_opdefs[g.ops[v].code].cls != SN_CLS_COMPOSITE, "no composite after expand (%s)",
          sn_opdefs[g.ops[v].code].name);
  sn_graph_free(&g);
}

/* Every activation's gradient op, as acts.def names it, reading y or x. */
static void test_activation_gradients(void) {
  static const struct {
    sn_opcode op, grad;
    bool from_x;
  } want[] = {{SN_OP_RELU, SN_OP_RELU_GRAD, false},
              {SN_OP_SIGMOID, SN_OP_SIGMOID_GRAD, false},
              {SN_OP_TANH, SN_OP_TANH_GRAD, false},
              {SN_OP_LEAKY_RELU, SN_OP_LEAKY_RELU_GRAD, false},
              {SN_OP_ELU, SN_OP_ELU_GRAD, false},
              {SN_OP_GELU, SN_OP_GELU_GRAD, true}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    sn_graph g;
    int x, w;
    char err[256];
    start(&g, &x, &w);
    int a = matmul_t(&g, x, w, err, sizeof err);
    sn_op act = {.code = want[i].op, .n_in = 1, .in = {a}, .c = 0.25};
    int y = sn_graph_add(&g, &act, err, sizeof err);
    finish(&g, y);
    sn_autodiff(&g);
    int found = -1;
    for (int v = 0; v < g.n; v++)
      if (g.ops[v].code == want[i].grad) found = v;
    const char *name = sn_opdefs[want[i].op].name;
    CHECK(found >= 0, "%s: its gradient is %s", name, sn_opdefs[want[i].grad].name);
    if (found >= 0) {
      CHECK(g.ops[found].in[0] == (want[i].from_x ? a : y), "%s: the gradient reads the activation's %s", name,
            want[i].from_x ? "input" : "output");
      CHECK(g.ops[found].c == g.ops[y].c, "%s: the gradient keeps the option (alpha)", name);
    }
    sn_graph_free(&g);
  }
}

int main(void) {
  test_hash_cons_and_shapes();
  test_autodiff_dense();
  test_activation_gradients();
  if (failures) printf("test_ir: %d failures\n", failures);
  else printf("test_ir: all checks passed\n");
  return failures ? 1 : 0;
}
