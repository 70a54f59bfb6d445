/*
 * file_source.h - the `file` source's settings, for tests that check how a pipeline file
 * fills them (tests/unit/config/test_pipeline_load.c).
 */
#ifndef SL_CONNECTORS_FILE_SOURCE_H
#define SL_CONNECTORS_FILE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/connector.h"

/* Filled from the settings table in file_source.c. */
typedef struct file_source_config {
  char *path;             /* the file read */
  bool follow;            /* keep reading as it grows; reopen when replaced */
  char *start_at;         /* "beginning" or "end", without a checkpoint */
  bool checkpoint;        /* persist the acknowledged offset */
  uint64_t max_line;      /* bytes */
  uint64_t poll_interval; /* ms */
} file_source_config;

extern const sl_connector sl_file_source;

#endif
