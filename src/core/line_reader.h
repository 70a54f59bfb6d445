/*
 * line_reader.h - turns a byte stream (a pipe, a file) into batches of line events.
 *
 * Used by the stdin and file sources. One event per line, the newline (and a '\r'
 * before it) removed. Offsets are counted in bytes from where the reader started, so
 * a file source knows exactly which bytes a batch covers and can checkpoint them.
 */
#ifndef SL_CORE_LINE_READER_H
#define SL_CORE_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/event.h"
#include "sluice/status.h"

typedef struct sl_line_reader {
  int fd;       /* borrowed */
  uint8_t *buf; /* bytes read but not yet turned into events */
  size_t start, end, cap;
  size_t max_line; /* a longer line is cut into pieces of this size */
  uint64_t offset; /* byte offset of buf[start] in the stream */
  bool eof;        /* read() returned 0 */
} sl_line_reader;

/* `max_line` 0 means 1 MiB. The caller owns `fd`. */
void sl__line_reader_init(sl_line_reader *reader, int fd, uint64_t start_offset, size_t max_line);
void sl__line_reader_destroy(sl_line_reader *reader);

/*
 * Appends up to `max_events` complete lines to `out`, reading more (blocking) only when
 * no complete line is buffered. At end of input a last line without a newline is
 * returned only when `flush_partial` is true (a followed file may still grow).
 * *end_offset is the offset just past the last byte consumed.
 * Statuses: SL_OK (0 or more events; reader->eof says whether input ended); SL_IO.
 */
sl_status sl__line_reader_fill(sl_line_reader *reader, sl_event_list *out, size_t max_events,
                               bool flush_partial, uint64_t *end_offset, sl_error *err);

/* Forgets the end-of-input mark so a followed file can be read again after it grew. */
void sl__line_reader_rearm(sl_line_reader *reader);

#endif
