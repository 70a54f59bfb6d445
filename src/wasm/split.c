/*
 * split.c - parallel translation units from one wasm2c output (see split.h).
 *
 * wasm2c 1.0.32 lays its output out as:
 *
 *   common part     includes, macros, static inline helpers   (up to s_module_initialized)
 *   module state    func_types, init_func_types, forward declarations of w2c_ functions,
 *                   init_globals, data and element segments, init_memories, init_tables
 *   functions       static <type> w2c_<name>(Z_guest_instance_t* instance, ...) { ... }
 *   exports         Z_guestZ_<name>(...), init_module, instantiate, free
 *
 * Function definitions are the bulk, and depend only on the common part, the forward
 * declarations, func_types (call_indirect) and, rarely, segment arrays (memory.init,
 * table.init). Functions that mention a segment stay in part 0.
 */
#include "wasm/split.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/codegen.h"

/* Below this much generated C, one compiler process is faster than several. */
#define SPLIT_MIN_BYTES (128 * 1024)

typedef struct lines {
  char **items;
  size_t count;
} lines;

static void lines_free(lines *l) {
  for (size_t i = 0; i < l->count; i++) free(l->items[i]);
  free(l->items);
}

static sl_status read_lines(const char *path, lines *out, size_t *bytes, sl_error *err) {
  FILE *f = fopen(path, "r");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
  size_t cap = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t n;
  *bytes = 0;
  while ((n = getline(&line, &line_cap, f)) > 0) {
    if (out->count == cap) {
      cap = cap ? cap * 2 : 4096;
      char **grown = realloc(out->items, cap * sizeof *grown);
      if (!grown) abort();
      out->items = grown;
    }
    out->items[out->count++] = line;
    *bytes += (size_t)n;
    line = NULL;
    line_cap = 0;
  }
  free(line);
  fclose(f);
  return SL_OK;
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

typedef struct function {
  size_t first, last; /* line indexes, inclusive */
  int part;
} function;

static sl_status write_part(const char *dir, int part, bool shared, const lines *src,
                            size_t common_end, const char *func_types_decl, const function *fns,
                            size_t fn_count, sl_error *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/guest_part%d.c", dir, part);
  FILE *f = fopen(path, "w");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
  if (part == 0) {
    size_t next_fn = 0;
    for (size_t i = 0; i < src->count; i++) {
      while (next_fn < fn_count && fns[next_fn].last < i) next_fn++;
      bool in_fn = next_fn < fn_count && i >= fns[next_fn].first;
      if (in_fn && fns[next_fn].part != 0) continue;
      const char *line = src->items[i];
      if (shared &&
          (sl__codegen_is_function_line(line) || starts_with(line, "static u32 func_types[")))
        line += strlen("static "); /* shared across parts now */
      fputs(line, f);
    }
  } else {
    for (size_t i = 0; i < common_end; i++) fputs(src->items[i], f);
    fprintf(f, "\nextern %s", func_types_decl);
    for (size_t i = common_end; i < src->count; i++)
      if (sl__codegen_is_function_line(src->items[i]) && ends_with(src->items[i], ");\n"))
        fputs(src->items[i] + strlen("static "), f);
    for (size_t k = 0; k < fn_count; k++) {
      if (fns[k].part != part) continue;
      fputs(src->items[fns[k].first] + strlen("static "), f);
      for (size_t i = fns[k].first + 1; i <= fns[k].last; i++) fputs(src->items[i], f);
    }
  }
  if (fclose(f) != 0) return sl_error_set(err, SL_IO, "%s: %s", path, strerror(errno));
  return SL_OK;
}

sl_status sl__split_translation_units(const char *instrumented_c, const char *dir, int parts,
                                      int *parts_written, sl_error *err) {
  lines src = {0};
  size_t bytes = 0;
  function *fns = NULL;
  size_t fn_count = 0, fn_cap = 0;
  sl_status status = read_lines(instrumented_c, &src, &bytes, err);
  if (status != SL_OK) return status;

  size_t common_end = 0;
  const char *func_types_decl = NULL;
  for (size_t i = 0; i < src.count; i++) {
    const char *line = src.items[i];
    if (!common_end && starts_with(line, "static bool s_module_initialized")) common_end = i;
    if (starts_with(line, "static u32 func_types[")) func_types_decl = line + strlen("static ");
    if (!sl__codegen_is_function_line(line) || !ends_with(line, ") {\n")) continue;
    size_t last = i + 1;
    while (last < src.count && strcmp(src.items[last], "}\n") != 0) last++;
    if (last == src.count) break;
    if (fn_count == fn_cap) {
      fn_cap = fn_cap ? fn_cap * 2 : 256;
      function *grown = realloc(fns, fn_cap * sizeof *grown);
      if (!grown) abort();
      fns = grown;
    }
    fns[fn_count++] = (function){i, last, 0};
    i = last;
  }

  /* Give later functions to parts 1..n-1 by size, keeping any that use segments. */
  int written = 1;
  if (parts > 1 && bytes >= SPLIT_MIN_BYTES && common_end && func_types_decl && fn_count > 1) {
    size_t total = 0, seen = 0;
    for (size_t k = 0; k < fn_count; k++) total += fns[k].last - fns[k].first + 1;
    for (size_t k = 0; k < fn_count; k++) {
      size_t size = fns[k].last - fns[k].first + 1;
      int part = (int)((seen + size / 2) * (size_t)parts / (total ? total : 1));
      seen += size;
      if (part >= parts) part = parts - 1;
      for (size_t i = fns[k].first; i <= fns[k].last && part; i++)
        if (strstr(src.items[i], "_segment_") || strstr(src.items[i], "s_module_initialized"))
          part = 0;
      fns[k].part = part;
      if (part + 1 > written) written = part + 1;
    }
  }
  for (int p = 0; p < written && status == SL_OK; p++)
    status = write_part(dir, p, written > 1, &src, common_end, func_types_decl, fns, fn_count, err);
  *parts_written = written;
  free(fns);
  lines_free(&src);
  return status;
}
