/* Shared pieces of the specnet command (main.c: options, check/train/eval/emit;
 * cmd_test.c: specnet test). */
#ifndef SPECNET_CLI_H
#define SPECNET_CLI_H

#include <stdbool.h>

#include "spec.h"
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
  int jobs;                /* test: specs run at once (0 or 1: one at a time) */
  sn_dtype_rt dtype;
  bool quiet, verbose;
} opts;

typedef struct datasets {
  sn_dataset train, val, test;
  bool has_val, has_test;
} datasets;

/* Everything a run needs before the first step: spec, code, data, weights. */
typedef struct session {
  sn_spec *spec;
  sn_compiled *c;
  sn_model *m;
  datasets ds;
} session;

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
sn_spec *load_spec(const opts *o);
int data_error(const sn_spec *s, sn_loc loc, const char *msg);
int session_open(session *S, const opts *o, bool quiet);
void session_free(session *S);

int cmd_test(const opts *o);

#endif
