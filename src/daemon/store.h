/*
 * store.h - the daemon's desired state: which pipelines exist, every version of each, which
 * one is current, and the modules they are pinned to (docs/design/control-plane.md,
 * "Desired state").
 *
 * Everything lives under the daemon's home folder:
 *   HOME/sluice.db                 SQLite (WAL): tables pipelines, versions, modules
 *   HOME/modules/<sha256>.wasm     the bytes of every module ever put, named by hash
 *
 * Every write is one SQLite transaction, so a kill -9 at any moment leaves either the old
 * state or the new one. Module files are written to a temporary file in the same folder,
 * synced and renamed into place before their row is committed, so a recorded module always
 * has its whole file.
 *
 * Ownership: strings handed in are borrowed for the call. Everything handed out (version
 * strings, row arrays) is malloc'ed and freed by the caller with the matching *_clear or
 * *_free function. Out-parameters are written only on SL_OK unless a prototype says
 * otherwise; optional ones (marked "may be NULL") can be NULL.
 *
 * Threads: a store may be used from any number of threads at once; one mutex inside
 * serialises the calls on its SQLite connection. Module file writes happen outside it.
 */
#ifndef SL_DAEMON_STORE_H
#define SL_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_store sl_store;

/*
 * Opens (creating if needed) the store in `home`: creates `home` and `home/modules`
 * (mode 0700; existing folders are left as they are), opens `home/sluice.db` in WAL mode
 * with a busy timeout and foreign keys on, and creates or migrates the schema (PRAGMA
 * user_version). On SL_OK the caller owns *out and frees it with sl_store_close.
 * Statuses: SL_OK; SL_INVALID (home is NULL, empty or too long); SL_IO (a folder cannot be
 * created, the database cannot be opened or migrated, or it was written by a newer Sluice:
 * `err` names the path and gives the system's or SQLite's message).
 */
sl_status sl_store_open(const char *home, sl_store **out, sl_error *err);

/* Closes the database and frees the store. NULL is fine. No call may be running. */
void sl_store_close(sl_store *store);

/* The folder given to sl_store_open; owned by the store. */
const char *sl_store_home(const sl_store *store);

/* --- pipelines and versions ------------------------------------------------------- */

/*
 * One version of a pipeline: the text exactly as deployed and what it needs to be started
 * again. Strings filled by the store are malloc'ed and freed with sl_version_clear; a
 * version the caller fills for sl_store_add_version may point anywhere (it is only read).
 */
typedef struct sl_version {
  char *pipeline;  /* the pipeline's name */
  int64_t version; /* 1, 2, ...; set by the store (ignored by add) */
  char *source;    /* the pipeline text (YAML or JSON), not interpolated */
  char *file;      /* the file name used in messages */
  char *dir;       /* the folder relative paths resolve against */
  char *modules;   /* JSON object text {node_id: sha256}; NULL means "{}" for add */
  char *note;      /* "deploy", "module upper", "rollback to 2"...; may be "" (or NULL for add) */
  int64_t created_at_ms; /* Unix time in ms; set by the store (ignored by add) */
  bool current;          /* filled by get/list (ignored by add) */
} sl_version;

/* Frees the strings of a version filled by the store and zeroes it. NULL is fine. */
void sl_version_clear(sl_version *v);

/*
 * Adds version max+1 of `v->pipeline` (creating the pipeline if it is new) and makes it
 * current, in one transaction. Reads pipeline, source, file, dir, modules, note; NULL
 * strings other than pipeline are stored as "" ("{}" for modules).
 * *version_out gets the new number, *created whether the pipeline was new (both may be NULL).
 * Statuses: SL_OK; SL_INVALID (no pipeline name, or modules is not a JSON object whose
 * values are all module hashes: 64 lowercase hex);
 * SL_IO (SQLite failed; nothing was changed).
 */
sl_status sl_store_add_version(sl_store *s, const sl_version *v, int64_t *version_out,
                               bool *created, sl_error *err);

/* The number sl_store_add_version would give `pipeline`'s next version (1 for a new
 * pipeline). A hint: another writer may take it first; add_version's number wins. */
sl_status sl_store_next_version(sl_store *s, const char *pipeline, int64_t *version, sl_error *err);

/* Makes `version` the current one of `pipeline` (a rollback moves the pointer; the next add
 * still gets max+1). SL_OK; SL_NOT_FOUND (no such pipeline or version); SL_IO. */
sl_status sl_store_set_current(sl_store *s, const char *pipeline, int64_t version, sl_error *err);

/* Fills *out with one version of `pipeline`; version 0 means the current one. The caller
 * frees *out with sl_version_clear. SL_OK; SL_NOT_FOUND (no such pipeline or version);
 * SL_INVALID (negative version); SL_IO. */
sl_status sl_store_get_version(sl_store *s, const char *pipeline, int64_t version, sl_version *out,
                               sl_error *err);

/* Every version of `pipeline`, oldest first, in a malloc'ed array the caller frees with
 * sl_versions_free(*out, *count). SL_OK; SL_NOT_FOUND (no such pipeline); SL_IO. */
sl_status sl_store_list_versions(sl_store *s, const char *pipeline, sl_version **out, size_t *count,
                                 sl_error *err);

/* Frees an array from sl_store_list_versions. NULL is fine. */
void sl_versions_free(sl_version *v, size_t count);

/* One pipeline: its name and which version is current. */
typedef struct sl_pipeline_row {
  char *name;
  int64_t current;
  int64_t created_at_ms, updated_at_ms; /* updated: the last add or set_current */
} sl_pipeline_row;

/* Every pipeline, by name, in a malloc'ed array (possibly empty: *out may then be NULL) the
 * caller frees with sl_pipeline_rows_free(*out, *count). SL_OK; SL_IO. */
sl_status sl_store_list_pipelines(sl_store *s, sl_pipeline_row **out, size_t *count, sl_error *err);

/* Frees an array from sl_store_list_pipelines. NULL is fine. */
void sl_pipeline_rows_free(sl_pipeline_row *rows, size_t count);

/* Deletes `pipeline` and all its versions in one transaction. Modules stay: they are shared
 * by hash. SL_OK; SL_NOT_FOUND (no such pipeline); SL_IO. */
sl_status sl_store_delete_pipeline(sl_store *s, const char *pipeline, sl_error *err);

/* --- modules ---------------------------------------------------------------------- */

/* One stored module. `name` is the file name it was first put with ("" if none); it is
 * for people only, the hash is the identity. */
typedef struct sl_module_row {
  char sha256[65]; /* 64 lowercase hex characters */
  int64_t size;    /* bytes */
  char *name;      /* malloc'ed */
  int64_t created_at_ms;
} sl_module_row;

/*
 * Stores `len` bytes of `wasm` as HOME/modules/<sha256>.wasm (written atomically) and records
 * it. Putting the same bytes again is harmless: *existed is then true, the first name is
 * kept (or set if it was ""), and a missing or damaged file is written again. The bytes are
 * not validated as WebAssembly here. `name` may be NULL; sha256_out and existed may be NULL.
 * SL_OK; SL_IO (the file or the row cannot be written: `err` names the path).
 */
sl_status sl_store_put_module(sl_store *s, const uint8_t *wasm, size_t len, const char *name,
                              char sha256_out[65], bool *existed, sl_error *err);

/* Reads the file at `path` and puts it, named after the file's last path component.
 * sha256_out may be NULL. SL_OK; SL_IO (unreadable file, naming `path`; or as put). */
sl_status sl_store_import_module_file(sl_store *s, const char *path, char sha256_out[65],
                                      sl_error *err);

/*
 * Writes the path of the module's file into `path` (`cap` bytes). Only 64 lowercase hex
 * characters are accepted as a hash, so a hash can never name a file outside the folder.
 * SL_OK; SL_INVALID (not a hash, or `cap` too small); SL_NOT_FOUND (the hash is not
 * recorded, or its file is missing); SL_IO.
 */
sl_status sl_store_module_path(sl_store *s, const char *sha256, char *path, size_t cap,
                               sl_error *err);

/* Fills *out with the module's row; the caller frees out->name (or calls
 * sl_module_rows_free(out, 1) on a heap row). SL_OK; SL_INVALID (not a hash);
 * SL_NOT_FOUND; SL_IO. */
sl_status sl_store_get_module(sl_store *s, const char *sha256, sl_module_row *out, sl_error *err);

/* Every module, oldest first, in a malloc'ed array (possibly empty: *out may then be NULL)
 * the caller frees with sl_module_rows_free(*out, *count). SL_OK; SL_IO. */
sl_status sl_store_list_modules(sl_store *s, sl_module_row **out, size_t *count, sl_error *err);

/* Frees an array from sl_store_list_modules. NULL is fine. */
void sl_module_rows_free(sl_module_row *rows, size_t count);

/* --- internal to src/daemon: module files (module_store.c) ------------------------ */

/* True when `text` is exactly 64 lowercase hex characters. */
bool sl__module_hash_valid(const char *text);

/* Writes "MODULES_DIR/<sha256>.wasm" into `path`; SL_INVALID when `cap` is too small. */
sl_status sl__module_file_path(const char *modules_dir, const char *sha256, char *path, size_t cap,
                               sl_error *err);

/* Makes `path` hold exactly `data`: when the file already has these bytes nothing is
 * written; otherwise they go to a temporary file in the same folder, which is synced and
 * renamed over `path`, and the folder is synced. SL_OK; SL_IO naming the path. */
sl_status sl__module_file_write(const char *path, const uint8_t *data, size_t len, sl_error *err);

#endif
