/*
 * component.h - WebAssembly components (the Component Model's binary, layer 1) as modules.
 *
 * A component built by wit-component (`jco embed` + `jco new`) for the processor world
 * holds the processor's core module plus the type information of the world. Sluice checks
 * that world against what it provides (imports and exports, names, versions and
 * structural types) and runs the main core module directly: the host implements the
 * canonical ABI for the core module, so the adapter modules wit-component adds around it
 * are not needed.
 *
 * Accepted: components whose imports are interfaces of the processor world (at Sluice's
 * versions, with Sluice's types), that export `process` (and optionally `init`) with the
 * world's types, lift them from a core module's exports with the legacy names
 * (process, init, memory, cabi_realloc, cabi_post_*), and use utf8 strings. Exports
 * Sluice does not call are accepted. Refused, each with a message naming what differs:
 * other interfaces, versions or types; jco's WASI preview 1 adapter (it imports WASI
 * preview 2 interfaces); the cm32p2 core name scheme; utf16 strings; async lifts and
 * lowers; compositions (instantiated nested components); start functions and values.
 *
 * component_reader.h reads the bytes, component_types.h the types, component_world.h
 * holds the world and the check.
 */
#ifndef SL_WASM_COMPONENT_H
#define SL_WASM_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* True when `bytes` start with a component's preamble (the Wasm magic and layer 1, any
 * version), not a core module's. */
bool sl__is_component(const uint8_t *bytes, size_t len);

/*
 * Checks the component's world and copies out its main core module (*core, malloc'ed,
 * caller frees; NULL on failure). SL_BAD_MODULE with a message prefixed with `name` that
 * says precisely what does not match, or, for malformed bytes, at which byte offset the
 * binary is malformed. Any bytes are safe to pass: nothing is read outside [bytes, len).
 */
sl_status sl__component_core_module(const uint8_t *bytes, size_t len, const char *name,
                                    uint8_t **core, size_t *core_len, sl_error *err);

#endif
