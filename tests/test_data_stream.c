/* Samples as stored (runtime/data_store.c, issue 16): NPY files of every dtype are
 * read in place, not converted; batches converted by sn_dataset_get agree with
 * values computed here by hand through scale, normalize and standardize, with runs
 * of samples that cross batch boundaries; the validation split is a view of the
 * same store; the set forced into memory (SPECNET_DATA_IN_MEMORY=1) converts to
 * the very same bits; a file that changes size after loading is an error naming
 * it. Files are written by the test into a temporary folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "half.h"
#include "specnet/runtime.h"

enum { N = 37, A = 2, F = 3, E = A * F }; /* samples of shape (2, 3): 3 features */

static char dir[64];

static const char *path_of(const char *name) {
  static char buf[4][128];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* numpy.save's layout: magic, version 1.0, the header dict padded with spaces to a
 * multiple of 64 bytes (with the 10 bytes before it), '\n'. */
static void write_npy(const char *path, const char *descr, const char *shape, const void *data,
                      size_t bytes) {
  char dict[256];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
  int total = (10 + len + 1 + 63) / 64 * 64;
  int hlen = total - 10;
  FILE *f = fopen(path, "wb");
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned char hl[2] = {(unsigned char)(hlen & 255), (unsigned char)(hlen >> 8)};
  fwrite(hl, 1, 2, f);
  fwrite(dict, 1, (size_t)len, f);
  for (int i = len; i < hlen - 1; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, 1, bytes, f);
  fclose(f);
}

/* The raw value of element e of sample j: small integers (negative for signed types),
 * quarters for floats: exact in every dtype, float16 included. */
static double raw_value(char kind, int64_t j, int64_t e) {
  double r = (double)((j * 7 + e * 3) % 50);
  return kind == 'u' ? r : kind == 'i' ? r - 20 : (r - 20) * 0.25;
}

static uint16_t f16_of(double v) { /* v: a quarter-integer with |v| < 16, exact */
  for (uint32_t h = 0; h < 0x7c00; h++) {
    if (sn_f16_to_f32((uint16_t)h) == (float)v) return (uint16_t)h;
    if (sn_f16_to_f32((uint16_t)(h | 0x8000)) == (float)v) return (uint16_t)(h | 0x8000);
  }
  return 0x7e00;
}

/* Samples [j0, j0 + count) of the values raw_value gives, as dtype descr (malloc'd). */
static unsigned char *raw_bytes(const char *descr, int64_t j0, int64_t count) {
  char kind = descr[1];
  int size = atoi(descr + 2);
  unsigned char *buf = malloc((size_t)(count * E * size) + 1);
  for (int64_t j = j0; j < j0 + count; j++)
    for (int64_t e = 0; e < E; e++) {
      double v = raw_value(kind, j, e);
      unsigned char *p = buf + ((j - j0) * E + e) * size;
      if (kind == 'f' && size == 2) {
        uint16_t h = f16_of(v);
        memcpy(p, &h, 2);
      } else if (kind == 'f' && size == 4) {
        float x = (float)v;
        memcpy(p, &x, 4);
      } else if (kind == 'f') {
        memcpy(p, &v, 8);
      } else {
        int64_t x = (int64_t)v; /* little-endian: the low `size` bytes */
        memcpy(p, &x, (size_t)size);
      }
    }
  return buf;
}

/* NAME of samples [j0, j0 + count), shape (count, a, f), as dtype descr. */
static void write_x_as(const char *name, const char *descr, int64_t j0, int64_t count, int a,
                       int f) {
  unsigned char *buf = raw_bytes(descr, j0, count);
  char shape[48];
  snprintf(shape, sizeof shape, "(%lld, %d, %d)", (long long)count, a, f);
  write_npy(path_of(name), descr, shape, buf, (size_t)(count * E * atoi(descr + 2)));
  free(buf);
}

/* x-DESCR.npy, shape (N, A, F). */
static void write_x(const char *descr) {
  char name[32];
  snprintf(name, sizeof name, "x-%c%d.npy", descr[1], atoi(descr + 2));
  write_x_as(name, descr, 0, N, A, F);
}

static void write_y(const char *name, int64_t j0, int64_t count) {
  int64_t y[N];
  for (int64_t j = 0; j < count; j++) y[j] = (j0 + j) % 4;
  char shape[24];
  snprintf(shape, sizeof shape, "(%lld,)", (long long)count);
  write_npy(path_of(name), "<i8", shape, y, (size_t)count * sizeof(int64_t));
}

static sn_source npy_source(const char *x) {
  sn_source s = {.kind = SN_SRC_NPY};
  snprintf(s.images, sizeof s.images, "%s", x);
  snprintf(s.labels, sizeof s.labels, "%s", path_of("y.npy"));
  return s;
}

static const double MEAN[F] = {1, -2, 3}, STD[F] = {2, 4, 0.5};

/* scale 0.5, then normalize: what the values must become, computed directly */
static double expected(char kind, int64_t j, int64_t e) {
  return (raw_value(kind, j, e) * 0.5 - MEAN[e % F]) / STD[e % F];
}

static void load_prep(const char *x, sn_dataset *ds, sn_error *err) {
  sn_source src = npy_source(x);
  CHECK(sn_dataset_load(&src, ds, err) == 0, "load %s: %s", x, err->msg);
  CHECK(sn_dataset_scale(ds, 0.5f, err) == 0 && sn_dataset_normalize(ds, MEAN, STD, F, err) == 0,
        "preprocess %s: %s", x, err->msg);
}

static void test_dtype(const char *descr) {
  sn_error err = {{0}};
  char kind = descr[1], name[32];
  write_x(descr);
  snprintf(name, sizeof name, "x-%c%d.npy", kind, atoi(descr + 2));
  sn_dataset ds;
  load_prep(path_of(name), &ds, &err);
  CHECK(ds.x == NULL && ds.store != NULL && ds.n == N && ds.sample_elems == E,
        "%s: not kept as stored", descr);
  /* runs of 5 samples (the last one partial) in f32, and of 8 in f64 */
  float b32[5 * E];
  double b64[8 * E], worst = 0;
  for (int64_t j0 = 0; j0 < N; j0 += 5) {
    int64_t k = N - j0 < 5 ? N - j0 : 5;
    sn_dataset_get(&ds, j0, k, SN_RT_F32, b32);
    for (int64_t i = 0; i < k * E; i++)
      worst = fmax(worst, fabs(b32[i] - expected(kind, j0 + i / E, i % E)));
  }
  for (int64_t j0 = 0; j0 < N; j0 += 8) {
    int64_t k = N - j0 < 8 ? N - j0 : 8;
    sn_dataset_get(&ds, j0, k, SN_RT_F64, b64);
    for (int64_t i = 0; i < k * E; i++)
      worst = fmax(worst, fabs(b64[i] - expected(kind, j0 + i / E, i % E)));
  }
  CHECK(worst < 1e-5, "%s: converted values off by %g", descr, worst);

  /* the same file forced into memory converts to the same bits */
  setenv("SPECNET_DATA_IN_MEMORY", "1", 1);
  sn_dataset mem;
  load_prep(path_of(name), &mem, &err);
  unsetenv("SPECNET_DATA_IN_MEMORY");
  CHECK(mem.x != NULL && mem.store == NULL, "%s: not in memory", descr);
  float a[N * E], b[N * E];
  sn_dataset_get(&ds, 0, N, SN_RT_F32, a);
  sn_dataset_get(&mem, 0, N, SN_RT_F32, b);
  CHECK(memcmp(a, b, sizeof a) == 0, "%s: stored and in-memory values differ", descr);

  /* standardize: statistics from the stored set against the values by hand */
  double mean[F], sd[F], hm[F] = {0}, hs[F] = {0};
  CHECK(sn_dataset_stats(&ds, mean, sd, &err) == 0, "stats: %s", err.msg);
  for (int64_t i = 0; i < N * E; i++) hm[i % F] += expected(kind, i / E, i % E) / (N * A);
  for (int64_t i = 0; i < N * E; i++) {
    double d = expected(kind, i / E, i % E) - hm[i % F];
    hs[i % F] += d * d / (N * A);
  }
  for (int f = 0; f < F; f++)
    CHECK(fabs(mean[f] - hm[f]) < 1e-5 && fabs(sd[f] - sqrt(hs[f])) < 1e-5,
          "%s: feature %d mean %g std %g, by hand %g %g", descr, f, mean[f], sd[f], hm[f],
          sqrt(hs[f]));

  /* the split: a view of the store with its own copy of the preprocessing */
  sn_dataset held;
  CHECK(sn_dataset_split(&ds, 0.25, &held, &err) == 0, "split: %s", err.msg);
  const int64_t keep = 27; /* floor(37 * 0.75) */
  CHECK(ds.n == keep && held.n == N - keep && held.x == NULL && held.store == ds.store &&
            held.first == keep && held.y[0] == (int32_t)(keep % 4),
        "%s: split view n %lld first %lld", descr, (long long)held.n, (long long)held.first);
  CHECK(sn_dataset_normalize(&held, mean, sd, F, &err) == 0, "standardize held: %s", err.msg);
  double h[E];
  sn_dataset_get(&held, 2, 1, SN_RT_F64, h);
  for (int64_t e = 0; e < E; e++)
    CHECK(fabs(h[e] - (expected(kind, keep + 2, e) - mean[e % F]) / sd[e % F]) < 1e-5,
          "%s: standardized held value %lld: %g", descr, (long long)e, h[e]);
  sn_dataset_free(&ds); /* the view keeps the store */
  sn_dataset_get(&held, 0, 1, SN_RT_F64, h);
  CHECK(fabs(h[0] - (expected(kind, keep, 0) - mean[0]) / sd[0]) < 1e-5, "%s: view after free",
        descr);
  sn_dataset_free(&held);
  sn_dataset_free(&mem);
}

static void test_changed_file(void) {
  sn_error err = {{0}};
  write_x("|u1");
  sn_dataset ds;
  sn_source src = npy_source(path_of("x-u1.npy"));
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "load: %s", err.msg);
  CHECK(sn_dataset_check(&ds, &err) == 0, "unchanged file: %s", err.msg);
  /* shrinks between epochs (the next epoch's check): an error naming the file */
  CHECK(truncate(path_of("x-u1.npy"), 128 + 10 * E) == 0, "truncate");
  int rc = sn_dataset_check(&ds, &err);
  CHECK(rc != 0 && strstr(err.msg, path_of("x-u1.npy")) && strstr(err.msg, "changed"),
        "shrunk file: %s", rc ? err.msg : "no error");
  /* mid-epoch: reading a sample past the new end gives zeros, not a crash (SIGBUS) */
  float last[E];
  sn_dataset_get(&ds, N - 1, 1, SN_RT_F32, last);
  bool zeros = true;
  for (int e = 0; e < E; e++) zeros &= last[e] == 0;
  CHECK(zeros, "a sample past the end of the shrunk file is not zeros");
  sn_dataset_free(&ds);
  /* truncated at load */
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK(rc != 0 && strstr(err.msg, "x-u1.npy") && strstr(err.msg, "truncated"),
        "truncated file: %s", rc ? err.msg : "loaded");
}

static sn_source shard_source(const char *x, const char *y) {
  sn_source s = {.kind = SN_SRC_NPY};
  snprintf(s.images, sizeof s.images, "%s", path_of(x));
  snprintf(s.labels, sizeof s.labels, "%s", path_of(y));
  return s;
}

static void expect_error(const char *x, const char *y, const char *want1, const char *want2) {
  sn_error err = {{0}};
  sn_dataset ds;
  sn_source src = shard_source(x, y);
  int rc = sn_dataset_load(&src, &ds, &err);
  CHECK(rc != 0 && strstr(err.msg, want1) && strstr(err.msg, want2), "%s / %s: want '%s' '%s', got: %s",
        x, y, want1, want2, rc ? err.msg : "loaded");
  if (!rc) sn_dataset_free(&ds);
}

/* x: s/x-*.npy, y: s/y-*.npy: shards of 10, 17 and 10 samples (names sort in that
 * order) are the 37 samples of one file, runs crossing their boundaries included. */
static void test_shards(void) {
  sn_error err = {{0}};
  const int64_t from[4] = {0, 10, 27, N};
  for (int i = 0; i < 3; i++) {
    char xn[32], yn[32];
    snprintf(xn, sizeof xn, "x-s%d.npy", i);
    snprintf(yn, sizeof yn, "y-s%d.npy", i);
    write_x_as(xn, "<i2", from[i], from[i + 1] - from[i], A, F);
    write_y(yn, from[i], from[i + 1] - from[i]);
  }
  write_x("<i2");
  sn_dataset one, sh, mem;
  load_prep(path_of("x-i2.npy"), &one, &err);
  sn_source src = shard_source("x-s*.npy", "y-s*.npy");
  CHECK(sn_dataset_load(&src, &sh, &err) == 0, "shards: %s", err.msg);
  CHECK(sn_dataset_scale(&sh, 0.5f, &err) == 0 && sn_dataset_normalize(&sh, MEAN, STD, F, &err) == 0,
        "preprocess shards: %s", err.msg);
  CHECK(sh.n == N && sh.x == NULL && sh.sample_elems == E && sh.classes == 4, "shards: n %lld",
        (long long)sh.n);
  float a[N * E], b[N * E];
  sn_dataset_get(&one, 0, N, SN_RT_F32, a);
  for (int64_t j = 0; j < N; j += 7) /* runs of 7: 7..14 and 21..28 cross shards */
    sn_dataset_get(&sh, j, N - j < 7 ? N - j : 7, SN_RT_F32, b + j * E);
  CHECK(memcmp(a, b, sizeof a) == 0, "shards: values differ from the one file");
  bool labels = true;
  for (int j = 0; j < N; j++) labels &= sh.y[j] == one.y[j];
  CHECK(labels, "shards: labels differ");
  setenv("SPECNET_DATA_IN_MEMORY", "1", 1);
  CHECK(sn_dataset_load(&src, &mem, &err) == 0 && mem.x && !mem.store, "shards in memory: %s",
        err.msg);
  unsetenv("SPECNET_DATA_IN_MEMORY");
  CHECK(sn_dataset_scale(&mem, 0.5f, &err) == 0 && sn_dataset_normalize(&mem, MEAN, STD, F, &err) == 0,
        "preprocess: %s", err.msg);
  sn_dataset_get(&mem, 0, N, SN_RT_F32, b);
  CHECK(memcmp(a, b, sizeof a) == 0, "shards in memory: values differ");
  /* a list (one path per line, as the spec's YAML list gives it), globs inside it */
  sn_source lst = {.kind = SN_SRC_NPY};
  snprintf(lst.images, sizeof lst.images, "%s\n", path_of("x-s0.npy"));
  snprintf(lst.images + strlen(lst.images), sizeof lst.images - strlen(lst.images), "%s",
           path_of("x-s[12].npy"));
  snprintf(lst.labels, sizeof lst.labels, "%s\n", path_of("y-s0.npy"));
  snprintf(lst.labels + strlen(lst.labels), sizeof lst.labels - strlen(lst.labels), "%s\n",
           path_of("y-s1.npy"));
  snprintf(lst.labels + strlen(lst.labels), sizeof lst.labels - strlen(lst.labels), "%s",
           path_of("y-s2.npy"));
  sn_dataset ls;
  CHECK(sn_dataset_load(&lst, &ls, &err) == 0 && ls.n == N, "a list of shards: %s", err.msg);
  int64_t files_bytes = 0;
  CHECK(ls.store && sn_dataset_files(&ls, &files_bytes) == 3 && files_bytes > N * E * 2,
        "a list of shards: 3 files");
  CHECK(sn_dataset_scale(&ls, 0.5f, &err) == 0 && sn_dataset_normalize(&ls, MEAN, STD, F, &err) == 0,
        "preprocess: %s", err.msg);
  sn_dataset_get(&ls, 0, N, SN_RT_F32, b);
  CHECK(memcmp(a, b, sizeof a) == 0, "a list of shards: values differ from the one file");
  sn_dataset_free(&ls);
  snprintf(lst.labels, sizeof lst.labels, "%s", path_of("y-s*.npy"));
  snprintf(lst.images + strlen(lst.images), sizeof lst.images - strlen(lst.images), "\n%s",
           path_of("x-nothing-*.npy"));
  CHECK(sn_dataset_load(&lst, &ls, &err) != 0 && strstr(err.msg, "x-nothing-*.npy: no file matches"),
        "an empty glob in a list: %s", err.msg);
  src.limit = 12; /* limit: the first 12 across the first boundary */
  sn_dataset lim;
  CHECK(sn_dataset_load(&src, &lim, &err) == 0 && lim.n == 12 && lim.y[11] == 11 % 4, "limit: %s",
        err.msg);
  sn_dataset_free(&lim);
  sn_dataset_free(&mem);
  sn_dataset_free(&sh);
  sn_dataset_free(&one);

  /* bad shards, each an error naming the file */
  write_x_as("x-t0.npy", "<i2", 0, 10, A, F);
  write_x_as("x-t1.npy", "<i2", 10, 5, F, A); /* (3, 2) samples */
  write_y("y-t0.npy", 0, 10);
  write_y("y-t1.npy", 10, 5);
  expect_error("x-t*.npy", "y-t*.npy", "x-t1.npy: samples of shape (3, 2)", "first shard");
  write_x_as("x-t1.npy", "<u2", 10, 5, A, F);
  expect_error("x-t*.npy", "y-t*.npy", "x-t1.npy", "type u16");
  write_x_as("x-t1.npy", "<i2", 10, 5, A, F);
  write_y("y-t1.npy", 10, 4);
  expect_error("x-t*.npy", "y-t*.npy", "sample count mismatch", "y-t1.npy has 4");
  expect_error("x-t*.npy", "y-t0.npy", "2 x files", "pair up in order");
  expect_error("x-none*.npy", "y-t*.npy", "x-none*.npy", "no file matches");
  CHECK(truncate(path_of("x-t1.npy"), 150) == 0, "truncate"); /* 128 header + 22 of 60 */
  expect_error("x-t*.npy", "y-t*.npy", "x-t1.npy", "truncated");
}

/* shuffle: {block: B}: against the definition written out with a second array (the
 * blocks' order from sn_shuffle, each block's samples in order), for block sizes that
 * divide n and that leave a short last block; block 1 is sn_shuffle itself. */
static void test_shuffle_blocks(void) {
  enum { NS = 103 };
  int64_t got[NS], order[NS], want[NS], plain[NS];
  const int64_t blocks[] = {1, 2, 7, 10, 103, 200};
  for (size_t t = 0; t < sizeof blocks / sizeof *blocks; t++) {
    const int64_t B = blocks[t], nb = (NS + B - 1) / B;
    sn_shuffle_blocks(got, NS, B, 42, 3);
    sn_shuffle(order, nb, 42, 3);
    int64_t k = 0;
    for (int64_t j = 0; j < nb; j++)
      for (int64_t i = order[j] * B; i < (order[j] + 1) * B && i < NS; i++) want[k++] = i;
    CHECK(k == NS && memcmp(got, want, sizeof got) == 0, "block shuffle, block %lld",
          (long long)B);
  }
  sn_shuffle(plain, NS, 42, 3);
  sn_shuffle_blocks(got, NS, 1, 42, 3);
  CHECK(memcmp(got, plain, sizeof got) == 0, "block 1 is the plain shuffle");
  sn_shuffle_blocks(got, NS, 7, 42, 4);
  sn_shuffle_blocks(want, NS, 7, 42, 3);
  CHECK(memcmp(got, want, sizeof got) != 0, "another epoch, another order");
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/specnet-stream-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) {
    perror(dir);
    return 1;
  }
  write_y("y.npy", 0, N);
  const char *types[] = {"|u1", "|i1", "<u2", "<i2", "<u4", "<i4",
                         "<u8", "<i8", "<f2", "<f4", "<f8"};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++) test_dtype(types[i]);
  test_changed_file();
  test_shards();
  test_shuffle_blocks();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
