/*
 * bench.h - what the benchmark files share: where the inputs are, a clock, medians, and
 * the results table every benchmark adds its rows to.
 *
 * Every benchmark compares against a baseline measured in the same run (a native C
 * program doing the same work, or node's V8 running the same .wasm), so the ratios stay
 * meaningful on a noisy or shared machine even when the absolute numbers move.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/engine.h"

/* Where the inputs are, from the command line (see bench_main.c). */
typedef struct bench_config {
  const char *guests;      /* folder with passthrough.wasm, kernel.wasm, stats.wasm */
  const char *home;        /* SLUICE_HOME for the warm benchmarks */
  const char *node;        /* the node binary */
  const char *v8_script;   /* bench/v8_kernel.mjs */
  const char *cflags;      /* NULL: the engine's default; for experiments only */
  int repeats;             /* runs per measurement; the median is reported */
  bool quick;              /* fewer iterations, for checking that everything runs */
} bench_config;

/* One line of the results table. `baseline` is text (what was compared against and its
 * value); `ratio` is NAN when there is none. */
typedef enum bench_goal { BENCH_BELOW, BENCH_AT_LEAST } bench_goal;

typedef struct bench_row {
  char name[64];
  double value;
  char unit[16];
  char baseline[48];
  double ratio;
  bench_goal goal;
  double target;       /* compared with `value` (BENCH_BELOW) or `ratio` (BENCH_AT_LEAST) */
  char target_text[24];
} bench_row;

/* Appends a row; the table is printed at the end by bench_main.c. */
void bench_report(const bench_row *row);

/* Informational lines printed under the table (how a number was obtained, split-downs). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Median of `n` values (sorts them in place). */
double bench_median(double *values, size_t n);

/* Prints a message and exits: a benchmark that cannot run must not print a number. */
__attribute__((noreturn, format(printf, 1, 2))) void bench_die(const char *fmt, ...);

/* Path of a guest module: "<guests>/<name>". */
void bench_guest_path(const bench_config *config, const char *name, char *out, size_t cap);

/* Loads a module or dies with the engine's message. */
sl_module *bench_load(sl_engine *engine, const char *path, sl_compile_info *info);

/* The benchmarks, one file each. */
void bench_event_overhead(const bench_config *config, sl_engine *engine);
void bench_kernel(const bench_config *config, sl_engine *engine);
void bench_startup(const bench_config *config, sl_engine *engine);

#endif
