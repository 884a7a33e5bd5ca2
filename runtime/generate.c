/* Generation: a language model's next tokens, one at a time (`specnet generate`,
 * the AOT executable's --generate).
 *
 * The model is a predict step over windows of `context` token ids whose output is
 * [context, vocab]: a distribution (or logits) for the token after each position.
 * The generator keeps the text's last `context` ids; while the text is shorter, it
 * sits at positions 0.. and the rest of the window is id 0, which a causal model
 * (each position reads only earlier ones) never looks at. Each step runs predict on
 * one window (rows = 1) and reads the scores at the text's last position; the window
 * slides once full. So every token costs a forward pass over the whole window: no key
 * /value cache (incremental decoding) yet.
 *
 * Sampling: temperature 0 takes the arg-max; otherwise the scores become
 * log-probabilities (log of the model's probabilities after a softmax, or a
 * log-softmax of logits), divided by the temperature, cut to the top_k largest when
 * top_k > 0, and one token is drawn from their softmax with the counter-based RNG
 * (seed, SN_STREAM_GENERATE, token index): the same seed gives the same text.
 *
 * All buffers are allocated by sn_generator_init: nothing is allocated per token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/runtime.h"

int sn_generator_init(sn_generator *g, sn_error *err) {
  if (g->context < 1 || g->vocab < 2)
    return sn_fail(err, "generation needs a model over windows of token ids with one score per token "
                        "for every position; this one has context %lld and %lld scores",
                   (long long)g->context, (long long)g->vocab);
  size_t es = g->f64 ? sizeof(double) : sizeof(float);
  g->x = calloc((size_t)g->context, es);
  g->y = calloc((size_t)(g->context * g->vocab), es);
  g->score = malloc((size_t)g->vocab * sizeof(double));
  g->order = malloc((size_t)g->vocab * sizeof(int32_t));
  g->window = calloc((size_t)g->context, sizeof(int32_t));
  if (!g->x || !g->y || !g->score || !g->order || !g->window) {
    sn_generator_free(g);
    return sn_fail(err, "out of memory for generation buffers");
  }
  g->filled = 0;
  g->produced = 0;
  return 0;
}

void sn_generator_free(sn_generator *g) {
  free(g->x);
  free(g->y);
  free(g->score);
  free(g->order);
  free(g->window);
  g->x = g->y = NULL;
  g->score = NULL;
  g->order = g->window = NULL;
}

void sn_generator_push(sn_generator *g, int32_t id) {
  if (g->filled == g->context) { /* slide: the oldest token leaves the window */
    memmove(g->window, g->window + 1, (size_t)(g->context - 1) * sizeof(int32_t));
    g->filled--;
  }
  g->window[g->filled++] = id;
}

/* Scores at the text's last position, as log-probabilities. */
static void last_scores(sn_generator *g) {
  const int64_t V = g->vocab, at = (g->filled - 1) * V;
  double top = -INFINITY;
  for (int64_t k = 0; k < V; k++) {
    double v = g->f64 ? ((const double *)g->y)[at + k] : ((const float *)g->y)[at + k];
    g->score[k] = g->probs ? log(v > 1e-30 ? v : 1e-30) : v;
    if (g->score[k] > top) top = g->score[k];
  }
  if (!g->probs) { /* log-softmax of logits */
    double s = 0;
    for (int64_t k = 0; k < V; k++) s += exp(g->score[k] - top);
    for (int64_t k = 0; k < V; k++) g->score[k] -= top + log(s);
  }
}

/* order[0..k) = the ids of the k largest scores (a partial selection sort: k is
 * small, and a full sort would still be cheap next to the forward pass). */
static void top_k(sn_generator *g, int64_t k) {
  for (int64_t i = 0; i < g->vocab; i++) g->order[i] = (int32_t)i;
  for (int64_t i = 0; i < k; i++) {
    int64_t best = i;
    for (int64_t j = i + 1; j < g->vocab; j++)
      if (g->score[g->order[j]] > g->score[g->order[best]]) best = j;
    int32_t t = g->order[i];
    g->order[i] = g->order[best];
    g->order[best] = t;
  }
}

int32_t sn_generator_next(sn_generator *g, const sn_sampler *s) {
  if (g->filled == 0) sn_generator_push(g, 0);
  for (int64_t t = 0; t < g->context; t++) {
    double id = t < g->filled ? g->window[t] : 0;
    if (g->f64) ((double *)g->x)[t] = id;
    else ((float *)g->x)[t] = (float)id;
  }
  sn_step_args a = g->args;
  a.x = g->x;
  a.out = g->y;
  a.rows = 1;
  g->predict(&a);
  last_scores(g);
  int64_t k = s->top_k > 0 && s->top_k < g->vocab ? s->top_k : g->vocab;
  int32_t next;
  if (!(s->temperature > 0)) {
    top_k(g, 1);
    next = g->order[0];
  } else {
    top_k(g, k);
    double top = g->score[g->order[0]] / s->temperature, total = 0;
    for (int64_t i = 0; i < k; i++) total += exp(g->score[g->order[i]] / s->temperature - top);
    double u = sn_rand_uniform(s->seed, SN_STREAM_GENERATE, (uint64_t)g->produced) * total;
    next = g->order[k - 1]; /* rounding leaves u past the last bucket: the last one */
    for (int64_t i = 0; i < k; i++) {
      u -= exp(g->score[g->order[i]] / s->temperature - top);
      if (u < 0) {
        next = g->order[i];
        break;
      }
    }
  }
  g->produced++;
  sn_generator_push(g, next);
  return next;
}
