/*
 * quick_mode.c - `sluice run --source URI --wasm M.wasm ... --sink URI` (contracts.md §4)
 * becomes an ordinary pipeline: this file writes it as YAML text, which then goes through
 * the same loader and validation as a pipeline file, so both paths behave alike.
 *
 * URIs:  stdin | stdout | null | log
 *        file:PATH or file://PATH                     (source: read once; sink: append)
 *        http://HOST:PORT/PATH                        (source: listen; sink: POST to it)
 *        generate://?count=N&payload=TEXT&rate=R      (source)
 * Source-only settings may follow a file or http URI as a query: ?follow=true, ?split=lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Writes `value` as a YAML double-quoted scalar; "${" is escaped so nothing interpolates. */
static void put_quoted(FILE *f, const char *value, size_t len) {
  fputc('"', f);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '$' && i + 1 < len && value[i + 1] == '{')
      fputs("$$", f);
    else if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\x%02x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void put_key(FILE *f, const char *key, const char *value, size_t len) {
  fprintf(f, "    %s: ", key);
  put_quoted(f, value, len);
  fputc('\n', f);
}

/* "a=1&b=two" -> one YAML key per pair. */
static bool put_query(FILE *f, const char *query, const char *uri, sl_error *err) {
  while (query && *query) {
    const char *amp = strchr(query, '&');
    size_t len = amp ? (size_t)(amp - query) : strlen(query);
    const char *eq = memchr(query, '=', len);
    if (!eq || eq == query) {
      sl_error_set(err, SL_CONFIG, "%s: expected key=value in the query, got '%.*s'", uri, (int)len,
                   query);
      return false;
    }
    fprintf(f, "    %.*s: ", (int)(eq - query), query);
    put_quoted(f, eq + 1, len - (size_t)(eq + 1 - query));
    fputc('\n', f);
    query = amp ? amp + 1 : NULL;
  }
  return true;
}

static bool put_endpoint(FILE *f, const char *uri, bool source, sl_error *err) {
  static const char *const plain[] = {"stdin", "stdout", "null", "log", NULL};
  for (int i = 0; plain[i]; i++) {
    size_t n = strlen(plain[i]);
    if (strncmp(uri, plain[i], n) == 0 && (uri[n] == '\0' || strcmp(uri + n, "://") == 0)) {
      fprintf(f, "    type: %s\n", plain[i]);
      return true;
    }
  }
  char *copy = strdup(uri);
  if (!copy) abort();
  char *query = strchr(copy, '?');
  if (query) *query++ = '\0';
  bool ok = true;
  if (strncmp(copy, "file:", 5) == 0) {
    const char *path = copy + 5;
    if (strncmp(path, "//", 2) == 0) path += 2;
    fputs("    type: file\n", f);
    put_key(f, "path", path, strlen(path));
  } else if (strncmp(copy, "http://", 7) == 0 || strncmp(copy, "https://", 8) == 0) {
    fputs("    type: http\n", f);
    if (source) {
      const char *hostport = copy + 7;
      const char *slash = strchr(hostport, '/');
      size_t hp_len = slash ? (size_t)(slash - hostport) : strlen(hostport);
      put_key(f, "listen", hostport, hp_len);
      put_key(f, "path", slash ? slash : "/", slash ? strlen(slash) : 1);
    } else {
      put_key(f, "url", copy, strlen(copy));
    }
  } else if (strncmp(copy, "generate:", 9) == 0) {
    fputs("    type: generate\n", f);
  } else {
    ok = false;
    sl_error_set(err, SL_CONFIG,
                 "--%s %s: unknown URI; use stdin, stdout, null, log, file:PATH, "
                 "http://HOST:PORT/PATH or generate://?count=N",
                 source ? "source" : "sink", uri);
  }
  if (ok && query) ok = put_query(f, query, uri, err);
  free(copy);
  return ok;
}

sl_status sl__quick_pipeline_yaml(const char *source, const char *const *modules,
                                  size_t module_count, const char *sink, char **yaml,
                                  size_t *yaml_len, sl_error *err) {
  *yaml = NULL;
  FILE *f = open_memstream(yaml, yaml_len);
  if (!f) abort();
  fputs("name: quick\nnodes:\n  - id: source\n", f);
  bool ok = put_endpoint(f, source, true, err);
  char previous[32] = "source";
  char id[32];
  for (size_t i = 0; ok && i < module_count; i++) {
    snprintf(id, sizeof id, module_count == 1 ? "wasm" : "wasm%zu", i + 1);
    fprintf(f, "  - id: %s\n    type: wasm\n", id);
    put_key(f, "module", modules[i], strlen(modules[i]));
    fprintf(f, "    inputs: [%s]\n", previous);
    snprintf(previous, sizeof previous, "%s", id);
  }
  if (ok) {
    fputs("  - id: sink\n", f);
    ok = put_endpoint(f, sink, false, err);
    fprintf(f, "    inputs: [%s]\n", previous);
  }
  fclose(f);
  if (!ok) {
    free(*yaml);
    *yaml = NULL;
    return SL_CONFIG;
  }
  return SL_OK;
}
