/*
 * args.c - parsing the size and duration arguments commands share.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

bool sl_parse_size(const char *text, uint64_t *bytes) {
  static const struct {
    const char *suffix;
    uint64_t factor;
  } units[] = {{"", 1},           {"B", 1},        {"KiB", 1u << 10}, {"K", 1u << 10},
               {"MiB", 1u << 20}, {"M", 1u << 20}, {"GiB", 1u << 30}, {"G", 1u << 30}};
  char *end;
  errno = 0;
  unsigned long long n = strtoull(text, &end, 10);
  if (end == text || errno || text[0] == '-') return false;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcasecmp(end, units[i].suffix) == 0) {
      if (n > UINT64_MAX / units[i].factor) return false;
      *bytes = n * units[i].factor;
      return true;
    }
  }
  return false;
}

bool sl_parse_millis(const char *text, uint32_t *ms) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(text, &end, 10);
  if (end == text || errno || text[0] == '-') return false;
  if (strcmp(end, "s") == 0)
    n *= 1000;
  else if (*end && strcmp(end, "ms") != 0)
    return false;
  if (n == 0 || n > UINT32_MAX) return false;
  *ms = (uint32_t)n;
  return true;
}

int sl_exit_code_for(sl_status status) {
  switch (status) {
  case SL_OK:
    return SL_EXIT_OK;
  case SL_INVALID:
  case SL_BAD_MODULE:
  case SL_NOT_FOUND:
  case SL_INIT: /* a processor refusing its configuration */
  case SL_CONFIG:
    return SL_EXIT_USAGE;
  default:
    return SL_EXIT_FAILURE;
  }
}
