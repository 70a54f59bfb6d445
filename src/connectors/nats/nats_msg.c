/*
 * nats_msg.c - templates, subjects, and events to and from NATS messages (nats_msg.h).
 *
 * Sections: buffer - templates - subjects - messages.
 */
#include "connectors/nats/nats_msg.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ------------------------------------------------------------------------ */

void sl__nats_buf_reset(nats_buf *buf) {
  buf->len = 0;
  if (buf->ptr) buf->ptr[0] = '\0';
}

void sl__nats_buf_append(nats_buf *buf, const void *data, size_t len) {
  if (buf->len + len + 1 > buf->cap) {
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < buf->len + len + 1) cap *= 2;
    char *grown = realloc(buf->ptr, cap);
    if (!grown) abort(); /* host out of memory */
    buf->ptr = grown;
    buf->cap = cap;
  }
  if (len) memcpy(buf->ptr + buf->len, data, len);
  buf->len += len;
  buf->ptr[buf->len] = '\0';
}

void sl__nats_buf_free(nats_buf *buf) {
  free(buf->ptr);
  *buf = (nats_buf){0};
}

/* ---- templates --------------------------------------------------------------------- */

static void add_piece(nats_template *tmpl, nats_piece_kind kind, const char *text, size_t len) {
  nats_piece *grown = realloc(tmpl->pieces, (tmpl->count + 1) * sizeof *grown);
  if (!grown) abort(); /* host out of memory */
  tmpl->pieces = grown;
  char *copy = malloc(len + 1);
  if (!copy) abort();
  memcpy(copy, text, len);
  copy[len] = '\0';
  tmpl->pieces[tmpl->count++] = (nats_piece){kind, copy, len};
}

sl_status sl__nats_template_parse(nats_template *tmpl, const char *field, const char *text,
                                  sl_error *err) {
  *tmpl = (nats_template){.field = field, .source = text};
  const char *at = text;
  while (*at) {
    const char *open = strstr(at, "{{");
    if (!open) {
      add_piece(tmpl, NATS_PIECE_TEXT, at, strlen(at));
      break;
    }
    if (open > at) add_piece(tmpl, NATS_PIECE_TEXT, at, (size_t)(open - at));
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      sl__nats_template_destroy(tmpl);
      return sl_error_set(err, SL_CONFIG,
                          "%s: \"{{\" is not closed by \"}}\" in \"%s\" (placeholders: "
                          "{{meta.KEY}}, {{payload_sha256}})",
                          field, text);
    }
    const char *name = open + 2;
    const char *end = close;
    while (name < end && *name == ' ') name++;
    while (end > name && end[-1] == ' ') end--;
    size_t len = (size_t)(end - name);
    if (len > 5 && memcmp(name, "meta.", 5) == 0) {
      add_piece(tmpl, NATS_PIECE_META, name + 5, len - 5);
    } else if (len == 14 && memcmp(name, "payload_sha256", 14) == 0) {
      add_piece(tmpl, NATS_PIECE_SHA256, "", 0);
    } else {
      sl__nats_template_destroy(tmpl);
      return sl_error_set(err, SL_CONFIG,
                          "%s: unknown placeholder {{%.*s}} in \"%s\" (known: {{meta.KEY}}, "
                          "{{payload_sha256}})",
                          field, (int)len, name, text);
    }
    at = close + 2;
  }
  return SL_OK;
}

void sl__nats_template_destroy(nats_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++) free(tmpl->pieces[i].text);
  free(tmpl->pieces);
  tmpl->pieces = NULL;
  tmpl->count = 0;
}

bool sl__nats_template_is_static(const nats_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++)
    if (tmpl->pieces[i].kind != NATS_PIECE_TEXT) return false;
  return true;
}

static const sl_meta *find_meta(const sl_event *event, const char *key, size_t len) {
  for (size_t i = 0; i < event->meta_count; i++) {
    const sl_meta *m = &event->meta[i];
    if (m->key.len == len && memcmp(m->key.ptr, key, len) == 0) return m;
  }
  return NULL;
}

sl_status sl__nats_template_render(const nats_template *tmpl, const sl_event *event, nats_buf *out,
                                   sl_error *err) {
  sl__nats_buf_reset(out);
  sl__nats_buf_append(out, "", 0);
  for (size_t i = 0; i < tmpl->count; i++) {
    const nats_piece *piece = &tmpl->pieces[i];
    switch (piece->kind) {
    case NATS_PIECE_TEXT:
      sl__nats_buf_append(out, piece->text, piece->len);
      break;
    case NATS_PIECE_META: {
      const sl_meta *m = find_meta(event, piece->text, piece->len);
      if (!m)
        return sl_error_set(err, SL_NOT_FOUND, "%s: an event has no metadata '%s' (for \"%s\")",
                            tmpl->field, piece->text, tmpl->source);
      sl__nats_buf_append(out, m->value.ptr, m->value.len);
      break;
    }
    case NATS_PIECE_SHA256: {
      unsigned char digest[SHA256_DIGEST_LENGTH];
      SHA256(event->payload.ptr ? event->payload.ptr : (const uint8_t *)"", event->payload.len,
             digest);
      char hex[2 * SHA256_DIGEST_LENGTH + 1];
      for (size_t b = 0; b < SHA256_DIGEST_LENGTH; b++) snprintf(hex + 2 * b, 3, "%02x", digest[b]);
      sl__nats_buf_append(out, hex, 2 * SHA256_DIGEST_LENGTH);
      break;
    }
    }
  }
  return SL_OK;
}

/* ---- subjects ---------------------------------------------------------------------- */

bool sl__nats_subject_valid(const char *subject, bool wildcards) {
  if (!subject || !*subject) return false;
  const char *token = subject;
  for (const char *c = subject;; c++) {
    if (*c == '.' || *c == '\0') {
      size_t len = (size_t)(c - token);
      if (len == 0) return false; /* "a..b", ".a", "a." */
      bool wildcard = (len == 1 && (*token == '*' || *token == '>'));
      if (wildcard && !wildcards) return false;
      if (wildcard && *token == '>' && *c != '\0') return false; /* '>' only last */
      if (*c == '\0') return true;
      token = c + 1;
    } else if ((unsigned char)*c <= ' ' || *c == 127) {
      return false;
    }
  }
}

/* ---- messages ---------------------------------------------------------------------- */

static bool header_key_ok(const sl_bytes *key) {
  if (key->len == 0) return false;
  for (size_t i = 0; i < key->len; i++) {
    unsigned char c = key->ptr[i];
    if (c <= ' ' || c >= 127 || c == ':') return false;
  }
  return true;
}

static bool header_value_ok(const sl_bytes *value) {
  for (size_t i = 0; i < value->len; i++) {
    unsigned char c = value->ptr[i];
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

size_t sl__nats_wire_size(const sl_event *event, bool headers, const char *msg_id) {
  size_t header_bytes = 0;
  if (headers)
    for (size_t i = 0; i < event->meta_count; i++)
      header_bytes += event->meta[i].key.len + event->meta[i].value.len + 4; /* ": ", CRLF */
  if (msg_id) header_bytes += strlen("Nats-Msg-Id") + strlen(msg_id) + 4;
  if (header_bytes) header_bytes += strlen("NATS/1.0\r\n") + 2;
  return event->payload.len + header_bytes;
}

sl_status sl__nats_msg_from_event(natsMsg **out, const char *subject, const sl_event *event,
                                  bool headers, const char *msg_id, nats_buf *scratch,
                                  size_t *skipped, sl_error *err) {
  *out = NULL;
  natsMsg *msg = NULL;
  char why[256];
  if (event->payload.len > INT32_MAX)
    return sl_error_set(err, SL_INVALID, "an event of %zu bytes is too large for NATS",
                        event->payload.len);
  natsStatus s = natsMsg_Create(&msg, subject, NULL, (const char *)event->payload.ptr,
                                (int)event->payload.len);
  if (s != NATS_OK) goto fail;
  if (headers) {
    for (size_t i = 0; i < event->meta_count; i++) {
      const sl_meta *m = &event->meta[i];
      if (!header_key_ok(&m->key) || !header_value_ok(&m->value)) {
        (*skipped)++;
        continue;
      }
      /* nats.c takes C strings: key and value side by side in the scratch buffer. */
      sl__nats_buf_reset(scratch);
      sl__nats_buf_append(scratch, m->key.ptr, m->key.len);
      sl__nats_buf_append(scratch, "", 1);
      sl__nats_buf_append(scratch, m->value.ptr, m->value.len);
      s = natsMsgHeader_Add(msg, scratch->ptr, scratch->ptr + m->key.len + 1);
      if (s != NATS_OK) goto fail;
    }
  }
  if (msg_id) {
    s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (s != NATS_OK) goto fail;
  }
  *out = msg;
  return SL_OK;

fail:
  natsMsg_Destroy(msg);
  snprintf(why, sizeof why, "%s", natsStatus_GetText(s));
  return sl_error_set(err, SL_INVALID, "cannot make a NATS message for subject %s: %s", subject,
                      why);
}

/* The source's own keys win over headers of the same name. */
static bool is_extra(const char *key, const sl_meta *extra, size_t extra_count) {
  size_t len = strlen(key);
  for (size_t i = 0; i < extra_count; i++)
    if (extra[i].key.len == len && memcmp(extra[i].key.ptr, key, len) == 0) return true;
  return false;
}

sl_status sl__nats_event_from_msg(sl_event_list *list, natsMsg *msg, const sl_meta *extra,
                                  size_t extra_count) {
  const char **keys = NULL;
  int key_count = 0;
  /* Headers as (key, value) pairs, borrowed from the message. */
  const char **pairs = NULL;
  size_t pair_count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &key_count) == NATS_OK) {
    for (int k = 0; k < key_count; k++) {
      if (is_extra(keys[k], extra, extra_count)) continue;
      const char **values = NULL;
      int value_count = 0;
      if (natsMsgHeader_Values(msg, keys[k], &values, &value_count) != NATS_OK) continue;
      const char **grown = realloc(pairs, (pair_count + (size_t)value_count) * 2 * sizeof *grown);
      if (!grown) abort(); /* host out of memory */
      pairs = grown;
      for (int v = 0; v < value_count; v++) {
        pairs[2 * pair_count] = keys[k];
        pairs[2 * pair_count + 1] = values[v] ? values[v] : "";
        pair_count++;
      }
      free((void *)values);
    }
  }
  uint8_t *payload = NULL;
  sl_meta *meta = NULL;
  size_t len = (size_t)natsMsg_GetDataLength(msg);
  sl_status st = sl_event_list_push(list, len, pair_count + extra_count, &payload, &meta);
  if (st != SL_OK) goto done;
  if (len) memcpy(payload, natsMsg_GetData(msg), len);
  for (size_t i = 0; i < pair_count && st == SL_OK; i++) {
    st = sl_event_list_copy(list, pairs[2 * i], strlen(pairs[2 * i]), &meta[i].key);
    if (st == SL_OK)
      st = sl_event_list_copy(list, pairs[2 * i + 1], strlen(pairs[2 * i + 1]), &meta[i].value);
  }
  for (size_t i = 0; i < extra_count && st == SL_OK; i++) {
    st = sl_event_list_copy(list, extra[i].key.ptr, extra[i].key.len, &meta[pair_count + i].key);
    if (st == SL_OK)
      st = sl_event_list_copy(list, extra[i].value.ptr, extra[i].value.len,
                              &meta[pair_count + i].value);
  }

done:
  free(pairs);
  free((void *)keys);
  return st;
}
