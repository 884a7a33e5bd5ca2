/* All LLVM target and ORC glue in one place (that API still moves between LLVM
 * releases): the host target machine, the O2 pipeline, assembly output, and an
 * LLJIT that resolves OpenBLAS and libm through absolute symbols rather than the
 * process's symbol table (Debian links with --as-needed, which can drop them). */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen.h"
#include "specnet/runtime.h"

static int take_error(LLVMErrorRef e, char *err, size_t len) {
  if (!e) return 0;
  char *m = LLVMGetErrorMessage(e);
  snprintf(err, len, "%s", m);
  LLVMDisposeErrorMessage(m);
  return -1;
}

/* The target machine and a fresh context for cg's triple, CPU and features. */
static int make_tm(sn_codegen *cg, char *err, size_t len) {
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(cg->triple, &target, &msg)) {
    snprintf(err, len, "no LLVM target for %s: %s", cg->triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return -1;
  }
  cg->tm = LLVMCreateTargetMachine(target, cg->triple, cg->cpu, cg->features,
                                   LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelJITDefault);
  cg->tsc = LLVMOrcCreateNewThreadSafeContext();
  cg->ctx = LLVMOrcThreadSafeContextGetContext(cg->tsc);
  return 0;
}

/* The CPU names a target may give besides "native": the x86-64 levels, from any
 * 64-bit x86 to AVX-512 (F, BW, CD, DQ, VL). */
static const char *const cpu_levels[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};

int sn_cpu_check(const char *cpu, char *err, size_t len) {
  if (!strcmp(cpu, "native")) return 0;
  for (size_t i = 0; i < sizeof cpu_levels / sizeof *cpu_levels; i++)
    if (!strcmp(cpu, cpu_levels[i])) return 0;
  snprintf(err, len, "unknown CPU target '%s'; use native, x86-64-v4 (AVX-512), x86-64-v3 (AVX2), x86-64-v2 or x86-64",
           cpu);
  return -1;
}

const char *sn_cpu_default(void) {
  const char *env = getenv("SPECNET_CPU");
  return env && *env ? env : "native";
}

/* The host's features as LLVM lists them ("+avx2,+fma,-avx512f,..."): whether f is on. */
static bool host_has(const char *features, const char *f) {
  size_t n = strlen(f);
  for (const char *p = features; (p = strstr(p, f)); p += n)
    if (p > features && p[-1] == '+' && (p[n] == ',' || p[n] == 0)) return true;
  return false;
}

int sn_cpu_runs_here(const char *cpu, char *err, size_t len) {
  static const char *const need[][6] = {
      [2] = {"avx2", "fma", "bmi2", "f16c", "movbe"},
      [3] = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"},
  };
  int level = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(cpu, cpu_levels[i])) level = i;
  if (level < 2) return 0; /* native, x86-64 and v2 run on every x86-64 host we build on */
  char *host = LLVMGetHostCPUFeatures();
  int rc = 0;
  for (int i = 0; i < 6 && need[level][i]; i++)
    if (!host_has(host, need[level][i])) {
      snprintf(err, len, "CPU target %s needs %s, which this machine's CPU lacks; use native or a lower level", cpu,
               need[level][i]);
      rc = -1;
      break;
    }
  LLVMDisposeMessage(host);
  return rc;
}

/* cpu: an LLVM CPU name with its default features, or NULL for the host's own CPU
 * and features. */
static int codegen_init(sn_codegen *cg, const char *cpu, char *err, size_t len) {
  memset(cg, 0, sizeof *cg);
  cg->par = true; /* only the --lib archive turns the pool off */
  const char *sr = getenv("SPECNET_SERIAL_ROWS");
  cg->serial_rows = sr && !strcmp(sr, "1");
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  cg->triple = LLVMGetDefaultTargetTriple();
  cg->cpu = cpu ? LLVMCreateMessage(cpu) : LLVMGetHostCPUName();
  cg->features = cpu ? LLVMCreateMessage("") : LLVMGetHostCPUFeatures();
  return make_tm(cg, err, len);
}

int sn_codegen_init(sn_codegen *cg, char *err, size_t len) { return sn_codegen_init_cpu(cg, sn_cpu_default(), err, len); }

int sn_codegen_init_cpu(sn_codegen *cg, const char *cpu, char *err, size_t len) {
  if (sn_cpu_check(cpu, err, len)) {
    memset(cg, 0, sizeof *cg);
    return -1;
  }
  return codegen_init(cg, strcmp(cpu, "native") ? cpu : NULL, err, len);
}

int sn_codegen_clone(const sn_codegen *cg, sn_codegen *out, char *err, size_t len) {
  memset(out, 0, sizeof *out);
  out->triple = LLVMCreateMessage(cg->triple);
  out->cpu = LLVMCreateMessage(cg->cpu);
  out->features = LLVMCreateMessage(cg->features);
  out->profile = cg->profile;
  out->par = cg->par;
  out->serial_rows = cg->serial_rows;
  return make_tm(out, err, len);
}

int sn_module_object(sn_codegen *cg, LLVMModuleRef m, char **data, size_t *size, char *err, size_t len) {
  /* no clone: every caller disposes m next, and a clone costs milliseconds */
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(cg->tm, m, LLVMObjectFile, &msg, &buf)) {
    snprintf(err, len, "%s", msg ? msg : "object output failed");
    LLVMDisposeMessage(msg);
    return -1;
  }
  *size = LLVMGetBufferSize(buf);
  *data = malloc(*size ? *size : 1);
  if (!*data) abort();
  memcpy(*data, LLVMGetBufferStart(buf), *size);
  LLVMDisposeMemoryBuffer(buf);
  return 0;
}

void sn_codegen_dispose(sn_codegen *cg) {
  if (cg->tm) LLVMDisposeTargetMachine(cg->tm);
  if (cg->tsc) LLVMOrcDisposeThreadSafeContext(cg->tsc);
  LLVMDisposeMessage(cg->triple);
  LLVMDisposeMessage(cg->cpu);
  LLVMDisposeMessage(cg->features);
  memset(cg, 0, sizeof *cg);
}

int sn_optimize(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len) {
  LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(o, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(o, 1);
  /* No loop unrolling: it was a third of the O3 and code generation time, and it
   * made some kernels slower: a row loop around a short column loop (conv1's
   * bias + ReLU, 16 columns) had its column loop unrolled and was vectorized
   * across rows with gathers, 8 times slower. The emitter unrolls the small
   * fixed loops that matter itself (pooling windows, im2col taps); the
   * vectorizer still interleaves. O2 rather than O3: the same kernels (the
   * vectorizers run in both; fashion_cnn's weights are bit-identical), about 7 %
   * less LLVM time. */
  LLVMPassBuilderOptionsSetLoopUnrolling(o, 0);
  int rc = take_error(LLVMRunPasses(m, "default<O2>", cg->tm, o), err, len);
  LLVMDisposePassBuilderOptions(o);
  return rc;
}

char *sn_module_asm(sn_codegen *cg, LLVMModuleRef m, char *err, size_t len) {
  LLVMModuleRef clone = LLVMCloneModule(m); /* emitting mutates the module */
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(cg->tm, clone, LLVMAssemblyFile, &msg, &buf)) {
    snprintf(err, len, "%s", msg ? msg : "assembly output failed");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(clone);
    return NULL;
  }
  size_t n = LLVMGetBufferSize(buf);
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, LLVMGetBufferStart(buf), n);
    s[n] = 0;
  }
  LLVMDisposeMemoryBuffer(buf);
  LLVMDisposeModule(clone);
  return s;
}

struct sn_jit {
  LLVMOrcLLJITRef jit;
};

typedef struct extern_sym {
  const char *name;
  void *addr;
} extern_sym;

static int define_externals(sn_jit *j, char *err, size_t len) {
  /* everything generated code may call, by address */
  extern_sym syms[] = {
      {"cblas_sgemm", (void *)cblas_sgemm}, {"cblas_dgemm", (void *)cblas_dgemm},
      {"sn_par_sgemm", (void *)sn_par_sgemm}, {"sn_par_dgemm", (void *)sn_par_dgemm},
      {"sn_par_sgemm_batched", (void *)sn_par_sgemm_batched}, {"sn_par_dgemm_batched", (void *)sn_par_dgemm_batched},
      {"sn_par_for", (void *)sn_par_for}, {"sn_par_update", (void *)sn_par_update},
      {"sn_conv_gemm_f32", (void *)sn_conv_gemm_f32}, {"sn_conv_gemm_f64", (void *)sn_conv_gemm_f64},
      {"sn_conv_gemm_wgrad_f32", (void *)sn_conv_gemm_wgrad_f32},
      {"sn_conv_gemm_wgrad_f64", (void *)sn_conv_gemm_wgrad_f64},
      {"sn_conv_gemm_dgrad_f32", (void *)sn_conv_gemm_dgrad_f32},
      {"sn_conv_gemm_dgrad_f64", (void *)sn_conv_gemm_dgrad_f64},
      {"sn_lstm_f32", (void *)sn_lstm_f32}, {"sn_lstm_f64", (void *)sn_lstm_f64},
      {"sn_lstm_grad_f32", (void *)sn_lstm_grad_f32}, {"sn_lstm_grad_f64", (void *)sn_lstm_grad_f64},
      {"sn_gru_f32", (void *)sn_gru_f32}, {"sn_gru_f64", (void *)sn_gru_f64},
      {"sn_gru_grad_f32", (void *)sn_gru_grad_f32}, {"sn_gru_grad_f64", (void *)sn_gru_grad_f64},
      {"expf", (void *)expf},   {"exp", (void *)exp},     {"logf", (void *)logf},
      {"log", (void *)log},     {"tanhf", (void *)tanhf}, {"tanh", (void *)tanh},
      {"powf", (void *)powf},   {"pow", (void *)pow},     {"sqrtf", (void *)sqrtf},
      {"sqrt", (void *)sqrt},   {"fmaxf", (void *)fmaxf}, {"fmax", (void *)fmax},
      {"erff", (void *)erff},   {"erf", (void *)erf},
      {"memset", (void *)memset}, {"memcpy", (void *)memcpy}, {"memmove", (void *)memmove},
  };
  enum { NS = sizeof syms / sizeof syms[0] };
  LLVMOrcCSymbolMapPair pairs[NS];
  for (int i = 0; i < NS; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, syms[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, NS);
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  return take_error(LLVMOrcJITDylibDefine(jd, mu), err, len);
}

sn_jit *sn_jit_create_object(sn_codegen *cg, int n, const char *const *obj, const size_t *size, char *err,
                             size_t len) {
  sn_jit *j = calloc(1, sizeof *j);
  if (!j) abort();
  LLVMOrcJITTargetMachineBuilderRef jtmb = NULL;
  if (take_error(LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb), err, len)) goto fail;
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
  if (take_error(LLVMOrcCreateLLJIT(&j->jit, jb), err, len)) goto fail;
  if (define_externals(j, err, len)) goto fail;
  /* one dylib: symbols resolve across the objects */
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "specnet.%d.o", i);
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj[i], size[i], name);
    if (take_error(LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), buf), err, len)) goto fail;
  }
  return j;
fail:
  sn_jit_free(j);
  return NULL;
}

void *sn_jit_lookup(sn_jit *j, const char *name) {
  LLVMOrcExecutorAddress a = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &a, name);
  if (e) {
    LLVMConsumeError(e);
    return NULL;
  }
  return (void *)(uintptr_t)a;
}

void sn_jit_free(sn_jit *j) {
  if (!j) return;
  if (j->jit) LLVMOrcDisposeLLJIT(j->jit);
  free(j);
}
