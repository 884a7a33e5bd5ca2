/* Paths: creating a run or cache folder with its parents (mkdir -p); telling
 * file formats apart by their suffix; reading a count from a command line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "specnet/runtime.h"

int sn_mkdirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

bool sn_path_has_suffix(const char *path, const char *suffix) {
  size_t n = strlen(path), k = strlen(suffix);
  if (n < k) return false;
  for (size_t i = 0; i < k; i++)
    if (tolower((unsigned char)path[n - k + i]) != suffix[i]) return false;
  return true;
}

bool sn_parse_count(const char *val, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
  if (!val || !isdigit((unsigned char)val[0])) return false; /* strtoull takes "-1" and " 1" */
  char *end;
  errno = 0;
  unsigned long long n = strtoull(val, &end, 10);
  if (*end || errno || n < lo || n > hi) return false;
  *out = n;
  return true;
}
