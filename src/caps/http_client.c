/*
 * http_client.c - sends a processor's HTTP request with libcurl, under its node's policy.
 *
 * One call is one exchange: the request, and at most max_redirects more requests for the
 * redirects it meets. Each hop gets a fresh easy handle, so no connection, DNS entry or
 * cookie outlives the hop it was checked for. curl is told as little as possible and
 * trusted with as little as possible:
 *   - it never follows redirects (we do, re-checking the URL each time) and speaks only
 *     http and https, without proxies;
 *   - the URL it gets is the one the policy parsed, re-serialised by curl with the host
 *     normalised, so the request goes where the check looked;
 *   - every socket it opens goes through on_open_socket, which asks the policy about the
 *     address (after DNS, for every address tried, on every hop) and refuses with
 *     CURL_SOCKET_BAD, so a refused address never sees a SYN;
 *   - the body and the response head are counted as they arrive and the transfer is
 *     aborted past the caps, or as soon as a Content-Length announces too much (checked
 *     here: CURLOPT_MAXFILESIZE would also refuse a HEAD or 304 answer announcing a large
 *     body it does not carry);
 *   - one timeout covers the whole exchange, redirects included.
 * Headers: the guest's, checked, minus those a header rule of the hop's host replaces,
 * plus the rule's. Rules are per host, so a redirect to another host drops them; it also
 * drops the guest's own credentials (Authorization, Cookie), as browsers do.
 *
 * Sections: one exchange's state and curl's callbacks - checking the request - headers
 * for one hop - one hop - redirects - sl_http_send.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "caps/http_internal.h"

/* ---- one exchange's state and curl's callbacks ---- */

typedef struct owned_header {
  char *name; /* lower-case */
  char *value;
} owned_header;

/* What one hop's callbacks fill in. */
typedef struct hop_state {
  const sl_http_policy *policy;
  const sl_http_target *target;

  bool refused;        /* on_open_socket refused an address */
  char refusal[320];   /* the first refusal's reason */
  bool head_too_large; /* the response head passed a cap */
  bool body_too_large; /* the response body passed max_response_bytes */

  owned_header *headers; /* of the latest response head (an interim 1xx is replaced) */
  size_t header_count, header_cap;
  size_t head_bytes; /* every header line of this hop, interim heads included */
  bool head_done;    /* the blank line was seen; later lines are trailers */
  bool no_body;      /* a HEAD request: a Content-Length describes nothing we receive */
  int head_status;   /* from the latest status line */

  uint8_t *body;
  size_t body_len, body_cap;
} hop_state;

static void headers_clear(hop_state *hop) {
  for (size_t i = 0; i < hop->header_count; i++) {
    free(hop->headers[i].name);
    free(hop->headers[i].value);
  }
  hop->header_count = 0;
}

static void hop_free(hop_state *hop) {
  headers_clear(hop);
  free(hop->headers);
  free(hop->body);
  hop->headers = NULL;
  hop->body = NULL;
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* A final head whose Content-Length is over the cap is refused before any of the body
 * arrives. Not for HEAD, 1xx, 204 and 304: those announce a length they do not carry. */
static bool announces_too_much(const hop_state *hop) {
  if (hop->no_body || hop->head_status < 200 || hop->head_status == 204 || hop->head_status == 304)
    return false;
  for (size_t i = 0; i < hop->header_count; i++) {
    if (strcmp(hop->headers[i].name, "content-length") != 0) continue;
    char *end = NULL;
    unsigned long long length = strtoull(hop->headers[i].value, &end, 10);
    if (end != hop->headers[i].value && length > hop->policy->max_response_bytes) return true;
  }
  return false;
}

/* Called once per header line, CRLF included, for every response head of the hop (1xx
 * interim heads, the final head, trailers). Returning less than `len` aborts the transfer. */
static size_t on_header(char *data, size_t size, size_t nitems, void *user) {
  hop_state *hop = user;
  size_t len = size * nitems;
  hop->head_bytes += len;
  if (hop->head_bytes > SL_HTTP_MAX_RESPONSE_HEADER_BYTES) {
    hop->head_too_large = true;
    return 0;
  }
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) { /* a status line starts a new head */
    headers_clear(hop);
    hop->head_done = false;
    const char *code = memchr(data, ' ', len);
    hop->head_status = code && code + 4 <= data + len ? atoi(code + 1) : 0;
    return len;
  }
  size_t line = len;
  while (line > 0 && (data[line - 1] == '\r' || data[line - 1] == '\n')) line--;
  if (line == 0) {
    hop->head_done = true;
    if (announces_too_much(hop)) {
      hop->body_too_large = true;
      return 0;
    }
    return len;
  }
  if (hop->head_done) return len; /* a trailer: not part of the response we return */
  if (is_ows(data[0])) {
    /* An obsolete folded continuation: it belongs to the previous value. */
    if (hop->header_count == 0) return len;
    owned_header *last = &hop->headers[hop->header_count - 1];
    size_t old = strlen(last->value), start = 0;
    while (start < line && is_ows(data[start])) start++;
    char *joined = realloc(last->value, old + 1 + (line - start) + 1);
    if (!joined) return 0;
    joined[old] = ' ';
    memcpy(joined + old + 1, data + start, line - start);
    joined[old + 1 + line - start] = '\0';
    last->value = joined;
    return len;
  }
  const char *colon = memchr(data, ':', line);
  if (!colon || colon == data) return len; /* not a header line; curl let it through */
  if (hop->header_count == SL_HTTP_MAX_RESPONSE_HEADERS) {
    hop->head_too_large = true;
    return 0;
  }
  if (hop->header_count == hop->header_cap) {
    size_t cap = hop->header_cap ? hop->header_cap * 2 : 16;
    owned_header *grown = realloc(hop->headers, cap * sizeof *grown);
    if (!grown) return 0;
    hop->headers = grown;
    hop->header_cap = cap;
  }
  size_t name_len = (size_t)(colon - data);
  const char *value = colon + 1, *end = data + line;
  while (value < end && is_ows(*value)) value++;
  while (end > value && is_ows(end[-1])) end--;
  char *name = strndup(data, name_len);
  char *copy = strndup(value, (size_t)(end - value));
  if (!name || !copy) {
    free(name);
    free(copy);
    return 0;
  }
  for (char *p = name; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  hop->headers[hop->header_count++] = (owned_header){name, copy};
  return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
  hop_state *hop = user;
  size_t len = size * nmemb;
  if (len > hop->policy->max_response_bytes - hop->body_len) {
    hop->body_too_large = true;
    return 0;
  }
  if (hop->body_len + len > hop->body_cap) {
    size_t cap = hop->body_cap ? hop->body_cap : 4096;
    while (cap < hop->body_len + len) cap *= 2;
    if (cap > hop->policy->max_response_bytes) cap = hop->policy->max_response_bytes;
    uint8_t *grown = realloc(hop->body, cap);
    if (!grown) return 0;
    hop->body = grown;
    hop->body_cap = cap;
  }
  memcpy(hop->body + hop->body_len, data, len);
  hop->body_len += len;
  return len;
}

/* Every connection curl makes starts here, so this is where step 3 of the policy runs. */
static curl_socket_t on_open_socket(void *user, curlsocktype purpose,
                                    struct curl_sockaddr *address) {
  hop_state *hop = user;
  char why[sizeof hop->refusal];
  bool allowed =
      purpose == CURLSOCKTYPE_IPCXN &&
      sl_http_policy_check_address(hop->policy, hop->target, &address->addr, why, sizeof why);
  if (!allowed) {
    atomic_fetch_add(&hop->policy->counters->connects_refused, 1);
    if (!hop->refused) {
      hop->refused = true;
      if (purpose != CURLSOCKTYPE_IPCXN) snprintf(why, sizeof why, "refused a non-TCP socket");
      memcpy(hop->refusal, why, sizeof why);
    }
    return CURL_SOCKET_BAD;
  }
  atomic_fetch_add(&hop->policy->counters->connects_allowed, 1);
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* ---- checking the request ---- */

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

static sl_http_outcome request_check(const sl_http_request *request, char *why, size_t why_cap) {
  bool known = false;
  for (size_t i = 0; i < sizeof methods / sizeof *methods && request->method; i++)
    known = known || strcmp(request->method, methods[i]) == 0;
  if (!known) {
    bool printable = request->method != NULL;
    for (const char *p = request->method; printable && *p; p++) printable = *p > 0x20 && *p < 0x7f;
    sl__http_why(why, why_cap, "method %.16s is not allowed (GET, POST, PUT, PATCH, DELETE, HEAD)",
                 printable ? request->method : "(unprintable)");
    return SL_HTTP_INVALID_REQUEST;
  }
  if (strcmp(request->method, "HEAD") == 0 && request->body_len > 0) {
    sl__http_why(why, why_cap, "a HEAD request cannot have a body");
    return SL_HTTP_INVALID_REQUEST;
  }
  if (request->header_count > SL_HTTP_MAX_REQUEST_HEADERS) {
    sl__http_why(why, why_cap, "%zu headers; at most %d", request->header_count,
                 SL_HTTP_MAX_REQUEST_HEADERS);
    return SL_HTTP_INVALID_REQUEST;
  }
  size_t bytes = 0;
  for (size_t i = 0; i < request->header_count; i++) {
    const sl_kv *h = &request->headers[i];
    if (!h->key || !sl__http_header_name_is_valid(h->key)) {
      sl__http_why(why, why_cap, "header %zu: the name is not a valid header name", i);
      return SL_HTTP_INVALID_REQUEST;
    }
    if (sl__http_header_is_reserved(h->key)) {
      sl__http_why(why, why_cap, "header %.64s is set by the host, not the module", h->key);
      return SL_HTTP_INVALID_REQUEST;
    }
    if (!h->value || !sl__http_header_value_is_valid(h->value)) {
      sl__http_why(why, why_cap, "header %.64s: the value holds a line break or control character",
                   h->key);
      return SL_HTTP_INVALID_REQUEST;
    }
    bytes += strlen(h->key) + strlen(h->value) + 4;
  }
  if (bytes > SL_HTTP_MAX_REQUEST_HEADER_BYTES) {
    sl__http_why(why, why_cap, "the headers take %zu bytes; at most %u", bytes,
                 SL_HTTP_MAX_REQUEST_HEADER_BYTES);
    return SL_HTTP_INVALID_REQUEST;
  }
  if (request->body_len > 0 && !request->body) {
    sl__http_why(why, why_cap, "the body has a length but no bytes");
    return SL_HTTP_INVALID_REQUEST;
  }
  return SL_HTTP_OK;
}

/* ---- headers for one hop ---- */

/* What a redirect changed about the request. */
typedef struct hop_request {
  const char *method;
  const uint8_t *body;
  size_t body_len;
  bool has_body;          /* send a body (maybe empty) with Content-Length */
  bool drop_body_headers; /* the body was dropped (303, or 301/302 after POST) */
  bool drop_credentials;  /* the exchange left the first origin */
} hop_request;

/* The injected rule for `name` that fits the host best: an exact host beats a wildcard,
 * a longer wildcard beats a shorter one. */
static bool rule_is_better(const sl__http_inject *candidate, const sl__http_inject *current) {
  if (!current) return true;
  if (current->wildcard != candidate->wildcard) return !candidate->wildcard;
  return strlen(candidate->host) > strlen(current->host);
}

static const sl__http_inject *injected_for(const sl_http_policy *policy, const char *host,
                                           const char *name) {
  const sl__http_inject *best = NULL;
  for (size_t i = 0; i < policy->inject_count; i++) {
    const sl__http_inject *rule = &policy->injects[i];
    if (strcasecmp(rule->name, name) != 0) continue;
    if (!sl__http_host_matches(rule->host, rule->wildcard, host)) continue;
    if (rule_is_better(rule, best)) best = rule;
  }
  return best;
}

static bool is_body_header(const char *name) {
  return strcasecmp(name, "content-type") == 0 || strcasecmp(name, "content-encoding") == 0 ||
         strcasecmp(name, "content-language") == 0 || strcasecmp(name, "content-location") == 0;
}

static bool is_credential_header(const char *name) {
  return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "cookie") == 0 ||
         strcasecmp(name, "proxy-authorization") == 0;
}

static bool line_append(struct curl_slist **list, const char *line) {
  struct curl_slist *grown = curl_slist_append(*list, line);
  if (!grown) return false;
  *list = grown;
  return true;
}

/* Appends "Name: value" (or "Name;" for an empty value, curl's way of sending one). */
static bool header_append(struct curl_slist **list, const char *name, const char *value) {
  size_t len = strlen(name) + strlen(value) + 3;
  char *line = malloc(len);
  if (!line) return false;
  if (*value) {
    snprintf(line, len, "%s: %s", name, value);
  } else {
    snprintf(line, len, "%s;", name);
  }
  bool ok = line_append(list, line);
  /* The line may hold a secret: wipe our copy (curl keeps its own until slist_free). */
  explicit_bzero(line, len);
  free(line);
  return ok;
}

static bool headers_build(const sl_http_policy *policy, const sl_http_target *target,
                          const sl_http_request *request, const hop_request *hop,
                          struct curl_slist **out) {
  struct curl_slist *list = NULL;
  bool content_type = false;
  for (size_t i = 0; i < request->header_count; i++) {
    const sl_kv *h = &request->headers[i];
    if (injected_for(policy, target->host, h->key)) continue;
    if (hop->drop_body_headers && is_body_header(h->key)) continue;
    if (hop->drop_credentials && is_credential_header(h->key)) continue;
    content_type = content_type || strcasecmp(h->key, "content-type") == 0;
    if (!header_append(&list, h->key, h->value)) goto fail;
  }
  /* Each injected name once, with the best rule for this host. */
  for (size_t i = 0; i < policy->inject_count; i++) {
    const sl__http_inject *rule = &policy->injects[i];
    if (injected_for(policy, target->host, rule->name) != rule) continue;
    content_type = content_type || strcasecmp(rule->name, "content-type") == 0;
    if (!header_append(&list, rule->name, rule->value)) goto fail;
  }
  /* curl would add "Expect: 100-continue" to large bodies and a form Content-Type to
   * every body; neither is what the module asked for. "Name:" with nothing after it
   * removes a header curl would add. */
  if (!line_append(&list, "Expect:") ||
      (hop->has_body && !content_type && !line_append(&list, "Content-Type:")))
    goto fail;
  *out = list;
  return true;
fail:
  curl_slist_free_all(list);
  return false;
}

/* ---- one hop ---- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool method_setup(CURL *curl, const hop_request *req) {
  bool ok = true;
  if (strcmp(req->method, "HEAD") == 0) {
    ok = curl_easy_setopt(curl, CURLOPT_NOBODY, 1L) == CURLE_OK;
  } else if (!req->has_body && strcmp(req->method, "GET") == 0) {
    ok = curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
  } else {
    if (strcmp(req->method, "POST") != 0)
      ok = curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
    if (req->has_body || strcmp(req->method, "POST") == 0) {
      /* curl reads the body in place: it is borrowed until sl_http_send returns. */
      ok = ok &&
           curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) ==
               CURLE_OK &&
           curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "") ==
               CURLE_OK;
    }
  }
  return ok;
}

/* Runs one request to `url` (already checked for `target`) in at most `budget_ms`. */
static sl_http_outcome hop_run(const sl_http_policy *policy, const sl_http_target *target,
                               const char *url, const sl_http_request *request,
                               const hop_request *req, uint64_t budget_ms, hop_state *hop,
                               long *status, char *why, size_t why_cap) {
  memset(hop, 0, sizeof *hop);
  hop->policy = policy;
  hop->target = target;
  hop->no_body = strcmp(req->method, "HEAD") == 0;
  char curl_error[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  CURL *curl = curl_easy_init();
  if (!curl || !headers_build(policy, target, request, req, &headers)) {
    curl_easy_cleanup(curl);
    sl__http_why(why, why_cap, "out of memory preparing the request");
    return SL_HTTP_FAILED;
  }
  long connect_ms =
      (long)(budget_ms < SL_HTTP_CONNECT_TIMEOUT_MS ? budget_ms : SL_HTTP_CONNECT_TIMEOUT_MS);
  bool ok = curl_easy_setopt(curl, CURLOPT_URL, url) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_PROXY, "") == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_NOPROXY, "*") == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)budget_ms) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, hop) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_HEADERDATA, hop) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, hop) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error) == CURLE_OK &&
            method_setup(curl, req);
  sl_http_outcome outcome = SL_HTTP_FAILED;
  if (!ok) {
    sl__http_why(why, why_cap, "could not set up the request (libcurl refused an option)");
    goto done;
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    outcome = SL_HTTP_OK;
  } else if (hop->head_too_large) {
    sl__http_why(why, why_cap, "the response head from %s is larger than %u bytes or %d headers",
                 target->host, SL_HTTP_MAX_RESPONSE_HEADER_BYTES, SL_HTTP_MAX_RESPONSE_HEADERS);
    outcome = SL_HTTP_TOO_LARGE;
  } else if (hop->body_too_large) {
    sl__http_why(why, why_cap, "the response body from %s is larger than max_response_bytes (%llu)",
                 target->host, (unsigned long long)policy->max_response_bytes);
    outcome = SL_HTTP_TOO_LARGE;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    sl__http_why(why, why_cap, "no complete answer from %s in time", target->host);
    outcome = SL_HTTP_TIMEOUT;
  } else if (hop->refused) {
    sl__http_why(why, why_cap, "%s", hop->refusal);
    outcome = SL_HTTP_DENIED;
  } else {
    /* curl's messages name hosts and ports, never header values. */
    sl__http_why(why, why_cap, "request to %s failed: %s", target->host,
                 curl_error[0] ? curl_error : curl_easy_strerror(rc));
  }
done:
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  return outcome;
}

/* ---- redirects ---- */

static bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static const char *header_find(const hop_state *hop, const char *name) {
  for (size_t i = 0; i < hop->header_count; i++)
    if (strcmp(hop->headers[i].name, name) == 0) return hop->headers[i].value;
  return NULL;
}

/* `location` resolved against `base` by curl's URL API (relative references included);
 * malloc'ed, NULL when it cannot be resolved. */
static char *location_resolve(const char *base, const char *location) {
  char *resolved = NULL, *whole = NULL;
  CURLU *u = curl_url();
  if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &whole, 0) == CURLUE_OK) {
    resolved = strdup(whole);
  }
  curl_free(whole);
  curl_url_cleanup(u);
  return resolved;
}

/* A message may quote a URL from a server: printable ASCII only, and not all of it. */
static const char *url_shown(const char *url, char *out, size_t cap) {
  size_t n = 0;
  const char *p = url;
  for (; *p && n + 4 < cap; p++)
    out[n++] = ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) ? *p : '?';
  if (*p) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
  return out;
}

static bool same_origin(const sl_http_target *a, const sl_http_target *b) {
  return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* ---- sl_http_send ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

bool sl__http_curl_init(void) {
  pthread_once(&curl_once, curl_init_once);
  return curl_init_result == CURLE_OK;
}

/* Moves the final hop's head and body into `response`; false when out of memory. */
static bool response_take(hop_state *hop, long status, sl_http_response *response) {
  if (hop->header_count) {
    response->headers = calloc(hop->header_count, sizeof *response->headers);
    if (!response->headers) return false;
    for (size_t i = 0; i < hop->header_count; i++) {
      response->headers[i] = (sl_kv){hop->headers[i].name, hop->headers[i].value};
    }
    response->header_count = hop->header_count;
    hop->header_count = 0; /* the strings now belong to the response */
  }
  response->status = (uint16_t)status;
  response->body = hop->body;
  response->body_len = hop->body_len;
  hop->body = NULL;
  return true;
}

sl_http_outcome sl_http_send(const sl_http_policy *policy, const sl_http_request *request,
                             uint64_t deadline_ms, sl_http_response *response, char *why,
                             size_t why_cap) {
  memset(response, 0, sizeof *response);
  if (why && why_cap) why[0] = '\0';
  sl_http_outcome outcome = request_check(request, why, why_cap);
  if (outcome != SL_HTTP_OK) return outcome;
  if (request->body_len > policy->max_request_bytes) {
    sl__http_why(why, why_cap, "the request body has %zu bytes; max_request_bytes is %llu",
                 request->body_len, (unsigned long long)policy->max_request_bytes);
    return SL_HTTP_TOO_LARGE;
  }
  if (!sl__http_curl_init()) {
    sl__http_why(why, why_cap, "libcurl could not be initialised");
    return SL_HTTP_FAILED;
  }

  uint64_t budget = policy->timeout_ms;
  if (deadline_ms && deadline_ms < budget) budget = deadline_ms;
  uint64_t start = now_ms();

  sl_http_target target, first;
  char *url = NULL;
  sl__http_url_verdict verdict =
      sl__http_policy_parse_url(policy, request->url, &target, &url, why, why_cap);
  if (verdict != SL__HTTP_URL_OK) {
    return verdict == SL__HTTP_URL_DENIED ? SL_HTTP_DENIED : SL_HTTP_INVALID_REQUEST;
  }
  first = target;
  hop_request req = {
      .method = request->method,
      .body = request->body,
      .body_len = request->body_len,
      .has_body = request->body_len > 0 || strcmp(request->method, "POST") == 0 ||
                  strcmp(request->method, "PUT") == 0 || strcmp(request->method, "PATCH") == 0,
  };
  hop_state hop = {0};
  for (unsigned redirects = 0;; redirects++) {
    uint64_t elapsed = now_ms() - start;
    if (elapsed >= budget) {
      sl__http_why(why, why_cap, "the timeout (%llu ms) passed during redirects",
                   (unsigned long long)budget);
      outcome = SL_HTTP_TIMEOUT;
      break;
    }
    long status = 0;
    hop_free(&hop);
    outcome =
        hop_run(policy, &target, url, request, &req, budget - elapsed, &hop, &status, why, why_cap);
    if (outcome == SL_HTTP_DENIED && redirects > 0) {
      /* Refused at the address: say that a redirect led there. */
      char reason[400], shown[200];
      snprintf(reason, sizeof reason, "%s", why);
      sl__http_why(why, why_cap, "redirect to %s denied: %s", url_shown(url, shown, sizeof shown),
                   reason);
    }
    if (outcome != SL_HTTP_OK) break;
    const char *location = header_find(&hop, "location");
    if (!is_redirect(status) || !location || !*location || policy->max_redirects == 0) {
      if (!response_take(&hop, status, response)) {
        sl__http_why(why, why_cap, "out of memory keeping the response");
        outcome = SL_HTTP_FAILED;
      }
      break;
    }
    if (redirects == policy->max_redirects) {
      sl__http_why(why, why_cap, "more than %u redirects (max_redirects)", policy->max_redirects);
      outcome = SL_HTTP_FAILED;
      break;
    }
    char shown[200];
    char *next = location_resolve(url, location);
    if (!next) {
      sl__http_why(why, why_cap, "%s answered %ld with a Location that is not a URL: %s",
                   target.host, status, url_shown(location, shown, sizeof shown));
      outcome = SL_HTTP_FAILED;
      break;
    }
    char reason[320];
    free(url);
    url = NULL;
    verdict = sl__http_policy_parse_url(policy, next, &target, &url, reason, sizeof reason);
    if (verdict != SL__HTTP_URL_OK) {
      sl__http_why(why, why_cap, "redirect to %s denied: %s", url_shown(next, shown, sizeof shown),
                   reason);
      free(next);
      outcome = SL_HTTP_DENIED;
      break;
    }
    free(next);
    /* What browsers do: 303 always, and 301/302 after POST, become a GET without body. */
    bool to_get = (status == 303 && strcmp(req.method, "HEAD") != 0) ||
                  ((status == 301 || status == 302) && strcmp(req.method, "POST") == 0);
    if (to_get) {
      req.method = "GET";
      req.body = NULL;
      req.body_len = 0;
      req.has_body = false;
      req.drop_body_headers = true;
    }
    req.drop_credentials = req.drop_credentials || !same_origin(&first, &target);
  }
  hop_free(&hop);
  free(url);
  if (outcome != SL_HTTP_OK) sl_http_response_free(response);
  return outcome;
}

void sl_http_response_free(sl_http_response *response) {
  if (!response) return;
  for (size_t i = 0; i < response->header_count; i++) {
    free((char *)response->headers[i].key);
    free((char *)response->headers[i].value);
  }
  free(response->headers);
  free(response->body);
  memset(response, 0, sizeof *response);
}
