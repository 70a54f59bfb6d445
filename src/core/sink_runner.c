/*
 * sink_runner.c - one thread per sink node: take every queued batch, write each,
 * acknowledge each, and flush when the queue runs dry.
 *
 * Writing on a thread of the sink's own lets a connector use a blocking client and keeps
 * slow networks off the workers. Acks are released here, so a batch counts as delivered
 * only after `write` accepted it.
 *
 * This thread is the only writer of its sink's latency histogram (one sample per batch:
 * its write, plus the flush for the batch written last before one) and the one that
 * counts queue_depth down as batches are written.
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
    /* The last batch's write time waits to be recorded with the flush's. */
    uint64_t last_write_ns = 0;
    bool wrote = false;
    for (; work; work = work->next) {
      if (atomic_load(&runner->pipeline->tearing_down)) {
        atomic_fetch_sub_explicit(&runner->depth, 1, memory_order_relaxed);
        sl__ack_release(work->ack, SL_CLOSED);
        work->ack = NULL;
        continue;
      }
      if (sl__tapped(&rt->taps)) sl__taps_call(&rt->taps, false, work->batch);
      sl_error err = {{0}};
      uint64_t start = sl__now_ns();
      sl_status st = connector->write(rt->state, work->batch, &err);
      uint64_t took = sl__now_ns() - start;
      if (wrote) sl__latency_record(&rt->stats.latency, last_write_ns);
      last_write_ns = took;
      wrote = true;
      atomic_fetch_sub_explicit(&runner->depth, 1, memory_order_relaxed);
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
    uint64_t start = sl__now_ns();
    if (connector->flush) flushed = connector->flush(rt->state, &err);
    if (wrote)
      sl__latency_record(&rt->stats.latency,
                         last_write_ns + (connector->flush ? sl__now_ns() - start : 0));
    if (flushed != SL_OK) {
      /* The written batches that waited for this flush were counted out; they failed. */
      size_t unflushed = 0;
      for (work = first; work; work = work->next)
        if (work->ack) unflushed += work->batch->count;
      atomic_fetch_sub_explicit(&rt->stats.events_out, unflushed, memory_order_relaxed);
      report_failure(rt, unflushed, &err);
    }
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
