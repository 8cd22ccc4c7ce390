#!/usr/bin/env bash
# What the metrics generator costs a user: the server's CPU per million spans with the seed's
# metrics_generator block (span metrics + service graph, remote write into a real Prometheus)
# against the same server without it, same traffic at the same fixed rate.
#
#   server (tracery) pinned to CPU 0; loadgen and Prometheus on CPU 1;
#   runs alternate off, on, off, on, ... (GENCOST_PAIRS pairs), each on a fresh data directory;
#   every run sends exactly the same spans (same pool seed, same trace count) at the same rate;
#   CPU is utime+stime of every thread of the server (/proc/<pid>/stat), read when the load
#   starts, when it ends ("load"), and after POST /flush plus one full collection interval, so
#   that every span is in a block and its metrics were remote-written ("all-in").
# Prints one line per run and a summary with both figures and the ratio. See bench/README.md.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${GENCOST_BUILD_DIR:-$REPO_DIR/build-bench}
TRACERY_BIN=${TRACERY_BIN:-$BUILD_DIR/tracery}
LOADGEN=${LOADGEN_BIN:-$BUILD_DIR/bench/loadgen}
PROMETHEUS_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
RATE=${GENCOST_RATE:-150000}              # spans per second, both runs
SECONDS_OF_LOAD=${GENCOST_SECONDS:-30}    # sets the trace count: RATE * SECONDS / spans a trace
PAIRS=${GENCOST_PAIRS:-2}
SPANS_PER_REQUEST=${GENCOST_SPANS_PER_REQUEST:-300}
SEED_BLOCK=${GENCOST_SEED_BLOCK:-$REPO_DIR/../shared/seed/configs/metrics-generator.yaml}
HTTP_PORT=${GENCOST_HTTP_PORT:-3290}
GRPC_PORT=${GENCOST_GRPC_PORT:-4397}
PROM_PORT=${GENCOST_PROMETHEUS_PORT:-9390}
COLLECTION_WAIT=${GENCOST_COLLECTION_WAIT:-16}  # > collection_interval (15 s)
RESULTS_DIR=${GENCOST_RESULTS_DIR:-$BUILD_DIR/bench-results/generator-cost-$(date +%Y%m%d-%H%M%S)}
BASE_URL="http://127.0.0.1:$HTTP_PORT"

log() { echo "generator_cost.sh: $*" >&2; }
fail() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

for binary in "$TRACERY_BIN" "$LOADGEN" "$PROMETHEUS_BIN"; do
  [[ -x "$binary" ]] || fail "$binary is missing (set TRACERY_BIN, LOADGEN_BIN, PROMETHEUS_BIN)"
done
[[ -f "$SEED_BLOCK" ]] || fail "seed block $SEED_BLOCK not found (set GENCOST_SEED_BLOCK)"
mkdir -p "$RESULTS_DIR"
WORK_DIR=$(mktemp -d /tmp/tracery-gencost.XXXXXX)
SERVER_PID="" PROM_PID=""
stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SERVER_PID"
  stop_pid "$PROM_PID"
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT

wait_ready() {  # url what
  for attempt in $(seq 200); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)" == 200 ]] && return 0
    sleep 0.3
  done
  fail "$2 not ready at $1"
}

# ---- Prometheus, as the e2e tests run it (tests/e2e/prometheus.mjs) -----------------------
mkdir -p "$WORK_DIR/prometheus"
printf 'global:\n  scrape_interval: 15s\nstorage:\n  exemplars:\n    max_exemplars: 100000\n' \
  >"$WORK_DIR/prometheus/prometheus.yml"
taskset -c 1 "$PROMETHEUS_BIN" --config.file="$WORK_DIR/prometheus/prometheus.yml" \
  --storage.tsdb.path="$WORK_DIR/prometheus/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --web.enable-remote-write-receiver --enable-feature=exemplar-storage \
  >"$RESULTS_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
wait_ready "http://127.0.0.1:$PROM_PORT/-/ready" prometheus

# ---- traffic: the trace count that makes SECONDS_OF_LOAD at RATE -------------------------
# loadgen prints the pool's spans per trace; one short probe run tells us (it is not measured).
pool_line=$("$LOADGEN" --endpoint 127.0.0.1:1 --traces 1 --timeout 0.1 --seed 1 --spans-per-request "$SPANS_PER_REQUEST" 2>/dev/null | grep -m1 'spans/trace' || true)
spans_per_trace=$(sed -n 's/.*[^0-9.]\([0-9.]*\) spans\/trace.*/\1/p' <<<"$pool_line")
spans_per_trace=${spans_per_trace:-16}
TRACES=$(calc "%d" "$RATE * $SECONDS_OF_LOAD / $spans_per_trace")
log "traffic: $TRACES traces (~$spans_per_trace spans each) at $RATE spans/s, $SPANS_PER_REQUEST spans a request"

server_cpu_seconds() {  # utime + stime of all threads, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

write_config() {  # dir generator(0|1)
  cat >"$1/config.yaml" <<EOF
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $HTTP_PORT
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$GRPC_PORT
ingester:
  trace_idle_period: 10s
  max_block_duration: 30m
  max_block_bytes: 104857600
storage:
  trace:
    backend: local
    local:
      path: $1/blocks
    wal:
      path: $1/wal
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1000000000
      burst_size_bytes: 1000000000
EOF
  if [[ "$2" == 1 ]]; then
    # The seed's block as written; only the remote-write host is this machine's Prometheus.
    sed "s#http://prometheus:9090/#http://127.0.0.1:$PROM_PORT/#" "$SEED_BLOCK" >>"$1/config.yaml"
  fi
}

declare -a LOAD_OFF=() LOAD_ON=() ALL_OFF=() ALL_ON=()
run_once() {  # index generator(0|1)
  local name="run$1-$([[ $2 == 1 ]] && echo on || echo off)"
  local dir="$WORK_DIR/$name"
  mkdir -p "$dir"
  write_config "$dir" "$2"
  cp "$dir/config.yaml" "$RESULTS_DIR/$name.config.yaml"
  taskset -c 0 "$TRACERY_BIN" -config.file="$dir/config.yaml" >"$RESULTS_DIR/$name.server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$BASE_URL/ready" tracery
  sleep 1
  local cpu_start cpu_load cpu_all
  cpu_start=$(server_cpu_seconds)
  taskset -c 1 "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" --traces "$TRACES" --rate "$RATE" \
    --spans-per-request "$SPANS_PER_REQUEST" --concurrency 8 --seed 1 >"$RESULTS_DIR/$name.loadgen.txt" 2>&1 \
    || fail "loadgen failed, see $RESULTS_DIR/$name.loadgen.txt"
  cpu_load=$(server_cpu_seconds)
  curl -s -o /dev/null --max-time 900 -X POST "$BASE_URL/flush" || true
  sleep "$COLLECTION_WAIT"
  cpu_all=$(server_cpu_seconds)
  curl -s --max-time 10 "$BASE_URL/metrics" >"$RESULTS_DIR/$name.metrics.txt" || true
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  rm -rf "$dir"
  local spans rate
  spans=$(awk '$1 == "spans_acknowledged" { print $2 }' "$RESULTS_DIR/$name.loadgen.txt")
  rate=$(awk '$1 == "spans_per_second" { print $2 }' "$RESULTS_DIR/$name.loadgen.txt")
  [[ -n "$spans" && "$spans" -gt 0 ]] || fail "no spans acknowledged in $name"
  local per_load per_all
  per_load=$(calc "%.3f" "($cpu_load - $cpu_start) * 1000000 / $spans")
  per_all=$(calc "%.3f" "($cpu_all - $cpu_start) * 1000000 / $spans")
  printf '%-10s %10s spans at %8s spans/s   CPU s per million spans: load %6s   all-in %6s\n' \
    "$name" "$spans" "$rate" "$per_load" "$per_all" | tee -a "$RESULTS_DIR/summary.txt"
  if [[ "$2" == 1 ]]; then LOAD_ON+=("$per_load"); ALL_ON+=("$per_all"); else LOAD_OFF+=("$per_load"); ALL_OFF+=("$per_all"); fi
}

for pair in $(seq "$PAIRS"); do
  run_once "$pair" 0
  run_once "$pair" 1
done

series_in_prometheus=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query?query=count(traces_spanmetrics_calls_total)" || true)
stats() { printf '%s\n' "$@" | awk '{ s += $1; if (NR == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { printf "%.3f (%.3f-%.3f)", s / NR, lo, hi }'; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.6f", s / NR }'; }
{
  echo
  echo "generator cost: $PAIRS off/on pairs, $TRACES traces a run at $RATE spans/s, server on CPU 0"
  echo "  CPU s per million spans, during load: off $(stats "${LOAD_OFF[@]}")  on $(stats "${LOAD_ON[@]}")  ratio $(calc "%+.1f %%" "($(mean "${LOAD_ON[@]}") / $(mean "${LOAD_OFF[@]}") - 1) * 100")"
  echo "  CPU s per million spans, all-in:      off $(stats "${ALL_OFF[@]}")  on $(stats "${ALL_ON[@]}")  ratio $(calc "%+.1f %%" "($(mean "${ALL_ON[@]}") / $(mean "${ALL_OFF[@]}") - 1) * 100")"
  echo "  Prometheus: count(traces_spanmetrics_calls_total) = $(sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)".*/\1/p' <<<"$series_in_prometheus")"
  echo "  results in $RESULTS_DIR"
} | tee -a "$RESULTS_DIR/summary.txt"
