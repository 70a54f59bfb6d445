/*
 * sluice.h - write a Sluice processor in C: one .c file, this header, one macro.
 *
 *     #include <ctype.h>
 *     #include "sluice.h"
 *
 *     static int upper(const sluice_event *in, sluice_out *out) {
 *       uint8_t *payload = sluice_emit_alloc(out, in->payload.len);
 *       if (payload == NULL) return -1;
 *       for (size_t i = 0; i < in->payload.len; i++)
 *         payload[i] = (uint8_t)toupper(in->payload.ptr[i]);
 *       return 0;
 *     }
 *     SLUICE_PROCESSOR(upper)
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -Isdk/c upper.c -o upper.wasm
 *
 * A processor turns one input event into zero (drop), one (transform) or many (fan-out)
 * output events, or fails it with a message. The host calls it once per event; nothing
 * runs concurrently inside one instance, and an instance may live for millions of events.
 *
 * Memory, the one rule to know: everything the SDK hands you or allocates for you during
 * a call (the input event, emitted payloads and metadata, sluice_alloc, sluice_buf, and
 * every value a capability call returns) lives in a per-call arena that is released in
 * one step after the host has copied the result out. You never free any of it, nothing
 * leaks from one event to the next, and you must not keep pointers to it across calls:
 * copy into malloc'd memory what must outlive the event. "The call" is init as well as
 * process: what a capability returns during init is valid until init returns, so copy
 * what the instance keeps. Configuration (sluice_config_get) lives as long as the
 * instance. Output functions return false (or NULL) when memory runs out; the call then
 * fails with "out of memory" even if the processor ignores the return value.
 *
 * Capabilities (section 6): logging (sluice_log), the node's live configuration
 * (sluice_config), key-value buckets (sluice_kv_*) and outgoing HTTP (sluice_http_*).
 * Each is a Wasm import, and a module imports only the functions it calls: one that never
 * calls sluice_kv_open imports no key-value function. Key-value and HTTP need a grant in
 * the pipeline file (`capabilities:`), and Sluice refuses to load a module that imports
 * one its node was not granted; docs/capabilities/ has a page for each.
 *
 * Logging: sluice_log(SLUICE_LOG_INFO, "context", "message") goes through wasi:logging,
 * with a level. Lines written to stderr or stdout (fprintf, printf) work too; the host
 * turns them into log lines tagged with the node id. Files and sockets are not available
 * (WASI calls for them return an error).
 *
 * This header implements the canonical-ABI lowering of the world in wit/processor.wit
 * (exports memory, cabi_realloc, process, cabi_post_process, init, cabi_post_init, and
 * the lowering of the capability imports). Everything in it is static, so include it
 * from exactly one .c file: the processor.
 *
 * Sections: 1. types  2. reading the input  3. emitting output  4. building payloads
 *           5. configuration and init  6. capabilities: logging, key-value, HTTP
 *           7. SLUICE_PROCESSOR / SLUICE_INIT
 *           8. implementation (not API: names with a double underscore are private)
 *           9. implementation of the capabilities
 */
#ifndef SLUICE_H
#define SLUICE_H

#if !defined(__wasm32__)
#error "sluice.h builds WebAssembly processors: compile with clang --target=wasm32-wasi"
#endif

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything is static (the processor is one translation unit) and may go unused. */
#define SLUICE__API static __attribute__((unused))

/* ---------------------------------------------------------------------------------------
 * 1. Types
 *
 * On wasm32 these structs have exactly the canonical-ABI layout of the WIT types
 * (`list<u8>`, `tuple<string, string>`, `event`), so the SDK lifts and lowers events
 * without converting them.
 */

/* Bytes that are not NUL-terminated. Metadata keys and values are UTF-8. */
typedef struct sluice_bytes {
  const uint8_t *ptr;
  size_t len;
} sluice_bytes;

/* One metadata pair. */
typedef struct sluice_meta {
  sluice_bytes key;
  sluice_bytes value;
} sluice_meta;

/* One record: payload bytes plus ordered metadata (duplicate keys are possible). */
typedef struct sluice_event {
  sluice_bytes payload;
  const sluice_meta *meta;
  size_t meta_count;
} sluice_event;

_Static_assert(sizeof(sluice_bytes) == 8, "sluice_bytes must be the ABI's list<u8>");
_Static_assert(sizeof(sluice_meta) == 16, "sluice_meta must be the ABI's tuple<string,string>");
_Static_assert(sizeof(sluice_event) == 16, "sluice_event must be the ABI's event record");

/* The result of one call, under construction. Only the functions below touch its fields. */
typedef struct sluice_out {
  const sluice_event *input;
  sluice_event *events;    /* the ABI's list<event>, in the arena */
  uint32_t *meta_capacity; /* per event: 0 = metadata still borrowed from the input */
  size_t count;
  size_t capacity;
  const char *error; /* set by sluice_fail: the call returns err(error) */
  size_t error_len;
} sluice_out;

/* The context of an init call, for reporting a configuration error. */
typedef struct sluice_init {
  const char *error;
  size_t error_len;
} sluice_init;

/* A payload built piece by piece in the arena. Zero-initialise it: `sluice_buf b = {0};` */
typedef struct sluice_buf {
  uint8_t *ptr;
  size_t len;
  size_t cap;
} sluice_buf;

/* The processor function: fill `out`, return 0 for ok or non-zero for err (with the message
 * given to sluice_fail). `in` and everything it points to are borrowed for the call. */
typedef int (*sluice_process_fn)(const sluice_event *in, sluice_out *out);

/* The optional init function: read configuration with sluice_config_get, return 0 to accept
 * it or `sluice_init_fail(init, "...")` to refuse it (the node then does not start). */
typedef int (*sluice_init_fn)(sluice_init *init);

/* ---------------------------------------------------------------------------------------
 * 2. Reading the input
 */

/* A NUL-terminated string as bytes (borrowed, not copied). */
SLUICE__API sluice_bytes sluice_str(const char *s) {
  sluice_bytes bytes = {(const uint8_t *)s, strlen(s)};
  return bytes;
}

/* True when `bytes` holds exactly the characters of the C string `s`. */
SLUICE__API bool sluice_bytes_equal(sluice_bytes bytes, const char *s) {
  size_t len = strlen(s);
  return bytes.len == len && (len == 0 || memcmp(bytes.ptr, s, len) == 0);
}

/* The value of the first metadata pair whose key is `key`, or NULL when there is none.
 * The pointer is borrowed from `event` and is valid as long as the event is. */
SLUICE__API const sluice_bytes *sluice_meta_get(const sluice_event *event, const char *key) {
  for (size_t i = 0; i < event->meta_count; i++)
    if (sluice_bytes_equal(event->meta[i].key, key)) return &event->meta[i].value;
  return NULL;
}

/* ---------------------------------------------------------------------------------------
 * 3. Emitting output
 *
 * Every emitted event starts with the input's metadata, as a transform expects; change
 * it with the sluice_meta_* functions, which act on the event emitted last. Events are
 * returned to the host in the order they were emitted. Emitting nothing drops the input.
 */

/* Appends an event whose payload is a copy of `payload` (`len` bytes). */
SLUICE__API bool sluice_emit(sluice_out *out, const void *payload, size_t len);

/* Appends an event whose payload is `payload` itself, not a copy. The bytes must stay
 * valid until the call returns to the host: the input's bytes, static data, sluice_alloc
 * memory and sluice_buf contents qualify; a local array on the stack does not. */
SLUICE__API bool sluice_emit_ref(sluice_out *out, const void *payload, size_t len);

/* Appends an event with a `len`-byte payload for the caller to fill in, and returns it
 * (NULL when out of memory). Writing the output in place saves a copy. */
SLUICE__API uint8_t *sluice_emit_alloc(sluice_out *out, size_t len);

/* Appends the input event unchanged, payload and metadata, without copying anything. */
SLUICE__API bool sluice_forward(sluice_out *out, const sluice_event *in);

/* Sets metadata `key` of the last emitted event to `value` (both copied): replaces the
 * first pair with that key, or appends a pair. False when out of memory or when no event
 * has been emitted yet (that misuse also fails the call, so it cannot go unnoticed). */
SLUICE__API bool sluice_meta_set(sluice_out *out, const char *key, const char *value);
SLUICE__API bool sluice_meta_set_bytes(sluice_out *out, sluice_bytes key, sluice_bytes value);

/* Removes every pair with key `key` from the last emitted event. */
SLUICE__API bool sluice_meta_remove(sluice_out *out, const char *key);

/* Removes all metadata from the last emitted event. */
SLUICE__API bool sluice_meta_clear(sluice_out *out);

/* Fails the call: the host receives err(message) and the input event goes to the node's
 * `.errors` output; events emitted so far are discarded. `message` is copied. Returns -1
 * so a processor can `return sluice_fail(out, "...");`. */
SLUICE__API int sluice_fail(sluice_out *out, const char *message);

/* sluice_fail with a printf format (pulls printf into the module, ~20 KiB). */
SLUICE__API int sluice_failf(sluice_out *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------------------
 * 4. Building payloads
 */

/* `size` bytes of arena memory, aligned to 8, valid until the call returns to the host
 * (never free it). NULL when out of memory or when `size` is 0. */
SLUICE__API void *sluice_alloc(size_t size);

/* Appends `len` bytes to `buf`, growing it in the arena. Emit the result with
 * sluice_emit_ref(out, buf.ptr, buf.len): no further copy is needed. False when out of
 * memory. */
SLUICE__API bool sluice_buf_append(sluice_buf *buf, const void *bytes, size_t len);

/* sluice_buf_append for a NUL-terminated string and for one byte. */
SLUICE__API bool sluice_buf_append_str(sluice_buf *buf, const char *s) {
  return sluice_buf_append(buf, s, strlen(s));
}
SLUICE__API bool sluice_buf_append_byte(sluice_buf *buf, uint8_t byte) {
  return sluice_buf_append(buf, &byte, 1);
}

/* A NUL-terminated copy of `bytes` in the arena, for the functions that take a C string
 * (a key-value key taken from the payload, a URL). NULL when out of memory. */
SLUICE__API const char *sluice_cstr(sluice_bytes bytes);

/* ---------------------------------------------------------------------------------------
 * 5. Configuration and init
 *
 * The node's `config` map from the pipeline file reaches the processor once, before the
 * first event. The SDK keeps a copy for the life of the instance, in init and in every
 * call, whether or not the processor declares an init function.
 */

/* The value of configuration key `key` as a NUL-terminated string owned by the SDK and
 * valid for the life of the instance, or NULL when the key is not configured. */
SLUICE__API const char *sluice_config_get(const char *key);

/* sluice_config_get, with `fallback` (borrowed, returned as is) when the key is absent. */
SLUICE__API const char *sluice_config_or(const char *key, const char *fallback);

/* Refuses the configuration with `message` (copied); returns -1 for `return`. */
SLUICE__API int sluice_init_fail(sluice_init *init, const char *message);
SLUICE__API int sluice_init_failf(sluice_init *init, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* The same configuration read through the wasi:config import instead of the copy init
 * received: the value of `key` as a NUL-terminated string in the arena (valid until the
 * call returns), or NULL when the key is not configured (or the host reports an error,
 * which Sluice never does). In Sluice both give the same answer; sluice_config is the
 * portable way (a component host without Sluice's init export still provides
 * wasi:config/store), and it costs a host call, so read it once in init when you can.
 * sluice_config_get imports nothing. */
SLUICE__API const char *sluice_config(const char *key);

/* Every configuration pair through wasi:config, in the pipeline file's order, in the
 * arena. False when the host reports an error (Sluice never does). */
SLUICE__API bool sluice_config_all(const sluice_meta **pairs, size_t *count);

/* ---------------------------------------------------------------------------------------
 * 6. Capabilities
 *
 * Each function below calls a host import; the module imports it only if the processor
 * calls it. Results (values, keys, response bodies, error messages) are arena memory
 * under the rule at the top of this file: valid until the current call (process or
 * init) returns. Functions that can fail return false and, when `err` is not NULL, fill
 * it in; `err` is never needed for success.
 *
 * 6a. Logging (wasi:logging/logging, always granted)
 */

/* The wasi:logging levels. The node's `capabilities: {logging: {level: L}}` (default
 * info) drops the lines below L before they reach the log. */
typedef enum sluice_log_level {
  SLUICE_LOG_TRACE,
  SLUICE_LOG_DEBUG,
  SLUICE_LOG_INFO,
  SLUICE_LOG_WARN,
  SLUICE_LOG_ERROR,
  SLUICE_LOG_CRITICAL,
} sluice_log_level;

/* Logs `message` at `level`; `context` (may be NULL or "") groups related lines, e.g. the
 * processor's name or the subsystem. The host tags the line with the node id. */
SLUICE__API void sluice_log(sluice_log_level level, const char *context, const char *message);

/* sluice_log with a printf format (pulls printf into the module, ~20 KiB). */
SLUICE__API void sluice_logf(sluice_log_level level, const char *context, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* What went wrong in a key-value or HTTP call. `code` is one of the sluice_kv_error_code
 * or sluice_http_error_code values (the cases of the WIT `error` variants); `message` is
 * the case's name, followed by ": " and the host's explanation when it gives one, e.g.
 * "denied: http://10.0.0.1:80 is not in allowed_hosts". NUL-terminated, in the arena. */
typedef struct sluice_error {
  int code;
  const char *message;
} sluice_error;

/* ---------------------------------------------------------------------------------------
 * 6b. Key-value buckets (wasi:keyvalue/store and atomics; granted per bucket with
 *     `capabilities: {keyvalue: {NAME: memory | local | "redis://HOST:PORT/DB"}}`)
 *
 * Open a bucket once, in init, and keep it for the instance's life: a bucket is a small
 * handle, not memory, so the arena rule does not apply to it. All the instances and
 * workers of a pipeline share a bucket; increment is atomic across all of them. Keys are
 * strings; values are bytes (a counter's value is its decimal text, e.g. "42").
 */

/* The cases of wasi:keyvalue's `error`. */
typedef enum sluice_kv_error_code {
  SLUICE_KV_NO_SUCH_STORE = 0, /* the grant names no bucket of that name */
  SLUICE_KV_ACCESS_DENIED = 1,
  SLUICE_KV_OTHER = 2, /* the backend failed (connection, disk, not a number, ...) */
} sluice_kv_error_code;

typedef struct sluice_bucket {
  uint32_t handle; /* the host's handle, per instance */
  bool open;       /* false when sluice_kv_open failed or after sluice_kv_close */
} sluice_bucket;

/* Opens bucket `name`; `.open` is false when it failed (see `err`). */
SLUICE__API sluice_bucket sluice_kv_open(const char *name, sluice_error *err);

/* Releases the handle (the bucket and its data stay). Optional: the instance's handles go
 * away with it. */
SLUICE__API void sluice_kv_close(sluice_bucket *bucket);

/* Reads `key`. Found: `*value` is the value (arena) and `*found` true; absent: `*value` is
 * {NULL, 0} and `*found` false (`found` may be NULL). False only when the call failed. */
SLUICE__API bool sluice_kv_get(sluice_bucket bucket, const char *key, sluice_bytes *value,
                               bool *found, sluice_error *err);

/* Stores `len` bytes at `key`, replacing any earlier value. */
SLUICE__API bool sluice_kv_set(sluice_bucket bucket, const char *key, const void *value, size_t len,
                               sluice_error *err);

/* Removes `key`; succeeds when it was absent. */
SLUICE__API bool sluice_kv_delete(sluice_bucket bucket, const char *key, sluice_error *err);

/* `*exists` tells whether `key` has a value. */
SLUICE__API bool sluice_kv_exists(sluice_bucket bucket, const char *key, bool *exists,
                                  sluice_error *err);

/* One page of keys, in no particular order. */
typedef struct sluice_kv_keys {
  const sluice_bytes *keys; /* UTF-8, not NUL-terminated */
  size_t count;
  const char *cursor; /* pass it to the next call; NULL when this was the last page */
} sluice_kv_keys;

/* A page of keys: `cursor` NULL for the first page, then the previous page's cursor. */
SLUICE__API bool sluice_kv_list_keys(sluice_bucket bucket, const char *cursor, sluice_kv_keys *page,
                                     sluice_error *err);

/* Adds `delta` to the counter at `key` (an absent key counts as 0) and sets `*result`
 * (may be NULL) to the new value, atomically across every instance and worker. Fails
 * with SLUICE_KV_OTHER when the value there is not a decimal integer. */
SLUICE__API bool sluice_kv_increment(sluice_bucket bucket, const char *key, int64_t delta,
                                     int64_t *result, sluice_error *err);

/* ---------------------------------------------------------------------------------------
 * 6c. Outgoing HTTP (sluice:processor/outgoing-http; granted with
 *     `capabilities: {http: {allowed_hosts: ["api.example.com:443"]}}`)
 *
 * One call sends a whole request and returns the whole response, after the redirects the
 * grant allows. Headers the grant configures for the host (secrets) are added by the host
 * and never visible here. Any status is a response, 404 and 500 included: the call fails
 * only when there is no response.
 */

/* The cases of outgoing-http's `error`. */
typedef enum sluice_http_error_code {
  SLUICE_HTTP_DENIED = 0,          /* the grant does not allow the target */
  SLUICE_HTTP_INVALID_REQUEST = 1, /* unparsable URL, unknown method, bad header */
  SLUICE_HTTP_TIMEOUT = 2,         /* no complete response within the grant's timeout */
  SLUICE_HTTP_TOO_LARGE = 3,       /* a body exceeds the grant's caps */
  SLUICE_HTTP_FAILED = 4,          /* name resolution, connection, TLS, protocol */
} sluice_http_error_code;

/* A request; everything is borrowed for the call. Zero-initialise what you leave out. */
typedef struct sluice_http_request {
  const char *method;         /* "GET" (when NULL), "POST", "PUT", "PATCH", "DELETE", "HEAD" */
  const char *url;            /* absolute, http:// or https:// */
  const sluice_meta *headers; /* name/value pairs, e.g. {sluice_str("accept"), ...} */
  size_t header_count;
  sluice_bytes body;
} sluice_http_request;

/* A response, in the arena. */
typedef struct sluice_http_response {
  uint16_t status;
  const sluice_meta *headers; /* names as the server sent them */
  size_t header_count;
  sluice_bytes body;
} sluice_http_response;

/* Sends `request` and fills `response`. False when no response came (see `err`). */
SLUICE__API bool sluice_http_send(const sluice_http_request *request,
                                  sluice_http_response *response, sluice_error *err);

/* GET `url`. */
SLUICE__API bool sluice_http_get(const char *url, sluice_http_response *response,
                                 sluice_error *err);

/* POST `len` bytes of `body` to `url` with header content-type `content_type` (none
 * when NULL). */
SLUICE__API bool sluice_http_post(const char *url, const char *content_type, const void *body,
                                  size_t len, sluice_http_response *response, sluice_error *err);

/* The value of the response's first header named `name` (ASCII case-insensitive), or
 * NULL. */
SLUICE__API const sluice_bytes *sluice_http_header(const sluice_http_response *response,
                                                   const char *name);

/* ---------------------------------------------------------------------------------------
 * 7. Declaring the processor
 *
 * SLUICE_PROCESSOR(fn) defines the module's exports and must appear exactly once, at file
 * scope, after `fn` (a sluice_process_fn). SLUICE_INIT(fn) is optional, at file scope
 * after `fn` (a sluice_init_fn), which then runs once per instance after the
 * configuration has been stored. Neither needs a semicolon.
 *
 * `init` is exported even without SLUICE_INIT, so sluice_config_get always works.
 * cabi_post_process and cabi_post_init release the call's arena. The ABI lets a host
 * skip them; Sluice never does, and a host that did would see the arena grow.
 */
#define SLUICE_PROCESSOR(fn)                                                                       \
  __attribute__((export_name("cabi_realloc"))) void *sluice__export_realloc(                       \
      void *old_ptr, size_t old_size, size_t align, size_t new_size) {                             \
    return sluice__realloc(old_ptr, old_size, align, new_size);                                    \
  }                                                                                                \
  __attribute__((export_name("process"))) void *sluice__export_process(                            \
      const uint8_t *payload, size_t payload_len, const sluice_meta *meta, size_t meta_count) {    \
    return sluice__process((fn), payload, payload_len, meta, meta_count);                          \
  }                                                                                                \
  __attribute__((export_name("cabi_post_process"))) void sluice__export_post_process(              \
      void *result) {                                                                              \
    (void)result;                                                                                  \
    sluice__arena_reset();                                                                         \
  }                                                                                                \
  __attribute__((export_name("init"))) void *sluice__export_init(const sluice_meta *config,        \
                                                                 size_t config_count) {            \
    return sluice__init(config, config_count);                                                     \
  }                                                                                                \
  __attribute__((export_name("cabi_post_init"))) void sluice__export_post_init(void *result) {     \
    (void)result;                                                                                  \
    sluice__arena_reset();                                                                         \
  }

#define SLUICE_INIT(fn) static sluice_init_fn sluice__init_hook = (fn);

/* ---------------------------------------------------------------------------------------
 * 8. Implementation
 *
 * The arena is a list of malloc'd chunks. cabi_realloc allocates from it, so the host's
 * copy of the input lands there too; cabi_post_process and cabi_post_init release it all,
 * keeping one standard chunk so a steady stream of small events never calls malloc.
 * Allocations larger than a quarter chunk get a chunk of their own, freed at the reset.
 */

#define SLUICE__CHUNK_SIZE ((size_t)64 * 1024)
#define SLUICE__ALIGN ((size_t)8)

typedef struct sluice__chunk {
  struct sluice__chunk *next;
  size_t size; /* bytes in data[] */
  size_t used;
  _Alignas(SLUICE__ALIGN) uint8_t data[];
} sluice__chunk;

static struct {
  sluice__chunk *head; /* the chunk small allocations come from; then the others */
  uint8_t *last;       /* start of the latest allocation in head, which may grow in place */
  bool out_of_memory;  /* an allocation failed during this call */
} sluice__arena;

/* Where zero-length allocations point: aligned, never written, never freed. */
static _Alignas(SLUICE__ALIGN) uint8_t sluice__empty[SLUICE__ALIGN];

/* The tentative definition SLUICE_INIT completes; NULL when the processor has no init. */
static sluice_init_fn sluice__init_hook;

/* The configuration: `count` pairs of NUL-terminated strings, malloc'd, instance-long. */
static struct {
  char **pairs; /* key0, value0, key1, value1, ... */
  size_t count;
} sluice__config;

/* The result area the ABI returns a pointer to: result<list<event>, string>. */
static struct {
  uint8_t discriminant; /* 0 ok, 1 err */
  const void *ptr;      /* ok: the events; err: the message */
  size_t len;
} sluice__result;
_Static_assert(offsetof(__typeof__(sluice__result), ptr) == 4, "result payload at offset 4");
_Static_assert(sizeof(sluice__result) == 12, "result area is 12 bytes");

static sluice_out sluice__out;

static const char sluice__oom[] = "out of memory";

SLUICE__API uintptr_t sluice__align_up(uintptr_t value, size_t align) {
  return (value + (align - 1)) & ~(uintptr_t)(align - 1);
}

SLUICE__API void *sluice__arena_alloc(size_t size, size_t align) {
  if (size == 0) return sluice__empty;
  if (align < SLUICE__ALIGN) align = SLUICE__ALIGN;
  if ((align & (align - 1)) != 0 || size > SIZE_MAX / 4) goto fail;

  sluice__chunk *head = sluice__arena.head;
  if (head != NULL) {
    uintptr_t start = sluice__align_up((uintptr_t)head->data + head->used, align);
    if (start + size <= (uintptr_t)head->data + head->size) {
      head->used = start + size - (uintptr_t)head->data;
      sluice__arena.last = (uint8_t *)start;
      return (void *)start;
    }
  }

  bool own_chunk = size > SLUICE__CHUNK_SIZE / 4;
  size_t chunk_size = own_chunk ? size + align : SLUICE__CHUNK_SIZE;
  sluice__chunk *chunk = malloc(sizeof(sluice__chunk) + chunk_size);
  if (chunk == NULL) goto fail;
  chunk->size = chunk_size;
  uintptr_t start = sluice__align_up((uintptr_t)chunk->data, align);
  chunk->used = start + size - (uintptr_t)chunk->data;
  if (own_chunk && head != NULL) {
    /* Behind the head, so the head's free space keeps serving small allocations. */
    chunk->next = head->next;
    head->next = chunk;
  } else {
    chunk->next = head;
    sluice__arena.head = chunk;
    sluice__arena.last = (uint8_t *)start;
  }
  return (void *)start;

fail:
  sluice__arena.out_of_memory = true;
  return NULL;
}

/* cabi_realloc: the canonical ABI allocates (old_ptr == NULL) and never shrinks, but
 * every case is handled. The latest allocation grows in place when the head has room. */
SLUICE__API void *sluice__realloc(void *old_ptr, size_t old_size, size_t align, size_t new_size) {
  if (old_ptr == NULL || old_ptr == sluice__empty || old_size == 0)
    return sluice__arena_alloc(new_size, align);
  if (new_size <= old_size) return old_ptr;
  sluice__chunk *head = sluice__arena.head;
  if ((uint8_t *)old_ptr == sluice__arena.last && new_size <= SIZE_MAX / 4) {
    size_t offset = (size_t)((uint8_t *)old_ptr - head->data);
    if (offset + new_size <= head->size) {
      head->used = offset + new_size;
      return old_ptr;
    }
  }
  void *new_ptr = sluice__arena_alloc(new_size, align);
  if (new_ptr != NULL) memcpy(new_ptr, old_ptr, old_size);
  return new_ptr;
}

SLUICE__API void sluice__arena_reset(void) {
  sluice__chunk *kept = NULL;
  sluice__chunk *chunk = sluice__arena.head;
  while (chunk != NULL) {
    sluice__chunk *next = chunk->next;
    if (kept == NULL && chunk->size == SLUICE__CHUNK_SIZE) {
      kept = chunk;
    } else {
      free(chunk);
    }
    chunk = next;
  }
  if (kept != NULL) {
    kept->next = NULL;
    kept->used = 0;
  }
  sluice__arena.head = kept;
  sluice__arena.last = NULL;
  sluice__arena.out_of_memory = false;
}

SLUICE__API void *sluice_alloc(size_t size) {
  return size == 0 ? NULL : sluice__arena_alloc(size, SLUICE__ALIGN);
}

SLUICE__API bool sluice_buf_append(sluice_buf *buf, const void *bytes, size_t len) {
  if (len == 0) return true;
  if (len > buf->cap - buf->len) {
    if (len > SIZE_MAX / 4 - buf->len) return false;
    size_t cap = buf->cap < 64 ? 64 : buf->cap;
    while (cap < buf->len + len) cap *= 2;
    uint8_t *grown = buf->ptr == NULL ? sluice__arena_alloc(cap, 1)
                                      : sluice__realloc(buf->ptr, buf->cap, 1, cap);
    if (grown == NULL) return false;
    buf->ptr = grown;
    buf->cap = cap;
  }
  memcpy(buf->ptr + buf->len, bytes, len);
  buf->len += len;
  return true;
}

/* A copy of `len` bytes in the arena; NULL only when out of memory. */
SLUICE__API bool sluice__bytes_same(sluice_bytes a, sluice_bytes b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

SLUICE__API const uint8_t *sluice__dup(const void *bytes, size_t len) {
  uint8_t *copy = sluice__arena_alloc(len, 1);
  if (copy != NULL && len > 0) memcpy(copy, bytes, len);
  return copy;
}

/* Stores a copy of a failure message in `*error`; static text when memory is gone. */
SLUICE__API void sluice__set_error(const char **error, size_t *error_len, const char *message,
                                   size_t len) {
  const uint8_t *copy = sluice__dup(message, len);
  if (copy == NULL) {
    *error = sluice__oom;
    *error_len = sizeof sluice__oom - 1;
    return;
  }
  *error = (const char *)copy;
  *error_len = len;
}

SLUICE__API void sluice__set_errorv(const char **error, size_t *error_len, const char *format,
                                    va_list args) {
  char message[512];
  int len = vsnprintf(message, sizeof message, format, args);
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof message) len = sizeof message - 1;
  sluice__set_error(error, error_len, message, (size_t)len);
}

SLUICE__API bool sluice__push(sluice_out *out, const uint8_t *payload, size_t len) {
  if (out->count == out->capacity) {
    size_t capacity = out->capacity == 0 ? 4 : out->capacity * 2;
    sluice_event *events =
        sluice__realloc(out->events, out->capacity * sizeof *events, 4, capacity * sizeof *events);
    uint32_t *meta_capacity = sluice__arena_alloc(capacity * sizeof *meta_capacity, 4);
    if (events == NULL || meta_capacity == NULL) return false;
    if (out->count > 0)
      memcpy(meta_capacity, out->meta_capacity, out->count * sizeof *meta_capacity);
    out->events = events;
    out->meta_capacity = meta_capacity;
    out->capacity = capacity;
  }
  sluice_event *event = &out->events[out->count];
  event->payload.ptr = len == 0 ? sluice__empty : payload;
  event->payload.len = len;
  event->meta = out->input->meta;
  event->meta_count = out->input->meta_count;
  out->meta_capacity[out->count] = 0;
  out->count++;
  return true;
}

SLUICE__API bool sluice_emit_ref(sluice_out *out, const void *payload, size_t len) {
  return sluice__push(out, payload, len);
}

SLUICE__API bool sluice_emit(sluice_out *out, const void *payload, size_t len) {
  const uint8_t *copy = sluice__dup(payload, len);
  return copy != NULL && sluice__push(out, copy, len);
}

SLUICE__API uint8_t *sluice_emit_alloc(sluice_out *out, size_t len) {
  uint8_t *payload = sluice__arena_alloc(len, 1);
  if (payload == NULL || !sluice__push(out, payload, len)) return NULL;
  return payload;
}

SLUICE__API bool sluice_forward(sluice_out *out, const sluice_event *in) {
  if (!sluice__push(out, in->payload.ptr, in->payload.len)) return false;
  out->events[out->count - 1].meta = in->meta;
  out->events[out->count - 1].meta_count = in->meta_count;
  return true;
}

/* The last event's metadata as an owned array with room for `extra` more pairs. */
SLUICE__API sluice_meta *sluice__meta_own(sluice_out *out, size_t extra) {
  if (out->count == 0) {
    sluice_fail(out, "sluice.h: metadata was changed before any event was emitted");
    return NULL;
  }
  sluice_event *event = &out->events[out->count - 1];
  uint32_t *capacity = &out->meta_capacity[out->count - 1];
  size_t needed = event->meta_count + extra;
  /* With a capacity the array is the SDK's own, so dropping `const` is sound. */
  sluice_meta *owned = *capacity > 0 ? (sluice_meta *)(uintptr_t)event->meta : NULL;
  if (owned != NULL && *capacity >= needed) return owned;
  size_t grown = needed < 4 ? 4 : needed * 2;
  sluice_meta *meta =
      owned == NULL ? sluice__arena_alloc(grown * sizeof *meta, 4)
                    : sluice__realloc(owned, *capacity * sizeof *meta, 4, grown * sizeof *meta);
  if (meta == NULL) return NULL;
  if (*capacity == 0 && event->meta_count > 0)
    memcpy(meta, event->meta, event->meta_count * sizeof *meta);
  event->meta = meta;
  *capacity = (uint32_t)grown;
  return meta;
}

SLUICE__API bool sluice_meta_set_bytes(sluice_out *out, sluice_bytes key, sluice_bytes value) {
  sluice_meta *meta = sluice__meta_own(out, 1);
  const uint8_t *key_copy = sluice__dup(key.ptr, key.len);
  const uint8_t *value_copy = sluice__dup(value.ptr, value.len);
  if (meta == NULL || key_copy == NULL || value_copy == NULL) return false;
  sluice_event *event = &out->events[out->count - 1];
  size_t i = 0;
  while (i < event->meta_count && !sluice__bytes_same(meta[i].key, key)) i++;
  meta[i].key.ptr = key_copy;
  meta[i].key.len = key.len;
  meta[i].value.ptr = value_copy;
  meta[i].value.len = value.len;
  if (i == event->meta_count) event->meta_count++;
  return true;
}

SLUICE__API bool sluice_meta_set(sluice_out *out, const char *key, const char *value) {
  return sluice_meta_set_bytes(out, sluice_str(key), sluice_str(value));
}

SLUICE__API bool sluice_meta_remove(sluice_out *out, const char *key) {
  sluice_meta *meta = sluice__meta_own(out, 0);
  if (meta == NULL) return false;
  sluice_event *event = &out->events[out->count - 1];
  size_t kept = 0;
  for (size_t i = 0; i < event->meta_count; i++)
    if (!sluice_bytes_equal(meta[i].key, key)) meta[kept++] = meta[i];
  event->meta_count = kept;
  return true;
}

SLUICE__API bool sluice_meta_clear(sluice_out *out) {
  if (sluice__meta_own(out, 0) == NULL) return false;
  out->events[out->count - 1].meta_count = 0;
  return true;
}

SLUICE__API int sluice_fail(sluice_out *out, const char *message) {
  sluice__set_error(&out->error, &out->error_len, message, strlen(message));
  return -1;
}

SLUICE__API int sluice_failf(sluice_out *out, const char *format, ...) {
  va_list args;
  va_start(args, format);
  sluice__set_errorv(&out->error, &out->error_len, format, args);
  va_end(args);
  return -1;
}

SLUICE__API int sluice_init_fail(sluice_init *init, const char *message) {
  sluice__set_error(&init->error, &init->error_len, message, strlen(message));
  return -1;
}

SLUICE__API int sluice_init_failf(sluice_init *init, const char *format, ...) {
  va_list args;
  va_start(args, format);
  sluice__set_errorv(&init->error, &init->error_len, format, args);
  va_end(args);
  return -1;
}

SLUICE__API const char *sluice_config_get(const char *key) {
  for (size_t i = 0; i < sluice__config.count; i++)
    if (strcmp(sluice__config.pairs[2 * i], key) == 0) return sluice__config.pairs[2 * i + 1];
  return NULL;
}

SLUICE__API const char *sluice_config_or(const char *key, const char *fallback) {
  const char *value = sluice_config_get(key);
  return value != NULL ? value : fallback;
}

SLUICE__API void sluice__config_free(void) {
  for (size_t i = 0; i < 2 * sluice__config.count; i++) free(sluice__config.pairs[i]);
  free(sluice__config.pairs);
  sluice__config.pairs = NULL;
  sluice__config.count = 0;
}

SLUICE__API char *sluice__strndup(sluice_bytes bytes) {
  char *copy = malloc(bytes.len + 1);
  if (copy == NULL) return NULL;
  if (bytes.len > 0) memcpy(copy, bytes.ptr, bytes.len);
  copy[bytes.len] = '\0';
  return copy;
}

/* Fills the result area as err(message) or ok(events) and returns its address. */
SLUICE__API void *sluice__finish(const char *error, size_t error_len, const void *ptr, size_t len) {
  if (sluice__arena.out_of_memory) {
    error = sluice__oom;
    error_len = sizeof sluice__oom - 1;
  }
  if (error != NULL) {
    sluice__result.discriminant = 1;
    sluice__result.ptr = error;
    sluice__result.len = error_len;
  } else {
    sluice__result.discriminant = 0;
    sluice__result.ptr = ptr;
    sluice__result.len = len;
  }
  return &sluice__result;
}

/* init: copies the configuration out of the arena (which cabi_post_init releases), then
 * runs the processor's init function, if any. */
SLUICE__API void *sluice__init(const sluice_meta *config, size_t count) {
  sluice_init init = {NULL, 0};
  sluice__config_free();
  sluice__config.pairs = calloc(2 * count + 1, sizeof(char *));
  if (sluice__config.pairs == NULL)
    return sluice__finish(sluice__oom, sizeof sluice__oom - 1, NULL, 0);
  for (size_t i = 0; i < count; i++) {
    char *key = sluice__strndup(config[i].key);
    char *value = sluice__strndup(config[i].value);
    sluice__config.pairs[2 * i] = key;
    sluice__config.pairs[2 * i + 1] = value;
    sluice__config.count = i + 1;
    if (key == NULL || value == NULL) {
      sluice__config_free();
      return sluice__finish(sluice__oom, sizeof sluice__oom - 1, NULL, 0);
    }
  }
  int status = sluice__init_hook != NULL ? sluice__init_hook(&init) : 0;
  if (status != 0 && init.error == NULL) sluice_init_fail(&init, "init failed");
  return sluice__finish(init.error, init.error_len, NULL, 0);
}

SLUICE__API void *sluice__process(sluice_process_fn fn, const uint8_t *payload, size_t payload_len,
                                  const sluice_meta *meta, size_t meta_count) {
  sluice_event input = {{payload, payload_len}, meta, meta_count};
  sluice_out *out = &sluice__out;
  memset(out, 0, sizeof *out);
  out->input = &input;
  int status = fn(&input, out);
  if (status != 0 && out->error == NULL) sluice_fail(out, "processor failed");
  return sluice__finish(out->error, out->error_len, out->events, out->count);
}

/* ---------------------------------------------------------------------------------------
 * 9. Implementation of the capabilities
 *
 * Each import is declared with its module and name as the canonical ABI lowers it
 * (docs/design/capabilities.md has the table): strings and lists as (pointer, length),
 * an option as (discriminant, payload...), and results that do not fit one value in a
 * return area the caller passes last. The host fills the return area and allocates the
 * strings and lists it returns through cabi_realloc, which is the arena; so results need
 * no freeing and follow the arena's rule. The return areas are structs whose layout is
 * the canonical one, checked below; booleans and discriminants are read as bytes.
 */

#define SLUICE__IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define SLUICE__KV_STORE "wasi:keyvalue/store@0.2.0-draft2"

SLUICE__IMPORT("wasi:logging/logging@0.1.0-draft", "log")
void sluice__import_log(int32_t level, const char *context, size_t context_len, const char *message,
                        size_t message_len);

SLUICE__IMPORT("wasi:config/store@0.2.0-draft", "get")
void sluice__import_config_get(const char *key, size_t key_len, void *ret);
SLUICE__IMPORT("wasi:config/store@0.2.0-draft", "get-all")
void sluice__import_config_get_all(void *ret);

SLUICE__IMPORT(SLUICE__KV_STORE, "open")
void sluice__import_kv_open(const char *name, size_t name_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[method]bucket.get")
void sluice__import_kv_get(uint32_t bucket, const char *key, size_t key_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[method]bucket.set")
void sluice__import_kv_set(uint32_t bucket, const char *key, size_t key_len, const void *value,
                           size_t value_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[method]bucket.delete")
void sluice__import_kv_delete(uint32_t bucket, const char *key, size_t key_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[method]bucket.exists")
void sluice__import_kv_exists(uint32_t bucket, const char *key, size_t key_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[method]bucket.list-keys")
void sluice__import_kv_list_keys(uint32_t bucket, int32_t cursor_is_some, const char *cursor,
                                 size_t cursor_len, void *ret);
SLUICE__IMPORT(SLUICE__KV_STORE, "[resource-drop]bucket")
void sluice__import_kv_drop(uint32_t bucket);
SLUICE__IMPORT("wasi:keyvalue/atomics@0.2.0-draft2", "increment")
void sluice__import_kv_increment(uint32_t bucket, const char *key, size_t key_len, int64_t delta,
                                 void *ret);

SLUICE__IMPORT("sluice:processor/outgoing-http@0.1.0", "send")
void sluice__import_http_send(const char *method, size_t method_len, const char *url,
                              size_t url_len, const sluice_meta *headers, size_t header_count,
                              const uint8_t *body, size_t body_len, void *ret);

/* The `error` variants of config, keyvalue and HTTP: a u8 case, then (at 4) the string
 * of the cases that carry one. 12 bytes, aligned to 4. */
typedef struct sluice__error_ret {
  uint8_t tag;
  sluice_bytes text;
} sluice__error_ret;

/* result<option<string>, error> (config get) and result<option<list<u8>>, error> (get):
 * 16 bytes; option tag at 4, its payload at 8 / error at 4. */
typedef struct sluice__option_ret {
  uint8_t tag;
  union {
    struct {
      uint8_t is_some;
      sluice_bytes value;
    } ok;
    sluice__error_ret err;
  } as;
} sluice__option_ret;

/* result<list<tuple<string, string>>, error> (config get-all): list at 4 / error at 4. */
typedef struct sluice__pairs_ret {
  uint8_t tag;
  union {
    struct {
      const sluice_meta *pairs;
      size_t count;
    } ok;
    sluice__error_ret err;
  } as;
} sluice__pairs_ret;

/* result<bucket, error> (open), result<_, error> (set, delete), result<bool, error>
 * (exists): 16 bytes, handle or bool at 4 / error at 4. */
typedef struct sluice__small_ret {
  uint8_t tag;
  union {
    uint32_t handle;
    uint8_t yes;
    sluice__error_ret err;
  } as;
} sluice__small_ret;

/* result<key-response, error> (list-keys): 24 bytes; keys at 4, cursor option tag at 12,
 * cursor at 16 / error at 4. */
typedef struct sluice__keys_ret {
  uint8_t tag;
  union {
    struct {
      const sluice_bytes *keys;
      size_t count;
      uint8_t has_cursor;
      sluice_bytes cursor;
    } ok;
    sluice__error_ret err;
  } as;
} sluice__keys_ret;

/* result<s64, error> (increment): the s64 aligns the payload to 8, so 24 bytes; value at
 * 8 / error tag at 8, string at 12. */
typedef struct sluice__increment_ret {
  uint8_t tag;
  union {
    int64_t value;
    sluice__error_ret err;
  } as;
} sluice__increment_ret;

/* result<response, error> (send): 24 bytes; status at 4, headers at 8, body at 16 /
 * error at 4. */
typedef struct sluice__http_ret {
  uint8_t tag;
  union {
    struct {
      uint16_t status;
      const sluice_meta *headers;
      size_t header_count;
      sluice_bytes body;
    } ok;
    sluice__error_ret err;
  } as;
} sluice__http_ret;

_Static_assert(sizeof(sluice__error_ret) == 12 && offsetof(sluice__error_ret, text) == 4,
               "error variant: case at 0, string at 4");
_Static_assert(sizeof(sluice__option_ret) == 16 &&
                   offsetof(sluice__option_ret, as.ok.is_some) == 4 &&
                   offsetof(sluice__option_ret, as.ok.value) == 8 &&
                   offsetof(sluice__option_ret, as.err.text) == 8,
               "result<option<T>, error>: 16 bytes, option at 4, payload at 8");
_Static_assert(sizeof(sluice__pairs_ret) == 16 && offsetof(sluice__pairs_ret, as.ok.pairs) == 4,
               "result<list<T>, error>: list at 4");
_Static_assert(sizeof(sluice__small_ret) == 16 && offsetof(sluice__small_ret, as.handle) == 4 &&
                   offsetof(sluice__small_ret, as.yes) == 4,
               "result<bucket|bool|_, error>: 16 bytes, payload at 4");
_Static_assert(sizeof(sluice__keys_ret) == 24 && offsetof(sluice__keys_ret, as.ok.keys) == 4 &&
                   offsetof(sluice__keys_ret, as.ok.has_cursor) == 12 &&
                   offsetof(sluice__keys_ret, as.ok.cursor) == 16,
               "result<key-response, error>: 24 bytes, keys at 4, cursor at 12/16");
_Static_assert(sizeof(sluice__increment_ret) == 24 &&
                   offsetof(sluice__increment_ret, as.value) == 8 &&
                   offsetof(sluice__increment_ret, as.err.text) == 12,
               "result<s64, error>: 24 bytes, payload at 8");
_Static_assert(sizeof(sluice__http_ret) == 24 && offsetof(sluice__http_ret, as.ok.status) == 4 &&
                   offsetof(sluice__http_ret, as.ok.headers) == 8 &&
                   offsetof(sluice__http_ret, as.ok.body) == 16,
               "result<response, error>: 24 bytes, status at 4, headers at 8, body at 16");

SLUICE__API const char *sluice_cstr(sluice_bytes bytes) {
  char *copy = sluice__arena_alloc(bytes.len + 1, 1);
  if (copy == NULL) return NULL;
  if (bytes.len > 0) memcpy(copy, bytes.ptr, bytes.len);
  copy[bytes.len] = '\0';
  return copy;
}

/* The cases of each error variant, and which of them carry a string (a bit per case):
 * the host writes no string for the others, so it must not be read. */
typedef struct sluice__error_cases {
  const char *const *names;
  uint8_t count;
  uint8_t with_text;
} sluice__error_cases;

static __attribute__((unused))
const char *const sluice__kv_error_names[] = {"no-such-store", "access-denied", "other"};
static __attribute__((unused))
const sluice__error_cases sluice__kv_errors = {sluice__kv_error_names, 3, 1u << 2};
static __attribute__((unused)) const char *const sluice__http_error_names[] = {
    "denied", "invalid-request", "timeout", "too-large", "failed"};
static __attribute__((unused)) const sluice__error_cases sluice__http_errors = {
    sluice__http_error_names, 5, (1u << 0) | (1u << 1) | (1u << 4)};

/* Fills `err` (when not NULL) from an error variant: "case" or "case: text". Returns
 * false, for `return`. */
SLUICE__API bool sluice__fail_with(sluice_error *err, const sluice__error_ret *error,
                                   const sluice__error_cases *cases) {
  if (err == NULL) return false;
  err->code = error->tag;
  bool known = error->tag < cases->count;
  sluice_buf message = {0};
  bool ok = sluice_buf_append_str(&message, known ? cases->names[error->tag] : "unknown error");
  if (known && (cases->with_text >> error->tag & 1u) != 0 && error->text.len > 0)
    ok = ok && sluice_buf_append_str(&message, ": ") &&
         sluice_buf_append(&message, error->text.ptr, error->text.len);
  ok = ok && sluice_buf_append_byte(&message, '\0');
  err->message = ok ? (const char *)message.ptr : sluice__oom;
  return false;
}

/* A failure the SDK detects itself, before any host call. */
SLUICE__API bool sluice__fail_local(sluice_error *err, int code, const char *message) {
  if (err != NULL) {
    err->code = code;
    err->message = message;
  }
  return false;
}

#define SLUICE__KV_FAIL(err, ret) sluice__fail_with((err), &(ret).as.err, &sluice__kv_errors)

/* True when `len` bytes at `s` are UTF-8 as the canonical ABI requires of a string (no
 * overlong forms, no surrogates, nothing above U+10FFFF); the host traps on anything else,
 * so the wrappers check first and report an error instead. */
SLUICE__API bool sluice__utf8_valid(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s, *end = p + len;
  while (p < end) {
    uint8_t c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (n == 0 || c > 0xf4 || (size_t)(end - p) <= n) return false;
    uint32_t cp = c & (0x3fu >> n);
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    p += n + 1;
  }
  return true;
}

/* `s` itself when it is valid UTF-8, else an arena copy with every byte >= 0x80 replaced
 * by '?': a log line must never trap the instance. */
SLUICE__API const char *sluice__loggable(const char *s, size_t len) {
  if (sluice__utf8_valid(s, len)) return s;
  char *copy = sluice__arena_alloc(len, 1);
  if (copy == NULL) return "(a line that is not UTF-8; out of memory copying it)";
  for (size_t i = 0; i < len; i++) copy[i] = (uint8_t)s[i] < 0x80 ? s[i] : '?';
  return copy;
}

SLUICE__API void sluice_log(sluice_log_level level, const char *context, const char *message) {
  if (context == NULL) context = "";
  size_t context_len = strlen(context), message_len = strlen(message);
  context = sluice__loggable(context, context_len);
  message = sluice__loggable(message, message_len);
  sluice__import_log((int32_t)level, context, context_len, message, message_len);
}

SLUICE__API void sluice_logf(sluice_log_level level, const char *context, const char *format, ...) {
  va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  int len = vsnprintf(NULL, 0, format, args);
  char *message = len < 0 ? NULL : sluice__arena_alloc((size_t)len + 1, 1);
  if (message != NULL) vsnprintf(message, (size_t)len + 1, format, again);
  va_end(again);
  va_end(args);
  sluice_log(level, context, message != NULL ? message : sluice__oom);
}

SLUICE__API const char *sluice_config(const char *key) {
  sluice__option_ret ret;
  sluice__import_config_get(key, strlen(key), &ret);
  if (ret.tag != 0 || ret.as.ok.is_some == 0) return NULL;
  return sluice_cstr(ret.as.ok.value);
}

SLUICE__API bool sluice_config_all(const sluice_meta **pairs, size_t *count) {
  sluice__pairs_ret ret;
  sluice__import_config_get_all(&ret);
  if (ret.tag != 0) return false;
  *pairs = ret.as.ok.pairs;
  *count = ret.as.ok.count;
  return true;
}

SLUICE__API sluice_bucket sluice_kv_open(const char *name, sluice_error *err) {
  sluice_bucket bucket = {0, false};
  if (!sluice__utf8_valid(name, strlen(name))) {
    sluice__fail_local(err, SLUICE_KV_OTHER, "other: the bucket name is not valid UTF-8");
    return bucket;
  }
  sluice__small_ret ret;
  sluice__import_kv_open(name, strlen(name), &ret);
  if (ret.tag != 0) {
    SLUICE__KV_FAIL(err, ret);
    return bucket;
  }
  bucket.handle = ret.as.handle;
  bucket.open = true;
  return bucket;
}

SLUICE__API void sluice_kv_close(sluice_bucket *bucket) {
  if (!bucket->open) return;
  sluice__import_kv_drop(bucket->handle);
  bucket->open = false;
}

static __attribute__((unused)) const char sluice__not_open[] =
    "other: the bucket is not open (sluice_kv_open failed)";

/* The checks every bucket call makes before the host call: an open bucket and a UTF-8
 * key. False with `err` filled in. */
SLUICE__API bool sluice__kv_ready(sluice_bucket bucket, const char *key, sluice_error *err) {
  if (!bucket.open) return sluice__fail_local(err, SLUICE_KV_OTHER, sluice__not_open);
  if (key != NULL && !sluice__utf8_valid(key, strlen(key)))
    return sluice__fail_local(err, SLUICE_KV_OTHER, "other: the key is not valid UTF-8");
  return true;
}

SLUICE__API bool sluice_kv_get(sluice_bucket bucket, const char *key, sluice_bytes *value,
                               bool *found, sluice_error *err) {
  value->ptr = NULL;
  value->len = 0;
  if (found != NULL) *found = false;
  if (!sluice__kv_ready(bucket, key, err)) return false;
  sluice__option_ret ret;
  sluice__import_kv_get(bucket.handle, key, strlen(key), &ret);
  if (ret.tag != 0) return SLUICE__KV_FAIL(err, ret);
  if (ret.as.ok.is_some != 0) {
    *value = ret.as.ok.value;
    if (found != NULL) *found = true;
  }
  return true;
}

SLUICE__API bool sluice_kv_set(sluice_bucket bucket, const char *key, const void *value, size_t len,
                               sluice_error *err) {
  if (!sluice__kv_ready(bucket, key, err)) return false;
  sluice__small_ret ret;
  /* An empty list still needs an in-bounds pointer; the arena's empty block is one. */
  sluice__import_kv_set(bucket.handle, key, strlen(key), len > 0 ? value : sluice__empty, len,
                        &ret);
  return ret.tag == 0 ? true : SLUICE__KV_FAIL(err, ret);
}

SLUICE__API bool sluice_kv_delete(sluice_bucket bucket, const char *key, sluice_error *err) {
  if (!sluice__kv_ready(bucket, key, err)) return false;
  sluice__small_ret ret;
  sluice__import_kv_delete(bucket.handle, key, strlen(key), &ret);
  return ret.tag == 0 ? true : SLUICE__KV_FAIL(err, ret);
}

SLUICE__API bool sluice_kv_exists(sluice_bucket bucket, const char *key, bool *exists,
                                  sluice_error *err) {
  *exists = false;
  if (!sluice__kv_ready(bucket, key, err)) return false;
  sluice__small_ret ret;
  sluice__import_kv_exists(bucket.handle, key, strlen(key), &ret);
  if (ret.tag != 0) return SLUICE__KV_FAIL(err, ret);
  *exists = ret.as.yes != 0;
  return true;
}

SLUICE__API bool sluice_kv_list_keys(sluice_bucket bucket, const char *cursor, sluice_kv_keys *page,
                                     sluice_error *err) {
  page->keys = NULL;
  page->count = 0;
  page->cursor = NULL;
  if (!sluice__kv_ready(bucket, cursor, err)) return false;
  sluice__keys_ret ret;
  sluice__import_kv_list_keys(bucket.handle, cursor != NULL, cursor != NULL ? cursor : "",
                              cursor != NULL ? strlen(cursor) : 0, &ret);
  if (ret.tag != 0) return SLUICE__KV_FAIL(err, ret);
  page->keys = ret.as.ok.keys;
  page->count = ret.as.ok.count;
  if (ret.as.ok.has_cursor != 0) {
    page->cursor = sluice_cstr(ret.as.ok.cursor);
    if (page->cursor == NULL) return sluice__fail_local(err, SLUICE_KV_OTHER, sluice__oom);
  }
  return true;
}

SLUICE__API bool sluice_kv_increment(sluice_bucket bucket, const char *key, int64_t delta,
                                     int64_t *result, sluice_error *err) {
  if (result != NULL) *result = 0;
  if (!sluice__kv_ready(bucket, key, err)) return false;
  sluice__increment_ret ret;
  sluice__import_kv_increment(bucket.handle, key, strlen(key), delta, &ret);
  if (ret.tag != 0) return SLUICE__KV_FAIL(err, ret);
  if (result != NULL) *result = ret.as.value;
  return true;
}

SLUICE__API bool sluice_http_send(const sluice_http_request *request,
                                  sluice_http_response *response, sluice_error *err) {
  memset(response, 0, sizeof *response);
  const char *method = request->method != NULL ? request->method : "GET";
  if (request->url == NULL)
    return sluice__fail_local(err, SLUICE_HTTP_INVALID_REQUEST, "invalid-request: no URL");
  bool utf8 = sluice__utf8_valid(method, strlen(method)) &&
              sluice__utf8_valid(request->url, strlen(request->url));
  for (size_t i = 0; utf8 && i < request->header_count; i++)
    utf8 = sluice__utf8_valid((const char *)request->headers[i].key.ptr,
                              request->headers[i].key.len) &&
           sluice__utf8_valid((const char *)request->headers[i].value.ptr,
                              request->headers[i].value.len);
  if (!utf8)
    return sluice__fail_local(err, SLUICE_HTTP_INVALID_REQUEST,
                              "invalid-request: the method, URL or a header is not valid UTF-8");
  sluice__http_ret ret;
  sluice__import_http_send(
      method, strlen(method), request->url, strlen(request->url),
      request->header_count > 0 ? request->headers : (const sluice_meta *)sluice__empty,
      request->header_count, request->body.len > 0 ? request->body.ptr : sluice__empty,
      request->body.len, &ret);
  if (ret.tag != 0) return sluice__fail_with(err, &ret.as.err, &sluice__http_errors);
  response->status = ret.as.ok.status;
  response->headers = ret.as.ok.headers;
  response->header_count = ret.as.ok.header_count;
  response->body = ret.as.ok.body;
  return true;
}

SLUICE__API bool sluice_http_get(const char *url, sluice_http_response *response,
                                 sluice_error *err) {
  sluice_http_request request = {"GET", url, NULL, 0, {NULL, 0}};
  return sluice_http_send(&request, response, err);
}

SLUICE__API bool sluice_http_post(const char *url, const char *content_type, const void *body,
                                  size_t len, sluice_http_response *response, sluice_error *err) {
  sluice_meta header = {sluice_str("content-type"), {NULL, 0}};
  if (content_type != NULL) header.value = sluice_str(content_type);
  sluice_http_request request = {"POST", url, &header, content_type != NULL, {body, len}};
  return sluice_http_send(&request, response, err);
}

/* ASCII case-insensitive: header names are ASCII tokens. */
SLUICE__API bool sluice__name_equal(sluice_bytes bytes, const char *name) {
  size_t len = strlen(name);
  if (bytes.len != len) return false;
  for (size_t i = 0; i < len; i++) {
    uint8_t a = bytes.ptr[i], b = (uint8_t)name[i];
    if (a >= 'A' && a <= 'Z') a = (uint8_t)(a + 32);
    if (b >= 'A' && b <= 'Z') b = (uint8_t)(b + 32);
    if (a != b) return false;
  }
  return true;
}

SLUICE__API const sluice_bytes *sluice_http_header(const sluice_http_response *response,
                                                   const char *name) {
  for (size_t i = 0; i < response->header_count; i++)
    if (sluice__name_equal(response->headers[i].key, name)) return &response->headers[i].value;
  return NULL;
}

#endif
