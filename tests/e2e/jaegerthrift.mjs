// Jaeger's Thrift structures (jaeger.thrift Batch, agent.thrift emitBatch) written by hand in
// both the binary and the compact protocol, from the Thrift protocol specifications, so the
// tests can send what no client library sends (compact datagrams from Node, malformed input)
// without sharing any code with the server's reader.

const TYPE = { bool: 2, byte: 3, double: 4, i16: 6, i32: 8, i64: 10, string: 11, struct: 12, map: 13, set: 14, list: 15 };
const COMPACT = { bool: 1, byte: 3, i16: 4, i32: 5, i64: 6, double: 7, string: 8, list: 9, set: 10, map: 11, struct: 12 };
export const TAG_TYPE = { string: 0, double: 1, bool: 2, long: 3, binary: 4 };
export const REF_TYPE = { childOf: 0, followsFrom: 1 };

class Writer {
  constructor(protocol) {
    if (protocol !== 'binary' && protocol !== 'compact') throw new Error(`unknown protocol ${protocol}`);
    this.compact = protocol === 'compact';
    this.chunks = [];
    this.lastIds = [];
  }
  bytes() { return Buffer.concat(this.chunks); }
  raw(buffer) { this.chunks.push(Buffer.from(buffer)); }
  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));
    const out = [];
    while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    out.push(Number(v));
    this.raw(out);
  }
  zigzag(value) { const v = BigInt.asIntN(64, BigInt(value)); this.varint((v << 1n) ^ (v >> 63n)); }
  bigEndian(value, size) {
    const b = Buffer.alloc(size);
    if (size === 8) b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(value)));
    else if (size === 4) b.writeUInt32BE(Number(BigInt.asUintN(32, BigInt(value))));
    else b.writeUInt16BE(Number(BigInt.asUintN(16, BigInt(value))));
    this.raw(b);
  }
  i32(v) { if (this.compact) this.zigzag(v); else this.bigEndian(v, 4); }
  i64(v) { if (this.compact) this.zigzag(v); else this.bigEndian(v, 8); }
  double(v) {
    const b = Buffer.alloc(8);
    if (this.compact) b.writeDoubleLE(v); else b.writeDoubleBE(v);
    this.raw(b);
  }
  string(s) {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
    if (this.compact) this.varint(b.length); else this.i32(b.length);
    this.raw(b);
  }
  message(name, type, sequenceId) {
    if (this.compact) {
      this.raw([0x82, (type << 5) | 1]);
      this.varint(sequenceId);
      this.string(name);
    } else {
      this.bigEndian(0x80010000 | type, 4);
      this.string(name);
      this.i32(sequenceId);
    }
  }
  structBegin() { this.lastIds.push(0); }
  structEnd() { this.raw([0]); this.lastIds.pop(); }
  fieldWithCode(id, code) {
    if (!this.compact) { this.raw([code]); this.bigEndian(id, 2); return; }
    const last = this.lastIds[this.lastIds.length - 1];
    if (id > last && id - last <= 15) this.raw([((id - last) << 4) | code]);
    else { this.raw([code]); this.zigzag(id); }
    this.lastIds[this.lastIds.length - 1] = id;
  }
  field(type, id) { this.fieldWithCode(id, this.compact ? COMPACT[type] : TYPE[type]); }
  boolField(id, value) {
    if (this.compact) this.fieldWithCode(id, value ? 1 : 2);
    else { this.field('bool', id); this.raw([value ? 1 : 0]); }
  }
  listBegin(elementType, size) {
    if (!this.compact) { this.raw([TYPE[elementType]]); this.i32(size); return; }
    if (size < 15) this.raw([(size << 4) | COMPACT[elementType]]);
    else { this.raw([0xf0 | COMPACT[elementType]]); this.varint(size); }
  }
}

function writeTag(w, { key, type, value }) {
  w.structBegin();
  w.field('string', 1); w.string(key);
  w.field('i32', 2); w.i32(TAG_TYPE[type]);
  if (type === 'string') { w.field('string', 3); w.string(value); }
  if (type === 'double') { w.field('double', 4); w.double(value); }
  if (type === 'bool') w.boolField(5, value);
  if (type === 'long') { w.field('i64', 6); w.i64(value); }
  if (type === 'binary') { w.field('string', 7); w.string(Buffer.from(value)); }
  w.structEnd();
}

function writeTags(w, id, tags) {
  w.field('list', id);
  w.listBegin('struct', tags.length);
  for (const tag of tags) writeTag(w, tag);
}

function writeSpan(w, span) {
  w.structBegin();
  w.field('i64', 1); w.i64(span.traceIdLow);
  w.field('i64', 2); w.i64(span.traceIdHigh ?? 0n);
  w.field('i64', 3); w.i64(span.spanId);
  w.field('i64', 4); w.i64(span.parentSpanId ?? 0n);
  w.field('string', 5); w.string(span.operationName);
  if (span.references?.length) {
    w.field('list', 6);
    w.listBegin('struct', span.references.length);
    for (const ref of span.references) {
      w.structBegin();
      w.field('i32', 1); w.i32(REF_TYPE[ref.refType]);
      w.field('i64', 2); w.i64(ref.traceIdLow);
      w.field('i64', 3); w.i64(ref.traceIdHigh ?? 0n);
      w.field('i64', 4); w.i64(ref.spanId);
      w.structEnd();
    }
  }
  w.field('i32', 7); w.i32(span.flags ?? 1);
  w.field('i64', 8); w.i64(span.startTime);
  w.field('i64', 9); w.i64(span.duration);
  if (span.tags?.length) writeTags(w, 10, span.tags);
  if (span.logs?.length) {
    w.field('list', 11);
    w.listBegin('struct', span.logs.length);
    for (const log of span.logs) {
      w.structBegin();
      w.field('i64', 1); w.i64(log.timestamp);
      writeTags(w, 2, log.fields);
      w.structEnd();
    }
  }
  // A field this reader's IDL version may not know: it must be skipped.
  w.field('struct', 40);
  w.structBegin();
  w.field('string', 1); w.string('future');
  w.structEnd();
  w.structEnd();
}

function writeBatch(w, batch) {
  w.structBegin();
  w.field('struct', 1);
  w.structBegin();
  w.field('string', 1); w.string(batch.serviceName);
  if (batch.processTags?.length) writeTags(w, 2, batch.processTags);
  w.structEnd();
  w.field('list', 2);
  w.listBegin('struct', batch.spans.length);
  for (const span of batch.spans) writeSpan(w, span);
  w.structEnd();
}

// A jaeger.Batch as POST /api/traces takes it (binary protocol, no message envelope).
export function encodeBatch(batch, protocol = 'binary') {
  const w = new Writer(protocol);
  writeBatch(w, batch);
  return w.bytes();
}

// agent.thrift Agent.emitBatch as a UDP datagram: a ONEWAY (4) message with the batch as
// argument 1.
export function encodeEmitBatch(batch, protocol, { name = 'emitBatch', type = 4 } = {}) {
  const w = new Writer(protocol);
  w.message(name, type, 1);
  w.structBegin();
  w.field('struct', 1);
  writeBatch(w, batch);
  w.structEnd();
  return w.bytes();
}
