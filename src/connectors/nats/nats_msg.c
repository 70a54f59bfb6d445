/*
 * nats_msg.c - templates, subjects, and events to and from NATS messages (nats_msg.h).
 *
 * Sections: templates - subjects - messages.
 */
#include "connectors/nats/nats_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- templates --------------------------------------------------------------------- */

sl_status sl__nats_template_parse(sl_meta_template *tmpl, const char *field, const char *text,
                                  sl_error *err) {
  return sl_meta_template_parse(field, text, SL_META_TEMPLATE_PAYLOAD_SHA256, tmpl, err);
}

sl_status sl__nats_subject_template_parse(sl_meta_template *tmpl, const char *subject,
                                          sl_error *err) {
  if (!subject) subject = "";
  sl_status st = sl__nats_template_parse(tmpl, "subject", subject, err);
  if (st == SL_OK && sl_meta_template_constant(tmpl) && !sl__nats_subject_valid(subject, false))
    st = sl_error_set(err, SL_CONFIG,
                      "subject: \"%s\" is not a subject to publish to (tokens separated by dots, "
                      "no spaces, no wildcards)",
                      subject);
  return st;
}

sl_status sl__nats_sink_limits_check(uint64_t timeout, int64_t max_retries, sl_error *err) {
  if (timeout == 0) return sl_error_set(err, SL_CONFIG, "timeout: must be more than 0 ms");
  if (max_retries < -1)
    return sl_error_set(err, SL_CONFIG,
                        "max_retries: must be -1 (retry until shutdown) or at least 0, got %lld",
                        (long long)max_retries);
  return SL_OK;
}

sl_status sl__nats_template_render(const sl_meta_template *tmpl, const sl_event *event,
                                   sl_meta_template_buf *out, sl_error *err) {
  const char *missing = sl_meta_template_expand(tmpl, event, out);
  if (missing)
    return sl_error_set(err, SL_NOT_FOUND, "%s: an event has no metadata '%s' (for \"%s\")",
                        tmpl->field, missing, tmpl->text);
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
                                  bool headers, const char *msg_id, sl_meta_template_buf *scratch,
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
      scratch->len = 0;
      sl_meta_template_buf_append(scratch, m->key.ptr, m->key.len);
      sl_meta_template_buf_append(scratch, "", 1);
      sl_meta_template_buf_append(scratch, m->value.ptr, m->value.len);
      s = natsMsgHeader_Add(msg, scratch->bytes, scratch->bytes + m->key.len + 1);
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
