/* float16 conversion shared by the NPY and safetensors readers (half.c). */
#ifndef SPECNET_HALF_H
#define SPECNET_HALF_H

#include <stdint.h>

float sn_f16_to_f32(uint16_t h);

#endif
