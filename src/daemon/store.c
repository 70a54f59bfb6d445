/*
 * store.c - the daemon's desired state in SQLite (see store.h; the module files themselves
 * are written by module_store.c).
 *
 * Sections:
 *   connection helpers   errors, statements, transactions, copies out of rows
 *   opening              folders, pragmas, schema migrations
 *   versions             add, set current, get, list
 *   pipelines            list, delete
 *   modules              put, import, path, get, list
 *
 * Every SQL statement is a constant with bound parameters. Each public function takes the
 * store's mutex for its whole duration, so statements of two threads never interleave on
 * the one connection; writes that span statements run in BEGIN IMMEDIATE, which also orders
 * them against another process using the same file (it waits up to BUSY_TIMEOUT_MS).
 */
#include "daemon/store.h"

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/files.h"
#include "wasm/cache.h" /* sl__sha256_hex */

/* How long a write waits for another connection's transaction before failing with SL_IO. */
#define BUSY_TIMEOUT_MS 5000

struct sl_store {
  pthread_mutex_t lock; /* held for every use of db */
  sqlite3 *db;
  char *home;        /* as given */
  char *db_path;     /* HOME/sluice.db, for messages */
  char *modules_dir; /* HOME/modules */
};

/* --- connection helpers ----------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *copy_string(const char *text) {
  char *copy = strdup(text ? text : "");
  if (!copy) abort(); /* host out of memory */
  return copy;
}

static char *print_string(const char *a, const char *b) {
  char *out = NULL;
  if (asprintf(&out, "%s%s", a, b) < 0) abort();
  return out;
}

/* Grows a malloc'ed array so that it has room for `count + 1` elements of `size`. */
static void *grow(void *items, size_t count, size_t *cap, size_t size) {
  if (count < *cap) return items;
  *cap = *cap ? *cap * 2 : 8;
  items = realloc(items, *cap * size);
  if (!items) abort();
  return items;
}

/* SL_IO "DB: what: sqlite's message". */
static sl_status db_fail(sl_store *s, sl_error *err, const char *what) {
  return sl_error_set(err, SL_IO, "%s: %s: %s", s->db_path, what, sqlite3_errmsg(s->db));
}

static sl_status prepare(sl_store *s, const char *sql, sqlite3_stmt **stmt, sl_error *err) {
  if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK) {
    *stmt = NULL;
    return db_fail(s, err, "preparing a statement");
  }
  return SL_OK;
}

/* Binds a borrowed string (NULL as ""); the string must outlive the statement's use. Binding
 * fails only for a string over SQLite's 1 GB limit; the parameter is then NULL, which every
 * column refuses (NOT NULL) when the statement runs, so the failure surfaces as SL_IO. */
static void bind_text(sqlite3_stmt *stmt, int index, const char *text) {
  sqlite3_bind_text(stmt, index, text ? text : "", -1, SQLITE_STATIC);
}

/* Steps a statement that returns no rows. */
static sl_status step_done(sl_store *s, sqlite3_stmt *stmt, const char *what, sl_error *err) {
  if (sqlite3_step(stmt) != SQLITE_DONE) return db_fail(s, err, what);
  return SL_OK;
}

static sl_status begin(sl_store *s, sl_error *err) {
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return db_fail(s, err, "starting a transaction");
  return SL_OK;
}

/* Commits when `status` is SL_OK, else (or when the commit fails) rolls back. Returns the
 * outcome. Statements must be finalized first. */
static sl_status finish(sl_store *s, sl_status status, sl_error *err) {
  if (status == SL_OK) {
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return SL_OK;
    status = db_fail(s, err, "committing");
  }
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return status;
}

/* A malloc'ed copy of a text column ("" for NULL). */
static char *column_string(sqlite3_stmt *stmt, int column) {
  return copy_string((const char *)sqlite3_column_text(stmt, column));
}

static sl_status check_name(const char *pipeline, sl_error *err) {
  if (!pipeline || !pipeline[0]) return sl_error_set(err, SL_INVALID, "no pipeline name given");
  return SL_OK;
}

/* *exists = whether `pipeline` has a row. Call with the lock held. */
static sl_status pipeline_exists(sl_store *s, const char *pipeline, bool *exists, sl_error *err) {
  sqlite3_stmt *stmt = NULL;
  sl_status status = prepare(s, "SELECT 1 FROM pipelines WHERE name = ?1", &stmt, err);
  if (status != SL_OK) return status;
  bind_text(stmt, 1, pipeline);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    *exists = rc == SQLITE_ROW;
  else
    status = db_fail(s, err, "looking up a pipeline");
  sqlite3_finalize(stmt);
  return status;
}

/* The SL_NOT_FOUND for a missing (pipeline, version): says which of the two is missing.
 * `current` says the caller asked for the current version. Call with the lock held. */
static sl_status version_not_found(sl_store *s, const char *pipeline, int64_t version, bool current,
                                   sl_error *err) {
  bool exists = false;
  sl_status status = pipeline_exists(s, pipeline, &exists, err);
  if (status != SL_OK) return status;
  if (!exists) return sl_error_set(err, SL_NOT_FOUND, "no pipeline named '%s'", pipeline);
  if (current) /* only if the current pointer dangles, which no write leaves behind */
    return sl_error_set(err, SL_NOT_FOUND, "pipeline '%s' has no current version", pipeline);
  return sl_error_set(err, SL_NOT_FOUND, "pipeline '%s' has no version %lld", pipeline,
                      (long long)version);
}

/* --- opening ---------------------------------------------------------------------- */

/*
 * Schema migrations: entry i takes the database from user_version i to i + 1, and sets
 * user_version itself so the step and its record commit together. Append, never edit.
 * Times are Unix milliseconds.
 */
static const char *const migrations[] = {
    "CREATE TABLE pipelines("
    "  name TEXT NOT NULL PRIMARY KEY,"
    "  current INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE versions("
    "  pipeline TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  file TEXT NOT NULL,"
    "  dir TEXT NOT NULL,"
    "  modules TEXT NOT NULL," /* JSON {node_id: sha256} */
    "  created_at INTEGER NOT NULL,"
    "  note TEXT NOT NULL,"
    "  PRIMARY KEY(pipeline, version));"
    "CREATE TABLE modules("
    "  sha256 TEXT NOT NULL PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  name TEXT NOT NULL);"
    "PRAGMA user_version = 1;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static sl_status migrate(sl_store *s, sl_error *err) {
  sl_status status = begin(s, err);
  if (status != SL_OK) return status;
  sqlite3_stmt *stmt = NULL;
  status = prepare(s, "PRAGMA user_version", &stmt, err);
  int version = 0;
  if (status == SL_OK) {
    if (sqlite3_step(stmt) == SQLITE_ROW)
      version = sqlite3_column_int(stmt, 0);
    else
      status = db_fail(s, err, "reading the schema version");
    sqlite3_finalize(stmt);
  }
  if (status == SL_OK && version > SCHEMA_VERSION)
    status = sl_error_set(err, SL_IO,
                          "%s: written by a newer Sluice (schema %d; this one knows up to %d)",
                          s->db_path, version, SCHEMA_VERSION);
  for (; status == SL_OK && version < SCHEMA_VERSION; version++) {
    char *message = NULL;
    if (sqlite3_exec(s->db, migrations[version], NULL, NULL, &message) != SQLITE_OK)
      status = sl_error_set(err, SL_IO, "%s: migrating the schema to version %d: %s", s->db_path,
                            version + 1, message ? message : "unknown error");
    sqlite3_free(message);
  }
  return finish(s, status, err);
}

/* Runs a pragma that answers one row and checks the answer, e.g. journal_mode -> "wal". */
static sl_status pragma_expect(sl_store *s, const char *sql, const char *expected, sl_error *err) {
  sqlite3_stmt *stmt = NULL;
  sl_status status = SL_OK;
  /* The first statements of sl_store_open: a failure here means the file is unusable. */
  if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_ROW) {
    status = db_fail(s, err, "cannot open");
  } else {
    const char *answer = (const char *)sqlite3_column_text(stmt, 0);
    if (!answer || strcmp(answer, expected) != 0)
      status = sl_error_set(err, SL_IO, "%s: %s answered '%s', expected '%s'", s->db_path, sql,
                            answer ? answer : "", expected);
  }
  sqlite3_finalize(stmt);
  return status;
}

sl_status sl_store_open(const char *home, sl_store **out, sl_error *err) {
  *out = NULL;
  if (!home || !home[0]) return sl_error_set(err, SL_INVALID, "no home folder given");
  if (strlen(home) > PATH_MAX - 100)
    return sl_error_set(err, SL_INVALID, "home folder path too long: %s", home);

  sl_store *s = calloc(1, sizeof *s);
  if (!s) abort();
  pthread_mutex_init(&s->lock, NULL);
  s->home = copy_string(home);
  s->db_path = print_string(home, "/sluice.db");
  s->modules_dir = print_string(home, "/modules");

  sl_status status = sl__make_dirs(home, err);
  if (status == SL_OK) status = sl__make_dirs(s->modules_dir, err);
  if (status != SL_OK) goto done;

  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(s->db_path, &s->db, flags, NULL) != SQLITE_OK) {
    status = sl_error_set(err, SL_IO, "%s: cannot open: %s", s->db_path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto done;
  }
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  /* journal_mode is the first statement that reads the file, so a file that is not a
   * database fails here with SQLite's "file is not a database". synchronous=FULL syncs the
   * WAL on every commit: deploys are rare and must survive a power cut. */
  status = pragma_expect(s, "PRAGMA journal_mode = WAL", "wal", err);
  if (status != SL_OK) goto done;
  if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", NULL, NULL,
                   NULL) != SQLITE_OK) {
    status = db_fail(s, err, "setting pragmas");
    goto done;
  }
  status = pragma_expect(s, "PRAGMA foreign_keys", "1", err);
  if (status == SL_OK) status = migrate(s, err);

done:
  if (status != SL_OK) {
    sl_store_close(s);
    return status;
  }
  *out = s;
  return SL_OK;
}

void sl_store_close(sl_store *store) {
  if (!store) return;
  /* Closing the last connection checkpoints the WAL into the database file. */
  sqlite3_close(store->db);
  pthread_mutex_destroy(&store->lock);
  free(store->home);
  free(store->db_path);
  free(store->modules_dir);
  free(store);
}

const char *sl_store_home(const sl_store *store) { return store->home; }

/* --- versions --------------------------------------------------------------------- */

void sl_version_clear(sl_version *v) {
  if (!v) return;
  free(v->pipeline);
  free(v->source);
  free(v->file);
  free(v->dir);
  free(v->modules);
  free(v->note);
  memset(v, 0, sizeof *v);
}

void sl_versions_free(sl_version *v, size_t count) {
  if (!v) return;
  for (size_t i = 0; i < count; i++) sl_version_clear(&v[i]);
  free(v);
}

/* A version's pins must be a JSON object of module hashes, or restoring it would fail
 * long after the deploy that recorded it. */
static sl_status check_modules(const char *modules, sl_error *err) {
  if (!modules) return SL_OK;
  json_error_t parse_error;
  json_t *root = json_loads(modules, JSON_REJECT_DUPLICATES, &parse_error);
  sl_status status = SL_OK;
  if (!root || !json_is_object(root)) {
    status = sl_error_set(err, SL_INVALID, "version modules must be a JSON object: %s",
                          root ? "not an object" : parse_error.text);
    goto done;
  }
  const char *node;
  json_t *hash;
  json_object_foreach(root, node, hash) {
    if (!json_is_string(hash) || !sl__module_hash_valid(json_string_value(hash))) {
      status =
          sl_error_set(err, SL_INVALID,
                       "version modules: node '%s' must map to a sha256 (64 lowercase hex)", node);
      goto done;
    }
  }
done:
  json_decref(root);
  return status;
}

/* The number the next version of `pipeline` gets (1 for a new one). Caller holds the lock. */
static sl_status next_version_locked(sl_store *s, const char *pipeline, int64_t *out,
                                     sl_error *err) {
  sqlite3_stmt *stmt = NULL;
  sl_status status = prepare(
      s, "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE pipeline = ?1", &stmt, err);
  if (status != SL_OK) return status;
  bind_text(stmt, 1, pipeline);
  if (sqlite3_step(stmt) == SQLITE_ROW)
    *out = sqlite3_column_int64(stmt, 0);
  else
    status = db_fail(s, err, "numbering a version");
  sqlite3_finalize(stmt);
  return status;
}

sl_status sl_store_next_version(sl_store *s, const char *pipeline, int64_t *version,
                                sl_error *err) {
  sl_status status = check_name(pipeline, err);
  if (status != SL_OK) return status;
  pthread_mutex_lock(&s->lock);
  status = next_version_locked(s, pipeline, version, err);
  pthread_mutex_unlock(&s->lock);
  return status;
}

sl_status sl_store_add_version(sl_store *s, const sl_version *v, int64_t *version_out,
                               bool *created, sl_error *err) {
  sl_status status = check_name(v->pipeline, err);
  if (status == SL_OK) status = check_modules(v->modules, err);
  if (status != SL_OK) return status;

  int64_t now = now_ms(), version = 0;
  bool exists = false;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  status = begin(s, err);
  if (status != SL_OK) goto unlock;

  status = pipeline_exists(s, v->pipeline, &exists, err);
  if (status != SL_OK) goto done;
  if (!exists) {
    status = prepare(s,
                     "INSERT INTO pipelines(name, current, created_at, updated_at)"
                     " VALUES(?1, 0, ?2, ?2)",
                     &stmt, err);
    if (status != SL_OK) goto done;
    bind_text(stmt, 1, v->pipeline);
    sqlite3_bind_int64(stmt, 2, now);
    status = step_done(s, stmt, "creating a pipeline", err);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (status != SL_OK) goto done;
  }

  status = next_version_locked(s, v->pipeline, &version, err);
  if (status != SL_OK) goto done;

  status = prepare(s,
                   "INSERT INTO versions(pipeline, version, source, file, dir, modules,"
                   " created_at, note) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, v->pipeline);
  sqlite3_bind_int64(stmt, 2, version);
  bind_text(stmt, 3, v->source);
  bind_text(stmt, 4, v->file);
  bind_text(stmt, 5, v->dir);
  bind_text(stmt, 6, v->modules ? v->modules : "{}");
  sqlite3_bind_int64(stmt, 7, now);
  bind_text(stmt, 8, v->note);
  status = step_done(s, stmt, "recording a version", err);
  sqlite3_finalize(stmt);
  if (status != SL_OK) goto done;

  status =
      prepare(s, "UPDATE pipelines SET current = ?2, updated_at = ?3 WHERE name = ?1", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, v->pipeline);
  sqlite3_bind_int64(stmt, 2, version);
  sqlite3_bind_int64(stmt, 3, now);
  status = step_done(s, stmt, "making a version current", err);

done:
  sqlite3_finalize(stmt);
  stmt = NULL;
  status = finish(s, status, err);
unlock:
  pthread_mutex_unlock(&s->lock);
  if (status == SL_OK) {
    if (version_out) *version_out = version;
    if (created) *created = !exists;
  }
  return status;
}

sl_status sl_store_set_current(sl_store *s, const char *pipeline, int64_t version, sl_error *err) {
  sl_status status = check_name(pipeline, err);
  if (status != SL_OK) return status;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  /* One statement, so the check and the move cannot be split by another writer. */
  status = prepare(s,
                   "UPDATE pipelines SET current = ?2, updated_at = ?3 WHERE name = ?1"
                   " AND EXISTS (SELECT 1 FROM versions WHERE pipeline = ?1 AND version = ?2)",
                   &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, pipeline);
  sqlite3_bind_int64(stmt, 2, version);
  sqlite3_bind_int64(stmt, 3, now_ms());
  status = step_done(s, stmt, "moving the current version", err);
  if (status == SL_OK && sqlite3_changes(s->db) == 0)
    status = version_not_found(s, pipeline, version, false, err);
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  return status;
}

#define VERSION_SELECT                                                                             \
  "SELECT v.pipeline, v.version, v.source, v.file, v.dir, v.modules, v.note, v.created_at,"        \
  " v.version = p.current FROM versions v JOIN pipelines p ON p.name = v.pipeline"

static void read_version(sqlite3_stmt *stmt, sl_version *out) {
  out->pipeline = column_string(stmt, 0);
  out->version = sqlite3_column_int64(stmt, 1);
  out->source = column_string(stmt, 2);
  out->file = column_string(stmt, 3);
  out->dir = column_string(stmt, 4);
  out->modules = column_string(stmt, 5);
  out->note = column_string(stmt, 6);
  out->created_at_ms = sqlite3_column_int64(stmt, 7);
  out->current = sqlite3_column_int(stmt, 8) != 0;
}

sl_status sl_store_get_version(sl_store *s, const char *pipeline, int64_t version, sl_version *out,
                               sl_error *err) {
  sl_status status = check_name(pipeline, err);
  if (status != SL_OK) return status;
  if (version < 0)
    return sl_error_set(err, SL_INVALID, "version %lld: must be 1 or more (0: the current one)",
                        (long long)version);
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  status = prepare(s,
                   VERSION_SELECT " WHERE v.pipeline = ?1"
                                  " AND v.version = CASE ?2 WHEN 0 THEN p.current ELSE ?2 END",
                   &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, pipeline);
  sqlite3_bind_int64(stmt, 2, version);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    read_version(stmt, out);
  else if (rc == SQLITE_DONE)
    status = version_not_found(s, pipeline, version, version == 0, err);
  else
    status = db_fail(s, err, "reading a version");
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  return status;
}

sl_status sl_store_list_versions(sl_store *s, const char *pipeline, sl_version **out, size_t *count,
                                 sl_error *err) {
  sl_status status = check_name(pipeline, err);
  if (status != SL_OK) return status;
  sl_version *items = NULL;
  size_t used = 0, cap = 0;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  status = prepare(s, VERSION_SELECT " WHERE v.pipeline = ?1 ORDER BY v.version", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, pipeline);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    items = grow(items, used, &cap, sizeof *items);
    read_version(stmt, &items[used++]);
  }
  if (rc != SQLITE_DONE) {
    status = db_fail(s, err, "listing versions");
    goto done;
  }
  if (used == 0) { /* every pipeline has a version, so none means no pipeline */
    bool exists = false;
    status = pipeline_exists(s, pipeline, &exists, err);
    if (status == SL_OK && !exists)
      status = sl_error_set(err, SL_NOT_FOUND, "no pipeline named '%s'", pipeline);
  }
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  if (status != SL_OK) {
    sl_versions_free(items, used);
    return status;
  }
  *out = items;
  *count = used;
  return SL_OK;
}

/* --- pipelines -------------------------------------------------------------------- */

void sl_pipeline_rows_free(sl_pipeline_row *rows, size_t count) {
  if (!rows) return;
  for (size_t i = 0; i < count; i++) free(rows[i].name);
  free(rows);
}

sl_status sl_store_list_pipelines(sl_store *s, sl_pipeline_row **out, size_t *count,
                                  sl_error *err) {
  sl_pipeline_row *rows = NULL;
  size_t used = 0, cap = 0;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  sl_status status = prepare(
      s, "SELECT name, current, created_at, updated_at FROM pipelines ORDER BY name", &stmt, err);
  if (status != SL_OK) goto done;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    rows = grow(rows, used, &cap, sizeof *rows);
    rows[used++] = (sl_pipeline_row){.name = column_string(stmt, 0),
                                     .current = sqlite3_column_int64(stmt, 1),
                                     .created_at_ms = sqlite3_column_int64(stmt, 2),
                                     .updated_at_ms = sqlite3_column_int64(stmt, 3)};
  }
  if (rc != SQLITE_DONE) status = db_fail(s, err, "listing pipelines");
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  if (status != SL_OK) {
    sl_pipeline_rows_free(rows, used);
    return status;
  }
  *out = rows;
  *count = used;
  return SL_OK;
}

sl_status sl_store_delete_pipeline(sl_store *s, const char *pipeline, sl_error *err) {
  sl_status status = check_name(pipeline, err);
  if (status != SL_OK) return status;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  status = begin(s, err);
  if (status != SL_OK) goto unlock;
  /* The foreign key cascades too; deleting the versions by name says so where it happens. */
  status = prepare(s, "DELETE FROM versions WHERE pipeline = ?1", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, pipeline);
  status = step_done(s, stmt, "deleting versions", err);
  sqlite3_finalize(stmt);
  stmt = NULL;
  if (status != SL_OK) goto done;
  status = prepare(s, "DELETE FROM pipelines WHERE name = ?1", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, pipeline);
  status = step_done(s, stmt, "deleting a pipeline", err);
  if (status == SL_OK && sqlite3_changes(s->db) == 0)
    status = sl_error_set(err, SL_NOT_FOUND, "no pipeline named '%s'", pipeline);
done:
  sqlite3_finalize(stmt);
  status = finish(s, status, err);
unlock:
  pthread_mutex_unlock(&s->lock);
  return status;
}

/* --- modules ---------------------------------------------------------------------- */

void sl_module_rows_free(sl_module_row *rows, size_t count) {
  if (!rows) return;
  for (size_t i = 0; i < count; i++) free(rows[i].name);
  free(rows);
}

static sl_status check_hash(const char *sha256, sl_error *err) {
  if (!sl__module_hash_valid(sha256))
    return sl_error_set(err, SL_INVALID, "'%.80s' is not a module hash (64 lowercase hex)",
                        sha256 ? sha256 : "");
  return SL_OK;
}

sl_status sl_store_put_module(sl_store *s, const uint8_t *wasm, size_t len, const char *name,
                              char sha256_out[65], bool *existed, sl_error *err) {
  char hash[65], path[PATH_MAX];
  sl__sha256_hex(len ? wasm : (const uint8_t *)"", len, hash);
  sl_status status = sl__module_file_path(s->modules_dir, hash, path, sizeof path, err);
  /* The file first, outside the lock (it may be megabytes and is synced): a row is only
   * ever committed for a complete file. */
  if (status == SL_OK) status = sl__module_file_write(path, wasm, len, err);
  if (status != SL_OK) return status;

  bool found = false;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  status = begin(s, err);
  if (status != SL_OK) goto unlock;
  status = prepare(s, "SELECT name FROM modules WHERE sha256 = ?1", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, hash);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    status = db_fail(s, err, "looking up a module");
    goto done;
  }
  found = rc == SQLITE_ROW;
  const char *stored_name = found ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
  bool name_missing = found && (!stored_name || !stored_name[0]);
  sqlite3_finalize(stmt);
  stmt = NULL;
  if (!found) {
    status =
        prepare(s, "INSERT INTO modules(sha256, size, created_at, name) VALUES(?1, ?2, ?3, ?4)",
                &stmt, err);
    if (status != SL_OK) goto done;
    bind_text(stmt, 1, hash);
    sqlite3_bind_int64(stmt, 2, (int64_t)len);
    sqlite3_bind_int64(stmt, 3, now_ms());
    bind_text(stmt, 4, name);
    status = step_done(s, stmt, "recording a module", err);
  } else if (name_missing && name && name[0]) {
    status = prepare(s, "UPDATE modules SET name = ?2 WHERE sha256 = ?1", &stmt, err);
    if (status != SL_OK) goto done;
    bind_text(stmt, 1, hash);
    bind_text(stmt, 2, name);
    status = step_done(s, stmt, "naming a module", err);
  }
done:
  sqlite3_finalize(stmt);
  status = finish(s, status, err);
unlock:
  pthread_mutex_unlock(&s->lock);
  if (status == SL_OK) {
    if (sha256_out) memcpy(sha256_out, hash, sizeof hash);
    if (existed) *existed = found;
  }
  return status;
}

sl_status sl_store_import_module_file(sl_store *s, const char *path, char sha256_out[65],
                                      sl_error *err) {
  uint8_t *wasm = NULL;
  size_t len = 0;
  sl_status status = sl__read_file(path, &wasm, &len, err);
  if (status != SL_OK) return status;
  char *path_copy = copy_string(path);
  status = sl_store_put_module(s, wasm, len, basename(path_copy), sha256_out, NULL, err);
  free(path_copy);
  free(wasm);
  return status;
}

/* Reads the row of a valid hash. SL_NOT_FOUND when there is none. Takes the lock. */
static sl_status read_module(sl_store *s, const char *sha256, sl_module_row *out, sl_error *err) {
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  sl_status status = prepare(
      s, "SELECT sha256, size, name, created_at FROM modules WHERE sha256 = ?1", &stmt, err);
  if (status != SL_OK) goto done;
  bind_text(stmt, 1, sha256);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    snprintf(out->sha256, sizeof out->sha256, "%s", (const char *)sqlite3_column_text(stmt, 0));
    out->size = sqlite3_column_int64(stmt, 1);
    out->name = column_string(stmt, 2);
    out->created_at_ms = sqlite3_column_int64(stmt, 3);
  } else if (rc == SQLITE_DONE) {
    status = sl_error_set(err, SL_NOT_FOUND, "no module %s", sha256);
  } else {
    status = db_fail(s, err, "reading a module");
  }
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  return status;
}

sl_status sl_store_module_path(sl_store *s, const char *sha256, char *path, size_t cap,
                               sl_error *err) {
  sl_module_row row = {0};
  char full[PATH_MAX];
  sl_status status = check_hash(sha256, err);
  if (status == SL_OK) status = read_module(s, sha256, &row, err);
  free(row.name);
  if (status == SL_OK)
    status = sl__module_file_path(s->modules_dir, sha256, full, sizeof full, err);
  if (status != SL_OK) return status;
  struct stat st;
  if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
    return sl_error_set(err, SL_NOT_FOUND, "module %s is recorded but %s is missing", sha256, full);
  if (strlen(full) >= cap)
    return sl_error_set(err, SL_INVALID, "%s: path longer than %zu bytes", full, cap);
  memcpy(path, full, strlen(full) + 1);
  return SL_OK;
}

sl_status sl_store_get_module(sl_store *s, const char *sha256, sl_module_row *out, sl_error *err) {
  sl_status status = check_hash(sha256, err);
  if (status == SL_OK) status = read_module(s, sha256, out, err);
  return status;
}

sl_status sl_store_list_modules(sl_store *s, sl_module_row **out, size_t *count, sl_error *err) {
  sl_module_row *rows = NULL;
  size_t used = 0, cap = 0;
  sqlite3_stmt *stmt = NULL;
  pthread_mutex_lock(&s->lock);
  sl_status status =
      prepare(s, "SELECT sha256, size, name, created_at FROM modules ORDER BY created_at, sha256",
              &stmt, err);
  if (status != SL_OK) goto done;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    rows = grow(rows, used, &cap, sizeof *rows);
    sl_module_row *row = &rows[used++];
    snprintf(row->sha256, sizeof row->sha256, "%s", (const char *)sqlite3_column_text(stmt, 0));
    row->size = sqlite3_column_int64(stmt, 1);
    row->name = column_string(stmt, 2);
    row->created_at_ms = sqlite3_column_int64(stmt, 3);
  }
  if (rc != SQLITE_DONE) status = db_fail(s, err, "listing modules");
done:
  sqlite3_finalize(stmt);
  pthread_mutex_unlock(&s->lock);
  if (status != SL_OK) {
    sl_module_rows_free(rows, used);
    return status;
  }
  *out = rows;
  *count = used;
  return SL_OK;
}
