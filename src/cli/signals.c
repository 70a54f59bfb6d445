/*
 * signals.c - the second Ctrl-C. Commands that drain on SIGINT/SIGTERM (up, dev) take
 * the first signal themselves; from then on a thread waits for another and exits at
 * once, for the user who does not want to wait for the drain.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct second_signal {
  const char *who;
  sigset_t set;
} second_signal;

static second_signal watch; /* one per process: only one command runs */

static void *wait_second(void *arg) {
  second_signal *s = arg;
  int sig;
  if (sigwait(&s->set, &sig) == 0) {
    fprintf(stderr, "%s: %s again: exiting without draining\n", s->who, strsignal(sig));
    _exit(130);
  }
  return NULL;
}

void sl__cli_exit_on_second_signal(const char *who, const sigset_t *set) {
  watch.who = who;
  watch.set = *set;
  pthread_t thread;
  if (pthread_create(&thread, NULL, wait_second, &watch) == 0) pthread_detach(thread);
}
