/*
 * test_kv_redis.c - the Redis key-value backend when the server or the network misbehaves,
 * and what the spec selects: a real redis-server this test starts, kills, pauses and
 * restarts by pid (tests/support/servers.h), and a fake peer that answers junk.
 *
 *   failures       killed: SL_IO at once, then working again after the restart with the
 *                  same bucket; paused (SIGSTOP): SL_IO within the timeout; nothing
 *                  listening: SL_IO at once; junk and wrong-type replies: SL_IO, no crash
 *   spec           prefixes keep buckets apart (glob characters in them too), /DB selects
 *                  the database, a password is sent and never shown
 *   types          a key holding a list is SL_INVALID, and the connection stays usable
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../support/servers.h"
#include "caps/kv.h"

static sl_test_server server;
static bool server_paused;
static sl_kv_registry *registry;
static redisContext *client; /* the test's own connection, to look behind the backend */

static void setup(void) {
  cr_assert(sl_test_server_start(&server, SL_TEST_REDIS), "redis-server did not start");
  client = redisConnectWithTimeout("127.0.0.1", server.port, (struct timeval){5, 0});
  cr_assert(client && !client->err);
  redisSetTimeout(client, (struct timeval){5, 0});
  redisReply *reply = redisCommand(client, "CONFIG SET appendfsync no");
  cr_assert(reply && reply->type == REDIS_REPLY_STATUS);
  freeReplyObject(reply);
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_new(NULL, &registry, &err), SL_OK);
}

static void stop_fake_peer(void);

static void teardown(void) {
  sl_kv_registry_destroy(registry);
  registry = NULL;
  if (client) redisFree(client);
  client = NULL;
  if (server_paused) kill(server.pid, SIGCONT);
  server_paused = false;
  sl_test_server_stop(&server);
  stop_fake_peer();
}

TestSuite(kv_redis, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Opens `name` on server.url + `tail` ("/0?prefix=a:"). */
static sl_kv_bucket *open_tail(const char *name, const char *tail) {
  char spec[256];
  snprintf(spec, sizeof spec, "%s%s", server.url, tail);
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_open(registry, name, spec, &bucket, &err), SL_OK, "%s", err.message);
  return bucket;
}

static sl_status try_set(sl_kv_bucket *bucket, const char *key, const char *value, sl_error *err) {
  return sl_kv_set(bucket, key, strlen(key), (const uint8_t *)value, strlen(value), err);
}

static void set_text(sl_kv_bucket *bucket, const char *key, const char *value) {
  sl_error err = {{0}};
  cr_assert_eq(try_set(bucket, key, value, &err), SL_OK, "set: %s", err.message);
}

static void expect_text(sl_kv_bucket *bucket, const char *key, const char *expected) {
  uint8_t *value = NULL;
  size_t len = 0;
  bool found = false;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_get(bucket, key, strlen(key), &value, &len, &found, &err), SL_OK, "get: %s",
               err.message);
  if (!expected) {
    cr_assert_not(found, "'%s' should be absent", key);
    return;
  }
  cr_assert(found, "'%s' should be there", key);
  cr_assert_eq(len, strlen(expected));
  cr_assert(memcmp(value, expected, len) == 0, "'%s' holds '%.*s'", key, (int)len, value);
  free(value);
}

/* The keys list-keys returns, all pages, joined as "a,b,c" in sorted order. */
static int compare_text(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void listed(sl_kv_bucket *bucket, char *out, size_t cap) {
  char *keys[64];
  size_t count = 0;
  char *cursor = NULL;
  do {
    sl_kv_key_page page;
    sl_error err = {{0}};
    cr_assert_eq(sl_kv_list_keys(bucket, cursor, &page, &err), SL_OK, "%s", err.message);
    free(cursor);
    cursor = page.cursor ? strdup(page.cursor) : NULL;
    for (size_t i = 0; i < page.count && count < 64; i++) keys[count++] = strdup(page.keys[i]);
    sl_kv_key_page_free(&page);
  } while (cursor);
  qsort(keys, count, sizeof *keys, compare_text);
  out[0] = '\0';
  for (size_t i = 0; i < count; i++) {
    if (i) strncat(out, ",", cap - strlen(out) - 1);
    strncat(out, keys[i], cap - strlen(out) - 1);
    free(keys[i]);
  }
}

/* Runs a command on the test's own connection; the caller frees the reply. */
static redisReply *raw(const char *format, ...) {
  va_list args;
  va_start(args, format);
  redisReply *reply = redisvCommand(client, format, args);
  va_end(args);
  cr_assert_not_null(reply, "%s: %s", format, client->errstr);
  return reply;
}

/* Asserts `call` fails with SL_IO in under `limit_ms`, naming the bucket and the server. */
#define EXPECT_IO_WITHIN(limit_ms, call)                                                           \
  do {                                                                                             \
    sl_error err_ = {{0}};                                                                         \
    uint64_t began_ = now_ms();                                                                    \
    sl_status st_ = (call);                                                                        \
    uint64_t took_ = now_ms() - began_;                                                            \
    cr_assert_eq(st_, SL_IO, "%s: %s, expected SL_IO", #call, sl_status_name(st_));                \
    cr_assert_lt(took_, (limit_ms), "%s took %llu ms", #call, (unsigned long long)took_);          \
    char server_[64];                                                                              \
    snprintf(server_, sizeof server_, "127.0.0.1:%d", server.port);                                \
    cr_assert(strstr(err_.message, "'counter'") && strstr(err_.message, server_),                  \
              "the message names the bucket and the server: %s", err_.message);                    \
  } while (0)

/* ---- failures ----------------------------------------------------------------------------- */

Test(kv_redis, killed_server_fails_fast_then_works_again_after_restart) {
  sl_kv_bucket *bucket = open_tail("counter", "/0");
  int64_t value = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_increment(bucket, "n", 1, 1, &value, &err), SL_OK, "%s", err.message);
  sl_test_server_kill(&server);

  /* The open connection breaks, then every new one is refused: each call fails fast. */
  uint8_t *got;
  size_t got_len;
  bool found, there;
  sl_kv_key_page page;
  EXPECT_IO_WITHIN(2000, sl_kv_increment(bucket, "n", 1, 1, &value, &err_));
  EXPECT_IO_WITHIN(2000, sl_kv_get(bucket, "n", 1, &got, &got_len, &found, &err_));
  EXPECT_IO_WITHIN(2000, try_set(bucket, "n", "1", &err_));
  EXPECT_IO_WITHIN(2000, sl_kv_exists(bucket, "n", 1, &there, &err_));
  EXPECT_IO_WITHIN(2000, sl_kv_delete(bucket, "n", 1, &err_));
  EXPECT_IO_WITHIN(2000, sl_kv_list_keys(bucket, NULL, &page, &err_));
  cr_assert_eq(page.count, 0);

  cr_assert(sl_test_server_restart(&server), "redis-server did not restart");
  /* The same bucket, no new registry: the next call connects again. */
  cr_assert_eq(sl_kv_increment(bucket, "after", 5, 7, &value, &err), SL_OK, "%s", err.message);
  cr_assert_eq(value, 7);
  set_text(bucket, "k", "v");
  expect_text(bucket, "k", "v");
}

Test(kv_redis, a_restart_between_calls_costs_at_most_one_failed_call) {
  sl_kv_bucket *bucket = open_tail("counter", "/0");
  set_text(bucket, "k", "v");
  sl_test_server_kill(&server);
  cr_assert(sl_test_server_restart(&server), "redis-server did not restart");
  /* The connection the bucket holds died with the old process: the first call may find
   * that out (SL_IO); the one after it must work. */
  sl_error err = {{0}};
  sl_status first = try_set(bucket, "k", "again", &err);
  cr_assert(first == SL_OK || first == SL_IO, "%s", sl_status_name(first));
  cr_assert_eq(try_set(bucket, "k", "again", &err), SL_OK, "%s", err.message);
  expect_text(bucket, "k", "again");
}

Test(kv_redis, a_large_write_to_a_dead_server_is_an_error_not_sigpipe) {
  /* A write bigger than the socket buffers to a connection whose server died: the kernel
   * answers the first part with a reset, and the next write(2) raises SIGPIPE, which
   * would end the process were it not blocked around the command. */
  struct sigaction default_action = {.sa_handler = SIG_DFL}, saved;
  sigaction(SIGPIPE, &default_action, &saved);
  sl_kv_bucket *bucket = open_tail("counter", "/0");
  set_text(bucket, "k", "v");
  sl_test_server_kill(&server);
  size_t size = 8u << 20;
  uint8_t *big = calloc(1, size);
  cr_assert_not_null(big);
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_set(bucket, "big", 3, big, size, &err), SL_IO);
  cr_assert_eq(sl_kv_set(bucket, "big", 3, big, size, &err), SL_IO, "refused now");
  free(big);
  sigset_t pending;
  sigpending(&pending);
  cr_assert_not(sigismember(&pending, SIGPIPE), "no SIGPIPE left pending");
  sigaction(SIGPIPE, &saved, NULL);
}

Test(kv_redis, paused_server_times_out_within_the_command_timeout) {
  sl_kv_bucket *bucket = open_tail("counter", "/0");
  set_text(bucket, "k", "v");
  cr_assert_eq(kill(server.pid, SIGSTOP), 0);
  server_paused = true;
  uint8_t *got;
  size_t got_len;
  bool found;
  uint64_t began = now_ms();
  EXPECT_IO_WITHIN(2000, sl_kv_get(bucket, "k", 1, &got, &got_len, &found, &err_));
  cr_assert_geq(now_ms() - began, 400, "it waited for the 500 ms timeout");
  /* Reconnecting to a paused server: the kernel accepts, the command times out. (A
   * read: a write the server finds in its socket once it runs again would still apply.) */
  bool there;
  EXPECT_IO_WITHIN(2000, sl_kv_exists(bucket, "k", 1, &there, &err_));
  cr_assert_eq(kill(server.pid, SIGCONT), 0);
  server_paused = false;
  expect_text(bucket, "k", "v");
}

Test(kv_redis, nothing_listening_fails_fast) {
  int port = sl_test_free_port();
  char spec[96];
  snprintf(spec, sizeof spec, "redis://127.0.0.1:%d/0", port);
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  /* Opening does not connect: the first operation does. */
  cr_assert_eq(sl_kv_registry_open(registry, "nowhere", spec, &bucket, &err), SL_OK);
  uint64_t began = now_ms();
  cr_assert_eq(try_set(bucket, "k", "v", &err), SL_IO);
  cr_assert_lt(now_ms() - began, 1000);
  cr_assert(strstr(err.message, "'nowhere'") && strstr(err.message, spec), "%s", err.message);
}

/* ---- a fake peer that answers junk --------------------------------------------------------- */

/* Accepts connections on a loopback port; to each request it answers `reply` (set by the
 * test) and closes the connection. */
static struct {
  int listener;
  pthread_t thread;
  atomic_bool stop;
  atomic_int requests;
  char reply[256];
  size_t reply_len;
  pthread_mutex_t lock;
} fake = {.listener = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void *serve_junk(void *unused) {
  while (!atomic_load(&fake.stop)) {
    struct pollfd wait = {.fd = fake.listener, .events = POLLIN};
    if (poll(&wait, 1, 50) <= 0) continue;
    int peer = accept(fake.listener, NULL, NULL);
    if (peer < 0) continue;
    char request[4096];
    struct pollfd readable = {.fd = peer, .events = POLLIN};
    if (poll(&readable, 1, 2000) > 0 && read(peer, request, sizeof request) > 0) {
      atomic_fetch_add(&fake.requests, 1);
      pthread_mutex_lock(&fake.lock);
      ssize_t sent = send(peer, fake.reply, fake.reply_len, MSG_NOSIGNAL);
      pthread_mutex_unlock(&fake.lock);
      (void)sent;
    }
    close(peer);
  }
  return NULL;
}

static int start_fake_peer(void) {
  fake.listener = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fake.listener, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fake.listener, (struct sockaddr *)&address, sizeof address), 0);
  cr_assert_eq(listen(fake.listener, 8), 0);
  socklen_t len = sizeof address;
  getsockname(fake.listener, (struct sockaddr *)&address, &len);
  atomic_store(&fake.stop, false);
  cr_assert_eq(pthread_create(&fake.thread, NULL, serve_junk, NULL), 0);
  return ntohs(address.sin_port);
}

static void stop_fake_peer(void) {
  if (fake.listener < 0) return;
  atomic_store(&fake.stop, true);
  pthread_join(fake.thread, NULL);
  close(fake.listener);
  fake.listener = -1;
}

static void fake_answers(const char *reply, size_t len) {
  pthread_mutex_lock(&fake.lock);
  memcpy(fake.reply, reply, len);
  fake.reply_len = len;
  pthread_mutex_unlock(&fake.lock);
}

Test(kv_redis, junk_and_wrong_type_replies_are_io_errors) {
  int port = start_fake_peer();
  char spec[96];
  snprintf(spec, sizeof spec, "redis://127.0.0.1:%d/0?prefix=p:", port);
  sl_kv_bucket *bucket = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_open(registry, "junk", spec, &bucket, &err), SL_OK);
  uint8_t *got = NULL;
  size_t got_len = 0;
  bool found = false;
  int64_t value = 0;
  sl_kv_key_page page;

  static const struct {
    const char *reply;
    const char *call;
  } cases[] = {
      {"+OK\r\n", "get"},                               /* a status where a bulk belongs */
      {":5\r\n", "set"},                                /* an integer where OK belongs */
      {"$3\r\nabc\r\n", "increment"},                   /* a bulk where an integer belongs */
      {"*1\r\n:1\r\n", "exists"},                       /* an array */
      {"this is not redis\r\n", "get"},                 /* a protocol error */
      {"$10\r\nab", "get"},                             /* cut short, then closed */
      {"", "set"},                                      /* closed without a word */
      {"*2\r\n$1\r\n0\r\n:3\r\n", "list"},              /* SCAN's keys not an array */
      {"*2\r\n$2\r\nx1\r\n*0\r\n", "list"},             /* SCAN's cursor not a number */
      {"*2\r\n$1\r\n0\r\n*1\r\n$3\r\nq:k\r\n", "list"}, /* a key outside the prefix */
      {"*3\r\n$1\r\n0\r\n*0\r\n*0\r\n", "list"},        /* three elements */
      {"$-1\r\n", "increment"},                         /* nil for INCRBY */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fake_answers(cases[i].reply, strlen(cases[i].reply));
    sl_status st = SL_OK;
    uint64_t began = now_ms();
    if (strcmp(cases[i].call, "get") == 0)
      st = sl_kv_get(bucket, "k", 1, &got, &got_len, &found, &err);
    else if (strcmp(cases[i].call, "set") == 0)
      st = try_set(bucket, "k", "v", &err);
    else if (strcmp(cases[i].call, "increment") == 0)
      st = sl_kv_increment(bucket, "k", 1, 1, &value, &err);
    else if (strcmp(cases[i].call, "exists") == 0)
      st = sl_kv_exists(bucket, "k", 1, &found, &err);
    else
      st = sl_kv_list_keys(bucket, NULL, &page, &err);
    cr_assert_eq(st, SL_IO, "case %zu (%s answered %.20s): %s", i, cases[i].call, cases[i].reply,
                 sl_status_name(st));
    cr_assert_lt(now_ms() - began, 2000, "case %zu", i);
    cr_assert(strstr(err.message, "'junk'"), "%s", err.message);
    cr_assert_null(got);
    cr_assert_not(found);
    cr_assert_eq(value, 0);
  }
  cr_assert_eq(atomic_load(&fake.requests), (int)(sizeof cases / sizeof *cases),
               "each case reached the peer once");
  /* A well-formed answer after all that: the bucket recovers. */
  fake_answers("$2\r\nok\r\n", 8);
  cr_assert_eq(sl_kv_get(bucket, "k", 1, &got, &got_len, &found, &err), SL_OK, "%s", err.message);
  cr_assert(found && got_len == 2 && memcmp(got, "ok", 2) == 0);
  free(got);
}

/* ---- spec ----------------------------------------------------------------------------------- */

Test(kv_redis, prefixes_keep_buckets_apart) {
  sl_kv_bucket *a = open_tail("a", "/0?prefix=app-a:");
  sl_kv_bucket *b = open_tail("b", "/0?prefix=app-b:");
  sl_kv_bucket *bare = open_tail("bare", "/0");
  set_text(a, "k", "from a");
  set_text(b, "k", "from b");
  set_text(a, "only-a", "1");
  expect_text(a, "k", "from a");
  expect_text(b, "k", "from b");
  expect_text(b, "only-a", NULL);
  char keys[512];
  listed(a, keys, sizeof keys);
  cr_assert_str_eq(keys, "k,only-a", "the prefix is stripped from listed keys");
  listed(bare, keys, sizeof keys);
  cr_assert_str_eq(keys, "app-a:k,app-a:only-a,app-b:k");
  /* In Redis, the key is the prefix, then the key. */
  redisReply *reply = raw("GET app-a:k");
  cr_assert(reply->type == REDIS_REPLY_STRING && strcmp(reply->str, "from a") == 0);
  freeReplyObject(reply);

  /* Glob characters in a prefix are literal: "p*" does not list "pq"'s keys, nor "p?"'s. */
  sl_kv_bucket *star = open_tail("star", "/0?prefix=p*");
  sl_kv_bucket *pq = open_tail("pq", "/0?prefix=pq");
  sl_kv_bucket *question = open_tail("question", "/0?prefix=p%3F%5B%5D%5C");
  set_text(star, "s", "1");
  set_text(pq, "k", "1");
  set_text(question, "x", "1");
  set_text(bare, "p?[]\\y", "1"); /* under question's prefix, set from outside */
  listed(star, keys, sizeof keys);
  cr_assert_str_eq(keys, "s");
  listed(pq, keys, sizeof keys);
  cr_assert_str_eq(keys, "k");
  listed(question, keys, sizeof keys);
  cr_assert_str_eq(keys, "x,y");
}

Test(kv_redis, the_database_number_selects_the_database) {
  sl_kv_bucket *one = open_tail("one", "/1");
  sl_kv_bucket *two = open_tail("two", "/2");
  set_text(one, "k", "in 1");
  set_text(two, "k", "in 2");
  expect_text(one, "k", "in 1");
  expect_text(two, "k", "in 2");
  redisReply *reply = raw("SELECT 2");
  freeReplyObject(reply);
  reply = raw("GET k");
  cr_assert(reply->type == REDIS_REPLY_STRING && strcmp(reply->str, "in 2") == 0);
  freeReplyObject(reply);
  reply = raw("SELECT 0");
  freeReplyObject(reply);
  reply = raw("EXISTS k");
  cr_assert_eq(reply->integer, 0, "nothing in database 0");
  freeReplyObject(reply);
  /* A database the server does not have: the connection is refused with a reason. */
  sl_kv_bucket *far = open_tail("far", "/999");
  sl_error err = {{0}};
  cr_assert_eq(try_set(far, "k", "v", &err), SL_IO);
  cr_assert(strstr(err.message, "SELECT"), "%s", err.message);
}

Test(kv_redis, a_password_is_sent_and_never_shown) {
  redisReply *reply = raw("CONFIG SET requirepass s3cret-pw");
  cr_assert_eq(reply->type, REDIS_REPLY_STATUS);
  freeReplyObject(reply);

  char spec[192];
  snprintf(spec, sizeof spec, "redis://:s3cret-pw@127.0.0.1:%d/0", server.port);
  sl_error err = {{0}};
  sl_kv_bucket *right = NULL;
  cr_assert_eq(sl_kv_registry_open(registry, "right", spec, &right, &err), SL_OK);
  set_text(right, "k", "v");
  expect_text(right, "k", "v");
  cr_assert_null(strstr(sl_kv_bucket_spec(right), "s3cret"), "%s", sl_kv_bucket_spec(right));

  snprintf(spec, sizeof spec, "redis://:wrong-pw@127.0.0.1:%d/0", server.port);
  sl_kv_bucket *wrong = NULL;
  cr_assert_eq(sl_kv_registry_open(registry, "wrong", spec, &wrong, &err), SL_OK);
  cr_assert_eq(try_set(wrong, "k", "v", &err), SL_IO);
  cr_assert(strstr(err.message, "AUTH"), "%s", err.message);
  cr_assert_null(strstr(err.message, "wrong-pw"), "%s", err.message);
  cr_assert(strstr(err.message, "***"), "%s", err.message);

  sl_kv_bucket *none = open_tail("none", "/0");
  cr_assert_eq(try_set(none, "k", "v", &err), SL_IO, "NOAUTH is the server's refusal");
  cr_assert(strstr(err.message, "NOAUTH"), "%s", err.message);
}

/* ---- types --------------------------------------------------------------------------------- */

Test(kv_redis, a_key_of_another_redis_type_is_invalid) {
  sl_kv_bucket *bucket = open_tail("typed", "/0");
  redisReply *reply = raw("RPUSH alist x");
  freeReplyObject(reply);
  uint8_t *got = NULL;
  size_t got_len;
  bool found;
  int64_t value;
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_get(bucket, "alist", 5, &got, &got_len, &found, &err), SL_INVALID);
  cr_assert(strstr(err.message, "WRONGTYPE") && strstr(err.message, "'typed'"), "%s", err.message);
  cr_assert_eq(sl_kv_increment(bucket, "alist", 5, 1, &value, &err), SL_INVALID);
  /* An error reply is not a broken connection: the next call works on it. */
  set_text(bucket, "k", "v");
  expect_text(bucket, "k", "v");
  reply = raw("INFO clients");
  cr_assert(strstr(reply->str, "connected_clients:2\r\n"),
            "one connection for the bucket, one for the test: %s", reply->str);
  freeReplyObject(reply);
}
