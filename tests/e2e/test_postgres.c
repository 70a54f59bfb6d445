/*
 * The `postgres` sink as a user runs it: `sluice run PIPELINE.yaml` (stdin or file
 * source -> postgres) against a real PostgreSQL 15 (tests/support/servers.h) that this
 * test starts, prepares and inspects with libpq.
 *
 *   mapping        payload fields (nested, arrays), the whole payload, metadata, into
 *                  text, int, jsonb, timestamptz, numeric, boolean and bytea columns;
 *                  missing fields are NULL
 *   transactions   a bad row fails its own batch only (COPY, and a multi-statement
 *                  INSERT), named by event and column; a NUL byte in text likewise
 *   on_conflict    a replayed input adds nothing
 *   startup        a missing table, column or unique key, a generated column, a bad
 *                  source and an unreachable server stop the pipeline with a message
 *   injection      SQL in values, table and column names is data or a missing name
 *   credentials    a password from a secret; a wrong one is refused without showing it
 *   faults         PostgreSQL killed (SIGKILL) and restarted while events flow: nothing
 *                  missing (numbered events, seqcheck); a sink retrying against a dead
 *                  server still lets SIGTERM end the pipeline
 *
 * Each test has its own server, folder and pipeline name.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/seqcheck.h"
#include "../support/servers.h"
#include "connectors/postgres/postgres_sink.h"

static sl_test_server server;
static char folder[64];
static pid_t child = -1; /* a running `sluice run`, killed by the fini */
static PGconn *db;       /* the test's own connection */
static char *log_copy;   /* freed by the fini, so a failed assertion leaks nothing */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void setup(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-e2e-pg-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  cr_assert(sl_test_server_start(&server, SL_TEST_POSTGRES), "postgres did not start");
}

static void teardown(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  if (db) PQfinish(db);
  db = NULL;
  sl_test_server_stop(&server);
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(log_copy);
  log_copy = NULL;
  unsetenv("PG_TEST_PASSWORD");
}

TestSuite(postgres, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* FOLDER/name, in a buffer of 128 bytes. */
static const char *in_folder(char *buf, const char *name) {
  snprintf(buf, 128, "%s/%s", folder, name);
  return buf;
}

/* Writes FOLDER/name. */
__attribute__((format(printf, 2, 3))) static void write_file(const char *name, const char *fmt,
                                                             ...) {
  char path[128];
  FILE *f = fopen(in_folder(path, name), "w");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
}

static void append_file(const char *name, const char *text, size_t len) {
  char path[128];
  int fd = open(in_folder(path, name), O_WRONLY | O_CREAT | O_APPEND, 0644);
  cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
  cr_assert_eq(write(fd, text, len), (ssize_t)len);
  close(fd);
}

/* FOLDER/name's text (the last one read is freed by the next call or the fini). */
static const char *read_file(const char *name) {
  char path[128];
  free(log_copy);
  log_copy = NULL;
  FILE *f = fopen(in_folder(path, name), "r");
  if (!f) return "";
  size_t cap = 4096, len = 0, n;
  log_copy = malloc(cap + 1);
  while ((n = fread(log_copy + len, 1, cap - len, f)) > 0)
    if ((len += n) == cap) log_copy = realloc(log_copy, (cap *= 2) + 1);
  fclose(f);
  log_copy[len] = '\0';
  return log_copy;
}

/* Starts `sluice run p.yaml` in the folder: stdin from FOLDER/`input` (or /dev/null),
 * stdout and stderr to FOLDER/`log`. */
static pid_t start_sluice(const char *input, const char *log) {
  child = e2e_run_child(folder, "p.yaml", input, log);
  return child;
}

static int wait_sluice(pid_t pid) {
  int code = e2e_wait(pid, NULL);
  child = -1;
  return code;
}

/* Runs the pipeline to its end; its exit code. The log is in FOLDER/`log`. */
static int run_sluice(const char *input, const char *log) {
  return wait_sluice(start_sluice(input, log));
}

/*
 * Writes FOLDER/p.yaml: `source` (its YAML lines, id `in`), then a postgres sink `out`
 * reading it, with this server's url, `table` and the `sink_extra` lines (columns...).
 */
static void write_pipeline(const char *name, const char *top, const char *source, const char *table,
                           const char *sink_extra) {
  write_file("p.yaml",
             "name: pg-%s-%d\n%s"
             "nodes:\n"
             "  - id: in\n%s"
             "  - id: out\n"
             "    type: postgres\n"
             "    inputs: [in]\n"
             "    url: %s\n"
             "    table: %s\n%s",
             name, (int)getpid(), top, source, server.url, table, sink_extra);
}

static const char stdin_source[] = "    type: stdin\n";

/* ---- the test's database connection ---------------------------------------------- */

static void connect_db(void) {
  if (db) PQfinish(db);
  db = PQconnectdb(server.url);
  cr_assert_eq(PQstatus(db), CONNECTION_OK, "cannot connect to %s: %s", server.url,
               PQerrorMessage(db));
}

/* Runs SQL text (trusted: the test's own); fails the test on an error. */
static void sql(const char *text) {
  if (!db) connect_db();
  PGresult *res = PQexec(db, text);
  ExecStatusType status = PQresultStatus(res);
  cr_assert(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK, "%s: %s", text,
            PQerrorMessage(db));
  PQclear(res);
}

/* The first value of a one-column query as text, "NULL" for NULL, "" for no row. Static
 * buffer, valid until the next call. */
static const char *value_of(const char *query) {
  static char value[4096];
  if (!db) connect_db();
  PGresult *res = PQexec(db, query);
  cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", query, PQerrorMessage(db));
  if (PQntuples(res) == 0)
    value[0] = '\0';
  else if (PQgetisnull(res, 0, 0))
    snprintf(value, sizeof value, "NULL");
  else
    snprintf(value, sizeof value, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  return value;
}

static long long count_of(const char *query) { return atoll(value_of(query)); }

/* Polls until `query` (a count) reaches `at_least`; false after `timeout_ms`. Survives
 * the server being down (the count is then -1). */
static bool wait_count(const char *query, long long at_least, long timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    PGconn *probe = PQconnectdb(server.url);
    long long n = -1;
    if (PQstatus(probe) == CONNECTION_OK) {
      PGresult *res = PQexec(probe, query);
      if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = atoll(PQgetvalue(res, 0, 0));
      PQclear(res);
    }
    PQfinish(probe);
    if (n >= at_least) return true;
    if (now_ms() >= deadline) return false;
    sleep_ms(20);
  }
}

/* Polls until FOLDER/`log` contains `text`; false after `timeout_ms`. */
static bool wait_log(const char *log, const char *text, long timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (!strstr(read_file(log), text)) {
    if (now_ms() >= deadline) return false;
    sleep_ms(20);
  }
  return true;
}

/* ---- mapping --------------------------------------------------------------------- */

Test(postgres, payload_fields_and_metadata_land_in_typed_columns) {
  const char *examples = getenv("SLUICE_EXAMPLES");
  cr_assert(examples, "SLUICE_EXAMPLES is not set: run the tests with `make test`");
  sql("CREATE TABLE events (id bigserial PRIMARY KEY, n int, name text, doc jsonb, "
      "ts timestamptz, price numeric, ok boolean, first_tag text, part text, raw bytea, "
      "whole jsonb)");
  /* split makes two events of the first line, with metadata part=0 and part=1. */
  write_file("p.yaml",
             "name: pg-types-%d\n"
             "nodes:\n"
             "  - id: in\n"
             "    type: stdin\n"
             "  - id: split\n"
             "    type: wasm\n"
             "    module: %s/split.wasm\n"
             "    config: {separator: '|'}\n"
             "    inputs: [in]\n"
             "  - id: out\n"
             "    type: postgres\n"
             "    inputs: [split]\n"
             "    url: %s\n"
             "    table: events\n"
             "    columns:\n"
             "      n: payload.n\n"
             "      name: payload.user.name\n"
             "      doc: payload.doc\n"
             "      ts: payload.ts\n"
             "      price: payload.price\n"
             "      ok: payload.ok\n"
             "      first_tag: payload.tags.0\n"
             "      part: meta.part\n"
             "      raw: payload\n"
             "      whole: payload\n",
             (int)getpid(), examples, server.url);
  write_file("in.txt",
             "{\"n\":1,\"user\":{\"name\":\"ann\"},\"doc\":{\"a\":0.1,\"tags\":[\"x\",2]},"
             "\"ts\":\"2024-05-01T10:00:00+02:00\",\"price\":12.5,\"ok\":true,"
             "\"tags\":[\"red\",\"blue\"]}"
             "|{\"n\":2,\"user\":{\"name\":\"b\\u00f6b\"},\"doc\":\"just text\","
             "\"ts\":\"2024-05-01 08:00:00Z\",\"ok\":false}\n"
             "{\"n\":3,\"user\":{},\"doc\":null}\n");
  cr_assert_eq(run_sluice("in.txt", "run.log"), 0, "%s", read_file("run.log"));

  cr_assert_eq(count_of("SELECT count(*) FROM events"), 3);
  cr_assert_str_eq(value_of("SELECT name FROM events WHERE n = 1"), "ann");
  cr_assert_str_eq(value_of("SELECT name FROM events WHERE n = 2"), "b\xc3\xb6"
                                                                    "b");
  cr_assert_str_eq(value_of("SELECT name FROM events WHERE n = 3"), "NULL");
  /* A JSON field keeps its JSON: an object, a string stays a JSON string, 0.1 stays 0.1. */
  cr_assert_str_eq(value_of("SELECT doc::text FROM events WHERE n = 1"),
                   "{\"a\": 0.1, \"tags\": [\"x\", 2]}");
  cr_assert_str_eq(value_of("SELECT jsonb_typeof(doc) || ':' || (doc #>> '{}') FROM events "
                            "WHERE n = 2"),
                   "string:just text");
  cr_assert_str_eq(value_of("SELECT doc IS NULL FROM events WHERE n = 3"), "t");
  /* timestamptz parsed from strings with an offset and with Z. */
  cr_assert_str_eq(value_of("SELECT string_agg(to_char(ts AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD HH24:MI:SS'), ',' ORDER BY n) FROM events"),
                   "2024-05-01 08:00:00,2024-05-01 08:00:00");
  cr_assert_str_eq(value_of("SELECT price FROM events WHERE n = 1"), "12.5");
  cr_assert_str_eq(value_of("SELECT string_agg(ok::text, ',' ORDER BY n) FROM events"),
                   "true,false");
  cr_assert_str_eq(value_of("SELECT first_tag FROM events WHERE n = 1"), "red");
  cr_assert_str_eq(value_of("SELECT string_agg(part, ',' ORDER BY n) FROM events"), "0,1,0");
  /* The whole payload: bytes as they were (bytea), and as jsonb. */
  cr_assert_str_eq(value_of("SELECT convert_from(raw, 'UTF8') FROM events WHERE n = 3"),
                   "{\"n\":3,\"user\":{},\"doc\":null}");
  cr_assert_str_eq(value_of("SELECT whole->'user'->>'name' FROM events WHERE n = 1"), "ann");
}

/* ---- transactions ---------------------------------------------------------------- */

Test(postgres, a_bad_row_fails_its_own_batch_and_later_batches_go_on) {
  /* COPY: batches of 3; line 5 is not an integer, so the batch 4..6 fails whole. */
  sql("CREATE TABLE nums (n int)");
  write_pipeline("copy", "batch_size: 3\n", "    type: file\n    path: in.txt\n", "nums",
                 "    columns: {n: payload}\n");
  write_file("in.txt", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n");
  cr_assert_eq(run_sluice(NULL, "copy.log"), 1, "%s", read_file("copy.log"));
  cr_assert_str_eq(value_of("SELECT string_agg(n::text, ',' ORDER BY n) FROM nums"), "1,2,3,7,8,9");
  const char *log = read_file("copy.log");
  cr_assert(strstr(log, "3 events not delivered") &&
                strstr(log, "event 2, column \"n\" (payload): invalid input syntax for type "
                            "integer: \"five\"") &&
                strstr(log, "none of the batch's 3 events were written"),
            "%s", log);

  /* INSERT (on_conflict) into 41 columns: 65535 parameters hold 1598 rows, so a batch of
   * 5000 takes 4 statements in one transaction. The bad row is event 4000 of the second
   * batch (in its third statement): the statements before it are rolled back too. */
  sql("CREATE TABLE wide (n int PRIMARY KEY)");
  char columns[4096] = "    on_conflict: n\n    columns:\n      n: payload\n";
  for (int c = 1; c <= 40; c++) {
    char ddl[64], line[64];
    snprintf(ddl, sizeof ddl, "ALTER TABLE wide ADD COLUMN c%d text", c);
    sql(ddl);
    snprintf(line, sizeof line, "      c%d: payload\n", c);
    strcat(columns, line);
  }
  write_pipeline("insert", "batch_size: 5000\n", "    type: file\n    path: wide.txt\n", "wide",
                 columns);
  char *lines = malloc(10000 * 8);
  size_t len = 0;
  for (int n = 1; n <= 10000; n++)
    len += (size_t)sprintf(lines + len, n == 9000 ? "nine\n" : "%d\n", n);
  append_file("wide.txt", lines, len);
  free(lines);
  cr_assert_eq(run_sluice(NULL, "insert.log"), 1, "%s", read_file("insert.log"));
  cr_assert_str_eq(value_of("SELECT count(*) || ' ' || min(n) || ' ' || max(n) FROM wide"),
                   "5000 1 5000");
  log = read_file("insert.log");
  cr_assert(strstr(log, "5000 events not delivered") && strstr(log, "event 4000, column \"") &&
                strstr(log, "\"nine\""),
            "%s", log);

  /* An event that cannot become a row (a NUL byte in text) fails its batch the same way. */
  write_pipeline("nul", "", stdin_source, "nums", "    columns: {n: payload.n}\n");
  write_file("nul.txt", "{\"n\":10}\n{\"n\":\"1\\u00002\"}\n");
  cr_assert_eq(run_sluice("nul.txt", "nul.log"), 1, "%s", read_file("nul.log"));
  log = read_file("nul.log");
  cr_assert(strstr(log, "event 2: column \"n\" (payload.n): the value contains a NUL byte"), "%s",
            log);
  cr_assert_eq(count_of("SELECT count(*) FROM nums WHERE n = 10"), 0);

  /* Text that is not JSON for a jsonb column: the server names it inside its own context
   * ("JSON data, line 1: ..."), the event is still the right one. */
  sql("CREATE TABLE docs (doc jsonb)");
  write_pipeline("json", "", stdin_source, "docs", "    columns: {doc: payload}\n");
  write_file("json.txt", "{\"ok\":1}\n{not json\n");
  cr_assert_eq(run_sluice("json.txt", "json.log"), 1, "%s", read_file("json.log"));
  log = read_file("json.log");
  cr_assert(strstr(log, "event 2, column \"doc\" (payload): invalid input syntax for type json"),
            "%s", log);
  cr_assert_eq(count_of("SELECT count(*) FROM docs"), 0);
}

Test(postgres, on_conflict_makes_a_replay_add_nothing) {
  sql("CREATE TABLE users (tenant text, id int, name text, PRIMARY KEY (tenant, id))");
  write_pipeline("conflict", "", stdin_source, "users",
                 "    on_conflict: [tenant, id]\n"
                 "    columns: {tenant: payload.t, id: payload.id, name: payload.name}\n");
  /* The third event repeats the first's key within the same batch. */
  write_file("in.txt", "{\"t\":\"a\",\"id\":1,\"name\":\"first\"}\n"
                       "{\"t\":\"b\",\"id\":1,\"name\":\"other tenant\"}\n"
                       "{\"t\":\"a\",\"id\":1,\"name\":\"again\"}\n");
  cr_assert_eq(run_sluice("in.txt", "run1.log"), 0, "%s", read_file("run1.log"));
  cr_assert_eq(run_sluice("in.txt", "run2.log"), 0, "%s", read_file("run2.log"));
  cr_assert_eq(count_of("SELECT count(*) FROM users"), 2);
  cr_assert_str_eq(value_of("SELECT name FROM users WHERE tenant = 'a' AND id = 1"), "first");
}

/* ---- startup --------------------------------------------------------------------- */

/* Runs the pipeline expecting it to refuse to start (exit 2) with `expected` in its log. */
static void expect_refusal(const char *table, const char *sink_extra, const char *expected) {
  write_pipeline("refuse", "", stdin_source, table, sink_extra);
  write_file("in.txt", "{\"n\":1}\n");
  int code = run_sluice("in.txt", "refuse.log");
  const char *log = read_file("refuse.log");
  cr_assert_eq(code, 2, "table %s: exit %d: %s", table, code, log);
  cr_assert(strstr(log, expected), "expected \"%s\" in: %s", expected, log);
}

Test(postgres, startup_refuses_what_cannot_work_naming_it) {
  sql("CREATE TABLE t (n int, total int GENERATED ALWAYS AS (n * 2) STORED, "
      "Mixed text, \"Quoted\" text)");
  expect_refusal("missing", "    columns: {n: payload.n}\n", "table \"missing\" does not exist");
  expect_refusal("t", "    columns: {n: payload.n, nope: payload.x}\n",
                 "table \"t\" has no column \"nope\" (its columns: n, total, mixed, Quoted)");
  expect_refusal("t", "    columns: {Mixed: payload.x}\n",
                 "has no column \"Mixed\"; names are case-sensitive");
  expect_refusal("t", "    columns: {total: payload.n}\n",
                 "column \"total\" of table \"t\" is "
                 "generated");
  expect_refusal("t", "    on_conflict: n\n    columns: {n: payload.n}\n",
                 "on_conflict: table \"t\" has no unique index or constraint on exactly (n)");
  expect_refusal("t", "    columns: {n: body}\n", "columns: n: 'body' is not a value source");
  expect_refusal("public.t.x", "    columns: {n: payload.n}\n",
                 "table \"public.t.x\" does not exist");
  expect_refusal("t", "    tls: true\n    sslmode: prefer\n    columns: {n: payload.n}\n",
                 "sslmode: 'prefer' does not require TLS, but tls: true does");
  /* The test server speaks no TLS: requiring it is refused with libpq's reason (exit 1). */
  write_pipeline("tls", "", stdin_source, "t", "    tls: true\n    columns: {n: payload.n}\n");
  cr_assert_eq(run_sluice("in.txt", "tls.log"), 1, "%s", read_file("tls.log"));
  cr_assert(strstr(read_file("tls.log"), "server does not support SSL, but SSL was required"), "%s",
            read_file("tls.log"));

  /* Nothing listens: the pipeline does not start rather than fail every batch (exit 1:
   * the settings may be right, the server is not there). */
  int port = sl_test_free_port();
  write_file("p.yaml",
             "name: pg-down-%d\n"
             "nodes:\n"
             "  - id: in\n"
             "    type: stdin\n"
             "  - id: out\n"
             "    type: postgres\n"
             "    inputs: [in]\n"
             "    url: postgresql://sluice@127.0.0.1:%d/sluice\n"
             "    table: t\n"
             "    columns: {n: payload}\n",
             (int)getpid(), port);
  cr_assert_eq(run_sluice(NULL, "down.log"), 1, "%s", read_file("down.log"));
  char expected[160];
  snprintf(expected, sizeof expected, "cannot connect to postgresql://sluice@127.0.0.1:%d/sluice",
           port);
  cr_assert(strstr(read_file("down.log"), expected), "%s", read_file("down.log"));
}

/* ---- injection ------------------------------------------------------------------- */

Test(postgres, sql_in_values_and_names_is_inert) {
  sql("CREATE TABLE victim (x int); INSERT INTO victim VALUES (42)");
  sql("CREATE TABLE notes (id serial, body text, \"we\"\"ird; col\" text)");
  /* Values: quotes and statements, COPY's own escapes and end marker, tabs, newlines. */
  write_pipeline("values", "", stdin_source, "notes",
                 "    columns:\n"
                 "      body: payload.b\n"
                 "      'we\"ird; col': payload.w\n");
  write_file("in.txt", "{\"b\":\"x'); DROP TABLE victim; --\",\"w\":\"\\\\.\"}\n"
                       "{\"b\":\"\\\\N\",\"w\":\"a\\tb\\nc\\\\d\\r\"}\n");
  cr_assert_eq(run_sluice("in.txt", "values.log"), 0, "%s", read_file("values.log"));
  cr_assert_str_eq(value_of("SELECT body FROM notes WHERE id = 1"), "x'); DROP TABLE victim; --");
  cr_assert_str_eq(value_of("SELECT \"we\"\"ird; col\" FROM notes WHERE id = 1"), "\\.");
  cr_assert_str_eq(value_of("SELECT body FROM notes WHERE id = 2"), "\\N");
  cr_assert_str_eq(value_of("SELECT \"we\"\"ird; col\" FROM notes WHERE id = 2"), "a\tb\nc\\d\r");

  /* The same values through INSERT parameters (on_conflict). */
  sql("ALTER TABLE notes ADD PRIMARY KEY (id)");
  write_pipeline("params", "", stdin_source, "notes",
                 "    on_conflict: id\n"
                 "    columns: {id: payload.id, body: payload.b}\n");
  write_file("params.txt", "{\"id\":3,\"b\":\"'); DROP TABLE victim; --\\\\\"}\n");
  cr_assert_eq(run_sluice("params.txt", "params.log"), 0, "%s", read_file("params.log"));
  cr_assert_str_eq(value_of("SELECT body FROM notes WHERE id = 3"), "'); DROP TABLE victim; --\\");

  /* Names: quoted as identifiers, so they name nothing and the pipeline does not start. */
  expect_refusal("'notes; DROP TABLE victim; --'", "    columns: {body: payload.b}\n",
                 "table \"notes; DROP TABLE victim; --\" does not exist");
  expect_refusal("'notes\"; DROP TABLE victim; --'", "    columns: {body: payload.b}\n",
                 "does not exist");
  expect_refusal("notes",
                 "    columns:\n      'body\") VALUES (1); DROP TABLE victim; --': payload.b\n",
                 "has no column \"body\") VALUES (1); DROP TABLE victim; --\"");
  expect_refusal("notes",
                 "    on_conflict: id) DO NOTHING; DROP TABLE victim; --\n"
                 "    columns: {body: payload.b}\n",
                 "on_conflict: table \"notes\" has no column");
  cr_assert_str_eq(value_of("SELECT x FROM victim"), "42");
}

/* ---- credentials ----------------------------------------------------------------- */

Test(postgres, password_from_a_secret_and_a_wrong_one_refused_unseen) {
  /* Password logins for one role, trust for the rest (the test's own connection). */
  char hba[160];
  snprintf(hba, sizeof hba, "%s/data/pg_hba.conf", server.dir);
  FILE *f = fopen(hba, "w");
  cr_assert_not_null(f, "%s: %s", hba, strerror(errno));
  fprintf(f, "host all writer 127.0.0.1/32 scram-sha-256\n"
             "host all all 127.0.0.1/32 trust\n"
             "local all all trust\n");
  fclose(f);
  sql("SELECT pg_reload_conf()");
  sql("CREATE ROLE writer LOGIN PASSWORD 'right horse battery'");
  sql("CREATE TABLE secrets_ok (n int); GRANT INSERT ON secrets_ok TO writer");
  write_pipeline("secret", "secrets:\n  pg: {env: PG_TEST_PASSWORD}\n", stdin_source, "secrets_ok",
                 "    username: writer\n"
                 "    password: ${secret:pg}\n"
                 "    columns: {n: payload}\n");
  write_file("in.txt", "7\n");

  /* pg_reload_conf only signals: wait until password logins are in force. */
  char conninfo[160];
  snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=writer dbname=sluice",
           server.port);
  for (uint64_t deadline = now_ms() + 10000;;) {
    PGconn *probe = PQconnectdb(conninfo);
    bool asks = PQstatus(probe) != CONNECTION_OK;
    PQfinish(probe);
    if (asks) break;
    cr_assert(now_ms() < deadline, "pg_hba.conf was not reloaded");
    sleep_ms(20);
  }

  setenv("PG_TEST_PASSWORD", "wrong stapler", 1);
  cr_assert_eq(run_sluice("in.txt", "wrong.log"), 1, "%s", read_file("wrong.log"));
  const char *log = read_file("wrong.log");
  cr_assert(strstr(log, "password authentication failed for user \"writer\""), "%s", log);
  cr_assert_null(strstr(log, "wrong stapler"), "the password was shown: %s", log);

  setenv("PG_TEST_PASSWORD", "right horse battery", 1);
  cr_assert_eq(run_sluice("in.txt", "right.log"), 0, "%s", read_file("right.log"));
  cr_assert_str_eq(value_of("SELECT n FROM secrets_ok"), "7");
}

/* ---- faults ---------------------------------------------------------------------- */

/* Appends "1\n".."total\n" to FOLDER/seq.txt in steps of 200. Past `hold_at` it waits
 * for `killed`, so events keep coming while the server is down; `written` says how far
 * it got. The pace only spreads the events over time. */
typedef struct appender {
  int total, hold_at;
  atomic_bool killed;
  atomic_int written;
} appender;

static void *append_numbers(void *arg) {
  appender *a = arg;
  char chunk[200 * 8];
  for (int n = 1; n <= a->total;) {
    while (n > a->hold_at && !atomic_load(&a->killed)) sleep_ms(1);
    size_t len = 0;
    for (int i = 0; i < 200 && n <= a->total; i++, n++)
      len += (size_t)sprintf(chunk + len, "%d\n", n);
    append_file("seq.txt", chunk, len);
    atomic_store(&a->written, n - 1);
    sleep_ms(5);
  }
  return NULL;
}

/* Feeds `column` of every row of `table` to a checker of 1..expected. */
static void check_table(const char *table, uint64_t expected, sl_seqcheck *check) {
  sl_seqcheck_init(check, expected);
  char query[128];
  snprintf(query, sizeof query, "SELECT n::text FROM %s ORDER BY id", table);
  connect_db();
  PGresult *res = PQexec(db, query);
  cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", query, PQerrorMessage(db));
  for (int r = 0; r < PQntuples(res); r++)
    sl_seqcheck_add(check, PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0));
  PQclear(res);
}

Test(reliability, postgres_server_killed_and_restarted_mid_stream_loses_nothing, .init = setup,
     .fini = teardown, .timeout = 300) {
  const int total = 20000;
  sql("CREATE TABLE seq (id bigserial PRIMARY KEY, n bigint)");
  sql("CREATE TABLE seq_once (id bigserial, n bigint PRIMARY KEY)");
  /* Two sinks on one source: `seq` takes every copy (duplicates after an unknown
   * commit are allowed, and counted); `seq_once` dedups them with on_conflict. */
  write_file("p.yaml",
             "name: pg-restart-%d\n"
             "batch_size: 100\n"
             "nodes:\n"
             "  - id: in\n"
             "    type: file\n"
             "    path: seq.txt\n"
             "    follow: true\n"
             "    poll_interval: 20ms\n"
             "  - id: out\n"
             "    type: postgres\n"
             "    inputs: [in]\n"
             "    url: %s\n"
             "    table: seq\n"
             "    columns: {n: payload}\n"
             "    max_backoff: 200ms\n"
             "    connect_timeout: 2s\n"
             "  - id: once\n"
             "    type: postgres\n"
             "    inputs: [in]\n"
             "    url: %s\n"
             "    table: seq_once\n"
             "    on_conflict: n\n"
             "    columns: {n: payload}\n"
             "    max_backoff: 200ms\n"
             "    connect_timeout: 2s\n",
             (int)getpid(), server.url, server.url);
  append_file("seq.txt", "", 0);
  pid_t pid = start_sluice(NULL, "run.log");

  appender a = {.total = total, .hold_at = 5000};
  atomic_init(&a.killed, false);
  atomic_init(&a.written, 0);
  pthread_t thread;
  cr_assert_eq(pthread_create(&thread, NULL, append_numbers, &a), 0);
  /* Kill while rows are arriving (at most 5000 appended, 2000 written); restart once 2000
   * more piled up meanwhile. */
  cr_assert(wait_count("SELECT count(*) FROM seq", 2000, 30000), "%s", read_file("run.log"));
  if (db) PQfinish(db);
  db = NULL;
  sl_test_server_kill(&server);
  int at_kill = atomic_load(&a.written);
  atomic_store(&a.killed, true);
  for (uint64_t deadline = now_ms() + 30000; atomic_load(&a.written) < at_kill + 2000; sleep_ms(5))
    cr_assert(now_ms() < deadline, "the appender is stuck");
  cr_assert(wait_log("run.log", "again in", 10000), "no retry while the server was down: %s",
            read_file("run.log"));
  cr_assert(sl_test_server_restart(&server), "postgres did not restart");
  cr_log_info("killed with %d events appended, restarted with %d", at_kill,
              atomic_load(&a.written));
  pthread_join(thread, NULL);

  cr_assert(wait_count("SELECT count(DISTINCT n) FROM seq", total, 60000), "%s",
            read_file("run.log"));
  cr_assert(wait_count("SELECT count(*) FROM seq_once", total, 60000), "%s", read_file("run.log"));
  cr_assert_eq(kill(pid, SIGTERM), 0);
  cr_assert_eq(wait_sluice(pid), 0, "%s", read_file("run.log"));

  sl_seqcheck check;
  char report[256];
  check_table("seq", (uint64_t)total, &check);
  cr_log_info("seq: %s", sl_seqcheck_report(&check, report, sizeof report));
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s", report);
  cr_assert_eq(check.out_of_range + check.unparsable, 0, "%s", report);
  sl_seqcheck_destroy(&check);
  check_table("seq_once", (uint64_t)total, &check);
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s", report);
  cr_assert_eq(check.duplicates, 0, "%s", report);
  sl_seqcheck_destroy(&check);
}

Test(postgres, sigterm_ends_a_pipeline_whose_server_is_gone) {
  sql("CREATE TABLE seq (id bigserial PRIMARY KEY, n bigint)");
  write_pipeline("stop", "drain_timeout: 1s\n",
                 "    type: file\n    path: seq.txt\n    follow: true\n    poll_interval: 20ms\n",
                 "seq", "    columns: {n: payload}\n    max_backoff: 200ms\n");
  append_file("seq.txt", "1\n2\n", 4);
  pid_t pid = start_sluice(NULL, "run.log");
  cr_assert(wait_count("SELECT count(*) FROM seq", 2, 30000), "%s", read_file("run.log"));
  PQfinish(db);
  db = NULL;
  sl_test_server_kill(&server);
  append_file("seq.txt", "3\n", 2);
  cr_assert(wait_log("run.log", "again in", 10000), "%s", read_file("run.log"));

  uint64_t start = now_ms();
  cr_assert_eq(kill(pid, SIGTERM), 0);
  int code = wait_sluice(pid);
  uint64_t took = now_ms() - start;
  const char *log = read_file("run.log");
  /* The event never written is reported in flight, not claimed delivered. */
  cr_assert_eq(code, 1, "%s", log);
  cr_assert_lt(took, 10000, "took %llu ms: %s", (unsigned long long)took, log);
  cr_assert(strstr(log, "gave up draining"), "%s", log);
}

/* ---- the sink driven directly: stop and timeouts ---------------------------------- */

static char *direct_keys[] = {"n"}, *direct_values[] = {"payload"};

static postgres_sink_config direct_config(const char *url) {
  return (postgres_sink_config){.url = (char *)url,
                                .table = "direct",
                                .columns = {direct_keys, direct_values, 1},
                                .connect_timeout = 300,
                                .timeout = 300,
                                .backoff = 50,
                                .max_backoff = 100};
}

static const sl_node_ctx direct_node = {"direct", "out", "/tmp", 1, NULL};

/* A batch of the numbers from..to as payloads. The caller destroys it. */
static sl_event_list numbers(int from, int to) {
  sl_event_list batch;
  sl_event_list_init(&batch);
  for (int n = from; n <= to; n++) {
    char text[16];
    int len = snprintf(text, sizeof text, "%d", n);
    uint8_t *payload;
    sl_meta *meta;
    cr_assert_eq(sl_event_list_push(&batch, (size_t)len, 0, &payload, &meta), SL_OK);
    memcpy(payload, text, (size_t)len);
  }
  return batch;
}

typedef struct direct_write {
  void *sink;
  const sl_event_list *batch;
  atomic_bool started, done;
  sl_status status;
  sl_error err;
} direct_write;

static void *run_write(void *arg) {
  direct_write *w = arg;
  atomic_store(&w->started, true);
  w->status = sl_postgres_sink.write(w->sink, w->batch, &w->err);
  atomic_store(&w->done, true);
  return NULL;
}

Test(postgres, stop_ends_a_retrying_write_and_a_silent_server_times_out) {
  sql("CREATE TABLE direct (n int)");
  sl_error err = {{0}};
  void *sink = NULL;

  /* A listener that never answers: connecting gives up after connect_timeout. */
  int silent = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t addr_len = sizeof addr;
  cr_assert_eq(bind(silent, (struct sockaddr *)&addr, sizeof addr), 0);
  cr_assert_eq(listen(silent, 8), 0);
  cr_assert_eq(getsockname(silent, (struct sockaddr *)&addr, &addr_len), 0);
  char silent_url[96];
  snprintf(silent_url, sizeof silent_url, "postgresql://sluice@127.0.0.1:%d/sluice",
           ntohs(addr.sin_port));
  postgres_sink_config silent_cfg = direct_config(silent_url);
  uint64_t start = now_ms();
  cr_assert_eq(sl_postgres_sink.init(&direct_node, &silent_cfg, &sink, &err), SL_IO);
  cr_assert_lt(now_ms() - start, 5000);
  cr_assert(strstr(err.message, "did not answer within 300 ms"), "%s", err.message);
  close(silent);

  postgres_sink_config cfg = direct_config(server.url);
  cr_assert_eq(sl_postgres_sink.init(&direct_node, &cfg, &sink, &err), SL_OK, "%s", err.message);
  sl_event_list first = numbers(1, 2), second = numbers(3, 4), third = numbers(5, 5);
  cr_assert_eq(sl_postgres_sink.write(sink, &first, &err), SL_OK, "%s", err.message);

  /* The backend serving the sink stops answering (SIGSTOP): after `timeout` the sink
   * drops the connection and writes the batch through a new one. */
  char pid_text[32];
  snprintf(pid_text, sizeof pid_text, "%s",
           value_of("SELECT pid FROM pg_stat_activity WHERE application_name = 'sluice "
                    "direct/out'"));
  pid_t backend = (pid_t)atoi(pid_text);
  cr_assert_gt(backend, 0, "no backend for the sink");
  cr_assert_eq(kill(backend, SIGSTOP), 0);
  start = now_ms();
  sl_status st = sl_postgres_sink.write(sink, &second, &err);
  uint64_t took = now_ms() - start;
  /* Let the stopped backend end without running what it was sent. */
  char terminate[96];
  snprintf(terminate, sizeof terminate, "SELECT pg_terminate_backend(%d)", (int)backend);
  sql(terminate);
  kill(backend, SIGCONT);
  cr_assert_eq(st, SL_OK, "%s", err.message);
  cr_assert(took >= 300 && took < 5000, "took %llu ms", (unsigned long long)took);
  cr_assert_geq(count_of("SELECT count(*) FROM direct WHERE n IN (3, 4)"), 2);

  /* The server is gone: the write retries until stop, then fails at once. */
  PQfinish(db);
  db = NULL;
  sl_test_server_kill(&server);
  direct_write w = {.sink = sink, .batch = &third};
  atomic_init(&w.started, false);
  atomic_init(&w.done, false);
  pthread_t thread;
  cr_assert_eq(pthread_create(&thread, NULL, run_write, &w), 0);
  while (!atomic_load(&w.started)) sleep_ms(1);
  /* A few rounds of backoff (50, 100, 100 ms) pass: the write does not give up. */
  sleep_ms(400);
  cr_assert_not(atomic_load(&w.done), "the write gave up: %s", w.err.message);
  start = now_ms();
  sl_postgres_sink.stop(sink);
  pthread_join(thread, NULL);
  cr_assert_lt(now_ms() - start, 1000, "stop took %llu ms", (unsigned long long)(now_ms() - start));
  cr_assert_eq(w.status, SL_CLOSED, "%s", w.err.message);
  cr_assert(strstr(w.err.message, "stopped after"), "%s", w.err.message);
  cr_assert_eq(sl_postgres_sink.write(sink, &third, &err), SL_CLOSED);
  sl_postgres_sink.destroy(sink);
  sl_event_list_destroy(&first);
  sl_event_list_destroy(&second);
  sl_event_list_destroy(&third);
}
