/*
 * toolchain.c - spawning wasm2c and cc, and cheap toolchain identities for cache keys.
 */
#include "wasm/toolchain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* First lines of a tool's output, for an error message. */
static void tail_of_log(const char *log_path, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen(log_path, "r");
  if (!f) return;
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
  while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = '\0';
}

static sl_status spawn_tool(char *const argv[], const char *log_path, pid_t *pid, sl_error *err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  int rc = posix_spawnp(pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot run %s: %s (run scripts/bootstrap to install it)",
                        argv[0], strerror(rc));
  return SL_OK;
}

static sl_status wait_tool(char *const argv[], const char *log_path, pid_t pid, sl_error *err) {
  int wstatus;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR)
      return sl_error_set(err, SL_IO, "waiting for %s: %s", argv[0], strerror(errno));
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return SL_OK;
  char output[700];
  tail_of_log(log_path, output, sizeof output);
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127)
    return sl_error_set(err, SL_IO, "cannot run %s (run scripts/bootstrap to install it)", argv[0]);
  return sl_error_set(err, SL_DECLINED, "%s failed (%s %d): %s", argv[0],
                      WIFEXITED(wstatus) ? "exit status" : "signal",
                      WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus), output);
}

sl_status sl__run_tool(char *const argv[], const char *log_path, sl_error *err) {
  pid_t pid;
  sl_status status = spawn_tool(argv, log_path, &pid, err);
  return status == SL_OK ? wait_tool(argv, log_path, pid, err) : status;
}

sl_status sl__run_tools(char **const argvs[], char *const log_paths[], int count, sl_error *err) {
  pid_t pids[16];
  sl_status first = SL_OK;
  int started = 0;
  if (count > 16) count = 16;
  for (; started < count; started++) {
    first = spawn_tool(argvs[started], log_paths[started], &pids[started], err);
    if (first != SL_OK) break;
  }
  /* Wait for every child that started, even after a failure, so none is left behind. */
  for (int i = 0; i < started; i++) {
    sl_error child_err;
    sl_status status = wait_tool(argvs[i], log_paths[i], pids[i], &child_err);
    if (status != SL_OK && first == SL_OK) {
      first = status;
      if (err) *err = child_err;
    }
  }
  return first;
}

static bool find_in_path(const char *program, char *out, size_t cap) {
  if (strchr(program, '/')) {
    snprintf(out, cap, "%s", program);
    return access(out, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    snprintf(out, cap, "%.*s/%s", (int)n, path, program);
    if (n && access(out, X_OK) == 0) return true;
    path += n + (end ? 1 : 0);
  }
  return false;
}

void sl__tool_identity(const char *program, char *out, size_t cap) {
  char found[PATH_MAX], real[PATH_MAX];
  struct stat st;
  size_t used = strlen(out);
  if (!find_in_path(program, found, sizeof found) || !realpath(found, real) ||
      stat(real, &st) != 0) {
    snprintf(out + used, cap - used, "%s=missing;", program);
    return;
  }
  snprintf(out + used, cap - used, "%s=%s:%lld:%lld:%llu;", program, real, (long long)st.st_size,
           (long long)st.st_mtime, (unsigned long long)st.st_ino);
}
