// Turns every representation of a span the tests meet (an SDK ReadableSpan, OTLP/JSON as
// sent, OTLP/JSON or protobuf as answered by the query API) into one normal form, so that
// "what was sent" and "what came back" can be compared with a single deepEqual per span.
//
// The normal form keeps every OTLP field, with defaults filled in (the server omits fields at
// their default) and one spelling per value: enums as numbers, 64-bit integers and
// nanosecond times as decimal strings (never through a double), ids as lowercase hex.
// Attributes become an object keyed by name: OTLP does not promise their order.

import assert from 'node:assert/strict';
import { httpRequest, sleep } from './harness.mjs';
import { decodeResourceSpansList, decodeTraceByIdResponseV2 } from './protowire.mjs';

const SPAN_KIND_NUMBERS = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NUMBERS = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

function enumNumber(value, names, what) {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  if (value in names) return names[value];
  throw new assert.AssertionError({ message: `unknown ${what} ${JSON.stringify(value)}` });
}

// A nanosecond count or int64 given as a decimal string or a JSON number. A number past 2^53
// has already lost precision; turning it into a string exposes that as a mismatch.
function decimalString(value) {
  if (value === undefined || value === null) return '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : `imprecise:${value}`;
  return BigInt(value).toString();
}

const lowerHex = (id) => (id ? String(id).toLowerCase() : '');

// ---------------------------------------------------------------------------------------
// OTLP/JSON (or the decoded-protobuf equivalent) -> normal form

export function normalizeAnyValue(value) {
  if (value === undefined || value === null) return ['empty'];
  if ('stringValue' in value) return ['string', value.stringValue];
  if ('boolValue' in value) return ['bool', value.boolValue];
  if ('intValue' in value) return ['int', decimalString(value.intValue)];
  // protobuf's JSON mapping writes NaN and the infinities as strings.
  if ('doubleValue' in value) return ['double', Number(value.doubleValue)];
  if ('bytesValue' in value) return ['bytes', Buffer.from(value.bytesValue, 'base64').toString('base64')];
  if ('arrayValue' in value) return ['array', (value.arrayValue?.values ?? []).map(normalizeAnyValue)];
  if ('kvlistValue' in value) return ['kvlist', normalizeAttributes(value.kvlistValue?.values)];
  return ['empty'];
}

export function normalizeAttributes(keyValues = []) {
  const attributes = {};
  for (const { key, value } of keyValues ?? []) attributes[key] = normalizeAnyValue(value);
  return sortKeys(attributes);
}

function sortKeys(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function normalizeOtlpSpan(span, resource, scope) {
  return {
    traceId: lowerHex(span.traceId),
    spanId: lowerHex(span.spanId),
    parentSpanId: lowerHex(span.parentSpanId),
    traceState: span.traceState ?? '',
    name: span.name ?? '',
    kind: enumNumber(span.kind, SPAN_KIND_NUMBERS, 'span kind'),
    startTimeUnixNano: decimalString(span.startTimeUnixNano),
    endTimeUnixNano: decimalString(span.endTimeUnixNano),
    attributes: normalizeAttributes(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount ?? 0,
    events: (span.events ?? []).map((event) => ({
      timeUnixNano: decimalString(event.timeUnixNano),
      name: event.name ?? '',
      attributes: normalizeAttributes(event.attributes),
      droppedAttributesCount: event.droppedAttributesCount ?? 0,
    })),
    droppedEventsCount: span.droppedEventsCount ?? 0,
    links: (span.links ?? []).map((link) => ({
      traceId: lowerHex(link.traceId),
      spanId: lowerHex(link.spanId),
      traceState: link.traceState ?? '',
      attributes: normalizeAttributes(link.attributes),
      droppedAttributesCount: link.droppedAttributesCount ?? 0,
      flags: link.flags ?? 0,
    })),
    droppedLinksCount: span.droppedLinksCount ?? 0,
    status: {
      code: enumNumber(span.status?.code, STATUS_CODE_NUMBERS, 'status code'),
      message: span.status?.message ?? '',
    },
    flags: span.flags ?? 0,
    resource: {
      attributes: normalizeAttributes(resource?.attributes),
      droppedAttributesCount: resource?.droppedAttributesCount ?? 0,
    },
    scope: {
      name: scope?.name ?? '',
      version: scope?.version ?? '',
      attributes: normalizeAttributes(scope?.attributes),
      droppedAttributesCount: scope?.droppedAttributesCount ?? 0,
    },
  };
}

// Flattens a list of ResourceSpans into normal-form spans, each carrying its resource and scope.
export function normalizeResourceSpansList(resourceSpansList) {
  const spans = [];
  for (const resourceSpans of resourceSpansList ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push(normalizeOtlpSpan(span, resourceSpans.resource, scopeSpans.scope));
      }
    }
  }
  return spans;
}

// ---------------------------------------------------------------------------------------
// SDK ReadableSpan -> normal form, following the OTLP mapping the exporters implement.

// HrTime is [seconds, nanoseconds]; going through a double (e.g. hrTimeToNanoseconds) would
// round the low digits of a present-day timestamp, so this stays in BigInt.
export function hrTimeToNanosString([seconds, nanoseconds]) {
  return (BigInt(Math.trunc(seconds)) * 1_000_000_000n + BigInt(Math.trunc(nanoseconds))).toString();
}

function sdkAttributeValue(value) {
  if (typeof value === 'string') return ['string', value];
  if (typeof value === 'boolean') return ['bool', value];
  // The exporters send integral numbers as intValue and everything else as doubleValue.
  if (typeof value === 'number') return Number.isInteger(value) ? ['int', String(value)] : ['double', value];
  if (Array.isArray(value)) return ['array', value.map(sdkAttributeValue)];
  throw new Error(`attribute value the SDK cannot send: ${value}`);
}

function sdkAttributes(attributes = {}) {
  const normalized = {};
  for (const [key, value] of Object.entries(attributes)) normalized[key] = sdkAttributeValue(value);
  return sortKeys(normalized);
}

// OTLP span flags: the low byte is the W3C trace flags; 0x100 says whether the parent was
// remote is known, 0x200 that it was remote. The exporters always set 0x100.
function otlpFlags(traceFlags, isRemote) {
  return (traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0);
}

export function normalizeSdkSpan(span) {
  const context = span.spanContext();
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? '',
    traceState: context.traceState?.serialize() ?? '',
    name: span.name,
    kind: span.kind + 1, // the API has no UNSPECIFIED, so its values are one lower than OTLP's
    startTimeUnixNano: hrTimeToNanosString(span.startTime),
    endTimeUnixNano: hrTimeToNanosString(span.endTime),
    attributes: sdkAttributes(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount,
    events: span.events.map((event) => ({
      timeUnixNano: hrTimeToNanosString(event.time),
      name: event.name,
      attributes: sdkAttributes(event.attributes),
      droppedAttributesCount: event.droppedAttributesCount ?? 0,
    })),
    droppedEventsCount: span.droppedEventsCount,
    links: span.links.map((link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
      traceState: link.context.traceState?.serialize() ?? '',
      attributes: sdkAttributes(link.attributes),
      droppedAttributesCount: link.droppedAttributesCount ?? 0,
      flags: otlpFlags(link.context.traceFlags, link.context.isRemote),
    })),
    droppedLinksCount: span.droppedLinksCount,
    status: { code: span.status.code, message: span.status.message ?? '' },
    flags: otlpFlags(context.traceFlags, span.parentSpanContext?.isRemote),
    resource: { attributes: sdkAttributes(span.resource.attributes), droppedAttributesCount: 0 },
    scope: {
      name: span.instrumentationScope.name,
      version: span.instrumentationScope.version ?? '',
      attributes: {},
      droppedAttributesCount: 0,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Comparison

// Spans may come back regrouped and in any order, so both sides are keyed by span id. Every
// difference is collected before failing so one run shows the whole picture.
export function assertSameSpans(actualSpans, expectedSpans, label) {
  const actualById = new Map();
  const duplicated = [];
  for (const span of actualSpans) {
    if (actualById.has(span.spanId)) duplicated.push(span.spanId);
    actualById.set(span.spanId, span);
  }
  const expectedById = new Map(expectedSpans.map((span) => [span.spanId, span]));
  const missing = [...expectedById.keys()].filter((id) => !actualById.has(id));
  const unexpected = [...actualById.keys()].filter((id) => !expectedById.has(id));
  const problems = [];
  if (duplicated.length) problems.push(`span ids returned more than once: ${duplicated.join(', ')}`);
  if (missing.length) {
    problems.push(`missing spans: ${missing.map((id) => `${id} (${expectedById.get(id).name})`).join(', ')}`);
  }
  if (unexpected.length) problems.push(`spans that were never sent: ${unexpected.join(', ')}`);
  const mismatches = [];
  for (const [spanId, expected] of expectedById) {
    const actual = actualById.get(spanId);
    if (!actual) continue;
    try {
      assert.deepStrictEqual(actual, expected);
    } catch (error) {
      mismatches.push(`span ${spanId} "${expected.name}" differs (actual vs expected):\n${error.message}`);
    }
  }
  problems.push(...mismatches);
  if (problems.length) {
    throw new assert.AssertionError({
      message: `${label}: ${expectedSpans.length} spans sent, ${actualSpans.length} returned\n${problems.join('\n')}`,
    });
  }
}

// ---------------------------------------------------------------------------------------
// The query API

function traceUrl(server, traceId, version) {
  return version === 2 ? `${server.httpUrl}/api/v2/traces/${traceId}` : `${server.httpUrl}/api/traces/${traceId}`;
}

// Reads a trace through the JSON answer of v1 or v2 and returns the raw body and its spans in
// normal form. `status` is returned rather than asserted so callers can expect a 404.
export async function readTraceJson(server, traceId, { version = 1, headers = {} } = {}) {
  const response = await httpRequest(traceUrl(server, traceId, version), { headers: { Accept: 'application/json', ...headers } });
  if (response.status !== 200) return { status: response.status, text: response.text(), spans: [] };
  let body;
  try {
    body = JSON.parse(response.text());
  } catch (error) {
    throw new assert.AssertionError({ message: `GET ${traceUrl(server, traceId, version)} answered 200 with invalid JSON (${error.message}): ${response.text().slice(0, 500)}` });
  }
  const resourceSpansList = version === 2 ? body?.trace?.resourceSpans : body?.batches;
  if (!Array.isArray(resourceSpansList)) {
    const expectedKey = version === 2 ? 'trace.resourceSpans' : 'batches';
    throw new assert.AssertionError({ message: `v${version} answer has no ${expectedKey} array: ${response.text().slice(0, 500)}` });
  }
  return { status: 200, body, contentType: response.headers.get('content-type'), spans: normalizeResourceSpansList(resourceSpansList) };
}

export async function readTraceProtobuf(server, traceId, { version = 1, headers = {} } = {}) {
  const response = await httpRequest(traceUrl(server, traceId, version), { headers: { Accept: 'application/protobuf', ...headers } });
  if (response.status !== 200) return { status: response.status, text: response.text(), spans: [] };
  const resourceSpansList = version === 2 ? decodeTraceByIdResponseV2(response.body) : decodeResourceSpansList(response.body);
  return { status: 200, bytes: response.body, contentType: response.headers.get('content-type'), spans: normalizeResourceSpansList(resourceSpansList) };
}

// Reads until every expected span is present or `patienceMs` runs out. An acknowledged write
// should be readable at once; the short patience only separates "late" from "lost" in the
// failure message, it never lets a mismatch pass.
export async function readTraceWhenComplete(server, traceId, expectedSpanIds, { patienceMs = 3000, ...options } = {}) {
  const deadline = Date.now() + patienceMs;
  const wanted = new Set(expectedSpanIds);
  for (let attempt = 1; ; attempt += 1) {
    const result = await readTraceJson(server, traceId, options);
    const present = result.spans.filter((span) => wanted.has(span.spanId)).length;
    if ((result.status === 200 && present >= wanted.size) || Date.now() > deadline) {
      return { ...result, attempts: attempt };
    }
    await sleep(200);
  }
}
