/*
 * batch_queue.h - a bounded queue of batches between threads.
 *
 * Batches, not events, cross threads, so one lock per batch is cheap. The bound is in
 * events: a producer waits while the queue holds `capacity` events or more, except that
 * an empty queue always takes one batch (a batch larger than the bound must still move).
 */
#ifndef SL_CORE_BATCH_QUEUE_H
#define SL_CORE_BATCH_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/ack.h"
#include "sluice/event.h"

typedef struct sl_work {
  sl_event_list *batch; /* owned by whoever holds the item */
  sl_ack *ack;          /* one reference, owned likewise */
  size_t source;        /* index of the source node the batch came from */
  bool errors;          /* the batch leaves on the source's errors output (ID.errors) */
  struct sl_work *next;
} sl_work;

typedef struct sl_batch_queue {
  pthread_mutex_t lock;
  pthread_cond_t not_full;
  pthread_cond_t not_empty;
  sl_work *head, *tail;
  size_t events;   /* queued events */
  size_t capacity; /* 0: unbounded */
  bool closed;
} sl_batch_queue;

void sl__batch_queue_init(sl_batch_queue *queue, size_t capacity);
/* Frees what is still queued (releasing acks as failed). */
void sl__batch_queue_destroy(sl_batch_queue *queue);

/* Takes ownership of `work` (allocated by the caller with malloc). Blocks while full.
 * Returns false (and leaves `work` with the caller) once the queue is closed. */
bool sl__batch_queue_push(sl_batch_queue *queue, sl_work *work);

/* Takes every queued item, oldest first, as a linked list; NULL when empty. With `wait`,
 * blocks until something arrives or the queue is closed. */
sl_work *sl__batch_queue_take_all(sl_batch_queue *queue, bool wait);

/* Wakes every waiter; pushes fail from now on, takes drain what is left. */
void sl__batch_queue_close(sl_batch_queue *queue);

/* Frees one item's batch (not its ack). */
void sl__work_free(sl_work *work);

#endif
