/*
 * big.c - 16 MiB events, out and in.
 *
 * The payload "big" returns one event whose payload is 16 MiB of 'x'. Any other payload
 * comes back uppercased (ASCII), with no metadata: fed a 16 MiB payload, that makes it the
 * test of a 16 MiB input as well. The engine tests use it for large copies across the
 * guest boundary and for the memory limit. It imports nothing.
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor (see guests.mk).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest_abi.h"

#define BIG_SIZE (16u << 20)

static struct event out;
static struct result result;

__attribute__((export_name("process"))) struct result *process(uint8_t *payload,
                                                                size_t payload_len,
                                                                struct pair *meta,
                                                                size_t meta_count) {
  /* Only the metadata: the payload is kept, to be uppercased in place or replaced. */
  guest_free_meta(meta, meta_count);

  if (payload_len == 3 && memcmp(payload, "big", 3) == 0) {
    free(payload);
    payload = malloc(BIG_SIZE);
    if (payload == NULL) abort();
    memset(payload, 'x', BIG_SIZE);
    payload_len = BIG_SIZE;
  } else {
    for (size_t i = 0; i < payload_len; i++)
      if (payload[i] >= 'a' && payload[i] <= 'z') payload[i] = (uint8_t)(payload[i] - 'a' + 'A');
  }
  /* Either way the event's payload is a heap block that cabi_post_process frees. */
  out = (struct event){.payload = payload, .payload_len = payload_len};
  result = (struct result){.is_err = 0, .ptr = &out, .len = 1};
  return &result;
}

__attribute__((export_name("cabi_post_process"))) void cabi_post_process(struct result *done) {
  free(((struct event *)done->ptr)->payload);
}
