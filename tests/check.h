/* The C tests' assertion: CHECK(cond, printf-style message) prints FILE:LINE: FAIL
 * and the message on stderr when cond is false, and counts it in `failures`, which
 * main turns into its exit status. */
#ifndef SPECNET_TESTS_CHECK_H
#define SPECNET_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                                        \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#endif
