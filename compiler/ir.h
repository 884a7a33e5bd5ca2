/* The graph IR: ops on tensors with static per-sample shapes and a symbolic batch
 * dimension N. Every op produces one value, named by the op's index (%12). Values
 * are created through sn_graph_add, which hash-conses (an identical op returns the
 * existing value), so rebuilding passes get common-subexpression elimination free.
 *
 * The module map of the middle end:
 *   ops.c        the op table: per op its name, class, shape rule, gradient rule
 *                and expansion into primitive ops (one place per op)
 *   ir.c         graph storage, hash-consing, printing in the `emit --what ir` form
 *   build_graph.c spec -> forward graph + loss + metrics
 *   autodiff.c   reverse mode: appends the backward graph, binds parameter grads
 *   fuse.c       per step function: schedule, kernels, static memory plan
 *   emit_llvm.c  kernels -> LLVM IR (C API);  jit.c: ORC LLJIT glue
 *
 * Shape letters in comments: N batch rows (run time), C last dim, R = N * the other
 * per-sample dims (rows of the 2-D view a fused kernel iterates over). */
#ifndef SPECNET_IR_H
#define SPECNET_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spec.h"

enum { SN_MAX_RANK = 6, SN_MAX_IN = 4 };

/* a[] of the window ops: kernel, strides, top/left padding, output size, dilation
 * (the distance between taps: 1 for pools and conv2d, conv1d's `dilation`) */
enum { SN_WIN_KH, SN_WIN_KW, SN_WIN_SH, SN_WIN_SW, SN_WIN_PT, SN_WIN_PL, SN_WIN_OH, SN_WIN_OW, SN_WIN_DH, SN_WIN_DW };

typedef enum sn_dtype { SN_F32 = 0, SN_F64, SN_I32 } sn_dtype;

typedef struct sn_type {
  sn_dtype dtype;
  bool batched;                /* leading symbolic dimension N */
  int rank;                    /* dims after N */
  int64_t dim[SN_MAX_RANK];
} sn_type;

/* Op classes decide how an op is scheduled and lowered. */
typedef enum sn_opclass {
  SN_CLS_SOURCE,    /* input, label, param, const, inv_rows: no code */
  SN_CLS_VIEW,      /* reshape: aliases its input's buffer */
  SN_CLS_GEMM,      /* matmul: a cblas_?gemm call */
  SN_CLS_ELEM,      /* elementwise with broadcast: fused, evaluated lazily */
  SN_CLS_ROWRED,    /* per-row reduction over the last dim (max, sum, argmax, pick) */
  SN_CLS_ACCUM,     /* sum over rows (colsum [N,..,C]->[C], sum_all [N]->[]) */
  SN_CLS_COMPOSITE, /* expanded into primitives after autodiff (softmax, xent) */
} sn_opclass;

/* The ops, from ops.def (a comment there says what each one computes). */
typedef enum sn_opcode {
#define OPDEF(id, name, cls, n_in, infer, grad, expand, gathers) SN_OP_##id,
#include "ops.def"
#undef OPDEF
  SN_OP_COUNT
} sn_opcode;

typedef struct sn_op {
  sn_opcode code;
  int n_in;
  int in[SN_MAX_IN];
  sn_type type;
  /* attributes (part of the hash-cons key) */
  int ta, tb;          /* matmul: transpose a / b */
  double c, c2;        /* const value; alpha; clamp bounds; huber delta */
  int64_t a[10];       /* integer attributes: slice offset, conv/pool geometry */
  int param;           /* param: index into graph->params */
  /* annotations (not part of the key) */
  sn_loc loc;          /* spec line the op came from */
  char layer[64];      /* layer name, for printing */
} sn_op;

/* Where a value must end up besides the arena. */
typedef enum sn_bind_kind { SN_BIND_NONE = 0, SN_BIND_GRAD } sn_bind_kind;

typedef struct sn_graph {
  sn_dtype dtype;       /* float type of the whole graph */
  bool training;        /* dropout on, batch statistics; else inference */
  int n, cap;
  sn_op *ops;
  int *hash;            /* open-addressing table of op indices, -1 empty */
  int hash_cap;
  /* parameters: PARAM op per entry, layout in the flat buffer */
  int n_params;
  sn_param_info *params;
  int *param_op;        /* value of each param */
  int *param_grad;      /* value of each param's gradient, -1 until autodiff */
  int64_t param_count;  /* P: trainable parameters */
  int64_t state_count;  /* Q: non-trainable state (running statistics) */
  int oversized;        /* the first value (a parameter too) of more than SN_MAX_ELEMS
                           elements (per sample), -1 none; build_graph reports it */
  /* named values */
  int input, label;     /* -1 if absent */
  int target;           /* float targets, -1 if the loss reads labels */
  int logits;           /* last layer before a fused softmax, or output */
  int output;           /* model output (after the last activation) */
  int loss_sum;         /* [] sum over rows of per-sample loss */
  int objective;        /* [] mean loss: what autodiff differentiates */
  int n_metrics;
  int metric_sum[8];    /* [] per-metric sums over rows */
  const char *metric_names[8]; /* point into metric_name_buf */
  char metric_name_buf[8][32];
  int n_layers;
  int *layer_out;       /* per spec layer: its output value (check's table) */
  /* training graph: new values of state (running statistics) written by the grad
   * step into the state of param state_param[k] */
  int n_state_updates;
  int state_update[64], state_param[64];
  int64_t batch_capacity;
  /* optimizer (emit_llvm.c writes its one update loop from these) */
  sn_opt_kind opt;
  double lr, beta1, beta2, epsilon, weight_decay, momentum, rho, clip_grad_norm;
  bool nesterov;
} sn_graph;

/* ---- ir.c */
/* Elements of one value per sample (of a parameter: in all) at most: 128 GiB of
 * floats, so that sizes in bytes of a batch (at most 2^24 rows) fit int64. */
#define SN_MAX_ELEMS (INT64_C(1) << 35)
void sn_graph_init(sn_graph *g, sn_dtype dtype);
void sn_graph_free(sn_graph *g);
/* Adds (or finds) an op; runs the op's shape rule. Returns the value, or -1 with
 * a message in err when the shapes do not fit. */
int sn_graph_add(sn_graph *g, const sn_op *op, char *err, size_t errlen);
/* Convenience: add with inputs and the location/layer of `like` (may be NULL);
 * aborts on a shape error, for passes whose inputs are already checked. */
int sn_emit(sn_graph *g, sn_opcode code, int a, int b, int c, const sn_op *like);
int sn_emit_const(sn_graph *g, double v);
/* For ops whose result type is an attribute (reshape, broadcast, onehot). */
int sn_emit_typed(sn_graph *g, sn_opcode code, int a, const sn_type *t, const sn_op *like);
int sn_param_add(sn_graph *g, const char *name, int rank, const int64_t *shape,
                 sn_init_kind init, double init_arg, int64_t fan_in, int64_t fan_out,
                 const sn_op *like);
/* Non-trainable state (batch-norm running statistics): a PARAM op whose info has
 * buffer 1; it lives in args->state and gets no gradient. */
int sn_state_add(sn_graph *g, const char *name, int64_t count, sn_init_kind init, const sn_op *like);
void sn_type_print(const sn_type *t, FILE *out);
int64_t sn_type_elems(const sn_type *t); /* per sample for batched types */
bool sn_type_eq(const sn_type *a, const sn_type *b);
/* Prints values reachable from the graph's roots, one per line, in the same form
 * as DESIGN.md ("%3 = add %2, %dense1.bias : f32[N,128]  ; dense1 13:7"). */
void sn_graph_print(const sn_graph *g, FILE *out, bool with_backward);
void sn_value_name(const sn_graph *g, int v, char *buf, size_t len);

/* ---- ops.c */
typedef struct sn_opdef {
  const char *name;
  sn_opclass cls;
  int n_in;
  /* Shape rule: sets op->type from its inputs; returns 0 or writes err. */
  int (*infer)(const sn_graph *g, sn_op *op, char *err, size_t errlen);
  /* Gradient rule: given dy (the gradient of the op's value), adds ops to g and
   * writes the gradient of each input to dx[i] (-1: no gradient flows). */
  void (*grad)(sn_graph *g, int v, int dy, int dx[SN_MAX_IN]);
  /* Expansion of a composite into primitive ops of g (inputs already remapped
   * into g); returns the new value. */
  int (*expand)(sn_graph *g, const sn_op *op);
  /* Reads its inputs at other positions than its own (concat, slice): they must
   * be in memory before the op's kernel runs. */
  bool gathers;
} sn_opdef;

extern const sn_opdef sn_opdefs[SN_OP_COUNT];
/* Sums dy back to the type `to` (undoes broadcasting). */
int sn_unbroadcast(sn_graph *g, int dy, const sn_type *to, const sn_op *like);

/* ---- build_graph.c */
/* Builds forward, loss and metrics for a checked spec; reports shape errors at the
 * spec's lines. Returns 0 on success. */
int sn_build_graph(const sn_spec *s, sn_dtype dtype, bool training, sn_graph *g, sn_diag *d);

/* ---- emit_llvm.c */
int64_t sn_opt_state_count(const sn_graph *g); /* elements of optimizer state */

/* ---- autodiff.c */
/* Appends gradient ops of g->objective w.r.t. every parameter; sets param_grad. */
void sn_autodiff(sn_graph *g);
/* Rebuilds g with composites expanded into primitives (CSE by hash-consing);
 * roots (loss, metrics, output, grads) are carried over. */
void sn_expand(sn_graph *g);

#endif
