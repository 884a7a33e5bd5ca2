/* `specnet predict SPEC --weights FILE --input FILE [--output FILE] [--probs]`:
 * the trained model's answer for every sample of a file, as CSV.
 *
 * Input, by the file name: *.npy (the array of samples, (n, ...)), *.csv (one
 * sample per row), anything else an IDX images file (raw or .gz) or, when the
 * spec's training data is a text source, a text file read as that source reads its
 * files (windows or records), with the training run's vocab.json. A CSV's columns
 * are all features, except when the spec's training data is a CSV too and the file
 * has one column more than the model's input: then that source's label column
 * (by name or position) is dropped, so the training or test CSV itself can be given.
 * A CSV has a header row when its first row has a cell that is not a number.
 *
 * The input gets the spec's preprocessing (scale, normalize, and standardize with
 * the statistics of the spec's training set, which is loaded for that).
 *
 * The input stays as stored (an NPY or IDX file is read a batch at a time) and the
 * output is written a chunk of batches at a time (predict_stream), so memory does
 * not grow with the number of samples; a CSV input is read whole.
 *
 * Output, one line per sample, no header: the class index (argmax) for a
 * categorical loss (one per position, comma-separated, for a sequence output), 0/1 for
 * binary_crossentropy with one output, otherwise the output values; with --probs always the whole
 * output vector (what the model's last layer gives: probabilities after a softmax, logits with
 * from_logits). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A header row: the first non-blank line has a cell that does not read as a number. */
bool csv_has_header(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return false; /* the loader reports it */
  char line[65536];
  bool header = false;
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p) continue;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    for (char *cell = strtok(p, ",\r\n"); cell && !header; cell = strtok(NULL, ",\r\n")) {
      while (*cell == ' ' || *cell == '"') cell++;
      char *end;
      strtod(cell, &end);
      while (*end == ' ' || *end == '"') end++;
      header = end == cell || *end;
    }
    break;
  }
  fclose(f);
  return header;
}

/* The spec's CSV source, if its training data is one. */
static const sn_source *spec_csv(const sn_spec *s) {
  return sn_spec_train_source(s)->kind == SN_SRC_CSV ? sn_spec_train_source(s) : NULL;
}

/* A text file as the spec's text source reads its files, with the chars table of
 * the weights' run (vocab.json), else of the training text. */
static int load_text_input(const sn_spec *s, const char *weights, const char *path,
                           sn_dataset *ds) {
  const sn_source *train_src = sn_spec_train_source(s);
  sn_source src = *train_src;
  snprintf(src.path, sizeof src.path, "%s", path);
  src.range[0] = src.range[1] = 0;
  src.windows = 0; /* a sweep: every window once */
  src.limit = 0;
  sn_error err = {0};
  sn_dataset train = {0};
  uint32_t *chars = NULL;
  int rc = 0;
  if (src.tokenizer == SN_TOK_CHARS) {
    rc = read_vocab(weights, &chars, &src.n_chars, err.msg, sizeof err.msg);
    if (!rc && !chars && !(rc = sn_dataset_load(train_src, &train, &err))) {
      src.chars = train.chars;
      src.n_chars = train.n_chars;
    }
    if (chars) src.chars = chars;
  }
  if (!rc) rc = sn_dataset_load(&src, ds, &err);
  free(chars);
  sn_dataset_free(&train);
  if (rc) fprintf(stderr, "specnet: error: %s\n", err.msg);
  return rc ? EXIT_SPEC : check_text_vocab(s, ds); /* a vocab.json of another model */
}

/* An HDF5 input, FILE.h5 or FILE.h5:/DATASET (also .hdf5): its x dataset is the one
 * named after the colon, else `dataset`. False when path does not name an HDF5 file. */
static bool hdf5_input(const char *path, const char *dataset, sn_source *src) {
  static const char *const suffixes[] = {".h5", ".hdf5"};
  for (int i = 0; i < 2; i++) {
    const char *at = strstr(path, suffixes[i]);
    while (at && at[strlen(suffixes[i])] && at[strlen(suffixes[i])] != ':')
      at = strstr(at + 1, suffixes[i]);
    if (!at) continue;
    const char *end = at + strlen(suffixes[i]);
    src->kind = SN_SRC_HDF5;
    snprintf(src->path, sizeof src->path, "%.*s", (int)(end - path), path);
    snprintf(src->images, sizeof src->images, "%s", *end == ':' ? end + 1 : dataset);
    return true;
  }
  return false;
}

void file_source(const char *path, const char *dataset, sn_source *src) {
  memset(src, 0, sizeof *src);
  src->no_labels = true;
  if (hdf5_input(path, dataset, src)) return;
  if (sn_path_has_suffix(path, ".npy")) {
    src->kind = SN_SRC_NPY;
    snprintf(src->images, sizeof src->images, "%s", path);
  } else if (sn_path_has_suffix(path, ".csv")) {
    src->kind = SN_SRC_CSV;
    snprintf(src->path, sizeof src->path, "%s", path);
    sn_paths p; /* a glob of shards: the first file says whether there is a header */
    sn_error e = {0};
    if (!sn_paths_expand(path, &p, &e)) {
      src->header = csv_has_header(p.v[0]);
      sn_paths_free(&p);
    }
  } else {
    src->kind = SN_SRC_IDX;
    snprintf(src->images, sizeof src->images, "%s", path);
  }
}

static int load_input(const sn_spec *s, const sn_model *m, const char *weights, const char *path,
                      sn_dataset *ds) {
  sn_source src = {.no_labels = true};
  const sn_source *csv = spec_csv(s), *train = sn_spec_train_source(s);
  if (train->kind == SN_SRC_TEXT && !sn_path_has_suffix(path, ".npy") && !sn_path_has_suffix(path, ".csv")) {
    int rc = load_text_input(s, weights, path, ds);
    if (rc) return rc;
  } else {
    file_source(path, train->kind == SN_SRC_HDF5 ? train->images : "", &src);
    if (src.kind == SN_SRC_HDF5 && !src.images[0]) {
      fprintf(stderr, "specnet: error: %s: which dataset? give --input %s:/NAME (the spec's "
                      "training data is not HDF5)\n", path, path);
      return EXIT_SPEC;
    }
  }
  sn_error err = {0};
  int rc = src.kind ? sn_dataset_load(&src, ds, &err) : 0;
  if (src.kind == SN_SRC_CSV && csv && (rc || ds->sample_elems == m->input_elems + 1)) {
    /* the training CSV's layout: drop its label column (read, unused; names
     * allowed), when that gives the model's width */
    sn_source labelled = src;
    sn_dataset alt = {0};
    sn_error alt_err = {0};
    labelled.no_labels = false;
    snprintf(labelled.label_col, sizeof labelled.label_col, "%s", csv->label_col);
    labelled.label_index = csv->label_index;
    labelled.target_elems = m->target_elems == 1 ? 1 : 0;
    if (!sn_dataset_load(&labelled, &alt, &alt_err) && alt.sample_elems == m->input_elems) {
      sn_dataset_free(ds);
      *ds = alt;
      rc = 0;
    } else {
      sn_dataset_free(&alt);
      if (!rc) { /* as wide as the training CSV, but its label column does not read */
        err = alt_err;
        rc = -1;
      }
    }
  }
  if (rc) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    return EXIT_SPEC;
  }
  if (ds->sample_elems != m->input_elems) {
    fprintf(stderr,
            "specnet: error: %s: samples have %lld value%s each, but model.input has %lld "
            "(%s:%d)\n",
            path, (long long)ds->sample_elems, ds->sample_elems == 1 ? "" : "s",
            (long long)m->input_elems, sn_spec_path(s), sn_spec_input_loc(s).line);
    return EXIT_SPEC;
  }
  return 0;
}

/* classes.json beside the weights (written by train when the labels were names):
 * the class names, class k at [k]; NULL without one. A JSON array of strings. */
static char **read_classes(const char *weights, int *n) {
  *n = 0;
  char path[4200];
  const char *slash = strrchr(weights, '/');
  snprintf(path, sizeof path, "%.*sclasses.json", slash ? (int)(slash - weights + 1) : 0, weights);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char **names = NULL, buf[4096];
  int cap = 0, c;
  bool ok = false;
  while ((c = fgetc(f)) != EOF && c != '[') continue;
  while (c != EOF) {
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',') continue;
    if (c == ']') {
      ok = true;
      break;
    }
    if (c != '"') break;
    size_t k = 0;
    while ((c = fgetc(f)) != EOF && c != '"' && k + 1 < sizeof buf) {
      if (c == '\\') {
        c = fgetc(f);
        if (c == 'u') {
          char hex[5] = {0};
          for (int i = 0; i < 4; i++) hex[i] = (char)fgetc(f);
          c = (int)strtol(hex, NULL, 16);
        } else if (c == 'n')
          c = '\n';
        else if (c == 't')
          c = '\t';
      }
      buf[k++] = (char)c;
    }
    if (c != '"') break;
    buf[k] = 0;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      char **g = realloc(names, (size_t)cap * sizeof *names);
      if (!g) break;
      names = g;
    }
    if (!(names[*n] = strdup(buf))) break;
    (*n)++;
  }
  fclose(f);
  if (!ok) {
    fprintf(stderr,
            "specnet: warning: %s is not a JSON array of class names; printing class indices\n",
            path);
    for (int i = 0; i < *n; i++) free(names[i]);
    free(names);
    *n = 0;
    return NULL;
  }
  return names;
}

/* How a row of outputs is written (see the top). */
typedef struct row_writer {
  FILE *f;
  bool argmax, binary;
  double threshold;
  int digits;
  int64_t O, C; /* outputs per sample; scores per position */
  char **names; /* classes.json */
  int n_names;
  const double *tgt_mean, *tgt_std; /* back to the data's units, or NULL */
} row_writer;

static void write_rows(const row_writer *w, double *out, int64_t rows) {
  FILE *f = w->f;
  const int64_t O = w->O, C = w->C;
  for (int64_t i = 0; w->tgt_mean && i < rows * O; i++)
    out[i] = out[i] * w->tgt_std[i % O] + w->tgt_mean[i % O];
  for (int64_t i = 0; i < rows; i++) {
    const double *row = out + i * O;
    if (w->argmax) {
      for (int64_t p = 0; p < O / C; p++) {
        int64_t best = 0;
        for (int64_t k = 1; k < C; k++)
          if (row[p * C + k] > row[p * C + best]) best = k;
        if (best < w->n_names)
          fprintf(f, "%s%s", p ? "," : "", w->names[best]);
        else
          fprintf(f, "%s%lld", p ? "," : "", (long long)best);
      }
      fputc('\n', f);
    } else if (w->binary) {
      fprintf(f, "%d\n", row[0] >= w->threshold);
    } else {
      for (int64_t k = 0; k < O; k++) fprintf(f, "%s%.*g", k ? "," : "", w->digits, row[k]);
      fputc('\n', f);
    }
  }
}

/* The predictions of every sample of `in`, written chunk by chunk: a chunk is a
 * whole number of batches (the batches of one pass over the set, so the values are
 * those of one pass) whose outputs take about 8 MB, so memory stays bounded
 * whatever the number of samples. */
static int predict_stream(sn_model *m, const sn_dataset *in, const row_writer *w, sn_error *err) {
  const int64_t B = m->batch_capacity, O = m->output_elems;
  int64_t batches = ((INT64_C(8) << 20) / (int64_t)sizeof(double) / (O > 0 ? O : 1)) / B;
  const int64_t chunk = (batches > 0 ? batches : 1) * B;
  const int64_t cap = in->n < chunk ? in->n : chunk;
  double *out = malloc((size_t)(cap * O) * sizeof(double) + 1); /* (chunk, O) */
  if (!out) return sn_fail(err, "out of memory for %lld predictions", (long long)cap);
  int rc = 0;
  for (int64_t lo = 0; !rc && lo < in->n; lo += chunk) {
    const int64_t hi = in->n - lo < chunk ? in->n : lo + chunk;
    sn_dataset part = sn_dataset_rows(in, lo, hi);
    rc = sn_predict_all(m, &part, out, err);
    if (!rc) write_rows(w, out, hi - lo);
  }
  free(out);
  if (!rc) rc = sn_dataset_check(in, err);
  return rc;
}

int cmd_predict(const opts *o) {
  if (!o->weights) return usage_error("predict needs --weights FILE");
  if (!o->input) return usage_error("predict needs --input FILE (IDX, .npy or .csv)");
  sn_spec *spec = load_spec(o);
  if (!spec) return EXIT_SPEC;
  session S;
  /* standardize and standardize_targets need the training set's statistics: load
   * the data for them */
  sn_data_config dc;
  sn_spec_data_config(spec, &dc);
  int rc = session_open_with(&S, o, true, dc.standardize || dc.standardize_targets, spec);
  if (rc) {
    session_free(&S);
    return rc;
  }
  const sn_spec *s = S.spec;
  sn_model *m = S.m;
  sn_dataset in = {0};
  FILE *f = NULL;
  char **names = NULL; /* classes.json: the class names, when the labels were names */
  int n_names = 0;
  if ((rc = load_input(s, m, o->weights, o->input, &in)) || (rc = preprocess_set(s, &in)))
    goto done;
  sn_error err = {0};
  if (dc.standardize &&
      sn_dataset_normalize(&in, S.ds.std_mean, S.ds.std_std, S.ds.std_n, &err)) {
    fprintf(stderr, "specnet: error: %s: %s\n", o->input, err.msg);
    rc = EXIT_SPEC;
    goto done;
  }
  f = o->output ? fopen(o->output, "w") : stdout;
  if (!f) {
    fprintf(stderr, "specnet: error: cannot write %s: %s\n", o->output, strerror(errno));
    rc = EXIT_SPEC;
    goto done;
  }
  const int64_t O = m->output_elems;
  row_writer w = {.f = f, .O = O, .C = m->classes > 0 ? m->classes : O,
                  .argmax = !o->probs && sn_spec_loss_targets(s) == SN_TARGETS_CLASSES,
                  .binary = !o->probs && sn_spec_loss_targets(s) == SN_TARGETS_BINARY && O == 1,
                  .threshold = sn_spec_from_logits(s) ? 0.0 : 0.5,
                  .digits = m->dtype == SN_RT_F64 ? 17 : 9, /* enough to read back the same value */
                  .tgt_mean = S.ds.tgt_mean, .tgt_std = S.ds.tgt_std};
  if (w.argmax) names = w.names = read_classes(o->weights, &n_names);
  w.n_names = n_names;
  if (predict_stream(m, &in, &w, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    rc = EXIT_SPEC;
    goto done;
  }
  if (fflush(f) != 0 || ferror(f)) {
    fprintf(stderr, "specnet: error: cannot write %s: %s\n", o->output ? o->output : "the output",
            strerror(errno));
    rc = EXIT_SPEC;
  }
  if (o->output && !o->quiet && rc == 0)
    fprintf(stderr, "wrote %lld predictions to %s\n", (long long)in.n, o->output);
done:
  for (int k = 0; k < n_names; k++) free(names[k]);
  free(names);
  if (f && f != stdout) fclose(f);
  sn_dataset_free(&in);
  session_free(&S);
  return rc;
}
