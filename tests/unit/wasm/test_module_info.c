/*
 * The section reader takes untrusted bytes: every truncation and every flipped byte of a
 * real module must give a clean answer (parsed or SL_BAD_MODULE), never a crash or an
 * out-of-bounds read (AddressSanitizer checks the latter in `make asan`).
 */
#include "core/files.h"
#include "../../support/fixture.h"
#include "wasm/module_info.h"
#include "wasm/toolchain.h"

static uint8_t *read_guest(const char *name, size_t *len) {
  uint8_t *data = NULL;
  sl_error err;
  cr_assert_eq(sl__read_file(guest_path(name), &data, len, &err), SL_OK, "%s", err.message);
  return data;
}

Test(module_info, reads_imports_and_exports_with_signatures) {
  size_t len;
  uint8_t *wasm = read_guest("wasi", &len);
  sl_module_info info;
  sl_error err;
  cr_assert_eq(sl__module_info_parse(wasm, len, &info, &err), SL_OK, "%s", err.message);
  const sl_wasm_export *process = sl__module_info_export(&info, "process");
  cr_assert_not_null(process);
  cr_assert_str_eq(process->sig, "iiii:i");
  bool saw_fd_write = false;
  for (size_t i = 0; i < info.import_count; i++)
    if (strcmp(info.imports[i].name, "fd_write") == 0) {
      saw_fd_write = true;
      cr_assert_str_eq(info.imports[i].module, "wasi_snapshot_preview1");
      cr_assert_str_eq(info.imports[i].sig, "iiii:i");
    }
  cr_assert(saw_fd_write);
  sl__module_info_free(&info);
  free(wasm);
}

Test(module_info, every_truncation_is_handled) {
  size_t len;
  uint8_t *wasm = read_guest("traps", &len);
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *copy = malloc(cut ? cut : 1);
    memcpy(copy, wasm, cut);
    sl_module_info info;
    sl_status status = sl__module_info_parse(copy, cut, &info, NULL);
    cr_assert(status == SL_OK || status == SL_BAD_MODULE);
    if (status == SL_OK) sl__module_info_free(&info);
    free(copy);
  }
  free(wasm);
}

Test(module_info, flipped_bytes_are_handled) {
  size_t len;
  uint8_t *wasm = read_guest("wild", &len);
  uint8_t *copy = malloc(len);
  for (size_t at = 8; at < len; at++) {
    for (int bit = 0; bit < 8; bit += 3) {
      memcpy(copy, wasm, len);
      copy[at] ^= (uint8_t)(1u << bit);
      sl_module_info info;
      sl_status status = sl__module_info_parse(copy, len, &info, NULL);
      cr_assert(status == SL_OK || status == SL_BAD_MODULE);
      if (status == SL_OK) sl__module_info_free(&info);
    }
  }
  free(copy);
  free(wasm);
}
