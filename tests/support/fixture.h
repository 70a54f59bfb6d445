/*
 * fixture.h - shared helpers for the engine tests: an engine on the test SLUICE_HOME,
 * guest modules by name (built by tests/guests/guests.mk into $SLUICE_GUESTS), and
 * one-call wrappers. Every helper asserts, so a test reads as the behaviour it checks.
 */
#ifndef SL_TEST_FIXTURE_H
#define SL_TEST_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/engine.h"

/* $<dir_env>/<name>.wasm, for modules the Makefile built before running the tests. */
static inline const char *built_module(const char *dir_env, const char *name) {
  static __thread char path[4096];
  const char *dir = getenv(dir_env);
  cr_assert(dir, "%s is not set: run the tests with `make test`", dir_env);
  snprintf(path, sizeof path, "%s/%s.wasm", dir, name);
  return path;
}

/* A test guest (tests/guests/NAME) or an example processor, by name. */
static inline const char *guest_path(const char *name) { return built_module("SLUICE_GUESTS", name); }
static inline const char *example_path(const char *name) {
  return built_module("SLUICE_EXAMPLES", name);
}

/* Lines the guest wrote, captured instead of going to stderr. */
typedef struct captured_log {
  char text[8192];
  size_t len;
} captured_log;

static inline void capture_log(void *user, const char *node, const char *stream, const char *line,
                               size_t len) {
  captured_log *log = user;
  int n = snprintf(log->text + log->len, sizeof log->text - log->len, "%s|%s|%.*s\n", node, stream,
                   (int)len, line);
  if (n > 0 && log->len + (size_t)n < sizeof log->text) log->len += (size_t)n;
}

static inline sl_engine *test_engine_with(const sl_engine_options *opts) {
  sl_engine *engine = NULL;
  sl_error err = {{0}};
  sl_status status = sl_engine_new(opts, &engine, &err);
  cr_assert_eq(status, SL_OK, "sl_engine_new: %s", err.message);
  return engine;
}

static inline sl_engine *test_engine(void) { return test_engine_with(NULL); }

static inline sl_module *load_guest(sl_engine *engine, const char *path) {
  sl_module *module = NULL;
  sl_error err = {{0}};
  sl_status status = sl_module_load_file(engine, path, &module, NULL, &err);
  cr_assert_eq(status, SL_OK, "loading %s: %s", path, err.message);
  return module;
}

static inline sl_pool *new_pool(sl_module *module, const sl_limits *limits) {
  sl_pool_options opts = {.node_id = "test"};
  if (limits) opts.limits = *limits;
  sl_pool *pool = NULL;
  sl_fault fault = {0};
  sl_status status = sl_pool_new(module, &opts, &pool, &fault);
  cr_assert_eq(status, SL_OK, "sl_pool_new: %s", fault.message);
  return pool;
}

/* A pool of a guest on a fresh engine; destroying the pool releases everything, since
 * the pool holds the module and the module holds the engine. */
static inline sl_pool *guest_pool(const char *name, const sl_limits *limits) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path(name));
  sl_pool *pool = new_pool(module, limits);
  sl_module_release(module);
  sl_engine_destroy(engine);
  return pool;
}

static inline sl_status run_text(sl_pool *pool, const char *payload, sl_event_list *out,
                                 sl_fault *fault) {
  sl_event in = {.payload = sl_bytes_from_cstr(payload)};
  return sl_pool_process(pool, &in, out, fault);
}

/* The decimal number an event's payload holds (payloads are not NUL-terminated). */
static inline long payload_number(const sl_event *e) {
  char text[32];
  snprintf(text, sizeof text, "%.*s", (int)(e->payload.len < 31 ? e->payload.len : 31),
           (const char *)e->payload.ptr);
  return strtol(text, NULL, 10);
}

/* Runs `payload` and asserts it fails with `kind`. */
static inline void expect_fault(sl_pool *pool, const char *payload, sl_fault_kind kind) {
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault = {0};
  sl_status status = run_text(pool, payload, &out, &fault);
  cr_assert_eq(status, SL_FAULT, "payload '%s': expected a %s fault, got status %s", payload,
               sl_fault_name(kind), sl_status_name(status));
  cr_assert_eq(fault.kind, kind, "payload '%s': expected %s, got %s (%s)", payload,
               sl_fault_name(kind), sl_fault_name(fault.kind), fault.message);
  cr_assert_eq(out.count, 0, "a failed call must not append events");
  sl_event_list_destroy(&out);
}

/* Runs `payload` and asserts one event comes back with payload `expected`. */
static inline void expect_one(sl_pool *pool, const char *payload, const char *expected) {
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault = {0};
  sl_status status = run_text(pool, payload, &out, &fault);
  cr_assert_eq(status, SL_OK, "payload '%s': %s", payload, fault.message);
  cr_assert_eq(out.count, 1, "payload '%s': expected 1 event, got %zu", payload, out.count);
  cr_assert_eq(out.items[0].payload.len, strlen(expected), "payload '%s': got '%.*s', expected '%s'",
               payload, (int)out.items[0].payload.len, (const char *)out.items[0].payload.ptr,
               expected);
  cr_assert(!expected[0] || memcmp(out.items[0].payload.ptr, expected, strlen(expected)) == 0,
            "payload '%s': got '%.*s', expected '%s'", payload, (int)out.items[0].payload.len,
            (const char *)out.items[0].payload.ptr, expected);
  sl_event_list_destroy(&out);
}

#endif
