#!/usr/bin/env bash
# What tail sampling costs and saves: the server's CPU per million spans with the seed's
# tail_sampling block (errors, slow > 500 ms, 5 % baseline; decision_wait 10 s) against the same
# server without it, same traffic at the same fixed rate; the memory of a pending trace; the
# bytes stored per span received.
#
#   server pinned to CPU 0, loadgen on CPU 1; runs alternate off, on (SAMPLING_PAIRS pairs), each
#   on a fresh data directory with exactly the same spans (same pool seed and trace count);
#   CPU is utime+stime of every server thread (/proc/<pid>/stat) from load start to load end
#   ("load") and to the end of POST /flush ("all-in": every trace decided and cut);
#   pending-trace memory is tracery_ingester_live_index_bytes / live traces, read at the end
#   of the load with sampling on (every live trace then is pending or kept and not yet cut).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SAMPLING_BUILD_DIR:-$REPO_DIR/build}
TRACERY_BIN=${TRACERY_BIN:-$BUILD_DIR/tracery}
LOADGEN=${LOADGEN_BIN:-$BUILD_DIR/bench/loadgen}
RATE=${SAMPLING_RATE:-150000}
SECONDS_OF_LOAD=${SAMPLING_SECONDS:-20}
PAIRS=${SAMPLING_PAIRS:-2}
HTTP_PORT=${SAMPLING_HTTP_PORT:-3291}
GRPC_PORT=${SAMPLING_GRPC_PORT:-4391}
RESULTS_DIR=${SAMPLING_RESULTS_DIR:-$BUILD_DIR/bench-results/sampling-cost-$(date +%Y%m%d-%H%M%S)}
BASE_URL="http://127.0.0.1:$HTTP_PORT"

log() { echo "sampling_cost.sh: $*" >&2; }
fail() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
for binary in "$TRACERY_BIN" "$LOADGEN"; do [[ -x "$binary" ]] || fail "$binary is missing"; done
mkdir -p "$RESULTS_DIR"
WORK_DIR=$(mktemp -d /tmp/tracery-sampling.XXXXXX)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT

metric() {  # file name -> value of the first sample of that exact series name
  awk -v name="$2" '$1 == name { print $2; exit }' "$1"
}
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }

TRACES=$(calc "%d" "$RATE * $SECONDS_OF_LOAD / 16")
declare -a LOAD_OFF=() LOAD_ON=() ALL_OFF=() ALL_ON=()
PENDING_BYTES="" STORED_OFF="" STORED_ON=""
run_once() {  # index sampling(0|1)
  local name="run$1-$([[ $2 == 1 ]] && echo on || echo off)" dir="$WORK_DIR/run$1-$2"
  mkdir -p "$dir"
  cat >"$dir/config.yaml" <<EOF
server: { http_listen_address: 127.0.0.1, http_listen_port: $HTTP_PORT }
distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: 127.0.0.1:$GRPC_PORT } } } } }
storage: { trace: { backend: local, local: { path: $dir/blocks }, wal: { path: $dir/wal } } }
overrides: { defaults: { ingestion: { rate_limit_bytes: 1000000000, burst_size_bytes: 1000000000 } } }
EOF
  if [[ "$2" == 1 ]]; then
    cat >>"$dir/config.yaml" <<'EOF'
processors:
  tail_sampling:
    decision_wait: 10s
    policies:
      - name: errors
        type: status_code
        status_code: { status_codes: [ERROR] }
      - name: slow
        type: latency
        latency: { threshold_ms: 500 }
      - name: baseline
        type: probabilistic
        probabilistic: { sampling_percentage: 5 }
EOF
  fi
  taskset -c 0 "$TRACERY_BIN" -config.file="$dir/config.yaml" >"$RESULTS_DIR/$name.server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "$BASE_URL/ready" && break; sleep 0.2; done
  local start load all
  start=$(cpu_seconds)
  taskset -c 1 "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" --traces "$TRACES" --rate "$RATE" --concurrency 8 --seed 1 \
    >"$RESULTS_DIR/$name.loadgen.txt" 2>&1 || fail "loadgen failed: $RESULTS_DIR/$name.loadgen.txt"
  load=$(cpu_seconds)
  curl -s "$BASE_URL/metrics" >"$RESULTS_DIR/$name.metrics-load.txt"
  curl -s -o /dev/null --max-time 900 -X POST "$BASE_URL/flush"
  all=$(cpu_seconds)
  curl -s "$BASE_URL/metrics" >"$RESULTS_DIR/$name.metrics.txt"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  local spans per_load per_all stored
  spans=$(awk '$1 == "spans_acknowledged" { print $2 }' "$RESULTS_DIR/$name.loadgen.txt")
  per_load=$(calc "%.3f" "($load - $start) * 1000000 / $spans")
  per_all=$(calc "%.3f" "($all - $start) * 1000000 / $spans")
  stored=$(du -sb "$dir/blocks" | cut -f1)
  printf '%-9s %9s spans  CPU s per million spans: load %6s  all-in %6s  stored %6.2f bytes per span received\n' \
    "$name" "$spans" "$per_load" "$per_all" "$(calc "%.2f" "$stored / $spans")" | tee -a "$RESULTS_DIR/summary.txt"
  if [[ "$2" == 1 ]]; then
    LOAD_ON+=("$per_load"); ALL_ON+=("$per_all"); STORED_ON=$(calc "%.2f" "$stored / $spans")
    local index live
    index=$(metric "$RESULTS_DIR/$name.metrics-load.txt" tracery_ingester_live_index_bytes)
    live=$(metric "$RESULTS_DIR/$name.metrics-load.txt" tracery_ingester_live_traces)
    PENDING_BYTES=$(calc "%.0f" "$index / ($live > 0 ? $live : 1)")
    log "$name: $live live traces at the end of the load, index $index bytes: $PENDING_BYTES bytes a trace"
  else
    LOAD_OFF+=("$per_load"); ALL_OFF+=("$per_all"); STORED_OFF=$(calc "%.2f" "$stored / $spans")
  fi
  rm -rf "$dir"
}
for pair in $(seq "$PAIRS"); do run_once "$pair" 0; run_once "$pair" 1; done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.3f", s / NR }'; }
{
  echo
  echo "tail sampling cost: $PAIRS off/on pairs, $TRACES traces a run at $RATE spans/s, server on CPU 0"
  echo "  CPU s per million spans, load:   off $(mean "${LOAD_OFF[@]}")  on $(mean "${LOAD_ON[@]}")"
  echo "  CPU s per million spans, all-in: off $(mean "${ALL_OFF[@]}")  on $(mean "${ALL_ON[@]}")"
  echo "  memory per live (pending or kept) trace with sampling on: $PENDING_BYTES bytes"
  echo "  stored bytes per span received: off $STORED_OFF  on $STORED_ON"
  echo "  results in $RESULTS_DIR"
} | tee -a "$RESULTS_DIR/summary.txt"
