/* Lowering of a plan to LLVM IR through the C API. Per step function:
 *   - a GEMM kernel is a call to the runtime's sn_par_sgemm (or _dgemm for f64),
 *     which runs it on the thread pool; cblas_[sd]gemm when cg->par is off;
 *   - a fused kernel is one internal function
 *     `void kS_K(i64 rows, i64 rng, i64 r0, i64 r1, ptr noalias..)`:
 *       for r in r0..r1:                 (of R = N * rows_mult)
 *         row values (max, sum, argmax, pick, per-row arithmetic), each reduction
 *         as its own column loop over c
 *         one column loop per distinct width C over the element values to store
 *         and the column sums to accumulate
 *       then the sums over rows are stored;
 *     element values that nothing outside needs stay in registers and are
 *     recomputed where two loops need them (cheap elementwise work);
 *     a kernel whose rows are independent (no column sums, totals or scatters)
 *     is called through sn_par_for with a task that runs it on a range of rows;
 *   - the optimizer update is one loop over a range of the flat parameter buffer,
 *     also run through sn_par_for.
 * The step functions take one sn_step_args pointer (runtime.h); the struct's
 * layout is mirrored by args_type() below. Loop counters and accumulators are
 * allocas; the O2 pipeline turns them into registers and vectorizes the loops. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h> /* LLVMTemporaryMDNode */

#include "codegen.h"
#include "specnet/runtime.h"

enum { /* field order of sn_step_args */
  A_X, A_Y, A_ROWS, A_PARAMS, A_GRADS, A_OPT, A_ARENA, A_STEP, A_LR, A_SEED,
  A_LOSS, A_METRICS, A_OUT, A_T, A_STATE, A_COUNT
};

/* The generated code's view of sn_step_args (args_type: every field 8 bytes, in
 * this order) is the C struct's. */
#define SN_ARG_AT(field, index) \
  _Static_assert(offsetof(sn_step_args, field) == 8 * (index), "sn_step_args." #field " moved");
SN_ARG_AT(x, A_X)
SN_ARG_AT(y, A_Y)
SN_ARG_AT(rows, A_ROWS)
SN_ARG_AT(params, A_PARAMS)
SN_ARG_AT(grads, A_GRADS)
SN_ARG_AT(opt_state, A_OPT)
SN_ARG_AT(arena, A_ARENA)
SN_ARG_AT(step, A_STEP)
SN_ARG_AT(lr, A_LR)
SN_ARG_AT(seed, A_SEED)
SN_ARG_AT(loss_sum, A_LOSS)
SN_ARG_AT(metric_sums, A_METRICS)
SN_ARG_AT(out, A_OUT)
SN_ARG_AT(t, A_T)
SN_ARG_AT(state, A_STATE)
#undef SN_ARG_AT
_Static_assert(sizeof(sn_step_args) == 8 * A_COUNT, "sn_step_args has a field the generated code does not know");

/* L_SAMPLE: an unbatched value the same at every sample of a batched kernel (a
 * position embedding [T, D] in a kernel over N x T rows) */
typedef enum level { L_ELEM, L_ROW, L_COL, L_SCALAR, L_SAMPLE } level;

typedef struct emitter {
  sn_codegen *cg;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;       /* where code goes */
  LLVMBuilderRef sb;      /* entry block of the current function: allocas, scalars */
  const sn_graph *g;
  const sn_plan *p;
  LLVMTypeRef ft, i64, i32, i1, f64, ptr, voidt, args_t;
  /* the kernel being emitted */
  const sn_step *st;
  int kidx;
  const sn_kernel *k;
  LLVMValueRef fn, rows, r;   /* rows: the kernel's N; r: current row */
  LLVMValueRef *ref;          /* per value: pointer argument, or NULL */
  int *alias;                 /* per value: the value whose pointer it shares, or -1 */
  LLVMValueRef *row_memo, *elem_memo, *scalar_memo;
  char *row_level;            /* per value: a row reduction, or element-wise of one */
  LLVMValueRef col;           /* current column index inside a column loop */
  LLVMValueRef tap, chan;     /* an im2col kernel's column as (tap, channel) when its
                                 loop runs taps outside and channels inside, else NULL */
  LLVMValueRef rng_base;      /* kernel argument: hash of (seed, step) for dropout */
  LLVMValueRef prof;          /* profile counters, or NULL */
  int prof_base;              /* index of the current step's first kernel */
  /* the fused kernel's row r as (n, y, x) on an [N, H, W] grid of pixels, counted
   * up row by row (allocas) instead of divided out of r in every row */
  struct row_grid {
    int64_t h, w;
    LLVMValueRef n, y, x;
  } grid[4];
  int n_grid;
  LLVMBasicBlockRef row_pre; /* the row loop's preheader; NULL: no counters */
  LLVMValueRef r0;           /* the row loop's first row */
  LLVMValueRef part_sum;      /* the module's sum function (or its declaration), or NULL */
} emitter;

/* ---------------------------------------------------------------------------
 * Small helpers */

static LLVMTypeRef args_type(emitter *e) {
  LLVMTypeRef f[A_COUNT] = {e->ptr, e->ptr, e->i64, e->ptr, e->ptr, e->ptr, e->ptr, e->i64,
                            e->f64, e->i64, e->ptr, e->ptr, e->ptr, e->ptr, e->ptr};
  return LLVMStructTypeInContext(e->ctx, f, A_COUNT, 0);
}

static void set_attrs(emitter *e, LLVMValueRef fn) {
  LLVMAddTargetDependentFunctionAttr(fn, "target-cpu", e->cg->cpu);
  LLVMAddTargetDependentFunctionAttr(fn, "target-features", e->cg->features);
  /* LLVM's generic x86-64-v4 tunes for 256-bit vectors (as for early AVX-512
   * Xeons); a user who asks for the AVX-512 level gets 512-bit ones, as the JIT
   * gives on a host (Zen 4/5) whose own tuning prefers them. */
  if (!strcmp(e->cg->cpu, "x86-64-v4")) LLVMAddTargetDependentFunctionAttr(fn, "prefer-vector-width", "512");
  unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(e->ctx, nounwind, 0));
}

/* Fused kernels stay functions of their own: `emit --what llvm` shows each one,
 * and profiles attribute time to it. A call per kernel per step costs nothing. */
static void set_noinline(emitter *e, LLVMValueRef fn) {
  unsigned k = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, k, 0));
}

static void set_noalias(emitter *e, LLVMValueRef fn, unsigned param_index) {
  unsigned k = LLVMGetEnumAttributeKindForName("noalias", 7);
  LLVMAddAttributeAtIndex(fn, param_index + 1, LLVMCreateEnumAttribute(e->ctx, k, 0));
}

/* A kernel function: internal, target attributes, never inlined; the builder at
 * its first block, allocas (entry_alloca) in an entry block before it. */
static LLVMValueRef begin_kernel(emitter *e, const char *name, LLVMTypeRef type) {
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, type);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  set_attrs(e, fn);
  set_noinline(e, fn);
  e->fn = fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->ctx, fn, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(e->ctx, fn, "start");
  LLVMPositionBuilderAtEnd(e->sb, entry);
  LLVMPositionBuilderBefore(e->sb, LLVMBuildBr(e->sb, start));
  LLVMPositionBuilderAtEnd(e->b, start);
  return fn;
}

static LLVMValueRef intrinsic(emitter *e, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                              unsigned n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, &t, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->ctx, id, &t, 1);
  return LLVMBuildCall2(e->b, fty, fn, args, n, "");
}

static LLVMValueRef libm(emitter *e, const char *f32name, const char *f64name, LLVMValueRef x) {
  const char *name = e->g->dtype == SN_F64 ? f64name : f32name;
  LLVMTypeRef fty = LLVMFunctionType(e->ft, &e->ft, 1, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
  if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
  return LLVMBuildCall2(e->b, fty, fn, &x, 1, "");
}

static LLVMValueRef cf(emitter *e, double v) { return LLVMConstReal(e->ft, v); }
static LLVMValueRef ci(emitter *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }
static LLVMValueRef i32c(emitter *e, int64_t v) { return LLVMConstInt(e->i32, (unsigned long long)v, 0); }

static LLVMValueRef entry_alloca(emitter *e, LLVMTypeRef t, const char *name) {
  return LLVMBuildAlloca(e->sb, t, name);
}

static void fast(LLVMValueRef inst) {
  /* reassociation lets reductions vectorize; no nnan/ninf: NaN must reach the loss */
  LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathNoSignedZeros |
                                 LLVMFastMathAllowContract);
}

typedef struct loop {
  LLVMBasicBlockRef cond, body, exit;
  LLVMValueRef iv; /* alloca */
  LLVMValueRef i;
} loop;

static LLVMValueRef loop_open(emitter *e, loop *L, LLVMValueRef n, const char *name) {
  L->iv = entry_alloca(e, e->i64, name);
  LLVMBuildStore(e->b, ci(e, 0), L->iv);
  L->cond = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
  L->body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
  L->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
  LLVMBuildBr(e->b, L->cond);
  LLVMPositionBuilderAtEnd(e->b, L->cond);
  L->i = LLVMBuildLoad2(e->b, e->i64, L->iv, name);
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, L->i, n, ""), L->body, L->exit);
  LLVMPositionBuilderAtEnd(e->b, L->body);
  return L->i;
}

/* Closes loop L; returns its back edge (the branch that loop metadata goes on). */
static LLVMValueRef loop_close(emitter *e, loop *L) {
  LLVMBuildStore(e->b, LLVMBuildNSWAdd(e->b, L->i, ci(e, 1), ""), L->iv);
  LLVMValueRef br = LLVMBuildBr(e->b, L->cond);
  LLVMPositionBuilderAtEnd(e->b, L->exit);
  return br;
}

/* Marks the loop whose back edge is br as not to be vectorized (it may still be
 * interleaved): !llvm.loop !{self, !{"llvm.loop.vectorize.width", i32 1}}. */
static void loop_no_vectorize(emitter *e, LLVMValueRef br) {
  LLVMMetadataRef width[2] = {
      LLVMMDStringInContext2(e->ctx, "llvm.loop.vectorize.width", 25),
      LLVMValueAsMetadata(LLVMConstInt(e->i32, 1, 0)),
  };
  LLVMMetadataRef self = LLVMTemporaryMDNode(e->ctx, NULL, 0);
  LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(e->ctx, width, 2)};
  LLVMMetadataRef node = LLVMMDNodeInContext2(e->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(self, node);
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9), LLVMMetadataAsValue(e->ctx, node));
}

static LLVMValueRef gep(emitter *e, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(e->b, t, base, &idx, 1, "");
}

static int64_t last_dim(const sn_type *t) { return t->rank ? t->dim[t->rank - 1] : 1; }

static void die(const char *what) {
  fprintf(stderr, "specnet: internal error in codegen: %s\n", what);
  abort();
}

/* ---------------------------------------------------------------------------
 * Levels: how a value is indexed inside the current kernel's row loop. */

static level level_of(emitter *e, int v) {
  const sn_type *t = &e->g->ops[v].type;
  if (!t->batched && t->rank == 0) return L_SCALAR;
  /* one value per row by construction, though its shape also reads as elements:
   * [N, 1] out of [N, 1, C] (a sequence of one step) in a kernel of N rows */
  if (e->row_level[v] && t->batched == e->k->batched && sn_type_elems(t) == e->k->rows_mult) return L_ROW;
  if (t->batched == e->k->batched && t->rank >= 1) {
    int64_t m = 1;
    for (int i = 0; i < t->rank - 1; i++) m *= t->dim[i];
    if (m == e->k->rows_mult) return L_ELEM;
  }
  if (t->batched == e->k->batched && sn_type_elems(t) == e->k->rows_mult) return L_ROW;
  if (!t->batched && t->rank == 1) return L_COL;
  if (!t->batched && e->k->batched && sn_type_elems(t) == e->k->rows_mult * last_dim(t)) return L_SAMPLE;
  die("value does not fit the kernel's rows");
  return L_ELEM;
}

static bool computed_here(emitter *e, int v) { return e->st->kernel_of[v] == e->kidx; }

static LLVMTypeRef val_type(emitter *e, int v) {
  return e->g->ops[v].type.dtype == SN_I32 ? e->i32 : e->ft;
}

static LLVMValueRef ptr_of(emitter *e, int v) {
  int b = sn_plan_base(e->g, v);
  LLVMValueRef p = e->ref[e->alias[b] >= 0 ? e->alias[b] : b];
  if (!p) die("value has no buffer");
  return p;
}

static LLVMValueRef gen_scalar(emitter *e, int v);
static LLVMValueRef gen_row(emitter *e, int v);
static LLVMValueRef gen_elem(emitter *e, int v);

/* Dropout: a counter-based hash (splitmix64's finalizer) of (seed, layer, step,
 * element) decides each element, so the backward pass regenerates the forward mask
 * and runs are reproducible. Kept elements are scaled by 1/(1-rate). */
static LLVMValueRef dropout(emitter *e, const sn_op *op, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef col = e->col ? e->col : ci(e, 0);
  LLVMValueRef idx = LLVMBuildAdd(b, LLVMBuildMul(b, e->r, ci(e, last_dim(&op->type)), ""), col, "");
  LLVMValueRef z = LLVMBuildXor(b, e->rng_base, LLVMBuildMul(b, idx, ci(e, (int64_t)0x9E3779B97F4A7C15ull), ""), "");
  z = LLVMBuildAdd(b, z, ci(e, (int64_t)((uint64_t)op->a[0] * 0xD1B54A32D192ED03ull)), "");
  z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, ci(e, 30), ""), "");
  z = LLVMBuildMul(b, z, ci(e, (int64_t)0xBF58476D1CE4E5B9ull), "");
  z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, ci(e, 27), ""), "");
  z = LLVMBuildMul(b, z, ci(e, (int64_t)0x94D049BB133111EBull), "");
  z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, ci(e, 31), ""), "");
  /* 24 high bits -> [0, 1) exactly representable in float */
  LLVMValueRef u = LLVMBuildFMul(b, LLVMBuildUIToFP(b, LLVMBuildLShr(b, z, ci(e, 40), ""), e->ft, ""),
                                 cf(e, 1.0 / 16777216.0), "");
  LLVMValueRef keep = LLVMBuildFCmp(b, LLVMRealOGE, u, cf(e, op->c), "");
  return LLVMBuildSelect(b, keep, LLVMBuildFMul(b, x, cf(e, 1.0 / (1.0 - op->c)), ""), cf(e, 0), "");
}

/* exp(x). In f32 a polynomial that the loop vectorizer widens (llvm.exp becomes a
 * libm call per element, which no vector unit runs): x = n ln2 + r, |r| <= ln2/2,
 * e^r by Cephes's expf polynomial (about 1 ulp), 2^n built in the exponent bits.
 * Below -87.34 it is 0 (no denormals), above 88.72 +inf (from 88.37, where 2^n
 * would leave the exponent's range, to there, exp(88.37)), and a NaN stays NaN (the
 * comparisons are false for it). f64 (gradient checks) keeps libm's exp. */
static LLVMValueRef vexp(emitter *e, LLVMValueRef x) {
  if (e->g->dtype == SN_F64) return intrinsic(e, "llvm.exp", e->ft, &x, 1);
  LLVMBuilderRef b = e->b;
  LLVMValueRef lo = cf(e, -87.33654), hi = cf(e, 88.37);
  LLVMValueRef xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
  xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, xc, hi, ""), hi, xc, "");
  LLVMValueRef t = LLVMBuildFMul(b, xc, cf(e, 1.44269504088896341), "");
  LLVMValueRef n = intrinsic(e, "llvm.rint", e->ft, &t, 1);
  LLVMValueRef r = LLVMBuildFSub(b, xc, LLVMBuildFMul(b, n, cf(e, 0.693359375), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, n, cf(e, -2.12194440e-4), ""), "");
  static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef p = cf(e, c[0]);
  for (int i = 1; i < 6; i++) p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, r, ""), cf(e, c[i]), "");
  LLVMValueRef y = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildFMul(b, p, r, ""), r, ""), r, "");
  y = LLVMBuildFAdd(b, y, cf(e, 1.0), "");
  LLVMValueRef ni = LLVMBuildFPToSI(b, n, e->i32, ""); /* in [-126, 127] */
  LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, ni, LLVMConstInt(e->i32, 127, 0), ""), LLVMConstInt(e->i32, 23, 0), "");
  y = LLVMBuildFMul(b, y, LLVMBuildBitCast(b, bits, e->ft, ""), "");
  y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, cf(e, -87.33654), ""), cf(e, 0), y, "");
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, cf(e, 88.72283), ""), cf(e, __builtin_inf()), y, "");
}

/* gelu_tanh: u = K0 (x + K1 x^3); exp(-2u) */
#define GELU_K0 0.79788456080286535588 /* sqrt(2 / pi) */
#define GELU_K1 0.044715
static LLVMValueRef gelu_tanh_exp(emitter *e, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef x3 = LLVMBuildFMul(b, x, LLVMBuildFMul(b, x, x, ""), "");
  LLVMValueRef u = LLVMBuildFAdd(b, x, LLVMBuildFMul(b, cf(e, GELU_K1), x3, ""), "");
  LLVMValueRef m = LLVMBuildFMul(b, cf(e, -2 * GELU_K0), u, "");
  return vexp(e, m);
}

/* Applies an elementwise op to already generated operands. */
static LLVMValueRef apply(emitter *e, int v, LLVMValueRef *x) {
  const sn_op *op = &e->g->ops[v];
  LLVMBuilderRef b = e->b;
  LLVMValueRef zero = cf(e, 0), one = cf(e, 1), t;
  switch (op->code) {
  case SN_OP_ADD: t = LLVMBuildFAdd(b, x[0], x[1], ""); break;
  case SN_OP_SUB: t = LLVMBuildFSub(b, x[0], x[1], ""); break;
  case SN_OP_MUL: t = LLVMBuildFMul(b, x[0], x[1], ""); break;
  case SN_OP_DIV: t = LLVMBuildFDiv(b, x[0], x[1], ""); break;
  case SN_OP_NEG: return LLVMBuildFNeg(b, x[0], "");
  case SN_OP_EXP: return vexp(e, x[0]);
  case SN_OP_LOG: return intrinsic(e, "llvm.log", e->ft, x, 1);
  case SN_OP_RELU:
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[0], zero, "");
  case SN_OP_SIGMOID: {
    LLVMValueRef n = LLVMBuildFNeg(b, x[0], "");
    LLVMValueRef ex = vexp(e, n);
    return LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, ex, ""), "");
  }
  case SN_OP_TANH: return libm(e, "tanhf", "tanh", x[0]);
  case SN_OP_RELU_GRAD:
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[1], zero, "");
  case SN_OP_SIGMOID_GRAD: /* dy * y * (1 - y) */
    return LLVMBuildFMul(b, LLVMBuildFMul(b, x[1], x[0], ""), LLVMBuildFSub(b, one, x[0], ""), "");
  case SN_OP_TANH_GRAD: /* dy * (1 - y^2) */
    return LLVMBuildFMul(b, x[1], LLVMBuildFSub(b, one, LLVMBuildFMul(b, x[0], x[0], ""), ""), "");
  case SN_OP_LEAKY_RELU: /* x > 0 ? x : alpha x */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[0],
                           LLVMBuildFMul(b, cf(e, op->c), x[0], ""), "");
  case SN_OP_LEAKY_RELU_GRAD: /* (y, dy): y > 0 ? dy : alpha dy */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[1],
                           LLVMBuildFMul(b, cf(e, op->c), x[1], ""), "");
  case SN_OP_ELU: { /* x > 0 ? x : alpha (exp(x) - 1) */
    LLVMValueRef ex = vexp(e, x[0]);
    LLVMValueRef neg = LLVMBuildFMul(b, cf(e, op->c), LLVMBuildFSub(b, ex, one, ""), "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[0], neg, "");
  }
  case SN_OP_ELU_GRAD: /* (y, dy): y > 0 ? dy : dy (y + alpha) */
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[1],
                           LLVMBuildFMul(b, x[1], LLVMBuildFAdd(b, x[0], cf(e, op->c), ""), ""), "");
  case SN_OP_GELU: { /* x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
    LLVMValueRef er = libm(e, "erff", "erf", LLVMBuildFMul(b, x[0], cf(e, 0.70710678118654752440), ""));
    return LLVMBuildFMul(b, LLVMBuildFMul(b, cf(e, 0.5), x[0], ""), LLVMBuildFAdd(b, one, er, ""), "");
  }
  case SN_OP_GELU_GRAD: { /* (x, dy): dy (Phi(x) + x phi(x)) */
    LLVMValueRef er = libm(e, "erff", "erf", LLVMBuildFMul(b, x[0], cf(e, 0.70710678118654752440), ""));
    LLVMValueRef cdf = LLVMBuildFMul(b, cf(e, 0.5), LLVMBuildFAdd(b, one, er, ""), "");
    LLVMValueRef sq = LLVMBuildFMul(b, cf(e, -0.5), LLVMBuildFMul(b, x[0], x[0], ""), "");
    LLVMValueRef pdf = LLVMBuildFMul(b, cf(e, 0.39894228040143267794), vexp(e, sq), "");
    return LLVMBuildFMul(b, x[1], LLVMBuildFAdd(b, cdf, LLVMBuildFMul(b, x[0], pdf, ""), ""), "");
  }
  case SN_OP_GELU_TANH: /* 0.5 x (1 + tanh(u)) = x sigmoid(2u): exp, not libm's tanh, so it vectorizes */
    return LLVMBuildFDiv(b, x[0], LLVMBuildFAdd(b, one, gelu_tanh_exp(e, x[0]), ""), "");
  case SN_OP_GELU_TANH_GRAD: { /* (x, dy): dy (s + 2 x s (1 - s) u'), s = sigmoid(2u) */
    LLVMValueRef sg = LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, gelu_tanh_exp(e, x[0]), ""), "");
    LLVMValueRef x2 = LLVMBuildFMul(b, x[0], x[0], "");
    LLVMValueRef du = LLVMBuildFMul(b, cf(e, 2 * GELU_K0), LLVMBuildFAdd(b, one, LLVMBuildFMul(b, cf(e, 3 * GELU_K1), x2, ""), ""), "");
    LLVMValueRef d = LLVMBuildFMul(b, LLVMBuildFMul(b, x[0], LLVMBuildFMul(b, sg, LLVMBuildFSub(b, one, sg, ""), ""), ""), du, "");
    return LLVMBuildFMul(b, x[1], LLVMBuildFAdd(b, sg, d, ""), "");
  }
  case SN_OP_MASK_CAUSAL: { /* key (column) after the query (row r mod T): masked */
    int64_t T = op->type.dim[op->type.rank - 2];
    if (!e->col) die("mask_causal outside a column loop");
    LLVMValueRef q = LLVMBuildURem(b, e->r, ci(e, T), "");
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, e->col, q, ""), x[0], cf(e, op->c), "");
  }
  case SN_OP_ABS: return intrinsic(e, "llvm.fabs", e->ft, x, 1);
  case SN_OP_SQRT: return intrinsic(e, "llvm.sqrt", e->ft, x, 1);
  case SN_OP_DROPOUT: return dropout(e, op, x[0]);
  case SN_OP_SIGN: /* -1, 0, 1 */
    return LLVMBuildFSub(b, LLVMBuildUIToFP(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), e->ft, ""),
                         LLVMBuildUIToFP(b, LLVMBuildFCmp(b, LLVMRealOLT, x[0], zero, ""), e->ft, ""), "");
  case SN_OP_GT: return LLVMBuildUIToFP(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], x[1], ""), e->ft, "");
  case SN_OP_CLAMP: {
    LLVMValueRef lo[2] = {x[0], cf(e, op->c)};
    LLVMValueRef t1 = intrinsic(e, "llvm.maxnum", e->ft, lo, 2);
    LLVMValueRef hi[2] = {t1, cf(e, op->c2)};
    return intrinsic(e, "llvm.minnum", e->ft, hi, 2);
  }
  case SN_OP_HUBER: { /* |d| <= delta ? d^2 / 2 : delta (|d| - delta / 2) */
    LLVMValueRef ad = intrinsic(e, "llvm.fabs", e->ft, x, 1);
    LLVMValueRef q = LLVMBuildFMul(b, cf(e, 0.5), LLVMBuildFMul(b, x[0], x[0], ""), "");
    LLVMValueRef l = LLVMBuildFMul(b, cf(e, op->c), LLVMBuildFSub(b, ad, cf(e, 0.5 * op->c), ""), "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLE, ad, cf(e, op->c), ""), q, l, "");
  }
  case SN_OP_HUBER_GRAD: { /* (d, dy): dy clamp(d, -delta, delta) */
    LLVMValueRef lo[2] = {x[0], cf(e, -op->c)};
    LLVMValueRef t1 = intrinsic(e, "llvm.maxnum", e->ft, lo, 2);
    LLVMValueRef hi[2] = {t1, cf(e, op->c)};
    return LLVMBuildFMul(b, x[1], intrinsic(e, "llvm.minnum", e->ft, hi, 2), "");
  }
  case SN_OP_BROADCAST:
  case SN_OP_COPY: return x[0];
  case SN_OP_EQ:
    return LLVMBuildUIToFP(b, LLVMBuildICmp(b, LLVMIntEQ, x[0], x[1], ""), e->ft, "");
  default: die(sn_opdefs[op->code].name); return NULL;
  }
  LLVMSetFastMathFlags(t, LLVMFastMathAllowContract);
  return t;
}

/* Scalars live in the entry block, so they dominate every loop. */
static LLVMValueRef gen_scalar(emitter *e, int v) {
  if (e->scalar_memo[v]) return e->scalar_memo[v];
  const sn_op *op = &e->g->ops[v];
  LLVMBuilderRef saved = e->b;
  e->b = e->sb;
  LLVMValueRef r;
  if (op->code == SN_OP_CONST) r = cf(e, op->c);
  else if (op->code == SN_OP_INV_ROWS) r = LLVMBuildFDiv(e->b, cf(e, 1), LLVMBuildSIToFP(e->b, e->rows, e->ft, ""), "inv_rows");
  else if (sn_opdefs[op->code].cls == SN_CLS_ELEM && !computed_here(e, v) &&
           e->st->buf[v].kind == SN_BUF_NONE) {
    LLVMValueRef x[SN_MAX_IN];
    for (int i = 0; i < op->n_in; i++) x[i] = gen_scalar(e, op->in[i]);
    r = apply(e, v, x);
  } else if (!computed_here(e, v)) {
    r = LLVMBuildLoad2(e->b, e->ft, ptr_of(e, v), "");
  } else {
    die("a scalar computed from this kernel's sums is used inside the same kernel");
    r = NULL;
  }
  e->b = saved;
  return e->scalar_memo[v] = r;
}

/* Generates, at row level, the row values that the element expression of v
 * reads, so that they exist before any column loop that evaluates v. */
static void prepare(emitter *e, int v, char *seen) {
  if (seen[v] || !computed_here(e, v)) return;
  seen[v] = 1;
  const sn_op *op = &e->g->ops[v];
  if (op->code == SN_OP_ONEHOT || op->code == SN_OP_EMBED) {
    gen_row(e, op->in[op->code == SN_OP_EMBED ? 1 : 0]);
    return;
  }
  if (sn_opdefs[op->code].cls != SN_CLS_ELEM || sn_opdefs[op->code].gathers) return;
  int n_in = op->code == SN_OP_MASK_KEYS ? 1 : op->n_in; /* its mask is read in gen_elem */
  for (int i = 0; i < n_in; i++) {
    level l = level_of(e, op->in[i]);
    if (l == L_ROW) gen_row(e, op->in[i]);
    else if (l == L_ELEM) prepare(e, op->in[i], seen);
    else if (l == L_SCALAR) gen_scalar(e, op->in[i]);
  }
}

static void prepare_elem(emitter *e, int v) {
  char *seen = calloc((size_t)e->g->n, 1);
  if (!seen) abort();
  prepare(e, v, seen);
  free(seen);
}

static LLVMValueRef load_at(emitter *e, int v, LLVMValueRef idx) {
  LLVMTypeRef t = val_type(e, v);
  return LLVMBuildLoad2(e->b, t, gep(e, t, ptr_of(e, v), idx), "");
}

static LLVMValueRef load_at_ptr(emitter *e, LLVMValueRef p, LLVMValueRef idx) {
  return LLVMBuildLoad2(e->b, e->ft, gep(e, e->ft, p, idx), "");
}

static LLVMValueRef elem_index(emitter *e, int v) {
  return LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, e->r, ci(e, last_dim(&e->g->ops[v].type)), ""),
                         e->col, "");
}

/* Value of an operand of an element-level op at (r, col). */
static LLVMValueRef operand(emitter *e, int w) {
  switch (level_of(e, w)) {
  case L_ELEM: return gen_elem(e, w);
  case L_ROW:
    if (!e->row_memo[w] && computed_here(e, w)) die("row value used before it was generated");
    return gen_row(e, w);
  case L_COL: return load_at(e, w, e->col);
  case L_SCALAR: return gen_scalar(e, w);
  case L_SAMPLE: {
    LLVMValueRef pos = LLVMBuildURem(e->b, e->r, ci(e, e->k->rows_mult), "");
    return load_at(e, w, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, pos, ci(e, last_dim(&e->g->ops[w].type)), ""),
                                         e->col, ""));
  }
  }
  return NULL;
}

/* ---------------------------------------------------------------------------
 * Windows over NHWC data: the geometry of an op, and the row r of its [N, OH, OW]
 * side taken apart. */

typedef struct win {
  int64_t H, W, C, KH, KW, SH, SW, PT, PL, OH, OW, DH, DW;
  LLVMValueRef n, oh, ow; /* of the current row */
} win;

/* The current row r as (*n, *y, *x) = (r / (H W), r / W % H, r % W): counters of
 * the row loop, set from r0 in its preheader and stepped by row_grids_step. */
static void row_grid_at(emitter *e, int64_t H, int64_t W, LLVMValueRef *n, LLVMValueRef *y, LLVMValueRef *x) {
  LLVMBuilderRef b = e->b;
  struct row_grid *g = NULL;
  for (int i = 0; i < e->n_grid && !g; i++)
    if (e->grid[i].h == H && e->grid[i].w == W) g = &e->grid[i];
  if (!g && e->row_pre && e->n_grid < (int)(sizeof e->grid / sizeof e->grid[0])) {
    g = &e->grid[e->n_grid++];
    *g = (struct row_grid){H, W, entry_alloca(e, e->i64, "gn"), entry_alloca(e, e->i64, "gy"),
                           entry_alloca(e, e->i64, "gx")};
    LLVMBuilderRef pb = LLVMCreateBuilderInContext(e->ctx);
    LLVMPositionBuilderBefore(pb, LLVMGetBasicBlockTerminator(e->row_pre));
    LLVMValueRef q = LLVMBuildUDiv(pb, e->r0, ci(e, W), "");
    LLVMBuildStore(pb, LLVMBuildUDiv(pb, q, ci(e, H), ""), g->n);
    LLVMBuildStore(pb, LLVMBuildURem(pb, q, ci(e, H), ""), g->y);
    LLVMBuildStore(pb, LLVMBuildURem(pb, e->r0, ci(e, W), ""), g->x);
    LLVMDisposeBuilder(pb);
  }
  if (!g) { /* no counters (a row loop vectorized across rows, too many grids): divide */
    *n = LLVMBuildUDiv(b, e->r, ci(e, H * W), "n");
    LLVMValueRef rem = LLVMBuildURem(b, e->r, ci(e, H * W), "");
    *y = LLVMBuildUDiv(b, rem, ci(e, W), "y");
    *x = LLVMBuildURem(b, rem, ci(e, W), "x");
    return;
  }
  /* umin: no change to the value, but LLVM knows y < H and x < W, as after a division,
   * and drops the bounds checks those imply */
  LLVMValueRef ya[2] = {LLVMBuildLoad2(b, e->i64, g->y, "y"), ci(e, H - 1)};
  LLVMValueRef xa[2] = {LLVMBuildLoad2(b, e->i64, g->x, "x"), ci(e, W - 1)};
  *n = LLVMBuildLoad2(b, e->i64, g->n, "n");
  *y = intrinsic(e, "llvm.umin", e->i64, ya, 2);
  *x = intrinsic(e, "llvm.umin", e->i64, xa, 2);
}

/* At the end of a row: each grid's (n, y, x) moved on to the next row. */
static void row_grids_step(emitter *e) {
  LLVMBuilderRef b = e->b;
  for (int i = 0; i < e->n_grid; i++) {
    struct row_grid *g = &e->grid[i];
    LLVMValueRef x = LLVMBuildNSWAdd(b, LLVMBuildLoad2(b, e->i64, g->x, ""), ci(e, 1), "");
    LLVMValueRef wrap = LLVMBuildICmp(b, LLVMIntEQ, x, ci(e, g->w), "");
    LLVMBuildStore(b, LLVMBuildSelect(b, wrap, ci(e, 0), x, ""), g->x);
    LLVMValueRef y = LLVMBuildNSWAdd(b, LLVMBuildLoad2(b, e->i64, g->y, ""), LLVMBuildZExt(b, wrap, e->i64, ""), "");
    wrap = LLVMBuildICmp(b, LLVMIntEQ, y, ci(e, g->h), "");
    LLVMBuildStore(b, LLVMBuildSelect(b, wrap, ci(e, 0), y, ""), g->y);
    LLVMValueRef n = LLVMBuildNSWAdd(b, LLVMBuildLoad2(b, e->i64, g->n, ""), LLVMBuildZExt(b, wrap, e->i64, ""), "");
    LLVMBuildStore(b, n, g->n);
  }
}

static win win_of(emitter *e, const sn_op *op, const sn_type *x /* [N, H, W, C] */) {
  win w = {x->dim[0], x->dim[1], x->dim[2], op->a[SN_WIN_KH], op->a[SN_WIN_KW], op->a[SN_WIN_SH],
           op->a[SN_WIN_SW], op->a[SN_WIN_PT], op->a[SN_WIN_PL], op->a[SN_WIN_OH], op->a[SN_WIN_OW],
           op->a[SN_WIN_DH], op->a[SN_WIN_DW], NULL, NULL, NULL};
  row_grid_at(e, w.OH, w.OW, &w.n, &w.oh, &w.ow);
  return w;
}

/* Tap (i, j) of the window of the current row: whether it lies inside the
 * image, and the flat index of channel c there (0 when outside, so that loads
 * stay in bounds). Taps are DH, DW apart (dilation). */
static LLVMValueRef win_at(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, LLVMValueRef c,
                           LLVMValueRef *inside) {
  LLVMBuilderRef b = e->b;
  i = LLVMBuildMul(b, i, ci(e, w->DH), "");
  j = LLVMBuildMul(b, j, ci(e, w->DW), "");
  LLVMValueRef ih = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, w->oh, ci(e, w->SH), ""), i, ""), ci(e, w->PT), "");
  LLVMValueRef iw = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, w->ow, ci(e, w->SW), ""), j, ""), ci(e, w->PL), "");
  /* unsigned compares: negative positions are huge */
  *inside = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ih, ci(e, w->H), ""),
                         LLVMBuildICmp(b, LLVMIntULT, iw, ci(e, w->W), ""), "");
  LLVMValueRef at = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, w->n, ci(e, w->H), ""), ih, ""), ci(e, w->W), ""), iw, ""), ci(e, w->C), "");
  /* outside: channel c of pixel 0, a valid address whose value the caller drops.
   * The select is on the pixel, not the element, so where the channel is the
   * column, consecutive columns read consecutive floats (vector loads, no gathers). */
  return LLVMBuildAdd(b, LLVMBuildSelect(b, *inside, at, ci(e, 0), ""), c, "");
}

/* Positions of the window inside the image (the divisor of avg pooling):
 * (min(h0 + KH, H) - max(h0, 0)) (the same for w), h0 = oh SH - PT. */
static LLVMValueRef win_count(emitter *e, const win *w) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef h0 = LLVMBuildSub(b, LLVMBuildMul(b, w->oh, ci(e, w->SH), ""), ci(e, w->PT), "");
  LLVMValueRef w0 = LLVMBuildSub(b, LLVMBuildMul(b, w->ow, ci(e, w->SW), ""), ci(e, w->PL), "");
  LLVMValueRef a[2];
  a[0] = LLVMBuildAdd(b, h0, ci(e, w->KH), ""); a[1] = ci(e, w->H);
  LLVMValueRef hh = intrinsic(e, "llvm.smin", e->i64, a, 2);
  a[0] = h0; a[1] = ci(e, 0);
  LLVMValueRef hl = intrinsic(e, "llvm.smax", e->i64, a, 2);
  a[0] = LLVMBuildAdd(b, w0, ci(e, w->KW), ""); a[1] = ci(e, w->W);
  LLVMValueRef wh = intrinsic(e, "llvm.smin", e->i64, a, 2);
  a[0] = w0; a[1] = ci(e, 0);
  LLVMValueRef wl = intrinsic(e, "llvm.smax", e->i64, a, 2);
  LLVMValueRef cnt = LLVMBuildMul(b, LLVMBuildSub(b, hh, hl, ""), LLVMBuildSub(b, wh, wl, ""), "");
  return LLVMBuildSIToFP(b, cnt, e->ft, "");
}

/* A window of at most this many taps is unrolled by the emitter; LLVM's loop
 * unroller is off (sn_optimize), and a window loop left inside the column loop
 * would keep the columns from being vectorized. */
enum { UNROLLED_TAPS = 16 };

/* Emits body(e, w, i, j, arg) for each tap (i, j) of the window, in row-major
 * order: straight-line with constant i, j when the window is small, else in a
 * loop nest. body keeps its running state in allocas (SROA makes it SSA). */
typedef void tap_fn(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, void *arg);

static void for_taps(emitter *e, const win *w, tap_fn *body, void *arg) {
  if (w->KH * w->KW <= UNROLLED_TAPS) {
    for (int64_t i = 0; i < w->KH; i++)
      for (int64_t j = 0; j < w->KW; j++) body(e, w, ci(e, i), ci(e, j), arg);
    return;
  }
  loop Li, Lj;
  LLVMValueRef i = loop_open(e, &Li, ci(e, w->KH), "wi");
  LLVMValueRef j = loop_open(e, &Lj, ci(e, w->KW), "wj");
  body(e, w, i, j, arg);
  loop_close(e, &Lj);
  loop_close(e, &Li);
}

/* The embedding row of the current row: the id, clamped into [0, V). */
static LLVMValueRef embed_row(emitter *e, int ids, int64_t V) {
  LLVMValueRef id = gen_row(e, ids);
  id = LLVMGetTypeKind(LLVMTypeOf(id)) == LLVMIntegerTypeKind ? LLVMBuildSExt(e->b, id, e->i64, "")
                                                               : LLVMBuildFPToSI(e->b, id, e->i64, "");
  LLVMValueRef a[2] = {id, ci(e, 0)};
  id = intrinsic(e, "llvm.smax", e->i64, a, 2);
  a[0] = id;
  a[1] = ci(e, V - 1);
  return intrinsic(e, "llvm.smin", e->i64, a, 2);
}

/* The element (r, col) of a value of type t, as (o, x, i): o counts everything
 * before axis k (the batch included), x the position along it, i everything after. */
static void axis_split(emitter *e, const sn_type *t, int k, LLVMValueRef *o, LLVMValueRef *x, LLVMValueRef *i) {
  LLVMBuilderRef b = e->b;
  int64_t inner = 1;
  for (int d = k + 1; d < t->rank; d++) inner *= t->dim[d];
  LLVMValueRef f = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, e->r, ci(e, last_dim(t)), ""), e->col, "");
  *i = LLVMBuildURem(b, f, ci(e, inner), "");
  LLVMValueRef q = LLVMBuildUDiv(b, f, ci(e, inner), "");
  *x = LLVMBuildURem(b, q, ci(e, t->dim[k]), "");
  *o = LLVMBuildUDiv(b, q, ci(e, t->dim[k]), "");
}

/* the flat index of (o, x, i) in a value of type t split at axis k */
static LLVMValueRef axis_join(emitter *e, const sn_type *t, int k, LLVMValueRef o, LLVMValueRef x, LLVMValueRef i) {
  LLVMBuilderRef b = e->b;
  int64_t inner = 1;
  for (int d = k + 1; d < t->rank; d++) inner *= t->dim[d];
  LLVMValueRef ox = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, o, ci(e, t->dim[k]), ""), x, "");
  return LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, ox, ci(e, inner), ""), i, "");
}

/* attention's heads: split_heads reads part a[0] of [N, T, P*D] as [N, H, T, d];
 * merge_heads, its gradient, writes [N, H, T, d] back as part a[0] (zeros elsewhere) */
static LLVMValueRef gather_heads(emitter *e, const sn_op *op) {
  LLVMBuilderRef b = e->b;
  if (op->code == SN_OP_SPLIT_HEADS) { /* row r = (n, h, t), column k: x[n, t, part D + h d + k] */
    const sn_type *t = &op->type;
    int64_t H = t->dim[0], T = t->dim[1], d = t->dim[2];
    LLVMValueRef tt = LLVMBuildURem(b, e->r, ci(e, T), "");
    LLVMValueRef nh = LLVMBuildUDiv(b, e->r, ci(e, T), "");
    LLVMValueRef h = LLVMBuildURem(b, nh, ci(e, H), ""), n = LLVMBuildUDiv(b, nh, ci(e, H), "");
    LLVMValueRef row = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, n, ci(e, T), ""), tt, "");
    LLVMValueRef at = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, row, ci(e, op->a[1] * H * d), ""),
                                      LLVMBuildNSWMul(b, h, ci(e, d), ""), "");
    at = LLVMBuildNSWAdd(b, at, ci(e, op->a[0] * H * d), "");
    return load_at(e, op->in[0], LLVMBuildNSWAdd(b, at, e->col, ""));
  }
  /* merge_heads: row r = (n, t), column c = (part, h, k): dy[n, h, t, k] in part a[0] */
  const sn_type *x = &e->g->ops[op->in[0]].type;
  int64_t H = x->dim[0], T = x->dim[1], d = x->dim[2], D = H * d;
  LLVMValueRef n = LLVMBuildUDiv(b, e->r, ci(e, T), ""), tt = LLVMBuildURem(b, e->r, ci(e, T), "");
  LLVMValueRef rel = LLVMBuildNSWSub(b, e->col, ci(e, op->a[0] * D), "");
  LLVMValueRef in = LLVMBuildICmp(b, LLVMIntULT, rel, ci(e, D), "");
  LLVMValueRef safe = LLVMBuildSelect(b, in, rel, ci(e, 0), "");
  LLVMValueRef h = LLVMBuildUDiv(b, safe, ci(e, d), ""), k = LLVMBuildURem(b, safe, ci(e, d), "");
  LLVMValueRef row = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, n, ci(e, H), ""), h, ""), ci(e, T), ""), tt, "");
  LLVMValueRef val = load_at(e, op->in[0], LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, row, ci(e, d), ""), k, ""));
  return LLVMBuildSelect(b, in, val, cf(e, 0), "");
}

/* col2im: dx[n, y, x, c] = sum of dpatches[n, oh, ow, (i, j, c)] over the windows
 * (oh, ow) whose tap (i, j) lands on (y, x). */
static LLVMValueRef gather_col2im(emitter *e, const sn_op *op) {
  LLVMBuilderRef b = e->b;
  const sn_type *t = &op->type, *pt = &e->g->ops[op->in[0]].type;
  int64_t H = t->dim[0], W = t->dim[1], C = t->dim[2];
  int64_t KH = op->a[SN_WIN_KH], KW = op->a[SN_WIN_KW], SH = op->a[SN_WIN_SH], SW = op->a[SN_WIN_SW];
  int64_t DH = op->a[SN_WIN_DH], DW = op->a[SN_WIN_DW];
  int64_t OH = pt->dim[0], OW = pt->dim[1], K = pt->dim[2];
  LLVMValueRef n, y, x;
  row_grid_at(e, H, W, &n, &y, &x);
  y = LLVMBuildAdd(b, y, ci(e, op->a[SN_WIN_PT]), "");
  x = LLVMBuildAdd(b, x, ci(e, op->a[SN_WIN_PL]), "");
  LLVMValueRef sum = cf(e, 0);
  for (int64_t i = 0; i < KH; i++) /* KH x KW taps, unrolled: windows are small */
    for (int64_t j = 0; j < KW; j++) {
      LLVMValueRef py = LLVMBuildSub(b, y, ci(e, i * DH), ""), px = LLVMBuildSub(b, x, ci(e, j * DW), "");
      LLVMValueRef oh = LLVMBuildUDiv(b, py, ci(e, SH), ""), ow = LLVMBuildUDiv(b, px, ci(e, SW), "");
      /* py >= 0 (unsigned), on the stride grid, inside the output */
      LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, oh, ci(e, OH), ""),
                                     LLVMBuildICmp(b, LLVMIntULT, ow, ci(e, OW), ""), "");
      ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildURem(b, py, ci(e, SH), ""), ci(e, 0), ""), "");
      ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildURem(b, px, ci(e, SW), ""), ci(e, 0), ""), "");
      ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntULE, py, ci(e, (OH - 1) * SH), ""), "");
      LLVMValueRef row = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, n, ci(e, OH), ""), oh, ""), ci(e, OW), ""), ow, "");
      /* the select on the row's tap, not the element: contiguous vector loads */
      LLVMValueRef at = LLVMBuildAdd(b, LLVMBuildMul(b, row, ci(e, K), ""), ci(e, (i * KW + j) * C), "");
      LLVMValueRef idx = LLVMBuildAdd(b, LLVMBuildSelect(b, ok, at, ci(e, 0), ""), e->col, "");
      LLVMValueRef v2 = load_at(e, op->in[0], idx);
      sum = LLVMBuildFAdd(b, sum, LLVMBuildSelect(b, ok, v2, cf(e, 0), ""), "");
    }
  return sum;
}

/* max_unpool: the one window holding (y, x), if any: dy there when (y, x) is the
 * window's first max. */
static LLVMValueRef gather_max_unpool(emitter *e, const sn_op *op) {
  LLVMBuilderRef b = e->b;
  const sn_type *t = &op->type;
  int64_t H = t->dim[0], W = t->dim[1], C = t->dim[2];
  int64_t KH = op->a[SN_WIN_KH], KW = op->a[SN_WIN_KW], SH = op->a[SN_WIN_SH], SW = op->a[SN_WIN_SW];
  int64_t PT = op->a[SN_WIN_PT], PL = op->a[SN_WIN_PL], OH = op->a[SN_WIN_OH], OW = op->a[SN_WIN_OW];
  LLVMValueRef n, py, px;
  row_grid_at(e, H, W, &n, &py, &px);
  py = LLVMBuildAdd(b, py, ci(e, PT), "");
  px = LLVMBuildAdd(b, px, ci(e, PL), "");
  LLVMValueRef oh = LLVMBuildUDiv(b, py, ci(e, SH), ""), ti = LLVMBuildURem(b, py, ci(e, SH), "");
  LLVMValueRef ow = LLVMBuildUDiv(b, px, ci(e, SW), ""), tj = LLVMBuildURem(b, px, ci(e, SW), "");
  LLVMValueRef here = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ti, ci(e, KH), ""),
                                   LLVMBuildICmp(b, LLVMIntULT, tj, ci(e, KW), ""), "");
  here = LLVMBuildAnd(b, here, LLVMBuildICmp(b, LLVMIntULT, oh, ci(e, OH), ""), "");
  here = LLVMBuildAnd(b, here, LLVMBuildICmp(b, LLVMIntULT, ow, ci(e, OW), ""), "");
  /* at: the first max's tap as an i32, so that a vectorized column loop selects
   * 16 taps in one AVX-512 register rather than two */
  LLVMValueRef best = cf(e, -__builtin_inf()), at = i32c(e, -1);
  for (int64_t i = 0; i < KH; i++) /* the window's first max, in max_pool_grad's order */
    for (int64_t j = 0; j < KW; j++) {
      LLVMValueRef ih = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, oh, ci(e, SH), ""), ci(e, i), ""), ci(e, PT), "");
      LLVMValueRef iw = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, ow, ci(e, SW), ""), ci(e, j), ""), ci(e, PL), "");
      LLVMValueRef inside = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ih, ci(e, H), ""),
                                         LLVMBuildICmp(b, LLVMIntULT, iw, ci(e, W), ""), "");
      inside = LLVMBuildAnd(b, inside, here, "");
      LLVMValueRef px0 = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, n, ci(e, H), ""), ih, ""), ci(e, W), ""), iw, ""), ci(e, C), "");
      LLVMValueRef idx = LLVMBuildAdd(b, LLVMBuildSelect(b, inside, px0, ci(e, 0), ""), e->col, "");
      LLVMValueRef x = load_at(e, op->in[1], idx);
      LLVMValueRef better = LLVMBuildAnd(b, inside, LLVMBuildFCmp(b, LLVMRealOGT, x, best, ""), "");
      best = LLVMBuildSelect(b, better, x, best, "");
      at = LLVMBuildSelect(b, better, i32c(e, i * KW + j), at, "");
    }
  LLVMValueRef mine = LLVMBuildTrunc(b, LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, ti, ci(e, KW), ""), tj, ""), e->i32, "");
  LLVMValueRef hit = LLVMBuildAnd(b, here, LLVMBuildICmp(b, LLVMIntEQ, at, mine, ""), "");
  LLVMValueRef wpos = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, n, ci(e, OH), ""), oh, ""), ci(e, OW), ""), ow, ""), ci(e, C), "");
  LLVMValueRef dy = load_at(e, op->in[0], LLVMBuildAdd(b, LLVMBuildSelect(b, here, wpos, ci(e, 0), ""), e->col, ""));
  return LLVMBuildSelect(b, hit, dy, cf(e, 0), "");
}

/* transpose: out element -> in element through the permutation a[]; for batch data
 * what is left of the flat index is the sample. */
static LLVMValueRef gather_transpose(emitter *e, const sn_op *op) {
  LLVMBuilderRef b = e->b;
  const sn_type *in = &e->g->ops[op->in[0]].type, *t = &op->type;
  int rank = t->rank;
  LLVMValueRef flat = LLVMBuildAdd(b, LLVMBuildMul(b, e->r, ci(e, t->dim[rank - 1]), ""), e->col, "");
  LLVMValueRef coord[SN_MAX_RANK];
  for (int k = rank - 1; k >= 0; k--) {
    coord[k] = LLVMBuildURem(b, flat, ci(e, t->dim[k]), "");
    flat = LLVMBuildUDiv(b, flat, ci(e, t->dim[k]), "");
  }
  LLVMValueRef src = t->batched ? flat : ci(e, 0); /* in coordinate d is out coordinate k where a[k] = d */
  for (int d = 0; d < rank; d++) {
    int k = 0;
    while (op->a[k] != d) k++;
    src = LLVMBuildAdd(b, LLVMBuildMul(b, src, ci(e, in->dim[d]), ""), coord[k], "");
  }
  return load_at(e, op->in[0], src);
}

/* max_pool, avg_pool: tap (i, j) taken into the running max or sum */
typedef struct pool_acc {
  const sn_op *op;
  LLVMValueRef acc; /* alloca of e->ft */
} pool_acc;

static void pool_tap(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, void *arg) {
  pool_acc *pa = arg;
  LLVMValueRef inside, idx = win_at(e, w, i, j, e->col, &inside);
  LLVMValueRef x = load_at(e, pa->op->in[0], idx), cur = LLVMBuildLoad2(e->b, e->ft, pa->acc, "");
  LLVMValueRef a[2] = {cur, x};
  LLVMValueRef nv = pa->op->code == SN_OP_MAX_POOL ? intrinsic(e, "llvm.maxnum", e->ft, a, 2)
                                                  : LLVMBuildFAdd(e->b, cur, x, "");
  LLVMBuildStore(e->b, LLVMBuildSelect(e->b, inside, nv, cur, ""), pa->acc);
}

/* conv and conv_wgrad: body(e, k, x, arg) for each row k = (kh, kw, c) of the
 * weight [KH*KW*C, F], x being the input's value at that tap and channel for the
 * current row (0 outside the image: padding). Straight-line when the patch is
 * small (build_graph.c makes conv only for those), else in loops. */
enum { UNROLLED_PATCH = 32 };
typedef void conv_fn(emitter *e, LLVMValueRef k, LLVMValueRef x, void *arg);

typedef struct conv_patch {
  const win *w;
  LLVMValueRef h0, w0; /* the window's top left position in the image (may be outside) */
  LLVMValueRef xrow;   /* x's address of (h0, w0) for the current row's sample */
  conv_fn *body;
  void *arg;
} conv_patch;

/* A constant zero of the module (8 bytes: a float or a double), for loads that
 * fall outside an image: the load of x or of this, by a select of the address,
 * needs no mask and can be an operand (a broadcast) of the instruction using it.
 * (A zero on the kernel's stack instead: LLVM turns the loads into gathers.) */
static LLVMValueRef zero_slot(emitter *e) {
  LLVMValueRef z = LLVMGetNamedGlobal(e->mod, "sn.zero");
  if (z) return z;
  z = LLVMAddGlobal(e->mod, e->f64, "sn.zero");
  LLVMSetInitializer(z, LLVMConstReal(e->f64, 0));
  LLVMSetGlobalConstant(z, 1);
  LLVMSetLinkage(z, LLVMInternalLinkage);
  LLVMSetAlignment(z, 8);
  return z;
}

/* Tap (i, j), channel c: its address is a constant away from the row's xrow when
 * i, j, c are constants; outside the image it is zero_slot's. (GEPs without
 * inbounds: the address outside is formed, then not used.) */
static void conv_tap_channel(emitter *e, LLVMValueRef i, LLVMValueRef j, LLVMValueRef c,
                             conv_patch *cp) {
  LLVMBuilderRef b = e->b;
  const win *w = cp->w;
  i = LLVMBuildMul(b, i, ci(e, w->DH), "");
  j = LLVMBuildMul(b, j, ci(e, w->DW), "");
  LLVMValueRef inside = LLVMBuildAnd(
      b, LLVMBuildICmp(b, LLVMIntULT, LLVMBuildAdd(b, cp->h0, i, ""), ci(e, w->H), ""),
      LLVMBuildICmp(b, LLVMIntULT, LLVMBuildAdd(b, cp->w0, j, ""), ci(e, w->W), ""), "");
  LLVMValueRef off = LLVMBuildAdd(
      b,
      LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, i, ci(e, w->W), ""), j, ""), ci(e, w->C), ""),
      c, "");
  LLVMValueRef p = LLVMBuildGEP2(b, e->ft, cp->xrow, &off, 1, "");
  LLVMValueRef x = LLVMBuildLoad2(b, e->ft, LLVMBuildSelect(b, inside, p, zero_slot(e), ""), "");
  LLVMValueRef k = LLVMBuildNSWAdd(
      b,
      LLVMBuildNSWMul(b, LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, i, ci(e, w->KW), ""), j, ""),
                      ci(e, w->C), ""),
      c, "");
  cp->body(e, k, x, cp->arg);
}

static void conv_tap(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, void *arg) {
  loop L;
  LLVMValueRef c = loop_open(e, &L, ci(e, w->C), "ch");
  conv_tap_channel(e, i, j, c, arg);
  loop_close(e, &L);
}

static void conv_patch_each(emitter *e, const sn_op *op, int xv, conv_fn *body, void *arg) {
  LLVMBuilderRef b = e->b;
  win w = win_of(e, op, &e->g->ops[xv].type);
  LLVMValueRef h0 = LLVMBuildSub(b, LLVMBuildMul(b, w.oh, ci(e, w.SH), ""), ci(e, w.PT), "");
  LLVMValueRef w0 = LLVMBuildSub(b, LLVMBuildMul(b, w.ow, ci(e, w.SW), ""), ci(e, w.PL), "");
  LLVMValueRef at = LLVMBuildMul(
      b,
      LLVMBuildAdd(b,
                   LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, w.n, ci(e, w.H), ""), h0, ""),
                                ci(e, w.W), ""),
                   w0, ""),
      ci(e, w.C), "");
  conv_patch cp = {&w, h0, w0, LLVMBuildGEP2(b, e->ft, ptr_of(e, xv), &at, 1, ""), body, arg};
  if (w.KH * w.KW * w.C > UNROLLED_PATCH) {
    for_taps(e, &w, conv_tap, &cp);
    return;
  }
  for (int64_t i = 0; i < w.KH; i++)
    for (int64_t j = 0; j < w.KW; j++)
      for (int64_t c = 0; c < w.C; c++) conv_tap_channel(e, ci(e, i), ci(e, j), ci(e, c), &cp);
}

/* conv at (r, col): the sum over the patch of x times w[k, col], the terms in
 * im2col's column order dealt to three chains of FMAs (a row's nine terms are not
 * one chain of nine latencies), added at the end */
enum { CONV_CHAINS = 3 };
typedef struct conv_sum {
  int wv;                        /* the weight [KH*KW*C, F] */
  LLVMValueRef acc[CONV_CHAINS]; /* allocas of e->ft */
  int terms;
} conv_sum;

static void conv_term(emitter *e, LLVMValueRef k, LLVMValueRef x, void *arg) {
  conv_sum *cs = arg;
  int64_t F = last_dim(&e->g->ops[cs->wv].type);
  LLVMValueRef acc = cs->acc[cs->terms++ % CONV_CHAINS];
  LLVMValueRef wk =
      load_at(e, cs->wv, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, k, ci(e, F), ""), e->col, ""));
  LLVMValueRef a[3] = {x, wk, LLVMBuildLoad2(e->b, e->ft, acc, "")};
  LLVMBuildStore(e->b, intrinsic(e, "llvm.fmuladd", e->ft, a, 3), acc);
}

static LLVMValueRef gather_conv(emitter *e, const sn_op *op) {
  conv_sum cs = {op->in[1], {NULL}, 0};
  for (int i = 0; i < CONV_CHAINS; i++) {
    cs.acc[i] = entry_alloca(e, e->ft, "conv");
    LLVMBuildStore(e->b, cf(e, 0), cs.acc[i]);
  }
  conv_patch_each(e, op, op->in[0], conv_term, &cs);
  LLVMValueRef r = LLVMBuildLoad2(e->b, e->ft, cs.acc[0], "");
  for (int i = 1; i < CONV_CHAINS; i++)
    r = LLVMBuildFAdd(e->b, r, LLVMBuildLoad2(e->b, e->ft, cs.acc[i], ""), "");
  return r;
}

/* Ops that read their (materialized) inputs at computed positions. */
static LLVMValueRef gen_gather(emitter *e, int v) {
  const sn_op *op = &e->g->ops[v];
  LLVMBuilderRef b = e->b;
  switch (op->code) {
  case SN_OP_IM2COL: { /* column k = (i, j, c) */
    win w = win_of(e, op, &e->g->ops[op->in[0]].type);
    LLVMValueRef c = e->chan ? e->chan : LLVMBuildURem(b, e->col, ci(e, w.C), "");
    LLVMValueRef ij = e->tap ? e->tap : LLVMBuildUDiv(b, e->col, ci(e, w.C), "");
    LLVMValueRef inside, idx = win_at(e, &w, LLVMBuildUDiv(b, ij, ci(e, w.KW), ""),
                                      LLVMBuildURem(b, ij, ci(e, w.KW), ""), c, &inside);
    return LLVMBuildSelect(b, inside, load_at(e, op->in[0], idx), cf(e, 0), "");
  }
  case SN_OP_COL2IM: return gather_col2im(e, op);
  case SN_OP_CONV: return gather_conv(e, op);
  case SN_OP_MAX_UNPOOL: return gather_max_unpool(e, op);
  case SN_OP_TRANSPOSE: return gather_transpose(e, op);
  case SN_OP_MAX_POOL:
  case SN_OP_AVG_POOL: {
    bool mx = op->code == SN_OP_MAX_POOL;
    win w = win_of(e, op, &e->g->ops[op->in[0]].type);
    pool_acc pa = {op, entry_alloca(e, e->ft, "pool")};
    LLVMBuildStore(b, cf(e, mx ? -__builtin_inf() : 0.0), pa.acc);
    for_taps(e, &w, pool_tap, &pa);
    LLVMValueRef r = LLVMBuildLoad2(e->b, e->ft, pa.acc, "");
    return mx ? r : LLVMBuildFDiv(e->b, r, win_count(e, &w), "");
  }
  case SN_OP_EMBED: {
    const sn_type *tab = &e->g->ops[op->in[0]].type;
    LLVMValueRef id = embed_row(e, op->in[1], tab->dim[0]);
    return load_at(e, op->in[0], LLVMBuildAdd(b, LLVMBuildMul(b, id, ci(e, tab->dim[1]), ""), e->col, ""));
  }
  case SN_OP_CONCAT: { /* along axis k: x < Ak ? a[o, x, i] : b[o, x - Ak, i]; both loads in bounds */
    const sn_type *ta = &e->g->ops[op->in[0]].type, *tb = &e->g->ops[op->in[1]].type;
    int axis = (int)op->a[0];
    int64_t ka = ta->dim[axis];
    LLVMValueRef o, x, i;
    axis_split(e, &op->type, axis, &o, &x, &i);
    LLVMValueRef lt = LLVMBuildICmp(b, LLVMIntSLT, x, ci(e, ka), "");
    LLVMValueRef xa = LLVMBuildSelect(b, lt, x, ci(e, ka - 1), "");
    LLVMValueRef xb = LLVMBuildSelect(b, lt, ci(e, 0), LLVMBuildNSWSub(b, x, ci(e, ka), ""), "");
    LLVMValueRef va = load_at(e, op->in[0], axis_join(e, ta, axis, o, xa, i));
    LLVMValueRef vb = load_at(e, op->in[1], axis_join(e, tb, axis, o, xb, i));
    return LLVMBuildSelect(b, lt, va, vb, "");
  }
  case SN_OP_SLICE: { /* x[o, off + x, i] along axis a[1] */
    const sn_type *tx = &e->g->ops[op->in[0]].type;
    int axis = (int)op->a[1];
    LLVMValueRef o, x, i;
    axis_split(e, &op->type, axis, &o, &x, &i);
    return load_at(e, op->in[0], axis_join(e, tx, axis, o, LLVMBuildNSWAdd(b, x, ci(e, op->a[0]), ""), i));
  }
  case SN_OP_SPLIT_HEADS:
  case SN_OP_MERGE_HEADS: return gather_heads(e, op);
  default: die(sn_opdefs[op->code].name); return NULL;
  }
}

/* mask_keys at (r, col): row r = (n, ..), column j the key; x there when m[n, j]
 * keeps the key, else c. Consecutive columns read consecutive mask values. */
static LLVMValueRef mask_keys(emitter *e, const sn_op *op) {
  if (!e->col) die("mask_keys outside a column loop");
  LLVMBuilderRef b = e->b;
  const sn_type *t = &op->type;
  int64_t T = t->dim[t->rank - 1], per_sample = 1;
  for (int i = 0; i < t->rank - 1; i++) per_sample *= t->dim[i];
  LLVMValueRef x = operand(e, op->in[0]);
  LLVMValueRef n = LLVMBuildUDiv(b, e->r, ci(e, per_sample), "");
  LLVMValueRef at = LLVMBuildNSWAdd(b, LLVMBuildNSWMul(b, n, ci(e, T), ""), e->col, "");
  LLVMValueRef m = load_at(e, op->in[1], at);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, m, cf(e, 0.5), ""), x, cf(e, op->c), "");
}

static LLVMValueRef gen_elem(emitter *e, int v) {
  if (e->elem_memo[v]) return e->elem_memo[v];
  const sn_op *op = &e->g->ops[v];
  LLVMValueRef r;
  if (!computed_here(e, v)) {
    r = load_at(e, v, elem_index(e, v));
  } else if (sn_opdefs[op->code].gathers) {
    r = gen_gather(e, v);
  } else if (op->code == SN_OP_ONEHOT) {
    LLVMValueRef idx = LLVMBuildSExt(e->b, gen_row(e, op->in[0]), e->i64, "");
    r = LLVMBuildUIToFP(e->b, LLVMBuildICmp(e->b, LLVMIntEQ, idx, e->col, ""), e->ft, "");
  } else if (op->code == SN_OP_MASK_KEYS) {
    r = mask_keys(e, op);
  } else {
    LLVMValueRef x[SN_MAX_IN];
    for (int i = 0; i < op->n_in; i++) x[i] = operand(e, op->in[i]);
    r = apply(e, v, x);
  }
  return e->elem_memo[v] = r;
}

static void reset_elem_memo(emitter *e) {
  memset(e->elem_memo, 0, sizeof(LLVMValueRef) * (size_t)e->g->n);
}

/* A reduction over the last dim of x for the current row: one column loop. */
static LLVMValueRef reduce_row(emitter *e, int v) {
  const sn_op *op = &e->g->ops[v];
  int x = op->in[0];
  if (level_of(e, x) == L_ROW) /* a row value, over its last axis of 1: itself */
    return op->code == SN_OP_ROW_ARGMAX ? LLVMConstInt(e->i32, 0, 0) : gen_row(e, x);
  prepare_elem(e, x);
  int64_t C = last_dim(&e->g->ops[x].type);
  LLVMValueRef acc = entry_alloca(e, e->ft, "acc"), best = NULL;
  double init = op->code == SN_OP_ROW_SUM ? 0.0 : -__builtin_inf();
  LLVMBuildStore(e->b, cf(e, init), acc);
  if (op->code == SN_OP_ROW_ARGMAX) {
    best = entry_alloca(e, e->i32, "argmax");
    LLVMBuildStore(e->b, LLVMConstInt(e->i32, 0, 0), best);
  }
  loop L;
  e->col = loop_open(e, &L, ci(e, C), "c");
  reset_elem_memo(e);
  LLVMValueRef val = gen_elem(e, x), cur = LLVMBuildLoad2(e->b, e->ft, acc, ""), nv;
  if (op->code == SN_OP_ROW_SUM) {
    nv = LLVMBuildFAdd(e->b, cur, val, "");
    fast(nv);
  } else if (op->code == SN_OP_ROW_MAX) {
    LLVMValueRef a[2] = {cur, val};
    nv = intrinsic(e, "llvm.maxnum", e->ft, a, 2);
  } else {
    LLVMValueRef gt = LLVMBuildFCmp(e->b, LLVMRealOGT, val, cur, "");
    nv = LLVMBuildSelect(e->b, gt, val, cur, "");
    LLVMValueRef bi = LLVMBuildLoad2(e->b, e->i32, best, "");
    LLVMBuildStore(e->b, LLVMBuildSelect(e->b, gt, LLVMBuildTrunc(e->b, e->col, e->i32, ""), bi, ""), best);
  }
  LLVMBuildStore(e->b, nv, acc);
  loop_close(e, &L);
  e->col = NULL;
  if (op->code == SN_OP_ROW_ARGMAX) return LLVMBuildLoad2(e->b, e->i32, best, "");
  return LLVMBuildLoad2(e->b, e->ft, acc, "");
}

static LLVMValueRef gen_row(emitter *e, int v) {
  if (e->row_memo[v]) return e->row_memo[v];
  const sn_op *op = &e->g->ops[v];
  LLVMValueRef r;
  if (!computed_here(e, v)) {
    r = load_at(e, v, e->r);
  } else if (op->code == SN_OP_PICK) {
    int x = op->in[0];
    LLVMValueRef idx = LLVMBuildSExt(e->b, gen_row(e, op->in[1]), e->i64, "");
    prepare_elem(e, x);
    reset_elem_memo(e);
    e->col = idx;
    r = gen_elem(e, x);
    e->col = NULL;
    reset_elem_memo(e);
  } else if (sn_opdefs[op->code].cls == SN_CLS_ROWRED) {
    r = reduce_row(e, v);
  } else if (sn_opdefs[op->code].cls == SN_CLS_ELEM) {
    LLVMValueRef x[SN_MAX_IN];
    for (int i = 0; i < op->n_in; i++) {
      int w = op->in[i];
      x[i] = level_of(e, w) == L_SCALAR ? gen_scalar(e, w) : gen_row(e, w);
    }
    r = apply(e, v, x);
  } else {
    die("unexpected op at row level");
    r = NULL;
  }
  return e->row_memo[v] = r;
}

/* ---------------------------------------------------------------------------
 * Scatter accumulations (gradients of the gathering ops): zeroed at kernel entry,
 * then each element (r, c) of dy adds into the positions its forward op read. */

static bool is_scatter(sn_opcode c) {
  return c == SN_OP_MAX_POOL_GRAD || c == SN_OP_AVG_POOL_GRAD || c == SN_OP_SCATTER_ROWS || c == SN_OP_BATCH_SUM;
}

static void add_into(emitter *e, int v, LLVMValueRef idx, LLVMValueRef val) {
  LLVMValueRef p = gep(e, e->ft, ptr_of(e, v), idx);
  LLVMBuildStore(e->b, LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->ft, p, ""), val, ""), p);
}

/* The pooling gradients' window state: avg_pool_grad adds val (dy's share) into
 * value v at each tap; max_pool_grad finds the window's first max of x = value v,
 * val and at being allocas of the best value and its flat index. */
typedef struct pool_grad {
  int v;
  LLVMValueRef val, at;
} pool_grad;

static void avg_pool_grad_tap(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, void *arg) {
  pool_grad *pg = arg;
  LLVMValueRef inside, idx = win_at(e, w, i, j, e->col, &inside);
  add_into(e, pg->v, idx, LLVMBuildSelect(e->b, inside, pg->val, cf(e, 0), ""));
}

static void max_pool_grad_tap(emitter *e, const win *w, LLVMValueRef i, LLVMValueRef j, void *arg) {
  pool_grad *pg = arg;
  LLVMValueRef inside, idx = win_at(e, w, i, j, e->col, &inside);
  LLVMValueRef x = load_at(e, pg->v, idx), cur = LLVMBuildLoad2(e->b, e->ft, pg->val, "");
  LLVMValueRef better = LLVMBuildAnd(e->b, inside, LLVMBuildFCmp(e->b, LLVMRealOGT, x, cur, ""), "");
  LLVMBuildStore(e->b, LLVMBuildSelect(e->b, better, x, cur, ""), pg->val);
  LLVMBuildStore(e->b, LLVMBuildSelect(e->b, better, idx, LLVMBuildLoad2(e->b, e->i64, pg->at, ""), ""), pg->at);
}

static void emit_scatter(emitter *e, int v) {
  const sn_op *op = &e->g->ops[v];
  LLVMBuilderRef b = e->b;
  LLVMValueRef dy = gen_elem(e, op->in[0]), zero = cf(e, 0);
  switch (op->code) {
  case SN_OP_AVG_POOL_GRAD: {
    win w = win_of(e, op, &op->type);
    pool_grad pg = {v, LLVMBuildFDiv(b, dy, win_count(e, &w), ""), NULL};
    for_taps(e, &w, avg_pool_grad_tap, &pg);
    break;
  }
  case SN_OP_MAX_POOL_GRAD: { /* find the first max of the window again, add dy there */
    win w = win_of(e, op, &op->type);
    pool_grad pg = {op->in[1], entry_alloca(e, e->ft, "best"), entry_alloca(e, e->i64, "at")};
    LLVMBuildStore(b, cf(e, -__builtin_inf()), pg.val);
    LLVMBuildStore(b, ci(e, -1), pg.at);
    for_taps(e, &w, max_pool_grad_tap, &pg);
    LLVMValueRef a = LLVMBuildLoad2(e->b, e->i64, pg.at, "");
    LLVMValueRef found = LLVMBuildICmp(e->b, LLVMIntSGE, a, ci(e, 0), "");
    add_into(e, v, LLVMBuildSelect(e->b, found, a, ci(e, 0), ""), LLVMBuildSelect(e->b, found, dy, zero, ""));
    break;
  }
  case SN_OP_SCATTER_ROWS: {
    LLVMValueRef id = embed_row(e, op->in[1], op->type.dim[0]);
    add_into(e, v, LLVMBuildAdd(b, LLVMBuildMul(b, id, ci(e, op->type.dim[1]), ""), e->col, ""), dy);
    break;
  }
  case SN_OP_BATCH_SUM: { /* row r is position r mod (rows per sample) */
    LLVMValueRef pos = LLVMBuildURem(b, e->r, ci(e, e->k->rows_mult), "");
    add_into(e, v, LLVMBuildAdd(b, LLVMBuildMul(b, pos, ci(e, last_dim(&op->type)), ""), e->col, ""), dy);
    break;
  }
  default: die("not a scatter");
  }
}

/* Accumulations over rows by columns of their first input: colsum ([C]) and
 * conv_wgrad ([KH*KW*C, F], a row of sums per tap and channel). */
static bool sums_columns(sn_opcode c) { return c == SN_OP_COLSUM || c == SN_OP_CONV_WGRAD; }

/* conv_wgrad at (r, col): row k of the result gains x(k) dy[r, col] */
typedef struct conv_grad {
  int v;
  LLVMValueRef dy;
} conv_grad;

static void conv_grad_term(emitter *e, LLVMValueRef k, LLVMValueRef x, void *arg) {
  conv_grad *cg = arg;
  int64_t F = last_dim(&e->g->ops[cg->v].type);
  LLVMValueRef p = gep(e, e->ft, ptr_of(e, cg->v),
                       LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, k, ci(e, F), ""), e->col, ""));
  LLVMValueRef a[3] = {x, cg->dy, LLVMBuildLoad2(e->b, e->ft, p, "")};
  LLVMBuildStore(e->b, intrinsic(e, "llvm.fmuladd", e->ft, a, 3), p);
}

static void emit_conv_wgrad(emitter *e, int v) {
  const sn_op *op = &e->g->ops[v];
  conv_grad cg = {v, gen_elem(e, op->in[0])};
  conv_patch_each(e, op, op->in[1], conv_grad_term, &cg);
}

/* ---------------------------------------------------------------------------
 * Kernels */

/* Values at one memory location share one pointer argument: a kernel that reads a
 * running statistic and writes its new value must not see two noalias pointers
 * to the same memory. */
static bool same_place(emitter *e, int a, int b) {
  if (a == b) return true;
  const sn_buf *x = &e->st->buf[a], *y = &e->st->buf[b];
  return x->kind == y->kind && x->offset == y->offset &&
         (x->kind == SN_BUF_STATE || x->kind == SN_BUF_PARAMS || x->kind == SN_BUF_GRADS);
}

static void add_ref(emitter *e, int v, int *refs, int *n) {
  v = sn_plan_base(e->g, v);
  for (int i = 0; i < *n; i++)
    if (same_place(e, refs[i], v)) {
      if (refs[i] != v) e->alias[v] = refs[i];
      return;
    }
  refs[(*n)++] = v;
}

/* The buffers a fused kernel touches: what it loads from other kernels or sources
 * and what it writes. */
static int kernel_refs(emitter *e, const sn_kernel *k, int *refs) {
  int n = 0;
  for (int i = 0; i < k->n_ops; i++) {
    const sn_op *op = &e->g->ops[k->ops[i]];
    for (int j = 0; j < op->n_in; j++) {
      int w = op->in[j], b = sn_plan_base(e->g, w);
      if (e->st->kernel_of[b] == e->kidx && b == w) continue;
      if (e->st->buf[b].kind == SN_BUF_NONE) continue; /* free scalar */
      add_ref(e, w, refs, &n);
    }
  }
  for (int i = 0; i < k->n_roots; i++) add_ref(e, k->roots[i], refs, &n);
  return n;
}

/* A fused kernel is `void kS_K(i64 rows, i64 rng, i64 r0, i64 r1, ptr noalias...)`:
 * its row loop runs rows r0..r1 of R = rows x rows_mult. */
enum { KERNEL_ARGS = 4 };

/* Whether the rows of kernel k can run on different threads: nothing sums over
 * rows (column sums, totals) or scatters into other rows. */
static bool rows_independent(const sn_graph *g, const sn_kernel *k) {
  for (int i = 0; i < k->n_roots; i++) {
    sn_opcode c = g->ops[k->roots[i]].code;
    if (sums_columns(c) || c == SN_OP_SUM_ALL || is_scatter(c)) return false;
  }
  return true;
}

/* elements a row of kernel k writes: what a part of its rows must amount to */
static int64_t row_width(const sn_graph *g, const sn_kernel *k) {
  int64_t w = 0;
  for (int i = 0; i < k->n_roots; i++) w += last_dim(&g->ops[k->roots[i]].type);
  return w > 0 ? w : 1;
}

/* Whether kernel k's row loop is kept from being vectorized: every column loop is
 * at least ROW_VECTOR_MIN elements wide. LLVM unrolls a short constant column
 * loop completely and would then vectorize the row loop across rows, with one
 * strided gather or scatter per column (AVX-512); kept off, the unrolled columns
 * of a row become one contiguous vector load, op and store (SLP). Kernels with
 * narrower rows (1 to 3 columns) do better vectorized across rows. */
enum { ROW_VECTOR_MIN = 4 };
static bool rows_stay_scalar(emitter *e, const sn_kernel *k) {
  bool any = false;
  for (int i = 0; i < k->n_roots; i++) {
    int v = k->roots[i];
    const sn_op *op = &e->g->ops[v];
    bool colsum = sums_columns(op->code) || is_scatter(op->code);
    if (op->code == SN_OP_SUM_ALL || (!colsum && level_of(e, v) != L_ELEM)) continue;
    if (last_dim(&e->g->ops[colsum ? op->in[0] : v].type) < ROW_VECTOR_MIN) return false;
    any = true;
  }
  return any;
}

/* Before the row loop: the column sums (colsum) and scattered outputs zeroed, and
 * for each sum over all rows a double accumulator (sums[i], NULL for other roots). */
static void fused_zero_sums(emitter *e, const sn_kernel *k, LLVMValueRef nrows, LLVMValueRef *sums) {
  for (int i = 0; i < k->n_roots; i++) {
    int v = k->roots[i];
    if (sums_columns(e->g->ops[v].code)) {
      loop L;
      LLVMValueRef c = loop_open(e, &L, ci(e, sn_type_elems(&e->g->ops[v].type)), "z");
      LLVMBuildStore(e->b, cf(e, 0), gep(e, e->ft, ptr_of(e, v), c));
      loop_close(e, &L);
    } else if (e->g->ops[v].code == SN_OP_SUM_ALL) {
      sums[i] = entry_alloca(e, e->f64, "sum");
      LLVMBuildStore(e->b, LLVMConstReal(e->f64, 0), sums[i]);
    } else if (is_scatter(e->g->ops[v].code)) {
      const sn_type *t = &e->g->ops[v].type;
      LLVMValueRef count = ci(e, sn_type_elems(t));
      if (t->batched) count = LLVMBuildNSWMul(e->b, nrows, count, "");
      loop L;
      LLVMValueRef c = loop_open(e, &L, count, "z");
      LLVMBuildStore(e->b, cf(e, 0), gep(e, e->ft, ptr_of(e, v), c));
      loop_close(e, &L);
    }
  }
}

/* Inside the row loop, row level: each sum's accumulation, row-level roots stored,
 * what the element level needs prepared. */
static void fused_rows(emitter *e, const sn_kernel *k, LLVMValueRef *sums) {
  for (int i = 0; i < k->n_roots; i++) {
    int v = k->roots[i];
    const sn_op *op = &e->g->ops[v];
    if (op->code == SN_OP_SUM_ALL) {
      LLVMValueRef x = gen_row(e, op->in[0]);
      if (LLVMTypeOf(x) != e->f64) x = LLVMBuildFPExt(e->b, x, e->f64, "");
      LLVMValueRef a = LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->f64, sums[i], ""), x, "");
      LLVMBuildStore(e->b, a, sums[i]);
    } else if (sums_columns(op->code) || is_scatter(op->code)) {
      prepare_elem(e, op->in[0]);
      if (op->code == SN_OP_SCATTER_ROWS) gen_row(e, op->in[1]);
    } else if (level_of(e, v) == L_ROW) {
      LLVMBuildStore(e->b, gen_row(e, v), gep(e, val_type(e, v), ptr_of(e, v), e->r));
    } else if (level_of(e, v) == L_ELEM) {
      prepare_elem(e, v);
    } else {
      die("scalar result inside a fused kernel");
    }
  }
}

/* im2col alone, value v: per tap of the window a loop over the cin input
 * channels, so each tap copies a contiguous run (vector loads, no gathers). The
 * taps in a loop around, or unrolled when the channels are too few for a vector
 * loop (straight-line copies then, cheaper than a column loop that divides). */
static void im2col_columns(emitter *e, int v, int64_t taps, int64_t cin) {
  bool unrolled = cin < 4;
  for (int64_t t = 0; t < (unrolled ? taps : 1); t++) {
    loop Lt, L;
    e->tap = unrolled ? ci(e, t) : loop_open(e, &Lt, ci(e, taps), "tap");
    e->chan = cin > 1 ? loop_open(e, &L, ci(e, cin), "ch") : ci(e, 0);
    e->col = LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, e->tap, ci(e, cin), ""), e->chan, "c");
    reset_elem_memo(e);
    LLVMBuildStore(e->b, gen_elem(e, v), gep(e, e->ft, ptr_of(e, v), elem_index(e, v)));
    if (cin > 1) loop_close(e, &L);
    if (!unrolled) loop_close(e, &Lt);
  }
  e->col = e->tap = e->chan = NULL;
}

/* Inside the row loop, element level: one column loop per width, each storing every
 * root of that width (im2col alone: taps around channels). */
static void fused_columns(emitter *e, const sn_kernel *k) {
  char *done = calloc((size_t)k->n_roots, 1);
  if (!done) abort();
  for (int i = 0; i < k->n_roots; i++) {
    int v = k->roots[i];
    const sn_op *op = &e->g->ops[v];
    bool colsum = sums_columns(op->code) || is_scatter(op->code);
    if (done[i] || op->code == SN_OP_SUM_ALL || (!colsum && level_of(e, v) != L_ELEM)) continue;
    int64_t C = last_dim(&e->g->ops[colsum ? op->in[0] : v].type);
    loop L;
    int64_t cin = op->code == SN_OP_IM2COL ? last_dim(&e->g->ops[op->in[0]].type) : 0;
    if (k->n_roots == 1 && cin && (cin >= 4 || C / cin <= UNROLLED_TAPS)) {
      im2col_columns(e, v, C / cin, cin);
      break;
    }
    e->col = loop_open(e, &L, ci(e, C), "c");
    reset_elem_memo(e);
    for (int j = i; j < k->n_roots; j++) {
      int w = k->roots[j];
      const sn_op *wop = &e->g->ops[w];
      bool wcol = sums_columns(wop->code) || is_scatter(wop->code);
      if (done[j] || wop->code == SN_OP_SUM_ALL || (!wcol && level_of(e, w) != L_ELEM)) continue;
      if (last_dim(&e->g->ops[wcol ? wop->in[0] : w].type) != C) continue;
      done[j] = 1;
      if (is_scatter(wop->code)) {
        emit_scatter(e, w);
      } else if (wop->code == SN_OP_CONV_WGRAD) {
        emit_conv_wgrad(e, w);
      } else if (wcol) {
        LLVMValueRef p = gep(e, e->ft, ptr_of(e, w), e->col);
        LLVMValueRef a = LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->ft, p, ""), gen_elem(e, wop->in[0]), "");
        LLVMBuildStore(e->b, a, p);
      } else {
        LLVMBuildStore(e->b, gen_elem(e, w), gep(e, e->ft, ptr_of(e, w), elem_index(e, w)));
      }
    }
    loop_close(e, &L);
    e->col = NULL;
  }
  free(done);
}

/* After the row loop: each sum over all rows stored (in the model's type but for
 * losses and metrics, which stay doubles). */
static void fused_store_sums(emitter *e, const sn_kernel *k, LLVMValueRef *sums) {
  for (int i = 0; i < k->n_roots; i++) {
    if (!sums[i]) continue;
    int v = k->roots[i];
    LLVMValueRef sum = LLVMBuildLoad2(e->b, e->f64, sums[i], "");
    sn_buf_kind bk = e->st->buf[v].kind;
    if (bk != SN_BUF_LOSS && bk != SN_BUF_METRIC && e->ft != e->f64) sum = LLVMBuildFPTrunc(e->b, sum, e->ft, "");
    LLVMBuildStore(e->b, sum, ptr_of(e, v));
  }
}

static LLVMValueRef emit_fused(emitter *e, int s, int kidx, int *refs, int *nrefs) {
  const sn_kernel *k = &e->st->k[kidx];
  e->kidx = kidx;
  e->k = k;
  for (int i = 0; i < e->g->n; i++) e->alias[i] = -1;
  int n = kernel_refs(e, k, refs);
  *nrefs = n;
  LLVMTypeRef *pt = malloc(sizeof(LLVMTypeRef) * (size_t)(n + KERNEL_ARGS));
  if (!pt) abort();
  pt[0] = e->i64; /* rows */
  pt[1] = e->i64; /* rng: (seed, step) for dropout */
  pt[2] = pt[3] = e->i64; /* r0, r1: the rows of the row loop this call runs */
  for (int i = 0; i < n; i++) pt[i + KERNEL_ARGS] = e->ptr;
  char name[64];
  snprintf(name, sizeof name, "%s.k%d", sn_step_name((sn_step_kind)s), kidx);
  LLVMValueRef fn = begin_kernel(e, name, LLVMFunctionType(e->voidt, pt, (unsigned)n + KERNEL_ARGS, 0));
  free(pt);
  for (int i = 0; i < n; i++) set_noalias(e, fn, (unsigned)i + KERNEL_ARGS);

  int gn = e->g->n;
  memset(e->ref, 0, sizeof(LLVMValueRef) * (size_t)gn);
  memset(e->row_memo, 0, sizeof(LLVMValueRef) * (size_t)gn);
  memset(e->scalar_memo, 0, sizeof(LLVMValueRef) * (size_t)gn);
  reset_elem_memo(e);
  LLVMValueRef nrows = LLVMGetParam(fn, 0);
  e->rows = nrows;
  e->rng_base = LLVMGetParam(fn, 1);
  for (int i = 0; i < n; i++) e->ref[refs[i]] = LLVMGetParam(fn, (unsigned)i + KERNEL_ARGS);

  /* zero the column sums; sums over all rows accumulate in doubles */
  LLVMValueRef *sums = calloc((size_t)k->n_roots, sizeof(LLVMValueRef));
  if (!sums) abort();
  fused_zero_sums(e, k, nrows, sums);

  LLVMValueRef r0 = LLVMGetParam(fn, 2), r1 = LLVMGetParam(fn, 3);
  loop rows;
  /* a row loop vectorized across rows keeps dividing r: counters that wrap are no
   * induction variables, and would keep it from being vectorized */
  bool scalar_rows = rows_stay_scalar(e, k);
  e->row_pre = scalar_rows ? LLVMGetInsertBlock(e->b) : NULL;
  e->r0 = r0;
  e->n_grid = 0;
  e->r = LLVMBuildNSWAdd(e->b, loop_open(e, &rows, LLVMBuildNSWSub(e->b, r1, r0, ""), "r"), r0, "");

  fused_rows(e, k, sums);
  fused_columns(e, k);
  row_grids_step(e);
  LLVMValueRef back = loop_close(e, &rows);
  e->row_pre = NULL;
  if (scalar_rows) loop_no_vectorize(e, back);

  fused_store_sums(e, k, sums);
  free(sums);
  LLVMBuildRetVoid(e->b);
  return fn;
}

/* ---------------------------------------------------------------------------
 * Step functions */

typedef struct step_ctx {
  LLVMValueRef args, field[A_COUNT];
} step_ctx;

static LLVMValueRef buffer_ptr(emitter *e, step_ctx *sc, int v) {
  int b = sn_plan_base(e->g, v);
  const sn_buf *buf = &e->st->buf[b];
  int64_t es = e->g->dtype == SN_F64 ? 8 : 4;
  LLVMValueRef base, off;
  switch (buf->kind) {
  case SN_BUF_ARENA: base = sc->field[A_ARENA]; off = ci(e, buf->offset); break;
  case SN_BUF_PARAMS: base = sc->field[A_PARAMS]; off = ci(e, buf->offset * es); break;
  case SN_BUF_GRADS: base = sc->field[A_GRADS]; off = ci(e, buf->offset * es); break;
  case SN_BUF_INPUT: return sc->field[A_X];
  case SN_BUF_LABEL: return sc->field[A_Y];
  case SN_BUF_OUT: return sc->field[A_OUT];
  case SN_BUF_LOSS: return sc->field[A_LOSS];
  case SN_BUF_METRIC: base = sc->field[A_METRICS]; off = ci(e, buf->offset * 8); break;
  case SN_BUF_TARGET: return sc->field[A_T];
  case SN_BUF_STATE: base = sc->field[A_STATE]; off = ci(e, buf->offset * es); break;
  default: die("value without a buffer"); return NULL;
  }
  LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx);
  return LLVMBuildInBoundsGEP2(e->b, i8, base, &off, 1, "");
}

/* Rows of an operand as stored: batch data [N, d1.., K] has N d1.. rows. */
static LLVMValueRef stored_rows(emitter *e, step_ctx *sc, const sn_type *t) {
  if (!t->batched) return LLVMConstInt(e->i32, (unsigned long long)t->dim[0], 0);
  int64_t m = 1;
  for (int i = 0; i < t->rank - 1; i++) m *= t->dim[i];
  LLVMValueRef r = LLVMBuildMul(e->b, sc->field[A_ROWS], ci(e, m), "");
  return LLVMBuildTrunc(e->b, r, e->i32, "");
}

/* C = op(A) op(B) through OpenBLAS: cblas_[sd]gemm(RowMajor, ta, tb, M, N, K, 1, A,
 * lda, B, ldb, 0, C, ldc); M, N, K and the leading dimensions are i32 values. */
static void call_cblas(emitter *e, int ta, int tb, LLVMValueRef *mnk, LLVMValueRef A, LLVMValueRef lda,
                       LLVMValueRef B, LLVMValueRef ldb, LLVMValueRef C, LLVMValueRef ldc) {
  LLVMTypeRef pt[14] = {e->i32, e->i32, e->i32, e->i32, e->i32, e->i32, e->ft,
                        e->ptr, e->i32, e->ptr, e->i32, e->ft,  e->ptr, e->i32};
  LLVMTypeRef fty = LLVMFunctionType(e->voidt, pt, 14, 0);
  const char *name = e->g->dtype == SN_F64 ? "cblas_dgemm" : "cblas_sgemm";
  LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
  if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
  LLVMValueRef a[14] = {LLVMConstInt(e->i32, 101, 0), /* CblasRowMajor */
                        LLVMConstInt(e->i32, ta ? 112 : 111, 0),
                        LLVMConstInt(e->i32, tb ? 112 : 111, 0),
                        mnk[0], mnk[1], mnk[2], cf(e, 1.0), A, lda, B, ldb, cf(e, 0.0), C, ldc};
  LLVMBuildCall2(e->b, fty, fn, a, 14, "");
}

/* batch_matmul: count = N x the leading axes products of (M x K) x (K x P), each
 * operand contiguous per product. On the pool, sn_par_[sd]gemm_batched(ta, tb, M,
 * N, K, A, lda, sA, B, ldb, sB, C, ldc, sC, count) spreads the products over the
 * threads; else a loop calls OpenBLAS once per product. */
static void emit_batch_gemm(emitter *e, step_ctx *sc, int v) {
  const sn_op *op = &e->g->ops[v];
  const sn_type *ta = &e->g->ops[op->in[0]].type, *tb = &e->g->ops[op->in[1]].type;
  int r = ta->rank;
  int64_t lead = 1;
  for (int i = 0; i < r - 2; i++) lead *= ta->dim[i];
  LLVMValueRef count = LLVMBuildNSWMul(e->b, sc->field[A_ROWS], ci(e, lead), "");
  int64_t M = op->type.dim[r - 2], N = op->type.dim[r - 1], K = ta->dim[op->ta ? r - 2 : r - 1];
  int64_t lda = ta->dim[r - 1], ldb = tb->dim[r - 1];
  int64_t sa = ta->dim[r - 2] * lda, sb = tb->dim[r - 2] * ldb, sc_ = M * N;
  LLVMValueRef A = buffer_ptr(e, sc, op->in[0]), B = buffer_ptr(e, sc, op->in[1]), C = buffer_ptr(e, sc, v);
  if (e->cg->par) {
    LLVMTypeRef pt[15] = {e->i32, e->i32, e->i32, e->i32, e->i32, e->ptr, e->i32, e->i64,
                          e->ptr, e->i32, e->i64, e->ptr, e->i32, e->i64, e->i64};
    LLVMTypeRef fty = LLVMFunctionType(e->voidt, pt, 15, 0);
    const char *name = e->g->dtype == SN_F64 ? "sn_par_dgemm_batched" : "sn_par_sgemm_batched";
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
    if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
    LLVMValueRef a[15] = {i32c(e, op->ta ? 112 : 111), i32c(e, op->tb ? 112 : 111), i32c(e, M), i32c(e, N),
                          i32c(e, K), A, i32c(e, lda), ci(e, sa), B, i32c(e, ldb), ci(e, sb), C, i32c(e, N),
                          ci(e, sc_), count};
    LLVMBuildCall2(e->b, fty, fn, a, 15, "");
    return;
  }
  /* for (i = 0; i < count; i++) gemm(A + i sa, B + i sb, C + i sc) */
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(e->b));
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->ctx, fn, "bg");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, fn, "bg.body");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, fn, "bg.done");
  LLVMBuildBr(e->b, head);
  LLVMPositionBuilderAtEnd(e->b, head);
  LLVMValueRef i = LLVMBuildPhi(e->b, e->i64, "i");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, i, count, ""), body, done);
  LLVMPositionBuilderAtEnd(e->b, body);
  LLVMValueRef mnk[3] = {i32c(e, M), i32c(e, N), i32c(e, K)};
  call_cblas(e, op->ta, op->tb, mnk, gep(e, e->ft, A, LLVMBuildNSWMul(e->b, i, ci(e, sa), "")), i32c(e, lda),
             gep(e, e->ft, B, LLVMBuildNSWMul(e->b, i, ci(e, sb), "")), i32c(e, ldb),
             gep(e, e->ft, C, LLVMBuildNSWMul(e->b, i, ci(e, sc_), "")), i32c(e, N));
  LLVMValueRef next = LLVMBuildNSWAdd(e->b, i, ci(e, 1), "");
  LLVMBuildBr(e->b, head);
  LLVMValueRef in_v[2] = {ci(e, 0), next};
  LLVMBasicBlockRef in_b[2] = {pre, body};
  LLVMAddIncoming(i, in_v, in_b, 2);
  LLVMPositionBuilderAtEnd(e->b, done);
}

/* A recurrent scan: a call to the runtime's loop over the steps (recurrent.c),
 * fn(N, T, H, [D,] inputs.., mask, out): the gradients with dout's row width D
 * after H; N is the batch's rows; mask the padding mask (the op's last input when
 * it has one more than without) or a null pointer. Without the pool (--lib
 * archives) the _cblas_ variants, which the archive carries. */
static void emit_scan(emitter *e, step_ctx *sc, int v) {
  const sn_op *op = &e->g->ops[v];
  const char *base = op->code == SN_OP_LSTM        ? "sn_lstm"
                     : op->code == SN_OP_LSTM_GRAD ? "sn_lstm_grad"
                     : op->code == SN_OP_GRU       ? "sn_gru"
                                                   : "sn_gru_grad";
  char name[64];
  snprintf(name, sizeof name, "%s_%s%s", base, e->cg->par ? "" : "cblas_", e->g->dtype == SN_F64 ? "f64" : "f32");
  const sn_type *whh = &e->g->ops[op->in[op->code == SN_OP_LSTM || op->code == SN_OP_GRU ? 1 : 2]].type;
  bool grad = op->code == SN_OP_LSTM_GRAD || op->code == SN_OP_GRU_GRAD;
  int n_data = sn_opdefs[op->code].n_in; /* the inputs before the mask */
  LLVMTypeRef pt[9] = {e->i64, e->i64, e->i64, e->i64, e->ptr, e->ptr, e->ptr, e->ptr, e->ptr};
  unsigned first = grad ? 4 : 3, na = first + (unsigned)n_data + 2;
  if (!grad) pt[3] = e->ptr;
  LLVMTypeRef fty = LLVMFunctionType(e->voidt, pt, na, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
  if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
  LLVMValueRef a[9] = {sc->field[A_ROWS], ci(e, op->type.dim[0]), ci(e, whh->dim[1]), ci(e, op->a[0])};
  for (int i = 0; i < n_data; i++) a[first + i] = buffer_ptr(e, sc, op->in[i]);
  a[na - 2] = op->n_in > n_data ? buffer_ptr(e, sc, op->in[n_data]) : LLVMConstNull(e->ptr);
  a[na - 1] = buffer_ptr(e, sc, v);
  LLVMBuildCall2(e->b, fty, fn, a, na, "");
}

/* An implicit-GEMM convolution: a call to runtime/conv_gemm.c, fn(geo, ..) with
 * the geometry geo[15] = {N, H, W, C, KH, KW, SH, SW, PT, PL, DH, DW, OH, OW, F}
 * in the step's frame: conv_gemm(geo, x, w, y); conv_gemm_wgrad(geo, dy, x, parts,
 * scratch, dw), its parts' slices in the plan's scratch after the arena;
 * conv_gemm_dgrad(geo, dy, wt, dx). Without
 * the pool (--lib archives) the _cblas_ variants, which the archive carries. */
static void emit_conv_gemm(emitter *e, step_ctx *sc, int v) {
  const sn_op *op = &e->g->ops[v];
  bool wgrad = op->code == SN_OP_CONV_GEMM_WGRAD, dgrad = op->code == SN_OP_CONV_GEMM_DGRAD;
  const sn_type *x = dgrad ? &op->type : &e->g->ops[op->in[wgrad ? 1 : 0]].type;
  const sn_type *y = wgrad || dgrad ? &e->g->ops[op->in[0]].type : &op->type;
  static const int at[10] = {SN_WIN_KH, SN_WIN_KW, SN_WIN_SH, SN_WIN_SW, SN_WIN_PT,
                             SN_WIN_PL, SN_WIN_DH, SN_WIN_DW, SN_WIN_OH, SN_WIN_OW};
  int64_t geo[15] = {0, x->dim[0], x->dim[1], x->dim[2]};
  for (int i = 0; i < 10; i++) geo[4 + i] = op->a[at[i]];
  geo[14] = y->dim[2];
  LLVMTypeRef geo_t = LLVMArrayType2(e->i64, 15);
  LLVMValueRef frame = LLVMBuildAlloca(e->b, geo_t, "geo");
  for (int i = 0; i < 15; i++) {
    LLVMValueRef idx[2] = {ci(e, 0), ci(e, i)};
    LLVMBuildStore(e->b, i ? ci(e, geo[i]) : sc->field[A_ROWS],
                   LLVMBuildInBoundsGEP2(e->b, geo_t, frame, idx, 2, ""));
  }
  char name[64];
  const char *which = wgrad ? "_wgrad" : dgrad ? "_dgrad" : "";
  snprintf(name, sizeof name, "sn_conv_gemm%s_%s%s", which, e->cg->par ? "" : "cblas_",
           e->g->dtype == SN_F64 ? "f64" : "f32");
  LLVMTypeRef pt[6] = {e->ptr, e->ptr, e->ptr, e->ptr, e->ptr, e->ptr};
  LLVMValueRef args[6] = {frame, buffer_ptr(e, sc, op->in[0]), buffer_ptr(e, sc, op->in[1])};
  unsigned na = 4;
  if (wgrad) {
    const sn_kernel *kk = &e->st->k[e->st->kernel_of[v]];
    LLVMValueRef off = ci(e, kk->scratch);
    pt[3] = e->i64;
    args[3] = ci(e, kk->parts);
    args[4] =
        LLVMBuildInBoundsGEP2(e->b, LLVMInt8TypeInContext(e->ctx), sc->field[A_ARENA], &off, 1, "");
    na = 6;
  }
  args[na - 1] = buffer_ptr(e, sc, v);
  LLVMTypeRef fty = LLVMFunctionType(e->voidt, pt, na, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
  if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
  LLVMBuildCall2(e->b, fty, fn, args, na, "");
}

static void emit_gemm(emitter *e, step_ctx *sc, int v) {
  const sn_op *op = &e->g->ops[v];
  if (op->code == SN_OP_CONV_GEMM || op->code == SN_OP_CONV_GEMM_WGRAD ||
      op->code == SN_OP_CONV_GEMM_DGRAD) {
    emit_conv_gemm(e, sc, v);
    return;
  }
  if (op->code == SN_OP_BATCH_MATMUL) {
    emit_batch_gemm(e, sc, v);
    return;
  }
  if (op->code != SN_OP_MATMUL) {
    emit_scan(e, sc, v);
    return;
  }
  const sn_type *ta = &e->g->ops[op->in[0]].type, *tb = &e->g->ops[op->in[1]].type;
  LLVMValueRef ar = stored_rows(e, sc, ta);
  LLVMValueRef ac = LLVMConstInt(e->i32, (unsigned long long)last_dim(ta), 0);
  LLVMValueRef br = stored_rows(e, sc, tb);
  LLVMValueRef bc = LLVMConstInt(e->i32, (unsigned long long)last_dim(tb), 0);
  LLVMValueRef M = op->ta ? ac : ar, K = op->ta ? ar : ac, N = op->tb ? br : bc;
  if (e->cg->par) { /* the runtime's pool: sn_par_[sd]gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc) */
    LLVMTypeRef pt[11] = {e->i32, e->i32, e->i32, e->i32, e->i32, e->ptr, e->i32, e->ptr, e->i32, e->ptr, e->i32};
    LLVMTypeRef fty = LLVMFunctionType(e->voidt, pt, 11, 0);
    const char *name = e->g->dtype == SN_F64 ? "sn_par_dgemm" : "sn_par_sgemm";
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
    if (!fn) fn = LLVMAddFunction(e->mod, name, fty);
    LLVMValueRef a[11] = {
        LLVMConstInt(e->i32, op->ta ? 112 : 111, 0), LLVMConstInt(e->i32, op->tb ? 112 : 111, 0),
        M, N, K, buffer_ptr(e, sc, op->in[0]), ac, buffer_ptr(e, sc, op->in[1]), bc, buffer_ptr(e, sc, v), N};
    LLVMBuildCall2(e->b, fty, fn, a, 11, "");
    return;
  }
  LLVMValueRef mnk[3] = {M, N, K};
  call_cblas(e, op->ta, op->tb, mnk, buffer_ptr(e, sc, op->in[0]), ac, buffer_ptr(e, sc, op->in[1]), bc,
             buffer_ptr(e, sc, v), N);
}

/* --profile: cycles (llvm.readcyclecounter) and calls per kernel, added into a
 * global table the driver prints after the run. */
static LLVMValueRef prof_start(emitter *e) {
  if (!e->prof) return NULL;
  unsigned id = LLVMLookupIntrinsicID("llvm.readcyclecounter", 21);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, NULL, 0);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, NULL, 0), fn, NULL, 0, "t0");
}

static void prof_stop(emitter *e, int idx, LLVMValueRef t0) {
  if (!e->prof) return;
  LLVMValueRef t1 = prof_start(e);
  LLVMValueRef i0 = ci(e, 2 * idx), i1 = ci(e, 2 * idx + 1);
  LLVMValueRef pc = LLVMBuildInBoundsGEP2(e->b, e->i64, e->prof, &i0, 1, "");
  LLVMValueRef pn = LLVMBuildInBoundsGEP2(e->b, e->i64, e->prof, &i1, 1, "");
  LLVMBuildStore(e->b, LLVMBuildAdd(e->b, LLVMBuildLoad2(e->b, e->i64, pc, ""), LLVMBuildSub(e->b, t1, t0, ""), ""), pc);
  LLVMBuildStore(e->b, LLVMBuildAdd(e->b, LLVMBuildLoad2(e->b, e->i64, pn, ""), ci(e, 1), ""), pn);
}

static LLVMValueRef begin_step_fn(emitter *e, const char *name, step_ctx *sc) {
  LLVMTypeRef fty = LLVMFunctionType(e->voidt, &e->ptr, 1, 0);
  LLVMValueRef fn = LLVMAddFunction(e->mod, name, fty);
  set_attrs(e, fn);
  /* no implicit vector code: the SLP vectorizer then skips the step, whose long
   * straight line of argument stores took half its O2 time for nothing */
  unsigned nif = LLVMGetEnumAttributeKindForName("noimplicitfloat", 15);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, nif, 0));
  LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, fn, "entry"));
  sc->args = LLVMGetParam(fn, 0);
  for (int i = 0; i < A_COUNT; i++) {
    LLVMValueRef p = LLVMBuildStructGEP2(e->b, e->args_t, sc->args, (unsigned)i, "");
    sc->field[i] = LLVMBuildLoad2(e->b, LLVMStructGetTypeAtIndex(e->args_t, (unsigned)i), p, "");
  }
  return fn;
}

/* ---------------------------------------------------------------------------
 * Kernel deduplication: the same layer pattern in several steps (bias + ReLU in
 * grad, eval and predict) makes identical kernels; each is compiled once and the
 * later steps call the first copy, in the same module or, when the program is
 * split into modules compiled in parallel, in another one (by name: the first copy
 * is made external and the linker resolves it). Kernels hold no profile counters
 * (those are in the step functions around the calls), so sharing one is safe. */

typedef struct kernel_entry {
  LLVMValueRef fn; /* the first copy, in whichever module emitted it */
  uint64_t sig;    /* kernel_sig */
  bool printed;
  char *text;      /* kernel_text once printed (NULL: never shared) */
} kernel_entry;

struct sn_kernels {
  int n, cap;
  kernel_entry *k;
};

sn_kernels *sn_kernels_new(void) {
  sn_kernels *ks = calloc(1, sizeof *ks);
  if (!ks) abort();
  return ks;
}

void sn_kernels_free(sn_kernels *ks) {
  if (!ks) return;
  for (int i = 0; i < ks->n; i++) free(ks->k[i].text);
  free(ks->k);
  free(ks);
}

/* A cheap fingerprint (sizes and the opcode sequence): printing a function walks
 * its whole module, so only kernels with equal fingerprints are printed. */
static uint64_t kernel_sig(LLVMValueRef fn) {
  uint64_t h = 0xcbf29ce484222325ull ^ LLVMCountParams(fn);
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb)) {
    h = (h ^ 0xff) * 0x100000001b3ull;
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
      h = (h ^ (uint64_t)LLVMGetInstructionOpcode(in)) * 0x100000001b3ull;
  }
  return h;
}

/* Writes metadata operand v as text (strings quoted, nodes in braces, constants
 * as printed); false for nesting deeper than a loop's properties go. */
static bool md_write(FILE *f, LLVMValueRef v, int depth) {
  if (LLVMIsAMDString(v)) {
    unsigned n;
    const char *str = LLVMGetMDString(v, &n);
    fprintf(f, "\"%.*s\"", (int)n, str);
    return true;
  }
  if (!LLVMIsAMDNode(v)) {
    char *t = LLVMPrintValueToString(v);
    fputs(t, f);
    LLVMDisposeMessage(t);
    return true;
  }
  if (depth > 2) return false;
  unsigned n = LLVMGetMDNodeNumOperands(v);
  LLVMValueRef *op = malloc(sizeof *op * (n + 1));
  if (!op) abort();
  LLVMGetMDNodeOperands(v, op);
  bool ok = true;
  fputc('{', f);
  for (unsigned i = depth == 0; i < n && ok; i++) { /* a loop ID's first operand is itself */
    if (i > (depth == 0)) fputs(", ", f);
    ok = md_write(f, op[i], depth + 1);
  }
  fputc('}', f);
  free(op);
  return ok;
}

/* Writes instruction number at's metadata to f when it is loop metadata (its one
 * kind !llvm.loop, as the row loops of emit_fused carry); false for any other. */
static bool loop_md_write(FILE *f, LLVMValueRef in, int at) {
  size_t n;
  LLVMValueMetadataEntry *md = LLVMInstructionGetAllMetadataOtherThanDebugLoc(in, &n);
  LLVMContextRef ctx = LLVMGetTypeContext(LLVMTypeOf(in));
  unsigned loop_kind = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);
  bool ok = n == 1 && LLVMValueMetadataEntriesGetKind(md, 0) == loop_kind;
  if (ok) {
    fprintf(f, "loop at %d: ", at);
    ok = md_write(f, LLVMMetadataAsValue(ctx, LLVMValueMetadataEntriesGetMetadata(md, 0)), 0);
    fputc('\n', f);
  }
  LLVMDisposeValueMetadataEntries(md);
  return ok;
}

/* Cuts each ", !llvm.loop !N" (N depends on the module) out of printed IR. */
static void strip_loop_refs(char *ir) {
  static const char ref[] = ", !llvm.loop !";
  char *w = ir;
  for (char *r = ir; *r;) {
    if (!strncmp(r, ref, sizeof ref - 1)) {
      r += sizeof ref - 1;
      while (*r >= '0' && *r <= '9') r++;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

/* A constant of zeros (zero_slot's): the same in every module that has it. */
static bool zero_constant(LLVMValueRef g) {
  LLVMValueRef init = LLVMIsAGlobalVariable(g) ? LLVMGetInitializer(g) : NULL;
  return init && LLVMIsGlobalConstant(g) && LLVMIsNull(init);
}

/* What a kernel computes, independent of its name and module: its IR with the
 * name and the attribute group number cut out, its function attributes spelled
 * out, and its loop metadata written out by instruction number. Equal texts are
 * equal functions. NULL for a kernel the text cannot vouch for: other metadata or
 * call-site attributes (printed as numbers that depend on the module), or
 * references to globals other than declared functions (libm, intrinsics), which
 * mean the same in every module only by name (but for zero_slot's constant). */
static char *kernel_text(LLVMValueRef fn) {
  char *loops = NULL;
  size_t loops_len = 0;
  FILE *lf = open_memstream(&loops, &loops_len);
  if (!lf) abort();
  int at = 0;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in), at++) {
      if ((LLVMHasMetadata(in) && !loop_md_write(lf, in, at)) ||
          (LLVMIsACallInst(in) && LLVMGetCallSiteAttributeCount(in, LLVMAttributeFunctionIndex))) {
        fclose(lf);
        free(loops);
        return NULL;
      }
      for (int j = 0; j < LLVMGetNumOperands(in); j++) {
        LLVMValueRef o = LLVMGetOperand(in, (unsigned)j);
        if (o && (LLVMIsAConstantExpr(o) ||
                  (LLVMIsAGlobalValue(o) && !(LLVMIsAFunction(o) && LLVMIsDeclaration(o)) &&
                   !zero_constant(o)))) {
          fclose(lf);
          free(loops);
          return NULL;
        }
      }
    }
  fclose(lf);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) abort();
  unsigned na = LLVMGetAttributeCountAtIndex(fn, LLVMAttributeFunctionIndex);
  LLVMAttributeRef *attr = malloc(sizeof *attr * (na + 1));
  if (!attr) abort();
  LLVMGetAttributesAtIndex(fn, LLVMAttributeFunctionIndex, attr);
  bool ok = true;
  for (unsigned i = 0; i < na; i++) {
    if (LLVMIsEnumAttribute(attr[i])) {
      fprintf(f, "enum %u %llu\n", LLVMGetEnumAttributeKind(attr[i]),
              (unsigned long long)LLVMGetEnumAttributeValue(attr[i]));
    } else if (LLVMIsStringAttribute(attr[i])) {
      unsigned kn, vn;
      const char *k = LLVMGetStringAttributeKind(attr[i], &kn), *v = LLVMGetStringAttributeValue(attr[i], &vn);
      fprintf(f, "string %.*s=%.*s\n", (int)kn, k, (int)vn, v);
    } else {
      ok = false; /* a type attribute */
    }
  }
  free(attr);
  /* "define ... @NAME(...) ... #N {" */
  char *ir = LLVMPrintValueToString(fn);
  strip_loop_refs(ir);
  char *def = strstr(ir, "define "), *name = def ? strchr(def, '@') : NULL, *paren = name ? strchr(name, '(') : NULL;
  char *brace = paren ? strstr(paren, " {\n") : NULL, *group = brace;
  while (group && group > paren && group[-1] != '#' && group[-1] != ')') group--;
  ok &= brace && group > paren && group[-1] == '#';
  if (ok) {
    fwrite(ir, 1, (size_t)(name + 1 - ir), f);
    fwrite(paren, 1, (size_t)(group - 1 - paren), f);
    fputs(brace, f);
    fputs(loops, f);
  }
  free(loops);
  LLVMDisposeMessage(ir);
  fclose(f);
  if (!ok) {
    free(buf);
    return NULL;
  }
  return buf;
}

static const char *entry_text(kernel_entry *k) {
  if (!k->printed) k->text = kernel_text(k->fn);
  k->printed = true;
  return k->text;
}

/* fn, or what to call instead: an identical kernel emitted before (then fn is
 * deleted), or a declaration of it when another module has it. */
static LLVMValueRef kernel_share(sn_kernels *ks, LLVMValueRef fn) {
  kernel_entry new = {.fn = fn, .sig = kernel_sig(fn)};
  for (int i = 0; i < ks->n; i++) {
    kernel_entry *k = &ks->k[i];
    if (k->sig != new.sig || !entry_text(&new) || !entry_text(k) || strcmp(k->text, new.text)) continue;
    free(new.text);
    LLVMModuleRef m = LLVMGetGlobalParent(fn);
    LLVMTypeRef type = LLVMGlobalGetValueType(fn); /* of m's context, unlike k->fn's */
    LLVMDeleteFunction(fn);
    if (LLVMGetGlobalParent(k->fn) == m) return k->fn;
    size_t n;
    const char *name = LLVMGetValueName2(k->fn, &n);
    LLVMValueRef decl = LLVMGetNamedFunction(m, name);
    if (!decl) decl = LLVMAddFunction(m, name, type);
    LLVMSetLinkage(k->fn, LLVMExternalLinkage);
    LLVMSetVisibility(k->fn, LLVMHiddenVisibility);
    return decl;
  }
  if (ks->n == ks->cap) {
    ks->cap = ks->cap ? 2 * ks->cap : 16;
    ks->k = realloc(ks->k, sizeof *ks->k * (size_t)ks->cap);
    if (!ks->k) abort();
  }
  ks->k[ks->n++] = new;
  return fn;
}

/* A new task function name(ptr box, i64 lo, i64 hi), internal, without a body */
static LLVMValueRef new_task(emitter *e, const char *name) {
  LLVMTypeRef tp[3] = {e->ptr, e->i64, e->i64};
  LLVMValueRef task = LLVMAddFunction(e->mod, name, LLVMFunctionType(e->voidt, tp, 3, 0));
  LLVMSetLinkage(task, LLVMInternalLinkage);
  set_attrs(e, task);
  return task;
}

/* The task `name(box, lo, hi)` that calls a kernel of type fty with arguments
 * lo_arg and lo_arg + 1 set to lo and hi, the others and the kernel itself read
 * from box = {kernel, its na arguments}: one per name in a module, so kernels of
 * the same type share it (as codegen costs about a millisecond per function). */
static LLVMValueRef pool_task(emitter *e, const char *name, LLVMTypeRef fty, unsigned na, unsigned lo_arg,
                              LLVMTypeRef box_t) {
  LLVMValueRef task = LLVMGetNamedFunction(e->mod, name);
  if (task) return task;
  task = new_task(e, name);
  LLVMValueRef *la = malloc(sizeof(LLVMValueRef) * na);
  if (!la) abort();
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, task, "entry"));
  LLVMValueRef box = LLVMGetParam(task, 0);
  LLVMValueRef kernel = LLVMBuildLoad2(b, e->ptr, LLVMBuildStructGEP2(b, box_t, box, 0, ""), "");
  for (unsigned i = 0; i < na; i++)
    la[i] = i == lo_arg || i == lo_arg + 1 ? LLVMGetParam(task, 1 + i - lo_arg)
                                           : LLVMBuildLoad2(b, LLVMStructGetTypeAtIndex(box_t, i + 1),
                                                            LLVMBuildStructGEP2(b, box_t, box, i + 1, ""), "");
  LLVMBuildCall2(b, fty, kernel, la, na, "");
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  free(la);
  return task;
}

/* Calls `kernel` through the thread pool: it and its arguments boxed in the step's
 * frame (one block: allocas may go anywhere), the task `name` (pool_task) and
 * sn_par_for over count in parts of `grain` (a count within one grain runs on the
 * calling thread). */
static void emit_pool_call(emitter *e, const char *name, LLVMValueRef kernel, LLVMTypeRef fty, LLVMValueRef *a,
                           unsigned na, unsigned lo_arg, LLVMValueRef count, int64_t grain) {
  LLVMTypeRef *ft = malloc(sizeof(LLVMTypeRef) * (na + 1));
  if (!ft) abort();
  ft[0] = e->ptr;
  LLVMGetParamTypes(fty, ft + 1);
  LLVMTypeRef box_t = LLVMStructTypeInContext(e->ctx, ft, na + 1, 0);
  LLVMValueRef task = pool_task(e, name, fty, na, lo_arg, box_t);
  LLVMValueRef frame = LLVMBuildAlloca(e->b, box_t, "box");
  LLVMBuildStore(e->b, kernel, LLVMBuildStructGEP2(e->b, box_t, frame, 0, ""));
  for (unsigned i = 0; i < na; i++)
    if (i != lo_arg && i != lo_arg + 1)
      LLVMBuildStore(e->b, a[i], LLVMBuildStructGEP2(e->b, box_t, frame, i + 1, ""));
  LLVMTypeRef pt[4] = {e->ptr, e->ptr, e->i64, e->i64};
  LLVMTypeRef pft = LLVMFunctionType(e->voidt, pt, 4, 0);
  LLVMValueRef pf = LLVMGetNamedFunction(e->mod, "sn_par_for");
  if (!pf) pf = LLVMAddFunction(e->mod, "sn_par_for", pft);
  LLVMValueRef pa[4] = {task, frame, count, ci(e, grain)};
  LLVMBuildCall2(e->b, pft, pf, pa, 4, "");
  free(ft);
}

static LLVMValueRef emit_part_sum(emitter *e);
static LLVMValueRef parts_task(emitter *e, LLVMTypeRef fty, unsigned na, LLVMTypeRef box_t);

/* a column sum (colsum, conv_wgrad) that kernel k computes (not one it reads) */
static bool part_sum(emitter *e, int k, int v) {
  return sums_columns(e->g->ops[v].code) && e->st->kernel_of[v] == k;
}

/* A kernel in parts: its column sums into slices of the scratch, the parts on the
 * pool (in turn on the calling thread without it), then the sums added up by the
 * module's sum function (emit_part_sum). */
enum { PARTS_BOX = 4 }; /* fields of a parts task's box before the kernel's arguments */

static void emit_parts_call(emitter *e, int s, int k, step_ctx *sc, LLVMValueRef kernel, LLVMTypeRef fty,
                            LLVMValueRef *a, unsigned na, const int *refs) {
  const sn_kernel *kk = &e->st->k[k];
  int64_t es = e->g->dtype == SN_F64 ? 8 : 4, cols = 0;
  bool *is_sum = calloc(na, sizeof(bool));
  int64_t *at = calloc(na, sizeof(int64_t));
  if (!is_sum || !at) abort();
  LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx);
  for (unsigned i = KERNEL_ARGS; i < na; i++) {
    const sn_op *op = &e->g->ops[refs[i - KERNEL_ARGS]];
    if (!part_sum(e, k, refs[i - KERNEL_ARGS])) continue;
    is_sum[i] = true;
    at[i] = cols;
    cols += sn_type_elems(&op->type);
  }
  for (unsigned i = KERNEL_ARGS; i < na; i++)
    if (is_sum[i]) {
      LLVMValueRef off = ci(e, kk->scratch + at[i] * es);
      a[i] = LLVMBuildInBoundsGEP2(e->b, i8, sc->field[A_ARENA], &off, 1, "");
    }
  /* the box: {kernel, parts, cols, which arguments are column sums (a bit each), its arguments} */
  LLVMTypeRef *ft = malloc(sizeof(LLVMTypeRef) * (na + PARTS_BOX));
  if (!ft) abort();
  ft[0] = e->ptr;
  ft[1] = ft[2] = ft[3] = e->i64;
  LLVMGetParamTypes(fty, ft + PARTS_BOX);
  LLVMTypeRef box_t = LLVMStructTypeInContext(e->ctx, ft, na + PARTS_BOX, 0);
  LLVMValueRef task = parts_task(e, fty, na, box_t);
  uint64_t mask = 0;
  for (unsigned i = KERNEL_ARGS; i < na; i++)
    if (is_sum[i]) {
      if (i >= 64) die("a kernel in parts with a column sum after its 64th argument");
      mask |= 1ull << i;
    }
  LLVMValueRef head[PARTS_BOX] = {kernel, ci(e, kk->parts), ci(e, cols), ci(e, (int64_t)mask)};
  LLVMValueRef frame = LLVMBuildAlloca(e->b, box_t, "box");
  for (unsigned i = 0; i < na + PARTS_BOX; i++)
    LLVMBuildStore(e->b, i < PARTS_BOX ? head[i] : a[i - PARTS_BOX], LLVMBuildStructGEP2(e->b, box_t, frame, i, ""));
  LLVMTypeRef tp[3] = {e->ptr, e->i64, e->i64};
  if (e->cg->par && !e->cg->serial_rows) {
    LLVMTypeRef pt[4] = {e->ptr, e->ptr, e->i64, e->i64};
    LLVMTypeRef pft = LLVMFunctionType(e->voidt, pt, 4, 0);
    LLVMValueRef pf = LLVMGetNamedFunction(e->mod, "sn_par_for");
    if (!pf) pf = LLVMAddFunction(e->mod, "sn_par_for", pft);
    LLVMValueRef pa[4] = {task, frame, ci(e, kk->parts), ci(e, 1)};
    LLVMBuildCall2(e->b, pft, pf, pa, 4, "");
  } else {
    LLVMValueRef ta[3] = {frame, ci(e, 0), ci(e, kk->parts)};
    LLVMBuildCall2(e->b, LLVMFunctionType(e->voidt, tp, 3, 0), task, ta, 3, "");
  }
  for (unsigned i = KERNEL_ARGS; i < na; i++) {
    if (!is_sum[i]) continue;
    int64_t C = sn_type_elems(&e->g->ops[refs[i - KERNEL_ARGS]].type);
    LLVMValueRef sa[5] = {a[i], buffer_ptr(e, sc, refs[i - KERNEL_ARGS]), ci(e, kk->parts), ci(e, cols), ci(e, C)};
    LLVMBuildCall2(e->b, LLVMGlobalGetValueType(e->part_sum), e->part_sum, sa, 5, "");
  }
  free(ft);
  free(is_sum);
  free(at);
}

/* Step s's graph, and which of its values are one per row (level_of) */
static void use_step(emitter *e, int s) {
  e->st = &e->p->steps[s];
  e->g = e->st->g;
  for (int v = 0; v < e->g->n; v++) { /* inputs come before the values they feed */
    const sn_op *op = &e->g->ops[v];
    sn_opclass c = sn_opdefs[op->code].cls;
    e->row_level[v] = c == SN_CLS_ROWRED;
    if (c != SN_CLS_ELEM || sn_opdefs[op->code].gathers || op->code == SN_OP_ONEHOT ||
        op->code == SN_OP_MASK_KEYS)
      continue;
    /* element-wise of row values, and of nothing per element but constants */
    bool rows = false, elems = false;
    for (int i = 0; i < op->n_in; i++) {
      int w = op->in[i];
      if (e->row_level[w]) rows = true;
      else if (e->g->ops[w].type.batched) elems = true;
    }
    e->row_level[v] = rows && !elems;
  }
}

static void emit_step(emitter *e, int s, sn_kernels *ks) {
  static const char *names[] = {SN_FN_GRAD, SN_FN_EVAL, SN_FN_PREDICT};
  use_step(e, s);
  int *refs = malloc(sizeof(int) * (size_t)(e->g->n + 1));
  if (!refs) abort();
  /* kernels first: each is its own function */
  LLVMValueRef *kfn = calloc((size_t)e->st->n_kernels + 1, sizeof(LLVMValueRef));
  int **krefs = calloc((size_t)e->st->n_kernels + 1, sizeof(int *));
  int *nk = calloc((size_t)e->st->n_kernels + 1, sizeof(int));
  if (!kfn || !krefs || !nk) abort();
  for (int k = 0; k < e->st->n_kernels; k++) {
    if (e->st->k[k].kind != SN_K_FUSED) continue;
    kfn[k] = kernel_share(ks, emit_fused(e, s, k, refs, &nk[k]));
    krefs[k] = malloc(sizeof(int) * (size_t)(nk[k] + 1));
    if (!krefs[k]) abort();
    memcpy(krefs[k], refs, sizeof(int) * (size_t)nk[k]);
    if (e->st->k[k].parts && !e->part_sum) e->part_sum = kernel_share(ks, emit_part_sum(e));
  }
  step_ctx sc;
  begin_step_fn(e, names[s], &sc);
  LLVMValueRef rng = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, sc.field[A_SEED], ci(e, (int64_t)0xA0761D6478BD642Full), ""),
                                  LLVMBuildMul(e->b, sc.field[A_STEP], ci(e, (int64_t)0xE7037ED1A0B428DBull), ""), "rng");
  for (int k = 0; k < e->st->n_kernels; k++) {
    const sn_kernel *kk = &e->st->k[k];
    LLVMValueRef t0 = prof_start(e);
    if (kk->kind == SN_K_GEMM) {
      emit_gemm(e, &sc, kk->gemm);
      prof_stop(e, e->prof_base + k, t0);
      continue;
    }
    unsigned na = (unsigned)nk[k] + KERNEL_ARGS;
    LLVMValueRef *a = malloc(sizeof(LLVMValueRef) * na);
    LLVMTypeRef *t = malloc(sizeof(LLVMTypeRef) * na);
    if (!a || !t) abort();
    a[0] = sc.field[A_ROWS];
    a[1] = rng;
    a[2] = ci(e, 0);
    a[3] = kk->batched ? LLVMBuildNSWMul(e->b, sc.field[A_ROWS], ci(e, kk->rows_mult), "R") : ci(e, kk->rows_mult);
    t[0] = t[1] = t[2] = t[3] = e->i64;
    for (int i = 0; i < nk[k]; i++) {
      a[i + KERNEL_ARGS] = buffer_ptr(e, &sc, krefs[k][i]);
      t[i + KERNEL_ARGS] = e->ptr;
    }
    LLVMTypeRef fty = LLVMFunctionType(e->voidt, t, na, 0);
    if (kk->parts) {
      emit_parts_call(e, s, k, &sc, kfn[k], fty, a, na, krefs[k]);
    } else if (e->cg->par && !e->cg->serial_rows && rows_independent(e->g, kk)) {
      /* rows in parts of about 16 K elements: a small kernel stays one part */
      char name[32];
      snprintf(name, sizeof name, "rows.task%u", na);
      int64_t w = row_width(e->g, kk);
      emit_pool_call(e, name, kfn[k], fty, a, na, 2, a[3], (16384 + w - 1) / w);
    } else {
      LLVMBuildCall2(e->b, fty, kfn[k], a, na, "");
    }
    prof_stop(e, e->prof_base + k, t0);
    free(a);
    free(t);
    free(krefs[k]);
  }
  LLVMBuildRetVoid(e->b);
  free(kfn);
  free(krefs);
  free(nk);
  free(refs);
}

/* ---------------------------------------------------------------------------
 * Kernels in parts (plan.h): part p of P runs rows [R p / P, R (p + 1) / P) with its
 * column sums at partial + p * cols, all of them laid side by side in the scratch;
 * a sum function adds the parts up into each column sum's buffer. */

/* void part_sum(ptr partials, ptr dest, i64 P, i64 cols, i64 C): dest[c] = sum
 * over p < P of partials[p cols + c], c < C, added in part order (the same sums
 * on any threads). One function for every kernel in parts: per kernel and sum
 * they were a tenth of fashion_cnn's LLVM time. */
static LLVMValueRef emit_part_sum(emitter *e) {
  LLVMTypeRef pt[5] = {e->ptr, e->ptr, e->i64, e->i64, e->i64};
  LLVMValueRef fn = begin_kernel(e, "part_sum", LLVMFunctionType(e->voidt, pt, 5, 0));
  set_noalias(e, fn, 0);
  set_noalias(e, fn, 1);
  LLVMValueRef src = LLVMGetParam(fn, 0), dst = LLVMGetParam(fn, 1), cols = LLVMGetParam(fn, 3);
  LLVMValueRef C = LLVMGetParam(fn, 4);
  loop L, Lp;
  LLVMValueRef c = loop_open(e, &L, C, "c");
  LLVMBuildStore(e->b, load_at_ptr(e, src, c), gep(e, e->ft, dst, c));
  loop_close(e, &L);
  LLVMValueRef p = LLVMBuildNSWAdd(e->b, loop_open(e, &Lp, LLVMBuildNSWSub(e->b, LLVMGetParam(fn, 2), ci(e, 1), ""), "p"), ci(e, 1), "");
  LLVMValueRef part = gep(e, e->ft, src, LLVMBuildNSWMul(e->b, p, cols, ""));
  c = loop_open(e, &L, C, "c");
  LLVMValueRef d = gep(e, e->ft, dst, c);
  LLVMBuildStore(e->b, LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->ft, d, ""), load_at_ptr(e, part, c), ""), d);
  loop_close(e, &L);
  loop_close(e, &Lp);
  LLVMBuildRetVoid(e->b);
  return fn;
}

/* parts.taskN(box, lo, hi): parts lo..hi of a kernel of type fty with N = na
 * arguments, box = {kernel, P, cols, sum mask, its arguments}: part p runs rows
 * [R p / P, R (p + 1) / P) with each column sum's pointer (a bit in the mask)
 * moved on to slice p. One per N in a module, like the row tasks. */
static LLVMValueRef parts_task(emitter *e, LLVMTypeRef fty, unsigned na, LLVMTypeRef box_t) {
  char name[32];
  snprintf(name, sizeof name, "parts.task%u", na);
  LLVMValueRef task = LLVMGetNamedFunction(e->mod, name);
  if (task) return task;
  task = new_task(e, name);
  LLVMValueRef *la = malloc(sizeof(LLVMValueRef) * (na + PARTS_BOX));
  LLVMValueRef *ca = malloc(sizeof(LLVMValueRef) * na);
  if (!la || !ca) abort();
  LLVMBuilderRef b = LLVMCreateBuilderInContext(e->ctx);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->ctx, task, "entry");
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->ctx, task, "part");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, task, "part.body");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, task, "part.done");
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef box = LLVMGetParam(task, 0);
  for (unsigned i = 0; i < na + PARTS_BOX; i++)
    la[i] = LLVMBuildLoad2(b, LLVMStructGetTypeAtIndex(box_t, i), LLVMBuildStructGEP2(b, box_t, box, i, ""), "");
  LLVMValueRef P = la[1], cols = la[2], mask = la[3], R = la[PARTS_BOX + 3];
  LLVMBuildBr(b, head);
  LLVMPositionBuilderAtEnd(b, head);
  LLVMValueRef p = LLVMBuildPhi(b, e->i64, "p");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, p, LLVMGetParam(task, 2), ""), body, done);
  LLVMPositionBuilderAtEnd(b, body);
  memcpy(ca, la + PARTS_BOX, sizeof(LLVMValueRef) * na);
  LLVMValueRef next = LLVMBuildNSWAdd(b, p, ci(e, 1), "");
  ca[2] = LLVMBuildSDiv(b, LLVMBuildNSWMul(b, R, p, ""), P, "");
  ca[3] = LLVMBuildSDiv(b, LLVMBuildNSWMul(b, R, next, ""), P, "");
  LLVMValueRef slice = LLVMBuildNSWMul(b, p, cols, "");
  for (unsigned i = KERNEL_ARGS; i < na && i < 64; i++) {
    LLVMValueRef bit = LLVMBuildAnd(b, LLVMBuildLShr(b, mask, ci(e, i), ""), ci(e, 1), "");
    LLVMValueRef off = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntNE, bit, ci(e, 0), ""), slice, ci(e, 0), "");
    LLVMValueRef idx[1] = {off};
    ca[i] = LLVMBuildInBoundsGEP2(b, e->ft, ca[i], idx, 1, "");
  }
  LLVMBuildCall2(b, fty, la[0], ca, na, "");
  LLVMBuildBr(b, head);
  LLVMValueRef in_v[2] = {LLVMGetParam(task, 1), next};
  LLVMBasicBlockRef in_b[2] = {entry, body};
  LLVMAddIncoming(p, in_v, in_b, 2);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  free(la);
  free(ca);
  return task;
}

/* ---------------------------------------------------------------------------
 * The optimizer update: one loop over the flat parameter buffer, in Keras's forms.
 *   adam:    alpha = lr sqrt(1-b2^t)/(1-b1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *            p -= alpha m / (sqrt(v) + eps)
 *   adamw:   p -= lr wd p first, then adam
 *   sgd:     p -= lr g; with momentum: m = mu m - lr g; p += m (nesterov: p += mu m - lr g)
 *   rmsprop: v = rho v + (1-rho) g^2; inc = lr g / sqrt(v + eps);
 *            p -= inc (with momentum: m = mu m + inc; p -= m)
 * With clip_grad_norm, a first loop sums g^2 and every g is scaled by
 * min(1, clip / (norm + 1e-6)) (PyTorch's clip_grad_norm_, over all parameters). */

int64_t sn_opt_state_count(const sn_graph *g) {
  int64_t P = g->param_count;
  switch (g->opt) {
  case SN_OPT_ADAM:
  case SN_OPT_ADAMW: return 2 * P;
  case SN_OPT_SGD: return g->momentum > 0 ? P : 0;
  case SN_OPT_RMSPROP: return g->momentum > 0 ? 2 * P : P;
  }
  return 0;
}

static LLVMValueRef fmul(emitter *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(e->b, a, b, ""); }
static LLVMValueRef fadd(emitter *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(e->b, a, b, ""); }
static LLVMValueRef fsub(emitter *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(e->b, a, b, ""); }

/* kernel(lo, hi, p, g, s0, s1, a, lr, gscale) over parameters lo..hi: a is alpha
 * for adam, unused otherwise */
enum { UPDATE_ARGS = 9 };
static LLVMValueRef emit_update_kernel(emitter *e) {
  const sn_graph *g = e->g;
  LLVMTypeRef pt[UPDATE_ARGS] = {e->i64, e->i64, e->ptr, e->ptr, e->ptr, e->ptr, e->ft, e->ft, e->ft};
  LLVMValueRef kf = begin_kernel(e, "update.k", LLVMFunctionType(e->voidt, pt, UPDATE_ARGS, 0));
  for (unsigned i = 2; i < 6; i++) set_noalias(e, kf, i);
  LLVMValueRef lo = LLVMGetParam(kf, 0), hi = LLVMGetParam(kf, 1), P = LLVMGetParam(kf, 2),
               G = LLVMGetParam(kf, 3), S0 = LLVMGetParam(kf, 4), S1 = LLVMGetParam(kf, 5),
               alpha = LLVMGetParam(kf, 6), lr = LLVMGetParam(kf, 7), gscale = LLVMGetParam(kf, 8);
  loop L;
  LLVMValueRef i = loop_open(e, &L, LLVMBuildNSWSub(e->b, hi, lo, ""), "i");
  LLVMBuilderRef b = e->b;
  i = LLVMBuildNSWAdd(b, i, lo, "");
  LLVMValueRef pp = gep(e, e->ft, P, i);
  LLVMValueRef gi = LLVMBuildLoad2(b, e->ft, gep(e, e->ft, G, i), "");
  if (g->clip_grad_norm > 0) gi = fmul(e, gi, gscale);
  LLVMValueRef p = LLVMBuildLoad2(b, e->ft, pp, "");
  switch (g->opt) {
  case SN_OPT_ADAMW:
    p = fsub(e, p, fmul(e, fmul(e, lr, cf(e, g->weight_decay)), p));
    /* fall through */
  case SN_OPT_ADAM: {
    LLVMValueRef mp = gep(e, e->ft, S0, i), vp = gep(e, e->ft, S1, i);
    LLVMValueRef m = fadd(e, fmul(e, cf(e, g->beta1), LLVMBuildLoad2(b, e->ft, mp, "")), fmul(e, cf(e, 1 - g->beta1), gi));
    LLVMValueRef v = fadd(e, fmul(e, cf(e, g->beta2), LLVMBuildLoad2(b, e->ft, vp, "")),
                          fmul(e, cf(e, 1 - g->beta2), fmul(e, gi, gi)));
    LLVMBuildStore(b, m, mp);
    LLVMBuildStore(b, v, vp);
    LLVMValueRef den = fadd(e, intrinsic(e, "llvm.sqrt", e->ft, &v, 1), cf(e, g->epsilon));
    p = fsub(e, p, LLVMBuildFDiv(b, fmul(e, alpha, m), den, ""));
    break;
  }
  case SN_OPT_SGD:
    if (g->momentum > 0) {
      LLVMValueRef mp = gep(e, e->ft, S0, i);
      LLVMValueRef m = fsub(e, fmul(e, cf(e, g->momentum), LLVMBuildLoad2(b, e->ft, mp, "")), fmul(e, lr, gi));
      LLVMBuildStore(b, m, mp);
      p = g->nesterov ? fadd(e, p, fsub(e, fmul(e, cf(e, g->momentum), m), fmul(e, lr, gi))) : fadd(e, p, m);
    } else {
      p = fsub(e, p, fmul(e, lr, gi));
    }
    break;
  case SN_OPT_RMSPROP: {
    LLVMValueRef vp = gep(e, e->ft, S0, i);
    LLVMValueRef v = fadd(e, fmul(e, cf(e, g->rho), LLVMBuildLoad2(b, e->ft, vp, "")),
                          fmul(e, cf(e, 1 - g->rho), fmul(e, gi, gi)));
    LLVMBuildStore(b, v, vp);
    LLVMValueRef ve = fadd(e, v, cf(e, g->epsilon));
    LLVMValueRef inc = LLVMBuildFDiv(b, fmul(e, lr, gi), intrinsic(e, "llvm.sqrt", e->ft, &ve, 1), "");
    if (g->momentum > 0) {
      LLVMValueRef mp = gep(e, e->ft, S1, i);
      LLVMValueRef m = fadd(e, fmul(e, cf(e, g->momentum), LLVMBuildLoad2(b, e->ft, mp, "")), inc);
      LLVMBuildStore(b, m, mp);
      inc = m;
    }
    p = fsub(e, p, inc);
    break;
  }
  }
  LLVMBuildStore(b, p, pp);
  loop_close(e, &L);
  LLVMBuildRetVoid(e->b);
  return kf;
}

/* sum of g^2 over the flat gradient buffer, in double */
static LLVMValueRef emit_grad_norm2(emitter *e) {
  LLVMValueRef kf = begin_kernel(e, "grad_norm2.k", LLVMFunctionType(e->f64, &e->ptr, 1, 0));
  LLVMValueRef acc = entry_alloca(e, e->f64, "acc");
  LLVMBuildStore(e->b, LLVMConstReal(e->f64, 0), acc);
  loop L;
  LLVMValueRef i = loop_open(e, &L, ci(e, e->g->param_count), "i");
  LLVMValueRef gi = LLVMBuildLoad2(e->b, e->ft, gep(e, e->ft, LLVMGetParam(kf, 0), i), "");
  if (e->ft != e->f64) gi = LLVMBuildFPExt(e->b, gi, e->f64, "");
  LLVMValueRef sum = LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, e->f64, acc, ""), LLVMBuildFMul(e->b, gi, gi, ""), "");
  fast(sum);
  LLVMBuildStore(e->b, sum, acc);
  loop_close(e, &L);
  LLVMBuildRet(e->b, LLVMBuildLoad2(e->b, e->f64, acc, ""));
  return kf;
}

static LLVMTypeRef update_kernel_type(emitter *e) {
  LLVMTypeRef pt[UPDATE_ARGS] = {e->i64, e->i64, e->ptr, e->ptr, e->ptr, e->ptr, e->ft, e->ft, e->ft};
  return LLVMFunctionType(e->voidt, pt, UPDATE_ARGS, 0);
}

/* The weights whose gradient is one A^T B product the pool cuts by rows (32 rows or
 * more, SN_PAR_GEMM_MIN multiply-adds or more at a full batch): {offset, rows, cols}
 * each, in parameter order, into t (room for 3 n_params). Returns how many. */
static int row_split_weights(const emitter *e, int64_t *t) {
  const sn_graph *gg = e->p->steps[SN_STEP_GRAD].g;
  int n = 0;
  for (int k = 0; k < gg->n_params; k++) {
    const sn_param_info *pi = &gg->params[k];
    int v = gg->param_grad ? gg->param_grad[k] : -1;
    if (v < 0 || pi->buffer || pi->rank < 2 || pi->shape[0] <= 0) continue;
    const sn_op *op = &gg->ops[v];
    if (op->code != SN_OP_MATMUL || !op->ta || op->tb || op->type.batched) continue;
    int64_t rows = pi->shape[0], cols = pi->count / rows;
    if (rows < 32 || rows * cols * e->g->batch_capacity < SN_PAR_GEMM_MIN) continue;
    if (n > 0 && t[3 * (n - 1)] >= pi->offset) return 0; /* not in offset order: no cut */
    t[3 * n] = pi->offset;
    t[3 * n + 1] = rows;
    t[3 * n + 2] = cols;
    n++;
  }
  return n;
}

/* sn_par_update(update.task, its box, P, the row-split weights, how many): the box
 * as emit_pool_call builds it, the table a constant of the module */
static void emit_update_call(emitter *e, LLVMValueRef kf, LLVMValueRef *args) {
  LLVMTypeRef fty = update_kernel_type(e);
  LLVMTypeRef ft[UPDATE_ARGS + 1];
  ft[0] = e->ptr;
  LLVMGetParamTypes(fty, ft + 1);
  LLVMTypeRef box_t = LLVMStructTypeInContext(e->ctx, ft, UPDATE_ARGS + 1, 0);
  LLVMValueRef task = pool_task(e, "update.task", fty, UPDATE_ARGS, 0, box_t);
  LLVMValueRef frame = LLVMBuildAlloca(e->b, box_t, "box");
  LLVMBuildStore(e->b, kf, LLVMBuildStructGEP2(e->b, box_t, frame, 0, ""));
  for (unsigned i = 2; i < UPDATE_ARGS; i++)
    LLVMBuildStore(e->b, args[i], LLVMBuildStructGEP2(e->b, box_t, frame, i + 1, ""));
  int64_t *t = malloc(sizeof(int64_t) * 3 * (size_t)(e->p->steps[SN_STEP_GRAD].g->n_params + 1));
  if (!t) abort();
  int n = row_split_weights(e, t);
  LLVMValueRef table = LLVMConstNull(e->ptr);
  if (n > 0) {
    LLVMValueRef *c = malloc(sizeof(LLVMValueRef) * 3 * (size_t)n);
    if (!c) abort();
    for (int i = 0; i < 3 * n; i++) c[i] = ci(e, t[i]);
    LLVMValueRef init = LLVMConstArray2(e->i64, c, (uint64_t)(3 * n));
    table = LLVMAddGlobal(e->mod, LLVMTypeOf(init), "update.rows");
    LLVMSetInitializer(table, init);
    LLVMSetGlobalConstant(table, 1);
    LLVMSetLinkage(table, LLVMPrivateLinkage);
    free(c);
  }
  LLVMTypeRef pt[5] = {e->ptr, e->ptr, e->i64, e->ptr, e->i32};
  LLVMTypeRef pft = LLVMFunctionType(e->voidt, pt, 5, 0);
  LLVMValueRef pf = LLVMGetNamedFunction(e->mod, "sn_par_update");
  if (!pf) pf = LLVMAddFunction(e->mod, "sn_par_update", pft);
  LLVMValueRef pa[5] = {task, frame, ci(e, e->g->param_count), table, LLVMConstInt(e->i32, (unsigned long long)n, 0)};
  LLVMBuildCall2(e->b, pft, pf, pa, 5, "");
  free(t);
}

static void emit_update(emitter *e) {
  const sn_graph *g = e->g;
  LLVMValueRef kf = emit_update_kernel(e);
  LLVMValueRef nf = g->clip_grad_norm > 0 ? emit_grad_norm2(e) : NULL;
  step_ctx sc;
  begin_step_fn(e, SN_FN_UPDATE, &sc);
  LLVMBuilderRef b = e->b;
  LLVMValueRef one = LLVMConstReal(e->f64, 1), lr = sc.field[A_LR], alpha = lr;
  if (g->opt == SN_OPT_ADAM || g->opt == SN_OPT_ADAMW) {
    LLVMValueRef t = LLVMBuildSIToFP(b, sc.field[A_STEP], e->f64, "t");
    LLVMValueRef a1[2] = {LLVMConstReal(e->f64, g->beta1), t}, a2[2] = {LLVMConstReal(e->f64, g->beta2), t};
    LLVMValueRef b1t = intrinsic(e, "llvm.pow", e->f64, a1, 2), b2t = intrinsic(e, "llvm.pow", e->f64, a2, 2);
    LLVMValueRef c2 = LLVMBuildFSub(b, one, b2t, "");
    alpha = LLVMBuildFDiv(b, LLVMBuildFMul(b, lr, intrinsic(e, "llvm.sqrt", e->f64, &c2, 1), ""),
                          LLVMBuildFSub(b, one, b1t, ""), "alpha");
  }
  LLVMValueRef gscale = one;
  if (nf) { /* min(1, clip / (norm + 1e-6)) */
    LLVMValueRef n2 = LLVMBuildCall2(b, LLVMFunctionType(e->f64, &e->ptr, 1, 0), nf, &sc.field[A_GRADS], 1, "");
    LLVMValueRef norm = intrinsic(e, "llvm.sqrt", e->f64, &n2, 1);
    LLVMValueRef q = LLVMBuildFDiv(b, LLVMConstReal(e->f64, g->clip_grad_norm),
                                   LLVMBuildFAdd(b, norm, LLVMConstReal(e->f64, 1e-6), ""), "");
    LLVMValueRef mm[2] = {q, one};
    gscale = intrinsic(e, "llvm.minnum", e->f64, mm, 2);
  }
  if (e->ft != e->f64) {
    alpha = LLVMBuildFPTrunc(b, alpha, e->ft, "");
    lr = LLVMBuildFPTrunc(b, lr, e->ft, "");
    gscale = LLVMBuildFPTrunc(b, gscale, e->ft, "");
  }
  int64_t es = g->dtype == SN_F64 ? 8 : 4;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx);
  LLVMValueRef off = ci(e, g->param_count * es);
  LLVMValueRef s1 = LLVMBuildInBoundsGEP2(b, i8, sc.field[A_OPT], &off, 1, "");
  LLVMValueRef args[UPDATE_ARGS] = {ci(e, 0), ci(e, g->param_count), sc.field[A_PARAMS], sc.field[A_GRADS],
                                    sc.field[A_OPT], s1, alpha, lr, gscale};
  LLVMValueRef t0 = prof_start(e);
  if (e->cg->par) /* the pool runs update.k on ranges of parameters, cut as the products were */
    emit_update_call(e, kf, args);
  else
    LLVMBuildCall2(b, update_kernel_type(e), kf, args, UPDATE_ARGS, "");
  prof_stop(e, e->prof_base, t0);
  LLVMBuildRetVoid(b);
}

static void emit_train(emitter *e) {
  step_ctx sc;
  begin_step_fn(e, SN_FN_TRAIN, &sc);
  LLVMTypeRef fty = LLVMFunctionType(e->voidt, &e->ptr, 1, 0);
  LLVMBuildCall2(e->b, fty, LLVMGetNamedFunction(e->mod, SN_FN_GRAD), &sc.args, 1, "");
  LLVMBuildCall2(e->b, fty, LLVMGetNamedFunction(e->mod, SN_FN_UPDATE), &sc.args, 1, "");
  LLVMBuildRetVoid(e->b);
}

/* A step function of another module of the program, resolved when the objects are
 * linked. */
static void declare_step(emitter *e, const char *name) {
  if (!LLVMGetNamedFunction(e->mod, name)) LLVMAddFunction(e->mod, name, LLVMFunctionType(e->voidt, &e->ptr, 1, 0));
}

/* An emitter for module m (of cg's context) and plan p. */
static void emitter_init(emitter *e, sn_codegen *cg, const sn_plan *p, LLVMModuleRef m) {
  *e = (emitter){.cg = cg, .ctx = cg->ctx, .g = p->g, .p = p, .mod = m};
  e->b = LLVMCreateBuilderInContext(cg->ctx);
  e->sb = LLVMCreateBuilderInContext(cg->ctx);
  e->ft = p->g->dtype == SN_F64 ? LLVMDoubleTypeInContext(cg->ctx) : LLVMFloatTypeInContext(cg->ctx);
  e->f64 = LLVMDoubleTypeInContext(cg->ctx);
  e->i64 = LLVMInt64TypeInContext(cg->ctx);
  e->i32 = LLVMInt32TypeInContext(cg->ctx);
  e->i1 = LLVMInt1TypeInContext(cg->ctx);
  e->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  e->voidt = LLVMVoidTypeInContext(cg->ctx);
  e->args_t = args_type(e);
  size_t n = (size_t)(p->steps[0].g->n > p->steps[1].g->n ? p->steps[0].g->n : p->steps[1].g->n) + 1;
  e->ref = calloc(n, sizeof(LLVMValueRef));
  e->row_memo = calloc(n, sizeof(LLVMValueRef));
  e->elem_memo = calloc(n, sizeof(LLVMValueRef));
  e->scalar_memo = calloc(n, sizeof(LLVMValueRef));
  e->alias = calloc(n, sizeof(int));
  e->row_level = calloc(n, 1);
  if (!e->ref || !e->row_memo || !e->elem_memo || !e->scalar_memo || !e->alias || !e->row_level) abort();
}

static void emitter_done(emitter *e) {
  free(e->ref);
  free(e->row_memo);
  free(e->elem_memo);
  free(e->scalar_memo);
  free(e->alias);
  free(e->row_level);
  LLVMDisposeBuilder(e->b);
  LLVMDisposeBuilder(e->sb);
}

LLVMModuleRef sn_emit_module(sn_codegen *cg, const sn_plan *p, unsigned parts, sn_kernels *shared) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("specnet", cg->ctx);
  LLVMSetTarget(m, cg->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
  char *dl = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(m, dl);
  LLVMDisposeMessage(dl);
  LLVMDisposeTargetData(td);
  emitter e;
  emitter_init(&e, cg, p, m);
  int total = 1; /* the update */
  for (int s = 0; s < SN_STEP_COUNT; s++) total += p->steps[s].n_kernels;
  if (cg->profile) {
    /* one table for the program: the module with the update defines it, the
     * others refer to it; all number kernels the same way */
    LLVMTypeRef t = LLVMArrayType2(e.i64, (uint64_t)(2 * total));
    e.prof = LLVMAddGlobal(e.mod, t, SN_PROFILE_SYM);
    if (parts & SN_EMIT_UPDATE) LLVMSetInitializer(e.prof, LLVMConstNull(t));
  }
  sn_kernels *ks = shared ? shared : sn_kernels_new();
  for (int s = 0; s < SN_STEP_COUNT; s++) {
    if (parts & (1u << s)) emit_step(&e, s, ks);
    e.prof_base += p->steps[s].n_kernels;
  }
  if (!shared) sn_kernels_free(ks);
  e.g = p->g;
  if (parts & SN_EMIT_UPDATE) emit_update(&e);
  if (parts & SN_EMIT_TRAIN) {
    declare_step(&e, SN_FN_GRAD);
    declare_step(&e, SN_FN_UPDATE);
    emit_train(&e);
  }
  emitter_done(&e);
  return m;
}

/* ---------------------------------------------------------------------------
 * Balancing a split program: its two modules are compiled on two threads, so the
 * compile lasts as long as the larger one. */

/* A function's LLVM work (O2 and code generation), estimated from its IR: 1 per
 * instruction, and 80 more for a kernel (its loops are vectorized), 6 more for any
 * other function. On Zen 5 a kernel took about 4 ms plus 0.05 ms per instruction,
 * a pool task about 1 ms. */
static int64_t fn_cost(LLVMValueRef fn) {
  int64_t n = 0;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) n++;
  unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
  return n + (LLVMGetEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, noinline) ? 80 : 6);
}

static int64_t module_cost(LLVMModuleRef m) {
  int64_t c = 0;
  for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn))
    if (!LLVMIsDeclaration(fn)) c += fn_cost(fn);
  return c;
}

/* Kernel k of step s, fn in another module, defined in to's module instead (emitted
 * again, external) and only declared where it was. */
static void move_kernel(emitter *to, int s, int k, LLVMValueRef fn, int *refs) {
  char name[64];
  snprintf(name, sizeof name, "%s.k%d", sn_step_name((sn_step_kind)s), k);
  use_step(to, s);
  int nr;
  LLVMValueRef copy = emit_fused(to, s, k, refs, &nr);
  LLVMValueRef had = LLVMGetNamedFunction(to->mod, name); /* a declaration, if any */
  if (had != copy) {
    LLVMReplaceAllUsesWith(had, copy);
    LLVMDeleteFunction(had);
    LLVMSetValueName2(copy, name, strlen(name));
  }
  LLVMSetLinkage(copy, LLVMExternalLinkage);
  LLVMSetVisibility(copy, LLVMHiddenVisibility);
  LLVMModuleRef from = LLVMGetGlobalParent(fn);
  LLVMValueRef decl = LLVMAddFunction(from, "", LLVMGlobalGetValueType(fn));
  LLVMReplaceAllUsesWith(fn, decl);
  LLVMDeleteFunction(fn);
  LLVMSetValueName2(decl, name, strlen(name));
}

void sn_emit_balance(sn_codegen *const cg[2], LLVMModuleRef m[2], const sn_plan *p) {
  int64_t cost[2] = {module_cost(m[0]), module_cost(m[1])};
  int from = cost[0] > cost[1] ? 0 : 1, to = 1 - from;
  int64_t diff = cost[from] - cost[to];
  emitter e;
  emitter_init(&e, cg[to], p, m[to]);
  int n = 0;
  for (int s = 0; s < SN_STEP_COUNT; s++) n = p->steps[s].g->n > n ? p->steps[s].g->n : n;
  int *refs = malloc(sizeof(int) * (size_t)(n + 1));
  if (!refs) abort();
  /* the last kernels of each step first: a gradient step's backward ones */
  for (int s = 0; s < SN_STEP_COUNT; s++)
    for (int k = p->steps[s].n_kernels - 1; k >= 0; k--) {
      if (p->steps[s].k[k].kind != SN_K_FUSED) continue;
      char name[64];
      snprintf(name, sizeof name, "%s.k%d", sn_step_name((sn_step_kind)s), k);
      LLVMValueRef fn = LLVMGetNamedFunction(m[from], name);
      if (!fn || LLVMIsDeclaration(fn)) continue;
      int64_t c = fn_cost(fn);
      if (c >= diff) continue; /* moving it would not bring the two closer */
      move_kernel(&e, s, k, fn, refs);
      diff -= 2 * c;
    }
  free(refs);
  emitter_done(&e);
}
