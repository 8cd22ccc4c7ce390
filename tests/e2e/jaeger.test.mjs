// Jaeger in: spans sent by Jaeger's own Node client (UDP agent and HTTP collector senders),
// hand-made Thrift datagrams in both protocols, and a gRPC PostSpans call all come back from
// GET /api/traces/{id} as the OpenTelemetry Collector's Jaeger translation says, field by
// field; malformed input gets Jaeger's answers and leaves the server up.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import grpc from '@grpc/grpc-js';
import jaegerClient from 'jaeger-client';
import opentracing from 'opentracing';
import {
  startServer, reportServerOnFailure, httpRequest, pickFreeLoopbackPort, makeTemporaryRoot, defaultConfig,
  mergeConfig, toYaml, runToExit, sleep,
} from './harness.mjs';
import { assertSameSpans, readTraceWhenComplete } from './otlp.mjs';
import { bytesField, varintField } from './protowire.mjs';
import { encodeBatch, encodeEmitBatch } from './jaegerthrift.mjs';

const require = createRequire(import.meta.url);
const jaegerClientVersion = require('jaeger-client/package.json').version;
// The senders are not exported from the package's index; these are the client's own modules.
const HTTPSender = require('jaeger-client/dist/src/reporters/http_sender.js').default;
const UDPSender = require('jaeger-client/dist/src/reporters/udp_sender.js').default;
const POST_SPANS = '/jaeger.api_v2.CollectorService/PostSpans';

async function pickFreeUdpPort() {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

async function sendDatagram(port, bytes) {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise((resolve, reject) => socket.send(bytes, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
  } finally {
    socket.close();
  }
}

async function callGrpc(address, method, requestBytes, metadata = {}) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const callMetadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) callMetadata.set(key, value);
  try {
    return await new Promise((resolve) => {
      client.makeUnaryRequest(method, (b) => b, (b) => b, Buffer.from(requestBytes), callMetadata,
        { deadline: Date.now() + 10_000 }, (error, response) => resolve({ code: error ? error.code : grpc.status.OK,
          details: error?.details ?? '', response }));
    });
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------
// Expected spans, in otlp.mjs's normal form.

const sortKeys = (object) => Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const str = (v) => ['string', v];
const dbl = (v) => ['double', v];
const int = (v) => ['int', String(v)];
const bool = (v) => ['bool', v];
const bytes = (b) => ['bytes', Buffer.from(b).toString('base64')];
const hex = (big, width) => BigInt.asUintN(width * 4, BigInt(big)).toString(16).padStart(width, '0');
const micros = (us) => (BigInt(us) * 1000n).toString();

function expectedSpan({
  traceId, spanId, parentSpanId = '', name, kind = 0, start, end, attributes = {}, events = [], links = [],
  status = { code: 0, message: '' }, flags = 1, resource, scope = {}, traceState = '',
}) {
  return {
    traceId, spanId, parentSpanId, traceState, name, kind,
    startTimeUnixNano: start, endTimeUnixNano: end,
    attributes: sortKeys(attributes), droppedAttributesCount: 0,
    events: events.map((event) => ({ timeUnixNano: event.time, name: event.name ?? '', attributes: sortKeys(event.attributes ?? {}),
      droppedAttributesCount: 0 })),
    droppedEventsCount: 0,
    links: links.map((link) => ({ traceId: link.traceId, spanId: link.spanId, traceState: '',
      attributes: { 'opentracing.ref_type': str(link.type) }, droppedAttributesCount: 0, flags: 0 })),
    droppedLinksCount: 0,
    status,
    flags,
    resource: { attributes: sortKeys(resource), droppedAttributesCount: 0 },
    scope: { name: scope.name ?? '', version: scope.version ?? '', attributes: {}, droppedAttributesCount: 0 },
  };
}

async function assertTraceReads(server, traceId, expectedSpans, label) {
  const result = await readTraceWhenComplete(server, traceId, expectedSpans.map((span) => span.spanId), { patienceMs: 8000 });
  assert.equal(result.status, 200, `${label}: GET /api/traces/${traceId} answered ${result.status}: ${result.text ?? ''}`);
  assertSameSpans(result.spans, expectedSpans, `${label}: trace ${traceId}`);
  return result;
}

// ---------------------------------------------------------------------------------------
// Jaeger's Node client: a root with a log, a child (error, library scope), a follower that
// follows from the root and from a span of another trace.

async function runJaegerClient(sender, label) {
  const { Tracer, RemoteReporter, ConstSampler } = jaegerClient;
  const reporter = new RemoteReporter(sender, { bufferFlushInterval: 50 });
  const tags = { hostname: `${label}-host`, ip: '10.1.2.3', deployment: 'e2e', build: 7 };
  const tracer = new Tracer(`jaeger-${label}`, reporter, new ConstSampler(true), { tags, traceId128bit: true });
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;  // whole milliseconds: exact in microseconds

  const other = tracer.startSpan('elsewhere', { startTime: t0 });
  other.finish(t0 + 1);
  const root = tracer.startSpan('GET /checkout', {
    startTime: t0 + 10,
    tags: { 'span.kind': 'server', 'http.method': 'GET', 'http.status_code': 200, retried: true,
      'w3c.tracestate': 'vendor=1' },
  });
  root.log({ event: 'cache.miss', key: 'user:1', size: 3 }, t0 + 12);
  root.log({ message: 'no event name' }, t0 + 13);
  const child = tracer.startSpan('SELECT orders', { childOf: root, startTime: t0 + 20 });
  child.setTag('span.kind', 'client');
  child.setTag('error', true);
  child.setTag('otel.status_description', 'db down');
  child.setTag('otel.library.name', 'db-lib');
  child.setTag('otel.library.version', '2.0');
  child.setTag('blob', Buffer.from([0, 1, 254]));
  child.finish(t0 + 45);
  const follower = tracer.startSpan('async work', {
    startTime: t0 + 50,
    references: [new opentracing.Reference(opentracing.REFERENCE_FOLLOWS_FROM, root.context()),
      new opentracing.Reference(opentracing.REFERENCE_FOLLOWS_FROM, other.context())],
  });
  follower.finish(t0 + 70);
  root.finish(t0 + 100);
  await new Promise((resolve) => tracer.close(resolve));

  const traceIdOf = (span) => span.context().traceId.toString('hex').padStart(32, '0');
  const spanIdOf = (span) => span.context().spanId.toString('hex').padStart(16, '0');
  const rootTrace = traceIdOf(root);
  const ms = (t) => (BigInt(t) * 1_000_000n).toString();
  const resource = {
    'service.name': str(`jaeger-${label}`),
    'host.name': str(`${label}-host`),
    'opencensus.exporterversion': str(`Jaeger-Node-${jaegerClientVersion}`),
    ip: str('10.1.2.3'),
    deployment: str('e2e'),
    build: dbl(7),
    'client-uuid': null,  // random: filled in from the answer after its type is checked
  };
  const sampler = { 'sampler.type': str('const'), 'sampler.param': bool(true) };
  const spans = [
    expectedSpan({ traceId: rootTrace, spanId: spanIdOf(root), name: 'GET /checkout', kind: 2, start: ms(t0 + 10), end: ms(t0 + 100),
      traceState: 'vendor=1', resource,
      attributes: { ...sampler, 'http.method': str('GET'), 'http.status_code': dbl(200), retried: bool(true) },
      events: [{ time: ms(t0 + 12), name: 'cache.miss', attributes: { key: str('user:1'), size: dbl(3) } },
        { time: ms(t0 + 13), attributes: { message: str('no event name') } }] }),
    expectedSpan({ traceId: rootTrace, spanId: spanIdOf(child), parentSpanId: spanIdOf(root), name: 'SELECT orders', kind: 3,
      start: ms(t0 + 20), end: ms(t0 + 45), resource, attributes: { blob: bytes([0, 1, 254]) },
      status: { code: 2, message: 'db down' }, scope: { name: 'db-lib', version: '2.0' } }),
    expectedSpan({ traceId: rootTrace, spanId: spanIdOf(follower), parentSpanId: spanIdOf(root), name: 'async work',
      start: ms(t0 + 50), end: ms(t0 + 70), resource,
      links: [{ traceId: rootTrace, spanId: spanIdOf(root), type: 'follows_from' },
        { traceId: traceIdOf(other), spanId: spanIdOf(other), type: 'follows_from' }] }),
  ];
  const otherSpans = [expectedSpan({ traceId: traceIdOf(other), spanId: spanIdOf(other), name: 'elsewhere', start: ms(t0),
    end: ms(t0 + 1), resource, attributes: sampler })];
  return { traces: [[rootTrace, spans], [traceIdOf(other), otherSpans]] };
}

// The client's random client-uuid is taken from the answer once it is known to be a string.
function fillClientUuid(result, expectedSpans) {
  const uuid = result.spans[0]?.resource.attributes['client-uuid'];
  assert.ok(Array.isArray(uuid) && uuid[0] === 'string' && uuid[1].length > 0, `client-uuid is a string: ${JSON.stringify(uuid)}`);
  for (const span of expectedSpans) span.resource.attributes['client-uuid'] = uuid;
}

async function assertClientTraces(server, { traces }, label) {
  for (const [traceId, expectedSpans] of traces) {
    const first = await readTraceWhenComplete(server, traceId, expectedSpans.map((span) => span.spanId), { patienceMs: 8000 });
    assert.equal(first.status, 200, `${label}: trace ${traceId} answered ${first.status}`);
    fillClientUuid(first, expectedSpans);
    await assertTraceReads(server, traceId, expectedSpans, label);
  }
}

// ---------------------------------------------------------------------------------------
// A hand-made batch with every tag type, a parent given only as a CHILD_OF reference, a link
// to another trace, status from otel.status_code, and a trace ID with the top bit set.

function handMadeBatch(service) {
  const traceIdHigh = BigInt(`0x${randomBytes(8).toString('hex')}`) | (1n << 63n);
  const traceIdLow = BigInt(`0x${randomBytes(8).toString('hex')}`);
  const spanId = BigInt(`0x${randomBytes(7).toString('hex')}`) + 1n;
  const parentId = spanId + 1n;
  const start = BigInt(Date.now() - 30_000) * 1000n + 123n;  // µs
  const batch = {
    serviceName: service,
    processTags: [{ key: 'region', type: 'string', value: 'eu-1' }, { key: 'cores', type: 'long', value: 8n }],
    spans: [{
      traceIdHigh, traceIdLow, spanId, parentSpanId: 0n, operationName: 'publish', flags: 1, startTime: start, duration: 2500n,
      references: [{ refType: 'childOf', traceIdLow, traceIdHigh, spanId: parentId },
        { refType: 'followsFrom', traceIdLow: 77n, traceIdHigh: 0n, spanId: 78n }],
      tags: [
        { key: 'span.kind', type: 'string', value: 'producer' },
        { key: 'otel.status_code', type: 'string', value: 'ERROR' },
        { key: 'otel.status_description', type: 'string', value: 'queue full' },
        { key: 'messaging.system', type: 'string', value: 'kafka' },
        { key: 'attempts', type: 'long', value: -3n },
        { key: 'load', type: 'double', value: 0.75 },
        { key: 'sync', type: 'bool', value: false },
        { key: 'payload', type: 'binary', value: [0xde, 0xad] },
      ],
      logs: [{ timestamp: start + 100n, fields: [{ key: 'event', type: 'string', value: 'enqueue' },
        { key: 'depth', type: 'long', value: 12n }] }],
    }],
  };
  const traceId = hex(traceIdHigh, 16) + hex(traceIdLow, 16);
  const expected = [expectedSpan({
    traceId, spanId: hex(spanId, 16), parentSpanId: hex(parentId, 16), name: 'publish', kind: 4,
    start: micros(start), end: micros(start + 2500n),
    resource: { 'service.name': str(service), region: str('eu-1'), cores: int(8) },
    attributes: { 'messaging.system': str('kafka'), attempts: int(-3), load: dbl(0.75), sync: bool(false), payload: bytes([0xde, 0xad]) },
    status: { code: 2, message: 'queue full' },
    events: [{ time: micros(start + 100n), name: 'enqueue', attributes: { depth: int(12) } }],
    links: [{ traceId: hex(0n, 16) + hex(77n, 16), spanId: hex(78n, 16), type: 'follows_from' }],
  })];
  return { batch, traceId, expected };
}

// ---------------------------------------------------------------------------------------
// api_v2 protobuf, by hand: PostSpansRequest{1: Batch{1: spans, 2: process}}.

const message = (number, ...fields) => bytesField(number, Buffer.concat(fields));
const timestamp = (number, nanos) => message(number, varintField(1, nanos / 1_000_000_000n), varintField(2, nanos % 1_000_000_000n));
const keyValue = (number, key, type, value) => {
  const fields = [bytesField(1, key), varintField(2, type)];
  if (type === 0) fields.push(bytesField(3, value));
  if (type === 1) fields.push(varintField(4, value ? 1 : 0));
  if (type === 2) fields.push(varintField(5, BigInt.asUintN(64, BigInt(value))));
  if (type === 3) { const b = Buffer.alloc(9); b[0] = (6 << 3) | 1; b.writeDoubleLE(value, 1); fields.push(b); }
  return message(number, ...fields);
};

function grpcRequest() {
  const traceId = randomBytes(16);
  const spanId = randomBytes(8);
  const parentId = randomBytes(8);
  const ownId = randomBytes(8);
  const start = BigInt(Date.now() - 20_000) * 1_000_000n + 987_654n;  // ns
  const span = message(1,
    bytesField(1, traceId), bytesField(2, spanId), bytesField(3, 'grpc call'),
    message(4, bytesField(1, traceId), bytesField(2, parentId)),  // CHILD_OF: the parent
    varintField(5, 1),
    timestamp(6, start), message(7, varintField(2, 3_000_000n)),
    keyValue(8, 'span.kind', 0, 'client'), keyValue(8, 'http.status_code', 2, 503), keyValue(8, 'cache.hit', 1, true),
    keyValue(8, 'score', 3, 1.5),
    message(9, timestamp(1, start + 1_000_000n), keyValue(2, 'event', 0, 'retry'), keyValue(2, 'attempt', 2, 2)),
    bytesField(11, 'p1'));
  const ownProcessSpan = message(1,
    bytesField(1, traceId), bytesField(2, ownId), bytesField(3, 'other process'), timestamp(6, start), message(7),
    message(10, bytesField(1, 'grpc-side-service')));
  const request = message(1, span, ownProcessSpan,
    message(2, bytesField(1, 'grpc-service'), keyValue(2, 'hostname', 0, 'grpc-host')));
  const trace = traceId.toString('hex');
  const expected = [
    expectedSpan({ traceId: trace, spanId: spanId.toString('hex'), parentSpanId: parentId.toString('hex'), name: 'grpc call',
      kind: 3, start: start.toString(), end: (start + 3_000_000n).toString(),
      resource: { 'service.name': str('grpc-service'), 'host.name': str('grpc-host') },
      attributes: { 'http.status_code': int(503), 'cache.hit': bool(true), score: dbl(1.5) },
      status: { code: 2, message: '' },
      events: [{ time: (start + 1_000_000n).toString(), name: 'retry', attributes: { attempt: int(2) } }] }),
    expectedSpan({ traceId: trace, spanId: ownId.toString('hex'), name: 'other process', start: start.toString(),
      end: start.toString(), flags: 0, resource: { 'service.name': str('grpc-side-service') } }),
  ];
  return { request, traceId: trace, expected };
}

// ---------------------------------------------------------------------------------------

let server;
const ports = {};

async function refusedDatagrams(protocol, reason) {
  const metrics = (await httpRequest(`${server.httpUrl}/metrics`)).text();
  const match = new RegExp(`^tracery_jaeger_agent_datagrams_refused_total\\{protocol="${protocol}",reason="${reason}"\\} (\\d+)$`, 'm')
    .exec(metrics);
  return match ? Number(match[1]) : 0;
}

describe('Jaeger receivers', () => {
  before(async () => {
    ports.grpc = await pickFreeLoopbackPort();
    ports.thriftHttp = await pickFreeLoopbackPort();
    ports.compact = await pickFreeUdpPort();
    ports.binary = await pickFreeUdpPort();
    server = await startServer({
      configOverrides: {
        distributor: {
          max_request_bytes: 1048576,
          receivers: {
            jaeger: {
              protocols: {
                grpc: { endpoint: `127.0.0.1:${ports.grpc}` },
                thrift_http: { endpoint: `127.0.0.1:${ports.thriftHttp}` },
                thrift_compact: { endpoint: `127.0.0.1:${ports.compact}` },
                thrift_binary: { endpoint: `127.0.0.1:${ports.binary}` },
              },
            },
          },
        },
      },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('takes what jaeger-client sends to a collector over HTTP (HTTPSender, Thrift binary)', async () => {
    const sender = new HTTPSender({ endpoint: `http://127.0.0.1:${ports.thriftHttp}/api/traces` });
    await assertClientTraces(server, await runJaegerClient(sender, 'http'), 'jaeger-client HTTP');
  });

  it('takes what jaeger-client sends to an agent over UDP (UDPSender, Thrift binary on thrift_binary)', async () => {
    const sender = new UDPSender({ host: '127.0.0.1', port: ports.binary });
    await assertClientTraces(server, await runJaegerClient(sender, 'udp'), 'jaeger-client UDP');
  });

  it('takes hand-made emitBatch datagrams in the compact and the binary protocol', async () => {
    for (const [protocol, port] of [['compact', ports.compact], ['binary', ports.binary]]) {
      const { batch, traceId, expected } = handMadeBatch(`udp-${protocol}`);
      await sendDatagram(port, encodeEmitBatch(batch, protocol));
      await assertTraceReads(server, traceId, expected, `thrift_${protocol} datagram`);
    }
  });

  it('takes gzipped Thrift batches over HTTP and answers 202 as Jaeger does', async () => {
    const { batch, traceId, expected } = handMadeBatch('http-gzip');
    const response = await httpRequest(`http://127.0.0.1:${ports.thriftHttp}/api/traces`, {
      method: 'POST', body: gzipSync(encodeBatch(batch)),
      headers: { 'Content-Type': 'application/vnd.apache.thrift.binary', 'Content-Encoding': 'gzip' },
    });
    assert.equal(response.status, 202, response.text());
    await assertTraceReads(server, traceId, expected, 'thrift_http gzip');
  });

  it('takes jaeger.api_v2.CollectorService/PostSpans over gRPC', async () => {
    const { request, traceId, expected } = grpcRequest();
    const answer = await callGrpc(`127.0.0.1:${ports.grpc}`, POST_SPANS, request, { 'x-scope-orgid': 'ignored-without-multitenancy' });
    assert.equal(answer.code, grpc.status.OK, answer.details);
    assert.equal(answer.response.length, 0, 'PostSpansResponse is empty');
    await assertTraceReads(server, traceId, expected, 'gRPC PostSpans');
  });

  it('answers malformed input with the right codes and stays up', async () => {
    const url = `http://127.0.0.1:${ports.thriftHttp}`;
    const thrift = { 'Content-Type': 'application/x-thrift' };
    const good = encodeBatch(handMadeBatch('malformed').batch);
    const post = (path, body, headers = thrift) => httpRequest(`${url}${path}`, { method: 'POST', body, headers });
    assert.equal((await post('/api/traces', Buffer.from('garbage'))).status, 400);
    assert.equal((await post('/api/traces', good.subarray(0, good.length - 9))).status, 400, 'truncated batch');
    assert.equal((await post('/api/traces', good, { 'Content-Type': 'application/json' })).status, 415);
    assert.equal((await post('/api/traces', good, { ...thrift, 'Content-Encoding': 'br' })).status, 415);
    assert.equal((await post('/api/traces', Buffer.from('not gzip'), { ...thrift, 'Content-Encoding': 'gzip' })).status, 400);
    assert.equal((await post('/api/traces', Buffer.alloc(2 << 20))).status, 413);
    assert.equal((await post('/api/spans', good)).status, 404);
    const get = await httpRequest(`${url}/api/traces`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    const zeroTrace = handMadeBatch('zero').batch;
    zeroTrace.spans[0].traceIdHigh = 0n;
    zeroTrace.spans[0].traceIdLow = 0n;
    const zero = await post('/api/traces', encodeBatch(zeroTrace));
    assert.equal(zero.status, 400);
    assert.match(zero.text(), /all-zero trace ID/);

    const invalidBefore = await refusedDatagrams('thrift_compact', 'invalid');
    await sendDatagram(ports.compact, Buffer.from('\x82\x81\x00\x09emitBatch\xff\xff\xff'));
    await sendDatagram(ports.compact, encodeEmitBatch(handMadeBatch('x').batch, 'binary'));  // the wrong protocol
    await sendDatagram(ports.binary, randomBytes(512));
    await sendDatagram(ports.binary, encodeEmitBatch(handMadeBatch('x').batch, 'binary', { name: 'emitZipkinBatch' }));
    const deadline = Date.now() + 5000;
    while (await refusedDatagrams('thrift_compact', 'invalid') < invalidBefore + 2 && Date.now() < deadline) await sleep(50);
    assert.equal(await refusedDatagrams('thrift_compact', 'invalid'), invalidBefore + 2);
    assert.ok(await refusedDatagrams('thrift_binary', 'invalid') >= 1);
    assert.ok(await refusedDatagrams('thrift_binary', 'unsupported_method') >= 1);

    const grpcAddress = `127.0.0.1:${ports.grpc}`;
    assert.equal((await callGrpc(grpcAddress, POST_SPANS, Buffer.from([0x0a, 0x05, 0x0a]))).code, grpc.status.INVALID_ARGUMENT);
    assert.equal((await callGrpc(grpcAddress, '/jaeger.api_v2.CollectorService/Other', Buffer.alloc(0))).code,
      grpc.status.UNIMPLEMENTED);

    // Still up, on every protocol.
    const { batch, traceId, expected } = handMadeBatch('after-malformed');
    await sendDatagram(ports.compact, encodeEmitBatch(batch, 'compact'));
    await assertTraceReads(server, traceId, expected, 'after malformed input');
    const again = grpcRequest();
    assert.equal((await callGrpc(grpcAddress, POST_SPANS, again.request)).code, grpc.status.OK);
    assert.equal((await post('/api/traces', good)).status, 202);
  });
});

describe('Jaeger receivers with multitenancy', () => {
  let tenantServer;
  const tenantPorts = {};
  before(async () => {
    tenantPorts.grpc = await pickFreeLoopbackPort();
    tenantPorts.thriftHttp = await pickFreeLoopbackPort();
    tenantPorts.compact = await pickFreeUdpPort();
    tenantServer = await startServer({
      configOverrides: {
        multitenancy_enabled: true,
        distributor: { receivers: { jaeger: { protocols: {
          grpc: { endpoint: `127.0.0.1:${tenantPorts.grpc}` },
          thrift_http: { endpoint: `127.0.0.1:${tenantPorts.thriftHttp}` },
          thrift_compact: { endpoint: `127.0.0.1:${tenantPorts.compact}` },
        } } } },
      },
    });
  });
  reportServerOnFailure(() => tenantServer, { afterEach, after });

  it('takes the tenant from X-Scope-OrgID (HTTP) and x-scope-orgid (gRPC); UDP has none and is refused', async () => {
    const asTenant = { headers: { 'X-Scope-OrgID': 'team-a' } };
    const http = handMadeBatch('tenant-http');
    const url = `http://127.0.0.1:${tenantPorts.thriftHttp}/api/traces`;
    const body = encodeBatch(http.batch);
    const anonymous = await httpRequest(url, { method: 'POST', body, headers: { 'Content-Type': 'application/x-thrift' } });
    assert.equal(anonymous.status, 401);
    const named = await httpRequest(url, { method: 'POST', body,
      headers: { 'Content-Type': 'application/x-thrift', 'X-Scope-OrgID': 'team-a' } });
    assert.equal(named.status, 202, named.text());
    const read = await readTraceWhenComplete(tenantServer, http.traceId, http.expected.map((s) => s.spanId), asTenant);
    assert.equal(read.status, 200);
    assertSameSpans(read.spans, http.expected, 'thrift_http as team-a');
    const otherTenant = await readTraceWhenComplete(tenantServer, http.traceId, [], { headers: { 'X-Scope-OrgID': 'team-b' },
      patienceMs: 0 });
    assert.equal(otherTenant.status, 404, 'another tenant does not see it');

    const address = `127.0.0.1:${tenantPorts.grpc}`;
    const call = grpcRequest();
    assert.equal((await callGrpc(address, POST_SPANS, call.request)).code, grpc.status.UNAUTHENTICATED);
    assert.equal((await callGrpc(address, POST_SPANS, call.request, { 'x-scope-orgid': 'team-a' })).code, grpc.status.OK);
    const grpcRead = await readTraceWhenComplete(tenantServer, call.traceId, call.expected.map((s) => s.spanId), asTenant);
    assertSameSpans(grpcRead.spans, call.expected, 'gRPC as team-a');

    const udp = handMadeBatch('tenant-udp');
    await sendDatagram(tenantPorts.compact, encodeEmitBatch(udp.batch, 'compact'));
    const deadline = Date.now() + 5000;
    const refused = async () => {
      const metrics = (await httpRequest(`${tenantServer.httpUrl}/metrics`)).text();
      return /^tracery_jaeger_agent_datagrams_refused_total\{protocol="thrift_compact",reason="bad_tenant"\} 1$/m.test(metrics);
    };
    while (!(await refused()) && Date.now() < deadline) await sleep(50);
    assert.ok(await refused(), 'the datagram is counted as refused for want of a tenant');
    assert.match(tenantServer.stderr, /thrift_compact .*datagrams carry no tenant/);
  });
});

describe('Jaeger receiver configuration', () => {
  it('stops at start with the key to change when a port is taken, and refuses unknown keys', async () => {
    const blocker = net.createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { root, dataDir, configPath } = await makeTemporaryRoot();
    try {
      const base = defaultConfig({ dataDir, httpPort: await pickFreeLoopbackPort(), grpcPort: await pickFreeLoopbackPort(),
        otlpHttpPort: await pickFreeLoopbackPort() });
      const taken = mergeConfig(base, { distributor: { receivers: { jaeger: { protocols: {
        thrift_http: { endpoint: `127.0.0.1:${blocker.address().port}` } } } } } });
      await writeFile(configPath, toYaml(taken));
      const run = await runToExit([`-config.file=${configPath}`]);
      assert.notEqual(run.code, 0, 'the start fails');
      assert.match(run.stdout + run.stderr, /distributor\.receivers\.jaeger\.protocols\.thrift_http\.endpoint/);

      const unknown = mergeConfig(base, { distributor: { receivers: { jaeger: { protocols: { thrift_udp: { endpoint: ':1' } } } } } });
      await writeFile(configPath, toYaml(unknown));
      const refused = await runToExit([`-config.file=${configPath}`]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stdout + refused.stderr, /unknown key `distributor\.receivers\.jaeger\.protocols\.thrift_udp`/);
    } finally {
      blocker.close();
      const { rm } = await import('node:fs/promises');
      await rm(root, { recursive: true, force: true });
    }
  });
});
