/*
 * servers.c - real servers for tests (servers.h): spawn on a free loopback port in a
 * temporary folder, wait until the server answers its own protocol, stop by pid.
 *
 * Map: ports and sockets | spawning | readiness per kind | the public calls.
 */
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_BIN "/usr/lib/postgresql/15/bin"
#define START_TIMEOUT_MS 20000

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- ports and sockets ----------------------------------------------------------- */

int sl_test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
      getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

static int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool sl_test_port_open(int port) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  close(fd);
  return true;
}

/* Sends `request` (may be empty) and reads until the reply starts with `expect`, for up
 * to 1 s. Used to see that a server answers, not only that its port is open. */
static bool exchange(int port, const void *request, size_t request_len, const void *expect,
                     size_t expect_len) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  bool ok = request_len == 0 || write(fd, request, request_len) == (ssize_t)request_len;
  char reply[512];
  size_t got = 0;
  uint64_t deadline = now_ms() + 1000;
  while (ok && got < expect_len && now_ms() < deadline) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, reply + got, sizeof reply - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  return ok && got >= expect_len && memcmp(reply, expect, expect_len) == 0;
}

/* --- spawning -------------------------------------------------------------------- */

static bool write_file(const char *path, const char *fmt, ...) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  return fclose(f) == 0;
}

/* initdb and postgres refuse to run as root; tests running as root use this account. */
static const struct passwd *postgres_account(void) {
  if (geteuid() != 0) return NULL;
  const struct passwd *pw = getpwnam("postgres");
  return pw ? pw : getpwnam("nobody");
}

/* Runs argv with output appended to dir/server.log, dying with the test process. Returns
 * the pid, or -1. `as` (may be NULL) is the account to switch to first. */
static pid_t spawn(const char *dir, const struct passwd *as, char *const argv[]) {
  char log[192];
  snprintf(log, sizeof log, "%s/server.log", dir);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  setpgid(0, 0); /* a terminal's ^C goes to the test runner, which stops us by pid */
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  if (as && (setgid(as->pw_gid) != 0 || setuid(as->pw_uid) != 0)) _exit(126);
  execvp(argv[0], argv);
  _exit(127);
}

/* Runs argv to completion (initdb); true on exit 0. */
static bool run(const char *dir, const struct passwd *as, char *const argv[]) {
  pid_t pid = spawn(dir, as, argv);
  if (pid < 0) return false;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void reap(sl_test_server *server, int sig, int grace_ms) {
  if (server->pid <= 0) return;
  kill(server->pid, sig);
  uint64_t deadline = now_ms() + (uint64_t)grace_ms;
  int status;
  for (;;) {
    pid_t r = waitpid(server->pid, &status, WNOHANG);
    if (r == server->pid || (r < 0 && errno != EINTR)) break;
    if (now_ms() >= deadline) {
      kill(server->pid, SIGKILL);
      waitpid(server->pid, &status, 0);
      break;
    }
    usleep(10 * 1000);
  }
  server->pid = 0;
}

/* --- readiness per kind ---------------------------------------------------------- */

static bool answers(const sl_test_server *server) {
  switch (server->kind) {
  case SL_TEST_NATS: {
    /* The INFO line says JetStream is on once the server is ready for it. */
    int fd = connect_loopback(server->port);
    if (fd < 0) return false;
    char info[4096];
    size_t got = 0;
    uint64_t deadline = now_ms() + 1000;
    while (got < sizeof info - 1 && !memchr(info, '\n', got) && now_ms() < deadline) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = read(fd, info + got, sizeof info - 1 - got);
      if (n <= 0) break;
      got += (size_t)n;
    }
    close(fd);
    info[got] = '\0';
    return strncmp(info, "INFO ", 5) == 0 && strstr(info, "\"jetstream\":true");
  }
  case SL_TEST_MOSQUITTO: {
    /* MQTT 3.1.1 CONNECT with an empty client id and a clean session; CONNACK accepted. */
    static const unsigned char connect[] = {0x10, 0x0c, 0x00, 0x04, 'M',  'Q',  'T',
                                            'T',  0x04, 0x02, 0x00, 0x3c, 0x00, 0x00};
    static const unsigned char connack[] = {0x20, 0x02, 0x00, 0x00};
    return exchange(server->port, connect, sizeof connect, connack, sizeof connack);
  }
  case SL_TEST_REDIS:
    return exchange(server->port, "PING\r\n", 6, "+PONG", 5);
  case SL_TEST_POSTGRES: {
    char conninfo[192];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=sluice dbname=sluice",
             server->port);
    return PQping(conninfo) == PQPING_OK;
  }
  }
  return false;
}

/* --- starting each kind ---------------------------------------------------------- */

static const char *kind_name(sl_test_server_kind kind) {
  switch (kind) {
  case SL_TEST_NATS:
    return "nats-server";
  case SL_TEST_MOSQUITTO:
    return "mosquitto";
  case SL_TEST_REDIS:
    return "redis-server";
  case SL_TEST_POSTGRES:
    return "postgres";
  }
  return "?";
}

/* One-time preparation of the folder: config files, initdb. */
static bool prepare(sl_test_server *server) {
  char path[256];
  switch (server->kind) {
  case SL_TEST_NATS:
    return true;
  case SL_TEST_MOSQUITTO:
    snprintf(path, sizeof path, "%s/mosquitto.conf", server->dir);
    /* persistence keeps QoS 1 sessions across a broker restart, as a real deployment
     * would; max_inflight bounds unacknowledged QoS 1 messages per client. */
    /* Run as root, mosquitto drops to the `mosquitto` account, which cannot write the
     * persistence file into our folder; `user root` keeps it where it was started. */
    return write_file(path,
                      "%s"
                      "listener %d 127.0.0.1\n"
                      "allow_anonymous true\n"
                      "persistence true\n"
                      "persistence_location %s/\n"
                      "autosave_interval 1\n"
                      "max_queued_messages 100000\n"
                      "max_inflight_messages 100\n"
                      "log_dest stderr\n",
                      geteuid() == 0 ? "user root\n" : "", server->port, server->dir);
  case SL_TEST_REDIS:
    return true;
  case SL_TEST_POSTGRES: {
    const struct passwd *as = postgres_account();
    snprintf(path, sizeof path, "%s/data", server->dir);
    if (as && chown(server->dir, as->pw_uid, as->pw_gid) != 0) return false;
    char *initdb[] = {PG_BIN "/initdb", "-D",        path, "-U",   "sluice",
                      "--auth=trust",   "--no-sync", "-E", "UTF8", NULL};
    if (!run(server->dir, as, initdb)) return false;
    return true;
  }
  }
  return false;
}

static pid_t launch(sl_test_server *server) {
  char port[16], path[256], dir[160];
  snprintf(port, sizeof port, "%d", server->port);
  snprintf(dir, sizeof dir, "%s", server->dir);
  switch (server->kind) {
  case SL_TEST_NATS: {
    char *argv[] = {"nats-server", "-js", "-sd", dir, "-a", "127.0.0.1", "-p", port, NULL};
    return spawn(server->dir, NULL, argv);
  }
  case SL_TEST_MOSQUITTO: {
    snprintf(path, sizeof path, "%s/mosquitto.conf", server->dir);
    char *argv[] = {"mosquitto", "-c", path, NULL};
    return spawn(server->dir, NULL, argv);
  }
  case SL_TEST_REDIS: {
    /* appendfsync always: a restart keeps every acknowledged write, as tests expect. */
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    dir,
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--daemonize",
                    "no",
                    NULL};
    return spawn(server->dir, NULL, argv);
  }
  case SL_TEST_POSTGRES: {
    snprintf(path, sizeof path, "%s/data", server->dir);
    char *argv[] = {PG_BIN "/postgres",           "-D", path,        "-p", port, "-k", dir, "-c",
                    "listen_addresses=127.0.0.1", "-c", "fsync=off", NULL};
    return spawn(server->dir, postgres_account(), argv);
  }
  }
  return -1;
}

static bool wait_until_answers(sl_test_server *server) {
  uint64_t deadline = now_ms() + START_TIMEOUT_MS;
  while (now_ms() < deadline) {
    int status;
    if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
      server->pid = 0;
      fprintf(stderr, "%s exited while starting; see %s/server.log\n", kind_name(server->kind),
              server->dir);
      return false;
    }
    if (answers(server)) return true;
    usleep(20 * 1000);
  }
  fprintf(stderr, "%s did not answer on port %d within %d ms; see %s/server.log\n",
          kind_name(server->kind), server->port, START_TIMEOUT_MS, server->dir);
  reap(server, SIGKILL, 0);
  return false;
}

/* Postgres creates the `sluice` database once, after its first start. */
static bool create_database(sl_test_server *server) {
  char conninfo[192];
  snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=sluice dbname=postgres",
           server->port);
  PGconn *conn = PQconnectdb(conninfo);
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PGresult *res = PQexec(conn, "CREATE DATABASE sluice");
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "postgres: CREATE DATABASE: %s", PQerrorMessage(conn));
    PQclear(res);
  }
  PQfinish(conn);
  return ok;
}

/* --- the public calls ------------------------------------------------------------ */

bool sl_test_server_restart(sl_test_server *server) {
  if (server->pid > 0) reap(server, SIGTERM, 10000);
  server->pid = launch(server);
  if (server->pid < 0) {
    server->pid = 0;
    return false;
  }
  return wait_until_answers(server);
}

bool sl_test_server_start(sl_test_server *server, sl_test_server_kind kind) {
  memset(server, 0, sizeof *server);
  server->kind = kind;
  snprintf(server->dir, sizeof server->dir, "/tmp/sluice-%s-XXXXXX", kind_name(kind));
  if (!mkdtemp(server->dir)) return false;
  /* A free port can be taken between probing and binding; try a few. Mosquitto reads
   * its port from the config file, so that is written per attempt. */
  bool prepared = false;
  for (int attempt = 0; attempt < 3; attempt++) {
    server->port = sl_test_free_port();
    if (!prepared || kind == SL_TEST_MOSQUITTO) {
      if (!prepare(server)) {
        fprintf(stderr, "%s: preparing %s failed; see %s/server.log\n", kind_name(kind),
                server->dir, server->dir);
        return false;
      }
      prepared = true;
    }
    if (!sl_test_server_restart(server)) continue;
    switch (kind) {
    case SL_TEST_NATS:
      snprintf(server->url, sizeof server->url, "nats://127.0.0.1:%d", server->port);
      break;
    case SL_TEST_MOSQUITTO:
      snprintf(server->url, sizeof server->url, "mqtt://127.0.0.1:%d", server->port);
      break;
    case SL_TEST_REDIS:
      snprintf(server->url, sizeof server->url, "redis://127.0.0.1:%d", server->port);
      break;
    case SL_TEST_POSTGRES:
      if (!create_database(server)) return false;
      snprintf(server->url, sizeof server->url, "postgresql://sluice@127.0.0.1:%d/sluice",
               server->port);
      break;
    }
    return true;
  }
  return false;
}

void sl_test_server_kill(sl_test_server *server) { reap(server, SIGKILL, 0); }

void sl_test_server_stop(sl_test_server *server) {
  reap(server, SIGTERM, 10000);
  if (server->dir[0]) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", server->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", server->dir);
    server->dir[0] = '\0';
  }
}
