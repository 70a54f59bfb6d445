/*
 * pipeline_log.c - how `sluice run` and `sluice test` print log lines from processors and
 * connectors: "[node] line" for a processor's stdout, "[node] level: line" otherwise, on
 * stderr, with the pipeline's secrets replaced by "***".
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sluice/pipeline.h"

void sl__cli_pipeline_log(void *spec, const char *node_id, const char *stream, const char *line,
                          size_t len) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%.*s", (int)len, line);
  sl_pipeline_spec_redact(spec, buf, sizeof buf);
  if (strcmp(stream, "stdout") == 0)
    fprintf(stderr, "[%s] %s\n", node_id, buf);
  else
    fprintf(stderr, "[%s] %s: %s\n", node_id, stream, buf);
}
