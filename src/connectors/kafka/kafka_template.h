/*
 * kafka_template.h - sink settings that take values from each event: text with
 * `{{meta.KEY}}` placeholders, replaced by the value of the event's first metadata pair
 * named KEY (the caller decides what a missing key means). Spaces inside the braces are allowed
 * (`{{ meta.region }}`); any other `{{...}}` is a configuration error, so a typo never
 * silently becomes part of a topic name.
 */
#ifndef SL_CONNECTORS_KAFKA_TEMPLATE_H
#define SL_CONNECTORS_KAFKA_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/event.h"
#include "sluice/status.h"

typedef struct kafka_template_part {
  bool is_meta; /* true: `text` is a metadata key; false: literal text */
  char *text;
  size_t len;
} kafka_template_part;

typedef struct kafka_template {
  kafka_template_part *parts;
  size_t count;
} kafka_template;

/* A growable byte buffer for expansions, reused across events. */
typedef struct kafka_buf {
  char *bytes;
  size_t len, cap;
} kafka_buf;

/*
 * Parses `text` (NULL is the empty template). SL_CONFIG names `field` and says what is
 * wrong. On success the caller releases *out with sl__kafka_template_destroy.
 */
sl_status sl__kafka_template_parse(const char *field, const char *text, kafka_template *out,
                                   sl_error *err);

void sl__kafka_template_destroy(kafka_template *tmpl);

/* True when the template has no placeholder (its expansion never changes). */
bool sl__kafka_template_constant(const kafka_template *tmpl);

/* Expands for `ev` into buf (replacing its content, NUL-terminated). *missing is the
 * first metadata key a placeholder names that the event does not carry (that
 * placeholder expanded to nothing), NULL when none is missing; it points into tmpl. */
void sl__kafka_template_expand(const kafka_template *tmpl, const sl_event *ev, kafka_buf *buf,
                               const char **missing);

void sl__kafka_buf_destroy(kafka_buf *buf);

#endif
