/* libFuzzer target: reading a safetensors checkpoint (runtime/safetensors.c) from
 * arbitrary bytes into a small fixed model -- a dense layer (3, 4) + (3) and a
 * scalar -- once in f32 and once in f64. Checks, besides the sanitizers, that a
 * failed read leaves every parameter as it was (the whole header is checked
 * before any parameter is touched) and says why. */
#include "fuzz_file.h"

#include <string.h>

#include "specnet/runtime.h"

static const sn_param_info INFO[] = {
    {.name = "dense1.weight", .rank = 2, .shape = {3, 4}, .offset = 0, .count = 12},
    {.name = "dense1.bias", .rank = 1, .shape = {3}, .offset = 12, .count = 3},
    {.name = "scale", .rank = 0, .offset = 15, .count = 1},
};
enum { N_INFO = sizeof INFO / sizeof *INFO, N_PARAMS = 16 };

static void read_into(const char *path, sn_dtype_rt dtype) {
  static sn_model models[2];
  sn_model *m = &models[dtype];
  if (!m->params) {
    *m = (sn_model){.dtype = dtype, .batch_capacity = 1, .input_elems = 4, .output_elems = 3,
                    .param_count = N_PARAMS, .n_params = N_INFO, .params_info = INFO};
    sn_error err = {{0}};
    if (sn_model_alloc(m, &err)) {
      fprintf(stderr, "sn_model_alloc: %s\n", err.msg);
      abort();
    }
  }
  size_t bytes = (size_t)N_PARAMS * (dtype == SN_RT_F64 ? 8 : 4);
  memset(m->params, 0x5A, bytes);
  sn_error err = {{0}};
  if (sn_safetensors_read(path, m, &err)) {
    if (!err.msg[0]) abort();
    for (size_t i = 0; i < bytes; i++)
      if (((const uint8_t *)m->params)[i] != 0x5A) {
        fprintf(stderr, "a failed read changed parameter byte %zu: %s\n", i, err.msg);
        abort();
      }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  read_into(path, SN_RT_F32);
  read_into(path, SN_RT_F64);
  return 0;
}
