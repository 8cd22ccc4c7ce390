// Just enough protobuf for OTLP traces, written out by hand so the tests depend on the
// wire format itself rather than on a generated library that could share the server's
// misreading of the spec. Field numbers are from opentelemetry-proto (trace/v1, common/v1,
// resource/v1, collector/trace/v1).

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

// ---------------------------------------------------------------------------------------
// Reading

// Splits a message into its fields: [{ number, wireType, value }], where value is a BigInt
// for varints, a Buffer of 8 or 4 bytes for fixed fields and a Buffer for length-delimited.
export function readFields(buffer) {
  const fields = [];
  let offset = 0;
  const readVarint = () => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (offset >= buffer.length) throw new Error('truncated varint');
      const byte = buffer[offset++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint longer than 10 bytes');
    }
  };
  const take = (length) => {
    if (offset + length > buffer.length) throw new Error('field runs past the end of the message');
    const slice = buffer.subarray(offset, offset + length);
    offset += length;
    return slice;
  };
  while (offset < buffer.length) {
    const key = readVarint();
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    let value;
    if (wireType === WIRE_VARINT) value = readVarint();
    else if (wireType === WIRE_FIXED64) value = take(8);
    else if (wireType === WIRE_LENGTH_DELIMITED) value = take(Number(readVarint()));
    else if (wireType === WIRE_FIXED32) value = take(4);
    else throw new Error(`unsupported wire type ${wireType} for field ${number}`);
    fields.push({ number, wireType, value });
  }
  return fields;
}

const utf8 = (bytes) => Buffer.from(bytes).toString('utf8');
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const fixed64 = (bytes) => bytes.readBigUInt64LE(0);
const fixed32 = (bytes) => bytes.readUInt32LE(0);
// int64 travels as a two's-complement varint.
const int64 = (unsigned) => BigInt.asIntN(64, unsigned);

function decodeAnyValue(buffer) {
  for (const field of readFields(buffer)) {
    switch (field.number) {
      case 1: return { stringValue: utf8(field.value) };
      case 2: return { boolValue: field.value !== 0n };
      case 3: return { intValue: int64(field.value).toString() };
      case 4: return { doubleValue: field.value.readDoubleLE(0) };
      case 5: return { arrayValue: { values: readFields(field.value).filter((f) => f.number === 1).map((f) => decodeAnyValue(f.value)) } };
      case 6: return { kvlistValue: { values: readFields(field.value).filter((f) => f.number === 1).map((f) => decodeKeyValue(f.value)) } };
      case 7: return { bytesValue: Buffer.from(field.value).toString('base64') };
      default: break;
    }
  }
  return {};
}

function decodeKeyValue(buffer) {
  const keyValue = { key: '', value: {} };
  for (const field of readFields(buffer)) {
    if (field.number === 1) keyValue.key = utf8(field.value);
    else if (field.number === 2) keyValue.value = decodeAnyValue(field.value);
  }
  return keyValue;
}

// The decoders below produce the same camelCase shape as OTLP/JSON so both answers of the
// query API can go through one normaliser.
function decodeSpan(buffer) {
  const span = { attributes: [], events: [], links: [] };
  for (const { number, value } of readFields(buffer)) {
    switch (number) {
      case 1: span.traceId = hex(value); break;
      case 2: span.spanId = hex(value); break;
      case 3: span.traceState = utf8(value); break;
      case 4: span.parentSpanId = hex(value); break;
      case 5: span.name = utf8(value); break;
      case 6: span.kind = Number(value); break;
      case 7: span.startTimeUnixNano = fixed64(value).toString(); break;
      case 8: span.endTimeUnixNano = fixed64(value).toString(); break;
      case 9: span.attributes.push(decodeKeyValue(value)); break;
      case 10: span.droppedAttributesCount = Number(value); break;
      case 11: span.events.push(decodeEvent(value)); break;
      case 12: span.droppedEventsCount = Number(value); break;
      case 13: span.links.push(decodeLink(value)); break;
      case 14: span.droppedLinksCount = Number(value); break;
      case 15: span.status = decodeStatus(value); break;
      case 16: span.flags = fixed32(value); break;
      default: break;
    }
  }
  return span;
}

function decodeEvent(buffer) {
  const event = { attributes: [] };
  for (const { number, value } of readFields(buffer)) {
    if (number === 1) event.timeUnixNano = fixed64(value).toString();
    else if (number === 2) event.name = utf8(value);
    else if (number === 3) event.attributes.push(decodeKeyValue(value));
    else if (number === 4) event.droppedAttributesCount = Number(value);
  }
  return event;
}

function decodeLink(buffer) {
  const link = { attributes: [] };
  for (const { number, value } of readFields(buffer)) {
    if (number === 1) link.traceId = hex(value);
    else if (number === 2) link.spanId = hex(value);
    else if (number === 3) link.traceState = utf8(value);
    else if (number === 4) link.attributes.push(decodeKeyValue(value));
    else if (number === 5) link.droppedAttributesCount = Number(value);
    else if (number === 6) link.flags = fixed32(value);
  }
  return link;
}

function decodeStatus(buffer) {
  const status = {};
  for (const { number, value } of readFields(buffer)) {
    if (number === 2) status.message = utf8(value);
    else if (number === 3) status.code = Number(value);
  }
  return status;
}

function decodeResource(buffer) {
  const resource = { attributes: [] };
  for (const { number, value } of readFields(buffer)) {
    if (number === 1) resource.attributes.push(decodeKeyValue(value));
    else if (number === 2) resource.droppedAttributesCount = Number(value);
  }
  return resource;
}

function decodeScope(buffer) {
  const scope = { attributes: [] };
  for (const { number, value } of readFields(buffer)) {
    if (number === 1) scope.name = utf8(value);
    else if (number === 2) scope.version = utf8(value);
    else if (number === 3) scope.attributes.push(decodeKeyValue(value));
    else if (number === 4) scope.droppedAttributesCount = Number(value);
  }
  return scope;
}

export function decodeResourceSpans(buffer) {
  const resourceSpans = { scopeSpans: [] };
  for (const { number, value } of readFields(buffer)) {
    if (number === 1) resourceSpans.resource = decodeResource(value);
    else if (number === 2) {
      const scopeSpans = { spans: [] };
      for (const inner of readFields(value)) {
        if (inner.number === 1) scopeSpans.scope = decodeScope(inner.value);
        else if (inner.number === 2) scopeSpans.spans.push(decodeSpan(inner.value));
        else if (inner.number === 3) scopeSpans.schemaUrl = utf8(inner.value);
      }
      resourceSpans.scopeSpans.push(scopeSpans);
    } else if (number === 3) resourceSpans.schemaUrl = utf8(value);
  }
  return resourceSpans;
}

// Any message whose field `fieldNumber` is `repeated ResourceSpans`: ExportTraceServiceRequest,
// TracesData, the v1 trace-by-ID answer, and tempopb.Trace.
export function decodeResourceSpansList(buffer, fieldNumber = 1) {
  return readFields(buffer).filter((f) => f.number === fieldNumber).map((f) => decodeResourceSpans(f.value));
}

// v2 answer: TraceByIDResponse { Trace trace = 1 } with Trace { repeated ResourceSpans = 1 }.
export function decodeTraceByIdResponseV2(buffer) {
  const traceField = readFields(buffer).find((f) => f.number === 1);
  return traceField ? decodeResourceSpansList(traceField.value) : [];
}

// ---------------------------------------------------------------------------------------
// Writing

function varint(value) {
  let remaining = BigInt.asUintN(64, BigInt(value));
  const bytes = [];
  do {
    let byte = Number(remaining & 0x7fn);
    remaining >>= 7n;
    if (remaining !== 0n) byte |= 0x80;
    bytes.push(byte);
  } while (remaining !== 0n);
  return Buffer.from(bytes);
}

const tag = (number, wireType) => varint((number << 3) | wireType);

export function varintField(number, value) {
  return Buffer.concat([tag(number, WIRE_VARINT), varint(value)]);
}

export function bytesField(number, bytes) {
  const payload = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  return Buffer.concat([tag(number, WIRE_LENGTH_DELIMITED), varint(payload.length), payload]);
}

function fixed64Field(number, value) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)));
  return Buffer.concat([tag(number, WIRE_FIXED64), bytes]);
}

function fixed32Field(number, value) {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return Buffer.concat([tag(number, WIRE_FIXED32), bytes]);
}

function doubleField(number, value) {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return Buffer.concat([tag(number, WIRE_FIXED64), bytes]);
}

function encodeAnyValue(value) {
  if ('stringValue' in value) return bytesField(1, value.stringValue);
  if ('boolValue' in value) return varintField(2, value.boolValue ? 1 : 0);
  if ('intValue' in value) return varintField(3, BigInt(value.intValue));
  if ('doubleValue' in value) return doubleField(4, value.doubleValue);
  if ('arrayValue' in value) return bytesField(5, Buffer.concat((value.arrayValue.values ?? []).map((v) => bytesField(1, encodeAnyValue(v)))));
  if ('kvlistValue' in value) return bytesField(6, Buffer.concat((value.kvlistValue.values ?? []).map((kv) => bytesField(1, encodeKeyValue(kv)))));
  if ('bytesValue' in value) return bytesField(7, Buffer.from(value.bytesValue, 'base64'));
  return Buffer.alloc(0);
}

function encodeKeyValue({ key, value }) {
  return Buffer.concat([bytesField(1, key), bytesField(2, encodeAnyValue(value))]);
}

const encodeAttributes = (number, attributes = []) => attributes.map((kv) => bytesField(number, encodeKeyValue(kv)));
const optional = (present, encode) => (present ? [encode()] : []);
// Ids are hex in the JSON shape; the raw byte form lets a test send ids of any length.
const idBytes = (id) => (typeof id === 'string' ? Buffer.from(id, 'hex') : Buffer.from(id));

function encodeSpan(span) {
  const kindValue = typeof span.kind === 'number' ? span.kind : 0;
  return Buffer.concat([
    bytesField(1, idBytes(span.traceId)),
    bytesField(2, idBytes(span.spanId)),
    ...optional(span.traceState, () => bytesField(3, span.traceState)),
    ...optional(span.parentSpanId, () => bytesField(4, idBytes(span.parentSpanId))),
    bytesField(5, span.name ?? ''),
    ...optional(kindValue, () => varintField(6, kindValue)),
    fixed64Field(7, span.startTimeUnixNano ?? 0),
    fixed64Field(8, span.endTimeUnixNano ?? 0),
    ...encodeAttributes(9, span.attributes),
    ...optional(span.droppedAttributesCount, () => varintField(10, span.droppedAttributesCount)),
    ...(span.events ?? []).map((event) => bytesField(11, Buffer.concat([
      fixed64Field(1, event.timeUnixNano ?? 0),
      bytesField(2, event.name ?? ''),
      ...encodeAttributes(3, event.attributes),
      ...optional(event.droppedAttributesCount, () => varintField(4, event.droppedAttributesCount)),
    ]))),
    ...optional(span.droppedEventsCount, () => varintField(12, span.droppedEventsCount)),
    ...(span.links ?? []).map((link) => bytesField(13, Buffer.concat([
      bytesField(1, idBytes(link.traceId)),
      bytesField(2, idBytes(link.spanId)),
      ...optional(link.traceState, () => bytesField(3, link.traceState)),
      ...encodeAttributes(4, link.attributes),
      ...optional(link.droppedAttributesCount, () => varintField(5, link.droppedAttributesCount)),
      ...optional(link.flags, () => fixed32Field(6, link.flags)),
    ]))),
    ...optional(span.droppedLinksCount, () => varintField(14, span.droppedLinksCount)),
    ...optional(span.status, () => bytesField(15, Buffer.concat([
      ...optional(span.status.message, () => bytesField(2, span.status.message)),
      ...optional(span.status.code, () => varintField(3, span.status.code)),
    ]))),
    ...optional(span.flags, () => fixed32Field(16, span.flags)),
  ]);
}

// Encodes an ExportTraceServiceRequest given in the OTLP/JSON shape (numeric enums, hex ids
// or raw id bytes).
export function encodeExportRequest({ resourceSpans }) {
  return Buffer.concat(resourceSpans.map((rs) => bytesField(1, Buffer.concat([
    ...optional(rs.resource, () => bytesField(1, Buffer.concat([
      ...encodeAttributes(1, rs.resource.attributes),
      ...optional(rs.resource.droppedAttributesCount, () => varintField(2, rs.resource.droppedAttributesCount)),
    ]))),
    ...(rs.scopeSpans ?? []).map((ss) => bytesField(2, Buffer.concat([
      ...optional(ss.scope, () => bytesField(1, Buffer.concat([
        bytesField(1, ss.scope.name ?? ''),
        ...optional(ss.scope.version, () => bytesField(2, ss.scope.version)),
        ...encodeAttributes(3, ss.scope.attributes),
        ...optional(ss.scope.droppedAttributesCount, () => varintField(4, ss.scope.droppedAttributesCount)),
      ]))),
      ...ss.spans.map((span) => bytesField(2, encodeSpan(span))),
    ]))),
  ]))));
}
