/*
 * The `{{meta.KEY}}` templates of the broker sinks (connectors/meta_template.h), as data:
 * templates with what they expand to for one event (literal text, single braces, spaces
 * inside the braces, adjacent placeholders, the empty template, a missing key), and
 * templates that are refused with the message naming the setting. Then what the table
 * cannot show: {{payload_sha256}} only where allowed, a refused template left empty, a
 * buffer reused across events, and a template that outlives the text it was parsed from.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/meta_template.h"

#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The event every expansion case uses: `region` twice (the first counts), an empty value. */
static const sl_meta case_meta[] = {
    {{(const uint8_t *)"app", 3}, {(const uint8_t *)"shop", 4}},
    {{(const uint8_t *)"region", 6}, {(const uint8_t *)"eu", 2}},
    {{(const uint8_t *)"region", 6}, {(const uint8_t *)"us", 2}},
    {{(const uint8_t *)"blank", 5}, {(const uint8_t *)"", 0}},
};

static sl_event case_event(void) {
  return (sl_event){{(const uint8_t *)"abc", 3}, case_meta, sizeof case_meta / sizeof *case_meta};
}

typedef struct expansion_case {
  const char *text;
  unsigned flags;
  const char *expected;
  const char *missing; /* NULL: no key is missing */
  bool constant;
} expansion_case;

static const expansion_case expansions[] = {
    {"plain-topic", 0, "plain-topic", NULL, true},
    {"", 0, "", NULL, true},
    {NULL, 0, "", NULL, true},
    /* single braces are text: Redis Cluster hash tags, JSON-looking keys, a lone "}}" */
    {"events:{eu}", 0, "events:{eu}", NULL, true},
    {"a{b}c{", 0, "a{b}c{", NULL, true},
    {"x}}y", 0, "x}}y", NULL, true},
    {"{eu}:{{meta.region}}", 0, "{eu}:eu", NULL, false},
    /* placeholders; the first of repeated pairs; spaces and tabs inside the braces */
    {"logs-{{meta.app}}-{{meta.region}}", 0, "logs-shop-eu", NULL, false},
    {"{{ meta.region }}", 0, "eu", NULL, false},
    {"{{\tmeta.app  }}!", 0, "shop!", NULL, false},
    {"{{meta.app}}{{meta.region}}{{meta.app}}", 0, "shopeushop", NULL, false},
    /* a present but empty value is not missing; a missing key expands to nothing and the
     * first one is reported */
    {"[{{meta.blank}}]", 0, "[]", NULL, false},
    {"{{meta.nope}}-{{meta.app}}-{{meta.gone}}", 0, "-shop-", "nope", false},
    {"{{meta.regio}}{{meta.region_}}", 0, "", "regio", false},
    {"{{payload_sha256}}", SL_META_TEMPLATE_PAYLOAD_SHA256, SHA256_ABC, NULL, false},
    {"{{meta.region}}-{{ payload_sha256 }}", SL_META_TEMPLATE_PAYLOAD_SHA256, "eu-" SHA256_ABC,
     NULL, false},
};

Test(meta_template, expansions) {
  sl_event event = case_event();
  sl_meta_template_buf buf = {0};
  for (size_t i = 0; i < sizeof expansions / sizeof *expansions; i++) {
    const expansion_case *c = &expansions[i];
    sl_meta_template tmpl;
    sl_error err = {{0}};
    cr_assert_eq(sl_meta_template_parse("topic", c->text, c->flags, &tmpl, &err), SL_OK,
                 "\"%s\": %s", c->text ? c->text : "(NULL)", err.message);
    cr_assert_eq(sl_meta_template_constant(&tmpl), c->constant, "\"%s\"", c->text);
    const char *missing = sl_meta_template_expand(&tmpl, &event, &buf);
    cr_assert_not_null(buf.bytes, "\"%s\": the buffer is NUL-terminated even when empty", c->text);
    cr_assert_str_eq(buf.bytes, c->expected, "\"%s\"", c->text);
    cr_assert_eq(buf.len, strlen(c->expected), "\"%s\"", c->text);
    if (c->missing)
      cr_assert(missing && strcmp(missing, c->missing) == 0, "\"%s\": missing %s, expected %s",
                c->text, missing ? missing : "(none)", c->missing);
    else
      cr_assert_null(missing, "\"%s\": missing %s", c->text, missing);
    sl_meta_template_destroy(&tmpl);
  }
  sl_meta_template_buf_destroy(&buf);
}

typedef struct refusal_case {
  const char *field;
  const char *text;
  unsigned flags;
  const char *message; /* the whole message starts with this */
} refusal_case;

static const refusal_case refusals[] = {
    {"topic", "a-{{region}}", 0,
     "topic: unknown placeholder {{region}}; the only form is {{meta.KEY}}"},
    {"key", "{{}}", 0, "key: unknown placeholder {{}}"},
    {"key", "{{ meta }}", 0, "key: unknown placeholder {{ meta }}"},
    {"headers: x-region", "ok-{{meta.a}}-{{ Meta.b }}", 0,
     "headers: x-region: unknown placeholder {{ Meta.b }}"},
    /* a third brace is not a literal one before the placeholder */
    {"key", "{{{meta.region}}}", 0, "key: unknown placeholder {{{meta.region}}"},
    {"key", "a-{{meta.x", 0, "key: \"{{\" at character 3 is never closed by \"}}\""},
    {"key", "{{meta.x}} {{", 0, "key: \"{{\" at character 12 is never closed"},
    {"subject", "{{meta.x", SL_META_TEMPLATE_PAYLOAD_SHA256,
     "subject: \"{{\" at character 1 is never closed by \"}}\"; write {{meta.KEY}} or "
     "{{payload_sha256}}"},
    {"key", "{{meta.}}", 0, "key: placeholder {{meta.}} needs a metadata key"},
    {"key", "{{meta.a b}}", 0, "key: placeholder {{meta.a b}} needs a metadata key"},
    {"key", "{{meta.a}b}}", 0, "key: placeholder {{meta.a}b}} needs a metadata key"},
    /* {{payload_sha256}} only where the connector allows it */
    {"topic", "{{payload_sha256}}", 0,
     "topic: unknown placeholder {{payload_sha256}}; the only form is {{meta.KEY}}"},
    {"msg_id", "{{payload_sha}}", SL_META_TEMPLATE_PAYLOAD_SHA256,
     "msg_id: unknown placeholder {{payload_sha}}; the forms are {{meta.KEY}}"},
};

Test(meta_template, refusals_name_the_setting) {
  for (size_t i = 0; i < sizeof refusals / sizeof *refusals; i++) {
    const refusal_case *c = &refusals[i];
    sl_meta_template tmpl;
    sl_error err = {{0}};
    cr_assert_eq(sl_meta_template_parse(c->field, c->text, c->flags, &tmpl, &err), SL_CONFIG,
                 "\"%s\" was accepted", c->text);
    cr_assert(strncmp(err.message, c->message, strlen(c->message)) == 0,
              "\"%s\": expected \"%s...\", got \"%s\"", c->text, c->message, err.message);
    /* Refused: nothing is held, and destroying is harmless. */
    cr_assert(tmpl.count == 0 && tmpl.parts == NULL && tmpl.field == NULL && tmpl.text == NULL,
              "\"%s\"", c->text);
    sl_meta_template_destroy(&tmpl);
  }
}

Test(meta_template, payload_sha256_hashes_the_payload_even_when_empty) {
  sl_meta_template tmpl;
  sl_error err = {{0}};
  cr_assert_eq(sl_meta_template_parse("msg_id", "{{payload_sha256}}",
                                      SL_META_TEMPLATE_PAYLOAD_SHA256, &tmpl, &err),
               SL_OK, "%s", err.message);
  sl_event empty = {{NULL, 0}, NULL, 0};
  sl_meta_template_buf buf = {0};
  cr_assert_null(sl_meta_template_expand(&tmpl, &empty, &buf));
  cr_assert_str_eq(buf.bytes, SHA256_EMPTY);
  sl_meta_template_destroy(&tmpl);
  sl_meta_template_buf_destroy(&buf);
}

Test(meta_template, a_reused_buffer_holds_only_the_latest_expansion) {
  sl_meta_template tmpl;
  sl_error err = {{0}};
  cr_assert_eq(sl_meta_template_parse("topic", "t.{{meta.v}}", 0, &tmpl, &err), SL_OK);
  char long_value[300];
  memset(long_value, 'x', sizeof long_value - 1);
  long_value[sizeof long_value - 1] = '\0';
  sl_meta meta = {sl_bytes_from_cstr("v"), sl_bytes_from_cstr(long_value)};
  sl_event event = {sl_bytes_from_cstr(""), &meta, 1};
  sl_meta_template_buf buf = {0};
  cr_assert_null(sl_meta_template_expand(&tmpl, &event, &buf));
  cr_assert_eq(buf.len, 2 + strlen(long_value));
  cr_assert_eq(strncmp(buf.bytes, "t.xxx", 5), 0);
  meta.value = sl_bytes_from_cstr("short");
  cr_assert_null(sl_meta_template_expand(&tmpl, &event, &buf));
  cr_assert_str_eq(buf.bytes, "t.short");
  cr_assert_eq(buf.len, 7);
  event.meta_count = 0;
  cr_assert_str_eq(sl_meta_template_expand(&tmpl, &event, &buf), "v");
  cr_assert_str_eq(buf.bytes, "t.");
  sl_meta_template_destroy(&tmpl);
  sl_meta_template_buf_destroy(&buf);
}

Test(meta_template, keeps_its_own_copy_of_the_field_and_text) {
  char *field = strdup("headers: x-app");
  char *text = strdup("app={{meta.app}}");
  sl_meta_template tmpl;
  sl_error err = {{0}};
  cr_assert_eq(sl_meta_template_parse(field, text, 0, &tmpl, &err), SL_OK);
  free(field);
  free(text);
  cr_assert_str_eq(tmpl.field, "headers: x-app");
  cr_assert_str_eq(tmpl.text, "app={{meta.app}}");
  sl_event event = case_event();
  sl_meta_template_buf buf = {0};
  cr_assert_null(sl_meta_template_expand(&tmpl, &event, &buf));
  cr_assert_str_eq(buf.bytes, "app=shop");
  sl_meta_template_destroy(&tmpl);
  sl_meta_template_buf_destroy(&buf);
}
