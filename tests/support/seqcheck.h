/*
 * seqcheck.h - proof of delivery for numbered events.
 *
 * A producer sends events whose payload is a decimal number 1..N (optionally followed by
 * a space and padding). Whatever comes out the far end is fed to a checker, which says
 * which numbers are missing, how many arrived more than once, and how many arrived
 * after a larger one (reordered). The reliability tests and `make reliability` use the
 * same code, at different counts.
 */
#ifndef SL_TEST_SEQCHECK_H
#define SL_TEST_SEQCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_seqcheck {
  uint64_t expected;   /* numbers 1..expected should arrive */
  uint8_t *seen;       /* per number: times seen, saturating at 255 */
  uint64_t received;   /* numbers fed, in range or not */
  uint64_t duplicates; /* arrivals beyond the first, summed */
  uint64_t reordered;  /* arrivals smaller than the largest seen before them */
  uint64_t out_of_range;
  uint64_t unparsable;
  uint64_t largest;
} sl_seqcheck;

void sl_seqcheck_init(sl_seqcheck *check, uint64_t expected);
void sl_seqcheck_destroy(sl_seqcheck *check);

/* Feeds one payload ("123" or "123 ..."). */
void sl_seqcheck_add(sl_seqcheck *check, const void *payload, size_t len);

/* Feeds every line of `text` (a file sink's output, say). */
void sl_seqcheck_add_lines(sl_seqcheck *check, const char *text);

/* Numbers in 1..expected never seen. */
uint64_t sl_seqcheck_missing(const sl_seqcheck *check);

/* Reliability tests run at reduced counts in `make test` (CI) and at full counts under
 * `make reliability`, which sets SLUICE_RELIABILITY=full. Returns `ci` or `full`. */
uint64_t sl_reliability_count(uint64_t ci, uint64_t full);

/* One line: "expected N, received R, missing M (first: a, b, c), duplicates D,
 * reordered O". Into buf; returns buf. */
const char *sl_seqcheck_report(const sl_seqcheck *check, char *buf, size_t size);

#endif
