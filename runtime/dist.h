/* Internal to the runtime (dist.c, used by train.c): collectives built on the
 * sn_comm callbacks, the weights checksum, and the training-state file that
 * --resume reads. The public part (sn_comm, sn_comm_first_failed) is in
 * specnet/runtime.h. */
#ifndef SPECNET_DIST_H
#define SPECNET_DIST_H

#include "specnet/runtime.h"

/* Whether v[0..n) (n <= 64) is the same on every rank: *differs is the index of the
 * first value that is not, or -1. A collective (one max over 2n values). */
int sn_dist_same(const sn_comm *c, const double *v, int n, int *differs, sn_error *err);

/* FNV-1a over the bytes of params and state (in the model dtype): equal weights give
 * equal hashes on every rank and in every file that holds them. */
uint64_t sn_weights_hash(const sn_model *m);

/* Where a run stands after an epoch: what --resume continues from. */
typedef struct sn_run_state {
  int epochs_done;  /* epochs finished (the records hold this many) */
  int64_t step;     /* optimizer steps taken */
  int best_epoch;   /* early stopping: epoch of the best monitored value, 0 = none yet */
  double best;      /* that value */
  int wait;         /* epochs since it improved */
  bool stopped;     /* early stopping ended the run: nothing is left to train */
} sn_run_state;

/* train_state.safetensors (F64 tensors, written atomically):
 *   __train__.progress   [24]        format, epochs done, step, early-stopping state,
 *                                    and what must match on resume (counts, batch
 *                                    size, seed, dtype, the weights' hash)
 *   __train__.records    [E, 40]     the epoch records, flattened
 *   __optimizer__.state  [S]         the optimizer state (Adam's m then v)
 *   __best__.params [P], __best__.state [Q]   early stopping's best weights, when kept
 * best_params NULL: no snapshot. The weights themselves are in the checkpoint that
 * was written just before (their hash ties the two files together). */
int sn_run_state_write(const char *path, const sn_model *m, const sn_train_opts *o,
                       int64_t train_n, const sn_run_state *st, const sn_epoch_record *recs,
                       const void *best_params, const void *best_state, sn_error *err);

/* Reads checkpoint (the weights, into m) and path (into m->opt_state, *st, the records
 * and the snapshot), checks that they belong to this model, options and training set
 * and to each other. *recs is replaced by a calloc'd array of at least
 * max(epochs done, min_records) + 1 records (the old one is freed). best_params and
 * best_state (or NULL) receive the snapshot when the file has one; *has_best says so. */
int sn_run_state_read(const char *path, const char *checkpoint, sn_model *m,
                      const sn_train_opts *o, int64_t train_n, sn_run_state *st,
                      sn_epoch_record **recs, int min_records, void *best_params,
                      void *best_state, bool *has_best, sn_error *err);

#endif
