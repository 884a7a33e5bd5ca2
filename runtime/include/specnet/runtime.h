/* specnet runtime: the ABI of generated code, data sets, checkpoints and the
 * training loop. This library has no LLVM or YAML dependency: ahead-of-time model
 * binaries link only this and OpenBLAS.
 *
 * A worked example (what `specnet train` does, minus printing):
 *
 *   sn_error err = {0};
 *   sn_dataset train;                                // samples in memory or as stored
 *   if (sn_dataset_load(&src, &train, &err)) die(err.msg);
 *   sn_model model = {...};                          // step functions from the JIT
 *   sn_model_alloc(&model);                          // params, grads, opt state, arena
 *   sn_model_init_params(&model, seed);
 *   sn_train(&model, &train, &test, &opts, &err);    // epochs of batches
 *   sn_safetensors_write("model.safetensors", &model, &err);
 *
 * Ownership: a sn_dataset owns its arrays (sn_dataset_free); a sn_model owns its
 * buffers (sn_model_free) but not the step functions or the parameter table, which
 * belong to whoever compiled them. Every function that can fail takes a sn_error and
 * returns non-zero on failure with a one-line message in err->msg; none exits.
 */
#ifndef SPECNET_RUNTIME_H
#define SPECNET_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Errors */

typedef struct sn_error {
  char msg[1024]; /* one line, no "error:" prefix, no trailing newline */
} sn_error;

/* printf into err->msg; returns -1 so callers can `return sn_fail(err, ...)`. */
int sn_fail(sn_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------
 * The seam between compiler and runtime: every generated step function has the
 * type sn_step_fn and takes one sn_step_args. Buffers are in the compiled dtype
 * (float or double) unless stated; N below is `rows`, at most the batch capacity
 * the program was compiled for. */

typedef struct sn_step_args {
  const void *x;        /* (N, input_elems) model input, row-major */
  const int32_t *y;     /* (N, label_elems) class labels in [0, classes): one per sample,
                         * or one per position of a sequence output [N, T, classes] */
  int64_t rows;         /* N: samples in this batch (partial last batch allowed) */
  void *params;         /* (P) all parameters, one flat buffer */
  void *grads;          /* (P) gradients, same layout as params */
  void *opt_state;      /* (S) optimizer state, e.g. Adam m then v */
  void *arena;          /* activations; size from the program */
  int64_t step;         /* optimizer step, 1-based (bias correction) */
  double lr;            /* learning rate for this step, from the schedule */
  uint64_t seed;        /* spec seed (dropout masks) */
  double *loss_sum;     /* out: sum over rows of the per-sample loss */
  double *metric_sums;  /* out: per metric, sum over rows (e.g. correct count) */
  void *out;            /* predict: (N, output_elems) model output */
  /* The generated code reads these fields by position (emit_llvm.c's A_* order,
   * checked by _Static_asserts there): new fields only ever go at the end. */
  const void *t;        /* (N, target_elems) float targets (mse, one-hot, ...) */
  void *state;          /* (Q) non-trainable state: batch-norm running statistics */
} sn_step_args;

typedef void (*sn_step_fn)(const sn_step_args *args);

/* ---------------------------------------------------------------------------
 * Data sets: samples in memory as f32 (csv, synthetic) or as stored in their file
 * (npy, idx), converted per batch; labels as int32, float targets as f32. */

typedef enum sn_dtype_rt { SN_RT_F32 = 0, SN_RT_F64 = 1 } sn_dtype_rt;

typedef enum sn_source_kind {
  SN_SRC_NONE = 0,
  SN_SRC_BUILTIN,   /* mnist | fashion_mnist, split train|test */
  SN_SRC_IDX,       /* images + labels IDX files, raw or .gz */
  SN_SRC_SYNTHETIC, /* blobs | spirals | xor (| linear) */
  SN_SRC_CSV,       /* path: one sample per row, a label column */
  SN_SRC_NPY,       /* images = x .npy, labels = y .npy */
  SN_SRC_TEXT,      /* path: text files, tokenized (data_text.c) */
  SN_SRC_HDF5,      /* path: an HDF5 file; images = x dataset, labels = y dataset */
} sn_source_kind;

typedef enum sn_text_mode {
  SN_TEXT_LM = 0,   /* windows of `context` tokens; the label of each position is the next token */
  SN_TEXT_CLASSIFY, /* one sample per record, labelled by its file or folder name */
} sn_text_mode;

typedef enum sn_tokenizer {
  SN_TOK_BYTES = 0, /* each byte a token: ids 0..255 */
  SN_TOK_CHARS,     /* each UTF-8 character of the training text a token (a table) */
} sn_tokenizer;

/* Where a data set comes from: filled by the spec parser, read by the loader. */
typedef struct sn_source {
  sn_source_kind kind;
  char name[32];     /* builtin set name, or synthetic generator name */
  char split[16];    /* builtin: "train" or "test" */
  char images[4096]; /* idx: path of the images file */
  char labels[4096]; /* idx: path of the labels file */
  int64_t samples;   /* synthetic: number of samples */
  int classes;       /* synthetic: number of classes */
  int features;      /* synthetic: features per sample (default 2) */
  double noise;      /* synthetic: noise level */
  uint64_t seed;     /* synthetic: generator seed (the spec seed + a stream) */
  int64_t limit;     /* keep only the first `limit` samples; 0 = all */
  /* csv */
  char path[4096];    /* the CSV file */
  char label_col[64]; /* label column by header name; "" when by position */
  int label_index;    /* label column by position: 0-based, -1 = last */
  bool header;        /* first row holds column names */
  /* what the loss reads */
  int64_t target_elems; /* what the model's loss reads, set by the driver before loading:
                         * 0 = class labels (y, integers >= 0); k > 0 = k float targets
                         * per sample (t): a csv label column or a float npy y is read as
                         * is, class labels become one-hot rows when k > 1 */
  bool no_labels;       /* features only (predict input): a csv has no label column,
                         * an npy source no y file */
  /* csv class labels given by name (cat, dog): the training set's table, which a
   * test or validation source's names must come from; NULL: the source makes its own */
  const char *const *class_names;
  int n_class_names;
  /* text (data_text.c): path is a file, a folder or a glob pattern */
  sn_text_mode text_mode;
  sn_tokenizer tokenizer;
  int64_t context;  /* lm: tokens per window (the sample) */
  int64_t windows;  /* lm: random windows drawn afresh each epoch; 0: a strided sweep */
  int64_t stride;   /* lm sweep: tokens from one window's start to the next (0: context) */
  int64_t length;   /* classify: tokens per record (truncated, or padded with id 0) */
  double range[2];  /* the part of the text this source reads, as fractions [from, to):
                     * lm by token position, classify by record within each category;
                     * {0, 0} means all of it */
  /* chars: the training set's table, which another source's text must come from;
   * NULL: the source makes its own from its text */
  const uint32_t *chars;
  int n_chars;
  int64_t label_elems; /* class labels per sample the model's loss reads (T for a
                        * sequence output, set by the driver like target_elems; 0 or
                        * 1: one): an integer npy y of shape (n, T) is T labels a sample */
} sn_source;

/* Samples as stored (data_store.c): an NPY or raw IDX file read in place (pread,
 * per batch), or a gzip IDX decompressed once into memory as u8. Refcounted: a
 * set and its views (validation split, eval slices) share one. */
typedef struct sn_store sn_store;

/* Per-feature preprocessing of a set (scale, normalize, standardize composed):
 * value = (float)(((double)(float)stored * mul[f] - sub[f]) / div[f]), f the position
 * along the last sample axis. Applied when a batch is converted, never to x. */
typedef struct sn_pre {
  int64_t features; /* 0: identity (the arrays are NULL) */
  double *mul, *sub, *div;
} sn_pre;

typedef struct sn_dataset {
  int64_t n;             /* samples */
  int rank;              /* per-sample rank as stored (e.g. 2 for 28x28 images) */
  int64_t shape[4];      /* per-sample shape as stored */
  int64_t sample_elems;  /* product of shape */
  float *x;              /* (n, sample_elems) in memory, or NULL: the samples are in store */
  sn_store *store;       /* x == NULL: samples as stored, converted per batch */
  int64_t first;         /* store: this set's sample 0 is the store's sample `first` */
  sn_pre pre;            /* owned; read samples through sn_dataset_get */
  int32_t *y;            /* (n) */
  int classes;           /* 1 + max label */
  char origin[4096];     /* file or generator the samples came from, for messages */
  char label_origin[4096]; /* where the labels came from when not origin (an NPY y,
                              IDX labels, an HDF5 y dataset); "": origin */
  float *t;              /* (n, target_elems) float targets, or NULL (labels only) */
  int64_t target_elems;  /* per sample, 0 when t is NULL */
  /* Class labels given by name in a csv: class k is class_names[k], the distinct
   * names sorted (strcmp), owned by the set that read them; NULL for numbers. */
  char **class_names;
  int n_class_names;
  int64_t label_elems;   /* labels per sample: y is (n, label_elems); 0 means 1 */
  /* A text source's tokens (data_text.c): vocab ids [0, vocab); chars: id first_id + k
   * is the code point chars[k] (sorted), owned; pad_id the id of padding, or -1. */
  int64_t vocab;
  uint32_t *chars;
  int n_chars;
  int first_id;
  int pad_id;
  struct sn_text *text;  /* lm: the token stream the windows are cut from, owned */
  /* The loader's hook for samples that are made afresh each epoch (the random
   * windows of a text lm source): when set, sn_train calls it before an epoch's
   * first batch is staged, with the 1-based epoch; it rewrites x and y in place
   * (the same n) and depends only on the set and the epoch, so a resumed run gets
   * the same samples. NULL: the samples never change. */
  void (*epoch_fill)(const struct sn_dataset *ds, int epoch);
} sn_dataset;

/* Where ds's labels came from, for messages: label_origin, else origin. */
const char *sn_dataset_label_origin(const sn_dataset *ds);

/* Loads a source. Builtin sets are looked up under $SPECNET_DATA, then in the
 * Debian dataset package paths. */
int sn_dataset_load(const sn_source *src, sn_dataset *out, sn_error *err);
/* Reads one IDX file (raw or gzip, detected by magic bytes). Only unsigned-byte
 * files (type 0x08) are accepted. *count is the first dimension (samples), *rank
 * and dims[] the per-sample rest (ndims - 1, at most 4; unused dims[] are 1).
 * *data holds count * prod(dims) bytes, malloc'd: the caller free()s it. Data
 * beyond what the header declares is an error (a sign of a wrong header). */
int sn_idx_read(const char *path, int *rank, int64_t dims[4], uint8_t **data,
                int64_t *count, sn_error *err);
/* The same checks without reading a raw file's data: *data is NULL and the data
 * starts at byte *offset (a gzip file is read, as sn_idx_read). */
int sn_idx_open(const char *path, int *rank, int64_t dims[4], uint8_t **data, int64_t *count,
                int64_t *offset, sn_error *err);
/* Generates a synthetic set (src->kind == SN_SRC_SYNTHETIC); sn_dataset_load calls
 * this. Deterministic in src->seed; balanced classes in shuffled order. */
int sn_dataset_synthetic(const sn_source *src, sn_dataset *out, sn_error *err);
/* A CSV file (src->kind == SN_SRC_CSV; data_csv.c): one sample per row, commas
 * between cells, every cell a finite number (a header row of names when
 * src->header), the label column by name (label_col) or position (label_index,
 * -1 = last), the other columns the features: shape (features). Errors name the
 * file, its line and the column. */
int sn_dataset_csv(const sn_source *src, sn_dataset *out, sn_error *err);
/* NPY files (src->kind == SN_SRC_NPY; data_npy.c): x = src->images, shape (n, ...)
 * (per-sample rank at most 4), y = src->labels, shape (n) integer labels or, for
 * float targets, (n) or (n, k). Format versions 1-3, little-endian |u1 |i1 <u2 <i2
 * <u4 <i4 <u8 <i8 <f2 <f4 <f8, C order. */
int sn_dataset_npy(const sn_source *src, sn_dataset *out, sn_error *err);
/* HDF5 files (src->kind == SN_SRC_HDF5; data_hdf5.c, in the library specnet_hdf5,
 * which links libhdf5): src->path the file, src->images the x dataset's name, shape
 * (n, ...) (rank 2 to 5), src->labels y's, (n) labels or targets or (n, k) targets.
 * Types u8 i8 u16 i16 u32 i32 u64 i64, IEEE f16, f32, f64, any byte order. */
int sn_dataset_hdf5(const sn_source *src, sn_dataset *out, sn_error *err);
/* Lets sn_dataset_load read HDF5 sources (defined in specnet_hdf5, a library of the
 * build tree that the specnet command and the tests link; it is not installed, so
 * programs built against the installed runtime read no HDF5: an HDF5 source is an
 * error there). */
void sn_hdf5_enable(void);
/* Reads one .npy array into f64: *ndim and shape[0..ndim) (ndim <= 8), *data holds
 * the product of the shape, malloc'd; *integer says the dtype was an integer type.
 * At most `limit` rows of the first axis when limit > 0 (shape[0] then says so). */
int sn_npy_read(const char *path, int64_t limit, int *ndim, int64_t shape[8], double **data,
                bool *integer, sn_error *err);
/* Shards: a path field of a source (x, y, images, labels, csv path) holds one path or
 * several, one per line (a YAML list); each may be a glob pattern, whose files come
 * in sorted order. The files in order, expanded; a pattern that matches nothing or
 * an empty list is an error naming it. */
typedef struct sn_paths {
  char **v;
  int n;
} sn_paths;
int sn_paths_expand(const char *list, sn_paths *out, sn_error *err);
void sn_paths_free(sn_paths *p);
/* A path field for messages: the path, or "FIRST (and N more)" for a list. */
const char *sn_paths_label(const char *list, char *buf, size_t cap);
/* What a set holds on disk: its files (shards) and their bytes, 0 for a set in
 * memory; the stored element type of its samples (kind 'u', 'i', 'f'; size bytes;
 * 'f', 4 in memory). */
int sn_dataset_files(const sn_dataset *ds, int64_t *bytes);
void sn_dataset_stored_type(const sn_dataset *ds, char *kind, int *size);
/* Samples [i, i + count) of ds, preprocessed, into out ((count, sample_elems) of
 * dtype): the one conversion every reader uses (batches, statistics, predict). */
void sn_dataset_get(const sn_dataset *ds, int64_t i, int64_t count, sn_dtype_rt dtype, void *out);
/* Asks the CPU to bring sample i's stored bytes towards its caches, where they are in
 * memory (x, or a store held in memory); nothing for samples read from files. The
 * loader asks for the next batch's samples while it stages this one: in a shuffled
 * order each sample is a few cache misses to memory, which a row-by-row copy would
 * otherwise take one after the other. */
void sn_dataset_prefetch(const sn_dataset *ds, int64_t i);
/* Whether batches can read x in place as f32 (in memory, no preprocessing). */
bool sn_dataset_direct(const sn_dataset *ds);
/* A stored set's file still has the size and mtime it had at load and every read
 * was whole (checked before and after each epoch and pass: a file that changed is an
 * error naming it). */
int sn_dataset_check(const sn_dataset *ds, sn_error *err);
/* A view of samples [lo, hi) of ds sharing its storage; pre is borrowed (do not free
 * the view) */
sn_dataset sn_dataset_rows(const sn_dataset *ds, int64_t lo, int64_t hi);
int sn_dataset_scale(sn_dataset *ds, float factor, sn_error *err); /* values *= factor */
void sn_pre_free(sn_pre *p);
int sn_pre_copy(const sn_pre *from, sn_pre *to, sn_error *err);
/* Splits off the last `fraction` of samples into `held` (validation); a text lm set
 * splits its token stream instead, so no held-out text is in a training window. */
int sn_dataset_split(sn_dataset *ds, double fraction, sn_dataset *held, sn_error *err);
/* A text source (src->kind == SN_SRC_TEXT; data_text.c); sn_dataset_load calls it. */
int sn_dataset_text(const sn_source *src, sn_dataset *out, sn_error *err);
/* The last `fraction` of an lm set's tokens as a set of its own (windows swept with
 * stride context); ds keeps the rest and remakes its windows. */
int sn_text_split(sn_dataset *ds, double fraction, sn_dataset *held, sn_error *err);
/* Tokens in an lm set's stream (0 for other sets). */
int64_t sn_text_tokens(const sn_dataset *ds);
/* 0, or an error when src is a text source whose tokenizer is not that of the
 * training text `train` (its ids would mean other tokens). */
int sn_text_same_tokenizer(const sn_source *src, const sn_dataset *train, sn_error *err);
/* The text of token id `id` of a set (a byte, or the UTF-8 of a character) into buf
 * (at least 5 bytes); returns its length, 0 for padding or an unknown id. */
int sn_text_token_utf8(const sn_dataset *ds, int64_t id, char *buf);
/* Preprocessing with per-feature statistics. A feature is a position along the last
 * axis of a sample (a CSV column, an image column, a channel of NHWC images). */
int64_t sn_dataset_features(const sn_dataset *ds); /* length of the last sample axis */
/* mean and std ((features) each, caller's arrays) over every sample and position:
 * the population standard deviation, as scikit-learn's StandardScaler; a constant
 * feature gets std 1 so that it maps to 0. */
int sn_dataset_stats(const sn_dataset *ds, double *mean, double *std, sn_error *err);
/* values = (values - mean) / std, with n = 1 value for all features or n = features
 * values (composed into ds->pre). A std that is not > 0 is an error. */
int sn_dataset_normalize(sn_dataset *ds, const double *mean, const double *std, int64_t n,
                         sn_error *err);
/* Float targets from class labels: k == 1 gives t = y, k > 1 one-hot rows (a label
 * >= k is an error), one row per label (label_elems rows per sample). Replaces any t. */
int sn_dataset_onehot(sn_dataset *ds, int64_t k, sn_error *err);
void sn_dataset_free(sn_dataset *ds);

/* ---------------------------------------------------------------------------
 * Counter-based random numbers: the same (seed, stream, counter) always gives the
 * same value, so any pass can regenerate any number. */

uint64_t sn_rand_u64(uint64_t seed, uint64_t stream, uint64_t counter);
double sn_rand_uniform(uint64_t seed, uint64_t stream, uint64_t counter); /* [0,1) */
/* Standard normal, Box-Muller from both 64-bit words of the counter's block (so
 * do not mix uniform and normal draws on one (seed, stream)). */
double sn_rand_normal(uint64_t seed, uint64_t stream, uint64_t counter);
/* Fills idx with a permutation of 0..n-1 (overwriting it): Fisher-Yates driven by
 * (seed, stream), element i's swap drawn from counter i. */
void sn_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream);
/* A block shuffle: the n samples cut into blocks of `block` consecutive ones (the
 * last maybe shorter), the blocks in the order sn_shuffle gives them, each block's
 * samples in order; for storage where reading far apart is slow. block <= 1 is
 * sn_shuffle. */
void sn_shuffle_blocks(int64_t *idx, int64_t n, int64_t block, uint64_t seed, uint64_t stream);
/* Stream domains: independent uses of one seed add their own index to one of these
 * so they never draw the same numbers (e.g. SN_STREAM_INIT + parameter index). */
#define SN_STREAM_INIT (UINT64_C(1) << 60)    /* + parameter index */
#define SN_STREAM_SHUFFLE (UINT64_C(2) << 60) /* + epoch */
#define SN_STREAM_DROPOUT (UINT64_C(3) << 60) /* + layer or op index */
#define SN_STREAM_SYNTH (UINT64_C(4) << 60)   /* synthetic data generators */
#define SN_STREAM_SWEEP (UINT64_C(5) << 60)   /* random sweeps: + axis */
#define SN_STREAM_TEXT (UINT64_C(7) << 60)    /* text lm windows: + epoch; record order */
#define SN_STREAM_GENERATE (UINT64_C(8) << 60) /* generation: + nothing; counter = token */

/* ---------------------------------------------------------------------------
 * A compiled model as the runtime sees it. */

typedef enum sn_init_kind {
  SN_INIT_ZEROS = 0,
  SN_INIT_ONES,
  SN_INIT_GLOROT_UNIFORM,
  SN_INIT_GLOROT_NORMAL,
  SN_INIT_HE_UNIFORM,
  SN_INIT_HE_NORMAL,
  SN_INIT_NORMAL, /* std in init_arg */
  SN_INIT_UNIFORM, /* uniform in [-init_arg, init_arg] (Keras's embeddings) */
} sn_init_kind;

typedef struct sn_param_info {
  char name[128];      /* "dense1.weight", as saved in safetensors */
  int rank;
  int64_t shape[4];    /* PyTorch layout, e.g. (out, in) for dense */
  int64_t offset;      /* elements from the start of the flat buffer */
  int64_t count;       /* elements */
  sn_init_kind init;
  double init_arg;     /* std for SN_INIT_NORMAL */
  int64_t fan_in, fan_out;
  int buffer;          /* 0: trainable, in params; 1: state (running statistics) */
} sn_param_info;

typedef struct sn_model {
  /* Filled by the compiler (or an AOT object): */
  sn_dtype_rt dtype;
  int64_t batch_capacity;    /* max rows per call */
  int64_t input_elems;       /* per sample */
  int64_t output_elems;      /* per sample */
  int64_t param_count;       /* P */
  int64_t opt_state_count;   /* S */
  int64_t arena_bytes;
  int n_params;
  const sn_param_info *params_info;
  int n_metrics;
  const char *const *metric_names; /* e.g. {"accuracy"} */
  sn_step_fn grad_step;   /* forward + backward: fills grads, loss, metrics */
  sn_step_fn update;      /* optimizer update from grads (one fused pass) */
  sn_step_fn train_step;  /* grad_step then update */
  sn_step_fn eval_step;   /* forward + loss + metrics */
  sn_step_fn predict;     /* forward to model output */
  /* Owned buffers, made by sn_model_alloc: */
  void *params, *grads, *opt_state, *arena;
  /* non-trainable state and float targets */
  int64_t state_count;    /* Q: non-trainable state (params_info with buffer 1) */
  int64_t target_elems;   /* per sample float targets the loss reads; 0: int labels */
  void *state;            /* owned, made by sn_model_alloc */
  int64_t label_elems;    /* int labels per sample the loss reads (T for a sequence
                           * output [N, T, C]); 0 means 1 */
  int64_t classes;        /* int labels are in [0, classes): the output's last axis;
                           * 0 means output_elems */
} sn_model;

/* Allocates params, grads (param_count), opt_state (opt_state_count, in the model
 * dtype) and the arena (arena_bytes), 64-byte aligned and zeroed, after checking the
 * sizes and that every params_info entry is a slice of params (count = product of
 * shape). */
int sn_model_alloc(sn_model *m, sn_error *err);
void sn_model_free(sn_model *m);
/* Initializes every parameter from its sn_param_info; zeroes grads and optimizer
 * state. Element e of parameter i draws from (seed, SN_STREAM_INIT + i, e), so a
 * parameter's values do not depend on the others. Normal initializers are plain
 * (untruncated) normals, as PyTorch's xavier_normal_ / kaiming_normal_. */
void sn_model_init_params(sn_model *m, uint64_t seed);

/* ---------------------------------------------------------------------------
 * Checkpoints in safetensors: one tensor per parameter, named and shaped as in
 * sn_param_info, stored in the model's dtype. Writes are atomic (temp + rename). */

int sn_safetensors_write(const char *path, const sn_model *m, sn_error *err);
/* Reads every parameter of m from path; names and shapes must match; F32 or F64
 * tensors are converted to the model's dtype (F16 and BF16 are accepted too). Extra
 * tensors in the file are ignored. The whole header is checked before any parameter
 * is touched. */
int sn_safetensors_read(const char *path, sn_model *m, sn_error *err);

/* ---------------------------------------------------------------------------
 * Training and evaluation. */

typedef struct sn_eval_result {
  double loss;        /* mean per-sample loss */
  double metrics[8];  /* per metric, mean per sample */
  int64_t samples;
  double seconds;
} sn_eval_result;

typedef struct sn_epoch_record {
  int epoch;              /* 1-based */
  double loss;            /* mean over the epoch's batches */
  double metrics[8];
  double lr;
  double seconds;         /* training time of the epoch */
  double eval_seconds;
  double samples_per_second;
  bool has_val, has_test;
  sn_eval_result val, test;
  double data_wait_seconds; /* of `seconds`, the time the loop waited for its batches:
                             * staging that the background thread did not hide */
} sn_epoch_record;

typedef enum sn_schedule_kind {
  SN_SCHED_CONSTANT = 0,
  SN_SCHED_STEP,        /* lr * gamma^floor(epoch / every) */
  SN_SCHED_COSINE,      /* linear warmup, then cosine to 0 over the remaining epochs */
  SN_SCHED_EXPONENTIAL, /* lr * gamma^epoch */
} sn_schedule_kind;

typedef struct sn_schedule {
  sn_schedule_kind kind;
  int every;            /* step: epochs between decays */
  double gamma;         /* step, exponential: decay factor */
  double warmup_epochs; /* cosine: epochs of linear warmup (may be fractional) */
} sn_schedule;

typedef struct sn_early_stopping {
  bool enabled;
  char monitor[32];     /* "val_loss", "val_accuracy", "loss", ... */
  int patience;         /* epochs without improvement before stopping */
  double min_delta;     /* smallest change that counts as an improvement */
  bool restore_best;    /* put back the weights of the best epoch */
} sn_early_stopping;

/* What sn_train says while it runs goes through the caller's functions: the library
 * prints nothing itself. sn_terminal_reporter() (specnet/terminal.h, outside this
 * library) prints what `specnet train` shows. */
typedef struct sn_batch_progress {
  int epoch, epochs;
  int64_t batch, batches;     /* batches done, of the epoch's */
  int64_t samples;            /* samples done */
  double loss_mean;           /* mean of the batch means so far */
  const double *metric_total; /* (K) per metric, its sum over the samples so far */
  double elapsed;             /* seconds since the epoch began */
} sn_batch_progress;

typedef struct sn_reporter {
  /* with opts.progress: about ten times a second, and after the epoch's last batch */
  void (*batch)(void *ctx, const sn_model *m, const sn_batch_progress *p);
  /* with opts.progress: the epoch's batches are over, or training stops in them */
  void (*batches_done)(void *ctx);
  /* unless opts.quiet: each finished epoch (show_lr: the schedule is not constant) */
  void (*epoch)(void *ctx, const sn_model *m, int epochs, const sn_epoch_record *rec, bool show_lr);
  /* unless opts.quiet: a line of its own, without its newline (resuming, weights
   * that drifted apart between ranks, how early stopping ended) */
  void (*note)(void *ctx, const char *line);
  void *ctx;
} sn_reporter;

typedef struct sn_train_opts {
  int epochs;
  int64_t batch_size;
  bool shuffle;
  int64_t shuffle_block; /* > 1: shuffle blocks of this many consecutive samples (the
                          * samples of a block stay in order; sn_shuffle_blocks) */
  uint64_t seed;
  double learning_rate;
  const char *metrics_path;  /* metrics.jsonl to write, or NULL */
  bool progress;             /* report batches (a progress line on a terminal) */
  bool quiet;                /* report no epoch summaries and no notes */
  /* Called after each epoch (may be NULL). */
  void (*on_epoch)(const sn_epoch_record *rec, void *ctx);
  void *on_epoch_ctx;
  sn_schedule schedule;      /* zeroed: constant */
  sn_early_stopping early;   /* zeroed: off */
  /* the run record */
  const char *csv_path;      /* metrics.csv to write (the columns of metrics.jsonl), or NULL */
  const char *curves_path;   /* curves.svg to write after each epoch, or NULL */
  const char *title;         /* run name for curves.svg, or NULL */
  bool no_prefetch;          /* stage batches on the calling thread (default: a
                              * background thread stages the next batch) */
  struct sn_train_result *result; /* filled at the end when not NULL */
  /* data-parallel training and resuming (docs/distributed.md) */
  const struct sn_comm *comm; /* NULL (or size 1): one process. Else every rank calls
                               * sn_train with the same model, data and options; each
                               * takes its shard of every batch, gradients are summed
                               * between grad_step and update; rank 0 alone writes the
                               * record files and checkpoints and prints */
  const char *checkpoint_path; /* model.safetensors, written (atomically, rank 0) after
                                * every epoch and at the end, or NULL */
  const char *state_path;      /* train_state.safetensors: what --resume needs besides the
                                * weights (epochs done, optimizer step and state, the
                                * epoch records, early-stopping state); written after
                                * checkpoint_path, or NULL */
  bool resume;                 /* continue the run saved in checkpoint_path + state_path:
                                * rank 0 reads them, every rank gets the same; the record
                                * files keep the epochs done and are appended to */
  const sn_reporter *reporter; /* NULL: sn_train prints nothing */
} sn_train_opts;

/* How a training run ended. */
typedef struct sn_train_result {
  int epochs_run;       /* epochs that finished */
  bool stopped_early;   /* early stopping ended the run before opts.epochs */
  int best_epoch;       /* early stopping: epoch with the best monitored value, else 0 */
  double best_value;    /* that value */
  bool restored;        /* the weights (and state) of best_epoch were put back */
} sn_train_result;

/* The learning rate of optimizer step `step` (1-based) with `steps_per_epoch`
 * batches per epoch and `epochs` epochs in all (train.c documents the formulas). */
double sn_schedule_lr(const sn_schedule *s, double base_lr, int64_t step, int64_t steps_per_epoch,
                      int epochs);

int sn_evaluate(sn_model *m, const sn_dataset *ds, sn_eval_result *out, sn_error *err);
/* A metric as reported from the mean of its per-sample values: perplexity is exp of
 * the mean cross-entropy (not the mean of per-sample exps); the others the mean. */
double sn_metric_value(const char *name, double mean);
/* The model output for every sample of ds ((n, output_elems) into out, row-major,
 * as double), through m->predict in batches of batch_capacity. Needs x only. */
int sn_predict_all(sn_model *m, const sn_dataset *ds, double *out, sn_error *err);
int sn_train(sn_model *m, const sn_dataset *train, const sn_dataset *val,
             const sn_dataset *test, const sn_train_opts *opts, sn_error *err);

/* Writes curves.svg (report.c): one panel per quantity (loss, each metric, and the
 * learning rate when it changes), epochs along x, training solid, validation
 * solid, test dashed; best_epoch > 0 draws a marker line there. Atomic write. */
int sn_curves_svg(const char *path, const char *title, const sn_epoch_record *recs, int n,
                  int n_metrics, const char *const *metric_names, int best_epoch, sn_error *err);

/* s as XML (SVG, HTML) text: < > & " as entities, other control characters dropped
 * (line breaks and tabs kept with keep_space). */
void sn_xml_text(FILE *f, const char *s, bool keep_space);
/* s as a JSON string (report.c): in quotes, with \" and \\ escaped and control
 * characters as \u00XX. */
void sn_json_string(FILE *f, const char *s);

/* ---------------------------------------------------------------------------
 * A run's data (data_prepare.c): the pipeline `specnet train` and training
 * binaries share. */

typedef struct sn_data_config {
  sn_source train, test, validation; /* kind SN_SRC_NONE when absent */
  double validation_split;           /* fraction held out of train when no validation source */
  double scale;                      /* x *= scale first (1: none) */
  int n_norm;                        /* then (x - mean) / std: one value, or one per feature */
  double norm_mean[64], norm_std[64];
  bool standardize;                  /* then standardize with the training set's statistics */
  bool standardize_targets;          /* float targets to mean 0, std 1 per column (train's) */
} sn_data_config;

typedef struct sn_data {
  sn_dataset train, val, test;
  bool has_val, has_test;
  /* standardize: the training set's statistics, (std_n) each, applied to every set */
  double *std_mean, *std_std;
  int64_t std_n;
  /* standardize_targets: train's per-column target statistics, (tgt_n) each; the
   * model learns (t - mean) / std, so its outputs are mapped back by y * std + mean */
  double *tgt_mean, *tgt_std;
  int64_t tgt_n;
} sn_data;

typedef enum sn_data_part { SN_PART_TRAIN, SN_PART_VALIDATION, SN_PART_TEST, SN_PART_PREPROCESS } sn_data_part;

/* Loads and prepares every set for model m (its input size, labels or float
 * targets, output range). On error *part says which source (or the preprocessing)
 * the message is about. */
int sn_data_prepare(const sn_data_config *c, const sn_model *m, sn_data *d, sn_data_part *part, sn_error *err);
/* The same preprocessing on another set (prediction inputs), with d's statistics. */
int sn_data_preprocess(const sn_data_config *c, const sn_data *d, sn_dataset *ds, sn_error *err);
void sn_data_free(sn_data *d);

/* ---------------------------------------------------------------------------
 * Generation (generate.c): a language model's tokens one at a time, from a predict
 * step over windows of `context` ids whose output is [context, vocab] scores. */

typedef struct sn_sampler {
  double temperature; /* 0: the arg-max; else softmax(log p / temperature) */
  int64_t top_k;      /* > 0: draw among the k likeliest only */
  uint64_t seed;      /* the same seed, the same tokens */
} sn_sampler;

/* Incremental decoding (a key/value cache, decode.c): a causal language model's
 * layers as a list of ops over one position, which the compiler writes
 * (sn_decoder_plan) when every layer is one the cache can run; the generator then
 * computes only the new token's row through each layer, reading the keys and
 * values of the positions before it from the cache. Plain data (no pointers), so
 * an AOT executable carries it as a blob. f32 models only. */
enum { SN_DEC_MAX_OPS = 256 };
typedef enum sn_dec_kind {
  SN_DEC_EMBED = 1, /* out = w[id] (the token) */
  SN_DEC_POSITION,  /* out = in + w[p] */
  SN_DEC_LAYER_NORM,
  SN_DEC_DENSE,     /* out = act(w in + b): w (width, in_width) as nn.Linear */
  SN_DEC_ATTENTION, /* causal multi-head: w, b in_proj; w2, b2 out_proj */
  SN_DEC_ADD,
  SN_DEC_MULTIPLY,
  SN_DEC_ACT /* out = act(in) (activation and dropout layers) */
} sn_dec_kind;
typedef enum sn_dec_act {
  SN_DEC_LINEAR = 0,
  SN_DEC_RELU,
  SN_DEC_SIGMOID,
  SN_DEC_TANH,
  SN_DEC_GELU,
  SN_DEC_GELU_TANH,
  SN_DEC_SOFTMAX
} sn_dec_act;
typedef struct sn_dec_op {
  int32_t kind, act;
  int32_t in[2];            /* earlier ops' outputs (op i writes slot i) */
  int64_t width, in_width;  /* its output's and its (first) input's */
  int64_t heads;            /* attention */
  int64_t w, b, w2, b2;     /* offsets (elements) into the parameters; -1: none */
  int64_t cache;            /* attention: its keys then values, [context, width] each, in the cache */
  double eps;               /* layer_norm */
} sn_dec_op;
typedef struct sn_decoder {
  int32_t version; /* 1; 0: no decoder (every token runs the full forward pass) */
  int32_t n_ops;   /* the last op's output is the model's: vocab scores */
  int64_t context, vocab, width; /* width: the widest op output */
  int64_t cache_elems;
  sn_dec_op ops[SN_DEC_MAX_OPS];
} sn_decoder;
/* floats of work space sn_decoder_step needs */
int64_t sn_decoder_work_elems(const sn_decoder *d);
/* Token id at position p, given the cache rows of positions 0..p-1: writes row p
 * of every attention layer's keys and values and the vocab scores to out. */
void sn_decoder_step(const sn_decoder *d, const float *params, float *cache, float *work, int32_t id, int64_t p,
                     float *out);

typedef struct sn_generator {
  /* set by the caller before sn_generator_init */
  sn_step_fn predict;
  sn_step_args args;  /* params, state, arena (x, out and rows are set per token) */
  int64_t context;    /* ids per window: the model input [context] */
  int64_t vocab;      /* scores per position: the output [context, vocab] */
  bool f64;           /* the model's dtype */
  bool probs;         /* the output is probabilities (a softmax), else logits */
  int64_t tokens;     /* ids that have text (sn_vocab_tokens): draws are among
                         [0, tokens); 0: every id of vocab */
  const sn_decoder *dec; /* NULL (or version 0): a full forward pass per token; else
                            the key/value cache while the text fits the window */
  /* owned: buffers allocated once, the text's last `context` ids */
  void *x, *y;
  double *score;
  int32_t *order, *window;
  int64_t filled, produced;
  float *cache, *work; /* the decoder's */
  int64_t cached;      /* positions whose keys and values are in the cache */
  bool slid;           /* the window has slid: the cache no longer applies */
} sn_generator;

/* The text of the tokens: bytes (chars NULL: id = byte) or a sorted table of code
 * points (id first_id + k is chars[k], written as UTF-8). */
typedef struct sn_vocab {
  const uint32_t *chars;
  int n_chars, first_id;
} sn_vocab;

int sn_generator_init(sn_generator *g, sn_error *err);
/* Appends the ids of text (UTF-8 under a chars table): an error names the first
 * character the vocabulary lacks (or an id >= g->vocab), or invalid UTF-8. */
int sn_generator_push_text(sn_generator *g, const sn_vocab *v, const char *text, sn_error *err);
/* The bytes of token id (at most 4, not terminated); 0 for an id outside v. */
int sn_token_text(const sn_vocab *v, int32_t id, char out[4]);
/* The id of code point cp (a byte under bytes), or -1. */
int32_t sn_vocab_id(const sn_vocab *v, uint32_t cp);
/* How many ids have text: ids [0, n) (256 under bytes). */
int64_t sn_vocab_tokens(const sn_vocab *v);
/* Appends a token of the prompt (or text chosen outside). */
void sn_generator_push(sn_generator *g, int32_t id);
/* The next token's log-probabilities into g->score (an empty text starts from id
 * 0): the full forward pass, or the key/value cache (g->dec). No allocation. */
void sn_generator_scores(sn_generator *g);
/* sn_generator_scores, then draws the next token, appends and returns it. */
int32_t sn_generator_next(sn_generator *g, const sn_sampler *s);
void sn_generator_free(sn_generator *g);

/* Creates a folder and its parents (mkdir -p); -1 with errno set on failure. */
int sn_mkdirs(const char *path);
/* Whether path ends in suffix (lower case), ignoring the case of path: "X.NPY" is
 * an .npy file. How every command tells input formats apart. */
bool sn_path_has_suffix(const char *path, const char *suffix);
/* A command-line count: val whole decimal digits (no sign, space or suffix) for a
 * number in [lo, hi], into *out; false where it is not. How the model and training
 * binaries read --threads, --epochs, --seed, --tokens and --top-k. */
bool sn_parse_count(const char *val, unsigned long long lo, unsigned long long hi, unsigned long long *out);

/* The thread pool (pool.c) that runs the GEMMs and the optimizer update of a
 * step. sn_set_threads sets its threads, the caller's included (OpenBLAS then runs
 * one thread inside each); call it between steps, not during one. Until it is
 * called the pool takes SPECNET_NUM_THREADS, OPENBLAS_NUM_THREADS or
 * OMP_NUM_THREADS, else the CPUs this process may run on. */
void sn_set_threads(int n);
int sn_threads(void);
int sn_cpus(void); /* the CPUs this process may run on */
typedef void (*sn_task_fn)(void *ctx, int64_t lo, int64_t hi);
/* fn(ctx, lo, hi) over [0, count) in parts (a few per thread) rounded to grain,
 * which the threads claim in turn; serial when called from inside a task */
void sn_par_for(sn_task_fn fn, void *ctx, int64_t count, int64_t grain);
/* The optimizer update of a step (generated code calls it): fn(ctx, lo, hi) on ranges
 * of the count parameters. split: nsplit triples {offset, rows, cols} (sorted by
 * offset) of the weights whose gradient is an A^T B product the pool cuts by rows
 * (a dense layer's weight above SN_PAR_GEMM_MIN multiply-adds): thread t updates the
 * rows its share of that product computed, and of the forward X W^T, so a weight, its
 * gradient and the optimizer's moments stay in the cache of the core that uses them.
 * The other parameters go to the calling thread when there are few of them (their
 * products run there), else in one contiguous run per thread. */
void sn_par_update(sn_task_fn fn, void *ctx, int64_t count, const int64_t *split, int nsplit);
/* Below this many multiply-adds a product runs on the calling thread: the data a
 * second core would need costs more to move there than it saves (a dense layer of
 * 128 x 128 at batch 32, 524 K, ran faster serially on Zen 5). */
#define SN_PAR_GEMM_MIN ((int64_t)1 << 20)
/* The rows of a product's parts, and so of the update's: a multiple of this */
#define SN_PAR_ROW_GRAIN 8
/* C = op(A) op(B), row-major, alpha 1, beta 0; ta, tb: CblasNoTrans or CblasTrans */
void sn_par_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc);
void sn_par_dgemm(int ta, int tb, int M, int N, int K, const double *A, int lda, const double *B, int ldb,
                  double *C, int ldc);
/* count products C_i = op(A_i) op(B_i) (as sn_par_sgemm), operand i at A + i sa
 * (elements; the same for B and C): attention's per-sample, per-head products,
 * spread over the pool a product at a time */
void sn_par_sgemm_batched(int ta, int tb, int M, int N, int K, const float *A, int lda, int64_t sa, const float *B,
                          int ldb, int64_t sb, float *C, int ldc, int64_t sc, int64_t count);
void sn_par_dgemm_batched(int ta, int tb, int M, int N, int K, const double *A, int lda, int64_t sa, const double *B,
                          int ldb, int64_t sb, double *C, int ldc, int64_t sc, int64_t count);
/* The scans of the recurrent layers (recurrent.c), called by generated code: N
 * samples, T steps, H units, arrays [N, T, width] row-major. LSTM: xw [N, T, 4H]
 * (x W_ih^T + both biases), whh [4H, H] -> out [N, T, 6H] (h, c, gates i f g o);
 * its gradient from dout [N, T, D] (the gradient of h in the first H of each row)
 * to dxw [N, T, 4H]. GRU: xw [N, T, 3H] (x W_ih^T + b_ih), whh [3H, H], bhh [3H]
 * -> out [N, T, 5H] (h, r, z, n, W_hn h + b_hn); its gradient to [N, T, 6H] (of xw,
 * then of W_hh h + b_hh). mask [N, T] (or NULL): 0 at a padded step, where the
 * state carries over unchanged. The _cblas_ variants (the same math, a plain
 * cblas GEMM instead of the pool's) are what `specnet build --lib` archives hold. */
#define SN_SCAN_DECLS(SFX, REAL)                                                                                     \
  void sn_lstm_##SFX(int64_t N, int64_t T, int64_t H, const REAL *xw, const REAL *whh, const REAL *mask, REAL *out); \
  void sn_lstm_grad_##SFX(int64_t N, int64_t T, int64_t H, int64_t D, const REAL *dout, const REAL *out,             \
                          const REAL *whh, const REAL *mask, REAL *dxw);                                              \
  void sn_gru_##SFX(int64_t N, int64_t T, int64_t H, const REAL *xw, const REAL *whh, const REAL *bhh,               \
                    const REAL *mask, REAL *out);                                                                     \
  void sn_gru_grad_##SFX(int64_t N, int64_t T, int64_t H, int64_t D, const REAL *dout, const REAL *out,              \
                         const REAL *whh, const REAL *mask, REAL *dx);
SN_SCAN_DECLS(f32, float)
SN_SCAN_DECLS(f64, double)
SN_SCAN_DECLS(cblas_f32, float)
SN_SCAN_DECLS(cblas_f64, double)
#undef SN_SCAN_DECLS
/* Implicit-GEMM convolutions (conv_gemm.c), called by generated code: geo = {n,
 * H, W, C, KH, KW, SH, SW, PT, PL, DH, DW, OH, OW, F} (n the batch's rows; PT, PL
 * the top and left padding; DH, DW the dilation); x [n, H, W, C], w [K, F] with K =
 * KH KW C in the order (kh, kw, c), y and dy [n, OH, OW, F]. conv_gemm: y =
 * patches(x) w, a tile of output pixels at a time (the patches are never in
 * memory); conv_gemm_wgrad: dw [K, F] = patches(x)^T dy, the rows in `parts` fixed
 * parts (the same bits for any thread count), scratch parts K F elements;
 * conv_gemm_dgrad: dx [n, H, W, C] = col2im(dy wt), wt [F, K] (w transposed), a
 * tile of dy's rows at a time, the threads taking whole samples. The
 * _cblas_ variants (serial, OpenBLAS on each tile) are what `specnet build --lib`
 * archives hold. */
enum { SN_CONV_GEMM_MAX_K = 1024 }; /* the longest patch K they take (a tile on the stack) */
#define SN_CONV_GEMM_DECLS(SFX, REAL)                                                              \
  void sn_conv_gemm_##SFX(const int64_t *geo, const REAL *x, const REAL *w, REAL *y);              \
  void sn_conv_gemm_wgrad_##SFX(const int64_t *geo, const REAL *dy, const REAL *x, int64_t parts,  \
                                REAL *scratch, REAL *dw);                                          \
  void sn_conv_gemm_dgrad_##SFX(const int64_t *geo, const REAL *dy, const REAL *wt, REAL *dx);
SN_CONV_GEMM_DECLS(f32, float)
SN_CONV_GEMM_DECLS(f64, double)
SN_CONV_GEMM_DECLS(cblas_f32, float)
SN_CONV_GEMM_DECLS(cblas_f64, double)
#undef SN_CONV_GEMM_DECLS
/* Which small-batch f32 GEMM kernels sn_par_sgemm uses where the batch side is at
 * most 64: "avx512", "avx2", or "none" (all products through OpenBLAS). Chosen once
 * per process: the best this CPU has, capped by SPECNET_CPU (x86-64-v3: avx2;
 * x86-64-v2, x86-64: none); SPECNET_GEMM_KERNELS=avx2|avx512 picks one of those,
 * SPECNET_SMALL_GEMM=0 none. */
const char *sn_small_gemm_variant(void);
double sn_now(void); /* monotonic seconds */

/* ---------------------------------------------------------------------------
 * Data-parallel training (docs/distributed.md). The runtime does not depend on MPI:
 * sn_train takes the collectives it needs as callbacks (the specnet command
 * implements them with MPI in cli/dist_mpi.c; tests/test_train.c with threads).
 * Every rank calls the same collectives in the same order. A callback returns 0, or
 * non-zero when the communication failed (sn_train then fails; the ranks may be out
 * of step, so the caller should abort the job). */

typedef struct sn_comm {
  int rank;  /* this process, 0 .. size-1 */
  int size;  /* ranks; 1 behaves exactly as no comm */
  void *ctx; /* passed to every callback */
  /* In place over n elements: every rank ends with the elementwise sum (max). */
  int (*sum_f32)(void *ctx, float *buf, int64_t n);
  int (*sum_f64)(void *ctx, double *buf, int64_t n);
  int (*max_f64)(void *ctx, double *buf, int64_t n);
  /* bytes of buf from rank root to every rank */
  int (*bcast)(void *ctx, void *buf, int64_t bytes, int root);
} sn_comm;

/* Stream domain of the per-rank dropout seeds: rank r > 0 passes the step functions
 * seed ^ sn_rand_u64(seed, SN_STREAM_RANK, r), so shards draw independent masks. */
#define SN_STREAM_RANK (UINT64_C(6) << 60)

/* A collective: the lowest rank whose `failed` is true, -1 when none is, -2 when the
 * communication failed. comm NULL: 0 or -1. Used at the points where one rank can
 * fail alone (its data, its files), so that every rank stops together. */
int sn_comm_first_failed(const sn_comm *comm, bool failed);


#ifdef __cplusplus
}
#endif
#endif
