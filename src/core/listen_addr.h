/*
 * listen_addr.h - the `listen` address of anything that accepts connections (the http
 * source, the daemon's API): "HOST:PORT", ":PORT" (every IPv4 address) or
 * "[IPv6]:PORT", with HOST a numeric address or a name. Port 0 means "any free port".
 */
#ifndef SL_CORE_LISTEN_ADDR_H
#define SL_CORE_LISTEN_ADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sluice/status.h"

typedef struct sl_listen_addr {
  struct sockaddr_storage addr;
  socklen_t len;
  char display[300]; /* "host:port" or "[v6]:port", for messages */
} sl_listen_addr;

/* SL_CONFIG with "listen: '...' what is wrong; expected ..., e.g. EXAMPLE" when `listen`
 * is malformed or its host does not resolve (a name: its first IPv4 address, else its
 * first IPv6 one). */
sl_status sl__listen_addr_parse(const char *listen, const char *example, sl_listen_addr *out,
                                sl_error *err);

/* The port actually bound (after port 0), into both `addr` and `display`. */
void sl__listen_addr_set_port(sl_listen_addr *where, uint16_t port);

#endif
