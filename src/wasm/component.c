/*
 * component.c - components as modules (see component.h).
 *
 * One pass over the component's sections builds the index spaces the checks need (types
 * and instances through component_types.c; functions, core functions, core memories,
 * core instances and core modules here), then:
 *   - the imports and exports are checked against the world (component_world.c);
 *   - every `canon lift` and `canon lower` must use utf8 strings and no async;
 *   - the main core module is found by following the exported `process` back to the
 *     core export it lifts: the core instance that exports it instantiates the main
 *     module. It must be lifted from core exports with the legacy names Sluice calls
 *     (process, init, memory, cabi_realloc, cabi_post_*), and is copied out as is.
 *
 * Sections:
 *   1. the component being read
 *   2. sections
 *   3. canonical options
 *   4. the main module
 *   5. entry points
 */
#include "wasm/component.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/component_reader.h"
#include "wasm/component_types.h"
#include "wasm/component_world.h"

#define COMPONENT_VERSION 0x0d

/* ---- 1. the component being read -------------------------------------------------- */

typedef struct canon_opts {
  uint8_t encoding; /* 0x00 utf8 (the default), 0x01 utf16, 0x02 latin1+utf16 */
  bool async;
  uint32_t memory, realloc, post_return; /* core memory / core function indices, or NONE */
} canon_opts;

/* An entry of the component function index space. */
typedef struct comp_func {
  uint32_t type;      /* its function type id */
  bool lifted;        /* made by `canon lift`: */
  uint32_t core_func; /*   the core function it lifts */
  canon_opts opts;    /*   and how */
  uint32_t instance;  /* an alias of an instance's export (or NONE): */
  sl_comp_name name;  /*   the export's name */
} comp_func;

/* A core function or memory: an export of a core instance, or (instance NONE) made by a
 * canonical built-in. */
typedef struct core_item {
  uint32_t instance;
  sl_comp_name name;
} core_item;

/* A core instance: of a module (module != NONE) or a bundle of exports. */
typedef struct core_instance {
  uint32_t module;
} core_instance;

/* A core module: its bytes in the component, or imported/aliased (no bytes here). */
typedef struct core_module {
  size_t offset, len;
  bool defined;
} core_module;

/* A `canon lift` or `canon lower`, kept for the check of its options. */
typedef struct canon_use {
  bool lift;
  uint32_t index; /* lift: the core function; lower: the component function */
  canon_opts opts;
} canon_use;

#define VECTOR(T)                                                                                  \
  struct {                                                                                         \
    T *items;                                                                                      \
    size_t count, cap;                                                                             \
  }

typedef struct component {
  sl_comp_reader r;
  sl_ctypes types;
  sl_cscope scope;                     /* the type and instance index spaces */
  VECTOR(sl_comp_name) instance_names; /* parallel to scope.instances: import names */
  VECTOR(comp_func) funcs;
  VECTOR(core_item) core_funcs;
  VECTOR(core_item) core_memories;
  VECTOR(core_instance) core_instances;
  VECTOR(core_module) modules;
  VECTOR(canon_use) canons;
  VECTOR(sl_comp_item) imports;
  VECTOR(sl_comp_item) exports;
  VECTOR(uint32_t) export_funcs; /* parallel to exports: the function index, or NONE */
  bool has_wasi_adapter;         /* a core instance gets wasi_snapshot_preview1 from another */
  char refusal[640];             /* set when the component is valid but not one Sluice runs */
} component;

/* Appends one zeroed item to a VECTOR and evaluates to a pointer to it. Vectors grow with
 * the input, which caps every count. */
#define PUSH(vector)                                                                               \
  __extension__({                                                                                  \
    if ((vector).count == (vector).cap) {                                                          \
      (vector).cap = (vector).cap ? (vector).cap * 2 : 16;                                         \
      (vector).items = realloc((vector).items, (vector).cap * sizeof *(vector).items);             \
      if (!(vector).items) abort(); /* the host's own memory */                                    \
    }                                                                                              \
    memset(&(vector).items[(vector).count], 0, sizeof *(vector).items);                            \
    &(vector).items[(vector).count++];                                                             \
  })

static void component_destroy(component *c) {
  sl__ctypes_destroy(&c->types);
  sl__cscope_destroy(&c->scope);
  free(c->instance_names.items);
  free(c->funcs.items);
  free(c->core_funcs.items);
  free(c->core_memories.items);
  free(c->core_instances.items);
  free(c->modules.items);
  free(c->canons.items);
  free(c->imports.items);
  free(c->exports.items);
  free(c->export_funcs.items);
}

/* Stops reading because the component uses something Sluice does not support; the
 * message says what. Returns false. */
__attribute__((format(printf, 2, 3))) static bool refuse(component *c, const char *fmt, ...) {
  if (sl__comp_failed(&c->r)) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->refusal, sizeof c->refusal, fmt, ap);
  va_end(ap);
  return sl__comp_fail(&c->r, "refused");
}

/* Bounds-checked lookups in the index spaces: a pointer to the entry, or NULL and an
 * error when `index` is out of range. `index` is evaluated once. */
static bool in_range(sl_comp_reader *r, size_t count, uint32_t index, const char *what) {
  if (index < count) return true;
  sl__comp_fail(r, "%s index %u is out of range (%zu defined so far)", what, index, count);
  return false;
}

#define LOOKUP(c, vector, index, what)                                                             \
  __extension__({                                                                                  \
    uint32_t lookup_index = (index);                                                               \
    in_range(&(c)->r, (c)->vector.count, lookup_index, what) ? &(c)->vector.items[lookup_index]    \
                                                             : NULL;                               \
  })

static void push_instance(component *c, uint32_t type, sl_comp_name name) {
  sl__cspace_push(&c->scope.instances, type);
  *PUSH(c->instance_names) = name;
}

static void push_func(component *c, comp_func func) { *PUSH(c->funcs) = func; }

/* ---- 2. sections ------------------------------------------------------------------ */

static bool read_canon_opts(component *c, canon_opts *opts);

/* Section 2: core instances. */
static void read_core_instances(component *c) {
  uint32_t n = sl__comp_count(&c->r, "core instances");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    uint8_t form = sl__comp_u8(&c->r);
    core_instance instance = {.module = SL_CT_NONE};
    if (form == 0x00) { /* instantiate m (with name (instance i))* */
      instance.module = sl__comp_u32(&c->r);
      LOOKUP(c, modules, instance.module, "core module");
      uint32_t args = sl__comp_count(&c->r, "instantiation arguments");
      for (uint32_t k = 0; k < args && !sl__comp_failed(&c->r); k++) {
        sl_comp_name arg = sl__comp_name(&c->r);
        if (sl__comp_u8(&c->r) != 0x12 && !sl__comp_failed(&c->r)) {
          c->r.pos--;
          sl__comp_fail(&c->r, "an instantiation argument must be a core instance");
        }
        LOOKUP(c, core_instances, sl__comp_u32(&c->r), "core instance");
        if (sl__comp_name_is(arg, "wasi_snapshot_preview1")) c->has_wasi_adapter = true;
      }
    } else if (form == 0x01) { /* a bundle of exports */
      uint32_t exports = sl__comp_count(&c->r, "core instance exports");
      for (uint32_t k = 0; k < exports && !sl__comp_failed(&c->r); k++) {
        sl__comp_name(&c->r);
        sl__comp_u8(&c->r); /* a core:sort (one byte, not a component sort) */
        sl__comp_u32(&c->r);
      }
    } else if (!sl__comp_failed(&c->r)) {
      c->r.pos--;
      sl__comp_fail(&c->r, "unknown core instance form 0x%02x", form);
    }
    *PUSH(c->core_instances) = instance;
  }
}

/* The type id of what `sort` index `index` names (for instances built from exports). */
static uint32_t sort_type(component *c, sl_comp_sort sort, uint32_t index) {
  const comp_func *f;
  switch (sort) {
  case SL_SORT_FUNC:
    f = LOOKUP(c, funcs, index, "function");
    return f ? f->type : SL_CT_NONE;
  case SL_SORT_TYPE:
    return sl__cspace_get(&c->r, &c->scope.types, index, "type");
  case SL_SORT_INSTANCE:
    return sl__cspace_get(&c->r, &c->scope.instances, index, "instance");
  default:
    return SL_CT_NONE;
  }
}

/* Section 5: instances. Only bundles of exports; instantiating a nested component
 * (a composition) is refused. */
static void read_instances(component *c) {
  uint32_t n = sl__comp_count(&c->r, "instances");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    uint8_t form = sl__comp_u8(&c->r);
    if (form == 0x00) {
      refuse(c, "component instantiates a nested component (a composition); Sluice loads "
                "components that hold one processor module");
      return;
    }
    if (form != 0x01) {
      if (!sl__comp_failed(&c->r)) c->r.pos--;
      sl__comp_fail(&c->r, "unknown instance form 0x%02x", form);
      return;
    }
    uint32_t count = sl__comp_count(&c->r, "instance exports");
    sl_cmember *members = calloc(count ? count : 1, sizeof *members);
    if (!members) abort();
    for (uint32_t k = 0; k < count && !sl__comp_failed(&c->r); k++) {
      members[k].name = sl__comp_read_extern_name(&c->r);
      sl_comp_sort sort;
      if (!sl__comp_read_sort(&c->r, &sort)) break;
      members[k].sort = (uint8_t)sort;
      members[k].type = sort_type(c, sort, sl__comp_u32(&c->r));
    }
    if (!sl__comp_failed(&c->r)) {
      sl_ctype t = {.kind = SL_CT_INSTANCE, .a = SL_CT_NONE, .b = SL_CT_NONE, .count = count};
      t.first = sl__ctypes_add_members(&c->r, &c->types, members, count);
      uint32_t id = sl__ctypes_add(&c->r, &c->types, t);
      push_instance(c, id, (sl_comp_name){"", 0});
    }
    free(members);
  }
}

/* An alias of instance `index`'s export `name`. */
static void alias_instance_export(component *c, sl_comp_sort sort, uint32_t index,
                                  sl_comp_name name) {
  uint32_t instance = sl__cspace_get(&c->r, &c->scope.instances, index, "instance");
  if (sl__comp_failed(&c->r)) return;
  const sl_cmember *m = sl__ctype_export(&c->types, instance, name);
  if (!m || m->sort != sort) {
    sl__comp_fail(&c->r, "an alias names an export the instance does not have");
    return;
  }
  switch (sort) {
  case SL_SORT_FUNC:
    push_func(
        c, (comp_func){.type = m->type, .core_func = SL_CT_NONE, .instance = index, .name = name});
    break;
  case SL_SORT_TYPE:
    sl__cspace_push(&c->scope.types, m->type);
    break;
  case SL_SORT_INSTANCE:
    push_instance(c, m->type, name);
    break;
  case SL_SORT_CORE_MODULE:
    PUSH(c->modules); /* not defined here: no bytes */
    break;
  case SL_SORT_COMPONENT:
    break;
  default:
    refuse(c, "component aliases a %s, which Sluice does not support", sl__comp_sort_name(sort));
  }
}

/* Section 6: aliases. */
static void read_aliases(component *c) {
  uint32_t n = sl__comp_count(&c->r, "aliases");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    sl_comp_sort sort;
    if (!sl__comp_read_sort(&c->r, &sort)) return;
    uint8_t target = sl__comp_u8(&c->r);
    if (target == 0x00) {
      uint32_t index = sl__comp_u32(&c->r);
      alias_instance_export(c, sort, index, sl__comp_name(&c->r));
    } else if (target == 0x01) { /* core export */
      uint32_t instance = sl__comp_u32(&c->r);
      sl_comp_name name = sl__comp_name(&c->r);
      LOOKUP(c, core_instances, instance, "core instance");
      if (sort == SL_SORT_CORE_FUNC)
        *PUSH(c->core_funcs) = (core_item){instance, name};
      else if (sort == SL_SORT_CORE_MEMORY)
        *PUSH(c->core_memories) = (core_item){instance, name};
      else if (sort > SL_SORT_CORE_TAG)
        sl__comp_fail(&c->r, "a core export alias of a %s", sl__comp_sort_name(sort));
      /* Tables, globals and tags: nothing checked here refers to them. */
    } else if (target == 0x02) { /* outer: at the top level, only the component itself */
      uint32_t count = sl__comp_u32(&c->r), index = sl__comp_u32(&c->r);
      if (count != 0) {
        sl__comp_fail(&c->r, "an outer alias reaches past the outermost component");
      } else if (sort == SL_SORT_TYPE) {
        sl__cspace_push(&c->scope.types, sl__cspace_get(&c->r, &c->scope.types, index, "type"));
      } else if (sort == SL_SORT_CORE_MODULE) {
        const core_module *m = LOOKUP(c, modules, index, "core module");
        if (m) {
          core_module copy = *m;
          *PUSH(c->modules) = copy;
        }
      } else if (sort != SL_SORT_COMPONENT && sort != SL_SORT_CORE_TYPE) {
        sl__comp_fail(&c->r, "an outer alias of a %s", sl__comp_sort_name(sort));
      }
    } else if (!sl__comp_failed(&c->r)) {
      c->r.pos--;
      sl__comp_fail(&c->r, "unknown alias target 0x%02x", target);
    }
  }
}

/* Section 7: types. */
static void read_types(component *c) {
  uint32_t n = sl__comp_count(&c->r, "types");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    uint32_t id;
    if (sl__ctype_read_deftype(&c->r, &c->types, &c->scope, 0, &id))
      sl__cspace_push(&c->scope.types, id);
  }
}

/* Section 8: canonical definitions. Lifts and lowers, and the resource built-ins
 * wit-component uses; the async, thread and error-context built-ins are refused. */
static void read_canons(component *c) {
  uint32_t n = sl__comp_count(&c->r, "canonical definitions");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    size_t at = c->r.pos;
    uint8_t kind = sl__comp_u8(&c->r);
    if (kind == 0x00 || kind == 0x01) {
      if (sl__comp_u8(&c->r) != 0x00 && !sl__comp_failed(&c->r)) {
        c->r.pos--;
        sl__comp_fail(&c->r, "canon lift and lower take functions");
        return;
      }
      canon_use use = {.lift = kind == 0x00, .index = sl__comp_u32(&c->r)};
      if (!read_canon_opts(c, &use.opts)) return;
      if (use.lift) {
        size_t type_at = c->r.pos;
        uint32_t type = sl__cspace_get(&c->r, &c->scope.types, sl__comp_u32(&c->r), "type");
        LOOKUP(c, core_funcs, use.index, "core function");
        if (sl__comp_failed(&c->r)) return;
        if (c->types.types[type].kind != SL_CT_FUNC) {
          c->r.pos = type_at;
          sl__comp_fail(&c->r, "canon lift's type is not a function type");
          return;
        }
        push_func(c, (comp_func){.type = type,
                                 .lifted = true,
                                 .core_func = use.index,
                                 .opts = use.opts,
                                 .instance = SL_CT_NONE});
      } else {
        LOOKUP(c, funcs, use.index, "function");
        *PUSH(c->core_funcs) = (core_item){SL_CT_NONE, {"", 0}};
      }
      *PUSH(c->canons) = use;
    } else if (kind >= 0x02 && kind <= 0x04) { /* resource.new / drop / rep */
      uint32_t type = sl__cspace_get(&c->r, &c->scope.types, sl__comp_u32(&c->r), "type");
      if (!sl__comp_failed(&c->r) && c->types.types[type].kind != SL_CT_RESOURCE) {
        c->r.pos = at;
        sl__comp_fail(&c->r, "a resource built-in names a type that is not a resource");
      }
      *PUSH(c->core_funcs) = (core_item){SL_CT_NONE, {"", 0}};
    } else if (!sl__comp_failed(&c->r)) {
      c->r.pos = at;
      refuse(c,
             "component uses the canonical built-in 0x%02x (async tasks, streams, threads or "
             "error contexts), which Sluice does not support",
             kind);
    }
  }
}

/* Section 10: imports. */
static void read_imports(component *c) {
  uint32_t n = sl__comp_count(&c->r, "imports");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    sl_comp_name name = sl__comp_read_extern_name(&c->r);
    sl_cextern ext;
    if (!sl__ctype_read_externdesc(&c->r, &c->types, &c->scope, name, &ext)) return;
    switch (ext.sort) {
    case SL_SORT_TYPE:
      sl__cspace_push(&c->scope.types, ext.type);
      break;
    case SL_SORT_INSTANCE:
      push_instance(c, ext.type, name);
      break;
    case SL_SORT_FUNC:
      push_func(
          c, (comp_func){
                 .type = ext.type, .core_func = SL_CT_NONE, .instance = SL_CT_NONE, .name = name});
      break;
    case SL_SORT_CORE_MODULE:
      PUSH(c->modules);
      break;
    default:
      break; /* components and values: refused by the world check */
    }
    *PUSH(c->imports) = (sl_comp_item){name, ext.sort, ext.type};
  }
}

/* Section 11: exports. Each adds an index (an alias of what it exports). */
static void read_exports(component *c) {
  uint32_t n = sl__comp_count(&c->r, "exports");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    sl_comp_name name = sl__comp_read_extern_name(&c->r);
    sl_comp_sort sort;
    if (!sl__comp_read_sort(&c->r, &sort)) return;
    uint32_t index = sl__comp_u32(&c->r);
    sl_comp_item item = {name, sort, SL_CT_NONE};
    uint32_t func = SL_CT_NONE;
    switch (sort) {
    case SL_SORT_FUNC: {
      const comp_func *f = LOOKUP(c, funcs, index, "function");
      if (!f) return;
      comp_func copy = *f;
      item.type = copy.type;
      func = (uint32_t)c->funcs.count;
      push_func(c, copy);
      break;
    }
    case SL_SORT_TYPE: {
      item.type = sl__cspace_get(&c->r, &c->scope.types, index, "type");
      if (sl__comp_failed(&c->r)) return;
      sl_ctype *t = &c->types.types[item.type];
      if (t->kind == SL_CT_RESOURCE && t->name.len == 0) t->name = name;
      sl__cspace_push(&c->scope.types, item.type);
      break;
    }
    case SL_SORT_INSTANCE:
      item.type = sl__cspace_get(&c->r, &c->scope.instances, index, "instance");
      push_instance(c, item.type, name);
      break;
    case SL_SORT_CORE_MODULE: {
      const core_module *m = LOOKUP(c, modules, index, "core module");
      if (m) {
        core_module copy = *m;
        *PUSH(c->modules) = copy;
      }
      break;
    }
    case SL_SORT_COMPONENT:
      break;
    default:
      refuse(c, "component exports a %s, which Sluice does not support", sl__comp_sort_name(sort));
      return;
    }
    uint8_t ascribed = sl__comp_u8(&c->r); /* an optional type the export is given */
    if (ascribed == 0x01) {
      sl_cextern ext;
      if (!sl__ctype_read_externdesc(&c->r, &c->types, &c->scope, name, &ext)) return;
      if (ext.sort != sort) {
        sl__comp_fail(&c->r, "an export's type is of another kind than what it exports");
        return;
      }
      if (sort == SL_SORT_FUNC) {
        item.type = ext.type;
        c->funcs.items[func].type = ext.type;
      }
    } else if (ascribed != 0x00 && !sl__comp_failed(&c->r)) {
      c->r.pos--;
      sl__comp_fail(&c->r, "unknown export type marker 0x%02x", ascribed);
      return;
    }
    *PUSH(c->exports) = item;
    *PUSH(c->export_funcs) = func;
  }
}

/* One section, whose bytes are [c->r.pos, end). */
static void read_section(component *c, uint8_t id, size_t end) {
  switch (id) {
  case 0: /* custom */
  case 3: /* core types: nothing checked here refers to them */
    c->r.pos = end;
    break;
  case 1:
    *PUSH(c->modules) = (core_module){.offset = c->r.pos, .len = end - c->r.pos, .defined = true};
    c->r.pos = end;
    break;
  case 2:
    read_core_instances(c);
    break;
  case 4: /* a nested component: only instantiating one would matter, and that is refused */
    c->r.pos = end;
    break;
  case 5:
    read_instances(c);
    break;
  case 6:
    read_aliases(c);
    break;
  case 7:
    read_types(c);
    break;
  case 8:
    read_canons(c);
    break;
  case 9:
    refuse(c, "component has a start function, which Sluice does not run (a processor is "
              "called through init and process)");
    break;
  case 10:
    read_imports(c);
    break;
  case 11:
    read_exports(c);
    break;
  case 12:
    refuse(c, "component defines values, which Sluice does not support");
    break;
  default: /* read_component refuses unknown ids before getting here */
    break;
  }
  if (!sl__comp_failed(&c->r) && c->r.pos != end)
    sl__comp_fail(&c->r, "%zu unread byte%s at the end of the section", end - c->r.pos,
                  end - c->r.pos == 1 ? "" : "s");
}

static void read_component(component *c, size_t len) {
  sl_comp_reader *r = &c->r;
  if (len < 8) {
    sl__comp_fail(r, "the component is shorter than its preamble");
    return;
  }
  if (r->bytes[4] != COMPONENT_VERSION || r->bytes[5] != 0x00) {
    refuse(c,
           "component binary format version 0x%02x%02x; Sluice reads version 0x%02x (what "
           "current wit-component and jco write)",
           r->bytes[5], r->bytes[4], COMPONENT_VERSION);
    return;
  }
  r->pos = 8;
  while (r->pos < len && !sl__comp_failed(r)) {
    uint8_t id = sl__comp_u8(r);
    if (id > 12) {
      r->pos--;
      sl__comp_fail(r, "unknown section id %u", id);
      return;
    }
    size_t size_at = r->pos;
    uint32_t size = sl__comp_u32(r);
    if (sl__comp_failed(r)) return;
    if (size > len - r->pos) {
      r->pos = size_at;
      sl__comp_fail(r, "section %u's size %u runs past the end of the component", id, size);
      return;
    }
    size_t end = r->pos + size;
    r->end = end;
    read_section(c, id, end);
    r->end = len;
  }
}

/* ---- 3. canonical options --------------------------------------------------------- */

static bool read_canon_opts(component *c, canon_opts *opts) {
  *opts = (canon_opts){.memory = SL_CT_NONE, .realloc = SL_CT_NONE, .post_return = SL_CT_NONE};
  uint32_t n = sl__comp_count(&c->r, "canonical options");
  for (uint32_t i = 0; i < n && !sl__comp_failed(&c->r); i++) {
    uint8_t opt = sl__comp_u8(&c->r);
    switch (opt) {
    case 0x00:
    case 0x01:
    case 0x02:
      opts->encoding = opt;
      break;
    case 0x03:
      opts->memory = sl__comp_u32(&c->r);
      LOOKUP(c, core_memories, opts->memory, "core memory");
      break;
    case 0x04:
      opts->realloc = sl__comp_u32(&c->r);
      LOOKUP(c, core_funcs, opts->realloc, "core function");
      break;
    case 0x05:
      opts->post_return = sl__comp_u32(&c->r);
      LOOKUP(c, core_funcs, opts->post_return, "core function");
      break;
    case 0x06:
      opts->async = true;
      break;
    case 0x07: /* callback */
    case 0x08: /* core-type */
      opts->async = opts->async || opt == 0x07;
      sl__comp_u32(&c->r);
      break;
    default:
      if (sl__comp_failed(&c->r)) break;
      c->r.pos--;
      sl__comp_fail(&c->r, "unknown canonical option 0x%02x", opt);
    }
  }
  return !sl__comp_failed(&c->r);
}

/* What a lift or lower is of: the core export lifted ("process"), or the function
 * lowered ("wasi:config/store@0.2.0-draft get"). */
static const char *canon_subject(const component *c, const canon_use *use, char *buf, size_t cap) {
  char first[256], second[256];
  if (use->lift) {
    const core_item *f = &c->core_funcs.items[use->index];
    snprintf(buf, cap, "%s", sl__comp_name_text(f->name, first, sizeof first));
    return buf;
  }
  const comp_func *f = &c->funcs.items[use->index];
  sl_comp_name interface =
      f->instance < c->instance_names.count ? c->instance_names.items[f->instance] : f->name;
  if (f->instance == SL_CT_NONE) interface = (sl_comp_name){"", 0};
  snprintf(buf, cap, "%s%s%s", sl__comp_name_text(interface, first, sizeof first),
           interface.len ? " " : "", sl__comp_name_text(f->name, second, sizeof second));
  return buf;
}

static sl_status check_canon_options(const component *c, const char *name, sl_error *err) {
  static const char *const encodings[] = {"utf8", "utf16", "latin1+utf16"};
  for (size_t i = 0; i < c->canons.count; i++) {
    const canon_use *use = &c->canons.items[i];
    char subject[600];
    if (use->opts.encoding != 0x00)
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: component %s %s with string-encoding=%s; Sluice supports only "
                          "utf8 (the default)",
                          name, use->lift ? "lifts" : "lowers",
                          canon_subject(c, use, subject, sizeof subject),
                          encodings[use->opts.encoding]);
    if (use->opts.async)
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: component %s %s asynchronously; Sluice calls and is called "
                          "synchronously",
                          name, use->lift ? "lifts" : "lowers",
                          canon_subject(c, use, subject, sizeof subject));
  }
  return SL_OK;
}

/* ---- 4. the main module ----------------------------------------------------------- */

/* The core export `want` of `instance` is what option `index` names (in core functions
 * or core memories); `role` says what it is for in the message. */
static sl_status check_core_export(const component *c, bool memory, uint32_t index,
                                   uint32_t instance, const char *want, const char *export_name,
                                   const char *role, const char *name, sl_error *err) {
  const core_item *item = NULL;
  if (memory && index < c->core_memories.count) item = &c->core_memories.items[index];
  if (!memory && index < c->core_funcs.count) item = &c->core_funcs.items[index];
  if (index == SL_CT_NONE)
    return sl_error_set(err, SL_BAD_MODULE, "%s: component lifts %s without a %s", name,
                        export_name, role);
  if (item && item->instance == instance && sl__comp_name_is(item->name, want)) return SL_OK;
  char shown[256];
  return sl_error_set(err, SL_BAD_MODULE,
                      "%s: component lifts %s with %s as its %s, but Sluice uses the main "
                      "module's export %s",
                      name, export_name,
                      item && item->instance != SL_CT_NONE
                          ? sl__comp_name_text(item->name, shown, sizeof shown)
                          : "a function the component makes",
                      role, want);
}

/* Follows export `export_name` (process or init) to the core export it lifts. Sets
 * *instance to the core instance it comes from (or checks it is *instance already). */
static sl_status trace_export(const component *c, const char *export_name, uint32_t *instance,
                              const char *name, sl_error *err) {
  const comp_func *f = NULL;
  for (size_t i = 0; i < c->exports.count; i++)
    if (sl__comp_name_is(c->exports.items[i].name, export_name) &&
        c->export_funcs.items[i] != SL_CT_NONE)
      f = &c->funcs.items[c->export_funcs.items[i]];
  if (!f) return SL_OK; /* init is optional; process was checked by the world */
  const core_item *core = f->lifted ? &c->core_funcs.items[f->core_func] : NULL;
  if (!core || core->instance == SL_CT_NONE ||
      c->core_instances.items[core->instance].module == SL_CT_NONE)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component's %s is not lifted from an export of a core module, so "
                        "Sluice cannot run it",
                        name, export_name);
  char shown[256];
  sl__comp_name_text(core->name, shown, sizeof shown);
  if (core->name.len >= 6 && memcmp(core->name.ptr, "cm32p2", 6) == 0)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component was built with the cm32p2 name scheme (its core module "
                        "exports %s); Sluice needs the legacy names (exports process, init, "
                        "memory, cabi_realloc; imports named by interface and function), which "
                        "`jco embed` keeps for a module built that way but `jco embed --dummy` "
                        "does not",
                        name, shown);
  if (!sl__comp_name_is(core->name, export_name))
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component lifts %s from the core export %s; Sluice calls the core "
                        "module's export named %s",
                        name, export_name, shown, export_name);
  if (*instance != SL_CT_NONE && *instance != core->instance)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component lifts process and init from different core instances", name);
  *instance = core->instance;
  char post_return[32];
  snprintf(post_return, sizeof post_return, "cabi_post_%s", export_name);
  sl_status status = check_core_export(c, true, f->opts.memory, *instance, "memory", export_name,
                                       "memory", name, err);
  if (status == SL_OK)
    status = check_core_export(c, false, f->opts.realloc, *instance, "cabi_realloc", export_name,
                               "realloc", name, err);
  if (status == SL_OK && f->opts.post_return != SL_CT_NONE)
    status = check_core_export(c, false, f->opts.post_return, *instance, post_return, export_name,
                               "post-return", name, err);
  return status;
}

static sl_status extract_main_module(const component *c, const uint8_t *bytes, const char *name,
                                     uint8_t **core, size_t *core_len, sl_error *err) {
  uint32_t instance = SL_CT_NONE;
  sl_status status = trace_export(c, "process", &instance, name, err);
  if (status == SL_OK) status = trace_export(c, "init", &instance, name, err);
  if (status != SL_OK) return status;
  if (instance == SL_CT_NONE) /* the world check makes sure process is exported */
    return sl_error_set(err, SL_BAD_MODULE, "%s: component does not export process", name);
  const core_module *m = &c->modules.items[c->core_instances.items[instance].module];
  if (!m->defined)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: component's main core module is imported, not inside it", name);
  *core = malloc(m->len ? m->len : 1);
  if (!*core) abort();
  memcpy(*core, bytes + m->offset, m->len);
  *core_len = m->len;
  return SL_OK;
}

/* ---- 5. entry points -------------------------------------------------------------- */

bool sl__is_component(const uint8_t *bytes, size_t len) {
  /* The magic, any version, and layer 1 (a core module's layer is 0). */
  static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6d};
  return len >= 8 && memcmp(bytes, magic, sizeof magic) == 0 && bytes[6] == 0x01 &&
         bytes[7] == 0x00;
}

sl_status sl__component_core_module(const uint8_t *bytes, size_t len, const char *name,
                                    uint8_t **core, size_t *core_len, sl_error *err) {
  *core = NULL;
  *core_len = 0;
  component *c = calloc(1, sizeof *c);
  if (!c) abort();
  sl__comp_reader_init(&c->r, bytes, len);
  sl__ctypes_init(&c->types);
  read_component(c, len);

  sl_status status;
  if (c->refusal[0]) {
    status = sl_error_set(err, SL_BAD_MODULE, "%s: %s", name, c->refusal);
  } else if (sl__comp_failed(&c->r)) {
    status = sl_error_set(err, SL_BAD_MODULE, "%s: malformed component at byte %zu: %s", name,
                          c->r.error_at, c->r.error);
  } else {
    status = sl__world_check_imports(&c->types, c->imports.items, c->imports.count,
                                     c->has_wasi_adapter, name, err);
    if (status == SL_OK)
      status = sl__world_check_exports(&c->types, c->exports.items, c->exports.count, name, err);
    if (status == SL_OK) status = check_canon_options(c, name, err);
    if (status == SL_OK) status = extract_main_module(c, bytes, name, core, core_len, err);
  }
  component_destroy(c);
  free(c);
  return status;
}
