/*
 * source_port.c - what a source sees of the pipeline: emitting batches against its
 * credits (backpressure), ending, and reaching the worker loops.
 *
 * Credits are counted in source events. A batch takes its events' worth when emitted
 * and the last release of its ack gives them back (ack.c), so a source can never run
 * further ahead of its sinks than `max_in_flight` events.
 */
#include <stdlib.h>

#include "core/pipeline_internal.h"

void sl__port_init(sl_source_port *port, sl_pipeline *pipeline, size_t node, unsigned worker,
                   uint64_t max_in_flight) {
  port->pipeline = pipeline;
  port->node = node;
  port->worker = worker;
  pthread_mutex_init(&port->lock, NULL);
  pthread_cond_init(&port->credit, NULL);
  port->in_flight = 0;
  port->max_in_flight = max_in_flight ? max_in_flight : 10000;
  port->closed = false;
  atomic_init(&port->ended, false);
}

void sl__port_destroy(sl_source_port *port) {
  pthread_mutex_destroy(&port->lock);
  pthread_cond_destroy(&port->credit);
}

void sl__port_close(sl_source_port *port) {
  pthread_mutex_lock(&port->lock);
  port->closed = true;
  pthread_cond_broadcast(&port->credit);
  pthread_mutex_unlock(&port->lock);
}

void sl__port_return_credits(sl_source_port *port, size_t events) {
  pthread_mutex_lock(&port->lock);
  port->in_flight -= events;
  pthread_cond_broadcast(&port->credit);
  pthread_mutex_unlock(&port->lock);
  sl_pipeline *pipeline = port->pipeline;
  if (atomic_fetch_sub(&pipeline->in_flight, events + 1) == events + 1)
    sl__pipeline_notify(pipeline);
}

/* A batch larger than every credit still goes when nothing else is in flight. */
static bool has_credit(const sl_source_port *port, size_t events) {
  return port->in_flight == 0 || port->in_flight + events <= port->max_in_flight;
}

static sl_work *make_work(sl_source_port *port, sl_event_list **batch, bool errors,
                          sl_ack_fn on_ack, void *cookie) {
  size_t events = (*batch)->count;
  /* Counted once more per batch so an empty batch is in flight until acknowledged too. */
  atomic_fetch_add(&port->pipeline->in_flight, events + 1);
  sl_work *work = malloc(sizeof *work);
  if (!work) abort();
  work->batch = *batch;
  work->ack = sl__ack_new(port, events, on_ack, cookie);
  work->source = port->node;
  work->errors = errors;
  work->next = NULL;
  *batch = NULL;
  return work;
}

static void free_batch(sl_event_list **batch) {
  sl_event_list_destroy(*batch);
  free(*batch);
  *batch = NULL;
}

static sl_status emit(sl_source_port *port, sl_event_list **batch, bool errors, sl_ack_fn on_ack,
                      void *cookie) {
  size_t events = (*batch)->count;
  pthread_mutex_lock(&port->lock);
  while (!port->closed && !has_credit(port, events)) pthread_cond_wait(&port->credit, &port->lock);
  if (port->closed) {
    pthread_mutex_unlock(&port->lock);
    free_batch(batch);
    return SL_CLOSED;
  }
  port->in_flight += events;
  pthread_mutex_unlock(&port->lock);

  sl_worker *worker = &port->pipeline->workers[port->worker];
  sl_work *work = make_work(port, batch, errors, on_ack, cookie);
  if (!sl__batch_queue_push(&worker->inbox, work)) {
    work->ack->on_ack = NULL; /* the source hears SL_CLOSED from the return value instead */
    sl__ack_release(work->ack, SL_CLOSED);
    work->ack = NULL;
    sl__work_free(work);
    return SL_CLOSED;
  }
  sl__worker_wake(worker);
  return SL_OK;
}

sl_status sl_source_emit(sl_source_port *port, sl_event_list **batch, sl_ack_fn on_ack,
                         void *cookie) {
  return emit(port, batch, false, on_ack, cookie);
}

sl_status sl_source_emit_errors(sl_source_port *port, sl_event_list **batch, sl_ack_fn on_ack,
                                void *cookie) {
  return emit(port, batch, true, on_ack, cookie);
}

sl_status sl_source_emit_on_worker(sl_source_port *port, unsigned worker, sl_event_list **batch,
                                   sl_ack_fn on_ack, void *cookie) {
  size_t events = (*batch)->count;
  pthread_mutex_lock(&port->lock);
  if (port->closed) {
    pthread_mutex_unlock(&port->lock);
    return SL_CLOSED;
  }
  if (!has_credit(port, events)) {
    pthread_mutex_unlock(&port->lock);
    return SL_AGAIN;
  }
  port->in_flight += events;
  pthread_mutex_unlock(&port->lock);
  sl_work *work = make_work(port, batch, false, on_ack, cookie);
  sl__worker_run(&port->pipeline->workers[worker], work);
  return SL_OK;
}

void sl_source_end(sl_source_port *port) {
  if (atomic_exchange(&port->ended, true)) return;
  sl_pipeline *pipeline = port->pipeline;
  pthread_mutex_lock(&pipeline->lock);
  pipeline->sources_ended++;
  pthread_cond_broadcast(&pipeline->changed);
  pthread_mutex_unlock(&pipeline->lock);
}

unsigned sl_source_worker_count(const sl_source_port *port) { return port->pipeline->worker_count; }

struct uv_loop_s *sl_source_worker_loop(sl_source_port *port, unsigned worker) {
  return &port->pipeline->workers[worker].loop;
}

void sl_source_post(sl_source_port *port, unsigned worker, void (*fn)(void *arg), void *arg) {
  sl__worker_post(&port->pipeline->workers[worker], fn, arg);
}

size_t sl_source_batch_size(const sl_source_port *port) {
  return (size_t)port->pipeline->spec->batch_size;
}
