/*
 * ack.c - acknowledgement counting (see ack.h).
 */
#include "core/ack.h"

#include <stdlib.h>

#include "core/pipeline_internal.h"

sl_ack *sl__ack_new(struct sl_source_port *port, size_t events, sl_ack_fn on_ack, void *cookie) {
  sl_ack *ack = malloc(sizeof *ack);
  if (!ack) abort();
  atomic_init(&ack->refs, 1);
  atomic_init(&ack->failure, SL_OK);
  ack->port = port;
  ack->events = events;
  ack->on_ack = on_ack;
  ack->cookie = cookie;
  return ack;
}

void sl__ack_release(sl_ack *ack, sl_status status) {
  if (status != SL_OK) {
    int expected = SL_OK;
    atomic_compare_exchange_strong(&ack->failure, &expected, (int)status);
  }
  if (atomic_fetch_sub(&ack->refs, 1) != 1) return;
  sl_status result = (sl_status)atomic_load(&ack->failure);
  /* The source hears first, then the credits return: when the pipeline sees zero
   * events in flight, every source has already seen every acknowledgement. */
  if (ack->on_ack) ack->on_ack(ack->cookie, result);
  sl__port_return_credits(ack->port, ack->events);
  free(ack);
}
