/*
 * cmd_get.c - `sluice get NAME [-o yaml|json]`: one pipeline (GET /v1/pipelines/NAME,
 * api.md): a summary for people, the current version's text exactly as deployed
 * (-o yaml, so `sluice get demo -o yaml > demo.yaml` gets the file back), or the API's
 * JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char get_help[] =
    "Usage: sluice get NAME [-o yaml|json] [--server URL]\n"
    "\n"
    "Shows one pipeline of the daemon: its status, current version, nodes (with the\n"
    "module each processor is pinned to) and versions.\n"
    "\n"
    "Options:\n"
    "  -o yaml        print the current version's pipeline text exactly as it was deployed\n"
    "  -o json        print the API's JSON (status, source, nodes, modules, versions)\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 shown; 1 no such pipeline, or the daemon cannot be reached or failed;\n"
    "2 bad arguments.\n";

static void print_nodes(const json_t *p) {
  const json_t *modules = json_object_get(p, "modules");
  static const char *const headers[] = {"  ID", "TYPE", "KIND", "MODULE"};
  sl_table *table = sl_table_new(4, "llll", headers);
  size_t i;
  json_t *node;
  json_array_foreach(json_object_get(p, "nodes"), i, node) {
    char id[300], module[80] = "";
    const char *sha = sl_client_str(modules, sl_client_str(node, "id", ""), NULL);
    snprintf(id, sizeof id, "  %s", sl_client_str(node, "id", "?"));
    if (sha) snprintf(module, sizeof module, "sha256:%.12s", sha);
    const char *row[] = {id, sl_client_str(node, "type", "?"), sl_client_str(node, "kind", "?"),
                         module};
    sl_table_add(table, row);
  }
  sl_table_print(table, stdout);
  sl_table_free(table);
}

static void print_versions(const json_t *p) {
  int64_t current = sl_client_int(p, "version", 0);
  static const char *const headers[] = {"  VERSION", "CREATED", "NOTE"};
  sl_table *table = sl_table_new(3, "lll", headers);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(p, "versions"), i, v) {
    char version[48], created[48];
    int64_t n = sl_client_int(v, "version", 0);
    snprintf(version, sizeof version, "%s %lld", n == current ? "*" : " ", (long long)n);
    const char *row[] = {version,
                         sl_client_date(sl_client_int(v, "created_at", 0), created, sizeof created),
                         sl_client_str(v, "note", "")};
    sl_table_add(table, row);
  }
  sl_table_print(table, stdout);
  sl_table_free(table);
}

static void print_summary(const json_t *p) {
  char created[48], updated[48];
  printf("name:     %s\n", sl_client_str(p, "name", "?"));
  printf("version:  %lld\n", (long long)sl_client_int(p, "version", 0));
  printf("status:   %s\n", sl_client_str(p, "status", "?"));
  if (sl_client_str(p, "error", NULL)) printf("error:    %s\n", sl_client_str(p, "error", ""));
  printf("file:     %s (in %s)\n", sl_client_str(p, "file", "?"), sl_client_str(p, "dir", "?"));
  printf("events:   %lld in, %lld out, %lld errors\n", (long long)sl_client_int(p, "events_in", 0),
         (long long)sl_client_int(p, "events_out", 0), (long long)sl_client_int(p, "errors", 0));
  printf("created:  %s\n",
         sl_client_date(sl_client_int(p, "created_at", 0), created, sizeof created));
  printf("updated:  %s\n",
         sl_client_date(sl_client_int(p, "updated_at", 0), updated, sizeof updated));
  printf("nodes:\n");
  print_nodes(p);
  printf("versions (* = current):\n");
  print_versions(p);
}

int sl_cmd_get(int argc, char **argv) {
  const char *server = NULL, *output = NULL, *name = NULL;
  static const char *const formats[] = {"yaml", "json", NULL};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(get_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
    } else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
      output = argv[++i];
      if (!sl_client_output_format("get", output, formats)) return SL_EXIT_USAGE;
    } else if ((argv[i][0] == '-' && argv[i][1]) || name) {
      fprintf(stderr, "sluice get: unexpected argument '%s' (see sluice get --help)\n", argv[i]);
      return SL_EXIT_USAGE;
    } else {
      name = argv[i];
    }
  }
  if (!name) {
    fputs(get_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("get", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char *escaped = sl_client_escape(name), path[1024];
  snprintf(path, sizeof path, "/v1/pipelines/%s", escaped);
  free(escaped);
  json_t *answer = NULL;
  rc = sl_client_json(client, "GET", path, NULL, &answer);
  if (rc == SL_EXIT_OK) {
    if (!output) {
      print_summary(answer);
    } else if (strcmp(output, "json") == 0) {
      sl_client_print_json(answer);
    } else {
      const json_t *source = json_object_get(answer, "source");
      fwrite(json_string_value(source) ? json_string_value(source) : "", 1,
             json_string_length(source), stdout);
    }
  }
  json_decref(answer);
  sl_client_free(client);
  return rc;
}
