// Memory stays bounded by configuration, not by traffic: with the live-trace index capped at
// ingester.max_live_bytes and requests in flight at distributor.max_inflight_bytes, two
// million distinct traces and one trace of 200 000 spans go through a server whose peak
// resident memory (VmHWM) stays under max_live_bytes plus a constant. Backpressure is the
// intended 429 with Retry-After, which the sender obeys; nothing else may be refused, and a
// sample of what was sent must be readable afterwards, the big trace whole.

import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer, reportServerOnFailure, sleep } from './harness.mjs';
import {
  encodeSpans, nowNanos, postProtobuf, readSpanIds, residentMemory, sampleOf, traceProblems,
} from './load.mjs';

const MiB = 1024 * 1024;
const MAX_LIVE_BYTES = 32 * MiB;
const MAX_INFLIGHT_BYTES = 64 * MiB;

const ONE_SPAN_TRACES = 2_000_000;
const ONE_SPAN_TRACES_PER_REQUEST = 5_000;
const BIG_TRACE_SPANS = 200_000;
const BIG_TRACE_SPANS_PER_REQUEST = 2_000;
const SENDERS = 4;
const SAMPLED_TRACES = 200;

// VmHWM allowed above max_live_bytes while ingesting. Measured on the 2-core CI machine over
// five runs: 101-122 MiB after the whole load, of which about 21 MiB is the idle process.
// What the server holds beyond the live-trace index is bounded by configuration too: up to
// max_inflight_bytes (64 MiB) of request bodies and their split fragments, the block being
// cut (row groups of storage.trace.block.row_group_spans spans and their zstd buffers), the
// code and its thread stacks. 128 MiB (a bound of 160 MiB) leaves 30-60% over the
// measured peaks for allocator and scheduling noise, while a server that kept the spans
// themselves in memory (2.2 M spans are 138 MiB of protobuf), or let its index grow past
// the cap, goes over it.
const INGEST_ALLOWANCE_ABOVE_LIVE_BYTES = 128 * MiB;
// Reading the 200 000-span trace back builds its whole JSON answer in
// memory: the peak at the end of the test, after the sample reads, measured 270-287 MiB, so
// it may be this much higher again (a bound of 384 MiB, about 35% over what was measured).
const BIG_READ_ALLOWANCE = 224 * MiB;

// Ids are derived from an index so any trace can be named again for the sample read. The
// random prefix keeps a run's ids apart from every other run's.
const runPrefix = randomBytes(8);
function oneSpanTraceId(index) {
  const id = Buffer.alloc(16);
  runPrefix.copy(id, 0);
  id.writeUInt32BE(0x01000000, 8); // never zero, and apart from the big trace below
  id.writeUInt32BE(index, 12);
  return id.toString('hex');
}
const oneSpanSpanId = (index) => `0a${index.toString(16).padStart(14, '0')}`;
const bigTraceId = Buffer.concat([runPrefix, Buffer.from('b16b16b1b16b16b1', 'hex')]).toString('hex');
const bigTraceSpanId = (index) => `0b${index.toString(16).padStart(14, '0')}`;

function oneSpanTracesRequest(firstIndex, count) {
  const start = nowNanos();
  const spans = [];
  for (let index = firstIndex; index < firstIndex + count; index += 1) {
    spans.push({
      traceId: oneSpanTraceId(index), spanId: oneSpanSpanId(index), name: `single ${index}`,
      startTimeUnixNano: start, endTimeUnixNano: start + 1_000_000n,
    });
  }
  return encodeSpans(spans, { serviceName: 'memory-singles' });
}

function bigTraceRequest(firstIndex, count) {
  const start = nowNanos();
  const spans = [];
  for (let index = firstIndex; index < firstIndex + count; index += 1) {
    spans.push({
      traceId: bigTraceId, spanId: bigTraceSpanId(index), name: `big ${index}`,
      ...(index > 0 ? { parentSpanId: bigTraceSpanId(0) } : {}),
      startTimeUnixNano: start + BigInt(index), endTimeUnixNano: start + 5_000_000n,
    });
  }
  return encodeSpans(spans, { serviceName: 'memory-big' });
}

// The work, in order: the big trace's requests are spread evenly through the one-span
// traces, so the big trace stays live the whole run and is cut into blocks piece by piece
// as the index fills.
function planRequests() {
  const singles = ONE_SPAN_TRACES / ONE_SPAN_TRACES_PER_REQUEST;
  const bigOnes = BIG_TRACE_SPANS / BIG_TRACE_SPANS_PER_REQUEST;
  const plan = [];
  let big = 0;
  for (let single = 0; single < singles; single += 1) {
    plan.push({ kind: 'singles', first: single * ONE_SPAN_TRACES_PER_REQUEST, count: ONE_SPAN_TRACES_PER_REQUEST });
    while (big < bigOnes && big * singles <= single * bigOnes) {
      plan.push({ kind: 'big', first: big * BIG_TRACE_SPANS_PER_REQUEST, count: BIG_TRACE_SPANS_PER_REQUEST });
      big += 1;
    }
  }
  while (big < bigOnes) {
    plan.push({ kind: 'big', first: big * BIG_TRACE_SPANS_PER_REQUEST, count: BIG_TRACE_SPANS_PER_REQUEST });
    big += 1;
  }
  return plan;
}

// Sends every planned request from SENDERS loops, retrying 429 after its Retry-After. Any
// other answer than 200 or 429, a partial rejection or a request with no answer fails.
async function sendAll(server, plan) {
  const url = `${server.otlpHttpUrl}/v1/traces`;
  const stats = { requests: 0, spans: 0, bytes: 0, throttled: 0, retryAfterMissing: 0, failures: [] };
  let next = 0;
  async function sender() {
    while (next < plan.length && stats.failures.length === 0) {
      const item = plan[next++];
      const body = item.kind === 'big' ? bigTraceRequest(item.first, item.count) : oneSpanTracesRequest(item.first, item.count);
      for (;;) {
        const answer = await postProtobuf(url, body, { timeoutMs: 30_000 });
        if (answer.status === 429) {
          stats.throttled += 1;
          if (answer.retryAfterSeconds === null) stats.retryAfterMissing += 1;
          await sleep(1000 * (answer.retryAfterSeconds ?? 1));
          continue;
        }
        if (answer.status !== 200 || answer.rejectedSpans > 0) {
          stats.failures.push(`${item.kind} request from span ${item.first}: ${answer.status ?? answer.error} `
            + `${answer.rejectedSpans ? `(${answer.rejectedSpans} spans rejected)` : ''} ${answer.text ?? ''}`);
        } else {
          stats.requests += 1;
          stats.spans += item.count;
          stats.bytes += body.length;
        }
        break;
      }
    }
  }
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return stats;
}

describe('memory is bounded by max_live_bytes, not by traffic', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it(`takes ${ONE_SPAN_TRACES} one-span traces and a ${BIG_TRACE_SPANS}-span trace within max_live_bytes plus a constant`, { timeout: 150_000 }, async (t) => {
    server = await startServer({
      configOverrides: {
        ingester: { max_live_bytes: MAX_LIVE_BYTES },
        distributor: { max_inflight_bytes: MAX_INFLIGHT_BYTES },
        overrides: {
          defaults: {
            // Memory, not the rate limit, is what this test pushes against.
            ingestion: { rate_limit_bytes: 1024 * MiB, burst_size_bytes: 1024 * MiB },
            // The big trace is about 14 MB of protobuf.
            global: { max_bytes_per_trace: 64 * MiB },
          },
        },
      },
    });
    const pid = server.proc.pid;
    const before = await residentMemory(pid);

    const plan = planRequests();
    const startedAt = Date.now();
    const stats = await sendAll(server, plan);
    const seconds = (Date.now() - startedAt) / 1000;
    const afterIngest = await residentMemory(pid);
    const rate = Math.round(stats.spans / seconds);
    console.log(`memory test: ${stats.spans} spans in ${stats.requests} requests (${(stats.bytes / MiB).toFixed(0)} MiB of protobuf) `
      + `in ${seconds.toFixed(1)} s = ${rate} spans/s; ${stats.throttled} answers were 429`);
    console.log(`memory test: VmRSS at start ${(before.currentBytes / MiB).toFixed(1)} MiB; after ingest VmHWM `
      + `${(afterIngest.peakBytes / MiB).toFixed(1)} MiB, VmRSS ${(afterIngest.currentBytes / MiB).toFixed(1)} MiB `
      + `(bound: ${(MAX_LIVE_BYTES + INGEST_ALLOWANCE_ABOVE_LIVE_BYTES) / MiB} MiB)`);

    assert.deepEqual(stats.failures, [], 'every request is acknowledged (after retrying 429)');
    assert.equal(stats.spans, ONE_SPAN_TRACES + BIG_TRACE_SPANS);
    assert.equal(stats.retryAfterMissing, 0, 'every 429 carries Retry-After');
    assert.ok(server.running, `the server is still running (exit: ${JSON.stringify(server.exit)})`);
    assert.ok(afterIngest.peakBytes < MAX_LIVE_BYTES + INGEST_ALLOWANCE_ABOVE_LIVE_BYTES,
      `VmHWM after ingest ${(afterIngest.peakBytes / MiB).toFixed(1)} MiB exceeds max_live_bytes (${MAX_LIVE_BYTES / MiB} MiB) `
      + `+ ${INGEST_ALLOWANCE_ABOVE_LIVE_BYTES / MiB} MiB`);

    // A sample of the one-span traces, and the big one whole.
    const problems = [];
    const sampled = new Set();
    while (sampled.size < SAMPLED_TRACES) sampled.add(Math.floor(Math.random() * ONE_SPAN_TRACES));
    for (const index of sampled) {
      const traceId = oneSpanTraceId(index);
      const expected = new Map([[oneSpanSpanId(index), { name: `single ${index}`, fate: 'acknowledged' }]]);
      problems.push(...traceProblems(traceId, expected, await readSpanIds(server, traceId)));
    }
    const readStartedAt = Date.now();
    const big = await readSpanIds(server, bigTraceId, { timeoutMs: 60_000 });
    const bigReadSeconds = (Date.now() - readStartedAt) / 1000;
    const bigExpected = new Map();
    for (let index = 0; index < BIG_TRACE_SPANS; index += 1) bigExpected.set(bigTraceSpanId(index), { name: `big ${index}`, fate: 'acknowledged' });
    const bigProblems = traceProblems(bigTraceId, bigExpected, big);
    const afterReads = await residentMemory(pid);
    const finalBound = MAX_LIVE_BYTES + INGEST_ALLOWANCE_ABOVE_LIVE_BYTES + BIG_READ_ALLOWANCE;
    console.log(`memory test: big trace read back with ${big.spans.length} spans in ${bigReadSeconds.toFixed(1)} s; `
      + `VmHWM at the end ${(afterReads.peakBytes / MiB).toFixed(1)} MiB (bound: ${finalBound / MiB} MiB)`);
    t.diagnostic(`${rate} spans/s, VmHWM ${(afterIngest.peakBytes / MiB).toFixed(1)} MiB after ingest, ${(afterReads.peakBytes / MiB).toFixed(1)} MiB after reads`);

    assert.deepEqual(problems, [], `${SAMPLED_TRACES} sampled one-span traces read back`);
    assert.equal(bigProblems.length, 0, `the ${BIG_TRACE_SPANS}-span trace read back whole (${big.spans.length} spans returned):\n  ${sampleOf(bigProblems)}`);
    assert.ok(server.running, `the server is still running after the reads (exit: ${JSON.stringify(server.exit)})`);
    assert.ok(afterReads.peakBytes < finalBound,
      `VmHWM at the end ${(afterReads.peakBytes / MiB).toFixed(1)} MiB exceeds max_live_bytes + ${INGEST_ALLOWANCE_ABOVE_LIVE_BYTES / MiB} MiB `
      + `+ ${BIG_READ_ALLOWANCE / MiB} MiB for reading the big trace`);
    await server.kill9();
  });
});
