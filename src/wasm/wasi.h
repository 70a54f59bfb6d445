/*
 * wasi.h - the WASI preview 1 subset Sluice gives processors, so ordinary wasi-libc and
 * Rust programs run unchanged.
 *
 * Provided: fd_write to stdout/stderr (becomes log lines tagged with the node id), clocks,
 * random_get, environ_* (from the node's `env` map), empty args_*, proc_exit (ends the
 * instance with an `exit` fault), sched_yield. Files and sockets answer with a WASI error.
 *
 * wasm2c calls imports as functions named Z_<module>Z_<name> that receive the pointer the
 * host passed at instantiation; that pointer is an `sl_wasi` (the struct name is the one
 * wasm2c declares for the import module).
 */
#ifndef SL_WASM_WASI_H
#define SL_WASM_WASI_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/engine.h"
#include "wasm-rt.h"

typedef struct Z_wasi_snapshot_preview1_instance_t sl_wasi;

struct Z_wasi_snapshot_preview1_instance_t {
  wasm_rt_memory_t *memory; /* the instance's exported memory; set after instantiation */
  const char *node_id;
  sl_log_fn log;
  void *log_user;
  char **environ; /* "KEY=VALUE" strings, owned by the pool */
  size_t environ_count;
  uint32_t exit_code;
  /* Partial lines written without a newline yet, per stream (1 = stdout, 2 = stderr). */
  char line[2][1024];
  size_t line_len[2];
};

#define SL_WASI_MODULE "wasi_snapshot_preview1"

/* The signature ("iiii:i" form, see module_info.h) the host implements for
 * wasi_snapshot_preview1.`name`, or NULL if the host does not provide that function. */
const char *sl__wasi_signature(const char *name);

/* Emits any partial output line still buffered (at instance end). */
void sl__wasi_flush(sl_wasi *wasi);

/* The default log destination: "[node] line" on stderr. */
void sl__log_stderr(void *user, const char *node_id, const char *stream, const char *line,
                    size_t len);

#endif
