/*
 * sl_http_send against real servers on loopback (src/caps/http_client.c).
 *
 * The first group fires crafted URLs at a "counting" server (its own listener below, on
 * 127.0.0.1 and ::1 at one port, counting every connection it accepts) with an allow-list
 * that does not name it: every numeric spelling of loopback, IPv6 and mapped forms,
 * localhost, userinfo tricks, wrong ports and schemes, allowed names that resolve to
 * loopback (step 3 of the policy), and redirects from an allowed server to it. Each must
 * be refused and the counting server must see no connection at all; then a policy that
 * names it proves the server does count.
 *
 * The other tests use tests/support/http_receiver (requests recorded) or the raw listener
 * (answers a fixed byte string, for heads no well-behaved server sends): requests and
 * responses, header checks and injection, redirects, caps and timeouts.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../support/http_receiver.h"
#include "caps/http_internal.h"

/* ---- a raw listener that counts connections ---- */

typedef struct raw_server {
  int fd4, fd6;
  unsigned short port;
  int stop_pipe[2];
  pthread_t thread;
  atomic_uint accepted;
  char *response; /* sent after the request head; NULL: a short 200 */
  size_t response_len;
} raw_server;

static void send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n <= 0) return; /* the client left */
    data += n;
    len -= (size_t)n;
  }
}

static void serve_one(raw_server *server, int fd) {
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char head[16384];
  size_t len = 0;
  while (len < sizeof head - 1) {
    ssize_t n = recv(fd, head + len, sizeof head - 1 - len, 0);
    if (n <= 0) break;
    len += (size_t)n;
    head[len] = '\0';
    if (strstr(head, "\r\n\r\n")) break;
  }
  static const char counted[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n"
                                "counted";
  if (server->response) {
    send_all(fd, server->response, server->response_len);
  } else {
    send_all(fd, counted, sizeof counted - 1);
  }
  shutdown(fd, SHUT_WR);
  close(fd);
}

static void *raw_server_run(void *arg) {
  raw_server *server = arg;
  for (;;) {
    struct pollfd fds[3] = {
        {server->fd4, POLLIN, 0}, {server->fd6, POLLIN, 0}, {server->stop_pipe[0], POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) continue;
    if (fds[2].revents) return NULL;
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      int fd = accept(fds[i].fd, NULL, NULL);
      if (fd < 0) continue;
      atomic_fetch_add(&server->accepted, 1);
      serve_one(server, fd);
    }
  }
}

/* Listens on 127.0.0.1 and ::1 at the same port, so that every loopback spelling of the
 * URL reaches it if the policy lets it through. */
static raw_server *raw_server_start(const char *response, size_t response_len) {
  raw_server *server = calloc(1, sizeof *server);
  cr_assert_not_null(server);
  if (response) {
    server->response = malloc(response_len);
    memcpy(server->response, response, response_len);
    server->response_len = response_len;
  }
  for (int attempt = 0; attempt < 50; attempt++) {
    server->fd4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(server->fd4, (struct sockaddr *)&a4, sizeof a4), 0);
    socklen_t a4_len = sizeof a4;
    getsockname(server->fd4, (struct sockaddr *)&a4, &a4_len);
    server->port = ntohs(a4.sin_port);
    server->fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server->fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 a6 = {
        .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = a4.sin_port};
    if (bind(server->fd6, (struct sockaddr *)&a6, sizeof a6) == 0) break;
    close(server->fd4);
    close(server->fd6);
    server->fd4 = server->fd6 = -1;
  }
  cr_assert_geq(server->fd6, 0, "no port free on both 127.0.0.1 and ::1");
  cr_assert_eq(listen(server->fd4, 16), 0);
  cr_assert_eq(listen(server->fd6, 16), 0);
  cr_assert_eq(pipe(server->stop_pipe), 0);
  cr_assert_eq(pthread_create(&server->thread, NULL, raw_server_run, server), 0);
  return server;
}

static unsigned raw_server_accepted(raw_server *server) { return atomic_load(&server->accepted); }

static void raw_server_stop(raw_server *server) {
  cr_assert_eq(write(server->stop_pipe[1], "x", 1), 1);
  pthread_join(server->thread, NULL);
  close(server->fd4);
  close(server->fd6);
  close(server->stop_pipe[0]);
  close(server->stop_pipe[1]);
  free(server->response);
  free(server);
}

/* ---- helpers ---- */

/* A grant written with designated initializers leaves max_redirects 0, which would mean
 * "never follow"; here 0 means the default and -2 asks for "never follow". */
static sl_http_policy *policy_for(sl_http_grant grant) {
  grant.granted = true;
  if (grant.max_redirects == 0) grant.max_redirects = -1;
  if (grant.max_redirects == -2) grant.max_redirects = 0;
  sl_http_policy *policy = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_http_policy_new(&grant, &policy, &err), SL_OK, "%s", err.message);
  return policy;
}

/* One allow-list entry "127.0.0.1:PORT" (in `buffer`). */
static char *loopback_entry(char *buffer, size_t size, unsigned port) {
  snprintf(buffer, size, "127.0.0.1:%u", port);
  return buffer;
}

static sl_http_outcome send_get(const sl_http_policy *policy, const char *url,
                                sl_http_response *response, char *why, size_t why_cap) {
  sl_http_request request = {.method = "GET", .url = url};
  return sl_http_send(policy, &request, 0, response, why, why_cap);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *response_header(const sl_http_response *response, const char *name) {
  for (size_t i = 0; i < response->header_count; i++)
    if (strcmp(response->headers[i].key, name) == 0) return response->headers[i].value;
  return NULL;
}

static size_t request_header_count(const hr_request *req, const char *name) {
  size_t count = 0;
  for (size_t i = 0; i < req->header_count; i++)
    count += strcasecmp(req->headers[i].name, name) == 0;
  return count;
}

/* Names other than localhost that this machine resolves to loopback only (its host name;
 * /etc/hosts here also maps `vm`), found at test time. */
static size_t loopback_names(char names[][72], size_t cap) {
  char candidates[2][72] = {"", "vm"};
  gethostname(candidates[0], sizeof candidates[0] - 1);
  size_t count = 0;
  for (size_t i = 0; i < 2 && count < cap; i++) {
    if (!candidates[i][0] || strcmp(candidates[i], "localhost") == 0) continue;
    if (count && strcasecmp(names[0], candidates[i]) == 0) continue;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *list = NULL;
    if (getaddrinfo(candidates[i], NULL, &hints, &list) != 0) continue;
    bool all_loopback = list != NULL;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
      uint8_t bytes[16];
      all_loopback = all_loopback && sl__http_address_bytes(ai->ai_addr, bytes) &&
                     sl__http_address_class(bytes) &&
                     strstr(sl__http_address_class(bytes), "loopback");
    }
    freeaddrinfo(list);
    if (all_loopback) memcpy(names[count++], candidates[i], sizeof candidates[i]);
  }
  return count;
}

/* ---- zero connections to what the allow-list does not name ---- */

typedef struct crafted {
  char url[300];
  sl_http_outcome expected;
} crafted;

Test(http_client, crafted_urls_never_reach_a_server_the_list_does_not_name, .timeout = 60) {
  raw_server *counter = raw_server_start(NULL, 0);
  http_receiver *allowed = http_receiver_start();
  unsigned p = counter->port, q = http_receiver_port(allowed);

  /* The allow-list: the receiver, and names that resolve to loopback on the counting
   * server's port (so only step 3, the address check, can stop those). */
  char names[2][72];
  size_t name_count = loopback_names(names, 2);
  cr_assert_geq(name_count, 1, "no host name resolving to loopback was found (see /etc/hosts)");
  char entries[3][256];
  char *hosts[3];
  snprintf(entries[0], sizeof entries[0], "http://127.0.0.1:%u", q);
  for (size_t i = 0; i < name_count; i++) snprintf(entries[1 + i], 256, "%s:%u", names[i], p);
  for (size_t i = 0; i < 1 + name_count; i++) hosts[i] = entries[i];
  sl_http_policy *policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1 + name_count, .max_redirects = 5});

  crafted direct[64];
  size_t direct_count = 0;
#define DIRECT(outcome, ...)                                                                       \
  do {                                                                                             \
    snprintf(direct[direct_count].url, sizeof direct[0].url, __VA_ARGS__);                         \
    direct[direct_count++].expected = (outcome);                                                   \
  } while (0)
  /* loopback in every spelling */
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://2130706433:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://0x7f000001:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://0x7f.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://0177.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://0177.0.0.01:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://127.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1.:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://%%31%%32%%37.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://[::1]:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://[0:0:0:0:0:0:0:1]:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://[::ffff:127.0.0.1]:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://[::ffff:7f00:1]:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://localhost:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://localhost.:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://LocalHost:%u/", p);
  /* userinfo tricks */
  DIRECT(SL_HTTP_DENIED, "http://evil@127.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u@127.0.0.1:%u/", q, p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u:x@127.0.0.1:%u/", q, p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u\\@127.0.0.1:%u/", q, p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u@evil.example/", p);
  DIRECT(SL_HTTP_DENIED, "http://127.0.0.1:%u#@127.0.0.1:%u/", p, q);
  DIRECT(SL_HTTP_INVALID_REQUEST, "http://127.0.0.1:%u:%u/", q, p);
  DIRECT(SL_HTTP_INVALID_REQUEST, "http://127.0.0.1:%u /@127.0.0.1:%u/", q, p);
  /* wrong schemes */
  DIRECT(SL_HTTP_DENIED, "https://127.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "https://127.0.0.1:%u/", q); /* the entry says http:// */
  DIRECT(SL_HTTP_DENIED, "ftp://127.0.0.1:%u/", p);
  DIRECT(SL_HTTP_DENIED, "gopher://127.0.0.1:%u/_GET%%20/", p);
  DIRECT(SL_HTTP_DENIED, "dict://127.0.0.1:%u/", p);
  /* allowed names that resolve to loopback: the URL passes, the address does not */
  for (size_t i = 0; i < name_count; i++) {
    DIRECT(SL_HTTP_DENIED, "http://%s:%u/", names[i], p);
    DIRECT(SL_HTTP_DENIED, "http://%s.:%u/x", names[i], p);
  }
  size_t step3_count = 2 * name_count;

  /* Redirects from the allowed receiver to the counting server. */
  char locations[16][300];
  size_t location_count = 0;
#define LOCATION(...) snprintf(locations[location_count++], 300, __VA_ARGS__)
  LOCATION("http://127.0.0.1:%u/", p);
  LOCATION("http://2130706433:%u/", p);
  LOCATION("http://0x7f.1:%u/", p);
  LOCATION("http://[::1]:%u/", p);
  LOCATION("http://[::ffff:127.0.0.1]:%u/", p);
  LOCATION("http://localhost:%u/", p);
  LOCATION("//127.0.0.1:%u/", p);
  LOCATION("http://evil@127.0.0.1:%u/", p);
  LOCATION("https://127.0.0.1:%u/", p);
  LOCATION("http://127.0.0.1:%u@127.0.0.1:%u/", q, p);
  LOCATION("http://%s:%u/", names[0], p); /* allowed by name, refused by address */
  step3_count += 1;
  size_t total = direct_count + location_count;
  cr_assert_geq(total, 30, "only %zu crafted URLs", total);

  for (size_t i = 0; i < direct_count; i++) {
    sl_http_response response;
    char why[512] = "";
    sl_http_outcome outcome = send_get(policy, direct[i].url, &response, why, sizeof why);
    cr_expect_eq(outcome, direct[i].expected, "%s: outcome %d, expected %d (%s)", direct[i].url,
                 outcome, direct[i].expected, why);
    cr_expect(why[0], "%s: no reason", direct[i].url);
    cr_expect_eq(response.status, 0);
    cr_expect_null(response.body);
  }
  char start_url[64];
  snprintf(start_url, sizeof start_url, "http://127.0.0.1:%u/start", q);
  for (size_t i = 0; i < location_count; i++) {
    char header[400];
    cr_assert_lt(strlen(locations[i]), 300);
    snprintf(header, sizeof header, "Location: %s\r\n", locations[i]);
    http_receiver_script(allowed, (hr_reply){.status = 302, .headers = header}, 1);
    sl_http_response response;
    char why[512] = "";
    sl_http_outcome outcome = send_get(policy, start_url, &response, why, sizeof why);
    cr_expect_eq(outcome, SL_HTTP_DENIED, "redirect to %s: outcome %d (%s)", locations[i], outcome,
                 why);
    cr_expect(strstr(why, "redirect to"), "redirect to %s: %s", locations[i], why);
  }

  /* The redirects did reach the allowed server, and nothing reached the counting one. */
  cr_expect_eq(http_receiver_count(allowed), location_count);
  cr_expect_eq(raw_server_accepted(counter), 0, "the counting server saw %u connections",
               raw_server_accepted(counter));
  sl_http_policy_stats stats;
  sl_http_policy_stats_get(policy, &stats);
  cr_expect_geq(stats.connects_refused, step3_count, "refused %llu connects, expected >= %zu",
                (unsigned long long)stats.connects_refused, step3_count);
  cr_expect_eq(stats.connects_allowed, location_count);
  cr_log_info("%zu crafted URLs (%zu direct, %zu redirects), %llu connects refused", total,
              direct_count, location_count, (unsigned long long)stats.connects_refused);
  sl_http_policy_destroy(policy);

  /* The control: a policy that names the counting server reaches it on both families. */
  char named[2][64];
  snprintf(named[0], sizeof named[0], "127.0.0.1:%u", p);
  snprintf(named[1], sizeof named[1], "[::1]:%u", p);
  char *named_hosts[] = {named[0], named[1]};
  policy = policy_for((sl_http_grant){.allowed_hosts = named_hosts, .allowed_count = 2});
  const char *control_urls[] = {"http://127.0.0.1:%u/", "http://[::1]:%u/",
                                "http://2130706433:%u/"};
  for (size_t i = 0; i < 3; i++) {
    char url[64];
    snprintf(url, sizeof url, control_urls[i], p);
    sl_http_response response;
    char why[512] = "";
    cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s: %s", url, why);
    cr_expect_eq(response.body_len, 7);
    sl_http_response_free(&response);
    cr_expect_eq(raw_server_accepted(counter), i + 1);
  }
  sl_http_policy_destroy(policy);
  http_receiver_stop(allowed);
  raw_server_stop(counter);
}

Test(http_client, localhost_entry_may_reach_loopback) {
  raw_server *server = raw_server_start(NULL, 0);
  char entry[64];
  snprintf(entry, sizeof entry, "localhost:%u", server->port);
  char *hosts[] = {entry};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[64], why[512] = "";
  snprintf(url, sizeof url, "http://LOCALHOST.:%u/", server->port);
  sl_http_response response;
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  cr_expect_eq(response.status, 200);
  sl_http_response_free(&response);
  cr_expect_eq(raw_server_accepted(server), 1);
  sl_http_policy_destroy(policy);
  raw_server_stop(server);
}

/* ---- requests and responses ---- */

Test(http_client, request_and_response_round_trip) {
  http_receiver *rx = http_receiver_start();
  http_receiver_set_default(
      rx,
      (hr_reply){.status = 201, .headers = "X-Reply: yes\r\nX-Multi:  a b \r\n", .body = "hello"});
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[128];
  http_receiver_url(rx, "/items?id=7", url, sizeof url);
  sl_kv headers[] = {{"X-Test", "one"}, {"Content-Type", "application/json"}, {"X-Empty", ""}};
  sl_http_request request = {.method = "POST",
                             .url = url,
                             .headers = headers,
                             .header_count = 3,
                             .body = (const uint8_t *)"{\"a\":1}",
                             .body_len = 7};
  sl_http_response response;
  char why[512] = "";
  cr_assert_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK, "%s",
               why);
  cr_expect_eq(response.status, 201);
  cr_expect_eq(response.body_len, 5);
  cr_expect_eq(memcmp(response.body, "hello", 5), 0);
  /* lower-case names, in the order received; the receiver sends Content-Length first */
  cr_assert_geq(response.header_count, 3);
  cr_expect_str_eq(response.headers[0].key, "content-length");
  cr_expect_str_eq(response.headers[0].value, "5");
  cr_expect_str_eq(response.headers[1].key, "x-reply");
  cr_expect_str_eq(response.headers[1].value, "yes");
  cr_expect_str_eq(response_header(&response, "x-multi"), "a b");
  sl_http_response_free(&response);
  cr_expect_null(response.headers);

  cr_assert_eq(http_receiver_count(rx), 1);
  const hr_request *req = http_receiver_request(rx, 0);
  cr_expect_str_eq(req->method, "POST");
  cr_expect_str_eq(req->path, "/items?id=7");
  cr_expect_str_eq(req->body, "{\"a\":1}");
  cr_expect_str_eq(hr_request_header(req, "X-Test"), "one");
  cr_expect_str_eq(hr_request_header(req, "Content-Type"), "application/json");
  cr_expect_str_eq(hr_request_header(req, "X-Empty"), "");
  cr_expect_null(hr_request_header(req, "Expect"));
  char host[64];
  snprintf(host, sizeof host, "127.0.0.1:%u", http_receiver_port(rx));
  cr_expect_str_eq(hr_request_header(req, "Host"), host);
  sl_http_policy_stats stats;
  sl_http_policy_stats_get(policy, &stats);
  cr_expect_eq(stats.connects_allowed, 1);
  cr_expect_eq(stats.connects_refused, 0);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, each_method_goes_out_as_asked) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[128];
  http_receiver_url(rx, "/m", url, sizeof url);
  static const struct {
    const char *method;
    const char *body;
  } cases[] = {{"GET", NULL},  {"GET", "q"},     {"POST", NULL},  {"PUT", "put-body"},
               {"PATCH", "p"}, {"DELETE", NULL}, {"DELETE", "d"}, {"HEAD", NULL}};
  size_t n = sizeof cases / sizeof *cases;
  for (size_t i = 0; i < n; i++) {
    sl_http_request request = {.method = cases[i].method,
                               .url = url,
                               .body = (const uint8_t *)cases[i].body,
                               .body_len = cases[i].body ? strlen(cases[i].body) : 0};
    sl_http_response response;
    char why[512] = "";
    cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK,
                 "%s: %s", cases[i].method, why);
    sl_http_response_free(&response);
  }
  cr_assert_eq(http_receiver_count(rx), n);
  for (size_t i = 0; i < n; i++) {
    const hr_request *req = http_receiver_request(rx, i);
    cr_expect_str_eq(req->method, cases[i].method);
    cr_expect_str_eq(req->body, cases[i].body ? cases[i].body : "", "%s", cases[i].method);
  }
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, bad_requests_are_refused_before_connecting) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  static const char *const bad_methods[] = {"TRACE", "CONNECT", "OPTIONS", "get", "", "GET "};
  for (size_t i = 0; i < sizeof bad_methods / sizeof *bad_methods; i++) {
    sl_http_request request = {.method = bad_methods[i], .url = url};
    sl_http_response response;
    char why[512] = "";
    cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why),
                 SL_HTTP_INVALID_REQUEST, "method '%s'", bad_methods[i]);
  }
  static const sl_kv bad_headers[] = {
      {"Host", "evil.example"},
      {"content-length", "5"},
      {"Transfer-Encoding", "chunked"},
      {"Connection", "keep-alive"},
      {"X Bad", "1"},
      {"X-Bad:", "1"},
      {"", "1"},
      {"X-Split", "a\r\nX-Evil: 1"},
      {"X-Split", "a\nb"},
      {"X-Ctl", "a\x01"},
      {"Upgrade", "h2c"},
      {"Expect", "100-continue"},
  };
  for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
    sl_http_request request = {
        .method = "GET", .url = url, .headers = &bad_headers[i], .header_count = 1};
    sl_http_response response;
    char why[512] = "";
    cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why),
                 SL_HTTP_INVALID_REQUEST, "header '%s'", bad_headers[i].key);
  }
  sl_http_request head_with_body = {
      .method = "HEAD", .url = url, .body = (const uint8_t *)"x", .body_len = 1};
  sl_http_response response;
  char why[512];
  cr_expect_eq(sl_http_send(policy, &head_with_body, 0, &response, why, sizeof why),
               SL_HTTP_INVALID_REQUEST);
  cr_expect_eq(http_receiver_connections(rx), 0);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

/* ---- injected headers ---- */

Test(http_client, injected_header_replaces_the_guests_and_stays_with_its_host) {
  http_receiver *first = http_receiver_start(), *second = http_receiver_start();
  char entries[2][64];
  loopback_entry(entries[0], 64, http_receiver_port(first));
  snprintf(entries[1], 64, "localhost:%u", http_receiver_port(second));
  char *hosts[] = {entries[0], entries[1]};
  sl_http_header_rule rules[] = {{"127.0.0.1", "Authorization", "Bearer s3cret-token"},
                                 {"127.0.0.1", "X-Api-Key", "k3y"}};
  sl_http_policy *policy = policy_for((sl_http_grant){
      .allowed_hosts = hosts, .allowed_count = 2, .headers = rules, .header_count = 2});
  char url[128];
  http_receiver_url(first, "/a", url, sizeof url);
  sl_kv guest[] = {{"authorization", "Bearer guest"}, {"X-API-KEY", "guest-key"}, {"X-Guest", "1"}};
  sl_http_request request = {.method = "GET", .url = url, .headers = guest, .header_count = 3};
  sl_http_response response;
  char why[512] = "";
  cr_assert_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK, "%s",
               why);
  sl_http_response_free(&response);
  const hr_request *req = http_receiver_request(first, 0);
  cr_expect_eq(request_header_count(req, "Authorization"), 1);
  cr_expect_str_eq(hr_request_header(req, "Authorization"), "Bearer s3cret-token");
  cr_expect_eq(request_header_count(req, "X-Api-Key"), 1);
  cr_expect_str_eq(hr_request_header(req, "X-Api-Key"), "k3y");
  cr_expect_str_eq(hr_request_header(req, "X-Guest"), "1");

  /* Redirected to another allowed host: the first host's headers stay behind, and so do
   * the guest's credentials; its other headers follow. */
  char location[128];
  snprintf(location, sizeof location, "Location: http://localhost:%u/b\r\n",
           http_receiver_port(second));
  http_receiver_script(first, (hr_reply){.status = 307, .headers = location}, 1);
  cr_assert_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK, "%s",
               why);
  sl_http_response_free(&response);
  cr_assert_eq(http_receiver_count(first), 2);
  cr_expect_str_eq(hr_request_header(http_receiver_request(first, 1), "Authorization"),
                   "Bearer s3cret-token");
  cr_assert_eq(http_receiver_count(second), 1);
  req = http_receiver_request(second, 0);
  cr_expect_str_eq(req->path, "/b");
  cr_expect_null(hr_request_header(req, "Authorization"));
  cr_expect_str_eq(hr_request_header(req, "X-Api-Key"), "guest-key");
  cr_expect_str_eq(hr_request_header(req, "X-Guest"), "1");
  for (size_t i = 0; i < req->header_count; i++) {
    cr_expect_null(strstr(req->headers[i].value, "s3cret"), "%s", req->headers[i].name);
    cr_expect_null(strstr(req->headers[i].value, "k3y"), "%s", req->headers[i].name);
  }

  /* A failure's reason never carries the secret. */
  http_receiver_set_default(first, (hr_reply){.action = HR_CLOSE});
  cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_FAILED);
  cr_expect_null(strstr(why, "s3cret"), "%s", why);
  sl_http_policy_destroy(policy);
  http_receiver_stop(first);
  http_receiver_stop(second);
}

Test(http_client, rules_for_other_hosts_are_not_sent) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  snprintf(entry, sizeof entry, "localhost:%u", http_receiver_port(rx));
  char *hosts[] = {entry, "*.example.com", "127.0.0.1:1"};
  sl_http_header_rule rules[] = {{"localhost", "X-Key", "for-localhost"},
                                 {"*.example.com", "X-Key", "for-example"},
                                 {"*.example.com", "X-Other", "for-example"},
                                 {"127.0.0.1", "X-Third", "for-127"}};
  sl_http_policy *policy = policy_for((sl_http_grant){
      .allowed_hosts = hosts, .allowed_count = 3, .headers = rules, .header_count = 4});
  char url[128];
  snprintf(url, sizeof url, "http://localhost:%u/", http_receiver_port(rx));
  sl_http_response response;
  char why[512] = "";
  cr_assert_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  sl_http_response_free(&response);
  const hr_request *req = http_receiver_request(rx, 0);
  cr_expect_eq(request_header_count(req, "X-Key"), 1);
  cr_expect_str_eq(hr_request_header(req, "X-Key"), "for-localhost");
  cr_expect_null(hr_request_header(req, "X-Other"));
  cr_expect_null(hr_request_header(req, "X-Third"));
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

/* ---- redirects ---- */

Test(http_client, redirects_within_the_list_are_followed) {
  http_receiver *first = http_receiver_start(), *second = http_receiver_start();
  char entries[2][64];
  char *hosts[] = {loopback_entry(entries[0], 64, http_receiver_port(first)),
                   loopback_entry(entries[1], 64, http_receiver_port(second))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 2});
  char location[128];
  snprintf(location, sizeof location, "Location: http://127.0.0.1:%u/next?x=1\r\n",
           http_receiver_port(second));
  http_receiver_script(first, (hr_reply){.status = 301, .headers = location}, 1);
  http_receiver_set_default(second, (hr_reply){.status = 200, .body = "second"});
  char url[128];
  http_receiver_url(first, "/start", url, sizeof url);
  sl_http_response response;
  char why[512] = "";
  cr_assert_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  cr_expect_eq(response.status, 200);
  cr_expect_eq(response.body_len, 6);
  cr_expect_eq(memcmp(response.body, "second", 6), 0);
  cr_expect_null(response_header(&response, "location"), "headers of the final response only");
  sl_http_response_free(&response);
  cr_expect_str_eq(http_receiver_request(second, 0)->path, "/next?x=1");

  /* A relative Location is resolved against the current URL. */
  http_receiver_script(first, (hr_reply){.status = 302, .headers = "Location: ../other\r\n"}, 1);
  http_receiver_url(first, "/dir/page", url, sizeof url);
  cr_assert_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  sl_http_response_free(&response);
  cr_assert_eq(http_receiver_count(first), 3);
  cr_expect_str_eq(http_receiver_request(first, 2)->path, "/other");
  sl_http_policy_destroy(policy);
  http_receiver_stop(first);
  http_receiver_stop(second);
}

Test(http_client, redirects_change_the_method_like_browsers) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[128];
  http_receiver_url(rx, "/post", url, sizeof url);
  sl_kv headers[] = {{"Content-Type", "text/plain"}};
  static const struct {
    int status;
    const char *method;
    const char *then_method;
    bool keeps_body;
  } cases[] = {{303, "POST", "GET", false}, {302, "POST", "GET", false},
               {301, "POST", "GET", false}, {307, "POST", "POST", true},
               {308, "PUT", "PUT", true},   {303, "PUT", "GET", false},
               {302, "PUT", "PUT", true}};
  size_t seen = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    http_receiver_script(rx, (hr_reply){.status = cases[i].status, .headers = "Location: /to\r\n"},
                         1);
    sl_http_request request = {.method = cases[i].method,
                               .url = url,
                               .headers = headers,
                               .header_count = 1,
                               .body = (const uint8_t *)"data",
                               .body_len = 4};
    sl_http_response response;
    char why[512] = "";
    cr_assert_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK, "%s",
                 why);
    sl_http_response_free(&response);
    seen += 2;
    cr_assert_eq(http_receiver_count(rx), seen);
    const hr_request *then = http_receiver_request(rx, seen - 1);
    cr_expect_str_eq(then->method, cases[i].then_method, "%d after %s", cases[i].status,
                     cases[i].method);
    cr_expect_str_eq(then->body, cases[i].keeps_body ? "data" : "", "%d", cases[i].status);
    if (cases[i].keeps_body) {
      cr_expect_str_eq(hr_request_header(then, "Content-Type"), "text/plain");
    } else {
      cr_expect_null(hr_request_header(then, "Content-Type"), "%d", cases[i].status);
    }
  }
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, max_redirects_is_enforced) {
  http_receiver *rx = http_receiver_start();
  http_receiver_set_default(rx, (hr_reply){.status = 302, .headers = "Location: /again\r\n"});
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  sl_http_policy *policy =
      policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_redirects = 2});
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_FAILED);
  cr_expect(strstr(why, "more than 2 redirects"), "%s", why);
  cr_expect_eq(http_receiver_count(rx), 3);
  sl_http_policy_destroy(policy);

  /* 0: the 3xx comes back as it is */
  policy =
      policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_redirects = -2});
  cr_assert_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  cr_expect_eq(response.status, 302);
  cr_expect_str_eq(response_header(&response, "location"), "/again");
  sl_http_response_free(&response);
  cr_expect_eq(http_receiver_count(rx), 4);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

/* ---- caps and timeouts ---- */

Test(http_client, request_body_cap) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_request_bytes = 10});
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  sl_http_request request = {
      .method = "POST", .url = url, .body = (const uint8_t *)"0123456789A", .body_len = 11};
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_TOO_LARGE);
  cr_expect(strstr(why, "max_request_bytes"), "%s", why);
  cr_expect_eq(http_receiver_connections(rx), 0);
  request.body_len = 10;
  cr_expect_eq(sl_http_send(policy, &request, 0, &response, why, sizeof why), SL_HTTP_OK, "%s",
               why);
  sl_http_response_free(&response);
  cr_expect_eq(http_receiver_count(rx), 1);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, response_body_cap) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_response_bytes = 100});
  char body[102];
  memset(body, 'b', 101);
  body[101] = '\0';
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  http_receiver_script(rx, (hr_reply){.body = body}, 1);
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TOO_LARGE, "%s", why);
  cr_expect(strstr(why, "max_response_bytes"), "%s", why);
  cr_expect_null(response.body);
  body[100] = '\0';
  http_receiver_script(rx, (hr_reply){.body = body}, 1);
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  cr_expect_eq(response.body_len, 100);
  sl_http_response_free(&response);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

/* Bodies without Content-Length are counted as they arrive. */
Test(http_client, response_body_cap_without_content_length) {
  char raw[4096];
  int n = snprintf(raw, sizeof raw, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
  memset(raw + n, 'x', 3000);
  raw_server *server = raw_server_start(raw, (size_t)n + 3000);
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, server->port)};
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", server->port);
  sl_http_policy *policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_response_bytes = 2999});
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TOO_LARGE, "%s", why);
  sl_http_policy_destroy(policy);
  policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_response_bytes = 3000});
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_OK, "%s", why);
  cr_expect_eq(response.body_len, 3000);
  sl_http_response_free(&response);
  sl_http_policy_destroy(policy);
  raw_server_stop(server);
}

static void expect_head_too_large(const char *raw, size_t len) {
  raw_server *server = raw_server_start(raw, len);
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, server->port)};
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", server->port);
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TOO_LARGE, "%s", why);
  cr_expect_eq(response.header_count, 0);
  sl_http_policy_destroy(policy);
  raw_server_stop(server);
}

Test(http_client, response_head_caps) {
  /* 70 KiB in few headers */
  size_t cap = 80 << 10;
  char *raw = malloc(cap);
  size_t len = (size_t)snprintf(raw, cap, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
  for (int i = 0; i < 7; i++) {
    len += (size_t)snprintf(raw + len, cap - len, "X-Big-%d: ", i);
    memset(raw + len, 'v', 10000);
    len += 10000;
    len += (size_t)snprintf(raw + len, cap - len, "\r\n");
  }
  len += (size_t)snprintf(raw + len, cap - len, "\r\n");
  expect_head_too_large(raw, len);
  /* too many small headers */
  len = (size_t)snprintf(raw, cap, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
  for (int i = 0; i < SL_HTTP_MAX_RESPONSE_HEADERS + 1; i++)
    len += (size_t)snprintf(raw + len, cap - len, "X-%d: v\r\n", i);
  len += (size_t)snprintf(raw + len, cap - len, "\r\n");
  expect_head_too_large(raw, len);
  free(raw);
}

Test(http_client, timeout_against_a_server_that_never_answers) {
  http_receiver *rx = http_receiver_start();
  http_receiver_set_default(rx, (hr_reply){.action = HR_HANG});
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  sl_http_policy *policy =
      policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .timeout_ms = 300});
  sl_http_response response;
  char why[512] = "";
  uint64_t start = now_ms();
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TIMEOUT, "%s", why);
  uint64_t took = now_ms() - start;
  cr_expect(took >= 250 && took < 2000, "took %llu ms", (unsigned long long)took);
  sl_http_policy_destroy(policy);

  /* The caller's deadline caps a longer grant timeout. */
  policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  start = now_ms();
  cr_expect_eq(sl_http_send(policy, &(sl_http_request){.method = "GET", .url = url}, 300, &response,
                            why, sizeof why),
               SL_HTTP_TIMEOUT, "%s", why);
  took = now_ms() - start;
  cr_expect(took >= 250 && took < 2000, "took %llu ms", (unsigned long long)took);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, timeout_covers_the_redirects) {
  http_receiver *rx = http_receiver_start();
  /* Each hop answers at once, but the script ends in a hang: the one budget must stop it. */
  http_receiver_script(rx, (hr_reply){.status = 302, .headers = "Location: /1\r\n"}, 2);
  http_receiver_set_default(rx, (hr_reply){.action = HR_HANG});
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  char url[128];
  http_receiver_url(rx, "/", url, sizeof url);
  sl_http_policy *policy =
      policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .timeout_ms = 300});
  sl_http_response response;
  char why[512] = "";
  uint64_t start = now_ms();
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TIMEOUT, "%s", why);
  uint64_t took = now_ms() - start;
  cr_expect(took < 2000, "took %llu ms", (unsigned long long)took);
  cr_expect_eq(http_receiver_count(rx), 3);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

Test(http_client, an_allowed_port_with_nobody_listening_fails_without_denial) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&a4, sizeof a4), 0);
  socklen_t a4_len = sizeof a4;
  getsockname(fd, (struct sockaddr *)&a4, &a4_len);
  unsigned port = ntohs(a4.sin_port);
  close(fd); /* nothing listens there now */
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, port)};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_FAILED, "%s", why);
  cr_expect(strstr(why, "127.0.0.1"), "%s", why);
  sl_http_policy_destroy(policy);
}

/* ---- threads ---- */

typedef struct sender {
  const sl_http_policy *policy;
  const char *url;
  int ok;
} sender;

static void *send_several(void *arg) {
  sender *s = arg;
  for (int i = 0; i < 5; i++) {
    sl_http_response response;
    char why[512];
    if (send_get(s->policy, s->url, &response, why, sizeof why) == SL_HTTP_OK &&
        response.status == 200)
      s->ok++;
    sl_http_response_free(&response);
  }
  return NULL;
}

Test(http_client, one_policy_serves_several_threads) {
  http_receiver *rx = http_receiver_start();
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, http_receiver_port(rx))};
  sl_http_policy *policy = policy_for((sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1});
  char url[128];
  http_receiver_url(rx, "/t", url, sizeof url);
  pthread_t threads[4];
  sender senders[4];
  for (int i = 0; i < 4; i++) {
    senders[i] = (sender){policy, url, 0};
    cr_assert_eq(pthread_create(&threads[i], NULL, send_several, &senders[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    cr_expect_eq(senders[i].ok, 5);
  }
  cr_expect_eq(http_receiver_count(rx), 20);
  sl_http_policy_stats stats;
  sl_http_policy_stats_get(policy, &stats);
  cr_expect_eq(stats.connects_allowed, 20);
  sl_http_policy_destroy(policy);
  http_receiver_stop(rx);
}

/* HEAD announces the size of a body it does not send: that is not a body over the cap. */
Test(http_client, head_of_a_large_resource_is_not_too_large) {
  static const char raw[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 999999\r\nConnection: close\r\n\r\n";
  raw_server *server = raw_server_start(raw, sizeof raw - 1);
  char entry[64];
  char *hosts[] = {loopback_entry(entry, sizeof entry, server->port)};
  sl_http_policy *policy = policy_for(
      (sl_http_grant){.allowed_hosts = hosts, .allowed_count = 1, .max_response_bytes = 100});
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", server->port);
  sl_http_response response;
  char why[512] = "";
  cr_expect_eq(sl_http_send(policy, &(sl_http_request){.method = "HEAD", .url = url}, 0, &response,
                            why, sizeof why),
               SL_HTTP_OK, "%s", why);
  cr_expect_str_eq(response_header(&response, "content-length"), "999999");
  cr_expect_eq(response.body_len, 0);
  sl_http_response_free(&response);
  /* The same answer to a GET promises too much. */
  cr_expect_eq(send_get(policy, url, &response, why, sizeof why), SL_HTTP_TOO_LARGE, "%s", why);
  sl_http_policy_destroy(policy);
  raw_server_stop(server);
}
