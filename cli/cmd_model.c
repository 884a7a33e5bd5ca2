/* specnet check, emit and eval: the commands that read a spec (and weights) and
 * print what it compiles to or how the model scores. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_check(const opts *o) {
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  sn_diag d = {0};
  int rc = sn_emit_stage(s, "table", o->dtype, stdout, &d);
  print_diag(&d);
  sn_diag_free(&d);
  if (!rc && check_text_sources(s, stdout)) rc = EXIT_SPEC;
  sn_spec_free(s);
  return rc ? EXIT_SPEC : 0;
}

int cmd_emit(const opts *o) {
  static const char *const whats[] = {"spec", "ir", "grad", "plan", "llvm", "asm"};
  if (!o->what) return usage_error("emit needs --what spec|ir|grad|plan|llvm|asm");
  bool ok = false;
  for (size_t i = 0; i < sizeof whats / sizeof *whats; i++) ok |= !strcmp(o->what, whats[i]);
  if (!ok) {
    const char *near = sn_closest(o->what, whats, 6);
    fprintf(stderr, "specnet: error: --what must be one of spec, ir, grad, plan, llvm, asm; got '%s'\n", o->what);
    if (near) fprintf(stderr, "hint: did you mean '%s'?\n", near);
    return EXIT_USAGE;
  }
  sn_spec *s = load_spec(o);
  if (!s) return EXIT_SPEC;
  int rc = 0;
  if (!strcmp(o->what, "spec")) {
    sn_spec_write_resolved(s, stdout); /* what a run writes to spec.resolved.yaml */
  } else {
    sn_diag d = {0};
    rc = sn_emit_stage(s, o->what, o->dtype, stdout, &d) ? EXIT_SPEC : 0;
    print_diag(&d);
    sn_diag_free(&d);
  }
  sn_spec_free(s);
  return rc;
}

int cmd_eval(const opts *o) {
  if (!o->weights) return usage_error("eval needs --weights FILE");
  const char *split = o->split ? o->split : "test";
  if (strcmp(split, "test") && strcmp(split, "validation") && strcmp(split, "train"))
    return usage_error("--split must be test, validation or train; got '%s'", split);
  session S;
  int rc = session_open(&S, o, true);
  if (rc) {
    session_free(&S);
    return rc;
  }
  const sn_dataset *ds = !strcmp(split, "train") ? &S.ds.train
                         : !strcmp(split, "validation") ? (S.ds.has_val ? &S.ds.val : NULL)
                                                        : (S.ds.has_test ? &S.ds.test : NULL);
  if (!ds) { /* at the data section's training source, where the missing one would go */
    bool val = !strcmp(split, "validation");
    sn_loc at = sn_spec_data_loc(S.spec, val ? SN_PART_VALIDATION : SN_PART_TEST);
    if (!at.line) at = sn_spec_data_loc(S.spec, SN_PART_TRAIN);
    if (!at.file) at.file = sn_spec_path(S.spec);
    sn_diag d = {0};
    sn_diag_error(&d, at, "the spec has no %s data", split);
    sn_diag_hint(&d, val ? "add data.validation (a source, or {split: 0.1} of train), or use --split train"
                         : "add data.test (a source), or use --split train");
    sn_diag_print(&d, stderr);
    sn_diag_free(&d);
    session_free(&S);
    return EXIT_SPEC;
  }
  sn_eval_result r;
  sn_error err = {0};
  if (sn_evaluate(S.m, ds, &r, &err)) {
    fprintf(stderr, "%s: error: %s\n", sn_spec_path(S.spec), err.msg);
    session_free(&S);
    return EXIT_SPEC;
  }
  /* the names of metrics.jsonl: val_loss, test_accuracy (train_loss for the training set) */
  const char *prefix = !strcmp(split, "validation") ? "val" : split;
  printf("%s_loss %.9g", prefix, r.loss);
  for (int k = 0; k < S.m->n_metrics; k++)
    printf("  %s_%s %.6f", prefix, S.m->metric_names[k], r.metrics[k]);
  printf("  (%lld samples, %.2fs)\n", (long long)r.samples, r.seconds);
  session_free(&S);
  return 0;
}
