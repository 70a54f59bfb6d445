/*
 * The scalar parsers behind the settings tables, and did-you-mean.
 */
#include <criterion/criterion.h>

#include "config/conf_fields.h"
#include "config/suggest.h"

Test(conf_fields, sizes) {
  static const struct {
    const char *text;
    uint64_t bytes;
  } good[] = {
      {"0", 0},
      {"1048576", 1048576},
      {"64MiB", 64ull << 20},
      {"512KiB", 512ull << 10},
      {"1GiB", 1ull << 30},
      {"2TiB", 2ull << 40},
      {"10MB", 10ull * 1000 * 1000},
      {"10KB", 10000},
      {"3GB", 3000000000ull},
      {"7B", 7},
      {"64 MiB", 64ull << 20},
      {"18446744073709551615", UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint64_t bytes = 1;
    cr_assert(sl__conf_parse_size(good[i].text, &bytes), "%s", good[i].text);
    cr_assert_eq(bytes, good[i].bytes, "%s", good[i].text);
  }
  static const char *const bad[] = {"",
                                    "-1",
                                    "1.5GiB",
                                    "MiB",
                                    "10mb",
                                    "10 ",
                                    "1 2",
                                    "0x10",
                                    "64Mi",
                                    "1e6",
                                    "16EiB",
                                    "18446744073709551616",
                                    "17179869184GiB"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t bytes;
    cr_assert_not(sl__conf_parse_size(bad[i], &bytes), "'%s' should be rejected", bad[i]);
  }
}

Test(conf_fields, durations) {
  static const struct {
    const char *text;
    uint64_t ms;
  } good[] = {{"0", 0},           {"250", 250},     {"250ms", 250},
              {"5s", 5000},       {"2m", 120000},   {"1h", 3600000},
              {"1h30m", 5400000}, {"1m30s", 90000}, {"2s500ms", 2500}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint64_t ms = 1;
    cr_assert(sl__conf_parse_duration(good[i].text, &ms), "%s", good[i].text);
    cr_assert_eq(ms, good[i].ms, "%s", good[i].text);
  }
  static const char *const bad[] = {"", "5x", "-5s", "s", "1.5s", "5 s", "1h30", "10d", "ms"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t ms;
    cr_assert_not(sl__conf_parse_duration(bad[i], &ms), "'%s' should be rejected", bad[i]);
  }
}

Test(conf_fields, integers) {
  int64_t n;
  cr_assert(sl__conf_parse_int("42", &n) && n == 42);
  cr_assert(sl__conf_parse_int("-12", &n) && n == -12);
  cr_assert(sl__conf_parse_int("+3", &n) && n == 3);
  cr_assert(sl__conf_parse_int("9223372036854775807", &n) && n == INT64_MAX);
  cr_assert(sl__conf_parse_int("-9223372036854775808", &n) && n == INT64_MIN);
  static const char *const bad[] = {"",
                                    "-",
                                    "12x",
                                    "1.5",
                                    "1e3",
                                    " 1",
                                    "0x1",
                                    "1 ",
                                    "9223372036854775808",
                                    "-9223372036854775809"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_not(sl__conf_parse_int(bad[i], &n), "'%s' should be rejected", bad[i]);
}

Test(conf_fields, booleans_are_true_or_false_only) {
  bool b;
  cr_assert(sl__conf_parse_bool("true", &b) && b);
  cr_assert(sl__conf_parse_bool("False", &b) && !b);
  static const char *const bad[] = {"yes", "no", "on", "off", "1", "0", "y", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_not(sl__conf_parse_bool(bad[i], &b), "'%s' should be rejected", bad[i]);
}

Test(conf_fields, conf_map_get) {
  char *keys[] = {"a", "b"}, *values[] = {"1", "2"};
  sl_conf_map map = {keys, values, 2};
  cr_assert_str_eq(sl_conf_map_get(&map, "b"), "2");
  cr_assert_null(sl_conf_map_get(&map, "c"));
  sl_conf_map empty = {0};
  cr_assert_null(sl_conf_map_get(&empty, "a"));
}

Test(suggest, edit_distance) {
  cr_assert_eq(sl__edit_distance("path", "path"), 0);
  cr_assert_eq(sl__edit_distance("pth", "path"), 1);
  cr_assert_eq(sl__edit_distance("wsam", "wasm"), 1, "a transposition is one edit");
  cr_assert_eq(sl__edit_distance("Path", "path"), 0, "case is ignored");
  cr_assert_eq(sl__edit_distance("", "abc"), 3);
  cr_assert_eq(sl__edit_distance("kitten", "sitting"), 3);
}

Test(suggest, close_matches_only) {
  static const char *const keys[] = {"path", "follow", "start_at", "checkpoint", "poll_interval"};
  cr_assert_str_eq(sl__suggest("pth", keys, 5), "path");
  cr_assert_str_eq(sl__suggest("folow", keys, 5), "follow");
  cr_assert_str_eq(sl__suggest("check_point", keys, 5), "checkpoint");
  cr_assert_str_eq(sl__suggest("pol_intervall", keys, 5), "poll_interval");
  cr_assert_null(sl__suggest("colour", keys, 5));
  static const char *const ids[] = {"in", "out"};
  cr_assert_str_eq(sl__suggest("inn", ids, 2), "in");
  cr_assert_null(sl__suggest("xy", ids, 2), "two edits on two letters is a rewrite");
  char hint[128];
  cr_assert_str_eq(sl__hint(hint, sizeof hint, "zz", ids, 2, "nodes"), " (nodes: in, out)");
  cr_assert_str_eq(sl__hint(hint, sizeof hint, "ot", ids, 2, "nodes"), " (did you mean 'out'?)");
  cr_assert_str_eq(sl__hint(hint, sizeof hint, "ot", ids, 0, "nodes"), "");
}
