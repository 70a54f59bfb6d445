/*
 * recurse.c - deep recursion in compiled C, to exhaust the host's native stack.
 *
 * The payload "deep" asks for a recursion 1,000,000,000 levels deep, which no stack
 * holds: the host must stop it with a stack-exhausted trap, not a crash. Any other payload
 * recurses 100 levels, which must succeed. Either way the result, in decimal, is the
 * payload of the one event returned. Each level's result depends on the level below
 * non-linearly, so no compiler can turn the recursion into a loop, and all
 * state stays in wasm locals, so it is the native stack that overflows, not the shadow
 * stack in linear memory. (Check: `wasm-objdump -d` shows the function calling itself.)
 * It imports nothing.
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor (see guests.mk).
 */
#include <stdint.h>
#include <string.h>

#include "guest_abi.h"

/* The returned digits and the result stay valid until the next call. */
static char digits[10];
static struct event out;
static struct result result;

/* A hash of the chain of depths below. The xorshift makes each level a non-linear
 * function of the level below, so neither clang (building this) nor the C compiler that
 * builds the wasm2c output can fold the recursion into a loop with an accumulator; gcc
 * does fold the linear `chain(depth - 1) * K + depth`. */
__attribute__((noinline)) static uint32_t chain(uint32_t depth) {
  if (depth == 0) return 1;
  uint32_t below = chain(depth - 1);
  return (below ^ (below >> 15)) * 2654435761u + depth;
}

/* Writes n in decimal at the end of digits[]; returns where the number starts. */
static char *decimal(uint32_t n, size_t *len) {
  char *start = digits + sizeof digits;
  do {
    *--start = (char)('0' + n % 10);
    n /= 10;
  } while (n != 0);
  *len = (size_t)(digits + sizeof digits - start);
  return start;
}

__attribute__((export_name("process"))) struct result *process(uint8_t *payload,
                                                                size_t payload_len,
                                                                struct pair *meta,
                                                                size_t meta_count) {
  int deep = payload_len == 4 && memcmp(payload, "deep", 4) == 0;
  /* The guest owns the lowered input and keeps none of it. */
  guest_free_input(payload, meta, meta_count);

  size_t len;
  char *text = decimal(chain(deep ? 1000000000u : 100u), &len);
  out = (struct event){.payload = (uint8_t *)text, .payload_len = len};
  result = (struct result){.is_err = 0, .ptr = &out, .len = 1};
  return &result;
}
