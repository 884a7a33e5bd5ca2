/* Reading a run folder back (docs/outputs.md): metrics.jsonl into a table of
 * columns, run.json, classes.json, the two specs, profile.txt, predictions.csv.
 * The JSON here is what specnet writes: flat objects of numbers, null, booleans and
 * strings, and one array of strings; a reader for that, not for all JSON. */
#include "run_record.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *run_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 16384;
      char *g = realloc(buf, cap);
      if (!g) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = g;
    }
    size_t k = fread(buf + n, 1, 4096, f);
    n += k;
    if (k < 4096) break;
  }
  fclose(f);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

/* ---------------------------------------------------------------------------
 * A flat JSON object */

static const char *skip_ws(const char *p) {
  while (isspace((unsigned char)*p)) p++;
  return p;
}

/* A JSON string at p (after its opening quote) into buf; returns the char after the
 * closing quote, or NULL. \uXXXX below 0x80 only (what specnet writes). */
static const char *json_str(const char *p, char *buf, size_t cap) {
  size_t k = 0;
  for (; *p && *p != '"'; p++) {
    char c = *p;
    if (c == '\\') {
      c = *++p;
      if (c == 'n')
        c = '\n';
      else if (c == 't')
        c = '\t';
      else if (c == 'u') {
        if (!p[1] || !p[2] || !p[3] || !p[4]) return NULL;
        char hex[5] = {p[1], p[2], p[3], p[4], 0};
        c = (char)strtol(hex, NULL, 16);
        p += 4;
      } else if (!c)
        return NULL;
    }
    if (k + 1 < cap) buf[k++] = c;
  }
  buf[k] = 0;
  return *p == '"' ? p + 1 : NULL;
}

typedef void (*field_fn)(void *ctx, const char *key, double num, const char *str);

/* Calls fn for each field of the object in line (num NAN for null and strings;
 * str NULL but for strings). Returns 0, or -1 when the line is not such an object. */
static int json_object(const char *line, field_fn fn, void *ctx) {
  const char *p = skip_ws(line);
  if (*p++ != '{') return -1;
  char key[256], str[256];
  for (p = skip_ws(p); *p != '}';) {
    if (*p != '"' || !(p = json_str(p + 1, key, sizeof key))) return -1;
    p = skip_ws(p);
    if (*p++ != ':') return -1;
    p = skip_ws(p);
    if (*p == '"') {
      if (!(p = json_str(p + 1, str, sizeof str))) return -1;
      fn(ctx, key, NAN, str);
    } else if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
      fn(ctx, key, *p == 'n' ? NAN : *p == 't', NULL);
      p += *p == 'f' ? 5 : 4;
    } else {
      char *end;
      double v = strtod(p, &end);
      if (end == p) return -1;
      fn(ctx, key, v, NULL);
      p = end;
    }
    p = skip_ws(p);
    if (*p == ',')
      p = skip_ws(p + 1);
    else if (*p != '}')
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * metrics.jsonl */

typedef struct row_ctx {
  run_record *r;
  double *row; /* (cols_cap) */
  int cap;
  bool oom;
} row_ctx;

static void metric_field(void *ctx, const char *key, double num, const char *str) {
  row_ctx *c = ctx;
  if (str) return;
  int k = run_col(c->r, key);
  if (k < 0) {
    if (c->r->n_cols == c->cap) {
      c->oom = true;
      return;
    }
    char **g = realloc(c->r->cols, (size_t)(c->r->n_cols + 1) * sizeof *g);
    if (!g || !(g[c->r->n_cols] = strdup(key))) {
      if (g) c->r->cols = g;
      c->oom = true;
      return;
    }
    c->r->cols = g;
    k = c->r->n_cols++;
  }
  c->row[k] = num;
}

enum { MAX_COLS = 256 };

static int read_metrics(run_record *r, char *msg, size_t cap) {
  char path[4200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    char sweep[4200];
    snprintf(sweep, sizeof sweep, "%s/sweep.jsonl", r->dir);
    FILE *sw = fopen(sweep, "r");
    snprintf(msg, cap, "%s: cannot read the run's metrics: %s%s", path, strerror(e),
             sw ? " (a sweep's folder: its trials are sweep-1, sweep-2, ...; compare.html "
                  "compares them)"
             : e == ENOENT ? " (is this a run folder? `specnet train` writes it)"
                           : "");
    if (sw) fclose(sw);
    return -1;
  }
  char line[16384];
  double row[MAX_COLS];
  row_ctx c = {r, row, MAX_COLS, false};
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!*skip_ws(line)) continue;
    for (int k = 0; k < MAX_COLS; k++) row[k] = NAN;
    if (json_object(line, metric_field, &c) || c.oom) {
      snprintf(msg, cap, "%s:%d: not a line of metrics (a JSON object of numbers)", path, lineno);
      rc = -1;
      break;
    }
    double *g = realloc(r->v, (size_t)(r->n_rows + 1) * MAX_COLS * sizeof *g);
    if (!g) {
      snprintf(msg, cap, "%s: out of memory", path);
      rc = -1;
      break;
    }
    r->v = g;
    memcpy(r->v + (size_t)r->n_rows * MAX_COLS, row, sizeof row);
    r->n_rows++;
  }
  fclose(f);
  if (!rc && r->n_rows == 0) {
    snprintf(msg, cap, "%s: the run's metrics are empty (no epoch finished)", path);
    rc = -1;
  }
  return rc;
}

int run_col(const run_record *r, const char *key) {
  for (int k = 0; k < r->n_cols; k++)
    if (!strcmp(r->cols[k], key)) return k;
  return -1;
}

double run_at(const run_record *r, int row, const char *key) {
  int k = run_col(r, key);
  return k < 0 || row < 0 || row >= r->n_rows ? NAN : r->v[(size_t)row * MAX_COLS + k];
}

bool run_higher_better(const char *key) { return strstr(key, "accuracy") != NULL; }

/* ---------------------------------------------------------------------------
 * run.json and classes.json */

static void info_field(void *ctx, const char *key, double num, const char *str) {
  run_record *r = ctx;
  if (str) {
    if (!strcmp(key, "name")) snprintf(r->name, sizeof r->name, "%.255s", str);
    if (!strcmp(key, "predictions")) snprintf(r->split, sizeof r->split, "%.31s", str);
    return;
  }
  char **k = realloc(r->info_keys, (size_t)(r->n_info + 1) * sizeof *k);
  if (k) r->info_keys = k;
  double *v = realloc(r->info, (size_t)(r->n_info + 1) * sizeof *v);
  if (v) r->info = v;
  if (!k || !v || !(r->info_keys[r->n_info] = strdup(key))) return;
  r->info[r->n_info++] = num;
}

double run_info(const run_record *r, const char *key) {
  for (int i = 0; i < r->n_info; i++)
    if (!strcmp(r->info_keys[i], key)) return r->info[i];
  return NAN;
}

/* classes.json: ["a", "b", ...]. */
static void read_classes_json(run_record *r) {
  char path[4200], name[256];
  snprintf(path, sizeof path, "%s/classes.json", r->dir);
  char *text = run_slurp(path, NULL);
  const char *p = text ? skip_ws(text) : NULL;
  if (!p || *p++ != '[') {
    free(text);
    return;
  }
  while ((p = skip_ws(p)) && *p == '"' && (p = json_str(p + 1, name, sizeof name))) {
    char **g = realloc(r->classes, (size_t)(r->n_classes + 1) * sizeof *g);
    if (!g) break;
    r->classes = g;
    if (!(r->classes[r->n_classes] = strdup(name))) break;
    r->n_classes++;
    p = skip_ws(p);
    if (*p == ',') p++;
  }
  free(text);
}

/* The class names of a built-in set, when the run trained on one (and wrote no
 * classes.json): Fashion-MNIST's ten; MNIST's digits need none. */
static void builtin_classes(run_record *r) {
  static const char *const FASHION[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                        "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                        "Bag",         "Ankle boot"};
  sn_diag d = {0};
  sn_node *root = r->resolved_text ? sn_yaml_parse_string(r->resolved_text, r->dir, &d) : NULL;
  const sn_node *b = sn_node_get(sn_node_get(sn_node_get(root, "data"), "train"), "builtin");
  if (b && b->kind == SN_NODE_SCALAR && !strcmp(b->text, "fashion_mnist") &&
      (r->classes = calloc(10, sizeof *r->classes)))
    for (int k = 0; k < 10; k++)
      if ((r->classes[k] = strdup(FASHION[k]))) r->n_classes = k + 1;
  sn_node_free(root);
  sn_diag_free(&d);
}

int run_read(const char *dir, run_record *r, char *msg, size_t cap) {
  memset(r, 0, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  size_t len = strlen(r->dir);
  while (len > 1 && r->dir[len - 1] == '/') r->dir[--len] = 0;
  const char *base = strrchr(r->dir, '/');
  snprintf(r->name, sizeof r->name, "%s", base ? base + 1 : r->dir);
  if (read_metrics(r, msg, cap)) return -1;
  char path[4200];
  snprintf(path, sizeof path, "%s/run.json", r->dir);
  char *info = run_slurp(path, NULL);
  if (info) json_object(info, info_field, r);
  free(info);
  snprintf(path, sizeof path, "%s/spec.yaml", r->dir);
  r->spec_text = run_slurp(path, NULL);
  snprintf(path, sizeof path, "%s/spec.resolved.yaml", r->dir);
  r->resolved_text = run_slurp(path, NULL);
  snprintf(path, sizeof path, "%s/profile.txt", r->dir);
  r->profile = run_slurp(path, NULL);
  read_classes_json(r);
  if (!r->classes) builtin_classes(r);
  return 0;
}

/* v[0..n) and v */
static void free_strings(char **v, int n) {
  for (int k = 0; k < n; k++) free(v[k]);
  free(v);
}

void run_free(run_record *r) {
  free_strings(r->cols, r->n_cols);
  free_strings(r->classes, r->n_classes);
  free_strings(r->info_keys, r->n_info);
  void *owned[] = {r->info, r->v, r->spec_text, r->resolved_text, r->profile};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
  memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------------------
 * predictions.csv */

/* The header decides the kind and K; returns -1 on a header that is neither. */
static int preds_header(const char *line, run_preds *p) {
  int cols = 1;
  for (const char *c = line; *c && *c != '\n'; c++) cols += *c == ',';
  if (!strncmp(line, "index,label,predicted,confidence,", 33)) {
    p->kind = PRED_CLASSES;
    p->K = cols - 4;
  } else if (!strncmp(line, "index,target0,", 14) && cols % 2 == 1) {
    p->kind = PRED_VALUES;
    p->K = (cols - 1) / 2;
  } else {
    return -1;
  }
  return p->K > 0 ? 0 : -1;
}

static int preds_grow(run_preds *p, int64_t cap) {
  size_t n = (size_t)cap, k = (size_t)p->K;
  int64_t *l = realloc(p->label, n * sizeof *l);
  if (l) p->label = l;
  int64_t *q = realloc(p->pred, n * sizeof *q);
  if (q) p->pred = q;
  double *c = realloc(p->conf, n * sizeof *c);
  if (c) p->conf = c;
  double *t = realloc(p->target, n * k * sizeof *t);
  if (t) p->target = t;
  double *o = realloc(p->out, n * k * sizeof *o);
  if (o) p->out = o;
  return l && q && c && t && o ? 0 : -1;
}

/* One data row; -1 when it is not what the header promised. */
static int preds_row(char *line, run_preds *p, int64_t i) {
  char *s = line, *end;
  strtod(s, &end); /* the index */
  if (end == s || *end != ',') return -1;
  s = end + 1;
  int fields = p->kind == PRED_CLASSES ? 3 + p->K : 2 * p->K;
  for (int f = 0; f < fields; f++) {
    double v = strtod(s, &end);
    if (end == s || (*end != ',' && f + 1 < fields)) return -1;
    s = end + 1;
    if (p->kind == PRED_VALUES) {
      (f < p->K ? p->target : p->out)[i * p->K + f % p->K] = v;
    } else if (f == 0) {
      p->label[i] = (int64_t)v;
    } else if (f == 1) {
      p->pred[i] = (int64_t)v;
    } else if (f == 2) {
      p->conf[i] = v;
    }
  }
  if (p->kind == PRED_CLASSES &&
      (p->label[i] < 0 || p->label[i] >= p->K || p->pred[i] < 0 || p->pred[i] >= p->K))
    return -1;
  return 0;
}

int run_read_predictions(const char *dir, run_preds *p, char *msg, size_t cap) {
  memset(p, 0, sizeof *p);
  char path[4200];
  snprintf(path, sizeof path, "%s/predictions.csv", dir);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t lcap = 0;
  char *line = NULL;
  int64_t rows_cap = 0;
  int rc = 0;
  if (getline(&line, &lcap, f) < 0 || preds_header(line, p)) {
    snprintf(msg, cap, "%s:1: not a predictions header (docs/outputs.md)", path);
    rc = -1;
  }
  while (!rc && getline(&line, &lcap, f) > 0) {
    if (p->n == rows_cap && preds_grow(p, rows_cap = rows_cap ? 2 * rows_cap : 1024)) {
      snprintf(msg, cap, "%s: out of memory", path);
      rc = -1;
    } else if (preds_row(line, p, p->n)) {
      snprintf(msg, cap, "%s:%lld: not a row of %d predictions", path, (long long)p->n + 2, p->K);
      rc = -1;
    } else {
      p->n++;
    }
  }
  free(line);
  fclose(f);
  if (rc) run_preds_free(p);
  return rc;
}

void run_preds_free(run_preds *p) {
  void *owned[] = {p->label, p->pred, p->conf, p->target, p->out};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
  memset(p, 0, sizeof *p);
}
