/* The spec checker's vocabulary: typed values (ints, reals, booleans, names),
 * lookups in name tables with "did you mean" hints, unknown and missing keys, and
 * the `name: {options}` form of choices. Each reports its own error at the node
 * it is about and returns false (or -1) on failure, so a section reads a key in
 * one line and goes on checking the rest. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ---------------------------------------------------------------------------
 * Reporting helpers */

bool ck_is_null(const sn_node *n) {
  if (n->kind != SN_NODE_SCALAR || n->quoted) return false;
  return !*n->text || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
         !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

bool ck_is_name(const sn_node *n) { return n->kind == SN_NODE_SCALAR && !ck_is_null(n); }

/* Strict number syntax: digits, sign, point, exponent, and nothing else (no hex,
 * no "nan", no trailing text). Returns 0 for a finite number, 1 for not a number,
 * 2 for a number that is not finite (".inf", "nan", "1e999"). */
int ck_parse_real(const char *s, double *out) {
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
bool ck_is_int_text(const sn_node *n) {
  if (n->kind != SN_NODE_SCALAR || n->quoted) return false;
  const char *p = n->text + (n->text[0] == '+' || n->text[0] == '-');
  if (!*p) return false;
  for (; *p; p++)
    if (*p < '0' || *p > '9') return false;
  return true;
}

/* "an empty value", "a list", "'abc'", "1.5", "the string \"10\"": what the user
 * wrote, short enough for one line. */
const char *ck_describe(const sn_node *n, char *buf, size_t cap) {
  if (n->kind == SN_NODE_MAP) return n->n ? "a mapping" : "an empty mapping";
  if (n->kind == SN_NODE_SEQ) return n->n ? "a list" : "an empty list";
  if (ck_is_null(n)) return "an empty value";
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
  else if (ck_parse_real(n->text, &v) == 0)
    snprintf(buf, cap, "%s", t);
  else
    snprintf(buf, cap, "'%s'", t);
  return buf;
}

bool ck_in_list(const char *w, const char *const *list) {
  for (; list && *list; list++)
    if (!strcmp(w, *list)) return true;
  return false;
}

int ck_index_of(const char *w, const char *const *list) {
  for (int i = 0; list && list[i]; i++)
    if (!strcmp(w, list[i])) return i;
  return -1;
}

/* "a, b, c" into buf (truncated with "..." if long). */
const char *ck_join(const char *const *list, char *buf, size_t cap) {
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
void ck_hint_closest(checker *c, const char *word, const char *const *a, const char *const *b) {
  for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
    if (!strcmp(word, ALIASES[i][0]) &&
        (ck_in_list(ALIASES[i][1], a) || ck_in_list(ALIASES[i][1], b))) {
      sn_diag_hint(c->d, "specnet calls it '%s'", ALIASES[i][1]);
      return;
    }
  const char *all[160];
  int n = 0;
  for (int i = 0; a && a[i] && n < 160; i++) all[n++] = a[i];
  for (int i = 0; b && b[i] && n < 160; i++)
    if (!ck_in_list(b[i], a)) all[n++] = b[i];
  const char *best = sn_closest(word, all, n);
  char buf[512];
  if (best)
    sn_diag_hint(c->d, "did you mean '%s'?", best);
  else if (a && a[0])
    sn_diag_hint(c->d, "expected one of: %s", ck_join(a, buf, sizeof buf));
}

bool ck_nonempty_list(checker *c, const sn_node *n, const char *what, const char *expected) {
  if (n->kind == SN_NODE_SEQ && n->n > 0) return true;
  ck_type_error(c, n, what, expected);
  if (ck_is_name(n)) sn_diag_hint(c->d, "write [%s]", n->text);
  return false;
}

void ck_missing(checker *c, const sn_node *map, const char *key, const char *where) {
  sn_diag_error(c->d, map->loc, "missing required key '%s' in %s", key, where);
}

/* Every key of `map` must be in `keys`. */
void ck_check_keys(checker *c, const sn_node *map, const char *where, const char *const *keys) {
  for (int i = 0; i < map->n; i++) {
    const sn_node *k = map->keys[i];
    if (ck_in_list(k->text, keys)) continue;
    sn_diag_error(c->d, k->loc, "unknown key '%s' in %s", k->text, where);
    ck_hint_closest(c, k->text, keys, NULL);
  }
}

/* ---------------------------------------------------------------------------
 * Typed values: each reports its own error and returns false on failure. */

void ck_type_error(checker *c, const sn_node *n, const char *what, const char *expected) {
  char buf[96];
  sn_diag_error(c->d, n->loc, "%s must be %s, got %s", what, expected,
                ck_describe(n, buf, sizeof buf));
  double v;
  if (n->kind == SN_NODE_SCALAR && n->quoted && ck_parse_real(n->text, &v) == 0)
    sn_diag_hint(c->d, "quoted values are strings; remove the quotes");
}

bool ck_is_map(checker *c, const sn_node *n, const char *what) {
  if (n->kind == SN_NODE_MAP) return true;
  ck_type_error(c, n, what, "a mapping");
  return false;
}

bool ck_get_int(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi,
                    int64_t *out) {
  char expected[64];
  if (lo > 1)
    snprintf(expected, sizeof expected, "an integer of at least %lld", (long long)lo);
  else
    snprintf(expected, sizeof expected, "%s",
             lo == 1   ? "a positive integer"
             : lo == 0 ? "a non-negative integer"
                       : "an integer");
  if (!ck_is_int_text(n)) {
    ck_type_error(c, n, what, expected);
    return false;
  }
  errno = 0;
  long long v = strtoll(n->text, NULL, 10);
  char buf[96];
  if (v < lo || (errno == ERANGE && v < 0)) {
    if (lo < 0)
      sn_diag_error(c->d, n->loc, "%s must be at least %lld, got %s", what, (long long)lo,
                    ck_describe(n, buf, sizeof buf));
    else
      ck_type_error(c, n, what, expected);
    return false;
  }
  if (v > hi || errno == ERANGE) {
    sn_diag_error(c->d, n->loc, "%s must be at most %lld, got %s", what, (long long)hi,
                  ck_describe(n, buf, sizeof buf));
    return false;
  }
  *out = v;
  return true;
}

bool ck_get_int32(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi,
                      int *out) {
  int64_t v;
  if (!ck_get_int(c, n, what, lo, hi, &v)) return false;
  *out = (int)v;
  return true;
}

/* A finite number in a range: lo/hi bound it, *_open excludes the bound itself;
 * pass -INFINITY/INFINITY for no bound. */
bool ck_get_real(checker *c, const sn_node *n, const char *what, double lo, bool lo_open,
                     double hi, bool hi_open, double *out) {
  double v = 0;
  int r = n->kind == SN_NODE_SCALAR && !n->quoted ? ck_parse_real(n->text, &v) : 1;
  if (r) {
    ck_type_error(c, n, what, r == 2 ? "a finite number" : "a number");
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
    sn_diag_error(c->d, n->loc, "%s must be %s, got %s", what, range,
                  ck_describe(n, buf, sizeof buf));
    return false;
  }
  *out = v;
  return true;
}

/* true/false as in YAML 1.2; YAML 1.1's yes/no/on/off are refused, not guessed. */
bool ck_get_bool(checker *c, const sn_node *n, const char *what, bool *out) {
  static const char *const yes[] = {"true", "True", "TRUE", NULL};
  static const char *const no[] = {"false", "False", "FALSE", NULL};
  if (n->kind == SN_NODE_SCALAR && !n->quoted) {
    if (ck_in_list(n->text, yes)) {
      *out = true;
      return true;
    }
    if (ck_in_list(n->text, no)) {
      *out = false;
      return true;
    }
  }
  ck_type_error(c, n, what, "true or false");
  return false;
}

const char *ck_get_str(checker *c, const sn_node *n, const char *what) {
  if (ck_is_name(n)) return n->text;
  ck_type_error(c, n, what, "a string");
  return NULL;
}

/* Copies a checked string into a fixed field, or reports it too long. */
bool ck_copy_field(checker *c, const sn_node *n, const char *what, char *dst, size_t cap) {
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

bool ck_choice(checker *c, const sn_node *n, const char *what, const sn_node **name,
                   const sn_node **opts) {
  if (ck_is_name(n)) {
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
  ck_type_error(c, n, what, "a name or a one-key mapping");
  return false;
}

/* Index of the name in `names`, or -1 after reporting it unknown. `what` is
 * "layer", "loss", ... */
int ck_lookup(checker *c, const sn_node *name, const char *what, const char *const *names) {
  int i = ck_index_of(name->text, names);
  if (i >= 0) return i;
  sn_diag_error(c->d, name->loc, "unknown %s '%s'", what, name->text);
  ck_hint_closest(c, name->text, names, NULL);
  return -1;
}

/* For kinds without options: nothing, `{}` or an empty value. */
void ck_no_options(checker *c, const sn_node *name, const sn_node *opts) {
  if (!opts || ck_is_null(opts) || (opts->kind == SN_NODE_MAP && opts->n == 0)) return;
  char buf[96];
  if (opts->kind == SN_NODE_MAP)
    sn_diag_error(c->d, opts->keys[0]->loc, "%s takes no options, got '%s'", name->text,
                  opts->keys[0]->text);
  else
    sn_diag_error(c->d, opts->loc, "%s takes no options, got %s", name->text,
                  ck_describe(opts, buf, sizeof buf));
}

/* The options mapping of a kind that has some, checked against `keys`: NULL when
 * absent or empty; false (reported) when it is not a mapping. */
bool ck_options(checker *c, const sn_node *name, const sn_node *opts, const char *const *keys,
                    const sn_node **map) {
  *map = NULL;
  if (!opts || ck_is_null(opts)) return true;
  char what[96];
  snprintf(what, sizeof what, "options of %s", name->text);
  if (!ck_is_map(c, opts, what)) {
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
  ck_check_keys(c, opts, name->text, keys);
  *map = opts;
  return true;
}
