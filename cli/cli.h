/* What crosses the files of the specnet command: main.c (options, dispatch),
 * session.c (spec, compile, data, weights), cmd_train.c (one training run),
 * cmd_sweep.c, cmd_model.c (check, emit, eval) and the other cmd_*.c. */
#ifndef SPECNET_CLI_H
#define SPECNET_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "specnet/yaml.h"
#include "specnet/compiler.h"
#include "specnet/runtime.h"

enum { EXIT_SPEC = 1, EXIT_USAGE = 2, EXIT_EXPECT = 3 };

typedef struct opts {
  const char *spec;        /* the (first) spec path */
  const char *paths[256];  /* test: every path given */
  int n_paths;
  const char *out;
  const char *weights;
  const char *what;
  const char *split;
  const char *sets[64];
  int n_sets;
  int threads;
  const char *junit;       /* test: JUnit XML to write */
  int jobs;                /* test: specs run at once (0 or 1: one at a time);
                            * train: sweep runs at once */
  const char *input;       /* predict: the samples file (IDX, NPY or CSV) */
  const char *output;      /* predict: the CSV to write (NULL: stdout) */
  bool probs;              /* predict: the whole output vector, not the class */
  const char *cpu;         /* build: native | x86-64-v3 | x86-64 */
  bool lib;                /* build: NAME.h + libNAME.a instead of an executable */
  bool weights_file;       /* build --lib: weights in a separate file */
  bool train;              /* build: a training binary */
  bool profile;            /* train/eval: time per kernel, printed at the end */
  bool no_cache;           /* always run LLVM (no compile cache) */
  bool no_kv_cache;        /* generate: a full forward pass per token */
  sn_dtype_rt dtype;
  bool quiet, verbose;
  const char *resume;      /* train: continue the run saved in this folder */
  const char *lr;          /* train --lr: the learning rate, as given */
  int lr_at;               /* its place in sets[] (the --set it becomes) */
  bool report;             /* train: write report.html at the end */
  /* generate */
  const char *prompt;      /* the text to continue */
  int64_t tokens;          /* tokens to draw (tokens_set: given) */
  double temperature;      /* 0: the likeliest token; else sampling */
  int64_t top_k;           /* draw among the k likeliest (0: all) */
  uint64_t seed;           /* the sampler's seed (seed_set: given; else the spec's) */
  bool tokens_set, temperature_set, seed_set;
} opts;

/* A run's data sets (runtime's sn_data: train, val, test, standardize statistics). */
typedef sn_data datasets;

/* Everything a run needs before the first step: spec, code, data, weights. */
typedef struct session {
  sn_spec *spec;
  sn_compiled *c;
  sn_model *m;
  datasets ds;
  bool profile;  /* print the kernel profile when the session ends */
} session;

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
sn_spec *load_spec(const opts *o);
/* Prints diagnostics on stderr, from rank 0 alone when an MPI launcher started
 * several copies of this command (they all read the same spec). */
void print_diag(const sn_diag *d);
int data_error(const sn_spec *s, sn_loc loc, const char *msg);
int session_open(session *S, const opts *o, bool quiet);
/* As session_open; with data false no data set is read (predict). s: the spec,
 * already loaded (the session takes it), or NULL to load it. */
int session_open_with(session *S, const opts *o, bool quiet, bool data, sn_spec *s);
void session_free(session *S);
/* The spec's scale and normalize steps on one loaded set (standardize is
 * applied by the caller with the training statistics). Returns 0 or an exit code. */
int preprocess_set(const sn_spec *s, sn_dataset *ds);
/* Training options from the spec: epochs, batches, schedule, early stopping. */
void train_opts_from_spec(const sn_spec *s, sn_train_opts *to);

/* A new run folder for a run of NAME without --out: runs/NAME, or when that holds
 * an earlier run runs/NAME-2, -3, ... (the first that is new or empty), created.
 * 0, or -1 with errno set (dir names the folder that failed). */
int new_run_dir(const char *name, char *dir, size_t cap);

/* Text sources (text.c): `specnet check`'s summary of them (0 or an exit code);
 * an error when the model's first embedding does not cover the training text's
 * vocabulary (check_vocab_size: one of `tokens` ids); the run's vocab.json (chars
 * table) written, and read back from beside a weights file (0: read or none there,
 * -1: unreadable, msg says why). */
int check_text_sources(const sn_spec *s, FILE *out);
int check_text_vocab(const sn_spec *s, const sn_dataset *train);
int check_vocab_size(const sn_spec *s, int64_t tokens, const char *origin);
void write_vocab(const sn_dataset *train, const char *dir);
int read_vocab(const char *weights, uint32_t **chars, int *n, char *msg, size_t cap);

int cmd_check(const opts *o);
int cmd_emit(const opts *o);
int cmd_eval(const opts *o);
/* --resume DIR: with no SPEC, o->spec becomes DIR/spec.resolved.yaml (kept in
 * record, of cap bytes); with one, the spec (after --set) must resolve to that
 * file but for train.epochs. 0 or an exit code, the differences printed. */
int resume_check(opts *o, char *record, size_t cap);
int cmd_test(const opts *o);
/* report.html of the run in dir, or at out when not NULL; 0 or an exit code. */
int report_write(const char *dir, const char *out);
int cmd_report(const opts *o);
int cmd_compare(const opts *o);
/* The comparison of the runs in dirs: the table as text on `text` (may be NULL) and,
 * when out is not NULL, the HTML page there. 0 or an exit code. */
int compare_write(const char *const *dirs, int n, const char *out, FILE *text);
int cmd_predict(const opts *o);
/* A data file named on the command line as a source of samples without labels, by
 * its name: FILE.h5[:/DATASET] or .hdf5 (dataset: the name when none is given; an
 * empty images field: none), *.npy, *.csv (a header row if the first file has one,
 * globs too), anything else IDX (cmd_predict.c). */
void file_source(const char *path, const char *dataset, sn_source *src);
/* Whether a CSV file's first non-blank row is a header (a cell that is not a number). */
bool csv_has_header(const char *path);
/* specnet data SOURCE...: what each data source holds (cmd_data.c). */
int cmd_data(const opts *o);
int cmd_generate(const opts *o);
/* generations.txt in a language model's run folder (GENERATIONS samples of 200
 * tokens, temperature 0.8, top-k 40, seeds 1.., each from a line break; one per
 * paragraph) for its report; removes an older one for any other run. */
enum { GENERATIONS = 3 };
int write_generations(const sn_spec *s, sn_model *m, const sn_dataset *train, const char *dir);
int cmd_build(const opts *o);
/* One training run of o->spec (its sweep: section, if any, is not looked at). */
int train_run(const opts *o, sn_spec *s);
/* A sweep: every run of s->sweep as `train_run` with --set overrides, then the
 * table of results. s stays the caller's. */
int cmd_sweep(const opts *o, const sn_spec *s);

#endif
