/*
 * split.c - fan-out: splits the payload on a separator into one event per non-empty
 * part. Each part keeps the input's metadata and gains `part` = its index among the
 * emitted events (0, 1, 2, ...).
 *
 * config:  separator   the separator, one or more bytes (default `,`); must not be empty
 *
 *     sluice invoke split.wasm --payload 'a,b,,c'   ->  a (part=0), b (part=1), c (part=2)
 */
#include "sluice.h"

static const char *separator;
static size_t separator_len;

static int setup(sluice_init *init) {
  separator = sluice_config_or("separator", ",");
  separator_len = strlen(separator);
  if (separator_len == 0) return sluice_init_fail(init, "separator: must not be empty");
  return 0;
}

/* The offset of the next separator at or after `from`, or `payload.len` if none. */
static size_t find_separator(sluice_bytes payload, size_t from) {
  for (size_t at = from; at + separator_len <= payload.len; at++)
    if (memcmp(payload.ptr + at, separator, separator_len) == 0) return at;
  return payload.len;
}

/* Decimal text of `value` into `text` (room for 21 bytes), NUL-terminated. */
static const char *format_index(size_t value, char text[21]) {
  char *at = text + 20;
  *at = '\0';
  do {
    *--at = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  return at;
}

static int split(const sluice_event *in, sluice_out *out) {
  size_t part = 0;
  size_t start = 0;
  while (start <= in->payload.len) {
    size_t end = find_separator(in->payload, start);
    if (end > start) {
      char index[21];
      /* The parts point into the input payload, which lives until the call returns. */
      if (!sluice_emit_ref(out, in->payload.ptr + start, end - start) ||
          !sluice_meta_set(out, "part", format_index(part, index)))
        return -1;
      part++;
    }
    start = end + separator_len;
  }
  return 0;
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(split)
