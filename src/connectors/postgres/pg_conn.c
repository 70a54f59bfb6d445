/*
 * pg_conn.c - one libpq connection in non-blocking mode (pg_conn.h).
 *
 * libpq's blocking calls can wait for ever on a server that vanished without closing
 * the socket, and nothing could interrupt them from another thread. Here every wait is
 * a poll() on the socket plus an eventfd that stop() makes readable, with a deadline of
 * `timeout_ms` per step (sending, then each answer).
 *
 * Sections: setup - waiting - connecting - statements - errors.
 */
#include "connectors/postgres/pg_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* COPY data goes to libpq in pieces of this size. */
#define COPY_PIECE (64 * 1024)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- setup ------------------------------------------------------------------------- */

sl_status sl__pg_conn_init(sl_pg_conn *pg, uint64_t timeout_ms, sl_error *err) {
  pg->conn = NULL;
  pg->timeout_ms = timeout_ms;
  pg->on_notice = NULL;
  pg->notice_user = NULL;
  atomic_init(&pg->stopped, false);
  pg->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (pg->wake_fd < 0) return sl_error_set(err, SL_IO, "eventfd: %s", strerror(errno));
  return SL_OK;
}

void sl__pg_conn_close(sl_pg_conn *pg) {
  if (pg->conn) PQfinish(pg->conn);
  pg->conn = NULL;
}

void sl__pg_conn_destroy(sl_pg_conn *pg) {
  sl__pg_conn_close(pg);
  if (pg->wake_fd >= 0) close(pg->wake_fd);
  pg->wake_fd = -1;
}

void sl__pg_conn_stop(sl_pg_conn *pg) {
  atomic_store(&pg->stopped, true);
  uint64_t one = 1;
  ssize_t ignored = write(pg->wake_fd, &one, sizeof one); /* never read: stays readable */
  (void)ignored;
}

void sl__pg_one_line(const char *message, char *out, size_t size) {
  size_t n = 0;
  for (const char *c = message ? message : ""; *c && n + 1 < size; c++) {
    char ch = *c == '\n' || *c == '\t' || *c == '\r' ? ' ' : *c;
    if (ch == ' ' && (n == 0 || out[n - 1] == ' ')) continue; /* no runs of blanks */
    out[n++] = ch;
  }
  while (n > 0 && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

/* Closes the connection and says why, as SL_AGAIN (or SL_CLOSED when stopping): `what`
 * (may be NULL) followed by libpq's message. */
static sl_status lost(sl_pg_conn *pg, const char *what, sl_error *err) {
  char reason[512];
  sl__pg_one_line(pg->conn ? PQerrorMessage(pg->conn) : "", reason, sizeof reason);
  sl__pg_conn_close(pg);
  if (atomic_load(&pg->stopped)) return sl_error_set(err, SL_CLOSED, "stopped");
  if (!what) return sl_error_set(err, SL_AGAIN, "%s", reason[0] ? reason : "no reason given");
  return sl_error_set(err, SL_AGAIN, "%s%s%s", what, reason[0] ? ": " : "", reason);
}

/* ---- waiting ----------------------------------------------------------------------- */

/*
 * Waits until the socket is ready for `events` (POLLIN, POLLOUT), `deadline` passes or
 * stop is requested. *ready gets the socket's revents. A timeout closes the connection.
 */
static sl_status wait_socket(sl_pg_conn *pg, short events, uint64_t deadline, uint64_t budget_ms,
                             short *ready, sl_error *err) {
  *ready = 0;
  for (;;) {
    if (atomic_load(&pg->stopped)) {
      sl__pg_conn_close(pg);
      return sl_error_set(err, SL_CLOSED, "stopped");
    }
    int fd = PQsocket(pg->conn);
    if (fd < 0) return lost(pg, "the connection is gone", err);
    uint64_t now = now_ms();
    if (now >= deadline) {
      sl__pg_conn_close(pg);
      return sl_error_set(err, SL_AGAIN, "the server did not answer within %llu ms",
                          (unsigned long long)budget_ms);
    }
    uint64_t left = deadline - now;
    struct pollfd fds[2] = {{.fd = fd, .events = events}, {.fd = pg->wake_fd, .events = POLLIN}};
    int n = poll(fds, 2, left > 60000 ? 60000 : (int)left);
    if (n < 0 && errno != EINTR) return lost(pg, "poll failed", err);
    if (n <= 0) continue;
    if (fds[1].revents) continue; /* stopped: said at the top of the loop */
    if (fds[0].revents) {
      *ready = fds[0].revents;
      return SL_OK;
    }
  }
}

/* Sends whatever libpq holds in its output buffer, reading answers meanwhile. */
static sl_status flush_output(sl_pg_conn *pg, sl_error *err) {
  uint64_t deadline = now_ms() + pg->timeout_ms;
  for (;;) {
    int pending = PQflush(pg->conn);
    if (pending == 0) return SL_OK;
    if (pending < 0) return lost(pg, "sending to the server failed", err);
    short ready;
    sl_status st = wait_socket(pg, POLLOUT | POLLIN, deadline, pg->timeout_ms, &ready, err);
    if (st != SL_OK) return st;
    if ((ready & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(pg->conn))
      return lost(pg, "the connection broke", err);
  }
}

/* The next result of the statement running, NULL once all were read. */
static sl_status next_result(sl_pg_conn *pg, PGresult **res, sl_error *err) {
  *res = NULL;
  uint64_t deadline = now_ms() + pg->timeout_ms;
  for (;;) {
    /* A result that arrived just before the connection broke still counts: a COMMIT
     * answered is a COMMIT done. */
    bool alive = PQconsumeInput(pg->conn);
    if (!PQisBusy(pg->conn)) {
      *res = PQgetResult(pg->conn);
      return SL_OK;
    }
    if (!alive) return lost(pg, "the connection broke", err);
    short ready;
    sl_status st = wait_socket(pg, POLLIN, deadline, pg->timeout_ms, &ready, err);
    if (st != SL_OK) return st;
  }
}

/* ---- connecting -------------------------------------------------------------------- */

static void on_notice(void *arg, const PGresult *res) {
  sl_pg_conn *pg = arg;
  char line[1024];
  sl__pg_one_line(PQresultErrorMessage(res), line, sizeof line);
  const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  bool warning = severity && strcmp(severity, "WARNING") == 0;
  if (pg->on_notice && line[0]) pg->on_notice(pg->notice_user, warning, line);
}

sl_status sl__pg_connect(sl_pg_conn *pg, const char *const *keys, const char *const *values,
                         uint64_t timeout_ms, sl_error *err) {
  sl__pg_conn_close(pg);
  if (atomic_load(&pg->stopped)) return sl_error_set(err, SL_CLOSED, "stopped");
  pg->conn = PQconnectStartParams(keys, values, 1);
  if (!pg->conn) return sl_error_set(err, SL_NOMEM, "out of memory");
  if (PQstatus(pg->conn) == CONNECTION_BAD) return lost(pg, NULL, err);
  PQsetNoticeReceiver(pg->conn, on_notice, pg);
  uint64_t deadline = now_ms() + timeout_ms;
  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
  for (;;) {
    if (polling == PGRES_POLLING_OK) break;
    if (polling == PGRES_POLLING_FAILED) return lost(pg, NULL, err);
    short ready;
    sl_status st = wait_socket(pg, polling == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline,
                               timeout_ms, &ready, err);
    if (st != SL_OK) return st;
    polling = PQconnectPoll(pg->conn);
  }
  if (PQsetnonblocking(pg->conn, 1) != 0) return lost(pg, "cannot use non-blocking mode", err);
  return SL_OK;
}

/* ---- statements -------------------------------------------------------------------- */

static bool is_error(const PGresult *res) {
  ExecStatusType status = PQresultStatus(res);
  return status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE;
}

/* Reads every result of the statement sent and keeps the first error, or else the last
 * result; stops early at COPY_IN (the server waits for data). */
static sl_status collect(sl_pg_conn *pg, PGresult **out, sl_error *err) {
  PGresult *kept = NULL;
  for (;;) {
    PGresult *res;
    sl_status st = next_result(pg, &res, err);
    if (st != SL_OK) {
      PQclear(kept);
      return st;
    }
    if (!res) break;
    if (PQresultStatus(res) == PGRES_COPY_IN) {
      PQclear(kept);
      *out = res;
      return SL_OK;
    }
    if (kept && is_error(kept)) {
      PQclear(res);
    } else {
      PQclear(kept);
      kept = res;
    }
  }
  *out = kept;
  return SL_OK;
}

/* Turns a finished statement's result into an outcome. */
static sl_status judge(sl_pg_conn *pg, PGresult *res, PGresult **out, sl_error *err) {
  ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    if (out)
      *out = res;
    else
      PQclear(res);
    return SL_OK;
  }
  char reason[768];
  sl__pg_one_line(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL, reason,
                  sizeof reason);
  if (!reason[0]) sl__pg_one_line(pg->conn ? PQerrorMessage(pg->conn) : "", reason, sizeof reason);
  const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  /* No SQLSTATE: libpq's own failure (the connection broke), or an answer it could not
   * understand; either way this connection is not to be trusted again. */
  if (!sqlstate || PQstatus(pg->conn) != CONNECTION_OK || sl__pg_transient(sqlstate)) {
    sl_error_set(err, SL_AGAIN, "%s%s%s%s", reason[0] ? reason : "the connection broke",
                 sqlstate ? " (SQLSTATE " : "", sqlstate ? sqlstate : "", sqlstate ? ")" : "");
    PQclear(res);
    sl__pg_conn_close(pg);
    return SL_AGAIN;
  }
  sl_error_set(err, SL_IO, "%s (SQLSTATE %s)", reason, sqlstate);
  if (out)
    *out = res;
  else
    PQclear(res);
  return SL_IO;
}

sl_status sl__pg_exec(sl_pg_conn *pg, const char *sql, int nparams, const char *const *params,
                      PGresult **res, sl_error *err) {
  if (res) *res = NULL;
  if (atomic_load(&pg->stopped)) {
    sl__pg_conn_close(pg);
    return sl_error_set(err, SL_CLOSED, "stopped");
  }
  if (!pg->conn) return sl_error_set(err, SL_AGAIN, "not connected");
  int sent = nparams > 0 ? PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                         : PQsendQuery(pg->conn, sql);
  if (!sent) return lost(pg, "sending a statement failed", err);
  sl_status st = flush_output(pg, err);
  PGresult *last = NULL;
  if (st == SL_OK) st = collect(pg, &last, err);
  if (st != SL_OK) return st;
  return judge(pg, last, res, err);
}

sl_status sl__pg_copy(sl_pg_conn *pg, const char *sql, const char *data, size_t len, PGresult **res,
                      sl_error *err) {
  if (res) *res = NULL;
  if (atomic_load(&pg->stopped)) {
    sl__pg_conn_close(pg);
    return sl_error_set(err, SL_CLOSED, "stopped");
  }
  if (!pg->conn) return sl_error_set(err, SL_AGAIN, "not connected");
  if (!PQsendQuery(pg->conn, sql)) return lost(pg, "sending COPY failed", err);
  sl_status st = flush_output(pg, err);
  PGresult *started = NULL;
  if (st == SL_OK) st = collect(pg, &started, err);
  if (st != SL_OK) return st;
  if (!started || PQresultStatus(started) != PGRES_COPY_IN)
    return judge(pg, started, res, err); /* refused at once: no such table... */
  PQclear(started);

  /* A row the server refuses ends the COPY early: libpq then refuses more data (-1 while
   * the connection is fine), and the error is among the results. */
  size_t at = 0;
  bool refused = false;
  while (at < len && !refused) {
    size_t piece = len - at < COPY_PIECE ? len - at : COPY_PIECE;
    int put = PQputCopyData(pg->conn, data + at, (int)piece);
    if (put == 1) {
      at += piece;
    } else if (put == 0) {
      if ((st = flush_output(pg, err)) != SL_OK) return st;
    } else if (PQstatus(pg->conn) == CONNECTION_OK) {
      refused = true;
    } else {
      return lost(pg, "sending COPY data failed", err);
    }
  }
  while (!refused) {
    int put = PQputCopyEnd(pg->conn, NULL);
    if (put == 1) break;
    if (put < 0) {
      if (PQstatus(pg->conn) != CONNECTION_OK) return lost(pg, "ending COPY failed", err);
      refused = true;
    } else if ((st = flush_output(pg, err)) != SL_OK) {
      return st;
    }
  }
  if ((st = flush_output(pg, err)) != SL_OK) return st;
  PGresult *finished = NULL;
  if ((st = collect(pg, &finished, err)) != SL_OK) return st;
  return judge(pg, finished, res, err);
}

/* ---- errors ------------------------------------------------------------------------ */

bool sl__pg_transient(const char *sqlstate) {
  if (!sqlstate || strlen(sqlstate) != 5) return true;
  static const char *const classes[] = {"08", "53", "58"};
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
    if (strncmp(sqlstate, classes[i], 2) == 0) return true;
  static const char *const codes[] = {"57P01", "57P02", "57P03", "57P04", "57P05",
                                      "57014", "40001", "40P01", "55P03", "25006"};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (strcmp(sqlstate, codes[i]) == 0) return true;
  return false;
}
