/*
 * test_dev.c - `sluice dev FILE`: runs the pipeline and redeploys it (hot swap) when
 * the file or a module it names changes; an invalid change keeps the running version.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/e2e.h"

static void copy_over(const char *from, const char *dir, const char *name) {
  /* A new file renamed over the old one, as compilers and editors do. */
  char *cmd = NULL;
  cr_assert(asprintf(&cmd, "cp '%s' '%s/.%s.tmp' && mv '%s/.%s.tmp' '%s/%s'", from, dir, name,
                     dir, name, dir, name) > 0);
  cr_assert_eq(system(cmd), 0);
  free(cmd);
}

static bool wait_for_text(const char *path, const char *needle, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    char *text = e2e_read(path);
    bool found = strstr(text, needle) != NULL;
    free(text);
    if (found) return true;
    usleep(50 * 1000);
  }
  return false;
}

static char *last_line(const char *path) {
  char *text = e2e_read(path);
  size_t len = strlen(text);
  while (len && text[len - 1] == '\n') text[--len] = '\0';
  char *nl = strrchr(text, '\n');
  char *line = strdup(nl ? nl + 1 : text);
  free(text);
  return line;
}

Test(dev, redeploys_when_the_module_changes, .timeout = 180) {
  char *dir = e2e_tmpdir();
  const char *examples = getenv("SLUICE_EXAMPLES");
  cr_assert(examples);
  char passthrough[512], upper[512], out[600], err[600];
  snprintf(passthrough, sizeof passthrough, "%s/passthrough.wasm", examples);
  snprintf(upper, sizeof upper, "%s/upper.wasm", examples);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/.stderr", dir);
  copy_over(passthrough, dir, "p.wasm");
  e2e_write(dir, "p.yaml",
            "name: devloop\n"
            "nodes:\n"
            "  - {id: gen, type: generate, rate: 200, payload: 'n{{seq}}'}\n"
            "  - {id: p, type: wasm, module: p.wasm, inputs: [gen]}\n"
            "  - {id: out, type: file, path: out.txt, inputs: [p]}\n");
  pid_t pid = e2e_spawn(dir, "dev p.yaml");
  cr_assert(wait_for_text(err, "devloop version 1 running", 60000), "dev did not start");
  cr_assert(e2e_wait_lines(out, 20, 20000));
  char *line = last_line(out);
  cr_expect_eq(line[0], 'n', "passthrough keeps the case: %s", line);
  free(line);

  copy_over(upper, dir, "p.wasm");
  cr_assert(wait_for_text(err, "devloop version 2 running", 60000), "no redeploy after the .wasm changed");
  usleep(300 * 1000);
  line = last_line(out);
  cr_expect_eq(line[0], 'N', "upper runs now: %s", line);
  free(line);

  /* An invalid change: reported, and version 2 keeps delivering. */
  e2e_write(dir, "p.yaml", "name: devloop\nnodes:\n  - {id: gen, type: generat}\n");
  cr_assert(wait_for_text(err, "not deployed", 20000));
  char *text = e2e_read(out);
  size_t before = e2e_count_lines(text);
  free(text);
  cr_expect(e2e_wait_lines(out, before + 20, 10000), "version 2 stopped delivering");

  /* Events are numbered without gaps across the swap: nothing was lost. */
  kill(pid, SIGTERM);
  cr_expect_eq(e2e_wait(pid, NULL), 0);
  text = e2e_read(out);
  unsigned long long expect = 1, gaps = 0, restarts = 0;
  for (char *l = text; *l;) {
    char *end = strchr(l, '\n');
    if (!end) break;
    unsigned long long seq = strtoull(l + 1, NULL, 10);
    if (seq == 1 && expect != 1) restarts++; /* a new version's generate starts at 1 */
    else if (seq != expect) gaps++;
    expect = seq + 1;
    l = end + 1;
  }
  cr_expect_eq(restarts, 1, "one swap, one new sequence");
  cr_expect_eq(gaps, 0, "numbers missing within a version's output");
  free(text);
  e2e_rmdir(dir);
}
