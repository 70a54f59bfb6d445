# tests/guests/guests.mk - builds the test guest modules, included by the top Makefile.
#
# `make guests` turns every tests/guests/NAME.wat (wat2wasm) and NAME.c (clang, wasm32-wasi
# reactor) into $(BUILD)/guests/NAME.wasm. The tests find them through SLUICE_GUESTS.
# Every variable here starts with GUESTS_ so that it cannot clash with the including file.

GUESTS_SRC_DIR := tests/guests
GUESTS_OUT_DIR := $(or $(BUILD),build)/guests

GUESTS_WAT2WASM ?= wat2wasm
GUESTS_CLANG    ?= clang
GUESTS_CFLAGS   := --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -Werror

GUESTS_WAT  := $(wildcard $(GUESTS_SRC_DIR)/*.wat)
GUESTS_C    := $(wildcard $(GUESTS_SRC_DIR)/*.c)
GUESTS_WASM := $(GUESTS_WAT:$(GUESTS_SRC_DIR)/%.wat=$(GUESTS_OUT_DIR)/%.wasm) \
               $(GUESTS_C:$(GUESTS_SRC_DIR)/%.c=$(GUESTS_OUT_DIR)/%.wasm)

.PHONY: guests
guests: $(GUESTS_WASM)

# The toolchains come from scripts/bootstrap when the top Makefile defines its stamp.
$(GUESTS_OUT_DIR)/%.wasm: $(GUESTS_SRC_DIR)/%.wat $(GUESTS_SRC_DIR)/guests.mk | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(GUESTS_WAT2WASM) $< -o $@

# Every C guest includes guest_abi.h, so an edit to it rebuilds them all.
$(GUESTS_OUT_DIR)/%.wasm: $(GUESTS_SRC_DIR)/%.c $(GUESTS_SRC_DIR)/guest_abi.h \
                          $(GUESTS_SRC_DIR)/guests.mk | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(GUESTS_CLANG) $(GUESTS_CFLAGS) $< -o $@
