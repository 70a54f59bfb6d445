/*
 * bench_main.c - runs every Sluice benchmark and prints one results table.
 *
 *     sluice_bench --guests DIR --home DIR [--node node] [--v8-script bench/v8_kernel.mjs]
 *                  [--repeats N] [--quick] [--only event|kernel|startup] [--cflags FLAGS]
 *
 * `make bench` builds the guests and runs this with the right paths. The table has one
 * row per measurement: its value, the baseline measured in the same run, the ratio, the
 * target and PASS or MISS. The exit status is 0 whether targets are met or not (a miss is
 * a result, not an error); it is 1 only when a benchmark could not run.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_ROWS 32
#define MAX_NOTES 32

static bench_row rows[MAX_ROWS];
static size_t row_count;
static char notes[MAX_NOTES][256];
static size_t note_count;

void bench_report(const bench_row *row) {
  if (row_count == MAX_ROWS) bench_die("too many result rows");
  rows[row_count++] = *row;
}

void bench_note(const char *fmt, ...) {
  if (note_count == MAX_NOTES) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(notes[note_count++], sizeof notes[0], fmt, ap);
  va_end(ap);
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *values, size_t n) {
  if (n == 0) return NAN;
  qsort(values, n, sizeof *values, compare_doubles);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void bench_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sluice_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void bench_guest_path(const bench_config *config, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", config->guests, name);
}

sl_module *bench_load(sl_engine *engine, const char *path, sl_compile_info *info) {
  sl_module *module = NULL;
  sl_error err;
  sl_status status = sl_module_load_file(engine, path, &module, info, &err);
  if (status != SL_OK) bench_die("%s: %s", sl_status_name(status), err.message);
  return module;
}

/* ---- the machine, so a reader can compare runs ------------------------------------- */

static void first_line_of(const char *command, char *out, size_t cap) {
  out[0] = '\0';
  FILE *p = popen(command, "r");
  if (!p) return;
  if (fgets(out, (int)cap, p)) out[strcspn(out, "\n")] = '\0';
  pclose(p);
}

static void cpu_model(char *out, size_t cap) {
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char *colon = strchr(line, ':');
    if (colon) {
      snprintf(out, cap, "%s", colon + 2);
      out[strcspn(out, "\n")] = '\0';
    }
    break;
  }
  fclose(f);
}

static void load_average(char *out, size_t cap) {
  double load[3] = {0};
  if (getloadavg(load, 3) != 3) snprintf(out, cap, "unknown");
  else snprintf(out, cap, "%.2f %.2f %.2f", load[0], load[1], load[2]);
}

static void print_machine(const bench_config *config) {
  char cpu[256], gcc[128], node[64], wasm2c[64], load[64], command[512];
  struct utsname uts;
  cpu_model(cpu, sizeof cpu);
  first_line_of("gcc --version 2>/dev/null", gcc, sizeof gcc);
  first_line_of("wasm2c --version 2>/dev/null", wasm2c, sizeof wasm2c);
  snprintf(command, sizeof command, "'%s' --version 2>/dev/null", config->node);
  first_line_of(command, node, sizeof node);
  load_average(load, sizeof load);
  uname(&uts);
  printf("# machine: %s, %ld online CPUs, Linux %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
         uts.release);
  printf("# tools:   %s; wasm2c %s; node %s\n", gcc, wasm2c, node);
  printf("# load average before: %s; median of %d runs per measurement\n", load,
         config->repeats);
}

/* ---- the table --------------------------------------------------------------------- */

static void format_number(double v, char *out, size_t cap) {
  double a = fabs(v);
  if (isnan(v)) snprintf(out, cap, "-");
  else if (a >= 100) snprintf(out, cap, "%.0f", v);
  else if (a >= 10) snprintf(out, cap, "%.1f", v);
  else snprintf(out, cap, "%.2f", v);
}

static bool row_passes(const bench_row *row) {
  if (row->goal == BENCH_BELOW) return row->value < row->target;
  return row->ratio >= row->target;
}

static void print_table(void) {
  printf("\n| %-36s | %8s | %-9s | %-26s | %7s | %-9s | %-6s |\n", "benchmark", "value", "unit",
         "baseline (same run)", "ratio", "target", "result");
  printf("|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------------------", "---------:",
         "-----------", "----------------------------", "--------:", "-----------", "--------");
  size_t misses = 0;
  for (size_t i = 0; i < row_count; i++) {
    const bench_row *row = &rows[i];
    char value[32], ratio[32];
    format_number(row->value, value, sizeof value);
    if (isnan(row->ratio)) snprintf(ratio, sizeof ratio, "-");
    else snprintf(ratio, sizeof ratio, "%.2fx", row->ratio);
    bool pass = row_passes(row);
    misses += !pass;
    printf("| %-36s | %8s | %-9s | %-26s | %7s | %-9s | %-6s |\n", row->name, value, row->unit,
           row->baseline[0] ? row->baseline : "-", ratio, row->target_text,
           pass ? "PASS" : "MISS");
  }
  printf("\n");
  for (size_t i = 0; i < note_count; i++) printf("- %s\n", notes[i]);
  char load[64];
  load_average(load, sizeof load);
  printf("\n# load average after: %s; %zu of %zu targets met\n", load, row_count - misses,
         row_count);
}

/* Processor output goes to stderr as usual, except from nodes named "bench-quiet", whose
 * lines would only be the same init message repeated thousands of times. */
static void on_log(void *user, const char *node_id, const char *stream, const char *line,
                   size_t len) {
  (void)user;
  if (strcmp(node_id, "bench-quiet") == 0) return;
  fprintf(stderr, "[%s] %s: %.*s\n", node_id, stream, (int)len, line);
}

/* ---- main -------------------------------------------------------------------------- */

static const char usage[] =
    "usage: sluice_bench --guests DIR --home DIR [--node PATH] [--v8-script FILE]\n"
    "                    [--repeats N] [--quick] [--only event|kernel|startup]\n"
    "                    [--cflags FLAGS]   (the engine's C flags, for experiments)\n";

int main(int argc, char **argv) {
  bench_config config = {.node = "node", .v8_script = "bench/v8_kernel.mjs", .repeats = 11};
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--quick") == 0) {
      config.quick = true;
      continue;
    }
    if (!value) bench_die("%s needs a value\n%s", arg, usage);
    if (strcmp(arg, "--guests") == 0) config.guests = value;
    else if (strcmp(arg, "--home") == 0) config.home = value;
    else if (strcmp(arg, "--node") == 0) config.node = value;
    else if (strcmp(arg, "--v8-script") == 0) config.v8_script = value;
    else if (strcmp(arg, "--repeats") == 0) config.repeats = atoi(value);
    else if (strcmp(arg, "--only") == 0) only = value;
    else if (strcmp(arg, "--cflags") == 0) config.cflags = value;
    else bench_die("unknown option %s\n%s", arg, usage);
    i++;
  }
  if (!config.guests || !config.home || config.repeats < 1) bench_die("%s", usage);
  if (config.quick && config.repeats > 3) config.repeats = 3;
  if (only && strcmp(only, "event") != 0 && strcmp(only, "kernel") != 0 &&
      strcmp(only, "startup") != 0)
    bench_die("--only takes event, kernel or startup\n%s", usage);

  setvbuf(stdout, NULL, _IOLBF, 0);
  print_machine(&config);

  sl_engine_options options = {.home = config.home, .cflags = config.cflags, .log = on_log};
  sl_engine *engine = NULL;
  sl_error err;
  if (sl_engine_new(&options, &engine, &err) != SL_OK) bench_die("%s", err.message);

  if (!only || strcmp(only, "event") == 0) bench_event_overhead(&config, engine);
  if (!only || strcmp(only, "kernel") == 0) bench_kernel(&config, engine);
  if (!only || strcmp(only, "startup") == 0) bench_startup(&config, engine);

  print_table();
  sl_engine_destroy(engine);
  return 0;
}
