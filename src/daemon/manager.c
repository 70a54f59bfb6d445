/*
 * manager.c - the pipelines a daemon runs (manager.h): entries and their deploy slot,
 * and the operations that change what runs: deploy, module swap, rollback, remove,
 * restore. How a swap keeps every event: docs/design/control-plane.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/manager_internal.h"

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --- entries ---------------------------------------------------------------------- */

static sl_entry *entry_new(const char *name) {
  sl_entry *entry = calloc(1, sizeof *entry);
  if (!entry || !(entry->name = strdup(name))) {
    free(entry);
    return NULL;
  }
  pthread_rwlock_init(&entry->rw, NULL);
  entry->status = "deploying";
  entry->created_at_ms = entry->updated_at_ms = sl__wall_ms();
  return entry;
}

static void entry_free(sl_entry *entry) {
  for (size_t i = 0; i < entry->total_count; i++) free(entry->totals[i].id);
  free(entry->totals);
  free(entry->error);
  pthread_rwlock_destroy(&entry->rw);
  free(entry->name);
  free(entry);
}

sl_entry *sl__entry_get(sl_manager *manager, const char *name) {
  pthread_mutex_lock(&manager->lock);
  sl_entry *entry = manager->entries;
  while (entry && strcmp(entry->name, name) != 0) entry = entry->link;
  if (entry) entry->refs++;
  pthread_mutex_unlock(&manager->lock);
  return entry;
}

void sl__entry_release(sl_manager *manager, sl_entry *entry) {
  pthread_mutex_lock(&manager->lock);
  bool last = --entry->refs == 0 && !entry->listed;
  pthread_mutex_unlock(&manager->lock);
  if (last) entry_free(entry);
}

sl_entry **sl__entry_all(sl_manager *manager, size_t *count) {
  pthread_mutex_lock(&manager->lock);
  size_t n = 0;
  for (sl_entry *e = manager->entries; e; e = e->link) n++;
  sl_entry **all = calloc(n ? n : 1, sizeof *all);
  *count = 0;
  if (all)
    for (sl_entry *e = manager->entries; e; e = e->link) {
      e->refs++;
      all[(*count)++] = e;
    }
  pthread_mutex_unlock(&manager->lock);
  return all;
}

/* Takes `name`'s deploy slot, creating the entry if needed (*created). NULL when
 * another deploy holds it. */
static sl_entry *claim(sl_manager *manager, const char *name, bool *created) {
  pthread_mutex_lock(&manager->lock);
  sl_entry *entry = manager->entries;
  while (entry && strcmp(entry->name, name) != 0) entry = entry->link;
  *created = false;
  if (!entry) {
    if ((entry = entry_new(name))) {
      entry->listed = true;
      entry->link = manager->entries;
      manager->entries = entry;
      *created = true;
    }
  } else if (entry->deploying) {
    entry = NULL;
  }
  if (entry) {
    entry->deploying = true;
    entry->refs++;
  }
  pthread_mutex_unlock(&manager->lock);
  return entry;
}

static void unlist_locked(sl_manager *manager, sl_entry *entry) {
  for (sl_entry **at = &manager->entries; *at; at = &(*at)->link)
    if (*at == entry) {
      *at = entry->link;
      entry->listed = false;
      return;
    }
}

/* Gives the slot back; an entry that never ran anything (a first deploy that failed)
 * disappears. */
static void unclaim(sl_manager *manager, sl_entry *entry) {
  pthread_mutex_lock(&manager->lock);
  entry->deploying = false;
  pthread_rwlock_rdlock(&entry->rw);
  bool empty = !entry->run && entry->version == 0;
  pthread_rwlock_unlock(&entry->rw);
  if (empty) unlist_locked(manager, entry);
  pthread_mutex_unlock(&manager->lock);
  sl__entry_release(manager, entry);
}

static void set_state(sl_entry *entry, sl_running *run, const char *status, const char *error) {
  pthread_rwlock_wrlock(&entry->rw);
  entry->run = run;
  entry->status = status;
  free(entry->error);
  entry->error = error ? strdup(error) : NULL;
  if (run) entry->version = atomic_load(&run->version);
  entry->updated_at_ms = sl__wall_ms();
  pthread_rwlock_unlock(&entry->rw);
}

/* --- swapping --------------------------------------------------------------------- */

static bool sources_shareable(const sl_pipeline_spec *spec) {
  for (size_t i = 0; i < spec->node_count; i++)
    if (spec->nodes[i].kind == SL_NODE_SOURCE && !spec->nodes[i].connector->shareable) return false;
  return true;
}

static sl_status start(sl_manager *manager, sl_entry *entry, sl_running *run, sl_error *err) {
  sl__taps_attach(manager, entry, run);
  sl_status status = sl_pipeline_start(run->pipeline, err);
  if (status != SL_OK) {
    sl__taps_detach(manager, entry, run);
    return status;
  }
  run->started = true;
  run->started_ms = (uint64_t)sl__wall_ms();
  return SL_OK;
}

/* A version leaves: its counters are kept, its taps detached, its graph drained. */
static void retire(sl_manager *manager, sl_entry *entry, sl_running *run) {
  if (run->started) {
    sl_pipeline_stop(run->pipeline);
    sl_error err;
    if (sl_pipeline_wait(run->pipeline, &err) != SL_OK)
      sl_log_hub_push(manager->logs, run->name, atomic_load(&run->version), "-", "error",
                      err.message, strlen(err.message));
    run->started = false;
  }
  pthread_rwlock_wrlock(&entry->rw);
  sl__fold_totals(entry, run);
  pthread_rwlock_unlock(&entry->rw);
  sl__taps_detach(manager, entry, run);
  sl__running_free(run);
}

/*
 * Puts `next` in place of what runs. Overlap when every source on both sides can be
 * shared; otherwise the old graph drains first, and if `next` then cannot start, the
 * old version is built and started again. On failure `next` is still the caller's.
 */
static sl_status swap_in(sl_manager *manager, sl_entry *entry, sl_running *next,
                         sl_deploy_result *result, sl_error *err) {
  double t0 = mono_ms();
  sl_running *old = entry->run; /* only the slot holder changes it */
  sl_status status;
  if (!old) {
    if ((status = start(manager, entry, next, err)) != SL_OK) return status;
    set_state(entry, next, "running", NULL);
    result->swap = "start";
  } else if (sources_shareable(old->spec) && sources_shareable(next->spec)) {
    if ((status = start(manager, entry, next, err)) != SL_OK) return status;
    set_state(entry, next, "running", NULL);
    retire(manager, entry, old);
    result->swap = "overlap";
  } else {
    sl_recipe again;
    if (sl__recipe_copy(&again, &old->recipe) != SL_OK)
      return sl_error_set(err, SL_NOMEM, "out of memory");
    json_decref(again.pins);
    again.pins = json_deep_copy(old->pins);
    int64_t old_version = atomic_load(&old->version);
    pthread_rwlock_wrlock(&entry->rw);
    entry->status = "draining";
    pthread_rwlock_unlock(&entry->rw);
    sl_pipeline_stop(old->pipeline);
    set_state(entry, NULL, "deploying", NULL);
    retire(manager, entry, old);
    status = start(manager, entry, next, err);
    if (status != SL_OK) {
      /* The old version drained; run it again rather than nothing. */
      sl_error why = *err, again_err;
      sl_running *back = NULL;
      if (sl__running_build(manager, &again, NULL, NULL, NULL, &back, NULL, &again_err) == SL_OK &&
          (atomic_store(&back->version, old_version),
           start(manager, entry, back, &again_err) == SL_OK)) {
        set_state(entry, back, "running", NULL);
        sl_error_set(err, status, "the new version could not start: %s; version %lld runs again",
                     why.message, (long long)old_version);
      } else {
        if (back) sl__running_free(back);
        set_state(entry, NULL, "failed", again_err.message);
        pthread_rwlock_wrlock(&entry->rw);
        entry->version = old_version;
        pthread_rwlock_unlock(&entry->rw);
        sl_error_set(err, status,
                     "the new version could not start: %s; version %lld could not start "
                     "again either: %s",
                     why.message, (long long)old_version, again_err.message);
      }
      sl__recipe_clear(&again);
      return status;
    }
    sl__recipe_clear(&again);
    set_state(entry, next, "running", NULL);
    result->swap = "drain";
  }
  result->swap_ms = mono_ms() - t0;
  return SL_OK;
}

/* --- operations -------------------------------------------------------------------- */

void sl_deploy_result_clear(sl_deploy_result *result) {
  json_decref(result->modules);
  json_decref(result->problems);
  memset(result, 0, sizeof *result);
}

static void result_init(sl_deploy_result *result) {
  memset(result, 0, sizeof *result);
  result->problems = json_array();
}

/* The common tail of deploy, module swap and rollback: `next` is built; take the slot,
 * swap it in, and record it (a new version, or `current` moved to `existing`). */
static sl_status install(sl_manager *manager, sl_entry *entry, sl_running *next, int64_t existing,
                         const char *note, sl_deploy_result *result, sl_error *err) {
  /* The number is known before the swap, so the new graph's log lines carry it; it is
   * only recorded once the graph runs. The slot keeps two deploys from taking one. */
  int64_t version = existing;
  if (!version) {
    if (manager->store) {
      sl_error ignored;
      if (sl_store_next_version(manager->store, next->name, &version, &ignored) != SL_OK)
        version = 1; /* recording will say what is wrong with the store */
    } else {
      pthread_mutex_lock(&manager->lock);
      version = ++manager->dev_version;
      pthread_mutex_unlock(&manager->lock);
    }
  }
  atomic_store(&next->version, version);
  json_t *pins = json_incref(next->pins);

  sl_status status = swap_in(manager, entry, next, result, err);
  if (status != SL_OK) {
    sl__running_free(next);
    json_decref(pins);
    return status;
  }
  if (manager->store) {
    sl_status recorded;
    if (existing) {
      recorded = sl_store_set_current(manager->store, result->name, existing, err);
    } else {
      char *modules = json_dumps(pins, JSON_COMPACT | JSON_SORT_KEYS);
      sl_version v = {.pipeline = next->name,
                      .source = next->recipe.source,
                      .file = next->recipe.file,
                      .dir = next->recipe.dir,
                      .modules = modules ? modules : "{}",
                      .note = (char *)note};
      int64_t stored = 0;
      bool created = false;
      recorded = sl_store_add_version(manager->store, &v, &stored, &created, err);
      free(modules);
      if (recorded == SL_OK && stored != version) {
        /* Another writer (a second daemon on the same home?) got in between. */
        sl_log_hub_push(manager->logs, result->name, version, "-", "warn",
                        "version number changed while recording", 39);
        version = stored;
        atomic_store(&next->version, version);
      }
    }
    if (recorded != SL_OK) {
      json_decref(pins);
      return recorded; /* it runs, but a restart would not bring it back: say so */
    }
  }
  pthread_rwlock_wrlock(&entry->rw);
  entry->version = version;
  pthread_rwlock_unlock(&entry->rw);
  result->version = version;
  result->modules = pins;
  return SL_OK;
}

/* Holds `name`'s deploy slot around `build` + install: a second deploy of the same
 * pipeline, arriving while this one compiles, gets SL_AGAIN (409) at once. */
typedef sl_status (*build_fn)(sl_manager *manager, void *arg, sl_running **next, json_t *problems,
                              sl_error *err);

static sl_status under_slot(sl_manager *manager, const char *name, build_fn build, void *arg,
                            int64_t existing, const char *note, sl_deploy_result *result,
                            sl_error *err) {
  snprintf(result->name, sizeof result->name, "%s", name);
  sl_entry *entry = claim(manager, name, &result->created);
  if (!entry) return sl_error_set(err, SL_AGAIN, "a deploy of '%s' is in progress", name);
  sl_running *next = NULL;
  sl_status status = build(manager, arg, &next, result->problems, err);
  if (status == SL_OK) status = install(manager, entry, next, existing, note, result, err);
  unclaim(manager, entry);
  return status;
}

typedef struct recipe_build {
  const sl_recipe *recipe;
  const json_t *uploaded;
  const char *expect_name;
  sl_pipeline_spec *loaded; /* already loaded, or NULL; the build takes it over */
} recipe_build;

static sl_status build_recipe(sl_manager *manager, void *arg, sl_running **next, json_t *problems,
                              sl_error *err) {
  recipe_build *b = arg;
  sl_pipeline_spec *loaded = b->loaded;
  b->loaded = NULL;
  return sl__running_build(manager, b->recipe, b->uploaded, b->expect_name, loaded, next, problems,
                           err);
}

sl_status sl_manager_deploy(sl_manager *manager, const sl_deploy *deploy, sl_deploy_result *result,
                            sl_error *err) {
  result_init(result);
  sl_recipe recipe = {.source = (char *)deploy->source,
                      .source_len = deploy->source_len,
                      .file = (char *)(deploy->file ? deploy->file : "pipeline.yaml"),
                      .dir = (char *)deploy->dir};
  /* The slot is per name, and the name is in the text: load it first (pure, no module
   * touched); the build then uses this spec rather than loading it again. */
  recipe_build b = {&recipe, deploy->modules, deploy->expect_name, NULL};
  const char *name = deploy->expect_name;
  if (!name) {
    sl_status status = sl__recipe_load(manager, &recipe, &b.loaded, result->problems, err);
    if (status != SL_OK) return status;
    name = b.loaded->name;
  }
  sl_status status = under_slot(manager, name, build_recipe, &b, 0,
                                deploy->note ? deploy->note : "deploy", result, err);
  sl_pipeline_spec_free(b.loaded); /* not taken when the slot was busy */
  return status;
}

/* The recipe of `name`'s version `version` (0: current), from the store. */
static sl_status stored_recipe(sl_manager *manager, const char *name, int64_t version,
                               sl_recipe *recipe, int64_t *number, sl_error *err) {
  if (!manager->store) return sl_error_set(err, SL_INVALID, "there are no stored versions here");
  sl_version v = {0};
  sl_status status = sl_store_get_version(manager->store, name, version, &v, err);
  if (status != SL_OK) return status;
  json_error_t jerr;
  json_t *pins = json_loads(v.modules ? v.modules : "{}", 0, &jerr);
  *recipe = (sl_recipe){.source = v.source,
                        .source_len = strlen(v.source),
                        .file = v.file,
                        .dir = v.dir,
                        .pins = pins};
  *number = v.version;
  v.source = v.file = v.dir = NULL;
  sl_version_clear(&v);
  return pins ? SL_OK
              : sl_error_set(err, SL_IO, "version %lld of '%s': unreadable module pins",
                             (long long)*number, name);
}

sl_status sl_manager_swap_module(sl_manager *manager, const char *name, const char *node,
                                 const char *sha256, sl_deploy_result *result, sl_error *err) {
  result_init(result);
  sl_recipe recipe;
  int64_t current;
  sl_status status = stored_recipe(manager, name, 0, &recipe, &current, err);
  if (status == SL_NOT_FOUND) return sl_error_set(err, status, "no pipeline '%s'", name);
  if (status != SL_OK) return status;
  json_object_set_new(recipe.pins, node, json_string(sha256));
  char note[300];
  snprintf(note, sizeof note, "module %s", node);
  recipe_build b = {&recipe, NULL, name, NULL};
  status = under_slot(manager, name, build_recipe, &b, 0, note, result, err);
  sl__recipe_clear(&recipe);
  return status;
}

sl_status sl_manager_rollback(sl_manager *manager, const char *name, int64_t to,
                              sl_deploy_result *result, sl_error *err) {
  result_init(result);
  if (!manager->store) return sl_error_set(err, SL_INVALID, "there are no stored versions here");
  if (to <= 0) {
    sl_version *versions = NULL;
    size_t count = 0;
    sl_status status = sl_store_list_versions(manager->store, name, &versions, &count, err);
    if (status == SL_NOT_FOUND) return sl_error_set(err, status, "no pipeline '%s'", name);
    if (status != SL_OK) return status;
    int64_t current = 0;
    for (size_t i = 0; i < count; i++)
      if (versions[i].current) current = versions[i].version;
    for (size_t i = 0; i < count; i++)
      if (versions[i].version < current) to = versions[i].version;
    sl_versions_free(versions, count);
    if (to <= 0)
      return sl_error_set(err, SL_NOT_FOUND, "'%s' has no version before %lld to roll back to",
                          name, (long long)current);
  }
  sl_recipe recipe;
  int64_t number;
  sl_status status = stored_recipe(manager, name, to, &recipe, &number, err);
  if (status == SL_NOT_FOUND)
    return sl_error_set(err, status, "'%s' has no version %lld", name, (long long)to);
  if (status != SL_OK) return status;
  recipe_build b = {&recipe, NULL, name, NULL};
  status = under_slot(manager, name, build_recipe, &b, number, NULL, result, err);
  sl__recipe_clear(&recipe);
  return status;
}

sl_status sl_manager_remove(sl_manager *manager, const char *name, sl_error *err) {
  pthread_mutex_lock(&manager->lock);
  sl_entry *entry = manager->entries;
  while (entry && strcmp(entry->name, name) != 0) entry = entry->link;
  sl_status status = SL_OK;
  if (!entry)
    status = sl_error_set(err, SL_NOT_FOUND, "no pipeline '%s'", name);
  else if (entry->deploying)
    status = sl_error_set(err, SL_AGAIN, "a deploy of '%s' is in progress", name);
  else {
    entry->deploying = true; /* nobody deploys it while it goes */
    entry->refs++;
  }
  pthread_mutex_unlock(&manager->lock);
  if (status != SL_OK) return status;

  sl_running *run = entry->run;
  set_state(entry, NULL, "draining", NULL);
  if (run) retire(manager, entry, run);
  sl__taps_end_all(manager, entry);
  if (manager->store) {
    sl_error ignored;
    status = sl_store_delete_pipeline(manager->store, name, &ignored);
    if (status == SL_NOT_FOUND) status = SL_OK; /* never recorded: a failed restore */
    if (status != SL_OK) sl_error_set(err, status, "%s", ignored.message);
  }
  sl_log_hub_forget(manager->logs, name);
  pthread_mutex_lock(&manager->lock);
  unlist_locked(manager, entry);
  pthread_mutex_unlock(&manager->lock);
  sl__entry_release(manager, entry);
  return status;
}

void sl_manager_restore(sl_manager *manager) {
  sl_pipeline_row *rows = NULL;
  size_t count = 0;
  sl_error err;
  if (!manager->store || sl_store_list_pipelines(manager->store, &rows, &count, &err) != SL_OK) {
    atomic_store(&manager->ready, true);
    return;
  }
  for (size_t i = 0; i < count; i++) {
    sl_deploy_result result;
    result_init(&result);
    sl_recipe recipe;
    int64_t number = 0;
    sl_status status = stored_recipe(manager, rows[i].name, 0, &recipe, &number, &err);
    if (status == SL_OK) {
      recipe_build b = {&recipe, NULL, rows[i].name, NULL};
      status = under_slot(manager, rows[i].name, build_recipe, &b, number, NULL, &result, &err);
      sl__recipe_clear(&recipe);
    }
    sl_entry *restored = status == SL_OK ? sl__entry_get(manager, rows[i].name) : NULL;
    if (restored) { /* it existed before this process did */
      pthread_rwlock_wrlock(&restored->rw);
      restored->created_at_ms = rows[i].created_at_ms;
      restored->updated_at_ms = rows[i].updated_at_ms;
      pthread_rwlock_unlock(&restored->rw);
      sl__entry_release(manager, restored);
    }
    if (status != SL_OK) {
      /* Keep it visible as failed, so `sluice ls` says why. */
      bool created;
      sl_entry *entry = claim(manager, rows[i].name, &created);
      if (entry) {
        set_state(entry, NULL, "failed", err.message);
        pthread_rwlock_wrlock(&entry->rw);
        entry->version = number ? number : rows[i].current;
        pthread_rwlock_unlock(&entry->rw);
        unclaim(manager, entry);
      }
      sl_log_hub_push(manager->logs, rows[i].name, number, "-", "error", err.message,
                      strlen(err.message));
    }
    sl_deploy_result_clear(&result);
  }
  sl_pipeline_rows_free(rows, count);
  atomic_store(&manager->ready, true);
}

bool sl_manager_ready(const sl_manager *manager) { return atomic_load(&manager->ready); }

sl_status sl_manager_new(const sl_manager_options *opts, sl_manager **out, sl_error *err) {
  sl_manager *manager = calloc(1, sizeof *manager);
  if (!manager) return sl_error_set(err, SL_NOMEM, "out of memory");
  manager->engine = opts->engine;
  manager->store = opts->store;
  manager->logs = opts->logs;
  pthread_mutex_init(&manager->lock, NULL);
  pthread_mutex_init(&manager->tap_lock, NULL);
  pthread_mutex_init(&manager->sampler_lock, NULL);
  pthread_cond_init(&manager->sampler_wake, NULL);
  if (pthread_create(&manager->sampler, NULL, sl__sampler_main, manager) != 0) {
    pthread_cond_destroy(&manager->sampler_wake);
    pthread_mutex_destroy(&manager->sampler_lock);
    pthread_mutex_destroy(&manager->tap_lock);
    pthread_mutex_destroy(&manager->lock);
    free(manager);
    return sl_error_set(err, SL_NOMEM, "cannot start the stats sampler thread");
  }
  *out = manager;
  return SL_OK;
}

void sl_manager_destroy(sl_manager *manager) {
  if (!manager) return;
  pthread_mutex_lock(&manager->sampler_lock);
  manager->sampler_quit = true;
  pthread_cond_signal(&manager->sampler_wake);
  pthread_mutex_unlock(&manager->sampler_lock);
  pthread_join(manager->sampler, NULL);

  /* Stop every source first, so all pipelines drain at once rather than in turn. */
  size_t count = 0;
  sl_entry **all = sl__entry_all(manager, &count);
  for (size_t i = 0; i < count; i++)
    if (all[i]->run && all[i]->run->started) sl_pipeline_stop(all[i]->run->pipeline);
  for (size_t i = 0; i < count; i++) {
    sl_entry *entry = all[i];
    sl_running *run = entry->run;
    set_state(entry, NULL, "draining", NULL);
    if (run) retire(manager, entry, run);
    sl__taps_end_all(manager, entry);
    pthread_mutex_lock(&manager->lock);
    unlist_locked(manager, entry);
    pthread_mutex_unlock(&manager->lock);
    sl__entry_release(manager, entry);
  }
  free(all);
  pthread_cond_destroy(&manager->sampler_wake);
  pthread_mutex_destroy(&manager->sampler_lock);
  pthread_mutex_destroy(&manager->tap_lock);
  pthread_mutex_destroy(&manager->lock);
  free(manager);
}
