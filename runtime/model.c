/* A compiled model's buffers and parameter initialization. The compiler fills the
 * description (dtype, counts, parameter table, step functions); this file owns the
 * memory behind it: params, grads, optimizer state and the activation arena, each
 * 64-byte aligned (cache line, AVX-512) and zeroed. */
#include "specnet/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SN_ALIGN 64

/* bytes of one element of the model dtype, 0 if the dtype is unknown */
static size_t dtype_size(sn_dtype_rt t) { return t == SN_RT_F32 ? 4 : t == SN_RT_F64 ? 8 : 0; }

/* A zeroed, aligned block of at least `bytes` (never NULL on success, even for 0). */
static void *alloc_zeroed(int64_t bytes) {
  size_t n = ((size_t)bytes + SN_ALIGN - 1) / SN_ALIGN * SN_ALIGN;
  if (n == 0) n = SN_ALIGN;
  void *p = NULL;
  if (posix_memalign(&p, SN_ALIGN, n) != 0) return NULL;
  memset(p, 0, n);
  return p;
}

/* count elements of esize bytes, as bytes; -1 if negative or absurdly large. */
static int64_t bytes_of(int64_t count, size_t esize) {
  const int64_t max = INT64_C(1) << 46; /* 64 TiB: beyond that it is a bug */
  if (count < 0 || count > max / (int64_t)esize) return -1;
  return count * (int64_t)esize;
}

/* The parameter table must describe slices inside the params buffer. */
static int check_params_info(const sn_model *m, sn_error *err) {
  if (m->n_params < 0 || (m->n_params > 0 && !m->params_info))
    return sn_fail(err, "model has %d parameters but no parameter table", m->n_params);
  for (int i = 0; i < m->n_params; i++) {
    const sn_param_info *p = &m->params_info[i];
    if (p->rank < 0 || p->rank > 4)
      return sn_fail(err, "parameter '%.128s': rank %d is outside 0..4", p->name, p->rank);
    int64_t prod = 1;
    for (int d = 0; d < p->rank; d++) {
      if (p->shape[d] < 0 || (p->shape[d] > 0 && prod > INT64_MAX / p->shape[d]))
        return sn_fail(err, "parameter '%.128s': bad shape", p->name);
      prod *= p->shape[d];
    }
    if (prod != p->count)
      return sn_fail(err,
                     "parameter '%.128s': count %lld is not the product of its shape "
                     "(%lld)",
                     p->name, (long long)p->count, (long long)prod);
    /* buffer 1: state (running statistics), a slice of the state buffer */
    int64_t limit = p->buffer == 1 ? m->state_count : m->param_count;
    if (p->offset < 0 || p->offset > limit - p->count)
      return sn_fail(err,
                     "parameter '%.128s': elements [%lld, %lld) lie outside the %lld "
                     "%s",
                     p->name, (long long)p->offset, (long long)(p->offset + p->count),
                     (long long)limit, p->buffer == 1 ? "state values" : "parameters");
  }
  return 0;
}

int sn_model_alloc(sn_model *m, sn_error *err) {
  size_t es = dtype_size(m->dtype);
  if (!es) return sn_fail(err, "model dtype %d is neither f32 nor f64", (int)m->dtype);
  int64_t pb = bytes_of(m->param_count, es);
  int64_t sb = bytes_of(m->opt_state_count, es);
  int64_t ab = bytes_of(m->arena_bytes, 1);
  int64_t qb = bytes_of(m->state_count, es);
  if (pb < 0 || sb < 0 || ab < 0 || qb < 0)
    return sn_fail(err,
                   "model buffer sizes are out of range (params %lld, optimizer state "
                   "%lld, arena %lld bytes)",
                   (long long)m->param_count, (long long)m->opt_state_count,
                   (long long)m->arena_bytes);
  if (check_params_info(m, err)) return -1;
  /* zeroing more than the machine holds would end in the OOM killer, not an error */
  const double total = (double)pb * 2 + (double)sb + (double)ab + (double)qb;
  const double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if (ram > 0 && total > ram)
    return sn_fail(err,
                   "the model's buffers need %.1f GB (%.1f GB of them for a batch of %lld), more "
                   "than this machine's %.1f GB of memory; lower train.batch_size",
                   total / 1e9, (double)ab / 1e9, (long long)m->batch_capacity, ram / 1e9);
  m->params = alloc_zeroed(pb);    /* (P) */
  m->grads = alloc_zeroed(pb);     /* (P), same layout */
  m->opt_state = alloc_zeroed(sb); /* (S) */
  m->arena = alloc_zeroed(ab);     /* arena_bytes */
  m->state = alloc_zeroed(qb);     /* (Q) */
  if (!m->params || !m->grads || !m->opt_state || !m->arena || !m->state) {
    sn_model_free(m);
    return sn_fail(err,
                   "out of memory for the model buffers (%lld + %lld + %lld + %lld "
                   "bytes)",
                   (long long)pb, (long long)pb, (long long)sb, (long long)ab);
  }
  return 0;
}

void sn_model_free(sn_model *m) {
  void **owned[] = {&m->params, &m->grads, &m->opt_state, &m->arena, &m->state};
  for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) {
    free(*owned[i]);
    *owned[i] = NULL;
  }
}

/* One initial value for element e of parameter p (index pi). Normal initializers are
 * plain (untruncated) normals, as PyTorch's xavier_normal_ / kaiming_normal_. */
static double init_value(const sn_param_info *p, int pi, uint64_t seed, int64_t e) {
  uint64_t stream = SN_STREAM_INIT + (uint64_t)pi, c = (uint64_t)e;
  double fi = p->fan_in > 0 ? (double)p->fan_in : 1.0;
  double fo = p->fan_out > 0 ? (double)p->fan_out : 1.0;
  switch (p->init) {
  case SN_INIT_ZEROS:
    return 0.0;
  case SN_INIT_ONES:
    return 1.0;
  case SN_INIT_GLOROT_UNIFORM:
    return sqrt(6.0 / (fi + fo)) * (2.0 * sn_rand_uniform(seed, stream, c) - 1.0);
  case SN_INIT_GLOROT_NORMAL:
    return sqrt(2.0 / (fi + fo)) * sn_rand_normal(seed, stream, c);
  case SN_INIT_HE_UNIFORM:
    return sqrt(6.0 / fi) * (2.0 * sn_rand_uniform(seed, stream, c) - 1.0);
  case SN_INIT_HE_NORMAL:
    return sqrt(2.0 / fi) * sn_rand_normal(seed, stream, c);
  case SN_INIT_NORMAL:
    return p->init_arg * sn_rand_normal(seed, stream, c);
  case SN_INIT_UNIFORM:
    return p->init_arg * (2.0 * sn_rand_uniform(seed, stream, c) - 1.0);
  }
  return 0.0;
}

void sn_model_init_params(sn_model *m, uint64_t seed) {
  size_t es = dtype_size(m->dtype);
  for (int i = 0; i < m->n_params; i++) {
    const sn_param_info *p = &m->params_info[i];
    void *buf = p->buffer == 1 ? m->state : m->params;
    for (int64_t e = 0; e < p->count; e++) {
      double v = init_value(p, i, seed, e);
      if (m->dtype == SN_RT_F32)
        ((float *)buf)[p->offset + e] = (float)v;
      else
        ((double *)buf)[p->offset + e] = v;
    }
  }
  memset(m->grads, 0, (size_t)m->param_count * es);
  memset(m->opt_state, 0, (size_t)m->opt_state_count * es);
}
