/*
 * cli.h - the `sluice` command: subcommand entry points and shared argument helpers.
 * Exit codes (contracts.md §1): 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/engine.h"

enum { SL_EXIT_OK = 0, SL_EXIT_FAILURE = 1, SL_EXIT_USAGE = 2 };

int sl_cmd_compile(int argc, char **argv);
int sl_cmd_invoke(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);
int sl_cmd_test(int argc, char **argv);
int sl_cmd_types(int argc, char **argv);
int sl_cmd_validate(int argc, char **argv);

/* The daemon and `sluice dev` (the same manager, in-process). */
int sl_cmd_up(int argc, char **argv);
int sl_cmd_dev(int argc, char **argv);

/* Clients of the daemon's API (client.h, docs/reference/api.md). */
int sl_cmd_deploy(int argc, char **argv);
int sl_cmd_ls(int argc, char **argv);
int sl_cmd_get(int argc, char **argv);
int sl_cmd_rm(int argc, char **argv);
int sl_cmd_logs(int argc, char **argv);
int sl_cmd_tap(int argc, char **argv);
int sl_cmd_top(int argc, char **argv);
int sl_cmd_rollback(int argc, char **argv);

/* Quick mode: the pipeline `sluice run --source/--wasm/--sink` stands for, as YAML text
 * (malloc'ed, the caller frees). SL_CONFIG with a message for an unknown URI. */
sl_status sl__quick_pipeline_yaml(const char *source, const char *const *modules,
                                  size_t module_count, const char *sink, char **yaml,
                                  size_t *yaml_len, sl_error *err);

/* "64MiB", "512KiB", "1GiB", "4096" -> bytes. False when malformed. */
bool sl_parse_size(const char *text, uint64_t *bytes);
/* "100ms", "2s", "150" (milliseconds) -> milliseconds. */
bool sl_parse_millis(const char *text, uint32_t *ms);

/* An sl_log_fn for pipelines (`user` is the sl_pipeline_spec): "[node] level: line" on
 * stderr, secrets redacted. */
void sl__cli_pipeline_log(void *spec, const char *node_id, const char *stream, const char *line,
                          size_t len);

/* Once a draining command has taken its first SIGINT/SIGTERM (blocked in `set`): exit
 * 130 at the next one, saying "WHO: ... again". */
void sl__cli_exit_on_second_signal(const char *who, const sigset_t *set);

/* Maps a library status to the exit code contracts.md §1 asks for. */
int sl_exit_code_for(sl_status status);

#endif
