/*
 * kafka_client.c - the connection settings shared by the Kafka source and sink, turned
 * into a librdkafka configuration; librdkafka's log and error callbacks; small helpers.
 *
 * Order of properties: bootstrap.servers, security (SASL, TLS), reconnect backoff, the
 * connector's own properties, then `options`. So `options` can tune anything librdkafka
 * offers (it is applied last) except the few properties a connector's guarantee rests
 * on, which it refuses by name.
 */
#include "connectors/kafka/kafka_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

const char *const sl__kafka_sasl_choices[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};

/* librdkafka refuses reconnect backoffs above an hour. */
#define BACKOFF_LIMIT_MS 3600000u

uint64_t sl__kafka_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- logging ---------------------------------------------------------------------- */

void sl__kafka_log_init(kafka_log *log, const sl_node_ctx *node, const char *what) {
  log->node = node;
  log->what = what;
  log->last_ms = 0;
  log->logged = false;
  log->suppressed = 0;
  pthread_mutex_init(&log->lock, NULL);
}

void sl__kafka_log_destroy(kafka_log *log) { pthread_mutex_destroy(&log->lock); }

void sl__kafka_log(kafka_log *log, sl_log_level level, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  unsigned long suppressed = 0;
  if (level <= SL_LOG_WARN) {
    uint64_t now = sl__kafka_now_ms();
    pthread_mutex_lock(&log->lock);
    bool allow = !log->logged || now - log->last_ms >= 1000;
    if (allow) {
      suppressed = log->suppressed;
      log->suppressed = 0;
      log->logged = true;
      log->last_ms = now;
    } else {
      log->suppressed++;
    }
    pthread_mutex_unlock(&log->lock);
    if (!allow) return;
  }
  if (suppressed)
    sl_node_log(log->node, level, "%s: %s (%lu similar lines suppressed)", log->what, text,
                suppressed);
  else
    sl_node_log(log->node, level, "%s: %s", log->what, text);
}

/* librdkafka's own log lines (syslog levels), from any of its threads. */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *line) {
  kafka_log *log = rd_kafka_opaque(rk);
  if (!log) return;
  sl_log_level ours = level <= LOG_ERR       ? SL_LOG_ERROR
                      : level == LOG_WARNING ? SL_LOG_WARN
                      : level <= LOG_INFO    ? SL_LOG_INFO
                                             : SL_LOG_DEBUG;
  sl__kafka_log(log, ours, "librdkafka %s: %s", facility, line);
}

/*
 * Errors the client reports on its own. Most repeat what its log lines already said
 * (a refused connection, a failed authentication: on_log shows those, rate-limited), so
 * only two are logged here, neither rate-limited since each comes once per event:
 * every broker being down (librdkafka keeps reconnecting with the configured backoff)
 * and a fatal error (the handle is unusable; the connector replaces it).
 */
static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
  kafka_log *log = opaque;
  rd_kafka_resp_err_t err = (rd_kafka_resp_err_t)code;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    sl_node_log(log->node, SL_LOG_ERROR, "%s: fatal client error: %s: %s", log->what,
                rd_kafka_err2name(cause), fatal);
  } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    sl_node_log(log->node, SL_LOG_WARN, "%s: %s; librdkafka keeps reconnecting", log->what, reason);
  }
}

/* --- configuration ---------------------------------------------------------------- */

static bool set_ok(rd_kafka_conf_t *conf, const char *key, const char *value, char *why,
                   size_t size, rd_kafka_conf_res_t *res) {
  *res = rd_kafka_conf_set(conf, key, value, why, size);
  return *res == RD_KAFKA_CONF_OK;
}

static bool has_text(const char *s) { return s && *s; }

/* Sluice's own properties: which setting a failure belongs to is known. */
static sl_status set_property(rd_kafka_conf_t *conf, const char *field, const char *key,
                              const char *value, sl_error *err) {
  char why[512];
  rd_kafka_conf_res_t res;
  if (set_ok(conf, key, value, why, sizeof why, &res)) return SL_OK;
  return sl_error_set(err, SL_CONFIG, "%s: librdkafka refused %s: %s", field, key, why);
}

static sl_status set_client(const kafka_client_config *cfg, rd_kafka_conf_t *conf, sl_error *err) {
  if (!has_text(cfg->brokers))
    return sl_error_set(err, SL_CONFIG, "brokers: must name at least one host:port");
  if (cfg->backoff > cfg->max_backoff)
    return sl_error_set(err, SL_CONFIG,
                        "backoff: %llu ms is more than max_backoff (%llu ms); make it smaller",
                        (unsigned long long)cfg->backoff, (unsigned long long)cfg->max_backoff);
  bool sasl = has_text(cfg->username);
  if (!sasl && has_text(cfg->password))
    return sl_error_set(err, SL_CONFIG, "password: is set without a username; set username too");
  const char *tls_field = has_text(cfg->tls_ca)     ? "tls_ca"
                          : has_text(cfg->tls_cert) ? "tls_cert"
                          : has_text(cfg->tls_key)  ? "tls_key"
                                                    : NULL;
  if (tls_field && !cfg->tls)
    return sl_error_set(err, SL_CONFIG, "%s: is set but tls is false; add tls: true", tls_field);
  if (has_text(cfg->tls_cert) != has_text(cfg->tls_key))
    return sl_error_set(err, SL_CONFIG, "%s: a client certificate needs both tls_cert and tls_key",
                        has_text(cfg->tls_cert) ? "tls_cert" : "tls_key");

  sl_status st = set_property(conf, "brokers", "bootstrap.servers", cfg->brokers, err);
  const char *protocol =
      sasl ? (cfg->tls ? "SASL_SSL" : "SASL_PLAINTEXT") : (cfg->tls ? "SSL" : "PLAINTEXT");
  if (st == SL_OK)
    st = set_property(conf, sasl ? "username" : "tls", "security.protocol", protocol, err);
  if (st == SL_OK && sasl)
    st = set_property(conf, "sasl_mechanism", "sasl.mechanisms",
                      cfg->sasl_mechanism ? cfg->sasl_mechanism : "PLAIN", err);
  if (st == SL_OK && sasl) st = set_property(conf, "username", "sasl.username", cfg->username, err);
  if (st == SL_OK && sasl)
    st = set_property(conf, "password", "sasl.password", cfg->password ? cfg->password : "", err);
  if (st == SL_OK && has_text(cfg->tls_ca))
    st = set_property(conf, "tls_ca", "ssl.ca.location", cfg->tls_ca, err);
  if (st == SL_OK && has_text(cfg->tls_cert))
    st = set_property(conf, "tls_cert", "ssl.certificate.location", cfg->tls_cert, err);
  if (st == SL_OK && has_text(cfg->tls_key))
    st = set_property(conf, "tls_key", "ssl.key.location", cfg->tls_key, err);

  char ms[32];
  uint64_t backoff = cfg->backoff < BACKOFF_LIMIT_MS ? cfg->backoff : BACKOFF_LIMIT_MS;
  uint64_t max_backoff = cfg->max_backoff < BACKOFF_LIMIT_MS ? cfg->max_backoff : BACKOFF_LIMIT_MS;
  snprintf(ms, sizeof ms, "%llu", (unsigned long long)(backoff ? backoff : 1));
  if (st == SL_OK) st = set_property(conf, "backoff", "reconnect.backoff.ms", ms, err);
  snprintf(ms, sizeof ms, "%llu", (unsigned long long)(max_backoff ? max_backoff : 1));
  if (st == SL_OK) st = set_property(conf, "max_backoff", "reconnect.backoff.max.ms", ms, err);
  return st;
}

/* Properties that have a setting of their own: one place to say each thing. */
static const kafka_reserved connection_reserved[] = {
    {"bootstrap.servers", "set `brokers` instead"},
    {"metadata.broker.list", "set `brokers` instead"},
    {"security.protocol", "follows from `tls` and `username`; set those instead"},
    {"sasl.username", "set `username` instead"},
    {"sasl.password", "set `password` instead (password: ${secret:NAME})"},
    {"sasl.mechanisms", "set `sasl_mechanism` instead"},
    {"sasl.mechanism", "set `sasl_mechanism` instead"},
    {"ssl.ca.location", "set `tls_ca` instead"},
    {"ssl.certificate.location", "set `tls_cert` instead"},
    {"ssl.key.location", "set `tls_key` instead"},
    {"reconnect.backoff.ms", "set `backoff` instead"},
    {"reconnect.backoff.max.ms", "set `max_backoff` instead"},
    {NULL, NULL},
};

static const char *reserved_why(const kafka_reserved *reserved, const char *key) {
  for (size_t i = 0; connection_reserved[i].key; i++)
    if (strcmp(connection_reserved[i].key, key) == 0) return connection_reserved[i].why;
  for (size_t i = 0; reserved && reserved[i].key; i++)
    if (strcmp(reserved[i].key, key) == 0) return reserved[i].why;
  return NULL;
}

static sl_status set_options(const sl_conf_map *options, const kafka_reserved *reserved,
                             rd_kafka_conf_t *conf, sl_error *err) {
  for (size_t i = 0; i < options->count; i++) {
    const char *key = options->keys[i], *value = options->values[i] ? options->values[i] : "";
    const char *why = reserved_why(reserved, key);
    if (why) return sl_error_set(err, SL_CONFIG, "options: %s: %s", key, why);
    char reason[512];
    rd_kafka_conf_res_t res;
    if (set_ok(conf, key, value, reason, sizeof reason, &res)) continue;
    if (res == RD_KAFKA_CONF_UNKNOWN)
      return sl_error_set(err, SL_CONFIG,
                          "options: %s: not a librdkafka property (see librdkafka's "
                          "CONFIGURATION.md for the names)",
                          key);
    return sl_error_set(err, SL_CONFIG, "options: %s: %s", key, reason);
  }
  return SL_OK;
}

sl_status sl__kafka_conf_build(const kafka_client_config *cfg, const kafka_property *props,
                               const kafka_reserved *reserved, kafka_log *log,
                               rd_kafka_conf_t **out, sl_error *err) {
  *out = NULL;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* Idle connections closed by brokers are routine; librdkafka would log each one. */
  sl_status st = set_property(conf, "options", "log.connection.close", "false", err);
  if (st == SL_OK) st = set_client(cfg, conf, err);
  for (size_t i = 0; props && props[i].key && st == SL_OK; i++)
    st = set_property(conf, props[i].field, props[i].key, props[i].value, err);
  if (st == SL_OK) st = set_options(&cfg->options, reserved, conf, err);
  if (st != SL_OK) {
    rd_kafka_conf_destroy(conf);
    return st;
  }
  rd_kafka_conf_set_opaque(conf, log);
  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_error_cb(conf, on_error);
  *out = conf;
  return SL_OK;
}

/* --- bytes ------------------------------------------------------------------------ */


size_t sl__kafka_base64(const void *bytes, size_t len, char *out) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t *s = bytes;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < len) v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < len) v |= s[i + 2];
    out[o++] = digits[(v >> 18) & 63];
    out[o++] = digits[(v >> 12) & 63];
    out[o++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? digits[v & 63] : '=';
  }
  return o;
}
