/* Tests of the training loop (runtime/train.c) with hand-written step functions:
 * no compiler, no JIT. Three models stand in for generated code:
 *
 *   recorder  - learns nothing; records which samples each call saw, in which order,
 *               with which step/lr/seed, and returns losses and metric sums that the
 *               test can recompute by hand from that record.
 *   softmax   - a real linear softmax classifier, logits = x W^T + b, with plain SGD
 *               in its update, trained on separable blobs.
 *   scripted  - counts epochs in its one weight (and a state value), and reports
 *               validation figures from a script indexed by that count: early
 *               stopping must stop at, and restore, the epochs worked out by hand.
 *
 * Also: learning-rate schedules against hand-computed values, prefetching against
 * staging on the training thread (the same batches), float targets, metrics.csv
 * against metrics.jsonl, curves.svg, and sn_predict_all.
 *
 * Data parallelism without MPI: a fake sn_comm whose ranks are threads of this
 * process. Two and three ranks (shards of unequal size, ranks with no rows of a tiny
 * last batch) must train the weights, optimizer and state buffers that one process
 * trains; a NaN or a bad data set on one rank stops every rank; resuming (alone and
 * on two ranks) continues exactly where an uninterrupted run would be.
 *
 * The recorder's data set makes every sample identify itself: x[i] = (i, loss_i, i%3)
 * and y[i] = i % 3, so a step function can tell which sample a row is. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specnet/runtime.h"

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);                             \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static int close_to(double a, double b, double tol) {
  return fabs(a - b) <= tol * (1 + fabs(a) + fabs(b));
}

/* ---------------------------------------------------------------------------
 * The recorder model */

enum { REC_D = 3, REC_MAX_CALLS = 256, REC_MAX_SEEN = 4096 };

static struct {
  sn_dtype_rt dtype;
  const sn_model *model;       /* to check the buffers passed in */
  int64_t calls;               /* train_step calls */
  int64_t rows[REC_MAX_CALLS]; /* rows of each call */
  int64_t steps[REC_MAX_CALLS];
  double lr[REC_MAX_CALLS];
  uint64_t seed[REC_MAX_CALLS];
  int64_t seen[REC_MAX_SEEN]; /* sample ids in visit order, all train calls */
  int64_t n_seen;
  int64_t bad_rows; /* rows whose label or contents did not match the sample */
  int64_t nan_at_step;
  int inf_instead;
  int eval_nan;
  int64_t eval_calls;
  int64_t eval_rows[REC_MAX_CALLS];
  int64_t eval_seen[REC_MAX_SEEN];
  int64_t eval_n_seen;
  int64_t target_elems; /* t[i] = (i, -i, 2i, ...) per sample when > 0 */
  int64_t bad_targets;  /* rows whose targets did not match the sample */
} R;

static double rec_loss_of(int64_t i) { return 0.25 * (double)(i % 7) + 0.125; }

static double rec_x(const sn_step_args *a, int64_t r, int e) {
  if (R.dtype == SN_RT_F64) return ((const double *)a->x)[r * REC_D + e];
  return ((const float *)a->x)[r * REC_D + e];
}

static double rec_target(int64_t i, int64_t k) { return (double)i * (k % 2 ? -(double)k : 1.0); }

static double rec_t(const sn_step_args *a, int64_t r, int64_t k) {
  if (R.dtype == SN_RT_F64) return ((const double *)a->t)[r * R.target_elems + k];
  return ((const float *)a->t)[r * R.target_elems + k];
}

/* Sums loss_i and two metrics (label == 0; label == 1) over the batch; returns the
 * sample id of each row through `ids`. */
static void rec_sums(const sn_step_args *a, int64_t *ids) {
  double loss = 0, m0 = 0, m1 = 0;
  CHECK(a->state == R.model->state, "step got a state buffer other than the model's");
  for (int64_t r = 0; r < a->rows; r++) {
    int64_t i = (int64_t)rec_x(a, r, 0);
    if (rec_x(a, r, 1) != rec_loss_of(i) || rec_x(a, r, 2) != (double)(i % 3) || a->y[r] != i % 3)
      R.bad_rows++;
    if (R.target_elems > 0) {
      if (!a->t)
        R.bad_targets++;
      else
        for (int64_t k = 0; k < R.target_elems; k++)
          if (rec_t(a, r, k) != rec_target(i, k)) R.bad_targets++;
    } else if (a->t) {
      R.bad_targets++;
    }
    ids[r] = i;
    loss += rec_x(a, r, 1);
    m0 += a->y[r] == 0;
    m1 += a->y[r] == 1;
  }
  *a->loss_sum = loss;
  a->metric_sums[0] = m0;
  a->metric_sums[1] = m1;
}

static void rec_train_step(const sn_step_args *a) {
  CHECK(R.calls < REC_MAX_CALLS && R.n_seen + a->rows <= REC_MAX_SEEN, "too many calls");
  CHECK(a->params == R.model->params && a->grads == R.model->grads &&
            a->opt_state == R.model->opt_state && a->arena == R.model->arena,
        "step got buffers other than the model's");
  R.rows[R.calls] = a->rows;
  R.steps[R.calls] = a->step;
  R.lr[R.calls] = a->lr;
  R.seed[R.calls] = a->seed;
  R.calls++;
  rec_sums(a, R.seen + R.n_seen);
  R.n_seen += a->rows;
  if (a->step == R.nan_at_step) *a->loss_sum = R.inf_instead ? INFINITY : NAN;
}

static void rec_eval_step(const sn_step_args *a) {
  CHECK(R.eval_calls < REC_MAX_CALLS && R.eval_n_seen + a->rows <= REC_MAX_SEEN,
        "too many eval calls");
  R.eval_rows[R.eval_calls++] = a->rows;
  rec_sums(a, R.eval_seen + R.eval_n_seen);
  R.eval_n_seen += a->rows;
  if (R.eval_nan) *a->loss_sum = NAN;
}

static const char *const rec_metric_names[] = {"accuracy", "ones"};
static const sn_param_info rec_param_info[] = {
    {.name = "w", .rank = 1, .shape = {1}, .offset = 0, .count = 1, .init = SN_INIT_ZEROS},
};

static sn_model rec_model(sn_dtype_rt dtype, int64_t capacity) {
  sn_model m = {
      .dtype = dtype,
      .batch_capacity = capacity,
      .input_elems = REC_D,
      .output_elems = 3,
      .param_count = 1,
      .opt_state_count = 1,
      .arena_bytes = 64,
      .n_params = 1,
      .params_info = rec_param_info,
      .n_metrics = 2,
      .metric_names = rec_metric_names,
      .train_step = rec_train_step,
      .eval_step = rec_eval_step,
  };
  sn_error err = {{0}};
  CHECK(sn_model_alloc(&m, &err) == 0, "sn_model_alloc: %s", err.msg);
  return m;
}

static void rec_reset(const sn_model *m) {
  memset(&R, 0, sizeof R);
  R.dtype = m->dtype;
  R.model = m;
}

/* x[i] = (i, loss_i, i%3), y[i] = i%3; ids start at `first`. */
static sn_dataset rec_dataset(int64_t n, int64_t first) {
  sn_dataset ds = {.n = n, .rank = 1, .shape = {REC_D}, .sample_elems = REC_D, .classes = 3};
  ds.x = malloc((size_t)n * REC_D * sizeof(float));
  ds.y = malloc((size_t)n * sizeof(int32_t));
  CHECK(ds.x && ds.y, "out of memory");
  for (int64_t k = 0; k < n; k++) {
    int64_t i = first + k;
    ds.x[k * REC_D + 0] = (float)i;
    ds.x[k * REC_D + 1] = (float)rec_loss_of(i);
    ds.x[k * REC_D + 2] = (float)(i % 3);
    ds.y[k] = (int32_t)(i % 3);
  }
  strcpy(ds.origin, "test_train");
  return ds;
}

static void free_dataset(sn_dataset *ds) {
  free(ds->x);
  free(ds->y);
  free(ds->t);
  ds->t = NULL;
}

/* Adds float targets t[i] = rec_target(i, k), k < T, to a recorder data set. */
static void rec_add_targets(sn_dataset *ds, int64_t T) {
  ds->t = malloc((size_t)(ds->n * T) * sizeof(float));
  CHECK(ds->t, "out of memory");
  ds->target_elems = T;
  for (int64_t r = 0; r < ds->n; r++)
    for (int64_t k = 0; k < T; k++)
      ds->t[r * T + k] = (float)rec_target((int64_t)ds->x[r * REC_D], k);
}

/* Collects every epoch record given to on_epoch. */
typedef struct {
  int n;
  sn_epoch_record rec[16];
} epoch_log;

static void log_epoch(const sn_epoch_record *rec, void *ctx) {
  epoch_log *log = ctx;
  CHECK(log->n < 16, "too many epochs");
  log->rec[log->n++] = *rec;
}

static sn_train_opts quiet_opts(int epochs, int64_t batch_size, bool shuffle, uint64_t seed,
                                epoch_log *log) {
  return (sn_train_opts){
      .epochs = epochs,
      .batch_size = batch_size,
      .shuffle = shuffle,
      .seed = seed,
      .learning_rate = 0.01,
      .quiet = true,
      .on_epoch = log ? log_epoch : NULL,
      .on_epoch_ctx = log,
  };
}

/* ---------------------------------------------------------------------------
 * Tests with the recorder */

/* Every sample once per epoch, partial last batch, step counter, lr, seed, and the
 * epoch loss as the mean of the batch means. */
static void test_epoch_coverage(sn_dtype_rt dtype) {
  enum { N = 10, BS = 4, EPOCHS = 3 };
  sn_model m = rec_model(dtype, BS);
  sn_dataset ds = rec_dataset(N, 0);
  rec_reset(&m);
  epoch_log log = {0};
  sn_train_opts o = quiet_opts(EPOCHS, BS, true, 1234, &log);
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) == 0, "sn_train: %s", err.msg);

  const int64_t expect_rows[] = {4, 4, 2};
  CHECK(R.calls == 3 * EPOCHS, "calls %lld", (long long)R.calls);
  CHECK(R.bad_rows == 0, "%lld rows did not match their sample", (long long)R.bad_rows);
  CHECK(log.n == EPOCHS, "on_epoch called %d times", log.n);
  for (int64_t c = 0; c < R.calls; c++) {
    CHECK(R.rows[c] == expect_rows[c % 3], "call %lld had %lld rows", (long long)c,
          (long long)R.rows[c]);
    CHECK(R.steps[c] == c + 1, "call %lld had step %lld", (long long)c, (long long)R.steps[c]);
    CHECK(R.lr[c] == 0.01 && R.seed[c] == 1234, "lr %g seed %llu", R.lr[c],
          (unsigned long long)R.seed[c]);
  }
  int64_t pos = 0;
  for (int e = 0; e < EPOCHS; e++) {
    int count[N] = {0};
    double batch_means = 0, m0 = 0, m1 = 0;
    for (int b = 0; b < 3; b++) {
      double sum = 0;
      for (int64_t r = 0; r < expect_rows[b]; r++, pos++) {
        int64_t i = R.seen[pos];
        CHECK(i >= 0 && i < N, "sample id %lld", (long long)i);
        count[i]++;
        sum += rec_loss_of(i);
        m0 += i % 3 == 0;
        m1 += i % 3 == 1;
      }
      batch_means += sum / (double)expect_rows[b];
    }
    for (int i = 0; i < N; i++)
      CHECK(count[i] == 1, "epoch %d saw sample %d %d times", e + 1, i, count[i]);
    const sn_epoch_record *rec = &log.rec[e];
    CHECK(rec->epoch == e + 1, "record epoch %d", rec->epoch);
    CHECK(close_to(rec->loss, batch_means / 3, 1e-12), "epoch %d loss %.17g, expected %.17g", e + 1,
          rec->loss, batch_means / 3);
    CHECK(close_to(rec->metrics[0], m0 / N, 1e-12) && close_to(rec->metrics[1], m1 / N, 1e-12),
          "epoch %d metrics %g %g", e + 1, rec->metrics[0], rec->metrics[1]);
    CHECK(rec->lr == 0.01 && !rec->has_val && !rec->has_test && rec->seconds >= 0,
          "epoch %d record", e + 1);
  }
  /* The epochs' orders differ (3 equal permutations of 10 would be a broken shuffle). */
  CHECK(memcmp(R.seen, R.seen + N, N * sizeof(int64_t)) != 0 ||
            memcmp(R.seen + N, R.seen + 2 * N, N * sizeof(int64_t)) != 0,
        "every epoch visited the samples in the same order");
  free_dataset(&ds);
  sn_model_free(&m);
}

/* The loader's hook for samples remade each epoch (text lm windows): sn_train calls
 * it once before each epoch's first batch, with the 1-based epoch; every sample of
 * epoch e is one the hook made for e (ids 100 e + k), with staging on the calling
 * thread and by the loader thread, shuffled and in order. */
static int hook_epochs[16], hook_calls;

static void hook_fill(const sn_dataset *ds, int epoch) {
  if (hook_calls < 16) hook_epochs[hook_calls] = epoch;
  hook_calls++;
  for (int64_t k = 0; k < ds->n; k++) { /* the recorder's sample 100 epoch + k */
    int64_t i = 100 * epoch + k;
    ds->x[k * REC_D + 0] = (float)i;
    ds->x[k * REC_D + 1] = (float)rec_loss_of(i);
    ds->x[k * REC_D + 2] = (float)(i % 3);
    ds->y[k] = (int32_t)(i % 3);
  }
}

static void test_epoch_hook(sn_dtype_rt dtype, bool shuffle, bool no_prefetch) {
  enum { N = 10, BS = 4, EPOCHS = 3 };
  sn_model m = rec_model(dtype, BS);
  sn_dataset ds = rec_dataset(N, 0);
  ds.epoch_fill = hook_fill;
  rec_reset(&m);
  hook_calls = 0;
  sn_train_opts o = quiet_opts(EPOCHS, BS, shuffle, 7, NULL);
  o.no_prefetch = no_prefetch;
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(hook_calls == EPOCHS && hook_epochs[0] == 1 && hook_epochs[1] == 2 && hook_epochs[2] == 3,
        "hook called %d times", hook_calls);
  CHECK(R.n_seen == N * EPOCHS && R.bad_rows == 0, "saw %lld samples, %lld bad",
        (long long)R.n_seen, (long long)R.bad_rows);
  for (int64_t p = 0; p < R.n_seen; p++) {
    int64_t e = 1 + p / N, i = R.seen[p];
    CHECK(i >= 100 * e && i < 100 * e + N, "epoch %lld saw sample %lld", (long long)e,
          (long long)i);
  }
  free_dataset(&ds);
  sn_model_free(&m);
}

/* Two labels per sample (a sequence output's per-position labels): every step,
 * training and evaluation, gets each row's own pair, (i % 3, (i + 1) % 3). */
static int64_t pair_rows, pair_bad;

static void pair_step(const sn_step_args *a) {
  for (int64_t r = 0; r < a->rows; r++) {
    int64_t i = (int64_t)rec_x(a, r, 0);
    pair_bad += a->y[2 * r] != i % 3 || a->y[2 * r + 1] != (i + 1) % 3;
  }
  pair_rows += a->rows;
  *a->loss_sum = 0;
}

static void test_label_pairs(sn_dtype_rt dtype, bool no_prefetch) {
  enum { N = 11, BS = 4 };
  sn_model m = rec_model(dtype, BS);
  m.label_elems = 2;
  m.train_step = m.eval_step = pair_step;
  sn_dataset ds = rec_dataset(N, 0), held;
  int32_t *y = realloc(ds.y, 2 * N * sizeof(int32_t));
  CHECK(y != NULL, "out of memory");
  if (!y) return;
  ds.y = y;
  ds.label_elems = 2;
  for (int64_t i = 0; i < N; i++) {
    y[2 * i] = (int32_t)(i % 3);
    y[2 * i + 1] = (int32_t)((i + 1) % 3);
  }
  sn_error err = {{0}};
  CHECK(sn_dataset_split(&ds, 0.3, &held, &err) == 0, "split: %s", err.msg); /* 7 + 4 */
  rec_reset(&m);
  pair_rows = pair_bad = 0;
  sn_train_opts o = quiet_opts(2, BS, true, 5, NULL);
  o.no_prefetch = no_prefetch;
  CHECK(sn_train(&m, &ds, &held, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(pair_rows == 2 * (7 + 4) && pair_bad == 0, "%lld rows, %lld with another row's labels",
        (long long)pair_rows, (long long)pair_bad);
  ds.label_elems = 1; /* a set with one label per sample does not fit the model */
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0 &&
            strstr(err.msg, "1 labels per sample") != NULL,
        "label count mismatch: %s", err.msg);
  free_dataset(&held);
  free_dataset(&ds);
  sn_model_free(&m);
}

/* The visit order of `epochs` epochs, for a seed (shuffle on) or unshuffled. */
static void visit_order(int64_t *order, int64_t n, int epochs, bool shuffle, uint64_t seed) {
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(n, 0);
  rec_reset(&m);
  sn_train_opts o = quiet_opts(epochs, 4, shuffle, seed, NULL);
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(R.n_seen == n * epochs, "saw %lld samples", (long long)R.n_seen);
  memcpy(order, R.seen, (size_t)(n * epochs) * sizeof(int64_t));
  free_dataset(&ds);
  sn_model_free(&m);
}

static void test_shuffle_determinism(void) {
  enum { N = 50, E = 2 };
  int64_t a[N * E], b[N * E], c[N * E], d[N * E];
  visit_order(a, N, E, true, 7);
  visit_order(b, N, E, true, 7);
  visit_order(c, N, E, true, 8);
  visit_order(d, N, E, false, 7);
  CHECK(memcmp(a, b, sizeof a) == 0, "same seed gave different orders");
  CHECK(memcmp(a, c, sizeof a) != 0, "seeds 7 and 8 gave the same order");
  CHECK(memcmp(a, a + N, N * sizeof(int64_t)) != 0, "epochs 1 and 2 have the same order");
  for (int64_t i = 0; i < N * E; i++)
    CHECK(d[i] == i % N, "unshuffled order at %lld is %lld", (long long)i, (long long)d[i]);
}

/* sn_evaluate: eval_step in batches of batch_capacity, in order, loss and metrics
 * per sample. */
static void test_evaluate(sn_dtype_rt dtype) {
  enum { N = 11, CAP = 4 };
  sn_model m = rec_model(dtype, CAP);
  sn_dataset ds = rec_dataset(N, 100);
  rec_reset(&m);
  sn_eval_result r;
  sn_error err = {{0}};
  CHECK(sn_evaluate(&m, &ds, &r, &err) == 0, "sn_evaluate: %s", err.msg);
  CHECK(R.eval_calls == 3 && R.eval_rows[0] == 4 && R.eval_rows[1] == 4 && R.eval_rows[2] == 3,
        "eval batches: %lld calls", (long long)R.eval_calls);
  CHECK(R.bad_rows == 0, "%lld rows did not match their sample", (long long)R.bad_rows);
  double loss = 0, m0 = 0, m1 = 0;
  for (int64_t k = 0; k < N; k++) {
    CHECK(R.eval_seen[k] == 100 + k, "eval row %lld was sample %lld", (long long)k,
          (long long)R.eval_seen[k]);
    loss += rec_loss_of(100 + k);
    m0 += (100 + k) % 3 == 0;
    m1 += (100 + k) % 3 == 1;
  }
  CHECK(r.samples == N, "samples %lld", (long long)r.samples);
  CHECK(close_to(r.loss, loss / N, 1e-12), "loss %.17g, expected %.17g", r.loss, loss / N);
  CHECK(close_to(r.metrics[0], m0 / N, 1e-12) && close_to(r.metrics[1], m1 / N, 1e-12),
        "metrics %g %g", r.metrics[0], r.metrics[1]);

  /* A data set of the wrong width is refused. */
  sn_dataset wide = ds;
  wide.sample_elems = REC_D + 1;
  CHECK(sn_evaluate(&m, &wide, &r, &err) != 0 && strstr(err.msg, "elements per sample"),
        "wrong width accepted: %s", err.msg);
  free_dataset(&ds);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * metrics.jsonl: a minimal parser for one flat object of numbers and nulls */

static void check_csv_matches_jsonl(const char *csv_path, char jsonl[16][1024], int n,
                                    const char *const *keys, int nkeys);
static void check_svg(const char *path, bool val, bool test);

typedef struct {
  int n;
  char key[32][48];
  double val[32];
  int is_null[32];
} json_obj;

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/* Returns 0 when `line` is exactly one object {"k": number|null, ...} and a newline. */
static int parse_line(const char *line, json_obj *o) {
  memset(o, 0, sizeof *o);
  const char *p = skip_ws(line);
  if (*p++ != '{') return -1;
  for (;;) {
    p = skip_ws(p);
    if (*p++ != '"' || o->n == 32) return -1;
    const char *end = strchr(p, '"');
    if (!end || end - p >= 48) return -1;
    memcpy(o->key[o->n], p, (size_t)(end - p));
    p = skip_ws(end + 1);
    if (*p++ != ':') return -1;
    p = skip_ws(p);
    if (strncmp(p, "null", 4) == 0) {
      o->is_null[o->n] = 1;
      p += 4;
    } else {
      char *num_end;
      o->val[o->n] = strtod(p, &num_end);
      if (num_end == p) return -1;
      p = num_end;
    }
    o->n++;
    p = skip_ws(p);
    if (*p == '}') break;
    if (*p++ != ',') return -1;
  }
  return strcmp(p, "}\n") == 0 ? 0 : -1;
}

static int find_key(const json_obj *o, const char *key) {
  for (int i = 0; i < o->n; i++)
    if (strcmp(o->key[i], key) == 0) return i;
  return -1;
}

/* Reads path into lines (at most 16); returns the line count. */
static int read_lines(const char *path, char lines[16][1024]) {
  FILE *f = fopen(path, "r");
  CHECK(f, "cannot open %s", path);
  int n = 0;
  while (n < 16 && fgets(lines[n], 1024, f)) n++;
  fclose(f);
  return n;
}

static void test_metrics_jsonl(const char *dir) {
  enum { N = 10, BS = 4, EPOCHS = 3 };
  char path[512];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  sn_model m = rec_model(SN_RT_F32, 8);
  sn_dataset train = rec_dataset(N, 0), val = rec_dataset(5, 200), test = rec_dataset(7, 300);
  rec_reset(&m);
  epoch_log log = {0};
  sn_train_opts o = quiet_opts(EPOCHS, BS, true, 99, &log);
  char csv_path[512], svg_path[512];
  snprintf(csv_path, sizeof csv_path, "%s/metrics.csv", dir);
  snprintf(svg_path, sizeof svg_path, "%s/curves.svg", dir);
  o.metrics_path = path;
  o.csv_path = csv_path;
  o.curves_path = svg_path;
  o.title = "recorder <&> run";
  o.quiet = false; /* exercise the summary line and the progress line once */
  o.progress = true;
  sn_error err = {{0}};
  CHECK(sn_train(&m, &train, &val, &test, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(R.eval_calls == 2 * EPOCHS && R.eval_rows[0] == 5 && R.eval_rows[1] == 7, "eval calls %lld",
        (long long)R.eval_calls);

  static const char *const keys[] = {"epoch",
                                     "loss",
                                     "accuracy",
                                     "ones",
                                     "val_loss",
                                     "val_accuracy",
                                     "val_ones",
                                     "test_loss",
                                     "test_accuracy",
                                     "test_ones",
                                     "lr",
                                     "seconds",
                                     "eval_seconds",
                                     "samples_per_second",
                                     "data_wait_seconds"};
  const int nkeys = (int)(sizeof keys / sizeof keys[0]);
  char lines[16][1024];
  int n = read_lines(path, lines);
  CHECK(n == EPOCHS, "metrics.jsonl has %d lines", n);
  double val_loss = 0, test_loss = 0;
  for (int k = 0; k < 5; k++) val_loss += rec_loss_of(200 + k);
  for (int k = 0; k < 7; k++) test_loss += rec_loss_of(300 + k);
  for (int e = 0; e < EPOCHS; e++) {
    json_obj obj;
    CHECK(parse_line(lines[e], &obj) == 0, "line %d is not a flat JSON object: %s", e + 1,
          lines[e]);
    CHECK(obj.n == nkeys, "line %d has %d keys: %s", e + 1, obj.n, lines[e]);
    for (int k = 0; k < nkeys; k++)
      CHECK(strcmp(obj.key[k], keys[k]) == 0 && !obj.is_null[k], "line %d key %d is %s", e + 1, k,
            obj.key[k]);
    const sn_epoch_record *rec = &log.rec[e];
    /* Numbers round-trip exactly. */
    CHECK(obj.val[0] == e + 1, "epoch %g", obj.val[0]);
    CHECK(obj.val[1] == rec->loss, "loss %.17g vs %.17g", obj.val[1], rec->loss);
    CHECK(obj.val[2] == rec->metrics[0] && obj.val[3] == rec->metrics[1], "metrics");
    CHECK(obj.val[4] == rec->val.loss && close_to(rec->val.loss, val_loss / 5, 1e-12),
          "val_loss %.17g", obj.val[4]);
    CHECK(obj.val[7] == rec->test.loss && close_to(rec->test.loss, test_loss / 7, 1e-12),
          "test_loss %.17g", obj.val[7]);
    CHECK(obj.val[10] == 0.01, "lr %.17g", obj.val[10]);
    CHECK(obj.val[11] == rec->seconds && obj.val[12] == rec->eval_seconds &&
              obj.val[13] == rec->samples_per_second && obj.val[14] == rec->data_wait_seconds,
          "timings");
    CHECK(rec->data_wait_seconds >= 0 && rec->data_wait_seconds <= rec->seconds,
          "data wait %g of %g s", rec->data_wait_seconds, rec->seconds);
    CHECK(rec->has_val && rec->has_test && rec->val.samples == 5 && rec->test.samples == 7,
          "eval records");
  }

  check_csv_matches_jsonl(csv_path, lines, n, keys, nkeys);
  check_svg(svg_path, true, true);

  /* Non-finite numbers are written as null; a second run rewrites the file. */
  rec_reset(&m);
  R.eval_nan = 1;
  o = quiet_opts(1, BS, false, 99, NULL);
  o.metrics_path = path;
  CHECK(sn_train(&m, &train, NULL, &test, &o, &err) == 0, "sn_train: %s", err.msg);
  n = read_lines(path, lines);
  json_obj obj;
  CHECK(n == 1 && parse_line(lines[0], &obj) == 0, "rewritten metrics.jsonl: %s", lines[0]);
  int t = find_key(&obj, "test_loss");
  CHECK(t >= 0 && obj.is_null[t] && find_key(&obj, "val_loss") < 0, "%s", lines[0]);
  CHECK(!obj.is_null[find_key(&obj, "test_accuracy")], "%s", lines[0]);

  /* An unwritable path is an error before any training. */
  rec_reset(&m);
  snprintf(path, sizeof path, "%s/no/such/dir/metrics.jsonl", dir);
  o.metrics_path = path;
  CHECK(sn_train(&m, &train, NULL, NULL, &o, &err) != 0 && strstr(err.msg, path) && R.calls == 0,
        "unwritable metrics path: %s", err.msg);
  free_dataset(&train);
  free_dataset(&val);
  free_dataset(&test);
  sn_model_free(&m);
}

/* A non-finite loss stops training with a message naming epoch and step. */
static void test_nan_guard(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/nan.jsonl", dir);
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(10, 0);
  for (int inf = 0; inf <= 1; inf++) {
    rec_reset(&m);
    R.nan_at_step = 5; /* 3 batches per epoch: epoch 2, its second batch */
    R.inf_instead = inf;
    epoch_log log = {0};
    sn_train_opts o = quiet_opts(4, 4, true, 5, &log);
    o.metrics_path = path;
    sn_error err = {{0}};
    CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0, "a %s loss did not stop training",
          inf ? "inf" : "nan");
    const char *want = inf ? "loss is inf at epoch 2 step 5; try a lower learning_rate"
                           : "loss is nan at epoch 2 step 5; try a lower learning_rate";
    CHECK(strcmp(err.msg, want) == 0, "message: %s", err.msg);
    CHECK(R.calls == 5 && log.n == 1, "ran %lld steps, %d epochs", (long long)R.calls, log.n);
    char lines[16][1024];
    CHECK(read_lines(path, lines) == 1, "metrics.jsonl should hold the one finished epoch");
  }
  free_dataset(&ds);
  sn_model_free(&m);
}

static void test_bad_options(void) {
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(10, 0);
  rec_reset(&m);
  sn_error err = {{0}};
  sn_train_opts o = quiet_opts(1, 5, true, 1, NULL);
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0 && strstr(err.msg, "batch_size is 5"),
        "batch_size over capacity: %s", err.msg);
  o.batch_size = 0;
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0, "batch_size 0 accepted");
  o = quiet_opts(0, 4, true, 1, NULL);
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) == 0 && R.calls == 0, "0 epochs: %s", err.msg);
  sn_dataset empty = ds;
  empty.n = 0;
  o = quiet_opts(1, 4, true, 1, NULL);
  CHECK(sn_train(&m, &empty, NULL, NULL, &o, &err) != 0 && strstr(err.msg, "empty"),
        "empty training set: %s", err.msg);
  CHECK(R.calls == 0, "bad options still ran steps");
  free_dataset(&ds);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * A real model: linear softmax classifier, logits (N,K) = x (N,D) W^T (K,D) + b (K),
 * mean cross-entropy, SGD. Parameters: W at 0, b at K*D. f32. */

enum { SM_D = 2, SM_K = 3 };

/* Per-sample loss and argmax; adds dloss/dlogits / rows into grads when grads. */
static double sm_sample(const float *w, const float *x, int32_t y, float *grads, double scale,
                        int *argmax) {
  double z[SM_K], zmax = -INFINITY, sum = 0;
  *argmax = 0;
  for (int k = 0; k < SM_K; k++) {
    z[k] = w[SM_K * SM_D + k];
    for (int d = 0; d < SM_D; d++) z[k] += (double)w[k * SM_D + d] * x[d];
    if (z[k] > zmax) {
      zmax = z[k];
      *argmax = k;
    }
  }
  for (int k = 0; k < SM_K; k++) sum += exp(z[k] - zmax);
  double loss = log(sum) - (z[y] - zmax);
  if (grads) {
    for (int k = 0; k < SM_K; k++) {
      double g = (exp(z[k] - zmax) / sum - (k == y)) * scale;
      for (int d = 0; d < SM_D; d++) grads[k * SM_D + d] += (float)(g * x[d]);
      grads[SM_K * SM_D + k] += (float)g;
    }
  }
  return loss;
}

static void sm_forward(const sn_step_args *a, float *grads) {
  const float *w = a->params, *x = a->x;
  double loss = 0, correct = 0;
  if (grads) memset(grads, 0, (SM_K * SM_D + SM_K) * sizeof(float));
  for (int64_t r = 0; r < a->rows; r++) {
    int am;
    loss += sm_sample(w, x + r * SM_D, a->y[r], grads, 1.0 / (double)a->rows, &am);
    correct += am == a->y[r];
  }
  *a->loss_sum = loss;
  a->metric_sums[0] = correct;
}

static void sm_grad_step(const sn_step_args *a) { sm_forward(a, a->grads); }
static void sm_eval_step(const sn_step_args *a) { sm_forward(a, NULL); }
static void sm_update(const sn_step_args *a) {
  float *w = a->params;
  const float *g = a->grads;
  for (int i = 0; i < SM_K * SM_D + SM_K; i++) w[i] -= (float)(a->lr * g[i]);
}

/* Three separable blobs around (0,2), (2,-1), (-2,-1). */
static sn_dataset blobs(int64_t n, uint64_t seed) {
  static const float centre[SM_K][SM_D] = {{0, 2}, {2, -1}, {-2, -1}};
  sn_dataset ds = {.n = n, .rank = 1, .shape = {SM_D}, .sample_elems = SM_D, .classes = SM_K};
  ds.x = malloc((size_t)n * SM_D * sizeof(float));
  ds.y = malloc((size_t)n * sizeof(int32_t));
  CHECK(ds.x && ds.y, "out of memory");
  uint64_t s = seed;
  for (int64_t i = 0; i < n; i++) {
    int32_t c = (int32_t)(i % SM_K);
    ds.y[i] = c;
    for (int d = 0; d < SM_D; d++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      ds.x[i * SM_D + d] = centre[c][d] + 0.6f * ((float)(s >> 40) / (float)(1 << 24) - 0.5f);
    }
  }
  return ds;
}

static void test_softmax_learns(void) {
  static const char *const names[] = {"accuracy"};
  static const sn_param_info info[] = {
      {.name = "dense.weight",
       .rank = 2,
       .shape = {SM_K, SM_D},
       .offset = 0,
       .count = SM_K * SM_D,
       .init = SN_INIT_ZEROS,
       .fan_in = SM_D,
       .fan_out = SM_K},
      {.name = "dense.bias",
       .rank = 1,
       .shape = {SM_K},
       .offset = SM_K * SM_D,
       .count = SM_K,
       .init = SN_INIT_ZEROS},
  };
  sn_model m = {
      .dtype = SN_RT_F32,
      .batch_capacity = 16,
      .input_elems = SM_D,
      .output_elems = SM_K,
      .param_count = SM_K * SM_D + SM_K,
      .opt_state_count = 1,
      .arena_bytes = 64,
      .n_params = 2,
      .params_info = info,
      .n_metrics = 1,
      .metric_names = names,
      .grad_step = sm_grad_step,
      .update = sm_update,
      .eval_step = sm_eval_step,
  };
  sn_error err = {{0}};
  CHECK(sn_model_alloc(&m, &err) == 0, "sn_model_alloc: %s", err.msg);
  memset(m.params, 0, (size_t)m.param_count * sizeof(float));
  sn_dataset train = blobs(300, 1), test = blobs(90, 2);
  epoch_log log = {0};
  sn_train_opts o = quiet_opts(8, 16, true, 3, &log);
  o.learning_rate = 0.5;
  CHECK(sn_train(&m, &train, NULL, &test, &o, &err) == 0, "sn_train: %s", err.msg);
  const sn_epoch_record *first = &log.rec[0], *last = &log.rec[log.n - 1];
  CHECK(last->loss < 0.5 * first->loss, "loss went from %g to %g", first->loss, last->loss);
  CHECK(last->metrics[0] > 0.95 && last->test.metrics[0] > 0.95, "accuracy %g, test accuracy %g",
        last->metrics[0], last->test.metrics[0]);

  /* sn_evaluate against a direct computation over the whole test set. */
  sn_eval_result r;
  CHECK(sn_evaluate(&m, &test, &r, &err) == 0, "sn_evaluate: %s", err.msg);
  double loss = 0, correct = 0;
  for (int64_t i = 0; i < test.n; i++) {
    int am;
    loss += sm_sample(m.params, test.x + i * SM_D, test.y[i], NULL, 0, &am);
    correct += am == test.y[i];
  }
  CHECK(close_to(r.loss, loss / (double)test.n, 1e-12), "evaluate loss %.17g, direct %.17g", r.loss,
        loss / (double)test.n);
  CHECK(r.metrics[0] == correct / (double)test.n, "evaluate accuracy %g, direct %g", r.metrics[0],
        correct / (double)test.n);
  CHECK(r.loss == last->test.loss, "sn_evaluate and the last epoch's test loss differ");
  free_dataset(&train);
  free_dataset(&test);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * metrics.csv and curves.svg */

/* The header row is the JSON keys in order; every cell reads back as the JSON number. */
static void check_csv_matches_jsonl(const char *csv_path, char jsonl[16][1024], int n,
                                    const char *const *keys, int nkeys) {
  char lines[16][1024];
  int rows = read_lines(csv_path, lines);
  CHECK(rows == n + 1, "metrics.csv has %d lines for %d epochs", rows, n);
  char *save, *cell = strtok_r(lines[0], ",\n", &save);
  for (int k = 0; k < nkeys; k++, cell = strtok_r(NULL, ",\n", &save))
    CHECK(cell && !strcmp(cell, keys[k]), "csv column %d is %s, want %s", k, cell ? cell : "-",
          keys[k]);
  CHECK(cell == NULL, "csv has more columns than metrics.jsonl");
  for (int e = 0; e < n; e++) {
    json_obj obj;
    CHECK(parse_line(jsonl[e], &obj) == 0, "jsonl line %d", e + 1);
    char *p = lines[e + 1];
    for (int k = 0; k < nkeys; k++) {
      char *end;
      double v = strtod(p, &end);
      CHECK(end != p && v == obj.val[k], "epoch %d %s: csv %.*s, jsonl %.17g", e + 1, keys[k],
            (int)(end - p), p, obj.val[k]);
      p = end;
      CHECK(*p == (k + 1 < nkeys ? ',' : '\n'), "epoch %d: separator after %s", e + 1, keys[k]);
      p++;
    }
  }
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  CHECK(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  CHECK(b && fread(b, 1, (size_t)n, f) == (size_t)n, "cannot read %s", path);
  b[n] = 0;
  fclose(f);
  return b;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* Shape checks in C; tests/test_outputs.sh also parses a real one as XML. */
static void check_svg(const char *path, bool val, bool test) {
  char *svg = read_all(path);
  CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") &&
            !strcmp(svg + strlen(svg) - 7, "</svg>\n"),
        "%s is not an SVG document", path);
  CHECK(count_of(svg, "<svg") == 1 && count_of(svg, "<g") == count_of(svg, "</g>"),
        "unbalanced groups in %s", path);
  /* panels: loss + 2 metrics; a series per set in each */
  CHECK(count_of(svg, "class=\"panel\"") == 3, "panels: %d", count_of(svg, "class=\"panel\""));
  CHECK(count_of(svg, "data-series=\"train\"") == 3, "train series");
  CHECK(count_of(svg, "data-series=\"validation\"") == (val ? 3 : 0), "validation series");
  CHECK(count_of(svg, "data-series=\"test\"") == (test ? 3 : 0), "test series");
  CHECK(strstr(svg, "recorder &lt;&amp;&gt; run") != NULL, "title not escaped");
  CHECK(strstr(svg, ">epoch</text>") && strstr(svg, ">accuracy</text>"), "axis labels");
  free(svg);
}

/* ---------------------------------------------------------------------------
 * Prefetching: the background thread stages exactly the batches of the calling
 * thread, in the same order, for training and evaluation, f32 and f64, with and
 * without float targets. */

typedef struct visit {
  int64_t calls, rows[REC_MAX_CALLS], seen[REC_MAX_SEEN], n_seen;
  int64_t eval_calls, eval_seen[REC_MAX_SEEN];
  double loss[8];
} visit;

static void run_visit(sn_dtype_rt dtype, bool prefetch, bool shuffle, int64_t T, visit *v) {
  enum { N = 37, BS = 5, CAP = 8, EPOCHS = 3 };
  sn_model m = rec_model(dtype, CAP);
  m.target_elems = T;
  sn_dataset train = rec_dataset(N, 0), val = rec_dataset(11, 500);
  if (T) {
    rec_add_targets(&train, T);
    rec_add_targets(&val, T);
  }
  rec_reset(&m);
  R.target_elems = T;
  epoch_log log = {0};
  sn_train_opts o = quiet_opts(EPOCHS, BS, shuffle, 21, &log);
  o.no_prefetch = !prefetch;
  sn_error err = {{0}};
  CHECK(sn_train(&m, &train, &val, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(R.bad_rows == 0 && R.bad_targets == 0, "bad rows %lld, bad targets %lld",
        (long long)R.bad_rows, (long long)R.bad_targets);
  memset(v, 0, sizeof *v);
  v->calls = R.calls;
  memcpy(v->rows, R.rows, sizeof v->rows);
  memcpy(v->seen, R.seen, sizeof v->seen);
  v->n_seen = R.n_seen;
  v->eval_calls = R.eval_calls;
  memcpy(v->eval_seen, R.eval_seen, sizeof v->eval_seen);
  for (int e = 0; e < log.n; e++) v->loss[e] = log.rec[e].loss;
  free_dataset(&train);
  free_dataset(&val);
  sn_model_free(&m);
}

static void test_prefetch_identical(void) {
  for (int d = 0; d < 2; d++)
    for (int shuffle = 0; shuffle <= 1; shuffle++)
      for (int64_t T = 0; T <= 2; T += 2) {
        sn_dtype_rt dt = d ? SN_RT_F64 : SN_RT_F32;
        visit a, b;
        run_visit(dt, true, shuffle, T, &a);
        run_visit(dt, false, shuffle, T, &b);
        CHECK(a.calls == 3 * 8 && a.n_seen == 3 * 37, "prefetch: %lld calls", (long long)a.calls);
        CHECK(memcmp(&a, &b, sizeof a) == 0,
              "prefetched batches differ from staged ones (f%d, shuffle %d, T %lld)", d ? 64 : 32,
              shuffle, (long long)T);
      }
}

/* ---------------------------------------------------------------------------
 * Float targets: a model that reads them refuses a set without them. */

static void test_target_checks(void) {
  sn_model m = rec_model(SN_RT_F32, 4);
  m.target_elems = 2;
  sn_dataset ds = rec_dataset(6, 0);
  rec_reset(&m);
  sn_train_opts o = quiet_opts(1, 4, true, 1, NULL);
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0 &&
            !strcmp(err.msg, "training set (from test_train) has 0 float targets per sample, but "
                             "the model's loss reads 2"),
        "no targets: %s", err.msg);
  rec_add_targets(&ds, 1);
  sn_eval_result r;
  CHECK(sn_evaluate(&m, &ds, &r, &err) != 0 &&
            !strcmp(err.msg, "evaluation set (from test_train) has 1 float targets per sample, "
                             "but the model's loss reads 2"),
        "wrong width: %s", err.msg);
  m.target_elems = 0;
  free(ds.y);
  ds.y = NULL;
  CHECK(sn_evaluate(&m, &ds, &r, &err) != 0 &&
            !strcmp(err.msg, "evaluation set (from test_train) has no class labels, but the "
                             "model's loss reads them"),
        "no labels: %s", err.msg);
  CHECK(R.calls == 0 && R.eval_calls == 0, "steps ran on a bad set");
  free_dataset(&ds);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * Learning-rate schedules */

static void test_schedules(void) {
  sn_schedule c = {.kind = SN_SCHED_CONSTANT};
  CHECK(sn_schedule_lr(&c, 0.01, 1, 10, 5) == 0.01 && sn_schedule_lr(&c, 0.01, 50, 10, 5) == 0.01,
        "constant");
  /* step: gamma 0.5 every 2 epochs, 10 steps per epoch: epochs 1-2 at 1, 3-4 at 0.5, 5 at 0.25 */
  sn_schedule st = {.kind = SN_SCHED_STEP, .every = 2, .gamma = 0.5};
  const struct {
    int64_t step;
    double lr;
  } steps[] = {{1, 1.0}, {20, 1.0}, {21, 0.5}, {40, 0.5}, {41, 0.25}, {50, 0.25}};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
    CHECK(sn_schedule_lr(&st, 1.0, steps[i].step, 10, 5) == steps[i].lr, "step: step %lld lr %g",
          (long long)steps[i].step, sn_schedule_lr(&st, 1.0, steps[i].step, 10, 5));
  /* exponential, gamma 0.9: epoch e (0-based) at 0.9^e */
  sn_schedule ex = {.kind = SN_SCHED_EXPONENTIAL, .gamma = 0.9};
  CHECK(sn_schedule_lr(&ex, 2.0, 10, 10, 5) == 2.0 &&
            close_to(sn_schedule_lr(&ex, 2.0, 11, 10, 5), 1.8, 1e-15) &&
            close_to(sn_schedule_lr(&ex, 2.0, 25, 10, 5), 1.62, 1e-15),
        "exponential");
  /* cosine, 1 warmup epoch, 4 steps per epoch, 3 epochs: N = 12, W = 4.
   * warmup 1/4, 2/4, 3/4, 1; then (1 + cos(pi (s - 5) / 8)) / 2 for s = 5..12:
   * s = 5: 1; s = 6: (1 + cos(pi/8)) / 2 = 0.96193976625564337;
   * s = 12: (1 + cos(7 pi / 8)) / 2 = 0.038060233744356624 */
  sn_schedule co = {.kind = SN_SCHED_COSINE, .warmup_epochs = 1};
  const double want[13] = {0,
                           0.25,
                           0.5,
                           0.75,
                           1.0,
                           1.0,
                           0.96193976625564337,
                           0.85355339059327373,
                           0.69134171618254492,
                           0.5,
                           0.30865828381745508,
                           0.14644660940672627,
                           0.038060233744356624};
  for (int s = 1; s <= 12; s++)
    CHECK(close_to(sn_schedule_lr(&co, 1.0, s, 4, 3), want[s], 1e-15),
          "cosine step %d: %.17g, want %.17g", s, sn_schedule_lr(&co, 1.0, s, 4, 3), want[s]);
  sn_schedule half = {.kind = SN_SCHED_COSINE, .warmup_epochs = 0.5}; /* W = 2 steps */
  CHECK(sn_schedule_lr(&half, 1.0, 1, 4, 3) == 0.5 && sn_schedule_lr(&half, 1.0, 3, 4, 3) == 1.0,
        "fractional warmup");
  sn_schedule none = {.kind = SN_SCHED_COSINE}; /* no warmup: the first step at the peak */
  CHECK(sn_schedule_lr(&none, 1.0, 1, 4, 3) == 1.0, "cosine without warmup");

  /* the loop passes them per step, and records the last step's rate per epoch */
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(16, 0); /* 4 batches of 4 per epoch */
  rec_reset(&m);
  epoch_log log = {0};
  sn_train_opts o = quiet_opts(3, 4, true, 1, &log);
  o.learning_rate = 1.0;
  o.schedule = co;
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  CHECK(R.calls == 12, "calls %lld", (long long)R.calls);
  for (int s = 1; s <= 12; s++)
    CHECK(R.lr[s - 1] == sn_schedule_lr(&co, 1.0, s, 4, 3), "step %d got lr %g", s, R.lr[s - 1]);
  CHECK(log.n == 3 && close_to(log.rec[0].lr, want[4], 1e-15) &&
            close_to(log.rec[1].lr, want[8], 1e-15) && close_to(log.rec[2].lr, want[12], 1e-15),
        "epoch lr %g %g %g", log.rec[0].lr, log.rec[1].lr, log.rec[2].lr);
  o.schedule = (sn_schedule){.kind = SN_SCHED_STEP, .every = 0, .gamma = 0.5};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0 &&
            !strcmp(err.msg, "schedule every is 0; it must be >= 1"),
        "every 0: %s", err.msg);
  free_dataset(&ds);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * Early stopping with the scripted model: one batch per epoch; train_step adds 1
 * to the weight (so after epoch e it is e) and sets the state to 10 * weight;
 * eval_step reports the script's loss and accuracy for epoch `weight`. */

static const double *script_loss, *script_acc;

static void sc_train_step(const sn_step_args *a) {
  float *w = a->params, *st = a->state;
  w[0] += 1;
  st[0] = 10 * w[0];
  *a->loss_sum = (double)a->rows;
  a->metric_sums[0] = 0;
}

static void sc_eval_step(const sn_step_args *a) {
  int e = (int)((const float *)a->params)[0];
  *a->loss_sum = script_loss[e] * (double)a->rows;
  a->metric_sums[0] = script_acc[e] * (double)a->rows;
}

static sn_train_result run_scripted(const double *loss, const double *acc, const char *monitor,
                                    int patience, double min_delta, bool restore, float *w,
                                    float *state, int *epochs_logged) {
  static const char *const names[] = {"accuracy"};
  static const sn_param_info info[] = {
      {.name = "w", .rank = 1, .shape = {1}, .offset = 0, .count = 1, .init = SN_INIT_ZEROS},
      {.name = "s",
       .rank = 1,
       .shape = {1},
       .offset = 0,
       .count = 1,
       .init = SN_INIT_ZEROS,
       .buffer = 1},
  };
  sn_model m = {.dtype = SN_RT_F32,
                .batch_capacity = 4,
                .input_elems = REC_D,
                .output_elems = 3,
                .param_count = 1,
                .opt_state_count = 1,
                .arena_bytes = 64,
                .n_params = 2,
                .params_info = info,
                .n_metrics = 1,
                .metric_names = names,
                .train_step = sc_train_step,
                .eval_step = sc_eval_step,
                .state_count = 1};
  sn_error err = {{0}};
  CHECK(sn_model_alloc(&m, &err) == 0, "sn_model_alloc: %s", err.msg);
  sn_model_init_params(&m, 1);
  script_loss = loss;
  script_acc = acc;
  sn_dataset train = rec_dataset(4, 0), val = rec_dataset(3, 100);
  epoch_log log = {0};
  sn_train_result res;
  sn_train_opts o = quiet_opts(10, 4, false, 1, &log);
  o.early = (sn_early_stopping){
      .enabled = true, .patience = patience, .min_delta = min_delta, .restore_best = restore};
  snprintf(o.early.monitor, sizeof o.early.monitor, "%s", monitor);
  o.result = &res;
  CHECK(sn_train(&m, &train, &val, NULL, &o, &err) == 0, "sn_train: %s", err.msg);
  *w = ((float *)m.params)[0];
  *state = ((float *)m.state)[0];
  *epochs_logged = log.n;
  free_dataset(&train);
  free_dataset(&val);
  sn_model_free(&m);
  return res;
}

static void test_early_stopping(void) {
  /* index = epoch (1-based); index 0 unused */
  const double loss_a[] = {9, 1.0, 0.8, 0.6, 0.65, 0.61, 0.7, 0.9, 0.5, 0.4, 0.3};
  const double loss_b[] = {9, 1.0, 0.9, 0.88, 0.87, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05};
  const double acc_c[] = {0, 0.5, 0.7, 0.69, 0.71, 0.6, 0.6, 0.6, 0.9, 0.9, 0.9};
  const double flat[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  float w, st;
  int n;
  /* best 0.6 at epoch 3; 0.65 and 0.61 do not improve; patience 2: stop after 5 */
  sn_train_result r = run_scripted(loss_a, flat, "val_loss", 2, 0, true, &w, &st, &n);
  CHECK(r.epochs_run == 5 && n == 5 && r.stopped_early && r.best_epoch == 3 &&
            r.best_value == 0.6 && r.restored,
        "A: ran %d, best %d (%g), stopped %d restored %d", r.epochs_run, r.best_epoch, r.best_value,
        r.stopped_early, r.restored);
  CHECK(w == 3 && st == 30, "A: restored weight %g state %g, want 3 and 30", w, st);
  /* without restore_best the last weights stay */
  r = run_scripted(loss_a, flat, "val_loss", 2, 0, false, &w, &st, &n);
  CHECK(r.epochs_run == 5 && !r.restored && w == 5 && st == 50, "A without restore: %g %g", w, st);
  /* min_delta 0.05: 0.88 and 0.87 are no improvement on 0.9; stop after 4, best 2 */
  r = run_scripted(loss_b, flat, "val_loss", 2, 0.05, true, &w, &st, &n);
  CHECK(r.epochs_run == 4 && r.best_epoch == 2 && w == 2 && st == 20, "B: ran %d best %d w %g",
        r.epochs_run, r.best_epoch, w);
  /* without min_delta the same script improves every epoch: all 10 run, nothing to restore */
  r = run_scripted(loss_b, flat, "val_loss", 2, 0, true, &w, &st, &n);
  CHECK(r.epochs_run == 10 && !r.stopped_early && r.best_epoch == 10 && !r.restored && w == 10,
        "B without min_delta: ran %d best %d", r.epochs_run, r.best_epoch);
  /* accuracy goes up: best 0.71 at 4; 5, 6, 7 do not improve; patience 3: stop after 7 */
  r = run_scripted(flat, acc_c, "val_accuracy", 3, 0, true, &w, &st, &n);
  CHECK(r.epochs_run == 7 && r.best_epoch == 4 && r.best_value == 0.71 && w == 4 && st == 40,
        "C: ran %d best %d w %g", r.epochs_run, r.best_epoch, w);
  /* patience 0: the first epoch without improvement stops */
  r = run_scripted(loss_a, flat, "val_loss", 0, 0, true, &w, &st, &n);
  CHECK(r.epochs_run == 4 && r.best_epoch == 3 && w == 3, "patience 0: ran %d", r.epochs_run);

  /* a monitor that does not exist, or a set that is missing */
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(8, 0);
  rec_reset(&m);
  sn_train_opts o = quiet_opts(2, 4, true, 1, NULL);
  o.early = (sn_early_stopping){.enabled = true, .monitor = "val_loss", .patience = 1};
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, &o, &err) != 0 &&
            !strcmp(err.msg, "early_stopping monitors 'val_loss' but there is no validation set; "
                             "hint: add data.validation: {split: 0.1}, or monitor loss"),
        "no validation: %s", err.msg);
  snprintf(o.early.monitor, sizeof o.early.monitor, "val_acc");
  CHECK(sn_train(&m, &ds, &ds, NULL, &o, &err) != 0 &&
            !strcmp(err.msg, "early_stopping monitors 'val_acc', which training does not report "
                             "(known: loss, val_loss, accuracy, val_accuracy, ones, val_ones)"),
        "unknown monitor: %s", err.msg);
  CHECK(R.calls == 0, "steps ran before the monitor was checked");
  free_dataset(&ds);
  sn_model_free(&m);
}

/* State buffers (params_info entries with buffer 1) live in m.state, are initialized
 * there, and travel through checkpoints with the weights. */
static void test_state_checkpoint(const char *dir) {
  static const sn_param_info info[] = {
      {.name = "bn.weight", .rank = 1, .shape = {2}, .offset = 0, .count = 2, .init = SN_INIT_ONES},
      {.name = "bn.running_mean",
       .rank = 1,
       .shape = {2},
       .offset = 0,
       .count = 2,
       .init = SN_INIT_ZEROS,
       .buffer = 1},
      {.name = "bn.running_var",
       .rank = 1,
       .shape = {2},
       .offset = 2,
       .count = 2,
       .init = SN_INIT_ONES,
       .buffer = 1},
  };
  sn_model m = {.dtype = SN_RT_F32,
                .batch_capacity = 4,
                .input_elems = 2,
                .output_elems = 2,
                .param_count = 2,
                .opt_state_count = 4,
                .arena_bytes = 64,
                .n_params = 3,
                .params_info = info,
                .state_count = 4};
  sn_error err = {{0}};
  CHECK(sn_model_alloc(&m, &err) == 0 && m.state, "sn_model_alloc: %s", err.msg);
  sn_model_init_params(&m, 1);
  float *p = m.params, *st = m.state;
  CHECK(p[0] == 1 && p[1] == 1 && st[0] == 0 && st[1] == 0 && st[2] == 1 && st[3] == 1,
        "init: params %g %g state %g %g %g %g", p[0], p[1], st[0], st[1], st[2], st[3]);
  for (int i = 0; i < 4; i++) st[i] = 0.5f + (float)i;
  char path[512];
  snprintf(path, sizeof path, "%s/state.safetensors", dir);
  CHECK(sn_safetensors_write(path, &m, &err) == 0, "write: %s", err.msg);
  memset(st, 0, 4 * sizeof(float));
  p[0] = 7;
  CHECK(sn_safetensors_read(path, &m, &err) == 0, "read: %s", err.msg);
  CHECK(p[0] == 1 && st[0] == 0.5f && st[1] == 1.5f && st[2] == 2.5f && st[3] == 3.5f,
        "read back: param %g state %g %g %g %g", p[0], st[0], st[1], st[2], st[3]);
  unlink(path);
  sn_model_free(&m);
  /* a state entry outside the state buffer is refused */
  sn_model bad = m;
  bad.state_count = 3;
  CHECK(sn_model_alloc(&bad, &err) != 0 &&
            !strcmp(err.msg, "parameter 'bn.running_var': elements [2, 4) lie outside the 3 state "
                             "values"),
        "state bounds: %s", err.msg);
}

/* ---------------------------------------------------------------------------
 * sn_predict_all: out (n, 2) = (x0, 2 x1) through a predict function, in batches */

static void pr_predict(const sn_step_args *a) {
  for (int64_t r = 0; r < a->rows; r++) {
    double x0 = rec_x(a, r, 0), x1 = rec_x(a, r, 1);
    if (R.dtype == SN_RT_F64) {
      ((double *)a->out)[2 * r] = x0;
      ((double *)a->out)[2 * r + 1] = 2 * x1;
    } else {
      ((float *)a->out)[2 * r] = (float)x0;
      ((float *)a->out)[2 * r + 1] = (float)(2 * x1);
    }
  }
}

static void test_predict_all(sn_dtype_rt dtype) {
  sn_model m = rec_model(dtype, 4);
  m.output_elems = 2;
  m.predict = pr_predict;
  sn_dataset ds = rec_dataset(10, 0);
  free(ds.y);
  ds.y = NULL; /* predict needs no labels */
  rec_reset(&m);
  double out[20];
  sn_error err = {{0}};
  CHECK(sn_predict_all(&m, &ds, out, &err) == 0, "sn_predict_all: %s", err.msg);
  for (int i = 0; i < 10; i++)
    CHECK(out[2 * i] == i && out[2 * i + 1] == 2 * (double)(float)rec_loss_of(i), "row %d: %g %g",
          i, out[2 * i], out[2 * i + 1]);
  m.predict = NULL;
  CHECK(sn_predict_all(&m, &ds, out, &err) != 0 &&
            !strcmp(err.msg, "model has no predict function"),
        "no predict: %s", err.msg);
  free_dataset(&ds);
  sn_model_free(&m);
}

/* ---------------------------------------------------------------------------
 * Data parallelism with a fake comm: ranks are threads, collectives meet at a
 * barrier. A reduction reads every rank's buffer in rank order (so every rank gets
 * bit-identical results, as MPI gives), into a private copy first (the buffers are
 * reduced in place). */

enum { FW_MAX = 4 };

typedef struct fake_world {
  int size;
  pthread_barrier_t bar;
  const void *slot[FW_MAX];
  long collectives[FW_MAX]; /* per rank: to check every rank made the same calls */
} fake_world;

typedef struct fake_rank {
  fake_world *w;
  int rank;
} fake_rank;

static int fw_reduce(void *ctx, void *buf, int64_t n, int kind) { /* 0 sum f32, 1 sum f64, 2 max */
  fake_rank *fr = ctx;
  fake_world *w = fr->w;
  w->collectives[fr->rank]++;
  w->slot[fr->rank] = buf;
  pthread_barrier_wait(&w->bar);
  size_t es = kind == 0 ? sizeof(float) : sizeof(double);
  void *acc = malloc((size_t)n * es + 1);
  CHECK(acc, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    double v = kind == 0 ? ((const float *)w->slot[0])[i] : ((const double *)w->slot[0])[i];
    float vf = kind == 0 ? ((const float *)w->slot[0])[i] : 0;
    for (int r = 1; r < w->size; r++) {
      if (kind == 0) vf += ((const float *)w->slot[r])[i];
      else if (kind == 1) v += ((const double *)w->slot[r])[i];
      else v = fmax(v, ((const double *)w->slot[r])[i]);
    }
    if (kind == 0) ((float *)acc)[i] = vf;
    else ((double *)acc)[i] = v;
  }
  pthread_barrier_wait(&w->bar); /* everyone has read every buffer */
  memcpy(buf, acc, (size_t)n * es);
  free(acc);
  return 0;
}

static int fw_sum_f32(void *ctx, float *buf, int64_t n) { return fw_reduce(ctx, buf, n, 0); }
static int fw_sum_f64(void *ctx, double *buf, int64_t n) { return fw_reduce(ctx, buf, n, 1); }
static int fw_max_f64(void *ctx, double *buf, int64_t n) { return fw_reduce(ctx, buf, n, 2); }

static int fw_bcast(void *ctx, void *buf, int64_t bytes, int root) {
  fake_rank *fr = ctx;
  fake_world *w = fr->w;
  w->collectives[fr->rank]++;
  if (fr->rank == root) w->slot[root] = buf;
  pthread_barrier_wait(&w->bar);
  if (fr->rank != root) memcpy(buf, w->slot[root], (size_t)bytes);
  pthread_barrier_wait(&w->bar);
  return 0;
}

/* The data-parallel test model: the softmax classifier, SGD with momentum (its
 * velocity in opt_state) and one state buffer, a running mean of the inputs updated
 * from each batch as batch norm's running statistics are (momentum 0.5). */
enum { DP_P = SM_K * SM_D + SM_K };

static void dp_grad_step(const sn_step_args *a) {
  sm_forward(a, a->grads);
  float *st = a->state;
  const float *x = a->x;
  for (int d = 0; d < SM_D; d++) {
    double mean = 0;
    for (int64_t r = 0; r < a->rows; r++) mean += x[r * SM_D + d];
    st[d] = (float)(0.5 * st[d] + 0.5 * mean / (double)a->rows);
  }
}

static void dp_update(const sn_step_args *a) {
  float *w = a->params, *v = a->opt_state;
  const float *g = a->grads;
  for (int i = 0; i < DP_P; i++) {
    v[i] = 0.9f * v[i] + g[i];
    w[i] -= (float)(a->lr * v[i]);
  }
}

static const char *const dp_names[] = {"accuracy"};
static const sn_param_info dp_info[] = {
    {.name = "dense.weight", .rank = 2, .shape = {SM_K, SM_D}, .offset = 0, .count = SM_K * SM_D},
    {.name = "dense.bias", .rank = 1, .shape = {SM_K}, .offset = SM_K * SM_D, .count = SM_K},
    {.name = "stat.running_mean", .rank = 1, .shape = {SM_D}, .offset = 0, .count = SM_D,
     .buffer = 1},
};

static sn_model dp_model(void) {
  sn_model m = {
      .dtype = SN_RT_F32,
      .batch_capacity = 16,
      .input_elems = SM_D,
      .output_elems = SM_K,
      .param_count = DP_P,
      .opt_state_count = DP_P,
      .arena_bytes = 64,
      .n_params = 3,
      .params_info = dp_info,
      .n_metrics = 1,
      .metric_names = dp_names,
      .grad_step = dp_grad_step,
      .update = dp_update,
      .eval_step = sm_eval_step,
      .state_count = SM_D,
  };
  sn_error err = {{0}};
  CHECK(sn_model_alloc(&m, &err) == 0, "sn_model_alloc: %s", err.msg);
  sn_model_init_params(&m, 1); /* zeros */
  return m;
}

/* One rank's run: its own model, data and options (as MPI ranks have). */
typedef struct dp_run {
  sn_model m;
  sn_dataset train, val, test;
  sn_train_opts o;
  epoch_log log;
  sn_error err;
  int rc;
  fake_rank fr;
  sn_comm comm;
  char metrics[512], ckpt[512], state[512];
} dp_run;

static void *dp_thread(void *arg) {
  dp_run *r = arg;
  r->rc = sn_train(&r->m, &r->train, &r->val, &r->test, &r->o, &r->err);
  return NULL;
}

/* Sets up `size` ranks on blobs of n training samples (batch 16, 3 epochs, momentum
 * SGD); size 0: one process, no comm. The caller may change the runs, then runs them
 * with dp_go. */
static void dp_setup(dp_run *runs, int size, int64_t n, const char *dir) {
  for (int r = 0; r < (size ? size : 1); r++) {
    dp_run *d = &runs[r];
    memset(d, 0, sizeof *d);
    d->m = dp_model();
    d->train = blobs(n, 1);
    d->val = blobs(37, 4);
    d->test = blobs(41, 2);
    d->o = quiet_opts(3, 16, true, 9, &d->log);
    d->o.learning_rate = 0.05;
    snprintf(d->metrics, sizeof d->metrics, "%s/dp_%d.jsonl", dir, r);
    d->o.metrics_path = d->metrics;
    if (size) {
      d->fr.rank = r;
      d->comm = (sn_comm){.rank = r, .size = size, .ctx = &d->fr, .sum_f32 = fw_sum_f32,
                          .sum_f64 = fw_sum_f64, .max_f64 = fw_max_f64, .bcast = fw_bcast};
      d->o.comm = &d->comm;
    }
  }
}

static void dp_go(dp_run *runs, int size, fake_world *w) {
  if (!size) {
    dp_thread(&runs[0]);
    return;
  }
  memset(w, 0, sizeof *w);
  w->size = size;
  CHECK(pthread_barrier_init(&w->bar, NULL, (unsigned)size) == 0, "barrier");
  pthread_t th[FW_MAX];
  for (int r = 0; r < size; r++) {
    runs[r].fr.w = w;
    CHECK(pthread_create(&th[r], NULL, dp_thread, &runs[r]) == 0, "pthread_create");
  }
  for (int r = 0; r < size; r++) pthread_join(th[r], NULL);
  pthread_barrier_destroy(&w->bar);
  for (int r = 1; r < size; r++)
    CHECK(w->collectives[r] == w->collectives[0], "rank %d made %ld collectives, rank 0 %ld", r,
          w->collectives[r], w->collectives[0]);
}

static void dp_free(dp_run *runs, int size) {
  for (int r = 0; r < (size ? size : 1); r++) {
    free_dataset(&runs[r].train);
    free_dataset(&runs[r].val);
    free_dataset(&runs[r].test);
    sn_model_free(&runs[r].m);
    unlink(runs[r].metrics);
  }
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Worst relative difference of two float buffers. */
static double max_rel(const float *a, const float *b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / (1e-6 + fabs((double)a[i]) + fabs((double)b[i]));
    if (d > worst) worst = d;
  }
  return worst;
}

/* Two and three ranks against one process: 289 = 18 x 16 + 1 samples, so the last
 * batch has one row (with 3 ranks, two get none) and 16 rows split 5/5/6 (3 ranks). */
static void test_data_parallel(const char *dir) {
  enum { N = 289 };
  dp_run one[1], many[FW_MAX];
  fake_world w;
  dp_setup(one, 0, N, dir);
  dp_go(one, 0, &w);
  CHECK(one[0].rc == 0, "one process: %s", one[0].err.msg);
  CHECK(one[0].log.rec[2].test.metrics[0] > 0.9, "one process did not learn: test accuracy %g",
        one[0].log.rec[2].test.metrics[0]);
  for (int size = 2; size <= 3; size++) {
    dp_setup(many, size, N, dir);
    dp_go(many, size, &w);
    for (int r = 0; r < size; r++) {
      const dp_run *d = &many[r];
      CHECK(d->rc == 0, "rank %d of %d: %s", r, size, d->err.msg);
      /* every rank holds the same weights, optimizer state and state buffers */
      CHECK(!memcmp(d->m.params, many[0].m.params, DP_P * sizeof(float)) &&
                !memcmp(d->m.opt_state, many[0].m.opt_state, DP_P * sizeof(float)) &&
                !memcmp(d->m.state, many[0].m.state, SM_D * sizeof(float)),
            "rank %d of %d ended with other weights than rank 0", r, size);
      CHECK(d->log.n == 3, "rank %d saw %d epochs", r, d->log.n);
      for (int e = 0; e < 3; e++) {
        const sn_epoch_record *a = &one[0].log.rec[e], *b = &d->log.rec[e];
        CHECK(close_to(a->loss, b->loss, 1e-5) && close_to(a->metrics[0], b->metrics[0], 1e-12),
              "%d ranks, epoch %d: loss %.9g accuracy %g, one process %.9g %g", size, e + 1,
              b->loss, b->metrics[0], a->loss, a->metrics[0]);
        CHECK(close_to(a->val.loss, b->val.loss, 1e-5) && close_to(a->test.loss, b->test.loss, 1e-5) &&
                  a->test.metrics[0] == b->test.metrics[0] && b->test.samples == 41,
              "%d ranks, epoch %d: test loss %.9g accuracy %g, one process %.9g %g", size, e + 1,
              b->test.loss, b->test.metrics[0], a->test.loss, a->test.metrics[0]);
      }
    }
    /* the sums are over the same rows, in another order: float rounding only */
    double dw = max_rel(one[0].m.params, many[0].m.params, DP_P);
    double dv = max_rel(one[0].m.opt_state, many[0].m.opt_state, DP_P);
    double ds = max_rel(one[0].m.state, many[0].m.state, SM_D);
    CHECK(dw < 1e-4 && dv < 1e-4 && ds < 1e-5,
          "%d ranks vs one process: weights differ by %g, momentum by %g, state by %g", size, dw,
          dv, ds);
    /* rank 0 alone writes the records */
    char lines[16][1024];
    CHECK(read_lines(many[0].metrics, lines) == 3, "rank 0's metrics.jsonl");
    for (int r = 1; r < size; r++)
      CHECK(!file_exists(many[r].metrics), "rank %d wrote %s", r, many[r].metrics);
    dp_free(many, size);
  }
  dp_free(one, 0);
}

/* One step with 2 shards equals one step with 1: a single batch of 16, plain sums. */
static void test_data_parallel_one_step(const char *dir) {
  dp_run one[1], two[2];
  fake_world w;
  dp_setup(one, 0, 16, dir);
  dp_setup(two, 2, 16, dir);
  for (int r = 0; r < 2; r++) two[r].o.epochs = 1;
  one[0].o.epochs = 1;
  dp_go(one, 0, &w);
  dp_go(two, 2, &w);
  CHECK(one[0].rc == 0 && two[0].rc == 0 && two[1].rc == 0, "one step: %s %s", one[0].err.msg,
        two[0].err.msg);
  double dw = max_rel(one[0].m.params, two[0].m.params, DP_P);
  CHECK(dw < 1e-6, "one step on 2 shards: weights differ from one shard by %g", dw);
  CHECK(max_rel(one[0].m.state, two[0].m.state, SM_D) < 1e-6, "one step: state differs");
  dp_free(one, 0);
  dp_free(two, 2);
}

/* A NaN on one rank, a bad data set on one rank, ranks with other weights: every rank
 * stops with an error; none hangs (a hang would hang this test). */
static void test_data_parallel_faults(const char *dir) {
  dp_run d[2];
  fake_world w;
  /* a NaN sample: it lands in some rank's shard in epoch 1 */
  dp_setup(d, 2, 64, dir);
  for (int r = 0; r < 2; r++) d[r].train.x[10] = NAN;
  float before[DP_P];
  dp_go(d, 2, &w);
  for (int r = 0; r < 2; r++) {
    CHECK(d[r].rc != 0 && strstr(d[r].err.msg, "loss is nan at epoch 1 step ") &&
              strstr(d[r].err.msg, " of 2; try a lower learning_rate"),
          "rank %d: %s", r, d[r].err.msg);
    CHECK(!strcmp(d[r].err.msg, d[0].err.msg), "ranks report differently: %s / %s", d[0].err.msg,
          d[r].err.msg);
    const float *p = d[r].m.params;
    for (int i = 0; i < DP_P; i++) CHECK(isfinite(p[i]), "rank %d: weight %d is %g", r, i, p[i]);
  }
  (void)before;
  dp_free(d, 2);

  /* rank 1's training set has other samples: it fails its checks alone */
  dp_setup(d, 2, 64, dir);
  d[1].train.sample_elems = 3;
  dp_go(d, 2, &w);
  CHECK(d[1].rc != 0 && strstr(d[1].err.msg, "elements per sample"), "rank 1: %s", d[1].err.msg);
  CHECK(d[0].rc != 0 &&
            !strcmp(d[0].err.msg, "stopped because rank 1 of 2 failed (its error is above)"),
        "rank 0: %s", d[0].err.msg);
  CHECK(!file_exists(d[0].metrics), "rank 0 wrote records although rank 1 failed");
  d[1].train.sample_elems = SM_D;
  dp_free(d, 2);

  /* rank 1 starts from other weights, or another data set size */
  for (int k = 0; k < 2; k++) {
    dp_setup(d, 2, 64, dir);
    if (k == 0) ((float *)d[1].m.params)[2] = 0.5f;
    else d[1].train.n = 63;
    dp_go(d, 2, &w);
    const char *want = k == 0 ? "the 2 ranks disagree on the initial weights (their checksums differ)"
                              : "the 2 ranks disagree on the training set size";
    for (int r = 0; r < 2; r++)
      CHECK(d[r].rc != 0 && !strncmp(d[r].err.msg, want, strlen(want)), "rank %d: %s", r,
            d[r].err.msg);
    d[1].train.n = 64;
    dp_free(d, 2);
  }
}

/* A rank whose update rounds differently (as another CPU would): after each epoch
 * rank 0's weights are given to every rank, so they end equal. */
static void dp_update_drift(const sn_step_args *a) {
  dp_update(a);
  ((float *)a->params)[0] *= 1.0f + 1e-6f;
}

static void test_data_parallel_drift(const char *dir) {
  dp_run d[2];
  fake_world w;
  dp_setup(d, 2, 64, dir);
  d[1].m.update = dp_update_drift;
  dp_go(d, 2, &w);
  CHECK(d[0].rc == 0 && d[1].rc == 0, "drift: %s %s", d[0].err.msg, d[1].err.msg);
  CHECK(!memcmp(d[0].m.params, d[1].m.params, DP_P * sizeof(float)) &&
            !memcmp(d[0].m.opt_state, d[1].m.opt_state, DP_P * sizeof(float)),
        "the ranks' weights were not brought back together");
  dp_free(d, 2);
}

/* Resuming: 3 epochs in one go against 1 epoch, then --resume to 3: the same weights,
 * optimizer and state, the same records, metrics.jsonl with 3 lines; alone and on
 * two ranks. */
static void test_resume(const char *dir) {
  for (int size = 0; size <= 2; size += 2) {
    dp_run full[2], part[2];
    fake_world w;
    dp_setup(full, size, 100, dir);
    dp_go(full, size, &w);
    dp_setup(part, size, 100, dir);
    for (int r = 0; r < (size ? size : 1); r++) {
      dp_run *d = &part[r];
      snprintf(d->ckpt, sizeof d->ckpt, "%s/resume_model.safetensors", dir);
      snprintf(d->state, sizeof d->state, "%s/resume_state.safetensors", dir);
      d->o.checkpoint_path = d->ckpt;
      d->o.state_path = d->state;
      d->o.epochs = 1;
    }
    dp_go(part, size, &w);
    CHECK(part[0].rc == 0, "first part: %s", part[0].err.msg);
    CHECK(file_exists(part[0].ckpt) && file_exists(part[0].state), "no checkpoint written");
    for (int r = 0; r < (size ? size : 1); r++) {
      dp_run *d = &part[r];
      memset(d->m.params, 0, DP_P * sizeof(float)); /* the checkpoint must bring them back */
      memset(d->m.opt_state, 0, DP_P * sizeof(float));
      memset(d->m.state, 0, SM_D * sizeof(float));
      d->o.epochs = 3;
      d->o.resume = true;
      d->log.n = 0;
    }
    dp_go(part, size, &w);
    for (int r = 0; r < (size ? size : 1); r++) {
      CHECK(part[r].rc == 0, "resumed rank %d: %s", r, part[r].err.msg);
      CHECK(!memcmp(full[r].m.params, part[r].m.params, DP_P * sizeof(float)) &&
                !memcmp(full[r].m.opt_state, part[r].m.opt_state, DP_P * sizeof(float)) &&
                !memcmp(full[r].m.state, part[r].m.state, SM_D * sizeof(float)),
            "%d ranks: resumed run ends with other weights (rank %d)", size, r);
      CHECK(part[r].log.n == 2 && part[r].log.rec[0].epoch == 2 &&
                part[r].log.rec[1].loss == full[r].log.rec[2].loss,
            "%d ranks: resumed epochs", size);
    }
    char lines[16][1024], full_lines[16][1024];
    CHECK(read_lines(part[0].metrics, lines) == 3 && read_lines(full[0].metrics, full_lines) == 3,
          "metrics.jsonl after resuming");
    CHECK(!strncmp(lines[2], full_lines[2], 40), "resumed epoch 3: %s vs %s", lines[2],
          full_lines[2]);
    /* the state must match the weights beside it */
    ((float *)part[0].m.params)[0] += 1;
    CHECK(sn_safetensors_write(part[0].ckpt, &part[0].m, &part[0].err) == 0, "write");
    for (int r = 0; r < (size ? size : 1); r++) part[r].o.epochs = 4;
    dp_go(part, size, &w);
    CHECK(part[0].rc != 0 && strstr(part[0].err.msg, "does not hold the weights"), "mismatch: %s",
          part[0].err.msg);
    if (size) CHECK(part[1].rc != 0, "rank 1 went on without rank 0");
    unlink(part[0].ckpt);
    unlink(part[0].state);
    dp_free(full, size);
    dp_free(part, size);
  }
}


/* ---------------------------------------------------------------------------
 * Reporting: sn_train prints nothing itself; what it reports goes to the
 * caller's reporter, as opts->progress and opts->quiet say. */

typedef struct counts {
  int batch, done, epoch, note;
  int64_t last_batch, last_batches;
} counts;

static void count_batch(void *ctx, const sn_model *m, const sn_batch_progress *p) {
  (void)m;
  counts *c = ctx;
  c->batch++;
  c->last_batch = p->batch;
  c->last_batches = p->batches;
}
static void count_done(void *ctx) { ((counts *)ctx)->done++; }
static void count_epoch(void *ctx, const sn_model *m, int epochs, const sn_epoch_record *rec, bool show_lr) {
  (void)m, (void)epochs, (void)rec, (void)show_lr;
  ((counts *)ctx)->epoch++;
}
static void count_note(void *ctx, const char *line) {
  (void)line;
  ((counts *)ctx)->note++;
}

/* bytes written to fd while f runs with its opts */
static long output_of(int fd, void (*f)(sn_train_opts *), sn_train_opts *o) {
  char path[] = "/tmp/specnet_test_out_XXXXXX";
  int tmp = mkstemp(path);
  fflush(NULL);
  int saved = dup(fd);
  dup2(tmp, fd);
  f(o);
  fflush(NULL);
  dup2(saved, fd);
  close(saved);
  long n = lseek(tmp, 0, SEEK_END);
  close(tmp);
  unlink(path);
  return n;
}

static void train_10x4(sn_train_opts *o) {
  sn_model m = rec_model(SN_RT_F32, 4);
  sn_dataset ds = rec_dataset(10, 0);
  rec_reset(&m);
  sn_error err = {{0}};
  CHECK(sn_train(&m, &ds, NULL, NULL, o, &err) == 0, "sn_train: %s", err.msg);
  free_dataset(&ds);
  sn_model_free(&m);
}

static void test_reporter(void) {
  sn_train_opts o = quiet_opts(3, 4, false, 1, NULL);
  o.progress = true;
  o.quiet = false;
  long out = output_of(1, train_10x4, &o), err = output_of(2, train_10x4, &o);
  CHECK(out == 0 && err == 0, "with no reporter sn_train wrote %ld bytes to stdout, %ld to stderr", out, err);
  counts c = {0};
  sn_reporter r = {count_batch, count_done, count_epoch, count_note, &c};
  o.reporter = &r;
  train_10x4(&o);
  CHECK(c.epoch == 3 && c.done == 3 && c.note == 0, "3 epochs: %d summaries, %d ends of batches, %d notes", c.epoch,
        c.done, c.note);
  CHECK(c.batch >= 3 && c.last_batch == 3 && c.last_batches == 3, "batches reported: %d, the last %lld of %lld",
        c.batch, (long long)c.last_batch, (long long)c.last_batches);
  memset(&c, 0, sizeof c);
  o.quiet = true;
  o.progress = false;
  train_10x4(&o);
  CHECK(c.epoch == 0 && c.note == 0 && c.batch == 0 && c.done == 0, "quiet, no progress: %d %d %d %d reports",
        c.epoch, c.note, c.batch, c.done);
}

int main(void) {
  char dir[] = "/tmp/specnet_test_train_XXXXXX";
  CHECK(mkdtemp(dir), "mkdtemp failed");
  test_epoch_coverage(SN_RT_F32);
  test_epoch_hook(SN_RT_F32, true, false);
  test_epoch_hook(SN_RT_F32, false, false);
  test_epoch_hook(SN_RT_F64, true, true);
  test_label_pairs(SN_RT_F32, false);
  test_label_pairs(SN_RT_F64, true);
  test_epoch_coverage(SN_RT_F64);
  test_shuffle_determinism();
  test_evaluate(SN_RT_F32);
  test_evaluate(SN_RT_F64);
  test_metrics_jsonl(dir);
  test_nan_guard(dir);
  test_bad_options();
  test_softmax_learns();
  test_prefetch_identical();
  test_target_checks();
  test_schedules();
  test_early_stopping();
  test_predict_all(SN_RT_F32);
  test_predict_all(SN_RT_F64);
  test_state_checkpoint(dir);
  test_data_parallel_one_step(dir);
  test_data_parallel(dir);
  test_data_parallel_faults(dir);
  test_data_parallel_drift(dir);
  test_resume(dir);
  test_reporter();
  char path[512];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/metrics.csv", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/curves.svg", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/nan.jsonl", dir);
  unlink(path);
  rmdir(dir);
  printf("test_train: all tests passed\n");
  return 0;
}
