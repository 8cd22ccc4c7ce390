// gRPC framing at the OTLP/gRPC door (issue 14): what no gRPC library sends, sent with node's
// http2 module against the real binary. Each framing error gets its documented status
// (docs/api.md, OTLP/gRPC): INVALID_ARGUMENT for a body that is not exactly one well-formed
// message, UNIMPLEMENTED for a codec or encoding not served, HTTP 415 for a request that is
// not gRPC at all; nothing of a refused call is stored, and the connection keeps serving. A
// client that opens and resets streams faster than allowed ("rapid reset") gets
// GOAWAY(ENHANCE_YOUR_CALM), is counted on /metrics, and the other connections keep serving.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { startServer, reportServerOnFailure, httpRequest, sleep } from './harness.mjs';
import { encodeExportRequest } from './protowire.mjs';
import { readTraceJson } from './otlp.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const INVALID_ARGUMENT = '3';
const RESOURCE_EXHAUSTED = '8';
const UNIMPLEMENTED = '12';

// A one-span export request and its trace ID.
function oneSpanExport() {
  const traceId = randomTraceId();
  const now = BigInt(Date.now()) * 1_000_000n;
  const bytes = encodeExportRequest({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'grpc-framing' } }] },
      scopeSpans: [{
        scope: { name: 'e2e.grpc-framing' },
        spans: [{ traceId, spanId: randomSpanId(), name: 'probe', kind: 1, startTimeUnixNano: now.toString(), endTimeUnixNano: (now + 1000n).toString() }],
      }],
    }],
  });
  return { traceId, bytes: Buffer.from(bytes) };
}

// The 5-byte gRPC prefix (flag, big-endian length) and the message; `length` overrides.
function frame(message, { flag = 0, length = message.length } = {}) {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(length, 1);
  return Buffer.concat([prefix, message]);
}

// One call on `session`: resolves to { httpStatus, grpcStatus, grpcMessage, headers, data }
// with grpc-status read from the trailers or, for trailers-only answers, the headers.
function call(session, body, { headers = {}, path = EXPORT_PATH } = {}) {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers,
    }, { endStream: body === null });
    let responseHeaders = {};
    let trailers = {};
    const chunks = [];
    stream.on('response', (h) => { responseHeaders = h; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('close', () => {
      const grpcStatus = trailers['grpc-status'] ?? responseHeaders['grpc-status'];
      const grpcMessage = decodeURIComponent(trailers['grpc-message'] ?? responseHeaders['grpc-message'] ?? '');
      resolve({ httpStatus: responseHeaders[':status'], grpcStatus, grpcMessage, headers: responseHeaders, data: Buffer.concat(chunks) });
    });
    stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== null) stream.end(body);
  });
}

describe('gRPC framing errors at the OTLP/gRPC receiver', () => {
  let server;
  let session;
  before(async () => {
    server = await startServer();
    session = http2.connect(`http://${server.grpcAddr}`);
    session.on('error', () => {});
  });
  after(() => session?.close());
  reportServerOnFailure(() => server, { afterEach, after });

  const framingCases = [
    ['a length prefix longer than the message', () => { const e = oneSpanExport(); return { ...e, body: frame(e.bytes, { length: e.bytes.length + 10 }) }; }, /truncated gRPC message: its header announces/],
    ['a truncated 5-byte header', () => ({ body: Buffer.from([0, 0, 0]) }), /truncated gRPC message header: 3 of 5 bytes/],
    ['flag byte 7', () => { const e = oneSpanExport(); return { ...e, body: frame(e.bytes, { flag: 7 }) }; }, /compressed flag is 7/],
    ['the compressed flag without grpc-encoding', () => { const e = oneSpanExport(); return { ...e, body: frame(gzipSync(e.bytes), { flag: 1 }) }; }, /flagged compressed but the call has no grpc-encoding/],
    ['two messages on a unary call', () => { const e = oneSpanExport(); return { ...e, body: Buffer.concat([frame(e.bytes), frame(oneSpanExport().bytes)]) }; }, /more than one gRPC message/],
  ];
  for (const [name, make, message] of framingCases) {
    it(`answers ${name} with INVALID_ARGUMENT and stores nothing`, async () => {
      const { body, traceId } = make();
      const result = await call(session, body);
      assert.equal(result.httpStatus, 200);
      assert.equal(result.grpcStatus, INVALID_ARGUMENT, `${name}: grpc-status ${result.grpcStatus} ${result.grpcMessage}`);
      assert.match(result.grpcMessage, message);
      if (traceId) assert.equal((await readTraceJson(server, traceId)).status, 404, `${name}: nothing of the call is stored`);
    });
  }

  it('answers a stream that ends with no message at all with INVALID_ARGUMENT', async () => {
    const result = await call(session, null);
    assert.equal(result.grpcStatus, INVALID_ARGUMENT, `empty stream: ${result.grpcStatus} ${result.grpcMessage}`);
    assert.match(result.grpcMessage, /ended without a gRPC message/);
  });

  it('refuses the JSON codec with UNIMPLEMENTED and a content type that is not gRPC with 415', async () => {
    const { bytes } = oneSpanExport();
    const json = await call(session, frame(Buffer.from('{"resourceSpans":[]}')), { headers: { 'content-type': 'application/grpc+json' } });
    assert.equal(json.grpcStatus, UNIMPLEMENTED, `application/grpc+json: ${json.grpcStatus} ${json.grpcMessage}`);
    assert.match(json.grpcMessage, /application\/grpc\+json is not served/);
    const plain = await call(session, bytes, { headers: { 'content-type': 'application/x-protobuf' } });
    assert.equal(plain.httpStatus, 415);
    assert.equal(plain.grpcStatus, undefined);
    const proto = oneSpanExport();
    const explicit = await call(session, frame(proto.bytes), { headers: { 'content-type': 'application/grpc+proto' } });
    assert.equal(explicit.grpcStatus, '0', `application/grpc+proto: ${explicit.grpcStatus} ${explicit.grpcMessage}`);
  });

  it('answers an unknown grpc-encoding with UNIMPLEMENTED and lists what it accepts', async () => {
    const { bytes } = oneSpanExport();
    const result = await call(session, frame(bytes, { flag: 1 }), { headers: { 'grpc-encoding': 'br' } });
    assert.equal(result.grpcStatus, UNIMPLEMENTED, `br: ${result.grpcStatus} ${result.grpcMessage}`);
    assert.match(result.headers['grpc-accept-encoding'], /gzip/);
  });

  it('answers an unknown method with UNIMPLEMENTED', async () => {
    const result = await call(session, frame(Buffer.alloc(0)), { path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export' });
    assert.equal(result.grpcStatus, UNIMPLEMENTED);
  });

  it('refuses a message announced over max_request_bytes at its header, before reading it', async () => {
    const result = await call(session, frame(Buffer.alloc(16), { length: 64 * 1024 * 1024 }));
    assert.equal(result.grpcStatus, RESOURCE_EXHAUSTED, `64 MiB announced: ${result.grpcStatus} ${result.grpcMessage}`);
  });

  it('stores a gzip-compressed export on the same connection after all the refusals', async () => {
    const { bytes, traceId } = oneSpanExport();
    const result = await call(session, frame(gzipSync(bytes), { flag: 1 }), { headers: { 'grpc-encoding': 'gzip', 'x-scope-orgid': 'ignored' } });
    assert.equal(result.grpcStatus, '0', `gzip export: ${result.grpcStatus} ${result.grpcMessage}`);
    assert.equal(result.headers['content-type'], 'application/grpc');
    assert.deepEqual([...result.data.subarray(0, 5)], [0, 0, 0, 0, 0], 'an empty ExportTraceServiceResponse, framed');
    const read = await readTraceJson(server, traceId);
    assert.equal(read.status, 200);
    assert.equal(read.spans.length, 1);
  });

  it('closes a connection that resets streams too fast with GOAWAY(ENHANCE_YOUR_CALM) and counts it on /metrics', async () => {
    const metric = async () => {
      const response = await httpRequest(`${server.httpUrl}/metrics`);
      assert.equal(response.status, 200);
      const line = response.text().split('\n').find((entry) => entry.startsWith('tracery_grpc_connections_reset_flooding '));
      assert.ok(line, '/metrics has tracery_grpc_connections_reset_flooding');
      return Number(line.split(' ').pop());
    };
    assert.equal(await metric(), 0, 'no connection closed for resets yet');

    const flooder = http2.connect(`http://${server.grpcAddr}`);
    flooder.on('error', () => {});
    const goaway = new Promise((resolve) => flooder.on('goaway', (code) => resolve(code)));
    await new Promise((resolve) => flooder.once('connect', resolve));
    // Each stream opened and reset at once: HEADERS then RST_STREAM(CANCEL), 1 000 of them in
    // about as many milliseconds, against a budget of 400 at once and 100 a second.
    let sent = 0;
    for (; sent < 1000 && !flooder.closed && !flooder.destroyed; sent += 1) {
      const stream = flooder.request({ ':method': 'POST', ':path': EXPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_CANCEL);
      if (sent % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    const code = await Promise.race([goaway, sleep(10_000).then(() => 'no GOAWAY within 10 s')]);
    flooder.destroy();
    assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `after ${sent} resets: GOAWAY ${code}`);
    assert.equal(await metric(), 1, 'the closed connection is counted');

    // The other connection was not touched.
    const { bytes, traceId } = oneSpanExport();
    const result = await call(session, frame(bytes));
    assert.equal(result.grpcStatus, '0', `export after the flood: ${result.grpcStatus} ${result.grpcMessage}`);
    assert.equal((await readTraceJson(server, traceId)).spans.length, 1);
  });
});
