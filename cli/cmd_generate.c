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

/* The tokenizer's table: bytes need none; chars come from vocab.json beside the
 * weights, else from the training text. *owned is what to free. */
static int load_tokens(const sn_spec *s, const char *weights, sn_vocab *t, uint32_t **owned, sn_dataset *train) {
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

static int generate(const opts *o, const sn_spec *s, sn_model *m, const sn_vocab *t) {
  const int64_t V = m->classes > 0 ? m->classes : m->output_elems, T = m->input_elems;
  if (T * V != m->output_elems)
    return usage_error("generate needs a model whose output is one score per token at every position "
                       "([%lld, V]); this one gives %lld values per window",
                       (long long)T, (long long)m->output_elems);
  sn_generator g = {.predict = m->predict, .context = T, .vocab = V, .f64 = m->dtype == SN_RT_F64,
                    .probs = sn_spec_softmax_output(s)};
  g.args = (sn_step_args){.params = m->params, .state = m->state, .arena = m->arena, .step = 1, .seed = s->seed};
  sn_error err = {0};
  if (sn_generator_init(&g, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    return EXIT_SPEC;
  }
  const char *prompt = o->prompt ? o->prompt : "";
  int rc = 0;
  if (sn_generator_push_text(&g, t, prompt, &err)) {
    fprintf(stderr, "specnet: error: --prompt: %s\n", err.msg);
    rc = EXIT_USAGE;
  } else if (!*prompt) { /* no prompt: start after a line break, as a record does */
    int32_t nl = sn_vocab_id(t, '\n');
    sn_generator_push(&g, nl >= 0 && nl < V ? nl : 0);
  }
  sn_sampler smp = {.temperature = o->temperature_set ? o->temperature : 1.0, .top_k = o->top_k,
                    .seed = o->seed_set ? o->seed : s->seed};
  if (!rc) {
    fputs(prompt, stdout);
    for (int64_t i = 0; i < (o->tokens_set ? o->tokens : 200); i++) {
      char buf[4];
      fwrite(buf, 1, (size_t)sn_token_text(t, sn_generator_next(&g, &smp), buf), stdout);
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
  sn_vocab t;
  uint32_t *owned = NULL;
  sn_dataset train = {0};
  if (!rc) rc = load_tokens(S.spec, o->weights, &t, &owned, &train);
  if (!rc) rc = generate(o, S.spec, S.m, &t);
  free(owned);
  sn_dataset_free(&train);
  session_free(&S);
  return rc;
}
