# Sluice build. `make` builds build/sluice; `make test` runs every test; `make asan` runs
# them again under AddressSanitizer and UBSan; `make examples` builds the example
# processors; `make bench` runs the benchmarks; `make demo` runs the README's demo.
# Every entry point first runs scripts/bootstrap (idempotent) so a fresh machine works.

BUILD    ?= build
CC       ?= cc
SANITIZE ?=
V        ?= 0

CFLAGS_COMMON := -std=gnu11 -g -O2 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
                 -fPIC -pthread -Iinclude -Isrc -I/usr/include/postgresql -D_GNU_SOURCE $(SANITIZE)
# --undefined pulls src/core/lsan_suppressions.o out of the archive although nothing calls it.
LDFLAGS_COMMON := -pthread $(SANITIZE) -Wl,--dynamic-list=src/wasm/host_symbols.list \
                  -Wl,--undefined=__lsan_default_suppressions
LIBS     := -lnats -lmosquitto -lhiredis -lrdkafka -lpq -lh2o -luv -lcurl -lfyaml -ljansson -lsqlite3 -lssl -lcrypto -ldl -lm

LIB_SRCS := $(wildcard src/core/*.c src/wasm/*.c src/caps/*.c src/config/*.c src/connectors/*.c src/connectors/*/*.c \
                       src/daemon/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/wasm/guest_prelude_blob.o
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/unit/*.c tests/unit/*/*.c tests/e2e/*.c tests/support/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)

BOOTSTRAP_STAMP := build/.bootstrap-ok

.PHONY: all bootstrap test test-quick reliability asan examples guests bench demo docs clean format

all: $(BUILD)/sluice

$(BOOTSTRAP_STAMP): scripts/bootstrap $(wildcard sdk/assemblyscript/package*.json tools/jco/package*.json)
	@mkdir -p $(dir $@)
	./scripts/bootstrap
	@touch $@

bootstrap: $(BOOTSTRAP_STAMP)

$(BUILD)/obj/%.o: %.c | $(BOOTSTRAP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -MMD -MP -c $< -o $@

# The guest prelude header is embedded in the binary (codegen.c writes it into every shim).
$(BUILD)/obj/src/wasm/guest_prelude_blob.o: src/wasm/guest_prelude_blob.S src/wasm/guest_prelude.h
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluice: $(CLI_OBJS) $(BUILD)/libsluice.a src/wasm/host_symbols.list
	$(CC) $(LDFLAGS_COMMON) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libsluice.a $(LIBS)

$(BUILD)/unit_tests: $(TEST_OBJS) $(BUILD)/libsluice.a src/wasm/host_symbols.list
	$(CC) $(LDFLAGS_COMMON) $(LDFLAGS) -o $@ $(TEST_OBJS) $(BUILD)/libsluice.a $(LIBS) -lcriterion

include tests/guests/guests.mk
include examples/examples.mk
include bench/bench.mk

# The tests use their own SLUICE_HOME so they never touch the user's cache.
TEST_ENV = SLUICE_HOME=$(abspath $(BUILD))/test-home SLUICE_BIN=$(abspath $(BUILD))/sluice \
           SLUICE_GUESTS=$(abspath $(BUILD))/guests SLUICE_EXAMPLES=$(abspath $(BUILD))/examples \
           LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0

test: $(BUILD)/sluice $(BUILD)/unit_tests guests examples
	rm -rf $(BUILD)/test-home
	$(TEST_ENV) $(BUILD)/unit_tests $(TEST_ARGS)

# The delivery proofs at full counts (100 kills of the host, and so on): the tests in the
# `reliability` suite, which `make test` runs at reduced counts. Takes a few minutes.
reliability: $(BUILD)/sluice $(BUILD)/unit_tests guests examples
	rm -rf $(BUILD)/test-home
	SLUICE_RELIABILITY=full $(TEST_ENV) $(BUILD)/unit_tests --filter 'reliability/*' $(TEST_ARGS)

asan:
	$(MAKE) BUILD=build/asan SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

demo: $(BUILD)/sluice examples
	@echo '$$ sluice run examples/pipelines/demo.yaml'
	@SLUICE_EXAMPLES=$(abspath $(BUILD))/examples $(BUILD)/sluice run examples/pipelines/demo.yaml

# docs/reference/node-types.md is generated from the settings tables the loader uses.
docs: $(BUILD)/sluice
	$(BUILD)/sluice types --markdown > docs/reference/node-types.md
	scripts/connector-docs $(BUILD)/sluice

clean:
	rm -rf build

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(TEST_SRCS) $(wildcard include/sluice/*.h src/*/*.h)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d)
