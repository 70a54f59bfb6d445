/*
 * guest_abi.h - the canonical-ABI glue the C test guests share: the layouts the host lowers
 * and lifts, the malloc-backed cabi_realloc export, and freeing the input the host lowered.
 *
 * It defines cabi_realloc (non-static, so that the export survives), so include it from
 * exactly one .c per module; each NAME.c here is a module of its own (see guests.mk).
 */
#ifndef GUEST_ABI_H
#define GUEST_ABI_H

#include <stdint.h>
#include <stdlib.h>

/* Canonical ABI layouts; on wasm32 pointers and size_t are 4 bytes, so these match. */
struct pair {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
};
struct event {
  uint8_t *payload;
  size_t payload_len;
  struct pair *meta;
  size_t meta_count;
};
struct result {
  uint8_t is_err;
  void *ptr;
  size_t len;
};
_Static_assert(sizeof(struct pair) == 16 && sizeof(struct event) == 16, "canonical ABI layout");
_Static_assert(sizeof(struct result) == 12, "canonical ABI layout");

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size,
                                                                 size_t align, size_t new_size) {
  (void)old_size;
  (void)align; /* malloc's alignment (16) covers every canonical ABI type */
  void *ptr = realloc(old, new_size ? new_size : 1);
  if (ptr == NULL) abort();
  return ptr;
}

/* The host lowered every key, value and the array itself through cabi_realloc, so the
 * guest owns them and must free each one. */
static inline void guest_free_meta(struct pair *meta, size_t meta_count) {
  for (size_t i = 0; i < meta_count; i++) {
    free(meta[i].key);
    free(meta[i].value);
  }
  free(meta);
}

/* For a guest that keeps none of its input: the metadata, then the payload. */
static inline void guest_free_input(uint8_t *payload, struct pair *meta, size_t meta_count) {
  guest_free_meta(meta, meta_count);
  free(payload);
}

#endif
