/* The compile cache: object code of a compiled spec, under $SPECNET_CACHE_DIR,
 * else $XDG_CACHE_HOME/specnet, else ~/.cache/specnet. The key is a 128-bit hash
 * of everything the object depends on: the unoptimized LLVM IR of the plan (which
 * holds the dtype, shapes, kernels and constants), the target CPU and its
 * features, the LLVM version and specnet's version. An entry is
 *   "SNCACHE1" | key (16 bytes) | object size (8) | object hash (8) | object
 * and is used only if all of it checks out; anything else is rebuilt and
 * replaced (atomically: temp file + rename). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen.h"
#include "specnet/version.h"

static const char MAGIC[8] = {'S', 'N', 'C', 'A', 'C', 'H', 'E', '1'};

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

void sn_cache_key(sn_codegen *cg, LLVMModuleRef m, uint64_t key[2]) {
  key[0] = key[1] = 0;
  char *ir = LLVMPrintModuleToString(m);
  hash128(ir, strlen(ir), key);
  LLVMDisposeMessage(ir);
  unsigned maj, min, pat;
  LLVMGetVersion(&maj, &min, &pat);
  char meta[8192];
  int n = snprintf(meta, sizeof meta, "|%s|%s|%s|llvm %u.%u.%u|specnet %s", cg->triple, cg->cpu, cg->features,
                   maj, min, pat, SPECNET_VERSION_STRING);
  hash128(meta, (size_t)(n < (int)sizeof meta ? n : (int)sizeof meta - 1), key);
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

/* The cached object for key, or NULL (missing, unreadable, or failing a check). */
char *sn_cache_read(const char *dir, const uint64_t key[2], size_t *size) {
  char path[4200];
  entry_path(dir, key, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char head[40];
  char *obj = NULL;
  if (fread(head, 1, sizeof head, f) != sizeof head || memcmp(head, MAGIC, 8)) goto bad;
  uint64_t k[2], n, h;
  memcpy(k, head + 8, 16);
  memcpy(&n, head + 24, 8);
  memcpy(&h, head + 32, 8);
  if (k[0] != key[0] || k[1] != key[1] || n == 0 || n > ((uint64_t)1 << 31)) goto bad;
  obj = malloc((size_t)n);
  if (!obj || fread(obj, 1, (size_t)n, f) != (size_t)n || fgetc(f) != EOF || hash64(obj, (size_t)n) != h) goto bad;
  fclose(f);
  *size = (size_t)n;
  return obj;
bad:
  free(obj);
  fclose(f);
  return NULL;
}


/* Best effort: a cache that cannot be written only costs time. */
void sn_cache_write(const char *dir, const uint64_t key[2], const char *obj, size_t size) {
  if (sn_mkdirs(dir)) return;
  char path[4200], tmp[4300];
  entry_path(dir, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return;
  uint64_t n = size, h = hash64(obj, size);
  bool ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(key, 8, 2, f) == 2 && fwrite(&n, 8, 1, f) == 1 &&
            fwrite(&h, 8, 1, f) == 1 && fwrite(obj, 1, size, f) == size;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path)) remove(tmp);
}
