/*
 * The file source's checkpoint: acknowledgements in any order advance the position over
 * the longest acknowledged prefix only; moving to another file; acks from many threads;
 * and the checkpoint file (exact format, atomic replace, missing and corrupt files).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/file/checkpoint.h"

static sl_file_pos at(uint64_t ino, uint64_t offset) { return (sl_file_pos){ino, offset}; }

static void assert_pos(sl_checkpoint *cp, uint64_t ino, uint64_t offset) {
  sl_file_pos pos = sl__checkpoint_position(cp);
  cr_assert(pos.ino == ino && pos.offset == offset,
            "expected ino %llu offset %llu, got ino %llu offset %llu", (unsigned long long)ino,
            (unsigned long long)offset, (unsigned long long)pos.ino,
            (unsigned long long)pos.offset);
}

Test(checkpoint_ranges, in_order_acks_advance_one_by_one) {
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(7, 100));
  assert_pos(&cp, 7, 100);
  uint64_t a = sl__checkpoint_add(&cp, at(7, 150));
  uint64_t b = sl__checkpoint_add(&cp, at(7, 230));
  cr_assert_eq(sl__checkpoint_pending(&cp), 2);
  sl__checkpoint_done(&cp, a);
  assert_pos(&cp, 7, 150);
  sl__checkpoint_done(&cp, b);
  assert_pos(&cp, 7, 230);
  cr_assert_eq(sl__checkpoint_pending(&cp), 0);
  sl__checkpoint_destroy(&cp);
}

Test(checkpoint_ranges, out_of_order_acks_wait_for_the_prefix) {
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(7, 0));
  uint64_t seq[4];
  for (int i = 0; i < 4; i++) seq[i] = sl__checkpoint_add(&cp, at(7, 10 * (uint64_t)(i + 1)));
  sl__checkpoint_done(&cp, seq[2]); /* a filtered batch overtook the others */
  sl__checkpoint_done(&cp, seq[3]);
  assert_pos(&cp, 7, 0);
  cr_assert_eq(sl__checkpoint_pending(&cp), 2);
  sl__checkpoint_done(&cp, seq[1]);
  assert_pos(&cp, 7, 0); /* the first is still out */
  sl__checkpoint_done(&cp, seq[0]);
  assert_pos(&cp, 7, 40); /* all four at once */
  cr_assert_eq(sl__checkpoint_pending(&cp), 0);
  sl__checkpoint_destroy(&cp);
}

Test(checkpoint_ranges, repeated_and_unknown_acks_are_ignored) {
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(1, 0));
  uint64_t a = sl__checkpoint_add(&cp, at(1, 5));
  uint64_t b = sl__checkpoint_add(&cp, at(1, 9));
  sl__checkpoint_done(&cp, a);
  sl__checkpoint_done(&cp, a);
  sl__checkpoint_done(&cp, 12345);
  assert_pos(&cp, 1, 5);
  cr_assert_eq(sl__checkpoint_pending(&cp), 1);
  sl__checkpoint_done(&cp, b);
  assert_pos(&cp, 1, 9);
  sl__checkpoint_destroy(&cp);
}

Test(checkpoint_ranges, moving_to_another_file_waits_for_the_old_one) {
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(1, 0));
  uint64_t old_last = sl__checkpoint_add(&cp, at(1, 500));
  sl__checkpoint_move(&cp, at(2, 0)); /* rotated: the new file from 0 */
  assert_pos(&cp, 1, 0);
  uint64_t first_new = sl__checkpoint_add(&cp, at(2, 40));
  sl__checkpoint_done(&cp, old_last);
  assert_pos(&cp, 2, 0); /* the old file is done; nothing of the new one acked yet */
  sl__checkpoint_done(&cp, first_new);
  assert_pos(&cp, 2, 40);
  /* Truncated: the same inode from 0 again. */
  sl__checkpoint_move(&cp, at(2, 0));
  assert_pos(&cp, 2, 0);
  cr_assert_eq(sl__checkpoint_pending(&cp), 0);
  sl__checkpoint_destroy(&cp);
}

Test(checkpoint_ranges, the_ring_grows_past_its_first_size) {
  enum { N = 5000 };
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(3, 0));
  /* Wrap the ring a few times first so growth has to unwrap it. */
  for (uint64_t i = 0; i < 100; i++)
    sl__checkpoint_done(&cp, sl__checkpoint_add(&cp, at(3, i + 1)));
  assert_pos(&cp, 3, 100);
  uint64_t first = 0;
  for (uint64_t i = 0; i < N; i++) {
    uint64_t seq = sl__checkpoint_add(&cp, at(3, 101 + i));
    if (i == 0) first = seq;
  }
  for (uint64_t i = N - 1; i >= 1; i--) sl__checkpoint_done(&cp, first + i);
  assert_pos(&cp, 3, 100);
  cr_assert_eq(sl__checkpoint_pending(&cp), 1);
  sl__checkpoint_done(&cp, first);
  assert_pos(&cp, 3, 100 + N);
  sl__checkpoint_destroy(&cp);
}

typedef struct acker {
  sl_checkpoint *cp;
  uint64_t first;
  int stride, offset, count;
} acker;

static void *ack_some(void *arg) {
  acker *a = arg;
  /* Backwards, so every thread acks out of order. */
  for (int i = a->count - 1 - a->offset; i >= 0; i -= a->stride)
    sl__checkpoint_done(a->cp, a->first + (uint64_t)i);
  return NULL;
}

Test(checkpoint_ranges, acks_from_many_threads) {
  enum { N = 20000, THREADS = 4 };
  sl_checkpoint cp;
  sl__checkpoint_init(&cp, at(9, 0));
  uint64_t first = sl__checkpoint_add(&cp, at(9, 1));
  for (uint64_t i = 1; i < N; i++) sl__checkpoint_add(&cp, at(9, i + 1));
  pthread_t threads[THREADS];
  acker ackers[THREADS];
  for (int t = 0; t < THREADS; t++) {
    ackers[t] = (acker){&cp, first, THREADS, t, N};
    pthread_create(&threads[t], NULL, ack_some, &ackers[t]);
  }
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  assert_pos(&cp, 9, N);
  cr_assert_eq(sl__checkpoint_pending(&cp), 0);
  sl__checkpoint_destroy(&cp);
}

/* --- the checkpoint file --------------------------------------------------------- */

static char folder[64];
static char cp_path[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void make_folder(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-checkpoint-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(cp_path, sizeof cp_path, "%s/in.offset", folder);
}

static void remove_folder(void) { nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

TestSuite(checkpoint_file, .init = make_folder, .fini = remove_folder);

static void write_text(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fwrite(text, 1, len, f);
  fclose(f);
}

Test(checkpoint_file, round_trip_in_the_documented_format) {
  sl_error err = {{0}};
  cr_assert_eq(sl__checkpoint_save(cp_path, at(1234, 5678), &err), SL_OK, "%s", err.message);
  char text[64] = {0};
  FILE *f = fopen(cp_path, "r");
  cr_assert_not_null(fgets(text, sizeof text, f));
  fclose(f);
  cr_assert_str_eq(text, "ino 1234 offset 5678\n");
  sl_file_pos pos = {0};
  cr_assert_eq(sl__checkpoint_load(cp_path, &pos, &err), SL_OK, "%s", err.message);
  cr_assert(pos.ino == 1234 && pos.offset == 5678);

  /* Replaced, not appended; no temporary file left behind. */
  cr_assert_eq(sl__checkpoint_save(cp_path, at(UINT64_MAX, 0), &err), SL_OK, "%s", err.message);
  cr_assert_eq(sl__checkpoint_load(cp_path, &pos, &err), SL_OK, "%s", err.message);
  cr_assert(pos.ino == UINT64_MAX && pos.offset == 0);
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp", cp_path);
  cr_assert_neq(access(tmp, F_OK), 0);
}

Test(checkpoint_file, missing_is_not_found) {
  sl_file_pos pos = {42, 42};
  sl_error err = {{0}};
  cr_assert_eq(sl__checkpoint_load(cp_path, &pos, &err), SL_NOT_FOUND);
  cr_assert(pos.ino == 42 && pos.offset == 42, "untouched");
}

Test(checkpoint_file, corrupt_files_are_invalid_and_say_where) {
  static const struct {
    const char *text;
    size_t len;
  } cases[] = {
      {"", 0},
      {"\n", 1},
      {"ino 1 offset 2", 14}, /* torn: no newline */
      {"ino 1 offset\n", 13},
      {"ino x offset 2\n", 15},
      {"ino -1 offset 2\n", 16},
      {"ino 1 offset 2\nino 3 offset 4\n", 30},
      {"ino 1 offset 2 \n", 16},
      {"ino  1 offset 2\n", 16},
      {"ino 1 offset 2\0\n", 16},
      {"ino 18446744073709551616 offset 2\n", 34}, /* one past UINT64_MAX */
      {"offset 2 ino 1\n", 15},
      {"\xff\xfe garbage", 10},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_text(cp_path, cases[i].text, cases[i].len);
    sl_file_pos pos = {42, 42};
    sl_error err = {{0}};
    cr_assert_eq(sl__checkpoint_load(cp_path, &pos, &err), SL_INVALID, "case %zu accepted", i);
    cr_assert(strstr(err.message, cp_path), "case %zu: %s", i, err.message);
    cr_assert(pos.ino == 42 && pos.offset == 42, "case %zu: pos touched", i);
  }
  /* A very long file is not read whole, and not accepted. */
  char big[4096];
  memset(big, '1', sizeof big);
  write_text(cp_path, big, sizeof big);
  sl_file_pos pos;
  cr_assert_eq(sl__checkpoint_load(cp_path, &pos, NULL), SL_INVALID);
}

Test(checkpoint_file, the_largest_values_load) {
  write_text(cp_path, "ino 18446744073709551615 offset 0\n", 34);
  sl_file_pos pos;
  sl_error err = {{0}};
  cr_assert_eq(sl__checkpoint_load(cp_path, &pos, &err), SL_OK, "%s", err.message);
  cr_assert_eq(pos.ino, UINT64_MAX);
}

Test(checkpoint_file, saving_into_a_missing_folder_is_an_io_error) {
  char path[192];
  snprintf(path, sizeof path, "%s/gone/in.offset", folder);
  sl_error err = {{0}};
  cr_assert_eq(sl__checkpoint_save(path, at(1, 2), &err), SL_IO);
  cr_assert(strstr(err.message, path), "%s", err.message);
}

Test(checkpoint_file, a_folder_in_the_way_is_an_error_not_a_crash) {
  cr_assert_eq(mkdir(cp_path, 0755), 0);
  sl_file_pos pos;
  sl_error err = {{0}};
  sl_status status = sl__checkpoint_load(cp_path, &pos, &err);
  cr_assert(status == SL_IO || status == SL_INVALID, "%s", sl_status_name(status));
  cr_assert_eq(sl__checkpoint_save(cp_path, at(1, 2), &err), SL_IO);
  cr_assert(strstr(err.message, cp_path), "%s", err.message);
}
