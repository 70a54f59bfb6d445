/*
 * The secrets section: values from the environment or a file, referenced as
 * ${secret:NAME}, never shown in a message, and redacted from text.
 */
#include "config_fixture.h"

TestSuite(secrets, .init = enter_temp_dir, .fini = leave_temp_dir);

#define GRAPH                                                                                      \
  "  - {id: in, type: stdin}\n"                                                                    \
  "  - {id: out, type: stdout, inputs: [in]}\n"

typedef struct http_sink_config {
  char *url;
  char *method;
  sl_conf_map headers;
} http_sink_config;

Test(secrets, from_env_and_file) {
  static const char *const env[] = {"API_TOKEN_VAR=tok-123456", NULL};
  test_env = env;
  cr_assert_eq(mkdir("secrets", 0700), 0);
  put_file("secrets/db.txt", "pa55word\n");
  sl_pipeline_spec *spec = load_ok("secrets:\n"
                                   "  TOKEN: {env: API_TOKEN_VAR}\n"
                                   "  DB: {file: secrets/db.txt}\n"
                                   "nodes:\n"
                                   "  - {id: in, type: stdin}\n"
                                   "  - id: post\n"
                                   "    type: http\n"
                                   "    url: 'https://u:${secret:DB}@example.com/'\n"
                                   "    headers: {Authorization: 'Bearer ${secret:TOKEN}'}\n"
                                   "    inputs: [in]\n");
  const http_sink_config *http = spec->nodes[1].config;
  cr_assert_str_eq(http->url, "https://u:pa55word@example.com/", "one trailing newline trimmed");
  cr_assert_str_eq(sl_conf_map_get(&http->headers, "Authorization"), "Bearer tok-123456");
  cr_assert_eq(spec->secret_count, 2);
  cr_assert_str_eq(spec->secret_values[0], "tok-123456", "longest first");
  cr_assert_str_eq(spec->secret_values[1], "pa55word");
  sl_pipeline_spec_free(spec);
}

Test(secrets, a_secret_never_appears_in_a_type_error) {
  static const char *const env[] = {"V=hunter2", NULL};
  test_env = env;
  const char *message = load_fails("secrets:\n"
                                   "  S: {env: V}\n"
                                   "nodes:\n"
                                   "  - {id: in, type: generate, count: '${secret:S}x'}\n"
                                   "  - id: f\n"
                                   "    type: file\n"
                                   "    path: in.log\n"
                                   "    start_at: ${secret:S}\n"
                                   "    follow: 'x ${secret:S}'\n"
                                   "  - {id: out, type: stdout, inputs: [in, f, '${secret:S}']}\n");
  cr_assert_null(strstr(message, "hunter2"), "%s", message);
  cr_assert_str_eq(message,
                   "p.yaml:4:37: count: expected an integer (value hidden: it contains a secret)\n"
                   "p.yaml:8:15: start_at: expected one of beginning, end (value hidden: it "
                   "contains a secret)\n"
                   "p.yaml:9:13: follow: expected true or false (value hidden: it contains a "
                   "secret)\n"
                   "p.yaml:10:45: node 'out': input '***' is not a node (nodes: in, f, out)");
}

Test(secrets, unknown_secret_names) {
  static const char *const env[] = {"V=a-long-secret", NULL};
  test_env = env;
  expect_problems("secrets:\n"
                  "  API_TOKEN: {env: V}\n"
                  "nodes:\n"
                  "  - {id: in, type: generate, payload: '${secret:API_TOKNE}'}\n"
                  "  - {id: out, type: stdout, inputs: [in], x: '${secret:zzz}'}\n",
                  "p.yaml:4:39: unknown secret 'API_TOKNE' (did you mean 'API_TOKEN'?)\n"
                  "p.yaml:5:43: unknown key 'x' in node 'out' (allowed: id, type, inputs, "
                  "with_meta)\n"
                  "p.yaml:5:46: unknown secret 'zzz' (declared secrets: API_TOKEN)");
  expect_problems("nodes:\n"
                  "  - {id: in, type: generate, payload: '${secret:TOKEN}'}\n"
                  "  - {id: out, type: stdout, inputs: [in]}\n",
                  "p.yaml:2:39: unknown secret 'TOKEN' (no secrets are declared: add a top-level "
                  "`secrets:` section, e.g. TOKEN: {env: VARIABLE})");
}

Test(secrets, section_problems) {
  static const char *const env[] = {"DIR=/nonexistent-dir", NULL};
  test_env = env;
  expect_problems("secrets:\n"
                  "  A: {env: UNSET_VAR}\n"
                  "  B: {file: '${DIR}/b.txt'}\n"
                  "  C: {env: X, file: y}\n"
                  "  D: {enve: X}\n"
                  "  E: plain\n"
                  "  F: {}\n"
                  "  G: {env: '${secret:A}'}\n"
                  "  'H I': {env: X}\n"
                  "nodes:\n"
                  "  - {id: in, type: generate, payload: '${secret:A}'}\n"
                  "  - {id: out, type: stdout, inputs: [in]}\n",
                  "p.yaml:2:12: secret 'A': environment variable UNSET_VAR is not set\n"
                  "p.yaml:3:13: secret 'B': cannot read /nonexistent-dir/b.txt: No such file or "
                  "directory\n"
                  "p.yaml:4:15: secret 'C': give either env or file, not both\n"
                  "p.yaml:5:7: unknown key 'enve' in secret 'D' (did you mean 'env'?)\n"
                  "p.yaml:6:6: secret 'E': expected {env: VARIABLE} or {file: PATH}, got a text "
                  "value\n"
                  "p.yaml:7:6: secret 'F': say where it comes from: {env: VARIABLE} or {file: "
                  "PATH}\n"
                  "p.yaml:8:12: ${secret:A}: secrets cannot be used inside the secrets section\n"
                  "p.yaml:9:3: secret name 'H I': use letters, digits, '_', '-' and '.'");
}

Test(secrets, errors_are_redacted_as_a_last_resort) {
  /* An unknown key cannot hold a secret, but a message quoting an env value that
   * happens to equal a secret must not show it either. */
  static const char *const env[] = {"V=s3cr3t-value", "PLAIN=s3cr3t-value", NULL};
  test_env = env;
  const char *message = load_fails("secrets: {S: {env: V}}\n"
                                   "nodes:\n"
                                   "  - {id: in, type: generate, count: '${PLAIN}'}\n"
                                   "  - {id: out, type: stdout, inputs: [in]}\n");
  cr_assert_str_eq(message, "p.yaml:3:37: count: expected an integer, got '***'");
}

Test(secrets, redact_replaces_every_occurrence_longest_first) {
  static const char *const env[] = {"A=abc", "B=abcdef", "E=", NULL};
  test_env = env;
  sl_pipeline_spec *spec = load_ok("secrets:\n"
                                   "  A: {env: A}\n"
                                   "  B: {env: B}\n"
                                   "  E: {env: E}\n"
                                   "nodes:\n" GRAPH);
  cr_assert_eq(spec->secret_count, 2, "empty secrets are not kept");
  char text[64] = "x abcdef y abc z abcabc";
  sl_pipeline_spec_redact(spec, text, sizeof text);
  cr_assert_str_eq(text, "x *** y *** z ******");
  char small[12] = "abc abc abc";
  sl_pipeline_spec_redact(spec, small, 6);
  cr_assert_str_eq(small, "*** *");
  char none[] = "nothing to hide";
  sl_pipeline_spec_redact(spec, none, sizeof none);
  cr_assert_str_eq(none, "nothing to hide");
  sl_pipeline_spec_free(spec);
}
