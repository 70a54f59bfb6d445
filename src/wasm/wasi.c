/*
 * wasi.c - the WASI preview 1 functions processors may import (see wasi.h).
 *
 * Every pointer and length comes from the guest, so each access goes through
 * guest_range(), which checks it against the current size of linear memory with 64-bit
 * arithmetic. A bad pointer is answered with EFAULT, as a kernel would, rather than a trap.
 */
#include "wasm/wasi.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "wasm/runtime.h"

typedef uint32_t u32;
typedef uint64_t u64;

/* WASI errno values used here. */
enum {
  WASI_ESUCCESS = 0,
  WASI_EBADF = 8,
  WASI_EFAULT = 21,
  WASI_EINVAL = 28,
  WASI_EIO = 29,
  WASI_ENOSYS = 52,
  WASI_ENOTSUP = 58,
  WASI_ENOTCAPABLE = 76,
};

/* Name, signature. Functions the host implements; anything else is refused at load. */
#define SL_WASI_FUNCTIONS(X)                                                                       \
  X(args_get, "ii:i")                                                                              \
  X(args_sizes_get, "ii:i")                                                                        \
  X(environ_get, "ii:i")                                                                           \
  X(environ_sizes_get, "ii:i")                                                                     \
  X(clock_res_get, "ii:i")                                                                         \
  X(clock_time_get, "iIi:i")                                                                       \
  X(random_get, "ii:i")                                                                            \
  X(sched_yield, ":i")                                                                             \
  X(proc_exit, "i:")                                                                               \
  X(proc_raise, "i:i")                                                                             \
  X(fd_write, "iiii:i")                                                                            \
  X(fd_read, "iiii:i")                                                                             \
  X(fd_pread, "iiIi:i")                                                                            \
  X(fd_pwrite, "iiIi:i")                                                                           \
  X(fd_close, "i:i")                                                                               \
  X(fd_seek, "iIii:i")                                                                             \
  X(fd_tell, "ii:i")                                                                               \
  X(fd_sync, "i:i")                                                                                \
  X(fd_datasync, "i:i")                                                                            \
  X(fd_advise, "iIIi:i")                                                                           \
  X(fd_allocate, "iII:i")                                                                          \
  X(fd_fdstat_get, "ii:i")                                                                         \
  X(fd_fdstat_set_flags, "ii:i")                                                                   \
  X(fd_fdstat_set_rights, "iII:i")                                                                 \
  X(fd_filestat_get, "ii:i")                                                                       \
  X(fd_filestat_set_size, "iI:i")                                                                  \
  X(fd_filestat_set_times, "iIIi:i")                                                               \
  X(fd_prestat_get, "ii:i")                                                                        \
  X(fd_prestat_dir_name, "iii:i")                                                                  \
  X(fd_readdir, "iiiIi:i")                                                                         \
  X(fd_renumber, "ii:i")                                                                           \
  X(path_open, "iiiiiIIii:i")                                                                      \
  X(path_filestat_get, "iiiii:i")                                                                  \
  X(path_filestat_set_times, "iiiiIIi:i")                                                          \
  X(path_create_directory, "iii:i")                                                                \
  X(path_remove_directory, "iii:i")                                                                \
  X(path_unlink_file, "iii:i")                                                                     \
  X(path_rename, "iiiiii:i")                                                                       \
  X(path_readlink, "iiiiii:i")                                                                     \
  X(path_symlink, "iiiii:i")                                                                       \
  X(path_link, "iiiiiii:i")                                                                        \
  X(poll_oneoff, "iiii:i")                                                                         \
  X(sock_accept, "iii:i")                                                                          \
  X(sock_recv, "iiiiii:i")                                                                         \
  X(sock_send, "iiiii:i")                                                                          \
  X(sock_shutdown, "ii:i")

const char *sl__wasi_signature(const char *name) {
#define SL_WASI_LOOKUP(fn, sig)                                                                    \
  if (strcmp(name, #fn) == 0) return sig;
  SL_WASI_FUNCTIONS(SL_WASI_LOOKUP)
#undef SL_WASI_LOOKUP
  return NULL;
}

void sl__log_stderr(void *user, const char *node_id, const char *stream, const char *line,
                    size_t len) {
  (void)user;
  /* "[node] line" for stdout and notices, "[node:stderr] line" for the guest's stderr. */
  fprintf(stderr, "[%s%s] %.*s\n", node_id ? node_id : "processor",
          strcmp(stream, "stderr") == 0 ? ":stderr" : "", (int)len, line);
}

/* ---- guest memory access ----------------------------------------------------------- */

static int guest_range(const sl_wasi *w, u32 ptr, u64 len) {
  return w->memory && (u64)ptr + len <= w->memory->size;
}

static int put_u32(sl_wasi *w, u32 ptr, u32 value) {
  if (!guest_range(w, ptr, 4)) return 0;
  memcpy(w->memory->data + ptr, &value, 4);
  return 1;
}

static int put_u64(sl_wasi *w, u32 ptr, u64 value) {
  if (!guest_range(w, ptr, 8)) return 0;
  memcpy(w->memory->data + ptr, &value, 8);
  return 1;
}

/* ---- output ------------------------------------------------------------------------ */

static void emit_line(sl_wasi *w, int stream, const char *text, size_t len) {
  sl_log_fn log = w->log ? w->log : sl__log_stderr;
  log(w->log_user, w->node_id, stream == 1 ? "stdout" : "stderr", text, len);
}

/* Splits guest output into lines; a line longer than the buffer is emitted in pieces. */
static void write_stream(sl_wasi *w, int stream, const uint8_t *bytes, size_t len) {
  char *buf = w->line[stream - 1];
  size_t *used = &w->line_len[stream - 1];
  for (size_t i = 0; i < len; i++) {
    if (bytes[i] == '\n') {
      emit_line(w, stream, buf, *used);
      *used = 0;
      continue;
    }
    if (*used == sizeof w->line[0]) {
      emit_line(w, stream, buf, *used);
      *used = 0;
    }
    buf[(*used)++] = (char)bytes[i];
  }
}

void sl__wasi_flush(sl_wasi *w) {
  for (int s = 1; s <= 2; s++) {
    if (w->line_len[s - 1]) emit_line(w, s, w->line[s - 1], w->line_len[s - 1]);
    w->line_len[s - 1] = 0;
  }
}

u32 Z_wasi_snapshot_preview1Z_fd_write(sl_wasi *w, u32 fd, u32 iovs, u32 iovs_len,
                                       u32 nwritten_ptr) {
  if (fd != 1 && fd != 2) return WASI_EBADF;
  if (!guest_range(w, iovs, (u64)iovs_len * 8)) return WASI_EFAULT;
  u64 total = 0;
  for (u32 i = 0; i < iovs_len; i++) {
    u32 base, len;
    memcpy(&base, w->memory->data + iovs + (u64)i * 8, 4);
    memcpy(&len, w->memory->data + iovs + (u64)i * 8 + 4, 4);
    if (!guest_range(w, base, len)) return WASI_EFAULT;
    write_stream(w, (int)fd, w->memory->data + base, len);
    total += len;
  }
  return put_u32(w, nwritten_ptr, (u32)total) ? WASI_ESUCCESS : WASI_EFAULT;
}

/* ---- environment and arguments ----------------------------------------------------- */

u32 Z_wasi_snapshot_preview1Z_environ_sizes_get(sl_wasi *w, u32 count_ptr, u32 size_ptr) {
  u64 size = 0;
  for (size_t i = 0; i < w->environ_count; i++) size += strlen(w->environ[i]) + 1;
  if (!put_u32(w, count_ptr, (u32)w->environ_count) || !put_u32(w, size_ptr, (u32)size))
    return WASI_EFAULT;
  return WASI_ESUCCESS;
}

u32 Z_wasi_snapshot_preview1Z_environ_get(sl_wasi *w, u32 environ_ptr, u32 buf_ptr) {
  u32 at = buf_ptr;
  for (size_t i = 0; i < w->environ_count; i++) {
    size_t len = strlen(w->environ[i]) + 1;
    if (!guest_range(w, at, len) || !put_u32(w, environ_ptr + (u32)i * 4, at)) return WASI_EFAULT;
    memcpy(w->memory->data + at, w->environ[i], len);
    at += (u32)len;
  }
  return WASI_ESUCCESS;
}

u32 Z_wasi_snapshot_preview1Z_args_sizes_get(sl_wasi *w, u32 count_ptr, u32 size_ptr) {
  if (!put_u32(w, count_ptr, 0) || !put_u32(w, size_ptr, 0)) return WASI_EFAULT;
  return WASI_ESUCCESS;
}

u32 Z_wasi_snapshot_preview1Z_args_get(sl_wasi *w, u32 argv_ptr, u32 buf_ptr) {
  (void)w, (void)argv_ptr, (void)buf_ptr;
  return WASI_ESUCCESS;
}

/* ---- clocks, randomness, scheduling, exit ------------------------------------------ */

static int clock_of(u32 id, clockid_t *out) {
  switch (id) {
  case 0:
    *out = CLOCK_REALTIME;
    return 1;
  case 1:
    *out = CLOCK_MONOTONIC;
    return 1;
  case 2:
    *out = CLOCK_PROCESS_CPUTIME_ID;
    return 1;
  case 3:
    *out = CLOCK_THREAD_CPUTIME_ID;
    return 1;
  default:
    return 0;
  }
}

u32 Z_wasi_snapshot_preview1Z_clock_res_get(sl_wasi *w, u32 id, u32 res_ptr) {
  clockid_t clock;
  struct timespec ts;
  if (!clock_of(id, &clock) || clock_getres(clock, &ts) != 0) return WASI_EINVAL;
  return put_u64(w, res_ptr, (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec) ? WASI_ESUCCESS
                                                                             : WASI_EFAULT;
}

u32 Z_wasi_snapshot_preview1Z_clock_time_get(sl_wasi *w, u32 id, u64 precision, u32 time_ptr) {
  (void)precision;
  clockid_t clock;
  struct timespec ts;
  if (!clock_of(id, &clock) || clock_gettime(clock, &ts) != 0) return WASI_EINVAL;
  return put_u64(w, time_ptr, (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec) ? WASI_ESUCCESS
                                                                              : WASI_EFAULT;
}

u32 Z_wasi_snapshot_preview1Z_random_get(sl_wasi *w, u32 buf, u32 len) {
  if (!guest_range(w, buf, len)) return WASI_EFAULT;
  size_t done = 0;
  while (done < len) {
    ssize_t n = getrandom(w->memory->data + buf + done, len - done, 0);
    if (n <= 0) return WASI_EIO;
    done += (size_t)n;
  }
  return WASI_ESUCCESS;
}

u32 Z_wasi_snapshot_preview1Z_sched_yield(sl_wasi *w) {
  (void)w;
  return WASI_ESUCCESS;
}

void Z_wasi_snapshot_preview1Z_proc_exit(sl_wasi *w, u32 code) {
  char detail[64];
  w->exit_code = code;
  snprintf(detail, sizeof detail, "the processor exited with status %u", code);
  sl__rt_trap(SL_FAULT_EXIT, detail);
}

u32 Z_wasi_snapshot_preview1Z_proc_raise(sl_wasi *w, u32 sig) {
  (void)w, (void)sig;
  return WASI_ENOSYS;
}

/* ---- files and sockets: a processor has none ---------------------------------------- */

u32 Z_wasi_snapshot_preview1Z_fd_fdstat_get(sl_wasi *w, u32 fd, u32 stat_ptr) {
  /* stdout and stderr exist (so wasi-libc's stdio works); they are character devices. */
  if (fd != 1 && fd != 2) return WASI_EBADF;
  if (!guest_range(w, stat_ptr, 24)) return WASI_EFAULT;
  uint8_t stat[24] = {0};
  stat[0] = 2;                                    /* filetype: character device */
  u64 rights = (1u << 6) | (1u << 4) | (1u << 3); /* fd_write, fd_fdstat_set_flags, sync */
  memcpy(stat + 8, &rights, 8);
  memcpy(w->memory->data + stat_ptr, stat, sizeof stat);
  return WASI_ESUCCESS;
}

u32 Z_wasi_snapshot_preview1Z_fd_close(sl_wasi *w, u32 fd) {
  (void)w;
  return fd == 1 || fd == 2 ? WASI_ESUCCESS : WASI_EBADF;
}

u32 Z_wasi_snapshot_preview1Z_fd_seek(sl_wasi *w, u32 fd, u64 offset, u32 whence, u32 out) {
  (void)w, (void)offset, (void)whence, (void)out;
  return fd <= 2 ? WASI_ENOTSUP : WASI_EBADF; /* "ESPIPE"-like: streams cannot seek */
}

u32 Z_wasi_snapshot_preview1Z_fd_prestat_get(sl_wasi *w, u32 fd, u32 out) {
  (void)w, (void)fd, (void)out;
  return WASI_EBADF; /* no preopened directories: this ends wasi-libc's preopen scan */
}

#define ANSWER(errno_value, name, params, ...)                                                     \
  u32 Z_wasi_snapshot_preview1Z_##name params {                                                    \
    (void)w;                                                                                       \
    __VA_ARGS__;                                                                                   \
    return errno_value;                                                                            \
  }
#define NO_FILES(name, params, ...) ANSWER(WASI_EBADF, name, params, __VA_ARGS__)
#define NO_SOCKETS(name, params, ...) ANSWER(WASI_ENOTSUP, name, params, __VA_ARGS__)

NO_FILES(fd_read, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c), (void)fd, (void)a, (void)b, (void)c)
NO_FILES(fd_pread, (sl_wasi * w, u32 fd, u32 a, u32 b, u64 c, u32 d), (void)fd, (void)a, (void)b,
         (void)c, (void)d)
NO_FILES(fd_pwrite, (sl_wasi * w, u32 fd, u32 a, u32 b, u64 c, u32 d), (void)fd, (void)a, (void)b,
         (void)c, (void)d)
NO_FILES(fd_tell, (sl_wasi * w, u32 fd, u32 a), (void)fd, (void)a)
NO_FILES(fd_sync, (sl_wasi * w, u32 fd), (void)fd)
NO_FILES(fd_datasync, (sl_wasi * w, u32 fd), (void)fd)
NO_FILES(fd_advise, (sl_wasi * w, u32 fd, u64 a, u64 b, u32 c), (void)fd, (void)a, (void)b, (void)c)
NO_FILES(fd_allocate, (sl_wasi * w, u32 fd, u64 a, u64 b), (void)fd, (void)a, (void)b)
NO_FILES(fd_fdstat_set_flags, (sl_wasi * w, u32 fd, u32 a), (void)fd, (void)a)
NO_FILES(fd_fdstat_set_rights, (sl_wasi * w, u32 fd, u64 a, u64 b), (void)fd, (void)a, (void)b)
NO_FILES(fd_filestat_get, (sl_wasi * w, u32 fd, u32 a), (void)fd, (void)a)
NO_FILES(fd_filestat_set_size, (sl_wasi * w, u32 fd, u64 a), (void)fd, (void)a)
NO_FILES(fd_filestat_set_times, (sl_wasi * w, u32 fd, u64 a, u64 b, u32 c), (void)fd, (void)a,
         (void)b, (void)c)
NO_FILES(fd_prestat_dir_name, (sl_wasi * w, u32 fd, u32 a, u32 b), (void)fd, (void)a, (void)b)
NO_FILES(fd_readdir, (sl_wasi * w, u32 fd, u32 a, u32 b, u64 c, u32 d), (void)fd, (void)a, (void)b,
         (void)c, (void)d)
NO_FILES(fd_renumber, (sl_wasi * w, u32 fd, u32 a), (void)fd, (void)a)
NO_FILES(path_open, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d, u64 e, u64 f, u32 g, u32 h),
         (void)fd, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h)
NO_FILES(path_filestat_get, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d), (void)fd, (void)a,
         (void)b, (void)c, (void)d)
NO_FILES(path_filestat_set_times, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u64 d, u64 e, u32 f),
         (void)fd, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f)
NO_FILES(path_create_directory, (sl_wasi * w, u32 fd, u32 a, u32 b), (void)fd, (void)a, (void)b)
NO_FILES(path_remove_directory, (sl_wasi * w, u32 fd, u32 a, u32 b), (void)fd, (void)a, (void)b)
NO_FILES(path_unlink_file, (sl_wasi * w, u32 fd, u32 a, u32 b), (void)fd, (void)a, (void)b)
NO_FILES(path_rename, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d, u32 e), (void)fd, (void)a,
         (void)b, (void)c, (void)d, (void)e)
NO_FILES(path_readlink, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d, u32 e), (void)fd, (void)a,
         (void)b, (void)c, (void)d, (void)e)
NO_FILES(path_symlink, (sl_wasi * w, u32 a, u32 b, u32 fd, u32 c, u32 d), (void)fd, (void)a,
         (void)b, (void)c, (void)d)
NO_FILES(path_link, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d, u32 e, u32 f), (void)fd,
         (void)a, (void)b, (void)c, (void)d, (void)e, (void)f)
NO_SOCKETS(sock_accept, (sl_wasi * w, u32 fd, u32 a, u32 b), (void)fd, (void)a, (void)b)
NO_SOCKETS(sock_recv, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d, u32 e), (void)fd, (void)a,
           (void)b, (void)c, (void)d, (void)e)
NO_SOCKETS(sock_send, (sl_wasi * w, u32 fd, u32 a, u32 b, u32 c, u32 d), (void)fd, (void)a, (void)b,
           (void)c, (void)d)
NO_SOCKETS(sock_shutdown, (sl_wasi * w, u32 fd, u32 a), (void)fd, (void)a)

u32 Z_wasi_snapshot_preview1Z_poll_oneoff(sl_wasi *w, u32 in, u32 out, u32 n, u32 nevents) {
  (void)w, (void)in, (void)out, (void)n, (void)nevents;
  return WASI_ENOSYS; /* a processor must not block its worker thread */
}
