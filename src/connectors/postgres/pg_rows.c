/*
 * pg_rows.c - from events to table rows (pg_rows.h): reading `columns:`, finding each
 * column's value in an event, and writing rows as COPY text or INSERT parameters.
 *
 * Sections: buffers - `columns:` - JSON as text - one value - rows.
 */
#include "connectors/postgres/pg_rows.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ----------------------------------------------------------------------- */

void sl__pg_buf_append(sl_pg_buf *buf, const void *bytes, size_t len) {
  if (buf->cap - buf->len < len) {
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap - buf->len < len) cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (!grown) abort();
    buf->data = grown;
    buf->cap = cap;
  }
  if (len) memcpy(buf->data + buf->len, bytes, len);
  buf->len += len;
}

static void buf_byte(sl_pg_buf *buf, char c) { sl__pg_buf_append(buf, &c, 1); }

static void buf_text(sl_pg_buf *buf, const char *text) {
  sl__pg_buf_append(buf, text, strlen(text));
}

void sl__pg_buf_free(sl_pg_buf *buf) {
  free(buf->data);
  *buf = (sl_pg_buf){0};
}

/* ---- `columns:` -------------------------------------------------------------------- */

void sl__pg_columns_free(sl_pg_column *columns, size_t count) {
  for (size_t i = 0; columns && i < count; i++) {
    for (size_t s = 0; s < columns[i].path_len; s++) free(columns[i].path[s]);
    free(columns[i].path);
  }
  free(columns);
}

/* Splits "a.b.0" into segments; false when one is empty ("a..b", "a."). */
static bool split_path(const char *text, sl_pg_column *column) {
  size_t segments = 1;
  for (const char *c = text; *c; c++) segments += *c == '.';
  column->path = calloc(segments, sizeof *column->path);
  if (!column->path) abort();
  const char *start = text;
  for (;;) {
    size_t len = strcspn(start, ".");
    if (len == 0) return false;
    column->path[column->path_len] = strndup(start, len);
    if (!column->path[column->path_len]) abort();
    column->path_len++;
    if (!start[len]) return true;
    start += len + 1;
  }
}

sl_status sl__pg_columns_parse(const sl_conf_map *map, sl_pg_column **columns, size_t *count,
                               sl_error *err) {
  *columns = NULL;
  *count = 0;
  if (map->count == 0)
    return sl_error_set(err, SL_CONFIG,
                        "columns: map at least one column to where its value comes from, e.g. "
                        "columns: {body: payload, user_id: payload.user.id, host: meta.host}");
  sl_pg_column *list = calloc(map->count, sizeof *list);
  if (!list) abort();
  sl_status st = SL_OK;
  for (size_t n = 0; n < map->count; n++) {
    sl_pg_column *column = &list[n];
    column->name = map->keys[n];
    column->source = map->values[n];
    const char *source = column->source;
    if (!column->name[0]) {
      st = sl_error_set(err, SL_CONFIG, "columns: a column name is empty");
      break;
    }
    for (size_t before = 0; before < n; before++)
      if (strcmp(list[before].name, column->name) == 0) {
        st = sl_error_set(err, SL_CONFIG, "columns: column \"%s\" is listed twice", column->name);
        goto done;
      }
    if (strcmp(source, "payload") == 0) {
      column->kind = SL_PG_PAYLOAD;
    } else if (strncmp(source, "payload.", 8) == 0) {
      column->kind = SL_PG_PAYLOAD_FIELD;
      if (!split_path(source + 8, column)) {
        st = sl_error_set(err, SL_CONFIG,
                          "columns: %s: '%s' has an empty field name; write payload.FIELD or "
                          "payload.FIELD.SUBFIELD, e.g. payload.user.id",
                          column->name, source);
        break;
      }
    } else if (strncmp(source, "meta.", 5) == 0 && source[5]) {
      column->kind = SL_PG_META;
      column->meta_key = source + 5;
    } else {
      st = sl_error_set(err, SL_CONFIG,
                        "columns: %s: '%s' is not a value source; use payload (the whole "
                        "payload), payload.FIELD (a JSON field, e.g. payload.user.id) or "
                        "meta.KEY (a metadata value)",
                        column->name, source);
      break;
    }
  }
done:
  if (st != SL_OK) {
    sl__pg_columns_free(list, map->count); /* entries never reached are zeroed */
    return st;
  }
  *columns = list;
  *count = map->count;
  return SL_OK;
}

/* ---- JSON as text ------------------------------------------------------------------ */

/* The shortest "%.Ng" that reads back as the same double, so 0.1 stays 0.1 (jansson's
 * own output would write 0.10000000000000001). */
static void render_real(double value, sl_pg_buf *out) {
  char text[40];
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(text, sizeof text, "%.*g", precision, value);
    if (strtod(text, NULL) == value) break;
  }
  buf_text(out, text);
}

static void render_string(const char *text, size_t len, sl_pg_buf *out) {
  buf_byte(out, '"');
  size_t run = 0; /* bytes copied as they are, flushed before each escape */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    sl__pg_buf_append(out, text + run, i - run);
    run = i + 1;
    char escaped[8];
    switch (c) {
    case '"':
    case '\\':
      snprintf(escaped, sizeof escaped, "\\%c", c);
      break;
    case '\n':
      snprintf(escaped, sizeof escaped, "\\n");
      break;
    case '\t':
      snprintf(escaped, sizeof escaped, "\\t");
      break;
    case '\r':
      snprintf(escaped, sizeof escaped, "\\r");
      break;
    default:
      snprintf(escaped, sizeof escaped, "\\u%04x", c);
    }
    buf_text(out, escaped);
  }
  sl__pg_buf_append(out, text + run, len - run);
  buf_byte(out, '"');
}

/* Compact JSON, keys in the payload's order. */
static void render_json(const json_t *value, sl_pg_buf *out) {
  char number[32];
  switch (json_typeof(value)) {
  case JSON_OBJECT: {
    buf_byte(out, '{');
    bool first = true;
    for (void *it = json_object_iter((json_t *)value); it;
         it = json_object_iter_next((json_t *)value, it)) {
      if (!first) buf_byte(out, ',');
      first = false;
      render_string(json_object_iter_key(it), json_object_iter_key_len(it), out);
      buf_byte(out, ':');
      render_json(json_object_iter_value(it), out);
    }
    buf_byte(out, '}');
    break;
  }
  case JSON_ARRAY:
    buf_byte(out, '[');
    for (size_t i = 0; i < json_array_size(value); i++) {
      if (i) buf_byte(out, ',');
      render_json(json_array_get(value, i), out);
    }
    buf_byte(out, ']');
    break;
  case JSON_STRING:
    render_string(json_string_value(value), json_string_length(value), out);
    break;
  case JSON_INTEGER:
    snprintf(number, sizeof number, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    buf_text(out, number);
    break;
  case JSON_REAL:
    render_real(json_real_value(value), out);
    break;
  case JSON_TRUE:
    buf_text(out, "true");
    break;
  case JSON_FALSE:
    buf_text(out, "false");
    break;
  case JSON_NULL:
    buf_text(out, "null");
    break;
  }
}

/* ---- one value --------------------------------------------------------------------- */

/* The value at `path` under `root`, or NULL when a step is missing. */
static const json_t *lookup(const json_t *root, char *const *path, size_t path_len) {
  const json_t *value = root;
  for (size_t i = 0; i < path_len && value; i++) {
    if (json_is_object(value)) {
      value = json_object_get(value, path[i]);
    } else if (json_is_array(value)) {
      char *end;
      unsigned long long index = strtoull(path[i], &end, 10);
      bool digits = path[i][0] >= '0' && path[i][0] <= '9' && !*end;
      value =
          digits && index < json_array_size(value) ? json_array_get(value, (size_t)index) : NULL;
    } else {
      value = NULL;
    }
  }
  return value;
}

/* Scratch space for one value: a field rendered as text, and bytea's hex. */
typedef struct cell_scratch {
  sl_pg_buf field, hex;
} cell_scratch;

typedef struct cell {
  const char *ptr;
  size_t len;
  bool null;
} cell;

/* Finds column `column`'s value in `event` (`root`: its payload as JSON, when parsed). */
static sl_status find_value(const sl_pg_column *column, const sl_event *event, const json_t *root,
                            size_t event_no, cell_scratch *scratch, cell *out, sl_error *err) {
  *out = (cell){NULL, 0, true};
  switch (column->kind) {
  case SL_PG_PAYLOAD:
    *out = (cell){(const char *)event->payload.ptr, event->payload.len, false};
    break;
  case SL_PG_META: {
    size_t key_len = strlen(column->meta_key);
    for (size_t i = 0; i < event->meta_count; i++) {
      const sl_meta *pair = &event->meta[i];
      if (pair->key.len == key_len && memcmp(pair->key.ptr, column->meta_key, key_len) == 0) {
        *out = (cell){(const char *)pair->value.ptr, pair->value.len, false};
        break;
      }
    }
    break;
  }
  case SL_PG_PAYLOAD_FIELD: {
    const json_t *value = lookup(root, column->path, column->path_len);
    if (!value || json_is_null(value)) break;
    scratch->field.len = 0;
    if (json_is_string(value) && column->form != SL_PG_JSON)
      sl__pg_buf_append(&scratch->field, json_string_value(value), json_string_length(value));
    else
      render_json(value, &scratch->field);
    *out = (cell){scratch->field.data, scratch->field.len, false};
    break;
  }
  }
  if (out->null) return SL_OK;
  if (column->form == SL_PG_BYTEA) {
    static const char digits[] = "0123456789abcdef";
    scratch->hex.len = 0;
    sl__pg_buf_append(&scratch->hex, "\\x", 2);
    for (size_t i = 0; i < out->len; i++) {
      unsigned char byte = (unsigned char)out->ptr[i];
      char pair[2] = {digits[byte >> 4], digits[byte & 15]};
      sl__pg_buf_append(&scratch->hex, pair, 2);
    }
    *out = (cell){scratch->hex.data, scratch->hex.len, false};
  } else if (out->len && memchr(out->ptr, '\0', out->len)) {
    return sl_error_set(err, SL_IO,
                        "event %zu: column \"%s\" (%s): the value contains a NUL byte, which "
                        "PostgreSQL cannot store as text (a bytea column could hold it)",
                        event_no, column->name, column->source);
  }
  return SL_OK;
}

/* ---- rows -------------------------------------------------------------------------- */

typedef void (*emit_fn)(void *target, size_t row, size_t column, size_t column_count,
                        const cell *value);

/* Finds every value of events [first, first + count) and hands each to `emit`. */
static sl_status each_value(const sl_pg_column *columns, size_t column_count,
                            const sl_event_list *batch, size_t first, size_t count, emit_fn emit,
                            void *target, sl_error *err) {
  bool wants_json = false;
  for (size_t c = 0; c < column_count; c++) wants_json |= columns[c].kind == SL_PG_PAYLOAD_FIELD;
  cell_scratch scratch = {{0}, {0}};
  sl_status st = SL_OK;
  for (size_t row = 0; row < count && st == SL_OK; row++) {
    const sl_event *event = &batch->items[first + row];
    size_t event_no = first + row + 1;
    json_t *root = NULL;
    if (wants_json) {
      json_error_t json_err;
      root = json_loadb((const char *)event->payload.ptr, event->payload.len,
                        JSON_DECODE_ANY | JSON_ALLOW_NUL, &json_err);
      if (!root) {
        const char *reader = "";
        for (size_t c = 0; c < column_count && !reader[0]; c++)
          if (columns[c].kind == SL_PG_PAYLOAD_FIELD) reader = columns[c].name;
        st = sl_error_set(err, SL_IO,
                          "event %zu: the payload is not JSON (%s, at byte %d), but column "
                          "\"%s\" reads a field of it",
                          event_no, json_err.text, json_err.position, reader);
        break;
      }
    }
    for (size_t c = 0; c < column_count && st == SL_OK; c++) {
      cell value;
      st = find_value(&columns[c], event, root, event_no, &scratch, &value, err);
      if (st == SL_OK) emit(target, row, c, column_count, &value);
    }
    json_decref(root);
  }
  sl__pg_buf_free(&scratch.field);
  sl__pg_buf_free(&scratch.hex);
  return st;
}

/* COPY text: backslash, newline, carriage return and tab escaped; NULL is \N. */
static void emit_copy(void *target, size_t row, size_t column, size_t column_count,
                      const cell *value) {
  sl_pg_buf *out = target;
  if (value->null) {
    sl__pg_buf_append(out, "\\N", 2);
  } else {
    size_t run = 0;
    for (size_t i = 0; i < value->len; i++) {
      char c = value->ptr[i];
      const char *escaped = c == '\\'   ? "\\\\"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
      if (!escaped) continue;
      sl__pg_buf_append(out, value->ptr + run, i - run);
      sl__pg_buf_append(out, escaped, 2);
      run = i + 1;
    }
    sl__pg_buf_append(out, value->ptr + run, value->len - run);
  }
  buf_byte(out, column + 1 == column_count ? '\n' : '\t');
}

sl_status sl__pg_rows_copy(const sl_pg_column *columns, size_t column_count,
                           const sl_event_list *batch, size_t first, size_t count, sl_pg_buf *out,
                           sl_error *err) {
  return each_value(columns, column_count, batch, first, count, emit_copy, out, err);
}

typedef struct params_target {
  sl_pg_buf *values;
  size_t *offsets;
} params_target;

static void emit_param(void *target, size_t row, size_t column, size_t column_count,
                       const cell *value) {
  params_target *params = target;
  size_t *offset = &params->offsets[row * column_count + column];
  if (value->null) {
    *offset = SIZE_MAX;
    return;
  }
  *offset = params->values->len;
  sl__pg_buf_append(params->values, value->ptr, value->len);
  buf_byte(params->values, '\0');
}

sl_status sl__pg_rows_params(const sl_pg_column *columns, size_t column_count,
                             const sl_event_list *batch, size_t first, size_t count,
                             sl_pg_buf *values, size_t *offsets, sl_error *err) {
  params_target target = {values, offsets};
  return each_value(columns, column_count, batch, first, count, emit_param, &target, err);
}
