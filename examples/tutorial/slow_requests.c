/*
 * slow_requests.c - keeps the slow requests of an NDJSON access log.
 *
 *   {"path":"/api/orders","ms":420}  ->  {"path":"/api/orders","ms":420,"slow":true}
 *                                        with metadata slow=yes
 *
 * config: threshold_ms   keep requests slower than this many milliseconds (default 100)
 *
 * Dropped: /health checks and requests that took threshold_ms or less.
 * Failed (to the node's .errors output): a line without an "ms" number.
 *
 * The parsing is plain text search, not a JSON parser: it looks for the exact text
 * "path":"/health" and "ms": in the line. That is enough for logs written by one known
 * program; use a real parser for anything else.
 */
#include "sluice.h"
#include <stdlib.h>

static long threshold_ms;

/* Runs once per instance, before the first event. A bad value stops the node. */
static int setup(sluice_init *init) {
  const char *text = sluice_config_or("threshold_ms", "100");
  char *end;
  threshold_ms = strtol(text, &end, 10);
  if (end == text || *end != '\0' || threshold_ms < 0)
    return sluice_init_failf(
        init, "threshold_ms: expected a whole number of milliseconds, got '%s'", text);
  return 0;
}

/* Where `needle` first occurs in `hay`, or NULL. */
static const uint8_t *find(sluice_bytes hay, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= hay.len; i++)
    if (memcmp(hay.ptr + i, needle, n) == 0) return hay.ptr + i;
  return NULL;
}

static int slow_requests(const sluice_event *in, sluice_out *out) {
  sluice_bytes line = in->payload;
  const uint8_t *end = line.ptr + line.len;

  if (find(line, "\"path\":\"/health\"") != NULL) return 0; /* emit nothing: dropped */

  const uint8_t *at = find(line, "\"ms\":");
  if (at == NULL) return sluice_fail(out, "no \"ms\" field");
  at += strlen("\"ms\":");
  while (at < end && *at == ' ') at++;
  if (at == end || *at < '0' || *at > '9') return sluice_fail(out, "\"ms\" is not a number");
  long ms = 0;
  while (at < end && *at >= '0' && *at <= '9') {
    if (ms > 100000000) return sluice_fail(out, "\"ms\" is too large");
    ms = ms * 10 + (*at++ - '0');
  }
  if (ms <= threshold_ms) return 0; /* fast enough: dropped */

  /* Rewrite the payload: `{...}` becomes `{...,"slow":true}`. */
  size_t len = line.len;
  while (len > 0 && (line.ptr[len - 1] == ' ' || line.ptr[len - 1] == '\r')) len--;
  if (len == 0 || line.ptr[len - 1] != '}') return sluice_fail(out, "not a JSON object");
  sluice_buf payload = {0};
  if (!sluice_buf_append(&payload, line.ptr, len - 1)) return -1;
  if (!sluice_buf_append_str(&payload, ",\"slow\":true}")) return -1;
  if (!sluice_emit_ref(out, payload.ptr, payload.len)) return -1;
  return sluice_meta_set(out, "slow", "yes") ? 0 : -1; /* metadata of the event just emitted */
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(slow_requests)
