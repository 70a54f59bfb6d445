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
#include <string.h>

#include "guest_abi.h"

static volatile uint32_t spins;
static struct event out;
static struct result result;

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
  guest_free_input(echoed->payload, echoed->meta, echoed->meta_count);
}
