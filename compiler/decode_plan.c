/* sn_decoder_plan: a causal language model's layers as the ops of an incremental
 * decoder (runtime/decode.c), or the reason the key/value cache cannot run it
 * (the generator then runs the full forward pass per token). The ops follow the
 * spec's layers one for one, each reading its inputs' outputs by layer index;
 * parameters are found by their saved names in the model's parameter table. */
#include <stdio.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"

/* The offset of parameter layer.suffix in params, its element count in *count; -1 if absent */
static int64_t param(const sn_model *m, const char *layer, const char *suffix, int64_t *count) {
  char name[200];
  snprintf(name, sizeof name, "%s.%s", layer, suffix);
  for (int k = 0; k < m->n_params; k++)
    if (!m->params_info[k].buffer && !strcmp(m->params_info[k].name, name)) {
      if (count) *count = m->params_info[k].count;
      return m->params_info[k].offset;
    }
  return -1;
}

static int act_of(sn_act a) {
  switch (a) {
  case SN_ACT_LINEAR: return SN_DEC_LINEAR;
  case SN_ACT_RELU: return SN_DEC_RELU;
  case SN_ACT_SIGMOID: return SN_DEC_SIGMOID;
  case SN_ACT_TANH: return SN_DEC_TANH;
  case SN_ACT_GELU: return SN_DEC_GELU;
  case SN_ACT_GELU_TANH: return SN_DEC_GELU_TANH;
  case SN_ACT_SOFTMAX: return SN_DEC_SOFTMAX;
  default: return -1;
  }
}

/* The op of layer i (its inputs already resolved into op->in, their width in op->in_width) */
static int layer_op(const sn_spec *s, const sn_model *m, int i, sn_dec_op *op, sn_decoder *d, char *why, size_t len) {
  const sn_layer_spec *l = &s->layers[i];
  int64_t n = 0, D = op->in_width;
  op->width = D;
  switch (l->kind) {
  case SN_LAYER_EMBEDDING:
    if (op->in[0] != -2)
      return sn_fail_buf(why, len, "%s: an embedding of something else than the model input",
                         l->name);
    op->kind = SN_DEC_EMBED;
    op->in[0] = -1;
    op->width = l->dim;
    op->w = param(m, l->name, "weight", NULL);
    return 0;
  case SN_LAYER_POSITION_EMBEDDING:
    op->kind = SN_DEC_POSITION;
    op->w = param(m, l->name, "weight", &n);
    return n == d->context * D
               ? 0
               : sn_fail_buf(why, len, "%s: the table is not [context, D]", l->name);
  case SN_LAYER_LAYER_NORM:
    op->kind = SN_DEC_LAYER_NORM;
    op->w = param(m, l->name, "weight", NULL);
    op->b = param(m, l->name, "bias", NULL);
    op->eps = l->epsilon;
    return 0;
  case SN_LAYER_DENSE:
    op->kind = SN_DEC_DENSE;
    op->width = l->units;
    op->w = param(m, l->name, "weight", NULL);
    op->b = l->use_bias ? param(m, l->name, "bias", NULL) : -1;
    op->act = act_of(l->activation);
    return op->act < 0
               ? sn_fail_buf(why, len, "%s: the activation is not one the cache runs", l->name)
               : 0;
  case SN_LAYER_ATTENTION:
    if (!l->causal) return sn_fail_buf(why, len, "%s: the attention is not causal", l->name);
    op->kind = SN_DEC_ATTENTION;
    op->heads = l->heads;
    op->w = param(m, l->name, "in_proj_weight", NULL);
    op->b = l->use_bias ? param(m, l->name, "in_proj_bias", NULL) : -1;
    op->w2 = param(m, l->name, "out_proj.weight", NULL);
    op->b2 = l->use_bias ? param(m, l->name, "out_proj.bias", NULL) : -1;
    op->cache = d->cache_elems;
    d->cache_elems += 2 * d->context * D;
    return 0;
  case SN_LAYER_ADD:
  case SN_LAYER_MULTIPLY:
    op->kind = l->kind == SN_LAYER_ADD ? SN_DEC_ADD : SN_DEC_MULTIPLY;
    return op->in[1] >= 0 ? 0
                          : sn_fail_buf(why, len, "%s: a join of other than two layers", l->name);
  case SN_LAYER_ACTIVATION:
  case SN_LAYER_DROPOUT: /* the identity at inference */
    op->kind = SN_DEC_ACT;
    op->act = l->kind == SN_LAYER_DROPOUT ? SN_DEC_LINEAR : act_of(l->activation);
    return op->act < 0
               ? sn_fail_buf(why, len, "%s: the activation is not one the cache runs", l->name)
               : 0;
  default:
    return sn_fail_buf(why, len, "%s: a %s layer", l->name, sn_layer_kind_name(l->kind));
  }
}

/* op->in from the layer's inputs: -2 the model input, else a layer's index */
static int resolve_inputs(const sn_spec *s, int i, sn_dec_op *op, const sn_decoder *d, char *why, size_t len) {
  const sn_layer_spec *l = &s->layers[i];
  if (l->n_inputs < 1 || l->n_inputs > 2)
    return sn_fail_buf(why, len, "%s: %d inputs", l->name, l->n_inputs);
  for (int k = 0; k < l->n_inputs; k++) {
    int j = -1;
    if (!strcmp(l->inputs[k], "input")) j = -2;
    for (int q = 0; q < i && j == -1; q++)
      if (!strcmp(s->layers[q].name, l->inputs[k])) j = q;
    if (j == -1) return sn_fail_buf(why, len, "%s: input %s not found", l->name, l->inputs[k]);
    op->in[k] = j;
  }
  op->in_width = op->in[0] >= 0 ? d->ops[op->in[0]].width : 0;
  if (op->in[1] >= 0 && d->ops[op->in[1]].width != op->in_width)
    return sn_fail_buf(why, len, "%s: inputs of different widths", l->name);
  return 0;
}

int sn_decoder_plan(const sn_spec *s, const sn_model *m, sn_decoder *d, char *why, size_t len) {
  memset(d, 0, sizeof *d);
  if (m->dtype != SN_RT_F32) return sn_fail_buf(why, len, "an f64 model");
  if (s->input_rank != 1) return sn_fail_buf(why, len, "the model input is not [context] ids");
  if (s->pad_id >= 0) return sn_fail_buf(why, len, "padded ids (pad_id), which the cache does not mask");
  if (s->n_layers > SN_DEC_MAX_OPS)
    return sn_fail_buf(why, len, "more than %d layers", SN_DEC_MAX_OPS);
  d->context = s->input_shape[0];
  d->vocab = m->input_elems > 0 ? m->output_elems / m->input_elems : 0;
  for (int i = 0; i < s->n_layers; i++) {
    sn_dec_op *op = &d->ops[i];
    *op = (sn_dec_op){.in = {-1, -1}, .w = -1, .b = -1, .w2 = -1, .b2 = -1, .cache = -1};
    if (resolve_inputs(s, i, op, d, why, len) || layer_op(s, m, i, op, d, why, len)) return -1;
    if (op->in[0] == -2)
      return sn_fail_buf(why, len, "%s: reads the ids as numbers", s->layers[i].name);
    if ((op->kind == SN_DEC_ATTENTION && op->width % op->heads) ||
        (op->kind != SN_DEC_EMBED && op->kind != SN_DEC_DENSE && op->width != op->in_width))
      return sn_fail_buf(why, len, "%s: widths the cache does not follow", s->layers[i].name);
    if (op->w < 0 && op->kind != SN_DEC_ADD && op->kind != SN_DEC_MULTIPLY && op->kind != SN_DEC_ACT)
      return sn_fail_buf(why, len, "%s: a parameter is missing", s->layers[i].name);
    if (op->kind == SN_DEC_DENSE && op->act == SN_DEC_SOFTMAX && i + 1 < s->n_layers)
      return sn_fail_buf(why, len, "%s: a softmax before the last layer", s->layers[i].name);
    d->width = op->width > d->width ? op->width : d->width;
    d->n_ops = i + 1;
  }
  if (d->n_ops < 1 || d->ops[d->n_ops - 1].width != d->vocab)
    return sn_fail_buf(why, len, "the output is not [context, vocab]");
  d->version = 1;
  return 0;
}
