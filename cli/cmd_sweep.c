/* Sweeps: `specnet train SPEC` on a spec with a `sweep:` section runs the spec once
 * per combination of values, each run an ordinary training run with the swept keys
 * given as `--set KEY=VALUE` after the user's own, in its own folder
 * (runs/NAME/sweep-<i>, or DIR/sweep-<i> with --out DIR), and prints a table of the
 * runs sorted by the sweep's metric, best first. The table is also written to
 * sweep.csv beside the run folders.
 *
 *   grid:   every combination, the last key varying fastest (as itertools.product)
 *   random: `count` runs; value i of a key is drawn uniformly (or log-uniformly)
 *           from its range by the counter RNG at (seed, SN_STREAM_SWEEP + key, i),
 *           so a sweep is reproducible and adding runs keeps the earlier ones
 *
 * Each run is a child process (fork, no exec: the parent has loaded only the spec),
 * its output in its folder's train.log; --jobs N runs N at once, each with one
 * OpenBLAS thread. A run's figure is the metric in the last line of its
 * metrics.jsonl, or, with early_stopping restore_best, in the line of the epoch whose
 * weights were kept. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

enum { MAX_RUNS = 4096 };

typedef struct run {
  int index;         /* 1-based, names the folder */
  char sets[8][300]; /* "KEY=VALUE" per axis */
  int value_at[8];   /* where the VALUE part of each starts (runs get sorted) */
  char dir[4200];
  pid_t pid;
  double started, seconds;
  int status;    /* exit code; -1 not run; 128+N killed by signal N */
  double metric; /* NAN when absent */
} run;

/* ---------------------------------------------------------------------------
 * Reading a run's metrics.jsonl */

/* The number after "key": in one JSON line; NAN when absent or null. */
static double json_value(const char *line, const char *key) {
  char pat[200];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(line, pat);
  if (!p) return NAN;
  p += strlen(pat);
  char *end;
  double v = strtod(p, &end);
  return end == p ? NAN : v;
}

static double run_metric(const run *r, const sn_spec *s, const char *metric) {
  char path[4300];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
  FILE *f = fopen(path, "r");
  if (!f) return NAN;
  char line[8192];
  double last = NAN, kept = NAN, best = NAN;
  const sn_early_stopping *es = &s->early;
  const char *mon = es->monitor[0] ? es->monitor : "val_loss";
  const bool up = strstr(mon, "acc") != NULL;
  bool any = false;
  while (fgets(line, sizeof line, f)) {
    last = json_value(line, metric);
    double v = json_value(line, mon);
    /* the epoch sn_train keeps with restore_best: the same rule */
    if (isfinite(v) && (!any || (up ? v > best + es->min_delta : v < best - es->min_delta))) {
      best = v;
      kept = last;
      any = true;
    }
  }
  fclose(f);
  return es->enabled && es->restore_best && any ? kept : last;
}

/* ---------------------------------------------------------------------------
 * The runs */

static int make_runs(const sn_spec *s, run **out, int *n_out) {
  const sn_sweep_spec *sw = &s->sweep;
  int64_t n = 1;
  if (sw->kind == SN_SWEEP_GRID) {
    for (int a = 0; a < sw->n_axes; a++) {
      n *= sw->axes[a].n_values > 0 ? sw->axes[a].n_values : 1;
      if (n > MAX_RUNS) break;
    }
  } else {
    n = sw->count;
  }
  if (n < 1 || n > MAX_RUNS) {
    sn_diag d = {0};
    sn_diag_error(&d, sw->loc, "the sweep has %lld runs; it must have 1 to %d", (long long)n,
                  MAX_RUNS);
    print_diag(&d);
    sn_diag_free(&d);
    return EXIT_SPEC;
  }
  run *runs = calloc((size_t)n, sizeof *runs);
  if (!runs) {
    fprintf(stderr, "specnet: error: out of memory for %lld sweep runs\n", (long long)n);
    return EXIT_SPEC;
  }
  for (int i = 0; i < n; i++) {
    run *r = &runs[i];
    r->index = i + 1;
    r->status = -1;
    r->metric = NAN;
    int rest = i; /* grid: digits of i, the last axis fastest */
    for (int a = sw->n_axes - 1; a >= 0; a--) {
      const sn_sweep_axis *ax = &sw->axes[a];
      char value[128];
      if (sw->kind == SN_SWEEP_GRID) {
        int nv = ax->n_values > 0 ? ax->n_values : 1;
        snprintf(value, sizeof value, "%s", ax->values[rest % nv]);
        rest /= nv;
      } else {
        double u = sn_rand_uniform(s->seed, SN_STREAM_SWEEP + (uint64_t)a, (uint64_t)i);
        double v = ax->log && ax->lo > 0 && ax->hi > 0
                       ? exp(log(ax->lo) + u * (log(ax->hi) - log(ax->lo)))
                       : ax->lo + u * (ax->hi - ax->lo);
        if (ax->integer)
          snprintf(value, sizeof value, "%lld", (long long)llround(v));
        else
          snprintf(value, sizeof value, "%.4g", v);
      }
      int k = snprintf(r->sets[a], sizeof r->sets[a], "%s=%s", ax->key, value);
      r->value_at[a] = k - (int)strlen(value);
    }
  }
  *out = runs;
  *n_out = (int)n;
  return 0;
}

/* In the child: one training run with the run's overrides; never returns. */
static void run_child(const opts *o, const run *r, int n_axes, int jobs) {
  char log[4300];
  snprintf(log, sizeof log, "%s/train.log", r->dir);
  int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    close(devnull);
  }
  opts co = *o;
  for (int a = 0; a < n_axes && co.n_sets < 64; a++) co.sets[co.n_sets++] = r->sets[a];
  co.out = r->dir;
  co.jobs = 0;
  if (jobs > 1 && !o->threads) co.threads = 1; /* N runs share the cores */
  for (int a = 0; a < n_axes; a++) printf("--set %s\n", r->sets[a]);
  fflush(stdout);
  int rc = train_run(&co, NULL);
  fflush(NULL);
  _exit(rc);
}

static int start(const opts *o, run *r, int n_axes, int jobs) {
  fflush(NULL);
  r->started = sn_now();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "specnet: error: cannot start sweep run %d: %s\n", r->index, strerror(errno));
    return -1;
  }
  if (pid == 0) run_child(o, r, n_axes, jobs);
  r->pid = pid;
  return 0;
}

/* ---------------------------------------------------------------------------
 * The table */

static const char *value_of(const run *r, int axis) { return r->sets[axis] + r->value_at[axis]; }

static bool g_max; /* for the comparator: higher is better */

static int by_metric(const void *pa, const void *pb) {
  const run *a = pa, *b = pb;
  bool fa = isfinite(a->metric) && a->status == 0, fb = isfinite(b->metric) && b->status == 0;
  if (fa != fb) return fa ? -1 : 1;
  if (fa && a->metric != b->metric)
    return (g_max ? a->metric > b->metric : a->metric < b->metric) ? -1 : 1;
  return a->index - b->index;
}

static void print_table(FILE *f, const sn_sweep_spec *sw, const run *runs, int n,
                        const char *metric, bool csv) {
  int w[8];
  for (int a = 0; a < sw->n_axes; a++) {
    w[a] = (int)strlen(sw->axes[a].key);
    for (int i = 0; i < n; i++) {
      int l = (int)strlen(value_of(&runs[i], a));
      if (l > w[a]) w[a] = l;
    }
  }
  int mw = (int)strlen(metric) > 10 ? (int)strlen(metric) : 10;
  if (csv)
    fprintf(f, "run");
  else
    fprintf(f, "%4s", "run");
  for (int a = 0; a < sw->n_axes; a++) {
    if (csv)
      fprintf(f, ",%s", sw->axes[a].key);
    else
      fprintf(f, "  %-*s", w[a], sw->axes[a].key);
  }
  if (csv)
    fprintf(f, ",%s,seconds,status\n", metric);
  else
    fprintf(f, "  %*s  %8s\n", mw, metric, "seconds");
  for (int i = 0; i < n; i++) {
    const run *r = &runs[i];
    if (csv)
      fprintf(f, "%d", r->index);
    else
      fprintf(f, "%4d", r->index);
    for (int a = 0; a < sw->n_axes; a++) {
      if (csv) {
        bool q = strpbrk(value_of(r, a), ",\"") != NULL;
        fputc(',', f);
        if (q) fputc('"', f);
        for (const char *p = value_of(r, a); *p; p++) {
          if (*p == '"') fputc('"', f);
          fputc(*p, f);
        }
        if (q) fputc('"', f);
      } else {
        fprintf(f, "  %-*s", w[a], value_of(r, a));
      }
    }
    char m[40], st[40];
    if (isfinite(r->metric))
      snprintf(m, sizeof m, csv ? "%.17g" : "%.4f", r->metric);
    else
      snprintf(m, sizeof m, "%s", csv ? "" : "-");
    if (r->status == 0)
      snprintf(st, sizeof st, "ok");
    else if (r->status > 128)
      snprintf(st, sizeof st, "killed by signal %d", r->status - 128);
    else
      snprintf(st, sizeof st, "failed (exit %d)", r->status);
    if (csv)
      fprintf(f, ",%s,%.3f,%s\n", m, r->seconds, st);
    else
      fprintf(f, "  %*s  %8.2f%s%s\n", mw, m, r->seconds, r->status ? "  " : "",
              r->status ? st : "");
  }
}

int cmd_sweep(const opts *o, const sn_spec *s) {
  const sn_sweep_spec *sw = &s->sweep;
  if (sw->n_axes < 1 || sw->n_axes > 8) {
    fprintf(stderr, "%s: error: the sweep has %d keys; it must have 1 to 8\n", s->path, sw->n_axes);
    return EXIT_SPEC;
  }
  if (o->n_sets + sw->n_axes > 64)
    return usage_error("too many --set options with the sweep's keys");
  run *runs = NULL;
  int n = 0, rc = make_runs(s, &runs, &n);
  if (rc) return rc;

  char base[4096];
  if (o->out) snprintf(base, sizeof base, "%s", o->out);
  if (o->out ? sn_mkdirs(base) : new_run_dir(s->name, base, sizeof base)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", base, strerror(errno));
    free(runs);
    return EXIT_SPEC;
  }
  for (int i = 0; i < n; i++) {
    snprintf(runs[i].dir, sizeof runs[i].dir, "%s/sweep-%d", base, runs[i].index);
    if (sn_mkdirs(runs[i].dir)) {
      fprintf(stderr, "specnet: error: cannot create %s: %s\n", runs[i].dir, strerror(errno));
      free(runs);
      return EXIT_SPEC;
    }
  }
  /* the metric: the spec's, else val_loss with a validation set, else loss */
  bool has_val = s->data.validation.kind != SN_SRC_NONE || s->data.validation_split > 0;
  const char *metric = sw->metric[0] ? sw->metric : has_val ? "val_loss" : "loss";
  bool maximize = sw->metric[0] ? sw->maximize : false;
  int jobs = o->jobs > 0 ? o->jobs : 1;
  if (jobs > n) jobs = n;
  if (!o->quiet)
    printf("sweep: %d runs of %s (%s), %d at a time, into %s/sweep-*\n", n, s->name,
           sw->kind == SN_SWEEP_GRID ? "grid" : "random", jobs, base);

  int next = 0, running = 0, done = 0;
  double t0 = sn_now();
  while (done < n) {
    while (running < jobs && next < n) {
      if (start(o, &runs[next], sw->n_axes, jobs)) {
        runs[next].status = 127;
        done++;
      } else {
        running++;
      }
      next++;
    }
    if (!running) continue;
    int status;
    pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "specnet: error: waiting for sweep runs: %s\n", strerror(errno));
      break;
    }
    for (int i = 0; i < next; i++) {
      run *r = &runs[i];
      if (r->pid != pid || r->status != -1) continue;
      r->seconds = sn_now() - r->started;
      r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      r->metric = r->status == 0 ? run_metric(r, s, metric) : NAN;
      running--;
      done++;
      if (!o->quiet) {
        printf("  run %d/%d", r->index, n);
        for (int a = 0; a < sw->n_axes; a++) printf("  %s", r->sets[a]);
        if (r->status == 0)
          printf("  %s %.4f  %.1fs\n", metric, r->metric, r->seconds);
        else
          printf("  FAILED (exit %d; see %s/train.log)\n", r->status, r->dir);
        fflush(stdout);
      }
    }
  }

  g_max = maximize;
  qsort(runs, (size_t)n, sizeof *runs, by_metric);
  printf("\nsweep %s: %d runs in %.1fs, sorted by %s (%s is better)\n", s->name, n, sn_now() - t0,
         metric, maximize ? "higher" : "lower");
  print_table(stdout, sw, runs, n, metric, false);
  char path[4200];
  snprintf(path, sizeof path, "%s/sweep.csv", base);
  FILE *f = fopen(path, "w");
  if (f) {
    print_table(f, sw, runs, n, metric, true);
    fclose(f);
    if (!o->quiet) printf("wrote %s\n", path);
  }
  int failed = 0;
  for (int i = 0; i < n; i++) failed += runs[i].status != 0;
  if (failed) fprintf(stderr, "specnet: error: %d of %d sweep runs failed\n", failed, n);
  free(runs);
  return failed ? EXIT_SPEC : 0;
}
