#!/usr/bin/env bash
# Search benchmark on this machine, all on 127.0.0.1: loads BENCH_SPANS spans of the load
# generator's shop traffic (or reuses a data directory kept by an earlier run), flushes them
# into blocks, then times /api/search for the issue's query shapes and the two TraceQL metrics
# queries with querybench, and reports the server's CPU per scanned span and its peak RSS.
#
#   bench/search.sh                              # 10 M spans, new data, removed afterwards
#   BENCH_KEEP_DATA=1 bench/search.sh            # keep the data directory (printed at the end)
#   BENCH_DATA_DIR=/tmp/tracery-search.X bench/search.sh   # reuse it: no load, queries only
#   BENCH_ONLY="count_over_20 full_scan" ...     # only the queries named (by their result names)
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BENCH_BUILD_DIR:-$REPO_DIR/build-bench}
SPANS=${BENCH_SPANS:-10000000}
QUERIES=${BENCH_QUERIES:-200}
HTTP_PORT=${BENCH_HTTP_PORT:-3200}
GRPC_PORT=${BENCH_GRPC_PORT:-4317}
DATA_PARENT=${BENCH_DATA_PARENT:-/tmp}
DATA_DIR=${BENCH_DATA_DIR:-}
KEEP_DATA=${BENCH_KEEP_DATA:-0}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
ONLY=${BENCH_ONLY:-}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BUILD_DIR/bench-results/search-$(date +%Y%m%d-%H%M%S)}
BASE_URL="http://127.0.0.1:$HTTP_PORT"

log() { echo "search.sh: $*" >&2; }
fail() { log "error: $*"; exit 1; }

if [[ "$SKIP_BUILD" != 1 ]]; then
  [[ -f "$BUILD_DIR/build.ninja" ]] || cmake -S "$REPO_DIR" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD_DIR" tracery loadgen querybench >&2
fi
TRACERY_BIN=${TRACERY_BIN:-$BUILD_DIR/tracery}
LOADGEN=$BUILD_DIR/bench/loadgen
QUERYBENCH=$BUILD_DIR/bench/querybench

if curl -s -o /dev/null --max-time 1 "$BASE_URL/ready"; then
  fail "something already answers on $BASE_URL; stop it or set BENCH_HTTP_PORT"
fi
mkdir -p "$RESULTS_DIR"
reuse=0
if [[ -n "$DATA_DIR" && -d "$DATA_DIR/blocks" ]]; then
  reuse=1
else
  DATA_DIR=$(mktemp -d "$DATA_PARENT/tracery-search.XXXXXX")
fi
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "$KEEP_DATA" == 1 || "$reuse" == 1 ]]; then log "data kept in $DATA_DIR"; else rm -rf "$DATA_DIR"; fi
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
ingester:
  trace_idle_period: 5s
  max_block_duration: 30m
# The queries are timed on the blocks as cut: compaction, which would merge them while the
# queries run (and take CPU from them), is off.
compactor:
  disabled: true
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

"$TRACERY_BIN" -config.file="$DATA_DIR/config.yaml" >>"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!
for attempt in $(seq 240); do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$DATA_DIR/server.log" >&2; fail "tracery exited during startup"; }
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE_URL/ready")" == 200 ]] && break
  [[ $attempt == 240 ]] && fail "tracery not ready after 120 s"
  sleep 0.5
done

CLOCK_TICKS=$(getconf CLK_TCK)
server_cpu_seconds() {
  awk -v ticks="$CLOCK_TICKS" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / ticks }' "/proc/$SERVER_PID/stat"
}
server_rss_mib() { awk -v key="$1" '$1 == key { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
field() { awk -v key="$1" '$1 == key { print $2; exit }' "$2"; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

if [[ "$reuse" == 0 ]]; then
  # The shop traffic averages about 16 spans a trace.
  traces=$(( SPANS / 16 ))
  log "loading about $SPANS spans ($traces traces)"
  "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" --traces "$traces" --concurrency 8 --spans-per-request 300 \
    --record-ids "$DATA_DIR/trace_ids.txt" | tee "$RESULTS_DIR/loadgen.txt" >&2
  log "POST /flush"
  curl -s -o /dev/null --max-time 1800 -X POST "$BASE_URL/flush"
  cp "$RESULTS_DIR/loadgen.txt" "$DATA_DIR/loadgen.txt"
fi
spans=$(field spans_acknowledged "$DATA_DIR/loadgen.txt")
blocks=$(find "$DATA_DIR/blocks" -mindepth 2 -maxdepth 2 -type d | wc -l)
rss_before=$(server_rss_mib VmRSS:)
log "$spans spans in $blocks blocks; server RSS ${rss_before} MiB before the queries"

# The data's time span, for the metrics queries.
first=$(stat -c %Y "$DATA_DIR/loadgen.txt")
end=$(( first + 60 )); start=$(( end - 3600 ))

urlencode() { node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$1"; }
echo 1 >"$RESULTS_DIR/ids.txt"  # querybench wants an ID file; the paths here have no {id}
summary=()
run_query() {  # name, path
  local name=$1 path=$2 out="$RESULTS_DIR/$1.txt"
  if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then return 0; fi
  local cpu_before cpu_after
  cpu_before=$(server_cpu_seconds)
  "$QUERYBENCH" --url "$BASE_URL" --ids "$RESULTS_DIR/ids.txt" --path "$path" --queries "$QUERIES" \
    --concurrency 1 --warmup 2 >"$out" 2>&1 || log "querybench failed for $name (see $out)"
  cpu_after=$(server_cpu_seconds)
  local p50 p99 ok cpu_ms
  p50=$(field latency_p50_ms "$out"); p99=$(field latency_p99_ms "$out"); ok=$(field ok "$out")
  cpu_ms=$(calc "%.1f" "($cpu_after - $cpu_before) * 1000 / ($QUERIES + 2)")
  summary+=("$(printf '%-28s p50 %8s ms  p99 %8s ms  server CPU %8s ms/query  ok %s' "$name" "$p50" "$p99" "$cpu_ms" "$ok")")
  curl -s --max-time 120 "$BASE_URL$path" >"$RESULTS_DIR/$name.json"
}
search() {  # name, TraceQL, limit
  run_query "$1" "/api/search?q=$(urlencode "$2")&limit=${3:-20}&spss=3"
}

search no_match '{ resource.service.name = "no-such-service" }'
search selective_attribute '{ span.http.response.status_code = 503 }'
search duration_filter '{ duration > 900ms }'
search structural '{ resource.service.name = "frontend" } >> { status = error }'
search count_over_20 '{ } | count() > 20'
# The same two by Tempo 2.7's rule (the first 20 found, not the 20 newest), the hint opting in.
search selective_first_found '{ span.http.response.status_code = 503 } with(most_recent=false)'
search count_first_found '{ } | count() > 20 with(most_recent=false)'
# A value no span has, of an attribute every row group has: block format 3's value summaries
# rule every row group out without reading it (format 2 reads every span's value).
search absent_value '{ span.http.response.status_code = 999 }'
# Every span must be looked at (an attribute every row group has, a range no value is in): the
# full-scan rate.
QUERIES_SAVED=$QUERIES; QUERIES=${BENCH_SCAN_QUERIES:-5}
search full_scan '{ span.http.response.status_code > 600 }'
# The same with a regular expression on a string attribute: the dictionary is read and each
# distinct value matched once per row group.
search full_scan_regex '{ span.db.statement =~ ".*no-such-table.*" }'
QUERIES=$QUERIES_SAVED
run_query metrics_rate_by_service \
  "/api/metrics/query_range?q=$(urlencode '{ } | rate() by (resource.service.name)')&start=$start&end=$end&step=60"
run_query metrics_p99_by_service \
  "/api/metrics/query_range?q=$(urlencode '{ } | quantile_over_time(duration, .99) by (resource.service.name)')&start=$start&end=$end&step=60"

scan_line=$(printf '%s\n' "${summary[@]}" | grep -E '^full_scan +p50' || true)
scan_ms=$(echo "$scan_line" | awk '{ print $3 }')
scan_cpu_ms=$(echo "$scan_line" | awk '{ for (i = 1; i <= NF; i++) if ($i == "CPU") print $(i + 1) }')
echo
echo "== search benchmark: $spans spans in $blocks blocks =="
printf '%s\n' "${summary[@]}"
[[ -z "$scan_line" ]] || echo "full scan: $(calc "%.1f" "$spans / ($scan_ms / 1000) / 1e6") M spans/s wall, $(calc "%.1f" "$spans / ($scan_cpu_ms / 1000) / 1e6") M spans per CPU-second"
echo "server RSS: ${rss_before} MiB before the queries, peak $(server_rss_mib VmHWM:) MiB"
echo "results in $RESULTS_DIR"
