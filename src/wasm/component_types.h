/*
 * component_types.h - the types a component declares: read from the binary into one
 * arena, named through the index spaces of the scope that declares them, and rendered as
 * WIT-like text.
 *
 * A type is identified by its id in the arena. Index spaces map a scope's indices to ids,
 * so an alias, an `eq` bound or an export of a type is the same id as what it names,
 * and a resource is one id wherever it is used (resources are compared by identity, the
 * rest by structure). Types are acyclic: every definition names only earlier ones.
 *
 * The rendering is the one form of a type used for both comparing and showing it:
 *
 *   func(key: string) -> result<option<string>, variant{upstream(string), io(string)}>
 *   record{payload: list<u8>, metadata: list<tuple<string, string>>}
 *   enum{trace, debug}   flags{a, b}   option<T>   result<T, E>   result<_, E>   result
 *   tuple<A, B>   list<T>   list<T, 4>   map<K, V>   future<T>   stream<T>
 *   bucket (an owned handle of the resource `bucket`)   borrow<bucket>
 *
 * Two value or function types are equal exactly when their renderings are (named types
 * render as their structure; names of fields, cases, labels and parameters count, as
 * they do in the component model; resources render as the name they were declared with).
 */
#ifndef SL_WASM_COMPONENT_TYPES_H
#define SL_WASM_COMPONENT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasm/component_reader.h"

#define SL_CT_NONE UINT32_MAX

typedef enum sl_ctype_kind {
  SL_CT_PRIM,
  SL_CT_RECORD,
  SL_CT_VARIANT,
  SL_CT_LIST,
  SL_CT_FIXED_LIST,
  SL_CT_MAP,
  SL_CT_TUPLE,
  SL_CT_FLAGS,
  SL_CT_ENUM,
  SL_CT_OPTION,
  SL_CT_RESULT,
  SL_CT_OWN,
  SL_CT_BORROW,
  SL_CT_FUTURE,
  SL_CT_STREAM, /* the last value type */
  SL_CT_FUNC,
  SL_CT_INSTANCE,
  SL_CT_COMPONENT,
  SL_CT_RESOURCE,
} sl_ctype_kind;

/* What an index, an import or an export refers to (the binary's `sort`). */
typedef enum sl_comp_sort {
  SL_SORT_CORE_FUNC,
  SL_SORT_CORE_TABLE,
  SL_SORT_CORE_MEMORY,
  SL_SORT_CORE_GLOBAL,
  SL_SORT_CORE_TAG,
  SL_SORT_CORE_TYPE,
  SL_SORT_CORE_MODULE,
  SL_SORT_CORE_INSTANCE,
  SL_SORT_FUNC,
  SL_SORT_VALUE,
  SL_SORT_TYPE,
  SL_SORT_COMPONENT,
  SL_SORT_INSTANCE,
} sl_comp_sort;

typedef struct sl_ctype {
  uint8_t kind;   /* sl_ctype_kind */
  uint8_t prim;   /* SL_CT_PRIM: the primitive's opcode (0x7f bool ... 0x73 string) */
  bool async;     /* SL_CT_FUNC */
  uint32_t a;     /* element, ok, key, own/borrow's resource, func result (or SL_CT_NONE) */
  uint32_t b;     /* err, value, fixed length (or SL_CT_NONE) */
  uint32_t first; /* members: fields, cases, params, elements, labels, exports */
  uint32_t count;
  sl_comp_name name; /* SL_CT_RESOURCE: the name it was declared with (may be empty) */
} sl_ctype;

typedef struct sl_cmember {
  sl_comp_name name; /* empty for tuple elements */
  uint32_t type;     /* SL_CT_NONE for labels and cases without a payload */
  uint8_t sort;      /* instance and component type exports: an sl_comp_sort */
} sl_cmember;

/* The arena. The primitives have fixed ids, added by sl__ctypes_init. */
typedef struct sl_ctypes {
  sl_ctype *types;
  size_t count, cap;
  sl_cmember *members;
  size_t member_count, member_cap;
} sl_ctypes;

void sl__ctypes_init(sl_ctypes *types);
void sl__ctypes_destroy(sl_ctypes *types);

/* Appends a type / members; the new id / the index of the first member. SL_CT_NONE (and
 * an error in `r`) past the arena's cap. */
uint32_t sl__ctypes_add(sl_comp_reader *r, sl_ctypes *types, sl_ctype type);
uint32_t sl__ctypes_add_members(sl_comp_reader *r, sl_ctypes *types, const sl_cmember *members,
                                size_t count);

/* One index space: index -> id. */
typedef struct sl_cspace {
  uint32_t *ids;
  size_t count, cap;
} sl_cspace;

void sl__cspace_push(sl_cspace *space, uint32_t id);
/* The id at `index`; SL_CT_NONE and an error in `r` when out of range. */
uint32_t sl__cspace_get(sl_comp_reader *r, const sl_cspace *space, uint32_t index,
                        const char *what);

/* The index spaces of one scope (the component, or a component or instance type being
 * read) that types can refer to; `outer` is the enclosing scope for outer aliases. */
typedef struct sl_cscope {
  const struct sl_cscope *outer;
  sl_cspace types;     /* type index -> type id */
  sl_cspace instances; /* instance index -> instance type id */
} sl_cscope;

void sl__cscope_destroy(sl_cscope *scope);

/* Reads a `sort`. */
bool sl__comp_read_sort(sl_comp_reader *r, sl_comp_sort *sort);

/* "function", "instance", "core module", ...: a sort in words, for messages. */
const char *sl__comp_sort_name(sl_comp_sort sort);

/* Reads a `deftype` (an entry of a type section, or a declarator) in `scope`. `depth`
 * counts the component and instance types it is nested in. */
bool sl__ctype_read_deftype(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                            unsigned depth, uint32_t *id);

/* An `externdesc`, resolved: the sort and the type id (SL_CT_NONE for core modules and
 * values). A `(sub resource)` bound makes a new resource named `name`. */
typedef struct sl_cextern {
  sl_comp_sort sort;
  uint32_t type;
} sl_cextern;

bool sl__ctype_read_externdesc(sl_comp_reader *r, sl_ctypes *types, const sl_cscope *scope,
                               sl_comp_name name, sl_cextern *out);

/* Reads an import or export name (`importname'` / `exportname'`). */
sl_comp_name sl__comp_read_extern_name(sl_comp_reader *r);

/* The export `name` of instance type `instance`, or NULL. */
const sl_cmember *sl__ctype_export(const sl_ctypes *types, uint32_t instance, sl_comp_name name);

/* True for the kinds a valtype may refer to. */
static inline bool sl__ctype_is_value(const sl_ctypes *types, uint32_t id) {
  return id < types->count && types->types[id].kind <= SL_CT_STREAM;
}

/* Renders type `id` into `buf` (see the top of this file). False when the text did not
 * fit in `cap` bytes: it then ends in "...", and compares unequal to any shorter text. */
bool sl__ctype_render(const sl_ctypes *types, uint32_t id, char *buf, size_t cap);

#endif
