/* libFuzzer target: the IDX reader (runtime/data_idx.c) on arbitrary bytes, raw
 * or gzip (the reader tells them apart by the magic bytes 1f 8b). Checks, besides
 * the sanitizers, that a successful read returns what the header promised: rank
 * 0..4, positive per-sample dims, and count * prod(dims) bytes of data (ASan
 * catches a buffer shorter than that when the last byte is read). */
#include "fuzz_file.h"

#include <string.h>

#include "specnet/runtime.h"

volatile uint8_t keep; /* the first and last byte, so the reads are not optimized away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  int rank;
  int64_t dims[4], count;
  uint8_t *bytes;
  sn_error err = {{0}};
  if (sn_idx_read(path, &rank, dims, &bytes, &count, &err)) {
    if (!err.msg[0] || bytes) abort(); /* a failure says why and returns nothing */
    return 0;
  }
  if (rank < 0 || rank > 4 || count < 0) abort();
  int64_t total = count;
  for (int i = 0; i < 4; i++) {
    if (dims[i] < 1 || (i >= rank && dims[i] != 1)) abort();
    total *= dims[i];
  }
  if (total > 0) keep = bytes[0] ^ bytes[total - 1];
  free(bytes);
  return 0;
}
