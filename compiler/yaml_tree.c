/* The YAML layer: libyaml's event stream made into a small tree of scalars,
 * lists and mappings in which every node remembers file:line:col, so that every
 * later error can point at the spec text. Also writes a tree back as YAML and
 * applies --set overrides to it.
 *
 * Not for meaning: this file does not know what a spec is. Whether `units: abc`
 * is wrong is parse_spec.c's business; here only YAML-level problems are errors
 * (syntax, invalid UTF-8, duplicate keys, non-scalar keys, and the resource limits
 * below, which bound what a hostile file can cost: 16 MiB of text, a million
 * nodes, 64 levels).
 *
 * Aliases are supported by copying the anchored subtree, under a budget. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "spec.h"

enum {
  MAX_DEPTH = 64,           /* open lists/mappings */
  MAX_ALIASES = 100,        /* alias uses per document */
  MAX_NODES = 1000000,      /* nodes per document, aliases expanded */
  MAX_ALIAS_NODES = 100000, /* of which made by copying aliased subtrees */
  SMALL_MAP = 16,           /* mappings up to this size check duplicates pairwise */
};
#define MAX_FILE_BYTES ((size_t)16 << 20) /* bytes */

static const char SET_FILE[] = "--set";

/* ---------------------------------------------------------------------------
 * Nodes */

static sn_node *new_node(sn_node_kind kind, sn_loc loc) {
  sn_node *n = calloc(1, sizeof *n);
  if (n) {
    n->kind = kind;
    n->loc = loc;
  }
  return n;
}

void sn_node_free(sn_node *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) {
    if (n->keys) sn_node_free(n->keys[i]);
    sn_node_free(n->items[i]);
  }
  free(n->keys);
  free(n->items);
  free(n->text);
  free(n->owned_name);
  free(n);
}

/* Arrays grow to the next power of two when n reaches one, so no capacity field
 * is needed: the capacity is always the smallest power of two >= n. */
static int grow(sn_node ***arr, int n) {
  if (n != 0 && (n & (n - 1)) != 0) return 0;
  if (n >= (1 << 30)) return -1;
  size_t cap = n ? (size_t)n * 2 : 1;
  sn_node **a = realloc(*arr, sizeof *a * cap);
  if (!a) return -1;
  *arr = a;
  return 0;
}

static int seq_push(sn_node *seq, sn_node *item) {
  if (grow(&seq->items, seq->n)) return -1;
  seq->items[seq->n++] = item;
  return 0;
}

static int map_push(sn_node *map, sn_node *key, sn_node *value) {
  if (grow(&map->keys, map->n) || grow(&map->items, map->n)) return -1;
  map->keys[map->n] = key;
  map->items[map->n] = value;
  map->n++;
  return 0;
}

static sn_node *copy_node(const sn_node *n) {
  sn_node *c = new_node(n->kind, n->loc);
  if (!c) return NULL;
  c->quoted = n->quoted;
  if (n->text && !(c->text = strdup(n->text))) goto fail;
  for (int i = 0; i < n->n; i++) {
    sn_node *v = copy_node(n->items[i]);
    if (!v) goto fail;
    if (n->kind == SN_NODE_MAP) {
      sn_node *k = copy_node(n->keys[i]);
      if (!k || map_push(c, k, v)) {
        sn_node_free(k);
        sn_node_free(v);
        goto fail;
      }
    } else if (seq_push(c, v)) {
      sn_node_free(v);
      goto fail;
    }
  }
  return c;
fail:
  sn_node_free(c);
  return NULL;
}

sn_node *sn_node_get(const sn_node *map, const char *key) {
  if (!map || map->kind != SN_NODE_MAP) return NULL;
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->text, key) == 0) return map->items[i];
  return NULL;
}

/* ---------------------------------------------------------------------------
 * Building the tree from libyaml events */

typedef struct anchor {
  char *name;    /* owned */
  sn_node *node; /* not owned: part of the tree being built */
  bool open;     /* its list/mapping has not ended yet */
  long size;     /* nodes in the subtree */
  int height;    /* levels of lists/mappings in it; 0 for a scalar */
} anchor;

typedef struct frame {
  sn_node *node;    /* the open list/mapping; owned until attached to its parent */
  sn_node *key;     /* mapping: a key waiting for its value; owned */
  int height;       /* of the subtree so far */
  long first_count; /* node count when it opened, for its anchor's size */
  int anchor;       /* index into anchors, or -1 */
} frame;

typedef struct builder {
  sn_diag *d;
  const char *file;         /* the name every loc points at */
  const unsigned char *buf; /* the input, for positions of encoding errors */
  size_t len;
  int col_base;     /* added to columns of line 1 (--set values) */
  size_t last_line; /* 0-based index of the input's last line */
  frame stack[MAX_DEPTH];
  int sp;
  sn_node *root;
  anchor *anchors;
  int n_anchors, cap_anchors;
  long count;  /* nodes made so far, aliases expanded */
  long copied; /* of which copies made for aliases */
  int aliases; /* alias uses so far */
  int docs;    /* documents started */
} builder;

static sn_loc offset_loc(const builder *b, size_t off);

static sn_loc mark_loc(const builder *b, yaml_mark_t m) {
  /* At the end of input libyaml moves to a line after the last; when the input
   * does not end in a newline that line does not exist, so point past the text. */
  if (m.line > b->last_line) return offset_loc(b, b->len);
  int line = (int)m.line + 1, col = (int)m.column + 1;
  if (line == 1) col += b->col_base;
  return (sn_loc){b->file, line, col};
}

/* Line and column of a byte offset: libyaml reports encoding errors by offset. */
static sn_loc offset_loc(const builder *b, size_t off) {
  int line = 1, col = 1;
  for (size_t i = 0; i < off && i < b->len; i++) {
    if (b->buf[i] == '\n') {
      line++;
      col = 1;
    } else if ((b->buf[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  if (line == 1) col += b->col_base;
  return (sn_loc){b->file, line, col};
}

static int oom(builder *b, sn_loc loc) {
  sn_diag_error(b->d, loc, "out of memory while reading YAML");
  return -1;
}

static int count_nodes(builder *b, long k, sn_loc loc) {
  if (b->count + k > MAX_NODES) {
    sn_diag_error(b->d, loc, "the document has more than %d nodes (aliases expanded)", MAX_NODES);
    return -1;
  }
  b->count += k;
  return 0;
}

static void check_duplicates(builder *b, const sn_node *map);

/* Hands a finished node (of `height`) to the open container, or makes it the root.
 * Takes ownership of n in every case. */
static int attach(builder *b, sn_node *n, int height) {
  if (b->sp == 0) {
    b->root = n;
    return 0;
  }
  frame *f = &b->stack[b->sp - 1];
  if (f->node->kind == SN_NODE_MAP && !f->key) {
    if (n->kind != SN_NODE_SCALAR) {
      sn_diag_error(b->d, n->loc, "mapping keys must be scalars, not %s",
                    n->kind == SN_NODE_MAP ? "mappings" : "lists");
      sn_node_free(n);
      return -1;
    }
    if (!n->quoted && strcmp(n->text, "<<") == 0)
      sn_diag_error(b->d, n->loc, "merge keys ('<<') are not supported; write the keys out");
    f->key = n;
    return 0;
  }
  int rc = f->node->kind == SN_NODE_MAP ? map_push(f->node, f->key, n) : seq_push(f->node, n);
  if (rc) {
    sn_node_free(n);
    return oom(b, f->node->loc);
  }
  f->key = NULL;
  if (height + 1 > f->height) f->height = height + 1;
  return 0;
}

/* Tags: `!!str` (and the non-specific `!`) make a scalar a string, as quotes do;
 * the core schema's own tags are accepted and otherwise ignored; others (custom
 * types) mean nothing to specnet. */
static int check_tag(builder *b, const yaml_char_t *tag, sn_loc loc, bool *is_str) {
  static const char core[] = "tag:yaml.org,2002:";
  if (!tag) return 0;
  const char *t = (const char *)tag;
  if (strcmp(t, "!") == 0 || strcmp(t, "tag:yaml.org,2002:str") == 0) {
    *is_str = true;
    return 0;
  }
  static const char *const ok[] = {"int", "float", "bool", "null", "map", "seq"};
  if (strncmp(t, core, sizeof core - 1) == 0) {
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
      if (strcmp(t + sizeof core - 1, ok[i]) == 0) return 0;
    sn_diag_error(b->d, loc, "YAML tag '!!%s' is not supported", t + sizeof core - 1);
  } else {
    sn_diag_error(b->d, loc, "YAML tag '%s' is not supported", t);
  }
  return -1;
}

static int add_anchor(builder *b, const yaml_char_t *name, sn_node *node, bool open, sn_loc loc) {
  if (b->n_anchors == b->cap_anchors) {
    int cap = b->cap_anchors ? b->cap_anchors * 2 : 8;
    anchor *a = realloc(b->anchors, sizeof *a * (size_t)cap);
    if (!a) return oom(b, loc);
    b->anchors = a;
    b->cap_anchors = cap;
  }
  char *copy = strdup((const char *)name);
  if (!copy) return oom(b, loc);
  b->anchors[b->n_anchors++] = (anchor){copy, node, open, 1, 0};
  return 0;
}

static int on_scalar(builder *b, const yaml_event_t *ev) {
  sn_loc loc = mark_loc(b, ev->start_mark);
  bool is_str = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
  if (check_tag(b, ev->data.scalar.tag, loc, &is_str) || count_nodes(b, 1, loc)) return -1;
  const char *value = (const char *)ev->data.scalar.value;
  if (strlen(value) != ev->data.scalar.length)
    sn_diag_error(b->d, loc, "NUL characters are not allowed in scalars");
  sn_node *n = new_node(SN_NODE_SCALAR, loc);
  if (!n || !(n->text = strdup(value))) {
    sn_node_free(n);
    return oom(b, loc);
  }
  n->quoted = is_str;
  if (ev->data.scalar.anchor && add_anchor(b, ev->data.scalar.anchor, n, false, loc)) {
    sn_node_free(n);
    return -1;
  }
  return attach(b, n, 0);
}

static int on_start(builder *b, const yaml_event_t *ev, sn_node_kind kind) {
  sn_loc loc = mark_loc(b, ev->start_mark);
  const yaml_char_t *tag =
      kind == SN_NODE_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
  const yaml_char_t *anc =
      kind == SN_NODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
  bool is_str = false;
  if (check_tag(b, tag, loc, &is_str)) return -1;
  if (is_str) {
    sn_diag_error(b->d, loc, "a %s cannot be tagged as a string",
                  kind == SN_NODE_MAP ? "mapping" : "list");
    return -1;
  }
  if (b->sp == MAX_DEPTH) {
    sn_diag_error(b->d, loc, "nesting deeper than %d levels", MAX_DEPTH);
    return -1;
  }
  if (count_nodes(b, 1, loc)) return -1;
  sn_node *n = new_node(kind, loc);
  if (!n) return oom(b, loc);
  int a = -1;
  if (anc) {
    if (add_anchor(b, anc, n, true, loc)) {
      sn_node_free(n);
      return -1;
    }
    a = b->n_anchors - 1;
  }
  b->stack[b->sp++] = (frame){n, NULL, 1, b->count - 1, a};
  return 0;
}

static int on_end(builder *b) {
  frame f = b->stack[--b->sp];
  if (f.node->kind == SN_NODE_MAP) check_duplicates(b, f.node);
  if (f.anchor >= 0) {
    anchor *a = &b->anchors[f.anchor];
    a->open = false;
    a->size = b->count - f.first_count;
    a->height = f.height;
  }
  return attach(b, f.node, f.height);
}

static int on_alias(builder *b, const yaml_event_t *ev) {
  sn_loc loc = mark_loc(b, ev->start_mark);
  const char *name = (const char *)ev->data.alias.anchor;
  if (++b->aliases > MAX_ALIASES) {
    sn_diag_error(b->d, loc, "more than %d aliases in one document", MAX_ALIASES);
    return -1;
  }
  const anchor *a = NULL;
  for (int i = b->n_anchors - 1; i >= 0 && !a; i--)
    if (strcmp(b->anchors[i].name, name) == 0) a = &b->anchors[i];
  if (!a) {
    sn_diag_error(b->d, loc, "unknown alias '*%s' (no anchor '&%s' before it)", name, name);
    return -1;
  }
  if (a->open) {
    sn_diag_error(b->d, loc, "alias '*%s' refers to a node that contains it", name);
    return -1;
  }
  /* Checked before copying, so an alias bomb costs nothing. */
  if (b->copied + a->size > MAX_ALIAS_NODES) {
    sn_diag_error(b->d, loc, "aliases expand to more than %d nodes", MAX_ALIAS_NODES);
    return -1;
  }
  if (b->sp + a->height > MAX_DEPTH) {
    sn_diag_error(b->d, loc, "nesting deeper than %d levels (alias '*%s' expanded)", MAX_DEPTH,
                  name);
    return -1;
  }
  if (count_nodes(b, a->size, loc)) return -1;
  b->copied += a->size;
  sn_node *c = copy_node(a->node);
  if (!c) return oom(b, loc);
  return attach(b, c, a->height);
}

static void report_dup(builder *b, const sn_node *first, const sn_node *again) {
  sn_diag_error(b->d, again->loc, "duplicate key '%s' (first defined at line %d)", again->text,
                first->loc.line);
}

/* Every repeated key is reported at its second occurrence, in document order.
 * Large mappings use a hash table so a hostile file cannot make this quadratic. */
static void check_duplicates(builder *b, const sn_node *map) {
  if (map->n <= SMALL_MAP) {
    for (int i = 1; i < map->n; i++)
      for (int j = 0; j < i; j++)
        if (strcmp(map->keys[i]->text, map->keys[j]->text) == 0) {
          report_dup(b, map->keys[j], map->keys[i]);
          break;
        }
    return;
  }
  size_t cap = 1;
  while (cap < (size_t)map->n * 2) cap *= 2;
  int *slot = malloc(sizeof *slot * cap); /* index of a key, or -1 */
  if (!slot) {
    oom(b, map->loc);
    return;
  }
  memset(slot, -1, sizeof *slot * cap);
  for (int i = 0; i < map->n; i++) {
    const char *k = map->keys[i]->text;
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const char *p = k; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
    size_t s = (size_t)h & (cap - 1);
    while (slot[s] >= 0 && strcmp(map->keys[slot[s]]->text, k) != 0) s = (s + 1) & (cap - 1);
    if (slot[s] >= 0)
      report_dup(b, map->keys[slot[s]], map->keys[i]);
    else
      slot[s] = i;
  }
  free(slot);
}

/* Whether 0-based line `line` of the input is indented with a tab: libyaml's
 * message for that ("found character that cannot start any token") names no tab. */
static bool tab_indented(const builder *b, size_t line) {
  size_t i = 0;
  for (size_t l = 0; l < line && i < b->len; i++)
    if (b->buf[i] == '\n') l++;
  for (; i < b->len && (b->buf[i] == ' ' || b->buf[i] == '\t'); i++)
    if (b->buf[i] == '\t') return true;
  return false;
}

static void report_parser_error(builder *b, const yaml_parser_t *p) {
  switch (p->error) {
  case YAML_MEMORY_ERROR:
    oom(b, (sn_loc){b->file, 0, 0});
    return;
  case YAML_READER_ERROR: {
    sn_loc loc = offset_loc(b, p->problem_offset);
    const char *problem = p->problem ? p->problem : "unreadable input";
    if (strstr(problem, "UTF-8")) {
      if (p->problem_value >= 0)
        sn_diag_error(b->d, loc, "not valid UTF-8: %s (byte 0x%02X)", problem,
                      (unsigned)p->problem_value & 0xFF);
      else
        sn_diag_error(b->d, loc, "not valid UTF-8: %s", problem);
      sn_diag_hint(b->d, "specs must be UTF-8 text");
    } else if (p->problem_value >= 0) {
      sn_diag_error(b->d, loc, "invalid character: %s (U+%04X)", problem,
                    (unsigned)p->problem_value);
    } else {
      sn_diag_error(b->d, loc, "invalid input: %s", problem);
    }
    return;
  }
  default: {
    sn_loc loc = mark_loc(b, p->problem_mark);
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->context)
      sn_diag_error(b->d, loc, "invalid YAML: %s (%s at line %d)", problem, p->context,
                    (int)p->context_mark.line + 1);
    else
      sn_diag_error(b->d, loc, "invalid YAML: %s", problem);
    if (b->buf && tab_indented(b, p->problem_mark.line))
      sn_diag_hint(b->d, "YAML does not allow tabs for indentation; use spaces");
  }
  }
}

static int on_event(builder *b, const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++b->docs > 1) {
      sn_diag_error(b->d, mark_loc(b, ev->start_mark),
                    "a second YAML document; a spec is one document");
      return -1;
    }
    return 0;
  case YAML_SCALAR_EVENT:
    return on_scalar(b, ev);
  case YAML_ALIAS_EVENT:
    return on_alias(b, ev);
  case YAML_SEQUENCE_START_EVENT:
    return on_start(b, ev, SN_NODE_SEQ);
  case YAML_MAPPING_START_EVENT:
    return on_start(b, ev, SN_NODE_MAP);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    return on_end(b);
  default:
    return 0;
  }
}

/* `col_base` shifts columns of the first line (a --set value sits after "KEY="). */
static sn_node *parse_buffer(const unsigned char *buf, size_t len, const char *name, bool is_file,
                             int col_base, sn_diag *d) {
  int errors0 = d->errors, first = d->n;
  char *file = strdup(name);
  if (!file) {
    sn_diag_error(d, (sn_loc){name, 0, 0}, "out of memory while reading YAML");
    return NULL;
  }
  builder b = {.d = d, .file = file, .buf = buf, .len = len, .col_base = col_base};
  for (size_t i = 0; i < len; i++) b.last_line += buf[i] == '\n';
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    oom(&b, (sn_loc){file, 0, 0});
    free(file);
    return NULL;
  }
  yaml_parser_set_input_string(&p, buf, len);
  for (bool done = false; !done;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      report_parser_error(&b, &p);
      break;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    int rc = on_event(&b, &ev);
    yaml_event_delete(&ev);
    if (rc) break;
  }
  yaml_parser_delete(&p);
  sn_diag_sort(d, first); /* duplicates are found when their mapping ends */

  if (d->errors == errors0 && b.docs == 0)
    sn_diag_error(d, (sn_loc){file, 1, 1 + col_base},
                  is_file ? "the file is empty (no YAML document)" : "empty YAML value");
  for (int i = 0; i < b.sp; i++) {
    sn_node_free(b.stack[i].node);
    sn_node_free(b.stack[i].key);
  }
  for (int i = 0; i < b.n_anchors; i++) free(b.anchors[i].name);
  free(b.anchors);
  if (d->errors != errors0 || !b.root) {
    sn_node_free(b.root);
    free(file);
    return NULL;
  }
  b.root->owned_name = file;
  return b.root;
}

sn_node *sn_yaml_parse_string(const char *text, const char *name, sn_diag *d) {
  size_t len = strlen(text);
  if (len > MAX_FILE_BYTES) {
    sn_diag_error(d, (sn_loc){name, 0, 0}, "the text is larger than %zu MiB", MAX_FILE_BYTES >> 20);
    return NULL;
  }
  return parse_buffer((const unsigned char *)text, len, name, false, 0, d);
}

sn_node *sn_yaml_parse_file(const char *path, sn_diag *d) {
  sn_loc at = {path, 0, 0};
  FILE *f = fopen(path, "rb");
  if (!f) {
    sn_diag_error(d, at, "cannot open file: %s", strerror(errno));
    return NULL;
  }
  /* Read at most one byte past the limit: enough to know it is too big. */
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap);
  int err = 0;
  while (buf) {
    if (len == cap) {
      if (cap > MAX_FILE_BYTES) break;
      size_t ncap = cap * 2 > MAX_FILE_BYTES + 1 ? MAX_FILE_BYTES + 1 : cap * 2;
      unsigned char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) err = errno ? errno : EIO;
      break;
    }
  }
  fclose(f);
  sn_node *root = NULL;
  if (!buf)
    sn_diag_error(d, at, "out of memory while reading the file");
  else if (err)
    sn_diag_error(d, at, "cannot read file: %s", strerror(err));
  else if (len > MAX_FILE_BYTES)
    sn_diag_error(d, at, "the file is larger than %zu MiB", MAX_FILE_BYTES >> 20);
  else
    root = parse_buffer(buf, len, path, true, 0, d);
  free(buf);
  return root;
}

/* ---------------------------------------------------------------------------
 * Writing YAML (block style) */

/* Would this text, written plain, read back as the same plain scalar? */
static bool plain_ok(const char *s) {
  if (!*s || s[0] == ' ' || s[strlen(s) - 1] == ' ') return false;
  if (strchr("?:,[]{}#&*!|>'\"%@`", s[0])) return false;
  if (s[0] == '-' && (s[1] == ' ' || s[1] == '\0')) return false;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7F) return false;
    if (c == ':' && (p[1] == ' ' || p[1] == '\0')) return false;
    if (c == '#' && p[-1] == ' ') return false;
  }
  return true;
}

static void write_scalar(const sn_node *n, FILE *out) {
  const char *s = n->text ? n->text : "";
  if (!n->quoted) {
    if (!*s) {
      fputs("null", out); /* a plain empty scalar is YAML's null */
      return;
    }
    if (plain_ok(s)) {
      fputs(s, out);
      return;
    }
  }
  fputc('"', out);
  /* YAML's double-quoted escapes; other control characters as \xXX */
  static const char *const ESC[128] = {['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n",
                                       ['\t'] = "\\t", ['\r'] = "\\r"};
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 128 && ESC[*p])
      fputs(ESC[*p], out);
    else if (*p < 0x20 || *p == 0x7F)
      fprintf(out, "\\x%02X", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static bool is_inline(const sn_node *n) { return n->kind == SN_NODE_SCALAR || n->n == 0; }

static void write_inline(const sn_node *n, FILE *out) {
  if (n->kind == SN_NODE_SCALAR)
    write_scalar(n, out);
  else
    fputs(n->kind == SN_NODE_MAP ? "{}" : "[]", out);
}

/* `first_inline`: the node starts right after "- " on a line already indented. */
static void write_block(const sn_node *n, int indent, bool first_inline, FILE *out) {
  if (is_inline(n)) {
    write_inline(n, out);
    fputc('\n', out);
    return;
  }
  for (int i = 0; i < n->n; i++) {
    if (i > 0 || !first_inline) fprintf(out, "%*s", indent, "");
    const sn_node *v = n->items[i];
    if (n->kind == SN_NODE_MAP) {
      write_scalar(n->keys[i], out);
      fputc(':', out);
      if (is_inline(v)) {
        fputc(' ', out);
        write_inline(v, out);
        fputc('\n', out);
      } else {
        fputc('\n', out);
        write_block(v, indent + 2, false, out);
      }
    } else {
      fputs("- ", out);
      write_block(v, indent + 2, true, out);
    }
  }
}

void sn_node_write(const sn_node *n, FILE *out) {
  if (n) write_block(n, 0, false, out);
}

void sn_node_write_flow(const sn_node *n, FILE *out) {
  if (!n) return;
  if (n->kind == SN_NODE_SCALAR) {
    /* In flow style ",[]{}" end a plain scalar; such text is a string either way. */
    sn_node q = *n;
    q.quoted = n->quoted || (n->text && strpbrk(n->text, ",[]{}"));
    write_scalar(&q, out);
    return;
  }
  bool map = n->kind == SN_NODE_MAP;
  fputc(map ? '{' : '[', out);
  for (int i = 0; i < n->n; i++) {
    if (i) fputs(", ", out);
    if (map) {
      sn_node_write_flow(n->keys[i], out);
      fputs(": ", out);
    }
    sn_node_write_flow(n->items[i], out);
  }
  fputc(map ? '}' : ']', out);
}

sn_node *sn_node_copy(const sn_node *n) { return n ? copy_node(n) : NULL; }

/* ---------------------------------------------------------------------------
 * --set KEY.PATH=VALUE */

static int height(const sn_node *n) {
  int h = 0;
  for (int i = 0; i < n->n; i++) {
    int c = height(n->items[i]);
    if (c > h) h = c;
  }
  return n->kind == SN_NODE_SCALAR ? 0 : h + 1;
}

static void relocate(sn_node *n) {
  n->loc.file = SET_FILE;
  for (int i = 0; i < n->n; i++) {
    if (n->keys) relocate(n->keys[i]);
    relocate(n->items[i]);
  }
}

static sn_node *set_scalar(const char *text, size_t len, int col) {
  sn_node *k = new_node(SN_NODE_SCALAR, (sn_loc){SET_FILE, 1, col});
  if (k && !(k->text = strndup(text, len))) {
    free(k);
    k = NULL;
  }
  return k;
}

/* A --set key path, split at its dots: segment k is arg[start[k] .. start[k] + len[k]). */
typedef struct set_path {
  const char *arg, *eq;
  int start[MAX_DEPTH], len[MAX_DEPTH], n;
} set_path;

static int split_path(const char *arg, const char *eq, set_path *p, sn_diag *d) {
  p->arg = arg;
  p->eq = eq;
  p->n = 0;
  for (const char *s = arg;;) {
    const char *e = s;
    while (e < eq && *e != '.') e++;
    if (e == s) {
      sn_diag_error(d, (sn_loc){SET_FILE, 1, (int)(s - arg) + 1}, "empty key in '%.*s'",
                    (int)(eq - arg), arg);
      return -1;
    }
    if (p->n == MAX_DEPTH) {
      sn_diag_error(d, (sn_loc){SET_FILE, 1, 1}, "--set path deeper than %d levels", MAX_DEPTH);
      return -1;
    }
    p->start[p->n] = (int)(s - arg);
    p->len[p->n++] = (int)(e - s);
    if (e == eq) return 0;
    s = e + 1;
  }
}

/* One step of the walk at the mapping *cur from segment *i: the longest run of
 * segments that names a key, or a new key of one segment (a mapping on the way, the
 * value at the end). Returns 1 when the value is placed, 0 to go on from the
 * updated *cur and *i, -1 on error (value not taken). */
static int set_in_map(sn_node **cur, int *i, const set_path *p, sn_node *value, sn_diag *d) {
  const char *seg = p->arg + p->start[*i];
  sn_node *m = *cur;
  int slot = -1, j;
  for (j = p->n - 1; j >= *i && slot < 0; j--) {
    size_t klen = (size_t)(p->start[j] + p->len[j] - p->start[*i]);
    for (int k = 0; k < m->n && slot < 0; k++)
      if (strlen(m->keys[k]->text) == klen && memcmp(m->keys[k]->text, seg, klen) == 0) slot = k;
  }
  j++; /* the last segment of the key found */
  if (slot >= 0) {
    if (j == p->n - 1) {
      sn_node_free(m->items[slot]);
      m->items[slot] = value;
      return 1;
    }
    *cur = m->items[slot];
    *i = j + 1;
    return 0;
  }
  sn_loc at = {SET_FILE, 1, p->start[*i] + 1};
  sn_node *key = set_scalar(seg, (size_t)p->len[*i], p->start[*i] + 1);
  sn_node *v = *i == p->n - 1 ? value : new_node(SN_NODE_MAP, at);
  if (!key || !v || map_push(m, key, v)) {
    sn_node_free(key);
    if (v != value) sn_node_free(v);
    sn_diag_error(d, at, "out of memory");
    return -1;
  }
  if (v == value) return 1;
  *cur = v;
  (*i)++;
  return 0;
}

/* The same in the list *cur: segment *i is an item's number. */
static int set_in_seq(sn_node **cur, int *i, const set_path *p, sn_node *value, sn_diag *d) {
  const char *arg = p->arg, *seg = arg + p->start[*i];
  int keylen = (int)(p->eq - arg), before = p->start[*i] ? p->start[*i] - 1 : 0;
  sn_loc at = {SET_FILE, 1, p->start[*i] + 1};
  sn_node *s = *cur;
  char *end;
  errno = 0;
  long idx = strtol(seg, &end, 10);
  if (seg[0] < '0' || seg[0] > '9' || end != seg + p->len[*i] || errno) {
    sn_diag_error(d, at, "cannot set '%.*s': '%.*s' is a list; pick an item by number", keylen,
                  arg, before, arg);
    return -1;
  }
  if (idx >= s->n) {
    sn_diag_error(d, at, "cannot set '%.*s': '%.*s' has %d item%s (numbered from 0)", keylen, arg,
                  before, arg, s->n, s->n == 1 ? "" : "s");
    return -1;
  }
  if (*i == p->n - 1) {
    sn_node_free(s->items[idx]);
    s->items[idx] = value;
    return 1;
  }
  *cur = s->items[idx];
  (*i)++;
  return 0;
}

/* Keys may contain dots (expect's "test.accuracy"), so at each mapping the longest
 * run of segments that names an existing key wins; a new key is one segment. A
 * number after a list picks an item (0-based). Missing mappings are created; a
 * misspelt key is thereby added, and the spec checker reports it as in a file. */
int sn_node_set(sn_node *root, const char *arg, sn_diag *d) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    sn_diag_error(d, (sn_loc){SET_FILE, 1, 1}, "--set expects KEY.PATH=VALUE, got '%s'", arg);
    return -1;
  }
  int vcol = (int)(eq - arg) + 2;
  if (!eq[1]) {
    sn_diag_error(d, (sn_loc){SET_FILE, 1, vcol}, "missing value after '=' in '%s'", arg);
    return -1;
  }
  set_path p;
  if (split_path(arg, eq, &p, d)) return -1;

  sn_node *value =
      parse_buffer((const unsigned char *)eq + 1, strlen(eq + 1), SET_FILE, false, vcol - 1, d);
  if (!value) return -1;
  free(value->owned_name);
  value->owned_name = NULL;
  relocate(value);
  if (p.n + height(value) > MAX_DEPTH) {
    sn_diag_error(d, value->loc, "nesting deeper than %d levels", MAX_DEPTH);
    sn_node_free(value);
    return -1;
  }

  sn_node *cur = root;
  int i = 0, r = 0;
  while (r == 0) {
    if (cur->kind == SN_NODE_MAP) {
      r = set_in_map(&cur, &i, &p, value, d);
    } else if (cur->kind == SN_NODE_SEQ) {
      r = set_in_seq(&cur, &i, &p, value, d);
    } else {
      sn_loc at = {SET_FILE, 1, p.start[i] + 1};
      if (i == 0)
        sn_diag_error(d, at, "cannot set '%.*s': the document is not a mapping", (int)(eq - arg),
                      arg);
      else
        sn_diag_error(d, at, "cannot set '%.*s': '%.*s' is a scalar, not a mapping",
                      (int)(eq - arg), arg, p.start[i] - 1, arg);
      r = -1;
    }
    if (r < 0) sn_node_free(value);
  }
  return r < 0 ? -1 : 0;
}
