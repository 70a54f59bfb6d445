/*
 * cmd_rm.c - `sluice rm NAME`: drain, stop and forget a pipeline
 * (DELETE /v1/pipelines/NAME, api.md). Its versions go too; uploaded modules stay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char rm_help[] =
    "Usage: sluice rm NAME [--server URL]\n"
    "\n"
    "Removes a pipeline from the daemon: its sources stop, the events in flight are\n"
    "delivered (drained), then the pipeline and every version of it are forgotten.\n"
    "Modules it used stay uploaded (they are shared by hash).\n"
    "\n"
    "Options:\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 removed; 1 no such pipeline, a deploy of it is in progress, or the\n"
    "daemon cannot be reached or failed; 2 bad arguments.\n";

int sl_cmd_rm(int argc, char **argv) {
  const char *server = NULL, *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(rm_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
    } else if ((argv[i][0] == '-' && argv[i][1]) || name) {
      fprintf(stderr, "sluice rm: unexpected argument '%s' (see sluice rm --help)\n", argv[i]);
      return SL_EXIT_USAGE;
    } else {
      name = argv[i];
    }
  }
  if (!name) {
    fputs(rm_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("rm", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char *escaped = sl_client_escape(name), path[1024];
  snprintf(path, sizeof path, "/v1/pipelines/%s", escaped);
  free(escaped);
  rc = sl_client_json(client, "DELETE", path, NULL, NULL);
  if (rc == SL_EXIT_OK) printf("removed %s\n", name);
  sl_client_free(client);
  return rc;
}
