/*
 * status.c - messages and names for sl_status, generated from SL_STATUS_MAP.
 */
#include "sluice/status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const messages[] = {
#define SL_STATUS_MESSAGE(name, msg) msg,
    SL_STATUS_MAP(SL_STATUS_MESSAGE)
#undef SL_STATUS_MESSAGE
};

static const char *const names[] = {
#define SL_STATUS_NAME(name, msg) "SL_" #name,
    SL_STATUS_MAP(SL_STATUS_NAME)
#undef SL_STATUS_NAME
};

const char *sl_status_str(sl_status status) {
  return (unsigned)status < SL_STATUS_COUNT ? messages[status] : "unknown status";
}

const char *sl_status_name(sl_status status) {
  return (unsigned)status < SL_STATUS_COUNT ? names[status] : "SL_UNKNOWN";
}

sl_status sl_error_set(sl_error *err, sl_status status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return status;
}
