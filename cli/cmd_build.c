/* `specnet build SPEC --weights FILE -o PATH [--lib] [--cpu C] [--weights-file]`:
 * the trained model compiled ahead of time (compiler/aot.c) into a standalone
 * executable, or with --lib into NAME.h + libNAME.a; `specnet build SPEC --train
 * -o PATH`: a training binary (runtime/aot_train_main.c). The spec's preprocessing
 * (scale, normalize, and standardize with the training set's statistics) is
 * folded into one affine per input feature and applied inside the model, so the
 * binary takes raw samples as the spec's data files hold them. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The library prefix: the spec name with anything but [A-Za-z0-9_] as '_'. */
static void c_name(const char *name, char *out, size_t len) {
  size_t k = 0;
  if (name[0] >= '0' && name[0] <= '9' && k + 1 < len) out[k++] = '_';
  for (size_t i = 0; name[i] && k + 1 < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out[k++] = ok ? c : '_';
  }
  out[k] = 0;
}

/* p made absolute in place (a file that does not exist yet: joined to the current
 * folder), so the path still names it from another folder; "" stays "". */
static void absolute_path(char *p, size_t cap) {
  if (!p[0] || p[0] == '/') return;
  char *abs = realpath(p, NULL), cwd[4096];
  char joined[8200];
  if (abs)
    snprintf(joined, sizeof joined, "%s", abs);
  else if (getcwd(cwd, sizeof cwd))
    snprintf(joined, sizeof joined, "%s/%s", cwd, p);
  else
    joined[0] = 0;
  free(abs);
  if (joined[0] && strlen(joined) < cap) memcpy(p, joined, strlen(joined) + 1);
}

int cmd_build(const opts *o) {
  if (!o->weights && !o->train)
    return usage_error("build needs --weights FILE (train first: specnet train SPEC), or --train");
  if (!o->out) return usage_error("build needs -o PATH (the executable, or with --lib the folder)");
  if (o->weights_file && !o->lib) return usage_error("--weights-file goes with --lib");
  if (o->train && (o->lib || o->weights)) return usage_error("--train builds a training binary: no --lib or --weights");
  session S;
  /* a training binary reads its data when it runs */
  int rc = session_open_with(&S, o, true, !o->train, NULL);
  if (rc) {
    session_free(&S);
    return rc;
  }
  const sn_spec *s = S.spec;
  sn_data_config dc;
  sn_spec_data_config(s, &dc);
  int64_t F = o->train ? 0 : sn_dataset_features(&S.ds.train);
  bool per_feature = dc.n_norm > 0 || dc.standardize;
  int64_t n = per_feature ? F : (dc.scale != 1.0 ? 1 : 0);
  double *a = calloc((size_t)(n ? n : 1), sizeof(double)), *b = calloc((size_t)(n ? n : 1), sizeof(double));
  if (!a || !b) abort();
  for (int64_t f = 0; f < n; f++) {
    a[f] = dc.scale;
    if (dc.n_norm > 0) {
      double m = dc.norm_mean[f % dc.n_norm], sd = dc.norm_std[f % dc.n_norm];
      a[f] /= sd;
      b[f] = (b[f] - m) / sd;
    }
    if (dc.standardize) {
      a[f] /= S.ds.std_std[f];
      b[f] = (b[f] - S.ds.std_mean[f]) / S.ds.std_std[f];
    }
  }
  char name[128];
  c_name(sn_spec_name(s), name, sizeof name);
  sn_train_opts to;
  train_opts_from_spec(s, &to);
  /* a training binary reads its data wherever it is run from */
  sn_source *srcs[] = {&dc.train, &dc.test, &dc.validation};
  for (int i = 0; i < 3; i++) {
    if (srcs[i]->kind != SN_SRC_HDF5) { /* hdf5: x and y name datasets, not files */
      absolute_path(srcs[i]->images, sizeof srcs[i]->images);
      absolute_path(srcs[i]->labels, sizeof srcs[i]->labels);
    }
    absolute_path(srcs[i]->path, sizeof srcs[i]->path);
  }
  sn_aot_opts ao = {.out = o->out, .name = name, .cpu = sn_cpu_default(), .lib = o->lib,
                    .weights_file = o->weights_file, .n_pre = o->train ? 0 : n, .pre_a = a, .pre_b = b,
                    .train = o->train, .train_opts = &to, .data = &dc,
                    /* outputs back to the data's units; class names printed back */
                    .n_post = o->train ? 0 : S.ds.tgt_n, .post_a = S.ds.tgt_std, .post_b = S.ds.tgt_mean,
                    .n_class_names = o->train ? 0 : S.ds.train.n_class_names,
                    .class_names = (const char *const *)S.ds.train.class_names,
                    .chars = o->train ? NULL : S.ds.train.chars, .n_chars = o->train ? 0 : S.ds.train.n_chars};
  sn_diag d = {0};
  double t0 = sn_now();
  rc = sn_build_aot(s, S.m, &ao, &d) ? EXIT_SPEC : 0;
  print_diag(&d);
  sn_diag_free(&d);
  if (!rc && !o->quiet) {
    if (o->lib)
      printf("wrote %s/%s.h and %s/lib%s.a%s (CPU %s, %.0f ms)\n", o->out, name, o->out, name,
             o->weights_file ? " and the weights file" : "", ao.cpu, (sn_now() - t0) * 1e3);
    else if (o->train)
      printf("wrote %s (CPU %s, %.0f ms): %s [--out DIR] [--epochs N] [--train FILES] [--test FILES]\n", o->out,
             ao.cpu, (sn_now() - t0) * 1e3, o->out);
    else
      printf("wrote %s (CPU %s, %.0f ms): %s --input FILE [--output FILE] [--probs]\n", o->out, ao.cpu,
             (sn_now() - t0) * 1e3, o->out);
  }
  free(a);
  free(b);
  session_free(&S);
  return rc;
}
