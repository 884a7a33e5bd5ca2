/* `specnet generate SPEC --weights FILE [--prompt TEXT] [--tokens N]
 *  [--temperature F] [--top-k K] [--seed S]`: text from a trained language model.
 *
 * The spec's training data must be a text source in lm mode: its tokenizer says
 * how the prompt becomes ids and ids become text (bytes: id = byte; chars: the
 * run's vocab.json beside --weights, else the training text's table). The model
 * runs on windows of `context` ids (runtime/generate.c: the text at the start of the
 * window, then sliding); each token is printed as soon as it is drawn. The prompt
 * is printed first, so the output reads as one text. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The text <-> ids of a text source: bytes, or a sorted table of code points. */
typedef struct tokens {
  const uint32_t *chars; /* NULL: bytes */
  int n_chars, first_id;
} tokens;

/* One UTF-8 character of s (at most n bytes) into *cp; its length, 0 if invalid. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  int len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (!len || (size_t)len > n) return 0;
  uint32_t v = len == 1 ? s[0] : s[0] & (0x3F >> (len - 1));
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3F);
  }
  static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0; /* overlong, surrogate */
  *cp = v;
  return len;
}

static void utf8_put(uint32_t cp, FILE *out) {
  if (cp < 0x80) {
    fputc((int)cp, out);
  } else if (cp < 0x800) {
    fputc(0xC0 | (int)(cp >> 6), out);
    fputc(0x80 | (int)(cp & 0x3F), out);
  } else if (cp < 0x10000) {
    fputc(0xE0 | (int)(cp >> 12), out);
    fputc(0x80 | (int)(cp >> 6 & 0x3F), out);
    fputc(0x80 | (int)(cp & 0x3F), out);
  } else {
    fputc(0xF0 | (int)(cp >> 18), out);
    fputc(0x80 | (int)(cp >> 12 & 0x3F), out);
    fputc(0x80 | (int)(cp >> 6 & 0x3F), out);
    fputc(0x80 | (int)(cp & 0x3F), out);
  }
}

static int id_of(const tokens *t, uint32_t cp) {
  int lo = 0, hi = t->n_chars - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (t->chars[mid] == cp) return t->first_id + mid;
    if (t->chars[mid] < cp) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static void put_token(const tokens *t, int32_t id, FILE *out) {
  if (!t->chars) fputc(id, out);
  else if (id >= t->first_id && id - t->first_id < t->n_chars) utf8_put(t->chars[id - t->first_id], out);
}

/* The prompt's ids into the generator, each a character the model knows. */
static int push_prompt(const tokens *t, const char *prompt, int64_t vocab, sn_generator *g) {
  const unsigned char *p = (const unsigned char *)prompt;
  size_t n = strlen(prompt);
  for (size_t i = 0; i < n;) {
    uint32_t cp = p[i];
    int len = t->chars ? utf8_decode(p + i, n - i, &cp) : 1;
    if (!len) return usage_error("--prompt is not valid UTF-8 at byte %zu", i);
    int id = t->chars ? id_of(t, cp) : (int)cp;
    if (id < 0 || id >= vocab) {
      fprintf(stderr, "specnet: error: --prompt: the character '%.*s' (U+%04X) at byte %zu is not in the model's "
                      "vocabulary of %d characters\n", len, (const char *)p + i, (unsigned)cp, i,
              t->chars ? t->n_chars : (int)vocab);
      fprintf(stderr, "hint: the vocabulary is the characters of the training text (vocab.json beside --weights)\n");
      return EXIT_USAGE;
    }
    sn_generator_push(g, id);
    i += (size_t)len;
  }
  return 0;
}

/* The tokenizer's table: bytes need none; chars come from vocab.json beside the
 * weights, else from the training text. *owned is what to free. */
static int load_tokens(const sn_spec *s, const char *weights, tokens *t, uint32_t **owned, sn_dataset *train) {
  memset(t, 0, sizeof *t);
  *owned = NULL;
  if (s->data.train.tokenizer != SN_TOK_CHARS) return 0;
  char msg[512];
  if (read_vocab(weights, owned, &t->n_chars, msg, sizeof msg)) {
    fprintf(stderr, "specnet: error: %s\n", msg);
    return EXIT_SPEC;
  }
  if (*owned) {
    t->chars = *owned;
    return 0;
  }
  sn_error err = {0};
  if (sn_dataset_load(&s->data.train, train, &err)) return data_error(s, s->data.train_loc, err.msg);
  t->chars = train->chars;
  t->n_chars = train->n_chars;
  t->first_id = train->first_id;
  return 0;
}

/* Whether the model's output is probabilities: its last layer ends in a softmax. */
static bool softmax_output(const sn_spec *s) {
  return s->n_layers > 0 && s->layers[s->n_layers - 1].activation == SN_ACT_SOFTMAX && !s->from_logits;
}

static int generate(const opts *o, const sn_spec *s, sn_model *m, const tokens *t) {
  const int64_t V = m->classes > 0 ? m->classes : m->output_elems, T = m->input_elems;
  if (T * V != m->output_elems)
    return usage_error("generate needs a model whose output is one score per token at every position "
                       "([%lld, V]); this one gives %lld values per window",
                       (long long)T, (long long)m->output_elems);
  sn_generator g = {.predict = m->predict, .context = T, .vocab = V, .f64 = m->dtype == SN_RT_F64,
                    .probs = softmax_output(s)};
  g.args = (sn_step_args){.params = m->params, .state = m->state, .arena = m->arena, .step = 1, .seed = s->seed};
  sn_error err = {0};
  if (sn_generator_init(&g, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    return EXIT_SPEC;
  }
  const char *prompt = o->prompt ? o->prompt : "";
  int rc = push_prompt(t, prompt, V, &g);
  if (!rc && !*prompt) { /* no prompt: start after a line break, as a record does */
    int nl = t->chars ? id_of(t, '\n') : '\n';
    sn_generator_push(&g, nl >= 0 && nl < V ? nl : 0);
  }
  sn_sampler smp = {.temperature = o->temperature_set ? o->temperature : 1.0, .top_k = o->top_k,
                    .seed = o->seed_set ? o->seed : s->seed};
  if (!rc) {
    fputs(prompt, stdout);
    for (int64_t i = 0; i < (o->tokens_set ? o->tokens : 200); i++) {
      put_token(t, sn_generator_next(&g, &smp), stdout);
      fflush(stdout); /* streamed: each token as it comes */
    }
    fputc('\n', stdout);
    if (ferror(stdout)) rc = EXIT_SPEC;
  }
  sn_generator_free(&g);
  return rc;
}

int cmd_generate(const opts *o) {
  if (!o->weights) return usage_error("generate needs --weights FILE (a trained language model)");
  sn_spec *spec = load_spec(o);
  if (!spec) return EXIT_SPEC;
  if (spec->data.train.kind != SN_SRC_TEXT || spec->data.train.text_mode != SN_TEXT_LM) {
    sn_diag d = {0};
    sn_diag_error(&d, spec->data.train_loc, "generate needs a language model: data.train must be a text source "
                                            "with mode: lm");
    print_diag(&d);
    sn_diag_free(&d);
    sn_spec_free(spec);
    return EXIT_SPEC;
  }
  session S;
  int rc = session_open_with(&S, o, true, false, spec);
  tokens t;
  uint32_t *owned = NULL;
  sn_dataset train = {0};
  if (!rc) rc = load_tokens(S.spec, o->weights, &t, &owned, &train);
  if (!rc) rc = generate(o, S.spec, S.m, &t);
  free(owned);
  sn_dataset_free(&train);
  session_free(&S);
  return rc;
}
