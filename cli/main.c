/* The specnet command: a thin driver over the compiler and the runtime. Each
 * command is one function; the passes themselves are in compiler/compile.c.
 * Exit codes (SPEC.md): 0 success, 1 spec or data error, 2 usage error,
 * 3 an expectation failed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "help.h"
#include "run_record.h"

int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("specnet: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\nTry 'specnet --help'.\n", stderr);
  va_end(ap);
  return EXIT_USAGE;
}

/* ---------------------------------------------------------------------------
 * Options shared by the commands */

static const char *const known_options[] = {
    "--out",   "--set",    "--weights", "--threads",      "--dtype", "--quiet",   "--what",
    "--split", "--help",   "--verbose", "--junit",        "--jobs",  "--input",   "--output",
    "--probs", "--cpu",    "--lib",     "--weights-file", "-o",      "--profile", "--no-cache",
    "--train", "--resume", "--epochs",  "--batch-size",   "--lr", "--report", "--prompt", "--tokens",
    "--temperature", "--top-k", "--seed"};

/* The options each command takes (docs/cli.md); any other known option is a usage
 * error naming the command, not silently ignored. */
static const struct {
  const char *cmd, *opts;
} command_options[] = {
    {"check", " --set --dtype "},
    {"train",
     " --out --set --weights --threads --dtype --jobs --profile --no-cache --quiet --resume --cpu "
     "--epochs --batch-size --lr --report "},
    {"eval", " --weights --split --set --threads --dtype --profile --no-cache --cpu "},
    {"predict", " --weights --input --output --probs --set --threads --dtype --profile --no-cache "
                "--quiet --cpu "},
    {"generate", " --weights --prompt --tokens --temperature --top-k --seed --set --threads --dtype --no-cache "
                 "--cpu "},
    {"emit", " --what --set --dtype --cpu "},
    {"test", " --set --jobs --junit --verbose --threads --cpu "},
    {"build", " --weights -o --lib --weights-file --train --cpu --set --dtype --no-cache --quiet "},
    {"report", " -o "},
    {"compare", " -o "},
    {"data", " --set "},
};

static bool command_takes(const char *cmd, const char *opt) {
  char word[40];
  snprintf(word, sizeof word, " %s ", opt);
  for (size_t i = 0; i < sizeof command_options / sizeof *command_options; i++)
    if (!strcmp(cmd, command_options[i].cmd)) return strstr(command_options[i].opts, word) != NULL;
  return true;
}

/* --epochs N and --batch-size N of train: shorthands of --set train.KEY=N; the
 * strings live as long as the process. */
static char shorthand_sets[8][64];
static int n_shorthands;

static int shorthand(opts *o, const char *opt, const char *key, const char *val) {
  char *end;
  long n = strtol(val, &end, 10);
  if (!*val || *end || n < 0 || n > 1000000000)
    return usage_error("%s needs a whole number, got '%s'", opt, val);
  if (o->n_sets == 64 || n_shorthands == 8)
    return usage_error("too many --set options (at most 64)");
  snprintf(shorthand_sets[n_shorthands], sizeof shorthand_sets[0], "%s=%ld", key, n);
  o->sets[o->n_sets++] = shorthand_sets[n_shorthands++];
  return 0;
}

/* --tokens N, --top-k K, --seed S of generate: whole numbers >= 0. */
static int generate_number(opts *o, const char *opt, const char *val) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(val, &end, 10);
  bool seed = !strcmp(opt, "--seed");
  if (!*val || *end || val[0] == '-' || errno || (!seed && n > 100000000))
    return usage_error("%s needs a whole number%s, got '%s'", opt, seed ? "" : " from 0 to 100000000", val);
  if (!strcmp(opt, "--tokens")) {
    o->tokens = (int64_t)n;
    o->tokens_set = true;
  } else if (!strcmp(opt, "--top-k")) {
    o->top_k = (int64_t)n;
  } else {
    o->seed = n;
    o->seed_set = true;
  }
  return 0;
}

static bool known_option(const char *a) {
  for (size_t i = 0; i < sizeof known_options / sizeof *known_options; i++)
    if (!strcmp(a, known_options[i])) return true;
  return false;
}

static int parse_opts(const char *cmd, int argc, char **argv, opts *o) {
  const bool many = !strcmp(cmd, "test") || !strcmp(cmd, "compare") || !strcmp(cmd, "data");
  const bool runs = !strcmp(cmd, "report") || !strcmp(cmd, "compare"); /* take run folders */
  memset(o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (known_option(a) && strcmp(a, "--help") && !command_takes(cmd, a)) {
      fprintf(stderr, "specnet: error: %s does not take %s\nTry 'specnet %s --help'.\n", cmd, a,
              cmd);
      return EXIT_USAGE;
    }
    bool takes = (strcmp(a, "--quiet") && strcmp(a, "--verbose") && strcmp(a, "--probs") &&
                  strcmp(a, "--lib") && strcmp(a, "--weights-file") && strcmp(a, "--profile") &&
                  strcmp(a, "--no-cache") && strcmp(a, "--train") && strcmp(a, "--report") &&
                  !strncmp(a, "--", 2)) ||
                 !strcmp(a, "-o");
    if (takes && known_option(a)) { /* an unknown one gets its hint below */
      if (i + 1 >= argc) return usage_error("option %s needs a value", a);
      val = argv[++i];
    }
    if (!strcmp(a, "--out") || !strcmp(a, "-o")) o->out = val;
    else if (!strcmp(a, "--cpu")) o->cpu = val;
    else if (!strcmp(a, "--lib")) o->lib = true;
    else if (!strcmp(a, "--weights-file")) o->weights_file = true;
    else if (!strcmp(a, "--profile")) o->profile = true;
    else if (!strcmp(a, "--no-cache")) o->no_cache = true;
    else if (!strcmp(a, "--train")) o->train = true;
    else if (!strcmp(a, "--report")) o->report = true;
    else if (!strcmp(a, "--weights")) o->weights = val;
    else if (!strcmp(a, "--resume")) o->resume = val;
    else if (!strcmp(a, "--what")) o->what = val;
    else if (!strcmp(a, "--split")) o->split = val;
    else if (!strcmp(a, "--junit")) o->junit = val;
    else if (!strcmp(a, "--input")) o->input = val;
    else if (!strcmp(a, "--output")) o->output = val;
    else if (!strcmp(a, "--probs")) o->probs = true;
    else if (!strcmp(a, "--prompt")) o->prompt = val;
    else if (!strcmp(a, "--tokens") || !strcmp(a, "--top-k") || !strcmp(a, "--seed")) {
      if (generate_number(o, a, val)) return EXIT_USAGE;
    } else if (!strcmp(a, "--temperature")) {
      char *end;
      double t = strtod(val, &end);
      if (!*val || *end || !(t >= 0) || !isfinite(t))
        return usage_error("--temperature needs a number >= 0 (0: always the likeliest token), got '%s'", val);
      o->temperature = t;
      o->temperature_set = true;
    } else if (!strcmp(a, "--epochs")) {
      if (shorthand(o, a, "train.epochs", val)) return EXIT_USAGE;
    } else if (!strcmp(a, "--batch-size")) {
      if (shorthand(o, a, "train.batch_size", val)) return EXIT_USAGE;
    } else if (!strcmp(a, "--lr")) {
      char *end;
      double lr = strtod(val, &end);
      if (!*val || *end || !(lr > 0) || !isfinite(lr))
        return usage_error("--lr needs a positive number, got '%s'", val);
      if (o->n_sets == 64) return usage_error("too many --set options (at most 64)");
      o->lr = val;
      o->lr_at = o->n_sets++; /* filled in by lr_set once the optimizer is known */
    } else if (!strcmp(a, "--jobs")) {
      char *end;
      long n = strtol(val, &end, 10);
      if (!*val || *end || n < 1 || n > 1024) return usage_error("--jobs needs a number from 1 to 1024, got '%s'", val);
      o->jobs = (int)n;
    } else if (!strcmp(a, "--set")) {
      if (o->n_sets == 64) return usage_error("too many --set options (at most 64)");
      o->sets[o->n_sets++] = val;
    } else if (!strcmp(a, "--threads")) {
      char *end;
      long n = strtol(val, &end, 10);
      if (*end || n < 1 || n > 1024) return usage_error("--threads needs a number from 1 to 1024, got '%s'", val);
      o->threads = (int)n;
    } else if (!strcmp(a, "--dtype")) {
      if (!strcmp(val, "f32")) o->dtype = SN_RT_F32;
      else if (!strcmp(val, "f64")) o->dtype = SN_RT_F64;
      else return usage_error("--dtype must be f32 or f64, got '%s'", val);
    } else if (!strcmp(a, "--quiet"))
      o->quiet = true;
    else if (!strcmp(a, "--verbose")) o->verbose = true;
    else if (a[0] == '-' && a[1]) {
      const char *near = sn_closest(a, known_options, (int)(sizeof known_options / sizeof *known_options));
      fprintf(stderr, "specnet: error: unknown option '%s'\n", a);
      if (near) fprintf(stderr, "hint: did you mean '%s'?\n", near);
      return EXIT_USAGE;
    } else if (!o->spec || many) {
      if (!o->spec) o->spec = a;
      if (o->n_paths == 256) return usage_error("too many paths (at most 256)");
      o->paths[o->n_paths++] = a;
    } else return usage_error("unexpected argument '%s'", a);
  }
  if (!o->spec && !o->resume)
    return usage_error(runs ? "no run folder given" : "no spec file given");
  return 0;
}

/* --lr X of train: --set of the spec's optimizer's learning_rate (adam when the
 * spec names none), in its place among the --set options. */
static int lr_set(opts *o) {
  static char set[160];
  const char *path = o->spec;
  char record[4200];
  if (!path) { /* --resume DIR alone */
    snprintf(record, sizeof record, "%s/spec.resolved.yaml", o->resume);
    path = record;
  }
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_file(path, &d);
  for (int i = 0; root && i < o->lr_at; i++) sn_node_set(root, o->sets[i], &d);
  sn_diag_free(&d); /* the spec's own errors are reported when it is loaded */
  const sn_node *opt = sn_node_get(sn_node_get(root, "train"), "optimizer");
  if (opt && opt->kind == SN_NODE_SCALAR)
    snprintf(set, sizeof set, "train.optimizer={%s: {learning_rate: %s}}", opt->text, o->lr);
  else if (opt && opt->kind == SN_NODE_MAP && opt->n == 1)
    snprintf(set, sizeof set, "train.optimizer.%s.learning_rate=%s", opt->keys[0]->text, o->lr);
  else if (!opt)
    snprintf(set, sizeof set, "train.optimizer={adam: {learning_rate: %s}}", o->lr);
  else
    snprintf(set, sizeof set, "train.optimizer.learning_rate=%s",
             o->lr); /* reported as the file's error */
  sn_node_free(root);
  o->sets[o->lr_at] = set;
  return 0;
}

/* --cpu and SPECNET_CPU: the code target. --cpu sets SPECNET_CPU, which the
 * compiler reads (sn_cpu_default) and `test` passes on to the runs it starts. */
static int select_cpu(const opts *o) {
  char err[256];
  if (o->cpu) { /* commands that take no --cpu were refused by parse_opts */
    if (sn_cpu_check(o->cpu, err, sizeof err)) return usage_error("--cpu: %s", err);
    setenv("SPECNET_CPU", o->cpu, 1);
  } else if (sn_cpu_check(sn_cpu_default(), err, sizeof err)) {
    return usage_error("SPECNET_CPU: %s", err);
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * Spec, compile, data */

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
  if (!loc.file) loc.file = s->path;
  sn_diag_error(&d, loc, "%s", msg);
  if (strstr(msg, ": cannot open")) { /* say which folder a relative path was read from */
    const char *slash = strrchr(s->path, '/');
    int dir = slash ? (int)(slash - s->path) + 1 : 0;
    sn_diag_hint(&d, "relative data paths in a spec and in --set are read from the spec's folder (%.*s), "
                     "--input from the current folder",
                 dir ? dir : 2, dir ? s->path : "./");
  }
  sn_diag_print(&d, stderr); /* data can differ per rank: each says its own */
  sn_diag_free(&d);
  return EXIT_SPEC;
}

static void datasets_free(datasets *ds) { sn_data_free(ds); }

/* data.preprocess in order: scale, then normalize with the given mean and std. */
/* The spec's data section as the runtime's data pipeline reads it. */
void data_config(const sn_spec *s, sn_data_config *c) {
  memset(c, 0, sizeof *c);
  c->train = s->data.train;
  c->test = s->data.test;
  c->validation = s->data.validation;
  c->validation_split = s->data.validation_split;
  c->scale = s->data.scale;
  c->n_norm = s->data.n_norm;
  memcpy(c->norm_mean, s->data.norm_mean, sizeof c->norm_mean);
  memcpy(c->norm_std, s->data.norm_std, sizeof c->norm_std);
  c->standardize = s->data.standardize;
  c->standardize_targets = s->data.standardize_targets;
}

/* data.preprocess in order: scale, then normalize with the given mean and std. */
int preprocess_set(const sn_spec *s, sn_dataset *ds) {
  sn_data_config c;
  data_config(s, &c);
  c.standardize = false; /* the caller applies the training statistics */
  sn_data none = {0};
  sn_error err = {0};
  if (sn_data_preprocess(&c, &none, ds, &err)) return data_error(s, s->data.preprocess_loc, err.msg);
  return 0;
}

/* Loads every set through the runtime's pipeline (runtime/data_prepare.c); an
 * error is reported at the spec line of the source it came from. */
static int load_data(const sn_spec *s, const sn_model *m, datasets *ds, const char *weights) {
  sn_data_config c;
  data_config(s, &c);
  sn_data_part part;
  sn_error err = {0};
  uint32_t *chars = NULL; /* the training run's characters, when the weights come from one */
  if (weights && c.train.kind == SN_SRC_TEXT && c.train.tokenizer == SN_TOK_CHARS &&
      read_vocab(weights, &chars, &c.train.n_chars, err.msg, sizeof err.msg))
    return data_error(s, s->data.train_loc, err.msg);
  c.train.chars = chars;
  int rc = sn_data_prepare(&c, m, ds, &part, &err);
  free(chars);
  if (!rc) return check_text_vocab(s, &ds->train);
  sn_loc at[] = {s->data.train_loc, s->data.validation_loc, s->data.test_loc, s->data.preprocess_loc};
  return data_error(s, at[part], err.msg);
}

/* ---------------------------------------------------------------------------
 * Commands */

static int cmd_check(const opts *o) {
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  sn_diag d = {0};
  int rc = sn_emit_stage(s, "table", o->dtype, stdout, &d);
  print_diag(&d);
  sn_diag_free(&d);
  if (!rc && check_text_sources(s, stdout)) rc = EXIT_SPEC;
  sn_spec_free(s);
  return rc ? EXIT_SPEC : 0;
}

static int cmd_emit(const opts *o) {
  static const char *const whats[] = {"spec", "ir", "grad", "plan", "llvm", "asm"};
  if (!o->what) return usage_error("emit needs --what spec|ir|grad|plan|llvm|asm");
  bool ok = false;
  for (size_t i = 0; i < sizeof whats / sizeof *whats; i++) ok |= !strcmp(o->what, whats[i]);
  if (!ok) {
    const char *near = sn_closest(o->what, whats, 6);
    fprintf(stderr, "specnet: error: --what must be one of spec, ir, grad, plan, llvm, asm; got '%s'\n", o->what);
    if (near) fprintf(stderr, "hint: did you mean '%s'?\n", near);
    return EXIT_USAGE;
  }
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  int rc = 0;
  if (!strcmp(o->what, "spec")) {
    sn_spec_write_resolved(s, stdout); /* what a run writes to spec.resolved.yaml */
  } else {
    sn_diag d = {0};
    rc = sn_emit_stage(s, o->what, o->dtype, stdout, &d) ? EXIT_SPEC : 0;
    print_diag(&d);
    sn_diag_free(&d);
  }
  sn_spec_free(s);
  return rc;
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
  if (sn_model_alloc(m, &err)) return data_error(S->spec, (sn_loc){0}, err.msg);
  S->m = m;
  sn_model_init_params(m, S->spec->seed);
  if (o->weights && sn_safetensors_read(o->weights, m, &err)) {
    fprintf(stderr, "%s: error: %s\n", o->weights, err.msg);
    return EXIT_SPEC;
  }
  return 0;
}

void train_opts_from_spec(const sn_spec *s, sn_train_opts *to) {
  memset(to, 0, sizeof *to);
  to->reporter = sn_terminal_reporter(); /* sn_train prints nothing itself */
  to->epochs = s->epochs;
  to->batch_size = s->batch_size;
  to->shuffle = s->shuffle;
  to->shuffle_block = s->shuffle_block;
  to->seed = s->seed;
  to->learning_rate = s->learning_rate;
  to->schedule = s->schedule;
  to->early = s->early;
  to->title = s->name;
  /* SPECNET_PREFETCH=0 stages batches on the training thread (to measure what
   * the background thread saves; docs/cli.md) */
  const char *pf = getenv("SPECNET_PREFETCH");
  to->no_prefetch = pf && !strcmp(pf, "0");
}

/* ---------------------------------------------------------------------------
 * --resume: the spec given against the run's record */

/* n as one line of flow YAML, for a message (owned by the caller). */
static char *node_flow(const sn_node *n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  if (n) sn_node_write_flow(n, f);
  fclose(f);
  return buf;
}

/* Prints each key where `given` differs from `run` (path = its dotted key, of
 * length len in a buffer of cap bytes); train.epochs may differ. Returns the count. */
static int spec_diff(const sn_node *run, const sn_node *given, char *path, size_t len, size_t cap,
                     FILE *out) {
  if (!strcmp(path, "train.epochs")) return 0;
  if (run && given && run->kind == given->kind) {
    if (run->kind == SN_NODE_SCALAR && !strcmp(run->text, given->text)) return 0;
    if (run->kind != SN_NODE_SCALAR) {
      int n = 0;
      int items = run->n > given->n ? run->n : given->n;
      for (int i = 0; i < items; i++) {
        if (run->kind == SN_NODE_SEQ) {
          snprintf(path + len, cap - len, "%s%d", len ? "." : "", i);
          n += spec_diff(i < run->n ? run->items[i] : NULL, i < given->n ? given->items[i] : NULL,
                         path, strlen(path), cap, out);
          continue;
        }
        /* a mapping: run's keys, then the keys only given has */
        const char *key = i < run->n ? run->keys[i]->text : NULL;
        if (key) {
          snprintf(path + len, cap - len, "%s%s", len ? "." : "", key);
          n += spec_diff(run->items[i], sn_node_get(given, key), path, strlen(path), cap, out);
        }
        if (i < given->n && !sn_node_get(run, given->keys[i]->text)) {
          snprintf(path + len, cap - len, "%s%s", len ? "." : "", given->keys[i]->text);
          n += spec_diff(NULL, given->items[i], path, strlen(path), cap, out);
        }
      }
      path[len] = 0;
      return n;
    }
  }
  char *a = node_flow(run), *b = node_flow(given);
  fprintf(out, "  %s: %s in the run, %s here\n", path, run && a ? a : "not set",
          given && b ? b : "not set");
  free(a);
  free(b);
  path[len] = 0;
  return 1;
}

/* --resume DIR: with no SPEC, o->spec becomes DIR/spec.resolved.yaml; with one, the
 * spec (after --set) must resolve to that file but for train.epochs. Returns 0 or
 * an exit code, the differences printed key by key. */
static int resume_check(opts *o, char *record, size_t cap) {
  snprintf(record, cap, "%s/spec.resolved.yaml", o->resume);
  struct stat st;
  if (!o->spec) {
    if (stat(record, &st)) {
      fprintf(stderr, "%s: error: cannot read the run's spec: %s (is %s a run folder?)\n", record,
              strerror(errno), o->resume);
      return EXIT_SPEC;
    }
    o->spec = record;
    o->paths[0] = record;
    o->n_paths = 1;
    if (!o->n_sets) return 0;
  } else if (stat(record, &st)) {
    return 0; /* under mpirun a rank's host may lack it; train_state.safetensors still checks */
  }
  sn_diag d = {0};
  int rc = 0;
  sn_node *run = sn_yaml_parse_file(record, &d);
  sn_spec *s = run ? load_spec(o) : NULL;
  char *text = NULL;
  size_t len = 0;
  FILE *f = s ? open_memstream(&text, &len) : NULL;
  if (f) {
    sn_spec_write_resolved(s, f);
    fclose(f);
  }
  sn_node *given = text ? sn_yaml_parse_string(text, o->spec, &d) : NULL;
  print_diag(&d);
  sn_diag_free(&d);
  if (!given) {
    rc = EXIT_SPEC;
  } else {
    char path[1024] = "", *diffs = NULL;
    size_t dlen = 0;
    FILE *df = open_memstream(&diffs, &dlen);
    int n = df ? spec_diff(run, given, path, 0, sizeof path, df) : 0;
    if (df) fclose(df);
    if (n) {
      fprintf(
          stderr, "%s: error: the spec%s differs from the run being resumed (%s) in %d key%s:\n%s",
          o->spec, o->n_sets ? " with its --set options" : "", record, n, n == 1 ? "" : "s", diffs);
      fprintf(stderr,
              "hint: only train.epochs may change on --resume; 'specnet train --resume %s' "
              "resumes the run as it was recorded\n",
              o->resume);
      rc = EXIT_SPEC;
    }
    free(diffs);
  }
  free(text);
  sn_node_free(given);
  sn_node_free(run);
  sn_spec_free(s);
  return rc;
}

static int cmd_train(const opts *given) {
  opts resumed = *given, *o = &resumed;
  char record[4200];
  if (o->resume && (o->weights || (o->out && strcmp(o->out, o->resume))))
    return train_run(o, NULL); /* its usage error */
  if (o->resume) {
    int rc = resume_check(o, record, sizeof record);
    if (rc) return rc;
  }
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  if (s->sweep.kind != SN_SWEEP_NONE) {
    if (o->resume) { /* a sweep's trials resume themselves (halving) */
      fprintf(stderr, "specnet: error: a spec with a sweep: section runs without --resume; train "
              "one setting with --set instead\n");
      sn_spec_free(s);
      return EXIT_USAGE;
    }
    int rc = cmd_sweep(o, s);
    sn_spec_free(s);
    return rc;
  }
  return train_run(o, s);
}

/* Under mpirun, after a step where any rank can fail alone (a collective): 0 when
 * none failed; else this rank's exit code (its own rc, or EXIT_SPEC when another rank
 * failed: rank 0 says which, that rank printed its error). */
static int ranks_failed(const sn_comm *comm, int rc) {
  if (!comm) return rc;
  int first = sn_comm_first_failed(comm, rc != 0);
  if (first == -1) return 0;
  if (rc) return rc;
  if (comm->rank == 0)
    fprintf(stderr, "specnet: error: stopped because rank %d of %d failed%s\n", first, comm->size,
            first >= 0 ? " (its error is above)" : ": communication between ranks failed");
  return EXIT_SPEC;
}

/* Under mpirun: whether this rank prints an error sn_train returned. Rank 0 prints
 * every one; the others only their own, not those every rank gets alike (a loss that
 * is not finite, ranks that disagree, the notice that another rank failed). */
static bool prints_error(const sn_comm *comm, const char *msg) {
  if (!comm || comm->rank == 0) return true;
  return strncmp(msg, "stopped because rank ", 21) && strncmp(msg, "loss is ", 8) &&
         !strstr(msg, " ranks disagree on ") && strcmp(msg, "communication between ranks failed");
}

/* True when the folder exists and holds nothing. */
static bool empty_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return false;
  bool empty = true;
  for (struct dirent *e; empty && (e = readdir(d));)
    empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  return empty;
}

int new_run_dir(const char *name, char *dir, size_t cap) {
  if (sn_mkdirs("runs")) {
    snprintf(dir, cap, "runs");
    return -1;
  }
  for (int k = 1; k < 100000; k++) {
    if (k == 1)
      snprintf(dir, cap, "runs/%s", name);
    else
      snprintf(dir, cap, "runs/%s-%d", name, k);
    if (!mkdir(dir, 0777) || (errno == EEXIST && empty_dir(dir))) return 0;
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

/* DIR/NAME opened for writing when this run has it, else removed (an older run's
 * must not outlive it) and NULL. */
static FILE *run_file(const char *dir, const char *name, bool has) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!has) {
    unlink(path);
    return NULL;
  }
  return fopen(path, "w");
}

/* classes.json: the class names of a training set whose labels were names, as a
 * JSON array (class k is item k), for predict to print them back. Without names,
 * an older classes.json in dir is removed. */
static void write_classes(const sn_dataset *train, const char *dir) {
  FILE *f = run_file(dir, "classes.json", train->class_names != NULL);
  if (!f) return;
  fputc('[', f);
  for (int k = 0; k < train->n_class_names; k++) {
    fputs(k ? ", " : "", f);
    run_json_string(f, train->class_names[k]);
  }
  fputs("]\n", f);
  fclose(f);
}

/* targets.json: standardize_targets' statistics, {"mean": [...], "std": [...]} per
 * target column: a prediction y of the model is y * std + mean in the data's units.
 * Without them, an older targets.json in dir is removed. */
static void write_targets(const sn_data *d, const char *dir) {
  FILE *f = run_file(dir, "targets.json", d->tgt_mean != NULL);
  if (!f) return;
  for (int w = 0; w < 2; w++) {
    const double *v = w ? d->tgt_std : d->tgt_mean;
    fputs(w ? ", \"std\": [" : "{\"mean\": [", f);
    for (int64_t k = 0; k < d->tgt_n; k++) fprintf(f, "%s%.17g", k ? ", " : "", v[k]);
    fputc(']', f);
  }
  fputs("}\n", f);
  fclose(f);
}

static void write_resolved(const sn_spec *s, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
  FILE *f = fopen(path, "w");
  if (f) {
    sn_spec_write_resolved(s, f);
    fclose(f);
  }
}

/* Ctrl-C during training: say how to continue, then die of SIGINT as before. The
 * run folder holds the checkpoint and state of the last finished epoch. */
static char interrupt_note[4400];
static size_t interrupt_len;

static void on_interrupt(int sig) {
  if (interrupt_len && write(STDERR_FILENO, interrupt_note, interrupt_len) < 0) interrupt_len = 0;
  signal(sig, SIG_DFL);
  raise(sig);
}

static void note_interrupts(const char *dir) {
  int n = snprintf(interrupt_note, sizeof interrupt_note,
                   "\nspecnet: interrupted; `specnet train --resume %s` continues after the last finished "
                   "epoch, with the same results as an uninterrupted run\n",
                   dir);
  interrupt_len = n > 0 && (size_t)n < sizeof interrupt_note ? (size_t)n : 0;
  signal(SIGINT, on_interrupt);
}

/* What the report needs besides the training record (run_outputs.c): predictions on
 * the test set (else validation), run.json, profile.txt; then report.html with
 * --report. A failure here is reported but does not fail the trained run. */
static int finish_record(const opts *o, session *S, const char *dir, double t0) {
  const sn_dataset *ds = S->ds.has_test ? &S->ds.test : S->ds.has_val ? &S->ds.val : NULL;
  const char *split = S->ds.has_test ? "test" : S->ds.has_val ? "validation" : NULL;
  sn_error err = {0};
  char path[4200];
  snprintf(path, sizeof path, "%s/predictions.csv", dir);
  if (!ds) unlink(path); /* an older run's */
  if (ds && run_write_predictions(S->spec, S->m, ds, &S->ds, dir, &err))
    fprintf(stderr, "specnet: warning: %s\n", err.msg);
  if (S->profile) run_write_profile(S->c, dir);
  else {
    snprintf(path, sizeof path, "%s/profile.txt", dir);
    unlink(path);
  }
  if (write_generations(S->spec, S->m, &S->ds.train, dir))
    fprintf(stderr, "specnet: warning: cannot write %s/generations.txt\n", dir);
  run_write_info(dir, S->spec, S->c, split, sn_now() - t0);
  if (!o->report) return 0;
  return report_write(dir, NULL);
}

/* One training run, alone (comm NULL) or as one rank of a data-parallel job: every
 * rank compiles the same program and loads the same data; rank 0 alone writes the
 * run folder and prints. */
static int train_session(const opts *o, sn_spec *spec, const sn_comm *comm) {
  const bool lead = !comm || comm->rank == 0;
  const double t0 = sn_now();
  session S;
  int rc = session_open_with(&S, o, o->quiet || !lead, true, spec);
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  const sn_spec *s = S.spec;
  char dir[4096], path[4200], spath_state[4200];
  bool fresh = !o->resume && !o->out; /* runs/NAME, or runs/NAME-2, ... beside earlier runs */
  if (o->resume) snprintf(dir, sizeof dir, "%s", o->resume);
  else if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
  else snprintf(dir, sizeof dir, "runs/%s", s->name);
  if (lead && fresh && new_run_dir(s->name, dir, sizeof dir)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", dir, strerror(errno));
    rc = EXIT_SPEC;
  } else if (lead && fresh && !o->quiet && strcmp(dir + 5, s->name)) {
    printf("runs/%s holds an earlier run: this one goes to %s\n", s->name, dir);
  }
  snprintf(spath_state, sizeof spath_state, "%s/train_state.safetensors", dir);
  if (!rc && lead && sn_mkdirs(dir)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", dir, strerror(errno));
    rc = EXIT_SPEC;
  } else if (!rc && lead && !o->resume) { /* a resumed run's record changes only once it trained */
    write_resolved(s, dir);
    write_classes(&S.ds.train, dir);
    write_targets(&S.ds, dir);
    run_copy_spec(o->spec, dir);
    write_vocab(&S.ds.train, dir);
    unlink(spath_state); /* an older run's; this run writes its own */
  }
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  sn_error err = {0};
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (s->epochs > 0 || o->resume) {
    char mpath[4200], cpath[4200], spath[4200];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", dir);
    snprintf(cpath, sizeof cpath, "%s/metrics.csv", dir);
    snprintf(spath, sizeof spath, "%s/curves.svg", dir);
    sn_train_opts to;
    train_opts_from_spec(s, &to);
    to.metrics_path = mpath;
    to.csv_path = cpath;
    to.curves_path = spath;
    to.progress = lead && !o->quiet && isatty(STDERR_FILENO);
    to.quiet = o->quiet || !lead;
    to.comm = comm;
    to.checkpoint_path = path; /* after every epoch: --resume continues from there */
    to.state_path = spath_state;
    to.resume = o->resume != NULL;
    if (lead) note_interrupts(dir);
    if (sn_train(S.m, &S.ds.train, S.ds.has_val ? &S.ds.val : NULL, S.ds.has_test ? &S.ds.test : NULL,
                 &to, &err)) {
      if (prints_error(comm, err.msg)) fprintf(stderr, "%s: error: %s\n", s->path, err.msg);
      session_free(&S);
      return EXIT_SPEC;
    }
  }
  if (lead && o->resume) write_resolved(s, dir); /* train.epochs may have been raised */
  if (lead && sn_safetensors_write(path, S.m, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    rc = EXIT_SPEC;
  }
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  if (!o->quiet && lead) printf("wrote %s\n", path);
  if (lead) rc = finish_record(o, &S, dir, t0);
  session_free(&S);
  return rc;
}

int train_run(const opts *o, sn_spec *spec) {
  if (o->resume && (o->weights || (o->out && strcmp(o->out, o->resume)))) {
    if (spec) sn_spec_free(spec);
    return usage_error("--resume DIR continues the run in DIR: it takes no --weights, and --out, "
                       "if given, must be DIR");
  }
  int rc = 0;
  const sn_comm *comm = dist_start(o->threads, &rc); /* NULL: alone */
  if (rc) {
    if (spec) sn_spec_free(spec);
  } else {
    rc = train_session(o, spec, comm);
  }
  dist_finish();
  return rc;
}

static int cmd_eval(const opts *o) {
  if (!o->weights) return usage_error("eval needs --weights FILE");
  const char *split = o->split ? o->split : "test";
  if (strcmp(split, "test") && strcmp(split, "validation") && strcmp(split, "train"))
    return usage_error("--split must be test, validation or train; got '%s'", split);
  session S;
  int rc = session_open(&S, o, true);
  if (rc) {
    session_free(&S);
    return rc;
  }
  const sn_dataset *ds = !strcmp(split, "train") ? &S.ds.train
                         : !strcmp(split, "validation") ? (S.ds.has_val ? &S.ds.val : NULL)
                                                        : (S.ds.has_test ? &S.ds.test : NULL);
  if (!ds) {
    fprintf(stderr, "%s: error: the spec has no %s data\n", S.spec->path, split);
    session_free(&S);
    return EXIT_SPEC;
  }
  sn_eval_result r;
  sn_error err = {0};
  if (sn_evaluate(S.m, ds, &r, &err)) {
    fprintf(stderr, "%s: error: %s\n", S.spec->path, err.msg);
    session_free(&S);
    return EXIT_SPEC;
  }
  /* the names of metrics.jsonl: val_loss, test_accuracy (train_loss for the training set) */
  const char *prefix = !strcmp(split, "validation") ? "val" : split;
  printf("%s_loss %.9g", prefix, r.loss);
  for (int k = 0; k < S.m->n_metrics; k++)
    printf("  %s_%s %.6f", prefix, S.m->metric_names[k], r.metrics[k]);
  printf("  (%lld samples, %.2fs)\n", (long long)r.samples, r.seconds);
  session_free(&S);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    if (argc < 3 || print_command_help(argv[2], stdout)) print_help(stdout); /* help [CMD] */
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    print_version(stdout);
    return 0;
  }
  static const char *const cmds[] = {"check", "train", "eval", "predict", "generate", "emit", "test", "build", "report", "compare", "data"};
  int (*fns[])(const opts *) = {cmd_check, cmd_train, cmd_eval,  cmd_predict, cmd_generate, cmd_emit,
                                cmd_test,  cmd_build, cmd_report, cmd_compare, cmd_data};
  const int n_cmds = (int)(sizeof cmds / sizeof *cmds);
  for (int i = 0; i < n_cmds; i++) {
    if (strcmp(cmd, cmds[i])) continue;
    for (int j = 2; j < argc; j++)
      if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
        if (print_command_help(cmd, stdout)) print_help(stdout);
        return 0;
      }
    opts o;
    int rc = parse_opts(cmd, argc - 2, argv + 2, &o);
    if (rc) return rc;
    if (o.lr && (rc = lr_set(&o))) return rc;
    if (!o.spec && fns[i] != cmd_train) return usage_error("no spec file given");
    if (select_cpu(&o)) return EXIT_USAGE;
    return fns[i](&o);
  }
  fprintf(stderr, "specnet: error: unknown command '%s'\n", cmd);
  const char *near = sn_closest(cmd, cmds, (int)(sizeof cmds / sizeof *cmds));
  if (near) fprintf(stderr, "hint: did you mean '%s'?\n", near);
  return EXIT_USAGE;
}
