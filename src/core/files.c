/*
 * files.c - whole-file reads and writes and `mkdir -p` (see files.h).
 */
#include "core/files.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sl_status sl__read_file(const char *path, uint8_t **data, size_t *len, sl_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
  sl_status status = SL_OK;
  struct stat st;
  /* A regular file's size is the first guess; a pipe grows the buffer as it goes. */
  size_t cap = 4096, used = 0;
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    fclose(f);
    return sl_error_set(err, SL_IO, "%s: %s", path, strerror(S_ISDIR(st.st_mode) ? EISDIR : errno));
  }
  if (S_ISREG(st.st_mode)) cap = (size_t)st.st_size + 1;
  uint8_t *buf = malloc(cap);
  if (!buf) abort(); /* host out of memory */
  for (;;) {
    used += fread(buf + used, 1, cap - used, f);
    if (used < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
    if (!buf) abort();
  }
  if (ferror(f)) {
    status = sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
    free(buf);
  } else {
    buf[used] = '\0'; /* used < cap: the loop only ends with room to spare */
    *data = buf;
    *len = used;
  }
  fclose(f);
  return status;
}

sl_status sl__write_file(const char *path, const void *data, size_t len, sl_error *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
  size_t written = len ? fwrite(data, 1, len, f) : 0;
  int closed = fclose(f);
  if (written != len || closed != 0)
    return sl_error_set(err, SL_IO, "%s: write failed: %s", path, strerror(errno));
  return SL_OK;
}

sl_status sl__make_dirs(const char *path, sl_error *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return sl_error_set(err, SL_IO, "path too long: %s", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char was = *p;
    *p = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
      return sl_error_set(err, SL_IO, "cannot create %s: %s", buf, strerror(errno));
    if (was == '\0') return SL_OK;
    *p = was;
  }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void sl__remove_tree(const char *path) { nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }
