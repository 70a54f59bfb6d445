/*
 * sink_runner.c - one thread per sink node: take every queued batch, write each,
 * acknowledge each, and flush when the queue runs dry.
 *
 * Writing on a thread of the sink's own lets a connector use a blocking client and keeps
 * slow networks off the workers. Acks are released here, so a batch counts as delivered
 * only after `write` accepted it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_internal.h"

static void report_failure(sl_node_rt *rt, size_t events, const sl_error *err) {
  atomic_fetch_add_explicit(&rt->stats.errors, events, memory_order_relaxed);
  uint64_t suppressed;
  if (sl__log_limiter_allow(&rt->limiter, &suppressed))
    sl_node_log(&rt->ctx, SL_LOG_ERROR, "%zu events not delivered: %s%s", events, err->message,
                sl__log_suppressed_note(suppressed));
}

static void *sink_main(void *arg) {
  sl_sink_runner *runner = arg;
  sl_node_rt *rt = &runner->pipeline->nodes[runner->node];
  const sl_connector *connector = runner->pipeline->spec->nodes[runner->node].connector;
  sl_work *work;
  while ((work = sl__batch_queue_take_all(&runner->queue, true)) != NULL) {
    /* Write everything taken, then flush once, then acknowledge: a batch is delivered
     * only when its bytes are where the sink promises (written, flushed, answered). */
    sl_work *first = work;
    for (; work; work = work->next) {
      if (atomic_load(&runner->pipeline->tearing_down)) {
        sl__ack_release(work->ack, SL_CLOSED);
        work->ack = NULL;
        continue;
      }
      sl_error err = {{0}};
      sl_status st = connector->write(rt->state, work->batch, &err);
      size_t events = work->batch->count;
      atomic_fetch_add_explicit(&rt->stats.events_in, events, memory_order_relaxed);
      atomic_fetch_add_explicit(&rt->stats.batches, 1, memory_order_relaxed);
      if (st == SL_OK) {
        atomic_fetch_add_explicit(&rt->stats.events_out, events, memory_order_relaxed);
      } else {
        report_failure(rt, events, &err);
        sl__ack_release(work->ack, st);
        work->ack = NULL;
      }
    }
    sl_status flushed = SL_OK;
    sl_error err = {{0}};
    if (connector->flush) flushed = connector->flush(rt->state, &err);
    if (flushed != SL_OK) report_failure(rt, 0, &err);
    for (work = first; work;) {
      sl_work *next = work->next;
      if (work->ack) sl__ack_release(work->ack, flushed);
      work->ack = NULL;
      sl__work_free(work);
      work = next;
    }
  }
  return NULL;
}

sl_status sl__sink_runner_start(sl_sink_runner *runner, sl_error *err) {
  int rc = pthread_create(&runner->thread, NULL, sink_main, runner);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start the thread of sink '%s': %s",
                        runner->pipeline->spec->nodes[runner->node].id, strerror(rc));
  runner->thread_started = true;
  return SL_OK;
}

void sl__sink_runner_stop(sl_sink_runner *runner) {
  sl__batch_queue_close(&runner->queue);
  if (runner->thread_started) pthread_join(runner->thread, NULL);
  runner->thread_started = false;
}
