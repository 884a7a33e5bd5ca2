/* The middle end as one list of passes: spec -> training graph -> gradients ->
 * inference graph -> composites expanded -> kernels and memory plan. Every user of
 * the compiler (the JIT, `emit`, `check`, ahead-of-time builds, gradient checks
 * through the JIT) runs it, each to the stage it needs; code generation, caching,
 * threads and profiling are the callers' business. */
#include <string.h>

#include "plan.h"
#include "specnet/runtime.h"

int sn_pipeline(const sn_spec *spec, sn_dtype dtype, sn_stage until, sn_program *p, sn_diag *d) {
  memset(p, 0, sizeof *p);
  double t0 = sn_now();
  if (sn_build_graph(spec, dtype, true, &p->train, d)) goto fail;
  double t1 = sn_now();
  p->times.build = t1 - t0;
  if (until == SN_STAGE_GRAPH) return 0;
  sn_autodiff(&p->train);
  double t2 = sn_now();
  p->times.autodiff = t2 - t1;
  if (until == SN_STAGE_GRAD) return 0;
  if (sn_build_graph(spec, dtype, false, &p->infer, d)) goto fail;
  sn_expand(&p->train);
  sn_expand(&p->infer);
  sn_plan_build(&p->train, &p->infer, &p->plan);
  p->has_plan = true;
  p->times.plan = sn_now() - t2;
  return 0;
fail:
  sn_program_free(p);
  return -1;
}

void sn_program_free(sn_program *p) {
  if (p->has_plan) sn_plan_free(&p->plan);
  sn_graph_free(&p->train);
  sn_graph_free(&p->infer);
  memset(p, 0, sizeof *p);
}
