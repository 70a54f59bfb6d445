/*
 * http_receiver.h - a small, real HTTP/1.1 server for tests: it listens on a loopback
 * port the kernel picks, records every request (method, path, headers, body, the
 * connection it came on) and answers from a script the test writes beforehand:
 *
 *   http_receiver *rx = http_receiver_start();
 *   http_receiver_script(rx, (hr_reply){.status = 503}, 2);   // the next 2 requests
 *   ... requests ...                                            // then the default: 200
 *   cr_assert_eq(http_receiver_count(rx), 3);
 *   http_receiver_stop(rx);
 *
 * One thread serves every connection through poll(2), so a client may hold several
 * connections at once. It speaks HTTP/1.1 with keep-alive and pipelining, bodies framed
 * by Content-Length (Transfer-Encoding is answered 501 and the connection closed), and
 * answers "Expect: 100-continue". Each function asserts through Criterion on failure.
 */
#ifndef SL_TEST_HTTP_RECEIVER_H
#define SL_TEST_HTTP_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

typedef enum hr_action {
  HR_ANSWER, /* send `status`, `headers` and `body` */
  HR_CLOSE,  /* close the connection without answering */
  HR_HANG,   /* never answer; keep reading the connection until the client leaves */
} hr_action;

/* How to answer one request. Strings are copied when scripted. */
typedef struct hr_reply {
  hr_action action;
  int status;          /* HR_ANSWER: 200 when 0 */
  const char *headers; /* extra header lines, each ending "\r\n" ("Retry-After: 1\r\n") */
  const char *body;    /* NULL: empty */
} hr_reply;

typedef struct hr_header {
  char *name;
  char *value;
} hr_header;

/* One request as received. Owned by the receiver; valid until http_receiver_stop. */
typedef struct hr_request {
  char method[16];
  char path[1024];
  hr_header *headers;
  size_t header_count;
  char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
  size_t body_len;
  unsigned connection; /* 1 for the first connection accepted, 2 for the next... */
  uint64_t at_ms;      /* CLOCK_MONOTONIC milliseconds when the request was complete */
} hr_request;

typedef struct http_receiver http_receiver;

/* Starts a receiver on 127.0.0.1 at a free port; every request gets 200 until scripted. */
http_receiver *http_receiver_start(void);

/* Closes every connection, stops the thread and frees everything, requests included. */
void http_receiver_stop(http_receiver *rx);

/* The next `times` requests (after those already scripted) get `reply`. */
void http_receiver_script(http_receiver *rx, hr_reply reply, unsigned times);

/* The answer once the script is used up (initially 200 with an empty body). */
void http_receiver_set_default(http_receiver *rx, hr_reply reply);

unsigned short http_receiver_port(const http_receiver *rx);

/* "http://127.0.0.1:PORT" + path, in `out` (at least 64 + strlen(path) bytes). */
void http_receiver_url(const http_receiver *rx, const char *path, char *out, size_t size);

/* Requests received so far, and one of them (0-based; asserts that it exists). */
size_t http_receiver_count(http_receiver *rx);
const hr_request *http_receiver_request(http_receiver *rx, size_t index);

/* Connections accepted so far. */
unsigned http_receiver_connections(http_receiver *rx);

/* A request's header value by name (case-insensitive); NULL when absent. */
const char *hr_request_header(const hr_request *req, const char *name);

/* Waits up to `timeout_ms` until at least `count` requests arrived; returns how many. */
size_t http_receiver_wait(http_receiver *rx, size_t count, unsigned timeout_ms);

/* Milliseconds on the clock hr_request.at_ms uses. */
uint64_t hr_now_ms(void);

#endif
