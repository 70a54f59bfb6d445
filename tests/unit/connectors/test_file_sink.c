/*
 * The file sink through its sl_connector callbacks: lines appended exactly, size
 * rotation (names, contents, how many are kept, a batch never split), and errors that
 * name the path (a missing folder, a full disk, bad settings).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/file/file_sink.h"

static const sl_node_ctx node = {
    .pipeline = "test", .id = "out", .state_dir = "/tmp", .workers = 1};

/* A fresh folder per test (each test runs in a process of its own), removed after. */
static char folder[64];
static char out_path[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void make_folder(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-file-sink-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(out_path, sizeof out_path, "%s/out.log", folder);
}

static void remove_folder(void) { nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

TestSuite(file_sink, .init = make_folder, .fini = remove_folder);

static void *open_sink(const file_sink_config *cfg) {
  void *sink = NULL;
  sl_error err = {{0}};
  sl_status status = sl_file_sink.init(&node, cfg, &sink, &err);
  cr_assert_eq(status, SL_OK, "init: %s", err.message);
  cr_assert_not_null(sink);
  return sink;
}

/* Writes one batch made of `payloads` (NULL-terminated). */
static sl_status write_lines(void *sink, const char *const *payloads, sl_error *err) {
  sl_event_list batch;
  sl_event_list_init(&batch);
  for (size_t i = 0; payloads[i]; i++) {
    uint8_t *payload;
    size_t len = strlen(payloads[i]);
    cr_assert_eq(sl_event_list_push(&batch, len, 0, &payload, NULL), SL_OK);
    if (len) memcpy(payload, payloads[i], len);
  }
  sl_status status = sl_file_sink.write(sink, &batch, err);
  sl_event_list_destroy(&batch);
  return status;
}

static void write_ok(void *sink, const char *const *payloads) {
  sl_error err = {{0}};
  cr_assert_eq(write_lines(sink, payloads, &err), SL_OK, "write: %s", err.message);
}

/* The whole content of `path`; "<missing>" when it does not exist. */
static const char *slurp(const char *path) {
  static char text[4][4096];
  static int next;
  char *buf = text[next++ % 4];
  FILE *f = fopen(path, "r");
  if (!f) return "<missing>";
  size_t n = fread(buf, 1, sizeof text[0] - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static const char *rotated(int n) {
  static char names[4][160];
  static int next;
  char *name = names[next++ % 4];
  snprintf(name, sizeof names[0], "%s.%d", out_path, n);
  return name;
}

Test(file_sink, appends_each_payload_and_a_newline) {
  FILE *f = fopen(out_path, "w");
  fputs("already here\n", f);
  fclose(f);
  file_sink_config cfg = {.path = out_path, .keep = 5};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"a", "", "with spaces and \xc3\xa9", NULL});
  write_ok(sink, (const char *const[]){NULL}); /* an empty batch writes nothing */
  write_ok(sink, (const char *const[]){"{\"json\":true}", NULL});
  cr_assert_str_eq(slurp(out_path),
                   "already here\na\n\nwith spaces and \xc3\xa9\n{\"json\":true}\n");
  sl_file_sink.destroy(sink);
}

Test(file_sink, creates_the_file_0644_at_init) {
  umask(022);
  file_sink_config cfg = {.path = out_path, .keep = 5, .fsync = true};
  void *sink = open_sink(&cfg);
  struct stat st;
  cr_assert_eq(stat(out_path, &st), 0, "the file exists before the first event");
  cr_assert_eq(st.st_mode & 0777, 0644);
  cr_assert_eq(st.st_size, 0);
  write_ok(sink, (const char *const[]){"synced", NULL});
  cr_assert_str_eq(slurp(out_path), "synced\n");
  sl_file_sink.destroy(sink);
}

Test(file_sink, payload_bytes_are_written_as_they_are) {
  file_sink_config cfg = {.path = out_path, .keep = 5};
  void *sink = open_sink(&cfg);
  sl_event_list batch;
  sl_event_list_init(&batch);
  uint8_t *payload;
  cr_assert_eq(sl_event_list_push(&batch, 3, 0, &payload, NULL), SL_OK);
  memcpy(payload, "a\0b", 3);
  sl_error err = {{0}};
  cr_assert_eq(sl_file_sink.write(sink, &batch, &err), SL_OK, "%s", err.message);
  sl_event_list_destroy(&batch);
  FILE *f = fopen(out_path, "rb");
  char buf[8];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  cr_assert_eq(n, 4);
  cr_assert(memcmp(buf, "a\0b\n", 4) == 0);
  sl_file_sink.destroy(sink);
}

Test(file_sink, a_large_batch_is_written_whole) {
  file_sink_config cfg = {.path = out_path, .keep = 5};
  void *sink = open_sink(&cfg);
  enum { LINES = 100000 };
  sl_event_list batch;
  sl_event_list_init(&batch);
  for (int i = 0; i < LINES; i++) {
    char line[32];
    int len = snprintf(line, sizeof line, "line %06d", i);
    uint8_t *payload;
    cr_assert_eq(sl_event_list_push(&batch, (size_t)len, 0, &payload, NULL), SL_OK);
    memcpy(payload, line, (size_t)len);
  }
  sl_error err = {{0}};
  cr_assert_eq(sl_file_sink.write(sink, &batch, &err), SL_OK, "%s", err.message);
  sl_event_list_destroy(&batch);
  struct stat st;
  cr_assert_eq(stat(out_path, &st), 0);
  cr_assert_eq(st.st_size, LINES * 12);
  FILE *f = fopen(out_path, "r");
  char line[32];
  for (int i = 0; i < LINES; i++) {
    char expected[32];
    snprintf(expected, sizeof expected, "line %06d\n", i);
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, expected);
  }
  fclose(f);
  sl_file_sink.destroy(sink);
}

Test(file_sink, rotates_before_a_batch_would_pass_max_size) {
  file_sink_config cfg = {.path = out_path, .max_size = 10, .keep = 2};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"aaaa", NULL}); /* 5 bytes */
  write_ok(sink, (const char *const[]){"bbbb", NULL}); /* 10: exactly max_size, stays */
  cr_assert_str_eq(slurp(out_path), "aaaa\nbbbb\n");
  cr_assert_str_eq(slurp(rotated(1)), "<missing>");

  write_ok(sink, (const char *const[]){"cc", NULL}); /* 13 > 10: rotate first */
  cr_assert_str_eq(slurp(out_path), "cc\n");
  cr_assert_str_eq(slurp(rotated(1)), "aaaa\nbbbb\n");

  /* Bigger than max_size on its own: a fresh file, and the batch is not split. */
  write_ok(sink, (const char *const[]){"dddddd", "eeeeee", NULL});
  cr_assert_str_eq(slurp(out_path), "dddddd\neeeeee\n");
  cr_assert_str_eq(slurp(rotated(1)), "cc\n");
  cr_assert_str_eq(slurp(rotated(2)), "aaaa\nbbbb\n");

  /* keep: 2, so the oldest goes. */
  write_ok(sink, (const char *const[]){"f", NULL});
  cr_assert_str_eq(slurp(out_path), "f\n");
  cr_assert_str_eq(slurp(rotated(1)), "dddddd\neeeeee\n");
  cr_assert_str_eq(slurp(rotated(2)), "cc\n");
  cr_assert_str_eq(slurp(rotated(3)), "<missing>");
  sl_file_sink.destroy(sink);
}

Test(file_sink, a_big_batch_into_an_empty_file_does_not_rotate) {
  file_sink_config cfg = {.path = out_path, .max_size = 4, .keep = 3};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"longer than four", NULL});
  cr_assert_str_eq(slurp(out_path), "longer than four\n");
  cr_assert_str_eq(slurp(rotated(1)), "<missing>");
  sl_file_sink.destroy(sink);
}

Test(file_sink, size_counts_what_the_file_held_at_start) {
  FILE *f = fopen(out_path, "w");
  fputs("12345678\n", f);
  fclose(f);
  file_sink_config cfg = {.path = out_path, .max_size = 10, .keep = 1};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"x", NULL}); /* 9 + 2 > 10 */
  cr_assert_str_eq(slurp(out_path), "x\n");
  cr_assert_str_eq(slurp(rotated(1)), "12345678\n");
  sl_file_sink.destroy(sink);
}

Test(file_sink, keep_0_discards_the_full_file) {
  file_sink_config cfg = {.path = out_path, .max_size = 4, .keep = 0};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"old", NULL});
  write_ok(sink, (const char *const[]){"new", NULL});
  cr_assert_str_eq(slurp(out_path), "new\n");
  cr_assert_str_eq(slurp(rotated(1)), "<missing>");
  sl_file_sink.destroy(sink);
}

Test(file_sink, a_missing_folder_is_an_error_naming_the_path) {
  char path[192];
  snprintf(path, sizeof path, "%s/no/such/folder/out.log", folder);
  file_sink_config cfg = {.path = path, .keep = 5};
  void *sink = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_file_sink.init(&node, &cfg, &sink, &err), SL_IO);
  cr_assert_null(sink);
  cr_assert(strstr(err.message, "file sink 'out'"), "%s", err.message);
  cr_assert(strstr(err.message, path), "%s", err.message);
  cr_assert(strstr(err.message, "does not exist"), "%s", err.message);
}

Test(file_sink, a_path_that_is_a_folder_is_an_error) {
  file_sink_config cfg = {.path = folder, .keep = 5};
  void *sink = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_file_sink.init(&node, &cfg, &sink, &err), SL_IO);
  cr_assert(strstr(err.message, folder) && strstr(err.message, strerror(EISDIR)), "%s",
            err.message);
}

Test(file_sink, a_failed_write_is_an_io_error_with_the_reason) {
  if (access("/dev/full", W_OK) != 0) cr_skip_test("no /dev/full here");
  file_sink_config cfg = {.path = "/dev/full", .keep = 5};
  void *sink = open_sink(&cfg);
  sl_error err = {{0}};
  cr_assert_eq(write_lines(sink, (const char *const[]){"lost", NULL}, &err), SL_IO);
  cr_assert(strstr(err.message, "/dev/full") && strstr(err.message, strerror(ENOSPC)), "%s",
            err.message);
  sl_file_sink.destroy(sink);
}

Test(file_sink, a_file_removed_while_open_is_recreated_at_rotation) {
  file_sink_config cfg = {.path = out_path, .max_size = 6, .keep = 1};
  void *sink = open_sink(&cfg);
  write_ok(sink, (const char *const[]){"one", NULL});
  cr_assert_eq(unlink(out_path), 0);
  write_ok(sink, (const char *const[]){"two", NULL}); /* rotation: nothing to rename */
  cr_assert_str_eq(slurp(out_path), "two\n");
  sl_file_sink.destroy(sink);
}

Test(file_sink, bad_settings_are_config_errors) {
  void *sink = NULL;
  sl_error err = {{0}};
  file_sink_config negative = {.path = out_path, .keep = -1};
  cr_assert_eq(sl_file_sink.init(&node, &negative, &sink, &err), SL_CONFIG);
  cr_assert(strstr(err.message, "keep:"), "%s", err.message);
  file_sink_config huge = {.path = out_path, .keep = 1000000};
  cr_assert_eq(sl_file_sink.init(&node, &huge, &sink, &err), SL_CONFIG);
  file_sink_config empty = {.path = "", .keep = 1};
  cr_assert_eq(sl_file_sink.init(&node, &empty, &sink, &err), SL_CONFIG);
  cr_assert(strstr(err.message, "path:"), "%s", err.message);
  cr_assert_null(sink);
}

Test(file_sink, registered_with_its_settings) {
  cr_assert_eq(sl_file_sink.kind, SL_NODE_SINK);
  cr_assert_str_eq(sl_file_sink.name, "file");
  cr_assert_eq(sl_file_sink.config_size, sizeof(file_sink_config));
  const char *names[] = {"path", "max_size", "keep", "fsync"};
  for (size_t i = 0; i < 4; i++) cr_assert_str_eq(sl_file_sink.fields[i].name, names[i]);
  cr_assert_null(sl_file_sink.fields[4].name);
}
