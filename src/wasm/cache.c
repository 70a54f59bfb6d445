/*
 * cache.c - the verified artifact store (see cache.h for the format and why).
 */
#include "wasm/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "wasm/toolchain.h"

#define ARTIFACT_MAGIC "SLUICEAR"
#define ARTIFACT_VERSION 1u

typedef struct artifact_header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t so_len;
  uint8_t mac[32];
} artifact_header;

void sl__sha256_hex(const void *data, size_t len, char out[65]) {
  uint8_t digest[32];
  unsigned int n = 0;
  EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", digest[i]);
  out[64] = '\0';
}

/* HMAC-SHA256(secret, key || sha256(so)): binds the artifact to its key and contents. */
static void mac_of(const sl_cache *cache, const char *key, const uint8_t *so, size_t len,
                   uint8_t out[32]) {
  uint8_t message[128 + 32];
  size_t key_len = strnlen(key, 128);
  unsigned int digest_len = 32, mac_len = 32;
  memcpy(message, key, key_len);
  EVP_Digest(so, len, message + key_len, &digest_len, EVP_sha256(), NULL);
  HMAC(EVP_sha256(), cache->secret, sizeof cache->secret, message, key_len + 32, out, &mac_len);
}

/* Reads the secret, creating it first if this is the first run. Creation goes through a
 * temporary file and link(2), so two processes starting together agree on one secret. */
static sl_status load_secret(sl_cache *cache, sl_error *err) {
  char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/secret", cache->dir);
  for (int attempt = 0; attempt < 2; attempt++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = read(fd, cache->secret, sizeof cache->secret);
      close(fd);
      if (n == (ssize_t)sizeof cache->secret) return SL_OK;
      return sl_error_set(err, SL_IO, "%s is damaged; delete it to start a fresh cache", path);
    }
    uint8_t secret[32];
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret)
      return sl_error_set(err, SL_IO, "cannot read random bytes: %s", strerror(errno));
    snprintf(tmp, sizeof tmp, "%s/secret.%d", cache->dir, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return sl_error_set(err, SL_IO, "%s: %s", tmp, strerror(errno));
    ssize_t written = write(fd, secret, sizeof secret);
    close(fd);
    if (written != (ssize_t)sizeof secret || (link(tmp, path) != 0 && errno != EEXIST)) {
      unlink(tmp);
      return sl_error_set(err, SL_IO, "cannot create %s: %s", path, strerror(errno));
    }
    unlink(tmp);
  }
  return sl_error_set(err, SL_IO, "cannot read %s", path);
}

sl_status sl__cache_open(const char *home, sl_cache *cache, sl_error *err) {
  char modules[PATH_MAX + 16];
  sl_status status;
  memset(cache, 0, sizeof *cache);
  if ((size_t)snprintf(cache->dir, sizeof cache->dir, "%s/cache", home) >= sizeof cache->dir)
    return sl_error_set(err, SL_INVALID, "SLUICE_HOME path too long: %s", home);
  snprintf(modules, sizeof modules, "%s/modules", cache->dir);
  if ((status = sl__make_dirs(modules, err)) != SL_OK) return status;
  return load_secret(cache, err);
}

void sl__cache_artifact_path(const sl_cache *cache, const char *key, char *out, size_t cap) {
  snprintf(out, cap, "%s/modules/%s.art", cache->dir, key);
}

sl_status sl__cache_load(const sl_cache *cache, const char *key, uint8_t **so, size_t *len,
                         sl_error *err) {
  char path[PATH_MAX + 96];
  uint8_t *data = NULL;
  size_t size = 0;
  sl__cache_artifact_path(cache, key, path, sizeof path);
  if (access(path, F_OK) != 0) return SL_NOT_FOUND;
  sl_status status = sl__read_file(path, &data, &size, err);
  if (status != SL_OK) return SL_DECLINED;

  artifact_header h;
  uint8_t mac[32];
  if (size < sizeof h) {
    status = sl_error_set(err, SL_DECLINED, "%s is truncated", path);
    goto done;
  }
  memcpy(&h, data, sizeof h);
  if (memcmp(h.magic, ARTIFACT_MAGIC, 8) != 0 || h.version != ARTIFACT_VERSION) {
    status = sl_error_set(err, SL_DECLINED, "%s is not a Sluice artifact", path);
    goto done;
  }
  if (h.so_len != size - sizeof h) {
    status = sl_error_set(err, SL_DECLINED, "%s is truncated or has extra bytes", path);
    goto done;
  }
  mac_of(cache, key, data + sizeof h, (size_t)h.so_len, mac);
  if (CRYPTO_memcmp(mac, h.mac, sizeof mac) != 0) {
    status = sl_error_set(err, SL_DECLINED,
                          "%s fails verification (corrupted, or not built by this host)", path);
    goto done;
  }
  *len = (size_t)h.so_len;
  *so = malloc(*len ? *len : 1);
  if (!*so) abort();
  memcpy(*so, data + sizeof h, *len);
done:
  free(data);
  return status;
}

sl_status sl__cache_store(const sl_cache *cache, const char *key, const uint8_t *so, size_t len,
                          sl_error *err) {
  char path[PATH_MAX + 96], tmp[PATH_MAX + 128];
  artifact_header h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, ARTIFACT_MAGIC, 8);
  h.version = ARTIFACT_VERSION;
  h.so_len = len;
  mac_of(cache, key, so, len, h.mac);

  sl__cache_artifact_path(cache, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sl_error_set(err, SL_IO, "%s: %s", tmp, strerror(errno));
  bool ok = write(fd, &h, sizeof h) == (ssize_t)sizeof h && write(fd, so, len) == (ssize_t)len &&
            fsync(fd) == 0;
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    int saved = errno;
    unlink(tmp);
    return sl_error_set(err, SL_IO, "cannot write %s: %s", path, strerror(saved));
  }
  return SL_OK;
}

int sl__cache_lock(const sl_cache *cache, const char *key) {
  char path[PATH_MAX + 96];
  snprintf(path, sizeof path, "%s/modules/%s.lock", cache->dir, key);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

void sl__cache_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing releases the flock */
}
