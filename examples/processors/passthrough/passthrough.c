/*
 * passthrough.c - returns the input event unchanged. The benchmarks use it to measure
 * the host's own cost per event, so it does as little as possible: the output refers to
 * the input's payload and metadata in place, and nothing is copied inside the guest.
 */
#include "sluice.h"

static int passthrough(const sluice_event *in, sluice_out *out) {
  return sluice_forward(out, in) ? 0 : -1;
}

SLUICE_PROCESSOR(passthrough)
