/* The spec checker: turns the YAML tree (yaml_tree.c) into a typed sn_spec,
 * checking strictly and reporting every problem of the spec in one run, each at
 * the node it is about: unknown keys (with "did you mean"), wrong types, missing
 * required keys, out-of-range numbers, v1 features not implemented yet.
 *
 * Not for shapes or anything that needs the layer graph (build_graph.c checks
 * those) and not for data files (the runtime opens them).
 *
 * Defaults (Keras's where Keras has one): seed 0, data.scale 1, dense activation
 * linear, use_bias true, kernel_init glorot_uniform, bias_init zeros, optimizer
 * adam (learning_rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7), batch_size 32,
 * epochs 1, shuffle true, no metrics; synthetic data: samples 1000, classes 2,
 * noise 0.1, features 2. A layer without `name:` is called after its kind and its
 * place among layers of that kind: dense1, dense2, flatten1, relu1. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

/* Sizes beyond these are mistakes, and would overflow later arithmetic. */
#define MAX_UNITS (INT64_C(1) << 24)
#define MAX_BATCH (INT64_C(1) << 24)
#define MAX_EPOCHS INT64_C(1000000)
#define MAX_INPUT_ELEMS (INT64_C(1) << 31)
#define MAX_SAMPLES (INT64_C(1) << 24)
#define MAX_CLASSES (INT64_C(1) << 16)
#define MAX_FEATURES (INT64_C(1) << 16)
#define MAX_SYNTH_ELEMS (INT64_C(1) << 28)
enum { MAX_LAYERS = 4096 };

/* Synthetic sets of different roles draw from different streams of one seed. */
#define SEED_MIX UINT64_C(0x9E3779B97F4A7C15)
enum { STREAM_TRAIN = 1, STREAM_TEST = 2, STREAM_VALIDATION = 3 };

typedef struct checker {
  sn_diag *d;
  sn_spec *s;
  const char *dir; /* the spec's directory with its '/', or "" */
  int dir_len;
} checker;

/* ---------------------------------------------------------------------------
 * Reporting helpers */

static bool is_null(const sn_node *n) {
  if (n->kind != SN_NODE_SCALAR || n->quoted) return false;
  return !*n->text || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
         !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

static bool is_name(const sn_node *n) { return n->kind == SN_NODE_SCALAR && !is_null(n); }

/* Strict number syntax: digits, sign, point, exponent, and nothing else (no hex,
 * no "nan", no trailing text). Returns 0 for a finite number, 1 for not a number,
 * 2 for a number that is not finite (".inf", "nan", "1e999"). */
static int parse_real(const char *s, double *out) {
  const char *t = s + (*s == '+' || *s == '-');
  if (*t == '.') t++;
  if (!strcmp(t, "inf") || !strcmp(t, "Inf") || !strcmp(t, "INF") || !strcmp(t, "nan") ||
      !strcmp(t, "NaN") || !strcmp(t, "NAN") || !strcmp(t, "infinity"))
    return 2;
  bool digit = false;
  for (const char *p = s; *p; p++) {
    if (*p >= '0' && *p <= '9')
      digit = true;
    else if (!strchr("+-.eE", *p))
      return 1;
  }
  if (!digit) return 1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || end == s) return 1;
  if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) return 2;
  *out = v;
  return 0;
}

/* "an empty value", "a list", "'abc'", "1.5", "the string \"10\"": what the user
 * wrote, short enough for one line. */
static const char *describe(const sn_node *n, char *buf, size_t cap) {
  if (n->kind == SN_NODE_MAP) return n->n ? "a mapping" : "an empty mapping";
  if (n->kind == SN_NODE_SEQ) return n->n ? "a list" : "an empty list";
  if (is_null(n)) return "an empty value";
  char t[48];
  size_t len = strlen(n->text), k = 0;
  size_t keep = len > 40 ? 37 : len;
  while (keep < len && keep > 0 && ((unsigned char)n->text[keep] & 0xC0) == 0x80)
    keep--; /* do not cut a UTF-8 character */
  for (; k < keep; k++) t[k] = (unsigned char)n->text[k] < 0x20 ? '?' : n->text[k];
  if (keep < len) {
    memcpy(t + k, "...", 3);
    k += 3;
  }
  t[k] = '\0';
  double v;
  if (n->quoted)
    snprintf(buf, cap, "the string \"%s\"", t);
  else if (parse_real(n->text, &v) == 0)
    snprintf(buf, cap, "%s", t);
  else
    snprintf(buf, cap, "'%s'", t);
  return buf;
}

static bool in_list(const char *w, const char *const *list) {
  for (; list && *list; list++)
    if (!strcmp(w, *list)) return true;
  return false;
}

/* "a, b, c" into buf (truncated with "..." if long). */
static const char *join(const char *const *list, char *buf, size_t cap) {
  size_t at = 0;
  buf[0] = '\0';
  for (int i = 0; list[i]; i++) {
    int w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", list[i]);
    if (w < 0 || (size_t)w >= cap - at) {
      if (cap > 4) memcpy(buf + cap - 4, "...", 4);
      break;
    }
    at += (size_t)w;
  }
  return buf;
}

/* After an "unknown ..." error: "did you mean 'x'?" over `a` and `b`, or else
 * the list of what is allowed now (`a`). */
static void hint_closest(checker *c, const char *word, const char *const *a, const char *const *b) {
  const char *all[128];
  int n = 0;
  for (int i = 0; a && a[i] && n < 128; i++) all[n++] = a[i];
  for (int i = 0; b && b[i] && n < 128; i++)
    if (!in_list(b[i], a)) all[n++] = b[i];
  const char *best = sn_closest(word, all, n);
  char buf[512];
  if (best)
    sn_diag_hint(c->d, "did you mean '%s'?", best);
  else if (a && a[0])
    sn_diag_hint(c->d, "expected one of: %s", join(a, buf, sizeof buf));
}

static void missing(checker *c, const sn_node *map, const char *key, const char *where) {
  sn_diag_error(c->d, map->loc, "missing required key '%s' in %s", key, where);
}

/* Every key of `map` must be in `now`; keys of v1 not implemented yet (`later`)
 * get their own message. */
static void check_keys(checker *c, const sn_node *map, const char *where, const char *const *now,
                       const char *const *later) {
  for (int i = 0; i < map->n; i++) {
    const sn_node *k = map->keys[i];
    if (in_list(k->text, now)) continue;
    if (in_list(k->text, later)) {
      sn_diag_error(c->d, k->loc, "'%s' in %s is not supported yet", k->text, where);
      continue;
    }
    sn_diag_error(c->d, k->loc, "unknown key '%s' in %s", k->text, where);
    hint_closest(c, k->text, now, later);
  }
}

/* ---------------------------------------------------------------------------
 * Typed values: each reports its own error and returns false on failure. */

static void type_error(checker *c, const sn_node *n, const char *what, const char *expected) {
  char buf[96];
  sn_diag_error(c->d, n->loc, "%s must be %s, got %s", what, expected,
                describe(n, buf, sizeof buf));
  double v;
  if (n->kind == SN_NODE_SCALAR && n->quoted && parse_real(n->text, &v) == 0)
    sn_diag_hint(c->d, "quoted values are strings; remove the quotes");
}

static bool is_map(checker *c, const sn_node *n, const char *what) {
  if (n->kind == SN_NODE_MAP) return true;
  type_error(c, n, what, "a mapping");
  return false;
}

static bool get_int(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi,
                    int64_t *out) {
  char expected[64];
  if (lo > 1)
    snprintf(expected, sizeof expected, "an integer of at least %lld", (long long)lo);
  else
    snprintf(expected, sizeof expected, "%s",
             lo == 1   ? "a positive integer"
             : lo == 0 ? "a non-negative integer"
                       : "an integer");
  const char *t = n->kind == SN_NODE_SCALAR && !n->quoted ? n->text : "";
  const char *p = t + (*t == '+' || *t == '-');
  bool ok = *p != '\0';
  for (; *p; p++) ok = ok && *p >= '0' && *p <= '9';
  if (!ok) {
    type_error(c, n, what, expected);
    return false;
  }
  errno = 0;
  long long v = strtoll(t, NULL, 10);
  char buf[96];
  if (v < lo || (errno == ERANGE && v < 0)) {
    type_error(c, n, what, expected);
    return false;
  }
  if (v > hi || errno == ERANGE) {
    sn_diag_error(c->d, n->loc, "%s must be at most %lld, got %s", what, (long long)hi,
                  describe(n, buf, sizeof buf));
    return false;
  }
  *out = v;
  return true;
}

static bool get_int32(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi,
                      int *out) {
  int64_t v;
  if (!get_int(c, n, what, lo, hi, &v)) return false;
  *out = (int)v;
  return true;
}

/* A finite number in a range: lo/hi bound it, *_open excludes the bound itself;
 * pass -INFINITY/INFINITY for no bound. */
static bool get_real(checker *c, const sn_node *n, const char *what, double lo, bool lo_open,
                     double hi, bool hi_open, double *out) {
  double v = 0;
  int r = n->kind == SN_NODE_SCALAR && !n->quoted ? parse_real(n->text, &v) : 1;
  if (r) {
    type_error(c, n, what, r == 2 ? "a finite number" : "a number");
    return false;
  }
  bool below = lo_open ? !(v > lo) : !(v >= lo);
  bool above = hi_open ? !(v < hi) : !(v <= hi);
  if (below || above) {
    char range[64], buf[96];
    if (isinf(hi))
      snprintf(range, sizeof range, "%s %g", lo_open ? "greater than" : "at least", lo);
    else if (isinf(lo))
      snprintf(range, sizeof range, "%s %g", hi_open ? "less than" : "at most", hi);
    else
      snprintf(range, sizeof range, "in %c%g, %g%c", lo_open ? '(' : '[', lo, hi,
               hi_open ? ')' : ']');
    sn_diag_error(c->d, n->loc, "%s must be %s, got %s", what, range, describe(n, buf, sizeof buf));
    return false;
  }
  *out = v;
  return true;
}

/* true/false as in YAML 1.2; YAML 1.1's yes/no/on/off are refused, not guessed. */
static bool get_bool(checker *c, const sn_node *n, const char *what, bool *out) {
  static const char *const yes[] = {"true", "True", "TRUE", NULL};
  static const char *const no[] = {"false", "False", "FALSE", NULL};
  if (n->kind == SN_NODE_SCALAR && !n->quoted) {
    if (in_list(n->text, yes)) {
      *out = true;
      return true;
    }
    if (in_list(n->text, no)) {
      *out = false;
      return true;
    }
  }
  type_error(c, n, what, "true or false");
  return false;
}

static const char *get_str(checker *c, const sn_node *n, const char *what) {
  if (is_name(n)) return n->text;
  type_error(c, n, what, "a string");
  return NULL;
}

/* Copies a checked string into a fixed field, or reports it too long. */
static bool copy_field(checker *c, const sn_node *n, const char *what, char *dst, size_t cap) {
  size_t len = strlen(n->text);
  if (len >= cap) {
    sn_diag_error(c->d, n->loc, "%s is too long (%zu bytes; at most %zu)", what, len, cap - 1);
    return false;
  }
  memcpy(dst, n->text, len + 1);
  return true;
}

/* ---------------------------------------------------------------------------
 * Choices: a bare name, or a one-key mapping from the name to its options. */

static bool choice(checker *c, const sn_node *n, const char *what, const sn_node **name,
                   const sn_node **opts) {
  if (is_name(n)) {
    *name = n;
    *opts = NULL;
    return true;
  }
  if (n->kind == SN_NODE_MAP && n->n == 1) {
    *name = n->keys[0];
    *opts = n->items[0];
    return true;
  }
  if (n->kind == SN_NODE_MAP && n->n > 1) {
    sn_diag_error(c->d, n->keys[1]->loc, "%s takes one kind, got '%s' and '%s'", what,
                  n->keys[0]->text, n->keys[1]->text);
    return false;
  }
  type_error(c, n, what, "a name or a one-key mapping");
  return false;
}

/* Index of the name in `now`, or -1 after reporting it unknown or not yet
 * supported (if it is in `v1`). `what` is "layer", "loss", ... */
static int lookup(checker *c, const sn_node *name, const char *what, const char *const *now,
                  const char *const *v1) {
  for (int i = 0; now[i]; i++)
    if (!strcmp(name->text, now[i])) return i;
  char buf[512];
  if (in_list(name->text, v1)) {
    sn_diag_error(c->d, name->loc, "%s '%s' is not supported yet", what, name->text);
    sn_diag_hint(c->d, "supported now: %s", join(now, buf, sizeof buf));
    return -1;
  }
  sn_diag_error(c->d, name->loc, "unknown %s '%s'", what, name->text);
  hint_closest(c, name->text, now, v1);
  return -1;
}

/* For kinds without options: nothing, `{}` or an empty value. */
static void no_options(checker *c, const sn_node *name, const sn_node *opts) {
  if (!opts || is_null(opts) || (opts->kind == SN_NODE_MAP && opts->n == 0)) return;
  char buf[96];
  if (opts->kind == SN_NODE_MAP)
    sn_diag_error(c->d, opts->keys[0]->loc, "%s takes no options, got '%s'", name->text,
                  opts->keys[0]->text);
  else
    sn_diag_error(c->d, opts->loc, "%s takes no options, got %s", name->text,
                  describe(opts, buf, sizeof buf));
}

/* The options mapping of a kind that has some: NULL when absent or empty; false
 * (reported) when it is not a mapping. */
static bool options(checker *c, const sn_node *name, const sn_node *opts, const sn_node **map) {
  *map = NULL;
  if (!opts || is_null(opts)) return true;
  char what[96];
  snprintf(what, sizeof what, "options of %s", name->text);
  if (!is_map(c, opts, what)) return false;
  *map = opts;
  return true;
}

/* ---------------------------------------------------------------------------
 * data */

static const char *const BUILTIN_SETS[] = {"mnist", "fashion_mnist", NULL};
static const char *const SPLITS[] = {"train", "test", NULL};
static const char *const FORMATS_NOW[] = {"idx", NULL};
static const char *const FORMATS_V1[] = {"idx", "csv", "npy", NULL};
static const char *const SYNTH_NOW[] = {"blobs", "spirals", "xor", "linear", NULL};
static const char *const SOURCE_FORMS[] = {"builtin", "format", "synthetic", NULL};
static const char *const BUILTIN_KEYS[] = {"builtin", "split", "limit", NULL};
static const char *const IDX_KEYS[] = {"format", "images", "labels", "limit", NULL};
static const char *const SYNTH_KEYS[] = {"synthetic", "samples", "classes", "noise",
                                         "features",  "limit",   NULL};
static const char *const ANY_SOURCE_KEYS[] = {"builtin", "format", "synthetic", "split",
                                              "images",  "labels", "limit",     "samples",
                                              "classes", "noise",  "features",  NULL};

static void builtin_name(checker *c, const sn_node *n, const char *set, const char *split,
                         sn_source *src) {
  bool ok = true;
  if (!in_list(set, BUILTIN_SETS)) {
    sn_diag_error(c->d, n->loc, "unknown built-in data set '%s'", set);
    hint_closest(c, set, BUILTIN_SETS, NULL);
    ok = false;
  }
  if (!in_list(split, SPLITS)) {
    sn_diag_error(c->d, n->loc, "unknown split '%s' of a built-in data set", split);
    hint_closest(c, split, SPLITS, NULL);
    ok = false;
  }
  if (ok) {
    src->kind = SN_SRC_BUILTIN;
    snprintf(src->name, sizeof src->name, "%s", set);
    snprintf(src->split, sizeof src->split, "%s", split);
  }
}

/* A path from the spec, relative to the spec's directory unless absolute. */
static void resolve_path(checker *c, const sn_node *n, const char *what, char *dst, size_t cap) {
  const char *p = get_str(c, n, what);
  if (!p) return;
  int len = p[0] == '/' ? snprintf(dst, cap, "%s", p)
                        : snprintf(dst, cap, "%.*s%s", c->dir_len, c->dir, p);
  if (len < 0 || (size_t)len >= cap) {
    sn_diag_error(c->d, n->loc, "%s path is too long (%d bytes; at most %zu)", what, len, cap - 1);
    dst[0] = '\0';
  }
}

static void source_limit(checker *c, const sn_node *map, sn_source *src) {
  const sn_node *v = sn_node_get(map, "limit");
  if (v) get_int(c, v, "limit", 1, INT64_MAX, &src->limit);
}

static void synthetic_source(checker *c, const sn_node *map, const sn_node *kind, sn_source *src) {
  check_keys(c, map, "a synthetic data source", SYNTH_KEYS, NULL);
  int k = is_name(kind) ? lookup(c, kind, "synthetic data set", SYNTH_NOW, NULL) : -1;
  if (!is_name(kind)) type_error(c, kind, "synthetic", "a generator name");
  src->samples = 1000;
  src->classes = 2;
  src->noise = 0.1;
  src->features = 2;
  const sn_node *v;
  if ((v = sn_node_get(map, "samples"))) get_int(c, v, "samples", 1, MAX_SAMPLES, &src->samples);
  if ((v = sn_node_get(map, "features")))
    get_int32(c, v, "features", 1, MAX_FEATURES, &src->features);
  if ((v = sn_node_get(map, "noise")))
    get_real(c, v, "noise", 0, false, INFINITY, false, &src->noise);
  if ((v = sn_node_get(map, "classes")) &&
      get_int32(c, v, "classes", 2, MAX_CLASSES, &src->classes)) {
    if (k >= 0 && !strcmp(SYNTH_NOW[k], "xor") && src->classes != 2)
      sn_diag_error(c->d, v->loc, "xor has 2 classes, got %d", src->classes);
  }
  if (src->samples * src->features > MAX_SYNTH_ELEMS)
    sn_diag_error(c->d, map->loc, "samples x features is %lld values; at most %lld",
                  (long long)(src->samples * src->features), (long long)MAX_SYNTH_ELEMS);
  if ((v = sn_node_get(map, "features")) && k >= 0 &&
      (!strcmp(SYNTH_NOW[k], "spirals") || !strcmp(SYNTH_NOW[k], "xor")) && src->features < 2)
    sn_diag_error(c->d, v->loc, "%s needs at least 2 features", SYNTH_NOW[k]);
  source_limit(c, map, src);
  if (k >= 0) {
    src->kind = SN_SRC_SYNTHETIC;
    snprintf(src->name, sizeof src->name, "%s", SYNTH_NOW[k]);
  }
}

/* One data source (`role` is "train", "test" or "validation"). For validation,
 * `split` is non-NULL and `{split: F}` holds out a fraction of train instead. */
static void data_source(checker *c, const sn_node *n, const char *role, uint64_t stream,
                        sn_source *src, sn_loc *loc, double *split) {
  char what[64], buf[96];
  snprintf(what, sizeof what, "data.%s", role);
  *loc = n->loc;
  src->seed = c->s->seed ^ (stream * SEED_MIX);

  if (is_name(n)) {
    const char *colon = strchr(n->text, ':');
    if (!colon) {
      sn_diag_error(c->d, n->loc, "%s must be SET:SPLIT or a mapping, got %s", what,
                    describe(n, buf, sizeof buf));
      if (in_list(n->text, BUILTIN_SETS))
        sn_diag_hint(c->d, "write %s:%s", n->text, !strcmp(role, "test") ? "test" : "train");
      return;
    }
    char set[64];
    snprintf(set, sizeof set, "%.*s", (int)(colon - n->text), n->text);
    builtin_name(c, n, set, colon + 1, src);
    return;
  }
  if (n->kind != SN_NODE_MAP) {
    type_error(c, n, what, "a data source (SET:SPLIT or a mapping)");
    return;
  }

  const sn_node *form = NULL;
  for (int i = 0; i < n->n; i++) {
    if (!in_list(n->keys[i]->text, SOURCE_FORMS)) continue;
    if (form) {
      sn_diag_error(c->d, n->keys[i]->loc,
                    "a data source takes one of builtin, format or "
                    "synthetic, got '%s' and '%s'",
                    form->text, n->keys[i]->text);
      return;
    }
    form = n->keys[i];
  }
  if (!form) {
    const sn_node *s = sn_node_get(n, "split");
    if (split && s && n->n == 1) {
      get_real(c, s, "split", 0, true, 1, true, split);
      return;
    }
    check_keys(c, n, "a data source", ANY_SOURCE_KEYS, NULL);
    sn_diag_error(c->d, n->loc, "%s needs one of builtin, format or synthetic%s", what,
                  split ? " (or only split: F)" : "");
    return;
  }

  const sn_node *kind = sn_node_get(n, form->text);
  if (!strcmp(form->text, "builtin")) {
    check_keys(c, n, "a built-in data source", BUILTIN_KEYS, NULL);
    const sn_node *s = sn_node_get(n, "split");
    if (!s) missing(c, n, "split", "a built-in data source");
    const char *set = get_str(c, kind, "builtin");
    const char *sp = s ? get_str(c, s, "split") : NULL;
    if (set && sp) {
      builtin_name(c, kind, set, "train", src);
      if (!in_list(sp, SPLITS)) {
        sn_diag_error(c->d, s->loc, "unknown split '%s' of a built-in data set", sp);
        hint_closest(c, sp, SPLITS, NULL);
        src->kind = SN_SRC_NONE;
      } else {
        snprintf(src->split, sizeof src->split, "%s", sp);
      }
    }
    source_limit(c, n, src);
  } else if (!strcmp(form->text, "format")) {
    if (!is_name(kind)) {
      type_error(c, kind, "format", "a file format name");
      return;
    }
    if (lookup(c, kind, "data format", FORMATS_NOW, FORMATS_V1) < 0)
      return; /* other formats take other keys; nothing more to say */
    check_keys(c, n, "an idx data source", IDX_KEYS, NULL);
    const sn_node *im = sn_node_get(n, "images"), *lb = sn_node_get(n, "labels");
    if (!im) missing(c, n, "images", "an idx data source");
    if (!lb) missing(c, n, "labels", "an idx data source");
    if (im) resolve_path(c, im, "images", src->images, sizeof src->images);
    if (lb) resolve_path(c, lb, "labels", src->labels, sizeof src->labels);
    source_limit(c, n, src);
    src->kind = SN_SRC_IDX;
  } else {
    synthetic_source(c, n, kind, src);
  }
}

static void preprocess(checker *c, const sn_node *n) {
  static const char *const STEPS[] = {"scale", NULL};
  if (n->kind != SN_NODE_SEQ) {
    type_error(c, n, "preprocess", "a list of steps");
    return;
  }
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts;
    if (!choice(c, n->items[i], "a preprocess step", &name, &opts) ||
        lookup(c, name, "preprocess step", STEPS, NULL) < 0)
      continue;
    double f;
    if (!opts) {
      sn_diag_error(c->d, name->loc, "scale needs a factor: '- scale: F'");
    } else if (get_real(c, opts, "scale", -INFINITY, false, INFINITY, false, &f)) {
      if (f == 0)
        sn_diag_error(c->d, opts->loc, "scale must not be 0");
      else
        c->s->data.scale *= f; /* several scale steps multiply */
    }
  }
}

static void data_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"train", "test", "validation", "preprocess", NULL};
  if (!is_map(c, n, "data")) return;
  check_keys(c, n, "data", KEYS, NULL);
  sn_data_spec *ds = &c->s->data;
  const sn_node *v;
  if ((v = sn_node_get(n, "train")))
    data_source(c, v, "train", STREAM_TRAIN, &ds->train, &ds->train_loc, NULL);
  else
    missing(c, n, "train", "data");
  if ((v = sn_node_get(n, "test")))
    data_source(c, v, "test", STREAM_TEST, &ds->test, &ds->test_loc, NULL);
  if ((v = sn_node_get(n, "validation")))
    data_source(c, v, "validation", STREAM_VALIDATION, &ds->validation, &ds->validation_loc,
                &ds->validation_split);
  if ((v = sn_node_get(n, "preprocess"))) preprocess(c, v);
}

/* ---------------------------------------------------------------------------
 * model */

/* Every layer of SPEC.md v1, for "did you mean" and "not supported yet". */
static const char *const LAYERS_V1[] = {
    "dense",     "conv2d",   "max_pool2d", "avg_pool2d", "global_avg_pool2d",
    "flatten",   "reshape",  "dropout",    "batch_norm", "layer_norm",
    "embedding", "relu",     "leaky_relu", "elu",        "gelu",
    "sigmoid",   "tanh",     "softmax",    "linear",     "add",
    "concat",    "multiply", NULL};
/* Indexed by sn_act, then the two layers that are not activations. */
static const char *const LAYERS_NOW[] = {"linear",  "relu",    "sigmoid", "tanh",
                                         "softmax", "flatten", "dense",   NULL};
enum { LAYER_NOW_FLATTEN = 5, LAYER_NOW_DENSE = 6, N_LAYERS_NOW = 7 };
static const char *const ACTS_NOW[] = {"linear", "relu", "sigmoid", "tanh", "softmax", NULL};
static const char *const ACTS_V1[] = {"linear",     "relu", "sigmoid", "tanh", "softmax",
                                      "leaky_relu", "elu",  "gelu",    NULL};
static const char *const INITS_NOW[] = {
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "normal", NULL};

const char *sn_act_name(sn_act a) {
  return a >= SN_ACT_LINEAR && a <= SN_ACT_SOFTMAX ? ACTS_NOW[a] : "?";
}

/* `{normal: {std: F}}` or a bare initializer name; INITS_NOW is in sn_init_kind order. */
static void initializer(checker *c, const sn_node *n, const char *what, sn_init_kind *kind,
                        double *arg) {
  const sn_node *name, *opts, *map;
  if (!choice(c, n, what, &name, &opts)) return;
  int k = lookup(c, name, "initializer", INITS_NOW, NULL);
  if (k < 0) return;
  if (k != SN_INIT_NORMAL) {
    no_options(c, name, opts);
    *kind = (sn_init_kind)k;
    return;
  }
  static const char *const KEYS[] = {"std", NULL};
  if (!options(c, name, opts, &map)) return;
  if (map) check_keys(c, map, "normal", KEYS, NULL);
  const sn_node *std = sn_node_get(map, "std");
  if (!std) {
    sn_diag_error(c->d, (map ? map : name)->loc, "missing required key 'std' in normal");
    sn_diag_hint(c->d, "write {normal: {std: 0.05}}");
    return;
  }
  if (get_real(c, std, "std", 0, true, INFINITY, false, arg)) *kind = SN_INIT_NORMAL;
}

static void dense_options(checker *c, const sn_node *name, const sn_node *opts, sn_layer_spec *l,
                          const sn_node *item) {
  static const char *const KEYS[] = {"units",       "activation", "use_bias",
                                     "kernel_init", "bias_init",  NULL};
  const sn_node *map, *v;
  if (!options(c, name, opts, &map)) return;
  if (map) check_keys(c, map, "dense", KEYS, NULL);
  if ((v = sn_node_get(map, "units")))
    get_int32(c, v, "units", 1, MAX_UNITS, &l->units);
  else
    missing(c, map ? map : item, "units", "dense");
  if ((v = sn_node_get(map, "activation"))) {
    int a = is_name(v) ? lookup(c, v, "activation", ACTS_NOW, ACTS_V1) : -1;
    if (!is_name(v)) type_error(c, v, "activation", "an activation name");
    if (a >= 0) l->activation = (sn_act)a;
  }
  if ((v = sn_node_get(map, "use_bias"))) get_bool(c, v, "use_bias", &l->use_bias);
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
  if ((v = sn_node_get(map, "bias_init")))
    initializer(c, v, "bias_init", &l->bias_init, &l->bias_init_arg);
}

/* Layer names become parameter names ("h1.weight"), so no dots. */
static void layer_name(checker *c, const sn_node *n, sn_layer_spec *l) {
  const char *s = get_str(c, n, "name");
  if (!s) return;
  size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
  if (s[len]) {
    sn_diag_error(c->d, n->loc, "layer name '%s' may only use letters, digits, '_' and '-'", s);
    return;
  }
  if (!strcmp(s, "input")) {
    sn_diag_error(c->d, n->loc, "layer name 'input' is reserved for the model input");
    return;
  }
  copy_field(c, n, "layer name", l->name, sizeof l->name);
}

/* One item of model.layers; `counts` numbers the layers of each kind. */
static void layer(checker *c, const sn_node *item, sn_layer_spec *l, int *counts) {
  l->loc = item->loc;
  l->use_bias = true;
  l->kernel_init = SN_INIT_GLOROT_UNIFORM;
  l->bias_init = SN_INIT_ZEROS;
  const sn_node *kind = NULL, *opts = NULL, *name = NULL;
  if (is_name(item)) {
    kind = item;
  } else if (item->kind == SN_NODE_MAP) {
    for (int i = 0; i < item->n; i++) {
      const sn_node *k = item->keys[i];
      if (!strcmp(k->text, "name")) {
        name = item->items[i];
      } else if (!strcmp(k->text, "inputs")) {
        sn_diag_error(c->d, k->loc, "graph inputs are not supported yet");
      } else if (kind) {
        sn_diag_error(c->d, k->loc, "a layer has one kind, got '%s' and '%s'", kind->text, k->text);
      } else {
        kind = k;
        opts = item->items[i];
      }
    }
    if (!kind) {
      char buf[512];
      sn_diag_error(c->d, item->loc, "layer has no kind");
      sn_diag_hint(c->d, "expected one of: %s", join(LAYERS_NOW, buf, sizeof buf));
      return;
    }
  } else {
    type_error(c, item, "a layer", "a name (- flatten) or a mapping (- dense: {units: 10})");
    return;
  }

  int k = lookup(c, kind, "layer", LAYERS_NOW, LAYERS_V1);
  if (k < 0) return;
  if (k == LAYER_NOW_DENSE) {
    l->kind = SN_LAYER_DENSE;
    dense_options(c, kind, opts, l, item);
  } else {
    no_options(c, kind, opts);
    l->kind = k == LAYER_NOW_FLATTEN ? SN_LAYER_FLATTEN : SN_LAYER_ACTIVATION;
    l->activation = k == LAYER_NOW_FLATTEN ? SN_ACT_LINEAR : (sn_act)k;
  }
  snprintf(l->name, sizeof l->name, "%s%d", LAYERS_NOW[k], ++counts[k]);
  if (name) layer_name(c, name, l);
}

static void model_input(checker *c, const sn_node *n) {
  sn_spec *s = c->s;
  s->input_loc = n->loc;
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 4) {
    type_error(c, n, "input", "a list of 1 to 4 positive integers");
    double v;
    if (n->kind == SN_NODE_SCALAR && parse_real(n->text, &v) == 0)
      sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  int64_t elems = 1;
  bool ok = true;
  for (int i = 0; i < n->n; i++) {
    int64_t dim;
    if (!get_int(c, n->items[i], "an input dimension", 1, MAX_INPUT_ELEMS, &dim)) {
      ok = false;
      continue;
    }
    s->input_shape[i] = dim;
    if (ok && elems <= MAX_INPUT_ELEMS) elems *= dim; /* both <= 2^31: no overflow */
  }
  if (ok && elems > MAX_INPUT_ELEMS) {
    sn_diag_error(c->d, n->loc, "input has more than %lld values per sample",
                  (long long)MAX_INPUT_ELEMS);
    return;
  }
  s->input_rank = n->n;
}

static void model_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"input", "layers", NULL};
  if (!is_map(c, n, "model")) return;
  check_keys(c, n, "model", KEYS, NULL);
  sn_spec *s = c->s;
  const sn_node *v;
  if ((v = sn_node_get(n, "input")))
    model_input(c, v);
  else
    missing(c, n, "input", "model");
  if (!(v = sn_node_get(n, "layers"))) {
    missing(c, n, "layers", "model");
    return;
  }
  if (v->kind != SN_NODE_SEQ || v->n == 0) {
    type_error(c, v, "layers", "a non-empty list");
    return;
  }
  if (v->n > MAX_LAYERS) {
    sn_diag_error(c->d, v->loc, "model has %d layers; at most %d are supported", v->n, MAX_LAYERS);
    return;
  }
  s->layers = calloc((size_t)v->n, sizeof *s->layers);
  if (!s->layers) {
    sn_diag_error(c->d, v->loc, "out of memory");
    return;
  }
  s->n_layers = v->n;
  int counts[N_LAYERS_NOW] = {0};
  for (int i = 0; i < v->n; i++) layer(c, v->items[i], &s->layers[i], counts);
  for (int i = 1; i < s->n_layers; i++)
    for (int j = 0; j < i; j++)
      if (s->layers[i].name[0] && !strcmp(s->layers[i].name, s->layers[j].name)) {
        sn_diag_error(c->d, s->layers[i].loc, "duplicate layer name '%s' (also used at line %d)",
                      s->layers[i].name, s->layers[j].loc.line);
        break;
      }
}

/* ---------------------------------------------------------------------------
 * train */

static const char *const LOSSES_NOW[] = {"sparse_categorical_crossentropy", NULL};
static const char *const LOSSES_V1[] = {"sparse_categorical_crossentropy",
                                        "categorical_crossentropy",
                                        "binary_crossentropy",
                                        "mse",
                                        "mae",
                                        "huber",
                                        NULL};
static const char *const OPTS_NOW[] = {"adam", NULL};
static const char *const OPTS_V1[] = {"adam", "adamw", "sgd", "rmsprop", NULL};
static const char *const METRICS_NOW[] = {"accuracy", NULL};
static const char *const METRICS_V1[] = {"accuracy", "top_k_accuracy", "mse", "mae", NULL};

static void loss(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"from_logits", NULL};
  const sn_node *name, *opts, *map;
  c->s->loss_loc = n->loc;
  if (!choice(c, n, "loss", &name, &opts) || lookup(c, name, "loss", LOSSES_NOW, LOSSES_V1) < 0)
    return;
  c->s->loss = SN_LOSS_SPARSE_CCE;
  if (!options(c, name, opts, &map) || !map) return;
  check_keys(c, map, name->text, KEYS, NULL);
  const sn_node *v = sn_node_get(map, "from_logits");
  if (v) get_bool(c, v, "from_logits", &c->s->from_logits);
}

static void optimizer(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"learning_rate", "beta1", "beta2", "epsilon", NULL};
  const sn_node *name, *opts, *map, *v;
  sn_spec *s = c->s;
  s->optimizer_loc = n->loc;
  if (!choice(c, n, "optimizer", &name, &opts) ||
      lookup(c, name, "optimizer", OPTS_NOW, OPTS_V1) < 0)
    return;
  s->optimizer = SN_OPT_ADAM;
  if (!options(c, name, opts, &map) || !map) return;
  check_keys(c, map, "adam", KEYS, NULL);
  if ((v = sn_node_get(map, "learning_rate")))
    get_real(c, v, "learning_rate", 0, true, INFINITY, false, &s->learning_rate);
  if ((v = sn_node_get(map, "beta1"))) get_real(c, v, "beta1", 0, false, 1, true, &s->beta1);
  if ((v = sn_node_get(map, "beta2"))) get_real(c, v, "beta2", 0, false, 1, true, &s->beta2);
  if ((v = sn_node_get(map, "epsilon")))
    get_real(c, v, "epsilon", 0, true, INFINITY, false, &s->epsilon);
}

static void metrics(checker *c, const sn_node *n) {
  sn_spec *s = c->s;
  int cap = (int)(sizeof s->metrics / sizeof s->metrics[0]);
  if (n->kind != SN_NODE_SEQ) {
    type_error(c, n, "metrics", "a list");
    if (is_name(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts;
    if (!choice(c, n->items[i], "a metric", &name, &opts) ||
        lookup(c, name, "metric", METRICS_NOW, METRICS_V1) < 0)
      continue;
    no_options(c, name, opts);
    bool dup = false;
    for (int j = 0; j < s->n_metrics; j++) dup = dup || !strcmp(s->metrics[j], name->text);
    if (dup) {
      sn_diag_error(c->d, name->loc, "metric '%s' is listed twice", name->text);
    } else if (s->n_metrics == cap) {
      sn_diag_error(c->d, name->loc, "more than %d metrics", cap);
    } else {
      snprintf(s->metrics[s->n_metrics++], sizeof s->metrics[0], "%s", name->text);
    }
  }
}

static void train_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"loss",    "optimizer", "batch_size", "epochs",
                                     "shuffle", "metrics",   NULL};
  static const char *const LATER[] = {"schedule", "early_stopping", "clip_grad_norm", NULL};
  if (!is_map(c, n, "train")) return;
  check_keys(c, n, "train", KEYS, LATER);
  sn_spec *s = c->s;
  const sn_node *v;
  if ((v = sn_node_get(n, "loss")))
    loss(c, v);
  else
    missing(c, n, "loss", "train");
  if ((v = sn_node_get(n, "optimizer"))) optimizer(c, v);
  if ((v = sn_node_get(n, "batch_size"))) get_int(c, v, "batch_size", 1, MAX_BATCH, &s->batch_size);
  if ((v = sn_node_get(n, "epochs"))) get_int32(c, v, "epochs", 0, MAX_EPOCHS, &s->epochs);
  if ((v = sn_node_get(n, "shuffle"))) get_bool(c, v, "shuffle", &s->shuffle);
  if ((v = sn_node_get(n, "metrics"))) metrics(c, v);
}

/* ---------------------------------------------------------------------------
 * expect */

static const char *const EXPECT_SETS[] = {"train", "validation", "test", NULL};

static void expect_range(checker *c, const sn_node *key, const sn_node *v, sn_expect_spec *e) {
  static const char *const KEYS[] = {"min", "max", NULL};
  if (!is_map(c, v, key->text)) return;
  check_keys(c, v, key->text, KEYS, NULL);
  const sn_node *lo = sn_node_get(v, "min"), *hi = sn_node_get(v, "max");
  if (!lo && !hi) {
    sn_diag_error(c->d, v->loc, "expectation '%s' needs min or max", key->text);
    return;
  }
  if (lo) e->has_min = get_real(c, lo, "min", -INFINITY, false, INFINITY, false, &e->min);
  if (hi) e->has_max = get_real(c, hi, "max", -INFINITY, false, INFINITY, false, &e->max);
  if (e->has_min && e->has_max && e->min > e->max)
    sn_diag_error(c->d, lo->loc, "min (%g) is greater than max (%g)", e->min, e->max);
}

/* `set.quantity`: is the set there, and is the quantity computed? */
static bool expect_key(checker *c, const sn_node *key) {
  const sn_spec *s = c->s;
  const char *t = key->text, *dot = strchr(t, '.');
  /* The candidates for "did you mean": every set with loss and every v1 metric. */
  char cand_buf[3 * 5][32];
  const char *cands[3 * 5 + 3];
  int nc = 0;
  for (int i = 0; EXPECT_SETS[i]; i++) {
    snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s.loss", EXPECT_SETS[i]);
    cands[nc] = cand_buf[nc];
    nc++;
    for (int j = 0; METRICS_V1[j]; j++) {
      snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s.%s", EXPECT_SETS[i], METRICS_V1[j]);
      cands[nc] = cand_buf[nc];
      nc++;
    }
  }
  cands[nc++] = "gradcheck";
  cands[nc++] = "error";
  cands[nc] = NULL;

  char set[16] = "";
  bool known_set = dot && dot - t < (int)sizeof set;
  if (known_set) {
    snprintf(set, sizeof set, "%.*s", (int)(dot - t), t);
    known_set = in_list(set, EXPECT_SETS);
  }
  const char *q = dot ? dot + 1 : "";
  if (!known_set || (strcmp(q, "loss") != 0 && !in_list(q, METRICS_V1))) {
    sn_diag_error(c->d, key->loc, "unknown expectation '%s'", t);
    hint_closest(c, t, cands, NULL);
    return false;
  }
  bool ok = true;
  if (strcmp(q, "loss") != 0) {
    bool listed = false;
    for (int i = 0; i < s->n_metrics; i++) listed = listed || !strcmp(s->metrics[i], q);
    if (!listed) {
      sn_diag_error(c->d, key->loc, "expectation '%s' needs '%s' in train.metrics", t, q);
      ok = false;
    }
  }
  if (!strcmp(set, "test") && !sn_node_get(sn_node_get(s->root, "data"), "test")) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs data.test", t);
    ok = false;
  }
  if (!strcmp(set, "validation") && !sn_node_get(sn_node_get(s->root, "data"), "validation")) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs data.validation", t);
    ok = false;
  }
  return ok;
}

static void expect_section(checker *c, const sn_node *n) {
  sn_spec *s = c->s;
  int cap = (int)(sizeof s->expect / sizeof s->expect[0]);
  if (!is_map(c, n, "expect")) return;
  for (int i = 0; i < n->n; i++) {
    const sn_node *key = n->keys[i], *v = n->items[i];
    if (s->n_expect == cap) {
      sn_diag_error(c->d, key->loc, "more than %d expectations", cap);
      return;
    }
    sn_expect_spec *e = &s->expect[s->n_expect];
    *e = (sn_expect_spec){.loc = key->loc};
    if (!strcmp(key->text, "gradcheck")) {
      static const char *const KEYS[] = {"max_rel_error", NULL};
      if (!is_map(c, v, "gradcheck")) continue;
      check_keys(c, v, "gradcheck", KEYS, NULL);
      const sn_node *m = sn_node_get(v, "max_rel_error");
      if (!m)
        missing(c, v, "max_rel_error", "gradcheck");
      else
        get_real(c, m, "max_rel_error", 0, true, INFINITY, false, &e->max_rel_error);
    } else if (!strcmp(key->text, "error")) {
      static const char *const KEYS[] = {"contains", NULL};
      if (!is_map(c, v, "error")) continue;
      check_keys(c, v, "error", KEYS, NULL);
      const sn_node *m = sn_node_get(v, "contains");
      if (!m)
        missing(c, v, "contains", "error");
      else if (get_str(c, m, "contains"))
        copy_field(c, m, "contains", e->contains, sizeof e->contains);
    } else {
      if (!expect_key(c, key)) continue;
      expect_range(c, key, v, e);
    }
    snprintf(e->key, sizeof e->key, "%s", key->text); /* known keys are short */
    s->n_expect++;
  }
}

/* ---------------------------------------------------------------------------
 * The spec */

static void top_name(checker *c, const sn_node *n) {
  const char *s = get_str(c, n, "name");
  if (!s) return;
  size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
  if (s[len]) {
    sn_diag_error(c->d, n->loc, "name '%s' may only use letters, digits, '_', '.' and '-'", s);
    sn_diag_hint(c->d, "the name becomes a folder under runs/");
  } else if (!strcmp(s, ".") || !strcmp(s, "..")) {
    sn_diag_error(c->d, n->loc, "name must not be '%s'", s);
  } else {
    copy_field(c, n, "name", c->s->name, sizeof c->s->name);
  }
}

/* The last layer's softmax and from_logits: true would apply softmax twice. */
static void warn_double_softmax(checker *c) {
  const sn_spec *s = c->s;
  if (!s->from_logits || s->n_layers == 0) return;
  const sn_layer_spec *last = &s->layers[s->n_layers - 1];
  if ((last->kind == SN_LAYER_DENSE || last->kind == SN_LAYER_ACTIVATION) &&
      last->activation == SN_ACT_SOFTMAX) {
    sn_diag_warning(c->d, s->loss_loc,
                    "the last layer (%s) ends in softmax but the loss has from_logits: true, "
                    "so softmax is applied twice",
                    last->name);
    sn_diag_hint(c->d, "drop from_logits, or end the model in a linear layer");
  }
}

static void check_spec(checker *c, const sn_node *root) {
  static const char *const KEYS[] = {"specnet", "name",  "seed",   "data",
                                     "model",   "train", "expect", NULL};
  sn_spec *s = c->s;
  if (root->kind != SN_NODE_MAP) {
    type_error(c, root, "a spec", "a mapping (specnet: 1, name: ..., data: ...)");
    return;
  }
  /* A different version may mean different keys: say only that. */
  const sn_node *v = sn_node_get(root, "specnet");
  if (v) {
    int64_t version;
    if (!get_int(c, v, "specnet", INT64_MIN, INT64_MAX, &version)) return;
    if (version != 1) {
      sn_diag_error(c->d, v->loc, "unsupported spec version %lld; this specnet reads version 1",
                    (long long)version);
      return;
    }
    s->version = 1;
  } else {
    missing(c, root, "specnet", "the spec");
    sn_diag_hint(c->d, "start the spec with 'specnet: 1'");
  }
  check_keys(c, root, "the spec", KEYS, NULL);
  if ((v = sn_node_get(root, "name")))
    top_name(c, v);
  else
    missing(c, root, "name", "the spec");
  int64_t seed;
  if ((v = sn_node_get(root, "seed")) && get_int(c, v, "seed", 0, INT64_MAX, &seed))
    s->seed = (uint64_t)seed;
  if ((v = sn_node_get(root, "data")))
    data_section(c, v);
  else
    missing(c, root, "data", "the spec");
  if ((v = sn_node_get(root, "model")))
    model_section(c, v);
  else
    missing(c, root, "model", "the spec");
  if ((v = sn_node_get(root, "train")))
    train_section(c, v);
  else
    missing(c, root, "train", "the spec");
  if ((v = sn_node_get(root, "expect"))) expect_section(c, v);
  warn_double_softmax(c);
}

sn_spec *sn_spec_from_tree(sn_node *root, const char *path, sn_diag *d) {
  int errors0 = d->errors, first = d->n;
  if (!path) path = "<spec>";
  sn_spec *s = calloc(1, sizeof *s);
  char *p = strdup(path);
  if (!s || !p) {
    sn_diag_error(d, (sn_loc){path, 0, 0}, "out of memory");
    free(s);
    free(p);
    sn_node_free(root);
    return NULL;
  }
  s->path = p;
  s->root = root;
  s->data.scale = 1;
  s->loss = SN_LOSS_SPARSE_CCE;
  s->optimizer = SN_OPT_ADAM;
  s->learning_rate = 0.001;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->epsilon = 1e-7;
  s->batch_size = 32;
  s->epochs = 1;
  s->shuffle = true;

  const char *slash = strrchr(p, '/');
  checker c = {.d = d, .s = s, .dir = p, .dir_len = slash ? (int)(slash - p) + 1 : 0};
  check_spec(&c, root);
  sn_diag_sort(d, first);
  if (d->errors != errors0) {
    sn_spec_free(s);
    return NULL;
  }
  return s;
}

sn_spec *sn_spec_load(const char *path, const char *const *sets, int n_sets, sn_diag *d) {
  int errors0 = d->errors;
  sn_node *root = sn_yaml_parse_file(path, d);
  if (!root) return NULL;
  for (int i = 0; i < n_sets; i++)
    sn_node_set(root, sets[i], d); /* report every bad --set, then check the rest */
  sn_spec *s = sn_spec_from_tree(root, path, d);
  if (s && d->errors != errors0) {
    sn_spec_free(s);
    return NULL;
  }
  return s;
}

void sn_spec_free(sn_spec *s) {
  if (!s) return;
  free((char *)s->path);
  sn_node_free(s->root);
  free(s->layers);
  free(s);
}
