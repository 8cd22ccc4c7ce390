// What the storage engine promises about acknowledged spans when things go wrong: a disk that
// fills up and empties again, kill -9 under load (again and again on the same directory),
// traces read while they move from the WAL into blocks, and tenants whose names look like
// temporary files. Every check reads spans back by trace ID: an acknowledged span must be
// there exactly once, a refused one never.

import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, open, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { context as otelContext, trace as otelTrace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtobufHttpTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  TraceryServer, makeTemporaryRoot, reportServerOnFailure, startServer, httpRequest, listTree, sleep,
} from './harness.mjs';
import { exportRawOverGrpc } from './rawgrpc.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';
import {
  SpanLedger, answersReady, checkLedger, encodeSpans, nowNanos, postProtobuf, readSpanIds, sampleOf, traceProblems,
} from './load.mjs';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GRPC_OK = 0;
const GRPC_UNAVAILABLE = 14;

// Spans for one new trace, the first one its root.
function newTraceSpans(count, label, { payloadBytes = 0 } = {}) {
  const traceId = randomTraceId();
  const start = nowNanos();
  const spans = [];
  for (let index = 0; index < count; index += 1) {
    spans.push({
      traceId, spanId: randomSpanId(), ...(index > 0 ? { parentSpanId: spans[0].spanId } : {}),
      name: `${label} span ${index}`, startTimeUnixNano: start + BigInt(index), endTimeUnixNano: start + 1_000_000n,
      ...(payloadBytes ? { payload: 'p'.repeat(payloadBytes) } : {}),
    });
  }
  return spans;
}

// One more span for a trace sent earlier.
function appendedSpan(trace, label) {
  const start = nowNanos();
  return {
    traceId: trace.traceId, spanId: randomSpanId(), parentSpanId: trace.rootSpanId,
    name: label, startTimeUnixNano: start, endTimeUnixNano: start + 1000n,
  };
}

const rootOf = (spans) => ({ traceId: spans[0].traceId, rootSpanId: spans[0].spanId });

async function flush(server, timeoutMs = 30_000) {
  return httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs });
}

// ---------------------------------------------------------------------------------------
// The OpenTelemetry SDK, driven batch by batch: spans are made by a real tracer and handed
// to exporter.export() directly, so each batch's result is known.

class SdkBatches {
  constructor(serviceName) {
    this.captured = new InMemorySpanExporter();
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      spanProcessors: [new SimpleSpanProcessor(this.captured)],
    });
    this.tracer = this.provider.getTracer('e2e.durability', '1.0.0');
  }

  // A finished trace of `count` spans (a root and its children).
  makeTrace(count, label) {
    this.captured.reset();
    const root = this.tracer.startSpan(`${label} root`);
    const parentContext = otelTrace.setSpan(otelContext.active(), root);
    for (let index = 1; index < count; index += 1) {
      this.tracer.startSpan(`${label} child ${index}`, { attributes: { 'sdk.index': index } }, parentContext).end();
    }
    root.end();
    return this.captured.getFinishedSpans().slice();
  }

  static export(exporter, spans) {
    return new Promise((resolve) => exporter.export(spans, resolve));
  }

  static ledgerSpans(readableSpans) {
    return readableSpans.map((span) => ({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, name: span.name }));
  }

  shutdown() { return this.provider.shutdown(); }
}

// ---------------------------------------------------------------------------------------
// 1. Disk full

async function freeBytes(directory) {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

// Appends to `file` until the file system says no more: ENOSPC is the point.
async function fillUntilFull(file) {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(64 * 1024, 0xee);
  try {
    for (;;) {
      try {
        await handle.write(chunk);
      } catch (error) {
        if (error.code !== 'ENOSPC') throw error;
        const small = Buffer.alloc(512, 0xee);
        for (;;) {
          try { await handle.write(small); } catch (inner) { if (inner.code === 'ENOSPC') return; throw inner; }
        }
      }
    }
  } finally {
    await handle.close();
  }
}

describe('a full disk refuses writes with 503 / UNAVAILABLE, recovers by itself and loses nothing acknowledged', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it('refuses while full, accepts again once space is freed, and keeps exactly what it acknowledged across kill -9', {
    skip: process.getuid?.() !== 0 ? 'mounting the small tmpfs this test fills needs root (the CI runs the e2e tests as root)' : false,
    timeout: 120_000,
  }, async (t) => {
    const directories = await makeTemporaryRoot();
    // The whole data directory (WAL and blocks) lives on a 64 MiB file system of its own.
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', directories.dataDir]);
    const ballast = path.join(directories.dataDir, 'ballast');
    const lastBallast = path.join(directories.dataDir, 'ballast-last-bytes');
    const ledger = new SpanLedger();
    const unexpectedAnswers = [];
    const sdkGrpc = new SdkBatches('durability-sdk-grpc');
    const sdkProto = new SdkBatches('durability-sdk-proto');
    const exporters = [];
    let passed = false;
    try {
      server = new TraceryServer({
        ...directories,
        configOverrides: { ingester: { trace_idle_period: '60s' } },
        extraArgs: [],
      });
      await server.start();
      const grpcExporter = new GrpcTraceExporter({ url: `http://${server.grpcAddr}`, timeoutMillis: 5000 });
      const protoExporter = new ProtobufHttpTraceExporter({ url: `${server.otlpHttpUrl}/v1/traces`, timeoutMillis: 3000 });
      exporters.push(grpcExporter, protoExporter);
      const acknowledgedTraces = [];

      // A raw OTLP/HTTP request: one new trace of 50 spans of 4 KiB (about 210 KB, so a few
      // MiB fill up in a few dozen requests) plus one span appended to an acknowledged trace,
      // so a refused request also tests that a trace does not take in half of a failed write.
      const sendRawHttp = async (label, spanCount = 50) => {
        const spans = newTraceSpans(spanCount, label, { payloadBytes: 4096 });
        if (acknowledgedTraces.length) {
          spans.push(appendedSpan(acknowledgedTraces[Math.floor(Math.random() * acknowledgedTraces.length)], `${label} appended`));
        }
        const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, encodeSpans(spans, { serviceName: 'durability-raw-http' }));
        ledger.recordAnswer(spans, answer);
        if (answer.status === 200 && answer.rejectedSpans === 0) acknowledgedTraces.push(rootOf(spans));
        if (answer.status !== 200 && answer.status !== 503) unexpectedAnswers.push(`${label}: HTTP ${answer.status ?? answer.error} ${answer.text ?? ''}`);
        if (answer.rejectedSpans) unexpectedAnswers.push(`${label}: ${answer.rejectedSpans} spans rejected in a 200`);
        return answer.status;
      };
      const sendRawGrpc = async (label) => {
        const spans = newTraceSpans(20, label, { payloadBytes: 2048 });
        const result = await exportRawOverGrpc(server.grpcAddr, encodeSpans(spans, { serviceName: 'durability-raw-grpc' }));
        if (result.code === GRPC_OK) ledger.record(spans, 'acknowledged', 'grpc OK');
        else if (result.code === GRPC_UNAVAILABLE) ledger.record(spans, 'refused', 'grpc UNAVAILABLE');
        else {
          ledger.record(spans, 'unknown', `grpc ${result.name}`);
          unexpectedAnswers.push(`${label}: gRPC ${result.name} ${result.details}`);
        }
        return result.code;
      };
      // SDK batches: a gRPC failure is one definite answer (this exporter does not retry);
      // the protobuf exporter retries 503 until its timeout, so a failure there is recorded
      // as unknown rather than refused.
      const sendSdk = async (label) => {
        const grpcSpans = sdkGrpc.makeTrace(6, `${label} grpc`);
        const grpcResult = await SdkBatches.export(grpcExporter, grpcSpans);
        const protoSpans = sdkProto.makeTrace(6, `${label} proto`);
        const protoResult = await SdkBatches.export(protoExporter, protoSpans);
        const grpcOk = grpcResult.code === ExportResultCode.SUCCESS;
        ledger.record(SdkBatches.ledgerSpans(grpcSpans), grpcOk ? 'acknowledged' : (grpcResult.error?.code === GRPC_UNAVAILABLE ? 'refused' : 'unknown'),
          grpcOk ? 'sdk grpc OK' : `sdk grpc ${grpcResult.error?.code}`);
        const protoOk = protoResult.code === ExportResultCode.SUCCESS;
        ledger.record(SdkBatches.ledgerSpans(protoSpans), protoOk ? 'acknowledged' : 'unknown', protoOk ? 'sdk proto OK' : 'sdk proto failed');
        return { grpcOk, grpcCode: grpcResult.error?.code ?? GRPC_OK, grpcMessage: grpcResult.error?.message ?? '', protoOk, protoError: protoResult.error?.message ?? '' };
      };

      // Room to spare: everything is acknowledged.
      for (let index = 0; index < 3; index += 1) {
        assert.equal(await sendRawHttp(`before ${index}`), 200, 'raw OTLP/HTTP with room to spare');
        assert.equal(await sendRawGrpc(`before grpc ${index}`), GRPC_OK, 'raw OTLP/gRPC with room to spare');
      }
      const sdkBefore = await sendSdk('before');
      assert.ok(sdkBefore.grpcOk && sdkBefore.protoOk, `SDK exports with room to spare: ${JSON.stringify(sdkBefore)}`);

      // Ballast leaves 4 MiB; requests then fill that until the first 503.
      const freeAtStart = await freeBytes(directories.dataDir);
      await writeFile(ballast, Buffer.alloc(Math.max(0, freeAtStart - 4 * MiB), 0xbb));
      t.diagnostic(`tmpfs: ${(freeAtStart / MiB).toFixed(1)} MiB free before the ballast, ${((await freeBytes(directories.dataDir)) / MiB).toFixed(1)} MiB after`);
      let firstRefusalAfter = null;
      for (let index = 0; index < 200 && firstRefusalAfter === null; index += 1) {
        const status = await sendRawHttp(`filling ${index}`);
        if (status !== 200) firstRefusalAfter = index;
      }
      assert.notEqual(firstRefusalAfter, null, `200 requests of ~210 KB into 4 MiB of free space were all acknowledged: ${ledger.summary()}`);
      assert.deepEqual(unexpectedAnswers, [], 'while filling up, every answer is 200 or 503');
      // Take the last bytes too, including what the WAL gave back when it cut off the
      // failed write: from now on not even a small request fits.
      await fillUntilFull(lastBallast);

      // Full: every kind of request is refused with 503 / UNAVAILABLE, and the server stays up.
      const fullHttp = [];
      const fullGrpc = [];
      for (let index = 0; index < 6; index += 1) {
        fullHttp.push(await sendRawHttp(`full ${index}`, index % 2 ? 50 : 2));
        fullGrpc.push(await sendRawGrpc(`full grpc ${index}`));
      }
      const sdkFull = await sendSdk('full');
      // Cutting a block needs space too; whatever /flush answers, no acknowledged span may be
      // lost by the failed cut (checked after the restart below).
      const flushWhileFull = await flush(server);
      fullHttp.push(await sendRawHttp('full after flush'));
      const readyWhileFull = await answersReady(server, 3000);
      const metricsWhileFull = await httpRequest(`${server.httpUrl}/metrics`);
      const queryProblems = [];
      for (const trace of acknowledgedTraces.slice(0, 5)) {
        queryProblems.push(...traceProblems(trace.traceId, ledger.traces.get(trace.traceId), await readSpanIds(server, trace.traceId)));
      }
      t.diagnostic(`while full: HTTP ${fullHttp.join(',')}; gRPC ${fullGrpc.join(',')}; SDK ${JSON.stringify(sdkFull)}; `
        + `POST /flush ${flushWhileFull.status} ${flushWhileFull.text().trim().slice(0, 200)}`);
      assert.ok([204, 503].includes(flushWhileFull.status), `POST /flush on a full disk answers 204 or 503 (retryable), not ${flushWhileFull.status}`);
      assert.deepEqual(fullHttp, fullHttp.map(() => 503), `raw OTLP/HTTP on a full disk answers 503 (${unexpectedAnswers.join('; ')})`);
      assert.deepEqual(fullGrpc, fullGrpc.map(() => GRPC_UNAVAILABLE), `raw OTLP/gRPC on a full disk answers UNAVAILABLE (${unexpectedAnswers.join('; ')})`);
      assert.equal(sdkFull.grpcOk, false, 'the SDK gRPC export on a full disk fails');
      assert.equal(sdkFull.grpcCode, GRPC_UNAVAILABLE, `the SDK gRPC export on a full disk fails with UNAVAILABLE: ${sdkFull.grpcMessage}`);
      assert.equal(sdkFull.protoOk, false, 'the SDK OTLP/HTTP protobuf export on a full disk fails (after retrying 503)');
      assert.ok(server.running, `the server is still running on a full disk (exit: ${JSON.stringify(server.exit)})`);
      assert.ok(readyWhileFull, 'GET /ready answers 200 on a full disk');
      assert.equal(metricsWhileFull.status, 200, 'GET /metrics answers on a full disk');
      assert.deepEqual(queryProblems, [], 'acknowledged traces are readable on a full disk');

      // Space again: sending resumes by itself, with no restart.
      await rm(ballast);
      await rm(lastBallast);
      const resumeDeadline = Date.now() + 10_000;
      let resumedAfterMs = null;
      const resumeStartedAt = Date.now();
      while (Date.now() < resumeDeadline) {
        if (await sendRawHttp('resuming', 5) === 200) { resumedAfterMs = Date.now() - resumeStartedAt; break; }
        await sleep(200);
      }
      assert.notEqual(resumedAfterMs, null, `no request was acknowledged within 10 s of freeing the disk: ${ledger.summary()}`);
      t.diagnostic(`first request acknowledged ${resumedAfterMs} ms after the ballast was deleted`);
      const afterHttp = [];
      const afterGrpc = [];
      for (let index = 0; index < 5; index += 1) {
        afterHttp.push(await sendRawHttp(`after ${index}`));
        afterGrpc.push(await sendRawGrpc(`after grpc ${index}`));
      }
      const sdkAfter = await sendSdk('after');
      assert.deepEqual(afterHttp, afterHttp.map(() => 200), 'raw OTLP/HTTP after space was freed');
      assert.deepEqual(afterGrpc, afterGrpc.map(() => GRPC_OK), 'raw OTLP/gRPC after space was freed');
      assert.ok(sdkAfter.grpcOk && sdkAfter.protoOk, `SDK exports after space was freed: ${JSON.stringify(sdkAfter)}`);
      const flushAfter = await flush(server);
      assert.equal(flushAfter.status, 204, `POST /flush with space again: ${flushAfter.status} ${flushAfter.text()}`);
      // Some more that stay in the WAL only, so the restart replays the log as well as reading blocks.
      for (let index = 0; index < 3; index += 1) assert.equal(await sendRawHttp(`last ${index}`), 200);
      assert.equal(await sendRawGrpc('last grpc'), GRPC_OK);
      assert.deepEqual(unexpectedAnswers, [], 'every answer was 200 / OK or 503 / UNAVAILABLE');

      // kill -9 and a restart on the same directory: acknowledged spans exactly once, refused ones never.
      await server.kill9();
      await server.start();
      const problems = await checkLedger(server, ledger);
      t.diagnostic(ledger.summary());
      assert.ok(ledger.counts.refused > 0, 'the test refused something (or it proved nothing)');
      assert.equal(problems.length, 0, `after kill -9 and restart (${ledger.summary()}):\n  ${sampleOf(problems)}`);
      passed = true;
    } finally {
      await Promise.all(exporters.map((exporter) => exporter.shutdown().catch(() => {})));
      await sdkGrpc.shutdown();
      await sdkProto.shutdown();
      if (server) await server.kill9();
      // A tmpfs forgets everything once unmounted: keep a copy of the server's files (not the
      // ballast) next to the config when the test failed, as the harness promises.
      if (!passed) {
        for (const part of ['wal', 'blocks']) {
          await cp(path.join(directories.dataDir, part), path.join(directories.root, `data-kept-${part}`), { recursive: true }).catch(() => {});
        }
      }
      await run('umount', [directories.dataDir]);
      if (passed) await rm(directories.root, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------
// 2. kill -9 under load, three times on the same directory

const TRACES_PER_REQUEST = 20;
const SPANS_PER_TRACE_PER_REQUEST = 5;
// A trace's spans arrive in up to this many requests; most requests continue open traces,
// which keeps the number of traces to read back after each kill in the thousands.
const PARTS_PER_TRACE = 6;
const CONTINUE_PROBABILITY = 0.75;
const LOAD_WORKERS = 4;

// Traces still taking spans, shared by every worker and every round: a trace can get its
// first part in one round and its last after two restarts.
class OpenTraces {
  constructor() { this.open = []; }
  // `count` traces for one request: each is an open trace with CONTINUE_PROBABILITY (when
  // one not already in this request is at hand), otherwise a new one.
  pick(count) {
    const chosen = [];
    const used = new Set();
    while (chosen.length < count) {
      let trace = null;
      if (this.open.length > used.size && Math.random() < CONTINUE_PROBABILITY) {
        const candidate = this.open[Math.floor(Math.random() * this.open.length)];
        if (!used.has(candidate.traceId)) trace = candidate;
      }
      if (trace) {
        trace.parts += 1;
        if (trace.parts >= PARTS_PER_TRACE) this.open.splice(this.open.indexOf(trace), 1);
      } else {
        trace = { traceId: randomTraceId(), rootSpanId: null, parts: 1 };
        this.open.push(trace);
      }
      used.add(trace.traceId);
      chosen.push(trace);
    }
    return chosen;
  }
}

function loadRequestSpans(traces, label) {
  const start = nowNanos();
  const spans = [];
  for (const trace of traces) {
    for (let index = 0; index < SPANS_PER_TRACE_PER_REQUEST; index += 1) {
      const spanId = randomSpanId();
      const parent = trace.rootSpanId;
      trace.rootSpanId ??= spanId;
      spans.push({
        traceId: trace.traceId, spanId, ...(parent ? { parentSpanId: parent } : {}),
        name: `${label} part ${trace.parts} span ${index}`, startTimeUnixNano: start + BigInt(index), endTimeUnixNano: start + 2_000_000n,
        payload: 'l'.repeat(64),
      });
    }
  }
  return spans;
}

// Runs LOAD_WORKERS loops of raw OTLP/HTTP requests until `stop.now`; tracks requests in flight.
function startLoad(server, ledger, openTraces, label, stop, { headers = {} } = {}) {
  const url = `${server.otlpHttpUrl}/v1/traces`;
  const state = { inFlight: 0, answered: 0 };
  const worker = async (workerIndex) => {
    for (let sequence = 0; !stop.now; sequence += 1) {
      const spans = loadRequestSpans(openTraces.pick(TRACES_PER_REQUEST), `${label} w${workerIndex} r${sequence}`);
      state.inFlight += 1;
      const answer = await postProtobuf(url, encodeSpans(spans, { serviceName: 'durability-load' }), { headers, timeoutMs: 10_000 });
      state.inFlight -= 1;
      // A partial rejection does not say which spans were kept: in doubt, and counted apart.
      if (answer.status === 200 && answer.rejectedSpans > 0) ledger.record(spans, 'unknown', 'partial success');
      else ledger.recordAnswer(spans, answer);
      if (answer.status !== null) state.answered += 1;
      else await sleep(5);
    }
  };
  state.done = Promise.all(Array.from({ length: LOAD_WORKERS }, (_, index) => worker(index)));
  return state;
}

describe('kill -9 under load, three times on the same directory', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps every acknowledged span exactly once and nothing that was refused', { timeout: 120_000 }, async (t) => {
    server = await startServer({
      configOverrides: {
        // Traces complete quickly, so blocks are being cut while the load runs and the kill lands.
        ingester: { trace_idle_period: '1s', max_block_bytes: 2 * MiB },
        overrides: { defaults: { ingestion: { rate_limit_bytes: 500 * MiB, burst_size_bytes: 500 * MiB } } },
      },
    });
    const ledger = new SpanLedger();
    const openTraces = new OpenTraces();
    for (let round = 1; round <= 3; round += 1) {
      const stop = { now: false };
      const acknowledgedBefore = ledger.counts.acknowledged;
      const load = startLoad(server, ledger, openTraces, `round ${round}`, stop);
      const killAfterMs = 600 + Math.random() * 1000;
      // From the second round on, a flush is racing the load (and maybe the kill).
      const flushing = round > 1
        ? sleep(Math.random() * killAfterMs).then(() => flush(server).catch((error) => ({ status: `no answer (${error.cause?.code ?? error.name})` })))
        : Promise.resolve(null);
      await sleep(killAfterMs);
      while (load.inFlight === 0) await sleep(1);
      const inFlightAtKill = load.inFlight;
      await server.kill9();
      stop.now = true;
      await load.done;
      const flushAnswer = await flushing;
      const acknowledgedThisRound = ledger.counts.acknowledged - acknowledgedBefore;
      t.diagnostic(`round ${round}: killed after ${Math.round(killAfterMs)} ms with ${inFlightAtKill} requests in flight, `
        + `${acknowledgedThisRound} spans acknowledged this round${flushAnswer ? `, racing flush: ${flushAnswer.status}` : ''}`);
      assert.ok(acknowledgedThisRound >= 1000, `round ${round}: the load got only ${acknowledgedThisRound} spans acknowledged (${ledger.summary()})`);

      await server.start();
      const problems = await checkLedger(server, ledger);
      assert.equal(problems.length, 0, `after kill -9 number ${round} and a restart (${ledger.summary()}):\n  ${sampleOf(problems)}`);
    }
    const answeredNot200 = Object.entries(ledger.requests.byStatus).filter(([status]) => status !== '200' && status !== 'no answer');
    assert.deepEqual(answeredNot200, [], 'the load stays under every limit, so every answered request is 200');
    t.diagnostic(ledger.summary());
    await server.kill9();
  });
});

// ---------------------------------------------------------------------------------------
// 3. Reads while blocks are cut

describe('a trace read while blocks are cut', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it('never answers 404 and always has all its spans', { timeout: 90_000 }, async (t) => {
    server = await startServer({
      configOverrides: {
        ingester: { trace_idle_period: '200ms', max_block_bytes: 256 * 1024 },
        overrides: { defaults: { ingestion: { rate_limit_bytes: 500 * MiB, burst_size_bytes: 500 * MiB } } },
      },
    });
    const MIN_READS = 3000;
    const MIN_SECONDS = 8;
    const MAX_SECONDS = 30;
    const startedAt = Date.now();
    const stop = { now: false };
    const stats = { reads: 0, flushes: 0, targets: 0, backgroundRequests: 0 };
    const problems = [];
    const otherAnswers = [];

    // Other traffic, so blocks fill and are cut while the readers read.
    const background = Array.from({ length: 2 }, async () => {
      while (!stop.now) {
        const spans = [];
        for (let index = 0; index < 10; index += 1) spans.push(...newTraceSpans(5, 'background', { payloadBytes: 200 }));
        const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, encodeSpans(spans));
        if (answer.status !== 200) otherAnswers.push(`background ingest: ${answer.status ?? answer.error}`);
        stats.backgroundRequests += 1;
      }
    });
    const flusher = (async () => {
      while (!stop.now) {
        const answer = await flush(server);
        if (answer.status !== 204) otherAnswers.push(`POST /flush: ${answer.status} ${answer.text().slice(0, 200)}`);
        stats.flushes += 1;
        await sleep(20);
      }
    })();

    // Each reader makes a trace in three acknowledged requests, reading it after each, then
    // keeps reading it while it completes (200 ms idle) and is cut into a block, and now and
    // then reads a trace made earlier that is in a block by now.
    const finished = [];
    const readAndCheck = async (traceId, expected) => {
      const found = traceProblems(traceId, expected, await readSpanIds(server, traceId));
      // No request is in doubt here, so every span sent must be back, not only "acknowledged" ones.
      stats.reads += 1;
      if (found.length && problems.length < 50) problems.push(`read ${stats.reads}: ${found.join('; ')}`);
      else if (found.length) problems.push('...');
    };
    const readers = Array.from({ length: 3 }, async (_, readerIndex) => {
      while (!stop.now) {
        const expected = new Map();
        let root = null;
        for (let part = 0; part < 3; part += 1) {
          const spans = root
            ? [appendedSpan(root, `reader ${readerIndex} part ${part} a`), appendedSpan(root, `reader ${readerIndex} part ${part} b`)]
            : newTraceSpans(4, `reader ${readerIndex} target ${stats.targets}`);
          root ??= rootOf(spans);
          const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, encodeSpans(spans));
          if (answer.status !== 200 || answer.rejectedSpans) {
            otherAnswers.push(`target ingest: ${answer.status ?? answer.error} ${answer.text ?? ''}`);
            continue;
          }
          for (const span of spans) expected.set(span.spanId, { name: span.name, fate: 'acknowledged' });
          await readAndCheck(root.traceId, expected);
        }
        stats.targets += 1;
        const readUntil = Date.now() + 500;
        while (Date.now() < readUntil) await readAndCheck(root.traceId, expected);
        finished.push({ traceId: root.traceId, expected });
        for (let index = 0; index < 5; index += 1) {
          const earlier = finished[Math.floor(Math.random() * finished.length)];
          await readAndCheck(earlier.traceId, earlier.expected);
        }
      }
    });

    while (true) {
      const seconds = (Date.now() - startedAt) / 1000;
      if ((stats.reads >= MIN_READS && seconds >= MIN_SECONDS) || seconds >= MAX_SECONDS || problems.length >= 50) break;
      await sleep(100);
    }
    stop.now = true;
    await Promise.all([...readers, ...background, flusher]);
    const blockFiles = (await listTree(`${server.dataDir}/blocks`)).filter((entry) => !entry.isDirectory).length;
    t.diagnostic(`${stats.reads} reads of ${stats.targets} traces, ${stats.flushes} flushes, ${stats.backgroundRequests} background requests, `
      + `${blockFiles} block files, ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    assert.deepEqual(problems, [], 'every read answered 200 with every span exactly once');
    assert.deepEqual(otherAnswers.slice(0, 20), [], 'every ingest request was acknowledged and every flush answered 204');
    assert.ok(stats.reads >= MIN_READS, `only ${stats.reads} reads in ${MAX_SECONDS} s`);
    assert.ok(stats.flushes >= 20, `only ${stats.flushes} flushes ran during the reads`);
    assert.ok(blockFiles > 0, 'blocks were written');
    await server.kill9();
  });
});

// ---------------------------------------------------------------------------------------
// 4. Tenants named like temporary files

describe('tenants whose names end in .tmp', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it('keep their traces across flush, restart and kill -9', { timeout: 90_000 }, async (t) => {
    server = await startServer({ configOverrides: { multitenancy_enabled: true } });
    const tenants = ['x.tmp', 'billing.tmp', 'tenant-plain'];
    const sent = new Map(tenants.map((tenant) => [tenant, new SpanLedger()]));

    const sendFor = async (tenant, label) => {
      const httpSpans = newTraceSpans(5, `${tenant} ${label} http`);
      const httpAnswer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, encodeSpans(httpSpans), { headers: { 'X-Scope-OrgID': tenant } });
      assert.equal(httpAnswer.status, 200, `tenant ${tenant} ${label} over HTTP: ${httpAnswer.status} ${httpAnswer.text}`);
      sent.get(tenant).record(httpSpans, 'acknowledged', 200);
      const grpcSpans = newTraceSpans(3, `${tenant} ${label} grpc`);
      const grpcAnswer = await exportRawOverGrpc(server.grpcAddr, encodeSpans(grpcSpans), { metadata: { 'x-scope-orgid': tenant } });
      assert.equal(grpcAnswer.name, 'OK', `tenant ${tenant} ${label} over gRPC: ${grpcAnswer.details}`);
      sent.get(tenant).record(grpcSpans, 'acknowledged', 'grpc OK');
    };
    const checkAll = async (when) => {
      for (const tenant of tenants) {
        const problems = await checkLedger(server, sent.get(tenant), { headers: { 'X-Scope-OrgID': tenant } });
        assert.deepEqual(problems, [], `tenant ${tenant} ${when}`);
      }
      // Tenants stay apart: x.tmp's traces are not billing.tmp's.
      const [someTrace] = sent.get('x.tmp').traces.keys();
      const other = await readSpanIds(server, someTrace, { headers: { 'X-Scope-OrgID': 'billing.tmp' } });
      assert.equal(other.status, 404, `a trace of x.tmp read as billing.tmp ${when}`);
    };

    for (const tenant of tenants) await sendFor(tenant, 'first');
    await checkAll('while live');
    const flushed = await flush(server);
    assert.equal(flushed.status, 204);
    const tenantDirectories = async () => new Set((await listTree(`${server.dataDir}/blocks`)).map((entry) => entry.path.split('/')[0]));
    const afterFlush = await tenantDirectories();
    for (const tenant of tenants) assert.ok(afterFlush.has(tenant), `blocks/${tenant}/ after the flush; found ${[...afterFlush].join(', ')}`);
    await checkAll('after a flush');

    for (const tenant of tenants) await sendFor(tenant, 'second');
    await server.restart();
    await checkAll('after a graceful restart');
    const afterRestart = await tenantDirectories();
    for (const tenant of tenants) assert.ok(afterRestart.has(tenant), `blocks/${tenant}/ after a restart; found ${[...afterRestart].join(', ')}`);

    for (const tenant of tenants) await sendFor(tenant, 'third');
    await server.restart({ hard: true });
    await checkAll('after kill -9 and a restart');

    assert.equal((await flush(server)).status, 204);
    await server.restart();
    await checkAll('after a second flush and restart');
    t.diagnostic(tenants.map((tenant) => `${tenant}: ${sent.get(tenant).summary()}`).join('; '));
    await server.kill9();
  });
});
