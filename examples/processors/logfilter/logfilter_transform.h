/*
 * logfilter_transform.h - the transform behind the NDJSON benchmark, shared word for word
 * by the Wasm processor (logfilter.c) and the native baseline (bench/pipeline/native_logfilter.c),
 * so the benchmark compares runtimes, not two implementations.
 *
 * A line whose text contains "level":"debug" is dropped; otherwise the value of its "msg"
 * string is upper-cased (ASCII letters; escapes are skipped over, not decoded).
 */
#ifndef LOGFILTER_TRANSFORM_H
#define LOGFILTER_TRANSFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline const char *logfilter_find(const char *hay, size_t hay_len, const char *needle,
                                         size_t needle_len) {
  if (hay_len < needle_len) return NULL;
  const char *end = hay + hay_len - needle_len + 1;
  for (const char *at = hay; at < end && (at = memchr(at, needle[0], (size_t)(end - at))) != NULL; at++)
    if (memcmp(at, needle, needle_len) == 0) return at;
  return NULL;
}

/* False when the line is to be dropped. */
static inline bool logfilter_keep(const char *line, size_t len) {
  static const char debug[] = "\"level\":\"debug\"";
  return logfilter_find(line, len, debug, sizeof debug - 1) == NULL;
}

/* Upper-cases the "msg" value of a kept line, in place. */
static inline void logfilter_rewrite(char *line, size_t len) {
  static const char msg[] = "\"msg\":\"";
  const char *found = logfilter_find(line, len, msg, sizeof msg - 1);
  if (!found) return;
  char *p = line + (found - line) + (sizeof msg - 1);
  char *end = line + len;
  while (p < end && *p != '"') {
    if (*p == '\\') {
      p += 2;
      continue;
    }
    if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    p++;
  }
}

#endif
