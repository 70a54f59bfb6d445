/*
 * wasm_fields.c - the settings of a `type: wasm` node (sl_wasm_config, pipeline.h).
 * Zero limits mean the engine's defaults (engine.h sl_limits).
 */
#include <stddef.h>

#include "sluice/pipeline.h"

const sl_conf_field sl_wasm_fields[] = {
    {"module", SL_CONF_PATH, SL_CONF_REQUIRED, NULL, offsetof(sl_wasm_config, module),
     "The processor's .wasm file, relative to the pipeline file's folder.", NULL},
    {"config", SL_CONF_MAP, 0, NULL, offsetof(sl_wasm_config, config),
     "Key/value settings handed to the processor's init.", NULL},
    {"env", SL_CONF_MAP, 0, NULL, offsetof(sl_wasm_config, env),
     "Environment variables the processor sees (WASI).", NULL},
    {"memory", SL_CONF_SIZE, 0, "0", offsetof(sl_wasm_config, memory),
     "Linear memory limit per instance, e.g. 64MiB; 0 is the engine default (64MiB).", NULL},
    {"time_limit", SL_CONF_DURATION, 0, "0", offsetof(sl_wasm_config, time_limit),
     "Wall time allowed per call, e.g. 100ms; 0 is the engine default (100ms).", NULL},
    {"stack", SL_CONF_SIZE, 0, "0", offsetof(sl_wasm_config, stack),
     "Native stack a call may use, e.g. 1MiB; 0 is the engine default (1MiB).", NULL},
    {"recycle_calls", SL_CONF_INT, 0, "0", offsetof(sl_wasm_config, recycle_calls),
     "Replace an instance after this many calls; 0 never does.", NULL},
    {"capabilities", SL_CONF_CAPABILITIES, 0, NULL, offsetof(sl_wasm_config, capabilities),
     "What the processor may use: keyvalue buckets, http targets, logging level "
     "(docs/capabilities/).",
     NULL},
    {NULL},
};
