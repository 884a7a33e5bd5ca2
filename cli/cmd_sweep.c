/* Sweeps and hyperparameter search: `specnet train SPEC` on a spec with a `sweep:`
 * section runs the spec once per setting (a trial), each an ordinary training run
 * with the swept keys given as `--set KEY=VALUE` after the user's own, in its own
 * folder (runs/NAME/sweep-<i>, or DIR/sweep-<i> with --out DIR), and prints a table
 * of the trials sorted by the sweep's metric, best first, also written to sweep.csv
 * and sweep.jsonl, with the best trial's resolved spec and compare.html beside them.
 *
 *   grid:   every combination, the last key varying fastest (as itertools.product)
 *   random: `trials` (`count`) draws; value i of a key comes from the counter RNG at
 *           (seed, SN_STREAM_SWEEP + key, i): uniform, log-uniform, a whole number
 *           in [lo, hi] or one of a list, so a sweep is reproducible and adding
 *           trials keeps the earlier ones
 *   halving: rungs of min_epochs, min_epochs * eta, ... train.epochs; after each
 *           rung the best 1/eta of the trials continue their folders (--resume)
 *
 * Each trial is a child process (fork, no exec: the parent has loaded only the spec),
 * its output in its folder's train.log; --jobs N runs N at once, each with its share
 * of the CPUs as threads. A trial's figure is the metric in the last line of its
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
#include "dist.h"
#include "run_record.h"

enum { MAX_RUNS = 4096 };

typedef struct run {
  int index;         /* 1-based, names the folder */
  char sets[8][300]; /* "KEY=VALUE" per axis */
  int value_at[8];   /* where the VALUE part of each starts (runs get sorted) */
  char dir[4200];
  pid_t pid;
  double started, seconds;
  int status;        /* exit code; -1 not run; 128+N killed by signal N */
  double metric;     /* NAN when absent */
  int epochs;        /* epochs its metrics.jsonl holds */
  int stopped;       /* halving: the rung after which it was stopped; 0: it went on */
  double rung_value; /* halving: the figure the last rung compared */
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

static double run_metric(const run *r, const sn_spec *s, const char *metric, int *epochs) {
  char path[4300];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
  FILE *f = fopen(path, "r");
  if (!f) return NAN;
  char line[8192];
  double last = NAN, kept = NAN, best = NAN;
  sn_train_opts to;
  sn_spec_train_opts(s, &to);
  const sn_early_stopping *es = &to.early;
  const char *mon = es->monitor[0] ? es->monitor : "val_loss";
  const bool up = strstr(mon, "acc") != NULL;
  bool any = false;
  *epochs = 0;
  while (fgets(line, sizeof line, f)) {
    last = json_value(line, metric);
    *epochs = (int)json_value(line, "epoch");
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
  const sn_sweep_spec *sw = sn_spec_sweep(s);
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
      } else if (ax->n_values > 0) { /* choice: each value equally likely */
        double u = sn_rand_uniform(sn_spec_seed(s), SN_STREAM_SWEEP + (uint64_t)a, (uint64_t)i);
        int k = (int)(u * ax->n_values);
        snprintf(value, sizeof value, "%s", ax->values[k < ax->n_values ? k : ax->n_values - 1]);
      } else if (ax->whole) { /* int: [lo, hi], each whole number equally likely */
        double u = sn_rand_uniform(sn_spec_seed(s), SN_STREAM_SWEEP + (uint64_t)a, (uint64_t)i);
        double v = fmin(floor(ax->lo + u * (ax->hi - ax->lo + 1)), ax->hi);
        snprintf(value, sizeof value, "%lld", (long long)v);
      } else {
        double u = sn_rand_uniform(sn_spec_seed(s), SN_STREAM_SWEEP + (uint64_t)a, (uint64_t)i);
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

/* How a batch of trials runs: jobs at once, each with `threads` threads; `epochs`
 * > 0 sets train.epochs (halving's rungs), `resume` continues the trial's folder. */
typedef struct batch {
  int jobs, threads, epochs;
  bool resume;
  int total; /* trials in the sweep, for the progress lines */
} batch;

/* In the child: one training run with the run's overrides; never returns. */
static void run_child(const opts *o, const run *r, int n_axes, const batch *b) {
  char log[4300], epochs[40];
  snprintf(log, sizeof log, "%s/train.log", r->dir);
  int fd = open(log, O_WRONLY | O_CREAT | (b->resume ? O_APPEND : O_TRUNC), 0666);
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
  setenv("SPECNET_MPI", "0", 1); /* a trial is one process, also under mpirun */
  dist_forget();
  opts co = *o;
  for (int a = 0; a < n_axes && co.n_sets < 64; a++) co.sets[co.n_sets++] = r->sets[a];
  snprintf(epochs, sizeof epochs, "train.epochs=%d", b->epochs);
  if (b->epochs > 0 && co.n_sets < 64) co.sets[co.n_sets++] = epochs;
  co.out = r->dir;
  co.resume = b->resume ? r->dir : NULL;
  co.jobs = 0;
  if (!o->threads) { /* the trials at once share the cores */
    char t[16];
    snprintf(t, sizeof t, "%d", b->threads);
    setenv("OPENBLAS_NUM_THREADS", t, 1);
    co.threads = b->threads;
  }
  for (int a = 0; a < n_axes; a++) printf("--set %s\n", r->sets[a]);
  if (b->epochs > 0) printf("--set %s%s\n", epochs, b->resume ? " --resume" : "");
  fflush(stdout);
  int rc = train_run(&co, NULL);
  fflush(NULL);
  _exit(rc);
}

static int start(const opts *o, run *r, int n_axes, const batch *b) {
  fflush(NULL);
  r->started = sn_now();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "specnet: error: cannot start sweep run %d: %s\n", r->index, strerror(errno));
    return -1;
  }
  if (pid == 0) run_child(o, r, n_axes, b);
  r->pid = pid;
  return 0;
}

/* A trial has ended: its status, time and figures. */
static void finished(run *r, int status, const sn_spec *s, const char *metric, int n_axes,
                     const batch *b, bool quiet) {
  r->seconds += sn_now() - r->started;
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r->metric = r->status == 0 ? run_metric(r, s, metric, &r->epochs) : NAN;
  const sn_sweep_spec *sw = sn_spec_sweep(s);
  int e;
  if (sw->halving) r->rung_value = r->status == 0 ? run_metric(r, s, sw->halving_metric, &e) : NAN;
  if (quiet) return;
  printf("  run %d/%d", r->index, b->total);
  for (int a = 0; a < n_axes; a++) printf("  %s", r->sets[a]);
  if (r->status == 0)
    printf("  %s %.4f  %d epochs  %.1fs\n", metric, r->metric, r->epochs, r->seconds);
  else
    printf("  FAILED (exit %d; see %s/train.log)\n", r->status, r->dir);
  fflush(stdout);
}

/* Runs the trials of list, b->jobs at a time, until all have ended. */
static void run_batch(const opts *o, const sn_spec *s, run **list, int n, const batch *b,
                      const char *metric) {
  int next = 0, running = 0, done = 0;
  for (int i = 0; i < n; i++) list[i]->status = -1, list[i]->pid = 0;
  while (done < n) {
    while (running < b->jobs && next < n) {
      if (start(o, list[next], sn_spec_sweep(s)->n_axes, b)) {
        list[next]->status = 127;
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
      run *r = list[i];
      if (r->pid != pid || r->status != -1) continue;
      finished(r, status, s, metric, sn_spec_sweep(s)->n_axes, b, o->quiet);
      running--;
      done++;
    }
  }
}

/* ---------------------------------------------------------------------------
 * The table */

static const char *value_of(const run *r, int axis) { return r->sets[axis] + r->value_at[axis]; }

static bool g_max; /* for the comparators: higher is better */

/* Finished trials by the metric, then those halving stopped (the later rung first),
 * then failed ones. */
static int rank_class(const run *r) {
  return r->status != 0 || !isfinite(r->metric) ? 2 : r->stopped ? 1 : 0;
}

static int by_metric(const void *pa, const void *pb) {
  const run *a = pa, *b = pb;
  int ca = rank_class(a), cb = rank_class(b);
  if (ca != cb) return ca - cb;
  if (ca == 1 && a->epochs != b->epochs) return b->epochs - a->epochs;
  if (ca < 2 && a->metric != b->metric)
    return (g_max ? a->metric > b->metric : a->metric < b->metric) ? -1 : 1;
  return a->index - b->index;
}

/* A rung's trials (pointers) by the halving figure, failed ones last. */
static int by_rung(const void *pa, const void *pb) {
  const run *a = *(run *const *)pa, *b = *(run *const *)pb;
  bool fa = a->status == 0 && isfinite(a->rung_value),
       fb = b->status == 0 && isfinite(b->rung_value);
  if (fa != fb) return fa ? -1 : 1;
  if (fa && a->rung_value != b->rung_value)
    return (g_max ? a->rung_value > b->rung_value : a->rung_value < b->rung_value) ? -1 : 1;
  return a->index - b->index;
}

static void status_text(const run *r, char *st, size_t cap) {
  if (r->status == 0 && r->stopped)
    snprintf(st, cap, "stopped (rung %d)", r->stopped);
  else if (r->status == 0)
    snprintf(st, cap, "ok");
  else if (r->status > 128)
    snprintf(st, cap, "killed by signal %d", r->status - 128);
  else
    snprintf(st, cap, "failed (exit %d)", r->status);
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
    fprintf(f, ",%s,epochs,seconds,status\n", metric);
  else
    fprintf(f, "  %*s  %6s  %8s\n", mw, metric, "epochs", "seconds");
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
    status_text(r, st, sizeof st);
    bool note = r->status || r->stopped;
    if (csv)
      fprintf(f, ",%s,%d,%.3f,%s\n", m, r->epochs, r->seconds, st);
    else
      fprintf(f, "  %*s  %6d  %8.2f%s%s\n", mw, m, r->epochs, r->seconds, note ? "  " : "",
              note ? st : "");
  }
}

/* run_batch, under mpirun shared by the ranks (trial j of list on rank j % size);
 * then every rank has every trial's result. */
static void run_shared(const opts *o, const sn_spec *s, run **list, int n, const batch *b,
                       const char *metric, const sn_comm *comm) {
  if (!comm) {
    run_batch(o, s, list, n, b, metric);
    return;
  }
  enum { F = 5 }; /* status, seconds, metric, epochs, rung value */
  run **mine = malloc((size_t)n * sizeof *mine);
  double *v = calloc((size_t)n * F, sizeof *v); /* (n, F) */
  int k = 0;
  for (int j = 0; mine && j < n; j++)
    if (j % comm->size == comm->rank) mine[k++] = list[j];
  if (mine) run_batch(o, s, mine, k, b, metric);
  for (int j = 0; v && j < n; j++)
    if (j % comm->size == comm->rank) {
      const run *r = list[j];
      double row[F] = {r->status, r->seconds, r->metric, r->epochs, r->rung_value};
      memcpy(v + (size_t)j * F, row, sizeof row);
    }
  if (!v || comm->sum_f64(comm->ctx, v, (int64_t)n * F)) {
    fprintf(stderr, "specnet: error: the ranks could not share the trials' results\n");
    for (int j = 0; j < n; j++) list[j]->status = 127;
  } else {
    for (int j = 0; j < n; j++) {
      const double *row = v + (size_t)j * F;
      run *r = list[j];
      r->status = (int)row[0], r->seconds = row[1], r->metric = row[2];
      r->epochs = (int)row[3], r->rung_value = row[4];
    }
  }
  free(mine);
  free(v);
}

/* ---------------------------------------------------------------------------
 * Successive halving and the sweep's record */

/* Rungs of min_epochs, min_epochs * eta, ... up to train.epochs: each rung trains
 * the trials still going to its epochs (continuing their folders), then the best
 * 1/eta of them by the halving figure (at least one) go on. */
static void halving(const opts *o, const sn_spec *s, run *runs, int n, batch *b, const char *metric,
                    const sn_comm *comm) {
  const sn_sweep_spec *sw = sn_spec_sweep(s);
  const int epochs = sn_spec_epochs(s);
  run **alive = malloc((size_t)n * sizeof *alive);
  if (!alive) return;
  for (int i = 0; i < n; i++) alive[i] = &runs[i];
  int n_alive = n, rung = 1;
  b->epochs = sw->min_epochs < epochs ? sw->min_epochs : epochs;
  b->resume = false;
  g_max =
      !strcmp(sw->halving_metric, metric) ? sw->maximize : run_higher_better(sw->halving_metric);
  for (;; rung++) {
    run_shared(o, s, alive, n_alive, b, metric, comm);
    if (b->epochs >= epochs) break;
    qsort(alive, (size_t)n_alive, sizeof *alive, by_rung);
    int ok = 0;
    while (ok < n_alive && alive[ok]->status == 0 && isfinite(alive[ok]->rung_value)) ok++;
    int keep = ok / sw->eta > 0 ? ok / sw->eta : (ok > 0);
    for (int i = keep; i < ok; i++) alive[i]->stopped = rung;
    n_alive = keep;
    b->epochs = b->epochs * sw->eta < epochs ? b->epochs * sw->eta : epochs;
    b->resume = true;
    if (!n_alive) break;
    if (!o->quiet && (!comm || comm->rank == 0))
      printf("rung %d: the best %d of %d by %s go on to %d epochs\n", rung, keep, ok,
             sw->halving_metric, b->epochs);
  }
  free(alive);
}

/* A swept value as JSON: a number when it reads as one, else a string. */
static void json_value_text(FILE *f, const char *v) {
  char *end;
  double x = strtod(v, &end);
  if (*v && !*end && isfinite(x))
    fputs(v, f);
  else
    sn_json_string(f, v);
}

/* sweep.jsonl: one line per trial, in trial order. */
static void write_jsonl(const char *base, const sn_sweep_spec *sw, const run *runs, int n,
                        const char *metric) {
  char path[4200], st[40];
  snprintf(path, sizeof path, "%s/sweep.jsonl", base);
  FILE *f = fopen(path, "w");
  if (!f) return;
  for (int idx = 1; idx <= n; idx++)
    for (int i = 0; i < n; i++) {
      const run *r = &runs[i];
      if (r->index != idx) continue;
      fprintf(f, "{\"trial\": %d, \"settings\": {", r->index);
      for (int a = 0; a < sw->n_axes; a++) {
        fputs(a ? ", " : "", f);
        sn_json_string(f, sw->axes[a].key);
        fputs(": ", f);
        json_value_text(f, value_of(r, a));
      }
      fputs("}, \"metric\": ", f);
      sn_json_string(f, metric);
      char num[40] = "";
      for (int prec = 15; isfinite(r->metric) && prec <= 17; prec++) /* shortest exact */
        if (snprintf(num, sizeof num, "%.*g", prec, r->metric) > 0 &&
            strtod(num, NULL) == r->metric)
          break;
      if (isfinite(r->metric))
        fprintf(f, ", \"value\": %s", num);
      else
        fputs(", \"value\": null", f);
      status_text(r, st, sizeof st);
      fprintf(f, ", \"epochs\": %d, \"seconds\": %.3f, \"status\": ", r->epochs, r->seconds);
      sn_json_string(f, r->stopped && r->status == 0 ? "stopped" : st);
      if (r->stopped && r->status == 0) fprintf(f, ", \"rung\": %d", r->stopped);
      fputs("}\n", f);
    }
  fclose(f);
}

/* The best trial's resolved spec beside the trials, and the comparison page of
 * every trial that has metrics. runs are sorted best first. */
static void write_best_and_compare(const char *base, const run *runs, int n, bool quiet) {
  char from[4400], to[4200];
  if (rank_class(&runs[0]) == 0) {
    snprintf(from, sizeof from, "%s/spec.resolved.yaml", runs[0].dir);
    snprintf(to, sizeof to, "%s/best.resolved.yaml", base);
    char *text = run_slurp(from, NULL);
    /* without the sweep: section (written last), so that `specnet train` on the file
     * trains this trial again rather than running the whole sweep */
    char *sweep = text ? strstr(text, "\nsweep:\n") : NULL;
    if (sweep) sweep[1] = 0;
    FILE *f = text ? fopen(to, "w") : NULL;
    if (f) {
      fputs(text, f);
      fclose(f);
      if (!quiet) printf("best: run %d; its resolved spec: %s\n", runs[0].index, to);
    }
    free(text);
  }
  const char **dirs = malloc((size_t)n * sizeof *dirs);
  int k = 0;
  for (int i = 0; dirs && i < n; i++)
    if (runs[i].epochs > 0) dirs[k++] = runs[i].dir;
  snprintf(to, sizeof to, "%s/compare.html", base);
  if (k > 0 && !compare_write(dirs, k, to, NULL) && !quiet) printf("wrote %s\n", to);
  free(dirs);
}

/* The sweep's folder and one folder per trial, made by rank 0 (alone: this process);
 * under mpirun every rank gets rank 0's path. 0 or an exit code. */
static int make_folders(const opts *o, const sn_spec *s, run *runs, int n, const sn_comm *comm,
                        char *base, size_t cap) {
  bool lead = !comm || comm->rank == 0, failed = false;
  if (lead) {
    if (o->out) snprintf(base, cap, "%s", o->out);
    if (o->out ? sn_mkdirs(base) : new_run_dir(sn_spec_name(s), base, cap)) {
      fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", base,
              strerror(errno));
      failed = true;
    }
    for (int i = 0; !failed && i < n; i++) {
      snprintf(runs[i].dir, sizeof runs[i].dir, "%s/sweep-%d", base, runs[i].index);
      if (sn_mkdirs(runs[i].dir)) {
        fprintf(stderr, "specnet: error: cannot create %s: %s\n", runs[i].dir, strerror(errno));
        failed = true;
      }
    }
  }
  if (sn_comm_first_failed(comm, failed) != -1) return EXIT_SPEC;
  if (comm && comm->bcast(comm->ctx, base, (int64_t)cap, 0)) return EXIT_SPEC;
  base[cap - 1] = 0;
  for (int i = 0; i < n; i++)
    snprintf(runs[i].dir, sizeof runs[i].dir, "%s/sweep-%d", base, runs[i].index);
  return 0;
}

/* --jobs (default: one per core, or one per rank under mpirun) and each trial's share
 * of this host's cores as threads. */
static batch make_batch(const opts *o, int n, const sn_comm *comm) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN), local = 1;
  cores = cores > 0 ? cores : 1;
  const char *env = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); /* ranks on this host */
  if (!env) env = getenv("MPI_LOCALNRANKS");
  if (comm) local = env && atol(env) > 0 ? atol(env) : comm->size;
  batch b = {o->jobs > 0 ? o->jobs : comm ? 1 : (int)cores, 1, 0, false, n};
  if (b.jobs > n) b.jobs = n;
  long per = cores / ((long)b.jobs * local);
  b.threads = per > 1 ? (int)per : 1;
  return b;
}

/* The table, sweep.csv, sweep.jsonl, the best spec and compare.html (rank 0). */
static void report(const opts *o, const sn_spec *s, run *runs, int n, const char *base,
                   const char *metric, double t0) {
  const sn_sweep_spec *sw = sn_spec_sweep(s);
  printf("\nsweep %s: %d runs in %.1fs, sorted by %s (%s is better)\n", sn_spec_name(s), n, sn_now() - t0,
         metric, g_max ? "higher" : "lower");
  print_table(stdout, sw, runs, n, metric, false);
  char path[4200];
  snprintf(path, sizeof path, "%s/sweep.csv", base);
  FILE *f = fopen(path, "w");
  if (f) {
    print_table(f, sw, runs, n, metric, true);
    fclose(f);
    if (!o->quiet) printf("wrote %s\n", path);
  }
  write_jsonl(base, sw, runs, n, metric);
  write_best_and_compare(base, runs, n, o->quiet);
}

static int sweep(const opts *o, const sn_spec *s, run *runs, int n, const sn_comm *comm) {
  const sn_sweep_spec *sw = sn_spec_sweep(s);
  const bool lead = !comm || comm->rank == 0;
  char base[4096];
  int rc = make_folders(o, s, runs, n, comm, base, sizeof base);
  if (rc) return rc;
  /* the metric: the spec's, else val_loss with a validation set, else loss */
  sn_data_config dc;
  sn_spec_data_config(s, &dc);
  bool has_val = dc.validation.kind != SN_SRC_NONE || dc.validation_split > 0;
  const char *metric = sw->metric[0] ? sw->metric : has_val ? "val_loss" : "loss";
  bool maximize = sw->metric[0] ? sw->maximize : false;
  batch b = make_batch(o, n, comm);
  if (!o->quiet && lead)
    printf("sweep: %d runs of %s (%s%s), %d at a time%s, into %s/sweep-*\n", n, sn_spec_name(s),
           sw->kind == SN_SWEEP_GRID ? "grid" : "random", sw->halving ? ", successive halving" : "",
           b.jobs, comm ? " on each rank" : "", base);
  double t0 = sn_now();
  if (sw->halving && sw->min_epochs >= sn_spec_epochs(s) && !o->quiet && lead)
    printf("halving: min_epochs (%d) is not less than train.epochs (%d): no trial is stopped\n",
           sw->min_epochs, sn_spec_epochs(s));
  if (sw->halving) {
    halving(o, s, runs, n, &b, metric, comm);
  } else {
    run **all = malloc((size_t)n * sizeof *all);
    for (int i = 0; all && i < n; i++) all[i] = &runs[i];
    if (all) run_shared(o, s, all, n, &b, metric, comm);
    free(all);
  }
  g_max = maximize;
  qsort(runs, (size_t)n, sizeof *runs, by_metric);
  if (lead) report(o, s, runs, n, base, metric, t0);
  int failed = 0;
  for (int i = 0; i < n; i++) failed += runs[i].status != 0;
  if (failed && lead) fprintf(stderr, "specnet: error: %d of %d sweep runs failed\n", failed, n);
  return failed ? EXIT_SPEC : 0;
}

int cmd_sweep(const opts *o, const sn_spec *s) {
  const sn_sweep_spec *sw = sn_spec_sweep(s);
  if (sw->n_axes < 1 || sw->n_axes > 8) {
    fprintf(stderr, "%s: error: the sweep has %d keys; it must have 1 to 8\n", sn_spec_path(s), sw->n_axes);
    return EXIT_SPEC;
  }
  if (sw->halving && o->weights)
    return usage_error("a halving sweep continues its trials as --resume does, which takes no "
                       "--weights");
  if (o->n_sets + sw->n_axes > 64)
    return usage_error("too many --set options with the sweep's keys");
  run *runs = NULL;
  int n = 0, rc = make_runs(s, &runs, &n);
  if (rc) return rc;
  /* Under mpirun the ranks share the trials. Threads 1: this process starts no
   * thread pool, which its forked trials could not use. */
  const sn_comm *comm = dist_start(1, &rc);
  if (!rc) rc = sweep(o, s, runs, n, comm);
  dist_finish();
  free(runs);
  return rc;
}
