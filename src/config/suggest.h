/*
 * suggest.h - "did you mean 'path'?" for unknown keys, types, node ids and secret names.
 */
#ifndef SL_CONFIG_SUGGEST_H
#define SL_CONFIG_SUGGEST_H

#include <stddef.h>

/* Optimal-string-alignment (Damerau-Levenshtein) distance, ignoring ASCII case. */
size_t sl__edit_distance(const char *a, const char *b);

/*
 * The candidate closest to `word`, or NULL when none is close: within 2 edits, or
 * within a third of the word's length for long words, and never a rewrite of the whole
 * word. Ties go to the earlier candidate.
 */
const char *sl__suggest(const char *word, const char *const *candidates, size_t count);

/*
 * Writes the hint that ends a message: " (did you mean 'path'?)" when a candidate is
 * close, otherwise " (<label>: a, b, c)" listing every candidate, or "" when there are
 * none. Returns `buf`.
 */
const char *sl__hint(char *buf, size_t cap, const char *word, const char *const *candidates,
                     size_t count, const char *label);

/* "a, b, c" into `buf`. Returns `buf`. */
const char *sl__join(char *buf, size_t cap, const char *const *names, size_t count);

#endif
