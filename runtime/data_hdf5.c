/* HDF5 data sets (libhdf5): {format: hdf5, path: FILE, x: /dataset, y: /dataset}.
 *
 * x is a dataset of shape (n, ...) (rank 2 to 5) of u8 i8 u16 i16 u32 i32 u64 i64,
 * IEEE half (h5py's float16), f32 or f64; y (n) integer labels or float targets, or
 * (n, k) float targets. Samples stay in the file as a store (data_store.c) whose
 * part reads them through a reader below; labels and targets are read whole (4-8
 * bytes a sample), as the NPY reader does.
 *
 * Two ways to read samples:
 *
 * - direct: the dataset is unfiltered (no compression), its elements are stored
 *   exactly as the in-memory type (little-endian, IEEE), and its storage is either
 *   contiguous or chunked with chunks that span whole samples (chunk shape (c, ...the
 *   per-sample shape)). libhdf5 gives the file offset of the data or of each chunk
 *   (H5Dget_offset, H5Dget_chunk_info_by_coord) once at load, and a read is a pread
 *   per run of samples within one chunk, as for an NPY file: no lock, no copy.
 * - hyperslab: anything else (compressed or otherwise filtered chunks, big-endian or
 *   non-IEEE types, chunks that cut samples, external or virtual storage): H5Dread of
 *   a hyperslab of whole samples, libhdf5 converting the type. A read that does not
 *   cover whole samples (sn_dataset_get converts 2048 values at a time) is served
 *   from a block of rows read ahead. Reads hold one mutex (h5_mu). Filtered
 *   chunks are decompressed through a chunk cache of CHUNK_CACHE bytes; unfiltered
 *   ones are read without one (libhdf5 then reads just the selection from the file).
 *
 * The two ways give the same bytes (the direct one is the faster: a shuffled
 * one-sample H5Dread costs about 30 us, a pread a few). libhdf5's own error printing is
 * turned off on every thread that calls it; errors here say what went wrong and
 * list the datasets the file holds. */
#include "data_store.h"
#include "specnet/runtime.h"

#include "half.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANK 5                   /* x: samples and up to 4 per-sample dimensions */
#define CHUNK_CACHE (32 << 20)       /* bytes of decompressed chunks kept (filtered data) */
#define CHUNK_SLOTS 12421            /* hash slots of that cache (a prime, as libhdf5 asks) */
#define READ_AHEAD (256 << 10)       /* bytes of rows read for a read of part of a sample */
#define LIST_MAX 12                  /* datasets named in a "no such dataset" message */

/* libhdf5 prints its error stack from each thread unless told not to. */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------------------
 * Describing datasets: types and shapes, for messages and the listing */

/* The HDF5 type as specnet reads it: *t and the in-memory type to read it as
 * (*mtype, to H5Tclose); NULL on success, else what it is (for the message). */
static const char *h5_type(hid_t ftype, sn_stype *t, hid_t *mtype) {
  *mtype = H5I_INVALID_HID;
  H5T_class_t cls = H5Tget_class(ftype);
  size_t size = H5Tget_size(ftype);
  if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8)) {
    bool sgn = H5Tget_sign(ftype) == H5T_SGN_2;
    hid_t nat[2][4] = {{H5T_NATIVE_UINT8, H5T_NATIVE_UINT16, H5T_NATIVE_UINT32, H5T_NATIVE_UINT64},
                       {H5T_NATIVE_INT8, H5T_NATIVE_INT16, H5T_NATIVE_INT32, H5T_NATIVE_INT64}};
    int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
    *t = (sn_stype){sgn ? 'i' : 'u', (int)size};
    *mtype = H5Tcopy(nat[sgn][k]);
    return NULL;
  }
  if (cls == H5T_FLOAT && (size == 4 || size == 8)) {
    *t = (sn_stype){'f', (int)size};
    *mtype = H5Tcopy(size == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE);
    return NULL;
  }
  if (cls == H5T_FLOAT && size == 2) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(ftype, &spos, &epos, &esize, &mpos, &msize) < 0 || esize != 5 ||
        msize != 10 || H5Tget_ebias(ftype) != 15)
      return "a 16-bit float type that is not IEEE half precision";
    /* IEEE half, little-endian: what h5py writes for numpy's float16 */
    hid_t m = H5Tcopy(H5T_IEEE_F32LE);
    if (m < 0 || H5Tset_fields(m, 15, 10, 5, 0, 10) < 0 || H5Tset_precision(m, 16) < 0 ||
        H5Tset_size(m, 2) < 0 || H5Tset_ebias(m, 15) < 0) {
      if (m >= 0) H5Tclose(m);
      return "a 16-bit float type libhdf5 cannot convert";
    }
    *t = (sn_stype){'f', 2};
    *mtype = m;
    return NULL;
  }
  switch (cls) {
  case H5T_INTEGER: return "an integer type of a size other than 1, 2, 4 or 8 bytes";
  case H5T_FLOAT: return "a float type of a size other than 2, 4 or 8 bytes";
  case H5T_STRING: return "strings";
  case H5T_COMPOUND: return "a compound type (records of fields)";
  case H5T_ENUM: return "an enum type (h5py stores numpy bools as one)";
  case H5T_ARRAY: return "an array type";
  case H5T_VLEN: return "variable-length sequences";
  case H5T_OPAQUE: return "an opaque type";
  case H5T_REFERENCE: return "references";
  case H5T_BITFIELD: return "a bitfield type";
  case H5T_TIME: return "a time type";
  default: return "a type libhdf5 does not describe";
  }
}

/* A short name of a type specnet does not read, for the listing. */
static const char *class_name(hid_t ftype) {
  switch (H5Tget_class(ftype)) {
  case H5T_INTEGER: return "integer of an odd size";
  case H5T_FLOAT: return "float of an odd size";
  case H5T_STRING: return "string";
  case H5T_COMPOUND: return "compound";
  case H5T_ENUM: return "enum";
  case H5T_ARRAY: return "array";
  case H5T_VLEN: return "vlen";
  case H5T_OPAQUE: return "opaque";
  case H5T_REFERENCE: return "reference";
  default: return "other";
  }
}

static const char *stype_name(sn_stype t) {
  switch (t.kind * 16 + t.size) {
  case 'u' * 16 + 1: return "uint8";
  case 'u' * 16 + 2: return "uint16";
  case 'u' * 16 + 4: return "uint32";
  case 'u' * 16 + 8: return "uint64";
  case 'i' * 16 + 1: return "int8";
  case 'i' * 16 + 2: return "int16";
  case 'i' * 16 + 4: return "int32";
  case 'i' * 16 + 8: return "int64";
  case 'f' * 16 + 2: return "float16";
  case 'f' * 16 + 4: return "float32";
  default: return "float64";
  }
}

/* A dataset's rank (-1 when not a simple dataspace) and dims. */
static int h5_shape(hid_t dset, hsize_t dims[H5S_MAX_RANK]) {
  hid_t sp = H5Dget_space(dset);
  if (sp < 0) return -1;
  int rank = H5Sget_simple_extent_type(sp) == H5S_SIMPLE ? H5Sget_simple_extent_ndims(sp)
             : H5Sget_simple_extent_type(sp) == H5S_SCALAR ? 0 : -1;
  if (rank > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  return rank;
}

static void shape_text(int rank, const hsize_t *dims, char *buf, size_t cap) {
  if (rank < 0) {
    snprintf(buf, cap, "(no data)");
    return;
  }
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < rank && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
  if (k < cap) snprintf(buf + k, cap - k, "%s)", rank == 1 ? "," : "");
}

/* "/name (shape) type" of each dataset in the file, for the message that a name is
 * not there. */
typedef struct ds_list {
  char text[1536];
  size_t len;
  int count;
} ds_list;

static herr_t list_one(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  ds_list *l = data;
  if (info->type != H5L_TYPE_HARD) return 0;
  hid_t d = H5Dopen2(group, name, H5P_DEFAULT);
  if (d < 0) return 0; /* a group or a named type */
  if (l->count++ < LIST_MAX && l->len < sizeof l->text) {
    hsize_t dims[H5S_MAX_RANK];
    char shp[96];
    shape_text(h5_shape(d, dims), dims, shp, sizeof shp);
    hid_t ft = H5Dget_type(d), mt;
    sn_stype t;
    const char *bad = ft >= 0 ? h5_type(ft, &t, &mt) : "?";
    const char *tn = ft < 0 ? "?" : bad ? class_name(ft) : stype_name(t);
    if (!bad) H5Tclose(mt);
    l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s/%s %s %s",
                               l->count > 1 ? ", " : "", name, shp, tn);
    if (ft >= 0) H5Tclose(ft);
  }
  H5Dclose(d);
  return 0;
}

static void list_datasets(hid_t file, ds_list *l) {
  memset(l, 0, sizeof *l);
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, list_one, l);
  if (l->count > LIST_MAX && l->len < sizeof l->text)
    snprintf(l->text + l->len, sizeof l->text - l->len, " and %d more", l->count - LIST_MAX);
}

/* Opens dataset `name` of the file; a clear error when there is none. */
static hid_t open_dataset(hid_t file, const char *path, const char *name, const char *key,
                          hid_t dapl, sn_error *err) {
  hid_t obj = H5Oopen(file, name, H5P_DEFAULT);
  H5I_type_t kind = obj >= 0 ? H5Iget_type(obj) : H5I_BADID;
  if (obj >= 0) H5Oclose(obj);
  if (kind == H5I_DATASET) {
    hid_t d = H5Dopen2(file, name, dapl);
    if (d >= 0) return d;
  }
  ds_list l;
  list_datasets(file, &l);
  sn_fail(err, "%s: %s: '%s' %s; %s%s", path, key, name,
          kind == H5I_GROUP ? "is a group, not a dataset" : "is not a dataset in the file",
          l.count ? "the datasets there: " : "the file holds no datasets", l.text);
  return H5I_INVALID_HID;
}

/* ---------------------------------------------------------------------------
 * The reader of a store part */

/* Held by every read through libhdf5 (the readers' dataspaces and rows, and libhdf5
 * itself, which a build without --enable-threadsafe needs). */
static pthread_mutex_t h5_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct h5_reader {
  hid_t file, dset, fspace, mtype;
  int rank;
  hsize_t dims[MAX_RANK];
  int64_t n, elems, size; /* samples, values a sample, bytes a value */
  /* direct reads: run r of `run` samples starts at byte addr[r] of the file */
  int fd;
  int64_t run, n_runs, *addr;
  /* rows [row0, row0 + row_n) read ahead, for reads of part of a sample */
  uint8_t *rows;
  int64_t row0, row_n, row_cap;
} h5_reader;

static void reader_close(void *ctx) {
  h5_reader *r = ctx;
  if (!r) return;
  if (r->mtype >= 0) H5Tclose(r->mtype);
  if (r->fspace >= 0) H5Sclose(r->fspace);
  if (r->dset >= 0) H5Dclose(r->dset);
  if (r->file >= 0) H5Fclose(r->file);
  if (r->fd >= 0) close(r->fd);
  free(r->addr);
  free(r->rows);
  free(r);
}

static bool pread_all(int fd, char *buf, int64_t bytes, int64_t at) {
  int64_t got = 0;
  while (got < bytes) {
    ssize_t k = pread(fd, buf + got, (size_t)(bytes - got), (off_t)(at + got));
    if (k <= 0 && !(k < 0 && errno == EINTR)) return false;
    if (k > 0) got += k;
  }
  return true;
}

static bool read_direct(h5_reader *r, int64_t at, int64_t bytes, char *buf) {
  const int64_t run_bytes = r->run * r->elems * r->size;
  while (bytes > 0) {
    int64_t k = at / run_bytes, in = at - k * run_bytes;
    int64_t len = run_bytes - in < bytes ? run_bytes - in : bytes;
    if (k >= r->n_runs || !pread_all(r->fd, buf, len, r->addr[k] + in)) return false;
    at += len;
    buf += len;
    bytes -= len;
  }
  return true;
}

/* Samples [first, first + count) into buf through libhdf5 (h5_mu held). */
static bool read_rows(h5_reader *r, int64_t first, int64_t count, void *buf) {
  hsize_t start[MAX_RANK] = {0}, cnt[MAX_RANK];
  start[0] = (hsize_t)first;
  cnt[0] = (hsize_t)count;
  for (int d = 1; d < r->rank; d++) cnt[d] = r->dims[d];
  hsize_t m = (hsize_t)(count * r->elems);
  h5_quiet();
  hid_t ms = H5Screate_simple(1, &m, NULL);
  bool ok = ms >= 0 &&
            H5Sselect_hyperslab(r->fspace, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
            H5Dread(r->dset, r->mtype, ms, r->fspace, H5P_DEFAULT, buf) >= 0;
  if (ms >= 0) H5Sclose(ms);
  return ok;
}

/* Bytes that cover part of a sample: from rows read ahead (h5_mu held). */
static bool read_part(h5_reader *r, int64_t at, int64_t bytes, char *buf) {
  const int64_t sb = r->elems * r->size;
  const int64_t lo = at / sb, hi = (at + bytes + sb - 1) / sb; /* rows needed */
  if (lo < r->row0 || hi > r->row0 + r->row_n) {
    int64_t want = hi - lo, ahead = READ_AHEAD / sb;
    if (want < ahead) want = ahead;
    if (lo + want > r->n) want = r->n - lo;
    if (want > r->row_cap) { /* at load, or a read longer than any before */
      uint8_t *grown = realloc(r->rows, (size_t)(want * sb));
      if (!grown) return false;
      r->rows = grown;
      r->row_cap = want;
    }
    r->row_n = 0;
    if (!read_rows(r, lo, want, r->rows)) return false;
    r->row0 = lo;
    r->row_n = want;
  }
  memcpy(buf, r->rows + (at - r->row0 * sb), (size_t)bytes);
  return true;
}

static bool reader_read(void *ctx, int64_t at, int64_t bytes, void *buf) {
  h5_reader *r = ctx;
  if (r->addr) return read_direct(r, at, bytes, buf);
  const int64_t sb = r->elems * r->size;
  pthread_mutex_lock(&h5_mu);
  bool ok = at % sb == 0 && bytes % sb == 0 ? read_rows(r, at / sb, bytes / sb, buf)
                                            : read_part(r, at, bytes, buf);
  pthread_mutex_unlock(&h5_mu);
  return ok;
}

/* Where direct reads find the samples, when they can (else r->addr stays NULL and
 * reads go through libhdf5). */
static void find_direct(h5_reader *r, const char *path, hid_t ftype) {
  hid_t dcpl = H5Dget_create_plist(r->dset);
  if (dcpl < 0) return;
  H5D_layout_t lay = H5Pget_layout(dcpl);
  bool plain = H5Tequal(ftype, r->mtype) > 0 && H5Pget_nfilters(dcpl) == 0 &&
               H5Pget_external_count(dcpl) == 0 &&
               (lay == H5D_CONTIGUOUS || lay == H5D_CHUNKED);
  hsize_t cdims[MAX_RANK];
  if (plain && lay == H5D_CHUNKED) {
    plain = H5Pget_chunk(dcpl, r->rank, cdims) == r->rank;
    for (int d = 1; plain && d < r->rank; d++) plain = cdims[d] == r->dims[d];
  }
  H5Pclose(dcpl);
  if (!plain) return;
  r->run = lay == H5D_CHUNKED ? (int64_t)cdims[0] : r->n;
  r->n_runs = (r->n + r->run - 1) / r->run;
  int64_t *addr = malloc((size_t)r->n_runs * sizeof *addr);
  if (!addr) return;
  for (int64_t k = 0; k < r->n_runs; k++) {
    haddr_t a = HADDR_UNDEF;
    if (lay == H5D_CONTIGUOUS) {
      a = H5Dget_offset(r->dset);
    } else {
      hsize_t off[MAX_RANK] = {0}, size = 0;
      unsigned mask = 0;
      off[0] = (hsize_t)(k * r->run);
      if (H5Dget_chunk_info_by_coord(r->dset, off, &mask, &a, &size) < 0 || mask ||
          size != (hsize_t)(r->run * r->elems * r->size))
        a = HADDR_UNDEF;
    }
    if (a == HADDR_UNDEF) { /* not written (fill values): libhdf5 knows what to give */
      free(addr);
      return;
    }
    addr[k] = (int64_t)a;
  }
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) {
    free(addr);
    return;
  }
  r->addr = addr;
}

/* ---------------------------------------------------------------------------
 * The data set */

/* Every value of samples [0, n) of a float store must be finite as f32: one
 * streaming pass, a block of samples at a time. */
static int check_finite(const char *path, const char *name, sn_store *s, int64_t n,
                        int64_t elems, sn_error *err) {
  const sn_stype t = sn_store_type(s);
  if (t.kind != 'f') return 0;
  const int64_t sb = elems * t.size, block = sb >= (1 << 20) ? 1 : (1 << 20) / sb;
  uint8_t *buf = malloc((size_t)(block * sb));
  if (!buf) return sn_fail(err, "%s: out of memory", path);
  int rc = 0;
  for (int64_t j = 0; !rc && j < n; j += block) {
    int64_t k = n - j < block ? n - j : block;
    if (sn_store_read(s, j, k, buf, err)) {
      rc = -1;
      break;
    }
    for (int64_t e = 0; e < k * elems; e++) {
      double v;
      if (t.size == 2) {
        uint16_t h;
        memcpy(&h, buf + e * 2, 2);
        v = sn_f16_to_f32(h);
      } else if (t.size == 4) {
        float f;
        memcpy(&f, buf + e * 4, 4);
        v = f;
      } else {
        memcpy(&v, buf + e * 8, 8);
      }
      if (isfinite((float)v)) continue;
      rc = sn_fail(err, "%s: x '%s': element %lld of sample %lld is %s; every value must be finite%s",
                   path, name, (long long)(e % elems), (long long)(j + e / elems),
                   isnan(v) ? "nan" : "inf", isfinite(v) ? " (as float32)" : "");
      break;
    }
  }
  free(buf);
  return rc;
}

/* The x dataset into out->store (all its samples; out->n, the shape). */
static int x_dataset(hid_t file, const char *path, const char *name, sn_dataset *out,
                     sn_error *err) {
  h5_reader *r = calloc(1, sizeof *r);
  if (!r) return sn_fail(err, "%s: out of memory", path);
  r->file = r->fspace = r->mtype = H5I_INVALID_HID;
  r->fd = -1;
  r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); /* the reader's own handle */
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), ftype = H5I_INVALID_HID;
  r->dset = r->file < 0 || dapl < 0 ? H5I_INVALID_HID
                                    : open_dataset(file, path, name, "x", dapl, err);
  int rc = -1;
  if (r->file < 0 || dapl < 0) {
    sn_fail(err, "%s: cannot open with libhdf5", path);
    goto done;
  }
  if (r->dset < 0) goto done;
  H5Dclose(r->dset); /* reopened through the reader's handle, with its cache */
  r->dset = H5Dopen2(r->file, name, dapl);
  hsize_t dims[H5S_MAX_RANK];
  int rank = r->dset < 0 ? -1 : h5_shape(r->dset, dims);
  ftype = r->dset < 0 ? H5I_INVALID_HID : H5Dget_type(r->dset);
  if (ftype < 0) {
    sn_fail(err, "%s: cannot read dataset '%s'", path, name);
    goto done;
  }
  sn_stype t;
  const char *bad = h5_type(ftype, &t, &r->mtype);
  if (bad) {
    sn_fail(err,
            "%s: x: dataset '%s' holds %s; supported: uint8, int8, (u)int16, (u)int32, "
            "(u)int64, float16, float32, float64; hint: store it as numbers, e.g. "
            "f.create_dataset(name, data=a.astype('float32'))",
            path, name, bad);
    goto done;
  }
  char shp[96];
  shape_text(rank, dims, shp, sizeof shp);
  if (rank < 2 || rank > MAX_RANK) {
    sn_fail(err,
            "%s: x: dataset '%s' has shape %s; x must have shape (samples, ...) with 2 to %d "
            "dimensions%s",
            path, name, shp, MAX_RANK,
            rank == 1 ? "; hint: one feature per sample is shape (samples, 1)" : "");
    goto done;
  }
  r->rank = rank;
  memcpy(r->dims, dims, (size_t)rank * sizeof dims[0]);
  r->n = (int64_t)dims[0];
  r->elems = 1;
  for (int d = 1; d < rank; d++) r->elems *= (int64_t)dims[d];
  r->size = t.size;
  if (r->n == 0 || r->elems == 0) {
    sn_fail(err, "%s: x: dataset '%s' has shape %s: no %s", path, name, shp,
            r->n == 0 ? "samples" : "values in a sample");
    goto done;
  }
  r->fspace = H5Dget_space(r->dset);
  find_direct(r, path, ftype);
  if (!r->addr) { /* through libhdf5: a chunk cache for compressed chunks only */
    hid_t dcpl = H5Dget_create_plist(r->dset);
    bool filtered = dcpl >= 0 && H5Pget_nfilters(dcpl) > 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Dclose(r->dset);
    H5Pset_chunk_cache(dapl, CHUNK_SLOTS, filtered ? CHUNK_CACHE : 0, 1.0);
    r->dset = H5Dopen2(r->file, name, dapl);
  }
  if (r->fspace < 0 || r->dset < 0) {
    sn_fail(err, "%s: cannot read dataset '%s'", path, name);
    goto done;
  }
  out->n = r->n;
  out->rank = rank - 1;
  for (int d = 0; d < 4; d++) out->shape[d] = d + 1 < rank ? (int64_t)dims[d + 1] : 1;
  out->sample_elems = r->elems;
  const int64_t n = r->n, elems = r->elems;
  sn_store_reader rd = {reader_read, reader_close, r};
  r = NULL; /* the store's from here */
  rc = sn_store_add_reader(&out->store, path, t, n, elems, rd, err);
done:
  if (ftype >= 0) H5Tclose(ftype);
  if (dapl >= 0) H5Pclose(dapl);
  reader_close(r);
  return rc;
}

/* The y dataset, whole, as double: *yd (n * *k values), *ynd its rank. */
static int y_dataset(hid_t file, const char *path, const char *xname, const char *name,
                     int64_t n, double **yd, int *ynd, int64_t *k, bool *yint, sn_error *err) {
  hid_t d = open_dataset(file, path, name, "y", H5P_DEFAULT, err);
  if (d < 0) return -1;
  hsize_t dims[H5S_MAX_RANK];
  int rank = h5_shape(d, dims);
  hid_t ft = H5Dget_type(d), mt = H5I_INVALID_HID;
  sn_stype t;
  const char *bad = ft >= 0 ? h5_type(ft, &t, &mt) : "an unreadable type";
  char shp[96];
  shape_text(rank, dims, shp, sizeof shp);
  int rc = -1;
  if (bad)
    sn_fail(err, "%s: y: dataset '%s' holds %s; labels are integers, targets numbers", path,
            name, bad);
  else if (rank < 1 || rank > 2)
    sn_fail(err, "%s: y: dataset '%s' has shape %s; y must have shape (samples) or (samples, k)",
            path, name, shp);
  else if ((int64_t)dims[0] != n)
    sn_fail(err, "%s: sample count mismatch: x '%s' has %lld samples but y '%s' has %lld", path,
            xname, (long long)n, name, (long long)dims[0]);
  else if (!(*yd = malloc((size_t)(n * (rank == 2 ? (int64_t)dims[1] : 1)) * sizeof(double) + 1)))
    sn_fail(err, "%s: out of memory for y", path);
  else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *yd) < 0)
    sn_fail(err, "%s: cannot read dataset '%s'", path, name);
  else
    rc = 0;
  *ynd = rank;
  *k = rank == 2 ? (int64_t)dims[1] : 1;
  *yint = !bad && t.kind != 'f';
  if (mt >= 0) H5Tclose(mt);
  if (ft >= 0) H5Tclose(ft);
  H5Dclose(d);
  return rc;
}

/* The file itself: a clear error when it is missing or not HDF5. */
static hid_t open_file(const char *path, sn_error *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    return H5I_INVALID_HID;
  }
  if (!S_ISREG(st.st_mode)) {
    sn_fail(err, "%s: cannot read: not a regular file", path);
    return H5I_INVALID_HID;
  }
  if (H5Fis_hdf5(path) <= 0) {
    sn_fail(err, "%s: not an HDF5 file (no HDF5 signature)", path);
    return H5I_INVALID_HID;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) sn_fail(err, "%s: libhdf5 cannot open it (damaged, or an unsupported version)", path);
  return f;
}

int sn_dataset_hdf5(const sn_source *src, sn_dataset *out, sn_error *err) {
  memset(out, 0, sizeof *out);
  h5_quiet();
  const char *path = src->path, *xn = src->images, *yn = src->labels;
  bool labels = !src->no_labels;
  if (!path[0]) return sn_fail(err, "an hdf5 source needs path (the file)");
  if (!xn[0]) return sn_fail(err, "%s: an hdf5 source needs x (the samples' dataset)", path);
  if (labels && !yn[0])
    return sn_fail(err, "%s: an hdf5 source needs y (the labels' or targets' dataset)", path);
  hid_t file = open_file(path, err);
  if (file < 0) return -1;
  double *yd = NULL;
  int ynd = 0, rc = -1;
  int64_t k = 1;
  bool yint = false;
  if (x_dataset(file, path, xn, out, err)) goto done;
  const int64_t all = out->n;
  if (src->limit > 0 && src->limit < out->n) out->n = src->limit;
  if (check_finite(path, xn, out->store, out->n, out->sample_elems, err)) goto done;
  if (labels && y_dataset(file, path, xn, yn, all, &yd, &ynd, &k, &yint, err)) goto done;
  snprintf(out->origin, sizeof out->origin, "%s", path);
  if (sn_store_in_memory() && sn_dataset_to_memory(out, err)) goto done;
  char where[3200];
  snprintf(where, sizeof where, "%.2000s: y '%.1000s'", path, yn);
  if (labels && sn_labels_from_values(src, where, yd, ynd, k, yint, out->n, out, err)) goto done;
  if (labels) snprintf(out->label_origin, sizeof out->label_origin, "%s", where);
  rc = 0;
done:
  if (rc) sn_dataset_free(out);
  free(yd);
  H5Fclose(file);
  return rc;
}

void sn_hdf5_enable(void) { sn_store_set_hdf5(sn_dataset_hdf5); }
