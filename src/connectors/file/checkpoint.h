/*
 * checkpoint.h - where a file source may resume: the acknowledged prefix of what it
 * emitted, and the small file that keeps it across restarts.
 *
 * A file source emits batches that each cover bytes [start, end) of one file (one
 * inode). Acknowledgements come back in any order and on any thread. The position that
 * is safe to resume from is the end of the longest run of acknowledged batches, counted
 * from the first one: everything before it was delivered, something after it may not
 * have been. sl__checkpoint tracks that run; sl__checkpoint_save/load keep the position
 * in `<state_dir>/<node id>.offset` as one line, "ino 1234 offset 5678\n".
 *
 * The tracker does no I/O and knows nothing of the source, so it is tested on its own
 * (tests/unit/connectors/test_checkpoint.c).
 */
#ifndef SL_CONNECTORS_FILE_CHECKPOINT_H
#define SL_CONNECTORS_FILE_CHECKPOINT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* A place in a file: its inode and a byte offset from its start. */
typedef struct sl_file_pos {
  uint64_t ino;
  uint64_t offset;
} sl_file_pos;

/* One emitted batch (or a marker, see sl__checkpoint_move), oldest first. */
typedef struct sl_checkpoint_range {
  sl_file_pos end; /* where the batch ends: the position once it is acknowledged */
  bool done;       /* acknowledged (successfully or not) */
} sl_checkpoint_range;

/*
 * Emitted-but-unresolved batches in a ring, in emission order. Batch `seq` (the value
 * sl__checkpoint_add returned) sits at ring index (head + seq - head_seq) % cap. Every
 * field is guarded by `lock`; the functions below take it themselves.
 */
typedef struct sl_checkpoint {
  pthread_mutex_t lock;
  sl_checkpoint_range *ring;
  size_t head, count, cap;
  uint64_t head_seq; /* sequence number of ring[head] */
  uint64_t next_seq; /* sequence number the next sl__checkpoint_add returns */
  sl_file_pos acked; /* end of the longest acknowledged prefix */
} sl_checkpoint;

/* Starts with nothing in flight and `acked` = `start`. Free with sl__checkpoint_destroy. */
void sl__checkpoint_init(sl_checkpoint *cp, sl_file_pos start);
void sl__checkpoint_destroy(sl_checkpoint *cp);

/*
 * Records a batch about to be emitted that ends at `end` (call it before the emit: the
 * ack may arrive before the emit returns). Returns the batch's sequence number, to be
 * handed to sl__checkpoint_done exactly once. Aborts only if the host is out of memory.
 */
uint64_t sl__checkpoint_add(sl_checkpoint *cp, sl_file_pos end);

/*
 * Marks batch `seq` acknowledged and advances `acked` over every leading acknowledged
 * batch. Any thread. An unknown or repeated `seq` is ignored.
 */
void sl__checkpoint_done(sl_checkpoint *cp, uint64_t seq);

/*
 * Moves to another file (or to offset 0 of a truncated one): once every batch emitted
 * before this call is acknowledged, the position becomes `pos`, even before a batch of
 * the new file is. Without it, a restart after the old file's last ack would compare
 * the old inode with the new file's and read the new file from 0 again.
 */
void sl__checkpoint_move(sl_checkpoint *cp, sl_file_pos pos);

/* The end of the longest acknowledged prefix. */
sl_file_pos sl__checkpoint_position(sl_checkpoint *cp);

/* Batches emitted and not acknowledged yet. */
size_t sl__checkpoint_pending(sl_checkpoint *cp);

/*
 * Writes `pos` to `path` atomically: a temporary file in the same folder ("PATH.tmp"),
 * fdatasync, then rename over PATH, so a reader sees the old or the new line, never a
 * torn one. SL_IO with the path and the reason.
 */
sl_status sl__checkpoint_save(const char *path, sl_file_pos pos, sl_error *err);

/*
 * Reads a position written by sl__checkpoint_save.
 * Statuses: SL_OK; SL_NOT_FOUND when there is no file (no checkpoint yet); SL_INVALID
 * when the file is not one line "ino N offset M" (err says so, with the path); SL_IO.
 */
sl_status sl__checkpoint_load(const char *path, sl_file_pos *pos, sl_error *err);

#endif
