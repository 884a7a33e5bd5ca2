/* The records of a run (report.c), used by the training loop (train.c): one row of
 * metrics.jsonl or metrics.csv per epoch. Internal to the runtime; the public part
 * (sn_curves_svg) is in specnet/runtime.h. */
#ifndef SPECNET_REPORT_H
#define SPECNET_REPORT_H

#include <stdio.h>

#include "specnet/runtime.h"

/* One line of metrics.jsonl, flushed. */
int sn_report_jsonl(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                    sn_error *err);
/* The header row of metrics.csv: the keys of a metrics.jsonl line, in its order. */
int sn_report_csv_header(FILE *f, const char *path, const sn_model *m, bool has_val, bool has_test,
                         sn_error *err);
/* One row of metrics.csv, flushed; a non-finite number is an empty cell. */
int sn_report_csv(FILE *f, const char *path, const sn_model *m, const sn_epoch_record *rec,
                  sn_error *err);

#endif
