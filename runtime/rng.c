/* Counter-based random numbers: Philox-2x64-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11). A draw is a pure function of
 * (seed, stream, counter): the key is the seed, the 128-bit counter block is
 * (counter, stream). Nothing is stateful, so any pass (init, shuffling, dropout
 * forward and backward) can regenerate any number. Matches the Random123 known-answer
 * vectors, which tests/test_data.c checks. */
#include "specnet/runtime.h"

#include <math.h>

#define PHILOX_M0 UINT64_C(0xD2B74407B1CE6E93) /* round multiplier */
#define PHILOX_W0 UINT64_C(0x9E3779B97F4A7C15) /* key bump (golden ratio) */

/* 64x64 -> 128-bit product as (hi, lo). */
static inline uint64_t mulhilo64(uint64_t a, uint64_t b, uint64_t *hi) {
#ifdef __SIZEOF_INT128__
  __extension__ typedef unsigned __int128 u128;
  u128 p = (u128)a * b;
  *hi = (uint64_t)(p >> 64);
  return (uint64_t)p;
#else
  uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
  *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  return (mid << 32) | (uint32_t)p00;
#endif
}

/* One Philox-2x64-10 block: out[0..1] from counter (c0, c1) and key k. */
static inline void philox2x64(uint64_t c0, uint64_t c1, uint64_t k, uint64_t out[2]) {
  for (int r = 0; r < 10; r++) {
    uint64_t hi, lo = mulhilo64(PHILOX_M0, c0, &hi);
    c0 = hi ^ k ^ c1;
    c1 = lo;
    k += PHILOX_W0;
  }
  out[0] = c0;
  out[1] = c1;
}

/* 53 high bits -> a double in [0, 1). */
static inline double u64_to_unit(uint64_t v) { return (double)(v >> 11) * 0x1.0p-53; }

uint64_t sn_rand_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t out[2];
  philox2x64(counter, stream, seed, out);
  return out[0];
}

double sn_rand_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return u64_to_unit(sn_rand_u64(seed, stream, counter));
}

double sn_rand_normal(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t out[2];
  philox2x64(counter, stream, seed, out);
  double u1 = 1.0 - u64_to_unit(out[0]); /* (0, 1]: log is finite */
  double u2 = u64_to_unit(out[1]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2); /* 2 pi u2 */
}

void sn_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream) {
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    /* j uniform in [0, i] by Lemire's multiply-shift: (r * (i+1)) >> 64; the bias
     * is at most (i+1) / 2^64, far below anything a shuffle can show. */
    uint64_t hi;
    mulhilo64(sn_rand_u64(seed, stream, (uint64_t)i), (uint64_t)i + 1, &hi);
    int64_t j = (int64_t)hi;
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}

void sn_shuffle_blocks(int64_t *idx, int64_t n, int64_t block, uint64_t seed, uint64_t stream) {
  if (block <= 1 || n <= 0) {
    sn_shuffle(idx, n, seed, stream);
    return;
  }
  const int64_t nb = (n + block - 1) / block, last = n - (nb - 1) * block; /* its size */
  sn_shuffle(idx, nb, seed, stream); /* the order of the blocks, in idx[0, nb) */
  int64_t at_short = 0; /* where the short last block goes in that order */
  for (int64_t k = 0; k < nb; k++)
    if (idx[k] == nb - 1) at_short = k;
  /* Expanded in place from the back: block k of the order starts at or after k, so
   * its writes never reach an entry idx[j < k] not yet read. */
  for (int64_t k = nb - 1; k >= 0; k--) {
    const int64_t b = idx[k], len = b == nb - 1 ? last : block;
    const int64_t start = k * block - (at_short < k ? block - last : 0);
    for (int64_t i = len - 1; i >= 0; i--) idx[start + i] = b * block + i;
  }
}
