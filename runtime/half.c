/* IEEE half precision (float16, as NumPy's <f2 and safetensors' F16 store it) to
 * float: normals rebiased, subnormals normalized, inf and NaN kept. */
#include <stdint.h>
#include <string.h>

#include "half.h"

float sn_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
  if (ex == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13); /* inf / nan */
  } else if (ex != 0) {
    bits = sign | ((ex + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
  } else if (man == 0) {
    bits = sign;
  } else { /* subnormal half: normalize */
    int e = -1;
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
