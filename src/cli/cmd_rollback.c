/*
 * cmd_rollback.c - `sluice rollback NAME [--to N]`: runs an earlier version again
 * (POST /v1/pipelines/NAME/rollback, api.md "Versions and rollback"). The version is
 * started the way a deploy starts one, with the module bytes it was pinned to, and
 * becomes current; the next deploy still gets a new number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char rollback_help[] =
    "Usage: sluice rollback NAME [--to N] [--server URL]\n"
    "\n"
    "Runs an earlier version of pipeline NAME again, swapping it in as a deploy does, and\n"
    "makes it the current version. `sluice get NAME` lists the versions.\n"
    "\n"
    "Options:\n"
    "  --to N         the version to run (default: the highest one below the current)\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Prints `rolled back NAME to version N (...)`. Exit status: 0 done; 1 no such pipeline\n"
    "or version, a deploy of it is in progress, or the daemon cannot be reached or failed;\n"
    "2 bad arguments, or a version that no longer builds (every problem is printed).\n";

static void print_done(const json_t *answer) {
  char how[128];
  printf("rolled back %s to version %lld%s\n", sl_client_str(answer, "name", "?"),
         (long long)sl_client_int(answer, "version", 0),
         sl_client_swap_summary(answer, how, sizeof how));
}

int sl_cmd_rollback(int argc, char **argv) {
  const char *server = NULL, *name = NULL;
  long long to = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(rollback_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
    } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      to = strtoll(argv[++i], &end, 10);
      if (!argv[i][0] || *end || errno || to < 1) {
        fprintf(stderr, "sluice rollback: --to: expected a version number (1 or more), got '%s'\n",
                argv[i]);
        return SL_EXIT_USAGE;
      }
    } else if ((argv[i][0] == '-' && argv[i][1]) || name) {
      fprintf(stderr, "sluice rollback: unexpected argument '%s' (see sluice rollback --help)\n",
              argv[i]);
      return SL_EXIT_USAGE;
    } else {
      name = argv[i];
    }
  }
  if (!name) {
    fputs(rollback_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("rollback", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char *escaped = sl_client_escape(name), path[1024];
  snprintf(path, sizeof path, "/v1/pipelines/%s/rollback", escaped);
  free(escaped);
  json_t *body = to ? json_pack("{s:I}", "to", (json_int_t)to) : NULL;
  json_t *answer = NULL;
  rc = sl_client_json(client, "POST", path, body, &answer);
  if (rc == SL_EXIT_OK) print_done(answer);
  json_decref(answer);
  json_decref(body);
  sl_client_free(client);
  return rc;
}
