/*
 * line_reader.c - batches of line events from a file descriptor (see line_reader.h).
 */
#include "core/line_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256u << 10)

void sl__line_reader_init(sl_line_reader *reader, int fd, uint64_t start_offset, size_t max_line) {
  memset(reader, 0, sizeof *reader);
  reader->fd = fd;
  reader->offset = start_offset;
  reader->max_line = max_line ? max_line : (1u << 20);
}

void sl__line_reader_destroy(sl_line_reader *reader) {
  free(reader->buf);
  reader->buf = NULL;
}

void sl__line_reader_rearm(sl_line_reader *reader) { reader->eof = false; }

static sl_status push_line(sl_event_list *out, const uint8_t *line, size_t len) {
  if (len && line[len - 1] == '\r') len--;
  uint8_t *payload;
  sl_meta *meta;
  sl_status st = sl_event_list_push(out, len, 0, &payload, &meta);
  if (st == SL_OK && len) memcpy(payload, line, len);
  return st;
}

/* Makes room for one more read: slides unread bytes to the front, grows when full. */
static void make_room(sl_line_reader *reader) {
  if (reader->start > 0 && reader->start == reader->end) reader->start = reader->end = 0;
  if (reader->cap - reader->end >= READ_CHUNK / 4) return;
  if (reader->start > 0) {
    memmove(reader->buf, reader->buf + reader->start, reader->end - reader->start);
    reader->end -= reader->start;
    reader->start = 0;
  }
  if (reader->cap - reader->end < READ_CHUNK / 4) {
    size_t cap = reader->cap ? reader->cap * 2 : READ_CHUNK;
    uint8_t *grown = realloc(reader->buf, cap);
    if (!grown) abort(); /* host out of memory */
    reader->buf = grown;
    reader->cap = cap;
  }
}

sl_status sl__line_reader_fill(sl_line_reader *reader, sl_event_list *out, size_t max_events,
                               bool flush_partial, uint64_t *end_offset, sl_error *err) {
  size_t taken = 0;
  for (;;) {
    /* Take every complete line already buffered. */
    while (taken < max_events && reader->start < reader->end) {
      uint8_t *begin = reader->buf + reader->start;
      size_t avail = reader->end - reader->start;
      uint8_t *nl =
          memchr(begin, '\n', avail < reader->max_line + 1 ? avail : reader->max_line + 1);
      size_t len, consumed;
      if (nl) {
        len = (size_t)(nl - begin);
        consumed = len + 1;
      } else if (avail > reader->max_line) {
        len = consumed = reader->max_line; /* an overlong line is cut, never dropped */
      } else if (reader->eof && flush_partial) {
        len = consumed = avail;
      } else {
        break;
      }
      if (push_line(out, begin, len) != SL_OK) return sl_error_set(err, SL_NOMEM, "out of memory");
      reader->start += consumed;
      reader->offset += consumed;
      taken++;
    }
    if (taken > 0 || reader->eof) break;
    make_room(reader);
    ssize_t n = read(reader->fd, reader->buf + reader->end, reader->cap - reader->end);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return sl_error_set(err, SL_IO, "read: %s", strerror(errno));
    }
    if (n == 0) reader->eof = true;
    reader->end += (size_t)n;
  }
  if (end_offset) *end_offset = reader->offset;
  return SL_OK;
}
