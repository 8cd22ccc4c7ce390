// Search answers as Grafana gets them from Tempo: a generated data set of ~400 traces (in blocks,
// live, and split between a block and live data) is sent to a real tracery, and every query of
// the corpus (traceql/corpus.mjs) is asked of GET /api/search and compared with a brute-force
// reference evaluator (traceql/reference.mjs): which traces, in which order, their summary
// fields, and each spanset's matched count, span IDs and attributes. Malformed queries must
// get 400. The tag endpoints (v1 and v2) are checked against the keys and values in the data.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, reportServerOnFailure, httpRequest } from './harness.mjs';
import { nowNanos } from './load.mjs';
import { buildDataset, resourceAttributes, sendPlan } from './traceql/dataset.mjs';
import { buildCorpus } from './traceql/corpus.mjs';
import { parseQuery, buildView, searchViews, trimTraceId } from './traceql/reference.mjs';
import { shapeProblems, compareAnswer, sample, getJson as getJsonFrom, runConcurrently } from './traceql/api.mjs';
import { lezerAccepts, lezerGapFor } from './traceql/lezer.mjs';

const SPSS = 100;
const LIMIT = 1000;
const PLACEMENTS = ['block', 'live', 'split'];
const INTRINSIC_TAGS = ['duration', 'name', 'status', 'statusMessage', 'kind', 'rootServiceName', 'rootName', 'traceDuration',
  'event:name', 'event:timeSinceStart', 'link:spanID', 'link:traceID', 'instrumentation:name', 'instrumentation:version',
  'trace:id', 'span:id', 'span:parentID', 'span:status', 'span:statusMessage', 'span:duration', 'span:name', 'span:kind',
  'trace:rootName', 'trace:rootService', 'trace:duration'];

let server;
let dataset;
let views;
let viewById; // trimmed trace ID -> view
let corpus;
let window; // { start, end } unix seconds
// Per valid query: { text, expected (reference matches), status, body, error }
const answers = [];


const getJson = (path, params) => getJsonFrom(server, path, params);

// ---------------------------------------------------------------------------------------

describe('TraceQL search against a brute-force reference', () => {
  before(async () => {
    server = await startServer();
    dataset = buildDataset({ now: nowNanos() });
    views = dataset.traces.map((trace) => buildView(trace, resourceAttributes));
    viewById = new Map(views.map((view) => [trimTraceId(view.traceId), view]));
    corpus = buildCorpus(dataset);
    const nowSeconds = Math.floor(Number(dataset.now / 1_000_000_000n));
    window = { start: nowSeconds - 3600, end: nowSeconds + 120 };

    const plan = sendPlan(dataset);
    const post = async (body) => {
      const response = await httpRequest(`${server.otlpHttpUrl}/v1/traces`, {
        method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body, timeoutMs: 30_000,
      });
      assert.equal(response.status, 200, `POST /v1/traces answered ${response.status}: ${response.text().slice(0, 300)}`);
    };
    for (const body of plan.before) await post(body);
    // POST /flush answers once every waiting trace is written to a block (docs/api.md).
    const flush = await httpRequest(`${server.httpUrl}/flush`, { method: 'POST', timeoutMs: 60_000 });
    assert.equal(flush.status, 204, `POST /flush answered ${flush.status}: ${flush.text()}`);
    for (const body of plan.after) await post(body);
  });
  reportServerOnFailure(() => server, { afterEach, after });

  it('has a corpus that parses with Grafana\'s grammar and matches some but not all traces', () => {
    assert.ok(corpus.valid.length >= 250, `${corpus.valid.length} valid queries`);
    assert.ok(corpus.malformed.length >= 80, `${corpus.malformed.length} malformed queries`);
    const refusedByLezer = corpus.valid.filter((text) => !lezerAccepts(text) && !lezerGapFor(text));
    assert.deepEqual(refusedByLezer, [], 'valid queries @grafana/lezer-traceql does not parse');
    let some = 0;
    for (const text of corpus.valid) {
      const count = searchViews(parseQuery(text), views).length;
      if (count > 0 && count < views.length) some += 1;
    }
    assert.ok(some >= corpus.valid.length * 0.75, `only ${some} of ${corpus.valid.length} queries match some but not all traces`);
  });

  it('answers every valid query (limit 1000, spss 100) with JSON of the strict shape', async () => {
    const problems = [];
    await runConcurrently(corpus.valid, 4, async (text) => {
      const query = parseQuery(text);
      const matches = searchViews(query, views);
      const answer = await getJson('/api/search', { q: text, limit: LIMIT, spss: SPSS, ...window });
      answers.push({ text, matches, answer });
      if (answer.status !== 200) { problems.push(`${text}\n    HTTP ${answer.status}: ${answer.text.slice(0, 200)}`); return; }
      if (!answer.body) { problems.push(`${text}\n    not JSON: ${answer.text.slice(0, 200)}`); return; }
      const shape = shapeProblems(answer.body);
      if (shape.length) problems.push(`${text}\n    ${sample(shape, 3)}`);
    });
    assert.equal(problems.length, 0, `${problems.length} of ${corpus.valid.length} queries:\n  ${problems.slice(0, 12).join('\n  ')}`);
  });

  it('returns exactly the matching traces, newest first (ties by trace ID)', () => {
    assert.ok(answers.length > 0, 'the queries were sent');
    const problems = [];
    for (const { text, matches, answer } of answers) {
      if (answer.status !== 200 || !answer.body) continue;
      const result = compareAnswer(answer, matches, { limit: LIMIT, spss: SPSS, viewById });
      const missingOrExtra = Object.values(result.byPlacement).flat().filter((p) => /^(missing|unexpected) trace/.test(p));
      const all = result.orderProblems.concat(missingOrExtra);
      if (all.length) {
        problems.push(`${text}\n    expected ${matches.length} traces [${sample(matches.map((m) => trimTraceId(m.view.traceId)), 3)}], `
          + `got ${(answer.body.traces ?? []).length}; ${sample(all, 3)}`);
      }
    }
    assert.equal(problems.length, 0, `${problems.length} of ${answers.length} queries:\n  ${problems.slice(0, 15).join('\n  ')}`);
  });

  for (const placement of PLACEMENTS) {
    it(`shows each matching trace ${placement === 'block' ? 'in a block' : placement === 'live' ? 'still live' : 'split between a block and live data'} as the reference does (summary, spansets, spans, attributes)`, () => {
      assert.ok(answers.length > 0, 'the queries were sent');
      const problems = [];
      for (const { text, matches, answer } of answers) {
        if (answer.status !== 200 || !answer.body) continue;
        const result = compareAnswer(answer, matches, { limit: LIMIT, spss: SPSS, viewById });
        const own = result.byPlacement[placement].filter((p) => !/^(missing|unexpected) trace/.test(p));
        if (own.length) problems.push(`${text}\n    ${sample(own, 3)}`);
      }
      assert.equal(problems.length, 0, `${problems.length} queries, traces ${placement}:\n  ${problems.slice(0, 12).join('\n  ')}`);
    });
  }

  it('returns the 20 most recent matches by default and honours limit and spss', async () => {
    const cases = [
      { text: '{ }', params: {} },
      { text: '{ status = error }', params: {} },
      { text: '{ kind = server } >> { status = error }', params: {} },
      { text: '{ resource.service.name = "checkout" }', params: { limit: 7 } },
      { text: '{ } | count() > 10', params: { limit: 3, spss: 2 } },
      { text: '{ span.http.method != nil }', params: { spss: 1 } },
    ];
    const problems = [];
    for (const { text, params } of cases) {
      const limit = params.limit ?? 20;
      const spss = params.spss ?? 3;
      const matches = searchViews(parseQuery(text), views);
      const answer = await getJson('/api/search', { q: text, ...params, ...window });
      if (answer.status !== 200 || !answer.body) { problems.push(`${text}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const result = compareAnswer(answer, matches, { limit, spss, viewById });
      const all = result.orderProblems.concat(...Object.values(result.byPlacement));
      const got = (answer.body.traces ?? []).length;
      if (got !== Math.min(limit, matches.length)) all.unshift(`${got} traces, expected ${Math.min(limit, matches.length)}`);
      if (all.length) problems.push(`${text} ${JSON.stringify(params)}: ${sample(all, 4)}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('with(most_recent=false), as Tempo 2.7, returns the first `limit` matches found, each shown as the reference does, newest first', async () => {
    const cases = [
      { text: '{ }', params: {} },
      { text: '{ status = error }', params: { limit: 5 } },
      { text: '{ kind = server } >> { status = error }', params: { limit: 3 } },
      { text: '{ } | count() > 10', params: { limit: 3, spss: 2 } },
    ];
    const problems = [];
    for (const { text, params } of cases) {
      const limit = params.limit ?? 20;
      const spss = params.spss ?? 3;
      const matches = searchViews(parseQuery(text), views);
      assert.ok(matches.length > limit, `${text}: the dataset has more matches (${matches.length}) than the limit`);
      const answer = await getJson('/api/search', { q: `${text} with(most_recent=false)`, ...params, ...window });
      if (answer.status !== 200 || !answer.body) { problems.push(`${text}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const traces = answer.body.traces ?? [];
      const all = [];
      if (traces.length !== limit) all.push(`${traces.length} traces, expected ${limit}`);
      // Every match is expected: those returned must be matches, each shown as the reference shows it.
      const result = compareAnswer(answer, matches, { limit: matches.length, spss, viewById });
      all.push(...result.orderProblems, ...Object.values(result.byPlacement).flat().filter((p) => !p.startsWith('missing trace')));
      for (let i = 1; i < traces.length; i++) {
        if (BigInt(traces[i - 1].startTimeUnixNano) < BigInt(traces[i].startTimeUnixNano)) all.push(`not newest first at ${i}`);
      }
      if (all.length) problems.push(`${text} ${JSON.stringify(params)}: ${sample(all, 4)}`);
    }
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('refuses malformed and unsupported queries with 400 and a reason', async () => {
    const problems = [];
    await runConcurrently(corpus.malformed, 4, async (text) => {
      const answer = await getJson('/api/search', { q: text, limit: 20, ...window });
      if (answer.status !== 400) problems.push(`${JSON.stringify(text)}: HTTP ${answer.status} ${answer.text.slice(0, 120)}`);
      else if (!/\d+:\d+|[a-z]{4,}/i.test(answer.text)) problems.push(`${JSON.stringify(text)}: 400 without a position or reason: ${answer.text.slice(0, 120)}`);
    });
    assert.equal(problems.length, 0, `${problems.length} of ${corpus.malformed.length} malformed queries:\n  ${problems.slice(0, 20).join('\n  ')}`);
  });

  // ---------------------------------------------------------------------------------------
  // Tags

  const keysByScope = () => {
    const scopes = { resource: new Set(), span: new Set(), event: new Set(), link: new Set(), instrumentation: new Set() };
    for (const view of views) {
      for (const s of view.spans) {
        for (const key of s.attributes.keys()) scopes.span.add(key);
        for (const key of s.resource.keys()) scopes.resource.add(key);
        for (const key of s.scopeAttributes.keys()) scopes.instrumentation.add(key);
        for (const event of s.events) for (const key of event.attributes.keys()) scopes.event.add(key);
        for (const link of s.links) for (const key of link.attributes.keys()) scopes.link.add(key);
      }
    }
    return scopes;
  };
  const sorted = (iterable) => [...iterable].sort();

  it('lists the tag names of every scope on /api/v2/search/tags', async () => {
    const expected = { ...keysByScope(), intrinsic: new Set(INTRINSIC_TAGS) };
    const answer = await getJson('/api/v2/search/tags', window);
    assert.equal(answer.status, 200, answer.text.slice(0, 300));
    assert.ok(Array.isArray(answer.body?.scopes), `no scopes array: ${answer.text.slice(0, 300)}`);
    const got = Object.fromEntries(answer.body.scopes.map((s) => [s.name, s.tags ?? []]));
    for (const scope of answer.body.scopes) {
      assert.deepEqual(Object.keys(scope).filter((k) => !['name', 'tags'].includes(k)), [], `unknown fields in scope ${scope.name}`);
    }
    assert.deepEqual(sorted(Object.keys(got)), sorted(Object.keys(expected)), 'scopes');
    for (const [scope, tags] of Object.entries(expected)) {
      assert.deepEqual(sorted(got[scope]), sorted(tags), `tags of scope ${scope}`);
    }
    for (const scope of ['span', 'resource', 'intrinsic', 'event', 'link', 'instrumentation']) {
      const filtered = await getJson('/api/v2/search/tags', { scope, ...window });
      assert.equal(filtered.status, 200, `scope=${scope}: ${filtered.text.slice(0, 200)}`);
      assert.deepEqual(filtered.body.scopes.map((s) => s.name), [scope], `scope=${scope} lists only that scope`);
      assert.deepEqual(sorted(filtered.body.scopes[0].tags), sorted(expected[scope]), `scope=${scope} tags`);
    }
    const bad = await getJson('/api/v2/search/tags', { scope: 'nonsense', ...window });
    assert.equal(bad.status, 400, `scope=nonsense: ${bad.text.slice(0, 200)}`);
  });

  const valueKey = (type, value) => `${type}:${value}`;
  function expectedValues(tag, filter) {
    const query = filter ? parseQuery(filter) : null;
    const [scope, ...rest] = tag.split('.');
    const name = rest.join('.');
    const values = new Set();
    for (const view of views) {
      const spans = query ? (searchViews(query, [view])[0]?.spansets ?? []).flatMap((set) => set.spans.map((i) => view.spans[i])) : view.spans;
      for (const s of spans) {
        const sources = scope === 'span' ? [s.attributes] : scope === 'resource' ? [s.resource] : scope === 'event' ? s.events.map((e) => e.attributes)
          : scope === 'link' ? s.links.map((l) => l.attributes) : scope === 'instrumentation' ? [s.scopeAttributes] : [];
        for (const source of sources) {
          const value = source.get(name);
          if (!value) continue;
          if (value.t === 'string') values.add(valueKey('string', value.v));
          else if (value.t === 'int') values.add(valueKey('int', String(value.v)));
          else if (value.t === 'float') values.add(valueKey('float', String(value.v)));
          else if (value.t === 'bool') values.add(valueKey('bool', String(value.v)));
        }
        if (tag === 'name') values.add(valueKey('string', s.span.name));
      }
    }
    return values;
  }

  it('lists tag values with their types on /api/v2/search/tag/{tag}/values, filtered by q', async () => {
    const cases = [
      { tag: 'resource.service.name' }, { tag: 'span.http.method' }, { tag: 'span.http.status_code' }, { tag: 'span.retry.ratio' },
      { tag: 'span.cache.hit' }, { tag: 'span.code' }, { tag: 'name' }, { tag: 'event.exception.type' }, { tag: 'link.relation' },
      { tag: 'instrumentation.library.language' }, { tag: 'resource.host.cpu.count' },
      { tag: 'span.http.method', q: '{ resource.service.name = "payment" }' },
      { tag: 'resource.service.name', q: '{ status = error && span.http.status_code = 503 }' },
      { tag: 'span.http.status_code', q: '{ span.http.method = "DELETE" }' },
    ];
    const problems = [];
    for (const { tag, q } of cases) {
      const answer = await getJson(`/api/v2/search/tag/${encodeURIComponent(tag)}/values`, { q, ...window });
      if (answer.status !== 200 || !Array.isArray(answer.body?.tagValues)) { problems.push(`${tag} ${q ?? ''}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`); continue; }
      const got = new Set(answer.body.tagValues.map((v) => valueKey(v.type, v.value)));
      const want = expectedValues(tag, q);
      const missing = [...want].filter((v) => !got.has(v));
      const extra = [...got].filter((v) => !want.has(v));
      if (missing.length || extra.length) problems.push(`${tag} ${q ?? ''}: missing [${sample(missing)}], unexpected [${sample(extra)}]`);
    }
    for (const [tag, keywords] of [['status', ['ok', 'error', 'unset']], ['span:status', ['ok', 'error', 'unset']],
      ['kind', ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']]]) {
      const answer = await getJson(`/api/v2/search/tag/${encodeURIComponent(tag)}/values`, window);
      const got = (answer.body?.tagValues ?? []).map((v) => valueKey(v.type, v.value));
      if (answer.status !== 200 || JSON.stringify(sorted(got)) !== JSON.stringify(sorted(keywords.map((k) => valueKey('keyword', k))))) {
        problems.push(`${tag}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
      }
    }
    const invalidTag = await getJson(`/api/v2/search/tag/${encodeURIComponent('app.user.id')}/values`, window);
    if (invalidTag.status !== 400) problems.push(`unscoped tag app.user.id: HTTP ${invalidTag.status}, expected 400`);
    assert.equal(problems.length, 0, problems.join('\n'));
  });

  it('answers the v1 tag endpoints', async () => {
    const scopes = keysByScope();
    const names = await getJson('/api/search/tags', window);
    assert.equal(names.status, 200, names.text.slice(0, 300));
    assert.ok(Array.isArray(names.body?.tagNames), `no tagNames: ${names.text.slice(0, 300)}`);
    const got = new Set(names.body.tagNames);
    const missing = [...scopes.span, ...scopes.resource].filter((key) => !got.has(key));
    assert.deepEqual(missing, [], 'span and resource attribute names missing from v1 tagNames');
    const everything = new Set([...Object.values(scopes).flatMap((s) => [...s]), ...INTRINSIC_TAGS]);
    assert.deepEqual([...got].filter((key) => !everything.has(key)), [], 'v1 tag names that are not in the data');

    const values = await getJson('/api/search/tag/service.name/values', window);
    assert.equal(values.status, 200, values.text.slice(0, 300));
    const services = new Set(values.body?.tagValues ?? []);
    const serviceNames = [...new Set(views.flatMap((v) => v.spans.map((s) => s.resource.get('service.name').v)))];
    assert.deepEqual(serviceNames.filter((name) => !services.has(name)), [], 'service names missing from v1 tag values');
    const spanLevel = new Set(views.flatMap((v) => v.spans.map((s) => s.attributes.get('service.name')?.v).filter(Boolean)));
    assert.deepEqual([...services].filter((name) => !serviceNames.includes(name) && !spanLevel.has(name)), [], 'v1 values not in the data');
  });
});

