/* Data sets from their sources: built-in sets found on disk, IDX image + label
 * files, and synthetic generators (data_synth.c). Also the whole-set operations the
 * driver applies afterwards: scaling, the validation split, freeing.
 *
 * Samples are converted to f32 once, at load time, with their raw values (0..255
 * for images); scaling is a separate step (sn_dataset_scale) driven by the spec. */
#include "specnet/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------
 * IDX images + labels */

/* Loads an images file and a labels file into out. classes is 1 + the largest label
 * in the whole labels file (not only the first `limit`), so a limited train set and
 * the test set agree on the label space. */
static int load_idx_pair(const char *images, const char *labels, int64_t limit, sn_dataset *out,
                         sn_error *err) {
  int irank, lrank;
  int64_t idims[4], ldims[4], icount, lcount;
  uint8_t *ibytes = NULL, *lbytes = NULL;
  if (sn_idx_read(images, &irank, idims, &ibytes, &icount, err)) return -1;
  if (sn_idx_read(labels, &lrank, ldims, &lbytes, &lcount, err)) goto fail;
  if (irank < 1) {
    sn_fail(err,
            "%s: an images file needs at least 2 dimensions (samples, ...), this one "
            "has 1",
            images);
    goto fail;
  }
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
  if (icount == 0) {
    sn_fail(err, "%s: no samples (the IDX header declares 0)", images);
    goto fail;
  }

  int64_t elems = 1;
  for (int i = 0; i < irank; i++) elems *= idims[i]; /* <= 2^34, checked by the reader */
  int max_label = 0;
  for (int64_t i = 0; i < lcount; i++)
    if (lbytes[i] > max_label) max_label = lbytes[i];
  int64_t n = limit > 0 && limit < icount ? limit : icount;

  out->x = malloc((size_t)(n * elems) * sizeof(float)); /* (n, elems) */
  out->y = malloc((size_t)n * sizeof(int32_t));         /* (n) */
  if (!out->x || !out->y) {
    sn_fail(err, "%s: out of memory for %lld samples of %lld values", images, (long long)n,
            (long long)elems);
    goto fail;
  }
  for (int64_t i = 0; i < n * elems; i++) out->x[i] = (float)ibytes[i];
  for (int64_t i = 0; i < n; i++) out->y[i] = lbytes[i];
  out->n = n;
  out->rank = irank;
  for (int i = 0; i < 4; i++) out->shape[i] = idims[i];
  out->sample_elems = elems;
  out->classes = max_label + 1;
  snprintf(out->origin, sizeof out->origin, "%s", images);
  free(ibytes);
  free(lbytes);
  return 0;
fail:
  free(ibytes);
  free(lbytes);
  sn_dataset_free(out);
  return -1;
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

int sn_dataset_load(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  if (src->limit < 0)
    return sn_fail(err, "limit must be >= 0 (0 = all samples), got %lld", (long long)src->limit);
  switch (src->kind) {
  case SN_SRC_BUILTIN:
    return load_builtin(src, out, err);
  case SN_SRC_IDX:
    if (!src->images[0] || !src->labels[0])
      return sn_fail(err, "an idx source needs both images and labels paths");
    return load_idx_pair(src->images, src->labels, src->limit, out, err);
  case SN_SRC_SYNTHETIC:
    return sn_dataset_synthetic(src, out, err);
  case SN_SRC_CSV:
  case SN_SRC_NPY:
    return sn_fail(err, "%s data is not supported yet", src->kind == SN_SRC_CSV ? "csv" : "npy");
  case SN_SRC_NONE:
    break;
  }
  return sn_fail(err, "no data source given");
}

void sn_dataset_scale(sn_dataset *ds, float factor) {
  int64_t total = ds->n * ds->sample_elems;
  for (int64_t i = 0; i < total; i++) ds->x[i] *= factor;
}

int sn_dataset_split(sn_dataset *ds, double fraction, sn_dataset *held, sn_error *err) {
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
  *held = *ds; /* shape, rank, classes */
  held->n = nheld;
  held->x = malloc((size_t)(nheld * e) * sizeof(float)); /* (nheld, e) */
  held->y = malloc((size_t)nheld * sizeof(int32_t));     /* (nheld) */
  if (!held->x || !held->y) {
    sn_dataset_free(held);
    return sn_fail(err, "out of memory splitting %lld samples", (long long)nheld);
  }
  memcpy(held->x, ds->x + keep * e, (size_t)(nheld * e) * sizeof(float));
  memcpy(held->y, ds->y + keep, (size_t)nheld * sizeof(int32_t));
  char origin[sizeof ds->origin];
  memcpy(origin, ds->origin, sizeof origin);
  int k = snprintf(held->origin, sizeof held->origin, "%s (last %g held out)", origin, fraction);
  if (k < 0 || (size_t)k >= sizeof held->origin) memcpy(held->origin, origin, sizeof origin);

  ds->n = keep;
  /* Give the tail back; a failed shrink keeps the larger blocks, still valid. */
  float *x = realloc(ds->x, (size_t)(keep * e) * sizeof(float));
  if (x) ds->x = x;
  int32_t *y = realloc(ds->y, (size_t)keep * sizeof(int32_t));
  if (y) ds->y = y;
  return 0;
}

void sn_dataset_free(sn_dataset *ds) {
  free(ds->x);
  free(ds->y);
  ds->x = NULL;
  ds->y = NULL;
  ds->n = 0;
}
