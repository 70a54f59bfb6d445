/*
 * postgres_sink.c - `type: postgres` with inputs: inserts every batch of events into one
 * table as one transaction, each column filled from the payload, a JSON field of it or
 * a metadata value (pg_rows.h says exactly how).
 *
 * Statements. Values only ever travel as COPY data or as statement parameters, never
 * inside SQL text; the table and column names are quoted with PQescapeIdentifier.
 *   - Into a table, without on_conflict: one `COPY t (cols) FROM STDIN` per batch, one
 *     statement and so one transaction. COPY was measured against multi-row INSERT on
 *     this machine (loopback, 4 columns: bigint, text, jsonb, timestamptz): about 2x as
 *     fast from 1,000 events per batch (300-370k vs 170-190k rows/s; 500k vs 150k at
 *     10,000), the same within noise at 1-10 events per batch (round trips dominate).
 *   - With on_conflict (COPY has no ON CONFLICT), or into a view (COPY cannot write to
 *     one): `INSERT INTO t (cols) VALUES ($1,..),(..) [ON CONFLICT (k) DO NOTHING]` with
 *     at most 65535 parameters per statement (the protocol's limit); a batch needing more
 *     than one statement runs them between BEGIN and COMMIT.
 *
 * Startup (init) connects, reads the table from the catalog and checks that it exists,
 * may be inserted into, has every mapped column (none generated or GENERATED ALWAYS AS
 * IDENTITY) and, with on_conflict, that the server accepts the INSERT (a unique index
 * matching on_conflict exists). Any failure there, the server being unreachable
 * included, stops the pipeline from starting with a message saying what is wrong.
 * Every later connection reads the table again (its column types decide how values are
 * written: bytea as hex, json/jsonb as JSON).
 *
 * A batch's outcomes:
 *   - written: SL_OK.
 *   - the connection is lost, the server does not answer within `timeout`, or it says
 *     something that may pass (shutting down, too many connections, deadlock...): the
 *     connection is closed, and after `backoff` (doubling up to `max_backoff`) the sink
 *     connects again and runs the whole batch again, until it is written or the sink is
 *     stopped (SL_CLOSED). Nothing of a batch whose transaction did not commit is in the
 *     table, so nothing is lost or half-written. The exception: when the connection
 *     breaks (or `timeout` passes) after the statement that commits the batch was sent
 *     (its COPY, its only INSERT, or COMMIT) but before the answer came, the outcome
 *     is unknown; running the batch again then writes it twice unless on_conflict
 *     names a unique key, which turns the second copy into nothing.
 *   - the server refuses the data (a value that does not fit its column, a constraint,
 *     the table dropped meanwhile) or an event cannot become a row: the batch fails at
 *     once (SL_IO), naming the event and column where the server says which; nothing of
 *     the batch is written; the next batch goes on. Not retried: it would fail again.
 *
 * Threads: init on the loading thread; write, and the destroy that follows the join of
 * the sink's thread, on that thread; stop from any (it makes a wait return at once).
 *
 * Sections: state - settings - messages - the table - writing a batch - write - init /
 * destroy - the connector table.
 */
#include "connectors/postgres/postgres_sink.h"

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/postgres/pg_conn.h"
#include "connectors/postgres/pg_rows.h"

/* The protocol carries at most this many parameters in one statement. */
#define MAX_PARAMS 65535

/* Connection parameters handed to libpq: at most this many, plus the NULL ending them. */
#define MAX_CONN_PARAMS 12

/* Type oids whose values are written differently (pg_type.h). */
#define BYTEA_OID 17
#define JSON_OID 114
#define JSONB_OID 3802

/* ---- state ------------------------------------------------------------------------- */

typedef struct postgres_sink {
  const sl_node_ctx *node;
  const postgres_sink_config *config;
  char *shown; /* postgresql://user@host:port/db: the server in messages, no password */

  /* libpq's keyword/value pairs, NULL-terminated; values borrowed from config or here. */
  const char *keys[MAX_CONN_PARAMS + 1];
  const char *values[MAX_CONN_PARAMS + 1];
  char application_name[128];

  char *schema, *relname; /* `table` split at its first dot; schema may be NULL */
  sl_pg_column *columns;
  size_t column_count;
  char **conflict; /* on_conflict's column names (borrowed from the config) */
  size_t conflict_count;

  /* SQL text, built once at init: only quoted identifiers in it. */
  char *target; /* "schema"."name" */
  char *copy_sql;
  char *insert_head; /* INSERT INTO target (cols) VALUES */
  char *insert_tail; /* ON CONFLICT (k) DO NOTHING, or "" */
  size_t rows_per_insert;
  sl_pg_buf insert_sql; /* the last multi-row INSERT built, for insert_sql_rows rows */
  size_t insert_sql_rows;

  /* Learnt from the catalog on each connection. */
  bool ready;      /* the table was read on the current connection */
  bool use_insert; /* on_conflict, or the target is a view */
  char *user;      /* who we are connected as, for messages */

  sl_pg_conn pg;
  sl_pg_buf data; /* COPY text, or every INSERT parameter's bytes */
  size_t *offsets;
  const char **params;
  size_t params_cap;

  /* Retry warnings: at most one line per second. */
  bool logged;
  uint64_t last_log_ms;
  unsigned long suppressed;
} postgres_sink;

static const char *const sslmode_choices[] = {"disable",   "allow",       "prefer", "require",
                                              "verify-ca", "verify-full", NULL};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *copy_text(const char *text) {
  char *copy = strdup(text);
  if (!copy) abort();
  return copy;
}

/* ---- settings ---------------------------------------------------------------------- */

/* The server as messages show it, from the URL and `username`; never the password. */
static sl_status describe_server(postgres_sink *sink, sl_error *err) {
  const postgres_sink_config *cfg = sink->config;
  char *parse_error = NULL;
  PQconninfoOption *options = PQconninfoParse(cfg->url, &parse_error);
  if (!options) {
    char reason[512];
    sl__pg_one_line(parse_error ? parse_error : "out of memory", reason, sizeof reason);
    PQfreemem(parse_error);
    return sl_error_set(err, SL_CONFIG,
                        "url: %s (write postgresql://USER@HOST:PORT/DATABASE or "
                        "'host=HOST dbname=DATABASE')",
                        reason);
  }
  const char *user = cfg->username, *host = NULL, *port = NULL, *dbname = NULL;
  for (PQconninfoOption *o = options; o->keyword; o++) {
    if (!o->val || !o->val[0]) continue;
    if (!strcmp(o->keyword, "user") && !user) user = o->val;
    if (!strcmp(o->keyword, "host") || (!strcmp(o->keyword, "hostaddr") && !host)) host = o->val;
    if (!strcmp(o->keyword, "port")) port = o->val;
    if (!strcmp(o->keyword, "dbname")) dbname = o->val;
  }
  size_t size = 64 + (user ? strlen(user) : 0) + (host ? strlen(host) : 9) +
                (port ? strlen(port) : 0) + (dbname ? strlen(dbname) : 0);
  sink->shown = malloc(size);
  if (!sink->shown) abort();
  snprintf(sink->shown, size, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
           host ? host : "localhost", port ? ":" : "", port ? port : "", dbname ? dbname : "");
  PQconninfoFree(options);
  return SL_OK;
}

static void add_param(postgres_sink *sink, size_t *n, const char *key, const char *value) {
  if (!value || !value[0]) return;
  sink->keys[*n] = key;
  sink->values[*n] = value;
  (*n)++;
}

/* libpq's parameters: ours before the URL's (which may override them), then the URL,
 * then the settings that override the URL. */
static void build_conn_params(postgres_sink *sink) {
  const postgres_sink_config *cfg = sink->config;
  size_t n = 0;
  snprintf(sink->application_name, sizeof sink->application_name, "sluice %s/%s",
           sink->node->pipeline ? sink->node->pipeline : "", sink->node->id ? sink->node->id : "");
  add_param(sink, &n, "application_name", sink->application_name);
  add_param(sink, &n, "dbname", cfg->url);
  add_param(sink, &n, "client_encoding", "UTF8"); /* event text is UTF-8 */
  add_param(sink, &n, "user", cfg->username);
  add_param(sink, &n, "password", cfg->password);
  add_param(sink, &n, "sslmode", cfg->sslmode ? cfg->sslmode : cfg->tls ? "verify-full" : NULL);
  add_param(sink, &n, "sslrootcert", cfg->tls_ca);
  add_param(sink, &n, "sslcert", cfg->tls_cert);
  add_param(sink, &n, "sslkey", cfg->tls_key);
  sink->keys[n] = NULL;
  sink->values[n] = NULL;
}

static sl_status check_settings(postgres_sink *sink, sl_error *err) {
  const postgres_sink_config *cfg = sink->config;
  if (!cfg->url || !cfg->url[0])
    return sl_error_set(err, SL_CONFIG, "url: empty; write postgresql://USER@HOST:PORT/DATABASE");
  if (!cfg->table || !cfg->table[0])
    return sl_error_set(err, SL_CONFIG, "table: empty; write NAME or SCHEMA.NAME");
  const char *dot = strchr(cfg->table, '.');
  if (dot && (dot == cfg->table || !dot[1]))
    return sl_error_set(err, SL_CONFIG, "table: '%s' has an empty part; write NAME or SCHEMA.NAME",
                        cfg->table);
  if (dot) {
    sink->schema = strndup(cfg->table, (size_t)(dot - cfg->table));
    sink->relname = copy_text(dot + 1);
    if (!sink->schema) abort();
  } else {
    sink->relname = copy_text(cfg->table);
  }
  sink->conflict = cfg->on_conflict.items; /* the loader checked: none is empty */
  sink->conflict_count = cfg->on_conflict.count;
  if (cfg->tls && cfg->sslmode &&
      (!strcmp(cfg->sslmode, "disable") || !strcmp(cfg->sslmode, "allow") ||
       !strcmp(cfg->sslmode, "prefer")))
    return sl_error_set(err, SL_CONFIG,
                        "sslmode: '%s' does not require TLS, but tls: true does; use require, "
                        "verify-ca or verify-full (or leave sslmode out: verify-full)",
                        cfg->sslmode);
  if (cfg->backoff == 0) return sl_error_set(err, SL_CONFIG, "backoff: must be at least 1ms");
  if (cfg->max_backoff < cfg->backoff)
    return sl_error_set(err, SL_CONFIG, "max_backoff: must be at least backoff (%llu ms)",
                        (unsigned long long)cfg->backoff);
  if (cfg->timeout == 0) return sl_error_set(err, SL_CONFIG, "timeout: must be at least 1ms");
  if (cfg->connect_timeout == 0)
    return sl_error_set(err, SL_CONFIG, "connect_timeout: must be at least 1ms");
  sl_status st = sl__pg_columns_parse(&cfg->columns, &sink->columns, &sink->column_count, err);
  if (st != SL_OK) return st;
  sink->rows_per_insert = MAX_PARAMS / sink->column_count;
  if (sink->rows_per_insert == 0)
    return sl_error_set(err, SL_CONFIG, "columns: %zu columns is more than a statement can fill",
                        sink->column_count);
  build_conn_params(sink);
  return describe_server(sink, err);
}

/* ---- messages ---------------------------------------------------------------------- */

static void on_notice(void *user, bool warning, const char *message) {
  postgres_sink *sink = user;
  sl_node_log(sink->node, warning ? SL_LOG_WARN : SL_LOG_DEBUG, "postgres: %s", message);
}

static void log_retry(postgres_sink *sink, const char *what, size_t events, unsigned attempt,
                      uint64_t delay) {
  uint64_t now = now_ms();
  if (sink->logged && now - sink->last_log_ms < 1000) {
    sink->suppressed++;
    return;
  }
  char skipped[64] = "";
  if (sink->suppressed)
    snprintf(skipped, sizeof skipped, " (%lu similar lines suppressed)", sink->suppressed);
  sl_node_log(sink->node, SL_LOG_WARN,
              "postgres sink: %s: %s; running the batch of %zu events again in %llu ms "
              "(attempt %u)%s",
              sink->shown, what, events, (unsigned long long)delay, attempt + 1, skipped);
  sink->logged = true;
  sink->last_log_ms = now;
  sink->suppressed = 0;
}

/* Where a refused statement went wrong: the event (1-based in the batch) and column the
 * server's CONTEXT names ("COPY t, line 3, column n: ..." or "... parameter $7 = ..."),
 * or the column of a NOT NULL violation. `first` is the statement's first event. */
static void locate(const postgres_sink *sink, const PGresult *res, size_t first, size_t *event,
                   const char **column, char *named, size_t named_size) {
  *event = 0;
  *column = NULL;
  named[0] = '\0';
  const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
  const char *at = NULL;
  /* COPY's line is the last of the context (inner ones, like "JSON data, line 1", come
   * first), and the table's name before it might hold ", line " too. */
  for (const char *next = context && strstr(context, "COPY ") ? context : NULL;
       next && (next = strstr(next, ", line ")) != NULL; next++)
    at = next;
  if (at) {
    *event = first + strtoul(at + 7, NULL, 10);
    const char *col = strstr(at, ", column ");
    if (col) {
      col += 9;
      size_t len = strcspn(col, ":\n");
      snprintf(named, named_size, "%.*s", (int)len, col);
    }
  } else if (context && (at = strstr(context, "parameter $")) != NULL) {
    unsigned long param = strtoul(at + 11, NULL, 10);
    if (param >= 1) {
      *event = first + (param - 1) / sink->column_count + 1;
      snprintf(named, named_size, "%s", sink->columns[(param - 1) % sink->column_count].name);
    }
  }
  const char *diag_column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
  if (!named[0] && diag_column) snprintf(named, named_size, "%s", diag_column);
  for (size_t c = 0; c < sink->column_count && named[0]; c++)
    if (!strcmp(sink->columns[c].name, named)) *column = sink->columns[c].source;
}

/* err <- "table T: event E, column "c" (payload.c): MESSAGE (DETAIL) (SQLSTATE S); none
 * of the batch's N events were written". */
static sl_status refused(postgres_sink *sink, const PGresult *res, size_t first, size_t events,
                         sl_error *err) {
  char message[512], detail[256], named[128];
  sl__pg_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), message, sizeof message);
  sl__pg_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL), detail, sizeof detail);
  const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  size_t event;
  const char *source;
  locate(sink, res, first, &event, &source, named, sizeof named);
  char where[300] = "";
  if (event && named[0])
    snprintf(where, sizeof where, "event %zu, column \"%s\"%s%s%s: ", event, named,
             source ? " (" : "", source ? source : "", source ? ")" : "");
  else if (event)
    snprintf(where, sizeof where, "event %zu: ", event);
  else if (named[0])
    snprintf(where, sizeof where, "column \"%s\": ", named);
  /* A table that vanished or changed is read again before the next batch. */
  if (sqlstate && (!strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "42703"))) sink->ready = false;
  return sl_error_set(err, SL_IO,
                      "postgres sink: table \"%s\": %s%s%s%s%s (SQLSTATE %s); none of the batch's "
                      "%zu events were written",
                      sink->config->table, where, message, detail[0] ? " (" : "", detail,
                      detail[0] ? ")" : "", sqlstate ? sqlstate : "?", events);
}

/* ---- the table --------------------------------------------------------------------- */

/* PQescapeIdentifier into a malloc'd string; NULL when the name is not valid text. */
static char *quote_name(PGconn *conn, const char *name) {
  char *quoted = PQescapeIdentifier(conn, name, strlen(name));
  if (!quoted) return NULL;
  char *copy = copy_text(quoted);
  PQfreemem(quoted);
  return copy;
}

static void append_text(sl_pg_buf *buf, const char *text) {
  sl__pg_buf_append(buf, text, strlen(text));
}

/* Ends the text in `buf` with a NUL, so buf->data is a C string. */
static void terminate(sl_pg_buf *buf) { sl__pg_buf_append(buf, "", 1); }

/* The SQL text, from the names quoted on the first connection. */
static sl_status build_sql(postgres_sink *sink, sl_error *err) {
  PGconn *conn = sink->pg.conn;
  sl_pg_buf target = {0}, list = {0}, tail = {0};
  sl_status st = SL_OK;
  char *quoted = NULL;
  if (sink->schema) {
    if (!(quoted = quote_name(conn, sink->schema))) goto bad_name;
    append_text(&target, quoted);
    sl__pg_buf_append(&target, ".", 1);
    free(quoted);
  }
  if (!(quoted = quote_name(conn, sink->relname))) goto bad_name;
  append_text(&target, quoted);
  terminate(&target);
  free(quoted);
  sl__pg_buf_append(&list, "(", 1);
  for (size_t c = 0; c < sink->column_count; c++) {
    if (!(quoted = quote_name(conn, sink->columns[c].name))) goto bad_name;
    if (c) sl__pg_buf_append(&list, ", ", 2);
    append_text(&list, quoted);
    free(quoted);
  }
  append_text(&list, ")");
  terminate(&list);
  if (sink->conflict_count) {
    append_text(&tail, " ON CONFLICT (");
    for (size_t k = 0; k < sink->conflict_count; k++) {
      if (!(quoted = quote_name(conn, sink->conflict[k]))) goto bad_name;
      if (k) sl__pg_buf_append(&tail, ", ", 2);
      append_text(&tail, quoted);
      free(quoted);
    }
    append_text(&tail, ") DO NOTHING");
  }
  terminate(&tail);
  size_t size = target.len + list.len + 64;
  sink->copy_sql = malloc(size);
  sink->insert_head = malloc(size);
  if (!sink->copy_sql || !sink->insert_head) abort();
  snprintf(sink->copy_sql, size, "COPY %s %s FROM STDIN", target.data, list.data);
  snprintf(sink->insert_head, size, "INSERT INTO %s %s VALUES ", target.data, list.data);
  sink->target = target.data;
  sink->insert_tail = tail.data;
  sl__pg_buf_free(&list);
  return SL_OK;

bad_name:
  st = sl_error_set(err, SL_CONFIG, "table or column names: not valid UTF-8 text");
  sl__pg_buf_free(&target);
  sl__pg_buf_free(&list);
  sl__pg_buf_free(&tail);
  return st;
}

/* The text of a multi-row INSERT for `rows` rows (cached: full chunks share one). */
static const char *insert_sql(postgres_sink *sink, size_t rows) {
  if (sink->insert_sql_rows == rows && sink->insert_sql.len) return sink->insert_sql.data;
  sl_pg_buf *sql = &sink->insert_sql;
  sql->len = 0;
  sl__pg_buf_append(sql, sink->insert_head, strlen(sink->insert_head));
  size_t param = 1;
  char number[24];
  for (size_t r = 0; r < rows; r++) {
    sl__pg_buf_append(sql, r ? ",(" : "(", r ? 2 : 1);
    for (size_t c = 0; c < sink->column_count; c++) {
      int len = snprintf(number, sizeof number, "%s$%zu", c ? "," : "", param++);
      sl__pg_buf_append(sql, number, (size_t)len);
    }
    sl__pg_buf_append(sql, ")", 1);
  }
  append_text(sql, sink->insert_tail);
  terminate(sql);
  sink->insert_sql_rows = rows;
  return sql->data;
}

static const char *relkind_name(char kind) {
  switch (kind) {
  case 'S':
    return "a sequence";
  case 'i':
  case 'I':
    return "an index";
  case 'm':
    return "a materialized view";
  case 'c':
    return "a composite type";
  case 't':
    return "a TOAST table";
  default:
    return "not a table";
  }
}

/* One row per column of the table (none when it has no columns, still one row). */
static const char catalog_sql[] =
    "SELECT c.relkind::text, "
    "has_table_privilege(c.oid, 'INSERT') OR has_any_column_privilege(c.oid, 'INSERT'), "
    "a.attname::text, COALESCE(NULLIF(t.typbasetype, 0), t.oid)::int8, "
    "a.attgenerated::text, a.attidentity::text, current_user::text "
    "FROM pg_class c "
    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE c.oid = to_regclass($1) ORDER BY a.attnum";

/* The row of column `name`, or -1. */
static int find_column(const PGresult *res, const char *name) {
  for (int r = 0; r < PQntuples(res); r++)
    if (!PQgetisnull(res, r, 2) && !strcmp(PQgetvalue(res, r, 2), name)) return r;
  return -1;
}

/* "a, b, c" (the table's columns) into buf. */
static void list_columns(const PGresult *res, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  for (int r = 0; r < PQntuples(res) && n + 1 < size; r++) {
    if (PQgetisnull(res, r, 2)) continue;
    int len = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", PQgetvalue(res, r, 2));
    if (len < 0) break;
    n += (size_t)len;
  }
}

static bool has_upper(const char *text) {
  for (; *text; text++)
    if (isupper((unsigned char)*text)) return true;
  return false;
}

/* Checks the table's columns against `columns:` and on_conflict, and learns each
 * column's type. SL_CONFIG says what is wrong. */
static sl_status check_columns(postgres_sink *sink, const PGresult *res, sl_error *err) {
  const char *table = sink->config->table;
  char names[600];
  for (size_t c = 0; c < sink->column_count; c++) {
    sl_pg_column *column = &sink->columns[c];
    int r = find_column(res, column->name);
    if (r < 0) {
      list_columns(res, names, sizeof names);
      return sl_error_set(err, SL_CONFIG,
                          "columns: table \"%s\" has no column \"%s\"%s (its columns: %s)", table,
                          column->name, has_upper(column->name) ? "; names are case-sensitive" : "",
                          names[0] ? names : "none");
    }
    if (PQgetvalue(res, r, 4)[0])
      return sl_error_set(err, SL_CONFIG,
                          "columns: column \"%s\" of table \"%s\" is generated; the server "
                          "computes it, so leave it out of columns",
                          column->name, table);
    if (PQgetvalue(res, r, 5)[0] == 'a')
      return sl_error_set(err, SL_CONFIG,
                          "columns: column \"%s\" of table \"%s\" is GENERATED ALWAYS AS "
                          "IDENTITY and cannot be written; leave it out of columns",
                          column->name, table);
    long long type = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    column->form = type == BYTEA_OID                       ? SL_PG_BYTEA
                   : type == JSON_OID || type == JSONB_OID ? SL_PG_JSON
                                                           : SL_PG_TEXT;
  }
  for (size_t k = 0; k < sink->conflict_count; k++)
    if (find_column(res, sink->conflict[k]) < 0) {
      list_columns(res, names, sizeof names);
      return sl_error_set(err, SL_CONFIG,
                          "on_conflict: table \"%s\" has no column \"%s\" (its columns: %s)", table,
                          sink->conflict[k], names[0] ? names : "none");
    }
  return SL_OK;
}

/* The server accepts the INSERT (on_conflict has a matching unique index, a view can be
 * inserted into): EXPLAIN plans it, which finds both, without running it. */
static sl_status check_insert(postgres_sink *sink, sl_error *err) {
  sl_pg_buf sql = {0};
  append_text(&sql, "EXPLAIN ");
  append_text(&sql, insert_sql(sink, 1));
  terminate(&sql);
  const char **nulls = calloc(sink->column_count, sizeof *nulls);
  if (!nulls) abort();
  PGresult *res = NULL;
  sl_status st = sl__pg_exec(&sink->pg, sql.data, (int)sink->column_count, nulls, &res, err);
  free(nulls);
  sl__pg_buf_free(&sql);
  if (st == SL_IO) {
    char message[512];
    sl__pg_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), message, sizeof message);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (sqlstate && !strcmp(sqlstate, "42P10")) {
      char key[512] = "";
      for (size_t k = 0, used = 0; k < sink->conflict_count && used < sizeof key; k++)
        used += (size_t)snprintf(key + used, sizeof key - used, "%s%s", k ? ", " : "",
                                 sink->conflict[k]);
      st = sl_error_set(err, SL_CONFIG,
                        "on_conflict: table \"%s\" has no unique index or constraint on exactly "
                        "(%s), which ON CONFLICT needs (%s)",
                        sink->config->table, key, message);
    } else {
      st = sl_error_set(err, SL_CONFIG, "table \"%s\": the server refuses the INSERT: %s",
                        sink->config->table, message);
    }
  }
  PQclear(res);
  return st;
}

/*
 * Reads the table from the catalog on the current connection: its kind, the right to
 * insert, its columns and their types. SL_CONFIG names what is wrong; SL_AGAIN and
 * SL_CLOSED as for any statement.
 */
static sl_status read_table(postgres_sink *sink, sl_error *err) {
  const char *table = sink->config->table;
  const char *params[1] = {sink->target};
  PGresult *res = NULL;
  sl_status st = sl__pg_exec(&sink->pg, catalog_sql, 1, params, &res, err);
  if (st == SL_IO) {
    char message[512];
    sl__pg_one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), message, sizeof message);
    st = sl_error_set(err, SL_CONFIG, "table \"%s\": reading it from the catalog failed: %s", table,
                      message);
  }
  if (st != SL_OK) goto done;
  if (PQntuples(res) == 0) {
    st = sl_error_set(err, SL_CONFIG,
                      "table \"%s\" does not exist in database %s%s%s (create it first; the "
                      "sink does not create tables)",
                      table, sink->shown, sink->schema ? "" : " (looked up along the search_path)",
                      has_upper(table) ? "; names are case-sensitive" : "");
    goto done;
  }
  char kind = PQgetvalue(res, 0, 0)[0];
  free(sink->user);
  sink->user = copy_text(PQgetvalue(res, 0, 6));
  if (!strchr("rpvf", kind)) {
    st = sl_error_set(err, SL_CONFIG, "table \"%s\" is %s; the sink inserts into tables and views",
                      table, relkind_name(kind));
    goto done;
  }
  if (PQgetvalue(res, 0, 1)[0] != 't') {
    st = sl_error_set(err, SL_CONFIG,
                      "table \"%s\": user \"%s\" may not insert into it (GRANT INSERT ON %s TO "
                      "%s)",
                      table, sink->user, table, sink->user);
    goto done;
  }
  if ((st = check_columns(sink, res, err)) != SL_OK) goto done;
  sink->use_insert = sink->conflict_count > 0 || kind == 'v';
  if (sink->use_insert) st = check_insert(sink, err);

done:
  PQclear(res);
  return st;
}

/* ---- writing a batch --------------------------------------------------------------- */

/* An event that could not become a row (pg_rows.c said which and why). */
static sl_status unrowable(postgres_sink *sink, const sl_event_list *batch, sl_error *err) {
  char reason[sizeof err->message];
  snprintf(reason, sizeof reason, "%s", err->message);
  return sl_error_set(err, SL_IO,
                      "postgres sink: table \"%s\": %s; none of the batch's %zu events were "
                      "written",
                      sink->config->table, reason, batch->count);
}

/* One COPY: the whole batch, one statement, one transaction. */
static sl_status copy_batch(postgres_sink *sink, const sl_event_list *batch, sl_error *err) {
  sink->data.len = 0;
  sl_status st =
      sl__pg_rows_copy(sink->columns, sink->column_count, batch, 0, batch->count, &sink->data, err);
  if (st != SL_OK) return unrowable(sink, batch, err);
  PGresult *res = NULL;
  st = sl__pg_copy(&sink->pg, sink->copy_sql, sink->data.data, sink->data.len, &res, err);
  if (st == SL_IO) st = refused(sink, res, 0, batch->count, err);
  PQclear(res);
  return st;
}

/* Sends ROLLBACK after a refused statement; if even that fails, drops the connection
 * (the server then rolls back by itself). */
static void roll_back(postgres_sink *sink) {
  sl_error ignored;
  if (sink->pg.conn && sl__pg_exec(&sink->pg, "ROLLBACK", 0, NULL, NULL, &ignored) != SL_OK)
    sl__pg_conn_close(&sink->pg);
}

/* Multi-row INSERTs; more than one statement runs inside BEGIN ... COMMIT. */
static sl_status insert_batch(postgres_sink *sink, const sl_event_list *batch, sl_error *err) {
  size_t columns = sink->column_count, count = batch->count;
  if (sink->params_cap < count * columns) {
    free(sink->offsets);
    free(sink->params);
    sink->params_cap = count * columns;
    sink->offsets = malloc(sink->params_cap * sizeof *sink->offsets);
    sink->params = malloc(sink->params_cap * sizeof *sink->params);
    if (!sink->offsets || !sink->params) abort();
  }
  sink->data.len = 0;
  sl_status st =
      sl__pg_rows_params(sink->columns, columns, batch, 0, count, &sink->data, sink->offsets, err);
  if (st != SL_OK) return unrowable(sink, batch, err);
  for (size_t i = 0; i < count * columns; i++)
    sink->params[i] = sink->offsets[i] == SIZE_MAX ? NULL : sink->data.data + sink->offsets[i];

  bool transaction = count > sink->rows_per_insert;
  if (transaction && (st = sl__pg_exec(&sink->pg, "BEGIN", 0, NULL, NULL, err)) != SL_OK) return st;
  for (size_t first = 0; first < count && st == SL_OK; first += sink->rows_per_insert) {
    size_t rows = count - first < sink->rows_per_insert ? count - first : sink->rows_per_insert;
    PGresult *res = NULL;
    st = sl__pg_exec(&sink->pg, insert_sql(sink, rows), (int)(rows * columns),
                     sink->params + first * columns, &res, err);
    if (st == SL_IO) st = refused(sink, res, first, count, err);
    PQclear(res);
  }
  if (transaction && st == SL_OK) {
    PGresult *res = NULL;
    st = sl__pg_exec(&sink->pg, "COMMIT", 0, NULL, &res, err);
    if (st == SL_IO) st = refused(sink, res, 0, count, err); /* a deferred constraint */
    PQclear(res);
  } else if (transaction && st == SL_IO) {
    roll_back(sink);
  }
  return st;
}

/* One attempt: connect and read the table if needed, then the batch's statement(s). */
static sl_status write_once(postgres_sink *sink, const sl_event_list *batch, sl_error *err) {
  sl_status st;
  if (!sink->pg.conn) {
    sink->ready = false;
    st = sl__pg_connect(&sink->pg, sink->keys, sink->values, sink->config->connect_timeout, err);
    if (st != SL_OK) {
      char reason[sizeof err->message];
      snprintf(reason, sizeof reason, "%s", err->message);
      return sl_error_set(err, st, "cannot connect: %s", reason);
    }
  }
  if (!sink->ready) {
    st = read_table(sink, err);
    if (st == SL_CONFIG) {
      char reason[sizeof err->message];
      snprintf(reason, sizeof reason, "%s", err->message);
      return sl_error_set(err, SL_IO,
                          "postgres sink: %s; none of the batch's %zu events were "
                          "written",
                          reason, batch->count);
    }
    if (st != SL_OK) return st;
    sink->ready = true;
  }
  return sink->use_insert ? insert_batch(sink, batch, err) : copy_batch(sink, batch, err);
}

/* ---- write ------------------------------------------------------------------------- */

/* Waits `ms` unless stop comes first; false when it did. */
static bool pause_unless_stopped(postgres_sink *sink, uint64_t ms) {
  uint64_t deadline = now_ms() + ms;
  for (;;) {
    if (atomic_load(&sink->pg.stopped)) return false;
    uint64_t now = now_ms();
    if (now >= deadline) return true;
    struct pollfd wake = {.fd = sink->pg.wake_fd, .events = POLLIN};
    uint64_t left = deadline - now;
    poll(&wake, 1, left > 60000 ? 60000 : (int)left);
  }
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  postgres_sink *sink = state;
  const postgres_sink_config *cfg = sink->config;
  if (batch->count == 0) return SL_OK;
  uint64_t delay = cfg->backoff;
  for (unsigned attempt = 1;; attempt++) {
    sl_status st = write_once(sink, batch, err);
    if (st == SL_OK) {
      if (attempt > 1)
        sl_node_log(sink->node, SL_LOG_INFO,
                    "postgres sink: %s: the batch of %zu events was written at attempt %u",
                    sink->shown, batch->count, attempt);
      return SL_OK;
    }
    if (st == SL_AGAIN) {
      log_retry(sink, err->message, batch->count, attempt, delay);
      if (pause_unless_stopped(sink, delay)) {
        delay = delay > cfg->max_backoff / 2 ? cfg->max_backoff : delay * 2;
        continue;
      }
      st = SL_CLOSED;
    }
    if (st == SL_CLOSED) {
      char reason[sizeof err->message];
      snprintf(reason, sizeof reason, "%s", err->message);
      return sl_error_set(err, SL_CLOSED,
                          "postgres sink: %s: stopped after %u attempts (last: %s); the batch "
                          "of %zu events may not have been written",
                          sink->shown, attempt, reason, batch->count);
    }
    return st;
  }
}

/* ---- init / destroy ---------------------------------------------------------------- */

/* Makes a write waiting on the server or between retries return SL_CLOSED soon. */
static void stop(void *state) {
  postgres_sink *sink = state;
  sl__pg_conn_stop(&sink->pg);
}

static void destroy(void *state) {
  postgres_sink *sink = state;
  if (!sink) return;
  sl__pg_conn_destroy(&sink->pg);
  sl__pg_columns_free(sink->columns, sink->column_count);
  free(sink->schema);
  free(sink->relname);
  free(sink->target);
  free(sink->copy_sql);
  free(sink->insert_head);
  free(sink->insert_tail);
  free(sink->user);
  free(sink->shown);
  free(sink->offsets);
  free(sink->params);
  sl__pg_buf_free(&sink->insert_sql);
  sl__pg_buf_free(&sink->data);
  free(sink);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  postgres_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = config;
  sink->pg.wake_fd = -1;
  sl_status st = check_settings(sink, err);
  if (st != SL_OK) goto fail;
  if ((st = sl__pg_conn_init(&sink->pg, sink->config->timeout, err)) != SL_OK) goto fail;
  sink->pg.on_notice = on_notice;
  sink->pg.notice_user = sink;

  st = sl__pg_connect(&sink->pg, sink->keys, sink->values, sink->config->connect_timeout, err);
  if (st != SL_OK) {
    char reason[sizeof err->message];
    snprintf(reason, sizeof reason, "%s", err->message);
    st = sl_error_set(err, SL_IO, "postgres sink: cannot connect to %s to check table \"%s\": %s",
                      sink->shown, sink->config->table, reason);
    goto fail;
  }
  if ((st = build_sql(sink, err)) != SL_OK) goto fail;
  st = read_table(sink, err);
  if (st != SL_OK) {
    char reason[sizeof err->message];
    snprintf(reason, sizeof reason, "%s", err->message);
    st = sl_error_set(err, st == SL_AGAIN ? SL_IO : st, "postgres sink: %s", reason);
    goto fail;
  }
  sink->ready = true;
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

/* ---- the connector table ----------------------------------------------------------- */

static const sl_conf_field fields[] = {
    {"url", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(postgres_sink_config, url),
     "The server and database, as a libpq URI or key=value string, e.g. "
     "postgresql://app@db.example:5432/events.",
     NULL},
    {"username", SL_CONF_STRING, 0, NULL, offsetof(postgres_sink_config, username),
     "The user to log in as; replaces the URL's.", NULL},
    {"password", SL_CONF_STRING, 0, NULL, offsetof(postgres_sink_config, password),
     "The password, e.g. ${secret:pg_password}; replaces the URL's.", NULL},
    {"table", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(postgres_sink_config, table),
     "The table to insert into, NAME or SCHEMA.NAME, case-sensitive; it must exist.", NULL},
    {"columns", SL_CONF_MAP, SL_CONF_REQUIRED, NULL, offsetof(postgres_sink_config, columns),
     "Column name -> its value: payload, payload.FIELD.SUBFIELD (a JSON field) or meta.KEY.", NULL},
    {"on_conflict", SL_CONF_LIST, 0, NULL, offsetof(postgres_sink_config, on_conflict),
     "Columns of a unique key, e.g. [id]; a row whose key is already there is skipped "
     "(ON CONFLICT DO NOTHING), so a replayed batch adds nothing.",
     NULL},
    {"sslmode", SL_CONF_ENUM, 0, NULL, offsetof(postgres_sink_config, sslmode),
     "libpq's TLS mode; without it, the URL's, else prefer (or verify-full with tls: true).",
     sslmode_choices},
    {"tls", SL_CONF_BOOL, 0, "false", offsetof(postgres_sink_config, tls),
     "Require TLS and verify the server's certificate and name (sslmode verify-full).", NULL},
    {"tls_ca", SL_CONF_PATH, 0, NULL, offsetof(postgres_sink_config, tls_ca),
     "CA certificates to verify the server with (libpq sslrootcert).", NULL},
    {"tls_cert", SL_CONF_PATH, 0, NULL, offsetof(postgres_sink_config, tls_cert),
     "Client certificate to log in with (libpq sslcert).", NULL},
    {"tls_key", SL_CONF_PATH, 0, NULL, offsetof(postgres_sink_config, tls_key),
     "The client certificate's private key (libpq sslkey).", NULL},
    {"connect_timeout", SL_CONF_DURATION, 0, "10s", offsetof(postgres_sink_config, connect_timeout),
     "Time allowed to connect and log in.", NULL},
    {"timeout", SL_CONF_DURATION, 0, "30s", offsetof(postgres_sink_config, timeout),
     "Time allowed for each step of a batch (sending it, each answer) before the connection "
     "is dropped and the batch run again.",
     NULL},
    {"backoff", SL_CONF_DURATION, 0, "100ms", offsetof(postgres_sink_config, backoff),
     "The first delay before running a batch again after a lost connection; doubles each time.",
     NULL},
    {"max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(postgres_sink_config, max_backoff),
     "The longest delay between attempts.", NULL},
    {NULL},
};

const sl_connector sl_postgres_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "postgres",
    .kind = SL_NODE_SINK,
    .summary = "Inserts events into a PostgreSQL table, one transaction per batch; retries lost "
               "connections.",
    .fields = fields,
    .config_size = sizeof(postgres_sink_config),
    .init = init,
    .stop = stop,
    .write = write_batch,
    .destroy = destroy,
};
