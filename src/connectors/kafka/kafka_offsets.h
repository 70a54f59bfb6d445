/*
 * kafka_offsets.h - which offset of one partition may be stored (and so committed).
 *
 * The Kafka source emits batches that may hold messages of several partitions, and
 * acknowledgements may arrive in any order. For each partition it records, per emitted
 * batch, the span of offsets that batch holds (first..last), in emission order. An
 * offset may be stored only once its span and every earlier span of the partition are
 * delivered: the tracker pops delivered spans from the front and says where the
 * consumer would resume (last popped + 1).
 *
 * A span that failed stops the front. Once it reaches the front the caller re-reads the
 * partition from the span's first offset: sl__kafka_offsets_advance reports it, and the
 * caller resets the tracker. The acks of later spans (which will be read again) then
 * find nothing to settle: their batches are no longer listed, and batches emitted after
 * the reset have larger sequence numbers.
 *
 * Not thread-safe: the source touches it from its own thread only.
 */
#ifndef SL_CONNECTORS_KAFKA_OFFSETS_H
#define SL_CONNECTORS_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kafka_span_state {
  KAFKA_SPAN_PENDING,   /* emitted, no ack yet */
  KAFKA_SPAN_DELIVERED, /* acknowledged SL_OK */
  KAFKA_SPAN_FAILED,    /* a sink failed it: read it again */
  KAFKA_SPAN_ABANDONED, /* the pipeline stopped before delivering it: never stored */
} kafka_span_state;

typedef struct kafka_span {
  uint64_t batch; /* the emitting batch's sequence number, increasing */
  int64_t first, last;
  kafka_span_state state;
} kafka_span;

typedef struct kafka_offsets {
  kafka_span *spans; /* spans[head .. count) are live, in batch order */
  size_t head, count, cap;
} kafka_offsets;

/* What the front of a partition allows, from sl__kafka_offsets_advance. */
typedef struct kafka_advance {
  int64_t store;     /* the offset to store (last delivered + 1); -1 when it did not move */
  int64_t reread_at; /* the first offset of a failed span now at the front; -1 if none */
} kafka_advance;

void sl__kafka_offsets_init(kafka_offsets *offsets);
void sl__kafka_offsets_destroy(kafka_offsets *offsets);

/* Forgets every span (after a seek back or a revocation). */
void sl__kafka_offsets_reset(kafka_offsets *offsets);

/* Records that batch `batch` holds offsets first..last; batches are added in order. */
void sl__kafka_offsets_add(kafka_offsets *offsets, uint64_t batch, int64_t first, int64_t last);

/* Sets the state of batch `batch`'s span; false when there is none (already popped). */
bool sl__kafka_offsets_settle(kafka_offsets *offsets, uint64_t batch, kafka_span_state state);

/* Pops delivered spans from the front; see kafka_advance. */
kafka_advance sl__kafka_offsets_advance(kafka_offsets *offsets);

/* Spans still waiting for an ack. */
size_t sl__kafka_offsets_pending(const kafka_offsets *offsets);

#endif
