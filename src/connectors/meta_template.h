/*
 * meta_template.h - sink settings that take values from each event (a topic, a key, a
 * subject, a header value): text with `{{meta.KEY}}` placeholders, each replaced by the
 * value of the event's first metadata pair named KEY. Shared by the connectors; not part
 * of the public API.
 *
 * The rules, the same in every connector:
 *   - "{{" always opens a placeholder and the next "}}" closes it; a single `{` or `}` is
 *     literal text (Redis Cluster hash tags such as "events:{eu}" keep working);
 *   - spaces and tabs inside the braces are allowed: `{{ meta.region }}`;
 *   - `{{payload_sha256}}` (the payload's SHA-256 in lower-case hex) only where the
 *     connector allows it (SL_META_TEMPLATE_PAYLOAD_SHA256);
 *   - any other `{{...}}`, an unclosed "{{", or a KEY that is empty or holds spaces or
 *     braces is a configuration error naming the setting, so a typo never silently
 *     becomes part of a topic name.
 *
 * What an event without a KEY the template names means is the caller's policy: expansion
 * replaces that placeholder by nothing and reports the first such key, and the caller
 * fails the batch (the kafka topic, the mqtt topic, the nats and jetstream subject and
 * msg_id), leaves the value out (a kafka header) or uses the shorter text (the kafka key,
 * the redis key).
 */
#ifndef SL_CONNECTORS_META_TEMPLATE_H
#define SL_CONNECTORS_META_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/event.h"
#include "sluice/status.h"

/* Placeholders beyond {{meta.KEY}} that a setting accepts (sl_meta_template_parse). */
enum {
  SL_META_TEMPLATE_PAYLOAD_SHA256 = 1u << 0, /* {{payload_sha256}} */
};

typedef enum sl_meta_template_part_kind {
  SL_META_TEMPLATE_PART_TEXT,          /* literal text */
  SL_META_TEMPLATE_PART_META,          /* {{meta.KEY}}: `text` is KEY */
  SL_META_TEMPLATE_PART_PAYLOAD_SHA256 /* {{payload_sha256}}: `text` is "" */
} sl_meta_template_part_kind;

typedef struct sl_meta_template_part {
  sl_meta_template_part_kind kind;
  char *text; /* owned, NUL-terminated */
  size_t len;
} sl_meta_template_part;

typedef struct sl_meta_template {
  char *field; /* the setting's name, for messages (owned copy) */
  char *text;  /* the template as written, for messages (owned copy) */
  sl_meta_template_part *parts;
  size_t count;
} sl_meta_template;

/* A growable byte buffer, reused across events: always NUL-terminated after an append
 * (bytes may stay NULL until the first one). Zero-initialise; release with
 * sl_meta_template_buf_destroy. */
typedef struct sl_meta_template_buf {
  char *bytes;
  size_t len, cap;
} sl_meta_template_buf;

/*
 * Parses `text` (NULL is the empty template) for the setting `field`; `flags` are the
 * SL_META_TEMPLATE_* placeholders it allows besides {{meta.KEY}}. Statuses: SL_OK, and
 * the caller releases *out with sl_meta_template_destroy; SL_CONFIG, `err` says
 * "FIELD: what is wrong" and *out is left empty (destroying it is harmless).
 */
sl_status sl_meta_template_parse(const char *field, const char *text, unsigned flags,
                                 sl_meta_template *out, sl_error *err);

/* Releases what the template owns and empties it; an empty template is fine. */
void sl_meta_template_destroy(sl_meta_template *tmpl);

/* True when the template has no placeholder: it expands the same for every event. */
bool sl_meta_template_constant(const sl_meta_template *tmpl);

/*
 * Expands the template for `event` into `buf` (its content replaced, NUL-terminated even
 * when empty). Returns the first metadata key a placeholder names that the event does not
 * carry (that placeholder expanded to nothing), NULL when none is missing; the key is
 * owned by the template.
 */
const char *sl_meta_template_expand(const sl_meta_template *tmpl, const sl_event *event,
                                    sl_meta_template_buf *buf);

/* Appends `len` bytes to `buf` (which stays NUL-terminated), for connectors that build
 * other per-event text in the same kind of buffer. Aborts only when the host is out of
 * memory. */
void sl_meta_template_buf_append(sl_meta_template_buf *buf, const void *bytes, size_t len);

void sl_meta_template_buf_destroy(sl_meta_template_buf *buf);

#endif
