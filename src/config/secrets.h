/*
 * secrets.h - the top-level `secrets:` section, and masking secret values in text.
 *
 *   secrets:
 *     API_TOKEN: {env: API_TOKEN}        # from the environment
 *     DB_PASSWORD: {file: db.password}   # from a file (relative to the pipeline file's
 *                                        # folder); one trailing newline is trimmed
 *
 * Values are referenced as ${secret:NAME} and never appear in any message.
 */
#ifndef SL_CONFIG_SECRETS_H
#define SL_CONFIG_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/load_ctx.h"
#include "config/yaml_doc.h"

struct sl_secrets {
  char **names;  /* owned by the spec's store */
  char **values; /* same order as names */
  size_t count;
};

/* Reads every declared secret (problems go to ctx->problems); `section` may be NULL.
 * The results live in ctx->store. */
void sl__secrets_load(const sl_load_ctx *ctx, const sl_ynode *section, sl_secrets *out);

/* False when no secret is called `name`. True otherwise, with *value its value, or NULL
 * when it failed to load (a problem already says why). */
bool sl__secrets_find(const sl_secrets *secrets, const char *name, const char **value);

/*
 * Replaces every occurrence of each of `values` in `text` (NUL-terminated, capacity
 * `cap`) with "***", the longest value first where several match at one place. Empty
 * values are ignored. If the result does not fit it is cut at cap - 1.
 */
void sl__redact(char *const *values, size_t count, char *text, size_t cap);

#endif
