/*
 * pg_conn.h - one libpq connection driven without blocking for ever: every wait is a
 * poll() on the connection's socket and a wake-up eventfd, with a deadline, so `stop`
 * (any thread) or a server that stops answering ends it soon.
 *
 * Outcomes, the same for every call:
 *   SL_OK      done
 *   SL_AGAIN   the connection is lost or the server did not answer in time, or it said
 *              something that may pass (shutting down, too many connections, a
 *              deadlock...): the connection has been closed; connect again and retry
 *   SL_IO      the server refused the statement (a data error): *res (when asked for)
 *              holds its error result for the caller to describe; the connection is fine
 *   SL_CLOSED  stop was requested; the connection has been closed
 * err says what happened in one line.
 */
#ifndef SL_CONNECTORS_PG_CONN_H
#define SL_CONNECTORS_PG_CONN_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_pg_conn {
  PGconn *conn;        /* NULL when not connected */
  int wake_fd;         /* eventfd: readable once stop was requested */
  atomic_bool stopped; /* set with wake_fd, read without a syscall */
  uint64_t timeout_ms; /* the longest wait for one step of a statement */
  /* Where notices from the server (WARNING, NOTICE...) go instead of libpq's stderr;
   * `warning` is true for WARNING. May be NULL: notices are dropped. */
  void (*on_notice)(void *user, bool warning, const char *message);
  void *notice_user;
} sl_pg_conn;

/* SL_IO when no eventfd could be made. */
sl_status sl__pg_conn_init(sl_pg_conn *pg, uint64_t timeout_ms, sl_error *err);

/* Closes the connection, if any; the eventfd stays. */
void sl__pg_conn_close(sl_pg_conn *pg);

/* Closes everything. */
void sl__pg_conn_destroy(sl_pg_conn *pg);

/* Makes any wait return SL_CLOSED, now and from now on. Any thread; does not block. */
void sl__pg_conn_stop(sl_pg_conn *pg);

/*
 * Connects with PQconnectStartParams(keys, values, expand_dbname = 1) within
 * `timeout_ms` (closing any connection held first), then sets non-blocking mode.
 * SL_AGAIN carries libpq's reason (refused, authentication failed, unknown database...).
 */
sl_status sl__pg_connect(sl_pg_conn *pg, const char *const *keys, const char *const *values,
                         uint64_t timeout_ms, sl_error *err);

/*
 * Runs one statement: `sql` with `nparams` text parameters (NULL entries are SQL NULL)
 * through the extended protocol, or with nparams == 0 through the simple one (so `sql`
 * may be several statements). On SL_OK, *res (if res is not NULL) is the last result,
 * for the caller to PQclear; on SL_IO, the error result. Otherwise *res is NULL.
 */
sl_status sl__pg_exec(sl_pg_conn *pg, const char *sql, int nparams, const char *const *params,
                      PGresult **res, sl_error *err);

/* Like sl__pg_exec with nparams == 0, for "COPY ... FROM STDIN": sends `data` (COPY
 * text) and returns the COPY's outcome. */
sl_status sl__pg_copy(sl_pg_conn *pg, const char *sql, const char *data, size_t len, PGresult **res,
                      sl_error *err);

/* True when `sqlstate` names a failure that may pass by itself (class 08 connection,
 * 53 resources, 57P0x shutdown, 40001/40P01 serialization/deadlock, 55P03 lock, 58
 * system, 25006 read-only standby, 57014 cancelled by an administrator). */
bool sl__pg_transient(const char *sqlstate);

/* libpq's message on one line: newlines and tabs become spaces, no trailing blank. */
void sl__pg_one_line(const char *message, char *out, size_t size);

#endif
