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
 * Samples stay as stored (data_store.c: IDX images read in place or held as u8) and are
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

/* The samples of an images file into out, as stored: a raw file read in place, a
 * gzip file held as its u8 bytes (or as f32 in memory when sn_store_in_memory).
 * *count: the samples the file holds (out->n: at most limit of them). */
static int idx_samples(const char *images, int64_t limit, sn_dataset *out, int64_t *count,
                       sn_error *err) {
  int irank;
  int64_t idims[4], icount, offset;
  uint8_t *ibytes = NULL;
  if (sn_idx_open(images, &irank, idims, &ibytes, &icount, &offset, err)) return -1;
  if (irank < 1 || icount == 0) {
    free(ibytes);
    return sn_fail(err, "%s: %s", images,
                   irank < 1 ? "an images file needs at least 2 dimensions (samples, ...), this "
                               "one has 1"
                             : "no samples (the IDX header declares 0)");
  }
  int64_t elems = 1;
  for (int i = 0; i < irank; i++) elems *= idims[i]; /* <= 2^34, checked by the reader */
  int64_t n = limit > 0 && limit < icount ? limit : icount;
  int rc = ibytes ? sn_store_own(images, ibytes, icount, elems, &out->store, err)
                  : sn_store_add(&out->store, images, offset, (sn_stype){'u', 1}, icount, elems, err);
  if (rc) return -1;
  out->n = n;
  out->rank = irank;
  for (int i = 0; i < 4; i++) out->shape[i] = idims[i];
  out->sample_elems = elems;
  snprintf(out->origin, sizeof out->origin, "%s", images);
  *count = icount;
  return sn_store_in_memory() ? sn_dataset_to_memory(out, err) : 0;
}

/* Loads an images file and a labels file into out. classes is 1 + the largest label
 * in the whole labels file (not only the first `limit`), so a limited train set and
 * the test set agree on the label space. */
static int load_idx_pair(const char *images, const char *labels, int64_t limit, sn_dataset *out,
                         sn_error *err) {
  int lrank;
  int64_t ldims[4], lcount, icount;
  uint8_t *lbytes = NULL;
  if (idx_samples(images, limit, out, &icount, err)) return -1;
  if (sn_idx_read(labels, &lrank, ldims, &lbytes, &lcount, err)) goto fail;
  if (lrank != 0) {
    sn_fail(err,
            "%s: a labels file must be 1-D (one label per sample), this one has %d "
            "dimensions",
            labels, lrank + 1);
    goto fail;
  }
  if (icount != lcount) {
    sn_fail(err,
            "sample count mismatch: images file %s has %lld samples but labels file %s "
            "has %lld labels",
            images, (long long)icount, labels, (long long)lcount);
    goto fail;
  }
  int max_label = 0;
  for (int64_t i = 0; i < lcount; i++)
    if (lbytes[i] > max_label) max_label = lbytes[i];
  out->y = malloc((size_t)out->n * sizeof(int32_t)); /* (n) */
  if (!out->y) {
    sn_fail(err, "%s: out of memory for %lld labels", labels, (long long)out->n);
    goto fail;
  }
  for (int64_t i = 0; i < out->n; i++) out->y[i] = lbytes[i];
  out->classes = max_label + 1;
  free(lbytes);
  return 0;
fail:
  free(lbytes);
  sn_dataset_free(out);
  return -1;
}

/* An images file alone (predict input): x only. */
static int load_idx_images(const char *images, int64_t limit, sn_dataset *out, sn_error *err) {
  int64_t count;
  return idx_samples(images, limit, out, &count, err);
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
      if (load_idx_pair(images, labels, src->limit, out, err)) return -1;
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

static int (*hdf5_load)(const sn_source *, sn_dataset *, sn_error *);

void sn_store_set_hdf5(int (*load)(const sn_source *, sn_dataset *, sn_error *)) { hdf5_load = load; }

int sn_dataset_load(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  if (src->limit < 0)
    return sn_fail(err, "limit must be >= 0 (0 = all samples), got %lld", (long long)src->limit);
  if (src->target_elems < 0)
    return sn_fail(err, "target_elems is %lld; it must be >= 0", (long long)src->target_elems);
  int rc;
  switch (src->kind) {
  case SN_SRC_BUILTIN:
    rc = load_builtin(src, out, err);
    break;
  case SN_SRC_IDX:
    if (!src->images[0] || (!src->labels[0] && !src->no_labels))
      return sn_fail(err, "an idx source needs both images and labels paths");
    if (src->no_labels) {
      rc = load_idx_images(src->images, src->limit, out, err);
      break;
    }
    rc = load_idx_pair(src->images, src->labels, src->limit, out, err);
    break;
  case SN_SRC_SYNTHETIC:
    rc = sn_dataset_synthetic(src, out, err);
    break;
  case SN_SRC_CSV:
    rc = sn_dataset_csv(src, out, err);
    break;
  case SN_SRC_NPY:
    rc = sn_dataset_npy(src, out, err);
    break;
  case SN_SRC_TEXT:
    rc = sn_dataset_text(src, out, err);
    break;
  case SN_SRC_HDF5:
    if (!hdf5_load)
      return sn_fail(err, "%s: this program reads no HDF5 files (it does not link specnet_hdf5)",
                     src->path);
    rc = hdf5_load(src, out, err);
    break;
  default:
    return sn_fail(err, "no data source given");
  }
  if (rc) return rc;
  if (fit_targets(src, out, err)) {
    sn_dataset_free(out);
    return -1;
  }
  return 0;
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
                     ds->origin, ds->y[i], (long long)(i / L), (long long)k);
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
