/*
 * utf8.c - strict UTF-8 validation (see utf8.h).
 */
#include "core/utf8.h"

#include <stdint.h>

bool sl__utf8_valid(const void *bytes, size_t len, size_t *bad_at) {
  const uint8_t *s = bytes;
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t extra;
    uint32_t min, cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min = 0x10000, cp = c & 0x07;
    } else {
      goto bad;
    }
    if (extra > len - i - 1) goto bad;
    for (size_t k = 1; k <= extra; k++) {
      if ((s[i + k] & 0xc0) != 0x80) goto bad;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) goto bad;
    i += extra + 1;
  }
  return true;
bad:
  if (bad_at) *bad_at = i;
  return false;
}
