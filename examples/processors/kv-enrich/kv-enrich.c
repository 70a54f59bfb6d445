/*
 * kv-enrich.c - enrichment from a key-value bucket: looks up a key taken from each event
 * and adds the value it finds as metadata. Every event passes through, with metadata
 * `enriched` = `true` when the key was found and `false` when it was not; an event whose
 * key cannot be read, or a bucket that fails, fails the event.
 *
 * config:  bucket   the bucket to read (default `users`); the node needs a grant for it:
 *                   capabilities: {keyvalue: {users: memory}}
 *          field    take the key from this top-level string member of a JSON payload,
 *                   e.g. `user` for {"user":"ann",...} (default: the whole payload,
 *                   without surrounding white space)
 *          meta     the metadata key the value is stored under (default `user.name`)
 *          seed     KEY=VALUE pairs separated by `,` that init stores in the bucket
 *                   before the first event (default none): what a demo with a `memory`
 *                   bucket, which starts empty, needs. Values cannot contain `,`.
 *
 *     printf 'ann\nzoe\n' | sluice run examples/pipelines/kv-enrich-memory.yaml
 *     enriched=true user.name=Ann Lee ann
 *     enriched=false zoe
 */
#include "sluice.h"

static sluice_bucket bucket;
static const char *bucket_name;
static const char *field;
static const char *meta_key;

/* Stores each KEY=VALUE of `seed` ("ann=Ann Lee,bob=Bob Stone"). */
static int store_seed(sluice_init *init, const char *seed) {
  while (*seed != '\0') {
    const char *end = strchr(seed, ',');
    if (end == NULL) end = seed + strlen(seed);
    const char *equals = memchr(seed, '=', (size_t)(end - seed));
    if (equals == NULL || equals == seed)
      return sluice_init_fail(init, "seed: each entry must be KEY=VALUE, e.g. ann=Ann Lee");
    const char *key = sluice_cstr((sluice_bytes){(const uint8_t *)seed, (size_t)(equals - seed)});
    sluice_error err;
    if (key == NULL) return -1;
    if (!sluice_kv_set(bucket, key, equals + 1, (size_t)(end - equals - 1), &err))
      return sluice_init_fail(init, err.message);
    seed = *end == ',' ? end + 1 : end;
  }
  return 0;
}

static int setup(sluice_init *init) {
  bucket_name = sluice_config_or("bucket", "users");
  field = sluice_config_get("field");
  meta_key = sluice_config_or("meta", "user.name");
  sluice_error err;
  bucket = sluice_kv_open(bucket_name, &err);
  if (!bucket.open) {
    /* Not sluice_init_failf: it would pull printf into the module for one message. */
    sluice_buf message = {0};
    sluice_buf_append_str(&message, "bucket ");
    sluice_buf_append_str(&message, bucket_name);
    sluice_buf_append_str(&message, ": ");
    sluice_buf_append_str(&message, err.message);
    sluice_buf_append_byte(&message, '\0');
    return sluice_init_fail(init, message.ptr != NULL ? (const char *)message.ptr : err.message);
  }
  const char *seed = sluice_config_get("seed");
  return seed != NULL ? store_seed(init, seed) : 0;
}

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static sluice_bytes trim(sluice_bytes text) {
  while (text.len > 0 && is_space(text.ptr[0])) text.ptr++, text.len--;
  while (text.len > 0 && is_space(text.ptr[text.len - 1])) text.len--;
  return text;
}

/* The string value of top-level member `name` of a JSON object, found by a plain scan:
 * enough for flat events like {"user":"ann","action":"login"}. False when the member is
 * missing, is not a string, or holds an escape (which this example does not decode). */
static bool json_string_member(sluice_bytes json, const char *name, sluice_bytes *value) {
  size_t name_len = strlen(name);
  const uint8_t *end = json.ptr + json.len;
  for (const uint8_t *at = json.ptr; at + name_len + 2 <= end; at++) {
    if (at[0] != '"' || memcmp(at + 1, name, name_len) != 0 || at[name_len + 1] != '"') continue;
    const uint8_t *p = at + name_len + 2;
    while (p < end && is_space(*p)) p++;
    if (p == end || *p != ':') continue;
    p++;
    while (p < end && is_space(*p)) p++;
    if (p == end || *p != '"') return false;
    const uint8_t *start = ++p;
    while (p < end && *p != '"' && *p != '\\') p++;
    if (p == end || *p == '\\') return false;
    value->ptr = start;
    value->len = (size_t)(p - start);
    return true;
  }
  return false;
}

static int enrich(const sluice_event *in, sluice_out *out) {
  sluice_bytes key_bytes = trim(in->payload);
  if (field != NULL && !json_string_member(in->payload, field, &key_bytes))
    return sluice_fail(out, "the payload has no string member named by config `field`");
  if (key_bytes.len == 0) return sluice_fail(out, "the key is empty");
  const char *key = sluice_cstr(key_bytes);
  if (key == NULL) return -1;

  sluice_bytes value;
  bool found;
  sluice_error err;
  if (!sluice_kv_get(bucket, key, &value, &found, &err)) return sluice_fail(out, err.message);
  if (!sluice_forward(out, in)) return -1;
  if (!sluice_meta_set(out, "enriched", found ? "true" : "false")) return -1;
  if (found && !sluice_meta_set_bytes(out, sluice_str(meta_key), value)) return -1;
  return 0;
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(enrich)
