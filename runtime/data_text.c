/* Text sources: plain text files made into token samples for sequence models.
 *
 *   {format: text, path: FILE|FOLDER|GLOB, tokenizer: bytes|chars, mode: lm|classify, ...}
 *
 * Two modes:
 *   lm        the files' text, concatenated in name order, is one token stream;
 *             a sample is a window of `context` tokens and its labels are the
 *             next token at every position (y is (n, context)). Windows are a
 *             strided sweep (fixed) or `windows` random windows drawn afresh each
 *             epoch through the loader's hook (sn_dataset.epoch_fill).
 *   classify  every record (text between lines holding only `%`, as in fortune
 *             files) is a sample of `length` tokens, truncated or padded with id 0,
 *             labelled by its category: the file's name, or the folder's name for a
 *             folder of files. Categories are numbered in name order.
 * Tokenizers:
 *   bytes     id = the byte (vocab 256); in classify mode a NUL byte is an error,
 *             since id 0 is the padding.
 *   chars     the distinct UTF-8 characters of the training source's files, sorted by
 *             code point, numbered from 0 (lm) or 1 (classify: 0 pads). Other sources
 *             use the training table (sn_source.chars); a character outside it, or
 *             text that is not UTF-8, is an error naming the file, line and byte.
 * `range: [from, to]` picks a part of the text: a span of the token stream (lm) or
 * of each category's records (classify), so a test source can take what the
 * training source leaves out. A validation split of an lm set cuts the stream by
 * position (sn_text_split), never a window in two.
 *
 * Letters: n = samples, C = context or length (tokens per sample), S = tokens in
 * the stream. Not here: batching (train.c), the model's embedding of the ids. */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_text.h"
#include "specnet/runtime.h"

/* An lm set's token stream and how its windows are cut. */
struct sn_text {
  int32_t *tok;    /* (S) token ids */
  int64_t S;       /* tokens */
  int64_t context; /* C */
  int64_t windows; /* random windows per epoch; 0: sweep */
  int64_t stride;  /* sweep step */
  int64_t limit;   /* at most this many windows; 0: all */
  uint64_t seed;
};

enum { MAX_FILES = 4096 };
static const int64_t MAX_TEXT_ELEMS = INT64_C(1) << 31; /* n x C floats at most */

/* ---------------------------------------------------------------------------
 * Files: a path, a folder or a glob pattern into a sorted list */

typedef struct entry {
  char path[4096];
  char name[256]; /* the category name: the file's or folder's base name */
  bool dir;
} entry;

typedef struct listing {
  entry *e; /* (cap), NULL until the first entry */
  int n, cap;
} listing;

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s && s[1] ? s + 1 : path;
}

static int add_entry(listing *L, const char *path, bool dir, sn_error *err) {
  if (L->n == MAX_FILES) return sn_fail(err, "%s: more than %d files", path, MAX_FILES);
  if (L->n == L->cap) {
    entry *more = realloc(L->e, (size_t)(L->cap = L->cap ? 2 * L->cap : 16) * sizeof *L->e);
    if (!more) return sn_fail(err, "out of memory");
    L->e = more;
  }
  entry *e = &L->e[L->n];
  if (snprintf(e->path, sizeof e->path, "%s", path) >= (int)sizeof e->path)
    return sn_fail(err, "%.200s...: path too long", path);
  snprintf(e->name, sizeof e->name, "%s", base_name(path));
  size_t k = strlen(e->name);
  while (k > 1 && e->name[k - 1] == '/') e->name[--k] = '\0';
  e->dir = dir;
  L->n++;
  return 0;
}

/* Whether a folder member is left out: hidden files, fortune's `.dat` indexes and
 * symbolic links to another file of the same folder (fortune's `.u8` names). */
static bool skipped(const char *dir, const char *name) {
  if (name[0] == '.' || sn_path_has_suffix(name, ".dat")) return true;
  char p[4352], target[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  if (lstat(p, &st) || !S_ISLNK(st.st_mode)) return false;
  ssize_t k = readlink(p, target, sizeof target - 1);
  if (k < 0) return false;
  target[k] = '\0';
  return strchr(target, '/') == NULL;
}

/* The members of a folder, sorted: files (and folders when `dirs`). */
static int list_dir(const char *dir, bool dirs, listing *L, sn_error *err) {
  DIR *d = opendir(dir);
  if (!d) return sn_fail(err, "%s: cannot open the folder: %s", dir, strerror(errno));
  int first = L->n, rc = 0;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (skipped(dir, de->d_name)) continue;
    char p[4352];
    snprintf(p, sizeof p, "%s%s%s", dir, sn_path_has_suffix(dir, "/") ? "" : "/", de->d_name);
    struct stat st;
    if (stat(p, &st)) continue; /* a dangling link */
    if (S_ISREG(st.st_mode) || (dirs && S_ISDIR(st.st_mode)))
      rc = add_entry(L, p, S_ISDIR(st.st_mode), err);
  }
  closedir(d);
  if (L->n > first) qsort(L->e + first, (size_t)(L->n - first), sizeof *L->e, cmp_entry);
  return rc;
}

/* What `path` names: a file, a folder's members, or a glob pattern's matches. */
static int list_inputs(const char *path, bool dirs, listing *L, sn_error *err) {
  *L = (listing){0};
  struct stat st;
  if (strpbrk(path, "*?[")) {
    glob_t g;
    int rc = glob(path, 0, NULL, &g);
    if (rc) {
      globfree(&g);
      return sn_fail(err,
                     rc == GLOB_NOMATCH ? "%s: no file matches the pattern"
                                        : "%s: cannot read the pattern's folders",
                     path);
    }
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) { /* glob sorts */
      const char *p = g.gl_pathv[i], *base = base_name(p);
      char dir[4096];
      snprintf(dir, sizeof dir, "%.*s", base > p ? (int)(base - p - 1) : 1, base > p ? p : ".");
      if (skipped(dir, base)) continue; /* as in a folder */
      if (!stat(p, &st) && (S_ISREG(st.st_mode) || (dirs && S_ISDIR(st.st_mode))))
        rc = add_entry(L, p, S_ISDIR(st.st_mode), err);
    }
    globfree(&g);
    return rc;
  }
  if (stat(path, &st)) return sn_fail(err, "%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return list_dir(path, dirs, L, err);
  if (!S_ISREG(st.st_mode)) /* a device or a pipe: /dev/zero would be read forever */
    return sn_fail(err, "%s: not a regular file (a text source reads files and folders)", path);
  return add_entry(L, path, false, err);
}

static int read_file(const char *path, char **buf, int64_t *len, sn_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  for (size_t k; b && (k = fread(b + n, 1, cap - n, f)) > 0;) {
    n += k;
    if (n == cap) {
      char *nb = realloc(b, cap *= 2);
      if (!nb) free(b);
      b = nb;
    }
  }
  bool bad = ferror(f);
  fclose(f);
  if (!b) return sn_fail(err, "%s: out of memory", path);
  if (bad) {
    free(b);
    return sn_fail(err, "%s: read error", path);
  }
  *buf = b;
  *len = (int64_t)n;
  return 0;
}

/* ---------------------------------------------------------------------------
 * Tokens */

/* The code point at p (at most `left` bytes), its length in *k; -1: not UTF-8
 * (bad lead or continuation byte, overlong, surrogate, beyond U+10FFFF, cut short). */
static int32_t utf8_next(const unsigned char *p, int64_t left, int *k) {
  unsigned c = p[0];
  int n = c < 0x80             ? 1
          : (c & 0xE0) == 0xC0 ? 2
          : (c & 0xF0) == 0xE0 ? 3
          : (c & 0xF8) == 0xF0 ? 4
                               : 0;
  if (!n || n > left) return -1;
  uint32_t v = n == 1 ? c : c & (0x7Fu >> n);
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return -1;
    v = v << 6 | (p[i] & 0x3F);
  }
  static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < least[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
  *k = n;
  return (int32_t)v;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* The 1-based line of byte `at` of buf, for messages. */
static int64_t line_of(const char *buf, int64_t at) {
  int64_t line = 1;
  for (int64_t i = 0; i < at; i++) line += buf[i] == '\n';
  return line;
}

static int not_utf8(const char *path, const char *buf, int64_t at, sn_error *err) {
  return sn_fail(
      err,
      "%s:%lld: not valid UTF-8 at byte offset %lld (byte 0x%02x); the chars tokenizer reads UTF-8 "
      "text (tokenizer: bytes reads any bytes)",
      path, (long long)line_of(buf, at), (long long)at, (unsigned char)buf[at]);
}

/* A set of code points: a bitmap over U+0000..U+10FFFF, and the members in the
 * order they were first seen. */
typedef struct charset {
  uint8_t *seen;  /* (0x110000 / 8) */
  uint32_t *list; /* (cap) */
  int n, cap;
} charset;

/* Adds the characters of buf to the set. */
static int collect_chars(const char *path, const char *buf, int64_t len, charset *set,
                         sn_error *err) {
  for (int64_t i = 0; i < len;) {
    int k;
    int32_t c = utf8_next((const unsigned char *)buf + i, len - i, &k);
    if (c < 0) return not_utf8(path, buf, i, err);
    i += k;
    if (set->seen[c >> 3] >> (c & 7) & 1) continue;
    set->seen[c >> 3] |= (uint8_t)(1u << (c & 7));
    if (set->n == set->cap) {
      uint32_t *more = realloc(set->list, (size_t)(set->cap *= 2) * sizeof(uint32_t));
      if (!more) return sn_fail(err, "out of memory");
      set->list = more;
    }
    set->list[set->n++] = (uint32_t)c;
  }
  return 0;
}

typedef struct tokenizer {
  sn_tokenizer kind;
  const uint32_t *chars; /* chars: the table, sorted */
  int n_chars;
  int first_id; /* id of chars[0]; bytes: 0 */
  bool no_nul;  /* a byte 0 is an error (it is the padding) */
} tokenizer;

/* Tokens of buf[0, len) into tok (room for len), their count in *n. `path` and
 * `base` (buf's offset in its file) name errors. */
static int tokenize(const tokenizer *T, const char *path, const char *file, int64_t base,
                    const char *buf, int64_t len, int32_t *tok, int64_t *n, sn_error *err) {
  int64_t m = 0;
  for (int64_t i = 0; i < len;) {
    const unsigned char *p = (const unsigned char *)buf + i;
    if (T->kind == SN_TOK_BYTES) {
      if (T->no_nul && !*p)
        return sn_fail(
            err,
            "%s:%lld: a NUL byte at byte offset %lld; classify mode pads with id 0, so the text "
            "may not hold byte 0",
            path, (long long)line_of(file, base + i), (long long)(base + i));
      tok[m++] = *p;
      i++;
      continue;
    }
    int k;
    int32_t c = utf8_next(p, len - i, &k);
    if (c < 0) return not_utf8(path, file, base + i, err);
    uint32_t key = (uint32_t)c;
    const uint32_t *hit = bsearch(&key, T->chars, (size_t)T->n_chars, sizeof *T->chars, cmp_u32);
    if (!hit)
      return sn_fail(
          err,
          "%s:%lld: character U+%04X at byte offset %lld is not in the vocabulary of the training "
          "text (%d characters)",
          path, (long long)line_of(file, base + i), (unsigned)c, (long long)(base + i), T->n_chars);
    tok[m++] = T->first_id + (int32_t)(hit - T->chars);
    i += k;
  }
  *n = m;
  return 0;
}

/* The chars table of the files of L, sorted by code point. */
static int build_chars(const listing *L, uint32_t **chars, int *n, sn_error *err) {
  charset set = {calloc(0x110000 / 8, 1), malloc(256 * sizeof(uint32_t)), 0, 256};
  int rc = set.seen && set.list ? 0 : sn_fail(err, "out of memory");
  for (int i = 0; i < L->n && !rc; i++) {
    char *buf;
    int64_t len;
    if ((rc = read_file(L->e[i].path, &buf, &len, err))) break;
    rc = collect_chars(L->e[i].path, buf, len, &set, err);
    free(buf);
  }
  free(set.seen);
  if (rc) {
    free(set.list);
    return rc;
  }
  qsort(set.list, (size_t)set.n, sizeof *set.list, cmp_u32);
  *chars = set.list;
  *n = set.n;
  return 0;
}

/* ---------------------------------------------------------------------------
 * lm: windows over the stream */

static int64_t sweep_count(const struct sn_text *t) {
  return t->S < t->context + 1 ? 0 : (t->S - t->context - 1) / t->stride + 1;
}

/* Window i starts at s: x = tok[s, s + C), y = tok[s + 1, s + C + 1). */
static void put_window(const struct sn_text *t, int64_t s, float *x, int32_t *y) {
  for (int64_t j = 0; j < t->context; j++) {
    x[j] = (float)t->tok[s + j];
    y[j] = t->tok[s + j + 1];
  }
}

/* The hook: this epoch's random windows (the loader calls it before each epoch). */
static void fill_epoch(const sn_dataset *ds, int epoch) {
  const struct sn_text *t = ds->text;
  const uint64_t starts = (uint64_t)(t->S - t->context); /* every s with s + C < S */
  for (int64_t i = 0; i < ds->n; i++) {
    int64_t s =
        (int64_t)(sn_rand_u64(t->seed, SN_STREAM_TEXT + (uint64_t)epoch, (uint64_t)i) % starts);
    put_window(t, s, ds->x + i * t->context, ds->y + i * t->context);
  }
}

/* (Re)makes ds's samples from its stream: the sweep, or epoch 1's random windows. */
static int make_windows(sn_dataset *ds, sn_error *err) {
  struct sn_text *t = ds->text;
  if (t->S < t->context + 1)
    return sn_fail(
        err,
        "%s: %lld tokens, but a window of context %lld needs at least %lld (its labels are the "
        "next tokens)",
        ds->origin, (long long)t->S, (long long)t->context, (long long)(t->context + 1));
  int64_t n = t->windows > 0 ? t->windows : sweep_count(t);
  if (t->limit > 0 && t->limit < n) n = t->limit;
  if (n > MAX_TEXT_ELEMS / t->context)
    return sn_fail(
        err, "%s: %lld windows of %lld tokens is too many (at most %lld values); raise stride",
        ds->origin, (long long)n, (long long)t->context, (long long)MAX_TEXT_ELEMS);
  free(ds->x);
  free(ds->y);
  ds->x = malloc((size_t)(n * t->context) * sizeof(float));   /* (n, C) */
  ds->y = malloc((size_t)(n * t->context) * sizeof(int32_t)); /* (n, C) */
  if (!ds->x || !ds->y)
    return sn_fail(err, "%s: out of memory for %lld windows", ds->origin, (long long)n);
  ds->n = n;
  if (t->windows > 0) {
    ds->epoch_fill = fill_epoch;
    fill_epoch(ds, 1);
  } else {
    ds->epoch_fill = NULL;
    for (int64_t i = 0; i < n; i++)
      put_window(t, i * t->stride, ds->x + i * t->context, ds->y + i * t->context);
  }
  return 0;
}

/* The part [from, to) of a stream of S tokens. */
static void cut(const double range[2], int64_t S, int64_t *lo, int64_t *hi) {
  bool all = range[0] == 0 && range[1] == 0;
  *lo = all ? 0 : (int64_t)floor(range[0] * (double)S);
  *hi = all ? S : (int64_t)floor(range[1] * (double)S);
}

static int load_lm(const sn_source *src, const listing *L, const tokenizer *T, sn_dataset *out,
                   sn_error *err) {
  struct sn_text *t = calloc(1, sizeof *t);
  if (!t) return sn_fail(err, "out of memory");
  out->text = t;
  t->context = src->context;
  t->windows = src->windows;
  t->stride = src->stride > 0 ? src->stride : src->context;
  t->seed = src->seed;
  t->limit = src->limit;
  int64_t cap = 0;
  for (int i = 0; i < L->n; i++) {
    char *buf;
    int64_t len, m;
    if (read_file(L->e[i].path, &buf, &len, err)) return -1;
    int32_t *tok = realloc(t->tok, (size_t)(cap + len + 1) * sizeof(int32_t));
    if (!tok) {
      free(buf);
      return sn_fail(err, "%s: out of memory", L->e[i].path);
    }
    t->tok = tok;
    cap += len;
    int rc = tokenize(T, L->e[i].path, buf, 0, buf, len, t->tok + t->S, &m, err);
    free(buf);
    if (rc) return -1;
    t->S += m;
  }
  if (t->S == 0)
    return sn_fail(err, "%s: the text is empty (no tokens in %d file%s)", src->path, L->n,
                   L->n == 1 ? "" : "s");
  int64_t lo, hi;
  cut(src->range, t->S, &lo, &hi);
  memmove(t->tok, t->tok + lo, (size_t)(hi - lo) * sizeof(int32_t));
  t->S = hi - lo;
  if (t->S == 0)
    return sn_fail(err, "%s: range [%g, %g] of the text holds no tokens", src->path, src->range[0],
                   src->range[1]);
  out->rank = 1;
  out->shape[0] = out->sample_elems = out->label_elems = t->context;
  return make_windows(out, err);
}

/* ---------------------------------------------------------------------------
 * classify: records labelled by category */

/* A category's files flattened: every file of L, a folder's files named after it. */
static int flatten(const listing *L, listing *files, sn_error *err) {
  *files = (listing){0};
  for (int i = 0; i < L->n; i++) {
    int first = files->n;
    if (!L->e[i].dir) {
      if (add_entry(files, L->e[i].path, false, err)) return -1;
    } else if (list_dir(L->e[i].path, false, files, err)) {
      return -1;
    }
    for (int j = first; j < files->n; j++)
      snprintf(files->e[j].name, sizeof files->e[j].name, "%s", L->e[i].name);
    if (files->n == first)
      return sn_fail(err, "%s: the category folder '%s' holds no files", L->e[i].path,
                     L->e[i].name);
  }
  return 0;
}

/* The next record of buf from *at: the text up to a line holding only `%` (or the
 * end), without that line and the newline before it; false at the end. */
static bool next_record(const char *buf, int64_t len, int64_t *at, int64_t *start, int64_t *rlen) {
  while (*at < len) {
    int64_t s = *at, end = len;
    *at = len;
    for (int64_t ls = s; ls < len;) { /* line by line */
      int64_t le = ls;
      while (le < len && buf[le] != '\n') le++;
      int64_t ll = le - ls - (le > ls && buf[le - 1] == '\r');
      if (ll == 1 && buf[ls] == '%') {
        end = ls;
        *at = le < len ? le + 1 : len;
        break;
      }
      ls = le + 1;
    }
    while (end > s && (buf[end - 1] == '\n' || buf[end - 1] == '\r')) end--;
    bool blank = true;
    for (int64_t i = s; i < end && blank; i++) blank = strchr(" \t\r\n", buf[i]) != NULL;
    if (!blank) {
      *start = s;
      *rlen = end - s;
      return true;
    }
  }
  return false;
}

typedef struct records {
  int32_t *tok;   /* (n, C) ids, padded with 0 */
  int32_t *label; /* (n) category, in the order of names */
  int64_t n, cap, C;
} records;

static int push_record(records *R, const int32_t *tok, int64_t m, int32_t label, sn_error *err) {
  if (R->n == R->cap) {
    const int64_t most = MAX_TEXT_ELEMS / R->C, first = (INT64_C(1) << 20) / R->C; /* about 1M ids */
    if (R->n == most)
      return sn_fail(err, "more than %lld records of %lld tokens (at most %lld tokens in all); lower length",
                     (long long)most, (long long)R->C, (long long)MAX_TEXT_ELEMS);
    R->cap = R->cap ? 2 * R->cap : first > 1024 ? 1024 : first > 1 ? first : 1;
    if (R->cap > most) R->cap = most;
    int32_t *t = realloc(R->tok, (size_t)(R->cap * R->C) * sizeof(int32_t));
    if (t) R->tok = t;
    int32_t *l = realloc(R->label, (size_t)R->cap * sizeof(int32_t));
    if (l) R->label = l;
    if (!t || !l) return sn_fail(err, "out of memory for %lld records", (long long)R->cap);
  }
  int32_t *dst = R->tok + R->n * R->C;
  for (int64_t j = 0; j < R->C; j++) dst[j] = j < m ? tok[j] : 0;
  R->label[R->n++] = label;
  return 0;
}

/* The records of one file, tokenized, appended to R with label `label`; *count
 * says how many the file held. */
static int file_records(const tokenizer *T, const entry *f, int32_t label, records *R,
                        int64_t *count, sn_error *err) {
  char *buf;
  int64_t len, at = 0, s, rl, m;
  if (read_file(f->path, &buf, &len, err)) return -1;
  int32_t *tok = malloc((size_t)(len + 1) * sizeof(int32_t));
  int rc = tok ? 0 : sn_fail(err, "%s: out of memory", f->path);
  *count = 0;
  while (!rc && next_record(buf, len, &at, &s, &rl)) {
    rc = tokenize(T, f->path, buf, s, buf + s, rl, tok, &m, err);
    if (!rc) rc = push_record(R, tok, m, label, err);
    ++*count;
  }
  free(tok);
  free(buf);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Category names of the files, distinct and sorted, into out (owned). */
static int category_names(const listing *F, sn_dataset *out, sn_error *err) {
  out->class_names = calloc((size_t)F->n, sizeof(char *));
  if (!out->class_names) return sn_fail(err, "out of memory");
  for (int i = 0; i < F->n; i++) {
    bool dup = false;
    for (int j = 0; j < out->n_class_names && !dup; j++)
      dup = !strcmp(out->class_names[j], F->e[i].name);
    if (dup) continue;
    if (!(out->class_names[out->n_class_names] = strdup(F->e[i].name)))
      return sn_fail(err, "out of memory");
    out->n_class_names++;
  }
  qsort(out->class_names, (size_t)out->n_class_names, sizeof(char *), cmp_str);
  return 0;
}

/* Category k's label: its place in the training table (src->class_names) or ours. */
static int32_t label_of(const sn_source *src, const sn_dataset *out, const char *name) {
  const char *const *names =
      src->class_names ? src->class_names : (const char *const *)out->class_names;
  int n = src->class_names ? src->n_class_names : out->n_class_names;
  for (int k = 0; k < n; k++)
    if (!strcmp(names[k], name)) return k;
  return -1;
}

/* Keeps the part [from, to) of each category's records (they are in file order). */
static void keep_range(const sn_source *src, records *R) {
  if (src->range[0] == 0 && src->range[1] == 0) return;
  int64_t w = 0;
  for (int64_t i = 0; i < R->n;) {
    int64_t j = i;
    while (j < R->n && R->label[j] == R->label[i]) j++;
    int64_t lo, hi;
    cut(src->range, j - i, &lo, &hi);
    for (int64_t r = i + lo; r < i + hi; r++, w++) {
      memmove(R->tok + w * R->C, R->tok + r * R->C, (size_t)R->C * sizeof(int32_t));
      R->label[w] = R->label[r];
    }
    i = j;
  }
  R->n = w;
}

/* Samples from the records in an order shuffled by the source's seed (categories
 * would otherwise come in runs, and a validation split would take the last ones). */
static int records_to_set(const sn_source *src, records *R, sn_dataset *out, sn_error *err) {
  int64_t n = src->limit > 0 && src->limit < R->n ? src->limit : R->n;
  int64_t *idx = malloc((size_t)R->n * sizeof(int64_t));
  out->x = malloc((size_t)(n * R->C) * sizeof(float)); /* (n, C) */
  out->y = malloc((size_t)n * sizeof(int32_t));        /* (n) */
  if (!idx || !out->x || !out->y) {
    free(idx);
    return sn_fail(err, "%s: out of memory for %lld records", src->path, (long long)n);
  }
  sn_shuffle(idx, R->n, src->seed, SN_STREAM_TEXT);
  for (int64_t i = 0; i < n; i++) {
    const int32_t *t = R->tok + idx[i] * R->C;
    for (int64_t j = 0; j < R->C; j++) out->x[i * R->C + j] = (float)t[j];
    out->y[i] = R->label[idx[i]];
  }
  free(idx);
  out->n = n;
  out->rank = 1;
  out->shape[0] = out->sample_elems = R->C;
  out->label_elems = 1;
  out->classes = src->class_names ? src->n_class_names : out->n_class_names;
  return 0;
}

static int load_classify(const sn_source *src, const listing *F, const tokenizer *T,
                         sn_dataset *out, sn_error *err) {
  if (category_names(F, out, err)) return -1;
  records R = {.C = src->length};
  int rc = 0;
  for (int i = 0; i < F->n && !rc;) { /* a category's files are together: the listing is sorted */
    int32_t label = label_of(src, out, F->e[i].name);
    if (label < 0) {
      rc = sn_fail(err, "%s: category '%s' is not one of the training set's %d categories",
                   F->e[i].path, F->e[i].name, src->n_class_names);
      break;
    }
    int64_t total = 0, count;
    int j = i;
    for (; j < F->n && !rc && !strcmp(F->e[j].name, F->e[i].name); j++) {
      rc = file_records(T, &F->e[j], label, &R, &count, err);
      total += count;
    }
    if (!rc && total == 0)
      rc = sn_fail(err, "%s: category '%s' has no records (text between lines holding only %%)",
                   F->e[i].path, F->e[i].name);
    i = j;
  }
  if (!rc) {
    keep_range(src, &R);
    if (R.n == 0)
      rc =
          sn_fail(err, "%s: no records in range [%g, %g]", src->path, src->range[0], src->range[1]);
  }
  if (!rc) rc = records_to_set(src, &R, out, err);
  free(R.tok);
  free(R.label);
  return rc;
}

/* ---------------------------------------------------------------------------
 * Entry points */

static int check_source(const sn_source *src, sn_error *err) {
  if (!src->path[0]) return sn_fail(err, "a text source needs a path");
  if (src->text_mode == SN_TEXT_LM && src->context < 1)
    return sn_fail(err, "%s: lm mode needs context >= 1", src->path);
  if (src->text_mode == SN_TEXT_CLASSIFY && src->length < 1)
    return sn_fail(err, "%s: classify mode needs length >= 1", src->path);
  if (src->windows < 0 || src->stride < 0)
    return sn_fail(err, "%s: windows and stride must be >= 0", src->path);
  bool all = src->range[0] == 0 && src->range[1] == 0;
  if (!all && !(src->range[0] >= 0 && src->range[0] < src->range[1] && src->range[1] <= 1))
    return sn_fail(err, "%s: range [%g, %g] must satisfy 0 <= from < to <= 1", src->path,
                   src->range[0], src->range[1]);
  return 0;
}

/* The tokenizer of a source: bytes, or chars with the training table (given) or
 * one of its own files' characters (made, into out). */
static int make_tokenizer(const sn_source *src, const listing *F, sn_dataset *out, tokenizer *T,
                          sn_error *err) {
  bool classify = src->text_mode == SN_TEXT_CLASSIFY;
  *T = (tokenizer){.kind = src->tokenizer, .no_nul = classify};
  out->pad_id = classify ? 0 : -1;
  if (src->tokenizer == SN_TOK_BYTES) {
    out->vocab = 256;
    return 0;
  }
  if (src->chars) {
    out->chars = malloc((size_t)(src->n_chars + 1) * sizeof(uint32_t));
    if (!out->chars) return sn_fail(err, "out of memory");
    memcpy(out->chars, src->chars, (size_t)src->n_chars * sizeof(uint32_t));
    out->n_chars = src->n_chars;
  } else if (build_chars(F, &out->chars, &out->n_chars, err)) {
    return -1;
  }
  out->first_id = classify ? 1 : 0;
  out->vocab = out->n_chars + out->first_id;
  T->chars = out->chars;
  T->n_chars = out->n_chars;
  T->first_id = out->first_id;
  return 0;
}

int sn_dataset_text(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  if (check_source(src, err)) return -1;
  bool classify = src->text_mode == SN_TEXT_CLASSIFY;
  listing L = {0}, F = {0};
  tokenizer T;
  int rc = list_inputs(src->path, classify, &L, err);
  if (!rc && classify)
    rc = flatten(&L, &F, err);
  else if (!rc)
    F = L, L = (listing){0};
  if (!rc && F.n == 0) rc = sn_fail(err, "%s: no text files there", src->path);
  if (!rc) rc = make_tokenizer(src, &F, out, &T, err);
  snprintf(out->origin, sizeof out->origin, "%s", src->path);
  if (!rc) rc = classify ? load_classify(src, &F, &T, out, err) : load_lm(src, &F, &T, out, err);
  if (!rc && !classify) out->classes = (int)out->vocab;
  free(L.e);
  free(F.e);
  if (rc) sn_dataset_free(out);
  return rc;
}

int sn_text_split(sn_dataset *ds, double fraction, sn_dataset *held, sn_error *err) {
  memset(held, 0, sizeof *held);
  struct sn_text *t = ds->text;
  if (!(fraction > 0.0 && fraction < 1.0))
    return sn_fail(err, "validation split must be between 0 and 1 (exclusive), got %g", fraction);
  int64_t keep = (int64_t)floor((double)t->S * (1.0 - fraction));
  struct sn_text *h = calloc(1, sizeof *h);
  if (!h) return sn_fail(err, "out of memory");
  *h = *t;
  h->S = t->S - keep;
  h->windows = 0; /* the held-out text is swept, window after window */
  h->stride = t->context;
  h->limit = 0;
  h->tok = malloc((size_t)(h->S + 1) * sizeof(int32_t));
  if (!h->tok) {
    free(h);
    return sn_fail(err, "out of memory");
  }
  memcpy(h->tok, t->tok + keep, (size_t)h->S * sizeof(int32_t));
  *held = *ds;
  held->x = NULL;
  held->y = NULL;
  held->t = NULL;
  held->class_names = NULL;
  held->n_class_names = 0;
  held->chars = NULL; /* ds keeps the table */
  held->n_chars = 0;
  held->text = h;
  char origin[sizeof ds->origin];
  memcpy(origin, ds->origin, sizeof origin);
  snprintf(held->origin, sizeof held->origin, "%.4000s (last %g of the text held out)", origin,
           fraction);
  t->S = keep;
  if (make_windows(held, err) || make_windows(ds, err)) {
    sn_dataset_free(held);
    return -1;
  }
  return 0;
}

int64_t sn_text_tokens(const sn_dataset *ds) { return ds->text ? ds->text->S : 0; }

int sn_text_same_tokenizer(const sn_source *src, const sn_dataset *train, sn_error *err) {
  if (src->kind != SN_SRC_TEXT || !train->vocab || (src->tokenizer == SN_TOK_CHARS) == (train->chars != NULL))
    return 0;
  return sn_fail(err,
                 "%.3000s: tokenizer: %s, but the training text's is %s: its ids would stand for other "
                 "tokens",
                 src->path, src->tokenizer == SN_TOK_CHARS ? "chars" : "bytes",
                 train->chars ? "chars" : "bytes");
}

int sn_text_token_utf8(const sn_dataset *ds, int64_t id, char *buf) {
  if (id == ds->pad_id || id < 0 || id >= ds->vocab) return 0;
  uint32_t c = (uint32_t)id;
  if (ds->chars)
    c = ds->chars[id - ds->first_id];
  else if (id < 0x80 || ds->vocab == 256)
    return buf[0] = (char)id, 1; /* a byte */
  if (c < 0x80) return buf[0] = (char)c, 1;
  if (c < 0x800) return buf[0] = (char)(0xC0 | c >> 6), buf[1] = (char)(0x80 | (c & 0x3F)), 2;
  if (c < 0x10000)
    return buf[0] = (char)(0xE0 | c >> 12), buf[1] = (char)(0x80 | (c >> 6 & 0x3F)),
           buf[2] = (char)(0x80 | (c & 0x3F)), 3;
  buf[0] = (char)(0xF0 | c >> 18);
  buf[1] = (char)(0x80 | (c >> 12 & 0x3F));
  buf[2] = (char)(0x80 | (c >> 6 & 0x3F));
  buf[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

void sn_text_free(struct sn_text *t) {
  if (!t) return;
  free(t->tok);
  free(t);
}
