/*
 * pool.c - warm instances of one module for one node on one thread, and the call guard
 * around every entry into guest code.
 *
 * An instance is replaced after any fault (its state may be half-updated), after
 * `recycle_calls` calls, or when its linear memory grew past `recycle_memory`, so
 * long-lived guest state never turns into a slow leak. A processor that returns an `err`
 * result did not fault: its instance stays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm/abi.h"
#include "wasm/engine_internal.h"
#include "wasm/instance.h"

struct sl_pool {
  sl_module *module;
  sl_limits limits;
  char *node_id;
  sl_kv *config; /* owned copies */
  size_t config_count;
  char **environ; /* "KEY=VALUE", owned */
  size_t environ_count;
  sl_instance *current;
  sl_pool_stats stats;
  sl_log_fn log; /* the guest's stdout/stderr; NULL: the engine's */
  void *log_user;
  const struct sl_node_caps *caps; /* not owned */
};

const char *sl_fault_name(sl_fault_kind kind) {
  static const char *const names[] = {
#define SL_FAULT_NAME(id, name, text) name,
      SL_FAULT_MAP(SL_FAULT_NAME)
#undef SL_FAULT_NAME
  };
  return (unsigned)kind < SL_FAULT_COUNT ? names[kind] : "unknown";
}

static const char *fault_text(sl_fault_kind kind) {
  static const char *const texts[] = {
#define SL_FAULT_TEXT(id, name, text) text,
      SL_FAULT_MAP(SL_FAULT_TEXT)
#undef SL_FAULT_TEXT
  };
  return (unsigned)kind < SL_FAULT_COUNT ? texts[kind] : "unknown fault";
}

void sl_limits_resolve(sl_limits *limits) {
  if (!limits->memory_bytes) limits->memory_bytes = SL_LIMIT_MEMORY_DEFAULT;
  if (limits->memory_bytes > ((uint64_t)65535 << 16)) limits->memory_bytes = (uint64_t)65535 << 16;
  if (!limits->time_ms) limits->time_ms = SL_LIMIT_TIME_MS_DEFAULT;
  if (!limits->stack_bytes) limits->stack_bytes = SL_LIMIT_STACK_DEFAULT;
  if (!limits->recycle_memory) limits->recycle_memory = limits->memory_bytes / 4 * 3;
}

/* ---- the call guard ---------------------------------------------------------------- */

typedef void (*guarded_fn)(sl_pool *pool, sl_instance *inst, void *arg);

/* Runs fn with a trap landing pad. Returns 0, or the sl_fault_kind it trapped with.
 * All state fn produces lives in *arg, never in locals of this frame, so nothing here
 * needs to be volatile across the jump. */
static sl_fault_kind run_guarded(sl_pool *pool, sl_instance *inst, guarded_fn fn, void *arg) {
  sl_rt_thread *t = inst->thread;
  sigjmp_buf jb;
  sl__rt_call_begin(t, inst->ctl, &pool->limits);
  t->jmp = &jb;
  int code = sigsetjmp(jb, 0);
  if (code == 0) fn(pool, inst, arg);
  sl__rt_call_end(t);
  return (sl_fault_kind)code;
}

static void describe_fault(sl_fault *fault, sl_fault_kind kind, const sl_rt_thread *t,
                           const sl_limits *limits, const char *phase) {
  /* A trap right after memory.grow hit the ceiling is what an allocator failure looks
   * like from outside (Rust and C abort with unreachable); call it what it is. */
  if (t->grow_failed && (kind == SL_FAULT_UNREACHABLE || kind == SL_FAULT_OUT_OF_BOUNDS)) {
    snprintf(fault->message, sizeof fault->message,
             "memory limit reached: memory.grow beyond %llu MiB failed, then the processor "
             "trapped (%s) in %s",
             (unsigned long long)(limits->memory_bytes >> 20), fault_text(kind), phase);
    fault->kind = SL_FAULT_OUT_OF_MEMORY;
    return;
  }
  fault->kind = kind;
  if (t->detail[0])
    snprintf(fault->message, sizeof fault->message, "%s: %s (in %s)", fault_text(kind), t->detail,
             phase);
  else
    snprintf(fault->message, sizeof fault->message, "%s (in %s)", fault_text(kind), phase);
}

/* ---- instances --------------------------------------------------------------------- */

static void instance_destroy(sl_instance *inst) {
  if (!inst) return;
  sl__wasi_flush(&inst->wasi);
  if (inst->host.pending) inst->host.pending_free(inst->host.pending);
  free(inst->host.buckets);
  if (inst->thread) sl__rt_forget_ctl(inst->thread, inst->ctl);
  inst->api->free_instance(inst->guest);
  free(inst->block);
  free(inst);
}

typedef struct create_call {
  const char *phase;
  bool init_failed;
  char error[400];
} create_call;

static void do_create(sl_pool *pool, sl_instance *inst, void *arg) {
  create_call *call = arg;
  const sl_guest_api *api = inst->api;
  call->phase = "instantiation";
  api->instantiate(inst->guest, inst); /* every import module's context (instance.h) */
  inst->memory = api->memory(inst->guest);
  inst->wasi.memory = inst->memory;
  if (api->initialize) {
    call->phase = "_initialize";
    inst->thread->in_guest = 1;
    api->initialize(inst->guest);
    inst->thread->in_guest = 0;
  }
  call->phase = "init";
  call->init_failed =
      !sl__abi_init(inst, pool->config, pool->config_count, call->error, sizeof call->error);
}

static sl_status instance_create(sl_pool *pool, sl_instance **out, sl_fault *fault) {
  const sl_guest_api *api = pool->module->api;
  sl_rt_thread *t = sl__rt_thread();
  sl_instance *inst = calloc(1, sizeof *inst);
  size_t block_size = (SL_GUEST_CTL_SIZE + api->instance_size + 63) & ~(size_t)63;
  void *block = aligned_alloc(64, block_size);
  if (!t || !inst || !block) abort(); /* host out of memory */
  memset(block, 0, block_size);
  inst->api = api;
  inst->block = block;
  inst->ctl = block;
  inst->guest = (char *)block + SL_GUEST_CTL_SIZE;
  inst->thread = t;
  inst->wasi.node_id = pool->node_id;
  inst->wasi.log = pool->log ? pool->log : pool->module->engine->log;
  inst->wasi.log_user = pool->log ? pool->log_user : pool->module->engine->log_user;
  inst->wasi.environ = pool->environ;
  inst->wasi.environ_count = pool->environ_count;
  inst->host.caps = pool->caps;
  inst->host.config = pool->config;
  inst->host.config_count = pool->config_count;

  create_call call = {0};
  sl_fault_kind kind = run_guarded(pool, inst, do_create, &call);
  pool->stats.instances_created++;
  if (kind != SL_FAULT_NONE) describe_fault(fault, kind, t, &pool->limits, call.phase);
  /* The creating thread may not be the one that runs the instance, and may exit first
   * (a pipeline is built on a thread of the daemon's API pool, its pools then run and
   * end on worker threads): let go of it now. sl_pool_process names the thread of
   * each call. */
  sl__rt_forget_ctl(t, inst->ctl);
  inst->thread = NULL;
  if (kind == SL_FAULT_NONE && !call.init_failed) {
    *out = inst;
    return SL_OK;
  }
  if (kind == SL_FAULT_NONE) {
    fault->kind = SL_FAULT_PROCESSOR_ERROR;
    snprintf(fault->message, sizeof fault->message, "init failed: %s", call.error);
  }
  instance_destroy(inst);
  return SL_INIT;
}

/* ---- pools ------------------------------------------------------------------------- */

static char *dup_or_die(const char *s) {
  char *copy = strdup(s ? s : "");
  if (!copy) abort();
  return copy;
}

sl_status sl_pool_new(sl_module *module, const sl_pool_options *opts, sl_pool **out,
                      sl_fault *fault) {
  sl_pool_options none = {0};
  if (!opts) opts = &none;
  sl_pool *pool = calloc(1, sizeof *pool);
  if (!pool) abort();
  sl_module_retain(module);
  pool->module = module;
  pool->limits = opts->limits;
  sl_limits_resolve(&pool->limits);
  pool->node_id = dup_or_die(opts->node_id ? opts->node_id : "processor");
  pool->log = opts->log;
  pool->log_user = opts->log_user;
  pool->caps = opts->caps;
  pool->config = calloc(opts->config_count + 1, sizeof *pool->config);
  pool->environ = calloc(opts->env_count + 1, sizeof *pool->environ);
  if (!pool->config || !pool->environ) abort();
  for (size_t i = 0; i < opts->config_count; i++) {
    pool->config[i].key = dup_or_die(opts->config[i].key);
    pool->config[i].value = dup_or_die(opts->config[i].value);
  }
  pool->config_count = opts->config_count;
  for (size_t i = 0; i < opts->env_count; i++) {
    size_t n = strlen(opts->env[i].key) + strlen(opts->env[i].value) + 2;
    pool->environ[i] = malloc(n);
    if (!pool->environ[i]) abort();
    snprintf(pool->environ[i], n, "%s=%s", opts->env[i].key, opts->env[i].value);
  }
  pool->environ_count = opts->env_count;

  sl_fault local;
  sl_status status = instance_create(pool, &pool->current, fault ? fault : &local);
  if (status != SL_OK) {
    sl_pool_destroy(pool);
    pool = NULL;
  }
  *out = pool;
  return status;
}

void sl_pool_destroy(sl_pool *pool) {
  if (!pool) return;
  instance_destroy(pool->current);
  for (size_t i = 0; i < pool->config_count; i++) {
    free((char *)pool->config[i].key);
    free((char *)pool->config[i].value);
  }
  for (size_t i = 0; i < pool->environ_count; i++) free(pool->environ[i]);
  free(pool->config);
  free(pool->environ);
  free(pool->node_id);
  sl_module_release(pool->module);
  free(pool);
}

typedef struct process_call {
  const sl_event *in;
  sl_event_list *out;
  bool guest_error;
  char error[400];
} process_call;

static void do_process(sl_pool *pool, sl_instance *inst, void *arg) {
  (void)pool;
  process_call *call = arg;
  call->guest_error = !sl__abi_process(inst, call->in, call->out, call->error, sizeof call->error);
}

sl_status sl_pool_process(sl_pool *pool, const sl_event *in, sl_event_list *out, sl_fault *fault) {
  sl_fault local;
  if (!fault) fault = &local;
  fault->kind = SL_FAULT_NONE;
  fault->message[0] = '\0';
  pool->stats.calls++;
  if (!pool->current && instance_create(pool, &pool->current, fault) != SL_OK) {
    pool->stats.faults++;
    char reason[400];
    snprintf(reason, sizeof reason, "%.399s", fault->message);
    snprintf(fault->message, sizeof fault->message, "could not start a fresh instance: %s", reason);
    return SL_FAULT;
  }
  sl_instance *inst = pool->current;
  inst->thread = sl__rt_thread(); /* a pool may be handed between threads, never shared */
  size_t mark = out->count;
  process_call call = {.in = in, .out = out};
  sl_fault_kind kind = run_guarded(pool, inst, do_process, &call);
  inst->calls++;

  if (kind != SL_FAULT_NONE) {
    describe_fault(fault, kind, inst->thread, &pool->limits, "process");
    out->count = mark;
    instance_destroy(inst);
    pool->current = NULL;
    pool->stats.faults++;
    return SL_FAULT;
  }
  bool recycle = (pool->limits.recycle_calls && inst->calls >= pool->limits.recycle_calls) ||
                 inst->memory->size > pool->limits.recycle_memory;
  if (recycle) {
    instance_destroy(inst);
    pool->current = NULL;
    pool->stats.recycled++;
  }
  if (call.guest_error) {
    fault->kind = SL_FAULT_PROCESSOR_ERROR;
    snprintf(fault->message, sizeof fault->message, "%s", call.error);
    out->count = mark;
    pool->stats.faults++;
    return SL_FAULT;
  }
  return SL_OK;
}

void sl_pool_stats_get(const sl_pool *pool, sl_pool_stats *stats) {
  *stats = pool->stats;
  stats->memory_bytes = pool->current && pool->current->memory ? pool->current->memory->size : 0;
  stats->instances = pool->current ? 1 : 0;
}
