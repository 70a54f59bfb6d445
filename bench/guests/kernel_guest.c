/*
 * kernel_guest.c - runs the string kernel (bench/kernel.c) inside Sluice or V8.
 *
 * The payload is a decimal pass count K. The processor runs K passes of the kernel over
 * its own 1 MiB buffers and returns one event whose payload is the output checksum in
 * hex, so the canonical-ABI copies are a few bytes whatever K is. The module imports
 * nothing, so node can instantiate it without a WASI shim.
 */
#include <stdbool.h>

#include "../kernel.h"
#include "guest_abi.h"

static uint8_t source[KERNEL_BUFFER_BYTES];
static uint8_t output[KERNEL_BUFFER_BYTES];
static bool filled;
static char checksum_hex[16];
static guest_event result_event;

GUEST_EXPORT("process")
guest_result *process(const uint8_t *payload, size_t payload_len, const guest_meta *meta,
                      size_t meta_count) {
  (void)meta, (void)meta_count;
  uint32_t passes = 0;
  for (size_t i = 0; i < payload_len; i++) {
    if (payload[i] < '0' || payload[i] > '9' || passes > 100000000u)
      return guest_err("the payload must be a decimal pass count");
    passes = passes * 10 + (payload[i] - '0');
  }
  if (!filled) {
    kernel_fill(source, sizeof source);
    filled = true;
  }
  for (uint32_t p = 0; p < passes; p++) kernel_upper(output, source, sizeof output);
  uint64_t sum = kernel_sample(output, sizeof output);
  for (int i = 15; i >= 0; i--, sum >>= 4) checksum_hex[i] = "0123456789abcdef"[sum & 15];
  result_event = (guest_event){{(const uint8_t *)checksum_hex, 16}, NULL, 0};
  return guest_ok(&result_event, 1);
}
