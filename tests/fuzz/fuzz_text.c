/* libFuzzer target: text sources (runtime/data_text.c) on arbitrary bytes, as a
 * text file read in every mode and tokenizer: lm windows (swept, strided, random),
 * classify records (bytes and chars), and an lm set split by position. Checks,
 * besides the sanitizers, what every successful load promises: ids and labels in
 * [0, vocab), an lm label the next token of its window, padding only at the end of
 * a record, and an error message on every failure. */
#include "fuzz_file.h"

#include <string.h>

#include "specnet/runtime.h"

static void check_set(const sn_dataset *ds, bool lm) {
  const int64_t C = ds->sample_elems;
  if (ds->n < 1 || C < 1 || !ds->x || !ds->y || ds->vocab < 1) abort();
  for (int64_t i = 0; i < ds->n; i++) {
    const float *x = ds->x + i * C;
    for (int64_t j = 0; j < C; j++) {
      if (!(x[j] >= 0 && x[j] < (float)ds->vocab)) abort();
      if (!lm && j > 0 && x[j - 1] == 0 && x[j] != 0) abort(); /* padding is a tail */
      if (lm && (ds->y[i * C + j] < 0 || ds->y[i * C + j] >= ds->vocab)) abort();
      if (lm && j + 1 < C && (float)ds->y[i * C + j] != x[j + 1]) abort();
    }
    if (!lm && (ds->y[i] < 0 || ds->y[i] >= ds->classes)) abort();
  }
}

static void load(const char *path, sn_text_mode mode, sn_tokenizer tok, int64_t c, int64_t windows,
                 int64_t stride, bool split) {
  sn_source src = {.kind = SN_SRC_TEXT,
                   .text_mode = mode,
                   .tokenizer = tok,
                   .windows = windows,
                   .stride = stride,
                   .seed = 1};
  snprintf(src.path, sizeof src.path, "%s", path);
  if (mode == SN_TEXT_LM)
    src.context = c;
  else
    src.length = c;
  sn_dataset ds, held;
  sn_error err = {{0}};
  if (sn_dataset_load(&src, &ds, &err)) {
    if (!err.msg[0] || ds.x) abort();
    return;
  }
  check_set(&ds, mode == SN_TEXT_LM);
  if (ds.epoch_fill) {
    ds.epoch_fill(&ds, 2);
    check_set(&ds, true);
  }
  if (split && !sn_dataset_split(&ds, 0.25, &held, &err)) {
    check_set(&ds, true);
    check_set(&held, true);
    sn_dataset_free(&held);
  } else if (split && !err.msg[0]) {
    abort();
  }
  sn_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  load(path, SN_TEXT_LM, SN_TOK_BYTES, 3, 0, 0, true);
  load(path, SN_TEXT_LM, SN_TOK_CHARS, 2, 0, 1, true);
  load(path, SN_TEXT_LM, SN_TOK_CHARS, 4, 7, 0, false);
  load(path, SN_TEXT_CLASSIFY, SN_TOK_BYTES, 4, 0, 0, false);
  load(path, SN_TEXT_CLASSIFY, SN_TOK_CHARS, 3, 0, 0, false);
  return 0;
}
