/*
 * calls_guest.c - a call-heavy guest for the interruption-check benchmark: the payload is
 * n, the result is fib(n) computed by plain double recursion, as 8 hex digits. Nearly all
 * its time goes into function entries, where Sluice's stack-and-time check sits, so it
 * complements the loop-heavy string kernel.
 */
#include "guest_abi.h"

__attribute__((noinline)) static uint32_t fib(uint32_t n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static char result_hex[8];
static guest_event result_event;

GUEST_EXPORT("process")
guest_result *process(const uint8_t *payload, size_t payload_len, const guest_meta *meta,
                      size_t meta_count) {
  (void)meta, (void)meta_count;
  uint32_t n = 0;
  for (size_t i = 0; i < payload_len; i++) {
    if (payload[i] < '0' || payload[i] > '9' || n > 40) return guest_err("n must be 0..40");
    n = n * 10 + (payload[i] - '0');
  }
  uint32_t value = fib(n);
  for (int i = 7; i >= 0; i--, value >>= 4) result_hex[i] = "0123456789abcdef"[value & 15];
  result_event = (guest_event){{(const uint8_t *)result_hex, 8}, NULL, 0};
  return guest_ok(&result_event, 1);
}
