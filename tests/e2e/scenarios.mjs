// The traces the round-trip tests send. One SDK scenario exercises everything the
// OpenTelemetry JS SDK can put in a span; one raw scenario covers what the SDK cannot
// produce (bytes and key-value-list values, int64 extremes, scope attributes, an
// unspecified kind, dropped counts set by the sender).

import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { context, trace, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { normalizeSdkSpan, normalizeResourceSpansList } from './otlp.mjs';

export const randomTraceId = () => randomBytes(16).toString('hex');
export const randomSpanId = () => randomBytes(8).toString('hex');

// Wraps a network exporter to remember how each export ended: the SDK only logs export
// failures, and a test must not compare against a server that never acknowledged the data.
class AcknowledgementRecorder {
  constructor(exporter, label) {
    this.exporter = exporter;
    this.label = label;
    this.outcomes = [];
  }

  export(spans, resultCallback) {
    this.exporter.export(spans, (result) => {
      this.outcomes.push({ spanCount: spans.length, code: result.code, error: result.error });
      resultCallback(result);
    });
  }

  forceFlush() { return this.exporter.forceFlush?.() ?? Promise.resolve(); }
  shutdown() { return this.exporter.shutdown(); }

  assertAllAcknowledged() {
    assert.ok(this.outcomes.length > 0, `${this.label}: nothing was exported`);
    const failures = this.outcomes.filter((outcome) => outcome.code !== ExportResultCode.SUCCESS);
    assert.deepEqual(
      failures.map((failure) => `${failure.spanCount} spans: ${failure.error?.message ?? 'failed'}`),
      [],
      `${this.label}: the exporter reported failed exports`,
    );
  }
}

// A time a few seconds ago with a nanosecond part no millisecond clock would produce, so a
// server that stores times as milliseconds or doubles is caught.
function preciseTime(secondsAgo, nanoseconds) {
  return [Math.floor(Date.now() / 1000) - secondsAgo, nanoseconds];
}

// Runs the SDK scenario, exporting through exporters made by `makeExporter()` (one per
// simulated service, as separate processes would have). Returns the expected spans in normal
// form, grouped by trace id.
export async function runSdkScenario({ label, makeExporter }) {
  const captured = new InMemorySpanExporter();
  const recorders = [];
  const providers = [];
  const makeProvider = (serviceName, resourceAttributes, spanLimits) => {
    const recorder = new AcknowledgementRecorder(makeExporter(), `${label}/${serviceName}`);
    recorders.push(recorder);
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `${label}-${serviceName}`, ...resourceAttributes }),
      spanLimits,
      spanProcessors: [
        new SimpleSpanProcessor(captured),
        new BatchSpanProcessor(recorder, { scheduledDelayMillis: 20, maxExportBatchSize: 64 }),
      ],
    });
    providers.push(provider);
    return provider;
  };

  const frontendProvider = makeProvider('frontend', {
    'deployment.environment': 'e2e',
    'host.cpu.count': 8,
    'host.load': 0.75,
    'host.virtual': true,
    'host.tags': ['edge', 'eu-west'],
  });
  const checkoutProvider = makeProvider('checkout', {
    'service.version': '2.4.1',
    'service.instance.id': randomSpanId(),
    'replica.ids': [1, 2, 3],
  });
  // Small limits make the SDK drop attributes, events and links, so the dropped counts the
  // server must keep are not zero.
  const inventoryProvider = makeProvider('inventory', { 'cloud.region': 'eu-central-1' }, {
    attributeCountLimit: 3, eventCountLimit: 1, linkCountLimit: 1,
  });

  const frontend = frontendProvider.getTracer('e2e.frontend', '1.2.3');
  const frontendDatabase = frontendProvider.getTracer('e2e.frontend.database'); // no version
  const checkout = checkoutProvider.getTracer('e2e.checkout', '0.9.0');
  const inventory = inventoryProvider.getTracer('e2e.inventory', '3.0.0-beta.1');
  const under = (span) => trace.setSpan(context.active(), span);

  // A separate trace that the main trace links to.
  const restock = inventory.startSpan('restock job', { kind: SpanKind.INTERNAL });
  restock.end();

  // A trace continued from a remote caller: the parent span lives elsewhere, and the caller
  // sent a tracestate the server must keep.
  const remoteParent = {
    traceId: randomTraceId(),
    spanId: randomSpanId(),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'),
  };
  const webhook = checkout.startSpan('handle webhook', { kind: SpanKind.SERVER },
    trace.setSpanContext(context.active(), remoteParent));
  const webhookStore = checkout.startSpan('store webhook', { kind: SpanKind.INTERNAL }, under(webhook));
  webhookStore.end();
  webhook.end();

  const root = frontend.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: preciseTime(3, 123456789),
    links: [{
      context: { ...remoteParent, spanId: randomSpanId(), isRemote: true },
      attributes: { 'link.reason': 'caused-by', 'link.weight': 2.5 },
    }],
    attributes: {
      'http.method': 'GET',
      'http.status_code': 200,
      'retry.ratio': 0.25,
      'user.vip': true,
      // Zero, false, negative and empty values are where "omit defaults" goes wrong.
      'cache.hit': false,
      'items.count': 0,
      'balance.delta': -42,
      'note.empty': '',
      'largest.safe.integer': 9007199254740991,
      'double.tiny': -2.5e-7,
      'double.small': 6.02214076e-23,
      'double.fraction': 123456.789,
      'double.tenth': 0.1,
      'text.unicode': 'héllo wörld ✓ 😀 "quoted" back\\slash\nnewline\ttab\u0001control',
      'list.strings': ['x', 'y', ''],
      'list.ints': [80, 443, -1, 0],
      'list.doubles': [0.5, 1.25, -2.5],
      'list.bools': [true, false, true],
    },
  });
  root.addEvent('cache.lookup', { 'cache.key': 'user:1', 'cache.hit': false, 'latency.ms': 1.5, 'attempt': 2 },
    preciseTime(3, 223456789));
  root.addEvent('flush'); // an event with no attributes at the SDK's own clock

  const render = frontend.startSpan('render', { kind: SpanKind.INTERNAL }, under(root));
  const compile = frontend.startSpan('template.compile', {}, under(render));
  const partial = frontend.startSpan('partial header', {}, under(compile));
  partial.end();
  compile.end();
  render.end();

  const query = frontendDatabase.startSpan('SELECT users', {
    kind: SpanKind.CLIENT,
    attributes: { 'db.system': 'postgresql', 'db.rows': 17 },
  }, under(root));
  query.setStatus({ code: SpanStatusCode.OK });
  query.end();

  const cartCall = frontend.startSpan('POST /cart', { kind: SpanKind.CLIENT }, under(root));
  const cartServer = checkout.startSpan('POST /cart', {
    kind: SpanKind.SERVER,
    attributes: { 'http.route': '/cart', 'http.request.body.size': 512 },
  }, under(cartCall));
  const validate = checkout.startSpan('validate payment', { kind: SpanKind.INTERNAL }, under(cartServer));
  validate.recordException(Object.assign(new Error('card declined: insufficient funds'), { name: 'PaymentError' }));
  validate.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined: insufficient funds' });
  validate.end();
  const publish = checkout.startSpan('publish order', {
    kind: SpanKind.PRODUCER,
    attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders' },
  }, under(cartServer));
  const reserve = inventory.startSpan('reserve stock', {
    kind: SpanKind.CONSUMER,
    links: [
      { context: restock.spanContext(), attributes: { 'link.reason': 'restock' } },
      { context: webhook.spanContext() }, // beyond linkCountLimit: dropped
    ],
    attributes: { sku: 'ABC-123', quantity: 3, warehouse: 'north', 'over.limit.one': 1, 'over.limit.two': 2 },
  }, under(publish));
  reserve.addEvent('reserved', { quantity: 3 });
  reserve.addEvent('beyond the event limit');
  reserve.end();
  publish.end();
  cartServer.end();
  cartCall.end();

  root.setStatus({ code: SpanStatusCode.UNSET });
  root.end(preciseTime(1, 987654321));

  await Promise.all(providers.map((provider) => provider.forceFlush()));
  // Read before shutdown: shutting the in-memory exporter down empties it.
  const capturedSpans = captured.getFinishedSpans();
  await Promise.all(providers.map((provider) => provider.shutdown()));
  for (const recorder of recorders) recorder.assertAllAcknowledged();

  const expectedByTrace = new Map();
  for (const span of capturedSpans) {
    const normalized = normalizeSdkSpan(span);
    if (!expectedByTrace.has(normalized.traceId)) expectedByTrace.set(normalized.traceId, []);
    expectedByTrace.get(normalized.traceId).push(normalized);
  }
  // Guards against the scenario itself silently changing shape (e.g. a span not sampled).
  assert.equal(expectedByTrace.size, 3, `${label}: expected three traces in the scenario`);
  assert.equal(capturedSpans.length, 13, `${label}: expected 13 spans in the scenario`);
  return { label, expectedByTrace, rootTraceId: root.spanContext().traceId, rootSpanId: root.spanContext().spanId };
}

// A hand-written ExportTraceServiceRequest in OTLP/JSON with what the SDK cannot send.
// Enums are numbers here, as the OTLP/JSON spec requires of senders.
export function rawScenarioRequest(label) {
  const traceId = randomTraceId();
  const rootSpanId = randomSpanId();
  const childSpanId = randomSpanId();
  const linkedTraceId = randomTraceId();
  const base = 1_700_000_000_123_456_789n + BigInt(Date.now() % 1_000_000) * 1_000_000_000n;
  const nanos = (offset) => (base + BigInt(offset)).toString();
  const request = {
    resourceSpans: [{
      resource: {
        attributes: [
          { key: 'service.name', value: { stringValue: `${label}-raw` } },
          { key: 'raw.bytes', value: { bytesValue: Buffer.from([0, 1, 2, 250, 255]).toString('base64') } },
        ],
        droppedAttributesCount: 4,
      },
      scopeSpans: [{
        scope: {
          name: 'e2e.raw',
          version: '7.7.7',
          attributes: [{ key: 'scope.flavour', value: { stringValue: 'hand-written' } }],
          droppedAttributesCount: 1,
        },
        spans: [
          {
            traceId,
            spanId: rootSpanId,
            name: 'raw root',
            // kind omitted: SPAN_KIND_UNSPECIFIED
            startTimeUnixNano: nanos(0),
            endTimeUnixNano: nanos(999_999_999),
            traceState: 'vendor=value',
            flags: 0x101,
            attributes: [
              { key: 'int64.max', value: { intValue: '9223372036854775807' } },
              { key: 'int64.min', value: { intValue: '-9223372036854775808' } },
              { key: 'bytes', value: { bytesValue: Buffer.from('\u0000binary\u00ff').toString('base64') } },
              { key: 'bytes.empty', value: { bytesValue: '' } },
              {
                key: 'nested',
                value: {
                  kvlistValue: {
                    values: [
                      { key: 'inner.string', value: { stringValue: 'deep' } },
                      { key: 'inner.list', value: { arrayValue: { values: [{ intValue: '1' }, { stringValue: 'two' }, { doubleValue: 3.5 }] } } },
                      { key: 'inner.map', value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } } },
                    ],
                  },
                },
              },
              { key: 'list.mixed', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '-5' }, { boolValue: false }] } } },
              { key: 'list.empty', value: { arrayValue: {} } },
              { key: 'value.empty', value: {} },
            ],
            droppedAttributesCount: 3,
            events: [{
              timeUnixNano: nanos(500),
              name: 'raw event',
              attributes: [{ key: 'e', value: { intValue: '1' } }],
              droppedAttributesCount: 2,
            }],
            droppedEventsCount: 5,
            links: [{
              traceId: linkedTraceId,
              spanId: randomSpanId(),
              traceState: 'linked=yes',
              attributes: [{ key: 'l', value: { stringValue: 'v' } }],
              droppedAttributesCount: 1,
              flags: 0x301,
            }],
            droppedLinksCount: 6,
            status: { code: 1, message: 'ok with a message' },
          },
          {
            traceId,
            spanId: childSpanId,
            parentSpanId: rootSpanId,
            name: 'raw child',
            kind: 2,
            startTimeUnixNano: nanos(1),
            endTimeUnixNano: nanos(2),
            status: { code: 2 },
          },
        ],
      }],
    }],
  };
  return { traceId, request, expectedSpans: normalizeResourceSpansList(request.resourceSpans) };
}

// The same request with every id replaced, for sending the raw content a second time (e.g.
// as protobuf) without colliding with the first trace.
export function withFreshIds(request) {
  const copy = structuredClone(request);
  const traceIds = new Map();
  const spanIds = new Map();
  const swap = (map, id, make) => {
    if (!id) return id;
    if (!map.has(id)) map.set(id, make());
    return map.get(id);
  };
  for (const rs of copy.resourceSpans) {
    for (const ss of rs.scopeSpans) {
      for (const span of ss.spans) {
        span.traceId = swap(traceIds, span.traceId, randomTraceId);
        span.spanId = swap(spanIds, span.spanId, randomSpanId);
        span.parentSpanId = swap(spanIds, span.parentSpanId, randomSpanId);
      }
    }
  }
  return copy;
}
