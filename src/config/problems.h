/*
 * problems.h - collects every problem found in a pipeline file, so one run of
 * `sluice validate` reports all of them, in file order, one per line.
 */
#ifndef SL_CONFIG_PROBLEMS_H
#define SL_CONFIG_PROBLEMS_H

#include <stddef.h>

#include "sluice/status.h"

typedef struct sl_problem {
  int line, col; /* 1-based; line 0: the problem has no place in the file */
  size_t seq;    /* order of discovery, to keep the sort stable */
  char *message; /* malloc'ed */
} sl_problem;

typedef struct sl_problems {
  const char *file; /* borrowed: the name messages start with */
  sl_problem *items;
  size_t count, cap;
} sl_problems;

void sl__problems_init(sl_problems *problems, const char *file);
void sl__problems_destroy(sl_problems *problems);

/* Records "file:line:col: <message>". */
void sl__problems_add(sl_problems *problems, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Writes every problem into `err` ordered by place, one per line, each with every value
 * of `secrets` replaced by "***" (a last line of defence: messages are written not to
 * quote secrets in the first place). When the buffer runs out, the last line says
 * "... and N more problems". Returns SL_CONFIG.
 */
sl_status sl__problems_report(sl_problems *problems, char *const *secrets, size_t secret_count,
                              sl_error *err);

/*
 * Quotes user text for a message: at most ~60 characters (then "..."), control
 * characters shown as \n, \t or \xNN. `cap` should be at least 80.
 */
const char *sl__quote(char *buf, size_t cap, const char *text, size_t len);

#endif
