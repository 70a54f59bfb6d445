/*
 * batch_queue.c - bounded queue of batches (see batch_queue.h).
 */
#include "core/batch_queue.h"

#include <stdlib.h>

void sl__batch_queue_init(sl_batch_queue *queue, size_t capacity) {
  pthread_mutex_init(&queue->lock, NULL);
  pthread_cond_init(&queue->not_full, NULL);
  pthread_cond_init(&queue->not_empty, NULL);
  queue->head = queue->tail = NULL;
  queue->events = 0;
  queue->capacity = capacity;
  queue->closed = false;
}

void sl__work_free(sl_work *work) {
  if (work->batch) {
    sl_event_list_destroy(work->batch);
    free(work->batch);
  }
  free(work);
}

void sl__batch_queue_destroy(sl_batch_queue *queue) {
  sl_work *work = queue->head;
  while (work) {
    sl_work *next = work->next;
    if (work->ack) sl__ack_release(work->ack, SL_CLOSED);
    sl__work_free(work);
    work = next;
  }
  pthread_mutex_destroy(&queue->lock);
  pthread_cond_destroy(&queue->not_full);
  pthread_cond_destroy(&queue->not_empty);
}

bool sl__batch_queue_push(sl_batch_queue *queue, sl_work *work) {
  size_t count = work->batch ? work->batch->count : 0;
  work->next = NULL;
  pthread_mutex_lock(&queue->lock);
  while (!queue->closed && queue->capacity && queue->head &&
         queue->events + count > queue->capacity)
    pthread_cond_wait(&queue->not_full, &queue->lock);
  if (queue->closed) {
    pthread_mutex_unlock(&queue->lock);
    return false;
  }
  if (queue->tail)
    queue->tail->next = work;
  else
    queue->head = work;
  queue->tail = work;
  queue->events += count;
  pthread_cond_signal(&queue->not_empty);
  pthread_mutex_unlock(&queue->lock);
  return true;
}

sl_work *sl__batch_queue_take_all(sl_batch_queue *queue, bool wait) {
  pthread_mutex_lock(&queue->lock);
  while (wait && !queue->head && !queue->closed) pthread_cond_wait(&queue->not_empty, &queue->lock);
  sl_work *all = queue->head;
  queue->head = queue->tail = NULL;
  queue->events = 0;
  pthread_cond_broadcast(&queue->not_full);
  pthread_mutex_unlock(&queue->lock);
  return all;
}

void sl__batch_queue_close(sl_batch_queue *queue) {
  pthread_mutex_lock(&queue->lock);
  queue->closed = true;
  pthread_cond_broadcast(&queue->not_full);
  pthread_cond_broadcast(&queue->not_empty);
  pthread_mutex_unlock(&queue->lock);
}
