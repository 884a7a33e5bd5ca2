/* `specnet generate SPEC --weights FILE [--prompt TEXT] [--tokens N]
 *  [--temperature F] [--top-k K] [--seed S]`: text from a trained language model.
 *
 * The spec's training data must be a text source in lm mode: its tokenizer says
 * how the prompt becomes ids and ids become text (bytes: id = byte; chars: the
 * run's vocab.json beside --weights, else the training text's table). The model
 * runs on windows of `context` ids (runtime/generate.c: the text at the start of the
 * window, then sliding); each token is printed as soon as it is drawn. The prompt
 * is printed first, so the output reads as one text. A model the key/value cache
 * can run (sn_decoder_plan) computes one position per token while the text fits
 * the window; --no-kv-cache runs the full window every token. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include <unistd.h>

/* Whether the spec is a language model's: data.train a text source in lm mode. */
static bool is_lm(const sn_spec *s) {
  const sn_source *src = sn_spec_train_source(s);
  return src->kind == SN_SRC_TEXT && src->text_mode == SN_TEXT_LM;
}

/* The tokenizer's table: bytes need none; chars come from vocab.json beside the
 * weights, else from the training text. The model's embedding must cover it (as
 * in training: the key/value cache reads the embedding's rows unclamped). *owned
 * is what to free. */
static int load_tokens(const sn_spec *s, const char *weights, sn_vocab *t, uint32_t **owned, sn_dataset *train) {
  memset(t, 0, sizeof *t);
  *owned = NULL;
  if (sn_spec_train_source(s)->tokenizer != SN_TOK_CHARS) return check_vocab_size(s, 256, "tokenizer: bytes");
  char msg[512];
  if (read_vocab(weights, owned, &t->n_chars, msg, sizeof msg)) {
    fprintf(stderr, "specnet: error: %s\n", msg);
    return EXIT_SPEC;
  }
  if (*owned) {
    t->chars = *owned;
    return check_vocab_size(s, sn_vocab_tokens(t), "the vocab.json beside --weights");
  }
  sn_error err = {0};
  if (sn_dataset_load(sn_spec_train_source(s), train, &err))
    return data_error(s, sn_spec_data_loc(s, SN_PART_TRAIN), err.msg);
  t->chars = train->chars;
  t->n_chars = train->n_chars;
  t->first_id = train->first_id;
  return check_text_vocab(s, train);
}

/* What one piece of generated text is: where it starts and how it is drawn. */
typedef struct text_job {
  const char *prompt; /* "" : after a line break */
  int64_t tokens;
  sn_sampler sampler;
} text_job;

/* The job's prompt and tokens on out, each token as soon as it is drawn. */
static int write_text(const sn_spec *s, sn_model *m, const sn_vocab *t, const text_job *job, bool kv, FILE *out) {
  const int64_t V = m->classes > 0 ? m->classes : m->output_elems, T = m->input_elems;
  if (T * V != m->output_elems)
    return usage_error("generate needs a model whose output is one score per token at every position "
                       "([%lld, V]); this one gives %lld values per window",
                       (long long)T, (long long)m->output_elems);
  sn_generator g = {.predict = m->predict, .context = T, .vocab = V, .f64 = m->dtype == SN_RT_F64,
                    .probs = sn_spec_softmax_output(s), .tokens = sn_vocab_tokens(t)};
  g.args = (sn_step_args){.params = m->params, .state = m->state, .arena = m->arena, .step = 1, .seed = sn_spec_seed(s)};
  static sn_decoder dec; /* large: not on the stack */
  char why[256];
  if (kv && !sn_decoder_plan(s, m, &dec, why, sizeof why)) g.dec = &dec;
  sn_error err = {0};
  if (sn_generator_init(&g, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    return EXIT_SPEC;
  }
  int rc = 0;
  if (sn_generator_push_text(&g, t, job->prompt, &err)) {
    fprintf(stderr, "specnet: error: --prompt: %s\n", err.msg);
    rc = EXIT_USAGE;
  } else if (!*job->prompt) { /* no prompt: start after a line break, as a record does */
    int32_t nl = sn_vocab_id(t, '\n');
    sn_generator_push(&g, nl >= 0 && nl < V ? nl : 0);
  }
  if (!rc) {
    fputs(job->prompt, out);
    for (int64_t i = 0; i < job->tokens; i++) {
      char buf[4];
      fwrite(buf, 1, (size_t)sn_token_text(t, sn_generator_next(&g, &job->sampler), buf), out);
      fflush(out); /* streamed: each token as it comes */
    }
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out)) rc = -1; /* the caller says so */
  }
  sn_generator_free(&g);
  return rc;
}

int write_generations(const sn_spec *s, sn_model *m, const sn_dataset *train, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/generations.txt", dir);
  if (!is_lm(s)) {
    unlink(path); /* an older run's */
    return 0;
  }
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  sn_vocab t = {.chars = train->chars, .n_chars = train->n_chars, .first_id = train->first_id};
  int rc = 0;
  for (uint64_t k = 1; k <= GENERATIONS && !rc; k++) {
    text_job job = {.prompt = "", .tokens = 200, .sampler = {.temperature = 0.8, .top_k = 40, .seed = k}};
    if (k > 1) fputc('\n', f); /* one sample per paragraph */
    rc = write_text(s, m, &t, &job, true, f);
  }
  return fclose(f) || rc ? -1 : 0;
}

int cmd_generate(const opts *o) {
  if (!o->weights) return usage_error("generate needs --weights FILE (a trained language model)");
  sn_spec *spec = load_spec(o);
  if (!spec) return EXIT_SPEC;
  if (!is_lm(spec)) {
    sn_diag d = {0};
    sn_diag_error(&d, sn_spec_data_loc(spec, SN_PART_TRAIN), "generate needs a language model: data.train must be a text source "
                                            "with mode: lm");
    print_diag(&d);
    sn_diag_free(&d);
    sn_spec_free(spec);
    return EXIT_SPEC;
  }
  session S;
  int rc = session_open_with(&S, o, true, false, spec);
  sn_vocab t;
  uint32_t *owned = NULL;
  sn_dataset train = {0};
  if (!rc) rc = load_tokens(S.spec, o->weights, &t, &owned, &train);
  text_job job = {.prompt = o->prompt ? o->prompt : "",
                  .tokens = o->tokens_set ? o->tokens : 200,
                  .sampler = {.temperature = o->temperature_set ? o->temperature : 1.0, .top_k = o->top_k,
                              .seed = o->seed_set ? o->seed : sn_spec_seed(S.spec)}};
  if (!rc) rc = write_text(S.spec, S.m, &t, &job, !o->no_kv_cache, stdout);
  if (rc == -1) {
    fprintf(stderr, "specnet: error: cannot write the text: %s\n", strerror(errno));
    rc = EXIT_SPEC;
  }
  free(owned);
  sn_dataset_free(&train);
  session_free(&S);
  return rc;
}
