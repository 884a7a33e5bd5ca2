/* `specnet data SOURCE... [--set KEY=VALUE]`: what a data source holds, without
 * training. A SOURCE is a spec (*.yaml, *.yml: its data.train, data.validation and
 * data.test, after --set) or a data file by its name: *.npy, *.csv, FILE.h5:/DATASET
 * (or .hdf5), anything else
 * an IDX images file (raw or .gz); a quoted glob pattern is one source of shards.
 *
 * For each: the samples, the per-sample shape, the stored element type, the files
 * (shards) and their bytes on disk, the labels (range and count per class) or the
 * float targets (mean and std per column), and the first samples as stored (before
 * preprocessing): their first values, min, max and mean. Samples stay as stored
 * (data_store.c): only the first few are read, so memory stays bounded by the
 * labels (4 bytes a sample) whatever the size of the files; a CSV source is read
 * whole, as training reads it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum { FIRST_SAMPLES = 3, FIRST_VALUES = 8, MAX_CLASSES_SHOWN = 32 };

/* The files of a path field and their bytes; 0 for an empty field. */
static int field_files(const char *list, int64_t *bytes) {
  *bytes = 0;
  if (!list[0]) return 0;
  sn_paths p;
  sn_error err = {0};
  if (sn_paths_expand(list, &p, &err)) return 0;
  for (int i = 0; i < p.n; i++) {
    struct stat st;
    if (stat(p.v[i], &st) == 0) *bytes += (int64_t)st.st_size;
  }
  int n = p.n;
  sn_paths_free(&p);
  return n;
}

static const char *type_name(char kind, int size) {
  static const char *const names[] = {"uint8", "uint16", "uint32", "uint64", "int8",    "int16",
                                      "int32", "int64",  "float16", "float32", "float64"};
  int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
  if (kind == 'i') return names[4 + k];
  if (kind == 'f') return names[8 + (k > 0 ? k - 1 : 0)];
  return names[k];
}

/* Samples, shape, stored type, files and bytes on disk. */
static void print_layout(const sn_source *src, const sn_dataset *ds, FILE *out) {
  fprintf(out, "  samples        %lld\n", (long long)ds->n);
  fprintf(out, "  sample shape   (");
  for (int d = 0; d < ds->rank; d++) fprintf(out, "%s%lld", d ? ", " : "", (long long)ds->shape[d]);
  char kind;
  int size;
  sn_dataset_stored_type(ds, &kind, &size);
  fprintf(out, ")\n  stored as      %s%s\n", type_name(kind, size),
          ds->store ? "" : " (read into memory)");
  int64_t xb = 0, yb = 0;
  const bool one_file = src->kind == SN_SRC_CSV || src->kind == SN_SRC_HDF5; /* path: x and y inside */
  int shards = field_files(one_file ? src->path : src->images, &xb);
  if (!shards && src->kind == SN_SRC_BUILTIN) shards = field_files(ds->origin, &xb); /* found */
  field_files(one_file || src->no_labels ? "" : src->labels, &yb);
  if (shards) {
    fprintf(out, "  files          %d shard%s\n", shards, shards == 1 ? "" : "s");
    fprintf(out, "  bytes on disk  %lld", (long long)(xb + yb));
    if (yb) fprintf(out, " (samples %lld, labels %lld)", (long long)xb, (long long)yb);
    fputc('\n', out);
  }
}

static int cmp_label(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Label range and count per class, or the targets' mean and std per column. */
static void print_labels(const sn_dataset *ds, FILE *out) {
  if (ds->t) {
    const int64_t k = ds->target_elems;
    for (int64_t c = 0; c < k && c < 8; c++) {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < ds->n; i++) sum += ds->t[i * k + c];
      double mean = sum / (double)ds->n;
      for (int64_t i = 0; i < ds->n; i++) sq += (ds->t[i * k + c] - mean) * (ds->t[i * k + c] - mean);
      fprintf(out, "  target %-7lld mean %.6g std %.6g\n", (long long)c, mean, sqrt(sq / (double)ds->n));
    }
    if (k > 8) fprintf(out, "  targets        %lld columns (the first 8 shown)\n", (long long)k);
    return;
  }
  if (!ds->y) return;
  /* counted on a sorted copy: memory by the samples (4 bytes each), not by the
   * largest label, which may be 2^31 - 1 */
  int32_t *y = malloc((size_t)ds->n * sizeof *y);
  if (!y) return;
  memcpy(y, ds->y, (size_t)ds->n * sizeof *y);
  qsort(y, (size_t)ds->n, sizeof *y, cmp_label);
  int present = 0;
  for (int64_t i = 0; i < ds->n; i++) present += i == 0 || y[i] != y[i - 1];
  fprintf(out, "  labels         %d to %d, %d classes present\n", y[0], y[ds->n - 1], present);
  fprintf(out, "  class counts  ");
  int shown = 0;
  for (int64_t i = 0, j; i < ds->n && shown < MAX_CLASSES_SHOWN; i = j, shown++) {
    for (j = i; j < ds->n && y[j] == y[i];) j++;
    if (y[i] >= 0 && y[i] < ds->n_class_names)
      fprintf(out, " %s:%lld", ds->class_names[y[i]], (long long)(j - i));
    else
      fprintf(out, " %d:%lld", y[i], (long long)(j - i));
  }
  fprintf(out, "%s\n", present > shown ? " ..." : "");
  free(y);
}

/* The first samples as stored: first values, min, max, mean. */
static void print_first(const sn_dataset *ds, FILE *out) {
  const int64_t E = ds->sample_elems;
  float *v = malloc((size_t)E * sizeof *v);
  if (!v) return;
  for (int64_t i = 0; i < ds->n && i < FIRST_SAMPLES; i++) {
    sn_dataset_get(ds, i, 1, SN_RT_F32, v);
    double mn = v[0], mx = v[0], sum = 0;
    for (int64_t e = 0; e < E; e++) {
      mn = v[e] < mn ? v[e] : mn;
      mx = v[e] > mx ? v[e] : mx;
      sum += v[e];
    }
    fprintf(out, "  sample %-7lld", (long long)i);
    for (int64_t e = 0; e < E && e < FIRST_VALUES; e++) fprintf(out, " %.7g", v[e]);
    fprintf(out, "%s  min %.7g max %.7g mean %.7g\n", E > FIRST_VALUES ? " ..." : "", mn, mx,
            sum / (double)E);
  }
  free(v);
}

/* The targets the source's y holds when they are not class labels: k per sample. */
static int64_t npy_targets(const sn_source *src) {
  sn_paths p;
  sn_error err = {0};
  if (!src->labels[0] || sn_paths_expand(src->labels, &p, &err)) return 1;
  int nd;
  int64_t shape[8];
  double *d = NULL;
  bool integer;
  int64_t k = 1;
  if (!sn_npy_read(p.v[0], 1, &nd, shape, &d, &integer, &err) && nd == 2) k = shape[1];
  free(d);
  sn_paths_free(&p);
  return k;
}

/* A source loaded as it is: class labels when they read as such, else float
 * targets (of a CSV label column or an NPY y). */
static int load_as_is(const sn_source *given, sn_dataset *ds, sn_error *err) {
  sn_source src = *given;
  src.target_elems = 0;
  if (!sn_dataset_load(&src, ds, err)) return 0;
  if (src.no_labels || (src.kind != SN_SRC_CSV && src.kind != SN_SRC_NPY)) return -1;
  sn_error first = *err;
  src.target_elems = src.kind == SN_SRC_NPY ? npy_targets(&src) : 1;
  if (!sn_dataset_load(&src, ds, err)) return 0;
  *err = first;
  return -1;
}

static int describe(const char *title, const sn_source *src, FILE *out, sn_error *err) {
  sn_dataset ds = {0};
  if (load_as_is(src, &ds, err)) return -1;
  fprintf(out, "%s: %s\n", title, ds.origin);
  print_layout(src, &ds, out);
  print_labels(&ds, out);
  fprintf(out, "  first samples, as stored (before preprocessing):\n");
  print_first(&ds, out);
  sn_dataset_free(&ds);
  return 0;
}

/* A spec's sources, each reported at its line when it does not load. */
static int describe_spec(const opts *o, const char *path, FILE *out) {
  opts one = *o;
  one.spec = path;
  sn_spec *s = load_spec(&one);
  if (!s) return EXIT_SPEC;
  sn_data_config d;
  sn_spec_data_config(s, &d);
  const struct {
    const char *role;
    const sn_source *src;
    sn_data_part part;
  } parts[] = {{"train", &d.train, SN_PART_TRAIN},
               {"validation", &d.validation, SN_PART_VALIDATION},
               {"test", &d.test, SN_PART_TEST}};
  int rc = 0;
  for (int i = 0; i < 3 && !rc; i++) {
    char title[4200];
    snprintf(title, sizeof title, "%s data.%s", path, parts[i].role);
    if (i == 1 && d.validation_split > 0) {
      fprintf(out, "%s: the last %g of data.train\n", title, d.validation_split);
      continue;
    }
    if (parts[i].src->kind == SN_SRC_NONE) continue;
    if (parts[i].src->kind == SN_SRC_TEXT) {
      fprintf(out, "%s: a text source (specnet check describes it)\n", title);
      continue;
    }
    sn_error err = {0};
    if (describe(title, parts[i].src, out, &err)) rc = data_error(s, sn_spec_data_loc(s, parts[i].part), err.msg);
  }
  sn_spec_free(s);
  return rc;
}

/* A data file (or a quoted glob of shards) by its name. */
static int describe_file(const char *path, FILE *out) {
  sn_source src;
  file_source(path, "", &src);
  if (src.kind == SN_SRC_HDF5 && !src.images[0]) {
    fprintf(stderr, "specnet: error: %s: which dataset? name it as %s:/NAME\n", path, path);
    return EXIT_SPEC;
  }
  sn_error err = {0};
  sn_dataset ds = {0};
  if (sn_dataset_load(&src, &ds, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    return EXIT_SPEC;
  }
  fprintf(out, "%s\n", path);
  print_layout(&src, &ds, out);
  fprintf(out, "  first samples, as stored:\n");
  print_first(&ds, out);
  sn_dataset_free(&ds);
  return 0;
}

int cmd_data(const opts *o) {
  int rc = 0;
  for (int i = 0; i < o->n_paths; i++) {
    const char *p = o->paths[i];
    int r = sn_path_has_suffix(p, ".yaml") || sn_path_has_suffix(p, ".yml")
                ? describe_spec(o, p, stdout)
                : describe_file(p, stdout);
    if (r && !rc) rc = r;
    fflush(stdout);
  }
  return rc;
}
