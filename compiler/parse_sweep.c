/* The spec checker: the `sweep:` section. Runs of this spec with settings
 * changed, as by --set: a grid, random trials, or a method with distributions and
 * the successive-halving scheduler. Each setting is checked by applying it to a
 * copy of the tree and checking the copy, so a sweep that names a wrong key or a
 * bad value fails when the spec is checked, not in run 7. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define MAX_SWEEP_RUNS INT64_C(4096) /* as cli/cmd_sweep.c */


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
    sn_spec_free(ck_check_tree(copy, c->s->path, &d, true));
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
  return ck_copy_field(c, k, "sweep key", ax->key, sizeof ax->key);
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

/* The sweep's next axis, for key (checked: *ok), or NULL when the sweep varies cap
 * keys already (reported). */
static sn_sweep_axis *next_axis(checker *c, sn_sweep_spec *sw, int cap, const sn_node *key, bool *ok) {
  if (sw->n_axes == cap) {
    sn_diag_error(c->d, key->loc, "a sweep varies at most %d keys", cap);
    return NULL;
  }
  sn_sweep_axis *ax = &sw->axes[sw->n_axes];
  *ax = (sn_sweep_axis){0};
  *ok = sweep_key(c, key, ax);
  return ax;
}

static void sweep_grid(checker *c, const sn_node *n, bool check_values) {
  sn_sweep_spec *sw = &c->s->sweep;
  int cap = (int)(sizeof sw->axes / sizeof sw->axes[0]);
  int vcap = (int)(sizeof sw->axes[0].values / sizeof sw->axes[0].values[0]);
  if (!ck_is_map(c, n, "grid")) return;
  if (n->n == 0) {
    sn_diag_error(c->d, n->loc, "grid needs at least one key");
    sn_diag_hint(c->d, "write grid: {train.batch_size: [32, 64]}");
    return;
  }
  int64_t runs = 1;
  for (int i = 0; i < n->n; i++) {
    const sn_node *vals = n->items[i];
    bool ok;
    sn_sweep_axis *ax = next_axis(c, sw, cap, n->keys[i], &ok);
    if (!ax) return;
    if (!ck_nonempty_list(c, vals, "grid values", "a non-empty list")) continue;
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
  if (!ck_is_map(c, n, "random")) return;
  ck_check_keys(c, n, "random", KEYS);
  const sn_node *v = sn_node_get(n, "count"), *ranges = sn_node_get(n, "ranges");
  if (v)
    ck_get_int32(c, v, "count", 1, MAX_SWEEP_RUNS, &sw->count);
  else
    ck_missing(c, n, "count", "random");
  if (!ranges) {
    ck_missing(c, n, "ranges", "random");
    sn_diag_hint(c->d, "write ranges: {train.optimizer.adam.learning_rate: {min: 1e-4, max: "
                       "1e-2, log: true}}");
    return;
  }
  if (!ck_is_map(c, ranges, "ranges")) return;
  if (ranges->n == 0) {
    sn_diag_error(c->d, ranges->loc, "ranges needs at least one key");
    return;
  }
  for (int i = 0; i < ranges->n; i++) {
    const sn_node *r = ranges->items[i];
    bool ok;
    sn_sweep_axis *ax = next_axis(c, sw, cap, ranges->keys[i], &ok);
    if (!ax) return;
    char what[160];
    snprintf(what, sizeof what, "the range of %s", ranges->keys[i]->text);
    if (!ck_is_map(c, r, what)) continue;
    ck_check_keys(c, r, "a sweep range", RANGE_KEYS);
    const sn_node *lo = sn_node_get(r, "min"), *hi = sn_node_get(r, "max");
    if (!lo) ck_missing(c, r, "min", "a sweep range");
    if (!hi) ck_missing(c, r, "max", "a sweep range");
    ok = lo && hi && ok;
    ok = (!lo || ck_get_real(c, lo, "min", -INFINITY, false, INFINITY, false, &ax->lo)) && ok;
    ok = (!hi || ck_get_real(c, hi, "max", -INFINITY, false, INFINITY, false, &ax->hi)) && ok;
    if ((v = sn_node_get(r, "log"))) ok = ck_get_bool(c, v, "log", &ax->log) && ok;
    if ((v = sn_node_get(r, "integer"))) ok = ck_get_bool(c, v, "integer", &ax->integer) && ok;
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
    ck_type_error(c, v, "a sweep parameter", "a list of values or one distribution");
    sn_diag_hint(c->d, "write [16, 32], {choice: [16, 32]}, {uniform: [0.0, 0.5]}, "
                       "{log_uniform: [1.0e-4, 1.0e-2]} or {int: [8, 64]}");
    return false;
  }
  int kind = ck_lookup(c, v->keys[0], "distribution", KINDS);
  const sn_node *r = v->items[0];
  if (kind < 0) return false;
  if (r->kind != SN_NODE_SEQ || (kind == 0 ? r->n == 0 : r->n != 2)) {
    ck_type_error(c, r, KINDS[kind], kind == 0 ? "a non-empty list" : "a list [low, high]");
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
  if (!ck_get_real(c, r->items[0], "low", -INFINITY, false, INFINITY, false, &lo) ||
      !ck_get_real(c, r->items[1], "high", -INFINITY, false, INFINITY, false, &hi))
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
  if (m && (!ck_is_name(m) || (method = ck_lookup(c, m, "method", METHODS)) < 0)) {
    if (!ck_is_name(m)) ck_type_error(c, m, "method", "grid or random");
    return;
  }
  sw->kind = method ? SN_SWEEP_RANDOM : SN_SWEEP_GRID;
  if (method == 1 && !t) ck_missing(c, n, "trials", "a random sweep");
  if (method == 0 && t) {
    sn_diag_error(c->d, t->loc, "a grid sweep runs every combination; trials is for random");
    sn_diag_hint(c->d, "write method: random to draw that many trials");
  }
  if (t && method == 1) ck_get_int32(c, t, "trials", 1, MAX_SWEEP_RUNS, &sw->count);
  if (!params) {
    ck_missing(c, n, "parameters", "sweep");
    sn_diag_hint(c->d, "write parameters: {train.batch_size: [32, 64]}");
    return;
  }
  if (!ck_is_map(c, params, "parameters")) return;
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
  if (!ck_is_map(c, n, "scheduler")) return;
  ck_check_keys(c, n, "scheduler", KEYS);
  const sn_node *h = sn_node_get(n, "halving"), *v;
  if (!h) {
    ck_missing(c, n, "halving", "scheduler");
    return;
  }
  if (!ck_is_map(c, h, "halving")) return;
  ck_check_keys(c, h, "halving", HKEYS);
  sw->halving = true;
  sw->min_epochs = 1;
  sw->eta = 3;
  snprintf(sw->halving_metric, sizeof sw->halving_metric, "%s", sw->metric);
  /* min_epochs >= train.epochs is not an error: each trial, a copy of this spec with
   * train.epochs set to its rung, is checked too (cli/cmd_sweep.c says it stops none) */
  if ((v = sn_node_get(h, "min_epochs")))
    ck_get_int32(c, v, "min_epochs", 1, 1000000, &sw->min_epochs);
  if ((v = sn_node_get(h, "eta"))) ck_get_int32(c, v, "eta", 2, 1000, &sw->eta);
  if ((v = sn_node_get(h, "metric")) && ck_figure(c, v, "halving metric", true))
    snprintf(sw->halving_metric, sizeof sw->halving_metric, "%s", v->text);
  for (int a = 0; a < sw->n_axes; a++)
    if (!strcmp(sw->axes[a].key, "train.epochs"))
      sn_diag_error(c->d, sw->axes[a].loc,
                    "a halving sweep sets train.epochs itself; do not sweep it");
}

void ck_sweep_section(checker *c, const sn_node *n, bool check_values) {
  static const char *const KEYS[] = {"grid",   "random",     "method",    "trials", "parameters",
                                     "metric", "mode",       "scheduler", NULL};
  static const char *const MODES[] = {"max", "min", NULL};
  sn_sweep_spec *sw = &c->s->sweep;
  if (!ck_is_map(c, n, "sweep")) return;
  ck_check_keys(c, n, "sweep", KEYS);
  sw->loc = n->loc;
  const sn_node *g = sn_node_get(n, "grid"), *r = sn_node_get(n, "random"), *v;
  snprintf(sw->metric, sizeof sw->metric, "%s",
           ck_has_data(c->s, "validation") ? "val_loss" : "loss");
  if ((v = sn_node_get(n, "metric")) && ck_figure(c, v, "sweep metric", true)) {
    snprintf(sw->metric, sizeof sw->metric, "%s", v->text); /* known figures are short */
    if (!strncmp(v->text, "test_", 5)) {
      sn_diag_warning(c->d, v->loc, "choosing runs by '%s' tunes the model to the test set",
                      v->text);
      sn_diag_hint(c->d, "choose by a val_ figure, with data.validation");
    }
  }
  sw->maximize = strstr(sw->metric, "accuracy") != NULL;
  int mode;
  if ((v = sn_node_get(n, "mode")) && ck_is_name(v) && (mode = ck_lookup(c, v, "mode", MODES)) >= 0)
    sw->maximize = mode == 0;
  else if (v && !ck_is_name(v))
    ck_type_error(c, v, "mode", "max or min");
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
