/* The spec as the compiler sees it: a YAML tree that keeps every node's position
 * (yaml_tree.c), diagnostics that point into it (diag.c), and the typed, checked
 * spec made from it (parse_spec.c). Nothing here knows about IR or LLVM. */
#ifndef SPECNET_SPEC_H
#define SPECNET_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "specnet/runtime.h"

/* ---------------------------------------------------------------------------
 * Source positions and diagnostics (diag.c) */

typedef struct sn_loc {
  const char *file; /* not owned: in a tree, the name held by the document's root
                     * (sn_node.owned_name); in a sn_diag entry, the diag's copy */
  int line, col;    /* 1-based; 0 when unknown */
} sn_loc;

typedef enum sn_severity { SN_ERROR, SN_WARNING } sn_severity;

typedef struct sn_diag_entry {
  sn_severity sev;
  sn_loc loc;
  char *msg;  /* owned */
  char *hint; /* owned, or NULL */
} sn_diag_entry;

/* Collects every problem of a run, in the order found. */
typedef struct sn_diag {
  sn_diag_entry *v;
  int n, cap;
  int errors, warnings;
  char **files; /* owned copies of the file names entries point at */
  int n_files;
} sn_diag;

void sn_diag_error(sn_diag *d, sn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sn_diag_warning(sn_diag *d, sn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Attaches a hint to the last entry ("did you mean 'units'?"). */
void sn_diag_hint(sn_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "file:line:col: error: msg" (+ "file:line:col: hint: ...") per entry. */
void sn_diag_print(const sn_diag *d, FILE *out);
void sn_diag_free(sn_diag *d);
/* Orders entries [first, n) by file (in order of first appearance), line and
 * column; entries at the same place keep their order. A checker that visits the
 * spec section by section calls this so the report reads top to bottom. */
void sn_diag_sort(sn_diag *d, int first);
/* The closest of `n` candidates to `word` by edit distance, or NULL if none is
 * close enough to suggest. */
const char *sn_closest(const char *word, const char *const *cands, int n);

/* ---------------------------------------------------------------------------
 * YAML tree (yaml_tree.c): scalars keep their text; mappings keep key order. */

typedef enum sn_node_kind { SN_NODE_SCALAR, SN_NODE_SEQ, SN_NODE_MAP } sn_node_kind;

typedef struct sn_node sn_node;
struct sn_node {
  sn_node_kind kind;
  sn_loc loc;       /* where the node starts */
  char *text;       /* SCALAR: the scalar's text, owned */
  bool quoted;      /* SCALAR: was quoted (so "10" is a string, 10 a number) */
  int n;            /* SEQ: items; MAP: pairs */
  sn_node **items;  /* SEQ: items; MAP: values */
  sn_node **keys;   /* MAP: keys (scalars) */
  char *owned_name; /* a document's root only: the file name its locs point at */
};

/* Parses a YAML file (or a string, for --set values) into a tree. Syntax errors,
 * duplicate keys, aliases beyond a small budget, nesting deeper than 64 and
 * documents over 16 MiB are errors in d. Returns NULL on error. */
sn_node *sn_yaml_parse_file(const char *path, sn_diag *d);
sn_node *sn_yaml_parse_string(const char *text, const char *name, sn_diag *d);
void sn_node_free(sn_node *n);
/* Value for `key` in a MAP node, or NULL. */
sn_node *sn_node_get(const sn_node *map, const char *key);
/* Writes the tree back as YAML (block style), for spec.resolved.yaml. */
void sn_node_write(const sn_node *n, FILE *out);
/* Applies "a.b.c=VALUE" (VALUE read as YAML) to the tree; a path through an
 * unknown key is reported by the spec checker afterwards, as for the file.
 * Missing mappings on the way are created; a number after a list picks an item
 * (model.layers.0); a dotted key that exists wins over its parts
 * (expect.test.accuracy.min). A path into a scalar, a bad item number or a bad
 * VALUE is an error here. Locations are file "--set", line 1, column = position
 * in the argument. Returns 0 or -1. */
int sn_node_set(sn_node *root, const char *assignment, sn_diag *d);

/* ---------------------------------------------------------------------------
 * The typed spec (parse_spec.c) */

typedef enum sn_act {
  SN_ACT_LINEAR = 0,
  SN_ACT_RELU,
  SN_ACT_SIGMOID,
  SN_ACT_TANH,
  SN_ACT_SOFTMAX,
} sn_act;

typedef enum sn_layer_kind {
  SN_LAYER_FLATTEN = 0,
  SN_LAYER_DENSE,
  SN_LAYER_ACTIVATION, /* an activation written as a layer: `- relu` */
} sn_layer_kind;

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
} sn_layer_spec;

typedef enum sn_loss_kind { SN_LOSS_SPARSE_CCE = 0 } sn_loss_kind;
typedef enum sn_opt_kind { SN_OPT_ADAM = 0 } sn_opt_kind;

typedef struct sn_data_spec {
  sn_source train, test, validation; /* kind SN_SRC_NONE when absent */
  sn_loc train_loc, test_loc, validation_loc;
  double validation_split;           /* 0 when absent */
  double scale;                      /* preprocess scale; 1 when absent */
} sn_data_spec;

typedef struct sn_expect_spec {
  char key[64];  /* "test.accuracy", "train.loss", "gradcheck", "error" */
  sn_loc loc;
  bool has_min, has_max;
  double min, max;
  double max_rel_error;  /* gradcheck */
  char contains[256];    /* error */
} sn_expect_spec;

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
  /* train */
  sn_loss_kind loss;
  bool from_logits;
  sn_loc loss_loc;
  sn_opt_kind optimizer;
  double learning_rate, beta1, beta2, epsilon; /* Keras defaults */
  sn_loc optimizer_loc;
  int64_t batch_size;  /* default 32 */
  int epochs;          /* default 1; 0 writes initial weights */
  bool shuffle;        /* default true */
  int n_metrics;
  char metrics[8][32]; /* "accuracy" */
  /* expect */
  int n_expect;
  sn_expect_spec expect[16];
} sn_spec;

/* Reads and checks a spec. Every problem goes to d; returns NULL if any error.
 * `sets` are --set assignments applied to the tree before checking. */
sn_spec *sn_spec_load(const char *path, const char *const *sets, int n_sets, sn_diag *d);
/* Checks an already-parsed tree (takes ownership of root). */
sn_spec *sn_spec_from_tree(sn_node *root, const char *path, sn_diag *d);
void sn_spec_free(sn_spec *s);
/* Writes s as YAML with every default filled in (write_spec.c). */
void sn_spec_write_resolved(const sn_spec *s, FILE *out);
const char *sn_act_name(sn_act a);

#endif
