/* specnet compiler: spec -> IR -> autodiff -> fusion -> LLVM -> JIT'd step functions.
 *
 * A worked example (what `specnet train` does before the runtime takes over):
 *
 *   sn_diag d = {0};
 *   sn_spec *spec = sn_spec_load("specs/mnist_mlp.yaml", NULL, 0, &d);
 *   if (!spec) { sn_diag_print(&d, stderr); return 1; }
 *   sn_compiled *c = sn_compile(spec, SN_RT_F32, &d);   // NULL + diagnostics on error
 *   sn_model *m = sn_compiled_model(c);                  // step functions, sizes
 *   sn_model_alloc(m, &err); sn_model_init_params(m, sn_spec_seed(spec));
 *   ... sn_train(m, ...) ...
 *   sn_model_free(m); sn_compiled_free(c); sn_spec_free(spec);
 *
 * Ownership: sn_compiled owns the JIT'd code and the parameter table the model
 * points to; free it after the model. The spec may be freed after sn_compile. */
#ifndef SPECNET_COMPILER_H
#define SPECNET_COMPILER_H

#include <stdio.h>

#include "specnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sn_spec sn_spec; /* a checked spec (opaque here) */
typedef struct sn_compiled sn_compiled;

/* ---------------------------------------------------------------------------
 * Diagnostics: every problem of a run, each at its spec position. */

typedef struct sn_loc {
  const char *file; /* not owned: in a tree, the name held by the document's root
                     * (sn_node.owned_name); in a sn_diag entry, the diag's copy */
  int line, col;    /* 1-based; 0 when unknown */
} sn_loc;

typedef enum sn_severity { SN_ERROR, SN_WARNING } sn_severity;

typedef struct sn_diag_entry {
  sn_severity sev;
  sn_loc loc;
  char *msg;  /* owned */
  char *hint; /* owned, or NULL */
} sn_diag_entry;

/* Collects every problem of a run, in the order found. */
typedef struct sn_diag {
  sn_diag_entry *v;
  int n, cap;
  int errors, warnings;
  char **files; /* owned copies of the file names entries point at */
  int n_files;
} sn_diag;

/* Prints "file:line:col: error: msg" (+ "file:line:col: hint: ...") per entry. */
void sn_diag_print(const sn_diag *d, FILE *out);
/* The same text in a malloc'd string (NULL when out of memory). */
char *sn_diag_text(const sn_diag *d);
void sn_diag_free(sn_diag *d);
/* Adding entries: an error or a warning at loc, a hint attached to the last entry
 * ("did you mean 'units'?"). */
void sn_diag_error(sn_diag *d, sn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sn_diag_warning(sn_diag *d, sn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sn_diag_hint(sn_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Orders entries [first, n) by file (in order of first appearance), line and
 * column; entries at the same place keep their order. A checker that visits the
 * spec section by section calls this so the report reads top to bottom. */
void sn_diag_sort(sn_diag *d, int first);
/* The closest of `n` candidates to `word` by edit distance, or NULL if none is
 * close enough to suggest. */
const char *sn_closest(const char *word, const char *const *cands, int n);

/* ---------------------------------------------------------------------------
 * Specs and compiling them */

/* Reads and checks a spec. Every problem goes to d; returns NULL if any error.
 * `sets` are --set assignments ("train.epochs=1", the value read as YAML) applied
 * to the tree before checking. */
sn_spec *sn_spec_load(const char *path, const char *const *sets, int n_sets, sn_diag *d);
void sn_spec_free(sn_spec *s);
const char *sn_spec_name(const sn_spec *s); /* name: */
uint64_t sn_spec_seed(const sn_spec *s);    /* seed: */
const char *sn_spec_path(const sn_spec *s); /* the file it was read from */
int sn_spec_epochs(const sn_spec *s);        /* train.epochs */
bool sn_spec_has_sweep(const sn_spec *s);    /* a sweep: section */
/* Whether the model's output is probabilities: its last layer ends in a softmax
 * (and the loss does not read logits). */
bool sn_spec_softmax_output(const sn_spec *s);
/* data.train, as the runtime's loaders read a source. */
const sn_source *sn_spec_train_source(const sn_spec *s);
/* What the loss reads the outputs as: class scores (the categorical
 * cross-entropies), binary ones (binary cross-entropy), or values (the rest). */
typedef enum sn_loss_targets { SN_TARGETS_VALUES, SN_TARGETS_CLASSES, SN_TARGETS_BINARY } sn_loss_targets;
sn_loss_targets sn_spec_loss_targets(const sn_spec *s);
bool sn_spec_from_logits(const sn_spec *s); /* the loss reads logits */
/* The spec's data: section as the runtime's data pipeline reads it
 * (sn_data_prepare). */
void sn_spec_data_config(const sn_spec *s, sn_data_config *c);
/* Where the spec says what `which` (a data source, or data.preprocess) is. */
sn_loc sn_spec_data_loc(const sn_spec *s, sn_data_part which);
/* The spec's train: section as sn_train's options: epochs, batches, shuffle, seed,
 * learning rate and schedule, early stopping, the name as the curves' title; the
 * rest (paths, reporter, callbacks) zero. */
void sn_spec_train_opts(const sn_spec *s, sn_train_opts *to);
/* Where the spec writes the model's input shape (model.input). */
sn_loc sn_spec_input_loc(const sn_spec *s);
/* Where the spec writes train.batch_size (the train section when it does not). */
sn_loc sn_spec_batch_size_loc(const sn_spec *s);
/* The smallest vocab of the embeddings that read the model input (ids), or 0 when
 * none does; *layer and *loc then name that embedding. */
int sn_spec_input_vocab(const sn_spec *s, const char **layer, sn_loc *loc);
/* Writes s as YAML with every default filled in (write_spec.c):
 * spec.resolved.yaml. */
void sn_spec_write_resolved(const sn_spec *s, FILE *out);

/* A sweep: runs of the same spec with overrides (`--set` assignments). */
typedef struct sn_sweep_axis {
  char key[128];        /* dotted path, e.g. "train.optimizer.adam.learning_rate" */
  int n_values;         /* grid: values, each YAML text ("1e-3", "{split: 0.2}") */
  char values[16][128];
  double lo, hi;        /* random: range */
  bool log;             /* random: sample log-uniformly */
  bool integer;         /* random: round to an integer */
  bool whole;           /* random: {int: [lo, hi]}, each whole number equally likely */
  sn_loc loc;
} sn_sweep_axis;

typedef enum sn_sweep_kind { SN_SWEEP_NONE = 0, SN_SWEEP_GRID, SN_SWEEP_RANDOM } sn_sweep_kind;

typedef struct sn_sweep_spec {
  sn_sweep_kind kind;
  int n_axes;
  sn_sweep_axis axes[8];
  int count;            /* random: number of runs */
  char metric[64];      /* sort runs by this metrics.jsonl key (default val_loss or loss) */
  bool maximize;        /* default: true for accuracy-like keys, false for losses */
  sn_loc loc;
  bool halving;         /* scheduler: {halving: ...}: successive halving of the trials */
  int min_epochs, eta;  /* halving: epochs of the first rung; the best 1/eta go on */
  char halving_metric[64]; /* halving: the figure rungs compare (default: metric) */
} sn_sweep_spec;

/* The spec's sweep: section (kind SN_SWEEP_NONE when it has none). */
const sn_sweep_spec *sn_spec_sweep(const sn_spec *s);

/* One entry of expect: (`specnet test`): a figure's range, gradcheck's bound, or
 * the error the spec must be rejected with. */
typedef struct sn_expect_spec {
  char key[64];  /* "test.accuracy", "train.loss", "gradcheck", "error" */
  sn_loc loc;
  bool has_min, has_max;
  double min, max;
  double max_rel_error;  /* gradcheck */
  char contains[256];    /* error */
} sn_expect_spec;

/* The spec's expectations, in the order written: their number, the first at *e. */
int sn_spec_expectations(const sn_spec *s, const sn_expect_spec **e);


typedef struct sn_compile_times {
  double build, autodiff, plan, emit; /* seconds: graph, gradients, plan, LLVM IR */
  double optimize; /* LLVM O3 and machine code, or reading the cached object */
  double jit;      /* linking the object into the process */
  bool cached;  /* the object code came from the compile cache: no LLVM passes */
} sn_compile_times;

/* Compiles a checked spec for dtype; shape errors go to d. */
sn_compiled *sn_compile(const sn_spec *spec, sn_dtype_rt dtype, sn_diag *d);

typedef struct sn_compile_opts {
  sn_dtype_rt dtype;
  bool profile;   /* count time and calls per kernel (sn_compiled_profile) */
  bool no_cache;  /* always run LLVM; do not read or write the compile cache */
} sn_compile_opts;
sn_compiled *sn_compile_with(const sn_spec *spec, const sn_compile_opts *o, sn_diag *d);
/* With profile on: one line per kernel and GEMM, by total time, with calls and
 * mean time per call. */
void sn_compiled_profile(const sn_compiled *c, FILE *out);
sn_model *sn_compiled_model(sn_compiled *c);
const sn_compile_times *sn_compiled_times(const sn_compiled *c);
void sn_compiled_free(sn_compiled *c);

/* Builds the graph only: the shape checks of sn_compile, without code. */
int sn_check_graph(const sn_spec *spec, sn_diag *d);

/* Prints the program after a stage: "ir" (forward), "grad" (after autodiff),
 * "plan" (kernels and memory), "llvm" (optimized LLVM IR), "asm" (host assembly). */
int sn_emit_stage(const sn_spec *spec, const char *what, sn_dtype_rt dtype, FILE *out, sn_diag *d);

/* Compiles spec in f64 and compares its gradients with finite differences
 * (gradcheck.c explains the stencil and the error measure). max_checked > 0 checks
 * an evenly spaced subset of that many parameters; 0 checks all. Elements above
 * tol are retried with smaller steps (kinks). */
typedef struct sn_gradcheck_result {
  double max_rel_error;
  char worst[160];        /* "dense1.weight[17]" */
  double worst_analytic, worst_numeric;
  int64_t checked;
  double loss;            /* mean loss at the checked point */
} sn_gradcheck_result;
int sn_gradcheck(const sn_spec *spec, int64_t max_checked, double tol, sn_gradcheck_result *res, sn_diag *d);

/* Code targets (jit.c). The JIT and `build` compile for sn_cpu_default(): the
 * environment variable SPECNET_CPU when set (the CLI's --cpu sets it), else
 * "native", this machine's CPU and all its features. */
const char *sn_cpu_default(void);
/* 0 when cpu is a target name specnet knows: native, x86-64, x86-64-v2, x86-64-v3
 * (AVX2 + FMA), x86-64-v4 (AVX-512 F/BW/CD/DQ/VL); else -1 and a message in err. */
int sn_cpu_check(const char *cpu, char *err, size_t len);
/* 0 when code compiled for cpu runs on this machine; else -1 and which feature
 * is missing. */
int sn_cpu_runs_here(const char *cpu, char *err, size_t len);

/* Ahead-of-time output (aot.c). `weights` holds the trained parameters and state
 * (sizes and dtype from a model compiled from the same spec). */
typedef struct sn_aot_opts {
  const char *out;      /* the executable, or the folder for lib */
  const char *name;     /* lib: the prefix of NAME.h, libNAME.a, NAME_predict */
  const char *cpu;      /* a name sn_cpu_check accepts */
  bool lib;             /* header + static library instead of an executable */
  bool weights_file;    /* lib: weights in NAME.weights, read by NAME_load_weights */
  bool train;           /* a training binary: all step functions, the spec's training
                           settings and data (train_opts, data); no weights embedded */
  const sn_train_opts *train_opts;
  const sn_data_config *data;
  int64_t n_pre;        /* input preprocessing: x * pre_a[f] + pre_b[f], f = position */
  const double *pre_a, *pre_b; /*   along the last input axis mod n_pre; 0: none */
  int64_t n_post;       /* outputs back to the data's units (standardize_targets):  */
  const double *post_a, *post_b; /*   y * post_a[k] + post_b[k], k = output; 0: none */
  int n_class_names;    /* executable: the class names it prints instead of indices */
  const char *const *class_names;
  const uint32_t *chars; /* executable of a text lm: the chars tokenizer's table (NULL: */
  int n_chars;           /*   bytes), for --generate */
} sn_aot_opts;
int sn_build_aot(const sn_spec *spec, const sn_model *weights, const sn_aot_opts *o, sn_diag *d);

/* The incremental decoder (key/value cache) of a language model m compiled from s
 * (runtime/decode.c): 0 and *d filled when every layer is one it runs (embedding
 * of the ids, position_embedding, layer_norm, dense, causal attention, add,
 * multiply, activations, dropout; f32), else -1 and the reason in why. */
int sn_decoder_plan(const sn_spec *s, const sn_model *m, sn_decoder *d, char *why, size_t len);

#ifdef __cplusplus
}
#endif
#endif
