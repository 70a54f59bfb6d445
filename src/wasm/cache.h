/*
 * cache.h - the content-addressed store of compiled guests under $SLUICE_HOME/cache.
 *
 * An artifact is one file, `modules/<key>.art`: a header, an HMAC-SHA256 over the key and
 * the shared object, then the shared object. The HMAC secret (`cache/secret`, mode 0600)
 * is created on first use, so the host loads only artifacts it produced itself: a file
 * that was truncated, corrupted or planted fails the check and is rebuilt. Artifacts are
 * written to a temporary file and renamed into place, and builds of one key are serialised
 * with a lock file, so processes compiling the same module at once end with one good file.
 */
#ifndef SL_WASM_CACHE_H
#define SL_WASM_CACHE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_cache {
  char dir[PATH_MAX]; /* $SLUICE_HOME/cache */
  uint8_t secret[32];
} sl_cache;

/* Creates the cache folders and the secret if needed. */
sl_status sl__cache_open(const char *home, sl_cache *cache, sl_error *err);

/* Loads the verified shared object for `key` into a malloc'ed buffer.
 * SL_OK; SL_NOT_FOUND (no artifact); SL_DECLINED (an artifact exists but fails
 * verification: `err` says why). */
sl_status sl__cache_load(const sl_cache *cache, const char *key, uint8_t **so, size_t *len,
                         sl_error *err);

/* Stores `so` as the artifact for `key` (atomically replacing any previous one). */
sl_status sl__cache_store(const sl_cache *cache, const char *key, const uint8_t *so, size_t len,
                          sl_error *err);

/* Path of the artifact for `key` (whether or not it exists). */
void sl__cache_artifact_path(const sl_cache *cache, const char *key, char *out, size_t cap);

/* Exclusive lock for building `key`; returns a descriptor for sl__cache_unlock, or -1. */
int sl__cache_lock(const sl_cache *cache, const char *key);
void sl__cache_unlock(int fd);

/* Hex SHA-256 of `len` bytes (65 bytes with the NUL). */
void sl__sha256_hex(const void *data, size_t len, char out[65]);

#endif
