/* HDF5 sources (runtime/data_hdf5.c): every dtype in every layout that h5py writes
 * (contiguous, chunks of whole samples, chunks that cut samples, gzip, big-endian)
 * reads back as numpy's values converted to f32, bit for bit: all samples in one
 * read, one at a time in a shuffled order, and runs that cross chunk boundaries;
 * labels, float targets and limit; a file that changes after loading is an error
 * naming it. The files come from tests/hdf5/make_files.py (h5py): given a folder
 * (tests/test_data_hdf5.sh), the test reads the files there; without one it runs
 * the script itself (from tests/, as CTest does) into a temporary folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "specnet/runtime.h"

enum { N = 61, A = 4, F = 3, E = A * F }; /* as in make_files.py */

static const char *const DTYPES[] = {"u1", "i1", "u2", "i2", "u4", "i4",
                                     "u8", "i8", "f2", "f4", "f8"};
static const char *const LAYOUTS[] = {"contiguous", "chunked", "cut", "gzip", "bigendian"};

static const char *dir;

static sn_source source(const char *file, const char *x, const char *y) {
  sn_source s = {.kind = SN_SRC_HDF5};
  snprintf(s.path, sizeof s.path, "%s/%s", dir, file);
  snprintf(s.images, sizeof s.images, "%s", x);
  if (y) snprintf(s.labels, sizeof s.labels, "%s", y);
  s.no_labels = !y;
  return s;
}

static float *expected(const char *dt) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.f32", dir, dt);
  FILE *f = fopen(path, "rb");
  float *v = malloc(N * E * sizeof(float));
  size_t got = f ? fread(v, sizeof(float), N * E, f) : 0;
  if (f) fclose(f);
  CHECK(got == N * E, "%s: %zu values", path, got);
  return v;
}

/* Samples [i, i + count) of ds against want, bitwise. */
static void check_run(const sn_dataset *ds, const float *want, int64_t i, int64_t count,
                      const char *what) {
  float got[N * E];
  sn_dataset_get(ds, i, count, SN_RT_F32, got);
  CHECK(!memcmp(got, want + i * E, (size_t)(count * E) * sizeof(float)),
        "%s: samples [%lld, %lld) differ from numpy's", what, (long long)i, (long long)(i + count));
}

static void test_values(const char *dt, const char *layout) {
  char name[64], what[96];
  snprintf(name, sizeof name, "/%s/%s", dt, layout);
  snprintf(what, sizeof what, "%s %s", dt, layout);
  sn_source src = source("data.h5", name, "/labels");
  sn_dataset ds;
  sn_error err = {0};
  if (sn_dataset_load(&src, &ds, &err)) {
    CHECK(0, "%s: %s", what, err.msg);
    return;
  }
  CHECK(ds.n == N && ds.rank == 2 && ds.shape[0] == A && ds.shape[1] == F && ds.sample_elems == E,
        "%s: n %lld rank %d shape (%lld, %lld)", what, (long long)ds.n, ds.rank,
        (long long)ds.shape[0], (long long)ds.shape[1]);
  float *want = expected(dt);
  check_run(&ds, want, 0, N, what);
  /* one sample at a time, shuffled (a fixed permutation: 17 is prime to 61) */
  for (int64_t k = 0; k < N; k++) check_run(&ds, want, (k * 17 + 5) % N, 1, what);
  /* runs crossing the chunks of 7, 6 and 5 samples */
  const int64_t runs[][2] = {{3, 9}, {6, 8}, {13, 1}, {20, 22}, {55, 6}, {60, 1}};
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) check_run(&ds, want, runs[r][0], runs[r][1], what);
  /* a validation-split view: the same store from an offset */
  sn_dataset v = sn_dataset_rows(&ds, 40, N);
  float got[E];
  sn_dataset_get(&v, 3, 1, SN_RT_F32, got);
  CHECK(!memcmp(got, want + 43 * E, sizeof got), "%s: a view's sample 3 is not sample 43", what);
  for (int64_t i = 0; i < N; i++) CHECK(ds.y[i] == i % 3, "%s: label %lld is %d", what, (long long)i, ds.y[i]);
  CHECK(ds.classes == 3, "%s: %d classes", what, ds.classes);
  CHECK(!sn_dataset_check(&ds, &err), "%s: %s", what, err.msg);
  free(want);
  sn_dataset_free(&ds);
}

/* float targets, limit, no labels */
static void test_targets_limit(void) {
  sn_source src = source("data.h5", "/f4/chunked", "/targets");
  src.target_elems = 2;
  src.limit = 10;
  sn_dataset ds;
  sn_error err = {0};
  if (sn_dataset_load(&src, &ds, &err)) {
    CHECK(0, "targets: %s", err.msg);
    return;
  }
  CHECK(ds.n == 10 && ds.t && ds.target_elems == 2, "targets: n %lld, target_elems %lld", (long long)ds.n,
        (long long)ds.target_elems);
  float *want = expected("f4");
  check_run(&ds, want, 0, 10, "limit 10");
  free(want);
  sn_dataset_free(&ds);
  src = source("data.h5", "/u1/contiguous", NULL);
  CHECK(!sn_dataset_load(&src, &ds, &err) && ds.n == N && !ds.y, "no labels: %s", err.msg);
  sn_dataset_free(&ds);
}

/* A copy of data.h5 that grows after loading: the check names it. */
static void test_changed(void) {
  char cmd[1024], copy[512];
  snprintf(copy, sizeof copy, "%s/changed.h5", dir);
  snprintf(cmd, sizeof cmd, "cp '%s/data.h5' '%s'", dir, copy);
  CHECK(system(cmd) == 0, "%s", cmd);
  sn_source src = source("changed.h5", "/u1/chunked", "/labels");
  sn_dataset ds;
  sn_error err = {0};
  if (sn_dataset_load(&src, &ds, &err)) {
    CHECK(0, "changed: %s", err.msg);
    return;
  }
  FILE *f = fopen(copy, "ab");
  fputs("more bytes", f);
  fclose(f);
  CHECK(sn_dataset_check(&ds, &err) && strstr(err.msg, "changed.h5") &&
            strstr(err.msg, "changed during the run"),
        "changed: '%s'", err.msg);
  sn_dataset_free(&ds);
  CHECK(truncate(copy, 4096) == 0, "truncate");
  CHECK(sn_dataset_load(&src, &ds, &err) && strstr(err.msg, "changed.h5"), "truncated: '%s'", err.msg);
}

int main(int argc, char **argv) {
  char tmp[] = "/tmp/specnet-hdf5.XXXXXX", cmd[256];
  dir = argc > 1 ? argv[1] : mkdtemp(tmp);
  if (argc == 1) {
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 hdf5/make_files.py %s", tmp);
    if (!dir || system(cmd) != 0) {
      fprintf(stderr, "FAIL: %s (python3-h5py installed?)\n", cmd);
      return 1;
    }
  }
  sn_hdf5_enable();
  for (size_t d = 0; d < sizeof DTYPES / sizeof DTYPES[0]; d++)
    for (size_t l = 0; l < sizeof LAYOUTS / sizeof LAYOUTS[0]; l++) test_values(DTYPES[d], LAYOUTS[l]);
  test_targets_limit();
  test_changed();
  if (argc == 1) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "%s", cmd);
  }
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
