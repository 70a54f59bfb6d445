/*
 * main.c - `sluice`: dispatches to subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command local_commands[] = {
    {"compile", sl_cmd_compile, "compile a processor module into the native cache"},
    {"invoke", sl_cmd_invoke, "run one event through a processor and print the result"},
    {"run", sl_cmd_run, "run a pipeline in the foreground (a file, or --source/--wasm/--sink)"},
    {"dev", sl_cmd_dev, "run a pipeline and hot-swap it whenever its file or modules change"},
    {"test", sl_cmd_test, "run the test cases declared in a pipeline file"},
    {"types", sl_cmd_types, "list the node types (sources, processors, sinks) and their settings"},
    {"validate", sl_cmd_validate, "check a pipeline file and its modules without running it"},
};

/* Clients of the daemon's API; `up` is the daemon itself. */
static const command daemon_commands[] = {
    {"up", sl_cmd_up, "start the daemon that runs deployed pipelines (the API on :7400)"},
    {"deploy", sl_cmd_deploy, "upload a pipeline and its modules to the daemon and run it"},
    {"ls", sl_cmd_ls, "list the daemon's pipelines"},
    {"get", sl_cmd_get, "show one pipeline: status, nodes, versions, or its source"},
    {"rm", sl_cmd_rm, "drain, stop and forget a pipeline"},
    {"logs", sl_cmd_logs, "print a pipeline's log lines (-f follows)"},
    {"tap", sl_cmd_tap, "print sampled events flowing out of a node"},
    {"top", sl_cmd_top, "live per-node rates, errors, queues and latency"},
    {"rollback", sl_cmd_rollback, "run an earlier version of a pipeline again"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *out) {
  fprintf(
      out,
      "Sluice: stream and ETL pipelines whose transforms are sandboxed WebAssembly processors.\n"
      "\n"
      "Usage: sluice COMMAND [ARGS...]\n"
      "\n"
      "Pipelines on this machine:\n");
  for (size_t i = 0; i < COUNT(local_commands); i++)
    fprintf(out, "  %-10s %s\n", local_commands[i].name, local_commands[i].summary);
  fprintf(out, "\nThe daemon and its clients (--server URL or SLUICE_SERVER, default "
               "http://127.0.0.1:7400):\n");
  for (size_t i = 0; i < COUNT(daemon_commands); i++)
    fprintf(out, "  %-10s %s\n", daemon_commands[i].name, daemon_commands[i].summary);
  fprintf(out,
          "\n"
          "`sluice COMMAND --help` describes a command. State, the compile cache and the daemon's\n"
          "token live under $SLUICE_HOME (default ~/.sluice).\n");
}

static const command *find_command(const char *name) {
  for (size_t i = 0; i < COUNT(local_commands); i++)
    if (strcmp(name, local_commands[i].name) == 0) return &local_commands[i];
  for (size_t i = 0; i < COUNT(daemon_commands); i++)
    if (strcmp(name, daemon_commands[i].name) == 0) return &daemon_commands[i];
  return NULL;
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
  const command *cmd = find_command(argv[1]);
  if (cmd) return cmd->run(argc - 1, argv + 1);
  fprintf(stderr, "sluice: unknown command '%s' (see sluice --help)\n", argv[1]);
  return SL_EXIT_USAGE;
}
