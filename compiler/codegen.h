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
  LLVMTargetMachineRef tm;         /* host CPU and features, codegen level Aggressive */
  char *cpu, *features, *triple;   /* LLVM-owned strings */
  bool profile;                    /* count cycles and calls per kernel (--profile) */
  bool par;                        /* GEMMs and the update run on the runtime's thread
                                      pool (sn_par_*); false: plain cblas calls, one
                                      thread (the --lib archive needs no runtime) */
  bool serial_rows;                /* with par: fused kernels stay on the calling thread
                                      (SPECNET_SERIAL_ROWS=1, for comparisons) */
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
/* The JIT's target: sn_cpu_default() (SPECNET_CPU, else the host CPU and features). */
int sn_codegen_init(sn_codegen *cg, char *err, size_t len);
/* A named CPU (sn_cpu_check): "native" is the host's CPU and features, an x86-64
 * level that level's features ("x86-64-v4": AVX-512; "x86-64-v3": portable AVX2 +
 * FMA; "x86-64": any 64-bit x86); position-independent code. */
int sn_codegen_init_cpu(sn_codegen *cg, const char *cpu, char *err, size_t len);
/* A codegen like cg (target, CPU, features, profile, par) with its own context and
 * target machine, for another thread: neither is thread-safe. */
int sn_codegen_clone(const sn_codegen *cg, sn_codegen *out, char *err, size_t len);
/* The object file of m for cg's target. Emission changes m: dispose of it after.
 * Caller frees *data. */
int sn_module_object(sn_codegen *cg, LLVMModuleRef m, char **data, size_t *size, char *err, size_t len);
void sn_codegen_dispose(sn_codegen *cg);
/* Runs the O2 pipeline (loop unrolling off, vectorizers on) for the host target on m. */
int sn_optimize(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len);
/* Native assembly of m (a clone is emitted; m is untouched). Caller frees. */
char *sn_module_asm(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len);

typedef struct sn_jit sn_jit;
/* A JIT over n object files of cg's target (from sn_module_object or the cache),
 * linked as one program; the JIT never sees IR, so cached objects and fresh ones
 * run the same way. */
sn_jit *sn_jit_create_object(sn_codegen *cg, int n, const char *const *obj, const size_t *size, char *err,
                             size_t len);

/* ---- cache.c */
#define SN_CACHE_MAX_OBJ 4 /* objects per entry */
/* The key of the program made of the n modules m[] (unoptimized) for cg's target. */
void sn_cache_key(sn_codegen *cg, int n, const LLVMModuleRef *m, uint64_t key[2]);
int sn_cache_dir(char *dir, size_t len);
/* The n cached objects of key, back to back in one buffer (caller frees), their
 * sizes in size[]; NULL if the entry is missing or fails a check. */
char *sn_cache_read(const char *dir, const uint64_t key[2], int n, size_t *size);
void sn_cache_write(const char *dir, const uint64_t key[2], int n, const char *const *obj, const size_t *size);
void *sn_jit_lookup(sn_jit *j, const char *name);
void sn_jit_free(sn_jit *j);

/* ---- emit_llvm.c */
/* Parts of the program, for sn_emit_module (a mask). A program split over several
 * modules (compiled in parallel, one context each) is linked by the JIT. */
enum {
  SN_EMIT_GRAD = 1u << SN_STEP_GRAD,       /* SN_FN_GRAD and its kernels */
  SN_EMIT_EVAL = 1u << SN_STEP_EVAL,       /* SN_FN_EVAL and its kernels */
  SN_EMIT_PREDICT = 1u << SN_STEP_PREDICT, /* SN_FN_PREDICT and its kernels */
  SN_EMIT_UPDATE = 1u << SN_STEP_COUNT,    /* SN_FN_UPDATE; defines SN_PROFILE_SYM */
  SN_EMIT_TRAIN = 2u << SN_STEP_COUNT,     /* SN_FN_TRAIN */
  SN_EMIT_ALL = (4u << SN_STEP_COUNT) - 1
};
/* The fused kernels emitted so far for one program, across its modules: a kernel
 * identical to one of them is called, not emitted again (in another module: by
 * name; the first copy becomes external). Holds references into the modules: use
 * it only while emitting them. */
typedef struct sn_kernels sn_kernels;
sn_kernels *sn_kernels_new(void);
void sn_kernels_free(sn_kernels *ks);
/* The chosen parts: one function per distinct fused kernel, GEMM calls to
 * cblas_[sd]gemm, the step functions (SN_FN_*) and the optimizer update. Kernels
 * are shared within the module, and with the modules emitted before it with the
 * same `shared` set (NULL: none). */
LLVMModuleRef sn_emit_module(sn_codegen *cg, const sn_plan *p, unsigned parts, sn_kernels *shared);
/* The two modules of a split program (m[i] of cg[i]'s context) made about equal
 * in LLVM work, by an estimate from their IR: fused kernels move from the larger
 * to the other, each defined in one and declared in the other. Deterministic: the
 * same plan gives the same modules. */
void sn_emit_balance(sn_codegen *const cg[2], LLVMModuleRef m[2], const sn_plan *p);

#endif
