/*
 * secrets.c - loads the `secrets:` section (secrets.h) and masks secret values.
 */
#include "config/secrets.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/suggest.h"
#include "core/files.h"

enum { MAX_SECRET_FILE = 64 * 1024 };

static const char *const source_keys[] = {"env", "file"};

static bool valid_name(const char *name) {
  if (!name[0]) return false;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return false;
  return true;
}

/* Reads a secret file into the store; NULL with `why` set on failure. */
static char *read_secret_file(const sl_load_ctx *ctx, const char *path, char *why, size_t cap) {
  char *full = path[0] == '/' ? sl__store_strdup(ctx->store, path)
                              : sl__store_printf(ctx->store, "%s/%s", ctx->dir, path);
  uint8_t *data = NULL;
  size_t size = 0;
  sl_error err;
  char *value = NULL;
  if (sl__read_file(full, &data, &size, &err) != SL_OK) {
    snprintf(why, cap, "cannot read %.*s", (int)(cap > 16 ? cap - 16 : 0), err.message);
  } else if (size > MAX_SECRET_FILE) {
    snprintf(why, cap, "%s is larger than 64 KiB; a secret file holds only the secret", full);
  } else if (memchr(data, '\0', size)) {
    snprintf(why, cap, "%s holds a NUL byte; a secret must be text", full);
  } else {
    if (size && data[size - 1] == '\n') size--;
    if (size && data[size - 1] == '\r') size--;
    value = sl__store_alloc(ctx->store, size + 1);
    memcpy(value, data, size);
    value[size] = '\0';
  }
  free(data);
  return value;
}

/* One `NAME: {env: VAR}` or `NAME: {file: PATH}` entry; NULL after reporting a problem. */
static char *load_one(const sl_load_ctx *ctx, const char *name, const sl_ynode *entry) {
  char hint[256], why[1024];
  if (entry->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, entry->line, entry->col,
                     "secret '%s': expected {env: VARIABLE} or {file: PATH}, got %s", name,
                     sl__ynode_kind(entry));
    return NULL;
  }
  const sl_ynode *source = NULL, *source_key = NULL;
  bool ok = true;
  for (size_t i = 0; i < entry->count; i++) {
    const sl_ynode *k = entry->pairs[i].key;
    if (strcmp(k->text, "env") != 0 && strcmp(k->text, "file") != 0) {
      char quoted[96];
      sl__problems_add(ctx->problems, k->line, k->col, "unknown key '%s' in secret '%s'%s",
                       sl__quote(quoted, sizeof quoted, k->text, k->len), name,
                       sl__hint(hint, sizeof hint, k->text, source_keys, 2, "allowed"));
      ok = false;
    } else if (source_key) {
      sl__problems_add(ctx->problems, k->line, k->col,
                       "secret '%s': give either env or file, not both", name);
      ok = false;
    } else {
      source_key = k;
      source = entry->pairs[i].value;
    }
  }
  if (!ok) return NULL;
  if (!source) {
    sl__problems_add(ctx->problems, entry->line, entry->col,
                     "secret '%s': say where it comes from: {env: VARIABLE} or {file: PATH}", name);
    return NULL;
  }
  if (source->bad) return NULL;
  if (source->type != SL_YAML_SCALAR || sl__ynode_is_null(source) || source->len == 0) {
    sl__problems_add(ctx->problems, source->line, source->col,
                     "secret '%s': %s: expected %s, got %s", name, source_key->text,
                     source_key->text[0] == 'e' ? "an environment variable's name" : "a path",
                     sl__ynode_kind(source));
    return NULL;
  }
  if (source_key->text[0] == 'e') {
    const char *value = sl__load_getenv(ctx, source->text);
    if (!value) {
      sl__problems_add(ctx->problems, source->line, source->col,
                       "secret '%s': environment variable %s is not set", name, source->text);
      return NULL;
    }
    return sl__store_strdup(ctx->store, value);
  }
  char *value = read_secret_file(ctx, source->text, why, sizeof why);
  if (!value)
    sl__problems_add(ctx->problems, source->line, source->col, "secret '%s': %s", name, why);
  return value;
}

void sl__secrets_load(const sl_load_ctx *ctx, const sl_ynode *section, sl_secrets *out) {
  memset(out, 0, sizeof *out);
  if (!section || sl__ynode_is_null(section) || section->bad) return;
  if (section->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, section->line, section->col,
                     "secrets: expected a mapping of NAME: {env: VARIABLE} or NAME: {file: PATH}, "
                     "got %s",
                     sl__ynode_kind(section));
    return;
  }
  out->names = sl__store_array(ctx->store, section->count, sizeof *out->names);
  out->values = sl__store_array(ctx->store, section->count, sizeof *out->values);
  for (size_t i = 0; i < section->count; i++) {
    const sl_ynode *key = section->pairs[i].key;
    if (!valid_name(key->text)) {
      char quoted[96];
      sl__problems_add(ctx->problems, key->line, key->col,
                       "secret name '%s': use letters, digits, '_', '-' and '.'",
                       sl__quote(quoted, sizeof quoted, key->text, key->len));
      continue;
    }
    char *value = load_one(ctx, key->text, section->pairs[i].value);
    /* A secret that failed to load is still declared: references to it are not
     * "unknown"; they fail quietly, the secret's own problem says why. */
    out->names[out->count] = sl__store_strdup(ctx->store, key->text);
    out->values[out->count] = value;
    out->count++;
  }
}

bool sl__secrets_find(const sl_secrets *secrets, const char *name, const char **value) {
  for (size_t i = 0; i < secrets->count; i++) {
    if (strcmp(secrets->names[i], name) == 0) {
      *value = secrets->values[i];
      return true;
    }
  }
  *value = NULL;
  return false;
}

void sl__redact(char *const *values, size_t count, char *text, size_t cap) {
  if (!count || !cap) return;
  size_t len = strlen(text);
  char *result = malloc(cap);
  if (!result) abort();
  size_t used = 0;
  for (size_t i = 0; i < len && used + 1 < cap;) {
    size_t best = 0;
    for (size_t s = 0; s < count; s++) {
      size_t n = values[s] ? strlen(values[s]) : 0;
      if (n > best && n <= len - i && memcmp(text + i, values[s], n) == 0) best = n;
    }
    if (best) {
      for (size_t k = 0; k < 3 && used + 1 < cap; k++) result[used++] = '*';
      i += best;
    } else {
      result[used++] = text[i++];
    }
  }
  result[used] = '\0';
  memcpy(text, result, used + 1);
  free(result);
}
