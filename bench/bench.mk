# bench/bench.mk - `make bench`: builds the benchmark program and its Wasm guests into
# $(BUILD)/bench/ and runs every benchmark once: the engine benchmarks (about 20 s), then
# the pipeline benchmarks (bench/pipeline/run.sh, about 1.5 min), then the control-plane
# benchmark (bench/daemon/run.sh, about 30 s). docs/benchmarks.md says
# what each row measures and records a run.
#
#   make bench                          the full run
#   make bench BENCH_ARGS=--quick       fewer iterations, to check that everything works
#   make bench BENCH_ARGS="--repeats 11"
#   make bench-pipeline                 only the pipeline benchmarks (bench/pipeline/run.sh)
#   make bench-pipeline BENCH_PIPELINE_ARGS="--quick"    or "--only http --http-duration 10"
#   make bench-daemon                   only the control-plane benchmark (bench/daemon/run.sh)
#   make bench-daemon BENCH_DAEMON_ARGS="--quick"        or "--only swap --duration 10"
#   make bench-brokers                  only the JetStream benchmark (bench/brokers/run.sh)
#   make bench-brokers BENCH_BROKERS_ARGS="--quick"      or "--events 500000 --repeats 5"
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

# Pipeline benchmarks: whole `sluice run` processes (NDJSON, generate, HTTP) against a
# native program or a pipeline without the Wasm node, measured in the same run. The tools
# are plain gcc -O2 programs; the NDJSON input (1M lines, ~85 bytes each) is generated
# once, deterministically. Needs wrk and h2load (scripts/bootstrap installs them).
BENCH_PIPE_DIR    := $(BENCH_DIR)/pipeline
BENCH_PIPE_CFLAGS := -O2 -Wall -Wextra -Werror
BENCH_PIPE_TOOLS  := $(BENCH_PIPE_DIR)/measure $(BENCH_PIPE_DIR)/native_logfilter \
                     $(BENCH_PIPE_DIR)/logs.ndjson
BENCH_PIPELINE_ARGS ?=
BENCH_PIPE_DEPS   := $(BUILD)/sluice $(BENCH_PIPE_TOOLS) $(EXAMPLES_OUT)/logfilter.wasm \
                     $(EXAMPLES_OUT)/passthrough.wasm
BENCH_PIPE_RUN     = bench/pipeline/run.sh --sluice $(BUILD)/sluice --examples $(EXAMPLES_OUT) \
                     --tools $(BENCH_PIPE_DIR) --work $(BENCH_PIPE_DIR)/run $(BENCH_PIPELINE_ARGS)

$(BENCH_PIPE_DIR)/measure: bench/pipeline/measure.c
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) $(BENCH_PIPE_CFLAGS) $< -o $@

$(BENCH_PIPE_DIR)/gen_ndjson: bench/pipeline/gen_ndjson.c
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) $(BENCH_PIPE_CFLAGS) $< -o $@

$(BENCH_PIPE_DIR)/native_logfilter: bench/pipeline/native_logfilter.c \
                                    examples/processors/logfilter/logfilter_transform.h
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) $(BENCH_PIPE_CFLAGS) $< -o $@

$(BENCH_PIPE_DIR)/logs.ndjson: $(BENCH_PIPE_DIR)/gen_ndjson
	$< 1000000 > $@.tmp && mv $@.tmp $@

# Control-plane benchmark: a daemon (`sluice up`) started by bench/daemon/run.sh with a
# temporary SLUICE_HOME; swap_bench times deploy -> first event (against `sluice run`) and
# the longest output gap during module swaps under HTTP load and on a generate pipeline.
# swap_bench is plain C over libcurl and jansson.
BENCH_DAEMON_DIR  := $(BENCH_DIR)/daemon
BENCH_DAEMON_ARGS ?=
BENCH_DAEMON_DEPS := $(BUILD)/sluice $(BENCH_DAEMON_DIR)/swap_bench \
                     $(EXAMPLES_OUT)/passthrough.wasm $(EXAMPLES_OUT)/upper.wasm
BENCH_DAEMON_RUN   = bench/daemon/run.sh --sluice $(BUILD)/sluice --examples $(EXAMPLES_OUT) \
                     --tool $(BENCH_DAEMON_DIR)/swap_bench --work $(BENCH_DAEMON_DIR)/run \
                     $(BENCH_DAEMON_ARGS)

$(BENCH_DAEMON_DIR)/swap_bench: bench/daemon/swap_bench.c
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) $(BENCH_PIPE_CFLAGS) -std=gnu11 -pthread $< -o $@ -lcurl -ljansson

# Broker benchmark: jetstream -> passthrough -> jetstream under `sluice run` against a
# plain nats.c consume-publish-ack program (js_bench native), same nats-server, same run.
BENCH_BROKERS_DIR  := $(BENCH_DIR)/brokers
BENCH_BROKERS_ARGS ?=
BENCH_BROKERS_DEPS := $(BUILD)/sluice $(BENCH_BROKERS_DIR)/js_bench $(EXAMPLES_OUT)/passthrough.wasm
BENCH_BROKERS_RUN   = bench/brokers/run.sh --sluice $(BUILD)/sluice --examples $(EXAMPLES_OUT) \
                      --tool $(BENCH_BROKERS_DIR)/js_bench --work $(BENCH_BROKERS_DIR)/run \
                      $(BENCH_BROKERS_ARGS)

$(BENCH_BROKERS_DIR)/js_bench: bench/brokers/js_bench.c
	@mkdir -p $(dir $@)
	$(BENCH_NATIVE_CC) $(BENCH_PIPE_CFLAGS) -std=gnu11 $< -o $@ -lnats

.PHONY: bench-brokers
bench-brokers: $(BENCH_BROKERS_DEPS)
	$(BENCH_BROKERS_RUN)

bench: $(BENCH_DIR)/sluice_bench $(BENCH_GUESTS) $(BENCH_PIPE_DEPS) $(BENCH_DAEMON_DEPS) \
       $(BENCH_BROKERS_DEPS)
	$(BENCH_DIR)/sluice_bench --guests $(BENCH_DIR) --home $(BENCH_DIR)/home \
	  --v8-script bench/v8_kernel.mjs $(BENCH_ARGS)
	$(BENCH_PIPE_RUN)
	$(BENCH_DAEMON_RUN)
	$(BENCH_BROKERS_RUN)

# The pipeline benchmarks alone. `make bench` runs the same script after the engine
# benchmarks, in one recipe, so the two never share the CPUs even under make -j.
.PHONY: bench-pipeline
bench-pipeline: $(BENCH_PIPE_DEPS)
	$(BENCH_PIPE_RUN)

# The control-plane benchmark alone (also the last step of `make bench`).
.PHONY: bench-daemon
bench-daemon: $(BENCH_DAEMON_DEPS)
	$(BENCH_DAEMON_RUN)

-include $(BENCH_OBJS:.o=.d)
