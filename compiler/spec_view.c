/* The public view of a checked spec (specnet/compiler.h): what the CLI and the
 * runtime read of it, without its layout (spec.h). */
#include <string.h>

#include "spec.h"

const char *sn_spec_name(const sn_spec *s) { return s->name; }
uint64_t sn_spec_seed(const sn_spec *s) { return s->seed; }
const char *sn_spec_path(const sn_spec *s) { return s->path; }
int sn_spec_epochs(const sn_spec *s) { return s->epochs; }
bool sn_spec_has_sweep(const sn_spec *s) { return s->sweep.kind != SN_SWEEP_NONE; }
const sn_source *sn_spec_train_source(const sn_spec *s) { return &s->data.train; }
bool sn_spec_from_logits(const sn_spec *s) { return s->from_logits; }

sn_loss_targets sn_spec_loss_targets(const sn_spec *s) {
  if (s->loss == SN_LOSS_SPARSE_CCE || s->loss == SN_LOSS_CCE) return SN_TARGETS_CLASSES;
  return s->loss == SN_LOSS_BCE ? SN_TARGETS_BINARY : SN_TARGETS_VALUES;
}

sn_loc sn_spec_data_loc(const sn_spec *s, sn_data_part which) {
  const sn_loc at[] = {s->data.train_loc, s->data.validation_loc, s->data.test_loc, s->data.preprocess_loc};
  return (unsigned)which <= SN_PART_PREPROCESS ? at[which] : (sn_loc){s->path, 0, 0};
}

void sn_spec_data_config(const sn_spec *s, sn_data_config *c) {
  memset(c, 0, sizeof *c);
  c->train = s->data.train;
  c->test = s->data.test;
  c->validation = s->data.validation;
  c->validation_split = s->data.validation_split;
  c->scale = s->data.scale;
  c->n_norm = s->data.n_norm;
  memcpy(c->norm_mean, s->data.norm_mean, sizeof c->norm_mean);
  memcpy(c->norm_std, s->data.norm_std, sizeof c->norm_std);
  c->standardize = s->data.standardize;
  c->standardize_targets = s->data.standardize_targets;
}

void sn_spec_train_opts(const sn_spec *s, sn_train_opts *to) {
  memset(to, 0, sizeof *to);
  to->epochs = s->epochs;
  to->batch_size = s->batch_size;
  to->shuffle = s->shuffle;
  to->shuffle_block = s->shuffle_block;
  to->seed = s->seed;
  to->learning_rate = s->learning_rate;
  to->schedule = s->schedule;
  to->early = s->early;
  to->title = s->name;
}

sn_loc sn_spec_input_loc(const sn_spec *s) { return s->input_loc; }
sn_loc sn_spec_batch_size_loc(const sn_spec *s) { return s->batch_size_loc; }
const sn_sweep_spec *sn_spec_sweep(const sn_spec *s) { return &s->sweep; }

int sn_spec_expectations(const sn_spec *s, const sn_expect_spec **e) {
  *e = s->expect;
  return s->n_expect;
}

int sn_spec_input_vocab(const sn_spec *s, const char **layer, sn_loc *loc) {
  int vocab = 0;
  for (int i = 0; i < s->n_layers; i++) {
    const sn_layer_spec *l = &s->layers[i];
    bool reads_input = l->n_inputs == 0 ? i == 0 : !strcmp(l->inputs[0], "input");
    if (!reads_input || l->kind != SN_LAYER_EMBEDDING || (vocab && l->vocab >= vocab)) continue;
    vocab = l->vocab;
    *layer = l->name;
    *loc = l->loc;
  }
  return vocab;
}
