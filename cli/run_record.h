/* A run folder, written (run_outputs.c, with runtime/report.c) and read back
 * (run_record.c) for `specnet report` and `specnet compare` (docs/outputs.md). */
#ifndef SPECNET_RUN_RECORD_H
#define SPECNET_RUN_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

/* What predictions.csv holds: class probabilities (a classifier: K classes; a
 * binary one as 2), or targets and outputs (K values per sample). */
typedef enum pred_kind { PRED_CLASSES = 0, PRED_BINARY, PRED_VALUES } pred_kind;

enum { RUN_WRONG_MAX = 25 }; /* samples in wrong_samples.npy, at most */

/* ---------------------------------------------------------------------------
 * Writing (at the end of `specnet train`) */

/* predictions.csv for ds (the test set, else validation), and for image classifiers
 * wrong_samples.npy. */
int run_write_predictions(const sn_spec *s, sn_model *m, const sn_dataset *ds, const sn_data *d, const char *dir,
                          sn_error *err);
/* run.json: name, the set predicted (NULL: none), compile times, wall time. */
int run_write_info(const char *dir, const sn_spec *s, const sn_compiled *c, const char *split,
                   double wall_seconds);
/* spec.yaml: a byte copy of the spec file as given. */
int run_copy_spec(const char *spec_path, const char *dir);
/* profile.txt: the --profile kernel table. */
void run_write_profile(const sn_compiled *c, const char *dir);
bool run_is_image(const sn_dataset *ds);
/* The wrong samples (conf[i] >= 0: the confidence of a wrong prediction), most
 * confident first, ties by index: their indices into idx, at most cap; the count. */
int run_wrong_order(const double *conf, int64_t n, int64_t *idx, int cap);

/* ---------------------------------------------------------------------------
 * Reading */

typedef struct run_record {
  char dir[4096];
  char name[256]; /* run.json's name, else the folder's last part */
  int n_cols;     /* metrics.jsonl keys, in order of first appearance */
  char **cols;
  int n_rows;          /* epochs */
  double *v;           /* (n_rows, n_cols); NAN for null or absent */
  char *spec_text;     /* spec.yaml as given, or NULL */
  char *resolved_text; /* spec.resolved.yaml, or NULL */
  char **classes;      /* classes.json, or NULL */
  int n_classes;
  int n_info; /* run.json's numbers and booleans (1/0) */
  char **info_keys;
  double *info;
  char split[32]; /* run.json's "predictions": the set predicted, or "" */
  char *profile;  /* profile.txt, or NULL */
} run_record;

/* Reads dir; a missing or empty metrics.jsonl is an error (msg says which file). */
int run_read(const char *dir, run_record *r, char *msg, size_t cap);
void run_free(run_record *r);
int run_col(const run_record *r, const char *key); /* its index, or -1 */
double run_at(const run_record *r, int row, const char *key);
double run_info(const run_record *r, const char *key); /* NAN when absent */
/* Whether a figure is better high (accuracy-like) rather than low (losses). */
bool run_higher_better(const char *key);

typedef struct run_preds {
  pred_kind kind; /* PRED_CLASSES also for a binary classifier (K = 2) */
  int64_t n;
  int K;
  int64_t *label, *pred; /* classes: (n) */
  double *conf;          /* classes: (n) probability of the predicted class */
  double *target, *out;  /* values: (n, K) each */
} run_preds;

/* predictions.csv of dir: 0, 1 when the file is absent, -1 on a bad file (msg). */
int run_read_predictions(const char *dir, run_preds *p, char *msg, size_t cap);
void run_preds_free(run_preds *p);

/* A whole file, NUL-terminated, malloc'd; NULL when unreadable. */
char *run_slurp(const char *path, size_t *len);

#endif
