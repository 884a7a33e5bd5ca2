/* Tests of the CSV and NPY data sources (runtime/data_csv.c, runtime/data_npy.c) and
 * of the whole-set preprocessing in runtime/data_source.c: normalize, standardize
 * statistics, one-hot targets, the validation split carrying float targets.
 *
 * Every file is written by the test itself into a fresh mkdtemp folder: CSV as text,
 * NPY byte by byte from the format description (so the reader is checked against
 * the format, not against itself). Error cases compare the whole message, since the
 * message is what a user sees. */
#include "specnet/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "data_value.h"



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

static void write_text(const char *name, const char *text) {
  write_file(tpath(name), text, strlen(text));
}

/* ---------------------------------------------------------------------------
 * CSV */

static sn_source csv_source(const char *name, bool header, const char *label_col, int label_index) {
  sn_source s = {.kind = SN_SRC_CSV, .header = header, .label_index = label_index};
  snprintf(s.path, sizeof s.path, "%s", tpath(name));
  snprintf(s.label_col, sizeof s.label_col, "%s", label_col ? label_col : "");
  return s;
}

/* The load must fail with exactly this message (the temp folder written as DIR). */
static void expect_error(const sn_source *src, const char *want_fmt) {
  sn_dataset ds;
  sn_error err = {{0}};
  char want[2048];
  snprintf(want, sizeof want, want_fmt, tmpdir, tmpdir, tmpdir);
  int rc = sn_dataset_load(src, &ds, &err);
  CHECK(rc != 0, "expected the error \"%s\", got success", want);
  if (rc == 0)
    sn_dataset_free(&ds);
  else
    CHECK(strcmp(err.msg, want) == 0, "message\n  got:  %s\n  want: %s", err.msg, want);
}

static void test_csv_good(void) {
  /* header, label by name in the middle, quotes, spaces, CRLF, a blank line, BOM */
  write_text("iris.csv", "\xEF\xBB\xBF"
                         "sepal_length, \"species\" ,width\r\n"
                         "5.1, 0, 3.5\r\n"
                         "\r\n"
                         "\"4.9\",1,3.0\r\n"
                         "  6.3 ,2,  -2.5e-1\n");
  sn_source src = csv_source("iris.csv", true, "species", 0);
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "iris.csv: %s", err.msg);
  CHECK(ds.n == 3 && ds.rank == 1 && ds.shape[0] == 2 && ds.sample_elems == 2 && ds.classes == 3,
        "n %lld rank %d features %lld classes %d", (long long)ds.n, ds.rank,
        (long long)ds.sample_elems, ds.classes);
  const float want_x[] = {5.1f, 3.5f, 4.9f, 3.0f, 6.3f, -0.25f};
  for (int i = 0; i < 6; i++) CHECK(dsv(&ds, i) == want_x[i], "x[%d] = %g", i, dsv(&ds, i));
  CHECK(ds.y[0] == 0 && ds.y[1] == 1 && ds.y[2] == 2, "labels %d %d %d", ds.y[0], ds.y[1], ds.y[2]);
  CHECK(ds.t == NULL && ds.target_elems == 0, "labels only");
  CHECK(strcmp(ds.origin, tpath("iris.csv")) == 0, "origin %s", ds.origin);
  sn_dataset_free(&ds);

  /* no header, label last (-1), limit */
  write_text("plain.csv", "1,2,3,0\n4,5,6,1\n7,8,9,1\n");
  src = csv_source("plain.csv", false, NULL, -1);
  src.limit = 2;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "plain.csv: %s", err.msg);
  CHECK(ds.n == 2 && ds.sample_elems == 3 && dsv(&ds, 3) == 4 && ds.y[1] == 1 && ds.classes == 2,
        "plain.csv: n %lld", (long long)ds.n);
  sn_dataset_free(&ds);

  /* label first by position */
  src = csv_source("plain.csv", false, NULL, 0);
  write_text("first.csv", "2,0.5,0.25\n0,1.5,1.25\n");
  src = csv_source("first.csv", false, NULL, 0);
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "first.csv: %s", err.msg);
  CHECK(ds.y[0] == 2 && ds.y[1] == 0 && dsv(&ds, 0) == 0.5f && dsv(&ds, 3) == 1.25f, "first.csv contents");
  sn_dataset_free(&ds);

  /* float targets: a regression label column is read as is; y from t >= 0.5 */
  write_text("reg.csv", "x,target\n1,0.25\n2,2.5\n3,-1\n");
  src = csv_source("reg.csv", true, "target", 0);
  src.target_elems = 1;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "reg.csv: %s", err.msg);
  CHECK(ds.t && ds.target_elems == 1 && ds.t[0] == 0.25f && ds.t[1] == 2.5f && ds.t[2] == -1,
        "reg.csv targets");
  CHECK(ds.y && ds.y[0] == 0 && ds.y[1] == 1 && ds.y[2] == 0, "reg.csv derived labels");
  sn_dataset_free(&ds);

  /* one-hot targets from a class column for a 3-output categorical loss */
  src = csv_source("iris.csv", true, "species", 0);
  src.target_elems = 3;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "iris one-hot: %s", err.msg);
  const float want_t[] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  CHECK(ds.t && ds.target_elems == 3, "one-hot: no targets");
  for (int i = 0; ds.t && i < 9; i++) CHECK(ds.t[i] == want_t[i], "one-hot t[%d] = %g", i, ds.t[i]);
  CHECK(ds.y && ds.y[2] == 2, "one-hot keeps the labels");
  sn_dataset_free(&ds);

  /* features only (predict input): every column */
  src = csv_source("plain.csv", false, NULL, -1);
  src.no_labels = true;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "no labels: %s", err.msg);
  CHECK(ds.sample_elems == 4 && ds.y == NULL && ds.t == NULL && dsv(&ds, 3) == 0, "no labels: %lld",
        (long long)ds.sample_elems);
  sn_dataset_free(&ds);
}

static void test_csv_errors(void) {
  write_text("ragged.csv", "a,b,label\n1,2,0\n3,4\n");
  expect_error(&(sn_source){0}, "no data source given");
  sn_source src = csv_source("ragged.csv", true, "label", 0);
  expect_error(&src, "%s/ragged.csv:3: 2 columns, but the first row (line 1) has 3");

  write_text("text.csv", "1,2,0\n3,abc,1\n");
  src = csv_source("text.csv", false, NULL, -1);
  expect_error(&src, "%s/text.csv:2: column 2: 'abc' is not a number");

  write_text("named.csv", "w,h,label\n1,2,0\n3,x4,1\n");
  src = csv_source("named.csv", true, "label", 0);
  expect_error(&src, "%s/named.csv:3: column 2 ('h'): 'x4' is not a number");

  write_text("empty_cell.csv", "1,,0\n");
  src = csv_source("empty_cell.csv", false, NULL, -1);
  expect_error(&src, "%s/empty_cell.csv:1: column 2 is empty (missing values are not supported)");

  write_text("nan.csv", "1,2,0\n1,nan,0\n");
  src = csv_source("nan.csv", false, NULL, -1);
  expect_error(&src, "%s/nan.csv:2: column 2: 'nan' is not a finite number");
  write_text("inf.csv", "1,2,0\n-inf,2,0\n");
  src = csv_source("inf.csv", false, NULL, -1);
  expect_error(&src, "%s/inf.csv:2: column 1: '-inf' is not a finite number");

  write_text("header_unset.csv", "x,y,label\n1,2,0\n");
  src = csv_source("header_unset.csv", false, NULL, -1);
  expect_error(&src, "%s/header_unset.csv:1: column 1: 'x' is not a number; hint: if the first "
                     "row holds column names, set header: true");

  write_text("badlabel.csv", "1,2,0\n1,2,1.5\n");
  src = csv_source("badlabel.csv", false, NULL, -1);
  expect_error(&src, "%s/badlabel.csv:2: label column 3: '1.5' is not a class index (an integer "
                     ">= 0); hint: for real-valued targets use a regression loss such as mse");
  write_text("neglabel.csv", "l,a\n-1,2\n");
  src = csv_source("neglabel.csv", true, "l", 0);
  expect_error(&src, "%s/neglabel.csv:2: label column 1 ('l'): '-1' is not a class index (an "
                     "integer >= 0); hint: for real-valued targets use a regression loss such as "
                     "mse");

  src = csv_source("named.csv", true, "species", 0);
  expect_error(&src, "%s/named.csv:1: no column named 'species' in the header (columns: 'w', 'h', "
                     "'label')");
  src = csv_source("named.csv", false, "label", 0);
  expect_error(&src, "%s/named.csv: the label column is given by name ('label') but the file has "
                     "no header row; hint: set header: true, or give the label by position");
  src = csv_source("text.csv", false, NULL, 3);
  expect_error(&src, "%s/text.csv: label column 3 is out of range: the file has 3 columns (0..2, "
                     "or -1 for the last)");

  write_text("one_col.csv", "1\n2\n");
  src = csv_source("one_col.csv", false, NULL, -1);
  expect_error(&src, "%s/one_col.csv:1: one column only; a labelled csv needs at least a feature "
                     "and the label");
  write_text("empty.csv", "\n\n");
  src = csv_source("empty.csv", false, NULL, -1);
  expect_error(&src, "%s/empty.csv: no rows (the file is empty)");
  write_text("header_only.csv", "a,b\n");
  src = csv_source("header_only.csv", true, NULL, -1);
  expect_error(&src, "%s/header_only.csv: no data rows after the header");
  write_text("quote.csv", "1,\"2,0\n");
  src = csv_source("quote.csv", false, NULL, -1);
  expect_error(&src, "%s/quote.csv:1: a quoted cell is not closed before the next comma or the "
                     "line's end");
  src = csv_source("missing.csv", false, NULL, -1);
  expect_error(&src, "%s/missing.csv: cannot open: No such file or directory");

  /* labels beyond a one-hot width */
  src = csv_source("plain.csv", false, NULL, -1);
  write_text("plain.csv", "1,2,3,0\n4,5,6,1\n7,8,9,2\n");
  src.target_elems = 2;
  expect_error(&src, "%s/plain.csv: label 2 of sample 2 is out of range for one-hot targets of 2 "
                     "classes");
}

/* ---------------------------------------------------------------------------
 * NPY */

/* An .npy file: version `major`, header dict text padded with spaces and a newline
 * so that the data starts at a multiple of 64, then `n` data bytes. */
static void write_npy_raw(const char *name, int major, const char *dict, const void *data,
                          size_t n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t hlen = dl + 1;
  while ((pre + hlen) % 64) hlen++;
  size_t total = pre + hlen + n;
  unsigned char *b = malloc(total);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = 0;
  if (major == 1) {
    b[8] = (unsigned char)(hlen & 0xFF);
    b[9] = (unsigned char)(hlen >> 8);
  } else {
    for (int i = 0; i < 4; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
  }
  memcpy(b + pre, dict, dl);
  memset(b + pre + dl, ' ', hlen - dl - 1);
  b[pre + hlen - 1] = '\n';
  memcpy(b + pre + hlen, data, n);
  write_file(tpath(name), b, total);
  free(b);
}

static void write_npy(const char *name, const char *descr, const char *shape, const void *data,
                      size_t n) {
  char dict[256];
  snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
           shape);
  write_npy_raw(name, 1, dict, data, n);
}

static sn_source npy_source(const char *x, const char *y) {
  sn_source s = {.kind = SN_SRC_NPY};
  snprintf(s.images, sizeof s.images, "%s", tpath(x));
  if (y) snprintf(s.labels, sizeof s.labels, "%s", tpath(y));
  return s;
}

static void test_npy_good(void) {
  /* x: (3, 2, 2) float32, y: (3,) int64 */
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = 0.5f * (float)i - 1.0f;
  int64_t y[3] = {2, 0, 1};
  write_npy("x.npy", "<f4", "(3, 2, 2)", x, sizeof x);
  write_npy("y.npy", "<i8", "(3,)", y, sizeof y);
  sn_source src = npy_source("x.npy", "y.npy");
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "x.npy: %s", err.msg);
  CHECK(ds.n == 3 && ds.rank == 2 && ds.shape[0] == 2 && ds.shape[1] == 2 && ds.sample_elems == 4 &&
            ds.classes == 3,
        "x.npy shape: n %lld rank %d", (long long)ds.n, ds.rank);
  for (int i = 0; i < 12; i++) CHECK(dsv(&ds, i) == x[i], "x[%d] = %g", i, dsv(&ds, i));
  CHECK(ds.y[0] == 2 && ds.y[1] == 0 && ds.y[2] == 1, "labels");
  sn_dataset_free(&ds);

  /* every dtype, and format versions 2 and 3 */
  const struct {
    const char *descr;
    int size;
    int major;
  } types[] = {{"|u1", 1, 1}, {"|i1", 1, 1}, {"<u2", 2, 1}, {"<i2", 2, 2},
               {"<u4", 4, 3}, {"<i4", 4, 1}, {"<u8", 8, 1}, {"<i8", 8, 2},
               {"<f2", 2, 1}, {"<f4", 4, 1}, {"<f8", 8, 1}, {"|b1", 1, 1}};
  for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
    unsigned char raw[4 * 8];
    const double vals[4] = {0, 1, 7, 100};
    for (int i = 0; i < 4; i++) {
      double v = !strcmp(types[t].descr, "|b1") ? (i > 0) : vals[i];
      unsigned char *p = raw + i * types[t].size;
      char k = types[t].descr[1];
      int64_t iv = (int64_t)v;
      if (k == 'f' && types[t].size == 4) {
        float f = (float)v;
        memcpy(p, &f, 4);
      } else if (k == 'f' && types[t].size == 8) {
        memcpy(p, &v, 8);
      } else if (k == 'f') { /* half: 0, 1, 7, 100 exactly */
        const uint16_t h[4] = {0x0000, 0x3C00, 0x4700, 0x5640};
        memcpy(p, &h[i], 2);
      } else {
        memcpy(p, &iv, (size_t)types[t].size); /* little-endian host */
      }
    }
    char dict[200];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (4, 1), }",
             types[t].descr);
    write_npy_raw("t.npy", types[t].major, dict, raw, (size_t)(4 * types[t].size));
    int nd;
    int64_t shape[8];
    double *d;
    bool integer;
    CHECK(sn_npy_read(tpath("t.npy"), 0, &nd, shape, &d, &integer, &err) == 0, "%s: %s",
          types[t].descr, err.msg);
    if (!failures || d) {
      CHECK(nd == 2 && shape[0] == 4 && shape[1] == 1, "%s shape", types[t].descr);
      CHECK(integer == (types[t].descr[1] != 'f'), "%s integer flag", types[t].descr);
      for (int i = 0; i < 4; i++) {
        double want = !strcmp(types[t].descr, "|b1") ? (i > 0) : vals[i];
        CHECK(d[i] == want, "%s element %d = %g, want %g", types[t].descr, i, d[i], want);
      }
      free(d);
    }
  }
  /* negative integers */
  int16_t neg[2] = {-3, 300};
  write_npy("neg.npy", "<i2", "(2,)", neg, sizeof neg);
  int nd;
  int64_t shape[8];
  double *d = NULL;
  bool integer;
  CHECK(sn_npy_read(tpath("neg.npy"), 0, &nd, shape, &d, &integer, &err) == 0 && d[0] == -3 &&
            d[1] == 300 && nd == 1,
        "neg.npy: %s", err.msg);
  free(d);

  /* float targets (n, k) for a float-target loss; labels derived by argmax */
  float t2[6] = {0.1f, 0.9f, 0.7f, 0.3f, 0.2f, 0.8f};
  float x1[3] = {1, 2, 3};
  write_npy("x1.npy", "<f4", "(3,)", x1, sizeof x1);
  write_npy("t2.npy", "<f4", "(3, 2)", t2, sizeof t2);
  src = npy_source("x1.npy", "t2.npy");
  src.target_elems = 2;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "t2.npy: %s", err.msg);
  CHECK(ds.n == 3 && ds.sample_elems == 1 && ds.t && ds.target_elems == 2 && ds.t[5] == 0.8f,
        "t2 targets");
  CHECK(ds.y && ds.y[0] == 1 && ds.y[1] == 0 && ds.y[2] == 1, "t2 argmax labels");
  sn_dataset_free(&ds);
  /* int labels one-hot for a 3-output categorical loss */
  src = npy_source("x.npy", "y.npy");
  src.target_elems = 3;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0 && ds.t && ds.t[2] == 1 && ds.t[3 + 0] == 1 &&
            ds.t[6 + 1] == 1 && ds.t[0] == 0,
        "y one-hot: %s", err.msg);
  sn_dataset_free(&ds);
  /* float y (n,) with integral values works as labels */
  double yf[3] = {1, 0, 2};
  write_npy("yf.npy", "<f8", "(3,)", yf, sizeof yf);
  src = npy_source("x.npy", "yf.npy");
  CHECK(sn_dataset_load(&src, &ds, &err) == 0 && ds.y[0] == 1 && ds.y[2] == 2, "yf: %s", err.msg);
  sn_dataset_free(&ds);
  /* integer y (n, T) for a loss that reads a label per position (sequence outputs) */
  int16_t yseq[6] = {3, 0, 2, 1, 1, 4};
  write_npy("yseq.npy", "<i2", "(3, 2)", yseq, sizeof yseq);
  src = npy_source("x1.npy", "yseq.npy");
  src.label_elems = 2;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "yseq.npy: %s", err.msg);
  CHECK(ds.n == 3 && ds.label_elems == 2 && ds.y && ds.y[0] == 3 && ds.y[3] == 1 && ds.y[5] == 4 &&
            ds.classes == 5 && !ds.t,
        "yseq: per-position labels");
  sn_dataset_free(&ds);
  /* limit, and x only */
  src = npy_source("x.npy", NULL);
  src.no_labels = true;
  src.limit = 2;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0 && ds.n == 2 && !ds.y && dsv(&ds, 7) == x[7],
        "x only: %s", err.msg);
  sn_dataset_free(&ds);
}

static void test_npy_errors(void) {
  float x[4] = {1, 2, 3, 4};
  int32_t y3[3] = {0, 1, 0};
  write_npy("x4.npy", "<f4", "(4,)", x, sizeof x);
  write_npy("y3.npy", "<i4", "(3,)", y3, sizeof y3);
  sn_source src = npy_source("x4.npy", "y3.npy");
  expect_error(&src, "sample count mismatch: %s/x4.npy has 4 samples but %s/y3.npy has 3");

  write_npy_raw("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", x,
                sizeof x);
  src = npy_source("fortran.npy", "y3.npy");
  expect_error(&src, "%s/fortran.npy: the array is in Fortran order (fortran_order: True); only C "
                     "order is read; hint: np.save(path, np.ascontiguousarray(a))");
  write_npy("big.npy", ">f4", "(4,)", x, sizeof x);
  src = npy_source("big.npy", "y3.npy");
  expect_error(&src, "%s/big.npy: dtype '>f4' is big-endian; only little-endian arrays are read; "
                     "hint: save it as float32, np.save(path, a.astype('<f4'))");
  write_npy("cplx.npy", "<c8", "(2,)", x, sizeof x);
  src = npy_source("cplx.npy", "y3.npy");
  expect_error(&src, "%s/cplx.npy: dtype '<c8' is not supported (supported: uint8, int8, (u)int16, "
                     "(u)int32, (u)int64, float16, float32, float64, bool); hint: save it as "
                     "float32, np.save(path, a.astype('<f4'))");
  write_npy("short.npy", "<f4", "(5,)", x, sizeof x);
  src = npy_source("short.npy", "y3.npy");
  expect_error(&src, "%s/short.npy: truncated: shape (5,) of '<f4' needs 20 bytes of data, the "
                     "file holds 16");
  write_npy("long.npy", "<f4", "(3,)", x, sizeof x);
  src = npy_source("long.npy", "y3.npy");
  expect_error(&src, "%s/long.npy: trailing data after the array: shape (3,) of '<f4' needs 12 "
                     "bytes of data, the file holds 16");
  write_text("notnpy.npy", "hello, world");
  src = npy_source("notnpy.npy", "y3.npy");
  expect_error(&src, "%s/notnpy.npy: not an npy file (it does not start with \\x93NUMPY)");
  write_npy_raw("v9.npy", 9, "{}", x, 0);
  src = npy_source("v9.npy", "y3.npy");
  expect_error(&src, "%s/v9.npy: npy format version 9.0 is not supported (1.0, 2.0 and 3.0 are)");
  write_npy_raw("noshape.npy", 1, "{'descr': '<f4', 'fortran_order': False, }", x, sizeof x);
  src = npy_source("noshape.npy", "y3.npy");
  expect_error(&src, "%s/noshape.npy: the npy header lacks 'shape'");
  write_npy_raw("struct.npy", 1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", x, sizeof x);
  src = npy_source("struct.npy", "y3.npy");
  expect_error(&src, "%s/struct.npy: a structured array (descr is a list of fields); only plain "
                     "numeric arrays are supported; hint: save one field, np.save(path, a['x'])");
  float nanx[3] = {1, NAN, 2};
  write_npy("nanx.npy", "<f4", "(3,)", nanx, sizeof nanx);
  src = npy_source("nanx.npy", "y3.npy");
  expect_error(&src, "%s/nanx.npy: element 0 of sample 1 is nan; every value must be finite");
  float six[6] = {0};
  write_npy("x6.npy", "<f4", "(1, 1, 1, 1, 1, 6)", six, sizeof six);
  src = npy_source("x6.npy", "y3.npy");
  expect_error(&src, "%s/x6.npy: x must have shape (samples, ...) with 1 to 5 dimensions, this one "
                     "has 6");
  double yh[3] = {0, 0.5, 1};
  float x3[3] = {0};
  write_npy("x3.npy", "<f4", "(3,)", x3, sizeof x3);
  write_npy("yhalf.npy", "<f8", "(3,)", yh, sizeof yh);
  src = npy_source("x3.npy", "yhalf.npy");
  expect_error(&src, "%s/yhalf.npy: element 1 is 0.5; class labels must be integers >= 0; hint: "
                     "for real-valued targets use a regression loss such as mse");
  int32_t yneg[3] = {0, -2, 1};
  write_npy("yneg.npy", "<i4", "(3,)", yneg, sizeof yneg);
  src = npy_source("x3.npy", "yneg.npy");
  expect_error(&src, "%s/yneg.npy: element 1 is -2; class labels must be integers >= 0");
  float t32[6] = {0};
  write_npy("t32.npy", "<f4", "(3, 2)", t32, sizeof t32);
  src = npy_source("x3.npy", "t32.npy");
  expect_error(&src, "%s/t32.npy: shape (3, 2) holds float targets, but the model's loss reads "
                     "class labels of shape (3); hint: np.save(path, y.argmax(1))");
  src.label_elems = 3; /* a label per position of 3, as floats of the wrong width */
  expect_error(&src, "%s/t32.npy: shape (3, 2) of floats, but the model's loss reads integer class "
                     "labels of shape (3, 3), one per position");
  src.label_elems = 0;
  src.target_elems = 3;
  expect_error(&src, "%s/t32.npy: 2 target values per sample, but the model's loss reads 3");
  src = npy_source("x3.npy", NULL);
  expect_error(&src, "an npy source needs y (the labels or targets file)");
  write_text("zip.npy", "PK\x03\x04rest");
  src = npy_source("zip.npy", "y3.npy");
  expect_error(&src, "%s/zip.npy: not an npy file (it does not start with \\x93NUMPY); an .npz "
                     "archive? hint: np.save one array per file");
}

/* ---------------------------------------------------------------------------
 * Preprocessing */

static sn_dataset make_set(int64_t n, int rank, const int64_t *shape) {
  sn_dataset ds = {.n = n, .rank = rank, .classes = 2};
  int64_t e = 1;
  for (int d = 0; d < 4; d++) ds.shape[d] = d < rank ? shape[d] : 1;
  for (int d = 0; d < rank; d++) e *= shape[d];
  ds.sample_elems = e;
  ds.x = malloc((size_t)(n * e) * sizeof(float));
  ds.y = malloc((size_t)n * sizeof(int32_t));
  for (int64_t i = 0; i < n; i++) ds.y[i] = (int32_t)(i % 2);
  strcpy(ds.origin, "memory");
  return ds;
}

static void test_preprocess(void) {
  sn_error err = {{0}};
  /* 4 samples of (2, 3): features are the 3 positions of the last axis */
  const int64_t shape[2] = {2, 3};
  sn_dataset ds = make_set(4, 2, shape);
  for (int64_t i = 0; i < 4 * 6; i++) {
    int64_t f = i % 3;
    ds.x[i] = f == 0   ? (float)(i % 4) /* 0 1 2 3 ... per feature values vary */
              : f == 1 ? 5.0f           /* constant: std 1 by convention */
                       : (float)(i / 3) * 2.0f;
  }
  CHECK(sn_dataset_features(&ds) == 3, "features %lld", (long long)sn_dataset_features(&ds));
  double mean[3], sd[3];
  CHECK(sn_dataset_stats(&ds, mean, sd, &err) == 0, "stats: %s", err.msg);
  /* by hand: feature 0 takes x[i] = i % 4 at i = 0,3,...,21: 0,3,2,1,0,3,2,1 -> mean 1.5,
   * population variance 1.25; feature 2 is 2*(i/3) at i = 2,5,...,23: 0,2,...,14 -> mean 7,
   * variance 4 * var(0..7) = 4 * 5.25 = 21 */
  CHECK(fabs(mean[0] - 1.5) < 1e-12 && fabs(sd[0] - sqrt(1.25)) < 1e-12, "feature 0: %g %g",
        mean[0], sd[0]);
  CHECK(mean[1] == 5 && sd[1] == 1, "constant feature: %g %g", mean[1], sd[1]);
  CHECK(fabs(mean[2] - 7) < 1e-12 && fabs(sd[2] - sqrt(21.0)) < 1e-12, "feature 2: %g %g", mean[2],
        sd[2]);
  CHECK(sn_dataset_normalize(&ds, mean, sd, 3, &err) == 0, "normalize: %s", err.msg);
  double m2[3], s2[3];
  CHECK(sn_dataset_stats(&ds, m2, s2, &err) == 0, "stats: %s", err.msg);
  CHECK(fabs(m2[0]) < 1e-6 && fabs(s2[0] - 1) < 1e-6 && m2[1] == 0 && fabs(m2[2]) < 1e-6 &&
            fabs(s2[2] - 1) < 1e-6,
        "standardized: means %g %g %g stds %g %g", m2[0], m2[1], m2[2], s2[0], s2[2]);
  CHECK(fabs(dsv(&ds, 0) - (0 - 1.5) / sqrt(1.25)) < 1e-6, "x[0] = %g", dsv(&ds, 0));

  /* one value for all features (from the raw values: the preprocessing reset) */
  const double mean1 = 0.5, std1 = 0.25;
  sn_pre_free(&ds.pre);
  ds.x[0] = 1.0f;
  CHECK(sn_dataset_normalize(&ds, &mean1, &std1, 1, &err) == 0 && dsv(&ds, 0) == 2.0f, "x[0] = %g",
        dsv(&ds, 0));
  double two[2] = {0, 0};
  CHECK(sn_dataset_normalize(&ds, two, two, 2, &err) != 0 &&
            !strcmp(err.msg, "normalize has 2 values, but samples of memory have 3 features along "
                             "their last axis (give 1 value or 3)"),
        "count mismatch: %s", err.msg);
  double zero = 0;
  CHECK(sn_dataset_normalize(&ds, &mean1, &zero, 1, &err) != 0 &&
            !strcmp(err.msg, "normalize: std 0 (feature 0) must be > 0 and mean finite"),
        "std 0: %s", err.msg);
  sn_dataset_free(&ds);

  /* the split carries float targets */
  const int64_t s1[1] = {1};
  ds = make_set(10, 1, s1);
  for (int i = 0; i < 10; i++) ds.x[i] = (float)i;
  CHECK(sn_dataset_onehot(&ds, 2, &err) == 0 && ds.target_elems == 2, "onehot: %s", err.msg);
  sn_dataset held;
  CHECK(sn_dataset_split(&ds, 0.3, &held, &err) == 0, "split: %s", err.msg);
  CHECK(ds.n == 7 && held.n == 3 && held.t && held.target_elems == 2, "split sizes");
  CHECK(dsv(&held, 0) == 7 && held.y[0] == 1 && held.t[0] == 0 && held.t[1] == 1 && held.t[2] == 1 &&
            held.t[3] == 0,
        "held-out targets: %g %g %g %g", held.t[0], held.t[1], held.t[2], held.t[3]);
  CHECK(ds.t[12] == 1 && ds.t[13] == 0, "kept targets");
  sn_dataset_free(&held);
  sn_dataset_free(&ds);
  /* a split of a set with float targets only */
  ds = make_set(4, 1, s1);
  free(ds.y);
  ds.y = NULL;
  ds.t = malloc(4 * sizeof(float));
  ds.target_elems = 1;
  for (int i = 0; i < 4; i++) ds.t[i] = 0.5f * (float)i;
  CHECK(sn_dataset_split(&ds, 0.5, &held, &err) == 0 && held.y == NULL && held.t[1] == 1.5f,
        "split without labels: %s", err.msg);
  sn_dataset_free(&held);
  sn_dataset_free(&ds);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/specnet_formats_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_csv_good();
  test_csv_errors();
  test_npy_good();
  test_npy_errors();
  test_preprocess();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  if (failures) {
    fprintf(stderr, "test_data_formats: %d failures\n", failures);
    return 1;
  }
  printf("test_data_formats: all tests passed\n");
  return 0;
}
