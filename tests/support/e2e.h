/*
 * e2e.h - running the real `sluice` binary from tests: a temporary folder per test,
 * files in it, a command run to completion with its output captured, or a child process
 * kept running (for signals and servers) and stopped by its pid.
 */
#ifndef SL_TEST_E2E_H
#define SL_TEST_E2E_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct e2e_result {
  int exit_code; /* -1 when killed by a signal */
  char *out;     /* whole stdout, NUL-terminated; freed by e2e_result_free */
  char *err;
} e2e_result;

/* A fresh folder under /tmp for this test; removed by e2e_rmdir. */
static inline char *e2e_tmpdir(void) {
  static char dir[64];
  snprintf(dir, sizeof dir, "/tmp/sluice-e2e-XXXXXX");
  cr_assert(mkdtemp(dir), "mkdtemp failed");
  return dir;
}

static inline void e2e_rmdir(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Writes printf-formatted text to dir/name and returns the full path (static buffer). */
__attribute__((format(printf, 3, 4))) static inline const char *
e2e_write(const char *dir, const char *name, const char *fmt, ...) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
  return path;
}

/* The whole content of a file, malloc'ed (empty string when missing). */
static inline char *e2e_read(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)size + 1);
  size_t n = fread(buf, 1, (size_t)size, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static inline size_t e2e_count_lines(const char *text) {
  size_t n = 0;
  for (; *text; text++) n += *text == '\n';
  return n;
}

static inline const char *e2e_bin(void) {
  const char *bin = getenv("SLUICE_BIN");
  cr_assert(bin, "SLUICE_BIN is not set: run the tests with `make test`");
  return bin;
}

/* Runs the shell command `sluice ARGS` (ARGS is trusted test text, may hold redirections
 * of stdin) in `dir`, capturing stdout and stderr into files there. */
__attribute__((format(printf, 2, 3))) static inline e2e_result e2e_sluice(const char *dir,
                                                                          const char *fmt, ...) {
  char args[8192], cmd[16384], out_path[512], err_path[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(out_path, sizeof out_path, "%s/.stdout", dir);
  snprintf(err_path, sizeof err_path, "%s/.stderr", dir);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s' 2>'%s'", dir, e2e_bin(), args, out_path,
           err_path);
  int status = system(cmd);
  e2e_result r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, e2e_read(out_path),
                  e2e_read(err_path)};
  return r;
}

static inline void e2e_result_free(e2e_result *r) {
  free(r->out);
  free(r->err);
}

/* Starts `sluice ARGS` in the background through the shell's exec (so the pid is
 * sluice's own), stdout/stderr to dir/.stdout and dir/.stderr. */
__attribute__((format(printf, 2, 3))) static inline pid_t e2e_spawn(const char *dir,
                                                                    const char *fmt, ...) {
  char args[8192], cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' %s >'%s/.stdout' 2>'%s/.stderr'", dir, e2e_bin(),
           args, dir, dir);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/*
 * Starts `sluice run PIPELINE` in `dir`, stdin from `input` (NULL: /dev/null), stdout and
 * stderr into `log`; relative paths resolve in `dir`. Unlike e2e_spawn there is no shell,
 * and the child dies with the test process (PR_SET_PDEATHSIG), so a failed assertion
 * never leaves a host running against the test's servers.
 */
static inline pid_t e2e_run_child(const char *dir, const char *pipeline, const char *input,
                                  const char *log) {
  const char *bin = e2e_bin();
  pid_t parent = getpid();
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || chdir(dir) != 0) _exit(127);
    int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in_fd = open(input ? input : "/dev/null", O_RDONLY);
    if (log_fd < 0 || in_fd < 0) _exit(127);
    dup2(in_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execl(bin, "sluice", "run", pipeline, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Waits for the child; its exit code, or -1 (and the signal in *sig) when killed. */
static inline int e2e_wait(pid_t pid, int *sig) {
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  if (sig) *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Polls until `path` holds at least `lines` lines or `timeout_ms` passes. */
static inline bool e2e_wait_lines(const char *path, size_t lines, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    char *text = e2e_read(path);
    size_t n = e2e_count_lines(text);
    free(text);
    if (n >= lines) return true;
    usleep(20 * 1000);
  }
  return false;
}

/* A loopback port nobody listens on right now (bound to port 0, then released). */
static inline int e2e_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  cr_assert(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  cr_assert(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

/* Polls until something accepts connections on loopback `port`, or `timeout_ms` passes. */
static inline bool e2e_wait_port(int port, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool up = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    if (up) return true;
    usleep(20 * 1000);
  }
  return false;
}

#endif
