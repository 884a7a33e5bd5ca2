/* HTML and SVG for the report pages (html.h). Charts are drawn here in plain SVG
 * (axes with ticks at 1, 2 or 5 times a power of ten, a legend); images become PNG
 * files encoded here (zlib's compress for the pixel stream) and inlined as base64
 * data URIs, so a page is one file that opens from disk. */
#include "html.h"

#include "specnet/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void html_text(FILE *f, const char *s) { sn_xml_text(f, s, true); }

void html_num(FILE *f, double v, int digits) {
  if (isfinite(v))
    fprintf(f, "%.*g", digits, v);
  else
    fputs("–", f);
}

static const char *const STYLE =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#222;"
    "max-width:1200px}\n"
    "h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;"
    "margin-top:32px}\n"
    "table{border-collapse:collapse;margin:8px 0;font-size:13px}\n"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
    "th{background:#f2f2f2}td.l,th.l{text-align:left}\n"
    "pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:12px;overflow:auto;"
    "max-height:480px}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}\n"
    ".grid{display:flex;flex-wrap:wrap;gap:10px}\n"
    ".grid figure{margin:0;font-size:12px;text-align:center}\n"
    ".grid img{image-rendering:pixelated;border:1px solid #ccc}\n"
    ".note{color:#666;font-size:13px}\n"
    ".hook{border:1px dashed #aaa;padding:8px;color:#666}\n";

void html_begin(FILE *f, const char *title) {
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
  html_text(f, title);
  fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", STYLE);
  html_text(f, title);
  fputs("</h1>\n", f);
}

void html_end(FILE *f) { fputs("</body>\n</html>\n", f); }

const char *chart_color(int i) {
  static const char *const P[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return P[i % 10];
}

/* ---------------------------------------------------------------------------
 * Axes */

enum { CW = 440, CH = 280, ML = 64, MR = 14, MT = 30, MB = 44 };

typedef struct axis {
  double lo, hi, step; /* the drawn range, a multiple of step at each end */
} axis;

static axis make_axis(double lo, double hi, int ticks) {
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * (fabs(hi) + 1)) {
    double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 0.5;
    lo -= pad, hi += pad;
  }
  double raw = (hi - lo) / ticks, p = pow(10, floor(log10(raw))), r = raw / p;
  double step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
  return (axis){floor(lo / step) * step, ceil(hi / step) * step, step};
}

static double px_x(const axis *a, double v) {
  return ML + (v - a->lo) / (a->hi - a->lo) * (CW - ML - MR);
}
static double px_y(const axis *a, double v) {
  return CH - MB - (v - a->lo) / (a->hi - a->lo) * (CH - MB - MT);
}

static void tick_text(FILE *f, double v, double step, bool log_scale) {
  if (log_scale) {
    fprintf(f, "%g", pow(10, v));
    return;
  }
  if (fabs(v) < step * 1e-9) v = 0;
  int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (fabs(v) >= 1e5 || dec > 5)
    fprintf(f, "%.3g", v);
  else
    fprintf(f, "%.*f", dec, v);
}

/* An axis's ticks, each with its label: grid lines across the chart for y, marks
 * below it for x. */
static void ticks(FILE *f, const axis *a, bool y_axis, bool log) {
  for (double v = a->lo; v <= a->hi + a->step * 1e-6; v += a->step) {
    if (y_axis) {
      double y = px_y(a, v);
      fprintf(f,
              "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
              "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
              ML, y, CW - MR, y, ML - 5, y + 4);
    } else {
      double x = px_x(a, v);
      fprintf(f,
              "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>"
              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
              x, CH - MB, x, CH - MB + 4, x, CH - MB + 16);
    }
    tick_text(f, v, a->step, log);
    fputs("</text>\n", f);
  }
}

/* <svg> with a frame, ticks and axis titles. */
static void frame(FILE *f, const char *name, const char *xlabel, const char *ylabel, const axis *ax,
                  const axis *ay, bool log_y) {
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-name=\"");
  html_text(f, name);
  fprintf(f,
          "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, "
          "sans-serif\" font-size=\"11\">\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n"
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n"
          "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">",
          CW, CH, CW, CH, CW, CH, ML, MT, CW - ML - MR, CH - MT - MB, (ML + CW - MR) / 2);
  html_text(f, name);
  fputs("</text>\n", f);
  ticks(f, ay, true, log_y);
  ticks(f, ax, false, false);
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">", (ML + CW - MR) / 2,
          CH - 8);
  html_text(f, xlabel);
  fprintf(f,
          "</text>\n<text x=\"14\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\" "
          "transform=\"rotate(-90 14 %d)\">",
          (MT + CH - MB) / 2, (MT + CH - MB) / 2);
  html_text(f, ylabel);
  fputs("</text>\n", f);
}

/* ---------------------------------------------------------------------------
 * Charts */

static double ly(double v, bool log_y) { return log_y ? (v > 0 ? log10(v) : NAN) : v; }

void svg_line_chart(FILE *f, const char *name, const char *xlabel, const chart_series *s, int n,
                    bool log_y) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < s[j].n; i++) {
      double y = ly(s[j].y[i], log_y);
      if (!isfinite(y) || !isfinite(s[j].x[i])) continue;
      xlo = fmin(xlo, s[j].x[i]), xhi = fmax(xhi, s[j].x[i]);
      ylo = fmin(ylo, y), yhi = fmax(yhi, y);
    }
  if (xlo == xhi) xlo -= 1, xhi += 1; /* one epoch: in the middle */
  axis ax = make_axis(xlo, xhi, 8), ay = make_axis(ylo, yhi, 5);
  if (ax.step < 1 && isfinite(xlo)) ax = (axis){floor(xlo), ceil(xhi), 1}; /* whole epochs */
  if (log_y && isfinite(ylo))                                              /* decades */
    ay = (axis){floor(ylo), fmax(ceil(yhi), floor(ylo) + 1), fmax(1, round(ay.step))};
  frame(f, name, xlabel, name, &ax, &ay, log_y);
  for (int j = 0; j < n; j++) {
    fputs("<g class=\"series\" data-series=\"", f);
    html_text(f, s[j].label);
    fprintf(f, "\"><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
            s[j].color, s[j].dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0; i < s[j].n; i++) {
      double y = ly(s[j].y[i], log_y);
      if (isfinite(y) && isfinite(s[j].x[i]))
        fprintf(f, "%.1f,%.1f ", px_x(&ax, s[j].x[i]), px_y(&ay, y));
    }
    fputs("\"/>", f);
    for (int i = 0; i < s[j].n && s[j].n <= 60; i++) {
      double y = ly(s[j].y[i], log_y);
      if (isfinite(y) && isfinite(s[j].x[i]))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px_x(&ax, s[j].x[i]),
                px_y(&ay, y), s[j].color);
    }
    fputs("</g>\n", f);
  }
  /* the legend, top right inside the frame, over the lines: at most 12 entries */
  int shown = n > 12 ? 11 : n;
  fprintf(f,
          "<g class=\"legend\"><rect x=\"%d\" y=\"%d\" width=\"152\" height=\"%d\" fill=\"white\" "
          "fill-opacity=\"0.85\" stroke=\"#ddd\"/>",
          CW - MR - 156, MT + 4, 15 * (shown + (n > shown)) + 6);
  for (int j = 0; j < shown; j++) {
    double ey = MT + 14 + 15 * j;
    fprintf(f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>"
            "<text x=\"%d\" y=\"%.1f\">",
            CW - MR - 150, ey, CW - MR - 128, ey, s[j].color,
            s[j].dashed ? " stroke-dasharray=\"6 4\"" : "", CW - MR - 123, ey + 4);
    html_text(f, s[j].label);
    fputs("</text>", f);
  }
  if (n > shown)
    fprintf(f, "<text x=\"%d\" y=\"%d\">and %d more</text>", CW - MR - 150, MT + 18 + 15 * shown,
            n - shown);
  fputs("</g>\n", f);
  fputs("</svg>\n", f);
}

void svg_scatter(FILE *f, const char *name, const char *xlabel, const char *ylabel, const double *x,
                 const double *y, int64_t n) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i]) && isfinite(y[i]))
      lo = fmin(lo, fmin(x[i], y[i])), hi = fmax(hi, fmax(x[i], y[i]));
  axis a = make_axis(lo, hi, 5); /* one scale for both: the diagonal is y = x */
  frame(f, name, xlabel, ylabel, &a, &a, false);
  fprintf(
      f,
      "<line class=\"diagonal\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
      "stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n<g class=\"series\" data-series=\"samples\">",
      px_x(&a, a.lo), px_y(&a, a.lo), px_x(&a, a.hi), px_y(&a, a.hi));
  int64_t stride = n > 5000 ? (n + 4999) / 5000 : 1; /* at most 5000 dots */
  for (int64_t i = 0; i < n; i += stride)
    if (isfinite(x[i]) && isfinite(y[i]))
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#1f77b4\" fill-opacity=\"0.5\"/>",
              px_x(&a, x[i]), px_y(&a, y[i]));
  fputs("</g>\n</svg>\n", f);
}

void svg_histogram(FILE *f, const char *name, const char *xlabel, const double *v, int64_t n,
                   int bins) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
  if (!(lo < hi)) lo = (isfinite(lo) ? lo : 0) - 0.5, hi = lo + 1;
  axis ax = make_axis(lo, hi, 5); /* the bins span the axis: ticks fall on bin edges */
  lo = ax.lo, hi = ax.hi;
  int64_t *count = calloc((size_t)bins, sizeof *count);
  if (!count) return;
  int64_t top = 1;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(v[i])) continue;
    int b = (int)((v[i] - lo) / (hi - lo) * bins);
    b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
    if (++count[b] > top) top = count[b];
  }
  axis ay = make_axis(0, (double)top, 5);
  frame(f, name, xlabel, "samples", &ax, &ay, false);
  fputs("<g class=\"series\" data-series=\"bins\">", f);
  for (int b = 0; b < bins; b++) {
    double x0 = px_x(&ax, lo + (hi - lo) * b / bins),
           x1 = px_x(&ax, lo + (hi - lo) * (b + 1) / bins);
    double y = px_y(&ay, (double)count[b]);
    fprintf(f,
            "<rect data-count=\"%lld\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"#1f77b4\" fill-opacity=\"0.7\"/>",
            (long long)count[b], x0, y, fmax(x1 - x0 - 1, 0.5), CH - MB - y);
  }
  fputs("</g>\n</svg>\n", f);
  free(count);
}

/* ---------------------------------------------------------------------------
 * Images: PNG (8-bit grey or RGB, filter 0 on every row) as a data URI */

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Appends a chunk (length, type, data, CRC of type and data) to out at *len. */
static void png_chunk(unsigned char *out, size_t *len, const char *type, const unsigned char *data,
                      uint32_t n) {
  be32(out + *len, n);
  memcpy(out + *len + 4, type, 4);
  if (n) memcpy(out + *len + 8, data, n);
  uLong crc = crc32(0L, out + *len + 4, 4 + n);
  be32(out + *len + 8 + n, (uint32_t)crc);
  *len += 12 + n;
}

static void base64(FILE *f, const unsigned char *p, size_t n) {
  static const char B[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    fputc(B[v >> 18 & 63], f);
    fputc(B[v >> 12 & 63], f);
    fputc(i + 1 < n ? B[v >> 6 & 63] : '=', f);
    fputc(i + 2 < n ? B[v & 63] : '=', f);
  }
}

void html_image(FILE *f, const float *px, int h, int w, int c, float lo, float hi, int scale,
                const char *alt) {
  size_t row = (size_t)w * c + 1, raw_n = row * h;
  uLongf zn = compressBound((uLong)raw_n);
  unsigned char *raw = malloc(raw_n), *z = malloc(zn), *png = malloc(zn + 64);
  if (!raw || !z || !png) goto done;
  float span = hi > lo ? hi - lo : 1;
  for (int y = 0; y < h; y++) {
    raw[y * row] = 0; /* filter: none */
    for (int i = 0; i < w * c; i++) {
      float v = (px[(size_t)y * w * c + i] - lo) / span * 255.0f + 0.5f;
      raw[y * row + 1 + i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  if (compress(z, &zn, raw, (uLong)raw_n) != Z_OK) goto done;
  size_t len = 8;
  memcpy(png, "\x89PNG\r\n\x1a\n", 8);
  unsigned char ihdr[13];
  be32(ihdr, (uint32_t)w);
  be32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8, ihdr[9] = c == 3 ? 2 : 0, ihdr[10] = ihdr[11] = ihdr[12] = 0;
  png_chunk(png, &len, "IHDR", ihdr, 13);
  png_chunk(png, &len, "IDAT", z, (uint32_t)zn);
  png_chunk(png, &len, "IEND", NULL, 0);
  fprintf(f, "<img width=\"%d\" height=\"%d\" alt=\"", w * scale, h * scale);
  html_text(f, alt);
  fputs("\" src=\"data:image/png;base64,", f);
  base64(f, png, len);
  fputs("\">", f);
done:
  free(raw);
  free(z);
  free(png);
}
