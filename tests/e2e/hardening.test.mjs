// Hardening at the door (issue 14): what is acknowledged is what was decoded, and no client,
// careless or hostile, can take the server down. Each test below is one behaviour, tried
// from outside with the clients that broke it: multi-member gzip and exact encodings, UTF-8
// in every OTLP string, `Expect: 100-continue` with the real curl, method checks, the `end`
// overflow, slow headers, stalled bodies (HTTP) and stalled streams (gRPC) against the
// receiving budget, gzip amplification paid for by the tenant's rate, a thousand idle
// connections under a lowered descriptor limit, and a flush of thousands of tenants.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCallback, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import {
  startServer, reportServerOnFailure, httpRequest, sleep, TraceryServer, makeTemporaryRoot,
  defaultConfig, mergeConfig, toYaml, pickFreeLoopbackPort, spawnUntilReady, serverBinaryPath,
} from './harness.mjs';
import { bytesField, encodeExportRequest } from './protowire.mjs';
import { exportRawOverGrpc } from './rawgrpc.mjs';
import { rejectedSpanCount, residentMemory } from './load.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';

const execFile = promisify(execFileCallback);
const MiB = 1024 * 1024;
const protobufHeaders = { 'Content-Type': 'application/x-protobuf' };
const DEADLINE_EXCEEDED_CODE = '4';
const RESOURCE_EXHAUSTED_CODE = '8';

// ---------------------------------------------------------------------------------------
// Requests

// An ExportTraceServiceRequest (OTLP/JSON shape, for protowire.mjs) with one resource holding
// `spans` of one trace. Names, attribute keys and values may be Buffers, so a test can put
// bytes that are not UTF-8 where the protocol wants a string.
function traceRequest({ traceId = randomTraceId(), spans = [{}], resourceAttributes = [] } = {}) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId,
    request: {
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'hardening' } }, ...resourceAttributes] },
        scopeSpans: [{
          scope: { name: 'e2e.hardening' },
          spans: spans.map((span, index) => ({
            traceId,
            spanId: randomSpanId(),
            name: `span-${index}`,
            kind: 2,
            startTimeUnixNano: (now + BigInt(index)).toString(),
            endTimeUnixNano: (now + BigInt(index) + 1000n).toString(),
            ...span,
          })),
        }],
      }],
    },
  };
}

const spansOf = (request) => request.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
const spanIdsOf = (request) => spansOf(request).map((span) => span.spanId).sort();

function manySpans(count, prefix) {
  return Array.from({ length: count }, (_, index) => ({
    name: `${prefix}-${index}`,
    attributes: [{ key: 'index', value: { intValue: String(index) } }],
  }));
}

async function postTraces(server, body, headers = protobufHeaders) {
  return httpRequest(`${server.otlpHttpUrl}/v1/traces`, { method: 'POST', headers, body });
}

// Reads a trace through the v1 JSON answer. A 200 whose body is not valid JSON fails the
// test here: every answer must parse.
async function readTrace(server, traceId, { headers = {}, query = '', timeoutMs = 10_000 } = {}) {
  const url = `${server.httpUrl}/api/traces/${traceId}${query}`;
  const response = await httpRequest(url, { headers: { Accept: 'application/json', ...headers }, timeoutMs });
  if (response.status !== 200) return { status: response.status, text: response.text().slice(0, 300), spans: [], resources: [] };
  const raw = response.body;
  // TextDecoder with fatal: true refuses invalid UTF-8 that JSON.parse of a lossy decode would hide.
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    assert.fail(`GET ${url} answered 200 with a body that is not valid UTF-8: ${raw.toString('latin1').slice(0, 300)}`);
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    assert.fail(`GET ${url} answered 200 with invalid JSON (${error.message}): ${text.slice(0, 300)}`);
  }
  const spans = [];
  const resources = [];
  for (const resourceSpans of body.batches ?? []) {
    resources.push(resourceSpans.resource ?? {});
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) spans.push(span);
    }
  }
  return { status: 200, spans, resources, body };
}

const sortedSpanIds = (read) => read.spans.map((span) => span.spanId.toLowerCase()).sort();

// ---------------------------------------------------------------------------------------
// Raw connections

// A TCP connection that sends exactly what it is told and records what comes back and when
// the server closed its side.
class RawConnection {
  constructor(port) {
    this.openedAt = Date.now();
    this.received = [];
    this.firstByteAt = null;
    this.endedAt = null;
    this.error = null;
    this.socket = net.connect(port, '127.0.0.1');
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.connected.catch(() => {});
    this.socket.on('data', (chunk) => {
      this.firstByteAt ??= Date.now();
      this.received.push(chunk);
    });
    this.socket.on('end', () => { this.endedAt ??= Date.now(); });
    this.socket.on('close', () => { this.endedAt ??= Date.now(); });
    this.socket.on('error', (error) => { this.error = error; });
  }

  write(bytes) { this.socket.write(bytes); }
  get text() { return Buffer.concat(this.received).toString('latin1'); }
  get closed() { return this.endedAt !== null; }

  // Status and headers (lower-case names) once a whole response head has arrived, else null.
  get head() {
    const text = this.text;
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    const headers = new Map();
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return { status: match ? Number(match[1]) : null, statusLine, headers };
  }

  async waitUntil(predicate, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this) && Date.now() < deadline) await sleep(50);
    return predicate(this);
  }

  destroy() { this.socket.destroy(); }
}

async function waitForAll(connections, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!connections.every(predicate) && Date.now() < deadline) await sleep(50);
}

// ---------------------------------------------------------------------------------------
// The process

const clockTicksPerSecond = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; }
})();

// User plus system CPU of the whole process (all threads), in seconds.
async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond; // utime, stime
}

async function metricValue(server, name) {
  const response = await httpRequest(`${server.httpUrl}/metrics`);
  assert.equal(response.status, 200, `GET /metrics: ${response.status}`);
  const line = response.text().split('\n').find((entry) => entry.startsWith(`${name} `) || entry.startsWith(`${name}{`));
  return line === undefined ? null : Number(line.split(' ').pop());
}

async function timedReady(server, timeoutMs) {
  const started = Date.now();
  try {
    const response = await httpRequest(`${server.httpUrl}/ready`, { timeoutMs });
    return { status: response.status, elapsedMs: Date.now() - started };
  } catch (error) {
    return { status: null, elapsedMs: Date.now() - started, error: error.cause?.code ?? error.name };
  }
}

// =======================================================================================

describe('requests at the door: encodings, UTF-8, Expect, methods, time bounds, slow headers', () => {
  let server;
  before(async () => { server = await startServer(); });
  reportServerOnFailure(() => server, { afterEach, after });

  it('reads every gzip member, refuses bytes after the last, and knows its Content-Encoding tokens', async () => {
    // Two members, split where the request splits into two valid requests: a server that
    // stops after the first member would answer 200 and lose the second half's spans.
    const first = traceRequest({ spans: manySpans(5, 'first-member') });
    const second = traceRequest({ traceId: first.traceId, spans: manySpans(5, 'second-member') });
    const firstBytes = encodeExportRequest(first.request);
    const secondBytes = encodeExportRequest(second.request);
    const atBoundary = await postTraces(server, Buffer.concat([gzipSync(firstBytes), gzipSync(secondBytes)]),
      { ...protobufHeaders, 'Content-Encoding': 'gzip' });
    assert.equal(atBoundary.status, 200, `two gzip members split between two resource_spans: ${atBoundary.status} ${atBoundary.text()}`);
    const readBoundary = await readTrace(server, first.traceId);
    assert.equal(readBoundary.status, 200, `trace of the two-member body: ${readBoundary.status} ${readBoundary.text}`);
    assert.deepEqual(sortedSpanIds(readBoundary), [...spanIdsOf(first.request), ...spanIdsOf(second.request)].sort(),
      'every span of both gzip members is stored');

    // Split in the middle of the bytes: only the two members read as one make a request.
    const halves = traceRequest({ spans: manySpans(10, 'mid-split') });
    const whole = encodeExportRequest(halves.request);
    const middle = whole.length >> 1;
    const midSplit = await postTraces(server, Buffer.concat([gzipSync(whole.subarray(0, middle)), gzipSync(whole.subarray(middle))]),
      { ...protobufHeaders, 'Content-Encoding': 'gzip' });
    assert.equal(midSplit.status, 200, `gzip(first ${middle} bytes) + gzip(last ${whole.length - middle} bytes): ${midSplit.status} ${midSplit.text()}`);
    const readMid = await readTrace(server, halves.traceId);
    assert.equal(readMid.status, 200);
    assert.deepEqual(sortedSpanIds(readMid), spanIdsOf(halves.request), 'all 10 spans of the request split across two members');

    // Anything after the last member is refused, and nothing of the body is kept.
    const trailers = [
      ['ASCII garbage', Buffer.from('trailing garbage after the gzip stream')],
      ['a second member cut short', gzipSync(encodeExportRequest(traceRequest().request)).subarray(0, 12)],
      ['zero bytes', Buffer.alloc(16)],
    ];
    for (const [what, trailer] of trailers) {
      const refused = traceRequest({ spans: manySpans(3, 'trailing') });
      const response = await postTraces(server, Buffer.concat([gzipSync(encodeExportRequest(refused.request)), trailer]),
        { ...protobufHeaders, 'Content-Encoding': 'gzip' });
      assert.equal(response.status, 400, `a valid gzip body followed by ${what}: ${response.status} ${response.text()}`);
      const read = await readTrace(server, refused.traceId);
      assert.equal(read.status, 404, `a refused body (gzip + ${what}) must store nothing; the trace answered ${read.status} with ${read.spans.length} spans`);
    }

    // Content-Encoding is a token compared whole and without case.
    const encodings = [
      ['gzipx', gzipSync, 415],
      ['x-gzip', gzipSync, 200],
      ['GZIP', gzipSync, 200],
      ['deflate', deflateSync, 200],
    ];
    for (const [encoding, compress, expected] of encodings) {
      const sent = traceRequest({ spans: manySpans(2, `encoding-${encoding}`) });
      const response = await postTraces(server, compress(encodeExportRequest(sent.request)), { ...protobufHeaders, 'Content-Encoding': encoding });
      assert.equal(response.status, expected, `Content-Encoding: ${encoding}: ${response.status} ${response.text()}`);
      const read = await readTrace(server, sent.traceId);
      if (expected === 200) {
        assert.equal(read.status, 200, `trace sent with Content-Encoding: ${encoding}`);
        assert.deepEqual(sortedSpanIds(read), spanIdsOf(sent.request), `spans sent with Content-Encoding: ${encoding}`);
      } else {
        assert.equal(read.status, 404, `a body refused for Content-Encoding: ${encoding} must store nothing`);
      }
    }
  });

  it('refuses invalid UTF-8 in span names, attribute values and resource keys, and keeps valid multi-byte text intact', async () => {
    const invalid = [
      // 0xff never appears in UTF-8.
      ['a span name', (bytes) => traceRequest({ spans: [{ name: Buffer.concat([Buffer.from('bad-'), bytes]) }] })],
      // A three-byte sequence cut after two bytes (the euro sign without its last byte).
      ['a string attribute value', (bytes) => traceRequest({ spans: [{ attributes: [{ key: 'text', value: { stringValue: Buffer.concat([Buffer.from('v'), bytes]) } }] }] })],
      // A UTF-16 surrogate encoded as UTF-8 (CESU-8), which proto3 strings forbid.
      ['a resource attribute key', (bytes) => traceRequest({ resourceAttributes: [{ key: Buffer.concat([Buffer.from('k'), bytes]), value: { stringValue: 'v' } }] })],
    ];
    const badBytes = [Buffer.from([0xff]), Buffer.from([0xe2, 0x82]), Buffer.from([0xed, 0xa0, 0x80])];
    for (const [index, [where, build]] of invalid.entries()) {
      const overHttp = build(badBytes[index]);
      const response = await postTraces(server, encodeExportRequest(overHttp.request));
      assert.equal(response.status, 400, `invalid UTF-8 in ${where} over OTLP/HTTP: ${response.status}`);
      assert.match(response.body.toString('latin1'), /UTF-8/, `the 400 for invalid UTF-8 in ${where} says so: ${response.text()}`);
      const readHttp = await readTrace(server, overHttp.traceId);
      assert.equal(readHttp.status, 404, `a request refused for invalid UTF-8 in ${where} must store nothing (read ${readHttp.status})`);

      const overGrpc = build(badBytes[index]);
      const result = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(overGrpc.request));
      assert.equal(result.name, 'INVALID_ARGUMENT', `invalid UTF-8 in ${where} over gRPC: ${result.name} ${result.details}`);
      assert.match(result.details, /UTF-8/, `the gRPC status for invalid UTF-8 in ${where} says so`);
      const readGrpc = await readTrace(server, overGrpc.traceId);
      assert.equal(readGrpc.status, 404, `a gRPC export refused for invalid UTF-8 in ${where} must store nothing (read ${readGrpc.status})`);
    }

    // The same places with valid two-, three- and four-byte sequences.
    const spanName = 'café € 🚀 span';
    const attributeValue = 'naïve €5 😀';
    const resourceKey = 'clé.€.🔑';
    const arbitraryBytes = Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x80]);
    for (const transport of ['OTLP/HTTP', 'OTLP/gRPC']) {
      const valid = traceRequest({
        spans: [{
          name: spanName,
          attributes: [
            { key: 'text', value: { stringValue: attributeValue } },
            { key: 'raw.bytes', value: { bytesValue: arbitraryBytes.toString('base64') } },
          ],
        }],
        resourceAttributes: [{ key: resourceKey, value: { stringValue: 'ünïcödé' } }],
      });
      if (transport === 'OTLP/HTTP') {
        const response = await postTraces(server, encodeExportRequest(valid.request));
        assert.equal(response.status, 200, `valid multi-byte UTF-8 and a bytes_value over ${transport}: ${response.status} ${response.text()}`);
      } else {
        const result = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(valid.request));
        assert.equal(result.name, 'OK', `valid multi-byte UTF-8 and a bytes_value over ${transport}: ${result.name} ${result.details}`);
      }
      const read = await readTrace(server, valid.traceId);
      assert.equal(read.status, 200, `trace with multi-byte text sent over ${transport}`);
      assert.equal(read.spans.length, 1);
      const [span] = read.spans;
      assert.equal(span.name, spanName, 'the span name comes back as sent');
      const attributes = Object.fromEntries((span.attributes ?? []).map((kv) => [kv.key, kv.value]));
      assert.equal(attributes.text?.stringValue, attributeValue, 'the attribute value comes back as sent');
      assert.equal(Buffer.from(attributes['raw.bytes']?.bytesValue ?? '', 'base64').toString('hex'), arbitraryBytes.toString('hex'),
        'the bytes_value comes back byte for byte');
      const resourceKeys = read.resources.flatMap((resource) => (resource.attributes ?? []).map((kv) => kv.key));
      assert.ok(resourceKeys.includes(resourceKey), `the resource key comes back as sent; keys: ${JSON.stringify(resourceKeys)}`);
    }
  });

  it('answers Expect: 100-continue at once (curl does not wait its 1 s)', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'tracery-e2e-curl-'));
    try {
      const sent = traceRequest({ spans: [{ attributes: [{ key: 'padding', value: { stringValue: 'e'.repeat(8 * 1024) } }] }] });
      const bodyPath = path.join(directory, 'body.pb');
      const body = encodeExportRequest(sent.request);
      assert.ok(body.length > 1024, 'the body is over 1 KiB');
      await writeFile(bodyPath, body);
      const { stdout, stderr } = await execFile('curl', [
        '-s', '-v', '-o', '/dev/null', '-w', '%{http_code} %{time_total}',
        '-H', 'Content-Type: application/x-protobuf', '-H', 'Expect: 100-continue',
        '--data-binary', `@${bodyPath}`, `${server.otlpHttpUrl}/v1/traces`,
      ], { timeout: 10_000 });
      const [code, seconds] = stdout.trim().split(' ');
      assert.match(stderr, /> Expect: 100-continue/i, 'curl sent Expect: 100-continue');
      assert.equal(code, '200', `curl with Expect: 100-continue answered ${code}; curl -v:\n${stderr}`);
      assert.match(stderr, /< HTTP\/1\.1 100 Continue/, `the server sent 100 Continue; curl -v:\n${stderr}`);
      assert.ok(Number(seconds) < 0.5, `the request took ${seconds} s (curl waits 1 s when no 100 Continue comes)`);
      const read = await readTrace(server, sent.traceId);
      assert.equal(read.status, 200, 'the body sent after 100 Continue is stored');
      assert.equal(read.spans.length, 1);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('checks methods: 405 with Allow, the query API GET only, /flush POST only', async () => {
    const ingest = await httpRequest(`${server.otlpHttpUrl}/v1/traces`);
    assert.equal(ingest.status, 405, `GET /v1/traces: ${ingest.status}`);
    assert.equal(ingest.headers.get('allow'), 'POST', 'GET /v1/traces names the allowed method');
    const put = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, { method: 'PUT', headers: protobufHeaders, body: encodeExportRequest(traceRequest().request) });
    assert.equal(put.status, 405, `PUT /v1/traces: ${put.status}`);

    const stored = traceRequest();
    assert.equal((await postTraces(server, encodeExportRequest(stored.request))).status, 200);
    for (const target of [`/api/traces/${stored.traceId}`, '/api/echo', '/ready']) {
      const get = await httpRequest(`${server.httpUrl}${target}`);
      assert.equal(get.status, 200, `GET ${target} (control): ${get.status}`);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const response = await httpRequest(`${server.httpUrl}${target}`, { method, body: method === 'DELETE' ? undefined : '' });
        assert.equal(response.status, 405, `${method} ${target}: ${response.status} ${response.text().slice(0, 200)}`);
        assert.equal(response.headers.get('allow'), 'GET', `${method} ${target} answers Allow: GET`);
      }
    }

    const getFlush = await httpRequest(`${server.httpUrl}/flush`);
    assert.equal(getFlush.status, 405, `GET /flush: ${getFlush.status}`);
    assert.equal(getFlush.headers.get('allow'), 'POST', 'GET /flush answers Allow: POST');
    const postFlush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
    assert.equal(postFlush.status, 204, `POST /flush: ${postFlush.status} ${postFlush.text()}`);
  });

  it('reads a stored trace with end=18446744073 (no overflow), live and after a flush', async () => {
    const stored = traceRequest({ spans: manySpans(3, 'end-overflow') });
    assert.equal((await postTraces(server, encodeExportRequest(stored.request))).status, 200);
    const query = '?start=0&end=18446744073';
    const live = await readTrace(server, stored.traceId, { query });
    assert.equal(live.status, 200, `live trace with ${query}: ${live.status} ${live.text}`);
    assert.deepEqual(sortedSpanIds(live), spanIdsOf(stored.request));
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
    assert.equal(flush.status, 204);
    const fromBlock = await readTrace(server, stored.traceId, { query });
    assert.equal(fromBlock.status, 200, `flushed trace with ${query}: ${fromBlock.status} ${fromBlock.text}`);
    assert.deepEqual(sortedSpanIds(fromBlock), spanIdsOf(stored.request));
  });

  it('answers 408 to headers that stall, and closes a silent connection without an answer', async () => {
    // The header timeout is 30 s and not configurable: both connections run side by side.
    const partial = new RawConnection(server.otlpHttpPort);
    const silent = new RawConnection(server.otlpHttpPort);
    try {
      await Promise.all([partial.connected, silent.connected]);
      partial.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\n');
      await Promise.all([
        partial.waitUntil((c) => c.head !== null || c.closed, 40_000),
        silent.waitUntil((c) => c.closed, 40_000),
      ]);
      const answeredAfter = ((partial.firstByteAt ?? Date.now()) - partial.openedAt) / 1000;
      assert.equal(partial.head?.status, 408, `stalled headers: ${JSON.stringify(partial.text.slice(0, 200))} after ${answeredAfter} s (closed: ${partial.closed})`);
      assert.ok(answeredAfter >= 25 && answeredAfter <= 35, `408 came ${answeredAfter} s after the first bytes; the header timeout is 30 s`);
      const silentAfter = ((silent.endedAt ?? Date.now()) - silent.openedAt) / 1000;
      assert.ok(silent.closed, 'a connection that sent nothing is closed');
      assert.equal(silent.text, '', 'a connection that sent nothing is closed without an answer');
      assert.ok(silentAfter >= 25 && silentAfter <= 35, `the silent connection was closed after ${silentAfter} s; expected about 30 s`);
    } finally {
      partial.destroy();
      silent.destroy();
    }
    assert.equal((await timedReady(server, 5000)).status, 200);
  });
});

// =======================================================================================

describe('stalled bodies are charged to the receiving budget before they are read', () => {
  const budget = 64 * MiB;
  const announced = 15_000_000;
  const connectionCount = 40;
  const sentBytes = 1_000_000;
  let server;
  before(async () => {
    server = await startServer({ configOverrides: { distributor: { max_inflight_bytes: '64MiB', max_request_bytes: '16MiB' } } });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('answers 429 with Retry-After past the budget, keeps RSS bounded and /ready up, and recovers', async () => {
    const baseline = await residentMemory(server.proc.pid);
    const mayFit = Math.floor(budget / announced);
    const connections = Array.from({ length: connectionCount }, () => new RawConnection(server.otlpHttpPort));
    try {
      await Promise.all(connections.map((c) => c.connected));
      const head = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n'
        + `Content-Length: ${announced}\r\n\r\n`;
      const partialBody = Buffer.alloc(sentBytes, 0x0a);
      const sentAt = Date.now();
      for (const connection of connections) connection.write(Buffer.concat([Buffer.from(head), partialBody]));
      await waitForAll(connections, (c) => c.head !== null, 3000);
      await sleep(500); // a connection within the budget must not be answered: it is still sending
      const answerSeconds = (Date.now() - sentAt) / 1000;

      const answers = connections.map((c) => c.head);
      const refused = answers.filter((a) => a?.status === 429);
      const unanswered = answers.filter((a) => a === null).length;
      const other = answers.filter((a) => a !== null && a.status !== 429).map((a) => a.statusLine);
      assert.deepEqual(other, [], 'stalled uploads are answered 429 or not at all');
      assert.ok(unanswered >= 1 && unanswered <= mayFit,
        `${unanswered} stalled uploads of ${announced} bytes were admitted; the 64 MiB budget holds at most ${mayFit} (and at least one must be)`);
      assert.equal(refused.length, connectionCount - unanswered, `uploads past the budget answered 429 within ${answerSeconds} s`);
      for (const answer of refused) {
        assert.ok(answer.headers.has('retry-after'), `a 429 carries Retry-After: ${answer.statusLine} ${JSON.stringify([...answer.headers])}`);
      }

      const ready = await timedReady(server, 2000);
      assert.equal(ready.status, 200, `GET /ready while ${unanswered} uploads stall: ${ready.status ?? ready.error} after ${ready.elapsedMs} ms`);

      const memory = await residentMemory(server.proc.pid);
      const limit = budget + 150 * MiB;
      console.log(`stalled bodies: ${refused.length} answered 429, ${unanswered} admitted and stalled; `
        + `VmHWM ${(memory.peakBytes / MiB).toFixed(1)} MiB (before: ${(baseline.peakBytes / MiB).toFixed(1)} MiB), VmRSS ${(memory.currentBytes / MiB).toFixed(1)} MiB`);
      assert.ok(memory.peakBytes < limit, `peak RSS ${(memory.peakBytes / MiB).toFixed(1)} MiB over ${(limit / MiB).toFixed(0)} MiB`);
    } finally {
      for (const connection of connections) connection.destroy();
    }

    // With the stalled uploads gone their charge is returned and a normal request goes in.
    const after = traceRequest();
    let response;
    const deadline = Date.now() + 5000;
    do {
      response = await postTraces(server, encodeExportRequest(after.request));
      if (response.status === 200) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.equal(response.status, 200, `a normal request after the stalled uploads closed: ${response.status} ${response.text()}`);
    assert.equal((await readTrace(server, after.traceId)).status, 200);
  });
});

// =======================================================================================

describe('stalled gRPC streams are charged as they arrive and cut after the stall timeout', () => {
  const budget = 64 * MiB;
  const streamsPerConnection = 25;
  const connectionCount = 4;
  const announced = 15_000_000;
  const sentBytes = 1_000_000;
  const stallSeconds = 3;
  let server;
  before(async () => {
    server = await startServer({
      configOverrides: {
        distributor: {
          max_inflight_bytes: '64MiB', max_request_bytes: '16MiB', request_stall_timeout: `${stallSeconds}s`, request_read_timeout: '20s',
        },
      },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  // A call that announces `announced` bytes, sends the first `sentBytes` and then nothing.
  function stalledCall(session) {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(announced, 1);
    const stream = session.request({
      ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc', te: 'trailers',
    });
    const outcome = { status: null, message: '', answeredAt: null, closedAt: null, rstCode: null };
    const record = (headers) => {
      if (headers['grpc-status'] === undefined) return;
      outcome.status ??= headers['grpc-status'];
      outcome.message ||= decodeURIComponent(headers['grpc-message'] ?? '');
      outcome.answeredAt ??= Date.now();
    };
    stream.on('response', record);
    stream.on('trailers', record);
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.on('close', () => { outcome.closedAt = Date.now(); outcome.rstCode = stream.rstCode; });
    stream.write(Buffer.concat([prefix, Buffer.alloc(sentBytes, 0x0a)]));
    return outcome;
  }

  it('refuses past max_inflight_bytes, keeps RSS bounded, answers DEADLINE_EXCEEDED after the stall and returns the memory', async () => {
    const baseline = await residentMemory(server.proc.pid);
    const sessions = Array.from({ length: connectionCount }, () => {
      const session = http2.connect(`http://${server.grpcAddr}`);
      session.on('error', () => {});
      return session;
    });
    try {
      const sentAt = Date.now();
      const calls = sessions.flatMap((session) => Array.from({ length: streamsPerConnection }, () => stalledCall(session)));
      const total = calls.length;
      // Everything is sent at once; past the budget a stream is refused as its bytes arrive.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && calls.filter((c) => c.status !== null).length < total - Math.floor(budget / sentBytes)) await sleep(50);
      await sleep(300);
      const refused = calls.filter((c) => c.status === RESOURCE_EXHAUSTED_CODE);
      const waiting = calls.filter((c) => c.status === null);
      const other = calls.filter((c) => c.status !== null && c.status !== RESOURCE_EXHAUSTED_CODE).map((c) => `${c.status} ${c.message}`);
      assert.deepEqual(other, [], 'stalled calls are refused RESOURCE_EXHAUSTED or wait');
      const mayFit = Math.floor(budget / sentBytes);
      assert.ok(waiting.length >= 1 && waiting.length <= mayFit,
        `${waiting.length} stalled calls of ${sentBytes} bytes held; the 64 MiB budget holds at most ${mayFit} (and at least one must be)`);
      assert.ok(refused.length >= total - mayFit, `${refused.length} of ${total} refused past the budget`);

      const ready = await timedReady(server, 2000);
      assert.equal(ready.status, 200, `GET /ready while ${waiting.length} gRPC calls stall: ${ready.status ?? ready.error}`);
      const during = await residentMemory(server.proc.pid);
      const limit = budget + 150 * MiB;
      assert.ok(during.peakBytes < limit, `peak RSS ${(during.peakBytes / MiB).toFixed(1)} MiB over ${(limit / MiB).toFixed(0)} MiB`);

      // The held calls are cut by the stall timeout, not before.
      await waitForAll(calls, (c) => c.status !== null && c.closedAt !== null, (stallSeconds + 5) * 1000);
      const cut = calls.filter((c) => c.status === DEADLINE_EXCEEDED_CODE);
      assert.equal(cut.length, waiting.length, `held calls answered: ${JSON.stringify(waiting.map((c) => [c.status, c.message]).slice(0, 5))}`);
      for (const call of cut) {
        const seconds = (call.answeredAt - sentAt) / 1000;
        assert.ok(seconds >= stallSeconds - 0.5 && seconds <= stallSeconds + 3, `DEADLINE_EXCEEDED after ${seconds} s; the stall timeout is ${stallSeconds} s`);
        assert.match(call.message, /no request data arrived/);
        assert.ok(call.closedAt !== null, 'the stream is closed (RST_STREAM: the client is told to stop sending)');
      }
      await sleep(500);
      const afterCut = await residentMemory(server.proc.pid);
      console.log(`stalled gRPC calls: ${refused.length} refused RESOURCE_EXHAUSTED, ${cut.length} held then DEADLINE_EXCEEDED; `
        + `VmHWM ${(during.peakBytes / MiB).toFixed(1)} MiB (before: ${(baseline.peakBytes / MiB).toFixed(1)} MiB, VmRSS ${(baseline.currentBytes / MiB).toFixed(1)}), `
        + `VmRSS while held ${(during.currentBytes / MiB).toFixed(1)} MiB, after the cut ${(afterCut.currentBytes / MiB).toFixed(1)} MiB`);
      assert.ok(afterCut.currentBytes < baseline.currentBytes + 32 * MiB,
        `RSS after the stalled calls were cut: ${(afterCut.currentBytes / MiB).toFixed(1)} MiB, before them ${(baseline.currentBytes / MiB).toFixed(1)} MiB`);

      // Their charge is returned: a whole budget's worth of calls goes in on the same connections.
      const sent = traceRequest();
      const exported = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(sent.request), { timeoutMs: 5000 });
      assert.equal(exported.name, 'OK', `an export after the stalled calls were cut: ${exported.name} ${exported.details}`);
      assert.equal((await readTrace(server, sent.traceId)).status, 200);
    } finally {
      for (const session of sessions) session.destroy();
    }
  });
});

// =======================================================================================

describe('decompressed bytes are charged to the tenant rate (amplification is paid for)', () => {
  const rateBytes = 15_000_000;
  const burstBytes = 20_000_000;
  let server;
  before(async () => {
    server = await startServer({
      configOverrides: {
        overrides: { defaults: { ingestion: { rate_limit_bytes: rateBytes, burst_size_bytes: burstBytes }, global: { max_bytes_per_trace: 64_000_000 } } },
      },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  async function walBytes() {
    const directory = path.join(server.dataDir, 'wal');
    let total = 0;
    for (const name of await readdir(directory)) total += (await stat(path.join(directory, name))).size;
    return total;
  }

  // A valid one-span request whose span carries an unknown field (99) of `padding` zero bytes:
  // about 15 KB on the wire once gzipped.
  function amplifiedRequest(padding) {
    const fixed64 = (number, value) => {
      const bytes = Buffer.alloc(9);
      bytes[0] = (number << 3) | 1;
      bytes.writeBigUInt64LE(value, 1);
      return bytes;
    };
    const now = BigInt(Date.now()) * 1_000_000n;
    const span = Buffer.concat([
      bytesField(1, Buffer.from(randomTraceId(), 'hex')), bytesField(2, Buffer.from(randomSpanId(), 'hex')),
      bytesField(5, 'amplified'), fixed64(7, now), fixed64(8, now + 1000n), bytesField(99, Buffer.alloc(padding)),
    ]);
    return Buffer.concat([bytesField(1, bytesField(2, bytesField(2, span)))]);
  }

  it('lets 20 requests of 15 KB that inflate to 15 MiB each write no more than the rate allows', async () => {
    const body = gzipSync(amplifiedRequest(15 * MiB));
    const inflated = gunzipSync(body).length;
    const walBefore = await walBytes();
    const started = Date.now();
    const statuses = [];
    for (let i = 0; i < 20; i += 1) {
      const response = await postTraces(server, body, { ...protobufHeaders, 'Content-Encoding': 'gzip' });
      statuses.push(response.status);
      if (response.status === 429) assert.ok(response.headers.get('retry-after'), 'a 429 carries Retry-After');
    }
    const seconds = (Date.now() - started) / 1000;
    const accepted = statuses.filter((s) => s === 200).length;
    const walGrowth = (await walBytes()) - walBefore;
    console.log(`amplification: ${body.length} bytes on the wire, ${inflated} inflated; ${accepted} of 20 accepted in ${seconds.toFixed(1)} s `
      + `(${JSON.stringify(statuses)}); WAL +${(walGrowth / MiB).toFixed(1)} MiB`);
    assert.deepEqual(statuses.filter((s) => s !== 200 && s !== 429), [], 'answers are 200 or 429');
    const allowed = Math.floor((burstBytes + rateBytes * seconds) / inflated);
    assert.ok(accepted >= 1 && accepted <= allowed, `${accepted} accepted; the rate (burst ${burstBytes}, ${rateBytes}/s over ${seconds} s) pays for ${allowed}`);
    assert.ok(walGrowth <= accepted * (inflated + MiB), `the WAL grew ${walGrowth} bytes for ${accepted} accepted requests of ${inflated}`);
  });
});

// =======================================================================================

// The harness runs the binary directly; this server is started under `prlimit` so its
// descriptor limit (soft and hard) is 1024, as on many hosts.
class LowDescriptorLimitServer extends TraceryServer {
  async start() {
    const ports = new Set();
    while (ports.size < 3) ports.add(await pickFreeLoopbackPort());
    [this.httpPort, this.grpcPort, this.otlpHttpPort] = [...ports];
    await writeFile(this.configPath, toYaml(mergeConfig(defaultConfig(this), this.configOverrides)));
    this.starts += 1;
    this.output.append(Buffer.from(`\n----- tracery start #${this.starts} under prlimit --nofile=1024:1024 (${serverBinaryPath()}) -----\n`));
    this.exit = null;
    const started = await spawnUntilReady({
      name: 'tracery (prlimit)',
      binary: 'prlimit',
      args: ['--nofile=1024:1024', serverBinaryPath(), `-config.file=${this.configPath}`],
      onOutput: (chunk) => this.output.append(chunk),
      readyUrl: `${this.httpUrl}/ready`,
      timeoutMs: 20_000,
      describe: () => this.stderr,
    });
    this.proc = started.child;
    this.exited = started.exited.then((exit) => { this.exit = exit; return exit; });
    return this;
  }
}

describe('a thousand idle connections under a descriptor limit of 1024', () => {
  const idleCount = 1100;
  let server;
  before(async () => {
    server = new LowDescriptorLimitServer({ ...(await makeTemporaryRoot()), configOverrides: {}, extraArgs: [] });
    await server.start();
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps /ready, gRPC ingest and queries answering without spinning, and counts refused connections', async () => {
    // prlimit execs the server, so the child's pid is tracery's (what the CPU samples read).
    const command = (await readFile(`/proc/${server.proc.pid}/comm`, 'utf8')).trim();
    assert.ok(command.startsWith('tracery'), `the spawned process is tracery, not ${command}`);
    const limits = await readFile(`/proc/${server.proc.pid}/limits`, 'utf8');
    assert.match(limits, /^Max open files\s+1024\s+1024/m, `prlimit applied to the tracery process:\n${limits}`);
    assert.match(server.stderr, /file descriptor limit 1024\b/, 'the log states the file descriptor limit at start');

    const idle = [];
    try {
      for (let index = 0; index < idleCount; index += 1) idle.push(new RawConnection(server.otlpHttpPort));
      const outcomes = await Promise.allSettled(idle.map((c) => c.connected));
      const connectFailures = outcomes.filter((o) => o.status === 'rejected').length;
      await sleep(1000); // let the server accept (or refuse) the backlog
      const closedByServer = idle.filter((c) => c.closed).length;
      console.log(`idle connections: ${idleCount} opened (${connectFailures} failed to connect), ${closedByServer} closed at once by the server`);

      const ready = await timedReady(server, 2000);
      assert.equal(ready.status, 200, `GET /ready with ${idleCount} idle connections: ${ready.status ?? ready.error} after ${ready.elapsedMs} ms`);
      assert.ok(ready.elapsedMs < 2000, `GET /ready took ${ready.elapsedMs} ms`);

      const cpuBefore = await cpuSeconds(server.proc.pid);
      await sleep(2000);
      const cpuUsed = (await cpuSeconds(server.proc.pid)) - cpuBefore;
      console.log(`idle connections: server CPU ${cpuUsed.toFixed(2)} s over 2 s; GET /ready in ${ready.elapsedMs} ms`);
      assert.ok(cpuUsed < 0.5, `the server used ${cpuUsed.toFixed(2)} s of CPU in 2 s with idle connections open (accept spin?)`);

      const sent = traceRequest({ spans: manySpans(2, 'fd-limit') });
      const exported = await exportRawOverGrpc(server.grpcAddr, encodeExportRequest(sent.request), { timeoutMs: 5000 });
      assert.equal(exported.name, 'OK', `gRPC export with ${idleCount} idle HTTP connections: ${exported.name} ${exported.details}`);
      const read = await readTrace(server, sent.traceId, { timeoutMs: 2000 });
      assert.equal(read.status, 200, `query by ID with ${idleCount} idle HTTP connections: ${read.status} ${read.text}`);
      assert.deepEqual(sortedSpanIds(read), spanIdsOf(sent.request));

      const refusedConnections = await metricValue(server, 'tracery_http_connections_refused');
      assert.ok(refusedConnections > 0, `tracery_http_connections_refused is ${refusedConnections} after ${idleCount} connections with 1024 descriptors`);
      console.log(`idle connections: tracery_http_connections_refused ${refusedConnections}`);
    } finally {
      for (const connection of idle) connection.destroy();
    }
  });
});

// =======================================================================================

describe('a flush of many tenants runs off the query threads', () => {
  const tenantCount = 10000;
  let server;
  before(async () => { server = await startServer({ configOverrides: { multitenancy_enabled: true } }); });
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps answering trace-by-ID in under 1 s while 10 000 tenants are flushed', async () => {
    const reader = { 'X-Scope-OrgID': 'reader' };
    const watched = traceRequest({ spans: manySpans(2, 'watched') });
    assert.equal((await postTraces(server, encodeExportRequest(watched.request), { ...protobufHeaders, ...reader })).status, 200);

    const sentByTenant = new Map();
    let next = 0;
    const failures = [];
    async function sender() {
      while (next < tenantCount) {
        const tenant = `t-${next++}`;
        const sent = traceRequest();
        const response = await postTraces(server, encodeExportRequest(sent.request), { ...protobufHeaders, 'X-Scope-OrgID': tenant });
        if (response.status === 200) sentByTenant.set(tenant, sent);
        else failures.push(`${tenant}: ${response.status} ${response.text().slice(0, 100)}`);
      }
    }
    await Promise.all(Array.from({ length: 16 }, sender));
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${tenantCount} tenants' requests were refused`);

    // Two flushes at once (an operator and a script, or a retry): the query API has two
    // threads, so a flush that ran on them would leave none for the reads below.
    const flushStarted = Date.now();
    let flushDone = false;
    const postFlush = () => httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 120_000 });
    const flush = Promise.all([postFlush(), postFlush()]).finally(() => { flushDone = true; });
    const latencies = [];
    const slowOrFailed = [];
    while (!flushDone || latencies.length < 5) {
      const started = Date.now();
      let status;
      try {
        status = (await httpRequest(`${server.httpUrl}/api/traces/${watched.traceId}`, { headers: reader, timeoutMs: 5000 })).status;
      } catch (error) {
        status = error.cause?.code ?? error.name;
      }
      const elapsed = Date.now() - started;
      latencies.push(elapsed);
      if (status !== 200 || elapsed >= 1000) slowOrFailed.push(`${status} in ${elapsed} ms at +${started - flushStarted} ms`);
    }
    const flushed = await flush;
    const flushMs = Date.now() - flushStarted;
    console.log(`flush of ${tenantCount} tenants: ${flushed.map((f) => f.status).join(' and ')} in ${flushMs} ms; `
      + `${latencies.length} queries during it, slowest ${Math.max(...latencies)} ms`);
    for (const answer of flushed) assert.equal(answer.status, 204, `POST /flush of ${tenantCount} tenants: ${answer.status} ${answer.text()}`);
    assert.deepEqual(slowOrFailed, [], 'every trace-by-ID during the flush answered 200 in under 1 s');

    for (const tenant of ['t-0', `t-${tenantCount >> 1}`, `t-${tenantCount - 1}`]) {
      const sent = sentByTenant.get(tenant);
      const read = await readTrace(server, sent.traceId, { headers: { 'X-Scope-OrgID': tenant } });
      assert.equal(read.status, 200, `tenant ${tenant}'s trace after the flush: ${read.status} ${read.text}`);
      assert.deepEqual(sortedSpanIds(read), spanIdsOf(sent.request));
    }
  });
});

describe('max_bytes_per_trace holds for a trace sent in many small requests across block cuts', () => {
  const limit = 20_000;
  let server;
  before(async () => {
    server = await startServer({
      configOverrides: {
        ingester: { trace_idle_period: '1s', max_block_duration: '2s' },
        overrides: { defaults: { global: { max_bytes_per_trace: limit } } },
      },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('refuses spans past the limit once the trace has left memory for blocks, and stores no more than the limit', async () => {
    // One trace, one span a request (about 1 KB each, as a small SDK batch), 8 requests a
    // round: each round is well under the limit, and a flush between rounds moves the trace
    // into a block, so only the size kept for it across cuts can stop it.
    const traceId = randomTraceId();
    const padding = 'p'.repeat(900);
    const accepted = [];
    let acceptedBytes = 0;
    let refusedRequests = 0;
    let firstRefusalAfter = null;
    for (let round = 0; round < 6; round += 1) {
      for (let i = 0; i < 8; i += 1) {
        const sent = traceRequest({ traceId, spans: [{ name: `round-${round}-${i}`, attributes: [{ key: 'padding', value: { stringValue: padding } }] }] });
        const body = Buffer.from(encodeExportRequest(sent.request));
        const response = await postTraces(server, body);
        assert.equal(response.status, 200, `round ${round} request ${i}: ${response.status} ${response.text().slice(0, 200)}`);
        const rejected = rejectedSpanCount(response.body);
        if (rejected === 0) {
          accepted.push(spansOf(sent.request)[0].spanId);
          acceptedBytes += body.length;
        } else {
          assert.equal(rejected, 1, 'the one span of the request is reported rejected');
          firstRefusalAfter ??= acceptedBytes;
          refusedRequests += 1;
        }
      }
      const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
      assert.equal(flush.status, 204, `POST /flush after round ${round}`);
    }
    console.log(`one trace in 48 requests over 6 block cuts: ${accepted.length} accepted (${acceptedBytes} bytes as sent), `
      + `${refusedRequests} refused as partial success`);
    assert.ok(refusedRequests > 0, `no request refused: ${acceptedBytes} bytes accepted for one trace under a limit of ${limit}`);
    assert.ok(acceptedBytes <= limit, `${acceptedBytes} bytes accepted for one trace, past max_bytes_per_trace ${limit}`);
    // Not refused early: the first refusal came when one more request would have passed the limit.
    assert.ok(firstRefusalAfter > limit - 2 * 1100, `the first refusal came after only ${firstRefusalAfter} bytes`);

    const read = await readTrace(server, traceId);
    assert.equal(read.status, 200, `the trace after the flushes: ${read.status} ${read.text}`);
    assert.deepEqual(sortedSpanIds(read), [...accepted].sort(), 'the stored trace holds exactly the accepted spans');
  });
});
