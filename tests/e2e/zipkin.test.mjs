// The Zipkin receiver, as Tempo has it: spans sent by the OpenTelemetry JS SDK's real Zipkin
// exporter and by hand (v2 JSON, v1 JSON, zipkin.proto3) are read back by ID through the
// query API and compared field by field with the mapping of docs/api.md ("Zipkin"); bad
// requests get their 4xx and the server stays up; a taken port stops the start clearly.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMicroseconds } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import {
  startServer, reportServerOnFailure, httpRequest, pickFreeLoopbackPort, runToExit, makeTemporaryRoot,
  defaultConfig, mergeConfig, toYaml,
} from './harness.mjs';
import { readTraceWhenComplete } from './otlp.mjs';
import { bytesField, varintField } from './protowire.mjs';

let server;
let zipkinUrl;

const KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
const STATUS = { UNSET: 0, OK: 1, ERROR: 2 };
const str = (value) => ['string', value];
const int = (value) => ['int', String(value)];

const hex = (bytes) => randomBytes(bytes).toString('hex');

// A span in the normal form of otlp.mjs, with the defaults a Zipkin span leaves.
function expectedSpan(fields) {
  const sorted = (object) => Object.fromEntries(Object.entries(object ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    traceId: fields.traceId,
    spanId: fields.spanId,
    parentSpanId: fields.parentSpanId ?? '',
    traceState: fields.traceState ?? '',
    name: fields.name ?? '',
    kind: fields.kind ?? KIND.UNSPECIFIED,
    startTimeUnixNano: String(fields.start),
    endTimeUnixNano: String(fields.end),
    attributes: sorted(fields.attributes),
    droppedAttributesCount: 0,
    events: (fields.events ?? []).map(([time, name]) => ({ timeUnixNano: String(time), name, attributes: {}, droppedAttributesCount: 0 })),
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: fields.status ?? { code: STATUS.UNSET, message: '' },
    flags: 0,
    resource: { attributes: sorted(fields.resource), droppedAttributesCount: 0 },
    scope: { name: fields.scope?.name ?? '', version: fields.scope?.version ?? '', attributes: {}, droppedAttributesCount: 0 },
  };
}

// Reads the trace back and compares it span for span (by span ID) with what the mapping says.
async function assertTraceIs(traceId, expected, label) {
  const result = await readTraceWhenComplete(server, traceId, expected.map((span) => span.spanId));
  assert.equal(result.status, 200, `${label}: GET trace ${traceId} answered ${result.status}: ${result.text ?? ''}`);
  const byId = (a, b) => (a.spanId < b.spanId ? -1 : 1);
  const actual = [...result.spans].sort(byId);
  const wanted = [...expected].sort(byId);
  assert.equal(actual.length, wanted.length, `${label}: span count`);
  for (let i = 0; i < wanted.length; i += 1) assert.deepEqual(actual[i], wanted[i], `${label}: span ${wanted[i].spanId}`);
}

async function postZipkin(path, body, headers = { 'Content-Type': 'application/json' }) {
  return httpRequest(`${zipkinUrl}${path}`, { method: 'POST', headers, body });
}

async function assertServerUp() {
  const ready = await httpRequest(`${server.httpUrl}/ready`);
  assert.equal(ready.status, 200, 'the server answers /ready');
  assert.equal(server.running, true, 'the server process is still running');
}

// zipkin.proto3 written by hand (field numbers from zipkin.proto).
function fixed64Field(number, value) {
  const bytes = Buffer.alloc(9);
  bytes[0] = (number << 3) | 1;  // the field numbers used here are below 16: a one-byte tag
  bytes.writeBigUInt64LE(BigInt(value), 1);
  return bytes;
}
function protoEndpoint({ serviceName, ipv4, port }) {
  return Buffer.concat([
    serviceName ? bytesField(1, serviceName) : Buffer.alloc(0),
    ipv4 ? bytesField(2, Buffer.from(ipv4.split('.').map(Number))) : Buffer.alloc(0),
    port ? varintField(4, port) : Buffer.alloc(0),
  ]);
}
function protoSpan(span) {
  const parts = [
    bytesField(1, Buffer.from(span.traceId, 'hex')),
    span.parentId ? bytesField(2, Buffer.from(span.parentId, 'hex')) : Buffer.alloc(0),
    bytesField(3, Buffer.from(span.id, 'hex')),
    span.kind ? varintField(4, span.kind) : Buffer.alloc(0),
    bytesField(5, span.name),
    fixed64Field(6, span.timestamp),
    varintField(7, span.duration),
    bytesField(8, protoEndpoint(span.localEndpoint)),
    span.remoteEndpoint ? bytesField(9, protoEndpoint(span.remoteEndpoint)) : Buffer.alloc(0),
    ...(span.annotations ?? []).map((a) => bytesField(10, Buffer.concat([fixed64Field(1, a.timestamp), bytesField(2, a.value)]))),
    ...Object.entries(span.tags ?? {}).map(([k, v]) => bytesField(11, Buffer.concat([bytesField(1, k), bytesField(2, v)]))),
  ];
  return Buffer.concat(parts);
}

describe('Zipkin receiver', () => {
  before(async () => {
    const port = await pickFreeLoopbackPort();
    server = await startServer({ configOverrides: { distributor: { receivers: { zipkin: { endpoint: `127.0.0.1:${port}` } } } } });
    zipkinUrl = `http://127.0.0.1:${port}`;
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('stores what the OpenTelemetry Zipkin exporter sends, mapped as the Collector maps it', async () => {
    const captured = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'zipkin-sdk', 'deployment.environment': 'e2e', team: 'tracing' }),
      spanProcessors: [new SimpleSpanProcessor(captured)],
    });
    const tracer = provider.getTracer('e2e-zipkin', '1.0.0');
    const root = tracer.startSpan('GET /checkout', {
      kind: SpanKind.SERVER, attributes: { 'http.method': 'GET', 'http.status_code': 200, retried: true, ratio: 0.5 },
    });
    root.addEvent('cache miss');
    const rootContext = trace.setSpan(context.active(), root);
    const client = tracer.startSpan('call payments', { kind: SpanKind.CLIENT }, rootContext);
    client.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timeout' });
    client.end();
    const internal = tracer.startSpan('compute total', { kind: SpanKind.INTERNAL }, rootContext);
    internal.setStatus({ code: SpanStatusCode.OK });
    internal.end();
    root.end();
    await provider.forceFlush();
    const spans = captured.getFinishedSpans();
    assert.equal(spans.length, 3);

    const exporter = new ZipkinExporter({ url: `${zipkinUrl}/api/v2/spans` });
    const result = await new Promise((resolve) => exporter.export(spans, resolve));
    assert.equal(result.code, ExportResultCode.SUCCESS, `the exporter failed: ${result.error?.message}`);
    await exporter.shutdown();
    await provider.shutdown();

    // What the exporter sends: microseconds (the start may have a fraction), the resource and
    // status as tags, events as annotations.
    // The server takes whole and fractional microseconds apart, rounding the fraction to ns.
    const microsToNanos = (micros) => BigInt(Math.floor(micros)) * 1000n + BigInt(Math.round((micros - Math.floor(micros)) * 1000));
    const startNanos = (span) => microsToNanos(hrTimeToMicroseconds(span.startTime));
    const endNanos = (span) => startNanos(span) + BigInt(Math.round(hrTimeToMicroseconds(span.duration))) * 1000n;
    const traceId = root.spanContext().traceId;
    const resource = { 'service.name': str('zipkin-sdk'), 'deployment.environment': str('e2e') };
    for (const key of Object.keys(spans[0].resource.attributes)) {
      if (key.startsWith('telemetry.sdk.')) resource[key] = str(String(spans[0].resource.attributes[key]));
    }
    const byName = Object.fromEntries(spans.map((span) => [span.name, span]));
    const common = (span) => ({
      traceId, spanId: span.spanContext().spanId, start: startNanos(span), end: endNanos(span), resource,
    });
    await assertTraceIs(traceId, [
      expectedSpan({
        ...common(byName['GET /checkout']), name: 'GET /checkout', kind: KIND.SERVER,
        attributes: {
          'http.method': str('GET'), 'http.status_code': str('200'), retried: str('true'), ratio: str('0.5'),
          team: str('tracing'),  // not a resource attribute of the semantic conventions: it stays on the span
        },
        events: [[BigInt(Math.round(hrTimeToMicroseconds(byName['GET /checkout'].events[0].time))) * 1000n, 'cache miss']],
      }),
      expectedSpan({
        ...common(byName['call payments']), name: 'call payments', kind: KIND.CLIENT, parentSpanId: root.spanContext().spanId,
        attributes: { team: str('tracing'), error: str('upstream timeout') },
        status: { code: STATUS.ERROR, message: 'upstream timeout' },
      }),
      expectedSpan({
        ...common(byName['compute total']), name: 'compute total', kind: KIND.UNSPECIFIED, parentSpanId: root.spanContext().spanId,
        attributes: { team: str('tracing') },
        status: { code: STATUS.OK, message: '' },
      }),
    ], 'OpenTelemetry Zipkin exporter');
  });

  it('maps hand-made v2 JSON field by field, gzip-compressed too', async () => {
    const traceId = hex(16);
    const [rootId, childId] = [hex(8), hex(8)];
    const body = JSON.stringify([
      {
        traceId, id: rootId, name: 'get /api', kind: 'SERVER', timestamp: 1700000000000000, duration: 150000,
        localEndpoint: { serviceName: 'frontend', ipv4: '10.0.0.1', port: 8080 },
        remoteEndpoint: { ipv4: '192.168.1.9', port: 50000 },
        annotations: [{ timestamp: 1700000000001000, value: 'ws' }, { timestamp: 1700000000140000, value: 'wr' }],
        tags: {
          'http.path': '/api', 'otel.library.name': 'zipkin-lib', 'otel.library.version': '2.0', 'w3c.tracestate': 'k=v',
          'otel.status_code': 'STATUS_CODE_OK',
        },
        shared: true,
      },
      {
        traceId, id: childId, parentId: rootId, name: 'select', kind: 'CLIENT', timestamp: 1700000000010000, duration: 5000,
        localEndpoint: { serviceName: 'frontend', ipv4: '10.0.0.1' },
        remoteEndpoint: { serviceName: 'postgres', ipv6: '2001:db8::5', port: 5432 },
        tags: { error: 'true', 'db.system': 'postgresql' },
        debug: true,
      },
    ]);
    const response = await postZipkin('/api/v2/spans', gzipSync(body), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    assert.equal(response.status, 202, response.text());
    assert.equal(response.text(), '', 'Zipkin answers 202 with an empty body');
    await assertTraceIs(traceId, [
      expectedSpan({
        traceId, spanId: rootId, name: 'get /api', kind: KIND.SERVER, traceState: 'k=v',
        start: 1700000000000000000n, end: 1700000000150000000n,
        attributes: {
          'http.path': str('/api'), 'net.host.ip': str('10.0.0.1'), 'net.host.port': int(8080),
          'net.peer.ip': str('192.168.1.9'), 'net.peer.port': int(50000),
        },
        events: [[1700000000001000000n, 'ws'], [1700000000140000000n, 'wr']],
        status: { code: STATUS.OK, message: '' },
        resource: { 'service.name': str('frontend') },
        scope: { name: 'zipkin-lib', version: '2.0' },
      }),
      expectedSpan({
        traceId, spanId: childId, parentSpanId: rootId, name: 'select', kind: KIND.CLIENT,
        start: 1700000000010000000n, end: 1700000000015000000n,
        attributes: {
          'db.system': str('postgresql'), 'net.host.ip': str('10.0.0.1'), 'peer.service': str('postgres'),
          'net.peer.ip': str('2001:db8::5'), 'net.peer.port': int(5432),
        },
        status: { code: STATUS.ERROR, message: '' },
        resource: { 'service.name': str('frontend') },
      }),
    ], 'v2 JSON');
  });

  it('maps v1 JSON (core annotations, binary annotations, endpoints) as v2', async () => {
    const traceId = hex(8);  // a 64-bit trace ID: read back left-padded to 128 bits
    const [clientId, serverId] = [hex(8), hex(8)];
    const client = { serviceName: 'web', ipv4: '10.0.0.1', port: 1234 };
    const backend = { serviceName: 'backend', ipv4: '10.0.0.2', port: 80 };
    const body = JSON.stringify([
      {
        traceId, id: clientId, name: 'get', annotations: [
          { timestamp: 1700000000000000, value: 'cs', endpoint: client },
          { timestamp: 1700000000000500, value: 'retry', endpoint: client },
          { timestamp: 1700000000002000, value: 'cr', endpoint: client },
        ],
        binaryAnnotations: [
          { key: 'http.url', value: 'http://backend/x', endpoint: client },
          { key: 'sa', value: true, endpoint: backend },
        ],
      },
      {
        traceId, id: serverId, parentId: clientId, name: 'get', timestamp: 1700000000000300, duration: 1200,
        annotations: [
          { timestamp: 1700000000000300, value: 'sr', endpoint: backend },
          { timestamp: 1700000000001500, value: 'ss', endpoint: backend },
        ],
        binaryAnnotations: [{ key: 'ca', value: true, endpoint: client }, { key: 'lc', value: 'servlet', endpoint: backend }],
      },
    ]);
    const response = await postZipkin('/api/v1/spans', body);
    assert.equal(response.status, 202, response.text());
    const padded = `${'0'.repeat(16)}${traceId}`;
    await assertTraceIs(padded, [
      expectedSpan({
        traceId: padded, spanId: clientId, name: 'get', kind: KIND.CLIENT,
        start: 1700000000000000000n, end: 1700000000002000000n,
        attributes: {
          'http.url': str('http://backend/x'), 'net.host.ip': str('10.0.0.1'), 'net.host.port': int(1234),
          'peer.service': str('backend'), 'net.peer.ip': str('10.0.0.2'), 'net.peer.port': int(80),
        },
        events: [[1700000000000500000n, 'retry']],
        resource: { 'service.name': str('web') },
      }),
      expectedSpan({
        traceId: padded, spanId: serverId, parentSpanId: clientId, name: 'get', kind: KIND.SERVER,
        start: 1700000000000300000n, end: 1700000000001500000n,
        attributes: {
          component: str('servlet'), 'net.host.ip': str('10.0.0.2'), 'net.host.port': int(80),
          'peer.service': str('web'), 'net.peer.ip': str('10.0.0.1'), 'net.peer.port': int(1234),
        },
        resource: { 'service.name': str('backend') },
      }),
    ], 'v1 JSON');
  });

  it('maps zipkin.proto3 ListOfSpans', async () => {
    const traceId = hex(16);
    const [producerId, consumerId] = [hex(8), hex(8)];
    const list = Buffer.concat([
      bytesField(1, protoSpan({
        traceId, id: producerId, kind: 3, name: 'publish', timestamp: 1700000000000000n, duration: 300,
        localEndpoint: { serviceName: 'orders', ipv4: '10.1.0.1' }, remoteEndpoint: { serviceName: 'kafka', port: 9092 },
        annotations: [{ timestamp: 1700000000000100n, value: 'batched' }],
        tags: { 'messaging.destination': 'orders', 'otel.status_code': 'ERROR', 'otel.status_description': 'broker down' },
      })),
      bytesField(1, protoSpan({
        traceId, id: consumerId, parentId: producerId, kind: 4, name: 'consume', timestamp: 1700000000005000n, duration: 20,
        localEndpoint: { serviceName: 'billing' },
      })),
    ]);
    const response = await postZipkin('/api/v2/spans', list, { 'Content-Type': 'application/x-protobuf' });
    assert.equal(response.status, 202, response.text());
    await assertTraceIs(traceId, [
      expectedSpan({
        traceId, spanId: producerId, name: 'publish', kind: KIND.PRODUCER,
        start: 1700000000000000000n, end: 1700000000000300000n,
        attributes: {
          'messaging.destination': str('orders'), 'net.host.ip': str('10.1.0.1'), 'peer.service': str('kafka'),
          'net.peer.port': int(9092),
        },
        events: [[1700000000000100000n, 'batched']],
        status: { code: STATUS.ERROR, message: 'broker down' },
        resource: { 'service.name': str('orders') },
      }),
      expectedSpan({
        traceId, spanId: consumerId, parentSpanId: producerId, name: 'consume', kind: KIND.CONSUMER,
        start: 1700000000005000000n, end: 1700000000005020000n,
        resource: { 'service.name': str('billing') },
      }),
    ], 'proto3');
  });

  it('refuses bad requests with 400/404/405/415 and stays up', async () => {
    const valid = (traceId) => JSON.stringify([{ traceId, id: hex(8), name: 'ok', timestamp: 1700000000000000, duration: 1 }]);
    const cases = [
      { what: 'malformed JSON', path: '/api/v2/spans', body: '[{"traceId":', status: 400, message: /invalid JSON/ },
      { what: 'not a list', path: '/api/v2/spans', body: '{"traceId":"1"}', status: 400, message: /list of spans/ },
      { what: 'short trace ID', path: '/api/v2/spans', body: JSON.stringify([{ traceId: 'abc', id: hex(8) }]), status: 400, message: /spans\[0\]\.traceId/ },
      { what: 'zero span ID', path: '/api/v2/spans', body: JSON.stringify([{ traceId: hex(16), id: '0000000000000000' }]), status: 400, message: /spans\[0\]\.id is all zeros/ },
      { what: 'invalid UTF-8', path: '/api/v2/spans', body: Buffer.concat([Buffer.from(`[{"traceId":"${hex(16)}","id":"${hex(8)}","name":"`), Buffer.from([0xff]), Buffer.from('"}]')]), status: 400, message: /UTF-8/ },
      { what: 'malformed protobuf', path: '/api/v2/spans', body: Buffer.from([0x0a, 0x09, 0x01]), headers: { 'Content-Type': 'application/x-protobuf' }, status: 400, message: /protobuf/ },
      { what: 'bad gzip', path: '/api/v2/spans', body: 'plain', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, status: 400 },
      { what: 'text/plain', path: '/api/v2/spans', body: '[]', headers: { 'Content-Type': 'text/plain' }, status: 415 },
      { what: 'v1 Thrift', path: '/api/v1/spans', body: 'x', headers: { 'Content-Type': 'application/x-thrift' }, status: 415 },
      { what: 'unknown path', path: '/api/v2/trace', body: '[]', status: 404 },
    ];
    for (const c of cases) {
      const response = await postZipkin(c.path, c.body, c.headers ?? { 'Content-Type': 'application/json' });
      assert.equal(response.status, c.status, `${c.what}: ${response.text()}`);
      if (c.message) assert.match(response.text(), c.message, c.what);
    }
    const get = await httpRequest(`${zipkinUrl}/api/v2/spans`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    await assertServerUp();
    const traceId = hex(16);
    const after = await postZipkin('/api/v2/spans', valid(traceId));
    assert.equal(after.status, 202, 'a valid request after the bad ones is stored');
    const read = await readTraceWhenComplete(server, traceId, []);
    assert.equal(read.status, 200);
  });

  it('stops at start with a clear error when the Zipkin port is taken', async () => {
    const holder = net.createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    try {
      const taken = holder.address().port;
      const { dataDir, configPath } = await makeTemporaryRoot();
      const [httpPort, grpcPort, otlpHttpPort] = [await pickFreeLoopbackPort(), await pickFreeLoopbackPort(), await pickFreeLoopbackPort()];
      const config = mergeConfig(defaultConfig({ dataDir, httpPort, grpcPort, otlpHttpPort }),
        { distributor: { receivers: { zipkin: { endpoint: `127.0.0.1:${taken}`, parse_string_tags: true } } } });
      await writeFile(configPath, toYaml(config));
      const outcome = await runToExit([`-config.file=${configPath}`]);
      assert.notEqual(outcome.code, 0, 'the process must not start');
      assert.match(outcome.stdout + outcome.stderr, new RegExp(`Zipkin receiver.*127\\.0\\.0\\.1:${taken}`));
    } finally {
      holder.close();
    }
  });
});
