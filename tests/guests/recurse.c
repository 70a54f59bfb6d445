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

/* The returned digits and the result stay valid until the next call. */
static char digits[10];
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
  for (size_t i = 0; i < meta_count; i++) {
    free(meta[i].key);
    free(meta[i].value);
  }
  free(meta);
  free(payload);

  size_t len;
  char *text = decimal(chain(deep ? 1000000000u : 100u), &len);
  out = (struct event){.payload = (uint8_t *)text, .payload_len = len};
  result = (struct result){.is_err = 0, .ptr = &out, .len = 1};
  return &result;
}
