/*
 * host_functions.h - the host functions behind the capability imports (host_*.c), called
 * by the trampolines of compiled guests (codegen.c). `ctx` is the calling sl_instance.
 * Arguments are the core-level ones of host_imports.c's signatures.
 */
#ifndef SL_WASM_HOST_FUNCTIONS_H
#define SL_WASM_HOST_FUNCTIONS_H

#include <stdint.h>

void sl_host_logging_log(void *ctx, uint32_t level, uint32_t context_ptr, uint32_t context_len,
                         uint32_t message_ptr, uint32_t message_len);
void sl_host_config_get(void *ctx, uint32_t key_ptr, uint32_t key_len, uint32_t ret);
void sl_host_config_get_all(void *ctx, uint32_t ret);

void sl_host_kv_open(void *ctx, uint32_t name_ptr, uint32_t name_len, uint32_t ret);
void sl_host_kv_get(void *ctx, uint32_t bucket, uint32_t key_ptr, uint32_t key_len, uint32_t ret);
void sl_host_kv_set(void *ctx, uint32_t bucket, uint32_t key_ptr, uint32_t key_len,
                    uint32_t value_ptr, uint32_t value_len, uint32_t ret);
void sl_host_kv_delete(void *ctx, uint32_t bucket, uint32_t key_ptr, uint32_t key_len,
                       uint32_t ret);
void sl_host_kv_exists(void *ctx, uint32_t bucket, uint32_t key_ptr, uint32_t key_len,
                       uint32_t ret);
void sl_host_kv_list_keys(void *ctx, uint32_t bucket, uint32_t cursor_tag, uint32_t cursor_ptr,
                          uint32_t cursor_len, uint32_t ret);
void sl_host_kv_drop(void *ctx, uint32_t bucket);
void sl_host_kv_increment(void *ctx, uint32_t bucket, uint32_t key_ptr, uint32_t key_len,
                          uint64_t delta, uint32_t ret);

void sl_host_http_send(void *ctx, uint32_t method_ptr, uint32_t method_len, uint32_t url_ptr,
                       uint32_t url_len, uint32_t headers_ptr, uint32_t headers_len,
                       uint32_t body_ptr, uint32_t body_len, uint32_t ret);

#endif
