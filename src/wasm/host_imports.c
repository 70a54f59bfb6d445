/*
 * host_imports.c - the table of capability imports (see host_imports.h).
 *
 * Core signatures follow the canonical ABI: strings and lists are (ptr, len); a result
 * that does not fit one core value is written to a return area whose address the guest
 * passes last. docs/design/capabilities.md lists the return-area layouts.
 */
#include "wasm/host_imports.h"

#include "wasm/host_functions.h"

#include <string.h>

#define LOGGING "wasi:logging/logging@0.1.0-draft"
#define CONFIG "wasi:config/store@0.2.0-draft"
#define KV_STORE "wasi:keyvalue/store@0.2.0-draft2"
#define KV_ATOMICS "wasi:keyvalue/atomics@0.2.0-draft2"
#define HTTP "sluice:processor/outgoing-http@0.1.0"

static const sl_host_import imports[] = {
    {LOGGING, "log", "iiiii:", "sl_host_logging_log", (const void *)sl_host_logging_log, SL_CAP_LOGGING,
     "func(level: enum{trace, debug, info, warn, error, critical}, context: string, "
     "message: string)"},
    {CONFIG, "get", "iii:", "sl_host_config_get", (const void *)sl_host_config_get, SL_CAP_CONFIG,
     "func(key: string) -> result<option<string>, variant{upstream(string), "
     "io(string)}>"},
    {CONFIG, "get-all", "i:", "sl_host_config_get_all", (const void *)sl_host_config_get_all, SL_CAP_CONFIG,
     "func() -> result<list<tuple<string, string>>, variant{upstream(string), "
     "io(string)}>"},
    {KV_STORE, "open", "iii:", "sl_host_kv_open", (const void *)sl_host_kv_open, SL_CAP_KEYVALUE,
     "func(identifier: string) -> result<bucket, variant{no-such-store, access-denied, "
     "other(string)}>"},
    {KV_STORE, "[method]bucket.get", "iiii:", "sl_host_kv_get", (const void *)sl_host_kv_get, SL_CAP_KEYVALUE,
     "func(self: borrow<bucket>, key: string) -> result<option<list<u8>>, "
     "variant{no-such-store, access-denied, other(string)}>"},
    {KV_STORE, "[method]bucket.set", "iiiiii:", "sl_host_kv_set", (const void *)sl_host_kv_set, SL_CAP_KEYVALUE,
     "func(self: borrow<bucket>, key: string, value: list<u8>) -> result<_, "
     "variant{no-such-store, access-denied, other(string)}>"},
    {KV_STORE, "[method]bucket.delete", "iiii:", "sl_host_kv_delete", (const void *)sl_host_kv_delete, SL_CAP_KEYVALUE,
     "func(self: borrow<bucket>, key: string) -> result<_, variant{no-such-store, "
     "access-denied, other(string)}>"},
    {KV_STORE, "[method]bucket.exists", "iiii:", "sl_host_kv_exists", (const void *)sl_host_kv_exists, SL_CAP_KEYVALUE,
     "func(self: borrow<bucket>, key: string) -> result<bool, variant{no-such-store, "
     "access-denied, other(string)}>"},
    {KV_STORE, "[method]bucket.list-keys", "iiiii:", "sl_host_kv_list_keys", (const void *)sl_host_kv_list_keys, SL_CAP_KEYVALUE,
     "func(self: borrow<bucket>, "
     "cursor: option<string>) -> result<record{keys: list<string>, "
     "cursor: option<string>}, variant{no-such-store, access-denied, other(string)}>"},
    {KV_STORE, "[resource-drop]bucket", "i:", "sl_host_kv_drop", (const void *)sl_host_kv_drop, SL_CAP_KEYVALUE,
     "resource"},
    {KV_ATOMICS, "increment", "iiiIi:", "sl_host_kv_increment", (const void *)sl_host_kv_increment, SL_CAP_KEYVALUE,
     "func(bucket: borrow<bucket>, key: string, delta: s64) -> result<s64, "
     "variant{no-such-store, access-denied, other(string)}>"},
    {HTTP, "send", "iiiiiiiii:", "sl_host_http_send", (const void *)sl_host_http_send, SL_CAP_HTTP,
     "func(request: record{method: string, url: string, headers: list<tuple<string, "
     "string>>, body: list<u8>}) -> result<record{status: u16, "
     "headers: list<tuple<string, string>>, body: list<u8>}, variant{denied(string), "
     "invalid-request(string), timeout, too-large, failed(string)}>"},
};

const sl_host_import *sl__host_import_find(const char *module, const char *name) {
  for (size_t i = 0; i < sizeof imports / sizeof imports[0]; i++)
    if (strcmp(imports[i].module, module) == 0 && strcmp(imports[i].name, name) == 0)
      return &imports[i];
  return NULL;
}

const sl_host_import *sl__host_imports(size_t *count) {
  *count = sizeof imports / sizeof imports[0];
  return imports;
}

const char *sl__capability_name(sl_capability capability) {
  static const char *const names[] = {"logging", "config", "keyvalue", "http"};
  return (unsigned)capability < SL_CAP_COUNT ? names[capability] : "unknown";
}

const char *sl__capability_interface(sl_capability capability) {
  static const char *const names[] = {LOGGING, CONFIG, "wasi:keyvalue/store@0.2.0-draft2",
                                      HTTP};
  return (unsigned)capability < SL_CAP_COUNT ? names[capability] : "unknown";
}
