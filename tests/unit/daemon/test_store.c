/*
 * The daemon's desired state: versions are numbered per pipeline and survive a restart,
 * the current pointer moves on rollback, deletes cascade, modules are stored once by hash
 * in files that cannot escape their folder, concurrent writers get distinct numbers, and
 * a home that cannot be used fails with a message naming the path.
 *
 * Each test runs in a fresh temporary folder; the store's home is HOME inside it.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/store.h"

static char test_dir[256];
static char home[512];

static void make_home(void) {
  snprintf(test_dir, sizeof test_dir, "/tmp/sluice-store-test-XXXXXX");
  cr_assert(mkdtemp(test_dir), "mkdtemp");
  snprintf(home, sizeof home, "%s/home", test_dir);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void remove_home(void) {
  if (!test_dir[0]) return;
  chmod(test_dir, 0700); /* a test may have made it read-only */
  nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = make_home, .fini = remove_home);

/* --- helpers: each asserts, so tests read as the behaviour they check ------------- */

static sl_store *open_store(void) {
  sl_store *s = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_open(home, &s, &err), SL_OK, "%s", err.message);
  cr_assert_not_null(s);
  return s;
}

static int64_t add(sl_store *s, const char *pipeline, const char *source, bool *created) {
  sl_version v = {.pipeline = (char *)pipeline,
                  .source = (char *)source,
                  .file = "p.yaml",
                  .dir = "/srv/pipelines",
                  .note = "deploy"};
  int64_t version = -1;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_add_version(s, &v, &version, created, &err), SL_OK, "%s", err.message);
  return version;
}

static int64_t current_of(sl_store *s, const char *pipeline) {
  sl_version v = {0};
  sl_error err = {{0}};
  cr_assert_eq(sl_store_get_version(s, pipeline, 0, &v, &err), SL_OK, "%s", err.message);
  cr_assert(v.current);
  int64_t version = v.version;
  sl_version_clear(&v);
  return version;
}

static void expect_message(const sl_error *err, const char *needle) {
  cr_assert(strstr(err->message, needle), "message '%s' should mention '%s'", err->message, needle);
}

/* sha256("abc"), FIPS 180-2 appendix B.1. */
static const char abc_sha256[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void read_whole(const char *path, char *buf, size_t cap, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  *len = fread(buf, 1, cap, f);
  fclose(f);
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* --- opening ------------------------------------------------------------------------ */

Test(store, open_creates_private_folders_and_a_wal_database) {
  sl_store *s = open_store();
  cr_assert_str_eq(sl_store_home(s), home);
  struct stat st;
  cr_assert_eq(stat(home, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/modules", home);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert(S_ISDIR(st.st_mode));
  cr_assert_eq(st.st_mode & 0777, 0700);
  sl_store_close(s);

  /* journal_mode=WAL is stored in the file, so another connection sees it. */
  snprintf(path, sizeof path, "%s/sluice.db", home);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *stmt = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
  cr_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
  sqlite3_finalize(stmt);
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(stmt, 0), 1);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

Test(store, reopen_keeps_everything) {
  sl_store *s = open_store();
  add(s, "orders", "source v1", NULL);
  add(s, "orders", "source v2", NULL);
  add(s, "clicks", "clicks v1", NULL);
  sl_error err = {{0}};
  cr_assert_eq(sl_store_set_current(s, "orders", 1, &err), SL_OK, "%s", err.message);
  char hash[65];
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, "upper.wasm", hash, NULL, &err),
               SL_OK, "%s", err.message);
  sl_store_close(s);

  /* A restart: a new store on the same home sees the same state. */
  s = open_store();
  cr_assert_eq(current_of(s, "orders"), 1);
  cr_assert_eq(current_of(s, "clicks"), 1);
  sl_version *versions = NULL;
  size_t count = 0;
  cr_assert_eq(sl_store_list_versions(s, "orders", &versions, &count, &err), SL_OK);
  cr_assert_eq(count, 2);
  cr_assert_str_eq(versions[1].source, "source v2");
  sl_versions_free(versions, count);
  char path[PATH_MAX];
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK, "%s", err.message);
  cr_assert_eq(add(s, "orders", "source v3", NULL), 3, "numbering continues after a restart");
  sl_store_close(s);
}

Test(store, unusable_home_fails_with_io_naming_the_path) {
  sl_store *s = NULL;
  sl_error err = {{0}};

  /* A parent that is a file: fails for root too. */
  char blocker[300];
  snprintf(blocker, sizeof blocker, "%s/file", test_dir);
  FILE *f = fopen(blocker, "w");
  cr_assert_not_null(f);
  fclose(f);
  snprintf(home, sizeof home, "%s/home", blocker);
  cr_assert_eq(sl_store_open(home, &s, &err), SL_IO);
  cr_assert_null(s);
  expect_message(&err, blocker);

  /* A read-only parent; root writes anyway, so this part only runs for other users. */
  if (geteuid() != 0) {
    char locked[300];
    snprintf(locked, sizeof locked, "%s/locked", test_dir);
    cr_assert_eq(mkdir(locked, 0500), 0);
    snprintf(home, sizeof home, "%s/home", locked);
    err.message[0] = '\0';
    cr_assert_eq(sl_store_open(home, &s, &err), SL_IO);
    expect_message(&err, home);
    chmod(locked, 0700);
  }

  /* The folders are fine but the database path is a folder. */
  snprintf(home, sizeof home, "%s/home", test_dir);
  char db_path[PATH_MAX + 16];
  snprintf(db_path, sizeof db_path, "%s/sluice.db", home);
  cr_assert_eq(mkdir(home, 0700), 0);
  cr_assert_eq(mkdir(db_path, 0700), 0);
  err.message[0] = '\0';
  cr_assert_eq(sl_store_open(home, &s, &err), SL_IO);
  cr_assert_null(s);
  expect_message(&err, db_path);
}

Test(store, a_file_that_is_not_a_database_is_refused) {
  cr_assert_eq(mkdir(home, 0700), 0);
  char db_path[PATH_MAX + 16];
  snprintf(db_path, sizeof db_path, "%s/sluice.db", home);
  FILE *f = fopen(db_path, "w");
  cr_assert_not_null(f);
  for (int i = 0; i < 200; i++) fputs("this is not an SQLite database, just text\n", f);
  fclose(f);
  sl_store *s = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_open(home, &s, &err), SL_IO);
  expect_message(&err, db_path);
  expect_message(&err, "not a database");
}

Test(store, a_database_from_a_newer_sluice_is_refused) {
  sl_store_close(open_store());
  char db_path[PATH_MAX + 16];
  snprintf(db_path, sizeof db_path, "%s/sluice.db", home);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  sl_store *s = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_open(home, &s, &err), SL_IO);
  expect_message(&err, "newer");
  expect_message(&err, db_path);
}

/* --- versions ----------------------------------------------------------------------- */

Test(store, versions_are_numbered_from_one_and_the_newest_is_current) {
  sl_store *s = open_store();
  bool created = false;
  cr_assert_eq(add(s, "orders", "v1", &created), 1);
  cr_assert(created);
  cr_assert_eq(add(s, "orders", "v2", &created), 2);
  cr_assert_not(created);
  cr_assert_eq(add(s, "orders", "v3", &created), 3);
  cr_assert_eq(add(s, "other", "o1", &created), 1, "numbering is per pipeline");
  cr_assert(created);

  sl_version *versions = NULL;
  size_t count = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_list_versions(s, "orders", &versions, &count, &err), SL_OK, "%s",
               err.message);
  cr_assert_eq(count, 3);
  for (size_t i = 0; i < count; i++) {
    cr_assert_eq(versions[i].version, (int64_t)i + 1, "ascending");
    cr_assert_eq(versions[i].current, i == 2);
    cr_assert_str_eq(versions[i].pipeline, "orders");
    cr_assert_gt(versions[i].created_at_ms, 1600000000000LL);
  }
  cr_assert_str_eq(versions[0].source, "v1");
  cr_assert_str_eq(versions[2].source, "v3");
  sl_versions_free(versions, count);
  sl_store_close(s);
}

Test(store, every_field_round_trips_and_null_fields_get_defaults) {
  sl_store *s = open_store();
  const char *source = "name: orders\nnodes:\n  - id: up\n    text: \"ünïcødé ✓\"\n";
  char modules[128];
  snprintf(modules, sizeof modules, "{\"up\": \"%s\"}", abc_sha256);
  sl_version in = {.pipeline = "orders",
                   .source = (char *)source,
                   .file = "orders.yaml",
                   .dir = "/srv/p",
                   .modules = modules,
                   .note = "module up"};
  sl_error err = {{0}};
  int64_t version = 0;
  cr_assert_eq(sl_store_add_version(s, &in, &version, NULL, &err), SL_OK, "%s", err.message);
  sl_version out = {0};
  cr_assert_eq(sl_store_get_version(s, "orders", version, &out, &err), SL_OK, "%s", err.message);
  cr_assert_str_eq(out.pipeline, "orders");
  cr_assert_eq(out.version, 1);
  cr_assert_str_eq(out.source, source);
  cr_assert_str_eq(out.file, "orders.yaml");
  cr_assert_str_eq(out.dir, "/srv/p");
  cr_assert_str_eq(out.modules, modules);
  cr_assert_str_eq(out.note, "module up");
  cr_assert(out.current);
  sl_version_clear(&out);
  cr_assert_null(out.source, "clear zeroes the struct");

  sl_version bare = {.pipeline = "orders"};
  cr_assert_eq(sl_store_add_version(s, &bare, NULL, NULL, &err), SL_OK, "%s", err.message);
  cr_assert_eq(sl_store_get_version(s, "orders", 0, &out, &err), SL_OK);
  cr_assert_eq(out.version, 2);
  cr_assert_str_eq(out.source, "");
  cr_assert_str_eq(out.modules, "{}");
  cr_assert_str_eq(out.note, "");
  sl_version_clear(&out);
  sl_store_close(s);
}

Test(store, invalid_versions_are_refused_and_change_nothing) {
  sl_store *s = open_store();
  sl_error err = {{0}};
  const char *bad_modules[] = {"not json", "[1, 2]", "{\"up\": 3}", "{\"up\": \"ABC\"}",
                               "{\"up\": \"../../etc/passwd\"}"};
  for (size_t i = 0; i < sizeof bad_modules / sizeof bad_modules[0]; i++) {
    sl_version v = {.pipeline = "orders", .modules = (char *)bad_modules[i]};
    cr_assert_eq(sl_store_add_version(s, &v, NULL, NULL, &err), SL_INVALID, "%s", bad_modules[i]);
  }
  sl_version unnamed = {.pipeline = ""};
  cr_assert_eq(sl_store_add_version(s, &unnamed, NULL, NULL, &err), SL_INVALID);
  sl_pipeline_row *rows = NULL;
  size_t count = 99;
  cr_assert_eq(sl_store_list_pipelines(s, &rows, &count, &err), SL_OK);
  cr_assert_eq(count, 0, "no pipeline row was left behind");
  sl_pipeline_rows_free(rows, count);
  sl_store_close(s);
}

Test(store, rollback_moves_the_pointer_and_the_next_add_gets_max_plus_one) {
  sl_store *s = open_store();
  for (int i = 0; i < 3; i++) add(s, "orders", "text", NULL);
  sl_error err = {{0}};
  cr_assert_eq(sl_store_set_current(s, "orders", 2, &err), SL_OK, "%s", err.message);
  cr_assert_eq(current_of(s, "orders"), 2);

  sl_version v = {0};
  cr_assert_eq(sl_store_get_version(s, "orders", 3, &v, &err), SL_OK);
  cr_assert_not(v.current, "3 is no longer current");
  sl_version_clear(&v);

  cr_assert_eq(add(s, "orders", "text", NULL), 4, "max + 1, not current + 1");
  cr_assert_eq(current_of(s, "orders"), 4);

  sl_pipeline_row *rows = NULL;
  size_t count = 0;
  cr_assert_eq(sl_store_list_pipelines(s, &rows, &count, &err), SL_OK);
  cr_assert_eq(count, 1);
  cr_assert_eq(rows[0].current, 4);
  sl_pipeline_rows_free(rows, count);
  sl_store_close(s);
}

Test(store, version_zero_is_the_current_one) {
  sl_store *s = open_store();
  add(s, "orders", "first", NULL);
  add(s, "orders", "second", NULL);
  sl_error err = {{0}};
  sl_version v = {0};
  cr_assert_eq(sl_store_get_version(s, "orders", 0, &v, &err), SL_OK);
  cr_assert_eq(v.version, 2);
  cr_assert_str_eq(v.source, "second");
  sl_version_clear(&v);
  cr_assert_eq(sl_store_set_current(s, "orders", 1, &err), SL_OK);
  cr_assert_eq(sl_store_get_version(s, "orders", 0, &v, &err), SL_OK);
  cr_assert_eq(v.version, 1);
  cr_assert_str_eq(v.source, "first");
  cr_assert(v.current);
  sl_version_clear(&v);
  sl_store_close(s);
}

Test(store, missing_pipelines_and_versions_are_not_found) {
  sl_store *s = open_store();
  add(s, "orders", "text", NULL);
  sl_error err = {{0}};
  sl_version v = {0};

  cr_assert_eq(sl_store_get_version(s, "nope", 0, &v, &err), SL_NOT_FOUND);
  expect_message(&err, "nope");
  cr_assert_eq(sl_store_get_version(s, "orders", 7, &v, &err), SL_NOT_FOUND);
  expect_message(&err, "no version 7");
  cr_assert_eq(sl_store_get_version(s, "orders", -1, &v, &err), SL_INVALID);
  cr_assert_null(v.source, "nothing is filled on failure");

  cr_assert_eq(sl_store_set_current(s, "orders", 7, &err), SL_NOT_FOUND);
  expect_message(&err, "no version 7");
  cr_assert_eq(sl_store_set_current(s, "orders", 0, &err), SL_NOT_FOUND);
  cr_assert_eq(sl_store_set_current(s, "nope", 1, &err), SL_NOT_FOUND);
  expect_message(&err, "nope");
  cr_assert_eq(current_of(s, "orders"), 1, "failed moves changed nothing");

  sl_version *versions = NULL;
  size_t count = 0;
  cr_assert_eq(sl_store_list_versions(s, "nope", &versions, &count, &err), SL_NOT_FOUND);
  cr_assert_eq(sl_store_delete_pipeline(s, "nope", &err), SL_NOT_FOUND);
  expect_message(&err, "nope");
  sl_store_close(s);
}

Test(store, pipelines_are_listed_by_name) {
  sl_store *s = open_store();
  add(s, "zeta", "z", NULL);
  add(s, "alpha", "a", NULL);
  add(s, "mid", "m", NULL);
  add(s, "alpha", "a2", NULL);
  sl_pipeline_row *rows = NULL;
  size_t count = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_list_pipelines(s, &rows, &count, &err), SL_OK, "%s", err.message);
  cr_assert_eq(count, 3);
  cr_assert_str_eq(rows[0].name, "alpha");
  cr_assert_eq(rows[0].current, 2);
  cr_assert_geq(rows[0].updated_at_ms, rows[0].created_at_ms);
  cr_assert_str_eq(rows[1].name, "mid");
  cr_assert_str_eq(rows[2].name, "zeta");
  cr_assert_eq(rows[2].current, 1);
  sl_pipeline_rows_free(rows, count);
  sl_store_close(s);
}

Test(store, delete_removes_the_pipeline_and_its_versions_but_not_modules) {
  sl_store *s = open_store();
  sl_error err = {{0}};
  char hash[65];
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, NULL, hash, NULL, &err), SL_OK);
  add(s, "orders", "o1", NULL);
  add(s, "orders", "o2", NULL);
  add(s, "clicks", "c1", NULL);
  cr_assert_eq(sl_store_delete_pipeline(s, "orders", &err), SL_OK, "%s", err.message);

  sl_version v = {0};
  cr_assert_eq(sl_store_get_version(s, "orders", 1, &v, &err), SL_NOT_FOUND);
  sl_version *versions = NULL;
  size_t count = 0;
  cr_assert_eq(sl_store_list_versions(s, "orders", &versions, &count, &err), SL_NOT_FOUND);
  cr_assert_eq(current_of(s, "clicks"), 1, "other pipelines stay");

  sl_pipeline_row *rows = NULL;
  cr_assert_eq(sl_store_list_pipelines(s, &rows, &count, &err), SL_OK);
  cr_assert_eq(count, 1);
  cr_assert_str_eq(rows[0].name, "clicks");
  sl_pipeline_rows_free(rows, count);

  bool created = false;
  cr_assert_eq(add(s, "orders", "again", &created), 1, "a new pipeline of the same name");
  cr_assert(created);
  char path[PATH_MAX];
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK, "%s", err.message);
  sl_store_close(s);
}

/* Four threads adding versions of one pipeline at once. */
typedef struct adder {
  sl_store *store;
  int64_t numbers[25];
} adder;

static void *add_many(void *arg) {
  adder *a = arg;
  for (int i = 0; i < 25; i++) {
    sl_version v = {.pipeline = "busy", .source = "text", .note = "deploy"};
    sl_error err = {{0}};
    if (sl_store_add_version(a->store, &v, &a->numbers[i], NULL, &err) != SL_OK) {
      fprintf(stderr, "add_version: %s\n", err.message);
      a->numbers[i] = -1;
    }
  }
  return NULL;
}

static int compare_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Runs four adders on `stores[i % 2]` and checks they got 1..100 between them. */
static void run_adders(sl_store *stores[2]) {
  adder adders[4];
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) {
    adders[i].store = stores[i % 2];
    cr_assert_eq(pthread_create(&threads[i], NULL, add_many, &adders[i]), 0);
  }
  int64_t all[100];
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    memcpy(all + 25 * i, adders[i].numbers, sizeof adders[i].numbers);
  }
  qsort(all, 100, sizeof all[0], compare_int64);
  for (int i = 0; i < 100; i++) cr_assert_eq(all[i], i + 1, "distinct and consecutive");

  sl_version *versions = NULL;
  size_t count = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl_store_list_versions(stores[0], "busy", &versions, &count, &err), SL_OK);
  cr_assert_eq(count, 100);
  sl_versions_free(versions, count);
  cr_assert_eq(current_of(stores[0], "busy"), 100, "the last add to commit is current");
}

Test(store, concurrent_adds_get_distinct_consecutive_numbers) {
  sl_store *s = open_store();
  sl_store *stores[2] = {s, s};
  run_adders(stores);
  sl_store_close(s);
}

Test(store, two_stores_on_one_home_wait_for_each_other) {
  /* Two connections to the same file, as two processes would have: BEGIN IMMEDIATE and
   * the busy timeout order their writes. */
  sl_store *stores[2] = {open_store(), open_store()};
  run_adders(stores);
  sl_store_close(stores[0]);
  sl_store_close(stores[1]);
}

/* --- modules ------------------------------------------------------------------------ */

Test(store, putting_a_module_twice_stores_it_once) {
  sl_store *s = open_store();
  sl_error err = {{0}};
  char hash[65] = "";
  bool existed = true;
  cr_assert_eq(
      sl_store_put_module(s, (const uint8_t *)"abc", 3, "upper.wasm", hash, &existed, &err), SL_OK,
      "%s", err.message);
  cr_assert_str_eq(hash, abc_sha256);
  cr_assert_not(existed);

  char again[65] = "";
  cr_assert_eq(
      sl_store_put_module(s, (const uint8_t *)"abc", 3, "other.wasm", again, &existed, &err),
      SL_OK);
  cr_assert_str_eq(again, abc_sha256);
  cr_assert(existed);

  char path[PATH_MAX], expected[PATH_MAX + 80], content[16];
  size_t len = 0;
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK, "%s", err.message);
  snprintf(expected, sizeof expected, "%s/modules/%s.wasm", home, abc_sha256);
  cr_assert_str_eq(path, expected);
  read_whole(path, content, sizeof content, &len);
  cr_assert_eq(len, 3);
  cr_assert(memcmp(content, "abc", 3) == 0);
  char modules_dir[PATH_MAX + 16];
  snprintf(modules_dir, sizeof modules_dir, "%s/modules", home);
  cr_assert_eq(count_entries(modules_dir), 1, "one file, no temporary left behind");

  sl_module_row row = {0};
  cr_assert_eq(sl_store_get_module(s, hash, &row, &err), SL_OK, "%s", err.message);
  cr_assert_str_eq(row.sha256, abc_sha256);
  cr_assert_eq(row.size, 3);
  cr_assert_str_eq(row.name, "upper.wasm", "the first name is kept");
  cr_assert_gt(row.created_at_ms, 0);
  free(row.name);

  sl_module_row *rows = NULL;
  size_t count = 0;
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"\0asm", 4, NULL, NULL, NULL, &err), SL_OK);
  cr_assert_eq(sl_store_list_modules(s, &rows, &count, &err), SL_OK, "%s", err.message);
  cr_assert_eq(count, 2);
  bool seen_abc = false;
  for (size_t i = 0; i < count; i++)
    if (strcmp(rows[i].sha256, abc_sha256) == 0) seen_abc = true;
  cr_assert(seen_abc);
  sl_module_rows_free(rows, count);
  sl_store_close(s);
}

Test(store, a_damaged_or_missing_module_file_is_written_again) {
  sl_store *s = open_store();
  sl_error err = {{0}};
  char hash[65], path[PATH_MAX], content[16];
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, "", hash, NULL, &err), SL_OK);
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK);

  FILE *f = fopen(path, "wb");
  fputs("xyz", f); /* same size, other bytes */
  fclose(f);
  bool existed = false;
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, "late.wasm", hash, &existed, &err),
               SL_OK, "%s", err.message);
  cr_assert(existed);
  size_t len = 0;
  read_whole(path, content, sizeof content, &len);
  cr_assert(len == 3 && memcmp(content, "abc", 3) == 0, "the damaged file was replaced");

  sl_module_row row = {0};
  cr_assert_eq(sl_store_get_module(s, hash, &row, &err), SL_OK);
  cr_assert_str_eq(row.name, "late.wasm", "an empty name is filled in later");
  free(row.name);

  cr_assert_eq(unlink(path), 0);
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_NOT_FOUND);
  expect_message(&err, "missing");
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, NULL, hash, NULL, &err), SL_OK);
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK, "%s", err.message);
  sl_store_close(s);
}

Test(store, module_hashes_cannot_escape_the_folder) {
  sl_store *s = open_store();
  sl_error err = {{0}};
  char path[PATH_MAX];
  char upper[65], short_hash[64], long_hash[66], slash[65];
  for (int i = 0; i < 64; i++) upper[i] = abc_sha256[i] >= 'a' ? abc_sha256[i] - 32 : abc_sha256[i];
  upper[64] = '\0';
  memcpy(short_hash, abc_sha256, 63);
  short_hash[63] = '\0';
  snprintf(long_hash, sizeof long_hash, "%s0", abc_sha256);
  memcpy(slash, abc_sha256, 65);
  slash[10] = '/';
  const char *bad[] = {"../x",
                       "",
                       upper,
                       short_hash,
                       long_hash,
                       slash,
                       "../../../../../../../../../../../../../../../../../../../../etc/passwd"};
  cr_assert_eq(sl_store_put_module(s, (const uint8_t *)"abc", 3, NULL, NULL, NULL, &err), SL_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    path[0] = '\0';
    cr_assert_eq(sl_store_module_path(s, bad[i], path, sizeof path, &err), SL_INVALID, "'%s'",
                 bad[i]);
    cr_assert_str_eq(path, "", "nothing is written for '%s'", bad[i]);
    sl_module_row row = {0};
    cr_assert_eq(sl_store_get_module(s, bad[i], &row, &err), SL_INVALID, "'%s'", bad[i]);
  }
  cr_assert_eq(sl_store_module_path(s, NULL, path, sizeof path, &err), SL_INVALID);

  char unknown[65];
  memset(unknown, '0', 64);
  unknown[64] = '\0';
  cr_assert_eq(sl_store_module_path(s, unknown, path, sizeof path, &err), SL_NOT_FOUND);
  expect_message(&err, unknown);
  sl_module_row row = {0};
  cr_assert_eq(sl_store_get_module(s, unknown, &row, &err), SL_NOT_FOUND);

  char tiny[8];
  cr_assert_eq(sl_store_module_path(s, abc_sha256, tiny, sizeof tiny, &err), SL_INVALID);
  sl_store_close(s);
}

Test(store, importing_a_file_keeps_its_name) {
  sl_store *s = open_store();
  char source[PATH_MAX + 16];
  snprintf(source, sizeof source, "%s/upper.wasm", test_dir);
  FILE *f = fopen(source, "wb");
  fputs("abc", f);
  fclose(f);
  sl_error err = {{0}};
  char hash[65];
  cr_assert_eq(sl_store_import_module_file(s, source, hash, &err), SL_OK, "%s", err.message);
  cr_assert_str_eq(hash, abc_sha256);
  sl_module_row row = {0};
  cr_assert_eq(sl_store_get_module(s, hash, &row, &err), SL_OK);
  cr_assert_str_eq(row.name, "upper.wasm");
  free(row.name);

  /* The store keeps its own copy: the original may change or vanish. */
  cr_assert_eq(unlink(source), 0);
  char path[PATH_MAX];
  cr_assert_eq(sl_store_module_path(s, hash, path, sizeof path, &err), SL_OK, "%s", err.message);

  cr_assert_eq(sl_store_import_module_file(s, source, hash, &err), SL_IO);
  expect_message(&err, source);
  sl_store_close(s);
}
