/* NPY data sets: NumPy's own file format (numpy.save), one array per file.
 *
 * The format (https://numpy.org/devdocs/reference/generated/numpy.lib.format.html):
 *
 *   6 bytes   magic "\x93NUMPY"
 *   2 bytes   version major, minor (1.0, 2.0 or 3.0)
 *   2 or 4    header length, little-endian (2 bytes in version 1, else 4)
 *   header    a Python dict literal, e.g.
 *             {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
 *   the rest  the elements, C order (last index fastest)
 *
 * We read little-endian (or byte-sized) integers and floats, C order only; anything
 * else (big-endian, Fortran order, structured or object arrays, a size that does not
 * match the shape) is a clear error with a hint on how to save the array instead.
 *
 * A data set is x.npy (n, ...) and y.npy: (n) class labels, or for float targets
 * (n) / (n, k). x stays as stored (read per batch, data_store.c) and is converted per
 * batch; y is converted once to int32, t to f32. */
#include "data_store.h"
#include "half.h"
#include "specnet/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER (1 << 20)         /* bytes: numpy's own limit is far lower */
#define NPY_MAX_ELEMS (INT64_C(1) << 34) /* elements per array we agree to load */

typedef sn_stype npy_type; /* kind 'u' unsigned, 'i' signed, 'f' float; size bytes */

/* ---------------------------------------------------------------------------
 * The header dict */

typedef struct hdr_parse {
  const char *p, *end;
} hdr_parse;

static void skip_ws(hdr_parse *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

/* A quoted Python string into buf; false on malformed input. */
static bool parse_str(hdr_parse *h, char *buf, size_t cap) {
  skip_ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (n + 1 >= cap) return false;
    buf[n++] = *h->p++;
  }
  if (h->p >= h->end) return false;
  h->p++;
  buf[n] = 0;
  return true;
}

static bool eat(hdr_parse *h, char c) {
  skip_ws(h);
  if (h->p < h->end && *h->p == c) {
    h->p++;
    return true;
  }
  return false;
}

/* The value of one key we do not read: skipped up to the next top-level comma or
 * the closing brace. */
static bool skip_value(hdr_parse *h) {
  int depth = 0;
  for (; h->p < h->end; h->p++) {
    char c = *h->p;
    if (c == '\'' || c == '"') {
      const char *q = memchr(h->p + 1, c, (size_t)(h->end - h->p - 1));
      if (!q) return false;
      h->p = q;
    } else if (c == '(' || c == '[' || c == '{') {
      depth++;
    } else if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) return true;
      depth--;
    } else if (c == ',' && depth == 0) {
      return true;
    }
  }
  return false;
}

typedef struct npy_header {
  char descr[32];
  int fortran; /* -1 missing */
  int ndim;    /* -1 missing */
  int64_t shape[8];
  bool descr_not_str;
} npy_header;

static int parse_header(const char *path, const char *text, size_t len, npy_header *out,
                        sn_error *err) {
  hdr_parse h = {text, text + len};
  out->descr[0] = 0;
  out->fortran = -1;
  out->ndim = -1;
  out->descr_not_str = false;
  if (!eat(&h, '{')) return sn_fail(err, "%s: the npy header is not a dict: %.60s", path, text);
  for (;;) {
    if (eat(&h, '}')) break;
    char key[64];
    if (!parse_str(&h, key, sizeof key) || !eat(&h, ':'))
      return sn_fail(err, "%s: malformed npy header: %.80s", path, text);
    skip_ws(&h);
    if (!strcmp(key, "descr")) {
      if (h.p < h.end && (*h.p == '[' || *h.p == '{')) {
        out->descr_not_str = true;
        if (!skip_value(&h)) return sn_fail(err, "%s: malformed npy header: %.80s", path, text);
      } else if (!parse_str(&h, out->descr, sizeof out->descr)) {
        return sn_fail(err, "%s: malformed descr in the npy header: %.80s", path, text);
      }
    } else if (!strcmp(key, "fortran_order")) {
      if (h.end - h.p >= 4 && !memcmp(h.p, "True", 4)) {
        out->fortran = 1;
        h.p += 4;
      } else if (h.end - h.p >= 5 && !memcmp(h.p, "False", 5)) {
        out->fortran = 0;
        h.p += 5;
      } else {
        return sn_fail(err, "%s: fortran_order is neither True nor False: %.80s", path, text);
      }
    } else if (!strcmp(key, "shape")) {
      if (!eat(&h, '(')) return sn_fail(err, "%s: shape is not a tuple: %.80s", path, text);
      out->ndim = 0;
      for (;;) {
        if (eat(&h, ')')) break;
        skip_ws(&h);
        char *e;
        errno = 0;
        long long v = strtoll(h.p, &e, 10);
        if (e == h.p || errno || v < 0)
          return sn_fail(err, "%s: bad dimension in the npy shape: %.80s", path, text);
        if (out->ndim == 8) return sn_fail(err, "%s: more than 8 dimensions", path);
        out->shape[out->ndim++] = v;
        h.p = e;
        if (h.p < h.end && (*h.p == 'L' || *h.p == 'l')) h.p++; /* Python 2 longs */
        if (!eat(&h, ',')) {
          if (!eat(&h, ')')) return sn_fail(err, "%s: malformed shape: %.80s", path, text);
          break;
        }
      }
    } else if (!skip_value(&h)) {
      return sn_fail(err, "%s: malformed npy header: %.80s", path, text);
    }
    if (!eat(&h, ',')) {
      if (!eat(&h, '}')) return sn_fail(err, "%s: malformed npy header: %.80s", path, text);
      break;
    }
  }
  if (out->descr_not_str)
    return sn_fail(err,
                   "%s: a structured array (descr is a list of fields); only plain numeric "
                   "arrays are supported; hint: save one field, np.save(path, a['x'])",
                   path);
  if (!out->descr[0] || out->fortran < 0 || out->ndim < 0)
    return sn_fail(err, "%s: the npy header lacks %s", path,
                   !out->descr[0]     ? "'descr'"
                   : out->fortran < 0 ? "'fortran_order'"
                                      : "'shape'");
  return 0;
}

static int parse_descr(const char *path, const char *d, npy_type *t, sn_error *err) {
  char order = d[0];
  const char *hint = "hint: save it as float32, np.save(path, a.astype('<f4'))";
  if (order == '>' && strcmp(d + 1, "u1") && strcmp(d + 1, "i1") && strcmp(d + 1, "b1"))
    return sn_fail(err, "%s: dtype '%s' is big-endian; only little-endian arrays are read; %s",
                   path, d, hint);
  if (order != '<' && order != '|' && order != '=' && order != '>')
    return sn_fail(err, "%s: dtype '%s' is not understood; %s", path, d, hint);
  char kind = d[1];
  char *e;
  long size = strtol(d + 2, &e, 10);
  if (*e || e == d + 2) return sn_fail(err, "%s: dtype '%s' is not understood; %s", path, d, hint);
  bool ok = ((kind == 'u' || kind == 'i') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
            (kind == 'f' && (size == 2 || size == 4 || size == 8)) || (kind == 'b' && size == 1);
  if (!ok)
    return sn_fail(err,
                   "%s: dtype '%s' is not supported (supported: uint8, int8, (u)int16, "
                   "(u)int32, (u)int64, float16, float32, float64, bool); %s",
                   path, d, hint);
  t->kind = kind == 'b' ? 'u' : kind;
  t->size = (int)size;
  return 0;
}


/* Element i of raw data as a double (data may be unaligned). */
static double elem(const uint8_t *p, npy_type t, int64_t i) {
#define AS(T, CONV)                                                                                \
  do {                                                                                             \
    T v;                                                                                           \
    memcpy(&v, p + i * t.size, sizeof v);                                                          \
    return CONV;                                                                                   \
  } while (0)
  switch (t.kind * 16 + t.size) {
  case 'u' * 16 + 1: AS(uint8_t, v);
  case 'u' * 16 + 2: AS(uint16_t, v);
  case 'u' * 16 + 4: AS(uint32_t, v);
  case 'u' * 16 + 8: AS(uint64_t, (double)v);
  case 'i' * 16 + 1: AS(int8_t, v);
  case 'i' * 16 + 2: AS(int16_t, v);
  case 'i' * 16 + 4: AS(int32_t, v);
  case 'i' * 16 + 8: AS(int64_t, (double)v);
  case 'f' * 16 + 2: AS(uint16_t, sn_f16_to_f32(v));
  case 'f' * 16 + 4: AS(float, v);
  default: AS(double, v);
  }
#undef AS
}

/* ---------------------------------------------------------------------------
 * One array */

/* One array, raw: its type, shape and count * t.size bytes (malloc'd) in *raw, or
 * (header_only) none read: the data starts at byte data_start of the file. */
typedef struct npy_array {
  npy_type t;
  int ndim;
  int64_t shape[8]; /* unused dims 1 */
  int64_t count;    /* elements read (after limit) */
  int64_t rows;     /* shape[0] of the file (before limit) */
  int64_t data_start;
  uint8_t *raw;
} npy_array;

/* The magic, version and header length of f: *hlen bytes of header dict from byte
 * *hstart. */
static int npy_preamble(FILE *f, const char *path, int64_t fsize, int64_t *hlen, int64_t *hstart,
                        sn_error *err) {
  uint8_t pre[12];
  size_t got = fread(pre, 1, 10, f);
  if (got < 10 || memcmp(pre, "\x93NUMPY", 6))
    return sn_fail(err, "%s: not an npy file (it does not start with \\x93NUMPY)%s", path,
                   got >= 2 && pre[0] == 'P' && pre[1] == 'K'
                       ? "; an .npz archive? hint: np.save one array per file"
                       : "");
  int major = pre[6];
  if (major == 1) {
    *hlen = pre[8] | (pre[9] << 8);
    *hstart = 10;
  } else if (major == 2 || major == 3) {
    if (fread(pre + 10, 1, 2, f) != 2) return sn_fail(err, "%s: truncated npy header", path);
    *hlen = (int64_t)pre[8] | (int64_t)pre[9] << 8 | (int64_t)pre[10] << 16 |
            (int64_t)pre[11] << 24;
    *hstart = 12;
  } else {
    return sn_fail(err, "%s: npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                   path, major, pre[7]);
  }
  if (*hlen > NPY_MAX_HEADER || *hstart + *hlen > fsize)
    return sn_fail(err,
                   "%s: truncated: the npy header length %lld runs past the end of the %lld-byte "
                   "file",
                   path, (long long)*hlen, (long long)fsize);
  return 0;
}

/* The header dict of f (hlen bytes) parsed: shape, type, C order. *count: the
 * elements the shape holds. */
static int npy_dict(FILE *f, const char *path, int64_t hlen, npy_header *h, npy_type *t,
                    int64_t *count, sn_error *err) {
  char *text = malloc((size_t)hlen + 1);
  if (!text || fread(text, 1, (size_t)hlen, f) != (size_t)hlen) {
    free(text);
    return sn_fail(err, "%s: cannot read the npy header", path);
  }
  text[hlen] = 0;
  int rc = parse_header(path, text, (size_t)hlen, h, err) || parse_descr(path, h->descr, t, err);
  free(text);
  if (rc) return -1;
  *count = 1;
  for (int d = 0; d < h->ndim; d++) {
    if (h->shape[d] > 0 && *count > NPY_MAX_ELEMS / h->shape[d])
      return sn_fail(err, "%s: the shape holds more than %lld elements; too large", path,
                     (long long)NPY_MAX_ELEMS);
    *count *= h->shape[d];
  }
  if (h->fortran == 1 && h->ndim > 1)
    return sn_fail(err,
                   "%s: the array is in Fortran order (fortran_order: True); only C order is "
                   "read; hint: np.save(path, np.ascontiguousarray(a))",
                   path);
  return 0;
}

/* The file's data after the header must be exactly what the shape needs. */
static int npy_size_check(const char *path, const npy_header *h, npy_type t, int64_t count,
                          int64_t have, sn_error *err) {
  const int64_t need = count * t.size;
  if (have == need) return 0;
  char shp[160];
  size_t k = (size_t)snprintf(shp, sizeof shp, "(");
  for (int d = 0; d < h->ndim && k < sizeof shp; d++)
    k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", d ? ", " : "", (long long)h->shape[d]);
  if (k < sizeof shp) snprintf(shp + k, sizeof shp - k, "%s)", h->ndim == 1 ? "," : "");
  return sn_fail(err, "%s: %s: shape %s of '%s' needs %lld bytes of data, the file holds %lld",
                 path, have < need ? "truncated" : "trailing data after the array", shp, h->descr,
                 (long long)need, (long long)have);
}

static int npy_load(const char *path, int64_t limit, bool header_only, npy_array *a,
                    sn_error *err) {
  memset(a, 0, sizeof *a);
  FILE *f = fopen(path, "rb");
  if (!f) return sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    fclose(f);
    return sn_fail(err, "%s: cannot read: not a regular file", path);
  }
  const int64_t fsize = st.st_size;
  int64_t hlen = 0, hstart = 0, count = 0;
  npy_header h;
  npy_type t;
  if (npy_preamble(f, path, fsize, &hlen, &hstart, err) ||
      npy_dict(f, path, hlen, &h, &t, &count, err) ||
      npy_size_check(path, &h, t, count, fsize - (hstart + hlen), err)) {
    fclose(f);
    return -1;
  }
  int64_t rows = h.ndim > 0 ? h.shape[0] : 1;
  if (limit > 0 && h.ndim > 0 && limit < rows) {
    count = rows ? count / rows * limit : 0;
    h.shape[0] = limit;
  }
  uint8_t *raw = NULL;
  if (!header_only) {
    raw = malloc((size_t)(count * t.size) + 1);
    int rc = !raw ? sn_fail(err, "%s: out of memory for %lld elements", path, (long long)count)
             : fread(raw, (size_t)t.size, (size_t)count, f) != (size_t)count
                 ? sn_fail(err, "%s: read error: %s", path, strerror(errno))
                 : 0;
    if (rc) {
      free(raw);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  a->rows = rows;
  a->data_start = hstart + hlen;
  a->t = t;
  a->ndim = h.ndim;
  for (int d = 0; d < 8; d++) a->shape[d] = d < h.ndim ? h.shape[d] : 1;
  a->count = count;
  a->raw = raw;
  return 0;
}

int sn_npy_read(const char *path, int64_t limit, int *ndim, int64_t shape[8], double **data,
                bool *integer, sn_error *err) {
  *data = NULL;
  npy_array a;
  if (npy_load(path, limit, false, &a, err)) return -1;
  *data = malloc((size_t)a.count * sizeof(double) + 1);
  if (!*data) {
    free(a.raw);
    return sn_fail(err, "%s: out of memory for %lld elements", path, (long long)a.count);
  }
  for (int64_t i = 0; i < a.count; i++) (*data)[i] = elem(a.raw, a.t, i);
  free(a.raw);
  *ndim = a.ndim;
  memcpy(shape, a.shape, sizeof a.shape);
  *integer = a.t.kind != 'f';
  return 0;
}

/* ---------------------------------------------------------------------------
 * A data set: x.npy and y.npy */

/* Every value of samples [j0, j0 + k) (raw: their bytes) must be finite as f32. */
static int check_finite(const char *xp, const uint8_t *raw, npy_type t, int64_t j0, int64_t k,
                        int64_t elems, sn_error *err) {
  for (int64_t i = 0; t.kind == 'f' && i < k * elems; i++) {
    double v = elem(raw, t, i);
    if (!isfinite((float)v))
      return sn_fail(err, "%s: element %lld of sample %lld is %s; every value must be finite%s", xp,
                     (long long)(i % elems), (long long)(j0 + i / elems), isnan(v) ? "nan" : "inf",
                     isfinite(v) ? " (as float32)" : "");
  }
  return 0;
}

/* Samples [lo, hi) of the store, which are samples [lo - start, hi - start) of the
 * file xp: one streaming pass of check_finite, a block of samples at a time. */
static int check_finite_stored(const char *xp, sn_store *s, int64_t start, int64_t lo, int64_t hi,
                               int64_t elems, sn_error *err) {
  const npy_type t = sn_store_type(s);
  if (t.kind != 'f' || hi <= lo) return 0;
  const int64_t block = elems * t.size >= (1 << 20) ? 1 : (1 << 20) / (elems * t.size);
  uint8_t *buf = malloc((size_t)(block * elems * t.size));
  if (!buf) return sn_fail(err, "%s: out of memory", xp);
  int rc = 0;
  for (int64_t j = lo; !rc && j < hi; j += block) {
    int64_t k = hi - j < block ? hi - j : block;
    rc = sn_store_read(s, j, k, buf, err) || check_finite(xp, buf, t, j - start, k, elems, err);
  }
  free(buf);
  return rc ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * Shards: x and y may be lists of files and glob patterns (sn_paths_expand); the
 * files in order are one data set, the i-th y file holding the labels of the i-th
 * x file. A plain path is one shard. */

/* The first shard's shape and type, which every other must have. */
typedef struct x_layout {
  const char *path;
  int ndim;
  int64_t shape[8];
  npy_type t;
  int64_t elems;
} x_layout;

static void shape_text(const npy_array *a, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int d = 1; d < a->ndim && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d > 1 ? ", " : "", (long long)a->shape[d]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
}

/* Checks one x file's header (its samples' shape and type against the first's). */
static int check_x(const char *xp, const npy_array *a, x_layout *first, sn_error *err) {
  if (a->ndim < 1 || a->ndim > 5)
    return sn_fail(err, "%s: x must have shape (samples, ...) with 1 to 5 dimensions, this one has %d",
                   xp, a->ndim);
  int64_t elems = 1;
  for (int d = 1; d < a->ndim; d++) elems *= a->shape[d];
  if (elems == 0) return sn_fail(err, "%s: samples have no elements", xp);
  if (!first->path) {
    *first = (x_layout){.path = xp, .ndim = a->ndim, .t = a->t, .elems = elems};
    memcpy(first->shape, a->shape, sizeof first->shape);
    return 0;
  }
  bool same = a->ndim == first->ndim && a->t.kind == first->t.kind && a->t.size == first->t.size;
  for (int d = 1; same && d < a->ndim; d++) same = a->shape[d] == first->shape[d];
  if (!same) {
    npy_array f0 = {.t = first->t, .ndim = first->ndim};
    memcpy(f0.shape, first->shape, sizeof f0.shape);
    char s1[96], s0[96];
    shape_text(a, s1, sizeof s1);
    shape_text(&f0, s0, sizeof s0);
    return sn_fail(err,
                   "%s: samples of shape %s and type %c%d, but the first shard %s has shape %s "
                   "and type %c%d; every shard must match the first",
                   xp, s1, a->t.kind, a->t.size * 8, first->path, s0, first->t.kind,
                   first->t.size * 8);
  }
  return 0;
}

/* The samples of every x file into out->store (checked finite up to `limit`
 * samples), shard i's count in rows[i]. */
static int x_files(const sn_paths *xf, const char *what, int64_t limit, int64_t *rows, sn_dataset *out,
                   x_layout *lay, sn_error *err) {
  memset(lay, 0, sizeof *lay);
  for (int i = 0; i < xf->n; i++) {
    const char *xp = xf->v[i];
    npy_array a;
    if (npy_load(xp, 0, true, &a, err) || check_x(xp, &a, lay, err)) return -1;
    if (a.shape[0] == 0 && xf->n == 1) return sn_fail(err, "%s: no samples (shape[0] is 0)", xp);
    const int64_t start = out->store ? out->n : 0;
    if (sn_store_add(&out->store, xp, a.data_start, a.t, a.shape[0], lay->elems, err)) return -1;
    out->n = start + a.shape[0];
    rows[i] = a.shape[0];
    int64_t hi = limit > 0 && limit < out->n ? limit : out->n;
    if (check_finite_stored(xp, out->store, start, start, hi, lay->elems, err)) return -1;
  }
  if (out->n == 0) return sn_fail(err, "%s: no samples in any file", what);
  return 0;
}

/* The y files, concatenated: *yd (n_total * k values), their layout in *ynd, *k. */
static int y_files(const sn_paths *yf, const sn_paths *xf, const int64_t *rows, double **yd,
                   int *ynd, int64_t *k, bool *yint, sn_error *err) {
  int64_t have = 0;
  for (int i = 0; i < yf->n; i++) {
    const char *yp = yf->v[i];
    int nd;
    int64_t ys[8];
    double *d;
    bool integer;
    if (sn_npy_read(yp, 0, &nd, ys, &d, &integer, err)) return -1;
    int64_t kk = nd == 2 ? ys[1] : 1;
    const char *bad = nd < 1 || nd > 2 ? "dims" : ys[0] != rows[i] ? "count"
                      : i > 0 && (nd != *ynd || kk != *k) ? "layout" : NULL;
    double *grown = bad ? NULL : realloc(*yd, (size_t)((have + ys[0]) * kk) * sizeof(double) + 1);
    if (!bad && grown) {
      *yd = grown;
      memcpy(*yd + have * kk, d, (size_t)(ys[0] * kk) * sizeof(double));
    }
    free(d);
    if (bad && !strcmp(bad, "dims"))
      return sn_fail(err, "%s: y must have shape (samples) or (samples, k), this one has %d dimensions",
                     yp, nd);
    if (bad && !strcmp(bad, "count"))
      return sn_fail(err, "sample count mismatch: %s has %lld samples but %s has %lld", xf->v[i],
                     (long long)rows[i], yp, (long long)ys[0]);
    if (bad)
      return sn_fail(err, "%s: %lld value%s per sample, but the first shard %s has %lld", yp,
                     (long long)kk, kk == 1 ? "" : "s", yf->v[0], (long long)*k);
    if (!grown) return sn_fail(err, "%s: out of memory", yp);
    *ynd = nd;
    *k = kk;
    *yint = i == 0 ? integer : *yint && integer;
    have += ys[0];
  }
  return 0;
}

/* Labels or float targets of n samples from yd (see sn_dataset_npy). */
static int set_labels(const sn_source *src, const char *yp, const double *yd, int ynd, int64_t k,
                      bool yint, int64_t n, sn_dataset *out, sn_error *err) {
  bool as_targets = src->target_elems > 0 && (ynd == 2 || !yint || src->target_elems == 1);
  if (as_targets) {
    if (k != src->target_elems)
      return sn_fail(err, "%s: %lld target values per sample, but the model's loss reads %lld", yp,
                     (long long)k, (long long)src->target_elems);
    out->t = malloc((size_t)(n * k) * sizeof(float));
    if (!out->t) return sn_fail(err, "%s: out of memory", yp);
    for (int64_t i = 0; i < n * k; i++) {
      if (!isfinite(yd[i]))
        return sn_fail(err, "%s: target %lld of sample %lld is not finite", yp, (long long)(i % k),
                       (long long)(i / k));
      out->t[i] = (float)yd[i];
    }
    out->target_elems = k;
    return 0;
  }
  /* (n, L) integers: L labels a sample, when the loss reads one per position */
  const int64_t L = ynd == 2 && yint && src->label_elems > 1 && k == src->label_elems ? k : 1;
  if (ynd == 2 && L == 1 && src->label_elems > 1)
    return sn_fail(err,
                   "%s: shape (%lld, %lld)%s, but the model's loss reads integer class labels of "
                   "shape (%lld, %lld), one per position",
                   yp, (long long)n, (long long)k, yint ? "" : " of floats", (long long)n,
                   (long long)src->label_elems);
  if (ynd == 2 && L == 1)
    return sn_fail(err,
                   "%s: shape (%lld, %lld) holds float targets, but the model's loss reads class "
                   "labels of shape (%lld); hint: np.save(path, y.argmax(1))",
                   yp, (long long)n, (long long)k, (long long)n);
  out->y = malloc((size_t)(n * L) * sizeof(int32_t));
  if (!out->y) return sn_fail(err, "%s: out of memory", yp);
  if (L > 1) out->label_elems = L;
  int32_t maxl = 0;
  for (int64_t i = 0; i < n * L; i++) {
    double v = yd[i];
    if (v >= 2147483647.0 && v == floor(v)) /* classes = largest + 1 must fit an int */
      return sn_fail(err, "%s: element %lld is %.17g, beyond the largest class label 2147483646",
                     yp, (long long)i, v);
    if (!(v >= 0 && v == floor(v)))
      return sn_fail(err, "%s: element %lld is %.17g; class labels must be integers >= 0%s", yp,
                     (long long)i, v,
                     yint ? "" : "; hint: for real-valued targets use a regression loss such as mse");
    out->y[i] = (int32_t)v;
    if (out->y[i] > maxl) maxl = out->y[i];
  }
  out->classes = maxl + 1;
  return 0;
}

int sn_labels_from_values(const sn_source *src, const char *where, const double *yd, int ynd,
                          int64_t k, bool yint, int64_t n, sn_dataset *out, sn_error *err) {
  return set_labels(src, where, yd, ynd, k, yint, n, out, err);
}

int sn_dataset_npy(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  char xl[4200], yl[4200];
  const char *xp = sn_paths_label(src->images, xl, sizeof xl);
  const char *yp = sn_paths_label(src->labels, yl, sizeof yl);
  if (!src->images[0]) return sn_fail(err, "an npy source needs x (the samples file)");
  bool labels = !src->no_labels;
  if (labels && !src->labels[0])
    return sn_fail(err, "an npy source needs y (the labels or targets file)");
  sn_shards f;
  if (sn_shards_open(src->images, labels ? src->labels : NULL, "x", "y", &f, err)) return -1;
  int rc = -1, ynd = 0;
  int64_t k = 1;
  double *yd = NULL;
  bool yint = false;
  x_layout lay;
  if (x_files(&f.x, xp, src->limit, f.rows, out, &lay, err)) goto done;
  if (labels && y_files(&f.y, &f.x, f.rows, &yd, &ynd, &k, &yint, err)) goto done;
  if (src->limit > 0 && src->limit < out->n) out->n = src->limit;
  out->rank = lay.ndim > 1 ? lay.ndim - 1 : 1;
  for (int d = 0; d < 4; d++) out->shape[d] = d + 1 < lay.ndim ? lay.shape[d + 1] : 1;
  out->sample_elems = lay.elems;
  snprintf(out->origin, sizeof out->origin, "%s", xp);
  if (sn_store_in_memory() && sn_dataset_to_memory(out, err)) goto done;
  if (labels && set_labels(src, f.y.n == 1 ? f.y.v[0] : yp, yd, ynd, k, yint, out->n, out, err))
    goto done;
  if (labels) snprintf(out->label_origin, sizeof out->label_origin, "%s", f.y.n == 1 ? f.y.v[0] : yp);
  rc = 0;
done:
  if (rc) sn_dataset_free(out);
  sn_shards_free(&f);
  free(yd);
  return rc;
}
