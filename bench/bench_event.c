/*
 * bench_event.c - the per-event overhead of the engine: a passthrough processor
 * (guests/passthrough.wat) fed a 100-byte payload with one metadata pair.
 *
 * The guest returns its input without touching it, so everything measured is the
 * engine's work per event: lowering the event into guest memory through cabi_realloc,
 * the guarded call, lifting the result (bounds and UTF-8 checks, copies into the output
 * list) and cabi_post_process. The baseline is the same copying done natively: the
 * event copied into a scratch "guest memory" and from there into the same kind of output
 * list, which is what a host without Wasm would still have to do to hand a processor its
 * own copy of the event.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PAYLOAD_BYTES 100
#define TARGET_NS 150.0

static const char payload_text[PAYLOAD_BYTES + 1] =
    "{\"ts\":\"2024-05-01T12:00:00Z\",\"level\":\"info\",\"user\":42,\"msg\":\"order placed\","
    "\"total\":19.99,\"n\":3}";
_Static_assert(sizeof payload_text == PAYLOAD_BYTES + 1, "the payload is 100 bytes");

/* The native baseline. `memory` plays the guest's linear memory: the event is lowered
 * into it and lifted from it, as the engine does, minus everything Wasm adds. */
__attribute__((noinline)) static void native_passthrough(const sl_event *in, sl_event_list *out,
                                                         uint8_t *memory) {
  size_t at = 0, payload_at = 0, pairs_at;
  if (in->meta_count > 8) bench_die("the native baseline handles at most 8 metadata pairs");
  memcpy(memory + at, in->payload.ptr, in->payload.len);
  at += in->payload.len;
  pairs_at = at = (at + 3) & ~(size_t)3;
  at += in->meta_count * 16;
  uint32_t offsets[2 * 8][2];
  for (size_t i = 0; i < in->meta_count; i++) {
    memcpy(memory + at, in->meta[i].key.ptr, in->meta[i].key.len);
    offsets[2 * i][0] = (uint32_t)at, offsets[2 * i][1] = (uint32_t)in->meta[i].key.len;
    at += in->meta[i].key.len;
    memcpy(memory + at, in->meta[i].value.ptr, in->meta[i].value.len);
    offsets[2 * i + 1][0] = (uint32_t)at, offsets[2 * i + 1][1] = (uint32_t)in->meta[i].value.len;
    at += in->meta[i].value.len;
  }
  memcpy(memory + pairs_at, offsets, in->meta_count * 16);
  __asm__ volatile("" ::: "memory"); /* the "processor" runs here and returns its input */

  uint8_t *payload;
  sl_meta *meta;
  if (sl_event_list_push(out, in->payload.len, in->meta_count, &payload, &meta) != SL_OK)
    bench_die("out of memory");
  memcpy(payload, memory + payload_at, in->payload.len);
  for (size_t i = 0; i < in->meta_count; i++) {
    uint32_t record[4];
    memcpy(record, memory + pairs_at + i * 16, 16);
    if (sl_event_list_copy(out, memory + record[0], record[1], &meta[i].key) != SL_OK ||
        sl_event_list_copy(out, memory + record[2], record[3], &meta[i].value) != SL_OK)
      bench_die("out of memory");
  }
}

static bool same_bytes(sl_bytes a, sl_bytes b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_output(const sl_event_list *out, const sl_event *in, const char *who) {
  const sl_event *e = out->count == 1 ? &out->items[0] : NULL;
  if (!e || !same_bytes(e->payload, in->payload) || e->meta_count != in->meta_count ||
      !same_bytes(e->meta[0].key, in->meta[0].key) ||
      !same_bytes(e->meta[0].value, in->meta[0].value))
    bench_die("%s: the passthrough did not return its input", who);
}

static double time_sluice(sl_pool *pool, const sl_event *in, sl_event_list *out, size_t events) {
  sl_fault fault;
  uint64_t start = bench_now_ns();
  for (size_t i = 0; i < events; i++) {
    sl_event_list_clear(out);
    if (sl_pool_process(pool, in, out, &fault) != SL_OK)
      bench_die("passthrough failed: %s: %s", sl_fault_name(fault.kind), fault.message);
  }
  return (double)(bench_now_ns() - start) / (double)events;
}

static double time_native(const sl_event *in, sl_event_list *out, uint8_t *memory, size_t events) {
  uint64_t start = bench_now_ns();
  for (size_t i = 0; i < events; i++) {
    sl_event_list_clear(out);
    native_passthrough(in, out, memory);
  }
  return (double)(bench_now_ns() - start) / (double)events;
}

/* The event list alone (push, three copies, clear): the part of both loops that is
 * neither lowering nor the call, shown in a note so the split is visible. */
static double time_list_only(const sl_event *in, sl_event_list *out, size_t events) {
  uint64_t start = bench_now_ns();
  for (size_t i = 0; i < events; i++) {
    sl_event_list_clear(out);
    uint8_t *payload;
    sl_meta *meta;
    if (sl_event_list_push(out, in->payload.len, 1, &payload, &meta) != SL_OK ||
        sl_event_list_copy(out, in->meta[0].key.ptr, in->meta[0].key.len, &meta[0].key) != SL_OK ||
        sl_event_list_copy(out, in->meta[0].value.ptr, in->meta[0].value.len, &meta[0].value) !=
            SL_OK)
      bench_die("out of memory");
    memcpy(payload, in->payload.ptr, in->payload.len);
  }
  return (double)(bench_now_ns() - start) / (double)events;
}

void bench_event_overhead(const bench_config *config, sl_engine *engine) {
  char path[4096];
  bench_guest_path(config, "passthrough.wasm", path, sizeof path);
  sl_module *module = bench_load(engine, path, NULL);
  sl_pool_options options = {.node_id = "passthrough"};
  sl_pool *pool = NULL;
  sl_fault fault;
  if (sl_pool_new(module, &options, &pool, &fault) != SL_OK)
    bench_die("passthrough: %s", fault.message);

  sl_meta pair = {sl_bytes_from_cstr("content-type"), sl_bytes_from_cstr("application/json")};
  sl_event in = {sl_bytes_from_cstr(payload_text), &pair, 1};
  sl_event_list out;
  sl_event_list_init(&out);
  static uint8_t memory[4096];
  size_t events = config->quick ? 100000 : 1000000;

  time_sluice(pool, &in, &out, events / 10); /* warm caches and branch predictors */
  check_output(&out, &in, "sluice");
  time_native(&in, &out, memory, events / 10);
  check_output(&out, &in, "native");
  time_list_only(&in, &out, events / 10);

  /* Interleaved, so both sides see the same machine conditions. */
  double sluice_ns[64], native_ns[64], list_ns[64];
  int runs = config->repeats < 64 ? config->repeats : 64;
  for (int r = 0; r < runs; r++) {
    sluice_ns[r] = time_sluice(pool, &in, &out, events);
    native_ns[r] = time_native(&in, &out, memory, events);
    list_ns[r] = time_list_only(&in, &out, events);
  }
  double sluice = bench_median(sluice_ns, (size_t)runs);
  double native = bench_median(native_ns, (size_t)runs);
  double list = bench_median(list_ns, (size_t)runs);

  bench_row row = {.name = "passthrough event (100 B, 1 pair)", .value = sluice,
                   .unit = "ns/event", .ratio = sluice / native, .goal = BENCH_BELOW,
                   .target = TARGET_NS, .target_text = "< 150 ns"};
  snprintf(row.baseline, sizeof row.baseline, "native copy %.1f ns", native);
  bench_report(&row);
  bench_note("passthrough: %zu events per run; of the native %.1f ns, %.1f ns is the output "
             "event list alone (push, copies, clear)", events, native, list);

  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  sl_module_release(module);
}
