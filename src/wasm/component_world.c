/*
 * component_world.c - a component's imports and exports against the processor world
 * (see component_world.h).
 *
 * Sections:
 *   1. the world's named types and exports, as Sluice provides them
 *   2. interfaces: which Sluice provides, names and versions
 *   3. the check of imports
 *   4. the check of exports
 */
#include "wasm/component_world.h"

#include <stdio.h>
#include <string.h>

#include "wasm/host_imports.h"

/* Room for one rendered type in a message; longer ones end in "..." and never match. */
#define TYPE_TEXT 2048
/* Interface and item names longer than this are not Sluice's. */
#define NAME_TEXT 256

/* ---- 1. the world's named types and exports --------------------------------------- */

#define LOGGING "wasi:logging/logging@0.1.0-draft"
#define CONFIG "wasi:config/store@0.2.0-draft"
#define KV_STORE "wasi:keyvalue/store@0.2.0-draft2"
#define KV_ATOMICS "wasi:keyvalue/atomics@0.2.0-draft2"
#define HTTP "sluice:processor/outgoing-http@0.1.0"

#define EVENT "record{payload: list<u8>, metadata: list<tuple<string, string>>}"
#define PAIRS "list<tuple<string, string>>"
#define CONFIG_ERROR "variant{upstream(string), io(string)}"
#define KV_ERROR "variant{no-such-store, access-denied, other(string)}"
#define HTTP_ERROR                                                                                 \
  "variant{denied(string), invalid-request(string), timeout, too-large, failed(string)}"

/* The named types each interface declares (what `use` and the functions refer to). A
 * type only some of Sluice's functions use is still listed: a component declares the
 * types its imported functions reach, and nothing else. */
static const struct {
  const char *interface, *name, *type;
} named_types[] = {
    {LOGGING, "level", "enum{trace, debug, info, warn, error, critical}"},
    {CONFIG, "error", CONFIG_ERROR},
    {KV_STORE, "error", KV_ERROR},
    {KV_STORE, "key-response", "record{keys: list<string>, cursor: option<string>}"},
    /* atomics uses store's bucket and error; a resource renders as its name. */
    {KV_ATOMICS, "bucket", "bucket"},
    {KV_ATOMICS, "error", KV_ERROR},
    {HTTP, "request", "record{method: string, url: string, headers: " PAIRS ", body: list<u8>}"},
    {HTTP, "response", "record{status: u16, headers: " PAIRS ", body: list<u8>}"},
    {HTTP, "error", HTTP_ERROR},
    {SL_WORLD_TYPES_INTERFACE, "event", EVENT},
};

static const struct {
  const char *name, *type;
} world_exports[] = {
    {"process", "func(input: " EVENT ") -> result<list<" EVENT ">, string>"},
    {"init", "func(config: " PAIRS ") -> result<_, string>"},
};

const char *sl__world_type(const char *interface, const char *type_name) {
  for (size_t i = 0; i < sizeof named_types / sizeof named_types[0]; i++)
    if (strcmp(named_types[i].interface, interface) == 0 &&
        strcmp(named_types[i].name, type_name) == 0)
      return named_types[i].type;
  return NULL;
}

const char *sl__world_type_interface(size_t index) {
  return index < sizeof named_types / sizeof named_types[0] ? named_types[index].interface : NULL;
}

const char *sl__world_export_type(const char *export_name) {
  for (size_t i = 0; i < sizeof world_exports / sizeof world_exports[0]; i++)
    if (strcmp(world_exports[i].name, export_name) == 0) return world_exports[i].type;
  return NULL;
}

/* ---- 2. interfaces ---------------------------------------------------------------- */

/* `name` as a C string in buf; false when it does not fit (then it is no name of ours). */
static bool name_copy(sl_comp_name name, char *buf, size_t cap) {
  if (name.len >= cap || (name.len && memchr(name.ptr, '\0', name.len))) return false;
  if (name.len) memcpy(buf, name.ptr, name.len);
  buf[name.len] = '\0';
  return true;
}

/* The interfaces Sluice provides: the modules of the host table, then the types
 * interface, each once; `index` 0, 1, ... until NULL. */
static const char *provided_interface(size_t index) {
  size_t count;
  const sl_host_import *table = sl__host_imports(&count);
  size_t seen = 0;
  for (size_t i = 0; i < count; i++) {
    bool first = true;
    for (size_t k = 0; k < i && first; k++)
      if (strcmp(table[k].module, table[i].module) == 0) first = false;
    if (first && seen++ == index) return table[i].module;
  }
  return index == seen ? SL_WORLD_TYPES_INTERFACE : NULL;
}

static bool is_provided(const char *interface) {
  for (size_t i = 0; provided_interface(i); i++)
    if (strcmp(provided_interface(i), interface) == 0) return true;
  return false;
}

/* The provided interface with the same name as `interface` but another version, or NULL.
 * Names are `namespace:package/interface@version`. */
static const char *other_version(const char *interface) {
  size_t base = strcspn(interface, "@");
  for (size_t i = 0; provided_interface(i); i++) {
    const char *p = provided_interface(i);
    if (strcspn(p, "@") == base && strncmp(p, interface, base) == 0) return p;
  }
  return NULL;
}

/* Appends `item` to a ", "-separated list in buf (at least 8 bytes), which ends in "..."
 * once the next item does not fit. */
static void list_add(char *buf, size_t cap, const char *item) {
  size_t len = strlen(buf);
  if ((len >= 5 && strcmp(buf + len - 5, ", ...") == 0) || strcmp(buf, "...") == 0) return;
  const char *separator = len ? ", " : "";
  if (len + strlen(separator) + strlen(item) + sizeof ", ..." > cap) {
    snprintf(buf + len, cap - len, "%s...", separator);
    return;
  }
  snprintf(buf + len, cap - len, "%s%s", separator, item);
}

/* "wasi:logging/logging@0.1.0-draft, ..., sluice:processor/types@0.1.0" */
static void provided_list(char *buf, size_t cap) {
  buf[0] = '\0';
  for (size_t i = 0; provided_interface(i); i++) list_add(buf, cap, provided_interface(i));
}

/* The functions Sluice provides from `interface`, for "it provides ..." */
static void provided_functions(const char *interface, char *buf, size_t cap) {
  size_t count;
  const sl_host_import *table = sl__host_imports(&count);
  buf[0] = '\0';
  for (size_t i = 0; i < count; i++)
    if (strcmp(table[i].module, interface) == 0 && strncmp(table[i].name, "[resource-drop]", 15))
      list_add(buf, cap, table[i].name);
  if (!buf[0]) snprintf(buf, cap, "no functions");
}

/* ---- 3. imports ------------------------------------------------------------------- */

/* A resource made by the declaration named `name` itself (`(sub resource)`), rather than
 * one it refers to (`(eq i)`): its name is that declaration's. */
static bool declares_resource(const sl_ctypes *types, uint32_t id, sl_comp_name name) {
  return id < types->count && types->types[id].kind == SL_CT_RESOURCE &&
         types->types[id].name.ptr == name.ptr;
}

static sl_status check_function(const sl_ctypes *types, const char *interface, const sl_cmember *m,
                                const char *name, sl_error *err) {
  char item[NAME_TEXT], provided[512], actual[TYPE_TEXT];
  const sl_host_import *host = NULL;
  if (name_copy(m->name, item, sizeof item)) host = sl__host_import_find(interface, item);
  if (!host || strncmp(item, "[resource-drop]", 15) == 0) {
    char shown[NAME_TEXT];
    provided_functions(interface, provided, sizeof provided);
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s function %s, which Sluice does not provide "
                        "(from that interface it provides %s)",
                        name, interface, sl__comp_name_text(m->name, shown, sizeof shown),
                        provided);
  }
  sl__ctype_render(types, m->type, actual, sizeof actual);
  if (!host->component_type)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s function %s, whose component-level type "
                        "Sluice does not know, so it cannot check %s",
                        name, interface, item, actual);
  if (strcmp(actual, host->component_type) != 0)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s function %s as %s, but Sluice provides %s", name,
                        interface, item, actual, host->component_type);
  return SL_OK;
}

static sl_status check_type(const sl_ctypes *types, const char *interface, const sl_cmember *m,
                            const char *name, sl_error *err) {
  char item[NAME_TEXT], shown[NAME_TEXT], actual[TYPE_TEXT];
  bool named = name_copy(m->name, item, sizeof item);
  sl__comp_name_text(m->name, shown, sizeof shown);
  if (declares_resource(types, m->type, m->name)) {
    char drop[NAME_TEXT + 16], provided[512];
    snprintf(drop, sizeof drop, "[resource-drop]%s", item);
    const sl_host_import *host = named ? sl__host_import_find(interface, drop) : NULL;
    if (host && host->component_type && strcmp(host->component_type, "resource") == 0) return SL_OK;
    provided_functions(interface, provided, sizeof provided);
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s resource %s, which Sluice does not provide "
                        "(from that interface it provides %s)",
                        name, interface, shown, provided);
  }
  const char *expected = named ? sl__world_type(interface, item) : NULL;
  if (!expected)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s type %s, which Sluice does not provide", name,
                        interface, shown);
  sl__ctype_render(types, m->type, actual, sizeof actual);
  if (strcmp(actual, expected) != 0)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component imports %s type %s as %s, but Sluice's %s is %s", name,
                        interface, item, actual, item, expected);
  return SL_OK;
}

/* Every item an imported instance declares, in order. */
static sl_status check_interface(const sl_ctypes *types, const char *interface, uint32_t instance,
                                 const char *name, sl_error *err) {
  const sl_ctype *t = &types->types[instance];
  for (uint32_t i = 0; i < t->count; i++) {
    const sl_cmember *m = &types->members[t->first + i];
    sl_status status = SL_OK;
    if (m->sort == SL_SORT_FUNC) {
      status = check_function(types, interface, m, name, err);
    } else if (m->sort == SL_SORT_TYPE) {
      status = check_type(types, interface, m, name, err);
    } else {
      char shown[NAME_TEXT];
      status = sl_error_set(err, SL_BAD_MODULE,
                            "%s: component imports %s with a %s %s in it, which Sluice does not "
                            "provide",
                            name, interface, sl__comp_sort_name((sl_comp_sort)m->sort),
                            sl__comp_name_text(m->name, shown, sizeof shown));
    }
    if (status != SL_OK) return status;
  }
  return SL_OK;
}

/* True when import `item` is an instance of an interface Sluice has in no version. */
static bool is_unknown_interface(const sl_comp_item *item) {
  char interface[NAME_TEXT];
  if (item->sort != SL_SORT_INSTANCE) return false;
  if (!name_copy(item->name, interface, sizeof interface)) return true;
  return !is_provided(interface) && !other_version(interface);
}

/* One message for all the interfaces Sluice does not provide. */
static sl_status refuse_unknown(const sl_comp_item *imports, size_t count, bool has_wasi_adapter,
                                const char *name, sl_error *err) {
  char unknown[512] = "", provided[512];
  for (size_t i = 0; i < count; i++) {
    if (!is_unknown_interface(&imports[i])) continue;
    char shown[NAME_TEXT];
    list_add(unknown, sizeof unknown, sl__comp_name_text(imports[i].name, shown, sizeof shown));
  }
  provided_list(provided, sizeof provided);
  return sl_error_set(
      err, SL_BAD_MODULE,
      "%s: component imports %s, which Sluice does not provide (it provides %s)%s", name, unknown,
      provided,
      has_wasi_adapter ? "; they are what jco's WASI preview 1 adapter (`jco new --wasi-reactor`) "
                         "imports: Sluice gives WASI preview 1 to a core module itself, so load "
                         "the core module instead of the component"
                       : "");
}

sl_status sl__world_check_imports(const sl_ctypes *types, const sl_comp_item *imports, size_t count,
                                  bool has_wasi_adapter, const char *name, sl_error *err) {
  for (size_t i = 0; i < count; i++)
    if (is_unknown_interface(&imports[i]))
      return refuse_unknown(imports, count, has_wasi_adapter, name, err);

  for (size_t i = 0; i < count; i++) {
    const sl_comp_item *item = &imports[i];
    char shown[NAME_TEXT], interface[NAME_TEXT];
    sl__comp_name_text(item->name, shown, sizeof shown);
    switch (item->sort) {
    case SL_SORT_INSTANCE: {
      name_copy(item->name, interface, sizeof interface); /* fits: not unknown */
      if (!is_provided(interface)) {
        const char *ours = other_version(interface);
        return sl_error_set(err, SL_BAD_MODULE,
                            strchr(interface, '@')
                                ? "%s: component imports %s, a version Sluice does not provide "
                                  "(it provides %s)"
                                : "%s: component imports %s without a version; Sluice provides %s",
                            name, interface, ours);
      }
      sl_status status = check_interface(types, interface, item->type, name, err);
      if (status != SL_OK) return status;
      break;
    }
    case SL_SORT_TYPE:
      /* `use` in the world: a name for a type of an imported interface. A resource the
       * import itself declares is one Sluice would have to provide. */
      if (declares_resource(types, item->type, item->name))
        return sl_error_set(err, SL_BAD_MODULE,
                            "%s: component imports resource %s, which Sluice does not provide "
                            "(resources come from the interfaces it provides)",
                            name, shown);
      break;
    case SL_SORT_FUNC: {
      char provided[512];
      provided_list(provided, sizeof provided);
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: component imports function %s, which Sluice does not provide (a "
                          "processor imports functions only through interfaces: %s)",
                          name, shown, provided);
    }
    default:
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: component imports the %s %s, which Sluice does not provide", name,
                          sl__comp_sort_name(item->sort), shown);
    }
  }
  return SL_OK;
}

/* ---- 4. exports ------------------------------------------------------------------- */

static const sl_comp_item *find_export(const sl_comp_item *exports, size_t count,
                                       const char *export_name) {
  for (size_t i = 0; i < count; i++)
    if (sl__comp_name_is(exports[i].name, export_name)) return &exports[i];
  return NULL;
}

static sl_status check_export(const sl_ctypes *types, const sl_comp_item *e,
                              const char *export_name, const char *name, sl_error *err) {
  const char *expected = sl__world_export_type(export_name);
  if (e->sort != SL_SORT_FUNC)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component exports %s as a %s, but Sluice's processor world has the "
                        "function %s: %s",
                        name, export_name, sl__comp_sort_name(e->sort), export_name, expected);
  char actual[TYPE_TEXT];
  sl__ctype_render(types, e->type, actual, sizeof actual);
  if (strcmp(actual, expected) != 0)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component exports %s as %s, but Sluice's processor world has %s: %s",
                        name, export_name, actual, export_name, expected);
  return SL_OK;
}

sl_status sl__world_check_exports(const sl_ctypes *types, const sl_comp_item *exports, size_t count,
                                  const char *name, sl_error *err) {
  const sl_comp_item *process = find_export(exports, count, "process");
  if (!process) {
    char names[512] = "";
    for (size_t i = 0; i < count; i++) {
      char shown[NAME_TEXT];
      list_add(names, sizeof names, sl__comp_name_text(exports[i].name, shown, sizeof shown));
    }
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component does not export process (%s%s); Sluice's processor world "
                        "exports process: %s",
                        name, count ? "it exports " : "it exports nothing", names,
                        sl__world_export_type("process"));
  }
  sl_status status = check_export(types, process, "process", name, err);
  const sl_comp_item *init = find_export(exports, count, "init");
  if (status == SL_OK && init) status = check_export(types, init, "init", name, err);
  return status;
}
