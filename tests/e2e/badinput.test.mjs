// Hostile and broken input: every request here must be refused with the status the contract
// names, the server must stay up, and nothing may be written outside
// <dataDir>/blocks/<valid tenant>/ and <dataDir>/wal/.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import {
  startServer, reportServerOnFailure, httpRequest, rawHttpStatus, listTree, runToExit,
  makeTemporaryRoot, defaultConfig, toYaml, pickFreeLoopbackPort,
} from './harness.mjs';
import { encodeExportRequest } from './protowire.mjs';
import { exportRawOverGrpc } from './rawgrpc.mjs';
import { readTraceJson } from './otlp.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';

// A small valid request; `overrides` replace fields of its only span.
function oneSpanRequest(overrides = {}) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'badinput' } }] },
      scopeSpans: [{
        scope: { name: 'e2e.badinput' },
        spans: [{
          traceId: randomTraceId(),
          spanId: randomSpanId(),
          name: 'probe',
          kind: 1,
          startTimeUnixNano: now.toString(),
          endTimeUnixNano: (now + 1000n).toString(),
          ...overrides,
        }],
      }],
    }],
  };
}

const spanOf = (request) => request.resourceSpans[0].scopeSpans[0].spans[0];

async function postTraces(server, body, headers) {
  return httpRequest(`${server.otlpHttpUrl}/v1/traces`, { method: 'POST', headers, body });
}

async function assertStillReady(server, after) {
  let response;
  try {
    response = await httpRequest(`${server.httpUrl}/ready`, { timeoutMs: 5000 });
  } catch (error) {
    assert.fail(`after ${after}: GET /ready failed (${error.cause?.code ?? error.message}); server exit: ${JSON.stringify(server.exit)}`);
  }
  assert.equal(response.status, 200, `after ${after}: GET /ready answered ${response.status}`);
}

// Posts a body too large to be accepted, writing it whole as exporters do. The server may
// answer before reading all of it; node's http client still delivers an answer that arrived
// before the write failed, so that is what is checked. If the server closes the socket while
// body bytes are still unread, the kernel resets the connection and the client never sees
// the answer: to a sender that is a network error (which exporters retry), not a 413.
function postLargeBody(port, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1', port, path: '/v1/traces', method: 'POST',
      headers: { ...headers, 'Content-Length': body.length },
    });
    let settled = false;
    request.on('response', (response) => {
      settled = true;
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', (error) => {
      setTimeout(() => {
        if (settled) return;
        reject(new Error(`${error.code ?? error.message} after writing ${request.socket?.bytesWritten ?? '?'} bytes (headers included) of a ${body.length}-byte body, `
          + 'before any HTTP answer could be read: the server closed the connection without draining the body, '
          + 'so the client never receives the 413'));
      }, 200);
    });
    request.setTimeout(30_000, () => request.destroy(new Error('no answer within 30 s')));
    request.end(body);
  });
}

// The only paths a server may create under its temporary root. `validTenants` are the tenant
// directories allowed directly under blocks/.
async function assertNoStrayFiles(server, validTenants, hostileNames) {
  const entries = await listTree(server.root);
  const stray = [];
  for (const { path: entry, isSymlink } of entries) {
    const parts = entry.split('/');
    if (isSymlink) stray.push(`${entry} (symlink)`);
    if (entry === 'config.yaml' || entry === 'data') continue;
    if (parts[0] !== 'data') { stray.push(entry); continue; }
    if (parts.length === 2 && (parts[1] === 'blocks' || parts[1] === 'wal')) continue;
    if (parts[1] === 'blocks' && validTenants.includes(parts[2])) continue;
    if (parts[1] === 'wal') {
      if (parts.slice(2).some((part) => hostileNames.includes(part))) stray.push(`${entry} (named after a hostile tenant)`);
      continue;
    }
    stray.push(entry);
  }
  assert.deepEqual(stray, [], `paths outside data/blocks/<valid tenant>/ and data/wal/ under ${server.root}`);
}

// With multitenancy off every trace belongs to one tenant whose name is the server's choice,
// so at most one directory may exist under blocks/.
async function assertSingleTenantLayout(server) {
  const entries = await listTree(`${server.dataDir}/blocks`).catch(() => []);
  const tenants = [...new Set(entries.map((entry) => entry.path.split('/')[0]))];
  assert.ok(tenants.length <= 1, `at most one tenant directory under blocks/, found: ${tenants.join(', ')}`);
  await assertNoStrayFiles(server, tenants, []);
  return tenants;
}

describe('malformed ingest requests are refused and change nothing', () => {
  let server;
  before(async () => { server = await startServer(); });
  reportServerOnFailure(() => server, { afterEach, after });

  it('accepts a well-formed request (control for the refusals below)', async () => {
    const request = oneSpanRequest();
    const json = await postTraces(server, JSON.stringify(request), { 'Content-Type': 'application/json' });
    assert.equal(json.status, 200, `JSON: ${json.text()}`);
    const protobuf = await postTraces(server, encodeExportRequest(oneSpanRequest()), { 'Content-Type': 'application/x-protobuf' });
    assert.equal(protobuf.status, 200, `protobuf: ${protobuf.text()}`);
    const read = await readTraceJson(server, spanOf(request).traceId);
    assert.equal(read.status, 200);
    assert.equal(read.spans.length, 1);
  });

  const validProtobuf = () => encodeExportRequest(oneSpanRequest());
  const protobufHeaders = { 'Content-Type': 'application/x-protobuf' };
  const jsonHeaders = { 'Content-Type': 'application/json' };
  const jsonWith = (overrides) => JSON.stringify(oneSpanRequest(overrides));
  const protobufWith = (overrides) => encodeExportRequest(oneSpanRequest(overrides));

  const refusals = [
    // The outer resource_spans field spans the whole message, so any cut lands inside it.
    { name: 'protobuf missing its last byte', body: () => validProtobuf().subarray(0, validProtobuf().length - 1), headers: protobufHeaders, status: 400 },
    { name: 'protobuf cut in half', body: () => { const bytes = validProtobuf(); return bytes.subarray(0, bytes.length >> 1); }, headers: protobufHeaders, status: 400 },
    { name: 'a length prefix of 4 GiB', body: () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), headers: protobufHeaders, status: 400 },
    { name: 'a varint longer than 10 bytes', body: () => Buffer.alloc(16, 0xff), headers: protobufHeaders, status: 400 },
    { name: 'an end-group tag with no group', body: () => Buffer.from('this is not protobuf'), headers: protobufHeaders, status: 400 },
    { name: 'truncated JSON', body: () => '{"resourceSpans": [', headers: jsonHeaders, status: 400 },
    { name: 'text that is not JSON', body: () => 'not json at all', headers: jsonHeaders, status: 400 },
    { name: 'JSON whose resourceSpans is a string', body: () => '{"resourceSpans": "nope"}', headers: jsonHeaders, status: 400 },
    { name: 'JSON trace id of 15 bytes', body: () => jsonWith({ traceId: 'ab'.repeat(15) }), headers: jsonHeaders, status: 400 },
    { name: 'JSON trace id of 17 bytes', body: () => jsonWith({ traceId: 'ab'.repeat(17) }), headers: jsonHeaders, status: 400 },
    { name: 'JSON trace id that is not hex', body: () => jsonWith({ traceId: 'zz'.repeat(16) }), headers: jsonHeaders, status: 400 },
    { name: 'JSON trace id of all zeros', body: () => jsonWith({ traceId: '00'.repeat(16) }), headers: jsonHeaders, status: 400 },
    { name: 'JSON span id of 7 bytes', body: () => jsonWith({ spanId: 'cd'.repeat(7) }), headers: jsonHeaders, status: 400 },
    { name: 'JSON span id that is not hex', body: () => jsonWith({ spanId: 'xx'.repeat(8) }), headers: jsonHeaders, status: 400 },
    { name: 'protobuf trace id of 15 bytes', body: () => protobufWith({ traceId: Buffer.alloc(15, 7) }), headers: protobufHeaders, status: 400 },
    { name: 'protobuf trace id of all zeros', body: () => protobufWith({ traceId: Buffer.alloc(16) }), headers: protobufHeaders, status: 400 },
    { name: 'protobuf span id of 9 bytes', body: () => protobufWith({ spanId: Buffer.alloc(9, 7) }), headers: protobufHeaders, status: 400 },
    { name: 'a Content-Type of text/plain', body: () => jsonWith({}), headers: { 'Content-Type': 'text/plain' }, status: 415 },
    { name: 'a Content-Type of application/xml', body: () => '<spans/>', headers: { 'Content-Type': 'application/xml' }, status: 415 },
    { name: 'Content-Encoding gzip on a body that is not gzip', body: () => jsonWith({}), headers: { ...jsonHeaders, 'Content-Encoding': 'gzip' }, status: 400 },
    { name: 'a gzip stream cut short', body: () => gzipSync(jsonWith({})).subarray(0, 20), headers: { ...jsonHeaders, 'Content-Encoding': 'gzip' }, status: 400 },
  ];

  for (const refusal of refusals) {
    it(`refuses ${refusal.name} with ${refusal.status}`, async () => {
      const response = await postTraces(server, refusal.body(), refusal.headers);
      assert.equal(response.status, refusal.status, `POST /v1/traces with ${refusal.name}: got ${response.status} ${response.text().slice(0, 300)}`);
      await assertStillReady(server, refusal.name);
      await assertSingleTenantLayout(server);
    });
  }

  it('refuses a 20 MiB body with 413', async () => {
    const padding = 'p'.repeat(20 * 1024 * 1024);
    const body = Buffer.from(jsonWith({ attributes: [{ key: 'padding', value: { stringValue: padding } }] }));
    const status = await postLargeBody(server.otlpHttpPort, body, jsonHeaders);
    assert.equal(status, 413, `a ${body.length}-byte body answered ${status}`);
    await assertStillReady(server, 'a 20 MiB body');
  });

  it('refuses a gzip body that inflates past the limit with 413', async () => {
    // About 20 KiB on the wire, 20 MiB once inflated: the limit applies after decompression.
    const padding = 'p'.repeat(20 * 1024 * 1024);
    const body = gzipSync(jsonWith({ attributes: [{ key: 'padding', value: { stringValue: padding } }] }));
    const status = await postLargeBody(server.otlpHttpPort, body, { ...jsonHeaders, 'Content-Encoding': 'gzip' });
    assert.equal(status, 413, `a gzip body of ${body.length} bytes inflating to 20 MiB answered ${status}`);
    await assertStillReady(server, 'a gzip bomb');
  });

  it('answers 404 for unknown paths on both ports', async () => {
    const ingest = await httpRequest(`${server.otlpHttpUrl}/v1/nothing`, { method: 'POST', headers: jsonHeaders, body: '{}' });
    assert.equal(ingest.status, 404, `POST /v1/nothing on the OTLP port: ${ingest.status}`);
    const query = await httpRequest(`${server.httpUrl}/api/nothing-here`);
    assert.equal(query.status, 404, `GET /api/nothing-here: ${query.status}`);
    await assertStillReady(server, 'unknown paths');
  });

  it('answers 400 for GET /api/traces/xyz', async () => {
    const response = await httpRequest(`${server.httpUrl}/api/traces/xyz`);
    assert.equal(response.status, 400, `GET /api/traces/xyz: ${response.status} ${response.text()}`);
  });

  it('refuses malformed gRPC exports with INVALID_ARGUMENT and accepts a valid one', async () => {
    const valid = await exportRawOverGrpc(server.grpcAddr, validProtobuf());
    assert.equal(valid.name, 'OK', `valid export: ${valid.name} ${valid.details}`);
    const cases = [
      ['garbage bytes', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])],
      ['protobuf cut in half', (() => { const bytes = validProtobuf(); return bytes.subarray(0, bytes.length >> 1); })()],
      ['all-zero trace id', protobufWith({ traceId: Buffer.alloc(16) })],
      ['trace id of 15 bytes', protobufWith({ traceId: Buffer.alloc(15, 1) })],
      ['span id of 7 bytes', protobufWith({ spanId: Buffer.alloc(7, 1) })],
    ];
    for (const [name, bytes] of cases) {
      const result = await exportRawOverGrpc(server.grpcAddr, bytes);
      assert.equal(result.name, 'INVALID_ARGUMENT', `gRPC export with ${name}: ${result.name} ${result.details}`);
    }
    await assertStillReady(server, 'malformed gRPC exports');
  });

  it('wrote nothing outside blocks/<tenant> and wal/', async () => {
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
    assert.equal(flush.status, 204);
    const tenants = await assertSingleTenantLayout(server);
    assert.equal(tenants.length, 1, 'the flush wrote the accepted spans under blocks/<tenant>/');
  });
});

describe('hostile tenant ids are refused and never become paths', () => {
  let server;
  const goodTenant = 'tenant-a';
  const longestValidTenant = 't'.repeat(150);
  const punctuationTenant = "Ok!-_.*'()";
  const hostileTenants = [
    ['../x', 'parent directory'],
    ['..', 'dot-dot'],
    ['.', 'dot'],
    ['a/b', 'slash'],
    ['a\\b', 'backslash'],
    ['%2e%2e', 'percent-encoded dot-dot'],
    ['x'.repeat(10 * 1024), '10 KiB long'],
    ['t'.repeat(151), '151 characters'],
    ['a b', 'space'],
    ['tenant:x', 'colon'],
  ];
  const validTenants = [goodTenant, longestValidTenant, punctuationTenant];
  const hostileNames = ['x', '%2e%2e', 'a\\b', 'a b', 'tenant:x', 't'.repeat(151), 'x'.repeat(10 * 1024)];

  before(async () => { server = await startServer({ configOverrides: { multitenancy_enabled: true } }); });
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps tenants apart and requires the header', async () => {
    const request = oneSpanRequest();
    const traceId = spanOf(request).traceId;
    const stored = await postTraces(server, JSON.stringify(request), { 'Content-Type': 'application/json', 'X-Scope-OrgID': goodTenant });
    assert.equal(stored.status, 200, `valid tenant: ${stored.text()}`);
    const own = await readTraceJson(server, traceId, { headers: { 'X-Scope-OrgID': goodTenant } });
    assert.equal(own.status, 200, 'the owning tenant reads its trace');
    assert.equal(own.spans.length, 1);
    const other = await readTraceJson(server, traceId, { headers: { 'X-Scope-OrgID': 'tenant-b' } });
    assert.equal(other.status, 404, 'another tenant must not see the trace');
    const anonymousRead = await readTraceJson(server, traceId);
    assert.equal(anonymousRead.status, 401, 'reading without X-Scope-OrgID');
    const anonymousWrite = await postTraces(server, JSON.stringify(oneSpanRequest()), { 'Content-Type': 'application/json' });
    assert.equal(anonymousWrite.status, 401, 'writing without X-Scope-OrgID');
    const anonymousGrpc = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(oneSpanRequest()));
    assert.equal(anonymousGrpc.name, 'UNAUTHENTICATED', `gRPC without x-scope-orgid: ${anonymousGrpc.details}`);
    const grpcWithTenant = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(oneSpanRequest()), { metadata: { 'x-scope-orgid': goodTenant } });
    assert.equal(grpcWithTenant.name, 'OK', `gRPC with a valid tenant: ${grpcWithTenant.details}`);
  });

  it('accepts tenant ids at the edge of the allowed set (150 characters, punctuation)', async () => {
    for (const tenant of [longestValidTenant, punctuationTenant]) {
      const response = await postTraces(server, JSON.stringify(oneSpanRequest()), { 'Content-Type': 'application/json', 'X-Scope-OrgID': tenant });
      assert.equal(response.status, 200, `tenant ${JSON.stringify(tenant)}: ${response.status} ${response.text()}`);
    }
  });

  for (const [tenant, description] of hostileTenants) {
    it(`refuses the ${description} tenant on HTTP and gRPC`, async () => {
      // A 10 KiB header may be refused by the HTTP layer before the tenant check.
      const acceptable = tenant.length > 8192 ? [400, 431] : [400];
      const write = await postTraces(server, JSON.stringify(oneSpanRequest()), { 'Content-Type': 'application/json', 'X-Scope-OrgID': tenant });
      assert.ok(acceptable.includes(write.status), `POST with tenant ${description}: expected ${acceptable.join(' or ')}, got ${write.status} ${write.text().slice(0, 200)}`);
      const read = await httpRequest(`${server.httpUrl}/api/traces/${randomTraceId()}`, { headers: { 'X-Scope-OrgID': tenant } });
      assert.ok(acceptable.includes(read.status), `GET with tenant ${description}: expected ${acceptable.join(' or ')}, got ${read.status}`);
      const grpcResult = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(oneSpanRequest()), { metadata: { 'x-scope-orgid': tenant } });
      if (tenant.length > 8192) {
        // gRPC transports cap metadata size; any refusal is acceptable, acceptance is not.
        assert.notEqual(grpcResult.name, 'OK', `gRPC with tenant ${description} was accepted`);
      } else {
        assert.equal(grpcResult.name, 'INVALID_ARGUMENT', `gRPC with tenant ${description}: ${grpcResult.name} ${grpcResult.details}`);
      }
      await assertStillReady(server, `tenant ${description}`);
      await assertNoStrayFiles(server, validTenants, hostileNames);
    });
  }

  it('refuses an empty tenant', async () => {
    const write = await postTraces(server, JSON.stringify(oneSpanRequest()), { 'Content-Type': 'application/json', 'X-Scope-OrgID': '' });
    assert.ok([400, 401].includes(write.status), `empty X-Scope-OrgID: ${write.status}`);
    const grpcResult = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(oneSpanRequest()), { metadata: { 'x-scope-orgid': '' } });
    assert.ok(['INVALID_ARGUMENT', 'UNAUTHENTICATED'].includes(grpcResult.name), `empty x-scope-orgid over gRPC: ${grpcResult.name}`);
  });

  it('refuses control characters in the tenant (sent on a raw socket)', async () => {
    const body = JSON.stringify(oneSpanRequest());
    for (const tenant of ['a\x01b', 'a\x7fb', 'ten\x1bant']) {
      const requestBytes = Buffer.concat([
        Buffer.from(`POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Scope-OrgID: `),
        Buffer.from(tenant, 'latin1'),
        Buffer.from(`\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`),
      ]);
      const status = await rawHttpStatus(server.otlpHttpPort, requestBytes);
      assert.equal(status, 400, `tenant with control character ${JSON.stringify(tenant)}: got ${status}`);
    }
    await assertStillReady(server, 'control characters in the tenant');
  });

  it('wrote nothing outside blocks/<valid tenant> and wal/, even after a flush', async () => {
    await assertNoStrayFiles(server, validTenants, hostileNames);
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
    assert.equal(flush.status, 204);
    const blocks = await listTree(`${server.dataDir}/blocks`);
    assert.ok(blocks.some((entry) => entry.path.startsWith(`${goodTenant}/`)), `the flush wrote blocks/${goodTenant}/...; found: ${blocks.map((e) => e.path).join(', ')}`);
    await assertNoStrayFiles(server, validTenants, hostileNames);
  });
});

describe('ingestion rate limits', () => {
  let server;
  before(async () => {
    server = await startServer({
      configOverrides: { overrides: { defaults: { ingestion: { rate_limit_bytes: 2000, burst_size_bytes: 4000 } } } },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  const requestOfAboutOneKilobyte = () => oneSpanRequest({
    attributes: [{ key: 'padding', value: { stringValue: 'r'.repeat(900) } }],
  });

  it('answers 429 with Retry-After once a tenant exceeds its rate, and RESOURCE_EXHAUSTED on gRPC', async () => {
    const statuses = [];
    let retryAfter = null;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const response = await postTraces(server, JSON.stringify(requestOfAboutOneKilobyte()), { 'Content-Type': 'application/json' });
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers.get('retry-after');
    }
    assert.equal(statuses[0], 200, `the first request fits in the burst: ${statuses.join(',')}`);
    assert.ok(statuses.includes(429), `twenty 1 KiB requests at once against 2000 B/s must hit the limit: ${statuses.join(',')}`);
    assert.ok(statuses.every((status) => status === 200 || status === 429), `only 200 or 429: ${statuses.join(',')}`);
    assert.ok(retryAfter !== null && retryAfter !== '', 'a 429 carries Retry-After');

    const grpcNames = [];
    let exhausted = null;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const result = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(requestOfAboutOneKilobyte()));
      grpcNames.push(result.name);
      if (result.name === 'RESOURCE_EXHAUSTED') exhausted = result;
    }
    assert.ok(grpcNames.includes('RESOURCE_EXHAUSTED'), `gRPC past the limit: ${grpcNames.join(',')}`);
    // OTLP clients retry RESOURCE_EXHAUSTED only when the status carries RetryInfo.
    assert.ok(exhausted.statusDetails && Buffer.from(exhausted.statusDetails).includes('type.googleapis.com/google.rpc.RetryInfo'),
      'RESOURCE_EXHAUSTED from the rate limit carries google.rpc.RetryInfo in grpc-status-details-bin');
    await assertStillReady(server, 'rate limiting');
  });
});

describe('configuration errors stop the process at startup', () => {
  // Writes the default config with `mutate` applied to its lines and returns the 1-based line
  // number of the line `mutate` marked.
  async function runWithConfig(mutate) {
    const directories = await makeTemporaryRoot();
    const [httpPort, grpcPort, otlpHttpPort] = [await pickFreeLoopbackPort(), await pickFreeLoopbackPort(), await pickFreeLoopbackPort()];
    const lines = toYaml(defaultConfig({ dataDir: directories.dataDir, httpPort, grpcPort, otlpHttpPort })).split('\n');
    const markedLine = mutate(lines);
    await writeFile(directories.configPath, lines.join('\n'));
    try {
      const result = await runToExit([`-config.file=${directories.configPath}`]);
      return { ...result, markedLine };
    } finally {
      await rm(directories.root, { recursive: true, force: true });
    }
  }

  const assertRefused = (result, key) => {
    assert.ok(!result.timedOut, `the process kept running with a bad config (${key}); output:\n${result.stderr}`);
    assert.notEqual(result.code, 0, `the process exited 0 with a bad config (${key})`);
    assert.ok(result.stderr.includes(key) || result.stdout.includes(key), `the message names ${key}:\n${result.stderr}`);
    assert.match(`${result.stderr}\n${result.stdout}`, new RegExp(`\\b${result.markedLine}\\b`),
      `the message names line ${result.markedLine}:\n${result.stderr}`);
  };

  it('refuses an unknown key, naming it and its line', async () => {
    const result = await runWithConfig((lines) => {
      const index = lines.findIndex((line) => line.trim().startsWith('http_listen_port:'));
      lines.splice(index + 1, 0, '  http_listen_prot: 3201');
      return index + 2;
    });
    assertRefused(result, 'http_listen_prot');
  });

  it('refuses a bad value, naming the key and its line', async () => {
    const result = await runWithConfig((lines) => {
      const index = lines.findIndex((line) => line.trim().startsWith('http_listen_port:'));
      lines[index] = '  http_listen_port: abc';
      return index + 1;
    });
    assertRefused(result, 'http_listen_port');
  });

  it('refuses an unknown top-level section', async () => {
    const result = await runWithConfig((lines) => {
      lines.push('distributer:', '  enabled: true');
      return lines.length - 1;
    });
    assertRefused(result, 'distributer');
  });
});
