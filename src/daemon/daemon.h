/*
 * daemon.h - `sluice up`: what the API's routes work on, and the route table.
 *
 * The daemon's parts are made and owned by cmd_up.c; the routes (api_routes.c) borrow
 * them through this struct, handed to every handler as its `user`.
 */
#ifndef SL_DAEMON_DAEMON_H
#define SL_DAEMON_DAEMON_H

#include "daemon/api_server.h"
#include "daemon/log_hub.h"
#include "daemon/manager.h"
#include "daemon/store.h"
#include "sluice/engine.h"

typedef struct sl_daemon {
  sl_engine *engine;
  sl_store *store;
  sl_log_hub *logs;
  sl_manager *manager;
} sl_daemon;

/* Every route of docs/reference/api.md. */
extern const sl_api_route sl_daemon_routes[];
extern const size_t sl_daemon_route_count;

/* Reads $SLUICE_HOME/token, creating it (32 random bytes, hex, mode 0600) at first
 * start. `token` gets the text. SL_IO naming the file when it cannot. */
sl_status sl_daemon_token(const char *home, char token[65], bool *created, sl_error *err);

#endif
