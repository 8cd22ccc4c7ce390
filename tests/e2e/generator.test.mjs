// The metrics generator against a real Prometheus (2.42, exemplar storage on): known traffic
// goes in as OTLP/JSON, and what Prometheus ends up holding (by remote write or by scraping
// tracery's /metrics) must match it: span counts, error ratios, the seed article's p99 query,
// service graph edges, exemplars that open real traces. Also: a Prometheus that is down does
// not slow ingest, the seed's generator config is accepted as written, and the operations
// files (alert rules, dashboard, data sources) are valid.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  httpRequest, makeTemporaryRoot, pickFreeLoopbackPort, reportServerOnFailure, repositoryRoot,
  serverBinaryPath, sleep, startServer, toYaml,
} from './harness.mjs';
import { readTraceJson } from './otlp.mjs';
import { randomSpanId, randomTraceId } from './scenarios.mjs';
import { remoteWrite, startPrometheus } from './prometheus.mjs';

const operationsDirectory = path.join(repositoryRoot, 'operations');
const rulesFile = path.join(operationsDirectory, 'prometheus', 'tracery-red-rules.yml');
const rulesTestFile = path.join(operationsDirectory, 'prometheus', 'tracery-red-rules.test.yml');
const dashboardFile = path.join(operationsDirectory, 'grafana', 'tracery-red-dashboard.json');
const datasourcesFile = path.join(operationsDirectory, 'grafana', 'datasources.yaml');
const promtoolPath = process.env.PROMTOOL_BIN || 'promtool';

// Tempo's default span-metrics buckets (seconds), which the contract keeps.
const LATENCY_BUCKETS = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
const COLLECTION_INTERVAL = '1s';
const SERVICE_GRAPH_WAIT = '2s';

function seedDirectory() {
  const candidates = [process.env.SEED_DIR, path.resolve(repositoryRoot, '..', 'shared', 'seed'), '/work/shared/seed'];
  const found = candidates.find((candidate) => candidate && existsSync(path.join(candidate, 'configs')));
  if (!found) throw new Error(`seed directory not found; tried ${candidates.filter(Boolean).join(', ')} (set SEED_DIR)`);
  return found;
}

// ---------------------------------------------------------------------------------------
// The traffic: three services and a database, built by hand so every count is known.
//
// Per trace i: frontend SERVER "GET /cart" (20 ms; 1.3 s when i % 10 == 3) calls checkout
// through a CLIENT span; checkout's SERVER span (10 ms; 300 ms when i % 20 == 7) is its child
// and writes to postgresql through a CLIENT span with db.name "orders" that no server answers.
// Every second trace checkout also publishes to mailer (PRODUCER -> CONSUMER). When
// i % 5 == 1 checkout fails: its SERVER and database spans end with ERROR (20 %). Frontend
// never fails. Every 20 consecutive traces have the same mix, so a wave of a multiple of 20
// traces has exactly the proportions of the whole.

const MS = 1_000_000n;
const STATUS = { UNSET: 0, OK: 1, ERROR: 2 };
const STATUS_NAMES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const KIND = { SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
const KIND_NAMES = { 2: 'SPAN_KIND_SERVER', 3: 'SPAN_KIND_CLIENT', 4: 'SPAN_KIND_PRODUCER', 5: 'SPAN_KIND_CONSUMER' };

function otlpSpan({ traceId, spanId, parentSpanId = '', name, kind, startNs, durationMs, status = STATUS.UNSET, attributes = {} }) {
  return {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUnixNano: startNs.toString(),
    endTimeUnixNano: (startNs + BigInt(durationMs) * MS).toString(),
    attributes: Object.entries(attributes).map(([key, value]) => ({ key, value: { stringValue: value } })),
    status: { code: status },
  };
}

function exportRequest(spansByService) {
  return {
    resourceSpans: Object.entries(spansByService).map(([service, spans]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'tracery-e2e-generator' }, spans }],
    })),
  };
}

// Everything sent so far, in the shape the assertions need.
class Ledger {
  constructor() {
    this.spans = [];       // { service, traceId, spanId, name, kind, status, seconds }
    this.edges = new Map(); // "client->server" -> { client, server, connectionType, total, failed }
  }

  addSpan(service, span, durationMs) {
    this.spans.push({
      service, traceId: span.traceId, spanId: span.spanId, name: span.name, kind: span.kind,
      status: span.status.code, seconds: durationMs / 1000,
    });
  }

  addEdge(client, server, connectionType, failed) {
    const key = `${client}->${server}`;
    const edge = this.edges.get(key) ?? { client, server, connectionType, total: 0, failed: 0 };
    edge.total += 1;
    if (failed) edge.failed += 1;
    this.edges.set(key, edge);
  }

  // Two OTLP requests per wave, as two processes would send them: frontend's spans, then
  // checkout's and mailer's. Pairing across them is the generator's job.
  buildWave(firstIndex, count) {
    const frontendSpans = [];
    const backendSpans = { checkout: [], mailer: [] };
    const now = BigInt(Date.now()) * MS;
    for (let i = firstIndex; i < firstIndex + count; i += 1) {
      const traceId = randomTraceId();
      const checkoutMs = i % 20 === 7 ? 300 : 10;
      const clientMs = checkoutMs + 3;
      const frontendMs = Math.max(i % 10 === 3 ? 1300 : 20, clientMs + 5);
      const fails = i % 5 === 1;
      const start = now - BigInt(frontendMs + 50) * MS;
      const record = (service, list, span, durationMs) => { list.push(span); this.addSpan(service, span, durationMs); return span; };

      const root = record('frontend', frontendSpans, otlpSpan({
        traceId, spanId: randomSpanId(), name: 'GET /cart', kind: KIND.SERVER, startNs: start,
        durationMs: frontendMs, status: i % 4 === 0 ? STATUS.OK : STATUS.UNSET,
      }), frontendMs);
      const call = record('frontend', frontendSpans, otlpSpan({
        traceId, spanId: randomSpanId(), parentSpanId: root.spanId, name: 'POST /checkout', kind: KIND.CLIENT,
        startNs: start + 2n * MS, durationMs: clientMs,
      }), clientMs);
      const handler = record('checkout', backendSpans.checkout, otlpSpan({
        traceId, spanId: randomSpanId(), parentSpanId: call.spanId, name: 'POST /checkout', kind: KIND.SERVER,
        startNs: start + 3n * MS, durationMs: checkoutMs, status: fails ? STATUS.ERROR : STATUS.UNSET,
      }), checkoutMs);
      record('checkout', backendSpans.checkout, otlpSpan({
        traceId, spanId: randomSpanId(), parentSpanId: handler.spanId, name: 'INSERT orders', kind: KIND.CLIENT,
        startNs: start + 4n * MS, durationMs: 5, status: fails ? STATUS.ERROR : STATUS.UNSET,
        attributes: { 'db.system': 'postgresql', 'db.name': 'orders' },
      }), 5);
      this.addEdge('frontend', 'checkout', undefined, fails);
      this.addEdge('checkout', 'orders', 'database', fails);
      if (i % 2 === 0) {
        const publish = record('checkout', backendSpans.checkout, otlpSpan({
          traceId, spanId: randomSpanId(), parentSpanId: handler.spanId, name: 'order-placed publish',
          kind: KIND.PRODUCER, startNs: start + 5n * MS, durationMs: 3,
        }), 3);
        record('mailer', backendSpans.mailer, otlpSpan({
          traceId, spanId: randomSpanId(), parentSpanId: publish.spanId, name: 'order-placed process',
          kind: KIND.CONSUMER, startNs: start + 9n * MS, durationMs: 6,
        }), 6);
        this.addEdge('checkout', 'mailer', 'messaging_system', false);
      }
    }
    return [exportRequest({ frontend: frontendSpans }), exportRequest(backendSpans)];
  }

  get services() { return [...new Set(this.spans.map((span) => span.service))].sort(); }

  spansOf(service) { return this.spans.filter((span) => span.service === service); }

  callsByService() {
    return Object.fromEntries(this.services.map((service) => [service, this.spansOf(service).length]));
  }

  // "service|span_name|span_kind|status_code" -> count, the label set of calls_total.
  callsBySeries() {
    const counts = {};
    for (const span of this.spans) {
      const key = [span.service, span.name, KIND_NAMES[span.kind], STATUS_NAMES[span.status]].join('|');
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  errorRatioByService() {
    return Object.fromEntries(this.services.map((service) => {
      const spans = this.spansOf(service);
      return [service, spans.filter((span) => span.status === STATUS.ERROR).length / spans.length];
    }));
  }

  secondsSumByService() {
    return Object.fromEntries(this.services.map((service) => [
      service, this.spansOf(service).reduce((sum, span) => sum + span.seconds, 0)]));
  }

  // Nearest-rank p99 of the durations sent.
  p99ByService() {
    return Object.fromEntries(this.services.map((service) => {
      const sorted = this.spansOf(service).map((span) => span.seconds).sort((a, b) => a - b);
      return [service, sorted[Math.ceil(0.99 * sorted.length) - 1]];
    }));
  }

  spanById() { return new Map(this.spans.map((span) => [span.spanId, span])); }
}

async function sendWave(server, ledger, firstIndex, count, { tenant } = {}) {
  for (const body of ledger.buildWave(firstIndex, count)) {
    const started = Date.now();
    const headers = { 'Content-Type': 'application/json', ...(tenant ? { 'X-Scope-OrgID': tenant } : {}) };
    const response = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, {
      method: 'POST', headers, body: JSON.stringify(body),
    });
    assert.equal(response.status, 200, `POST /v1/traces answered ${response.status}: ${response.text()}`);
    const elapsed = Date.now() - started;
    if (elapsed > 2000) throw new assert.AssertionError({ message: `POST /v1/traces took ${elapsed} ms` });
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

// Retries `check` until it stops throwing or the time is up; then rethrows its last error,
// so the failure message is the assertion that never became true.
async function eventually(check, { timeoutMs = 20_000, intervalMs = 500, what = 'condition' } = {}) {
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

const byLabel = (samples, label) => Object.fromEntries(samples.map((sample) => [sample.metric[label], sample.value]));
const leValue = (le) => (le === '+Inf' ? Infinity : Number(le));
const bucketIndex = (seconds) => {
  const index = LATENCY_BUCKETS.findIndex((bound) => seconds <= bound);
  return index === -1 ? LATENCY_BUCKETS.length : index;
};
const nowSeconds = () => Date.now() / 1000;

function generatorConfig({ remoteWriteUrl } = {}) {
  const generator = {
    registry: {
      external_labels: { source: 'tempo' },
      collection_interval: COLLECTION_INTERVAL,
      stale_duration: '15m',
      max_active_series: 0,
    },
    processor: {
      service_graphs: { enabled: true, wait: SERVICE_GRAPH_WAIT, max_items: 10000 },
      span_metrics: { enabled: true },
    },
  };
  // harness.toYaml writes a list of maps as a JSON flow sequence, which is valid YAML.
  if (remoteWriteUrl) generator.storage = { remote_write: [{ url: remoteWriteUrl, send_exemplars: true }] };
  return { metrics_generator: generator };
}

// tracery's own /metrics as { family name -> [{ labels text, value }] }.
async function selfMetrics(server) {
  const response = await httpRequest(`${server.httpUrl}/metrics`);
  assert.equal(response.status, 200, `GET /metrics answered ${response.status}`);
  const families = {};
  for (const line of response.text().split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!match) continue;
    (families[match[1]] ??= []).push({ labels: match[2] ?? '', value: Number(match[3]) });
  }
  return families;
}

// Parses `name{labels} value` lines of one family into [{ labels: {...}, value }].
function samplesOf(text, name) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{ ]+(?:\{(.*)\})? (\S+)/.exec(line.replace(/ # \{.*$/, ''));
    if (!match) continue;
    const labels = Object.fromEntries([...(match[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, value]) => [key, value]));
    samples.push({ labels, value: Number(match[2]) });
  }
  return samples;
}

function sumBy(samples, label) {
  const sums = {};
  for (const sample of samples) sums[sample.labels[label]] = (sums[sample.labels[label]] ?? 0) + sample.value;
  return sums;
}

function reportPrometheusOnFailure(getPrometheusList, { afterEach, after }) {
  afterEach((context) => {
    if (context.passed) return;
    for (const prometheus of getPrometheusList()) {
      if (!prometheus) continue;
      console.error(`\n===== prometheus on port ${prometheus.port} (test "${context.name}") =====\n`
        + `${prometheus.log.slice(-8000)}\n===== end of prometheus output =====`);
    }
  });
  after(async () => {
    for (const prometheus of getPrometheusList()) await prometheus?.stop();
  });
}

// Checks one exemplar against the traffic and opens its trace in tracery.
async function assertExemplarOpensItsTrace(server, sent, seriesLabels, exemplar, { requireSpanId }) {
  const where = `exemplar ${JSON.stringify(exemplar.labels)} value ${exemplar.value} on ${JSON.stringify(seriesLabels)}`;
  const traceId = exemplar.labels.trace_id;
  assert.match(traceId ?? '', /^[0-9a-f]{32}$/, `${where}: trace_id is not 32 lowercase hex digits`);
  const spanId = exemplar.labels.span_id;
  if (requireSpanId || spanId !== undefined) assert.match(spanId ?? '', /^[0-9a-f]{16}$/, `${where}: span_id is not 16 hex digits`);
  if (spanId !== undefined) {
    const span = sent.get(spanId);
    assert.ok(span, `${where}: span_id was never sent`);
    assert.equal(span.traceId, traceId, `${where}: span ${spanId} belongs to trace ${span.traceId}`);
    if (seriesLabels.service !== undefined) {
      assert.equal(seriesLabels.service, span.service, `${where}: the span is from service ${span.service}`);
      assert.ok(Math.abs(exemplar.value - span.seconds) < 1e-6, `${where}: the span lasted ${span.seconds} s`);
    }
  }
  if (seriesLabels.le !== undefined) {
    assert.ok(exemplar.value <= leValue(seriesLabels.le), `${where}: value above the bucket's le`);
  }
  const trace = await readTraceJson(server, traceId);
  assert.equal(trace.status, 200, `${where}: GET /api/traces/${traceId} answered ${trace.status}: ${trace.text ?? ''}`);
  if (spanId !== undefined) {
    assert.ok(trace.spans.some((span) => span.spanId === spanId),
      `${where}: GET /api/traces/${traceId} has no span ${spanId} (spans: ${trace.spans.map((s) => s.spanId).join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------
// Operations files

describe('operations files', () => {
  it('promtool accepts the alerting rules', () => {
    const result = spawnSync(promtoolPath, ['check', 'rules', rulesFile], { encoding: 'utf8' });
    assert.equal(result.status, 0, `promtool check rules failed:\n${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /SUCCESS: \d+ rules found/);
  });

  it('the alerting rules pass their promtool unit tests (fire on errors and p99, not before `for`)', () => {
    const result = spawnSync(promtoolPath, ['test', 'rules', rulesTestFile], { encoding: 'utf8' });
    assert.equal(result.status, 0, `promtool test rules failed:\n${result.stdout}${result.stderr}`);
  });

  it('the dashboard has exemplars on the seed p99 query and the tracery Tempo data source', async () => {
    const dashboard = JSON.parse(await readFile(dashboardFile, 'utf8'));
    assert.equal(dashboard.schemaVersion, 39);
    const seedQuery = await readFile(path.join(seedDirectory(), 'configs', 'p99-by-service.promql'), 'utf8');
    const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));
    const latency = targets.find(({ target }) => target.expr?.trim() === seedQuery.trim());
    assert.ok(latency, 'no panel queries the seed p99 expression verbatim');
    assert.equal(latency.target.exemplar, true, `panel "${latency.panel.title}" does not show exemplars`);
    assert.match(latency.panel.description ?? '', /exemplarTraceIdDestinations/, 'the p99 panel does not say which data-source setting links exemplars');
    const variable = dashboard.templating.list.find((entry) => entry.type === 'datasource' && entry.query === 'prometheus');
    assert.ok(variable, 'no Prometheus data source variable');
    assert.equal(latency.target.datasource.uid, `\${${variable.name}}`);
    const tempoReferences = [...dashboard.panels, ...targets.map(({ target }) => target)]
      .map((entry) => entry.datasource).filter((source) => source?.type === 'tempo');
    assert.ok(tempoReferences.length > 0, 'no panel uses a Tempo data source');
    for (const source of tempoReferences) assert.equal(source.uid, 'tracery');
  });

  it('the data source provisioning links exemplars to tracery', async () => {
    const text = await readFile(datasourcesFile, 'utf8');
    assert.match(text, /exemplarTraceIdDestinations:\s*\n\s*- name: trace_id\s*\n\s*datasourceUid: tracery/);
    assert.match(text, /type: tempo\s*\n\s*uid: tracery\s*\n(.*\n)*?\s*url: http:\/\/localhost:3200/);
    assert.match(text, /tracesToMetrics:\s*\n\s*datasourceUid: prometheus/);
    assert.match(text, /serviceMap:\s*\n\s*datasourceUid: prometheus/);
  });
});

// ---------------------------------------------------------------------------------------
// a, b: remote write into Prometheus

describe('metrics generator remote-writing to Prometheus', () => {
  let prometheus;
  let server;
  const ledger = new Ledger();
  const startedAt = nowSeconds();

  before(async () => {
    prometheus = await startPrometheus({ ruleFiles: [rulesFile] });
    server = await startServer({ configOverrides: generatorConfig({ remoteWriteUrl: prometheus.remoteWriteUrl }) });
  });
  reportServerOnFailure(() => server, { afterEach, after });
  reportPrometheusOnFailure(() => [prometheus], { afterEach, after });

  it('the test Prometheus itself stores remote-written samples and exemplars', async () => {
    const traceId = randomTraceId();
    const response = await remoteWrite(prometheus.remoteWriteUrl, [{
      labels: { __name__: 'e2e_self_check_bucket', le: '0.5' },
      samples: [{ value: 1, timestampMs: Date.now() }],
      exemplars: [{ labels: { trace_id: traceId }, value: 0.25, timestampMs: Date.now() }],
    }]);
    assert.equal(response.status, 204, `remote write answered ${response.status}: ${response.text()}`);
    const exemplars = await prometheus.queryExemplars('e2e_self_check_bucket', startedAt - 60, nowSeconds() + 60);
    assert.equal(exemplars[0]?.exemplars[0]?.labels.trace_id, traceId, JSON.stringify(exemplars));
  });

  it('a: span metrics and service graph in Prometheus match the traffic sent', async () => {
    // A first wave creates every series; the p99 below is a rate, which needs a sample
    // before the bulk of the traffic.
    await sendWave(server, ledger, 0, 20);
    const calls = 'sum by (service) (traces_spanmetrics_calls_total)';
    await eventually(async () => {
      assert.deepEqual(byLabel(await prometheus.query(calls), 'service'), ledger.callsByService());
    }, { what: `${calls} after the first wave` });
    await sleep(2000);
    await sendWave(server, ledger, 20, 180);
    await eventually(async () => {
      assert.deepEqual(byLabel(await prometheus.query(calls), 'service'), ledger.callsByService());
    }, { what: `${calls} after the second wave` });

    // Every label set of calls_total, with Tempo's spelling of kinds and status codes.
    const series = await prometheus.query('traces_spanmetrics_calls_total');
    const got = Object.fromEntries(series.map(({ metric, value }) => [
      [metric.service, metric.span_name, metric.span_kind, metric.status_code].join('|'), value]));
    assert.deepEqual(got, ledger.callsBySeries(), 'traces_spanmetrics_calls_total by service|span_name|span_kind|status_code');

    const errors = 'sum by (service) (traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR"})';
    const errorCounts = byLabel(await prometheus.query(errors), 'service');
    const sentCalls = ledger.callsByService();
    const errorRatios = Object.fromEntries(ledger.services.map((service) => [service, (errorCounts[service] ?? 0) / sentCalls[service]]));
    assert.deepEqual(errorRatios, ledger.errorRatioByService(), 'error ratio per service');

    const counts = byLabel(await prometheus.query('sum by (service) (traces_spanmetrics_latency_count)'), 'service');
    assert.deepEqual(counts, sentCalls, 'traces_spanmetrics_latency_count per service');
    const sums = byLabel(await prometheus.query('sum by (service) (traces_spanmetrics_latency_sum)'), 'service');
    for (const [service, expected] of Object.entries(ledger.secondsSumByService())) {
      assert.ok(Math.abs((sums[service] ?? NaN) - expected) < 1e-3 * expected,
        `traces_spanmetrics_latency_sum{service="${service}"}: got ${sums[service]} s, sent ${expected} s`);
    }
    const bounds = await prometheus.query('count by (le) (traces_spanmetrics_latency_bucket{service="frontend"})');
    assert.deepEqual(bounds.map(({ metric }) => leValue(metric.le)).sort((a, b) => a - b), [...LATENCY_BUCKETS, Infinity],
      'bucket bounds of traces_spanmetrics_latency_bucket');
    const sizes = byLabel(await prometheus.query('sum by (service) (traces_spanmetrics_size_total)'), 'service');
    for (const service of ledger.services) assert.ok(sizes[service] > 0, `traces_spanmetrics_size_total{service="${service}"} is ${sizes[service]}`);

    // The seed article's query, verbatim.
    const seedQuery = await readFile(path.join(seedDirectory(), 'configs', 'p99-by-service.promql'), 'utf8');
    const truth = ledger.p99ByService();
    await eventually(async () => {
      const p99 = byLabel(await prometheus.query(seedQuery), 'service');
      for (const [service, trueSeconds] of Object.entries(truth)) {
        const got = p99[service];
        assert.ok(Number.isFinite(got) && Math.abs(bucketIndex(got) - bucketIndex(trueSeconds)) <= 1,
          `seed p99 query for ${service}: got ${got} s, the traffic's p99 is ${trueSeconds} s (all: ${JSON.stringify(p99)})`);
      }
    }, { what: 'seed p99 query', timeoutMs: 10_000 });

    // Service graph: edges appear once client and server are paired, the database edge
    // after `wait`. The edge to postgresql is named by db.name.
    const edgesQuery = 'traces_service_graph_request_total';
    await eventually(async () => {
      const edges = await prometheus.query(edgesQuery);
      const failed = await prometheus.query('traces_service_graph_request_failed_total');
      const describeEdges = () => JSON.stringify(edges.map(({ metric, value }) => ({ ...metric, value })));
      for (const expected of ledger.edges.values()) {
        const matches = edges.filter(({ metric }) => metric.client === expected.client && metric.server === expected.server);
        assert.equal(matches.length, 1, `edge ${expected.client}->${expected.server} in ${describeEdges()}`);
        assert.equal(matches[0].value, expected.total, `calls on ${expected.client}->${expected.server}`);
        assert.equal(matches[0].metric.connection_type, expected.connectionType,
          `connection_type of ${expected.client}->${expected.server}`);
        const failedValue = failed.find(({ metric }) => metric.client === expected.client && metric.server === expected.server)?.value ?? 0;
        assert.equal(failedValue, expected.failed, `traces_service_graph_request_failed_total on ${expected.client}->${expected.server}`);
      }
    }, { what: edgesQuery, timeoutMs: 15_000 });
    const serverSeconds = byLabel(await prometheus.query(
      'sum by (server) (traces_service_graph_request_server_seconds_count{client="frontend"})'), 'server');
    assert.deepEqual(serverSeconds, { checkout: ledger.edges.get('frontend->checkout').total },
      'traces_service_graph_request_server_seconds_count from frontend');
    const clientSeconds = byLabel(await prometheus.query(
      'sum by (server) (traces_service_graph_request_client_seconds_count{client="frontend"})'), 'server');
    assert.deepEqual(clientSeconds, { checkout: ledger.edges.get('frontend->checkout').total },
      'traces_service_graph_request_client_seconds_count from frontend');

    // The external label is on every generated series.
    const generated = '{__name__=~"traces_spanmetrics_.+|traces_service_graph_.+"}';
    const all = await prometheus.query(`count(${generated})`);
    assert.ok(all[0]?.value > 0, 'no generated series at all');
    const without = await prometheus.query(`count by (__name__) (${generated.replace('}', ', source!="tempo"}')})`);
    assert.deepEqual(without, [], 'generated series without source="tempo"');
  });

  it("the operations RED rules evaluate on tracery's series: recording rules and pending alerts", async () => {
    assert.ok(ledger.spans.length > 0, 'test a sent no traffic');
    const expectedRatios = ledger.errorRatioByService();
    await eventually(async () => {
      const ratios = byLabel(await prometheus.query('service:traces_spanmetrics_error_ratio:rate5m'), 'service');
      for (const [service, expected] of Object.entries(expectedRatios)) {
        assert.ok(Math.abs((ratios[service] ?? NaN) - expected) < 0.01,
          `service:traces_spanmetrics_error_ratio:rate5m{service="${service}"}: got ${ratios[service]}, sent ${expected}`);
      }
      const pending = async (alertname) => (await prometheus.query(`ALERTS{alertname="${alertname}"}`))
        .map(({ metric }) => `${metric.service}:${metric.alertstate}`).sort();
      assert.deepEqual(await pending('TraceryServiceHighErrorRatio'), ['checkout:pending'], 'error-ratio alerts (20 % errors on checkout only)');
      assert.deepEqual(await pending('TraceryServiceHighLatencyP99'), ['frontend:pending'], 'p99 alerts (1.3 s p99 on frontend only)');
    }, { what: 'RED rules', timeoutMs: 10_000 });
  });

  it('b: exemplars on the latency buckets name traces and spans that tracery serves', async () => {
    assert.ok(ledger.spans.length > 0, 'test a sent no traffic');
    const sent = ledger.spanById();
    const latency = await eventually(async () => {
      const found = await prometheus.queryExemplars('traces_spanmetrics_latency_bucket', startedAt - 60, nowSeconds() + 60);
      assert.ok(found.some((entry) => entry.exemplars.length > 0), 'query_exemplars returned no exemplar');
      return found;
    }, { what: 'exemplars of traces_spanmetrics_latency_bucket', timeoutMs: 10_000 });
    let checked = 0;
    for (const { seriesLabels, exemplars } of latency) {
      for (const exemplar of exemplars) {
        await assertExemplarOpensItsTrace(server, sent, seriesLabels, exemplar, { requireSpanId: true });
        checked += 1;
      }
    }
    // Exemplars must reach the slow bucket too, where an on-call would click.
    const slow = latency.filter(({ seriesLabels }) => seriesLabels.service === 'frontend' && leValue(seriesLabels.le) === 2.048);
    assert.ok(slow.some((entry) => entry.exemplars.length > 0), 'no exemplar on frontend\'s le="2.048" bucket');

    const edges = await prometheus.queryExemplars('traces_service_graph_request_server_seconds_bucket', startedAt - 60, nowSeconds() + 60);
    assert.ok(edges.some((entry) => entry.exemplars.length > 0), 'no exemplar on traces_service_graph_request_server_seconds_bucket');
    for (const { seriesLabels, exemplars } of edges) {
      for (const exemplar of exemplars) {
        await assertExemplarOpensItsTrace(server, sent, seriesLabels, exemplar, { requireSpanId: false });
        checked += 1;
      }
    }
    assert.ok(checked > 0);
  });
});

// ---------------------------------------------------------------------------------------
// c: Prometheus scraping tracery's /metrics

describe('Prometheus scraping the generated series from /metrics', () => {
  let prometheus;
  let server;
  const ledger = new Ledger();
  const startedAt = nowSeconds();

  before(async () => {
    server = await startServer({ configOverrides: generatorConfig() });
    prometheus = await startPrometheus({ scrapeJobs: [{ name: 'tracery', target: `127.0.0.1:${server.httpPort}` }] });
  });
  reportServerOnFailure(() => server, { afterEach, after });
  reportPrometheusOnFailure(() => [prometheus], { afterEach, after });

  it('c: /metrics has the generated series in both formats, and Prometheus scrapes the same counts and exemplars', async () => {
    await sendWave(server, ledger, 0, 40);
    const expected = ledger.callsByService();

    const text = await eventually(async () => {
      const response = await httpRequest(`${server.httpUrl}/metrics`);
      assert.equal(response.status, 200);
      const body = response.text();
      assert.deepEqual(sumBy(samplesOf(body, 'traces_spanmetrics_calls_total'), 'service'), expected,
        'traces_spanmetrics_calls_total per service on /metrics (Prometheus text)');
      return body;
    }, { what: 'GET /metrics' });
    assert.doesNotMatch(text, /^# EOF/m, 'the Prometheus text format has no # EOF');
    assert.doesNotMatch(text, / # \{/, 'the Prometheus text format cannot carry exemplars');

    const open = await httpRequest(`${server.httpUrl}/metrics`, { headers: { Accept: 'application/openmetrics-text; version=1.0.0' } });
    assert.equal(open.status, 200);
    assert.match(open.headers.get('content-type') ?? '', /^application\/openmetrics-text/, 'Content-Type of the OpenMetrics answer');
    const openText = open.text();
    assert.ok(openText.endsWith('# EOF\n'), `the OpenMetrics answer does not end with "# EOF\\n": ...${JSON.stringify(openText.slice(-80))}`);
    assert.deepEqual(sumBy(samplesOf(openText, 'traces_spanmetrics_calls_total'), 'service'), expected,
      'traces_spanmetrics_calls_total per service on /metrics (OpenMetrics)');
    const exemplarLines = openText.split('\n').filter((line) => line.startsWith('traces_spanmetrics_latency_bucket{') && line.includes(' # {'));
    assert.ok(exemplarLines.length > 0, 'no exemplar on traces_spanmetrics_latency_bucket in the OpenMetrics answer');
    const sent = ledger.spanById();
    for (const line of exemplarLines) {
      const match = / # \{(.*)\} (\S+)(?: (\S+))?$/.exec(line);
      assert.ok(match, `exemplar syntax: ${line}`);
      const labels = Object.fromEntries([...match[1].matchAll(/([a-z_]+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
      assert.match(labels.trace_id ?? '', /^[0-9a-f]{32}$/, `trace_id in ${line}`);
      assert.equal(sent.get(labels.span_id)?.traceId, labels.trace_id, `span_id/trace_id of a span sent: ${line}`);
      assert.ok(match[3] === undefined || /^\d+(\.\d+)?$/.test(match[3]), `exemplar timestamp (seconds): ${line}`);
    }

    const query = 'sum by (service) (traces_spanmetrics_calls_total{job="tracery"})';
    await eventually(async () => {
      const targets = await prometheus.api('/api/v1/targets');
      const target = targets.activeTargets[0];
      assert.equal(target?.health, 'up', `scrape target: ${JSON.stringify(target)}`);
      assert.deepEqual(byLabel(await prometheus.query(query), 'service'), expected, query);
    }, { what: 'scraped calls_total', timeoutMs: 15_000 });

    const scraped = await eventually(async () => {
      const found = await prometheus.queryExemplars('traces_spanmetrics_latency_bucket{job="tracery"}', startedAt - 60, nowSeconds() + 60);
      assert.ok(found.some((entry) => entry.exemplars.length > 0), 'Prometheus stored no exemplar from the scrape');
      return found;
    }, { what: 'scraped exemplars', timeoutMs: 10_000 });
    for (const { seriesLabels, exemplars } of scraped) {
      for (const exemplar of exemplars) {
        await assertExemplarOpensItsTrace(server, sent, seriesLabels, exemplar, { requireSpanId: true });
      }
    }
  });
});

describe("per-tenant generator settings from Tempo's runtime overrides file", () => {
  let prometheus;
  let server;
  let overridesDirectory;

  before(async () => {
    // Each tenant's processors and series limit come from the runtime file; "other" has no
    // entry and runs the main file's processors (both).
    overridesDirectory = await makeTemporaryRoot();
    const overridesPath = path.join(overridesDirectory.root, 'overrides.yaml');
    await appendFile(overridesPath, [
      'overrides:',
      '  graphs:',
      '    metrics_generator:',
      '      processors: [service-graphs]',
      '  spans:',
      '    metrics_generator_processors: [span-metrics]',   // Tempo's legacy flat layout
      '  off:',
      '    metrics_generator:',
      '      processors: []',
      '  limited:',
      '    metrics_generator:',
      '      processors: [span-metrics]',
      '      max_active_series: 6',
      '',
    ].join('\n'));
    const overrides = generatorConfig();
    server = await startServer({
      configOverrides: {
        ...overrides,
        multitenancy_enabled: true,
        overrides: { per_tenant_override_config: overridesPath },
      },
    });
    prometheus = await startPrometheus({ scrapeJobs: [{ name: 'tracery', target: `127.0.0.1:${server.httpPort}` }] });
  });
  reportServerOnFailure(() => server, { afterEach, after });
  reportPrometheusOnFailure(() => [prometheus], { afterEach, after });
  after(async () => { if (overridesDirectory) await rm(overridesDirectory.root, { recursive: true, force: true }); });

  it('f: each tenant gets the processors and series limit of its overrides, scraped by Prometheus', async () => {
    const ledger = new Ledger();
    for (const tenant of ['graphs', 'spans', 'off', 'limited', 'other']) await sendWave(server, ledger, 0, 20, { tenant });
    const count = async (family, tenant) => {
      const result = await prometheus.query(`count(${family}{job="tracery",tenant="${tenant}"})`);
      return result.length ? result[0].value : 0;
    };
    await eventually(async () => {
      assert.ok(await count('traces_service_graph_request_total', 'graphs') > 0, 'graphs: service graph');
      assert.ok(await count('traces_spanmetrics_calls_total', 'spans') > 0, 'spans: span metrics');
      assert.ok(await count('traces_spanmetrics_calls_total', 'other') > 0, 'other: span metrics (main file)');
      assert.ok(await count('traces_service_graph_request_total', 'other') > 0, 'other: service graph (main file)');
      assert.ok(await count('traces_spanmetrics_calls_total', 'limited') > 0, 'limited: span metrics');
    }, { what: 'per-tenant series in Prometheus', timeoutMs: 30_000 });
    assert.equal(await count('traces_spanmetrics_calls_total', 'graphs'), 0, 'graphs runs no span metrics');
    assert.equal(await count('traces_service_graph_request_total', 'spans'), 0, 'spans runs no service graph');
    for (const family of ['traces_spanmetrics_calls_total', 'traces_service_graph_request_total'])
      assert.equal(await count(family, 'off'), 0, `off runs no processor (${family})`);
    // limited: 6 series are two label sets of calls, latency and size; the traffic has more.
    const limited = await count('traces_spanmetrics_calls_total', 'limited');
    const unlimited = await count('traces_spanmetrics_calls_total', 'spans');
    assert.ok(limited >= 1 && limited <= 2 && unlimited > limited, `limited ${limited} label sets, spans ${unlimited}`);
  });
});

// ---------------------------------------------------------------------------------------
// d: Prometheus down

describe('metrics generator while Prometheus is down', () => {
  let prometheus;
  let server;
  const ledger = new Ledger();

  before(async () => {
    const port = await pickFreeLoopbackPort();
    server = await startServer({ configOverrides: generatorConfig({ remoteWriteUrl: `http://127.0.0.1:${port}/api/v1/write` }) });
    server.prometheusPort = port;
  });
  reportServerOnFailure(() => server, { afterEach, after });
  reportPrometheusOnFailure(() => [prometheus], { afterEach, after });

  it('d: ingest stays fast, failures are counted, and data arrives once Prometheus is up', async () => {
    for (let wave = 0; wave < 4; wave += 1) {
      await sendWave(server, ledger, wave * 20, 20);
      await sleep(500);
    }
    const failureFamily = /^tracery_generator_remote_write_(failures|failed|retries|samples_dropped|requests_failed)/;
    const families = await eventually(async () => {
      const metrics = await selfMetrics(server);
      const failing = Object.entries(metrics).filter(([name, samples]) => failureFamily.test(name) && samples.some((s) => s.value > 0))
        .concat(Object.entries(metrics).filter(([name, samples]) => name === 'tracery_generator_remote_write_requests_total'
          && samples.some((s) => !/result="success"/.test(s.labels) && s.value > 0)));
      assert.ok(failing.length > 0, `no remote-write failure counted; families: ${JSON.stringify(
        Object.fromEntries(Object.entries(metrics).filter(([name]) => /remote_write/.test(name))))}`);
      return metrics;
    }, { what: 'remote-write failure counters', timeoutMs: 15_000 });
    console.log(`remote-write families on /metrics: ${JSON.stringify(
      Object.fromEntries(Object.entries(families).filter(([name]) => /^tracery_generator/.test(name))))}`);

    // Ingest was not slowed (sendWave asserts 200 within 2 s per request) and still is.
    await sendWave(server, ledger, 80, 20);

    prometheus = await startPrometheus({ port: server.prometheusPort });
    const calls = 'sum by (service) (traces_spanmetrics_calls_total)';
    await eventually(async () => {
      assert.deepEqual(byLabel(await prometheus.query(calls), 'service'), ledger.callsByService(), calls);
    }, { what: 'data in Prometheus after it came up', timeoutMs: 40_000, intervalMs: 1000 });
  });
});

// ---------------------------------------------------------------------------------------
// e: the seed's generator config, as written

describe("the seed article's metrics_generator config", () => {
  let root;
  after(async () => { if (root) await rm(root, { recursive: true, force: true }); });

  it('e: is accepted as the config file (with server and storage sections appended) and the process gets ready', async (context) => {
    // The seed remote-writes to http://prometheus:9090, which is not loopback. tracery runs
    // in a network namespace with only a loopback interface, so nothing can leave the host.
    const probe = spawnSync('unshare', ['--net', '--map-root-user', 'true']);
    if (probe.status !== 0) {
      context.skip('unshare --net is not available; the seed config would send traffic to http://prometheus:9090');
      return;
    }
    ({ root } = await makeTemporaryRoot());
    const configPath = path.join(root, 'config.yaml');
    await copyFile(path.join(seedDirectory(), 'configs', 'metrics-generator.yaml'), configPath);
    const httpPort = 3200;
    await appendFile(configPath, `\n${toYaml({
      server: { http_listen_address: '127.0.0.1', http_listen_port: httpPort },
      distributor: { receivers: { otlp: { protocols: { http: { endpoint: '127.0.0.1:4318' } } } } },
      storage: { trace: { backend: 'local', local: { path: path.join(root, 'data', 'blocks') }, wal: { path: path.join(root, 'data', 'wal') } } },
    })}`);

    // Inside the namespace: bring loopback up, start tracery, poll /ready, stop it.
    const script = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.argv[1], ['-config.file=' + process.argv[2]], { stdio: ['ignore', 'inherit', 'inherit'] });
      let exited = null;
      child.on('exit', (code, signal) => { exited = { code, signal }; });
      (async () => {
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline && !exited) {
          try {
            const response = await fetch('http://127.0.0.1:${httpPort}/ready', { signal: AbortSignal.timeout(1000) });
            if (response.status === 200) { console.log('READY'); child.kill('SIGTERM'); return; }
          } catch {}
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        console.log('NOT READY ' + JSON.stringify(exited));
        child.kill('SIGKILL');
        process.exitCode = 1;
      })();`;
    const run = spawn('unshare', ['--net', '--map-root-user', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
      process.execPath, '-e', script, serverBinaryPath(), configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    run.stdout.on('data', (chunk) => { output += chunk; });
    run.stderr.on('data', (chunk) => { output += chunk; });
    const code = await new Promise((resolve) => run.on('exit', resolve));
    const configText = await readFile(configPath, 'utf8');
    assert.ok(code === 0 && /READY/.test(output),
      `tracery did not get ready with the seed config (exit ${code}):\n--- config ---\n${configText}\n--- output ---\n${output}`);
  });
});
