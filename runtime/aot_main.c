/* The main of a standalone model binary (`specnet build SPEC -o PATH`): reads
 * samples from an IDX, NPY or CSV file, runs the embedded model through its
 * compiled predict step and writes one line per sample: the class index for a
 * classifier, else the output values (`--probs`: the whole output vector). Links
 * with the model's object, libspecnet_rt and OpenBLAS; no LLVM, no YAML.
 *
 *   PATH --input FILE [--output FILE] [--probs] [--threads N]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specnet/aot.h"

static int usage(const char *self) {
  fprintf(stderr,
          "usage: %s --input FILE [--output FILE] [--probs] [--threads N]\n"
          "  FILE: IDX (raw or .gz), .npy, or .csv (every column a feature; a header row is skipped)\n"
          "  writes one line per sample: the class index, or the output values (--probs: all outputs)\n"
          "       %s --generate [--prompt TEXT] [--tokens N] [--temperature F] [--top-k K] [--seed S]\n"
          "                 [--no-kv-cache]\n"
          "  a language model: continues TEXT, token by token (as specnet generate)\n",
          self, self);
  return 2;
}

/* Every column a number; a first row that is not all numbers is a header. */
static int read_csv(const char *path, double **data, int64_t *rows, int64_t *cols, sn_error *err) {
  FILE *f = fopen(path, "r");
  if (!f) return sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0, used = 0, size = 0;
  int64_t n = 0, width = -1, line_no = 0;
  double *v = NULL;
  int rc = 0;
  while (getline(&line, &cap, f) > 0) {
    line_no++;
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    size_t start = used;
    int64_t k = 0;
    bool numeric = true;
    for (char *p = line;; k++) {
      char *end;
      double x = strtod(p, &end);
      while (*end == ' ') end++;
      if (end == p || (*end && *end != ',') || !isfinite(x)) {
        numeric = false;
        break;
      }
      if (used == size) {
        size = size ? 2 * size : 4096;
        double *more = realloc(v, sizeof(double) * size);
        if (!more) {
          rc = sn_fail(err, "%s: out of memory at line %lld", path, (long long)line_no);
          break;
        }
        v = more;
      }
      v[used++] = x;
      if (!*end) {
        k++;
        break;
      }
      p = end + 1;
    }
    if (rc) break;
    if (!numeric) {
      used = start;
      if (line_no == 1) continue; /* a header row */
      rc = sn_fail(err, "%s:%lld: not a row of numbers", path, (long long)line_no);
      break;
    }
    if (width < 0) width = k;
    if (k != width) {
      rc = sn_fail(err, "%s:%lld: %lld columns, the first row has %lld", path, (long long)line_no, (long long)k,
                   (long long)width);
      break;
    }
    n++;
  }
  free(line);
  fclose(f);
  if (rc) {
    free(v);
    return rc;
  }
  *data = v;
  *rows = n;
  *cols = width < 0 ? 0 : width;
  return 0;
}

/* Samples (n, elems): bytes for IDX files (converted batch by batch), else doubles. */
typedef struct input {
  double *x;      /* NPY, CSV */
  uint8_t *bytes; /* IDX */
} input;

/* Every value finite in the model's dtype (as specnet predict requires): a NaN
 * would come out as class 0, not as an error. */
static int check_finite(const char *path, const double *x, int64_t n, int64_t elems, sn_error *err) {
  const bool f64 = sn_aot_info_v1.dtype == SN_RT_F64;
  for (int64_t i = 0; i < n * elems; i++)
    if (!isfinite(x[i]) || (!f64 && !isfinite((float)x[i])))
      return sn_fail(err, "%s: element %lld of sample %lld is %s; every value must be finite%s", path,
                     (long long)(i % elems), (long long)(i / elems), isnan(x[i]) ? "nan" : "inf",
                     isfinite(x[i]) ? " (as float32)" : "");
  return 0;
}

static int read_input(const char *path, input *in, int64_t *n, int64_t *elems, sn_error *err) {
  double **x = &in->x;
  if (sn_path_has_suffix(path, ".npy")) {
    int nd;
    int64_t shape[8];
    bool integer;
    if (sn_npy_read(path, 0, &nd, shape, x, &integer, err)) return -1;
    *n = nd ? shape[0] : 1;
    *elems = 1;
    for (int i = 1; i < nd; i++) *elems *= shape[i];
    return check_finite(path, *x, *n, *elems, err);
  }
  if (sn_path_has_suffix(path, ".csv")) return read_csv(path, x, n, elems, err);
  int rank;
  int64_t dims[4], count;
  uint8_t *bytes;
  if (sn_idx_read(path, &rank, dims, &bytes, &count, err)) return -1;
  int64_t e = 1;
  for (int i = 0; i < rank; i++) e *= dims[i];
  in->bytes = bytes;
  *n = count;
  *elems = e;
  return 0;
}

/* Name k of the table the build embedded (k < n_class_names). */
static const char *class_name(int64_t k) {
  const char *p = sn_aot_class_names;
  while (k-- > 0) p += strlen(p) + 1;
  return p;
}

/* Output value i of a batch in the model's dtype. */
static double out_at(const void *yb, bool f64, int64_t i) {
  return f64 ? ((const double *)yb)[i] : ((const float *)yb)[i];
}

/* A whole number of an option from lo to hi, or -1 with a message. */
static long long count_arg(const char *self, const char *opt, const char *val, unsigned long long lo,
                           unsigned long long hi) {
  unsigned long long n;
  if (!sn_parse_count(val, lo, hi, &n)) {
    fprintf(stderr, "%s: error: %s needs a whole number from %llu to %llu, got '%s'\n", self, opt, lo, hi, val);
    return -1;
  }
  return (long long)n;
}

/* --threads N: the pool's threads, as specnet's --threads takes them; -1 with a message. */
static int threads_arg(const char *self, const char *val) {
  long long n = count_arg(self, "--threads", val, 1, 1024);
  if (n < 0) return -1;
  sn_set_threads((int)n);
  return 0;
}

extern const sn_decoder sn_aot_decoder_v1 __attribute__((weak));

/* --generate: a text language model continues --prompt (runtime/generate.c), with
 * the buffers allocated once; through the key/value cache where the model has a
 * decoder, unless --no-kv-cache. */
static int generate_main(int argc, char **argv) {
  const sn_aot_info *info = &sn_aot_info_v1;
  if (!info->lm) {
    fprintf(stderr, "%s: error: --generate needs a language model (a spec whose data is a text source in lm mode)\n",
            argv[0]);
    return 2;
  }
  const char *prompt = "";
  long long tokens = 200, top_k = 0, seed = info->seed;
  double temperature = 1.0;
  const sn_decoder *dec = &sn_aot_decoder_v1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--generate")) continue;
    if (!strcmp(a, "--no-kv-cache")) {
      dec = NULL;
      continue;
    }
    if (!strcmp(a, "--threads") && v) {
      if (threads_arg(argv[0], v)) return 2;
    } else if (!strcmp(a, "--prompt") && v) {
      prompt = v;
    } else if (!strcmp(a, "--tokens") && v) {
      if ((tokens = count_arg(argv[0], a, v, 0, 100000000)) < 0) return 2;
    } else if (!strcmp(a, "--top-k") && v) {
      if ((top_k = count_arg(argv[0], a, v, 0, 100000000)) < 0) return 2;
    } else if (!strcmp(a, "--seed") && v) {
      if ((seed = count_arg(argv[0], a, v, 0, INT64_MAX)) < 0) return 2;
    } else if (!strcmp(a, "--temperature") && v) {
      char *end;
      temperature = strtod(v, &end);
      if (!*v || *end || !(temperature >= 0) || !isfinite(temperature)) {
        fprintf(stderr, "%s: error: --temperature needs a number >= 0, got '%s'\n", argv[0], v);
        return 2;
      }
    } else {
      fprintf(stderr, "%s: error: unknown argument '%s' with --generate\n", argv[0], a);
      return usage(argv[0]);
    }
    i++;
  }
  void *arena = aligned_alloc(64, (size_t)((info->arena_bytes + 63) / 64 * 64 + 64));
  if (!arena) {
    fprintf(stderr, "%s: error: out of memory for the model's buffers (%lld bytes)\n", argv[0],
            (long long)info->arena_bytes);
    return 1;
  }
  const int64_t V = info->classes > 0 ? info->classes : info->output_elems;
  sn_vocab voc = {.chars = info->n_chars ? sn_aot_chars : NULL, .n_chars = (int)info->n_chars};
  sn_generator g = {.predict = sn_predict, .context = info->input_elems, .vocab = V,
                    .f64 = info->dtype == SN_RT_F64, .probs = info->output_probs != 0, .dec = dec,
                    .tokens = sn_vocab_tokens(&voc)};
  g.args = (sn_step_args){.params = (void *)sn_aot_params, .state = (void *)sn_aot_state, .arena = arena, .step = 1};
  sn_error err = {0};
  int rc = 0;
  if (sn_generator_init(&g, &err) || sn_generator_push_text(&g, &voc, prompt, &err)) {
    fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
    rc = 1;
  } else {
    if (!*prompt) { /* start after a line break, as a record does */
      int32_t nl = sn_vocab_id(&voc, '\n');
      sn_generator_push(&g, nl >= 0 && nl < V ? nl : 0);
    }
    sn_sampler smp = {.temperature = temperature, .top_k = top_k, .seed = (uint64_t)seed};
    fputs(prompt, stdout);
    for (long long i = 0; i < tokens; i++) {
      char buf[4];
      fwrite(buf, 1, (size_t)sn_token_text(&voc, sn_generator_next(&g, &smp), buf), stdout);
      fflush(stdout);
    }
    fputc('\n', stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
      fprintf(stderr, "%s: error: cannot write the text: %s\n", argv[0], strerror(errno));
      rc = 1;
    }
  }
  sn_generator_free(&g);
  free(arena);
  return rc;
}

/* One sample's line of output, its O outputs starting at y in yb: the class of each
 * position (its name when the model has names), or with probs (or a model that is
 * no classifier) every output, in the data's units. */
static void write_row(FILE *out, const void *yb, int64_t y, bool probs) {
  const sn_aot_info *info = &sn_aot_info_v1;
  const int64_t O = info->output_elems;
  const bool f64 = info->dtype == SN_RT_F64;
  if (info->classifier && !probs) { /* the arg-max of each position's C scores */
    const int64_t C = info->classes > 0 ? info->classes : O;
    for (int64_t p = 0; p < O / C; p++) {
      int64_t best = 0;
      for (int64_t k = 1; k < C; k++)
        if (out_at(yb, f64, y + p * C + k) > out_at(yb, f64, y + p * C + best)) best = k;
      if (best < info->n_class_names)
        fprintf(out, "%s%s", p ? "," : "", class_name(best));
      else
        fprintf(out, "%s%lld", p ? "," : "", (long long)best);
    }
  } else {
    for (int64_t k = 0; k < O; k++) {
      double v = out_at(yb, f64, y + k);
      if (k < info->n_post) v = v * sn_aot_post_a[k] + sn_aot_post_b[k]; /* the data's units */
      fprintf(out, "%s%.9g", k ? "," : "", v);
    }
  }
  fputc('\n', out);
}

int main(int argc, char **argv) {
  const sn_aot_info *info = &sn_aot_info_v1;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--generate")) return generate_main(argc, argv);
  const char *in = NULL, *outp = NULL;
  bool probs = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--input") && i + 1 < argc) in = argv[++i];
    else if (!strcmp(argv[i], "--output") && i + 1 < argc) outp = argv[++i];
    else if (!strcmp(argv[i], "--probs")) probs = true;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      if (threads_arg(argv[0], argv[++i])) return 2;
    }
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(argv[0]);
      return 0;
    } else {
      fprintf(stderr, "%s: error: unknown argument '%s'\n", argv[0], argv[i]);
      return usage(argv[0]);
    }
  }
  if (!in) return usage(argv[0]);
  if (info->version != 1) {
    fprintf(stderr, "%s: error: model object version %lld, this runtime reads 1\n", argv[0], (long long)info->version);
    return 1;
  }
  sn_error err = {0};
  input x = {0};
  int64_t n = 0, elems = 0;
  if (read_input(in, &x, &n, &elems, &err)) {
    fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
    return 1;
  }
  if (elems != info->input_elems) {
    fprintf(stderr, "%s: error: %s: samples have %lld value%s each, the model takes %lld\n",
            argv[0], in, (long long)elems, elems == 1 ? "" : "s", (long long)info->input_elems);
    free(x.x);
    free(x.bytes);
    return 1;
  }
  FILE *out = outp ? fopen(outp, "w") : stdout;
  if (!out) {
    fprintf(stderr, "%s: error: cannot write %s: %s\n", argv[0], outp, strerror(errno));
    free(x.x);
    free(x.bytes);
    return 1;
  }
  const int64_t cap = info->batch_capacity, E = info->input_elems, O = info->output_elems;
  bool f64 = info->dtype == SN_RT_F64;
  size_t es = f64 ? 8 : 4;
  void *arena = aligned_alloc(64, (size_t)((info->arena_bytes + 63) / 64 * 64 + 64));
  void *xb = malloc(es * (size_t)(cap * E));
  void *yb = malloc(es * (size_t)(cap * O));
  if (!arena || !xb || !yb) {
    fprintf(stderr, "%s: error: out of memory for the model's buffers (%lld bytes, a batch of %lld)\n", argv[0],
            (long long)(info->arena_bytes + (int64_t)es * cap * (E + O)), (long long)cap);
    free(arena);
    free(xb);
    free(yb);
    free(x.x);
    free(x.bytes);
    if (outp) fclose(out);
    return 1;
  }
  sn_step_args a = {.params = (void *)sn_aot_params, .state = (void *)sn_aot_state, .arena = arena, .x = xb,
                    .out = yb, .step = 1};
  for (int64_t i = 0; i < n; i += cap) {
    int64_t rows = n - i < cap ? n - i : cap;
    /* the batch in the model's dtype, with the spec's preprocessing */
    for (int64_t j = 0; j < rows * E; j++) {
      double v = x.bytes ? (double)x.bytes[i * E + j] : x.x[i * E + j];
      if (info->n_pre > 0) {
        int64_t f = (j % E) % info->n_pre;
        v = v * sn_aot_pre_a[f] + sn_aot_pre_b[f];
      }
      if (f64) ((double *)xb)[j] = v;
      else ((float *)xb)[j] = (float)v;
    }
    a.rows = rows;
    sn_predict(&a);
    for (int64_t r = 0; r < rows; r++) write_row(out, yb, r * O, probs);
  }
  free(arena);
  free(xb);
  free(yb);
  free(x.x);
  free(x.bytes);
  bool bad = ferror(out);
  if (outp ? fclose(out) != 0 || bad : fflush(out) != 0 || bad) {
    fprintf(stderr, "%s: error: cannot write %s: %s\n", argv[0], outp ? outp : "the output", strerror(errno));
    return 1;
  }
  return 0;
}
