/* The recurrent layers' scans (lstm, gru), forward and backward, in f32 and f64:
 * generated code calls them as it calls sn_par_sgemm, one call per layer and step
 * function, and they loop over the steps, a GEMM per step. The math is in
 * recurrent_impl.h, included once per float type. */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "specnet/runtime.h"

#define REAL float
#define SFX f32
#define GEMM sn_par_sgemm
#define EXP expf
#define TANH tanhf
#include "recurrent_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef EXP
#undef TANH

#define REAL double
#define SFX f64
#define GEMM sn_par_dgemm
#define EXP exp
#define TANH tanh
#include "recurrent_impl.h"
