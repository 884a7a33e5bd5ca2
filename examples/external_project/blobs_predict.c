/* blobs_predict: the model of specs/blobs_mlp.yaml as an ahead-of-time compiled
 * library (`specnet build --lib`, run by this project's CMakeLists.txt), called
 * from C on fresh data.
 *
 *   blobs_predict [MIN_ACCURACY]
 *
 * blobs_mlp.h and libblobs_mlp.a are generated: one function, blobs_mlp_predict,
 * with the trained weights inside; it needs OpenBLAS and libm, nothing else. The
 * test set comes from specnet's runtime library (its synthetic blobs, another seed
 * than training: blobs centers do not depend on the seed).
 *
 * Exit status: 0 when the accuracy reaches MIN_ACCURACY (default 0.95) and every
 * output row is a probability distribution, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <blobs_mlp.h>
#include <specnet/runtime.h>

int main(int argc, char **argv) {
  double min_accuracy = argc > 1 ? atof(argv[1]) : 0.95;
  sn_error err = {0};
  sn_dataset test = {0};
  sn_source src = {.kind = SN_SRC_SYNTHETIC,
                   .name = "blobs",
                   .samples = 1000,
                   .classes = BLOBS_MLP_OUTPUT_ELEMS,
                   .features = BLOBS_MLP_INPUT_ELEMS,
                   .noise = 0.5,
                   .seed = 20240602};
  if (sn_dataset_load(&src, &test, &err)) {
    fprintf(stderr, "blobs_predict: error: %s\n", err.msg);
    return 1;
  }

  static unsigned char scratch[BLOBS_MLP_SCRATCH_BYTES] __attribute__((aligned(64)));
  float *y = malloc(sizeof(float) * (size_t)test.n * BLOBS_MLP_OUTPUT_ELEMS); /* (n, 4) */
  if (!y) return 1;
  double t0 = sn_now();
  blobs_mlp_predict(test.x, (size_t)test.n, y, scratch);
  double seconds = sn_now() - t0;

  int64_t correct = 0;
  double worst_sum = 0; /* largest |sum of a row - 1| */
  for (int64_t i = 0; i < test.n; i++) {
    const float *row = y + i * BLOBS_MLP_OUTPUT_ELEMS;
    int best = 0;
    double sum = 0;
    for (int k = 0; k < BLOBS_MLP_OUTPUT_ELEMS; k++) {
      sum += row[k];
      if (row[k] > row[best]) best = k;
    }
    if (fabs(sum - 1) > worst_sum) worst_sum = fabs(sum - 1);
    correct += best == test.y[i];
  }
  double accuracy = (double)correct / (double)test.n;
  printf("blobs_mlp_predict (%d parameters inside): %lld samples in %.2f ms, accuracy %.4f\n",
         BLOBS_MLP_PARAMETERS, (long long)test.n, seconds * 1e3, accuracy);
  free(y);
  sn_dataset_free(&test);
  if (worst_sum > 1e-4) {
    fprintf(stderr, "blobs_predict: an output row sums to 1 +- %g\n", worst_sum);
    return 1;
  }
  if (accuracy < min_accuracy) {
    fprintf(stderr, "blobs_predict: accuracy %.4f is below %.4f\n", accuracy, min_accuracy);
    return 1;
  }
  return 0;
}
