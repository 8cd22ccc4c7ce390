// request_cost: the server's CPU per request for small and large OTLP requests, over both
// receivers. Starts tracery pinned to CPU 0 (this client runs on CPU 1), sends N requests of
// S spans each over OTLP/HTTP (keep-alive) and over OTLP/gRPC, `concurrency` in flight, and
// reads the server's user+system CPU from /proc before and after each phase, in all and by
// thread name, and the WAL syncs (requests a sync: how many share one).
//
//   node bench/requests/request_cost.mjs [requests=20000] [concurrency=16]
//   BENCH_FSYNC=none ...   the same with the WAL written but not synced
//   BENCH_PHASES=grpc:1 ... only the phases named (receiver:spans a request)
//   BENCH_SERVER_CPUS=0-1 ...   the server's CPUs (taskset -c), 0 by default
// (run from the repository root after ./scripts/build.sh; uses tests/e2e's node_modules)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const repository = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repository, 'tests', 'e2e', 'package.json'));
const grpc = require('@grpc/grpc-js');
const { encodeSpans } = await import(path.join(repository, 'tests', 'e2e', 'load.mjs'));

const requests = Number(process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 16);
const binary = process.env.TRACERY_BIN ?? path.join(repository, 'build', 'tracery');
const ports = { query: 3390, grpc: 4390, http: 4391 };
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracery-request-cost-'));
fs.writeFileSync(path.join(dataDir, 'config.yaml'), `server:
  http_listen_address: 127.0.0.1
  http_listen_port: ${ports.query}
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:${ports.grpc}
        http:
          endpoint: 127.0.0.1:${ports.http}
storage:
  trace:
    local:
      path: ${dataDir}/blocks
    wal:
      path: ${dataDir}/wal
      fsync: ${process.env.BENCH_FSYNC ?? 'batch'}
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1000000000
      burst_size_bytes: 1000000000
`);

const server = spawn('taskset', ['-c', process.env.BENCH_SERVER_CPUS ?? '0', binary, `-config.file=${dataDir}/config.yaml`], { stdio: ['ignore', 'ignore', 'inherit'] });
const cpuSeconds = () => {
  const fields = fs.readFileSync(`/proc/${server.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
// CPU seconds per thread name (the WAL's writer, the receivers' io threads, the rest), from
// /proc/<pid>/task: where a request's cost lies.
const cpuByThread = () => {
  const byName = {};
  for (const task of fs.readdirSync(`/proc/${server.pid}/task`)) {
    let stat;
    try { stat = fs.readFileSync(`/proc/${server.pid}/task/${task}/stat`, 'utf8'); } catch { continue; }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byName[name] = (byName[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return byName;
};
const walSyncs = () => new Promise((resolve) => http.get(`http://127.0.0.1:${ports.query}/metrics`, (r) => {
  let text = '';
  r.on('data', (chunk) => { text += chunk; });
  r.on('end', () => resolve(Number(/^tracery_wal_syncs (\S+)/m.exec(text)?.[1] ?? 0)));
}).on('error', () => resolve(0)));
for (let i = 0; ; i += 1) {
  const ok = await new Promise((resolve) => http.get(`http://127.0.0.1:${ports.query}/ready`, (r) => { r.resume(); resolve(r.statusCode === 200); }).on('error', () => resolve(false)));
  if (ok) break;
  if (i > 100) throw new Error('tracery did not start');
  await new Promise((r) => setTimeout(r, 100));
}

function makeRequest(spans) {
  const traceId = randomBytes(16);
  const now = BigInt(Date.now()) * 1_000_000n;
  return encodeSpans(Array.from({ length: spans }, (_, index) => ({
    traceId, spanId: randomBytes(8), name: `op-${index % 7}`, startTimeUnixNano: now, endTimeUnixNano: now + 1000n,
  })));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
function postHttp(body) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: ports.http, path: '/v1/traces', method: 'POST', agent,
      headers: { 'Content-Type': 'application/x-protobuf', 'Content-Length': body.length } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(body);
  });
}
const client = new grpc.Client(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure());
function postGrpc(body) {
  return new Promise((resolve, reject) => client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    (b) => b, (b) => b, body, new grpc.Metadata(), {}, (error) => (error ? reject(error) : resolve())));
}

async function phase(name, send, spans, count) {
  const bodies = Array.from({ length: Math.min(count, 2000) }, () => makeRequest(spans));
  // Making large bodies can take longer than the server keeps an idle connection: start afresh.
  agent.destroy();
  const before = cpuSeconds();
  const threadsBefore = cpuByThread();
  const syncsBefore = await walSyncs();
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) { const index = next++; await send(bodies[index % bodies.length]); }
  }));
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds() - before;
  const threadsAfter = cpuByThread();
  const syncs = (await walSyncs()) - syncsBefore;
  const perThread = Object.keys(threadsAfter).sort()
    .map((thread) => [thread, threadsAfter[thread] - (threadsBefore[thread] ?? 0)])
    .filter(([, seconds]) => seconds > 0)
    .map(([thread, seconds]) => `${thread} ${(seconds * 1e6 / count).toFixed(1)}`).join(', ');
  console.log(`${name.padEnd(6)} ${String(spans).padStart(5)} spans/request: ${count} requests in ${seconds.toFixed(1)} s, ` +
    `server CPU ${(cpu * 1e6 / count).toFixed(1)} µs/request, ${(cpu * 1e6 / (count * spans)).toFixed(2)} µs/span; ` +
    `${syncs ? (count / syncs).toFixed(1) : '-'} requests a WAL sync; µs/request by thread: ${perThread}`);
}

// BENCH_PHASES picks phases, e.g. "grpc:1,http:1000" (receiver:spans a request); default all four.
const phases = (process.env.BENCH_PHASES ?? 'http:1,grpc:1,http:1000,grpc:1000').split(',').map((p) => p.split(':'));
try {
  for (const [receiver, spans] of phases) {
    const count = Number(spans) === 1 ? requests : Math.max(500, requests / 10);
    await phase(receiver, receiver === 'grpc' ? postGrpc : postHttp, Number(spans), count);
  }
} finally {
  client.close();
  agent.destroy();
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  fs.rmSync(dataDir, { recursive: true, force: true });
}
