/*
 * Components in pipelines, as a user runs them: `sluice run` with a jco-built component
 * as a wasm node's module, and `sluice validate` on components that do and do not match
 * the processor world. The components come from examples/components.mk.
 */
#include "../support/e2e.h"
#include "../support/fixture.h"

static char *work_dir;

static void make_work_dir(void) { work_dir = e2e_tmpdir(); }
static void remove_work_dir(void) { e2e_rmdir(work_dir); }

TestSuite(component_pipeline, .init = make_work_dir, .fini = remove_work_dir, .timeout = 120);

/* stdin -> wasm node `upper` running `module` (with `extra` settings) -> stdout. */
static void write_pipeline(const char *module, const char *extra) {
  e2e_write(work_dir, "p.yaml",
            "name: component-%d\n"
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - id: upper\n"
            "    type: wasm\n"
            "    module: %s\n"
            "    inputs: [in]\n"
            "%s"
            "  - {id: out, type: stdout, inputs: [upper]}\n",
            (int)getpid(), module, extra);
}

Test(component_pipeline, run_uppercases_through_the_jco_built_component) {
  e2e_write(work_dir, "in.txt", "hello\nworld\nMixed Case 42\n");
  write_pipeline(example_path("upper_component"), "");
  e2e_result r = e2e_sluice(work_dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "HELLO\nWORLD\nMIXED CASE 42\n");
  e2e_result_free(&r);
}

Test(component_pipeline, validate_accepts_the_component) {
  write_pipeline(example_path("upper_component"), "");
  e2e_result r = e2e_sluice(work_dir, "validate p.yaml");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert(strstr(r.out, "p.yaml: ok: "), "%s", r.out);
  e2e_result_free(&r);
}

Test(component_pipeline, validate_names_what_differs_from_the_world) {
  const char *module = guest_path("components/wrong_function_type");
  write_pipeline(module, "");
  e2e_result r = e2e_sluice(work_dir, "validate p.yaml");
  cr_assert_eq(r.exit_code, 2, "stdout: %s stderr: %s", r.out, r.err);
  cr_assert_str_eq(r.out, "");
  char expected[8192];
  snprintf(expected, sizeof expected,
           "p.yaml:4:5: node 'upper': module %s: component imports "
           "wasi:config/store@0.2.0-draft function get as func(key: string) -> option<string>, "
           "but Sluice provides func(key: string) -> result<option<string>, "
           "variant{upstream(string), io(string)}>\n",
           module);
  cr_assert_str_eq(r.err, expected);
  e2e_result_free(&r);
}

Test(component_pipeline, a_components_capabilities_need_their_grants) {
  /* all_capabilities imports key-value and HTTP as well as logging and config. */
  e2e_write(work_dir, "in.txt", "one\ntwo\n");
  write_pipeline(guest_path("components/all_capabilities"), "");
  e2e_result r = e2e_sluice(work_dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 2, "stdout: %s stderr: %s", r.out, r.err);
  cr_assert(strstr(r.err, "node 'upper': the module imports") &&
                strstr(r.err, "wasi:keyvalue/store@0.2.0-draft2") &&
                strstr(r.err, "no keyvalue grant"),
            "the grant check sees the component's core imports: %s", r.err);
  e2e_result_free(&r);

  write_pipeline(guest_path("components/all_capabilities"),
                 "    capabilities:\n"
                 "      keyvalue: {cache: memory}\n"
                 "      http: {allowed_hosts: [\"127.0.0.1:9\"]}\n");
  r = e2e_sluice(work_dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "one\ntwo\n");
  cr_assert(strstr(r.err, "one") && strstr(r.err, "two"), "the guest logs each payload: %s", r.err);
  e2e_result_free(&r);
}
