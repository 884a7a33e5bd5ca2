/* Small runtime services every other file leans on: the error helper (sn_fail) and a
 * monotonic clock (sn_now). */
#include "specnet/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int sn_fail(sn_error *err, const char *fmt, ...) {
  if (!err) return -1;
  /* Format into a local buffer first: callers may pass err->msg itself as an
   * argument to prefix context ("%s: %s", path, err->msg). */
  char buf[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  /* The contract is one line: fold any newline (e.g. from a file name) into a space. */
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  memcpy(err->msg, buf, sizeof buf);
  return -1;
}

double sn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
