/*
 * Invalid pipeline files: every problem is reported, in file order, one per line, as
 * "file:line:col: what is wrong and what would be right".
 */
#include "config_fixture.h"

TestSuite(validation, .init = enter_temp_dir, .fini = leave_temp_dir);

#define SOURCE "  - {id: in, type: stdin}\n"
#define SINK "  - {id: out, type: stdout, inputs: [in]}\n"

Test(validation, missing_required_key_points_at_the_node) {
  expect_problems("nodes:\n"
                  "  - id: in\n"
                  "    type: file\n" SINK,
                  "p.yaml:2:5: node 'in': missing required key 'path' (The file to read, one "
                  "event per line.)");
}

Test(validation, unknown_key_with_did_you_mean) {
  expect_problems("nodes:\n"
                  "  - id: in\n"
                  "    type: file\n"
                  "    pth: in.log\n" SINK,
                  "p.yaml:2:5: node 'in': missing required key 'path' (The file to read, one "
                  "event per line.)\n"
                  "p.yaml:4:5: unknown key 'pth' in node 'in' (did you mean 'path'?)");
}

Test(validation, unknown_key_without_a_close_match_lists_the_allowed_ones) {
  expect_problems("nodes:\n"
                  "  - {id: in, type: stdin, colour: blue}\n"
                  "  - {id: out, type: stdout, inputs: [in], zzzzzz: 1}\n",
                  "p.yaml:2:27: unknown key 'colour' in node 'in' (allowed: id, type, max_line)\n"
                  "p.yaml:3:43: unknown key 'zzzzzz' in node 'out' (allowed: id, type, inputs, "
                  "with_meta)");
}

Test(validation, unknown_top_level_keys) {
  expect_problems("nmae: x\n"
                  "nodse:\n" SOURCE,
                  "p.yaml:1:1: unknown key 'nmae' (did you mean 'name'?)\n"
                  "p.yaml:1:1: missing required key 'nodes' (the list of sources, processors and "
                  "sinks)\n"
                  "p.yaml:2:1: unknown key 'nodse' (did you mean 'nodes'?)");
}

Test(validation, wrong_types) {
  expect_problems("nodes:\n"
                  "  - {id: in, type: generate, count: lots, rate: 1.5}\n"
                  "  - id: f\n"
                  "    type: file\n"
                  "    path: [a, b]\n"
                  "    follow: yes\n"
                  "    start_at: begining\n"
                  "    max_line: 1.5GiB\n"
                  "    poll_interval: soon\n"
                  "  - {id: out, type: stdout, inputs: [in, f], with_meta: 'on'}\n",
                  "p.yaml:2:37: count: expected an integer, got 'lots'\n"
                  "p.yaml:2:49: rate: expected an integer, got '1.5'\n"
                  "p.yaml:5:11: path: expected a path, got a list\n"
                  "p.yaml:6:13: follow: expected true or false, got 'yes'\n"
                  "p.yaml:7:15: start_at: expected one of beginning, end, got 'begining' (did you "
                  "mean 'beginning'?)\n"
                  "p.yaml:8:15: max_line: expected a size like 1048576, 512KiB, 64MiB or 1GiB, "
                  "got '1.5GiB'\n"
                  "p.yaml:9:20: poll_interval: expected a duration like 250ms, 5s, 2m or 1h (a "
                  "plain number is ms), got 'soon'\n"
                  "p.yaml:10:57: with_meta: expected true or false, got 'on'");
}

Test(validation, integers_reject_garbage_and_overflow) {
  expect_problem_line("nodes:\n"
                      "  - {id: in, type: generate, count: 12x}\n" SINK,
                      "p.yaml:2:37: count: expected an integer, got '12x'");
  expect_problem_line("nodes:\n"
                      "  - {id: in, type: generate, count: 9223372036854775808}\n" SINK,
                      "p.yaml:2:37: count: expected an integer, got '9223372036854775808'");
}

Test(validation, top_level_ranges) {
  expect_problems("workers: -1\n"
                  "batch_size: 0\n"
                  "max_in_flight: many\n"
                  "drain_timeout: 5x\n"
                  "nodes:\n" SOURCE SINK,
                  "p.yaml:1:10: workers: expected 0 (one per CPU) or a number of threads up to "
                  "1024, got '-1'\n"
                  "p.yaml:2:13: batch_size: expected an integer of 1 or more, got '0'\n"
                  "p.yaml:3:16: max_in_flight: expected an integer, got 'many'\n"
                  "p.yaml:4:16: drain_timeout: expected a duration like 250ms, 5s, 2m or 1h (a "
                  "plain number is ms), got '5x'");
}

Test(validation, unknown_type) {
  expect_problems("nodes:\n" SOURCE "  - {id: out, type: stdot, inputs: [in]}\n"
                  "  - {id: x, type: zeromq, inputs: [in]}\n",
                  "p.yaml:3:21: node 'out': unknown type 'stdot' (did you mean 'stdout'?)\n"
                  "p.yaml:4:19: node 'x': unknown type 'zeromq' (types: stdin, file, http, "
                  "generate, nats, jetstream, mqtt, redis, kafka, stdout, log, null, postgres, "
                  "wasm)");
}

Test(validation, kinds_and_inputs) {
  expect_problems(
      "nodes:\n"
      "  - {id: in, type: stdin, inputs: [x]}\n"
      "  - {id: gen, type: generate}\n"
      "  - {id: out, type: stdout}\n"
      "  - {id: p, type: wasm, module: p.wasm}\n"
      "  - {id: q, type: wasm, module: q.wasm, inputs: []}\n",
      "p.yaml:2:27: node 'in': stdin is a source and takes no inputs (remove `inputs`)\n"
      "p.yaml:4:5: node 'out': a stdout sink needs `inputs` (the nodes it reads from, "
      "e.g. inputs: [in])\n"
      "p.yaml:5:5: node 'p': a wasm processor needs `inputs` (the nodes it reads "
      "from, e.g. inputs: [in])\n"
      "p.yaml:6:5: node 'q': a wasm processor needs `inputs` (the nodes it reads "
      "from, e.g. inputs: [in])");
}

Test(validation, duplicate_ids_point_at_the_second) {
  expect_problems("nodes:\n" SOURCE "  - id: in\n"
                  "    type: generate\n" SINK,
                  "p.yaml:3:9: duplicate node id 'in' (first used on line 2; ids must be unique)");
}

Test(validation, invalid_ids) {
  expect_problems("nodes:\n"
                  "  - {id: a.b, type: stdin}\n"
                  "  - {id: 'x y', type: stdin}\n"
                  "  - {type: stdin}\n" SOURCE SINK,
                  "p.yaml:2:10: id: 'a.b' is not a valid node id: use letters, digits, '_' and "
                  "'-' (no dots: 'x.errors' names the errors output of node x)\n"
                  "p.yaml:3:10: id: 'x y' is not a valid node id: use letters, digits, '_' and "
                  "'-'\n"
                  "p.yaml:4:5: nodes[2]: missing required key 'id' (a name unique in the "
                  "pipeline: letters, digits, '_' and '-')");
}

Test(validation, unknown_inputs_with_did_you_mean) {
  expect_problems("nodes:\n" SOURCE "  - {id: upper, type: wasm, module: u.wasm, inputs: [in]}\n"
                  "  - {id: out, type: stdout, inputs: [uper, zzzzz, upper, upper]}\n",
                  "p.yaml:4:38: node 'out': input 'uper' is not a node (did you mean 'upper'?)\n"
                  "p.yaml:4:44: node 'out': input 'zzzzz' is not a node (nodes: in, upper, out)\n"
                  "p.yaml:4:58: node 'out': inputs: 'upper' is listed twice (each event would "
                  "arrive twice)");
}

Test(validation, what_may_be_read) {
  expect_problems("nodes:\n" SOURCE SINK "  - {id: p, type: wasm, module: p.wasm, inputs: [in]}\n"
                  "  - {id: bad, type: log, inputs: [in.errors, out, p.errors]}\n",
                  "p.yaml:5:35: node 'bad': input 'in.errors': only processors and some sources "
                  "have an errors output, and 'in' is a stdin source\n"
                  "p.yaml:5:46: node 'bad': input 'out' is a stdout sink, and sinks have no "
                  "output to read");
}

Test(validation, no_source) {
  expect_problems("nodes:\n"
                  "  - {id: p, type: wasm, module: p.wasm, inputs: [out]}\n"
                  "  - {id: out, type: stdout, inputs: [p]}\n",
                  "p.yaml:1:1: nodes: the pipeline has no source (add a node without `inputs`, "
                  "e.g. {id: in, type: stdin})\n"
                  "p.yaml:2:5: cycle: p -> out -> p (a node cannot receive its own output)\n"
                  "p.yaml:2:50: node 'p': input 'out' is a stdout sink, and sinks have no output "
                  "to read");
}

Test(validation, cycles_are_reported_with_their_path) {
  expect_problems("nodes:\n" SOURCE "  - {id: a, type: wasm, module: m.wasm, inputs: [in, c]}\n"
                  "  - {id: b, type: wasm, module: m.wasm, inputs: [a]}\n"
                  "  - {id: c, type: wasm, module: m.wasm, inputs: [b.errors]}\n"
                  "  - {id: d, type: wasm, module: m.wasm, inputs: [d]}\n"
                  "  - {id: out, type: stdout, inputs: [c]}\n",
                  "p.yaml:3:5: cycle: a -> b -> c -> a (a node cannot receive its own output)\n"
                  "p.yaml:6:5: cycle: d -> d (a node cannot receive its own output)");
}

Test(validation, yaml_syntax_errors_have_line_and_col) {
  expect_problems("nodes:\n"
                  "  - {id: in, type: stdin\n"
                  "  - {id: out}\n",
                  "p.yaml:3:5: missing comma in flow mapping");
  expect_problems("nodes:\n"
                  "  - id: in\n"
                  "     type: stdin\n",
                  "p.yaml:2:9: invalid multiline plain key");
  expect_problems("nodes: [\"a\\q\"]\n", "p.yaml:1:11: invalid escape 'q' in double-quoted string");
}

Test(validation, duplicate_keys_and_aliases) {
  expect_problems(
      "nodes:\n"
      "  - id: in\n"
      "    type: stdin\n"
      "    type: stdout\n"
      "  - {id: out, type: stdout, inputs: *nowhere}\n",
      "p.yaml:4:5: duplicate key 'type' (first set on line 3; keep one)\n"
      "p.yaml:5:38: alias '*nowhere' names no anchor (define it earlier with &nowhere)");
}

Test(validation, the_shape_of_the_file) {
  expect_problems("",
                  "p.yaml:1:1: the file is empty: a pipeline needs at least `nodes:` (a list of "
                  "sources, processors and sinks)");
  expect_problems("- a\n- b\n", "p.yaml:1:1: a pipeline file is a mapping with `nodes:` (and "
                                "name, secrets, tests...), got a list");
  expect_problems("nodes: []\n", "p.yaml:1:8: nodes: expected a non-empty list of nodes, e.g. - "
                                 "{id: in, type: stdin}, got an empty list");
  expect_problems("nodes:\n  - in\n" SINK,
                  "p.yaml:2:5: nodes[0]: expected a node like {id: in, type: stdin}, got a text "
                  "value\n"
                  "p.yaml:3:38: node 'out': input 'in' is not a node (nodes: out)");
  expect_problems("name: a/b\nnodes:\n" SOURCE SINK,
                  "p.yaml:1:7: name: expected a name of letters, digits, '_', '-' and '.' (at "
                  "most 128), got 'a/b'");
  expect_problems("nodes:\n" SOURCE SINK "---\nnodes: []\n",
                  "p.yaml:4:1: a pipeline file holds one YAML document; this starts a second one "
                  "(remove the '---' and what follows, or move it to its own file)");
}

Test(validation, wasm_limits_out_of_range) {
  expect_problems("nodes:\n" SOURCE "  - id: p\n"
                  "    type: wasm\n"
                  "    module: p.wasm\n"
                  "    memory: 1KiB\n"
                  "    stack: 2GiB\n"
                  "    recycle_calls: -5\n"
                  "    inputs: [in]\n"
                  "  - {id: out, type: stdout, inputs: [p]}\n",
                  "p.yaml:6:13: memory: expected 0 (the default) or a size from 64KiB to 4GiB, "
                  "got '1KiB'\n"
                  "p.yaml:7:12: stack: expected 0 (the default) or a size from 4KiB to 1GiB, got "
                  "'2GiB'\n"
                  "p.yaml:8:20: recycle_calls: expected 0 (never) or a positive number of calls, "
                  "got '-5'");
}

Test(validation, tests_section_problems) {
  expect_problems("nodes:\n" SOURCE "  - {id: p, type: wasm, module: p.wasm, inputs: [in]}\n"
                  "  - {id: out, type: stdout, inputs: [p]}\n"
                  "tests:\n"
                  "  - name: one\n"
                  "    inputs: {p: [x], inn: [y]}\n"
                  "    expect: {outt: [X], out.errors: [], p: hello}\n"
                  "    expected: {}\n"
                  "  - inputs:\n"
                  "      in: [[1, 2], {payload: a, colour: red}]\n"
                  "  - name: one\n"
                  "  - 3\n",
                  "p.yaml:7:14: test 'one': inputs: 'p' is a wasm processor; tests feed events "
                  "to sources\n"
                  "p.yaml:7:22: test 'one': inputs: 'inn' is not a node (did you mean 'in'?)\n"
                  "p.yaml:8:14: test 'one': expect: 'outt' is not a node (did you mean 'out'?)\n"
                  "p.yaml:8:25: test 'one': expect: 'out.errors': only processors and some sources "
                  "have an errors output, and 'out' is a stdout sink\n"
                  "p.yaml:8:44: test 'one': expect: p: expected a list of events, e.g. [hello, "
                  "world], got 'hello'\n"
                  "p.yaml:9:5: unknown key 'expected' in tests[0] (did you mean 'expect'?)\n"
                  "p.yaml:10:5: tests[1]: missing required key 'name' (what the test checks, "
                  "shown when it fails)\n"
                  "p.yaml:11:12: expected an event: a payload text or {payload: ..., meta: "
                  "{...}}, got a list\n"
                  "p.yaml:11:33: unknown key 'colour' in an event (allowed: payload, meta); a "
                  "JSON payload must be quoted, e.g. '{\"a\": 1}'\n"
                  "p.yaml:12:11: duplicate test name 'one' (first used on line 6)\n"
                  "p.yaml:13:5: tests[3]: expected a test like {name: ..., inputs: {...}, expect: "
                  "{...}}, got a text value");
}

Test(validation, too_many_problems_end_with_a_count) {
  char yaml[8192] = "nodes:\n" SOURCE;
  for (int i = 0; i < 40; i++) {
    char line[128];
    snprintf(line, sizeof line, "  - {id: out%d, type: stdout, inputs: [in], wrong_key_%d: 1}\n", i,
             i);
    strcat(yaml, line);
  }
  const char *message = load_fails(yaml);
  cr_assert_lt(strlen(message), 1024);
  cr_assert(strncmp(message, "p.yaml:3:", 9) == 0, "%s", message);
  const char *last = strrchr(message, '\n');
  cr_assert_not_null(last);
  int lines = 0;
  for (const char *p = message; *p; p++) lines += *p == '\n';
  char expected[64];
  snprintf(expected, sizeof expected, "\n... and %d more problems", 40 - lines);
  cr_assert_str_eq(last, expected, "%s", message);
}

/* A list setting takes a YAML list or one comma-separated text; empty items are refused
 * where they are. */
Test(validation, list_settings) {
  expect_problems("nodes:\n" SOURCE
                  "  - {id: db, type: postgres, inputs: [in], table: t, columns: {a: payload},\n"
                  "     url: x, on_conflict: [a, '', {b: c}]}\n"
                  "  - {id: db2, type: postgres, inputs: [in], table: t, columns: {a: payload},\n"
                  "     url: x, on_conflict: 'a,,b'}\n",
                  "p.yaml:4:31: on_conflict[1]: expected a non-empty text, got ''\n"
                  "p.yaml:4:35: on_conflict[2]: expected a non-empty text, got a mapping\n"
                  "p.yaml:6:27: on_conflict: expected a list of texts, e.g. [a, b] or \"a, b\", "
                  "got 'a,,b'");
}
