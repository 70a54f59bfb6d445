/*
 * runtime.h - Sluice's implementation of wasm2c's runtime interface (wasm-rt.h), made safe
 * for several worker threads, plus the per-thread call guard the engine uses.
 *
 * wabt's own wasm-rt-impl.c keeps trap state in process globals and installs one signal
 * stack, so it cannot serve several threads running guests at once. Here every thread
 * that runs guest code gets its own `sl_rt_thread`: its trap jump buffer, its alternate
 * signal stack, its time-limit slot for the watchdog, and the limits of the current call.
 *
 * Guest linear memories are reserved at 8 GiB of address space with no access rights and
 * committed page by page as they grow, so wasm2c's generated code needs no bounds checks:
 * a stray access lands on a guard page, the SIGSEGV handler sees the thread is inside a
 * guest call and jumps back to the call guard with an out-of-bounds fault.
 */
#ifndef SL_WASM_RUNTIME_H
#define SL_WASM_RUNTIME_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sluice/engine.h"
#include "wasm/guest_prelude.h"

typedef struct sl_rt_thread {
  /* The active call guard; NULL outside a guarded call. */
  sigjmp_buf *jmp;
  /* Non-zero while control is inside guest code (or host imports it called). */
  volatile int in_guest;

  /* Limits of the current call. */
  sl_guest_ctl *ctl;
  uintptr_t stack_limit;
  uint32_t memory_limit_pages; /* read by wasm_rt_allocate_memory during instantiation */
  bool grow_failed;            /* memory.grow hit the ceiling during this call */
  char detail[256];            /* extra words for the fault message, set before a trap */

  /* Watchdog slot. `seq` is odd while a call runs; the watchdog trips a call whose seq
   * it has seen unchanged while the thread used `limit_ns` of CPU time (or ten times
   * that in wall time, for a call blocked rather than running). `lock` orders a trip
   * against the owner freeing the instance whose control block the watchdog would write. */
  _Atomic uint64_t seq;
  _Atomic uint64_t tripped_seq;
  _Atomic uint64_t limit_ns;
  sl_guest_ctl *watched_ctl; /* guarded by lock */
  pthread_mutex_t lock;
  uint64_t wd_last_seq;      /* watchdog-private */
  uint64_t wd_first_seen_ns; /* watchdog-private */
  uint64_t wd_first_cpu_ns;  /* watchdog-private: the thread's CPU clock at first sight */
  clockid_t cpu_clock;       /* this thread's CPU-time clock */
  bool has_cpu_clock;
  struct sl_rt_thread *next; /* watchdog list, guarded by its mutex */

  /* Native stack bounds of this thread, to tell stack overflow from other faults. */
  uintptr_t stack_lo, stack_hi;
  void *altstack;
  size_t altstack_size;
} sl_rt_thread;

/* The calling thread's runtime state, created on first use (and freed at thread exit).
 * Returns NULL only if the host is out of memory. */
sl_rt_thread *sl__rt_thread(void);

/* Installs the fault signal handlers once per process. Safe to call repeatedly. */
void sl__rt_global_init(void);

/*
 * Call guard. Usage (the jump buffer must live in the caller's frame):
 *
 *   sigjmp_buf jb;
 *   sl__rt_call_begin(t, ctl, &limits);
 *   t->jmp = &jb;
 *   int code = sigsetjmp(jb, 0);
 *   if (code == 0) { ... guest calls ... }
 *   sl__rt_call_end(t);
 *   // code is 0 or an sl_fault_kind
 *
 * sigsetjmp does not save the signal mask (saving it costs a system call per event);
 * the fault handler is installed with SA_NODEFER so no signal stays blocked after the
 * jump out of it.
 */
void sl__rt_call_begin(sl_rt_thread *t, sl_guest_ctl *ctl, const sl_limits *limits);
void sl__rt_call_end(sl_rt_thread *t);

/* Traps the current guarded call with `kind`; never returns. `detail` may be NULL. */
__attribute__((noreturn)) void sl__rt_trap(sl_fault_kind kind, const char *detail);

/* Before freeing an instance: makes sure the watchdog no longer points at its ctl. */
void sl__rt_forget_ctl(sl_rt_thread *t, sl_guest_ctl *ctl);

/* Bytes of address space reserved per linear memory (8 GiB covers every u32 address plus
 * u32 offset wasm2c can form, so no access escapes the reservation). */
#define SL_RT_MEMORY_RESERVE ((uint64_t)8 << 30)

/* watchdog.c */
void sl__watchdog_add(sl_rt_thread *t);
void sl__watchdog_remove(sl_rt_thread *t);
uint64_t sl__now_ns(void);

#endif
