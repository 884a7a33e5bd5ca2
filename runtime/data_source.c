/* Data sets from their sources: built-in sets found on disk, IDX image + label
 * files, CSV (data_csv.c), NPY (data_npy.c) and synthetic generators
 * (data_synth.c). Also the whole-set operations the driver applies afterwards:
 * scaling, normalization and standardization, the validation split, freeing.
 *
 * Targets: a set holds class labels y, float targets t, or both. What the model's
 * loss reads is src->target_elems (0: labels); sn_dataset_load makes the set fit it
 * (labels become one-hot rows for k > 1 outputs, or t = y for one), and a set of
 * float targets gets y as well, for accuracy-like metrics: the argmax of each row
 * (k > 1) or t >= 0.5 (k = 1).
 *
 * Samples stay as stored (data_store.c: IDX images read in place, a gzip file through
 * its decompressed copy in the cache) and are
 * converted per batch; scaling and normalization compose into the set's sn_pre. */
#include "data_store.h"
#include "specnet/runtime.h"

#include "data_text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------
 * IDX images + labels */

/* One images file (a shard) into out's store: a raw file read in place, a gzip file
 * through its decompressed copy in the cache (sn_idx_cache), or, when no cache file
 * can be written and it is the only file, held as its u8 bytes. *count: its samples;
 * rank and dims: its per-sample shape. */
static int idx_shard(const char *images, bool only, sn_dataset *out, int *rank, int64_t dims[4],
                     int64_t *count, sn_error *err) {
  char raw[4400];
  int cached = sn_idx_cache(images, raw, sizeof raw, err);
  if (cached < 0) return -1;
  if (cached > 0 && !only)
    return sn_fail(err, "%s: cannot write its decompressed copy into the cache folder "
                        "($SPECNET_CACHE_DIR/data), which gzip shards need", images);
  int64_t offset;
  uint8_t *bytes = NULL;
  if (sn_idx_open(raw, rank, dims, &bytes, count, &offset, err)) return -1;
  if (*rank < 1 || *count == 0) {
    free(bytes);
    return sn_fail(err, "%s: %s", images,
                   *rank < 1 ? "an images file needs at least 2 dimensions (samples, ...), this "
                               "one has 1"
                             : "no samples (the IDX header declares 0)");
  }
  int64_t elems = 1;
  for (int i = 0; i < *rank; i++) elems *= dims[i]; /* <= 2^34, checked by the reader */
  if (bytes) return sn_store_own(images, bytes, *count, elems, &out->store, err);
  return sn_store_add(&out->store, raw, offset, (sn_stype){'u', 1}, *count, elems, err);
}

/* "(28, 28)": the first rank of dims. */
static const char *shape_text(int rank, const int64_t dims[4], char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < rank && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)dims[d]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
  return buf;
}

/* The samples of the images files into out, as stored (at most limit of them);
 * rows[i]: the samples of file i. */
static int idx_samples(const sn_paths *files, const char *what, int64_t limit, sn_dataset *out,
                       int64_t *rows, sn_error *err) {
  int rank0 = 0;
  int64_t dims0[4], total = 0;
  for (int f = 0; f < files->n; f++) {
    int rank;
    int64_t dims[4];
    if (idx_shard(files->v[f], files->n == 1, out, &rank, dims, &rows[f], err)) return -1;
    if (f == 0) {
      rank0 = rank;
      memcpy(dims0, dims, sizeof dims0);
    } else if (rank != rank0 || memcmp(dims, dims0, sizeof dims)) {
      char s1[96], s0[96];
      return sn_fail(err,
                     "%s: samples of shape %s, but the first shard %s has %s; every shard must "
                     "match the first",
                     files->v[f], shape_text(rank, dims, s1, sizeof s1), files->v[0],
                     shape_text(rank0, dims0, s0, sizeof s0));
    }
    total += rows[f];
  }
  out->n = limit > 0 && limit < total ? limit : total;
  out->rank = rank0;
  for (int i = 0; i < 4; i++) out->shape[i] = dims0[i];
  out->sample_elems = 1;
  for (int i = 0; i < rank0; i++) out->sample_elems *= dims0[i];
  snprintf(out->origin, sizeof out->origin, "%s", what);
  return sn_store_in_memory() ? sn_dataset_to_memory(out, err) : 0;
}

/* The labels files, shard by shard against the images files' counts rows[]: out->y
 * (the first out->n) and out->classes, 1 + the largest label in every file (not
 * only the first `limit`), so a limited train set and the test set agree on the
 * label space. */
static int idx_labels(const sn_paths *files, const sn_paths *images, const int64_t *rows,
                      sn_dataset *out, sn_error *err) {
  out->y = malloc((size_t)out->n * sizeof(int32_t) + 1); /* (n) */
  if (!out->y) return sn_fail(err, "%s: out of memory for %lld labels", files->v[0], (long long)out->n);
  int max_label = 0;
  int64_t at = 0;
  for (int f = 0; f < files->n; f++) {
    const char *labels = files->v[f];
    int lrank;
    int64_t ldims[4], lcount;
    uint8_t *lbytes = NULL;
    if (sn_idx_read(labels, &lrank, ldims, &lbytes, &lcount, err)) return -1;
    int rc = 0;
    if (lrank != 0)
      rc = sn_fail(err,
                   "%s: a labels file must be 1-D (one label per sample), this one has %d "
                   "dimensions",
                   labels, lrank + 1);
    else if (rows[f] != lcount)
      rc = sn_fail(err,
                   "sample count mismatch: images file %s has %lld samples but labels file %s "
                   "has %lld labels",
                   images->v[f], (long long)rows[f], labels, (long long)lcount);
    for (int64_t i = 0; !rc && i < lcount; i++, at++) {
      if (lbytes[i] > max_label) max_label = lbytes[i];
      if (at < out->n) out->y[at] = lbytes[i];
    }
    free(lbytes);
    if (rc) return -1;
  }
  out->classes = max_label + 1;
  return 0;
}

/* An IDX source: images (and labels unless `labels` is NULL), each one file or a
 * list of shards (sn_paths_expand), paired in order. */
static int load_idx(const char *images, const char *labels, int64_t limit, sn_dataset *out,
                    sn_error *err) {
  sn_shards f;
  if (sn_shards_open(images, labels, "images", "labels", &f, err)) return -1;
  char what[4200];
  const char *origin = f.x.n == 1 ? f.x.v[0] : sn_paths_label(images, what, sizeof what);
  bool bad = idx_samples(&f.x, origin, limit, out, f.rows, err) ||
             (labels && idx_labels(&f.y, &f.x, f.rows, out, err));
  if (!bad && labels)
    snprintf(out->label_origin, sizeof out->label_origin, "%s",
             f.y.n == 1 ? f.y.v[0] : sn_paths_label(labels, what, sizeof what));
  if (bad) sn_dataset_free(out);
  sn_shards_free(&f);
  return bad ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * Built-in sets: canonical IDX file names in a list of folders */

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Finds DIR/BASE or DIR/BASE.gz (raw first); writes the path into out. */
static bool find_in(const char *dir, const char *base, char *out, size_t cap) {
  int k = snprintf(out, cap, "%s/%s", dir, base);
  if (k > 0 && (size_t)k < cap && is_file(out)) return true;
  k = snprintf(out, cap, "%s/%s.gz", dir, base);
  return k > 0 && (size_t)k < cap && is_file(out);
}

static int load_builtin(const sn_source *src, sn_dataset *out, sn_error *err) {
  const char *name = src->name;
  bool fashion = strcmp(name, "fashion_mnist") == 0;
  if (!fashion && strcmp(name, "mnist") != 0)
    return sn_fail(err, "unknown built-in data set '%s' (known: mnist, fashion_mnist)", name);
  const char *split = src->split[0] ? src->split : "train"; /* the spec's default */
  const char *prefix;
  if (strcmp(split, "train") == 0)
    prefix = "train";
  else if (strcmp(split, "test") == 0)
    prefix = "t10k";
  else
    return sn_fail(err, "unknown split '%s' of %s (known: train, test)", split, name);
  char ibase[64], lbase[64];
  snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", prefix);
  snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", prefix);

  /* Folders to try, in order. Debian's package installs fashion-mnist with a dash. */
  const char *dashed = fashion ? "fashion-mnist" : "mnist";
  char dirs[5][4096];
  int ndirs = 0;
  const char *env = getenv("SPECNET_DATA");
  if (env && *env) {
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s/%s", env, name);
    if (fashion) snprintf(dirs[ndirs++], sizeof dirs[0], "%s/%s", env, dashed);
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s", env);
  }
  snprintf(dirs[ndirs++], sizeof dirs[0], "/usr/share/datasets/%s", dashed);

  char images[4096], labels[4096];
  for (int i = 0; i < ndirs; i++) {
    if (find_in(dirs[i], ibase, images, sizeof images) &&
        find_in(dirs[i], lbase, labels, sizeof labels)) {
      if (load_idx(images, labels, src->limit, out, err)) return -1;
      return 0;
    }
  }
  char looked[2048] = "";
  size_t len = 0;
  for (int i = 0; i < ndirs && len < sizeof looked; i++)
    len += (size_t)snprintf(looked + len, sizeof looked - len, "%s%s/", i ? ", " : "", dirs[i]);
  return sn_fail(err,
                 "data set %s:%s not found: looked for %s[.gz] and %s[.gz] in %s%s; hint: "
                 "set SPECNET_DATA to a folder holding them%s",
                 name, split, ibase, lbase, looked,
                 env && *env ? "" : " ($SPECNET_DATA is not set)",
                 fashion ? ", or install the Debian package dataset-fashion-mnist" : "");
}

/* ---------------------------------------------------------------------------
 * Entry point and whole-set operations */

/* Makes the targets of a freshly loaded set fit what the model reads (see the top). */
static int fit_targets(const sn_source *src, sn_dataset *ds, sn_error *err) {
  const int64_t k = src->target_elems;
  if (src->no_labels) return 0;
  if (k > 0 && !ds->t) {
    if (!ds->y) return sn_fail(err, "%s: no labels or targets", ds->origin);
    const int64_t L = ds->label_elems > 0 ? ds->label_elems : 1; /* one-hot rows per sample */
    if (k % L)
      return sn_fail(err, "%s: %lld labels per sample do not fit the loss's %lld targets",
                     ds->origin, (long long)L, (long long)k);
    return sn_dataset_onehot(ds, k / L, err);
  }
  if (k > 0 && ds->target_elems != k)
    return sn_fail(err, "%s: %lld target values per sample, but the model's loss reads %lld",
                   ds->origin, (long long)ds->target_elems, (long long)k);
  if (k == 0 && !ds->y)
    return sn_fail(err, "%s: float targets, but the model's loss reads class labels", ds->origin);
  if (!ds->y) { /* float targets only: labels for the metrics */
    ds->y = malloc((size_t)ds->n * sizeof(int32_t));
    if (!ds->y) return sn_fail(err, "%s: out of memory", ds->origin);
    for (int64_t i = 0; i < ds->n; i++) {
      const float *row = ds->t + i * k;
      int32_t best = 0;
      if (k == 1) best = row[0] >= 0.5f;
      for (int64_t j = 1; j < k; j++)
        if (row[j] > row[best]) best = (int32_t)j;
      ds->y[i] = best;
    }
    ds->classes = k > 1 ? (int)k : 2;
  }
  return 0;
}

/* An IDX source: src->images and src->labels */
static int load_idx_source(const sn_source *src, sn_dataset *out, sn_error *err) {
  if (!src->images[0] || (!src->labels[0] && !src->no_labels))
    return sn_fail(err, "an idx source needs both images and labels paths");
  return load_idx(src->images, src->no_labels ? NULL : src->labels, src->limit, out, err);
}

typedef int (*source_loader)(const sn_source *src, sn_dataset *out, sn_error *err);

/* The reader of each kind of source. HDF5's is in the library specnet_hdf5, which
 * sets it (sn_store_set_hdf5) where the program links it. */
static source_loader loaders[SN_SRC_HDF5 + 1] = {[SN_SRC_BUILTIN] = load_builtin,
                                                 [SN_SRC_IDX] = load_idx_source,
                                                 [SN_SRC_SYNTHETIC] = sn_dataset_synthetic,
                                                 [SN_SRC_CSV] = sn_dataset_csv,
                                                 [SN_SRC_NPY] = sn_dataset_npy,
                                                 [SN_SRC_TEXT] = sn_dataset_text};

void sn_store_set_hdf5(source_loader load) { loaders[SN_SRC_HDF5] = load; }

int sn_dataset_load(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  if (src->limit < 0)
    return sn_fail(err, "limit must be >= 0 (0 = all samples), got %lld", (long long)src->limit);
  if (src->target_elems < 0)
    return sn_fail(err, "target_elems is %lld; it must be >= 0", (long long)src->target_elems);
  size_t kind = (size_t)src->kind;
  if (kind == SN_SRC_HDF5 && !loaders[kind])
    return sn_fail(err, "%s: this program reads no HDF5 files (it does not link specnet_hdf5)",
                   src->path);
  if (kind >= sizeof loaders / sizeof *loaders || !loaders[kind])
    return sn_fail(err, "no data source given");
  int rc = loaders[kind](src, out, err);
  if (rc) return rc;
  if (fit_targets(src, out, err)) {
    sn_dataset_free(out);
    return -1;
  }
  return 0;
}

const char *sn_dataset_label_origin(const sn_dataset *ds) {
  return ds->label_origin[0] ? ds->label_origin : ds->origin;
}

int sn_dataset_onehot(sn_dataset *ds, int64_t k, sn_error *err) {
  if (k < 1) return sn_fail(err, "one-hot width %lld; it must be >= 1", (long long)k);
  if (!ds->y) return sn_fail(err, "%s: no class labels to make targets from", ds->origin);
  const int64_t L = ds->label_elems > 0 ? ds->label_elems : 1, n = ds->n * L; /* labels */
  for (int64_t i = 0; i < n && k > 1; i++)
    if (ds->y[i] < 0 || ds->y[i] >= k)
      return sn_fail(err,
                     "%s: label %d of sample %lld is out of range for one-hot targets of %lld "
                     "classes",
                     sn_dataset_label_origin(ds), ds->y[i], (long long)(i / L), (long long)k);
  float *t = calloc((size_t)(n * k) + 1, sizeof(float)); /* (n, L, k) */
  if (!t) return sn_fail(err, "%s: out of memory for one-hot targets", ds->origin);
  for (int64_t i = 0; i < n; i++) {
    if (k == 1)
      t[i] = (float)ds->y[i];
    else
      t[i * k + ds->y[i]] = 1.0f;
  }
  free(ds->t);
  ds->t = t;
  ds->target_elems = L * k;
  return 0;
}

int64_t sn_dataset_features(const sn_dataset *ds) {
  return ds->rank > 0 ? ds->shape[ds->rank - 1] : 1;
}

int sn_dataset_split(sn_dataset *ds, double fraction, sn_dataset *held, sn_error *err) {
  if (ds->text) return sn_text_split(ds, fraction, held, err);
  memset(held, 0, sizeof *held);
  if (!(fraction > 0.0 && fraction < 1.0))
    return sn_fail(err, "validation split must be between 0 and 1 (exclusive), got %g", fraction);
  /* As Keras: the first floor(n * (1 - fraction)) samples stay. */
  int64_t keep = (int64_t)floor((double)ds->n * (1.0 - fraction));
  int64_t nheld = ds->n - keep;
  if (keep <= 0 || nheld <= 0)
    return sn_fail(err, "validation split %g of %lld samples from %s leaves an empty %s set",
                   fraction, (long long)ds->n, ds->origin, keep <= 0 ? "training" : "validation");
  int64_t e = ds->sample_elems;
  *held = sn_dataset_rows(ds, keep, ds->n); /* shape, rank, classes; ds keeps the names */
  held->chars = NULL;                        /* and the chars table */
  held->n_chars = 0;
  held->store = sn_store_ref(ds->store);     /* stored samples: a view, no copy */
  if (sn_pre_copy(&ds->pre, &held->pre, err)) {
    sn_store_unref(held->store);
    memset(held, 0, sizeof *held);
    return -1;
  }
  const int64_t T = ds->t ? ds->target_elems : 0, L = ds->label_elems > 0 ? ds->label_elems : 1;
  held->x = ds->x ? malloc((size_t)(nheld * e) * sizeof(float)) : NULL;   /* (nheld, e) */
  held->y = ds->y ? malloc((size_t)(nheld * L) * sizeof(int32_t)) : NULL; /* (nheld, L) */
  held->t = ds->t ? malloc((size_t)(nheld * T) * sizeof(float)) : NULL; /* (nheld, T) */
  if ((ds->x && !held->x) || (ds->y && !held->y) || (ds->t && !held->t)) {
    sn_dataset_free(held);
    return sn_fail(err, "out of memory splitting %lld samples", (long long)nheld);
  }
  if (ds->x) memcpy(held->x, ds->x + keep * e, (size_t)(nheld * e) * sizeof(float));
  if (ds->y) memcpy(held->y, ds->y + keep * L, (size_t)(nheld * L) * sizeof(int32_t));
  if (ds->t) memcpy(held->t, ds->t + keep * T, (size_t)(nheld * T) * sizeof(float));
  char origin[sizeof ds->origin];
  memcpy(origin, ds->origin, sizeof origin);
  int k = snprintf(held->origin, sizeof held->origin, "%s (last %g held out)", origin, fraction);
  if (k < 0 || (size_t)k >= sizeof held->origin) memcpy(held->origin, origin, sizeof origin);
  if (ds->label_origin[0]) {
    memcpy(origin, ds->label_origin, sizeof origin);
    k = snprintf(held->label_origin, sizeof held->label_origin, "%s (last %g held out)", origin, fraction);
    if (k < 0 || (size_t)k >= sizeof held->label_origin) memcpy(held->label_origin, origin, sizeof origin);
  }

  ds->n = keep;
  /* Give the tail back; a failed shrink keeps the larger blocks, still valid. */
  float *x = ds->x ? realloc(ds->x, (size_t)(keep * e) * sizeof(float)) : NULL;
  if (x) ds->x = x;
  if (ds->y) {
    int32_t *y = realloc(ds->y, (size_t)(keep * L) * sizeof(int32_t));
    if (y) ds->y = y;
  }
  if (ds->t) {
    float *t = realloc(ds->t, (size_t)(keep * T) * sizeof(float));
    if (t) ds->t = t;
  }
  return 0;
}

void sn_dataset_free(sn_dataset *ds) {
  for (int i = 0; i < ds->n_class_names; i++) free(ds->class_names[i]);
  free(ds->class_names);
  ds->class_names = NULL;
  ds->n_class_names = 0;
  free(ds->chars);
  ds->chars = NULL;
  ds->n_chars = 0;
  sn_text_free(ds->text);
  ds->text = NULL;
  ds->epoch_fill = NULL;
  free(ds->x);
  free(ds->y);
  free(ds->t);
  sn_store_unref(ds->store);
  sn_pre_free(&ds->pre);
  ds->store = NULL;
  ds->first = 0;
  ds->x = NULL;
  ds->y = NULL;
  ds->t = NULL;
  ds->n = 0;
  ds->target_elems = 0;
}
