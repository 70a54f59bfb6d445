/*
 * host_config.c - wasi:config/store@0.2.0-draft: the node's `config` map, readable at any
 * time (not only in init). A hot swap builds new instances with the new version's map, so
 * a processor reading config per event sees the change without doing anything.
 *
 * Return areas (16 bytes): result tag @0; ok: get's option tag @4 and string @8, get-all's
 * list @4; err: never (the map is in memory, nothing can fail).
 */
#include <string.h>

#include "wasm/host_call.h"
#include "wasm/host_functions.h"

void sl_host_config_get(void *ctx, uint32_t key_ptr, uint32_t key_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  const uint8_t *key = sl__host_arg_string(inst, key_ptr, key_len, "config key");
  const char *value = NULL;
  for (size_t i = 0; i < inst->host.config_count && !value; i++) {
    const char *k = inst->host.config[i].key;
    if (strlen(k) == key_len && memcmp(k, key, key_len) == 0) value = inst->host.config[i].value;
  }
  uint32_t value_ptr = value ? sl__host_lower_string(inst, value, strlen(value)) : 0;
  uint8_t *area = sl__host_ret(inst, ret, 16, 4);
  area[0] = 0; /* ok */
  if (value) {
    area[4] = 1; /* some */
    sl__write_u32(area + 8, value_ptr);
    sl__write_u32(area + 12, (uint32_t)strlen(value));
  }
  sl__host_leave(inst);
}

void sl_host_config_get_all(void *ctx, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  size_t count = inst->host.config_count;
  sl_bytes pairs[count ? count * 2 : 1];
  for (size_t i = 0; i < count; i++) {
    pairs[2 * i] = sl_bytes_from_cstr(inst->host.config[i].key);
    pairs[2 * i + 1] = sl_bytes_from_cstr(inst->host.config[i].value);
  }
  uint32_t list = sl__guest_lower_pairs(inst, &pairs[0], &pairs[1], 2 * sizeof(sl_bytes), count);
  uint8_t *area = sl__host_ret(inst, ret, 16, 4);
  area[0] = 0;
  sl__write_u32(area + 4, list);
  sl__write_u32(area + 8, (uint32_t)count);
  sl__host_leave(inst);
}
