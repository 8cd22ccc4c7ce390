// What goes in comes out: traces sent by the real OpenTelemetry SDK over each OTLP transport
// are read back by ID and compared span for span, field for field, first while they live in
// memory, then after POST /flush has cut them into blocks, then after a restart (served from
// disk alone).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtobufHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { startServer, reportServerOnFailure, httpRequest } from './harness.mjs';
import {
  assertSameSpans, normalizeResourceSpansList, readTraceJson, readTraceProtobuf, readTraceWhenComplete,
} from './otlp.mjs';
import { encodeExportRequest } from './protowire.mjs';
import {
  runSdkScenario, rawScenarioRequest, withFreshIds, randomTraceId,
} from './scenarios.mjs';

let server;
// Every trace sent so far and the spans it must contain: [{ label, traceId, expectedSpans }].
const sentTraces = [];
// Traces whose raw JSON answer the shape test inspects.
let sdkJsonScenario;
let rawJsonTraceId;

function rememberSdkScenario(scenario) {
  for (const [traceId, expectedSpans] of scenario.expectedByTrace) {
    sentTraces.push({ label: scenario.label, traceId, expectedSpans });
  }
}

async function assertEveryTraceReadable(stage, read = (traceId, ids) => readTraceWhenComplete(server, traceId, ids)) {
  assert.ok(sentTraces.length > 0, 'no trace was sent successfully before this step');
  for (const { label, traceId, expectedSpans } of sentTraces) {
    const result = await read(traceId, expectedSpans.map((span) => span.spanId));
    assert.equal(result.status, 200, `${stage}: GET trace ${traceId} (${label}) answered ${result.status}: ${result.text ?? ''}`);
    assertSameSpans(result.spans, expectedSpans, `${stage}: trace ${traceId} (${label})`);
  }
}

async function postOtlp(body, contentType) {
  const response = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, {
    method: 'POST', headers: { 'Content-Type': contentType }, body,
  });
  assert.equal(response.status, 200, `POST /v1/traces (${contentType}) answered ${response.status}: ${response.text()}`);
}

describe('round trip through tracery', () => {
  // -target=all is the default role; passing it checks the flag is accepted.
  before(async () => { server = await startServer({ extraArgs: ['-target=all'] }); });
  reportServerOnFailure(() => server, { afterEach, after });

  it('serves the operational endpoints', async () => {
    const echo = await httpRequest(`${server.httpUrl}/api/echo`);
    assert.equal(echo.status, 200);
    assert.equal(echo.text().trim(), 'echo');
    const buildInfo = await httpRequest(`${server.httpUrl}/api/status/buildinfo`);
    assert.equal(buildInfo.status, 200);
    assert.equal(typeof JSON.parse(buildInfo.text()), 'object', 'buildinfo is a JSON object');
    const metrics = await httpRequest(`${server.httpUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text(), /^# (HELP|TYPE) /m, 'metrics are in the Prometheus text format');
  });

  it('returns what the SDK sent over OTLP/gRPC, while the trace is live', async () => {
    const scenario = await runSdkScenario({
      label: 'grpc',
      makeExporter: () => new GrpcTraceExporter({ url: `http://${server.grpcAddr}` }),
    });
    rememberSdkScenario(scenario);
    await assertEveryTraceReadable('live, gRPC');
  });

  it('returns what the SDK sent as gzipped protobuf over OTLP/HTTP, while the trace is live', async () => {
    const scenario = await runSdkScenario({
      label: 'http-protobuf',
      makeExporter: () => new ProtobufHttpTraceExporter({ url: `${server.otlpHttpUrl}/v1/traces`, compression: 'gzip' }),
    });
    rememberSdkScenario(scenario);
    await assertEveryTraceReadable('live, HTTP protobuf');
  });

  it('returns what the SDK sent as JSON over OTLP/HTTP, while the trace is live', async () => {
    const scenario = await runSdkScenario({
      label: 'http-json',
      makeExporter: () => new JsonHttpTraceExporter({ url: `${server.otlpHttpUrl}/v1/traces` }),
    });
    rememberSdkScenario(scenario);
    sdkJsonScenario = scenario;
    await assertEveryTraceReadable('live, HTTP JSON');
  });

  it('keeps values the SDK cannot produce (bytes, key-value lists, int64 extremes, scope attributes)', async () => {
    const asJson = rawScenarioRequest('raw-json');
    await postOtlp(JSON.stringify(asJson.request), 'application/json');
    sentTraces.push({ label: 'raw-json', traceId: asJson.traceId, expectedSpans: asJson.expectedSpans });
    rawJsonTraceId = asJson.traceId;

    const asProtobufRequest = withFreshIds(rawScenarioRequest('raw-protobuf').request);
    const asProtobufSpans = normalizeResourceSpansList(asProtobufRequest.resourceSpans);
    await postOtlp(encodeExportRequest(asProtobufRequest), 'application/x-protobuf');
    sentTraces.push({ label: 'raw-protobuf', traceId: asProtobufSpans[0].traceId, expectedSpans: asProtobufSpans });

    await assertEveryTraceReadable('live, raw OTLP');
  });

  it('answers in the OTLP/JSON shape of the contract (camelCase, enum names, decimal strings, hex ids)', async () => {
    assert.ok(sdkJsonScenario && rawJsonTraceId, 'the earlier sends must have succeeded');
    const sdkAnswer = await readTraceJson(server, sdkJsonScenario.rootTraceId);
    assert.equal(sdkAnswer.status, 200);
    const rawAnswer = await readTraceJson(server, rawJsonTraceId);
    assert.equal(rawAnswer.status, 200);

    const badKeys = [];
    const walk = (value, where) => {
      if (Array.isArray(value)) value.forEach((item, index) => walk(item, `${where}[${index}]`));
      else if (value && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) {
          if (!/^[a-z][A-Za-z]*$/.test(key)) badKeys.push(`${where}.${key}`);
          walk(inner, `${where}.${key}`);
        }
      }
    };
    walk(sdkAnswer.body, 'sdk');
    walk(rawAnswer.body, 'raw');
    assert.deepEqual(badKeys, [], 'every JSON key is camelCase');

    const rawSpans = (body) => body.batches.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    const sdkSpans = rawSpans(sdkAnswer.body);
    for (const span of sdkSpans) {
      assert.match(span.traceId, /^[0-9a-f]{32}$/, `traceId is lowercase hex: ${span.traceId}`);
      assert.match(span.spanId, /^[0-9a-f]{16}$/, `spanId is lowercase hex: ${span.spanId}`);
      if ('parentSpanId' in span) assert.match(span.parentSpanId, /^[0-9a-f]{16}$/, `parentSpanId is lowercase hex: ${span.parentSpanId}`);
      assert.equal(typeof span.startTimeUnixNano, 'string', 'startTimeUnixNano is a decimal string');
      assert.match(span.startTimeUnixNano, /^[0-9]+$/);
      assert.equal(typeof span.endTimeUnixNano, 'string', 'endTimeUnixNano is a decimal string');
      assert.equal(typeof span.kind, 'string', `kind is an enum name, got ${JSON.stringify(span.kind)}`);
      assert.match(span.kind, /^SPAN_KIND_/);
    }

    const root = sdkSpans.find((span) => span.name === 'GET /checkout');
    assert.ok(root, 'root span present');
    assert.equal(root.kind, 'SPAN_KIND_SERVER');
    assert.ok(!('parentSpanId' in root), 'a root span has no parentSpanId (defaults are omitted)');
    assert.ok(!('droppedAttributesCount' in root), 'a zero droppedAttributesCount is omitted');
    const attribute = (span, key) => span.attributes.find((kv) => kv.key === key)?.value;
    assert.deepEqual(attribute(root, 'http.status_code'), { intValue: '200' });
    assert.deepEqual(attribute(root, 'retry.ratio'), { doubleValue: 0.25 });
    assert.deepEqual(attribute(root, 'user.vip'), { boolValue: true });
    assert.deepEqual(attribute(root, 'cache.hit'), { boolValue: false }, 'false is a set value, not an omitted default');
    assert.deepEqual(attribute(root, 'items.count'), { intValue: '0' }, 'zero is a set value, not an omitted default');
    assert.deepEqual(attribute(root, 'list.ints'), { arrayValue: { values: [{ intValue: '80' }, { intValue: '443' }, { intValue: '-1' }, { intValue: '0' }] } });
    assert.equal(typeof root.events[0].timeUnixNano, 'string', 'event timeUnixNano is a decimal string');

    const failed = sdkSpans.find((span) => span.name === 'validate payment');
    assert.deepEqual(failed.status, { code: 'STATUS_CODE_ERROR', message: 'card declined: insufficient funds' });

    const rawRoot = rawSpans(rawAnswer.body).find((span) => span.name === 'raw root');
    assert.deepEqual(attribute(rawRoot, 'int64.max'), { intValue: '9223372036854775807' });
    assert.deepEqual(attribute(rawRoot, 'bytes'), { bytesValue: Buffer.from('\u0000binary\u00ff').toString('base64') });
    assert.deepEqual(attribute(rawRoot, 'nested').kvlistValue.values[0], { key: 'inner.string', value: { stringValue: 'deep' } });
    assert.equal(rawRoot.flags, 0x101, 'flags is a number');
    assert.equal(rawRoot.traceState, 'vendor=value');
  });

  it('answers v2 with the same spans', async () => {
    await assertEveryTraceReadable('live, v2 JSON', (traceId) => readTraceJson(server, traceId, { version: 2 }));
  });

  it('answers Accept: application/protobuf on v1 and v2 with the same spans', async () => {
    await assertEveryTraceReadable('live, v1 protobuf', (traceId) => readTraceProtobuf(server, traceId, { version: 1 }));
    await assertEveryTraceReadable('live, v2 protobuf', (traceId) => readTraceProtobuf(server, traceId, { version: 2 }));
  });

  it('answers 404 for a trace it never saw and 400 for a malformed id', async () => {
    const unknown = await httpRequest(`${server.httpUrl}/api/traces/${randomTraceId()}`);
    assert.equal(unknown.status, 404, `unknown trace id: ${unknown.text()}`);
    const unknownV2 = await httpRequest(`${server.httpUrl}/api/v2/traces/${randomTraceId()}`);
    assert.equal(unknownV2.status, 404, `unknown trace id on v2: ${unknownV2.text()}`);
    for (const malformed of ['xyz', 'zz'.repeat(16), 'a'.repeat(64)]) {
      const response = await httpRequest(`${server.httpUrl}/api/traces/${malformed}`);
      assert.equal(response.status, 400, `GET /api/traces/${malformed}: ${response.text()}`);
      const responseV2 = await httpRequest(`${server.httpUrl}/api/v2/traces/${malformed}`);
      assert.equal(responseV2.status, 400, `GET /api/v2/traces/${malformed}: ${responseV2.text()}`);
    }
  });

  it('returns every trace unchanged after POST /flush has cut them into blocks', async () => {
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
    assert.equal(flush.status, 204, `POST /flush answered ${flush.status}: ${flush.text()}`);
    await assertEveryTraceReadable('after flush');
  });

  it('returns every trace unchanged from disk after a restart', async () => {
    await server.restart();
    await assertEveryTraceReadable('after restart, v1 JSON', (traceId) => readTraceJson(server, traceId));
    await assertEveryTraceReadable('after restart, v2 JSON', (traceId) => readTraceJson(server, traceId, { version: 2 }));
    await assertEveryTraceReadable('after restart, v1 protobuf', (traceId) => readTraceProtobuf(server, traceId));
  });
});
