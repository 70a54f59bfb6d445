/*
 * engine.h - run WebAssembly processors at native speed, with hard limits.
 *
 * Objects and who owns them:
 *   sl_engine  one per process: the compile cache under $SLUICE_HOME, the toolchain,
 *              the watchdog that enforces time limits. Thread-safe.
 *   sl_module  one compiled, loaded processor module (wasm2c -> cc -> dlopen). Immutable
 *              and reference-counted, so every worker thread may share it.
 *   sl_pool    the warm instances of one module for one node on one thread. Not
 *              thread-safe: a worker owns its pools, so the hot path takes no locks.
 *
 * A guest can never take the host down: every trap, limit and malformed result becomes
 * an `sl_fault` for that one event, the faulty instance is discarded, and the pool
 * creates a fresh one for the next event.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/event.h"
#include "sluice/status.h"

/* Why a processor failed an event. `name` is what pipelines put in metadata `error.kind`. */
#define SL_FAULT_MAP(X)                                                                            \
  X(NONE, "none", "no fault")                                                                      \
  X(UNREACHABLE, "unreachable", "unreachable instruction executed")                                \
  X(OUT_OF_BOUNDS, "out-of-bounds", "out-of-bounds memory or table access")                        \
  X(STACK_EXHAUSTED, "stack-exhausted", "call stack exhausted")                                    \
  X(DIVIDE_BY_ZERO, "divide-by-zero", "integer divide by zero")                                    \
  X(INTEGER_OVERFLOW, "integer-overflow", "integer overflow")                                      \
  X(INVALID_CONVERSION, "invalid-conversion", "invalid conversion to integer")                     \
  X(BAD_INDIRECT_CALL, "bad-indirect-call", "indirect call to a null or mistyped function")        \
  X(UNCAUGHT_EXCEPTION, "uncaught-exception", "uncaught exception")                                \
  X(TIMEOUT, "timeout", "time limit exceeded")                                                     \
  X(OUT_OF_MEMORY, "out-of-memory", "memory limit reached")                                        \
  X(BAD_RESULT, "bad-result", "the processor returned a malformed result")                         \
  X(PROCESSOR_ERROR, "processor-error", "the processor returned an error")                         \
  X(EXIT, "exit", "the processor called proc_exit")                                               \
  X(BAD_IMPORT_CALL, "bad-import-call", "the processor called a host import with invalid arguments")

typedef enum sl_fault_kind {
#define SL_FAULT_ENUM(id, name, text) SL_FAULT_##id,
  SL_FAULT_MAP(SL_FAULT_ENUM)
#undef SL_FAULT_ENUM
      SL_FAULT_COUNT
} sl_fault_kind;

typedef struct sl_fault {
  sl_fault_kind kind;
  char message[512]; /* precise, for people; for PROCESSOR_ERROR the guest's own string */
} sl_fault;

/* "out-of-bounds" etc.; never NULL. */
const char *sl_fault_name(sl_fault_kind kind);

/*
 * Limits for one processor node. Zero in any field means "the default" (shown in
 * brackets), so `sl_limits limits = {0};` is valid.
 */
typedef struct sl_limits {
  uint64_t memory_bytes;  /* [64 MiB] linear memory ceiling: memory.grow fails above it */
  uint32_t time_ms;       /* [100] CPU time per call; a runaway call is stopped within 2x
                             (a call blocked rather than running: 10x in wall time) */
  uint32_t stack_bytes;   /* [1 MiB] native stack a call may use before it traps */
  uint64_t recycle_calls; /* [0 = never] replace an instance after this many calls */
  uint64_t
      recycle_memory; /* [3/4 of memory_bytes] replace an instance whose memory grew past this */
} sl_limits;

#define SL_LIMIT_MEMORY_DEFAULT (64u << 20)
#define SL_LIMIT_TIME_MS_DEFAULT 100u
#define SL_LIMIT_STACK_DEFAULT (1u << 20)

/* Fills in defaults for every zero field of `limits`. */
void sl_limits_resolve(sl_limits *limits);

/* A borrowed key/value pair (NUL-terminated strings). */
typedef struct sl_kv {
  const char *key;
  const char *value;
} sl_kv;

/* Where processor output (WASI stdout/stderr) and engine notices go. `line` has no newline. */
typedef void (*sl_log_fn)(void *user, const char *node_id, const char *stream, const char *line,
                          size_t len);

typedef struct sl_engine_options {
  const char *home;   /* NULL: $SLUICE_HOME, else ~/.sluice */
  const char *cc;     /* NULL: $SLUICE_CC, else "cc" */
  const char *wasm2c; /* NULL: $SLUICE_WASM2C, else "wasm2c" */
  const char *cflags; /* NULL: "-O1" (as fast as -O2 on wasm2c output, half the compile time); part
                         of the cache key */
  bool no_interrupt_checks; /* benchmarks only: compile without time-limit checks */
  sl_log_fn log;            /* NULL: lines go to stderr as "[node] line" */
  void *log_user;
} sl_engine_options;

typedef struct sl_engine sl_engine;
typedef struct sl_module sl_module;
typedef struct sl_pool sl_pool;

/* Creates the engine. `opts` may be NULL. On success the caller owns *out and releases
 * it with sl_engine_destroy; modules hold their own reference, so the engine's memory
 * lives until the last module is released. */
sl_status sl_engine_new(const sl_engine_options *opts, sl_engine **out, sl_error *err);
void sl_engine_destroy(sl_engine *engine);

/* The engine's home folder (options.home, else $SLUICE_HOME, else ~/.sluice); the cache
 * and pipeline state live under it. Owned by the engine. */
const char *sl_engine_home(const sl_engine *engine);

/* What loading a module did, for people and benchmarks. */
typedef struct sl_compile_info {
  bool cached;          /* true: a verified artifact was reused */
  double compile_ms;    /* wasm2c + cc time (0 when cached) */
  double load_ms;       /* verify + dlopen time */
  char module_hash[65]; /* sha256 of the .wasm, hex */
  char artifact[4096];  /* path of the cached native artifact */
} sl_compile_info;

/*
 * Validates, compiles (or reuses the cached artifact) and loads a module.
 * Statuses: SL_OK; SL_IO (cannot read); SL_BAD_MODULE (invalid Wasm, missing or
 * mistyped exports, an import the host does not provide: `err` names it);
 * SL_COMPILE / SL_LOAD (toolchain failures, with their output in `err`).
 * On success the caller owns one reference to *out. `info` may be NULL.
 */
sl_status sl_module_load_file(sl_engine *engine, const char *path, sl_module **out,
                              sl_compile_info *info, sl_error *err);
sl_status sl_module_load_bytes(sl_engine *engine, const uint8_t *wasm, size_t len,
                               const char *display_name, sl_module **out, sl_compile_info *info,
                               sl_error *err);
void sl_module_retain(sl_module *module);

/* Whether the module imports capability `capability` ("logging", "config", "keyvalue",
 * "http"); if so, `import` (may be NULL) gets the first such import as "MODULE NAME", e.g.
 * "wasi:keyvalue/store@0.2.0-draft2 open", for messages. */
bool sl_module_uses_capability(const sl_module *module, const char *capability, char *import,
                               size_t import_cap);
void sl_module_release(sl_module *module);

typedef struct sl_pool_options {
  const char *node_id; /* tags log lines; NULL: "processor" */
  const sl_kv *config; /* handed to the guest's init, in order */
  size_t config_count;
  const sl_kv *env; /* the guest's WASI environment */
  size_t env_count;
  sl_limits limits;
  /* Where the guest's stdout/stderr lines go, tagged with node_id; NULL: the engine's log
   * function. A pipeline sets its own, so each pipeline's processor output reaches that
   * pipeline's log. Called on the thread running the pool, with `log_user`. */
  sl_log_fn log;
  void *log_user;
  /* What the node was granted besides logging and config (src/caps/node_caps.h); NULL:
   * nothing. Not owned: it must outlive the pool. */
  const struct sl_node_caps *caps;
} sl_pool_options;

/*
 * Creates a pool and its first instance, running `_initialize` and `init(config)`, so a
 * bad configuration is reported now rather than on the first event.
 * Statuses: SL_OK; SL_INIT (init returned err or trapped: `fault` says which).
 * The pool holds its own reference to `module` and copies what it needs from `opts`.
 */
sl_status sl_pool_new(sl_module *module, const sl_pool_options *opts, sl_pool **out,
                      sl_fault *fault);
void sl_pool_destroy(sl_pool *pool);

/*
 * Runs one event. On SL_OK the resulting events (zero, one or many) are appended to
 * `out`, which owns their bytes. On SL_FAULT nothing is appended, `fault` says why,
 * and the pool is ready for the next event (a trapped instance is replaced).
 * SL_NOMEM only if the host itself runs out of memory.
 */
sl_status sl_pool_process(sl_pool *pool, const sl_event *in, sl_event_list *out, sl_fault *fault);

typedef struct sl_pool_stats {
  uint64_t calls;
  uint64_t faults;
  uint64_t instances_created;
  uint64_t recycled;     /* instances replaced by recycle_calls or recycle_memory */
  uint64_t memory_bytes; /* linear memory of the current warm instance */
  uint64_t instances;    /* warm instances alive now: 0 or 1 (0 after a fault or a recycle,
                            until the next event starts a fresh one) */
} sl_pool_stats;

void sl_pool_stats_get(const sl_pool *pool, sl_pool_stats *stats);

#endif
