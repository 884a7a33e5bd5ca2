/* What the specnet command does with text sources (runtime/data_text.c): the
 * summary `specnet check` prints (sizes, counts, the vocabulary), the check that
 * the model's embedding covers the vocabulary, and the run's vocab.json (the chars
 * table, which eval and predict read back from beside --weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ---------------------------------------------------------------------------
 * specnet check */

/* A token as the summary shows it: printable as is, else escaped. */
static void show_token(FILE *out, const sn_dataset *ds, int64_t id) {
  char u[8];
  int k = sn_text_token_utf8(ds, id, u);
  unsigned char c = (unsigned char)u[0];
  if (k == 1 && c == '\n')
    fputs("\\n", out);
  else if (k == 1 && c == '\t')
    fputs("\\t", out);
  else if (k == 1 && (c < 0x20 || c >= 0x7f))
    fprintf(out, "\\x%02x", c);
  else if (k == 1 && c == '\\')
    fputs("\\\\", out);
  else
    fwrite(u, 1, (size_t)k, out);
}

/* tables: the training set, whose class names and characters every set uses */
static void summarize(FILE *out, const char *role, const sn_source *src, const sn_dataset *ds,
                      const sn_dataset *tables) {
  const bool lm = src->text_mode == SN_TEXT_LM;
  fprintf(out, "data.%s: text, %s, %s tokenizer, vocabulary %lld", role, lm ? "lm" : "classify",
          src->tokenizer == SN_TOK_CHARS ? "chars" : "bytes", (long long)ds->vocab);
  if (ds->pad_id >= 0) fprintf(out, " (id %d pads)", ds->pad_id);
  if (lm) {
    fprintf(out, ": %lld tokens, %lld %s windows of %lld tokens", (long long)sn_text_tokens(ds),
            (long long)ds->n, ds->epoch_fill ? "random (per epoch)" : "swept",
            (long long)ds->sample_elems);
  } else {
    fprintf(out, ": %lld records of %lld tokens in %d categories:", (long long)ds->n,
            (long long)ds->sample_elems, ds->classes);
    for (int k = 0; k < ds->classes && k < tables->n_class_names; k++) {
      int64_t count = 0;
      for (int64_t i = 0; i < ds->n; i++) count += ds->y[i] == k;
      fprintf(out, "%s %s %lld", k ? "," : "", tables->class_names[k], (long long)count);
    }
  }
  fputc('\n', out);
  if (ds->chars && ds == tables) {
    fprintf(out, "data.%s: characters \"", role);
    for (int k = 0; k < ds->n_chars; k++) show_token(out, ds, ds->first_id + k);
    fputs("\"\n", out);
  }
}

/* Loads the spec's text sources and prints what they hold; 0 or an exit code. */
int check_text_sources(const sn_spec *s, FILE *out) {
  sn_data_config dc;
  sn_spec_data_config(s, &dc);
  const sn_data_config *d = &dc;
  if (d->train.kind != SN_SRC_TEXT) return 0;
  sn_dataset train, other;
  sn_error err = {0};
  if (sn_dataset_load(&d->train, &train, &err)) return data_error(s, sn_spec_data_loc(s, SN_PART_TRAIN), err.msg);
  int rc = 0;
  if (d->validation_split > 0) { /* the training set is what the split leaves */
    if (sn_dataset_split(&train, d->validation_split, &other, &err)) {
      rc = data_error(s, sn_spec_data_loc(s, SN_PART_VALIDATION), err.msg);
    } else {
      summarize(out, "train", &d->train, &train, &train);
      summarize(out, "validation", &d->train, &other, &train);
      sn_dataset_free(&other);
    }
  } else {
    summarize(out, "train", &d->train, &train, &train);
  }
  const sn_source *more[2] = {&d->validation, &d->test};
  const sn_loc at[2] = {sn_spec_data_loc(s, SN_PART_VALIDATION), sn_spec_data_loc(s, SN_PART_TEST)};
  for (int i = 0; i < 2 && !rc; i++) {
    if (more[i]->kind != SN_SRC_TEXT) continue;
    sn_source src = *more[i];
    src.chars = train.chars;
    src.n_chars = train.n_chars;
    src.class_names = (const char *const *)train.class_names;
    src.n_class_names = train.n_class_names;
    if (sn_text_same_tokenizer(&src, &train, &err) || sn_dataset_load(&src, &other, &err)) {
      rc = data_error(s, at[i], err.msg);
      break;
    }
    summarize(out, i ? "test" : "validation", &src, &other, &train);
    sn_dataset_free(&other);
  }
  sn_dataset_free(&train);
  return rc;
}

/* ---------------------------------------------------------------------------
 * The embedding against the vocabulary */

/* An id at or above the embedding's vocab would be clamped: a silently wrong model.
 * tokens: the vocabulary's size; origin: where it comes from. */
int check_vocab_size(const sn_spec *s, int64_t tokens, const char *origin) {
  if (!tokens) return 0;
  const char *layer = NULL;
  sn_loc at = {0};
  int vocab = sn_spec_input_vocab(s, &layer, &at);
  if (!vocab || vocab >= tokens) return 0;
  char msg[512];
  snprintf(msg, sizeof msg,
           "%s: embedding vocab %d is smaller than the text's vocabulary of %lld tokens (from %.300s)",
           layer, vocab, (long long)tokens, origin);
  return data_error(s, at, msg);
}

int check_text_vocab(const sn_spec *s, const sn_dataset *train) {
  return check_vocab_size(s, train->vocab, train->origin);
}

/* ---------------------------------------------------------------------------
 * vocab.json */

void write_vocab(const sn_dataset *train, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/vocab.json", dir);
  if (!train->chars) {
    unlink(path);
    return;
  }
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "{\"tokenizer\": \"chars\", \"first_id\": %d, \"pad_id\": %d, \"codepoints\": [",
          train->first_id, train->pad_id);
  for (int k = 0; k < train->n_chars; k++) fprintf(f, "%s%u", k ? ", " : "", train->chars[k]);
  fputs("]}\n", f);
  fclose(f);
}

/* The chars table of vocab.json beside `weights`, malloc'd into *chars; 0 when
 * there is none, -1 when it cannot be read (msg says why). */
int read_vocab(const char *weights, uint32_t **chars, int *n, char *msg, size_t cap) {
  char path[4200];
  const char *slash = strrchr(weights, '/');
  snprintf(path, sizeof path, "%.*svocab.json", slash ? (int)(slash - weights) + 1 : 0, weights);
  *chars = NULL;
  *n = 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char head[256];
  size_t got = fread(head, 1, sizeof head - 1, f);
  head[got] = '\0';
  const char *list = strstr(head, "\"codepoints\": [");
  int rc = list ? 0 : -1;
  if (list) {
    fseek(f, (long)(list - head) + 15, SEEK_SET);
    int cap_n = 256;
    *chars = malloc((size_t)cap_n * sizeof(uint32_t));
    unsigned v;
    while (*chars && fscanf(f, " %u ,", &v) == 1) {
      if (*n == cap_n) {
        uint32_t *more = realloc(*chars, (size_t)(cap_n *= 2) * sizeof(uint32_t));
        if (!more) break;
        *chars = more;
      }
      if (*n > 0 && v <= (*chars)[*n - 1]) rc = -1;            /* a table is sorted */
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) rc = -1; /* of Unicode characters */
      (*chars)[(*n)++] = v;
    }
    if (!*chars || !*n || fgetc(f) != ']') rc = -1;
  }
  fclose(f);
  if (rc) {
    snprintf(msg, cap, "%s: not a vocabulary file written by specnet train", path);
    free(*chars);
    *chars = NULL;
    *n = 0;
  }
  return rc;
}
