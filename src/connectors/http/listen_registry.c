/*
 * listen_registry.c - which HTTP source nodes of this process listen where.
 *
 * A hot swap (docs/design/control-plane.md) starts the new version of a pipeline while
 * the old one still listens, both sharing the address with SO_REUSEPORT. The source's
 * probe bind, which turns a port taken by someone else into "Address already in use",
 * must then be skipped, but only for the same node of the same pipeline: two different
 * pipelines on one port are still a mistake worth an error.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/http/http_source_internal.h"

typedef struct holder {
  char *pipeline, *node, *listen;
  unsigned count;
  struct holder *link;
} holder;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static holder *holders;

static holder **find(const char *pipeline, const char *node, const char *listen) {
  holder **at = &holders;
  while (*at && (strcmp((*at)->pipeline, pipeline) != 0 || strcmp((*at)->node, node) != 0 ||
                 strcmp((*at)->listen, listen) != 0))
    at = &(*at)->link;
  return at;
}

bool sl__http_listen_claim(const char *pipeline, const char *node, const char *listen) {
  pthread_mutex_lock(&lock);
  holder **at = find(pipeline, node, listen);
  bool held = *at != NULL;
  if (held) {
    (*at)->count++;
  } else {
    holder *h = calloc(1, sizeof *h);
    if (h && (h->pipeline = strdup(pipeline)) && (h->node = strdup(node)) &&
        (h->listen = strdup(listen))) {
      h->count = 1;
      h->link = holders;
      holders = h;
    } else if (h) {
      free(h->pipeline);
      free(h->node);
      free(h);
    }
  }
  pthread_mutex_unlock(&lock);
  return held;
}

void sl__http_listen_release(const char *pipeline, const char *node, const char *listen) {
  pthread_mutex_lock(&lock);
  holder **at = find(pipeline, node, listen);
  if (*at && --(*at)->count == 0) {
    holder *h = *at;
    *at = h->link;
    free(h->pipeline);
    free(h->node);
    free(h->listen);
    free(h);
  }
  pthread_mutex_unlock(&lock);
}
