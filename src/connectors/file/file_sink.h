/*
 * file_sink.h - the `file` sink's settings, for the tests that drive it through its
 * sl_connector callbacks (tests/unit/connectors/test_file_sink.c).
 */
#ifndef SL_CONNECTORS_FILE_SINK_H
#define SL_CONNECTORS_FILE_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/connector.h"

/* Filled from the settings table in file_sink.c. */
typedef struct file_sink_config {
  char *path;        /* the file appended to */
  uint64_t max_size; /* bytes; 0: never rotate */
  int64_t keep;      /* rotated files kept: PATH.1 (newest) ... PATH.keep */
  bool fsync;        /* fdatasync before a write returns */
} file_sink_config;

extern const sl_connector sl_file_sink;

#endif
