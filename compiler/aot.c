/* Ahead-of-time output (`specnet build`): the same module the JIT runs, for a
 * chosen CPU, with the weights embedded as read-only data, written as
 *   - a standalone executable: the object linked (by the system C compiler) with
 *     runtime/aot_main.c, libspecnet_rt and OpenBLAS only: no LLVM, no libyaml;
 *   - or, with --lib, NAME.h + libNAME.a: one entry point NAME_predict that
 *     allocates nothing (the caller passes NAME_SCRATCH_BYTES of scratch).
 * The archive is written here (with its symbol index), so --lib needs no tools. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>

#include "codegen.h"
#include "spec.h"
#include "specnet/aot.h"
#include "specnet/compiler.h"
#include "specnet/version.h"

typedef struct aot {
  sn_codegen cg;
  LLVMModuleRef m;
  LLVMContextRef ctx;
  LLVMBuilderRef b;
  LLVMTypeRef i64, i8, ptr, ft, f64, voidt;
  const sn_graph *g;
  const sn_plan *p;
} aot;

static LLVMValueRef c64(aot *a, int64_t v) { return LLVMConstInt(a->i64, (unsigned long long)v, 1); }

/* A read-only byte blob, 64-byte aligned. */
static LLVMValueRef blob(aot *a, const char *name, const void *data, size_t n, bool internal) {
  LLVMValueRef init = LLVMConstStringInContext(a->ctx, (const char *)data, (unsigned)n, 1);
  LLVMValueRef g = LLVMAddGlobal(a->m, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetAlignment(g, 64);
  if (internal) LLVMSetLinkage(g, LLVMInternalLinkage);
  return g;
}

/* A zeroed, writable buffer (weights loaded at run time with --weights-file). */
static LLVMValueRef bss(aot *a, const char *name, size_t n) {
  LLVMTypeRef t = LLVMArrayType2(a->i8, n ? n : 1);
  LLVMValueRef g = LLVMAddGlobal(a->m, t, name);
  LLVMSetInitializer(g, LLVMConstNull(t));
  LLVMSetAlignment(g, 64);
  LLVMSetLinkage(g, LLVMInternalLinkage);
  return g;
}

static LLVMValueRef doubles(aot *a, const char *name, const double *v, int64_t n, bool internal) {
  double one = 0;
  return blob(a, name, n ? (const void *)v : (const void *)&one, (size_t)(n ? n : 1) * sizeof(double), internal);
}

/* sn_aot_decoder_v1, --generate's key/value cache, where the model is one it runs
 * (else no symbol: the main's weak reference is null and each token is a full pass) */
static void decoder_blob(aot *a, const sn_spec *spec, const sn_model *w) {
  sn_decoder *dec = malloc(sizeof *dec);
  if (!dec) abort();
  char why[256];
  if (!sn_decoder_plan(spec, w, dec, why, sizeof why)) blob(a, "sn_aot_decoder_v1", dec, sizeof *dec, false);
  free(dec);
}

/* NAME_load_weights(path): params then state, raw, into the zeroed buffers. */
static void emit_load_weights(aot *a, const char *fname, LLVMValueRef params, LLVMValueRef state, size_t pbytes,
                              size_t qbytes) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(a->ctx), sz = a->i64;
  LLVMValueRef fn = LLVMAddFunction(a->m, fname, LLVMFunctionType(i32, &a->ptr, 1, 0));
  LLVMTypeRef fopen_t = LLVMFunctionType(a->ptr, (LLVMTypeRef[]){a->ptr, a->ptr}, 2, 0);
  LLVMTypeRef fread_t = LLVMFunctionType(sz, (LLVMTypeRef[]){a->ptr, sz, sz, a->ptr}, 4, 0);
  LLVMTypeRef fclose_t = LLVMFunctionType(i32, &a->ptr, 1, 0);
  LLVMValueRef f_open = LLVMAddFunction(a->m, "fopen", fopen_t);
  LLVMValueRef f_read = LLVMAddFunction(a->m, "fread", fread_t);
  LLVMValueRef f_close = LLVMAddFunction(a->m, "fclose", fclose_t);
  LLVMBuilderRef b = a->b;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(a->ctx, fn, "entry");
  LLVMBasicBlockRef opened = LLVMAppendBasicBlockInContext(a->ctx, fn, "opened");
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(a->ctx, fn, "fail");
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef mode = LLVMBuildGlobalStringPtr(b, "rb", "mode");
  LLVMValueRef file = LLVMBuildCall2(b, fopen_t, f_open, (LLVMValueRef[]){LLVMGetParam(fn, 0), mode}, 2, "");
  LLVMBuildCondBr(b, LLVMBuildIsNull(b, file, ""), fail, opened);
  LLVMPositionBuilderAtEnd(b, opened);
  LLVMValueRef n1 = LLVMBuildCall2(b, fread_t, f_read, (LLVMValueRef[]){params, c64(a, 1), c64(a, (int64_t)pbytes), file}, 4, "");
  LLVMValueRef n2 = LLVMBuildCall2(b, fread_t, f_read, (LLVMValueRef[]){state, c64(a, 1), c64(a, (int64_t)qbytes), file}, 4, "");
  LLVMBuildCall2(b, fclose_t, f_close, &file, 1, "");
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, n1, c64(a, (int64_t)pbytes), ""),
                                 LLVMBuildICmp(b, LLVMIntEQ, n2, c64(a, (int64_t)qbytes), ""), "");
  LLVMBuildRet(b, LLVMBuildSelect(b, ok, LLVMConstInt(i32, 0, 0), LLVMConstInt(i32, (unsigned long long)-1, 1), ""));
  LLVMPositionBuilderAtEnd(b, fail);
  LLVMBuildRet(b, LLVMConstInt(i32, (unsigned long long)-1, 1));
}

static void make_internal(aot *a, const char *name) {
  LLVMValueRef f = LLVMGetNamedFunction(a->m, name);
  if (f) LLVMSetLinkage(f, LLVMInternalLinkage);
}

/* NAME_predict(const float *x, i64 n, float *y, void *scratch): batches of the
 * compiled capacity; each batch's input gets the preprocessing affine into the
 * staging area after the arena, then sn_predict writes y directly. */
/* y[j] = y[j] * qa[j % O] + qb[j % O] for j < count, in a loop from block `from`
 * to block `to`: the outputs back to the data's units. */
static void emit_post(aot *a, LLVMValueRef fn, LLVMValueRef y, LLVMValueRef count, LLVMValueRef qa, LLVMValueRef qb,
                      int64_t O, LLVMBasicBlockRef to) {
  LLVMBuilderRef b = a->b;
  LLVMTypeRef f32 = LLVMFloatTypeInContext(a->ctx);
  LLVMBasicBlockRef from = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(a->ctx, fn, "post");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(a->ctx, fn, "pbody");
  LLVMBuildBr(b, head);
  LLVMPositionBuilderAtEnd(b, head);
  LLVMValueRef j = LLVMBuildPhi(b, a->i64, "pj");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, j, count, ""), body, to);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef k = LLVMBuildURem(b, j, c64(a, O), "");
  LLVMValueRef at = LLVMBuildInBoundsGEP2(b, f32, y, &j, 1, "");
  LLVMValueRef v = LLVMBuildFPExt(b, LLVMBuildLoad2(b, f32, at, ""), a->f64, "");
  LLVMValueRef av = LLVMBuildLoad2(b, a->f64, LLVMBuildInBoundsGEP2(b, a->f64, qa, &k, 1, ""), "");
  LLVMValueRef bv = LLVMBuildLoad2(b, a->f64, LLVMBuildInBoundsGEP2(b, a->f64, qb, &k, 1, ""), "");
  LLVMBuildStore(b, LLVMBuildFPTrunc(b, LLVMBuildFAdd(b, LLVMBuildFMul(b, v, av, ""), bv, ""), f32, ""), at);
  LLVMValueRef next = LLVMBuildAdd(b, j, c64(a, 1), "");
  LLVMBuildBr(b, head);
  LLVMValueRef in_v[2] = {c64(a, 0), next};
  LLVMBasicBlockRef in_b[2] = {from, body};
  LLVMAddIncoming(j, in_v, in_b, 2);
}

/* sn_aot_class_names: the names one after another, each NUL-terminated. */
static void class_names(aot *a, const sn_aot_opts *o) {
  size_t n = 1;
  for (int k = 0; k < o->n_class_names; k++) n += strlen(o->class_names[k]) + 1;
  char *buf = calloc(n, 1), *p = buf;
  if (!buf) abort();
  for (int k = 0; k < o->n_class_names; k++) {
    size_t len = strlen(o->class_names[k]);
    memcpy(p, o->class_names[k], len);
    p += len + 1;
  }
  blob(a, "sn_aot_class_names", buf, n, false);
  free(buf);
}

static void emit_lib_predict(aot *a, const char *fname, LLVMValueRef params, LLVMValueRef state,
                             const LLVMValueRef affine[4], const sn_aot_opts *o, const sn_model *mo) {
  LLVMValueRef pa = affine[0], pb = affine[1];
  const int64_t n_pre = o->n_pre;
  LLVMTypeRef pt[4] = {a->ptr, a->i64, a->ptr, a->ptr};
  LLVMValueRef fn = LLVMAddFunction(a->m, fname, LLVMFunctionType(LLVMInt32TypeInContext(a->ctx), pt, 4, 0));
  LLVMBuilderRef b = a->b;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(a->ctx, fn, "entry");
  LLVMBasicBlockRef bh = LLVMAppendBasicBlockInContext(a->ctx, fn, "batch");
  LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(a->ctx, fn, "body");
  LLVMBasicBlockRef eh = LLVMAppendBasicBlockInContext(a->ctx, fn, "elem");
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(a->ctx, fn, "ebody");
  LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(a->ctx, fn, "call");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(a->ctx, fn, "done");
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef X = LLVMGetParam(fn, 0), N = LLVMGetParam(fn, 1), Y = LLVMGetParam(fn, 2), S = LLVMGetParam(fn, 3);
  LLVMTypeRef args_t = LLVMStructTypeInContext(
      a->ctx, (LLVMTypeRef[]){a->ptr, a->ptr, a->i64, a->ptr, a->ptr, a->ptr, a->ptr, a->i64, a->f64, a->i64, a->ptr, a->ptr, a->ptr, a->ptr, a->ptr},
      15, 0);
  LLVMValueRef args = LLVMBuildAlloca(b, args_t, "args");
  LLVMValueRef iv = LLVMBuildAlloca(b, a->i64, "i"), jv = LLVMBuildAlloca(b, a->i64, "j");
  LLVMBuildStore(b, LLVMConstNull(args_t), args);
  LLVMValueRef off = c64(a, mo->arena_bytes);
  LLVMValueRef stage = LLVMBuildInBoundsGEP2(b, a->i8, S, &off, 1, "stage");
  LLVMValueRef fields[15] = {stage, NULL, NULL, params, NULL, NULL, S, c64(a, 1), LLVMConstReal(a->f64, 0), c64(a, 0), NULL, NULL, NULL, NULL, state};
  for (unsigned k = 0; k < 15; k++)
    if (fields[k] && k != 2) LLVMBuildStore(b, fields[k], LLVMBuildStructGEP2(b, args_t, args, k, ""));
  LLVMBuildStore(b, c64(a, 0), iv);
  LLVMBuildBr(b, bh);
  /* batch loop */
  LLVMPositionBuilderAtEnd(b, bh);
  LLVMValueRef i = LLVMBuildLoad2(b, a->i64, iv, "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, i, N, ""), bb, done);
  LLVMPositionBuilderAtEnd(b, bb);
  LLVMValueRef left = LLVMBuildSub(b, N, i, "");
  LLVMValueRef rows = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntULT, left, c64(a, mo->batch_capacity), ""), left,
                                      c64(a, mo->batch_capacity), "rows");
  LLVMBuildStore(b, c64(a, 0), jv);
  LLVMBuildBr(b, eh);
  /* staged input: x * pre_a[f] + pre_b[f] */
  LLVMPositionBuilderAtEnd(b, eh);
  LLVMValueRef j = LLVMBuildLoad2(b, a->i64, jv, "");
  LLVMValueRef total = LLVMBuildMul(b, rows, c64(a, mo->input_elems), "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, j, total, ""), eb, call);
  LLVMPositionBuilderAtEnd(b, eb);
  LLVMValueRef src = LLVMBuildAdd(b, LLVMBuildMul(b, i, c64(a, mo->input_elems), ""), j, "");
  LLVMTypeRef f32 = LLVMFloatTypeInContext(a->ctx);
  LLVMValueRef xv = LLVMBuildFPExt(b, LLVMBuildLoad2(b, f32, LLVMBuildInBoundsGEP2(b, f32, X, &src, 1, ""), ""), a->f64, "");
  if (n_pre > 0) {
    LLVMValueRef f = LLVMBuildURem(b, j, c64(a, n_pre), "");
    LLVMValueRef av = LLVMBuildLoad2(b, a->f64, LLVMBuildInBoundsGEP2(b, a->f64, pa, &f, 1, ""), "");
    LLVMValueRef bv = LLVMBuildLoad2(b, a->f64, LLVMBuildInBoundsGEP2(b, a->f64, pb, &f, 1, ""), "");
    xv = LLVMBuildFAdd(b, LLVMBuildFMul(b, xv, av, ""), bv, "");
  }
  LLVMBuildStore(b, LLVMBuildFPTrunc(b, xv, f32, ""), LLVMBuildInBoundsGEP2(b, f32, stage, &j, 1, ""));
  LLVMBuildStore(b, LLVMBuildAdd(b, j, c64(a, 1), ""), jv);
  LLVMBuildBr(b, eh);
  /* the step */
  LLVMPositionBuilderAtEnd(b, call);
  LLVMValueRef yo = LLVMBuildMul(b, i, c64(a, mo->output_elems), "");
  LLVMBuildStore(b, rows, LLVMBuildStructGEP2(b, args_t, args, 2, ""));
  LLVMBuildStore(b, LLVMBuildInBoundsGEP2(b, f32, Y, &yo, 1, ""), LLVMBuildStructGEP2(b, args_t, args, 12, ""));
  LLVMTypeRef sfty = LLVMFunctionType(a->voidt, &a->ptr, 1, 0);
  LLVMBuildCall2(b, sfty, LLVMGetNamedFunction(a->m, SN_FN_PREDICT), &args, 1, "");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(a->ctx, fn, "next");
  if (o->n_post > 0)
    emit_post(a, fn, LLVMBuildInBoundsGEP2(b, f32, Y, &yo, 1, ""), LLVMBuildMul(b, rows, c64(a, mo->output_elems), ""),
              affine[2], affine[3], mo->output_elems, next);
  else
    LLVMBuildBr(b, next);
  LLVMPositionBuilderAtEnd(b, next);
  LLVMBuildStore(b, LLVMBuildAdd(b, i, rows, ""), iv);
  LLVMBuildBr(b, bh);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRet(b, LLVMConstInt(LLVMInt32TypeInContext(a->ctx), 0, 0));
}

/* ---------------------------------------------------------------------------
 * Files */

static int write_file(const char *path, const void *data, size_t n, sn_error *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return sn_fail(err, "cannot write %s: %s", tmp, strerror(errno));
  bool ok = fwrite(data, 1, n, f) == n;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path)) {
    remove(tmp);
    return sn_fail(err, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

/* runtime/recurrent.c compiled with SN_RECURRENT_CBLAS (compiler/CMakeLists.txt):
 * the scans a --lib archive of a model with lstm or gru layers carries */
extern const unsigned char sn_recurrent_cblas_obj[];
extern const size_t sn_recurrent_cblas_obj_len;
static const char *const SCAN_SYMS[8] = {"sn_lstm_cblas_f32", "sn_lstm_grad_cblas_f32", "sn_gru_cblas_f32",
                                         "sn_gru_grad_cblas_f32", "sn_lstm_cblas_f64", "sn_lstm_grad_cblas_f64",
                                         "sn_gru_cblas_f64", "sn_gru_grad_cblas_f64"};

/* runtime/conv_gemm.c compiled with SN_CONV_GEMM_CBLAS: the implicit-GEMM
 * convolutions a --lib archive of a model with conv2d layers carries */
extern const unsigned char sn_conv_gemm_cblas_obj[];
extern const size_t sn_conv_gemm_cblas_obj_len;
static const char *const CONV_SYMS[6] = {
    "sn_conv_gemm_cblas_f32", "sn_conv_gemm_wgrad_cblas_f32", "sn_conv_gemm_dgrad_cblas_f32",
    "sn_conv_gemm_cblas_f64", "sn_conv_gemm_wgrad_cblas_f64", "sn_conv_gemm_dgrad_cblas_f64"};

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static void ar_header(char *h, const char *name, size_t size) {
  memset(h, ' ', 60);
  memcpy(h, name, strlen(name));
  memcpy(h + 16, "0", 1);       /* mtime */
  memcpy(h + 28, "0", 1);       /* uid */
  memcpy(h + 34, "0", 1);       /* gid */
  memcpy(h + 40, "100644", 6);  /* mode */
  char sz[16];
  int n = snprintf(sz, sizeof sz, "%zu", size);
  memcpy(h + 48, sz, (size_t)n);
  h[58] = '`';
  h[59] = '\n';
}

/* A member of an archive: an object and the symbols it defines that the index names */
typedef struct ar_member {
  const char *name;
  const void *data;
  size_t n;
  const char *const *syms;
  int nsyms;
} ar_member;

/* A System V / GNU archive of `count` objects and a symbol index naming their syms. */
static int write_archive(const char *path, const ar_member *m, int count, sn_error *err) {
  size_t names = 0, nsyms = 0;
  for (int k = 0; k < count; k++)
    for (int i = 0; i < m[k].nsyms; i++) names += strlen(m[k].syms[i]) + 1, nsyms++;
  size_t index = 4 + 4 * nsyms + names, index_pad = index & 1;
  size_t at[2], total = 8 + 60 + index + index_pad;
  for (int k = 0; k < count && k < 2; k++) {
    at[k] = total;
    total += 60 + m[k].n + (m[k].n & 1);
  }
  unsigned char *buf = calloc(1, total);
  if (!buf) abort();
  memcpy(buf, "!<arch>\n", 8);
  ar_header((char *)buf + 8, "/", index);
  unsigned char *p = buf + 68;
  put_be32(p, (uint32_t)nsyms);
  char *q = (char *)p + 4 + 4 * nsyms;
  for (int k = 0, s = 0; k < count && k < 2; k++)
    for (int i = 0; i < m[k].nsyms; i++, s++) {
      put_be32(p + 4 + 4 * s, (uint32_t)at[k]);
      q = stpcpy(q, m[k].syms[i]) + 1;
    }
  if (index_pad) buf[68 + index] = '\n';
  for (int k = 0; k < count && k < 2; k++) {
    char mname[20];
    snprintf(mname, sizeof mname, "%.14s/", m[k].name);
    ar_header((char *)buf + at[k], mname, m[k].n);
    memcpy(buf + at[k] + 60, m[k].data, m[k].n);
    if (m[k].n & 1) buf[at[k] + 60 + m[k].n] = '\n';
  }
  int rc = write_file(path, buf, total, err);
  free(buf);
  return rc;
}

static int write_header(const char *path, const char *name, const sn_spec *spec, const sn_model *mo,
                        const sn_aot_opts *o, sn_error *err) {
  char up[128];
  size_t k = 0;
  for (; name[k] && k < sizeof up - 1; k++) up[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
  up[k] = 0;
  int64_t stage = mo->batch_capacity * mo->input_elems * 4;
  int64_t scratch = (mo->arena_bytes + stage + 63) / 64 * 64;
  char wline[300] = "";
  if (o->weights_file)
    snprintf(wline, sizeof wline, " * The weights are in %s.weights: call %s_load_weights once first.\n", name, name);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) abort();
  fprintf(f,
          "/* %s: the model of %s, compiled ahead of time by specnet for CPU %s.\n"
          " *\n"
          " *   static unsigned char scratch[%s_SCRATCH_BYTES] __attribute__((aligned(64)));\n"
          " *   float x[%s_INPUT_ELEMS * n], y[%s_OUTPUT_ELEMS * n];\n"
          " *   %s_predict(x, n, y, scratch);   // y[i * %s_OUTPUT_ELEMS + k]\n"
          " *\n"
          " * Inputs are raw samples, row-major, as the spec's data had them (the spec's\n"
          " * preprocessing is applied inside); outputs are what the model's last layer\n"
          " * gives (class probabilities for a softmax classifier). %s_predict allocates\n"
          " * nothing and keeps no state: calls with separate scratch may run in parallel.\n"
          "%s"
          " * Link with libopenblas and libm. */\n"
          "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n\n"
          "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
          name, spec->path, o->cpu, up, up, up, name, up, name, wline, up, up);
  fprintf(f, "#define %s_INPUT_ELEMS %lld   /* floats per sample in */\n", up, (long long)mo->input_elems);
  fprintf(f, "#define %s_OUTPUT_ELEMS %lld  /* floats per sample out */\n", up, (long long)mo->output_elems);
  fprintf(f, "#define %s_SCRATCH_BYTES %lld /* bytes of scratch %s_predict needs */\n", up, (long long)scratch,
          name);
  fprintf(f, "#define %s_PARAMETERS %lld  /* trained values inside */\n\n", up, (long long)mo->param_count);
  fprintf(f, "/* Runs the model on n samples. Returns 0. */\n");
  fprintf(f, "int %s_predict(const float *x, size_t n, float *y, void *scratch);\n", name);
  if (o->weights_file)
    fprintf(f, "/* Reads the weights written beside the library (%s.weights). 0, or -1 with errno. */\n"
               "int %s_load_weights(const char *path);\n",
            name, name);
  fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
  fclose(f);
  int rc = write_file(path, text, len, err);
  free(text);
  return rc;
}

/* ---------------------------------------------------------------------------
 * The runtime pieces the executable links: found beside the specnet command
 * (build tree or install prefix) or in $SPECNET_RUNTIME_DIR. */

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int find_runtime(char *dir, size_t len, sn_error *err) {
  const char *env = getenv("SPECNET_RUNTIME_DIR");
  char path[4200];
  if (env) {
    snprintf(path, sizeof path, "%s/libspecnet_aot_main.a", env);
    if (exists(path)) return snprintf(dir, len, "%s", env) < 0;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    const char *rel[] = {"../runtime", "../lib", "../lib/x86_64-linux-gnu", "../lib64"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      snprintf(path, sizeof path, "%s/%s/libspecnet_aot_main.a", self, rel[i]);
      if (exists(path)) return snprintf(dir, len, "%s/%s", self, rel[i]) < 0;
    }
  }
  return sn_fail(err, "cannot find libspecnet_aot_main.a beside the specnet command; set SPECNET_RUNTIME_DIR");
}

/* ---------------------------------------------------------------------------
 * Entry point */

/* What --lib cannot hold: f64 models. 0 or -1 (reported). */
static int check_lib(const sn_spec *spec, const sn_model *w, const sn_aot_opts *o, sn_diag *d) {
  sn_loc at = {spec->path, 0, 0};
  if (o->lib && w->dtype != SN_RT_F32) {
    sn_diag_error(d, at, "--lib builds f32 models only (NAME_predict takes floats)");
    return -1;
  }
  return 0;
}

/* The module's data: the weights (or room for them), the preprocessing and
 * postprocessing constants (pp: pre a, pre b, post a, post b), and for an
 * executable the class names, the characters and sn_aot_info_v1. */
static void emit_data(aot *a, const sn_spec *spec, const sn_model *w, const sn_aot_opts *o,
                      const sn_program *prog, LLVMValueRef *params, LLVMValueRef *state,
                      LLVMValueRef pp[4]) {
  size_t es = w->dtype == SN_RT_F64 ? 8 : 4;
  size_t pbytes = (size_t)w->param_count * es, qbytes = (size_t)w->state_count * es;
  if (o->weights_file) {
    *params = bss(a, o->lib ? "params" : "sn_aot_params", pbytes);
    *state = bss(a, o->lib ? "state" : "sn_aot_state", qbytes);
  } else {
    *params = blob(a, "sn_aot_params", w->params, pbytes ? pbytes : 1, o->lib);
    *state = blob(a, "sn_aot_state", qbytes ? w->state : (const void *)"", qbytes ? qbytes : 1, o->lib);
  }
  pp[0] = doubles(a, "sn_aot_pre_a", o->pre_a, o->n_pre, o->lib);
  pp[1] = doubles(a, "sn_aot_pre_b", o->pre_b, o->n_pre, o->lib);
  pp[2] = doubles(a, "sn_aot_post_a", o->post_a, o->n_post, o->lib);
  pp[3] = doubles(a, "sn_aot_post_b", o->post_b, o->n_post, o->lib);
  if (!o->lib) {
    class_names(a, o);
    blob(a, "sn_aot_chars", o->n_chars ? (const void *)o->chars : (const void *)"\0\0\0",
         (size_t)(o->n_chars ? o->n_chars : 1) * sizeof(uint32_t), false);
  }
  const sn_graph *g = &prog->infer;
  sn_aot_info info = {.version = 1, .dtype = w->dtype, .input_elems = w->input_elems,
                      .output_elems = w->output_elems, .batch_capacity = w->batch_capacity,
                      .arena_bytes = prog->plan.arena_bytes, .param_count = w->param_count,
                      .state_count = w->state_count, .input_rank = spec->input_rank, .n_pre = o->n_pre,
                      .n_post = o->n_post, .n_class_names = o->lib ? 0 : o->n_class_names,
                      .classes = w->classes,
                      .lm = spec->data.train.kind == SN_SRC_TEXT && spec->data.train.text_mode == SN_TEXT_LM,
                      .output_probs = sn_spec_softmax_output(spec), .n_chars = o->n_chars,
                      .seed = (int64_t)spec->seed,
                      .classifier = g->ops[g->output].code == SN_OP_SOFTMAX ||
                                    (spec->loss == SN_LOSS_SPARSE_CCE || spec->loss == SN_LOSS_CCE)};
  for (int i = 0; i < spec->input_rank; i++) info.input_shape[i] = spec->input_shape[i];
  if (!o->lib) blob(a, "sn_aot_info_v1", &info, sizeof info, false);
  if (!o->lib && info.lm) decoder_blob(a, spec, w); /* --generate's key/value cache */
}

/* A training binary's sn_aot_train_v1: the model's layout without its buffers and
 * functions, the training options and data without this process's pointers.
 * 0 or -1 (reported). */
static int emit_train_info(aot *a, const sn_spec *spec, const sn_model *w, const sn_aot_opts *o,
                           size_t arena_bytes, sn_diag *d) {
  sn_loc at = {spec->path, 0, 0};
  sn_aot_train *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->version = 1;
  snprintf(t->name, sizeof t->name, "%s", spec->name);
  t->layout = *w;
  t->layout.arena_bytes = arena_bytes;
  t->layout.params_info = NULL;
  t->layout.metric_names = NULL;
  t->layout.params = t->layout.grads = t->layout.opt_state = t->layout.arena = t->layout.state = NULL;
  t->layout.grad_step = t->layout.update = t->layout.train_step = t->layout.eval_step = t->layout.predict = NULL;
  if (w->n_params > (int)(sizeof t->params / sizeof t->params[0])) {
    sn_diag_error(d, at, "--train supports at most %d parameter tensors, the model has %d",
                  (int)(sizeof t->params / sizeof t->params[0]), w->n_params);
    free(t);
    return -1;
  }
  t->n_params = w->n_params;
  memcpy(t->params, w->params_info, sizeof(sn_param_info) * (size_t)w->n_params);
  for (int k = 0; k < w->n_metrics && k < 8; k++) snprintf(t->metric_names[k], 32, "%s", w->metric_names[k]);
  t->opts = *o->train_opts;
  t->opts.reporter = NULL; /* a pointer of this process: the binary sets its own */
  t->opts.metrics_path = t->opts.csv_path = t->opts.curves_path = t->opts.title = NULL;
  t->opts.on_epoch = NULL;
  t->opts.on_epoch_ctx = NULL;
  t->data = *o->data;
  blob(a, "sn_aot_train_v1", t, sizeof *t, false);
  free(t);
  return 0;
}

/* --lib: OUT/NAME.h, OUT/libNAME.a (the object, exporting syms), OUT/NAME.pc and,
 * with --weights-file, OUT/NAME.weights. 0 or -1 (err). */
static int write_lib(const sn_spec *spec, const sn_model *w, const sn_aot_opts *o, const char *obj,
                     size_t objn, const char *syms[2], sn_error *err) {
  if (mkdir(o->out, 0777) && errno != EEXIST)
    return sn_fail(err, "cannot create %s: %s", o->out, strerror(errno));
  char path[4300];
  snprintf(path, sizeof path, "%s/%s.h", o->out, o->name);
  if (write_header(path, o->name, spec, w, o, err)) return -1;
  snprintf(path, sizeof path, "%s/lib%s.a", o->out, o->name);
  char member[64];
  snprintf(member, sizeof member, "%s.o", o->name);
  /* the archive then carries the scans (recurrent.c's cblas variants), the
   * implicit-GEMM convolutions (conv_gemm.c's) */
  bool recurrent = false, conv = false;
  for (int i = 0; i < spec->n_layers; i++) {
    recurrent |= spec->layers[i].kind == SN_LAYER_LSTM || spec->layers[i].kind == SN_LAYER_GRU;
    conv |= spec->layers[i].kind == SN_LAYER_CONV2D;
  }
  ar_member mem[3] = {{member, obj, objn, syms, o->weights_file ? 2 : 1}};
  int nmem = 1;
  if (recurrent)
    mem[nmem++] = (ar_member){"recurrent.o", sn_recurrent_cblas_obj, sn_recurrent_cblas_obj_len,
                              SCAN_SYMS, 8};
  if (conv)
    mem[nmem++] = (ar_member){"conv_gemm.o", sn_conv_gemm_cblas_obj, sn_conv_gemm_cblas_obj_len,
                              CONV_SYMS, 6};
  if (write_archive(path, mem, nmem, err)) return -1;
  /* the link flags, for pkg-config: the library needs OpenBLAS and libm */
  snprintf(path, sizeof path, "%s/%s.pc", o->out, o->name);
  char pc[1024];
  int pn = snprintf(
      pc, sizeof pc,
      "# %s, compiled by specnet %s; link with: cc prog.c $(PKG_CONFIG_PATH=DIR pkg-config "
      "--cflags --libs %s)\n"
      "libdir=${pcfiledir}\nincludedir=${pcfiledir}\n\n"
      "Name: %s\nDescription: the model %s (%s_predict), compiled ahead of time by specnet\n"
      "Version: %s\nCflags: -I${includedir}\nLibs: -L${libdir} -l%s -lopenblas -lm\n",
      o->name, SPECNET_VERSION_STRING, o->name, o->name, spec->name, o->name,
      SPECNET_VERSION_STRING, o->name);
  if (write_file(path, pc, (size_t)pn < sizeof pc ? (size_t)pn : sizeof pc - 1, err)) return -1;
  if (o->weights_file) {
    size_t es = w->dtype == SN_RT_F64 ? 8 : 4;
    size_t pbytes = (size_t)w->param_count * es, qbytes = (size_t)w->state_count * es;
    snprintf(path, sizeof path, "%s/%s.weights", o->out, o->name);
    /* params then state, raw, in the model's dtype */
    char *wb = malloc(pbytes + qbytes + 1);
    if (!wb) abort();
    memcpy(wb, w->params, pbytes);
    if (qbytes) memcpy(wb + pbytes, w->state, qbytes);
    int wr = write_file(path, wb, pbytes + qbytes, err);
    free(wb);
    if (wr) return -1;
  }
  return 0;
}

/* The executable: object + aot main + runtime, linked by the C compiler. 0 or -1
 * (reported). */
static int link_executable(const sn_spec *spec, const sn_aot_opts *o, const char *obj, size_t objn,
                           sn_diag *d) {
  sn_loc at = {spec->path, 0, 0};
  sn_error err = {0};
  char rtdir[4096];
  char objpath[4300];
  snprintf(objpath, sizeof objpath, "%s.o.tmp.%d", o->out, (int)getpid());
  if (find_runtime(rtdir, sizeof rtdir, &err) || write_file(objpath, obj, objn, &err)) {
    sn_diag_error(d, at, "%s", err.msg);
    return -1;
  }
  /* $CC, else the compiler specnet was built with; the runtime's own link flags */
  const char *cc = getenv("CC") ? getenv("CC") : SPECNET_AOT_CC;
  char cmd[20000];
  snprintf(cmd, sizeof cmd,
           "'%s' %s -o '%s' '%s' '%s/libspecnet_%s.a' '%s/libspecnet_rt.a' -lopenblas -lz -lm -lpthread 2>&1",
           cc, SPECNET_AOT_LINK_FLAGS, o->out, objpath, rtdir, o->train ? "aot_train_main" : "aot_main", rtdir);
  FILE *pipe = popen(cmd, "r");
  char out[2000] = "";
  size_t got = pipe ? fread(out, 1, sizeof out - 1, pipe) : 0;
  out[got] = 0;
  int status = pipe ? pclose(pipe) : -1;
  remove(objpath);
  if (status != 0) {
    sn_diag_error(d, at, "linking %s failed (%s): %.1500s", o->out, cc, out);
    return -1;
  }
  return 0;
}

/* The module's entry points (only what they reach stays), verified, optimized and
 * compiled to an object (*obj, *objn: owned by the caller). fname, lname: the
 * names of --lib's predict and load-weights functions. 0 or -1 (reported). */
static int emit_object(aot *a, const sn_spec *spec, const sn_model *w, const sn_aot_opts *o,
                       const sn_program *prog, char *fname, char *lname, size_t cap, char **obj,
                       size_t *objn, sn_diag *d) {
  sn_loc at = {spec->path, 0, 0};
  char msg[512];
  LLVMValueRef params, state, pp[4];
  emit_data(a, spec, w, o, prog, &params, &state, pp);
  if (o->train) {
    if (emit_train_info(a, spec, w, o, prog->plan.arena_bytes, d)) return -1;
  } else {
    make_internal(a, SN_FN_GRAD);
    make_internal(a, SN_FN_UPDATE);
    make_internal(a, SN_FN_TRAIN);
    make_internal(a, SN_FN_EVAL);
  }
  sn_model mo = *w;
  mo.arena_bytes = prog->plan.arena_bytes;
  if (o->lib) {
    size_t es = w->dtype == SN_RT_F64 ? 8 : 4;
    snprintf(fname, cap, "%s_predict", o->name);
    emit_lib_predict(a, fname, params, state, pp, o, &mo);
    make_internal(a, SN_FN_PREDICT);
    if (o->weights_file) {
      snprintf(lname, cap, "%s_load_weights", o->name);
      emit_load_weights(a, lname, params, state, (size_t)w->param_count * es, (size_t)w->state_count * es);
    }
  }
  char *verr = NULL;
  if (LLVMVerifyModule(a->m, LLVMReturnStatusAction, &verr)) {
    sn_diag_error(d, at, "internal error: generated module does not verify: %.300s", verr);
    LLVMDisposeMessage(verr);
    return -1;
  }
  LLVMDisposeMessage(verr);
  if (sn_optimize(&a->cg, a->m, msg, sizeof msg) || sn_module_object(&a->cg, a->m, obj, objn, msg, sizeof msg)) {
    sn_diag_error(d, at, "LLVM: %s", msg);
    return -1;
  }
  return 0;
}

int sn_build_aot(const sn_spec *spec, const sn_model *w, const sn_aot_opts *o, sn_diag *d) {
  sn_loc at = {spec->path, 0, 0};
  char msg[512];
  if (check_lib(spec, w, o, d)) return -1;
  aot a = {0};
  if (sn_codegen_init_cpu(&a.cg, o->cpu, msg, sizeof msg)) {
    sn_diag_error(d, at, "%s", msg);
    return -1;
  }
  a.cg.par = !o->lib; /* the archive links against OpenBLAS alone */
  sn_program *prog = malloc(sizeof *prog); /* the graphs and the plan */
  if (!prog) abort();
  if (sn_pipeline(spec, w->dtype == SN_RT_F64 ? SN_F64 : SN_F32, SN_STAGE_PLAN, prog, d)) {
    free(prog);
    sn_codegen_dispose(&a.cg);
    return -1;
  }
  a.m = sn_emit_module(&a.cg, &prog->plan, SN_EMIT_ALL, NULL);
  a.ctx = a.cg.ctx;
  a.b = LLVMCreateBuilderInContext(a.ctx);
  a.i64 = LLVMInt64TypeInContext(a.ctx);
  a.i8 = LLVMInt8TypeInContext(a.ctx);
  a.ptr = LLVMPointerTypeInContext(a.ctx, 0);
  a.f64 = LLVMDoubleTypeInContext(a.ctx);
  a.voidt = LLVMVoidTypeInContext(a.ctx);
  char *obj = NULL;
  size_t objn = 0;
  char fname[200], lname[200];
  int rc = emit_object(&a, spec, w, o, prog, fname, lname, sizeof fname, &obj, &objn, d);
  if (!rc && o->lib) {
    sn_error err = {0};
    const char *syms[2] = {fname, lname};
    if ((rc = write_lib(spec, w, o, obj, objn, syms, &err))) sn_diag_error(d, at, "%s", err.msg);
  } else if (!rc) {
    rc = link_executable(spec, o, obj, objn, d);
  }
  free(obj);
  LLVMDisposeModule(a.m);
  LLVMDisposeBuilder(a.b);
  sn_program_free(prog);
  free(prog);
  sn_codegen_dispose(&a.cg);
  return rc;
}
