/*
 * http_source.c - `type: http` without inputs: an HTTP/1.1 and HTTP/2 endpoint.
 *
 * NOT IMPLEMENTED YET: only the settings table is here; init refuses to run.
 */
#include <stdlib.h>

#include "sluice/connector.h"

typedef struct http_source_config {
  char *listen;
  char *path;
  char *split;
  uint64_t max_body;
  uint64_t retry_after;
} http_source_config;

static const char *const split_choices[] = {"none", "lines", NULL};

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  return sl_error_set(err, SL_CONFIG, "the http source is not implemented yet");
}

static const sl_conf_field fields[] = {
    {"listen", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(http_source_config, listen),
     "HOST:PORT to listen on; \":9000\" listens on every address.", NULL},
    {"path", SL_CONF_STRING, 0, "/", offsetof(http_source_config, path),
     "The request path that accepts events; other paths answer 404.", NULL},
    {"split", SL_CONF_ENUM, 0, "none", offsetof(http_source_config, split),
     "none: a body is one event; lines: one event per line of the body.", split_choices},
    {"max_body", SL_CONF_SIZE, 0, "10MiB", offsetof(http_source_config, max_body),
     "Larger bodies are refused with 413.", NULL},
    {"retry_after", SL_CONF_DURATION, 0, "1s", offsetof(http_source_config, retry_after),
     "The Retry-After a 503 carries when the pipeline is full.", NULL},
    {NULL},
};

const sl_connector sl_http_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "http",
    .kind = SL_NODE_SOURCE,
    .summary = "HTTP/1.1 and HTTP/2 endpoint: a POST body is an event; 2xx after delivery.",
    .fields = fields,
    .config_size = sizeof(http_source_config),
    .init = init,
};
