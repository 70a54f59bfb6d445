# examples/components.mk - WebAssembly components built with jco, included by
# examples/examples.mk (which sets EXAMPLES_OUT; the top Makefile sets BUILD and
# BOOTSTRAP_STAMP). Every variable here starts with COMPONENTS_.
#
#   $(BUILD)/examples/upper_component.wasm   upper.wasm wrapped as a component for the
#                                            processor world: `jco embed --wit wit -n
#                                            processor`, then `jco new`. Sluice loads it as
#                                            it is (src/wasm/component.c).
#   $(BUILD)/guests/components/NAME.wasm     the components the tests load
#                                            (tests/guests/components/): one that imports
#                                            every capability, and worlds that differ from
#                                            Sluice's, each refused with its own message.
#
# jco is pinned in tools/jco (1.35.0, with @bytecodealliance/preview2-shim held at 0.25.0
# because jco 1.35.0's newer shim breaks `jco embed`).

COMPONENTS_JCO_DIR  := tools/jco
COMPONENTS_JCO      := $(COMPONENTS_JCO_DIR)/node_modules/.bin/jco
COMPONENTS_WAT2WASM ?= wat2wasm
COMPONENTS_WORLD    := $(wildcard wit/*.wit wit/deps/*/*.wit)
COMPONENTS_TMP      := $(BUILD)/jco
COMPONENTS_TESTS    := tests/guests/components
COMPONENTS_TEST_OUT := $(BUILD)/guests/components

COMPONENTS_TEST_NAMES := all_capabilities all_capabilities_utf16 unknown_interface wrong_version \
                         wrong_function_type unprovided_function no_process extra_export \
                         wrong_process_type wrong_event upper_utf16 redact_reactor dummy_world \
                         cm32p2
COMPONENTS_TEST_WASM  := $(COMPONENTS_TEST_NAMES:%=$(COMPONENTS_TEST_OUT)/%.wasm)

.PHONY: examples guests
examples: $(EXAMPLES_OUT)/upper_component.wasm
guests: $(COMPONENTS_TEST_WASM)

# $(call COMPONENTS_WRAP,CORE,WIT,EMBED_FLAGS,NEW_FLAGS): CORE embedded with the
# `processor` world of WIT (a folder or one file), then made a component at $@. The
# embedded module goes to $(COMPONENTS_TMP), named after $@ so that targets never share it.
define COMPONENTS_WRAP
	@mkdir -p $(dir $@) $(COMPONENTS_TMP)
	$(COMPONENTS_JCO) embed --wit $(2) -n processor $(3) $(1) -o $(COMPONENTS_TMP)/$(subst /,_,$@)
	$(COMPONENTS_JCO) new $(4) $(COMPONENTS_TMP)/$(subst /,_,$@) -o $@
endef

# $(call COMPONENTS_DUMMY,WIT): jco's dummy module for WIT's `processor` world, as a
# component at $@ (its core module uses the cm32p2 names).
define COMPONENTS_DUMMY
	@mkdir -p $(dir $@) $(COMPONENTS_TMP)
	$(COMPONENTS_JCO) embed --dummy --wit $(1) -n processor -o $(COMPONENTS_TMP)/$(subst /,_,$@)
	$(COMPONENTS_JCO) new $(COMPONENTS_TMP)/$(subst /,_,$@) -o $@
endef

# The example.
$(EXAMPLES_OUT)/upper_component.wasm: $(EXAMPLES_OUT)/upper.wasm $(COMPONENTS_WORLD) \
                                      | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,wit,,)

# Test components whose core module is NAME.wat and whose world is NAME.wit. Static
# pattern rules: guests.mk's pattern rule would otherwise turn NAME.wat into NAME.wasm.
COMPONENTS_OWN_WORLD := unknown_interface wrong_version wrong_function_type \
                        unprovided_function no_process extra_export

$(COMPONENTS_TMP)/core/%.wasm: $(COMPONENTS_TESTS)/%.wat | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(COMPONENTS_WAT2WASM) $< -o $@

$(COMPONENTS_OWN_WORLD:%=$(COMPONENTS_TEST_OUT)/%.wasm): $(COMPONENTS_TEST_OUT)/%.wasm: \
    $(COMPONENTS_TMP)/core/%.wasm $(COMPONENTS_TESTS)/%.wit | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,$(word 2,$^),,)

# Every capability, against the real world; and the same with utf16 strings.
$(COMPONENTS_TEST_OUT)/all_capabilities.wasm: $(COMPONENTS_TMP)/core/all_capabilities.wasm \
                                              $(COMPONENTS_WORLD) | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,wit,,)

$(COMPONENTS_TEST_OUT)/all_capabilities_utf16.wasm: $(COMPONENTS_TMP)/core/all_capabilities.wasm \
                                                    $(COMPONENTS_WORLD) | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,wit,--string-encoding utf16,)

# Worlds whose differences lower to upper.wasm's core signatures.
$(COMPONENTS_TEST_OUT)/wrong_process_type.wasm $(COMPONENTS_TEST_OUT)/wrong_event.wasm: \
    $(COMPONENTS_TEST_OUT)/%.wasm: $(EXAMPLES_OUT)/upper.wasm $(COMPONENTS_TESTS)/%.wit \
    | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,$(word 2,$^),,)

$(COMPONENTS_TEST_OUT)/upper_utf16.wasm: $(EXAMPLES_OUT)/upper.wasm $(COMPONENTS_WORLD) \
                                         | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,wit,--string-encoding utf16,)

# redact.wasm imports WASI preview 1 (fd_write): jco wraps it only with its adapter,
# which imports WASI preview 2 interfaces Sluice does not provide.
$(COMPONENTS_TEST_OUT)/redact_reactor.wasm: $(EXAMPLES_OUT)/redact.wasm $(COMPONENTS_WORLD) \
                                            | $(COMPONENTS_JCO)
	$(call COMPONENTS_WRAP,$<,wit,,--wasi-reactor)

$(COMPONENTS_TEST_OUT)/dummy_world.wasm: $(COMPONENTS_WORLD) | $(COMPONENTS_JCO)
	$(call COMPONENTS_DUMMY,wit)

$(COMPONENTS_TEST_OUT)/cm32p2.wasm: $(COMPONENTS_TESTS)/cm32p2.wit | $(COMPONENTS_JCO)
	$(call COMPONENTS_DUMMY,$<)

# Order-only above, as for asc: npm gives installed files old timestamps. `npm install
# --no-save` installs exactly what package-lock.json pins without rewriting it; `npm ci`
# refuses a lock file that lacks other platforms' optional packages, which is what a
# registry mirror without them produces.
$(COMPONENTS_JCO): | $(BOOTSTRAP_STAMP)
	cd $(COMPONENTS_JCO_DIR) && npm install --no-save --no-audit --no-fund --silent
