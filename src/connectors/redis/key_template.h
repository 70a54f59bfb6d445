/*
 * key_template.h - the `redis` sink's `key`: text with {{meta.NAME}} placeholders, each
 * replaced by the value of the event's metadata pair NAME ("events:{{meta.region}}").
 *
 * A pair the event lacks is replaced by nothing. Single braces are text (Redis Cluster
 * hash tags like "events:{eu}" keep working); "{{" always opens a placeholder.
 */
#ifndef SL_CONNECTORS_REDIS_KEY_TEMPLATE_H
#define SL_CONNECTORS_REDIS_KEY_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/event.h"
#include "sluice/status.h"

typedef struct sl_key_piece {
  char *text; /* literal text, or the metadata key when `meta` */
  size_t len;
  bool meta;
} sl_key_piece;

typedef struct sl_key_template {
  sl_key_piece *pieces; /* owned */
  size_t count;
} sl_key_template;

/* Parses `text`. SL_CONFIG (message starting "key: ") for a malformed placeholder;
 * *tmpl is then empty but must still be destroyed. */
sl_status sl__key_template_init(sl_key_template *tmpl, const char *text, sl_error *err);
void sl__key_template_destroy(sl_key_template *tmpl);

/* True when no placeholder occurs: every event gets the same key. */
bool sl__key_template_constant(const sl_key_template *tmpl);

/* Writes the key for `event` into *buf (grown with realloc as needed, owned by the
 * caller) and returns its length. */
size_t sl__key_template_render(const sl_key_template *tmpl, const sl_event *event, char **buf,
                               size_t *cap);

#endif
