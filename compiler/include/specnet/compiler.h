/* specnet compiler: spec -> IR -> autodiff -> fusion -> LLVM -> JIT'd step functions.
 *
 * A worked example (what `specnet train` does before the runtime takes over):
 *
 *   sn_diag d = {0};
 *   sn_spec *spec = sn_spec_load("specs/mnist_mlp.yaml", NULL, 0, &d);
 *   if (!spec) { sn_diag_print(&d, stderr); return 1; }
 *   sn_compiled *c = sn_compile(spec, SN_RT_F32, &d);   // NULL + diagnostics on error
 *   sn_model *m = sn_compiled_model(c);                  // step functions, sizes
 *   sn_model_alloc(m, &err); sn_model_init_params(m, spec->seed);
 *   ... sn_train(m, ...) ...
 *   sn_model_free(m); sn_compiled_free(c); sn_spec_free(spec);
 *
 * Ownership: sn_compiled owns the JIT'd code and the parameter table the model
 * points to; free it after the model. The spec may be freed after sn_compile. */
#ifndef SPECNET_COMPILER_H
#define SPECNET_COMPILER_H

#include <stdio.h>

#include "specnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sn_spec sn_spec;
typedef struct sn_diag sn_diag;
typedef struct sn_compiled sn_compiled;

typedef struct sn_compile_times {
  double build, autodiff, plan, emit, optimize, jit; /* seconds */
} sn_compile_times;

/* Compiles a checked spec for dtype; shape errors go to d. */
sn_compiled *sn_compile(const sn_spec *spec, sn_dtype_rt dtype, sn_diag *d);
sn_model *sn_compiled_model(sn_compiled *c);
const sn_compile_times *sn_compiled_times(const sn_compiled *c);
void sn_compiled_free(sn_compiled *c);

/* Prints the program after a stage: "ir" (forward), "grad" (after autodiff),
 * "plan" (kernels and memory), "llvm" (optimized LLVM IR), "asm" (host assembly). */
int sn_emit_stage(const sn_spec *spec, const char *what, sn_dtype_rt dtype, FILE *out, sn_diag *d);

#ifdef __cplusplus
}
#endif
#endif
