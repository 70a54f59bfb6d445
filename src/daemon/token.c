/*
 * token.c - the daemon's bearer token: $SLUICE_HOME/token, created at first start.
 *
 * Created with O_EXCL and mode 0600 so that it is never readable by others, not even
 * for a moment, and two daemons starting at once agree on one token.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "daemon/daemon.h"

static sl_status read_token(const char *path, char token[65], sl_error *err) {
  FILE *f = fopen(path, "r");
  if (!f) return sl_error_set(err, SL_IO, "cannot read the token %s: %s", path, strerror(errno));
  size_t n = fread(token, 1, 64, f);
  fclose(f);
  token[n] = '\0';
  while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
    token[--n] = '\0';
  if (n < 16)
    return sl_error_set(err, SL_IO,
                        "the token in %s is too short (%zu characters); delete the file to have "
                        "a new one made",
                        path, n);
  return SL_OK;
}

sl_status sl_daemon_token(const char *home, char token[65], bool *created, sl_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/token", home);
  *created = false;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return read_token(path, token, err);
    return sl_error_set(err, SL_IO, "cannot create the token %s: %s", path, strerror(errno));
  }
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1) {
    close(fd);
    unlink(path);
    return sl_error_set(err, SL_IO, "no randomness for the token");
  }
  for (size_t i = 0; i < sizeof random; i++) sprintf(token + 2 * i, "%02x", random[i]);
  char line[66];
  int len = snprintf(line, sizeof line, "%s\n", token);
  bool ok = write(fd, line, (size_t)len) == len && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path);
    return sl_error_set(err, SL_IO, "cannot write the token %s: %s", path, strerror(errno));
  }
  *created = true;
  return SL_OK;
}
