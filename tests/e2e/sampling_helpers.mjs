// Helpers for sampling.test.mjs: a server whose config file can carry YAML text written by
// hand (the seed's tail_sampling block, verbatim), the Collector's probabilistic decision
// computed independently of tracery, OTLP/JSON traces with a status, and readers for
// /metrics, traces and block metadata.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  TraceryServer, defaultConfig, httpRequest, makeTemporaryRoot, mergeConfig, pickFreeLoopbackPort,
  repositoryRoot, serverBinaryPath, sleep, spawnUntilReady, toYaml,
} from './harness.mjs';

// ---------------------------------------------------------------------------------------
// The seed's files

export function seedDirectory() {
  const candidates = [process.env.SEED_DIR, path.resolve(repositoryRoot, '..', 'shared', 'seed'), '/work/shared/seed'];
  const found = candidates.find((candidate) => candidate && existsSync(path.join(candidate, 'configs')));
  if (!found) throw new Error(`seed directory not found; tried ${candidates.filter(Boolean).join(', ')} (set SEED_DIR)`);
  return found;
}

export async function seedConfigText(name) {
  return readFile(path.join(seedDirectory(), 'configs', name), 'utf8');
}

// ---------------------------------------------------------------------------------------
// A server with hand-written YAML appended to its generated config

// toYaml writes a list as a JSON flow sequence, which is valid YAML, so `configOverrides`
// may hold policy lists. `extraYaml` is appended as is, after a newline: top-level keys the
// generated part does not have (e.g. the seed's `processors:` block).
export class SamplingServer extends TraceryServer {
  constructor({ extraYaml = '', ...rest }) {
    super(rest);
    this.extraYaml = extraYaml;
  }

  get pid() { return this.proc?.pid; }

  async start() {
    const ports = new Set();
    while (ports.size < 3) ports.add(await pickFreeLoopbackPort());
    [this.httpPort, this.grpcPort, this.otlpHttpPort] = [...ports];
    const config = mergeConfig(defaultConfig(this), this.configOverrides);
    this.configText = `${toYaml(config)}${this.extraYaml ? `\n${this.extraYaml}` : ''}`;
    await writeFile(this.configPath, this.configText);
    this.starts += 1;
    this.output.append(Buffer.from(`\n----- tracery start #${this.starts} (${serverBinaryPath()}) -----\n`));
    this.exit = null;
    const started = await spawnUntilReady({
      name: 'tracery',
      binary: serverBinaryPath(),
      args: [`-config.file=${this.configPath}`, ...this.extraArgs],
      onOutput: (chunk) => this.output.append(chunk),
      readyUrl: `${this.httpUrl}/ready`,
      timeoutMs: 30_000,
      describe: () => `--- config ---\n${this.configText}\n--- output ---\n${this.stderr}`,
    });
    this.proc = started.child;
    this.exited = started.exited.then((exit) => { this.exit = exit; return exit; });
    return this;
  }
}

// The lead rebuilds the binary now and then; a missing file for a moment is not a failure.
async function waitForBinary() {
  const deadline = Date.now() + 60_000;
  while (!existsSync(serverBinaryPath())) {
    if (Date.now() > deadline) throw new Error(`${serverBinaryPath()} does not exist`);
    await sleep(1000);
  }
}

export async function startSamplingServer({ configOverrides = {}, extraYaml = '', extraArgs = [] } = {}) {
  await waitForBinary();
  const directories = await makeTemporaryRoot();
  const server = new SamplingServer({ ...directories, configOverrides, extraArgs, extraYaml });
  try {
    await server.start();
  } catch (error) {
    await server.kill9();
    throw error;
  }
  return server;
}

// ---------------------------------------------------------------------------------------
// The Collector's probabilistic policy, written from its source (probabilistic.go):
// hash = FNV-1a 64 over the salt's bytes then the 16 trace-ID bytes; sampled when
// hash <= threshold, threshold = uint64(big.Float(MaxUint64) * ratio), the product rounded
// to 64 significant bits (the precision of the MaxUint64 operand), then truncated.

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

export function collectorTraceIdHash(traceIdHex, salt = 'default-hash-seed') {
  let hash = FNV_OFFSET;
  for (const byte of [...Buffer.from(salt, 'utf8'), ...Buffer.from(traceIdHex, 'hex')]) {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK_64;
  }
  return hash;
}

// The exact value of a double as numerator / 2^shift.
function exactDouble(value) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const exponentBits = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponentBits === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (exponentBits === 0 ? 1 : exponentBits) - 1075;
  return { mantissa, exponent };
}

export function collectorThreshold(percentage) {
  const ratio = percentage / 100;
  if (!(ratio > 0)) return 0n;
  if (ratio >= 1) return MASK_64;
  const { mantissa, exponent } = exactDouble(ratio);
  let product = MASK_64 * mantissa; // times 2^exponent
  let scale = exponent;
  const bitLength = product.toString(2).length;
  if (bitLength > 64) {
    const shift = BigInt(bitLength - 64);
    const remainder = product & ((1n << shift) - 1n);
    const half = 1n << (shift - 1n);
    product >>= shift;
    if (remainder > half || (remainder === half && (product & 1n) === 1n)) product += 1n;
    scale += Number(shift);
  }
  return scale >= 0 ? product << BigInt(scale) : product >> BigInt(-scale);
}

// Known values from the Collector's arithmetic (tracery's unit test quotes the same).
assert.equal(collectorTraceIdHash('00'.repeat(16)), 0xe19536eed1bbac3dn, 'FNV-1a of the zero trace ID');
assert.equal(collectorTraceIdHash('0102030405060708090a0b0c0d0e0f10'), 0xdbcf64d5420f4cadn, 'FNV-1a of 01..10');

export function sampledByProbability(traceIdHex, percentage, salt) {
  return collectorTraceIdHash(traceIdHex, salt) <= collectorThreshold(percentage);
}

export const randomTraceId = () => randomBytes(16).toString('hex');
export const randomSpanId = () => randomBytes(8).toString('hex');

// A random trace ID the probabilistic policy at `percentage` % samples (wanted true) or not.
export function traceIdSampled(wanted, percentage = 5) {
  for (;;) {
    const id = randomTraceId();
    if (sampledByProbability(id, percentage) === wanted) return id;
  }
}

// ---------------------------------------------------------------------------------------
// OTLP/JSON with statuses and parents (load.mjs's fast encoder has neither status nor kind
// choices)

const MS = 1_000_000n;
export const STATUS_ERROR = 2;

// spans: [{ traceId, spanId, parentSpanId?, name, startNs (BigInt), durationMs, error? }]
export function otlpJsonRequest(spans, serviceName = 'sampling-e2e') {
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: serviceName } }] },
      scopeSpans: [{
        scope: { name: 'tracery-e2e-sampling' },
        spans: spans.map((span) => ({
          traceId: span.traceId,
          spanId: span.spanId,
          ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
          name: span.name,
          kind: span.parentSpanId ? 1 : 2,
          startTimeUnixNano: span.startNs.toString(),
          endTimeUnixNano: (span.startNs + BigInt(span.durationMs) * MS).toString(),
          ...(span.error ? { status: { code: STATUS_ERROR, message: 'failed' } } : {}),
        })),
      }],
    }],
  };
}

// A trace of `spanCount` spans: a root of `durationMs` and children inside it; `error` puts
// ERROR on the last child (or the root when alone). `withRoot: false` leaves the root out.
export function buildTrace({ traceId = randomTraceId(), spanCount = 3, durationMs = 40, error = false, startNs, withRoot = true } = {}) {
  const start = startNs ?? BigInt(Date.now() - durationMs - 5) * MS;
  const rootSpanId = randomSpanId();
  const spans = [];
  if (withRoot) spans.push({ traceId, spanId: rootSpanId, name: 'root', startNs: start, durationMs, error: error && spanCount === 1 });
  for (let index = 1; index < spanCount; index += 1) {
    spans.push({
      traceId, spanId: randomSpanId(), parentSpanId: rootSpanId, name: `child ${index}`,
      startNs: start + BigInt(index) * MS, durationMs: 2, error: error && index === spanCount - 1,
    });
  }
  return { traceId, rootSpanId, spans, error, durationMs };
}

export async function postJson(server, request) {
  const response = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request), timeoutMs: 30_000,
  });
  assert.equal(response.status, 200, `POST /v1/traces answered ${response.status}: ${response.text().slice(0, 300)}`);
  return response;
}

// ---------------------------------------------------------------------------------------
// Reading the server

export async function flush(server) {
  const response = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 120_000 });
  assert.equal(response.status, 204, `POST /flush answered ${response.status}: ${response.text()}`);
}

// /metrics as a lookup: value(name, { label: value }) sums the samples of `name` whose
// labels include the given ones (0 when there is none).
export async function scrape(server) {
  const response = await httpRequest(`${server.httpUrl}/metrics`, { timeoutMs: 20_000 });
  assert.equal(response.status, 200, `GET /metrics answered ${response.status}`);
  const samples = [];
  for (const line of response.text().split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, value]) => [key, value]));
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  const matching = (name, labels = {}) => samples.filter((sample) => sample.name === name
    && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  return {
    value: (name, labels) => matching(name, labels).reduce((sum, sample) => sum + sample.value, 0),
    has: (name, labels) => matching(name, labels).length > 0,
    describe: (prefix) => samples.filter((sample) => sample.name.startsWith(prefix))
      .map((sample) => `${sample.name}${JSON.stringify(sample.labels)} ${sample.value}`).join('\n'),
  };
}

// The sampler's counters in one object.
export async function samplerCounters(server) {
  const metrics = await scrape(server);
  return {
    kept: metrics.value('tracery_sampler_traces_total', { decision: 'kept' }),
    dropped: metrics.value('tracery_sampler_traces_total', { decision: 'dropped' }),
    spansKept: metrics.value('tracery_sampler_spans_total', { decision: 'kept' }),
    spansDropped: metrics.value('tracery_sampler_spans_total', { decision: 'dropped' }),
    lateKept: metrics.value('tracery_sampler_late_spans_total', { decision: 'kept' }),
    lateDropped: metrics.value('tracery_sampler_late_spans_total', { decision: 'dropped' }),
    early: metrics.value('tracery_sampler_early_decisions_total'),
    pinned: metrics.value('tracery_sampler_traces_pinned_total'),
    pending: metrics.value('tracery_sampler_pending_traces'),
    tiers: Object.fromEntries(['error', 'slow', 'pinned', 'baseline'].map((tier) => [tier,
      metrics.value('tracery_ingester_traces_by_tier_total', { tier })])),
    metrics,
  };
}

// Status and span IDs (with repeats) of a trace, through the v1 JSON answer.
export async function readTrace(server, traceId) {
  const response = await httpRequest(`${server.httpUrl}/api/traces/${traceId}`, {
    headers: { Accept: 'application/json' }, timeoutMs: 30_000,
  });
  if (response.status !== 200) return { status: response.status, text: response.text().slice(0, 200), spanIds: [] };
  const body = JSON.parse(response.text());
  const spanIds = [];
  for (const resourceSpans of body.batches ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        assert.equal(span.traceId, traceId, `GET /api/traces/${traceId} returned a span of trace ${span.traceId}`);
        spanIds.push(span.spanId);
      }
    }
  }
  return { status: 200, spanIds };
}

// Compares a read trace with the span IDs sent. `expectKept`: true (all spans, once each),
// false (404), undefined (either whole or 404: never partial). Returns problems as text.
export function traceProblems(traceId, sentSpanIds, read, expectKept) {
  const problems = [];
  if (read.status !== 200) {
    if (read.status !== 404) problems.push(`${traceId}: HTTP ${read.status} ${read.text}`);
    else if (expectKept === true) problems.push(`${traceId}: 404, but it should have been kept (${sentSpanIds.length} spans)`);
    return problems;
  }
  if (expectKept === false) problems.push(`${traceId}: readable (${read.spanIds.length} spans), but it should have been dropped`);
  const sent = new Set(sentSpanIds);
  const seen = new Set();
  for (const spanId of read.spanIds) {
    if (seen.has(spanId)) problems.push(`${traceId}/${spanId}: returned more than once`);
    if (!sent.has(spanId)) problems.push(`${traceId}/${spanId}: returned but never sent`);
    seen.add(spanId);
  }
  const missing = sentSpanIds.filter((spanId) => !seen.has(spanId));
  if (missing.length) problems.push(`${traceId}: partial, ${missing.length} of ${sentSpanIds.length} spans missing (${missing.join(', ')})`);
  return problems;
}

// Reads every trace of `traces` ([{ traceId, spanIds, expectKept }]) with a few readers;
// returns { problems, readable: Set of trace IDs answered 200 }.
export async function checkTraces(server, traces, { concurrency = 6 } = {}) {
  const problems = [];
  const readable = new Set();
  let next = 0;
  async function reader() {
    while (next < traces.length) {
      const { traceId, spanIds, expectKept } = traces[next++];
      const read = await readTrace(server, traceId);
      if (read.status === 200) readable.add(traceId);
      problems.push(...traceProblems(traceId, spanIds, read, expectKept));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, reader));
  return { problems, readable };
}

// Every block's meta.json under <storage.trace.local.path>/<tenant>/<block id>/.
export async function blockMetas(server) {
  const root = path.join(server.dataDir, 'blocks');
  const metas = [];
  for (const tenant of await readdir(root).catch(() => [])) {
    for (const block of await readdir(path.join(root, tenant)).catch(() => [])) {
      const file = path.join(root, tenant, block, 'meta.json');
      if (!existsSync(file)) continue;
      metas.push({ tenant, block, directory: path.join(root, tenant, block), ...JSON.parse(await readFile(file, 'utf8')) });
    }
  }
  return metas;
}

// Sum of totalTraces per tier over the blocks on disk.
export function tracesPerTier(metas) {
  const totals = {};
  for (const meta of metas) totals[meta.tier] = (totals[meta.tier] ?? 0) + meta.totalTraces;
  return totals;
}

// Retries `check` until it stops throwing or the time is up; then rethrows its last error.
export async function eventually(check, { timeoutMs = 20_000, intervalMs = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) {
        error.message = `${what}: still failing after ${timeoutMs} ms: ${error.message}`;
        throw error;
      }
    }
    await sleep(intervalMs);
  }
}

export function sample(list, count = 10) {
  return list.slice(0, count).join('\n  ') + (list.length > count ? `\n  ... and ${list.length - count} more` : '');
}
