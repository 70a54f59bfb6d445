/*
 * host_logging.c - wasi:logging/logging@0.1.0-draft: `log(level, context, message)`.
 *
 * A line goes to the same place as the processor's stdout: the pipeline's log, tagged with
 * the node id, with the level as its stream ("[enrich] warn: cache: miss for 42"). Lines
 * below the node's `capabilities.logging.level` (default info) are dropped.
 */
#include <stdio.h>

#include "caps/node_caps.h"
#include "wasm/host_call.h"
#include "wasm/host_functions.h"

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "critical"};

void sl_host_logging_log(void *ctx, uint32_t level, uint32_t context_ptr, uint32_t context_len,
                         uint32_t message_ptr, uint32_t message_len) {
  sl_instance *inst = sl__host_enter(ctx);
  if (level > SL_GUEST_LOG_CRITICAL)
    sl__guest_trap(SL_FAULT_BAD_IMPORT_CALL, "wasi:logging log: level %u is not a level", level);
  const uint8_t *context = sl__host_arg_string(inst, context_ptr, context_len, "log context");
  const uint8_t *message = sl__host_arg_string(inst, message_ptr, message_len, "log message");
  sl_guest_log_level threshold = inst->host.caps ? inst->host.caps->log_level : SL_GUEST_LOG_INFO;
  if (level >= threshold) {
    /* One log line: a message is cut at 4 KiB, like any other log line. */
    char line[4096];
    int n = context_len ? snprintf(line, sizeof line, "%.*s: %.*s", (int)context_len,
                                   (const char *)context, (int)message_len, (const char *)message)
                        : snprintf(line, sizeof line, "%.*s", (int)message_len,
                                   (const char *)message);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    for (size_t i = 0; i < len; i++) /* one event, one line */
      if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    sl_log_fn log = inst->wasi.log ? inst->wasi.log : sl__log_stderr;
    log(inst->wasi.log_user, inst->wasi.node_id, level_names[level], line, len);
  }
  sl__host_leave(inst);
}
