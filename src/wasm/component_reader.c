/*
 * component_reader.c - the bounds-checked cursor over component binaries (see
 * component_reader.h).
 */
#include "wasm/component_reader.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sl__comp_reader_init(sl_comp_reader *r, const uint8_t *bytes, size_t len) {
  memset(r, 0, sizeof *r);
  r->bytes = bytes;
  r->end = len;
}

bool sl__comp_fail(sl_comp_reader *r, const char *fmt, ...) {
  if (sl__comp_failed(r)) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->error, sizeof r->error, fmt, ap);
  va_end(ap);
  if (!r->error[0]) snprintf(r->error, sizeof r->error, "malformed");
  r->error_at = r->pos;
  return false;
}

uint8_t sl__comp_peek(sl_comp_reader *r) {
  if (sl__comp_failed(r) || r->pos >= r->end) return 0;
  return r->bytes[r->pos];
}

uint8_t sl__comp_u8(sl_comp_reader *r) {
  if (sl__comp_failed(r)) return 0;
  if (r->pos >= r->end) {
    sl__comp_fail(r, "unexpected end of section");
    return 0;
  }
  return r->bytes[r->pos++];
}

/* LEB128 with at most `bits` significant bits; unused bits of the last byte must be
 * zero (unsigned) or copies of the sign (signed), as the core spec requires. */
static uint64_t read_leb(sl_comp_reader *r, unsigned bits, bool is_signed) {
  uint64_t value = 0;
  unsigned shift = 0;
  size_t start = r->pos;
  for (;;) {
    if (sl__comp_failed(r)) return 0;
    if (r->pos >= r->end) {
      r->pos = start;
      sl__comp_fail(r, "integer runs past the end of its section");
      return 0;
    }
    uint8_t byte = r->bytes[r->pos++];
    value |= (uint64_t)(byte & 0x7f) << shift;
    shift += 7;
    if (shift >= bits) {
      /* The last byte allowed: no continuation, and the bits past `bits` are padding. */
      unsigned used = bits - (shift - 7);
      uint8_t padding = (uint8_t)((byte & 0x7f) >> used);
      bool sign = is_signed && ((byte >> (used - 1)) & 1);
      uint8_t expected = sign ? (uint8_t)(0x7f >> used) : 0;
      if ((byte & 0x80) || padding != expected) {
        r->pos = start;
        sl__comp_fail(r, "integer too large or overlong");
        return 0;
      }
      if (is_signed && sign) value |= ~UINT64_C(0) << bits;
      return value;
    }
    if (!(byte & 0x80)) {
      if (is_signed && (byte & 0x40)) value |= ~UINT64_C(0) << shift;
      return value;
    }
  }
}

uint32_t sl__comp_u32(sl_comp_reader *r) { return (uint32_t)read_leb(r, 32, false); }

int64_t sl__comp_s33(sl_comp_reader *r) { return (int64_t)read_leb(r, 33, true); }

uint64_t sl__comp_u64(sl_comp_reader *r) { return read_leb(r, 64, false); }

uint32_t sl__comp_count(sl_comp_reader *r, const char *what) {
  size_t at = r->pos;
  uint32_t count = sl__comp_u32(r);
  if (sl__comp_failed(r)) return 0;
  if (count > r->end - r->pos) {
    size_t left = r->end - r->pos;
    r->pos = at;
    sl__comp_fail(r, "%s: %u entries cannot fit in the %zu bytes left", what, count, left);
    return 0;
  }
  return count;
}


sl_comp_name sl__comp_name(sl_comp_reader *r) {
  sl_comp_name name = {"", 0};
  size_t at = r->pos;
  uint32_t len = sl__comp_u32(r);
  if (sl__comp_failed(r)) return name;
  if (len > r->end - r->pos) {
    r->pos = at;
    sl__comp_fail(r, "a name of %u bytes runs past the end of its section", len);
    return name;
  }
  if (!sl__utf8_valid(r->bytes + r->pos, len, NULL)) {
    r->pos = at;
    sl__comp_fail(r, "a name is not valid UTF-8");
    return name;
  }
  name.ptr = (const char *)r->bytes + r->pos;
  name.len = len;
  r->pos += len;
  return name;
}

void sl__comp_skip(sl_comp_reader *r, size_t n) {
  if (sl__comp_failed(r)) return;
  if (n > r->end - r->pos) {
    sl__comp_fail(r, "%zu bytes run past the end of the section", n);
    return;
  }
  r->pos += n;
}

bool sl__comp_name_is(sl_comp_name name, const char *text) {
  return strlen(text) == name.len && (name.len == 0 || memcmp(name.ptr, text, name.len) == 0);
}

const char *sl__comp_name_text(sl_comp_name name, char *buf, size_t cap) {
  if (cap == 0) return buf;
  size_t n = 0;
  for (uint32_t i = 0; i < name.len && n + 1 < cap; i++) {
    unsigned char c = (unsigned char)name.ptr[i];
    buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  buf[n] = '\0';
  if (n < name.len && cap >= 4) {
    /* Cut at a character boundary so the text stays UTF-8. */
    size_t at = cap - 4;
    while (at > 0 && ((unsigned char)buf[at] & 0xc0) == 0x80) at--;
    memcpy(buf + at, "...", 4);
  }
  return buf;
}
