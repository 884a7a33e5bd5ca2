/* Samples as stored, and the one conversion from storage to a batch.
 *
 * A store is a list of files (shards: NPY files, raw IDX files, the decompressed
 * copy of a gzip IDX file in the cache folder) read in place with pread (positioned
 * reads, no copy of the file in memory), or, when no cache file can be written, a
 * gzip IDX held in memory as its u8 bytes. Nothing is converted at load:
 * sn_dataset_get converts the samples a batch needs, stored type -> f32 (the
 * conversion a set held in memory as f32 gets, so values agree bit for bit) -> the
 * set's preprocessing (sn_pre, in double) -> the model dtype. In-memory
 * f32 sets (csv, synthetic, text) go through the same function, so a set forced
 * into memory ($SPECNET_DATA_IN_MEMORY=1) trains bitwise like the stored one.
 *
 * Why pread and not mmap: pages of a file mapping count in the process's RSS once
 * touched, and on this kernel a fault maps far more than the page it needs (fault-
 * around, large page-cache folios): with a shuffled order even dropping the pages
 * (MADV_DONTNEED) every 32 MB read left 200-460 MB of a 470 MB file mapped. pread
 * copies only the sample's bytes; the kernel's page cache, not the process, keeps
 * the file, so RSS stays at the batch buffers whatever the file size. A read costs
 * one system call per sample (about a microsecond), hidden by the loader thread.
 * And a file truncated while we read it gives a short read (an error below), where
 * a mapping would give SIGBUS.
 *
 * A file that changes under us: the store remembers size and mtime; sets check
 * them before and after each epoch and evaluation (sn_dataset_check), an error
 * naming the file. A read that comes back short (the file shrank mid-epoch) fills
 * zeros and marks the store failed, which the next check reports. */
#define _GNU_SOURCE /* madvise, MADV_HUGEPAGE */
#include "data_store.h"

#include "half.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One file of a store (a shard): its samples are bytes [first, first + bytes) of
 * the store's concatenation, from byte `offset` of the file. */
typedef struct store_part {
  char *path;
  int fd;
  int64_t offset, first, bytes;
  struct stat st; /* at load: size and mtime to compare */
  sn_store_reader rd; /* rd.read set: bytes come from it, not pread (HDF5) */
} store_part;

struct sn_store {
  int refs; /* sets sharing it; changed on the driver's thread only */
  char path[4096]; /* the first file, for messages */
  sn_stype t;
  int64_t n, elems;
  /* in files, in order */
  store_part *parts;
  int n_parts;
  atomic_int short_read; /* 1 + the part whose read came back short (it shrank), or 0 */
  bool count_reads;        /* $SPECNET_DATA_STATS=1: count the bytes read, report them */
  atomic_llong read_bytes;
  /* in memory */
  uint8_t *bytes;
};

bool sn_store_in_memory(void) {
  const char *e = getenv("SPECNET_DATA_IN_MEMORY");
  return e && !strcmp(e, "1");
}

static sn_store *store_new(const char *path, sn_stype t, int64_t elems) {
  sn_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->refs = 1;
  snprintf(s->path, sizeof s->path, "%s", path);
  s->t = t;
  s->elems = elems;
  atomic_init(&s->short_read, 0);
  atomic_init(&s->read_bytes, 0);
  const char *stats = getenv("SPECNET_DATA_STATS");
  s->count_reads = stats && !strcmp(stats, "1");
  return s;
}

int sn_store_add(sn_store **sp, const char *path, int64_t offset, sn_stype t, int64_t n,
                 int64_t elems, sn_error *err) {
  if (!*sp && !(*sp = store_new(path, t, elems))) return sn_fail(err, "%s: out of memory", path);
  sn_store *s = *sp;
  store_part *parts = realloc(s->parts, (size_t)(s->n_parts + 1) * sizeof *parts);
  if (!parts) return sn_fail(err, "%s: out of memory", path);
  s->parts = parts;
  store_part *p = &parts[s->n_parts];
  memset(p, 0, sizeof *p);
  p->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (p->fd < 0) return sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
  s->n_parts++; /* from here sn_store_unref closes it */
  p->path = strdup(path);
  if (!p->path) return sn_fail(err, "%s: out of memory", path);
  if (fstat(p->fd, &p->st) != 0) return sn_fail(err, "%s: cannot stat: %s", path, strerror(errno));
  p->offset = offset;
  p->bytes = n * elems * t.size;
  p->first = s->n * elems * t.size;
  if (offset + p->bytes > (int64_t)p->st.st_size) /* the reader checked: belt and braces */
    return sn_fail(err, "%s: truncated", path);
  s->n += n;
  return 0;
}

int sn_store_add_reader(sn_store **sp, const char *path, sn_stype t, int64_t n, int64_t elems,
                        sn_store_reader rd, sn_error *err) {
  sn_store *s = *sp;
  const int k = s ? s->n_parts : 0;
  if (sn_store_add(sp, path, 0, t, 0, elems, err)) {
    if (*sp && (*sp)->n_parts == k + 1) (*sp)->parts[k].rd = rd; /* closed with the part */
    else if (rd.close) rd.close(rd.ctx);
    return -1;
  }
  s = *sp;
  store_part *p = &s->parts[s->n_parts - 1];
  p->rd = rd;
  p->bytes = n * elems * t.size;
  s->n += n;
  return 0;
}

int sn_store_own(const char *path, uint8_t *bytes, int64_t n, int64_t elems, sn_store **out,
                 sn_error *err) {
  *out = store_new(path, (sn_stype){'u', 1}, elems);
  if (!*out) {
    free(bytes);
    return sn_fail(err, "%s: out of memory", path);
  }
  (*out)->bytes = bytes;
  (*out)->n = n;
  return 0;
}

sn_stype sn_store_type(const sn_store *s) { return s->t; }

static bool part_read(const store_part *p, int64_t at, int64_t bytes, char *buf);

int64_t sn_store_hold_limit(void) {
  const char *e = getenv("SPECNET_DATA_IN_MEMORY");
  return e && !strcmp(e, "0") ? 0 : (int64_t)64 << 20;
}

/* Memory for samples held in memory (a held store, a set converted to f32): from 2
 * MiB on, in huge pages where the kernel gives them (2 MiB aligned, madvise; freed
 * with free). Batches read the samples in a shuffled order: with 4 KiB pages the
 * first read of each page cost a page walk to memory, which on a Zen 5 VM made the
 * seed MLP's first epoch 0.22-0.23 s against 0.20-0.21 for the later ones; with
 * huge pages the first epoch is as fast as the rest. */
static void *sample_alloc(int64_t bytes) {
  enum { HUGE = 2 << 20 };
  if (bytes < HUGE) return malloc((size_t)bytes);
  void *p = NULL;
  if (posix_memalign(&p, HUGE, (size_t)bytes)) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, (size_t)bytes, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
#endif
  return p;
}

int sn_store_hold(sn_store *s, int64_t max_bytes, sn_error *err) {
  if (!s || s->bytes || !s->n_parts) return 0;
  int64_t total = 0;
  for (int i = 0; i < s->n_parts; i++) {
    if (s->parts[i].rd.read) return 0; /* HDF5 reads through its library */
    total += s->parts[i].bytes;
  }
  if (total <= 0 || total > max_bytes) return 0;
  uint8_t *b = sample_alloc(total);
  if (!b) return 0; /* streamed as before */
  for (int i = 0; i < s->n_parts; i++) {
    const store_part *p = &s->parts[i];
    if (!part_read(p, 0, p->bytes, (char *)b + p->first)) {
      free(b);
      return sn_fail(err, "%s: read error, or the file shrank since it was opened", p->path);
    }
  }
  s->bytes = b;
  return 0;
}

/* The part holding byte `at` of the concatenation (binary search). */
static const store_part *part_at(const sn_store *s, int64_t at) {
  int lo = 0, hi = s->n_parts - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (s->parts[mid].first <= at) lo = mid;
    else hi = mid - 1;
  }
  return &s->parts[lo];
}

/* `bytes` bytes from byte `at` of the file part p into buf; false when short. */
static bool part_read(const store_part *p, int64_t at, int64_t bytes, char *buf) {
  if (p->rd.read) {
    if (p->rd.read(p->rd.ctx, at, bytes, buf)) return true;
    memset(buf, 0, (size_t)bytes);
    return false;
  }
  int64_t got = 0;
  while (got < bytes) {
    ssize_t k = pread(p->fd, buf + got, (size_t)(bytes - got), (off_t)(p->offset + at + got));
    if (k <= 0 && !(k < 0 && errno == EINTR)) break;
    if (k > 0) got += k;
  }
  if (got == bytes) return true;
  memset(buf + got, 0, (size_t)(bytes - got));
  return false;
}

/* `bytes` bytes from byte `at` of the samples (across files) into buf; short: zeros,
 * and marked. */
static void store_read(sn_store *s, int64_t at, int64_t bytes, void *buf) {
  if (s->count_reads)
    atomic_fetch_add_explicit(&s->read_bytes, (long long)bytes, memory_order_relaxed);
  if (s->bytes) {
    memcpy(buf, s->bytes + at, (size_t)bytes);
    return;
  }
  char *b = buf;
  while (bytes > 0) {
    const store_part *p = part_at(s, at);
    int64_t k = p->first + p->bytes - at < bytes ? p->first + p->bytes - at : bytes;
    if (k <= 0 || !part_read(p, at - p->first, k, b)) {
      atomic_store(&s->short_read, (int)(p - s->parts) + 1);
      if (k <= 0) { /* past the last file: cannot happen for n samples */
        memset(b, 0, (size_t)bytes);
        return;
      }
    }
    at += k;
    b += k;
    bytes -= k;
  }
}

int sn_store_read(sn_store *s, int64_t i, int64_t count, void *buf, sn_error *err) {
  const int64_t sb = s->elems * s->t.size;
  store_read(s, i * sb, count * sb, buf);
  int short_part = atomic_load(&s->short_read);
  if (short_part)
    return sn_fail(err, "%s: read error or the file shrank while reading",
                   s->parts[short_part - 1].path);
  return 0;
}

sn_store *sn_store_ref(sn_store *s) {
  if (s) s->refs++;
  return s;
}

void sn_store_unref(sn_store *s) {
  if (!s || --s->refs > 0) return;
  if (s->count_reads) {
    const long long sb = (long long)(s->elems * s->t.size), read = atomic_load(&s->read_bytes);
    fprintf(stderr, "specnet: data: %s%s: read %lld samples (%lld bytes) of %lld%s\n", s->path,
            s->n_parts > 1 ? " and its other shards" : "", read / sb, read, (long long)s->n,
            s->bytes && s->n_parts ? ", held in memory" : "");
  }
  for (int i = 0; i < s->n_parts; i++) {
    if (s->parts[i].rd.close) s->parts[i].rd.close(s->parts[i].rd.ctx);
    close(s->parts[i].fd);
    free(s->parts[i].path);
  }
  free(s->parts);
  free(s->bytes);
  free(s);
}

/* ---------------------------------------------------------------------------
 * Conversion: stored -> f32 -> preprocessing -> model dtype */

/* count values of type t at p (maybe unaligned) as f32 (64-bit integers through
 * double). The switch is outside the loops so that each loop is a tight one the
 * compiler vectorizes. */
static void load_f32(const uint8_t *p, sn_stype t, int64_t count, float *out) {
#define LOAD(T, CONV)                                                                              \
  for (int64_t e = 0; e < count; e++) {                                                            \
    T v;                                                                                           \
    memcpy(&v, p + e * (int64_t)sizeof(T), sizeof(T));                                            \
    out[e] = CONV;                                                                                 \
  }                                                                                                \
  return
  switch (t.kind * 16 + t.size) {
  case 'u' * 16 + 1: LOAD(uint8_t, (float)v);
  case 'u' * 16 + 2: LOAD(uint16_t, (float)v);
  case 'u' * 16 + 4: LOAD(uint32_t, (float)(double)v);
  case 'u' * 16 + 8: LOAD(uint64_t, (float)(double)v);
  case 'i' * 16 + 1: LOAD(int8_t, (float)v);
  case 'i' * 16 + 2: LOAD(int16_t, (float)v);
  case 'i' * 16 + 4: LOAD(int32_t, (float)(double)v);
  case 'i' * 16 + 8: LOAD(int64_t, (float)(double)v);
  case 'f' * 16 + 2: LOAD(uint16_t, sn_f16_to_f32(v));
  case 'f' * 16 + 4: LOAD(float, v);
  default: LOAD(double, (float)v);
  }
#undef LOAD
}

/* v[0..count) (feature of v[0]: f) through pre into out[at..) of dtype; returns the
 * feature after the last. v may alias out (f32). Whole rows of the features run as
 * loops the compiler vectorizes; where every sub is 0 and every div 1 (a scale
 * alone) the subtraction and division are left out, which changes no bit. */
static int64_t apply_pre(const sn_pre *p, const float *v, int64_t count, int64_t f,
                         sn_dtype_rt dtype, void *out, int64_t at) {
  float *o32 = (float *)out + at;
  double *o64 = (double *)out + at;
  const int64_t F = p->features;
  if (!F) {
    if (dtype == SN_RT_F64)
      for (int64_t e = 0; e < count; e++) o64[e] = v[e];
    return 0;
  }
  const double *mul = p->mul, *sub = p->sub, *div = p->div;
  bool scale = true;
  for (int64_t j = 0; j < F && scale; j++) scale = sub[j] == 0 && div[j] == 1;
  if (F == 1) { /* one feature: the same three numbers for every value */
    const double m0 = mul[0], s0 = sub[0], d0 = div[0];
    if (dtype == SN_RT_F32 && scale)
      for (int64_t e = 0; e < count; e++) o32[e] = (float)((double)v[e] * m0);
    else if (dtype == SN_RT_F32)
      for (int64_t e = 0; e < count; e++) o32[e] = (float)(((double)v[e] * m0 - s0) / d0);
    else
      for (int64_t e = 0; e < count; e++) o64[e] = (float)(((double)v[e] * m0 - s0) / d0);
    return 0;
  }
  int64_t e = 0;
  while (e < count) {
    if (f == 0 && count - e >= F) { /* a whole row of features */
      const float *x = v + e;
      if (dtype == SN_RT_F32 && scale)
        for (int64_t j = 0; j < F; j++) o32[e + j] = (float)((double)x[j] * mul[j]);
      else if (dtype == SN_RT_F32)
        for (int64_t j = 0; j < F; j++) o32[e + j] = (float)(((double)x[j] * mul[j] - sub[j]) / div[j]);
      else
        for (int64_t j = 0; j < F; j++) o64[e + j] = (float)(((double)x[j] * mul[j] - sub[j]) / div[j]);
      e += F;
      continue;
    }
    float r = (float)(((double)v[e] * mul[f] - sub[f]) / div[f]);
    if (dtype == SN_RT_F32)
      o32[e] = r;
    else
      o64[e] = r;
    e++;
    if (++f == F) f = 0;
  }
  return f;
}

void sn_dataset_get(const sn_dataset *ds, int64_t i, int64_t count, sn_dtype_rt dtype, void *out) {
  enum { CHUNK = 2048 }; /* values per step: the raw bytes fit the stack */
  const int64_t total = count * ds->sample_elems;
  sn_stype t = {'f', 4};
  const uint8_t *src = ds->x ? (const uint8_t *)(ds->x + i * ds->sample_elems) : NULL; /* no offset on NULL */
  int64_t at = 0; /* byte of the store */
  if (!ds->x) {
    t = ds->store->t;
    at = (ds->first + i) * ds->sample_elems * t.size;
  }
  float buf[CHUNK];
  uint64_t raw[CHUNK]; /* 8 bytes a value at most */
  int64_t f = 0;
  for (int64_t e0 = 0; e0 < total; e0 += CHUNK) {
    int64_t k = total - e0 < CHUNK ? total - e0 : CHUNK;
    float *v = dtype == SN_RT_F32 ? (float *)out + e0 : buf;
    if (!ds->x) {
      store_read(ds->store, at + e0 * t.size, k * t.size, raw);
      load_f32((const uint8_t *)raw, t, k, v);
    } else {
      load_f32(src + e0 * t.size, t, k, v);
    }
    f = apply_pre(&ds->pre, v, k, f, dtype, out, e0);
  }
}

void sn_dataset_prefetch(const sn_dataset *ds, int64_t i) {
  const char *p;
  int64_t bytes;
  if (i < 0 || i >= ds->n) return;
  if (ds->x) {
    bytes = ds->sample_elems * (int64_t)sizeof(float);
    p = (const char *)(ds->x + i * ds->sample_elems);
  } else if (ds->store && ds->store->bytes) {
    bytes = ds->sample_elems * ds->store->t.size;
    p = (const char *)ds->store->bytes + (ds->first + i) * bytes;
  } else {
    return;
  }
  /* a sample's first 16 KiB: the misses that would wait are the first ones of each
   * scattered sample (the hardware prefetcher follows a run); and a batch of large
   * samples must not flush the caches it is meant to fill */
  if (bytes > 16384) bytes = 16384;
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
  __builtin_prefetch(p + bytes - 1, 0, 2); /* the last line, where the sample does not start on one */
}

int sn_dataset_to_memory(sn_dataset *ds, sn_error *err) {
  float *x = sample_alloc((int64_t)((size_t)(ds->n * ds->sample_elems) * sizeof(float) + 1)); /* (n, E) */
  if (!x) return sn_fail(err, "%s: out of memory for %lld samples", ds->origin, (long long)ds->n);
  sn_pre pre = ds->pre; /* the stored values as they are */
  ds->pre = (sn_pre){0};
  sn_dataset_get(ds, 0, ds->n, SN_RT_F32, x);
  ds->pre = pre;
  sn_store_unref(ds->store);
  ds->store = NULL;
  ds->first = 0;
  ds->x = x;
  return 0;
}

bool sn_dataset_direct(const sn_dataset *ds) { return ds->x && !ds->pre.features; }

int sn_dataset_check(const sn_dataset *ds, sn_error *err) {
  const sn_store *s = ds->store;
  for (int i = 0; s && i < s->n_parts; i++) {
    const store_part *p = &s->parts[i];
    struct stat now;
    if (fstat(p->fd, &now) != 0) return sn_fail(err, "%s: cannot stat: %s", p->path, strerror(errno));
    if (now.st_size != p->st.st_size || now.st_mtim.tv_sec != p->st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != p->st.st_mtim.tv_nsec ||
        atomic_load(&s->short_read) == i + 1)
      return sn_fail(err,
                     "%s: the file changed during the run (%lld bytes at load, %lld now); the "
                     "samples are read from it as training goes: leave it unchanged, or copy it",
                     p->path, (long long)p->st.st_size, (long long)now.st_size);
  }
  return 0;
}

sn_dataset sn_dataset_rows(const sn_dataset *ds, int64_t lo, int64_t hi) {
  sn_dataset v = *ds;
  v.n = hi - lo;
  if (ds->x)
    v.x = ds->x + lo * ds->sample_elems;
  else
    v.first = ds->first + lo;
  if (ds->y) v.y = ds->y + lo * (ds->label_elems > 0 ? ds->label_elems : 1); /* (n, L) labels */
  if (ds->t) v.t = ds->t + lo * ds->target_elems;
  v.class_names = NULL;
  v.n_class_names = 0;
  return v;
}

/* ---------------------------------------------------------------------------
 * Preprocessing, composed into sn_pre: ((v * mul - sub) / div) then * c is
 * (v * mul*c - sub*c) / div; then (. - m) / s is (v * mul - (sub + m*div)) / (div*s).
 * From the identity, a scale alone or a normalize alone is exactly the arithmetic of
 * that step applied to the f32 values themselves. */

static int pre_init(sn_dataset *ds, sn_error *err) {
  sn_pre *p = &ds->pre;
  if (p->features) return 0;
  const int64_t F = sn_dataset_features(ds);
  p->mul = malloc((size_t)F * sizeof(double));
  p->sub = malloc((size_t)F * sizeof(double));
  p->div = malloc((size_t)F * sizeof(double));
  if (!p->mul || !p->sub || !p->div) {
    sn_pre_free(p);
    return sn_fail(err, "%s: out of memory for preprocessing", ds->origin);
  }
  for (int64_t f = 0; f < F; f++) {
    p->mul[f] = p->div[f] = 1;
    p->sub[f] = 0;
  }
  p->features = F;
  return 0;
}

void sn_pre_free(sn_pre *p) {
  free(p->mul);
  free(p->sub);
  free(p->div);
  memset(p, 0, sizeof *p);
}

int sn_pre_copy(const sn_pre *from, sn_pre *to, sn_error *err) {
  memset(to, 0, sizeof *to);
  if (!from->features) return 0;
  const size_t bytes = (size_t)from->features * sizeof(double);
  to->mul = malloc(bytes);
  to->sub = malloc(bytes);
  to->div = malloc(bytes);
  if (!to->mul || !to->sub || !to->div) {
    sn_pre_free(to);
    return sn_fail(err, "out of memory for preprocessing");
  }
  memcpy(to->mul, from->mul, bytes);
  memcpy(to->sub, from->sub, bytes);
  memcpy(to->div, from->div, bytes);
  to->features = from->features;
  return 0;
}

int sn_dataset_scale(sn_dataset *ds, float factor, sn_error *err) {
  if (pre_init(ds, err)) return -1;
  for (int64_t f = 0; f < ds->pre.features; f++) {
    ds->pre.mul[f] *= factor;
    ds->pre.sub[f] *= factor;
  }
  return 0;
}

int sn_dataset_normalize(sn_dataset *ds, const double *mean, const double *std, int64_t n,
                         sn_error *err) {
  const int64_t F = sn_dataset_features(ds);
  if (n != 1 && n != F)
    return sn_fail(err,
                   "normalize has %lld values, but samples of %s have %lld features along "
                   "their last axis (give 1 value or %lld)",
                   (long long)n, ds->origin, (long long)F, (long long)F);
  for (int64_t f = 0; f < n; f++)
    if (!(std[f] > 0) || !isfinite(mean[f]))
      return sn_fail(err, "normalize: std %g (feature %lld) must be > 0 and mean finite", std[f],
                     (long long)f);
  if (pre_init(ds, err)) return -1;
  for (int64_t f = 0; f < F; f++) {
    int64_t k = n == 1 ? 0 : f;
    ds->pre.sub[f] += mean[k] * ds->pre.div[f];
    ds->pre.div[f] *= std[k];
  }
  return 0;
}

/* Two streaming passes over the converted values (mean, then squared deviations:
 * no cancellation), a block of samples at a time. */
int sn_dataset_stats(const sn_dataset *ds, double *mean, double *std, sn_error *err) {
  const int64_t F = sn_dataset_features(ds), E = ds->sample_elems;
  const int64_t per = ds->n * (E / F); /* values per feature */
  const int64_t block = E >= 65536 ? 1 : 65536 / E;
  float *buf = malloc((size_t)(block * E) * sizeof(float));
  if (!buf) return sn_fail(err, "%s: out of memory for statistics", ds->origin);
  for (int64_t f = 0; f < F; f++) mean[f] = std[f] = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int64_t i = 0; i < ds->n; i += block) {
      int64_t k = ds->n - i < block ? ds->n - i : block;
      sn_dataset_get(ds, i, k, SN_RT_F32, buf);
      for (int64_t e = 0; e < k * E; e++) {
        if (pass == 0) {
          mean[e % F] += buf[e];
        } else {
          double d = buf[e] - mean[e % F];
          std[e % F] += d * d;
        }
      }
    }
    if (pass == 0)
      for (int64_t f = 0; f < F; f++) mean[f] /= (double)per;
  }
  free(buf);
  for (int64_t f = 0; f < F; f++) {
    std[f] = sqrt(std[f] / (double)per);
    if (!(std[f] > 1e-12 * (fabs(mean[f]) + 1))) std[f] = 1.0; /* constant: maps to 0 */
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * Path lists: one path per line, each maybe a glob pattern */

static int paths_push(sn_paths *p, const char *path, sn_error *err) {
  char **v = realloc(p->v, (size_t)(p->n + 1) * sizeof *v);
  if (!v) return sn_fail(err, "%s: out of memory", path);
  p->v = v;
  if (!(v[p->n] = strdup(path))) return sn_fail(err, "%s: out of memory", path);
  p->n++;
  return 0;
}

/* One entry: the path itself, or the files its pattern matches in sorted order. */
static int paths_entry(sn_paths *p, const char *entry, sn_error *err) {
  if (!strpbrk(entry, "*?[")) return paths_push(p, entry, err);
  glob_t g;
  int rc = glob(entry, GLOB_ERR, NULL, &g);
  if (rc == GLOB_NOMATCH) {
    globfree(&g);
    return sn_fail(err, "%s: no file matches this pattern", entry);
  }
  if (rc) {
    globfree(&g);
    return sn_fail(err, "%s: cannot list the files of this pattern", entry);
  }
  for (size_t i = 0; !rc && i < g.gl_pathc; i++) rc = paths_push(p, g.gl_pathv[i], err);
  globfree(&g);
  return rc;
}

int sn_paths_expand(const char *list, sn_paths *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  char entry[4096];
  for (const char *p = list; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    snprintf(entry, sizeof entry, "%.*s", (int)len, p);
    p += len + (nl != NULL);
    if (len && paths_entry(out, entry, err)) {
      sn_paths_free(out);
      return -1;
    }
  }
  if (out->n == 0) return sn_fail(err, "an empty list of files");
  return 0;
}

void sn_paths_free(sn_paths *p) {
  for (int i = 0; i < p->n; i++) free(p->v[i]);
  free(p->v);
  memset(p, 0, sizeof *p);
}

const char *sn_paths_label(const char *list, char *buf, size_t cap) {
  const char *nl = strchr(list, '\n');
  if (!nl) return list;
  int more = 0;
  for (const char *q = nl; q; q = strchr(q + 1, '\n'))
    if (q[1]) more++;
  snprintf(buf, cap, "%.*s (and %d more)", (int)(nl - list), list, more);
  return buf;
}

int sn_shards_open(const char *x, const char *y, const char *xs, const char *ys, sn_shards *s,
                   sn_error *err) {
  memset(s, 0, sizeof *s);
  char xl[4200], yl[4200];
  if (sn_paths_expand(x, &s->x, err) || (y && sn_paths_expand(y, &s->y, err))) goto fail;
  if (y && s->y.n != s->x.n) {
    sn_fail(err, "%s: %d %s file%s but %s: %d %s file%s; they pair up in order",
            sn_paths_label(x, xl, sizeof xl), s->x.n, xs, s->x.n == 1 ? "" : "s",
            sn_paths_label(y, yl, sizeof yl), s->y.n, ys, s->y.n == 1 ? "" : "s");
    goto fail;
  }
  if (!(s->rows = malloc((size_t)s->x.n * sizeof *s->rows))) {
    sn_fail(err, "%s: out of memory", sn_paths_label(x, xl, sizeof xl));
    goto fail;
  }
  return 0;
fail:
  sn_shards_free(s);
  return -1;
}

void sn_shards_free(sn_shards *s) {
  sn_paths_free(&s->x);
  sn_paths_free(&s->y);
  free(s->rows);
  s->rows = NULL;
}

int sn_dataset_files(const sn_dataset *ds, int64_t *bytes) {
  *bytes = 0;
  const sn_store *s = ds->store;
  if (!s) return 0;
  for (int i = 0; i < s->n_parts; i++) *bytes += (int64_t)s->parts[i].st.st_size;
  return s->n_parts;
}

void sn_dataset_stored_type(const sn_dataset *ds, char *kind, int *size) {
  *kind = ds->store ? ds->store->t.kind : 'f';
  *size = ds->store ? ds->store->t.size : 4;
}
