/*
 * yaml_doc.h - a pipeline file as a small tree of scalars, mappings and sequences, each
 * knowing its 1-based line and column, built from libfyaml's parse events.
 *
 * Aliases are resolved (an alias shares the anchored node), `<<` merge keys are applied,
 * and duplicate keys are reported. Every problem goes to an sl_problems list, so the
 * loader can keep going and report everything at once.
 */
#ifndef SL_CONFIG_YAML_DOC_H
#define SL_CONFIG_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "config/problems.h"
#include "config/store.h"
#include "sluice/status.h"

typedef enum sl_ytype { SL_YAML_SCALAR, SL_YAML_MAP, SL_YAML_SEQ } sl_ytype;

typedef struct sl_ynode sl_ynode;

typedef struct sl_ypair {
  sl_ynode *key; /* always a scalar */
  sl_ynode *value;
} sl_ypair;

struct sl_ynode {
  sl_ytype type;
  int line, col; /* 1-based */

  /* Scalars: the text after YAML escapes (and, once interpolate.c ran, after ${...}). */
  char *text; /* NUL-terminated; may also hold NULs inside `len` */
  size_t len;
  bool quoted;       /* quoted, block or interpolated: never null, never a keyword */
  bool secret;       /* interpolation put a secret's value in it: never quote it */
  bool bad;          /* a problem with it was already reported: do not report more */
  bool interpolated; /* aliases share nodes: interpolate each one once */

  /* Mappings use `pairs`, sequences `items`; `count` entries either way. */
  sl_ypair *pairs;
  sl_ynode **items;
  size_t count;
};

typedef struct sl_ydoc {
  sl_conf_store *store; /* owns every node and string */
  sl_ynode *root;  /* NULL when the file holds no document */
} sl_ydoc;

/*
 * Parses `text`. SL_OK: doc->root is set (or NULL for an empty file), though `problems`
 * may have gained non-fatal ones (duplicate keys, unknown aliases). SL_CONFIG: a syntax
 * error, added to `problems` as "file:line:col: <libfyaml's message>"; doc->root is NULL.
 * Either way the caller frees the tree with sl__ydoc_destroy.
 */
sl_status sl__ydoc_parse(const char *text, size_t len, sl_ydoc *doc, sl_problems *problems);

void sl__ydoc_destroy(sl_ydoc *doc);

/* A plain `~`, `null` or empty scalar: YAML's "nothing". */
bool sl__ynode_is_null(const sl_ynode *node);

/* The pair whose key is `key` in mapping `map`; NULL when absent (or `map` is not a map). */
const sl_ypair *sl__ymap_find(const sl_ynode *map, const char *key);

/* "a mapping", "a list", "a text value", "nothing": what a node is, for messages. */
const char *sl__ynode_kind(const sl_ynode *node);

#endif
