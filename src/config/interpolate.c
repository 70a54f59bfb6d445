/*
 * interpolate.c - expands ${...} references in pipeline values.
 *
 *   ${VAR}            the variable; unset is an error
 *   ${VAR:-default}   the default when VAR is unset or empty (the default may itself
 *                     hold references: ${PORT:-${DEFAULT_PORT}})
 *   ${VAR:?message}   an error "VAR: message" when VAR is unset or empty
 *   ${secret:NAME}    a secret from the top-level `secrets:` section
 *   $${               a literal "${"
 */
#include "config/interpolate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/secrets.h"
#include "config/suggest.h"

enum { MAX_NESTING = 8, MAX_NAME = 256 };

/* A growing output buffer (malloc'ed; copied into the store at the end). */
typedef struct out_buf {
  char *bytes;
  size_t len, cap;
} out_buf;

static void put(out_buf *out, const char *bytes, size_t len) {
  if (out->len + len + 1 > out->cap) {
    size_t cap = out->cap ? out->cap : 64;
    while (cap < out->len + len + 1) cap *= 2;
    out->bytes = realloc(out->bytes, cap);
    if (!out->bytes) abort();
    out->cap = cap;
  }
  if (len) memcpy(out->bytes + out->len, bytes, len);
  out->len += len;
  out->bytes[out->len] = '\0';
}

static bool expand(const sl_load_ctx *ctx, const char *text, size_t len, int nesting, out_buf *out,
                   bool *secret, char *why, size_t why_cap);

static bool is_name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Where the `}` closing the reference that starts at text[start] ("${") is; len when
 * there is none. Nested "${" open a level; "$${" is an escape, not a level. */
static size_t find_close(const char *text, size_t len, size_t start) {
  int depth = 0;
  for (size_t i = start; i < len; i++) {
    if (text[i] == '$' && i + 2 < len && text[i + 1] == '$' && text[i + 2] == '{') {
      i += 2;
    } else if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
      depth++;
      i++;
    } else if (text[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return len;
}

static bool expand_secret(const sl_load_ctx *ctx, const char *name, out_buf *out, bool *secret,
                          char *why, size_t why_cap) {
  if (!ctx->secrets) {
    snprintf(why, why_cap, "${secret:%s}: secrets cannot be used inside the secrets section", name);
    return false;
  }
  const char *value;
  bool declared = sl__secrets_find(ctx->secrets, name, &value);
  if (declared && !value) {
    why[0] = '\0'; /* the secret's own problem already says why */
    return false;
  }
  if (!declared) {
    char hint[600];
    if (ctx->secrets->count)
      sl__hint(hint, sizeof hint, name, (const char *const *)ctx->secrets->names,
               ctx->secrets->count, "declared secrets");
    else
      snprintf(hint, sizeof hint,
               " (no secrets are declared: add a top-level `secrets:` "
               "section, e.g. %s: {env: VARIABLE})",
               name);
    snprintf(why, why_cap, "unknown secret '%s'%s", name, hint);
    return false;
  }
  put(out, value, strlen(value));
  *secret = true;
  return true;
}

/* Evaluates the inside of one ${...}. */
static bool expand_reference(const sl_load_ctx *ctx, const char *expr, size_t len, int nesting,
                             out_buf *out, bool *secret, char *why, size_t why_cap) {
  char name[MAX_NAME];
  if (len > 7 && memcmp(expr, "secret:", 7) == 0 && expr[7] != '-' && expr[7] != '?') {
    if (len - 7 >= sizeof name) {
      snprintf(why, why_cap, "${secret:...}: the name is too long");
      return false;
    }
    memcpy(name, expr + 7, len - 7);
    name[len - 7] = '\0';
    return expand_secret(ctx, name, out, secret, why, why_cap);
  }
  size_t n = 0;
  if (len && is_name_start(expr[0]))
    while (n < len && is_name_char(expr[n])) n++;
  const char *rest = expr + n;
  size_t rest_len = len - n;
  bool has_op = rest_len >= 2 && rest[0] == ':' && (rest[1] == '-' || rest[1] == '?');
  if (n == 0 || n >= sizeof name || (rest_len && !has_op)) {
    snprintf(why, why_cap,
             "'${%.*s}' is not a valid reference: write ${VAR}, ${VAR:-default}, "
             "${VAR:?message} or ${secret:NAME} (and $${ for a literal ${)",
             (int)(len > 60 ? 60 : len), expr);
    return false;
  }
  memcpy(name, expr, n);
  name[n] = '\0';
  const char *value = sl__load_getenv(ctx, name);
  if (!has_op) {
    if (!value) {
      snprintf(why, why_cap, "%s is not set (write ${%s:-default} to give a default)", name, name);
      return false;
    }
    put(out, value, strlen(value));
    return true;
  }
  if (value && value[0]) {
    put(out, value, strlen(value));
    return true;
  }
  const char *arg = rest + 2;
  size_t arg_len = rest_len - 2;
  if (rest[1] == '-') return expand(ctx, arg, arg_len, nesting + 1, out, secret, why, why_cap);
  if (arg_len)
    snprintf(why, why_cap, "%s: %.*s", name, (int)arg_len, arg);
  else
    snprintf(why, why_cap, "%s: must be set and not empty", name);
  return false;
}

static bool expand(const sl_load_ctx *ctx, const char *text, size_t len, int nesting, out_buf *out,
                   bool *secret, char *why, size_t why_cap) {
  if (nesting > MAX_NESTING) {
    snprintf(why, why_cap, "references nested more than %d deep", MAX_NESTING);
    return false;
  }
  size_t i = 0;
  while (i < len) {
    const char *dollar = memchr(text + i, '$', len - i);
    size_t stop = dollar ? (size_t)(dollar - text) : len;
    put(out, text + i, stop - i);
    i = stop;
    if (i >= len) break;
    if (i + 2 < len && text[i + 1] == '$' && text[i + 2] == '{') { /* $${ */
      put(out, "${", 2);
      i += 3;
    } else if (i + 1 < len && text[i + 1] == '{') {
      size_t close = find_close(text, len, i);
      if (close == len) {
        snprintf(why, why_cap, "'${' without a closing '}' (write $${ for a literal ${)");
        return false;
      }
      if (!expand_reference(ctx, text + i + 2, close - i - 2, nesting, out, secret, why, why_cap))
        return false;
      i = close + 1;
    } else {
      put(out, "$", 1);
      i++;
    }
  }
  return true;
}

bool sl__interpolate(const sl_load_ctx *ctx, sl_conf_store *store, const char *text, size_t len,
                     sl_interp_result *out, char *why, size_t why_cap) {
  out_buf buf = {0};
  bool secret = false;
  why[0] = '\0';
  bool ok = expand(ctx, text, len, 0, &buf, &secret, why, why_cap);
  if (ok) {
    out->text = sl__store_strndup(store, buf.bytes ? buf.bytes : "", buf.len);
    out->len = buf.len;
    out->secret = secret;
  }
  if (buf.bytes) memset(buf.bytes, 0, buf.cap); /* it may hold a secret */
  free(buf.bytes);
  return ok;
}

void sl__interpolate_tree(const sl_load_ctx *ctx, sl_conf_store *store, sl_ynode *node) {
  if (node->interpolated) return;
  node->interpolated = true;
  if (node->type == SL_YAML_MAP) {
    for (size_t i = 0; i < node->count; i++) sl__interpolate_tree(ctx, store, node->pairs[i].value);
    return;
  }
  if (node->type == SL_YAML_SEQ) {
    for (size_t i = 0; i < node->count; i++) sl__interpolate_tree(ctx, store, node->items[i]);
    return;
  }
  if (node->bad || !memchr(node->text, '$', node->len)) return;
  sl_interp_result result;
  char why[512];
  if (!sl__interpolate(ctx, store, node->text, node->len, &result, why, sizeof why)) {
    if (why[0]) sl__problems_add(ctx->problems, node->line, node->col, "%s", why);
    node->bad = true;
    return;
  }
  if (result.len != node->len || memcmp(result.text, node->text, node->len) != 0)
    node->quoted = true; /* the result is text, never YAML's null */
  node->text = result.text;
  node->len = result.len;
  node->secret = result.secret;
}
