#!/usr/bin/env bash
# bench/brokers/run.sh - the JetStream benchmark (`make bench-brokers`): events/s of
# jetstream -> passthrough.wasm -> jetstream under `sluice run`, against js_bench's
# `native` mode, a plain nats.c program doing the same consume-publish-ack cycle, on the
# same nats-server in the same run. The server is started here on a free loopback port
# with its store in --work, and stopped by its PID.
#
#   run.sh --sluice BIN --examples DIR --tool JS_BENCH --work DIR
#          [--events N] [--batch B] [--size BYTES] [--repeats R] [--quick]
#
# Each repeat loads N messages into BENCH_IN, then times the drain into BENCH_OUT, once
# natively and once through Sluice (alternating, fresh streams each time). Prints every
# repeat and the median ratio sluice/native. docs/benchmarks.md ("Brokers") records a run.
set -euo pipefail

SLUICE='' EXAMPLES='' TOOL='' WORK='' EVENTS=200000 BATCH=256 SIZE=100 REPEATS=3
while [ $# -gt 0 ]; do
  case "$1" in
  --sluice) SLUICE=$2; shift 2 ;;
  --examples) EXAMPLES=$2; shift 2 ;;
  --tool) TOOL=$2; shift 2 ;;
  --work) WORK=$2; shift 2 ;;
  --events) EVENTS=$2; shift 2 ;;
  --batch) BATCH=$2; shift 2 ;;
  --size) SIZE=$2; shift 2 ;;
  --repeats) REPEATS=$2; shift 2 ;;
  --quick) EVENTS=20000; REPEATS=1; shift ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in SLUICE EXAMPLES TOOL WORK; do
  [ -n "${!v}" ] || { echo "run.sh: --$(tr '[:upper:]' '[:lower:]' <<<"$v") is required" >&2; exit 2; }
done
command -v nats-server >/dev/null || { echo "run.sh: nats-server is not installed (scripts/bootstrap)" >&2; exit 1; }

abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
SLUICE=$(abs "$SLUICE")
TOOL=$(abs "$TOOL")
PASSTHROUGH=$(abs "$EXAMPLES/passthrough.wasm")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
export SLUICE_HOME="$WORK/home"
rm -rf "$WORK/store" && mkdir -p "$WORK/store" "$SLUICE_HOME"

SERVER_PID='' HOST_PID=''
cleanup() {
  [ -z "$HOST_PID" ] || kill -9 "$HOST_PID" 2>/dev/null || true
  [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; } || true
}
trap cleanup EXIT

# A free port: nats-server refuses a taken one, so try until one starts and answers.
for attempt in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 40000))
  nats-server -js -sd "$WORK/store" -a 127.0.0.1 -p "$PORT" >"$WORK/nats-server.log" 2>&1 &
  SERVER_PID=$!
  URL="nats://127.0.0.1:$PORT"
  for _ in $(seq 50); do
    "$TOOL" setup "$URL" 2>/dev/null && break 2
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=''
done
[ -n "$SERVER_PID" ] || { echo "run.sh: nats-server did not start (see $WORK/nats-server.log)" >&2; exit 1; }

cat >"$WORK/pipeline.yaml" <<YAML
name: bench-jetstream
batch_size: $BATCH
nodes:
  - {id: in, type: jetstream, url: '$URL', stream: BENCH_IN, durable: sluice}
  - {id: pass, type: wasm, module: '$PASSTHROUGH', inputs: [in]}
  - {id: out, type: jetstream, url: '$URL', subject: bench.out, inputs: [pass]}
YAML

rate() { sed -n 's/.*events_per_sec=\([0-9]*\).*/\1/p' <<<"$1"; }

run_sluice() { # N -> prints js_bench wait's line
  "$TOOL" setup "$URL"
  "$TOOL" load "$URL" "$1" "$SIZE"
  "$SLUICE" run "$WORK/pipeline.yaml" >"$WORK/sluice.out" 2>"$WORK/sluice.err" &
  HOST_PID=$!
  "$TOOL" wait "$URL" "$1"
  kill "$HOST_PID" && wait "$HOST_PID" || { echo "run.sh: sluice run failed:" >&2; cat "$WORK/sluice.err" >&2; exit 1; }
  HOST_PID=''
}

run_native() {
  "$TOOL" setup "$URL"
  "$TOOL" load "$URL" "$1" "$SIZE"
  "$TOOL" native "$URL" "$1" "$BATCH"
}

echo "JetStream -> passthrough -> JetStream: $EVENTS events of $SIZE bytes, batch $BATCH, $REPEATS repeats"
run_sluice 2000 >/dev/null # compiles passthrough.wasm into the cache first
ratios=()
for r in $(seq "$REPEATS"); do
  native=$(rate "$(run_native "$EVENTS")")
  sluice=$(rate "$(run_sluice "$EVENTS")")
  ratio=$(awk -v s="$sluice" -v n="$native" 'BEGIN { printf "%.2f", s / n }')
  ratios+=("$ratio")
  printf "  repeat %d: native %s ev/s, sluice %s ev/s, ratio %s\n" "$r" "$native" "$sluice" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median ratio sluice/native: $median (target >= 0.80)"
