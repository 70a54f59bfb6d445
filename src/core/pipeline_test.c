/*
 * pipeline_test.c - `sluice test`: runs a pipeline's declared test cases through the real
 * runtime and the real processors, with the real sources and sinks swapped out.
 *
 * For each case a copy of the spec is made in which every source is a feeder (emits the
 * case's events for it, then ends) and every sink is a collector (keeps what it gets).
 * Expectations on non-sink outputs ("upper", "upper.errors") get a collector node of
 * their own reading that output. One worker keeps the order of events deterministic.
 * Results are compared with a longest-common-subsequence diff, so one wrong event shows
 * as one `-`/`+` pair rather than a cascade.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_internal.h"

/* --- the stand-in connectors ---------------------------------------------------------- */

typedef struct collected {
  pthread_mutex_t lock;
  sl_event_list events;
} collected;

static sl_status collector_init(const sl_node_ctx *node, const void *config, void **state,
                                sl_error *err) {
  *state = (void *)config; /* the runner owns the `collected` */
  return SL_OK;
}

static sl_status collector_write(void *state, const sl_event_list *batch, sl_error *err) {
  collected *c = state;
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < batch->count; i++)
    if (sl_event_list_push_copy(&c->events, &batch->items[i], NULL, 0) != SL_OK) abort();
  pthread_mutex_unlock(&c->lock);
  return SL_OK;
}

static const sl_conf_field no_fields[] = {{NULL}};

static const sl_connector collector = {
    .version = SL_CONNECTOR_VERSION,
    .name = "test-collector",
    .kind = SL_NODE_SINK,
    .fields = no_fields,
    .init = collector_init,
    .write = collector_write,
};

typedef struct feeder {
  const sl_test_stream *stream; /* NULL: this source gets no events in this case */
} feeder;

static sl_status feeder_init(const sl_node_ctx *node, const void *config, void **state,
                             sl_error *err) {
  *state = (void *)config;
  return SL_OK;
}

static sl_status feeder_start(void *state, sl_source_port *port, sl_error *err) {
  const feeder *f = state;
  if (f->stream && f->stream->count) {
    sl_event_list *batch = malloc(sizeof *batch);
    if (!batch) abort();
    sl_event_list_init(batch);
    for (size_t i = 0; i < f->stream->count; i++) {
      const sl_test_event *te = &f->stream->events[i];
      uint8_t *payload;
      sl_meta *meta;
      if (sl_event_list_push(batch, te->payload_len, te->meta.count, &payload, &meta) != SL_OK)
        abort();
      if (te->payload_len) memcpy(payload, te->payload, te->payload_len);
      for (size_t m = 0; m < te->meta.count; m++)
        if (sl_event_list_copy(batch, te->meta.keys[m], strlen(te->meta.keys[m]), &meta[m].key) !=
                SL_OK ||
            sl_event_list_copy(batch, te->meta.values[m], strlen(te->meta.values[m]),
                               &meta[m].value) != SL_OK)
          abort();
    }
    sl_source_emit(port, &batch, NULL, NULL);
  }
  sl_source_end(port);
  return SL_OK;
}

static const sl_connector feeder_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "test-feeder",
    .kind = SL_NODE_SOURCE,
    .fields = no_fields,
    .init = feeder_init,
    .start = feeder_start,
};

/* --- comparing ------------------------------------------------------------------------ */

static bool bytes_equal(sl_bytes a, const char *b, size_t b_len) {
  return a.len == b_len && (b_len == 0 || memcmp(a.ptr, b, b_len) == 0);
}

static const sl_bytes *meta_value(const sl_event *ev, const char *key) {
  for (size_t m = 0; m < ev->meta_count; m++)
    if (bytes_equal(ev->meta[m].key, key, strlen(key))) return &ev->meta[m].value;
  return NULL;
}

/* Payloads equal, and every metadata key the expectation names has the same value. */
static bool event_matches(const sl_test_event *want, const sl_event *got) {
  if (!bytes_equal(got->payload, want->payload, want->payload_len)) return false;
  for (size_t m = 0; m < want->meta.count; m++) {
    const sl_bytes *value = meta_value(got, want->meta.keys[m]);
    if (!value || !bytes_equal(*value, want->meta.values[m], strlen(want->meta.values[m])))
      return false;
  }
  return true;
}

static void put_payload(FILE *out, const char *bytes, size_t len) {
  fputc('"', out);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)bytes[i];
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", out);
    else if (c < 0x20 || c == 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

static void put_expected(FILE *out, const sl_test_event *e) {
  put_payload(out, e->payload, e->payload_len);
  for (size_t m = 0; m < e->meta.count; m++)
    fprintf(out, " %s=%s", e->meta.keys[m], e->meta.values[m]);
}

/* Shows the metadata keys the expectations name (all of them when none is named). */
static void put_actual(FILE *out, const sl_event *ev, const sl_test_stream *want) {
  put_payload(out, (const char *)ev->payload.ptr, ev->payload.len);
  for (size_t m = 0; m < ev->meta_count; m++) {
    bool named = false;
    for (size_t i = 0; i < want->count && !named; i++)
      for (size_t k = 0; k < want->events[i].meta.count && !named; k++)
        named = bytes_equal(ev->meta[m].key, want->events[i].meta.keys[k],
                            strlen(want->events[i].meta.keys[k]));
    if (named)
      fprintf(out, " %.*s=%.*s", (int)ev->meta[m].key.len, (const char *)ev->meta[m].key.ptr,
              (int)ev->meta[m].value.len, (const char *)ev->meta[m].value.ptr);
  }
}

/* Writes a diff of `want` against `got` to `out`; true when they match. */
static bool compare_stream(const sl_test_stream *want, const sl_event_list *got, const char *label,
                           FILE *out) {
  size_t n = want->count, m = got->count;
  bool same = n == m;
  for (size_t i = 0; same && i < n; i++) same = event_matches(&want->events[i], &got->items[i]);
  if (same) return true;
  /* lcs[i][j]: longest common subsequence of want[i..] and got[j..]. */
  size_t *lcs = calloc((n + 1) * (m + 1), sizeof *lcs);
  if (!lcs) abort();
#define LCS(i, j) lcs[(i) * (m + 1) + (j)]
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      LCS(i, j) = event_matches(&want->events[i], &got->items[j])
                      ? LCS(i + 1, j + 1) + 1
                      : (LCS(i + 1, j) > LCS(i, j + 1) ? LCS(i + 1, j) : LCS(i, j + 1));
  fprintf(out, "  at '%s': expected %zu event%s, got %zu (- expected, + actual)\n", label, n,
          n == 1 ? "" : "s", m);
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && event_matches(&want->events[i], &got->items[j])) {
      fputs("      ", out);
      put_actual(out, &got->items[j], want);
      i++, j++;
    } else if (i < n && (j == m || LCS(i + 1, j) >= LCS(i, j + 1))) {
      fputs("    - ", out); /* on a tie the expectation comes first, as in diff -u */
      put_expected(out, &want->events[i++]);
    } else {
      fputs("    + ", out);
      put_actual(out, &got->items[j++], want);
    }
    fputc('\n', out);
  }
#undef LCS
  free(lcs);
  return false;
}

/* --- running one case ------------------------------------------------------------------ */

sl_status sl_pipeline_run_test(sl_engine *engine, const sl_pipeline_spec *spec, size_t index,
                               const sl_pipeline_options *opts, bool *passed, char **report,
                               size_t *report_len, sl_error *err) {
  const sl_test_case *tc = &spec->tests[index];
  size_t extra = 0;
  for (size_t e = 0; e < tc->expect_count; e++)
    if (spec->nodes[tc->expects[e].at.index].kind != SL_NODE_SINK || tc->expects[e].at.errors)
      extra++;
  size_t total = spec->node_count + extra;

  sl_pipeline_spec copy = *spec;
  copy.workers = 1;
  copy.nodes = calloc(total, sizeof *copy.nodes);
  feeder *feeders = calloc(spec->node_count, sizeof *feeders);
  collected *bins = calloc(total, sizeof *bins);
  sl_input_ref *refs = calloc(extra ? extra : 1, sizeof *refs);
  char **ids = calloc(extra ? extra : 1, sizeof *ids);
  size_t *bin_of_expect = calloc(tc->expect_count ? tc->expect_count : 1, sizeof *bin_of_expect);
  if (!copy.nodes || !feeders || !bins || !refs || !ids || !bin_of_expect) abort();
  for (size_t i = 0; i < total; i++) {
    pthread_mutex_init(&bins[i].lock, NULL);
    sl_event_list_init(&bins[i].events);
  }
  for (size_t i = 0; i < spec->node_count; i++) {
    copy.nodes[i] = spec->nodes[i];
    if (spec->nodes[i].kind == SL_NODE_SOURCE) {
      for (size_t s = 0; s < tc->input_count; s++)
        if (tc->inputs[s].at.index == i) feeders[i].stream = &tc->inputs[s];
      copy.nodes[i].connector = &feeder_source;
      copy.nodes[i].config = &feeders[i];
    } else if (spec->nodes[i].kind == SL_NODE_SINK) {
      copy.nodes[i].connector = &collector;
      copy.nodes[i].config = &bins[i];
    }
  }
  size_t next = spec->node_count;
  for (size_t e = 0; e < tc->expect_count; e++) {
    const sl_input_ref *at = &tc->expects[e].at;
    if (spec->nodes[at->index].kind == SL_NODE_SINK && !at->errors) {
      bin_of_expect[e] = at->index;
      continue;
    }
    size_t k = next - spec->node_count;
    refs[k] = *at;
    if (asprintf(&ids[k], "test-expect-%zu", e) < 0) abort();
    copy.nodes[next] = (sl_node_spec){.id = ids[k],
                                      .type = "test-collector",
                                      .kind = SL_NODE_SINK,
                                      .connector = &collector,
                                      .config = &bins[next],
                                      .inputs = &refs[k],
                                      .input_count = 1,
                                      .loc = tc->expects[e].at.loc};
    bin_of_expect[e] = next++;
  }
  copy.node_count = total;
  copy.tests = NULL;
  copy.test_count = 0;

  sl_pipeline *pipeline = NULL;
  sl_status st = sl_pipeline_new(engine, &copy, opts, &pipeline, err);
  if (st == SL_OK) st = sl_pipeline_start(pipeline, err);
  if (st == SL_OK) st = sl_pipeline_wait(pipeline, err);
  sl_pipeline_destroy(pipeline);

  FILE *out = open_memstream(report, report_len);
  if (!out) abort();
  *passed = st == SL_OK;
  if (st == SL_OK) {
    for (size_t e = 0; e < tc->expect_count; e++) {
      const sl_test_stream *want = &tc->expects[e];
      char label[512];
      snprintf(label, sizeof label, "%s%s", want->at.node, want->at.errors ? ".errors" : "");
      if (!compare_stream(want, &bins[bin_of_expect[e]].events, label, out)) *passed = false;
    }
  }
  fclose(out);

  for (size_t i = 0; i < total; i++) {
    pthread_mutex_destroy(&bins[i].lock);
    sl_event_list_destroy(&bins[i].events);
  }
  for (size_t k = 0; k < extra; k++) free(ids[k]);
  free(ids);
  free(refs);
  free(bins);
  free(feeders);
  free(bin_of_expect);
  free(copy.nodes);
  return st;
}
