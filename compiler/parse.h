/* The spec checker's shared pieces (parse_spec.c and the section files
 * parse_data.c, parse_model.c, parse_train.c, parse_sweep.c, with the vocabulary of
 * parse_values.c). Internal to libspecnet_compiler: the ck_ functions are the
 * checker's, not an API. */
#ifndef SPECNET_PARSE_H
#define SPECNET_PARSE_H

#include "spec.h"

/* Sizes beyond these are mistakes, and would overflow later arithmetic. */
#define MAX_UNITS (INT64_C(1) << 24)
#define MAX_BATCH (INT64_C(1) << 24)
#define MAX_EPOCHS INT64_C(1000000)
#define MAX_INPUT_ELEMS (INT64_C(1) << 31)
#define MAX_SAMPLES (INT64_C(1) << 24)
#define MAX_CLASSES (INT64_C(1) << 16)
#define MAX_FEATURES (INT64_C(1) << 16)
#define MAX_SYNTH_ELEMS (INT64_C(1) << 28)
#define MAX_WINDOW (INT64_C(1) << 16) /* kernel, pool and stride sides */
#define MAX_COLUMN (INT64_C(1) << 20) /* csv label column number */
enum { MAX_LAYERS = 4096, MAX_INPUTS = 8 };

typedef struct checker {
  sn_diag *d;
  sn_spec *s;
  const char *dir; /* the spec's directory with its '/', or "" */
  int dir_len;
  bool inner; /* checking a copy with one sweep setting applied: skip the sweep */
} checker;

/* The name of enum value k in a NULL-terminated table, or "?". */
static inline const char *ck_enum_name(const char *const *names, int n, int k) {
  return k >= 0 && k < n ? names[k] : "?";
}
#define ENUM_NAME(names, k) ck_enum_name(names, (int)(sizeof names / sizeof *names) - 1, (int)(k))

/* parse_values.c: plain tests and lookups */
bool ck_is_null(const sn_node *n);
bool ck_is_name(const sn_node *n);
int ck_parse_real(const char *s, double *out);
bool ck_is_int_text(const sn_node *n);
const char *ck_describe(const sn_node *n, char *buf, size_t cap);
bool ck_in_list(const char *w, const char *const *list);
int ck_index_of(const char *w, const char *const *list);
const char *ck_join(const char *const *list, char *buf, size_t cap);

/* parse_values.c: report at the node and return false (or -1) on failure */
void ck_hint_closest(checker *c, const char *word, const char *const *a, const char *const *b);
/* Whether n is a list with at least one item; else a type error (expected: what
 * it should be) and, for a bare name, the hint to write it as a list. */
bool ck_nonempty_list(checker *c, const sn_node *n, const char *what, const char *expected);
void ck_missing(checker *c, const sn_node *map, const char *key, const char *where);
void ck_check_keys(checker *c, const sn_node *map, const char *where, const char *const *keys);
void ck_type_error(checker *c, const sn_node *n, const char *what, const char *expected);
bool ck_is_map(checker *c, const sn_node *n, const char *what);
bool ck_get_int(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi,
                int64_t *out);
bool ck_get_int32(checker *c, const sn_node *n, const char *what, int64_t lo, int64_t hi, int *out);
bool ck_get_real(checker *c, const sn_node *n, const char *what, double lo, bool lo_open,
                 double hi, bool hi_open, double *out);
bool ck_get_bool(checker *c, const sn_node *n, const char *what, bool *out);
const char *ck_get_str(checker *c, const sn_node *n, const char *what);
bool ck_copy_field(checker *c, const sn_node *n, const char *what, char *dst, size_t cap);
bool ck_choice(checker *c, const sn_node *n, const char *what, const sn_node **name,
               const sn_node **opts);
int ck_lookup(checker *c, const sn_node *name, const char *what, const char *const *names);
void ck_no_options(checker *c, const sn_node *name, const sn_node *opts);
bool ck_options(checker *c, const sn_node *name, const sn_node *opts, const char *const *keys,
                const sn_node **map);

/* The sections, in spec order */
void ck_data_section(checker *c, const sn_node *n);
bool ck_has_data(const sn_spec *s, const char *role);
void ck_model_section(checker *c, const sn_node *n);
bool ck_figure(checker *c, const sn_node *n, const char *what, bool allow_test);
void ck_train_section(checker *c, const sn_node *n);
void ck_expect_section(checker *c, const sn_node *n);
void ck_sweep_section(checker *c, const sn_node *n, bool check_values);
void ck_warn_mistakes(checker *c);
sn_spec *ck_check_tree(sn_node *root, const char *path, sn_diag *d, bool inner);

#endif
