/*
 * caps_probe.c - a processor that runs one capability call per event, so tests can drive
 * every import from the host side. The payload is a command; the output event's payload
 * is its answer:
 *
 *   open B              -> "ok" | "err no-such-store"          (buckets stay open by name)
 *   get B K             -> "some V" | "none" | "err other: ..."
 *   set B K V           -> "ok"          delete B K -> "ok"     exists B K -> "true"|"false"
 *   incr B K DELTA      -> the new value
 *   list B [CURSOR]     -> "keys k1,k2,... cursor C" (C is "none" at the end)
 *   drop B              -> "ok"
 *   http METHOD URL [BODY] -> "status N body B header:x-echo=V" | "err denied: ..." ...
 *   config K            -> "some V" | "none"       configall -> "k=v,k=v"
 *   log LEVEL MESSAGE   -> "ok"
 *   badptr | badhandle | badlevel -> calls an import wrongly (the host must trap)
 *
 * It declares the imports itself (not through an SDK) so the test of the host does not
 * depend on one.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "guest_abi.h"

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define KV "wasi:keyvalue/store@0.2.0-draft2"

IMPORT(KV, "open") void kv_open(const char *name, size_t len, void *ret);
IMPORT(KV, "[method]bucket.get") void kv_get(int b, const char *k, size_t kl, void *ret);
IMPORT(KV, "[method]bucket.set")
void kv_set(int b, const char *k, size_t kl, const char *v, size_t vl, void *ret);
IMPORT(KV, "[method]bucket.delete") void kv_delete(int b, const char *k, size_t kl, void *ret);
IMPORT(KV, "[method]bucket.exists") void kv_exists(int b, const char *k, size_t kl, void *ret);
IMPORT(KV, "[method]bucket.list-keys")
void kv_list(int b, int has_cursor, const char *c, size_t cl, void *ret);
IMPORT(KV, "[resource-drop]bucket") void kv_drop(int b);
IMPORT("wasi:keyvalue/atomics@0.2.0-draft2", "increment")
void kv_incr(int b, const char *k, size_t kl, int64_t delta, void *ret);
IMPORT("wasi:config/store@0.2.0-draft", "get") void cfg_get(const char *k, size_t kl, void *ret);
IMPORT("wasi:config/store@0.2.0-draft", "get-all") void cfg_get_all(void *ret);
IMPORT("wasi:logging/logging@0.1.0-draft", "log")
void log_line(int level, const char *c, size_t cl, const char *m, size_t ml);
IMPORT("sluice:processor/outgoing-http@0.1.0", "send")
void http_send(const char *m, size_t ml, const char *u, size_t ul, const struct pair *h, size_t hc,
               const char *b, size_t bl, void *ret);

typedef struct str {
  char *ptr;
  size_t len;
} str;

static _Alignas(8) uint8_t ret[32];
static char answer[65536];
static size_t answer_len;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(answer + answer_len, sizeof answer - answer_len, fmt, ap);
  va_end(ap);
  if (n > 0) answer_len += (size_t)n;
  if (answer_len > sizeof answer - 1) answer_len = sizeof answer - 1;
}

static uint32_t u32_at(size_t off) {
  uint32_t v;
  memcpy(&v, ret + off, 4);
  return v;
}

/* A kv error at `off` in the return area. */
static void say_kv_error(size_t off) {
  static const char *const kinds[] = {"no-such-store", "access-denied", "other"};
  uint8_t kind = ret[off];
  say("err %s", kind < 3 ? kinds[kind] : "?");
  if (kind == 2) say(": %.*s", (int)u32_at(off + 8), (char *)u32_at(off + 4));
}

static struct {
  char name[64];
  int handle;
} open_buckets[16];

static int bucket(const char *name, bool *failed) {
  for (int i = 0; i < 16; i++)
    if (open_buckets[i].handle && strcmp(open_buckets[i].name, name) == 0)
      return open_buckets[i].handle;
  kv_open(name, strlen(name), ret);
  if (ret[0]) {
    say_kv_error(4);
    *failed = true;
    return 0;
  }
  for (int i = 0; i < 16; i++)
    if (!open_buckets[i].handle) {
      snprintf(open_buckets[i].name, sizeof open_buckets[i].name, "%s", name);
      open_buckets[i].handle = (int)u32_at(4);
      break;
    }
  return (int)u32_at(4);
}

static void forget(const char *name) {
  for (int i = 0; i < 16; i++)
    if (open_buckets[i].handle && strcmp(open_buckets[i].name, name) == 0)
      open_buckets[i].handle = 0;
}

static void run(char *cmd) {
  char *save = NULL;
  char *op = strtok_r(cmd, " ", &save);
  char *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, " ", &save);
  char *rest = strtok_r(NULL, "", &save);
  bool failed = false;
  if (!op) return say("err empty command");
  if (strcmp(op, "config") == 0 && a) {
    cfg_get(a, strlen(a), ret);
    if (ret[4]) return say("some %.*s", (int)u32_at(12), (char *)u32_at(8));
    return say("none");
  }
  if (strcmp(op, "configall") == 0) {
    cfg_get_all(ret);
    const struct pair *pairs = (const struct pair *)u32_at(4);
    for (uint32_t i = 0; i < u32_at(8); i++)
      say("%s%.*s=%.*s", i ? "," : "", (int)pairs[i].key_len, pairs[i].key,
          (int)pairs[i].value_len, pairs[i].value);
    return;
  }
  if (strcmp(op, "log") == 0 && a) {
    int level = atoi(a);
    char *msg = b ? b : "";
    log_line(level, "probe", 5, msg, strlen(msg));
    return say("ok");
  }
  if (strcmp(op, "badlevel") == 0) return log_line(9, "", 0, "", 0);
  if (strcmp(op, "badptr") == 0) return kv_open((const char *)0x7ffffff0, 64, ret);
  if (strcmp(op, "badhandle") == 0) return kv_get(999, "k", 1, ret);
  if (strcmp(op, "http") == 0 && a && b) {
    struct pair header = {"x-probe", 7, "guest", 5};
    char *body = rest ? rest : "";
    http_send(a, strlen(a), b, strlen(b), &header, 1, body, strlen(body), ret);
    if (ret[0]) {
      static const char *const kinds[] = {"denied", "invalid-request", "timeout", "too-large",
                                          "failed"};
      uint8_t kind = ret[4];
      say("err %s", kind < 5 ? kinds[kind] : "?");
      if (kind == 0 || kind == 1 || kind == 4)
        say(": %.*s", (int)u32_at(12), (char *)u32_at(8));
      return;
    }
    uint16_t status;
    memcpy(&status, ret + 4, 2);
    say("status %u body %.*s", status, (int)u32_at(20), (char *)u32_at(16));
    const struct pair *headers = (const struct pair *)u32_at(8);
    for (uint32_t i = 0; i < u32_at(12); i++)
      if (headers[i].key_len == 6 && memcmp(headers[i].key, "x-echo", 6) == 0)
        say(" header:x-echo=%.*s", (int)headers[i].value_len, headers[i].value);
    return;
  }
  if (!a) return say("err no bucket");
  if (strcmp(op, "open") == 0) {
    bucket(a, &failed);
    if (!failed) say("ok");
    return;
  }
  if (strcmp(op, "drop") == 0) {
    int h = bucket(a, &failed);
    if (failed) return;
    kv_drop(h);
    forget(a);
    return say("ok");
  }
  int h = bucket(a, &failed);
  if (failed) return;
  if (strcmp(op, "list") == 0) {
    kv_list(h, b != NULL, b ? b : "", b ? strlen(b) : 0, ret);
    if (ret[0]) return say_kv_error(4);
    const str *keys = (const str *)u32_at(4);
    say("keys ");
    for (uint32_t i = 0; i < u32_at(8); i++) say("%s%.*s", i ? "," : "", (int)keys[i].len, keys[i].ptr);
    if (ret[12]) return say(" cursor %.*s", (int)u32_at(20), (char *)u32_at(16));
    return say(" cursor none");
  }
  if (!b) return say("err no key");
  if (strcmp(op, "get") == 0) {
    kv_get(h, b, strlen(b), ret);
    if (ret[0]) return say_kv_error(4);
    if (ret[4]) return say("some %.*s", (int)u32_at(12), (char *)u32_at(8));
    return say("none");
  }
  if (strcmp(op, "set") == 0) {
    char *v = rest ? rest : "";
    kv_set(h, b, strlen(b), v, strlen(v), ret);
    return ret[0] ? say_kv_error(4) : say("ok");
  }
  if (strcmp(op, "delete") == 0) {
    kv_delete(h, b, strlen(b), ret);
    return ret[0] ? say_kv_error(4) : say("ok");
  }
  if (strcmp(op, "exists") == 0) {
    kv_exists(h, b, strlen(b), ret);
    return ret[0] ? say_kv_error(4) : say(ret[4] ? "true" : "false");
  }
  if (strcmp(op, "incr") == 0) {
    kv_incr(h, b, strlen(b), rest ? atoll(rest) : 1, ret);
    if (ret[0]) return say_kv_error(8);
    int64_t v;
    memcpy(&v, ret + 8, 8);
    return say("%lld", (long long)v);
  }
  say("err unknown command %s", op);
}

static struct event out;
static struct result result;

__attribute__((export_name("process"))) struct result *process(uint8_t *payload, size_t len,
                                                              struct pair *meta, size_t count) {
  char cmd[4096];
  size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
  memcpy(cmd, payload, n);
  cmd[n] = '\0';
  guest_free_input(payload, meta, count);
  answer_len = 0;
  run(cmd);
  out = (struct event){(uint8_t *)answer, answer_len, NULL, 0};
  result = (struct result){0, &out, 1};
  return &result;
}
