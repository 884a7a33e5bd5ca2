/* The specnet command: a thin driver over the compiler and the runtime. Each
 * command is one function; the passes themselves are in compiler/compile.c.
 * Exit codes (SPEC.md): 0 success, 1 spec or data error, 2 usage error,
 * 3 an expectation failed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "help.h"

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

static const char *const known_options[] = {"--out",   "--set",   "--weights", "--threads", "--dtype",
                                            "--quiet", "--what",  "--split",   "--help",    "--verbose",
                                            "--junit", "--jobs", "--input", "--output",
                                            "--probs", "--cpu",  "--lib",   "--weights-file", "-o",
                                            "--profile", "--no-cache"};

static bool known_option(const char *a) {
  for (size_t i = 0; i < sizeof known_options / sizeof *known_options; i++)
    if (!strcmp(a, known_options[i])) return true;
  return false;
}

static int parse_opts(int argc, char **argv, opts *o, bool many) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    bool takes = (strcmp(a, "--quiet") && strcmp(a, "--verbose") && strcmp(a, "--probs") &&
                  strcmp(a, "--lib") && strcmp(a, "--weights-file") && strcmp(a, "--profile") &&
                  strcmp(a, "--no-cache") && !strncmp(a, "--", 2)) ||
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
    else if (!strcmp(a, "--weights")) o->weights = val;
    else if (!strcmp(a, "--what")) o->what = val;
    else if (!strcmp(a, "--split")) o->split = val;
    else if (!strcmp(a, "--junit")) o->junit = val;
    else if (!strcmp(a, "--input")) o->input = val;
    else if (!strcmp(a, "--output")) o->output = val;
    else if (!strcmp(a, "--probs")) o->probs = true;
    else if (!strcmp(a, "--jobs")) {
      char *end;
      long n = strtol(val, &end, 10);
      if (!*val || *end || n < 1 || n > 1024) return usage_error("--jobs needs a number from 1 to 1024, got '%s'", val);
      o->jobs = (int)n;
    }
    else if (!strcmp(a, "--set")) {
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
    } else if (!strcmp(a, "--quiet")) o->quiet = true;
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
  if (!o->spec) return usage_error("no spec file given");
  return 0;
}

/* ---------------------------------------------------------------------------
 * Spec, compile, data */

sn_spec *load_spec(const opts *o) {
  sn_diag d = {0};
  sn_spec *s = sn_spec_load(o->spec, o->sets, o->n_sets, &d);
  sn_diag_print(&d, stderr);
  sn_diag_free(&d);
  return s;
}

static sn_compiled *compile_spec(const sn_spec *s, const opts *o) {
  sn_diag d = {0};
  const char *env = getenv("SPECNET_PROFILE");
  sn_compile_opts co = {.dtype = o->dtype, .profile = o->profile || (env && *env && strcmp(env, "0")),
                        .no_cache = o->no_cache};
  sn_compiled *c = sn_compile_with(s, &co, &d);
  sn_diag_print(&d, stderr);
  sn_diag_free(&d);
  return c;
}

/* Prints a data error at the spec line of the source it came from. */
int data_error(const sn_spec *s, sn_loc loc, const char *msg) {
  sn_diag d = {0};
  if (!loc.file) loc.file = s->path;
  sn_diag_error(&d, loc, "%s", msg);
  sn_diag_print(&d, stderr);
  sn_diag_free(&d);
  return EXIT_SPEC;
}

static void datasets_free(datasets *ds) {
  sn_dataset_free(&ds->train);
  sn_dataset_free(&ds->val);
  sn_dataset_free(&ds->test);
  free(ds->std_mean);
  free(ds->std_std);
  ds->std_mean = ds->std_std = NULL;
}

/* data.preprocess in order: scale, then normalize with the given mean and std. */
int preprocess_set(const sn_spec *s, sn_dataset *ds) {
  if (s->data.scale != 1.0) sn_dataset_scale(ds, (float)s->data.scale);
  if (s->data.n_norm > 0) {
    sn_error err = {0};
    if (sn_dataset_normalize(ds, s->data.norm_mean, s->data.norm_std, s->data.n_norm, &err))
      return data_error(s, s->data.preprocess_loc, err.msg);
  }
  return 0;
}

/* Loads one set and checks it against the model: sample size, targets, label range. */
static int load_set(const sn_spec *s, const sn_model *m, const sn_source *src_in, sn_loc loc,
                    sn_dataset *out) {
  sn_error err = {0};
  sn_source src = *src_in;
  src.target_elems = m->target_elems; /* what the loss reads: labels or float targets */
  if (sn_dataset_load(&src, out, &err)) return data_error(s, loc, err.msg);
  char msg[8192];
  if (out->sample_elems != m->input_elems) {
    snprintf(msg, sizeof msg,
             "%s: samples have %lld values each, but model.input has %lld (line %d)", out->origin,
             (long long)out->sample_elems, (long long)m->input_elems, s->input_loc.line);
    return data_error(s, loc, msg);
  }
  for (int64_t i = 0; m->target_elems == 0 && i < out->n; i++)
    if (out->y[i] < 0 || out->y[i] >= m->output_elems) {
      snprintf(msg, sizeof msg,
               "%s: label %d of sample %lld is out of range for a model with %lld outputs",
               out->origin, out->y[i], (long long)i, (long long)m->output_elems);
      return data_error(s, loc, msg);
    }
  return preprocess_set(s, out);
}

/* data.preprocess standardize: statistics of the training set (after the validation
 * split, so nothing of validation leaks into them), applied to every set. */
static int standardize(const sn_spec *s, datasets *ds) {
  int64_t F = sn_dataset_features(&ds->train);
  ds->std_mean = malloc((size_t)F * sizeof(double));
  ds->std_std = malloc((size_t)F * sizeof(double));
  if (!ds->std_mean || !ds->std_std) return data_error(s, s->data.preprocess_loc, "out of memory");
  ds->std_n = F;
  sn_dataset_stats(&ds->train, ds->std_mean, ds->std_std);
  sn_dataset *sets[3] = {&ds->train, ds->has_val ? &ds->val : NULL, ds->has_test ? &ds->test : NULL};
  for (int i = 0; i < 3; i++) {
    sn_error err = {0};
    if (sets[i] && sn_dataset_normalize(sets[i], ds->std_mean, ds->std_std, F, &err))
      return data_error(s, s->data.preprocess_loc, err.msg);
  }
  return 0;
}

static int load_data(const sn_spec *s, const sn_model *m, datasets *ds) {
  memset(ds, 0, sizeof *ds);
  int rc = load_set(s, m, &s->data.train, s->data.train_loc, &ds->train);
  if (rc) return rc;
  if (s->data.validation.kind != SN_SRC_NONE) {
    if ((rc = load_set(s, m, &s->data.validation, s->data.validation_loc, &ds->val))) return rc;
    ds->has_val = true;
  } else if (s->data.validation_split > 0) {
    sn_error err = {0};
    if (sn_dataset_split(&ds->train, s->data.validation_split, &ds->val, &err))
      return data_error(s, s->data.validation_loc, err.msg);
    ds->has_val = true;
  }
  if (s->data.test.kind != SN_SRC_NONE) {
    if ((rc = load_set(s, m, &s->data.test, s->data.test_loc, &ds->test))) return rc;
    ds->has_test = true;
  }
  if (s->data.standardize && (rc = standardize(s, ds))) return rc;
  return 0;
}

int mkdirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * Commands */

static int cmd_check(const opts *o) {
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  sn_diag d = {0};
  int rc = sn_emit_stage(s, "table", o->dtype, stdout, &d);
  sn_diag_print(&d, stderr);
  sn_diag_free(&d);
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
    sn_node_write(s->root, stdout);
  } else {
    sn_diag d = {0};
    rc = sn_emit_stage(s, o->what, o->dtype, stdout, &d) ? EXIT_SPEC : 0;
    sn_diag_print(&d, stderr);
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
  int rc = data ? load_data(S->spec, m, &S->ds) : 0;
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
  to->epochs = s->epochs;
  to->batch_size = s->batch_size;
  to->shuffle = s->shuffle;
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

static int cmd_train(const opts *o) {
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  if (s->sweep.kind != SN_SWEEP_NONE) {
    int rc = cmd_sweep(o, s);
    sn_spec_free(s);
    return rc;
  }
  return train_run(o, s);
}

int train_run(const opts *o, sn_spec *spec) {
  session S;
  int rc = session_open_with(&S, o, o->quiet, true, spec);
  if (rc) {
    session_free(&S);
    return rc;
  }
  const sn_spec *s = S.spec;
  char dir[4096], path[4200];
  if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
  else snprintf(dir, sizeof dir, "runs/%s", s->name);
  if (mkdirs(dir)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", dir, strerror(errno));
    session_free(&S);
    return EXIT_SPEC;
  }
  snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
  FILE *f = fopen(path, "w");
  if (f) {
    sn_spec_write_resolved(s, f);
    fclose(f);
  }
  sn_error err = {0};
  if (s->epochs > 0) {
    char mpath[4200], cpath[4200], spath[4200];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", dir);
    snprintf(cpath, sizeof cpath, "%s/metrics.csv", dir);
    snprintf(spath, sizeof spath, "%s/curves.svg", dir);
    sn_train_opts to;
    train_opts_from_spec(s, &to);
    to.metrics_path = mpath;
    to.csv_path = cpath;
    to.curves_path = spath;
    to.progress = !o->quiet && isatty(STDERR_FILENO);
    to.quiet = o->quiet;
    if (sn_train(S.m, &S.ds.train, S.ds.has_val ? &S.ds.val : NULL, S.ds.has_test ? &S.ds.test : NULL,
                 &to, &err)) {
      fprintf(stderr, "%s: error: %s\n", s->path, err.msg);
      session_free(&S);
      return EXIT_SPEC;
    }
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (sn_safetensors_write(path, S.m, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    session_free(&S);
    return EXIT_SPEC;
  }
  if (!o->quiet) printf("wrote %s\n", path);
  session_free(&S);
  return 0;
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
  printf("%s_loss %.9g", split, r.loss);
  for (int k = 0; k < S.m->n_metrics; k++) printf("  %s_%s %.6f", split, S.m->metric_names[k], r.metrics[k]);
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
  static const char *const cmds[] = {"check", "train", "eval", "predict", "emit", "test", "build"};
  int (*fns[])(const opts *) = {cmd_check, cmd_train, cmd_eval, cmd_predict, cmd_emit, cmd_test, cmd_build};
  const int n_cmds = (int)(sizeof cmds / sizeof *cmds);
  for (int i = 0; i < n_cmds; i++) {
    if (strcmp(cmd, cmds[i])) continue;
    for (int j = 2; j < argc; j++)
      if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
        if (print_command_help(cmd, stdout)) print_help(stdout);
        return 0;
      }
    opts o;
    int rc = parse_opts(argc - 2, argv + 2, &o, fns[i] == cmd_test);
    if (rc) return rc;
    return fns[i](&o);
  }
  fprintf(stderr, "specnet: error: unknown command '%s'\n", cmd);
  const char *near = sn_closest(cmd, cmds, (int)(sizeof cmds / sizeof *cmds));
  if (near) fprintf(stderr, "hint: did you mean '%s'?\n", near);
  return EXIT_USAGE;
}
