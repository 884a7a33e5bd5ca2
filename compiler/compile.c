/* The compiler's passes in order, in one place:
 *   build_graph -> autodiff -> expand -> plan (fuse + memory) -> emit -> O2 -> JIT
 * and `emit --what` printing the program after any of them. Where there are two
 * CPUs, emit makes two modules whose O2 and machine code run on two threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "spec.h"
#include "specnet/compiler.h"

struct sn_compiled {
  sn_program prog; /* the graphs and the plan (sn_pipeline, in place: it points into itself) */
  sn_codegen cg;
  sn_jit *jit;
  sn_model model;
  sn_compile_times times;
  int64_t *prof;          /* profile counters in the JIT'd code, or NULL */
  int n_prof;
  char (*prof_name)[300]; /* per counter: what it measures */
  double prof_t0;         /* sn_now() and cycle counter at compile time, to */
  uint64_t prof_c0;       /*   convert cycles to seconds */
};

static uint64_t cycles(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_rdtsc();
#else
  return (uint64_t)(sn_now() * 1e9);
#endif
}

/* Names of the profile counters, in the order emit_llvm.c numbers them. */
static void name_kernels(sn_compiled *c) {
  int n = 1;
  for (int s = 0; s < SN_STEP_COUNT; s++) n += c->prog.plan.steps[s].n_kernels;
  c->prof_name = calloc((size_t)n, sizeof *c->prof_name);
  if (!c->prof_name) abort();
  int i = 0;
  for (int s = 0; s < SN_STEP_COUNT; s++) {
    const sn_step *st = &c->prog.plan.steps[s];
    for (int k = 0; k < st->n_kernels; k++, i++) {
      const sn_kernel *kk = &st->k[k];
      const sn_graph *g = st->g;
      char *p = c->prof_name[i];
      size_t len = sizeof c->prof_name[0];
      if (kk->kind == SN_K_GEMM) {
        const sn_op *op = &g->ops[kk->gemm];
        char ta[48], tb[48];
        FILE *f = fmemopen(ta, sizeof ta, "w");
        sn_type_print(&g->ops[op->in[0]].type, f);
        fclose(f);
        f = fmemopen(tb, sizeof tb, "w");
        sn_type_print(&g->ops[op->in[1]].type, f);
        fclose(f);
        if (op->code == SN_OP_MATMUL)
          snprintf(p, len, "%s k%d gemm %s%s x %s%s (%s)", sn_step_name((sn_step_kind)s), k, ta, op->ta ? "^T" : "",
                   tb, op->tb ? "^T" : "", op->layer);
        else
          snprintf(p, len, "%s k%d %s (%s)", sn_step_name((sn_step_kind)s), k, sn_opdefs[op->code].name, op->layer);
      } else {
        int n2 = snprintf(p, len, "%s k%d kernel:", sn_step_name((sn_step_kind)s), k);
        for (int j = 0; j < kk->n_ops && n2 < (int)len; j++)
          n2 += snprintf(p + n2, len - (size_t)n2, " %s", sn_opdefs[g->ops[kk->ops[j]].code].name);
      }
    }
  }
  snprintf(c->prof_name[i], sizeof c->prof_name[0], "update (optimizer)");
  c->n_prof = n;
}

typedef struct prof_row {
  int i;
  int64_t cyc, calls;
} prof_row;

static int by_cycles(const void *a, const void *b) {
  const prof_row *x = a, *y = b;
  return (y->cyc > x->cyc) - (y->cyc < x->cyc);
}

void sn_compiled_profile(const sn_compiled *c, FILE *out) {
  if (!c->prof) {
    fprintf(out, "no profile: compile with profiling on (--profile)\n");
    return;
  }
  double hz = (double)(cycles() - c->prof_c0) / (sn_now() - c->prof_t0);
  prof_row *r = malloc(sizeof(prof_row) * (size_t)c->n_prof);
  if (!r) abort();
  int64_t total = 0;
  for (int i = 0; i < c->n_prof; i++) {
    r[i] = (prof_row){i, c->prof[2 * i], c->prof[2 * i + 1]};
    total += r[i].cyc;
  }
  qsort(r, (size_t)c->n_prof, sizeof *r, by_cycles);
  fprintf(out, "profile: %.3f s in kernels (cycle counter at %.2f GHz)\n", (double)total / hz, hz / 1e9);
  fprintf(out, "%9s %6s %10s %11s  %s\n", "seconds", "share", "calls", "us/call", "kernel");
  for (int i = 0; i < c->n_prof; i++) {
    if (!r[i].calls) continue;
    fprintf(out, "%9.3f %5.1f%% %10lld %11.2f  %s\n", (double)r[i].cyc / hz,
            total ? 100.0 * (double)r[i].cyc / (double)total : 0.0, (long long)r[i].calls,
            (double)r[i].cyc / hz / (double)r[i].calls * 1e6, c->prof_name[r[i].i]);
  }
  free(r);
}

/* Module A of a two-way split; B is the rest (eval and predict, and the update).
 * B is emitted first, so the forward kernels the gradient step shares with eval
 * and predict are defined in B and only declared in A: A keeps the backward
 * kernels. On fashion_cnn that took the two modules' LLVM CPU time from about
 * 135 and 450 ms to 240 and 335 ms (emitting A first left B little but the
 * update). sn_emit_balance then moves kernels from the larger to the other. */
#define SN_SPLIT_A (SN_EMIT_GRAD | SN_EMIT_TRAIN)

/* One module of the program and its object code. */
typedef struct part {
  sn_codegen *cg; /* a context and target machine of its own */
  LLVMModuleRef m;
  char *obj;
  size_t objn;
  int rc;
  char err[512];
} part;

static void *compile_part(void *arg) {
  part *pt = arg;
  pt->rc = sn_optimize(pt->cg, pt->m, pt->err, sizeof pt->err)
               ? -1
               : sn_module_object(pt->cg, pt->m, &pt->obj, &pt->objn, pt->err, sizeof pt->err);
  return NULL;
}

/* O2 + object code for every part, the first on this thread, the others on
 * threads of their own. */
static int compile_parts(part *pt, int n) {
  pthread_t th[2];
  bool started[2] = {false, false};
  for (int i = 1; i < n; i++) started[i] = pthread_create(&th[i], NULL, compile_part, &pt[i]) == 0;
  compile_part(&pt[0]);
  int rc = pt[0].rc;
  for (int i = 1; i < n; i++) {
    if (started[i]) pthread_join(th[i], NULL);
    else compile_part(&pt[i]);
    rc |= pt[i].rc;
  }
  return rc;
}

static void internal_error(sn_diag *d, const char *path, const char *what, const char *msg) {
  sn_loc loc = {path, 0, 0};
  sn_diag_error(d, loc, "%s: %s", what, msg);
}

sn_compiled *sn_compile(const sn_spec *spec, sn_dtype_rt dtype, sn_diag *d) {
  sn_compile_opts o = {.dtype = dtype};
  return sn_compile_with(spec, &o, d);
}

/* The step functions of the JIT'd code (and the profile counters with profiling). */
static void bind_steps(sn_compiled *c, bool profile) {
  sn_model *mo = &c->model;
  if (c->jit) {
    mo->grad_step = (sn_step_fn)sn_jit_lookup(c->jit, SN_FN_GRAD);
    mo->update = (sn_step_fn)sn_jit_lookup(c->jit, SN_FN_UPDATE);
    mo->train_step = (sn_step_fn)sn_jit_lookup(c->jit, SN_FN_TRAIN);
    mo->eval_step = (sn_step_fn)sn_jit_lookup(c->jit, SN_FN_EVAL);
    mo->predict = (sn_step_fn)sn_jit_lookup(c->jit, SN_FN_PREDICT);
    if (profile) {
      c->prof = sn_jit_lookup(c->jit, SN_PROFILE_SYM);
      name_kernels(c);
      c->prof_t0 = sn_now();
      c->prof_c0 = cycles();
    }
  }
}

/* The model's sizes and layout, read off the training graph and the plan. */
static void model_layout(sn_compiled *c, sn_dtype_rt dtype) {
  sn_model *mo = &c->model;
  const sn_graph *g = &c->prog.train;
  mo->dtype = dtype;
  mo->batch_capacity = g->batch_capacity;
  mo->input_elems = sn_type_elems(&g->ops[g->input].type);
  mo->output_elems = sn_type_elems(&g->ops[g->output].type);
  mo->target_elems = g->target >= 0 ? sn_type_elems(&g->ops[g->target].type) : 0;
  mo->label_elems = g->label >= 0 ? sn_type_elems(&g->ops[g->label].type) : 0;
  const sn_type *ot = &g->ops[g->output].type;
  mo->classes = ot->rank > 0 ? ot->dim[ot->rank - 1] : 1;
  mo->param_count = g->param_count;
  mo->opt_state_count = sn_opt_state_count(g);
  mo->state_count = g->state_count;
  mo->arena_bytes = c->prog.plan.arena_bytes;
  mo->n_params = g->n_params;
  mo->params_info = g->params;
  mo->n_metrics = g->n_metrics;
  mo->metric_names = g->metric_names;
}

sn_compiled *sn_compile_with(const sn_spec *spec, const sn_compile_opts *o, sn_diag *d) {
  sn_dtype_rt dtype = o->dtype;
  sn_compiled *c = calloc(1, sizeof *c);
  if (!c) abort();
  if (sn_pipeline(spec, dtype == SN_RT_F64 ? SN_F64 : SN_F32, SN_STAGE_PLAN, &c->prog, d)) {
    free(c);
    return NULL;
  }
  c->times = c->prog.times;
  double t1 = sn_now();
  char err[512];
  if (sn_cpu_runs_here(sn_cpu_default(), err, sizeof err) || sn_codegen_init(&c->cg, err, sizeof err)) {
    internal_error(d, spec->path, "LLVM target", err);
    sn_compiled_free(c);
    return NULL;
  }
  c->cg.profile = o->profile;
  /* the program in modules of about equal LLVM work, compiled in parallel */
  int np = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
  static const unsigned split[2][2] = {{SN_EMIT_ALL}, {SN_SPLIT_A, SN_EMIT_ALL & ~SN_SPLIT_A}};
  sn_codegen cg2 = {0}; /* the second module's context and target machine */
  part pt[2] = {{.cg = &c->cg}, {.cg = &cg2}};
  if (np > 1 && sn_codegen_clone(&c->cg, &cg2, err, sizeof err)) np = 1;
  sn_kernels *ks = sn_kernels_new(); /* a kernel in both modules is compiled once */
  for (int i = np - 1; i >= 0; i--) /* B first: see SN_SPLIT_A */ pt[i].m = sn_emit_module(pt[i].cg, &c->prog.plan, split[np - 1][i], ks);
  sn_kernels_free(ks);
  if (np > 1) sn_emit_balance((sn_codegen *const[2]){pt[0].cg, pt[1].cg}, (LLVMModuleRef[2]){pt[0].m, pt[1].m}, &c->prog.plan);
  double t2 = sn_now();
  /* object code: from the cache when a valid entry exists, else O2 + codegen */
  char dir[4096];
  bool use_cache = !o->no_cache && sn_cache_dir(dir, sizeof dir) == 0;
  uint64_t key[2];
  LLVMModuleRef mods[2] = {pt[0].m, pt[1].m};
  const char *obj[2] = {NULL, NULL};
  size_t objn[2] = {0, 0};
  char *cached = NULL;
  if (use_cache) {
    sn_cache_key(&c->cg, np, mods, key);
    cached = sn_cache_read(dir, key, np, objn);
    c->times.cached = cached != NULL;
  }
  int rc = 0;
  if (cached) {
    obj[0] = cached;
    if (np > 1) obj[1] = cached + objn[0];
  } else {
    rc = compile_parts(pt, np);
    for (int i = 0; i < np; i++) {
      obj[i] = pt[i].obj;
      objn[i] = pt[i].objn;
    }
    if (!rc && use_cache) sn_cache_write(dir, key, np, obj, objn);
  }
  for (int i = 0; i < np; i++) LLVMDisposeModule(pt[i].m);
  double t3 = sn_now();
  if (!rc) c->jit = sn_jit_create_object(&c->cg, np, obj, objn, err, sizeof err);
  free(cached);
  for (int i = 0; i < np; i++) free(pt[i].obj);
  sn_codegen_dispose(&cg2);
  if (rc) {
    internal_error(d, spec->path, "LLVM", pt[0].rc ? pt[0].err : pt[1].err);
    sn_compiled_free(c);
    return NULL;
  }
  bind_steps(c, o->profile);
  sn_model *mo = &c->model;
  if (!c->jit || !mo->grad_step || !mo->update || !mo->train_step || !mo->eval_step || !mo->predict) {
    internal_error(d, spec->path, "JIT", c->jit ? "a step function is missing" : err);
    sn_compiled_free(c);
    return NULL;
  }
  c->times.emit = t2 - t1;
  c->times.optimize = t3 - t2;
  c->times.jit = sn_now() - t3;
  model_layout(c, dtype);
  return c;
}

sn_model *sn_compiled_model(sn_compiled *c) { return &c->model; }
const sn_compile_times *sn_compiled_times(const sn_compiled *c) { return &c->times; }

void sn_compiled_free(sn_compiled *c) {
  if (!c) return;
  sn_jit_free(c->jit);
  free(c->prof_name);
  sn_codegen_dispose(&c->cg);
  sn_program_free(&c->prog);
  free(c);
}

int sn_check_graph(const sn_spec *spec, sn_diag *d) {
  sn_program p;
  int rc = sn_pipeline(spec, SN_F32, SN_STAGE_GRAPH, &p, d);
  sn_program_free(&p);
  return rc;
}

/* `specnet check`: one line per layer, then the totals, as Keras's summary: the
 * columns as wide as their longest entry, trainable and non-trainable (running
 * statistics) parameters apart, and a "connected to" column when the spec is a graph
 * (some layer's `inputs:` is not just the layer before it). */
typedef struct table_row {
  const char *name, *op;
  char shape[128];
  int64_t params;
  const sn_layer_spec *layer; /* NULL for the model input */
} table_row;

static void type_string(const sn_type *t, char *buf, size_t size) {
  memset(buf, 0, size);
  FILE *f = fmemopen(buf, size - 1, "w");
  if (!f) return;
  sn_type_print(t, f);
  fclose(f);
}

static bool is_graph_spec(const sn_spec *spec) {
  for (int i = 0; i < spec->n_layers; i++) {
    const sn_layer_spec *l = &spec->layers[i];
    const char *prev = i ? spec->layers[i - 1].name : "input";
    if (l->n_inputs != 1 || strcmp(l->inputs[0], prev)) return true;
  }
  return false;
}

static void print_table(const sn_spec *spec, const sn_graph *g, FILE *out) {
  int n = g->n_layers + 1;
  table_row *rows = calloc((size_t)n, sizeof *rows);
  if (!rows) return;
  rows[0] = (table_row){.name = "input", .op = "input"};
  type_string(&g->ops[g->input].type, rows[0].shape, sizeof rows[0].shape);
  int64_t trainable = 0, state = 0;
  for (int i = 0; i < g->n_layers; i++) {
    const sn_layer_spec *l = &spec->layers[i];
    table_row *r = &rows[i + 1];
    r->layer = l;
    r->name = l->name;
    r->op =
        l->kind == SN_LAYER_ACTIVATION ? sn_act_name(l->activation) : sn_layer_kind_name(l->kind);
    size_t len = strlen(l->name);
    for (int k = 0; k < g->n_params; k++) {
      const sn_param_info *pi = &g->params[k];
      if (strncmp(pi->name, l->name, len) || pi->name[len] != '.') continue;
      r->params += pi->count;
      if (pi->buffer)
        state += pi->count;
      else
        trainable += pi->count;
    }
    type_string(&g->ops[g->layer_out[i]].type, r->shape, sizeof r->shape);
  }
  int wn = (int)strlen("layer"), wo = (int)strlen("op"), ws = (int)strlen("output"),
      wp = (int)strlen("parameters");
  for (int i = 0; i < n; i++) {
    char num[32];
    int len = snprintf(num, sizeof num, "%lld", (long long)rows[i].params);
    if ((int)strlen(rows[i].name) > wn) wn = (int)strlen(rows[i].name);
    if ((int)strlen(rows[i].op) > wo) wo = (int)strlen(rows[i].op);
    if ((int)strlen(rows[i].shape) > ws) ws = (int)strlen(rows[i].shape);
    if (len > wp) wp = len;
  }
  bool graph = is_graph_spec(spec);
  fprintf(out, "%-*s  %-*s  %-*s  %*s", wn, "layer", wo, "op", ws, "output", wp, "parameters");
  fputs(graph ? "  connected to\n" : "\n", out);
  for (int i = 0; i < n; i++) {
    const table_row *r = &rows[i];
    fprintf(out, "%-*s  %-*s  %-*s  %*lld", wn, r->name, wo, r->op, ws, r->shape, wp,
            (long long)r->params);
    if (graph && r->layer) {
      fputs("  ", out);
      for (int k = 0; k < r->layer->n_inputs; k++)
        fprintf(out, "%s%s", k ? ", " : "", r->layer->inputs[k]);
    }
    fputc('\n', out);
  }
  int64_t total = trainable + state;
  fprintf(out, "total parameters: %lld (trainable %lld, non-trainable %lld; %.1f KiB as f32)\n",
          (long long)total, (long long)trainable, (long long)state, (double)total * 4 / 1024);
  free(rows);
}

/* `emit --what llvm|asm`: the whole program as one optimized module. */
static int emit_code(const sn_spec *spec, const sn_plan *plan, const char *what, FILE *out, sn_diag *d) {
  sn_codegen cg;
  char err[512];
  if (sn_codegen_init(&cg, err, sizeof err)) {
    internal_error(d, spec->path, "LLVM target", err);
    return -1;
  }
  int rc = 0;
  LLVMModuleRef m = sn_emit_module(&cg, plan, SN_EMIT_ALL, NULL);
  if (sn_optimize(&cg, m, err, sizeof err)) {
    internal_error(d, spec->path, "LLVM optimization", err);
    rc = -1;
  } else if (!strcmp(what, "llvm")) {
    char *s = LLVMPrintModuleToString(m);
    fputs(s, out);
    LLVMDisposeMessage(s);
  } else {
    char *s = sn_module_asm(&cg, m, err, sizeof err);
    if (s) fputs(s, out);
    else {
      internal_error(d, spec->path, "assembly", err);
      rc = -1;
    }
    free(s);
  }
  LLVMDisposeModule(m);
  sn_codegen_dispose(&cg);
  return rc;
}

int sn_emit_stage(const sn_spec *spec, const char *what, sn_dtype_rt dtype, FILE *out, sn_diag *d) {
  bool table = !strcmp(what, "table"), ir = !strcmp(what, "ir"), grad = !strcmp(what, "grad");
  sn_program p;
  if (sn_pipeline(spec, dtype == SN_RT_F64 ? SN_F64 : SN_F32,
                  table || ir ? SN_STAGE_GRAPH : grad ? SN_STAGE_GRAD : SN_STAGE_PLAN, &p, d))
    return -1;
  int rc = 0;
  if (table) print_table(spec, &p.train, out);
  else if (ir || grad) sn_graph_print(&p.train, out, grad);
  else if (!strcmp(what, "plan")) sn_plan_print(&p.plan, out);
  else rc = emit_code(spec, &p.plan, what, out, d);
  sn_program_free(&p);
  return rc;
}
