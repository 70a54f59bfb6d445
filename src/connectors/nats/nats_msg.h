/*
 * nats_msg.h - between Sluice events and NATS messages, for the NATS connectors.
 *
 *   templates   `subject: "orders.{{meta.region}}"`, `msg_id: "{{meta.id}}"`: literal
 *               text with placeholders {{meta.KEY}} (the event's first metadata value
 *               under KEY) and {{payload_sha256}} (hex SHA-256 of the payload), parsed
 *               and expanded by meta_template.h; an event without such a key is not sent
 *   messages    an event becomes a natsMsg whose headers are the event's metadata
 *               (pairs a header cannot carry are skipped and counted); a received
 *               message becomes an event whose metadata are its headers plus extras
 *
 * nats.c 3.4.1 (Debian 12) keeps headers in a hash map whose lookup can take a key for a
 * longer key it begins (its hash ignores some trailing bytes and the comparison stops at
 * the shorter key): a message carrying both `stream_seq` and `stream` may reach a nats.c
 * reader with the two merged under `stream_seq`. Sources here drop headers named like
 * their own metadata keys, so their `subject`, `stream`, `stream_seq` and `deliveries`
 * are always right; other such pairs of header names are at the library's mercy.
 */
#ifndef SL_CONNECTORS_NATS_MSG_H
#define SL_CONNECTORS_NATS_MSG_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "connectors/meta_template.h"
#include "sluice/connector.h"

/* Parses the setting `field` as a template with {{meta.KEY}} and {{payload_sha256}}
 * (meta_template.h); SL_CONFIG names `field` and says what is wrong. The caller releases
 * *tmpl with sl_meta_template_destroy. */
sl_status sl__nats_template_parse(sl_meta_template *tmpl, const char *field, const char *text,
                                  sl_error *err);

/* Parses a sink's `subject` template; a subject without placeholders must also be one a
 * message can be published to. The caller releases *tmpl as above. */
sl_status sl__nats_subject_template_parse(sl_meta_template *tmpl, const char *subject,
                                          sl_error *err);

/* Checks the settings both NATS sinks have: `timeout` > 0, `max_retries` >= -1. */
sl_status sl__nats_sink_limits_check(uint64_t timeout, int64_t max_retries, sl_error *err);

/* Expands a template for one event into `out`. SL_NOT_FOUND when the event lacks a
 * metadata key the template uses (a NATS sink does not send such an event); `err` names
 * the setting and the key. */
sl_status sl__nats_template_render(const sl_meta_template *tmpl, const sl_event *event,
                                   sl_meta_template_buf *out, sl_error *err);

/* A subject a message can be published to: tokens of printable characters without
 * spaces, separated by single dots, and (unless `wildcards`) no `*` or `>` token. */
bool sl__nats_subject_valid(const char *subject, bool wildcards);

/*
 * Makes a message to `subject` with the event's payload; with `headers`, every metadata
 * pair becomes a header (in order; a key may repeat). Pairs that cannot be headers (a
 * key with ':' or spaces or control characters, a value with a line break) are left
 * out and counted in *skipped. `msg_id`, when not NULL, is set as Nats-Msg-Id last (it
 * replaces one from metadata). `scratch` is reused between calls. The caller owns *out.
 * Statuses: SL_OK; SL_INVALID (nats.c refused the message, said in `err`).
 */
sl_status sl__nats_msg_from_event(natsMsg **out, const char *subject, const sl_event *event,
                                  bool headers, const char *msg_id, sl_meta_template_buf *scratch,
                                  size_t *skipped, sl_error *err);

/* The bytes the message sl__nats_msg_from_event makes takes against the server's
 * max_payload: payload plus encoded headers. */
size_t sl__nats_wire_size(const sl_event *event, bool headers, const char *msg_id);

/*
 * Appends an event to `list`: the message's payload, one metadata pair per header value
 * (header order is nats.c's, not the sender's) except headers named like an `extra` key,
 * then `extra` (borrowed; copied): the source's own keys win.
 * SL_NOMEM only when the host is out of memory.
 */
sl_status sl__nats_event_from_msg(sl_event_list *list, natsMsg *msg, const sl_meta *extra,
                                  size_t extra_count);

/* A metadata pair over a C string key and a value of `len` bytes (borrowed). */
static inline sl_meta sl__nats_meta(const char *key, const char *value, size_t len) {
  return (sl_meta){{(const uint8_t *)key, strlen(key)}, {(const uint8_t *)value, len}};
}

#endif
