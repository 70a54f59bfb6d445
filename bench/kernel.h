/*
 * kernel.h - the string kernel the benchmarks run three ways: compiled natively by gcc,
 * compiled to Wasm and run by Sluice, and the same .wasm run by node's V8.
 *
 * The kernel is what the `upper` example processor does to a payload: ASCII letters to
 * upper case, every other byte as it is, written from a source buffer into a separate
 * output buffer. The source text mixes cases, digits and punctuation the way log lines
 * and CSV rows do, so the work per byte is the same on every pass.
 */
#ifndef BENCH_KERNEL_H
#define BENCH_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes per pass: large enough that call overhead vanishes, small enough for L2. */
#define KERNEL_BUFFER_BYTES (1u << 20)

/* Fills `buf` with deterministic ETL-like text (the same bytes on every platform). */
void kernel_fill(uint8_t *buf, size_t len);

/* The kernel: dst[i] = ASCII upper case of src[i]. Kept out of line so the C compilers
 * cannot merge a benchmark's repeated passes into one. (binaryen's wasm-opt, which clang
 * runs, still inlines it into the guest's pass loop; the passes stay separate.) */
__attribute__((noinline)) void kernel_upper(uint8_t *dst, const uint8_t *src, size_t len);

/* A cheap checksum of `buf` (every 4096th byte plus the last 64), so each runner can show
 * that it computed the same output without adding a full extra pass. */
uint64_t kernel_sample(const uint8_t *buf, size_t len);

#endif
