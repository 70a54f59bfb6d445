/*
 * stats_guest.c - a typical C processor built against wasi-libc, used as the ~50 KB
 * module for the cold-compile and cached-load benchmarks.
 *
 * It does ordinary processor things with ordinary libc: reads `field` and `precision`
 * from its config in init (sscanf) and logs them with printf, parses a comma-separated
 * list of numbers from the payload with strtod into a malloc'd array, sorts it with qsort
 * for the median, and formats the summary with snprintf("%g") and a UTC timestamp with
 * strftime. That pulls wasi-libc's printf, scanf, float and time code into the module.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "guest_abi.h"

static char field_name[64] = "value";
static int precision = 6;
static char output[256];
static guest_event result_event;
static guest_meta result_meta;
static char meta_value[32];

GUEST_EXPORT("init")
guest_result *init(const guest_meta *config, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (config[i].key.len == 5 && memcmp(config[i].key.ptr, "field", 5) == 0) {
      if (config[i].value.len == 0 || config[i].value.len >= sizeof field_name)
        return guest_err("config `field` must be 1 to 63 characters");
      memcpy(field_name, config[i].value.ptr, config[i].value.len);
      field_name[config[i].value.len] = '\0';
    } else if (config[i].key.len == 9 && memcmp(config[i].key.ptr, "precision", 9) == 0) {
      char value[16];
      size_t n = config[i].value.len < sizeof value - 1 ? config[i].value.len : sizeof value - 1;
      memcpy(value, config[i].value.ptr, n);
      value[n] = '\0';
      if (sscanf(value, "%d", &precision) != 1 || precision < 1 || precision > 17)
        return guest_err("config `precision` must be a number from 1 to 17");
    }
  }
  printf("stats: summarising field %s with %d significant digits\n", field_name, precision);
  fflush(stdout);
  return guest_ok(NULL, 0);
}

GUEST_EXPORT("cabi_post_init")
void cabi_post_init(guest_result *result) { cabi_post_process(result); }

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

GUEST_EXPORT("process")
guest_result *process(const uint8_t *payload, size_t payload_len, const guest_meta *meta,
                      size_t meta_count) {
  (void)meta, (void)meta_count;
  char *text = malloc(payload_len + 1);
  double *values = malloc(sizeof(double) * (payload_len / 2 + 1));
  if (!text || !values) {
    free(text);
    free(values);
    return guest_err("out of memory");
  }
  memcpy(text, payload, payload_len);
  text[payload_len] = '\0';
  size_t n = 0;
  for (char *p = text, *end; *p; p = end) {
    double v = strtod(p, &end);
    if (end == p) {
      free(text);
      free(values);
      return guest_err("the payload must be comma-separated numbers");
    }
    values[n++] = v;
    while (*end == ',' || *end == ' ') end++;
  }
  qsort(values, n, sizeof *values, compare_doubles);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += values[i];
  double min = n ? values[0] : 0, max = n ? values[n - 1] : 0, median = n ? values[n / 2] : 0;
  char when[32];
  time_t now = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  int len = snprintf(output, sizeof output,
                     "{\"%s\":{\"count\":%zu,\"min\":%.*g,\"max\":%.*g,\"median\":%.*g,"
                     "\"mean\":%.*g},\"at\":\"%s\"}",
                     field_name, n, precision, min, precision, max, precision, median, precision,
                     n ? sum / (double)n : 0.0, when);
  if (len < 0 || (size_t)len >= sizeof output) len = (int)strlen(output);
  free(text);
  free(values);
  snprintf(meta_value, sizeof meta_value, "%zu", n);
  result_meta = (guest_meta){{(const uint8_t *)"stats.count", 11},
                             {(const uint8_t *)meta_value, strlen(meta_value)}};
  result_event = (guest_event){{(const uint8_t *)output, (size_t)len}, &result_meta, 1};
  return guest_ok(&result_event, 1);
}
