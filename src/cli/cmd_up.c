/*
 * cmd_up.c - `sluice up`: the daemon. Serves the API (docs/reference/api.md) and runs
 * every deployed pipeline until SIGINT/SIGTERM, then drains them all.
 *
 * Order matters: signals are blocked before any thread exists (so only sigwait sees
 * them); the API listens before stored pipelines are restored, answering /readyz 503
 * until they are; at shutdown the API stops first, so nothing deploys while draining.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/files.h"
#include "daemon/daemon.h"

static void usage(FILE *out) {
  fprintf(out,
          "Usage: sluice up [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]\n"
          "\n"
          "Runs the daemon: the API under /v1/ on 127.0.0.1:7400 by default, and every\n"
          "pipeline deployed to it. Pipelines, versions and modules are kept in SQLite\n"
          "under $SLUICE_HOME (default ~/.sluice), so a restart runs them again.\n"
          "\n"
          "Every route but /healthz needs `Authorization: Bearer TOKEN`, the token being\n"
          "$SLUICE_HOME/token (made at first start, mode 0600). Listening beyond loopback\n"
          "needs TLS.\n"
          "\n"
          "Options:\n"
          "  --listen HOST:PORT  where the API listens (default 127.0.0.1:7400)\n"
          "  --tls-cert FILE     PEM certificate; with --tls-key serves HTTPS (and h2)\n"
          "  --tls-key FILE      PEM private key\n"
          "\n"
          "SIGINT or SIGTERM drains every pipeline and exits 0; a second one exits at once.\n"
          "Exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad options or the address\n"
          "is taken.\n");
}

int sl_cmd_up(int argc, char **argv) {
  const char *listen = "127.0.0.1:7400", *cert = NULL, *key = NULL;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return SL_EXIT_OK;
    }
    const char **value = strcmp(arg, "--listen") == 0     ? &listen
                         : strcmp(arg, "--tls-cert") == 0 ? &cert
                         : strcmp(arg, "--tls-key") == 0  ? &key
                                                          : NULL;
    if (!value) {
      fprintf(stderr, "sluice up: unknown option '%s' (see sluice up --help)\n", arg);
      return SL_EXIT_USAGE;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "sluice up: %s needs a value\n", arg);
      return SL_EXIT_USAGE;
    }
    *value = argv[++i];
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  int code = SL_EXIT_FAILURE;
  sl_error err = {{0}};
  sl_daemon daemon = {0};
  sl_api_server *server = NULL;
  sl_status status = sl_engine_new(NULL, &daemon.engine, &err);
  const char *home = status == SL_OK ? sl_engine_home(daemon.engine) : NULL;
  if (status == SL_OK) status = sl__make_dirs(home, &err);
  char token[65] = "";
  bool token_created = false;
  if (status == SL_OK) status = sl_daemon_token(home, token, &token_created, &err);
  if (status == SL_OK) status = sl_store_open(home, &daemon.store, &err);
  if (status == SL_OK && !(daemon.logs = sl_log_hub_new(true)))
    status = sl_error_set(&err, SL_NOMEM, "out of memory");
  if (status == SL_OK) {
    sl_manager_options mopts = {.engine = daemon.engine, .store = daemon.store,
                                .logs = daemon.logs};
    status = sl_manager_new(&mopts, &daemon.manager, &err);
  }
  if (status == SL_OK) {
    sl_api_server_options sopts = {.listen = listen,
                                   .tls_cert = cert,
                                   .tls_key = key,
                                   .token = token,
                                   .routes = sl_daemon_routes,
                                   .route_count = sl_daemon_route_count,
                                   .user = &daemon};
    status = sl_api_server_start(&sopts, &server, &err);
    if (status == SL_IO || status == SL_CONFIG) code = SL_EXIT_USAGE;
  }
  if (status != SL_OK) {
    fprintf(stderr, "sluice up: %s\n", err.message);
    goto out;
  }

  fprintf(stderr, "sluice up: listening on %s://%s; token in %s/token%s\n",
          cert ? "https" : "http", sl_api_server_address(server), home,
          token_created ? " (new)" : "");
  sl_manager_restore(daemon.manager);
  fprintf(stderr, "sluice up: ready\n");

  int sig = 0;
  sigwait(&signals, &sig);
  fprintf(stderr, "sluice up: %s: stopping the API, draining every pipeline\n", strsignal(sig));
  sl__cli_exit_on_second_signal("sluice up", &signals);
  code = SL_EXIT_OK;

out:
  sl_api_server_stop(server);
  sl_manager_destroy(daemon.manager);
  sl_log_hub_destroy(daemon.logs);
  sl_store_close(daemon.store);
  sl_engine_destroy(daemon.engine);
  if (code == SL_EXIT_OK) fprintf(stderr, "sluice up: stopped\n");
  return code;
}
