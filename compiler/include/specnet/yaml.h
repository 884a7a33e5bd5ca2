/* The YAML documents specnet reads (specs, run records, --set values) as a tree
 * whose every node keeps its position (yaml_tree.c), so that a problem found
 * anywhere in a document can be reported at its file:line:col. */
#ifndef SPECNET_YAML_H
#define SPECNET_YAML_H

#include <stdbool.h>
#include <stdio.h>

#include "specnet/compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * The tree: scalars keep their text; mappings keep key order. */

typedef enum sn_node_kind { SN_NODE_SCALAR, SN_NODE_SEQ, SN_NODE_MAP } sn_node_kind;

typedef struct sn_node sn_node;
struct sn_node {
  sn_node_kind kind;
  sn_loc loc;       /* where the node starts */
  char *text;       /* SCALAR: the scalar's text, owned */
  bool quoted;      /* SCALAR: was quoted (so "10" is a string, 10 a number) */
  int n;            /* SEQ: items; MAP: pairs */
  sn_node **items;  /* SEQ: items; MAP: values */
  sn_node **keys;   /* MAP: keys (scalars) */
  char *owned_name; /* a document's root only: the file name its locs point at */
};

/* Parses a YAML file (or a string, for --set values) into a tree. Syntax errors,
 * duplicate keys, aliases beyond a small budget, nesting deeper than 64 and
 * documents over 16 MiB are errors in d. Returns NULL on error. */
sn_node *sn_yaml_parse_file(const char *path, sn_diag *d);
sn_node *sn_yaml_parse_string(const char *text, const char *name, sn_diag *d);
void sn_node_free(sn_node *n);
/* Value for `key` in a MAP node, or NULL. */
sn_node *sn_node_get(const sn_node *map, const char *key);
/* Writes the tree back as YAML (block style), for spec.resolved.yaml. */
void sn_node_write(const sn_node *n, FILE *out);
/* Writes the tree on one line in flow style (`{a: [1, 2]}`), which reads back as
 * the same tree: the text of a --set VALUE. */
void sn_node_write_flow(const sn_node *n, FILE *out);
/* A deep copy (locations kept, pointing at the same file names), or NULL when out
 * of memory. */
sn_node *sn_node_copy(const sn_node *n);
/* Applies "a.b.c=VALUE" (VALUE read as YAML) to the tree; a path through an
 * unknown key is reported by the spec checker afterwards, as for the file.
 * Missing mappings on the way are created; a number after a list picks an item
 * (model.layers.0); a dotted key that exists wins over its parts
 * (expect.test.accuracy.min). A path into a scalar, a bad item number or a bad
 * VALUE is an error here. Locations are file "--set", line 1, column = position
 * in the argument. Returns 0 or -1. */
int sn_node_set(sn_node *root, const char *assignment, sn_diag *d);


#ifdef __cplusplus
}
#endif
#endif
