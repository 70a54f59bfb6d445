/*
 * store.h - one arena that owns every string and array of a loaded pipeline spec (and,
 * separately, of a parsed YAML tree), so freeing a spec is one call.
 *
 * The host's own out-of-memory aborts here (style.md): nothing a pipeline file can do
 * makes these allocations unbounded, the file's size bounds them.
 */
#ifndef SL_CONFIG_STORE_H
#define SL_CONFIG_STORE_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sl_conf_store sl_conf_store;

/* Creates an empty store; free it with sl__store_free. */
sl_conf_store *sl__store_new(void);

/* Frees the store and everything allocated from it. NULL is fine. */
void sl__store_free(sl_conf_store *store);

/* `size` zeroed bytes (at least 1), aligned for any type, owned by the store. */
void *sl__store_alloc(sl_conf_store *store, size_t size);

/* `count` zeroed elements of `size` bytes. */
void *sl__store_array(sl_conf_store *store, size_t count, size_t size);

/* NUL-terminated copies owned by the store. */
char *sl__store_strdup(sl_conf_store *store, const char *text);
char *sl__store_strndup(sl_conf_store *store, const char *text, size_t len);
char *sl__store_printf(sl_conf_store *store, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
