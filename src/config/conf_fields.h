/*
 * conf_fields.h - fills a settings struct from a YAML mapping through an sl_conf_field
 * table (config.h): types checked, defaults applied, unknown and missing keys reported.
 */
#ifndef SL_CONFIG_CONF_FIELDS_H
#define SL_CONFIG_CONF_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/load_ctx.h"
#include "config/yaml_doc.h"
#include "sluice/config.h"

/* Scalar parsers, true when `text` is valid. */
bool sl__conf_parse_int(const char *text, int64_t *out);      /* "-12", "42" */
bool sl__conf_parse_size(const char *text, uint64_t *bytes);  /* "4096", "64MiB", "10MB" */
bool sl__conf_parse_duration(const char *text, uint64_t *ms); /* "250", "250ms", "1h30m" */
bool sl__conf_parse_bool(const char *text, bool *out);        /* true/false only */

/* Where a table is being applied, for messages. */
typedef struct sl_conf_scope {
  const char *what;            /* "node 'in'"; NULL at the top level */
  const char *const *own_keys; /* keys the caller reads itself (id, type...): not unknown */
  size_t own_count;
  const char *const *quiet_keys; /* keys to ignore without offering them in hints */
  size_t quiet_count;
} sl_conf_scope;

/*
 * Fills `out` (zeroed by the caller) from `map` by `fields`. Keys in neither `fields` nor
 * scope->own_keys are unknown (with did-you-mean); a missing SL_CONF_REQUIRED key is
 * reported at the mapping. Strings and maps are allocated from ctx->store.
 */
void sl__conf_fill(const sl_load_ctx *ctx, const sl_conf_field *fields, const sl_ynode *map,
                   const sl_conf_scope *scope, void *out);

/*
 * Reports that `value` (of key `key`) is not `expected`: "key: expected <expected>, got
 * 'value'", or "(value hidden: it contains a secret)" instead of quoting a secret.
 */
void sl__conf_report_value(const sl_load_ctx *ctx, const sl_ynode *value, const char *key,
                           const char *expected);

/* Reads a wasm node's `capabilities:` (capabilities.c); problems go to ctx->problems. */
struct sl_capabilities;
void sl__capabilities_fill(const sl_load_ctx *ctx, const sl_ynode *value,
                           struct sl_capabilities *caps);

#endif
