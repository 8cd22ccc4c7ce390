// Durability under kill -9: every span whose request was answered 200 must be readable after
// the process is killed mid-load and restarted on the same data directory. Requests in
// flight at the kill may be lost (they were never acknowledged); acknowledged ones may not.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, reportServerOnFailure, httpRequest, listTree, sleep } from './harness.mjs';
import { encodeExportRequest } from './protowire.mjs';
import { readTraceJson } from './otlp.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';

const LOAD_WORKERS = 8;
const SPANS_PER_NEW_TRACE = 3;
// Some requests add spans to a trace acknowledged earlier, so a trace can straddle a flush,
// the WAL and the kill.
const APPEND_PROBABILITY = 0.3;
const MINIMUM_ACKNOWLEDGED_SPANS = 200;

// What the server has promised to keep: traceId -> Map(spanId -> span name).
class AcknowledgementLedger {
  constructor() { this.traces = new Map(); this.spanCount = 0; }
  record(spans) {
    for (const { traceId, spanId, name } of spans) {
      if (!this.traces.has(traceId)) this.traces.set(traceId, new Map());
      this.traces.get(traceId).set(spanId, name);
      this.spanCount += 1;
    }
  }
}

function buildSpans(traceId, parentSpanId, count, workerIndex, sequence) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = [];
  let parent = parentSpanId;
  for (let index = 0; index < count; index += 1) {
    const spanId = randomSpanId();
    spans.push({
      traceId,
      spanId,
      ...(parent ? { parentSpanId: parent } : {}),
      name: `worker ${workerIndex} request ${sequence} span ${index}`,
      kind: 2,
      startTimeUnixNano: (now + BigInt(index)).toString(),
      endTimeUnixNano: (now + 1_000_000n).toString(),
      attributes: [
        { key: 'load.worker', value: { intValue: String(workerIndex) } },
        { key: 'load.payload', value: { stringValue: 'x'.repeat(200) } },
      ],
    });
    parent ??= spanId;
  }
  return spans;
}

function exportRequest(spans) {
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'crash-load' } }] },
      scopeSpans: [{ scope: { name: 'e2e.crash' }, spans }],
    }],
  };
}

// Sends OTLP/HTTP requests from `LOAD_WORKERS` concurrent loops, alternating JSON and
// protobuf, until `shouldStop()` says so. Returns the ledger of acknowledged spans and
// counts of what happened to the requests.
async function generateLoad(server, shouldStop) {
  const ledger = new AcknowledgementLedger();
  const outcomes = { acknowledged: 0, refused: {}, failed: 0 };
  const url = `${server.otlpHttpUrl}/v1/traces`; // fixed now: a restarted server gets new ports

  async function worker(workerIndex) {
    const ownTraces = [];
    for (let sequence = 0; !shouldStop(); sequence += 1) {
      let spans;
      if (ownTraces.length && Math.random() < APPEND_PROBABILITY) {
        const earlier = ownTraces[Math.floor(Math.random() * ownTraces.length)];
        spans = buildSpans(earlier.traceId, earlier.rootSpanId, 1, workerIndex, sequence);
      } else {
        spans = buildSpans(randomTraceId(), null, SPANS_PER_NEW_TRACE, workerIndex, sequence);
      }
      const request = exportRequest(spans);
      const asProtobuf = sequence % 2 === 1;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': asProtobuf ? 'application/x-protobuf' : 'application/json' },
          body: asProtobuf ? encodeExportRequest(request) : JSON.stringify(request),
          signal: AbortSignal.timeout(5000),
        });
        await response.arrayBuffer();
        if (response.status === 200) {
          ledger.record(spans);
          outcomes.acknowledged += 1;
          if (!spans[0].parentSpanId) ownTraces.push({ traceId: spans[0].traceId, rootSpanId: spans[0].spanId });
        } else {
          outcomes.refused[response.status] = (outcomes.refused[response.status] ?? 0) + 1;
        }
      } catch {
        // Refused connections and resets around the kill: not acknowledged, so not promised.
        outcomes.failed += 1;
        await sleep(10);
      }
    }
  }

  await Promise.all(Array.from({ length: LOAD_WORKERS }, (_, index) => worker(index)));
  return { ledger, outcomes };
}

// Reads every acknowledged trace and lists what is missing or duplicated.
async function findLostSpans(server, ledger) {
  const lost = [];
  const duplicated = [];
  const unreadable = [];
  const traceIds = [...ledger.traces.keys()];
  let next = 0;
  async function reader() {
    while (next < traceIds.length) {
      const traceId = traceIds[next++];
      const expected = ledger.traces.get(traceId);
      const result = await readTraceJson(server, traceId);
      if (result.status !== 200) {
        unreadable.push(`${traceId} (HTTP ${result.status}, ${expected.size} acknowledged spans)`);
        continue;
      }
      const seen = new Map();
      for (const span of result.spans) seen.set(span.spanId, (seen.get(span.spanId) ?? 0) + 1);
      for (const [spanId, name] of expected) {
        if (!seen.has(spanId)) lost.push(`${traceId}/${spanId} "${name}"`);
        else if (seen.get(spanId) > 1) duplicated.push(`${traceId}/${spanId} x${seen.get(spanId)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, reader));
  return { lost, duplicated, unreadable };
}

function describeLoad(label, ledger, outcomes) {
  return `${label}: ${outcomes.acknowledged} requests acknowledged (${ledger.spanCount} spans in ${ledger.traces.size} traces), `
    + `${outcomes.failed} failed in transit, refused: ${JSON.stringify(outcomes.refused)}`;
}

function assertNothingLost(label, ledger, outcomes, { lost, duplicated, unreadable }) {
  const summary = describeLoad(label, ledger, outcomes);
  const sample = (list) => list.slice(0, 10).join('\n  ') + (list.length > 10 ? `\n  ... and ${list.length - 10} more` : '');
  assert.equal(unreadable.length, 0, `${summary}\nacknowledged traces not readable after restart:\n  ${sample(unreadable)}`);
  assert.equal(lost.length, 0, `${summary}\nacknowledged spans missing after restart:\n  ${sample(lost)}`);
  assert.equal(duplicated.length, 0, `${summary}\nspans returned more than once after restart:\n  ${sample(duplicated)}`);
}

// Loads the server, runs `duringLoad` while it is under load, kills it with SIGKILL, restarts
// it and checks that every span acknowledged before the kill can be read back.
async function killUnderLoadAndCheck(t, server, label, duringLoad) {
  const startedAt = Date.now();
  let killed = false;
  const load = generateLoad(server, () => killed || Date.now() - startedAt > 5000);
  await duringLoad();
  await server.kill9();
  killed = true;
  const { ledger, outcomes } = await load;
  assert.ok(ledger.spanCount >= MINIMUM_ACKNOWLEDGED_SPANS,
    `the load must get at least ${MINIMUM_ACKNOWLEDGED_SPANS} spans acknowledged to mean anything; got ${ledger.spanCount} (${JSON.stringify(outcomes)})`);

  await server.start();
  assertNothingLost(label, ledger, outcomes, await findLostSpans(server, ledger));
  t.diagnostic(describeLoad(label, ledger, outcomes));
  await server.kill9();
  await server.removeFiles();
}

describe('acknowledged spans survive kill -9', () => {
  let server;
  reportServerOnFailure(() => server, { afterEach, after });

  it('keeps every acknowledged span when everything was still live at the kill', async (t) => {
    server = await startServer();
    await killUnderLoadAndCheck(t, server, 'live only', () => sleep(2500));
  });

  it('keeps every acknowledged span when part of the data was flushed to blocks before the kill', async (t) => {
    server = await startServer();
    await killUnderLoadAndCheck(t, server, 'flushed and live', async () => {
      await sleep(1200);
      const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 30_000 });
      assert.equal(flush.status, 204, `POST /flush during load answered ${flush.status}: ${flush.text()}`);
      const blockFiles = (await listTree(`${server.dataDir}/blocks`)).filter((entry) => !entry.isDirectory);
      assert.ok(blockFiles.length > 0, 'the flush wrote block files under blocks/');
      await sleep(1300);
    });
  });
});
