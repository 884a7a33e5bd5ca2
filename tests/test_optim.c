/* Every optimizer's generated update (sn_update, one fused loop over the flat
 * parameter buffer) against the same update written out here in plain C from
 * Keras's formulas, for several steps with changing gradients, in f64 and f32.
 * Also clip_grad_norm (PyTorch's clip_grad_norm_ over all parameters). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"

#include "check.h"
#include "spec_text.h"


typedef struct ref {
  double p[64], m[64], v[64];
} ref;

enum { ADAM, ADAMW, SGD, RMSPROP };

/* One step of the reference, on n parameters. */
static void ref_step(int kind, ref *r, const double *g0, int n, int t, double lr, double b1, double b2, double eps,
                     double wd, double mu, bool nesterov, double rho, double clip) {
  double g[64], scale = 1;
  if (clip > 0) {
    double s = 0;
    for (int i = 0; i < n; i++) s += g0[i] * g0[i];
    scale = fmin(1, clip / (sqrt(s) + 1e-6));
  }
  for (int i = 0; i < n; i++) g[i] = g0[i] * scale;
  for (int i = 0; i < n; i++) {
    switch (kind) {
    case ADAMW: r->p[i] -= lr * wd * r->p[i]; /* fall through */
    case ADAM: {
      double alpha = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
      r->m[i] = b1 * r->m[i] + (1 - b1) * g[i];
      r->v[i] = b2 * r->v[i] + (1 - b2) * g[i] * g[i];
      r->p[i] -= alpha * r->m[i] / (sqrt(r->v[i]) + eps);
      break;
    }
    case SGD:
      if (mu > 0) {
        r->m[i] = mu * r->m[i] - lr * g[i];
        r->p[i] += nesterov ? mu * r->m[i] - lr * g[i] : r->m[i];
      } else {
        r->p[i] -= lr * g[i];
      }
      break;
    case RMSPROP: {
      r->v[i] = rho * r->v[i] + (1 - rho) * g[i] * g[i];
      double inc = lr * g[i] / sqrt(r->v[i] + eps);
      if (mu > 0) {
        r->m[i] = mu * r->m[i] + inc;
        inc = r->m[i];
      }
      r->p[i] -= inc;
      break;
    }
    }
  }
}

static const char *SPEC_FMT = "specnet: 1\nname: optim\nseed: 5\n"
                              "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 3}}\n"
                              "model: {input: [3], layers: [{dense: {units: 2, activation: softmax}}]}\n"
                              "train: {loss: sparse_categorical_crossentropy, optimizer: %s%s}\n";

static void check_optimizer(const char *name, int kind, const char *opt, double lr, double b1, double b2, double eps,
                            double wd, double mu, bool nesterov, double rho, double clip, sn_dtype_rt dtype) {
  char text[2048], clipkey[64] = "";
  if (clip > 0) snprintf(clipkey, sizeof clipkey, ", clip_grad_norm: %g", clip);
  snprintf(text, sizeof text, SPEC_FMT, opt, clipkey);
  sn_diag d = {0};
  sn_spec *s;
  sn_compiled *c = compile_spec_text(text, "optim.yaml", dtype, &s, &d);
  if (!c) {
    CHECK(0, "%s: spec does not compile", name);
    sn_diag_free(&d);
    sn_spec_free(s);
    return;
  }
  sn_model *m = sn_compiled_model(c);
  sn_error err = {0};
  CHECK(sn_model_alloc(m, &err) == 0, "%s: %s", name, err.msg);
  int n = (int)m->param_count;
  CHECK(n > 0 && n <= 64, "%s: %d parameters", name, n);
  ref r;
  memset(&r, 0, sizeof r);
  bool f64 = dtype == SN_RT_F64;
  for (int i = 0; i < n; i++) {
    r.p[i] = 0.1 * (i % 7) - 0.3;
    if (f64) ((double *)m->params)[i] = r.p[i];
    else {
      ((float *)m->params)[i] = (float)r.p[i];
      r.p[i] = (float)r.p[i];
    }
  }
  double worst = 0;
  for (int t = 1; t <= 5; t++) {
    double g[64];
    for (int i = 0; i < n; i++) {
      g[i] = sin(0.7 * i + 1.3 * t) * (1 + 0.5 * t);
      if (f64) ((double *)m->grads)[i] = g[i];
      else {
        ((float *)m->grads)[i] = (float)g[i];
        g[i] = (float)g[i];
      }
    }
    sn_step_args a = {.params = m->params, .grads = m->grads, .opt_state = m->opt_state, .arena = m->arena,
                      .step = t, .lr = lr, .state = m->state};
    m->update(&a);
    ref_step(kind, &r, g, n, t, lr, b1, b2, eps, wd, mu, nesterov, rho, clip);
    for (int i = 0; i < n; i++) {
      double got = f64 ? ((double *)m->params)[i] : ((float *)m->params)[i];
      /* f32: float rounding of values near 0 is measured against 0.1, not 0 */
      double e = fabs(got - r.p[i]) / fmax(fabs(r.p[i]), f64 ? 1e-9 : 0.1);
      if (e > worst) worst = e;
    }
  }
  double tol = f64 ? 1e-13 : 2e-5;
  CHECK(worst <= tol, "%s (%s): relative difference %.3g from the hand-written update (tolerance %.0e)", name,
        f64 ? "f64" : "f32", worst, tol);
  if (worst <= tol) printf("ok: %s (%s): 5 steps, max relative difference %.2g\n", name, f64 ? "f64" : "f32", worst);
  sn_model_free(m);
  sn_compiled_free(c);
  sn_spec_free(s);
  sn_diag_free(&d);
}

int main(void) {
  for (int k = 0; k < 2; k++) {
    sn_dtype_rt dt = k ? SN_RT_F32 : SN_RT_F64;
    check_optimizer("adam", ADAM, "adam", 0.001, 0.9, 0.999, 1e-7, 0, 0, false, 0, 0, dt);
    check_optimizer("adam, own settings", ADAM, "{adam: {learning_rate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1.0e-5}}",
                    0.01, 0.8, 0.99, 1e-5, 0, 0, false, 0, 0, dt);
    check_optimizer("adamw", ADAMW, "{adamw: {learning_rate: 0.01, weight_decay: 0.1}}", 0.01, 0.9, 0.999, 1e-7, 0.1,
                    0, false, 0, 0, dt);
    check_optimizer("sgd", SGD, "{sgd: {learning_rate: 0.1}}", 0.1, 0, 0, 0, 0, 0, false, 0, 0, dt);
    check_optimizer("sgd momentum", SGD, "{sgd: {learning_rate: 0.1, momentum: 0.9}}", 0.1, 0, 0, 0, 0, 0.9, false, 0,
                    0, dt);
    check_optimizer("sgd nesterov", SGD, "{sgd: {learning_rate: 0.1, momentum: 0.9, nesterov: true}}", 0.1, 0, 0, 0,
                    0, 0.9, true, 0, 0, dt);
    check_optimizer("rmsprop", RMSPROP, "{rmsprop: {learning_rate: 0.01}}", 0.01, 0, 0, 1e-7, 0, 0, false, 0.9, 0,
                    dt);
    check_optimizer("rmsprop momentum", RMSPROP, "{rmsprop: {learning_rate: 0.01, rho: 0.8, momentum: 0.5}}", 0.01, 0,
                    0, 1e-7, 0, 0.5, false, 0.8, 0, dt);
    check_optimizer("sgd + clip_grad_norm", SGD, "{sgd: {learning_rate: 0.1}}", 0.1, 0, 0, 0, 0, 0, false, 0, 0.5, dt);
    check_optimizer("adam + clip_grad_norm", ADAM, "adam", 0.001, 0.9, 0.999, 1e-7, 0, 0, false, 0, 1.0, dt);
  }
  if (failures) printf("%d failures\n", failures);
  else printf("all optimizer updates match\n");
  return failures ? 1 : 0;
}
