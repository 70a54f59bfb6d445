/*
 * problems.c - the list of problems a pipeline file has, and its rendering into an
 * sl_error: "file:line:col: what is wrong and what would be right", one per line.
 */
#include "config/problems.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/secrets.h"

enum { QUOTE_MAX = 60, TAIL_RESERVE = 40 };

void sl__problems_init(sl_problems *problems, const char *file) {
  memset(problems, 0, sizeof *problems);
  problems->file = file;
}

void sl__problems_destroy(sl_problems *problems) {
  for (size_t i = 0; i < problems->count; i++) free(problems->items[i].message);
  free(problems->items);
  memset(problems, 0, sizeof *problems);
}

void sl__problems_add(sl_problems *problems, int line, int col, const char *fmt, ...) {
  if (problems->count == problems->cap) {
    size_t cap = problems->cap ? problems->cap * 2 : 8;
    sl_problem *grown = realloc(problems->items, cap * sizeof *grown);
    if (!grown) abort();
    problems->items = grown;
    problems->cap = cap;
  }
  va_list ap;
  va_start(ap, fmt);
  char *message = NULL;
  if (vasprintf(&message, fmt, ap) < 0) abort();
  va_end(ap);
  problems->items[problems->count] =
      (sl_problem){.line = line, .col = col, .seq = problems->count, .message = message};
  problems->count++;
}

static int by_place(const void *a, const void *b) {
  const sl_problem *x = a, *y = b;
  if (x->line != y->line) return x->line < y->line ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One problem as its line, secrets masked. */
static void render(const sl_problems *problems, const sl_problem *p, char *const *secrets,
                   size_t secret_count, char *line, size_t cap) {
  if (p->line > 0)
    snprintf(line, cap, "%s:%d:%d: %s", problems->file, p->line, p->col, p->message);
  else
    snprintf(line, cap, "%s: %s", problems->file, p->message);
  sl__redact(secrets, secret_count, line, cap);
}

sl_status sl__problems_report(sl_problems *problems, char *const *secrets, size_t secret_count,
                              sl_error *err) {
  if (!err) return SL_CONFIG;
  qsort(problems->items, problems->count, sizeof *problems->items, by_place);
  char *out = err->message;
  size_t cap = sizeof err->message, used = 0;
  out[0] = '\0';
  char line[sizeof err->message];
  size_t i = 0;
  for (; i < problems->count; i++) {
    render(problems, &problems->items[i], secrets, secret_count, line, sizeof line);
    size_t len = strlen(line) + (used ? 1 : 0);
    bool last = i + 1 == problems->count;
    size_t room = cap - 1 - used;
    /* Keep room for the "... and N more" line unless this is the last problem. */
    if (len > room || (!last && len + TAIL_RESERVE > room)) {
      if (i == 0) { /* the first problem always shows, cut if it must be */
        used = cap - TAIL_RESERVE - 1;
        memcpy(out, line, used);
        out[used] = '\0';
        i++;
      }
      break;
    }
    used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "\n" : "", line);
  }
  size_t more = problems->count - i;
  if (more)
    snprintf(out + used, cap - used, "\n... and %zu more problem%s", more, more == 1 ? "" : "s");
  return SL_CONFIG;
}

const char *sl__quote(char *buf, size_t cap, const char *text, size_t len) {
  size_t used = 0;
  for (size_t i = 0; i < len && used + 8 < cap; i++) {
    unsigned char c = (unsigned char)text[i];
    if (i >= QUOTE_MAX && (c & 0xc0) != 0x80) { /* cut on a UTF-8 character boundary */
      used += (size_t)snprintf(buf + used, cap - used, "...");
      break;
    }
    if (c == '\n')
      used += (size_t)snprintf(buf + used, cap - used, "\\n");
    else if (c == '\t')
      used += (size_t)snprintf(buf + used, cap - used, "\\t");
    else if (c < 0x20 || c == 0x7f)
      used += (size_t)snprintf(buf + used, cap - used, "\\x%02x", c);
    else
      buf[used++] = (char)c;
  }
  buf[used < cap ? used : cap - 1] = '\0';
  return buf;
}
