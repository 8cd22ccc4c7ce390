#!/usr/bin/env bash
# h2load_cost: the server's CPU per one-span OTLP request with a fast, neutral client (h2load,
# from Debian's nghttp2-client), so that the figure is the server's own cost and not that of a
# slow client leaving it idle between requests (bench/requests/request_cost.mjs, in Node, sends
# 10-20 k requests a second; h2load sends several times that).
#
#   bench/requests/h2load_cost.sh [requests=100000] [in-flight=16]
#   BENCH_FSYNC=none ...             the WAL written but not synced (default: batch)
#   BENCH_PHASES="http grpc" ...     which receivers (default both)
#   TRACERY_BIN=build-bench/tracery  the binary (default build/tracery)
#
# tracery runs pinned to CPU 0 and h2load to CPU 1. OTLP/HTTP: keep-alive HTTP/1.1, one
# connection per request in flight. OTLP/gRPC: one HTTP/2 connection carrying every request in
# flight as concurrent streams. Printed per phase: requests a second, server CPU per request
# (user + system, from /proc, in all and for the WAL writer), requests a WAL sync, h2load's mean
# and max request time, and the spans the server took (checked against the requests sent).
# h2load sends one body over and over, so every request is the same one-span trace: the server
# stores each as a new fragment of that live trace (and one copy at the cut).
set -euo pipefail
repository=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-100000}
inflight=${2:-16}
binary=${TRACERY_BIN:-$repository/build/tracery}
fsync=${BENCH_FSYNC:-batch}
phases=${BENCH_PHASES:-http grpc}
query_port=${BENCH_QUERY_PORT:-3395}
grpc_port=${BENCH_GRPC_PORT:-4395}
http_port=${BENCH_HTTP_PORT:-4396}
command -v h2load >/dev/null || { echo "h2load_cost: h2load is missing (scripts/setup.sh installs nghttp2-client)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tracery-h2load-XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One OTLP ExportTraceServiceRequest of one span, and the same framed for gRPC.
node --input-type=module - "$work" "$repository" <<'EOF'
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
const [work, repository] = process.argv.slice(2);
const { encodeSpans } = await import(`${repository}/tests/e2e/load.mjs`);
const now = BigInt(Date.now()) * 1_000_000n;
const body = encodeSpans([{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op-1', startTimeUnixNano: now, endTimeUnixNano: now + 1000n }]);
const prefix = Buffer.alloc(5);
prefix.writeUInt32BE(body.length, 1);
fs.writeFileSync(`${work}/body.bin`, body);
fs.writeFileSync(`${work}/grpc.bin`, Buffer.concat([prefix, body]));
EOF

cat >"$work/config.yaml" <<EOF
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $query_port
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$grpc_port
        http:
          endpoint: 127.0.0.1:$http_port
storage:
  trace:
    local:
      path: $work/blocks
    wal:
      path: $work/wal
      fsync: $fsync
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1000000000
      burst_size_bytes: 1000000000
    global:
      max_bytes_per_trace: 0
EOF

taskset -c 0 "$binary" -config.file="$work/config.yaml" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$query_port/ready" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$query_port/ready" || { cat "$work/server.log" >&2; exit 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
writer_ticks() {
  local total=0 task
  for task in /proc/"$server"/task/*; do
    [ "$(cat "$task/comm" 2>/dev/null)" = wal-writer ] && total=$((total + $(awk '{print $14 + $15}' "$task/stat")))
  done
  echo "$total"
}
metric() { curl -sf "http://127.0.0.1:$query_port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

echo "tracery $(basename "$binary"), WAL fsync: $fsync, $requests one-span requests a phase, $inflight in flight"
for phase in $phases; do
  cpu0=$(cpu_ticks); writer0=$(writer_ticks)
  syncs0=$(metric tracery_wal_syncs); spans0=$(metric tracery_ingester_spans_ingested_total)
  if [ "$phase" = http ]; then
    taskset -c 1 h2load --h1 -n "$requests" -c "$inflight" -d "$work/body.bin" \
      -H 'content-type: application/x-protobuf' "http://127.0.0.1:$http_port/v1/traces" >"$work/h2load.out"
  else
    taskset -c 1 h2load -n "$requests" -c 1 -m "$inflight" -d "$work/grpc.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$grpc_port/opentelemetry.proto.collector.trace.v1.TraceService/Export" >"$work/h2load.out"
  fi
  cpu1=$(cpu_ticks); writer1=$(writer_ticks)
  syncs1=$(metric tracery_wal_syncs); spans1=$(metric tracery_ingester_spans_ingested_total)
  succeeded=$(awk '/^requests:/ {print $8}' "$work/h2load.out")
  rate=$(awk '/^finished in/ {print $4}' "$work/h2load.out")
  latency=$(awk '/^time for request:/ {print $6 " mean, " $5 " max"}' "$work/h2load.out")
  awk -v phase="$phase" -v n="$requests" -v ok="$succeeded" -v rate="$rate" -v latency="$latency" \
      -v cpu=$((cpu1 - cpu0)) -v writer=$((writer1 - writer0)) -v ticks="$ticks" \
      -v syncs="$(awk -v a="$syncs0" -v b="$syncs1" 'BEGIN {print b - a}')" \
      -v spans="$(awk -v a="$spans0" -v b="$spans1" 'BEGIN {print b - a}')" 'BEGIN {
    us = cpu * 1e6 / ticks / n; writer_us = writer * 1e6 / ticks / n
    printf "%-4s %s req/s, server CPU %.1f us/request (WAL writer %.1f), %s requests a sync, request time %s; %d of %d answered 2xx, %d spans stored\n",
      phase, rate, us, writer_us, (syncs > 0 ? sprintf("%.1f", n / syncs) : "-"), latency, ok, n, spans
  }'
  if [ "$(awk -v a="$spans0" -v b="$spans1" 'BEGIN {print b - a}')" != "$requests" ]; then
    echo "h2load_cost: the server stored a different number of spans than requests were sent" >&2
    exit 1
  fi
done
