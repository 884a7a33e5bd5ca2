/* Per-position labels (issue 15): a model whose output is [N, T, V] (embedding, then
 * dense on every position) with labels y of shape (N, T). The loss and metric sums
 * of the generated eval step against the same numbers computed here from the
 * model's own output probabilities (predict): the mean token cross-entropy over
 * N*T, token accuracy, top-2 accuracy, perplexity = exp(mean token loss) (not the
 * mean of exps) and bits per token = mean token loss / ln 2. A gradient check
 * cannot see a loss that reads the wrong label consistently; this test can. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"
#include "specnet/runtime.h"

#include "check.h"
#include "spec_text.h"

enum { N = 3, T = 5, V = 4 };

static const char *SPEC =
    "specnet: 1\nname: seq_loss\nseed: 5\n"
    "data: {train: {synthetic: blobs, samples: 16, classes: 2, features: 5}}\n"
    "model:\n  input: [5]\n  layers:\n"
    "    - embedding: {vocab: 4, dim: 3, kernel_init: {normal: {std: 1.0}}}\n"
    "    - dense: {units: 4, activation: softmax}\n"
    "train:\n  loss: sparse_categorical_crossentropy\n  optimizer: sgd\n  batch_size: 4\n"
    "  metrics: [accuracy, {top_k_accuracy: {k: 2}}, perplexity, bits_per_token]\n";

/* The reference: from probabilities p (N, T, V) and labels y (N, T). */
static void reference(const double *p, const int32_t *y, double *loss, double *acc, double *top2) {
  *loss = *acc = *top2 = 0;
  for (int i = 0; i < N * T; i++) {
    const double *row = p + i * V;
    int best = 0, beat = 0;
    for (int v = 1; v < V; v++)
      if (row[v] > row[best]) best = v;
    for (int v = 0; v < V; v++) beat += row[v] > row[y[i]];
    *loss += -log(row[y[i]]);
    *acc += best == y[i];
    *top2 += beat < 2;
  }
  *loss /= N * T;
  *acc /= N * T;
  *top2 /= N * T;
}

int main(void) {
  sn_diag d = {0};
  sn_spec *s;
  sn_compiled *c = compile_spec_text(SPEC, "seq_loss.yaml", SN_RT_F64, &s, &d);
  CHECK(c != NULL, "the spec does not compile");
  if (!c) return 1;
  sn_model *m = sn_compiled_model(c);
  sn_error err = {0};
  CHECK(sn_model_alloc(m, &err) == 0, "%s", err.msg);
  sn_model_init_params(m, 5);
  CHECK(m->label_elems == T && m->classes == V && m->output_elems == T * V,
        "labels per sample %lld, classes %lld, outputs %lld", (long long)m->label_elems,
        (long long)m->classes, (long long)m->output_elems);

  double x[N * T], p[N * T * V];
  int32_t y[N * T];
  for (int i = 0; i < N * T; i++) x[i] = (double)((i * 7 + 1) % V);
  sn_step_args a = {
      .x = x, .rows = N, .params = m->params, .arena = m->arena, .out = p, .state = m->state};
  m->predict(&a);
  for (int i = 0; i < N * T;
       i++) { /* the most likely token at every third position, else another */
    int best = 0;
    for (int v = 1; v < V; v++)
      if (p[i * V + v] > p[i * V + best]) best = v;
    y[i] = (int32_t)(i % 3 ? (best + 1 + i % 2) % V : best);
  }
  double want_loss, want_acc, want_top2;
  reference(p, y, &want_loss, &want_acc, &want_top2);

  double loss_sum = 0, sums[8] = {0};
  a = (sn_step_args){.x = x,
                     .y = y,
                     .rows = N,
                     .params = m->params,
                     .arena = m->arena,
                     .loss_sum = &loss_sum,
                     .metric_sums = sums,
                     .state = m->state};
  m->eval_step(&a);
  /* sums are over samples of per-sample means over positions */
  double loss = loss_sum / N, acc = sums[0] / N, top2 = sums[1] / N;
  double ppl = sn_metric_value(m->metric_names[2], sums[2] / N);
  double bits = sn_metric_value(m->metric_names[3], sums[3] / N);
  CHECK(fabs(loss - want_loss) < 1e-12, "loss %.15g, want %.15g", loss, want_loss);
  CHECK(fabs(acc - want_acc) < 1e-12, "accuracy %g, want %g", acc, want_acc);
  CHECK(fabs(top2 - want_top2) < 1e-12, "top-2 accuracy %g, want %g", top2, want_top2);
  CHECK(fabs(ppl - exp(want_loss)) < 1e-9, "perplexity %g, want %g", ppl, exp(want_loss));
  CHECK(fabs(bits - want_loss / log(2.0)) < 1e-12, "bits per token %g, want %g", bits,
        want_loss / log(2.0));
  CHECK(want_acc > 0 && want_acc < 1, "the case should have right and wrong tokens (accuracy %g)",
        want_acc);

  /* The epoch figure is exp of the mean over all tokens, not the mean of exps. */
  CHECK(fabs(sn_metric_value("perplexity", 0.5 * (1.0 + 3.0)) - exp(2.0)) < 1e-12,
        "perplexity of a mean");
  CHECK(sn_metric_value("accuracy", 0.25) == 0.25, "other metrics are their mean");

  sn_model_free(m);
  sn_compiled_free(c);
  sn_spec_free(s);
  sn_diag_free(&d);
  if (!failures)
    printf("seq_loss: loss %.6f accuracy %.3f top2 %.3f perplexity %.4f: ok\n", loss, acc, top2,
           ppl);
  return failures ? 1 : 0;
}
