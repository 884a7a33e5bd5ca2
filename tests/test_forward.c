/* Forward values of the data-moving ops against the same arithmetic written out
 * here (gradient checks cannot see a forward op and its gradient that are wrong in
 * the same way): concat along every axis of [2, 3, 2] samples, of x and tanh(x);
 * conv1d and the 1-D pools masked over padding; conv2d, direct and as an implicit GEMM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"

#include "check.h"
#include "spec_text.h"

static const char *SPEC_FMT =
    "specnet: 1\nname: forward\nseed: 3\n"
    "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 12}}\n"
    "model:\n  input: [2, 3, 2]\n  layers:\n"
    "    - {name: t, tanh: {}}\n"
    "    - {name: c, concat: {axis: %d}, inputs: [input, t]}\n"
    "    - {name: f, flatten: {}, inputs: [c]}\n"
    "train: {loss: mse, optimizer: sgd}\n";

/* y = concat(x, tanh x) along axis k of [2, 3, 2], flattened */
static void reference(const float *x, int k, float *y) {
  int d[3] = {2, 3, 2}, o[3] = {2, 3, 2};
  o[k] *= 2;
  for (int i = 0; i < o[0]; i++)
    for (int j = 0; j < o[1]; j++)
      for (int l = 0; l < o[2]; l++) {
        int p[3] = {i, j, l};
        bool second = p[k] >= d[k];
        if (second) p[k] -= d[k];
        float v = x[(p[0] * d[1] + p[1]) * d[2] + p[2]];
        y[(i * o[1] + j) * o[2] + l] = second ? tanhf(v) : v;
      }
}

/* A spec compiled and its model allocated (f32), or NULL after a failed CHECK naming
 * `what`; fixture_free releases what it holds. */
typedef struct fixture {
  sn_diag d;
  sn_spec *s;
  sn_compiled *c;
  sn_model *m;
} fixture;

static void fixture_free(fixture *f) {
  if (f->m) sn_model_free(f->m);
  if (f->c) sn_compiled_free(f->c);
  sn_spec_free(f->s);
  sn_diag_free(&f->d);
}

static sn_model *fixture_open(fixture *f, const char *text, const char *file, const char *what) {
  memset(f, 0, sizeof *f);
  f->c = compile_spec_text(text, file, SN_RT_F32, &f->s, &f->d);
  if (!f->c) {
    CHECK(0, "%s: spec does not compile", what);
    fixture_free(f);
    return NULL;
  }
  f->m = sn_compiled_model(f->c);
  sn_error err = {0};
  CHECK(sn_model_alloc(f->m, &err) == 0, "%s", err.msg);
  return f->m;
}

static void check_axis(int axis) {
  char text[1024];
  snprintf(text, sizeof text, SPEC_FMT, axis);
  char what[32];
  snprintf(what, sizeof what, "concat axis %d", axis);
  fixture f;
  sn_model *m = fixture_open(&f, text, "forward.yaml", what);
  if (!m) return;
  CHECK(m->output_elems == 24, "concat axis %d: %lld outputs", axis, (long long)m->output_elems);
  enum { N = 3 };
  float x[N * 12], out[N * 24], want[24];
  for (int i = 0; i < N * 12; i++) x[i] = (float)(0.1 * i - 1.3);
  sn_step_args a = {.x = x, .rows = N, .params = m->params, .arena = m->arena, .out = out, .state = m->state};
  m->predict(&a);
  int k = axis < 0 ? axis + 3 : axis, bad = 0;
  for (int n = 0; n < N; n++) {
    reference(x + n * 12, k, want);
    for (int i = 0; i < 24; i++) bad += fabsf(out[n * 24 + i] - want[i]) > 1e-6f;
  }
  CHECK(!bad, "concat axis %d: %d of %d outputs differ from the written-out concat", axis, bad, N * 24);
  if (!bad) printf("ok: concat along axis %d of [2, 3, 2] samples (%d values)\n", axis, N * 24);
  fixture_free(&f);
}

/* ---- conv1d and the masked 1-D pools: ids [7] (pad_id 0) seen as [7, 1], through a
 * valid conv1d with strides and dilation and a same one, each pooled both ways. */

static const char *SEQ_SPEC =
    "specnet: 1\nname: forward_seq\nseed: 3\n"
    "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 7}}\n"
    "model:\n  input: [7]\n  pad_id: 0\n  layers:\n"
    "    - {name: r, reshape: {target_shape: [7, 1]}}\n"
    "    - {name: v, conv1d: {filters: 2, kernel_size: 2, strides: 2, dilation: 2}}\n"
    "    - {name: va, global_avg_pool1d: {}, inputs: [v]}\n"
    "    - {name: vm, global_max_pool1d: {}, inputs: [v]}\n"
    "    - {name: s, conv1d: {filters: 2, kernel_size: 3, padding: same}, inputs: [r]}\n"
    "    - {name: sa, global_avg_pool1d: {}, inputs: [s]}\n"
    "    - {name: sm, global_max_pool1d: {}, inputs: [s]}\n"
    "    - {name: c, concat: {}, inputs: [va, vm, sa, sm]}\n"
    "train: {loss: mse, optimizer: sgd}\n";

enum { T = 7, F = 2 };

/* conv1d of one channel x [T] as Keras: weight (out, 1, k), output [ot][F]; the mask of
 * an output step is the input id at its window's centre (k - 1) d / 2 (not pad 0) */
static int conv1d_ref(const float *x, int k, int st, int d, bool same, const float *w, const float *b,
                      float y[T][F], bool keep[T]) {
  int span = (k - 1) * d + 1, ot = same ? (T + st - 1) / st : (T - span) / st + 1;
  int total = (ot - 1) * st + span - T, pl = same && total > 0 ? total / 2 : 0;
  for (int o = 0; o < ot; o++) {
    keep[o] = x[o * st - pl + (k - 1) * d / 2] != 0;
    for (int f = 0; f < F; f++) {
      y[o][f] = b[f];
      for (int i = 0; i < k; i++) {
        int at = o * st - pl + i * d;
        if (at >= 0 && at < T) y[o][f] += w[f * k + i] * x[at];
      }
    }
  }
  return ot;
}

/* mean and max over the kept steps; 0 where none is kept */
static void pools_ref(float y[T][F], const bool keep[T], int ot, float *avg, float *max) {
  for (int f = 0; f < F; f++) {
    float sum = 0, best = -INFINITY;
    int n = 0;
    for (int o = 0; o < ot; o++)
      if (keep[o]) sum += y[o][f], best = fmaxf(best, y[o][f]), n++;
    avg[f] = n ? sum / (float)n : 0;
    max[f] = n ? best : 0;
  }
}

static float *param(sn_model *m, const char *name) {
  for (int i = 0; i < m->n_params; i++)
    if (!strcmp(m->params_info[i].name, name)) return (float *)m->params + m->params_info[i].offset;
  CHECK(0, "no parameter %s", name);
  return NULL;
}

static void check_seq(void) {
  fixture f;
  sn_model *m = fixture_open(&f, SEQ_SPEC, "forward_seq.yaml", "conv1d");
  if (!m) return;
  CHECK(m->output_elems == 4 * F, "conv1d: %lld outputs", (long long)m->output_elems);
  const char *names[] = {"v.weight", "v.bias", "s.weight", "s.bias"};
  const int counts[] = {2 * F, F, 3 * F, F};
  float *p[4];
  for (int i = 0; i < 4; i++) {
    if (!(p[i] = param(m, names[i]))) {
      fixture_free(&f);
      return;
    }
    for (int j = 0; j < counts[i]; j++) p[i][j] = (float)((j % 2 ? -0.3 : 0.2) * (j + 1) + 0.1 * i);
  }
  /* samples of several lengths, one all padding, one without padding */
  enum { N = 4 };
  float x[N][T] = {{3, 1, 4, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}, {1, 2, 3, 4, 1, 2, 3}, {2, 0, 0, 0, 0, 0, 0}};
  float out[N][4 * F], want[4 * F];
  sn_step_args a = {.x = &x[0][0], .rows = N, .params = m->params, .arena = m->arena, .out = &out[0][0], .state = m->state};
  m->predict(&a);
  int bad = 0;
  for (int n = 0; n < N; n++) {
    float y[T][F];
    bool keep[T];
    int ot = conv1d_ref(x[n], 2, 2, 2, false, p[0], p[1], y, keep);
    pools_ref(y, keep, ot, want, want + F);
    ot = conv1d_ref(x[n], 3, 1, 1, true, p[2], p[3], y, keep);
    pools_ref(y, keep, ot, want + 2 * F, want + 3 * F);
    for (int i = 0; i < 4 * F; i++) bad += fabsf(out[n][i] - want[i]) > 1e-5f;
  }
  CHECK(!bad, "conv1d + masked pools: %d of %d outputs differ from the written-out ones", bad, N * 4 * F);
  if (!bad) printf("ok: conv1d (valid, strides, dilation; same) and masked 1-D pools (%d values)\n", N * 4 * F);
  fixture_free(&f);
}

/* ---- conv2d, both lowerings: the direct convolution (op conv; patches of at most 32
 * values: a with strides and same padding, b valid) and the implicit GEMM (op
 * conv_gemm, patches of 40: c same, d same with strides (2, 3); 90 rows, two tiles),
 * on [5, 6, 2] images, against the convolution written out with torch's weight
 * layout (out, in, kh, kw) and Keras's padding. */

static const char *CONV_SPEC =
    "specnet: 1\nname: forward_conv\nseed: 3\n"
    "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 60}}\n"
    "model:\n  input: [5, 6, 2]\n  layers:\n"
    "    - {name: a, conv2d: {filters: 3, kernel_size: [3, 2], strides: [2, 1], padding: same}}\n"
    "    - {name: b, conv2d: {filters: 2, kernel_size: 3}, inputs: [input]}\n"
    "    - {name: c, conv2d: {filters: 2, kernel_size: [4, 5], padding: same}, inputs: [input]}\n"
    "    - {name: fa, flatten: {}, inputs: [a]}\n"
    "    - {name: fb, flatten: {}, inputs: [b]}\n"
    "    - {name: d, conv2d: {filters: 3, kernel_size: [5, 4], strides: [2, 3], padding: same}, "
    "inputs: [input]}\n"
    "    - {name: fc, flatten: {}, inputs: [c]}\n"
    "    - {name: fd, flatten: {}, inputs: [d]}\n"
    "    - {name: all, concat: {}, inputs: [fa, fb, fc, fd]}\n"
    "train: {loss: mse, optimizer: sgd}\n";

enum { H = 5, W = 6, C = 2 };

/* y [oh][ow][f] (flattened, appended at *y) of x [H][W][C]; returns the values written */
static int conv2d_ref(const float *x, int F_, int kh, int kw, int sh, int sw, bool same,
                      const float *w, const float *b, float *y) {
  int oh = same ? (H + sh - 1) / sh : (H - kh) / sh + 1,
      ow = same ? (W + sw - 1) / sw : (W - kw) / sw + 1;
  int th = (oh - 1) * sh + kh - H, tw = (ow - 1) * sw + kw - W;
  int pt = same && th > 0 ? th / 2 : 0, pl = same && tw > 0 ? tw / 2 : 0, at = 0;
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++)
      for (int f = 0; f < F_; f++) {
        double sum = b[f];
        for (int c = 0; c < C; c++)
          for (int u = 0; u < kh; u++)
            for (int v = 0; v < kw; v++) {
              int yy = i * sh - pt + u, xx = j * sw - pl + v;
              if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                sum += (double)w[((f * C + c) * kh + u) * kw + v] * x[(yy * W + xx) * C + c];
            }
        y[at++] = (float)sum;
      }
  return at;
}

static void check_conv2d(void) {
  fixture f;
  sn_model *m = fixture_open(&f, CONV_SPEC, "forward_conv.yaml", "conv2d");
  if (!m) return;
  enum { OUTS = 3 * 6 * 3 + 3 * 4 * 2 + 5 * 6 * 2 + 3 * 2 * 3 };
  CHECK(m->output_elems == OUTS, "conv2d: %lld outputs", (long long)m->output_elems);
  const char *names[] = {"a.weight", "a.bias", "b.weight", "b.bias",
                         "c.weight", "c.bias", "d.weight", "d.bias"};
  const int counts[] = {3 * C * 3 * 2, 3, 2 * C * 3 * 3, 2, 2 * C * 4 * 5, 2, 3 * C * 5 * 4, 3};
  float *p[8];
  for (int i = 0; i < 8; i++) {
    if (!(p[i] = param(m, names[i]))) {
      fixture_free(&f);
      return;
    }
    for (int j = 0; j < counts[i]; j++) p[i][j] = (float)(((j * 7 + i) % 11) * 0.05 - 0.25);
  }
  enum { N = 3 };
  float x[N * H * W * C], out[N * OUTS], want[OUTS];
  for (int i = 0; i < N * H * W * C; i++) x[i] = (float)((i * 13 % 17) * 0.1 - 0.8);
  sn_step_args a = {
      .x = x, .rows = N, .params = m->params, .arena = m->arena, .out = out, .state = m->state};
  m->predict(&a);
  int bad = 0;
  for (int n = 0; n < N; n++) {
    const float *xn = x + n * H * W * C;
    int at = conv2d_ref(xn, 3, 3, 2, 2, 1, true, p[0], p[1], want);
    at += conv2d_ref(xn, 2, 3, 3, 1, 1, false, p[2], p[3], want + at);
    at += conv2d_ref(xn, 2, 4, 5, 1, 1, true, p[4], p[5], want + at);
    at += conv2d_ref(xn, 3, 5, 4, 2, 3, true, p[6], p[7], want + at);
    CHECK(at == OUTS, "conv2d reference: %d values", at);
    for (int i = 0; i < OUTS; i++) bad += fabsf(out[n * OUTS + i] - want[i]) > 1e-5f;
  }
  CHECK(!bad, "conv2d: %d of %d outputs differ from the written-out convolutions", bad, N * OUTS);
  if (!bad)
    printf("ok: conv2d direct (same with strides; valid) and implicit GEMM (same; with strides) "
           "(%d values)\n",
           N * OUTS);
  fixture_free(&f);
}

int main(void) {
  for (int axis = -1; axis <= 2; axis++) check_axis(axis);
  check_seq();
  check_conv2d();
  return failures ? 1 : 0;
}
