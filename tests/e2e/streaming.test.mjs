// Tempo's streaming query API (gRPC tempopb.StreamingQuerier) on the HTTP query port, as
// Grafana's Tempo data source dials it with streaming on: plaintext HTTP/2 with prior
// knowledge to the same host:port as its HTTP calls. Spans go in over OTLP/HTTP (some into
// blocks, some still live, in small row groups so a search has many jobs); then every
// streaming answer is checked against the HTTP endpoint that answers the same question:
// the accumulated search diffs equal GET /api/search's traces, metrics progress never goes
// back and ends complete, metrics series equal /api/metrics/query_range's and /query's, tag
// listings equal /api/v2/search/tags'. Bad queries get INVALID_ARGUMENT. HTTP/1.1 keeps
// working on the same port, and with stream_over_http_enabled off HTTP/2 is refused.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { startServer, reportServerOnFailure, httpRequest, repositoryRoot, sleep } from './harness.mjs';
import { encodeSpans, nowNanos, postProtobuf } from './load.mjs';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const SERVICES = ['checkout', 'cart', 'payment'];
const TRACES = 240;
const SPANS_PER_TRACE = 3;

// Field names as protobufjs camel-cases them, which is also how Tempo's JSON spells them;
// 64-bit integers as decimal strings, as the JSON has them.
const definition = protoLoader.loadSync('tempopb/tempo.proto', {
  includeDirs: [path.join(repositoryRoot, 'src/query/proto'), path.join(repositoryRoot, 'src/otlp/proto')],
  keepCase: false, longs: String, enums: String, defaults: false, oneofs: false,
});
const { StreamingQuerier } = grpc.loadPackageDefinition(definition).tempopb;

const grpcStatusName = (code) => Object.keys(grpc.status).find((name) => grpc.status[name] === code) ?? String(code);

// Every message of one server-streaming call, and how it ended.
function collect(client, method, request, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve) => {
    const messages = [];
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      resolve({ messages, error, code: error ? grpcStatusName(error.code) : 'OK' });
    };
    const call = client[method](request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs });
    call.on('data', (message) => messages.push(message));
    call.on('error', finish);
    call.on('end', () => finish(null));
  });
}

// Same JSON text for the same value: keys sorted, empty arrays and objects dropped (the
// protobuf decoder leaves them out, the JSON writer writes `traces: []`).
function canonical(value) {
  if (Array.isArray(value)) return value.length ? value.map(canonical) : undefined;
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) {
      const inner = canonical(value[key]);
      if (inner !== undefined) out[key] = inner;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value;
}

// Series of either API as label text -> samples (timestamp -> value; a missing value is 0,
// as jsonpb leaves zeros out).
function seriesMap(series = []) {
  const out = new Map();
  for (const s of series) {
    const labels = JSON.stringify(canonical(s.labels ?? []) ?? []);
    const samples = {};
    for (const sample of s.samples ?? []) samples[String(sample.timestampMs)] = sample.value ?? 0;
    out.set(labels, s.samples ? samples : (s.value ?? 0));
  }
  return out;
}

let server;
let client;
let windowSeconds; // { start, end }

async function getJson(pathname, params = {}) {
  const url = new URL(pathname, server.httpUrl);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
  const response = await httpRequest(url, { headers: { Accept: 'application/json' }, timeoutMs: 30_000 });
  assert.equal(response.status, 200, `GET ${url.pathname}${url.search}: ${response.status} ${response.text().slice(0, 300)}`);
  return JSON.parse(response.text());
}

async function sendTraces(from, to, now) {
  for (let trace = from; trace < to; trace += 1) {
    const traceId = trace.toString(16).padStart(32, '0').replace(/^0/, 'a');
    const start = now - BigInt(TRACES - trace) * 1_000_000_000n;
    const spans = [];
    for (let span = 0; span < SPANS_PER_TRACE; span += 1) {
      spans.push({
        traceId,
        spanId: (trace * 16 + span + 1).toString(16).padStart(16, '0'),
        parentSpanId: span === 0 ? null : (trace * 16 + 1).toString(16).padStart(16, '0'),
        name: `op-${span}`,
        startTimeUnixNano: start + BigInt(span) * 1_000_000n,
        endTimeUnixNano: start + BigInt(span + 5 + (trace % 7)) * 1_000_000n,
      });
    }
    const body = encodeSpans(spans, { serviceName: SERVICES[trace % SERVICES.length] });
    const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, body);
    assert.equal(answer.status, 200, `POST /v1/traces: ${answer.status} ${answer.text ?? answer.error}`);
  }
}

async function flush() {
  const answer = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 60_000 });
  assert.equal(answer.status, 204, `POST /flush: ${answer.status}`);
}

describe('streaming query API over HTTP/2 on the query port', () => {
  before(async () => {
    server = await startServer({
      configOverrides: { stream_over_http_enabled: true, storage: { trace: { block: { row_group_spans: 64 } } } },
    });
    const now = nowNanos();
    // Three blocks of many row groups, then live traces: a search has dozens of jobs.
    await sendTraces(0, 60, now);
    await flush();
    await sendTraces(60, 120, now);
    await flush();
    await sendTraces(120, 180, now);
    await flush();
    await sendTraces(180, TRACES, now);
    const nowSeconds = Math.floor(Number(now / 1_000_000_000n));
    windowSeconds = { start: nowSeconds - 3600, end: nowSeconds + 60 };
    client = new StreamingQuerier(`127.0.0.1:${server.httpPort}`, grpc.credentials.createInsecure());
  });
  after(() => client?.close());
  reportServerOnFailure(() => server, { afterEach, after });

  for (const { query, limit } of [
    { query: '{}', limit: 20 },
    { query: '{}', limit: 1000 },
    { query: '{ resource.service.name = "cart" && name = "op-1" }', limit: 1000 },
    { query: '{ span:duration > 8ms } | count() > 0', limit: 50 },
  ]) {
    it(`streams search diffs that add up to GET /api/search's answer: ${query} limit ${limit}`, async () => {
      const expected = await getJson('/api/search', { q: query, limit, spss: 10, ...windowSeconds });
      const { messages, code, error } = await collect(client, 'Search', {
        Query: query, Limit: limit, SpansPerSpanSet: 10, start: windowSeconds.start, end: windowSeconds.end,
      });
      assert.equal(code, 'OK', error?.details);
      assert.ok(messages.length >= 1, 'at least one message');

      const accumulated = new Map();
      let sentTwice = 0;
      let previous = null;
      for (const message of messages) {
        for (const trace of message.traces ?? []) {
          if (accumulated.has(trace.traceID)) sentTwice += 1;
          accumulated.set(trace.traceID, trace);
        }
        const metrics = message.metrics ?? {};
        assert.ok(metrics.totalJobs > 1, `several jobs: ${JSON.stringify(metrics)}`);
        if (previous) {
          assert.ok((metrics.completedJobs ?? 0) >= (previous.completedJobs ?? 0), 'completedJobs never goes back');
          assert.equal(metrics.totalJobs, previous.totalJobs, 'totalJobs stays');
          assert.equal(metrics.totalBlocks, previous.totalBlocks, 'totalBlocks stays');
        }
        previous = metrics;
      }
      assert.equal(previous.completedJobs, previous.totalJobs, 'the last message says every job completed');
      assert.equal(previous.totalBlocks, expected.metrics.totalBlocks, 'totalBlocks as the HTTP answer');
      assert.equal(sentTwice, 0, 'an unchanged trace is not sent again');

      const got = [...accumulated.values()].map(canonical).sort((a, b) => a.traceID.localeCompare(b.traceID));
      const want = (expected.traces ?? []).map(canonical).sort((a, b) => a.traceID.localeCompare(b.traceID));
      assert.ok(want.length > 0, 'the query matches something');
      assert.deepEqual(got, want);
    });
  }

  it('answers Grafana\'s health check (query {}, limit 1, last 15 minutes) and ends cleanly', async () => {
    const end = Math.floor(Date.now() / 1000);
    const { messages, code } = await collect(client, 'Search', { Query: '{}', Limit: 1, start: end - 900, end });
    assert.equal(code, 'OK');
    const traces = messages.flatMap((m) => m.traces ?? []);
    assert.equal(traces.length, 1);
  });

  it('refuses a malformed query with INVALID_ARGUMENT and the parser\'s message', async () => {
    const { code, error, messages } = await collect(client, 'Search', { Query: '{ .a = ', Limit: 5 });
    assert.equal(code, 'INVALID_ARGUMENT');
    assert.match(error.details, /invalid TraceQL query/);
    assert.equal(messages.length, 0);
    const metrics = await collect(client, 'MetricsQueryRange', { query: '{} | rate(', start: '1', end: '2' });
    assert.equal(metrics.code, 'INVALID_ARGUMENT');
    const notMetrics = await collect(client, 'MetricsQueryRange', { query: '{}' });
    assert.equal(notMetrics.code, 'INVALID_ARGUMENT');
    const limit = await collect(client, 'Search', { Query: '{}', Limit: 10_000_000 });
    assert.equal(limit.code, 'INVALID_ARGUMENT');
    assert.match(limit.error.details, /exceeds max limit/);
  });

  it('streams MetricsQueryRange with the series GET /api/metrics/query_range answers', async () => {
    for (const query of ['{} | rate()', '{} | count_over_time() by (resource.service.name)']) {
      const params = { q: query, start: windowSeconds.start, end: windowSeconds.end, step: '60s' };
      const expected = await getJson('/api/metrics/query_range', params);
      const { messages, code, error } = await collect(client, 'MetricsQueryRange', {
        query,
        start: String(BigInt(windowSeconds.start) * 1_000_000_000n),
        end: String(BigInt(windowSeconds.end) * 1_000_000_000n),
        step: String(60n * 1_000_000_000n),
      });
      assert.equal(code, 'OK', error?.details);
      const series = messages.flatMap((m) => m.series ?? []);
      assert.ok(expected.series.length > 0, `${query}: the HTTP answer has series`);
      assert.deepEqual(seriesMap(series), seriesMap(expected.series), query);
      const last = messages.at(-1);
      assert.ok(last.metrics, 'the last message carries metrics');
      assert.notEqual(last.status, 'PARTIAL');
    }
  });

  it('streams MetricsQueryInstant with the series GET /api/metrics/query answers', async () => {
    const query = '{} | count_over_time() by (resource.service.name)';
    const expected = await getJson('/api/metrics/query', { q: query, start: windowSeconds.start, end: windowSeconds.end });
    const { messages, code, error } = await collect(client, 'MetricsQueryInstant', {
      query,
      start: String(BigInt(windowSeconds.start) * 1_000_000_000n),
      end: String(BigInt(windowSeconds.end) * 1_000_000_000n),
    });
    assert.equal(code, 'OK', error?.details);
    const got = seriesMap(messages.flatMap((m) => m.series ?? []));
    assert.equal(got.size, SERVICES.length);
    assert.deepEqual(got, seriesMap(expected.series));
    const total = [...got.values()].reduce((sum, value) => sum + value, 0);
    assert.equal(total, TRACES * SPANS_PER_TRACE, 'every span counted once');
  });

  it('answers the tag RPCs as the HTTP tag endpoints', async () => {
    const tags = await collect(client, 'SearchTagsV2', {});
    assert.equal(tags.code, 'OK', tags.error?.details);
    assert.equal(tags.messages.length, 1);
    const expectedTags = await getJson('/api/v2/search/tags');
    const scopes = (answer) => canonical(answer.scopes);
    assert.deepEqual(scopes(tags.messages[0]), scopes(expectedTags));
    assert.ok(tags.messages[0].scopes.find((s) => s.name === 'resource').tags.includes('service.name'));

    const values = await collect(client, 'SearchTagValuesV2', { tagName: 'resource.service.name', query: '{}' });
    assert.equal(values.code, 'OK', values.error?.details);
    const expectedValues = await getJson('/api/v2/search/tag/resource.service.name/values', { q: '{}' });
    assert.deepEqual(canonical(values.messages[0].tagValues), canonical(expectedValues.tagValues));
    assert.deepEqual(values.messages[0].tagValues.map((v) => v.value).sort(), [...SERVICES].sort());

    const v1 = await collect(client, 'SearchTagValues', { tagName: 'service.name' });
    assert.deepEqual([...v1.messages[0].tagValues].sort(), [...SERVICES].sort());
    const badTag = await collect(client, 'SearchTagValuesV2', { tagName: 'app.user.id' });
    assert.equal(badTag.code, 'INVALID_ARGUMENT');
  });

  it('keeps serving HTTP/1.1 on the same port, beside open HTTP/2 connections', async () => {
    const echo = await httpRequest(`${server.httpUrl}/api/echo`);
    assert.equal(echo.status, 200);
    assert.equal(echo.text(), 'echo');
    // A request that arrives a byte at a time: the first byte already says "not HTTP/2".
    const socket = net.connect(server.httpPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const received = [];
    socket.on('data', (chunk) => received.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    for (const byte of Buffer.from('GET /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')) {
      socket.write(Buffer.from([byte]));
      await sleep(2);
    }
    await closed;
    assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 200/);
  });

  it('recognizes the HTTP/2 preface when it arrives in pieces', async () => {
    const socket = net.connect(server.httpPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const received = [];
    socket.on('data', (chunk) => received.push(chunk));
    for (const piece of [PREFACE.slice(0, 3), PREFACE.slice(3, 15), PREFACE.slice(15)]) {
      socket.write(piece);
      await sleep(60);
    }
    // An empty SETTINGS frame from the client; the server answers with its own SETTINGS.
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    const deadline = Date.now() + 5000;
    while (Buffer.concat(received).length < 9 && Date.now() < deadline) await sleep(20);
    socket.destroy();
    const frame = Buffer.concat(received);
    assert.ok(frame.length >= 9, 'the server answered');
    assert.equal(frame[3], 4, 'its first frame is SETTINGS, not an HTTP/1.1 status line');
  });
});

describe('streaming query API switched off (the default)', () => {
  let plain;
  before(async () => { plain = await startServer(); });
  reportServerOnFailure(() => plain, { afterEach, after });

  it('refuses HTTP/2 on the query port and still serves HTTP/1.1', async () => {
    const offClient = new StreamingQuerier(`127.0.0.1:${plain.httpPort}`, grpc.credentials.createInsecure());
    try {
      const { code } = await collect(offClient, 'Search', { Query: '{}', Limit: 1 }, { timeoutMs: 5000 });
      assert.notEqual(code, 'OK');
    } finally {
      offClient.close();
    }
    const echo = await httpRequest(`${plain.httpUrl}/api/echo`);
    assert.equal(echo.status, 200);
  });
});
