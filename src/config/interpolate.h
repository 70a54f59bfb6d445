/*
 * interpolate.h - ${VAR}, ${VAR:-default}, ${VAR:?message} and ${secret:NAME} in YAML
 * values; `$${` is a literal `${`. Keys are never interpolated.
 */
#ifndef SL_CONFIG_INTERPOLATE_H
#define SL_CONFIG_INTERPOLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/load_ctx.h"
#include "config/yaml_doc.h"

typedef struct sl_interp_result {
  char *text; /* NUL-terminated, owned by the store passed in */
  size_t len;
  bool secret; /* a secret's value went into `text` */
} sl_interp_result;

/*
 * Expands `text` (`len` bytes). Variables come from sl__load_getenv(ctx); secrets from
 * ctx->secrets (NULL: `${secret:...}` is refused, as inside the secrets section).
 * True on success, with the result in `out` (allocated from `store`). False with `why`
 * set to a message without a location (empty when the reference is to a secret that
 * failed to load: its own problem says why), e.g. "HOME is not set (write ${HOME:-default}
 * to give a default)"; `why` never holds a variable's or a secret's value.
 */
bool sl__interpolate(const sl_load_ctx *ctx, sl_conf_store *store, const char *text, size_t len,
                     sl_interp_result *out, char *why, size_t why_cap);

/*
 * Expands every scalar value under `node` in place (mapping keys excepted), each node
 * once even when aliases share it. A failure is reported at the value's place and marks
 * the node `bad`. Results are allocated from `store` (the YAML tree's).
 */
void sl__interpolate_tree(const sl_load_ctx *ctx, sl_conf_store *store, sl_ynode *node);

#endif
