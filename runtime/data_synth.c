/* Synthetic data sets for small experiments and tests: blobs, spirals, xor and
 * linear. Each is a pure function of the source (seed, samples, classes, features,
 * noise): every random number comes from the counter RNG (rng.c) under the
 * SN_STREAM_SYNTH domain, addressed by sample and coordinate, so nothing depends on
 * generation order. Classes are balanced (sample i of the unshuffled set has label
 * i % classes) and the rows are then shuffled; `limit` keeps the first rows. `noise`
 * is the standard deviation of Gaussian jitter added to every coordinate, in the
 * units of the features (as sklearn's make_moons; for blobs it is the cluster std). */
#include "specnet/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TWO_PI 6.283185307179586476925

/* Streams inside SN_STREAM_SYNTH, one per use. */
enum {
  ST_POS = 1,     /* where a sample sits in its class (counter from the sample index) */
  ST_POS2 = 2,    /* a second such draw (counter from the sample index) */
  ST_NOISE = 3,   /* Gaussian noise (counter = sample * features + coordinate) */
  ST_SHUFFLE = 4, /* row order */
  ST_PLANE = 5,   /* linear: the hyperplane normal (counter = coordinate) */
};

#define MAX_FEATURES 1000000

typedef struct synth {
  uint64_t seed;
  int64_t n; /* samples */
  int k;     /* classes */
  int d;     /* features per sample */
  double noise;
  double *scratch; /* (k, d) blobs centers, or (d) linear normal */
} synth;

static double rnd_u(const synth *s, uint64_t stream, uint64_t c) {
  return sn_rand_uniform(s->seed, SN_STREAM_SYNTH + stream, c);
}
static double rnd_n(const synth *s, uint64_t stream, uint64_t c) {
  return sn_rand_normal(s->seed, SN_STREAM_SYNTH + stream, c);
}
/* Noise for coordinate j of sample i. */
static double jitter(const synth *s, int64_t i, int j) {
  return s->noise * rnd_n(s, ST_NOISE, (uint64_t)i * (uint64_t)s->d + (uint64_t)j);
}

/* ---------------------------------------------------------------------------
 * blobs: Gaussian clusters around well-separated centers, std = noise.
 *   1-D: centers 3 apart on a line.  d >= 2: the classes are dealt round-robin to
 *   the floor(d/2) coordinate planes (x0,x1), (x2,x3), ...; in each plane they sit
 *   evenly on a circle of radius r = max(3, 3m / 2pi), m = most classes in one
 *   plane, so neighbours on a circle are ~3 or more apart and centers in different
 *   planes r sqrt 2. Deterministic: the seed moves the points, not the centers. */

static void blobs_centers(synth *s) {
  int k = s->k, d = s->d;
  double *c = s->scratch; /* (k, d) */
  memset(c, 0, sizeof(double) * (size_t)k * (size_t)d);
  if (d == 1) {
    for (int a = 0; a < k; a++) c[a] = 3.0 * (a - 0.5 * (k - 1));
    return;
  }
  int planes = d / 2, most = (k + planes - 1) / planes;
  double r = fmax(3.0, 3.0 * most / TWO_PI);
  for (int a = 0; a < k; a++) {
    int p = a % planes, slot = a / planes;
    int m = k / planes + (p < k % planes); /* classes in plane p */
    double th = TWO_PI * slot / m;
    c[(size_t)a * (size_t)d + 2 * (size_t)p] = r * cos(th);
    c[(size_t)a * (size_t)d + 2 * (size_t)p + 1] = r * sin(th);
  }
}

static void blobs_sample(const synth *s, int64_t i, int label, float *x) {
  const double *c = s->scratch + (size_t)label * (size_t)s->d;
  for (int j = 0; j < s->d; j++) x[j] = (float)(c[j] + jitter(s, i, j));
}

/* ---------------------------------------------------------------------------
 * spirals: k arms of 1.5 turns each, rotated by 2pi/k; radius grows 0.05 -> 1
 * along an arm (so noise 0.1 is visible, 0.3 makes the arms touch). */

static void spirals_sample(const synth *s, int64_t i, int label, float *x) {
  double t = rnd_u(s, ST_POS, (uint64_t)i); /* position along the arm, [0, 1) */
  double r = 0.05 + 0.95 * t;
  double th = TWO_PI * label / s->k + 1.5 * TWO_PI * t;
  x[0] = (float)(r * cos(th) + jitter(s, i, 0));
  x[1] = (float)(r * sin(th) + jitter(s, i, 1));
}

/* ---------------------------------------------------------------------------
 * xor: points in [-1, 1]^2; label 1 when both coordinates have the same sign.
 * Drawn per label (a quadrant of that label, then a point in it) for balance; the
 * jitter is added after labelling. */

static void xor_sample(const synth *s, int64_t i, int label, float *x) {
  uint64_t q = sn_rand_u64(s->seed, SN_STREAM_SYNTH + ST_POS2, (uint64_t)i) >> 63;
  double sx = q ? 1.0 : -1.0;
  double sy = label ? sx : -sx;
  x[0] = (float)(sx * rnd_u(s, ST_POS, 2 * (uint64_t)i) + jitter(s, i, 0));
  x[1] = (float)(sy * rnd_u(s, ST_POS, 2 * (uint64_t)i + 1) + jitter(s, i, 1));
}

/* ---------------------------------------------------------------------------
 * linear: a random unit normal w; the projection w.x in [-2, 2) is cut into k equal
 * bands (class = band, with a 10% margin inside each band, so the classes are
 * separable by parallel hyperplanes); the orthogonal part is standard normal. The
 * jitter is added after labelling. */

static void linear_plane(synth *s) {
  double *w = s->scratch, norm = 0; /* (d) */
  for (int j = 0; j < s->d; j++) {
    w[j] = rnd_n(s, ST_PLANE, (uint64_t)j);
    norm += w[j] * w[j];
  }
  norm = sqrt(norm);
  for (int j = 0; j < s->d; j++) w[j] = norm > 0 ? w[j] / norm : (j == 0);
}

static void linear_sample(const synth *s, int64_t i, int label, float *x) {
  const double *w = s->scratch;
  double width = 4.0 / s->k;
  double proj = -2.0 + width * (label + 0.1 + 0.8 * rnd_u(s, ST_POS, (uint64_t)i));
  /* z standard normal, made orthogonal to w, then moved to projection proj. */
  double dot = 0;
  for (int j = 0; j < s->d; j++) {
    double z = rnd_n(s, ST_POS2, (uint64_t)i * (uint64_t)s->d + (uint64_t)j);
    x[j] = (float)z;
    dot += z * w[j];
  }
  for (int j = 0; j < s->d; j++) x[j] = (float)(x[j] + (proj - dot) * w[j] + jitter(s, i, j));
}

/* ---------------------------------------------------------------------------
 * Entry point */

typedef void (*sample_fn)(const synth *s, int64_t i, int label, float *x);

int sn_dataset_synthetic(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  const char *name = src->name;
  sample_fn fn;
  bool two_d = false;
  if (strcmp(name, "blobs") == 0)
    fn = blobs_sample;
  else if (strcmp(name, "spirals") == 0)
    fn = spirals_sample, two_d = true;
  else if (strcmp(name, "xor") == 0)
    fn = xor_sample, two_d = true;
  else if (strcmp(name, "linear") == 0)
    fn = linear_sample;
  else
    return sn_fail(err, "unknown synthetic data set '%s' (known: blobs, spirals, xor, linear)",
                   name);

  synth s = {.seed = src->seed, .n = src->samples, .k = src->classes, .noise = src->noise};
  s.d = src->features > 0 ? src->features : 2;
  if (s.n < 1 || s.n > 100000000)
    return sn_fail(err, "synthetic %s: samples must be between 1 and 100000000, got %lld", name,
                   (long long)s.n);
  if (s.k < 2 || s.k > 1000)
    return sn_fail(err, "synthetic %s: classes must be between 2 and 1000, got %d", name, s.k);
  if (!(s.noise >= 0) || !isfinite(s.noise))
    return sn_fail(err, "synthetic %s: noise must be a finite number >= 0, got %g", name, s.noise);
  if (s.n < s.k)
    return sn_fail(err, "synthetic %s: samples (%lld) must be at least classes (%d)", name,
                   (long long)s.n, s.k);
  if (two_d && src->features > 0 && src->features != 2)
    return sn_fail(err, "synthetic %s is 2-D: features must be 2, got %d", name, src->features);
  if (fn == xor_sample && s.k != 2)
    return sn_fail(err, "synthetic xor has 2 classes, got classes: %d", s.k);
  if (s.d > MAX_FEATURES || (double)s.n * s.d > (double)(INT64_C(1) << 32))
    return sn_fail(err,
                   "synthetic %s: %lld samples x %d features is too large (at most 2^32 "
                   "values)",
                   name, (long long)s.n, s.d);

  /* All n samples are shuffled, then the first `rows` of that order generated. */
  int64_t rows = src->limit > 0 && src->limit < s.n ? src->limit : s.n;
  int64_t *perm = malloc((size_t)s.n * sizeof(int64_t)); /* row -> generated sample */
  out->x = malloc((size_t)(rows * s.d) * sizeof(float)); /* (rows, d) */
  out->y = malloc((size_t)rows * sizeof(int32_t));       /* (rows) */
  if (fn == blobs_sample)
    s.scratch = malloc(sizeof(double) * (size_t)s.k * (size_t)s.d);
  else if (fn == linear_sample)
    s.scratch = malloc(sizeof(double) * (size_t)s.d);
  bool need_scratch = fn == blobs_sample || fn == linear_sample;
  if (!perm || !out->x || !out->y || (need_scratch && !s.scratch)) {
    free(perm);
    free(s.scratch);
    sn_dataset_free(out);
    return sn_fail(err, "synthetic %s: out of memory for %lld samples", name, (long long)s.n);
  }
  if (fn == blobs_sample) blobs_centers(&s);
  if (fn == linear_sample) linear_plane(&s);

  sn_shuffle(perm, s.n, s.seed, SN_STREAM_SYNTH + ST_SHUFFLE);
  for (int64_t row = 0; row < rows; row++) {
    int64_t i = perm[row];
    int label = (int)(i % s.k);
    fn(&s, i, label, out->x + row * s.d);
    out->y[row] = label;
  }
  free(perm);
  free(s.scratch);

  out->n = rows;
  out->rank = 1;
  out->shape[0] = s.d;
  out->shape[1] = out->shape[2] = out->shape[3] = 1;
  out->sample_elems = s.d;
  out->classes = s.k;
  snprintf(out->origin, sizeof out->origin,
           "synthetic %s (samples %lld, classes %d, features %d, noise %g, seed %llu)", name,
           (long long)s.n, s.k, s.d, s.noise, (unsigned long long)s.seed);
  return 0;
}
