/* Forward values of the data-moving ops against the same arithmetic written out
 * here (gradient checks cannot see a forward op and its gradient that are wrong in
 * the same way): concat along every axis of [2, 3, 2] samples, of x and tanh(x). */
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

static void check_axis(int axis) {
  char text[1024];
  snprintf(text, sizeof text, SPEC_FMT, axis);
  sn_diag d = {0};
  sn_spec *s;
  sn_compiled *c = compile_spec_text(text, "forward.yaml", SN_RT_F32, &s, &d);
  if (!c) {
    CHECK(0, "concat axis %d: spec does not compile", axis);
    sn_diag_free(&d);
    sn_spec_free(s);
    return;
  }
  sn_model *m = sn_compiled_model(c);
  sn_error err = {0};
  CHECK(sn_model_alloc(m, &err) == 0, "%s", err.msg);
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
  sn_model_free(m);
  sn_compiled_free(c);
  sn_spec_free(s);
  sn_diag_free(&d);
}

int main(void) {
  for (int axis = -1; axis <= 2; axis++) check_axis(axis);
  return failures ? 1 : 0;
}
