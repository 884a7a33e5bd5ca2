/* Classifies Fashion-MNIST test images with a model compiled ahead of time into a
 * C library: `specnet build specs/mnist_mlp.yaml --weights W --lib -o DIR` writes
 * DIR/mnist_mlp.h and DIR/libmnist_mlp.a. No specnet, LLVM or YAML at run time.
 *
 *   cc classify.c -I DIR -L DIR -lmnist_mlp -lopenblas -lz -lm -o classify
 *   ./classify t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
 *
 * Prints the accuracy and the first predictions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "mnist_mlp.h"

/* An IDX file (raw or gzip): the data after the header, and the item count. */
static unsigned char *read_idx(const char *path, int dims, long *count, long *item) {
  gzFile f = gzopen(path, "rb");
  unsigned char h[16];
  if (!f || gzread(f, h, 4 + 4 * dims) != 4 + 4 * dims) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  *count = (long)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
  *item = 1;
  for (int d = 1; d < dims; d++) *item *= (long)h[4 + 4 * d] << 24 | h[5 + 4 * d] << 16 | h[6 + 4 * d] << 8 | h[7 + 4 * d];
  unsigned char *data = malloc((size_t)(*count * *item));
  if (!data || gzread(f, data, (unsigned)(*count * *item)) != (int)(*count * *item)) {
    fprintf(stderr, "%s is truncated\n", path);
    exit(1);
  }
  gzclose(f);
  return data;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s IMAGES LABELS\n", argv[0]);
    return 2;
  }
  long n, item, nl, one;
  unsigned char *img = read_idx(argv[1], 3, &n, &item);
  unsigned char *lab = read_idx(argv[2], 1, &nl, &one);
  if (item != MNIST_MLP_INPUT_ELEMS || nl != n) {
    fprintf(stderr, "expected %d values per image and one label per image\n", MNIST_MLP_INPUT_ELEMS);
    return 1;
  }
  float *x = malloc(sizeof(float) * (size_t)(n * item));
  float *y = malloc(sizeof(float) * (size_t)(n * MNIST_MLP_OUTPUT_ELEMS));
  static unsigned char scratch[MNIST_MLP_SCRATCH_BYTES] __attribute__((aligned(64)));
  if (!x || !y) return 1;
  for (long i = 0; i < n * item; i++) x[i] = img[i]; /* raw pixels: the model scales them */
  mnist_mlp_predict(x, (size_t)n, y, scratch);
  long correct = 0;
  for (long i = 0; i < n; i++) {
    int best = 0;
    for (int k = 1; k < MNIST_MLP_OUTPUT_ELEMS; k++)
      if (y[i * MNIST_MLP_OUTPUT_ELEMS + k] > y[i * MNIST_MLP_OUTPUT_ELEMS + best]) best = k;
    correct += best == lab[i];
    if (i < 5) printf("image %ld: class %d (label %d, p=%.3f)\n", i, best, lab[i], y[i * MNIST_MLP_OUTPUT_ELEMS + best]);
  }
  printf("accuracy %.4f (%ld of %ld)\n", (double)correct / (double)n, correct, n);
  free(x);
  free(y);
  free(img);
  free(lab);
  return 0;
}
