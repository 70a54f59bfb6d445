/*
 * Components as modules (src/wasm/component.c): a jco-built component runs exactly like
 * the core module inside it; every world that differs from Sluice's is refused with a
 * message that says what differs; and no byte sequence, truncated, corrupted or random,
 * makes the reader crash or read out of bounds (AddressSanitizer runs these too).
 *
 * The components are built by examples/components.mk from examples/ and
 * tests/guests/components/ (each .wit there says how its world differs).
 */
#include <stdint.h>

#include "../../support/fixture.h"
#include "wasm/component.h"
#include "wasm/component_reader.h"
#include "wasm/component_world.h"
#include "wasm/host_imports.h"
#include "wasm/module_info.h"

TestSuite(component, .timeout = 120);

/* ---- helpers ---------------------------------------------------------------------- */

typedef struct blob {
  uint8_t *bytes;
  size_t len;
} blob;

static blob read_blob(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s (built by examples/components.mk)", path);
  blob b = {NULL, 0};
  size_t cap = 0, n;
  uint8_t chunk[65536];
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > cap) {
      cap = (b.len + n) * 2;
      b.bytes = realloc(b.bytes, cap);
    }
    memcpy(b.bytes + b.len, chunk, n);
    b.len += n;
  }
  fclose(f);
  return b;
}

static blob component_file(const char *name) {
  char relative[128];
  snprintf(relative, sizeof relative, "components/%s", name);
  return read_blob(guest_path(relative));
}

/* sl__component_core_module on exactly `len` bytes of their own (so AddressSanitizer
 * sees a read past the end); the message in `err`, the core module freed. */
static sl_status parse(const uint8_t *bytes, size_t len, sl_error *err, size_t *core_len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (len) memcpy(copy, bytes, len);
  uint8_t *core = NULL;
  size_t core_size = 0;
  err->message[0] = '\0';
  sl_status status = sl__component_core_module(copy, len, "c.wasm", &core, &core_size, err);
  cr_assert(status == SL_OK || status == SL_BAD_MODULE, "status %s", sl_status_name(status));
  cr_assert(status != SL_OK || (core && core_size > 8), "a success hands back a core module");
  cr_assert(status == SL_OK || err->message[0], "a refusal says why");
  if (core_len) *core_len = core_size;
  free(core);
  free(copy);
  return status;
}

/* The message the loader refuses component `name` with (through sl_module_load_bytes,
 * the way every module is loaded), without the "c.wasm: " prefix. */
static const char *refusal(const char *name) {
  static sl_error err;
  blob b = component_file(name);
  sl_engine *engine = test_engine();
  sl_module *module = NULL;
  sl_status status = sl_module_load_bytes(engine, b.bytes, b.len, "c.wasm", &module, NULL, &err);
  cr_assert_eq(status, SL_BAD_MODULE, "%s: expected a refusal, got %s (%s)", name,
               sl_status_name(status), err.message);
  cr_assert_null(module);
  sl_engine_destroy(engine);
  free(b.bytes);
  cr_assert(strncmp(err.message, "c.wasm: ", 8) == 0, "%s", err.message);
  return err.message + 8;
}

#define EVENT "record{payload: list<u8>, metadata: list<tuple<string, string>>}"
#define PROCESS "func(input: " EVENT ") -> result<list<" EVENT ">, string>"
#define PROVIDED                                                                                   \
  "wasi:logging/logging@0.1.0-draft, wasi:config/store@0.2.0-draft, "                              \
  "wasi:keyvalue/store@0.2.0-draft2, wasi:keyvalue/atomics@0.2.0-draft2, "                         \
  "sluice:processor/outgoing-http@0.1.0, sluice:processor/types@0.1.0"

/* ---- components that load and run ------------------------------------------------- */

/* Runs `payload` with two metadata pairs through `pool`; the events that come back. */
static void run_with_meta(sl_pool *pool, const char *payload, sl_event_list *out) {
  sl_meta meta[2] = {{sl_bytes_from_cstr("content-type"), sl_bytes_from_cstr("text/plain")},
                     {sl_bytes_from_cstr("ünï"), sl_bytes_from_cstr("✓")}};
  sl_event in = {.payload = sl_bytes_from_cstr(payload), .meta = meta, .meta_count = 2};
  sl_fault fault = {0};
  cr_assert_eq(sl_pool_process(pool, &in, out, &fault), SL_OK, "%s", fault.message);
}

static bool same_bytes(sl_bytes a, sl_bytes b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

Test(component, the_jco_built_upper_processes_events_exactly_like_upper_wasm) {
  sl_engine *engine = test_engine();
  sl_module *core = load_guest(engine, example_path("upper"));
  sl_module *component = load_guest(engine, example_path("upper_component"));
  sl_pool *core_pool = new_pool(core, NULL);
  sl_pool *component_pool = new_pool(component, NULL);
  static const char *const payloads[] = {"hello", "", "MiXeD 123 ünïcode", "a\nb\tc"};
  for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
    sl_event_list a, b;
    sl_event_list_init(&a);
    sl_event_list_init(&b);
    run_with_meta(core_pool, payloads[i], &a);
    run_with_meta(component_pool, payloads[i], &b);
    cr_assert_eq(a.count, 1);
    cr_assert_eq(b.count, a.count, "payload '%s'", payloads[i]);
    cr_assert(same_bytes(a.items[0].payload, b.items[0].payload), "payload '%s': '%.*s'",
              payloads[i], (int)b.items[0].payload.len, (const char *)b.items[0].payload.ptr);
    cr_assert_eq(b.items[0].meta_count, a.items[0].meta_count);
    for (size_t m = 0; m < a.items[0].meta_count; m++) {
      cr_assert(same_bytes(a.items[0].meta[m].key, b.items[0].meta[m].key));
      cr_assert(same_bytes(a.items[0].meta[m].value, b.items[0].meta[m].value));
    }
    sl_event_list_destroy(&a);
    sl_event_list_destroy(&b);
  }
  expect_one(component_pool, "hello", "HELLO");
  sl_pool_destroy(core_pool);
  sl_pool_destroy(component_pool);
  sl_module_release(core);
  sl_module_release(component);
  sl_engine_destroy(engine);
}

Test(component, a_component_importing_every_capability_passes_the_world_check) {
  /* all_capabilities.wat imports every function of host_imports.c, so this compares every
   * component_type of that table with what jco makes of wit/. */
  blob b = component_file("all_capabilities");
  uint8_t *core = NULL;
  size_t core_len = 0;
  sl_error err = {{0}};
  cr_assert_eq(sl__component_core_module(b.bytes, b.len, "c.wasm", &core, &core_len, &err), SL_OK,
               "%s", err.message);
  sl_module_info info;
  cr_assert_eq(sl__module_info_parse(core, core_len, &info, &err), SL_OK, "%s", err.message);
  size_t table_count;
  const sl_host_import *table = sl__host_imports(&table_count);
  cr_assert_eq(info.import_count, table_count, "the guest imports the whole table");
  for (size_t i = 0; i < table_count; i++) {
    bool imported = false;
    for (size_t k = 0; k < info.import_count; k++)
      imported = imported || (strcmp(info.imports[k].module, table[i].module) == 0 &&
                              strcmp(info.imports[k].name, table[i].name) == 0);
    cr_assert(imported, "all_capabilities.wat does not import %s %s", table[i].module,
              table[i].name);
  }
  sl__module_info_free(&info);
  free(core);
  free(b.bytes);
}

Test(component, a_component_with_capability_imports_runs_them) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path("components/all_capabilities"));
  captured_log log = {.len = 0};
  sl_pool_options opts = {.node_id = "comp", .log = capture_log, .log_user = &log};
  sl_pool *pool = NULL;
  sl_fault fault = {0};
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_OK, "%s", fault.message);
  expect_one(pool, "hello from a component", "hello from a component");
  cr_assert(strstr(log.text, "hello from a component"), "the guest's log line: %s", log.text);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
}

Test(component, exports_sluice_does_not_call_are_accepted) {
  blob b = component_file("extra_export");
  sl_error err;
  cr_assert_eq(parse(b.bytes, b.len, &err, NULL), SL_OK, "%s", err.message);
  free(b.bytes);
}

/* ---- worlds that differ ----------------------------------------------------------- */

Test(component, an_interface_sluice_does_not_provide) {
  cr_assert_str_eq(refusal("unknown_interface"),
                   "component imports wasi:http/outgoing-handler@0.2.0, which Sluice does not "
                   "provide (it provides " PROVIDED ")");
}

Test(component, a_version_sluice_does_not_provide) {
  cr_assert_str_eq(refusal("wrong_version"),
                   "component imports wasi:config/store@0.2.0, a version Sluice does not provide "
                   "(it provides wasi:config/store@0.2.0-draft)");
}

Test(component, a_function_with_another_type) {
  cr_assert_str_eq(refusal("wrong_function_type"),
                   "component imports wasi:config/store@0.2.0-draft function get as "
                   "func(key: string) -> option<string>, but Sluice provides func(key: string) -> "
                   "result<option<string>, variant{upstream(string), io(string)}>");
}

Test(component, a_function_sluice_does_not_provide) {
  cr_assert_str_eq(refusal("unprovided_function"),
                   "component imports wasi:logging/logging@0.1.0-draft function flush, which "
                   "Sluice does not provide (from that interface it provides log)");
}

Test(component, a_resource_sluice_does_not_provide) {
  /* jco's dummy for the whole world imports atomics' cas, which Sluice does not have. */
  cr_assert_str_eq(refusal("dummy_world"),
                   "component imports wasi:keyvalue/atomics@0.2.0-draft2 resource cas, which "
                   "Sluice does not provide (from that interface it provides increment)");
}

Test(component, an_event_type_that_differs) {
  cr_assert_str_eq(refusal("wrong_event"),
                   "component imports sluice:processor/types@0.1.0 type event as "
                   "record{payload: string, metadata: list<tuple<string, string>>}, but Sluice's "
                   "event is " EVENT);
}

Test(component, process_with_another_type) {
  cr_assert_str_eq(refusal("wrong_process_type"),
                   "component exports process as func(input: " EVENT ") -> list<" EVENT ">, "
                   "but Sluice's processor world has process: " PROCESS);
}

Test(component, no_process_export) {
  cr_assert_str_eq(refusal("no_process"),
                   "component does not export process (it exports transform); Sluice's processor "
                   "world exports process: " PROCESS);
}

Test(component, strings_other_than_utf8_are_refused_naming_the_function) {
  cr_assert_str_eq(refusal("upper_utf16"),
                   "component lifts init with string-encoding=utf16; Sluice supports only utf8 "
                   "(the default)");
  cr_assert_str_eq(refusal("all_capabilities_utf16"),
                   "component lowers wasi:logging/logging@0.1.0-draft log with "
                   "string-encoding=utf16; Sluice supports only utf8 (the default)");
}

Test(component, the_wasi_adapter_is_refused_naming_every_import_it_adds) {
  cr_assert_str_eq(
      refusal("redact_reactor"),
      "component imports wasi:io/error@0.2.12, wasi:io/streams@0.2.12, wasi:cli/stdin@0.2.12, "
      "wasi:cli/stdout@0.2.12, wasi:cli/stderr@0.2.12, wasi:clocks/wall-clock@0.2.12, "
      "wasi:filesystem/types@0.2.12, wasi:filesystem/preopens@0.2.12, which Sluice does not "
      "provide (it provides " PROVIDED "); they are what jco's WASI preview 1 adapter (`jco new "
      "--wasi-reactor`) imports: Sluice gives WASI preview 1 to a core module itself, so load the "
      "core module instead of the component");
}

Test(component, the_cm32p2_name_scheme_is_refused) {
  cr_assert_str_eq(refusal("cm32p2"),
                   "component was built with the cm32p2 name scheme (its core module exports "
                   "cm32p2||process); Sluice needs the legacy names (exports process, init, "
                   "memory, cabi_realloc; imports named by interface and function), which `jco "
                   "embed` keeps for a module built that way but `jco embed --dummy` does not");
}

Test(component, every_interface_with_named_types_is_one_sluice_provides) {
  size_t count;
  const sl_host_import *table = sl__host_imports(&count);
  for (size_t i = 0; sl__world_type_interface(i); i++) {
    const char *interface = sl__world_type_interface(i);
    bool found = strcmp(interface, SL_WORLD_TYPES_INTERFACE) == 0;
    for (size_t k = 0; k < count; k++) found = found || strcmp(table[k].module, interface) == 0;
    cr_assert(found, "%s has named types but is not provided", interface);
  }
  for (size_t k = 0; k < count; k++)
    cr_assert_not_null(table[k].component_type, "%s %s has no component_type", table[k].module,
                       table[k].name);
}

/* ---- hand-made binaries ----------------------------------------------------------- */

static const uint8_t preamble[8] = {0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00};

/* A component: the preamble, then `n` bytes of sections. */
static blob make_component(const uint8_t *sections, size_t n) {
  blob b = {malloc(8 + n + 1), 8 + n};
  memcpy(b.bytes, preamble, 8);
  if (n) memcpy(b.bytes + 8, sections, n);
  return b;
}

static const char *parse_message(blob b) {
  static sl_error err;
  cr_assert_eq(parse(b.bytes, b.len, &err, NULL), SL_BAD_MODULE);
  free(b.bytes);
  return err.message;
}

Test(component, preamble_and_section_framing) {
  cr_assert(sl__is_component(preamble, 8));
  static const uint8_t core_module[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  cr_assert_not(sl__is_component(core_module, 8));
  cr_assert_not(sl__is_component(preamble, 7));

  cr_assert_str_eq(parse_message(make_component(NULL, 0)),
                   "c.wasm: component does not export process (it exports nothing); Sluice's "
                   "processor world exports process: " PROCESS);
  uint8_t newer[8];
  memcpy(newer, preamble, 8);
  newer[4] = 0x0e;
  cr_assert_str_eq(parse_message((blob){memcpy(malloc(8), newer, 8), 8}),
                   "c.wasm: component binary format version 0x000e; Sluice reads version 0x0d "
                   "(what current wit-component and jco write)");
  cr_assert_str_eq(parse_message(make_component((const uint8_t[]){13, 0}, 2)),
                   "c.wasm: malformed component at byte 8: unknown section id 13");
  cr_assert_str_eq(parse_message(make_component((const uint8_t[]){7, 5, 0}, 3)),
                   "c.wasm: malformed component at byte 9: section 7's size 5 runs past the end "
                   "of the component");
  /* A type section whose count claims a billion types. */
  cr_assert_str_eq(
      parse_message(make_component((const uint8_t[]){7, 5, 0x80, 0x94, 0xeb, 0xdc, 0x03}, 7)),
      "c.wasm: malformed component at byte 10: types: 1000000000 entries cannot fit "
      "in the 0 bytes left");
  /* The start section, and section bytes left over after the last entry. */
  cr_assert(strstr(parse_message(make_component((const uint8_t[]){9, 0}, 2)), "start function"));
  cr_assert_str_eq(parse_message(make_component((const uint8_t[]){7, 2, 0, 0}, 4)),
                   "c.wasm: malformed component at byte 11: 1 unread byte at the end of the "
                   "section");
}

Test(component, the_reader_checks_every_integer_and_name) {
  sl_comp_reader r;
  static const uint8_t max_u32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  sl__comp_reader_init(&r, max_u32, sizeof max_u32);
  cr_assert_eq(sl__comp_u32(&r), UINT32_MAX);
  cr_assert_not(sl__comp_failed(&r));

  static const uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
  sl__comp_reader_init(&r, too_big, sizeof too_big);
  sl__comp_u32(&r);
  cr_assert_str_eq(r.error, "integer too large or overlong");

  static const uint8_t overlong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
  sl__comp_reader_init(&r, overlong, sizeof overlong);
  sl__comp_u32(&r);
  cr_assert(sl__comp_failed(&r));

  static const uint8_t unfinished[] = {0x80, 0x80};
  sl__comp_reader_init(&r, unfinished, sizeof unfinished);
  sl__comp_u32(&r);
  cr_assert_str_eq(r.error, "integer runs past the end of its section");
  cr_assert_eq(r.error_at, 0);
  cr_assert_eq(sl__comp_u8(&r), 0, "errors are sticky");

  static const uint8_t minus_one_s33[] = {0x7f};
  sl__comp_reader_init(&r, minus_one_s33, 1);
  cr_assert_eq(sl__comp_s33(&r), -1);

  static const uint8_t bad_utf8[] = {0x02, 0xc0, 0x80}; /* an overlong NUL */
  sl__comp_reader_init(&r, bad_utf8, sizeof bad_utf8);
  sl__comp_name(&r);
  cr_assert_str_eq(r.error, "a name is not valid UTF-8");

  static const uint8_t long_name[] = {0x09, 'a', 'b'};
  sl__comp_reader_init(&r, long_name, sizeof long_name);
  sl__comp_name(&r);
  cr_assert_str_eq(r.error, "a name of 9 bytes runs past the end of its section");
}

/* Appends a u32 LEB128. */
static size_t put_u32(uint8_t *out, uint32_t v) {
  size_t n = 0;
  do {
    out[n] = v & 0x7f;
    v >>= 7;
    if (v) out[n] |= 0x80;
    n++;
  } while (v);
  return n;
}

/* A section `id` around `body`. */
static size_t put_section(uint8_t *out, uint8_t id, const uint8_t *body, size_t len) {
  size_t n = 0;
  out[n++] = id;
  n += put_u32(out + n, (uint32_t)len);
  memcpy(out + n, body, len);
  return n + len;
}

Test(component, types_nested_too_deep_are_refused) {
  /* 200 instance types, each declaring the next inside it. */
  enum { DEPTH = 200 };
  uint8_t *type = malloc(4 * DEPTH + 8), *body = malloc(4 * DEPTH + 16), *bytes;
  size_t len = 0;
  for (int i = 0; i < DEPTH; i++) {
    memmove(type + 3, type, len);
    type[0] = 0x42, type[1] = 0x01, type[2] = 0x01; /* instance, 1 declarator, a type */
    len += 3;
  }
  type[len++] = 0x42, type[len++] = 0x00; /* the innermost: an empty instance type */
  body[0] = 0x01;                         /* one type */
  memcpy(body + 1, type, len);
  bytes = malloc(len + 16);
  size_t n = put_section(bytes, 7, body, len + 1);
  const char *message = parse_message(make_component(bytes, n));
  cr_assert(strstr(message, "types nested more than 16 deep"), "%s", message);
  free(type);
  free(body);
  free(bytes);
}

Test(component, a_type_that_doubles_at_each_level_renders_in_bounded_text) {
  /* t0 = tuple<u8, u8>, t(i) = tuple<t(i-1), t(i-1)>: 2^40 leaves if written out. The types
   * interface's `event` is t39, so the check renders it and must stop early. */
  uint8_t body[1024], section[1100], all[2400];
  size_t n = 0, levels = 40;
  n += put_u32(body + n, (uint32_t)levels + 1);
  body[n++] = 0x6f, body[n++] = 0x02, body[n++] = 0x7d, body[n++] = 0x7d;
  for (uint32_t i = 1; i < levels; i++) {
    body[n++] = 0x6f, body[n++] = 0x02;
    n += put_u32(body + n, i - 1);
    n += put_u32(body + n, i - 1);
  }
  /* instance { alias outer 1 t39 (type); export "event" (type (eq 0)) } */
  body[n++] = 0x42, body[n++] = 0x02;
  body[n++] = 0x02, body[n++] = 0x03, body[n++] = 0x02, body[n++] = 0x01;
  n += put_u32(body + n, (uint32_t)levels - 1);
  body[n++] = 0x04, body[n++] = 0x00, body[n++] = 5;
  memcpy(body + n, "event", 5), n += 5;
  body[n++] = 0x03, body[n++] = 0x00, body[n++] = 0x00;
  size_t total = put_section(all, 7, body, n);
  /* import "sluice:processor/types@0.1.0" (instance (type 40)) */
  const char *interface = SL_WORLD_TYPES_INTERFACE;
  size_t m = 0;
  section[m++] = 0x01, section[m++] = 0x00;
  m += put_u32(section + m, (uint32_t)strlen(interface));
  memcpy(section + m, interface, strlen(interface)), m += strlen(interface);
  section[m++] = 0x05;
  m += put_u32(section + m, (uint32_t)levels);
  total += put_section(all + total, 10, section, m);
  static const char expected[] = "c.wasm: component imports sluice:processor/types@0.1.0 type "
                                 "event as tuple<tuple<tuple<";
  const char *message = parse_message(make_component(all, total));
  cr_assert(strncmp(message, expected, strlen(expected)) == 0, "%s", message);
}

/* ---- malformed bytes -------------------------------------------------------------- */

/* Walks the sections of a well-formed component. Returns where the sections after the
 * last non-custom one start (cutting there leaves a complete component, only trailing
 * custom sections lost); `opaque` (may be NULL) marks the contents of core modules and
 * custom sections, which the reader copies or skips without reading. */
static size_t walk_sections(blob b, bool *opaque) {
  size_t pos = 8, end = 8;
  while (pos < b.len) {
    uint8_t id = b.bytes[pos++];
    uint32_t size = 0;
    for (int shift = 0;; shift += 7) {
      uint8_t byte = b.bytes[pos++];
      size |= (uint32_t)(byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
    }
    if (opaque && (id == 0 || id == 1)) memset(opaque + pos, 1, size);
    pos += size;
    if (id != 0) end = pos;
  }
  cr_assert_eq(pos, b.len);
  return end;
}

Test(component, every_truncation_is_refused_and_nothing_is_read_past_the_end) {
  blob b = read_blob(example_path("upper_component"));
  size_t complete = walk_sections(b, NULL);
  size_t accepted = 0;
  for (size_t cut = 0; cut < b.len; cut++) {
    sl_error err;
    sl_status status = parse(b.bytes, cut, &err, NULL);
    if (status == SL_OK) {
      cr_assert_geq(cut, complete, "a component cut at byte %zu was accepted", cut);
      accepted++;
    }
  }
  /* Only the cuts between the trailing custom sections leave a whole component. */
  cr_assert_leq(accepted, 2);
  free(b.bytes);
}

/* Flips bits in every byte of component `name` the reader reads (not the contents of its
 * core modules and custom sections). Returns how many of the flips were refused. */
static size_t flip_every_byte(const char *name, size_t *tried) {
  blob b = component_file(name);
  bool *opaque = calloc(b.len, sizeof *opaque);
  walk_sections(b, opaque);
  size_t refused = 0;
  static const uint8_t masks[] = {0xff, 0x01, 0x80, 0x40};
  for (size_t i = 8; i < b.len; i++) {
    if (opaque[i]) continue;
    for (size_t k = 0; k < sizeof masks; k++) {
      sl_error err;
      b.bytes[i] ^= masks[k];
      refused += parse(b.bytes, b.len, &err, NULL) == SL_BAD_MODULE;
      b.bytes[i] ^= masks[k];
      (*tried)++;
    }
  }
  free(opaque);
  free(b.bytes);
  return refused;
}

Test(component, flipped_bits_never_crash_the_reader) {
  /* Components Sluice refuses stay refused, whatever the flip. */
  static const char *const refused_names[] = {"dummy_world", "redact_reactor", "wrong_event"};
  for (size_t i = 0; i < sizeof refused_names / sizeof refused_names[0]; i++) {
    size_t tried = 0, refused = flip_every_byte(refused_names[i], &tried);
    cr_assert_eq(refused, tried, "%s: %zu of %zu flips refused", refused_names[i], refused, tried);
  }
  /* One Sluice accepts: most flips break a structure, a name or a type. The rest change
   * what the check does not look at (the wiring of wit-component's shim modules, indices
   * that name an equal item) and leave a component Sluice runs as before. */
  size_t tried = 0, refused = flip_every_byte("all_capabilities", &tried);
  cr_assert_gt(refused * 10, tried * 8, "%zu of %zu flips refused", refused, tried);
}

Test(component, random_bytes_after_the_preamble_are_refused) {
  uint64_t state = 0x9e3779b97f4a7c15u; /* xorshift, fixed seed: the same inputs every run */
  uint8_t bytes[8 + 600];
  memcpy(bytes, preamble, 8);
  for (int round = 0; round < 20000; round++) {
    size_t len = 8 + (size_t)(round % 600);
    for (size_t i = 8; i < len; i++) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      bytes[i] = (uint8_t)state;
      /* Every fourth input starts with a plausible section id, to get past the first byte. */
      if (i == 8 && round % 4 == 0) bytes[i] = (uint8_t)(state % 13);
    }
    sl_error err;
    cr_assert_eq(parse(bytes, len, &err, NULL), SL_BAD_MODULE, "round %d", round);
  }
}
