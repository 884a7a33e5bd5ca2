/* Incremental decoding: one position of a causal language model through its
 * layers (sn_decoder, written by the compiler's sn_decoder_plan), with every
 * attention layer's keys and values of the earlier positions read from a cache
 * and the new position's appended. The generator (generate.c) runs it per token
 * while the text fits the window; its scores equal the full forward pass's row
 * for that position (the model is causal: no position reads a later one).
 *
 * Work space: op i's output at work + i * width, then the attention's q k v
 * (3 width), its merged heads (width) and the scores (context). Nothing is
 * allocated here. Dense products are cblas_sgemv calls; sums are in double. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "specnet/runtime.h"

int64_t sn_decoder_work_elems(const sn_decoder *d) { return ((int64_t)d->n_ops + 4) * d->width + d->context; }

static void activate(int act, float *x, int64_t n) {
  switch (act) {
  case SN_DEC_RELU:
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
    break;
  case SN_DEC_SIGMOID:
    for (int64_t i = 0; i < n; i++) x[i] = (float)(1 / (1 + exp(-(double)x[i])));
    break;
  case SN_DEC_TANH:
    for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
    break;
  case SN_DEC_GELU:
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
    break;
  case SN_DEC_GELU_TANH:
    for (int64_t i = 0; i < n; i++) {
      double v = x[i];
      x[i] = (float)(0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
    }
    break;
  case SN_DEC_SOFTMAX: {
    double top = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++) top = x[i] > top ? x[i] : top;
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - top);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(exp(x[i] - top) / s);
    break;
  }
  default:
    break;
  }
}

/* y = w x (+ b): w (m, n) row-major */
static void affine(const float *w, const float *b, const float *x, int64_t m, int64_t n, float *y) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)n, 1.0f, w, (int)n, x, 1, 0.0f, y, 1);
  for (int64_t i = 0; b && i < m; i++) y[i] += b[i];
}

static void layer_norm(const sn_dec_op *op, const float *P, const float *x, float *y) {
  int64_t C = op->width;
  double mean = 0, var = 0;
  for (int64_t i = 0; i < C; i++) mean += x[i];
  mean /= (double)C;
  for (int64_t i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
  double inv = 1 / sqrt(var / (double)C + op->eps);
  for (int64_t i = 0; i < C; i++) y[i] = (float)((x[i] - mean) * inv * P[op->w + i] + P[op->b + i]);
}

/* Causal self-attention of position p over positions 0..p: q k v of x, k and v
 * into the cache's row p, per head softmax(q K^T / sqrt(d)) V, then out_proj. */
static void attention(const sn_decoder *d, const sn_dec_op *op, const float *P, float *cache, float *tmp,
                      const float *x, int64_t p, float *y) {
  int64_t D = op->width, H = op->heads, dh = D / H, T = d->context;
  float *qkv = tmp, *o = tmp + 3 * d->width, *s = o + d->width;
  float *K = cache + op->cache, *V = K + T * D;
  affine(P + op->w, op->b >= 0 ? P + op->b : NULL, x, 3 * D, D, qkv);
  memcpy(K + p * D, qkv + D, (size_t)D * sizeof(float));
  memcpy(V + p * D, qkv + 2 * D, (size_t)D * sizeof(float));
  double scale = 1 / sqrt((double)dh);
  for (int64_t h = 0; h < H; h++) {
    const float *q = qkv + h * dh;
    double top = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= p; j++) {
      double dot = 0;
      for (int64_t i = 0; i < dh; i++) dot += (double)q[i] * K[j * D + h * dh + i];
      s[j] = (float)(dot * scale);
      top = s[j] > top ? s[j] : top;
    }
    for (int64_t j = 0; j <= p; j++) sum += exp(s[j] - top);
    for (int64_t i = 0; i < dh; i++) {
      double acc = 0;
      for (int64_t j = 0; j <= p; j++) acc += exp(s[j] - top) * V[j * D + h * dh + i];
      o[h * dh + i] = (float)(acc / sum);
    }
  }
  affine(P + op->w2, op->b2 >= 0 ? P + op->b2 : NULL, o, D, D, y);
}

void sn_decoder_step(const sn_decoder *d, const float *P, float *cache, float *work, int32_t id, int64_t p,
                     float *out) {
  const int64_t W = d->width;
  float *tmp = work + (int64_t)d->n_ops * W;
  for (int i = 0; i < d->n_ops; i++) {
    const sn_dec_op *op = &d->ops[i];
    float *y = work + i * W;
    const float *a = op->in[0] >= 0 ? work + op->in[0] * W : NULL, *b = op->in[1] >= 0 ? work + op->in[1] * W : NULL;
    switch (op->kind) {
    case SN_DEC_EMBED:
      memcpy(y, P + op->w + (int64_t)id * op->width, (size_t)op->width * sizeof(float));
      break;
    case SN_DEC_POSITION:
      for (int64_t k = 0; k < op->width; k++) y[k] = a[k] + P[op->w + p * op->width + k];
      break;
    case SN_DEC_LAYER_NORM:
      layer_norm(op, P, a, y);
      break;
    case SN_DEC_DENSE:
      affine(P + op->w, op->b >= 0 ? P + op->b : NULL, a, op->width, op->in_width, y);
      activate(op->act, y, op->width);
      break;
    case SN_DEC_ATTENTION:
      attention(d, op, P, cache, tmp, a, p, y);
      break;
    case SN_DEC_ADD:
    case SN_DEC_MULTIPLY:
      for (int64_t k = 0; k < op->width; k++) y[k] = op->kind == SN_DEC_ADD ? a[k] + b[k] : a[k] * b[k];
      break;
    default: /* SN_DEC_ACT */
      memcpy(y, a, (size_t)op->width * sizeof(float));
      activate(op->act, y, op->width);
      break;
    }
  }
  memcpy(out, work + (int64_t)(d->n_ops - 1) * W, (size_t)d->vocab * sizeof(float));
}
