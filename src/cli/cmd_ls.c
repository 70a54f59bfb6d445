/*
 * cmd_ls.c - `sluice ls [-o json]`: the daemon's pipelines, one line each
 * (GET /v1/pipelines, api.md).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char ls_help[] =
    "Usage: sluice ls [-o json] [--server URL]\n"
    "\n"
    "Lists the pipelines the daemon runs:\n"
    "\n"
    "  NAME  VERSION  STATUS   NODES  IN    OUT   ERRORS  AGE\n"
    "  demo  3        running  3      1200  1180  2       5m\n"
    "\n"
    "STATUS is running, deploying, draining or failed (the reason follows the table).\n"
    "IN and OUT count events since the running version started; AGE is since the first\n"
    "deploy.\n"
    "\n"
    "Options:\n"
    "  -o json        print the API's JSON instead ({\"pipelines\": [...]})\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 listed; 1 the daemon cannot be reached or failed; 2 bad arguments.\n";

static void print_table(const json_t *pipelines) {
  static const char *const headers[] = {"NAME", "VERSION", "STATUS", "NODES",
                                        "IN",   "OUT",     "ERRORS", "AGE"};
  sl_table *table = sl_table_new(8, "llllllll", headers);
  size_t i;
  json_t *p;
  json_array_foreach(pipelines, i, p) {
    char version[32], nodes[32], in[32], out[32], errors[32], age[32];
    json_t *node_list = json_object_get(p, "nodes");
    snprintf(version, sizeof version, "%lld", (long long)sl_client_int(p, "version", 0));
    snprintf(nodes, sizeof nodes, "%lld",
             json_is_array(node_list) ? (long long)json_array_size(node_list)
                                      : (long long)sl_client_int(p, "nodes", 0));
    snprintf(in, sizeof in, "%lld", (long long)sl_client_int(p, "events_in", 0));
    snprintf(out, sizeof out, "%lld", (long long)sl_client_int(p, "events_out", 0));
    snprintf(errors, sizeof errors, "%lld", (long long)sl_client_int(p, "errors", 0));
    const char *row[] = {sl_client_str(p, "name", "?"),
                         version,
                         sl_client_str(p, "status", "?"),
                         nodes,
                         in,
                         out,
                         errors,
                         sl_client_age(sl_client_int(p, "created_at", 0), age, sizeof age)};
    sl_table_add(table, row);
  }
  sl_table_print(table, stdout);
  sl_table_free(table);
  json_array_foreach(pipelines, i, p) {
    const char *error = sl_client_str(p, "error", NULL);
    if (error) printf("%s: %s\n", sl_client_str(p, "name", "?"), error);
  }
}

int sl_cmd_ls(int argc, char **argv) {
  const char *server = NULL, *output = NULL;
  static const char *const formats[] = {"json", NULL};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(ls_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
    } else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
      output = argv[++i];
      if (!sl_client_output_format("ls", output, formats)) return SL_EXIT_USAGE;
    } else {
      fprintf(stderr, "sluice ls: unexpected argument '%s' (see sluice ls --help)\n", argv[i]);
      return SL_EXIT_USAGE;
    }
  }
  sl_client *client = NULL;
  int rc = sl_client_open("ls", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  json_t *answer = NULL;
  rc = sl_client_json(client, "GET", "/v1/pipelines", NULL, &answer);
  if (rc == SL_EXIT_OK && output) {
    sl_client_print_json(answer);
  } else if (rc == SL_EXIT_OK) {
    json_t *pipelines = json_object_get(answer, "pipelines");
    print_table(pipelines);
    if (json_array_size(pipelines) == 0)
      fprintf(stderr, "sluice ls: no pipelines yet (sluice deploy PIPELINE.yaml adds one)\n");
  }
  json_decref(answer);
  sl_client_free(client);
  return rc;
}
