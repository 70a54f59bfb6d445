/*
 * files.h - whole-file reads and writes and `mkdir -p`, shared by the engine (modules,
 * cached artifacts), the pipeline loader (pipeline and secret files) and the runtime
 * (state folders). Messages read "PATH: what went wrong".
 */
#ifndef SL_CORE_FILES_H
#define SL_CORE_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* Reads a whole file (regular, or a pipe read to its end) into a malloc'ed buffer with one
 * extra NUL byte after the data, so text can be used as a string. The caller frees *data.
 * SL_IO with a message on failure (a folder is refused). */
sl_status sl__read_file(const char *path, uint8_t **data, size_t *len, sl_error *err);

/* Writes `len` bytes to `path` (created 0644 or truncated). */
sl_status sl__write_file(const char *path, const void *data, size_t len, sl_error *err);

/* Creates `path` and any missing parents, mode 0700. */
sl_status sl__make_dirs(const char *path, sl_error *err);

/* Removes `path` and everything under it, without following links; errors are ignored
 * (it is for scratch folders). */
void sl__remove_tree(const char *path);

#endif
