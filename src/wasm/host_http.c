/*
 * host_http.c - sluice:processor/outgoing-http@0.1.0 `send`, through the node's HTTP
 * policy (src/caps/http.h). Without an http grant every request is `denied`.
 *
 * Every guest argument is checked before anything is copied, so a bad pointer traps
 * without leaking; the copies are freed before the response is lowered.
 *
 * Return area (24 bytes): result tag @0; ok: status (u16) @4, headers @8, body @16;
 * err: the error's case @4 and, for denied, invalid-request and failed, its string @8.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps/node_caps.h"
#include "wasm/host_call.h"
#include "wasm/host_functions.h"

#define MAX_URL_BYTES 8192u
#define MAX_HEADERS 100u
#define MAX_HEADER_BYTES (64u * 1024)

/* What is parked until the next import call: the response and the error text. */
typedef struct http_result {
  sl_http_response response;
  char why[512];
} http_result;

static void free_result(void *p) {
  http_result *result = p;
  sl_http_response_free(&result->response);
  free(result);
}

static char *copy_text(const uint8_t *bytes, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) abort();
  memcpy(copy, bytes, len);
  copy[len] = '\0';
  return copy;
}

/* Sends the request; `result` gets the response or the reason. The guest's spans were
 * checked by the caller and stay valid (no guest code runs meanwhile). */
static sl_http_outcome send_request(sl_instance *inst, const uint8_t *method, uint32_t method_len,
                                    const uint8_t *url, uint32_t url_len, uint32_t headers_ptr,
                                    uint32_t header_count, const uint8_t *body, uint32_t body_len,
                                    http_result *result) {
  const sl_node_caps *caps = inst->host.caps;
  if (!caps || !caps->http) {
    snprintf(result->why, sizeof result->why,
             "node '%s' has no http grant (capabilities: {http: {allowed_hosts: [...]}})",
             inst->wasi.node_id ? inst->wasi.node_id : "processor");
    return SL_HTTP_DENIED;
  }
  if (url_len > MAX_URL_BYTES) {
    snprintf(result->why, sizeof result->why, "the URL is %u bytes; at most %u are allowed",
             url_len, MAX_URL_BYTES);
    return SL_HTTP_INVALID_REQUEST;
  }
  if (header_count > MAX_HEADERS) {
    snprintf(result->why, sizeof result->why, "%u headers; at most %u are allowed", header_count,
             MAX_HEADERS);
    return SL_HTTP_INVALID_REQUEST;
  }
  const uint8_t *pairs = inst->memory->data + headers_ptr;
  sl_kv headers[MAX_HEADERS ? MAX_HEADERS : 1];
  for (uint32_t i = 0; i < header_count; i++) {
    const uint8_t *pair = pairs + i * 16;
    headers[i].key = copy_text(inst->memory->data + sl__read_u32(pair), sl__read_u32(pair + 4));
    headers[i].value =
        copy_text(inst->memory->data + sl__read_u32(pair + 8), sl__read_u32(pair + 12));
  }
  char *method_text = copy_text(method, method_len), *url_text = copy_text(url, url_len);
  sl_http_request request = {method_text, url_text, headers, header_count, body, body_len};
  sl_http_outcome outcome = sl_http_send(caps->http, &request, caps->http_deadline_ms,
                                         &result->response, result->why, sizeof result->why);
  for (uint32_t i = 0; i < header_count; i++) {
    free((char *)headers[i].key);
    free((char *)headers[i].value);
  }
  free(method_text);
  free(url_text);
  return outcome;
}

void sl_host_http_send(void *ctx, uint32_t method_ptr, uint32_t method_len, uint32_t url_ptr,
                       uint32_t url_len, uint32_t headers_ptr, uint32_t header_count,
                       uint32_t body_ptr, uint32_t body_len, uint32_t ret) {
  sl_instance *inst = sl__host_enter(ctx);
  /* Check every guest span first: a trap after a copy would leak it. */
  const uint8_t *method = sl__host_arg_string(inst, method_ptr, method_len, "method");
  const uint8_t *url = sl__host_arg_string(inst, url_ptr, url_len, "url");
  sl_span_label none = {NULL, -1};
  const uint8_t *pairs = sl__guest_span_as(inst, SL_FAULT_BAD_IMPORT_CALL, headers_ptr,
                                           (uint64_t)header_count * 16, 4, "header list", none);
  /* Texts go on as C strings: a NUL inside one would silently shorten it. */
  bool nul = memchr(method, 0, method_len) || memchr(url, 0, url_len);
  uint64_t header_bytes = 0;
  for (uint32_t i = 0; i < header_count; i++) {
    const uint8_t *pair = pairs + (uint64_t)i * 16;
    uint32_t name_len = sl__read_u32(pair + 4), value_len = sl__read_u32(pair + 12);
    const uint8_t *name = sl__host_arg_string(inst, sl__read_u32(pair), name_len, "header name");
    const uint8_t *value =
        sl__host_arg_string(inst, sl__read_u32(pair + 8), value_len, "header value");
    nul = nul || memchr(name, 0, name_len) || memchr(value, 0, value_len);
    header_bytes += (uint64_t)name_len + value_len;
  }
  const uint8_t *body = sl__host_arg_bytes(inst, body_ptr, body_len, "body");

  http_result *result = calloc(1, sizeof *result);
  if (!result) abort();
  sl__host_park(inst, result, free_result);
  sl_http_outcome outcome;
  if (header_bytes > MAX_HEADER_BYTES) {
    snprintf(result->why, sizeof result->why, "the headers hold %llu bytes; at most %u",
             (unsigned long long)header_bytes, MAX_HEADER_BYTES);
    outcome = SL_HTTP_INVALID_REQUEST;
  } else if (nul) {
    snprintf(result->why, sizeof result->why, "the method, the URL or a header holds a NUL byte");
    outcome = SL_HTTP_INVALID_REQUEST;
  } else {
    outcome = send_request(inst, method, method_len, url, url_len, headers_ptr, header_count, body,
                           body_len, result);
  }

  if (outcome != SL_HTTP_OK) {
    bool has_text = outcome == SL_HTTP_DENIED || outcome == SL_HTTP_INVALID_REQUEST ||
                    outcome == SL_HTTP_FAILED;
    uint32_t len = has_text ? (uint32_t)strlen(result->why) : 0;
    uint32_t ptr = has_text ? sl__host_lower_string(inst, result->why, len) : 0;
    uint8_t *area = sl__host_ret(inst, ret, 24, 4);
    area[0] = 1;
    area[4] = (uint8_t)outcome;
    sl__write_u32(area + 8, ptr);
    sl__write_u32(area + 12, len);
    sl__host_leave(inst);
    return;
  }
  const sl_http_response *response = &result->response;
  size_t count = response->header_count;
  sl_bytes texts[count ? count * 2 : 1];
  for (size_t i = 0; i < count; i++) {
    texts[2 * i] = sl_bytes_from_cstr(response->headers[i].key);
    texts[2 * i + 1] = sl_bytes_from_cstr(response->headers[i].value);
  }
  uint32_t list = sl__guest_lower_pairs(inst, &texts[0], &texts[1], 2 * sizeof(sl_bytes), count);
  uint32_t body_out = sl__guest_lower_bytes(inst, response->body, response->body_len, "body");
  uint8_t *area = sl__host_ret(inst, ret, 24, 4);
  memcpy(area + 4, &response->status, 2);
  sl__write_u32(area + 8, list);
  sl__write_u32(area + 12, (uint32_t)count);
  sl__write_u32(area + 16, body_out);
  sl__write_u32(area + 20, (uint32_t)response->body_len);
  sl__host_leave(inst);
}
