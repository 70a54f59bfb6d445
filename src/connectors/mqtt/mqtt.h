/*
 * mqtt.h - the settings of the `mqtt` source and sink.
 */
#ifndef SL_CONNECTORS_MQTT_H
#define SL_CONNECTORS_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/mqtt/mqtt_conn.h"
#include "sluice/connector.h"

/* Filled from the table in mqtt_source.c; borrowed by the source for its lifetime. */
typedef struct mqtt_source_config {
  mqtt_settings common; /* first: the shared table entries' offsets assume it */
  sl_conf_list topics;  /* topic filters */
  int64_t qos;          /* 0 or 1: the subscriptions' QoS */
  bool clean_session;   /* false: a persistent session (redelivery after a restart) */
} mqtt_source_config;

/* Filled from the table in mqtt_sink.c; borrowed by the sink for its lifetime. */
typedef struct mqtt_sink_config {
  mqtt_settings common; /* first: the shared table entries' offsets assume it */
  char *topic;          /* a template: text and {{meta.KEY}} */
  int64_t qos;          /* 0 or 1 */
  bool retain;
} mqtt_sink_config;

_Static_assert(offsetof(mqtt_source_config, common) == 0 && offsetof(mqtt_sink_config, common) == 0,
               "MQTT_SETTINGS_FIELDS assumes the shared settings come first");

extern const sl_connector sl_mqtt_source, sl_mqtt_sink;

#endif
