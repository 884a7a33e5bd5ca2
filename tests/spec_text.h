/* A spec written in a test as text, checked and compiled; on failure the
 * diagnostics are printed and NULL comes back (the caller frees *spec and *d). */
#ifndef SPECNET_TESTS_SPEC_TEXT_H
#define SPECNET_TESTS_SPEC_TEXT_H

#include <stdio.h>

#include "spec.h"
#include "specnet/compiler.h"

static sn_compiled *compile_spec_text(const char *text, const char *name, sn_dtype_rt dtype, sn_spec **spec,
                                      sn_diag *d) {
  sn_node *root = sn_yaml_parse_string(text, name, d);
  *spec = root ? sn_spec_from_tree(root, name, d) : NULL;
  sn_compiled *c = *spec ? sn_compile(*spec, dtype, d) : NULL;
  if (!c) sn_diag_print(d, stdout);
  return c;
}

#endif
