/*
 * Valid pipeline files: every field lands where pipeline.h says, relative paths are
 * resolved against the file's folder, defaults apply, and the spec frees cleanly.
 */
#include "config_fixture.h"
#include "connectors/file/file_sink.h"
#include "connectors/file/file_source.h"
#include "connectors/http/http_sink.h"

TestSuite(pipeline_load, .init = enter_temp_dir, .fini = leave_temp_dir);

static const char demo[] = "name: demo\n"
                           "workers: 4\n"
                           "batch_size: 64\n"
                           "max_in_flight: 500\n"
                           "drain_timeout: 2m\n"
                           "nodes:\n"
                           "  - id: in\n"
                           "    type: file\n"
                           "    path: logs/in.log\n"
                           "    follow: true\n"
                           "    max_line: 64KiB\n"
                           "  - id: upper\n"
                           "    type: wasm\n"
                           "    module: ./mods/upper.wasm\n"
                           "    config: {greeting: hi, n: 3}\n"
                           "    env: {TZ: UTC}\n"
                           "    memory: 16MiB\n"
                           "    time_limit: 250ms\n"
                           "    stack: 512KiB\n"
                           "    recycle_calls: 1000\n"
                           "    inputs: [in]\n"
                           "  - id: out\n"
                           "    type: file\n"
                           "    path: /var/tmp/out.log\n"
                           "    inputs: upper\n"
                           "  - id: rejects\n"
                           "    type: log\n"
                           "    inputs: [upper.errors, in]\n";

Test(pipeline_load, every_field_lands_where_expected) {
  sl_pipeline_spec *spec = load_ok(demo);
  cr_assert_str_eq(spec->name, "demo");
  cr_assert_str_eq(spec->file, "p.yaml");
  cr_assert_str_eq(spec->dir, test_dir);
  cr_assert_eq(spec->workers, 4);
  cr_assert_eq(spec->batch_size, 64);
  cr_assert_eq(spec->max_in_flight, 500);
  cr_assert_eq(spec->drain_timeout, 120000);
  cr_assert_eq(spec->node_count, 4);
  cr_assert_eq(spec->test_count, 0);
  cr_assert_eq(spec->secret_count, 0);

  const sl_node_spec *in = &spec->nodes[0];
  cr_assert_str_eq(in->id, "in");
  cr_assert_str_eq(in->type, "file");
  cr_assert_eq(in->kind, SL_NODE_SOURCE);
  cr_assert_not_null(in->connector);
  cr_assert_eq(in->connector, sl_connector_find("file", SL_NODE_SOURCE));
  cr_assert_eq(in->input_count, 0);
  cr_assert_eq(in->loc.line, 7);
  cr_assert_eq(in->loc.col, 5);
  const file_source_config *fsrc = in->config;
  char expected[PATH_MAX + 64];
  snprintf(expected, sizeof expected, "%s/logs/in.log", test_dir);
  cr_assert_str_eq(fsrc->path, expected);
  cr_assert(fsrc->follow);
  cr_assert_str_eq(fsrc->start_at, "beginning", "enum default");
  cr_assert(fsrc->checkpoint, "bool default true");
  cr_assert_eq(fsrc->max_line, 64 * 1024);
  cr_assert_eq(fsrc->poll_interval, 200, "duration default 200ms");

  const sl_node_spec *upper = sl_pipeline_spec_node(spec, "upper");
  cr_assert_eq(upper, &spec->nodes[1]);
  cr_assert_eq(upper->kind, SL_NODE_PROCESSOR);
  cr_assert_null(upper->connector);
  const sl_wasm_config *wasm = upper->config;
  snprintf(expected, sizeof expected, "%s/mods/upper.wasm", test_dir);
  cr_assert_str_eq(wasm->module, expected);
  cr_assert_eq(wasm->config.count, 2);
  cr_assert_str_eq(wasm->config.keys[0], "greeting");
  cr_assert_str_eq(wasm->config.values[0], "hi");
  cr_assert_str_eq(wasm->config.keys[1], "n");
  cr_assert_str_eq(sl_conf_map_get(&wasm->config, "n"), "3");
  cr_assert_null(sl_conf_map_get(&wasm->config, "missing"));
  cr_assert_str_eq(sl_conf_map_get(&wasm->env, "TZ"), "UTC");
  cr_assert_eq(wasm->memory, 16u << 20);
  cr_assert_eq(wasm->time_limit, 250);
  cr_assert_eq(wasm->stack, 512u << 10);
  cr_assert_eq(wasm->recycle_calls, 1000);
  cr_assert_eq(upper->input_count, 1);
  cr_assert_str_eq(upper->inputs[0].node, "in");
  cr_assert_not(upper->inputs[0].errors);
  cr_assert_eq(upper->inputs[0].index, 0);
  cr_assert_eq(upper->inputs[0].loc.line, 21);
  cr_assert_eq(upper->inputs[0].loc.col, 14);

  const sl_node_spec *out = &spec->nodes[2];
  cr_assert_eq(out->kind, SL_NODE_SINK, "`file` with inputs is the sink");
  cr_assert_eq(out->connector, sl_connector_find("file", SL_NODE_SINK));
  const file_sink_config *fsink = out->config;
  cr_assert_str_eq(fsink->path, "/var/tmp/out.log", "absolute paths stay");
  cr_assert_eq(fsink->keep, 5);
  cr_assert_not(fsink->fsync);
  cr_assert_eq(out->input_count, 1, "inputs as one string");
  cr_assert_str_eq(out->inputs[0].node, "upper");
  cr_assert_eq(out->inputs[0].index, 1);

  const sl_node_spec *rejects = &spec->nodes[3];
  cr_assert_eq(rejects->input_count, 2);
  cr_assert_str_eq(rejects->inputs[0].node, "upper");
  cr_assert(rejects->inputs[0].errors);
  cr_assert_eq(rejects->inputs[0].index, 1);
  cr_assert_eq(rejects->inputs[1].index, 0);

  cr_assert_null(sl_pipeline_spec_node(spec, "nope"));
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, top_level_defaults_and_name_from_file) {
  put_file("my-flow.yml", "nodes:\n"
                          "  - {id: in, type: stdin}\n"
                          "  - {id: out, type: stdout, inputs: [in]}\n");
  sl_pipeline_spec *spec = NULL;
  sl_error err;
  cr_assert_eq(sl_pipeline_load("my-flow.yml", NULL, &spec, &err), SL_OK, "%s", err.message);
  cr_assert_str_eq(spec->name, "my-flow");
  cr_assert_eq(spec->workers, 0);
  cr_assert_eq(spec->batch_size, 1024);
  cr_assert_eq(spec->max_in_flight, 10000);
  cr_assert_eq(spec->drain_timeout, 30000);
  cr_assert_eq(spec->nodes[1].loc.line, 3);
  cr_assert_eq(spec->nodes[1].loc.col, 5, "a flow mapping starts at its brace");
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, connector_defaults_and_map_settings) {
  sl_pipeline_spec *spec = load_ok("nodes:\n"
                                   "  - {id: gen, type: generate}\n"
                                   "  - id: post\n"
                                   "    type: http\n"
                                   "    url: http://127.0.0.1:9/x\n"
                                   "    headers:\n"
                                   "      X-One: '1'\n"
                                   "      X-Two: two\n"
                                   "    timeout: 1h30m\n"
                                   "    inputs: gen\n");
  const http_sink_config *http = spec->nodes[1].config;
  cr_assert_eq(spec->nodes[1].kind, SL_NODE_SINK);
  cr_assert_str_eq(http->url, "http://127.0.0.1:9/x");
  cr_assert_str_eq(http->method, "POST");
  cr_assert_eq(http->headers.count, 2);
  cr_assert_str_eq(http->headers.keys[1], "X-Two");
  cr_assert_str_eq(http->headers.values[0], "1");
  cr_assert_eq(http->batch, 1);
  cr_assert_eq(http->max_retries, -1, "negative default");
  cr_assert_eq(http->timeout, 90 * 60 * 1000);
  cr_assert_eq(http->backoff, 100);
  cr_assert_eq(http->max_backoff, 10000);
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, wasm_limits_default_to_zero) {
  sl_pipeline_spec *spec = load_ok("nodes:\n"
                                   "  - {id: in, type: stdin}\n"
                                   "  - {id: p, type: wasm, module: /abs/p.wasm, inputs: [in]}\n"
                                   "  - {id: out, type: null, inputs: [p, p.errors]}\n");
  const sl_wasm_config *wasm = spec->nodes[1].config;
  cr_assert_str_eq(wasm->module, "/abs/p.wasm");
  cr_assert_eq(wasm->memory + wasm->time_limit + wasm->stack, 0);
  cr_assert_eq(wasm->recycle_calls, 0);
  cr_assert_eq(wasm->config.count, 0);
  cr_assert_eq(wasm->env.count, 0);
  cr_assert_not_null(spec->nodes[2].config, "a connector without settings still has a config");
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, tests_section) {
  sl_pipeline_spec *spec = load_ok("name: t\n"
                                   "nodes:\n"
                                   "  - {id: in, type: stdin}\n"
                                   "  - {id: upper, type: wasm, module: u.wasm, inputs: [in]}\n"
                                   "  - {id: out, type: stdout, inputs: [upper]}\n"
                                   "tests:\n"
                                   "  - name: uppercases\n"
                                   "    inputs:\n"
                                   "      in:\n"
                                   "        - hello\n"
                                   "        - payload: 'x y'\n"
                                   "          meta: {source: test, n: 1}\n"
                                   "        - ''\n"
                                   "    expect:\n"
                                   "      out: [HELLO, X Y, '']\n"
                                   "      upper.errors: []\n"
                                   "  - name: errors\n"
                                   "    inputs: {in: [boom]}\n"
                                   "    expect:\n"
                                   "      upper.errors:\n"
                                   "        - meta: {error: bad}\n");
  cr_assert_eq(spec->test_count, 2);
  const sl_test_case *t = &spec->tests[0];
  cr_assert_str_eq(t->name, "uppercases");
  cr_assert_eq(t->loc.line, 7);
  cr_assert_eq(t->input_count, 1);
  cr_assert_str_eq(t->inputs[0].at.node, "in");
  cr_assert_eq(t->inputs[0].at.index, 0);
  cr_assert_eq(t->inputs[0].count, 3);
  cr_assert_str_eq(t->inputs[0].events[0].payload, "hello");
  cr_assert_eq(t->inputs[0].events[0].payload_len, 5);
  cr_assert_eq(t->inputs[0].events[0].loc.line, 10);
  cr_assert_eq(t->inputs[0].events[0].loc.col, 11);
  cr_assert_str_eq(t->inputs[0].events[1].payload, "x y");
  cr_assert_eq(t->inputs[0].events[1].meta.count, 2);
  cr_assert_str_eq(sl_conf_map_get(&t->inputs[0].events[1].meta, "source"), "test");
  cr_assert_eq(t->inputs[0].events[2].payload_len, 0);
  cr_assert_eq(t->expect_count, 2);
  cr_assert_str_eq(t->expects[0].at.node, "out");
  cr_assert_eq(t->expects[0].at.index, 2);
  cr_assert_eq(t->expects[0].count, 3);
  cr_assert_str_eq(t->expects[0].events[1].payload, "X Y");
  cr_assert(t->expects[1].at.errors);
  cr_assert_eq(t->expects[1].at.index, 1);
  cr_assert_eq(t->expects[1].count, 0);
  const sl_test_case *t2 = &spec->tests[1];
  cr_assert_str_eq(t2->expects[0].events[0].payload, "", "no payload: empty");
  cr_assert_str_eq(sl_conf_map_get(&t2->expects[0].events[0].meta, "error"), "bad");
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, anchors_and_merge_keys) {
  sl_pipeline_spec *spec = load_ok("nodes:\n"
                                   "  - {id: in, type: stdin}\n"
                                   "  - id: a\n"
                                   "    type: wasm\n"
                                   "    module: a.wasm\n"
                                   "    <<: &limits {memory: 8MiB, time_limit: 1s}\n"
                                   "    inputs: &from_in [in]\n"
                                   "  - id: b\n"
                                   "    type: wasm\n"
                                   "    module: b.wasm\n"
                                   "    <<: *limits\n"
                                   "    memory: 4MiB\n"
                                   "    inputs: *from_in\n"
                                   "  - {id: out, type: stdout, inputs: [a, b]}\n");
  const sl_wasm_config *a = spec->nodes[1].config, *b = spec->nodes[2].config;
  cr_assert_eq(a->memory, 8u << 20);
  cr_assert_eq(a->time_limit, 1000);
  cr_assert_eq(b->memory, 4u << 20, "the mapping's own key wins over the merged one");
  cr_assert_eq(b->time_limit, 1000);
  cr_assert_eq(spec->nodes[2].input_count, 1);
  cr_assert_str_eq(spec->nodes[2].inputs[0].node, "in");
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, load_text_resolves_against_dir) {
  static const char yaml[] = "name: quick\n"
                             "nodes:\n"
                             "  - {id: in, type: file, path: in.txt}\n"
                             "  - {id: out, type: stdout, inputs: [in]}\n";
  sl_pipeline_spec *spec = NULL;
  sl_error err;
  cr_assert_eq(
      sl_pipeline_load_text(yaml, strlen(yaml), "<command line>", "/srv/data", NULL, &spec, &err),
      SL_OK, "%s", err.message);
  cr_assert_str_eq(spec->file, "<command line>");
  cr_assert_str_eq(((const file_source_config *)spec->nodes[0].config)->path, "/srv/data/in.txt");
  sl_pipeline_spec_free(spec);
}

Test(pipeline_load, unreadable_file_is_an_io_error) {
  sl_pipeline_spec *spec = (sl_pipeline_spec *)1;
  sl_error err;
  cr_assert_eq(sl_pipeline_load("missing.yaml", NULL, &spec, &err), SL_IO);
  cr_assert_null(spec);
  cr_assert_str_eq(err.message, "cannot read missing.yaml: No such file or directory");
  cr_assert_eq(sl_pipeline_load(".", NULL, &spec, &err), SL_IO);
  cr_assert_str_eq(err.message, "cannot read .: Is a directory");
}
