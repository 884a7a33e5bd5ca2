/* The plan: what fuse.c decides and emit_llvm.c lowers. Per step function, an
 * ordered list of kernels (one GEMM call, or one fused loop nest over rows) and a
 * static memory plan saying where every materialized value lives. */
#ifndef SPECNET_PLAN_H
#define SPECNET_PLAN_H

#include "ir.h"

typedef enum sn_step_kind {
  SN_STEP_GRAD = 0, /* forward + backward: grads, loss, metrics */
  SN_STEP_EVAL,     /* forward + loss + metrics */
  SN_STEP_PREDICT,  /* forward to the model output */
  SN_STEP_COUNT
} sn_step_kind;

typedef enum sn_buf_kind {
  SN_BUF_NONE = 0, /* not materialized: computed inside its kernel, or a constant */
  SN_BUF_ARENA,    /* activations arena, offset in bytes */
  SN_BUF_PARAMS,   /* flat parameters, offset in elements */
  SN_BUF_GRADS,    /* flat gradients, offset in elements */
  SN_BUF_INPUT,    /* args->x */
  SN_BUF_LABEL,    /* args->y */
  SN_BUF_OUT,      /* args->out */
  SN_BUF_LOSS,     /* args->loss_sum (a double) */
  SN_BUF_METRIC,   /* args->metric_sums[offset] (a double) */
  SN_BUF_TARGET,   /* args->t */
  SN_BUF_STATE,    /* args->state, offset in elements */
} sn_buf_kind;

typedef struct sn_buf {
  sn_buf_kind kind;
  int64_t offset;
} sn_buf;

typedef enum sn_kernel_kind { SN_K_GEMM, SN_K_FUSED } sn_kernel_kind;

typedef struct sn_kernel {
  sn_kernel_kind kind;
  int gemm;             /* GEMM: the matmul value */
  /* FUSED: rows R = (batched ? N : 1) * rows_mult */
  bool batched;
  int64_t rows_mult;
  int n_ops;
  int *ops;             /* member values, in schedule order */
  int n_roots;
  int *roots;           /* members that must be written: stored or accumulated */
  /* parts > 0: a kernel whose only work across rows is column sums (bias
   * gradients, conv_wgrad), big enough to share: its rows run in `parts` ranges (on the pool),
   * each summing into its own partial column sums at arena + scratch (bytes), which
   * are added up after it. A fixed number, so the sums do not depend on threads. */
  int parts;
  int64_t scratch;
} sn_kernel;

typedef struct sn_step {
  const sn_graph *g;    /* the training graph (grad) or the inference graph */
  int n_kernels;
  sn_kernel *k;
  int *kernel_of;       /* per value: kernel index computing it, -1 for sources */
  sn_buf *buf;          /* per value: where it lives in this step */
  int64_t arena_bytes;
} sn_step;

typedef struct sn_plan {
  const sn_graph *g;    /* the training graph: parameters, optimizer */
  sn_step steps[SN_STEP_COUNT];
  int64_t arena_bytes;  /* max over steps */
} sn_plan;

/* ---- fuse.c */
/* Plans the grad step from `train` (dropout on, batch statistics) and the eval and
 * predict steps from `infer` (dropout off, running statistics). Both graphs come
 * from one spec, so their parameters have one layout. */
void sn_plan_build(const sn_graph *train, const sn_graph *infer, sn_plan *p);
void sn_plan_free(sn_plan *p);
void sn_plan_print(const sn_plan *p, FILE *out);
const char *sn_step_name(sn_step_kind k);
/* Resolves views: the value whose buffer v reads. */
int sn_plan_base(const sn_graph *g, int v);

/* ---- pipeline.c */
/* How far sn_pipeline goes. */
typedef enum sn_stage {
  SN_STAGE_GRAPH, /* the training graph, forward only (check's table, emit ir) */
  SN_STAGE_GRAD,  /* and its backward pass (emit grad) */
  SN_STAGE_PLAN,  /* and the inference graph, composites expanded, kernels planned */
} sn_stage;

/* A spec through the middle end. Planned programs point into themselves (plan.g is
 * &train): do not move one after sn_pipeline. */
typedef struct sn_program {
  sn_graph train;         /* forward with dropout and batch statistics; backward */
  sn_graph infer;         /* eval and predict (SN_STAGE_PLAN) */
  sn_plan plan;           /* SN_STAGE_PLAN */
  bool has_plan;
  sn_compile_times times; /* build, autodiff, plan (seconds) */
} sn_program;

/* The passes in order, up to `until`; shape errors go to d (then -1, and p holds
 * nothing). */
int sn_pipeline(const sn_spec *spec, sn_dtype dtype, sn_stage until, sn_program *p, sn_diag *d);
void sn_program_free(sn_program *p);

#endif
