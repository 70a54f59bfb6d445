/*
 * ack.h - the acknowledgement of one source batch (docs/design/data-plane.md).
 *
 * An sl_ack counts outstanding deliveries: the worker holds one while it runs the batch
 * and each sink batch made from it holds one more. The last release returns the
 * source's credits and calls its on_ack with SL_OK or the first failure.
 */
#ifndef SL_CORE_ACK_H
#define SL_CORE_ACK_H

#include <stdatomic.h>
#include <stddef.h>

#include "sluice/connector.h"

struct sl_source_port;

typedef struct sl_ack {
  atomic_uint refs;
  atomic_int failure; /* SL_OK until the first failed delivery */
  struct sl_source_port *port;
  size_t events;    /* credits to return */
  sl_ack_fn on_ack; /* may be NULL */
  void *cookie;
} sl_ack;

/* A new ack holding one reference (the worker's). Aborts if the host is out of memory. */
sl_ack *sl__ack_new(struct sl_source_port *port, size_t events, sl_ack_fn on_ack, void *cookie);

static inline void sl__ack_retain(sl_ack *ack) { atomic_fetch_add(&ack->refs, 1); }

/* Drops one reference, recording `status` if it is the first failure; the last one fires. */
void sl__ack_release(sl_ack *ack, sl_status status);

#endif
