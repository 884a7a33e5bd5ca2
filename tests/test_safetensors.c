/* Tests of model buffers (sn_model_alloc, sn_model_init_params) and safetensors
 * checkpoints: a hand-built model with a (3, 4) weight and a (3) bias is written,
 * its bytes are checked against the format, read back bit-exact, read across dtypes,
 * and every read error we promise a clear message for is provoked. When
 * /usr/bin/python3 has numpy, an independent Python reader/writer (plain json +
 * numpy, no safetensors package) cross-checks both directions. */
#include "specnet/runtime.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"



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

static uint8_t *read_whole(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  uint8_t *b = malloc(*n + 1);
  if (!b || fread(b, 1, *n, f) != *n) exit(1);
  b[*n] = 0;
  fclose(f);
  return b;
}

/* A safetensors file from a header text (padded here) and a data section. */
static void write_st(const char *path, const char *header, const void *data, size_t n) {
  size_t hl = strlen(header), padded = (hl + 7) / 8 * 8;
  uint8_t *b = malloc(8 + padded + n);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  memcpy(b + 8, header, hl);
  memset(b + 8 + hl, ' ', padded - hl);
  if (n) memcpy(b + 8 + padded, data, n);
  write_file(path, b, 8 + padded + n);
  free(b);
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static void cleanup_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* The model under test: dense.weight (3, 4) then dense.bias (3). */
static const sn_param_info INFOS[2] = {
    {.name = "dense.weight",
     .rank = 2,
     .shape = {3, 4},
     .offset = 0,
     .count = 12,
     .init = SN_INIT_GLOROT_UNIFORM,
     .fan_in = 4,
     .fan_out = 3},
    {.name = "dense.bias",
     .rank = 1,
     .shape = {3},
     .offset = 12,
     .count = 3,
     .init = SN_INIT_NORMAL,
     .init_arg = 0.5,
     .fan_in = 4,
     .fan_out = 3},
};

static sn_model make_model(sn_dtype_rt dtype, const sn_param_info *infos, int n,
                           int64_t param_count) {
  sn_model m = {.dtype = dtype,
                .param_count = param_count,
                .opt_state_count = 2 * param_count,
                .arena_bytes = 100,
                .n_params = n,
                .params_info = infos};
  sn_error err = {{0}};
  if (sn_model_alloc(&m, &err)) {
    fprintf(stderr, "sn_model_alloc: %s\n", err.msg);
    exit(1);
  }
  return m;
}

/* ---------------------------------------------------------------------------
 * Buffers and initialization */

static void test_model(void) {
  sn_error err = {{0}};
  sn_model m = make_model(SN_RT_F32, INFOS, 2, 15);
  void *bufs[4] = {m.params, m.grads, m.opt_state, m.arena};
  for (int i = 0; i < 4; i++)
    CHECK(bufs[i] && (uintptr_t)bufs[i] % 64 == 0, "buffer %d alignment", i);
  bool zero = true;
  for (int i = 0; i < 15; i++) zero &= ((float *)m.params)[i] == 0 && ((float *)m.grads)[i] == 0;
  for (int i = 0; i < 100; i++) zero &= ((uint8_t *)m.arena)[i] == 0;
  CHECK(zero, "buffers not zeroed");

  ((float *)m.grads)[3] = 5;
  ((float *)m.opt_state)[29] = 5;
  sn_model_init_params(&m, 42);
  CHECK(((float *)m.grads)[3] == 0 && ((float *)m.opt_state)[29] == 0,
        "init did not zero grads / optimizer state");
  const float *w = m.params;
  double lim = sqrt(6.0 / 7.0);
  bool inside = true, nonzero = false;
  for (int i = 0; i < 12; i++) {
    inside &= fabs(w[i]) <= lim;
    nonzero |= w[i] != 0;
  }
  CHECK(inside && nonzero, "glorot_uniform values outside +-%g or all zero", lim);
  CHECK(w[12] != 0 && w[12] != w[13], "normal bias not drawn");
  /* exact values: stream SN_STREAM_INIT + parameter index, counter = element index */
  bool exact = true;
  for (int e = 0; e < 12; e++)
    exact &= w[e] == (float)(lim * (2 * sn_rand_uniform(42, SN_STREAM_INIT, (uint64_t)e) - 1));
  for (int e = 0; e < 3; e++)
    exact &= w[12 + e] == (float)(0.5 * sn_rand_normal(42, SN_STREAM_INIT + 1, (uint64_t)e));
  CHECK(exact, "init values are not the documented draws");

  sn_model m2 = make_model(SN_RT_F32, INFOS, 2, 15);
  sn_model_init_params(&m2, 42);
  CHECK(memcmp(m.params, m2.params, 15 * 4) == 0, "init not deterministic");
  sn_model_init_params(&m2, 43);
  CHECK(memcmp(m.params, m2.params, 12 * 4) != 0, "init ignores the seed");
  /* a parameter's values do not depend on the ones after it */
  sn_model m1 = make_model(SN_RT_F32, INFOS, 1, 12);
  sn_model_init_params(&m1, 42);
  CHECK(memcmp(m.params, m1.params, 12 * 4) == 0, "init depends on other parameters");
  sn_model_free(&m1);
  sn_model_free(&m2);
  sn_model_free(&m);
  CHECK(m.params == NULL && m.arena == NULL, "free left pointers");

  /* statistics of the initializers on a (200, 100) weight, in f64 */
  const struct {
    sn_init_kind k;
    double arg, std, bound; /* expected std; bound > 0: |v| <= bound */
  } cases[] = {
      {SN_INIT_GLOROT_UNIFORM, 0, sqrt(2.0 / 300), sqrt(6.0 / 300)},
      {SN_INIT_GLOROT_NORMAL, 0, sqrt(2.0 / 300), 0},
      {SN_INIT_HE_UNIFORM, 0, sqrt(2.0 / 100), sqrt(6.0 / 100)},
      {SN_INIT_HE_NORMAL, 0, sqrt(2.0 / 100), 0},
      {SN_INIT_NORMAL, 0.02, 0.02, 0},
      {SN_INIT_ZEROS, 0, 0, 0},
      {SN_INIT_ONES, 0, 0, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    sn_param_info big = {.name = "w",
                         .rank = 2,
                         .shape = {200, 100},
                         .count = 20000,
                         .init = cases[c].k,
                         .init_arg = cases[c].arg,
                         .fan_in = 100,
                         .fan_out = 200};
    sn_model b = make_model(SN_RT_F64, &big, 1, 20000);
    sn_model_init_params(&b, 1);
    const double *v = b.params;
    double sum = 0, sq = 0, mx = 0;
    for (int i = 0; i < 20000; i++) {
      sum += v[i];
      sq += v[i] * v[i];
      mx = fmax(mx, fabs(v[i]));
    }
    double mean = sum / 20000, sd = sqrt(sq / 20000 - mean * mean);
    if (cases[c].k == SN_INIT_ZEROS || cases[c].k == SN_INIT_ONES) {
      double want = cases[c].k == SN_INIT_ONES;
      CHECK(mean == want && sd == 0, "init %d: constant %g expected, mean %g", cases[c].k, want,
            mean);
    } else {
      CHECK(fabs(mean) < 0.05 * cases[c].std, "init %d: mean %g", cases[c].k, mean);
      CHECK(fabs(sd / cases[c].std - 1) < 0.03, "init %d: std %g, want %g", cases[c].k, sd,
            cases[c].std);
      if (cases[c].bound > 0)
        CHECK(mx <= cases[c].bound && mx > 0.99 * cases[c].bound, "init %d: max |v| %g, bound %g",
              cases[c].k, mx, cases[c].bound);
    }
    sn_model_free(&b);
  }

  /* alloc validates sizes and the parameter table */
  sn_model bad = {.dtype = 7, .param_count = 1};
  CHECK_ERR(sn_model_alloc(&bad, &err), err, "neither f32 nor f64");
  bad = (sn_model){.dtype = SN_RT_F32, .param_count = -1};
  CHECK_ERR(sn_model_alloc(&bad, &err), err, "out of range");
  bad = (sn_model){.dtype = SN_RT_F64, .param_count = INT64_MAX / 4};
  CHECK_ERR(sn_model_alloc(&bad, &err), err, "out of range");
  bad = (sn_model){.dtype = SN_RT_F32, .param_count = 14, .n_params = 2, .params_info = INFOS};
  CHECK_ERR(sn_model_alloc(&bad, &err), err, "'dense.bias'", "[12, 15)", "outside the 14");
  sn_param_info wrong = INFOS[0];
  wrong.count = 11;
  bad = (sn_model){.dtype = SN_RT_F32, .param_count = 15, .n_params = 1, .params_info = &wrong};
  CHECK_ERR(sn_model_alloc(&bad, &err), err, "count 11 is not the product");
  CHECK(bad.params == NULL, "failed alloc left a buffer");
  sn_model empty = {.dtype = SN_RT_F32};
  CHECK(sn_model_alloc(&empty, &err) == 0 && empty.params && empty.opt_state, "empty model: %s",
        err.msg);
  sn_model_free(&empty);
}

/* ---------------------------------------------------------------------------
 * Write, layout, read back */

static void test_roundtrip(void) {
  sn_error err = {{0}};
  sn_model m = make_model(SN_RT_F32, INFOS, 2, 15);
  sn_model_init_params(&m, 7);
  const char *path = tpath("model.safetensors");
  int rc = sn_safetensors_write(path, &m, &err);
  CHECK(rc == 0, "write: %s", err.msg);
  CHECK(count_files(tmpdir) == 1, "temporary file left behind");

  /* the bytes, by hand */
  size_t n;
  uint8_t *b = read_whole(path, &n);
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
  CHECK(hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
  CHECK(n == 8 + hl + 60, "file is %zu bytes, want 8 + %llu + 60", n, (unsigned long long)hl);
  if (n == 8 + hl + 60) {
    char *h = malloc(hl + 1);
    memcpy(h, b + 8, hl);
    h[hl] = 0;
    CHECK(strstr(h, "\"dense.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],"
                    "\"data_offsets\":[0,48]}"),
          "header lacks the weight entry: %s", h);
    CHECK(strstr(h, "\"dense.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}"),
          "header lacks the bias entry: %s", h);
    CHECK(strstr(h, "\"__metadata__\":{\"format\":\"pt\"}"), "header lacks metadata: %s", h);
    CHECK(h[0] == '{', "header does not start with '{'");
    size_t end = strlen(h);
    while (end > 0 && h[end - 1] == ' ') end--;
    CHECK(end > 0 && h[end - 1] == '}', "header padding is not spaces after '}'");
    CHECK(memcmp(b + 8 + hl, m.params, 60) == 0, "data section differs from the params");
    free(h);
  }
  free(b);

  /* read back bit-exact into a zeroed model */
  sn_model r = make_model(SN_RT_F32, INFOS, 2, 15);
  rc = sn_safetensors_read(path, &r, &err);
  CHECK(rc == 0, "read: %s", err.msg);
  CHECK(memcmp(r.params, m.params, 60) == 0, "read back differs");

  /* the parameter table order need not match the file's */
  const sn_param_info swapped[2] = {
      {.name = "dense.bias", .rank = 1, .shape = {3}, .offset = 0, .count = 3},
      {.name = "dense.weight", .rank = 2, .shape = {3, 4}, .offset = 3, .count = 12}};
  sn_model s = make_model(SN_RT_F32, swapped, 2, 15);
  rc = sn_safetensors_read(path, &s, &err);
  CHECK(rc == 0 && memcmp(s.params, (float *)m.params + 12, 12) == 0 &&
            memcmp((float *)s.params + 3, m.params, 48) == 0,
        "read in another order: %s", err.msg);
  sn_model_free(&s);

  /* f64 model -> file -> f32 model, and f32 file -> f64 model */
  sn_model d = make_model(SN_RT_F64, INFOS, 2, 15);
  sn_model_init_params(&d, 7);
  const char *p64 = tpath("model64.safetensors");
  rc = sn_safetensors_write(p64, &d, &err);
  CHECK(rc == 0, "write f64: %s", err.msg);
  b = read_whole(p64, &n);
  CHECK(strstr((char *)b + 8, "\"dtype\":\"F64\""), "f64 file lacks F64");
  free(b);
  rc = sn_safetensors_read(p64, &r, &err);
  bool same = rc == 0;
  for (int i = 0; same && i < 15; i++)
    same = ((float *)r.params)[i] == (float)((double *)d.params)[i];
  CHECK(same, "F64 -> f32 conversion: %s", err.msg);
  sn_model d2 = make_model(SN_RT_F64, INFOS, 2, 15);
  rc = sn_safetensors_read(path, &d2, &err);
  same = rc == 0;
  for (int i = 0; same && i < 15; i++)
    same = ((double *)d2.params)[i] == (double)((float *)m.params)[i];
  CHECK(same, "F32 -> f64 conversion: %s", err.msg);
  rc = sn_safetensors_read(p64, &d2, &err);
  CHECK(rc == 0 && memcmp(d2.params, d.params, 15 * 8) == 0, "f64 roundtrip: %s", err.msg);

  /* names that need JSON escapes survive */
  const sn_param_info odd[3] = {
      {.name = "a\"b\\c", .rank = 1, .shape = {2}, .offset = 0, .count = 2, .init = SN_INIT_ONES},
      {.name = "tab\there\x01",
       .rank = 0,
       .offset = 2,
       .count = 1,
       .init = SN_INIT_NORMAL,
       .init_arg = 1},
      {.name = "caf\xc3\xa9.w",
       .rank = 1,
       .shape = {1},
       .offset = 3,
       .count = 1,
       .init = SN_INIT_NORMAL,
       .init_arg = 1}};
  sn_model o = make_model(SN_RT_F32, odd, 3, 4);
  sn_model_init_params(&o, 3);
  rc = sn_safetensors_write(tpath("odd.safetensors"), &o, &err);
  sn_model o2 = make_model(SN_RT_F32, odd, 3, 4);
  rc = rc ? rc : sn_safetensors_read(tpath("odd.safetensors"), &o2, &err);
  CHECK(rc == 0 && memcmp(o.params, o2.params, 16) == 0, "escaped names: %s", err.msg);
  sn_model_free(&o);
  sn_model_free(&o2);

  rc = sn_safetensors_write(tpath("no/such/dir/m.safetensors"), &m, &err);
  CHECK_ERR(rc, err, "no/such/dir/m.safetensors", "cannot create", "No such file or directory");

  sn_model_free(&m);
  sn_model_free(&r);
  sn_model_free(&d);
  sn_model_free(&d2);
}

/* ---------------------------------------------------------------------------
 * Read errors, and the parts of the format we accept beyond what we write */

static void test_read_errors(void) {
  sn_error err = {{0}};
  sn_model m = make_model(SN_RT_F32, INFOS, 2, 15);
  sn_model_init_params(&m, 5);
  const char *path = tpath("good.safetensors");
  if (sn_safetensors_write(path, &m, &err)) {
    CHECK(0, "write: %s", err.msg);
    return;
  }
  size_t n;
  uint8_t *good = read_whole(path, &n);
  sn_model r = make_model(SN_RT_F32, INFOS, 2, 15);

  /* a parameter the file lacks */
  const sn_param_info more[3] = {
      INFOS[0],
      INFOS[1],
      {.name = "dense2.weight", .rank = 2, .shape = {1, 3}, .offset = 15, .count = 3}};
  sn_model mm = make_model(SN_RT_F32, more, 3, 18);
  CHECK_ERR(sn_safetensors_read(path, &mm, &err), err, "good.safetensors",
            "tensor 'dense2.weight' not found", "has 2 tensors");
  sn_model_free(&mm);
  /* a shape the model does not expect */
  sn_param_info t[2] = {INFOS[0], INFOS[1]};
  t[0].shape[0] = 4, t[0].shape[1] = 3;
  sn_model ms = make_model(SN_RT_F32, t, 2, 15);
  CHECK_ERR(sn_safetensors_read(path, &ms, &err), err,
            "tensor 'dense.weight' has shape (3, 4), the model expects (4, 3)");
  t[0] = INFOS[0];
  t[1].rank = 2, t[1].shape[0] = 3, t[1].shape[1] = 1;
  sn_model_free(&ms);
  ms = make_model(SN_RT_F32, t, 2, 15);
  CHECK_ERR(sn_safetensors_read(path, &ms, &err), err, "has shape (3), the model expects (3, 1)");
  sn_model_free(&ms);

  /* truncations */
  write_file(tpath("cut.safetensors"), good, n - 4);
  CHECK_ERR(sn_safetensors_read(tpath("cut.safetensors"), &r, &err), err, "cut.safetensors",
            "'dense.bias'", "outside the 56-byte data section (truncated file?)");
  write_file(tpath("cut2.safetensors"), good, 20);
  CHECK_ERR(sn_safetensors_read(tpath("cut2.safetensors"), &r, &err), err, "truncated",
            "runs past the end of the 20-byte file");
  write_file(tpath("cut3.safetensors"), good, 5);
  CHECK_ERR(sn_safetensors_read(tpath("cut3.safetensors"), &r, &err), err, "truncated",
            "file has 5 bytes");
  CHECK_ERR(sn_safetensors_read(tpath("none.safetensors"), &r, &err), err, "none.safetensors",
            "No such file or directory");

  /* headers that are not what they should be */
  uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 1, '{', '}'};
  write_file(tpath("huge.safetensors"), huge, sizeof huge);
  CHECK_ERR(sn_safetensors_read(tpath("huge.safetensors"), &r, &err), err, "over the 100 MB limit");
  write_st(tpath("text.safetensors"), "hello, world", "", 0);
  CHECK_ERR(sn_safetensors_read(tpath("text.safetensors"), &r, &err), err,
            "malformed safetensors header at byte 8", "not a JSON object");
  const struct {
    const char *header, *frag;
  } bad[] = {
      {"{\"dense.weight\": [1, 2", "expected '{'"},
      {"{\"dense.weight\": {\"dtype\": \"F32\", \"shape\": [3, 4]}}", "lacks \"data_offsets\""},
      {"{\"dense.weight\": {\"dtype\": \"F32\", \"shape\": [3, 4]", "unexpected end of header"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]", "unexpected end"},
      {"{\"a\" {}}", "expected ':' after an object key"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
       "negative number"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}",
       "fraction or exponent"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}", "leading zero"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 4]}}",
       "integer too large"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "needs 2 entries"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}",
       "too many entries"},
      {"{\"a\\q\": {}}", "unknown escape '\\q'"},
      {"{\"a\\ud800\": {}}", "without its low half"},
      {"{\"a\\u00zz\": {}}", "bad \\u escape"},
      {"{\"a\x01\": {}}", "control character 0x01"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}} x",
       "after the header"},
      {"{\"__metadata__\": [1]}", "\"__metadata__\" must be an object"},
      {"{\"__metadata__\": {\"a\": tru}}", "expected a value"},
      {"{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\"}}", "\"dtype\" given twice"},
      {"{\"dense.weight\": {\"dtype\": \"F32\", \"shape\": [3, 4], \"data_offsets\": [0, 44]}}",
       "(F32, 2 dims) needs 48 bytes but data_offsets span 44"},
      {"{\"dense.weight\": {\"dtype\": \"F32\", \"shape\": [3, 4], \"data_offsets\": [8, 4]}}",
       "data_offsets [8, 4] outside"},
      {"{\"dense.weight\": {\"dtype\": \"I32\", \"shape\": [3, 4], \"data_offsets\": [0, 48]},"
       "\"dense.bias\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [48, 60]}}",
       "tensor 'dense.weight' has dtype I32; only F32, F64, F16 and BF16"},
      {"{\"dense.bias\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]},"
       "\"dense.bias\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [12, 24]}}",
       "appears twice"},
  };
  uint8_t zeros[64] = {0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_st(tpath("bad.safetensors"), bad[i].header, zeros, sizeof zeros);
    int rc = sn_safetensors_read(tpath("bad.safetensors"), &r, &err);
    CHECK_ERR(rc, err, "bad.safetensors", bad[i].frag);
  }

  /* accepted: metadata of any JSON, whitespace, unknown keys and tensors, escapes in
   * names, F16 and BF16 data, tensors in any order */
  uint16_t half[12] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000,
                       0x3555, 0x0400, 0x3C00, 0x3C00, 0x3C00, 0x3C00}; /* F16 (3, 4) */
  const float half_want[12] = {1.0f,        -2.0f,    0.5f, 65504.0f, 0x1p-24f, -0.0f,
                               0x1.554p-2f, 0x1p-14f, 1,    1,        1,        1};
  uint16_t bf[3] = {0x3F80, 0xC040, 0x4049}; /* BF16 (3): 1, -3, 3.140625 */
  uint8_t data[24 + 6 + 8];
  memcpy(data, half, 24);
  memcpy(data + 24, bf, 6);
  memset(data + 30, 0xAB, 8);
  const char *hdr =
      "{ \"__metadata__\" : {\"format\": \"pt\", \"nested\": {\"k\": [1, -2.5e3, true, null, "
      "\"\\u00e9\\ud83d\\ude00\\n\"]}},\n"
      "  \"step\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [30, 38]},\n"
      "  \"dense.bi\\u0061s\": {\"shape\": [3], \"data_offsets\": [24, 30], \"dtype\": \"BF16\","
      " \"extra\": {\"x\": [[]]}},\n"
      "  \"weird\": {\"dtype\": \"Q4_K\", \"shape\": [7], \"data_offsets\": [0, 3]},\n"
      "  \"dense.weight\": {\"dtype\": \"F16\", \"shape\": [3, 4], \"data_offsets\": [0, 24]}\n}";
  write_st(tpath("half.safetensors"), hdr, data, sizeof data);
  int rc = sn_safetensors_read(tpath("half.safetensors"), &r, &err);
  CHECK(rc == 0, "F16/BF16 file: %s", err.msg);
  const float *p = r.params;
  bool same = rc == 0;
  for (int i = 0; same && i < 12; i++) same = memcmp(&p[i], &half_want[i], 4) == 0;
  CHECK(same, "F16 conversion: %a %a %a %a %a %a %a %a", p[0], p[1], p[2], p[3], p[4], p[5], p[6],
        p[7]);
  CHECK(rc == 0 && p[12] == 1.0f && p[13] == -3.0f && p[14] == 3.140625f,
        "BF16 conversion: %g %g %g", p[12], p[13], p[14]);

  free(good);
  sn_model_free(&m);
  sn_model_free(&r);
}

/* ---------------------------------------------------------------------------
 * Cross-check with an independent reader and writer: Python's json + numpy */

static const char *PY_READ =
    "import json, struct, sys, numpy as np\n"
    "b = open(sys.argv[1], 'rb').read()\n"
    "n = struct.unpack('<Q', b[:8])[0]\n"
    "h = json.loads(b[8:8 + n])\n"
    "assert n % 8 == 0, 'header length'\n"
    "data = b[8 + n:]\n"
    "with open(sys.argv[2], 'w') as out:\n"
    "    for name in ('dense.weight', 'dense.bias'):\n"
    "        t = h[name]\n"
    "        s, e = t['data_offsets']\n"
    "        a = np.frombuffer(data[s:e], dtype={'F32': '<f4', 'F64': '<f8'}[t['dtype']])\n"
    "        a = a.reshape(t['shape'])\n"
    "        out.write(name + ' ' + 'x'.join(map(str, a.shape)) + ' ' +\n"
    "                  ' '.join(float(v).hex() for v in a.ravel()) + '\\n')\n"
    "assert h['__metadata__'] == {'format': 'pt'}\n";

static const char *PY_WRITE =
    "import json, struct, sys, numpy as np\n"
    "w = (np.arange(12, dtype='<f8').reshape(3, 4) - 5.5) / 3\n"
    "b = np.array([1e-3, -2.0, 1e10], dtype='<f8')\n"
    "blob = b.tobytes() + w.tobytes()\n"
    "h = {'dense.weight': {'dtype': 'F64', 'shape': [3, 4], 'data_offsets': [24, 120]},\n"
    "     'dense.bias': {'dtype': 'F64', 'shape': [3], 'data_offsets': [0, 24]},\n"
    "     '__metadata__': {'format': 'np', 'by': 'test_safetensors'}}\n"
    "hb = json.dumps(h, indent=1).encode()\n"
    "hb += b' ' * (-len(hb) % 8)\n"
    "open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hb)) + hb + blob)\n";

static void test_python(void) {
  if (access("/usr/bin/python3", X_OK) != 0 ||
      system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    printf("SKIP python cross-check: /usr/bin/python3 with numpy not available\n");
    return;
  }
  sn_error err = {{0}};
  char cmd[2048];
  write_file(tpath("read.py"), PY_READ, strlen(PY_READ));
  write_file(tpath("write.py"), PY_WRITE, strlen(PY_WRITE));

  /* ours -> numpy, f32 and f64 */
  for (int dt = 0; dt < 2; dt++) {
    sn_model m = make_model(dt ? SN_RT_F64 : SN_RT_F32, INFOS, 2, 15);
    sn_model_init_params(&m, 11);
    if (sn_safetensors_write(tpath("py.safetensors"), &m, &err)) CHECK(0, "write: %s", err.msg);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s", tpath("read.py"),
             tpath("py.safetensors"), tpath("py.txt"));
    int rc = system(cmd);
    CHECK(rc == 0, "python reader failed on our %s file", dt ? "F64" : "F32");
    if (rc == 0) {
      size_t n;
      char *txt = (char *)read_whole(tpath("py.txt"), &n);
      const char *want_shape[2] = {"3x4", "3"};
      char *line = txt;
      for (int pi = 0; pi < 2 && line; pi++) {
        char name[64], shape[16];
        int used = 0;
        CHECK(sscanf(line, "%63s %15s %n", name, shape, &used) == 2, "python output: %s", line);
        CHECK(!strcmp(name, INFOS[pi].name) && !strcmp(shape, want_shape[pi]), "python sees %s %s",
              name, shape);
        char *q = line + used;
        for (int e = 0; e < INFOS[pi].count; e++) {
          char *endp;
          double v = strtod(q, &endp);
          double want = dt ? ((double *)m.params)[INFOS[pi].offset + e]
                           : ((float *)m.params)[INFOS[pi].offset + e];
          CHECK(endp != q && v == want, "python reads %s[%d] = %a, we wrote %a", name, e, v, want);
          q = endp;
        }
        line = strchr(line, '\n');
        if (line) line++;
      }
      free(txt);
    }
    sn_model_free(&m);
  }

  /* numpy -> ours: F64 tensors in the other order, pretty-printed header */
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", tpath("write.py"), tpath("np.safetensors"));
  CHECK(system(cmd) == 0, "python writer failed");
  sn_model r = make_model(SN_RT_F64, INFOS, 2, 15);
  int rc = sn_safetensors_read(tpath("np.safetensors"), &r, &err);
  CHECK(rc == 0, "reading numpy's file: %s", err.msg);
  const double *p = r.params;
  bool same = rc == 0;
  for (int i = 0; same && i < 12; i++) same = p[i] == (i - 5.5) / 3;
  same &= p[12] == 1e-3 && p[13] == -2.0 && p[14] == 1e10;
  CHECK(same, "numpy's values read wrong: %a %a %a", p[0], p[12], p[14]);
  sn_model_free(&r);
  printf("python cross-check: ok\n");
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/specnet_test_st_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_model();
  test_roundtrip();
  test_read_errors();
  test_python();
  cleanup_dir(tmpdir);
  if (failures) {
    fprintf(stderr, "test_safetensors: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_safetensors: all checks passed\n");
  return 0;
}
