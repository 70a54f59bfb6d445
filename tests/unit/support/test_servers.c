/*
 * test_servers.c - the test support every broker test stands on: each real server
 * starts, answers, keeps its data over a kill and restart, and is gone after stop; and
 * the numbered-event checker counts what it should.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include "../../support/seqcheck.h"
#include "../../support/servers.h"

static void start_and_stop(sl_test_server_kind kind, const char *scheme) {
  sl_test_server s;
  cr_assert(sl_test_server_start(&s, kind));
  cr_assert_gt(s.pid, 0);
  cr_assert(strncmp(s.url, scheme, strlen(scheme)) == 0, "url %s", s.url);
  cr_assert(sl_test_port_open(s.port));
  pid_t pid = s.pid;
  sl_test_server_stop(&s);
  cr_assert_eq(s.pid, 0);
  cr_assert_eq(kill(pid, 0), -1, "the server process is gone");
  cr_assert_not(sl_test_port_open(s.port));
}

Test(servers, nats_starts_with_jetstream_and_stops) { start_and_stop(SL_TEST_NATS, "nats://"); }
Test(servers, mosquitto_starts_and_stops) { start_and_stop(SL_TEST_MOSQUITTO, "mqtt://"); }
Test(servers, postgres_starts_and_stops) { start_and_stop(SL_TEST_POSTGRES, "postgresql://"); }

Test(servers, redis_keeps_its_data_across_kill_and_restart) {
  sl_test_server s;
  cr_assert(sl_test_server_start(&s, SL_TEST_REDIS));
  redisContext *c = redisConnect("127.0.0.1", s.port);
  cr_assert(c && !c->err);
  redisReply *r = redisCommand(c, "SET k v");
  freeReplyObject(r);
  redisFree(c);
  sl_test_server_kill(&s);
  cr_assert_not(sl_test_port_open(s.port));
  cr_assert(sl_test_server_restart(&s));
  c = redisConnect("127.0.0.1", s.port);
  cr_assert(c && !c->err);
  r = redisCommand(c, "GET k");
  cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "v") == 0);
  freeReplyObject(r);
  redisFree(c);
  sl_test_server_stop(&s);
}

Test(seqcheck, counts_missing_duplicates_and_reordering) {
  sl_seqcheck check;
  sl_seqcheck_init(&check, 6);
  sl_seqcheck_add_lines(&check, "1\n2\n4 padding\n3\n4\n6\nx\n99\n");
  cr_assert_eq(sl_seqcheck_missing(&check), 1); /* 5 */
  cr_assert_eq(check.duplicates, 1);            /* 4 twice */
  cr_assert_eq(check.reordered, 1);             /* 3 after 4 */
  cr_assert_eq(check.unparsable, 1);
  cr_assert_eq(check.out_of_range, 1);
  char buf[256];
  cr_assert(strstr(sl_seqcheck_report(&check, buf, sizeof buf), "missing 1 (first: 5)"), "%s", buf);
  sl_seqcheck_destroy(&check);
}
