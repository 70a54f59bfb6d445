/*
 * kafka_template.c - `{{meta.KEY}}` placeholders in the Kafka sink's topic, key and
 * header values (see kafka_template.h).
 */
#include "connectors/kafka/kafka_template.h"

#include <stdlib.h>
#include <string.h>

static void add_part(kafka_template *tmpl, bool is_meta, const char *text, size_t len) {
  kafka_template_part *grown = realloc(tmpl->parts, (tmpl->count + 1) * sizeof *grown);
  if (!grown) abort(); /* host out of memory */
  tmpl->parts = grown;
  char *copy = malloc(len + 1);
  if (!copy) abort();
  memcpy(copy, text, len);
  copy[len] = '\0';
  tmpl->parts[tmpl->count++] = (kafka_template_part){is_meta, copy, len};
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

sl_status sl__kafka_template_parse(const char *field, const char *text, kafka_template *out,
                                   sl_error *err) {
  *out = (kafka_template){0};
  const char *p = text ? text : "";
  while (*p) {
    const char *open = strstr(p, "{{");
    if (!open) {
      add_part(out, false, p, strlen(p));
      break;
    }
    if (open > p) add_part(out, false, p, (size_t)(open - p));
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      sl__kafka_template_destroy(out);
      return sl_error_set(err, SL_CONFIG,
                          "%s: \"{{\" at character %zu is never closed; write {{meta.KEY}}", field,
                          (size_t)(open - text) + 1);
    }
    const char *start = open + 2, *end = close;
    while (start < end && is_space(*start)) start++;
    while (end > start && is_space(end[-1])) end--;
    size_t len = (size_t)(end - start);
    if (len <= 5 || strncmp(start, "meta.", 5) != 0 || memchr(start, '{', len) ||
        memchr(start, ' ', len)) {
      sl_status st = sl_error_set(err, SL_CONFIG,
                                  "%s: unknown placeholder {{%.*s}}; the only form is "
                                  "{{meta.KEY}} (the event's metadata value KEY)",
                                  field, (int)(close - open - 2), open + 2);
      sl__kafka_template_destroy(out);
      return st;
    }
    add_part(out, true, start + 5, len - 5);
    p = close + 2;
  }
  return SL_OK;
}

void sl__kafka_template_destroy(kafka_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++) free(tmpl->parts[i].text);
  free(tmpl->parts);
  *tmpl = (kafka_template){0};
}

bool sl__kafka_template_constant(const kafka_template *tmpl) {
  for (size_t i = 0; i < tmpl->count; i++)
    if (tmpl->parts[i].is_meta) return false;
  return true;
}

static void append(kafka_buf *buf, const void *bytes, size_t len) {
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

void sl__kafka_template_expand(const kafka_template *tmpl, const sl_event *ev, kafka_buf *buf,
                               const char **missing) {
  buf->len = 0;
  append(buf, "", 0);
  *missing = NULL;
  for (size_t i = 0; i < tmpl->count; i++) {
    const kafka_template_part *part = &tmpl->parts[i];
    if (!part->is_meta) {
      append(buf, part->text, part->len);
      continue;
    }
    const sl_meta *found = NULL;
    for (size_t m = 0; m < ev->meta_count && !found; m++)
      if (ev->meta[m].key.len == part->len &&
          memcmp(ev->meta[m].key.ptr, part->text, part->len) == 0)
        found = &ev->meta[m];
    if (found)
      append(buf, found->value.ptr, found->value.len);
    else if (!*missing)
      *missing = part->text;
  }
}

void sl__kafka_buf_destroy(kafka_buf *buf) {
  free(buf->bytes);
  *buf = (kafka_buf){0};
}
