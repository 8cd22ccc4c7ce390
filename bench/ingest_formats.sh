#!/usr/bin/env bash
# Ingest cost per format: the same generated spans sent to tracery as OTLP/gRPC, Zipkin v2
# JSON, Jaeger Thrift over HTTP, and OTLP/gRPC over TLS, each into a fresh server pinned to
# one core (taskset -c 1; loadgen on core 0). Each run is measured once at full speed and,
# unless FORMATS_RATE=0, once more at a fixed rate, so the CPU figures compare equal work.
# Prints spans/s, server CPU-seconds per million spans (utime+stime of every server thread,
# /proc/<pid>/stat, from the start to the end of the load) and body bytes per span.
# See bench/README.md.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${FORMATS_BUILD_DIR:-$REPO_DIR/build-bench2}
TRACERY_BIN=${TRACERY_BIN:-$BUILD_DIR/tracery}
LOADGEN=${LOADGEN_BIN:-$BUILD_DIR/bench/loadgen}
SPANS=${FORMATS_SPANS:-1500000}           # spans each run sends (whole traces, so slightly more)
RATE=${FORMATS_RATE:-50000}               # spans/s of the fixed-rate runs; 0 skips them
PROTOCOLS=${FORMATS_PROTOCOLS:-"otlp-grpc zipkin-json jaeger-thrift-http otlp-grpc-tls"}
CONCURRENCY=${FORMATS_CONCURRENCY:-8}
SPANS_PER_REQUEST=${FORMATS_SPANS_PER_REQUEST:-300}
HTTP_PORT=${FORMATS_HTTP_PORT:-13200}
GRPC_PORT=${FORMATS_GRPC_PORT:-14317}
ZIPKIN_PORT=${FORMATS_ZIPKIN_PORT:-19411}
JAEGER_PORT=${FORMATS_JAEGER_PORT:-24268}
RESULTS_DIR=${FORMATS_RESULTS_DIR:-$BUILD_DIR/bench-results/ingest-formats-$(date +%Y%m%d-%H%M%S)}
BASE_URL="http://127.0.0.1:$HTTP_PORT"

log() { echo "ingest_formats.sh: $*" >&2; }
fail() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
field() { awk -v key="$1" '$1 == key { print $2; exit }' "$2"; }

for binary in "$TRACERY_BIN" "$LOADGEN"; do
  [[ -x "$binary" ]] || fail "$binary is missing (set TRACERY_BIN, LOADGEN_BIN)"
done
command -v openssl >/dev/null || fail "openssl is needed for the TLS run"
if curl -s -o /dev/null --max-time 1 "$BASE_URL/ready"; then
  fail "something already answers on $BASE_URL; set FORMATS_HTTP_PORT"
fi
mkdir -p "$RESULTS_DIR"
WORK_DIR=$(mktemp -d /tmp/tracery-formats.XXXXXX)
SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK_DIR"; }
trap cleanup EXIT

# ---- a CA and a server certificate for 127.0.0.1 ------------------------------------------
TLS_DIR=$WORK_DIR/tls
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tracery bench CA" \
  -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$TLS_DIR/san.ext"
openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
  -CAcreateserial -days 2 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.crt" 2>/dev/null

write_config() {  # dir tls(0|1)
  local grpc_tls=""
  if [[ "$2" == 1 ]]; then
    grpc_tls="
          tls:
            cert_file: $TLS_DIR/server.crt
            key_file: $TLS_DIR/server.key"
  fi
  cat >"$1/config.yaml" <<YAML
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $HTTP_PORT
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$GRPC_PORT$grpc_tls
    zipkin:
      endpoint: 127.0.0.1:$ZIPKIN_PORT
    jaeger:
      protocols:
        thrift_http:
          endpoint: 127.0.0.1:$JAEGER_PORT
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
YAML
}

server_cpu_seconds() {  # utime + stime of all threads, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' \
    "/proc/$SERVER_PID/stat"
}

# ---- the trace count that makes SPANS (loadgen prints the pool's spans per trace) ---------
pool_line=$("$LOADGEN" --endpoint 127.0.0.1:1 --traces 1 --timeout 0.1 --seed 1 \
  --spans-per-request "$SPANS_PER_REQUEST" 2>/dev/null | grep -m1 'spans/trace' || true)
spans_per_trace=$(sed -n 's/.*[^0-9.]\([0-9.]*\) spans\/trace.*/\1/p' <<<"$pool_line")
TRACES=$(calc "%d" "$SPANS / ${spans_per_trace:-16}")
log "each run: $TRACES traces (~${spans_per_trace:-16} spans each), concurrency $CONCURRENCY"

run_once() {  # protocol rate(0: full speed)
  local protocol=$1 rate=$2 tls=0 name
  name="$protocol-$([[ $rate == 0 ]] && echo full || echo "rate$rate")"
  local loadgen_args=(--protocol "$protocol" --endpoint "127.0.0.1:$GRPC_PORT")
  case "$protocol" in
    otlp-grpc-tls) tls=1; loadgen_args=(--endpoint "127.0.0.1:$GRPC_PORT" --tls-ca "$TLS_DIR/ca.crt") ;;
    zipkin-json) loadgen_args[3]="127.0.0.1:$ZIPKIN_PORT" ;;
    jaeger-thrift-http) loadgen_args[3]="127.0.0.1:$JAEGER_PORT" ;;
  esac
  [[ "$rate" != 0 ]] && loadgen_args+=(--rate "$rate")
  local dir="$WORK_DIR/$name"
  mkdir -p "$dir"
  write_config "$dir" "$tls"
  taskset -c 1 "$TRACERY_BIN" -config.file="$dir/config.yaml" >"$RESULTS_DIR/$name.server.log" 2>&1 &
  SERVER_PID=$!
  for attempt in $(seq 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$RESULTS_DIR/$name.server.log" >&2; fail "tracery exited at start ($name)"; }
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE_URL/ready" || true)" == 200 ]] && break
    [[ $attempt == 200 ]] && fail "tracery not ready ($name)"
    sleep 0.3
  done
  sleep 1
  local cpu_start cpu_end
  cpu_start=$(server_cpu_seconds)
  taskset -c 0 "$LOADGEN" "${loadgen_args[@]}" --traces "$TRACES" --seed 1 \
    --concurrency "$CONCURRENCY" --spans-per-request "$SPANS_PER_REQUEST" \
    >"$RESULTS_DIR/$name.loadgen.txt" 2>&1 || log "loadgen failed, see $RESULTS_DIR/$name.loadgen.txt"
  cpu_end=$(server_cpu_seconds)
  stop_server
  rm -rf "$dir"
  local out=$RESULTS_DIR/$name.loadgen.txt spans
  spans=$(field spans_acknowledged "$out")
  [[ -n "$spans" && "$spans" -gt 0 ]] || fail "no spans acknowledged in $name, see $out"
  printf '%-34s %10s %10s %10s %9s %9s %8s\n' "$name" "$spans" "$(field requests_failed "$out")" \
    "$(field spans_per_second "$out")" "$(calc "%.2f" "($cpu_end - $cpu_start) * 1000000 / $spans")" \
    "$(field bytes_per_span "$out")" "$(field loadgen_cpu_seconds "$out")" | tee -a "$RESULTS_DIR/summary.txt"
}

{
  echo "ingest by format: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "server $TRACERY_BIN on CPU 1, loadgen on CPU 0; $TRACES traces a run, $SPANS_PER_REQUEST spans a request, concurrency $CONCURRENCY"
  printf '%-34s %10s %10s %10s %9s %9s %8s\n' run spans_ok req_failed spans/s cpu_s/Mspan B/span lg_cpu_s
} | tee "$RESULTS_DIR/summary.txt"
for protocol in $PROTOCOLS; do run_once "$protocol" 0; done
if [[ "$RATE" != 0 ]]; then
  for protocol in $PROTOCOLS; do run_once "$protocol" "$RATE"; done
fi
log "results in $RESULTS_DIR"
