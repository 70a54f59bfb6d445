/*
 * kv_local.c - the "local" backend: every bucket of a registry in one SQLite file,
 * STATE_DIR/keyvalue.sqlite, one row per (bucket, key).
 *
 * One connection per registry, behind a mutex, with its statements prepared once. The
 * file is in WAL mode with synchronous=NORMAL (a commit survives a crash of the process,
 * and costs no fsync), and has a busy timeout because another process may have it open:
 * when the daemon hot-swaps a pipeline, the old and the new one overlap.
 *
 * Each operation is one statement, so it is atomic against every other connection too.
 * `increment` is INSERT ... ON CONFLICT DO UPDATE ... RETURNING over the SQL function
 * sluice_kv_add, which checks the stored text is a counter and the sum does not overflow;
 * when it refuses, the statement fails and nothing changes.
 *
 * Sections: the database - operations - buckets.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caps/kv_backend.h"

#define BUSY_TIMEOUT_MS 5000 /* how long a write waits for another process's */

struct sl__kv_local_db {
  pthread_mutex_t lock; /* one operation at a time on the connection */
  sqlite3 *db;
  char *path;
  sqlite3_stmt *get, *set, *remove, *exists, *list_first, *list_after, *increment;
  /* Why sluice_kv_add refused, set during an increment (under `lock`); "" otherwise. */
  char add_refusal[160];
};

/* ---- the database ----------------------------------------------------------------------- */

static const char *const SCHEMA = "CREATE TABLE IF NOT EXISTS kv ("
                                  "  bucket TEXT NOT NULL,"
                                  "  key BLOB NOT NULL,"
                                  "  value BLOB NOT NULL,"
                                  "  PRIMARY KEY (bucket, key)"
                                  ") WITHOUT ROWID";

/* sluice_kv_add(old, delta): the counter `old` (NULL: absent, so 0) plus delta, as text. */
static void sql_kv_add(sqlite3_context *context, int argc, sqlite3_value **argv) {
  sl__kv_local_db *local = sqlite3_user_data(context);
  int64_t value = 0, sum;
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    const uint8_t *text = sqlite3_value_blob(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    if (!sl__kv_counter_parse(text ? text : (const uint8_t *)"", (size_t)len, &value)) {
      snprintf(local->add_refusal, sizeof local->add_refusal,
               "the value there is not a decimal integer");
      sqlite3_result_error(context, local->add_refusal, -1);
      return;
    }
  }
  int64_t delta = sqlite3_value_int64(argv[1]);
  if (!sl__kv_counter_add(value, delta, &sum)) {
    snprintf(local->add_refusal, sizeof local->add_refusal,
             "adding %lld would overflow a 64-bit integer", (long long)delta);
    sqlite3_result_error(context, local->add_refusal, -1);
    return;
  }
  char text[21];
  size_t len = sl__kv_counter_format(sum, text);
  sqlite3_result_text(context, text, (int)len, SQLITE_TRANSIENT);
}

/* mkdir -p */
static int make_folders(const char *path) {
  char *copy = (char *)sl__kv_copy(path, strlen(path), true);
  int rc = 0;
  for (char *slash = copy + 1;; slash++) {
    if (*slash != '/' && *slash != '\0') continue;
    char saved = *slash;
    *slash = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      rc = -1;
      break;
    }
    *slash = saved;
    if (!saved) break;
  }
  free(copy);
  return rc;
}

static sl_status db_fail(sl__kv_local_db *local, sl_error *err, const char *what) {
  return sl_error_set(err, SL_IO, "key-value store %s: %s: %s", local->path, what,
                      local->db ? sqlite3_errmsg(local->db) : "out of memory");
}

static sl_status prepare(sl__kv_local_db *local, sqlite3_stmt **stmt, const char *sql,
                         sl_error *err) {
  if (sqlite3_prepare_v3(local->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK)
    return db_fail(local, err, "preparing a statement");
  return SL_OK;
}

sl_status sl__kv_local_db_open(const char *state_dir, sl__kv_local_db **out, sl_error *err) {
  *out = NULL;
  sl__kv_local_db *local = calloc(1, sizeof *local);
  if (!local) abort();
  pthread_mutex_init(&local->lock, NULL);
  size_t path_len = strlen(state_dir) + sizeof "/keyvalue.sqlite";
  local->path = malloc(path_len);
  if (!local->path) abort();
  snprintf(local->path, path_len, "%s/keyvalue.sqlite", state_dir);

  sl_status st = SL_OK;
  if (make_folders(state_dir) != 0) {
    st = sl_error_set(err, SL_IO, "key-value store: cannot create the folder %s: %s", state_dir,
                      strerror(errno));
    goto done;
  }
  /* NOMUTEX: `lock` already serializes every use of the connection. */
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(local->path, &local->db, flags, NULL) != SQLITE_OK) {
    st = db_fail(local, err, "opening");
    goto done;
  }
  sqlite3_extended_result_codes(local->db, 1);
  /* Before anything that may wait on another process's lock. */
  sqlite3_busy_timeout(local->db, BUSY_TIMEOUT_MS);
  if (sqlite3_exec(local->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(local->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(local->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
    st = db_fail(local, err, "setting up");
    goto done;
  }
  if (sqlite3_create_function(local->db, "sluice_kv_add", 2, SQLITE_UTF8, local, sql_kv_add, NULL,
                              NULL) != SQLITE_OK) {
    st = db_fail(local, err, "registering sluice_kv_add");
    goto done;
  }
  struct {
    sqlite3_stmt **stmt;
    const char *sql;
  } statements[] = {
      {&local->get, "SELECT value FROM kv WHERE bucket = ?1 AND key = ?2"},
      {&local->set, "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value"},
      {&local->remove, "DELETE FROM kv WHERE bucket = ?1 AND key = ?2"},
      {&local->exists, "SELECT 1 FROM kv WHERE bucket = ?1 AND key = ?2"},
      {&local->list_first, "SELECT key FROM kv WHERE bucket = ?1 ORDER BY key LIMIT ?3"},
      {&local->list_after,
       "SELECT key FROM kv WHERE bucket = ?1 AND key > ?2 ORDER BY key LIMIT ?3"},
      {&local->increment,
       "INSERT INTO kv (bucket, key, value) "
       "VALUES (?1, ?2, sluice_kv_add(NULL, ?3)) "
       "ON CONFLICT (bucket, key) DO UPDATE SET value = sluice_kv_add(value, ?3) "
       "RETURNING value"},
  };
  for (size_t i = 0; i < sizeof statements / sizeof *statements; i++) {
    st = prepare(local, statements[i].stmt, statements[i].sql, err);
    if (st != SL_OK) goto done;
  }
done:
  if (st != SL_OK) {
    sl__kv_local_db_close(local);
    return st;
  }
  *out = local;
  return SL_OK;
}

void sl__kv_local_db_close(sl__kv_local_db *local) {
  if (!local) return;
  sqlite3_stmt *statements[] = {local->get,      local->set,        local->remove,
                                local->exists,   local->list_first, local->list_after,
                                local->increment};
  for (size_t i = 0; i < sizeof statements / sizeof *statements; i++)
    sqlite3_finalize(statements[i]);
  sqlite3_close(local->db); /* NULL is fine */
  pthread_mutex_destroy(&local->lock);
  free(local->path);
  free(local);
}

/* ---- operations ---------------------------------------------------------------------------- */

/* Binds ?1 = the bucket, ?2 = the key (always a BLOB, an empty one too). */
static void bind_bucket_key(sqlite3_stmt *stmt, const sl_kv_bucket *bucket, const char *key,
                            size_t key_len) {
  sqlite3_bind_text(stmt, 1, bucket->name, -1, SQLITE_STATIC);
  sqlite3_bind_blob64(stmt, 2, key, key_len, SQLITE_STATIC);
}

/* Readies a used statement for the next call, dropping borrowed bindings. */
static void finish(sqlite3_stmt *stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

static sl_status step_failed(sl_kv_bucket *bucket, sl__kv_local_db *local, const char *what,
                             sl_error *err) {
  return sl__kv_error(bucket, err, SL_IO, "%s in %s: %s", what, local->path,
                      sqlite3_errmsg(local->db));
}

static sl_status local_get(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                           size_t *value_len, bool *found, sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  sl_status st = SL_OK;
  pthread_mutex_lock(&local->lock);
  bind_bucket_key(local->get, bucket, key, key_len);
  int rc = sqlite3_step(local->get);
  if (rc == SQLITE_ROW) {
    const void *bytes = sqlite3_column_blob(local->get, 0);
    size_t len = (size_t)sqlite3_column_bytes(local->get, 0);
    *found = true;
    *value = sl__kv_copy(bytes, len, false);
    *value_len = len;
  } else if (rc != SQLITE_DONE) {
    st = step_failed(bucket, local, "get", err);
  }
  finish(local->get);
  pthread_mutex_unlock(&local->lock);
  return st;
}

/* Runs a statement that returns no rows. */
static sl_status run_write(sl_kv_bucket *bucket, sqlite3_stmt *stmt, const char *what,
                           sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  sl_status st = SL_OK;
  if (sqlite3_step(stmt) != SQLITE_DONE) st = step_failed(bucket, local, what, err);
  finish(stmt);
  return st;
}

static sl_status local_set(sl_kv_bucket *bucket, const char *key, size_t key_len,
                           const uint8_t *value, size_t value_len, sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  pthread_mutex_lock(&local->lock);
  bind_bucket_key(local->set, bucket, key, key_len);
  sqlite3_bind_blob64(local->set, 3, value, value_len, SQLITE_STATIC);
  sl_status st = run_write(bucket, local->set, "set", err);
  pthread_mutex_unlock(&local->lock);
  return st;
}

static sl_status local_remove(sl_kv_bucket *bucket, const char *key, size_t key_len,
                              sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  pthread_mutex_lock(&local->lock);
  bind_bucket_key(local->remove, bucket, key, key_len);
  sl_status st = run_write(bucket, local->remove, "delete", err);
  pthread_mutex_unlock(&local->lock);
  return st;
}

static sl_status local_exists(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                              sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  sl_status st = SL_OK;
  pthread_mutex_lock(&local->lock);
  bind_bucket_key(local->exists, bucket, key, key_len);
  int rc = sqlite3_step(local->exists);
  if (rc == SQLITE_ROW)
    *exists = true;
  else if (rc != SQLITE_DONE)
    st = step_failed(bucket, local, "exists", err);
  finish(local->exists);
  pthread_mutex_unlock(&local->lock);
  return st;
}

static sl_status local_list_keys(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                                 sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  uint8_t *after = NULL;
  size_t after_len = 0;
  if (cursor && !sl__kv_cursor_decode(cursor, &after, &after_len))
    return sl__kv_error(bucket, err, SL_INVALID,
                        "list-keys: \"%.40s\" is not a cursor this bucket returned", cursor);
  sl_status st = SL_OK;
  pthread_mutex_lock(&local->lock);
  sqlite3_stmt *stmt = cursor ? local->list_after : local->list_first;
  sqlite3_bind_text(stmt, 1, bucket->name, -1, SQLITE_STATIC);
  if (cursor) sqlite3_bind_blob64(stmt, 2, after, after_len, SQLITE_STATIC);
  /* One key more than a page holds says whether another page follows. */
  sqlite3_bind_int(stmt, 3, SL_KV_PAGE_KEYS + 1);
  int rc;
  bool more = false;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (page->count == SL_KV_PAGE_KEYS) {
      more = true;
      break;
    }
    sl__kv_page_add(page, sqlite3_column_blob(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = step_failed(bucket, local, "list-keys", err);
  finish(stmt);
  pthread_mutex_unlock(&local->lock);
  if (st == SL_OK && more)
    page->cursor =
        sl__kv_cursor_encode(page->keys[page->count - 1], page->key_lens[page->count - 1]);
  free(after);
  return st;
}

static sl_status local_increment(sl_kv_bucket *bucket, const char *key, size_t key_len,
                                 int64_t delta, int64_t *result, sl_error *err) {
  sl__kv_local_db *local = bucket->backend;
  sl_status st = SL_OK;
  pthread_mutex_lock(&local->lock);
  local->add_refusal[0] = '\0';
  bind_bucket_key(local->increment, bucket, key, key_len);
  sqlite3_bind_int64(local->increment, 3, delta);
  int rc = sqlite3_step(local->increment);
  if (rc == SQLITE_ROW) {
    const uint8_t *text = sqlite3_column_text(local->increment, 0);
    size_t len = (size_t)sqlite3_column_bytes(local->increment, 0);
    if (!text || !sl__kv_counter_parse(text, len, result))
      st = sl__kv_error(bucket, err, SL_IO, "increment: the database returned no counter");
    /* The change is made by the first step; stepping to the end completes the statement. */
    rc = sqlite3_step(local->increment);
  }
  if (st == SL_OK && rc != SQLITE_DONE) {
    if (local->add_refusal[0])
      st = sl__kv_error(bucket, err, SL_INVALID, "increment of '%.*s': %s",
                        (int)(key_len > 100 ? 100 : key_len), key, local->add_refusal);
    else
      st = step_failed(bucket, local, "increment", err);
  }
  finish(local->increment);
  pthread_mutex_unlock(&local->lock);
  if (st != SL_OK) *result = 0;
  return st;
}

/* ---- buckets ----------------------------------------------------------------------------- */

static void local_close(sl_kv_bucket *bucket) {
  bucket->backend = NULL; /* the connection belongs to the registry */
}

static const sl__kv_ops local_ops = {
    .get = local_get,
    .set = local_set,
    .remove = local_remove,
    .exists = local_exists,
    .list_keys = local_list_keys,
    .increment = local_increment,
    .close = local_close,
};

sl_status sl__kv_local_open(sl__kv_local_db *db, sl_kv_bucket *bucket, sl_error *err) {
  bucket->ops = &local_ops;
  bucket->backend = db;
  return SL_OK;
}
