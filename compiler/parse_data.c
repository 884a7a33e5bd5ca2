/* The spec checker: the `data:` section. Sources (built-in sets, IDX, CSV,
 * NPY, text, synthetic), their paths resolved against the spec's folder, and the
 * preprocess steps. Files are not opened here: the runtime opens them. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* Synthetic sets of different roles draw from different streams of one seed. */
#define SEED_MIX UINT64_C(0x9E3779B97F4A7C15)
enum { STREAM_TRAIN = 1, STREAM_TEST = 2, STREAM_VALIDATION = 3 };


static const char *const BUILTIN_SETS[] = {"mnist", "fashion_mnist", NULL};
static const char *const SPLITS[] = {"train", "test", NULL};
static const char *const FORMATS[] = {"idx", "csv", "npy", "text", "hdf5", NULL};
enum { FORMAT_IDX, FORMAT_CSV, FORMAT_NPY, FORMAT_TEXT, FORMAT_HDF5 };
static const char *const SYNTH_SETS[] = {"blobs", "spirals", "xor", "linear", NULL};
static const char *const SOURCE_FORMS[] = {"builtin", "format", "synthetic", NULL};
static const char *const BUILTIN_KEYS[] = {"builtin", "split", "limit", NULL};
static const char *const IDX_KEYS[] = {"format", "images", "labels", "limit", NULL};
static const char *const CSV_KEYS[] = {"format", "path", "label", "header", "limit", NULL};
static const char *const NPY_KEYS[] = {"format", "x", "y", "limit", NULL};
static const char *const HDF5_KEYS[] = {"format", "path", "x", "y", "limit", NULL};
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
  if (!ck_in_list(set, BUILTIN_SETS)) {
    sn_diag_error(c->d, n->loc, "unknown built-in data set '%s'", set);
    ck_hint_closest(c, set, BUILTIN_SETS, NULL);
    ok = false;
  }
  if (!ck_in_list(split, SPLITS)) {
    sn_diag_error(c->d, n->loc, "unknown split '%s' of a built-in data set", split);
    ck_hint_closest(c, split, SPLITS, NULL);
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
  const char *p = ck_get_str(c, n, what);
  if (!p) return;
  int len = p[0] == '/' ? snprintf(dst, cap, "%s", p)
                        : snprintf(dst, cap, "%.*s%s", c->dir_len, c->dir, p);
  if (len < 0 || (size_t)len >= cap) {
    sn_diag_error(c->d, n->loc, "%s%s is too long (%d bytes; at most %zu)", what,
                  strcmp(what, "path") ? " path" : "", len, cap - 1); /* not "path path" */
    dst[0] = '\0';
  }
}

/* A list of paths (shards, in list order; each may be a glob): resolved one per
 * line into dst, as the runtime reads them (sn_paths_expand). */
static void path_list(checker *c, const sn_node *v, const char *what, char *dst, size_t cap) {
  dst[0] = '\0';
  if (v->n == 0) {
    sn_diag_error(c->d, v->loc, "%s is an empty list; give at least one file", what);
    return;
  }
  size_t len = 0;
  char one[4096];
  for (int i = 0; i < v->n; i++) {
    const sn_node *item = v->items[i];
    if (item->kind != SN_NODE_SCALAR) {
      ck_type_error(c, item, what, "a file path or a glob pattern");
      dst[0] = '\0';
      return;
    }
    one[0] = '\0';
    resolve_path(c, item, what, one, sizeof one);
    if (!one[0]) {
      dst[0] = '\0';
      return;
    }
    if (strchr(one, '\n')) {
      sn_diag_error(c->d, item->loc, "%s path holds a line break", what);
      dst[0] = '\0';
      return;
    }
    size_t k = strlen(one);
    if (len + k + 1 >= cap) {
      sn_diag_error(c->d, v->loc, "the list of %s paths is too long (at most %zu bytes)", what,
                    cap - 1);
      sn_diag_hint(c->d, "name the shards with a glob pattern, e.g. shards/x-*.npy");
      dst[0] = '\0';
      return;
    }
    memcpy(dst + len, one, k);
    len += k;
    dst[len++] = i + 1 < v->n ? '\n' : '\0';
  }
}

/* A required path key of a file source; with `list`, a list of paths too. */
static void source_path(checker *c, const sn_node *map, const char *key, const char *where,
                        char *dst, size_t cap, bool list) {
  const sn_node *v = sn_node_get(map, key);
  if (v && list && v->kind == SN_NODE_SEQ)
    path_list(c, v, key, dst, cap);
  else if (v)
    resolve_path(c, v, key, dst, cap);
  else
    ck_missing(c, map, key, where);
}

static void source_limit(checker *c, const sn_node *map, sn_source *src) {
  const sn_node *v = sn_node_get(map, "limit");
  if (v) ck_get_int(c, v, "limit", 1, INT64_MAX, &src->limit);
}

/* A dataset's name in an HDF5 file (x, y): a path inside the file, not resolved. */
static void hdf5_name(checker *c, const sn_node *map, const char *key, char *dst, size_t cap) {
  const sn_node *v = sn_node_get(map, key);
  if (!v) {
    ck_missing(c, map, key, "an hdf5 data source");
    return;
  }
  const char *s = ck_get_str(c, v, key);
  if (!s) return;
  if (!s[0] || strlen(s) >= cap)
    sn_diag_error(c->d, v->loc, "%s: a dataset name of 1 to %zu bytes, e.g. /images", key, cap - 1);
  else
    snprintf(dst, cap, "%s", s);
}

static void hdf5_source(checker *c, const sn_node *n, sn_source *src) {
  ck_check_keys(c, n, "an hdf5 data source", HDF5_KEYS);
  source_path(c, n, "path", "an hdf5 data source", src->path, sizeof src->path, false);
  hdf5_name(c, n, "x", src->images, sizeof src->images);
  hdf5_name(c, n, "y", src->labels, sizeof src->labels);
  source_limit(c, n, src);
  src->kind = SN_SRC_HDF5;
}

static void synthetic_source(checker *c, const sn_node *map, const sn_node *kind, sn_source *src) {
  ck_check_keys(c, map, "a synthetic data source", SYNTH_KEYS);
  int k = ck_is_name(kind) ? ck_lookup(c, kind, "synthetic data set", SYNTH_SETS) : -1;
  if (!ck_is_name(kind)) ck_type_error(c, kind, "synthetic", "a generator name");
  src->samples = 1000;
  src->classes = 2;
  src->noise = 0.1;
  src->features = 2;
  const sn_node *v;
  if ((v = sn_node_get(map, "samples"))) ck_get_int(c, v, "samples", 1, MAX_SAMPLES, &src->samples);
  if ((v = sn_node_get(map, "features")))
    ck_get_int32(c, v, "features", 1, MAX_FEATURES, &src->features);
  if ((v = sn_node_get(map, "noise")))
    ck_get_real(c, v, "noise", 0, false, INFINITY, false, &src->noise);
  if ((v = sn_node_get(map, "classes")) &&
      ck_get_int32(c, v, "classes", 2, MAX_CLASSES, &src->classes)) {
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
  if (!ck_is_name(v) || (!v->quoted && !ck_is_int_text(v) && ck_parse_real(v->text, &num) != 1)) {
    ck_type_error(c, v, "label", expected);
    return;
  }
  if (!v->quoted && !strcmp(v->text, "last")) {
    src->label_index = -1;
  } else if (!v->quoted && !strcmp(v->text, "first")) {
    src->label_index = 0;
  } else if (ck_is_int_text(v)) {
    int64_t k;
    if (ck_get_int(c, v, "label column number", 0, MAX_COLUMN, &k)) src->label_index = (int)k;
  } else if (!src->header) {
    sn_diag_error(c->d, v->loc, "label '%s' names a column, which needs header: true", v->text);
    sn_diag_hint(c->d, "without a header row, give the column's number (from 0), first or last");
  } else {
    ck_copy_field(c, v, "label column name", src->label_col, sizeof src->label_col);
    src->label_index = -1;
  }
}

/* An idx source (images and labels files) or an npy one (x and y), with limit. */
static void two_file_source(checker *c, const sn_node *map, sn_source_kind kind, sn_source *src) {
  const bool idx = kind == SN_SRC_IDX;
  const char *where = idx ? "an idx data source" : "an npy data source";
  ck_check_keys(c, map, where, idx ? IDX_KEYS : NPY_KEYS);
  source_path(c, map, idx ? "images" : "x", where, src->images, sizeof src->images, true);
  source_path(c, map, idx ? "labels" : "y", where, src->labels, sizeof src->labels, true);
  source_limit(c, map, src);
  src->kind = kind;
}

static void csv_source(checker *c, const sn_node *map, sn_source *src) {
  ck_check_keys(c, map, "a csv data source", CSV_KEYS);
  source_path(c, map, "path", "a csv data source", src->path, sizeof src->path, true);
  src->header = true;
  src->label_index = -1;
  const sn_node *v;
  if ((v = sn_node_get(map, "header"))) ck_get_bool(c, v, "header", &src->header);
  if ((v = sn_node_get(map, "label"))) csv_label(c, v, src);
  source_limit(c, map, src);
  src->kind = SN_SRC_CSV;
}

/* `range: [from, to]` of a text source: 0 <= from < to <= 1. */
static void text_range(checker *c, const sn_node *v, sn_source *src) {
  double r[2];
  if (v->kind != SN_NODE_SEQ || v->n != 2) {
    ck_type_error(c, v, "range", "[from, to], two fractions of the text");
    return;
  }
  for (int i = 0; i < 2; i++)
    if (!ck_get_real(c, v->items[i], "range", 0, false, 1, false, &r[i])) return;
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
  ck_check_keys(c, map, "a text data source", TEXT_KEYS);
  source_path(c, map, "path", "a text data source", src->path, sizeof src->path, false);
  const sn_node *v;
  int k;
  if ((v = sn_node_get(map, "tokenizer")) && (k = ck_lookup(c, v, "tokenizer", TOKENIZERS)) >= 0)
    src->tokenizer = (sn_tokenizer)k;
  if ((v = sn_node_get(map, "mode")) && (k = ck_lookup(c, v, "text mode", TEXT_MODES)) >= 0)
    src->text_mode = (sn_text_mode)k;
  if ((v = sn_node_get(map, "range"))) text_range(c, v, src);
  source_limit(c, map, src);
  if (src->text_mode == SN_TEXT_CLASSIFY) {
    mode_only(c, map, "context", "lm");
    mode_only(c, map, "windows", "lm");
    mode_only(c, map, "stride", "lm");
    if ((v = sn_node_get(map, "length")))
      ck_get_int(c, v, "length", 1, MAX_INPUT_ELEMS, &src->length);
    else
      ck_missing(c, map, "length", "a text source in classify mode (tokens per record)");
  } else {
    mode_only(c, map, "length", "classify");
    if ((v = sn_node_get(map, "context")))
      ck_get_int(c, v, "context", 1, MAX_INPUT_ELEMS, &src->context);
    else
      ck_missing(c, map, "context", "a text source in lm mode (tokens per window)");
    if ((v = sn_node_get(map, "windows")))
      ck_get_int(c, v, "windows", 1, MAX_SAMPLES, &src->windows);
    if ((v = sn_node_get(map, "stride")))
      ck_get_int(c, v, "stride", 1, MAX_INPUT_ELEMS, &src->stride);
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

  if (ck_is_name(n)) {
    const char *colon = strchr(n->text, ':');
    if (!colon) {
      sn_diag_error(c->d, n->loc, "%s must be SET:SPLIT or a mapping, got %s", what,
                    ck_describe(n, buf, sizeof buf));
      if (ck_in_list(n->text, BUILTIN_SETS))
        sn_diag_hint(c->d, "write %s:%s", n->text, !strcmp(role, "test") ? "test" : "train");
      return;
    }
    char set[64];
    snprintf(set, sizeof set, "%.*s", (int)(colon - n->text), n->text);
    builtin_name(c, n, set, colon + 1, src);
    return;
  }
  if (n->kind != SN_NODE_MAP) {
    ck_type_error(c, n, what, "a data source (SET:SPLIT or a mapping)");
    return;
  }

  const sn_node *form = NULL;
  for (int i = 0; i < n->n; i++) {
    if (!ck_in_list(n->keys[i]->text, SOURCE_FORMS)) continue;
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
      ck_get_real(c, s, "split", 0, true, 1, true, split);
      return;
    }
    ck_check_keys(c, n, "a data source", ANY_SOURCE_KEYS);
    sn_diag_error(c->d, n->loc, "%s needs one of builtin, format or synthetic%s", what,
                  split ? " (or only split: F)" : "");
    return;
  }

  const sn_node *kind = sn_node_get(n, form->text);
  if (!strcmp(form->text, "builtin")) {
    ck_check_keys(c, n, "a built-in data source", BUILTIN_KEYS);
    const sn_node *s = sn_node_get(n, "split");
    if (!s) ck_missing(c, n, "split", "a built-in data source");
    const char *set = ck_get_str(c, kind, "builtin");
    const char *sp = s ? ck_get_str(c, s, "split") : NULL;
    if (set && sp) {
      builtin_name(c, kind, set, "train", src);
      if (!ck_in_list(sp, SPLITS)) {
        sn_diag_error(c->d, s->loc, "unknown split '%s' of a built-in data set", sp);
        ck_hint_closest(c, sp, SPLITS, NULL);
        src->kind = SN_SRC_NONE;
      } else {
        snprintf(src->split, sizeof src->split, "%s", sp);
      }
    }
    source_limit(c, n, src);
  } else if (!strcmp(form->text, "format")) {
    if (!ck_is_name(kind)) {
      ck_type_error(c, kind, "format", "a file format name");
      return;
    }
    int f = ck_lookup(c, kind, "data format", FORMATS);
    if (f == FORMAT_IDX) {
      two_file_source(c, n, SN_SRC_IDX, src);
    } else if (f == FORMAT_CSV) {
      csv_source(c, n, src);
    } else if (f == FORMAT_NPY) {
      two_file_source(c, n, SN_SRC_NPY, src);
    } else if (f == FORMAT_TEXT) {
      text_source(c, n, src);
    } else if (f == FORMAT_HDF5) {
      hdf5_source(c, n, src);
    } /* an unknown format takes other keys: nothing more to say */
  } else {
    synthetic_source(c, n, kind, src);
  }
}

/* Preprocessing runs on float32 inputs: a factor or divisor outside float32's normal
 * range, or an offset beyond its largest value, turns every input into 0 or inf. */
static bool f32_range(checker *c, const sn_node *n, const char *what, double v, bool factor) {
  if (fabs(v) <= FLT_MAX && (!factor || fabs(v) >= FLT_MIN)) return true;
  if (factor)
    sn_diag_error(c->d, n->loc, "%s %g is outside float32's range (%g to %g in magnitude)", what,
                  v, FLT_MIN, FLT_MAX);
  else
    sn_diag_error(c->d, n->loc, "%s %g is beyond float32's range (at most %g in magnitude)", what,
                  v, FLT_MAX);
  sn_diag_hint(c->d, "the inputs are float32: every preprocessed value would be 0 or inf");
  return false;
}

/* `F` or `[F, ...]` (1 to 64 values) for normalize's mean and std. */
static int norm_values(checker *c, const sn_node *n, const char *what, bool positive,
                       double out[64]) {
  double lo = positive ? 0 : -INFINITY;
  if (n->kind == SN_NODE_SCALAR)
    return ck_get_real(c, n, what, lo, positive, INFINITY, false, &out[0]) &&
                   f32_range(c, n, what, out[0], positive)
               ? 1
               : 0;
  if (n->kind != SN_NODE_SEQ || n->n < 1 || n->n > 64) {
    char expected[64];
    snprintf(expected, sizeof expected, "a number or a list of 1 to 64 numbers");
    ck_type_error(c, n, what, expected);
    return 0;
  }
  bool ok = true;
  for (int i = 0; i < n->n; i++)
    ok = ck_get_real(c, n->items[i], what, lo, positive, INFINITY, false, &out[i]) &&
         f32_range(c, n->items[i], what, out[i], positive) && ok;
  return ok ? n->n : 0;
}

static void normalize_step(checker *c, const sn_node *name, const sn_node *opts) {
  static const char *const KEYS[] = {"mean", "std", NULL};
  sn_data_spec *ds = &c->s->data;
  const sn_node *map;
  if (!opts || ck_is_null(opts)) {
    sn_diag_error(c->d, name->loc,
                  "normalize needs mean and std: '- normalize: {mean: F, std: F}'");
    return;
  }
  if (!ck_options(c, name, opts, KEYS, &map) || !map) return;
  const sn_node *m = sn_node_get(map, "mean"), *s = sn_node_get(map, "std");
  double mean[64], std[64];
  int nm = 0, ns = 0;
  if (m)
    nm = norm_values(c, m, "mean", false, mean);
  else
    ck_missing(c, map, "mean", "normalize");
  if (s)
    ns = norm_values(c, s, "std", true, std);
  else
    ck_missing(c, map, "std", "normalize");
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
  static const char *const STEPS[] = {"scale", "normalize", "standardize", "standardize_targets",
                                      NULL};
  enum { SCALE, NORMALIZE, STANDARDIZE, STANDARDIZE_TARGETS };
  c->s->data.preprocess_loc = n->loc;
  if (n->kind != SN_NODE_SEQ) {
    ck_type_error(c, n, "preprocess", "a list of steps");
    return;
  }
  const sn_node *seen[4] = {NULL, NULL, NULL, NULL};
  bool seen_scale = false;
  int last = -1;
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts;
    int k;
    if (!ck_choice(c, n->items[i], "a preprocess step", &name, &opts) ||
        (k = ck_lookup(c, name, "preprocess step", STEPS)) < 0)
      continue;
    if (k < last) {
      sn_diag_error(c->d, name->loc, "preprocess step '%s' must come before '%s'", STEPS[k],
                    STEPS[last]);
      sn_diag_hint(c->d,
                   "steps run in the order scale, normalize, standardize, standardize_targets");
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
      ck_no_options(c, name, opts);
      c->s->data.standardize = true;
    } else if (k == STANDARDIZE_TARGETS) {
      ck_no_options(c, name, opts);
      c->s->data.standardize_targets = true;
      c->s->data.standardize_targets_loc = name->loc;
    } else if (!opts) {
      sn_diag_error(c->d, name->loc, "scale needs a factor: '- scale: F'");
    } else if (ck_get_real(c, opts, "scale", -INFINITY, false, INFINITY, false, &f)) {
      if (f == 0)
        sn_diag_error(c->d, opts->loc, "scale must not be 0");
      else if (f32_range(c, opts, seen_scale ? "scale (all scale steps multiplied)" : "scale",
                         c->s->data.scale * f, true))
        c->s->data.scale *= f; /* several scale steps multiply */
      seen_scale = true;
    }
  }
}

void ck_data_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"train", "test", "validation", "preprocess", NULL};
  if (!ck_is_map(c, n, "data")) return;
  ck_check_keys(c, n, "data", KEYS);
  sn_data_spec *ds = &c->s->data;
  const sn_node *v;
  if ((v = sn_node_get(n, "train")))
    data_source(c, v, "train", STREAM_TRAIN, &ds->train, &ds->train_loc, NULL);
  else
    ck_missing(c, n, "train", "data");
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
bool ck_has_data(const sn_spec *s, const char *role) {
  return sn_node_get(sn_node_get(s->root, "data"), role) != NULL;
}
