/* Samples as stored (data_store.c), for the file readers (data_npy.c,
 * data_source.c): they make a store, hand it to a data set, and the set converts
 * batches from it. */
#ifndef SPECNET_DATA_STORE_H
#define SPECNET_DATA_STORE_H

#include "specnet/runtime.h"

/* A stored element type: kind 'u' unsigned, 'i' signed, 'f' float; size in bytes. */
typedef struct sn_stype {
  char kind;
  int size;
} sn_stype;

/* Appends a file to the store *s (NULL: a new one): n samples of elems values of
 * type t from byte `offset` (the caller has checked that the file holds them and
 * that t and elems are those of the store's other files). Samples are read as needed.
 * On failure *s stays valid for sn_store_unref. */
int sn_store_add(sn_store **s, const char *path, int64_t offset, sn_stype t, int64_t n,
                 int64_t elems, sn_error *err);
/* A file whose samples come from a function rather than pread (HDF5, data_hdf5.c):
 * read(ctx, at, bytes, buf) fills buf with `bytes` bytes from byte `at` of the file's
 * samples (n * elems values of t, C order), false when it cannot (buf is then zeroed
 * and the store marked, as for a short pread); it is called from any thread.
 * close(ctx) (may be NULL) runs when the store is freed. */
typedef struct sn_store_reader {
  bool (*read)(void *ctx, int64_t at, int64_t bytes, void *buf);
  void (*close)(void *ctx);
  void *ctx;
} sn_store_reader;
/* Appends such a file (size and mtime checked as for sn_store_add). The store owns
 * rd from the call on, also when it fails. */
int sn_store_add_reader(sn_store **s, const char *path, sn_stype t, int64_t n, int64_t elems,
                        sn_store_reader rd, sn_error *err);
/* Takes ownership of `bytes` (malloc'd, n * elems u8 values) read from `path`. */
int sn_store_own(const char *path, uint8_t *bytes, int64_t n, int64_t elems, sn_store **out,
                 sn_error *err);
sn_stype sn_store_type(const sn_store *s);
/* The file to read an IDX file from in place (data_idx.c): path itself when raw;
 * for gzip, a raw copy decompressed once into the cache folder (reused while the
 * source keeps its size and mtime). 0 with out set; 1 when no cache file could be
 * written (out is path: read it into memory instead); -1 (err) for bad gzip data. */
int sn_idx_cache(const char *path, char *out, size_t cap, sn_error *err);
/* The raw bytes of samples [i, i + count) into buf (a streaming pass at load). */
int sn_store_read(sn_store *s, int64_t i, int64_t count, void *buf, sn_error *err);
sn_store *sn_store_ref(sn_store *s);
void sn_store_unref(sn_store *s);
/* A stored set's samples [0, n) converted to f32 into ds->x (the store let go):
 * what SPECNET_DATA_IN_MEMORY=1 does at load. */
int sn_dataset_to_memory(sn_dataset *ds, sn_error *err);
/* Reads a store of pread files (not HDF5) holding at most max_bytes into memory, as
 * stored, once: batches then copy from there instead of one system call a sample.
 * What training alone does for small sets (sn_store_hold_limit); 0, or -1 (err) when
 * a file cannot be read whole. NULL or a store already held: nothing. */
int sn_store_hold(sn_store *s, int64_t max_bytes, sn_error *err);
/* The largest store training holds in memory: 64 MiB, 0 with SPECNET_DATA_IN_MEMORY=0. */
int64_t sn_store_hold_limit(void);
/* Whether samples are forced into memory as f32 ($SPECNET_DATA_IN_MEMORY=1): a
 * set held whole, to compare the stored path with. */
bool sn_store_in_memory(void);

/* The files of a source whose samples (x) and labels (y) are each one file or a
 * list of shards (sn_paths_expand), paired in order. */
typedef struct sn_shards {
  sn_paths x, y; /* y empty where the source has no labels */
  int64_t *rows; /* [x.n] samples in each x file, for the reader to fill */
} sn_shards;
/* Expands the lists x and y (NULL: no labels) into *s; an error when y's files are
 * not as many as x's. xs and ys name a file of each in that message ("images",
 * "labels"). On failure *s is freed. */
int sn_shards_open(const char *x, const char *y, const char *xs, const char *ys, sn_shards *s,
                   sn_error *err);
void sn_shards_free(sn_shards *s);

/* Labels or float targets of n samples from yd (ynd dimensions, k values a sample;
 * yint: they were stored as integers), as the NPY reader makes them (data_npy.c);
 * messages start with `where`. */
int sn_labels_from_values(const sn_source *src, const char *where, const double *yd, int ynd,
                          int64_t k, bool yint, int64_t n, sn_dataset *out, sn_error *err);
/* The HDF5 reader that sn_dataset_load calls (sn_hdf5_enable sets it; NULL: none). */
void sn_store_set_hdf5(int (*load)(const sn_source *, sn_dataset *, sn_error *));

#endif
