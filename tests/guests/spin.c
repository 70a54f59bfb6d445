/*
 * spin.c - an endless loop in compiled C, to test the host's time limit.
 *
 * The payload "spin" runs a loop that never ends; it increments a volatile counter, so
 * clang at -O2 can neither delete it nor assume it terminates. The host's watchdog must
 * interrupt it with a timeout trap. Any other payload is echoed back (payload and
 * metadata), so a test can check the instance, or its replacement, still works. It
 * imports nothing.
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor (see guests.mk).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static volatile uint32_t spins;
static struct event out;
static struct result result;

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size,
                                                                 size_t align, size_t new_size) {
  (void)old_size;
  (void)align; /* malloc's alignment (16) covers every canonical ABI type */
  void *ptr = realloc(old, new_size ? new_size : 1);
  if (ptr == NULL) abort();
  return ptr;
}

__attribute__((export_name("process"))) struct result *process(uint8_t *payload,
                                                                size_t payload_len,
                                                                struct pair *meta,
                                                                size_t meta_count) {
  if (payload_len == 4 && memcmp(payload, "spin", 4) == 0)
    for (;;) spins++;

  /* The echo points at the input, which cabi_post_process frees. */
  out = (struct event){payload, payload_len, meta, meta_count};
  result = (struct result){.is_err = 0, .ptr = &out, .len = 1};
  return &result;
}

__attribute__((export_name("cabi_post_process"))) void cabi_post_process(struct result *done) {
  struct event *echoed = done->ptr;
  for (size_t i = 0; i < echoed->meta_count; i++) {
    free(echoed->meta[i].key);
    free(echoed->meta[i].value);
  }
  free(echoed->meta);
  free(echoed->payload);
}
