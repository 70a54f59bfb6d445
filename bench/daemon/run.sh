#!/usr/bin/env bash
# bench/daemon/run.sh - the control-plane benchmark (`make bench-daemon`): starts its own
# `sluice up` on a free loopback port with a temporary SLUICE_HOME, runs swap_bench
# against it, and stops the daemon by its PID. docs/benchmarks.md ("Control plane") says
# what each row measures and records a run.
#
#   run.sh --sluice BIN --examples DIR --tool BIN --work DIR [swap_bench options...]
#
# --examples holds passthrough.wasm and upper.wasm; --tool is swap_bench; --work receives
# the temporary SLUICE_HOME (removed at the end), the daemon's log and the outputs. Any
# other option goes to swap_bench: --quick, --deploys N, --duration S, --swap-every MS,
# --rate EVENTS/S, --threads N, --lines N, --drain-batch N, --only deploy|swap|drain,
# --trace PREFIX (every output growth and swap, for looking at one gap).
#
# Exit status: swap_bench's (0 when everything ran and no acknowledged event was lost),
# or 1 when the daemon could not be started.
set -euo pipefail

SLUICE='' EXAMPLES='' TOOL='' WORK='' PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
  --sluice) SLUICE=$2; shift 2 ;;
  --examples) EXAMPLES=$2; shift 2 ;;
  --tool) TOOL=$2; shift 2 ;;
  --work) WORK=$2; shift 2 ;;
  --quick) PASS+=("$1"); shift ;;
  *) [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
     PASS+=("$1" "$2"); shift 2 ;;
  esac
done
for v in SLUICE EXAMPLES TOOL WORK; do
  [ -n "${!v}" ] || { echo "run.sh: --$(tr '[:upper:]' '[:lower:]' <<<"$v") is required" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "run.sh: curl is not installed" >&2; exit 1; }

abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
SLUICE=$(abs "$SLUICE")
TOOL=$(abs "$TOOL")
PASSTHROUGH=$(abs "$EXAMPLES/passthrough.wasm")
UPPER=$(abs "$EXAMPLES/upper.wasm")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
export SLUICE_HOME
SLUICE_HOME=$(mktemp -d "$WORK/home.XXXXXX")

die() {
  echo "bench-daemon: FAIL: $*" >&2
  exit 1
}

# The daemon this script started; stopped by its PID on any exit (SIGINT, then SIGKILL).
DAEMON_PID=
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  local pid=$DAEMON_PID i
  DAEMON_PID=
  kill -INT "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench-daemon: the daemon (pid $pid) did not stop within 10 s of SIGINT; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_daemon
  rm -rf "$SLUICE_HOME"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local try p
  for ((try = 0; try < 50; try++)); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p" && [ "$p" != "${1:-}" ]; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# Start `sluice up` on a free port; "address in use" (a port taken between the check and
# the bind) means another try.
for ((try = 0; try < 5; try++)); do
  API_PORT=$(free_port)
  "$SLUICE" up --listen "127.0.0.1:$API_PORT" 2>"$WORK/daemon.log" &
  DAEMON_PID=$!
  for ((i = 0; i < 200; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
  done
  if curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1; then break; fi
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
  grep -q "in use" "$WORK/daemon.log" || die "sluice up did not start: $(tail -3 "$WORK/daemon.log")"
done
[ -n "$DAEMON_PID" ] || die "sluice up: no free port after 5 tries"
[ -s "$SLUICE_HOME/token" ] || die "sluice up wrote no token to $SLUICE_HOME/token"
SOURCE_PORT=$(free_port "$API_PORT")

echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) online CPUs, $(uname -sr)"
echo "# sluice up --listen 127.0.0.1:$API_PORT (pid $DAEMON_PID), SLUICE_HOME=$SLUICE_HOME; http source on port $SOURCE_PORT"
REPO=$(dirname "$0")
echo "# commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -z "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] || echo ' (with uncommitted changes or untracked files)')"
echo "# tools: $(gcc --version | head -1); $(curl --version | head -1 | cut -d' ' -f1-2)"
echo "# uptime at start: $(uptime)"

code=0
"$TOOL" --api "http://127.0.0.1:$API_PORT" --token-file "$SLUICE_HOME/token" --sluice "$SLUICE" \
  --passthrough "$PASSTHROUGH" --upper "$UPPER" --work "$WORK" --source-port "$SOURCE_PORT" \
  "${PASS[@]}" || code=$?

echo "- uptime at end: $(uptime)"
kill -0 "$DAEMON_PID" 2>/dev/null || { echo "bench-daemon: the daemon exited during the run:" >&2; tail -5 "$WORK/daemon.log" >&2; code=1; }
stop_daemon
if grep -qiE 'error|warn' "$WORK/daemon.log"; then
  echo "- the daemon's log ($WORK/daemon.log) has warnings or errors:"
  grep -iE 'error|warn' "$WORK/daemon.log" | head -5 | sed 's/^/    /'
fi
exit "$code"
