/*
 * test_kv.c - the key-value buckets of src/caps/kv.h, every operation against every
 * backend: "memory", "local" (SQLite in a fresh folder) and Redis (a real redis-server
 * this test starts on loopback, tests/support/servers.h).
 *
 *   operations     get missing/present, set and overwrite, binary keys and values,
 *                  delete, exists, list-keys pages over 2,601 keys, increment from
 *                  absent, negative deltas, counters read back as text, non-counters
 *                  and overflow refused with SL_INVALID and the value left as it was
 *   atomics        4 threads x 2,000 increments of one key, per backend: 8,000, and
 *                  every intermediate result returned exactly once
 *   local          values kept across a registry destroyed and made again, and shared
 *                  by two registries open at once on the same file (a hot swap)
 *   registry       (name, spec) opens one bucket, also from threads racing; spec check
 *
 * Redis failures (a killed, paused or junk-speaking server, prefixes, databases, AUTH)
 * are in test_kv_redis.c.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../support/servers.h"
#include "caps/kv.h"

typedef enum backend { MEMORY, LOCAL, REDIS, BACKEND_COUNT } backend;
static const char *const backend_names[] = {"memory", "local", "redis"};

static sl_test_server server;
static char folder[64];
static char state_dir[128];
static sl_kv_registry *registry;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static sl_kv_registry *new_registry(const char *dir) {
  sl_kv_registry *made = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_new(dir, &made, &err), SL_OK, "%s", err.message);
  return made;
}

static void setup(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-kv-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(state_dir, sizeof state_dir, "%s/state/pipe", folder);
  cr_assert(sl_test_server_start(&server, SL_TEST_REDIS), "redis-server did not start");
  /* The test server fsyncs every write; these tests are about the backend, not the disk. */
  redisContext *client = redisConnect("127.0.0.1", server.port);
  cr_assert(client && !client->err);
  redisReply *reply = redisCommand(client, "CONFIG SET appendfsync no");
  cr_assert(reply && reply->type == REDIS_REPLY_STATUS);
  freeReplyObject(reply);
  redisFree(client);
  registry = new_registry(state_dir);
}

static void teardown(void) {
  sl_kv_registry_destroy(registry);
  registry = NULL;
  sl_test_server_stop(&server);
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(kv, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------- */

/* Bucket `name` on `which`; a Redis bucket gets the prefix "NAME:" so buckets of one test
 * stay apart the way they do in the other backends. */
static sl_kv_bucket *open_on(sl_kv_registry *in, backend which, const char *name) {
  char spec[256];
  if (which == REDIS)
    snprintf(spec, sizeof spec, "%s/0?prefix=%s:", server.url, name);
  else
    snprintf(spec, sizeof spec, "%s", backend_names[which]);
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_open(in, name, spec, &bucket, &err), SL_OK, "%s: %s", spec,
               err.message);
  cr_assert_not_null(bucket);
  return bucket;
}

static sl_kv_bucket *open_bucket(backend which, const char *name) {
  return open_on(registry, which, name);
}

static void set_bytes(sl_kv_bucket *bucket, const void *key, size_t key_len, const void *value,
                      size_t value_len) {
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_set(bucket, key, key_len, value, value_len, &err), SL_OK, "set: %s",
               err.message);
}

static void set_text(sl_kv_bucket *bucket, const char *key, const char *value) {
  set_bytes(bucket, key, strlen(key), value, strlen(value));
}

/* Asserts `key` holds exactly `expected` (NULL: absent). */
static void expect_bytes(sl_kv_bucket *bucket, const void *key, size_t key_len,
                         const void *expected, size_t expected_len) {
  uint8_t *value = (uint8_t *)"sentinel";
  size_t value_len = 99;
  bool found = true;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_get(bucket, key, key_len, &value, &value_len, &found, &err), SL_OK,
               "%s: get: %s", sl_kv_bucket_spec(bucket), err.message);
  if (!expected) {
    cr_assert_not(found, "%s: key '%.*s' should be absent", sl_kv_bucket_spec(bucket), (int)key_len,
                  (const char *)key);
    cr_assert_null(value);
    cr_assert_eq(value_len, 0);
    return;
  }
  cr_assert(found, "%s: key '%.*s' should be there", sl_kv_bucket_spec(bucket), (int)key_len,
            (const char *)key);
  cr_assert_eq(value_len, expected_len, "%s: %zu bytes, expected %zu", sl_kv_bucket_spec(bucket),
               value_len, expected_len);
  if (expected_len == 0)
    cr_assert_null(value);
  else
    cr_assert(memcmp(value, expected, expected_len) == 0, "%s: other bytes than set",
              sl_kv_bucket_spec(bucket));
  free(value);
}

static void expect_text(sl_kv_bucket *bucket, const char *key, const char *expected) {
  expect_bytes(bucket, key, strlen(key), expected, expected ? strlen(expected) : 0);
}

static bool exists(sl_kv_bucket *bucket, const char *key) {
  bool there = false;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_exists(bucket, key, strlen(key), &there, &err), SL_OK, "%s", err.message);
  return there;
}

static int64_t increment(sl_kv_bucket *bucket, const char *key, int64_t delta) {
  int64_t result = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_increment(bucket, key, strlen(key), delta, &result, &err), SL_OK, "%s: %s",
               sl_kv_bucket_spec(bucket), err.message);
  return result;
}

/* ---- operations -------------------------------------------------------------------------- */

Test(kv, get_finds_nothing_then_what_was_set_and_overwritten) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "plain");
    expect_text(bucket, "k", NULL);
    set_text(bucket, "k", "first");
    set_text(bucket, "other", "untouched");
    expect_text(bucket, "k", "first");
    set_text(bucket, "k", "a second, longer value");
    expect_text(bucket, "k", "a second, longer value");
    set_text(bucket, "k", "3");
    expect_text(bucket, "k", "3");
    expect_text(bucket, "other", "untouched");
    expect_text(bucket, "K", NULL);
  }
}

Test(kv, keys_and_values_are_binary_safe) {
  uint8_t value[70000];
  for (size_t i = 0; i < sizeof value; i++) value[i] = (uint8_t)(i * 7 + i / 256);
  value[0] = 0;
  value[sizeof value - 1] = 0;
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "binary");
    set_bytes(bucket, "a\0b", 3, value, sizeof value);
    set_bytes(bucket, "a\0c", 3, "x\0y", 3);
    set_bytes(bucket, "a", 1, "\xff\xfe", 2);
    expect_bytes(bucket, "a\0b", 3, value, sizeof value);
    expect_bytes(bucket, "a\0c", 3, "x\0y", 3);
    expect_bytes(bucket, "a", 1, "\xff\xfe", 2);
    expect_bytes(bucket, "a\0", 2, NULL, 0);
    /* The empty value is a value; the empty key is a key. */
    set_bytes(bucket, "empty", 5, NULL, 0);
    expect_bytes(bucket, "empty", 5, "", 0);
    cr_assert(exists(bucket, "empty"), "%s", backend_names[which]);
    set_bytes(bucket, "", 0, "nameless", 8);
    expect_bytes(bucket, "", 0, "nameless", 8);
    expect_bytes(bucket, NULL, 0, "nameless", 8);
  }
}

Test(kv, delete_removes_and_exists_tells) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "deletes");
    sl_error err = {{0}};
    cr_assert_not(exists(bucket, "k"));
    set_text(bucket, "k", "v");
    set_text(bucket, "keep", "v");
    cr_assert(exists(bucket, "k"), "%s", backend_names[which]);
    cr_assert_eq(sl_kv_delete(bucket, "k", 1, &err), SL_OK, "%s", err.message);
    cr_assert_not(exists(bucket, "k"), "%s", backend_names[which]);
    expect_text(bucket, "k", NULL);
    cr_assert(exists(bucket, "keep"));
    /* Deleting what is not there is not an error (wasi-keyvalue's delete). */
    cr_assert_eq(sl_kv_delete(bucket, "k", 1, &err), SL_OK, "%s", err.message);
    set_text(bucket, "k", "back");
    expect_text(bucket, "k", "back");
  }
}

#define LISTED_KEYS 2600

Test(kv, list_keys_pages_through_every_key_exactly_once) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "listed");
    sl_kv_bucket *neighbour = open_bucket(which, "neighbour");
    sl_error err = {{0}};

    sl_kv_key_page page;
    cr_assert_eq(sl_kv_list_keys(bucket, NULL, &page, &err), SL_OK, "%s", err.message);
    cr_assert_eq(page.count, 0, "%s: an empty bucket lists nothing", backend_names[which]);
    cr_assert_null(page.cursor);
    sl_kv_key_page_free(&page);

    char key[32];
    for (int i = 0; i < LISTED_KEYS; i++) {
      snprintf(key, sizeof key, "key-%05d", i);
      set_text(bucket, key, "v");
    }
    set_bytes(bucket, "nul\0inside", 10, "v", 1); /* number LISTED_KEYS */
    set_text(neighbour, "key-00001", "not this bucket's");

    int seen[LISTED_KEYS + 1] = {0};
    size_t pages = 0, total = 0;
    char *cursor = NULL;
    char previous[32] = "";
    size_t previous_len = 0;
    do {
      cr_assert_eq(sl_kv_list_keys(bucket, cursor, &page, &err), SL_OK, "%s: %s",
                   backend_names[which], err.message);
      free(cursor);
      cursor = page.cursor ? strdup(page.cursor) : NULL;
      cr_assert_leq(page.count, SL_KV_PAGE_KEYS, "%s: a page of %zu keys", backend_names[which],
                    page.count);
      pages++;
      for (size_t i = 0; i < page.count; i++) {
        const char *listed = page.keys[i];
        size_t len = page.key_lens[i];
        cr_assert_eq(listed[len], '\0');
        int number = -1;
        if (len == 10 && memcmp(listed, "nul\0inside", 10) == 0)
          number = LISTED_KEYS;
        else if (len == 9 && sscanf(listed, "key-%05d", &number) == 1 && number < LISTED_KEYS)
          ;
        else
          cr_assert_fail("%s: a key that was never set: '%.*s'", backend_names[which], (int)len,
                         listed);
        seen[number]++;
        total++;
        if (which != REDIS) { /* memory and local list in byte order, across pages too */
          size_t common = len < previous_len ? len : previous_len;
          int order = memcmp(previous, listed, common);
          cr_assert(total == 1 || order < 0 || (order == 0 && previous_len < len),
                    "%s: keys out of byte order", backend_names[which]);
          memcpy(previous, listed, len);
          previous_len = len;
        }
      }
      sl_kv_key_page_free(&page);
      cr_assert_leq(pages, 100, "%s: list-keys does not end", backend_names[which]);
    } while (cursor);

    for (int i = 0; i <= LISTED_KEYS; i++)
      cr_assert_eq(seen[i], 1, "%s: key %d listed %d times", backend_names[which], i, seen[i]);
    cr_assert_eq(total, LISTED_KEYS + 1);
    if (which != REDIS)
      cr_assert_eq(pages, 3, "%s: 1000 + 1000 + 601 keys in %zu pages", backend_names[which],
                   pages);
    else
      cr_assert_geq(pages, 3, "redis: at most 1000 keys a page");
  }
}

Test(kv, list_keys_refuses_a_cursor_it_did_not_make) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "cursors");
    set_text(bucket, "k", "v");
    const char *bad[] = {"", "zz", "k0", "kzz", "12x", "1:x", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
      sl_kv_key_page page;
      sl_error err = {{0}};
      /* Redis's cursors are numbers: "k0"-like strings are foreign there, "12x" too. */
      cr_assert_eq(sl_kv_list_keys(bucket, bad[i], &page, &err), SL_INVALID, "%s: cursor \"%s\"",
                   backend_names[which], bad[i]);
      cr_assert(strstr(err.message, "'cursors'"), "%s", err.message);
      cr_assert_eq(page.count, 0);
      cr_assert_null(page.keys);
    }
  }
}

Test(kv, increment_starts_from_absent_and_goes_down_too) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "counters");
    cr_assert_eq(increment(bucket, "c", 5), 5, "%s", backend_names[which]);
    cr_assert_eq(increment(bucket, "c", -7), -2, "%s", backend_names[which]);
    cr_assert_eq(increment(bucket, "c", 0), -2);
    expect_text(bucket, "c", "-2");
    cr_assert_eq(increment(bucket, "fresh", -3), -3);
    expect_text(bucket, "fresh", "-3");
    /* A counter set as text counts on, and reads back as decimal text. */
    set_text(bucket, "answer", "41");
    cr_assert_eq(increment(bucket, "answer", 1), 42);
    expect_text(bucket, "answer", "42");
    cr_assert_eq(increment(bucket, "big", INT64_MAX), INT64_MAX);
    expect_text(bucket, "big", "9223372036854775807");
    cr_assert_eq(increment(bucket, "small", INT64_MIN), INT64_MIN);
    expect_text(bucket, "small", "-9223372036854775808");
    cr_assert_eq(increment(bucket, "small", 1), INT64_MIN + 1);
  }
}

Test(kv, increment_refuses_a_value_that_is_not_a_counter) {
  /* What Redis's INCRBY refuses, every backend refuses. */
  const char *not_counters[] = {
      "hello", "1.5", "007", " 1", "1 ", "", "-0", "+1", "-", "0x10", "99999999999999999999",
      "1\0002"};
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "not-counters");
    for (size_t i = 0; i < sizeof not_counters / sizeof *not_counters; i++) {
      size_t len = i == 11 ? 3 : strlen(not_counters[i]);
      set_bytes(bucket, "t", 1, not_counters[i], len);
      int64_t result = 7;
      sl_error err = {{0}};
      cr_assert_eq(sl_kv_increment(bucket, "t", 1, 1, &result, &err), SL_INVALID,
                   "%s: increment of \"%s\"", backend_names[which], not_counters[i]);
      cr_assert_eq(result, 0);
      cr_assert(strstr(err.message, "'not-counters'"), "the message names the bucket: %s",
                err.message);
      expect_bytes(bucket, "t", 1, not_counters[i], len); /* left as it was */
    }
  }
}

Test(kv, increment_refuses_to_overflow) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *bucket = open_bucket(which, "overflow");
    set_text(bucket, "max", "9223372036854775807");
    set_text(bucket, "min", "-9223372036854775808");
    int64_t result = 7;
    sl_error err = {{0}};
    cr_assert_eq(sl_kv_increment(bucket, "max", 3, 1, &result, &err), SL_INVALID, "%s",
                 backend_names[which]);
    cr_assert(strstr(err.message, "overflow"), "%s", err.message);
    cr_assert_eq(sl_kv_increment(bucket, "min", 3, -1, &result, &err), SL_INVALID, "%s",
                 backend_names[which]);
    expect_text(bucket, "max", "9223372036854775807");
    expect_text(bucket, "min", "-9223372036854775808");
    cr_assert_eq(increment(bucket, "max", -1), INT64_MAX - 1);
  }
}

/* ---- atomics ---------------------------------------------------------------------------- */

#define THREADS 4
#define INCREMENTS_EACH 2000
#define INCREMENTS_ALL (THREADS * INCREMENTS_EACH)

typedef struct counting {
  sl_kv_bucket *buckets[THREADS]; /* per thread: the same bucket, or buckets on one file */
  atomic_int returned[INCREMENTS_ALL + 1];
  atomic_int failures;
  char failure[256];
} counting;

static void *count_up(void *arg) {
  counting *run = ((void **)arg)[0];
  sl_kv_bucket *bucket = ((void **)arg)[1];
  for (int i = 0; i < INCREMENTS_EACH; i++) {
    int64_t result = 0;
    sl_error err = {{0}};
    if (sl_kv_increment(bucket, "hits", 4, 1, &result, &err) != SL_OK || result < 1 ||
        result > INCREMENTS_ALL) {
      if (atomic_fetch_add(&run->failures, 1) == 0)
        snprintf(run->failure, sizeof run->failure, "result %lld: %.200s", (long long)result,
                 err.message);
      continue;
    }
    atomic_fetch_add(&run->returned[result], 1);
  }
  return NULL;
}

/* Runs THREADS threads of INCREMENTS_EACH increments, thread t on run->buckets[t]. */
static void count_concurrently(counting *run, const char *what) {
  pthread_t threads[THREADS];
  void *args[THREADS][2];
  for (int t = 0; t < THREADS; t++) {
    args[t][0] = run;
    args[t][1] = run->buckets[t];
    cr_assert_eq(pthread_create(&threads[t], NULL, count_up, args[t]), 0);
  }
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  cr_assert_eq(atomic_load(&run->failures), 0, "%s: %d failed, first: %s", what,
               atomic_load(&run->failures), run->failure);
  /* Atomic: each value from 1 to 8000 was some increment's result, exactly once. */
  for (int value = 1; value <= INCREMENTS_ALL; value++)
    cr_assert_eq(atomic_load(&run->returned[value]), 1, "%s: %d returned %d times", what, value,
                 atomic_load(&run->returned[value]));
  expect_text(run->buckets[0], "hits", "8000");
}

Test(kv, increments_from_four_threads_are_atomic) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    counting *run = calloc(1, sizeof *run);
    sl_kv_bucket *bucket = open_bucket(which, "atomic");
    for (int t = 0; t < THREADS; t++) run->buckets[t] = bucket;
    count_concurrently(run, backend_names[which]);
    free(run);
  }
}

/* ---- local --------------------------------------------------------------------------------- */

Test(kv, local_values_outlive_the_registry) {
  sl_kv_bucket *local = open_bucket(LOCAL, "kept");
  sl_kv_bucket *memory = open_bucket(MEMORY, "kept");
  set_bytes(local, "bin\0key", 7, "v\0v", 3);
  cr_assert_eq(increment(local, "count", 41), 41);
  set_text(memory, "k", "gone with the registry");
  sl_kv_registry_destroy(registry);

  registry = new_registry(state_dir);
  local = open_bucket(LOCAL, "kept");
  expect_bytes(local, "bin\0key", 7, "v\0v", 3);
  cr_assert_eq(increment(local, "count", 1), 42);
  expect_text(open_bucket(MEMORY, "kept"), "k", NULL);
  /* Another name is another bucket in the same file. */
  expect_text(open_bucket(LOCAL, "other"), "count", NULL);

  struct stat st;
  char path[256];
  snprintf(path, sizeof path, "%s/keyvalue.sqlite", state_dir);
  cr_assert_eq(stat(path, &st), 0, "the store is %s", path);
}

Test(kv, local_file_is_shared_by_two_registries_open_at_once) {
  /* A hot swap: the old pipeline's registry still runs while the new one opens. */
  sl_kv_registry *second = new_registry(state_dir);
  sl_kv_bucket *old_side = open_bucket(LOCAL, "swap");
  sl_kv_bucket *new_side = open_on(second, LOCAL, "swap");
  set_text(old_side, "k", "from the old pipeline");
  expect_text(new_side, "k", "from the old pipeline");
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_delete(new_side, "k", 1, &err), SL_OK, "%s", err.message);
  expect_text(old_side, "k", NULL);

  /* Two connections writing one counter: the busy timeout makes them take turns. */
  counting *run = calloc(1, sizeof *run);
  for (int t = 0; t < THREADS; t++) run->buckets[t] = t % 2 ? new_side : old_side;
  count_concurrently(run, "two registries");
  free(run);
  expect_text(new_side, "hits", "8000");
  sl_kv_registry_destroy(second);
  expect_text(old_side, "hits", "8000");
}

Test(kv, local_refused_without_a_state_folder_or_when_it_cannot_be_made) {
  sl_kv_registry *stateless = new_registry(NULL);
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_open(stateless, "b", "local", &bucket, &err), SL_INVALID);
  cr_assert_null(bucket);
  cr_assert(strstr(err.message, "'b'"), "%s", err.message);
  /* memory still works there */
  cr_assert_eq(sl_kv_registry_open(stateless, "b", "memory", &bucket, &err), SL_OK);
  sl_kv_registry_destroy(stateless);

  char blocked[160];
  snprintf(blocked, sizeof blocked, "%s/a-file", folder);
  FILE *file = fopen(blocked, "w");
  cr_assert_not_null(file);
  fclose(file);
  strcat(blocked, "/state");
  sl_kv_registry *unwritable = new_registry(blocked);
  bucket = NULL;
  cr_assert_eq(sl_kv_registry_open(unwritable, "b", "local", &bucket, &err), SL_IO);
  cr_assert_null(bucket);
  cr_assert(strstr(err.message, blocked), "the message names the folder: %s", err.message);
  sl_kv_registry_destroy(unwritable);
}

/* ---- registry -------------------------------------------------------------------------------- */

Test(kv, open_returns_one_bucket_per_name_and_spec) {
  for (backend which = 0; which < BACKEND_COUNT; which++) {
    sl_kv_bucket *first = open_bucket(which, "shared");
    cr_assert_eq(open_bucket(which, "shared"), first, "%s", backend_names[which]);
    cr_assert_neq(open_bucket(which, "different"), first);
    cr_assert_str_eq(sl_kv_bucket_name(first), "shared");
  }
  cr_assert_neq(open_bucket(MEMORY, "shared"), open_bucket(LOCAL, "shared"));
  /* Same name, other backend: other data. */
  set_text(open_bucket(MEMORY, "shared"), "k", "memory");
  expect_text(open_bucket(LOCAL, "shared"), "k", NULL);
}

typedef struct racing_open {
  pthread_barrier_t start;
  sl_kv_bucket *seen[8][50];
} racing_open;

static void *open_many(void *arg) {
  racing_open *race = ((void **)arg)[0];
  sl_kv_bucket **seen = ((void **)arg)[1];
  pthread_barrier_wait(&race->start);
  for (int i = 0; i < 50; i++) {
    const char *spec = i % 2 ? "memory" : "local";
    sl_error err = {{0}};
    if (sl_kv_registry_open(registry, i % 3 ? "raced" : "raced-too", spec, &seen[i], &err) != SL_OK)
      seen[i] = NULL;
  }
  return NULL;
}

Test(kv, open_is_thread_safe) {
  racing_open *race = calloc(1, sizeof *race);
  pthread_barrier_init(&race->start, NULL, 8);
  pthread_t threads[8];
  void *args[8][2];
  for (int t = 0; t < 8; t++) {
    args[t][0] = race;
    args[t][1] = race->seen[t];
    cr_assert_eq(pthread_create(&threads[t], NULL, open_many, args[t]), 0);
  }
  for (int t = 0; t < 8; t++) pthread_join(threads[t], NULL);
  for (int i = 0; i < 50; i++)
    for (int t = 0; t < 8; t++) {
      cr_assert_not_null(race->seen[t][i]);
      cr_assert_eq(race->seen[t][i], race->seen[0][i], "thread %d, open %d: another bucket", t, i);
    }
  cr_assert_neq(race->seen[0][0], race->seen[0][1]);
  pthread_barrier_destroy(&race->start);
  free(race);
}

Test(kv, spec_check_accepts_the_documented_forms_only) {
  const char *accepted[] = {
      "memory",
      "local",
      "redis://127.0.0.1:6379",
      "redis://127.0.0.1:6379/0",
      "redis://127.0.0.1:6379/",
      "redis://cache.internal:1/15?prefix=app:",
      "redis://h:6379?prefix=p",
      "redis://[::1]:6379/2",
      "redis://:pass@h:6379/0",
      "redis://user:p%40ss@h:6379",
      "redis://h:6379/3?prefix=a%2Fb%00c",
      "REDIS://h:65535",
  };
  const char *refused[] = {
      "",
      "Memory",
      "memory ",
      "sqlite",
      "redis://",
      "redis://h",
      "redis://h:",
      "redis://:6379",
      "redis://h:0",
      "redis://h:65536",
      "redis://h:63x79",
      "redis://h:6379/x",
      "redis://h:6379/-1",
      "redis://h:6379/0/1",
      "redis://h:6379?db=1",
      "redis://h:6379?prefix=a&x=1",
      "redis://h:6379?prefix=%zz",
      "rediss://h:6379",
      "http://h:6379",
      "redis://user@h:6379",
      "redis://:@h:6379",
      "redis://h:6379#fragment",
      "redis://[::1:6379",
      "redis://[::1]6379",
  };
  char why[300];
  for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
    cr_assert(sl_kv_backend_spec_check(accepted[i], why, sizeof why), "\"%s\" refused: %s",
              accepted[i], why);
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    why[0] = '\0';
    cr_assert_not(sl_kv_backend_spec_check(refused[i], why, sizeof why), "\"%s\" accepted",
                  refused[i]);
    cr_assert_gt(strlen(why), 20, "\"%s\": a reason", refused[i]);
  }
  cr_assert_not(sl_kv_backend_spec_check(NULL, why, sizeof why));
  cr_assert(strstr(why, "memory") && strstr(why, "local") && strstr(why, "redis://"), "%s", why);
  /* The reason never repeats a password. */
  cr_assert_not(sl_kv_backend_spec_check("redis://:hunter2@h/0", why, sizeof why));
  cr_assert_null(strstr(why, "hunter2"), "%s", why);
  cr_assert(strstr(why, "***"), "%s", why);
  /* Nor a password whose '/' or '?' was not escaped, where the parser cannot tell where
   * it ends. */
  const char *unescaped[] = {"redis://:pa/ss@h:6379/0", "redis://:pa?ss@h:6379",
                             "redis://u:pa#ss@h:6379"};
  for (size_t i = 0; i < sizeof unescaped / sizeof *unescaped; i++) {
    cr_assert_not(sl_kv_backend_spec_check(unescaped[i], why, sizeof why), "%s", unescaped[i]);
    cr_assert(!strstr(why, "pa/") && !strstr(why, "pa?") && !strstr(why, "pa#") &&
                  !strstr(why, "ss@"),
              "%s", why);
  }
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_open(registry, "b", "redis://h:1/x", &bucket, &err), SL_INVALID);
  cr_assert(strstr(err.message, "'b'"), "%s", err.message);
}

Test(kv, calls_without_their_arguments_are_refused) {
  sl_kv_bucket *bucket = open_bucket(MEMORY, "args");
  sl_error err = {{0}};
  int64_t result;
  bool found;
  uint8_t *value;
  size_t value_len;
  cr_assert_eq(sl_kv_set(bucket, NULL, 3, (const uint8_t *)"v", 1, &err), SL_INVALID);
  cr_assert_eq(sl_kv_set(bucket, "k", 1, NULL, 4, &err), SL_INVALID);
  cr_assert_eq(sl_kv_get(NULL, "k", 1, &value, &value_len, &found, &err), SL_INVALID);
  cr_assert_eq(sl_kv_get(bucket, "k", 1, NULL, &value_len, &found, &err), SL_INVALID);
  cr_assert_eq(sl_kv_increment(bucket, NULL, 1, 1, &result, &err), SL_INVALID);
  cr_assert_eq(sl_kv_list_keys(bucket, NULL, NULL, &err), SL_INVALID);
  cr_assert_eq(sl_kv_registry_open(registry, "", "memory", &bucket, &err), SL_INVALID);
  cr_assert_eq(sl_kv_registry_open(registry, "n", NULL, &bucket, &err), SL_INVALID);
}
