/*
 * The outgoing HTTP policy without the network (src/caps/http_policy.c): crafted URLs
 * against one fixed allow-list (each with the verdict, and the matched entry when
 * allowed), the classification of addresses (IPv4, IPv6, and IPv4 embedded in IPv6)
 * with the literal and localhost exceptions, and the grant errors sl_http_policy_new
 * reports. tests/unit/caps/test_http_client.c sends real requests.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps/http_internal.h"

/* The fixed allow-list every URL case is checked against; the index is the entry. */
static char *allow_list[] = {
    "api.example.com",            /* 0: http on 80, https on 443 */
    "https://secure.example.com", /* 1: https on 443 only */
    "*.cdn.example.net",          /* 2: sub-domains only */
    "http://10.1.2.3:8080",       /* 3: a private IPv4 literal, http only */
    "[2001:db8::5]:8443",         /* 4: an IPv6 literal */
    "localhost:9000",             /* 5 */
    "Data.Example.ORG.:81",       /* 6: written with capitals and a trailing dot */
};
enum { ENTRY_COUNT = sizeof allow_list / sizeof *allow_list };

static sl_http_policy *policy_with(char **hosts, size_t count, sl_http_header_rule *rules,
                                   size_t rule_count, sl_error *err) {
  sl_http_grant grant = {.granted = true,
                         .allowed_hosts = hosts,
                         .allowed_count = count,
                         .max_redirects = -1,
                         .headers = rules,
                         .header_count = rule_count};
  sl_http_policy *policy = NULL;
  sl_status status = sl_http_policy_new(&grant, &policy, err);
  if (status != SL_OK) cr_assert_null(policy);
  return policy;
}

static sl_http_policy *fixed_policy(void) {
  sl_error err = {{0}};
  sl_http_policy *policy = policy_with(allow_list, ENTRY_COUNT, NULL, 0, &err);
  cr_assert_not_null(policy, "%s", err.message);
  return policy;
}

/* ---- URLs ---- */

#define OK(entry) SL__HTTP_URL_OK, entry
#define DENIED SL__HTTP_URL_DENIED, -1, NULL
#define INVALID SL__HTTP_URL_INVALID, -1, NULL

typedef struct url_case {
  const char *url;
  sl__http_url_verdict verdict;
  int entry;
  const char *host; /* the normalised host expected when allowed; NULL: not checked */
} url_case;

static const url_case url_cases[] = {
    /* exact host, default ports, scheme */
    {"http://api.example.com/", OK(0), "api.example.com"},
    {"https://api.example.com/v1?q=1", OK(0), "api.example.com"},
    {"HTTPS://API.example.com", OK(0), "api.example.com"},
    {"http://API.EXAMPLE.COM./x", OK(0), "api.example.com"},
    {"http://api.example.com:80/", OK(0), NULL},
    {"http://api%2eexample%2ecom/", OK(0), "api.example.com"}, /* curl decodes the host */
    {"http://api.example.com#@evil.com/", OK(0), "api.example.com"},
    /* wrong ports and schemes */
    {"http://api.example.com:443/", DENIED}, /* 443 is https's default, not http's */
    {"http://api.example.com:8080/", DENIED},
    {"ftp://api.example.com/", DENIED},
    {"gopher://api.example.com/", DENIED},
    {"javascript:alert(1)", INVALID}, /* curl wants "//" after a scheme */
    {"file:///etc/passwd", DENIED},
    {"http://secure.example.com/", DENIED}, /* its entry says https */
    {"https://secure.example.com/", OK(1), "secure.example.com"},
    /* wildcards */
    {"http://a.cdn.example.net/", OK(2), "a.cdn.example.net"},
    {"https://x.y.cdn.example.net/", OK(2), NULL},
    {"http://cdn.example.net/", DENIED}, /* *.d does not match d itself */
    {"http://evilcdn.example.net/", DENIED},
    {"http://cdn.example.net.evil.com/", DENIED},
    {"http://api.example.com.evil.com/", DENIED},
    /* userinfo tricks */
    {"http://api.example.com@evil.com/", DENIED},
    {"http://evil.com@api.example.com/", DENIED},
    {"http://user:pass@api.example.com/", DENIED},
    {"http://@api.example.com/", DENIED},
    {"http://:@api.example.com/", DENIED},
    {"http://api.example.com:80@evil.com/", DENIED},
    {"http://api.example.com\\@evil.com/", DENIED},
    /* IPv4 literals in every numeric form: curl rewrites them, the entry is an address */
    {"http://10.1.2.3:8080/", OK(3), "10.1.2.3"},
    {"http://167838211:8080/", OK(3), "10.1.2.3"},
    {"http://012.1.2.3:8080/", OK(3), "10.1.2.3"},
    {"http://0xa.1.2.3:8080/", OK(3), "10.1.2.3"},
    {"http://0xa010203:8080/", OK(3), "10.1.2.3"},
    {"http://10.1.2.3.:8080/", OK(3), "10.1.2.3"},
    {"https://10.1.2.3:8080/", DENIED},
    {"http://10.1.2.4:8080/", DENIED},
    {"http://[::ffff:10.1.2.3]:8080/", OK(3), "::ffff:10.1.2.3"}, /* the same address */
    {"http://256.0.0.1/", INVALID},                               /* numeric, not an address */
    {"http://0x100000000/", INVALID},
    {"http://1.2.3.4.5/", INVALID},
    /* IPv6 literals */
    {"http://[2001:db8::5]:8443/", OK(4), "2001:db8::5"},
    {"https://[2001:0DB8:0:0:0:0:0:5]:8443/", OK(4), "2001:db8::5"},
    {"http://[2001:db8::6]:8443/", DENIED},
    {"http://[2001:db8::5]/", DENIED},
    {"http://[fe80::1%25eth0]:8443/", DENIED}, /* zone ids */
    /* localhost: the name, not the address */
    {"http://localhost:9000/", OK(5), "localhost"},
    {"http://LOCALHOST.:9000/", OK(5), "localhost"},
    {"http://localhost:9001/", DENIED},
    {"http://localhost..:9000/", INVALID},
    {"http://127.0.0.1:9000/", DENIED},
    {"http://2130706433:9000/", DENIED},
    {"http://0177.0.0.1:9000/", DENIED},
    {"http://0x7f.1:9000/", DENIED},
    {"http://127.1:9000/", DENIED},
    {"http://[::1]:9000/", DENIED},
    {"http://[::ffff:127.0.0.1]:9000/", DENIED},
    {"http://data.example.org:81/", OK(6), "data.example.org"},
    /* not URLs */
    {"http://api.example.com\t/", INVALID},
    {"http://api.example.com /", INVALID},
    {"http://api.example.com/\r\nX-Evil: 1", INVALID},
    {"http://api.example.com%00.evil.com/", INVALID},
    {"http://", INVALID},
    {"http://:80/", INVALID},
    {"api.example.com/path", INVALID},
    {"http://api.example.com:0/", INVALID},
    {"http://api.example.com:65536/", INVALID},
    {"http://ex\xc3\xa4mple.com/", INVALID},
    {"", INVALID},
};

Test(http_policy, crafted_urls_against_the_allow_list) {
  sl_http_policy *policy = fixed_policy();
  size_t count = sizeof url_cases / sizeof *url_cases;
  cr_assert_geq(count, 30);
  for (size_t i = 0; i < count; i++) {
    const url_case *c = &url_cases[i];
    sl_http_target target;
    char why[256] = "";
    sl__http_url_verdict verdict =
        sl__http_policy_parse_url(policy, c->url, &target, NULL, why, sizeof why);
    cr_expect_eq(verdict, c->verdict, "case %zu %s: verdict %d, expected %d (%s)", i, c->url,
                 verdict, c->verdict, why);
    cr_expect_eq(target.entry, c->entry, "case %zu %s: entry %d, expected %d", i, c->url,
                 target.entry, c->entry);
    if (c->verdict != SL__HTTP_URL_OK) {
      cr_expect(why[0] != '\0', "case %zu %s: no reason", i, c->url);
      for (const char *p = why; *p; p++)
        cr_expect((unsigned char)*p >= 0x20, "case %zu: control byte in the reason", i);
    }
    if (c->host) {
      cr_expect_str_eq(target.host, c->host, "case %zu %s", i, c->url);
    }
    bool allowed = sl_http_policy_check_url(policy, c->url, &target, why, sizeof why);
    cr_expect_eq(allowed, c->verdict == SL__HTTP_URL_OK, "case %zu %s: public check differs", i,
                 c->url);
  }
  sl_http_policy_destroy(policy);
}

Test(http_policy, target_has_scheme_and_effective_port) {
  sl_http_policy *policy = fixed_policy();
  sl_http_target target;
  char why[256];
  cr_assert(
      sl_http_policy_check_url(policy, "HTTPS://api.example.com./a", &target, why, sizeof why),
      "%s", why);
  cr_expect_str_eq(target.scheme, "https");
  cr_expect_eq(target.port, 443);
  cr_expect_eq(target.entry, 0);
  cr_assert(sl_http_policy_check_url(policy, "http://localhost:9000", &target, why, sizeof why));
  cr_expect_str_eq(target.scheme, "http");
  cr_expect_eq(target.port, 9000);
  sl_http_policy_destroy(policy);
}

Test(http_policy, reasons_name_the_problem) {
  sl_http_policy *policy = fixed_policy();
  char why[256];
  cr_assert_not(sl_http_policy_check_url(policy, "ftp://api.example.com/", NULL, why, sizeof why));
  cr_expect(strstr(why, "scheme ftp"), "%s", why);
  cr_assert_not(
      sl_http_policy_check_url(policy, "http://a@api.example.com/", NULL, why, sizeof why));
  cr_expect(strstr(why, "userinfo"), "%s", why);
  cr_assert_not(sl_http_policy_check_url(policy, "http://2130706433:9000/", NULL, why, sizeof why));
  cr_expect(strstr(why, "http://127.0.0.1:9000 is not in allowed_hosts"), "%s", why);
  cr_assert_not(sl_http_policy_check_url(policy, "http://[::1]:9000/", NULL, why, sizeof why));
  cr_expect(strstr(why, "http://[::1]:9000 is not in allowed_hosts"), "%s", why);
  sl_http_policy_destroy(policy);
}

Test(http_policy, canonical_url_carries_the_normalised_host) {
  sl_http_policy *policy = fixed_policy();
  static const struct {
    const char *url, *canonical;
  } cases[] = {
      {"http://0xa.1.2.3:8080/p?q=1#frag", "http://10.1.2.3:8080/p?q=1"},
      {"http://API.Example.COM./x", "http://api.example.com/x"},
      {"https://[2001:0db8::0:5]:8443/", "https://[2001:db8::5]:8443/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *canonical = NULL;
    char why[256];
    cr_assert_eq(sl__http_policy_parse_url(policy, cases[i].url, NULL, &canonical, why, sizeof why),
                 SL__HTTP_URL_OK, "%s: %s", cases[i].url, why);
    cr_expect_str_eq(canonical, cases[i].canonical);
    free(canonical);
  }
  sl_http_policy_destroy(policy);
}

/* ---- addresses ---- */

static struct sockaddr_storage address(const char *text) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
  } else {
    cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1, "bad test address %s", text);
    in6->sin6_family = AF_INET6;
  }
  return ss;
}

static bool may_connect(const sl_http_policy *policy, const char *url, const char *addr, char *why,
                        size_t why_cap) {
  sl_http_target target;
  char url_why[256];
  cr_assert(sl_http_policy_check_url(policy, url, &target, url_why, sizeof url_why), "%s: %s", url,
            url_why);
  struct sockaddr_storage ss = address(addr);
  return sl_http_policy_check_address(policy, &target, (struct sockaddr *)&ss, why, why_cap);
}

typedef struct address_case {
  const char *addr;
  bool allowed;
  const char *reason; /* a word the refusal must contain */
} address_case;

/* Judged for a target that matched a host-name entry (api.example.com). */
static const address_case address_cases[] = {
    {"8.8.8.8", true, NULL},
    {"93.184.216.34", true, NULL},
    {"172.32.0.1", true, NULL},
    {"100.128.0.1", true, NULL},
    {"127.0.0.1", false, "loopback"},
    {"127.255.255.254", false, "loopback"},
    {"10.0.0.1", false, "private"},
    {"172.16.5.4", false, "private"},
    {"172.31.255.255", false, "private"},
    {"192.168.1.1", false, "private"},
    {"169.254.169.254", false, "link-local"},
    {"100.64.0.1", false, "carrier-grade"},
    {"0.0.0.0", false, "unspecified"},
    {"0.1.2.3", false, "unspecified"},
    {"224.0.0.1", false, "multicast"},
    {"239.255.255.250", false, "multicast"},
    {"255.255.255.255", false, "broadcast"},
    {"240.0.0.1", false, "reserved"},
    {"192.0.2.1", false, "documentation"},
    {"198.18.0.1", false, "benchmarking"},
    {"2606:4700:4700::1111", true, NULL},
    {"2a00:1450:4001::200e", true, NULL},
    {"::ffff:8.8.8.8", true, NULL},
    {"64:ff9b::808:808", true, NULL},
    {"2002:808:808::1", true, NULL},
    {"::1", false, "loopback"},
    {"::", false, "unspecified"},
    {"::ffff:127.0.0.1", false, "loopback"},
    {"::ffff:10.0.0.1", false, "private"},
    {"::ffff:169.254.169.254", false, "link-local"},
    {"::127.0.0.1", false, "not global"},
    {"64:ff9b::7f00:1", false, "NAT64"},
    {"64:ff9b::a9fe:a9fe", false, "NAT64"},
    {"64:ff9b:1::1", false, "NAT64"},
    {"2002:7f00:1::1", false, "6to4"},
    {"2002:c0a8:101::1", false, "6to4"},
    {"fc00::1", false, "unique local"},
    {"fd12:3456::1", false, "unique local"},
    {"fe80::1", false, "link-local"},
    {"febf::1", false, "link-local"},
    {"fec0::1", false, "site-local"},
    {"ff02::1", false, "multicast"},
    {"2001:db8::1", false, "documentation"},
    {"2001::1", false, "Teredo"},
    {"100::1", false, "discard"},
    {"4000::1", false, "not global"},
};

Test(http_policy, address_classes) {
  sl_http_policy *policy = fixed_policy();
  for (size_t i = 0; i < sizeof address_cases / sizeof *address_cases; i++) {
    const address_case *c = &address_cases[i];
    char why[256] = "";
    bool allowed = may_connect(policy, "http://api.example.com/", c->addr, why, sizeof why);
    cr_expect_eq(allowed, c->allowed, "%s: %s (%s)", c->addr, allowed ? "allowed" : "refused", why);
    if (!c->allowed) cr_expect(strstr(why, c->reason), "%s: reason \"%s\"", c->addr, why);
  }
  sl_http_policy_destroy(policy);
}

Test(http_policy, literal_entries_allow_their_own_address_only) {
  sl_http_policy *policy = fixed_policy();
  char why[256];
  cr_expect(may_connect(policy, "http://10.1.2.3:8080/", "10.1.2.3", why, sizeof why), "%s", why);
  cr_expect(may_connect(policy, "http://10.1.2.3:8080/", "::ffff:10.1.2.3", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://10.1.2.3:8080/", "10.1.2.4", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://10.1.2.3:8080/", "127.0.0.1", why, sizeof why));
  cr_expect(may_connect(policy, "http://[2001:db8::5]:8443/", "2001:db8::5", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://[2001:db8::5]:8443/", "2001:db8::6", why, sizeof why));
  /* localhost may reach loopback, and nothing else that is not public */
  cr_expect(may_connect(policy, "http://localhost:9000/", "127.0.0.1", why, sizeof why));
  cr_expect(may_connect(policy, "http://localhost:9000/", "127.0.0.2", why, sizeof why));
  cr_expect(may_connect(policy, "http://localhost:9000/", "::1", why, sizeof why));
  cr_expect(may_connect(policy, "http://localhost:9000/", "::ffff:127.0.0.1", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://localhost:9000/", "10.0.0.1", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://localhost:9000/", "169.254.169.254", why, sizeof why));
  cr_expect_not(may_connect(policy, "http://localhost:9000/", "64:ff9b::7f00:1", why, sizeof why));
  /* a wildcard entry never allows a private address */
  cr_expect_not(may_connect(policy, "http://a.cdn.example.net/", "127.0.0.1", why, sizeof why));
  cr_expect(strstr(why, "refused to connect to 127.0.0.1 for host a.cdn.example.net"), "%s", why);
  sl_http_policy_destroy(policy);
}

Test(http_policy, address_without_a_matched_entry_is_refused) {
  sl_http_policy *policy = fixed_policy();
  sl_http_target target = {.scheme = "http", .host = "api.example.com", .port = 80, .entry = -1};
  struct sockaddr_storage ss = address("8.8.8.8");
  char why[256];
  cr_expect_not(
      sl_http_policy_check_address(policy, &target, (struct sockaddr *)&ss, why, sizeof why));
  target.entry = ENTRY_COUNT;
  cr_expect_not(
      sl_http_policy_check_address(policy, &target, (struct sockaddr *)&ss, why, sizeof why));
  struct sockaddr unix_like = {.sa_family = AF_UNIX};
  target.entry = 0;
  cr_expect_not(sl_http_policy_check_address(policy, &target, &unix_like, why, sizeof why));
  sl_http_policy_destroy(policy);
}

/* ---- the grant ---- */

Test(http_policy, bad_entries_are_config_errors_naming_the_entry) {
  static const char *const bad[] = {"",
                                    "ftp://x.example.com",
                                    "x.example.com/path",
                                    "user@x.example.com",
                                    "x.com:0",
                                    "x.com:99999",
                                    "x.com:",
                                    "*",
                                    "*.",
                                    "a.*.example.com",
                                    "*.10.0.0.1",
                                    "x.example.com?q",
                                    "x .com",
                                    "[::1",
                                    "1.2.3.4.5",
                                    "http://",
                                    "x.com#f",
                                    "%41.example.com",
                                    "exa\tmple.com",
                                    "[fe80::1%eth0]",
                                    "x.com:http"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *hosts[] = {"ok.example.com", (char *)bad[i]};
    sl_error err = {{0}};
    sl_http_policy *policy = policy_with(hosts, 2, NULL, 0, &err);
    cr_expect_null(policy, "entry \"%s\" was accepted", bad[i]);
    sl_http_policy_destroy(policy);
    if (bad[i][0] && !strchr(bad[i], '\t')) {
      char quoted[64];
      snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
      cr_expect(strstr(err.message, quoted), "entry %s: message \"%s\"", bad[i], err.message);
    }
  }
}

Test(http_policy, good_entries_are_accepted) {
  char *hosts[] = {"api.example.com",
                   "API.example.com:8443",
                   "http://a.example.com:8080",
                   "HTTPS://*.example.org",
                   "127.0.0.1:1",
                   "[::1]:65535",
                   "2130706433:8080",
                   "localhost",
                   "x_y.example.com."};
  sl_error err = {{0}};
  sl_http_policy *policy = policy_with(hosts, sizeof hosts / sizeof *hosts, NULL, 0, &err);
  cr_assert_not_null(policy, "%s", err.message);
  sl_http_target target;
  char why[256];
  /* 2130706433 is an address, written in decimal */
  cr_expect(sl_http_policy_check_url(policy, "http://127.0.0.1:8080/", &target, why, sizeof why));
  cr_expect_eq(target.entry, 6);
  cr_expect(sl_http_policy_check_url(policy, "https://a.example.org/", &target, why, sizeof why));
  cr_expect_not(
      sl_http_policy_check_url(policy, "http://a.example.org/", &target, why, sizeof why));
  sl_http_policy_destroy(policy);
}

Test(http_policy, empty_allow_list_and_bad_redirect_counts_are_refused) {
  sl_error err = {{0}};
  cr_expect_null(policy_with(NULL, 0, NULL, 0, &err));
  cr_expect(strstr(err.message, "allowed_hosts is empty"), "%s", err.message);
  char *hosts[] = {"api.example.com"};
  sl_http_grant grant = {.granted = true, .allowed_hosts = hosts, .allowed_count = 1};
  sl_http_policy *policy = NULL;
  grant.max_redirects = -2;
  cr_expect_eq(sl_http_policy_new(&grant, &policy, &err), SL_CONFIG);
  grant.max_redirects = 21;
  cr_expect_eq(sl_http_policy_new(&grant, &policy, &err), SL_CONFIG);
  cr_expect(strstr(err.message, "max_redirects"), "%s", err.message);
  grant.max_redirects = 0;
  cr_assert_eq(sl_http_policy_new(&grant, &policy, &err), SL_OK, "%s", err.message);
  cr_expect_eq(policy->max_redirects, 0);
  cr_expect_eq(policy->timeout_ms, SL_HTTP_DEFAULT_TIMEOUT_MS);
  cr_expect_eq(policy->max_request_bytes, SL_HTTP_DEFAULT_MAX_REQUEST_BYTES);
  cr_expect_eq(policy->max_response_bytes, SL_HTTP_DEFAULT_MAX_RESPONSE_BYTES);
  sl_http_policy_destroy(policy);
  grant.max_redirects = -1;
  cr_assert_eq(sl_http_policy_new(&grant, &policy, &err), SL_OK, "%s", err.message);
  cr_expect_eq(policy->max_redirects, SL_HTTP_DEFAULT_MAX_REDIRECTS);
  sl_http_policy_destroy(policy);
}

Test(http_policy, header_rules_must_meet_an_entry) {
  char *hosts[] = {"api.example.com", "*.example.org", "10.0.0.7:8080"};
  static const struct {
    const char *host;
    bool ok;
  } cases[] = {
      {"api.example.com", true},
      {"API.example.com.", true},
      {"*.example.com", true},
      {"a.example.org", true},
      {"*.example.org", true},
      {"*.b.example.org", true},
      {"10.0.0.7", true},
      {"167772167", true},
      {"other.example.com", false},
      {"example.org", false},
      {"10.0.0.8", false},
      {"*.net", false},
      {"api.example.com:443", false},
      {"https://api.example.com", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sl_http_header_rule rule = {(char *)cases[i].host, "X-Key", "s3cret-value"};
    sl_error err = {{0}};
    sl_http_policy *policy = policy_with(hosts, 3, &rule, 1, &err);
    cr_expect_eq(policy != NULL, cases[i].ok, "rule host %s: %s", cases[i].host, err.message);
    if (!cases[i].ok) cr_expect(strstr(err.message, cases[i].host), "%s", err.message);
    cr_expect_null(strstr(err.message, "s3cret"), "the secret is in \"%s\"", err.message);
    sl_http_policy_destroy(policy);
  }
}

Test(http_policy, header_rules_with_bad_names_or_values_never_show_the_value) {
  char *hosts[] = {"api.example.com"};
  static const struct {
    const char *name, *value;
  } cases[] = {
      {"X Key", "s3cret"},     {"", "s3cret"},          {"Host", "s3cret"},
      {"content-length", "1"}, {"Connection", "close"}, {"X-Key", "s3cret\r\nX-Evil: 1"},
      {"X-Key", "s3cret\n"},   {"X-Key", "s3c\x01ret"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sl_http_header_rule rule = {"api.example.com", (char *)cases[i].name, (char *)cases[i].value};
    sl_error err = {{0}};
    sl_http_policy *policy = policy_with(hosts, 1, &rule, 1, &err);
    cr_expect_null(policy, "rule %zu was accepted", i);
    cr_expect(err.message[0], "rule %zu: no message", i);
    cr_expect_null(strstr(err.message, "s3c"), "the value is in \"%s\"", err.message);
    sl_http_policy_destroy(policy);
  }
  sl_http_header_rule ok = {"api.example.com", "Authorization", "Bearer s3cret\tx"};
  sl_error err = {{0}};
  sl_http_policy *policy = policy_with(hosts, 1, &ok, 1, &err);
  cr_expect_not_null(policy, "%s", err.message);
  sl_http_policy_destroy(policy);
}

Test(http_policy, stats_start_at_zero) {
  sl_http_policy *policy = fixed_policy();
  sl_http_policy_stats stats = {1, 1};
  sl_http_policy_stats_get(policy, &stats);
  cr_expect_eq(stats.connects_allowed, 0);
  cr_expect_eq(stats.connects_refused, 0);
  sl_http_policy_destroy(policy);
}
