/* Checkpoints in the safetensors format (https://github.com/huggingface/safetensors),
 * so PyTorch, NumPy or anything else can read specnet weights and the other way
 * round. Layout of a file:
 *
 *   8 bytes      N, the header length, little-endian uint64
 *   N bytes      JSON: {"NAME": {"dtype": "F32", "shape": [3, 4],
 *                        "data_offsets": [BEGIN, END]}, ..., "__metadata__": {...}}
 *                padded with spaces to a multiple of 8 (so the data is aligned)
 *   the rest     the data section; BEGIN/END are byte offsets into it
 *
 * We write one tensor per parameter, in table order, in the model dtype, contiguous
 * from offset 0, atomically (temp file, fsync, rename). We read with a small strict
 * JSON parser for the subset the format uses (objects, arrays, strings with escapes,
 * numbers, literals in metadata), check every tensor's offsets against the file, and
 * load F32, F64, F16 or BF16 tensors into the model dtype. Little-endian hosts only,
 * like the format itself. */
#include "half.h"
#include "specnet/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER (INT64_C(100) << 20) /* bytes: larger is not a checkpoint we wrote */
#define ST_MAX_RANK 8                      /* dims we parse per tensor */
#define ST_MAX_DEPTH 64                    /* JSON nesting bound (metadata) */

/* ---------------------------------------------------------------------------
 * Write */

static const char *model_dtype_name(sn_dtype_rt t) { return t == SN_RT_F64 ? "F64" : "F32"; }

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

int sn_safetensors_write(const char *path, const sn_model *m, sn_error *err) {
  if (m->dtype != SN_RT_F32 && m->dtype != SN_RT_F64)
    return sn_fail(err, "%s: model dtype %d is neither f32 nor f64", path, (int)m->dtype);
  if (m->n_params > 0 && (!m->params || !m->params_info))
    return sn_fail(err, "%s: the model has no parameter buffer (sn_model_alloc first)", path);
  size_t es = m->dtype == SN_RT_F64 ? 8 : 4;
  for (int i = 0; i < m->n_params; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(m->params_info[i].name, m->params_info[j].name) == 0)
        return sn_fail(err, "%s: two parameters are named '%.128s'", path, m->params_info[i].name);

  char *hs = NULL; /* the header, hlen bytes */
  size_t hlen = 0;
  FILE *hf = open_memstream(&hs, &hlen);
  if (!hf) return sn_fail(err, "%s: out of memory building the header", path);
  fputc('{', hf);
  int64_t off = 0; /* bytes into the data section */
  for (int i = 0; i < m->n_params; i++) {
    const sn_param_info *p = &m->params_info[i];
    int64_t nb = p->count * (int64_t)es;
    sn_json_string(hf, p->name);
    fprintf(hf, ":{\"dtype\":\"%s\",\"shape\":[", model_dtype_name(m->dtype));
    for (int d = 0; d < p->rank; d++) fprintf(hf, "%s%lld", d ? "," : "", (long long)p->shape[d]);
    fprintf(hf, "],\"data_offsets\":[%lld,%lld]},", (long long)off, (long long)(off + nb));
    off += nb;
  }
  fputs("\"__metadata__\":{\"format\":\"pt\"}}", hf);
  long n = ftell(hf); /* bytes so far; spaces up to a multiple of 8 */
  if (n >= 0) fprintf(hf, "%*s", (int)((8 - n % 8) % 8), "");
  bool bad_header = n < 0 || ferror(hf);
  if (fclose(hf) != 0 || bad_header) {
    free(hs);
    return sn_fail(err, "%s: out of memory building the header", path);
  }

  char tmp[4200];
  int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (k < 0 || (size_t)k >= sizeof tmp) {
    free(hs);
    return sn_fail(err, "%s: path too long", path);
  }
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    free(hs);
    return sn_fail(err, "%s: cannot create temporary file %s: %s", path, tmp, strerror(e));
  }
  uint8_t len8[8]; /* header length, little-endian */
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
  int bad = write_all(f, len8, 8) || write_all(f, hs, hlen);
  free(hs);
  for (int i = 0; i < m->n_params && !bad; i++) {
    const sn_param_info *p = &m->params_info[i];
    const void *buf = p->buffer == 1 ? m->state : m->params; /* 1: running statistics */
    bad = write_all(f, (const char *)buf + (size_t)p->offset * es, (size_t)p->count * es);
  }
  int e = errno;
  if (!bad && (fflush(f) != 0 || fsync(fileno(f)) != 0)) bad = 1, e = errno;
  if (fclose(f) != 0 && !bad) bad = 1, e = errno;
  if (!bad && rename(tmp, path) != 0) bad = 1, e = errno;
  if (bad) {
    unlink(tmp);
    return sn_fail(err, "%s: cannot write: %s", path, strerror(e));
  }
  /* Make the rename itself durable; a failure here loses nothing already written. */
  char dir[4200];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else if (slash == dir)
    dir[1] = 0; /* "/name": the root */
  else
    *slash = 0;
  int dfd = open(dir, O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * Header parser: a strict JSON reader for the subset safetensors uses */

/* One tensor entry of the header. */
typedef struct st_tensor {
  char *name;     /* decoded key, malloc'd */
  char dtype[16]; /* "F32", ... */
  int rank;
  int64_t shape[ST_MAX_RANK];
  int64_t begin, end; /* bytes into the data section */
} st_tensor;

typedef struct json {
  const char *s;    /* header text, not NUL-terminated */
  size_t n, pos;    /* length, cursor; bytes */
  const char *path; /* for messages */
  sn_error *err;
  int depth;
} json;

__attribute__((format(printf, 2, 3))) static int jfail(json *j, const char *fmt, ...) {
  char buf[sizeof j->err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return sn_fail(j->err, "%s: malformed safetensors header at byte %zu: %s", j->path, 8 + j->pos,
                 buf);
}

static void jws(json *j) {
  while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
                           j->s[j->pos] == '\r'))
    j->pos++;
}

/* next non-space char, or -1 at the end */
static int jpeek(json *j) {
  jws(j);
  return j->pos < j->n ? (unsigned char)j->s[j->pos] : -1;
}

static int jexpect(json *j, char c, const char *what) {
  if (jpeek(j) != c) {
    if (j->pos >= j->n) return jfail(j, "unexpected end of header, expected '%c' %s", c, what);
    return jfail(j, "expected '%c' %s", c, what);
  }
  j->pos++;
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(json *j, unsigned *u) {
  if (j->n - j->pos < 4) return jfail(j, "unexpected end of header in a \\u escape");
  *u = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval((unsigned char)j->s[j->pos + i]);
    if (h < 0) return jfail(j, "bad \\u escape");
    *u = *u * 16 + (unsigned)h;
  }
  j->pos += 4;
  return 0;
}

/* A string; decoded into a malloc'd *out when out != NULL. Decoding never grows the
 * text (an escape of 6 or 12 chars becomes at most 3 or 4 UTF-8 bytes). */
static int jstring(json *j, char **out) {
  if (jexpect(j, '"', "(a string)")) return -1;
  size_t start = j->pos;
  char *buf = out ? malloc(j->n - start + 1) : NULL;
  if (out && !buf) return jfail(j, "out of memory");
  size_t len = 0;
  for (;;) {
    if (j->pos >= j->n) {
      free(buf);
      return jfail(j, "unterminated string");
    }
    unsigned char c = (unsigned char)j->s[j->pos++];
    if (c == '"') break;
    if (c < 0x20) {
      free(buf);
      j->pos--;
      return jfail(j, "control character 0x%02x inside a string", c);
    }
    if (c != '\\') {
      if (buf) buf[len++] = (char)c;
      continue;
    }
    if (j->pos >= j->n) {
      free(buf);
      return jfail(j, "unterminated string");
    }
    char e = j->s[j->pos++];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char map[] = "\"\\/\b\f\n\r\t";
      if (buf) buf[len++] = map[simple - "\"\\/bfnrt"];
      continue;
    }
    if (e != 'u') {
      free(buf);
      j->pos--;
      return jfail(j, "unknown escape '\\%c'", e);
    }
    unsigned u;
    if (read_hex4(j, &u)) {
      free(buf);
      return -1;
    }
    if (u >= 0xDC00 && u <= 0xDFFF) {
      free(buf);
      return jfail(j, "unpaired low surrogate \\u%04x", u);
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      unsigned lo;
      if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u') {
        free(buf);
        return jfail(j, "high surrogate \\u%04x without its low half", u);
      }
      j->pos += 2;
      if (read_hex4(j, &lo)) {
        free(buf);
        return -1;
      }
      if (lo < 0xDC00 || lo > 0xDFFF) {
        free(buf);
        return jfail(j, "high surrogate \\u%04x followed by \\u%04x", u, lo);
      }
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (u == 0) {
      free(buf);
      return jfail(j, "\\u0000 inside a string is not supported");
    }
    if (!buf) continue;
    if (u < 0x80) {
      buf[len++] = (char)u;
    } else if (u < 0x800) {
      buf[len++] = (char)(0xC0 | (u >> 6));
      buf[len++] = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      buf[len++] = (char)(0xE0 | (u >> 12));
      buf[len++] = (char)(0x80 | ((u >> 6) & 0x3F));
      buf[len++] = (char)(0x80 | (u & 0x3F));
    } else {
      buf[len++] = (char)(0xF0 | (u >> 18));
      buf[len++] = (char)(0x80 | ((u >> 12) & 0x3F));
      buf[len++] = (char)(0x80 | ((u >> 6) & 0x3F));
      buf[len++] = (char)(0x80 | (u & 0x3F));
    }
  }
  if (buf) {
    buf[len] = 0;
    *out = buf;
  }
  return 0;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* A non-negative integer that fits int64 (shapes and offsets). */
static int jint(json *j, int64_t *out) {
  int c = jpeek(j);
  if (c == '-') return jfail(j, "expected a non-negative integer, found a negative number");
  if (!is_digit(c)) return jfail(j, "expected a non-negative integer");
  if (c == '0' && j->pos + 1 < j->n && is_digit((unsigned char)j->s[j->pos + 1]))
    return jfail(j, "leading zero in a number");
  uint64_t v = 0;
  while (j->pos < j->n && is_digit((unsigned char)j->s[j->pos])) {
    unsigned dgt = (unsigned)(j->s[j->pos] - '0');
    if (v > ((uint64_t)INT64_MAX - dgt) / 10) return jfail(j, "integer too large");
    v = v * 10 + dgt;
    j->pos++;
  }
  if (j->pos < j->n && j->s[j->pos] && strchr(".eE", j->s[j->pos]))
    return jfail(j, "expected an integer, found a fraction or exponent");
  *out = (int64_t)v;
  return 0;
}

/* Any JSON number (metadata values). */
static int jnumber_skip(json *j) {
  size_t p = j->pos;
  if (p < j->n && j->s[p] == '-') p++;
  if (p >= j->n || !is_digit((unsigned char)j->s[p])) return jfail(j, "bad number");
  if (j->s[p] == '0')
    p++;
  else
    while (p < j->n && is_digit((unsigned char)j->s[p])) p++;
  if (p < j->n && j->s[p] == '.') {
    p++;
    if (p >= j->n || !is_digit((unsigned char)j->s[p])) return jfail(j, "bad number");
    while (p < j->n && is_digit((unsigned char)j->s[p])) p++;
  }
  if (p < j->n && (j->s[p] == 'e' || j->s[p] == 'E')) {
    p++;
    if (p < j->n && (j->s[p] == '+' || j->s[p] == '-')) p++;
    if (p >= j->n || !is_digit((unsigned char)j->s[p])) return jfail(j, "bad number");
    while (p < j->n && is_digit((unsigned char)j->s[p])) p++;
  }
  j->pos = p;
  return 0;
}

/* Parses and discards any JSON value. */
static int jskip(json *j) {
  int c = jpeek(j);
  if (c == '"') return jstring(j, NULL);
  if (c == '-' || is_digit(c)) return jnumber_skip(j);
  static const char *const lits[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t l = strlen(lits[i]);
    if (j->n - j->pos >= l && memcmp(j->s + j->pos, lits[i], l) == 0) {
      j->pos += l;
      return 0;
    }
  }
  if (c != '{' && c != '[') {
    if (c < 0) return jfail(j, "unexpected end of header, expected a value");
    return jfail(j, "expected a value");
  }
  if (++j->depth > ST_MAX_DEPTH) return jfail(j, "nested deeper than %d levels", ST_MAX_DEPTH);
  j->pos++;
  char close = c == '{' ? '}' : ']';
  if (jpeek(j) == close) {
    j->pos++;
    j->depth--;
    return 0;
  }
  for (;;) {
    if (c == '{' && (jstring(j, NULL) || jexpect(j, ':', "after an object key"))) return -1;
    if (jskip(j)) return -1;
    int d = jpeek(j);
    if (d == ',') {
      j->pos++;
      continue;
    }
    if (d == close) break;
    return jfail(j, "expected ',' or '%c'", close);
  }
  j->pos++;
  j->depth--;
  return 0;
}

/* [int, int, ...] with at most cap entries. */
static int jint_array(json *j, int64_t *v, int cap, int *count, const char *what) {
  if (jexpect(j, '[', what)) return -1;
  *count = 0;
  if (jpeek(j) == ']') {
    j->pos++;
    return 0;
  }
  for (;;) {
    if (*count >= cap) return jfail(j, "too many entries %s (at most %d)", what, cap);
    if (jint(j, &v[(*count)++])) return -1;
    int d = jpeek(j);
    if (d == ',') {
      j->pos++;
      continue;
    }
    if (d == ']') break;
    return jfail(j, "expected ',' or ']' %s", what);
  }
  j->pos++;
  return 0;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} for tensor t->name. */
static int jtensor(json *j, st_tensor *t) {
  if (jexpect(j, '{', "(a tensor entry)")) return -1;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  if (jpeek(j) != '}') {
    for (;;) {
      char *key = NULL;
      if (jstring(j, &key)) return -1;
      int rc = jexpect(j, ':', "after an object key");
      if (!rc && strcmp(key, "dtype") == 0) {
        char *dt = NULL;
        rc = has_dtype ? jfail(j, "tensor '%.200s': \"dtype\" given twice", t->name)
                       : jstring(j, &dt);
        if (!rc && strlen(dt) >= sizeof t->dtype)
          rc = jfail(j, "tensor '%.200s': unknown dtype \"%.40s\"", t->name, dt);
        if (!rc) snprintf(t->dtype, sizeof t->dtype, "%s", dt);
        free(dt);
        has_dtype = true;
      } else if (!rc && strcmp(key, "shape") == 0) {
        rc = has_shape ? jfail(j, "tensor '%.200s': \"shape\" given twice", t->name)
                       : jint_array(j, t->shape, ST_MAX_RANK, &t->rank, "in \"shape\"");
        has_shape = true;
      } else if (!rc && strcmp(key, "data_offsets") == 0) {
        int64_t v[2];
        int cnt = 0;
        rc = has_offsets ? jfail(j, "tensor '%.200s': \"data_offsets\" given twice", t->name)
                         : jint_array(j, v, 2, &cnt, "in \"data_offsets\"");
        if (!rc && cnt != 2)
          rc = jfail(j, "tensor '%.200s': \"data_offsets\" needs 2 entries", t->name);
        if (!rc) t->begin = v[0], t->end = v[1];
        has_offsets = true;
      } else if (!rc) {
        rc = jskip(j); /* unknown keys are tolerated */
      }
      free(key);
      if (rc) return -1;
      int d = jpeek(j);
      if (d == ',') {
        j->pos++;
        continue;
      }
      if (d == '}') break;
      if (d < 0)
        return jfail(j, "unexpected end of header in the entry of tensor '%.200s'", t->name);
      return jfail(j, "expected ',' or '}' in the entry of tensor '%.200s'", t->name);
    }
  }
  j->pos++;
  if (!has_dtype || !has_shape || !has_offsets)
    return jfail(j, "tensor '%.200s' lacks \"%s\"", t->name,
                 !has_dtype   ? "dtype"
                 : !has_shape ? "shape"
                              : "data_offsets");
  return 0;
}

/* The tensors of a header. */
typedef struct st_header {
  st_tensor *t;
  int n, cap;
} st_header;

static void header_free(st_header *h) {
  for (int i = 0; i < h->n; i++) free(h->t[i].name);
  free(h->t);
  h->t = NULL;
  h->n = h->cap = 0;
}

static int parse_header(json *j, st_header *h) {
  if (jpeek(j) != '{') return jfail(j, "the header is not a JSON object (not a safetensors file?)");
  j->pos++;
  if (jpeek(j) != '}') {
    for (;;) {
      char *key = NULL;
      if (jstring(j, &key)) return -1;
      if (jexpect(j, ':', "after an object key")) {
        free(key);
        return -1;
      }
      if (strcmp(key, "__metadata__") == 0) {
        free(key);
        if (jpeek(j) != '{') return jfail(j, "\"__metadata__\" must be an object");
        if (jskip(j)) return -1;
      } else {
        if (h->n == h->cap) {
          int ncap = h->cap ? 2 * h->cap : 16;
          st_tensor *nt = realloc(h->t, sizeof *nt * (size_t)ncap);
          if (!nt) {
            free(key);
            return jfail(j, "out of memory");
          }
          h->t = nt;
          h->cap = ncap;
        }
        st_tensor *t = &h->t[h->n++];
        memset(t, 0, sizeof *t);
        t->name = key;
        if (jtensor(j, t)) return -1;
      }
      int d = jpeek(j);
      if (d == ',') {
        j->pos++;
        continue;
      }
      if (d == '}') break;
      if (d < 0) return jfail(j, "unexpected end of header, expected ',' or '}'");
      return jfail(j, "expected ',' or '}'");
    }
  }
  j->pos++;
  if (jpeek(j) >= 0) return jfail(j, "unexpected data after the header object");
  return 0;
}

/* ---------------------------------------------------------------------------
 * Read */

/* bytes per element of a safetensors dtype; 0 if unknown */
static int st_dtype_size(const char *d) {
  static const struct {
    const char *name;
    int size;
  } tab[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
             {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
             {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
    if (strcmp(tab[i].name, d) == 0) return tab[i].size;
  return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}


/* Element i of a tensor stored as dtype (F64/F32/F16/BF16) at src, as a double. */
static double load_elem(const uint8_t *src, int esize, bool bf16, int64_t i) {
  if (esize == 8) {
    double v;
    memcpy(&v, src + 8 * i, 8);
    return v;
  }
  if (esize == 4) {
    float v;
    memcpy(&v, src + 4 * i, 4);
    return v;
  }
  uint16_t h;
  memcpy(&h, src + 2 * i, 2);
  if (!bf16) return sn_f16_to_f32(h);
  uint32_t bits = (uint32_t)h << 16;
  float v;
  memcpy(&v, &bits, 4);
  return v;
}

static void shape_str(char *buf, size_t cap, int rank, const int64_t *shape) {
  size_t len = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < rank && len < cap; d++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (len < cap) snprintf(buf + len, cap - len, ")");
}

/* Checks every entry against the data section and every model parameter against its
 * entry; fills match[i] with the entry of parameter i. */
static int check_entries(const char *path, const sn_model *m, st_header *h, int64_t data_size,
                         const st_tensor **match, sn_error *err) {
  for (int i = 0; i < h->n; i++) {
    const st_tensor *t = &h->t[i];
    if (i > 0 && strcmp(t->name, h->t[i - 1].name) == 0)
      return sn_fail(err, "%s: tensor '%.200s' appears twice in the header", path, t->name);
    if (t->begin > t->end || t->end > data_size)
      return sn_fail(err,
                     "%s: tensor '%.200s' has data_offsets [%lld, %lld] outside the %lld-byte "
                     "data section (truncated file?)",
                     path, t->name, (long long)t->begin, (long long)t->end, (long long)data_size);
    int es = st_dtype_size(t->dtype);
    if (!es) continue; /* a dtype we do not know: fine unless a parameter needs it */
    int64_t nb = es;
    for (int d = 0; d < t->rank; d++) {
      if (t->shape[d] != 0 && nb > INT64_MAX / t->shape[d])
        return sn_fail(err, "%s: tensor '%.200s' has an absurd shape", path, t->name);
      nb *= t->shape[d];
    }
    if (nb != t->end - t->begin)
      return sn_fail(err,
                     "%s: tensor '%.200s' (%s, %d dims) needs %lld bytes but data_offsets "
                     "span %lld",
                     path, t->name, t->dtype, t->rank, (long long)nb,
                     (long long)(t->end - t->begin));
  }
  for (int i = 0; i < m->n_params; i++) {
    const sn_param_info *p = &m->params_info[i];
    st_tensor key = {.name = (char *)p->name};
    const st_tensor *t =
        h->n ? bsearch(&key, h->t, (size_t)h->n, sizeof *h->t, cmp_tensor_name) : NULL;
    if (!t)
      return sn_fail(err, "%s: tensor '%.128s' not found (the checkpoint has %d tensors%s%.200s%s)",
                     path, p->name, h->n, h->n ? ", e.g. '" : "", h->n ? h->t[0].name : "",
                     h->n ? "'" : "");
    bool same = t->rank == p->rank;
    for (int d = 0; same && d < p->rank; d++) same = t->shape[d] == p->shape[d];
    if (!same) {
      char want[160], have[160];
      shape_str(want, sizeof want, p->rank, p->shape);
      shape_str(have, sizeof have, t->rank, t->shape);
      return sn_fail(err, "%s: tensor '%.128s' has shape %s, the model expects %s", path, p->name,
                     have, want);
    }
    if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F64") && strcmp(t->dtype, "F16") &&
        strcmp(t->dtype, "BF16"))
      return sn_fail(err,
                     "%s: tensor '%.128s' has dtype %s; only F32, F64, F16 and BF16 can "
                     "be loaded",
                     path, p->name, t->dtype);
    match[i] = t;
  }
  return 0;
}

/* The 8-byte header length and the JSON header after it, parsed into h (tensors
 * sorted by name); *text holds the header's bytes, which h points into. */
static int read_header(FILE *f, const char *path, int64_t fsize, char **text, st_header *h,
                       int64_t *data_start, sn_error *err) {
  uint8_t len8[8];
  if (fsize < 8 || fread(len8, 1, 8, f) != 8)
    return sn_fail(err,
                   "%s: truncated: a safetensors file starts with an 8-byte header length, "
                   "file has %lld bytes",
                   path, (long long)fsize);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
  if (hlen == 0 || hlen > (uint64_t)ST_MAX_HEADER)
    return sn_fail(err, "%s: header length %llu is %s (not a safetensors file?)", path,
                   (unsigned long long)hlen, hlen ? "over the 100 MB limit" : "zero");
  if ((int64_t)hlen > fsize - 8)
    return sn_fail(err, "%s: truncated: header length %llu runs past the end of the %lld-byte file",
                   path, (unsigned long long)hlen, (long long)fsize);
  *text = malloc((size_t)hlen);
  if (!*text)
    return sn_fail(err, "%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
  if (fread(*text, 1, (size_t)hlen, f) != (size_t)hlen)
    return sn_fail(err, "%s: read error: %s", path, strerror(errno));
  json j = {.s = *text, .n = (size_t)hlen, .path = path, .err = err};
  if (parse_header(&j, h)) return -1;
  if (h->n > 1) qsort(h->t, (size_t)h->n, sizeof *h->t, cmp_tensor_name);
  *data_start = 8 + (int64_t)hlen;
  return 0;
}

enum { ST_CHUNK = 1 << 22 }; /* bytes read at a time */

/* Tensor t of the file into parameter p of the model, converted to the model's
 * dtype, through chunk (ST_CHUNK bytes). */
static int read_tensor(FILE *f, const char *path, sn_model *m, const sn_param_info *p,
                       const st_tensor *t, int64_t data_start, uint8_t *chunk, sn_error *err) {
  int es = st_dtype_size(t->dtype);
  bool bf16 = strcmp(t->dtype, "BF16") == 0;
  if (fseeko(f, (off_t)(data_start + t->begin), SEEK_SET) != 0)
    return sn_fail(err, "%s: seek error: %s", path, strerror(errno));
  void *buf = p->buffer == 1 ? m->state : m->params; /* 1: running statistics */
  int64_t per = ST_CHUNK / es;                       /* elements per chunk */
  for (int64_t e0 = 0; e0 < p->count; e0 += per) {
    int64_t k = p->count - e0 < per ? p->count - e0 : per;
    if (fread(chunk, (size_t)es, (size_t)k, f) != (size_t)k)
      return sn_fail(err, "%s: read error in tensor '%.128s': %s", path, p->name,
                     feof(f) ? "unexpected end of file" : strerror(errno));
    if (m->dtype == SN_RT_F32 && es == 4)
      memcpy((float *)buf + p->offset + e0, chunk, (size_t)k * 4);
    else if (m->dtype == SN_RT_F64 && es == 8)
      memcpy((double *)buf + p->offset + e0, chunk, (size_t)k * 8);
    else if (m->dtype == SN_RT_F32)
      for (int64_t e = 0; e < k; e++)
        ((float *)buf)[p->offset + e0 + e] = (float)load_elem(chunk, es, bf16, e);
    else
      for (int64_t e = 0; e < k; e++)
        ((double *)buf)[p->offset + e0 + e] = load_elem(chunk, es, bf16, e);
  }
  return 0;
}

/* Every value of tensor t finite in the model's dtype (an F64 1e39 is inf as f32), read
 * through chunk before anything is written, so that a refused file leaves the model as
 * it was; not for the training state's own records (__train__.*), where NaN marks a
 * metric an epoch did not have. */
static int check_finite(FILE *f, const char *path, const sn_model *m, const sn_param_info *p,
                        const st_tensor *t, int64_t data_start, uint8_t *chunk, sn_error *err) {
  if (!strncmp(p->name, "__train__.", 10)) return 0;
  int es = st_dtype_size(t->dtype);
  bool bf16 = strcmp(t->dtype, "BF16") == 0;
  if (fseeko(f, (off_t)(data_start + t->begin), SEEK_SET) != 0)
    return sn_fail(err, "%s: seek error: %s", path, strerror(errno));
  int64_t per = ST_CHUNK / es;
  for (int64_t e0 = 0; e0 < p->count; e0 += per) {
    int64_t k = p->count - e0 < per ? p->count - e0 : per;
    if (fread(chunk, (size_t)es, (size_t)k, f) != (size_t)k)
      return sn_fail(err, "%s: read error in tensor '%.128s': %s", path, p->name,
                     feof(f) ? "unexpected end of file" : strerror(errno));
    for (int64_t e = 0; e < k; e++) {
      double v = load_elem(chunk, es, bf16, e);
      if (m->dtype == SN_RT_F32) v = (float)v;
      if (!isfinite(v))
        return sn_fail(err,
                       "%s: tensor '%.128s' element %lld is %s%s; weights must be finite (from "
                       "a run that diverged?)",
                       path, p->name, (long long)(e0 + e), isnan(v) ? "nan" : "inf",
                       m->dtype == SN_RT_F32 && es == 8 && !isnan(v) ? " as float32" : "");
    }
  }
  return 0;
}

int sn_safetensors_read(const char *path, sn_model *m, sn_error *err) {
  if (m->n_params > 0 && (!m->params || !m->params_info))
    return sn_fail(err, "%s: the model has no parameter buffer (sn_model_alloc first)", path);
  if (m->dtype != SN_RT_F32 && m->dtype != SN_RT_F64)
    return sn_fail(err, "%s: model dtype %d is neither f32 nor f64", path, (int)m->dtype);
  FILE *f = fopen(path, "rb");
  if (!f) return sn_fail(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  int sr = fstat(fileno(f), &st);
  if (sr != 0 || S_ISDIR(st.st_mode)) {
    int e = sr != 0 ? errno : EISDIR;
    fclose(f);
    return sn_fail(err, "%s: cannot read: %s", path, strerror(e));
  }
  int64_t fsize = (int64_t)st.st_size, data_start = 0;
  char *text = NULL;
  uint8_t *chunk = NULL;
  const st_tensor **match = NULL;
  st_header h = {0};
  int rc = -1;
  if (read_header(f, path, fsize, &text, &h, &data_start, err)) goto done;
  match = calloc((size_t)m->n_params + 1, sizeof *match);
  if (!match) {
    sn_fail(err, "%s: out of memory", path);
    goto done;
  }
  if (check_entries(path, m, &h, fsize - data_start, match, err)) goto done;
  /* The header checks passed; the values are checked before any is written, so a
   * refused file leaves the model as it was. */
  chunk = malloc(ST_CHUNK);
  if (!chunk) {
    sn_fail(err, "%s: out of memory", path);
    goto done;
  }
  for (int i = 0; i < m->n_params; i++)
    if (check_finite(f, path, m, &m->params_info[i], match[i], data_start, chunk, err)) goto done;
  for (int i = 0; i < m->n_params; i++)
    if (read_tensor(f, path, m, &m->params_info[i], match[i], data_start, chunk, err)) goto done;
  rc = 0;
done:
  free(chunk);
  free(match);
  free(text);
  header_free(&h);
  fclose(f);
  return rc;
}
