/*
 * seqcheck.c - the numbered-event checker (seqcheck.h).
 */
#include "seqcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_seqcheck_init(sl_seqcheck *check, uint64_t expected) {
  memset(check, 0, sizeof *check);
  check->expected = expected;
  check->seen = calloc(expected + 1, 1);
  if (!check->seen) abort();
}

void sl_seqcheck_destroy(sl_seqcheck *check) {
  free(check->seen);
  check->seen = NULL;
}

void sl_seqcheck_add(sl_seqcheck *check, const void *payload, size_t len) {
  const char *p = payload;
  uint64_t n = 0;
  size_t i = 0;
  for (; i < len && p[i] >= '0' && p[i] <= '9' && i < 19; i++) n = n * 10 + (uint64_t)(p[i] - '0');
  check->received++;
  if (i == 0 || (i < len && p[i] != ' ' && p[i] != '\n' && p[i] != '\r')) {
    check->unparsable++;
    return;
  }
  if (n == 0 || n > check->expected) {
    check->out_of_range++;
    return;
  }
  if (check->seen[n]) check->duplicates++;
  if (check->seen[n] < 255) check->seen[n]++;
  if (n < check->largest) check->reordered++;
  if (n > check->largest) check->largest = n;
}

void sl_seqcheck_add_lines(sl_seqcheck *check, const char *text) {
  while (*text) {
    const char *end = strchr(text, '\n');
    size_t len = end ? (size_t)(end - text) : strlen(text);
    if (len) sl_seqcheck_add(check, text, len);
    text += len + (end ? 1 : 0);
  }
}

uint64_t sl_seqcheck_missing(const sl_seqcheck *check) {
  uint64_t missing = 0;
  for (uint64_t n = 1; n <= check->expected; n++) missing += check->seen[n] == 0;
  return missing;
}

const char *sl_seqcheck_report(const sl_seqcheck *check, char *buf, size_t size) {
  char first[96] = "";
  size_t used = 0, listed = 0;
  for (uint64_t n = 1; n <= check->expected && listed < 5; n++) {
    if (check->seen[n]) continue;
    int w = snprintf(first + used, sizeof first - used, "%s%llu", listed ? ", " : "",
                     (unsigned long long)n);
    if (w < 0 || (size_t)w >= sizeof first - used) break;
    used += (size_t)w;
    listed++;
  }
  uint64_t missing = sl_seqcheck_missing(check);
  snprintf(buf, size,
           "expected %llu, received %llu, missing %llu%s%s%s, duplicates %llu, reordered %llu"
           "%s",
           (unsigned long long)check->expected, (unsigned long long)check->received,
           (unsigned long long)missing, missing ? " (first: " : "", missing ? first : "",
           missing ? ")" : "", (unsigned long long)check->duplicates,
           (unsigned long long)check->reordered,
           check->unparsable || check->out_of_range ? ", plus unparsable or out-of-range events"
                                                    : "");
  return buf;
}

uint64_t sl_reliability_count(uint64_t ci, uint64_t full) {
  const char *mode = getenv("SLUICE_RELIABILITY");
  return mode && strcmp(mode, "full") == 0 ? full : ci;
}
