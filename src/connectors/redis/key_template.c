/*
 * key_template.c - {{meta.NAME}} placeholders in the `redis` sink's key (see key_template.h).
 */
#include "connectors/redis/key_template.h"

#include <stdlib.h>
#include <string.h>

#define META_PREFIX "meta."

static void add_piece(sl_key_template *tmpl, const char *text, size_t len, bool meta) {
  sl_key_piece *grown = realloc(tmpl->pieces, (tmpl->count + 1) * sizeof *grown);
  if (!grown) abort(); /* host out of memory */
  tmpl->pieces = grown;
  sl_key_piece *piece = &tmpl->pieces[tmpl->count++];
  piece->text = malloc(len + 1);
  if (!piece->text) abort();
  memcpy(piece->text, text, len);
  piece->text[len] = '\0';
  piece->len = len;
  piece->meta = meta;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

sl_status sl__key_template_init(sl_key_template *tmpl, const char *text, sl_error *err) {
  tmpl->pieces = NULL;
  tmpl->count = 0;
  if (!text || !text[0]) return sl_error_set(err, SL_CONFIG, "key: must not be empty");
  const char *at = text;
  for (;;) {
    const char *open = strstr(at, "{{");
    if (!open) {
      if (*at) add_piece(tmpl, at, strlen(at), false);
      return SL_OK;
    }
    if (open > at) add_piece(tmpl, at, (size_t)(open - at), false);
    const char *close = strstr(open + 2, "}}");
    if (!close)
      return sl_error_set(err, SL_CONFIG,
                          "key: \"{{\" at offset %zu is never closed; write {{meta.NAME}}",
                          (size_t)(open - text));
    const char *inner = open + 2, *inner_end = close;
    while (inner < inner_end && is_space(*inner)) inner++;
    while (inner_end > inner && is_space(inner_end[-1])) inner_end--;
    size_t prefix = strlen(META_PREFIX);
    if ((size_t)(inner_end - inner) <= prefix || strncmp(inner, META_PREFIX, prefix) != 0)
      return sl_error_set(err, SL_CONFIG,
                          "key: unknown placeholder \"%.*s\"; the only form is {{meta.NAME}} "
                          "(the value of the event's metadata pair NAME)",
                          (int)(close + 2 - open), open);
    add_piece(tmpl, inner + prefix, (size_t)(inner_end - inner) - prefix, true);
    at = close + 2;
  }
}

void sl__key_template_destroy(sl_key_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++) free(tmpl->pieces[i].text);
  free(tmpl->pieces);
  tmpl->pieces = NULL;
  tmpl->count = 0;
}

bool sl__key_template_constant(const sl_key_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++)
    if (tmpl->pieces[i].meta) return false;
  return true;
}

/* The first metadata value named `key`, or an empty one. */
static sl_bytes meta_value(const sl_event *event, const char *key, size_t len) {
  for (size_t i = 0; i < event->meta_count; i++) {
    const sl_meta *pair = &event->meta[i];
    if (pair->key.len == len && memcmp(pair->key.ptr, key, len) == 0) return pair->value;
  }
  return (sl_bytes){NULL, 0};
}

static void append(char **buf, size_t *cap, size_t *len, const void *bytes, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t want = *cap ? *cap : 64;
    while (want < *len + n + 1) want *= 2;
    char *grown = realloc(*buf, want);
    if (!grown) abort(); /* host out of memory */
    *buf = grown;
    *cap = want;
  }
  if (n) memcpy(*buf + *len, bytes, n);
  *len += n;
  (*buf)[*len] = '\0';
}

size_t sl__key_template_render(const sl_key_template *tmpl, const sl_event *event, char **buf,
                               size_t *cap) {
  size_t len = 0;
  append(buf, cap, &len, "", 0);
  for (size_t i = 0; i < tmpl->count; i++) {
    const sl_key_piece *piece = &tmpl->pieces[i];
    if (!piece->meta) {
      append(buf, cap, &len, piece->text, piece->len);
    } else {
      sl_bytes value = meta_value(event, piece->text, piece->len);
      append(buf, cap, &len, value.ptr, value.len);
    }
  }
  return len;
}
