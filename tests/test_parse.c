/* Tests of the spec front end: diag.c, yaml_tree.c, parse_spec.c.
 *
 * Most cases are files under tests/parse/ that carry their expected diagnostics
 * at the end, QBE-style, and are compared exactly:
 *
 *   # set: train.epochs=1            applied as --set, in order
 *   # errors: 12                     the error count must be exactly this
 *   # >>> parse/x.yaml:3:1: error: ...   one line of expected output each
 *
 * A file with no expected error must load; one with any must be rejected. The
 * rest are C checks: the fields of parsed specs, inputs that cannot live in a text
 * fixture (an empty file, invalid UTF-8, a file over 16 MiB), generated nesting
 * and alias bombs, --set and the YAML writer. Run from tests/ (ctest does). Exits
 * non-zero if anything failed, after printing each failure. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"

static int failures, checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);                           \
    }                                                                                              \
  } while (0)

#define CHECK_STR(got, want)                                                                       \
  do {                                                                                             \
    const char *g_ = (got), *w_ = (want);                                                          \
    checks++;                                                                                      \
    if (!g_ || strcmp(g_, w_) != 0) {                                                              \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: FAILED: %s\n--- want:\n%s\n--- got:\n%s\n", __FILE__, __LINE__,      \
              #got, w_, g_ ? g_ : "(null)");                                                       \
    }                                                                                              \
  } while (0)

/* ---------------------------------------------------------------------------
 * Helpers */

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *s = malloc(cap);
  for (size_t got; s && (got = fread(s + len, 1, cap - len - 1, f)) > 0;) {
    len += got;
    if (cap - len < 2) {
      char *t = realloc(s, cap * 2);
      if (!t) {
        free(s);
        s = NULL;
        break;
      }
      s = t;
      cap *= 2;
    }
  }
  fclose(f);
  if (s) s[len] = '\0';
  return s;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

/* Loads a spec and returns its diagnostics text; *spec gets the spec or NULL. */
static char *load(const char *path, const char *const *sets, int n_sets, sn_spec **spec,
                  int *errors) {
  sn_diag d = {0};
  sn_spec *s = sn_spec_load(path, sets, n_sets, &d);
  char *text = sn_diag_text(&d);
  if (errors) *errors = d.errors;
  sn_diag_free(&d);
  if (spec)
    *spec = s;
  else
    sn_spec_free(s);
  return text;
}

/* Diagnostics of parsing `text` as YAML named `name`. */
static char *yaml_diag(const char *text, const char *name) {
  sn_diag d = {0};
  sn_node *n = sn_yaml_parse_string(text, name, &d);
  sn_node_free(n);
  char *out = sn_diag_text(&d);
  sn_diag_free(&d);
  return out;
}

/* ---------------------------------------------------------------------------
 * Fixture files */

enum { MAX_SETS = 16 };

static void run_fixture(const char *path) {
  char *src = read_all(path);
  if (!src) {
    failures++;
    fprintf(stderr, "cannot read %s\n", path);
    return;
  }
  char *want = calloc(1, strlen(src) + 1);
  char *sets[MAX_SETS];
  int n_sets = 0, want_errors = -1;
  bool expects_error = false;
  for (char *line = strtok(src, "\n"); line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "# >>> ", 6)) {
      strcat(want, line + 6);
      strcat(want, "\n");
      expects_error = expects_error || strstr(line, ": error: ");
    } else if (!strncmp(line, "# set: ", 7) && n_sets < MAX_SETS) {
      sets[n_sets++] = line + 7;
    } else if (!strncmp(line, "# errors: ", 10)) {
      want_errors = atoi(line + 10);
    }
  }
  sn_spec *s;
  int errors;
  char *got = load(path, (const char *const *)sets, n_sets, &s, &errors);
  checks++;
  if (strcmp(got, want) != 0) {
    failures++;
    fprintf(stderr, "FAILED: %s: diagnostics differ\n--- want:\n%s--- got:\n%s", path, want, got);
  }
  checks++;
  if ((s == NULL) != expects_error) {
    failures++;
    fprintf(stderr, "FAILED: %s: spec was %s\n", path, s ? "accepted" : "rejected");
  }
  if (want_errors >= 0) {
    checks++;
    if (errors != want_errors) {
      failures++;
      fprintf(stderr, "FAILED: %s: %d errors, want %d\n", path, errors, want_errors);
    }
  }
  sn_spec_free(s);
  free(got);
  free(want);
  free(src);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_fixtures(void) {
  DIR *dir = opendir("parse");
  if (!dir) {
    failures++;
    fprintf(stderr, "FAILED: no tests/parse directory (run from tests/)\n");
    return;
  }
  char *names[256];
  int n = 0;
  for (struct dirent *e; (e = readdir(dir)) && n < 256;) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".yaml")) {
      names[n] = malloc(len + 7);
      snprintf(names[n++], len + 7, "parse/%s", e->d_name);
    }
  }
  closedir(dir);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  CHECK(n >= 15); /* a lost directory must not pass as "nothing failed" */
  for (int i = 0; i < n; i++) {
    run_fixture(names[i]);
    free(names[i]);
  }
}

/* ---------------------------------------------------------------------------
 * Fields of accepted specs */

static void test_seed_spec(void) {
  sn_spec *s;
  char *diag = load("parse/ok_seed.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  CHECK(s->version == 1);
  CHECK_STR(s->name, "mnist_mlp");
  CHECK(s->seed == 42);
  CHECK(s->data.train.kind == SN_SRC_BUILTIN);
  CHECK_STR(s->data.train.name, "fashion_mnist");
  CHECK_STR(s->data.train.split, "train");
  CHECK(s->data.train_loc.line == 6 && s->data.train_loc.col == 10);
  CHECK(s->data.test.kind == SN_SRC_BUILTIN);
  CHECK_STR(s->data.test.split, "test");
  CHECK(s->data.validation.kind == SN_SRC_NONE);
  CHECK(s->data.validation_split == 0.1);
  CHECK(s->data.scale == 0.00392156862745098);
  CHECK(s->input_rank == 2 && s->input_shape[0] == 28 && s->input_shape[1] == 28);
  CHECK(s->n_layers == 4);
  if (s->n_layers == 4) {
    const sn_layer_spec *l = s->layers;
    CHECK(l[0].kind == SN_LAYER_FLATTEN);
    CHECK_STR(l[0].name, "flatten1");
    CHECK(l[0].loc.line == 16 && l[0].loc.col == 7);
    CHECK(l[1].kind == SN_LAYER_DENSE && l[1].units == 128 && l[1].activation == SN_ACT_RELU);
    CHECK_STR(l[1].name, "dense1");
    CHECK(l[1].use_bias && l[1].kernel_init == SN_INIT_GLOROT_UNIFORM &&
          l[1].bias_init == SN_INIT_ZEROS);
    CHECK_STR(l[2].name, "dense2");
    CHECK(l[3].units == 10 && l[3].activation == SN_ACT_SOFTMAX);
    CHECK_STR(l[3].name, "dense3");
    CHECK(l[3].loc.line == 19);
  }
  CHECK(s->loss == SN_LOSS_SPARSE_CCE && !s->from_logits);
  CHECK(s->optimizer == SN_OPT_ADAM);
  CHECK(s->learning_rate == 0.001 && s->beta1 == 0.9 && s->beta2 == 0.999 && s->epsilon == 1.0e-7);
  CHECK(s->batch_size == 32 && s->epochs == 10 && s->shuffle);
  CHECK(s->n_metrics == 1);
  CHECK_STR(s->metrics[0], "accuracy");
  CHECK(s->n_expect == 1);
  CHECK_STR(s->expect[0].key, "test.accuracy");
  CHECK(s->expect[0].has_min && !s->expect[0].has_max && s->expect[0].min == 0.85);
  CHECK(s->expect[0].loc.line == 31 && s->expect[0].loc.col == 3);
  CHECK_STR(sn_act_name(s->layers[1].activation), "relu");
  sn_spec_free(s);
}

static void test_defaults(void) {
  sn_spec *s;
  free(load("parse/ok_defaults.yaml", NULL, 0, &s, NULL));
  CHECK(s != NULL);
  if (!s) return;
  CHECK(s->seed == 0);
  CHECK(s->data.test.kind == SN_SRC_NONE && s->data.validation.kind == SN_SRC_NONE);
  CHECK(s->data.validation_split == 0 && s->data.scale == 1);
  CHECK(s->layers[0].activation == SN_ACT_LINEAR && s->layers[0].use_bias);
  CHECK(s->learning_rate == 0.001 && s->beta1 == 0.9 && s->beta2 == 0.999 && s->epsilon == 1e-7);
  CHECK(s->batch_size == 32 && s->epochs == 1 && s->shuffle && s->n_metrics == 0);
  CHECK(s->n_expect == 0);
  sn_spec_free(s);
}

static void test_forms(void) {
  sn_spec *s;
  free(load("parse/ok_forms.yaml", NULL, 0, &s, NULL));
  CHECK(s != NULL);
  if (!s) return;
  CHECK_STR(s->name, "forms.v1-test");
  const sn_source *tr = &s->data.train, *te = &s->data.test, *va = &s->data.validation;
  CHECK(tr->kind == SN_SRC_IDX && tr->limit == 500);
  CHECK_STR(tr->images, "parse/data/train-images.idx"); /* relative to the spec */
  CHECK_STR(tr->labels, "/abs/labels.gz");
  CHECK(te->kind == SN_SRC_SYNTHETIC && te->samples == 300 && te->classes == 3 &&
        te->features == 2 && te->noise == 0.2);
  CHECK_STR(te->name, "spirals");
  CHECK(va->kind == SN_SRC_BUILTIN && va->limit == 100);
  CHECK_STR(va->split, "test");
  CHECK(tr->seed != te->seed && te->seed != va->seed); /* streams differ by role */
  CHECK(s->data.scale == 0.25);
  CHECK(s->input_rank == 3 && s->input_shape[2] == 1);
  CHECK(s->n_layers == 6);
  if (s->n_layers == 6) {
    const sn_layer_spec *l = s->layers;
    CHECK_STR(l[0].name, "flatten1");
    CHECK_STR(l[1].name, "h1");
    CHECK(l[1].activation == SN_ACT_TANH && !l[1].use_bias);
    CHECK_STR(l[2].name, "dense2"); /* counted among all dense layers, named or not */
    CHECK(l[2].kernel_init == SN_INIT_NORMAL && l[2].kernel_init_arg == 0.02);
    CHECK(l[2].bias_init == SN_INIT_ONES);
    CHECK(l[3].kind == SN_LAYER_ACTIVATION && l[3].activation == SN_ACT_RELU);
    CHECK_STR(l[3].name, "relu1");
    CHECK(l[4].kernel_init == SN_INIT_HE_NORMAL && l[4].activation == SN_ACT_LINEAR);
    CHECK_STR(l[5].name, "softmax1");
  }
  CHECK(s->from_logits);
  CHECK(s->learning_rate == 3.0e-4 && s->beta1 == 0.5 && s->beta2 == 0.99 && s->epsilon == 1e-8);
  CHECK(s->batch_size == 64 && s->epochs == 0 && !s->shuffle);
  CHECK(s->n_expect == 5);
  if (s->n_expect == 5) {
    CHECK(s->expect[0].has_max && !s->expect[0].has_min && s->expect[0].max == 2.5);
    CHECK(s->expect[1].has_min && s->expect[1].has_max);
    CHECK_STR(s->expect[3].key, "gradcheck");
    CHECK(s->expect[3].max_rel_error == 1.0e-6);
    CHECK_STR(s->expect[4].key, "error");
    CHECK_STR(s->expect[4].contains, "units must be");
  }
  sn_spec_free(s);
}

static void test_alias_spec(void) {
  sn_spec *s;
  free(load("parse/ok_alias.yaml", NULL, 0, &s, NULL));
  CHECK(s && s->n_layers == 3);
  CHECK(s && s->layers[1].units == 64 && s->layers[1].activation == SN_ACT_RELU);
  CHECK(s && s->layers[1].loc.line == 9);
  sn_spec_free(s);
}

static void test_set(void) {
  const char *sets[] = {"train.epochs=1",
                        "data.validation={split: 0.2}",
                        "model.layers.1.dense.units=256",
                        "model.input=[784]",
                        "model.layers.0=relu",
                        "expect.test.accuracy.min=0.5",
                        "train.optimizer.adam.learning_rate=0.01"};
  sn_spec *s;
  char *diag = load("parse/ok_set.yaml", sets, 7, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  CHECK(s->epochs == 1);
  CHECK(s->data.validation_split == 0.2);
  CHECK(s->layers[1].units == 256);
  CHECK(s->input_rank == 1 && s->input_shape[0] == 784);
  CHECK(s->layers[0].kind == SN_LAYER_ACTIVATION);
  CHECK_STR(s->layers[0].loc.file, "--set");
  CHECK(s->layers[0].loc.line == 1 && s->layers[0].loc.col == 16);
  CHECK(s->n_expect == 1 && s->expect[0].min == 0.5);
  CHECK(s->learning_rate == 0.01);
  sn_spec_free(s);

  /* Errors of --set itself, each at its column in the argument. */
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string("a: {b: 1, c: [x, y]}\n", "t.yaml", &d);
  CHECK(root != NULL);
  if (!root) return;
  CHECK(sn_node_set(root, "a.b.z=1", &d) != 0);
  CHECK(sn_node_set(root, "a.c.q=1", &d) != 0);
  CHECK(sn_node_set(root, "a.c.5=1", &d) != 0);
  CHECK(sn_node_set(root, "a..b=1", &d) != 0);
  CHECK(sn_node_set(root, "novalue", &d) != 0);
  CHECK(sn_node_set(root, "a.b=", &d) != 0);
  CHECK(sn_node_set(root, "a.b={x: [1}", &d) != 0);
  CHECK(sn_node_set(root, "a.c.1=z", &d) == 0);
  CHECK(sn_node_set(root, "a.new.deep='q'", &d) == 0);
  char *text = sn_diag_text(&d);
  CHECK_STR(text, "--set:1:5: error: cannot set 'a.b.z': 'a.b' is a scalar, not a mapping\n"
                  "--set:1:5: error: cannot set 'a.c.q': 'a.c' is a list; pick an item by "
                  "number\n"
                  "--set:1:5: error: cannot set 'a.c.5': 'a.c' has 2 items (numbered from 0)\n"
                  "--set:1:3: error: empty key in 'a..b'\n"
                  "--set:1:1: error: --set expects KEY.PATH=VALUE, got 'novalue'\n"
                  "--set:1:5: error: missing value after '=' in 'a.b='\n"
                  "--set:1:11: error: invalid YAML: did not find expected ',' or ']' (while "
                  "parsing a flow sequence at line 1)\n");
  free(text);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sn_node_write(root, f);
  fclose(f);
  CHECK_STR(buf, "a:\n  b: 1\n  c:\n    - x\n    - z\n  new:\n    deep: \"q\"\n");
  const sn_node *deep = sn_node_get(sn_node_get(sn_node_get(root, "a"), "new"), "deep");
  CHECK(deep && deep->quoted && deep->loc.col == 12);
  CHECK(deep && !strcmp(deep->loc.file, "--set"));
  free(buf);
  sn_node_free(root);
  sn_diag_free(&d);
}

/* Image layers, file sources, preprocessing and the training options. */
static void test_cnn_spec(void) {
  sn_spec *s;
  char *diag = load("parse/ok_cnn.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  const sn_data_spec *d = &s->data;
  CHECK(d->train.kind == SN_SRC_NPY && d->train.limit == 1000);
  CHECK_STR(d->train.images, "parse/data/x.npy");
  CHECK_STR(d->train.labels, "/abs/y.npy");
  CHECK(d->test.kind == SN_SRC_CSV && d->test.label_index == 0 && !d->test.header);
  CHECK_STR(d->test.path, "parse/data/test.csv\n/abs/t-*.csv"); /* a list: one per line */
  CHECK_STR(d->test.label_col, "");
  CHECK(d->validation.kind == SN_SRC_NONE && d->validation_split == 0.2);
  CHECK(d->scale == 0.5 && !d->standardize);
  CHECK(d->n_norm == 1 && d->norm_mean[0] == 0.1307 && d->norm_std[0] == 0.3081);
  CHECK(d->preprocess_loc.line == 10 && d->preprocess_loc.col == 5);
  CHECK(s->n_layers == 13);
  if (s->n_layers == 13) {
    const sn_layer_spec *l = s->layers;
    CHECK(l[0].kind == SN_LAYER_CONV2D && l[0].filters == 8);
    CHECK(l[0].kernel_size[0] == 3 && l[0].kernel_size[1] == 3);
    CHECK(l[0].strides[0] == 1 && l[0].strides[1] == 1 && l[0].padding == SN_PAD_VALID);
    CHECK(l[0].activation == SN_ACT_LINEAR && l[0].use_bias);
    CHECK(l[0].kernel_init == SN_INIT_GLOROT_UNIFORM && l[0].bias_init == SN_INIT_ZEROS);
    CHECK_STR(l[0].name, "conv2d1");
    CHECK(l[0].n_inputs == 1 && l[0].input_locs[0].line == l[0].loc.line);
    CHECK_STR(l[0].inputs[0], "input");
    CHECK(l[1].kind == SN_LAYER_BATCH_NORM && l[1].momentum == 0.9 && l[1].epsilon == 1e-3);
    CHECK_STR(l[1].inputs[0], "conv2d1");
    CHECK(l[2].kind == SN_LAYER_ACTIVATION && l[2].activation == SN_ACT_RELU);
    CHECK(l[3].kind == SN_LAYER_MAX_POOL2D && l[3].pool_size[0] == 2 && l[3].pool_size[1] == 2);
    CHECK(l[3].strides[0] == 2 && l[3].strides[1] == 2 && l[3].padding == SN_PAD_VALID);
    CHECK_STR(l[4].name, "conv2d2");
    CHECK(l[4].filters == 16 && l[4].kernel_size[0] == 5 && l[4].kernel_size[1] == 3);
    CHECK(l[4].strides[0] == 2 && l[4].strides[1] == 1 && l[4].padding == SN_PAD_SAME);
    CHECK(l[4].activation == SN_ACT_LEAKY_RELU && l[4].alpha == 0.1);
    CHECK(!l[4].use_bias && l[4].kernel_init == SN_INIT_HE_NORMAL);
    CHECK(l[4].loc.line == 19);
    CHECK(l[5].kind == SN_LAYER_AVG_POOL2D && l[5].pool_size[0] == 3 && l[5].pool_size[1] == 3);
    CHECK(l[5].strides[0] == 1 && l[5].strides[1] == 2 && l[5].padding == SN_PAD_SAME);
    CHECK_STR(l[5].inputs[0], "conv2d2");
    CHECK(l[6].kind == SN_LAYER_DROPOUT && l[6].rate == 0.25);
    CHECK(l[7].kind == SN_LAYER_FLATTEN);
    CHECK(l[8].kind == SN_LAYER_DENSE && l[8].activation == SN_ACT_ELU && l[8].alpha == 1.0);
    CHECK(l[9].kind == SN_LAYER_LAYER_NORM && l[9].epsilon == 1e-5);
    CHECK(l[10].kind == SN_LAYER_ACTIVATION && l[10].activation == SN_ACT_LEAKY_RELU);
    CHECK(l[10].alpha == 0.2);
    CHECK_STR(l[10].name, "leaky_relu1");
    CHECK(l[11].activation == SN_ACT_ELU && l[11].alpha == 0.5);
    CHECK(l[12].units == 10 && l[12].activation == SN_ACT_SOFTMAX);
    CHECK(l[12].bias_init == SN_INIT_UNIFORM && l[12].bias_init_arg == 0.1);
    CHECK(s->order != NULL);
    for (int i = 0; s->order && i < 13; i++) CHECK(s->order[i] == i);
  }
  CHECK(s->loss == SN_LOSS_CCE && !s->from_logits);
  CHECK(s->optimizer == SN_OPT_SGD && s->learning_rate == 0.05);
  CHECK(s->momentum == 0.9 && s->nesterov && s->clip_grad_norm == 1.0);
  CHECK(s->schedule.kind == SN_SCHED_STEP && s->schedule.every == 3 && s->schedule.gamma == 0.1);
  CHECK(s->schedule_loc.line == 39 && s->schedule_loc.col == 13);
  CHECK(s->early.enabled && s->early.patience == 2 && s->early.min_delta == 0.001);
  CHECK(s->early.restore_best && s->early_loc.line == 40);
  CHECK_STR(s->early.monitor, "val_loss"); /* validation data: val_loss, as Keras */
  CHECK(s->batch_size == 16 && s->epochs == 5);
  CHECK(s->n_metrics == 2);
  CHECK_STR(s->metrics[0], "accuracy");
  CHECK_STR(s->metrics[1], "top_k_accuracy");
  CHECK(s->metric_kind[0] == SN_METRIC_ACCURACY);
  CHECK(s->metric_kind[1] == SN_METRIC_TOP_K && s->metric_k[1] == 3);
  CHECK(s->n_expect == 1);
  CHECK_STR(s->expect[0].key, "validation.top_k_accuracy");
  sn_spec_free(s);
}

/* The graph form: names, explicit and implicit inputs, joins, the order. */
static void test_graph_spec(void) {
  sn_spec *s;
  char *diag = load("parse/ok_graph.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  CHECK(s->n_layers == 13);
  if (s->n_layers == 13) {
    const sn_layer_spec *l = s->layers;
    CHECK(l[0].kind == SN_LAYER_EMBEDDING && l[0].vocab == 1000 && l[0].dim == 8);
    CHECK(l[0].kernel_init == SN_INIT_UNIFORM && l[0].kernel_init_arg == 0.05);
    CHECK_STR(l[0].name, "embedding1");
    CHECK_STR(l[1].inputs[0], "embedding1");
    CHECK_STR(l[3].name, "b");
    CHECK(l[3].n_inputs == 1 && l[3].input_locs[0].line == 12 && l[3].input_locs[0].col == 46);
    CHECK_STR(l[3].inputs[0], "a");
    CHECK(l[4].activation == SN_ACT_GELU);
    CHECK_STR(l[4].inputs[0], "h1");
    CHECK(l[5].kind == SN_LAYER_ADD && l[5].n_inputs == 2);
    CHECK_STR(l[5].inputs[0], "h1");
    CHECK_STR(l[5].inputs[1], "b");
    CHECK(l[6].kind == SN_LAYER_ACTIVATION && l[6].activation == SN_ACT_SIGMOID);
    CHECK(l[7].kind == SN_LAYER_MULTIPLY && l[7].n_inputs == 2);
    CHECK(l[8].kind == SN_LAYER_CONCAT && l[8].axis == -1 && l[8].n_inputs == 3);
    CHECK_STR(l[8].inputs[2], "input");
    CHECK(l[9].kind == SN_LAYER_RESHAPE && l[9].target_rank == 3);
    CHECK(l[9].target_shape[0] == 4 && l[9].target_shape[1] == 4 && l[9].target_shape[2] == -1);
    CHECK_STR(l[9].inputs[0], "cat");
    CHECK(l[10].kind == SN_LAYER_GLOBAL_AVG_POOL2D);
    CHECK_STR(l[12].name, "dense4"); /* h1, b and a are dense too */
    /* b (3) waits for a (4); the rest keeps the list order. */
    static const int want[13] = {0, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10, 11, 12};
    CHECK(s->order != NULL);
    for (int i = 0; s->order && i < 13; i++) CHECK(s->order[i] == want[i]);
  }
  CHECK(s->loss == SN_LOSS_BCE && !s->from_logits);
  CHECK(s->optimizer == SN_OPT_ADAMW && s->weight_decay == 0.01 && s->learning_rate == 0.001);
  CHECK(s->schedule.kind == SN_SCHED_COSINE && s->schedule.warmup_epochs == 0.5);
  CHECK(!s->early.enabled);
  sn_spec_free(s);
}

static void test_regress_spec(void) {
  sn_spec *s;
  char *diag = load("parse/ok_regress.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  const sn_source *tr = &s->data.train, *va = &s->data.validation;
  CHECK(tr->kind == SN_SRC_CSV && tr->header && tr->label_index == -1);
  CHECK_STR(tr->path, "/data/houses.csv");
  CHECK_STR(tr->label_col, "price");
  CHECK(va->kind == SN_SRC_CSV && va->label_index == -1 && va->header);
  CHECK_STR(va->label_col, "");
  CHECK(s->data.standardize && s->data.n_norm == 0 && s->data.scale == 1);
  CHECK(s->layers[0].kernel_init == SN_INIT_GLOROT_NORMAL);
  CHECK(s->loss == SN_LOSS_HUBER && s->huber_delta == 2);
  CHECK(s->optimizer == SN_OPT_RMSPROP && s->learning_rate == 0.001 && s->rho == 0.95);
  CHECK(s->momentum == 0.5 && s->epsilon == 1e-6 && s->clip_grad_norm == 0);
  CHECK(s->schedule.kind == SN_SCHED_EXPONENTIAL && s->schedule.gamma == 0.9);
  CHECK(s->early.enabled && s->early.patience == 4 && !s->early.restore_best);
  CHECK_STR(s->early.monitor, "val_mae");
  CHECK(s->n_metrics == 2 && s->metric_kind[0] == SN_METRIC_MSE);
  CHECK(s->metric_kind[1] == SN_METRIC_MAE && !s->shuffle);
  sn_spec_free(s);
}

static void test_text_spec(void) {
  sn_spec *s;
  char *diag = load("parse/ok_text.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s != NULL);
  if (!s) return;
  const sn_source *tr = &s->data.train, *te = &s->data.test;
  CHECK(tr->kind == SN_SRC_TEXT && tr->text_mode == SN_TEXT_LM && tr->tokenizer == SN_TOK_CHARS);
  CHECK(tr->context == 32 && tr->windows == 500 && tr->stride == 0 && tr->range[0] == 0 &&
        tr->range[1] == 0.8);
  CHECK_STR(tr->path, "/data/corpus");
  CHECK(te->kind == SN_SRC_TEXT && te->tokenizer == SN_TOK_BYTES && te->stride == 16 &&
        te->windows == 0);
  CHECK(s->data.validation_split == 0.1 && s->pad_id == -1);
  CHECK(s->n_metrics == 3 && s->metric_kind[1] == SN_METRIC_PERPLEXITY &&
        s->metric_kind[2] == SN_METRIC_BITS_PER_TOKEN);
  sn_spec_free(s);
  /* classify pads with id 0, which the spec tells the layers */
  static const char *const sets[] = {
      "data.train={format: text, path: /data/corpus, mode: classify, length: 8}",
      "model.input=[8]"};
  free(load("parse/ok_text.yaml", sets, 2, &s, NULL));
  CHECK(s != NULL && s->data.train.text_mode == SN_TEXT_CLASSIFY && s->data.train.length == 8 &&
        s->pad_id == 0);
  sn_spec_free(s);
}

static void test_defaults_full(void) {
  sn_spec *s;
  free(load("parse/ok_defaults.yaml", NULL, 0, &s, NULL));
  CHECK(s != NULL);
  if (!s) return;
  CHECK(s->huber_delta == 1.0 && s->weight_decay == 0 && s->momentum == 0 && !s->nesterov);
  CHECK(s->clip_grad_norm == 0 && s->schedule.kind == SN_SCHED_CONSTANT && !s->early.enabled);
  CHECK(s->sweep.kind == SN_SWEEP_NONE && s->order && s->order[0] == 0);
  CHECK(s->layers[0].n_inputs == 1 && !strcmp(s->layers[0].inputs[0], "input"));
  CHECK(s->schedule_loc.line == 11); /* train's, when there is no schedule */
  sn_spec_free(s);
  /* Per optimizer, Keras's defaults. */
  const char *sets[] = {"train.optimizer=sgd"};
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->optimizer == SN_OPT_SGD && s->learning_rate == 0.01 && s->momentum == 0);
  sn_spec_free(s);
  sets[0] = "train.optimizer=rmsprop";
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->optimizer == SN_OPT_RMSPROP && s->learning_rate == 0.001 && s->rho == 0.9);
  CHECK(s && s->epsilon == 1e-7);
  sn_spec_free(s);
  sets[0] = "train.optimizer=adamw";
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->optimizer == SN_OPT_ADAMW && s->weight_decay == 0.004 && s->beta2 == 0.999);
  sn_spec_free(s);
  sets[0] = "train.early_stopping={}";
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->early.enabled && s->early.restore_best && s->early.patience == 0);
  CHECK(s && !strcmp(s->early.monitor, "loss")); /* no validation data */
  sn_spec_free(s);
  sets[0] = "train.metrics=[top_k_accuracy]";
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->metric_kind[0] == SN_METRIC_TOP_K && s->metric_k[0] == 5);
  sn_spec_free(s);
  sets[0] = "train.loss=huber";
  free(load("parse/ok_defaults.yaml", sets, 1, &s, NULL));
  CHECK(s && s->loss == SN_LOSS_HUBER && s->huber_delta == 1.0);
  sn_spec_free(s);
}

static void test_sweep_specs(void) {
  sn_spec *s;
  char *diag = load("parse/ok_sweep.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s && s->sweep.kind == SN_SWEEP_GRID && s->sweep.n_axes == 3);
  if (s && s->sweep.n_axes == 3) {
    const sn_sweep_axis *ax = s->sweep.axes;
    CHECK_STR(ax[0].key, "train.optimizer.adam.learning_rate");
    CHECK(ax[0].n_values == 3 && ax[0].loc.line == 17 && ax[0].loc.col == 5);
    CHECK_STR(ax[0].values[0], "1e-3");
    CHECK_STR(ax[0].values[2], "0.01");
    CHECK_STR(ax[1].values[0], "0.0");
    CHECK_STR(ax[2].key, "data.validation");
    CHECK_STR(ax[2].values[0], "{split: 0.2}");
    CHECK_STR(ax[2].values[1], "mnist:test");
    CHECK_STR(s->sweep.metric, "val_accuracy");
    CHECK(s->sweep.maximize && s->sweep.loc.line == 16);
  }
  sn_spec_free(s);

  diag = load("parse/ok_sweep_random.yaml", NULL, 0, &s, NULL);
  CHECK_STR(diag, "");
  free(diag);
  CHECK(s && s->sweep.kind == SN_SWEEP_RANDOM && s->sweep.count == 20 && s->sweep.n_axes == 3);
  if (s && s->sweep.n_axes == 3) {
    const sn_sweep_axis *ax = s->sweep.axes;
    CHECK(ax[0].lo == 1e-4 && ax[0].hi == 1e-1 && ax[0].log && !ax[0].integer);
    CHECK_STR(ax[1].key, "train.batch_size");
    CHECK(ax[1].lo == 8 && ax[1].hi == 128 && ax[1].log && ax[1].integer);
    CHECK_STR(s->sweep.metric, "loss"); /* no validation data */
    CHECK(!s->sweep.maximize);
  }
  sn_spec_free(s);

  /* Defaults: the metric follows the data, the direction the metric. */
  const char *sets[] = {"sweep.metric=accuracy"};
  free(load("parse/ok_sweep_random.yaml", sets, 1, &s, NULL));
  CHECK(s && s->sweep.maximize == false); /* mode: min in the file wins */
  sn_spec_free(s);
  const char *sets2[] = {"sweep={grid: {train.epochs: [1, 2]}}"};
  free(load("parse/ok_sweep.yaml", sets2, 1, &s, NULL));
  CHECK(s && !strcmp(s->sweep.metric, "val_loss") && !s->sweep.maximize);
  sn_spec_free(s);
  const char *sets3[] = {"sweep={grid: {train.epochs: [1, 2]}, metric: val_accuracy}"};
  free(load("parse/ok_sweep.yaml", sets3, 1, &s, NULL));
  CHECK(s && s->sweep.maximize);
  sn_spec_free(s);
}

static void test_enum_names(void) {
  CHECK_STR(sn_act_name(SN_ACT_GELU), "gelu");
  CHECK_STR(sn_act_name(SN_ACT_LEAKY_RELU), "leaky_relu");
  CHECK_STR(sn_act_name((sn_act)99), "?");
  CHECK_STR(sn_layer_kind_name(SN_LAYER_GLOBAL_AVG_POOL2D), "global_avg_pool2d");
  CHECK_STR(sn_layer_kind_name(SN_LAYER_ACTIVATION), "activation");
  CHECK_STR(sn_layer_kind_name(SN_LAYER_MULTIPLY), "multiply");
  CHECK_STR(sn_loss_name(SN_LOSS_HUBER), "huber");
  CHECK_STR(sn_optimizer_name(SN_OPT_RMSPROP), "rmsprop");
  CHECK_STR(sn_init_name(SN_INIT_UNIFORM), "uniform");
  CHECK_STR(sn_schedule_name(SN_SCHED_COSINE), "cosine");
}

/* The largest graphs: a chain written backwards (each layer names the one after
 * it, the last layer the first) orders in reverse; closing the chain into one loop
 * of 4096 layers is one error. */
static void test_big_graph(void) {
  enum { N = 4096 };
  size_t cap = 64 * (size_t)N + 512;
  char *text = malloc(cap);
  for (int loop = 0; loop <= 1; loop++) {
    int k = snprintf(text, cap,
                     "specnet: 1\nname: big\ndata: {train: mnist:train}\n"
                     "train: {loss: mse}\nmodel:\n  input: [4]\n  layers:\n");
    for (int i = 0; i < N; i++) {
      char in[16];
      snprintf(in, sizeof in, "l%d", i == N - 1 ? 0 : i + 1);
      if (i == N - 2) snprintf(in, sizeof in, "%s", loop ? "l4095" : "input");
      k +=
          snprintf(text + k, cap - (size_t)k, "    - {name: l%d, relu: {}, inputs: [%s]}\n", i, in);
    }
    sn_diag d = {0};
    sn_node *root = sn_yaml_parse_string(text, "big.yaml", &d);
    sn_spec *s = root ? sn_spec_from_tree(root, "big.yaml", &d) : NULL;
    if (!loop) {
      CHECK(s && s->order && s->order[0] == N - 2 && s->order[N - 2] == 0);
      CHECK(s && s->order && s->order[N - 1] == N - 1);
      CHECK(d.n == 0);
    } else {
      CHECK(s == NULL && d.errors == 1);
      CHECK(d.n == 1 && !strcmp(d.v[0].msg, "cycle: layer 'l0' (line 8) and layer 'l1' (line 9) "
                                            "feed each other"));
      /* The loop through every layer, cut to one line. */
      CHECK(d.n == 1 && d.v[0].hint && strlen(d.v[0].hint) < 530 &&
            !strncmp(d.v[0].hint, "the loop: l0 -> l4095 -> l4094 -> ", 34) &&
            !strcmp(d.v[0].hint + strlen(d.v[0].hint) - 3, "..."));
    }
    sn_spec_free(s);
    sn_diag_free(&d);
  }
  free(text);
}

/* ---------------------------------------------------------------------------
 * The resolved spec reads back as the same spec */

/* A path as the resolved spec writes it when the file does not exist. */
static bool same_path(const char *a, const char *b) {
  if (!strcmp(a, b)) return true;
  char cwd[4096], joined[8192];
  if (a[0] == '/' || !getcwd(cwd, sizeof cwd)) return false;
  snprintf(joined, sizeof joined, "%s/%s", cwd, a);
  return !strcmp(joined, b);
}

static void same_source(const sn_source *a, const sn_source *b) {
  CHECK(a->kind == b->kind && a->limit == b->limit && a->seed == b->seed);
  CHECK(!strcmp(a->name, b->name) && !strcmp(a->split, b->split));
  CHECK(same_path(a->images, b->images) && same_path(a->labels, b->labels));
  CHECK(same_path(a->path, b->path) && !strcmp(a->label_col, b->label_col));
  CHECK(a->label_index == b->label_index && a->header == b->header);
  CHECK(a->samples == b->samples && a->classes == b->classes && a->features == b->features);
  CHECK(a->noise == b->noise);
}

static void same_spec(const sn_spec *a, const sn_spec *b) {
  CHECK(a->version == b->version && !strcmp(a->name, b->name) && a->seed == b->seed);
  same_source(&a->data.train, &b->data.train);
  same_source(&a->data.test, &b->data.test);
  same_source(&a->data.validation, &b->data.validation);
  const sn_data_spec *da = &a->data, *db = &b->data;
  CHECK(da->validation_split == db->validation_split && da->scale == db->scale);
  CHECK(da->n_norm == db->n_norm && da->standardize == db->standardize);
  for (int i = 0; i < da->n_norm; i++)
    CHECK(da->norm_mean[i] == db->norm_mean[i] && da->norm_std[i] == db->norm_std[i]);
  CHECK(a->input_rank == b->input_rank);
  for (int i = 0; i < a->input_rank; i++) CHECK(a->input_shape[i] == b->input_shape[i]);
  CHECK(a->n_layers == b->n_layers);
  for (int i = 0; i < a->n_layers && i < b->n_layers; i++) {
    const sn_layer_spec *x = &a->layers[i], *y = &b->layers[i];
    CHECK(x->kind == y->kind && !strcmp(x->name, y->name) && x->units == y->units);
    CHECK(x->activation == y->activation && x->alpha == y->alpha && x->use_bias == y->use_bias);
    CHECK(x->kernel_init == y->kernel_init && x->kernel_init_arg == y->kernel_init_arg);
    CHECK(x->bias_init == y->bias_init && x->bias_init_arg == y->bias_init_arg);
    CHECK(x->n_inputs == y->n_inputs);
    for (int k = 0; k < x->n_inputs; k++) CHECK(!strcmp(x->inputs[k], y->inputs[k]));
    CHECK(x->filters == y->filters && x->padding == y->padding);
    CHECK(!memcmp(x->kernel_size, y->kernel_size, sizeof x->kernel_size));
    CHECK(!memcmp(x->pool_size, y->pool_size, sizeof x->pool_size));
    CHECK(!memcmp(x->strides, y->strides, sizeof x->strides));
    CHECK(x->target_rank == y->target_rank);
    for (int k = 0; k < x->target_rank; k++) CHECK(x->target_shape[k] == y->target_shape[k]);
    CHECK(x->rate == y->rate && x->momentum == y->momentum && x->epsilon == y->epsilon);
    CHECK(x->vocab == y->vocab && x->dim == y->dim && x->axis == y->axis);
    CHECK(a->order && b->order && a->order[i] == b->order[i]);
  }
  CHECK(a->loss == b->loss && a->from_logits == b->from_logits);
  CHECK(a->huber_delta == b->huber_delta && a->optimizer == b->optimizer);
  CHECK(a->learning_rate == b->learning_rate && a->beta1 == b->beta1 && a->beta2 == b->beta2);
  CHECK(a->epsilon == b->epsilon && a->weight_decay == b->weight_decay);
  CHECK(a->momentum == b->momentum && a->nesterov == b->nesterov && a->rho == b->rho);
  CHECK(a->clip_grad_norm == b->clip_grad_norm);
  CHECK(!memcmp(&a->schedule, &b->schedule, sizeof a->schedule));
  CHECK(a->early.enabled == b->early.enabled && !strcmp(a->early.monitor, b->early.monitor));
  CHECK(a->early.patience == b->early.patience && a->early.min_delta == b->early.min_delta);
  CHECK(a->early.restore_best == b->early.restore_best);
  CHECK(a->batch_size == b->batch_size && a->epochs == b->epochs && a->shuffle == b->shuffle);
  CHECK(a->n_metrics == b->n_metrics);
  for (int i = 0; i < a->n_metrics; i++) {
    CHECK(!strcmp(a->metrics[i], b->metrics[i]) && a->metric_kind[i] == b->metric_kind[i]);
    CHECK(a->metric_k[i] == b->metric_k[i]);
  }
  CHECK(a->n_expect == b->n_expect);
  for (int i = 0; i < a->n_expect && i < b->n_expect; i++) {
    const sn_expect_spec *x = &a->expect[i], *y = &b->expect[i];
    CHECK(!strcmp(x->key, y->key) && x->has_min == y->has_min && x->has_max == y->has_max);
    CHECK(x->min == y->min && x->max == y->max && x->max_rel_error == y->max_rel_error);
    CHECK(!strcmp(x->contains, y->contains));
  }
  const sn_sweep_spec *sa = &a->sweep, *sb = &b->sweep;
  CHECK(sa->kind == sb->kind && sa->n_axes == sb->n_axes && sa->count == sb->count);
  CHECK(!strcmp(sa->metric, sb->metric) && sa->maximize == sb->maximize);
  for (int i = 0; i < sa->n_axes; i++) {
    const sn_sweep_axis *x = &sa->axes[i], *y = &sb->axes[i];
    CHECK(!strcmp(x->key, y->key) && x->n_values == y->n_values);
    for (int k = 0; k < x->n_values; k++) CHECK(!strcmp(x->values[k], y->values[k]));
    CHECK(x->lo == y->lo && x->hi == y->hi && x->log == y->log && x->integer == y->integer);
  }
}

static char *resolved_text(const sn_spec *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sn_spec_write_resolved(s, f);
  fclose(f);
  char *body = strchr(buf, '\n'); /* past the comment that names the file */
  memmove(buf, body + 1, strlen(body + 1) + 1);
  return buf;
}

static void test_round_trip(void) {
  static const char *const files[] = {
      "parse/ok_seed.yaml",  "parse/ok_defaults.yaml",     "parse/ok_forms.yaml",
      "parse/ok_cnn.yaml",   "parse/ok_graph.yaml",        "parse/ok_regress.yaml",
      "parse/ok_sweep.yaml", "parse/ok_sweep_random.yaml", "parse/ok_text.yaml"};
  char dir[] = "/tmp/test_parse_rt.XXXXXX";
  if (!mkdtemp(dir)) {
    failures++;
    fprintf(stderr, "FAILED: mkdtemp\n");
    return;
  }
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    sn_spec *a, *b;
    free(load(files[i], NULL, 0, &a, NULL));
    CHECK(a != NULL);
    if (!a) continue;
    char *text = resolved_text(a), path[256];
    snprintf(path, sizeof path, "%s/resolved%zu.yaml", dir, i);
    write_file(path, text, strlen(text));
    int errors;
    char *diag = load(path, NULL, 0, &b, &errors);
    CHECK(b != NULL && errors == 0);
    if (!b) fprintf(stderr, "%s resolved:\n%s%s", files[i], text, diag);
    if (b) {
      same_spec(a, b);
      char *again = resolved_text(b); /* a fixed point */
      CHECK_STR(again, text);
      free(again);
    }
    free(diag);
    free(text);
    sn_spec_free(a);
    sn_spec_free(b);
    unlink(path);
  }
  rmdir(dir);

  /* What one resolved layer list looks like. */
  sn_spec *s;
  free(load("parse/ok_graph.yaml", NULL, 0, &s, NULL));
  char *text = s ? resolved_text(s) : NULL;
  CHECK(text && strstr(text, "    - name: b\n      inputs: [a]\n      dense: {units: 32, "
                             "activation: linear, use_bias: true, kernel_init: glorot_uniform, "
                             "bias_init: zeros}\n"));
  CHECK(text && strstr(text, "      embedding: {vocab: 1000, dim: 8, kernel_init: {uniform: "
                             "{limit: 0.05}}}\n"));
  CHECK(text && strstr(text, "  schedule: {cosine: {warmup_epochs: 0.5}}\n"));
  free(text);
  sn_spec_free(s);
}

/* ---------------------------------------------------------------------------
 * Inputs that are generated rather than kept as fixtures */

static char tmpdir[] = "/tmp/test_parse.XXXXXX";

static char *tmp_path(const char *name) {
  size_t n = strlen(tmpdir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", tmpdir, name);
  return p;
}

/* Writes `data` to a temp file, loads it as a spec, and compares the diagnostics
 * with `want`, in which every "%s" is the file's path. */
static void expect_file_diag(const char *name, const void *data, size_t len, const char *want) {
  char *path = tmp_path(name);
  write_file(path, data, len);
  char expected[1024];
  snprintf(expected, sizeof expected, want, path, path, path);
  sn_spec *s;
  char *got = load(path, NULL, 0, &s, NULL);
  CHECK_STR(got, expected);
  CHECK(s == NULL);
  sn_spec_free(s);
  free(got);
  unlink(path);
  free(path);
}

static void test_generated_files(void) {
  if (!mkdtemp(tmpdir)) {
    failures++;
    fprintf(stderr, "FAILED: mkdtemp\n");
    return;
  }
  expect_file_diag("empty.yaml", "", 0, "%s:1:1: error: the file is empty (no YAML document)\n");

  static const char bad_utf8[] = "specnet: 1\nname: caf\xC3\xA9\xFF\n";
  expect_file_diag("utf8.yaml", bad_utf8, sizeof bad_utf8 - 1,
                   "%s:2:11: error: not valid UTF-8: invalid leading UTF-8 octet (byte 0xFF)\n"
                   "%s:2:11: hint: specs must be UTF-8 text\n");

  static const char truncated[] = "specnet: 1\nname: \xC3";
  expect_file_diag("utf8b.yaml", truncated, sizeof truncated - 1,
                   "%s:2:7: error: not valid UTF-8: incomplete UTF-8 octet sequence\n"
                   "%s:2:7: hint: specs must be UTF-8 text\n");

  size_t big = ((size_t)16 << 20) + 1;
  char *blob = malloc(big);
  memset(blob, '#', big);
  expect_file_diag("big.yaml", blob, big, "%s: error: the file is larger than 16 MiB\n");
  free(blob);

  char *missing = tmp_path("missing.yaml");
  char expected[1024];
  snprintf(expected, sizeof expected, "%s: error: cannot open file: No such file or directory\n",
           missing);
  char *got = load(missing, NULL, 0, NULL, NULL);
  CHECK_STR(got, expected);
  free(got);
  free(missing);

  rmdir(tmpdir);
}

/* Nesting: 64 levels are fine (the top mapping is one), the 65th is an error at
 * its own column; also when an alias would carry a subtree past the limit. */
static void test_depth(void) {
  char text[256];
  for (int levels = 64; levels <= 65; levels++) {
    int k = snprintf(text, sizeof text, "a: ");
    for (int i = 1; i < levels; i++) text[k++] = '[';
    for (int i = 1; i < levels; i++) text[k++] = ']';
    text[k] = '\0';
    char *got = yaml_diag(text, "deep.yaml");
    CHECK_STR(got, levels == 64 ? "" : "deep.yaml:1:67: error: nesting deeper than 64 levels\n");
    free(got);
  }
  /* *a is 4 levels: inside the top mapping and 59 lists it fits, in 60 it does not. */
  for (int lists = 59; lists <= 60; lists++) {
    int k = snprintf(text, sizeof text, "a: &a [[[[x]]]]\nb: ");
    for (int i = 0; i < lists; i++) text[k++] = '[';
    k += snprintf(text + k, sizeof text - k, "*a");
    for (int i = 0; i < lists; i++) text[k++] = ']';
    text[k] = '\0';
    char *got = yaml_diag(text, "deep.yaml");
    CHECK_STR(got, lists == 59 ? ""
                               : "deep.yaml:2:64: error: nesting deeper than 64 levels (alias "
                                 "'*a' expanded)\n");
    free(got);
  }
}

/* A billion laughs: each level multiplies by ten; refused before any copying. */
static void test_alias_bomb(void) {
  char text[2048];
  int k = snprintf(text, sizeof text, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
  for (int i = 1; i < 9; i++) {
    k += snprintf(text + k, sizeof text - k, "l%d: &l%d [", i, i);
    for (int j = 0; j < 10; j++)
      k += snprintf(text + k, sizeof text - k, "%s*l%d", j ? ", " : "", i - 1);
    k += snprintf(text + k, sizeof text - k, "]\n");
  }
  char *got = yaml_diag(text, "bomb.yaml");
  CHECK_STR(got, "bomb.yaml:5:45: error: aliases expand to more than 100000 nodes\n");
  free(got);

  /* Many small aliases: the count of uses is bounded too. */
  k = snprintf(text, sizeof text, "a: &a 1\nb: [");
  for (int j = 0; j < 101; j++) k += snprintf(text + k, sizeof text - k, "%s*a", j ? "," : "");
  snprintf(text + k, sizeof text - k, "]\n");
  got = yaml_diag(text, "many.yaml");
  CHECK_STR(got, "many.yaml:2:305: error: more than 100 aliases in one document\n");
  free(got);

  /* Within the budget, an alias is a copy with the anchor's positions. */
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string("base: &h {units: 64}\nx: *h\n", "a.yaml", &d);
  CHECK(root && d.n == 0);
  const sn_node *x = sn_node_get(root, "x");
  CHECK(x && x->kind == SN_NODE_MAP && x != sn_node_get(root, "base"));
  CHECK(x && x->loc.line == 1 && x->loc.col == 7); /* a node starts at its anchor */
  sn_node_free(root);
  sn_diag_free(&d);
}

static void test_yaml_errors(void) {
  struct {
    const char *text, *want;
  } cases[] = {
      {"a: 1\nb: [1, 2\n",
       "y.yaml:3:1: error: invalid YAML: did not find expected ',' or ']' (while parsing a "
       "flow sequence at line 2)\n"},
      {"a: 1\n  b: 2\n", "y.yaml:2:4: error: invalid YAML: mapping values are not allowed in "
                         "this context\n"},
      {"x: 1\ny: {x: 1, x: 2}\nx: 3\n",
       "y.yaml:2:11: error: duplicate key 'x' (first defined at line 2)\n"
       "y.yaml:3:1: error: duplicate key 'x' (first defined at line 1)\n"},
      {"? [a]\n: 1\n", "y.yaml:1:3: error: mapping keys must be scalars, not lists\n"},
      {"a: *b\n", "y.yaml:1:4: error: unknown alias '*b' (no anchor '&b' before it)\n"},
      {"a: &b [1, *b]\n", "y.yaml:1:11: error: alias '*b' refers to a node that contains it\n"},
      {"a: 1\n---\nb: 2\n", "y.yaml:2:1: error: a second YAML document; a spec is one "
                            "document\n"},
      {"a: !!python/object x\n", "y.yaml:1:4: error: YAML tag '!!python/object' is not "
                                 "supported\n"},
      {"<<: {a: 1}\n", "y.yaml:1:1: error: merge keys ('<<') are not supported; write the "
                       "keys out\n"},
      {"a: \"x\\0y\"\n", "y.yaml:1:4: error: NUL characters are not allowed in scalars\n"},
      {"a: \x01\n", "y.yaml:1:4: error: invalid character: control characters are not "
                    "allowed (U+0001)\n"},
      {"# nothing\n", "y.yaml:1:1: error: empty YAML value\n"},
      {"a: !!str 10\nb: '10'\nc: 10\n", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *got = yaml_diag(cases[i].text, "y.yaml");
    CHECK_STR(got, cases[i].want);
    free(got);
  }

  /* A duplicate-keyed mapping big enough for the hash path. */
  char text[4096];
  int k = 0;
  for (int i = 0; i < 100; i++) k += snprintf(text + k, sizeof text - k, "k%d: %d\n", i, i);
  snprintf(text + k, sizeof text - k, "k42: again\n");
  char *got = yaml_diag(text, "h.yaml");
  CHECK_STR(got, "h.yaml:101:1: error: duplicate key 'k42' (first defined at line 43)\n");
  free(got);

  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string("a: !!str 10\nb: '10'\nc: 10\nd:\n", "t.yaml", &d);
  CHECK(root && sn_node_get(root, "a")->quoted && sn_node_get(root, "b")->quoted);
  CHECK(root && !sn_node_get(root, "c")->quoted);
  CHECK(root && sn_node_get(root, "missing") == NULL && sn_node_get(NULL, "a") == NULL);
  const sn_node *c = root ? sn_node_get(root, "c") : NULL;
  CHECK(c && c->loc.line == 3 && c->loc.col == 4 && !strcmp(c->loc.file, "t.yaml"));
  sn_node_free(root);
  sn_diag_free(&d);
}

/* The runtime's fourth generator; unlike spirals and xor it works in 1-D. */
static void test_synthetic_linear(void) {
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string(
      "specnet: 1\nname: lin\ndata: {train: {synthetic: linear, features: 1, classes: 3}}\n"
      "model: {input: [1], layers: [{dense: {units: 3}}]}\n"
      "train: {loss: sparse_categorical_crossentropy}\n",
      "lin.yaml", &d);
  sn_spec *s = root ? sn_spec_from_tree(root, "lin.yaml", &d) : NULL;
  CHECK(s && s->data.train.kind == SN_SRC_SYNTHETIC && s->data.train.features == 1);
  CHECK(s && !strcmp(s->data.train.name, "linear") && s->data.train.classes == 3);
  CHECK(d.n == 0);
  sn_spec_free(s);
  sn_diag_free(&d);
}

/* Fixed-size fields of sn_spec and sn_source: too long is an error, not a cut. */
static void test_long_strings(void) {
  enum { LONG = 5000 };
  char *text = malloc(LONG + 512);
  int k = snprintf(text, LONG + 512,
                   "specnet: 1\nname: n\nmodel: {input: [2], layers: [softmax]}\n"
                   "train: {loss: sparse_categorical_crossentropy}\n"
                   "data: {train: {format: idx, labels: l, images: ");
  memset(text + k, 'p', LONG);
  snprintf(text + k + LONG, 512, "}}\n");
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string(text, "long.yaml", &d);
  sn_spec *s = root ? sn_spec_from_tree(root, "dir/long.yaml", &d) : NULL;
  CHECK(s == NULL);
  char *got = sn_diag_text(&d);
  CHECK_STR(got, "long.yaml:5:48: error: images path is too long (5004 bytes; at most 4095)\n");
  free(got);
  sn_diag_free(&d);
  /* a source whose key is `path` itself: "path is too long", not "path path" */
  k = snprintf(text, LONG + 512,
               "specnet: 1\nname: n\nmodel: {input: [2], layers: [softmax]}\n"
               "train: {loss: sparse_categorical_crossentropy}\n"
               "data: {train: {format: csv, path: ");
  memset(text + k, 'p', LONG);
  snprintf(text + k + LONG, 512, "}}\n");
  d = (sn_diag){0};
  root = sn_yaml_parse_string(text, "long.yaml", &d);
  s = root ? sn_spec_from_tree(root, "dir/long.yaml", &d) : NULL;
  CHECK(s == NULL);
  got = sn_diag_text(&d);
  CHECK_STR(got, "long.yaml:5:35: error: path is too long (5004 bytes; at most 4095)\n");
  free(got);
  sn_diag_free(&d);
  free(text);
}

/* ---------------------------------------------------------------------------
 * Writing YAML */

static char *write_text(const sn_node *n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sn_node_write(n, f);
  fclose(f);
  return buf;
}

static bool same_tree(const sn_node *a, const sn_node *b) {
  if (a->kind != b->kind || a->n != b->n) return false;
  if (a->kind == SN_NODE_SCALAR) return !strcmp(a->text, b->text) && a->quoted == b->quoted;
  for (int i = 0; i < a->n; i++)
    if ((a->keys && !same_tree(a->keys[i], b->keys[i])) || !same_tree(a->items[i], b->items[i]))
      return false;
  return true;
}

static void test_write(void) {
  sn_diag d = {0};
  const char *src = "s: [\"10\", 'true', '', ~, 'a: b', '- x', '#c', \"tab\\there\", \"q\\\"\", "
                    "-1, -x, x#y, caf\xC3\xA9]\n"
                    "m: {}\n"
                    "l: []\n"
                    "nested: [[1, 2], {k: v, j: [3]}]\n"
                    "block: |\n  two\n  lines\n";
  sn_node *root = sn_yaml_parse_string(src, "w.yaml", &d);
  CHECK(root != NULL);
  if (!root) return;
  char *text = write_text(root);
  CHECK_STR(text, "s:\n"
                  "  - \"10\"\n"
                  "  - \"true\"\n"
                  "  - \"\"\n"
                  "  - ~\n"
                  "  - \"a: b\"\n"
                  "  - \"- x\"\n"
                  "  - \"#c\"\n"
                  "  - \"tab\\there\"\n"
                  "  - \"q\\\"\"\n"
                  "  - -1\n"
                  "  - -x\n"
                  "  - x#y\n"
                  "  - caf\xC3\xA9\n"
                  "m: {}\n"
                  "l: []\n"
                  "nested:\n"
                  "  - - 1\n"
                  "    - 2\n"
                  "  - k: v\n"
                  "    j:\n"
                  "      - 3\n"
                  "block: \"two\\nlines\\n\"\n");
  sn_node *again = sn_yaml_parse_string(text, "w2.yaml", &d);
  CHECK(again && same_tree(root, again));
  CHECK(d.n == 0);
  sn_node_free(again);
  free(text);
  sn_node_free(root);

  /* The seed spec survives a round trip, and checks the same. */
  root = sn_yaml_parse_file("parse/ok_seed.yaml", &d);
  CHECK(root != NULL);
  if (root) {
    text = write_text(root);
    again = sn_yaml_parse_string(text, "seed-again.yaml", &d);
    CHECK(again && same_tree(root, again));
    sn_spec *s = again ? sn_spec_from_tree(again, "seed-again.yaml", &d) : NULL;
    CHECK(s && s->n_layers == 4 && s->epochs == 10);
    sn_spec_free(s);
    free(text);
    sn_node_free(root);
  }
  CHECK(d.errors == 0);
  sn_diag_free(&d);
}

/* ---------------------------------------------------------------------------
 * diag.c */

static void test_diag(void) {
  const char *keys[] = {"units", "activation", "use_bias", "kernel_init", "bias_init"};
  CHECK_STR(sn_closest("unit", keys, 5), "units");
  CHECK_STR(sn_closest("activaton", keys, 5), "activation");
  CHECK_STR(sn_closest("usebias", keys, 5), "use_bias");
  const char *layers[] = {"dense", "flatten", "relu"};
  CHECK_STR(sn_closest("desne", layers, 3), "dense"); /* a swap is one edit */
  CHECK(sn_closest("conv", layers, 3) == NULL);
  CHECK(sn_closest("x", (const char *[]){"y"}, 1) == NULL); /* never the whole word */
  CHECK(sn_closest("", layers, 3) == NULL);

  sn_diag d = {0};
  char file[] = "spec.yaml"; /* entries keep their own copy of the name */
  sn_diag_error(&d, (sn_loc){file, 7, 9}, "unknown key '%s' in %s", "unit", "dense");
  sn_diag_hint(&d, "did you mean '%s'?", "units");
  sn_diag_warning(&d, (sn_loc){file, 3, 1}, "a warning");
  sn_diag_error(&d, (sn_loc){file, 0, 0}, "cannot open file");
  sn_diag_error(&d, (sn_loc){NULL, 0, 0}, "no file at all");
  file[0] = 'X';
  CHECK(d.errors == 3 && d.warnings == 1 && d.n == 4);
  /* printed in position order, whatever order they were found in */
  char *text = sn_diag_text(&d);
  CHECK_STR(text, "spec.yaml: error: cannot open file\n"
                  "spec.yaml:3:1: warning: a warning\n"
                  "spec.yaml:7:9: error: unknown key 'unit' in dense\n"
                  "spec.yaml:7:9: hint: did you mean 'units'?\n"
                  "specnet: error: no file at all\n");
  free(text);
  CHECK(d.v[0].loc.line == 7); /* printing does not reorder the entries */
  sn_diag_sort(&d, 0);
  CHECK(d.v[0].loc.line == 0);
  text = sn_diag_text(&d);
  CHECK_STR(text, "spec.yaml: error: cannot open file\n"
                  "spec.yaml:3:1: warning: a warning\n"
                  "spec.yaml:7:9: error: unknown key 'unit' in dense\n"
                  "spec.yaml:7:9: hint: did you mean 'units'?\n"
                  "specnet: error: no file at all\n");
  free(text);
  sn_diag_free(&d);
  CHECK(d.n == 0 && d.v == NULL);

  /* each --set is its own "line 1": they print in the order given */
  sn_diag_error(&d, (sn_loc){"--set", 1, 14}, "second");
  sn_diag_error(&d, (sn_loc){"--set", 1, 3}, "third");
  sn_diag_error(&d, (sn_loc){"spec.yaml", 2, 1}, "first");
  text = sn_diag_text(&d);
  CHECK_STR(text, "--set:1:14: error: second\n--set:1:3: error: third\nspec.yaml:2:1: error: first\n");
  free(text);
  sn_diag_free(&d);
}

/* `test_parse --print FILE`: the diagnostics of a fixture as its expected block
 * ("# errors: N" and "# >>> " lines), to write a new fixture's expectations (then
 * read them: the test is only as good as that reading). */
static int print_fixture(const char *path) {
  char *src = read_all(path);
  if (!src) return 2;
  char *sets[MAX_SETS];
  int n_sets = 0, errors;
  for (char *line = strtok(src, "\n"); line; line = strtok(NULL, "\n"))
    if (!strncmp(line, "# set: ", 7) && n_sets < MAX_SETS) sets[n_sets++] = line + 7;
  char *got = load(path, (const char *const *)sets, n_sets, NULL, &errors);
  printf("# errors: %d\n", errors);
  for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) printf("# >>> %s\n", line);
  free(got);
  free(src);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--print")) return print_fixture(argv[2]);
  test_diag();
  test_fixtures();
  test_seed_spec();
  test_defaults();
  test_forms();
  test_alias_spec();
  test_set();
  test_cnn_spec();
  test_graph_spec();
  test_regress_spec();
  test_text_spec();
  test_defaults_full();
  test_sweep_specs();
  test_enum_names();
  test_big_graph();
  test_round_trip();
  test_generated_files();
  test_depth();
  test_alias_bomb();
  test_yaml_errors();
  test_synthetic_linear();
  test_long_strings();
  test_write();
  printf("test_parse: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
