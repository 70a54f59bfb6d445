/*
 * http.h - outgoing HTTP for processors: the grant's policy and the client that obeys it.
 *
 * The policy is built once per node from its sl_http_grant and is immutable, so every
 * worker thread may use it at once. `sl_http_send` checks the URL (scheme, host, port
 * after parsing), checks each address it is about to connect to (no loopback, private,
 * link-local... unless the allow-list names that address), follows redirects only to
 * allowed targets, caps sizes, applies timeouts, and adds the grant's headers.
 * docs/design/capabilities.md, "Outgoing HTTP policy", is the specification.
 */
#ifndef SL_CAPS_HTTP_H
#define SL_CAPS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sluice/capabilities.h"
#include "sluice/engine.h"
#include "sluice/status.h"

typedef struct sl_http_policy sl_http_policy;

/* Checks and compiles the grant. SL_CONFIG with a message naming the bad entry (an
 * allow-list entry that is not [SCHEME://]HOST[:PORT], a header rule for a host that is
 * not in the allow-list, ...). */
sl_status sl_http_policy_new(const sl_http_grant *grant, sl_http_policy **out, sl_error *err);
void sl_http_policy_destroy(sl_http_policy *policy);

/* The target of a URL after parsing: what the allow-list is checked against. */
typedef struct sl_http_target {
  char scheme[8]; /* "http" or "https" */
  char host[256]; /* lower-case, no trailing dot, IPv6 without brackets */
  uint16_t port;  /* explicit or the scheme's default */
  int entry;      /* index of the allow-list entry that matched; -1 when none */
} sl_http_target;

/* Steps 1 and 2 of the policy: parse `url` and match it. false with the reason in `why`
 * ("scheme ftp is not allowed", "host 127.0.0.1 port 80 is not in allowed_hosts", ...). */
bool sl_http_policy_check_url(const sl_http_policy *policy, const char *url,
                              sl_http_target *target, char *why, size_t why_cap);

/* Step 3: may we connect to `addr` for `target`? */
bool sl_http_policy_check_address(const sl_http_policy *policy, const sl_http_target *target,
                                  const struct sockaddr *addr, char *why, size_t why_cap);

typedef struct sl_http_request {
  const char *method; /* NUL-terminated */
  const char *url;    /* NUL-terminated */
  const sl_kv *headers;
  size_t header_count;
  const uint8_t *body;
  size_t body_len;
} sl_http_request;

typedef struct sl_http_response {
  uint16_t status;
  sl_kv *headers; /* owned (keys and values malloc'ed) */
  size_t header_count;
  uint8_t *body; /* owned */
  size_t body_len;
} sl_http_response;

/* The cases of the WIT `error` variant of sluice:processor/outgoing-http, in order. */
typedef enum sl_http_outcome {
  SL_HTTP_DENIED = 0,
  SL_HTTP_INVALID_REQUEST = 1,
  SL_HTTP_TIMEOUT = 2,
  SL_HTTP_TOO_LARGE = 3,
  SL_HTTP_FAILED = 4,
  SL_HTTP_OK = 100,
} sl_http_outcome;

/* Sends the request and fills `response` (free it with sl_http_response_free; it is
 * zeroed on failure). `deadline_ms` caps the grant's timeout (0: no extra cap). On
 * failure `why` says what happened, without secret header values. Thread-safe. */
sl_http_outcome sl_http_send(const sl_http_policy *policy, const sl_http_request *request,
                             uint64_t deadline_ms, sl_http_response *response, char *why,
                             size_t why_cap);
void sl_http_response_free(sl_http_response *response);

/* For tests: how many connections the policy allowed and refused (open-socket callback). */
typedef struct sl_http_policy_stats {
  uint64_t connects_allowed;
  uint64_t connects_refused;
} sl_http_policy_stats;
void sl_http_policy_stats_get(const sl_http_policy *policy, sl_http_policy_stats *stats);

#endif
