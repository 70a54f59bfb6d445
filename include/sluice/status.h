/*
 * status.h - the one status type every Sluice function returns.
 *
 * Results go through out-parameters; the return value says only how the call went.
 * The table below generates both the enum and the message table, so a new status is
 * one line here (the libuv UV_ERRNO_MAP pattern).
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#define SL_STATUS_MAP(X)                                                                           \
  X(OK, "success")                                                                                 \
  X(AGAIN, "try again later")                                                                      \
  X(DECLINED, "not handled here")                                                                  \
  X(NOMEM, "out of host memory")                                                                   \
  X(INVALID, "invalid argument")                                                                   \
  X(IO, "input/output error")                                                                      \
  X(NOT_FOUND, "not found")                                                                        \
  X(BAD_MODULE, "the WebAssembly module is invalid or does not follow the contract")               \
  X(COMPILE, "compiling the module to native code failed")                                         \
  X(LOAD, "loading the compiled module failed")                                                    \
  X(FAULT, "the processor failed this event")                                                      \
  X(INIT, "the processor's init failed")                                                           \
  X(CONFIG, "the pipeline configuration is invalid")                                               \
  X(CLOSED, "stopped: no more work is accepted")

typedef enum sl_status {
#define SL_STATUS_ENUM(name, msg) SL_##name,
  SL_STATUS_MAP(SL_STATUS_ENUM)
#undef SL_STATUS_ENUM
      SL_STATUS_COUNT
} sl_status;

/* A static, human-readable description of `status`; never NULL. */
const char *sl_status_str(sl_status status);

/* The symbolic name, e.g. "SL_FAULT"; never NULL. */
const char *sl_status_name(sl_status status);

/*
 * A caller-owned buffer for a message that says what was wrong and where.
 * Functions that can fail for reasons a user must read take an `sl_error *` (may be NULL).
 */
typedef struct sl_error {
  char message[1024];
} sl_error;

/* Formats into `err` (if not NULL) and returns `status`, so a failure is one line:
 * `return sl_error_set(err, SL_INVALID, "limit %s: ...", name);` */
sl_status sl_error_set(sl_error *err, sl_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
