#!/usr/bin/env bash
# bench/pipeline/run.sh - the pipeline benchmarks (`make bench-pipeline`): whole `sluice run`
# processes against a baseline measured in the same run. docs/benchmarks.md ("Pipelines")
# says what each row measures and records a run.
#
#   run.sh --sluice BIN --examples DIR --tools DIR --work DIR [--repeats N] [--http-repeats N]
#          [--http-duration SECONDS] [--quick] [--only ndjson|generate|http]
#
# --tools holds measure, native_logfilter and logs.ndjson (built by bench/bench.mk);
# --examples holds logfilter.wasm and passthrough.wasm; --work receives SLUICE_HOME, outputs
# and logs. Rows:
#   ndjson    stdin -> logfilter.wasm -> stdout on 1M NDJSON lines, against native_logfilter
#   generate  generate -> passthrough.wasm -> null, against generate -> null
#   http      http -> passthrough.wasm -> null under wrk (HTTP/1.1) and h2load (HTTP/2),
#             against http -> null; p99 at half load with h2load --rps
# Every timed run is measured by `measure` (wall clock, user+sys and peak RSS of the sluice
# process from wait4). Each measurement is the median of the repeats, shown with the
# smallest and largest value; runs of a row and its baseline are interleaved.
#
# Exit status: 0 when every row ran (a missed target is a result, not a failure); 1 when a
# row could not run or produced wrong output (different bytes, lost events, HTTP errors).
set -euo pipefail

SLUICE='' EXAMPLES='' TOOLS='' WORK=''
REPEATS=7 HTTP_REPEATS=3 HTTP_DURATION=5 GEN_COUNT=5000000 H2_REQUESTS=200000 ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
  --sluice) SLUICE=$2; shift 2 ;;
  --examples) EXAMPLES=$2; shift 2 ;;
  --tools) TOOLS=$2; shift 2 ;;
  --work) WORK=$2; shift 2 ;;
  --repeats) REPEATS=$2; shift 2 ;;
  --http-repeats) HTTP_REPEATS=$2; shift 2 ;;
  --http-duration) HTTP_DURATION=$2; shift 2 ;;
  --only) ONLY=$2; shift 2 ;;
  --quick) REPEATS=2 HTTP_REPEATS=1 HTTP_DURATION=2 GEN_COUNT=1000000 H2_REQUESTS=50000; shift ;;
  *) echo "run.sh: unknown option: $1" >&2; exit 2 ;;
  esac
done
for v in SLUICE EXAMPLES TOOLS WORK; do
  [ -n "${!v}" ] || { echo "run.sh: --$(tr '[:upper:]' '[:lower:]' <<<"$v") is required" >&2; exit 2; }
done

for tool in wrk h2load cmp; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed (scripts/bootstrap installs it)" >&2; exit 1; }
done

HERE=$(cd "$(dirname "$0")" && pwd)
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
SLUICE=$(abs "$SLUICE")
MEASURE=$(abs "$TOOLS/measure")
NATIVE=$(abs "$TOOLS/native_logfilter")
LOGS=$(abs "$TOOLS/logs.ndjson")
LOGFILTER=$(abs "$EXAMPLES/logfilter.wasm")
PASSTHROUGH=$(abs "$EXAMPLES/passthrough.wasm")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
export SLUICE_HOME="$WORK/home" # the module cache stays inside the build directory

die() {
  echo "bench-pipeline: FAIL: $*" >&2
  exit 1
}

# Servers this script started (pid files of `measure -p`); stopped on any exit.
SERVER_PIDFILE=
cleanup() {
  if [ -n "$SERVER_PIDFILE" ] && [ -s "$SERVER_PIDFILE" ]; then
    kill -KILL "$(cat "$SERVER_PIDFILE")" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# "median min max" of the arguments.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
# calc EXPR: floating-point arithmetic through awk.
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
# fmt VALUE DIGITS: a number with a fixed number of decimals.
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }
# ms MICROSECONDS: milliseconds with two decimals.
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1e3 }'; }
# kilo VALUE: thousands with one decimal.
kilo() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1e3 }'; }
# ms_range "median min max" (seconds) -> "412 ms (398-455)".
ms_range() { awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { printf "%.0f ms (%.0f-%.0f)", m * 1e3, lo * 1e3, hi * 1e3 }'; }

# The field after `in` on sluice's --stats line for NODE.
stat_in() { awk -v n="$2" '$1 == "sluice:" && $2 == "node" && $3 == n { print $5 }' "$1"; }
stat_out() { awk -v n="$2" '$1 == "sluice:" && $2 == "node" && $3 == n { print $7 }' "$1"; }
stat_errors() { awk -v n="$2" '$1 == "sluice:" && $2 == "node" && $3 == n { print $9 }' "$1"; }

# Checks a finished sluice run: exit 0, NODE received WANT events, no processor errors.
check_run() { # result-line stderr-file sink-node want-events what
  local code errs got
  code=$(awk '{ print $5 }' <<<"$1")
  [ "$code" = 0 ] || die "$5: sluice exited with $code; its stderr:"$'\n'"$(tail -5 "$2")"
  got=$(stat_in "$2" "$3")
  [ "$got" = "$4" ] || die "$5: sink '$3' received ${got:-nothing} events, expected $4; sluice's stderr:"$'\n'"$(tail -5 "$2")"
  errs=$(awk '$1 == "sluice:" && $2 == "node" { s += $9 } END { print s + 0 }' "$2")
  [ "$errs" = 0 ] || die "$5: $errs events failed; sluice's stderr:"$'\n'"$(tail -5 "$2")"
}

ROWS=() # markdown table rows, printed at the end
NOTES=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); }

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# machine: $cpu_model, $(nproc) online CPUs, Linux $(uname -r)"
echo "# tools:   $(gcc --version | head -1); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $(h2load --version | head -1)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# SLUICE_HOME=$SLUICE_HOME; one warm-up run per configuration (module compile excluded)"
echo "# medians of $REPEATS runs (HTTP: $HTTP_REPEATS runs of ${HTTP_DURATION} s); (min-max) in brackets"

# --- ndjson: stdin -> logfilter.wasm -> stdout, against native_logfilter ----------------

bench_ndjson() {
  local lines expected res code i w u s m side
  lines=$(wc -l <"$LOGS")
  echo "ndjson: $lines lines ($(stat -c %s "$LOGS") bytes), warm-up and output check" >&2
  local cmd=("$SLUICE" run --stats --source stdin --wasm "$LOGFILTER" --sink stdout)
  res=$("$MEASURE" -i "$LOGS" -o "$WORK/ndjson.sluice.out" -e "$WORK/ndjson.sluice.err" -- "${cmd[@]}")
  code=$(awk '{ print $5 }' <<<"$res")
  [ "$code" = 0 ] || die "ndjson warm-up: sluice exited with $code: $(tail -3 "$WORK/ndjson.sluice.err")"
  res=$("$MEASURE" -i "$LOGS" -o "$WORK/ndjson.native.out" -- "$NATIVE")
  [ "$(awk '{ print $5 }' <<<"$res")" = 0 ] || die "ndjson: native_logfilter failed"
  cmp -s "$WORK/ndjson.sluice.out" "$WORK/ndjson.native.out" ||
    die "ndjson: sluice's output differs from native_logfilter's (cmp $WORK/ndjson.sluice.out $WORK/ndjson.native.out); sluice's stderr:"$'\n'"$(tail -5 "$WORK/ndjson.sluice.err")"
  expected=$(wc -l <"$WORK/ndjson.native.out")
  echo "ndjson: outputs identical ($expected lines kept)" >&2
  local s_wall=() s_cpu=() s_rss=() n_wall=() n_cpu=() n_rss=()
  for ((i = 0; i < REPEATS; i++)); do
    for side in $( ((i % 2)) && echo "native sluice" || echo "sluice native"); do
      if [ "$side" = sluice ]; then
        res=$("$MEASURE" -i "$LOGS" -o /dev/null -e "$WORK/ndjson.sluice.err" -- "${cmd[@]}")
        check_run "$res" "$WORK/ndjson.sluice.err" sink "$expected" "ndjson run $((i + 1))"
        read -r w u s m _ <<<"$res"
        s_wall+=("$w") s_cpu+=("$(calc "$u + $s")") s_rss+=("$m")
      else
        res=$("$MEASURE" -i "$LOGS" -o /dev/null -- "$NATIVE")
        read -r w u s m _ <<<"$res"
        n_wall+=("$w") n_cpu+=("$(calc "$u + $s")") n_rss+=("$m")
      fi
    done
  done
  read -r sw swl swh <<<"$(stats "${s_wall[@]}")"
  read -r nw nwl nwh <<<"$(stats "${n_wall[@]}")"
  read -r sc _ _ <<<"$(stats "${s_cpu[@]}")"
  read -r nc _ _ <<<"$(stats "${n_cpu[@]}")"
  read -r _ _ srss <<<"$(stats "${s_rss[@]}")"
  read -r _ _ nrss <<<"$(stats "${n_rss[@]}")"
  local ratio result
  ratio=$(calc "$nw / $sw")
  result=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.25) ? "MET" : "MISSED" }')
  row "NDJSON logfilter, 1M lines: stdin -> logfilter.wasm -> stdout" \
    "$(ms_range "$sw" "$swl" "$swh"), $(fmt "$(calc "$lines / $sw / 1e6")" 2) M lines/s" \
    "native $(ms_range "$nw" "$nwl" "$nwh"), $(fmt "$(calc "$lines / $nw / 1e6")" 2) M lines/s" \
    "$(fmt "$ratio" 2)x" ">= 0.25x" "$result" "$((srss / 1024)) MiB (native $((nrss / 1024)) MiB)"
  NOTES+=("ndjson: CPU (user+sys) per run: sluice $(fmt "$sc" 3) s, native $(fmt "$nc" 3) s; $expected of $lines lines kept, byte-identical to native_logfilter")
}

# --- generate: generate -> passthrough.wasm -> null, against generate -> null ----------

bench_generate() {
  local i res w u s m
  export BENCH_WASM="$PASSTHROUGH" BENCH_COUNT="$GEN_COUNT"
  echo "generate: $GEN_COUNT events, warm-up" >&2
  for y in generate_passthrough generate_null; do
    res=$("$MEASURE" -e "$WORK/$y.err" -- "$SLUICE" run --stats "$HERE/$y.yaml")
    check_run "$res" "$WORK/$y.err" drop "$GEN_COUNT" "$y warm-up"
  done
  local p_wall=() p_cpu=() p_rss=() b_wall=() b_cpu=() b_rss=()
  for ((i = 0; i < REPEATS; i++)); do
    for y in $( ((i % 2)) && echo "generate_null generate_passthrough" || echo "generate_passthrough generate_null"); do
      res=$("$MEASURE" -e "$WORK/$y.err" -- "$SLUICE" run --stats "$HERE/$y.yaml")
      check_run "$res" "$WORK/$y.err" drop "$GEN_COUNT" "$y run $((i + 1))"
      read -r w u s m _ <<<"$res"
      if [ "$y" = generate_passthrough ]; then
        p_wall+=("$w") p_cpu+=("$(calc "($u + $s) / $GEN_COUNT * 1e9")") p_rss+=("$m")
      else
        b_wall+=("$w") b_cpu+=("$(calc "($u + $s) / $GEN_COUNT * 1e9")") b_rss+=("$m")
      fi
    done
  done
  read -r pw pwl pwh <<<"$(stats "${p_wall[@]}")"
  read -r bw bwl bwh <<<"$(stats "${b_wall[@]}")"
  read -r pc pcl pch <<<"$(stats "${p_cpu[@]}")"
  read -r bc bcl bch <<<"$(stats "${b_cpu[@]}")"
  read -r _ _ prss <<<"$(stats "${p_rss[@]}")"
  read -r _ _ brss <<<"$(stats "${b_rss[@]}")"
  local rate base_rate
  rate=$(calc "$GEN_COUNT / $pw / 1e6")
  base_rate=$(calc "$GEN_COUNT / $bw / 1e6")
  row "generate -> passthrough.wasm -> null, $((GEN_COUNT / 1000000))M events: throughput" \
    "$(fmt "$rate" 2) M events/s ($(fmt "$(calc "$GEN_COUNT / $pwh / 1e6")" 2)-$(fmt "$(calc "$GEN_COUNT / $pwl / 1e6")" 2))" \
    "generate -> null $(fmt "$base_rate" 2) M events/s ($(fmt "$(calc "$GEN_COUNT / $bwh / 1e6")" 2)-$(fmt "$(calc "$GEN_COUNT / $bwl / 1e6")" 2))" \
    "$(fmt "$(calc "$rate / $base_rate")" 2)x" "-" "-" "$((prss / 1024)) MiB (without wasm $((brss / 1024)) MiB)"
  row "generate -> passthrough.wasm -> null: CPU (user+sys) per event" \
    "$(fmt "$pc" 0) ns ($(fmt "$pcl" 0)-$(fmt "$pch" 0))" \
    "generate -> null $(fmt "$bc" 0) ns ($(fmt "$bcl" 0)-$(fmt "$bch" 0))" \
    "+$(fmt "$(calc "$pc - $bc")" 0) ns" "-" "-" "-"
  NOTES+=("generate: the difference of the CPU medians, $(fmt "$(calc "$pc - $bc")" 0) ns/event, estimates the Wasm node's cost in a whole pipeline; compare the ranges before trusting it (the engine benchmark's 'passthrough event' row measures sl_pool_process alone)")
}

# --- http: http -> passthrough.wasm -> null under wrk and h2load --------------------------

BODY='{"ts":1700000000000,"level":"info","svc":"api","msg":"req 1 served in 12 ms"}'

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME [--wasm M]: starts `sluice run` on a free port under `measure` in the
# background; sets PORT and SERVER_BG (the pid of measure).
start_server() {
  local name=$1 try attempt
  shift
  for ((try = 0; try < 5; try++)); do
    PORT=$((20000 + RANDOM % 20000))
    port_free "$PORT" || continue
    SERVER_PIDFILE="$WORK/$name.pid"
    rm -f "$SERVER_PIDFILE"
    "$MEASURE" -p "$SERVER_PIDFILE" -e "$WORK/$name.err" -- \
      "$SLUICE" run --stats --source "http://127.0.0.1:$PORT/events" "$@" --sink null >"$WORK/$name.res" &
    SERVER_BG=$!
    for ((attempt = 0; attempt < 200; attempt++)); do
      if ! kill -0 "$SERVER_BG" 2>/dev/null; then break; fi
      if ! port_free "$PORT"; then return 0; fi
      sleep 0.05
    done
    wait "$SERVER_BG" 2>/dev/null || true
    grep -q "in use" "$WORK/$name.err" 2>/dev/null || die "http: sluice did not start: $(tail -3 "$WORK/$name.err")"
  done
  die "http: no free port found"
}

# stop_server NAME: SIGINT (drain), wait, check that every accepted event reached the sink.
stop_server() {
  local name=$1 res src sink
  kill -INT "$(cat "$SERVER_PIDFILE")"
  wait "$SERVER_BG" || true
  SERVER_PIDFILE=
  res=$(cat "$WORK/$name.res")
  src=$(stat_out "$WORK/$name.err" source)
  sink=$(stat_in "$WORK/$name.err" sink)
  check_run "$res" "$WORK/$name.err" sink "$src" "http $name"
  [ "${src:-0}" -gt 0 ] || die "http $name: no events arrived"
  SERVER_RSS=$(awk '{ print $4 }' <<<"$res")
  SERVER_CPU=$(awk '{ print $2 + $3 }' <<<"$res")
  SERVER_EVENTS=$sink
}

# run_wrk URL SECONDS CONNECTIONS: sets WRK_RPS, WRK_P50_US, WRK_P99_US; fails on any error.
run_wrk() {
  local out line
  out=$(wrk -t2 -c"$3" -d"$2"s -s "$HERE/post.lua" "$1")
  line=$(grep '^WRK ' <<<"$out") || die "http: wrk printed no summary: $out"
  read -r _ n dur non2xx econn eread ewrite etimeout p50 p99 <<<"$line"
  [ "$non2xx$econn$eread$ewrite$etimeout" = 00000 ] ||
    die "http: wrk saw errors: HTTP status >= 400 $non2xx, connect $econn, read $eread, write $ewrite, timeout $etimeout"
  WRK_RPS=$(calc "$n / ($dur / 1e6)")
  WRK_P50_US=$p50 WRK_P99_US=$p99
}

# run_h2 URL: HTTP/2 (prior knowledge), -n H2_REQUESTS -c 32 -m 10; sets H2_RPS.
run_h2() {
  local out ok
  out=$(h2load -n "$H2_REQUESTS" -c 32 -m 10 -d "$WORK/body.json" -H 'content-type: application/json' "$1")
  ok=$(awk '/^status codes:/ { print $3 }' <<<"$out")
  [ "$ok" = "$H2_REQUESTS" ] || die "http: h2load: $ok of $H2_REQUESTS answered 2xx:"$'\n'"$(grep -E '^(requests|status codes):' <<<"$out")"
  H2_RPS=$(awk '/^finished in/ { print $4 }' <<<"$out")
}

# run_paced URL RPS SECONDS: HTTP/1.1 at a fixed total rate (h2load --h1 --rps per client,
# 64 clients); sets PACED_RPS (achieved), PACED_P50_US, PACED_P99_US from the per-request log.
run_paced() {
  local clients=64 per
  per=$(awk -v r="$2" -v c="$clients" 'BEGIN { p = int(r / c); print (p < 1) ? 1 : p }')
  rm -f "$WORK/paced.log"
  h2load --h1 -t2 -c"$clients" --rps="$per" -D "$3" --log-file="$WORK/paced.log" \
    -d "$WORK/body.json" -H 'content-type: application/json' "$1" >"$WORK/paced.out" ||
    die "http: h2load --rps failed: $(tail -3 "$WORK/paced.out")"
  local bad
  bad=$(awk -F'\t' '$2 != 200' "$WORK/paced.log" | wc -l)
  [ "$bad" = 0 ] || die "http: $bad paced requests were not answered 200"
  read -r PACED_N PACED_P50_US PACED_P99_US <<<"$(cut -f3 "$WORK/paced.log" | sort -n |
    awk '{ v[NR] = $1 } END { print NR, v[int(NR * 0.50 + 0.5)], v[int(NR * 0.99 + 0.5)] }')"
  [ "${PACED_N:-0}" -gt 0 ] || die "http: h2load --rps completed no request"
  PACED_RPS=$(calc "$PACED_N / $3")
}

bench_http() {
  printf '%s' "$BODY" >"$WORK/body.json"
  local i name w_rps=() w_p50=() w_p99=() h_rps=() p_rps=() p_p50=() p_p99=() rss=() cpu=()
  local bw_rps=() bw_p99=() bp_p99=() bh_rps=() b_rss=() b_cpu=()
  echo "http: warm-up (module compile)" >&2
  start_server http_wasm --wasm "$PASSTHROUGH"
  run_wrk "http://127.0.0.1:$PORT/events" 1 64
  stop_server http_wasm
  for ((i = 0; i < HTTP_REPEATS; i++)); do
    echo "http: run $((i + 1)) of $HTTP_REPEATS" >&2
    # The same load on both servers: wrk (1 s to warm up, then the measured run), h2load
    # paced at half the Wasm pipeline's wrk rate, then h2load over HTTP/2.
    local half=
    for name in http_wasm http_null; do
      if [ "$name" = http_wasm ]; then start_server "$name" --wasm "$PASSTHROUGH"; else start_server "$name"; fi
      local url="http://127.0.0.1:$PORT/events"
      run_wrk "$url" 1 64
      run_wrk "$url" "$HTTP_DURATION" 64
      [ -n "$half" ] || half=$(calc "$WRK_RPS / 2")
      run_paced "$url" "$half" "$HTTP_DURATION"
      run_h2 "$url"
      stop_server "$name"
      local cpu_us
      cpu_us=$(calc "$SERVER_CPU / $SERVER_EVENTS * 1e6")
      if [ "$name" = http_wasm ]; then
        w_rps+=("$WRK_RPS") w_p50+=("$WRK_P50_US") w_p99+=("$WRK_P99_US")
        p_rps+=("$PACED_RPS") p_p50+=("$PACED_P50_US") p_p99+=("$PACED_P99_US")
        h_rps+=("$H2_RPS") rss+=("$SERVER_RSS") cpu+=("$cpu_us")
      else
        bw_rps+=("$WRK_RPS") bw_p99+=("$WRK_P99_US") bp_p99+=("$PACED_P99_US")
        bh_rps+=("$H2_RPS") b_rss+=("$SERVER_RSS") b_cpu+=("$cpu_us")
      fi
    done
  done
  read -r wr wrl wrh <<<"$(stats "${w_rps[@]}")"
  read -r w99 w99l w99h <<<"$(stats "${w_p99[@]}")"
  read -r w50 _ _ <<<"$(stats "${w_p50[@]}")"
  read -r br brl brh <<<"$(stats "${bw_rps[@]}")"
  read -r b99 b99l b99h <<<"$(stats "${bw_p99[@]}")"
  read -r pr prl prh <<<"$(stats "${p_rps[@]}")"
  read -r p99 p99l p99h <<<"$(stats "${p_p99[@]}")"
  read -r p50 _ _ <<<"$(stats "${p_p50[@]}")"
  read -r bp99 bp99l bp99h <<<"$(stats "${bp_p99[@]}")"
  read -r hr hrl hrh <<<"$(stats "${h_rps[@]}")"
  read -r bhr bhrl bhrh <<<"$(stats "${bh_rps[@]}")"
  read -r cu cul cuh <<<"$(stats "${cpu[@]}")"
  read -r bcu bcul bcuh <<<"$(stats "${b_cpu[@]}")"
  read -r _ _ srss <<<"$(stats "${rss[@]}")"
  read -r _ _ brss <<<"$(stats "${b_rss[@]}")"
  row "HTTP/1.1 ingest, wrk -t2 -c64, keep-alive POST: http -> passthrough.wasm -> null" \
    "$(kilo "$wr")k req/s ($(kilo "$wrl")-$(kilo "$wrh")k)" \
    "http -> null $(kilo "$br")k req/s ($(kilo "$brl")-$(kilo "$brh")k)" \
    "$(fmt "$(calc "$wr / $br")" 2)x" ">= 50k req/s" \
    "$(awk -v r="$wr" 'BEGIN { print (r >= 50000) ? "MET" : "MISSED" }')" \
    "$((srss / 1024)) MiB (without wasm $((brss / 1024)) MiB)"
  row "HTTP/1.1 p99 latency at full load (the wrk runs)" \
    "$(ms "$w99") ms ($(ms "$w99l")-$(ms "$w99h")), p50 $(ms "$w50") ms" \
    "http -> null $(ms "$b99") ms ($(ms "$b99l")-$(ms "$b99h"))" "-" "-" "-" "-"
  row "HTTP/1.1 p99 latency at half load (h2load --h1 -c64, paced)" \
    "$(ms "$p99") ms ($(ms "$p99l")-$(ms "$p99h")), p50 $(ms "$p50") ms, at $(kilo "$pr")k req/s ($(kilo "$prl")-$(kilo "$prh")k)" \
    "http -> null $(ms "$bp99") ms ($(ms "$bp99l")-$(ms "$bp99h")), same rate" "-" "-" "-" "-"
  row "HTTP/2 ingest, h2load -n $H2_REQUESTS -c 32 -m 10 (h2c prior knowledge)" \
    "$(kilo "$hr")k req/s ($(kilo "$hrl")-$(kilo "$hrh")k)" \
    "http -> null $(kilo "$bhr")k req/s ($(kilo "$bhrl")-$(kilo "$bhrh")k)" \
    "$(fmt "$(calc "$hr / $bhr")" 2)x" "-" "-" "-"
  row "HTTP server CPU (user+sys) per request, over all of a server's runs" \
    "$(fmt "$cu" 2) us ($(fmt "$cul" 2)-$(fmt "$cuh" 2))" \
    "http -> null $(fmt "$bcu" 2) us ($(fmt "$bcul" 2)-$(fmt "$bcuh" 2))" \
    "+$(fmt "$(calc "($cu - $bcu) * 1e3")" 0) ns" "-" "-" "-"
  NOTES+=("http: both servers get the same sequence per run: wrk 1 s (warm-up), wrk ${HTTP_DURATION} s, h2load --h1 -c64 for ${HTTP_DURATION} s at half the Wasm pipeline's wrk rate of that run (--rps=rate/2/64 per client), h2load over HTTP/2; CPU per request is the server's user+sys over all of them divided by the events its sink received")
  NOTES+=("http: paced latency is h2load's time from sending a request to its response, not corrected for coordinated omission; wrk's percentiles come from its own latency histogram")
  NOTES+=("http: wrk/h2load run on the same 2 CPUs as sluice; no external HTTP server (nginx, h2o alone) was measured")
}

case "$ONLY" in
"") bench_ndjson; bench_generate; bench_http ;;
ndjson) bench_ndjson ;;
generate) bench_generate ;;
http) bench_http ;;
*) die "--only: expected ndjson, generate or http" ;;
esac

echo
echo "| pipeline | Sluice: median (min-max) | baseline, same run | ratio | target | result | peak RSS (max) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
for n in "${NOTES[@]}"; do echo "- $n"; done
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
