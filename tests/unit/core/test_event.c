/*
 * Event lists own their bytes in one arena.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "sluice/event.h"

Test(event_list, push_copies_and_clear) {
  sl_event_list list;
  sl_event_list_init(&list);
  for (int i = 0; i < 1000; i++) {
    uint8_t *payload;
    sl_meta *meta;
    cr_assert_eq(sl_event_list_push(&list, 100, 2, &payload, &meta), SL_OK);
    memset(payload, 'a' + i % 26, 100);
    cr_assert_eq(sl_event_list_copy(&list, "key", 3, &meta[0].key), SL_OK);
    cr_assert_eq(sl_event_list_copy(&list, "", 0, &meta[0].value), SL_OK);
  }
  cr_assert_eq(list.count, 1000);
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(list.items[i].payload.ptr[99], 'a' + i % 26);
    cr_assert_eq(list.items[i].meta_count, 2);
    cr_assert(memcmp(list.items[i].meta[0].key.ptr, "key", 3) == 0);
    cr_assert_eq(list.items[i].meta[1].key.len, 0, "unfilled pairs are empty");
  }
  sl_event_list_clear(&list);
  cr_assert_eq(list.count, 0);
  cr_assert_eq(list.arena.bytes, 0);
  uint8_t *big;
  cr_assert_eq(sl_event_list_push(&list, 8u << 20, 0, &big, NULL), SL_OK);
  big[(8u << 20) - 1] = 1;
  sl_event_list_destroy(&list);
}
