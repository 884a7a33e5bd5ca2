/* libFuzzer target: the CSV loader (runtime/data_csv.c) on arbitrary bytes, read
 * with the option sets a spec can give: header or not, label column last, first
 * or by name, class labels, one float target, one-hot targets, or no labels.
 * Checks, besides the sanitizers, that a successful load is consistent: samples
 * and features > 0, class labels >= 0, every feature finite, buffers as long as
 * the counts say (the last element of each is read). */
#include "fuzz_file.h"

#include <math.h>
#include <string.h>

#include "specnet/runtime.h"

static void load(const char *path, bool header, int label_index, const char *label_col,
                 int64_t target_elems, bool no_labels) {
  sn_source src = {.kind = SN_SRC_CSV, .label_index = label_index, .header = header,
                   .target_elems = target_elems, .no_labels = no_labels};
  snprintf(src.path, sizeof src.path, "%s", path);
  snprintf(src.label_col, sizeof src.label_col, "%s", label_col);
  sn_dataset ds;
  sn_error err = {{0}};
  if (sn_dataset_csv(&src, &ds, &err)) {
    if (!err.msg[0] || ds.x) abort();
    return;
  }
  if (ds.n < 1 || ds.sample_elems < 1 || !ds.x) abort();
  for (int64_t i = 0; i < ds.n * ds.sample_elems; i++)
    if (!isfinite(ds.x[i])) abort();
  if (!no_labels && target_elems == 0) {
    if (!ds.y) abort();
    for (int64_t i = 0; i < ds.n; i++)
      if (ds.y[i] < 0) abort();
  }
  if (ds.t) {
    if (ds.target_elems < 1) abort();
    for (int64_t i = 0; i < ds.n * ds.target_elems; i++)
      if (!isfinite(ds.t[i])) abort();
  }
  sn_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  load(path, false, -1, "", 0, false);
  load(path, true, -1, "", 0, false);
  load(path, true, 0, "label", 0, false);
  load(path, false, 0, "", 1, false);
  load(path, true, -1, "", 3, false);
  load(path, false, -1, "", 0, true);
  return 0;
}
