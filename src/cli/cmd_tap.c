/*
 * cmd_tap.c - `sluice tap NAME NODE`: events flowing out of a node, sampled by the
 * daemon (GET /v1/pipelines/NAME/nodes/NODE/tap, a Server-Sent Events stream, api.md).
 * A tap only reads copies: it never slows the pipeline, and a slow reader loses samples.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char tap_help[] =
    "Usage: sluice tap NAME NODE [--errors] [--rate N] [--limit N] [-o json] [--server URL]\n"
    "\n"
    "Prints the payload of each event node NODE of pipeline NAME emits, one per line,\n"
    "until Ctrl-C or --limit. The daemon samples: at most --rate events a second reach\n"
    "the tap; the pipeline itself never waits for it.\n"
    "\n"
    "Options:\n"
    "  --errors       the node's .errors output instead (events it failed); each line is\n"
    "                 then PAYLOAD, a tab, and `error: MESSAGE`\n"
    "  --rate N       at most N events a second (default 10)\n"
    "  --limit N      stop after N events\n"
    "  -o json        one JSON object per event: node, output, payload, meta, dropped\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 done (limit reached, interrupted, or the stream ended); 1 no such\n"
    "pipeline or node, or the daemon cannot be reached or failed; 2 bad arguments.\n";

typedef struct tap_ctx {
  bool json, errors;
  unsigned long long limit, seen; /* limit 0: no limit */
} tap_ctx;

static int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decodes standard or URL-safe base64 in place; the decoded length. */
static size_t base64_decode(char *text) {
  size_t out = 0;
  unsigned bits = 0, acc = 0;
  for (const char *p = text; *p; p++) {
    int v = base64_value(*p);
    if (v < 0) continue; /* padding, line breaks */
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      text[out++] = (char)((acc >> bits) & 0xff);
    }
  }
  return out;
}

static bool on_event(void *user, json_t *event) {
  tap_ctx *ctx = user;
  int64_t dropped = sl_client_int(event, "dropped", 0);
  if (dropped > 0)
    fprintf(stderr, "sluice tap: %lld events not shown (the tap fell behind)\n",
            (long long)dropped);
  const json_t *payload = json_object_get(event, "payload");
  if (!json_is_string(payload)) return true; /* not an event (a notice) */
  if (ctx->json) {
    sl_client_print_json_line(event);
  } else {
    char *bytes = strdup(json_string_value(payload));
    if (!bytes) abort();
    size_t len = json_string_length(payload);
    if (strcmp(sl_client_str(event, "encoding", ""), "base64") == 0) len = base64_decode(bytes);
    fwrite(bytes, 1, len, stdout);
    const char *error = sl_client_str(json_object_get(event, "meta"), "error", NULL);
    if (ctx->errors && error) printf("\terror: %s", error);
    fputc('\n', stdout);
    fflush(stdout);
    free(bytes);
  }
  ctx->seen++;
  return !ctx->limit || ctx->seen < ctx->limit;
}

static bool parse_number(const char *flag, const char *text, bool fraction, double *out) {
  char *end;
  errno = 0;
  double n = fraction ? strtod(text, &end) : (double)strtoull(text, &end, 10);
  if (!text[0] || *end || errno || !isfinite(n) || n <= 0 || text[0] == '-') {
    fprintf(stderr, "sluice tap: %s: expected a %s above 0, got '%s'\n", flag,
            fraction ? "number" : "whole number", text);
    return false;
  }
  *out = n;
  return true;
}

int sl_cmd_tap(int argc, char **argv) {
  const char *server = NULL, *name = NULL, *node = NULL;
  double rate = 0;
  tap_ctx ctx = {0};
  static const char *const formats[] = {"json", NULL};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    bool has_value = i + 1 < argc;
    double number;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(tap_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(arg, "--errors") == 0) {
      ctx.errors = true;
    } else if (strcmp(arg, "--server") == 0 && has_value) {
      server = argv[++i];
    } else if (strcmp(arg, "--rate") == 0 && has_value) {
      if (!parse_number("--rate", argv[++i], true, &rate)) return SL_EXIT_USAGE;
    } else if (strcmp(arg, "--limit") == 0 && has_value) {
      if (!parse_number("--limit", argv[++i], false, &number)) return SL_EXIT_USAGE;
      ctx.limit = (unsigned long long)number;
    } else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) && has_value) {
      if (!sl_client_output_format("tap", argv[++i], formats)) return SL_EXIT_USAGE;
      ctx.json = true;
    } else if ((arg[0] == '-' && arg[1]) || (name && node)) {
      fprintf(stderr, "sluice tap: unexpected argument '%s' (see sluice tap --help)\n", arg);
      return SL_EXIT_USAGE;
    } else if (!name) {
      name = arg;
    } else {
      node = arg;
    }
  }
  if (!node) {
    fputs(tap_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("tap", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char *escaped_name = sl_client_escape(name), *escaped_node = sl_client_escape(node);
  char path[2048];
  int n = snprintf(path, sizeof path, "/v1/pipelines/%s/nodes/%s/tap?", escaped_name, escaped_node);
  if (ctx.errors) n += snprintf(path + n, sizeof path - (size_t)n, "output=errors&");
  if (rate > 0) n += snprintf(path + n, sizeof path - (size_t)n, "rate=%g&", rate);
  if (ctx.limit) n += snprintf(path + n, sizeof path - (size_t)n, "limit=%llu&", ctx.limit);
  path[n - 1] = '\0';
  free(escaped_name);
  free(escaped_node);
  sl_client_catch_interrupts();
  rc = sl_client_stream(client, path, on_event, &ctx);
  sl_client_free(client);
  return rc;
}
