/* `specnet report RUN_DIR [-o FILE]` and `specnet train --report`: one HTML page
 * about a finished run, built from its folder alone (docs/outputs.md#report): the
 * summary, learning curves with the learning rate, what the predictions say
 * (confusion matrix and per-class figures, the most confidently wrong images, or a
 * scatter and residual histogram), the model's layers, both specs and the timing.
 * Numbers a tool may want sit in data- attributes at full precision. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "html.h"
#include "run_record.h"

/* Whether a metrics.jsonl column is a training figure with val_/test_ twins. */
static bool is_quantity(const char *k) {
  static const char *const NOT[] = {
      "epoch", "lr", "seconds", "eval_seconds", "samples_per_second", "data_wait_seconds"};
  for (size_t i = 0; i < sizeof NOT / sizeof *NOT; i++)
    if (!strcmp(k, NOT[i])) return false;
  return strncmp(k, "val_", 4) && strncmp(k, "test_", 5);
}

/* Column key of the run as a (n_rows) array; NULL when absent. Caller frees. */
static double *column(const run_record *r, const char *key) {
  if (run_col(r, key) < 0) return NULL;
  double *v = malloc((size_t)r->n_rows * sizeof *v);
  for (int i = 0; v && i < r->n_rows; i++) v[i] = run_at(r, i, key);
  return v;
}

/* ---------------------------------------------------------------------------
 * Sections */

static void summary(FILE *f, const run_record *r) {
  fputs("<h2 id=\"summary\">Summary</h2>\n<table id=\"summary-table\">\n", f);
  fprintf(f, "<tr><th class=\"l\">folder</th><td class=\"l\">");
  html_text(f, r->dir);
  fprintf(f, "</td></tr>\n<tr><th class=\"l\">epochs</th><td>%d</td></tr>\n", r->n_rows);
  for (int k = 0; k < r->n_cols; k++) {
    const char *key = r->cols[k];
    if (!strcmp(key, "epoch") || !strcmp(key, "seconds") || !strcmp(key, "eval_seconds") ||
        !strcmp(key, "samples_per_second") || !strcmp(key, "data_wait_seconds"))
      continue;
    double last = run_at(r, r->n_rows - 1, key);
    fprintf(f, "<tr><th class=\"l\">final %s</th><td data-key=\"", key);
    html_text(f, key);
    fprintf(f, "\" data-value=\"%.17g\">", last);
    html_num(f, last, 6);
    fputs("</td></tr>\n", f);
  }
  fputs("</table>\n", f);
}

static void curves(FILE *f, const run_record *r) {
  fputs("<h2 id=\"curves\">Learning curves</h2>\n<div class=\"charts\">\n", f);
  double *ep = column(r, "epoch");
  static const char *const PREFIX[] = {"", "val_", "test_"};
  static const char *const LABEL[] = {"train", "validation", "test"};
  for (int k = 0; ep && k < r->n_cols; k++) {
    if (!is_quantity(r->cols[k])) continue;
    chart_series s[3];
    double *y[3] = {0};
    int n = 0;
    for (int j = 0; j < 3; j++) {
      char key[300];
      snprintf(key, sizeof key, "%s%s", PREFIX[j], r->cols[k]);
      if (!(y[j] = column(r, key))) continue;
      s[n++] = (chart_series){LABEL[j], chart_color(j), j == 2, r->n_rows, ep, y[j]};
    }
    svg_line_chart(f, r->cols[k], "epoch", s, n, false);
    for (int j = 0; j < 3; j++) free(y[j]);
  }
  double *lr = column(r, "lr");
  if (ep && lr) {
    chart_series s = {"learning rate", chart_color(0), false, r->n_rows, ep, lr};
    svg_line_chart(f, "learning rate", "epoch", &s, 1, false);
  }
  free(lr);
  free(ep);
  fputs("</div>\n", f);
}

static void epoch_table(FILE *f, const run_record *r) {
  fputs("<h2 id=\"epochs\">Epochs</h2>\n<table id=\"epoch-table\">\n<tr>", f);
  for (int k = 0; k < r->n_cols; k++) {
    fputs("<th>", f);
    html_text(f, r->cols[k]);
    fputs("</th>", f);
  }
  fputs("</tr>\n", f);
  for (int i = 0; i < r->n_rows; i++) {
    fputs("<tr>", f);
    for (int k = 0; k < r->n_cols; k++) {
      fputs("<td>", f);
      html_num(f, run_at(r, i, r->cols[k]), 5);
      fputs("</td>", f);
    }
    fputs("</tr>\n", f);
  }
  fputs("</table>\n", f);
}

static void class_name(FILE *f, const run_record *r, int k) {
  if (k < r->n_classes)
    html_text(f, r->classes[k]);
  else
    fprintf(f, "%d", k);
}

/* Counts and row-normalized: rows the true class, columns the predicted one. */
static void confusion(FILE *f, const run_record *r, const run_preds *p, const int64_t *cm) {
  const int K = p->K;
  for (int norm = 0; norm < 2; norm++) {
    fprintf(f,
            "<h3>%s</h3>\n<table id=\"confusion-%s\">\n<tr><th class=\"l\">true \\ predicted</th>",
            norm ? "Row-normalized (recall on the diagonal)" : "Counts",
            norm ? "normalized" : "counts");
    for (int c = 0; c < K; c++) {
      fputs("<th>", f);
      class_name(f, r, c);
      fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int t = 0; t < K; t++) {
      int64_t row = 0;
      for (int c = 0; c < K; c++) row += cm[t * K + c];
      fprintf(f, "<tr data-class=\"%d\"><th class=\"l\">", t);
      class_name(f, r, t);
      fputs("</th>", f);
      for (int c = 0; c < K; c++) {
        int64_t n = cm[t * K + c];
        double v = row ? (double)n / (double)row : NAN,
               shade = norm ? (isfinite(v) ? v : 0) : (row ? (double)n / row : 0);
        fprintf(f, "<td style=\"background:rgba(31,119,180,%.3f)\" ", 0.85 * shade);
        if (norm) {
          fprintf(f, "data-value=\"%.17g\">", v);
          html_num(f, v, 3);
        } else {
          fprintf(f, "data-count=\"%lld\">%lld", (long long)n, (long long)n);
        }
        fputs("</td>", f);
      }
      fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
  }
}

static void per_class(FILE *f, const run_record *r, const run_preds *p, const int64_t *cm) {
  const int K = p->K;
  fputs("<h3>Per class</h3>\n<table id=\"per-class\">\n<tr><th class=\"l\">class</th>"
        "<th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n",
        f);
  for (int k = 0; k < K; k++) {
    int64_t tp = cm[k * K + k], pred = 0, support = 0;
    for (int j = 0; j < K; j++) pred += cm[j * K + k], support += cm[k * K + j];
    double prec = pred ? (double)tp / pred : NAN, rec = support ? (double)tp / support : NAN;
    double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : (pred && support ? 0 : NAN);
    fprintf(f, "<tr data-class=\"%d\"><th class=\"l\">", k);
    class_name(f, r, k);
    const double v[3] = {prec, rec, f1};
    const char *const name[3] = {"precision", "recall", "f1"};
    fputs("</th>", f);
    for (int j = 0; j < 3; j++) {
      fprintf(f, "<td data-%s=\"%.17g\">", name[j], v[j]);
      html_num(f, v[j], 4);
      fputs("</td>", f);
    }
    fprintf(f, "<td data-support=\"%lld\">%lld</td></tr>\n", (long long)support,
            (long long)support);
  }
  fputs("</table>\n<p class=\"note\">Precision: of the samples predicted as the class, the "
        "share that are; recall: of the samples of the class, the share found; F1 their "
        "harmonic mean; – where a count is zero.</p>\n",
        f);
}

/* ---------------------------------------------------------------------------
 * The most confidently wrong samples, from wrong_samples.npy */

/* The float32 array of an .npy file written by run_outputs.c; shape into dims. */
static float *read_npy(const char *path, int *rank, int64_t dims[4]) {
  size_t len;
  char *buf = run_slurp(path, &len);
  if (!buf || len < 10 || memcmp(buf, "\x93NUMPY", 6)) {
    free(buf);
    return NULL;
  }
  size_t hl = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
  const char *shape = strstr(buf + 10, "'shape': (");
  if (10 + hl > len || !shape || !strstr(buf + 10, "'<f4'")) {
    free(buf);
    return NULL;
  }
  *rank = 0;
  for (char *p = (char *)shape + 10, *end; *rank < 4; p = end + 1) {
    long long v = strtoll(p, &end, 10);
    if (end == p) break;
    dims[(*rank)++] = v;
    if (*end != ',') break;
  }
  /* dims from the header are checked against the data the file holds before they
   * are multiplied, so that a hostile shape cannot wrap the product around */
  const size_t room = (len - 10 - hl) / sizeof(float);
  size_t elems = 1;
  bool fits = true;
  for (int i = 0; i < *rank && fits; i++) {
    fits = dims[i] >= 1 && (size_t)dims[i] <= room / elems;
    elems *= (size_t)dims[i];
  }
  if (*rank < 3 || !fits) {
    free(buf);
    return NULL;
  }
  float *x = malloc(elems * sizeof *x);
  if (x) memcpy(x, buf + 10 + hl, elems * sizeof *x);
  free(buf);
  return x;
}

static void wrong_grid(FILE *f, const run_record *r, const run_preds *p) {
  char path[4200];
  snprintf(path, sizeof path, "%s/wrong_samples.npy", r->dir);
  int rank;
  int64_t d[4] = {0, 1, 1, 1};
  float *x = read_npy(path, &rank, d);
  if (!x) return;
  double *conf = malloc((size_t)p->n * sizeof *conf);
  int64_t idx[RUN_WRONG_MAX];
  int k = 0;
  for (int64_t i = 0; conf && i < p->n; i++) conf[i] = p->label[i] == p->pred[i] ? -1 : p->conf[i];
  if (conf) k = run_wrong_order(conf, p->n, idx, RUN_WRONG_MAX);
  if (k > d[0]) k = (int)d[0];
  const int64_t per = d[1] * d[2] * (rank == 4 ? d[3] : 1);
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < k * per; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
  fputs("<h3>Most confidently wrong</h3>\n<div class=\"grid\" id=\"wrong\">\n", f);
  int scale = d[1] <= 32 ? 3 : d[1] <= 64 ? 2 : 1;
  for (int j = 0; j < k; j++) {
    int64_t i = idx[j];
    fprintf(f, "<figure data-index=\"%lld\" data-label=\"%lld\" data-predicted=\"%lld\">",
            (long long)i, (long long)p->label[i], (long long)p->pred[i]);
    html_image(f, x + j * per, (int)d[1], (int)d[2], rank == 4 ? (int)d[3] : 1, lo, hi, scale,
               "sample");
    fprintf(f, "<figcaption>#%lld true ", (long long)i);
    class_name(f, r, (int)p->label[i]);
    fputs("<br>predicted ", f);
    class_name(f, r, (int)p->pred[i]);
    fprintf(f, " (%.0f%%)</figcaption></figure>\n", 100 * p->conf[i]);
  }
  fputs("</div>\n", f);
  free(conf);
  free(x);
}

static void classification(FILE *f, const run_record *r, const run_preds *p) {
  const int K = p->K;
  int64_t *cm = calloc((size_t)K * K, sizeof *cm); /* (K true, K predicted) */
  if (!cm) return;
  int64_t right = 0;
  for (int64_t i = 0; i < p->n; i++)
    cm[p->label[i] * K + p->pred[i]]++, right += p->label[i] == p->pred[i];
  fprintf(f,
          "<p>%lld samples, accuracy <span id=\"accuracy\" data-value=\"%.17g\">%.4f</span></p>\n",
          (long long)p->n, p->n ? (double)right / p->n : NAN, p->n ? (double)right / p->n : NAN);
  confusion(f, r, p, cm);
  per_class(f, r, p, cm);
  wrong_grid(f, r, p);
  free(cm);
}

static void regression(FILE *f, const run_preds *p) {
  double *t = malloc((size_t)p->n * sizeof *t), *o = malloc((size_t)p->n * sizeof *o),
         *res = malloc((size_t)p->n * sizeof *res);
  fputs("<div class=\"charts\">\n", f);
  for (int k = 0; t && o && res && k < p->K && k < 4; k++) {
    double sse = 0;
    for (int64_t i = 0; i < p->n; i++) {
      t[i] = p->target[i * p->K + k], o[i] = p->out[i * p->K + k];
      res[i] = o[i] - t[i];
      sse += res[i] * res[i];
    }
    char name[64], hname[64];
    snprintf(name, sizeof name, p->K > 1 ? "output %d: predicted vs true" : "predicted vs true", k);
    snprintf(hname, sizeof hname, p->K > 1 ? "output %d: residuals" : "residuals", k);
    svg_scatter(f, name, "true", "predicted", t, o, p->n);
    svg_histogram(f, hname, "predicted - true", res, p->n, 30);
    fprintf(f,
            "<p class=\"note\" data-output=\"%d\" data-mse=\"%.17g\">mean squared error %.6g</p>\n",
            k, p->n ? sse / p->n : NAN, p->n ? sse / p->n : NAN);
  }
  fputs("</div>\n", f);
  free(t);
  free(o);
  free(res);
}

static int predictions(FILE *f, const run_record *r, char *msg, size_t cap) {
  run_preds p;
  int rc = run_read_predictions(r->dir, &p, msg, cap);
  if (rc < 0) return -1;
  fputs("<h2 id=\"predictions\">Predictions</h2>\n", f);
  if (rc == 1) {
    fputs("<p class=\"note\">No predictions.csv in the folder: the run had no test or "
          "validation set, or specnet did not write the file yet when it ran.</p>\n",
          f);
    return 0;
  }
  fputs("<p class=\"note\">On the ", f);
  html_text(f, r->split[0] ? r->split : "held-out");
  fputs(" set, with the weights the run kept (predictions.csv).</p>\n", f);
  if (p.kind == PRED_VALUES)
    regression(f, &p);
  else
    classification(f, r, &p);
  run_preds_free(&p);
  return 0;
}

/* Language models: the sample generations the run wrote (generations.txt, one
 * per paragraph; cmd_generate.c). */
static void generations(FILE *f, const run_record *r) {
  char path[4200];
  snprintf(path, sizeof path, "%s/generations.txt", r->dir);
  char *text = run_slurp(path, NULL);
  if (!text) return;
  fputs("<h2 id=\"generations\">Sample generations</h2>\n<pre class=\"hook\">", f);
  html_text(f, text);
  fputs("</pre>\n", f);
  free(text);
}

/* The layer table of `specnet check`, for the resolved spec. */
static void layers(FILE *f, const run_record *r) {
  fputs("<h2 id=\"model\">Model</h2>\n", f);
  char path[4200];
  snprintf(path, sizeof path, "%s/spec.resolved.yaml", r->dir);
  sn_diag d = {0};
  char *text = NULL;
  size_t len = 0;
  sn_spec *s = r->resolved_text ? sn_spec_load(path, NULL, 0, &d) : NULL;
  FILE *m = s ? open_memstream(&text, &len) : NULL;
  int rc = m ? sn_emit_stage(s, "table", SN_RT_F32, m, &d) : -1;
  if (m) fclose(m);
  if (!rc && text) {
    fputs("<pre id=\"layers\">", f);
    html_text(f, text);
    fputs("</pre>\n", f);
  } else {
    fputs("<p class=\"note\">No layer table: ", f);
    html_text(f, !r->resolved_text ? "the folder has no spec.resolved.yaml"
                 : d.n             ? d.v[0].msg
                                   : "the resolved spec did not load");
    fputs("</p>\n", f);
  }
  free(text);
  sn_spec_free(s);
  sn_diag_free(&d);
}

static void specs(FILE *f, const run_record *r) {
  const char *const title[2] = {"Spec (as given)", "Spec (resolved)"};
  const char *const id[2] = {"spec", "resolved"};
  const char *const text[2] = {r->spec_text, r->resolved_text};
  for (int i = 0; i < 2; i++) {
    if (!text[i]) continue;
    fprintf(f, "<h2>%s</h2>\n<pre id=\"%s\">", title[i], id[i]);
    html_text(f, text[i]);
    fputs("</pre>\n", f);
  }
}

static void timing(FILE *f, const run_record *r) {
  double train = 0, eval = 0, sps = 0;
  for (int i = 0; i < r->n_rows; i++) {
    double s = run_at(r, i, "seconds"), e = run_at(r, i, "eval_seconds"),
           v = run_at(r, i, "samples_per_second");
    train += isfinite(s) ? s : 0, eval += isfinite(e) ? e : 0, sps += isfinite(v) ? v : 0;
  }
  fputs("<h2 id=\"timing\">Timing</h2>\n<table id=\"timing-table\">\n", f);
  const struct {
    const char *name;
    double v;
  } rows[] = {{"compile (s)", run_info(r, "compile_seconds")},
              {"  graph (s)", run_info(r, "compile_graph_seconds")},
              {"  plan (s)", run_info(r, "compile_plan_seconds")},
              {"  emit (s)", run_info(r, "compile_emit_seconds")},
              {"  llvm or cache read (s)", run_info(r, "compile_llvm_seconds")},
              {"  link (s)", run_info(r, "compile_link_seconds")},
              {"training, all epochs (s)", train},
              {"seconds per epoch", train / r->n_rows},
              {"evaluation, all epochs (s)", eval},
              {"samples per second (mean of epochs)", sps / r->n_rows},
              {"wall time of the run (s)", run_info(r, "wall_seconds")}};
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    fputs("<tr><th class=\"l\">", f);
    html_text(f, rows[i].name);
    fputs("</th><td>", f);
    html_num(f, rows[i].v, 4);
    fputs("</td></tr>\n", f);
  }
  fputs("</table>\n", f);
  if (run_info(r, "compile_cached") == 1)
    fputs("<p class=\"note\">Compiled from the cache.</p>\n", f);
  if (r->profile) {
    fputs("<h3>Kernel profile (--profile)</h3>\n<pre id=\"profile\">", f);
    html_text(f, r->profile);
    fputs("</pre>\n", f);
  }
}

/* ---------------------------------------------------------------------------
 * The page */

int report_write(const char *dir, const char *out) {
  run_record r;
  char msg[4400], path[4200];
  if (run_read(dir, &r, msg, sizeof msg)) {
    fprintf(stderr, "specnet: error: %s\n", msg);
    run_free(&r);
    return EXIT_SPEC;
  }
  if (!out) snprintf(path, sizeof path, "%s/report.html", r.dir), out = path;
  char *html = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&html, &len);
  if (!f) {
    run_free(&r);
    return EXIT_SPEC;
  }
  char title[300];
  snprintf(title, sizeof title, "specnet run: %s", r.name);
  html_begin(f, title);
  summary(f, &r);
  curves(f, &r);
  int rc = predictions(f, &r, msg, sizeof msg);
  generations(f, &r);
  layers(f, &r);
  epoch_table(f, &r);
  timing(f, &r);
  specs(f, &r);
  html_end(f);
  fclose(f);
  if (rc) {
    fprintf(stderr, "specnet: error: %s\n", msg);
  } else {
    FILE *o = fopen(out, "w");
    bool bad = !o || fwrite(html, 1, len, o) != len;
    if ((o && fclose(o)) || bad) {
      fprintf(stderr, "specnet: error: cannot write %s: %s\n", out, strerror(errno));
      rc = -1;
    } else {
      printf("wrote %s\n", out);
    }
  }
  free(html);
  run_free(&r);
  return rc ? EXIT_SPEC : 0;
}

int cmd_report(const opts *o) {
  if (o->n_paths != 1) return usage_error("report takes one run folder, got %d", o->n_paths);
  return report_write(o->spec, o->out);
}
