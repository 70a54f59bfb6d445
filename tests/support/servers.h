/*
 * servers.h - real broker and database servers for tests, on loopback.
 *
 * Each start function runs the real server (nats-server, mosquitto, redis-server,
 * PostgreSQL) on a free 127.0.0.1 port with its files in a fresh temporary folder,
 * and returns only once the server answers its own protocol (not merely once the port
 * listens). Servers are stopped by their process id, never by name, and die with the
 * test process (PR_SET_PDEATHSIG) if a test crashes.
 *
 * Kafka has no packaged broker: tests create librdkafka's mock cluster themselves
 * (rd_kafka_mock_cluster_new) in the test process, which outlives a killed host.
 */
#ifndef SL_TEST_SERVERS_H
#define SL_TEST_SERVERS_H

#include <stdbool.h>
#include <sys/types.h>

typedef enum sl_test_server_kind {
  SL_TEST_NATS,      /* nats-server -js: url is nats://127.0.0.1:PORT */
  SL_TEST_MOSQUITTO, /* mosquitto: url is mqtt://127.0.0.1:PORT */
  SL_TEST_REDIS,     /* redis-server: url is redis://127.0.0.1:PORT */
  SL_TEST_POSTGRES,  /* postgres: url is postgresql://sluice@127.0.0.1:PORT/sluice */
} sl_test_server_kind;

typedef struct sl_test_server {
  sl_test_server_kind kind;
  pid_t pid;     /* 0 when not running */
  int port;      /* kept across restarts */
  char dir[128]; /* the server's files and its log (dir/server.log); kept across restarts */
  char url[192]; /* how a client reaches it; see the kinds above */
} sl_test_server;

/* Starts a server of `kind` on a free loopback port. False (with a message on stderr
 * naming the log file) when it did not answer within 20 s. */
bool sl_test_server_start(sl_test_server *server, sl_test_server_kind kind);

/* SIGKILL by pid and reap; the folder (and so the data) stays for a restart. */
void sl_test_server_kill(sl_test_server *server);

/* Starts the server again on the same port with the same data (after kill or stop). */
bool sl_test_server_restart(sl_test_server *server);

/* SIGTERM by pid, SIGKILL after 10 s, reap, and remove the folder. Safe to call twice. */
void sl_test_server_stop(sl_test_server *server);

/* A free TCP port on 127.0.0.1 right now (bound to port 0, then closed). */
int sl_test_free_port(void);

/* True when a TCP connection to 127.0.0.1:port succeeds. */
bool sl_test_port_open(int port);

#endif
