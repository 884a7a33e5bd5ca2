/* The spec checker: the `train:` section (loss, optimizer, schedule, metrics,
 * early stopping, sizes) and the `expect:` section (bounds on the figures a run
 * reports). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* Names of the enums, in enum order */

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

const char *sn_loss_name(sn_loss_kind k) { return ENUM_NAME(LOSSES, k); }
const char *sn_optimizer_name(sn_opt_kind k) { return ENUM_NAME(OPTIMIZERS, k); }
const char *sn_schedule_name(sn_schedule_kind k) { return ENUM_NAME(SCHEDULES, k); }

/* ---------------------------------------------------------------------------
 * train */

static void loss(checker *c, const sn_node *n) {
  static const char *const LOGITS_KEYS[] = {"from_logits", NULL};
  static const char *const HUBER_KEYS[] = {"delta", NULL};
  const sn_node *name, *opts, *map;
  sn_spec *s = c->s;
  s->loss_loc = n->loc;
  int k;
  if (!ck_choice(c, n, "loss", &name, &opts) || (k = ck_lookup(c, name, "loss", LOSSES)) < 0)
    return;
  s->loss = (sn_loss_kind)k;
  const sn_node *v;
  switch (s->loss) {
  case SN_LOSS_SPARSE_CCE:
  case SN_LOSS_CCE:
  case SN_LOSS_BCE:
    if (ck_options(c, name, opts, LOGITS_KEYS, &map) && (v = sn_node_get(map, "from_logits")))
      ck_get_bool(c, v, "from_logits", &s->from_logits);
    break;
  case SN_LOSS_HUBER:
    if (ck_options(c, name, opts, HUBER_KEYS, &map) && (v = sn_node_get(map, "delta")))
      ck_get_real(c, v, "delta", 0, true, INFINITY, false, &s->huber_delta);
    break;
  default:
    ck_no_options(c, name, opts);
  }
}

/* The value of `key` in `map` if `keys` allows it (other keys are reported as
 * unknown already). */
static const sn_node *own(const sn_node *map, const char *const *keys, const char *key) {
  return ck_in_list(key, keys) ? sn_node_get(map, key) : NULL;
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
  if (!ck_choice(c, n, "optimizer", &name, &opts) ||
      (k = ck_lookup(c, name, "optimizer", OPTIMIZERS)) < 0)
    return;
  s->optimizer = (sn_opt_kind)k;
  /* Keras's defaults per optimizer. */
  s->learning_rate = s->optimizer == SN_OPT_SGD ? 0.01 : 0.001;
  if (s->optimizer == SN_OPT_ADAMW) s->weight_decay = 0.004;
  if (s->optimizer == SN_OPT_RMSPROP) s->rho = 0.9;
  const char *const *keys = KEYS[k];
  if (!ck_options(c, name, opts, keys, &map) || !map) return;
  if ((v = own(map, keys, "learning_rate")) &&
      ck_get_real(c, v, "learning_rate", 0, true, INFINITY, false, &s->learning_rate) &&
      s->learning_rate > 1) {
    sn_diag_warning(c->d, v->loc, "learning_rate %g is unusually large", s->learning_rate);
    sn_diag_hint(c->d, "typical values lie between 1e-4 and 0.1");
  }
  if ((v = own(map, keys, "beta1"))) ck_get_real(c, v, "beta1", 0, false, 1, true, &s->beta1);
  if ((v = own(map, keys, "beta2"))) ck_get_real(c, v, "beta2", 0, false, 1, true, &s->beta2);
  if ((v = own(map, keys, "epsilon")))
    ck_get_real(c, v, "epsilon", 0, true, INFINITY, false, &s->epsilon);
  if ((v = own(map, keys, "weight_decay")))
    ck_get_real(c, v, "weight_decay", 0, false, INFINITY, false, &s->weight_decay);
  if ((v = own(map, keys, "rho"))) ck_get_real(c, v, "rho", 0, false, 1, true, &s->rho);
  bool momentum_ok = true;
  if ((v = own(map, keys, "momentum")))
    momentum_ok = ck_get_real(c, v, "momentum", 0, false, 1, true, &s->momentum);
  if ((v = own(map, keys, "nesterov")) && ck_get_bool(c, v, "nesterov", &s->nesterov) &&
      s->nesterov && momentum_ok && s->momentum == 0) {
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
  if (!ck_choice(c, n, "schedule", &name, &opts) ||
      (k = ck_lookup(c, name, "schedule", SCHEDULES)) < 0)
    return;
  sc->kind = (sn_schedule_kind)k;
  switch (sc->kind) {
  case SN_SCHED_CONSTANT:
    ck_no_options(c, name, opts);
    break;
  case SN_SCHED_STEP:
    sc->gamma = 0.1; /* as PyTorch's StepLR */
    if (!ck_options(c, name, opts, STEP_KEYS, &map)) break;
    if ((v = sn_node_get(map, "every"))) {
      ck_get_int32(c, v, "every", 1, MAX_EPOCHS, &sc->every);
    } else {
      ck_missing(c, map ? map : name, "every", "step");
      sn_diag_hint(c->d, "write {step: {every: 10, gamma: 0.5}}");
    }
    if ((v = sn_node_get(map, "gamma"))) ck_get_real(c, v, "gamma", 0, true, 1, false, &sc->gamma);
    break;
  case SN_SCHED_COSINE:
    if (!ck_options(c, name, opts, COSINE_KEYS, &map)) break;
    if ((v = sn_node_get(map, "warmup_epochs")) &&
        ck_get_real(c, v, "warmup_epochs", 0, false, (double)MAX_EPOCHS, false,
                    &sc->warmup_epochs) &&
        c->s->epochs > 0 && sc->warmup_epochs >= c->s->epochs) {
      sn_diag_warning(c->d, v->loc,
                      "warmup_epochs (%g) is not less than epochs (%d): the learning rate never "
                      "reaches its full value",
                      sc->warmup_epochs, c->s->epochs);
      sn_diag_hint(c->d, "warm up for a small part of training, e.g. 5%% of the epochs");
    }
    break;
  case SN_SCHED_EXPONENTIAL:
    if (!ck_options(c, name, opts, EXP_KEYS, &map)) break;
    if ((v = sn_node_get(map, "gamma"))) {
      ck_get_real(c, v, "gamma", 0, true, 1, false, &sc->gamma);
    } else {
      ck_missing(c, map ? map : name, "gamma", "exponential");
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
    ck_type_error(c, n, "metrics", "a list");
    if (ck_is_name(n)) sn_diag_hint(c->d, "write [%s]", n->text);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    const sn_node *name, *opts, *map, *v;
    int k, top_k = 0;
    if (!ck_choice(c, n->items[i], "a metric", &name, &opts) ||
        (k = ck_lookup(c, name, "metric", METRICS)) < 0)
      continue;
    if (k == SN_METRIC_TOP_K) {
      top_k = 5; /* as Keras's top_k_categorical_accuracy */
      if (!ck_options(c, name, opts, TOP_K_KEYS, &map)) continue;
      if ((v = sn_node_get(map, "k")) && !ck_get_int32(c, v, "k", 1, MAX_CLASSES, &top_k)) continue;
    } else {
      ck_no_options(c, name, opts);
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

/* Whether the run reports the figure `name` (without its set prefix): the loss, or
 * a metric listed in train.metrics. */
static bool reported(const sn_spec *s, const char *name) {
  if (!strcmp(name, "loss")) return true;
  for (int i = 0; i < s->n_metrics; i++)
    if (!strcmp(s->metrics[i], name)) return true;
  return false;
}

/* A per-epoch figure of the run (a metrics.jsonl key): loss or a listed metric,
 * plain (training data), val_ (validation data) or, when `allow_test`, test_.
 * `what` names the key in messages ("monitor", "sweep metric"). */
bool ck_figure(checker *c, const sn_node *n, const char *what, bool allow_test) {
  const sn_spec *s = c->s;
  if (!ck_is_name(n)) {
    ck_type_error(c, n, what, "a figure name such as val_loss");
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
  bool known = !strcmp(base, "loss") || ck_in_list(base, METRICS);
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
    ck_hint_closest(c, t, cands, NULL);
    return false;
  }
  bool ok = true;
  if (!reported(s, base)) {
    sn_diag_error(c->d, n->loc, "%s '%s' needs '%s' in train.metrics", what, t, base);
    ok = false;
  }
  if (set && !ck_has_data(s, set)) {
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
  if (!ck_is_map(c, n, "early_stopping")) return;
  ck_check_keys(c, n, "early_stopping", KEYS);
  c->s->early_loc = n->loc;
  e->enabled = true;
  e->restore_best = true;
  snprintf(e->monitor, sizeof e->monitor, "%s",
           ck_has_data(c->s, "validation") ? "val_loss" : "loss");
  const sn_node *v;
  if ((v = sn_node_get(n, "monitor")) && ck_figure(c, v, "monitor", false))
    snprintf(e->monitor, sizeof e->monitor, "%s", v->text); /* known figures are short */
  if ((v = sn_node_get(n, "patience"))) ck_get_int32(c, v, "patience", 0, MAX_EPOCHS, &e->patience);
  if ((v = sn_node_get(n, "min_delta")))
    ck_get_real(c, v, "min_delta", 0, false, INFINITY, false, &e->min_delta);
  if ((v = sn_node_get(n, "restore_best"))) ck_get_bool(c, v, "restore_best", &e->restore_best);
}

/* `shuffle: true|false`, or `shuffle: {block: N}`: blocks of N consecutive samples
 * in shuffled order (sn_shuffle_blocks). */
static void shuffle(checker *c, const sn_node *v, sn_spec *s) {
  static const char *const KEYS[] = {"block", NULL};
  if (v->kind != SN_NODE_MAP) {
    ck_get_bool(c, v, "shuffle", &s->shuffle);
    return;
  }
  ck_check_keys(c, v, "shuffle", KEYS);
  const sn_node *b = sn_node_get(v, "block");
  if (!b)
    ck_missing(c, v, "block", "shuffle (samples per block)");
  else if (ck_get_int(c, b, "block", 1, MAX_SAMPLES, &s->shuffle_block))
    s->shuffle = true;
}

void ck_train_section(checker *c, const sn_node *n) {
  static const char *const KEYS[] = {"loss",           "optimizer", "batch_size",     "epochs",
                                     "shuffle",        "metrics",   "clip_grad_norm", "schedule",
                                     "early_stopping", NULL};
  if (!ck_is_map(c, n, "train")) return;
  ck_check_keys(c, n, "train", KEYS);
  sn_spec *s = c->s;
  s->schedule_loc = n->loc;
  const sn_node *v;
  if ((v = sn_node_get(n, "loss")))
    loss(c, v);
  else
    ck_missing(c, n, "loss", "train");
  if ((v = sn_node_get(n, "optimizer"))) optimizer(c, v);
  if ((v = sn_node_get(n, "clip_grad_norm")))
    ck_get_real(c, v, "clip_grad_norm", 0, true, INFINITY, false, &s->clip_grad_norm);
  s->batch_size_loc = n->loc;
  if ((v = sn_node_get(n, "batch_size"))) {
    s->batch_size_loc = v->loc;
    ck_get_int(c, v, "batch_size", 1, MAX_BATCH, &s->batch_size);
  }
  if ((v = sn_node_get(n, "epochs"))) ck_get_int32(c, v, "epochs", 0, MAX_EPOCHS, &s->epochs);
  if ((v = sn_node_get(n, "shuffle"))) shuffle(c, v, s);
  if ((v = sn_node_get(n, "metrics"))) metrics(c, v);
  if ((v = sn_node_get(n, "schedule"))) schedule(c, v);
  if ((v = sn_node_get(n, "early_stopping"))) early_stopping(c, v);
}

/* ---------------------------------------------------------------------------
 * expect */

static const char *const EXPECT_SETS[] = {"train", "validation", "test", NULL};

/* An expectation whose value is a mapping of one key, keys[0] (gradcheck, error):
 * false when v is no mapping (reported); else *m is that key's value, or NULL
 * when it is missing (reported). */
static bool expect_option(checker *c, const sn_node *v, const char *what, const char *const *keys,
                          const sn_node **m) {
  if (!ck_is_map(c, v, what)) return false;
  ck_check_keys(c, v, what, keys);
  if (!(*m = sn_node_get(v, keys[0]))) ck_missing(c, v, keys[0], what);
  return true;
}

static void expect_range(checker *c, const sn_node *key, const sn_node *v, sn_expect_spec *e) {
  static const char *const KEYS[] = {"min", "max", NULL};
  if (!ck_is_map(c, v, key->text)) return;
  ck_check_keys(c, v, key->text, KEYS);
  const sn_node *lo = sn_node_get(v, "min"), *hi = sn_node_get(v, "max");
  if (!lo && !hi) {
    sn_diag_error(c->d, v->loc, "expectation '%s' needs min or max", key->text);
    return;
  }
  if (lo) e->has_min = ck_get_real(c, lo, "min", -INFINITY, false, INFINITY, false, &e->min);
  if (hi) e->has_max = ck_get_real(c, hi, "max", -INFINITY, false, INFINITY, false, &e->max);
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
    known_set = ck_in_list(set, EXPECT_SETS);
  }
  const char *q = dot ? dot + 1 : "";
  if (!known_set || (strcmp(q, "loss") != 0 && !ck_in_list(q, METRICS))) {
    sn_diag_error(c->d, key->loc, "unknown expectation '%s'", t);
    ck_hint_closest(c, t, cands, NULL);
    return false;
  }
  bool ok = true;
  if (!reported(s, q)) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs '%s' in train.metrics", t, q);
    ok = false;
  }
  if (!strcmp(set, "test") && !ck_has_data(s, "test")) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs data.test", t);
    ok = false;
  }
  if (!strcmp(set, "validation") && !ck_has_data(s, "validation")) {
    sn_diag_error(c->d, key->loc, "expectation '%s' needs data.validation", t);
    ok = false;
  }
  return ok;
}

void ck_expect_section(checker *c, const sn_node *n) {
  sn_spec *s = c->s;
  int cap = (int)(sizeof s->expect / sizeof s->expect[0]);
  if (!ck_is_map(c, n, "expect")) return;
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
      const sn_node *m;
      if (!expect_option(c, v, "gradcheck", KEYS, &m)) continue;
      if (m) ck_get_real(c, m, "max_rel_error", 0, true, INFINITY, false, &e->max_rel_error);
    } else if (!strcmp(key->text, "error")) {
      static const char *const KEYS[] = {"contains", NULL};
      const sn_node *m;
      if (!expect_option(c, v, "error", KEYS, &m)) continue;
      if (m && ck_get_str(c, m, "contains"))
        ck_copy_field(c, m, "contains", e->contains, sizeof e->contains);
    } else {
      if (!expect_key(c, key)) continue;
      expect_range(c, key, v, e);
    }
    snprintf(e->key, sizeof e->key, "%s", key->text); /* known keys are short */
    s->n_expect++;
  }
}
