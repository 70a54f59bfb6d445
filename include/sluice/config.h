/*
 * config.h - typed configuration tables.
 *
 * Every node type (connector or processor) declares its settings as one table of
 * sl_conf_field. The same table drives YAML validation (unknown keys, wrong types,
 * missing required keys), defaults, `--help` text and the reference docs. A table fills
 * a plain C struct through `offsetof`, so a connector reads its settings as fields.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sl_conf_type {
  SL_CONF_STRING,   /* char *                                   "text"              */
  SL_CONF_PATH,     /* char *, resolved against the pipeline file's folder           */
  SL_CONF_INT,      /* int64_t                                  42                  */
  SL_CONF_SIZE,     /* uint64_t bytes                           1048576, "64MiB"    */
  SL_CONF_DURATION, /* uint64_t milliseconds                    250, "250ms", "5s"  */
  SL_CONF_BOOL,     /* bool                                     true / false        */
  SL_CONF_ENUM,     /* char *, one of `choices`                                      */
  SL_CONF_MAP,      /* sl_conf_map: a mapping of scalars, kept in order              */
  SL_CONF_LIST,     /* sl_conf_list: [a, b] or "a, b" (a comma-separated text)       */
  SL_CONF_CAPABILITIES, /* sl_capabilities (capabilities.h): a wasm node's grants   */
} sl_conf_type;

/* An ordered string-to-string map (`config:`, `headers:`...). Owned by the spec. */
typedef struct sl_conf_map {
  char **keys;
  char **values;
  size_t count;
} sl_conf_map;

enum {
  SL_CONF_REQUIRED = 1u << 0, /* no default: the key must be present */
};

typedef struct sl_conf_field {
  const char *name; /* the YAML key; NULL ends a table */
  sl_conf_type type;
  unsigned flags;             /* SL_CONF_REQUIRED ... */
  const char *default_value;  /* parsed like YAML text; NULL: zero / NULL / empty map */
  size_t offset;              /* offsetof(config struct, field) */
  const char *help;           /* one sentence, for --help and the reference page */
  const char *const *choices; /* SL_CONF_ENUM: NULL-terminated list */
} sl_conf_field;

/* A list of non-empty texts (`topics: [a, b]`). Owned by the spec. */
typedef struct sl_conf_list {
  char **items;
  size_t count;
} sl_conf_list;

/* Looks up `key` in `map`; NULL when absent. */
const char *sl_conf_map_get(const sl_conf_map *map, const char *key);

#endif
