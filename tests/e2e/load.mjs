// Helpers for the load-bearing tests (durability.test.mjs, memory.test.mjs): a fast encoder
// for plain spans, a ledger of what each request's answer promised, and the checks that read
// every promised span back.
//
// protowire.mjs builds a request field by field through Buffer.concat, which is right for
// exotic spans but too slow for millions of them; `encodeSpans` below writes the same wire
// format (opentelemetry-proto trace/v1) for the one shape of span these tests send, straight
// into one buffer.

import { readFile } from 'node:fs/promises';
import { httpRequest, sleep } from './harness.mjs';
import { readFields } from './protowire.mjs';

// ---------------------------------------------------------------------------------------
// Encoding

function varintLength(value) {
  let length = 1;
  while (value >= 0x80) { value = Math.floor(value / 128); length += 1; }
  return length;
}

class WireWriter {
  constructor(size) { this.buffer = Buffer.allocUnsafe(size); this.offset = 0; }
  byte(value) { this.buffer[this.offset++] = value; }
  varint(value) {
    while (value >= 0x80) { this.byte((value % 128) | 0x80); value = Math.floor(value / 128); }
    this.byte(value);
  }
  bytes(source) { this.offset += source.copy(this.buffer, this.offset); }
  fixed64(bigValue) { this.buffer.writeBigUInt64LE(bigValue, this.offset); this.offset += 8; }
  lengthDelimited(tagByte, length) { this.byte(tagByte); this.varint(length); }
}

// A span here is { traceId, spanId, parentSpanId?, name, startTimeUnixNano (BigInt),
// endTimeUnixNano (BigInt), payload? } with ids as hex strings or Buffers; `payload`
// becomes a string attribute `load.payload`, which is how a test makes a span big.
function spanParts(span) {
  const traceId = typeof span.traceId === 'string' ? Buffer.from(span.traceId, 'hex') : span.traceId;
  const spanId = typeof span.spanId === 'string' ? Buffer.from(span.spanId, 'hex') : span.spanId;
  const parentSpanId = span.parentSpanId
    ? (typeof span.parentSpanId === 'string' ? Buffer.from(span.parentSpanId, 'hex') : span.parentSpanId) : null;
  const name = Buffer.from(span.name, 'utf8');
  const payload = span.payload ? Buffer.from(span.payload, 'utf8') : null;
  const payloadKey = Buffer.from('load.payload');
  // AnyValue { string_value = 1 } inside KeyValue { key = 1, value = 2 }
  const anyValueLength = payload ? 1 + varintLength(payload.length) + payload.length : 0;
  const keyValueLength = payload ? 1 + varintLength(payloadKey.length) + payloadKey.length + 1 + varintLength(anyValueLength) + anyValueLength : 0;
  let length = 2 + traceId.length + 2 + spanId.length
    + 1 + varintLength(name.length) + name.length
    + 2 // kind = SERVER
    + 9 + 9; // start and end, fixed64
  if (parentSpanId) length += 2 + parentSpanId.length;
  if (payload) length += 1 + varintLength(keyValueLength) + keyValueLength;
  return { traceId, spanId, parentSpanId, name, payload, payloadKey, anyValueLength, keyValueLength, length };
}

function writeSpan(writer, parts, span) {
  writer.lengthDelimited(0x0a, parts.traceId.length); writer.bytes(parts.traceId);
  writer.lengthDelimited(0x12, parts.spanId.length); writer.bytes(parts.spanId);
  if (parts.parentSpanId) { writer.lengthDelimited(0x22, parts.parentSpanId.length); writer.bytes(parts.parentSpanId); }
  writer.lengthDelimited(0x2a, parts.name.length); writer.bytes(parts.name);
  writer.byte(0x30); writer.byte(2);
  writer.byte(0x39); writer.fixed64(BigInt(span.startTimeUnixNano));
  writer.byte(0x41); writer.fixed64(BigInt(span.endTimeUnixNano));
  if (parts.payload) {
    writer.lengthDelimited(0x4a, parts.keyValueLength);
    writer.lengthDelimited(0x0a, parts.payloadKey.length); writer.bytes(parts.payloadKey);
    writer.lengthDelimited(0x12, parts.anyValueLength);
    writer.lengthDelimited(0x0a, parts.payload.length); writer.bytes(parts.payload);
  }
}

// An ExportTraceServiceRequest with one resource (service.name = `serviceName`) and one scope
// holding `spans`, in the order given.
export function encodeSpans(spans, { serviceName = 'e2e-load', scopeName = 'e2e.load' } = {}) {
  const parts = spans.map(spanParts);
  const serviceKey = Buffer.from('service.name');
  const serviceValue = Buffer.from(serviceName);
  const anyValueLength = 1 + varintLength(serviceValue.length) + serviceValue.length;
  const keyValueLength = 1 + varintLength(serviceKey.length) + serviceKey.length + 1 + varintLength(anyValueLength) + anyValueLength;
  const resourceLength = 1 + varintLength(keyValueLength) + keyValueLength;
  const scope = Buffer.from(scopeName);
  const scopeLength = 1 + varintLength(scope.length) + scope.length;
  let scopeSpansLength = 1 + varintLength(scopeLength) + scopeLength;
  for (const part of parts) scopeSpansLength += 1 + varintLength(part.length) + part.length;
  const resourceSpansLength = 1 + varintLength(resourceLength) + resourceLength + 1 + varintLength(scopeSpansLength) + scopeSpansLength;
  const total = 1 + varintLength(resourceSpansLength) + resourceSpansLength;

  const writer = new WireWriter(total);
  writer.lengthDelimited(0x0a, resourceSpansLength);
  writer.lengthDelimited(0x0a, resourceLength);
  writer.lengthDelimited(0x0a, keyValueLength);
  writer.lengthDelimited(0x0a, serviceKey.length); writer.bytes(serviceKey);
  writer.lengthDelimited(0x12, anyValueLength);
  writer.lengthDelimited(0x0a, serviceValue.length); writer.bytes(serviceValue);
  writer.lengthDelimited(0x12, scopeSpansLength);
  writer.lengthDelimited(0x0a, scopeLength);
  writer.lengthDelimited(0x0a, scope.length); writer.bytes(scope);
  for (let index = 0; index < parts.length; index += 1) {
    writer.lengthDelimited(0x12, parts[index].length);
    writeSpan(writer, parts[index], spans[index]);
  }
  if (writer.offset !== total) throw new Error(`encoder bug: wrote ${writer.offset} of ${total} bytes`);
  return writer.buffer;
}

export function nowNanos() {
  return BigInt(Date.now()) * 1_000_000n;
}

// ---------------------------------------------------------------------------------------
// Sending

// ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1, error_message = 2 } }.
export function rejectedSpanCount(responseBody) {
  if (!responseBody || responseBody.length === 0) return 0;
  const partial = readFields(responseBody).find((field) => field.number === 1);
  if (!partial) return 0;
  const rejected = readFields(partial.value).find((field) => field.number === 1);
  return rejected ? Number(rejected.value) : 0;
}

// Posts an OTLP/HTTP protobuf body. Never throws: { status, retryAfterSeconds, rejectedSpans,
// text } for an answer, { status: null, error } when no answer arrived (refused connection,
// reset, timeout) — such a request is neither acknowledged nor refused.
export async function postProtobuf(url, body, { headers = {}, timeoutMs = 15_000 } = {}) {
  try {
    const response = await httpRequest(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf', ...headers },
      body,
      timeoutMs,
    });
    const retryAfter = response.headers.get('retry-after');
    return {
      status: response.status,
      retryAfterSeconds: retryAfter === null ? null : Number(retryAfter),
      rejectedSpans: response.status === 200 ? rejectedSpanCount(response.body) : 0,
      text: response.status === 200 ? '' : response.text().slice(0, 300),
    };
  } catch (error) {
    return { status: null, error: error.cause?.code ?? error.name ?? error.message };
  }
}

// ---------------------------------------------------------------------------------------
// What was promised

// Every span sent, with the fate of the request that carried it: 'acknowledged' (200, no
// partial rejection), 'refused' (an error answer: the server promised not to keep it), or
// 'unknown' (no answer, e.g. in flight at a kill -9: it may or may not be kept).
export class SpanLedger {
  constructor() {
    this.traces = new Map(); // traceId -> Map(spanId -> { name, fate })
    this.counts = { acknowledged: 0, refused: 0, unknown: 0 };
    this.requests = { acknowledged: 0, refused: 0, unknown: 0, byStatus: {} };
  }

  record(spans, fate, status) {
    this.requests[fate] += 1;
    const key = status ?? 'no answer';
    this.requests.byStatus[key] = (this.requests.byStatus[key] ?? 0) + 1;
    for (const span of spans) {
      if (!this.traces.has(span.traceId)) this.traces.set(span.traceId, new Map());
      this.traces.get(span.traceId).set(span.spanId, { name: span.name, fate });
      this.counts[fate] += 1;
    }
  }

  // Records a request by the answer it got: 200 acknowledges, any other status refuses, no
  // answer leaves the spans unknown.
  recordAnswer(spans, answer) {
    if (answer.status === 200) this.record(spans, 'acknowledged', 200);
    else if (answer.status === null) this.record(spans, 'unknown', null);
    else this.record(spans, 'refused', answer.status);
  }

  summary() {
    return `${this.counts.acknowledged} spans acknowledged, ${this.counts.refused} refused, ${this.counts.unknown} unknown `
      + `in ${this.traces.size} traces; requests by answer: ${JSON.stringify(this.requests.byStatus)}`;
  }
}

// ---------------------------------------------------------------------------------------
// Reading back

// Reads a trace through the v1 JSON answer and returns its span ids (with repeats) and names;
// faster than otlp.mjs's full normal form, which matters for traces of 100 000s of spans.
export async function readSpanIds(server, traceId, { headers = {}, timeoutMs = 30_000 } = {}) {
  const response = await httpRequest(`${server.httpUrl}/api/traces/${traceId}`, {
    headers: { Accept: 'application/json', ...headers }, timeoutMs,
  });
  if (response.status !== 200) return { status: response.status, text: response.text().slice(0, 300), spans: [] };
  const body = JSON.parse(response.text());
  const spans = [];
  for (const resourceSpans of body.batches ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) spans.push({ spanId: span.spanId, name: span.name, traceId: span.traceId });
    }
  }
  return { status: 200, spans };
}

// Compares one trace as read with what the ledger says about it. Returns a list of problems:
// an acknowledged span missing, any span returned twice, a refused span present, a span that
// was never sent, a span whose name changed.
export function traceProblems(traceId, expected, read) {
  const problems = [];
  const acknowledged = [...expected.values()].filter((span) => span.fate === 'acknowledged').length;
  if (read.status !== 200) {
    if (acknowledged > 0) problems.push(`${traceId}: HTTP ${read.status} (${read.text ?? ''}) but ${acknowledged} spans were acknowledged`);
    return problems;
  }
  const seen = new Map();
  for (const span of read.spans) {
    const count = (seen.get(span.spanId) ?? 0) + 1;
    seen.set(span.spanId, count);
    if (count === 2) problems.push(`${traceId}/${span.spanId}: returned more than once`);
    const sent = expected.get(span.spanId);
    if (!sent) problems.push(`${traceId}/${span.spanId}: returned but never sent`);
    else if (sent.fate === 'refused' && count === 1) problems.push(`${traceId}/${span.spanId} "${sent.name}": returned although its request was refused`);
    else if (sent.name !== span.name && count === 1) problems.push(`${traceId}/${span.spanId}: name "${span.name}", sent "${sent.name}"`);
    if (span.traceId && span.traceId !== traceId) problems.push(`${traceId}/${span.spanId}: carries trace id ${span.traceId}`);
  }
  for (const [spanId, sent] of expected) {
    if (sent.fate === 'acknowledged' && !seen.has(spanId)) problems.push(`${traceId}/${spanId} "${sent.name}": acknowledged but missing`);
  }
  return problems;
}

// Reads every trace of the ledger with `concurrency` readers; returns all problems found.
export async function checkLedger(server, ledger, { headers = {}, concurrency = 8 } = {}) {
  const traceIds = [...ledger.traces.keys()];
  const problems = [];
  let next = 0;
  async function reader() {
    while (next < traceIds.length) {
      const traceId = traceIds[next++];
      problems.push(...traceProblems(traceId, ledger.traces.get(traceId), await readSpanIds(server, traceId, { headers })));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, reader));
  return problems;
}

export function sampleOf(list, count = 12) {
  return list.slice(0, count).join('\n  ') + (list.length > count ? `\n  ... and ${list.length - count} more` : '');
}

// ---------------------------------------------------------------------------------------
// The process

// Peak and current resident set size of a process, in bytes (VmHWM and VmRSS of
// /proc/<pid>/status).
export async function residentMemory(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kilobytes = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakBytes: kilobytes('VmHWM') * 1024, currentBytes: kilobytes('VmRSS') * 1024 };
}

// Polls GET /ready; true once it answers 200 within `timeoutMs`.
export async function answersReady(server, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await httpRequest(`${server.httpUrl}/ready`, { timeoutMs: 2000 });
      if (response.status === 200) return true;
    } catch { /* try again */ }
    await sleep(100);
  }
  return false;
}
