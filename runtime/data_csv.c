/* CSV data sets: one sample per row, the features as numbers, one label column.
 *
 * What is accepted: cells separated by commas; lines ended by \n or \r\n; cells may
 * be surrounded by spaces and by double quotes ("1.5", "petal width"); blank lines
 * are skipped; an optional header row of column names (src->header). Every data
 * cell must be a finite number; every row must have as many cells as the first.
 * Not accepted: other separators, commas or newlines inside quoted cells, missing
 * values — each is reported as an error naming the file, line and column, because a
 * silently mis-read column is worse than a refusal.
 *
 * The label column (src->label_col by header name, else src->label_index, -1 =
 * last) gives y (classification: an integer >= 0) or, when the model reads float
 * targets (src->target_elems == 1), t. With src->no_labels every column is a
 * feature. Features are converted to f32 once: x is (n, features).
 *
 * Class labels may be names (cat, dog): when a label cell of a classification set
 * is not a number, every label is a name, and class k is the k-th of the distinct
 * names sorted by strcmp (out->class_names). A test or validation set maps its
 * names through the training set's table (src->class_names) instead; a name not in
 * it is an error. */
#include "specnet/runtime.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_COLS = 1 << 20 };

typedef struct cell {
  const char *s; /* not terminated; quotes and surrounding spaces removed */
  size_t len;
} cell;

/* Splits [p, end) (one line, no newline) into cells. Returns the count, or -1 when
 * a quoted cell is malformed; *cells grows as needed. */
static int64_t split_line(const char *p, const char *end, cell **cells, int64_t *cap) {
  int64_t n = 0;
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *s = p, *e;
    if (p < end && *p == '"') {
      s = ++p;
      while (p < end && *p != '"') p++;
      if (p == end) return -1;
      e = p++;
      while (p < end && (*p == ' ' || *p == '\t')) p++;
      if (p < end && *p != ',') return -1;
    } else {
      while (p < end && *p != ',') p++;
      e = p;
      while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    }
    if (n == *cap) {
      int64_t nc = *cap ? 2 * *cap : 64;
      cell *c = realloc(*cells, (size_t)nc * sizeof *c);
      if (!c) return -2;
      *cells = c;
      *cap = nc;
    }
    (*cells)[n++] = (cell){s, (size_t)(e - s)};
    if (p == end) return n;
    p++; /* the comma */
    if (n >= MAX_COLS) return n;
  }
}

/* A cell as a finite number: 0, else 1 (not a number) or 2 (not finite). */
static int cell_number(const cell *c, double *v) {
  char buf[128];
  if (c->len == 0 || c->len >= sizeof buf) return 1;
  memcpy(buf, c->s, c->len);
  buf[c->len] = 0;
  char *end;
  errno = 0;
  *v = strtod(buf, &end);
  if (end == buf || *end) return 1;
  if (!isfinite(*v)) return 2;
  return 0;
}

/* The cell text for a message, shortened. */
static const char *cell_text(const cell *c, char *buf, size_t cap) {
  size_t n = c->len < cap - 4 ? c->len : cap - 4;
  memcpy(buf, c->s, n);
  strcpy(buf + n, c->len > n ? "..." : "");
  return buf;
}

/* "column 3 ('width')" or "column 3" */
static const char *col_name(char *buf, size_t cap, int64_t col, const cell *hdr) {
  if (hdr) {
    char t[64];
    snprintf(buf, cap, "column %lld ('%s')", (long long)col + 1, cell_text(&hdr[col], t, sizeof t));
  } else {
    snprintf(buf, cap, "column %lld", (long long)col + 1);
  }
  return buf;
}

/* The whole file, NUL-terminated. */
static char *read_text(const char *path, size_t *len, sn_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    sn_fail(err, "%s: cannot read: %s", path,
            S_ISDIR(st.st_mode) ? "is a folder" : strerror(errno));
    fclose(f);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    sn_fail(err, "%s: out of memory for %lld bytes", path, (long long)st.st_size);
    fclose(f);
    return NULL;
  }
  size_t n = fread(buf, 1, (size_t)st.st_size, f);
  if (n != (size_t)st.st_size) {
    sn_fail(err, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

/* Grows a float array to hold `need` elements. */
static int grow(float **a, int64_t *cap, int64_t need) {
  if (need <= *cap) return 0;
  int64_t nc = *cap ? *cap : 1024;
  while (nc < need) nc *= 2;
  float *p = realloc(*a, (size_t)nc * sizeof(float));
  if (!p) return -1;
  *a = p;
  *cap = nc;
  return 0;
}

static int cell_cmp(const cell *a, const cell *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cell_qsort(const void *a, const void *b) { return cell_cmp(a, b); }

/* The index of name in the sorted table of k names, or -1. */
static int find_name(const cell *name, const char *const *table, int k) {
  int lo = 0, hi = k - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    cell t = {table[mid], strlen(table[mid])};
    int c = cell_cmp(name, &t);
    if (!c) return mid;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return -1;
}

/* Class labels by name: y[i] from names[i] through src's table, or through the
 * table of the distinct names made here (then out->class_names). lines[i]: the
 * line of sample i, for messages. */
static int names_to_classes(const sn_source *src, const char *path, const cell *names,
                            const int64_t *lines, int64_t n, sn_dataset *out, sn_error *err) {
  char tbuf[80];
  const char *const *table = src->class_names;
  int k = src->n_class_names;
  if (!table) {
    cell *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return sn_fail(err, "%s: out of memory", path);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cell_qsort);
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; i++)
      if (i == 0 || cell_cmp(&sorted[i], &sorted[distinct - 1])) sorted[distinct++] = sorted[i];
    if (distinct > 65536) {
      free(sorted);
      return sn_fail(err, "%s: %lld distinct class names in the label column (at most 65536)", path,
                     (long long)distinct);
    }
    out->class_names = calloc((size_t)distinct, sizeof(char *));
    if (!out->class_names) {
      free(sorted);
      return sn_fail(err, "%s: out of memory", path);
    }
    for (int64_t i = 0; i < distinct; i++) {
      out->class_names[i] = malloc(sorted[i].len + 1);
      if (!out->class_names[i]) {
        free(sorted);
        return sn_fail(err, "%s: out of memory", path);
      }
      memcpy(out->class_names[i], sorted[i].s, sorted[i].len);
      out->class_names[i][sorted[i].len] = 0;
      out->n_class_names = (int)i + 1;
    }
    free(sorted);
    table = (const char *const *)out->class_names;
    k = out->n_class_names;
  }
  out->y = malloc((size_t)n * sizeof(int32_t));
  if (!out->y) return sn_fail(err, "%s: out of memory", path);
  for (int64_t i = 0; i < n; i++) {
    int c = find_name(&names[i], table, k);
    if (c < 0) {
      char known[400] = "";
      size_t w = 0;
      for (int j = 0; j < k && w + 110 < sizeof known; j++)
        w += (size_t)snprintf(known + w, sizeof known - w, "%s'%.100s'", j ? ", " : "", table[j]);
      if (w + 110 >= sizeof known) snprintf(known + w, sizeof known - w, ", ...");
      return sn_fail(err, "%s:%lld: label '%s' is not one of the training set's %d classes (%s)",
                     path, (long long)lines[i], cell_text(&names[i], tbuf, 64), k, known);
    }
    out->y[i] = c;
  }
  out->classes = k;
  return 0;
}

int sn_dataset_csv(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  const char *path = src->path[0] ? src->path : src->images;
  if (!path[0]) return sn_fail(err, "a csv source needs a path");
  if (src->label_col[0] && !src->header && !src->no_labels)
    return sn_fail(err,
                   "%s: the label column is given by name ('%s') but the file has no header "
                   "row; hint: set header: true, or give the label by position",
                   path, src->label_col);
  size_t len;
  char *text = read_text(path, &len, err);
  if (!text) return -1;

  int rc = -1;
  cell *cells = NULL, *hdr = NULL;
  int64_t cap = 0, ncols = -1, label = -1, xcap = 0, tcap = 0, n = 0, first_line = 0;
  float *x = NULL, *lab = NULL; /* (n, features), (n) label values */
  bool labels = !src->no_labels;
  /* classification labels: kept as text until the end, where they are either all
   * class indices or all names */
  const bool classify = labels && src->target_elems != 1;
  cell *label_cells = NULL;        /* (n) the label cells */
  int64_t *lines = NULL, ncap = 0; /* (n) their lines */
  bool by_name = src->class_names != NULL;
  int64_t bad_line = 0, bad_col = 0; /* the first label that is a number but not a class index */
  char bad_text[80] = "";
  char cbuf[160], tbuf[80];

  const char *p = text, *end = text + len;
  if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
      (unsigned char)p[2] == 0xBF)
    p += 3; /* UTF-8 byte order mark, as Excel writes */
  for (int64_t line = 1; p < end; line++) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    const char *q = p;
    p = eol < end ? eol + 1 : end;
    while (q < le && (*q == ' ' || *q == '\t')) q++;
    if (q == le) continue; /* blank line */
    if (memchr(q, 0, (size_t)(le - q))) {
      sn_fail(err, "%s:%lld: a NUL byte: this is not a text file", path, (long long)line);
      goto done;
    }
    int64_t nc = split_line(q, le, &cells, &cap);
    if (nc == -2) {
      sn_fail(err, "%s: out of memory", path);
      goto done;
    }
    if (nc < 0) {
      sn_fail(err, "%s:%lld: a quoted cell is not closed before the next comma or the line's end",
              path, (long long)line);
      goto done;
    }
    if (ncols < 0) { /* the first row fixes the columns; it may be the header */
      ncols = nc;
      first_line = line;
      if (ncols >= MAX_COLS) {
        sn_fail(err, "%s:%lld: more than %d columns", path, (long long)line, MAX_COLS - 1);
        goto done;
      }
      if (labels && ncols < 2) {
        sn_fail(err,
                "%s:%lld: one column only; a labelled csv needs at least a feature and "
                "the label",
                path, (long long)line);
        goto done;
      }
      if (labels) {
        if (src->label_col[0]) {
          for (int64_t c = 0; c < ncols && label < 0; c++)
            if (cells[c].len == strlen(src->label_col) &&
                !memcmp(cells[c].s, src->label_col, cells[c].len))
              label = c;
          if (label < 0) {
            char names[512] = "";
            size_t k = 0;
            for (int64_t c = 0; c < ncols && k + 80 < sizeof names; c++)
              k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", c ? ", " : "",
                                    cell_text(&cells[c], tbuf, 64));
            sn_fail(err, "%s:%lld: no column named '%s' in the header (columns: %s)", path,
                    (long long)line, src->label_col, names);
            goto done;
          }
        } else {
          int li = src->label_index;
          if (li < -1 || li >= ncols) {
            sn_fail(err,
                    "%s: label column %d is out of range: the file has %lld columns (0..%lld, or "
                    "-1 for the last)",
                    path, li, (long long)ncols, (long long)ncols - 1);
            goto done;
          }
          label = li < 0 ? ncols - 1 : li;
        }
      }
      if (src->header) {
        hdr = malloc((size_t)ncols * sizeof *hdr);
        if (!hdr) {
          sn_fail(err, "%s: out of memory", path);
          goto done;
        }
        memcpy(hdr, cells, (size_t)ncols * sizeof *hdr);
        continue;
      }
    }
    if (nc != ncols) {
      sn_fail(err, "%s:%lld: %lld columns, but the first row (line %lld) has %lld", path,
              (long long)line, (long long)nc, (long long)first_line, (long long)ncols);
      goto done;
    }
    if (src->limit > 0 && n >= src->limit) break;
    int64_t nf = labels ? ncols - 1 : ncols;
    if (grow(&x, &xcap, (n + 1) * nf) || (labels && grow(&lab, &tcap, n + 1))) {
      sn_fail(err, "%s: out of memory at line %lld", path, (long long)line);
      goto done;
    }
    if (classify && n + 1 > ncap) {
      int64_t nc2 = ncap ? 2 * ncap : 1024;
      cell *nn = realloc(label_cells, (size_t)nc2 * sizeof *label_cells);
      if (nn) label_cells = nn;
      int64_t *nl = nn ? realloc(lines, (size_t)nc2 * sizeof *lines) : NULL;
      if (nl) lines = nl;
      if (!nn || !nl) {
        sn_fail(err, "%s: out of memory at line %lld", path, (long long)line);
        goto done;
      }
      ncap = nc2;
    }
    float *row = x + n * nf;
    for (int64_t c = 0; c < ncols; c++) {
      double v;
      int bad = cell_number(&cells[c], &v);
      if (classify && c == label) {
        label_cells[n] = cells[c];
        lines[n] = line;
        if (cells[c].len == 0) {
          sn_fail(err, "%s:%lld: label %s is empty (missing values are not supported)", path,
                  (long long)line, col_name(cbuf, sizeof cbuf, c, hdr));
          goto done;
        }
        if (bad == 1) {
          by_name = true; /* a name: all labels are names */
          lab[n] = 0;
          continue;
        }
      }
      if (bad) {
        const char *hint = "";
        if (!src->header && n == 0 && bad == 1 && cells[c].len > 0)
          hint = "; hint: if the first row holds column names, set header: true";
        if (cells[c].len == 0)
          sn_fail(err, "%s:%lld: %s is empty (missing values are not supported)%s", path,
                  (long long)line, col_name(cbuf, sizeof cbuf, c, hdr), hint);
        else
          sn_fail(err, "%s:%lld: %s: '%s' is not a %snumber%s", path, (long long)line,
                  col_name(cbuf, sizeof cbuf, c, hdr), cell_text(&cells[c], tbuf, 64),
                  bad == 2 ? "finite " : "", hint);
        goto done;
      }
      if (fabs(v) > FLT_MAX) { /* finite as a double, inf as the f32 we store */
        sn_fail(err, "%s:%lld: %s: '%s' is beyond the float32 range", path, (long long)line,
                col_name(cbuf, sizeof cbuf, c, hdr), cell_text(&cells[c], tbuf, 64));
        goto done;
      }
      if (c == label) {
        /* Class labels go through float: beyond 2^24 they would not survive it. */
        if (src->target_elems != 1 && (v != floor(v) || v < 0 || v > 16777216.0)) {
          if (!bad_line) { /* reported at the end, unless the labels turn out to be names */
            bad_line = line;
            bad_col = c;
            cell_text(&cells[c], bad_text, 64);
          }
          v = 0;
        }
        lab[n] = (float)v;
      } else {
        *row++ = (float)v;
      }
    }
    n++;
  }
  if (ncols < 0) {
    sn_fail(err, "%s: no rows (the file is empty)", path);
    goto done;
  }
  if (n == 0) {
    sn_fail(err, "%s: no data rows after the header", path);
    goto done;
  }
  if (classify && !by_name && bad_line) {
    sn_fail(err, "%s:%lld: label %s: '%s' is not a class index (an integer >= 0)%s", path,
            (long long)bad_line, col_name(cbuf, sizeof cbuf, bad_col, hdr), bad_text,
            src->target_elems > 1
                ? ""
                : "; hint: for real-valued targets use a regression loss such as mse");
    goto done;
  }

  int64_t nf = labels ? ncols - 1 : ncols;
  out->n = n;
  out->rank = 1;
  out->shape[0] = nf;
  out->shape[1] = out->shape[2] = out->shape[3] = 1;
  out->sample_elems = nf;
  out->x = x;
  x = NULL;
  if (labels && src->target_elems == 1) {
    out->t = lab;
    lab = NULL;
    out->target_elems = 1;
  } else if (labels && by_name) {
    if (names_to_classes(src, path, label_cells, lines, n, out, err)) {
      sn_dataset_free(out);
      goto done;
    }
  } else if (labels) {
    out->y = malloc((size_t)n * sizeof(int32_t));
    if (!out->y) {
      sn_fail(err, "%s: out of memory", path);
      sn_dataset_free(out);
      goto done;
    }
    int32_t maxl = 0;
    for (int64_t i = 0; i < n; i++) {
      out->y[i] = (int32_t)lab[i];
      if (out->y[i] > maxl) maxl = out->y[i];
    }
    out->classes = maxl + 1;
  }
  snprintf(out->origin, sizeof out->origin, "%s", path);
  rc = 0;
done:
  free(text);
  free(cells);
  free(hdr);
  free(x);
  free(lab);
  free(label_cells);
  free(lines);
  return rc;
}
