/* Gradient check: the spec compiled in f64, its generated gradients compared with
 * central finite differences of its generated loss, for every parameter (or an
 * evenly spaced subset when asked). Inputs are random normal values and labels
 * random classes from the spec seed; the batch is partial (rows < capacity) so the
 * check also covers the run-time row count.
 *
 * The difference quotient is the 4-point stencil
 *   (8 (L(p+h) - L(p-h)) - (L(p+2h) - L(p-2h))) / 12h,   h = 1e-3,
 * whose truncation error is O(h^4), and the error of one element is
 *   |g - fd| / max(|g|, |fd|, 1e-6)
 * (relative, with a floor so that gradients that are zero up to rounding do not
 * divide by nothing). An element above the tolerance is tried again with h = 1e-4
 * and 1e-5, for steps that crossed a kink; its error is the smallest seen. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"

/* The training-mode loss (dropout masks of this step, batch statistics): the
 * function whose gradient grad_step computes. */
static double loss_at(sn_model *m, sn_step_args *a) {
  double loss = 0, metrics[8];
  a->loss_sum = &loss;
  a->metric_sums = metrics;
  m->grad_step(a);
  return loss / (double)a->rows;
}

int sn_gradcheck(const sn_spec *spec, int64_t max_checked, double tol, sn_gradcheck_result *res, sn_diag *d) {
  memset(res, 0, sizeof *res);
  sn_compiled *c = sn_compile(spec, SN_RT_F64, d);
  if (!c) return -1;
  sn_model *m = sn_compiled_model(c);
  sn_error err = {0};
  if (sn_model_alloc(m, &err)) {
    sn_diag_error(d, (sn_loc){spec->path, 0, 0}, "gradcheck: %s", err.msg);
    sn_compiled_free(c);
    return -1;
  }
  sn_model_init_params(m, spec->seed);
  int64_t rows = m->batch_capacity > 1 ? m->batch_capacity - 1 : 1;
  if (rows > 7) rows = 7;
  double *x = malloc(sizeof(double) * (size_t)(rows * m->input_elems));
  const int64_t L = m->label_elems > 0 ? m->label_elems : 1; /* labels per sample */
  int32_t *y = malloc(sizeof(int32_t) * (size_t)(rows * L));
  double *grads = malloc(sizeof(double) * (size_t)m->param_count);
  if (!x || !y || !grads) abort();
  for (int64_t i = 0; i < rows * m->input_elems; i++) x[i] = sn_rand_normal(spec->seed, 101, (uint64_t)i);
  for (int64_t i = 0; i < rows * L; i++)
    y[i] = (int32_t)(sn_rand_u64(spec->seed, 102, (uint64_t)i) % (uint64_t)m->classes);
  /* float targets in [0, 1): valid for every loss (probabilities, regression) */
  int64_t nt = rows * (m->target_elems ? m->target_elems : 1);
  double *t = malloc(sizeof(double) * (size_t)nt);
  if (!t) abort();
  for (int64_t i = 0; i < nt; i++) t[i] = sn_rand_uniform(spec->seed, 103, (uint64_t)i);
  double loss = 0, metrics[8];
  sn_step_args a = {.x = x, .y = y, .rows = rows, .params = m->params, .grads = m->grads,
                    .opt_state = m->opt_state, .arena = m->arena, .step = 1, .lr = 0,
                    .seed = spec->seed, .loss_sum = &loss, .metric_sums = metrics, .t = t,
                    .state = m->state};
  m->grad_step(&a);
  memcpy(grads, m->grads, sizeof(double) * (size_t)m->param_count);
  res->loss = loss / (double)rows;
  double *p = m->params;
  int64_t total = 0;
  for (int k = 0; k < m->n_params; k++) total += m->params_info[k].count;
  int64_t stride = (max_checked > 0 && total > max_checked) ? (total + max_checked - 1) / max_checked : 1;
  int64_t seen = 0;
  for (int k = 0; k < m->n_params; k++) {
    const sn_param_info *pi = &m->params_info[k];
    for (int64_t j = 0; j < pi->count; j++, seen++) {
      if (seen % stride) continue;
      double *w = &p[pi->offset + j], w0 = *w, g = grads[pi->offset + j], fd = 0, e = INFINITY;
      /* A step that crosses a kink (relu at 0, the edge of a max-pool window)
       * breaks the difference quotient, not the gradient: smaller steps are tried
       * before an element counts as failing. A wrong gradient fails at all of them. */
      for (double h = 1e-3; h >= 1e-5 && !(e <= tol); h /= 10) {
        *w = w0 + h;
        double lp1 = loss_at(m, &a);
        *w = w0 - h;
        double lm1 = loss_at(m, &a);
        *w = w0 + 2 * h;
        double lp2 = loss_at(m, &a);
        *w = w0 - 2 * h;
        double lm2 = loss_at(m, &a);
        *w = w0;
        double f = (8 * (lp1 - lm1) - (lp2 - lm2)) / (12 * h);
        double err1 = fabs(g - f) / fmax(fmax(fabs(g), fabs(f)), 1e-6);
        if (!(err1 >= e)) {
          e = err1;
          fd = f;
        }
      }
      if (!(e <= res->max_rel_error)) { /* also catches NaN */
        res->max_rel_error = isnan(e) ? INFINITY : e;
        res->worst_analytic = g;
        res->worst_numeric = fd;
        snprintf(res->worst, sizeof res->worst, "%s[%lld]", pi->name, (long long)j);
      }
      res->checked++;
    }
  }
  free(x);
  free(y);
  free(t);
  free(grads);
  sn_model_free(m);
  sn_compiled_free(c);
  return 0;
}
