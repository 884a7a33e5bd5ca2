/* The back end: LLVM module emission from a plan (emit_llvm.c) and the host
 * target, optimization and ORC LLJIT glue (jit.c). The only headers that see LLVM. */
#ifndef SPECNET_CODEGEN_H
#define SPECNET_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "plan.h"

typedef struct sn_codegen {
  LLVMOrcThreadSafeContextRef tsc; /* owns ctx */
  LLVMContextRef ctx;
  LLVMTargetMachineRef tm;         /* host CPU and features, O3 */
  char *cpu, *features, *triple;   /* LLVM-owned strings */
  bool profile;                    /* count cycles and calls per kernel (--profile) */
} sn_codegen;

/* With profiling on, the module defines SN_PROFILE_SYM: 2 x i64 per kernel
 * (cycles, calls), kernels numbered step by step in plan order, then the update. */
#define SN_PROFILE_SYM "sn_profile_counters"

/* Names of the generated functions (sn_step_fn each). */
#define SN_FN_GRAD "sn_grad_step"
#define SN_FN_UPDATE "sn_update"
#define SN_FN_TRAIN "sn_train_step"
#define SN_FN_EVAL "sn_eval_step"
#define SN_FN_PREDICT "sn_predict"

/* ---- jit.c */
/* The host CPU and its features (the JIT, and `--cpu native`). */
int sn_codegen_init(sn_codegen *cg, char *err, size_t len);
/* A named CPU for ahead-of-time objects ("x86-64-v3": portable AVX2 + FMA;
 * "x86-64": any 64-bit x86), position-independent code. */
int sn_codegen_init_cpu(sn_codegen *cg, const char *cpu, char *err, size_t len);
/* The object file of m for cg's target (a clone is emitted). Caller frees *data. */
int sn_module_object(sn_codegen *cg, LLVMModuleRef m, char **data, size_t *size, char *err, size_t len);
void sn_codegen_dispose(sn_codegen *cg);
/* Runs the O3 pipeline for the host target on m. */
int sn_optimize(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len);
/* Native assembly of m (a clone is emitted; m is untouched). Caller frees. */
char *sn_module_asm(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len);

typedef struct sn_jit sn_jit;
/* A JIT over an object file of cg's target (from sn_module_object or the cache);
 * the JIT never sees IR, so a cached object and a fresh one run the same way. */
sn_jit *sn_jit_create_object(sn_codegen *cg, const char *obj, size_t size, char *err, size_t len);

/* ---- cache.c */
void sn_cache_key(sn_codegen *cg, LLVMModuleRef m, uint64_t key[2]);
int sn_cache_dir(char *dir, size_t len);
char *sn_cache_read(const char *dir, const uint64_t key[2], size_t *size);
void sn_cache_write(const char *dir, const uint64_t key[2], const char *obj, size_t size);
void *sn_jit_lookup(sn_jit *j, const char *name);
void sn_jit_free(sn_jit *j);

/* ---- emit_llvm.c */
/* One function per fused kernel, GEMM calls to cblas_[sd]gemm, the step functions
 * (SN_FN_*) and the optimizer update. */
LLVMModuleRef sn_emit_module(sn_codegen *cg, const sn_plan *p);

#endif
