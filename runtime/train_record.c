/* The training run's record files and checkpoints (train.c, rank 0): metrics.jsonl
 * and metrics.csv opened (or, resuming, cut to the epochs done), the weights and
 * the training state written after each epoch. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_impl.h"

#include "report.h"

/* ---------------------------------------------------------------------------
 * Record files */

/* Opens one record file (mode "w" or "a"); NULL path: nothing to do. */
static int open_record(const char *path, const char *mode, FILE **f, sn_error *err) {
  *f = NULL;
  if (!path) return 0;
  *f = fopen(path, mode);
  if (!*f) return sn_fail(err, "cannot write %s: %s", path, strerror(errno));
  return 0;
}

/* Resuming: keeps the first `keep` lines of path (the epochs the training state
 * holds; a run stopped after writing a line but before its checkpoint wrote one line
 * too many), atomically. *lines: the lines kept (a missing file has none). */
static int keep_lines(const char *path, int64_t keep, int64_t *lines, sn_error *err) {
  *lines = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : sn_fail(err, "cannot read %s: %s", path, strerror(errno));
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap * 2 + 65536;
      char *t = realloc(text, cap);
      if (!t) {
        free(text);
        fclose(f);
        return sn_fail(err, "out of memory reading %s", path);
      }
      text = t;
    }
    size_t k = fread(text + len, 1, cap - len, f);
    len += k;
    if (k == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(text);
    return sn_fail(err, "cannot read %s", path);
  }
  size_t end = 0;
  while (end < len && *lines < keep) {
    const char *nl = memchr(text + end, '\n', len - end);
    if (!nl) break; /* an unfinished last line is dropped */
    end = (size_t)(nl - text) + 1;
    ++*lines;
  }
  int rc = 0;
  if (end < len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o || fwrite(text, 1, end, o) != end || fclose(o) != 0 || rename(tmp, path) != 0) {
      rc = sn_fail(err, "cannot rewrite %s: %s", path, strerror(errno));
      unlink(tmp);
    }
  }
  free(text);
  return rc;
}

/* Rank 0: the record files, emptied (or, resuming, kept up to the epochs done). */
int sn_train_open_records(sn_model *m, const sn_train_opts *o, bool has_val, bool has_test,
                          int epochs_done, FILE **jsonl, FILE **csv, sn_error *err) {
  int64_t lines = 0;
  const bool append = o->resume;
  if (append && o->metrics_path && keep_lines(o->metrics_path, epochs_done, &lines, err)) return -1;
  if (open_record(o->metrics_path, append ? "a" : "w", jsonl, err)) return -1;
  if (append && o->csv_path && keep_lines(o->csv_path, (int64_t)epochs_done + 1, &lines, err))
    return -1;
  if (open_record(o->csv_path, append ? "a" : "w", csv, err)) return -1;
  if (*csv && lines == 0 && sn_report_csv_header(*csv, o->csv_path, m, has_val, has_test, err))
    return -1;
  return 0;
}

/* Rank 0, after an epoch (and at the end): the weights, then what --resume needs. */
int sn_train_checkpoint(const sn_model *m, const sn_train_opts *o, int64_t train_n,
                        const sn_run_state *st, const sn_epoch_record *recs,
                        const void *best_params, const void *best_state, sn_error *err) {
  if (o->checkpoint_path && sn_safetensors_write(o->checkpoint_path, m, err)) return -1;
  if (o->checkpoint_path && o->state_path &&
      sn_run_state_write(o->state_path, m, o, train_n, st, recs, best_params, best_state, err))
    return -1;
  return 0;
}
