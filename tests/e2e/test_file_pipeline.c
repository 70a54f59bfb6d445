/*
 * The file source and sink as a user runs them: `sluice run PIPELINE.yaml` with
 * file -> passthrough (Wasm) -> file.
 *
 *   read once       every line, the last one even without a newline; a rerun resumes at
 *                   the checkpoint; a missing file is an error naming it
 *   follow          a file that appears later, appends, a partial line, rotation by
 *                   `mv` + a new file, truncation, SIGTERM, and a restart without repeats
 *   kill -9         in the middle of 200k lines, then a restart: every line arrives, the
 *                   lines before the checkpoint exactly once, and the duplicates (lines
 *                   delivered after the last checkpoint) are counted in the log
 *
 * Each test has a folder of its own and a pipeline name of its own, so its checkpoint
 * ($SLUICE_HOME/state/NAME/in.offset) is its own.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/fixture.h"

static char folder[64];
/* FOLDER/in.txt, FOLDER/out.txt, FOLDER/p.yaml: the input, the output, the pipeline. */
static char in[128], out[128], pipeline_path[128];
static pid_t child = -1; /* a running `sluice run`, killed by the suite's fini */
/* Buffers a test frees in the fini, so a failed assertion leaks nothing. */
static char *first, *second;
static unsigned char *seen;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void make_folder(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-e2e-file-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(in, sizeof in, "%s/in.txt", folder);
  snprintf(out, sizeof out, "%s/out.txt", folder);
  snprintf(pipeline_path, sizeof pipeline_path, "%s/p.yaml", folder);
}

static void cleanup(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(first);
  free(second);
  free(seen);
}

TestSuite(file_pipeline, .init = make_folder, .fini = cleanup, .timeout = 120);

/* --- helpers ---------------------------------------------------------------------- */

/* FOLDER/name into `buf` (128 bytes). */
static const char *in_folder(char *buf, const char *name) {
  snprintf(buf, 128, "%s/%s", folder, name);
  return buf;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Reads a whole file; NULL when it does not exist. The caller frees. */
static char *slurp(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap + 1);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
  }
  fclose(f);
  buf[len] = '\0';
  if (len_out) *len_out = len;
  return buf;
}

static void append_text(const char *path, const char *text) {
  FILE *f = fopen(path, "a");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
}

static size_t count_lines(const char *path) {
  char *text = slurp(path, NULL);
  size_t lines = 0;
  for (const char *p = text; p && *p; p++) lines += *p == '\n';
  free(text);
  return lines;
}

/* Waits until `path` holds at least `lines` lines; false after `timeout_ms`. */
static bool wait_lines(const char *path, size_t lines, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms; waited += 10) {
    if (count_lines(path) >= lines) return true;
    sleep_ms(10);
  }
  return count_lines(path) >= lines;
}

/*
 * Writes FOLDER/p.yaml: a file source reading `in.txt` with `source_extra` settings,
 * passthrough, and a file sink writing `out_name`; `top_extra` is added at the top.
 */
static const char *write_pipeline(const char *name, const char *source_extra, const char *out_name,
                                  const char *top_extra) {
  const char *path = pipeline_path;
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f,
          "name: %s-%d\n%s"
          "nodes:\n"
          "  - id: in\n"
          "    type: file\n"
          "    path: in.txt\n%s"
          "  - id: pass\n"
          "    type: wasm\n"
          "    module: %s\n"
          "    inputs: [in]\n"
          "  - id: out\n"
          "    type: file\n"
          "    path: %s\n"
          "    inputs: [pass]\n",
          name, (int)getpid(), top_extra, source_extra, example_path("passthrough"), out_name);
  fclose(f);
  return path;
}

/* $SLUICE_HOME/state/NAME-PID/in.offset */
static const char *checkpoint_path(const char *name) {
  static char path[512];
  const char *home = getenv("SLUICE_HOME");
  cr_assert(home, "SLUICE_HOME is not set: run the tests with `make test`");
  snprintf(path, sizeof path, "%s/state/%s-%d/in.offset", home, name, (int)getpid());
  return path;
}

/* The offset a checkpoint file holds; -1 when there is none. */
static long long checkpoint_offset(const char *name, unsigned long long *ino) {
  char *text = slurp(checkpoint_path(name), NULL);
  unsigned long long i = 0, offset = 0;
  bool ok = text && sscanf(text, "ino %llu offset %llu", &i, &offset) == 2;
  free(text);
  if (ino) *ino = i;
  return ok ? (long long)offset : -1;
}

/* Starts `sluice run PIPELINE` in the test folder; stderr goes to FOLDER/`log_name`. */
static pid_t start_sluice(const char *pipeline, const char *log_name) {
  child = e2e_run_child(folder, pipeline, NULL, log_name);
  return child;
}

/* Waits for the child; its exit status, or -1 if it was killed by a signal. */
static int wait_sluice(pid_t pid) {
  int code = e2e_wait(pid, NULL);
  child = -1;
  return code;
}

static int run_sluice(const char *pipeline, const char *log_name) {
  return wait_sluice(start_sluice(pipeline, log_name));
}

static const char *log_text(const char *log_name) {
  static char text[16384];
  char path[128];
  char *all = slurp(in_folder(path, log_name), NULL);
  snprintf(text, sizeof text, "%s", all ? all : "");
  free(all);
  return text;
}

/* Waits until the log holds `text`; false after `timeout_ms`. */
static bool wait_log(const char *log_name, const char *text, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms; waited += 10) {
    if (strstr(log_text(log_name), text)) return true;
    sleep_ms(10);
  }
  return strstr(log_text(log_name), text) != NULL;
}

/* --- read once -------------------------------------------------------------------- */

Test(file_pipeline, read_once_every_line_then_resume_at_the_checkpoint) {
  FILE *f = fopen(in, "w");
  for (int i = 0; i < 1000; i++) fprintf(f, "{\"n\":%d,\"text\":\"line %d\"}\n", i, i);
  fclose(f);
  const char *pipeline = write_pipeline("once", "", "out.txt", "");

  cr_assert_eq(run_sluice(pipeline, "run1.log"), 0, "%s", log_text("run1.log"));
  size_t in_len, out_len;
  char *expected = slurp(in, &in_len), *got = slurp(out, &out_len);
  cr_assert_not_null(got, "no output: %s", log_text("run1.log"));
  cr_assert_eq(out_len, in_len);
  cr_assert(memcmp(got, expected, in_len) == 0, "the output differs from the input");
  free(got);
  unsigned long long ino = 0;
  cr_assert_eq(checkpoint_offset("once", &ino), (long long)in_len);
  struct stat st;
  cr_assert_eq(stat(in, &st), 0);
  cr_assert_eq(ino, (unsigned long long)st.st_ino);

  /* Nothing new: nothing written. Two more lines, one without a newline: just those. */
  cr_assert_eq(run_sluice(pipeline, "run2.log"), 0, "%s", log_text("run2.log"));
  cr_assert_eq(count_lines(out), 1000);
  append_text(in, "one more\nand the last, unterminated");
  cr_assert_eq(run_sluice(pipeline, "run3.log"), 0, "%s", log_text("run3.log"));
  got = slurp(out, &out_len);
  cr_assert_eq(out_len, in_len + strlen("one more\nand the last, unterminated\n"));
  cr_assert_str_eq(got + in_len, "one more\nand the last, unterminated\n");
  cr_assert(strstr(log_text("run3.log"), "resuming"), "%s", log_text("run3.log"));
  free(got);
  free(expected);
}

Test(file_pipeline, read_once_a_missing_file_is_an_error_naming_it) {
  const char *pipeline = write_pipeline("missing", "", "out.txt", "");
  cr_assert_eq(run_sluice(pipeline, "run.log"), 1, "%s", log_text("run.log"));
  char expected[256];
  snprintf(expected, sizeof expected, "file source 'in': cannot open %s: %s", in, strerror(ENOENT));
  cr_assert(strstr(log_text("run.log"), expected), "%s", log_text("run.log"));
}

/* --- follow ----------------------------------------------------------------------- */

Test(file_pipeline, follow_appends_partial_lines_rotation_and_truncation) {
  const char *pipeline =
      write_pipeline("follow", "    follow: true\n    poll_interval: 20ms\n", "out.txt", "");
  pid_t pid = start_sluice(pipeline, "run1.log");

  /* The file does not exist yet: waited for. */
  cr_assert(wait_log("run1.log", "waiting for", 20000), "%s", log_text("run1.log"));
  append_text(in, "1\n2\n3\n");
  cr_assert(wait_lines(out, 3, 20000), "%s", log_text("run1.log"));

  /* A partial line waits for its newline. */
  append_text(in, "4\n5");
  cr_assert(wait_lines(out, 4, 20000), "%s", log_text("run1.log"));
  sleep_ms(200);
  cr_assert_eq(count_lines(out), 4, "a partial line was emitted early");
  append_text(in, "\n");
  cr_assert(wait_lines(out, 5, 20000), "%s", log_text("run1.log"));

  /* Rotation: the writer finishes the old file after the mv, then starts a new one. */
  char rotated[128];
  cr_assert_eq(rename(in, in_folder(rotated, "in.txt.1")), 0);
  append_text(rotated, "6\n");
  sleep_ms(100);
  append_text(in, "7\n8\n");
  cr_assert(wait_lines(out, 8, 20000), "%s", log_text("run1.log"));

  /* Truncation (copytruncate): from 0 again. */
  cr_assert_eq(truncate(in, 0), 0);
  append_text(in, "9\n");
  cr_assert(wait_lines(out, 9, 20000), "%s", log_text("run1.log"));

  char *got = slurp(out, NULL);
  cr_assert_str_eq(got, "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "%s", log_text("run1.log"));
  free(got);
  cr_assert_eq(kill(pid, SIGTERM), 0);
  cr_assert_eq(wait_sluice(pid), 0, "%s", log_text("run1.log"));
  const char *log = log_text("run1.log");
  cr_assert(strstr(log, "was replaced") && strstr(log, "was truncated"), "%s", log);

  unsigned long long ino = 0;
  struct stat st;
  cr_assert_eq(stat(in, &st), 0);
  cr_assert_eq(checkpoint_offset("follow", &ino), 2, "the checkpoint is past \"9\\n\"");
  cr_assert_eq(ino, (unsigned long long)st.st_ino, "checkpoint inode %llu, file %llu: %s", ino,
               (unsigned long long)st.st_ino, log);

  /* A restart picks up where it stopped: nothing repeated. */
  pid = start_sluice(pipeline, "run2.log");
  append_text(in, "10\n");
  cr_assert(wait_lines(out, 10, 20000), "%s", log_text("run2.log"));
  sleep_ms(200);
  got = slurp(out, NULL);
  cr_assert_str_eq(got, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "%s", log_text("run2.log"));
  free(got);
  cr_assert_eq(kill(pid, SIGTERM), 0);
  cr_assert_eq(wait_sluice(pid), 0, "%s", log_text("run2.log"));
}

/* --- kill -9 ---------------------------------------------------------------------- */

enum { KILL_LINES = 200000, LINE_LEN = 12 }; /* "line 000042\n" */

/* Appends what the FIFO holds to *buf; false at end of input (no writer left). */
static bool drain_fifo(int fd, char **buf, size_t *len, size_t *cap, size_t max_bytes) {
  if (*len + max_bytes + 1 > *cap) {
    *cap = (*len + max_bytes + 1) * 2;
    *buf = realloc(*buf, *cap);
    cr_assert_not_null(*buf);
  }
  ssize_t n = read(fd, *buf + *len, max_bytes);
  if (n > 0) *len += (size_t)n;
  (*buf)[*len] = '\0'; /* sscanf reads it as a string */
  return n != 0;
}

/* How often line `i` of the input appears in `text` (which holds whole lines). */
static void count_occurrences(const char *text, size_t len) {
  cr_assert_eq(len % LINE_LEN, 0, "a torn line in the output");
  for (size_t at = 0; at < len; at += LINE_LEN) {
    unsigned n;
    cr_assert_eq(sscanf(text + at, "line %6u\n", &n), 1, "bad output line at byte %zu", at);
    cr_assert_lt(n, KILL_LINES);
    if (seen[n] < 255) seen[n]++;
  }
}

/*
 * The sink writes to a FIFO that this test reads at its own pace: the run then takes as
 * long as the test wants, so the kill lands in the middle, after a checkpoint was
 * written, whatever the speed of the machine. What the sink wrote before the kill is in
 * the pipe (in the kernel: acknowledged), so the test still reads it afterwards.
 */
Test(file_pipeline, kill_9_in_the_middle_then_restart_loses_nothing) {
  char fifo[128];
  in_folder(fifo, "out.fifo");
  FILE *f = fopen(in, "w");
  for (int i = 0; i < KILL_LINES; i++) fprintf(f, "line %06d\n", i);
  fclose(f);
  cr_assert_eq(mkfifo(fifo, 0644), 0);
  /* Opened before sluice so the sink's open does not wait for a reader. */
  int fd = open(fifo, O_RDONLY | O_NONBLOCK);
  cr_assert_geq(fd, 0);
  const char *pipeline = write_pipeline("kill", "", "out.fifo", "batch_size: 100\n");

  /* Run 1: read slowly; kill -9 past the middle once a checkpoint with progress exists. */
  size_t first_len = 0, first_cap = 0;
  pid_t pid = start_sluice(pipeline, "run1.log");
  bool killed = false;
  for (uint64_t deadline = now_ms() + 60000; !killed && now_ms() < deadline;) {
    sleep_ms(1); /* about 4 MB/s: the run lasts longer than a few checkpoint intervals */
    drain_fifo(fd, &first, &first_len, &first_cap, 4096);
    if (first_len / LINE_LEN >= KILL_LINES / 2 && checkpoint_offset("kill", NULL) > 0) {
      cr_assert_eq(kill(pid, SIGKILL), 0);
      killed = true;
    }
    cr_assert_lt(first_len, (size_t)KILL_LINES * LINE_LEN,
                 "the run ended before it could be killed: %s", log_text("run1.log"));
  }
  cr_assert(killed, "no checkpoint after 60 s: %s", log_text("run1.log"));
  cr_assert_eq(wait_sluice(pid), -1);
  /* What the sink had written is still in the pipe. */
  while (drain_fifo(fd, &first, &first_len, &first_cap, 1 << 16)) continue;
  long long offset = checkpoint_offset("kill", NULL);
  cr_assert_eq(offset % LINE_LEN, 0, "the checkpoint is not at a line boundary: %lld", offset);
  size_t checkpoint_line = (size_t)offset / LINE_LEN, delivered = first_len / LINE_LEN;
  cr_assert_leq(checkpoint_line, delivered, "the checkpoint is past what the sink wrote");

  /* Run 2: to the end. */
  size_t second_len = 0, second_cap = 0;
  pid = start_sluice(pipeline, "run2.log");
  int status = 0;
  bool exited = false;
  for (uint64_t deadline = now_ms() + 60000; !exited && now_ms() < deadline;) {
    size_t before = second_len;
    drain_fifo(fd, &second, &second_len, &second_cap, 1 << 16);
    if (second_len == before) sleep_ms(1);
    exited = waitpid(pid, &status, WNOHANG) == pid;
  }
  cr_assert(exited, "run 2 did not finish in 60 s: %s", log_text("run2.log"));
  child = -1;
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", log_text("run2.log"));
  while (drain_fifo(fd, &second, &second_len, &second_cap, 1 << 16)) continue;
  close(fd);
  cr_assert(strstr(log_text("run2.log"), "resuming"), "%s", log_text("run2.log"));

  /* Every line at least once; before the checkpoint exactly once; run 2 starts exactly
   * at the checkpoint, in order. */
  seen = calloc(KILL_LINES, 1);
  count_occurrences(first, first_len);
  count_occurrences(second, second_len);
  size_t duplicates = 0;
  for (size_t i = 0; i < KILL_LINES; i++) {
    cr_assert_geq(seen[i], 1, "line %zu is missing", i);
    cr_assert(i >= checkpoint_line || seen[i] == 1,
              "line %zu is before the checkpoint (%zu) but was sent again", i, checkpoint_line);
    duplicates += seen[i] - 1u;
  }
  char expected[32];
  snprintf(expected, sizeof expected, "line %06zu\n", checkpoint_line);
  cr_assert(second_len >= LINE_LEN && memcmp(second, expected, LINE_LEN) == 0,
            "run 2 did not start at the checkpoint (line %zu)", checkpoint_line);
  cr_assert_eq(second_len / LINE_LEN, KILL_LINES - checkpoint_line);
  cr_assert_eq(duplicates, delivered - checkpoint_line,
               "duplicates are exactly the lines delivered after the last checkpoint");
  cr_log_info("kill -9 after %zu of %d lines delivered; checkpoint at line %zu; %zu duplicates",
              delivered, KILL_LINES, checkpoint_line, duplicates);
  fprintf(stderr,
          "file_pipeline: kill -9 after %zu of %d lines delivered; checkpoint at line %zu; "
          "%zu duplicates\n",
          delivered, KILL_LINES, checkpoint_line, duplicates);
}
