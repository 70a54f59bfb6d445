/*
 * Canonical ABI edge cases: what goes in comes out intact, and every malformed result a
 * guest can return is a bad-result fault for that event, never a host read outside guest
 * memory (AddressSanitizer runs these too, via `make asan`).
 */
#include "../../support/fixture.h"

Test(abi, empty_payload_round_trips) {
  sl_pool *pool = guest_pool("echo", NULL);
  expect_one(pool, "", "");
  sl_pool_destroy(pool);
}

Test(abi, payload_and_metadata_round_trip_in_order) {
  sl_pool *pool = guest_pool("echo", NULL);
  sl_meta meta[3] = {{sl_bytes_from_cstr("content-type"), sl_bytes_from_cstr("text/plain")},
                     {sl_bytes_from_cstr("empty"), sl_bytes_from_cstr("")},
                     {sl_bytes_from_cstr("ünïcode"), sl_bytes_from_cstr("✓")}};
  sl_event in = {.payload = sl_bytes_from_cstr("hello"), .meta = meta, .meta_count = 3};
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(sl_pool_process(pool, &in, &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  cr_assert_eq(out.items[0].meta_count, 3);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(out.items[0].meta[i].key.len, meta[i].key.len);
    cr_assert(memcmp(out.items[0].meta[i].key.ptr, meta[i].key.ptr, meta[i].key.len) == 0);
    cr_assert_eq(out.items[0].meta[i].value.len, meta[i].value.len);
    if (meta[i].value.len)
      cr_assert(memcmp(out.items[0].meta[i].value.ptr, meta[i].value.ptr, meta[i].value.len) == 0);
  }
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

static size_t count_events(sl_pool *pool, const char *payload) {
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, payload, &out, &fault), SL_OK, "%s", fault.message);
  size_t n = out.count;
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(out.items[i].payload.len, strlen(payload), "event %zu lost its payload", i);
  sl_event_list_destroy(&out);
  return n;
}

Test(abi, zero_events_out_is_a_drop) {
  sl_pool *pool = guest_pool("fanout", NULL);
  cr_assert_eq(count_events(pool, "0"), 0);
  sl_pool_destroy(pool);
}

Test(abi, ten_thousand_events_out) {
  sl_pool *pool = guest_pool("fanout", NULL);
  cr_assert_eq(count_events(pool, "10000"), 10000);
  cr_assert_eq(count_events(pool, "3"), 3, "the instance keeps working after a large fan-out");
  sl_pool_destroy(pool);
}

Test(abi, output_appends_to_what_the_list_already_holds) {
  sl_pool *pool = guest_pool("fanout", NULL);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "2", &out, &fault), SL_OK);
  cr_assert_eq(run_text(pool, "3", &out, &fault), SL_OK);
  cr_assert_eq(out.count, 5);
  /* A failing call leaves earlier events alone. */
  cr_assert_eq(run_text(pool, "x", &out, &fault), SL_FAULT);
  cr_assert_eq(out.count, 5);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(abi, sixteen_mib_payload_in_and_out) {
  /* Copying 16 MiB each way takes tens of ms; on a loaded 2-core CI machine that can pass
   * the default 100 ms limit, and time is not what this test is about. */
  sl_limits limits = {.time_ms = 5000};
  sl_pool *pool = guest_pool("big", &limits);
  size_t len = 16u << 20;
  uint8_t *payload = malloc(len);
  cr_assert_not_null(payload);
  for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)('a' + i % 26);
  sl_event in = {.payload = {payload, len}};
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(sl_pool_process(pool, &in, &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  cr_assert_eq(out.items[0].payload.len, len);
  for (size_t i = 0; i < len; i += 4099)
    cr_assert_eq(out.items[0].payload.ptr[i], 'A' + i % 26, "byte %zu", i);
  sl_event_list_clear(&out);

  /* And 16 MiB produced by the guest. */
  in.payload = sl_bytes_from_cstr("big");
  cr_assert_eq(sl_pool_process(pool, &in, &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  cr_assert_eq(out.items[0].payload.len, len);
  cr_assert_eq(out.items[0].payload.ptr[len - 1], 'x');
  sl_event_list_destroy(&out);
  free(payload);
  sl_pool_destroy(pool);
}

Test(abi, many_metadata_pairs) {
  sl_pool *pool = guest_pool("many_meta", NULL);
  enum { PAIRS = 2000 };
  static sl_meta meta[PAIRS];
  static char keys[PAIRS][16], values[PAIRS][16];
  for (int i = 0; i < PAIRS; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    snprintf(values[i], sizeof values[i], "v%d", i);
    meta[i] = (sl_meta){sl_bytes_from_cstr(keys[i]), sl_bytes_from_cstr(values[i])};
  }
  sl_event in = {.payload = sl_bytes_from_cstr("p"), .meta = meta, .meta_count = PAIRS};
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(sl_pool_process(pool, &in, &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  const sl_event *e = &out.items[0];
  cr_assert_eq(e->meta_count, PAIRS + 1);
  /* The guest reverses the pairs and appends ("count", N). */
  cr_assert(memcmp(e->meta[0].key.ptr, keys[PAIRS - 1], strlen(keys[PAIRS - 1])) == 0);
  cr_assert(memcmp(e->meta[PAIRS - 1].value.ptr, "v0", 2) == 0);
  cr_assert(memcmp(e->meta[PAIRS].key.ptr, "count", 5) == 0);
  cr_assert(memcmp(e->meta[PAIRS].value.ptr, "2000", 4) == 0);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(abi, err_result_is_a_processor_error_and_keeps_the_instance) {
  sl_pool *pool = guest_pool("fail", NULL);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "x=1", &out, &fault), SL_FAULT);
  cr_assert_eq(fault.kind, SL_FAULT_PROCESSOR_ERROR);
  cr_assert_str_eq(fault.message, "bad input: x=1");
  cr_assert_eq(run_text(pool, "y", &out, &fault), SL_FAULT);
  sl_pool_stats stats;
  sl_pool_stats_get(pool, &stats);
  cr_assert_eq(stats.instances_created, 1, "an err result is not a trap: no new instance");
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

/* Each malformed result fails that event as bad-result; the next event works. */
static void check_wild(const char *payload) {
  sl_pool *pool = guest_pool("wild", NULL);
  expect_fault(pool, payload, SL_FAULT_BAD_RESULT);
  expect_one(pool, "fine", "fine");
  sl_pool_destroy(pool);
}

Test(abi_wild, result_pointer_outside_memory) { check_wild("result-oob"); }
Test(abi_wild, result_pointer_unaligned) { check_wild("result-unaligned"); }
Test(abi_wild, bad_discriminant) { check_wild("bad-disc"); }
Test(abi_wild, event_list_outside_memory) { check_wild("list-oob"); }
Test(abi_wild, event_list_length_overflows_32_bits) { check_wild("list-overflow"); }
Test(abi_wild, absurd_event_count) { check_wild("absurd-count"); }
Test(abi_wild, payload_outside_memory) { check_wild("payload-oob"); }
Test(abi_wild, payload_length_overflow) { check_wild("payload-len-overflow"); }
Test(abi_wild, metadata_list_outside_memory) { check_wild("meta-oob"); }
Test(abi_wild, metadata_string_outside_memory) { check_wild("meta-string-oob"); }
Test(abi_wild, metadata_not_utf8) { check_wild("meta-bad-utf8"); }
Test(abi_wild, error_string_outside_memory) { check_wild("err-oob"); }

Test(abi_wild, realloc_returning_a_pointer_past_memory_fails_the_event) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path("bad_realloc"));
  sl_pool *pool = NULL;
  sl_fault fault;
  sl_pool_options opts = {0};
  /* init is not exported, so creation succeeds; lowering the first event must fail. */
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_OK, "%s", fault.message);
  expect_fault(pool, "anything", SL_FAULT_BAD_RESULT);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
}
