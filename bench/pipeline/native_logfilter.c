/*
 * native_logfilter.c - the benchmark baseline: the NDJSON transform of
 * examples/processors/logfilter, compiled natively, reading stdin and writing stdout with
 * large buffers. What `stdin -> logfilter.wasm -> stdout` is compared against.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "../../examples/processors/logfilter/logfilter_transform.h"

int main(void) {
  static char out_buf[1 << 18];
  setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    size_t n = (size_t)len;
    if (line[n - 1] == '\n') n--;
    if (!logfilter_keep(line, n)) continue;
    logfilter_rewrite(line, n);
    fwrite(line, 1, n, stdout);
    fputc('\n', stdout);
  }
  free(line);
  return 0;
}
