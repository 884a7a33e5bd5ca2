/* blobs_eval: evaluates a checkpoint of specs/blobs_mlp.yaml with nothing but
 * specnet's runtime library (no LLVM, no YAML), as a program that embeds a trained
 * model would.
 *
 *   blobs_eval CHECKPOINT [MIN_ACCURACY]
 *
 * It describes the model to the runtime (the parameter table, in the layouts
 * specnet writes), reads the safetensors checkpoint into it, generates a fresh
 * test set from the same synthetic distribution (another seed: blobs centers do
 * not depend on the seed), and lets the runtime's evaluation loop call an
 * eval_step function. specnet's compiler generates that function from the spec;
 * here it is written by hand in C, through the same ABI (sn_step_args). An
 * ahead-of-time compiled model library will provide it instead, once specnet
 * builds them.
 *
 * Exit status: 0 when the accuracy reaches MIN_ACCURACY (default 0.95), 1 if not
 * or on any error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <specnet/runtime.h>
#include <specnet/version.h>

/* specs/blobs_mlp.yaml: input [8] -> dense1 (32, relu) -> dense2 (4, softmax). */
enum { IN = 8, HIDDEN = 32, CLASSES = 4, BATCH = 256 };

/* Where each parameter lives in the one flat buffer; names and shapes are those
 * `specnet check` prints and the checkpoint holds (dense weight: (out, in)). */
static const sn_param_info params[] = {
    {.name = "dense1.weight", .rank = 2, .shape = {HIDDEN, IN}, .offset = 0, .count = HIDDEN * IN},
    {.name = "dense1.bias", .rank = 1, .shape = {HIDDEN}, .offset = HIDDEN * IN, .count = HIDDEN},
    {.name = "dense2.weight",
     .rank = 2,
     .shape = {CLASSES, HIDDEN},
     .offset = HIDDEN * IN + HIDDEN,
     .count = CLASSES * HIDDEN},
    {.name = "dense2.bias",
     .rank = 1,
     .shape = {CLASSES},
     .offset = HIDDEN * IN + HIDDEN + CLASSES * HIDDEN,
     .count = CLASSES},
};
enum { N_PARAMS = sizeof params / sizeof *params };
static const char *const metric_names[] = {"accuracy"};

/* Forward pass, loss and accuracy of a batch: what a generated eval_step does.
 * x is (rows, IN) f32, y (rows) labels; adds the summed cross-entropy to
 * *loss_sum and the number of correct predictions to metric_sums[0]. */
static void eval_step(const sn_step_args *a) {
  const float *x = a->x, *p = a->params;
  const float *w1 = p + params[0].offset, *b1 = p + params[1].offset; /* (HIDDEN, IN), (HIDDEN) */
  const float *w2 = p + params[2].offset,
              *b2 = p + params[3].offset; /* (CLASSES, HIDDEN), (CLASSES) */
  float *h = a->arena;                    /* (HIDDEN) scratch */
  for (int64_t r = 0; r < a->rows; r++) {
    const float *xr = x + r * IN;
    for (int j = 0; j < HIDDEN; j++) {
      float s = b1[j];
      for (int k = 0; k < IN; k++) s += w1[j * IN + k] * xr[k];
      h[j] = s > 0 ? s : 0;
    }
    double logit[CLASSES], max = -INFINITY;
    int best = 0;
    for (int c = 0; c < CLASSES; c++) {
      double s = b2[c];
      for (int j = 0; j < HIDDEN; j++) s += (double)w2[c * HIDDEN + j] * h[j];
      logit[c] = s;
      if (s > max) max = s, best = c;
    }
    double z = 0;
    for (int c = 0; c < CLASSES; c++) z += exp(logit[c] - max);
    *a->loss_sum += log(z) + max - logit[a->y[r]]; /* -log softmax(logit)[y] */
    a->metric_sums[0] += best == a->y[r];
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: blobs_eval CHECKPOINT [MIN_ACCURACY]\n");
    return 1;
  }
  double min_accuracy = argc == 3 ? atof(argv[2]) : 0.95;
  printf("blobs_eval, built against specnet %s\n", SPECNET_VERSION_STRING);

  sn_model m = {
      .dtype = SN_RT_F32,
      .batch_capacity = BATCH,
      .input_elems = IN,
      .output_elems = CLASSES,
      .param_count = params[N_PARAMS - 1].offset + params[N_PARAMS - 1].count,
      .arena_bytes = HIDDEN * sizeof(float),
      .n_params = N_PARAMS,
      .params_info = params,
      .n_metrics = 1,
      .metric_names = metric_names,
      .eval_step = eval_step,
  };
  sn_error err = {0};
  sn_dataset test = {0};
  if (sn_model_alloc(&m, &err) || sn_safetensors_read(argv[1], &m, &err)) goto fail;
  for (int i = 0; i < N_PARAMS; i++) {
    const sn_param_info *q = &params[i];
    const float *v = (const float *)m.params + q->offset;
    double sq = 0;
    for (int64_t e = 0; e < q->count; e++) sq += (double)v[e] * v[e];
    char shape[64]; /* "(32, 8)" */
    int n = snprintf(shape, sizeof shape, "(%lld", (long long)q->shape[0]);
    for (int d = 1; d < q->rank; d++)
      n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)q->shape[d]);
    snprintf(shape + n, sizeof shape - (size_t)n, ")");
    printf("%-14s %-10s norm %.4f\n", q->name, shape, sqrt(sq));
  }

  /* The spec's test set is blobs with seed-derived points; these are new ones. */
  sn_source src = {.kind = SN_SRC_SYNTHETIC,
                   .name = "blobs",
                   .samples = 1000,
                   .classes = CLASSES,
                   .features = IN,
                   .noise = 0.5,
                   .seed = 20240601};
  if (sn_dataset_load(&src, &test, &err)) goto fail;
  sn_eval_result r;
  if (sn_evaluate(&m, &test, &r, &err)) goto fail;
  printf("fresh blobs: loss %.4f  accuracy %.4f  (%lld samples, %.1f ms)\n", r.loss, r.metrics[0],
         (long long)r.samples, r.seconds * 1e3);
  sn_dataset_free(&test);
  sn_model_free(&m);
  if (r.metrics[0] < min_accuracy) {
    fprintf(stderr, "blobs_eval: accuracy %.4f is below %.4f\n", r.metrics[0], min_accuracy);
    return 1;
  }
  return 0;

fail:
  fprintf(stderr, "blobs_eval: error: %s\n", err.msg);
  sn_dataset_free(&test);
  sn_model_free(&m);
  return 1;
}
