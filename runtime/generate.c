/* Generation: a language model's next tokens, one at a time (`specnet generate`,
 * the AOT executable's --generate).
 *
 * The model is a predict step over windows of `context` token ids whose output is
 * [context, vocab]: a distribution (or logits) for the token after each position.
 * The generator keeps the text's last `context` ids; while the text is shorter, it
 * sits at positions 0.. and the rest of the window is id 0, which a causal model
 * (each position reads only earlier ones) never looks at. Each step runs predict on
 * one window (rows = 1) and reads the scores at the text's last position; the window
 * slides once full. So every token costs a forward pass over the whole window.
 *
 * With a decoder (g->dec, decode.c: a causal f32 model whose layers the key/value
 * cache can run), a token costs one position instead: the positions not yet in the
 * cache (the prompt's, then each new token) run through sn_decoder_step, which
 * appends their keys and values and gives the scores of the last one, the same
 * as the full pass's row for it. Once the window slides, every position's
 * position embedding changes, so the cache no longer applies: from then on each
 * token runs the full forward pass (re-priming the cache over the window would
 * cost as much).
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
  bool dec = g->dec && g->dec->version == 1 && !g->f64;
  g->cache = dec ? calloc((size_t)g->dec->cache_elems + 1, sizeof(float)) : NULL;
  g->work = dec ? calloc((size_t)sn_decoder_work_elems(g->dec), sizeof(float)) : NULL;
  if (!g->x || !g->y || !g->score || !g->order || !g->window || (dec && (!g->cache || !g->work))) {
    sn_generator_free(g);
    return sn_fail(err, "out of memory for generation buffers");
  }
  if (g->tokens <= 0 || g->tokens > g->vocab) g->tokens = g->vocab;
  g->filled = 0;
  g->produced = 0;
  g->cached = 0;
  g->slid = !dec;
  return 0;
}

void sn_generator_free(sn_generator *g) {
  void *owned[] = {g->x, g->y, g->score, g->order, g->window, g->cache, g->work};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
  g->x = g->y = NULL;
  g->score = NULL;
  g->order = g->window = NULL;
  g->cache = g->work = NULL;
}

void sn_generator_push(sn_generator *g, int32_t id) {
  if (g->filled == g->context) { /* slide: the oldest token leaves the window */
    memmove(g->window, g->window + 1, (size_t)(g->context - 1) * sizeof(int32_t));
    g->filled--;
    g->slid = true;
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

/* order[0..k) = the ids of the k largest scores among the ids with text (a
 * partial selection sort: k is small, and a full sort would still be cheap next
 * to the forward pass). */
static void top_k(sn_generator *g, int64_t k) {
  for (int64_t i = 0; i < g->tokens; i++) g->order[i] = (int32_t)i;
  for (int64_t i = 0; i < k; i++) {
    int64_t best = i;
    for (int64_t j = i + 1; j < g->tokens; j++)
      if (g->score[g->order[j]] > g->score[g->order[best]]) best = j;
    int32_t t = g->order[i];
    g->order[i] = g->order[best];
    g->order[best] = t;
  }
}

/* The scores of every position of the window into g->y: the full forward pass */
static void full_forward(sn_generator *g) {
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
}

/* The scores of the text's last position into its row of g->y, through the
 * key/value cache: the positions not yet in it, one at a time */
static void cached_forward(sn_generator *g) {
  for (; g->cached < g->filled; g->cached++)
    sn_decoder_step(g->dec, (const float *)g->args.params, g->cache, g->work, g->window[g->cached], g->cached,
                    (float *)g->y + g->cached * g->vocab);
}

void sn_generator_scores(sn_generator *g) {
  if (g->filled == 0) sn_generator_push(g, 0);
  if (g->slid) full_forward(g);
  else cached_forward(g);
  last_scores(g);
}

int32_t sn_generator_next(sn_generator *g, const sn_sampler *s) {
  sn_generator_scores(g);
  int64_t k = s->top_k > 0 && s->top_k < g->tokens ? s->top_k : g->tokens;
  int32_t next;
  if (!(s->temperature > 0)) {
    top_k(g, 1);
    next = g->order[0];
  } else {
    top_k(g, k);
    /* differences from the top before dividing: a tiny temperature makes them
     * -inf, where the quotients themselves would all be -inf and their difference NaN */
    double top = g->score[g->order[0]], total = 0;
    for (int64_t i = 0; i < k; i++) total += exp((g->score[g->order[i]] - top) / s->temperature);
    double u = sn_rand_uniform(s->seed, SN_STREAM_GENERATE, (uint64_t)g->produced) * total;
    next = g->order[k - 1]; /* rounding leaves u past the last bucket: the last one */
    for (int64_t i = 0; i < k; i++) {
      u -= exp((g->score[g->order[i]] - top) / s->temperature);
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

/* ---------------------------------------------------------------------------
 * Text <-> ids */

/* One UTF-8 character of s (at most n bytes) into *cp; its length, 0 if invalid. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  int len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (!len || (size_t)len > n) return 0;
  uint32_t v = len == 1 ? s[0] : s[0] & (0x3Fu >> (len - 1));
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3Fu);
  }
  static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0; /* overlong, surrogate */
  *cp = v;
  return len;
}

int32_t sn_vocab_id(const sn_vocab *v, uint32_t cp) {
  if (!v->chars) return cp < 256 ? (int32_t)cp : -1;
  int lo = 0, hi = v->n_chars - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (v->chars[mid] == cp) return v->first_id + mid;
    if (v->chars[mid] < cp) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

int64_t sn_vocab_tokens(const sn_vocab *v) { return v->chars ? (int64_t)v->first_id + v->n_chars : 256; }

int sn_token_text(const sn_vocab *v, int32_t id, char out[4]) {
  if (!v->chars) {
    if (id < 0 || id > 255) return 0;
    out[0] = (char)id;
    return 1;
  }
  if (id < v->first_id || id - v->first_id >= v->n_chars) return 0;
  uint32_t cp = v->chars[id - v->first_id];
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int sn_generator_push_text(sn_generator *g, const sn_vocab *v, const char *text, sn_error *err) {
  const unsigned char *p = (const unsigned char *)text;
  size_t n = strlen(text);
  for (size_t i = 0; i < n;) {
    uint32_t cp = p[i];
    int len = v->chars ? utf8_decode(p + i, n - i, &cp) : 1;
    if (!len) return sn_fail(err, "the prompt is not valid UTF-8 at byte %zu", i);
    int32_t id = sn_vocab_id(v, cp);
    if (id < 0 || id >= g->vocab)
      return sn_fail(err,
                     "the prompt's character '%.*s' (U+%04X) at byte %zu is not in the model's vocabulary of %lld "
                     "tokens (the characters of the training text)",
                     len, (const char *)p + i, (unsigned)cp, i, (long long)(v->chars ? v->n_chars : g->vocab));
    sn_generator_push(g, id);
    i += (size_t)len;
  }
  return 0;
}
