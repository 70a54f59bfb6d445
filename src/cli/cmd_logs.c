/*
 * cmd_logs.c - `sluice logs [-f] NAME`: a pipeline's log lines
 * (GET /v1/pipelines/NAME/logs, api.md): what its processors print and what the host
 * says about its nodes. -f streams them (Server-Sent Events) until Ctrl-C.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char logs_help[] =
    "Usage: sluice logs [-f] NAME [--node ID] [--tail N] [-o json] [--server URL]\n"
    "\n"
    "Prints a pipeline's recent log lines, oldest first, one per line:\n"
    "\n"
    "  12:00:01.123 [upper] stderr: text the processor printed\n"
    "  12:00:02.004 [out] warn: what the host says about a node\n"
    "\n"
    "The stream is stdout or stderr for what a processor prints, info, warn or error for\n"
    "the host's lines. The daemon keeps the last 1000 lines of each pipeline.\n"
    "\n"
    "Options:\n"
    "  -f, --follow   keep printing new lines as they come, until Ctrl-C\n"
    "  --node ID      only the lines of node ID\n"
    "  --tail N       start with the last N lines (default 100)\n"
    "  -o json        one JSON object per line, as the API sends them\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 done (or interrupted while following); 1 no such pipeline, or the\n"
    "daemon cannot be reached or failed; 2 bad arguments.\n";

typedef struct logs_ctx {
  bool json;
} logs_ctx;

static void print_line(const logs_ctx *ctx, const json_t *line) {
  if (ctx->json) {
    sl_client_print_json_line(line);
    return;
  }
  char clock[32];
  const char *node = sl_client_str(line, "node", NULL);
  const char *text = sl_client_str(line, "line", "");
  size_t len = strlen(text);
  if (len && text[len - 1] == '\n') len--;
  printf("%s %s%s%s%s: %.*s\n", sl_client_clock(sl_client_int(line, "at", 0), clock, sizeof clock),
         node ? "[" : "", node ? node : "", node ? "] " : "", sl_client_str(line, "stream", "info"),
         (int)len, text);
  fflush(stdout);
}

static bool on_line(void *user, json_t *event) {
  logs_ctx *ctx = user;
  int64_t dropped = sl_client_int(event, "dropped", 0);
  if (dropped > 0)
    fprintf(stderr, "sluice logs: %lld lines dropped (this reader fell behind)\n",
            (long long)dropped);
  /* A stream sends line objects; a daemon that did not stream sends {"lines": [...]}. */
  json_t *lines = json_object_get(event, "lines");
  if (json_is_array(lines)) {
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) print_line(ctx, line);
  } else if (json_object_get(event, "line")) {
    print_line(ctx, event);
  }
  return true;
}

int sl_cmd_logs(int argc, char **argv) {
  const char *server = NULL, *name = NULL, *node = NULL, *tail = NULL;
  bool follow = false;
  logs_ctx ctx = {0};
  static const char *const formats[] = {"json", NULL};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(logs_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(arg, "-f") == 0 || strcmp(arg, "--follow") == 0) {
      follow = true;
    } else if (strcmp(arg, "--server") == 0 && has_value) {
      server = argv[++i];
    } else if (strcmp(arg, "--node") == 0 && has_value) {
      node = argv[++i];
    } else if (strcmp(arg, "--tail") == 0 && has_value) {
      tail = argv[++i];
      char *end;
      errno = 0;
      long n = strtol(tail, &end, 10);
      if (!tail[0] || *end || errno || n < 0) {
        fprintf(stderr, "sluice logs: --tail: expected a number of lines (0 or more), got '%s'\n",
                tail);
        return SL_EXIT_USAGE;
      }
    } else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) && has_value) {
      if (!sl_client_output_format("logs", argv[++i], formats)) return SL_EXIT_USAGE;
      ctx.json = true;
    } else if ((arg[0] == '-' && arg[1]) || name) {
      fprintf(stderr, "sluice logs: unexpected argument '%s' (see sluice logs --help)\n", arg);
      return SL_EXIT_USAGE;
    } else {
      name = arg;
    }
  }
  if (!name) {
    fputs(logs_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("logs", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char *escaped_name = sl_client_escape(name);
  char *escaped_node = node ? sl_client_escape(node) : NULL;
  char path[2048];
  int n = snprintf(path, sizeof path, "/v1/pipelines/%s/logs?", escaped_name);
  if (escaped_node) n += snprintf(path + n, sizeof path - (size_t)n, "node=%s&", escaped_node);
  if (tail) n += snprintf(path + n, sizeof path - (size_t)n, "tail=%s&", tail);
  if (follow) n += snprintf(path + n, sizeof path - (size_t)n, "follow=true&");
  path[n - 1] = '\0'; /* the last '&', or the '?' when there is no query */
  free(escaped_name);
  free(escaped_node);

  if (follow) {
    sl_client_catch_interrupts();
    rc = sl_client_stream(client, path, on_line, &ctx);
  } else {
    json_t *answer = NULL;
    rc = sl_client_json(client, "GET", path, NULL, &answer);
    if (rc == SL_EXIT_OK) on_line(&ctx, answer);
    json_decref(answer);
  }
  sl_client_free(client);
  return rc;
}
