/*
 * log_sink.c - `type: log`: each event as one log line (stderr), metadata included;
 * handy as the reader of an `<id>.errors` output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/connector.h"

typedef struct log_config {
  char *level;
} log_config;

typedef struct log_sink {
  const sl_node_ctx *node;
  sl_log_level level;
} log_sink;

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const log_config *cfg = config;
  log_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->level = SL_LOG_INFO;
  for (int i = 0; levels[i]; i++)
    if (cfg->level && strcmp(cfg->level, levels[i]) == 0) sink->level = (sl_log_level)i;
  *state = sink;
  return SL_OK;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  log_sink *sink = state;
  char meta[2048];
  for (size_t i = 0; i < batch->count; i++) {
    const sl_event *ev = &batch->items[i];
    size_t used = 0;
    meta[0] = '\0';
    for (size_t m = 0; m < ev->meta_count && used < sizeof meta; m++) {
      int n = snprintf(meta + used, sizeof meta - used, " %.*s=%.*s", (int)ev->meta[m].key.len,
                       (const char *)ev->meta[m].key.ptr, (int)ev->meta[m].value.len,
                       (const char *)ev->meta[m].value.ptr);
      if (n < 0) break;
      used += (size_t)n;
    }
    sl_node_log(sink->node, sink->level, "%.*s%s", (int)ev->payload.len,
                (const char *)ev->payload.ptr, meta);
  }
  return SL_OK;
}

static void destroy(void *state) { free(state); }

static const sl_conf_field fields[] = {
    {"level", SL_CONF_ENUM, 0, "info", offsetof(log_config, level),
     "The level the lines are logged at.", levels},
    {NULL},
};

const sl_connector sl_log_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "log",
    .kind = SL_NODE_SINK,
    .summary = "Logs each event (payload and metadata) to the pipeline's log on stderr.",
    .fields = fields,
    .config_size = sizeof(log_config),
    .init = init,
    .write = write_batch,
    .destroy = destroy,
};
