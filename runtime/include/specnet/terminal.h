/* The terminal's rendering of sn_train's reports (runtime/progress.c), for the
 * programs that print them: the specnet command and training binaries
 * (libspecnet_aot_train_main.a holds it). libspecnet_rt prints nothing itself. */
#ifndef SPECNET_TERMINAL_H
#define SPECNET_TERMINAL_H

#include "specnet/runtime.h"

/* The progress line on stderr (a terminal's), the epoch summaries and notes on
 * stdout, as `specnet train` and training binaries print them. */
const sn_reporter *sn_terminal_reporter(void);

#endif
