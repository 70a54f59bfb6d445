/*
 * config_fixture.h - helpers for the pipeline-file tests: each test runs in a fresh
 * temporary folder (so messages start with the short name "p.yaml"), with an
 * environment of its own for ${VAR} (never the process's).
 */
#ifndef SL_TEST_CONFIG_FIXTURE_H
#define SL_TEST_CONFIG_FIXTURE_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/pipeline.h"

static char test_dir[PATH_MAX];
static const char *const *test_env; /* "NAME=value" strings, NULL-terminated */

static inline const char *fixture_getenv(void *user, const char *name) {
  size_t len = strlen(name);
  for (const char *const *e = test_env; e && *e; e++)
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return NULL;
}

static inline void enter_temp_dir(void) {
  snprintf(test_dir, sizeof test_dir, "/tmp/sluice-config-test-XXXXXX");
  cr_assert(mkdtemp(test_dir), "mkdtemp");
  cr_assert_eq(chdir(test_dir), 0);
  char resolved[PATH_MAX];
  cr_assert(realpath(test_dir, resolved));
  snprintf(test_dir, sizeof test_dir, "%s", resolved);
  test_env = NULL;
}

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static inline void leave_temp_dir(void) {
  if (chdir("/") == 0 && test_dir[0]) nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void put_file(const char *name, const char *text) {
  FILE *f = fopen(name, "w");
  cr_assert(f, "cannot create %s", name);
  fputs(text, f);
  fclose(f);
}

/* Writes `yaml` to p.yaml and loads it with the test environment. */
static inline sl_status load_yaml(const char *yaml, sl_pipeline_spec **spec, sl_error *err) {
  put_file("p.yaml", yaml);
  sl_load_options opts = {.getenv = fixture_getenv};
  memset(err->message, 0, sizeof err->message);
  *spec = NULL;
  return sl_pipeline_load("p.yaml", &opts, spec, err);
}

/* Loads `yaml`, which must be valid. */
static inline sl_pipeline_spec *load_ok(const char *yaml) {
  sl_pipeline_spec *spec;
  sl_error err;
  sl_status status = load_yaml(yaml, &spec, &err);
  cr_assert_eq(status, SL_OK, "expected a valid pipeline, got %s:\n%s", sl_status_name(status),
               err.message);
  cr_assert_not_null(spec);
  return spec;
}

/* Loads `yaml`, which must fail with SL_CONFIG; returns the message (static). */
static inline const char *load_fails(const char *yaml) {
  static sl_error err;
  sl_pipeline_spec *spec;
  sl_status status = load_yaml(yaml, &spec, &err);
  cr_assert_eq(status, SL_CONFIG, "expected SL_CONFIG, got %s", sl_status_name(status));
  cr_assert_null(spec, "a failed load leaves no spec");
  return err.message;
}

/* Asserts the load fails with exactly `expected` (all lines). */
#define expect_problems(yaml, expected)                                                            \
  do {                                                                                             \
    const char *got_ = load_fails(yaml);                                                           \
    cr_assert_str_eq(got_, expected, "\n--- got:\n%s\n--- expected:\n%s", got_, expected);         \
  } while (0)

/* Asserts one line of the failure message is exactly `line`. */
#define expect_problem_line(yaml, line)                                                            \
  do {                                                                                             \
    const char *got_ = load_fails(yaml);                                                           \
    bool found_ = false;                                                                           \
    size_t want_ = strlen(line);                                                                   \
    for (const char *p_ = got_; p_ && *p_ && !found_;) {                                           \
      const char *end_ = strchr(p_, '\n');                                                         \
      size_t len_ = end_ ? (size_t)(end_ - p_) : strlen(p_);                                       \
      found_ = len_ == want_ && memcmp(p_, line, len_) == 0;                                       \
      p_ = end_ ? end_ + 1 : NULL;                                                                 \
    }                                                                                              \
    cr_assert(found_, "no line\n  %s\nin\n%s", line, got_);                                        \
  } while (0)

#endif
