/*
 * redact.c - masks sensitive fields in JSON payloads.
 *
 * Every object member whose key is one of the configured fields, at any depth, gets its
 * value (string, number, object, array, anything) replaced by the mask as a JSON string.
 * Everything else, whitespace included, is copied byte for byte, and a payload with
 * nothing to redact is passed on without any copy. A payload that is not valid JSON
 * fails with "invalid JSON at byte N", N being the 0-based offset of the first byte that
 * cannot be valid JSON (the payload length when the input ends too early).
 *
 * config:  fields   comma-separated member names (default `password,ssn,token`); keys are
 *                   compared after unescaping, so "pass\u0077ord" is redacted too
 *          mask     the replacement text (default `***`), written as a JSON string
 *
 *     sluice invoke redact.wasm --payload '{"user":"ann","password":"hunter2"}'
 *         ->  {"user":"ann","password":"***"}
 *
 * The scanner is a recursive-descent validator for RFC 8259 JSON (nesting is limited to
 * MAX_DEPTH levels). Byte sequences of 0x80 and above inside strings are passed through
 * without UTF-8 validation.
 */
#include "sluice.h"

#define MAX_DEPTH 256

/* Configuration, parsed once per instance by setup(). */
static struct {
  sluice_bytes *fields; /* names to redact, pointing into `names` */
  size_t field_count;
  size_t longest;       /* length of the longest name */
  char *names;          /* the `fields` config value, split in place */
  char *mask_json;      /* the mask as a JSON string literal, quotes included */
  size_t mask_json_len;
  uint8_t *key;         /* scratch for a decoded member name: longest + 4 bytes */
} redact;

/* The state of one scan over one payload. */
typedef struct scanner {
  const uint8_t *json;
  size_t len;
  size_t at;          /* the next byte to read */
  size_t error_at;    /* where the JSON went wrong, once `invalid` is set */
  bool invalid;
  bool too_deep;
  sluice_buf out;     /* the redacted payload, once something was redacted */
  size_t copied;      /* json[0, copied) is accounted for in `out` */
  size_t redactions;
} scanner;

static bool scan_value(scanner *s, int depth, bool may_redact);

/* ---- configuration ------------------------------------------------------------------ */

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Splits the comma-separated list in place; names are trimmed and empty ones skipped. */
static int parse_fields(sluice_init *init, const char *list) {
  redact.names = strdup(list);
  redact.fields = calloc(strlen(list) / 2 + 1, sizeof *redact.fields);
  if (redact.names == NULL || redact.fields == NULL) return sluice_init_fail(init, "out of memory");
  char *at = redact.names;
  for (;;) {
    char *comma = strchr(at, ',');
    char *end = comma != NULL ? comma : at + strlen(at);
    while (at < end && is_space((uint8_t)*at)) at++;
    while (end > at && is_space((uint8_t)end[-1])) end--;
    if (end > at) {
      sluice_bytes name = {(const uint8_t *)at, (size_t)(end - at)};
      redact.fields[redact.field_count++] = name;
      if (name.len > redact.longest) redact.longest = name.len;
    }
    if (comma == NULL) break;
    at = comma + 1;
  }
  redact.key = malloc(redact.longest + 4);
  return redact.key == NULL ? sluice_init_fail(init, "out of memory") : 0;
}

/* Writes `mask` as a JSON string literal: quotes, backslashes and control bytes escaped. */
static int encode_mask(sluice_init *init, const char *mask) {
  size_t len = strlen(mask);
  char *json = malloc(6 * len + 3); /* worst case: every byte becomes \u00XX */
  if (json == NULL) return sluice_init_fail(init, "out of memory");
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  json[n++] = '"';
  for (size_t i = 0; i < len; i++) {
    uint8_t c = (uint8_t)mask[i];
    if (c == '"' || c == '\\') {
      json[n++] = '\\';
      json[n++] = (char)c;
    } else if (c < 0x20) {
      memcpy(json + n, "\\u00", 4);
      json[n + 4] = hex[c >> 4];
      json[n + 5] = hex[c & 15];
      n += 6;
    } else {
      json[n++] = (char)c;
    }
  }
  json[n++] = '"';
  redact.mask_json = json;
  redact.mask_json_len = n;
  return 0;
}

static int setup(sluice_init *init) {
  if (parse_fields(init, sluice_config_or("fields", "password,ssn,token")) != 0) return -1;
  return encode_mask(init, sluice_config_or("mask", "***"));
}

static bool is_field(const uint8_t *key, size_t len) {
  for (size_t i = 0; i < redact.field_count; i++)
    if (redact.fields[i].len == len && memcmp(redact.fields[i].ptr, key, len) == 0) return true;
  return false;
}

/* ---- scanning ------------------------------------------------------------------------ */

/* Records the first error; always returns false so callers can `return invalid(s, at)`. */
static bool invalid(scanner *s, size_t at) {
  if (!s->invalid) {
    s->invalid = true;
    s->error_at = at;
  }
  return false;
}

/* The byte at s->at, or -1 at the end of the input. */
static int peek(const scanner *s) { return s->at < s->len ? s->json[s->at] : -1; }

static void skip_space(scanner *s) {
  while (s->at < s->len && is_space(s->json[s->at])) s->at++;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool skip_digits(scanner *s) {
  if (!is_digit(peek(s))) return invalid(s, s->at);
  while (is_digit(peek(s))) s->at++;
  return true;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool scan_number(scanner *s) {
  if (peek(s) == '-') s->at++;
  if (peek(s) == '0') {
    s->at++;
  } else if (!skip_digits(s)) {
    return false;
  }
  if (peek(s) == '.') {
    s->at++;
    if (!skip_digits(s)) return false;
  }
  if (peek(s) == 'e' || peek(s) == 'E') {
    s->at++;
    if (peek(s) == '+' || peek(s) == '-') s->at++;
    if (!skip_digits(s)) return false;
  }
  return true;
}

static bool scan_literal(scanner *s, const char *word) {
  for (size_t i = 0; word[i] != '\0'; i++, s->at++)
    if (peek(s) != (uint8_t)word[i]) return invalid(s, s->at);
  return true;
}

/* Four hex digits at s->at, advancing past them. */
static bool scan_hex4(scanner *s, uint32_t *value) {
  *value = 0;
  for (int i = 0; i < 4; i++, s->at++) {
    int c = peek(s);
    uint32_t digit;
    if (c >= '0' && c <= '9') digit = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') digit = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') digit = (uint32_t)(c - 'A' + 10);
    else return invalid(s, s->at);
    *value = *value << 4 | digit;
  }
  return true;
}

/* Decoded member names are collected up to `redact.longest` bytes; a longer name cannot
 * be a field, so the rest is only validated. */
typedef struct decoded {
  size_t len;
  bool too_long;
} decoded;

static void put_byte(decoded *name, uint8_t byte) {
  if (name == NULL || name->too_long) return;
  if (name->len == redact.longest) {
    name->too_long = true;
    return;
  }
  redact.key[name->len++] = byte;
}

static void put_code_point(decoded *name, uint32_t cp) {
  if (cp < 0x80) {
    put_byte(name, (uint8_t)cp);
  } else if (cp < 0x800) {
    put_byte(name, (uint8_t)(0xC0 | cp >> 6));
    put_byte(name, (uint8_t)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    put_byte(name, (uint8_t)(0xE0 | cp >> 12));
    put_byte(name, (uint8_t)(0x80 | (cp >> 6 & 0x3F)));
    put_byte(name, (uint8_t)(0x80 | (cp & 0x3F)));
  } else {
    put_byte(name, (uint8_t)(0xF0 | cp >> 18));
    put_byte(name, (uint8_t)(0x80 | (cp >> 12 & 0x3F)));
    put_byte(name, (uint8_t)(0x80 | (cp >> 6 & 0x3F)));
    put_byte(name, (uint8_t)(0x80 | (cp & 0x3F)));
  }
}

/* A string starting at s->at (its opening quote). When `name` is not NULL the string is a
 * member name and its unescaped bytes are decoded into redact.key. */
static bool scan_string(scanner *s, decoded *name) {
  s->at++;
  for (;;) {
    int c = peek(s);
    if (c == '"') {
      s->at++;
      return true;
    }
    if (c < 0x20) return invalid(s, s->at); /* the end of input, or a raw control byte */
    s->at++;
    if (c != '\\') {
      put_byte(name, (uint8_t)c);
      continue;
    }
    int escape = peek(s);
    s->at++;
    switch (escape) {
    case '"': case '\\': case '/': put_byte(name, (uint8_t)escape); break;
    case 'b': put_byte(name, '\b'); break;
    case 'f': put_byte(name, '\f'); break;
    case 'n': put_byte(name, '\n'); break;
    case 'r': put_byte(name, '\r'); break;
    case 't': put_byte(name, '\t'); break;
    case 'u': {
      uint32_t cp, low;
      if (!scan_hex4(s, &cp)) return false;
      /* A high surrogate followed by an escaped low one is one code point; a lone
       * surrogate is valid JSON syntax and is kept as its three-byte form. */
      if (cp >= 0xD800 && cp <= 0xDBFF && s->at + 1 < s->len && s->json[s->at] == '\\' &&
          s->json[s->at + 1] == 'u') {
        size_t pair_at = s->at;
        s->at += 2;
        if (!scan_hex4(s, &low)) return false;
        if (low >= 0xDC00 && low <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        else s->at = pair_at; /* not a pair: the next escape is read on its own */
      }
      put_code_point(name, cp);
      break;
    }
    default:
      return invalid(s, s->at - 1);
    }
  }
}

/* Replaces json[start, end) with the mask in the output. */
static bool replace(scanner *s, size_t start, size_t end) {
  if (!sluice_buf_append(&s->out, s->json + s->copied, start - s->copied) ||
      !sluice_buf_append(&s->out, redact.mask_json, redact.mask_json_len))
    return false;
  s->copied = end;
  s->redactions++;
  return true;
}

static bool scan_object(scanner *s, int depth, bool may_redact) {
  s->at++;
  skip_space(s);
  if (peek(s) == '}') {
    s->at++;
    return true;
  }
  for (;;) {
    skip_space(s);
    if (peek(s) != '"') return invalid(s, s->at);
    decoded name = {0, false};
    if (!scan_string(s, &name)) return false;
    bool redacted = may_redact && !name.too_long && is_field(redact.key, name.len);
    skip_space(s);
    if (peek(s) != ':') return invalid(s, s->at);
    s->at++;
    skip_space(s);
    size_t value_start = s->at;
    /* Inside a value that is replaced as a whole, nothing more is redacted. */
    if (!scan_value(s, depth + 1, may_redact && !redacted)) return false;
    if (redacted && !replace(s, value_start, s->at)) return false;
    skip_space(s);
    int c = peek(s);
    s->at++;
    if (c == '}') return true;
    if (c != ',') return invalid(s, s->at - 1);
  }
}

static bool scan_array(scanner *s, int depth, bool may_redact) {
  s->at++;
  skip_space(s);
  if (peek(s) == ']') {
    s->at++;
    return true;
  }
  for (;;) {
    if (!scan_value(s, depth + 1, may_redact)) return false;
    skip_space(s);
    int c = peek(s);
    s->at++;
    if (c == ']') return true;
    if (c != ',') return invalid(s, s->at - 1);
  }
}

/* `depth` counts the objects and arrays around the value. */
static bool scan_value(scanner *s, int depth, bool may_redact) {
  skip_space(s);
  int c = peek(s);
  if ((c == '{' || c == '[') && depth == MAX_DEPTH) {
    s->too_deep = true;
    return invalid(s, s->at);
  }
  switch (c) {
  case '{': return scan_object(s, depth, may_redact);
  case '[': return scan_array(s, depth, may_redact);
  case '"': return scan_string(s, NULL);
  case 't': return scan_literal(s, "true");
  case 'f': return scan_literal(s, "false");
  case 'n': return scan_literal(s, "null");
  default: return scan_number(s); /* reports the byte when it cannot start a number */
  }
}

static int redact_fields(const sluice_event *in, sluice_out *out) {
  scanner s = {.json = in->payload.ptr, .len = in->payload.len};
  bool valid = scan_value(&s, 0, true);
  if (valid) {
    skip_space(&s);
    if (s.at < s.len) valid = invalid(&s, s.at); /* trailing bytes after the value */
  }
  if (!valid) {
    if (!s.invalid) return -1; /* out of memory, reported by the SDK */
    if (s.too_deep)
      return sluice_failf(out, "JSON nested deeper than %d levels at byte %zu", MAX_DEPTH,
                          s.error_at);
    return sluice_failf(out, "invalid JSON at byte %zu", s.error_at);
  }
  if (s.redactions == 0) return sluice_forward(out, in) ? 0 : -1;
  if (!sluice_buf_append(&s.out, s.json + s.copied, s.len - s.copied)) return -1;
  return sluice_emit_ref(out, s.out.ptr, s.out.len) ? 0 : -1;
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(redact_fields)
