/*
 * main.c - `sluice`: dispatches to subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"compile", sl_cmd_compile, "compile a processor module into the native cache"},
    {"invoke", sl_cmd_invoke, "run one event through a processor and print the result"},
    {"run", sl_cmd_run, "run a pipeline in the foreground (a file, or --source/--wasm/--sink)"},
    {"test", sl_cmd_test, "run the test cases declared in a pipeline file"},
    {"types", sl_cmd_types, "list the node types (sources, processors, sinks) and their settings"},
    {"validate", sl_cmd_validate, "check a pipeline file and its modules without running it"},
};

static void usage(FILE *out) {
  fprintf(
      out,
      "Sluice: stream and ETL pipelines whose transforms are sandboxed WebAssembly processors.\n"
      "\n"
      "Usage: sluice COMMAND [ARGS...]\n"
      "\n"
      "Commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "\n"
          "Not built yet: up, deploy, ls, rm (daemon).\n"
          "\n"
          "`sluice COMMAND --help` describes a command. State and the compile cache live under\n"
          "$SLUICE_HOME (default ~/.sluice).\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return SL_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return SL_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("sluice 0.1.0\n");
    return SL_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "sluice: unknown command '%s' (see sluice --help)\n", argv[1]);
  return SL_EXIT_USAGE;
}
