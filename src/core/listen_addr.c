/*
 * listen_addr.c - parsing `listen` addresses (listen_addr.h).
 */
#include "core/listen_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static sl_status bad_listen(const char *listen, const char *example, const char *why,
                            sl_error *err) {
  return sl_error_set(err, SL_CONFIG,
                      "listen: '%s' %s; expected HOST:PORT, :PORT (every address) or [IPv6]:PORT, "
                      "e.g. \"%s\"",
                      listen, why, example);
}

static void put_port(struct sockaddr_storage *addr, uint16_t port) {
  if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
  else
    ((struct sockaddr_in *)addr)->sin_port = htons(port);
}

/* A numeric address, or a name's first IPv4 address, else its first IPv6 one. */
static sl_status resolve(sl_listen_addr *out, const char *listen, const char *host, bool bracketed,
                         const char *example, sl_error *err) {
  memset(&out->addr, 0, sizeof out->addr);
  struct sockaddr_in *in4 = (struct sockaddr_in *)&out->addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->addr;
  if (!bracketed && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    out->len = sizeof *in4;
    return SL_OK;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    out->len = sizeof *in6;
    return SL_OK;
  }
  if (bracketed)
    return bad_listen(listen, example, "has no IPv6 address between the brackets", err);
  static const int families[] = {AF_INET, AF_INET6};
  int rc = EAI_NONAME;
  for (size_t i = 0; i < 2; i++) {
    struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) continue;
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return SL_OK;
  }
  return sl_error_set(err, SL_CONFIG, "listen: cannot resolve host '%s' in '%s': %s", host, listen,
                      gai_strerror(rc));
}

sl_status sl__listen_addr_parse(const char *listen, const char *example, sl_listen_addr *out,
                                sl_error *err) {
  char host[256];
  const char *colon;
  bool bracketed = listen[0] == '[';
  if (bracketed) {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':')
      return bad_listen(listen, example, "has no ']:' before the port", err);
    if ((size_t)(close - listen - 1) >= sizeof host)
      return bad_listen(listen, example, "has a host that is too long", err);
    memcpy(host, listen + 1, (size_t)(close - listen - 1));
    host[close - listen - 1] = '\0';
    colon = close + 1;
  } else {
    colon = strrchr(listen, ':');
    if (!colon) return bad_listen(listen, example, "has no port", err);
    if (memchr(listen, ':', (size_t)(colon - listen)))
      return bad_listen(listen, example, "looks like an IPv6 address without brackets", err);
    if ((size_t)(colon - listen) >= sizeof host)
      return bad_listen(listen, example, "has a host that is too long", err);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (!host[0]) snprintf(host, sizeof host, "0.0.0.0");
  }
  const char *digits = colon + 1;
  unsigned port = 0;
  if (!*digits) return bad_listen(listen, example, "has no port", err);
  for (const char *d = digits; *d; d++) {
    if (*d < '0' || *d > '9')
      return bad_listen(listen, example, "has a port that is not a number", err);
    port = port * 10 + (unsigned)(*d - '0');
    if (port > 65535) return bad_listen(listen, example, "has a port above 65535", err);
  }
  sl_status st = resolve(out, listen, host, bracketed, example, err);
  if (st != SL_OK) return st;
  put_port(&out->addr, (uint16_t)port);
  snprintf(out->display, sizeof out->display, bracketed ? "[%s]:%u" : "%s:%u", host, port);
  return SL_OK;
}

void sl__listen_addr_set_port(sl_listen_addr *where, uint16_t port) {
  put_port(&where->addr, port);
  char *colon = strrchr(where->display, ':');
  if (colon)
    snprintf(colon + 1, sizeof where->display - (size_t)(colon + 1 - where->display), "%u", port);
}
