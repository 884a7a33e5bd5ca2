/* `specnet compare RUN_DIR... [-o FILE]`: runs side by side (docs/cli.md#compare).
 * A table of the runs: how their resolved specs differ (key = value), each figure's
 * final and best value, the training time; printed as text, and with -o written as
 * an HTML page that adds the curves of all runs overlaid. Figures only some runs
 * have are named, not compared. A sweep writes its trials' page with this too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "html.h"
#include "run_record.h"

/* ---------------------------------------------------------------------------
 * Spec differences: each resolved spec flattened to dotted keys and flow values */

typedef struct flat {
  int n;
  char **key, **val;
} flat;

static void flat_add(flat *fl, const char *key, const sn_node *v) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return;
  sn_node_write_flow(v, f);
  fclose(f);
  char **k = realloc(fl->key, (size_t)(fl->n + 1) * sizeof *k);
  if (k) fl->key = k;
  char **w = realloc(fl->val, (size_t)(fl->n + 1) * sizeof *w);
  if (w) fl->val = w;
  if (!k || !w || !(fl->key[fl->n] = strdup(key))) {
    free(text);
    return;
  }
  fl->val[fl->n++] = text;
}

static void flatten(flat *fl, const sn_node *n, char *path, size_t len, size_t cap) {
  if (!n) return;
  if (n->kind == SN_NODE_SCALAR || n->n == 0) {
    flat_add(fl, path, n);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    if (n->kind == SN_NODE_MAP)
      snprintf(path + len, cap - len, "%s%s", len ? "." : "", n->keys[i]->text);
    else
      snprintf(path + len, cap - len, "%s%d", len ? "." : "", i);
    flatten(fl, n->items[i], path, strlen(path), cap);
  }
  path[len] = 0;
}

static const char *flat_get(const flat *fl, const char *key) {
  for (int i = 0; i < fl->n; i++)
    if (!strcmp(fl->key[i], key)) return fl->val[i];
  return NULL;
}

static void flat_free(flat *fl) {
  for (int i = 0; i < fl->n; i++) free(fl->key[i]), free(fl->val[i]);
  free(fl->key);
  free(fl->val);
}

/* The keys (of any run) whose values are not the same in all runs; name excluded. */
static int differing(const flat *fl, int n, const char **keys, int cap) {
  int k = 0;
  for (int r = 0; r < n; r++)
    for (int i = 0; i < fl[r].n && k < cap; i++) {
      const char *key = fl[r].key[i];
      bool seen = !strcmp(key, "name");
      for (int j = 0; j < k && !seen; j++) seen = !strcmp(keys[j], key);
      for (int q = 0; q < n && !seen; q++) {
        const char *a = flat_get(&fl[q], key), *b = fl[r].val[i];
        if (!a || strcmp(a, b)) {
          keys[k++] = key;
          break;
        }
      }
    }
  return k;
}

/* ---------------------------------------------------------------------------
 * Figures */

static bool is_figure(const char *k) {
  static const char *const NOT[] = {
      "epoch", "lr", "seconds", "eval_seconds", "samples_per_second", "data_wait_seconds"};
  for (size_t i = 0; i < sizeof NOT / sizeof *NOT; i++)
    if (!strcmp(k, NOT[i])) return false;
  return true;
}

static double best_of(const run_record *r, const char *key) {
  double b = NAN;
  bool up = run_higher_better(key);
  for (int i = 0; i < r->n_rows; i++) {
    double v = run_at(r, i, key);
    if (isfinite(v) && (!isfinite(b) || (up ? v > b : v < b))) b = v;
  }
  return b;
}

static double train_seconds(const run_record *r) {
  double t = 0;
  for (int i = 0; i < r->n_rows; i++) {
    double s = run_at(r, i, "seconds"), e = run_at(r, i, "eval_seconds");
    t += (isfinite(s) ? s : 0) + (isfinite(e) ? e : 0);
  }
  return t;
}

typedef struct cmp {
  run_record *r;
  int n;
  const char **label; /* per run: the folder's name, or its path as given when two
                       * runs' folders have the same name */
  flat *fl;
  const char *diff[64];
  int n_diff;
  const char *fig[64]; /* figures every run has */
  int n_fig;
} cmp;

/* The figures that all runs have; the others are named on err (when not NULL). */
static void common_figures(cmp *c, FILE *err) {
  for (int q = 0; q < c->n; q++)
    for (int k = 0; k < c->r[q].n_cols; k++) {
      const char *key = c->r[q].cols[k];
      if (!is_figure(key)) continue;
      bool all = true, first = true;
      for (int p = 0; p < c->n; p++) all &= run_col(&c->r[p], key) >= 0;
      for (int p = 0; p < q; p++) first &= run_col(&c->r[p], key) < 0;
      if (!first) continue;
      if (all && c->n_fig < 64) {
        c->fig[c->n_fig++] = key;
        continue;
      }
      if (!err) continue;
      fprintf(err, "note: %s is not compared: only", key);
      for (int p = 0; p < c->n; p++)
        if (run_col(&c->r[p], key) >= 0) fprintf(err, " %s", c->label[p]);
      fprintf(err, " %s it\n", c->n > 2 ? "have" : "has");
    }
}

/* ---------------------------------------------------------------------------
 * Text */

/* The figures as a table, then each differing key with every run's value. */
static void text_table(const cmp *c, FILE *f) {
  int w = 3;
  for (int q = 0; q < c->n; q++) w = (int)fmax(w, (double)strlen(c->label[q]));
  fprintf(f, "%-*s  %6s", w, "run", "epochs");
  for (int k = 0; k < c->n_fig; k++) {
    int fw = (int)fmax(12, (double)strlen(c->fig[k]));
    fprintf(f, "  %*s  %*s", fw, c->fig[k], fw, "best");
  }
  fprintf(f, "  %9s\n", "seconds");
  for (int q = 0; q < c->n; q++) {
    const run_record *r = &c->r[q];
    fprintf(f, "%-*s  %6d", w, c->label[q], r->n_rows);
    for (int k = 0; k < c->n_fig; k++) {
      int fw = (int)fmax(12, (double)strlen(c->fig[k]));
      fprintf(f, "  %*.6g  %*.6g", fw, run_at(r, r->n_rows - 1, c->fig[k]), fw,
              best_of(r, c->fig[k]));
    }
    fprintf(f, "  %9.2f\n", train_seconds(r));
  }
  if (c->n_diff) fprintf(f, "\nspec differences:\n");
  for (int d = 0; d < c->n_diff; d++) {
    fprintf(f, "  %s:", c->diff[d]);
    for (int q = 0; q < c->n; q++) {
      const char *v = flat_get(&c->fl[q], c->diff[d]);
      fprintf(f, "%s %s = %s", q ? "," : "", c->label[q], v ? v : "(not set)");
    }
    fputc('\n', f);
  }
}

/* ---------------------------------------------------------------------------
 * HTML */

static void html_table(const cmp *c, FILE *f) {
  fputs("<table id=\"runs\">\n<tr><th class=\"l\">run</th><th>epochs</th>", f);
  for (int k = 0; k < c->n_fig; k++) {
    fputs("<th>final ", f);
    html_text(f, c->fig[k]);
    fputs("</th><th>best ", f);
    html_text(f, c->fig[k]);
    fputs("</th>", f);
  }
  fputs("<th>seconds</th><th class=\"l\">spec differences</th></tr>\n", f);
  for (int q = 0; q < c->n; q++) {
    const run_record *r = &c->r[q];
    fputs("<tr data-run=\"", f);
    html_text(f, c->label[q]);
    fputs("\"><td class=\"l\">", f);
    html_text(f, c->label[q]);
    fprintf(f, "</td><td>%d</td>", r->n_rows);
    for (int k = 0; k < c->n_fig; k++) {
      double last = run_at(r, r->n_rows - 1, c->fig[k]), best = best_of(r, c->fig[k]);
      fprintf(f, "<td data-final=\"%.17g\">", last);
      html_num(f, last, 5);
      fprintf(f, "</td><td data-best=\"%.17g\">", best);
      html_num(f, best, 5);
      fputs("</td>", f);
    }
    fprintf(f, "<td>%.2f</td><td class=\"l\">", train_seconds(r));
    for (int d = 0; d < c->n_diff; d++) {
      const char *v = flat_get(&c->fl[q], c->diff[d]);
      fputs(d ? "<br>" : "", f);
      html_text(f, c->diff[d]);
      fputs(" = ", f);
      html_text(f, v ? v : "(not set)");
    }
    fputs("</td></tr>\n", f);
  }
  fputs("</table>\n", f);
}

static void overlaid(const cmp *c, FILE *f) {
  fputs("<h2>Curves</h2>\n<div class=\"charts\">\n", f);
  chart_series *s = calloc((size_t)c->n, sizeof *s);
  double **x = calloc((size_t)c->n, sizeof *x), **y = calloc((size_t)c->n, sizeof *y);
  for (int k = 0; s && x && y && k < c->n_fig; k++) {
    for (int q = 0; q < c->n; q++) {
      const run_record *r = &c->r[q];
      x[q] = malloc((size_t)r->n_rows * sizeof **x);
      y[q] = malloc((size_t)r->n_rows * sizeof **y);
      for (int i = 0; x[q] && y[q] && i < r->n_rows; i++)
        x[q][i] = run_at(r, i, "epoch"), y[q][i] = run_at(r, i, c->fig[k]);
      s[q] = (chart_series){
          c->label[q], chart_color(q), q >= 10, x[q] && y[q] ? r->n_rows : 0, x[q], y[q]};
    }
    svg_line_chart(f, c->fig[k], "epoch", s, c->n, false);
    for (int q = 0; q < c->n; q++) free(x[q]), free(y[q]);
  }
  free(s);
  free(x);
  free(y);
  fputs("</div>\n", f);
}

static int write_html(const cmp *c, const char *out) {
  FILE *f = fopen(out, "w");
  if (!f) {
    fprintf(stderr, "specnet: error: cannot write %s\n", out);
    return EXIT_SPEC;
  }
  html_begin(f, "specnet: comparison of runs");
  html_table(c, f);
  overlaid(c, f);
  html_end(f);
  if (fclose(f)) {
    fprintf(stderr, "specnet: error: cannot write %s\n", out);
    return EXIT_SPEC;
  }
  return 0;
}

/* Short names for the runs: each folder's last part (runs/a/ -> a) when those
 * differ, else the paths as given. Point into dirs. */
static void labels(const char *const *dirs, int n, const char **label) {
  bool unique = true;
  for (int q = 0; q < n; q++) {
    const char *p = dirs[q], *end = p + strlen(p);
    while (end > p + 1 && end[-1] == '/') end--;
    const char *base = end;
    while (base > p && base[-1] != '/') base--;
    label[q] = *end ? dirs[q] : base; /* a trailing slash: keep the path */
    for (int j = 0; j < q && unique; j++) unique = strcmp(label[j], label[q]) != 0;
  }
  for (int q = 0; q < n && !unique; q++) label[q] = dirs[q];
}

int compare_write(const char *const *dirs, int n, const char *out, FILE *text) {
  cmp c = {calloc((size_t)n, sizeof *c.r),
           n,
           calloc((size_t)n, sizeof *c.label),
           calloc((size_t)n, sizeof *c.fl),
           {0},
           0,
           {0},
           0};
  int rc = c.r && c.fl && c.label ? 0 : EXIT_SPEC;
  if (!rc) labels(dirs, n, c.label);
  char msg[4400];
  for (int q = 0; !rc && q < n; q++)
    if (run_read(dirs[q], &c.r[q], msg, sizeof msg)) {
      fprintf(stderr, "specnet: error: %s\n", msg);
      rc = EXIT_SPEC;
    }
  for (int q = 0; !rc && q < n; q++) {
    sn_diag d = {0};
    sn_node *root =
        c.r[q].resolved_text ? sn_yaml_parse_string(c.r[q].resolved_text, dirs[q], &d) : NULL;
    char path[1024] = "";
    flatten(&c.fl[q], root, path, 0, sizeof path);
    if (!root)
      fprintf(stderr, "note: %s has no readable spec.resolved.yaml: its spec is not compared\n",
              dirs[q]);
    sn_node_free(root);
    sn_diag_free(&d);
  }
  if (!rc) {
    c.n_diff = differing(c.fl, n, c.diff, 64);
    bool loss = false, model = false;
    for (int d = 0; d < c.n_diff; d++)
      loss |= !strncmp(c.diff[d], "train.loss", 10), model |= !strncmp(c.diff[d], "model.", 6);
    FILE *notes = text ? stderr : NULL; /* a sweep's page: its trials differ by design */
    if (loss && notes)
      fprintf(notes,
              "note: the runs use different losses: their loss figures are not comparable\n");
    if (model && notes)
      fprintf(notes, "note: the runs have different models (the model. keys below)\n");
    common_figures(&c, notes);
    if (text) text_table(&c, text);
    if (out && !(rc = write_html(&c, out)) && text) fprintf(text, "wrote %s\n", out);
  }
  for (int q = 0; q < n && c.r && c.fl; q++) run_free(&c.r[q]), flat_free(&c.fl[q]);
  free(c.r);
  free(c.fl);
  free(c.label);
  return rc;
}

int cmd_compare(const opts *o) {
  if (o->n_paths < 2)
    return usage_error("compare needs at least two run folders, got %d", o->n_paths);
  return compare_write(o->paths, o->n_paths, o->out, stdout);
}
