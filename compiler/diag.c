/* Diagnostics: collects the errors and warnings of a run, each with a source
 * position and an optional hint, and prints them as
 *
 *   path:LINE:COL: error: MESSAGE
 *   path:LINE:COL: hint: did you mean 'units'?
 *
 * Also the "did you mean" search (sn_closest). Not for deciding what is an error:
 * the passes do that; this file only records and prints. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

/* ---------------------------------------------------------------------------
 * Recording */

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int len = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (len < 0) return NULL;
  char *s = malloc((size_t)len + 1);
  if (s) vsnprintf(s, (size_t)len + 1, fmt, ap);
  return s;
}

int sn_fail_buf(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return -1;
}

/* Entries keep their own copy of the file name, so they outlive the tree (or
 * string) the location pointed into. Runs see a handful of files: a list does. */
static const char *intern_file(sn_diag *d, const char *file) {
  if (!file) return NULL;
  for (int i = 0; i < d->n_files; i++)
    if (strcmp(d->files[i], file) == 0) return d->files[i];
  char **files = realloc(d->files, sizeof *files * (size_t)(d->n_files + 1));
  if (!files) return NULL;
  d->files = files;
  char *copy = strdup(file);
  if (!copy) return NULL;
  d->files[d->n_files++] = copy;
  return copy;
}

static void add(sn_diag *d, sn_severity sev, sn_loc loc, const char *fmt, va_list ap) {
  /* Count first: even when memory runs out the caller must see the failure. */
  if (sev == SN_ERROR)
    d->errors++;
  else
    d->warnings++;
  if (d->n == d->cap) {
    int cap = d->cap ? d->cap * 2 : 16;
    sn_diag_entry *v = realloc(d->v, sizeof *v * (size_t)cap);
    if (!v) return;
    d->v = v;
    d->cap = cap;
  }
  char *msg = vformat(fmt, ap);
  if (!msg) return;
  loc.file = intern_file(d, loc.file);
  d->v[d->n++] = (sn_diag_entry){.sev = sev, .loc = loc, .msg = msg, .hint = NULL};
}

void sn_diag_error(sn_diag *d, sn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, SN_ERROR, loc, fmt, ap);
  va_end(ap);
}

void sn_diag_warning(sn_diag *d, sn_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, SN_WARNING, loc, fmt, ap);
  va_end(ap);
}

void sn_diag_hint(sn_diag *d, const char *fmt, ...) {
  if (d->n == 0 || d->v[d->n - 1].hint) return;
  va_list ap;
  va_start(ap, fmt);
  d->v[d->n - 1].hint = vformat(fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------------------
 * Printing */

static void print_loc(sn_loc loc, FILE *out) {
  if (!loc.file) {
    fputs("specnet: ", out);
    return;
  }
  if (loc.line <= 0)
    fprintf(out, "%s: ", loc.file);
  else if (loc.col <= 0)
    fprintf(out, "%s:%d: ", loc.file, loc.line);
  else
    fprintf(out, "%s:%d:%d: ", loc.file, loc.line, loc.col);
}

static void print_entry(const sn_diag_entry *e, FILE *out) {
  print_loc(e->loc, out);
  fprintf(out, "%s: %s\n", e->sev == SN_ERROR ? "error" : "warning", e->msg);
  if (e->hint) {
    print_loc(e->loc, out);
    fprintf(out, "hint: %s\n", e->hint);
  }
}

static int *position_order(const sn_diag *d, int first);

/* In position order (file, line, column; entries without one last, the order they
 * were found among equals), whatever pass found them: a warning of the graph pass
 * at line 5 prints before an error of the parser at line 9. */
void sn_diag_print(const sn_diag *d, FILE *out) {
  int *order = position_order(d, 0);
  for (int i = 0; i < d->n; i++) print_entry(&d->v[order ? order[i] : i], out);
  free(order);
}

char *sn_diag_text(const sn_diag *d) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  sn_diag_print(d, f);
  fclose(f);
  return buf;
}

void sn_diag_free(sn_diag *d) {
  for (int i = 0; i < d->n; i++) {
    free(d->v[i].msg);
    free(d->v[i].hint);
  }
  for (int i = 0; i < d->n_files; i++) free(d->files[i]);
  free(d->v);
  free(d->files);
  *d = (sn_diag){0};
}

/* ---------------------------------------------------------------------------
 * "Did you mean": edit distance with adjacent transpositions counted as one edit
 * (optimal string alignment), so "desne" is one step from "dense". */

enum { CLOSEST_MAX_LEN = 64 }; /* longer words get no suggestion */

static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  /* Three rolling rows: the one before last is needed for transpositions. */
  int rows[3][CLOSEST_MAX_LEN + 1];
  int *pp = rows[0], *p = rows[1], *c = rows[2];
  for (int j = 0; j <= lb; j++) p[j] = j;
  for (int i = 1; i <= la; i++) {
    c[0] = i;
    for (int j = 1; j <= lb; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = p[j - 1] + cost;
      if (p[j] + 1 < v) v = p[j] + 1;
      if (c[j - 1] + 1 < v) v = c[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      c[j] = v;
    }
    int *t = pp;
    pp = p;
    p = c;
    c = t;
  }
  return p[lb];
}

const char *sn_closest(const char *word, const char *const *cands, int n) {
  size_t len = strlen(word);
  if (len == 0 || len > CLOSEST_MAX_LEN) return NULL;
  /* A third of the word may be wrong (at least one letter), but never all of it:
   * "x" is not a typo of "y". */
  int limit = (int)len / 3 > 1 ? (int)len / 3 : 1;
  const char *best = NULL;
  int best_d = limit + 1;
  for (int i = 0; i < n; i++) {
    if (!cands[i] || strlen(cands[i]) > CLOSEST_MAX_LEN) continue;
    int dist = edit_distance(word, cands[i]);
    if (dist < best_d && dist < (int)len) {
      best = cands[i];
      best_d = dist;
    }
  }
  return best;
}

/* ---------------------------------------------------------------------------
 * Ordering */

typedef struct keyed {
  int file, line, col, index;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  if (a->file != b->file) return a->file < b->file ? -1 : 1;
  if (a->line < 0) return a->index < b->index ? -1 : a->index > b->index; /* --set: as given */
  /* a file-level entry (no line) sorts before the lines of its file */
  if (a->line != b->line) return a->line < b->line ? -1 : 1;
  if (a->col != b->col) return a->col < b->col ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* The indices of entries [first, n) in position order (malloc'd; NULL when there
 * are none or memory ran out: then the order found stands). */
static int *position_order(const sn_diag *d, int first) {
  int m = d->n - first;
  if (m < 1) return NULL;
  keyed *k = malloc(sizeof *k * (size_t)m);
  int *order = malloc(sizeof *order * (size_t)m);
  if (!k || !order) {
    free(k);
    free(order);
    return NULL;
  }
  for (int i = 0; i < m; i++) {
    const sn_diag_entry *e = &d->v[first + i];
    int f = d->n_files; /* files in the order first named; unnamed locations last */
    for (int j = 0; j < d->n_files; j++)
      if (d->files[j] == e->loc.file) f = j;
    /* each --set is its own line 1: they keep the order they were given in */
    bool given = e->loc.file && !strncmp(e->loc.file, "--", 2);
    k[i] = (keyed){f, given ? -1 : e->loc.line, e->loc.col, first + i};
  }
  qsort(k, (size_t)m, sizeof *k, cmp_keyed);
  for (int i = 0; i < m; i++) order[i] = k[i].index;
  free(k);
  return order;
}

void sn_diag_sort(sn_diag *d, int first) {
  if (first < 0) first = 0;
  int *order = position_order(d, first);
  sn_diag_entry *v = order ? malloc(sizeof *v * (size_t)(d->n - first)) : NULL;
  if (v) {
    for (int i = 0; i < d->n - first; i++) v[i] = d->v[order[i]];
    memcpy(d->v + first, v, sizeof *v * (size_t)(d->n - first));
  }
  free(v);
  free(order);
}
