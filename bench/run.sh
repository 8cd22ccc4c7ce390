#!/usr/bin/env bash
# Full tracery measurement on this machine, all on 127.0.0.1:
#   ingest throughput and its CPU and memory cost (loadgen over OTLP/gRPC),
#   bytes per span on disk after POST /flush,
#   trace-by-ID latency (querybench) over the traces just written.
# Ends with a summary block meant for docs/benchmarks.md. See bench/README.md for the knobs.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BENCH_BUILD_DIR:-$REPO_DIR/build-bench}
DURATION=${BENCH_DURATION:-30}            # seconds of load, unless BENCH_TRACES is set
TRACES=${BENCH_TRACES:-0}                 # e.g. 1000000: load exactly this many traces
CONCURRENCY=${BENCH_CONCURRENCY:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-1}
SPANS_PER_REQUEST=${BENCH_SPANS_PER_REQUEST:-300}
POOL_REQUESTS=${BENCH_POOL_REQUESTS:-1000}    # distinct generated requests loadgen replays
QUERIES=${BENCH_QUERIES:-2000}
QUERY_CONCURRENCY=${BENCH_QUERY_CONCURRENCY:-4}
HTTP_PORT=${BENCH_HTTP_PORT:-3200}
GRPC_PORT=${BENCH_GRPC_PORT:-4317}
OTLP_HTTP_PORT=${BENCH_OTLP_HTTP_PORT:-4318}
DATA_PARENT=${BENCH_DATA_PARENT:-/tmp}    # must be a local disk: its speed is measured
PIN=${BENCH_PIN:-0}                       # 1: server on CPU 0, loadgen on CPU 1
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
KEEP_DATA=${BENCH_KEEP_DATA:-0}
JOBS=${BENCH_JOBS:-1}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BUILD_DIR/bench-results/$(date +%Y%m%d-%H%M%S)}
BASE_URL="http://127.0.0.1:$HTTP_PORT"

log() { echo "run.sh: $*" >&2; }
fail() { log "error: $*"; exit 1; }

# ---- build -------------------------------------------------------------------------------
targets=(loadgen querybench)
[[ -z "${TRACERY_BIN:-}" ]] && targets+=(tracery)
if [[ "$SKIP_BUILD" != 1 ]]; then
  log "building ${targets[*]} in $BUILD_DIR (Release)"
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$REPO_DIR" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  ninja -C "$BUILD_DIR" -j"$JOBS" "${targets[@]}" >&2
fi
TRACERY_BIN=${TRACERY_BIN:-$BUILD_DIR/tracery}
LOADGEN=$BUILD_DIR/bench/loadgen
QUERYBENCH=$BUILD_DIR/bench/querybench
for binary in "$TRACERY_BIN" "$LOADGEN" "$QUERYBENCH"; do
  [[ -x "$binary" ]] || fail "$binary is missing; build it or set TRACERY_BIN"
done

# ---- server ------------------------------------------------------------------------------
if curl -s -o /dev/null --max-time 1 "$BASE_URL/ready"; then
  fail "something already answers on $BASE_URL; stop it or set BENCH_HTTP_PORT"
fi
mkdir -p "$RESULTS_DIR" "$DATA_PARENT"
DATA_DIR=$(mktemp -d "$DATA_PARENT/tracery-bench.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [[ -f "$DATA_DIR/server.log" ]] && cp "$DATA_DIR/server.log" "$RESULTS_DIR/server.log"
  if [[ "$KEEP_DATA" == 1 ]]; then log "data kept in $DATA_DIR"; else rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT

cat >"$DATA_DIR/config.yaml" <<EOF
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $HTTP_PORT
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$GRPC_PORT
        http:
          endpoint: 127.0.0.1:$OTLP_HTTP_PORT
ingester:
  trace_idle_period: 10s
  max_block_duration: 30m
  max_block_bytes: 104857600
storage:
  trace:
    backend: local
    local:
      path: $DATA_DIR/blocks
    wal:
      path: $DATA_DIR/wal
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1000000000
      burst_size_bytes: 1000000000
EOF

# BENCH_GENERATOR=1 turns the metrics generator on (span metrics and service graph), with
# remote write to BENCH_REMOTE_WRITE_URL when set, so its cost can be compared with a run without.
if [[ "${BENCH_GENERATOR:-0}" == 1 ]]; then
  {
    echo "metrics_generator:"
    echo "  processor:"
    echo "    span_metrics:"
    echo "      enabled: true"
    echo "    service_graphs:"
    echo "      enabled: true"
    if [[ -n "${BENCH_REMOTE_WRITE_URL:-}" ]]; then
      echo "  storage:"
      echo "    remote_write:"
      echo "      - url: $BENCH_REMOTE_WRITE_URL"
    fi
  } >>"$DATA_DIR/config.yaml"
fi

server_pin=(); loadgen_pin=()
if [[ "$PIN" == 1 ]]; then server_pin=(taskset -c 0); loadgen_pin=(taskset -c 1); fi
log "starting $TRACERY_BIN (data in $DATA_DIR)"
"${server_pin[@]}" "$TRACERY_BIN" -config.file="$DATA_DIR/config.yaml" >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!
for attempt in $(seq 120); do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$DATA_DIR/server.log" >&2; fail "tracery exited during startup"; }
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE_URL/ready")" == 200 ]] && break
  [[ $attempt == 120 ]] && fail "tracery not ready after 60 s"
  sleep 0.5
done

CLOCK_TICKS=$(getconf CLK_TCK)
# utime + stime of the server in seconds; the fields after the ')' that ends the command name.
server_cpu_seconds() {
  awk -v ticks="$CLOCK_TICKS" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / ticks }' \
    "/proc/$SERVER_PID/stat"
}
server_peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
field() { awk -v key="$1" '$1 == key { print $2; exit }' "$2"; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

# ---- ingest ------------------------------------------------------------------------------
load_limit=(--duration "$DURATION")
[[ "$TRACES" != 0 ]] && load_limit=(--traces "$TRACES")
cpu_at_start=$(server_cpu_seconds)
log "loadgen ${load_limit[*]} --concurrency $CONCURRENCY --spans-per-request $SPANS_PER_REQUEST"
"${loadgen_pin[@]}" "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" "${load_limit[@]}" \
  --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" \
  --spans-per-request "$SPANS_PER_REQUEST" --pool-requests "$POOL_REQUESTS" \
  --record-ids "$RESULTS_DIR/trace_ids.txt" \
  | tee "$RESULTS_DIR/loadgen.txt" || log "loadgen exited with an error (see above)"
cpu_after_ingest=$(server_cpu_seconds)
rss_after_ingest=$(server_peak_rss_mib)
kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$DATA_DIR/server.log" >&2; fail "tracery died during ingest"; }

spans=$(field spans_acknowledged "$RESULTS_DIR/loadgen.txt"); spans=${spans:-0}
traces=$(field traces_acknowledged "$RESULTS_DIR/loadgen.txt"); traces=${traces:-0}
spans_per_second=$(field spans_per_second "$RESULTS_DIR/loadgen.txt")
mb_per_second=$(field request_mb_per_second "$RESULTS_DIR/loadgen.txt")
bytes_per_span_wire=$(field bytes_per_span "$RESULTS_DIR/loadgen.txt")
requests_failed=$(field requests_failed "$RESULTS_DIR/loadgen.txt")
loadgen_cpu=$(field loadgen_cpu_seconds "$RESULTS_DIR/loadgen.txt")
elapsed=$(field elapsed_seconds "$RESULTS_DIR/loadgen.txt")
ingest_cpu=$(calc "%.2f" "$cpu_after_ingest - $cpu_at_start")
[[ "$spans" == 0 ]] && fail "no span was acknowledged; see $RESULTS_DIR/loadgen.txt and server.log"
spans_per_core_second=$(calc "%.0f" "$ingest_cpu > 0 ? $spans / $ingest_cpu : 0")
cpu_per_million=$(calc "%.2f" "$ingest_cpu * 1000000 / $spans")

# ---- trace by ID while the traces still wait in the WAL -----------------------------------
# The last traces sent are still live (trace_idle_period is 10 s): their spans are read back
# from the write-ahead log.
tail -n 20000 "$RESULTS_DIR/trace_ids.txt" >"$RESULTS_DIR/live_trace_ids.txt"
log "querybench over the last traces sent, still live"
"$QUERYBENCH" --url "$BASE_URL" --ids "$RESULTS_DIR/live_trace_ids.txt" --queries "$QUERIES" \
  --concurrency "$QUERY_CONCURRENCY" | tee "$RESULTS_DIR/querybench-live.txt" \
  || log "querybench exited with an error (see above)"
live_live=$(curl -s --max-time 10 "$BASE_URL/metrics" | awk '/^tracery_ingester_live_traces / { print $2 }')
l_ok=$(field ok "$RESULTS_DIR/querybench-live.txt")
l_p50=$(field latency_p50_ms "$RESULTS_DIR/querybench-live.txt")
l_p90=$(field latency_p90_ms "$RESULTS_DIR/querybench-live.txt")
l_p99=$(field latency_p99_ms "$RESULTS_DIR/querybench-live.txt")
l_max=$(field latency_max_ms "$RESULTS_DIR/querybench-live.txt")

# ---- flush and storage -------------------------------------------------------------------
log "POST /flush"
wal_before_flush=$(du -sb "$DATA_DIR/wal" 2>/dev/null | cut -f1); wal_before_flush=${wal_before_flush:-0}
flush_started=$(date +%s.%N)
flush_status=$(curl -s -o "$RESULTS_DIR/flush.txt" -w '%{http_code}' --max-time 900 -X POST "$BASE_URL/flush" || echo "none")
flush_seconds=$(calc "%.2f" "$(date +%s.%N) - $flush_started")
cpu_after_flush=$(server_cpu_seconds)
[[ "$flush_status" == 204 ]] || log "warning: POST /flush answered $flush_status, expected 204"
blocks_bytes=$(du -sb "$DATA_DIR/blocks" 2>/dev/null | cut -f1); blocks_bytes=${blocks_bytes:-0}
wal_bytes=$(du -sb "$DATA_DIR/wal" 2>/dev/null | cut -f1); wal_bytes=${wal_bytes:-0}
block_count=$(find "$DATA_DIR/blocks" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | wc -l)
bytes_per_span_disk=$(calc "%.1f" "$blocks_bytes / $spans")
wal_bytes_per_span=$(calc "%.1f" "$wal_before_flush / $spans")
cpu_per_million_with_flush=$(calc "%.2f" "($cpu_after_flush - $cpu_at_start) * 1000000 / $spans")
curl -s --max-time 10 "$BASE_URL/metrics" >"$RESULTS_DIR/metrics-after-flush.txt" || true

# ---- trace by ID -------------------------------------------------------------------------
log "querybench --queries $QUERIES --concurrency $QUERY_CONCURRENCY over $traces stored traces"
"$QUERYBENCH" --url "$BASE_URL" --ids "$RESULTS_DIR/trace_ids.txt" --queries "$QUERIES" \
  --concurrency "$QUERY_CONCURRENCY" | tee "$RESULTS_DIR/querybench.txt" \
  || log "querybench exited with an error (see above)"
q_ok=$(field ok "$RESULTS_DIR/querybench.txt")
q_rate=$(field queries_per_second "$RESULTS_DIR/querybench.txt")
q_p50=$(field latency_p50_ms "$RESULTS_DIR/querybench.txt")
q_p90=$(field latency_p90_ms "$RESULTS_DIR/querybench.txt")
q_p99=$(field latency_p99_ms "$RESULTS_DIR/querybench.txt")
q_max=$(field latency_max_ms "$RESULTS_DIR/querybench.txt")
q_bytes=$(field response_bytes_mean "$RESULTS_DIR/querybench.txt")
peak_rss=$(server_peak_rss_mib)
curl -s --max-time 10 "$BASE_URL/metrics" >"$RESULTS_DIR/metrics-at-end.txt" || true

# ---- summary -----------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo "no commit")
load_description="$DURATION s"
[[ "$TRACES" != 0 ]] && load_description="$TRACES traces"
{
  echo
  echo "==== tracery benchmark ($(date -u +%Y-%m-%dT%H:%MZ), commit $commit) ===="
  echo "machine                      $(nproc) cores, $cpu_model; pinned: $([[ $PIN == 1 ]] && echo 'server cpu0, loadgen cpu1' || echo no)"
  echo "load                         $load_description, concurrency $CONCURRENCY, $SPANS_PER_REQUEST spans/request, $bytes_per_span_wire B/span on the wire"
  echo "spans accepted               $spans in ${elapsed} s ($traces traces; failed requests: ${requests_failed:-?})"
  echo "accepted spans/s             $spans_per_second  ($mb_per_second MB/s of OTLP requests)"
  echo "server CPU during ingest     $ingest_cpu s  (loadgen used $loadgen_cpu s)"
  echo "spans per server CPU-second  $spans_per_core_second"
  echo "CPU s per million spans      $cpu_per_million during the load; $cpu_per_million_with_flush all-in (load + flush of every block)"
  echo "peak RSS (VmHWM)             $rss_after_ingest MiB after ingest, $peak_rss MiB at the end"
  echo "flush                        HTTP $flush_status in $flush_seconds s"
  echo "blocks on disk               $blocks_bytes B in $block_count block dirs = $bytes_per_span_disk B/span"
  echo "WAL on disk                  $wal_before_flush B before flush ($wal_bytes_per_span B/span), $wal_bytes B after"
  echo "trace by ID, live (WAL)      p50 $l_p50 ms, p90 $l_p90 ms, p99 $l_p99 ms, max $l_max ms (${l_ok:-0}/$QUERIES ok; ${live_live:-?} traces live)"
  echo "trace by ID, from blocks     p50 $q_p50 ms, p90 $q_p90 ms, p99 $q_p99 ms, max $q_max ms"
  echo "                             ${q_ok:-0}/$QUERIES ok, $q_rate queries/s at concurrency $QUERY_CONCURRENCY, $traces traces stored, ${q_bytes:-0} B/response"
  echo "results                      $RESULTS_DIR"
} | tee "$RESULTS_DIR/summary.txt"
