/*
 * wasi.c - a processor built with wasi-libc that uses the WASI imports it pulls in.
 *
 * process prints "hello from wasi: <payload>" to stdout and "to stderr" to stderr, then
 * returns one event whose payload reports what the host's WASI gave it:
 *
 *   env=<$GREETING or none>;time_ok=<0|1>;random_ok=<0|1>;open=<ok or errno name>
 *
 * time_ok is 1 when CLOCK_REALTIME says it is after 2020, random_ok is 1 when getentropy
 * filled 16 bytes that are not all zero, and open is how fopen("/etc/passwd") ended (a
 * sandboxed guest should see ENOTCAPABLE or ENOENT). The payload "exit" calls exit(3),
 * which reaches the host as proc_exit(3). The engine tests use it for stdio capture,
 * environment passing, clocks, randomness, filesystem denial and proc_exit.
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor (see guests.mk).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest_abi.h"

/* The returned line and the result stay valid until the next call. */
static char line[256];
static struct event out;
static struct result result;

static const char *errno_name(int err) {
  static char unknown[24];
  switch (err) {
  case ENOTCAPABLE: return "ENOTCAPABLE";
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EBADF: return "EBADF";
  case ENOSYS: return "ENOSYS";
  case ENOTSUP: return "ENOTSUP";
  case EINVAL: return "EINVAL";
  default:
    snprintf(unknown, sizeof unknown, "errno-%d", err);
    return unknown;
  }
}

static int time_ok(void) {
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) return 0;
  return now.tv_sec > 1577836800; /* 2020-01-01T00:00:00Z */
}

static int random_ok(void) {
  uint8_t bytes[16] = {0};
  if (getentropy(bytes, sizeof bytes) != 0) return 0;
  for (size_t i = 0; i < sizeof bytes; i++)
    if (bytes[i] != 0) return 1;
  return 0;
}

static const char *open_outcome(void) {
  FILE *file = fopen("/etc/passwd", "r");
  if (file == NULL) return errno_name(errno);
  fclose(file);
  return "ok";
}

__attribute__((export_name("process"))) struct result *process(uint8_t *payload,
                                                                size_t payload_len,
                                                                struct pair *meta,
                                                                size_t meta_count) {
  if (payload_len == 4 && memcmp(payload, "exit", 4) == 0) exit(3);

  printf("hello from wasi: %.*s\n", (int)payload_len, (const char *)payload);
  fputs("to stderr\n", stderr);
  fflush(stdout);
  fflush(stderr);

  const char *greeting = getenv("GREETING");
  int len = snprintf(line, sizeof line, "env=%s;time_ok=%d;random_ok=%d;open=%s",
                     greeting ? greeting : "none", time_ok(), random_ok(), open_outcome());
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof line) len = sizeof line - 1;
  guest_free_input(payload, meta, meta_count);

  out = (struct event){.payload = (uint8_t *)line, .payload_len = (size_t)len};
  result = (struct result){.is_err = 0, .ptr = &out, .len = 1};
  return &result;
}

__attribute__((export_name("cabi_post_process"))) void cabi_post_process(struct result *done) {
  (void)done;
}
