/*
 * kafka_source.h - the `kafka` source's settings.
 */
#ifndef SL_CONNECTORS_KAFKA_SOURCE_H
#define SL_CONNECTORS_KAFKA_SOURCE_H

#include <stdint.h>

#include "connectors/kafka/kafka_client.h"
#include "sluice/connector.h"

/* Filled from the settings table in kafka_source.c; borrowed for the node's lifetime. */
typedef struct kafka_source_config {
  kafka_client_config client; /* first: the shared field macros name client.* */
  sl_conf_list topics;        /* "^regex" items subscribe by pattern */
  char *group;                /* group.id */
  char *start_at;             /* "earliest" or "latest": auto.offset.reset */
  int64_t batch_size;         /* messages per batch; 0: the pipeline's batch_size */
  uint64_t commit_interval;   /* ms: auto.commit.interval.ms */
} kafka_source_config;

extern const sl_connector sl_kafka_source;

#endif
