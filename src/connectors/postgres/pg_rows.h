/*
 * pg_rows.h - from events to table rows: what each column's value is (`columns:`), and
 * the two encodings the postgres sink sends, COPY text and INSERT parameters.
 *
 * A column's source is one of:
 *   payload          the payload bytes as they are
 *   payload.A.B      a field of the payload read as JSON (a segment of digits also
 *                    indexes an array); a missing field or JSON null is SQL NULL
 *   meta.KEY         the first metadata value whose key is KEY (KEY may hold dots);
 *                    absent is SQL NULL
 * How a value is written depends on the column's type, known once the table was read:
 *   bytea            the value's bytes, hex-encoded (any bytes, NUL included)
 *   json, jsonb      payload.A.B is written as JSON (a string stays quoted); payload and
 *                    meta.KEY are written as they are and must be JSON text
 *   anything else    text the server parses: a JSON string without its quotes, a number
 *                    or true/false as written in JSON, an object or array as JSON text
 * Text for columns other than bytea must not contain a NUL byte (PostgreSQL cannot
 * store one): that is a data error naming the event and column.
 */
#ifndef SL_CONNECTORS_PG_ROWS_H
#define SL_CONNECTORS_PG_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/config.h"
#include "sluice/event.h"
#include "sluice/status.h"

typedef enum sl_pg_source { SL_PG_PAYLOAD, SL_PG_PAYLOAD_FIELD, SL_PG_META } sl_pg_source;

typedef enum sl_pg_form {
  SL_PG_TEXT,  /* the server parses text into the column's type */
  SL_PG_JSON,  /* json or jsonb */
  SL_PG_BYTEA, /* bytea: hex */
} sl_pg_form;

/* One entry of `columns:`. Strings are borrowed from the config unless noted. */
typedef struct sl_pg_column {
  const char *name;   /* the column, exactly as written (case-sensitive) */
  const char *source; /* as written: "payload.user.id" */
  sl_pg_source kind;
  char **path; /* SL_PG_PAYLOAD_FIELD: the segments after "payload.", owned */
  size_t path_len;
  const char *meta_key; /* SL_PG_META: points into `source` */
  sl_pg_form form;      /* SL_PG_TEXT until the table's types are known */
} sl_pg_column;

/* A growable byte buffer; the host's own out-of-memory aborts. */
typedef struct sl_pg_buf {
  char *data;
  size_t len, cap;
} sl_pg_buf;

void sl__pg_buf_append(sl_pg_buf *buf, const void *bytes, size_t len);
void sl__pg_buf_free(sl_pg_buf *buf);

/*
 * Reads `columns:` into *columns (malloc'd, freed with sl__pg_columns_free), keeping the
 * map's order. SL_CONFIG with a message naming the column when a source is not one of
 * the forms above or the map is empty.
 */
sl_status sl__pg_columns_parse(const sl_conf_map *map, sl_pg_column **columns, size_t *count,
                               sl_error *err);
void sl__pg_columns_free(sl_pg_column *columns, size_t count);

/*
 * Appends events [first, first + count) of `batch` to `out` as COPY text, one line per
 * event (tab-separated, \N for NULL, backslash escapes). SL_IO when an event cannot
 * become a row (a payload that is not JSON while a column reads a field of it, a NUL
 * byte in text); the message names the event (1-based within the batch) and column.
 */
sl_status sl__pg_rows_copy(const sl_pg_column *columns, size_t column_count,
                           const sl_event_list *batch, size_t first, size_t count, sl_pg_buf *out,
                           sl_error *err);

/*
 * The same rows as INSERT parameters: every value NUL-terminated in `values`, and in
 * `offsets` (count * column_count entries, row-major) where each starts, or SIZE_MAX for
 * NULL. Turn offsets into pointers only once `values` stops growing. Errors as above.
 */
sl_status sl__pg_rows_params(const sl_pg_column *columns, size_t column_count,
                             const sl_event_list *batch, size_t first, size_t count,
                             sl_pg_buf *values, size_t *offsets, sl_error *err);

#endif
