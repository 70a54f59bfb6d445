/*
 * component_reader.h - a bounds-checked cursor over a component binary, the one way the
 * component code reads bytes.
 *
 * Everything a component holds is untrusted input. The reader never reads past `end`
 * (the end of the current section, or of the binary), and its errors are sticky: the
 * first failed read records what was wrong and at which byte, and every later read
 * returns zero without moving, so a parser can read a whole entry and check once. Vector
 * lengths are capped by the bytes left (every element takes at least one byte), so no
 * count read from the input can make a loop or an allocation larger than the input.
 */
#ifndef SL_WASM_COMPONENT_READER_H
#define SL_WASM_COMPONENT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A string inside the binary: not NUL-terminated, valid UTF-8 (checked when read). */
typedef struct sl_comp_name {
  const char *ptr;
  uint32_t len;
} sl_comp_name;

typedef struct sl_comp_reader {
  const uint8_t *bytes; /* the whole binary: offsets in messages count from its start */
  size_t pos;
  size_t end;      /* reads stop here: the end of the current section or of the binary */
  size_t error_at; /* where the first error happened */
  char error[160]; /* what it was; empty while every read succeeded */
} sl_comp_reader;

/* A reader over bytes[0, len). */
void sl__comp_reader_init(sl_comp_reader *r, const uint8_t *bytes, size_t len);

static inline bool sl__comp_failed(const sl_comp_reader *r) { return r->error[0] != '\0'; }

/* Records an error at the current position (the first one wins); returns false. */
bool sl__comp_fail(sl_comp_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads one byte, or peeks at it without moving; 0 at the end (and, for reads, an error). */
uint8_t sl__comp_u8(sl_comp_reader *r);
uint8_t sl__comp_peek(sl_comp_reader *r);

/* An unsigned LEB128 of at most 32 bits. */
uint32_t sl__comp_u32(sl_comp_reader *r);

/* A signed LEB128 of at most 33 bits (how valtypes encode type indices). */
int64_t sl__comp_s33(sl_comp_reader *r);

/* An unsigned LEB128 of at most 64 bits (the limits of 64-bit memories and tables). */
uint64_t sl__comp_u64(sl_comp_reader *r);

/* A vector length: a u32 that must not exceed the bytes left, since every element takes
 * at least one. `what` names the vector in the error. */
uint32_t sl__comp_count(sl_comp_reader *r, const char *what);

/* A name: a u32 length and that many bytes of valid UTF-8. */
sl_comp_name sl__comp_name(sl_comp_reader *r);

/* Moves past `n` bytes (an error when fewer are left). */
void sl__comp_skip(sl_comp_reader *r, size_t n);

/* True when `name` is exactly the NUL-terminated `text`. */
bool sl__comp_name_is(sl_comp_name name, const char *text);

/* Copies `name` into `buf` as printable text: control characters become '?', and a name
 * too long for `buf` ends in "...". Returns buf. */
const char *sl__comp_name_text(sl_comp_name name, char *buf, size_t cap);

#endif
