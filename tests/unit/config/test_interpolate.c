/*
 * ${VAR}, ${VAR:-default}, ${VAR:?message}, $${ and where interpolation applies.
 */
#include "config_fixture.h"

TestSuite(interpolate, .init = enter_temp_dir, .fini = leave_temp_dir);

/* A pipeline whose processor's `config:` holds `values` (YAML flow-mapping entries). */
static sl_pipeline_spec *with_config(const char *values) {
  char yaml[4096];
  snprintf(yaml, sizeof yaml,
           "nodes:\n"
           "  - {id: in, type: stdin}\n"
           "  - id: p\n"
           "    type: wasm\n"
           "    module: p.wasm\n"
           "    config: {%s}\n"
           "    inputs: [in]\n"
           "  - {id: out, type: stdout, inputs: [p]}\n",
           values);
  return load_ok(yaml);
}

static const char *config_value(const sl_pipeline_spec *spec, const char *key) {
  const sl_wasm_config *wasm = spec->nodes[1].config;
  const char *value = sl_conf_map_get(&wasm->config, key);
  cr_assert_not_null(value, "no config key %s", key);
  return value;
}

Test(interpolate, variables_defaults_and_escapes) {
  static const char *const env[] = {
      "HOST=db.local", "PORT=5432", "EMPTY=", "DOLLAR=$HOME", "REF=${HOST}", NULL};
  test_env = env;
  sl_pipeline_spec *spec = with_config("url: 'pg://${HOST}:${PORT}/x',"
                                       "plain: no refs here,"
                                       "unset_default: '${NOPE:-fallback}',"
                                       "empty_default: '${EMPTY:-fallback}',"
                                       "empty: '[${EMPTY}]',"
                                       "nested: '${NOPE:-${HOST}:${NOPE2:-7}}',"
                                       "escaped: '$${HOST} costs $5 and $${NOPE:-x}',"
                                       "no_reinterpolation: '${DOLLAR} ${REF}',"
                                       "default_with_colon: '${NOPE:-a:b}'");
  cr_assert_str_eq(config_value(spec, "url"), "pg://db.local:5432/x");
  cr_assert_str_eq(config_value(spec, "plain"), "no refs here");
  cr_assert_str_eq(config_value(spec, "unset_default"), "fallback");
  cr_assert_str_eq(config_value(spec, "empty_default"), "fallback", ":- also covers empty");
  cr_assert_str_eq(config_value(spec, "empty"), "[]");
  cr_assert_str_eq(config_value(spec, "nested"), "db.local:7");
  cr_assert_str_eq(config_value(spec, "escaped"), "${HOST} costs $5 and ${NOPE:-x}");
  cr_assert_str_eq(config_value(spec, "no_reinterpolation"), "$HOME ${HOST}",
                   "values from the environment are not expanded again");
  cr_assert_str_eq(config_value(spec, "default_with_colon"), "a:b");
  sl_pipeline_spec_free(spec);
}

Test(interpolate, typed_values_after_interpolation) {
  static const char *const env[] = {"N=5", "FOLLOW=true", "SIZE=2MiB", "WORKERS=3", NULL};
  test_env = env;
  sl_pipeline_spec *spec = load_ok("workers: ${WORKERS}\n"
                                   "nodes:\n"
                                   "  - {id: in, type: generate, count: '${N}'}\n"
                                   "  - id: p\n"
                                   "    type: wasm\n"
                                   "    module: ${MODDIR:-mods}/p.wasm\n"
                                   "    memory: ${SIZE}\n"
                                   "    inputs: [in]\n"
                                   "  - {id: out, type: stdout, inputs: [p]}\n");
  cr_assert_eq(spec->workers, 3);
  cr_assert_eq(*(const int64_t *)spec->nodes[0].config, 5, "generate's count");
  const sl_wasm_config *wasm = spec->nodes[1].config;
  cr_assert_eq(wasm->memory, 2u << 20);
  char expected[PATH_MAX + 32];
  snprintf(expected, sizeof expected, "%s/mods/p.wasm", test_dir);
  cr_assert_str_eq(wasm->module, expected);
  sl_pipeline_spec_free(spec);
}

Test(interpolate, unset_variable_is_an_error_at_the_value) {
  expect_problems("nodes:\n"
                  "  - {id: in, type: file, path: '${LOGS}/in.log'}\n"
                  "  - {id: out, type: stdout, inputs: [in]}\n",
                  "p.yaml:2:32: LOGS is not set (write ${LOGS:-default} to give a default)");
}

Test(interpolate, required_variables_with_a_message) {
  static const char *const env[] = {"EMPTY=", NULL};
  test_env = env;
  expect_problems("nodes:\n"
                  "  - {id: in, type: file, path: '${LOGS:?set LOGS to the log folder}'}\n"
                  "  - {id: in2, type: file, path: '${EMPTY:?}'}\n"
                  "  - {id: out, type: stdout, inputs: [in, in2]}\n",
                  "p.yaml:2:32: LOGS: set LOGS to the log folder\n"
                  "p.yaml:3:33: EMPTY: must be set and not empty");
}

Test(interpolate, malformed_references) {
  expect_problems("nodes:\n"
                  "  - {id: in, type: generate, payload: 'a ${oops'}\n"
                  "  - {id: in2, type: generate, payload: '${}'}\n"
                  "  - {id: in3, type: generate, payload: '${A:x}'}\n"
                  "  - {id: out, type: stdout, inputs: [in, in2, in3]}\n",
                  "p.yaml:2:39: '${' without a closing '}' (write $${ for a literal ${)\n"
                  "p.yaml:3:40: '${}' is not a valid reference: write ${VAR}, ${VAR:-default}, "
                  "${VAR:?message} or ${secret:NAME} (and $${ for a literal ${)\n"
                  "p.yaml:4:40: '${A:x}' is not a valid reference: write ${VAR}, ${VAR:-default}, "
                  "${VAR:?message} or ${secret:NAME} (and $${ for a literal ${)");
}

Test(interpolate, keys_are_not_interpolated) {
  static const char *const env[] = {"K=path", NULL};
  test_env = env;
  expect_problem_line("nodes:\n"
                      "  - {id: in, type: file, '${K}': x}\n"
                      "  - {id: out, type: stdout, inputs: [in]}\n",
                      "p.yaml:2:26: unknown key '${K}' in node 'in' (allowed: id, type, path, "
                      "follow, start_at, checkpoint, max_line, poll_interval)");
}

Test(interpolate, process_environment_by_default) {
  setenv("SLUICE_TEST_PAYLOAD", "from the environment", 1);
  static const char yaml[] = "nodes:\n"
                             "  - {id: in, type: generate, payload: '${SLUICE_TEST_PAYLOAD}'}\n"
                             "  - {id: out, type: stdout, inputs: [in]}\n";
  sl_pipeline_spec *spec = NULL;
  sl_error err;
  cr_assert_eq(sl_pipeline_load_text(yaml, strlen(yaml), "inline.yaml", NULL, NULL, &spec, &err),
               SL_OK, "%s", err.message);
  typedef struct generate_config {
    int64_t count;
    char *payload;
    int64_t rate;
  } generate_config;
  cr_assert_str_eq(((const generate_config *)spec->nodes[0].config)->payload,
                   "from the environment");
  cr_assert_str_eq(spec->name, "inline");
  sl_pipeline_spec_free(spec);
}
