/* The specnet command: its options parsed and each command dispatched to the
 * function that runs it (session.c, cmd_*.c); the passes themselves are in
 * compiler/compile.c.
 * Exit codes (SPEC.md): 0 success, 1 spec or data error, 2 usage error,
 * 3 an expectation failed. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
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

static const char *const known_options[] = {
    "--out",   "--set",    "--weights", "--threads",      "--dtype", "--quiet",   "--what",
    "--split", "--help",   "--verbose", "--junit",        "--jobs",  "--input",   "--output",
    "--probs", "--cpu",    "--lib",     "--weights-file", "-o",      "--profile", "--no-cache",
    "--train", "--resume", "--epochs",  "--batch-size",   "--lr", "--report", "--prompt", "--tokens",
    "--temperature", "--top-k", "--seed", "--no-kv-cache"};

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
                 "--no-kv-cache --cpu "},
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
                  strcmp(a, "--no-kv-cache") &&
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
    else if (!strcmp(a, "--no-kv-cache")) o->no_kv_cache = true;
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
  if (sn_spec_has_sweep(s)) {
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

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  sn_hdf5_enable(); /* data sources may be HDF5 files */
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
