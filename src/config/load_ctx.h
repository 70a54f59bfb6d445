/*
 * load_ctx.h - what every step of loading a pipeline file shares: where messages point,
 * where paths resolve, who owns the results and where problems go.
 */
#ifndef SL_CONFIG_LOAD_CTX_H
#define SL_CONFIG_LOAD_CTX_H

#include <stdlib.h>

#include "config/problems.h"
#include "config/store.h"
#include "sluice/pipeline.h"

typedef struct sl_secrets sl_secrets;

typedef struct sl_load_ctx {
  const char *file;            /* the file as given: messages start with it */
  const char *dir;             /* absolute: relative paths resolve against it */
  sl_conf_store *store;             /* the spec's storage: results live here */
  sl_problems *problems;       /* every problem found */
  const sl_load_options *opts; /* may be NULL */
  const sl_secrets *secrets;   /* NULL until the secrets section is loaded */
} sl_load_ctx;

/* Environment lookup through the options' getenv, else the process environment. */
static inline const char *sl__load_getenv(const sl_load_ctx *ctx, const char *name) {
  if (ctx->opts && ctx->opts->getenv) return ctx->opts->getenv(ctx->opts->getenv_user, name);
  return getenv(name);
}

#endif
