/* The spec checker: turns the YAML tree (yaml_tree.c) into a typed sn_spec,
 * checking strictly and reporting every problem of the spec in one run, each at
 * the node it is about: unknown keys (with "did you mean"), wrong types, missing
 * required keys, out-of-range numbers, a layer graph that does not connect (unknown
 * names, cycles), sweep settings that would not check; and, as warnings, likely
 * mistakes (softmax applied twice, a loss that does not fit the output).
 *
 * Not for shapes (build_graph.c checks those: they need the layer types) and not
 * for data files (the runtime opens them).
 *
 * Defaults are Keras's where Keras has one; docs/spec-reference.md lists every
 * key with its default, and write_spec.c writes them all out. A layer without
 * `name:` is called after its kind and its place among layers of that kind:
 * dense1, dense2, flatten1, relu1. Every layer's inputs are filled in: as written
 * (`inputs: [a, b]`), or else the previous layer ("input" for the first). */
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
#define MAX_WINDOW (INT64_C(1) << 16) /* kernel, pool and stride sides */
#define MAX_COLUMN (INT64_C(1) << 20) /* csv label column number */
#define MAX_SWEEP_RUNS INT64_C(4096)  /* as cli/cmd_sweep.c */
enum { MAX_LAYERS = 4096, MAX_INPUTS = 8 };

/* Synthetic sets of different roles draw from different streams of one seed. */
#define SEED_MIX UINT64_C(0x9E3779B97F4A7C15)
enum { STREAM_TRAIN = 1, STREAM_TEST = 2, STREAM_VALIDATION = 3 };

typedef struct checker {
  sn_diag *d;
  sn_spec *s;
  const char *dir; /* the spec's directory with its '/', or "" */
  int dir_len;
  bool inner; /* checking a copy with one sweep setting applied: skip the sweep */
} checker;

static sn_spec *check_tree(sn_node *root, const char *path, sn_diag *d, bool inner);

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

/* Plain integer syntax: an optional sign and digits. */
static bool is_int_text(const sn_node *n) {
  if (n->kind != SN_NODE_SCALAR || n->quoted) return false;
  const char *p = n->text + (n->text[0] == '+' || n->text[0] == '-');
  if (!*p) return false;
  for (; *p; p++)
    if (*p < '0' || *p > '9') return false;
  return true;
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

static int index_of(const char *w, const char *const *list) {
  for (int i = 0; list && list[i]; i++)
    if (!strcmp(w, list[i])) return i;
  return -1;
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

/* Names Keras or PyTorch users bring along, and what specnet calls them. */
static const char *const ALIASES[][2] = {
    {"mean_squared_error", "mse"},
    {"mean_absolute_error", "mae"},
    {"huber_loss", "huber"},
    {"bce", "binary_crossentropy"},
    {"cce", "categorical_crossentropy"},
    {"scce", "sparse_categorical_crossentropy"},
    {"acc", "accuracy"},
    {"categorical_accuracy", "accuracy"},
    {"sparse_categorical_accuracy", "accuracy"},
    {"binary_accuracy", "accuracy"},
    {"top_k_categorical_accuracy", "top_k_accuracy"},
    {"sparse_top_k_categorical_accuracy", "top_k_accuracy"},
    {"fully_connected", "dense"},
    {"max_pooling2d", "max_pool2d"},
    {"maxpool2d", "max_pool2d"},
    {"average_pooling2d", "avg_pool2d"},
    {"avgpool2d", "avg_pool2d"},
    {"global_average_pooling2d", "global_avg_pool2d"},
    {"global_average_pooling1d", "global_avg_pool1d"},
    {"global_max_pooling1d", "global_max_pool1d"},
    {"batch_normalization", "batch_norm"},
    {"batchnorm", "batch_norm"},
    {"batchnorm2d", "batch_norm"},
    {"layer_normalization", "layer_norm"},
    {"layernorm", "layer_norm"},
    {"concatenate", "concat"},
    {"leakyrelu", "leaky_relu"},
    {"xavier_uniform", "glorot_uniform"},
    {"xavier_normal", "glorot_normal"},
    {"kaiming_uniform", "he_uniform"},
    {"kaiming_normal", "he_normal"},
    {"random_normal", "normal"},
    {"random_uniform", "uniform"},
    {"cosine_decay", "cosine"},
    {"exponential_decay", "exponential"},
    {"step_decay", "step"},
};

/* After an "unknown ..." error: what specnet calls a well-known name, or "did you
 * mean 'x'?" over `a` and `b`, or else the list of what is allowed (`a`). */
static void hint_closest(checker *c, const char *word, const char *const *a, const char *const *b) {
  for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
    if (!strcmp(word, ALIASES[i][0]) && (in_list(ALIASES[i][1], a) || in_list(ALIASES[i][1], b))) {
      sn_diag_hint(c->d, "specnet calls it '%s'", ALIASES[i][1]);
      return;
    }
  const char *all[160];
  int n = 0;
  for (int i = 0; a && a[i] && n < 160; i++) all[n++] = a[i];
  for (int i = 0; b && b[i] && n < 160; i++)
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

/* Every key of `map` must be in `keys`. */
static void check_keys(checker *c, const sn_node *map, const char *where, const char *const *keys) {
  for (int i = 0; i < map->n; i++) {
    const sn_node *k = map->keys[i];
    if (in_list(k->text, keys)) continue;
    sn_diag_error(c->d, k->loc, "unknown key '%s' in %s", k->text, where);
    hint_closest(c, k->text, keys, NULL);
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
  if (!is_int_text(n)) {
    type_error(c, n, what, expected);
    return false;
  }
  errno = 0;
  long long v = strtoll(n->text, NULL, 10);
  char buf[96];
  if (v < lo || (errno == ERANGE && v < 0)) {
    if (lo < 0)
      sn_diag_error(c->d, n->loc, "%s must be at least %lld, got %s", what, (long long)lo,
                    describe(n, buf, sizeof buf));
    else
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
    /* `--set train.optimizer.sgd.learning_rate=0.1` on an adam spec merges sgd in
     * beside adam; switching kinds takes the whole value */
    for (int i = 0; i < 2; i++) {
      const sn_node *k = n->keys[i], *o = n->items[i];
      bool train = !strcmp(what, "optimizer") || !strcmp(what, "loss") || !strcmp(what, "schedule");
      if (!k->loc.file || strcmp(k->loc.file, "--set") || !train) continue;
      if (o && o->kind == SN_NODE_MAP && o->n > 0)
        sn_diag_hint(c->d, "to switch to %s, set the whole %s: --set 'train.%s={%s: {%s: ...}}'",
                     k->text, what, what, k->text, o->keys[0]->text);
      else
        sn_diag_hint(c->d, "to switch to %s, set the whole %s: --set train.%s=%s", k->text, what,
                     what, k->text);
      break;
    }
    return false;
  }
  type_error(c, n, what, "a name or a one-key mapping");
  return false;
}

/* Index of the name in `names`, or -1 after reporting it unknown. `what` is
 * "layer", "loss", ... */
static int lookup(checker *c, const sn_node *name, const char *what, const char *const *names) {
  int i = index_of(name->text, names);
  if (i >= 0) return i;
  sn_diag_error(c->d, name->loc, "unknown %s '%s'", what, name->text);
  hint_closest(c, name->text, names, NULL);
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

/* The options mapping of a kind that has some, checked against `keys`: NULL when
 * absent or empty; false (reported) when it is not a mapping. */
static bool options(checker *c, const sn_node *name, const sn_node *opts, const char *const *keys,
                    const sn_node **map) {
  *map = NULL;
  if (!opts || is_null(opts)) return true;
  char what[96];
  snprintf(what, sizeof what, "options of %s", name->text);
  if (!is_map(c, opts, what)) {
    if (keys[0] && !keys[1]) { /* one option: say how to write it */
      char *text = NULL;
      size_t len = 0;
      FILE *f = open_memstream(&text, &len);
      if (f) {
        sn_node_write_flow(opts, f);
        fclose(f);
      }
      if (text && len <= 40) sn_diag_hint(c->d, "write %s: {%s: %s}", name->text, keys[0], text);
      free(text);
    }
    return false;
  }
  check_keys(c, opts, name->text, keys);
  *map = opts;
  return true;
}

/* ---------------------------------------------------------------------------
 * Names of the enums, in enum order */

static const char *const ACTS[] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = name,
#include "acts.def"
#undef ACTDEF
    NULL};
/* each activation's option keys (its one option, or none), and its default */
static const char *const ACT_KEYS[][2] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = {option, NULL},
#include "acts.def"
#undef ACTDEF
};
static const double ACT_DEFAULT[] = {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) [SN_ACT_##id] = dflt,
#include "acts.def"
#undef ACTDEF
};
static const char *const INITS[] = {"zeros",         "ones",       "glorot_uniform",
                                    "glorot_normal", "he_uniform", "he_normal",
                                    "normal",        "uniform",    NULL}; /* sn_init_kind */
static const char *const LOSSES[] = {"sparse_categorical_crossentropy",
                                     "categorical_crossentropy",
                                     "binary_crossentropy",
                                     "mse",
                                     "mae",
                                     "huber",
                                     NULL}; /* sn_loss_kind */
static const char *const OPTIMIZERS[] = {"adam", "adamw", "sgd", "rmsprop", NULL}; /* sn_opt_kind */
static const char *const METRICS[] = {"accuracy",   "top_k_accuracy", "mse", "mae",
                                      "perplexity", "bits_per_token", NULL}; /* sn_metric_kind */
/* loss and every metric: the figures a set reports */
#define N_FIGURES (sizeof METRICS / sizeof *METRICS)
static const char *const SCHEDULES[] = {"constant", "step", "cosine", "exponential",
                                        NULL};                 /* sn_schedule_kind */
static const char *const PADDINGS[] = {"valid", "same", NULL}; /* sn_padding */

static const char *enum_name(const char *const *names, int n, int k) {
  return k >= 0 && k < n ? names[k] : "?";
}
#define ENUM_NAME(names, k) enum_name(names, (int)(sizeof names / sizeof *names) - 1, (int)(k))

const char *sn_act_name(sn_act a) { return ENUM_NAME(ACTS, a); }
const char *sn_act_option(sn_act a) { return a >= 0 && a < SN_ACT_COUNT ? ACT_KEYS[a][0] : NULL; }
const char *sn_init_name(sn_init_kind k) { return ENUM_NAME(INITS, k); }
const char *sn_loss_name(sn_loss_kind k) { return ENUM_NAME(LOSSES, k); }
const char *sn_optimizer_name(sn_opt_kind k) { return ENUM_NAME(OPTIMIZERS, k); }
const char *sn_schedule_name(sn_schedule_kind k) { return ENUM_NAME(SCHEDULES, k); }

/* ---------------------------------------------------------------------------
 * data */

static const char *const BUILTIN_SETS[] = {"mnist", "fashion_mnist", NULL};
static const char *const SPLITS[] = {"train", "test", NULL};
static const char *const FORMATS[] = {"idx", "csv", "npy", "text", NULL};
enum { FORMAT_IDX, FORMAT_CSV, FORMAT_NPY, FORMAT_TEXT };
static const char *const SYNTH_SETS[] = {"blobs", "spirals", "xor", "linear", NULL};
static const char *const SOURCE_FORMS[] = {"builtin", "format", "synthetic", NULL};
static const char *const BUILTIN_KEYS[] = {"builtin", "split", "limit", NULL};
static const char *const IDX_KEYS[] = {"format", "images", "labels", "limit", NULL};
static const char *const CSV_KEYS[] = {"format", "path", "label", "header", "limit", NULL};
static const char *const NPY_KEYS[] = {"format", "x", "y", "limit", NULL};
static const char *const TEXT_KEYS[] = {"format",  "path",    "tokenizer", "mode",
                                        "context", "windows", "stride",    "length",
                                        "range",   "limit",   NULL};
static const char *const TEXT_MODES[] = {"lm", "classify", NULL}; /* sn_text_mode */
static const char *const TOKENIZERS[] = {"bytes", "chars", NULL}; /* sn_tokenizer */
static const char *const SYNTH_KEYS[] = {"synthetic", "samples", "classes", "noise",
                                         "features",  "limit",   NULL};
static const char *const ANY_SOURCE_KEYS[] = {
    "builtin",   "format", "synthetic", "split",   "images",  "labels",  "path",  "label",
    "header",    "x",      "y",         "limit",   "samples", "classes", "noise", "features",
    "tokenizer", "mode",   "context",   "windows", "stride",  "length",  "range", NULL};

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

/* A required path key of a file source. */
static void source_path(checker *c, const sn_node *map, const char *key, const char *where,
                        char *dst, size_t cap) {
  const sn_node *v = sn_node_get(map, key);
  if (v)
    resolve_path(c, v, key, dst, cap);
  else
    missing(c, map, key, where);
}

static void source_limit(checker *c, const sn_node *map, sn_source *src) {
  const sn_node *v = sn_node_get(map, "limit");
  if (v) get_int(c, v, "limit", 1, INT64_MAX, &src->limit);
}

static void synthetic_source(checker *c, const sn_node *map, const sn_node *kind, sn_source *src) {
  check_keys(c, map, "a synthetic data source", SYNTH_KEYS);
  int k = is_name(kind) ? lookup(c, kind, "synthetic data set", SYNTH_SETS) : -1;
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
    if (k >= 0 && !strcmp(SYNTH_SETS[k], "xor") && src->classes != 2)
      sn_diag_error(c->d, v->loc, "xor has 2 classes, got %d", src->classes);
  }
  if (src->samples * src->features > MAX_SYNTH_ELEMS)
    sn_diag_error(c->d, map->loc, "samples x features is %lld values; at most %lld",
                  (long long)(src->samples * src->features), (long long)MAX_SYNTH_ELEMS);
  if ((v = sn_node_get(map, "features")) && k >= 0 &&
      (!strcmp(SYNTH_SETS[k], "spirals") || !strcmp(SYNTH_SETS[k], "xor")) && src->features < 2)
    sn_diag_error(c->d, v->loc, "%s needs at least 2 features", SYNTH_SETS[k]);
  source_limit(c, map, src);
  if (k >= 0) {
    src->kind = SN_SRC_SYNTHETIC;
    snprintf(src->name, sizeof src->name, "%s", SYNTH_SETS[k]);
  }
}

/* `label:` of a csv source: last, first, a 0-based column number or a column name
 * (which needs the header row). */
static void csv_label(checker *c, const sn_node *v, sn_source *src) {
  static const char *const expected = "last, first, a column number or a column name";
  double num;
  if (!is_name(v) || (!v->quoted && !is_int_text(v) && parse_real(v->text, &num) != 1)) {
    type_error(c, v, "label", expected);
    return;
  }
  if (!v->quoted && !strcmp(v->text, "last")) {
    src->label_index = -1;
  } else if (!v->quoted && !strcmp(v->text, "first")) {
    src->label_index = 0;
  } else if (is_int_text(v)) {
    int64_t k;
    if (get_int(c, v, "label column number", 0, MAX_COLUMN, &k)) src->label_index = (int)k;
  } else if (!src->header) {
    sn_diag_error(c->d, v->loc, "label '%s' names a column, which needs header: true", v->text);
    sn_diag_hint(c->d, "without a header row, give the column's number (from 0), first or last");
  } else {
    copy_field(c, v, "label column name", src->label_col, sizeof src->label_col);
    src->label_index = -1;
  }
}

static void csv_source(checker *c, const sn_node *map, sn_source *src) {
  check_keys(c, map, "a csv data source", CSV_KEYS);
  source_path(c, map, "path", "a csv data source", src->path, sizeof src->path);
  src->header = true;
  src->label_index = -1;
  const sn_node *v;
  if ((v = sn_node_get(map, "header"))) get_bool(c, v, "header", &src->header);
  if ((v = sn_node_get(map, "label"))) csv_label(c, v, src);
  source_limit(c, map, src);
  src->kind = SN_SRC_CSV;
}

/* `range: [from, to]` of a text source: 0 <= from < to <= 1. */
static void text_range(checker *c, const sn_node *v, sn_source *src) {
  double r[2];
  if (v->kind != SN_NODE_SEQ || v->n != 2) {
    type_error(c, v, "range", "[from, to], two fractions of the text");
    return;
  }
  for (int i = 0; i < 2; i++)
    if (!get_real(c, v->items[i], "range", 0, false, 1, false, &r[i])) return;
  if (!(r[0] < r[1])) {
    sn_diag_error(c->d, v->loc, "range [%g, %g] is empty: from must be below to", r[0], r[1]);
    return;
  }
  src->range[0] = r[0];
  src->range[1] = r[1];
}

/* A key of a text source that only one mode reads. */
static void mode_only(checker *c, const sn_node *map, const char *key, const char *mode) {
  const sn_node *k = sn_node_get(map, key);
  if (k) sn_diag_error(c->d, k->loc, "'%s' applies to a text source in %s mode only", key, mode);
}

static void text_source(checker *c, const sn_node *map, sn_source *src) {
  check_keys(c, map, "a text data source", TEXT_KEYS);
  source_path(c, map, "path", "a text data source", src->path, sizeof src->path);
  const sn_node *v;
  int k;
  if ((v = sn_node_get(map, "tokenizer")) && (k = lookup(c, v, "tokenizer", TOKENIZERS)) >= 0)
    src->tokenizer = (sn_tokenizer)k;
  if ((v = sn_node_get(map, "mode")) && (k = lookup(c, v, "text mode", TEXT_MODES)) >= 0)
    src->text_mode = (sn_text_mode)k;
  if ((v = sn_node_get(map, "range"))) text_range(c, v, src);
  source_limit(c, map, src);
  if (src->text_mode == SN_TEXT_CLASSIFY) {
    mode_only(c, map, "context", "lm");
    mode_only(c, map, "windows", "lm");
    mode_only(c, map, "stride", "lm");
    if ((v = sn_node_get(map, "length")))
      get_int(c, v, "length", 1, MAX_INPUT_ELEMS, &src->length);
    else
      missing(c, map, "length", "a text source in classify mode (tokens per record)");
  } else {
    mode_only(c, map, "length", "classify");
    if ((v = sn_node_get(map, "context")))
      get_int(c, v, "context", 1, MAX_INPUT_ELEMS, &src->context);
    else
      missing(c, map, "context", "a text source in lm mode (tokens per window)");
    if ((v = sn_node_get(map, "windows"))) get_int(c, v, "windows", 1, MAX_SAMPLES, &src->windows);
    if ((v = sn_node_get(map, "stride"))) get_int(c, v, "stride", 1, MAX_INPUT_ELEMS, &src->stride);
    if (sn_node_get(map, "windows") && v)
      sn_diag_error(c->d, v->loc,
                    "a text source takes windows (random windows) or stride (a sweep), not both");
  }
  src->kind = SN_SRC_TEXT;
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
    check_keys(c, n, "a data source", ANY_SOURCE_KEYS);
    sn_diag_error(c->d, n->loc, "%s needs one of builtin, format or synthetic%s", what,
                  split ? " (or only split: F)" : "");
    return;
  }

  const sn_node *kind = sn_node_get(n, form->text);
  if (!strcmp(form->text, "builtin")) {
    check_keys(c, n, "a built-in data source", BUILTIN_KEYS);
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
    int f = lookup(c, kind, "data format", FORMATS);
    if (f == FORMAT_IDX) {
      check_keys(c, n, "an idx data source", IDX_KEYS);
      source_path(c, n, "images", "an idx data source", src->images, sizeof src->images);
      source_path(c, n, "labels", "an idx data source", src->labels, sizeof src->labels);
      source_limit(c, n, src);
      src->kind = SN_SRC_IDX;
    } else if (f == FORMAT_CSV) {
      csv_source(c, n, src);
    } else if (f == FORMAT_NPY) {
      check_keys(c, n, "an npy data source", NPY_KEYS);
      source_path(c, n, "x", "an npy data source", src->images, sizeof src->images);
      source_path(c, n, "y", "an npy data source", src->labels, sizeof src->labels);
      source_limit(c, n, src);
      src->kind = SN_SRC_NPY;
    } else if (f == FORMAT_TEXT) {
      text_source(c, n, src);
    } /* an unknown format takes other keys: nothing more to say */
  } else {
    synthetic_source(c, n, kind, src);
  }
}

/* `F` or `[F, ...]` (1 to 64 values) for normalize's mean and std. */
static int norm_values(checker *c, const sn_node *n, const char *what, bool positive,
                       double out[64]) {
  double lo = positive ? 0 : -INFINITY;
  if (n->kind == SN_NODE_SCALAR)
    return get_real(c, n, what, lo, positive, INFINITY, false, &out[0]) ? 1 : 0;
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 64) {
    char expected[64];
    snprintf(expected, sizeof expected, "a number or a list of 1 to 64 numbers");
    type_error(c, n, what, expected);
    return 0;
  }
  bool ok = true;
  for (int i = 0; i < n->n; i++)
    ok = get_real(c, n->items[i], what, lo, positive, INFINITY, false, &out[i]) && ok;
  return ok ? n->n : 0;
}

static void normalize_step(checker *c, const sn_node *name, const sn_node *opts) {
  static const char *const KEYS[] = {"mean", "std", NULL};
  sn_data_spec *ds = &c->s->data;
  const sn_node *map;
  if (!opts || is_null(opts)) {
    sn_diag_error(c->d, name->loc,
                  "normalize needs mean and std: '- normalize: {mean: F, std: F}'");
    return;
  }
  if (!options(c, name, opts, KEYS, &map) || !map) return;
  const sn_node *m = sn_node_get(map, "mean"), *s = sn_node_get(map, "std");
  double mean[64], std[64];
  int nm = 0, ns = 0;
  if (m)
    nm = norm_values(c, m, "mean", false, mean);
  else
    missing(c, map, "mean", "normalize");
  if (s)
    ns = norm_values(c, s, "std", true, std);
  else
    missing(c, map, "std", "normalize");
  if (!nm || !ns) return;
  if (nm > 1 && ns > 1 && nm != ns) {
    sn_diag_error(c->d, s->loc, "std has %d values but mean has %d", ns, nm);
    sn_diag_hint(c->d, "give one value for all features, or one per feature in both");
    return;
  }
  ds->n_norm = nm > ns ? nm : ns;
  for (int i = 0; i < ds->n_norm; i++) {
    ds->norm_mean[i] = mean[nm > 1 ? i : 0]; /* one value stands for every feature */
    ds->norm_std[i] = std[ns > 1 ? i : 0];
  }
}

/* Steps run in a fixed order, so the list must be written in it: scale (several
 * multiply), then normalize or standardize. */
static void preprocess(checker *c, const sn_node *n) {
  static const char *const STEPS[] = {"scale", "normalize", "standardize", "standardize_targets", NULL};
  enum { SCALE, NORMALIZE, STANDARDIZE, STANDARDIZE_TARGETS };
  c->s->data.preprocess_loc = n->loc;
  if (n->kind != SN_NODE_SEQ) {
    type_error(c, n, "preprocess", "a list of steps");
    return;
  }
  const sn_node *seen[4] = {NULL, NULL, NULL, NULL};
  int last = -1;
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts;
    int k;
    if (!choice(c, n->items[i], "a preprocess step", &name, &opts) ||
        (k = lookup(c, name, "preprocess step", STEPS)) < 0)
      continue;
    if (k < last) {
      sn_diag_error(c->d, name->loc, "preprocess step '%s' must come before '%s'", STEPS[k],
                    STEPS[last]);
      sn_diag_hint(c->d, "steps run in the order scale, normalize, standardize, standardize_targets");
      continue;
    }
    if (k != SCALE && seen[k]) {
      sn_diag_error(c->d, name->loc, "preprocess step '%s' is listed twice (also at line %d)",
                    STEPS[k], seen[k]->loc.line);
      continue;
    }
    if (k == STANDARDIZE && seen[NORMALIZE]) {
      seen[k] = name;
      sn_diag_error(c->d, name->loc, "use normalize or standardize, not both");
      sn_diag_hint(c->d, "standardize computes mean and std from the training set");
      continue;
    }
    seen[k] = name;
    last = k;
    double f;
    if (k == NORMALIZE) {
      normalize_step(c, name, opts);
    } else if (k == STANDARDIZE) {
      no_options(c, name, opts);
      c->s->data.standardize = true;
    } else if (k == STANDARDIZE_TARGETS) {
      no_options(c, name, opts);
      c->s->data.standardize_targets = true;
      c->s->data.standardize_targets_loc = name->loc;
    } else if (!opts) {
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
  check_keys(c, n, "data", KEYS);
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
  c->s->pad_id = ds->train.kind == SN_SRC_TEXT && ds->train.text_mode == SN_TEXT_CLASSIFY ? 0 : -1;
}

/* Whether the spec names validation (or test) data, even if wrongly: what depends
 * on it is then not reported again. */
static bool has_data(const sn_spec *s, const char *role) {
  return sn_node_get(sn_node_get(s->root, "data"), role) != NULL;
}

/* ---------------------------------------------------------------------------
 * model: activations, initializers and the options of each layer */

static double default_alpha(sn_act a) { return a >= 0 && a < SN_ACT_COUNT ? ACT_DEFAULT[a] : 0.0; }

/* The option of the activation l->activation (alpha of leaky_relu and elu), from
 * its options (map may be NULL), into l->alpha. */
static void read_act_option(checker *c, const sn_node *map, sn_layer_spec *l) {
  const char *key = sn_act_option(l->activation);
  const sn_node *v = key ? sn_node_get(map, key) : NULL;
  if (v) get_real(c, v, key, 0, false, INFINITY, false, &l->alpha);
}

/* `activation: NAME`, or `activation: {leaky_relu: {alpha: F}}` for those that
 * take an option. */
static void activation_field(checker *c, const sn_node *n, sn_layer_spec *l) {
  const sn_node *name, *opts, *map;
  if (n->kind != SN_NODE_MAP && !is_name(n)) {
    type_error(c, n, "activation", "an activation name");
    return;
  }
  int a;
  if (!choice(c, n, "activation", &name, &opts) || (a = lookup(c, name, "activation", ACTS)) < 0)
    return;
  l->activation = (sn_act)a;
  l->alpha = default_alpha(l->activation);
  if (sn_act_option(l->activation)) {
    if (options(c, name, opts, ACT_KEYS[a], &map)) read_act_option(c, map, l);
  } else {
    no_options(c, name, opts);
  }
}

/* A bare initializer name, `{normal: {std: F}}` or `{uniform: {limit: F}}` (limit
 * 0.05 when left out, as Keras's RandomUniform); INITS is in sn_init_kind order. */
static void initializer(checker *c, const sn_node *n, const char *what, sn_init_kind *kind,
                        double *arg) {
  static const char *const NORMAL_KEYS[] = {"std", NULL};
  static const char *const UNIFORM_KEYS[] = {"limit", NULL};
  const sn_node *name, *opts, *map;
  int k;
  if (!choice(c, n, what, &name, &opts) || (k = lookup(c, name, "initializer", INITS)) < 0) return;
  if (k == SN_INIT_UNIFORM) {
    if (!options(c, name, opts, UNIFORM_KEYS, &map)) return;
    double limit = 0.05;
    const sn_node *v = sn_node_get(map, "limit");
    if (v && !get_real(c, v, "limit", 0, true, INFINITY, false, &limit)) return;
    *kind = SN_INIT_UNIFORM;
    *arg = limit;
    return;
  }
  if (k != SN_INIT_NORMAL) {
    no_options(c, name, opts);
    *kind = (sn_init_kind)k;
    *arg = 0;
    return;
  }
  if (!options(c, name, opts, NORMAL_KEYS, &map)) return;
  const sn_node *std = sn_node_get(map, "std");
  if (!std) {
    sn_diag_error(c->d, (map ? map : name)->loc, "missing required key 'std' in normal");
    sn_diag_hint(c->d, "write {normal: {std: 0.05}}");
    return;
  }
  if (get_real(c, std, "std", 0, true, INFINITY, false, arg)) *kind = SN_INIT_NORMAL;
}

/* `3` or `[3, 5]`: a window side for both axes, or (height, width). */
static void get_pair(checker *c, const sn_node *n, const char *what, int out[2]) {
  if (n->kind == SN_NODE_SEQ && n->n == 2) {
    int v[2];
    if (get_int32(c, n->items[0], what, 1, MAX_WINDOW, &v[0]) &&
        get_int32(c, n->items[1], what, 1, MAX_WINDOW, &v[1])) {
      out[0] = v[0];
      out[1] = v[1];
    }
    return;
  }
  if (n->kind != SN_NODE_SCALAR) {
    type_error(c, n, what, "a positive integer or a list [height, width]");
    return;
  }
  int v;
  if (get_int32(c, n, what, 1, MAX_WINDOW, &v)) out[0] = out[1] = v;
}

static void padding_field(checker *c, const sn_node *n, sn_padding *out) {
  if (!is_name(n)) {
    type_error(c, n, "padding", "valid or same");
    return;
  }
  int k = lookup(c, n, "padding", PADDINGS);
  if (k >= 0) *out = (sn_padding)k;
}

/* Reads the options a layer kind has; `map` is NULL when none are written, `at`
 * is where a missing required key is reported then. */
typedef void (*layer_read_fn)(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l);

static void read_weights(checker *c, const sn_node *map, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "activation"))) activation_field(c, v, l);
  if ((v = sn_node_get(map, "use_bias"))) get_bool(c, v, "use_bias", &l->use_bias);
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
  if ((v = sn_node_get(map, "bias_init")))
    initializer(c, v, "bias_init", &l->bias_init, &l->bias_init_arg);
}

static void read_dense(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "units")))
    get_int32(c, v, "units", 1, MAX_UNITS, &l->units);
  else
    missing(c, map ? map : at, "units", "dense");
  read_weights(c, map, l);
}

static void read_conv2d(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "filters")))
    get_int32(c, v, "filters", 1, MAX_UNITS, &l->filters);
  else
    missing(c, map ? map : at, "filters", "conv2d");
  if ((v = sn_node_get(map, "kernel_size")))
    get_pair(c, v, "kernel_size", l->kernel_size);
  else
    missing(c, map ? map : at, "kernel_size", "conv2d");
  if ((v = sn_node_get(map, "strides"))) get_pair(c, v, "strides", l->strides);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
  read_weights(c, map, l);
}

/* conv1d: one window side, one stride, the [N, 1, T, C] view's second axis. */
static void read_conv1d(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "filters")))
    get_int32(c, v, "filters", 1, MAX_UNITS, &l->filters);
  else
    missing(c, map ? map : at, "filters", "conv1d");
  if ((v = sn_node_get(map, "kernel_size")))
    get_int32(c, v, "kernel_size", 1, MAX_WINDOW, &l->kernel_size[1]);
  else
    missing(c, map ? map : at, "kernel_size", "conv1d");
  if ((v = sn_node_get(map, "strides"))) get_int32(c, v, "strides", 1, MAX_WINDOW, &l->strides[1]);
  if ((v = sn_node_get(map, "dilation"))) get_int32(c, v, "dilation", 1, MAX_WINDOW, &l->dilation);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
  read_weights(c, map, l);
}

static void read_recurrent(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "units")))
    get_int32(c, v, "units", 1, MAX_UNITS, &l->units);
  else
    missing(c, map ? map : at, "units", sn_layer_kind_name(l->kind));
  if ((v = sn_node_get(map, "return_sequences"))) get_bool(c, v, "return_sequences", &l->return_sequences);
}

static void read_pool(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "pool_size"))) get_pair(c, v, "pool_size", l->pool_size);
  l->strides[0] = l->pool_size[0]; /* Keras: strides default to pool_size */
  l->strides[1] = l->pool_size[1];
  if ((v = sn_node_get(map, "strides"))) get_pair(c, v, "strides", l->strides);
  if ((v = sn_node_get(map, "padding"))) padding_field(c, v, &l->padding);
}

static void read_reshape(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *n = sn_node_get(map, "target_shape");
  if (!n) {
    missing(c, map ? map : at, "target_shape", "reshape");
    return;
  }
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 4) {
    type_error(c, n, "target_shape", "a list of 1 to 4 integers (one may be -1)");
    if (is_int_text(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  bool ok = true;
  const sn_node *inferred = NULL;
  for (int i = 0; i < n->n; i++) {
    const sn_node *it = n->items[i];
    int64_t dim;
    if (is_int_text(it) && !strcmp(it->text, "-1")) {
      if (inferred) {
        sn_diag_error(c->d, it->loc, "target_shape may have one -1, got a second");
        ok = false;
      }
      inferred = it;
      l->target_shape[i] = -1;
    } else if (get_int(c, it, "a target_shape dimension", 1, MAX_INPUT_ELEMS, &dim)) {
      l->target_shape[i] = dim;
    } else {
      ok = false;
    }
  }
  if (ok) l->target_rank = n->n;
}

static void read_dropout(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v = sn_node_get(map, "rate");
  if (v)
    get_real(c, v, "rate", 0, false, 1, true, &l->rate);
  else
    missing(c, map ? map : at, "rate", "dropout");
}

static void read_norm(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "momentum")))
    get_real(c, v, "momentum", 0, false, 1, true, &l->momentum);
  if ((v = sn_node_get(map, "epsilon")))
    get_real(c, v, "epsilon", 0, true, INFINITY, false, &l->epsilon);
}

static void read_embedding(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v, *vv = sn_node_get(map, "vocab"), *dv = sn_node_get(map, "dim");
  bool ok = true;
  if (vv)
    ok = get_int32(c, vv, "vocab", 1, MAX_UNITS, &l->vocab);
  else
    missing(c, map ? map : at, "vocab", "embedding");
  if (dv)
    ok = get_int32(c, dv, "dim", 1, MAX_UNITS, &l->dim) && ok;
  else
    missing(c, map ? map : at, "dim", "embedding");
  if (vv && dv && ok && (int64_t)l->vocab * l->dim > MAX_INPUT_ELEMS)
    sn_diag_error(c->d, vv->loc, "embedding has vocab x dim = %lld parameters; at most %lld",
                  (long long)l->vocab * l->dim, (long long)MAX_INPUT_ELEMS);
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
}

static void read_act_layer(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  (void)at;
  read_act_option(c, map, l);
}

static void read_concat(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v = sn_node_get(map, "axis");
  if (v) get_int32(c, v, "axis", -4, 3, &l->axis); /* per sample: rank 4 at most */
}

/* sequence layers: position_embedding, attention */
static void read_position_embedding(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "kernel_init")))
    initializer(c, v, "kernel_init", &l->kernel_init, &l->kernel_init_arg);
}

static void read_attention(checker *c, const sn_node *map, const sn_node *at, sn_layer_spec *l) {
  const sn_node *v;
  if ((v = sn_node_get(map, "heads"))) {
    get_int32(c, v, "heads", 1, MAX_UNITS, &l->heads);
    l->heads_loc = v->loc;
  }
  else
    missing(c, map ? map : at, "heads", "attention");
  if ((v = sn_node_get(map, "causal"))) get_bool(c, v, "causal", &l->causal);
  if ((v = sn_node_get(map, "dropout"))) get_real(c, v, "dropout", 0, false, 1, true, &l->rate);
  if ((v = sn_node_get(map, "use_bias"))) get_bool(c, v, "use_bias", &l->use_bias);
}

/* ---------------------------------------------------------------------------
 * model: the layer table. One entry per layer name; "did you mean" and the
 * default names (dense1, relu2) come from it. */

static const char *const DENSE_KEYS[] = {"units",       "activation", "use_bias",
                                         "kernel_init", "bias_init",  NULL};
static const char *const CONV_KEYS[] = {"filters",     "kernel_size", "strides",
                                        "padding",     "activation",  "use_bias",
                                        "kernel_init", "bias_init",   NULL};
static const char *const CONV1D_KEYS[] = {"filters",    "kernel_size", "strides",   "padding",
                                          "dilation",   "activation",  "use_bias",  "kernel_init",
                                          "bias_init",  NULL};
static const char *const RECURRENT_KEYS[] = {"units", "return_sequences", NULL};
static const char *const POOL_KEYS[] = {"pool_size", "strides", "padding", NULL};
static const char *const RESHAPE_KEYS[] = {"target_shape", NULL};
static const char *const DROPOUT_KEYS[] = {"rate", NULL};
static const char *const BN_KEYS[] = {"momentum", "epsilon", NULL};
static const char *const LN_KEYS[] = {"epsilon", NULL};
static const char *const EMBED_KEYS[] = {"vocab", "dim", "kernel_init", NULL};
static const char *const CONCAT_KEYS[] = {"axis", NULL};
static const char *const POS_EMBED_KEYS[] = {"kernel_init", NULL};
static const char *const ATTENTION_KEYS[] = {"heads", "causal", "dropout", "use_bias", NULL};

typedef struct layer_def {
  const char *name;
  sn_layer_kind kind;
  sn_act act;              /* activation layers */
  const char *const *keys; /* option keys; NULL: the layer takes no options */
  layer_read_fn read;
  int min_inputs, max_inputs;
} layer_def;

static const layer_def LAYER_DEFS[] = {
    {"dense", SN_LAYER_DENSE, 0, DENSE_KEYS, read_dense, 1, 1},
    {"conv2d", SN_LAYER_CONV2D, 0, CONV_KEYS, read_conv2d, 1, 1},
    {"max_pool2d", SN_LAYER_MAX_POOL2D, 0, POOL_KEYS, read_pool, 1, 1},
    {"avg_pool2d", SN_LAYER_AVG_POOL2D, 0, POOL_KEYS, read_pool, 1, 1},
    {"global_avg_pool2d", SN_LAYER_GLOBAL_AVG_POOL2D, 0, NULL, NULL, 1, 1},
    {"flatten", SN_LAYER_FLATTEN, 0, NULL, NULL, 1, 1},
    {"reshape", SN_LAYER_RESHAPE, 0, RESHAPE_KEYS, read_reshape, 1, 1},
    {"dropout", SN_LAYER_DROPOUT, 0, DROPOUT_KEYS, read_dropout, 1, 1},
    {"batch_norm", SN_LAYER_BATCH_NORM, 0, BN_KEYS, read_norm, 1, 1},
    {"layer_norm", SN_LAYER_LAYER_NORM, 0, LN_KEYS, read_norm, 1, 1},
    {"embedding", SN_LAYER_EMBEDDING, 0, EMBED_KEYS, read_embedding, 1, 1},
/* every activation as a layer (`- relu`, `- leaky_relu: {alpha: 0.1}`) */
#define ACTDEF(id, name, op, grad_op, from, option, dflt) \
    {name, SN_LAYER_ACTIVATION, SN_ACT_##id, ACT_KEYS[SN_ACT_##id], read_act_layer, 1, 1},
#include "acts.def"
#undef ACTDEF
    /* sequences [N, T, C] */
    {"conv1d", SN_LAYER_CONV1D, 0, CONV1D_KEYS, read_conv1d, 1, 1},
    {"global_avg_pool1d", SN_LAYER_GLOBAL_AVG_POOL1D, 0, NULL, NULL, 1, 1},
    {"global_max_pool1d", SN_LAYER_GLOBAL_MAX_POOL1D, 0, NULL, NULL, 1, 1},
    {"lstm", SN_LAYER_LSTM, 0, RECURRENT_KEYS, read_recurrent, 1, 1},
    {"gru", SN_LAYER_GRU, 0, RECURRENT_KEYS, read_recurrent, 1, 1},
    {"add", SN_LAYER_ADD, 0, NULL, NULL, 2, MAX_INPUTS},
    {"multiply", SN_LAYER_MULTIPLY, 0, NULL, NULL, 2, MAX_INPUTS},
    {"concat", SN_LAYER_CONCAT, 0, CONCAT_KEYS, read_concat, 2, MAX_INPUTS},
    /* sequences */
    {"position_embedding", SN_LAYER_POSITION_EMBEDDING, 0, POS_EMBED_KEYS, read_position_embedding, 1, 1},
    {"attention", SN_LAYER_ATTENTION, 0, ATTENTION_KEYS, read_attention, 1, 1},
};
enum { N_LAYER_DEFS = sizeof LAYER_DEFS / sizeof *LAYER_DEFS };

/* The layer names, NULL-terminated, for lookups and hints. */
static const char *const *layer_names(const char *names[N_LAYER_DEFS + 1]) {
  for (int i = 0; i < N_LAYER_DEFS; i++) names[i] = LAYER_DEFS[i].name;
  names[N_LAYER_DEFS] = NULL;
  return names;
}

bool sn_spec_softmax_output(const sn_spec *s) {
  return s->n_layers > 0 && s->layers[s->n_layers - 1].activation == SN_ACT_SOFTMAX && !s->from_logits;
}

const char *sn_layer_kind_name(sn_layer_kind k) {
  if (k == SN_LAYER_ACTIVATION) return "activation";
  for (int i = 0; i < N_LAYER_DEFS; i++)
    if (LAYER_DEFS[i].kind == k) return LAYER_DEFS[i].name;
  return "?";
}

/* Defaults of a layer of kind `def`, before its options are read. */
static void layer_defaults(sn_layer_spec *l, const layer_def *def) {
  l->kind = def->kind;
  l->activation = def->kind == SN_LAYER_ACTIVATION ? def->act : SN_ACT_LINEAR;
  l->alpha = default_alpha(l->activation);
  l->use_bias = true;
  l->kernel_init = SN_INIT_GLOROT_UNIFORM;
  l->bias_init = SN_INIT_ZEROS;
  switch (def->kind) {
  case SN_LAYER_CONV2D:
    l->strides[0] = l->strides[1] = 1;
    break;
  case SN_LAYER_CONV1D:
    l->kernel_size[0] = l->strides[0] = l->strides[1] = l->dilation = 1;
    break;
  case SN_LAYER_MAX_POOL2D:
  case SN_LAYER_AVG_POOL2D:
    l->pool_size[0] = l->pool_size[1] = 2;
    break;
  case SN_LAYER_BATCH_NORM:
    l->momentum = 0.99;
    l->epsilon = 1e-3;
    break;
  case SN_LAYER_LAYER_NORM:
    l->epsilon = 1e-3;
    break;
  case SN_LAYER_EMBEDDING:
    l->use_bias = false;
    l->kernel_init = SN_INIT_UNIFORM; /* Keras's embeddings: uniform in [-0.05, 0.05] */
    l->kernel_init_arg = 0.05;
    break;
  case SN_LAYER_CONCAT:
    l->axis = -1;
    break;
  case SN_LAYER_POSITION_EMBEDDING:
    l->use_bias = false;
    l->kernel_init = SN_INIT_NORMAL; /* GPT-2's: normal, std 0.02 */
    l->kernel_init_arg = 0.02;
    break;
  default:
    break;
  }
}

/* ---------------------------------------------------------------------------
 * model: one item of the layer list */

/* What the graph pass needs beyond sn_layer_spec. */
typedef struct layer_aux {
  const layer_def *def;  /* NULL when the kind is wrong */
  const sn_node *inputs; /* the `inputs:` value, or NULL */
  int src[MAX_INPUTS];   /* resolved inputs: a layer index, -1 the model input, -2 none */
} layer_aux;

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

static void layer_inputs(checker *c, const sn_node *n, sn_layer_spec *l) {
  if (n->kind != SN_NODE_SEQ || n->n == 0) {
    type_error(c, n, "inputs", "a non-empty list of layer names");
    if (is_name(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  if (n->n > MAX_INPUTS) {
    sn_diag_error(c->d, n->loc, "a layer takes at most %d inputs, got %d", MAX_INPUTS, n->n);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    l->input_locs[i] = n->items[i]->loc;
    if (get_str(c, n->items[i], "an input name"))
      copy_field(c, n->items[i], "an input name", l->inputs[i], sizeof l->inputs[i]);
  }
  l->n_inputs = n->n;
}

static const layer_def *find_layer_def(const char *name) {
  for (int i = 0; i < N_LAYER_DEFS; i++)
    if (!strcmp(name, LAYER_DEFS[i].name)) return &LAYER_DEFS[i];
  return NULL;
}

/* One item of model.layers: `- flatten`, `- dense: {...}`, or a mapping with one
 * layer key beside `name:` and `inputs:`. `counts` numbers the layers of each kind. */
static void layer(checker *c, const sn_node *item, sn_layer_spec *l, layer_aux *aux, int *counts) {
  static const char *const ITEM_KEYS[] = {"name", "inputs", NULL};
  const char *names[N_LAYER_DEFS + 1];
  layer_names(names);
  l->loc = item->loc;
  const sn_node *kind = NULL, *opts = NULL, *name = NULL;
  if (is_name(item)) {
    kind = item;
  } else if (item->kind == SN_NODE_MAP) {
    for (int i = 0; i < item->n; i++) {
      const sn_node *k = item->keys[i];
      if (!strcmp(k->text, "name")) {
        name = item->items[i];
      } else if (!strcmp(k->text, "inputs")) {
        aux->inputs = item->items[i];
      } else if (find_layer_def(k->text)) {
        if (kind) {
          sn_diag_error(c->d, k->loc, "a layer has one kind, got '%s' and '%s'", kind->text,
                        k->text);
        } else {
          kind = k;
          opts = item->items[i];
        }
      }
    }
    /* A key that is no layer is the kind when there is none (a misspelt layer),
     * else an unknown key. */
    for (int i = 0; i < item->n; i++) {
      const sn_node *k = item->keys[i];
      if (in_list(k->text, ITEM_KEYS) || find_layer_def(k->text)) continue;
      if (!kind) {
        kind = k;
        opts = item->items[i];
        continue;
      }
      sn_diag_error(c->d, k->loc, "unknown key '%s' in a layer", k->text);
      hint_closest(c, k->text, ITEM_KEYS, names);
    }
  } else {
    type_error(c, item, "a layer", "a name (- flatten) or a mapping (- dense: {units: 10})");
    return;
  }
  if (name) layer_name(c, name, l);
  if (aux->inputs) layer_inputs(c, aux->inputs, l);
  if (!kind) {
    char buf[512];
    sn_diag_error(c->d, item->loc, "layer has no kind");
    sn_diag_hint(c->d, "expected one of: %s", join(names, buf, sizeof buf));
    return;
  }
  int k = lookup(c, kind, "layer", names);
  if (k < 0) return;
  const layer_def *def = &LAYER_DEFS[k];
  aux->def = def;
  layer_defaults(l, def);
  ++counts[k];
  if (!name) snprintf(l->name, sizeof l->name, "%s%d", def->name, counts[k]);
  const sn_node *map = NULL;
  if (!def->keys || !def->keys[0])
    no_options(c, kind, opts);
  else if (!options(c, kind, opts, def->keys, &map))
    return;
  if (def->read) def->read(c, map, item, l);
}

/* ---------------------------------------------------------------------------
 * model: the layer graph. Names resolve to layers, each layer gets as many
 * inputs as its kind takes, cycles are errors, and sn_spec.order is a topological
 * order that keeps list order where it can (Kahn's algorithm taking the lowest
 * ready index first). */

typedef struct named {
  const char *name;
  int index;
} named;

static int cmp_named(const void *pa, const void *pb) {
  const named *a = pa, *b = pb;
  int r = strcmp(a->name, b->name);
  return r ? r : (a->index > b->index) - (a->index < b->index);
}

/* Index of the first layer called `name` in the sorted table, or -1. */
static int find_named(const named *tab, int n, const char *name) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(tab[mid].name, name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && !strcmp(tab[lo].name, name) ? tab[lo].index : -1;
}

/* A min-heap of layer indices: the ready layers, lowest first. */
static void heap_push(int *h, int *n, int v) {
  int i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = v;
}

static int heap_pop(int *h, int *n) {
  int top = h[0], v = h[--*n], i = 0;
  for (;;) {
    int k = 2 * i + 1;
    if (k >= *n) break;
    if (k + 1 < *n && h[k + 1] < h[k]) k++;
    if (h[k] >= v) break;
    h[i] = h[k];
    i = k;
  }
  h[i] = v;
  return top;
}

/* The back edge u -> v (v takes u's output) closes the loop stk[at..sp) -> v. */
static void report_cycle(checker *c, const layer_aux *aux, int u, int v, const int *stk, int sp) {
  const sn_layer_spec *L = c->s->layers;
  int a = u < v ? u : v, b = u < v ? v : u, k = 0, at = sp - 1;
  while (k < L[v].n_inputs - 1 && aux[v].src[k] != u) k++;
  while (at > 0 && stk[at] != v) at--;
  sn_diag_error(c->d, L[v].input_locs[k],
                "cycle: layer '%s' (line %d) and layer '%s' (line %d) feed each other", L[a].name,
                L[a].loc.line, L[b].name, L[b].loc.line);
  if (sp - at <= 2) return;
  char path[512];
  size_t len = 0;
  for (int i = at; i <= sp && len < sizeof path; i++) {
    int w = snprintf(path + len, sizeof path - len, "%s%s", i > at ? " -> " : "",
                     L[i < sp ? stk[i] : v].name);
    len = w < 0 ? sizeof path : len + (size_t)w;
  }
  if (len >= sizeof path) memcpy(path + sizeof path - 4, "...", 4);
  sn_diag_hint(c->d, "the loop: %s", path);
}

static void graph(checker *c, layer_aux *aux) {
  sn_spec *s = c->s;
  sn_layer_spec *L = s->layers;
  int n = s->n_layers, errors0 = c->d->errors;

  /* Without `inputs:`, a layer takes the previous one. */
  for (int i = 0; i < n; i++) {
    const char *prev = i ? L[i - 1].name : "input";
    if (aux[i].inputs || !*prev) continue; /* a previous layer without a name is reported */
    snprintf(L[i].inputs[0], sizeof L[i].inputs[0], "%s", prev);
    L[i].input_locs[0] = L[i].loc;
    L[i].n_inputs = 1;
  }
  for (int i = 0; i < n; i++) {
    const layer_def *def = aux[i].def;
    int k = L[i].n_inputs;
    if (!def || !k || !L[i].name[0]) continue;
    sn_loc at = aux[i].inputs ? aux[i].inputs->loc : L[i].loc;
    if (k < def->min_inputs) {
      sn_diag_error(c->d, at, "layer '%s' (%s) needs at least %d inputs, got %d", L[i].name,
                    def->name, def->min_inputs, k);
      if (!aux[i].inputs) sn_diag_hint(c->d, "name the layers it joins: inputs: [a, b]");
    } else if (k > def->max_inputs) {
      sn_diag_error(c->d, at, "layer '%s' (%s) takes 1 input, got %d", L[i].name, def->name, k);
      sn_diag_hint(c->d, "join them first with add, multiply or concat");
    }
  }

  named *tab = malloc(sizeof *tab * (size_t)n);
  const char **cands = malloc(sizeof *cands * (size_t)(n + 2));
  int *indeg = calloc((size_t)n, sizeof *indeg), *start = calloc((size_t)n + 1, sizeof *start);
  int *adj = malloc(sizeof *adj * (size_t)n * MAX_INPUTS), *heap = malloc(sizeof *heap * (size_t)n);
  int *order = malloc(sizeof *order * (size_t)n), *color = calloc((size_t)n, sizeof *color);
  int *stk = malloc(sizeof *stk * (size_t)n), *pos = malloc(sizeof *pos * (size_t)n);
  if (!tab || !cands || !indeg || !start || !adj || !heap || !order || !color || !stk || !pos) {
    sn_diag_error(c->d, s->layers[0].loc, "out of memory");
    goto done;
  }

  /* Names: duplicates, then each input resolved. */
  int nt = 0;
  for (int i = 0; i < n; i++)
    if (L[i].name[0]) tab[nt++] = (named){L[i].name, i};
  qsort(tab, (size_t)nt, sizeof *tab, cmp_named);
  for (int j = 1, g = 0; j < nt; j++) {
    if (strcmp(tab[j].name, tab[g].name)) {
      g = j;
      continue;
    }
    sn_diag_error(c->d, L[tab[j].index].loc, "duplicate layer name '%s' (also used at line %d)",
                  tab[j].name, L[tab[g].index].loc.line);
  }
  for (int i = 0; i < n; i++) cands[i] = L[i].name;
  cands[n] = "input";
  cands[n + 1] = NULL;
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < L[i].n_inputs; k++) {
      const char *in = L[i].inputs[k];
      aux[i].src[k] = -2;
      if (!*in) continue;
      if (!strcmp(in, "input")) {
        aux[i].src[k] = -1;
        continue;
      }
      int j = find_named(tab, nt, in);
      if (j < 0) {
        sn_diag_error(c->d, L[i].input_locs[k], "unknown layer '%s' in inputs", in);
        hint_closest(c, in, cands, NULL);
      } else if (j == i) {
        sn_diag_error(c->d, L[i].input_locs[k], "layer '%s' takes its own output as input", in);
      } else {
        aux[i].src[k] = j;
        indeg[i]++;
        start[j + 1]++;
      }
    }
  }

  /* Edges producer -> consumer, as lists of consumers. */
  for (int i = 0; i < n; i++) start[i + 1] += start[i];
  for (int i = 0; i < n; i++) pos[i] = start[i];
  for (int i = 0; i < n; i++)
    for (int k = 0; k < L[i].n_inputs; k++)
      if (aux[i].src[k] >= 0) adj[pos[aux[i].src[k]]++] = i;

  int nh = 0, placed = 0;
  for (int i = 0; i < n; i++)
    if (!indeg[i]) heap_push(heap, &nh, i);
  while (nh) {
    int u = heap_pop(heap, &nh);
    order[placed++] = u;
    color[u] = 2;
    for (int e = start[u]; e < start[u + 1]; e++)
      if (!--indeg[adj[e]]) heap_push(heap, &nh, adj[e]);
  }

  /* What is left lies on a cycle or after one: a depth-first search over it
   * finds each cycle's closing edge. */
  for (int r = 0; r < n && placed < n; r++) {
    if (color[r]) continue;
    int sp = 0;
    stk[sp] = r;
    pos[sp++] = start[r];
    color[r] = 1;
    while (sp) {
      int u = stk[sp - 1];
      if (pos[sp - 1] == start[u + 1]) {
        color[u] = 2;
        sp--;
        continue;
      }
      int v = adj[pos[sp - 1]++];
      if (color[v] == 1) {
        report_cycle(c, aux, u, v, stk, sp);
      } else if (!color[v]) {
        color[v] = 1;
        stk[sp] = v;
        pos[sp++] = start[v];
      }
    }
  }

  if (placed == n && c->d->errors == errors0) {
    for (int i = 0; i < n - 1; i++) {
      /* a layer that failed to parse has no name and was reported already */
      if (start[i + 1] > start[i] || !L[i].name[0]) continue;
      sn_diag_warning(c->d, L[i].loc,
                      "the output of layer '%s' is not used: no layer takes it, and only the "
                      "last layer is the model output",
                      L[i].name);
      sn_diag_hint(c->d, "list '%s' in the inputs of a later layer, or remove it", L[i].name);
    }
    s->order = order;
    order = NULL;
  }
done:
  free(tab);
  free(cands);
  free(indeg);
  free(start);
  free(adj);
  free(heap);
  free(order);
  free(color);
  free(stk);
  free(pos);
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
  static const char *const KEYS[] = {"input", "layers", "pad_id", NULL};
  if (!is_map(c, n, "model")) return;
  check_keys(c, n, "model", KEYS);
  sn_spec *s = c->s;
  const sn_node *v;
  if ((v = sn_node_get(n, "input")))
    model_input(c, v);
  else
    missing(c, n, "input", "model");
  if ((v = sn_node_get(n, "pad_id")) && get_int32(c, v, "pad_id", 0, INT32_MAX, &s->pad_id))
    s->pad_id_loc = v->loc;
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
  layer_aux *aux = calloc((size_t)v->n, sizeof *aux);
  if (!s->layers || !aux) {
    sn_diag_error(c->d, v->loc, "out of memory");
    free(aux);
    return;
  }
  s->n_layers = v->n;
  int counts[N_LAYER_DEFS] = {0};
  for (int i = 0; i < v->n; i++) layer(c, v->items[i], &s->layers[i], &aux[i], counts);
  graph(c, aux);
  free(aux);
}

/* ---------------------------------------------------------------------------
 * train */

static void loss(checker *c, const sn_node *n) {
  static const char *const LOGITS_KEYS[] = {"from_logits", NULL};
  static const char *const HUBER_KEYS[] = {"delta", NULL};
  const sn_node *name, *opts, *map;
  sn_spec *s = c->s;
  s->loss_loc = n->loc;
  int k;
  if (!choice(c, n, "loss", &name, &opts) || (k = lookup(c, name, "loss", LOSSES)) < 0) return;
  s->loss = (sn_loss_kind)k;
  const sn_node *v;
  switch (s->loss) {
  case SN_LOSS_SPARSE_CCE:
  case SN_LOSS_CCE:
  case SN_LOSS_BCE:
    if (options(c, name, opts, LOGITS_KEYS, &map) && (v = sn_node_get(map, "from_logits")))
      get_bool(c, v, "from_logits", &s->from_logits);
    break;
  case SN_LOSS_HUBER:
    if (options(c, name, opts, HUBER_KEYS, &map) && (v = sn_node_get(map, "delta")))
      get_real(c, v, "delta", 0, true, INFINITY, false, &s->huber_delta);
    break;
  default:
    no_options(c, name, opts);
  }
}

/* The value of `key` in `map` if `keys` allows it (other keys are reported as
 * unknown already). */
static const sn_node *own(const sn_node *map, const char *const *keys, const char *key) {
  return in_list(key, keys) ? sn_node_get(map, key) : NULL;
}

static void optimizer(checker *c, const sn_node *n) {
  static const char *const ADAM_KEYS[] = {"learning_rate", "beta1", "beta2", "epsilon", NULL};
  static const char *const ADAMW_KEYS[] = {"learning_rate", "beta1",        "beta2",
                                           "epsilon",       "weight_decay", NULL};
  static const char *const SGD_KEYS[] = {"learning_rate", "momentum", "nesterov", NULL};
  static const char *const RMSPROP_KEYS[] = {"learning_rate", "rho", "momentum", "epsilon", NULL};
  static const char *const *const KEYS[] = {ADAM_KEYS, ADAMW_KEYS, SGD_KEYS, RMSPROP_KEYS};
  const sn_node *name, *opts, *map, *v;
  sn_spec *s = c->s;
  s->optimizer_loc = n->loc;
  int k;
  if (!choice(c, n, "optimizer", &name, &opts) ||
      (k = lookup(c, name, "optimizer", OPTIMIZERS)) < 0)
    return;
  s->optimizer = (sn_opt_kind)k;
  /* Keras's defaults per optimizer. */
  s->learning_rate = s->optimizer == SN_OPT_SGD ? 0.01 : 0.001;
  if (s->optimizer == SN_OPT_ADAMW) s->weight_decay = 0.004;
  if (s->optimizer == SN_OPT_RMSPROP) s->rho = 0.9;
  const char *const *keys = KEYS[k];
  if (!options(c, name, opts, keys, &map) || !map) return;
  if ((v = own(map, keys, "learning_rate")) &&
      get_real(c, v, "learning_rate", 0, true, INFINITY, false, &s->learning_rate) &&
      s->learning_rate > 1) {
    sn_diag_warning(c->d, v->loc, "learning_rate %g is unusually large", s->learning_rate);
    sn_diag_hint(c->d, "typical values lie between 1e-4 and 0.1");
  }
  if ((v = own(map, keys, "beta1"))) get_real(c, v, "beta1", 0, false, 1, true, &s->beta1);
  if ((v = own(map, keys, "beta2"))) get_real(c, v, "beta2", 0, false, 1, true, &s->beta2);
  if ((v = own(map, keys, "epsilon")))
    get_real(c, v, "epsilon", 0, true, INFINITY, false, &s->epsilon);
  if ((v = own(map, keys, "weight_decay")))
    get_real(c, v, "weight_decay", 0, false, INFINITY, false, &s->weight_decay);
  if ((v = own(map, keys, "rho"))) get_real(c, v, "rho", 0, false, 1, true, &s->rho);
  bool momentum_ok = true;
  if ((v = own(map, keys, "momentum")))
    momentum_ok = get_real(c, v, "momentum", 0, false, 1, true, &s->momentum);
  if ((v = own(map, keys, "nesterov")) && get_bool(c, v, "nesterov", &s->nesterov) && s->nesterov &&
      momentum_ok && s->momentum == 0) {
    sn_diag_error(c->d, v->loc, "nesterov needs momentum greater than 0");
    sn_diag_hint(c->d, "add momentum: 0.9");
  }
}

static void schedule(checker *c, const sn_node *n) {
  static const char *const STEP_KEYS[] = {"every", "gamma", NULL};
  static const char *const COSINE_KEYS[] = {"warmup_epochs", NULL};
  static const char *const EXP_KEYS[] = {"gamma", NULL};
  const sn_node *name, *opts, *map, *v;
  sn_schedule *sc = &c->s->schedule;
  c->s->schedule_loc = n->loc;
  int k;
  if (!choice(c, n, "schedule", &name, &opts) || (k = lookup(c, name, "schedule", SCHEDULES)) < 0)
    return;
  sc->kind = (sn_schedule_kind)k;
  switch (sc->kind) {
  case SN_SCHED_CONSTANT:
    no_options(c, name, opts);
    break;
  case SN_SCHED_STEP:
    sc->gamma = 0.1; /* as PyTorch's StepLR */
    if (!options(c, name, opts, STEP_KEYS, &map)) break;
    if ((v = sn_node_get(map, "every"))) {
      get_int32(c, v, "every", 1, MAX_EPOCHS, &sc->every);
    } else {
      missing(c, map ? map : name, "every", "step");
      sn_diag_hint(c->d, "write {step: {every: 10, gamma: 0.5}}");
    }
    if ((v = sn_node_get(map, "gamma"))) get_real(c, v, "gamma", 0, true, 1, false, &sc->gamma);
    break;
  case SN_SCHED_COSINE:
    if (!options(c, name, opts, COSINE_KEYS, &map)) break;
    if ((v = sn_node_get(map, "warmup_epochs")) &&
        get_real(c, v, "warmup_epochs", 0, false, (double)MAX_EPOCHS, false, &sc->warmup_epochs) &&
        c->s->epochs > 0 && sc->warmup_epochs >= c->s->epochs) {
      sn_diag_warning(c->d, v->loc,
                      "warmup_epochs (%g) is not less than epochs (%d): the learning rate never "
                      "reaches its full value",
                      sc->warmup_epochs, c->s->epochs);
      sn_diag_hint(c->d, "warm up for a small part of training, e.g. 5%% of the epochs");
    }
    break;
  case SN_SCHED_EXPONENTIAL:
    if (!options(c, name, opts, EXP_KEYS, &map)) break;
    if ((v = sn_node_get(map, "gamma"))) {
      get_real(c, v, "gamma", 0, true, 1, false, &sc->gamma);
    } else {
      missing(c, map ? map : name, "gamma", "exponential");
      sn_diag_hint(c->d, "write {exponential: {gamma: 0.95}}");
    }
    break;
  }
}

static void metrics(checker *c, const sn_node *n) {
  static const char *const TOP_K_KEYS[] = {"k", NULL};
  sn_spec *s = c->s;
  int cap = (int)(sizeof s->metrics / sizeof s->metrics[0]);
  if (n->kind != SN_NODE_SEQ) {
    type_error(c, n, "metrics", "a list");
    if (is_name(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts, *map, *v;
    int k, top_k = 0;
    if (!choice(c, n->items[i], "a metric", &name, &opts) ||
        (k = lookup(c, name, "metric", METRICS)) < 0)
      continue;
    if (k == SN_METRIC_TOP_K) {
      top_k = 5; /* as Keras's top_k_categorical_accuracy */
      if (!options(c, name, opts, TOP_K_KEYS, &map)) continue;
      if ((v = sn_node_get(map, "k")) && !get_int32(c, v, "k", 1, MAX_CLASSES, &top_k)) continue;
    } else {
      no_options(c, name, opts);
    }
    bool dup = false;
    for (int j = 0; j < s->n_metrics; j++) dup = dup || !strcmp(s->metrics[j], name->text);
    if (dup) {
      sn_diag_error(c->d, name->loc, "metric '%s' is listed twice", name->text);
    } else if (s->n_metrics == cap) {
      sn_diag_error(c->d, name->loc, "more than %d metrics", cap);
    } else {
      snprintf(s->metrics[s->n_metrics], sizeof s->metrics[0], "%s", METRICS[k]);
      s->metric_kind[s->n_metrics] = (sn_metric_kind)k;
      s->metric_loc[s->n_metrics] = name->loc;
      s->metric_k[s->n_metrics++] = top_k;
    }
  }
}

/* A per-epoch figure of the run (a metrics.jsonl key): loss or a listed metric,
 * plain (training data), val_ (validation data) or, when `allow_test`, test_.
 * `what` names the key in messages ("monitor", "sweep metric"). */
static bool figure(checker *c, const sn_node *n, const char *what, bool allow_test) {
  const sn_spec *s = c->s;
  if (!is_name(n)) {
    type_error(c, n, what, "a figure name such as val_loss");
    return false;
  }
  const char *t = n->text, *base = t, *set = NULL;
  if (!strncmp(t, "val_", 4)) {
    base = t + 4;
    set = "validation";
  } else if (!strncmp(t, "test_", 5)) {
    base = t + 5;
    set = "test";
  }
  bool known = !strcmp(base, "loss") || in_list(base, METRICS);
  if (known && set && !strcmp(set, "test") && !allow_test) {
    sn_diag_error(c->d, n->loc, "%s must not use test data, got '%s'", what, t);
    sn_diag_hint(c->d, "monitor a val_ figure (with data.validation), or a training one");
    return false;
  }
  if (!known) {
    char cand_buf[3 * N_FIGURES][32];
    const char *cands[3 * N_FIGURES + 1];
    int nc = 0;
    static const char *const PREFIXES[] = {"", "val_", "test_"};
    for (int p = 0; p < (allow_test ? 3 : 2); p++)
      for (int m = -1; m < (int)(sizeof METRICS / sizeof *METRICS) - 1; m++) {
        snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s%s", PREFIXES[p],
                 m < 0 ? "loss" : METRICS[m]);
        cands[nc] = cand_buf[nc];
        nc++;
      }
    cands[nc] = NULL;
    sn_diag_error(c->d, n->loc, "%s '%s' is not a figure this run reports", what, t);
    hint_closest(c, t, cands, NULL);
    return false;
  }
  bool ok = true;
  if (strcmp(base, "loss") != 0) {
    bool listed = false;
    for (int i = 0; i < s->n_metrics; i++) listed = listed || !strcmp(s->metrics[i], base);
    if (!listed) {
      sn_diag_error(c->d, n->loc, "%s '%s' needs '%s' in train.metrics", what, t, base);
      ok = false;
    }
  }
  if (set && !has_data(s, set)) {
    sn_diag_error(c->d, n->loc, "%s '%s' needs data.%s", what, t, set);
    if (!strcmp(set, "validation"))
      sn_diag_hint(c->d, "add validation: {split: 0.1} under data, or use '%s'", base);
    ok = false;
  }
  return ok;
}

static void early_stopping(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"monitor", "patience", "min_delta", "restore_best", NULL};
  sn_early_stopping *e = &c->s->early;
  if (!is_map(c, n, "early_stopping")) return;
  check_keys(c, n, "early_stopping", KEYS);
  c->s->early_loc = n->loc;
  e->enabled = true;
  e->restore_best = true;
  snprintf(e->monitor, sizeof e->monitor, "%s", has_data(c->s, "validation") ? "val_loss" : "loss");
  const sn_node *v;
  if ((v = sn_node_get(n, "monitor")) && figure(c, v, "monitor", false))
    snprintf(e->monitor, sizeof e->monitor, "%s", v->text); /* known figures are short */
  if ((v = sn_node_get(n, "patience"))) get_int32(c, v, "patience", 0, MAX_EPOCHS, &e->patience);
  if ((v = sn_node_get(n, "min_delta")))
    get_real(c, v, "min_delta", 0, false, INFINITY, false, &e->min_delta);
  if ((v = sn_node_get(n, "restore_best"))) get_bool(c, v, "restore_best", &e->restore_best);
}

static void train_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"loss",           "optimizer", "batch_size",     "epochs",
                                     "shuffle",        "metrics",   "clip_grad_norm", "schedule",
                                     "early_stopping", NULL};
  if (!is_map(c, n, "train")) return;
  check_keys(c, n, "train", KEYS);
  sn_spec *s = c->s;
  s->schedule_loc = n->loc;
  const sn_node *v;
  if ((v = sn_node_get(n, "loss")))
    loss(c, v);
  else
    missing(c, n, "loss", "train");
  if ((v = sn_node_get(n, "optimizer"))) optimizer(c, v);
  if ((v = sn_node_get(n, "clip_grad_norm")))
    get_real(c, v, "clip_grad_norm", 0, true, INFINITY, false, &s->clip_grad_norm);
  if ((v = sn_node_get(n, "batch_size"))) get_int(c, v, "batch_size", 1, MAX_BATCH, &s->batch_size);
  if ((v = sn_node_get(n, "epochs"))) get_int32(c, v, "epochs", 0, MAX_EPOCHS, &s->epochs);
  if ((v = sn_node_get(n, "shuffle"))) get_bool(c, v, "shuffle", &s->shuffle);
  if ((v = sn_node_get(n, "metrics"))) metrics(c, v);
  if ((v = sn_node_get(n, "schedule"))) schedule(c, v);
  if ((v = sn_node_get(n, "early_stopping"))) early_stopping(c, v);
}

/* ---------------------------------------------------------------------------
 * expect */

static const char *const EXPECT_SETS[] = {"train", "validation", "test", NULL};

static void expect_range(checker *c, const sn_node *key, const sn_node *v, sn_expect_spec *e) {
  static const char *const KEYS[] = {"min", "max", NULL};
  if (!is_map(c, v, key->text)) return;
  check_keys(c, v, key->text, KEYS);
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
  /* The candidates for "did you mean": every set with loss and every metric. */
  char cand_buf[3 * N_FIGURES][32];
  const char *cands[3 * N_FIGURES + 3];
  int nc = 0;
  for (int i = 0; EXPECT_SETS[i]; i++) {
    snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s.loss", EXPECT_SETS[i]);
    cands[nc] = cand_buf[nc];
    nc++;
    for (int j = 0; METRICS[j]; j++) {
      snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s.%s", EXPECT_SETS[i], METRICS[j]);
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
  if (!known_set || (strcmp(q, "loss") != 0 && !in_list(q, METRICS))) {
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
  if (!strcmp(set, "test") && !has_data(s, "test")) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs data.test", t);
    ok = false;
  }
  if (!strcmp(set, "validation") && !has_data(s, "validation")) {
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
      check_keys(c, v, "gradcheck", KEYS);
      const sn_node *m = sn_node_get(v, "max_rel_error");
      if (!m)
        missing(c, v, "max_rel_error", "gradcheck");
      else
        get_real(c, m, "max_rel_error", 0, true, INFINITY, false, &e->max_rel_error);
    } else if (!strcmp(key->text, "error")) {
      static const char *const KEYS[] = {"contains", NULL};
      if (!is_map(c, v, "error")) continue;
      check_keys(c, v, "error", KEYS);
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
 * sweep: runs of this spec with settings changed, as by --set. Each setting is
 * checked by applying it to a copy of the tree and checking the copy, so a sweep
 * that names a wrong key or a bad value fails now rather than in run 7. */

/* The shortest text that reads back as v, always with a point or exponent. */
static void real_text(double v, char *buf, size_t cap) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

/* Checks the spec with `key=value` applied. Returns true if that spec is valid;
 * else *msg and *hint (malloc'd, or NULL) get its first error, and *in_value says
 * whether the error is inside the value (rather than about the key). */
static bool try_setting(checker *c, const char *key, const char *value, char **msg, char **hint,
                        bool *in_value) {
  *msg = *hint = NULL;
  *in_value = false;
  size_t len = strlen(key) + strlen(value) + 2;
  char *assign = malloc(len);
  sn_node *copy = sn_node_copy(c->s->root);
  if (!assign || !copy) { /* out of memory: the runs will tell */
    free(assign);
    sn_node_free(copy);
    return true;
  }
  snprintf(assign, len, "%s=%s", key, value);
  sn_diag d = {0};
  if (sn_node_set(copy, assign, &d) == 0)
    sn_spec_free(check_tree(copy, c->s->path, &d, true));
  else
    sn_node_free(copy);
  bool ok = true;
  for (int i = 0; i < d.n && ok; i++) {
    if (d.v[i].sev != SN_ERROR) continue;
    ok = false;
    *msg = strdup(d.v[i].msg);
    *hint = d.v[i].hint ? strdup(d.v[i].hint) : NULL;
    *in_value = d.v[i].loc.file && !strcmp(d.v[i].loc.file, "--set") &&
                d.v[i].loc.col >= (int)strlen(key) + 2;
  }
  sn_diag_free(&d);
  free(assign);
  return ok;
}

/* Tries one value of an axis; reports a bad value at `at`, a bad key at the
 * axis's key (and then returns false: the other values would say the same). */
static bool sweep_try(checker *c, const sn_sweep_axis *ax, const char *value, const sn_node *at,
                      const char *what, bool integer_hint) {
  char *msg, *hint;
  bool in_value;
  if (try_setting(c, ax->key, value, &msg, &hint, &in_value)) return true;
  if (in_value) {
    sn_diag_error(c->d, at->loc, "sweep %s for '%s': %s", what, ax->key, msg ? msg : "invalid");
    if (integer_hint && msg && strstr(msg, "integer"))
      sn_diag_hint(c->d, strcmp(what, "low") && strcmp(what, "high")
                             ? "add integer: true to draw whole numbers"
                             : "write {int: [low, high]} to draw whole numbers");
    else if (hint)
      sn_diag_hint(c->d, "%s", hint);
  } else {
    /* sn_node_set's own errors repeat the key: "cannot set 'KEY': why". */
    const char *why = msg ? msg : "invalid";
    size_t klen = strlen(ax->key);
    if (!strncmp(why, "cannot set '", 12) && !strncmp(why + 12, ax->key, klen) &&
        !strncmp(why + 12 + klen, "': ", 3))
      why += 15 + klen;
    sn_diag_error(c->d, ax->loc, "sweep key '%s': %s", ax->key, why);
    if (hint)
      sn_diag_hint(c->d, "%s", hint);
    else if (strstr(why, "is a scalar, not a mapping"))
      sn_diag_hint(c->d, "a sweep sets keys as --set does: write that part of the spec as a "
                         "mapping (optimizer: {adam: {}})");
  }
  free(msg);
  free(hint);
  return in_value;
}

/* A dotted path into the spec, as for --set. */
static bool sweep_key(checker *c, const sn_node *k, sn_sweep_axis *ax) {
  const char *t = k->text;
  ax->loc = k->loc;
  size_t len = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
  if (!*t || t[len]) {
    sn_diag_error(c->d, k->loc, "sweep key '%s' may only use letters, digits, '_', '.' and '-'", t);
    return false;
  }
  size_t first = strcspn(t, ".");
  if ((first == 7 && !strncmp(t, "specnet", 7)) || (first == 5 && !strncmp(t, "sweep", 5))) {
    sn_diag_error(c->d, k->loc, "a sweep cannot set '%.*s'", (int)first, t);
    return false;
  }
  return copy_field(c, k, "sweep key", ax->key, sizeof ax->key);
}

/* The items of a list as the axis's values, each as YAML flow text. */
static bool axis_values(checker *c, sn_sweep_axis *ax, const sn_node *vals) {
  bool ok = true;
  for (int j = 0; j < vals->n; j++) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
      sn_node_write_flow(vals->items[j], f);
      fclose(f);
    }
    if (!text) {
      sn_diag_error(c->d, vals->items[j]->loc, "out of memory");
      ok = false;
    } else if (len >= sizeof ax->values[j]) {
      sn_diag_error(c->d, vals->items[j]->loc,
                    "sweep value is too long (%zu bytes as YAML; at most %zu)", len,
                    sizeof ax->values[j] - 1);
      ok = false;
    } else {
      memcpy(ax->values[j], text, len + 1);
    }
    free(text);
  }
  if (ok) ax->n_values = vals->n;
  return ok;
}

static void sweep_grid(checker *c, const sn_node *n, bool check_values) {
  sn_sweep_spec *sw = &c->s->sweep;
  int cap = (int)(sizeof sw->axes / sizeof sw->axes[0]);
  int vcap = (int)(sizeof sw->axes[0].values / sizeof sw->axes[0].values[0]);
  if (!is_map(c, n, "grid")) return;
  if (n->n == 0) {
    sn_diag_error(c->d, n->loc, "grid needs at least one key");
    sn_diag_hint(c->d, "write grid: {train.batch_size: [32, 64]}");
    return;
  }
  int64_t runs = 1;
  for (int i = 0; i < n->n; i++) {
    const sn_node *vals = n->items[i];
    if (sw->n_axes == cap) {
      sn_diag_error(c->d, n->keys[i]->loc, "a sweep varies at most %d keys", cap);
      return;
    }
    sn_sweep_axis *ax = &sw->axes[sw->n_axes];
    *ax = (sn_sweep_axis){0};
    bool ok = sweep_key(c, n->keys[i], ax);
    if (vals->kind != SN_NODE_SEQ || vals->n == 0) {
      type_error(c, vals, "grid values", "a non-empty list");
      if (is_name(vals)) sn_diag_hint(c->d, "write [%s]", vals->text);
      continue;
    }
    if (vals->n > vcap) {
      sn_diag_error(c->d, vals->loc, "a grid key takes at most %d values, got %d", vcap, vals->n);
      continue;
    }
    if (!axis_values(c, ax, vals) || !ok) continue;
    sw->n_axes++;
    runs *= vals->n;
    for (int j = 0; check_values && j < vals->n; j++)
      if (!sweep_try(c, ax, ax->values[j], vals->items[j], "value", false)) break;
  }
  if (runs > MAX_SWEEP_RUNS)
    sn_diag_error(c->d, n->loc, "the grid makes %lld runs; at most %lld", (long long)runs,
                  (long long)MAX_SWEEP_RUNS);
}

/* Both ends of a range, as they would be drawn (integers rounded, as
 * cli/cmd_sweep.c does), tried on the spec; lo and hi say where to report. */
static void try_ends(checker *c, const sn_sweep_axis *ax, const sn_node *lo, const sn_node *hi,
                     const char *lo_name, const char *hi_name) {
  char text[2][64];
  if (ax->integer) {
    snprintf(text[0], sizeof text[0], "%lld", llround(ax->lo));
    snprintf(text[1], sizeof text[1], "%lld", llround(ax->hi));
  } else {
    real_text(ax->lo, text[0], sizeof text[0]);
    real_text(ax->hi, text[1], sizeof text[1]);
  }
  if (sweep_try(c, ax, text[0], lo, lo_name, !ax->integer))
    sweep_try(c, ax, text[1], hi, hi_name, !ax->integer);
}

static void sweep_random(checker *c, const sn_node *n, bool check_values) {
  static const char *const KEYS[] = {"count", "ranges", NULL};
  static const char *const RANGE_KEYS[] = {"min", "max", "log", "integer", NULL};
  sn_sweep_spec *sw = &c->s->sweep;
  int cap = (int)(sizeof sw->axes / sizeof sw->axes[0]);
  if (!is_map(c, n, "random")) return;
  check_keys(c, n, "random", KEYS);
  const sn_node *v = sn_node_get(n, "count"), *ranges = sn_node_get(n, "ranges");
  if (v)
    get_int32(c, v, "count", 1, MAX_SWEEP_RUNS, &sw->count);
  else
    missing(c, n, "count", "random");
  if (!ranges) {
    missing(c, n, "ranges", "random");
    sn_diag_hint(c->d, "write ranges: {train.optimizer.adam.learning_rate: {min: 1e-4, max: "
                       "1e-2, log: true}}");
    return;
  }
  if (!is_map(c, ranges, "ranges")) return;
  if (ranges->n == 0) {
    sn_diag_error(c->d, ranges->loc, "ranges needs at least one key");
    return;
  }
  for (int i = 0; i < ranges->n; i++) {
    const sn_node *r = ranges->items[i];
    if (sw->n_axes == cap) {
      sn_diag_error(c->d, ranges->keys[i]->loc, "a sweep varies at most %d keys", cap);
      return;
    }
    sn_sweep_axis *ax = &sw->axes[sw->n_axes];
    *ax = (sn_sweep_axis){0};
    bool ok = sweep_key(c, ranges->keys[i], ax);
    char what[160];
    snprintf(what, sizeof what, "the range of %s", ranges->keys[i]->text);
    if (!is_map(c, r, what)) continue;
    check_keys(c, r, "a sweep range", RANGE_KEYS);
    const sn_node *lo = sn_node_get(r, "min"), *hi = sn_node_get(r, "max");
    if (!lo) missing(c, r, "min", "a sweep range");
    if (!hi) missing(c, r, "max", "a sweep range");
    ok = lo && hi && ok;
    ok = (!lo || get_real(c, lo, "min", -INFINITY, false, INFINITY, false, &ax->lo)) && ok;
    ok = (!hi || get_real(c, hi, "max", -INFINITY, false, INFINITY, false, &ax->hi)) && ok;
    if ((v = sn_node_get(r, "log"))) ok = get_bool(c, v, "log", &ax->log) && ok;
    if ((v = sn_node_get(r, "integer"))) ok = get_bool(c, v, "integer", &ax->integer) && ok;
    if (!ok) continue;
    if (!(ax->lo < ax->hi)) {
      sn_diag_error(c->d, hi->loc, "max (%g) must be greater than min (%g)", ax->hi, ax->lo);
      continue;
    }
    if (ax->log && ax->lo <= 0) {
      sn_diag_error(c->d, lo->loc, "a log range needs min greater than 0, got %g", ax->lo);
      continue;
    }
    sw->n_axes++;
    if (check_values) try_ends(c, ax, lo, hi, "min", "max");
  }
}

/* One entry of parameters: a list (the values; a random sweep draws one), or one
 * distribution {choice: [...]}, {uniform: [lo, hi]}, {log_uniform: [lo, hi]},
 * {int: [lo, hi]} (random only, but for choice). */
static bool distribution(checker *c, const sn_node *v, sn_sweep_axis *ax, bool grid) {
  static const char *const KINDS[] = {"choice", "uniform", "log_uniform", "int", NULL};
  if (v->kind == SN_NODE_SEQ && v->n > 0) return axis_values(c, ax, v);
  if (v->kind != SN_NODE_MAP || v->n != 1) {
    type_error(c, v, "a sweep parameter", "a list of values or one distribution");
    sn_diag_hint(c->d, "write [16, 32], {choice: [16, 32]}, {uniform: [0.0, 0.5]}, "
                       "{log_uniform: [1.0e-4, 1.0e-2]} or {int: [8, 64]}");
    return false;
  }
  int kind = lookup(c, v->keys[0], "distribution", KINDS);
  const sn_node *r = v->items[0];
  if (kind < 0) return false;
  if (r->kind != SN_NODE_SEQ || (kind == 0 ? r->n == 0 : r->n != 2)) {
    type_error(c, r, KINDS[kind], kind == 0 ? "a non-empty list" : "a list [low, high]");
    return false;
  }
  if (kind == 0) return axis_values(c, ax, r);
  if (grid) {
    sn_diag_error(c->d, v->keys[0]->loc, "a grid sweep needs values; %s draws at random",
                  KINDS[kind]);
    sn_diag_hint(c->d, "use method: random, or list the values: {choice: [...]}");
    return false;
  }
  double lo, hi;
  if (!get_real(c, r->items[0], "low", -INFINITY, false, INFINITY, false, &lo) ||
      !get_real(c, r->items[1], "high", -INFINITY, false, INFINITY, false, &hi))
    return false;
  if (!(lo < hi)) {
    sn_diag_error(c->d, r->loc, "%s: low (%g) must be less than high (%g)", KINDS[kind], lo, hi);
    return false;
  }
  if (kind == 2 && lo <= 0) {
    sn_diag_error(c->d, r->items[0]->loc, "log_uniform needs low greater than 0, got %g", lo);
    return false;
  }
  if (kind == 3 && (lo != floor(lo) || hi != floor(hi) || fabs(lo) > 1e15 || fabs(hi) > 1e15)) {
    sn_diag_error(c->d, r->loc, "int needs whole numbers, got [%g, %g]", lo, hi);
    return false;
  }
  ax->lo = lo, ax->hi = hi;
  ax->log = kind == 2;
  ax->integer = ax->whole = kind == 3;
  return true;
}

/* method: grid|random with parameters: (and trials: for random). */
static void sweep_method(checker *c, const sn_node *n, bool check_values) {
  static const char *const METHODS[] = {"grid", "random", NULL};
  sn_sweep_spec *sw = &c->s->sweep;
  const sn_node *m = sn_node_get(n, "method"), *t = sn_node_get(n, "trials"),
                *params = sn_node_get(n, "parameters");
  int method = t ? 1 : 0; /* without method: random when trials is given, else grid */
  if (m && (!is_name(m) || (method = lookup(c, m, "method", METHODS)) < 0)) {
    if (!is_name(m)) type_error(c, m, "method", "grid or random");
    return;
  }
  sw->kind = method ? SN_SWEEP_RANDOM : SN_SWEEP_GRID;
  if (method == 1 && !t) missing(c, n, "trials", "a random sweep");
  if (method == 0 && t) {
    sn_diag_error(c->d, t->loc, "a grid sweep runs every combination; trials is for random");
    sn_diag_hint(c->d, "write method: random to draw that many trials");
  }
  if (t && method == 1) get_int32(c, t, "trials", 1, MAX_SWEEP_RUNS, &sw->count);
  if (!params) {
    missing(c, n, "parameters", "sweep");
    sn_diag_hint(c->d, "write parameters: {train.batch_size: [32, 64]}");
    return;
  }
  if (!is_map(c, params, "parameters")) return;
  if (params->n == 0) sn_diag_error(c->d, params->loc, "parameters needs at least one key");
  int64_t runs = 1;
  for (int i = 0; i < params->n; i++) {
    if (sw->n_axes == (int)(sizeof sw->axes / sizeof sw->axes[0])) {
      sn_diag_error(c->d, params->keys[i]->loc, "a sweep varies at most %d keys", sw->n_axes);
      return;
    }
    sn_sweep_axis *ax = &sw->axes[sw->n_axes];
    *ax = (sn_sweep_axis){0};
    bool ok = sweep_key(c, params->keys[i], ax);
    if (!distribution(c, params->items[i], ax, method == 0) || !ok) continue;
    sw->n_axes++;
    runs *= ax->n_values > 0 ? ax->n_values : 1;
    const sn_node *v = params->items[i], *r = v->kind == SN_NODE_MAP ? v->items[0] : v;
    for (int j = 0; check_values && j < ax->n_values; j++)
      if (!sweep_try(c, ax, ax->values[j], r->items[j], "value", false)) break;
    if (check_values && !ax->n_values) try_ends(c, ax, r->items[0], r->items[1], "low", "high");
  }
  if (method == 0 && runs > MAX_SWEEP_RUNS)
    sn_diag_error(c->d, params->loc, "the grid makes %lld runs; at most %lld", (long long)runs,
                  (long long)MAX_SWEEP_RUNS);
}

/* scheduler: {halving: {min_epochs: 1, eta: 3, metric: FIGURE}}: successive halving. */
static void sweep_scheduler(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"halving", NULL};
  static const char *const HKEYS[] = {"min_epochs", "eta", "metric", NULL};
  sn_sweep_spec *sw = &c->s->sweep;
  if (!is_map(c, n, "scheduler")) return;
  check_keys(c, n, "scheduler", KEYS);
  const sn_node *h = sn_node_get(n, "halving"), *v;
  if (!h) {
    missing(c, n, "halving", "scheduler");
    return;
  }
  if (!is_map(c, h, "halving")) return;
  check_keys(c, h, "halving", HKEYS);
  sw->halving = true;
  sw->min_epochs = 1;
  sw->eta = 3;
  snprintf(sw->halving_metric, sizeof sw->halving_metric, "%s", sw->metric);
  /* min_epochs >= train.epochs is not an error: each trial, a copy of this spec with
   * train.epochs set to its rung, is checked too (cli/cmd_sweep.c says it stops none) */
  if ((v = sn_node_get(h, "min_epochs")))
    get_int32(c, v, "min_epochs", 1, 1000000, &sw->min_epochs);
  if ((v = sn_node_get(h, "eta"))) get_int32(c, v, "eta", 2, 1000, &sw->eta);
  if ((v = sn_node_get(h, "metric")) && figure(c, v, "halving metric", true))
    snprintf(sw->halving_metric, sizeof sw->halving_metric, "%s", v->text);
  for (int a = 0; a < sw->n_axes; a++)
    if (!strcmp(sw->axes[a].key, "train.epochs"))
      sn_diag_error(c->d, sw->axes[a].loc,
                    "a halving sweep sets train.epochs itself; do not sweep it");
}

static void sweep_section(checker *c, const sn_node *n, bool check_values) {
  static const char *const KEYS[] = {"grid",   "random",     "method",    "trials", "parameters",
                                     "metric", "mode",       "scheduler", NULL};
  static const char *const MODES[] = {"max", "min", NULL};
  sn_sweep_spec *sw = &c->s->sweep;
  if (!is_map(c, n, "sweep")) return;
  check_keys(c, n, "sweep", KEYS);
  sw->loc = n->loc;
  const sn_node *g = sn_node_get(n, "grid"), *r = sn_node_get(n, "random"), *v;
  snprintf(sw->metric, sizeof sw->metric, "%s", has_data(c->s, "validation") ? "val_loss" : "loss");
  if ((v = sn_node_get(n, "metric")) && figure(c, v, "sweep metric", true)) {
    snprintf(sw->metric, sizeof sw->metric, "%s", v->text); /* known figures are short */
    if (!strncmp(v->text, "test_", 5)) {
      sn_diag_warning(c->d, v->loc, "choosing runs by '%s' tunes the model to the test set",
                      v->text);
      sn_diag_hint(c->d, "choose by a val_ figure, with data.validation");
    }
  }
  sw->maximize = strstr(sw->metric, "accuracy") != NULL;
  int mode;
  if ((v = sn_node_get(n, "mode")) && is_name(v) && (mode = lookup(c, v, "mode", MODES)) >= 0)
    sw->maximize = mode == 0;
  else if (v && !is_name(v))
    type_error(c, v, "mode", "max or min");
  const sn_node *method = sn_node_get(n, "method"), *params = sn_node_get(n, "parameters");
  const sn_node *trials = sn_node_get(n, "trials");
  if ((method || params || trials) && (g || r)) {
    sn_diag_error(c->d, (g ? g : r)->loc, "a sweep is written with method and parameters, or "
                                           "with grid or random, not both");
  } else if (method || params || trials) {
    sweep_method(c, n, check_values);
  } else if (g && r) {
    const sn_node *second = NULL;
    for (int i = 0; i < n->n; i++)
      if (!strcmp(n->keys[i]->text, "grid") || !strcmp(n->keys[i]->text, "random"))
        second = n->keys[i];
    sn_diag_error(c->d, second->loc, "a sweep is a grid or random, not both");
  } else if (g) {
    sw->kind = SN_SWEEP_GRID;
    sweep_grid(c, g, check_values);
  } else if (r) {
    sw->kind = SN_SWEEP_RANDOM;
    sweep_random(c, r, check_values);
  } else {
    sn_diag_error(c->d, n->loc, "sweep needs parameters (or grid or random)");
    sn_diag_hint(c->d, "write sweep: {method: grid, parameters: {train.batch_size: [32, 64]}}");
  }
  if ((v = sn_node_get(n, "scheduler"))) sweep_scheduler(c, v);
}

/* ---------------------------------------------------------------------------
 * Likely mistakes: a spec that checks but probably does not mean what it says */

/* The layer a single-input layer reads: its index, -1 for the model input, -2 when
 * unknown (a join, or a name that did not resolve). */
static int input_of(const sn_spec *s, const sn_layer_spec *l) {
  if (l->n_inputs != 1) return -2;
  if (!strcmp(l->inputs[0], "input")) return -1;
  for (int i = 0; i < s->n_layers; i++)
    if (!strcmp(s->layers[i].name, l->inputs[0])) return i;
  return -2;
}

/* The width of the last axis of layer i's output (-1: the model input) where the
 * kind fixes it (units, filters, dim), looking back through layers that keep it;
 * 0 when unknown. */
static int width(const sn_spec *s, int i) {
  for (int steps = 0; steps <= s->n_layers && i >= -1; steps++) {
    if (i == -1) return s->input_rank ? (int)s->input_shape[s->input_rank - 1] : 0;
    const sn_layer_spec *l = &s->layers[i];
    switch (l->kind) {
    case SN_LAYER_DENSE:
    case SN_LAYER_LSTM:
    case SN_LAYER_GRU:
      return l->units;
    case SN_LAYER_CONV2D:
    case SN_LAYER_CONV1D:
      return l->filters;
    case SN_LAYER_EMBEDDING:
      return l->dim;
    case SN_LAYER_ACTIVATION:
    case SN_LAYER_DROPOUT:
    case SN_LAYER_BATCH_NORM:
    case SN_LAYER_LAYER_NORM:
      i = input_of(s, l);
      break;
    default:
      return 0;
    }
  }
  return 0;
}

/* The layer whose activation ends the model: the last layer, looking back through
 * flatten, reshape and dropout. Returns its index (or -1 when the output ends in
 * no activation of its own), with the activation and the width it acts over. */
static int output_activation(const sn_spec *s, sn_act *act, int *units) {
  int i = s->n_layers - 1;
  for (int steps = 0; steps < s->n_layers && i >= 0; steps++) {
    const sn_layer_spec *l = &s->layers[i];
    switch (l->kind) {
    case SN_LAYER_FLATTEN:
    case SN_LAYER_RESHAPE:
    case SN_LAYER_DROPOUT:
      i = input_of(s, l);
      break;
    case SN_LAYER_DENSE:
    case SN_LAYER_CONV2D:
    case SN_LAYER_CONV1D:
    case SN_LAYER_ACTIVATION:
      *act = l->activation;
      *units = l->kind == SN_LAYER_ACTIVATION ? width(s, input_of(s, l)) : width(s, i);
      return i;
    default:
      return -1;
    }
  }
  return -1;
}

static void warn_mistakes(checker *c) {
  const sn_spec *s = c->s;
  if (s->n_layers == 0 || !s->layers[s->n_layers - 1].name[0]) return;
  const sn_layer_spec *last = &s->layers[s->n_layers - 1];
  if (last->kind == SN_LAYER_DROPOUT) {
    sn_diag_warning(c->d, last->loc,
                    "dropout is the last layer (%s): it zeroes model outputs in training",
                    last->name);
    sn_diag_hint(c->d, "put dropout before the output layer");
  }
  if (!sn_node_get(sn_node_get(s->root, "train"), "loss")) return;
  sn_act act = SN_ACT_LINEAR;
  int units = 0, o = output_activation(s, &act, &units);
  if (o < 0) return;
  char who[128];
  if (o == s->n_layers - 1)
    snprintf(who, sizeof who, "the last layer (%s)", s->layers[o].name);
  else
    snprintf(who, sizeof who, "the model output (from layer %s)", s->layers[o].name);
  const char *loss = sn_loss_name(s->loss), *a = sn_act_name(act);
  bool cce = s->loss == SN_LOSS_SPARSE_CCE || s->loss == SN_LOSS_CCE;
  bool bce = s->loss == SN_LOSS_BCE;
  bool accuracy = false;
  for (int i = 0; i < s->n_metrics; i++) accuracy |= s->metric_kind[i] == SN_METRIC_ACCURACY;

  for (int i = 0; i < s->n_metrics; i++)
    if (cce && units > 0 && s->metric_kind[i] == SN_METRIC_TOP_K && s->metric_k[i] >= units) {
      sn_diag_warning(c->d, s->metric_loc[i],
                      "top_k_accuracy with k = %d over %d classes is always 1.0", s->metric_k[i],
                      units);
      sn_diag_hint(c->d, "choose k below the number of classes (the default k is 5)");
    }
  if (s->from_logits && ((cce && act == SN_ACT_SOFTMAX) || (bce && act == SN_ACT_SIGMOID))) {
    sn_diag_warning(c->d, s->loss_loc,
                    "%s ends in %s but the loss has from_logits: true, so %s is applied twice", who,
                    a, a);
    sn_diag_hint(c->d, "drop from_logits, or end the model in a linear layer");
  }
  if (act == SN_ACT_SOFTMAX && units == 1) {
    sn_diag_warning(c->d, s->loss_loc, "%s ends in softmax over 1 unit, which always outputs 1",
                    who);
    sn_diag_hint(c->d, "for one yes/no output use sigmoid with binary_crossentropy");
  } else if (bce && act == SN_ACT_SOFTMAX && units > 1) {
    sn_diag_warning(c->d, s->loss_loc,
                    "binary_crossentropy after softmax over %d units: softmax makes the outputs "
                    "compete, binary cross-entropy scores each one on its own",
                    units);
    sn_diag_hint(c->d, "use activation: sigmoid for independent yes/no outputs, or "
                       "categorical_crossentropy for one class per sample");
  }
  if (cce && act == SN_ACT_SIGMOID) {
    sn_diag_warning(c->d, s->loss_loc,
                    "%s after a sigmoid output: the outputs do not sum to 1 over the classes",
                    loss);
    sn_diag_hint(c->d, "use activation: softmax, or a linear last layer with from_logits: true");
  }
  if ((s->loss == SN_LOSS_MSE || s->loss == SN_LOSS_MAE) && act == SN_ACT_SOFTMAX &&
      (units > 1 || accuracy)) {
    sn_diag_warning(c->d, s->loss_loc, "%s on a softmax output: the model looks like a classifier",
                    loss);
    sn_diag_hint(c->d, "for classes use sparse_categorical_crossentropy (integer labels) or "
                       "categorical_crossentropy (one-hot)");
  }
  if ((cce || bce) && act == SN_ACT_RELU) {
    sn_diag_warning(c->d, s->loss_loc, "%s ends in relu, but %s needs logits or probabilities", who,
                    loss);
    sn_diag_hint(c->d, "end in a linear layer with from_logits: true, or in softmax or sigmoid");
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

static void check_spec(checker *c, const sn_node *root) {
  static const char *const KEYS[] = {"specnet", "name",   "seed",  "data", "model",
                                     "train",   "expect", "sweep", NULL};
  sn_spec *s = c->s;
  int errors0 = c->d->errors;
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
  check_keys(c, root, "the spec", KEYS);
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
  if (s->data.standardize_targets && s->loss != SN_LOSS_MSE && s->loss != SN_LOSS_MAE &&
      s->loss != SN_LOSS_HUBER) {
    sn_diag_error(c->d, s->data.standardize_targets_loc,
                  "standardize_targets needs a regression loss (mse, mae or huber), the loss is %s",
                  LOSSES[s->loss]);
    sn_diag_hint(c->d, "class labels and 0/1 targets are not standardized");
  }
  if ((v = sn_node_get(root, "sweep")) && !c->inner) sweep_section(c, v, c->d->errors == errors0);
  warn_mistakes(c);
}

/* The defaults of every field a spec may leave out (Keras's where it has one). */
static void spec_defaults(sn_spec *s) {
  s->data.scale = 1;
  s->loss = SN_LOSS_SPARSE_CCE;
  s->huber_delta = 1.0;
  s->optimizer = SN_OPT_ADAM;
  s->learning_rate = 0.001;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->epsilon = 1e-7;
  s->batch_size = 32;
  s->epochs = 1;
  s->shuffle = true;
  s->pad_id = -1;
}

static sn_spec *check_tree(sn_node *root, const char *path, sn_diag *d, bool inner) {
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
  spec_defaults(s);

  const char *slash = strrchr(p, '/');
  checker c = {
      .d = d, .s = s, .dir = p, .dir_len = slash ? (int)(slash - p) + 1 : 0, .inner = inner};
  check_spec(&c, root);
  sn_diag_sort(d, first);
  if (d->errors != errors0) {
    sn_spec_free(s);
    return NULL;
  }
  return s;
}

sn_spec *sn_spec_from_tree(sn_node *root, const char *path, sn_diag *d) {
  return check_tree(root, path, d, false);
}

/* Before `--set data.train.limit=N` on `train: fashion_mnist:train`: the built-in
 * short form becomes its long form {builtin: fashion_mnist, split: train}, so that a
 * key under it applies. Any other value is left for sn_node_set to report. */
static void promote_builtin(sn_node *root, const char *assignment) {
  static const char *const roles[] = {"train", "test", "validation"};
  sn_node *data = sn_node_get(root, "data");
  if (!data || data->kind != SN_NODE_MAP) return;
  for (size_t r = 0; r < sizeof roles / sizeof *roles; r++) {
    char prefix[32];
    int len = snprintf(prefix, sizeof prefix, "data.%s.", roles[r]);
    if (strncmp(assignment, prefix, (size_t)len)) continue;
    for (int i = 0; i < data->n; i++) {
      sn_node *v = data->items[i];
      if (strcmp(data->keys[i]->text, roles[r]) || v->kind != SN_NODE_SCALAR || v->quoted) continue;
      const char *colon = strchr(v->text, ':');
      if (!colon || strchr(colon + 1, ':') || strpbrk(v->text, "{}[],\"'#&*!|>%@` ")) return;
      char text[200];
      if (snprintf(text, sizeof text, "{builtin: %.*s, split: %s}", (int)(colon - v->text), v->text,
                   colon + 1) >= (int)sizeof text)
        return;
      sn_diag quiet = {0};
      sn_node *long_form = sn_yaml_parse_string(text, "--set", &quiet);
      sn_diag_free(&quiet);
      if (!long_form || long_form->kind != SN_NODE_MAP) {
        sn_node_free(long_form);
        return;
      }
      long_form->loc = v->loc; /* errors about it point at the spec's line */
      for (int k = 0; k < long_form->n; k++)
        long_form->keys[k]->loc = long_form->items[k]->loc = v->loc;
      sn_node_free(v);
      data->items[i] = long_form;
      return;
    }
  }
}

sn_spec *sn_spec_load(const char *path, const char *const *sets, int n_sets, sn_diag *d) {
  int errors0 = d->errors;
  sn_node *root = sn_yaml_parse_file(path, d);
  if (!root) return NULL;
  for (int i = 0; i < n_sets; i++) {
    promote_builtin(root, sets[i]);
    sn_node_set(root, sets[i], d); /* report every bad --set, then check the rest */
  }
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
  free(s->order);
  free(s);
}
