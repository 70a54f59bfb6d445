/*
 * file_source.c - `type: file` without inputs: one event per line of a file, read once
 * or followed like `tail -F`; the acknowledged offset is checkpointed so a restart
 * neither loses nor re-sends acknowledged lines.
 *
 * A thread of the source's own reads the file with sl_line_reader and emits batches of
 * sl_source_batch_size() lines. Each batch covers bytes [start, end) of one file; its
 * acknowledgement marks that range done in an sl_checkpoint (checkpoint.h), whose
 * acknowledged prefix is written to `<state_dir>/<node id>.offset` by this thread, at
 * most every 200 ms, and once more when the source is destroyed. After a `kill -9` the
 * lines after the last written checkpoint are read again: at-least-once delivery.
 *
 *   start position     checkpoint -> start_at, decided in start() (open_file)
 *   following          EOF -> wait poll_interval -> read again; a replaced file is read
 *                      to its end, then the new one from 0; a truncated one from 0
 *   checkpointing      emit_batch / on_ack / save_checkpoint
 */
#include "connectors/file/file_source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connectors/file/checkpoint.h"
#include "core/line_reader.h"
#include "sluice/connector.h"

/* The checkpoint file is rewritten at most this often while acks come in. */
#define SAVE_INTERVAL_MS 200

/* Why the current file is being read to its end before the next one. */
typedef enum finish_reason {
  FINISH_NONE,
  FINISH_REPLACED,  /* the path names another file: read this one out, then open that */
  FINISH_TRUNCATED, /* shorter than what was read: emit what is buffered, then go to 0 */
} finish_reason;

typedef struct file_source {
  const sl_node_ctx *node;
  const file_source_config *config;
  sl_source_port *port;
  pthread_t thread;
  bool thread_started;
  int wake_fd; /* stop() and destroy() write here so a waiting poll() returns */
  atomic_bool stopping;

  /* The file being read. start() sets these, then only the source thread uses them. */
  int fd;           /* -1 while following a path that does not exist (yet) */
  uint64_t ino;     /* the inode `fd` reads: checkpoints name it */
  bool opened_once; /* start_at applies to the first file only */
  finish_reason finishing;
  bool waiting_logged; /* "waiting for PATH" is said once, not every poll */
  sl_line_reader reader;

  /*
   * Checkpointing; `checkpoint_path` is NULL with `checkpoint: false`.
   *
   * A batch whose ack failed (status neither SL_OK nor SL_CLOSED) still counts as done
   * and the checkpoint moves past it: the runtime has already recorded the failure where
   * it happened (a sink's error, `<id>.errors`), so holding the checkpoint back would
   * re-send every later line after a restart while never delivering this one either.
   * SL_CLOSED is different: the pipeline stopped before delivering, so the range stays
   * open and its lines are read again after the restart.
   */
  char *checkpoint_path;
  sl_checkpoint progress; /* the acks' side; its own mutex, on_ack runs on runtime threads */
  sl_file_pos saved;      /* what the checkpoint file holds; source thread and destroy */
  bool has_saved;
  uint64_t saved_at_ms;
  bool save_failing; /* a failing save is logged once, not every 200 ms */

  /* A sink that fails every batch must not flood the log: on_ack (any thread) says so
   * at most once a second and counts the batches it did not mention. */
  _Atomic uint64_t failure_logged_ms;
  _Atomic uint64_t failures_unlogged;
} file_source;

/*
 * One emitted batch, for its on_ack. Two references: the emitting thread's, dropped once
 * sl_source_emit returned, and the ack's, dropped by on_ack (or by the emitter when the
 * emit failed without calling on_ack). The last one frees it.
 */
typedef struct batch_ticket {
  file_source *src;
  uint64_t seq; /* from sl__checkpoint_add */
  uint64_t end; /* offset just past the batch, for messages */
  atomic_int refs;
  atomic_bool acked;
} batch_ticket;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *node_id(const file_source *src) { return src->node->id; }

/* --- checkpointing ---------------------------------------------------------------- */

static void ticket_release(batch_ticket *ticket) {
  if (atomic_fetch_sub(&ticket->refs, 1) == 1) free(ticket);
}

static void log_failure(file_source *src, uint64_t end, sl_status delivered) {
  uint64_t now = now_ms(), last = atomic_load(&src->failure_logged_ms);
  if (now - last < 1000 || !atomic_compare_exchange_strong(&src->failure_logged_ms, &last, now)) {
    atomic_fetch_add(&src->failures_unlogged, 1);
    return;
  }
  uint64_t unlogged = atomic_exchange(&src->failures_unlogged, 0);
  char more[96] = "";
  if (unlogged)
    snprintf(more, sizeof more, " (and %" PRIu64 " more batches since the last message)", unlogged);
  sl_node_log(src->node, SL_LOG_WARN,
              "lines of %s up to offset %" PRIu64 " were not all delivered%s: %s; the failure "
              "is recorded where it happened, so the checkpoint moves past them",
              src->config->path, end, more, sl_status_str(delivered));
}

static void on_ack(void *cookie, sl_status delivered) {
  batch_ticket *ticket = cookie;
  file_source *src = ticket->src;
  if (delivered == SL_CLOSED) {
    /* Not delivered because the pipeline stopped: leave the range open (see above). */
  } else {
    if (delivered != SL_OK) log_failure(src, ticket->end, delivered);
    sl__checkpoint_done(&src->progress, ticket->seq);
  }
  atomic_store(&ticket->acked, true);
  ticket_release(ticket);
}

/* Writes the acknowledged position if it moved and (unless `force`) the last write is
 * SAVE_INTERVAL_MS old. Source thread, or destroy() once the thread is gone. */
static void save_checkpoint(file_source *src, bool force) {
  if (!src->checkpoint_path || !src->opened_once) return; /* nothing to say yet */
  uint64_t now = now_ms();
  if (!force && now - src->saved_at_ms < SAVE_INTERVAL_MS) return;
  sl_file_pos pos = sl__checkpoint_position(&src->progress);
  if (src->has_saved && pos.ino == src->saved.ino && pos.offset == src->saved.offset) return;
  sl_error err;
  src->saved_at_ms = now;
  if (sl__checkpoint_save(src->checkpoint_path, pos, &err) != SL_OK) {
    if (!src->save_failing)
      sl_node_log(src->node, SL_LOG_ERROR, "cannot save the checkpoint: %s", err.message);
    src->save_failing = true;
    return;
  }
  if (src->save_failing) sl_node_log(src->node, SL_LOG_INFO, "the checkpoint is saved again");
  src->save_failing = false;
  src->saved = pos;
  src->has_saved = true;
}

/* Emits *batch, which ends at `end` in the current file. SL_CLOSED: stop reading. */
static sl_status emit_batch(file_source *src, sl_event_list **batch, uint64_t end) {
  if (!src->checkpoint_path) return sl_source_emit(src->port, batch, NULL, NULL);
  batch_ticket *ticket = malloc(sizeof *ticket);
  if (!ticket) abort(); /* host out of memory */
  ticket->src = src;
  ticket->end = end;
  atomic_init(&ticket->refs, 2);
  atomic_init(&ticket->acked, false);
  /* Recorded before the emit: the ack may arrive before sl_source_emit returns. */
  ticket->seq = sl__checkpoint_add(&src->progress, (sl_file_pos){src->ino, end});
  sl_status status = sl_source_emit(src->port, batch, on_ack, ticket);
  if (status != SL_OK && !atomic_load(&ticket->acked)) ticket_release(ticket); /* no ack comes */
  ticket_release(ticket);
  save_checkpoint(src, false);
  return status;
}

/* --- opening and following -------------------------------------------------------- */

/*
 * Where to begin in a file just opened (inode `ino`, `size` bytes). The checkpoint is
 * consulted for the first file this source opens; `start_at` applies only to a file
 * that existed when the source started. A file that appears later, or replaces the one
 * being read, is new: all of it is read.
 */
static uint64_t start_offset(file_source *src, uint64_t ino, uint64_t size, bool at_start) {
  const char *path = src->config->path;
  if (!src->opened_once && src->checkpoint_path) {
    sl_file_pos pos;
    sl_error err;
    sl_status status = sl__checkpoint_load(src->checkpoint_path, &pos, &err);
    if (status == SL_OK) {
      src->saved = pos;
      src->has_saved = true;
      if (pos.ino == ino && pos.offset <= size) {
        if (pos.offset > 0)
          sl_node_log(src->node, SL_LOG_INFO, "resuming %s at offset %" PRIu64, path, pos.offset);
        return pos.offset;
      }
      if (pos.ino == ino)
        sl_node_log(src->node, SL_LOG_WARN,
                    "%s is shorter (%" PRIu64 " bytes) than its checkpoint (offset %" PRIu64
                    "): it was truncated; reading it from the start",
                    path, size, pos.offset);
      else
        sl_node_log(src->node, SL_LOG_INFO,
                    "%s was replaced since the checkpoint (inode %" PRIu64 ", now %" PRIu64
                    "); reading the new file from the start",
                    path, pos.ino, ino);
      return 0;
    }
    if (status != SL_NOT_FOUND)
      sl_node_log(src->node, SL_LOG_WARN, "ignoring the checkpoint: %s", err.message);
  }
  if (at_start && src->config->start_at && strcmp(src->config->start_at, "end") == 0) return size;
  return 0;
}

/*
 * Opens the path and positions the reader at start_offset(). Statuses: SL_OK;
 * SL_NOT_FOUND when following a path that does not exist (yet); SL_IO.
 */
static sl_status open_file(file_source *src, bool at_start, sl_error *err) {
  const char *path = src->config->path;
  sl_status status = SL_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && src->config->follow)
      return sl_error_set(err, SL_NOT_FOUND, "%s does not exist", path);
    return sl_error_set(err, SL_IO, "file source '%s': cannot open %s: %s", node_id(src), path,
                        strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    status = sl_error_set(err, SL_IO, "file source '%s': cannot stat %s: %s", node_id(src), path,
                          strerror(errno));
    goto fail;
  }
  if (S_ISDIR(st.st_mode)) {
    status = sl_error_set(err, SL_IO, "file source '%s': cannot read %s: it is a folder",
                          node_id(src), path);
    goto fail;
  }
  uint64_t offset = start_offset(src, (uint64_t)st.st_ino, (uint64_t)st.st_size, at_start);
  if (offset > 0 && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
    status = sl_error_set(err, SL_IO, "file source '%s': cannot seek in %s: %s", node_id(src), path,
                          strerror(errno));
    goto fail;
  }
  src->fd = fd;
  src->ino = (uint64_t)st.st_ino;
  src->opened_once = true;
  src->finishing = FINISH_NONE;
  src->waiting_logged = false;
  sl__line_reader_init(&src->reader, fd, offset, (size_t)src->config->max_line);
  if (src->checkpoint_path) sl__checkpoint_move(&src->progress, (sl_file_pos){src->ino, offset});
  return SL_OK;

fail:
  close(fd);
  return status;
}

static void close_file(file_source *src) {
  if (src->fd < 0) return;
  sl__line_reader_destroy(&src->reader);
  close(src->fd);
  src->fd = -1;
}

/*
 * Waits `ms` or until stop(), keeping the checkpoint file current meanwhile (the
 * pipeline may be idle while acks still come in).
 */
static void idle_wait(file_source *src, uint64_t ms) {
  uint64_t deadline = now_ms() + ms;
  for (;;) {
    save_checkpoint(src, false);
    if (atomic_load(&src->stopping)) return;
    uint64_t now = now_ms();
    if (now >= deadline) return;
    uint64_t wait = deadline - now < SAVE_INTERVAL_MS ? deadline - now : SAVE_INTERVAL_MS;
    struct pollfd wake = {.fd = src->wake_fd, .events = POLLIN};
    poll(&wake, 1, (int)wait);
  }
}

/* While following a path that names no file: try to open it, else wait a poll. */
static void wait_for_file(file_source *src) {
  sl_error err;
  sl_status status = open_file(src, false, &err);
  if (status == SL_OK) return;
  if (!src->waiting_logged) {
    if (status == SL_NOT_FOUND)
      sl_node_log(src->node, SL_LOG_INFO, "waiting for %s to appear", src->config->path);
    else
      sl_node_log(src->node, SL_LOG_ERROR, "%s; trying again every %" PRIu64 " ms", err.message,
                  src->config->poll_interval);
    src->waiting_logged = true;
  }
  idle_wait(src, src->config->poll_interval);
}

/*
 * Following, at the end of the file: waits a poll, then looks at what the path names.
 * Another file (rotated: `mv` then a new file): finish this one first, reading what was
 * appended before the writer moved on. A file shorter than what was read (truncated):
 * start again from 0. A path that names nothing for now (between the `mv` and the new
 * file) changes nothing: the old file may still grow.
 */
static void follow_wait(file_source *src) {
  idle_wait(src, src->config->poll_interval);
  if (atomic_load(&src->stopping)) return;
  struct stat st;
  uint64_t read_to = src->reader.offset + (src->reader.end - src->reader.start);
  if (stat(src->config->path, &st) == 0 && (uint64_t)st.st_ino != src->ino) {
    src->finishing = FINISH_REPLACED;
  } else if (fstat(src->fd, &st) == 0 && (uint64_t)st.st_size < read_to) {
    src->finishing = FINISH_TRUNCATED;
    return; /* no new read: what is buffered is all that is left of the old content */
  }
  sl__line_reader_rearm(&src->reader);
}

/* The current file is finished (see follow_wait): move on to its successor. */
static void next_file(file_source *src) {
  const char *path = src->config->path;
  if (src->finishing == FINISH_TRUNCATED) {
    sl_node_log(src->node, SL_LOG_INFO, "%s was truncated; reading it from the start", path);
    if (lseek(src->fd, 0, SEEK_SET) == 0) {
      sl__line_reader_destroy(&src->reader);
      sl__line_reader_init(&src->reader, src->fd, 0, (size_t)src->config->max_line);
      src->finishing = FINISH_NONE;
      if (src->checkpoint_path) sl__checkpoint_move(&src->progress, (sl_file_pos){src->ino, 0});
      return;
    }
    /* A file that cannot seek is reopened instead, like a replaced one. */
  } else {
    sl_node_log(src->node, SL_LOG_INFO, "%s was replaced; reading the new file", path);
  }
  close_file(src);
  wait_for_file(src);
}

/* --- the source thread ------------------------------------------------------------ */

static void *run(void *arg) {
  file_source *src = arg;
  const file_source_config *cfg = src->config;
  size_t batch_size = sl_source_batch_size(src->port);
  if (batch_size == 0) batch_size = 1;
  sl_event_list *batch = NULL;
  while (!atomic_load(&src->stopping)) {
    if (src->fd < 0) {
      wait_for_file(src);
      continue;
    }
    if (!batch) {
      batch = malloc(sizeof *batch);
      if (!batch) abort(); /* host out of memory */
      sl_event_list_init(batch);
    }
    /* A last line without a newline is an event only when nothing can complete it. */
    bool flush_partial = !cfg->follow || src->finishing != FINISH_NONE;
    uint64_t end = src->reader.offset;
    sl_error err;
    sl_status status;
    do
      status = sl__line_reader_fill(&src->reader, batch, batch_size - batch->count, flush_partial,
                                    &end, &err);
    while (status == SL_OK && batch->count < batch_size && !src->reader.eof);
    if (status != SL_OK) {
      sl_node_log(src->node, SL_LOG_ERROR, "cannot read %s: %s", cfg->path, err.message);
      break;
    }
    if (batch->count > 0) {
      if (emit_batch(src, &batch, end) != SL_OK) break;
      continue;
    }
    if (!cfg->follow) break; /* read once: the end of the file ends the source */
    if (src->finishing != FINISH_NONE)
      next_file(src);
    else
      follow_wait(src);
  }
  if (batch) {
    sl_event_list_destroy(batch);
    free(batch);
  }
  close_file(src);
  sl_source_end(src->port);
  /* Acks keep coming after the end: keep the checkpoint file current until the last one,
   * or until destroy() says to stop waiting (it saves once more itself). */
  while (src->checkpoint_path && !atomic_load(&src->stopping) &&
         sl__checkpoint_pending(&src->progress) > 0)
    idle_wait(src, SAVE_INTERVAL_MS);
  save_checkpoint(src, true);
  return NULL;
}

/* --- the connector ---------------------------------------------------------------- */

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const file_source_config *cfg = config;
  if (!cfg->path || !cfg->path[0]) return sl_error_set(err, SL_CONFIG, "path: must not be empty");
  if (cfg->start_at && strcmp(cfg->start_at, "beginning") != 0 && strcmp(cfg->start_at, "end") != 0)
    return sl_error_set(err, SL_CONFIG, "start_at: must be beginning or end, not %s",
                        cfg->start_at);
  if (cfg->max_line == 0) return sl_error_set(err, SL_CONFIG, "max_line: must be at least 1 byte");
  if (cfg->follow && cfg->poll_interval == 0)
    return sl_error_set(err, SL_CONFIG, "poll_interval: must be more than 0 ms with follow: true");
  if (cfg->checkpoint && (!node->state_dir || !node->state_dir[0]))
    return sl_error_set(err, SL_CONFIG,
                        "checkpoint: this pipeline has no state folder to keep it in; set "
                        "checkpoint: false");
  file_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->fd = -1;
  src->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (src->wake_fd < 0) {
    free(src);
    return sl_error_set(err, SL_IO, "eventfd: %s", strerror(errno));
  }
  if (cfg->checkpoint) {
    size_t len = strlen(node->state_dir) + strlen(node->id) + sizeof "/.offset";
    src->checkpoint_path = malloc(len);
    if (!src->checkpoint_path) abort(); /* host out of memory */
    snprintf(src->checkpoint_path, len, "%s/%s.offset", node->state_dir, node->id);
  }
  sl__checkpoint_init(&src->progress, (sl_file_pos){0, 0});
  *state = src;
  return SL_OK;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  file_source *src = state;
  src->port = port;
  sl_status status = open_file(src, true, err);
  if (status == SL_NOT_FOUND) status = SL_OK; /* following: the thread waits for it */
  if (status != SL_OK) return status;
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0) {
    close_file(src);
    return sl_error_set(err, SL_IO, "cannot start the file source thread: %s", strerror(rc));
  }
  src->thread_started = true;
  return SL_OK;
}

static void wake(file_source *src) {
  atomic_store(&src->stopping, true);
  uint64_t one = 1;
  ssize_t ignored = write(src->wake_fd, &one, sizeof one);
  (void)ignored;
}

static void stop(void *state) { wake(state); }

static void destroy(void *state) {
  file_source *src = state;
  wake(src);
  if (src->thread_started) pthread_join(src->thread, NULL);
  close_file(src);
  save_checkpoint(src, true);
  sl__checkpoint_destroy(&src->progress);
  free(src->checkpoint_path);
  close(src->wake_fd);
  free(src);
}

static const char *const start_choices[] = {"beginning", "end", NULL};

static const sl_conf_field fields[] = {
    {"path", SL_CONF_PATH, SL_CONF_REQUIRED, NULL, offsetof(file_source_config, path),
     "The file to read, one event per line.", NULL},
    {"follow", SL_CONF_BOOL, 0, "false", offsetof(file_source_config, follow),
     "Keep reading as the file grows and reopen it when it is replaced (like tail -F).", NULL},
    {"start_at", SL_CONF_ENUM, 0, "beginning", offsetof(file_source_config, start_at),
     "Where to start reading when there is no checkpoint yet (the file present at start only).",
     start_choices},
    {"checkpoint", SL_CONF_BOOL, 0, "true", offsetof(file_source_config, checkpoint),
     "Remember the acknowledged offset under $SLUICE_HOME/state so a restart resumes there.", NULL},
    {"max_line", SL_CONF_SIZE, 0, "1MiB", offsetof(file_source_config, max_line),
     "A longer line is cut into pieces of this size rather than dropped.", NULL},
    {"poll_interval", SL_CONF_DURATION, 0, "200ms", offsetof(file_source_config, poll_interval),
     "With follow: how often to look for new lines and for a replaced file.", NULL},
    {NULL},
};

const sl_connector sl_file_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "file",
    .kind = SL_NODE_SOURCE,
    .summary = "One event per line of a file, read once or followed; offsets are checkpointed.",
    .fields = fields,
    .config_size = sizeof(file_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
};
