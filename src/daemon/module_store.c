/*
 * module_store.c - the module files under HOME/modules/<sha256>.wasm (see store.h).
 *
 * A file is never written in place: the bytes go to a temporary file in the same folder,
 * which is synced and renamed over the final name, and the folder is synced so the rename
 * itself survives a power cut. A reader therefore sees either no file or the whole file.
 * A crash mid-write can leave a ".<sha256>.wasm.XXXXXX" file behind; its name can never
 * be taken for a module.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "daemon/store.h"

bool sl__module_hash_valid(const char *text) {
  if (!text) return false;
  for (int i = 0; i < 64; i++)
    if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) return false;
  return text[64] == '\0';
}

sl_status sl__module_file_path(const char *modules_dir, const char *sha256, char *path, size_t cap,
                               sl_error *err) {
  int n = snprintf(path, cap, "%s/%s.wasm", modules_dir, sha256);
  if (n < 0 || (size_t)n >= cap)
    return sl_error_set(err, SL_INVALID, "%s/%s.wasm: path longer than %zu bytes", modules_dir,
                        sha256, cap);
  return SL_OK;
}

/* True when the file at `path` holds exactly `len` bytes equal to `data`. */
static bool file_holds(const char *path, const uint8_t *data, size_t len) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != len) return false;
  uint8_t *existing = NULL;
  size_t existing_len = 0;
  if (sl__read_file(path, &existing, &existing_len, NULL) != SL_OK) return false;
  bool same = existing_len == len && (len == 0 || memcmp(existing, data, len) == 0);
  free(existing);
  return same;
}

/* Writes all of `data` to `fd`, retrying short writes and interruptions. */
static int write_all(int fd, const uint8_t *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

sl_status sl__module_file_write(const char *path, const uint8_t *data, size_t len, sl_error *err) {
  if (file_holds(path, data, len)) return SL_OK;

  char dir[PATH_MAX], base[PATH_MAX], temp[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir ||
      snprintf(base, sizeof base, "%s", path) >= (int)sizeof base)
    return sl_error_set(err, SL_IO, "path too long: %s", path);
  const char *dir_name = dirname(dir), *file_name = basename(base);
  if (snprintf(temp, sizeof temp, "%s/.%s.XXXXXX", dir_name, file_name) >= (int)sizeof temp)
    return sl_error_set(err, SL_IO, "path too long: %s", path);

  sl_status status = SL_OK;
  int dir_fd = -1, fd = mkostemp(temp, O_CLOEXEC);
  if (fd < 0) {
    status = sl_error_set(err, SL_IO, "cannot create a temporary file in %s: %s", dir_name,
                          strerror(errno));
    temp[0] = '\0'; /* nothing was created */
    goto done;
  }
  if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
    status = sl_error_set(err, SL_IO, "%s: write failed: %s", temp, strerror(errno));
    goto done;
  }
  int closed = close(fd);
  fd = -1;
  if (closed != 0) {
    status = sl_error_set(err, SL_IO, "%s: write failed: %s", temp, strerror(errno));
    goto done;
  }
  if (rename(temp, path) != 0) {
    status = sl_error_set(err, SL_IO, "cannot rename %s to %s: %s", temp, path, strerror(errno));
    goto done;
  }
  temp[0] = '\0'; /* renamed: nothing to remove */
  dir_fd = open(dir_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || fsync(dir_fd) != 0)
    status = sl_error_set(err, SL_IO, "%s: cannot sync the folder: %s", dir_name, strerror(errno));

done:
  if (fd >= 0) close(fd);
  if (dir_fd >= 0) close(dir_fd);
  if (status != SL_OK && temp[0]) unlink(temp);
  return status;
}
