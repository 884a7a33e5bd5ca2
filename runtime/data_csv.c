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
 * Shards: src->path may be a list of files and glob patterns (sn_paths_expand),
 * read one after the other as one set; every shard must have the first's columns
 * (and header row, cell for cell, when src->header).
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

/* A CSV source being read: its files (shards) one after the other into one set. The
 * first file fixes the columns (and the header); every other must have the same. */
typedef struct csv_read {
  const sn_source *src;
  bool labels, classify; /* classify: labels kept as text until the end */
  bool by_name;          /* class labels are names */
  sn_paths files;
  char **texts;            /* each file's text, kept: cells point into it */
  int64_t *file_first;     /* the first sample of each file */
  int file;                /* the file being read */
  cell *cells, *hdr;
  int64_t cap, ncols, label;
  float *x, *lab; /* (n, features), (n) label values */
  int64_t xcap, tcap, n;
  cell *label_cells; /* (n) the label cells */
  int64_t *lines;    /* (n) their lines */
  int64_t ncap;
  int64_t bad_line, bad_col, bad_n; /* the first label that is a number but not a class index */
  char bad_text[80];
} csv_read;

static const char *sample_file(const csv_read *r, int64_t i) {
  int f = 0;
  while (f + 1 <= r->file && r->file_first[f + 1] <= i) f++;
  return r->files.v[f];
}

/* Class labels by name: y[i] from names[i] through src's table, or through the
 * table of the distinct names made here (then out->class_names). lines[i]: the
 * line of sample i, for messages. */
static int names_to_classes(const csv_read *r, sn_dataset *out, sn_error *err) {
  const cell *names = r->label_cells;
  const int64_t n = r->n;
  const char *path = r->files.v[0];
  char tbuf[80];
  const char *const *table = r->src->class_names;
  int k = r->src->n_class_names;
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
                     sample_file(r, i), (long long)r->lines[i], cell_text(&names[i], tbuf, 64), k,
                     known);
    }
    out->y[i] = c;
  }
  out->classes = k;
  return 0;
}

/* The label column of the first row's cells (a name from the header, or a position). */
static int csv_label_column(csv_read *r, const char *path, int64_t line, sn_error *err) {
  const sn_source *src = r->src;
  char tbuf[80];
  if (src->label_col[0]) {
    for (int64_t c = 0; c < r->ncols && r->label < 0; c++)
      if (r->cells[c].len == strlen(src->label_col) &&
          !memcmp(r->cells[c].s, src->label_col, r->cells[c].len))
        r->label = c;
    if (r->label >= 0) return 0;
    char names[512] = "";
    size_t k = 0;
    for (int64_t c = 0; c < r->ncols && k + 80 < sizeof names; c++)
      k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", c ? ", " : "",
                            cell_text(&r->cells[c], tbuf, 64));
    return sn_fail(err, "%s:%lld: no column named '%s' in the header (columns: %s)", path,
                   (long long)line, src->label_col, names);
  }
  int li = src->label_index;
  if (li < -1 || li >= r->ncols)
    return sn_fail(err,
                   "%s: label column %d is out of range: the file has %lld columns (0..%lld, or "
                   "-1 for the last)",
                   path, li, (long long)r->ncols, (long long)r->ncols - 1);
  r->label = li < 0 ? r->ncols - 1 : li;
  return 0;
}

/* The first row of the first file: it fixes the columns, and may be the header. */
static int csv_first_row(csv_read *r, const char *path, int64_t line, int64_t nc, sn_error *err) {
  r->ncols = nc;
  if (nc >= MAX_COLS)
    return sn_fail(err, "%s:%lld: more than %d columns", path, (long long)line, MAX_COLS - 1);
  if (r->labels && nc < 2)
    return sn_fail(err,
                   "%s:%lld: one column only; a labelled csv needs at least a feature and the "
                   "label",
                   path, (long long)line);
  if (r->labels && csv_label_column(r, path, line, err)) return -1;
  if (!r->src->header) return 0;
  r->hdr = malloc((size_t)nc * sizeof *r->hdr);
  if (!r->hdr) return sn_fail(err, "%s: out of memory", path);
  memcpy(r->hdr, r->cells, (size_t)nc * sizeof *r->hdr);
  return 0;
}

/* The first row of a later shard: the same columns, and the same header. */
static int csv_shard_row(csv_read *r, const char *path, int64_t line, int64_t nc, sn_error *err) {
  const char *first = r->files.v[0];
  if (nc != r->ncols)
    return sn_fail(err, "%s:%lld: %lld columns, but the first shard %s has %lld", path,
                   (long long)line, (long long)nc, first, (long long)r->ncols);
  for (int64_t c = 0; r->hdr && c < nc; c++)
    if (cell_cmp(&r->cells[c], &r->hdr[c])) {
      char a[80], b[80];
      return sn_fail(err,
                     "%s:%lld: column %lld is '%s' in the header, but '%s' in the first shard %s; "
                     "every shard must have the first's columns",
                     path, (long long)line, (long long)c + 1, cell_text(&r->cells[c], a, 64),
                     cell_text(&r->hdr[c], b, 64), first);
    }
  return 0;
}

/* Room for one more sample. */
static int csv_grow(csv_read *r, const char *path, int64_t line, sn_error *err) {
  int64_t nf = r->labels ? r->ncols - 1 : r->ncols;
  if (grow(&r->x, &r->xcap, (r->n + 1) * nf) || (r->labels && grow(&r->lab, &r->tcap, r->n + 1)))
    return sn_fail(err, "%s: out of memory at line %lld", path, (long long)line);
  if (r->classify && r->n + 1 > r->ncap) {
    int64_t nc2 = r->ncap ? 2 * r->ncap : 1024;
    cell *nn = realloc(r->label_cells, (size_t)nc2 * sizeof *r->label_cells);
    if (nn) r->label_cells = nn;
    int64_t *nl = nn ? realloc(r->lines, (size_t)nc2 * sizeof *r->lines) : NULL;
    if (nl) r->lines = nl;
    if (!nn || !nl) return sn_fail(err, "%s: out of memory at line %lld", path, (long long)line);
    r->ncap = nc2;
  }
  return 0;
}

/* A bad cell: not a number, empty or not finite. */
static int csv_bad_cell(const csv_read *r, const char *path, int64_t line, int64_t c, int bad,
                        sn_error *err) {
  char cbuf[160], tbuf[80];
  const cell *cl = &r->cells[c];
  const char *hint = "";
  if (!r->src->header && r->n == 0 && bad == 1 && cl->len > 0)
    hint = "; hint: if the first row holds column names, set header: true";
  if (cl->len == 0)
    return sn_fail(err, "%s:%lld: %s is empty (missing values are not supported)%s", path,
                   (long long)line, col_name(cbuf, sizeof cbuf, c, r->hdr), hint);
  return sn_fail(err, "%s:%lld: %s: '%s' is not a %snumber%s", path, (long long)line,
                 col_name(cbuf, sizeof cbuf, c, r->hdr), cell_text(cl, tbuf, 64),
                 bad == 2 ? "finite " : "", hint);
}

/* One data row's cells into sample r->n. */
static int csv_row(csv_read *r, const char *path, int64_t line, sn_error *err) {
  char cbuf[160], tbuf[80];
  if (csv_grow(r, path, line, err)) return -1;
  int64_t nf = r->labels ? r->ncols - 1 : r->ncols;
  float *row = r->x + r->n * nf;
  for (int64_t c = 0; c < r->ncols; c++) {
    double v;
    const cell *cl = &r->cells[c];
    int bad = cell_number(cl, &v);
    if (r->classify && c == r->label) {
      r->label_cells[r->n] = *cl;
      r->lines[r->n] = line;
      if (cl->len == 0)
        return sn_fail(err, "%s:%lld: label %s is empty (missing values are not supported)", path,
                       (long long)line, col_name(cbuf, sizeof cbuf, c, r->hdr));
      if (bad == 1) {
        r->by_name = true; /* a name: all labels are names */
        r->lab[r->n] = 0;
        continue;
      }
    }
    if (bad) return csv_bad_cell(r, path, line, c, bad, err);
    if (fabs(v) > FLT_MAX) /* finite as a double, inf as the f32 we store */
      return sn_fail(err, "%s:%lld: %s: '%s' is beyond the float32 range", path, (long long)line,
                     col_name(cbuf, sizeof cbuf, c, r->hdr), cell_text(cl, tbuf, 64));
    if (c != r->label) {
      *row++ = (float)v;
      continue;
    }
    /* Class labels go through float: beyond 2^24 they would not survive it. */
    if (r->src->target_elems != 1 && (v != floor(v) || v < 0 || v > 16777216.0)) {
      if (!r->bad_line) { /* reported at the end, unless the labels turn out to be names */
        r->bad_line = line;
        r->bad_col = c;
        r->bad_n = r->n;
        cell_text(cl, r->bad_text, 64);
      }
      v = 0;
    }
    r->lab[r->n] = (float)v;
  }
  r->n++;
  return 0;
}

/* One file's rows; stops at src->limit samples. */
static int csv_file(csv_read *r, const char *path, sn_error *err) {
  size_t len;
  char *text = read_text(path, &len, err);
  if (!text) return -1;
  r->texts[r->file] = text;
  r->file_first[r->file] = r->n;
  const bool first_file = r->file == 0;
  bool first_row = true;
  int64_t first_line = 0;
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
    if (memchr(q, 0, (size_t)(le - q)))
      return sn_fail(err, "%s:%lld: a NUL byte: this is not a text file", path, (long long)line);
    int64_t nc = split_line(q, le, &r->cells, &r->cap);
    if (nc == -2) return sn_fail(err, "%s: out of memory", path);
    if (nc < 0)
      return sn_fail(err,
                     "%s:%lld: a quoted cell is not closed before the next comma or the line's end",
                     path, (long long)line);
    if (first_row) {
      first_row = false;
      first_line = line;
      int bad = first_file ? csv_first_row(r, path, line, nc, err)
                           : csv_shard_row(r, path, line, nc, err);
      if (bad) return -1;
      if (r->src->header) continue;
    }
    if (nc != r->ncols)
      return sn_fail(err, "%s:%lld: %lld columns, but the first row (line %lld) has %lld", path,
                     (long long)line, (long long)nc, (long long)first_line,
                     (long long)r->ncols);
    if (r->src->limit > 0 && r->n >= r->src->limit) break;
    if (csv_row(r, path, line, err)) return -1;
  }
  if (first_row) return sn_fail(err, "%s: no rows (the file is empty)", path);
  return 0;
}

/* The rows read into out: features, and labels, targets or class names. */
static int csv_finish(csv_read *r, sn_dataset *out, sn_error *err) {
  const char *path = r->files.v[0];
  char cbuf[160];
  if (r->n == 0) return sn_fail(err, "%s: no data rows after the header", path);
  if (r->classify && !r->by_name && r->bad_line)
    return sn_fail(err, "%s:%lld: label %s: '%s' is not a class index (an integer >= 0)%s",
                   sample_file(r, r->bad_n), (long long)r->bad_line,
                   col_name(cbuf, sizeof cbuf, r->bad_col, r->hdr), r->bad_text,
                   r->src->target_elems > 1
                       ? ""
                       : "; hint: for real-valued targets use a regression loss such as mse");
  int64_t nf = r->labels ? r->ncols - 1 : r->ncols;
  out->n = r->n;
  out->rank = 1;
  out->shape[0] = nf;
  out->shape[1] = out->shape[2] = out->shape[3] = 1;
  out->sample_elems = nf;
  out->x = r->x;
  r->x = NULL;
  char label[4200];
  snprintf(out->origin, sizeof out->origin, "%s",
           r->files.n > 1 ? sn_paths_label(r->src->path[0] ? r->src->path : r->src->images, label,
                                           sizeof label)
                          : path);
  if (r->labels && r->src->target_elems == 1) {
    out->t = r->lab;
    r->lab = NULL;
    out->target_elems = 1;
    return 0;
  }
  if (r->labels && r->by_name) return names_to_classes(r, out, err);
  if (!r->labels) return 0;
  out->y = malloc((size_t)r->n * sizeof(int32_t));
  if (!out->y) return sn_fail(err, "%s: out of memory", path);
  int32_t maxl = 0;
  for (int64_t i = 0; i < r->n; i++) {
    out->y[i] = (int32_t)r->lab[i];
    if (out->y[i] > maxl) maxl = out->y[i];
  }
  out->classes = maxl + 1;
  return 0;
}

static void csv_read_free(csv_read *r) {
  for (int i = 0; r->texts && i < r->files.n; i++) free(r->texts[i]);
  sn_paths_free(&r->files);
  void *owned[] = {r->texts, r->file_first, r->cells,       r->hdr,
                   r->x,     r->lab,        r->label_cells, r->lines};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
}

int sn_dataset_csv(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  const char *list = src->path[0] ? src->path : src->images;
  if (!list[0]) return sn_fail(err, "a csv source needs a path");
  char lbuf[4200];
  if (src->label_col[0] && !src->header && !src->no_labels)
    return sn_fail(err,
                   "%s: the label column is given by name ('%s') but the file has no header "
                   "row; hint: set header: true, or give the label by position",
                   sn_paths_label(list, lbuf, sizeof lbuf), src->label_col);
  csv_read r = {.src = src, .labels = !src->no_labels, .ncols = -1, .label = -1};
  r.classify = r.labels && src->target_elems != 1;
  r.by_name = src->class_names != NULL;
  if (sn_paths_expand(list, &r.files, err)) return -1;
  r.texts = calloc((size_t)r.files.n, sizeof *r.texts);
  r.file_first = calloc((size_t)r.files.n, sizeof *r.file_first);
  int rc = r.texts && r.file_first ? 0 : sn_fail(err, "%s: out of memory", r.files.v[0]);
  for (r.file = 0; !rc && r.file < r.files.n; r.file++) {
    if (src->limit > 0 && r.n >= src->limit) break;
    rc = csv_file(&r, r.files.v[r.file], err);
  }
  r.file--; /* the last file read */
  if (!rc) rc = csv_finish(&r, out, err);
  if (rc) sn_dataset_free(out);
  csv_read_free(&r);
  return rc ? -1 : 0;
}
