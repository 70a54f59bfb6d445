/*
 * checkpoint.c - the acknowledged prefix of a file source's batches, and its file
 * (see checkpoint.h).
 */
#include "connectors/file/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- the in-memory tracker ----------------------------------------------------- */

void sl__checkpoint_init(sl_checkpoint *cp, sl_file_pos start) {
  memset(cp, 0, sizeof *cp);
  pthread_mutex_init(&cp->lock, NULL);
  cp->acked = start;
}

void sl__checkpoint_destroy(sl_checkpoint *cp) {
  pthread_mutex_destroy(&cp->lock);
  free(cp->ring);
  cp->ring = NULL;
}

/* Drops acknowledged batches from the front; `acked` follows them. Lock held. */
static void advance(sl_checkpoint *cp) {
  while (cp->count > 0 && cp->ring[cp->head].done) {
    cp->acked = cp->ring[cp->head].end;
    cp->head = (cp->head + 1) % cp->cap;
    cp->count--;
    cp->head_seq++;
  }
}

/* Appends one range at the back, growing the ring when full. Lock held. */
static uint64_t push(sl_checkpoint *cp, sl_file_pos end, bool done) {
  if (cp->count == cp->cap) {
    size_t cap = cp->cap ? cp->cap * 2 : 64;
    sl_checkpoint_range *ring = malloc(cap * sizeof *ring);
    if (!ring) abort(); /* host out of memory */
    for (size_t i = 0; i < cp->count; i++) ring[i] = cp->ring[(cp->head + i) % cp->cap];
    free(cp->ring);
    cp->ring = ring;
    cp->cap = cap;
    cp->head = 0;
  }
  cp->ring[(cp->head + cp->count) % cp->cap] = (sl_checkpoint_range){.end = end, .done = done};
  cp->count++;
  return cp->next_seq++;
}

uint64_t sl__checkpoint_add(sl_checkpoint *cp, sl_file_pos end) {
  pthread_mutex_lock(&cp->lock);
  uint64_t seq = push(cp, end, false);
  pthread_mutex_unlock(&cp->lock);
  return seq;
}

void sl__checkpoint_done(sl_checkpoint *cp, uint64_t seq) {
  pthread_mutex_lock(&cp->lock);
  if (seq >= cp->head_seq && seq - cp->head_seq < cp->count) {
    cp->ring[(cp->head + (size_t)(seq - cp->head_seq)) % cp->cap].done = true;
    advance(cp);
  }
  pthread_mutex_unlock(&cp->lock);
}

void sl__checkpoint_move(sl_checkpoint *cp, sl_file_pos pos) {
  pthread_mutex_lock(&cp->lock);
  push(cp, pos, true);
  advance(cp);
  pthread_mutex_unlock(&cp->lock);
}

sl_file_pos sl__checkpoint_position(sl_checkpoint *cp) {
  pthread_mutex_lock(&cp->lock);
  sl_file_pos pos = cp->acked;
  pthread_mutex_unlock(&cp->lock);
  return pos;
}

size_t sl__checkpoint_pending(sl_checkpoint *cp) {
  pthread_mutex_lock(&cp->lock);
  size_t pending = 0;
  for (size_t i = 0; i < cp->count; i++) pending += !cp->ring[(cp->head + i) % cp->cap].done;
  pthread_mutex_unlock(&cp->lock);
  return pending;
}

/* --- the checkpoint file ------------------------------------------------------- */

#define LINE_FORMAT "ino %" PRIu64 " offset %" PRIu64 "\n"

sl_status sl__checkpoint_save(const char *path, sl_file_pos pos, sl_error *err) {
  sl_status status = SL_OK;
  char line[64];
  int len = snprintf(line, sizeof line, LINE_FORMAT, pos.ino, pos.offset);
  size_t tmp_len = strlen(path) + sizeof ".tmp";
  char *tmp = malloc(tmp_len);
  if (!tmp) abort(); /* host out of memory */
  snprintf(tmp, tmp_len, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    status = sl_error_set(err, SL_IO, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  ssize_t written;
  do written = write(fd, line, (size_t)len);
  while (written < 0 && errno == EINTR);
  if (written != len) {
    status = sl_error_set(err, SL_IO, "cannot write %s: %s", tmp,
                          written < 0 ? strerror(errno) : "short write");
    goto done;
  }
  /* Without this, a machine crash could leave the renamed file empty. */
  if (fdatasync(fd) != 0) {
    status = sl_error_set(err, SL_IO, "cannot sync %s: %s", tmp, strerror(errno));
    goto done;
  }
  if (rename(tmp, path) != 0)
    status = sl_error_set(err, SL_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));

done:
  if (fd >= 0) close(fd);
  if (status != SL_OK) unlink(tmp);
  free(tmp);
  return status;
}

/* Consumes `text` at *cursor; false when something else is there. */
static bool expect(const char **cursor, const char *text) {
  size_t len = strlen(text);
  if (strncmp(*cursor, text, len) != 0) return false;
  *cursor += len;
  return true;
}

/* Consumes one decimal number that fits in 64 bits; no sign, no spaces. */
static bool parse_u64(const char **cursor, uint64_t *out) {
  const char *p = *cursor;
  uint64_t value = 0;
  if (*p < '0' || *p > '9') return false;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned digit = (unsigned)(*p - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  *cursor = p;
  return true;
}

sl_status sl__checkpoint_load(const char *path, sl_file_pos *pos, sl_error *err) {
  sl_status status = SL_OK;
  FILE *f = fopen(path, "re");
  if (!f) {
    if (errno == ENOENT) return sl_error_set(err, SL_NOT_FOUND, "%s: no checkpoint yet", path);
    return sl_error_set(err, SL_IO, "cannot open %s: %s", path, strerror(errno));
  }
  char line[128];
  size_t n = fread(line, 1, sizeof line - 1, f);
  if (ferror(f)) {
    status = sl_error_set(err, SL_IO, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  line[n] = '\0';
  const char *cursor = line;
  sl_file_pos parsed;
  if (n == sizeof line - 1 || !expect(&cursor, "ino ") || !parse_u64(&cursor, &parsed.ino) ||
      !expect(&cursor, " offset ") || !parse_u64(&cursor, &parsed.offset) ||
      !expect(&cursor, "\n") || cursor != line + n) {
    status = sl_error_set(err, SL_INVALID,
                          "%s: not a checkpoint (expected one line \"ino N offset M\")", path);
    goto done;
  }
  *pos = parsed;

done:
  fclose(f);
  return status;
}
