/*
 * watchdog.c - stops guest calls that run longer than their time limit.
 *
 * wasm2c has no fuel or interruption, so codegen.c inserts a check at every function
 * entry and loop header that reads the instance's control block. This thread trips that
 * block when a call overruns. To keep the per-call cost at two counter increments, the
 * calling thread never reads a clock: each thread publishes a sequence number that is odd
 * during a call, and the watchdog, ticking at a quarter of the smallest limit, measures how
 * long it has seen the same odd number. A runaway call is therefore stopped between its
 * limit and 1.5 times its limit (one tick of lateness in noticing the call, one in
 * noticing the overrun, each a quarter limit).
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "wasm/runtime.h"

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_rt_thread *threads;
static bool started;

uint64_t sl__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define TICK_MIN_NS (1000000u) /* 1 ms */
#define WALL_BACKSTOP 10u      /* a call is stopped after this many limits of wall time */

/* The CPU time `t` has used; 0 when its clock cannot be read. */
static uint64_t thread_cpu_ns(const sl_rt_thread *t) {
  struct timespec ts;
  if (!t->has_cpu_clock || clock_gettime(t->cpu_clock, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define TICK_MAX_NS (25000000u) /* 25 ms, also the idle tick */

static void trip(sl_rt_thread *t, uint64_t seq) {
  pthread_mutex_lock(&t->lock);
  /* Re-check under the lock: the owner frees instances only while holding it. */
  if (atomic_load(&t->seq) == seq && t->watched_ctl) {
    atomic_store(&t->tripped_seq, seq);
    t->watched_ctl->trip = 1;
    t->watched_ctl->stack_limit = UINTPTR_MAX;
  }
  pthread_mutex_unlock(&t->lock);
}

static void *watchdog_main(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t now = sl__now_ns();
    uint64_t tick = TICK_MAX_NS;
    pthread_mutex_lock(&list_lock);
    for (sl_rt_thread *t = threads; t; t = t->next) {
      uint64_t seq = atomic_load_explicit(&t->seq, memory_order_acquire);
      uint64_t limit = atomic_load_explicit(&t->limit_ns, memory_order_relaxed);
      if (!(seq & 1) || !limit) continue;
      if (limit / 4 < tick) tick = limit / 4;
      if (seq != t->wd_last_seq) {
        t->wd_last_seq = seq;
        t->wd_first_seen_ns = now;
        t->wd_first_cpu_ns = thread_cpu_ns(t);
      } else if (now - t->wd_first_seen_ns >= limit && atomic_load(&t->tripped_seq) != seq) {
        /* Wall time alone would fail calls whose thread was merely descheduled on a busy
         * host; CPU time is what a runaway guest burns. The wall backstop catches a call
         * that blocks instead of running. */
        uint64_t cpu = thread_cpu_ns(t) - t->wd_first_cpu_ns;
        if (!t->has_cpu_clock || cpu >= limit || now - t->wd_first_seen_ns >= WALL_BACKSTOP * limit)
          trip(t, seq);
      }
    }
    pthread_mutex_unlock(&list_lock);
    if (tick < TICK_MIN_NS) tick = TICK_MIN_NS;
    struct timespec ts = {.tv_sec = (time_t)(tick / 1000000000u),
                          .tv_nsec = (long)(tick % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  return NULL;
}

void sl__watchdog_add(sl_rt_thread *t) {
  pthread_mutex_lock(&list_lock);
  t->next = threads;
  threads = t;
  if (!started) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&thread, &attr, watchdog_main, NULL) == 0)
      started = true;
    else
      fprintf(stderr, "sluice: cannot start the watchdog thread; time limits are off\n");
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_unlock(&list_lock);
}

void sl__watchdog_remove(sl_rt_thread *t) {
  pthread_mutex_lock(&list_lock);
  for (sl_rt_thread **p = &threads; *p; p = &(*p)->next) {
    if (*p == t) {
      *p = t->next;
      break;
    }
  }
  pthread_mutex_unlock(&list_lock);
}
