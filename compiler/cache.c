/* The compile cache: object code of a compiled spec, under $SPECNET_CACHE_DIR,
 * else $XDG_CACHE_HOME/specnet, else ~/.cache/specnet. The key is a 128-bit hash
 * of everything the objects depend on: the unoptimized LLVM IR of the plan's
 * modules (which holds the dtype, shapes, kernels and constants, and how the
 * program is split into modules), the target CPU and its features, the LLVM
 * version and specnet's version. An entry holds the n objects of one program:
 *   "SNCACHE2" | key (16 bytes) | n (8) | n object sizes (8 each) |
 *   hash of the objects (8) | the objects, back to back
 * and is used only if all of it checks out; anything else is rebuilt and
 * replaced (atomically: temp file + rename). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen.h"
#include "specnet/version.h"

static const char MAGIC[8] = {'S', 'N', 'C', 'A', 'C', 'H', 'E', '2'};

/* Two independent 64-bit hashes (FNV-1a and a multiply-xorshift), for 128 bits. */
static void hash128(const void *data, size_t n, uint64_t h[2]) {
  const unsigned char *p = data;
  uint64_t a = h[0] ? h[0] : 0xcbf29ce484222325ull, b = h[1] ? h[1] : 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    a = (a ^ p[i]) * 0x100000001b3ull;
    b = (b + p[i] + 1) * 0xff51afd7ed558ccdull;
    b ^= b >> 29;
  }
  h[0] = a;
  h[1] = b;
}

static uint64_t hash64(const void *data, size_t n) {
  uint64_t h[2] = {0, 0};
  hash128(data, n, h);
  return h[0] ^ (h[1] * 0xc4ceb9fe1a85ec53ull);
}

void sn_cache_key(sn_codegen *cg, int n, const LLVMModuleRef *m, uint64_t key[2]) {
  key[0] = key[1] = 0;
  for (int i = 0; i < n; i++) {
    char *ir = LLVMPrintModuleToString(m[i]);
    hash128(ir, strlen(ir) + 1, key); /* the NUL separates the modules */
    LLVMDisposeMessage(ir);
  }
  unsigned maj, min, pat;
  LLVMGetVersion(&maj, &min, &pat);
  char meta[8192];
  int len = snprintf(meta, sizeof meta, "|%d|%s|%s|%s|llvm %u.%u.%u|specnet %s", n, cg->triple, cg->cpu,
                     cg->features, maj, min, pat, SPECNET_VERSION_STRING);
  hash128(meta, (size_t)(len < (int)sizeof meta ? len : (int)sizeof meta - 1), key);
}

int sn_cache_dir(char *dir, size_t len) {
  const char *d = getenv("SPECNET_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int n;
  if (d && *d) n = snprintf(dir, len, "%s", d);
  else if (x && *x) n = snprintf(dir, len, "%s/specnet", x);
  else if (home && *home) n = snprintf(dir, len, "%s/.cache/specnet", home);
  else return -1;
  return n > 0 && (size_t)n < len ? 0 : -1;
}

static void entry_path(const char *dir, const uint64_t key[2], char *path, size_t len) {
  snprintf(path, len, "%s/%016llx%016llx.o", dir, (unsigned long long)key[0], (unsigned long long)key[1]);
}

char *sn_cache_read(const char *dir, const uint64_t key[2], int n, size_t *size) {
  if (n < 1 || n > SN_CACHE_MAX_OBJ) return NULL;
  char path[4200];
  entry_path(dir, key, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char head[32 + 8 * SN_CACHE_MAX_OBJ + 8];
  size_t head_n = 32 + 8 * (size_t)n + 8;
  char *obj = NULL;
  if (fread(head, 1, head_n, f) != head_n || memcmp(head, MAGIC, 8)) goto bad;
  uint64_t k[2], count, h, total = 0;
  memcpy(k, head + 8, 16);
  memcpy(&count, head + 24, 8);
  if (k[0] != key[0] || k[1] != key[1] || count != (uint64_t)n) goto bad;
  for (int i = 0; i < n; i++) {
    uint64_t s;
    memcpy(&s, head + 32 + 8 * i, 8);
    if (s == 0 || s > ((uint64_t)1 << 31)) goto bad;
    size[i] = (size_t)s;
    total += s;
  }
  memcpy(&h, head + 32 + 8 * n, 8);
  if (total > ((uint64_t)1 << 31)) goto bad;
  obj = malloc((size_t)total);
  if (!obj || fread(obj, 1, (size_t)total, f) != (size_t)total || fgetc(f) != EOF ||
      hash64(obj, (size_t)total) != h)
    goto bad;
  fclose(f);
  return obj;
bad:
  free(obj);
  fclose(f);
  return NULL;
}

/* Best effort: a cache that cannot be written only costs time. */
void sn_cache_write(const char *dir, const uint64_t key[2], int n, const char *const *obj, const size_t *size) {
  if (n < 1 || n > SN_CACHE_MAX_OBJ || sn_mkdirs(dir)) return;
  char path[4200], tmp[4300];
  entry_path(dir, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return;
  uint64_t count = (uint64_t)n, sizes[SN_CACHE_MAX_OBJ], h[2] = {0, 0};
  for (int i = 0; i < n; i++) {
    sizes[i] = size[i];
    hash128(obj[i], size[i], h); /* chained: the hash of the objects back to back */
  }
  uint64_t hh = h[0] ^ (h[1] * 0xc4ceb9fe1a85ec53ull);
  bool ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(key, 8, 2, f) == 2 && fwrite(&count, 8, 1, f) == 1 &&
            fwrite(sizes, 8, (size_t)n, f) == (size_t)n && fwrite(&hh, 8, 1, f) == 1;
  for (int i = 0; i < n && ok; i++) ok = fwrite(obj[i], 1, size[i], f) == size[i];
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path)) remove(tmp);
}
