/* Every op of ops.def is lowered and tested: the f64 gradient-check specs under
 * tests/specs/ops/ (and tests/golden/) together must produce every op of a class
 * that reaches code (elem, rowred, accum; composites before their expansion), and
 * each of them must compile through the LLVM back end (a missing lowering stops
 * the compiler, so it fails here rather than in a user's run). An op added to
 * ops.def without a spec that uses it fails this test. Run from tests/. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "specnet/compiler.h"

#include "check.h"

static bool seen[SN_OP_COUNT];

static void mark(const sn_graph *g) {
  for (int v = 0; v < g->n; v++) seen[g->ops[v].code] = true;
}

static void run_spec(const char *path) {
  sn_diag d = {0};
  sn_spec *s = sn_spec_load(path, NULL, 0, &d);
  CHECK(s != NULL, "%s does not load", path);
  if (s) {
    sn_program p;
    /* composites exist between autodiff and expansion */
    if (sn_pipeline(s, SN_F64, SN_STAGE_GRAD, &p, &d) == 0) mark(&p.train);
    sn_program_free(&p);
    if (sn_pipeline(s, SN_F64, SN_STAGE_PLAN, &p, &d) == 0) {
      mark(&p.train);
      mark(&p.infer);
    }
    sn_program_free(&p);
    FILE *null = fopen("/dev/null", "w");
    CHECK(null && sn_emit_stage(s, "llvm", SN_RT_F64, null, &d) == 0, "%s does not compile", path);
    if (null) fclose(null);
  }
  if (d.errors) sn_diag_print(&d, stderr);
  sn_diag_free(&d);
  sn_spec_free(s);
}

static int run_dir(const char *dir) {
  DIR *dp = opendir(dir);
  CHECK(dp != NULL, "cannot open %s (run from tests/)", dir);
  if (!dp) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    run_spec(path);
    n++;
  }
  closedir(dp);
  return n;
}

/* ops no spec can produce, each with the reason */
static const char *const exempt[][2] = {
    {"copy", "the identity: linear's op in acts.def, for which act_op adds no op"},
};

static bool is_exempt(const char *name) {
  for (size_t i = 0; i < sizeof exempt / sizeof *exempt; i++)
    if (!strcmp(name, exempt[i][0])) return true;
  return false;
}

int main(void) {
  int n = run_dir("specs/ops") + run_dir("golden");
  int missing = 0;
  for (int c = 0; c < SN_OP_COUNT; c++) {
    sn_opclass cls = sn_opdefs[c].cls;
    if (cls == SN_CLS_SOURCE || cls == SN_CLS_VIEW || cls == SN_CLS_GEMM || seen[c] || is_exempt(sn_opdefs[c].name))
      continue;
    CHECK(0, "op %s (ops.def) is in no spec of tests/specs/ops or tests/golden: add a gradcheck spec that uses it",
          sn_opdefs[c].name);
    missing++;
  }
  printf("test_op_coverage: %d specs, %d ops of ops.def, %d not covered\n", n, (int)SN_OP_COUNT, missing);
  return failures ? 1 : 0;
}
