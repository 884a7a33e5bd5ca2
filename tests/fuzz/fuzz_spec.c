/* libFuzzer target: the spec front end on arbitrary bytes. The input is read as
 * YAML (sn_yaml_parse_string), written back (sn_node_write), checked as a spec
 * (sn_spec_from_tree), built into the layer graph (sn_check_graph, shape rules)
 * and its resolved form written (sn_spec_write_resolved); every diagnostic is
 * printed. Comment lines "#set KEY=VALUE" in the input are applied as --set
 * overrides first, so the fuzzer reaches sn_node_set too.
 *
 * What it checks besides the sanitizers: a spec that is accepted writes a
 * resolved spec that is accepted again (the round trip `specnet train` relies on
 * for spec.resolved.yaml), and nothing reports an error without a message. Not
 * for the compiler's back end (no LLVM here: too slow per input). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "specnet/compiler.h"

static FILE *sink; /* /dev/null: printing is exercised, not read */

/* Applies up to 4 "#set KEY=VALUE" lines (at the start of a line) as --set. */
static void apply_sets(sn_node *root, const char *text, sn_diag *d) {
  int n = 0;
  for (const char *p = text; p && *p && n < 4; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, "#set ", 5)) continue;
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p - 5) : strlen(p + 5);
    char *arg = strndup(p + 5, len);
    if (!arg) abort();
    sn_node_set(root, arg, d);
    free(arg);
    n++;
  }
}

static void check_diag(const sn_diag *d) {
  int errors = 0;
  for (int i = 0; i < d->n; i++) {
    if (!d->v[i].msg || !d->v[i].msg[0]) {
      fprintf(stderr, "diagnostic %d has no message\n", i);
      abort();
    }
    errors += d->v[i].sev == SN_ERROR;
  }
  if (errors != d->errors) {
    fprintf(stderr, "%d errors counted, %d recorded\n", d->errors, errors);
    abort();
  }
}

/* The resolved spec of an accepted spec must itself be accepted. */
static void round_trip(const sn_spec *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) abort();
  sn_spec_write_resolved(s, f);
  fclose(f);
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string(buf, "resolved.yaml", &d);
  sn_spec *again = root ? sn_spec_from_tree(root, s->path, &d) : NULL;
  if (!again) {
    fprintf(stderr, "the resolved spec of an accepted spec is rejected:\n%s\n", buf);
    sn_diag_print(&d, stderr);
    abort();
  }
  sn_spec_free(again);
  sn_diag_free(&d);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!sink && !(sink = fopen("/dev/null", "w"))) abort();
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  sn_diag d = {0};
  sn_node *root = sn_yaml_parse_string(text, "fuzz.yaml", &d);
  if (root) {
    apply_sets(root, text, &d);
    sn_node_write(root, sink);
    int errors = d.errors;
    /* the path's folder is where data paths resolve from */
    sn_spec *s = sn_spec_from_tree(root, "fuzz/spec.yaml", &d);
    if (s && d.errors == errors && sn_check_graph(s, &d) == 0) {
      sn_spec_write_resolved(s, sink);
      if (d.errors == errors) round_trip(s);
    }
    sn_spec_free(s);
  }
  check_diag(&d);
  sn_diag_print(&d, sink);
  sn_diag_free(&d);
  free(text);
  return 0;
}
