/*
 * module_info.c - a small, bounds-checked reader for the type, import, function and export
 * sections of a WebAssembly binary. Everything it reads is untrusted input: every length
 * is checked against what remains before it is used.
 */
#include "wasm/module_info.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
  const uint8_t *base;
  size_t pos, end;
  bool failed;
  const char *what;
} reader;

static uint64_t read_leb(reader *r, unsigned max_bits) {
  uint64_t value = 0;
  for (unsigned shift = 0; shift < max_bits + 7; shift += 7) {
    if (r->pos >= r->end) break;
    uint8_t byte = r->base[r->pos++];
    value |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  r->failed = true;
  r->what = "malformed LEB128 integer";
  return 0;
}

static uint32_t read_u32(reader *r) { return (uint32_t)read_leb(r, 32); }

static uint8_t read_byte(reader *r) {
  if (r->pos >= r->end) {
    r->failed = true;
    r->what = "unexpected end of section";
    return 0;
  }
  return r->base[r->pos++];
}

static char *read_name(reader *r) {
  uint32_t len = read_u32(r);
  if (r->failed) return NULL;
  if (len > r->end - r->pos) {
    r->failed = true;
    r->what = "name runs past the end of its section";
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) abort(); /* host out of memory */
  memcpy(s, r->base + r->pos, len);
  s[len] = '\0';
  r->pos += len;
  return s;
}

static char type_letter(uint8_t t) {
  switch (t) {
  case 0x7f:
    return 'i';
  case 0x7e:
    return 'I';
  case 0x7d:
    return 'f';
  case 0x7c:
    return 'F';
  case 0x7b:
    return 'v';
  case 0x70:
  case 0x6f:
    return 'r';
  default:
    return '?';
  }
}

typedef struct type_table {
  char (*sigs)[SL_SIG_MAX];
  uint32_t count;
} type_table;

static void read_types(reader *r, type_table *types) {
  uint32_t count = read_u32(r);
  if (r->failed || count > r->end - r->pos) {
    r->failed = true;
    r->what = "bad type count";
    return;
  }
  types->sigs = calloc(count ? count : 1, SL_SIG_MAX);
  if (!types->sigs) abort();
  types->count = count;
  for (uint32_t i = 0; i < count && !r->failed; i++) {
    if (read_byte(r) != 0x60) {
      r->failed = true;
      r->what = "type is not a function type";
      return;
    }
    char *sig = types->sigs[i];
    size_t n = 0;
    for (int part = 0; part < 2 && !r->failed; part++) {
      uint32_t k = read_u32(r);
      for (uint32_t j = 0; j < k && !r->failed; j++) {
        char c = type_letter(read_byte(r));
        if (n < SL_SIG_MAX - 2) sig[n++] = c;
      }
      if (part == 0) sig[n++] = ':';
    }
    sig[n] = '\0';
  }
}

static const char *type_sig(reader *r, const type_table *types, uint32_t index) {
  if (index >= types->count) {
    r->failed = true;
    r->what = "function refers to a type index that does not exist";
    return "";
  }
  return types->sigs[index];
}

static void skip_limits(reader *r) {
  uint8_t flags = read_byte(r);
  read_u32(r);
  if (flags & 1) read_u32(r);
}

static void read_imports(reader *r, const type_table *types, sl_module_info *info) {
  uint32_t count = read_u32(r);
  if (r->failed || count > r->end - r->pos) {
    r->failed = true;
    r->what = "bad import count";
    return;
  }
  info->imports = calloc(count ? count : 1, sizeof *info->imports);
  if (!info->imports) abort();
  for (uint32_t i = 0; i < count && !r->failed; i++) {
    sl_wasm_import *imp = &info->imports[info->import_count++];
    imp->module = read_name(r);
    imp->name = read_name(r);
    imp->kind = read_byte(r);
    switch (imp->kind) {
    case SL_EXTERN_FUNC: {
      uint32_t t = read_u32(r);
      snprintf(imp->sig, sizeof imp->sig, "%s", type_sig(r, types, t));
      break;
    }
    case SL_EXTERN_TABLE:
      read_byte(r);
      skip_limits(r);
      break;
    case SL_EXTERN_MEMORY:
      skip_limits(r);
      break;
    case SL_EXTERN_GLOBAL:
      read_byte(r);
      read_byte(r);
      break;
    default:
      r->failed = true;
      r->what = "unknown import kind";
    }
  }
}

static void read_exports(reader *r, sl_module_info *info) {
  uint32_t count = read_u32(r);
  if (r->failed || count > r->end - r->pos) {
    r->failed = true;
    r->what = "bad export count";
    return;
  }
  info->exports = calloc(count ? count : 1, sizeof *info->exports);
  if (!info->exports) abort();
  for (uint32_t i = 0; i < count && !r->failed; i++) {
    sl_wasm_export *exp = &info->exports[info->export_count++];
    exp->name = read_name(r);
    exp->kind = read_byte(r);
    exp->index = read_u32(r); /* its signature is resolved once all sections are read */
  }
}

sl_status sl__module_info_parse(const uint8_t *wasm, size_t len, sl_module_info *info,
                                sl_error *err) {
  static const uint8_t magic[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
  memset(info, 0, sizeof *info);
  if (len < 8 || memcmp(wasm, magic, 8) != 0)
    return sl_error_set(err, SL_BAD_MODULE,
                        "not a WebAssembly binary module (expected \\0asm version 1)");

  type_table types = {0};
  uint32_t *func_types = NULL; /* type index of every defined function */
  uint32_t imported_funcs = 0;
  reader r = {.base = wasm, .pos = 8, .end = len};
  sl_status status = SL_OK;
  bool section_seen[13] = {false};

  while (r.pos < len && !r.failed) {
    uint8_t id = read_byte(&r);
    uint32_t size = read_u32(&r);
    if (r.failed) break;
    if (size > len - r.pos) {
      r.failed = true;
      r.what = "section runs past the end of the file";
      break;
    }
    reader sec = {.base = wasm, .pos = r.pos, .end = r.pos + size};
    if (id != 0 && id < sizeof section_seen && section_seen[id]) {
      r.failed = true;
      r.what = "a section appears twice";
      break;
    }
    if (id < sizeof section_seen) section_seen[id] = true;
    switch (id) {
    case 1:
      read_types(&sec, &types);
      break;
    case 2:
      read_imports(&sec, &types, info);
      for (size_t i = 0; i < info->import_count; i++)
        if (info->imports[i].kind == SL_EXTERN_FUNC) imported_funcs++;
      break;
    case 3: {
      uint32_t count = read_u32(&sec);
      if (sec.failed || count > sec.end - sec.pos) {
        sec.failed = true;
        sec.what = "bad function count";
        break;
      }
      func_types = calloc(count ? count : 1, sizeof *func_types);
      if (!func_types) abort();
      info->function_count = count;
      for (uint32_t i = 0; i < count && !sec.failed; i++) func_types[i] = read_u32(&sec);
      break;
    }
    case 7:
      read_exports(&sec, info);
      break;
    default:
      break;
    }
    if (sec.failed) {
      r.failed = true;
      r.what = sec.what;
      r.pos = sec.pos;
      break;
    }
    r.pos += size;
  }

  for (size_t i = 0; i < info->export_count && !r.failed; i++) {
    sl_wasm_export *exp = &info->exports[i];
    uint32_t index = exp->index;
    if (exp->kind != SL_EXTERN_FUNC) continue;
    if (index < imported_funcs) {
      /* Re-exporting an import: its signature is the import's. */
      uint32_t seen = 0;
      for (size_t j = 0; j < info->import_count; j++) {
        if (info->imports[j].kind != SL_EXTERN_FUNC) continue;
        if (seen++ == index) snprintf(exp->sig, sizeof exp->sig, "%s", info->imports[j].sig);
      }
    } else if (index - imported_funcs < info->function_count) {
      snprintf(exp->sig, sizeof exp->sig, "%s",
               type_sig(&r, &types, func_types[index - imported_funcs]));
    } else {
      r.failed = true;
      r.what = "export refers to a function that does not exist";
    }
  }

  if (r.failed) {
    status = sl_error_set(err, SL_BAD_MODULE, "invalid WebAssembly module at byte %zu: %s", r.pos,
                          r.what);
    sl__module_info_free(info);
  }
  free(types.sigs);
  free(func_types);
  return status;
}

void sl__module_info_free(sl_module_info *info) {
  for (size_t i = 0; i < info->import_count; i++) {
    free(info->imports[i].module);
    free(info->imports[i].name);
  }
  for (size_t i = 0; i < info->export_count; i++) free(info->exports[i].name);
  free(info->imports);
  free(info->exports);
  memset(info, 0, sizeof *info);
}

const sl_wasm_export *sl__module_info_export(const sl_module_info *info, const char *name) {
  for (size_t i = 0; i < info->export_count; i++)
    if (strcmp(info->exports[i].name, name) == 0) return &info->exports[i];
  return NULL;
}
