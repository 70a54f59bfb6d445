/*
 * kernel.c - the string kernel (see kernel.h). Compiled twice from this one file: by gcc
 * -O2 into the benchmark program, and by clang into bench/guests/kernel_guest.wasm.
 */
#include "kernel.h"

void kernel_fill(uint8_t *buf, size_t len) {
  static const char alphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:.-_\"{}=/";
  uint32_t state = 0x2545f491u;
  for (size_t i = 0; i < len; i++) {
    state ^= state << 13; /* xorshift32: the same sequence everywhere */
    state ^= state >> 17;
    state ^= state << 5;
    buf[i] = (i % 80 == 79) ? '\n' : (uint8_t)alphabet[state % (sizeof alphabet - 1)];
  }
}

void kernel_upper(uint8_t *dst, const uint8_t *src, size_t len) {
  for (size_t i = 0; i < len; i++) {
    uint8_t c = src[i];
    dst[i] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
  }
}

uint64_t kernel_sample(const uint8_t *buf, size_t len) {
  uint64_t sum = 0;
  for (size_t i = 0; i < len; i += 4096) sum = sum * 31 + buf[i];
  for (size_t i = len > 64 ? len - 64 : 0; i < len; i++) sum = sum * 31 + buf[i];
  return sum;
}
