/* Tests of text sources (runtime/data_text.c) against hand-computed expectations:
 * lm windows (sweep and stride, labels = the next tokens), the validation split by
 * position (no held-out token in a training window), random windows redrawn by the
 * loader's hook, the chars table (sorted code points, ids from 0 or 1), classify
 * records (separators, blank records, truncation, padding with 0, labels by file
 * and by folder, a test source mapped to the training tables, range per category),
 * and the errors with their whole messages.
 *
 * Files are written by the test into a fresh mkdtemp folder. */
#include "specnet/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];

static const char *tpath(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static void write_text(const char *name, const char *text) {
  FILE *f = fopen(tpath(name), "wb");
  size_t n = strlen(text);
  if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", name);
    exit(1);
  }
}

static sn_source text_source(const char *name, sn_text_mode mode, sn_tokenizer tok, int64_t c) {
  sn_source s = {.kind = SN_SRC_TEXT, .text_mode = mode, .tokenizer = tok, .seed = 9};
  snprintf(s.path, sizeof s.path, "%s", tpath(name));
  if (mode == SN_TEXT_LM)
    s.context = c;
  else
    s.length = c;
  return s;
}

/* A sample's tokens as text (bytes tokenizer), for comparisons. */
static const char *ids(const sn_dataset *ds, const float *x, int64_t n) {
  static char buf[256];
  int64_t k = 0;
  for (int64_t j = 0; j < n && k < 250; j++) k += sn_text_token_utf8(ds, (int64_t)x[j], buf + k);
  buf[k] = '\0';
  return buf;
}

static const char *labels(const int32_t *y, int64_t n) {
  static char buf[256];
  for (int64_t j = 0; j < n; j++) buf[j] = (char)y[j];
  buf[n] = '\0';
  return buf;
}

static void expect_error(const sn_source *src, const char *want_fmt) {
  sn_dataset ds;
  sn_error err = {{0}};
  char want[2048];
  snprintf(want, sizeof want, want_fmt, tmpdir);
  int rc = sn_dataset_load(src, &ds, &err);
  CHECK(rc != 0, "expected the error \"%s\", got success", want);
  if (rc == 0)
    sn_dataset_free(&ds);
  else
    CHECK(strcmp(err.msg, want) == 0, "message\n  got:  %s\n  want: %s", err.msg, want);
}

/* ---------------------------------------------------------------------------
 * lm */

static void test_lm_sweep(void) {
  write_text("ten.txt", "abcdefghij");
  sn_source src = text_source("ten.txt", SN_TEXT_LM, SN_TOK_BYTES, 3);
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  /* windows at 0, 3, 6 (stride = context): (10 - 3 - 1) / 3 + 1 = 3 */
  CHECK(ds.n == 3 && ds.sample_elems == 3 && ds.label_elems == 3 && ds.vocab == 256 &&
            ds.classes == 256 && ds.pad_id == -1 && !ds.epoch_fill,
        "n %lld elems %lld labels %lld vocab %lld", (long long)ds.n, (long long)ds.sample_elems,
        (long long)ds.label_elems, (long long)ds.vocab);
  const char *wx[] = {"abc", "def", "ghi"}, *wy[] = {"bcd", "efg", "hij"};
  for (int i = 0; i < 3 && ds.n == 3; i++) {
    CHECK(!strcmp(ids(&ds, ds.x + i * 3, 3), wx[i]), "window %d x '%s'", i,
          ids(&ds, ds.x + i * 3, 3));
    CHECK(!strcmp(labels(ds.y + i * 3, 3), wy[i]), "window %d y '%s'", i, labels(ds.y + i * 3, 3));
  }
  sn_dataset_free(&ds);

  src.stride = 2; /* starts 0, 2, 4, 6: (10 - 4) / 2 + 1 = 4 */
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(ds.n == 4 && !strcmp(ids(&ds, ds.x + 9, 3), "ghi") && !strcmp(labels(ds.y + 9, 3), "hij"),
        "stride 2");
  sn_dataset_free(&ds);

  src.stride = 0;
  src.range[0] = 0.5; /* tokens 5..9: "fghij", one window */
  src.range[1] = 1.0;
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(ds.n == 1 && !strcmp(ids(&ds, ds.x, 3), "fgh") && !strcmp(labels(ds.y, 3), "ghi"),
        "range [0.5, 1]");
  sn_dataset_free(&ds);
}

/* The held-out part is the end of the stream: no training window's tokens or labels
 * reach into it. */
static void test_lm_split(void) {
  write_text("twenty.txt", "abcdefghijklmnopqrst");
  sn_source src = text_source("twenty.txt", SN_TEXT_LM, SN_TOK_BYTES, 2);
  sn_dataset ds, held;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(sn_dataset_split(&ds, 0.25, &held, &err) == 0, "%s", err.msg);
  /* 15 tokens a..o stay: windows at 0, 2, .., 12 (7); held p..t: at 0 and 2 */
  CHECK(ds.n == 7 && sn_text_tokens(&ds) == 15, "train %lld windows of %lld tokens",
        (long long)ds.n, (long long)sn_text_tokens(&ds));
  CHECK(ds.n == 7 && !strcmp(ids(&ds, ds.x + 12, 2), "mn") && !strcmp(labels(ds.y + 12, 2), "no"),
        "last training window");
  for (int64_t i = 0; i < ds.n * 2; i++)
    CHECK(ds.y[i] <= 'o' && ds.x[i] <= 'o', "training token beyond 'o'");
  CHECK(held.n == 2 && sn_text_tokens(&held) == 5, "held %lld windows", (long long)held.n);
  CHECK(held.n == 2 && !strcmp(ids(&held, held.x, 2), "pq") && !strcmp(labels(held.y, 2), "qr") &&
            !strcmp(ids(&held, held.x + 2, 2), "rs") && !strcmp(labels(held.y + 2, 2), "st"),
        "held-out windows");
  sn_dataset_free(&held);
  sn_dataset_free(&ds);
}

/* Random windows: each a slice of the text with the next tokens as labels, the same
 * for the same epoch, others for another. */
static void test_lm_random(void) {
  write_text("alpha.txt", "abcdefghijklmnopqrstuvwxyz");
  sn_source src = text_source("alpha.txt", SN_TEXT_LM, SN_TOK_BYTES, 4);
  src.windows = 50;
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(ds.n == 50 && ds.epoch_fill != NULL, "50 windows with a hook");
  if (ds.n != 50 || !ds.epoch_fill) return;
  float first[200];
  memcpy(first, ds.x, sizeof first);
  for (int64_t i = 0; i < ds.n; i++) {
    int s = (int)ds.x[i * 4] - 'a';
    CHECK(s >= 0 && s + 4 < 26, "window %lld starts at %d", (long long)i, s);
    for (int j = 0; j < 4; j++)
      CHECK(ds.x[i * 4 + j] == 'a' + s + j && ds.y[i * 4 + j] == 'a' + s + j + 1,
            "window %lld is not a slice", (long long)i);
  }
  ds.epoch_fill(&ds, 2);
  CHECK(memcmp(first, ds.x, sizeof first) != 0, "epoch 2 draws other windows");
  ds.epoch_fill(&ds, 1);
  CHECK(memcmp(first, ds.x, sizeof first) == 0, "epoch 1 again gives epoch 1's windows");
  sn_dataset_free(&ds);
}

/* chars: the distinct code points sorted; lm ids from 0. */
static void test_chars(void) {
  write_text("utf8.txt", "h\xC3\xA9llo w\xC3\xB6rld\n"); /* héllo wörld */
  sn_source src = text_source("utf8.txt", SN_TEXT_LM, SN_TOK_CHARS, 3);
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  const uint32_t want[] = {'\n', ' ', 'd', 'h', 'l', 'o', 'r', 'w', 0xE9, 0xF6};
  CHECK(ds.n_chars == 10 && ds.vocab == 10 && ds.first_id == 0, "%d chars, vocab %lld", ds.n_chars,
        (long long)ds.vocab);
  for (int k = 0; k < 10 && ds.n_chars == 10; k++)
    CHECK(ds.chars[k] == want[k], "char %d is U+%04X", k, ds.chars[k]);
  /* "hél" -> h=3 é=8 l=4; labels "éll" -> 8 4 4 */
  CHECK(ds.x[0] == 3 && ds.x[1] == 8 && ds.x[2] == 4 && ds.y[0] == 8 && ds.y[1] == 4 &&
            ds.y[2] == 4,
        "ids %g %g %g", ds.x[0], ds.x[1], ds.x[2]);
  char u[8];
  CHECK(sn_text_token_utf8(&ds, 8, u) == 2 && !memcmp(u, "\xC3\xA9", 2), "id 8 as UTF-8");

  /* another source with this table: a character outside it is an error */
  write_text("other.txt", "hold\nzoo\n");
  sn_source other = text_source("other.txt", SN_TEXT_LM, SN_TOK_CHARS, 3);
  other.chars = ds.chars;
  other.n_chars = ds.n_chars;
  expect_error(&other,
               "%s/other.txt:2: character U+007A at byte offset 5 is not in the vocabulary of the "
               "training text (10 characters)");
  sn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------
 * classify */

/* Finds the sample whose tokens read `text` (padding shown as '_'). */
static int64_t find_sample(const sn_dataset *ds, const char *text) {
  for (int64_t i = 0; i < ds->n; i++) {
    char buf[64];
    int64_t k = 0;
    for (int64_t j = 0; j < ds->sample_elems; j++) {
      int m = sn_text_token_utf8(ds, (int64_t)ds->x[i * ds->sample_elems + j], buf + k);
      if (!m) buf[k++] = '_';
      k += m;
    }
    buf[k] = '\0';
    if (!strcmp(buf, text)) return i;
  }
  return -1;
}

static void test_classify(void) {
  mkdir(tpath("cls"), 0777);
  write_text("cls/cats", "meow\n%\npurr\n%\nhi\n");
  write_text("cls/dogs", "woof\n%\n\n%\nbark bark\n%\n");
  write_text("cls/dogs.dat", "an index: left out");
  CHECK(symlink("dogs", tpath("cls/dogs.u8")) == 0, "symlink");
  sn_source src = text_source("cls", SN_TEXT_CLASSIFY, SN_TOK_BYTES, 4);
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(ds.n == 5 && ds.sample_elems == 4 && ds.pad_id == 0 && ds.classes == 2 &&
            ds.n_class_names == 2 && !strcmp(ds.class_names[0], "cats") &&
            !strcmp(ds.class_names[1], "dogs"),
        "%lld records, %d classes", (long long)ds.n, ds.n_class_names);
  const char *rec[] = {"meow", "purr", "hi__", "woof", "bark"};
  const int lab[] = {0, 0, 0, 1, 1};
  for (int r = 0; r < 5; r++) {
    int64_t i = find_sample(&ds, rec[r]);
    CHECK(i >= 0 && ds.y[i] == lab[r], "record '%s': sample %lld label %d", rec[r], (long long)i,
          i >= 0 ? ds.y[i] : -1);
  }
  int64_t hi = find_sample(&ds, "hi__");
  CHECK(hi >= 0 && ds.x[hi * 4 + 2] == 0 && ds.x[hi * 4 + 3] == 0, "padding is id 0");

  /* a test source: the training tables, and the first half of each category */
  sn_source test = src;
  test.class_names = (const char *const *)ds.class_names;
  test.n_class_names = ds.n_class_names;
  test.range[0] = 0;
  test.range[1] = 0.5; /* cats: 1 of 3, dogs: 1 of 2 */
  sn_dataset part;
  CHECK(sn_dataset_load(&test, &part, &err) == 0, "%s", err.msg);
  CHECK(part.n == 2 && find_sample(&part, "meow") >= 0 && find_sample(&part, "woof") >= 0,
        "range [0, 0.5]: %lld", (long long)part.n);
  sn_dataset_free(&part);

  /* chars: ids from 1, 0 pads */
  src.tokenizer = SN_TOK_CHARS;
  CHECK(sn_dataset_load(&src, &part, &err) == 0, "%s", err.msg);
  CHECK(part.first_id == 1 && part.vocab == part.n_chars + 1, "chars classify ids from 1");
  int64_t i = find_sample(&part, "hi__");
  CHECK(i >= 0 && part.x[i * 4] >= 1 && part.x[i * 4 + 3] == 0, "chars padding");
  sn_dataset_free(&part);
  sn_dataset_free(&ds);
}

/* Categories as folders of files. */
static void test_classify_folders(void) {
  mkdir(tpath("topics"), 0777);
  mkdir(tpath("topics/sport"), 0777);
  mkdir(tpath("topics/art"), 0777);
  write_text("topics/sport/a", "goal\n%\nball\n");
  write_text("topics/sport/b", "race\n");
  write_text("topics/art/x", "oil\n");
  sn_source src = text_source("topics", SN_TEXT_CLASSIFY, SN_TOK_BYTES, 4);
  sn_dataset ds;
  sn_error err = {{0}};
  CHECK(sn_dataset_load(&src, &ds, &err) == 0, "%s", err.msg);
  CHECK(ds.n == 4 && ds.n_class_names == 2 && !strcmp(ds.class_names[0], "art"),
        "folders: %lld records", (long long)ds.n);
  int64_t r = find_sample(&ds, "race"), o = find_sample(&ds, "oil_");
  CHECK(r >= 0 && ds.y[r] == 1 && o >= 0 && ds.y[o] == 0, "labels by folder name");
  sn_dataset_free(&ds);
}

static void test_errors(void) {
  write_text("empty.txt", "");
  sn_source src = text_source("empty.txt", SN_TEXT_LM, SN_TOK_BYTES, 2);
  expect_error(&src, "%s/empty.txt: the text is empty (no tokens in 1 file)");
  write_text("short.txt", "abc");
  src = text_source("short.txt", SN_TEXT_LM, SN_TOK_BYTES, 3);
  expect_error(
      &src,
      "%s/short.txt: 3 tokens, but a window of context 3 needs at least 4 (its labels are the next "
      "tokens)");
  write_text("bad.txt", "ok\nthen \xC3\x28 x");
  src = text_source("bad.txt", SN_TEXT_LM, SN_TOK_CHARS, 2);
  expect_error(
      &src,
      "%s/bad.txt:2: not valid UTF-8 at byte offset 8 (byte 0xc3); the chars tokenizer reads UTF-8 "
      "text (tokenizer: bytes reads any bytes)");
  write_text("overlong.txt", "\xC0\xAF");
  src = text_source("overlong.txt", SN_TEXT_LM, SN_TOK_CHARS, 2);
  expect_error(
      &src,
      "%s/overlong.txt:1: not valid UTF-8 at byte offset 0 (byte 0xc0); the chars tokenizer reads "
      "UTF-8 text (tokenizer: bytes reads any bytes)");
  mkdir(tpath("quiet"), 0777);
  write_text("quiet/loud", "a\n%\nb\n");
  write_text("quiet/mute", "%\n  \n%\n");
  src = text_source("quiet", SN_TEXT_CLASSIFY, SN_TOK_BYTES, 2);
  expect_error(
      &src, "%s/quiet/mute: category 'mute' has no records (text between lines holding only %%)");
  src = text_source("nothing*.txt", SN_TEXT_LM, SN_TOK_BYTES, 2);
  expect_error(&src, "%s/nothing*.txt: no file matches the pattern");
}

/* Records of 2^22 tokens: one is 16 MB; room for 1024 of them at once would have
 * been past the 2^31-token limit (refused as "too many records (0)"). */
static void test_classify_long(void) {
  write_text("long.txt", "one record\n");
  sn_source src = text_source("long.txt", SN_TEXT_CLASSIFY, SN_TOK_BYTES, INT64_C(1) << 22);
  sn_dataset ds;
  sn_error err = {0};
  int rc = sn_dataset_load(&src, &ds, &err);
  CHECK(rc == 0, "%s", err.msg);
  if (rc) return;
  CHECK(ds.n == 1 && ds.sample_elems == INT64_C(1) << 22, "n %lld, length %lld", (long long)ds.n,
        (long long)ds.sample_elems);
  CHECK(ds.x[0] == 'o' && ds.x[9] == 'd' && ds.x[10] == 0 && ds.x[ds.sample_elems - 1] == 0,
        "the record is not 'one record' padded with 0");
  sn_dataset_free(&ds);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/specnet-text-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_lm_sweep();
  test_lm_split();
  test_lm_random();
  test_chars();
  test_classify();
  test_classify_folders();
  test_errors();
  test_classify_long();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
  if (!failures) printf("test_data_text: ok\n");
  return failures ? 1 : 0;
}
