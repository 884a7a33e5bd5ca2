/* The spec as the compiler sees it: a YAML tree that keeps every node's position
 * (yaml_tree.c), diagnostics that point into it (diag.c), and the typed, checked
 * spec made from it (parse_spec.c). Nothing here knows about IR or LLVM. */
#ifndef SPECNET_SPEC_H
#define SPECNET_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "specnet/compiler.h"
#include "specnet/runtime.h"
#include "specnet/yaml.h"

/* printf into buf (len bytes); returns -1, so that code that reports into its
 * caller's buffer (the op table's shape rules, sn_decoder_plan) can write
 * `return sn_fail_buf(err, len, ...)` (diag.c). */
int sn_fail_buf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------------
 * The typed spec (parse_spec.c) */

/* The activations, from acts.def. */
typedef enum sn_act {
#define ACTDEF(id, name, op, grad_op, from, option, dflt) SN_ACT_##id,
#include "acts.def"
#undef ACTDEF
  SN_ACT_COUNT
} sn_act;

typedef enum sn_layer_kind {
  SN_LAYER_FLATTEN = 0,
  SN_LAYER_DENSE,
  SN_LAYER_ACTIVATION, /* an activation written as a layer: `- relu` */
  SN_LAYER_CONV2D,
  SN_LAYER_MAX_POOL2D,
  SN_LAYER_AVG_POOL2D,
  SN_LAYER_GLOBAL_AVG_POOL2D,
  SN_LAYER_RESHAPE,
  SN_LAYER_DROPOUT,
  SN_LAYER_BATCH_NORM,
  SN_LAYER_LAYER_NORM,
  SN_LAYER_EMBEDDING,
  SN_LAYER_ADD,
  SN_LAYER_CONCAT,
  SN_LAYER_MULTIPLY,
  /* sequences [T, D] */
  SN_LAYER_POSITION_EMBEDDING,
  SN_LAYER_ATTENTION,
  /* sequences [N, T, C] */
  SN_LAYER_CONV1D,
  SN_LAYER_GLOBAL_AVG_POOL1D,
  SN_LAYER_GLOBAL_MAX_POOL1D,
  SN_LAYER_LSTM,
  SN_LAYER_GRU,
} sn_layer_kind;

typedef enum sn_padding { SN_PAD_VALID = 0, SN_PAD_SAME } sn_padding;

typedef struct sn_layer_spec {
  sn_layer_kind kind;
  char name[64];      /* `name:` or the default "dense1", "flatten1", ... */
  sn_loc loc;         /* the layer's list item */
  int units;          /* dense */
  sn_act activation;  /* dense, activation layer */
  bool use_bias;      /* dense; default true */
  sn_init_kind kernel_init; /* default glorot_uniform */
  double kernel_init_arg;
  sn_init_kind bias_init;   /* default zeros */
  double bias_init_arg;
  /* graph form: the layers whose outputs this one takes, always filled by the
   * parser: `inputs: [a, b]` as written, or else the previous layer's name ("input",
   * the model input, for the first layer; input_locs[0] is then the layer's loc). */
  int n_inputs;
  char inputs[8][64];
  sn_loc input_locs[8];
  double alpha;              /* leaky_relu (0.2), elu (1.0): as `activation:` or layer */
  /* conv2d (NHWC), pools */
  int filters;               /* conv2d */
  int kernel_size[2];        /* conv2d: `kernel_size: 3` or `[3, 3]` */
  int pool_size[2];          /* pools: default [2, 2] */
  int strides[2];            /* default [1, 1] (conv2d), pool_size (pools) */
  sn_padding padding;        /* default valid */
  /* reshape */
  int target_rank;
  int64_t target_shape[4];   /* per sample; one entry may be -1 (inferred) */
  double rate;               /* dropout: fraction dropped, [0, 1) */
  double momentum;           /* batch_norm: running statistics (0.99) */
  double epsilon;            /* batch_norm, layer_norm (1e-3, as Keras) */
  int vocab, dim;            /* embedding: input ids in [0, vocab), dim per id */
  int axis;                  /* concat: per-sample axis, -1 = last (default) */
  /* attention (dropout in rate, use_bias); position_embedding has kernel_init */
  int heads;                 /* required; divides the width D */
  sn_loc heads_loc;          /* where heads is written, for that error */
  bool causal;               /* mask keys after the query (default false) */
  /* conv1d ([N, T, C]): kernel_size[1], strides[1] (kernel_size[0] = strides[0] = 1,
     the [N, 1, T, C] view it runs as), padding, and the distance between taps */
  int dilation;              /* default 1 */
  bool return_sequences;     /* lstm, gru (units): h of every step [T, units], or the last [units] */
} sn_layer_spec;

typedef enum sn_loss_kind {
  SN_LOSS_SPARSE_CCE = 0, /* int labels */
  SN_LOSS_CCE,            /* one-hot (or soft) float targets */
  SN_LOSS_BCE,            /* float targets in [0, 1], one per output */
  SN_LOSS_MSE,
  SN_LOSS_MAE,
  SN_LOSS_HUBER,          /* delta: huber_delta (1.0) */
} sn_loss_kind;
typedef enum sn_opt_kind { SN_OPT_ADAM = 0, SN_OPT_ADAMW, SN_OPT_SGD, SN_OPT_RMSPROP } sn_opt_kind;
typedef enum sn_metric_kind {
  SN_METRIC_ACCURACY = 0,
  SN_METRIC_TOP_K,       /* top_k_accuracy, k in metric_k (default 5) */
  SN_METRIC_MSE,
  SN_METRIC_MAE,
  SN_METRIC_PERPLEXITY,     /* exp of the mean token cross-entropy (the runtime takes the exp) */
  SN_METRIC_BITS_PER_TOKEN, /* the mean token cross-entropy / ln 2 */
} sn_metric_kind;

typedef struct sn_data_spec {
  sn_source train, test, validation; /* kind SN_SRC_NONE when absent */
  sn_loc train_loc, test_loc, validation_loc;
  double validation_split;           /* 0 when absent */
  double scale;                      /* preprocess scale; 1 when absent */
  /* preprocess: normalize (x - mean) / std with given values (one, or one per
   * feature of the last axis), and/or standardize with statistics of train */
  int n_norm;
  double norm_mean[64], norm_std[64];
  bool standardize;
  bool standardize_targets; /* float targets to mean 0, std 1 (train's statistics) */
  sn_loc standardize_targets_loc;
  sn_loc preprocess_loc;
} sn_data_spec;

typedef struct sn_spec {
  const char *path;      /* owned */
  sn_node *root;         /* owned; the tree the spec was read from */
  int version;
  char name[128];
  uint64_t seed;
  sn_data_spec data;
  /* model */
  int input_rank;
  int64_t input_shape[4];
  sn_loc input_loc;
  int n_layers;
  sn_layer_spec *layers; /* owned */
  int *order;            /* owned: layer indices in topological order (inputs first, list
                            order kept where the graph allows); the
                            model output is the last layer of the list */
  /* The id that pads sequences of ids in the model input ([T]), -1 none: positions
   * holding it are left out of global_*_pool1d and attention's keys (the mask,
   * build_graph.c). model.pad_id sets it; a text source in classify mode pads its
   * records with 0, the default then. */
  int pad_id;
  sn_loc pad_id_loc;     /* model.pad_id when written */
  /* train */
  sn_loss_kind loss;
  bool from_logits;
  sn_loc loss_loc;
  double huber_delta;   /* huber (1.0) */
  sn_opt_kind optimizer;
  double learning_rate, beta1, beta2, epsilon; /* Keras defaults */
  double weight_decay;  /* adamw (0.004, Keras) */
  double momentum;      /* sgd (0), rmsprop (0) */
  bool nesterov;        /* sgd */
  double rho;           /* rmsprop (0.9) */
  double clip_grad_norm; /* 0: off */
  sn_loc optimizer_loc;
  sn_schedule schedule;           /* train.schedule (runtime.h) */
  sn_loc schedule_loc;            /* train.schedule, or train's loc when absent */
  sn_early_stopping early;        /* train.early_stopping (runtime.h) */
  sn_loc early_loc;               /* train.early_stopping, when enabled */
  int64_t batch_size;  /* default 32 */
  sn_loc batch_size_loc; /* train.batch_size, or the train section when absent */
  int epochs;          /* default 1; 0 writes initial weights */
  bool shuffle;        /* default true */
  int64_t shuffle_block; /* shuffle: {block: N}: blocks of N samples; 0 = per sample */
  int n_metrics;
  char metrics[8][32]; /* "accuracy", "top_k_accuracy", ... as reported */
  sn_metric_kind metric_kind[8];
  int metric_k[8];     /* top_k_accuracy */
  sn_loc metric_loc[8]; /* each metric's name in train.metrics */
  /* expect */
  int n_expect;
  sn_expect_spec expect[16];
  sn_sweep_spec sweep;
} sn_spec;

/* sn_spec_load is declared in specnet/compiler.h. */
/* Checks an already-parsed tree (takes ownership of root). */
sn_spec *sn_spec_from_tree(sn_node *root, const char *path, sn_diag *d);
/* sn_spec_write_resolved: specnet/compiler.h */
/* Spec names of the enums, as written in a spec ("leaky_relu", "conv2d", "huber",
 * "adamw", "glorot_uniform", "cosine"); "?" for a value out of range.
 * sn_layer_kind_name gives "activation" for SN_LAYER_ACTIVATION (the layer's own
 * name is sn_act_name of its activation). */
const char *sn_act_name(sn_act a);
/* The name of the activation's one option ("alpha"), or NULL when it takes none. */
const char *sn_act_option(sn_act a);
const char *sn_layer_kind_name(sn_layer_kind k);
/* sn_spec_softmax_output: specnet/compiler.h */
const char *sn_loss_name(sn_loss_kind k);
const char *sn_optimizer_name(sn_opt_kind k);
const char *sn_init_name(sn_init_kind k);
const char *sn_schedule_name(sn_schedule_kind k);

#endif
