/*
 * http-enrich.c - enrichment over HTTP: for each event, GETs `{base_url}/{payload}` and
 * emits the response body in place of the payload, with metadata `http.status`. A
 * response that is not 2xx fails the event with "GET URL: status N"; no response at all
 * (the grant denied the target, a timeout, a refused connection) fails it with the
 * reason, e.g. "GET URL: denied: host ... is not in allowed_hosts".
 *
 * config:  base_url   required, e.g. http://127.0.0.1:8000/users; the node needs a grant
 *                     for its host: capabilities: {http: {allowed_hosts: ["127.0.0.1:8000"]}}
 *
 * The payload (trimmed of surrounding white space) becomes one path segment:
 * characters other than letters, digits and -._~ are percent-encoded.
 *
 *     printf 'ann\n' | sluice run examples/pipelines/http-enrich.yaml
 *     http.status=200 {"name":"Ann Lee"}
 */
#include "sluice.h"

static const char *base_url;

static int setup(sluice_init *init) {
  base_url = sluice_config_get("base_url");
  if (base_url == NULL || base_url[0] == '\0')
    return sluice_init_fail(init, "base_url: required, e.g. http://127.0.0.1:8000/users");
  if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
    return sluice_init_fail(init, "base_url: must start with http:// or https://");
  return 0;
}

static bool unreserved(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

/* base_url + "/" + the percent-encoded segment, NUL-terminated, in the arena. */
static const char *url_for(sluice_bytes segment) {
  static const char hex[] = "0123456789ABCDEF";
  sluice_buf url = {0};
  bool ok = sluice_buf_append_str(&url, base_url);
  size_t base_len = strlen(base_url);
  if (base_len == 0 || base_url[base_len - 1] != '/') ok = ok && sluice_buf_append_byte(&url, '/');
  for (size_t i = 0; ok && i < segment.len; i++) {
    uint8_t c = segment.ptr[i];
    if (unreserved(c)) {
      ok = sluice_buf_append_byte(&url, c);
    } else {
      uint8_t escaped[3] = {'%', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
      ok = sluice_buf_append(&url, escaped, sizeof escaped);
    }
  }
  ok = ok && sluice_buf_append_byte(&url, '\0');
  return ok ? (const char *)url.ptr : NULL;
}

/* `value` in decimal, written at the end of `digits`. */
static const char *decimal(unsigned value, char digits[12]) {
  char *at = digits + 11;
  *at = '\0';
  do *--at = (char)('0' + value % 10);
  while ((value /= 10) > 0);
  return at;
}

/* Fails the event with "GET URL: WHAT" (both NUL-terminated). */
static int fail_request(sluice_out *out, const char *url, const char *what) {
  sluice_buf message = {0};
  sluice_buf_append_str(&message, "GET ");
  sluice_buf_append_str(&message, url);
  sluice_buf_append_str(&message, ": ");
  sluice_buf_append_str(&message, what);
  if (!sluice_buf_append_byte(&message, '\0')) return -1;
  return sluice_fail(out, (const char *)message.ptr);
}

static int enrich(const sluice_event *in, sluice_out *out) {
  sluice_bytes segment = in->payload;
  while (segment.len > 0 && (segment.ptr[0] == ' ' || segment.ptr[0] == '\t'))
    segment.ptr++, segment.len--;
  while (segment.len > 0 &&
         (segment.ptr[segment.len - 1] == ' ' || segment.ptr[segment.len - 1] == '\t' ||
          segment.ptr[segment.len - 1] == '\r'))
    segment.len--;
  if (segment.len == 0) return sluice_fail(out, "the payload is empty: nothing to look up");
  const char *url = url_for(segment);
  if (url == NULL) return -1;

  sluice_http_response response;
  sluice_error err;
  if (!sluice_http_get(url, &response, &err)) return fail_request(out, url, err.message);

  char digits[12];
  const char *status = decimal(response.status, digits);
  if (response.status < 200 || response.status > 299) {
    char what[24] = "status ";
    strcat(what, status);
    return fail_request(out, url, what);
  }
  if (!sluice_emit_ref(out, response.body.ptr, response.body.len)) return -1;
  return sluice_meta_set(out, "http.status", status) ? 0 : -1;
}

SLUICE_INIT(setup)
SLUICE_PROCESSOR(enrich)
