/*
 * Loading modules: the contract is checked with precise messages, and the artifact cache
 * is reused, verified, rebuilt when damaged, and safe under concurrent builds.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../support/fixture.h"
#include "wasm/cache.h"

static sl_status load_expecting(const char *path, sl_error *err) {
  sl_engine *engine = test_engine();
  sl_module *module = NULL;
  sl_status status = sl_module_load_file(engine, path, &module, NULL, err);
  sl_module_release(module);
  sl_engine_destroy(engine);
  return status;
}

static void expect_bad_module(const char *path, const char *needle) {
  sl_error err = {{0}};
  cr_assert_eq(load_expecting(path, &err), SL_BAD_MODULE, "%s", err.message);
  cr_assert(strstr(err.message, needle), "message '%s' should mention '%s'", err.message, needle);
}

static const char *write_temp(const char *name, const void *bytes, size_t len) {
  static __thread char path[256];
  snprintf(path, sizeof path, "/tmp/sluice-test-%d-%s", (int)getpid(), name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fwrite(bytes, 1, len, f);
  fclose(f);
  return path;
}

Test(module, not_wasm_at_all) {
  const char *path = write_temp("garbage.wasm", "hello, I am not wasm", 20);
  expect_bad_module(path, "not a WebAssembly binary");
  unlink(path);
}

Test(module, truncated_section_is_rejected_with_an_offset) {
  static const uint8_t bytes[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 0x7f, 0x60};
  const char *path = write_temp("truncated.wasm", bytes, sizeof bytes);
  expect_bad_module(path, "at byte");
  unlink(path);
}

Test(module, invalid_code_is_rejected_by_validation) {
  /* Well-formed sections but a function body that fails validation: (i32.add) on an
   * empty stack. The exports satisfy the contract, so only wasm2c can catch it. */
  static const uint8_t bytes[] = {
      0,    'a',  's',  'm',  1,    0,    0,    0,   1,   9,    1,    0x60, 4,
      0x7f, 0x7f, 0x7f, 0x7f, 1,    0x7f,                                /* type (iiii)->i */
      3,    3,    2,    0,    0,                                         /* two functions */
      5,    3,    1,    0,    1,                                         /* memory 1 */
      7,    33,   3,    6,    'm',  'e',  'm',  'o', 'r', 'y',  2,    0, /* exports */
      12,   'c',  'a',  'b',  'i',  '_',  'r',  'e', 'a', 'l',  'l',  'o',  'c',
      0,    0,    7,    'p',  'r',  'o',  'c',  'e', 's', 's',  0,    1,    10,
      11,   2,    4,    0,    0x6a, 0x0b, 0x00, 4,   0,   0x6a, 0x0b, 0x00}; /* bodies: i32.add */
  const char *path = write_temp("invalid.wasm", bytes, sizeof bytes);
  expect_bad_module(path, "invalid WebAssembly module");
  unlink(path);
}

Test(module, missing_file) {
  sl_error err = {{0}};
  cr_assert_eq(load_expecting("/nonexistent/x.wasm", &err), SL_IO);
  cr_assert(strstr(err.message, "/nonexistent/x.wasm"));
}

Test(module, unknown_import_is_refused_with_its_name) {
  expect_bad_module(guest_path("unknown_import"), "`env`.`mystery`");
}

Test(module, wasi_import_with_wrong_signature_is_refused) {
  expect_bad_module(guest_path("bad_import_sig"), "fd_write");
}

Test(module, missing_process_export) { expect_bad_module(guest_path("no_process"), "`process`"); }

Test(module, process_with_wrong_signature) {
  expect_bad_module(guest_path("bad_process_sig"), "expected (iiii:i)");
}

/* ---- the cache --------------------------------------------------------------------- */

static char home[256];

static void fresh_home(void) {
  snprintf(home, sizeof home, "/tmp/sluice-test-home-%d", (int)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", home);
  cr_assert_eq(system(cmd), 0);
}

static void remove_home(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", home);
  system(cmd);
}

static sl_compile_info load_in_home(const char *path) {
  sl_engine_options opts = {.home = home};
  sl_engine *engine = test_engine_with(&opts);
  sl_module *module = NULL;
  sl_compile_info info;
  sl_error err;
  cr_assert_eq(sl_module_load_file(engine, path, &module, &info, &err), SL_OK, "%s", err.message);
  /* The module must really work, whichever way it was loaded. */
  sl_pool *pool = new_pool(module, NULL);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "cached?", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
  return info;
}

Test(cache, second_load_reuses_the_artifact, .init = fresh_home, .fini = remove_home) {
  sl_compile_info first = load_in_home(guest_path("echo"));
  cr_assert_not(first.cached);
  cr_assert_gt(first.compile_ms, 0.0);
  sl_compile_info second = load_in_home(guest_path("echo"));
  cr_assert(second.cached);
  cr_assert_str_eq(first.artifact, second.artifact);
  cr_assert_str_eq(first.module_hash, second.module_hash);
}

static void damage(const char *artifact, long offset, bool truncate_file) {
  if (truncate_file) {
    cr_assert_eq(truncate(artifact, offset), 0);
    return;
  }
  FILE *f = fopen(artifact, "r+b");
  cr_assert_not_null(f);
  fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
  int c = fgetc(f);
  fseek(f, -1, SEEK_CUR);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

static void check_rebuilt_after(long offset, bool truncate_file) {
  sl_compile_info first = load_in_home(guest_path("echo"));
  damage(first.artifact, offset, truncate_file);
  sl_compile_info again = load_in_home(guest_path("echo"));
  cr_assert_not(again.cached, "a damaged artifact must be rebuilt, not loaded");
  sl_compile_info third = load_in_home(guest_path("echo"));
  cr_assert(third.cached, "the rebuilt artifact is good again");
}

Test(cache, corrupted_code_is_detected_and_rebuilt, .init = fresh_home, .fini = remove_home) {
  check_rebuilt_after(-100, false);
}

Test(cache, corrupted_header_is_detected_and_rebuilt, .init = fresh_home, .fini = remove_home) {
  check_rebuilt_after(3, false);
}

Test(cache, truncated_artifact_is_detected_and_rebuilt, .init = fresh_home, .fini = remove_home) {
  check_rebuilt_after(1000, true);
}

Test(cache, artifact_signed_by_another_host_is_not_loaded, .init = fresh_home,
     .fini = remove_home) {
  sl_compile_info first = load_in_home(guest_path("echo"));
  /* A different secret means a different host: its artifacts must not verify here. */
  char secret[300];
  snprintf(secret, sizeof secret, "%s/cache/secret", home);
  FILE *f = fopen(secret, "wb");
  cr_assert_not_null(f);
  fwrite("0123456789abcdef0123456789abcdef", 1, 32, f);
  fclose(f);
  sl_compile_info again = load_in_home(guest_path("echo"));
  cr_assert_not(again.cached);
  cr_assert_str_eq(first.artifact, again.artifact);
}

/* Entries of `dir` whose name contains `part`. */
static int count_files(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, part)) n++;
  closedir(d);
  return n;
}

Test(cache, concurrent_builds_end_with_one_good_artifact, .init = fresh_home, .fini = remove_home) {
  enum { PROCS = 4 };
  pid_t pids[PROCS];
  for (int i = 0; i < PROCS; i++) {
    pids[i] = fork();
    cr_assert_neq(pids[i], -1);
    if (pids[i] == 0) {
      sl_engine_options opts = {.home = home};
      sl_engine *engine = NULL;
      sl_module *module = NULL;
      sl_error err;
      if (sl_engine_new(&opts, &engine, &err) != SL_OK) _exit(10);
      if (sl_module_load_file(engine, guest_path("counter"), &module, NULL, &err) != SL_OK)
        _exit(11);
      sl_pool_options popts = {0};
      sl_pool *pool = NULL;
      sl_fault fault;
      if (sl_pool_new(module, &popts, &pool, &fault) != SL_OK) _exit(12);
      sl_event in = {.payload = sl_bytes_from_cstr("")};
      sl_event_list out;
      sl_event_list_init(&out);
      if (sl_pool_process(pool, &in, &out, &fault) != SL_OK || out.count != 1) _exit(13);
      _exit(0);
    }
  }
  for (int i = 0; i < PROCS; i++) {
    int status;
    cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i, status);
  }
  char modules[300];
  snprintf(modules, sizeof modules, "%s/cache/modules", home);
  cr_assert_eq(count_files(modules, ".art"), 1);
  cr_assert_eq(count_files(modules, ".tmp."), 0, "no temporary artifact is left behind");
  char cache[300];
  snprintf(cache, sizeof cache, "%s/cache", home);
  cr_assert_eq(count_files(cache, "build-"), 0, "no build folder is left behind");
  cr_assert(load_in_home(guest_path("counter")).cached);
}

Test(cache, compile_time_is_reported) {
  sl_engine *engine = test_engine();
  sl_module *module = NULL;
  sl_compile_info info;
  sl_error err;
  cr_assert_eq(sl_module_load_file(engine, guest_path("echo"), &module, &info, &err), SL_OK);
  cr_assert(info.cached || info.compile_ms > 0.0);
  cr_assert_eq(strlen(info.module_hash), 64);
  cr_assert(strstr(info.artifact, "/cache/modules/"));
  sl_module_release(module);
  sl_engine_destroy(engine);
}

/* A large module is split into translation units compiled in parallel (split.c); the
 * result must behave exactly like a one-unit build. */
Test(cache, large_module_is_built_in_parallel_parts_and_works, .init = fresh_home,
     .fini = remove_home) {
  setenv("SLUICE_KEEP_BUILD", "1", 1);
  sl_compile_info info = load_in_home(guest_path("wasi"));
  unsetenv("SLUICE_KEEP_BUILD");
  cr_assert_not(info.cached);
  char cache[300], part1[700];
  snprintf(cache, sizeof cache, "%s/cache", home);
  DIR *d = opendir(cache);
  cr_assert_not_null(d);
  bool found = false;
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, "build-", 6) != 0) continue;
    snprintf(part1, sizeof part1, "%s/%s/guest_part1.c", cache, e->d_name);
    found = access(part1, F_OK) == 0;
  }
  closedir(d);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > 1) cr_assert(found, "expected a second translation unit on a %ld-CPU machine", cpus);
}
