/*
 * http_receiver.c - the test HTTP/1.1 server described in http_receiver.h.
 *
 * Sections: state - parsing one request - answering - the serving thread - the API.
 * Requests are parsed from each connection's buffer as soon as it holds a whole one
 * (head up to "\r\n\r\n", then Content-Length bytes), so pipelined requests and requests
 * split across many reads are handled the same way.
 */
#include "http_receiver.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Larger heads are answered 431; larger bodies 413. Both close the connection. */
#define HEAD_MAX (64u << 10)
#define BODY_MAX (64u << 20)

/* ---- state ------------------------------------------------------------------------- */

typedef struct conn {
  int fd; /* -1 once closed; removed after the current poll round */
  unsigned id;
  char *buf;
  size_t len, cap;
  bool hanging;       /* HR_HANG: what arrives is read and dropped */
  bool sent_continue; /* "100 Continue" already sent for the request in progress */
} conn;

typedef struct script_step {
  hr_reply reply; /* strings owned */
  unsigned times;
} script_step;

struct http_receiver {
  int listen_fd;
  int wake[2]; /* a byte written to wake[1] stops the thread */
  unsigned short port;
  pthread_t thread;

  /* Only the serving thread touches these. */
  conn *conns;
  size_t conn_count, conn_cap;

  /* Shared with the test thread, under `lock`. */
  pthread_mutex_t lock;
  pthread_cond_t arrived;
  hr_request **requests;
  size_t count, cap;
  script_step *script;
  size_t script_head, script_len, script_cap;
  hr_reply fallback; /* strings owned */
  unsigned connections;
};

uint64_t hr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *xrealloc(void *ptr, size_t size) {
  void *grown = realloc(ptr, size);
  if (!grown) abort();
  return grown;
}

static char *xstrndup(const char *s, size_t n) {
  char *copy = strndup(s, n);
  if (!copy) abort();
  return copy;
}

static hr_reply copy_reply(hr_reply reply) {
  hr_reply copy = reply;
  copy.headers = reply.headers ? xstrndup(reply.headers, strlen(reply.headers)) : NULL;
  copy.body = reply.body ? xstrndup(reply.body, strlen(reply.body)) : NULL;
  return copy;
}

static void free_reply(hr_reply *reply) {
  free((char *)reply->headers);
  free((char *)reply->body);
}

static void free_request(hr_request *req) {
  for (size_t i = 0; i < req->header_count; i++) {
    free(req->headers[i].name);
    free(req->headers[i].value);
  }
  free(req->headers);
  free(req->body);
  free(req);
}

const char *hr_request_header(const hr_request *req, const char *name) {
  for (size_t i = 0; i < req->header_count; i++)
    if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
  return NULL;
}

/* ---- parsing one request ----------------------------------------------------------- */

typedef enum parse_result {
  PARSE_DONE,    /* *out holds a request; *used bytes of the buffer belong to it */
  PARSE_MORE,    /* incomplete: read more */
  PARSE_INVALID, /* answer *error_status and close */
} parse_result;

/* Trims spaces and tabs at both ends of [*start, *start + *len). */
static void trim(const char **start, size_t *len) {
  while (*len && (**start == ' ' || **start == '\t')) (*start)++, (*len)--;
  while (*len && ((*start)[*len - 1] == ' ' || (*start)[*len - 1] == '\t')) (*len)--;
}

static parse_result parse_head(const char *buf, size_t head_len, hr_request *req,
                               int *error_status) {
  const char *end = buf + head_len;
  const char *line_end = memmem(buf, head_len, "\r\n", 2);
  const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
  const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
  if (!sp1 || !sp2 || sp1 == buf || (size_t)(sp1 - buf) >= sizeof req->method ||
      (size_t)(line_end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    *error_status = 400;
    return PARSE_INVALID;
  }
  if ((size_t)(sp2 - sp1 - 1) >= sizeof req->path) {
    *error_status = 414;
    return PARSE_INVALID;
  }
  memcpy(req->method, buf, (size_t)(sp1 - buf));
  memcpy(req->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));

  for (const char *line = line_end + 2; line < end; line = line_end + 2) {
    line_end = memmem(line, (size_t)(end - line), "\r\n", 2);
    if (!line_end) line_end = end;
    if (line_end == line) break;
    const char *colon = memchr(line, ':', (size_t)(line_end - line));
    if (!colon || colon == line || *line == ' ' || *line == '\t' || colon[-1] == ' ') {
      *error_status = 400; /* no colon, obsolete line folding, or space before the colon */
      return PARSE_INVALID;
    }
    const char *value = colon + 1;
    size_t value_len = (size_t)(line_end - value);
    trim(&value, &value_len);
    req->headers = xrealloc(req->headers, (req->header_count + 1) * sizeof *req->headers);
    req->headers[req->header_count].name = xstrndup(line, (size_t)(colon - line));
    req->headers[req->header_count].value = xstrndup(value, value_len);
    req->header_count++;
  }
  return PARSE_DONE;
}

/* Parses the request at the start of c->buf, if it is all there. */
static parse_result parse_request(conn *c, hr_request **out, size_t *used, int *error_status,
                                  bool *wants_continue) {
  *wants_continue = false;
  const char *head_end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
  if (!head_end) {
    if (c->len > HEAD_MAX) {
      *error_status = 431;
      return PARSE_INVALID;
    }
    return PARSE_MORE;
  }
  size_t head_len = (size_t)(head_end - c->buf) + 4;
  hr_request *req = calloc(1, sizeof *req);
  if (!req) abort();
  parse_result result = parse_head(c->buf, head_len - 2, req, error_status);
  if (result != PARSE_DONE) goto fail;

  if (hr_request_header(req, "Transfer-Encoding")) {
    *error_status = 501;
    result = PARSE_INVALID;
    goto fail;
  }
  size_t body_len = 0;
  const char *length = hr_request_header(req, "Content-Length");
  if (length) {
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(length, &end, 10);
    if (!*length || *end || errno || length[0] == '-' || length[0] == '+') {
      *error_status = 400;
      result = PARSE_INVALID;
      goto fail;
    }
    if (n > BODY_MAX) {
      *error_status = 413;
      result = PARSE_INVALID;
      goto fail;
    }
    body_len = (size_t)n;
  }
  if (c->len < head_len + body_len) {
    const char *expect = hr_request_header(req, "Expect");
    *wants_continue = expect && strcasecmp(expect, "100-continue") == 0;
    result = PARSE_MORE;
    goto fail;
  }
  req->body = malloc(body_len + 1);
  if (!req->body) abort();
  memcpy(req->body, c->buf + head_len, body_len);
  req->body[body_len] = '\0';
  req->body_len = body_len;
  req->connection = c->id;
  req->at_ms = hr_now_ms();
  *out = req;
  *used = head_len + body_len;
  return PARSE_DONE;

fail:
  free_request(req);
  return result;
}

/* ---- answering --------------------------------------------------------------------- */

static const char *reason_phrase(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

static void send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* the client left; the next read sees it */
    data += n;
    len -= (size_t)n;
  }
}

static void send_reply(int fd, int status, const char *headers, const char *body, bool closing) {
  size_t body_len = body ? strlen(body) : 0;
  char head[4096];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s\r\n", status,
                   reason_phrase(status), body_len, headers ? headers : "",
                   closing ? "Connection: close\r\n" : "");
  if (n < 0 || (size_t)n >= sizeof head) abort();
  send_all(fd, head, (size_t)n);
  if (body_len) send_all(fd, body, body_len);
}

static void close_conn(conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* Records `req` and takes the reply for it from the script. */
static hr_reply record(http_receiver *rx, hr_request *req) {
  pthread_mutex_lock(&rx->lock);
  if (rx->count == rx->cap) {
    rx->cap = rx->cap ? rx->cap * 2 : 16;
    rx->requests = xrealloc(rx->requests, rx->cap * sizeof *rx->requests);
  }
  rx->requests[rx->count++] = req;
  hr_reply reply = rx->fallback;
  if (rx->script_head < rx->script_len) {
    script_step *step = &rx->script[rx->script_head];
    reply = step->reply;
    if (--step->times == 0) rx->script_head++;
  }
  reply = copy_reply(reply); /* the step's strings may be freed once it is used up */
  pthread_cond_broadcast(&rx->arrived);
  pthread_mutex_unlock(&rx->lock);
  return reply;
}

/* Answers every complete request in c->buf. */
static void serve(http_receiver *rx, conn *c) {
  while (c->fd >= 0 && !c->hanging) {
    hr_request *req = NULL;
    size_t used = 0;
    int error_status = 0;
    bool wants_continue = false;
    parse_result result = parse_request(c, &req, &used, &error_status, &wants_continue);
    if (result == PARSE_MORE) {
      if (wants_continue && !c->sent_continue) {
        send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->sent_continue = true;
      }
      return;
    }
    if (result == PARSE_INVALID) {
      send_reply(c->fd, error_status, NULL, NULL, true);
      close_conn(c);
      return;
    }
    const char *connection = hr_request_header(req, "Connection");
    bool client_closes = connection && strcasecmp(connection, "close") == 0;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    c->sent_continue = false;

    hr_reply reply = record(rx, req);
    switch (reply.action) {
    case HR_ANSWER:
      send_reply(c->fd, reply.status ? reply.status : 200, reply.headers, reply.body,
                 client_closes);
      if (client_closes) close_conn(c);
      break;
    case HR_CLOSE:
      close_conn(c);
      break;
    case HR_HANG:
      c->hanging = true;
      c->len = 0;
      break;
    }
    free_reply(&reply);
  }
}

/* ---- the serving thread ------------------------------------------------------------ */

static void accept_one(http_receiver *rx) {
  int fd = accept4(rx->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  if (rx->conn_count == rx->conn_cap) {
    rx->conn_cap = rx->conn_cap ? rx->conn_cap * 2 : 8;
    rx->conns = xrealloc(rx->conns, rx->conn_cap * sizeof *rx->conns);
  }
  pthread_mutex_lock(&rx->lock);
  unsigned id = ++rx->connections;
  pthread_mutex_unlock(&rx->lock);
  rx->conns[rx->conn_count++] = (conn){.fd = fd, .id = id};
}

/* Reads what is waiting on `c` and answers it; closes `c` when the client left. */
static void read_conn(http_receiver *rx, conn *c) {
  if (c->cap - c->len < 16384) {
    c->cap = c->cap ? c->cap * 2 : 65536;
    c->buf = xrealloc(c->buf, c->cap);
  }
  ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_conn(c);
    return;
  }
  if (c->hanging) return; /* dropped */
  c->len += (size_t)n;
  serve(rx, c);
}

static void *run(void *arg) {
  http_receiver *rx = arg;
  struct pollfd *fds = NULL;
  for (;;) {
    fds = xrealloc(fds, (rx->conn_count + 2) * sizeof *fds);
    fds[0] = (struct pollfd){.fd = rx->wake[0], .events = POLLIN};
    fds[1] = (struct pollfd){.fd = rx->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < rx->conn_count; i++)
      fds[i + 2] = (struct pollfd){.fd = rx->conns[i].fd, .events = POLLIN};
    size_t polled = rx->conn_count;
    if (poll(fds, polled + 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    for (size_t i = 0; i < polled; i++)
      if (fds[i + 2].revents) read_conn(rx, &rx->conns[i]);
    if (fds[1].revents) accept_one(rx);
    size_t kept = 0;
    for (size_t i = 0; i < rx->conn_count; i++) {
      if (rx->conns[i].fd >= 0)
        rx->conns[kept++] = rx->conns[i];
      else
        free(rx->conns[i].buf);
    }
    rx->conn_count = kept;
  }
  free(fds);
  return NULL;
}

/* ---- the API ----------------------------------------------------------------------- */

http_receiver *http_receiver_start(void) {
  http_receiver *rx = calloc(1, sizeof *rx);
  cr_assert_not_null(rx);
  rx->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(rx->listen_fd, 0, "socket: %s", strerror(errno));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(rx->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0, "bind: %s",
               strerror(errno));
  cr_assert_eq(listen(rx->listen_fd, 64), 0, "listen: %s", strerror(errno));
  socklen_t addr_len = sizeof addr;
  cr_assert_eq(getsockname(rx->listen_fd, (struct sockaddr *)&addr, &addr_len), 0);
  rx->port = ntohs(addr.sin_port);
  cr_assert_eq(pipe2(rx->wake, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));

  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&rx->arrived, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&rx->lock, NULL);
  rx->fallback = copy_reply((hr_reply){.status = 200});
  cr_assert_eq(pthread_create(&rx->thread, NULL, run, rx), 0);
  return rx;
}

void http_receiver_stop(http_receiver *rx) {
  cr_assert_eq(write(rx->wake[1], "x", 1), 1);
  pthread_join(rx->thread, NULL);
  for (size_t i = 0; i < rx->conn_count; i++) {
    close_conn(&rx->conns[i]);
    free(rx->conns[i].buf);
  }
  free(rx->conns);
  close(rx->listen_fd);
  close(rx->wake[0]);
  close(rx->wake[1]);
  for (size_t i = 0; i < rx->count; i++) free_request(rx->requests[i]);
  free(rx->requests);
  for (size_t i = 0; i < rx->script_len; i++) free_reply(&rx->script[i].reply);
  free(rx->script);
  free_reply(&rx->fallback);
  pthread_cond_destroy(&rx->arrived);
  pthread_mutex_destroy(&rx->lock);
  free(rx);
}

void http_receiver_script(http_receiver *rx, hr_reply reply, unsigned times) {
  if (times == 0) return;
  pthread_mutex_lock(&rx->lock);
  if (rx->script_len == rx->script_cap) {
    rx->script_cap = rx->script_cap ? rx->script_cap * 2 : 8;
    rx->script = xrealloc(rx->script, rx->script_cap * sizeof *rx->script);
  }
  rx->script[rx->script_len++] = (script_step){.reply = copy_reply(reply), .times = times};
  pthread_mutex_unlock(&rx->lock);
}

void http_receiver_set_default(http_receiver *rx, hr_reply reply) {
  hr_reply copy = copy_reply(reply);
  pthread_mutex_lock(&rx->lock);
  free_reply(&rx->fallback);
  rx->fallback = copy;
  pthread_mutex_unlock(&rx->lock);
}

unsigned short http_receiver_port(const http_receiver *rx) { return rx->port; }

void http_receiver_url(const http_receiver *rx, const char *path, char *out, size_t size) {
  int n = snprintf(out, size, "http://127.0.0.1:%u%s", (unsigned)rx->port, path);
  cr_assert(n > 0 && (size_t)n < size, "URL buffer too small");
}

size_t http_receiver_count(http_receiver *rx) {
  pthread_mutex_lock(&rx->lock);
  size_t count = rx->count;
  pthread_mutex_unlock(&rx->lock);
  return count;
}

const hr_request *http_receiver_request(http_receiver *rx, size_t index) {
  pthread_mutex_lock(&rx->lock);
  const hr_request *req = index < rx->count ? rx->requests[index] : NULL;
  size_t count = rx->count;
  pthread_mutex_unlock(&rx->lock);
  cr_assert_not_null(req, "request %zu asked for, %zu received", index, count);
  return req;
}

unsigned http_receiver_connections(http_receiver *rx) {
  pthread_mutex_lock(&rx->lock);
  unsigned connections = rx->connections;
  pthread_mutex_unlock(&rx->lock);
  return connections;
}

size_t http_receiver_wait(http_receiver *rx, size_t count, unsigned timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&rx->lock);
  while (rx->count < count)
    if (pthread_cond_timedwait(&rx->arrived, &rx->lock, &deadline) == ETIMEDOUT) break;
  size_t got = rx->count;
  pthread_mutex_unlock(&rx->lock);
  return got;
}
