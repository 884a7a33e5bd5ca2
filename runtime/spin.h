/* Spinning before sleeping, for the thread pool (pool.c) and the batch loader
 * (train_loader.c): a waiter pauses in a loop for a while, then sleeps. */
#ifndef SPECNET_SPIN_H
#define SPECNET_SPIN_H

#include <stdbool.h>

#include "specnet/runtime.h"

static inline void sn_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* A spin's budget: start it at {0}, and again after each sleep. */
typedef struct sn_spin {
  long spins;
  double t0;
} sn_spin;

/* One pause of a spin; false once `seconds` have passed since its first pause
 * (the clock read every 64 pauses): time to sleep. */
static inline bool sn_spin_on(sn_spin *s, double seconds) {
  sn_cpu_relax();
  if (++s->spins % 64) return true;
  if (s->t0 == 0) s->t0 = sn_now();
  return sn_now() - s->t0 <= seconds;
}

#endif
