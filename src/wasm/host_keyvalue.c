/*
 * host_keyvalue.c - wasi:keyvalue/store@0.2.0-draft2 and wasi:keyvalue/atomics@0.2.0-draft2
 * (increment) over the buckets the node was granted (src/caps/kv.h).
 *
 * `open` hands out a handle per instance (an index into the instance's small table); the
 * bucket behind it belongs to the pipeline. A name the grant does not list is
 * `error::no-such-store`. Backend failures are `error::other(message)`.
 *
 * Return areas (docs/design/capabilities.md): 16 bytes with the result tag at 0 and the
 * payload or the error at 4, except list-keys (24 bytes, payload at 4) and increment
 * (24 bytes: the s64 or the error at 8, as the canonical ABI aligns a variant's payload).
 */
#include <stdlib.h>
#include <string.h>

#include "caps/node_caps.h"
#include "wasm/host_call.h"
#include "wasm/host_functions.h"

enum { KV_NO_SUCH_STORE = 0, KV_ACCESS_DENIED = 1, KV_OTHER = 2 };
#define MAX_OPEN_BUCKETS 1024u

static sl_kv_bucket *bucket_of(sl_instance *inst, uint32_t handle, const char *fn) {
  if (handle == 0 || handle > inst->host.bucket_slots || !inst->host.buckets[handle - 1])
    sl__guest_trap(SL_FAULT_BAD_IMPORT_CALL, "wasi:keyvalue %s: %u is not an open bucket handle",
                   fn, handle);
  return inst->host.buckets[handle - 1];
}

static void free_pending_text(void *p) { free(p); }

/* Lowers `err`'s message as error::other into a fresh return area: tag 1 at 0, the
 * error's case at `at` and its string at `at + 4`. */
static void return_error(sl_instance *inst, uint32_t ret, uint32_t size, uint32_t at, int kind,
                         const char *message) {
  uint32_t ptr = 0, len = 0;
  if (kind == KV_OTHER) {
    len = (uint32_t)strlen(message);
    char *copy = strdup(message);
    if (!copy) abort();
    sl__host_park(inst, copy, free_pending_text);
    ptr = sl__host_lower_string(inst, copy, len);
  }
  uint8_t *area = sl__host_ret(inst, ret, size, at == 8 ? 8 : 4);
  area[0] = 1;
  area[at] = (uint8_t)kind;
  sl__write_u32(area + at + 4, ptr);
  sl__write_u32(area + at + 8, len);
}

void sl_host_kv_open(void *ctx, uint32_t name_ptr, uint32_t name_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  const uint8_t *name = sl__host_arg_string(inst, name_ptr, name_len, "bucket name");
  sl_kv_bucket *bucket =
      inst->host.caps ? sl_node_caps_bucket(inst->host.caps, (const char *)name, name_len) : NULL;
  if (!bucket) {
    return_error(inst, ret, 16, 4, KV_NO_SUCH_STORE, NULL);
    sl__host_leave(inst);
    return;
  }
  uint32_t slot = 0;
  while (slot < inst->host.bucket_slots && inst->host.buckets[slot]) slot++;
  if (slot == inst->host.bucket_slots) {
    if (slot == MAX_OPEN_BUCKETS) {
      return_error(inst, ret, 16, 4, KV_OTHER,
                   "too many open buckets: 1024 handles per instance; drop the ones you no "
                   "longer use");
      sl__host_leave(inst);
      return;
    }
    uint32_t slots = slot ? slot * 2 : 4;
    sl_kv_bucket **grown = realloc(inst->host.buckets, slots * sizeof *grown);
    if (!grown) abort();
    memset(grown + slot, 0, (slots - slot) * sizeof *grown);
    inst->host.buckets = grown;
    inst->host.bucket_slots = slots;
  }
  inst->host.buckets[slot] = bucket;
  uint8_t *area = sl__host_ret(inst, ret, 16, 4);
  sl__write_u32(area + 4, slot + 1);
  sl__host_leave(inst);
}

void sl_host_kv_drop(void *ctx, uint32_t handle) {
  sl_instance *inst = sl__host_enter(ctx);
  bucket_of(inst, handle, "[resource-drop]bucket");
  inst->host.buckets[handle - 1] = NULL;
  sl__host_leave(inst);
}

void sl_host_kv_get(void *ctx, uint32_t handle, uint32_t key_ptr, uint32_t key_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "get");
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "key");
  uint8_t *value = NULL;
  size_t value_len = 0;
  bool found = false;
  sl_error err;
  if (sl_kv_get(bucket, (const char *)key, key_len, &value, &value_len, &found, &err) != SL_OK) {
    return_error(inst, ret, 16, 4, KV_OTHER, err.message);
  } else {
    if (value) sl__host_park(inst, value, free);
    uint32_t ptr = found ? sl__guest_lower_bytes(inst, value, value_len, "value") : 0;
    uint8_t *area = sl__host_ret(inst, ret, 16, 4);
    area[4] = found;
    sl__write_u32(area + 8, ptr);
    sl__write_u32(area + 12, found ? (uint32_t)value_len : 0);
  }
  sl__host_leave(inst);
}

void sl_host_kv_set(void *ctx, uint32_t handle, uint32_t key_ptr, uint32_t key_len,
                    uint32_t value_ptr, uint32_t value_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "set");
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "key");
  const uint8_t *value = sl__host_arg_bytes(inst, value_ptr, value_len, "value");
  sl_error err;
  /* No guest code runs during the call, so the spans stay valid. */
  if (sl_kv_set(bucket, (const char *)key, key_len, value, value_len, &err) != SL_OK)
    return_error(inst, ret, 16, 4, KV_OTHER, err.message);
  else
    sl__host_ret(inst, ret, 16, 4);
  sl__host_leave(inst);
}

void sl_host_kv_delete(void *ctx, uint32_t handle, uint32_t key_ptr, uint32_t key_len,
                       uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "delete");
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "key");
  sl_error err;
  if (sl_kv_delete(bucket, (const char *)key, key_len, &err) != SL_OK)
    return_error(inst, ret, 16, 4, KV_OTHER, err.message);
  else
    sl__host_ret(inst, ret, 16, 4);
  sl__host_leave(inst);
}

void sl_host_kv_exists(void *ctx, uint32_t handle, uint32_t key_ptr, uint32_t key_len,
                       uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "exists");
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "key");
  bool exists = false;
  sl_error err;
  if (sl_kv_exists(bucket, (const char *)key, key_len, &exists, &err) != SL_OK) {
    return_error(inst, ret, 16, 4, KV_OTHER, err.message);
  } else {
    uint8_t *area = sl__host_ret(inst, ret, 16, 4);
    area[4] = exists;
  }
  sl__host_leave(inst);
}

static void free_page(void *p) {
  sl_kv_key_page_free(p);
  free(p);
}

void sl_host_kv_list_keys(void *ctx, uint32_t handle, uint32_t cursor_tag, uint32_t cursor_ptr,
                          uint32_t cursor_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "list-keys");
  if (cursor_tag > 1)
    sl__guest_trap(SL_FAULT_BAD_IMPORT_CALL, "wasi:keyvalue list-keys: option tag %u", cursor_tag);
  char *cursor = NULL;
  if (cursor_tag == 1) {
    const uint8_t *text = sl__host_arg_string(inst, cursor_ptr, cursor_len, "cursor");
    cursor = strndup((const char *)text, cursor_len);
    if (!cursor) abort();
  }
  sl_kv_key_page *page = calloc(1, sizeof *page);
  if (!page) abort();
  sl_error err;
  sl_status status = sl_kv_list_keys(bucket, cursor, page, &err);
  free(cursor);
  if (status != SL_OK) {
    free_page(page);
    return_error(inst, ret, 24, 4, KV_OTHER, err.message);
    sl__host_leave(inst);
    return;
  }
  sl__host_park(inst, page, free_page);
  uint32_t keys = sl__guest_alloc(inst, 4, (uint64_t)page->count * 8, "key list");
  for (size_t i = 0; i < page->count; i++) {
    uint32_t ptr = sl__host_lower_string(inst, page->keys[i], page->key_lens[i]);
    uint8_t *slot = inst->memory->data + keys + i * 8; /* re-derived: memory may have moved */
    sl__write_u32(slot, ptr);
    sl__write_u32(slot + 4, (uint32_t)page->key_lens[i]);
  }
  uint32_t next =
      page->cursor ? sl__host_lower_string(inst, page->cursor, strlen(page->cursor)) : 0;
  uint8_t *area = sl__host_ret(inst, ret, 24, 4);
  sl__write_u32(area + 4, keys);
  sl__write_u32(area + 8, (uint32_t)page->count);
  if (page->cursor) {
    area[12] = 1;
    sl__write_u32(area + 16, next);
    sl__write_u32(area + 20, (uint32_t)strlen(page->cursor));
  }
  sl__host_leave(inst);
}

void sl_host_kv_increment(void *ctx, uint32_t handle, uint32_t key_ptr, uint32_t key_len,
                          uint64_t delta, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  sl_kv_bucket *bucket = bucket_of(inst, handle, "increment");
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "key");
  int64_t value = 0;
  sl_error err;
  if (sl_kv_increment(bucket, (const char *)key, key_len, (int64_t)delta, &value, &err) != SL_OK) {
    return_error(inst, ret, 24, 8, KV_OTHER, err.message);
  } else {
    uint8_t *area = sl__host_ret(inst, ret, 24, 8);
    memcpy(area + 8, &value, 8);
  }
  sl__host_leave(inst);
}
