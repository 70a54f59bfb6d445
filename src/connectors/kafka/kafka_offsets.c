/*
 * kafka_offsets.c - the per-partition span list of the Kafka source (kafka_offsets.h).
 *
 * Spans live in one array; [head, count) are live. Appending compacts the array when
 * the dead front is large, so memory stays proportional to the batches in flight.
 */
#include "connectors/kafka/kafka_offsets.h"

#include <stdlib.h>
#include <string.h>

void sl__kafka_offsets_init(kafka_offsets *offsets) { *offsets = (kafka_offsets){0}; }

void sl__kafka_offsets_destroy(kafka_offsets *offsets) {
  free(offsets->spans);
  *offsets = (kafka_offsets){0};
}

void sl__kafka_offsets_reset(kafka_offsets *offsets) { offsets->head = offsets->count = 0; }

void sl__kafka_offsets_add(kafka_offsets *offsets, uint64_t batch, int64_t first, int64_t last) {
  if (offsets->head == offsets->count) offsets->head = offsets->count = 0;
  if (offsets->count == offsets->cap) {
    if (offsets->head > offsets->cap / 2) {
      memmove(offsets->spans, offsets->spans + offsets->head,
              (offsets->count - offsets->head) * sizeof *offsets->spans);
      offsets->count -= offsets->head;
      offsets->head = 0;
    } else {
      size_t cap = offsets->cap ? offsets->cap * 2 : 16;
      kafka_span *grown = realloc(offsets->spans, cap * sizeof *grown);
      if (!grown) abort(); /* host out of memory */
      offsets->spans = grown;
      offsets->cap = cap;
    }
  }
  offsets->spans[offsets->count++] = (kafka_span){batch, first, last, KAFKA_SPAN_PENDING};
}

bool sl__kafka_offsets_settle(kafka_offsets *offsets, uint64_t batch, kafka_span_state state) {
  size_t lo = offsets->head, hi = offsets->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (offsets->spans[mid].batch < batch)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == offsets->count || offsets->spans[lo].batch != batch) return false;
  offsets->spans[lo].state = state;
  return true;
}

kafka_advance sl__kafka_offsets_advance(kafka_offsets *offsets) {
  kafka_advance result = {-1, -1};
  while (offsets->head < offsets->count &&
         offsets->spans[offsets->head].state == KAFKA_SPAN_DELIVERED)
    result.store = offsets->spans[offsets->head++].last + 1;
  if (offsets->head < offsets->count && offsets->spans[offsets->head].state == KAFKA_SPAN_FAILED)
    result.reread_at = offsets->spans[offsets->head].first;
  return result;
}

size_t sl__kafka_offsets_pending(const kafka_offsets *offsets) {
  size_t pending = 0;
  for (size_t i = offsets->head; i < offsets->count; i++)
    pending += offsets->spans[i].state == KAFKA_SPAN_PENDING;
  return pending;
}
