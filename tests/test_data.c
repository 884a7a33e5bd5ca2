/* Tests of the runtime's data side: the counter RNG (Random123 known answers,
 * statistics, shuffles), the IDX reader (raw and gzip, every failure mode we
 * promise a clear message for), IDX and built-in data set loading, splitting,
 * scaling, and the synthetic generators. If Debian's dataset-fashion-mnist is
 * installed, the real files are loaded and checked against values read from them
 * independently with zcat/od. Files are written to a fresh mkdtemp folder. */
#include "specnet/runtime.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "data_value.h"



/* The call must fail and its message contain every given fragment. */
#define CHECK_ERR(rc, err, ...)                                                                    \
  do {                                                                                             \
    const char *frags_[] = {__VA_ARGS__};                                                          \
    CHECK((rc) != 0, "expected an error containing '%s', got success", frags_[0]);                 \
    for (size_t k_ = 0; (rc) != 0 && k_ < sizeof frags_ / sizeof frags_[0]; k_++)                  \
      CHECK(strstr((err).msg, frags_[k_]), "message lacks '%s': %s", frags_[k_], (err).msg);       \
  } while (0)

static char tmpdir[64];

static const char *tpath(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

static void write_gz(const char *path, const void *data, size_t n) {
  gzFile g = gzopen(path, "wb");
  if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

static uint8_t *read_whole(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) exit(1);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  uint8_t *b = malloc(*n + 1);
  if (!b || fread(b, 1, *n, f) != *n) exit(1);
  fclose(f);
  return b;
}

/* An IDX unsigned-byte file in memory: header for dims[0..ndims), then data. */
static uint8_t *make_idx(int ndims, const uint32_t *dims, const uint8_t *data, size_t n,
                         size_t *len) {
  *len = 4 + 4 * (size_t)ndims + n;
  uint8_t *b = malloc(*len);
  b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = (uint8_t)ndims;
  for (int i = 0; i < ndims; i++) {
    b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
    b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
    b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
    b[7 + 4 * i] = (uint8_t)dims[i];
  }
  if (n) memcpy(b + 4 + 4 * ndims, data, n);
  return b;
}

static void cleanup_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
      cleanup_dir(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* ---------------------------------------------------------------------------
 * RNG */

static double unit(uint64_t v) { return (double)(v >> 11) * 0x1.0p-53; }

static void test_rng(void) {
  /* Random123 kat_vectors, philox2x64 10 rounds: ctr = (counter, stream), key = seed. */
  CHECK(sn_rand_u64(0, 0, 0) == UINT64_C(0xca00a0459843d731), "philox KAT 0");
  CHECK(sn_rand_u64(~UINT64_C(0), ~UINT64_C(0), ~UINT64_C(0)) == UINT64_C(0x65b021d60cd8310f),
        "philox KAT ff");
  CHECK(sn_rand_u64(UINT64_C(0xa4093822299f31d0), UINT64_C(0x13198a2e03707344),
                    UINT64_C(0x243f6a8885a308d3)) == UINT64_C(0x0a5e742c2997341c),
        "philox KAT pi");
  /* Box-Muller from both words of block 0 (second word 66c24222c9a845b5). */
  double want = sqrt(-2.0 * log(1.0 - unit(UINT64_C(0xca00a0459843d731)))) *
                cos(6.283185307179586 * unit(UINT64_C(0x66c24222c9a845b5)));
  CHECK(fabs(sn_rand_normal(0, 0, 0) - want) < 1e-12, "normal KAT: %.17g vs %.17g",
        sn_rand_normal(0, 0, 0), want);

  CHECK(sn_rand_u64(5, 6, 7) == sn_rand_u64(5, 6, 7), "u64 not deterministic");
  CHECK(sn_rand_u64(5, 6, 7) != sn_rand_u64(5, 6, 8), "counter ignored");
  CHECK(sn_rand_u64(5, 6, 7) != sn_rand_u64(5, 7, 7), "stream ignored");
  CHECK(sn_rand_u64(5, 6, 7) != sn_rand_u64(6, 6, 7), "seed ignored");

  /* uniform: range, mean 1/2, variance 1/12, 10 buckets */
  const int N = 200000;
  double sum = 0, sq = 0;
  int buckets[10] = {0};
  bool in_range = true;
  for (int i = 0; i < N; i++) {
    double u = sn_rand_uniform(42, 1, (uint64_t)i);
    in_range &= u >= 0.0 && u < 1.0;
    sum += u;
    sq += u * u;
    buckets[(int)(u * 10)]++;
  }
  double mean = sum / N, var = sq / N - mean * mean;
  CHECK(in_range, "uniform outside [0,1)");
  CHECK(fabs(mean - 0.5) < 0.005, "uniform mean %g", mean);
  CHECK(fabs(var - 1.0 / 12) < 0.002, "uniform variance %g", var);
  for (int b = 0; b < 10; b++)
    CHECK(abs(buckets[b] - N / 10) < 1000, "uniform bucket %d has %d of %d", b, buckets[b], N);

  /* normal: mean 0, std 1, P(|z| < 1) = 0.6827 */
  sum = sq = 0;
  int within = 0;
  for (int i = 0; i < N; i++) {
    double z = sn_rand_normal(42, 2, (uint64_t)i);
    sum += z;
    sq += z * z;
    within += fabs(z) < 1.0;
  }
  mean = sum / N;
  double sd = sqrt(sq / N - mean * mean);
  CHECK(fabs(mean) < 0.01, "normal mean %g", mean);
  CHECK(fabs(sd - 1.0) < 0.01, "normal std %g", sd);
  CHECK(fabs((double)within / N - 0.6827) < 0.005, "normal P(|z|<1) = %g", (double)within / N);

  /* shuffle: a permutation, deterministic, stream-dependent, unbiased positions */
  enum { P = 1000 };
  static int64_t a[P], b[P];
  static bool seen[P];
  sn_shuffle(a, P, 9, 1);
  sn_shuffle(b, P, 9, 1);
  CHECK(memcmp(a, b, sizeof a) == 0, "shuffle not deterministic");
  bool perm = true, moved = false;
  for (int i = 0; i < P; i++) {
    perm &= a[i] >= 0 && a[i] < P && !seen[a[i]];
    if (a[i] >= 0 && a[i] < P) seen[a[i]] = true;
    moved |= a[i] != i;
  }
  CHECK(perm, "shuffle is not a permutation");
  CHECK(moved, "shuffle left everything in place");
  b[0] = 123; /* the input is overwritten, not permuted */
  sn_shuffle(b, P, 9, 2);
  CHECK(memcmp(a, b, sizeof a) != 0, "shuffle ignores the stream");
  sn_shuffle(b, 0, 9, 1);
  sn_shuffle(b, 1, 9, 1);
  CHECK(b[0] == 0, "shuffle of one element");
  int pos[4] = {0};
  for (int s = 0; s < 40000; s++) {
    int64_t q[4];
    sn_shuffle(q, 4, 77, (uint64_t)s);
    for (int i = 0; i < 4; i++)
      if (q[i] == 0) pos[i]++;
  }
  for (int i = 0; i < 4; i++)
    CHECK(abs(pos[i] - 10000) < 600, "element 0 lands at %d in %d of 40000 shuffles", i, pos[i]);
}

/* ---------------------------------------------------------------------------
 * IDX reader */

enum { NS = 5, H = 3, W = 2 };
static uint8_t img[NS * H * W];                 /* (NS, H, W) */
static const uint8_t lab[NS] = {3, 0, 2, 1, 3}; /* (NS) */

static void test_idx(void) {
  for (int i = 0; i < NS * H * W; i++) img[i] = (uint8_t)(i * 37 + 11);
  const uint32_t idims[3] = {NS, H, W}, ldims[1] = {NS};
  size_t ilen, llen;
  uint8_t *ifile = make_idx(3, idims, img, sizeof img, &ilen);
  uint8_t *lfile = make_idx(1, ldims, lab, sizeof lab, &llen);
  write_file(tpath("img.idx"), ifile, ilen);
  write_gz(tpath("img.idx.gz"), ifile, ilen);
  write_file(tpath("lab.idx"), lfile, llen);
  write_gz(tpath("lab.idx.gz"), lfile, llen);

  sn_error err = {{0}};
  int rank;
  int64_t dims[4], count;
  uint8_t *data;
  const char *good[] = {"img.idx", "img.idx.gz"};
  for (int g = 0; g < 2; g++) {
    int rc = sn_idx_read(tpath(good[g]), &rank, dims, &data, &count, &err);
    CHECK(rc == 0, "%s: %s", good[g], err.msg);
    if (rc) continue;
    CHECK(rank == 2 && dims[0] == H && dims[1] == W && dims[2] == 1 && dims[3] == 1,
          "%s: rank %d dims %lld %lld", good[g], rank, (long long)dims[0], (long long)dims[1]);
    CHECK(count == NS, "%s: count %lld", good[g], (long long)count);
    CHECK(memcmp(data, img, sizeof img) == 0, "%s: data differs", good[g]);
    free(data);
  }
  int rc = sn_idx_read(tpath("lab.idx.gz"), &rank, dims, &data, &count, &err);
  CHECK(rc == 0 && rank == 0 && count == NS && memcmp(data, lab, NS) == 0, "labels: %s", err.msg);
  if (!rc) free(data);

  /* 4 per-sample dims is the most */
  {
    const uint32_t d5[5] = {2, 1, 2, 1, 3};
    size_t l;
    uint8_t *f = make_idx(5, d5, img, 12, &l);
    write_file(tpath("rank4.idx"), f, l);
    free(f);
    rc = sn_idx_read(tpath("rank4.idx"), &rank, dims, &data, &count, &err);
    CHECK(rc == 0 && rank == 4 && count == 2 && dims[3] == 3 && memcmp(data, img, 12) == 0,
          "rank 4: %s", err.msg);
    if (!rc) free(data);
    const uint32_t d6[6] = {1, 1, 1, 1, 1, 1};
    f = make_idx(6, d6, img, 1, &l);
    write_file(tpath("rank5.idx"), f, l);
    free(f);
    rc = sn_idx_read(tpath("rank5.idx"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "rank5.idx", "6 dimensions", "at most 5");
  }

  /* truncated data, raw and gzip (a complete gzip stream of too few bytes) */
  write_file(tpath("trunc.idx"), ifile, ilen - 3);
  rc = sn_idx_read(tpath("trunc.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "trunc.idx", "truncated", "expected 30 bytes of data, file has 27");
  write_gz(tpath("trunc.idx.gz"), ifile, ilen - 3);
  rc = sn_idx_read(tpath("trunc.idx.gz"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "trunc.idx.gz", "truncated", "expected 30 bytes of data, file has 27");

  /* a gzip stream cut in the middle: needs enough incompressible data to cut */
  {
    enum { BN = 200, BE = 64 };
    static uint8_t big[BN * BE];
    for (int i = 0; i < BN * BE; i++) big[i] = (uint8_t)(sn_rand_u64(1, 2, (uint64_t)i) >> 56);
    const uint32_t bd[2] = {BN, BE};
    size_t l, gl;
    uint8_t *f = make_idx(2, bd, big, sizeof big, &l);
    write_gz(tpath("big.idx.gz"), f, l);
    free(f);
    uint8_t *gz = read_whole(tpath("big.idx.gz"), &gl);
    rc = sn_idx_read(tpath("big.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK(rc == 0 && count == BN && memcmp(data, big, sizeof big) == 0, "big: %s", err.msg);
    if (!rc) free(data);
    write_file(tpath("cut.idx.gz"), gz, gl / 2);
    rc = sn_idx_read(tpath("cut.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "cut.idx.gz", "truncated", "gzip stream cut off");
    /* only the 8-byte trailer (CRC, size) missing: all data there, stream unfinished */
    write_file(tpath("notrailer.idx.gz"), gz, gl - 8);
    rc = sn_idx_read(tpath("notrailer.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "notrailer.idx.gz", "gzip");
    /* corrupt CRC */
    gz[gl - 8] ^= 0xff;
    write_file(tpath("crc.idx.gz"), gz, gl);
    rc = sn_idx_read(tpath("crc.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "crc.idx.gz", "corrupt gzip data", "incorrect data check");
    gz[gl - 8] ^= 0xff;
    /* corrupt deflate stream: the first block header becomes the reserved type 3 */
    gz[10] = 0xff;
    write_file(tpath("bad.idx.gz"), gz, gl);
    rc = sn_idx_read(tpath("bad.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "bad.idx.gz", "corrupt gzip data", "invalid block type");
    free(gz);
  }

  /* more data than the header declares */
  {
    uint8_t *more = malloc(ilen + 1);
    memcpy(more, ifile, ilen);
    more[ilen] = 7;
    write_file(tpath("more.idx"), more, ilen + 1);
    write_gz(tpath("more.idx.gz"), more, ilen + 1);
    free(more);
    rc = sn_idx_read(tpath("more.idx"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "more.idx", "1 bytes of trailing data");
    rc = sn_idx_read(tpath("more.idx.gz"), &rank, dims, &data, &count, &err);
    CHECK_ERR(rc, err, "more.idx.gz", "more data than the 30 bytes");
  }

  /* header problems */
  write_file(tpath("zip.idx"), "PK\x03\x04rest", 8);
  rc = sn_idx_read(tpath("zip.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "zip.idx", "not an IDX file", "bad magic bytes 50 4b 03 04");
  write_file(tpath("float.idx"), "\0\0\x0d\x01\0\0\0\x01\0\0\0\0", 12);
  rc = sn_idx_read(tpath("float.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "float.idx", "unsupported IDX element type 0x0d (float32)");
  write_file(tpath("huge.idx"), "\0\0\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16);
  rc = sn_idx_read(tpath("huge.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "huge.idx", "absurd IDX dimensions 4294967295x4294967295x4294967295");
  write_gz(tpath("huge.idx.gz"), "\0\0\x08\x02\x7f\xff\xff\xff\x00\x00\x00\x04", 12);
  rc = sn_idx_read(tpath("huge.idx.gz"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "huge.idx.gz", "truncated", "expected 8589934588 bytes of data, file has 0");
  write_file(tpath("zerodim.idx"), "\0\0\x08\x02\0\0\0\x02\0\0\0\0", 12);
  rc = sn_idx_read(tpath("zerodim.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "zerodim.idx", "dimension 2 of 2 is 0");
  write_file(tpath("nodims.idx"), "\0\0\x08\x00", 4);
  rc = sn_idx_read(tpath("nodims.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "nodims.idx", "0 dimensions");
  write_file(tpath("empty.idx"), "", 0);
  rc = sn_idx_read(tpath("empty.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "empty.idx", "file is empty");
  write_file(tpath("short.idx"), "\0\0\x08", 3);
  rc = sn_idx_read(tpath("short.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "short.idx", "truncated", "needs 4 bytes, file has 3");
  write_file(tpath("shortdims.idx"), "\0\0\x08\x03\0\0\0\x05\0\0", 10);
  rc = sn_idx_read(tpath("shortdims.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "shortdims.idx", "truncated", "needs 16 bytes, file has 10");
  rc = sn_idx_read(tpath("missing.idx"), &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "missing.idx", "cannot open", "No such file or directory");
  rc = sn_idx_read(tmpdir, &rank, dims, &data, &count, &err);
  CHECK_ERR(rc, err, "is a directory");
  CHECK(data == NULL, "data left set after a failure");

  free(ifile);
  free(lfile);
}

/* ---------------------------------------------------------------------------
 * Data sets from IDX files, splits, scaling, built-in lookup */

static sn_source idx_source(const char *images, const char *labels, int64_t limit) {
  sn_source s = {.kind = SN_SRC_IDX, .limit = limit};
  snprintf(s.images, sizeof s.images, "%s", images);
  snprintf(s.labels, sizeof s.labels, "%s", labels);
  return s;
}

static void test_dataset(void) {
  sn_error err = {{0}};
  sn_dataset ds;
  sn_source src = idx_source(tpath("img.idx.gz"), tpath("lab.idx"), 0);
  int rc = sn_dataset_load(&src, &ds, &err);
  CHECK(rc == 0, "idx load: %s", err.msg);
  if (rc) return;
  CHECK(ds.n == NS && ds.rank == 2 && ds.shape[0] == H && ds.shape[1] == W &&
            ds.sample_elems == H * W,
        "idx load shape");
  CHECK(ds.classes == 4, "classes %d, want 4", ds.classes);
  CHECK(strcmp(ds.origin, tpath("img.idx.gz")) == 0, "origin %s", ds.origin);
  bool same = true;
  for (int i = 0; i < NS * H * W; i++) same &= dsv(&ds, i) == (float)img[i];
  for (int i = 0; i < NS; i++) same &= ds.y[i] == lab[i];
  CHECK(same, "idx load values");

  /* scale, then split the last 40%: Keras keeps floor(5 * 0.6) = 3 */
  CHECK(sn_dataset_scale(&ds, 0.5f, &err) == 0, "scale: %s", err.msg);
  CHECK(dsv(&ds, 7) == 0.5f * img[7], "scale");
  sn_dataset held;
  rc = sn_dataset_split(&ds, 0.4, &held, &err);
  CHECK(rc == 0, "split: %s", err.msg);
  if (!rc) {
    CHECK(ds.n == 3 && held.n == 2, "split sizes %lld + %lld", (long long)ds.n, (long long)held.n);
    CHECK(held.sample_elems == H * W && held.classes == 4 && held.rank == 2, "held shape");
    same = true;
    for (int i = 0; i < 2 * H * W; i++) same &= dsv(&held, i) == 0.5f * img[3 * H * W + i];
    same &= held.y[0] == lab[3] && held.y[1] == lab[4];
    for (int i = 0; i < 3 * H * W; i++) same &= dsv(&ds, i) == 0.5f * img[i];
    CHECK(same, "split values");
    sn_dataset_free(&held);
  }
  rc = sn_dataset_split(&ds, 0.1, &held, &err); /* floor(3 * 0.9) = 2: fine */
  CHECK(rc == 0 && ds.n == 2 && held.n == 1, "split 0.1 of 3: %s", err.msg);
  if (!rc) sn_dataset_free(&held);
  rc = sn_dataset_split(&ds, 0.99, &held, &err);
  CHECK_ERR(rc, err, "leaves an empty training set");
  rc = sn_dataset_split(&ds, 0.0, &held, &err);
  CHECK_ERR(rc, err, "between 0 and 1");
  rc = sn_dataset_split(&ds, 1.5, &held, &err);
  CHECK_ERR(rc, err, "between 0 and 1");
  CHECK(ds.n == 2, "failed splits changed the set");
  sn_dataset_free(&ds);
  {
    sn_dataset one;
    sn_source s1 = idx_source(tpath("img.idx"), tpath("lab.idx"), 1);
    rc = sn_dataset_load(&s1, &one, &err);
    CHECK(rc == 0 && one.n == 1, "limit 1: %s", err.msg);
    if (!rc) {
      rc = sn_dataset_split(&one, 0.5, &held, &err);
      CHECK_ERR(rc, err, "of 1 samples", "leaves an empty");
      sn_dataset_free(&one);
    }
  }

  /* limit keeps the first N; classes still from the whole labels file */
  src = idx_source(tpath("img.idx"), tpath("lab.idx.gz"), 2);
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK(rc == 0 && ds.n == 2 && ds.classes == 4 && dsv(&ds, H * W) == img[H * W] && ds.y[1] == 0,
        "limit 2: %s", err.msg);
  if (!rc) sn_dataset_free(&ds);
  src.limit = -1;
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK_ERR(rc, err, "limit must be >= 0");

  /* images and labels disagree */
  const uint32_t four[1] = {4};
  size_t l;
  uint8_t *f = make_idx(1, four, lab, 4, &l);
  write_file(tpath("lab4.idx"), f, l);
  free(f);
  src = idx_source(tpath("img.idx"), tpath("lab4.idx"), 0);
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK_ERR(rc, err, "img.idx", "lab4.idx", "has 5 samples", "has 4 labels");
  /* labels must be 1-D */
  src = idx_source(tpath("img.idx"), tpath("img.idx"), 0);
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK_ERR(rc, err, "must be 1-D", "has 3 dimensions");
  /* a missing labels file */
  src = idx_source(tpath("img.idx"), tpath("nolabels.idx"), 0);
  rc = sn_dataset_load(&src, &ds, &err);
  CHECK_ERR(rc, err, "nolabels.idx", "No such file");
  CHECK(ds.x == NULL && ds.y == NULL, "failed load left buffers");
  sn_source none = {0};
  rc = sn_dataset_load(&none, &ds, &err);
  CHECK_ERR(rc, err, "no data source");

  /* built-in sets under $SPECNET_DATA: <name>/ first, then the folder itself */
  mkdir(tpath("data"), 0755);
  mkdir(tpath("data/fashion_mnist"), 0755);
  f = read_whole(tpath("img.idx"), &l);
  write_gz(tpath("data/fashion_mnist/train-images-idx3-ubyte.gz"), f, l);
  write_file(tpath("data/t10k-images-idx3-ubyte"), f, l);
  free(f);
  f = read_whole(tpath("lab.idx"), &l);
  write_file(tpath("data/fashion_mnist/train-labels-idx1-ubyte"), f, l);
  write_gz(tpath("data/t10k-labels-idx1-ubyte.gz"), f, l);
  free(f);
  setenv("SPECNET_DATA", tpath("data"), 1);
  sn_source b = {.kind = SN_SRC_BUILTIN, .name = "fashion_mnist", .split = "train"};
  rc = sn_dataset_load(&b, &ds, &err);
  CHECK(rc == 0 && ds.n == NS && strstr(ds.origin, "data/fashion_mnist/train-images"),
        "builtin from SPECNET_DATA/fashion_mnist: %s", rc ? err.msg : ds.origin);
  if (!rc) sn_dataset_free(&ds);
  sn_source bm = {.kind = SN_SRC_BUILTIN, .name = "mnist", .split = "test", .limit = 3};
  rc = sn_dataset_load(&bm, &ds, &err);
  CHECK(rc == 0 && ds.n == 3 && strstr(ds.origin, "data/t10k-images"),
        "builtin from SPECNET_DATA: %s", rc ? err.msg : ds.origin);
  if (!rc) sn_dataset_free(&ds);
  struct stat st;
  if (stat("/usr/share/datasets/mnist", &st) != 0) {
    sn_source bt = {.kind = SN_SRC_BUILTIN, .name = "mnist", .split = "train"};
    rc = sn_dataset_load(&bt, &ds, &err);
    CHECK_ERR(rc, err, "mnist:train not found", "train-images-idx3-ubyte[.gz]",
              tpath("data/mnist/"), "/usr/share/datasets/mnist/", "set SPECNET_DATA");
  }
  unsetenv("SPECNET_DATA");
  if (stat("/usr/share/datasets/mnist", &st) != 0) {
    sn_source bt = {.kind = SN_SRC_BUILTIN, .name = "mnist", .split = "train"};
    rc = sn_dataset_load(&bt, &ds, &err);
    CHECK_ERR(rc, err, "not found", "$SPECNET_DATA is not set");
  }
  sn_source bad = {.kind = SN_SRC_BUILTIN, .name = "cifar10", .split = "train"};
  rc = sn_dataset_load(&bad, &ds, &err);
  CHECK_ERR(rc, err, "unknown built-in data set 'cifar10'", "fashion_mnist");
  sn_source bads = {.kind = SN_SRC_BUILTIN, .name = "mnist", .split = "valid"};
  rc = sn_dataset_load(&bads, &ds, &err);
  CHECK_ERR(rc, err, "unknown split 'valid'");
}

/* ---------------------------------------------------------------------------
 * Synthetic sets */

static sn_source synth(const char *name, int64_t n, int k, int d, double noise, uint64_t seed) {
  sn_source s = {.kind = SN_SRC_SYNTHETIC,
                 .samples = n,
                 .classes = k,
                 .features = d,
                 .noise = noise,
                 .seed = seed};
  snprintf(s.name, sizeof s.name, "%s", name);
  return s;
}

static void test_synthetic(void) {
  sn_error err = {{0}};
  const struct {
    const char *name;
    int k, d;
  } gens[] = {{"blobs", 4, 5},   {"blobs", 7, 2}, {"blobs", 3, 1},  {"blobs", 10, 3},
              {"spirals", 3, 0}, {"xor", 2, 0},   {"linear", 3, 4}, {"linear", 2, 0}};
  for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++) {
    const char *name = gens[g].name;
    int k = gens[g].k, d = gens[g].d ? gens[g].d : 2;
    sn_source s = synth(name, 1000, k, gens[g].d, 0.1, 7);
    sn_dataset a, b, c, lim;
    int rc = sn_dataset_load(&s, &a, &err);
    CHECK(rc == 0, "%s: %s", name, err.msg);
    if (rc) continue;
    CHECK(a.n == 1000 && a.rank == 1 && a.shape[0] == d && a.sample_elems == d && a.classes == k,
          "%s: shape", name);
    rc = sn_dataset_load(&s, &b, &err);
    CHECK(rc == 0 && memcmp(a.x, b.x, sizeof(float) * 1000 * (size_t)d) == 0 &&
              memcmp(a.y, b.y, sizeof(int32_t) * 1000) == 0,
          "%s: same seed, different data", name);
    s.seed = 8;
    rc = sn_dataset_load(&s, &c, &err);
    CHECK(rc == 0 && memcmp(a.x, c.x, sizeof(float) * 1000 * (size_t)d) != 0, "%s: seed ignored",
          name);
    s.seed = 7;
    s.limit = 10;
    rc = sn_dataset_load(&s, &lim, &err);
    CHECK(rc == 0 && lim.n == 10 && memcmp(lim.x, a.x, sizeof(float) * 10 * (size_t)d) == 0 &&
              memcmp(lim.y, a.y, sizeof(int32_t) * 10) == 0,
          "%s: limit is not a prefix", name);
    int counts[16] = {0};
    bool finite = true, ordered = true;
    for (int i = 0; i < 1000; i++) {
      if (a.y[i] >= 0 && a.y[i] < k) counts[a.y[i]]++;
      ordered &= a.y[i] == i % k;
    }
    for (int i = 0; i < 1000 * d; i++) finite &= isfinite(a.x[i]);
    CHECK(finite, "%s: non-finite values", name);
    CHECK(!ordered, "%s: rows not shuffled", name);
    for (int c2 = 0; c2 < k; c2++)
      CHECK(abs(counts[c2] - 1000 / k) <= 1, "%s: class %d has %d of 1000", name, c2, counts[c2]);
    /* learnable: nearest class mean classifies (almost) everything for blobs and
     * linear at this noise level */
    if (!strcmp(name, "blobs") || (!strcmp(name, "linear") && k == 2)) {
      double mean[16][8] = {{0}};
      for (int i = 0; i < 1000; i++)
        for (int j = 0; j < d; j++) mean[a.y[i]][j] += a.x[i * d + j] / counts[a.y[i]];
      int right = 0;
      for (int i = 0; i < 1000; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int c2 = 0; c2 < k; c2++) {
          double dist = 0;
          for (int j = 0; j < d; j++)
            dist += (a.x[i * d + j] - mean[c2][j]) * (a.x[i * d + j] - mean[c2][j]);
          if (dist < bd) bd = dist, best = c2;
        }
        right += best == a.y[i];
      }
      CHECK(right >= 950, "%s (k %d, d %d): nearest mean gets only %d of 1000", name, k, d, right);
      /* blobs: class means (~ the centers at this noise) are well apart */
      double closest = INFINITY;
      for (int c1 = 0; c1 < k; c1++)
        for (int c2 = 0; c2 < c1; c2++) {
          double dist = 0;
          for (int j = 0; j < d; j++)
            dist += (mean[c1][j] - mean[c2][j]) * (mean[c1][j] - mean[c2][j]);
          closest = fmin(closest, sqrt(dist));
        }
      if (!strcmp(name, "blobs"))
        CHECK(closest > 2.5, "blobs (k %d, d %d): two centers only %g apart", k, d, closest);
    }
    if (!strcmp(name, "xor")) {
      int agree = 0;
      for (int i = 0; i < 1000; i++)
        agree += ((a.x[2 * i] > 0) == (a.x[2 * i + 1] > 0)) == (a.y[i] == 1);
      CHECK(agree >= 900, "xor: sign rule holds for only %d of 1000", agree);
    }
    sn_dataset_free(&a);
    sn_dataset_free(&b);
    sn_dataset_free(&c);
    sn_dataset_free(&lim);
  }
  {
    sn_dataset a;
    sn_source s = synth("xor", 500, 2, 0, 0.0, 3); /* no noise: exact rule, in the square */
    int rc = sn_dataset_load(&s, &a, &err);
    CHECK(rc == 0, "xor: %s", err.msg);
    bool exact = true;
    for (int i = 0; !rc && i < 500; i++)
      exact &= ((a.x[2 * i] >= 0) == (a.x[2 * i + 1] >= 0)) == (a.y[i] == 1) &&
               fabsf(a.x[2 * i]) <= 1 && fabsf(a.x[2 * i + 1]) <= 1;
    CHECK(exact, "xor without noise breaks the sign rule");
    if (!rc) sn_dataset_free(&a);
  }

  sn_dataset ds;
  sn_source s = synth("blobs", 0, 3, 2, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "samples must be between 1 and 100000000");
  s = synth("blobs", 100000001, 3, 2, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "samples must be between 1 and 100000000");
  s = synth("blobs", 10, 1, 2, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "classes must be between 2 and 1000, got 1");
  s = synth("blobs", 2000, 1001, 2, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "classes must be between 2 and 1000");
  s = synth("spirals", 10, 2, 0, -0.5, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "noise must be a finite number >= 0");
  s = synth("spirals", 10, 2, 0, NAN, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "noise must be");
  s = synth("xor", 10, 3, 0, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "xor has 2 classes");
  s = synth("spirals", 10, 2, 3, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "features must be 2");
  s = synth("blobs", 5, 10, 2, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "samples (5) must be at least classes (10)");
  s = synth("moons", 10, 2, 0, 0.1, 1);
  CHECK_ERR(sn_dataset_load(&s, &ds, &err), err, "unknown synthetic data set 'moons'");
}

/* ---------------------------------------------------------------------------
 * The real Fashion-MNIST, if Debian's package is installed. Expected values were
 * read with: zcat FILE | tail -c +9 | head -c 10 | od -An -tu1 (labels) and the sum
 * of the first 784 image bytes after the 16-byte header. */

static void check_fashion(const char *split, int64_t n, const int32_t first[10], long sum0) {
  sn_error err = {{0}};
  sn_dataset ds;
  sn_source s = {.kind = SN_SRC_BUILTIN, .name = "fashion_mnist"};
  snprintf(s.split, sizeof s.split, "%s", split);
  int rc = sn_dataset_load(&s, &ds, &err);
  CHECK(rc == 0, "fashion_mnist:%s: %s", split, err.msg);
  if (rc) return;
  CHECK(ds.n == n && ds.rank == 2 && ds.shape[0] == 28 && ds.shape[1] == 28 &&
            ds.sample_elems == 784 && ds.classes == 10,
        "fashion_mnist:%s: n %lld rank %d classes %d", split, (long long)ds.n, ds.rank, ds.classes);
  CHECK(memcmp(ds.y, first, 10 * sizeof(int32_t)) == 0, "fashion_mnist:%s: first labels %d %d",
        split, ds.y[0], ds.y[1]);
  double sum = 0;
  for (int i = 0; i < 784; i++) sum += dsv(&ds, i);
  CHECK(sum == (double)sum0, "fashion_mnist:%s: first image sums to %g, want %ld", split, sum,
        sum0);
  printf("fashion_mnist:%s: %lld samples from %s\n", split, (long long)ds.n, ds.origin);
  sn_dataset_free(&ds);
}

static void test_fashion_mnist(void) {
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
    printf("SKIP fashion_mnist: /usr/share/datasets/fashion-mnist is not installed\n");
    return;
  }
  setenv("SPECNET_DATA", tpath("empty"), 1); /* nothing there: falls through to Debian's */
  const int32_t train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  const int32_t test[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  check_fashion("train", 60000, train, 76247);
  check_fashion("test", 10000, test, 33456);
  unsetenv("SPECNET_DATA");
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/specnet_test_data_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_rng();
  test_idx();
  test_dataset();
  test_synthetic();
  test_fashion_mnist();
  cleanup_dir(tmpdir);
  if (failures) {
    fprintf(stderr, "test_data: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_data: all checks passed\n");
  return 0;
}
