# bench/bench.mk - `make bench`: builds the benchmark program and its Wasm guests into
# $(BUILD)/bench/ and runs every benchmark once (under a minute). docs/benchmarks.md
# says what each row measures and records a run.
#
#   make bench                          the full run
#   make bench BENCH_ARGS=--quick       fewer iterations, to check that everything works
#   make bench BENCH_ARGS="--repeats 11"
#
# The native side of the kernel comparison is bench/kernel.c compiled by plain `gcc -O2`;
# the Wasm side is the same file compiled by clang for wasm32-wasi (clang also runs
# binaryen's wasm-opt on the result when it is installed, as it is for users).

BENCH_DIR        := $(BUILD)/bench
BENCH_NATIVE_CC  ?= gcc
BENCH_WASM_CC    ?= clang
BENCH_WASM_FLAGS := --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -Werror \
                    -Wl,--strip-all
BENCH_ARGS       ?=

BENCH_SRCS   := bench/bench_main.c bench/bench_event.c bench/bench_kernel.c bench/bench_startup.c
BENCH_OBJS   := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_KERNEL := $(BENCH_DIR)/kernel_native.o
BENCH_GUESTS := $(BENCH_DIR)/passthrough.wasm $(BENCH_DIR)/kernel.wasm $(BENCH_DIR)/stats.wasm \
                $(BENCH_DIR)/calls.wasm

$(BENCH_KERNEL): bench/kernel.c bench/kernel.h
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) -O2 -Wall -Wextra -Werror -c $< -o $@

$(BENCH_DIR)/sluice_bench: $(BENCH_OBJS) $(BENCH_KERNEL) $(BUILD)/libsluice.a src/wasm/host_symbols.list
	$(CC) $(LDFLAGS_COMMON) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(BENCH_KERNEL) $(BUILD)/libsluice.a $(LIBS)

$(BENCH_DIR)/passthrough.wasm: bench/guests/passthrough.wat
	@mkdir -p $(dir $@)
	wat2wasm $< -o $@

$(BENCH_DIR)/kernel.wasm: bench/guests/kernel_guest.c bench/kernel.c bench/kernel.h bench/guests/guest_abi.h
	@mkdir -p $(dir $@)
	$(BENCH_WASM_CC) $(BENCH_WASM_FLAGS) bench/guests/kernel_guest.c bench/kernel.c -o $@

$(BENCH_DIR)/stats.wasm: bench/guests/stats_guest.c bench/guests/guest_abi.h
	@mkdir -p $(dir $@)
	$(BENCH_WASM_CC) $(BENCH_WASM_FLAGS) $< -o $@

$(BENCH_DIR)/calls.wasm: bench/guests/calls_guest.c bench/guests/guest_abi.h
	@mkdir -p $(dir $@)
	$(BENCH_WASM_CC) $(BENCH_WASM_FLAGS) $< -o $@

bench: $(BENCH_DIR)/sluice_bench $(BENCH_GUESTS)
	$(BENCH_DIR)/sluice_bench --guests $(BENCH_DIR) --home $(BENCH_DIR)/home \
	  --v8-script bench/v8_kernel.mjs $(BENCH_ARGS)

-include $(BENCH_OBJS:.o=.d)
