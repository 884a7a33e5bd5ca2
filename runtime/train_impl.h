/* Internal to the runtime: the pieces of the training loop (train.c) kept in files
 * of their own, prototypes grouped by file.
 *   train_loader.c  staging a batch and the loader thread that prefetches it
 *   train_dist.c    data parallelism: the ranks agree, sum gradients, resync
 *   train_record.c  the record files (metrics.jsonl, metrics.csv) and checkpoints
 * Letters as in train.c: B rows in a batch, E input_elems, T target_elems, L labels
 * per sample. */
#ifndef SPECNET_TRAIN_IMPL_H
#define SPECNET_TRAIN_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dist.h"
#include "specnet/runtime.h"

enum { MAX_METRICS = 8 };

static inline size_t dtype_bytes(const sn_model *m) {
  return m->dtype == SN_RT_F64 ? sizeof(double) : sizeof(float);
}

/* L: int labels per sample of a model or a set (0 stands for 1) */
static inline int64_t model_labels(const sn_model *m) {
  return m->label_elems > 0 ? m->label_elems : 1;
}
static inline int64_t set_labels(const sn_dataset *ds) {
  return ds->label_elems > 0 ? ds->label_elems : 1;
}

/* train_loader.c: a job is the batches of one data set in one order; the consumer
 * asks for batch b (sn_loader_get) and hands it back when its step is done
 * (sn_loader_put). */
/* What a step reads: pointers into a staging slot or straight into the data set. */
typedef struct staged {
  const void *x;    /* (B, E) model dtype */
  const int32_t *y; /* (B, L), or NULL when the set has no labels */
  const void *t;    /* (B, T) model dtype, or NULL when the model reads none */
  int64_t rows;     /* B */
} staged;

typedef struct slot {
  void *x;    /* (cap, E) model dtype */
  int32_t *y; /* (cap, L) */
  void *t;    /* (cap, T) model dtype, when T > 0 */
  staged b;
} slot;

typedef struct loader {
  const sn_model *m;
  slot slots[2];
  /* the job */
  const sn_dataset *ds;
  const int64_t *idx;
  int64_t bs, n_batches;
  int64_t shard, shards; /* this rank takes rows [g shard/shards, g (shard+1)/shards) of
                          * each batch of g rows (data-parallel); 0, 1: all of them */
  double waited;         /* seconds the consumer waited for batches in this job */
  /* the background thread; everything below is under mu */
  bool threaded;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t job;     /* bumped by each sn_loader_start */
  /* written under mu, read without it too: each side spins on the other's counter
   * a while before it sleeps on cv, so a step costs no system call */
  _Atomic int64_t produced; /* batches of the job staged */
  _Atomic int64_t consumed; /* batches of the job handed back */
  _Atomic int sleepers;     /* threads in pthread_cond_wait on cv */
  bool busy;        /* the thread is working on a job */
  bool abort;       /* stop the current job */
  bool quit;        /* end the thread */
} loader;

void sn_loader_free(loader *L);
int sn_loader_init(loader *L, const sn_model *m, int64_t cap, bool threaded, sn_error *err);
void sn_loader_start(loader *L, const sn_dataset *ds, const int64_t *idx, int64_t bs, int shard,
                     int shards);
const staged *sn_loader_get(loader *L, int64_t b);
void sn_loader_put(loader *L, int64_t b);

/* train_dist.c: the collectives of a data-parallel run (C has size > 1; only
 * sn_dist_agree also takes NULL, alone, where it returns local). */
int sn_dist_comm_failed(sn_error *err);
int sn_dist_agree(const sn_comm *C, int local, sn_error *err);
void sn_dist_grad(sn_model *m, sn_step_args *a, double w);
int sn_dist_sum_losses(const sn_comm *C, int K, const sn_step_args *a, bool *stop, int *bad,
                       sn_error *err);
int sn_dist_update(const sn_comm *C, sn_model *m, sn_step_args *a, int64_t global, double w,
                   sn_error *err);
int sn_dist_share_resumed(const sn_comm *C, sn_model *m, sn_run_state *st, sn_epoch_record **recs,
                          int *recs_cap, int epochs, void *best_params, void *best_state,
                          bool *has_best, sn_error *err);
int sn_dist_resync(const sn_comm *C, sn_model *m, bool *drifted, sn_error *err);
int sn_dist_check_same(const sn_comm *C, const sn_model *m, const sn_dataset *train,
                       const sn_dataset *val, const sn_dataset *test, const sn_train_opts *o,
                       const sn_run_state *st, sn_error *err);

/* train_record.c: rank 0's record files and checkpoints. */
int sn_train_open_records(sn_model *m, const sn_train_opts *o, bool has_val, bool has_test,
                          int epochs_done, FILE **jsonl, FILE **csv, sn_error *err);
int sn_train_checkpoint(const sn_model *m, const sn_train_opts *o, int64_t train_n,
                        const sn_run_state *st, const sn_epoch_record *recs,
                        const void *best_params, const void *best_state, sn_error *err);

#endif
