/*
 * redis_sink.c - `type: redis` with inputs: each event becomes an XADD to a stream, a
 * PUBLISH to a channel or an LPUSH onto a list, all commands of a batch pipelined on one
 * connection, and `write` returns once Redis answered every one of them.
 *
 *   xadd     XADD KEY [MAXLEN ~ maxlen] * PAYLOAD_FIELD payload [meta_key meta_value]...
 *   publish  PUBLISH KEY payload (Redis answers with the number of subscribers; none is
 *            still accepted: Pub/Sub keeps nothing for absent subscribers)
 *   lpush    LPUSH KEY payload...; consecutive events with the same key share one command
 *
 * KEY is the `key` template (meta_template.h) expanded for each event; metadata the event
 * lacks expands to nothing.
 *
 * Outcomes of one command:
 *   - a normal reply: accepted;
 *   - a transient error reply (LOADING, BUSY, OOM, READONLY, ...): sent again after
 *     `backoff`, doubling up to `max_backoff`;
 *   - any other error reply (WRONGTYPE, NOPERM, ...): the batch fails with SL_IO naming
 *     the command, its key and Redis's message, once every other command was answered;
 *   - the connection is lost, answers junk or stays silent for `timeout`: reconnect after
 *     the backoff and send again every command not answered yet. A command that reached
 *     Redis but whose reply was lost is sent twice: at-least-once.
 * The retries go on until the batch is accepted or `stop` is called (then SL_CLOSED).
 *
 * Threads: `write` runs on the sink's thread. `stop` (any thread) sets `stopping` and
 * writes the eventfd every wait polls, so a write waiting for Redis or for its next
 * attempt returns at once. The runtime calls `stop` before joining the sink's thread and
 * `destroy` after, so no write runs during destroy.
 *
 * Sections: state - planning a batch - sending - write - init / destroy - the table.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connectors/meta_template.h"
#include "connectors/redis/redis_conn.h"

/* Commands are sent in chunks of about this many bytes, each chunk's replies read before
 * the next is sent: hiredis moves its whole output buffer after every partial write, so
 * one huge buffer would cost quadratic copying. */
#define CHUNK_BYTES (1u << 20)
#define CHUNK_COMMANDS 4096

/* An LPUSH carries at most this many values. */
#define LPUSH_MAX_VALUES 1000

typedef struct redis_sink_config {
  char *command;       /* "xadd", "publish" or "lpush" */
  char *key;           /* template */
  char *payload_field; /* xadd: the field holding the payload */
  bool metadata;       /* xadd: metadata pairs become fields too */
  int64_t maxlen;      /* xadd: MAXLEN ~ this; 0: no trimming */
  sl_redis_settings redis;
} redis_sink_config;

typedef enum sink_command { CMD_XADD, CMD_PUBLISH, CMD_LPUSH } sink_command;

static const char *const command_names[] = {"XADD", "PUBLISH", "LPUSH"};

/* One command of the batch being written: events [first, first + count), one key. */
typedef struct planned {
  size_t first, count;
  size_t key_at, key_len; /* in redis_sink.keys */
  bool answered;          /* accepted, or failed for good */
} planned;

typedef struct redis_sink {
  const sl_node_ctx *node;
  const redis_sink_config *config;
  sink_command command;
  char maxlen_text[24];
  sl_meta_template key;
  sl_redis_target target;
  sl_redis_conn conn;
  int wake_fd; /* eventfd: stop() writes it so a wait returns */
  atomic_bool stopping;

  /* The batch being written, rebuilt by every write. */
  planned *plan;
  size_t plan_count, plan_cap;
  char *keys; /* every command's key, back to back */
  size_t keys_len, keys_cap;
  sl_meta_template_buf render; /* one event's key */
  const char **argv;           /* one command's arguments */
  size_t *lens;
  size_t argv_cap;

  /* Retry warnings: at most one line a second. */
  uint64_t last_log_ms;
  bool logged;
  unsigned long suppressed;
} redis_sink;

/* ---- planning a batch ------------------------------------------------------------ */

static void grow(void **items, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return;
  size_t want = *cap ? *cap : 16;
  while (want < need) want *= 2;
  void *grown = realloc(*items, want * size);
  if (!grown) abort(); /* host out of memory */
  *items = grown;
  *cap = want;
}

/* Splits the batch into commands and renders their keys. */
static void plan_batch(redis_sink *sink, const sl_event_list *batch) {
  sink->plan_count = 0;
  sink->keys_len = 0;
  bool constant = sl_meta_template_constant(&sink->key);
  for (size_t i = 0; i < batch->count; i++) {
    size_t len = 0;
    if (!constant || i == 0) {
      sl_meta_template_expand(&sink->key, &batch->items[i], &sink->render); /* missing: "" */
      len = sink->render.len;
    }
    planned *last = sink->plan_count ? &sink->plan[sink->plan_count - 1] : NULL;
    bool same_key =
        last && (constant || (last->key_len == len &&
                              memcmp(sink->keys + last->key_at, sink->render.bytes, len) == 0));
    if (sink->command == CMD_LPUSH && same_key && last->count < LPUSH_MAX_VALUES) {
      last->count++;
      continue;
    }
    size_t key_at = last ? last->key_at : 0, key_len = last ? last->key_len : 0;
    /* `last` dies here: growing may move the plan. */
    grow((void **)&sink->plan, &sink->plan_cap, sink->plan_count + 1, sizeof *sink->plan);
    planned *cmd = &sink->plan[sink->plan_count++];
    cmd->first = i;
    cmd->count = 1;
    cmd->answered = false;
    if (same_key) {
      cmd->key_at = key_at;
      cmd->key_len = key_len;
    } else {
      grow((void **)&sink->keys, &sink->keys_cap, sink->keys_len + len + 1, 1);
      memcpy(sink->keys + sink->keys_len, sink->render.bytes, len);
      cmd->key_at = sink->keys_len;
      cmd->key_len = len;
      sink->keys_len += len;
    }
  }
}

static bool is_payload_field(const redis_sink *sink, const sl_meta *pair) {
  const char *field = sink->config->payload_field;
  return pair->key.len == strlen(field) && memcmp(pair->key.ptr, field, pair->key.len) == 0;
}

/* Queues one planned command on the connection; returns its size in bytes (roughly). */
static size_t append_command(redis_sink *sink, const sl_event_list *batch, const planned *cmd) {
  size_t argc = 0, bytes = 0;
  const sl_event *first = &batch->items[cmd->first];
  size_t most = 8 + cmd->count + (sink->config->metadata ? 2 * first->meta_count : 0);
  if (most > sink->argv_cap) {
    size_t cap = sink->argv_cap;
    grow((void **)&sink->argv, &sink->argv_cap, most, sizeof *sink->argv);
    grow((void **)&sink->lens, &cap, most, sizeof *sink->lens);
  }
#define ARG(ptr, len)                                                                              \
  do {                                                                                             \
    sink->argv[argc] = (const char *)(ptr);                                                        \
    sink->lens[argc++] = (len);                                                                    \
    bytes += (len) + 16;                                                                           \
  } while (0)
  ARG(command_names[sink->command], strlen(command_names[sink->command]));
  ARG(sink->keys + cmd->key_at, cmd->key_len);
  switch (sink->command) {
  case CMD_XADD:
    if (sink->config->maxlen > 0) {
      ARG("MAXLEN", 6);
      ARG("~", 1);
      ARG(sink->maxlen_text, strlen(sink->maxlen_text));
    }
    ARG("*", 1);
    ARG(sink->config->payload_field, strlen(sink->config->payload_field));
    ARG(first->payload.len ? (const char *)first->payload.ptr : "", first->payload.len);
    for (size_t m = 0; sink->config->metadata && m < first->meta_count; m++) {
      const sl_meta *pair = &first->meta[m];
      if (is_payload_field(sink, pair)) continue; /* the payload has that field */
      ARG(pair->key.len ? (const char *)pair->key.ptr : "", pair->key.len);
      ARG(pair->value.len ? (const char *)pair->value.ptr : "", pair->value.len);
    }
    break;
  case CMD_PUBLISH:
    ARG(first->payload.len ? (const char *)first->payload.ptr : "", first->payload.len);
    break;
  case CMD_LPUSH:
    for (size_t e = cmd->first; e < cmd->first + cmd->count; e++) {
      const sl_bytes *payload = &batch->items[e].payload;
      ARG(payload->len ? (const char *)payload->ptr : "", payload->len);
    }
    break;
  }
#undef ARG
  sl__redis_append(&sink->conn, (int)argc, sink->argv, sink->lens);
  return bytes;
}

/* ---- sending ----------------------------------------------------------------------- */

/* What one pass over the unanswered commands found. */
typedef struct pass_result {
  size_t transient;      /* commands to send again (transient error replies) */
  size_t failed;         /* commands refused for good */
  char first_error[400]; /* the first refusal, or the last transient error */
} pass_result;

static void note_error(redis_sink *sink, const planned *cmd, const redisReply *reply, char *out,
                       size_t size) {
  snprintf(out, size, "%s %.*s: %.*s", command_names[sink->command],
           (int)(cmd->key_len > 120 ? 120 : cmd->key_len), sink->keys + cmd->key_at,
           (int)(reply->len > 240 ? 240 : reply->len), reply->str ? reply->str : "");
}

/*
 * Sends every unanswered command, chunk by chunk, and reads the replies. Statuses:
 * SL_OK (see *result for error replies); SL_IO: the connection was lost (the commands
 * not answered stay so); SL_CLOSED: stopped.
 */
static sl_status send_pass(redis_sink *sink, const sl_event_list *batch, pass_result *result,
                           sl_error *err) {
  memset(result, 0, sizeof *result);
  size_t next = 0;
  while (next < sink->plan_count) {
    size_t chunk_start = next, bytes = 0, commands = 0;
    for (; next < sink->plan_count && bytes < CHUNK_BYTES && commands < CHUNK_COMMANDS; next++) {
      if (sink->plan[next].answered) continue;
      bytes += append_command(sink, batch, &sink->plan[next]);
      commands++;
    }
    for (size_t i = chunk_start; i < next; i++) {
      planned *cmd = &sink->plan[i];
      if (cmd->answered) continue;
      redisReply *reply = NULL;
      sl_status st = sl__redis_reply(&sink->conn, sink->target.timeout_ms, &reply, err);
      if (st != SL_OK) return st;
      if (reply->type != REDIS_REPLY_ERROR) {
        cmd->answered = true;
      } else if (sl__redis_error_transient(reply)) {
        result->transient++;
        note_error(sink, cmd, reply, result->first_error, sizeof result->first_error);
      } else {
        cmd->answered = true;
        if (result->failed++ == 0)
          note_error(sink, cmd, reply, result->first_error, sizeof result->first_error);
      }
      freeReplyObject(reply);
    }
  }
  return SL_OK;
}

static void log_retry(redis_sink *sink, const char *why, unsigned attempt, uint64_t pause) {
  uint64_t now = sl__redis_now_ms();
  if (sink->logged && now - sink->last_log_ms < 1000) {
    sink->suppressed++;
    return;
  }
  char skipped[64] = "";
  if (sink->suppressed)
    snprintf(skipped, sizeof skipped, " (%lu similar lines suppressed)", sink->suppressed);
  sl_node_log(sink->node, SL_LOG_WARN, "redis sink: %s (attempt %u); retrying in %llu ms%s", why,
              attempt, (unsigned long long)pause, skipped);
  sink->logged = true;
  sink->last_log_ms = now;
  sink->suppressed = 0;
}

/* Waits `ms` unless stop is called meanwhile; false when it was. */
static bool pause_unless_stopping(redis_sink *sink, uint64_t ms) {
  uint64_t deadline = sl__redis_now_ms() + ms;
  for (;;) {
    if (atomic_load(&sink->stopping)) return false;
    uint64_t now = sl__redis_now_ms();
    if (now >= deadline) return true;
    sl__redis_wait(sink->wake_fd, deadline - now);
  }
}

/* ---- write ------------------------------------------------------------------------- */

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  redis_sink *sink = state;
  if (atomic_load(&sink->stopping)) return sl_error_set(err, SL_CLOSED, "redis sink: stopped");
  if (batch->count == 0) return SL_OK;
  plan_batch(sink, batch);
  sl_redis_backoff backoff;
  sl__redis_backoff_init(&backoff, &sink->config->redis);
  char why[sizeof(sl_error) + 64];
  for (unsigned attempt = 1;; attempt++) {
    sl_status st = SL_OK;
    sl_error inner = {{0}};
    if (!sink->conn.ctx) st = sl__redis_connect(&sink->conn, &inner);
    pass_result result = {0};
    if (st == SL_OK) st = send_pass(sink, batch, &result, &inner);
    if (st == SL_CLOSED || atomic_load(&sink->stopping))
      return sl_error_set(err, SL_CLOSED, "redis sink: stopped after %u attempts", attempt);
    if (st == SL_OK && result.transient == 0) {
      if (attempt > 1)
        sl_node_log(sink->node, SL_LOG_INFO, "redis sink: %s accepted the batch after %u attempts",
                    sink->target.shown_url, attempt);
      sink->logged = false;
      if (result.failed == 0) return SL_OK;
      return sl_error_set(err, SL_IO, "redis sink: %zu of %zu commands refused; the first: %s",
                          result.failed, sink->plan_count, result.first_error);
    }
    if (st != SL_OK)
      snprintf(why, sizeof why, "%s", inner.message);
    else
      snprintf(why, sizeof why, "%s: %zu commands answered %s", sink->target.shown_url,
               result.transient, result.first_error);
    uint64_t pause = sl__redis_backoff_fail(&backoff);
    log_retry(sink, why, attempt, pause);
    if (!pause_unless_stopping(sink, pause))
      return sl_error_set(err, SL_CLOSED, "redis sink: stopped after %u attempts", attempt);
  }
}

/* ---- init / destroy ---------------------------------------------------------------- */

static void stop(void *state) {
  redis_sink *sink = state;
  atomic_store(&sink->stopping, true);
  uint64_t one = 1;
  ssize_t ignored = write(sink->wake_fd, &one, sizeof one);
  (void)ignored;
}

static void destroy(void *state) {
  redis_sink *sink = state;
  if (!sink) return;
  sl__redis_close(&sink->conn);
  sl__redis_target_destroy(&sink->target);
  sl_meta_template_destroy(&sink->key);
  if (sink->wake_fd >= 0) close(sink->wake_fd);
  free(sink->plan);
  free(sink->keys);
  sl_meta_template_buf_destroy(&sink->render);
  free(sink->argv);
  free(sink->lens);
  free(sink);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const redis_sink_config *cfg = config;
  redis_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sink->wake_fd = -1;
  atomic_init(&sink->stopping, false);
  sl_status st = sl__redis_target_init(&sink->target, &cfg->redis, node, err);
  if (st != SL_OK) goto fail;
  if (!cfg->key || !cfg->key[0]) {
    st = sl_error_set(err, SL_CONFIG, "key: must not be empty");
    goto fail;
  }
  st = sl_meta_template_parse("key", cfg->key, 0, &sink->key, err);
  if (st != SL_OK) goto fail;
  const char *command = cfg->command ? cfg->command : "xadd";
  if (strcmp(command, "xadd") == 0) {
    sink->command = CMD_XADD;
  } else if (strcmp(command, "publish") == 0) {
    sink->command = CMD_PUBLISH;
  } else if (strcmp(command, "lpush") == 0) {
    sink->command = CMD_LPUSH;
  } else {
    st = sl_error_set(err, SL_CONFIG, "command: must be xadd, publish or lpush, got \"%s\"",
                      command);
    goto fail;
  }
  if (cfg->maxlen < 0) {
    st = sl_error_set(err, SL_CONFIG, "maxlen: must be 0 (no trimming) or more, got %lld",
                      (long long)cfg->maxlen);
    goto fail;
  }
  if (cfg->maxlen > 0 && sink->command != CMD_XADD) {
    st = sl_error_set(err, SL_CONFIG, "maxlen: only applies to command: xadd (this sink uses %s)",
                      command);
    goto fail;
  }
  if (sink->command == CMD_XADD && (!cfg->payload_field || !cfg->payload_field[0])) {
    st = sl_error_set(err, SL_CONFIG, "payload_field: must not be empty with command: xadd");
    goto fail;
  }
  snprintf(sink->maxlen_text, sizeof sink->maxlen_text, "%lld", (long long)cfg->maxlen);
  sink->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sink->wake_fd < 0) {
    st = sl_error_set(err, SL_IO, "redis sink: cannot make its wake-up eventfd");
    goto fail;
  }
  sink->conn.target = &sink->target;
  sink->conn.wake_fd = sink->wake_fd;
  sink->conn.abort = &sink->stopping;
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

/* ---- the connector table ----------------------------------------------------------- */

static const char *const command_choices[] = {"xadd", "publish", "lpush", NULL};

static const sl_conf_field fields[] = {
    SL_REDIS_URL_FIELD(redis_sink_config),
    {"command", SL_CONF_ENUM, 0, "xadd", offsetof(redis_sink_config, command),
     "What each event becomes: an XADD to a stream, a PUBLISH to a channel or an LPUSH onto a "
     "list.",
     command_choices},
    {"key", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(redis_sink_config, key),
     "The stream, channel or list; {{meta.NAME}} is replaced by the event's metadata value NAME.",
     NULL},
    {"payload_field", SL_CONF_STRING, 0, "payload", offsetof(redis_sink_config, payload_field),
     "xadd: the entry field that holds the payload.", NULL},
    {"metadata", SL_CONF_BOOL, 0, "true", offsetof(redis_sink_config, metadata),
     "xadd: also write each metadata pair as a field of the entry.", NULL},
    {"maxlen", SL_CONF_INT, 0, "0", offsetof(redis_sink_config, maxlen),
     "xadd: trim the stream to about this many entries (MAXLEN ~); 0 keeps everything.", NULL},
    SL_REDIS_CONNECTION_FIELDS(redis_sink_config),
    {NULL},
};

const sl_connector sl_redis_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "redis",
    .kind = SL_NODE_SINK,
    .summary = "XADD, PUBLISH or LPUSH each event to Redis, pipelined per batch; reconnects and "
               "retries with backoff.",
    .fields = fields,
    .config_size = sizeof(redis_sink_config),
    .init = init,
    .stop = stop,
    .write = write_batch,
    .destroy = destroy,
};
