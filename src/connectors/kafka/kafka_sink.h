/*
 * kafka_sink.h - the `kafka` sink's settings.
 */
#ifndef SL_CONNECTORS_KAFKA_SINK_H
#define SL_CONNECTORS_KAFKA_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "connectors/kafka/kafka_client.h"
#include "sluice/connector.h"

/* Filled from the settings table in kafka_sink.c; borrowed for the node's lifetime. */
typedef struct kafka_sink_config {
  kafka_client_config client; /* first: the shared field macros name client.* */
  char *topic;                /* template: "{{meta.KEY}}" placeholders */
  char *key;                  /* template; empty expansion: no key */
  sl_conf_map headers;        /* header name -> value template */
  bool forward_headers;       /* metadata header.NAME -> header NAME */
  uint64_t delivery_timeout;  /* ms: message.timeout.ms, per attempt */
} kafka_sink_config;

extern const sl_connector sl_kafka_sink;

#endif
