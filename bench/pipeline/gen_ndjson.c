/*
 * gen_ndjson.c - writes the NDJSON input of the pipeline benchmark to stdout:
 * N lines (argument, default 1000000) of about 85 bytes, deterministic (a fixed-seed
 * xorshift), with a quarter of them at "level":"debug" so logfilter drops about 25%.
 *
 *     gen_ndjson 1000000 > logs.ndjson
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 0x9e3779b97f4a7c15u;

static uint32_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (uint32_t)(state >> 32);
}

int main(int argc, char **argv) {
  long lines = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
  static const char *const levels[] = {"debug", "info", "info", "warn"};
  static const char *const services[] = {"api", "auth", "db", "cache", "queue"};
  static const char *const verbs[] = {"served", "retried", "timed out", "cached", "failed"};
  static char buf[1 << 18];
  setvbuf(stdout, buf, _IOFBF, sizeof buf);
  for (long i = 0; i < lines; i++) {
    uint32_t r = next();
    const char *level = levels[r & 3];           /* 1 in 4 is debug */
    const char *svc = services[(r >> 2) % 5];
    const char *verb = verbs[(r >> 5) % 5];
    unsigned ms = (r >> 8) % 1000;
    printf("{\"ts\":%ld,\"level\":\"%s\",\"svc\":\"%s\",\"msg\":\"req %ld %s in %u ms\"}\n",
           1700000000000L + i, level, svc, i % 100000, verb, ms);
  }
  return fflush(stdout) == 0 ? 0 : 1;
}
