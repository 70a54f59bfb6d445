/*
 * cmd_deploy.c - `sluice deploy PIPELINE.yaml`: hands a pipeline to the daemon.
 *
 * The daemon may not see the files this machine sees (another host, another user), so
 * the modules go with the pipeline: every `type: wasm` node's module is uploaded with
 * `PUT /v1/modules` (the daemon compiles it and streams its progress), and the deploy
 * envelope maps each module's path, resolved exactly as the pipeline loader resolves it,
 * to the uploaded module's sha256 (api.md "Deploy"). The daemon then pins the version
 * to those bytes. Modules named through ${...} are left to the daemon, whose
 * environment interpolates them; `sha256:HEX` already names an uploaded module.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "config/problems.h"
#include "config/yaml_doc.h"
#include "core/files.h"
#include "wasm/cache.h"

static const char deploy_help[] =
    "Usage: sluice deploy PIPELINE.yaml [--server URL]\n"
    "\n"
    "Deploys a pipeline to the daemon (`sluice up`). First the module of every `type: wasm`\n"
    "node is uploaded and compiled by the daemon (progress on stderr), then the pipeline\n"
    "itself: a new pipeline starts, a running one is replaced by the new version without\n"
    "losing events. The pipeline's `name:` says which one it is.\n"
    "\n"
    "Module paths resolve against the file's folder, as for `sluice run`. A module named\n"
    "through ${...} is read by the daemon from its own disk with its own environment;\n"
    "`module: sha256:HEX` names a module uploaded before.\n"
    "\n"
    "Options:\n"
    "  --server URL   the daemon (default: $SLUICE_SERVER, else http://127.0.0.1:7400)\n"
    "\n"
    "Prints `deployed NAME version N (...)`. Exit status: 0 deployed; 1 the daemon cannot be\n"
    "reached, refused the token or failed, or another deploy of NAME is in progress;\n"
    "2 bad arguments, an unreadable file or module, an invalid module, or an invalid\n"
    "pipeline (every problem is printed as file:line:col).\n";

typedef struct module_ref {
  char *path;     /* as the daemon's loader resolves it: the key of the envelope's map */
  size_t name_at; /* where its last path segment starts: for messages and ?name= */
  int line, col;
  char sha256[65];
} module_ref;

typedef struct deploy_ctx {
  const char *file;   /* as given */
  char dir[PATH_MAX]; /* absolute folder of the file */
  const char *base;   /* the file's name without folders */
  module_ref *modules;
  size_t module_count;
} deploy_ctx;

/* conf_fields.c resolve_path, to the byte: the daemon looks the module up by this text. */
static char *resolve(const char *dir, const char *path) {
  if (path[0] != '/') {
    while (path[0] == '.' && path[1] == '/') path += 2;
    if (!path[0] || strcmp(path, ".") == 0) path = "";
  }
  size_t len = path[0] == '/' ? strlen(path) : strlen(dir) + 1 + strlen(path);
  char *resolved = malloc(len + 1);
  if (!resolved) abort();
  if (path[0] == '/')
    memcpy(resolved, path, len + 1);
  else if (!path[0])
    snprintf(resolved, len + 1, "%s", dir);
  else
    snprintf(resolved, len + 1, "%s/%s", dir, path);
  return resolved;
}

static const char *module_name(const module_ref *module) { return module->path + module->name_at; }

static void add_module(deploy_ctx *ctx, const sl_ynode *value) {
  const char *text = value->text;
  if (!text[0] || strstr(text, "${") || strncmp(text, "sha256:", 7) == 0) return;
  char *path = resolve(ctx->dir, text);
  for (size_t i = 0; i < ctx->module_count; i++) {
    if (strcmp(ctx->modules[i].path, path) == 0) {
      free(path);
      return;
    }
  }
  ctx->modules = realloc(ctx->modules, (ctx->module_count + 1) * sizeof *ctx->modules);
  if (!ctx->modules) abort();
  const char *slash = strrchr(path, '/');
  module_ref *module = &ctx->modules[ctx->module_count++];
  *module = (module_ref){.path = path, .line = value->line, .col = value->col};
  module->name_at = slash ? (size_t)(slash + 1 - path) : 0;
}

/* The modules of `type: wasm` nodes. A file the loader would refuse is left for the
 * daemon to judge (it reports every problem); only a YAML syntax error stops here. */
static int find_modules(deploy_ctx *ctx, const char *text, size_t len) {
  sl_problems problems;
  sl__problems_init(&problems, ctx->file);
  sl_ydoc doc = {0};
  int rc = SL_EXIT_OK;
  if (sl__ydoc_parse(text, len, &doc, &problems) != SL_OK) {
    sl_error err;
    sl__problems_report(&problems, NULL, 0, &err);
    fprintf(stderr, "%s\n", err.message);
    rc = SL_EXIT_USAGE;
    goto done;
  }
  const sl_ypair *nodes = doc.root ? sl__ymap_find(doc.root, "nodes") : NULL;
  if (!nodes || nodes->value->type != SL_YAML_SEQ) goto done;
  for (size_t i = 0; i < nodes->value->count; i++) {
    const sl_ynode *node = nodes->value->items[i];
    const sl_ypair *type = sl__ymap_find(node, "type");
    const sl_ypair *module = sl__ymap_find(node, "module");
    if (type && module && type->value->type == SL_YAML_SCALAR &&
        strcmp(type->value->text, "wasm") == 0 && module->value->type == SL_YAML_SCALAR)
      add_module(ctx, module->value);
  }
done:
  sl__ydoc_destroy(&doc);
  sl__problems_destroy(&problems);
  return rc;
}

/* --- uploading modules ----------------------------------------------------------- */

typedef struct upload {
  module_ref *module;
  char error[1024]; /* a "failed" stage's message */
} upload;

static void print_ready(const module_ref *module, const json_t *info) {
  json_t *cached = json_object_get(info, "cached");
  double ms = sl_client_real(info, "compile_ms", -1);
  if (json_is_true(cached) || ms < 0)
    fprintf(stderr, "%s: ready (cached)\n", module_name(module));
  else
    fprintf(stderr, "%s: ready (%.0f ms)\n", module_name(module), ms);
}

static void take_sha256(module_ref *module, const json_t *info) {
  const char *sha = sl_client_str(info, "sha256", NULL);
  if (sha && strlen(sha) == 64) memcpy(module->sha256, sha, 65);
}

/* api.md "Modules": {"stage": "stored" | "compiling" | "ready" | "failed", ...}. */
static bool on_upload_event(void *user, json_t *event) {
  upload *up = user;
  const char *stage = sl_client_str(event, "stage", "");
  take_sha256(up->module, event);
  if (strcmp(stage, "compiling") == 0) {
    fprintf(stderr, "%s: compiling...\n", module_name(up->module));
  } else if (strcmp(stage, "ready") == 0) {
    print_ready(up->module, event);
  } else if (strcmp(stage, "failed") == 0) {
    snprintf(up->error, sizeof up->error, "%s",
             sl_client_str(event, "error", "the daemon could not compile it"));
    return false;
  }
  return true;
}

static int upload_module(sl_client *client, const deploy_ctx *ctx, module_ref *module) {
  uint8_t *bytes = NULL;
  size_t len = 0;
  sl_error err;
  if (sl__read_file(module->path, &bytes, &len, &err) != SL_OK) {
    fprintf(stderr, "%s:%d:%d: module: cannot read %s\n", ctx->file, module->line, module->col,
            err.message);
    return SL_EXIT_USAGE;
  }
  char *name = sl_client_escape(module_name(module));
  char path[1024];
  snprintf(path, sizeof path, "/v1/modules?name=%s", name);
  free(name);
  upload up = {.module = module};
  json_t *answer = NULL;
  int rc = sl_client_upload(client, "PUT", path, bytes, len, "application/wasm", on_upload_event,
                            &up, &answer);
  if (rc == SL_EXIT_USAGE) { /* 400: the API's message did not say which file */
    fprintf(stderr, "sluice deploy: the daemon refused the module %s\n", module->path);
  } else if (rc == SL_EXIT_OK && up.error[0]) {
    /* Where the pipeline names the module; the engine's message may name it already. */
    bool named = strstr(up.error, module_name(module)) != NULL;
    fprintf(stderr, "%s:%d:%d: module: %s%s%s\n", ctx->file, module->line, module->col,
            named ? "" : module_name(module), named ? "" : ": ", up.error);
    rc = SL_EXIT_USAGE;
  } else if (rc == SL_EXIT_OK && answer) { /* a daemon that answered without streaming */
    take_sha256(module, answer);
    print_ready(module, answer);
  }
  /* The daemon names modules by the sha256 of their bytes: the same hash, either way. */
  if (rc == SL_EXIT_OK && !module->sha256[0]) sl__sha256_hex(bytes, len, module->sha256);
  json_decref(answer);
  free(bytes);
  return rc;
}

/* --- the deploy itself ------------------------------------------------------------ */

static void print_deployed(const json_t *answer) {
  char how[128];
  printf("deployed %s version %lld%s\n", sl_client_str(answer, "name", "?"),
         (long long)sl_client_int(answer, "version", 0),
         sl_client_swap_summary(answer, how, sizeof how));
  const char *status = sl_client_str(answer, "status", "running");
  if (strcmp(status, "running") != 0)
    fprintf(stderr, "sluice deploy: the pipeline is %s%s%s\n", status,
            sl_client_str(answer, "error", NULL) ? ": " : "", sl_client_str(answer, "error", ""));
}

static int deploy(sl_client *client, deploy_ctx *ctx, const char *text, size_t len) {
  json_t *source = json_stringn(text, len);
  if (!source) {
    fprintf(stderr, "sluice deploy: %s: not UTF-8 text\n", ctx->file);
    return SL_EXIT_USAGE;
  }
  int rc = find_modules(ctx, text, len);
  for (size_t i = 0; i < ctx->module_count && rc == SL_EXIT_OK; i++)
    rc = upload_module(client, ctx, &ctx->modules[i]);
  if (rc != SL_EXIT_OK) {
    json_decref(source);
    return rc;
  }
  json_t *modules = json_object();
  for (size_t i = 0; i < ctx->module_count; i++)
    json_object_set_new(modules, ctx->modules[i].path, json_string(ctx->modules[i].sha256));
  json_t *envelope = json_pack("{s:o, s:s, s:s, s:o}", "source", source, "file", ctx->base, "dir",
                               ctx->dir, "modules", modules);
  if (!envelope) abort();
  json_t *answer = NULL;
  rc = sl_client_json(client, "POST", "/v1/pipelines", envelope, &answer);
  if (rc == SL_EXIT_OK) print_deployed(answer);
  json_decref(answer);
  json_decref(envelope);
  return rc;
}

int sl_cmd_deploy(int argc, char **argv) {
  const char *file = NULL, *server = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(deploy_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
    } else if ((argv[i][0] == '-' && argv[i][1]) || file) {
      fprintf(stderr, "sluice deploy: unexpected argument '%s' (see sluice deploy --help)\n",
              argv[i]);
      return SL_EXIT_USAGE;
    } else {
      file = argv[i];
    }
  }
  if (!file) {
    fputs(deploy_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_client *client = NULL;
  int rc = sl_client_open("deploy", server, &client);
  if (rc != SL_EXIT_OK) return rc;

  deploy_ctx ctx = {.file = file};
  uint8_t *text = NULL;
  size_t len = 0;
  sl_error err;
  char *folder = strdup(file), *name = strdup(file);
  if (!folder || !name) abort();
  if (sl__read_file(file, &text, &len, &err) != SL_OK) {
    fprintf(stderr, "sluice deploy: %s\n", err.message);
    rc = SL_EXIT_USAGE;
  } else if (!realpath(dirname(folder), ctx.dir)) {
    fprintf(stderr, "sluice deploy: %s: %s\n", file, strerror(errno));
    rc = SL_EXIT_USAGE;
  } else {
    ctx.base = basename(name);
    rc = deploy(client, &ctx, (const char *)text, len);
  }
  for (size_t i = 0; i < ctx.module_count; i++) free(ctx.modules[i].path);
  free(ctx.modules);
  free(text);
  free(folder);
  free(name);
  sl_client_free(client);
  return rc;
}
