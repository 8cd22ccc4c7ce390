// TraceQL metrics answers as Grafana gets them from Tempo: the search tests' data set (~400
// traces, in blocks, live, and split between a block and live data) is sent to one real
// tracery, and every query of the metrics corpus (traceql/metrics_corpus.mjs) is asked of
// GET /api/metrics/query_range (explicit start, end and step; plus the default step and
// `since`) and a subset of GET /api/metrics/query (instant), and compared with a brute-force
// reference (traceql/metrics_reference.mjs): the same series, label for label, the same
// samples, timestamp for timestamp, values within a small tolerance (quantiles within the
// documented 1 %), in the strict JSON shape of tempopb. Exemplars must point at real traces
// and at spans in the sample's bucket; malformed queries, search queries and bad times are 400.
// A few extra traces (metrics_corpus.mjs edgeTraces) put spans exactly on bucket and window
// edges and durations and values on histogram bucket edges.
//
// Where tracery documents a choice that differs from Tempo (src/traceql/metrics.h), the
// reference follows tracery: quantiles are nearest rank within 1 % (Tempo interpolates in
// power-of-two buckets), sampling hints are ignored, compare() has no exemplars, exemplars are
// chosen deterministically (smallest trace and span ID per slot of the range) and carry the
// 32-digit trace:id (Tempo trims leading zeros), and series come sorted by labels (Tempo leaves
// their order to a map).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, reportServerOnFailure, httpRequest } from './harness.mjs';
import { nowNanos } from './load.mjs';
import { buildDataset, resourceAttributes, sendPlan } from './traceql/dataset.mjs';
import { buildView, evaluateSpanField } from './traceql/reference.mjs';
import { sample, getJson as getJsonFrom, runConcurrently } from './traceql/api.mjs';
import {
  parseMetricsQuery, evaluateMetrics, makeGrid, defaultStepNanos, selectedSpans, compareLabels, numericValue, exemplarLimit, labelsKey, NIL_LABEL, MAX_EXEMPLARS,
} from './traceql/metrics_reference.mjs';
import { buildMetricsCorpus, metricsWindows, edgeTraces, MALFORMED_METRICS, SEARCH_QUERIES } from './traceql/metrics_corpus.mjs';

const SECOND = 1_000_000_000n;
const VALUE_TOLERANCE = 1e-9; // relative, for sums and averages added in another order
const QUANTILE_TOLERANCE = 0.01; // the sketch's documented relative error

let server;
let dataset;
let views;
let corpus;
let nowSec; // the data set's anchor, unix seconds
let rangeWindow; // { start, end } unix seconds, not aligned to any step
let instantWindows;
let oneStepWindow;
const rangeAnswers = []; // { text, step, query, answer }
const instantAnswers = [];

const getJson = (path, params) => getJsonFrom(server, path, params);

// Go-style durations and plain seconds, as the step parameter takes them.
function stepNanos(step) {
  if (/^[0-9.]+$/.test(step)) return BigInt(Math.round(Number(step) * 1e9));
  let total = 0n;
  for (const [, n, unit] of step.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += BigInt(n) * { ms: 1_000_000n, s: SECOND, m: 60n * SECOND, h: 3600n * SECOND }[unit];
  return total;
}

// ---------------------------------------------------------------------------------------
// Strict JSON shape (gogo jsonpb of tempopb.QueryRangeResponse / QueryInstantResponse)

function metricsShapeProblems(body, { instant }) {
  const problems = [];
  const where = [];
  const problem = (message) => problems.push(`${where.join('') || 'body'}: ${message}`);
  const onlyKeys = (object, allowed) => {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) { problem('not an object'); return false; }
    for (const key of Object.keys(object)) if (!allowed.includes(key)) problem(`unknown field "${key}"`);
    return true;
  };
  const int64String = (value, name, { required = false } = {}) => {
    if (value === undefined) { if (required) problem(`${name} missing`); return; }
    if (typeof value !== 'string' || !/^-?[0-9]+$/.test(value)) problem(`${name} is not a decimal string: ${JSON.stringify(value)}`);
    else if (value === '0') problem(`${name} is zero but present`);
  };
  const double = (value, name) => {
    if (value === undefined) return;
    if (typeof value === 'number') { if (value === 0) problem(`${name} is zero but present (zero values are omitted)`); return; }
    if (!['NaN', 'Infinity', '-Infinity'].includes(value)) problem(`${name} is not a number: ${JSON.stringify(value)}`);
  };
  const anyValue = (value) => {
    if (!onlyKeys(value, ['stringValue', 'intValue', 'doubleValue', 'boolValue', 'arrayValue', 'kvlistValue', 'bytesValue'])) return;
    const keys = Object.keys(value);
    if (keys.length !== 1) { problem(`an AnyValue with ${keys.length} values: ${JSON.stringify(value)}`); return; }
    if ('stringValue' in value && typeof value.stringValue !== 'string') problem('stringValue is not a string');
    if ('intValue' in value && (typeof value.intValue !== 'string' || !/^-?[0-9]+$/.test(value.intValue))) problem('intValue is not a decimal string');
    if ('doubleValue' in value && typeof value.doubleValue !== 'number' && !['NaN', 'Infinity', '-Infinity'].includes(value.doubleValue)) problem('doubleValue is not a number');
    if ('boolValue' in value && typeof value.boolValue !== 'boolean') problem('boolValue is not a boolean');
  };
  const labels = (list, name) => {
    if (list === undefined) { problem(`${name} missing`); return; }
    if (!Array.isArray(list) || list.length === 0) { problem(`${name} is not a non-empty array`); return; }
    list.forEach((kv, i) => {
      where.push(`.${name}[${i}]`);
      if (onlyKeys(kv, ['key', 'value'])) {
        if (typeof kv.key !== 'string' || kv.key === '') problem('key is not a non-empty string');
        if (kv.value === undefined) problem('no value'); else anyValue(kv.value);
      }
      where.pop();
    });
  };
  if (!onlyKeys(body, ['series', 'metrics', 'status', 'message'])) return problems;
  if (body.status !== undefined && body.status !== 'PARTIAL') problem(`status ${JSON.stringify(body.status)} (COMPLETE is the zero value, omitted)`);
  if (body.message !== undefined && (typeof body.message !== 'string' || body.message === '')) problem('message is not a non-empty string');
  if (body.series !== undefined && !Array.isArray(body.series)) problem('series is not an array');
  (Array.isArray(body.series) ? body.series : []).forEach((series, i) => {
    where.push(`series[${i}]`);
    if (onlyKeys(series, instant ? ['labels', 'value'] : ['labels', 'samples', 'exemplars'])) {
      labels(series.labels, 'labels');
      if (instant) double(series.value, 'value');
      else {
        if (series.samples !== undefined) {
          if (!Array.isArray(series.samples) || series.samples.length === 0) problem('samples is not a non-empty array');
          else {
            series.samples.forEach((s, j) => {
              where.push(`.samples[${j}]`);
              if (onlyKeys(s, ['timestampMs', 'value'])) { int64String(s.timestampMs, 'timestampMs', { required: true }); double(s.value, 'value'); }
              where.pop();
            });
          }
        }
        if (series.exemplars !== undefined) {
          if (!Array.isArray(series.exemplars) || series.exemplars.length === 0) problem('exemplars is not a non-empty array');
          else {
            series.exemplars.forEach((e, j) => {
              where.push(`.exemplars[${j}]`);
              if (onlyKeys(e, ['labels', 'value', 'timestampMs'])) { labels(e.labels, 'labels'); double(e.value, 'value'); int64String(e.timestampMs, 'timestampMs', { required: true }); }
              where.pop();
            });
          }
        }
      }
    }
    where.pop();
  });
  if (body.metrics !== undefined) {
    where.push('metrics');
    if (onlyKeys(body.metrics, ['inspectedTraces', 'inspectedBytes', 'totalBlocks', 'completedJobs', 'totalJobs', 'totalBlockBytes', 'inspectedSpans'])) {
      for (const name of ['inspectedTraces', 'totalBlocks', 'completedJobs', 'totalJobs']) {
        const value = body.metrics[name];
        if (value !== undefined && (!Number.isInteger(value) || value <= 0)) problem(`${name} is not a positive integer number: ${JSON.stringify(value)}`);
      }
      for (const name of ['inspectedBytes', 'totalBlockBytes', 'inspectedSpans']) int64String(body.metrics[name], name);
    }
    where.pop();
  }
  return problems;
}

// Number tokens of a JSON text written otherwise than Go's encoding/json (which jsonpb defers
// to for doubles) writes them: the shortest form that reads back, without an exponent from
// 1e-6 to 1e21. JavaScript's Number#toString follows the same rules (ES6), so a token must
// equal String(Number(token)).
function goNumberProblems(text) {
  const problems = [];
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') {
      for (i += 1; i < text.length && text[i] !== '"'; i += 1) if (text[i] === '\\') i += 1;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      const token = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i))[0];
      if (String(Number(token)) !== token) problems.push(`${token} (Go writes ${String(Number(token))})`);
      i += token.length - 1;
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Comparing answers with the reference

// A label value as sent; a nil label is Tempo's {stringValue:"nil"} (or tracery's empty {},
// reported on its own by the nil-label test), both read as nil here.
const isNilLabelValue = (value) => value && (Object.keys(value).length === 0 || (value.stringValue === 'nil' && Object.keys(value).length === 1));
const readLabels = (list) => (list ?? []).map(({ key, value }) => ({ key, value: isNilLabelValue(value) ? NIL_LABEL : value ?? {} }));
const readValue = (value) => (value === undefined ? 0 : Number(value));
const showLabels = (labels) => `{${labels.map(({ key, value }) => `${key}=${'nil' in value ? 'nil' : JSON.stringify(Object.values(value)[0])}`).join(', ')}}`;
const close = (actual, expected, relative) => (Number.isNaN(expected) ? Number.isNaN(actual)
  : Math.abs(actual - expected) <= relative * Math.abs(expected) + 1e-12);

// Problems of a range answer against the reference's series.
function rangeProblems(body, expected, { quantile }) {
  const problems = [];
  const actual = (body.series ?? []).map((s) => ({ labels: readLabels(s.labels), samples: s.samples ?? [], exemplars: s.exemplars ?? [] }));
  const actualByKey = new Map(actual.map((s) => [labelsKey(s.labels), s]));
  const expectedKeys = new Set(expected.series.map((s) => labelsKey(s.labels)));
  if (actualByKey.size !== actual.length) problems.push('two series with the same labels');
  for (const s of expected.series) {
    const got = actualByKey.get(labelsKey(s.labels));
    if (!got) { if (!s.optional) problems.push(`missing series ${showLabels(s.labels)} (${s.samples.length} samples)`); continue; }
    const gotSamples = new Map(got.samples.map((x) => [String(x.timestampMs), readValue(x.value)]));
    const wantTimes = new Set(s.samples.map((x) => String(x.timestampMs)));
    const wrong = [];
    for (const want of s.samples) {
      const ts = String(want.timestampMs);
      if (!gotSamples.has(ts)) { if (!want.optional) wrong.push(`@${ts} missing (expected ${want.value})`); continue; }
      const value = gotSamples.get(ts);
      if (!close(value, want.value, quantile ? QUANTILE_TOLERANCE : VALUE_TOLERANCE)) wrong.push(`@${ts} ${value}, expected ${want.value}`);
    }
    for (const ts of gotSamples.keys()) if (!wantTimes.has(ts)) wrong.push(`@${ts} unexpected sample ${gotSamples.get(ts)}`);
    const order = got.samples.map((x) => BigInt(x.timestampMs));
    if (order.some((t, i) => i > 0 && t <= order[i - 1])) wrong.push('samples not in ascending time order');
    if (wrong.length) problems.push(`series ${showLabels(s.labels)}: ${sample(wrong, 3)}`);
  }
  for (const s of actual) {
    if (!expectedKeys.has(labelsKey(s.labels))) problems.push(`unexpected series ${showLabels(s.labels)} (${s.samples.length} samples)`);
  }
  return problems;
}

function instantProblems(body, expected, { quantile }) {
  const problems = [];
  const actual = (body.series ?? []).map((s) => ({ labels: readLabels(s.labels), value: readValue(s.value) }));
  const actualByKey = new Map(actual.map((s) => [labelsKey(s.labels), s]));
  const expectedKeys = new Set();
  for (const s of expected.series) {
    expectedKeys.add(labelsKey(s.labels));
    // compare()'s __too_many_values__ markers have no sample: no value (0, omitted).
    if (s.samples.length > 1) throw new Error(`an instant reference series with ${s.samples.length} samples`);
    const want = s.samples[0]?.value ?? 0;
    const got = actualByKey.get(labelsKey(s.labels));
    if (!got) { if (!s.optional) problems.push(`missing series ${showLabels(s.labels)} = ${want}`); continue; }
    if (!close(got.value, want, quantile ? QUANTILE_TOLERANCE : VALUE_TOLERANCE)) {
      problems.push(`series ${showLabels(s.labels)} = ${got.value}, expected ${want}`);
    }
  }
  for (const s of actual) if (!expectedKeys.has(labelsKey(s.labels))) problems.push(`unexpected series ${showLabels(s.labels)} = ${s.value}`);
  return problems;
}

// For a failing count, which placement's spans the difference could come from.
function placementHint(query, g) {
  const byPlacement = {};
  for (const { view } of selectedSpans(query, views, g)) byPlacement[view.placement] = (byPlacement[view.placement] ?? 0) + 1;
  return `selected spans by placement ${JSON.stringify(byPlacement)}`;
}

const rangeParams = (text, step, extra = {}) => ({ q: text, start: rangeWindow.start, end: rangeWindow.end, step, ...extra });
const gridFor = (start, end, step) => makeGrid({ start: BigInt(start) * SECOND, end: BigInt(end) * SECOND, step: stepNanos(step) });

// ---------------------------------------------------------------------------------------

describe('TraceQL metrics against a brute-force reference', () => {
  before(async () => {
    server = await startServer();
    dataset = buildDataset({ now: nowNanos() });
    nowSec = Math.floor(Number(dataset.now / SECOND));
    // Plus a few spans exactly on bucket and window edges.
    dataset.traces.push(...edgeTraces(nowSec));
    views = dataset.traces.map((trace) => buildView(trace, resourceAttributes));
    corpus = buildMetricsCorpus();
    ({ range: rangeWindow, instant: instantWindows, oneStep: oneStepWindow } = metricsWindows(nowSec));

    const plan = sendPlan(dataset);
    const post = async (body) => {
      const response = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, {
        method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body, timeoutMs: 30_000,
      });
      assert.equal(response.status, 200, `POST /v1/traces answered ${response.status}: ${response.text().slice(0, 300)}`);
    };
    for (const body of plan.before) await post(body);
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 60_000 });
    assert.equal(flush.status, 204, `POST /flush answered ${flush.status}: ${flush.text()}`);
    for (const body of plan.after) await post(body);
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('has a corpus of at least 40 range and 10 instant queries that parse and mostly select spans', () => {
    assert.ok(corpus.range.length >= 40, `${corpus.range.length} range queries`);
    assert.ok(corpus.instant.length >= 10, `${corpus.instant.length} instant queries`);
    let selecting = 0;
    for (const { text, step } of corpus.range) {
      const query = parseMetricsQuery(text);
      const count = selectedSpans(query, views, gridFor(rangeWindow.start, rangeWindow.end, step)).length;
      if (count > 0) selecting += 1;
    }
    for (const text of corpus.instant) parseMetricsQuery(text);
    assert.ok(selecting >= corpus.range.length - 2, `only ${selecting} of ${corpus.range.length} queries select any span`);
    const functions = new Set(corpus.range.map(({ text }) => parseMetricsQuery(text).fn));
    assert.equal(functions.size, 9, `functions covered: ${[...functions]}`);
  });

  it('answers every range query (explicit start, end, step) with JSON of the strict shape', async () => {
    const problems = [];
    await runConcurrently(corpus.range, 4, async ({ text, step }) => {
      const answer = await getJson('/api/metrics/query_range', rangeParams(text, step));
      rangeAnswers.push({ text, step, query: parseMetricsQuery(text), answer });
      if (answer.status !== 200) { problems.push(`${text}\n    HTTP ${answer.status}: ${answer.text.slice(0, 200)}`); return; }
      if (!answer.body) { problems.push(`${text}\n    not JSON: ${answer.text.slice(0, 200)}`); return; }
      const shape = metricsShapeProblems(answer.body, { instant: false }).filter((p) => !/AnyValue with 0 values/.test(p));
      if (answer.body.status === 'PARTIAL') shape.push(`PARTIAL: ${answer.body.message}`);
      if (shape.length) problems.push(`${text}\n    ${sample(shape, 3)}`);
    });
    assert.equal(problems.length, 0, `${problems.length} of ${corpus.range.length} queries:\n  ${problems.slice(0, 12).join('\n  ')}`);
  });

  it('returns the reference\'s series, label for label and sample for sample, on query_range', () => {
    assert.ok(rangeAnswers.length > 0, 'the queries were sent');
    const problems = [];
    for (const { text, step, query, answer } of rangeAnswers) {
      if (answer.status !== 200 || !answer.body) continue;
      const g = gridFor(rangeWindow.start, rangeWindow.end, step);
      const expected = evaluateMetrics(query, views, g);
      const own = rangeProblems(answer.body, expected, { quantile: query.fn === 'quantile_over_time' });
      for (const s of answer.body.series ?? []) if (s.exemplars) own.push(`exemplars without the exemplars parameter (${showLabels(readLabels(s.labels))})`);
      if (own.length) problems.push(`${text} (step ${step})\n    ${sample(own, 4)}\n    ${placementHint(query, g)}`);
    }
    assert.equal(problems.length, 0, `${problems.length} of ${rangeAnswers.length} queries:\n  ${problems.slice(0, 15).join('\n  ')}`);
  });

  it('sorts series by labels (key, then value type, then value)', () => {
    const problems = [];
    for (const { text, answer } of rangeAnswers) {
      if (answer.status !== 200 || !answer.body) continue;
      const labels = (answer.body.series ?? []).map((s) => (s.labels ?? []).map(({ key, value }) => ({ key, value: Object.keys(value ?? {}).length ? value : NIL_LABEL })));
      const bad = labels.findIndex((l, i) => i > 0 && compareLabels(labels[i - 1], l) > 0);
      if (bad > 0) problems.push(`${text}: ${showLabels(labels[bad - 1])} before ${showLabels(labels[bad])}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('writes a missing by() value and compare() totals as Tempo does: {"stringValue":"nil"}', () => {
    const problems = [];
    for (const { text, answer } of rangeAnswers) {
      if (answer.status !== 200 || !answer.body) continue;
      for (const s of answer.body.series ?? []) {
        for (const { key, value } of s.labels ?? []) {
          if (value && Object.keys(value).length === 0) problems.push(`${text}: label ${key} = ${JSON.stringify(value)}`);
        }
      }
    }
    const nilQueries = rangeAnswers.filter(({ answer }) => (answer.body?.series ?? []).some((s) => (s.labels ?? []).some(({ value }) => isNilLabelValue(value))));
    assert.ok(nilQueries.length >= 3, `only ${nilQueries.length} answers have a nil label`);
    assert.equal(problems.length, 0, `${problems.length} nil labels not written as {"stringValue":"nil"} (Tempo: Static.AsAnyValue of nil):\n  ${sample(problems, 6)}`);
  });

  it('answers instant queries (/api/metrics/query) with one value per series as the reference', async () => {
    const problems = [];
    const cases = instantWindows.flatMap((window) => corpus.instant.map((text) => ({ text, window })));
    await runConcurrently(cases, 4, async ({ text, window }) => {
      const answer = await getJson('/api/metrics/query', { q: text, ...window });
      instantAnswers.push({ text, window, answer });
      const where = `${text} (${window.start - nowSec}s..${window.end - nowSec}s)`;
      if (answer.status !== 200 || !answer.body) { problems.push(`${where}\n    HTTP ${answer.status}: ${answer.text.slice(0, 200)}`); return; }
      const own = metricsShapeProblems(answer.body, { instant: true }).filter((p) => !/AnyValue with 0 values/.test(p));
      const query = parseMetricsQuery(text);
      const g = makeGrid({ start: BigInt(window.start) * SECOND, end: BigInt(window.end) * SECOND, instant: true });
      own.push(...instantProblems(answer.body, evaluateMetrics(query, views, g), { quantile: query.fn === 'quantile_over_time' }));
      if (own.length) problems.push(`${where}\n    ${sample(own, 4)}\n    ${placementHint(query, g)}`);
    });
    assert.equal(problems.length, 0, `${problems.length} of ${cases.length} instant queries:\n  ${problems.slice(0, 12).join('\n  ')}`);
  });

  it('writes numbers as Go\'s encoding/json does (no exponent between 1e-6 and 1e21)', () => {
    assert.ok(rangeAnswers.length > 0, 'the queries were sent');
    const problems = [];
    for (const { text, answer } of [...rangeAnswers, ...instantAnswers]) {
      if (answer.status !== 200) continue;
      const own = goNumberProblems(answer.text);
      if (own.length) problems.push(`${text}: ${sample([...new Set(own)], 4)}`);
    }
    assert.equal(problems.length, 0, `${problems.length} of ${rangeAnswers.length} answers:\n  ${problems.slice(0, 8).join('\n  ')}`);
  });

  it('treats a range exactly one step wide as one unaligned bucket (start, end]', async () => {
    const problems = [];
    for (const text of ['{ } | count_over_time() by (resource.service.name)', '{ } | rate()', '{ resource.service.name = "edge" } | count_over_time()']) {
      const { start, end, step } = oneStepWindow;
      const answer = await getJson('/api/metrics/query_range', { q: text, start, end, step });
      if (answer.status !== 200 || !answer.body) { problems.push(`${text}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const g = makeGrid({ start: BigInt(start) * SECOND, end: BigInt(end) * SECOND, step: stepNanos(step) });
      assert.equal(g.count, 1);
      const own = rangeProblems(answer.body, evaluateMetrics(parseMetricsQuery(text), views, g), { quantile: false });
      if (own.length) problems.push(`${text}: ${sample(own, 4)}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('uses Tempo\'s default step without `step`, and the window before now with `since`', async () => {
    const problems = [];
    const text = '{ } | count_over_time() by (resource.region)';
    const query = parseMetricsQuery(text);
    {
      const answer = await getJson('/api/metrics/query_range', { q: text, start: rangeWindow.start, end: rangeWindow.end });
      const start = BigInt(rangeWindow.start) * SECOND;
      const end = BigInt(rangeWindow.end) * SECOND;
      const g = makeGrid({ start, end, step: defaultStepNanos(start, end) });
      if (answer.status !== 200 || !answer.body) problems.push(`default step: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
      else {
        const own = rangeProblems(answer.body, evaluateMetrics(query, views, g), { quantile: false });
        if (own.length) problems.push(`default step (${g.step / SECOND}s): ${sample(own, 4)}`);
      }
    }
    for (const { since, step } of [{ since: '1h' }, { since: '40m', step: '2m' }, { since: undefined, step: '5m' }]) {
      // The server's `now` lies between the two clock readings; a step boundary may fall
      // between them, so either grid is right.
      const before = BigInt(Date.now()) * 1_000_000n;
      const answer = await getJson('/api/metrics/query_range', { q: text, since, step });
      const afterNs = BigInt(Date.now()) * 1_000_000n + 1_000_000n;
      if (answer.status !== 200 || !answer.body) { problems.push(`since=${since}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const window = stepNanos(since ?? '1h'); // no since, start or end: the last hour
      const grids = [before, afterNs].map((end) => makeGrid({ start: end - window, end, step: step ? stepNanos(step) : defaultStepNanos(end - window, end) }));
      const results = grids.map((g) => rangeProblems(answer.body, evaluateMetrics(query, views, g), { quantile: false }));
      if (results.every((r) => r.length)) problems.push(`since=${since} step=${step ?? '(default)'}: ${sample(results[0], 4)}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('accepts start and end as unix seconds, fractional seconds, nanoseconds and RFC 3339', async () => {
    const text = '{ status = error } | count_over_time() by (resource.service.name)';
    const query = parseMetricsQuery(text);
    const { start, end } = rangeWindow;
    const iso = (sec) => new Date(sec * 1000).toISOString();
    const forms = [
      { name: 'seconds', start: String(start), end: String(end) },
      { name: 'fractional seconds', start: `${start}.25`, end: `${end}.5` },
      { name: 'nanoseconds', start: `${start}000000000`, end: `${end}000000000` },
      { name: 'RFC 3339', start: iso(start).replace('.000Z', 'Z'), end: iso(end).replace('.000Z', 'Z') },
      { name: 'RFC 3339 with fraction', start: iso(start), end: iso(end) },
      { name: 'RFC 3339 with offset', start: iso(start).replace('.000Z', '+00:00'), end: iso(end).replace('.000Z', '+00:00') },
      { name: 'the legacy `query` parameter', start: String(start), end: String(end), legacy: true },
    ];
    const problems = [];
    for (const form of forms) {
      const answer = await getJson('/api/metrics/query_range', { [form.legacy ? 'query' : 'q']: text, start: form.start, end: form.end, step: '60s' });
      if (answer.status !== 200 || !answer.body) { problems.push(`${form.name} (${form.start}, ${form.end}): HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const own = rangeProblems(answer.body, evaluateMetrics(query, views, gridFor(start, end, '60s')), { quantile: false });
      if (own.length) problems.push(`${form.name}: ${sample(own, 3)}`);
      const instant = await getJson('/api/metrics/query', { [form.legacy ? 'query' : 'q']: text, start: form.start, end: form.end });
      if (instant.status !== 200) problems.push(`${form.name} instant: HTTP ${instant.status} ${instant.text.slice(0, 200)}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('gives at most `exemplars` exemplars, each a real trace whose span starts in the sample\'s bucket', async () => {
    const cases = [
      { text: '{ } | count_over_time()', exemplars: 5 },
      { text: '{ } | rate() by (resource.service.name)', exemplars: 5 },
      { text: '{ } | max_over_time(duration) by (resource.service.name)', exemplars: 5 },
      { text: '{ status = error } | quantile_over_time(duration, 0.5, 0.9)', exemplars: 5 },
      { text: '{ } | histogram_over_time(duration)', exemplars: 5 },
      { text: '{ } | count_over_time() by (resource.service.name) | topk(2)', exemplars: 5 },
      { text: '{ } | rate() with(exemplars=3)', exemplars: 50 },
      { text: '{ } | rate() with(exemplars=false)', exemplars: 5 },
      { text: '{ } | compare({ status = error })', exemplars: 5 },
      { text: '{ } | count_over_time() by (kind)', exemplars: 500 }, // capped at 100
      { text: '{ } | avg_over_time(span.payload.size) with(exemplars=150)', exemplars: 5 },
    ];
    const problems = [];
    const choiceProblems = [];
    const fetched = new Map();
    const traceExists = async (id) => {
      if (!fetched.has(id)) fetched.set(id, (await httpRequest(`${server.httpUrl}/api/traces/${id}`, { timeoutMs: 30_000 })).status);
      return fetched.get(id) === 200;
    };
    const viewById = new Map(views.map((v) => [v.traceId, v]));
    for (const { text, exemplars } of cases) {
      const query = parseMetricsQuery(text);
      const step = '2m';
      const g = gridFor(rangeWindow.start, rangeWindow.end, step);
      const answer = await getJson('/api/metrics/query_range', rangeParams(text, step, { exemplars }));
      if (answer.status !== 200 || !answer.body) { problems.push(`${text}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const expected = evaluateMetrics(query, views, g, { exemplars: Math.min(exemplars, MAX_EXEMPLARS) });
      const own = [];
      const limit = exemplarLimit(query, Math.min(exemplars, MAX_EXEMPLARS));
      const all = (answer.body.series ?? []).flatMap((s) => (s.exemplars ?? []).map((e) => ({ series: s, e })));
      if (all.length > limit) own.push(`${all.length} exemplars, at most ${limit} allowed`);
      const wantCount = expected.series.reduce((n, s) => n + s.exemplars.length, 0);
      if (limit > 0 && wantCount > 0 && all.length === 0) own.push('no exemplars at all');
      const selected = new Set(selectedSpans(query, views, g).map(({ view, span }) => `${view.traceId}/${span.spanId}`));
      for (const { series, e } of all) {
        const label = (key) => (e.labels ?? []).find((l) => l.key === key)?.value?.stringValue;
        const traceId = label('trace:id');
        const spanId = label('span:id');
        if (!/^[0-9a-f]{32}$/.test(traceId ?? '')) { own.push(`exemplar trace:id ${JSON.stringify(traceId)} is not 32 hex digits`); continue; }
        if (!/^[0-9a-f]{16}$/.test(spanId ?? '')) { own.push(`exemplar span:id ${JSON.stringify(spanId)} is not 16 hex digits`); continue; }
        if (!(await traceExists(traceId))) own.push(`exemplar trace ${traceId}: GET /api/traces answered ${fetched.get(traceId)}`);
        const view = viewById.get(traceId);
        const span = view?.spans.find((s) => s.spanId === spanId);
        if (!span) { own.push(`exemplar ${traceId}/${spanId} is no span sent`); continue; }
        if (!selected.has(`${traceId}/${spanId}`)) own.push(`exemplar ${traceId}/${spanId} is a span the query does not select`);
        const bucket = g.bucketOf(span.start);
        const stamp = bucket >= 0 ? String(g.timestampMs(bucket)) : null;
        if (!(series.samples ?? []).some((s) => s.timestampMs === stamp)) own.push(`exemplar ${traceId}/${spanId} starts in the bucket stamped ${stamp}, where its series has no sample`);
        if (e.timestampMs !== String(span.start / 1_000_000n)) own.push(`exemplar ${spanId} timestampMs ${e.timestampMs}, its span starts at ${span.start / 1_000_000n} ms`);
        const counting = ['rate', 'count_over_time', 'histogram_over_time'].includes(query.fn);
        const measured = counting ? NaN : numericValue(evaluateSpanField(query.attr, span, view));
        if (!close(readValue(e.value), measured, VALUE_TOLERANCE)) own.push(`exemplar ${spanId} value ${JSON.stringify(e.value)}, expected ${counting ? '"NaN"' : measured}`);
      }
      if (own.length) problems.push(`${text} (exemplars=${exemplars}): ${sample(own, 4)}`);
      // tracery's documented choice: per slot the smallest (trace ID, span ID).
      const key = (traceId, spanId) => `${traceId}/${spanId}`;
      const want = expected.series.flatMap((s) => s.exemplars.map((e) => key(e.traceId, e.spanId))).sort();
      const got = all.map(({ e }) => key((e.labels ?? []).find((l) => l.key === 'trace:id')?.value?.stringValue, (e.labels ?? []).find((l) => l.key === 'span:id')?.value?.stringValue)).sort();
      if (want.join() !== got.join()) choiceProblems.push(`${text}: got [${sample(got, 5)}], documented choice [${sample(want, 5)}]`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
    assert.equal(choiceProblems.length, 0, `exemplars not chosen as metrics.h documents:\n${choiceProblems.join('\n')}`);
  });

  it('refuses search queries, malformed queries and bad parameters with 400', async () => {
    const problems = [];
    const expect400 = async (path, params, what, { position = false } = {}) => {
      const answer = await getJson(path, params);
      if (answer.status !== 400) problems.push(`${what}: HTTP ${answer.status} ${answer.text.slice(0, 150)}`);
      else if (!/[a-z]{4,}/i.test(answer.text)) problems.push(`${what}: 400 without a reason: ${answer.text.slice(0, 150)}`);
      else if (position && !/\d+:\d+/.test(answer.text)) problems.push(`${what}: 400 without a line:column position: ${answer.text.slice(0, 150)}`);
    };
    const { start, end } = rangeWindow;
    for (const text of SEARCH_QUERIES) {
      await expect400('/api/metrics/query_range', { q: text, start, end, step: '60s' }, `search query ${text} on query_range`);
      await expect400('/api/metrics/query', { q: text, start, end }, `search query ${text} on query`);
    }
    for (const { text, position } of MALFORMED_METRICS) {
      await expect400('/api/metrics/query_range', { q: text, start, end, step: '60s' }, `malformed ${JSON.stringify(text)}`, { position });
      await expect400('/api/metrics/query', { q: text, start, end }, `malformed ${JSON.stringify(text)} (instant)`, { position });
    }
    const q = '{ } | rate()';
    const bad = [
      [{ start, end }, 'no q'],
      [{ q: '', start, end }, 'empty q'],
      [{ q, start, end, step: '0' }, 'step=0'],
      [{ q, start, end, step: '0s' }, 'step=0s'],
      [{ q, start, end, step: '-60s' }, 'negative step'],
      [{ q, start, end, step: 'often' }, 'garbage step'],
      [{ q, start, end, step: '1ms' }, 'a step giving more than 100000 buckets'],
      [{ q, start: end, end: start, step: '60s' }, 'end before start'],
      [{ q, start, end: start, step: '60s' }, 'end equal to start'],
      [{ q, start: 'yesterday', end, step: '60s' }, 'garbage start'],
      [{ q, start, end: '12:00', step: '60s' }, 'garbage end'],
      [{ q, start: '2024-13-45T00:00:00Z', end, step: '60s' }, 'invalid RFC 3339 start'],
      [{ q, start, end, step: '60s', exemplars: 'many' }, 'garbage exemplars'],
      [{ q, since: 'a while', step: '60s' }, 'garbage since'],
    ];
    for (const [params, what] of bad) await expect400('/api/metrics/query_range', params, what);
    for (const [params, what] of [[{ q, start: end, end: start }, 'end before start'], [{ q, start: 'x', end }, 'garbage start'], [{ start, end }, 'no q']]) {
      await expect400('/api/metrics/query', params, `instant: ${what}`);
    }
    assert.equal(problems.length, 0, `${problems.length} requests not refused as expected:\n  ${problems.join('\n  ')}`);
  });
});
