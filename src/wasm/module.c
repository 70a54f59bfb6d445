/*
 * module.c - the engine object and loading a module: check it against the processor
 * contract, find or build its native artifact, verify it, and dlopen it.
 *
 *   .wasm --sha256--> module hash --+ toolchain identity --> cache key
 *     cache hit:  verify HMAC --> memfd --> dlopen
 *     cache miss: lock key --> wasm2c --> instrument --> shim --> cc --> store --> (hit)
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "wasm/codegen.h"
#include "wasm/component.h"
#include "wasm/engine_internal.h"
#include "wasm/host_imports.h"
#include "wasm/module_info.h"
#include "wasm/runtime.h"
#include "wasm/split.h"
#include "wasm/toolchain.h"
#include "wasm/wasi.h"

#define SLUICE_CODEGEN_VERSION "sluice-codegen-3"

extern const char sl__guest_prelude_text[];

static double ms_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

void sl__engine_notice(sl_engine *engine, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sl_log_fn log = engine->log ? engine->log : sl__log_stderr;
  log(engine->log_user, "sluice", "notice", line, strlen(line));
}

/* Re-states the error already in `err` with a prefix: "<prefix>: <message>". */
static sl_status prefix_error(sl_error *err, sl_status status, const char *prefix) {
  char detail[sizeof err->message];
  snprintf(detail, sizeof detail, "%s", err ? err->message : "");
  return sl_error_set(err, status, "%s: %s", prefix, detail);
}

static const char *pick(const char *given, const char *env, const char *fallback) {
  if (given && *given) return given;
  const char *value = getenv(env);
  return value && *value ? value : fallback;
}

sl_status sl_engine_new(const sl_engine_options *opts, sl_engine **out, sl_error *err) {
  sl_engine_options none = {0};
  if (!opts) opts = &none;
  sl_engine *engine = calloc(1, sizeof *engine);
  if (!engine) return sl_error_set(err, SL_NOMEM, "out of memory");

  const char *home = pick(opts->home, "SLUICE_HOME", NULL);
  if (home)
    snprintf(engine->home, sizeof engine->home, "%s", home);
  else
    snprintf(engine->home, sizeof engine->home, "%s/.sluice", pick(NULL, "HOME", "/tmp"));
  snprintf(engine->cc, sizeof engine->cc, "%s", pick(opts->cc, "SLUICE_CC", "cc"));
  snprintf(engine->wasm2c, sizeof engine->wasm2c, "%s",
           pick(opts->wasm2c, "SLUICE_WASM2C", "wasm2c"));
  /* -O1: on wasm2c output gcc -O2 doubles compile time without making guests faster
   * (docs/benchmarks.md); -O3 made them slower. */
  snprintf(engine->cflags, sizeof engine->cflags, "%s", opts->cflags ? opts->cflags : "-O1");
  atomic_init(&engine->refs, 1);
  engine->checks = !opts->no_interrupt_checks;
  engine->log = opts->log;
  engine->log_user = opts->log_user;

  sl_status status = sl__cache_open(engine->home, &engine->cache, err);
  if (status != SL_OK) {
    free(engine);
    return status;
  }

  /* Everything that changes the native code goes into the key. */
  char prelude_hash[65];
  sl__sha256_hex(sl__guest_prelude_text, strlen(sl__guest_prelude_text), prelude_hash);
  snprintf(engine->toolchain_id, sizeof engine->toolchain_id,
           "%s;abi=%d;prelude=%s;checks=%d;cflags=%s;", SLUICE_CODEGEN_VERSION,
           SL_GUEST_ABI_VERSION, prelude_hash, engine->checks, engine->cflags);
  sl__tool_identity(engine->wasm2c, engine->toolchain_id, sizeof engine->toolchain_id);
  sl__tool_identity(engine->cc, engine->toolchain_id, sizeof engine->toolchain_id);
  sl__tool_identity("/usr/include/wasm-rt.h", engine->toolchain_id, sizeof engine->toolchain_id);

  sl__rt_global_init();
  *out = engine;
  return SL_OK;
}

void sl__engine_release(sl_engine *engine) {
  if (engine && atomic_fetch_sub(&engine->refs, 1) == 1) free(engine);
}

/* Modules keep the engine alive, so destroying it while they exist is safe. */
const char *sl_engine_home(const sl_engine *engine) { return engine->home; }

void sl_engine_destroy(sl_engine *engine) { sl__engine_release(engine); }

/* ---- the contract ------------------------------------------------------------------ */

static sl_status check_contract(const sl_module_info *info, const char *name, sl_error *err) {
  static const struct {
    const char *export_name, *sig;
    bool required;
  } exports[] = {
      {"cabi_realloc", "iiii:i", true},   {"process", "iiii:i", true},
      {"cabi_post_process", "i:", false}, {"init", "ii:i", false},
      {"cabi_post_init", "i:", false},    {"_initialize", ":", false},
  };
  const sl_wasm_export *memory = sl__module_info_export(info, "memory");
  if (!memory || memory->kind != SL_EXTERN_MEMORY)
    return sl_error_set(err, SL_BAD_MODULE,
                        "%s: the module does not export its linear memory as `memory`", name);
  for (size_t i = 0; i < sizeof exports / sizeof exports[0]; i++) {
    const sl_wasm_export *e = sl__module_info_export(info, exports[i].export_name);
    if (!e) {
      if (exports[i].required)
        return sl_error_set(err, SL_BAD_MODULE,
                            "%s: the module does not export `%s` (a processor needs `memory`, "
                            "`cabi_realloc` and `process`; see docs/reference/processor-abi.md)",
                            name, exports[i].export_name);
      continue;
    }
    if (e->kind != SL_EXTERN_FUNC || strcmp(e->sig, exports[i].sig) != 0)
      return sl_error_set(err, SL_BAD_MODULE, "%s: export `%s` has signature (%s), expected (%s)",
                          name, exports[i].export_name,
                          e->kind == SL_EXTERN_FUNC ? e->sig : "not a function", exports[i].sig);
  }
  for (size_t i = 0; i < info->import_count; i++) {
    const sl_wasm_import *imp = &info->imports[i];
    const char *sig = NULL;
    if (imp->kind == SL_EXTERN_FUNC && strcmp(imp->module, SL_WASI_MODULE) == 0)
      sig = sl__wasi_signature(imp->name);
    const sl_host_import *host =
        imp->kind == SL_EXTERN_FUNC ? sl__host_import_find(imp->module, imp->name) : NULL;
    if (host) sig = host->sig;
    if (!sig)
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: the module imports `%s`.`%s`, which Sluice does not provide "
                          "(processors may import wasi_snapshot_preview1 and the interfaces of "
                          "wit/processor.wit; see docs/capabilities/)",
                          name, imp->module, imp->name);
    if (strcmp(sig, imp->sig) != 0)
      return sl_error_set(err, SL_BAD_MODULE,
                          "%s: the module imports `%s`.`%s` with signature (%s), but the host's "
                          "has (%s)",
                          name, imp->module, imp->name, imp->sig, sig);
  }
  return SL_OK;
}

/* ---- building ---------------------------------------------------------------------- */

/* The C compiler flags every guest object needs: position-independent, hidden symbols,
 * and what wasm2c's documentation requires for Wasm trap and float semantics (without
 * -fno-optimize-sibling-calls gcc may turn unbounded recursion into an endless loop). */
static int push_cc_flags(const sl_engine *engine, char *flags, size_t flags_cap, char **argv,
                         int argc) {
  snprintf(flags, flags_cap, "%s", engine->cflags);
  for (char *save, *tok = strtok_r(flags, " ", &save); tok && argc < 12;
       tok = strtok_r(NULL, " ", &save))
    argv[argc++] = tok;
  static char *fixed[] = {"-fPIC",
                          "-fvisibility=hidden",
                          "-fno-optimize-sibling-calls",
                          "-frounding-math",
                          "-fsignaling-nans",
                          "-fno-strict-aliasing",
                          "-DNDEBUG",
                          "-w",
                          NULL};
  for (int i = 0; fixed[i]; i++) argv[argc++] = fixed[i];
  return argc;
}

/* Compiles shim_part<p>.c for every part at once, then links them into guest.so. */
static sl_status compile_parts(sl_engine *engine, const char *dir, int parts, sl_error *err) {
  enum { MAX_PARTS = 8 };
  char flags[MAX_PARTS][sizeof engine->cflags];
  char src[MAX_PARTS][4200], obj[MAX_PARTS][4200], log[MAX_PARTS][4200], so[4200];
  char *argv[MAX_PARTS][32], **argvs[MAX_PARTS], *logs[MAX_PARTS];
  char *link_argv[MAX_PARTS + 16];
  int link_argc = 0;
  link_argv[link_argc++] = engine->cc;
  link_argv[link_argc++] = "-shared";
  for (int p = 0; p < parts; p++) {
    snprintf(src[p], sizeof src[p], "%s/shim_part%d.c", dir, p);
    snprintf(obj[p], sizeof obj[p], "%s/part%d.o", dir, p);
    snprintf(log[p], sizeof log[p], "%s/cc_part%d.log", dir, p);
    int argc = 0;
    argv[p][argc++] = engine->cc;
    argc = push_cc_flags(engine, flags[p], sizeof flags[p], argv[p], argc);
    argv[p][argc++] = "-c";
    argv[p][argc++] = src[p];
    argv[p][argc++] = "-o";
    argv[p][argc++] = obj[p];
    argv[p][argc] = NULL;
    argvs[p] = argv[p];
    logs[p] = log[p];
    link_argv[link_argc++] = obj[p];
  }
  sl_status status = sl__run_tools(argvs, logs, parts, err);
  if (status != SL_OK) return status;
  snprintf(so, sizeof so, "%s/guest.so", dir);
  snprintf(log[0], sizeof log[0], "%s/link.log", dir);
  char *tail[] = {"-o", so, "-Wl,-Bsymbolic", "-lm", NULL};
  for (int i = 0; tail[i]; i++) link_argv[link_argc++] = tail[i];
  link_argv[link_argc] = NULL;
  return sl__run_tool(link_argv, log[0], err);
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static sl_status build_native(sl_engine *engine, const uint8_t *wasm, size_t len,
                              const sl_module_info *info, const char *name, uint8_t **so,
                              size_t *so_len, sl_error *err) {
  char dir[PATH_MAX + 32], path[4][PATH_MAX + 64], log_path[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/build-XXXXXX", engine->cache.dir);
  if (!mkdtemp(dir)) return sl_error_set(err, SL_IO, "cannot create %s: %s", dir, strerror(errno));
  const char *files[4] = {"module.wasm", "guest.c", "guest_checked.c", "guest.so"};
  for (int i = 0; i < 4; i++) snprintf(path[i], sizeof path[i], "%s/%s", dir, files[i]);
  snprintf(log_path, sizeof log_path, "%s/wasm2c.log", dir);

  sl_status status = sl__write_file(path[0], wasm, len, err);
  if (status != SL_OK) goto done;

  char *wasm2c_argv[] = {
      engine->wasm2c, "--no-debug-names", "-n", "guest", "-o", path[1], path[0], NULL};
  status = sl__run_tool(wasm2c_argv, log_path, err);
  if (status == SL_DECLINED) {
    /* wasm2c validates the module; its complaint is the user's answer. */
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: invalid WebAssembly module", name);
    status = prefix_error(err, SL_BAD_MODULE, prefix);
    goto done;
  }
  if (status != SL_OK) goto done;
  if ((status = sl__codegen_instrument(path[1], path[2], err)) != SL_OK) goto done;

  /* Split across the machine's cores; if the split build fails for any reason, build the
   * module as one unit, which is always correct, only slower. */
  int parts = 1;
  for (int attempt = 0; attempt < 2; attempt++) {
    int wanted = attempt == 0 ? online_cpus() : 1;
    if ((status = sl__split_translation_units(path[2], dir, wanted, &parts, err)) != SL_OK)
      goto done;
    char shim[PATH_MAX + 64], part_name[32];
    snprintf(shim, sizeof shim, "%s/shim_part0.c", dir);
    if ((status = sl__codegen_shim(shim, "guest_part0.c", info, engine->checks, err)) != SL_OK)
      goto done;
    for (int p = 1; p < parts && status == SL_OK; p++) {
      snprintf(shim, sizeof shim, "%s/shim_part%d.c", dir, p);
      snprintf(part_name, sizeof part_name, "guest_part%d.c", p);
      status = sl__codegen_part_shim(shim, part_name, engine->checks, err);
    }
    if (status != SL_OK) goto done;
    status = compile_parts(engine, dir, parts, err);
    if (status != SL_DECLINED || parts == 1) break;
    sl__engine_notice(engine, "%s: the parallel build failed (%s); building as one unit", name,
                      err ? err->message : "");
  }
  if (status == SL_DECLINED) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: compiling the generated C failed", name);
    status = prefix_error(err, SL_COMPILE, prefix);
    goto done;
  }
  if (status != SL_OK) goto done;
  status = sl__read_file(path[3], so, so_len, err);
done:
  /* SLUICE_KEEP_BUILD=1 keeps the generated C and the tool output, for debugging. */
  if (!getenv("SLUICE_KEEP_BUILD"))
    sl__remove_tree(dir);
  else
    sl__engine_notice(engine, "build files kept in %s", dir);
  return status;
}

/* dlopen()s the verified bytes from an anonymous file, so what is loaded is exactly what
 * was checked: nothing can swap the artifact on disk between verification and loading.
 * The file stays open as long as the object is loaded: dlopen() hands back an object
 * already loaded under the same name, so a closed fd's number, reused by the next
 * module's memfd, would make "/proc/self/fd/N" load the previous module's code. */
static sl_status load_shared_object(sl_module *module, const uint8_t *so, size_t len,
                                    sl_error *err) {
  int fd = memfd_create("sluice-guest", MFD_CLOEXEC);
  if (fd < 0) return sl_error_set(err, SL_LOAD, "memfd_create: %s", strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, so + done, len - done);
    if (n <= 0) {
      close(fd);
      return sl_error_set(err, SL_LOAD, "writing the artifact to memory: %s", strerror(errno));
    }
    done += (size_t)n;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    close(fd);
    return sl_error_set(err, SL_LOAD, "%s: dlopen failed: %s", module->name, dlerror());
  }
  const sl_guest_api *api = dlsym(dl, "sl_guest_exports");
  if (!api || api->abi_version != SL_GUEST_ABI_VERSION || !api->process || !api->realloc ||
      !api->instance_size) {
    dlclose(dl);
    close(fd);
    return sl_error_set(err, SL_LOAD, "%s: the artifact does not have the expected guest interface",
                        module->name);
  }
  module->dl = dl;
  module->so_fd = fd;
  module->api = api;
  api->init_module(); /* registers the module's function types */
  return SL_OK;
}

sl_status sl_module_load_bytes(sl_engine *engine, const uint8_t *wasm, size_t len,
                               const char *display_name, sl_module **out, sl_compile_info *info,
                               sl_error *err) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  sl_compile_info local_info;
  if (!info) info = &local_info;
  memset(info, 0, sizeof *info);
  const char *name = display_name ? display_name : "module";

  /* A component: check its world, then go on with its main core module. */
  uint8_t *core = NULL;
  if (sl__is_component(wasm, len)) {
    size_t core_len = 0;
    sl_status status = sl__component_core_module(wasm, len, name, &core, &core_len, err);
    if (status != SL_OK) return status;
    sl_status loaded =
        sl_module_load_bytes(engine, core, core_len, display_name, out, info, err);
    free(core);
    return loaded;
  }

  sl_module_info mi;
  sl_status status = sl__module_info_parse(wasm, len, &mi, err);
  if (status != SL_OK) {
    return prefix_error(err, status, name);
  }
  sl_module *module = NULL;
  uint8_t *so = NULL;
  size_t so_len = 0;
  int lock = -1;
  if ((status = check_contract(&mi, name, err)) != SL_OK) goto done;

  module = calloc(1, sizeof *module);
  if (!module) abort();
  atomic_init(&module->refs, 1);
  module->engine = engine;
  atomic_fetch_add(&engine->refs, 1);
  snprintf(module->name, sizeof module->name, "%s", name);
  sl__sha256_hex(wasm, len, module->hash);
  for (size_t i = 0; i < mi.import_count; i++) {
    const sl_host_import *host = sl__host_import_find(mi.imports[i].module, mi.imports[i].name);
    if (host && !module->capability_import[host->capability][0])
      snprintf(module->capability_import[host->capability],
               sizeof module->capability_import[host->capability], "%s %s", host->module,
               host->name);
  }
  snprintf(info->module_hash, sizeof info->module_hash, "%s", module->hash);

  char key_input[sizeof engine->toolchain_id + 80], key[65];
  snprintf(key_input, sizeof key_input, "%s;%s", module->hash, engine->toolchain_id);
  sl__sha256_hex(key_input, strlen(key_input), key);
  sl__cache_artifact_path(&engine->cache, key, info->artifact, sizeof info->artifact);

  sl_error cache_err;
  status = sl__cache_load(&engine->cache, key, &so, &so_len, &cache_err);
  if (status != SL_OK) {
    lock = sl__cache_lock(&engine->cache, key);
    /* Another process may have built it while we waited for the lock. */
    status = sl__cache_load(&engine->cache, key, &so, &so_len, &cache_err);
    if (status == SL_DECLINED)
      sl__engine_notice(engine, "cache: %s; rebuilding", cache_err.message);
    if (status != SL_OK) {
      struct timespec compile_start;
      clock_gettime(CLOCK_MONOTONIC, &compile_start);
      status = build_native(engine, wasm, len, &mi, name, &so, &so_len, err);
      if (status != SL_OK) goto done;
      info->compile_ms = ms_since(&compile_start);
      if ((status = sl__cache_store(&engine->cache, key, so, so_len, err)) != SL_OK) goto done;
    } else {
      info->cached = true;
    }
  } else {
    info->cached = true;
  }
  status = load_shared_object(module, so, so_len, err);
  info->load_ms = ms_since(&start) - info->compile_ms;
done:
  sl__cache_unlock(lock);
  free(so);
  sl__module_info_free(&mi);
  if (status != SL_OK && module) {
    sl__engine_release(engine);
    free(module);
    module = NULL;
  }
  *out = module;
  return status;
}

sl_status sl_module_load_file(sl_engine *engine, const char *path, sl_module **out,
                              sl_compile_info *info, sl_error *err) {
  uint8_t *wasm = NULL;
  size_t len = 0;
  *out = NULL;
  sl_status status = sl__read_file(path, &wasm, &len, err);
  if (status != SL_OK) return status;
  status = sl_module_load_bytes(engine, wasm, len, path, out, info, err);
  free(wasm);
  return status;
}

bool sl_module_uses_capability(const sl_module *module, const char *capability, char *import,
                               size_t import_cap) {
  for (int c = 0; c < SL_CAP_COUNT; c++) {
    if (strcmp(sl__capability_name((sl_capability)c), capability) != 0) continue;
    if (!module->capability_import[c][0]) return false;
    if (import) snprintf(import, import_cap, "%s", module->capability_import[c]);
    return true;
  }
  return false;
}

void sl_module_retain(sl_module *module) { atomic_fetch_add(&module->refs, 1); }

void sl_module_release(sl_module *module) {
  if (!module || atomic_fetch_sub(&module->refs, 1) != 1) return;
  /* Every pool holds a reference, so no instance of this module's code exists any more. */
  dlclose(module->dl);
  close(module->so_fd);
  sl__engine_release(module->engine);
  free(module);
}
