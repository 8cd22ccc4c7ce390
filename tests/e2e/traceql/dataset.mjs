// The search tests' data set: ~400 traces generated from a seeded PRNG, so every run sends
// the same shapes (anchored to a `now` passed in) and the reference evaluator can answer every
// query by brute force. The traces are meant to exercise every corner TraceQL reaches: all
// span kinds and statuses, attributes of every OTLP type (arrays included) in span, resource,
// scope, event and link scope, deep nesting, traces whose root never arrived, spans whose
// parent is not in the trace, durations from microseconds to seconds, trace IDs with leading
// zero bytes and traces that share a start time (to pin the tie order).
//
// Each trace carries a placement: 'block' (sent, then POST /flush), 'live' (sent after the
// flush) or 'split' (half its spans before the flush, half after).

import { encodeExportRequest } from '../protowire.mjs';

// mulberry32: small, fast, good enough for test data, and identical on every platform.
export function makeRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const random = {
    next,
    int: (low, high) => low + Math.floor(next() * (high - low + 1)), // inclusive
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
    hex: (bytes) => {
      let text = '';
      for (let i = 0; i < bytes; i += 1) text += Math.floor(next() * 256).toString(16).padStart(2, '0');
      return text;
    },
    // log-uniform between low and high (both > 0)
    logUniform: (low, high) => Math.exp(Math.log(low) + next() * (Math.log(high) - Math.log(low))),
    subset: (list, p) => list.filter(() => next() < p),
  };
  return random;
}

export const SERVICES = [
  { name: 'frontend', namespace: 'shop', env: 'prod', zone: 'eu-west-1a', cpus: 4, region: 'eu' },
  { name: 'checkout', namespace: 'shop', env: 'prod', zone: 'eu-west-1b', cpus: 8, region: 'eu' },
  { name: 'payment', namespace: 'billing', env: 'prod', zone: 'us-east-1a', cpus: 2, region: 'us' },
  { name: 'cart', namespace: 'shop', env: 'staging', zone: 'eu-west-1a', cpus: 2, region: 'eu' },
  { name: 'inventory', namespace: 'warehouse', env: 'prod', zone: 'us-east-1b', cpus: 16, region: 'us' },
  { name: 'shipping', namespace: 'warehouse', env: 'staging', zone: 'ap-south-1a', cpus: 1, region: 'ap' },
  { name: 'auth', namespace: 'platform', env: 'prod', zone: 'eu-west-1c', cpus: 4, region: 'eu' },
  { name: 'db-proxy', namespace: 'platform', env: 'prod', zone: 'us-east-1a', cpus: 32, region: 'us' },
];

export const SCOPES = [
  { name: 'io.opentelemetry.http', version: '1.24.0', attributes: [{ key: 'library.language', value: { stringValue: 'go' } }] },
  { name: 'io.opentelemetry.grpc', version: '1.9.2', attributes: [{ key: 'library.language', value: { stringValue: 'java' } }, { key: 'library.stable', value: { boolValue: true } }] },
  { name: 'tracery.manual', version: '0.3.1', attributes: [{ key: 'library.tier', value: { intValue: '2' } }] },
  { name: 'db.client', version: '2.0.0', attributes: [] },
];

const SPAN_NAMES = ['GET /api/cart', 'POST /api/checkout', 'GET /api/items', 'charge card', 'SELECT orders',
  'INSERT orders', 'publish order.created', 'consume order.created', 'validate token', 'render page',
  'cache lookup', 'compute shipping', 'reserve stock', 'HTTP GET', 'grpc.Payment/Charge'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const STATUS_CODES = [200, 200, 200, 201, 204, 301, 404, 429, 500, 503];
const DB_SYSTEMS = ['postgresql', 'redis', 'mysql'];
const TAG_WORDS = ['alpha', 'beta', 'gamma', 'delta', 'canary', 'blue', 'green'];
const ERROR_MESSAGES = ['timeout after 5s', 'connection refused', 'card declined', 'deadline exceeded', 'upstream 503'];
const OK_MESSAGES = ['done', 'cached'];
const EVENT_NAMES = ['exception', 'retry', 'cache.miss', 'message'];
const EXCEPTION_TYPES = ['TimeoutError', 'IOException', 'ValueError'];

const str = (value) => ({ stringValue: value });
const int = (value) => ({ intValue: String(value) });
const dbl = (value) => ({ doubleValue: value });
const bool = (value) => ({ boolValue: value });
const arr = (values) => ({ arrayValue: { values } });

function resourceAttributes(service) {
  const attributes = [
    { key: 'service.name', value: str(service.name) },
    { key: 'service.namespace', value: str(service.namespace) },
    { key: 'deployment.environment', value: str(service.env) },
    { key: 'cloud.zone', value: str(service.zone) },
    { key: 'host.cpu.count', value: int(service.cpus) },
    { key: 'region', value: str(service.region) },
    { key: 'host.arch.list', value: arr([str('amd64'), str(service.cpus > 4 ? 'arm64' : 'riscv')]) },
  ];
  if (service.cpus >= 8) attributes.push({ key: 'host.large', value: bool(true) });
  if (service.name === 'payment' || service.name === 'auth') attributes.push({ key: 'pci scope', value: str('yes') });
  return attributes;
}

function spanAttributes(random, index) {
  const attributes = [];
  const add = (key, value) => attributes.push({ key, value });
  if (random.chance(0.6)) add('http.method', str(random.pick(METHODS)));
  if (random.chance(0.6)) add('http.status_code', int(random.pick(STATUS_CODES)));
  if (random.chance(0.3)) add('http.url', str(`https://shop.example/${random.pick(['a', 'b', 'cart', 'items'])}/${random.int(1, 50)}`));
  if (random.chance(0.25)) add('db.system', str(random.pick(DB_SYSTEMS)));
  if (random.chance(0.4)) add('retry.ratio', dbl(random.pick([0.0, 0.25, 0.5, 0.75, 1.5, 2.0])));
  if (random.chance(0.4)) add('cache.hit', bool(random.chance(0.5)));
  if (random.chance(0.35)) add('user.id', int(random.int(-5, 5000)));
  if (random.chance(0.3)) add('score', dbl(random.pick([1.0, 2.5, 3.0, 7.25, 10.0, -1.5])));
  if (random.chance(0.25)) add('tags', arr(random.subset(TAG_WORDS, 0.3).concat([random.pick(TAG_WORDS)]).map(str)));
  if (random.chance(0.2)) add('ports', arr([int(random.pick([80, 443, 8080])), int(random.int(1000, 9000))]));
  if (random.chance(0.2)) add('weights', arr([dbl(random.pick([0.5, 1.25, 2.0])), dbl(random.pick([3.5, 4.0, 0.125]))]));
  if (random.chance(0.15)) add('flags', arr([bool(random.chance(0.5)), bool(random.chance(0.5))]));
  if (random.chance(0.2)) add('payload.size', int(random.int(0, 2_000_000)));
  if (random.chance(0.1)) add('attr with space', str(random.pick(['x y', 'plain'])));
  if (random.chance(0.1)) add('region', str(random.pick(['eu', 'mars'])));
  if (random.chance(0.08)) add('service.name', str('span-level-name'));
  if (random.chance(0.1)) add('name', str('attribute-called-name'));
  // The same key with two types: an int on some spans, a string on others.
  if (random.chance(0.15)) add('code', random.chance(0.5) ? int(random.pick([200, 500])) : str(random.pick(['200', 'E42'])));
  if (random.chance(0.1)) add('component', str(random.pick(['net/http', 'grpc', 'kafka'])));
  if (index === 0 && random.chance(0.5)) add('entry.point', bool(true));
  return attributes;
}

// Builds the data set. `now` is the anchor as a BigInt of unix nanoseconds; every span starts
// within the 30 minutes before it.
export function buildDataset({ now, seed = 20240607, traceCount = 400 } = {}) {
  const random = makeRandom(seed);
  const nowNs = BigInt(now);
  const usedSpanIds = new Set();
  const newSpanId = () => {
    for (;;) {
      const id = random.hex(8);
      if (id !== '0000000000000000' && !usedSpanIds.has(id)) { usedSpanIds.add(id); return id; }
    }
  };
  const usedTraceIds = new Set();
  const newTraceId = (leadingZeroBytes) => {
    for (;;) {
      const id = '00'.repeat(leadingZeroBytes) + random.hex(16 - leadingZeroBytes);
      // Trace IDs without leading zeros start with a non-zero nibble, so the trimmed form
      // differs from the padded one only for the traces meant to test it.
      if (leadingZeroBytes === 0 && id[0] === '0') continue;
      if (/^0+$/.test(id) || usedTraceIds.has(id)) continue;
      usedTraceIds.add(id);
      return id;
    }
  };

  const traces = [];
  let sharedStart = null;
  for (let t = 0; t < traceCount; t += 1) {
    const leadingZeros = random.chance(0.08) ? random.int(1, 2) : 0;
    const traceId = newTraceId(leadingZeros);
    const placement = t % 8 < 3 ? 'block' : t % 8 < 6 ? 'live' : 'split';
    const spanCount = random.chance(0.15) ? 1 : random.chance(0.3) ? random.int(2, 5) : random.int(6, 40);
    // Start between 29 and 1 minutes ago; a few traces share one start time exactly.
    let traceStart = nowNs - BigInt(Math.floor(60e9 + random.next() * 28 * 60e9));
    if (t % 37 === 5) { sharedStart ??= traceStart; traceStart = sharedStart; }
    const entryService = random.pick(SERVICES.slice(0, 4));
    const spans = [];
    for (let i = 0; i < spanCount; i += 1) {
      let parent = null;
      if (i > 0) {
        const candidates = spans.filter((s) => s.depth < 5);
        parent = random.chance(0.6) ? candidates[candidates.length - 1] : random.pick(candidates);
      }
      const depth = parent ? parent.depth + 1 : 0;
      const service = i === 0 ? entryService : random.chance(0.5) && parent ? parent.service : random.pick(SERVICES);
      const scope = random.pick(SCOPES);
      const start = parent ? parent.start + BigInt(Math.floor(random.next() * Number(parent.end - parent.start))) : traceStart;
      const durationNs = BigInt(Math.max(1000, Math.floor(random.logUniform(1e3, 4e9))));
      const end = start + durationNs;
      const kind = i === 0 ? random.pick([2, 2, 1, 5, 0]) : random.int(0, 5);
      const statusRoll = random.next();
      const status = statusRoll < 0.18 ? { code: 2, message: random.pick(ERROR_MESSAGES) }
        : statusRoll < 0.45 ? { code: 1, ...(random.chance(0.3) ? { message: random.pick(OK_MESSAGES) } : {}) }
          : { code: 0 };
      const events = [];
      const eventCount = random.chance(0.3) ? random.int(1, 3) : 0;
      for (let e = 0; e < eventCount; e += 1) {
        const eventName = random.pick(EVENT_NAMES);
        const offset = BigInt(Math.floor(random.next() * Number(durationNs)));
        const eventAttributes = [];
        if (eventName === 'exception') {
          eventAttributes.push({ key: 'exception.type', value: str(random.pick(EXCEPTION_TYPES)) });
          eventAttributes.push({ key: 'exception.message', value: str(random.pick(ERROR_MESSAGES)) });
        }
        if (eventName === 'retry') eventAttributes.push({ key: 'attempt', value: int(random.int(1, 4)) });
        if (random.chance(0.3)) eventAttributes.push({ key: 'severity', value: dbl(random.pick([0.5, 1.0, 2.5])) });
        events.push({ timeUnixNano: (start + offset).toString(), name: eventName, attributes: eventAttributes });
      }
      const links = [];
      if (random.chance(0.12)) {
        // Links point at spans of earlier traces (or at made-up IDs); link trace IDs have no
        // leading zero so their hex form is unambiguous.
        const earlier = traces.filter((tr) => tr.traceId[0] !== '0');
        const target = earlier.length && random.chance(0.7) ? random.pick(earlier) : null;
        const linkTraceId = target ? target.traceId : newTraceId(0);
        const linkSpanId = target ? random.pick(target.spans).spanId : random.hex(8).replace(/^0/, '1');
        const linkAttributes = [{ key: 'relation', value: str(random.pick(['follows', 'batch'])) }];
        if (random.chance(0.5)) linkAttributes.push({ key: 'weight', value: int(random.int(1, 9)) });
        links.push({ traceId: linkTraceId, spanId: linkSpanId, attributes: linkAttributes });
      }
      spans.push({
        traceId,
        spanId: newSpanId(),
        parentSpanId: parent ? parent.spanId : '',
        name: i === 0 ? random.pick(SPAN_NAMES.slice(0, 5)) : random.pick(SPAN_NAMES),
        kind,
        start,
        end,
        attributes: spanAttributes(random, i),
        status,
        events,
        links,
        service,
        scope,
        depth,
        parent,
      });
    }
    // A few traces lose their root (never sent) and a few get a span whose parent is not in
    // the trace; its own children stay attached to it.
    let missingRoot = false;
    if (spans.length >= 3 && t % 19 === 7) {
      spans.shift();
      missingRoot = true;
    } else if (spans.length >= 4 && t % 13 === 3) {
      const orphan = spans[random.int(1, spans.length - 1)];
      orphan.parentSpanId = random.hex(8).replace(/^0/, '7');
      orphan.parent = null;
    }
    for (const span of spans) { delete span.parent; delete span.depth; }
    traces.push({ traceId, placement, spans, missingRoot });
  }
  return { now: nowNs, traces };
}

// OTLP ExportTraceServiceRequest objects (protowire's JSON-like shape) for a list of spans,
// grouped by resource and scope as an SDK would.
export function exportRequestFor(spans) {
  const byService = new Map();
  for (const span of spans) {
    if (!byService.has(span.service.name)) byService.set(span.service.name, { service: span.service, scopes: new Map() });
    const entry = byService.get(span.service.name);
    if (!entry.scopes.has(span.scope.name)) entry.scopes.set(span.scope.name, { scope: span.scope, spans: [] });
    entry.scopes.get(span.scope.name).spans.push(span);
  }
  return {
    resourceSpans: [...byService.values()].map(({ service, scopes }) => ({
      resource: { attributes: resourceAttributes(service) },
      scopeSpans: [...scopes.values()].map(({ scope, spans: scopeSpans }) => ({
        scope: { name: scope.name, version: scope.version, attributes: scope.attributes },
        spans: scopeSpans.map((span) => ({
          traceId: span.traceId,
          spanId: span.spanId,
          ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
          name: span.name,
          kind: span.kind,
          startTimeUnixNano: span.start,
          endTimeUnixNano: span.end,
          attributes: span.attributes,
          events: span.events,
          links: span.links,
          status: span.status,
        })),
      })),
    })),
  };
}

// The protobuf bodies to send before and after the flush, a few traces per request.
export function sendPlan(dataset, { tracesPerRequest = 25 } = {}) {
  const before = [];
  const after = [];
  for (const trace of dataset.traces) {
    if (trace.placement === 'block') before.push(...trace.spans);
    else if (trace.placement === 'live') after.push(...trace.spans);
    else {
      // Alternate spans so both halves hold a mix of depths; the root lands before the flush.
      trace.spans.forEach((span, index) => (index % 2 === 0 ? before : after).push(span));
    }
  }
  const chunk = (spans) => {
    const bodies = [];
    const perRequest = tracesPerRequest * 20;
    for (let i = 0; i < spans.length; i += perRequest) bodies.push(encodeExportRequest(exportRequestFor(spans.slice(i, i + perRequest))));
    return bodies;
  };
  return { before: chunk(before), after: chunk(after) };
}

export { resourceAttributes };
