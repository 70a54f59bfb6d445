/*
 * filter.c - drops the events whose payload contains a configured substring and passes
 * the others through unchanged.
 *
 * config:  drop_if_contains   the substring (default `"level":"debug"`); must not be empty
 *
 *     sluice invoke filter.wasm --payload '{"level":"debug"}'   ->  (no event)
 *     sluice invoke filter.wasm --payload '{"level":"info"}'    ->  {"level":"info"}
 */
#include "sluice.h"

static const char *needle;
static size_t needle_len;

static int setup(sluice_init *init) {
  needle = sluice_config_or("drop_if_contains", "\"level\":\"debug\"");
  needle_len = strlen(needle);
  if (needle_len == 0) return sluice_init_fail(init, "drop_if_contains: must not be empty");
  return 0;
}

/* True when `haystack` contains `needle`: memchr finds candidates for the first byte. */
static bool contains(sluice_bytes haystack) {
  if (haystack.len < needle_len) return false;
  const uint8_t *end = haystack.ptr + haystack.len - needle_len + 1;
  const uint8_t *at = haystack.ptr;
  while (at < end && (at = memchr(at, needle[0], (size_t)(end - at))) != NULL) {
    if (memcmp(at, needle, needle_len) == 0) return true;
    at++;
  }
  return false;
}

static int filter(const sluice_event *in, sluice_out *out) {
  if (contains(in->payload)) return 0; /* emitting nothing drops the event */
  return sluice_forward(out, in) ? 0 : -1;
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(filter)
