/* Self-contained HTML pages (html.c) for `specnet report` and `specnet compare`:
 * inline CSS, charts as inline SVG, images as PNG data URIs; no script, no network.
 * Every chart is an <svg class="chart" data-name="..."> whose series are
 * <g class="series" data-series="..."> (docs/outputs.md). */
#ifndef SPECNET_HTML_H
#define SPECNET_HTML_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Text with HTML's special characters escaped (also right inside attributes). */
void html_text(FILE *f, const char *s);
/* <!DOCTYPE html> ... <body><h1>title</h1>; html_end closes the page. */
void html_begin(FILE *f, const char *title);
void html_end(FILE *f);
/* A number for a table cell: the %.*g form, "–" when not finite. */
void html_num(FILE *f, double v, int digits);

typedef struct chart_series {
  const char *label;
  const char *color; /* CSS colour */
  bool dashed;
  int n;
  const double *x, *y; /* (n); non-finite points are skipped */
} chart_series;

/* Lines through the points of each series, with a legend; log_y draws y on a
 * log10 scale (points <= 0 skipped). */
void svg_line_chart(FILE *f, const char *name, const char *xlabel, const chart_series *s, int n,
                    bool log_y);
/* Points (x[i], y[i]) with the diagonal y = x. */
void svg_scatter(FILE *f, const char *name, const char *xlabel, const char *ylabel, const double *x,
                 const double *y, int64_t n);
/* A histogram of v in `bins` equal bins over its range. */
void svg_histogram(FILE *f, const char *name, const char *xlabel, const double *v, int64_t n,
                   int bins);
/* An <img> of an (h, w, c) float image (c 1 or 3), mapped lo..hi to 0..255, shown
 * `scale` times its size with square pixels. */
void html_image(FILE *f, const float *px, int h, int w, int c, float lo, float hi, int scale,
                const char *alt);

/* The colour of series i (a fixed palette, repeating). */
const char *chart_color(int i);

#endif
