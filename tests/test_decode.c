/* Incremental decoding (key/value cache, runtime/decode.c) against the full forward
 * pass: a small causal transformer with every layer kind the decoder runs
 * (embedding, position_embedding, layer_norm, causal attention with and without
 * biases, dense with gelu, gelu_tanh, relu and linear, an activation layer,
 * dropout, add, multiply, a softmax output, or logits), random weights. For every position p
 * of a window, the decoder's scores for p (the cache holding 0..p-1) equal row p
 * of predict over the window to 1e-5 of the largest; the generator gives the same
 * tokens with the cache as without for several seeds at temperature 0.9 with
 * top-k, past the window (where the cache gives way to the full pass); a model the
 * cache cannot run (attention not causal) has no decoder, with the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"
#include "specnet/runtime.h"

#include "check.h"
#include "spec_text.h"

enum { T = 8, V = 11 };

static const char *SPEC =
    "specnet: 1\nname: decode\nseed: 3\n"
    "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 8}}\n"
    "model:\n  input: [8]\n  layers:\n"
    "    - {name: tok, embedding: {vocab: 11, dim: 12, kernel_init: {normal: {std: 1.0}}}}\n"
    "    - {name: x0, position_embedding: {kernel_init: {normal: {std: 0.5}}}}\n"
    "    - {name: ln1, layer_norm: {epsilon: 1.0e-5}}\n"
    "    - {name: att1, attention: {heads: 3, causal: true, dropout: 0.1}}\n"
    "    - {name: mid, add: {}, inputs: [x0, att1]}\n"
    "    - {name: up, dense: {units: 20, activation: gelu_tanh}}\n"
    "    - {name: gate, dense: {units: 20, activation: gelu}, inputs: [mid]}\n"
    "    - {name: both, multiply: {}, inputs: [up, gate]}\n"
    "    - {name: drop, dropout: {rate: 0.2}}\n"
    "    - {name: down, dense: {units: 12, activation: relu}}\n"
    "    - {name: t, tanh: {}}\n"
    "    - {name: out1, add: {}, inputs: [mid, t]}\n"
    "    - {name: att2, attention: {heads: 2, causal: true, use_bias: false}}\n"
    "    - {name: out2, add: {}, inputs: [out1, att2]}\n"
    "    - {name: lnf, layer_norm: {}}\n"
    "    - {name: head, dense: {units: 11, activation: softmax}}\n"
    "train:\n  loss: sparse_categorical_crossentropy\n  optimizer: sgd\n  batch_size: 4\n";

/* row p of predict over ids against the decoder at p, for p = 0..T-1 */
static void scores_agree(sn_model *m, const sn_decoder *dec, const int32_t *ids) {
  float x[T], y[T * V], out[V];
  for (int t = 0; t < T; t++) x[t] = (float)ids[t];
  sn_step_args a = {.x = x, .rows = 1, .params = m->params, .arena = m->arena, .out = y, .state = m->state};
  m->predict(&a);
  float *cache = calloc((size_t)dec->cache_elems, sizeof(float));
  float *work = calloc((size_t)sn_decoder_work_elems(dec), sizeof(float));
  double worst = 0, top = 0;
  for (int p = 0; p < T; p++) {
    sn_decoder_step(dec, m->params, cache, work, ids[p], p, out);
    for (int k = 0; k < V; k++) {
      worst = fmax(worst, fabs((double)out[k] - y[p * V + k]));
      top = fmax(top, fabs((double)y[p * V + k]));
    }
  }
  CHECK(worst <= 1e-5 * top, "decoder scores differ from the full pass by %g (largest %g)", worst, top);
  printf("decoder vs full pass over %d positions: max difference %.3g (largest score %.3g)\n", T, worst, top);
  free(cache);
  free(work);
}

/* n tokens after the prompt ids 3 1 4, with or without the decoder */
static void generate(sn_model *m, const sn_decoder *dec, bool probs, const sn_sampler *s, int n, int32_t *ids) {
  sn_generator g = {.predict = m->predict, .context = T, .vocab = V, .probs = probs, .dec = dec};
  g.args = (sn_step_args){.params = m->params, .state = m->state, .arena = m->arena, .step = 1};
  sn_error err = {0};
  CHECK(sn_generator_init(&g, &err) == 0, "%s", err.msg);
  sn_generator_push(&g, 3);
  sn_generator_push(&g, 1);
  sn_generator_push(&g, 4);
  for (int i = 0; i < n; i++) ids[i] = sn_generator_next(&g, s);
  sn_generator_free(&g);
}

/* text with its first `from` replaced by `to` (a new string) */
static char *replaced(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  char *out = malloc(strlen(text) + strlen(to) + 1);
  if (!at || !out) abort();
  sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  return out;
}

/* The spec's model with random weights: its decoder's scores per position and its
 * generated tokens against the full pass (probs: the output is a softmax) */
static void check_model(const char *text, const char *name, bool probs) {
  sn_diag d = {0};
  sn_spec *s;
  sn_compiled *c = compile_spec_text(text, name, SN_RT_F32, &s, &d);
  CHECK(c != NULL, "%s does not compile", name);
  if (!c) return;
  sn_model *m = sn_compiled_model(c);
  sn_error err = {0};
  CHECK(sn_model_alloc(m, &err) == 0, "%s", err.msg);
  sn_model_init_params(m, 7);
  float *P = m->params; /* biases and norms away from their 0 and 1 starts */
  for (int64_t i = 0; i < m->param_count; i++) P[i] += (float)(0.3 * sin(1.7 * (double)i));
  static sn_decoder dec;
  char why[256] = "";
  CHECK(sn_decoder_plan(s, m, &dec, why, sizeof why) == 0, "no decoder: %s", why);
  CHECK(dec.n_ops == 16 && dec.vocab == V && dec.context == T, "ops %d vocab %lld context %lld", dec.n_ops,
        (long long)dec.vocab, (long long)dec.context);
  int32_t a[T] = {3, 1, 4, 1, 5, 9, 2, 6}, b[T] = {0, 10, 10, 7, 0, 2, 2, 8};
  printf("%s (%s):\n", name, probs ? "probabilities" : "logits");
  scores_agree(m, &dec, a);
  scores_agree(m, &dec, b);
  enum { N = 2 * T };
  for (uint64_t seed = 1; seed <= 6; seed++) {
    sn_sampler smp = {.temperature = 0.9, .top_k = seed % 2 ? 4 : 0, .seed = seed};
    int32_t with[N], without[N];
    generate(m, &dec, probs, &smp, N, with);
    generate(m, NULL, probs, &smp, N, without);
    CHECK(!memcmp(with, without, sizeof with), "%s, seed %llu: the cache changes the tokens", name,
          (unsigned long long)seed);
  }
  sn_model_free(m);
  sn_compiled_free(c);
  sn_spec_free(s);
  sn_diag_free(&d);
}

int main(void) {
  check_model(SPEC, "decode.yaml", true);
  char *linear = replaced(SPEC, "units: 11, activation: softmax", "units: 11");
  char *logits = replaced(linear, "loss: sparse_categorical_crossentropy",
                          "loss: {sparse_categorical_crossentropy: {from_logits: true}}");
  check_model(logits, "decode_logits.yaml", false);
  free(linear);
  free(logits);

  /* att2 not causal: no decoder, and why */
  char *text = replaced(SPEC, "causal: true, use_bias", "causal: false, use_bias");
  sn_diag d = {0};
  sn_spec *s2 = NULL;
  sn_compiled *c2 = compile_spec_text(text, "decode2.yaml", SN_RT_F32, &s2, &d);
  CHECK(c2 != NULL, "the second spec does not compile");
  if (c2) {
    static sn_decoder dec;
    char why[256] = "";
    CHECK(sn_decoder_plan(s2, sn_compiled_model(c2), &dec, why, sizeof why) != 0 &&
              strstr(why, "att2: the attention is not causal"),
          "a non-causal attention: %s", why);
    sn_compiled_free(c2);
  }
  free(text);
  sn_spec_free(s2);
  sn_diag_free(&d);
  if (!failures) printf("test_decode: all passed\n");
  return failures != 0;
}
