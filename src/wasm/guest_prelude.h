/*
 * guest_prelude.h - the contract between the host and every compiled guest.
 *
 * This file is compiled twice: into the host, and (embedded in the binary, see
 * guest_prelude_blob.S) at the top of every guest shim that codegen.c writes. Both sides
 * therefore agree on the layout below by construction. Change SL_GUEST_ABI_VERSION
 * whenever anything here changes: it is part of the artifact cache key.
 *
 * Layout of one instance in host memory:
 *
 *   [ sl_guest_ctl, padded to SL_GUEST_CTL_SIZE ][ wasm2c instance struct ... ]
 *                                                 ^ the `instance` pointer guest code sees
 *
 * so guest code finds its control block at a constant negative offset from `instance`,
 * which every wasm2c function already holds in a register. The checks inserted at
 * function entries and loop headers therefore cost one load and one compare.
 */
#ifndef SL_GUEST_PRELUDE_H
#define SL_GUEST_PRELUDE_H

#include <stddef.h>
#include <stdint.h>

#define SL_GUEST_ABI_VERSION 2

typedef struct sl_guest_ctl {
  /* Function entries trap (via sl_rt_guest_check) when the native stack pointer is below
   * this. The watchdog sets it to UINTPTR_MAX to stop a call that ran out of time, so the
   * very next function entry takes the slow path too. */
  volatile uintptr_t stack_limit;
  /* Set by the watchdog; loop headers test it. */
  volatile uint32_t trip;
  uint32_t reserved;
} sl_guest_ctl;

/* The instance struct starts this far after the control block (one cache line). */
#define SL_GUEST_CTL_SIZE 64

/* What a compiled guest exports to the host: one symbol, `sl_guest_exports`. Optional guest
 * exports are NULL. The instance pointers are the wasm2c instance structs. */
typedef struct sl_guest_api {
  uint32_t abi_version;
  uint32_t checks; /* 1 when compiled with interruption and stack checks */
  size_t instance_size;
  void (*init_module)(void);
  /* `ctx` is handed to every import module: the host's sl_instance (instance.h). */
  void (*instantiate)(void *instance, void *ctx);
  void (*free_instance)(void *instance);
  void *(*memory)(void *instance); /* returns wasm_rt_memory_t * */
  void (*initialize)(void *instance);
  uint32_t (*realloc)(void *instance, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                      uint32_t new_size);
  uint32_t (*process)(void *instance, uint32_t payload_ptr, uint32_t payload_len, uint32_t meta_ptr,
                      uint32_t meta_count);
  void (*post_process)(void *instance, uint32_t result_ptr);
  uint32_t (*init)(void *instance, uint32_t cfg_ptr, uint32_t cfg_count);
  void (*post_init)(void *instance, uint32_t result_ptr);
} sl_guest_api;

/* Host slow path, called by guest code when a check fires. Either returns (the check was
 * stale) or does not return (it traps with a timeout or stack-exhausted fault). */
void sl_rt_guest_check(void *instance);

#ifdef SL_GUEST_BUILD
static inline uintptr_t sl_guest_sp(void) {
  uintptr_t sp;
#if defined(__x86_64__)
  __asm__("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
  __asm__("mov %0, sp" : "=r"(sp));
#else
  sp = (uintptr_t)__builtin_frame_address(0);
#endif
  return sp;
}
#define SL_CTL(inst) ((sl_guest_ctl *)((char *)(inst)-SL_GUEST_CTL_SIZE))
#if SL_GUEST_CHECKS
#define SL_ENTRY_CHECK()                                                                           \
  do {                                                                                             \
    if (__builtin_expect(sl_guest_sp() < SL_CTL(instance)->stack_limit, 0))                        \
      sl_rt_guest_check(instance);                                                                 \
  } while (0)
#define SL_LOOP_CHECK()                                                                            \
  do {                                                                                             \
    if (__builtin_expect(SL_CTL(instance)->trip != 0, 0)) sl_rt_guest_check(instance);             \
  } while (0)
#else
#define SL_ENTRY_CHECK() ((void)0)
#define SL_LOOP_CHECK() ((void)0)
#endif
#endif /* SL_GUEST_BUILD */

#endif
