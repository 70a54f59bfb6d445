# examples/examples.mk - builds the example processors: `make examples` puts each one in
# $(BUILD)/examples/NAME.wasm. Included by the top-level Makefile, which sets BUILD and
# BOOTSTRAP_STAMP (the bootstrap installs clang, wasi-libc, rustc's wasm32 target and the
# pinned AssemblyScript compiler).
#
# C processors:     examples/processors/NAME/NAME.c  ->  NAME.wasm        (sdk/c/sluice.h)
# Rust processors:  examples/processors/upper-rust   ->  upper_rust.wasm  (sdk/rust/sluice.rs)
#                   examples/processors/counter      ->  counter.wasm
# AssemblyScript:   examples/processors/upper-as     ->  upper_as.wasm    (sdk/assemblyscript)
#                   examples/processors/hello-log    ->  hello-log.wasm
# Components:       examples/components.mk (jco-built components of some of these)
#
# kv-enrich, http-enrich, counter and hello-log use capabilities (docs/capabilities/);
# examples/pipelines/ has a pipeline that grants what each needs.

EXAMPLES_SRC       := examples/processors
EXAMPLES_OUT       := $(BUILD)/examples

EXAMPLES_CC        ?= clang
EXAMPLES_CFLAGS    ?= --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -Werror
# wasi-libc ships with DWARF; dropping it keeps the modules small (the name section stays).
EXAMPLES_LDFLAGS   ?= -Wl,--strip-debug

# Debian's rustc has the wasm32 target; a rustup `rustc` earlier on PATH may not.
RUSTC_WASM         ?= /usr/bin/rustc
EXAMPLES_RUSTFLAGS ?= --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
                      -O -C strip=debuginfo

EXAMPLES_AS_SDK    := sdk/assemblyscript
EXAMPLES_ASC       := $(EXAMPLES_AS_SDK)/node_modules/.bin/asc
EXAMPLES_ASFLAGS   ?= --config $(EXAMPLES_AS_SDK)/asconfig.json

EXAMPLES_C_NAMES   := upper filter split redact passthrough logfilter kv-enrich http-enrich
EXAMPLES_WASM      := $(EXAMPLES_C_NAMES:%=$(EXAMPLES_OUT)/%.wasm) \
                      $(EXAMPLES_OUT)/upper_rust.wasm $(EXAMPLES_OUT)/upper_as.wasm \
                      $(EXAMPLES_OUT)/counter.wasm $(EXAMPLES_OUT)/hello-log.wasm

.PHONY: examples
examples: $(EXAMPLES_WASM)

# One rule per C example: examples/processors/NAME/NAME.c -> $(BUILD)/examples/NAME.wasm.
define EXAMPLES_C_RULE
$(EXAMPLES_OUT)/$(1).wasm: $(EXAMPLES_SRC)/$(1)/$(1).c $(wildcard $(EXAMPLES_SRC)/$(1)/*.h) sdk/c/sluice.h | $(BOOTSTRAP_STAMP)
	@mkdir -p $$(dir $$@)
	$$(EXAMPLES_CC) $$(EXAMPLES_CFLAGS) -Isdk/c $$< -o $$@ $$(EXAMPLES_LDFLAGS)
endef
$(foreach name,$(EXAMPLES_C_NAMES),$(eval $(call EXAMPLES_C_RULE,$(name))))

$(EXAMPLES_OUT)/upper_rust.wasm: $(EXAMPLES_SRC)/upper-rust/upper.rs sdk/rust/sluice.rs \
                                 | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(RUSTC_WASM) $(EXAMPLES_RUSTFLAGS) $< -o $@

$(EXAMPLES_OUT)/counter.wasm: $(EXAMPLES_SRC)/counter/counter.rs sdk/rust/sluice.rs \
                              | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(RUSTC_WASM) $(EXAMPLES_RUSTFLAGS) $< -o $@

$(EXAMPLES_OUT)/upper_as.wasm: $(EXAMPLES_SRC)/upper-as/upper.ts $(EXAMPLES_AS_SDK)/sluice.ts \
                               $(EXAMPLES_AS_SDK)/asconfig.json | $(BOOTSTRAP_STAMP) $(EXAMPLES_ASC)
	@mkdir -p $(dir $@)
	$(EXAMPLES_ASC) $< $(EXAMPLES_ASFLAGS) -o $@

$(EXAMPLES_OUT)/hello-log.wasm: $(EXAMPLES_SRC)/hello-log/hello.ts $(EXAMPLES_AS_SDK)/sluice.ts \
                                $(EXAMPLES_AS_SDK)/asconfig.json | $(BOOTSTRAP_STAMP) $(EXAMPLES_ASC)
	@mkdir -p $(dir $@)
	$(EXAMPLES_ASC) $< $(EXAMPLES_ASFLAGS) -o $@

# Order-only above: npm gives installed files old timestamps, so asc must never look stale.
# This runs only when node_modules is missing although the bootstrap stamp exists.
$(EXAMPLES_ASC):
	cd $(EXAMPLES_AS_SDK) && npm ci --no-audit --no-fund --silent

# Components built with jco from the modules above.
include examples/components.mk
