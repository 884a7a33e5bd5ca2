/* libFuzzer target: the NPY reader (runtime/data_npy.c) on arbitrary bytes: as one
 * array (sn_npy_read, all rows and the first 2), and as a data set whose x and y
 * are both this file (sn_dataset_npy with class labels and with float targets),
 * which reaches the checks between the two arrays. Checks, besides the
 * sanitizers, that a successful read returns a shape whose product is the data
 * read (the last element is touched) and a data set with samples and finite
 * features. */
#include "fuzz_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/runtime.h"

volatile double keep; /* the last element, so the read is not optimized away */

static void read_array(const char *path, int64_t limit) {
  int ndim;
  int64_t shape[8];
  double *data = NULL;
  bool integer;
  sn_error err = {{0}};
  if (sn_npy_read(path, limit, &ndim, shape, &data, &integer, &err)) {
    if (!err.msg[0]) abort();
    free(data);
    return;
  }
  if (ndim < 0 || ndim > 8) abort();
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) abort();
    total *= shape[d];
  }
  if (limit > 0 && ndim > 0 && shape[0] > limit) abort();
  if (total > 0) keep = data[total - 1];
  free(data);
}

static void load_set(const char *path, int64_t target_elems) {
  sn_source src = {.kind = SN_SRC_NPY, .target_elems = target_elems};
  snprintf(src.images, sizeof src.images, "%s", path);
  snprintf(src.labels, sizeof src.labels, "%s", path);
  sn_dataset ds;
  sn_error err = {{0}};
  if (sn_dataset_npy(&src, &ds, &err)) {
    if (!err.msg[0] || ds.x || ds.store) abort();
    return;
  }
  /* samples stay as stored: every one read back through the one conversion */
  if (ds.n < 1 || ds.sample_elems < 1 || (!ds.x && !ds.store)) abort();
  float *row = malloc((size_t)ds.sample_elems * sizeof(float));
  if (!row) abort();
  for (int64_t i = 0; i < ds.n; i++) {
    sn_dataset_get(&ds, i, 1, SN_RT_F32, row);
    for (int64_t e = 0; e < ds.sample_elems; e++)
      if (!isfinite(row[e])) abort();
  }
  free(row);
  if (sn_dataset_check(&ds, &err)) abort(); /* the file did not change */
  if (target_elems == 0 && ds.y)
    for (int64_t i = 0; i < ds.n; i++)
      if (ds.y[i] < 0) abort();
  sn_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  read_array(path, 0);
  read_array(path, 2);
  load_set(path, 0);
  load_set(path, 1);
  return 0;
}
