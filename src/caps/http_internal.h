/*
 * http_internal.h - what http_policy.c (decides) shares with http_client.c (sends).
 *
 * The policy is compiled once from the grant and then only read, by any number of
 * threads; the only thing that changes after sl_http_policy_new are the connect
 * counters, which live behind a pointer so that a const policy can still count.
 * Nothing here is for other modules: they use http.h.
 */
#ifndef SL_CAPS_HTTP_INTERNAL_H
#define SL_CAPS_HTTP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caps/http.h"

/* Longest URL accepted from a guest or in a Location header. Servers commonly refuse
 * longer ones anyway, and it bounds what a message may quote. */
#define SL_HTTP_URL_MAX 8192

/* What a request from a guest may carry, and what a response may bring back besides its
 * body (whose cap is the grant's max_response_bytes). The header limits are those of
 * common servers (nginx's large_client_header_buffers, curl's own header limit). */
#define SL_HTTP_MAX_REQUEST_HEADERS 100
#define SL_HTTP_MAX_REQUEST_HEADER_BYTES (64u << 10)
#define SL_HTTP_MAX_RESPONSE_HEADERS 200
#define SL_HTTP_MAX_RESPONSE_HEADER_BYTES (64u << 10)

/* Connecting (DNS, TCP and TLS handshakes) may take at most this long, and never more
 * than what is left of the exchange's timeout. */
#define SL_HTTP_CONNECT_TIMEOUT_MS 10000u

/* A host name is at most 253 characters in DNS; sl_http_target.host holds 255. */
#define SL_HTTP_HOST_MAX 255

/* One allow-list entry, `[SCHEME://]HOST[:PORT]`, after parsing. */
typedef struct sl__http_entry {
  char *text;                      /* as written, for messages */
  char scheme[8];                  /* "http", "https", or "" for either */
  char host[SL_HTTP_HOST_MAX + 1]; /* normalised like a target's; for `*.d`, "d" */
  bool wildcard;                   /* `*.host`: sub-domains of host, not host itself */
  bool default_port;               /* no port written: 80 for http, 443 for https */
  uint16_t port;                   /* when !default_port */
  bool is_ip;                      /* host is an IP literal; addr holds it */
  uint8_t addr[16];                /* IPv6, or IPv4 as ::ffff:a.b.c.d */
} sl__http_entry;

/* A header the host adds for requests whose target host matches `host`. */
typedef struct sl__http_inject {
  char host[SL_HTTP_HOST_MAX + 1]; /* normalised; for `*.d`, "d" */
  bool wildcard;
  char *name;
  char *value; /* a secret: never copied into a message */
} sl__http_inject;

/* Mutable through a const policy: every thread that sends counts here. */
typedef struct sl__http_counters {
  atomic_uint_fast64_t connects_allowed;
  atomic_uint_fast64_t connects_refused;
} sl__http_counters;

struct sl_http_policy {
  sl__http_entry *entries;
  size_t entry_count;
  sl__http_inject *injects;
  size_t inject_count;
  uint64_t timeout_ms; /* the grant's, or SL_HTTP_DEFAULT_TIMEOUT_MS */
  uint64_t max_request_bytes;
  uint64_t max_response_bytes;
  unsigned max_redirects;
  sl__http_counters *counters;
};

/* How a URL fared against steps 1 and 2. A URL that cannot be a request at all
 * (unparsable, control characters, empty host) is INVALID; one that is a request the
 * grant does not allow (scheme, userinfo, host or port not in the list) is DENIED. */
typedef enum sl__http_url_verdict {
  SL__HTTP_URL_OK,
  SL__HTTP_URL_INVALID,
  SL__HTTP_URL_DENIED,
} sl__http_url_verdict;

/* sl_http_policy_check_url with the verdict's kind, and on success the URL to send in
 * `*canonical` (malloc'ed, caller frees; NULL on failure): the parsed URL re-serialised by
 * curl with the normalised host put back, so the request goes exactly where the check
 * looked. `canonical` may be NULL. */
sl__http_url_verdict sl__http_policy_parse_url(const sl_http_policy *policy, const char *url,
                                               sl_http_target *target, char **canonical, char *why,
                                               size_t why_cap);

/* The 16-byte form of an AF_INET or AF_INET6 socket address (IPv4 as ::ffff:a.b.c.d).
 * false for other families. */
bool sl__http_address_bytes(const struct sockaddr *addr, uint8_t out[16]);

/* Why `addr` (16-byte form) must not be connected to without a literal allow-list entry:
 * "loopback", "private (10.0.0.0/8)", ... ; NULL for a public unicast address. */
const char *sl__http_address_class(const uint8_t addr[16]);

/* Header checks shared by guest headers (client) and header rules (policy): a name must
 * be an RFC 9110 token; a value may not hold CR, LF, NUL or other control bytes (a tab is
 * fine); reserved names are those the client frames itself or that are hop-by-hop (Host,
 * Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer, Expect,
 * Proxy-Connection). */
bool sl__http_header_name_is_valid(const char *name);
bool sl__http_header_value_is_valid(const char *value);
bool sl__http_header_is_reserved(const char *name);

/* curl_global_init, once per process, from whichever thread comes first (http_client.c).
 * false when libcurl could not be initialised. */
bool sl__http_curl_init(void);

/* Does `host` (normalised) fall under a rule or entry host `pattern`? */
bool sl__http_host_matches(const char *pattern, bool wildcard, const char *host);

/* Formats a reason into `why` (which may be NULL). */
void sl__http_why(char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
