/*
 * runtime.c - the wasm-rt.h interface that wasm2c-generated code calls, implemented for
 * many threads (see runtime.h for why wabt's own implementation does not fit).
 *
 * Sections: per-thread state; fault signals; traps and the call guard; linear memory;
 * tables; function types; exceptions.
 */
#include "wasm/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wasm-rt.h"

/* ---- per-thread state ------------------------------------------------------------- */

static __thread sl_rt_thread *tls_thread;
static pthread_key_t thread_key;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool rt_initialized;

#define ALTSTACK_SIZE (64 * 1024)

static void thread_free(void *arg) {
  sl_rt_thread *t = arg;
  sl__watchdog_remove(t);
  if (t->altstack) {
    stack_t disable = {.ss_flags = SS_DISABLE};
    sigaltstack(&disable, NULL);
    munmap(t->altstack, t->altstack_size);
  }
  pthread_mutex_destroy(&t->lock);
  free(t);
  tls_thread = NULL;
}

/* Gives the thread an alternate signal stack unless it already has a big enough one
 * (AddressSanitizer installs its own), so a guest that overflows the native stack can
 * still be caught by the fault handler. */
static void thread_altstack(sl_rt_thread *t) {
  stack_t current;
  if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
      current.ss_size >= 16 * 1024)
    return;
  void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return; /* faults then fall back to the default action */
  stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(mem, ALTSTACK_SIZE);
    return;
  }
  t->altstack = mem;
  t->altstack_size = ALTSTACK_SIZE;
}

static void thread_stack_bounds(sl_rt_thread *t) {
  pthread_attr_t attr;
  void *addr = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  t->stack_lo = (uintptr_t)addr;
  t->stack_hi = (uintptr_t)addr + size;
}

sl_rt_thread *sl__rt_thread(void) {
  if (__builtin_expect(tls_thread != NULL, 1)) return tls_thread;
  sl__rt_global_init();
  sl_rt_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  pthread_mutex_init(&t->lock, NULL);
  thread_stack_bounds(t);
  thread_altstack(t);
  t->has_cpu_clock = pthread_getcpuclockid(pthread_self(), &t->cpu_clock) == 0;
  tls_thread = t;
  pthread_setspecific(thread_key, t);
  sl__watchdog_add(t);
  return t;
}

/* ---- fault signals ----------------------------------------------------------------- */

static struct sigaction previous_segv, previous_bus;

/* A fault inside a guest call becomes a trap of that call. A fault anywhere else is a host
 * bug: the previous handler is restored and the faulting instruction runs again, so the
 * process dies (or AddressSanitizer reports) exactly as it would without Sluice. */
static void on_fault_signal(int sig, siginfo_t *info, void *context) {
  (void)context;
  sl_rt_thread *t = tls_thread;
  if (t && t->jmp && t->in_guest) {
    uintptr_t addr = (uintptr_t)info->si_addr;
    /* The guard below a thread stack is a few pages; a fault within 1 MiB under the stack
     * or at its lowest pages is an overflow of the native stack. */
    bool stack = t->stack_lo && addr < t->stack_lo + 64 * 1024 && addr + (1u << 20) > t->stack_lo;
    t->in_guest = 0;
    siglongjmp(*t->jmp, stack ? SL_FAULT_STACK_EXHAUSTED : SL_FAULT_OUT_OF_BOUNDS);
  }
  sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, NULL);
}

static void global_init_once(void) {
  pthread_key_create(&thread_key, thread_free);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
  sigaction(SIGBUS, &sa, &previous_bus);
  rt_initialized = true;
}

void sl__rt_global_init(void) { pthread_once(&global_once, global_init_once); }

void wasm_rt_init(void) { sl__rt_global_init(); }
bool wasm_rt_is_initialized(void) { return rt_initialized; }
void wasm_rt_free(void) {}

/* ---- traps and the call guard ------------------------------------------------------ */

void sl__rt_call_begin(sl_rt_thread *t, sl_guest_ctl *ctl, const sl_limits *limits) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  /* Keep 128 KiB below the guest for host imports and the fault handler's own needs. */
  uintptr_t floor = t->stack_lo ? t->stack_lo + 128 * 1024 : 0;
  uintptr_t limit = sp > limits->stack_bytes ? sp - limits->stack_bytes : 0;
  if (limit < floor) limit = floor;
  t->ctl = ctl;
  t->stack_limit = limit;
  t->grow_failed = false;
  t->detail[0] = '\0';
  t->memory_limit_pages = (uint32_t)(limits->memory_bytes >> 16);
  ctl->trip = 0;
  ctl->stack_limit = limit;
  atomic_store_explicit(&t->limit_ns, (uint64_t)limits->time_ms * 1000000u, memory_order_relaxed);
  if (t->watched_ctl != ctl) {
    pthread_mutex_lock(&t->lock);
    t->watched_ctl = ctl;
    pthread_mutex_unlock(&t->lock);
  }
  atomic_fetch_add_explicit(&t->seq, 1, memory_order_release); /* odd: in a call */
}

void sl__rt_call_end(sl_rt_thread *t) {
  t->in_guest = 0;
  t->jmp = NULL;
  atomic_fetch_add_explicit(&t->seq, 1, memory_order_release); /* even: idle */
}

void sl__rt_forget_ctl(sl_rt_thread *t, sl_guest_ctl *ctl) {
  pthread_mutex_lock(&t->lock);
  if (t->watched_ctl == ctl) t->watched_ctl = NULL;
  pthread_mutex_unlock(&t->lock);
}

void sl__rt_trap(sl_fault_kind kind, const char *detail) {
  sl_rt_thread *t = tls_thread;
  if (!t || !t->jmp) {
    /* A trap outside any guard can only come from a host bug. */
    fprintf(stderr, "sluice: internal error: Wasm trap (%s) outside a guarded call\n",
            sl_fault_name(kind));
    abort();
  }
  if (detail) snprintf(t->detail, sizeof t->detail, "%s", detail);
  t->in_guest = 0;
  siglongjmp(*t->jmp, (int)kind);
}

void wasm_rt_trap(wasm_rt_trap_t code) {
  sl_fault_kind kind;
  switch (code) {
  case WASM_RT_TRAP_OOB:
    kind = SL_FAULT_OUT_OF_BOUNDS;
    break;
  case WASM_RT_TRAP_INT_OVERFLOW:
    kind = SL_FAULT_INTEGER_OVERFLOW;
    break;
  case WASM_RT_TRAP_DIV_BY_ZERO:
    kind = SL_FAULT_DIVIDE_BY_ZERO;
    break;
  case WASM_RT_TRAP_INVALID_CONVERSION:
    kind = SL_FAULT_INVALID_CONVERSION;
    break;
  case WASM_RT_TRAP_UNREACHABLE:
    kind = SL_FAULT_UNREACHABLE;
    break;
  case WASM_RT_TRAP_CALL_INDIRECT:
    kind = SL_FAULT_BAD_INDIRECT_CALL;
    break;
  case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
    kind = SL_FAULT_UNCAUGHT_EXCEPTION;
    break;
  case WASM_RT_TRAP_EXHAUSTION:
    kind = SL_FAULT_STACK_EXHAUSTED;
    break;
  default:
    kind = SL_FAULT_UNREACHABLE;
    break;
  }
  sl__rt_trap(kind, NULL);
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
  case WASM_RT_TRAP_NONE:
    return "no error";
  case WASM_RT_TRAP_OOB:
    return "out-of-bounds access";
  case WASM_RT_TRAP_INT_OVERFLOW:
    return "integer overflow";
  case WASM_RT_TRAP_DIV_BY_ZERO:
    return "integer divide by zero";
  case WASM_RT_TRAP_INVALID_CONVERSION:
    return "invalid conversion to integer";
  case WASM_RT_TRAP_UNREACHABLE:
    return "unreachable executed";
  case WASM_RT_TRAP_CALL_INDIRECT:
    return "invalid call_indirect";
  case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
    return "uncaught exception";
  case WASM_RT_TRAP_EXHAUSTION:
    return "call stack exhausted";
  }
  return "unknown trap";
}

/* The slow path of the checks codegen.c inserts at function entries and loop headers. */
void sl_rt_guest_check(void *instance) {
  sl_guest_ctl *ctl = (sl_guest_ctl *)((char *)instance - SL_GUEST_CTL_SIZE);
  sl_rt_thread *t = tls_thread;
  if (!t || !t->jmp) abort(); /* guest code only runs inside a guard */
  if (ctl->trip) {
    uint64_t seq = atomic_load(&t->seq);
    if (atomic_load(&t->tripped_seq) == seq) {
      char detail[96];
      snprintf(detail, sizeof detail, "the call ran longer than its %llu ms limit",
               (unsigned long long)(atomic_load(&t->limit_ns) / 1000000u));
      sl__rt_trap(SL_FAULT_TIMEOUT, detail);
    }
    ctl->trip = 0; /* a trip aimed at an earlier call that ended in time */
  }
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (sp < t->stack_limit)
    sl__rt_trap(SL_FAULT_STACK_EXHAUSTED, "the call used more native stack than its limit");
  ctl->stack_limit = t->stack_limit;
}

/* ---- linear memory ----------------------------------------------------------------- */

#define PAGE_SIZE_WASM 65536u

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
  sl_rt_thread *t = tls_thread;
  uint32_t ceiling = t && t->memory_limit_pages ? t->memory_limit_pages : 65536;
  /* wasm_rt_memory_t.size is 32 bits, so 4 GiB itself is not representable. */
  if (max_pages > 65535) max_pages = 65535;
  if (max_pages > ceiling) max_pages = ceiling;
  memset(memory, 0, sizeof *memory);
  if (initial_pages > max_pages) {
    char detail[160];
    snprintf(detail, sizeof detail,
             "the module needs %u pages (%u KiB) of initial memory; the limit allows %u",
             initial_pages, initial_pages * 64, max_pages);
    sl__rt_trap(SL_FAULT_OUT_OF_MEMORY, detail);
  }
  void *base = mmap(NULL, SL_RT_MEMORY_RESERVE, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) sl__rt_trap(SL_FAULT_OUT_OF_MEMORY, "cannot reserve address space");
  uint64_t bytes = (uint64_t)initial_pages * PAGE_SIZE_WASM;
  if (bytes && mprotect(base, bytes, PROT_READ | PROT_WRITE) != 0) {
    munmap(base, SL_RT_MEMORY_RESERVE);
    sl__rt_trap(SL_FAULT_OUT_OF_MEMORY, "cannot commit initial memory");
  }
  memory->data = base;
  memory->pages = initial_pages;
  memory->max_pages = max_pages;
  memory->size = (uint32_t)bytes;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
  uint32_t old_pages = memory->pages;
  uint64_t new_pages = (uint64_t)old_pages + delta;
  if (delta == 0) return old_pages;
  if (new_pages > memory->max_pages) {
    if (tls_thread) tls_thread->grow_failed = true;
    return UINT32_MAX;
  }
  uint64_t old_bytes = (uint64_t)old_pages * PAGE_SIZE_WASM;
  uint64_t new_bytes = new_pages * PAGE_SIZE_WASM;
  if (mprotect(memory->data + old_bytes, new_bytes - old_bytes, PROT_READ | PROT_WRITE) != 0) {
    if (tls_thread) tls_thread->grow_failed = true;
    return UINT32_MAX;
  }
  memory->pages = (uint32_t)new_pages;
  memory->size = (uint32_t)new_bytes;
  return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
  if (memory->data) munmap(memory->data, SL_RT_MEMORY_RESERVE);
  memory->data = NULL;
  memory->size = 0;
  memory->pages = 0;
}

/* ---- tables ------------------------------------------------------------------------ */

/* Tables live in host memory, so their growth is capped to keep a guest from asking the
 * host for gigabytes through table.grow. */
#define TABLE_MAX_ELEMENTS (1u << 20)

#define DEFINE_TABLE(kind, elem_t, null_value)                                                     \
  void wasm_rt_allocate_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t elements,         \
                                       uint32_t max_elements) {                                    \
    if (max_elements > TABLE_MAX_ELEMENTS) max_elements = TABLE_MAX_ELEMENTS;                      \
    if (elements > max_elements)                                                                   \
      sl__rt_trap(SL_FAULT_OUT_OF_MEMORY, "the module's table is larger than allowed");            \
    table->size = elements;                                                                        \
    table->max_size = max_elements;                                                                \
    table->data = elements ? calloc(elements, sizeof(elem_t)) : NULL;                              \
    if (elements && !table->data) sl__rt_trap(SL_FAULT_OUT_OF_MEMORY, "host out of memory");       \
  }                                                                                                \
  void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *table) {                              \
    free(table->data);                                                                             \
    table->data = NULL;                                                                            \
    table->size = 0;                                                                               \
  }                                                                                                \
  uint32_t wasm_rt_grow_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t delta,            \
                                       elem_t init) {                                              \
    uint32_t old = table->size;                                                                    \
    uint64_t grown = (uint64_t)old + delta;                                                        \
    if (grown > table->max_size) return UINT32_MAX;                                                \
    if (delta == 0) return old;                                                                    \
    elem_t *data = realloc(table->data, (size_t)grown * sizeof(elem_t));                           \
    if (!data) return UINT32_MAX;                                                                  \
    for (uint64_t i = old; i < grown; i++) data[i] = init;                                         \
    table->data = data;                                                                            \
    table->size = (uint32_t)grown;                                                                 \
    return old;                                                                                    \
  }

DEFINE_TABLE(funcref, wasm_rt_funcref_t, wasm_rt_funcref_null_value)
DEFINE_TABLE(externref, wasm_rt_externref_t, wasm_rt_externref_null_value)

/* ---- function types ---------------------------------------------------------------- */

/* call_indirect compares type ids, so equal signatures from any module must map to the
 * same id. The registry is process-wide and only grows; modules register at load time. */
typedef struct func_type {
  uint32_t params, results;
  wasm_rt_type_t *types;
} func_type;

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static func_type *types;
static uint32_t types_count, types_capacity;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  uint32_t n = params + results;
  wasm_rt_type_t sig[n ? n : 1];
  va_list ap;
  va_start(ap, results);
  for (uint32_t i = 0; i < n; i++) sig[i] = va_arg(ap, wasm_rt_type_t);
  va_end(ap);

  pthread_mutex_lock(&types_lock);
  uint32_t id = 0;
  for (uint32_t i = 0; i < types_count; i++) {
    if (types[i].params == params && types[i].results == results &&
        memcmp(types[i].types, sig, n * sizeof *sig) == 0) {
      id = i + 1; /* 0 stays free, so a zeroed funcref never matches a real type */
      break;
    }
  }
  if (!id) {
    if (types_count == types_capacity) {
      uint32_t cap = types_capacity ? types_capacity * 2 : 64;
      func_type *grown = realloc(types, cap * sizeof *grown);
      if (!grown) abort(); /* host out of memory at module load */
      types = grown;
      types_capacity = cap;
    }
    wasm_rt_type_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) abort();
    memcpy(copy, sig, n * sizeof *sig);
    types[types_count] = (func_type){params, results, copy};
    id = ++types_count;
  }
  pthread_mutex_unlock(&types_lock);
  return id;
}

/* ---- exceptions -------------------------------------------------------------------- */
/* Generated only for modules built with the exception-handling proposal, which wasm2c
 * rejects unless enabled; implemented so the interface is complete and per-thread. */

static pthread_mutex_t tags_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t tags_count;
static __thread uint32_t exception_tag, exception_size;
static __thread uint8_t exception_data[256];
static __thread WASM_RT_UNWIND_TARGET *unwind_target;

uint32_t wasm_rt_register_tag(uint32_t size) {
  (void)size;
  pthread_mutex_lock(&tags_lock);
  uint32_t tag = tags_count++;
  pthread_mutex_unlock(&tags_lock);
  return tag;
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values) {
  if (size > sizeof exception_data) sl__rt_trap(SL_FAULT_UNCAUGHT_EXCEPTION, "exception too large");
  exception_tag = tag;
  exception_size = size;
  if (size) memcpy(exception_data, values, size);
}

void wasm_rt_throw(void) {
  if (!unwind_target) sl__rt_trap(SL_FAULT_UNCAUGHT_EXCEPTION, NULL);
  longjmp(*unwind_target, 1);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void) { return unwind_target; }
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target) { unwind_target = target; }
uint32_t wasm_rt_exception_tag(void) { return exception_tag; }
uint32_t wasm_rt_exception_size(void) { return exception_size; }
void *wasm_rt_exception(void) { return exception_data; }
