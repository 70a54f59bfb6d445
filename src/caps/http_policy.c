/*
 * http_policy.c - which outgoing HTTP requests a processor's grant allows.
 *
 * Steps 1-3 of docs/design/capabilities.md, "Outgoing HTTP policy":
 *   1. a URL is parsed with curl's URL API (never by slicing the text): http and https
 *      only, no userinfo, a non-empty host that is a valid name or IP literal;
 *   2. its scheme, normalised host and port are matched against the allow-list;
 *   3. every address the client is about to connect to is classified, and anything but a
 *      public unicast address is refused unless the matched entry names it literally.
 * Step 3 is what stops decimal, octal and hex hosts and names that resolve to loopback:
 * curl 7.88 already rewrites 2130706433, 0177.0.0.1 and 0x7f.1 to 127.0.0.1, but the check
 * does not rely on that, it looks at the address.
 *
 * Sections: small helpers - hosts - allow-list entries - header rules - addresses -
 * URLs - the policy object.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caps/http_internal.h"

/* More redirects than this in a grant is surely a mistake, and each costs a round trip. */
#define MAX_REDIRECTS_LIMIT 20

/* ---- small helpers ---- */

/* Copies at most 80 printable ASCII characters of untrusted text for a message; the rest
 * becomes "..." and anything unprintable "?", so a message never carries control bytes. */
static const char *shown(const char *text, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = text; *p && n + 4 < cap; p++) {
    if (n == 80) {
      memcpy(out + n, "...", 3);
      n += 3;
      break;
    }
    unsigned char c = (unsigned char)*p;
    out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  out[n] = '\0';
  return out;
}

#define SHOWN(text) shown((text), (char[96]){0}, 96)

void sl__http_why(char *why, size_t why_cap, const char *fmt, ...) {
  if (!why || why_cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_cap, fmt, ap);
  va_end(ap);
}

static uint16_t default_port(const char *scheme) { return strcmp(scheme, "https") == 0 ? 443 : 80; }

/* ---- hosts ---- */

/* A normalised host: lower-case, one trailing dot removed, IPv6 without brackets in
 * inet_ntop's form, and the address when it is an IP literal. */
typedef struct host_info {
  char name[SL_HTTP_HOST_MAX + 1];
  bool is_ip;
  bool is_ipv6;
  uint8_t addr[16];
} host_info;

static bool label_is_numeric(const char *label, size_t len) {
  if (len > 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) return true;
  for (size_t i = 0; i < len; i++)
    if (!isdigit((unsigned char)label[i])) return false;
  return len > 0;
}

/* Host names: labels of [a-z0-9_-], 1-63 characters each. A name whose last label is a
 * number is not a name but a malformed IPv4 address (the WHATWG URL rule): the resolver
 * might read it as one, so it is refused rather than looked up. */
static bool name_is_valid(const char *name, char *why, size_t why_cap) {
  size_t len = strlen(name);
  if (len == 0) return sl__http_why(why, why_cap, "the URL has an empty host"), false;
  if (len > 253)
    return sl__http_why(why, why_cap, "the host name is longer than 253 characters"), false;
  const char *label = name;
  for (;;) {
    const char *dot = strchr(label, '.');
    size_t label_len = dot ? (size_t)(dot - label) : strlen(label);
    if (label_len == 0 || label_len > 63) {
      sl__http_why(why, why_cap, "host %s is not a valid host name (empty or long label)",
                   SHOWN(name));
      return false;
    }
    for (size_t i = 0; i < label_len; i++) {
      char c = label[i];
      if (!(isalnum((unsigned char)c) || c == '-' || c == '_')) {
        sl__http_why(why, why_cap,
                     "host %s is not a valid host name (only ASCII letters, digits, '-' and '_'; "
                     "write international names in their xn-- form)",
                     SHOWN(name));
        return false;
      }
    }
    if (!dot) {
      if (label_is_numeric(label, label_len)) {
        sl__http_why(why, why_cap, "host %s is neither a host name nor a valid IPv4 address",
                     SHOWN(name));
        return false;
      }
      return true;
    }
    label = dot + 1;
  }
}

/* `raw` is a host as curl's URL API returns it (percent-decoded, IPv6 in brackets). */
static bool host_normalise(const char *raw, host_info *out, char *why, size_t why_cap) {
  memset(out, 0, sizeof *out);
  size_t len = strlen(raw);
  if (len == 0) return sl__http_why(why, why_cap, "the URL has an empty host"), false;
  if (raw[0] == '[') {
    char inner[64];
    if (raw[len - 1] != ']' || len - 2 >= sizeof inner) {
      return sl__http_why(why, why_cap, "host %s is not a valid IPv6 address", SHOWN(raw)), false;
    }
    memcpy(inner, raw + 1, len - 2);
    inner[len - 2] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET6, inner, &a6) != 1) {
      return sl__http_why(why, why_cap, "host %s is not a valid IPv6 address", SHOWN(raw)), false;
    }
    memcpy(out->addr, &a6, 16);
    inet_ntop(AF_INET6, &a6, out->name, sizeof out->name);
    out->is_ip = out->is_ipv6 = true;
    return true;
  }
  if (len > SL_HTTP_HOST_MAX) {
    return sl__http_why(why, why_cap, "the host name is longer than 253 characters"), false;
  }
  for (size_t i = 0; i < len; i++) out->name[i] = (char)tolower((unsigned char)raw[i]);
  out->name[len] = '\0';
  if (out->name[len - 1] == '.') out->name[--len] = '\0';
  struct in_addr a4;
  if (len > 0 && inet_pton(AF_INET, out->name, &a4) == 1) {
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(out->addr, mapped_prefix, 12);
    memcpy(out->addr + 12, &a4, 4);
    out->is_ip = true;
    return true;
  }
  return name_is_valid(out->name, why, why_cap);
}

bool sl__http_host_matches(const char *pattern, bool wildcard, const char *host) {
  if (!wildcard) return strcmp(pattern, host) == 0;
  size_t plen = strlen(pattern), hlen = strlen(host);
  return hlen > plen + 1 && host[hlen - plen - 1] == '.' &&
         strcmp(host + hlen - plen, pattern) == 0;
}

/* ---- allow-list entries ---- */

/* Parses `[SCHEME://]HOST[:PORT]` (HOST may be `*.name`, an IPv4 literal or a bracketed
 * IPv6 literal). The text check comes first so that curl never sees a path, query or
 * userinfo it would quietly accept; then curl parses host and port as it will for URLs. */
static bool entry_parse(const char *text, sl__http_entry *entry, char *why, size_t why_cap) {
  memset(entry, 0, sizeof *entry);
  if (!text || !*text) return sl__http_why(why, why_cap, "is empty"), false;
  const char *rest = text;
  const char *sep = strstr(text, "://");
  if (sep) {
    size_t scheme_len = (size_t)(sep - text);
    if (scheme_len == 4 && strncasecmp(text, "http", 4) == 0) {
      strcpy(entry->scheme, "http");
    } else if (scheme_len == 5 && strncasecmp(text, "https", 5) == 0) {
      strcpy(entry->scheme, "https");
    } else {
      return sl__http_why(why, why_cap, "has a scheme other than http:// or https://"), false;
    }
    rest = sep + 3;
  }
  for (const char *p = rest; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || strchr("/?#@\\%", c)) {
      return sl__http_why(why, why_cap,
                          "is not [SCHEME://]HOST[:PORT] (no path, query, user, spaces or "
                          "escapes)"),
             false;
    }
  }
  if (strncmp(rest, "*.", 2) == 0) {
    entry->wildcard = true;
    rest += 2;
  }
  if (strchr(rest, '*')) {
    return sl__http_why(why, why_cap,
                        "has a '*' that is not a leading \"*.\" (write *.example.com)"),
           false;
  }
  if (!*rest || rest[strlen(rest) - 1] == ':') {
    return sl__http_why(why, why_cap, "has an empty host or port"), false;
  }

  char url[SL_HTTP_HOST_MAX + 32];
  if ((size_t)snprintf(url, sizeof url, "http://%s/", rest) >= sizeof url) {
    return sl__http_why(why, why_cap, "is too long"), false;
  }
  bool ok = false;
  char *host = NULL, *port = NULL;
  CURLU *u = curl_url();
  if (!u) return sl__http_why(why, why_cap, "could not be parsed (out of memory)"), false;
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc != CURLUE_OK) {
    sl__http_why(why, why_cap, "could not be parsed: %s", curl_url_strerror(rc));
    goto done;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    sl__http_why(why, why_cap, "has no host");
    goto done;
  }
  char *zone = NULL;
  if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
    curl_free(zone);
    sl__http_why(why, why_cap, "has an IPv6 zone id, which is not allowed");
    goto done;
  }
  host_info info;
  char host_why[160];
  if (!host_normalise(host, &info, host_why, sizeof host_why)) {
    sl__http_why(why, why_cap, "is not valid: %s", host_why);
    goto done;
  }
  if (entry->wildcard && info.is_ip) {
    sl__http_why(why, why_cap, "puts a wildcard on an IP address; '*.' is for domain names");
    goto done;
  }
  rc = curl_url_get(u, CURLUPART_PORT, &port, 0);
  if (rc == CURLUE_OK) {
    long number = strtol(port, NULL, 10);
    if (number <= 0 || number > 65535) {
      sl__http_why(why, why_cap, "has port %s, which is not 1-65535", port);
      goto done;
    }
    entry->port = (uint16_t)number;
  } else {
    entry->default_port = true;
  }
  strcpy(entry->host, info.name);
  entry->is_ip = info.is_ip;
  memcpy(entry->addr, info.addr, 16);
  ok = true;
done:
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

static bool entry_matches(const sl__http_entry *entry, const sl_http_target *target,
                          const host_info *host) {
  if (entry->scheme[0] && strcmp(entry->scheme, target->scheme) != 0) return false;
  uint16_t port = entry->default_port ? default_port(target->scheme) : entry->port;
  if (port != target->port) return false;
  if (entry->is_ip || host->is_ip) {
    return entry->is_ip && host->is_ip && memcmp(entry->addr, host->addr, 16) == 0;
  }
  return sl__http_host_matches(entry->host, entry->wildcard, host->name);
}

/* ---- header rules ---- */

/* RFC 9110 token characters. */
bool sl__http_header_name_is_valid(const char *name) {
  if (!*name) return false;
  for (const char *p = name; *p; p++) {
    if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) return false;
  }
  return true;
}

/* Headers the client frames itself, and hop-by-hop headers: neither a guest nor a
 * header rule may set them, or the request on the wire would not be the one checked. */
static const char *const reserved_headers[] = {
    "host",    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "expect",         "proxy-connection",
};

bool sl__http_header_is_reserved(const char *name) {
  for (size_t i = 0; i < sizeof reserved_headers / sizeof *reserved_headers; i++)
    if (strcasecmp(name, reserved_headers[i]) == 0) return true;
  return false;
}

/* A value may hold visible characters, spaces and tabs; never CR, LF, NUL or other
 * control bytes (which would split or end the header on the wire). */
bool sl__http_header_value_is_valid(const char *value) {
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return false;
  }
  return true;
}

/* Could some host match both the rule's host and the entry's? */
static bool rule_meets_entry(const sl__http_inject *rule, bool rule_is_ip, const uint8_t *rule_addr,
                             const sl__http_entry *entry) {
  if (rule_is_ip || entry->is_ip) {
    return rule_is_ip && entry->is_ip && memcmp(rule_addr, entry->addr, 16) == 0;
  }
  if (!rule->wildcard && !entry->wildcard) return strcmp(rule->host, entry->host) == 0;
  if (!rule->wildcard) return sl__http_host_matches(entry->host, true, rule->host);
  if (!entry->wildcard) return sl__http_host_matches(rule->host, true, entry->host);
  return strcmp(rule->host, entry->host) == 0 ||
         sl__http_host_matches(rule->host, true, entry->host) ||
         sl__http_host_matches(entry->host, true, rule->host);
}

static sl_status inject_compile(sl_http_policy *policy, const sl_http_header_rule *rule,
                                sl__http_inject *out, sl_error *err) {
  const char *host = rule->host ? rule->host : "";
  /* An unbracketed IPv6 literal is accepted for a rule: it has no port to confuse. */
  char bracketed[80];
  struct in6_addr a6;
  if (strchr(host, ':') && strlen(host) < 64 && inet_pton(AF_INET6, host, &a6) == 1) {
    snprintf(bracketed, sizeof bracketed, "[%s]", host);
    host = bracketed;
  }
  sl__http_entry parsed;
  char why[256];
  if (!entry_parse(host, &parsed, why, sizeof why)) {
    return sl_error_set(err, SL_CONFIG, "http: headers: host \"%s\" %s", SHOWN(rule->host), why);
  }
  if (parsed.scheme[0] || !parsed.default_port) {
    return sl_error_set(err, SL_CONFIG,
                        "http: headers: host \"%s\" has a scheme or port; header rules name a "
                        "host only (\"api.example.com\" or \"*.example.com\")",
                        SHOWN(rule->host));
  }
  if (!rule->name || !sl__http_header_name_is_valid(rule->name) ||
      sl__http_header_is_reserved(rule->name)) {
    return sl_error_set(err, SL_CONFIG,
                        "http: headers: \"%s\": header name \"%s\" is not a valid name or is one "
                        "the client sets itself (Host, Content-Length, Connection...)",
                        SHOWN(rule->host), rule->name ? SHOWN(rule->name) : "");
  }
  /* The value is a secret: the message names the header, never the value. */
  if (!rule->value || !sl__http_header_value_is_valid(rule->value)) {
    return sl_error_set(err, SL_CONFIG,
                        "http: headers: \"%s\": the value of %s holds a line break or control "
                        "character",
                        SHOWN(rule->host), rule->name);
  }
  strcpy(out->host, parsed.host);
  out->wildcard = parsed.wildcard;
  bool met = false;
  for (size_t i = 0; i < policy->entry_count && !met; i++)
    met = rule_meets_entry(out, parsed.is_ip, parsed.addr, &policy->entries[i]);
  if (!met) {
    return sl_error_set(err, SL_CONFIG,
                        "http: headers: host \"%s\" matches no allowed_hosts entry; add it to "
                        "allowed_hosts or remove the rule",
                        SHOWN(rule->host));
  }
  out->name = strdup(rule->name);
  out->value = strdup(rule->value);
  if (!out->name || !out->value) return sl_error_set(err, SL_NOMEM, "http: out of memory");
  return SL_OK;
}

/* ---- addresses ---- */

typedef struct v4_range {
  uint32_t net;
  unsigned prefix;
  const char *what;
} v4_range;

static const v4_range v4_special[] = {
    {0x00000000, 8, "unspecified (0.0.0.0/8)"},
    {0x0a000000, 8, "private (10.0.0.0/8)"},
    {0x64400000, 10, "shared address space (100.64.0.0/10, carrier-grade NAT)"},
    {0x7f000000, 8, "loopback (127.0.0.0/8)"},
    {0xa9fe0000, 16, "link-local (169.254.0.0/16)"},
    {0xac100000, 12, "private (172.16.0.0/12)"},
    {0xc0000000, 24, "reserved (192.0.0.0/24, IETF protocol assignments)"},
    {0xc0000200, 24, "documentation (192.0.2.0/24)"},
    {0xc0586300, 24, "reserved (192.88.99.0/24, 6to4 relay anycast)"},
    {0xc0a80000, 16, "private (192.168.0.0/16)"},
    {0xc6120000, 15, "benchmarking (198.18.0.0/15)"},
    {0xc6336400, 24, "documentation (198.51.100.0/24)"},
    {0xcb007100, 24, "documentation (203.0.113.0/24)"},
    {0xe0000000, 4, "multicast (224.0.0.0/4)"},
    {0xf0000000, 4, "reserved (240.0.0.0/4, broadcast included)"},
};

static const char *v4_class(const uint8_t *v4) {
  uint32_t a = (uint32_t)v4[0] << 24 | (uint32_t)v4[1] << 16 | (uint32_t)v4[2] << 8 | v4[3];
  for (size_t i = 0; i < sizeof v4_special / sizeof *v4_special; i++) {
    uint32_t mask = 0xffffffffu << (32 - v4_special[i].prefix);
    if ((a & mask) == v4_special[i].net) return v4_special[i].what;
  }
  return NULL;
}

static bool v6_in(const uint8_t *a, const uint8_t *net, unsigned prefix) {
  unsigned whole = prefix / 8, bits = prefix % 8;
  if (memcmp(a, net, whole) != 0) return false;
  if (bits == 0) return true;
  uint8_t mask = (uint8_t)(0xff << (8 - bits));
  return (a[whole] & mask) == (net[whole] & mask);
}

bool sl__http_address_bytes(const struct sockaddr *addr, uint8_t out[16]) {
  if (!addr) return false;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(out, mapped_prefix, 12);
    memcpy(out + 12, &in->sin_addr, 4);
    return true;
  }
  if (addr->sa_family == AF_INET6) {
    memcpy(out, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
    return true;
  }
  return false;
}

/* IPv6 outside these prefixes is refused as "not global unicast" (only 2000::/3 is). The
 * embeddings of IPv4 (mapped, NAT64, 6to4) are judged by the IPv4 address inside. */
const char *sl__http_address_class(const uint8_t a[16]) {
  static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t zero[16] = {0};
  static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const uint8_t nat64[16] = {0x00, 0x64, 0xff, 0x9b};
  static const uint8_t nat64_local[16] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
  static const uint8_t discard[16] = {0x01, 0x00};
  static const uint8_t ietf[16] = {0x20, 0x01};
  static const uint8_t doc[16] = {0x20, 0x01, 0x0d, 0xb8};
  static const uint8_t six_to_four[16] = {0x20, 0x02};
  static const uint8_t doc2[16] = {0x3f, 0xff};
  static const uint8_t global[16] = {0x20};
  static const uint8_t ula[16] = {0xfc};
  static const uint8_t link_local[16] = {0xfe, 0x80};
  static const uint8_t site_local[16] = {0xfe, 0xc0};
  static const uint8_t multicast[16] = {0xff};

  if (v6_in(a, mapped, 96)) return v4_class(a + 12);
  if (memcmp(a, zero, 16) == 0) return "unspecified (::)";
  if (memcmp(a, loop6, 16) == 0) return "loopback (::1)";
  if (v6_in(a, nat64, 96)) {
    return v4_class(a + 12) ? "a NAT64 form (64:ff9b::/96) of a non-public IPv4 address" : NULL;
  }
  if (v6_in(a, nat64_local, 48)) return "NAT64 local use (64:ff9b:1::/48)";
  if (v6_in(a, discard, 64)) return "discard-only (100::/64)";
  if (v6_in(a, doc, 32)) return "documentation (2001:db8::/32)";
  if (v6_in(a, ietf, 23)) return "reserved (2001::/23, IETF protocol assignments and Teredo)";
  if (v6_in(a, six_to_four, 16)) {
    return v4_class(a + 2) ? "a 6to4 form (2002::/16) of a non-public IPv4 address" : NULL;
  }
  if (v6_in(a, doc2, 20)) return "documentation (3fff::/20)";
  if (v6_in(a, ula, 7)) return "unique local (fc00::/7)";
  if (v6_in(a, link_local, 10)) return "link-local (fe80::/10)";
  if (v6_in(a, site_local, 10)) return "site-local (fec0::/10)";
  if (v6_in(a, multicast, 8)) return "multicast (ff00::/8)";
  if (!v6_in(a, global, 3)) return "not global unicast (outside 2000::/3)";
  return NULL;
}

static bool is_loopback(const uint8_t a[16]) {
  static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return memcmp(a, loop6, 16) == 0 || (v6_in(a, mapped, 96) && a[12] == 127);
}

static void address_text(const uint8_t a[16], char *out, size_t cap) {
  static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (v6_in(a, mapped, 96)) {
    inet_ntop(AF_INET, a + 12, out, (socklen_t)cap);
  } else {
    inet_ntop(AF_INET6, a, out, (socklen_t)cap);
  }
}

bool sl_http_policy_check_address(const sl_http_policy *policy, const sl_http_target *target,
                                  const struct sockaddr *addr, char *why, size_t why_cap) {
  if (!policy || !target || target->entry < 0 || (size_t)target->entry >= policy->entry_count) {
    return sl__http_why(why, why_cap, "no allowed_hosts entry matched the target"), false;
  }
  uint8_t bytes[16];
  if (!sl__http_address_bytes(addr, bytes)) {
    return sl__http_why(why, why_cap, "refused to connect to an address that is not IPv4 or IPv6"),
           false;
  }
  const char *what = sl__http_address_class(bytes);
  if (!what) return true;
  const sl__http_entry *entry = &policy->entries[target->entry];
  if (entry->is_ip && memcmp(entry->addr, bytes, 16) == 0) return true;
  if (!entry->is_ip && !entry->wildcard && strcmp(entry->host, "localhost") == 0 &&
      is_loopback(bytes)) {
    return true;
  }
  char text[INET6_ADDRSTRLEN];
  address_text(bytes, text, sizeof text);
  sl__http_why(
      why, why_cap,
      "refused to connect to %s for host %s: the address is %s; only an allowed_hosts entry "
      "naming this address literally allows that",
      text, target->host, what);
  return false;
}

/* ---- URLs ---- */

sl__http_url_verdict sl__http_policy_parse_url(const sl_http_policy *policy, const char *url,
                                               sl_http_target *target, char **canonical, char *why,
                                               size_t why_cap) {
  sl_http_target scratch;
  if (!target) target = &scratch;
  memset(target, 0, sizeof *target);
  target->entry = -1;
  if (canonical) *canonical = NULL;
  if (!policy || !url) return sl__http_why(why, why_cap, "no URL"), SL__HTTP_URL_INVALID;
  size_t len = strlen(url);
  if (len > SL_HTTP_URL_MAX) {
    sl__http_why(why, why_cap, "the URL is longer than %d bytes", SL_HTTP_URL_MAX);
    return SL__HTTP_URL_INVALID;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= 0x20 || c == 0x7f) {
      sl__http_why(why, why_cap, "the URL contains a space or control character (byte %zu)", i);
      return SL__HTTP_URL_INVALID;
    }
  }

  sl__http_url_verdict verdict = SL__HTTP_URL_INVALID;
  char *scheme = NULL, *host = NULL, *port = NULL, *part = NULL;
  CURLU *u = curl_url();
  if (!u) {
    sl__http_why(why, why_cap, "out of memory parsing the URL");
    goto done;
  }
  /* Any scheme parses, so that "gopher://..." is reported as a scheme not allowed rather
   * than as an unparsable URL. */
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    sl__http_why(why, why_cap, "the URL %s cannot be parsed: %s", SHOWN(url),
                 curl_url_strerror(rc));
    goto done;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    sl__http_why(why, why_cap, "scheme %s is not allowed (http and https only)",
                 scheme ? SHOWN(scheme) : "(none)");
    verdict = SL__HTTP_URL_DENIED;
    goto done;
  }
  strcpy(target->scheme, scheme);
  /* user@host hides the real host from a careless reader (http://trusted.com@evil/), and
   * credentials belong in injected headers, so any userinfo at all is refused. */
  static const CURLUPart userinfo[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
  for (size_t i = 0; i < sizeof userinfo / sizeof *userinfo; i++) {
    if (curl_url_get(u, userinfo[i], &part, 0) == CURLUE_OK) {
      sl__http_why(why, why_cap, "the URL has userinfo (user@host), which is not allowed");
      verdict = SL__HTTP_URL_DENIED;
      goto done;
    }
  }
  if (curl_url_get(u, CURLUPART_ZONEID, &part, 0) == CURLUE_OK) {
    sl__http_why(why, why_cap, "IPv6 zone ids (%%25...) are not allowed");
    verdict = SL__HTTP_URL_DENIED;
    goto done;
  }
  rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
  if (rc != CURLUE_OK || !host[0]) {
    sl__http_why(why, why_cap, "the URL has an empty host");
    goto done;
  }
  host_info info;
  if (!host_normalise(host, &info, why, why_cap)) goto done;
  strcpy(target->host, info.name);
  if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
    sl__http_why(why, why_cap, "the URL has no port");
    goto done;
  }
  long number = strtol(port, NULL, 10);
  if (number <= 0 || number > 65535) {
    sl__http_why(why, why_cap, "port %s is not 1-65535", SHOWN(port));
    goto done;
  }
  target->port = (uint16_t)number;

  for (size_t i = 0; i < policy->entry_count; i++) {
    if (entry_matches(&policy->entries[i], target, &info)) {
      target->entry = (int)i;
      break;
    }
  }
  if (target->entry < 0) {
    sl__http_why(why, why_cap, "%s://%s%s%s:%u is not in allowed_hosts", target->scheme,
                 info.is_ipv6 ? "[" : "", target->host, info.is_ipv6 ? "]" : "", target->port);
    verdict = SL__HTTP_URL_DENIED;
    goto done;
  }
  if (canonical) {
    char bracketed[SL_HTTP_HOST_MAX + 3];
    snprintf(bracketed, sizeof bracketed, info.is_ipv6 ? "[%s]" : "%s", info.name);
    char *whole = NULL;
    if (curl_url_set(u, CURLUPART_HOST, bracketed, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &whole, 0) != CURLUE_OK) {
      sl__http_why(why, why_cap, "the URL cannot be put back together after normalising its host");
      goto done;
    }
    *canonical = strdup(whole);
    curl_free(whole);
    if (!*canonical) {
      sl__http_why(why, why_cap, "out of memory");
      goto done;
    }
  }
  verdict = SL__HTTP_URL_OK;
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(part);
  curl_url_cleanup(u);
  if (verdict != SL__HTTP_URL_OK) target->entry = -1;
  return verdict;
}

bool sl_http_policy_check_url(const sl_http_policy *policy, const char *url, sl_http_target *target,
                              char *why, size_t why_cap) {
  return sl__http_policy_parse_url(policy, url, target, NULL, why, why_cap) == SL__HTTP_URL_OK;
}

/* ---- the policy object ---- */

sl_status sl_http_policy_new(const sl_http_grant *grant, sl_http_policy **out, sl_error *err) {
  *out = NULL;
  if (!grant || grant->allowed_count == 0) {
    return sl_error_set(err, SL_CONFIG,
                        "http: allowed_hosts is empty; name at least one [SCHEME://]HOST[:PORT]");
  }
  if (grant->max_redirects < -1 || grant->max_redirects > MAX_REDIRECTS_LIMIT) {
    return sl_error_set(err, SL_CONFIG, "http: max_redirects is %lld; use 0-%d",
                        (long long)grant->max_redirects, MAX_REDIRECTS_LIMIT);
  }
  /* The URL API is part of libcurl: initialise it before the first call. */
  if (!sl__http_curl_init())
    return sl_error_set(err, SL_IO, "http: libcurl could not be initialised");
  sl_http_policy *policy = calloc(1, sizeof *policy);
  if (!policy) return sl_error_set(err, SL_NOMEM, "http: out of memory");
  sl_status status = SL_NOMEM;
  policy->entries = calloc(grant->allowed_count, sizeof *policy->entries);
  policy->injects = calloc(grant->header_count ? grant->header_count : 1, sizeof *policy->injects);
  policy->counters = calloc(1, sizeof *policy->counters);
  if (!policy->entries || !policy->injects || !policy->counters) {
    sl_error_set(err, SL_NOMEM, "http: out of memory");
    goto fail;
  }
  atomic_init(&policy->counters->connects_allowed, 0);
  atomic_init(&policy->counters->connects_refused, 0);
  for (size_t i = 0; i < grant->allowed_count; i++) {
    char why[256];
    const char *text = grant->allowed_hosts[i] ? grant->allowed_hosts[i] : "";
    if (!entry_parse(text, &policy->entries[i], why, sizeof why)) {
      status = sl_error_set(err, SL_CONFIG,
                            "http: allowed_hosts entry \"%s\" %s; write [SCHEME://]HOST[:PORT], "
                            "e.g. \"api.example.com\", \"https://*.example.com\" or "
                            "\"127.0.0.1:8080\"",
                            SHOWN(text), why);
      goto fail;
    }
    policy->entry_count = i + 1;
    policy->entries[i].text = strdup(text);
    if (!policy->entries[i].text) {
      sl_error_set(err, SL_NOMEM, "http: out of memory");
      goto fail;
    }
  }
  for (size_t i = 0; i < grant->header_count; i++) {
    policy->inject_count = i + 1;
    status = inject_compile(policy, &grant->headers[i], &policy->injects[i], err);
    if (status != SL_OK) goto fail;
  }
  policy->timeout_ms = grant->timeout_ms ? grant->timeout_ms : SL_HTTP_DEFAULT_TIMEOUT_MS;
  policy->max_request_bytes =
      grant->max_request_bytes ? grant->max_request_bytes : SL_HTTP_DEFAULT_MAX_REQUEST_BYTES;
  policy->max_response_bytes =
      grant->max_response_bytes ? grant->max_response_bytes : SL_HTTP_DEFAULT_MAX_RESPONSE_BYTES;
  policy->max_redirects =
      grant->max_redirects < 0 ? SL_HTTP_DEFAULT_MAX_REDIRECTS : (unsigned)grant->max_redirects;
  *out = policy;
  return SL_OK;
fail:
  sl_http_policy_destroy(policy);
  return status;
}

void sl_http_policy_destroy(sl_http_policy *policy) {
  if (!policy) return;
  for (size_t i = 0; i < policy->entry_count; i++) free(policy->entries[i].text);
  for (size_t i = 0; i < policy->inject_count; i++) {
    free(policy->injects[i].name);
    if (policy->injects[i].value) {
      /* The value is a secret; do not leave it in freed memory. */
      explicit_bzero(policy->injects[i].value, strlen(policy->injects[i].value));
      free(policy->injects[i].value);
    }
  }
  free(policy->entries);
  free(policy->injects);
  free(policy->counters);
  free(policy);
}

void sl_http_policy_stats_get(const sl_http_policy *policy, sl_http_policy_stats *stats) {
  stats->connects_allowed = atomic_load(&policy->counters->connects_allowed);
  stats->connects_refused = atomic_load(&policy->counters->connects_refused);
}
