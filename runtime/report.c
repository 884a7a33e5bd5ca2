/* The records a run leaves behind: metrics.jsonl and metrics.csv (one row per epoch,
 * the same keys in the same order) and curves.svg (the learning curves, drawn here in
 * plain SVG so that a browser shows them; no plotting library).
 *
 * Column order of both metrics files: epoch, loss, each metric, val_loss and
 * val_<metric> (with a validation set), test_loss and test_<metric> (with a test
 * set), lr, seconds, eval_seconds, samples_per_second, data_wait_seconds.
 * Numbers are written in the shortest form that reads back as the same double. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Numbers and the column list */

/* The shortest %.Ng (N = 15..17) that reads back as exactly v; "" when not finite.
 * buf holds at least 32 chars. */
static const char *num(char *buf, double v) {
  if (!isfinite(v)) return strcpy(buf, "");
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

/* Calls fn(ctx, prefix, name, value) for every column of a record, in file order;
 * rec == NULL lists the names only (value 0), with the sets given. */
typedef void (*column_fn)(void *ctx, const char *prefix, const char *name, double v, bool integer);

static void columns(const sn_model *m, const sn_epoch_record *rec, bool has_val, bool has_test,
                    column_fn fn, void *ctx) {
  sn_epoch_record zero = {0};
  const sn_epoch_record *r = rec ? rec : &zero;
  fn(ctx, "", "epoch", r->epoch, true);
  fn(ctx, "", "loss", r->loss, false);
  for (int k = 0; k < m->n_metrics; k++) fn(ctx, "", m->metric_names[k], r->metrics[k], false);
  const struct {
    bool has;
    const char *prefix;
    const sn_eval_result *e;
  } sets[] = {{rec ? rec->has_val : has_val, "val_", &r->val},
              {rec ? rec->has_test : has_test, "test_", &r->test}};
  for (int s = 0; s < 2; s++) {
    if (!sets[s].has) continue;
    fn(ctx, sets[s].prefix, "loss", sets[s].e->loss, false);
    for (int k = 0; k < m->n_metrics; k++)
      fn(ctx, sets[s].prefix, m->metric_names[k], sets[s].e->metrics[k], false);
  }
  fn(ctx, "", "lr", r->lr, false);
  fn(ctx, "", "seconds", r->seconds, false);
  fn(ctx, "", "eval_seconds", r->eval_seconds, false);
  fn(ctx, "", "samples_per_second", r->samples_per_second, false);
  fn(ctx, "", "data_wait_seconds", r->data_wait_seconds, false);
}

typedef struct row_ctx {
  FILE *f;
  int n;       /* columns written */
  bool header; /* csv: names instead of values */
} row_ctx;

/* ---------------------------------------------------------------------------
 * metrics.jsonl */

/* s inside a JSON string: " and \ escaped, control characters as \u00XX */
static void json_chars(FILE *f, const char *s) {
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(f, "\\%c", *c);
    else if (*c < 0x20)
      fprintf(f, "\\u%04x", *c);
    else
      fputc(*c, f);
  }
}

void sn_json_string(FILE *f, const char *s) {
  fputc('"', f);
  json_chars(f, s);
  fputc('"', f);
}

/* Metric names come from the compiler; escape anything JSON would choke on. */
static void json_str(FILE *f, const char *prefix, const char *name) {
  fputc('"', f);
  json_chars(f, prefix);
  json_chars(f, name);
  fputc('"', f);
}

static void json_col(void *ctx, const char *prefix, const char *name, double v, bool integer) {
  row_ctx *c = ctx;
  char b[32];
  fputs(c->n++ ? ", " : "{", c->f);
  json_str(c->f, prefix, name);
  fputs(": ", c->f);
  if (integer)
    fprintf(c->f, "%.0f", v);
  else
    fputs(isfinite(v) ? num(b, v) : "null", c->f); /* JSON has no nan */
}

static int flushed(FILE *f, const char *path, sn_error *err) {
  if (fflush(f) != 0 || ferror(f))
    return sn_fail(err, "cannot write %s: %s", path, strerror(errno));
  return 0;
}

/* One line of a record file: rec's columns (header: their names) through col, then
 * end; flushed. */
static int record_line(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                       bool has_val, bool has_test, bool header, column_fn col, const char *end,
                       sn_error *err) {
  row_ctx c = {f, 0, header};
  columns(m, rec, has_val, has_test, col, &c);
  fputs(end, f);
  return flushed(f, path, err);
}

int sn_report_jsonl(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                    sn_error *err) {
  return record_line(f, path, m, rec, false, false, false, json_col, "}\n", err);
}

/* ---------------------------------------------------------------------------
 * metrics.csv */

/* A name as a CSV cell: quoted when it holds a comma, quote or newline. */
static void csv_name(FILE *f, const char *prefix, const char *name) {
  bool quote = strpbrk(name, ",\"\r\n") != NULL;
  if (!quote) {
    fprintf(f, "%s%s", prefix, name);
    return;
  }
  fprintf(f, "\"%s", prefix);
  for (const char *p = name; *p; p++) {
    if (*p == '"') fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

static void csv_col(void *ctx, const char *prefix, const char *name, double v, bool integer) {
  row_ctx *c = ctx;
  char b[32];
  if (c->n++) fputc(',', c->f);
  if (c->header)
    csv_name(c->f, prefix, name);
  else if (integer)
    fprintf(c->f, "%.0f", v);
  else
    fputs(num(b, v), c->f);
}

int sn_report_csv_header(FILE *f, const char *path, const sn_model *m, bool has_val, bool has_test,
                         sn_error *err) {
  return record_line(f, path, m, NULL, has_val, has_test, true, csv_col, "\n", err);
}

int sn_report_csv(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                  sn_error *err) {
  return record_line(f, path, m, rec, false, false, false, csv_col, "\n", err);
}

/* ---------------------------------------------------------------------------
 * curves.svg
 *
 * A grid of panels, two per row: loss, then each metric, then the learning rate
 * when it changes. In each panel epochs run along x (integer ticks), the value along
 * y (ticks at 1, 2 or 5 times a power of ten); training is a solid blue line,
 * validation solid orange, test dashed green, each point marked with a dot. One
 * legend under the title. */

enum {
  PANEL_W = 460,
  PANEL_H = 300,
  COLS = 2,
  TOP = 74,
  MARGIN_L = 64,
  MARGIN_R = 16,
  MARGIN_T = 34,
  MARGIN_B = 46
};

typedef struct series {
  const char *label; /* "train", "validation", "test" */
  const char *color;
  bool dashed;
} series;

static const series SERIES[3] = {
    {"train", "#1f77b4", false},
    {"validation", "#ff7f0e", false},
    {"test", "#2ca02c", true},
};

/* The value of a panel's series s at record r; NAN when absent. quantity: -1 loss,
 * k >= 0 metric k, -2 learning rate (training only). */
static double value_of(const sn_epoch_record *r, int quantity, int s) {
  if (quantity == -2) return s == 0 ? r->lr : NAN;
  const sn_eval_result *e = s == 1   ? (r->has_val ? &r->val : NULL)
                            : s == 2 ? (r->has_test ? &r->test : NULL)
                                     : NULL;
  if (s != 0 && !e) return NAN;
  if (quantity == -1) return s == 0 ? r->loss : e->loss;
  return s == 0 ? r->metrics[quantity] : e->metrics[quantity];
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
static double nice_step(double range, int target) {
  double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/* A tick label: as few digits as tell neighbouring ticks apart. */
static void tick_label(char *buf, size_t cap, double v, double step) {
  if (fabs(v) < step * 1e-9) v = 0;
  int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4 && dec > 6))
    snprintf(buf, cap, "%.3g", v);
  else
    snprintf(buf, cap, "%.*f", dec, v);
}

void sn_xml_text(FILE *f, const char *s, bool keep_space) {
  for (; *s; s++) {
    const char *e = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;
    if (e) fputs(e, f);
    else if ((unsigned char)*s >= 0x20 || (keep_space && (*s == '\n' || *s == '\t'))) fputc(*s, f);
  }
}

/* The y-axis title is centred at ox + AXIS_TITLE_X (12 px text turned upright, so it
 * reaches 6 px right of that); tick labels end TICK_GAP px left of the frame. Their
 * width is estimated at TICK_CHAR_W px per character of 11 px text (DejaVu Sans's
 * digits are 0.64 em wide; '.', '-' and '+' narrower), and the frame moves right
 * when the widest label would reach the title. */
#define AXIS_TITLE_X 16.0
#define TICK_GAP 8.0
#define TICK_CHAR_W 7.2

/* A panel's scales: the frame (x0..x1, y1 top .. y0 bottom), the data area inset
 * from it (so that points on an extreme stay visible), the epochs on x and the value
 * range on y with their tick steps. */
typedef struct axes {
  double x0, x1, y0, y1, ix0, ix1, iy0, iy1;
  double emin, emax, xstep, ylo, yhi, ystep;
} axes;

static double ax_x(const axes *a, double e) {
  return a->ix0 + (e - a->emin) * (a->ix1 - a->ix0) / (a->emax - a->emin);
}
static double ax_y(const axes *a, double v) {
  return a->iy0 - (v - a->ylo) * (a->iy0 - a->iy1) / (a->yhi - a->ylo);
}

static axes panel_axes(double ox, double oy, const sn_epoch_record *recs, int n, int quantity) {
  axes a;
  a.y0 = oy + PANEL_H - MARGIN_B;
  a.y1 = oy + MARGIN_T;
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < n; i++)
    for (int s = 0; s < 3; s++) {
      double v = value_of(&recs[i], quantity, s);
      if (isfinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  if (!(lo <= hi)) lo = 0, hi = 1; /* nothing finite */
  if (hi - lo < 1e-12 * (fabs(hi) + 1)) {
    double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 0.5;
    lo -= pad;
    hi += pad;
  }
  a.ystep = nice_step(hi - lo, 5);
  a.ylo = floor(lo / a.ystep) * a.ystep;
  a.yhi = ceil(hi / a.ystep) * a.ystep;
  char lab[32];
  size_t widest = 0; /* characters of the longest y tick label */
  for (double v = a.ylo; v <= a.yhi + a.ystep * 1e-6; v += a.ystep) {
    tick_label(lab, sizeof lab, v, a.ystep);
    if (strlen(lab) > widest) widest = strlen(lab);
  }
  const double label_w = (double)widest * TICK_CHAR_W;
  a.x0 = ox + fmax(MARGIN_L, AXIS_TITLE_X + 6 + 6 + label_w + TICK_GAP);
  a.x1 = ox + PANEL_W - MARGIN_R;
  /* x: the epochs; a single epoch sits in the middle of [e - 0.5, e + 0.5] */
  a.emin = n > 0 ? recs[0].epoch : 1;
  a.emax = n > 0 ? recs[n - 1].epoch : 1;
  if (a.emax <= a.emin) a.emin -= 0.5, a.emax += 0.5;
  a.xstep = fmax(1, nice_step(a.emax - a.emin, 8));
  a.ix0 = a.x0 + 10;
  a.ix1 = a.x1 - 10;
  a.iy0 = a.y0 - 8;
  a.iy1 = a.y1 + 8;
  return a;
}

/* The frame, its title, the grid, the ticks and the axis titles. */
static void panel_frame(FILE *f, const axes *a, double ox, double oy, const char *title) {
  fprintf(f,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
          "stroke=\"#ccc\"/>\n",
          a->x0, a->y1, a->x1 - a->x0, a->y0 - a->y1);
  fprintf(
      f,
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">",
      (a->x0 + a->x1) / 2, oy + 20.0);
  sn_xml_text(f, title, false);
  fputs("</text>\n", f);
  char lab[32];
  for (double v = a->ylo; v <= a->yhi + a->ystep * 1e-6; v += a->ystep) {
    double y = ax_y(a, v);
    tick_label(lab, sizeof lab, v, a->ystep);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
            a->x0, y, a->x1, y, a->x0 - 5, y, a->x0, y, a->x0 - TICK_GAP, y + 4, lab);
  }
  for (double e = ceil(a->emin / a->xstep) * a->xstep; e <= a->emax + 1e-9; e += a->xstep) {
    double x = ax_x(a, e);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>\n",
            x, a->y0, x, a->y0 + 5, x, a->y0 + 18, e);
  }
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", a->x0,
          a->y0, a->x1, a->y0);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", a->x0,
          a->y0, a->x0, a->y1);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n",
          (a->x0 + a->x1) / 2, a->y0 + 36);
  double ym = (a->y0 + a->y1) / 2;
  fprintf(f,
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
          "transform=\"rotate(-90 %.1f %.1f)\">",
          ox + AXIS_TITLE_X, ym, ox + AXIS_TITLE_X, ym);
  sn_xml_text(f, title, false);
  fputs("</text>\n", f);
}

/* Series s: a polyline through the finite points, and a dot at each. */
static void panel_series(FILE *f, const axes *a, const sn_epoch_record *recs, int n,
                         int quantity, int s) {
  int pts = 0;
  for (int i = 0; i < n; i++) pts += isfinite(value_of(&recs[i], quantity, s));
  if (!pts) return;
  fprintf(f, "<g class=\"series\" data-series=\"%s\">", SERIES[s].label);
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
          SERIES[s].color, SERIES[s].dashed ? " stroke-dasharray=\"6 4\"" : "");
  for (int i = 0; i < n; i++) {
    double v = value_of(&recs[i], quantity, s);
    if (isfinite(v)) fprintf(f, "%.1f,%.1f ", ax_x(a, recs[i].epoch), ax_y(a, v));
  }
  fputs("\"/>", f);
  if (n <= 60)
    for (int i = 0; i < n; i++) {
      double v = value_of(&recs[i], quantity, s);
      if (isfinite(v))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                ax_x(a, recs[i].epoch), ax_y(a, v), SERIES[s].color);
    }
  fputs("</g>\n", f);
}

static void panel(FILE *f, double ox, double oy, const char *title, const sn_epoch_record *recs,
                  int n, int quantity, int best_epoch) {
  axes a = panel_axes(ox, oy, recs, n, quantity);
  fputs("<g class=\"panel\" data-name=\"", f);
  sn_xml_text(f, title, false);
  fputs("\">\n", f);
  panel_frame(f, &a, ox, oy, title);
  if (best_epoch > 0 && best_epoch >= a.emin && best_epoch <= a.emax)
    fprintf(f,
            "<line class=\"best\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
            "stroke-dasharray=\"2 3\"/>\n",
            ax_x(&a, best_epoch), a.y0, ax_x(&a, best_epoch), a.y1);
  for (int s = 0; s < 3; s++) panel_series(f, &a, recs, n, quantity, s);
  fputs("</g>\n", f);
}

int sn_curves_svg(const char *path, const char *title, const sn_epoch_record *recs, int n,
                  int n_metrics, const char *const *metric_names, int best_epoch, sn_error *err) {
  /* panels: loss, metrics, lr when it changes */
  bool lr_varies = false;
  for (int i = 1; i < n; i++) lr_varies |= recs[i].lr != recs[0].lr;
  int panels = 1 + n_metrics + lr_varies;
  int rows = (panels + COLS - 1) / COLS;
  int width = COLS * PANEL_W, height = TOP + rows * PANEL_H + 10;

  char tmp[4200];
  int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (k < 0 || (size_t)k >= sizeof tmp) return sn_fail(err, "%s: path too long", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return sn_fail(err, "cannot write %s: %s", tmp, strerror(errno));
  fprintf(
      f,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  fprintf(f,
          "<text x=\"%d\" y=\"26\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">",
          width / 2);
  sn_xml_text(f, title && *title ? title : "training", false);
  fprintf(f, " — %d epoch%s</text>\n", n, n == 1 ? "" : "s");
  /* legend: the series that appear anywhere */
  bool has[3] = {n > 0, false, false};
  for (int i = 0; i < n; i++) has[1] |= recs[i].has_val, has[2] |= recs[i].has_test;
  int shown = has[0] + has[1] + has[2] + (best_epoch > 0);
  double lx = width / 2.0 - shown * 120 / 2.0;
  fputs("<g class=\"legend\">\n", f);
  for (int s = 0; s < 3; s++) {
    if (!has[s]) continue;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"48\" x2=\"%.1f\" y2=\"48\" stroke=\"%s\" stroke-width=\"2\"%s/>"
            "<circle cx=\"%.1f\" cy=\"48\" r=\"2.5\" fill=\"%s\"/>"
            "<text x=\"%.1f\" y=\"52\" font-size=\"13\">%s</text>\n",
            lx, lx + 28, SERIES[s].color, SERIES[s].dashed ? " stroke-dasharray=\"6 4\"" : "",
            lx + 14, SERIES[s].color, lx + 34, SERIES[s].label);
    lx += 120;
  }
  if (best_epoch > 0)
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"40\" x2=\"%.1f\" y2=\"56\" stroke=\"#888\" "
            "stroke-dasharray=\"2 3\"/>"
            "<text x=\"%.1f\" y=\"52\" font-size=\"13\">best epoch (%d)</text>\n",
            lx + 14, lx + 14, lx + 22, best_epoch);
  fputs("</g>\n", f);

  for (int p = 0; p < panels; p++) {
    int quantity = p == 0 ? -1 : p <= n_metrics ? p - 1 : -2;
    const char *name = quantity == -1   ? "loss"
                       : quantity == -2 ? "learning rate"
                                        : metric_names[quantity];
    panel(f, (p % COLS) * PANEL_W, TOP + (p / COLS) * PANEL_H, name, recs, n, quantity, best_epoch);
  }
  fputs("</svg>\n", f);
  bool bad = ferror(f) != 0;
  if (fclose(f) != 0 || bad) {
    int e = errno;
    unlink(tmp);
    return sn_fail(err, "cannot write %s: %s", path, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return sn_fail(err, "cannot write %s: %s", path, strerror(e));
  }
  return 0;
}
