/*
 * worker.c - worker threads: a libuv loop each, their own processor pools, and the
 * run-to-completion walk that takes one source batch through the graph.
 *
 * Map: running one batch | the loop (inbox, posts, quit) | life cycle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_internal.h"

/* Appends a copy of `ev` to `list`, followed by `extra` metadata pairs. */
static void copy_event(sl_event_list *list, const sl_event *ev, const sl_meta *extra,
                       size_t extra_count) {
  if (sl_event_list_push_copy(list, ev, extra, extra_count) != SL_OK) abort(); /* host OOM */
}

/* --- running one batch ------------------------------------------------------------- */

/* The events a node reads from input `in` in the current run, or NULL if not reached. */
static const sl_event_list *input_events(sl_worker *worker, const sl_work *work,
                                         const sl_input_ref *in) {
  if (in->index == work->source) return in->errors == work->errors ? work->batch : NULL;
  sl_worker_node *from = &worker->nodes[in->index];
  if (!from->visited) return NULL;
  return in->errors ? &from->errors : &from->out;
}

/* A failed event goes to <id>.errors when a node reads it; otherwise it is logged and
 * dropped. A tap on the node still gets to see it (`keep` says someone taps the node). */
static void record_fault(sl_worker *worker, size_t node, const sl_event *ev, const sl_fault *fault,
                         bool keep) {
  sl_pipeline *pipeline = worker->pipeline;
  sl_node_rt *rt = &pipeline->nodes[node];
  bool read = pipeline->plan.errors_read[node];
  if (read || keep) {
    const char *kind = sl_fault_name(fault->kind);
    sl_meta extra[2] = {
        {sl_bytes_from_cstr("error"), sl_bytes_from_cstr(fault->message)},
        {sl_bytes_from_cstr("fault"), sl_bytes_from_cstr(kind)},
    };
    copy_event(&worker->nodes[node].errors, ev, extra, 2);
  }
  if (read) return;
  uint64_t suppressed;
  if (sl__log_limiter_allow(&rt->limiter, &suppressed))
    sl_node_log(&rt->ctx, SL_LOG_WARN,
                "event failed (%s): %s; nothing reads '%s.errors', so it is counted and dropped%s",
                sl_fault_name(fault->kind), fault->message, rt->ctx.id,
                sl__log_suppressed_note(suppressed));
}

/* Copies the pool's counters where sl_pipeline_node_stats reads them: the pool itself
 * belongs to this thread and is not safe to read from another. */
static void publish_pool_stats(sl_worker_node *wn) {
  sl_pool_stats ps;
  sl_pool_stats_get(wn->pool, &ps);
  atomic_store_explicit(&wn->stats.instances, ps.instances, memory_order_relaxed);
  atomic_store_explicit(&wn->stats.recycles, ps.recycled, memory_order_relaxed);
  atomic_store_explicit(&wn->stats.memory_bytes, ps.memory_bytes, memory_order_relaxed);
}

static void run_processor(sl_worker *worker, const sl_work *work, size_t node) {
  sl_node_rt *rt = &worker->pipeline->nodes[node];
  const sl_node_spec *spec = &worker->pipeline->spec->nodes[node];
  sl_worker_node *wn = &worker->nodes[node];
  bool tapped = sl__tapped(&rt->taps);
  uint64_t in = 0, failed = 0;
  /* Timed per batch, not per call: one sample of the batch's time per event. A clock
   * read per call took 27% off the throughput of generate -> passthrough.wasm -> null
   * (bench/pipeline); once per batch costs nothing measurable. */
  uint64_t start = sl__now_ns();
  for (size_t k = 0; k < spec->input_count; k++) {
    const sl_event_list *events = input_events(worker, work, &spec->inputs[k]);
    if (!events) continue;
    for (size_t i = 0; i < events->count; i++) {
      sl_fault fault;
      sl_status st = sl_pool_process(wn->pool, &events->items[i], &wn->out, &fault);
      if (st == SL_NOMEM) abort();
      if (st != SL_OK) {
        failed++;
        record_fault(worker, node, &events->items[i], &fault, tapped);
      }
    }
    in += events->count;
  }
  if (in) sl__latency_record(&wn->stats.latency, (sl__now_ns() - start) / in);
  sl_node_stats_atomic *stats = &rt->stats;
  atomic_fetch_add_explicit(&stats->events_in, in, memory_order_relaxed);
  atomic_fetch_add_explicit(&stats->events_out, wn->out.count, memory_order_relaxed);
  atomic_fetch_add_explicit(&stats->errors, failed, memory_order_relaxed);
  atomic_fetch_add_explicit(&stats->batches, 1, memory_order_relaxed);
  publish_pool_stats(wn);
  if (tapped) {
    sl__taps_call(&rt->taps, false, &wn->out);
    sl__taps_call(&rt->taps, true, &wn->errors);
  }
}

static void run_sink(sl_worker *worker, const sl_work *work, size_t node) {
  sl_pipeline *pipeline = worker->pipeline;
  const sl_node_spec *spec = &pipeline->spec->nodes[node];
  sl_event_list *batch = malloc(sizeof *batch);
  if (!batch) abort();
  sl_event_list_init(batch);
  for (size_t k = 0; k < spec->input_count; k++) {
    const sl_event_list *events = input_events(worker, work, &spec->inputs[k]);
    if (!events) continue;
    for (size_t i = 0; i < events->count; i++) copy_event(batch, &events->items[i], NULL, 0);
  }
  if (batch->count == 0) {
    sl_event_list_destroy(batch);
    free(batch);
    return;
  }
  sl_work *out = malloc(sizeof *out);
  if (!out) abort();
  out->batch = batch;
  out->ack = work->ack;
  out->source = work->source;
  out->errors = false;
  sl__ack_retain(work->ack);
  sl_sink_runner *sink = pipeline->nodes[node].sink;
  /* Counted before the push: the sink thread may write the batch before push returns. */
  atomic_fetch_add_explicit(&sink->depth, 1, memory_order_relaxed);
  if (!sl__batch_queue_push(&sink->queue, out)) {
    atomic_fetch_sub_explicit(&sink->depth, 1, memory_order_relaxed);
    sl__ack_release(out->ack, SL_CLOSED);
    out->ack = NULL;
    sl__work_free(out);
  }
}

/* A source gave up on these events (sl_source_emit_errors): they count as its errors, and
 * when nothing reads ID.errors they are logged here and dropped. */
static void source_errors(sl_pipeline *pipeline, size_t source, const sl_event_list *batch) {
  sl_node_rt *rt = &pipeline->nodes[source];
  atomic_fetch_add_explicit(&rt->stats.errors, batch->count, memory_order_relaxed);
  if (pipeline->plan.errors_read[source]) return;
  for (size_t i = 0; i < batch->count; i++) {
    const sl_event *ev = &batch->items[i];
    sl_bytes why = {(const uint8_t *)"unknown", 7};
    for (size_t m = 0; m < ev->meta_count; m++)
      if (ev->meta[m].key.len == 5 && memcmp(ev->meta[m].key.ptr, "error", 5) == 0)
        why = ev->meta[m].value;
    uint64_t suppressed;
    if (sl__log_limiter_allow(&rt->limiter, &suppressed))
      sl_node_log(&rt->ctx, SL_LOG_WARN,
                  "source gave up on an event: %.*s; nothing reads '%s.errors', so it is counted "
                  "and dropped%s",
                  (int)why.len, (const char *)why.ptr, rt->ctx.id,
                  sl__log_suppressed_note(suppressed));
  }
}

void sl__worker_run(sl_worker *worker, sl_work *work) {
  sl_pipeline *pipeline = worker->pipeline;
  const sl_plan *plan = &pipeline->plan;
  size_t source = work->source;
  sl_node_rt *rt = &pipeline->nodes[source];
  if (work->errors) {
    source_errors(pipeline, source, work->batch);
  } else {
    atomic_fetch_add_explicit(&rt->stats.events_out, work->batch->count, memory_order_relaxed);
  }
  atomic_fetch_add_explicit(&rt->stats.batches, 1, memory_order_relaxed);
  if (sl__tapped(&rt->taps)) sl__taps_call(&rt->taps, work->errors, work->batch);

  for (size_t s = 0; s < plan->step_count[source]; s++) {
    size_t node = plan->steps[source][s];
    worker->nodes[node].visited = true;
    switch (pipeline->spec->nodes[node].kind) {
    case SL_NODE_PROCESSOR:
      run_processor(worker, work, node);
      break;
    case SL_NODE_SINK:
      run_sink(worker, work, node);
      break;
    case SL_NODE_SOURCE:
      break;
    }
  }
  for (size_t s = 0; s < plan->step_count[source]; s++) {
    sl_worker_node *wn = &worker->nodes[plan->steps[source][s]];
    wn->visited = false;
    if (wn->out.count) sl_event_list_clear(&wn->out);
    if (wn->errors.count) sl_event_list_clear(&wn->errors);
  }
  sl__ack_release(work->ack, SL_OK);
  work->ack = NULL;
  sl__work_free(work);
}

/* --- the loop -------------------------------------------------------------------- */

static void close_handle(uv_handle_t *handle, void *arg) {
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

static void on_wake(uv_async_t *async) {
  sl_worker *worker = async->data;
  sl_work *work = sl__batch_queue_take_all(&worker->inbox, false);
  while (work) {
    sl_work *next = work->next;
    sl__worker_run(worker, work);
    work = next;
  }
  pthread_mutex_lock(&worker->posts_lock);
  sl_post *posts = worker->posts;
  worker->posts = NULL;
  pthread_mutex_unlock(&worker->posts_lock);
  /* Posts were pushed newest first; run them in the order they were made. */
  sl_post *ordered = NULL;
  while (posts) {
    sl_post *next = posts->next;
    posts->next = ordered;
    ordered = posts;
    posts = next;
  }
  while (ordered) {
    sl_post *next = ordered->next;
    ordered->fn(ordered->arg);
    free(ordered);
    ordered = next;
  }
  if (atomic_load(&worker->quit)) uv_walk(&worker->loop, close_handle, NULL);
}

static void destroy_pools(sl_worker *worker) {
  for (size_t i = 0; i < worker->pipeline->spec->node_count; i++) {
    if (worker->nodes[i].pool) sl_pool_destroy(worker->nodes[i].pool);
    worker->nodes[i].pool = NULL;
  }
}

static void *worker_main(void *arg) {
  sl_worker *worker = arg;
  uv_run(&worker->loop, UV_RUN_DEFAULT);
  /* The pools' instances point at this thread's Wasm runtime state (src/wasm/runtime.c),
   * which is freed when the thread exits: release them here, on their thread. */
  destroy_pools(worker);
  return NULL;
}

void sl__worker_wake(sl_worker *worker) { uv_async_send(&worker->wake); }

void sl__worker_post(sl_worker *worker, void (*fn)(void *arg), void *arg) {
  sl_post *post = malloc(sizeof *post);
  if (!post) abort();
  post->fn = fn;
  post->arg = arg;
  pthread_mutex_lock(&worker->posts_lock);
  post->next = worker->posts;
  worker->posts = post;
  pthread_mutex_unlock(&worker->posts_lock);
  uv_async_send(&worker->wake);
}

/* --- life cycle ------------------------------------------------------------------ */

sl_status sl__worker_init(sl_worker *worker, sl_pipeline *pipeline, unsigned index, sl_error *err) {
  memset(worker, 0, sizeof *worker);
  worker->pipeline = pipeline;
  worker->index = index;
  int rc = uv_loop_init(&worker->loop);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "worker %u: uv_loop_init: %s", index, uv_strerror(rc));
  uv_async_init(&worker->loop, &worker->wake, on_wake);
  worker->wake.data = worker;
  sl__batch_queue_init(&worker->inbox, 0);
  pthread_mutex_init(&worker->posts_lock, NULL);
  atomic_init(&worker->quit, false);
  const sl_pipeline_spec *spec = pipeline->spec;
  worker->nodes = calloc(spec->node_count, sizeof *worker->nodes);
  if (!worker->nodes) abort();
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_event_list_init(&worker->nodes[i].out);
    sl_event_list_init(&worker->nodes[i].errors);
  }
  for (size_t i = 0; i < spec->node_count; i++) {
    const sl_node_spec *node = &spec->nodes[i];
    if (node->kind != SL_NODE_PROCESSOR) continue;
    sl_node_rt *rt = &pipeline->nodes[i];
    sl_pool_options opts = sl__wasm_pool_options(node, rt->proc_config, rt->proc_env, rt->caps);
    if (pipeline->log) {
      opts.log = sl__processor_log;
      opts.log_user = pipeline;
    }
    sl_fault fault;
    sl_status st = sl_pool_new(rt->module, &opts, &worker->nodes[i].pool, &fault);
    if (st != SL_OK)
      return sl_error_set(err, st, "%s:%d:%d: node '%s': %s (%s)", node->loc.file, node->loc.line,
                          node->loc.col, node->id, fault.message, sl_fault_name(fault.kind));
    publish_pool_stats(&worker->nodes[i]);
  }
  return SL_OK;
}

sl_status sl__worker_start(sl_worker *worker, sl_error *err) {
  int rc = pthread_create(&worker->thread, NULL, worker_main, worker);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start worker %u: %s", worker->index, strerror(rc));
  worker->thread_started = true;
  return SL_OK;
}

void sl__worker_stop(sl_worker *worker) {
  if (!worker->thread_started) return;
  sl__batch_queue_close(&worker->inbox);
  atomic_store(&worker->quit, true);
  uv_async_send(&worker->wake);
  pthread_join(worker->thread, NULL);
  worker->thread_started = false;
}

void sl__worker_destroy(sl_worker *worker) {
  if (!worker->nodes) return;
  if (!uv_is_closing((uv_handle_t *)&worker->wake)) {
    /* Never started: close the handles here so the loop can be released. */
    uv_walk(&worker->loop, close_handle, NULL);
  }
  uv_run(&worker->loop, UV_RUN_DEFAULT);
  uv_loop_close(&worker->loop);
  sl__batch_queue_destroy(&worker->inbox);
  pthread_mutex_destroy(&worker->posts_lock);
  while (worker->posts) {
    sl_post *next = worker->posts->next;
    free(worker->posts);
    worker->posts = next;
  }
  destroy_pools(worker); /* a worker that never ran: its pools are still here */
  for (size_t i = 0; i < worker->pipeline->spec->node_count; i++) {
    sl_event_list_destroy(&worker->nodes[i].out);
    sl_event_list_destroy(&worker->nodes[i].errors);
  }
  free(worker->nodes);
  worker->nodes = NULL;
}
