/*
 * file_sink.c - `type: file` with inputs: appends each payload and a newline; optional
 * rotation by size.
 *
 * The runtime calls write() on a thread of the sink's own. A batch becomes one buffer
 * and, short writes aside, one write(2), so when write() returns SL_OK its bytes are in
 * the kernel: a `kill -9` of the process cannot lose them. With `fsync: true` they are
 * also on the disk (fdatasync) before the batch is acknowledged. Nothing is buffered
 * across calls, so there is no flush callback.
 *
 * Rotation happens between batches, never inside one: a batch that would take a
 * non-empty file past `max_size` goes to a fresh file, and a batch bigger than
 * `max_size` on its own still goes whole into one file. Rotated files are PATH.1
 * (newest) to PATH.<keep> (oldest), like logrotate.
 */
#include "connectors/file/file_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `keep` above this is almost certainly a typo, and each rotation renames every file. */
#define KEEP_MAX 1000

/* A buffer grown past this for one huge batch is released after it, not kept. */
#define BUF_KEEP_MAX (8u << 20)

typedef struct file_sink {
  const sl_node_ctx *node;
  const file_sink_config *config;
  int fd;        /* -1 after a failed reopen; the next write tries again */
  uint64_t size; /* bytes in the current file */
  char *buf;     /* the bytes of the batch being written */
  size_t cap;
} file_sink;

/* "PATH.N", malloc'd; the caller frees. */
static char *rotated_name(const char *path, int64_t n) {
  size_t len = strlen(path) + 24;
  char *name = malloc(len);
  if (!name) abort(); /* host out of memory */
  snprintf(name, len, "%s.%lld", path, (long long)n);
  return name;
}

/* Opens (creating) the file for appending and learns its size. */
static sl_status open_file(file_sink *sink, sl_error *err) {
  const char *path = sink->config->path;
  sink->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (sink->fd < 0) {
    int error = errno;
    char *copy = strdup(path);
    if (!copy) abort(); /* host out of memory */
    const char *folder = dirname(copy);
    struct stat st;
    sl_status status;
    if (error == ENOENT && stat(folder, &st) != 0)
      status =
          sl_error_set(err, SL_IO, "file sink '%s': cannot open %s: the folder %s does not exist",
                       sink->node->id, path, folder);
    else
      status = sl_error_set(err, SL_IO, "file sink '%s': cannot open %s: %s", sink->node->id, path,
                            strerror(error));
    free(copy);
    return status;
  }
  struct stat st;
  if (fstat(sink->fd, &st) != 0) {
    sl_status status = sl_error_set(err, SL_IO, "file sink '%s': cannot stat %s: %s",
                                    sink->node->id, path, strerror(errno));
    close(sink->fd);
    sink->fd = -1;
    return status;
  }
  sink->size = (uint64_t)st.st_size;
  return SL_OK;
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const file_sink_config *cfg = config;
  if (!cfg->path || !cfg->path[0]) return sl_error_set(err, SL_CONFIG, "path: must not be empty");
  if (cfg->keep < 0 || cfg->keep > KEEP_MAX)
    return sl_error_set(err, SL_CONFIG, "keep: must be between 0 and %d, not %lld", KEEP_MAX,
                        (long long)cfg->keep);
  file_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sl_status status = open_file(sink, err);
  if (status != SL_OK) {
    free(sink);
    return status;
  }
  *state = sink;
  return SL_OK;
}

/* Makes the renames of a rotation durable too (fsync: true): they live in the folder. */
static void sync_folder(const char *path) {
  char *copy = strdup(path);
  if (!copy) abort(); /* host out of memory */
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: the data itself was already synced */
    close(fd);
  }
  free(copy);
}

/*
 * PATH.(keep-1) -> PATH.keep ... PATH -> PATH.1, then a new PATH. Renaming onto
 * PATH.keep replaces the oldest file, which is how only `keep` are kept. Missing
 * intermediate files (fewer rotations so far, or removed by hand) are skipped.
 */
static sl_status rotate(file_sink *sink, sl_error *err) {
  const char *path = sink->config->path;
  int64_t keep = sink->config->keep;
  sl_status status = SL_OK;
  close(sink->fd);
  sink->fd = -1;
  if (keep == 0 && unlink(path) != 0 && errno != ENOENT) {
    status = sl_error_set(err, SL_IO, "file sink '%s': cannot remove %s: %s", sink->node->id, path,
                          strerror(errno));
    goto done;
  }
  for (int64_t n = keep; n >= 1 && status == SL_OK; n--) {
    char *from = n > 1 ? rotated_name(path, n - 1) : strdup(path);
    char *to = rotated_name(path, n);
    if (!from) abort(); /* host out of memory */
    if (rename(from, to) != 0 && errno != ENOENT)
      status = sl_error_set(err, SL_IO, "file sink '%s': cannot rename %s to %s: %s",
                            sink->node->id, from, to, strerror(errno));
    free(from);
    free(to);
  }
  if (status != SL_OK) goto done;
  status = open_file(sink, err);
  if (status == SL_OK && sink->config->fsync) sync_folder(path);

done:
  return status;
}

/* Copies the batch's lines into sink->buf; returns their length. */
static size_t render(file_sink *sink, const sl_event_list *batch) {
  size_t len = 0;
  for (size_t i = 0; i < batch->count; i++) len += batch->items[i].payload.len + 1;
  if (len > sink->cap) {
    free(sink->buf);
    sink->buf = malloc(len);
    if (!sink->buf) abort(); /* host out of memory */
    sink->cap = len;
  }
  char *at = sink->buf;
  for (size_t i = 0; i < batch->count; i++) {
    const sl_bytes *payload = &batch->items[i].payload;
    if (payload->len) memcpy(at, payload->ptr, payload->len);
    at += payload->len;
    *at++ = '\n';
  }
  return len;
}

/*
 * Undoes a partial append so a failed batch leaves no half line behind (a retry would
 * otherwise glue its first line to it). Only when nobody else appended meanwhile.
 */
static void undo_partial(file_sink *sink, size_t written) {
  struct stat st;
  if (written > 0 && fstat(sink->fd, &st) == 0 && (uint64_t)st.st_size == sink->size + written) {
    int ignored = ftruncate(sink->fd, (off_t)sink->size);
    (void)ignored;
  }
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  file_sink *sink = state;
  const char *path = sink->config->path;
  sl_status status = SL_OK;
  if (batch->count == 0) return SL_OK;
  if (sink->fd < 0 && (status = open_file(sink, err)) != SL_OK) return status;
  size_t len = render(sink, batch);

  if (sink->config->max_size > 0) {
    /* Another process may append too; its bytes count against max_size. */
    struct stat st;
    if (fstat(sink->fd, &st) == 0) sink->size = (uint64_t)st.st_size;
    if (sink->size > 0 && sink->size + len > sink->config->max_size) {
      status = rotate(sink, err);
      if (status != SL_OK) goto done;
    }
  }

  size_t written = 0;
  while (written < len) {
    ssize_t n = write(sink->fd, sink->buf + written, len - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = sl_error_set(err, SL_IO, "file sink '%s': cannot write %s: %s", sink->node->id, path,
                            strerror(errno));
      undo_partial(sink, written);
      goto done;
    }
    written += (size_t)n;
  }
  sink->size += len;
  if (sink->config->fsync && fdatasync(sink->fd) != 0)
    status = sl_error_set(err, SL_IO, "file sink '%s': cannot sync %s: %s", sink->node->id, path,
                          strerror(errno));

done:
  if (sink->cap > BUF_KEEP_MAX) {
    free(sink->buf);
    sink->buf = NULL;
    sink->cap = 0;
  }
  return status;
}

static void destroy(void *state) {
  file_sink *sink = state;
  if (sink->fd >= 0) close(sink->fd);
  free(sink->buf);
  free(sink);
}

static const sl_conf_field fields[] = {
    {"path", SL_CONF_PATH, SL_CONF_REQUIRED, NULL, offsetof(file_sink_config, path),
     "The file to append to; created if missing (its folder must exist).", NULL},
    {"max_size", SL_CONF_SIZE, 0, "0", offsetof(file_sink_config, max_size),
     "Rotate before a batch takes the file past this size (PATH -> PATH.1 ...); 0 never rotates.",
     NULL},
    {"keep", SL_CONF_INT, 0, "5", offsetof(file_sink_config, keep),
     "Rotated files to keep (0 to 1000); with 0 a full file is deleted instead.", NULL},
    {"fsync", SL_CONF_BOOL, 0, "false", offsetof(file_sink_config, fsync),
     "fdatasync before acknowledging, so acknowledged events survive a machine crash too.", NULL},
    {NULL},
};

const sl_connector sl_file_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "file",
    .kind = SL_NODE_SINK,
    .summary = "Appends each event's payload and a newline to a file; optional rotation by size.",
    .fields = fields,
    .config_size = sizeof(file_sink_config),
    .init = init,
    .write = write_batch,
    .destroy = destroy,
};
