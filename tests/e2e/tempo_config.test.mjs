// Tempo's configuration surface: Tempo-style files (2.x single binary, 3.0 layout, the Helm
// chart's flags and ${VAR}) start tracery, which ingests and answers; the keys that mean
// nothing in one process are named in one warning line; every problem of a bad file is
// reported in one run; -config.verify checks without starting; runtime overrides reload.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { makeTemporaryRoot, pickFreeLoopbackPort, repositoryRoot, runToExit, serverBinaryPath, spawnUntilReady, sleep } from './harness.mjs';

const cleanups = [];
after(async () => { for (const cleanup of cleanups) await cleanup(); });

async function startTracery(configText, { args = [], env = {} } = {}) {
  const directories = await makeTemporaryRoot();
  const [httpPort, otlpHttpPort, otlpGrpcPort, grpcQueryPort] = [await pickFreeLoopbackPort(), await pickFreeLoopbackPort(),
    await pickFreeLoopbackPort(), await pickFreeLoopbackPort()];
  const text = configText({ ...directories, httpPort, otlpHttpPort, otlpGrpcPort, grpcQueryPort });
  await writeFile(directories.configPath, text);
  let output = '';
  const started = await spawnUntilReady({
    name: 'tracery', binary: serverBinaryPath(),
    args: [`-config.file=${directories.configPath}`, ...args],
    spawnOptions: { env: { ...process.env, ...env } },
    onOutput: (chunk) => { output += chunk.toString(); },
    readyUrl: `http://127.0.0.1:${httpPort}/ready`, timeoutMs: 15_000, describe: () => output,
  });
  const server = { ...directories, httpPort, otlpHttpPort, grpcQueryPort, get output() { return output; }, child: started.child };
  cleanups.push(async () => { started.child.kill('SIGKILL'); await started.exited; await rm(directories.root, { recursive: true, force: true }); });
  return server;
}

function randomHex(bytes) { return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join(''); }

function otlpJson(traceId, name = 'op') {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
    scopeSpans: [{ spans: [{ traceId, spanId: randomHex(8), name, kind: 2, startTimeUnixNano: String(now - 1000000n), endTimeUnixNano: String(now) }] }] }] });
}

async function push(server, traceId, headers = {}) {
  const response = await fetch(`http://127.0.0.1:${server.otlpHttpPort}/v1/traces`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: otlpJson(traceId) });
  await response.arrayBuffer();
  return response;
}

async function readBack(server, traceId, prefix = '') {
  for (let i = 0; i < 50; i++) {
    const response = await fetch(`http://127.0.0.1:${server.httpPort}${prefix}/api/traces/${traceId}`);
    if (response.status === 200) return response.json();
    await response.arrayBuffer();
    await sleep(100);
  }
  throw new Error(`trace ${traceId} not found`);
}

function warningLine(output) {
  return output.split('\n').find((line) => line.includes('accepted and not applied')) ?? '';
}

test('a Tempo 2.x single-binary file starts, ingests and answers; its plumbing is in one warning line', async () => {
  const server = await startTracery(({ dataDir, httpPort, otlpHttpPort, otlpGrpcPort, grpcQueryPort }) => `
stream_over_http_enabled: true
server:
  http_listen_port: ${httpPort}
  http_listen_address: ""
  grpc_listen_port: ${grpcQueryPort}
  log_level: info
query_frontend:
  search:
    duration_slo: 5s
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:${otlpGrpcPort}
        http:
          endpoint: 127.0.0.1:${otlpHttpPort}
ingester:
  max_block_duration: 5m
  max_block_bytes: 1_000_000
  lifecycler:
    ring:
      replication_factor: 1
compactor:
  compaction:
    block_retention: 7d
memberlist:
  abort_if_cluster_join_fails: false
metrics_generator:
  storage:
    path: ${dataDir}/generator/wal
storage:
  trace:
    backend: local
    wal:
      path: ${dataDir}/wal
    local:
      path: ${dataDir}/blocks
    pool:
      max_workers: 100
usage_report:
  reporting_enabled: false
`);
  const traceId = randomHex(16);
  assert.equal((await push(server, traceId)).status, 200);
  const trace = await readBack(server, traceId);
  assert.equal(trace.batches.length, 1);
  const warnings = server.output.split('\n').filter((line) => line.includes('accepted and not applied'));
  assert.equal(warnings.length, 1, server.output);
  // Tempo's gRPC port serves the streaming query API (Grafana's streaming search dials it).
  const { StreamingQuerier } = grpc.loadPackageDefinition(protoLoader.loadSync('tempopb/tempo.proto', {
    includeDirs: [path.join(repositoryRoot, 'src/query/proto'), path.join(repositoryRoot, 'src/otlp/proto')],
    keepCase: false, longs: String, enums: String, defaults: false, oneofs: false,
  })).tempopb;
  const client = new StreamingQuerier(`127.0.0.1:${server.grpcQueryPort}`, grpc.credentials.createInsecure());
  const tags = await new Promise((resolve, reject) => {
    const messages = [];
    const call = client.SearchTagsV2({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    call.on('data', (message) => messages.push(message));
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
  client.close();
  assert.ok(tags[0].scopes.find((scope) => scope.name === 'resource').tags.includes('service.name'), JSON.stringify(tags));
  assert.ok(!warnings[0].includes('server.grpc_listen_port'), warnings[0]);
  for (const key of ['query_frontend.search.duration_slo', 'ingester.lifecycler', 'memberlist',
                     'metrics_generator.storage.path', 'storage.trace.pool', 'usage_report'])
    assert.ok(warnings[0].includes(key), `${key} missing from: ${warnings[0]}`);
});

test('a Tempo 3.0 file (live_store, backend_worker, Kafka ingest) starts and serves', async () => {
  const server = await startTracery(({ dataDir, httpPort, otlpHttpPort }) => `
target: all
server:
  http_listen_port: ${httpPort}
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 127.0.0.1:${otlpHttpPort}
live_store:
  max_trace_idle: 1s
  wal:
    path: ${dataDir}/wal
  ring:
    replication_factor: 1
backend_worker:
  compaction:
    block_retention: 336h
  ring:
    kvstore: {store: inmemory}
backend_scheduler:
  provider:
    compaction:
      max_jobs_per_tenant: 10
ingest:
  kafka: {address: kafka:9092, topic: tempo-ingest}
block_builder:
  consume_cycle_duration: 30s
storage:
  trace:
    backend: local
    local:
      path: ${dataDir}/blocks
`);
  const traceId = randomHex(16);
  assert.equal((await push(server, traceId)).status, 200);
  await readBack(server, traceId);
  const line = warningLine(server.output);
  for (const key of ['live_store.ring', 'backend_worker.ring', 'ingest', 'block_builder', 'backend_scheduler.provider.compaction.max_jobs_per_tenant'])
    assert.ok(line.includes(key), `${key} missing from: ${line}`);
});

test("the Helm chart's shape: -mem-ballast-size-mbs, -config.expand-env with ${VAR}, http_api_prefix", async () => {
  const server = await startTracery(({ httpPort, otlpHttpPort }) => `
http_api_prefix: /tempo
server:
  http_listen_port: ${httpPort}
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 127.0.0.1:${otlpHttpPort}
storage:
  trace:
    backend: local
    local:
      path: \${TRACERY_E2E_DATA}/blocks
    wal:
      path: \${TRACERY_E2E_DATA}/wal
    block:
      zstd_level: \${TRACERY_E2E_UNSET:-3}
`, { args: ['-mem-ballast-size-mbs=1024', '-config.expand-env=true'], env: { TRACERY_E2E_DATA: path.join((await makeTemporaryRoot()).dataDir) } });
  assert.ok(warningLine(server.output).includes('-mem-ballast-size-mbs'), server.output);
  const traceId = randomHex(16);
  assert.equal((await push(server, traceId)).status, 200);
  await readBack(server, traceId, '/tempo');
  const unprefixed = await fetch(`http://127.0.0.1:${server.httpPort}/api/traces/${traceId}`);
  assert.equal(unprefixed.status, 404);
  await unprefixed.arrayBuffer();
  assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/ready`)).status, 200);
});

test('-config.verify: 0 on a good file, 2 with every problem of a bad one, never binding ports', async () => {
  const { root, configPath } = await makeTemporaryRoot();
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const port = await pickFreeLoopbackPort();
  await writeFile(configPath, `server:\n  http_listen_port: ${port}\nmemberlist:\n  join_members: [a]\ningester:\n  max_block_bytes: 1_000_000\ncompactor:\n  compaction:\n    block_retention: 7d\n`);
  const good = await runToExit([`-config.file=${configPath}`, '-config.verify']);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /configuration is valid/);
  await writeFile(configPath, `server:\n  http_listen_prot: 3200\ningester:\n  trace_idle_period: forever\nstorage:\n  trace:\n    backend: s3\n`);
  const bad = await runToExit([`-config.file=${configPath}`, '-config.verify']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /3 problems/);
  assert.match(bad.stderr, /:2: unknown key `server\.http_listen_prot`/);
  assert.match(bad.stderr, /:4: bad value `forever` for `ingester\.trace_idle_period`/);
  assert.match(bad.stderr, /:7: .*object storage is not served yet: blocks in s3 land with the scale-out issue; use local/);
  const typoFlag = await runToExit([`-config.file=${configPath}`, '-config.verify', '-server.http-listen-prot=1']);
  assert.equal(typoFlag.code, 2);
  assert.match(typoFlag.stderr, /flag -server\.http-listen-prot: unknown flag/);
});

test('runtime overrides: lowering a tenant\'s rate limit in the file gets it 429; a bad reload keeps the previous limits', async () => {
  const { root, dataDir } = await makeTemporaryRoot();
  const overridesPath = path.join(root, 'overrides.yaml');
  await writeFile(overridesPath, 'overrides:\n  team-a:\n    ingestion:\n      rate_limit_bytes: 10MB\n      burst_size_bytes: 10MB\n');
  const server = await startTracery(({ httpPort, otlpHttpPort }) => `
multitenancy_enabled: true
server:
  http_listen_port: ${httpPort}
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 127.0.0.1:${otlpHttpPort}
overrides:
  per_tenant_override_config: ${overridesPath}
  per_tenant_override_period: 200ms
storage:
  trace:
    local:
      path: ${dataDir}/blocks
    wal:
      path: ${dataDir}/wal
`);
  const tenant = { 'X-Scope-OrgID': 'team-a' };
  assert.equal((await push(server, randomHex(16), tenant)).status, 200);
  // Legacy flat layout, 1 byte a second and a 1000-byte burst: a few requests use it up, and
  // the seconds the checks below may take on a loaded machine refill too little for another.
  await writeFile(overridesPath, 'overrides:\n  team-a:\n    ingestion_rate_limit_bytes: 1\n    ingestion_burst_size_bytes: 1000\n');
  let status = 0;
  for (let i = 0; i < 50 && status !== 429; i++) {
    await sleep(100);
    status = (await push(server, randomHex(16), tenant)).status;
  }
  assert.equal(status, 429, 'team-a was never refused after its limit was lowered');
  assert.equal((await push(server, randomHex(16), { 'X-Scope-OrgID': 'team-b' })).status, 200);
  // A bad file: logged, counted, the previous overrides stay.
  await writeFile(overridesPath, 'overrides:\n  team-a:\n    ingestion_rate_limit_byts: 10\n');
  let metrics = '';
  for (let i = 0; i < 50 && !/tracery_overrides_reload_failures_total [1-9]/.test(metrics); i++) {
    await sleep(100);
    metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  }
  assert.match(metrics, /tracery_overrides_reload_failures_total [1-9]/);
  assert.equal((await push(server, randomHex(16), tenant)).status, 429);
  assert.match(server.output, /ingestion_rate_limit_byts/);
});
