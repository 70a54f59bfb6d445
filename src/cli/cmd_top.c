/*
 * cmd_top.c - `sluice top [NAME]`: per-node rates, errors, queues, latency and processor
 * memory, refreshed (GET /v1/stats or /v1/pipelines/NAME/stats, api.md "Stats").
 *
 * On a terminal each refresh redraws the screen in place (ANSI: cursor home, clear);
 * otherwise every refresh appends a plain snapshot, so `sluice top --iterations 1 > f`
 * and pipes get whole tables. -o json writes one JSON object per refresh (JSON lines).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char top_help[] =
    "Usage: sluice top [NAME] [--interval S] [--iterations N] [-o json] [--server URL]\n"
    "\n"
    "Shows every node of every pipeline (or of pipeline NAME), refreshed:\n"
    "\n"
    "  PIPELINE NODE  KIND       IN/s   OUT/s  ERRORS QUEUE P50    P99    INST MEM\n"
    "  demo     upper processor  200.0  199.6  2      0     1.2us  8.5us  2    128KiB\n"
    "\n"
    "IN/s and OUT/s are events a second over the daemon's last sampling second; ERRORS\n"
    "counts failed events since the version started; QUEUE is batches waiting for a sink\n"
    "or events in flight for a source; P50/P99 are latency over the last 10 s (per event\n"
    "for processors, per batch for sinks); INST and MEM are a processor's instances and\n"
    "their memory. On a terminal the table redraws in place until Ctrl-C; otherwise each\n"
    "refresh appends a table, with a blank line between them.\n"
    "\n"
    "Options:\n"
    "  --interval S     seconds between refreshes: 2, 0.5, 500ms (default 1)\n"
    "  --iterations N   stop after N refreshes (default: until Ctrl-C)\n"
    "  -o json          one JSON object per refresh, as the API sends it\n"
    "  --server URL     the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Exit status: 0 done or interrupted; 1 no such pipeline, or the daemon cannot be\n"
    "reached or failed; 2 bad arguments.\n";

/* "2", "0.5", "2s", "500ms" -> milliseconds (at least 100). */
static bool parse_interval(const char *text, unsigned *ms) {
  char *end;
  errno = 0;
  double n = strtod(text, &end);
  if (end == text || errno || !isfinite(n) || n <= 0) return false;
  if (strcmp(end, "ms") == 0)
    n /= 1000;
  else if (*end && strcmp(end, "s") != 0)
    return false;
  if (n > 86400) return false;
  *ms = n < 0.1 ? 100 : (unsigned)(n * 1000 + 0.5);
  return true;
}

static const char *format_latency(const json_t *node, const char *key, char *buf, size_t cap) {
  double us = sl_client_real(node, key, -1);
  if (us < 0)
    snprintf(buf, cap, "-");
  else if (us < 1000)
    snprintf(buf, cap, "%.1fus", us);
  else if (us < 1e6)
    snprintf(buf, cap, "%.1fms", us / 1e3);
  else
    snprintf(buf, cap, "%.2fs", us / 1e6);
  return buf;
}

static const char *format_bytes(double bytes, char *buf, size_t cap) {
  if (bytes < 0)
    snprintf(buf, cap, "-");
  else if (bytes < 1024)
    snprintf(buf, cap, "%.0fB", bytes);
  else if (bytes < 1024.0 * 1024)
    snprintf(buf, cap, "%.0fKiB", bytes / 1024);
  else if (bytes < 1024.0 * 1024 * 1024)
    snprintf(buf, cap, "%.1fMiB", bytes / (1024.0 * 1024));
  else
    snprintf(buf, cap, "%.2fGiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

static void add_pipeline(sl_table *table, const json_t *p) {
  size_t i;
  json_t *node;
  json_array_foreach(json_object_get(p, "nodes"), i, node) {
    char in[32], out[32], errors[32], queue[32], p50[32], p99[32], inst[32] = "-", mem[32];
    const char *kind = sl_client_str(node, "kind", "?");
    bool processor = strcmp(kind, "processor") == 0;
    bool timed = strcmp(kind, "source") != 0; /* latency is measured at processors and sinks */
    snprintf(in, sizeof in, "%.1f", sl_client_real(node, "rate_in", 0));
    snprintf(out, sizeof out, "%.1f", sl_client_real(node, "rate_out", 0));
    snprintf(errors, sizeof errors, "%lld", (long long)sl_client_int(node, "errors", 0));
    snprintf(queue, sizeof queue, "%lld", (long long)sl_client_int(node, "queue_depth", 0));
    if (processor && json_is_number(json_object_get(node, "instances")))
      snprintf(inst, sizeof inst, "%lld", (long long)sl_client_int(node, "instances", 0));
    format_bytes(processor ? sl_client_real(node, "memory_bytes", -1) : -1, mem, sizeof mem);
    const char *row[] = {sl_client_str(p, "name", "?"),
                         sl_client_str(node, "id", "?"),
                         kind,
                         in,
                         out,
                         errors,
                         queue,
                         format_latency(timed ? node : NULL, "p50_us", p50, sizeof p50),
                         format_latency(timed ? node : NULL, "p99_us", p99, sizeof p99),
                         inst,
                         mem};
    sl_table_add(table, row);
  }
}

static void print_snapshot(const sl_client *client, const json_t *stats, bool tty,
                           unsigned interval_ms, unsigned long iteration) {
  static const char *const headers[] = {"PIPELINE", "NODE", "KIND", "IN/s", "OUT/s", "ERRORS",
                                        "QUEUE",    "P50",  "P99",  "INST", "MEM"};
  sl_table *table = sl_table_new(11, "lllrrrrrrrr", headers);
  const json_t *pipelines = json_object_get(stats, "pipelines");
  if (json_is_array(pipelines)) {
    size_t i;
    json_t *p;
    json_array_foreach(pipelines, i, p) add_pipeline(table, p);
  } else {
    add_pipeline(table, stats);
  }
  if (tty) {
    char now[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fputs("\033[H\033[2J", stdout); /* cursor home, clear the screen */
    printf("sluice top  %s  %s  every %.1fs  (Ctrl-C quits)\n\n", sl_client_server(client),
           sl_client_clock((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, now, sizeof now),
           interval_ms / 1000.0);
  } else if (iteration > 0) {
    fputc('\n', stdout);
  }
  sl_table_print(table, stdout);
  if (json_is_array(pipelines) && json_array_size(pipelines) == 0 && tty)
    printf("\n(no pipelines: sluice deploy PIPELINE.yaml adds one)\n");
  fflush(stdout);
  sl_table_free(table);
}

int sl_cmd_top(int argc, char **argv) {
  const char *server = NULL, *name = NULL;
  unsigned interval_ms = 1000;
  unsigned long iterations = 0;
  bool json = false;
  static const char *const formats[] = {"json", NULL};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(top_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(arg, "--server") == 0 && has_value) {
      server = argv[++i];
    } else if (strcmp(arg, "--interval") == 0 && has_value) {
      if (!parse_interval(argv[++i], &interval_ms)) {
        fprintf(stderr, "sluice top: --interval: expected seconds like 2, 0.5 or 500ms, got '%s'\n",
                argv[i]);
        return SL_EXIT_USAGE;
      }
    } else if (strcmp(arg, "--iterations") == 0 && has_value) {
      char *end;
      errno = 0;
      iterations = strtoul(argv[++i], &end, 10);
      if (!argv[i][0] || *end || errno || iterations == 0 || argv[i][0] == '-') {
        fprintf(stderr, "sluice top: --iterations: expected a whole number above 0, got '%s'\n",
                argv[i]);
        return SL_EXIT_USAGE;
      }
    } else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) && has_value) {
      if (!sl_client_output_format("top", argv[++i], formats)) return SL_EXIT_USAGE;
      json = true;
    } else if ((arg[0] == '-' && arg[1]) || name) {
      fprintf(stderr, "sluice top: unexpected argument '%s' (see sluice top --help)\n", arg);
      return SL_EXIT_USAGE;
    } else {
      name = arg;
    }
  }
  sl_client *client = NULL;
  int rc = sl_client_open("top", server, &client);
  if (rc != SL_EXIT_OK) return rc;
  char path[1024] = "/v1/stats";
  if (name) {
    char *escaped = sl_client_escape(name);
    snprintf(path, sizeof path, "/v1/pipelines/%s/stats", escaped);
    free(escaped);
  }
  bool tty = !json && isatty(STDOUT_FILENO);
  sl_client_catch_interrupts();
  for (unsigned long done = 0; !iterations || done < iterations; done++) {
    if (done > 0) sl_client_sleep_ms(interval_ms);
    if (sl_client_interrupted()) break;
    json_t *stats = NULL;
    rc = sl_client_json(client, "GET", path, NULL, &stats);
    if (sl_client_interrupted()) { /* mid-request: nothing whole to show */
      json_decref(stats);
      break;
    }
    if (rc == SL_EXIT_OK && json)
      sl_client_print_json_line(stats);
    else if (rc == SL_EXIT_OK)
      print_snapshot(client, stats, tty, interval_ms, done);
    json_decref(stats);
    if (rc != SL_EXIT_OK) break;
  }
  sl_client_free(client);
  return rc;
}
