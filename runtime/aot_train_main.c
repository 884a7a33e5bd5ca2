/* The main of a training binary (`specnet build SPEC --train -o PATH`): the
 * runtime plus the spec's compiled train and eval steps. It trains as
 * `specnet train` does, on the spec's data or on files given on its command line,
 * and writes the same run folder (metrics.jsonl, metrics.csv, curves.svg,
 * model.safetensors). No LLVM, no YAML at run time.
 *
 *   PATH [--out DIR] [--epochs N] [--seed N] [--train FILES] [--test FILES]
 *        [--threads N] [--quiet]
 *
 * FILES: a CSV file; X.npy,Y.npy; IMAGES,LABELS (IDX, raw or gzip); or a built-in
 * set as NAME:SPLIT (fashion_mnist:train). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "specnet/aot.h"
#include "specnet/terminal.h"

static int usage(const char *self) {
  fprintf(
      stderr,
      "usage: %s [--out DIR] [--epochs N] [--seed N] [--train FILES] [--test FILES] [--threads N] "
      "[--quiet]\n"
      "  trains the model compiled into this program as `specnet train` would; by default on the\n"
      "  spec's data, written into runs/%s\n"
      "  FILES: data.csv | x.npy,y.npy | images-idx,labels-idx | fashion_mnist:train | text (a "
      "text spec)\n",
      self, sn_aot_train_v1.name);
  return 2;
}

/* A data source from the command line; csv and text settings are kept from the
 * spec's (a text source takes a file, folder or pattern, all of its text). */
static int parse_source(const char *arg, sn_source *src, sn_error *err) {
  sn_source keep = *src;
  memset(src, 0, sizeof *src);
  const char *comma = strchr(arg, ',');
  if (strlen(arg) >= sizeof src->images) return sn_fail(err, "path too long: %.200s", arg);
  if (sn_path_has_suffix(arg, ".csv")) {
    src->kind = SN_SRC_CSV;
    snprintf(src->path, sizeof src->path, "%s", arg);
    src->header = keep.kind == SN_SRC_CSV ? keep.header : true;
    src->label_index = keep.kind == SN_SRC_CSV ? keep.label_index : -1;
    if (keep.kind == SN_SRC_CSV) memcpy(src->label_col, keep.label_col, sizeof src->label_col);
    return 0;
  }
  if (keep.kind == SN_SRC_TEXT && !comma) {
    *src = keep;
    snprintf(src->path, sizeof src->path, "%s", arg);
    src->range[0] = src->range[1] = 0;
    return 0;
  }
  if (comma) {
    size_t n = (size_t)(comma - arg);
    memcpy(src->images, arg, n);
    src->images[n] = 0;
    snprintf(src->labels, sizeof src->labels, "%s", comma + 1);
    src->kind = sn_path_has_suffix(src->images, ".npy") ? SN_SRC_NPY : SN_SRC_IDX;
    return 0;
  }
  const char *colon = strchr(arg, ':');
  if (colon && (size_t)(colon - arg) < sizeof src->name) {
    src->kind = SN_SRC_BUILTIN;
    memcpy(src->name, arg, (size_t)(colon - arg));
    snprintf(src->split, sizeof src->split, "%s", colon + 1);
    return 0;
  }
  return sn_fail(err, "cannot tell the format of '%.200s': give FILE.csv, X.npy,Y.npy, IMAGES,LABELS or NAME:SPLIT",
                 arg);
}


/* --epochs N (0 to 10^9, as specnet train's), --seed S (any 64-bit value) or
 * --threads N (1 to 1024): 0, or -1 with a message. */
static int count_option(const char *self, const char *opt, const char *val, sn_train_opts *to) {
  bool epochs = !strcmp(opt, "--epochs"), threads = !strcmp(opt, "--threads");
  unsigned long long lo = threads, hi = epochs ? 1000000000ull : threads ? 1024 : UINT64_MAX, n;
  if (!sn_parse_count(val, lo, hi, &n)) {
    fprintf(stderr, "%s: error: %s needs a whole number from %llu to %llu, got '%s'\n", self, opt, lo, hi, val);
    return -1;
  }
  if (epochs) to->epochs = (int)n;
  else if (threads) sn_set_threads((int)n);
  else to->seed = (uint64_t)n;
  return 0;
}

int main(int argc, char **argv) {
  const sn_aot_train *info = &sn_aot_train_v1;
  if (info->version != 1) {
    fprintf(stderr, "%s: error: model object version %lld, this runtime reads 1\n", argv[0], (long long)info->version);
    return 1;
  }
  sn_data_config cfg = info->data;
  sn_train_opts to = info->opts;
  to.reporter = sn_terminal_reporter(); /* what specnet train prints */
  char out[4096];
  snprintf(out, sizeof out, "runs/%.127s", info->name);
  sn_error err = {0};
  bool quiet = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(argv[0]);
      return 0;
    } else if (!strcmp(a, "--quiet")) quiet = true;
    else if (!v) {
      fprintf(stderr, "%s: error: %s needs a value (or is unknown)\n", argv[0], a);
      return usage(argv[0]);
    } else if (!strcmp(a, "--out")) snprintf(out, sizeof out, "%s", v), i++;
    else if (!strcmp(a, "--epochs") || !strcmp(a, "--seed") || !strcmp(a, "--threads")) {
      if (count_option(argv[0], a, v, &to)) return 2;
      i++;
    }
    else if (!strcmp(a, "--train") || !strcmp(a, "--test")) {
      sn_source *src = !strcmp(a, "--train") ? &cfg.train : &cfg.test;
      if (parse_source(v, src, &err)) {
        fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
        return 2;
      }
      i++;
    } else {
      fprintf(stderr, "%s: error: unknown argument '%s'\n", argv[0], a);
      return usage(argv[0]);
    }
  }
  sn_model m = info->layout;
  m.params_info = info->params;
  m.n_params = (int)info->n_params;
  const char *names[8];
  for (int k = 0; k < 8; k++) names[k] = info->metric_names[k];
  m.metric_names = names;
  m.grad_step = sn_grad_step;
  m.update = sn_update;
  m.train_step = sn_train_step;
  m.eval_step = sn_eval_step;
  m.predict = sn_predict;
  m.params = m.grads = m.opt_state = m.arena = m.state = NULL;
  sn_data data;
  sn_data_part part;
  static const char *parts[] = {"training data", "validation data", "test data", "preprocessing"};
  if (sn_data_prepare(&cfg, &m, &data, &part, &err)) {
    fprintf(stderr, "%s: error: %s: %s\n", argv[0], parts[part], err.msg);
    sn_data_free(&data);
    return 1;
  }
  int rc = 1;
  if (sn_model_alloc(&m, &err)) goto fail;
  sn_model_init_params(&m, to.seed);
  if (sn_mkdirs(out)) {
    sn_fail(&err, "cannot create %.2000s: %s", out, strerror(errno));
    goto fail;
  }
  char mpath[4200], cpath[4200], spath[4200], wpath[4200];
  snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", out);
  snprintf(cpath, sizeof cpath, "%s/metrics.csv", out);
  snprintf(spath, sizeof spath, "%s/curves.svg", out);
  snprintf(wpath, sizeof wpath, "%s/model.safetensors", out);
  to.metrics_path = mpath;
  to.csv_path = cpath;
  to.curves_path = spath;
  to.title = info->name;
  to.quiet = quiet;
  to.progress = !quiet && isatty(STDERR_FILENO);
  if (to.epochs > 0 &&
      sn_train(&m, &data.train, data.has_val ? &data.val : NULL, data.has_test ? &data.test : NULL, &to, &err))
    goto fail;
  if (sn_safetensors_write(wpath, &m, &err)) goto fail;
  if (!quiet) printf("wrote %s\n", wpath);
  rc = 0;
fail:
  if (rc) fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
  sn_model_free(&m);
  sn_data_free(&data);
  return rc;
}
