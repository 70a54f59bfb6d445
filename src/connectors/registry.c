/*
 * registry.c - the list of connectors. Adding one is one line here and one folder.
 */
#include <string.h>

#include "sluice/connector.h"

extern const sl_connector sl_stdin_source, sl_stdout_sink;
extern const sl_connector sl_file_source, sl_file_sink;
extern const sl_connector sl_http_source, sl_http_sink;
extern const sl_connector sl_generate_source;
extern const sl_connector sl_log_sink, sl_null_sink;
extern const sl_connector sl_nats_source, sl_nats_sink;
extern const sl_connector sl_jetstream_source, sl_jetstream_sink;
extern const sl_connector sl_mqtt_source, sl_mqtt_sink;
extern const sl_connector sl_redis_source, sl_redis_sink;
extern const sl_connector sl_kafka_source, sl_kafka_sink;
extern const sl_connector sl_postgres_sink;

/* Sources, then sinks; `sluice types` and the docs list them in this order. */
static const sl_connector *const connectors[] = {
    &sl_stdin_source,    &sl_file_source,   &sl_http_source,
    &sl_generate_source, &sl_nats_source,   &sl_jetstream_source,
    &sl_mqtt_source,     &sl_redis_source,  &sl_kafka_source,
    &sl_stdout_sink,     &sl_file_sink,     &sl_http_sink,
    &sl_log_sink,        &sl_null_sink,     &sl_nats_sink,
    &sl_jetstream_sink,  &sl_mqtt_sink,     &sl_redis_sink,
    &sl_kafka_sink,      &sl_postgres_sink, NULL,
};

const sl_connector *sl_connector_find(const char *name, sl_node_kind kind) {
  for (size_t i = 0; connectors[i]; i++)
    if (connectors[i]->kind == kind && strcmp(connectors[i]->name, name) == 0) return connectors[i];
  return NULL;
}

const sl_connector *const *sl_connector_all(void) { return connectors; }
