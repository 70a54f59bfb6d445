/*
 * pipeline.c - a running pipeline's life: build (modules, pools, connector instances),
 * start (sinks, workers, sources), stop (sources first), wait (drained or deadline),
 * destroy (everything, in the reverse order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps/node_caps.h"
#include "core/files.h"
#include "core/pipeline_internal.h"

void sl__pipeline_notify(sl_pipeline *pipeline) {
  pthread_mutex_lock(&pipeline->lock);
  pthread_cond_broadcast(&pipeline->changed);
  pthread_mutex_unlock(&pipeline->lock);
}

static char *state_dir_for(const sl_pipeline_options *opts, sl_engine *engine, const char *name) {
  char *path = NULL;
  const char *home = opts && opts->home ? opts->home : sl_engine_home(engine);
  if (asprintf(&path, "%s/state/%s", home, name) < 0) abort();
  return path;
}

static sl_kv *kv_from_map(const sl_conf_map *map) {
  sl_kv *kv = calloc(map->count ? map->count : 1, sizeof *kv);
  if (!kv) abort();
  for (size_t i = 0; i < map->count; i++) kv[i] = (sl_kv){map->keys[i], map->values[i]};
  return kv;
}

/* "file:line:col: node 'id' (type source): message", redacted; the node part is left
 * out when the connector's message already names the node. */
static sl_status node_error(const sl_pipeline_spec *spec, const sl_node_spec *node, sl_status st,
                            sl_error *inner, sl_error *err) {
  sl_pipeline_spec_redact(spec, inner->message, sizeof inner->message);
  char quoted[300];
  snprintf(quoted, sizeof quoted, "'%s'", node->id);
  if (strstr(inner->message, quoted))
    return sl_error_set(err, st, "%s:%d:%d: %s", node->loc.file, node->loc.line, node->loc.col,
                        inner->message);
  return sl_error_set(err, st, "%s:%d:%d: node '%s' (%s %s): %s", node->loc.file, node->loc.line,
                      node->loc.col, node->id, node->type,
                      node->kind == SL_NODE_SOURCE ? "source" : "sink", inner->message);
}

/* "node 'x': module PATH: what", whether or not the engine's message starts with PATH. */
static sl_status module_error(const sl_pipeline_spec *spec, const sl_node_spec *node, sl_status st,
                              sl_error *inner, sl_error *err) {
  const sl_wasm_config *wasm = node->config;
  const char *what = inner->message;
  size_t len = strlen(wasm->module);
  if (strncmp(what, wasm->module, len) == 0 && strncmp(what + len, ": ", 2) == 0) what += len + 2;
  if (st == SL_IO) st = SL_CONFIG; /* a missing or unreadable module is a configuration error */
  sl_pipeline_spec_redact(spec, inner->message, sizeof inner->message);
  return sl_error_set(err, st, "%s:%d:%d: node '%s': module %s: %s", node->loc.file, node->loc.line,
                      node->loc.col, node->id, wasm->module, what);
}

sl_pool_options sl__wasm_pool_options(const sl_node_spec *node, const sl_kv *config,
                                      const sl_kv *env, const sl_node_caps *caps) {
  const sl_wasm_config *wasm = node->config;
  return (sl_pool_options){
      .node_id = node->id,
      .config = config,
      .config_count = wasm->config.count,
      .env = env,
      .env_count = wasm->env.count,
      .limits = {.memory_bytes = wasm->memory,
                 .time_ms = (uint32_t)wasm->time_limit,
                 .stack_bytes = (uint32_t)wasm->stack,
                 .recycle_calls = (uint64_t)wasm->recycle_calls},
      .caps = caps,
  };
}

/* A module that imports a capability its node was not granted is refused, naming the
 * import and the node's place in the file (logging and config are always granted). */
static sl_status check_grants(const sl_node_spec *node, const sl_module *module, sl_error *err) {
  const sl_capabilities *caps = &((const sl_wasm_config *)node->config)->capabilities;
  static const struct {
    const char *capability, *example, *page;
  } needs[] = {
      {"keyvalue", "capabilities: {keyvalue: {BUCKET: memory}}", "keyvalue"},
      {"http", "capabilities: {http: {allowed_hosts: [\"HOST:PORT\"]}}", "http"},
  };
  for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++) {
    bool granted = i == 0 ? caps->bucket_count > 0 : caps->http.granted;
    char import[300];
    if (granted || !sl_module_uses_capability(module, needs[i].capability, import, sizeof import))
      continue;
    char *name = strchr(import, ' ');
    if (name) *name++ = '\0';
    return sl_error_set(err, SL_CONFIG,
                        "%s:%d:%d: node '%s': the module imports `%s` from %s, but the node has "
                        "no %s grant; add %s to the node (docs/capabilities/%s.md)",
                        node->loc.file, node->loc.line, node->loc.col, node->id, name ? name : "",
                        import, needs[i].capability, needs[i].example, needs[i].page);
  }
  return SL_OK;
}

/* Opens what the node was granted (buckets in `kv`, created on first need at `state_dir`)
 * as *caps. The message names the node. */
static sl_status node_caps_build(const sl_pipeline_spec *spec, const sl_node_spec *node,
                                 const char *state_dir, sl_kv_registry **kv, sl_node_caps **caps,
                                 sl_error *err) {
  const sl_wasm_config *wasm = node->config;
  sl_error inner = {{0}};
  sl_status st = SL_OK;
  if (!*kv && wasm->capabilities.bucket_count) st = sl_kv_registry_new(state_dir, kv, &inner);
  if (st == SL_OK) st = sl_node_caps_new(&wasm->capabilities, *kv, wasm->time_limit, caps, &inner);
  if (st == SL_OK) return SL_OK;
  sl_pipeline_spec_redact(spec, inner.message, sizeof inner.message);
  return sl_error_set(err, st, "%s:%d:%d: node '%s': capabilities: %s", node->loc.file,
                      node->loc.line, node->loc.col, node->id, inner.message);
}

sl_status sl_pipeline_check_processor(sl_engine *engine, const sl_pipeline_spec *spec, size_t index,
                                      sl_error *err) {
  const sl_node_spec *node = &spec->nodes[index];
  const sl_wasm_config *wasm = node->config;
  sl_module *module = NULL;
  sl_error inner = {{0}};
  sl_status st = sl_module_load_file(engine, wasm->module, &module, NULL, &inner);
  if (st != SL_OK) return module_error(spec, node, st, &inner, err);
  if ((st = check_grants(node, module, err)) != SL_OK) {
    sl_module_release(module);
    return st;
  }
  /* init may use its buckets: give it scratch ones, so checking a file changes no state
   * (the folder is made only for a node that has buckets). */
  char scratch[] = "/tmp/sluice-validate-XXXXXX";
  bool has_buckets = wasm->capabilities.bucket_count > 0;
  sl_kv_registry *kv = NULL;
  sl_node_caps *caps = NULL;
  if (has_buckets && !mkdtemp(scratch)) {
    sl_module_release(module);
    return sl_error_set(err, SL_IO, "cannot create a scratch folder: %s", strerror(errno));
  }
  if ((st = node_caps_build(spec, node, scratch, &kv, &caps, err)) != SL_OK) {
    sl_kv_registry_destroy(kv);
    if (has_buckets) sl__remove_tree(scratch);
    sl_module_release(module);
    return st;
  }
  sl_kv *config = kv_from_map(&wasm->config), *env = kv_from_map(&wasm->env);
  sl_pool_options opts = sl__wasm_pool_options(node, config, env, caps);
  sl_pool *pool = NULL;
  sl_fault fault;
  st = sl_pool_new(module, &opts, &pool, &fault);
  if (st == SL_OK) {
    sl_pool_destroy(pool);
  } else {
    sl_pipeline_spec_redact(spec, fault.message, sizeof fault.message);
    sl_error_set(err, st, "%s:%d:%d: node '%s': %s (%s)", node->loc.file, node->loc.line,
                 node->loc.col, node->id, fault.message, sl_fault_name(fault.kind));
  }
  free(config);
  free(env);
  sl_node_caps_destroy(caps);
  sl_kv_registry_destroy(kv);
  if (has_buckets) sl__remove_tree(scratch);
  sl_module_release(module);
  return st;
}

/* Loads a processor node's module; the message names the node and where it is. */
static sl_status load_module(sl_pipeline *pipeline, size_t i, sl_error *err) {
  const sl_node_spec *node = &pipeline->spec->nodes[i];
  const sl_wasm_config *wasm = node->config;
  sl_node_rt *rt = &pipeline->nodes[i];
  sl_error inner = {{0}};
  sl_status st = sl_module_load_file(pipeline->engine, wasm->module, &rt->module, NULL, &inner);
  if (st != SL_OK) return module_error(pipeline->spec, node, st, &inner, err);
  if ((st = check_grants(node, rt->module, err)) != SL_OK) return st;
  st = node_caps_build(pipeline->spec, node, pipeline->state_dir, &pipeline->kv, &rt->caps, err);
  if (st != SL_OK) return st;
  rt->proc_config = kv_from_map(&wasm->config);
  rt->proc_env = kv_from_map(&wasm->env);
  return SL_OK;
}

static sl_status init_connector(sl_pipeline *pipeline, size_t i, sl_error *err) {
  const sl_node_spec *node = &pipeline->spec->nodes[i];
  sl_node_rt *rt = &pipeline->nodes[i];
  sl_error inner = {{0}};
  sl_status st = node->connector->init(&rt->ctx, node->config, &rt->state, &inner);
  if (st != SL_OK) return node_error(pipeline->spec, node, st, &inner, err);
  if (node->kind == SL_NODE_SOURCE) {
    rt->port = calloc(1, sizeof *rt->port);
    if (!rt->port) abort();
    unsigned worker = (unsigned)(pipeline->source_count % pipeline->worker_count);
    sl__port_init(rt->port, pipeline, i, worker, pipeline->spec->max_in_flight);
    pipeline->source_count++;
  } else {
    rt->sink = calloc(1, sizeof *rt->sink);
    if (!rt->sink) abort();
    rt->sink->pipeline = pipeline;
    rt->sink->node = i;
    sl__batch_queue_init(&rt->sink->queue, pipeline->sink_queue_capacity);
    atomic_init(&rt->sink->depth, 0);
  }
  return SL_OK;
}

sl_status sl_pipeline_new(sl_engine *engine, const sl_pipeline_spec *spec,
                          const sl_pipeline_options *opts, sl_pipeline **out, sl_error *err) {
  *out = NULL;
  sl_pipeline *pipeline = calloc(1, sizeof *pipeline);
  if (!pipeline) abort();
  pipeline->spec = spec;
  pipeline->engine = engine;
  pipeline->log = opts ? opts->log : NULL;
  pipeline->log_user = opts ? opts->log_user : NULL;
  pthread_mutex_init(&pipeline->lock, NULL);
  pthread_cond_init(&pipeline->changed, NULL);
  atomic_init(&pipeline->in_flight, 0);
  atomic_init(&pipeline->stopping, false);
  atomic_init(&pipeline->tearing_down, false);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  pipeline->worker_count = spec->workers ? spec->workers : (unsigned)(cpus > 0 ? cpus : 1);
  size_t batch = spec->batch_size ? (size_t)spec->batch_size : 1024;
  pipeline->sink_queue_capacity =
      spec->max_in_flight > 4 * batch ? (size_t)spec->max_in_flight : 4 * batch;
  sl__plan_build(spec, &pipeline->plan);
  pipeline->state_dir = state_dir_for(opts, engine, spec->name);
  pipeline->nodes = calloc(spec->node_count, sizeof *pipeline->nodes);
  pipeline->workers = calloc(pipeline->worker_count, sizeof *pipeline->workers);
  if (!pipeline->nodes || !pipeline->workers) abort();
  *out = pipeline; /* from here on, sl_pipeline_destroy cleans up whatever was built */

  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    rt->ctx = (sl_node_ctx){spec->name, spec->nodes[i].id, pipeline->state_dir,
                            pipeline->worker_count, pipeline};
    pthread_mutex_init(&rt->limiter.lock, NULL);
    sl__taps_init(&rt->taps);
  }
  sl_status st = sl__make_dirs(pipeline->state_dir, err);
  for (size_t i = 0; i < spec->node_count && st == SL_OK; i++)
    st = spec->nodes[i].kind == SL_NODE_PROCESSOR ? load_module(pipeline, i, err)
                                                  : init_connector(pipeline, i, err);
  for (unsigned w = 0; w < pipeline->worker_count && st == SL_OK; w++)
    st = sl__worker_init(&pipeline->workers[w], pipeline, w, err);
  if (st != SL_OK) {
    sl_pipeline_destroy(pipeline);
    *out = NULL;
  }
  return st;
}

sl_status sl_pipeline_start(sl_pipeline *pipeline, sl_error *err) {
  const sl_pipeline_spec *spec = pipeline->spec;
  sl_status st = SL_OK;
  for (size_t i = 0; i < spec->node_count && st == SL_OK; i++)
    if (pipeline->nodes[i].sink) st = sl__sink_runner_start(pipeline->nodes[i].sink, err);
  for (unsigned w = 0; w < pipeline->worker_count && st == SL_OK; w++)
    st = sl__worker_start(&pipeline->workers[w], err);
  pipeline->started = true;
  bool *source_started = calloc(spec->node_count ? spec->node_count : 1, sizeof *source_started);
  if (!source_started) abort();
  for (size_t i = 0; i < spec->node_count && st == SL_OK; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    if (!rt->port) continue;
    sl_error inner = {{0}};
    st = spec->nodes[i].connector->start(rt->state, rt->port, &inner);
    source_started[i] = st == SL_OK;
    if (st != SL_OK) node_error(spec, &spec->nodes[i], st, &inner, err);
  }
  if (st != SL_OK) {
    /* The failed source and those after it never started, so they will never end by
     * themselves; ending them first also keeps sl_pipeline_stop from stopping them. */
    for (size_t i = 0; i < spec->node_count; i++)
      if (pipeline->nodes[i].port && !source_started[i]) sl_source_end(pipeline->nodes[i].port);
    sl_pipeline_stop(pipeline);
  }
  free(source_started);
  return st;
}

void sl_pipeline_stop(sl_pipeline *pipeline) {
  if (atomic_exchange(&pipeline->stopping, true)) return;
  pipeline->stop_deadline_ms = sl__now_ms() + pipeline->spec->drain_timeout;
  for (size_t i = 0; i < pipeline->spec->node_count; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    if (rt->port && !atomic_load(&rt->port->ended) && pipeline->spec->nodes[i].connector->stop)
      pipeline->spec->nodes[i].connector->stop(rt->state);
  }
  sl__pipeline_notify(pipeline);
}

sl_status sl_pipeline_wait(sl_pipeline *pipeline, sl_error *err) {
  sl_status st = SL_OK;
  pthread_mutex_lock(&pipeline->lock);
  for (;;) {
    uint64_t in_flight = atomic_load(&pipeline->in_flight);
    if (pipeline->sources_ended == pipeline->source_count && in_flight == 0) break;
    if (atomic_load(&pipeline->stopping) && sl__now_ms() >= pipeline->stop_deadline_ms) {
      st = sl_error_set(err, SL_AGAIN,
                        "pipeline '%s': gave up draining after %llu ms: %zu of %zu sources still "
                        "running, events in flight",
                        pipeline->spec->name, (unsigned long long)pipeline->spec->drain_timeout,
                        pipeline->source_count - pipeline->sources_ended, pipeline->source_count);
      break;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&pipeline->changed, &pipeline->lock, &until);
  }
  pthread_mutex_unlock(&pipeline->lock);
  return st;
}

void sl_pipeline_destroy(sl_pipeline *pipeline) {
  if (!pipeline) return;
  const sl_pipeline_spec *spec = pipeline->spec;
  /* 1. Nothing new comes in: ports refuse batches, running sources are told to stop. */
  atomic_store(&pipeline->tearing_down, true);
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    if (rt->port) {
      sl__port_close(rt->port);
      if (!atomic_load(&rt->port->ended) && spec->nodes[i].connector->stop)
        spec->nodes[i].connector->stop(rt->state);
    } else if (rt->sink && rt->state && spec->nodes[i].connector->stop) {
      spec->nodes[i].connector->stop(rt->state); /* interrupts a write stuck retrying */
    }
  }
  /* 2. Threads stop; what is still queued (only after a failed drain) is released as
   *    SL_CLOSED while the sources can still hear about it. */
  for (unsigned w = 0; w < pipeline->worker_count; w++) sl__worker_stop(&pipeline->workers[w]);
  for (size_t i = 0; i < spec->node_count; i++)
    if (pipeline->nodes[i].sink) sl__sink_runner_stop(pipeline->nodes[i].sink);
  for (unsigned w = 0; w < pipeline->worker_count; w++) sl__worker_destroy(&pipeline->workers[w]);
  for (size_t i = 0; i < spec->node_count; i++)
    if (pipeline->nodes[i].sink) sl__batch_queue_destroy(&pipeline->nodes[i].sink->queue);
  /* 3. Connector instances (a source's destroy joins its thread), then the rest. */
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    if (rt->state && spec->nodes[i].connector && spec->nodes[i].connector->destroy)
      spec->nodes[i].connector->destroy(rt->state);
  }
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_rt *rt = &pipeline->nodes[i];
    free(rt->sink);
    if (rt->port) {
      sl__port_destroy(rt->port);
      free(rt->port);
    }
    if (rt->module) sl_module_release(rt->module);
    free(rt->proc_config);
    free(rt->proc_env);
    sl_node_caps_destroy(rt->caps);
    pthread_mutex_destroy(&rt->limiter.lock);
    sl__taps_destroy(&rt->taps);
  }
  sl__plan_free(&pipeline->plan);
  free(pipeline->nodes);
  free(pipeline->workers);
  sl_kv_registry_destroy(pipeline->kv); /* after every pool and node's caps */
  free(pipeline->state_dir);
  pthread_mutex_destroy(&pipeline->lock);
  pthread_cond_destroy(&pipeline->changed);
  free(pipeline);
}
