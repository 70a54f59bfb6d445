/*
 * meta_template.c - `{{meta.KEY}}` (and `{{payload_sha256}}`) placeholders in the broker
 * sinks' settings (see meta_template.h).
 *
 * Sections: buffer - parsing - expanding.
 */
#include "connectors/meta_template.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define META_PREFIX "meta."
#define META_PREFIX_LEN (sizeof META_PREFIX - 1)
#define PAYLOAD_SHA256 "payload_sha256"

/* ---- buffer ------------------------------------------------------------------------ */

void sl_meta_template_buf_append(sl_meta_template_buf *buf, const void *bytes, size_t len) {
  if (buf->len + len + 1 > buf->cap) {
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < buf->len + len + 1) cap *= 2;
    char *grown = realloc(buf->bytes, cap);
    if (!grown) abort(); /* host out of memory */
    buf->bytes = grown;
    buf->cap = cap;
  }
  if (len) memcpy(buf->bytes + buf->len, bytes, len);
  buf->len += len;
  buf->bytes[buf->len] = '\0';
}

void sl_meta_template_buf_destroy(sl_meta_template_buf *buf) {
  free(buf->bytes);
  *buf = (sl_meta_template_buf){0};
}

/* ---- parsing ----------------------------------------------------------------------- */

static char *copy_text(const char *text, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) abort(); /* host out of memory */
  memcpy(copy, text, len);
  copy[len] = '\0';
  return copy;
}

static void add_part(sl_meta_template *tmpl, sl_meta_template_part_kind kind, const char *text,
                     size_t len) {
  sl_meta_template_part *grown = realloc(tmpl->parts, (tmpl->count + 1) * sizeof *grown);
  if (!grown) abort(); /* host out of memory */
  tmpl->parts = grown;
  tmpl->parts[tmpl->count++] = (sl_meta_template_part){kind, copy_text(text, len), len};
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* A metadata key a placeholder may name: not empty, no spaces, no braces. */
static bool key_ok(const char *key, size_t len) {
  if (len == 0) return false;
  for (size_t i = 0; i < len; i++)
    if (is_space(key[i]) || key[i] == '{' || key[i] == '}') return false;
  return true;
}

/* The placeholders `flags` allow, for messages: what to write, and what each one is. */
static const char *short_forms(unsigned flags) {
  return flags & SL_META_TEMPLATE_PAYLOAD_SHA256 ? "{{meta.KEY}} or {{payload_sha256}}"
                                                 : "{{meta.KEY}}";
}

static const char *explained_forms(unsigned flags) {
  return flags & SL_META_TEMPLATE_PAYLOAD_SHA256
             ? "the forms are {{meta.KEY}} (the event's metadata value KEY) and "
               "{{payload_sha256}} (the payload's SHA-256 in hex)"
             : "the only form is {{meta.KEY}} (the event's metadata value KEY)";
}

sl_status sl_meta_template_parse(const char *field, const char *text, unsigned flags,
                                 sl_meta_template *out, sl_error *err) {
  *out = (sl_meta_template){0};
  const char *source = text ? text : "";
  sl_status st = SL_OK;
  const char *at = source;
  while (*at) {
    const char *open = strstr(at, "{{");
    if (!open) {
      add_part(out, SL_META_TEMPLATE_PART_TEXT, at, strlen(at));
      break;
    }
    if (open > at) add_part(out, SL_META_TEMPLATE_PART_TEXT, at, (size_t)(open - at));
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      st = sl_error_set(err, SL_CONFIG,
                        "%s: \"{{\" at character %zu is never closed by \"}}\"; write %s", field,
                        (size_t)(open - source) + 1, short_forms(flags));
      goto fail;
    }
    const char *name = open + 2, *end = close;
    while (name < end && is_space(*name)) name++;
    while (end > name && is_space(end[-1])) end--;
    size_t len = (size_t)(end - name);
    bool is_meta = len >= META_PREFIX_LEN && memcmp(name, META_PREFIX, META_PREFIX_LEN) == 0;
    if (is_meta && key_ok(name + META_PREFIX_LEN, len - META_PREFIX_LEN)) {
      add_part(out, SL_META_TEMPLATE_PART_META, name + META_PREFIX_LEN, len - META_PREFIX_LEN);
    } else if (is_meta) {
      st = sl_error_set(err, SL_CONFIG,
                        "%s: placeholder {{%.*s}} needs a metadata key after \"meta.\", without "
                        "spaces or braces: {{meta.KEY}}",
                        field, (int)(close - open - 2), open + 2);
      goto fail;
    } else if ((flags & SL_META_TEMPLATE_PAYLOAD_SHA256) && len == strlen(PAYLOAD_SHA256) &&
               memcmp(name, PAYLOAD_SHA256, len) == 0) {
      add_part(out, SL_META_TEMPLATE_PART_PAYLOAD_SHA256, "", 0);
    } else {
      st = sl_error_set(err, SL_CONFIG, "%s: unknown placeholder {{%.*s}}; %s", field,
                        (int)(close - open - 2), open + 2, explained_forms(flags));
      goto fail;
    }
    at = close + 2;
  }
  out->field = copy_text(field, strlen(field));
  out->text = copy_text(source, strlen(source));
  return SL_OK;

fail:
  sl_meta_template_destroy(out);
  return st;
}

void sl_meta_template_destroy(sl_meta_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++) free(tmpl->parts[i].text);
  free(tmpl->parts);
  free(tmpl->field);
  free(tmpl->text);
  *tmpl = (sl_meta_template){0};
}

bool sl_meta_template_constant(const sl_meta_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++)
    if (tmpl->parts[i].kind != SL_META_TEMPLATE_PART_TEXT) return false;
  return true;
}

/* ---- expanding --------------------------------------------------------------------- */

static const sl_meta *find_meta(const sl_event *event, const char *key, size_t len) {
  for (size_t i = 0; i < event->meta_count; i++) {
    const sl_meta *pair = &event->meta[i];
    if (pair->key.len == len && memcmp(pair->key.ptr, key, len) == 0) return pair;
  }
  return NULL;
}

static void append_sha256_hex(sl_meta_template_buf *buf, const sl_bytes *payload) {
  static const char digits[] = "0123456789abcdef";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(payload->ptr ? payload->ptr : (const uint8_t *)"", payload->len, digest);
  char hex[2 * SHA256_DIGEST_LENGTH];
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 0xf];
  }
  sl_meta_template_buf_append(buf, hex, sizeof hex);
}

const char *sl_meta_template_expand(const sl_meta_template *tmpl, const sl_event *event,
                                    sl_meta_template_buf *buf) {
  const char *missing = NULL;
  buf->len = 0;
  sl_meta_template_buf_append(buf, "", 0);
  for (size_t i = 0; i < tmpl->count; i++) {
    const sl_meta_template_part *part = &tmpl->parts[i];
    switch (part->kind) {
    case SL_META_TEMPLATE_PART_TEXT:
      sl_meta_template_buf_append(buf, part->text, part->len);
      break;
    case SL_META_TEMPLATE_PART_META: {
      const sl_meta *pair = find_meta(event, part->text, part->len);
      if (pair)
        sl_meta_template_buf_append(buf, pair->value.ptr, pair->value.len);
      else if (!missing)
        missing = part->text;
      break;
    }
    case SL_META_TEMPLATE_PART_PAYLOAD_SHA256:
      append_sha256_hex(buf, &event->payload);
      break;
    }
  }
  return missing;
}
