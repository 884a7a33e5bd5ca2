/* `specnet test PATH...`: runs every spec with an `expect:` block and checks it.
 *   error: {contains: S}      the spec must be rejected with a message containing S
 *                             (for specs whose YAML cannot even be read, a comment
 *                             line `# expect-error: S` says the same)
 *   gradcheck: {max_rel_error: F}   f64 gradients against finite differences
 *   SPLIT.METRIC: {min, max}  after training as the spec says: train.loss is the
 *                             last epoch's, validation.* and test.* the evaluation
 *                             after the last epoch
 * One line per spec, then "N passed, N failed" (", N skipped"). Exit 0 when none
 * failed, 3 otherwise. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct outcome {
  enum { T_PASS, T_FAIL, T_SKIP } status;
  char why[2048];
} outcome;

static char *diag_text(const sn_diag *d) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) abort();
  sn_diag_print(d, f);
  fclose(f);
  return buf;
}

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
  sn_train_opts to = {.epochs = s->epochs,
                      .batch_size = s->batch_size,
                      .shuffle = s->shuffle,
                      .seed = s->seed,
                      .learning_rate = s->learning_rate,
                      .quiet = !o->verbose,
                      .on_epoch = keep_last,
                      .on_epoch_ctx = &fr};
  sn_error err = {0};
  if (sn_train(S.m, &S.ds.train, S.ds.has_val ? &S.ds.val : NULL, S.ds.has_test ? &S.ds.test : NULL,
               &to, &err)) {
    out->status = T_FAIL;
    snprintf(out->why, sizeof out->why, "training failed: %s", err.msg);
    session_free(&S);
    return;
  }
  size_t n = 0;
  for (int i = 0; i < s->n_expect && out->status == T_PASS; i++) {
    const sn_expect_spec *e = &s->expect[i];
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

static outcome run_spec(const opts *o, const char *path) {
  outcome out = {T_PASS, ""};
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_file(path, &d);
  char want[400];
  bool wants_error = expected_error(path, root, want, sizeof want);
  sn_node_free(root);
  sn_spec *s = NULL;
  if (!d.errors) {
    sn_diag_free(&d);
    d = (sn_diag){0};
    s = sn_spec_load(path, o->sets, o->n_sets, &d);
  }
  /* shape errors appear only when the graph is built */
  if (s && !d.errors) sn_check_graph(s, &d);
  char *text = diag_text(&d);
  if (o->verbose && text[0]) fputs(text, stderr);
  if (wants_error) {
    if (!d.errors) {
      out.status = T_FAIL;
      snprintf(out.why, sizeof out.why, "spec was accepted; expected an error containing \"%s\"", want);
    } else if (!strstr(text, want)) {
      out.status = T_FAIL;
      char first[600];
      snprintf(first, sizeof first, "%s", text);
      first[strcspn(first, "\n")] = 0;
      snprintf(out.why, sizeof out.why, "error does not contain \"%s\": %s", want, first);
    } else {
      snprintf(out.why, sizeof out.why, "rejected as expected");
    }
  } else if (d.errors) {
    out.status = T_FAIL;
    fputs(text, stderr);
    snprintf(out.why, sizeof out.why, "spec has errors");
  } else if (s->n_expect == 0) {
    out.status = T_SKIP;
    snprintf(out.why, sizeof out.why, "no expect: block");
  } else {
    for (int i = 0; i < s->n_expect && out.status == T_PASS; i++) {
      const sn_expect_spec *e = &s->expect[i];
      if (strcmp(e->key, "gradcheck")) continue;
      sn_gradcheck_result r;
      sn_diag gd = {0};
      if (sn_gradcheck(s, 0, &r, &gd)) {
        sn_diag_print(&gd, stderr);
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
    for (int i = 0; i < s->n_expect; i++)
      metrics |= strcmp(s->expect[i].key, "gradcheck") && strcmp(s->expect[i].key, "error");
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

/* Collects *.yaml / *.yml under a path (a file is taken as it is), sorted. */
static void collect(const char *path, char ***list, int *n, int *cap) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
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
        if (stat(sub, &s2) == 0 && (S_ISDIR(s2.st_mode) || yaml)) collect(sub, list, n, cap);
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
    collect(o->paths[i], &list, &n, &cap);
  }
  int passed = 0, failed = 0, skipped = 0;
  for (int i = 0; i < n; i++) {
    double t0 = sn_now();
    outcome r = run_spec(o, list[i]);
    double dt = sn_now() - t0;
    static const char *tag[] = {"PASS", "FAIL", "SKIP"};
    printf("%s %s (%.2fs)%s%s\n", tag[r.status], list[i], dt, r.why[0] ? ": " : "", r.why);
    fflush(stdout);
    passed += r.status == T_PASS;
    failed += r.status == T_FAIL;
    skipped += r.status == T_SKIP;
    free(list[i]);
  }
  free(list);
  if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else printf("%d passed, %d failed\n", passed, failed);
  return failed ? EXIT_EXPECT : 0;
}
