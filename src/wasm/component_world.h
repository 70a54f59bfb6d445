/*
 * component_world.h - the processor world (wit/processor.wit) as Sluice provides it at
 * the component level, and the check of a component's imports and exports against it.
 *
 * What Sluice provides comes from two tables: the functions of every capability
 * interface, with their component-level types, are the `component_type` column of
 * host_imports.c (a `[resource-drop]NAME` entry has the type "resource": the interface
 * declares the resource NAME); the named types of those interfaces and of
 * `sluice:processor/types` (which has no functions) are in component_world.c. Types are
 * compared as their component_types.h renderings.
 *
 * The first difference is reported, naming the interface, the item and both types, e.g.
 *   component imports wasi:config/store@0.2.0-draft function get as
 *   func(key: string) -> option<string>, but Sluice provides func(key: string) -> result<...>
 */
#ifndef SL_WASM_COMPONENT_WORLD_H
#define SL_WASM_COMPONENT_WORLD_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/status.h"
#include "wasm/component_types.h"

/* A component-level import or export, as component.c read it. */
typedef struct sl_comp_item {
  sl_comp_name name;
  sl_comp_sort sort;
  uint32_t type; /* the type id (SL_CT_NONE for core modules and values) */
} sl_comp_item;

/* The interface that holds the processor world's own types (`event`). */
#define SL_WORLD_TYPES_INTERFACE "sluice:processor/types@0.1.0"

/*
 * Checks the component's imports: every imported instance must be an interface Sluice
 * provides at the same version, every function, resource and type it declares must be
 * one Sluice provides with the same type. Imports of types bound to those (`use` in the
 * world) are accepted. All interfaces Sluice does not provide are named in one message;
 * `has_wasi_adapter` adds why they are there when the component holds jco's WASI adapter.
 * Messages are prefixed with `name`.
 */
sl_status sl__world_check_imports(const sl_ctypes *types, const sl_comp_item *imports, size_t count,
                                  bool has_wasi_adapter, const char *name, sl_error *err);

/*
 * Checks the component's exports: `process` must be there, and it and `init` (optional)
 * must have the world's types. Other exports are accepted: Sluice never calls them, and
 * they change nothing about how `process` and `init` run.
 */
sl_status sl__world_check_exports(const sl_ctypes *types, const sl_comp_item *exports, size_t count,
                                  const char *name, sl_error *err);

/* The rendered type the world gives a function export ("process", "init"), or NULL. */
const char *sl__world_export_type(const char *export_name);

/* The rendered type Sluice gives named type `type_name` of `interface`, or NULL. For
 * tests and for the check itself. */
const char *sl__world_type(const char *interface, const char *type_name);

/* Every interface that has named types in the table above, one per call: index 0, 1, ...
 * until NULL. Lets a test check that each is an interface Sluice provides. */
const char *sl__world_type_interface(size_t index);

#endif
