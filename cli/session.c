/* The session every model command opens: the spec loaded, compiled, its data
 * read and preprocessed, the model allocated and its weights set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "specnet/terminal.h"

void print_diag(const sn_diag *d) {
  int rank = dist_launched_rank();
  if (rank == 0) sn_diag_print(d, stderr);
  else if (d->errors) /* every rank read the same spec: one copy of its errors is enough */
    fprintf(stderr, "specnet: error: rank %d stops on %d error%s in the spec; rank 0 prints spec errors "
                    "(`specnet check` shows them)\n", rank, d->errors, d->errors == 1 ? "" : "s");
}

sn_spec *load_spec(const opts *o) {
  sn_diag d = {0};
  sn_spec *s = sn_spec_load(o->spec, o->sets, o->n_sets, &d);
  print_diag(&d);
  sn_diag_free(&d);
  return s;
}

static sn_compiled *compile_spec(const sn_spec *s, const opts *o) {
  sn_diag d = {0};
  const char *env = getenv("SPECNET_PROFILE");
  sn_compile_opts co = {.dtype = o->dtype, .profile = o->profile || (env && *env && strcmp(env, "0")),
                        .no_cache = o->no_cache};
  sn_compiled *c = sn_compile_with(s, &co, &d);
  print_diag(&d);
  sn_diag_free(&d);
  return c;
}

/* Prints a data error at the spec line of the source it came from. */
int data_error(const sn_spec *s, sn_loc loc, const char *msg) {
  sn_diag d = {0};
  if (!loc.file) loc.file = sn_spec_path(s);
  sn_diag_error(&d, loc, "%s", msg);
  if (strstr(msg, ": cannot open")) { /* say which folder a relative path was read from */
    const char *path = sn_spec_path(s), *slash = strrchr(path, '/');
    int dir = slash ? (int)(slash - path) + 1 : 0;
    sn_diag_hint(&d, "relative data paths in a spec and in --set are read from the spec's folder (%.*s), "
                     "--input from the current folder",
                 dir ? dir : 2, dir ? path : "./");
  }
  sn_diag_print(&d, stderr); /* data can differ per rank: each says its own */
  sn_diag_free(&d);
  return EXIT_SPEC;
}

static void datasets_free(datasets *ds) { sn_data_free(ds); }

/* data.preprocess in order: scale, then normalize with the given mean and std. */
int preprocess_set(const sn_spec *s, sn_dataset *ds) {
  sn_data_config c;
  sn_spec_data_config(s, &c);
  c.standardize = false; /* the caller applies the training statistics */
  sn_data none = {0};
  sn_error err = {0};
  if (sn_data_preprocess(&c, &none, ds, &err)) return data_error(s, sn_spec_data_loc(s, SN_PART_PREPROCESS), err.msg);
  return 0;
}

/* Loads every set through the runtime's pipeline (runtime/data_prepare.c); an
 * error is reported at the spec line of the source it came from. */
static int load_data(const sn_spec *s, const sn_model *m, datasets *ds, const char *weights) {
  sn_data_config c;
  sn_spec_data_config(s, &c);
  sn_data_part part;
  sn_error err = {0};
  uint32_t *chars = NULL; /* the training run's characters, when the weights come from one */
  if (weights && c.train.kind == SN_SRC_TEXT && c.train.tokenizer == SN_TOK_CHARS &&
      read_vocab(weights, &chars, &c.train.n_chars, err.msg, sizeof err.msg))
    return data_error(s, sn_spec_data_loc(s, SN_PART_TRAIN), err.msg);
  c.train.chars = chars;
  int rc = sn_data_prepare(&c, m, ds, &part, &err);
  free(chars);
  if (!rc) return check_text_vocab(s, &ds->train);
  return data_error(s, sn_spec_data_loc(s, part), err.msg);
}

static void print_compile_times(const sn_compiled *c, bool quiet) {
  const sn_compile_times *t = sn_compiled_times(c);
  double total = t->build + t->autodiff + t->plan + t->emit + t->optimize + t->jit;
  if (!quiet)
    printf("compiled in %.0f ms%s (graph %.1f, plan %.1f, emit %.1f, %s %.1f, link %.1f)\n", total * 1e3,
           t->cached ? ", from the cache" : "", (t->build + t->autodiff) * 1e3, t->plan * 1e3, t->emit * 1e3,
           t->cached ? "cache read" : "llvm", t->optimize * 1e3, t->jit * 1e3);
}

void session_free(session *S) {
  if (S->c && S->profile) sn_compiled_profile(S->c, stderr);
  if (S->m) sn_model_free(S->m);
  datasets_free(&S->ds);
  sn_compiled_free(S->c);
  sn_spec_free(S->spec);
}

int session_open(session *S, const opts *o, bool quiet) {
  return session_open_with(S, o, quiet, true, NULL);
}

int session_open_with(session *S, const opts *o, bool quiet, bool data, sn_spec *s) {
  memset(S, 0, sizeof *S);
  if (o->threads) sn_set_threads(o->threads);
  if (!(S->spec = s ? s : load_spec(o))) return EXIT_SPEC;
  if (!(S->c = compile_spec(S->spec, o))) return EXIT_SPEC;
  const char *env = getenv("SPECNET_PROFILE");
  S->profile = o->profile || (env && *env && strcmp(env, "0"));
  print_compile_times(S->c, quiet);
  sn_model *m = sn_compiled_model(S->c);
  int rc = data ? load_data(S->spec, m, &S->ds, o->weights) : 0;
  if (rc) return rc;
  sn_error err = {0};
  /* the buffers grow with the batch: a failure is the batch size's to answer for */
  if (sn_model_alloc(m, &err)) return data_error(S->spec, sn_spec_batch_size_loc(S->spec), err.msg);
  S->m = m;
  sn_model_init_params(m, sn_spec_seed(S->spec));
  if (o->weights && sn_safetensors_read(o->weights, m, &err)) {
    fprintf(stderr, "%s: error: %s\n", o->weights, err.msg);
    return EXIT_SPEC;
  }
  return 0;
}

void train_opts_from_spec(const sn_spec *s, sn_train_opts *to) {
  sn_spec_train_opts(s, to);
  to->reporter = sn_terminal_reporter(); /* sn_train prints nothing itself */
  /* SPECNET_PREFETCH=0 stages batches on the training thread (to measure what
   * the background thread saves; docs/cli.md) */
  const char *pf = getenv("SPECNET_PREFETCH");
  to->no_prefetch = pf && !strcmp(pf, "0");
}
