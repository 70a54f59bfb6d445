/*
 * component_types.c - reading and rendering a component's types (see component_types.h).
 *
 * The grammar is the component model's Binary.md ("Type Definitions"), with the opcodes
 * wasmparser reads today (fixed-size lists, maps, futures, streams, error-context).
 * Sections:
 *   1. the arena and index spaces
 *   2. core types (read only to be skipped: nothing here needs them)
 *   3. value, function, instance and component types
 *   4. rendering
 */
#include "wasm/component_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caps that keep a hostile binary's types well inside memory; a real processor's world
 * has a few hundred. Deeper nesting than this is refused rather than recursed into. */
#define MAX_TYPES (1u << 20)
#define MAX_MEMBERS (1u << 22)
#define MAX_TYPE_DEPTH 16
#define MAX_RENDER_DEPTH 48

/* ---- 1. the arena and index spaces ------------------------------------------------ */

/* The primitives in opcode order from 0x7f down to 0x73, then error-context (0x64). */
static const struct {
  uint8_t opcode;
  const char *name;
} primitives[] = {
    {0x7f, "bool"}, {0x7e, "s8"},   {0x7d, "u8"},     {0x7c, "s16"},           {0x7b, "u16"},
    {0x7a, "s32"},  {0x79, "u32"},  {0x78, "s64"},    {0x77, "u64"},           {0x76, "f32"},
    {0x75, "f64"},  {0x74, "char"}, {0x73, "string"}, {0x64, "error-context"},
};
#define PRIMITIVE_COUNT (sizeof primitives / sizeof primitives[0])

/* The id of primitive `opcode` (ids 0 .. PRIMITIVE_COUNT-1), or SL_CT_NONE. */
static uint32_t primitive_id(uint8_t opcode) {
  for (uint32_t i = 0; i < PRIMITIVE_COUNT; i++)
    if (primitives[i].opcode == opcode) return i;
  return SL_CT_NONE;
}

static void *grow(void *array, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return array;
  size_t new_cap = *cap ? *cap * 2 : 64;
  while (new_cap < need) new_cap *= 2;
  void *grown = realloc(array, new_cap * size);
  if (!grown) abort(); /* the host's own memory */
  *cap = new_cap;
  return grown;
}

void sl__ctypes_init(sl_ctypes *types) {
  memset(types, 0, sizeof *types);
  for (uint32_t i = 0; i < PRIMITIVE_COUNT; i++) {
    types->types = grow(types->types, &types->cap, types->count + 1, sizeof *types->types);
    types->types[types->count++] = (sl_ctype){
        .kind = SL_CT_PRIM, .prim = primitives[i].opcode, .a = SL_CT_NONE, .b = SL_CT_NONE};
  }
}

void sl__ctypes_destroy(sl_ctypes *types) {
  free(types->types);
  free(types->members);
  memset(types, 0, sizeof *types);
}

uint32_t sl__ctypes_add(sl_comp_reader *r, sl_ctypes *types, sl_ctype type) {
  if (types->count >= MAX_TYPES) {
    sl__comp_fail(r, "more than %u types", MAX_TYPES);
    return SL_CT_NONE;
  }
  types->types = grow(types->types, &types->cap, types->count + 1, sizeof *types->types);
  types->types[types->count] = type;
  return (uint32_t)types->count++;
}

uint32_t sl__ctypes_add_members(sl_comp_reader *r, sl_ctypes *types, const sl_cmember *members,
                                size_t count) {
  if (count > MAX_MEMBERS - types->member_count) {
    sl__comp_fail(r, "more than %u type members", MAX_MEMBERS);
    return SL_CT_NONE;
  }
  types->members =
      grow(types->members, &types->member_cap, types->member_count + count, sizeof *members);
  if (count) memcpy(types->members + types->member_count, members, count * sizeof *members);
  uint32_t first = (uint32_t)types->member_count;
  types->member_count += count;
  return first;
}

void sl__cspace_push(sl_cspace *space, uint32_t id) {
  space->ids = grow(space->ids, &space->cap, space->count + 1, sizeof *space->ids);
  space->ids[space->count++] = id;
}

uint32_t sl__cspace_get(sl_comp_reader *r, const sl_cspace *space, uint32_t index,
                        const char *what) {
  if (index < space->count) return space->ids[index];
  sl__comp_fail(r, "%s index %u is out of range (%zu defined so far)", what, index, space->count);
  return SL_CT_NONE;
}

void sl__cscope_destroy(sl_cscope *scope) {
  free(scope->types.ids);
  free(scope->instances.ids);
  memset(scope, 0, sizeof *scope);
}

bool sl__comp_read_sort(sl_comp_reader *r, sl_comp_sort *sort) {
  uint8_t byte = sl__comp_u8(r);
  if (byte == 0x00) {
    uint8_t core = sl__comp_u8(r);
    switch (core) {
    case 0x00:
      *sort = SL_SORT_CORE_FUNC;
      break;
    case 0x01:
      *sort = SL_SORT_CORE_TABLE;
      break;
    case 0x02:
      *sort = SL_SORT_CORE_MEMORY;
      break;
    case 0x03:
      *sort = SL_SORT_CORE_GLOBAL;
      break;
    case 0x04:
      *sort = SL_SORT_CORE_TAG;
      break;
    case 0x10:
      *sort = SL_SORT_CORE_TYPE;
      break;
    case 0x11:
      *sort = SL_SORT_CORE_MODULE;
      break;
    case 0x12:
      *sort = SL_SORT_CORE_INSTANCE;
      break;
    default:
      r->pos--;
      return sl__comp_fail(r, "unknown core sort 0x%02x", core);
    }
    return !sl__comp_failed(r);
  }
  switch (byte) {
  case 0x01:
    *sort = SL_SORT_FUNC;
    break;
  case 0x02:
    *sort = SL_SORT_VALUE;
    break;
  case 0x03:
    *sort = SL_SORT_TYPE;
    break;
  case 0x04:
    *sort = SL_SORT_COMPONENT;
    break;
  case 0x05:
    *sort = SL_SORT_INSTANCE;
    break;
  default:
    if (sl__comp_failed(r)) return false;
    r->pos--;
    return sl__comp_fail(r, "unknown sort 0x%02x", byte);
  }
  return true;
}

const char *sl__comp_sort_name(sl_comp_sort sort) {
  static const char *const names[] = {
      [SL_SORT_CORE_FUNC] = "core function",
      [SL_SORT_CORE_TABLE] = "core table",
      [SL_SORT_CORE_MEMORY] = "core memory",
      [SL_SORT_CORE_GLOBAL] = "core global",
      [SL_SORT_CORE_TAG] = "core tag",
      [SL_SORT_CORE_TYPE] = "core type",
      [SL_SORT_CORE_MODULE] = "core module",
      [SL_SORT_CORE_INSTANCE] = "core instance",
      [SL_SORT_FUNC] = "function",
      [SL_SORT_VALUE] = "value",
      [SL_SORT_TYPE] = "type",
      [SL_SORT_COMPONENT] = "component",
      [SL_SORT_INSTANCE] = "instance",
  };
  return (unsigned)sort < sizeof names / sizeof names[0] ? names[sort] : "item";
}

sl_comp_name sl__comp_read_extern_name(sl_comp_reader *r) {
  /* 0x00; 0x01 is what older binaries used for interface names (wasmparser accepts it). */
  uint8_t kind = sl__comp_u8(r);
  if (kind > 0x01 && !sl__comp_failed(r)) {
    r->pos--;
    sl__comp_fail(r, "unknown import or export name encoding 0x%02x", kind);
  }
  return sl__comp_name(r);
}

const sl_cmember *sl__ctype_export(const sl_ctypes *types, uint32_t instance, sl_comp_name name) {
  if (instance >= types->count) return NULL;
  const sl_ctype *t = &types->types[instance];
  if (t->kind != SL_CT_INSTANCE && t->kind != SL_CT_COMPONENT) return NULL;
  for (uint32_t i = 0; i < t->count; i++) {
    const sl_cmember *m = &types->members[t->first + i];
    if (m->name.len == name.len && (!name.len || memcmp(m->name.ptr, name.ptr, name.len) == 0))
      return m;
  }
  return NULL;
}

/* ---- 2. core types ---------------------------------------------------------------- */

static bool unsupported(sl_comp_reader *r, uint8_t opcode, const char *what) {
  if (sl__comp_failed(r)) return false;
  r->pos--;
  return sl__comp_fail(r, "unsupported %s 0x%02x", what, opcode);
}

static bool skip_core_valtype(sl_comp_reader *r) {
  uint8_t t = sl__comp_u8(r);
  switch (t) {
  case 0x7f:
  case 0x7e:
  case 0x7d:
  case 0x7c:
  case 0x7b: /* i32 i64 f32 f64 v128 */
  case 0x70:
  case 0x6f: /* funcref externref */
    return !sl__comp_failed(r);
  case 0x64:
  case 0x63: /* (ref ht) (ref null ht) */
    sl__comp_s33(r);
    return !sl__comp_failed(r);
  default:
    return unsupported(r, t, "core value type");
  }
}

static bool skip_limits(sl_comp_reader *r) {
  uint8_t flags = sl__comp_u8(r);
  if (flags > 0x0f) return unsupported(r, flags, "limits flags");
  bool is64 = flags & 0x04;
  for (int i = 0; i < ((flags & 0x01) ? 2 : 1); i++)
    is64 ? (void)sl__comp_u64(r) : (void)sl__comp_u32(r);
  if (flags & 0x08) sl__comp_u32(r); /* custom page size (log2) */
  return !sl__comp_failed(r);
}

static bool skip_core_importdesc(sl_comp_reader *r) {
  uint8_t kind = sl__comp_u8(r);
  switch (kind) {
  case 0x00: /* func: a type index */
    sl__comp_u32(r);
    break;
  case 0x01: /* table: a reference type and limits */
    if (skip_core_valtype(r)) skip_limits(r);
    break;
  case 0x02: /* memory */
    skip_limits(r);
    break;
  case 0x03: /* global: a value type and mutability */
    if (skip_core_valtype(r) && sl__comp_u8(r) > 1)
      unsupported(r, r->bytes[r->pos - 1], "mutability");
    break;
  case 0x04: /* tag: an attribute and a type index */
    sl__comp_u8(r);
    sl__comp_u32(r);
    break;
  default:
    return unsupported(r, kind, "core import kind");
  }
  return !sl__comp_failed(r);
}

static bool skip_core_functype(sl_comp_reader *r) {
  for (int side = 0; side < 2; side++) {
    uint32_t n = sl__comp_count(r, "core function type");
    for (uint32_t i = 0; i < n && !sl__comp_failed(r); i++) skip_core_valtype(r);
  }
  return !sl__comp_failed(r);
}

/* A `core:type`: a function type, or a module type (whose declarations hold only
 * function types). The GC proposal's struct, array and recursive types are refused. */
static bool skip_core_type(sl_comp_reader *r, bool in_module) {
  uint8_t opcode = sl__comp_u8(r);
  if (opcode == 0x60) return skip_core_functype(r);
  if (opcode != 0x50 || in_module) return unsupported(r, opcode, "core type");
  uint32_t n = sl__comp_count(r, "module type");
  for (uint32_t i = 0; i < n && !sl__comp_failed(r); i++) {
    uint8_t decl = sl__comp_u8(r);
    switch (decl) {
    case 0x00: /* import: module, name, description */
      sl__comp_name(r);
      sl__comp_name(r);
      skip_core_importdesc(r);
      break;
    case 0x01:
      skip_core_type(r, true);
      break;
    case 0x02: /* outer alias of a core type */
      if (sl__comp_u8(r) != 0x10 || sl__comp_u8(r) != 0x01)
        return sl__comp_fail(r, "malformed alias in a module type");
      sl__comp_u32(r);
      sl__comp_u32(r);
      break;
    case 0x03: /* export */
      sl__comp_name(r);
      skip_core_importdesc(r);
      break;
    default:
      return unsupported(r, decl, "module type declaration");
    }
  }
  return !sl__comp_failed(r);
}

/* ---- 3. value, function, instance and component types ----------------------------- */

/* A valtype: a primitive opcode or the index of a defined value type. */
static uint32_t read_valtype(sl_comp_reader *r, const sl_cscope *scope, const sl_ctypes *types) {
  uint32_t prim = primitive_id(sl__comp_peek(r));
  if (prim != SL_CT_NONE && !sl__comp_failed(r)) {
    sl__comp_u8(r);
    return prim;
  }
  size_t at = r->pos;
  int64_t index = sl__comp_s33(r);
  if (sl__comp_failed(r)) return SL_CT_NONE;
  if (index < 0 || index > UINT32_MAX) {
    r->pos = at;
    sl__comp_fail(r, "unknown value type 0x%02x", r->bytes[at]);
    return SL_CT_NONE;
  }
  uint32_t id = sl__cspace_get(r, &scope->types, (uint32_t)index, "type");
  if (id != SL_CT_NONE && !sl__ctype_is_value(types, id)) {
    r->pos = at;
    sl__comp_fail(r, "type index %u is not a value type", (uint32_t)index);
    return SL_CT_NONE;
  }
  return id;
}

/* `0x00` | `0x01 valtype`: an absent or present value type. */
static uint32_t read_optional_valtype(sl_comp_reader *r, const sl_cscope *scope,
                                      const sl_ctypes *types) {
  uint8_t present = sl__comp_u8(r);
  if (present == 0x00) return SL_CT_NONE;
  if (present != 0x01) {
    unsupported(r, present, "optional value type marker");
    return SL_CT_NONE;
  }
  return read_valtype(r, scope, types);
}

/* A vector of members: labeled value types (record fields, parameters), variant cases,
 * bare labels (flags, enums) or bare value types (tuples). Appended to the arena. */
enum member_form { LABELED, CASES, LABELS, ELEMENTS };

static bool read_members(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                         enum member_form form, bool nonempty, const char *what, sl_ctype *into) {
  size_t at = r->pos;
  uint32_t n = sl__comp_count(r, what);
  if (sl__comp_failed(r)) return false;
  if (nonempty && n == 0) {
    r->pos = at;
    return sl__comp_fail(r, "%s with no entries", what);
  }
  sl_cmember *members = calloc(n ? n : 1, sizeof *members);
  if (!members) abort();
  for (uint32_t i = 0; i < n && !sl__comp_failed(r); i++) {
    members[i].type = SL_CT_NONE;
    if (form != ELEMENTS) members[i].name = sl__comp_name(r);
    if (form == LABELED || form == ELEMENTS) members[i].type = read_valtype(r, scope, types);
    if (form == CASES) {
      members[i].type = read_optional_valtype(r, scope, types);
      /* 0x00; older binaries could name a refined case after 0x01 (wasmparser reads it). */
      uint8_t refines = sl__comp_u8(r);
      if (refines == 0x01)
        sl__comp_u32(r);
      else if (refines != 0x00)
        unsupported(r, refines, "variant case ending");
    }
  }
  if (!sl__comp_failed(r)) {
    into->first = sl__ctypes_add_members(r, types, members, n);
    into->count = n;
  }
  free(members);
  return !sl__comp_failed(r);
}

/* own / borrow: the index must name a resource type. */
static uint32_t read_resource_ref(sl_comp_reader *r, const sl_cscope *scope,
                                  const sl_ctypes *types) {
  size_t at = r->pos;
  uint32_t index = sl__comp_u32(r);
  if (sl__comp_failed(r)) return SL_CT_NONE;
  uint32_t id = sl__cspace_get(r, &scope->types, index, "type");
  if (id != SL_CT_NONE && types->types[id].kind != SL_CT_RESOURCE) {
    r->pos = at;
    sl__comp_fail(r, "a handle names type index %u, which is not a resource", index);
    return SL_CT_NONE;
  }
  return id;
}

/* A `defvaltype` after its opcode. */
static bool read_defvaltype(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                            uint8_t opcode, uint32_t *id) {
  sl_ctype t = {.a = SL_CT_NONE, .b = SL_CT_NONE};
  switch (opcode) {
  case 0x72:
    t.kind = SL_CT_RECORD;
    read_members(r, types, scope, LABELED, true, "record", &t);
    break;
  case 0x71:
    t.kind = SL_CT_VARIANT;
    read_members(r, types, scope, CASES, true, "variant", &t);
    break;
  case 0x70:
    t.kind = SL_CT_LIST;
    t.a = read_valtype(r, scope, types);
    break;
  case 0x67:
    t.kind = SL_CT_FIXED_LIST;
    t.a = read_valtype(r, scope, types);
    t.b = sl__comp_u32(r);
    break;
  case 0x63:
    t.kind = SL_CT_MAP;
    t.a = read_valtype(r, scope, types);
    t.b = read_valtype(r, scope, types);
    break;
  case 0x6f:
    t.kind = SL_CT_TUPLE;
    read_members(r, types, scope, ELEMENTS, true, "tuple", &t);
    break;
  case 0x6e:
    t.kind = SL_CT_FLAGS;
    read_members(r, types, scope, LABELS, true, "flags", &t);
    break;
  case 0x6d:
    t.kind = SL_CT_ENUM;
    read_members(r, types, scope, LABELS, true, "enum", &t);
    break;
  case 0x6b:
    t.kind = SL_CT_OPTION;
    t.a = read_valtype(r, scope, types);
    break;
  case 0x6a:
    t.kind = SL_CT_RESULT;
    t.a = read_optional_valtype(r, scope, types);
    t.b = read_optional_valtype(r, scope, types);
    break;
  case 0x69:
  case 0x68:
    t.kind = opcode == 0x69 ? SL_CT_OWN : SL_CT_BORROW;
    t.a = read_resource_ref(r, scope, types);
    break;
  case 0x66:
  case 0x65:
    t.kind = opcode == 0x66 ? SL_CT_STREAM : SL_CT_FUTURE;
    t.a = read_optional_valtype(r, scope, types);
    break;
  default:
    return unsupported(r, opcode, "type opcode");
  }
  if (sl__comp_failed(r)) return false;
  *id = sl__ctypes_add(r, types, t);
  return !sl__comp_failed(r);
}

static bool read_functype(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope, bool async,
                          uint32_t *id) {
  sl_ctype t = {.kind = SL_CT_FUNC, .async = async, .a = SL_CT_NONE, .b = SL_CT_NONE};
  if (!read_members(r, types, scope, LABELED, false, "parameter list", &t)) return false;
  uint8_t form = sl__comp_u8(r);
  if (form == 0x00) {
    t.a = read_valtype(r, scope, types);
  } else if (form == 0x01) {
    /* No result; older binaries put named results here, which WIT no longer has. */
    if (sl__comp_u8(r) != 0x00 && !sl__comp_failed(r)) {
      r->pos--;
      return sl__comp_fail(r, "named function results are not supported");
    }
  } else {
    return unsupported(r, form, "function result form");
  }
  if (sl__comp_failed(r)) return false;
  *id = sl__ctypes_add(r, types, t);
  return !sl__comp_failed(r);
}

bool sl__ctype_read_externdesc(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                               sl_comp_name name, sl_cextern *out) {
  out->type = SL_CT_NONE;
  uint8_t kind = sl__comp_u8(r);
  size_t at = r->pos;
  uint32_t index;
  uint8_t want; /* the kind the type index must have */
  switch (kind) {
  case 0x00: /* core module: a core type index, not followed here */
    if (sl__comp_u8(r) != 0x11 && !sl__comp_failed(r))
      return unsupported(r, r->bytes[r->pos - 1], "core extern kind");
    out->sort = SL_SORT_CORE_MODULE;
    sl__comp_u32(r);
    return !sl__comp_failed(r);
  case 0x01:
    out->sort = SL_SORT_FUNC, want = SL_CT_FUNC;
    break;
  case 0x02: /* value: (eq valueidx) or a value type */
    out->sort = SL_SORT_VALUE;
    if (sl__comp_u8(r) == 0x00)
      sl__comp_u32(r);
    else if (!sl__comp_failed(r))
      read_valtype(r, scope, types);
    return !sl__comp_failed(r);
  case 0x03: { /* type: (eq i) or (sub resource) */
    out->sort = SL_SORT_TYPE;
    uint8_t bound = sl__comp_u8(r);
    if (bound == 0x00) {
      out->type = sl__cspace_get(r, &scope->types, sl__comp_u32(r), "type");
    } else if (bound == 0x01) {
      sl_ctype resource = {.kind = SL_CT_RESOURCE, .a = SL_CT_NONE, .b = SL_CT_NONE, .name = name};
      out->type = sl__ctypes_add(r, types, resource);
    } else {
      return unsupported(r, bound, "type bound");
    }
    return !sl__comp_failed(r);
  }
  case 0x04:
    out->sort = SL_SORT_COMPONENT, want = SL_CT_COMPONENT;
    break;
  case 0x05:
    out->sort = SL_SORT_INSTANCE, want = SL_CT_INSTANCE;
    break;
  default:
    return unsupported(r, kind, "extern kind");
  }
  index = sl__comp_u32(r);
  out->type = sl__cspace_get(r, &scope->types, index, "type");
  if (sl__comp_failed(r)) return false;
  if (types->types[out->type].kind != want) {
    r->pos = at;
    return sl__comp_fail(r, "type index %u has the wrong kind for this import or export", index);
  }
  return true;
}

/* An alias inside a component or instance type: outer aliases of types, and aliases of
 * the types and instances a declared instance exports. */
static bool read_type_alias(sl_comp_reader *r, const sl_ctypes *types, sl_cscope *scope) {
  sl_comp_sort sort;
  if (!sl__comp_read_sort(r, &sort)) return false;
  uint8_t target = sl__comp_u8(r);
  if (target == 0x02) { /* outer ct idx */
    uint32_t count = sl__comp_u32(r), index = sl__comp_u32(r);
    const sl_cscope *outer = scope;
    for (uint32_t i = 0; i < count && outer; i++) outer = outer->outer;
    if (!outer) return sl__comp_fail(r, "an outer alias reaches past the outermost component");
    if (sort == SL_SORT_TYPE)
      sl__cspace_push(&scope->types, sl__cspace_get(r, &outer->types, index, "outer type"));
    /* Outer aliases of core types, modules and components add nothing read here. */
    return !sl__comp_failed(r);
  }
  if (target != 0x00) return unsupported(r, target, "alias target in a type");
  uint32_t index = sl__comp_u32(r);
  sl_comp_name name = sl__comp_name(r);
  uint32_t instance = sl__cspace_get(r, &scope->instances, index, "instance");
  if (sl__comp_failed(r)) return false;
  const sl_cmember *m = sl__ctype_export(types, instance, name);
  if (!m || m->sort != sort) return sl__comp_fail(r, "an alias names an export that is not there");
  if (sort == SL_SORT_TYPE) sl__cspace_push(&scope->types, m->type);
  if (sort == SL_SORT_INSTANCE) sl__cspace_push(&scope->instances, m->type);
  return true;
}

/* Pushes what a declared import or export adds to the scope's index spaces. */
static void declare(sl_cscope *scope, const sl_cextern *ext) {
  if (ext->sort == SL_SORT_TYPE) sl__cspace_push(&scope->types, ext->type);
  if (ext->sort == SL_SORT_INSTANCE) sl__cspace_push(&scope->instances, ext->type);
}

/* An instance type (0x42) or component type (0x41): declarators in a scope of their own.
 * The exports become the type's members. */
static bool read_declarators(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *outer,
                             unsigned depth, bool component, uint32_t *id) {
  if (depth >= MAX_TYPE_DEPTH)
    return sl__comp_fail(r, "types nested more than %d deep", MAX_TYPE_DEPTH);
  sl_cscope scope = {.outer = outer};
  sl_cmember *exports = NULL;
  size_t export_count = 0, export_cap = 0;
  uint32_t n = sl__comp_count(r, component ? "component type" : "instance type");
  for (uint32_t i = 0; i < n && !sl__comp_failed(r); i++) {
    uint8_t decl = sl__comp_u8(r);
    switch (decl) {
    case 0x00:
      skip_core_type(r, false);
      break;
    case 0x01: {
      uint32_t defined;
      if (sl__ctype_read_deftype(r, types, &scope, depth + 1, &defined))
        sl__cspace_push(&scope.types, defined);
      break;
    }
    case 0x02:
      read_type_alias(r, types, &scope);
      break;
    case 0x03: /* import: component types only */
    case 0x04: {
      if (decl == 0x03 && !component) {
        unsupported(r, decl, "instance type declaration");
        break;
      }
      sl_comp_name name = sl__comp_read_extern_name(r);
      sl_cextern ext;
      if (!sl__ctype_read_externdesc(r, types, &scope, name, &ext)) break;
      declare(&scope, &ext);
      if (decl == 0x04) {
        exports = grow(exports, &export_cap, export_count + 1, sizeof *exports);
        exports[export_count++] = (sl_cmember){.name = name, .type = ext.type, .sort = ext.sort};
      }
      break;
    }
    default:
      unsupported(r, decl, component ? "component type declaration" : "instance type declaration");
    }
  }
  if (!sl__comp_failed(r)) {
    sl_ctype t = {.kind = component ? SL_CT_COMPONENT : SL_CT_INSTANCE,
                  .a = SL_CT_NONE,
                  .b = SL_CT_NONE,
                  .count = (uint32_t)export_count};
    t.first = sl__ctypes_add_members(r, types, exports, export_count);
    if (!sl__comp_failed(r)) *id = sl__ctypes_add(r, types, t);
  }
  free(exports);
  sl__cscope_destroy(&scope);
  return !sl__comp_failed(r);
}

bool sl__ctype_read_deftype(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                            unsigned depth, uint32_t *id) {
  *id = SL_CT_NONE;
  uint8_t opcode = sl__comp_u8(r);
  if (sl__comp_failed(r)) return false;
  uint32_t prim = primitive_id(opcode);
  if (prim != SL_CT_NONE) {
    *id = prim;
    return true;
  }
  switch (opcode) {
  case 0x3f: { /* resource (rep i32) (dtor f)? */
    if (sl__comp_u8(r) != 0x7f && !sl__comp_failed(r))
      return sl__comp_fail(r, "a resource's representation must be i32");
    uint8_t dtor = sl__comp_u8(r);
    if (dtor == 0x01)
      sl__comp_u32(r);
    else if (dtor != 0x00)
      return unsupported(r, dtor, "resource destructor marker");
    sl_ctype t = {.kind = SL_CT_RESOURCE, .a = SL_CT_NONE, .b = SL_CT_NONE};
    if (!sl__comp_failed(r)) *id = sl__ctypes_add(r, types, t);
    return !sl__comp_failed(r);
  }
  case 0x40:
  case 0x43:
    return read_functype(r, types, scope, opcode == 0x43, id);
  case 0x41:
  case 0x42:
    return read_declarators(r, types, scope, depth, opcode == 0x41, id);
  default:
    return read_defvaltype(r, types, scope, opcode, id);
  }
}

/* ---- 4. rendering ----------------------------------------------------------------- */

typedef struct text {
  char *buf;
  size_t cap, len;
  bool full;
} text;

static void put(text *out, const char *s, size_t n) {
  if (out->full) return;
  if (n > out->cap - 1 - out->len) {
    out->full = true;
    return;
  }
  memcpy(out->buf + out->len, s, n);
  out->len += n;
  out->buf[out->len] = '\0';
}

static void puts_text(text *out, const char *s) { put(out, s, strlen(s)); }

static void put_name(text *out, sl_comp_name name) {
  char printable[256];
  puts_text(out, sl__comp_name_text(name, printable, sizeof printable));
}

static void render(const sl_ctypes *types, uint32_t id, text *out, unsigned depth);

static void render_members(const sl_ctypes *types, const sl_ctype *t, text *out, unsigned depth,
                           bool labels, bool values, bool cases) {
  for (uint32_t i = 0; i < t->count && !out->full; i++) {
    const sl_cmember *m = &types->members[t->first + i];
    if (i) puts_text(out, ", ");
    if (labels) put_name(out, m->name);
    if (cases && m->type != SL_CT_NONE) {
      puts_text(out, "(");
      render(types, m->type, out, depth + 1);
      puts_text(out, ")");
    } else if (values) {
      if (labels) puts_text(out, ": ");
      render(types, m->type, out, depth + 1);
    }
  }
}

static void render(const sl_ctypes *types, uint32_t id, text *out, unsigned depth) {
  if (out->full) return;
  if (depth > MAX_RENDER_DEPTH) {
    out->full = true;
    return;
  }
  if (id >= types->count) {
    puts_text(out, "?");
    return;
  }
  const sl_ctype *t = &types->types[id];
  char number[16];
  switch ((sl_ctype_kind)t->kind) {
  case SL_CT_PRIM:
    puts_text(out, primitives[id].name);
    break;
  case SL_CT_RECORD:
    puts_text(out, "record{");
    render_members(types, t, out, depth, true, true, false);
    puts_text(out, "}");
    break;
  case SL_CT_VARIANT:
    puts_text(out, "variant{");
    render_members(types, t, out, depth, true, false, true);
    puts_text(out, "}");
    break;
  case SL_CT_FLAGS:
  case SL_CT_ENUM:
    puts_text(out, t->kind == SL_CT_FLAGS ? "flags{" : "enum{");
    render_members(types, t, out, depth, true, false, false);
    puts_text(out, "}");
    break;
  case SL_CT_TUPLE:
    puts_text(out, "tuple<");
    render_members(types, t, out, depth, false, true, false);
    puts_text(out, ">");
    break;
  case SL_CT_LIST:
  case SL_CT_OPTION:
    puts_text(out, t->kind == SL_CT_LIST ? "list<" : "option<");
    render(types, t->a, out, depth + 1);
    puts_text(out, ">");
    break;
  case SL_CT_FIXED_LIST:
    puts_text(out, "list<");
    render(types, t->a, out, depth + 1);
    snprintf(number, sizeof number, ", %u>", t->b);
    puts_text(out, number);
    break;
  case SL_CT_MAP:
    puts_text(out, "map<");
    render(types, t->a, out, depth + 1);
    puts_text(out, ", ");
    render(types, t->b, out, depth + 1);
    puts_text(out, ">");
    break;
  case SL_CT_RESULT:
    puts_text(out, "result");
    if (t->a == SL_CT_NONE && t->b == SL_CT_NONE) break;
    puts_text(out, "<");
    if (t->a != SL_CT_NONE)
      render(types, t->a, out, depth + 1);
    else
      puts_text(out, "_");
    if (t->b != SL_CT_NONE) {
      puts_text(out, ", ");
      render(types, t->b, out, depth + 1);
    }
    puts_text(out, ">");
    break;
  case SL_CT_OWN:
    render(types, t->a, out, depth + 1);
    break;
  case SL_CT_BORROW:
    puts_text(out, "borrow<");
    render(types, t->a, out, depth + 1);
    puts_text(out, ">");
    break;
  case SL_CT_FUTURE:
  case SL_CT_STREAM:
    puts_text(out, t->kind == SL_CT_FUTURE ? "future" : "stream");
    if (t->a == SL_CT_NONE) break;
    puts_text(out, "<");
    render(types, t->a, out, depth + 1);
    puts_text(out, ">");
    break;
  case SL_CT_FUNC:
    puts_text(out, t->async ? "async func(" : "func(");
    render_members(types, t, out, depth, true, true, false);
    puts_text(out, ")");
    if (t->a != SL_CT_NONE) {
      puts_text(out, " -> ");
      render(types, t->a, out, depth + 1);
    }
    break;
  case SL_CT_RESOURCE:
    if (t->name.len)
      put_name(out, t->name);
    else
      puts_text(out, "resource");
    break;
  case SL_CT_INSTANCE:
    puts_text(out, "instance");
    break;
  case SL_CT_COMPONENT:
    puts_text(out, "component");
    break;
  }
}

bool sl__ctype_render(const sl_ctypes *types, uint32_t id, char *buf, size_t cap) {
  if (cap == 0) return false;
  buf[0] = '\0';
  text out = {buf, cap, 0, false};
  render(types, id, &out, 0);
  if (out.full && cap >= 4) {
    size_t at = out.len < cap - 4 ? out.len : cap - 4;
    memcpy(buf + at, "...", 4);
  }
  return !out.full;
}
