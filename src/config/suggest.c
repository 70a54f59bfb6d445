/*
 * suggest.c - edit distance and the hints built on it.
 */
#include "config/suggest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_WORD = 128 };

static size_t min3(size_t a, size_t b, size_t c) {
  size_t m = a < b ? a : b;
  return m < c ? m : c;
}

size_t sl__edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > MAX_WORD || m > MAX_WORD) return n > m ? n : m; /* not worth comparing */
  /* Three rows of the dynamic-programming table: two back, one back, current. */
  size_t rows[3][MAX_WORD + 1];
  size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= m; j++) prev[j] = j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= m; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      size_t cost = ca == cb ? 0 : 1;
      cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < cur[j])
        cur[j] = prev2[j - 2] + 1; /* a transposition */
    }
    size_t *recycled = prev2;
    prev2 = prev;
    prev = cur;
    cur = recycled;
  }
  return prev[m];
}

const char *sl__suggest(const char *word, const char *const *candidates, size_t count) {
  size_t len = strlen(word);
  size_t limit = len / 3 > 2 ? len / 3 : 2;
  const char *best = NULL;
  size_t best_distance = (size_t)-1;
  for (size_t i = 0; i < count; i++) {
    size_t d = sl__edit_distance(word, candidates[i]);
    size_t shorter = len < strlen(candidates[i]) ? len : strlen(candidates[i]);
    if (d > limit || d >= shorter) continue;
    if (d < best_distance) {
      best = candidates[i];
      best_distance = d;
    }
  }
  return best;
}

const char *sl__join(char *buf, size_t cap, const char *const *names, size_t count) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < count && used < cap; i++) {
    int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
  return buf;
}

const char *sl__hint(char *buf, size_t cap, const char *word, const char *const *candidates,
                     size_t count, const char *label) {
  const char *close = sl__suggest(word, candidates, count);
  if (close) {
    snprintf(buf, cap, " (did you mean '%s'?)", close);
  } else if (count) {
    char list[512];
    snprintf(buf, cap, " (%s: %s)", label, sl__join(list, sizeof list, candidates, count));
  } else {
    buf[0] = '\0';
  }
  return buf;
}
