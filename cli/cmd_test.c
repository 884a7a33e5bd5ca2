/* `specnet test PATH...`: runs every spec with an `expect:` block and checks it.
 *   error: {contains: S}      the spec must be rejected with a message containing S
 *                             (for specs whose YAML cannot even be read, a comment
 *                             line `# expect-error: S` says the same); a spec that
 *                             passes the checker is then compiled and its data
 *                             loaded, so data errors (missing or corrupt files,
 *                             labels out of range) can be expected too
 *   gradcheck: {max_rel_error: F}   f64 gradients against finite differences
 *   SPLIT.METRIC: {min, max}  after training as the spec says: train.loss is the
 *                             last epoch's, validation.* and test.* the evaluation
 *                             after the last epoch
 * One line per spec, then "N passed, N failed" (", N skipped"). Exit 0 when none
 * failed, 3 otherwise.
 *
 * --jobs N runs up to N specs at once, each in a forked child that sends its
 * outcome back through a pipe (and its stderr through another, so diagnostics of
 * parallel specs do not interleave); lines are still printed in path order. A child
 * that crashes is a FAIL naming the signal. --junit FILE writes JUnit XML. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef enum { T_PASS, T_FAIL, T_SKIP } test_status;

typedef struct outcome {
  test_status status;
  char why[2048];
} outcome;

/* One spec's result as printed and as written to JUnit. */
typedef struct result {
  outcome o;
  double seconds;
  char *err_text; /* --jobs: the child's stderr, printed before its line; owned */
  bool done;
} result;

/* The expected error of a spec: expect.error.contains, or a comment line. */
static bool expected_error(const char *path, const sn_node *root, char *out, size_t len) {
  const sn_node *e = root ? sn_node_get(root, "expect") : NULL;
  const sn_node *er = e && e->kind == SN_NODE_MAP ? sn_node_get(e, "error") : NULL;
  const sn_node *c = er && er->kind == SN_NODE_MAP ? sn_node_get(er, "contains") : NULL;
  if (c && c->kind == SN_NODE_SCALAR) {
    snprintf(out, len, "%s", c->text);
    return true;
  }
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[2048];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char *p = strstr(line, "# expect-error:");
    if (!p) continue;
    p += strlen("# expect-error:");
    while (*p == ' ') p++;
    p[strcspn(p, "\r\n")] = 0;
    snprintf(out, len, "%s", p);
    found = true;
  }
  fclose(f);
  return found;
}

typedef struct final_record {
  sn_epoch_record last;
  bool any;
} final_record;

static void keep_last(const sn_epoch_record *rec, void *ctx) {
  final_record *f = ctx;
  f->last = *rec;
  f->any = true;
}

/* The figure an expectation names, from the last epoch. */
static bool figure(const sn_model *m, const final_record *f, const char *key, double *v) {
  const char *dot = strchr(key, '.');
  if (!dot) return false;
  size_t n = (size_t)(dot - key);
  const char *metric = dot + 1;
  const sn_eval_result *r = NULL;
  double loss;
  const double *metrics;
  if (!strncmp(key, "train", n) && n == 5) {
    loss = f->last.loss;
    metrics = f->last.metrics;
  } else {
    if (!strncmp(key, "validation", n) && n == 10 && f->last.has_val) r = &f->last.val;
    else if (!strncmp(key, "test", n) && n == 4 && f->last.has_test) r = &f->last.test;
    else return false;
    loss = r->loss;
    metrics = r->metrics;
  }
  if (!strcmp(metric, "loss")) {
    *v = loss;
    return true;
  }
  for (int k = 0; k < m->n_metrics; k++)
    if (!strcmp(metric, m->metric_names[k])) {
      *v = metrics[k];
      return true;
    }
  return false;
}

static void run_training(const opts *o, const char *path, const sn_spec *s, outcome *out) {
  opts so = *o;
  so.spec = path;
  so.quiet = true;
  session S;
  if (session_open(&S, &so, true)) {
    session_free(&S);
    out->status = T_FAIL;
    snprintf(out->why, sizeof out->why, "could not start training (see above)");
    return;
  }
  final_record fr = {0};
  sn_train_opts to;
  train_opts_from_spec(s, &to); /* epochs, batches, schedule, early stopping */
  to.quiet = !o->verbose;
  to.on_epoch = keep_last;
  to.on_epoch_ctx = &fr;
  sn_error err = {0};
  if (sn_train(S.m, &S.ds.train, S.ds.has_val ? &S.ds.val : NULL, S.ds.has_test ? &S.ds.test : NULL,
               &to, &err)) {
    out->status = T_FAIL;
    snprintf(out->why, sizeof out->why, "training failed: %s", err.msg);
    session_free(&S);
    return;
  }
  size_t n = 0;
  const sn_expect_spec *expect;
  int n_expect = sn_spec_expectations(s, &expect);
  for (int i = 0; i < n_expect && out->status == T_PASS; i++) {
    const sn_expect_spec *e = &expect[i];
    if (!strcmp(e->key, "gradcheck") || !strcmp(e->key, "error")) continue;
    double v;
    if (!fr.any || !figure(S.m, &fr, e->key, &v)) {
      out->status = T_FAIL;
      snprintf(out->why, sizeof out->why, "%s: no such figure after training", e->key);
    } else if ((e->has_min && !(v >= e->min)) || (e->has_max && !(v <= e->max))) {
      out->status = T_FAIL;
      snprintf(out->why, sizeof out->why, "%s = %.4f, expected %s %.4f", e->key, v,
               e->has_min && !(v >= e->min) ? ">=" : "<=", e->has_min && !(v >= e->min) ? e->min : e->max);
    } else {
      n += (size_t)snprintf(out->why + n, n < sizeof out->why ? sizeof out->why - n : 0, "%s%s %.4f",
                            n ? ", " : "", e->key, v);
    }
  }
  session_free(&S);
}

/* What a checked spec's data says: opens a session (compile, load every set,
 * check samples and labels against the model) with stderr captured, and returns
 * the diagnostics printed, "" when there were none. Owned by the caller. */
static char *data_errors(const opts *o, const char *path) {
  opts so = *o;
  so.spec = path;
  so.quiet = true;
  so.weights = NULL;
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = tmp ? dup(STDERR_FILENO) : -1;
  if (saved < 0 || dup2(fileno(tmp), STDERR_FILENO) < 0) {
    if (saved >= 0) close(saved);
    if (tmp) fclose(tmp);
    return strdup("cannot capture the diagnostics of loading the data");
  }
  session S;
  session_open(&S, &so, true);
  session_free(&S);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  long len = fseek(tmp, 0, SEEK_END) == 0 ? ftell(tmp) : -1;
  char *text = malloc(len > 0 ? (size_t)len + 1 : 1);
  if (!text) abort();
  size_t got = 0;
  if (len > 0) {
    rewind(tmp);
    got = fread(text, 1, (size_t)len, tmp);
  }
  text[got] = 0;
  fclose(tmp);
  return text;
}

/* The first error line of text (else its first line), for a one-line reason. */
static void first_line(char *dst, size_t cap, const char *text) {
  const char *e = strstr(text, ": error: ");
  if (e)
    while (e > text && e[-1] != '\n') e--;
  snprintf(dst, cap, "%s", e ? e : text);
  dst[strcspn(dst, "\n")] = 0;
}

static outcome run_spec(const opts *o, const char *path) {
  outcome out = {T_PASS, ""};
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_file(path, &d);
  char want[400];
  bool wants_error = expected_error(path, root, want, sizeof want);
  sn_node_free(root);
  sn_spec *s = NULL;
  const sn_expect_spec *expect = NULL;
  if (!d.errors) {
    sn_diag_free(&d);
    d = (sn_diag){0};
    s = sn_spec_load(path, o->sets, o->n_sets, &d);
  }
  /* shape errors appear only when the graph is built */
  if (s && !d.errors) sn_check_graph(s, &d);
  char *text = sn_diag_text(&d);
  if (!text) abort(); /* out of memory */
  if (wants_error && !d.errors) {
    /* data errors appear only when the data is loaded */
    free(text);
    text = data_errors(o, path);
  }
  if (o->verbose && text[0]) fputs(text, stderr);
  if (wants_error) {
    if (!d.errors && !strstr(text, "error: ")) {
      out.status = T_FAIL;
      snprintf(out.why, sizeof out.why, "spec was accepted; expected an error containing \"%s\"", want);
    } else if (!strstr(text, want)) {
      out.status = T_FAIL;
      char first[600];
      first_line(first, sizeof first, text);
      snprintf(out.why, sizeof out.why, "error does not contain \"%s\": %s", want, first);
    } else {
      snprintf(out.why, sizeof out.why, "rejected as expected");
    }
  } else if (d.errors) {
    out.status = T_FAIL;
    fputs(text, stderr);
    snprintf(out.why, sizeof out.why, "spec has errors");
  } else if (sn_spec_expectations(s, &expect) == 0) {
    out.status = T_SKIP;
    snprintf(out.why, sizeof out.why, "no expect: block");
  } else {
    int n_expect = sn_spec_expectations(s, &expect);
    for (int i = 0; i < n_expect && out.status == T_PASS; i++) {
      const sn_expect_spec *e = &expect[i];
      if (strcmp(e->key, "gradcheck")) continue;
      sn_gradcheck_result r;
      sn_diag gd = {0};
      if (sn_gradcheck(s, 0, e->max_rel_error, &r, &gd)) {
        print_diag(&gd);
        out.status = T_FAIL;
        snprintf(out.why, sizeof out.why, "gradcheck could not run");
      } else if (!(r.max_rel_error <= e->max_rel_error)) {
        out.status = T_FAIL;
        snprintf(out.why, sizeof out.why,
                 "gradcheck: max relative error %.3g at %s (analytic %.9g, numeric %.9g) > %.3g",
                 r.max_rel_error, r.worst, r.worst_analytic, r.worst_numeric, e->max_rel_error);
      } else {
        snprintf(out.why, sizeof out.why, "gradcheck max relative error %.3g over %lld parameters",
                 r.max_rel_error, (long long)r.checked);
      }
      sn_diag_free(&gd);
    }
    bool metrics = false;
    for (int i = 0; i < n_expect; i++)
      metrics |= strcmp(expect[i].key, "gradcheck") && strcmp(expect[i].key, "error");
    if (metrics && out.status == T_PASS) {
      outcome t = {T_PASS, ""};
      run_training(o, path, s, &t);
      if (t.status != T_PASS || !out.why[0]) out = t;
      else {
        size_t n = strlen(out.why);
        snprintf(out.why + n, sizeof out.why - n, "; %s", t.why);
      }
    }
  }
  free(text);
  sn_spec_free(s);
  sn_diag_free(&d);
  return out;
}

/* A run folder (it holds metrics.jsonl) or a sweep's (sweep.jsonl): its
 * spec.resolved.yaml (best.resolved.yaml) is a record of a run, not a test, so a
 * search does not go in. */
static bool is_run_folder(const char *dir) {
  char p[4200], q[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
  snprintf(q, sizeof q, "%s/sweep.jsonl", dir);
  return stat(p, &st) == 0 || stat(q, &st) == 0;
}

/* Collects *.yaml / *.yml under a path (a file is taken as it is), sorted; folders
 * found on the way that are run folders are skipped (top: path was given). */
static void collect(const char *path, char ***list, int *n, int *cap, bool top) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (!top && is_run_folder(path)) return;
    struct dirent **ents;
    int k = scandir(path, &ents, NULL, alphasort);
    for (int i = 0; i < k; i++) {
      const char *nm = ents[i]->d_name;
      if (nm[0] != '.') {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, nm);
        struct stat s2;
        size_t L = strlen(nm);
        bool yaml = (L > 5 && !strcmp(nm + L - 5, ".yaml")) || (L > 4 && !strcmp(nm + L - 4, ".yml"));
        if (stat(sub, &s2) == 0 && (S_ISDIR(s2.st_mode) || yaml)) collect(sub, list, n, cap, false);
      }
      free(ents[i]);
    }
    free(ents);
    return;
  }
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *list = realloc(*list, sizeof(char *) * (size_t)*cap);
    if (!*list) abort();
  }
  (*list)[(*n)++] = strdup(path);
}

/* ---------------------------------------------------------------------------
 * Running specs in parallel: one forked child per spec, at most `jobs` at once. */

/* What a child sends back through its result pipe. */
typedef struct wire {
  outcome o;
  double seconds;
} wire;

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static void buf_add(buf *b, const char *data, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) abort();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = 0;
}

typedef struct child {
  pid_t pid;
  int spec;       /* index into the list */
  int fd_result;  /* read ends, -1 once at end of file */
  int fd_err;
  buf result, err;
  double t0;
} child;

static void write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    c += k;
    n -= (size_t)k;
  }
}

/* In the child: runs one spec, sends the outcome, never returns. */
static void child_main(const opts *o, const char *path, int fd_result, int fd_err) {
  /* Parallel specs must not oversubscribe the cores; --threads still wins. */
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("OMP_NUM_THREADS", "1", 1);
  sn_set_threads(o->threads ? o->threads : 1);
  dup2(fd_err, STDERR_FILENO);
  dup2(fd_err, STDOUT_FILENO); /* training chatter (--verbose) goes with the diagnostics */
  close(fd_err);
  double t0 = sn_now();
  wire w = {.o = run_spec(o, path)};
  w.seconds = sn_now() - t0;
  fflush(stdout);
  fflush(stderr);
  write_all(fd_result, &w, sizeof w);
  close(fd_result);
  _exit(0);
}

static int start_child(const opts *o, char **list, int spec, child *c) {
  int pr[2], pe[2];
  if (pipe(pr)) return -1;
  if (pipe(pe)) {
    close(pr[0]);
    close(pr[1]);
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(pr[0]);
    close(pr[1]);
    close(pe[0]);
    close(pe[1]);
    return -1;
  }
  if (pid == 0) {
    close(pr[0]);
    close(pe[0]);
    child_main(o, list[spec], pr[1], pe[1]);
  }
  close(pr[1]);
  close(pe[1]);
  *c = (child){.pid = pid, .spec = spec, .fd_result = pr[0], .fd_err = pe[0], .t0 = sn_now()};
  return 0;
}

/* The child has closed both pipes: reap it and turn what it sent into a result. */
static void finish_child(child *c, result *r) {
  int st = 0;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  r->seconds = sn_now() - c->t0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && c->result.n == sizeof(wire)) {
    wire w;
    memcpy(&w, c->result.p, sizeof w);
    w.o.why[sizeof w.o.why - 1] = 0;
    r->o = w.o;
    r->seconds = w.seconds;
  } else {
    r->o.status = T_FAIL;
    if (WIFSIGNALED(st))
      snprintf(r->o.why, sizeof r->o.why, "crashed: signal %d (%s)", WTERMSIG(st),
               strsignal(WTERMSIG(st)));
    else
      snprintf(r->o.why, sizeof r->o.why, "the test process exited with status %d without a result",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  }
  r->err_text = c->err.p;
  free(c->result.p);
  r->done = true;
}

/* Waits for output, drains readable pipes; returns the number of children that
 * finished (both pipes at end of file), whose results are then in res. */
static int poll_children(child *cs, int running, result *res) {
  struct pollfd pf[2 * 1024];
  int map[2 * 1024], np = 0;
  for (int i = 0; i < running; i++) {
    if (cs[i].fd_result >= 0) {
      pf[np] = (struct pollfd){.fd = cs[i].fd_result, .events = POLLIN};
      map[np++] = 2 * i;
    }
    if (cs[i].fd_err >= 0) {
      pf[np] = (struct pollfd){.fd = cs[i].fd_err, .events = POLLIN};
      map[np++] = 2 * i + 1;
    }
  }
  if (np > 0 && poll(pf, (nfds_t)np, -1) < 0) return 0; /* EINTR: try again */
  for (int k = 0; k < np; k++) {
    if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    child *c = &cs[map[k] / 2];
    int *fd = map[k] % 2 ? &c->fd_err : &c->fd_result;
    buf *b = map[k] % 2 ? &c->err : &c->result;
    char tmp[65536];
    ssize_t got = read(*fd, tmp, sizeof tmp);
    if (got > 0) {
      buf_add(b, tmp, (size_t)got);
    } else if (got == 0 || errno != EINTR) {
      close(*fd);
      *fd = -1;
    }
  }
  int finished = 0;
  for (int i = 0; i < running; i++)
    if (cs[i].fd_result < 0 && cs[i].fd_err < 0 && cs[i].pid > 0) {
      finish_child(&cs[i], &res[cs[i].spec]);
      cs[i].pid = 0;
      finished++;
    }
  return finished;
}

/* ---------------------------------------------------------------------------
 * Reporting */

static const char *const TAG[] = {"PASS", "FAIL", "SKIP"};

static void print_result(const char *path, result *r) {
  if (r->err_text && r->err_text[0]) {
    fputs(r->err_text, stderr);
    fflush(stderr);
  }
  printf("%s %s (%.2fs)%s%s\n", TAG[r->o.status], path, r->seconds, r->o.why[0] ? ": " : "", r->o.why);
  fflush(stdout);
}

/* XML text: escapes markup, drops control characters XML 1.0 cannot hold and
 * replaces bytes that are not UTF-8 (a hostile spec's text may end up here). */
static void xml_text(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = len > 0 && !(len == 2 && c < 0xC2);
    for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
    if (!ok) {
      fputc('?', f);
      p++;
      continue;
    }
    if (len > 1) {
      fwrite(p, 1, (size_t)len, f);
      p += len;
      continue;
    }
    switch (c) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    case '\n': fputs("&#10;", f); break;
    case '\t': fputs("&#9;", f); break;
    default: fputc(c < 0x20 || c == 0x7F ? '?' : c, f);
    }
    p++;
  }
}

/* classname: the spec's folder with '/' as '.' ("tests.specs.errors"). */
static void xml_classname(FILE *f, const char *path) {
  while (!strncmp(path, "./", 2)) path += 2;
  while (*path == '/') path++;
  const char *slash = strrchr(path, '/');
  if (!slash) {
    fputs(".", f);
    return;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  for (char *p = dir; *p; p++)
    if (*p == '/') *p = '.';
  xml_text(f, dir);
}

static int write_junit(FILE *f, char **list, const result *res, int n, int failed, int skipped,
                       double seconds) {
  char stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
  fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
  fprintf(f, "<testsuites tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%.3f\">\n", n,
          failed, skipped, seconds);
  fprintf(f,
          "  <testsuite name=\"specnet\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" "
          "time=\"%.3f\" timestamp=\"%s\">\n",
          n, failed, skipped, seconds, stamp);
  for (int i = 0; i < n; i++) {
    const result *r = &res[i];
    const char *base = strrchr(list[i], '/');
    base = base ? base + 1 : list[i];
    fputs("    <testcase classname=\"", f);
    xml_classname(f, list[i]);
    fputs("\" name=\"", f);
    xml_text(f, base);
    fputs("\" file=\"", f);
    xml_text(f, list[i]);
    fprintf(f, "\" time=\"%.3f\"", r->seconds);
    if (r->o.status == T_PASS) {
      fputs(">\n      <system-out>", f);
      xml_text(f, r->o.why);
      fputs("</system-out>\n", f);
    } else {
      fprintf(f, ">\n      <%s message=\"", r->o.status == T_FAIL ? "failure" : "skipped");
      xml_text(f, r->o.why);
      fputs(r->o.status == T_FAIL ? "\" type=\"FAIL\">" : "\"/>\n", f);
      if (r->o.status == T_FAIL) {
        xml_text(f, r->o.why);
        fputs("</failure>\n", f);
      }
    }
    if (r->err_text && r->err_text[0]) {
      fputs("      <system-err>", f);
      xml_text(f, r->err_text);
      fputs("</system-err>\n", f);
    }
    fputs("    </testcase>\n", f);
  }
  fputs("  </testsuite>\n</testsuites>\n", f);
  return fflush(f) || ferror(f) ? -1 : 0;
}

int cmd_test(const opts *o) {
  char **list = NULL;
  int n = 0, cap = 0;
  for (int i = 0; i < o->n_paths; i++) {
    struct stat st;
    if (stat(o->paths[i], &st) != 0) {
      fprintf(stderr, "specnet: error: %s: no such file or folder\n", o->paths[i]);
      for (int j = 0; j < n; j++) free(list[j]);
      free(list);
      return EXIT_USAGE;
    }
    collect(o->paths[i], &list, &n, &cap, true);
  }
  FILE *junit = NULL;
  if (o->junit && !(junit = fopen(o->junit, "w"))) {
    fprintf(stderr, "specnet: error: cannot write --junit file %s: %s\n", o->junit, strerror(errno));
    for (int j = 0; j < n; j++) free(list[j]);
    free(list);
    return EXIT_USAGE;
  }
  result *res = calloc(n > 0 ? (size_t)n : 1, sizeof *res);
  if (!res) abort();
  int passed = 0, failed = 0, skipped = 0;
  double t_start = sn_now();
  int jobs = o->jobs > 1 ? o->jobs : 1;
  if (jobs > n) jobs = n;

  if (jobs <= 1) {
    for (int i = 0; i < n; i++) {
      double t0 = sn_now();
      res[i].o = run_spec(o, list[i]);
      res[i].seconds = sn_now() - t0;
      res[i].done = true;
      print_result(list[i], &res[i]);
    }
  } else {
    child *cs = calloc((size_t)jobs, sizeof *cs);
    if (!cs) abort();
    int running = 0, next = 0, printed = 0;
    while (printed < n) {
      while (running < jobs && next < n) {
        if (start_child(o, list, next, &cs[running])) {
          res[next].o.status = T_FAIL;
          snprintf(res[next].o.why, sizeof res[next].o.why, "could not start a test process: %s",
                   strerror(errno));
          res[next].done = true;
        } else {
          running++;
        }
        next++;
      }
      if (running > 0 && poll_children(cs, running, res) > 0) {
        int k = 0; /* keep the running children packed at the front */
        for (int i = 0; i < running; i++)
          if (cs[i].pid > 0) cs[k++] = cs[i];
        running = k;
      }
      for (; printed < n && res[printed].done; printed++) print_result(list[printed], &res[printed]);
    }
    free(cs);
  }

  for (int i = 0; i < n; i++) {
    passed += res[i].o.status == T_PASS;
    failed += res[i].o.status == T_FAIL;
    skipped += res[i].o.status == T_SKIP;
  }
  int rc = failed ? EXIT_EXPECT : 0;
  if (junit) {
    if (write_junit(junit, list, res, n, failed, skipped, sn_now() - t_start) | fclose(junit)) {
      fprintf(stderr, "specnet: error: writing --junit file %s failed\n", o->junit);
      rc = rc ? rc : EXIT_SPEC;
    }
  }
  for (int i = 0; i < n; i++) {
    free(res[i].err_text);
    free(list[i]);
  }
  free(res);
  free(list);
  if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else printf("%d passed, %d failed\n", passed, failed);
  return rc;
}
