/*
 * log_hub.h - the daemon's log lines: a ring of recent lines per pipeline, and the live
 * readers of `GET /v1/pipelines/NAME/logs?follow=true`.
 *
 * Pipelines push from any thread (workers, sink threads, processors' stdout); a push
 * never waits for a reader: a slow reader's stream drops lines (and says so).
 * The hub copies what it is given; subscribers own nothing of the hub's.
 */
#ifndef SL_DAEMON_LOG_HUB_H
#define SL_DAEMON_LOG_HUB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/api_server.h"

#define SL_LOG_HUB_KEEP 1000 /* lines kept per pipeline */

typedef struct sl_log_hub sl_log_hub;

/* `echo`: also print every line on stderr as "pipeline/node stream: line". */
sl_log_hub *sl_log_hub_new(bool echo);
/* Ends every subscriber's stream. */
void sl_log_hub_destroy(sl_log_hub *hub);

void sl_log_hub_push(sl_log_hub *hub, const char *pipeline, int64_t version, const char *node,
                     const char *stream, const char *line, size_t len);

/* The last `tail` lines of `pipeline` (only `node`'s when not NULL), oldest first:
 * a JSON array of line objects (api.md "Logs"). */
json_t *sl_log_hub_recent(sl_log_hub *hub, const char *pipeline, const char *node, size_t tail);

/* Sends the tail, then every new matching line, to `stream` until the client leaves or
 * the hub is destroyed. Takes over the caller's reference to `stream`. */
void sl_log_hub_follow(sl_log_hub *hub, const char *pipeline, const char *node, size_t tail,
                       sl_api_stream *stream);

/* Ends the streams of readers that left (call now and then; pushes do it too). */
void sl_log_hub_sweep(sl_log_hub *hub);

/* Forgets a deleted pipeline's lines. */
void sl_log_hub_forget(sl_log_hub *hub, const char *pipeline);

#endif
