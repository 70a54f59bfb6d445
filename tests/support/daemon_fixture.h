/*
 * daemon_fixture.h - a real `sluice up` for end-to-end tests: started on a free loopback
 * port with a home folder of its own, stopped by its pid, and a small libcurl client for
 * its API.
 */
#ifndef SL_TEST_DAEMON_FIXTURE_H
#define SL_TEST_DAEMON_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct daemon_fixture {
  char *dir;      /* temporary folder: cwd of the daemon, holds home/ */
  char home[512]; /* its SLUICE_HOME */
  int port;
  pid_t pid; /* 0 when not running */
  char token[80];
  char url[64]; /* http://127.0.0.1:PORT */
} daemon_fixture;

/* Starts the daemon (a new folder the first time, its home sharing the run's compile
 * cache) and waits until it is ready. Sets SLUICE_HOME and SLUICE_SERVER (and unsets
 * SLUICE_TOKEN) so client commands the test runs find it. The daemon dies with the
 * test process. */
void daemon_start(daemon_fixture *d);
/* Sends `sig` and waits; returns the exit code (-1 when killed by a signal). */
int daemon_signal(daemon_fixture *d, int sig);
/* SIGTERM (expecting exit 0 when it was running), then removes the folder. */
void daemon_finish(daemon_fixture *d);

/* One request. `token`: NULL for the daemon's, "" for none. Returns the HTTP status
 * (0 when the connection failed); *body (may be NULL) gets the response, malloc'ed. */
long daemon_call(const daemon_fixture *d, const char *method, const char *path,
                 const char *token, const char *content_type, const void *data, size_t len,
                 char **body);
/* A JSON request (`request` may be NULL, and is not consumed); the response parsed. */
json_t *daemon_json(const daemon_fixture *d, const char *method, const char *path,
                    const json_t *request, long *status);
/* Deploys YAML text (PUT /v1/pipelines/NAME?dir=d->dir); the response parsed. */
json_t *daemon_deploy(const daemon_fixture *d, const char *name, const char *yaml, long *status);
/* Polls `path` until its JSON `field` (integer) reaches `at_least`; false on timeout. */
bool daemon_wait_count(const daemon_fixture *d, const char *path, const char *field,
                       long long at_least, int timeout_ms);

#endif
