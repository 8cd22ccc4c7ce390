// The block lifecycle with the real binary and Tempo's keys: blocks of one window are merged
// by compaction once the window has ended (every trace still readable, span for span), and
// blocks past compactor.compaction.block_retention leave the disk (their traces then 404),
// with the counters on /metrics to show it; and a compactor killed with SIGKILL at random points,
// again and again, loses and duplicates no span.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, reportServerOnFailure, httpRequest, sleep } from './harness.mjs';
import { encodeSpans, nowNanos, postProtobuf } from './load.mjs';
import { readTraceJson } from './otlp.mjs';

let server;

function hex(length) {
  let out = '';
  while (out.length < length) out += Math.floor(Math.random() * 16).toString(16);
  return out.replace(/^0/, 'a');
}

async function sendTrace(spanCount) {
  const traceId = hex(32);
  const start = nowNanos();
  const spans = [];
  for (let i = 0; i < spanCount; i += 1) {
    spans.push({
      traceId,
      spanId: hex(16),
      parentSpanId: null,
      name: `op-${i}`,
      startTimeUnixNano: start + BigInt(i) * 1_000_000n,
      endTimeUnixNano: start + BigInt(i + 2) * 1_000_000n,
    });
  }
  const answer = await postProtobuf(`${server.otlpHttpUrl}/v1/traces`, encodeSpans(spans, { serviceName: 'lifecycle' }));
  assert.equal(answer.status, 200, `POST /v1/traces: ${answer.status}`);
  return traceId;
}

async function flush() {
  const answer = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 60_000 });
  assert.equal(answer.status, 204, `POST /flush: ${answer.status}`);
}

async function spanCount(traceId) {
  const answer = await httpRequest(`${server.httpUrl}/api/traces/${traceId}`, { headers: { Accept: 'application/json' } });
  if (answer.status === 404) return 0;
  assert.equal(answer.status, 200, `GET /api/traces/${traceId}: ${answer.status}`);
  const body = JSON.parse(answer.text());
  let count = 0;
  for (const batch of body.batches ?? []) for (const scope of batch.scopeSpans ?? []) count += (scope.spans ?? []).length;
  return count;
}

async function counter(name) {
  const text = (await httpRequest(`${server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function blocksOnDisk() {
  const root = path.join(server.dataDir, 'blocks');
  let count = 0;
  for (const tenant of await readdir(root).catch(() => [])) count += (await readdir(path.join(root, tenant))).length;
  return count;
}

async function eventually(check, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const error = await check().then(() => null, (e) => e);
    if (!error) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${error.message}`);
    await sleep(250);
  }
}

describe('block lifecycle: compaction and retention', () => {
  before(async () => {
    server = await startServer({
      configOverrides: {
        compactor: { compaction: { compaction_window: '2s', compaction_cycle: '500ms', block_retention: '6s' } },
      },
    });
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('merges the blocks of an ended window, then deletes them past the retention', async () => {
    const traces = [];
    for (let i = 0; i < 3; i += 1) {
      traces.push({ id: await sendTrace(3 + i), spans: 3 + i });
      await flush();  // a block each
    }
    for (const { id, spans } of traces) assert.equal(await spanCount(id), spans, `trace ${id} after its flush`);
    // Without sampling every trace is baseline (no span has an error here).
    // (1 to 3: the compactor may have merged them already.)
    const baselineBlocks = await counter('tracery_blocks_by_tier{tier="baseline"}');
    assert.ok(baselineBlocks >= 1 && baselineBlocks <= 3, `${baselineBlocks} baseline blocks on /metrics`);
    assert.ok(await counter('tracery_block_bytes{tier="baseline"}') > 0, 'baseline bytes on /metrics');
    assert.equal(await counter('tracery_blocks_by_tier{tier="error"}'), 0, 'no error blocks');

    // The three blocks' window ends within 2 s; the next cycle after it merges them.
    await eventually(async () => assert.ok(await counter('tracery_compactions_total') >= 1, 'no compaction yet'),
      'compaction of the ended window');
    await eventually(async () => assert.ok(await blocksOnDisk() < 3, `${await blocksOnDisk()} blocks on disk`),
      'inputs deleted after the merge');
    for (const { id, spans } of traces) assert.equal(await spanCount(id), spans, `trace ${id} after compaction`);

    // 6 s after their spans ended and they were written, the blocks go.
    await eventually(async () => {
      assert.equal(await blocksOnDisk(), 0, 'blocks left on disk');
    }, 'retention', 30_000);
    assert.ok(await counter('tracery_retention_blocks_deleted_total') >= 1);
    assert.equal(await counter('tracery_blocks_by_tier{tier="baseline"}'), 0, 'no block left on /metrics');
    assert.equal(await counter('tracery_block_bytes{tier="baseline"}'), 0, 'no bytes left on /metrics');
    for (const { id } of traces) assert.equal(await spanCount(id), 0, `trace ${id} past the retention`);
  });
});

// The merge's own files tell where a kill landed: an output with no meta.json yet (killed while
// writing it), or inputs still on disk that a listed output names (killed before they were
// deleted). Returns the listed blocks' metas and what was found.
async function blocksState(dataDir) {
  const root = path.join(dataDir, 'blocks', 'single-tenant');
  const metas = [];
  let unfinished = 0;
  for (const id of await readdir(root).catch(() => [])) {
    const text = await readFile(path.join(root, id, 'meta.json'), 'utf8').catch(() => null);
    if (text === null) unfinished += 1;
    else metas.push(JSON.parse(text));
  }
  const replaced = new Set(metas.flatMap((m) => m.compactedFrom ?? []));
  const listed = metas.filter((m) => !replaced.has(m.blockID ?? m.block_id ?? m.id));
  const orphans = metas.length - listed.length;
  return { listed, unfinished, orphans };
}

describe('compaction under kill -9', () => {
  let crashServer;
  before(async () => {
    crashServer = await startServer({
      configOverrides: {
        ingester: { trace_idle_period: '1h', max_block_duration: '1h' },
        compactor: { compaction: { compaction_window: '1h', compaction_cycle: '100ms', block_retention: '48h' } },
      },
    });
  });
  reportServerOnFailure(() => crashServer, { afterEach, after });

  it('loses and duplicates no span when the compactor is killed at random points, repeatedly', async (t) => {
    const TRACES = 400;
    const ROUNDS = 6;
    // Every span ends in the same long-ended hour: every block is of one window, merged at once.
    const end = (BigInt(Date.now()) - 2n * 3600n * 1000n) * 1_000_000n;
    const traces = Array.from({ length: TRACES }, () => ({ id: hex(32), spans: new Map() }));
    let landed = { writing: 0, deleting: 0, idle: 0 };
    for (let round = 0; round < ROUNDS; round += 1) {
      // Each round adds 30 new spans to every trace and sends 3 of its earlier spans again.
      for (let first = 0; first < TRACES; first += 20) {
        const batch = [];
        for (const trace of traces.slice(first, first + 20)) {
          const earlier = [...trace.spans.keys()].slice(0, 3);
          for (let i = 0; i < 30; i += 1) {
            const spanId = hex(16);
            trace.spans.set(spanId, `r${round}-${i}`);
            batch.push({ traceId: trace.id, spanId, name: `r${round}-${i}`, startTimeUnixNano: end - 5_000_000n, endTimeUnixNano: end,
              payload: 'p'.repeat(120) });
          }
          for (const spanId of earlier)
            batch.push({ traceId: trace.id, spanId, name: trace.spans.get(spanId), startTimeUnixNano: end - 5_000_000n, endTimeUnixNano: end,
              payload: 'p'.repeat(120) });
        }
        const answer = await postProtobuf(`${crashServer.otlpHttpUrl}/v1/traces`, encodeSpans(batch, { serviceName: 'compaction-crash' }));
        assert.equal(answer.status, 200, `round ${round}: POST /v1/traces ${answer.status}`);
      }
      const flushed = await httpRequest(`${crashServer.httpUrl}/flush`, { method: 'POST', timeoutMs: 60_000 });
      assert.equal(flushed.status, 204, `round ${round}: POST /flush ${flushed.status}`);
      // The next cycle (100 ms) merges the new block into what earlier rounds left. Odd rounds
      // kill at a random moment around that merge; even ones as soon as its output appears
      // (a directory without meta.json yet), after a random few milliseconds more.
      if (round % 2 === 1) {
        await sleep(Math.floor(Math.random() * 600));
      } else {
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline && (await blocksState(crashServer.dataDir)).unfinished === 0) await sleep(1);
        await sleep(Math.floor(Math.random() * 30));
      }
      await crashServer.kill9();
      const state = await blocksState(crashServer.dataDir);
      if (state.unfinished > 0) landed.writing += 1;
      else if (state.orphans > 0) landed.deleting += 1;
      else landed.idle += 1;
      await crashServer.start();
      // Every span of every trace, once.
      for (const trace of traces) {
        const answer = await readTraceJson(crashServer, trace.id);
        assert.equal(answer.status, 200, `round ${round}: trace ${trace.id}: ${answer.status}`);
        const seen = new Map();
        for (const span of answer.spans) seen.set(span.spanId, (seen.get(span.spanId) ?? 0) + 1);
        const missing = [...trace.spans.keys()].filter((id) => !seen.has(id));
        const twice = [...seen].filter(([, n]) => n > 1);
        assert.equal(missing.length, 0, `round ${round}: trace ${trace.id} lost ${missing.length} spans`);
        assert.equal(twice.length, 0, `round ${round}: trace ${trace.id} returned ${twice.length} spans twice`);
        assert.equal(seen.size, trace.spans.size, `round ${round}: trace ${trace.id} has spans it was never sent`);
      }
    }
    // Left alone, the compactor finishes: one block holding each span exactly once.
    const unique = traces.reduce((sum, trace) => sum + trace.spans.size, 0);
    await eventually(async () => {
      const { listed, unfinished, orphans } = await blocksState(crashServer.dataDir);
      assert.equal(unfinished + orphans, 0, `${unfinished} unfinished outputs, ${orphans} replaced inputs on disk`);
      assert.equal(listed.length, 1, `${listed.length} blocks listed`);
      assert.equal(Number(listed[0].totalSpans), unique, 'spans in the merged block');
      assert.equal(Number(listed[0].totalTraces), TRACES, 'traces in the merged block');
    }, 'the last merge', 60_000);
    t.diagnostic(`kills: ${landed.writing} while an output was written, ${landed.deleting} before replaced inputs were deleted, ` +
      `${landed.idle} between merges; ${unique} spans in ${TRACES} traces`);
  });
});
