/*
 * codegen.c - instrumentation of wasm2c output and the per-module shim.
 *
 * wasm2c 1.0.32 writes every function as
 *
 *     static u32 w2c_f3(Z_guest_instance_t* instance, u32 w2c_p0) {
 *       ...locals...
 *       FUNC_PROLOGUE;
 *
 * and every loop as a label `w2c_L<n>: ` that the loop's back edge jumps to (we run it
 * with --no-debug-names, so labels never take names from the module). Both lines are
 * recognisable exactly, which makes a line filter enough: the checks go right after them.
 */
#include "wasm/codegen.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/host_imports.h"
#include "wasm/wasi.h"

extern const char sl__guest_prelude_text[];

static bool is_loop_label(const char *line) {
  while (*line == ' ') line++;
  if (strncmp(line, "w2c_L", 5) != 0) return false;
  line += 5;
  if (!isdigit((unsigned char)*line)) return false;
  while (isdigit((unsigned char)*line)) line++;
  return strcmp(line, ": \n") == 0 || strcmp(line, ":\n") == 0;
}

bool sl__codegen_is_function_line(const char *line) {
  if (strncmp(line, "static ", 7) != 0) return false;
  const char *name = strstr(line, " w2c_");
  const char *paren = strchr(line, '(');
  return name && paren && name < paren && strncmp(paren, "(Z_guest_instance_t*", 20) == 0;
}

static bool is_function_definition(const char *line) {
  size_t len = strlen(line);
  return sl__codegen_is_function_line(line) && len >= 4 && strcmp(line + len - 4, ") {\n") == 0;
}

sl_status sl__codegen_instrument(const char *generated_c, const char *instrumented_c,
                                 sl_error *err) {
  sl_status status = SL_OK;
  FILE *in = fopen(generated_c, "r");
  FILE *out = in ? fopen(instrumented_c, "w") : NULL;
  char *line = NULL;
  size_t cap = 0;
  size_t prologues = 0, defined_functions = 0;
  if (!in || !out) {
    status = sl_error_set(err, SL_IO, "%s: %s", in ? instrumented_c : generated_c, strerror(errno));
    goto done;
  }
  while (getline(&line, &cap, in) > 0) {
    if (strcmp(line, "  FUNC_PROLOGUE;\n") == 0) {
      fputs("  FUNC_PROLOGUE; SL_ENTRY_CHECK();\n", out);
      prologues++;
    } else if (is_loop_label(line)) {
      line[strcspn(line, "\n")] = '\0';
      fprintf(out, "%s SL_LOOP_CHECK();\n", line);
    } else {
      if (is_function_definition(line)) defined_functions++;
      fputs(line, out);
    }
  }
  if (ferror(in) || ferror(out)) {
    status = sl_error_set(err, SL_IO, "instrumenting %s failed", generated_c);
    goto done;
  }
  if (prologues != defined_functions) {
    status = sl_error_set(err, SL_COMPILE,
                          "wasm2c output has %zu functions but %zu prologues; this wasm2c "
                          "version is not one Sluice knows how to instrument",
                          defined_functions, prologues);
  }
done:
  free(line);
  if (in) fclose(in);
  if (out && fclose(out) != 0 && status == SL_OK)
    status = sl_error_set(err, SL_IO, "%s: %s", instrumented_c, strerror(errno));
  return status;
}

/* wasm2c's mangling of a name: `prefix` then the name with 'Z' written as "ZZ" and any
 * byte that is not a C identifier character as "Z" + two hex digits. Exports are
 * Z_guestZ_<name>; imports Z_<module>Z_<name>, with the import module's context struct
 * named struct Z_<module>_instance_t. */
static void mangle(const char *prefix, const char *name, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "%s", prefix);
  for (const unsigned char *p = (const unsigned char *)name; *p && n + 4 < cap; p++) {
    if (*p == 'Z')
      n += (size_t)snprintf(out + n, cap - n, "ZZ");
    else if (isalnum(*p) || *p == '_')
      out[n++] = (char)*p;
    else
      n += (size_t)snprintf(out + n, cap - n, "Z%02X", *p);
  }
  out[n] = '\0';
}

static void export_symbol(const char *name, char *out, size_t cap) {
  mangle("Z_guestZ_", name, out, cap);
}

static const char *c_type(char letter) {
  switch (letter) {
  case 'i':
    return "u32";
  case 'I':
    return "u64";
  case 'f':
    return "f32";
  default:
    return "f64";
  }
}

/* Defines one capability import the way wasm2c declared it, as a call of the host
 * function that implements it (host_imports.c), passing the instance context along. */
static void write_trampoline(FILE *f, const sl_wasm_import *imp, const sl_host_import *host) {
  char module[512], prefix[520], fn[1536];
  mangle("Z_", imp->module, module, sizeof module);
  snprintf(prefix, sizeof prefix, "%sZ_", module);
  mangle(prefix, imp->name, fn, sizeof fn);
  const char *colon = strchr(imp->sig, ':');
  const char *ret = colon[1] ? c_type(colon[1]) : "void";
  size_t params = (size_t)(colon - imp->sig);
  fprintf(f, "__attribute__((visibility(\"default\"))) extern %s %s(void *", ret,
          host->host_symbol);
  for (size_t i = 0; i < params; i++) fprintf(f, ", %s", c_type(imp->sig[i]));
  fprintf(f, ");\n%s %s(struct %s_instance_t *ctx", ret, fn, module);
  for (size_t i = 0; i < params; i++) fprintf(f, ", %s a%zu", c_type(imp->sig[i]), i);
  fprintf(f, ") {\n  %s%s(ctx", colon[1] ? "return " : "", host->host_symbol);
  for (size_t i = 0; i < params; i++) fprintf(f, ", a%zu", i);
  fprintf(f, ");\n}\n");
}

static bool has_func_export(const sl_module_info *info, const char *name) {
  const sl_wasm_export *e = sl__module_info_export(info, name);
  return e && e->kind == SL_EXTERN_FUNC;
}

sl_status sl__codegen_shim(const char *shim_path, const char *instrumented_name,
                           const sl_module_info *info, bool checks, sl_error *err) {
  FILE *f = fopen(shim_path, "w");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", shim_path, strerror(errno));

  fprintf(f, "/* Generated by Sluice: the guest shim (see src/wasm/codegen.c). */\n");
  fprintf(f, "#define SL_GUEST_BUILD 1\n#define SL_GUEST_CHECKS %d\n", checks ? 1 : 0);
  fputs(sl__guest_prelude_text, f);
  fprintf(f, "\n#include \"%s\"\n\n", instrumented_name);

  char sym[256];
  for (size_t i = 0; i < info->import_count; i++) {
    const sl_wasm_import *imp = &info->imports[i];
    if (imp->kind != SL_EXTERN_FUNC || strcmp(imp->module, SL_WASI_MODULE) == 0) continue;
    const sl_host_import *host = sl__host_import_find(imp->module, imp->name);
    if (!host) { /* check_contract refused it already; this is a host bug */
      fclose(f);
      return sl_error_set(err, SL_BAD_MODULE, "no host function for %s.%s", imp->module,
                          imp->name);
    }
    write_trampoline(f, imp, host);
  }
  /* wasm2c takes one context per import module, in an order of its own; every one of
   * them is the instance (see instance.h), so the order does not matter. */
  size_t modules = 0;
  for (size_t i = 0; i < info->import_count; i++) {
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++)
      seen = strcmp(info->imports[k].module, info->imports[i].module) == 0;
    if (!seen) modules++;
  }
  fprintf(f, "static void shim_instantiate(void *i, void *ctx) {\n  (void)ctx;\n");
  fprintf(f, "  Z_guest_instantiate(i");
  for (size_t m = 0; m < modules; m++) fprintf(f, ", ctx");
  fprintf(f, ");\n}\n");
  fprintf(f, "static void shim_free(void *i) { Z_guest_free(i); }\n");
  export_symbol("memory", sym, sizeof sym);
  fprintf(f, "static void *shim_memory(void *i) { return %s(i); }\n", sym);

  struct {
    const char *wasm_name, *field, *ret, *params, *args;
  } optional[] = {
      {"_initialize", "initialize", "void", "void *i", "i"},
      {"cabi_realloc", "realloc", "uint32_t",
       "void *i, uint32_t a, uint32_t b, uint32_t c, uint32_t d", "i, a, b, c, d"},
      {"process", "process", "uint32_t", "void *i, uint32_t a, uint32_t b, uint32_t c, uint32_t d",
       "i, a, b, c, d"},
      {"cabi_post_process", "post_process", "void", "void *i, uint32_t a", "i, a"},
      {"init", "init", "uint32_t", "void *i, uint32_t a, uint32_t b", "i, a, b"},
      {"cabi_post_init", "post_init", "void", "void *i, uint32_t a", "i, a"},
  };
  size_t count = sizeof optional / sizeof optional[0];
  for (size_t k = 0; k < count; k++) {
    if (!has_func_export(info, optional[k].wasm_name)) continue;
    export_symbol(optional[k].wasm_name, sym, sizeof sym);
    fprintf(f, "static %s shim_%s(%s) { %s%s(%s); }\n", optional[k].ret, optional[k].field,
            optional[k].params, strcmp(optional[k].ret, "void") ? "return " : "", sym,
            optional[k].args);
  }

  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) const sl_guest_api sl_guest_exports = {\n");
  fprintf(f, "  .abi_version = SL_GUEST_ABI_VERSION,\n  .checks = SL_GUEST_CHECKS,\n");
  fprintf(f, "  .instance_size = sizeof(Z_guest_instance_t),\n");
  fprintf(f, "  .init_module = Z_guest_init_module,\n  .instantiate = shim_instantiate,\n");
  fprintf(f, "  .free_instance = shim_free,\n  .memory = shim_memory,\n");
  for (size_t k = 0; k < count; k++)
    if (has_func_export(info, optional[k].wasm_name))
      fprintf(f, "  .%s = shim_%s,\n", optional[k].field, optional[k].field);
  fprintf(f, "};\n");

  if (fclose(f) != 0) return sl_error_set(err, SL_IO, "%s: %s", shim_path, strerror(errno));
  return SL_OK;
}

sl_status sl__codegen_part_shim(const char *shim_path, const char *part_name, bool checks,
                                sl_error *err) {
  FILE *f = fopen(shim_path, "w");
  if (!f) return sl_error_set(err, SL_IO, "%s: %s", shim_path, strerror(errno));
  fprintf(f, "/* Generated by Sluice: one more part of the guest (see src/wasm/split.c). */\n");
  fprintf(f, "#define SL_GUEST_BUILD 1\n#define SL_GUEST_CHECKS %d\n", checks ? 1 : 0);
  fputs(sl__guest_prelude_text, f);
  fprintf(f, "\n#include \"%s\"\n", part_name);
  if (fclose(f) != 0) return sl_error_set(err, SL_IO, "%s: %s", shim_path, strerror(errno));
  return SL_OK;
}
