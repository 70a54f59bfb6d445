/*
 * split.h - splits instrumented wasm2c output into translation units that compile in
 * parallel.
 *
 * gcc spends nearly all of a cold compile on one big translation unit (wasm2c 1.0.32 has
 * no option to write several), while the machine has more than one core. Splitting the
 * function definitions across files and compiling them at once divides the wait.
 */
#ifndef SL_WASM_SPLIT_H
#define SL_WASM_SPLIT_H

#include "sluice/status.h"

/*
 * Reads `instrumented_c` and writes `<dir>/guest_part0.c` ... `guest_part<n-1>.c`.
 * Part 0 keeps everything except the function definitions moved to other parts; every
 * other part holds wasm2c's common definitions (macros, inline helpers), declarations of
 * the module's functions, and its share of function definitions. Functions lose `static`
 * (the shared object is built with hidden visibility, so nothing leaks out of it).
 * `*parts_written` is set to the number of files written: 1 when the input is too small
 * to be worth splitting or does not have the expected shape, in which case part 0 is a
 * plain copy.
 */
sl_status sl__split_translation_units(const char *instrumented_c, const char *dir, int parts,
                                      int *parts_written, sl_error *err);

#endif
