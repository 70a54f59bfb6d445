/*
 * conf_fields.c - the typed settings tables (config.h) applied to YAML mappings.
 *
 * Sections: scalar parsers; one value by its field type; a whole table; sl_conf_map.
 */
#include "config/conf_fields.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/suggest.h"

/* --- scalar parsers ---------------------------------------------------------------- */

static bool parse_digits(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t n = 0;
  if (*s < '0' || *s > '9') return false;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned digit = (unsigned)(*s - '0');
    if (n > (UINT64_MAX - digit) / 10) return false;
    n = n * 10 + digit;
  }
  *p = s;
  *out = n;
  return true;
}

bool sl__conf_parse_int(const char *text, int64_t *out) {
  const char *p = text;
  bool negative = *p == '-';
  if (*p == '-' || *p == '+') p++;
  uint64_t n;
  if (!parse_digits(&p, &n) || *p) return false;
  if (negative ? n > (uint64_t)INT64_MAX + 1 : n > (uint64_t)INT64_MAX) return false;
  *out = negative ? (int64_t)(0 - n) : (int64_t)n;
  return true;
}

bool sl__conf_parse_size(const char *text, uint64_t *bytes) {
  static const struct {
    const char *unit;
    uint64_t factor;
  } units[] = {
      {"", 1},
      {"B", 1},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
      {"TB", 1000ull * 1000 * 1000 * 1000},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
  };
  const char *p = text;
  uint64_t n;
  if (!parse_digits(&p, &n)) return false;
  if (*p == ' ' && p[1]) p++; /* "64 MiB" */
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(p, units[i].unit) != 0) continue;
    if (n > UINT64_MAX / units[i].factor) return false;
    *bytes = n * units[i].factor;
    return true;
  }
  return false;
}

bool sl__conf_parse_duration(const char *text, uint64_t *ms) {
  static const struct {
    const char *unit;
    uint64_t factor;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
  const char *p = text;
  uint64_t total = 0, n;
  if (!parse_digits(&p, &n)) return false;
  if (!*p) { /* a plain number is milliseconds */
    *ms = n;
    return true;
  }
  for (;;) { /* "250ms", "5s", "1h30m" */
    size_t best = 0, which = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
      size_t len = strlen(units[i].unit);
      if (strncmp(p, units[i].unit, len) == 0 && len > best) {
        best = len;
        which = i;
      }
    }
    if (!best) return false;
    if (n > UINT64_MAX / units[which].factor) return false;
    n *= units[which].factor;
    if (total > UINT64_MAX - n) return false;
    total += n;
    p += best;
    if (!*p) break;
    if (!parse_digits(&p, &n)) return false;
  }
  *ms = total;
  return true;
}

bool sl__conf_parse_bool(const char *text, bool *out) {
  if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE")) {
    *out = true;
    return true;
  }
  if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
    *out = false;
    return true;
  }
  return false;
}

/* --- one value ------------------------------------------------------------------- */

void sl__conf_report_value(const sl_load_ctx *ctx, const sl_ynode *value, const char *key,
                           const char *expected) {
  if (value->bad) return;
  char quoted[96];
  if (value->type != SL_YAML_SCALAR || sl__ynode_is_null(value))
    sl__problems_add(ctx->problems, value->line, value->col, "%s: expected %s, got %s", key,
                     expected, sl__ynode_kind(value));
  else if (value->secret)
    sl__problems_add(ctx->problems, value->line, value->col,
                     "%s: expected %s (value hidden: it contains a secret)", key, expected);
  else
    sl__problems_add(ctx->problems, value->line, value->col, "%s: expected %s, got '%s'", key,
                     expected, sl__quote(quoted, sizeof quoted, value->text, value->len));
}

static char *resolve_path(const sl_load_ctx *ctx, const char *path) {
  if (path[0] == '/') return sl__store_strdup(ctx->store, path);
  while (path[0] == '.' && path[1] == '/') path += 2;
  if (!path[0] || strcmp(path, ".") == 0) return sl__store_strdup(ctx->store, ctx->dir);
  return sl__store_printf(ctx->store, "%s/%s", ctx->dir, path);
}

static bool fill_map(const sl_load_ctx *ctx, const sl_conf_field *field, const sl_ynode *value,
                     sl_conf_map *map) {
  if (value->type != SL_YAML_MAP) {
    sl__conf_report_value(ctx, value, field->name, "a mapping of keys to text values");
    return false;
  }
  map->keys = sl__store_array(ctx->store, value->count, sizeof *map->keys);
  map->values = sl__store_array(ctx->store, value->count, sizeof *map->values);
  map->count = 0;
  bool ok = true;
  for (size_t i = 0; i < value->count; i++) {
    const sl_ynode *k = value->pairs[i].key, *v = value->pairs[i].value;
    if (v->type != SL_YAML_SCALAR) {
      char where[300];
      snprintf(where, sizeof where, "%s: %s", field->name, k->text);
      sl__conf_report_value(ctx, v, where, "a text value");
      ok = false;
      continue;
    }
    if (v->bad) {
      ok = false;
      continue;
    }
    map->keys[map->count] = sl__store_strndup(ctx->store, k->text, k->len);
    map->values[map->count] = sl__ynode_is_null(v) ? sl__store_strdup(ctx->store, "")
                                                   : sl__store_strndup(ctx->store, v->text, v->len);
    map->count++;
  }
  return ok;
}

/* Appends `text` (trimmed of spaces) unless it is empty; false for an empty item. */
static bool list_add(const sl_load_ctx *ctx, sl_conf_list *list, const char *text, size_t len) {
  while (len && (*text == ' ' || *text == '\t')) text++, len--;
  while (len && (text[len - 1] == ' ' || text[len - 1] == '\t')) len--;
  if (!len) return false;
  list->items[list->count++] = sl__store_strndup(ctx->store, text, len);
  return true;
}

/* A YAML sequence of scalars, or one scalar holding comma-separated items. */
static bool fill_list(const sl_load_ctx *ctx, const sl_conf_field *field, const sl_ynode *value,
                      sl_conf_list *list) {
  const char *expected = "a list of texts, e.g. [a, b] or \"a, b\"";
  list->count = 0;
  if (value->type == SL_YAML_SCALAR && !sl__ynode_is_null(value)) {
    size_t commas = 0;
    for (size_t i = 0; i < value->len; i++) commas += value->text[i] == ',';
    list->items = sl__store_array(ctx->store, commas + 1, sizeof *list->items);
    const char *item = value->text, *end = value->text + value->len;
    for (const char *p = item; p <= end; p++) {
      if (p < end && *p != ',') continue;
      if (!list_add(ctx, list, item, (size_t)(p - item))) {
        sl__conf_report_value(ctx, value, field->name, expected);
        return false;
      }
      item = p + 1;
    }
    return true;
  }
  if (value->type != SL_YAML_SEQ) {
    sl__conf_report_value(ctx, value, field->name, expected);
    return false;
  }
  list->items = sl__store_array(ctx->store, value->count, sizeof *list->items);
  bool ok = true;
  for (size_t i = 0; i < value->count; i++) {
    const sl_ynode *item = value->items[i];
    if (item->bad) {
      ok = false;
    } else if (item->type != SL_YAML_SCALAR || sl__ynode_is_null(item) ||
               strlen(item->text) != item->len || !list_add(ctx, list, item->text, item->len)) {
      char where[300];
      snprintf(where, sizeof where, "%s[%zu]", field->name, i);
      sl__conf_report_value(ctx, item, where, "a non-empty text");
      ok = false;
    }
  }
  return ok;
}

static const char *expected_for(const sl_conf_field *field, char *buf, size_t cap) {
  switch (field->type) {
  case SL_CONF_STRING:
    return "a text value";
  case SL_CONF_PATH:
    return "a path";
  case SL_CONF_INT:
    return "an integer";
  case SL_CONF_SIZE:
    return "a size like 1048576, 512KiB, 64MiB or 1GiB";
  case SL_CONF_DURATION:
    return "a duration like 250ms, 5s, 2m or 1h (a plain number is ms)";
  case SL_CONF_BOOL:
    return "true or false";
  case SL_CONF_MAP:
    return "a mapping of keys to text values";
  case SL_CONF_LIST:
    return "a list of texts";
  case SL_CONF_CAPABILITIES:
    return "a mapping of capabilities (docs/capabilities/)";
  case SL_CONF_ENUM: {
    char list[400];
    size_t n = 0;
    while (field->choices && field->choices[n]) n++;
    snprintf(buf, cap, "one of %s", sl__join(list, sizeof list, field->choices, n));
    return buf;
  }
  }
  return "a valid value";
}

/* Parses `value` for `field` into out + field->offset; false after reporting. */
static bool fill_value(const sl_load_ctx *ctx, const sl_conf_field *field, const sl_ynode *value,
                       void *out) {
  void *slot = (char *)out + field->offset;
  if (value->bad) return false;
  if (field->type == SL_CONF_MAP) return fill_map(ctx, field, value, slot);
  if (field->type == SL_CONF_LIST) return fill_list(ctx, field, value, slot);
  if (field->type == SL_CONF_CAPABILITIES) {
    sl__capabilities_fill(ctx, value, slot);
    return true;
  }
  char expected[512];
  if (value->type != SL_YAML_SCALAR || sl__ynode_is_null(value)) {
    sl__conf_report_value(ctx, value, field->name, expected_for(field, expected, sizeof expected));
    return false;
  }
  const char *text = value->text;
  bool ok = strlen(text) == value->len; /* no NUL inside */
  switch (field->type) {
  case SL_CONF_STRING:
    if (ok) *(char **)slot = sl__store_strdup(ctx->store, text);
    break;
  case SL_CONF_PATH:
    ok = ok && text[0];
    if (ok) *(char **)slot = resolve_path(ctx, text);
    break;
  case SL_CONF_INT:
    ok = ok && sl__conf_parse_int(text, slot);
    break;
  case SL_CONF_SIZE:
    ok = ok && sl__conf_parse_size(text, slot);
    break;
  case SL_CONF_DURATION:
    ok = ok && sl__conf_parse_duration(text, slot);
    break;
  case SL_CONF_BOOL:
    ok = ok && sl__conf_parse_bool(text, slot);
    break;
  case SL_CONF_ENUM:
    ok = false;
    for (size_t i = 0; field->choices && field->choices[i] && !ok; i++)
      ok = strcmp(text, field->choices[i]) == 0;
    if (ok) {
      *(char **)slot = sl__store_strdup(ctx->store, text);
    } else if (!value->secret) {
      size_t n = 0;
      while (field->choices && field->choices[n]) n++;
      const char *close = sl__suggest(text, field->choices, n);
      char quoted[96];
      sl__problems_add(ctx->problems, value->line, value->col, "%s: expected %s, got '%s'%s%s%s",
                       field->name, expected_for(field, expected, sizeof expected),
                       sl__quote(quoted, sizeof quoted, text, value->len),
                       close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
      return false;
    }
    break;
  case SL_CONF_MAP:
  case SL_CONF_LIST:
  case SL_CONF_CAPABILITIES:
    break;
  }
  if (!ok)
    sl__conf_report_value(ctx, value, field->name, expected_for(field, expected, sizeof expected));
  return ok;
}

/* --- a whole table --------------------------------------------------------------- */

static void fill_default(const sl_load_ctx *ctx, const sl_conf_field *field, const sl_ynode *map,
                         void *out) {
  if (!field->default_value) return; /* zero, NULL or the empty map: out is zeroed */
  sl_ynode value = {.type = SL_YAML_SCALAR,
                    .line = map->line,
                    .col = map->col,
                    .text = (char *)field->default_value,
                    .len = strlen(field->default_value),
                    .quoted = true};
  if (field->type == SL_CONF_MAP) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "%s: a map setting cannot have a default text (a bug in sluice)", field->name);
    return;
  }
  if (!fill_value(ctx, field, &value, out))
    sl__problems_add(ctx->problems, map->line, map->col,
                     "%s: the built-in default '%s' is invalid (a bug in sluice)", field->name,
                     field->default_value);
}

static bool is_own_key(const sl_conf_scope *scope, const char *key) {
  for (size_t i = 0; i < scope->own_count; i++)
    if (strcmp(scope->own_keys[i], key) == 0) return true;
  for (size_t i = 0; i < scope->quiet_count; i++)
    if (strcmp(scope->quiet_keys[i], key) == 0) return true;
  return false;
}

static void report_unknown_key(const sl_load_ctx *ctx, const sl_conf_field *fields,
                               const sl_conf_scope *scope, const sl_ynode *key) {
  size_t n = 0;
  while (fields[n].name) n++;
  const char **names = malloc((n + scope->own_count + 1) * sizeof *names);
  if (!names) abort();
  size_t count = 0;
  for (size_t i = 0; i < scope->own_count; i++) names[count++] = scope->own_keys[i];
  for (size_t i = 0; i < n; i++) names[count++] = fields[i].name;
  char hint[700], quoted[96];
  sl__hint(hint, sizeof hint, key->text, names, count, "allowed");
  sl__problems_add(ctx->problems, key->line, key->col, "unknown key '%s'%s%s%s",
                   sl__quote(quoted, sizeof quoted, key->text, key->len), scope->what ? " in " : "",
                   scope->what ? scope->what : "", hint);
  free(names);
}

void sl__conf_fill(const sl_load_ctx *ctx, const sl_conf_field *fields, const sl_ynode *map,
                   const sl_conf_scope *scope, void *out) {
  for (size_t i = 0; i < map->count; i++) {
    const sl_ynode *key = map->pairs[i].key;
    if (is_own_key(scope, key->text)) continue;
    bool known = false;
    for (size_t f = 0; fields[f].name && !known; f++)
      known = strcmp(fields[f].name, key->text) == 0;
    if (!known) report_unknown_key(ctx, fields, scope, key);
  }
  for (size_t f = 0; fields[f].name; f++) {
    const sl_conf_field *field = &fields[f];
    const sl_ypair *pair = sl__ymap_find(map, field->name);
    /* `key:` with nothing after it reads as not set, so the default applies. */
    bool absent = !pair || (sl__ynode_is_null(pair->value) && !(field->flags & SL_CONF_REQUIRED));
    if (!absent) {
      fill_value(ctx, field, pair->value, out);
    } else if (field->flags & SL_CONF_REQUIRED) {
      sl__problems_add(ctx->problems, map->line, map->col, "%s%smissing required key '%s'%s%s%s",
                       scope->what ? scope->what : "", scope->what ? ": " : "", field->name,
                       field->help ? " (" : "", field->help ? field->help : "",
                       field->help ? ")" : "");
    } else {
      fill_default(ctx, field, map, out);
    }
  }
}

/* --- sl_conf_map ------------------------------------------------------------------ */

const char *sl_conf_map_get(const sl_conf_map *map, const char *key) {
  for (size_t i = 0; map && i < map->count; i++)
    if (strcmp(map->keys[i], key) == 0) return map->values[i];
  return NULL;
}
