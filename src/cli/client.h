/*
 * client.h - the client commands' side of the daemon's API (docs/reference/api.md):
 * finding the daemon and the token, JSON requests, module uploads, Server-Sent Event
 * streams, and the messages a user reads when a call fails.
 *
 * Every call returns an exit code (cli.h: SL_EXIT_OK, SL_EXIT_FAILURE, SL_EXIT_USAGE)
 * and has already printed what went wrong when it is not SL_EXIT_OK, so a command can
 * `return` it as it is:
 *   - the daemon cannot be reached: "sluice: cannot reach the daemon at URL: ..." (1);
 *   - 401: the token was refused, and where it was read from (1);
 *   - 400: the API's `error` and every `problems` line (2);
 *   - 404, 409 and other failures: the API's `error` (1).
 */
#ifndef SL_CLI_CLIENT_H
#define SL_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SL_CLIENT_DEFAULT_SERVER "http://127.0.0.1:7400"

typedef struct sl_client sl_client;

/*
 * Finds the daemon: `server` (the --server flag; NULL when not given), else $SLUICE_SERVER,
 * else SL_CLIENT_DEFAULT_SERVER ("HOST:PORT" alone means http://HOST:PORT). The token comes
 * from $SLUICE_TOKEN, else from $SLUICE_HOME/token (default ~/.sluice/token); a missing
 * token is only reported if the daemon asks for one. `command` ("deploy") starts the
 * messages. SL_EXIT_USAGE for a server that is not an http(s) URL. Free with
 * sl_client_free.
 */
int sl_client_open(const char *command, const char *server, sl_client **out);
void sl_client_free(sl_client *client);

/* The server URL in use, without a trailing '/'. */
const char *sl_client_server(const sl_client *client);

/*
 * A JSON request: `method` ("GET", "POST", "PUT", "DELETE") on `path` ("/v1/pipelines",
 * query included, segments escaped with sl_client_escape). `body` (borrowed; NULL: no
 * body) is sent as application/json. On SL_EXIT_OK, *answer (when `answer` is not NULL)
 * is the parsed reply, owned by the caller (json_decref), or NULL for an empty body.
 */
int sl_client_json(sl_client *client, const char *method, const char *path, const json_t *body,
                   json_t **answer);

/*
 * One Server-Sent Events object (a `data:` line's JSON), borrowed until the callback
 * returns. Returning false ends the stream early; that is not an error.
 */
typedef bool (*sl_client_on_event)(void *user, json_t *event);

/*
 * A raw body (`data`, `len` bytes of `content_type`) sent with `method` to `path`. With
 * `on_event` the request asks for text/event-stream and every object the daemon streams
 * goes to it; a daemon that answers plain JSON instead has it in *answer. *answer (when
 * `answer` is not NULL) is NULL after a stream.
 */
int sl_client_upload(sl_client *client, const char *method, const char *path, const void *data,
                     size_t len, const char *content_type, sl_client_on_event on_event, void *user,
                     json_t **answer);

/*
 * GETs `path` as a Server-Sent Events stream, calling `on_event` for every `data:` object
 * (events split across reads and several `data:` lines per event are put together).
 * Returns when the daemon ends the stream, the callback returns false, or, after
 * sl_client_catch_interrupts, on Ctrl-C / SIGTERM: all SL_EXIT_OK.
 */
int sl_client_stream(sl_client *client, const char *path, sl_client_on_event on_event, void *user);

/*
 * Makes SIGINT and SIGTERM set a flag instead of killing the process, so a following
 * command (logs -f, tap, top) ends its stream or loop cleanly and exits 0.
 */
void sl_client_catch_interrupts(void);
bool sl_client_interrupted(void);
/* Sleeps `ms` milliseconds, or less when interrupted. */
void sl_client_sleep_ms(unsigned ms);

/* Percent-encodes `text` for a path segment or a query value. Malloc'ed; caller frees. */
char *sl_client_escape(const char *text);

/* --- printing, shared by the commands -------------------------------------------- */

/* Parses `-o FORMAT`: true when `value` is one of `allowed` (NULL-terminated); else
 * prints "sluice COMMAND: -o: expected a or b, got 'x'" and returns false. */
bool sl_client_output_format(const char *command, const char *value, const char *const *allowed);

/* Prints `value` as indented JSON (keys in the API's order) and a newline. */
void sl_client_print_json(const json_t *value);
/* Prints `value` as compact JSON on one line (JSON lines, for streams). */
void sl_client_print_json_line(const json_t *value);

/* "5s", "3m", "2h", "4d": how long ago `at_ms` (ms since the epoch) was. "-" for 0. */
const char *sl_client_age(int64_t at_ms, char *buf, size_t cap);
/* Local "2025-11-21 12:00:01" for `at_ms`. "-" for 0. */
const char *sl_client_date(int64_t at_ms, char *buf, size_t cap);
/* Local "12:00:01.123" for `at_ms`. */
const char *sl_client_clock(int64_t at_ms, char *buf, size_t cap);

/*
 * A table printed with columns as wide as their widest cell, two spaces apart. `align`
 * has one letter per column: 'l' left, 'r' right. Cells are copied.
 */
typedef struct sl_table sl_table;
sl_table *sl_table_new(size_t columns, const char *align, const char *const *headers);
/* Adds one row of `columns` cells ("" for an empty one). */
void sl_table_add(sl_table *table, const char *const *cells);
void sl_table_print(const sl_table *table, FILE *out);
void sl_table_free(sl_table *table);

/* " (overlap swap, 12 ms)": how a deploy or rollback answer (api.md "Deploy") says the
 * new version took over; "" when it does not say. */
const char *sl_client_swap_summary(const json_t *answer, char *buf, size_t cap);

/* Integer members that may be missing or null: `fallback` then. */
int64_t sl_client_int(const json_t *object, const char *key, int64_t fallback);
double sl_client_real(const json_t *object, const char *key, double fallback);
/* A string member, or `fallback` when missing, null or not a string. */
const char *sl_client_str(const json_t *object, const char *key, const char *fallback);

#endif
