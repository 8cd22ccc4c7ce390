// Tail sampling in the real binary (issue 11): the seed's three policies with traffic from the
// real OpenTelemetry JS SDK keep every error and slow trace whole and a baseline within
// statistical bounds; late spans follow their trace's decision; a kill -9 in the middle of
// decision_wait loses no decision and no kept span; a flood of distinct trace IDs keeps the
// pending set and memory bounded; every exemplar a real Prometheus holds opens a stored trace
// with a 5 % baseline; the pin API keeps a trace in the `pinned` tier.
//
// The probabilistic policy is deterministic: the Collector's FNV-1a hash of the trace ID
// against a threshold, computed here independently (sampling_helpers.mjs). So besides the
// statistical bound the test knows, trace by trace, which normal traces must be kept.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtobufHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { httpRequest, reportServerOnFailure, sleep } from './harness.mjs';
import { encodeSpans, nowNanos, postProtobuf, residentMemory } from './load.mjs';
import { startPrometheus } from './prometheus.mjs';
import {
  blockMetas, buildTrace, checkTraces, eventually, flush, otlpJsonRequest, postJson, randomSpanId, randomTraceId,
  readTrace, sample, sampledByProbability, samplerCounters, scrape, seedConfigText, startSamplingServer, traceIdSampled,
  tracesPerTier,
} from './sampling_helpers.mjs';

const MiB = 1024 * 1024;
const BASELINE_PERCENT = 5;
// Test 4: peak RSS (VmHWM) allowed above the idle process after 100 000 one-span traces.
// Measured on this loaded 2-core machine: idle 19-20 MiB, peak 30-44 MiB (+11-24 MiB). What
// the server may hold is bounded by configuration: at most num_traces pending summaries plus
// one sweep period of arrivals (tens of thousands of index entries of ~100-200 bytes: under
// 8 MiB), the ~5 % kept traces waiting for their block (5 000 entries), the decision caches
// (2 x num_traces IDs), the request bodies in flight (4 x 60 KB) and the block being cut.
// 80 MiB leaves over 3x the measured growth for allocator and scheduling noise. 100 000
// one-span traces are only ~7 MB of protobuf, so this bound catches gross misbehaviour (a
// leak per trace, spans copied into memory several times); the pending-gauge checks of test 4
// are the precise bound.
const RSS_BOUND_ABOVE_IDLE = 80 * MiB;

// The seed's policies (shared/seed/configs/tail-sampling.yaml) as objects, for the tests that
// set tracery's own `sampler.tail_sampling` key with other decision_wait / num_traces values.
// Test 1 and test 5 use the seed's file as text instead.
const SEED_POLICIES = [
  { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
  { name: 'slow', type: 'latency', latency: { threshold_ms: 500 } },
  { name: 'baseline', type: 'probabilistic', probabilistic: { sampling_percentage: BASELINE_PERCENT } },
];

const predictedBaseline = (traceId) => sampledByProbability(traceId, BASELINE_PERCENT);

function samplerConfig({ decisionWait, numTraces, quietPeriod, policies = SEED_POLICIES }) {
  const tailSampling = { decision_wait: decisionWait, policies };
  if (numTraces !== undefined) tailSampling.num_traces = numTraces;
  return { sampler: { tail_sampling: tailSampling, ...(quietPeriod !== undefined ? { quiet_period: quietPeriod } : {}) } };
}

// ---------------------------------------------------------------------------------------
// 1: the seed's policies, traffic from the OpenTelemetry SDK

// Remembers how each export ended: the SDK only logs failures.
class RecordingExporter {
  constructor(exporter, label) { this.exporter = exporter; this.label = label; this.outcomes = []; }
  export(spans, resultCallback) {
    this.exporter.export(spans, (result) => {
      this.outcomes.push({ spanCount: spans.length, code: result.code, error: result.error });
      resultCallback(result);
    });
  }
  forceFlush() { return this.exporter.forceFlush?.() ?? Promise.resolve(); }
  shutdown() { return this.exporter.shutdown(); }
  get exportedSpans() {
    return this.outcomes.filter((o) => o.code === ExportResultCode.SUCCESS).reduce((sum, o) => sum + o.spanCount, 0);
  }
  failures() {
    return this.outcomes.filter((o) => o.code !== ExportResultCode.SUCCESS)
      .map((o) => `${this.label}: ${o.spanCount} spans: ${o.error?.message ?? 'failed'}`);
  }
}

const randomInt = (bound) => Math.floor(Math.random() * bound);

// One trace of `spanCount` spans with explicit times (milliseconds since the epoch): a SERVER
// root of `durationMs` and CLIENT / INTERNAL children inside it, the first child the parent
// of the later ones. With `error`, one span chosen at random ends with status ERROR.
// Children end before the root, so the root is exported last (in the same batch or a later
// one): the quiet period cannot decide a trace before all of its spans arrived.
function emitSdkTrace(tracer, { kind, spanCount, startMs }) {
  const durationMs = kind === 'slow' ? 650 + randomInt(900) : 12 + randomInt(180);
  const errorIndex = kind === 'error' ? randomInt(spanCount) : -1;
  const root = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER, startTime: startMs, attributes: { 'http.route': '/checkout', 'e2e.kind': kind },
  }, ROOT_CONTEXT);
  const spans = [root];
  const firstChild = tracer.startSpan('call cart', { kind: SpanKind.CLIENT, startTime: startMs + 1 },
    trace.setSpan(ROOT_CONTEXT, root));
  spans.push(firstChild);
  const childEnd = startMs + 1 + Math.floor((durationMs - 2) * 0.8);
  for (let index = 2; index < spanCount; index += 1) {
    const child = tracer.startSpan(`step ${index}`, { kind: SpanKind.INTERNAL, startTime: startMs + 1 + index },
      trace.setSpan(ROOT_CONTEXT, firstChild));
    spans.push(child);
  }
  if (errorIndex >= 0) spans[errorIndex].setStatus({ code: SpanStatusCode.ERROR, message: 'payment declined' });
  for (let index = spanCount - 1; index >= 2; index -= 1) spans[index].end(childEnd - (spanCount - index));
  firstChild.end(childEnd);
  root.end(startMs + durationMs);
  return {
    traceId: root.spanContext().traceId,
    spanIds: spans.map((span) => span.spanContext().spanId),
    kind,
    durationMs,
  };
}

describe('1: the seed tail-sampling policies with OpenTelemetry SDK traffic', () => {
  let server;
  before(async () => {
    // The seed's file verbatim, its `processors:` block appended to tracery's config.
    server = await startSamplingServer({ extraYaml: await seedConfigText('tail-sampling.yaml') });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps every error and slow trace whole, the baseline within bounds of 5 %, nothing partial; tiers match', async (t) => {
    const TRACES = 1200;
    const recorders = [];
    const providers = [];
    const tracers = [];
    // Two services, one per transport; each trace stays within one service (so one
    // BatchSpanProcessor's queue, in span end order).
    for (const [name, exporter] of [
      ['shop-frontend', new GrpcTraceExporter({ url: `http://${server.grpcAddr}` })],
      ['shop-backend', new ProtobufHttpTraceExporter({ url: `${server.otlpHttpUrl}/v1/traces` })],
    ]) {
      const recorder = new RecordingExporter(exporter, name);
      recorders.push(recorder);
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': name }),
        spanProcessors: [new BatchSpanProcessor(recorder, {
          maxQueueSize: 20_000, maxExportBatchSize: 256, scheduledDelayMillis: 50, exportTimeoutMillis: 30_000,
        })],
      });
      providers.push(provider);
      tracers.push(provider.getTracer('e2e.sampling', '1.0.0'));
    }

    const sent = [];
    const startMs = Date.now() - 3000;
    for (let index = 0; index < TRACES; index += 1) {
      const kind = index % 10 === 3 ? 'error' : index % 10 === 7 ? 'slow' : 'normal';
      sent.push(emitSdkTrace(tracers[index % 2], { kind, spanCount: 3 + (index % 3), startMs: startMs + index }));
      // Let the processors export while traces are produced, as a live service would.
      if (index % 100 === 99) await sleep(20);
    }
    await Promise.all(providers.map((provider) => provider.forceFlush()));
    await Promise.all(providers.map((provider) => provider.shutdown()));
    const failures = recorders.flatMap((recorder) => recorder.failures());
    assert.deepEqual(failures, [], 'the SDK exporters reported failed exports');
    const spansSent = sent.reduce((sum, one) => sum + one.spanIds.length, 0);
    assert.equal(recorders.reduce((sum, r) => sum + r.exportedSpans, 0), spansSent,
      'every span the SDK made was exported (none dropped by a full queue)');

    const before = await samplerCounters(server);
    assert.equal(before.kept + before.dropped + before.pending, TRACES,
      `before the flush: kept ${before.kept} + dropped ${before.dropped} + pending ${before.pending} traces`);
    await flush(server);
    const counters = await samplerCounters(server);
    assert.equal(counters.pending, 0, 'POST /flush decides every pending trace');

    const byKind = (kind) => sent.filter((one) => one.kind === kind);
    const normal = byKind('normal');
    const expectedKeep = (one) => one.kind !== 'normal' || predictedBaseline(one.traceId);
    const { problems, readable } = await checkTraces(server, sent.map((one) => ({
      traceId: one.traceId, spanIds: one.spanIds, expectKept: one.kind === 'normal' ? undefined : true,
    })));
    assert.deepEqual(problems, [], `error and slow traces must be readable whole, no trace partial:\n  ${sample(problems)}`);
    for (const kind of ['error', 'slow']) {
      assert.equal(byKind(kind).filter((one) => readable.has(one.traceId)).length, byKind(kind).length, `every ${kind} trace kept`);
    }

    // The baseline: a binomial(n, 5 %) count, within 4 standard deviations.
    const keptNormal = normal.filter((one) => readable.has(one.traceId)).length;
    const mean = normal.length * BASELINE_PERCENT / 100;
    const sigma = Math.sqrt(mean * (1 - BASELINE_PERCENT / 100));
    t.diagnostic(`normal traces kept: ${keptNormal} of ${normal.length} (expected ${mean.toFixed(1)} ± ${sigma.toFixed(1)})`);
    assert.ok(Math.abs(keptNormal - mean) <= 4 * sigma,
      `${keptNormal} of ${normal.length} normal traces kept; 5 % is ${mean} ± 4 × ${sigma.toFixed(2)}`);
    // And trace by trace, the Collector's hash decides which.
    const wrongBaseline = normal.filter((one) => readable.has(one.traceId) !== predictedBaseline(one.traceId))
      .map((one) => `${one.traceId}: ${readable.has(one.traceId) ? 'kept' : 'dropped'}, the Collector's hash says ${predictedBaseline(one.traceId) ? 'keep' : 'drop'}`);
    assert.deepEqual(wrongBaseline, [], 'normal traces kept exactly as the probabilistic policy decides');

    // Counters: decisions, spans, per policy, per tier; blocks on disk agree.
    const kept = sent.filter(expectedKeep);
    const keptSpans = kept.reduce((sum, one) => sum + one.spanIds.length, 0);
    assert.deepEqual(
      { kept: counters.kept, dropped: counters.dropped, spansKept: counters.spansKept, spansDropped: counters.spansDropped },
      { kept: kept.length, dropped: TRACES - kept.length, spansKept: keptSpans, spansDropped: spansSent - keptSpans },
      'tracery_sampler_traces_total / tracery_sampler_spans_total');
    const policy = (name, sampled) => counters.metrics.value('tracery_sampler_policy_traces_total', { policy: name, sampled: String(sampled) });
    const baselineAll = sent.filter((one) => predictedBaseline(one.traceId)).length;
    assert.deepEqual(
      { errors: [policy('errors', true), policy('errors', false)], slow: [policy('slow', true), policy('slow', false)],
        baseline: [policy('baseline', true), policy('baseline', false)] },
      { errors: [byKind('error').length, TRACES - byKind('error').length], slow: [byKind('slow').length, TRACES - byKind('slow').length],
        baseline: [baselineAll, TRACES - baselineAll] },
      'tracery_sampler_policy_traces_total {sampled: true, false} per policy');
    const expectedTiers = { error: byKind('error').length, slow: byKind('slow').length, pinned: 0, baseline: normal.filter((one) => predictedBaseline(one.traceId)).length };
    const policySpans = (name, sampled) => counters.metrics.value('tracery_sampler_policy_spans_total', { policy: name, sampled: String(sampled) });
    const spansOf = (list) => list.reduce((sum, one) => sum + one.spanIds.length, 0);
    const baselineSpans = spansOf(sent.filter((one) => predictedBaseline(one.traceId)));
    assert.deepEqual(
      { errors: [policySpans('errors', true), policySpans('errors', false)], baseline: [policySpans('baseline', true), policySpans('baseline', false)] },
      { errors: [spansOf(byKind('error')), spansSent - spansOf(byKind('error'))], baseline: [baselineSpans, spansSent - baselineSpans] },
      'tracery_sampler_policy_spans_total {sampled: true, false}');
    assert.deepEqual(counters.tiers, expectedTiers, 'tracery_ingester_traces_by_tier_total');
    const metas = await blockMetas(server);
    assert.deepEqual(tracesPerTier(metas), { error: expectedTiers.error, slow: expectedTiers.slow, baseline: expectedTiers.baseline },
      `totalTraces of the blocks per meta.json tier (${metas.length} blocks)`);
    assert.equal(counters.metrics.value('tracery_sampler_decision_latency_seconds_count'), TRACES, 'decision latency observed once per trace');
  });
});

// ---------------------------------------------------------------------------------------
// 2: late spans

describe('2: late spans follow the remembered decision', () => {
  let server;
  let lateSpansFlushed = false;
  before(async () => {
    server = await startSamplingServer({ configOverrides: samplerConfig({ decisionWait: '2s', quietPeriod: 0 }) });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('stores late spans of a kept trace with it, drops those of a dropped trace, and counts them', async () => {
    const kept = buildTrace({ spanCount: 3, error: true });
    const dropped = buildTrace({ traceId: traceIdSampled(false), spanCount: 3 });
    const sentAt = Date.now();
    await postJson(server, otlpJsonRequest([...kept.spans, ...dropped.spans]));
    const decided = await eventually(async () => {
      const counters = await samplerCounters(server);
      assert.deepEqual([counters.kept, counters.dropped, counters.pending], [1, 1, 0], 'kept, dropped, pending');
      return Date.now();
    }, { what: 'both traces decided', timeoutMs: 15_000, intervalMs: 100 });
    // quiet_period 0: both roots arrived at once, yet neither was decided before decision_wait.
    assert.ok(decided - sentAt >= 1900, `decided ${decided - sentAt} ms after the spans came; decision_wait is 2 s`);

    const lateSpan = (of, name) => ({
      traceId: of.traceId, spanId: randomSpanId(), parentSpanId: of.rootSpanId, name, startNs: nowNanos(), durationMs: 1,
    });
    // Late spans while the kept trace still waits for its block...
    const lateKept = [lateSpan(kept, 'late 1'), lateSpan(kept, 'late 2')];
    // One of the dropped trace's late spans has an error: the remembered decision still holds
    // (it is not a new trace for the errors policy).
    const lateDropped = [{ ...lateSpan(dropped, 'late 1'), error: true }, lateSpan(dropped, 'late 2'), lateSpan(dropped, 'late 3')];
    await postJson(server, otlpJsonRequest([...lateKept, ...lateDropped]));
    await flush(server);
    // ...and after it was cut into a block.
    const laterKept = lateSpan(kept, 'late after flush');
    const laterDropped = lateSpan(dropped, 'late after flush');
    await postJson(server, otlpJsonRequest([laterKept, laterDropped]));
    await flush(server);
    lateSpansFlushed = true;

    const keptSpanIds = [...kept.spans, ...lateKept, laterKept].map((span) => span.spanId);
    const { problems } = await checkTraces(server, [
      { traceId: kept.traceId, spanIds: keptSpanIds, expectKept: true },
      { traceId: dropped.traceId, spanIds: [...dropped.spans, ...lateDropped, laterDropped].map((span) => span.spanId), expectKept: false },
    ]);
    assert.deepEqual(problems, [], 'the kept trace has every late span, the dropped one is gone');
    const counters = await samplerCounters(server);
    assert.deepEqual([counters.kept, counters.dropped], [1, 1], 'late spans decide nothing again');
    assert.equal(counters.lateDropped, lateDropped.length + 1, 'tracery_sampler_late_spans_total{decision="dropped"}');
    // Every span that came after its trace was decided "keep" is a late span, whether or not the
    // trace had been cut into a block yet (the metric's help: "Spans that came after their trace
    // was decided"; the Collector counts them alike).
    assert.equal(counters.lateKept, lateKept.length + 1, 'tracery_sampler_late_spans_total{decision="kept"}');
  });

  it('a late span of an error trace, cut after the trace, goes to the error tier with the trace', async () => {
    // Tiers have their own retention: a late span in a shorter-lived tier than its trace would
    // leave the trace partial once that tier expires.
    assert.ok(lateSpansFlushed, 'the previous test sent and flushed the late spans');
    const metas = await blockMetas(server);
    assert.ok(metas.length >= 2, `two flushes cut ${metas.length} blocks`);
    assert.deepEqual([...new Set(metas.map((meta) => meta.tier))], ['error'],
      `tiers of the blocks: ${JSON.stringify(metas.map((meta) => ({ tier: meta.tier, traces: meta.totalTraces, spans: meta.totalSpans })))}`);
  });
});

// ---------------------------------------------------------------------------------------
// 3: kill -9 in the middle of decision_wait

describe('3: a restart in the middle of decision_wait', () => {
  let server;
  before(async () => {
    server = await startSamplingServer({ configOverrides: samplerConfig({ decisionWait: '6s', quietPeriod: 0 }) });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  // A wave of traces: errors, slow ones and normal ones (kept by the baseline or not, as the
  // hash decides), 3 or 4 spans each.
  const makeWave = (label) => [
    ...Array.from({ length: 20 }, (_, i) => ({ label, kind: 'error', ...buildTrace({ spanCount: 3 + (i % 2), error: true }) })),
    ...Array.from({ length: 6 }, (_, i) => ({ label, kind: 'slow', ...buildTrace({ spanCount: 3 + (i % 2), durationMs: 900 }) })),
    ...Array.from({ length: 24 }, (_, i) => ({ label, kind: 'normal', ...buildTrace({ spanCount: 3 + (i % 2) }) })),
  ];
  const sendSpans = async (spans) => {
    for (let offset = 0; offset < spans.length; offset += 60) await postJson(server, otlpJsonRequest(spans.slice(offset, offset + 60)));
  };

  it('loses no decision and no kept span, and keeps nothing half', async (t) => {
    // Wave 1 is decided before the kill; its traces get one late span each.
    const first = makeWave('decided before the kill');
    await sendSpans(first.flatMap((one) => one.spans));
    await eventually(async () => {
      const counters = await samplerCounters(server);
      assert.equal(counters.kept + counters.dropped, first.length, `decided: kept ${counters.kept}, dropped ${counters.dropped}`);
    }, { what: 'wave 1 decided after decision_wait', timeoutMs: 20_000, intervalMs: 200 });
    for (const one of first) {
      one.spans.push({ traceId: one.traceId, spanId: randomSpanId(), parentSpanId: one.rootSpanId, name: 'late', startNs: nowNanos(), durationMs: 1 });
    }
    await sendSpans(first.map((one) => one.spans.at(-1)));

    // Wave 2 is pending at the kill; some of its traces get their last spans after the restart.
    const second = makeWave('pending at the kill');
    const splitAfterRestart = second.filter((_, index) => index % 3 === 0);
    const beforeKill = second.flatMap((one) => (splitAfterRestart.includes(one) ? one.spans.slice(0, 2) : one.spans));
    const afterRestart = splitAfterRestart.flatMap((one) => one.spans.slice(2));
    await sendSpans(beforeKill);
    const atKill = await samplerCounters(server);
    assert.equal(atKill.pending, second.length, 'wave 2 waits for its decision at the kill');
    const killedAt = Date.now();
    await server.kill9();
    await server.start();
    t.diagnostic(`killed ${Date.now() - killedAt} ms before ready again; wave 2 sent within decision_wait`);

    // The decisions of wave 1 came back from the WAL: only wave 2 waits.
    const afterReplay = await samplerCounters(server);
    assert.equal(afterReplay.pending, second.length, 'pending traces after the restart: wave 2 only');
    await sendSpans(afterRestart);
    await eventually(async () => {
      const counters = await samplerCounters(server);
      assert.equal(counters.pending, 0, 'pending traces');
    }, { what: 'wave 2 decided after the restart', timeoutMs: 25_000, intervalMs: 200 });
    const counters = await samplerCounters(server);
    assert.equal(counters.kept + counters.dropped, second.length, 'after the restart only wave 2 was decided (wave 1 not again)');

    // Wave 1's decisions are remembered across the restart: one more late span each, with an
    // error for the dropped traces, follows them (a forgotten drop would store the error span
    // as a new trace).
    const expectKept = (one) => one.kind !== 'normal' || predictedBaseline(one.traceId);
    const droppedFirst = first.filter((one) => !expectKept(one));
    for (const one of first) {
      one.spans.push({ traceId: one.traceId, spanId: randomSpanId(), parentSpanId: one.rootSpanId, name: 'late after restart', startNs: nowNanos(), durationMs: 1, error: !expectKept(one) });
    }
    await sendSpans(first.map((one) => one.spans.at(-1)));
    assert.equal((await samplerCounters(server)).lateDropped, droppedFirst.length,
      'tracery_sampler_late_spans_total{decision="dropped"} after the restart: one per dropped trace of wave 1');
    await flush(server);

    const all = [...first, ...second];
    const { problems } = await checkTraces(server, all.map((one) => ({
      traceId: one.traceId, spanIds: one.spans.map((span) => span.spanId), expectKept: expectKept(one),
    })));
    assert.deepEqual(problems, [], `after kill -9 and restart:\n  ${sample(problems, 15)}`);
    const keptNormal = all.filter((one) => one.kind === 'normal' && predictedBaseline(one.traceId)).length;
    t.diagnostic(`${all.length} traces; ${all.length - all.filter((one) => one.kind === 'normal').length + keptNormal} kept whole, the rest 404`);
  });
});

// ---------------------------------------------------------------------------------------
// 4: a flood of distinct trace IDs

describe('4: a flood of distinct trace IDs keeps the pending set and memory bounded', () => {
  const NUM_TRACES = 2000;
  const TOTAL = 100_000;
  const PER_REQUEST = 1000;
  const SENDERS = 4;
  const FLOOD_MS = 5000; // 20 000 traces/s
  let server;
  before(async () => {
    server = await startSamplingServer({
      configOverrides: samplerConfig({ decisionWait: '30s', numTraces: NUM_TRACES, quietPeriod: 0 }),
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('decides the oldest early past num_traces, counts them, and stays within its memory bound', async (t) => {
    const idle = await residentMemory(server.pid);
    const traceIds = Array.from({ length: TOTAL }, () => randomBytes(16).toString('hex'));
    // Polls of the pending gauge ({ start, end, pending }) and acknowledgements ({ at, traces }).
    const polls = [];
    const acks = [];
    let maxRss = 0;
    let sending = true;
    const poller = (async () => {
      while (sending) {
        const start = Date.now();
        const text = (await httpRequest(`${server.httpUrl}/metrics`, { timeoutMs: 20_000 })).text();
        const pending = Number(/^tracery_sampler_pending_traces(?:\{\})? (\S+)/m.exec(text)?.[1]);
        polls.push({ start, end: Date.now(), pending });
        maxRss = Math.max(maxRss, (await residentMemory(server.pid)).currentBytes);
        await sleep(25);
      }
    })();

    const startedAt = Date.now();
    let next = 0;
    const failures = [];
    async function sender() {
      while (next < TOTAL && failures.length === 0) {
        const first = next;
        next += PER_REQUEST;
        // Paced to FLOOD_MS, so that the flood outlasts the window of the check below.
        const due = startedAt + (first / TOTAL) * FLOOD_MS;
        if (Date.now() < due) await sleep(due - Date.now());
        const start = nowNanos();
        const body = encodeSpans(traceIds.slice(first, first + PER_REQUEST).map((traceId) => ({
          traceId, spanId: randomSpanId(), name: 'flood', startTimeUnixNano: start, endTimeUnixNano: start + 1_000_000n,
        })), { serviceName: 'flood' });
        for (;;) {
          const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, body, { timeoutMs: 30_000 });
          if (answer.status === 429) { await sleep(1000 * (answer.retryAfterSeconds ?? 1)); continue; }
          if (answer.status !== 200 || answer.rejectedSpans) failures.push(`request at ${first}: ${answer.status ?? answer.error} ${answer.text ?? ''}`);
          else acks.push({ at: Date.now(), traces: PER_REQUEST });
          break;
        }
      }
    }
    await Promise.all(Array.from({ length: SENDERS }, sender));
    const sendSeconds = (Date.now() - startedAt) / 1000;
    assert.deepEqual(failures, [], 'every flood request acknowledged');
    // One sweep (500 ms) after the last request the pending set is back at num_traces.
    const settled = await eventually(async () => {
      const counters = await samplerCounters(server);
      assert.ok(counters.pending <= NUM_TRACES, `pending ${counters.pending}`);
      return counters;
    }, { what: `pending traces back to num_traces (${NUM_TRACES})`, timeoutMs: 10_000, intervalMs: 100 });
    sending = false;
    await poller;
    const settledSeconds = (Date.now() - startedAt) / 1000;
    const rate = TOTAL / sendSeconds;
    const maxPending = Math.max(...polls.map((poll) => poll.pending));
    t.diagnostic(`${TOTAL} traces in ${sendSeconds.toFixed(1)} s (${Math.round(rate)}/s); max pending seen ${maxPending} `
      + `in ${polls.length} polls; RSS idle ${(idle.currentBytes / MiB).toFixed(1)} MiB, max ${(maxRss / MiB).toFixed(1)} MiB`);

    assert.ok(polls.every((poll) => Number.isFinite(poll.pending)), 'tracery_sampler_pending_traces is on /metrics');
    assert.equal(settled.kept + settled.dropped + settled.pending, TOTAL, 'kept + dropped + pending = traces sent');
    // All within decision_wait (30 s): every decision so far was an early one.
    if (settledSeconds < 29) assert.equal(settled.early, settled.kept + settled.dropped, 'tracery_sampler_early_decisions_total');
    assert.ok(settled.early >= TOTAL - NUM_TRACES, `early decisions ${settled.early}`);
    // During the flood: num_traces is enforced by the sweeper, woken as soon as the pending set
    // passes it, not at each insert, so the gauge may exceed it by what arrived while the
    // sweeper ran (it walks the index and decides thousands at a time). Allowed: the
    // traces acknowledged in the PENDING_WINDOW_MS before the poll (four sweep periods: the
    // sweeper runs late on this loaded 2-core machine) plus the requests in flight: about
    // 46 000 at 20 000 traces/s. A server that never decided early would hold every trace
    // acknowledged so far, up to 100 000, and fail this from about 2.5 s into the flood.
    const PENDING_WINDOW_MS = 2000;
    const allowed = (poll) => NUM_TRACES + SENDERS * PER_REQUEST + acks
      .filter((ack) => ack.at > poll.start - PENDING_WINDOW_MS && ack.at <= poll.end).reduce((sum, ack) => sum + ack.traces, 0);
    const overshoots = polls.filter((poll) => poll.pending > allowed(poll))
      .map((poll) => `${poll.start - startedAt} ms: ${poll.pending} pending, ${allowed(poll)} allowed`);
    const filledPolls = polls.filter((poll) => poll.start >= startedAt + PENDING_WINDOW_MS && poll.start <= startedAt + FLOOD_MS);
    t.diagnostic(`pending / allowed at its worst once the window filled: ${Math.max(0, ...filledPolls.map((poll) => poll.pending / allowed(poll))).toFixed(2)} `
      + `(${filledPolls.length} polls)`);
    assert.deepEqual(overshoots, [], `pending traces beyond num_traces + ${PENDING_WINDOW_MS} ms of arrivals + requests in flight`);

    await flush(server);
    const final = await samplerCounters(server);
    const predicted = traceIds.filter(predictedBaseline);
    assert.deepEqual([final.kept, final.dropped, final.pending], [predicted.length, TOTAL - predicted.length, 0],
      'early decisions are the policies\' decisions: kept exactly the traces the hash samples');
    const readBack = [
      ...predicted.slice(0, 60).map((traceId) => ({ traceId, expectKept: true })),
      ...traceIds.filter((id) => !predictedBaseline(id)).slice(0, 60).map((traceId) => ({ traceId, expectKept: false })),
    ];
    const problems = [];
    for (const { traceId, expectKept } of readBack) {
      const read = await readTrace(server, traceId);
      if ((read.status === 200) !== expectKept || (expectKept && read.spanIds.length !== 1)) {
        problems.push(`${traceId}: HTTP ${read.status}, ${read.spanIds.length} spans; expected ${expectKept ? 'kept' : 'dropped'}`);
      }
    }
    assert.deepEqual(problems, [], 'a sample of kept and dropped flood traces');

    // Memory: RSS_BOUND_ABOVE_IDLE, justified where it is defined.
    const peak = (await residentMemory(server.pid)).peakBytes;
    t.diagnostic(`peak RSS (VmHWM) ${(peak / MiB).toFixed(1)} MiB, idle ${(idle.currentBytes / MiB).toFixed(1)} MiB`);
    assert.ok(peak <= idle.currentBytes + RSS_BOUND_ABOVE_IDLE,
      `peak RSS ${(peak / MiB).toFixed(1)} MiB > idle ${(idle.currentBytes / MiB).toFixed(1)} MiB + ${RSS_BOUND_ABOVE_IDLE / MiB} MiB`);
  });
});

// ---------------------------------------------------------------------------------------
// 5: exemplars with a real Prometheus and a 5 % baseline

// A trace over two services as two processes would report it: frontend's SERVER root and its
// CLIENT call, checkout's SERVER span and its database CLIENT span. `kind`: normal, error
// (checkout fails) or slow (the root takes 800 ms).
function shopTrace(kind) {
  const traceId = randomTraceId();
  const rootMs = kind === 'slow' ? 800 : 10 + randomInt(90);
  const start = nowNanos() - BigInt(rootMs + 20) * 1_000_000n;
  const root = { traceId, spanId: randomSpanId(), name: 'GET /cart', startNs: start, durationMs: rootMs };
  const call = { traceId, spanId: randomSpanId(), parentSpanId: root.spanId, name: 'POST /checkout', startNs: start + 1_000_000n, durationMs: rootMs - 4 };
  const handler = { traceId, spanId: randomSpanId(), parentSpanId: call.spanId, name: 'POST /checkout', startNs: start + 2_000_000n, durationMs: rootMs - 6, error: kind === 'error' };
  const query = { traceId, spanId: randomSpanId(), parentSpanId: handler.spanId, name: 'INSERT orders', startNs: start + 3_000_000n, durationMs: 2, error: kind === 'error' };
  const kinds = new Map([[root.spanId, 2], [call.spanId, 3], [handler.spanId, 2], [query.spanId, 3]]);
  return { traceId, kind, spans: [root, call, handler, query], frontend: [root, call], checkout: [handler, query], kinds };
}

function shopRequest(traces) {
  const resourceSpans = [];
  for (const service of ['frontend', 'checkout']) {
    const request = otlpJsonRequest(traces.flatMap((one) => one[service]), service);
    for (const span of request.resourceSpans[0].scopeSpans[0].spans) {
      span.kind = traces.find((one) => one.traceId === span.traceId).kinds.get(span.spanId);
    }
    resourceSpans.push(...request.resourceSpans);
  }
  return { resourceSpans };
}

describe('5: every exemplar in Prometheus opens a stored trace at a 5 % baseline', () => {
  let prometheus;
  let server;
  before(async () => {
    prometheus = await startPrometheus();
    server = await startSamplingServer({
      configOverrides: {
        // The seed's generator block (shared/seed/configs/metrics-generator.yaml), writing to
        // the test's Prometheus, collecting every second instead of every 15 s.
        metrics_generator: {
          registry: { external_labels: { source: 'tempo' }, collection_interval: '1s' },
          storage: { remote_write: [{ url: prometheus.remoteWriteUrl }] },
          processor: { service_graphs: { enabled: true }, span_metrics: { enabled: true } },
        },
      },
      extraYaml: await seedConfigText('tail-sampling.yaml'),
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });
  afterEach((context) => {
    if (!context.passed && prometheus) console.error(`\n===== prometheus =====\n${prometheus.log.slice(-6000)}\n=====`);
  });
  after(async () => { await prometheus?.stop(); });

  it('pins every trace chosen as an exemplar, normal ones included, so each opens whole', async (t) => {
    const startedAt = Date.now() / 1000;
    const sent = new Map();
    for (let wave = 0; wave < 12; wave += 1) {
      const traces = Array.from({ length: 20 }, (_, index) => shopTrace(index === 1 ? 'error' : index === 7 && wave % 2 === 0 ? 'slow' : 'normal'));
      for (const one of traces) sent.set(one.traceId, one);
      await postJson(server, shopRequest(traces));
      await sleep(250);
    }
    const spansSent = [...sent.values()].reduce((sum, one) => sum + one.spans.length, 0);
    // The generator saw every span (before sampling), and all of it reached Prometheus.
    await eventually(async () => {
      const [total] = await prometheus.query('sum(traces_spanmetrics_calls_total)');
      assert.equal(total?.value, spansSent, 'sum(traces_spanmetrics_calls_total) in Prometheus');
    }, { what: 'span metrics of all traffic in Prometheus', timeoutMs: 30_000, intervalMs: 500 });
    // One more collection, so the exemplars of the last wave went out too.
    const collections = (await scrapeCount(server));
    await eventually(async () => assert.ok(await scrapeCount(server) >= collections + 2, 'remote writes'),
      { what: 'two more remote writes', timeoutMs: 10_000 });

    const found = await prometheus.queryExemplars('{__name__=~"traces_spanmetrics_latency_bucket|traces_service_graph_request_server_seconds_bucket|traces_service_graph_request_client_seconds_bucket"}',
      startedAt - 60, Date.now() / 1000 + 60);
    const exemplars = found.flatMap(({ seriesLabels, exemplars: list }) => list.map((exemplar) => ({ series: seriesLabels, ...exemplar })));
    assert.ok(exemplars.length > 0, 'Prometheus holds no exemplar');
    await flush(server);

    const problems = [];
    const traceIds = [...new Set(exemplars.map((exemplar) => exemplar.labels.trace_id))];
    for (const traceId of traceIds) {
      const one = sent.get(traceId);
      if (!one) { problems.push(`exemplar trace_id ${traceId} was never sent`); continue; }
      problems.push(...traceProblemsOf(traceId, one, await readTrace(server, traceId)));
    }
    assert.deepEqual(problems, [], `every exemplar's trace opens whole (${exemplars.length} exemplars, ${traceIds.length} traces):\n  ${sample(problems)}`);

    // The ones that prove pinning: normal traces the policies alone drop.
    const rescued = traceIds.filter((id) => sent.get(id).kind === 'normal' && !predictedBaseline(id));
    const normalExemplars = traceIds.filter((id) => sent.get(id).kind === 'normal');
    t.diagnostic(`${exemplars.length} exemplars of ${traceIds.length} traces; ${normalExemplars.length} normal, ${rescued.length} of them kept only because they are exemplars`);
    assert.ok(rescued.length > 0, 'no exemplar of a normal trace that the 5 % baseline drops');

    // Sampling did drop the rest: a normal trace that is neither an exemplar nor in the
    // baseline is gone.
    const exemplarSet = new Set(traceIds);
    const others = [...sent.values()].filter((one) => one.kind === 'normal' && !exemplarSet.has(one.traceId) && !predictedBaseline(one.traceId));
    const readableOthers = [];
    for (const one of others.slice(0, 40)) if ((await readTrace(server, one.traceId)).status !== 404) readableOthers.push(one.traceId);
    assert.deepEqual(readableOthers, [], 'normal traces that are neither exemplars nor baseline are dropped');
    const counters = await samplerCounters(server);
    assert.ok(counters.pinned >= rescued.length, `tracery_sampler_traces_pinned_total ${counters.pinned} < ${rescued.length} rescued traces`);
    assert.ok(counters.tiers.pinned >= traceIds.length, `traces in the pinned tier ${counters.tiers.pinned} < ${traceIds.length} exemplar traces`);
  });
});

// Successful remote writes of the generator so far, from tracery's /metrics.
async function scrapeCount(server) {
  const metrics = await scrape(server);
  return metrics.value('tracery_generator_remote_write_requests_total', { result: 'success' });
}

function traceProblemsOf(traceId, one, read) {
  if (read.status !== 200) return [`${traceId} (${one.kind}): HTTP ${read.status} ${read.text ?? ''}`];
  const got = [...read.spanIds].sort().join(',');
  const want = one.spans.map((span) => span.spanId).sort().join(',');
  return got === want ? [] : [`${traceId} (${one.kind}): spans ${got}, sent ${want}`];
}

// ---------------------------------------------------------------------------------------
// 6: the pin API

describe('6: pinning a trace through the API', () => {
  let server;
  before(async () => {
    server = await startSamplingServer({
      configOverrides: samplerConfig({
        decisionWait: '60s', quietPeriod: 0,
        policies: [{ name: 'nothing', type: 'probabilistic', probabilistic: { sampling_percentage: 0 } }],
      }),
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  let storedPinned = null;
  const pinUrl = (traceId, suffix = 'pin') => `${server.httpUrl}/api/traces/${traceId}/${suffix}`;
  const call = (method, traceId, suffix) => httpRequest(pinUrl(traceId, suffix), { method });
  const expectJson = async (answer, traceId, pinned, what) => {
    assert.equal(answer.status, 200, `${what}: ${answer.status} ${answer.text()}`);
    assert.match(answer.headers.get('content-type') ?? '', /application\/json/, `${what}: content type`);
    assert.deepEqual(JSON.parse(answer.text()), { traceID: traceId, pinned }, what);
  };

  it('keeps a pinned trace in the pinned tier, drops unpinned ones, and answers 404 / 405 / 400 as documented', async () => {
    const [pinned, unpinnedByDelete, never, unpinnedByPost] = [1, 2, 3, 4].map(() => buildTrace({ spanCount: 3 }));
    await postJson(server, otlpJsonRequest([...pinned.spans, ...unpinnedByDelete.spans, ...never.spans, ...unpinnedByPost.spans]));
    assert.equal((await samplerCounters(server)).pending, 4, 'four traces wait for their decision');

    await expectJson(await call('POST', pinned.traceId), pinned.traceId, true, 'POST pin');
    await expectJson(await call('POST', unpinnedByDelete.traceId), unpinnedByDelete.traceId, true, 'POST pin (second trace)');
    await expectJson(await call('DELETE', unpinnedByDelete.traceId), unpinnedByDelete.traceId, false, 'DELETE pin');
    await expectJson(await call('POST', unpinnedByPost.traceId), unpinnedByPost.traceId, true, 'POST pin (fourth trace)');
    await expectJson(await call('POST', unpinnedByPost.traceId, 'unpin'), unpinnedByPost.traceId, false, 'POST unpin');

    for (const [method, suffix, allow] of [['GET', 'pin', ['DELETE', 'POST']], ['PUT', 'pin', ['DELETE', 'POST']],
      ['GET', 'unpin', ['POST']], ['DELETE', 'unpin', ['POST']]]) {
      const answer = await call(method, pinned.traceId, suffix);
      assert.equal(answer.status, 405, `${method} /${suffix}: ${answer.status}`);
      const allowed = (answer.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean).sort();
      assert.deepEqual(allowed, allow, `${method} /${suffix}: Allow header`);
    }
    for (const bad of ['not-hex', 'g'.repeat(32), 'a'.repeat(33)]) {
      const answer = await call('POST', bad);
      assert.equal(answer.status, 400, `POST /api/traces/${bad}/pin: ${answer.status} ${answer.text()}`);
    }
    const unknown = randomTraceId();
    assert.equal((await call('POST', unknown)).status, 404, 'pin of a trace never seen');

    await flush(server);
    const { problems } = await checkTraces(server, [
      { traceId: pinned.traceId, spanIds: pinned.spans.map((s) => s.spanId), expectKept: true },
      ...[unpinnedByDelete, never, unpinnedByPost].map((one) => ({ traceId: one.traceId, spanIds: one.spans.map((s) => s.spanId), expectKept: false })),
    ]);
    assert.deepEqual(problems, [], 'only the pinned trace is stored');
    const metas = await blockMetas(server);
    assert.deepEqual(metas.map((meta) => [meta.tier, meta.totalTraces, meta.totalSpans]), [['pinned', 1, 3]],
      'one block, tier "pinned", holding the pinned trace');
    storedPinned = pinned;
    const counters = await samplerCounters(server);
    assert.deepEqual([counters.kept, counters.dropped, counters.pinned, counters.tiers.pinned], [1, 3, 1, 1],
      'kept, dropped, tracery_sampler_traces_pinned_total, traces_by_tier{pinned}');

    for (const one of [never, unpinnedByDelete]) {
      const answer = await call('POST', one.traceId);
      assert.equal(answer.status, 404, `pin of a trace dropped by sampling: ${answer.status} ${answer.text()}`);
    }
  });

  it('pinning a trace already stored keeps it readable exactly once, in the pinned tier', async () => {
    assert.ok(storedPinned, 'the previous test pinned and stored a trace');
    // Pinned again while it lives in a block: its spans are copied back to the WAL and cut
    // once more; the reader must not show them twice.
    await expectJson(await call('POST', storedPinned.traceId), storedPinned.traceId, true, 'POST pin of a stored trace');
    await flush(server);
    const { problems } = await checkTraces(server, [
      { traceId: storedPinned.traceId, spanIds: storedPinned.spans.map((s) => s.spanId), expectKept: true },
    ]);
    assert.deepEqual(problems, [], 'the trace pinned twice reads back whole, each span once');
    const tiers = [...new Set((await blockMetas(server)).map((meta) => meta.tier))];
    assert.deepEqual(tiers, ['pinned'], 'every block is in the pinned tier');
  });

  it('pins and unpins survive kill -9: the pinned trace is kept, the unpinned one dropped', async () => {
    const [pinned, unpinned, never] = [1, 2, 3].map(() => buildTrace({ spanCount: 3 }));
    await postJson(server, otlpJsonRequest([...pinned.spans, ...unpinned.spans, ...never.spans]));
    await expectJson(await call('POST', pinned.traceId), pinned.traceId, true, 'POST pin');
    await expectJson(await call('POST', unpinned.traceId), unpinned.traceId, true, 'POST pin');
    await expectJson(await call('DELETE', unpinned.traceId), unpinned.traceId, false, 'DELETE pin');
    const before = await samplerCounters(server);
    await server.kill9();
    await server.start();
    const afterRestart = await samplerCounters(server);
    await flush(server);
    const { problems } = await checkTraces(server, [
      { traceId: pinned.traceId, spanIds: pinned.spans.map((s) => s.spanId), expectKept: true },
      ...[unpinned, never].map((one) => ({ traceId: one.traceId, spanIds: one.spans.map((s) => s.spanId), expectKept: false })),
    ]);
    assert.deepEqual(problems, [], 'after kill -9: the pinned trace kept, the unpinned and the never pinned dropped');
    assert.equal(afterRestart.pending, before.pending, 'the three traces still wait for their decision after the restart');
    const newBlocks = (await blockMetas(server)).filter((meta) => meta.totalSpans === 3 && meta.tier !== 'pinned');
    assert.deepEqual(newBlocks.map((meta) => meta.tier), [], 'no block outside the pinned tier');
  });
});
