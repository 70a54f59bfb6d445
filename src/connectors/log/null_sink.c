/*
 * null_sink.c - `type: null`: accepts and discards every event (benchmarks, dry runs).
 */
#include "sluice/connector.h"

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  *state = NULL;
  return SL_OK;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  return SL_OK;
}

static const sl_conf_field fields[] = {{NULL}};

const sl_connector sl_null_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "null",
    .kind = SL_NODE_SINK,
    .summary = "Accepts and discards every event.",
    .fields = fields,
    .config_size = 0,
    .init = init,
    .write = write_batch,
};
