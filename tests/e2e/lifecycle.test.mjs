// The block lifecycle with the real binary and Tempo's keys: blocks of one window are merged
// by compaction once the window has ended (every trace still readable, span for span), and
// blocks past compactor.compaction.block_retention leave the disk (their traces then 404),
// with the counters on /metrics to show it.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startServer, reportServerOnFailure, httpRequest, sleep } from './harness.mjs';
import { encodeSpans, nowNanos, postProtobuf } from './load.mjs';

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
