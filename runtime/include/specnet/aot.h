/* The symbols of an ahead-of-time model object (`specnet build`), as the
 * standalone model binary (runtime/aot_main.c) reads them. Not for programs that
 * embed a model library: those include the generated NAME.h instead. */
#ifndef SPECNET_AOT_H
#define SPECNET_AOT_H

#include "specnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Besides the step functions, the
 * object defines these symbols, which runtime/aot_main.c (the standalone model
 * binary) reads. Weights are embedded in the object's read-only data. */

typedef struct sn_aot_info {
  int64_t version;        /* 1 */
  int64_t dtype;          /* sn_dtype_rt */
  int64_t input_elems, output_elems, batch_capacity;
  int64_t arena_bytes;    /* scratch the predict step needs */
  int64_t param_count, state_count;
  int64_t input_rank, input_shape[4];
  int64_t n_pre;          /* features of the input affine below (0: none) */
  int64_t classifier;     /* 1: outputs are class scores; print the argmax */
  int64_t n_post;         /* outputs of the output affine below (0: none) */
  int64_t n_class_names;  /* names in sn_aot_class_names (0: print class indices) */
  int64_t classes;        /* scores per position: a sequence output [T, classes] gets an
                           * argmax per position; 0 means output_elems */
  int64_t lm;             /* 1: a text language model (--generate); tokens in sn_aot_chars */
  int64_t output_probs;   /* 1: the output is probabilities (a softmax), else logits */
  int64_t n_chars;        /* the chars tokenizer's table size (0: bytes, id = byte) */
  int64_t seed;           /* the spec's seed: --generate's default */
} sn_aot_info;

extern const sn_aot_info sn_aot_info_v1;
extern const unsigned char sn_aot_params[]; /* (P) in dtype, 64-byte aligned */
extern const unsigned char sn_aot_state[];  /* (Q) in dtype */
/* The spec's preprocessing as one affine per feature (the last input axis):
 * x' = x * pre_a[f] + pre_b[f] on raw values (scale, normalize, standardize). */
extern const double sn_aot_pre_a[], sn_aot_pre_b[];
/* Outputs back to the data's units (standardize_targets): y * post_a[k] + post_b[k]. */
extern const double sn_aot_post_a[], sn_aot_post_b[];
/* The class names, each NUL-terminated, one after another (n_class_names). */
extern const char sn_aot_class_names[];
/* The code points of the chars tokenizer's ids (n_chars, sorted; lm only). */
extern const uint32_t sn_aot_chars[];
/* The incremental decoder of a language model (the key/value cache of
 * --generate): defined only where the model is one it runs, so declared weak by
 * the main (a null address: a full forward pass per token). */
extern const sn_decoder sn_aot_decoder_v1;
void sn_predict(const sn_step_args *args);

/* A training binary (`specnet build --train`) also defines the other step
 * functions and sn_aot_train_v1: the model's layout, its parameter table and
 * metric names, the spec's training settings and its data sources, which the
 * binary's command line may replace (runtime/aot_train_main.c). */
typedef struct sn_aot_train {
  int64_t version;                 /* 1 */
  char name[128];                  /* the spec's name: the default run folder runs/NAME */
  sn_model layout;                 /* sizes, dtype, metric count; pointers unset */
  int64_t n_params;
  sn_param_info params[256];       /* the first n_params */
  char metric_names[8][32];
  sn_train_opts opts;              /* epochs, batch, shuffle, seed, lr, schedule, early
                                      stopping; paths and callbacks unset */
  sn_data_config data;
} sn_aot_train;

extern const sn_aot_train sn_aot_train_v1;
void sn_grad_step(const sn_step_args *args);
void sn_update(const sn_step_args *args);
void sn_train_step(const sn_step_args *args);
void sn_eval_step(const sn_step_args *args);

#ifdef __cplusplus
}
#endif
#endif
