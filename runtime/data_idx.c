/* IDX reader (the MNIST file format: LeCun's "idx3-ubyte" / "idx1-ubyte"), raw or
 * gzip-compressed, told apart by the gzip magic bytes 1f 8b.
 *
 * Layout: bytes 00 00 TYPE NDIMS, then NDIMS big-endian uint32 sizes, then the
 * elements in row-major order. Only TYPE 0x08 (unsigned byte) is read; that is what
 * image and label files use. Every failure names the file and what is wrong; the
 * header is checked before any allocation sized by it, and a gzip stream is read
 * into a buffer that grows with the data actually present, so a lying header cannot
 * make us allocate gigabytes for a small file. Data beyond what the header declares
 * is an error: in practice it means the header is wrong. */
#define _DEFAULT_SOURCE /* realpath */
#include "data_store.h"
#include "specnet/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_BYTES (INT64_C(1) << 34) /* 16 GiB of data: more is a corrupt header */
#define IDX_MAX_NDIMS 5                  /* samples + up to 4 per-sample dims */
#define GZ_CHUNK (INT64_C(1) << 20)      /* first buffer size for gzip data, bytes */

/* Where the bytes come from: exactly one of f / gz is open. */
typedef struct idx_reader {
  const char *path;
  FILE *f;          /* raw file */
  gzFile gz;        /* gzip stream */
  int64_t raw_size; /* raw: file size in bytes */
} idx_reader;

/* sn_fail with "PATH: " in front. */
__attribute__((format(printf, 3, 4))) static int idx_fail(sn_error *err, const char *path,
                                                          const char *fmt, ...) {
  char buf[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return sn_fail(err, "%s: %s", path, buf);
}

/* The zlib failure of r->gz, or NULL if the stream has no hard error (Z_OK, or
 * Z_BUF_ERROR which only means the input ended early). *cut is set when it did. */
static const char *gz_problem(idx_reader *r, int *cut) {
  int errnum = Z_OK;
  const char *msg = gzerror(r->gz, &errnum);
  *cut = errnum == Z_BUF_ERROR;
  if (errnum == Z_OK || errnum == Z_BUF_ERROR) return NULL;
  if (errnum == Z_ERRNO) return strerror(errno);
  /* zlib puts "PATH: " in front; our messages already start with the path */
  size_t plen = strlen(r->path);
  if (msg && !strncmp(msg, r->path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
  return msg && *msg ? msg : "unknown zlib error";
}

static int gz_fail(sn_error *err, idx_reader *r) {
  int cut;
  const char *why = gz_problem(r, &cut);
  return idx_fail(err, r->path, "corrupt gzip data: %s", why ? why : "read failed");
}

/* Reads up to n bytes; returns how many were read (short at end of data), or -1
 * with err set on a read or decompression error. */
static int64_t idx_read_some(idx_reader *r, uint8_t *buf, int64_t n, sn_error *err) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got < (INT64_C(1) << 30) ? n - got : (INT64_C(1) << 30);
    if (r->f) {
      size_t k = fread(buf + got, 1, (size_t)want, r->f);
      got += (int64_t)k;
      if (k < (size_t)want) {
        if (ferror(r->f)) return idx_fail(err, r->path, "read error: %s", strerror(errno));
        break;
      }
    } else {
      int k = gzread(r->gz, buf + got, (unsigned)want);
      if (k < 0) return gz_fail(err, r);
      if (k == 0) break;
      got += k;
    }
  }
  if (r->gz) {
    int cut;
    if (gz_problem(r, &cut)) return gz_fail(err, r);
  }
  return got;
}

static const char *idx_type_name(int t) {
  switch (t) {
  case 0x08:
    return "unsigned byte";
  case 0x09:
    return "signed byte";
  case 0x0B:
    return "int16";
  case 0x0C:
    return "int32";
  case 0x0D:
    return "float32";
  case 0x0E:
    return "float64";
  default:
    return "not an IDX type";
  }
}

/* The header: checked, *rank, dims, *count and *total (bytes of data), and *offset
 * (where the data starts). For a raw file the size must match exactly. */
static int idx_header(idx_reader *r, int *rank, int64_t dims[4], int64_t *count, int64_t *total,
                      int64_t *offset, sn_error *err) {
  const char *path = r->path;
  uint8_t head[4 + 4 * IDX_MAX_NDIMS];
  int64_t got = idx_read_some(r, head, 4, err);
  if (got < 0) return -1;
  if (got == 0) return idx_fail(err, path, "file is empty (expected an IDX header)");
  if (got < 4)
    return idx_fail(err, path, "truncated: the IDX header needs 4 bytes, file has %lld",
                    (long long)got);
  if (head[0] != 0 || head[1] != 0)
    return idx_fail(err, path,
                    "not an IDX file: bad magic bytes %02x %02x %02x %02x "
                    "(expected 00 00 08 NN)",
                    head[0], head[1], head[2], head[3]);
  int type = head[2], ndims = head[3];
  if (type != 0x08)
    return idx_fail(err, path,
                    "unsupported IDX element type 0x%02x (%s); only 0x08 (unsigned byte) "
                    "is supported",
                    type, idx_type_name(type));
  if (ndims == 0) return idx_fail(err, path, "IDX header declares 0 dimensions");
  if (ndims > IDX_MAX_NDIMS)
    return idx_fail(err, path,
                    "IDX file has %d dimensions; at most %d are supported (samples + 4 "
                    "per sample)",
                    ndims, IDX_MAX_NDIMS);
  got = idx_read_some(r, head + 4, 4 * ndims, err);
  if (got < 0) return -1;
  if (got < 4 * ndims)
    return idx_fail(err, path, "truncated: the IDX header needs %d bytes, file has %lld",
                    4 + 4 * ndims, (long long)(4 + got));
  int64_t d[IDX_MAX_NDIMS]; /* d[0] = samples, then per-sample dims */
  int64_t bytes = 1;        /* bytes of data = product of all dims */
  bool absurd = false;
  for (int i = 0; i < ndims; i++) {
    const uint8_t *p = head + 4 + 4 * i;
    d[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                     (uint32_t)p[3]);
    if (i > 0 && d[i] == 0) return idx_fail(err, path, "IDX dimension %d of %d is 0", i + 1, ndims);
    if (d[i] != 0 && bytes > IDX_MAX_BYTES / d[i]) absurd = true;
    if (!absurd) bytes *= d[i];
  }
  if (absurd || bytes > IDX_MAX_BYTES) {
    char shape[128] = "";
    size_t len = 0;
    for (int i = 0; i < ndims && len < sizeof shape; i++)
      len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", i ? "x" : "",
                              (long long)d[i]);
    return idx_fail(err, path,
                    "absurd IDX dimensions %s: more than %lld bytes of data (corrupt "
                    "header?)",
                    shape, (long long)IDX_MAX_BYTES);
  }
  int64_t header_bytes = 4 + 4 * (int64_t)ndims;
  if (r->f) { /* raw: the file size tells everything before we allocate */
    int64_t avail = r->raw_size - header_bytes;
    if (avail < bytes)
      return idx_fail(err, path, "truncated: expected %lld bytes of data, file has %lld",
                      (long long)bytes, (long long)avail);
    if (avail > bytes)
      return idx_fail(err, path,
                      "%lld bytes of trailing data after the %lld bytes the header "
                      "declares (wrong header?)",
                      (long long)(avail - bytes), (long long)bytes);
  }
  *rank = ndims - 1;
  for (int i = 0; i < 4; i++) dims[i] = i + 1 < ndims ? d[i + 1] : 1;
  *count = d[0];
  *total = bytes;
  *offset = header_bytes;
  return 0;
}

/* The end of a gzip stream after its `total` bytes of data: finishes the stream, so
 * that a CRC mismatch or a cut-off trailer surfaces, and tells whether data follows
 * what the header declares. */
static int gz_end(idx_reader *r, int64_t total, sn_error *err) {
  uint8_t probe;
  int k = gzread(r->gz, &probe, 1), cut = 0;
  if (k < 0 || gz_problem(r, &cut)) return gz_fail(err, r);
  if (k > 0)
    return idx_fail(err, r->path,
                    "more data than the %lld bytes the header declares (wrong header?)",
                    (long long)total);
  if (cut)
    return idx_fail(err, r->path,
                    "corrupt gzip data: stream cut off after the data (unexpected end of file)");
  return 0;
}

static int idx_short(idx_reader *r, int64_t total, int64_t have, sn_error *err) {
  int cut = 0;
  if (r->gz) gz_problem(r, &cut);
  return idx_fail(err, r->path, "truncated: expected %lld bytes of data, file has %lld%s",
                  (long long)total, (long long)have,
                  cut ? " (gzip stream cut off: unexpected end of file)" : "");
}

/* The `total` bytes of data into *data (malloc'd): raw in one allocation of the
 * known size, gzip in a buffer that grows with the data present. */
static int idx_data(idx_reader *r, int64_t total, uint8_t **data, sn_error *err) {
  int64_t cap = r->f || total < GZ_CHUNK ? total : GZ_CHUNK;
  uint8_t *buf = malloc(cap > 0 ? (size_t)cap : 1); /* (samples, prod(dims)) bytes */
  if (!buf) return idx_fail(err, r->path, "out of memory for %lld bytes", (long long)cap);
  int64_t have = 0;
  while (have < total) {
    if (have == cap) {
      int64_t ncap = cap > total / 2 ? total : cap * 2;
      uint8_t *nb = realloc(buf, (size_t)ncap);
      if (!nb) {
        free(buf);
        return idx_fail(err, r->path, "out of memory for %lld bytes", (long long)ncap);
      }
      buf = nb;
      cap = ncap;
    }
    int64_t k = idx_read_some(r, buf + have, cap - have, err);
    if (k < 0) {
      free(buf);
      return -1;
    }
    have += k;
    if (have < cap) break; /* end of data */
  }
  if (have < total || (r->gz && gz_end(r, total, err))) {
    if (have < total) idx_short(r, total, have, err);
    free(buf);
    return -1;
  }
  *data = buf;
  return 0;
}

/* Header and data; r is open. header_only: a raw file's data is not read (*data
 * NULL, *offset where it starts); a gzip file's always is. */
static int idx_read_open(idx_reader *r, bool header_only, int *rank, int64_t dims[4],
                         uint8_t **data, int64_t *count, int64_t *offset, sn_error *err) {
  int64_t total = 0;
  if (idx_header(r, rank, dims, count, &total, offset, err)) return -1;
  if (r->f && header_only) return 0;
  return idx_data(r, total, data, err);
}

static int idx_read(const char *path, bool header_only, int *rank, int64_t dims[4],
                    uint8_t **data, int64_t *count, int64_t *offset, sn_error *err) {
  *data = NULL;
  *rank = 0;
  *count = 0;
  for (int i = 0; i < 4; i++) dims[i] = 1;
  idx_reader r = {.path = path};
  r.f = fopen(path, "rb");
  if (!r.f) return idx_fail(err, path, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fileno(r.f), &st) != 0) {
    int e = errno;
    fclose(r.f);
    return idx_fail(err, path, "cannot stat: %s", strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    fclose(r.f);
    return idx_fail(err, path, "is a directory, not an IDX file");
  }
  uint8_t magic[2] = {0, 0};
  size_t m = fread(magic, 1, 2, r.f);
  if (m == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    fclose(r.f);
    r.f = NULL;
    errno = 0;
    r.gz = gzopen(path, "rb");
    if (!r.gz)
      return idx_fail(err, path, "cannot open: %s",
                      errno ? strerror(errno) : "zlib could not allocate its state");
    gzbuffer(r.gz, 1 << 17);
  } else {
    rewind(r.f);
    r.raw_size = (int64_t)st.st_size;
  }
  int rc = idx_read_open(&r, header_only, rank, dims, data, count, offset, err);
  if (r.f) fclose(r.f);
  if (r.gz) gzclose(r.gz);
  if (rc) {
    *rank = 0;
    *count = 0;
  }
  return rc;
}

int sn_idx_read(const char *path, int *rank, int64_t dims[4], uint8_t **data, int64_t *count,
                sn_error *err) {
  int64_t offset;
  return idx_read(path, false, rank, dims, data, count, &offset, err);
}

int sn_idx_open(const char *path, int *rank, int64_t dims[4], uint8_t **data, int64_t *count,
                int64_t *offset, sn_error *err) {
  return idx_read(path, true, rank, dims, data, count, offset, err);
}

/* ---------------------------------------------------------------------------
 * The gzip cache: a gzip IDX file decompressed once into a raw IDX file under
 * $SPECNET_CACHE_DIR/data (else $XDG_CACHE_HOME/specnet/data, ~/.cache/specnet/data),
 * named by a hash of the source's absolute path, its size and its mtime, so that
 * a changed source gets a new file (and the old one is removed). Written aside and
 * renamed into place: a reader sees the whole file or none. */

static bool cache_dir(char *dir, size_t cap) {
  const char *d = getenv("SPECNET_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  int n = d && *d   ? snprintf(dir, cap, "%s/data", d)
          : x && *x ? snprintf(dir, cap, "%s/specnet/data", x)
          : home && *home ? snprintf(dir, cap, "%s/.cache/specnet/data", home)
                          : -1;
  if (n < 0 || (size_t)n >= cap) return false;
  for (char *p = dir + 1; *p; p++) { /* mkdir -p */
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return false;
    *p = '/';
  }
  return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

/* The cache file's name for the source at path (st: its stat); its stem (the part
 * shared by every version of the source) in *stem. */
static bool cache_name(const char *path, const struct stat *st, char *out, size_t cap,
                       char *stem, size_t stem_cap) {
  char dir[4096];
  char *abs = realpath(path, NULL);
  if (!abs || !cache_dir(dir, sizeof dir)) {
    free(abs);
    return false;
  }
  uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
  for (const char *p = abs; *p; p++) h = (h ^ (uint8_t)*p) * UINT64_C(0x100000001b3);
  const char *base = strrchr(abs, '/') + 1;
  int k1 = snprintf(stem, stem_cap, "%s/%.100s-%016llx", dir, base, (unsigned long long)h);
  int k2 = snprintf(out, cap, "%s-%lld-%lld.%09ld.idx", stem, (long long)st->st_size,
                    (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
  free(abs);
  return k1 > 0 && (size_t)k1 < stem_cap && k2 > 0 && (size_t)k2 < cap;
}

static bool write_all(int fd, const uint8_t *p, int64_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, (size_t)n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= k;
  }
  return true;
}

/* Decompresses r (a gzip IDX) into fd as a raw IDX: 0, -1 with err set when the
 * data is bad, 1 when writing failed. */
static int gz_to_raw(idx_reader *r, int fd, sn_error *err) {
  int rank;
  int64_t dims[4], count, total = 0, offset;
  if (idx_header(r, &rank, dims, &count, &total, &offset, err)) return -1;
  uint8_t head[4 + 4 * IDX_MAX_NDIMS] = {0, 0, 0x08, (uint8_t)(rank + 1)};
  for (int i = 0; i <= rank && i < IDX_MAX_NDIMS; i++) {
    uint32_t v = (uint32_t)(i == 0 ? count : dims[i - 1]);
    for (int b = 0; b < 4; b++) head[4 + 4 * i + b] = (uint8_t)(v >> (24 - 8 * b));
  }
  if (!write_all(fd, head, offset)) return 1;
  uint8_t *buf = malloc((size_t)GZ_CHUNK);
  if (!buf) return idx_fail(err, r->path, "out of memory");
  int64_t have = 0;
  int rc = 0;
  while (!rc && have < total) {
    int64_t want = total - have < GZ_CHUNK ? total - have : GZ_CHUNK;
    int64_t k = idx_read_some(r, buf, want, err);
    if (k < 0) rc = -1;
    else if (k > 0 && !write_all(fd, buf, k)) rc = 1;
    else if (k < want) rc = idx_short(r, total, have + k, err);
    else have += k;
  }
  free(buf);
  if (!rc && gz_end(r, total, err)) rc = -1;
  return rc;
}

/* Removes the files of stem other than keep: copies of the source at another size
 * or mtime. */
static void cache_prune(const char *stem, const char *keep) {
  char pattern[4400];
  snprintf(pattern, sizeof pattern, "%s-*.idx", stem);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++)
      if (strcmp(g.gl_pathv[i], keep)) unlink(g.gl_pathv[i]);
  globfree(&g);
}

int sn_idx_cache(const char *path, char *out, size_t cap, sn_error *err) {
  snprintf(out, cap, "%s", path);
  struct stat st;
  uint8_t magic[2] = {0, 0};
  FILE *f = fopen(path, "rb");
  if (!f) return 0; /* the reader reports it */
  size_t m = fread(magic, 1, 2, f);
  bool ok = fstat(fileno(f), &st) == 0 && !S_ISDIR(st.st_mode);
  fclose(f);
  if (!ok || m < 2 || magic[0] != 0x1f || magic[1] != 0x8b) return 0; /* raw */
  char name[4400], stem[4300], tmp[4500];
  if (!cache_name(path, &st, name, sizeof name, stem, sizeof stem)) return 1;
  struct stat cs;
  if (stat(name, &cs) == 0 && S_ISREG(cs.st_mode) && snprintf(out, cap, "%s", name) < (int)cap)
    return 0;
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", name);
  int fd = mkstemp(tmp);
  if (fd < 0) return 1;
  idx_reader r = {.path = path};
  errno = 0;
  r.gz = gzopen(path, "rb");
  int rc = 1;
  if (r.gz) {
    gzbuffer(r.gz, 1 << 17);
    rc = gz_to_raw(&r, fd, err);
    gzclose(r.gz);
  }
  if (close(fd) != 0 && rc == 0) rc = 1;
  if (rc == 0 && rename(tmp, name) != 0) rc = 1;
  if (rc) {
    unlink(tmp);
    return rc;
  }
  cache_prune(stem, name);
  snprintf(out, cap, "%s", name);
  return 0;
}
