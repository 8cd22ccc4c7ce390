// How a /api/search answer is checked: its strict JSON shape (gogo jsonpb of
// tempopb.SearchResponse) and its content against the reference's matches. Also builds the
// answer the contract calls for from the reference, which selfcheck.mjs feeds back through the
// checks to prove they accept a correct answer.

import { httpRequest } from '../harness.mjs';
import { trimTraceId, serviceStats, staticToAnyValue } from './reference.mjs';

export const ROOT_NOT_RECEIVED = '<root span not yet received>';
export const sample = (list, count = 5) => list.slice(0, count).join(', ') + (list.length > count ? `, … (${list.length} in all)` : '');

// ---------------------------------------------------------------------------------------
// Strict shape of a /api/search answer (gogo jsonpb of tempopb.SearchResponse): no unknown
// field anywhere, 64-bit integers as decimal strings, 32-bit ones as numbers, zero values
// omitted. Returns a list of problems.

export function shapeProblems(body) {
  const problems = [];
  const where = [];
  const problem = (message) => problems.push(`${where.join('')}: ${message}`);
  const onlyKeys = (object, allowed) => {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) { problem('not an object'); return false; }
    for (const key of Object.keys(object)) if (!allowed.includes(key)) problem(`unknown field "${key}"`);
    return true;
  };
  const uint64 = (value, name) => {
    if (value === undefined) return;
    if (typeof value !== 'string' || !/^[0-9]+$/.test(value)) problem(`${name} is not a decimal string: ${JSON.stringify(value)}`);
    else if (value === '0') problem(`${name} is zero but present (zero values are omitted)`);
  };
  const uint32 = (value, name) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < 0) problem(`${name} is not a non-negative integer number: ${JSON.stringify(value)}`);
    else if (value === 0) problem(`${name} is zero but present (zero values are omitted)`);
  };
  const nonEmptyString = (value, name) => {
    if (value === undefined) return;
    if (typeof value !== 'string') problem(`${name} is not a string`);
    else if (value === '') problem(`${name} is empty but present (zero values are omitted)`);
  };
  const anyValue = (value) => {
    if (!onlyKeys(value, ['stringValue', 'intValue', 'doubleValue', 'boolValue', 'arrayValue', 'kvlistValue', 'bytesValue'])) return;
    const keys = Object.keys(value);
    if (keys.length !== 1) { problem(`an AnyValue with ${keys.length} values`); return; }
    if ('stringValue' in value && typeof value.stringValue !== 'string') problem('stringValue is not a string');
    if ('intValue' in value && (typeof value.intValue !== 'string' || !/^-?[0-9]+$/.test(value.intValue))) problem('intValue is not a decimal string');
    if ('doubleValue' in value && typeof value.doubleValue !== 'number' && !['NaN', 'Infinity', '-Infinity'].includes(value.doubleValue)) problem('doubleValue is not a number');
    if ('boolValue' in value && typeof value.boolValue !== 'boolean') problem('boolValue is not a boolean');
    if ('arrayValue' in value) {
      if (onlyKeys(value.arrayValue, ['values'])) (value.arrayValue.values ?? []).forEach(anyValue);
    }
  };
  const keyValues = (list, name) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) { problem(`${name} is not an array`); return; }
    if (list.length === 0) problem(`${name} is empty but present (zero values are omitted)`);
    list.forEach((kv, i) => {
      where.push(`.${name}[${i}]`);
      if (onlyKeys(kv, ['key', 'value'])) {
        nonEmptyString(kv.key, 'key');
        if (kv.value === undefined) problem('no value'); else anyValue(kv.value);
      }
      where.pop();
    });
  };
  const span = (s) => {
    if (!onlyKeys(s, ['spanID', 'name', 'startTimeUnixNano', 'durationNanos', 'attributes'])) return;
    if (typeof s.spanID !== 'string' || !/^[0-9a-f]{16}$/.test(s.spanID)) problem(`spanID is not 16 lower-case hex digits: ${JSON.stringify(s.spanID)}`);
    nonEmptyString(s.name, 'name');
    uint64(s.startTimeUnixNano, 'startTimeUnixNano');
    uint64(s.durationNanos, 'durationNanos');
    keyValues(s.attributes, 'attributes');
  };
  const spanSet = (set) => {
    if (!onlyKeys(set, ['spans', 'matched', 'attributes'])) return;
    if (set.spans !== undefined) {
      if (!Array.isArray(set.spans) || set.spans.length === 0) problem('spans is not a non-empty array');
      else set.spans.forEach((s, i) => { where.push(`.spans[${i}]`); span(s); where.pop(); });
    }
    uint32(set.matched, 'matched');
    keyValues(set.attributes, 'attributes');
  };
  if (!onlyKeys(body, ['traces', 'metrics'])) return problems;
  if (body.traces !== undefined) {
    // An empty list may be omitted or sent as []: gogo jsonpb omits only nil slices, and
    // Tempo's combiner hands it an empty, non-nil one when nothing matched.
    if (!Array.isArray(body.traces)) problem('traces is not an array');
    else {
      body.traces.forEach((trace, i) => {
        where.push(`traces[${i}]`);
        if (onlyKeys(trace, ['traceID', 'rootServiceName', 'rootTraceName', 'startTimeUnixNano', 'durationMs', 'spanSet', 'spanSets', 'serviceStats'])) {
          if (typeof trace.traceID !== 'string' || !/^[1-9a-f][0-9a-f]*$/.test(trace.traceID)) problem(`traceID is not lower-case hex without leading zeros: ${JSON.stringify(trace.traceID)}`);
          nonEmptyString(trace.rootServiceName, 'rootServiceName');
          nonEmptyString(trace.rootTraceName, 'rootTraceName');
          uint64(trace.startTimeUnixNano, 'startTimeUnixNano');
          uint32(trace.durationMs, 'durationMs');
          if (trace.spanSet !== undefined) { where.push('.spanSet'); spanSet(trace.spanSet); where.pop(); }
          if (trace.spanSets !== undefined) {
            if (!Array.isArray(trace.spanSets) || trace.spanSets.length === 0) problem('spanSets is not a non-empty array');
            else trace.spanSets.forEach((set, j) => { where.push(`.spanSets[${j}]`); spanSet(set); where.pop(); });
          }
          if (trace.serviceStats !== undefined && onlyKeys(trace.serviceStats, Object.keys(trace.serviceStats))) {
            for (const [service, stats] of Object.entries(trace.serviceStats)) {
              where.push(`.serviceStats[${JSON.stringify(service)}]`);
              if (onlyKeys(stats, ['spanCount', 'errorCount'])) { uint32(stats.spanCount, 'spanCount'); uint32(stats.errorCount, 'errorCount'); }
              where.pop();
            }
          }
        }
        where.pop();
      });
    }
  }
  if (body.metrics !== undefined) {
    where.push('metrics');
    if (onlyKeys(body.metrics, ['inspectedTraces', 'inspectedBytes', 'totalBlocks', 'completedJobs', 'totalJobs', 'totalBlockBytes', 'inspectedSpans'])) {
      for (const name of ['inspectedTraces', 'totalBlocks', 'completedJobs', 'totalJobs']) uint32(body.metrics[name], name);
      for (const name of ['inspectedBytes', 'totalBlockBytes', 'inspectedSpans']) uint64(body.metrics[name], name);
    }
    where.pop();
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Comparing one answer with the reference

const attributeKeyChecked = (key) => key.startsWith('by(') || /^(count\(\)|(avg|min|max|sum)\(.*\))$/.test(key);

function sameAnyValue(actual, expected) {
  if (!actual) return false;
  if ('doubleValue' in expected) {
    const value = Number(actual.doubleValue);
    return 'doubleValue' in actual && Math.abs(value - expected.doubleValue) <= 1e-9 * Math.max(1, Math.abs(expected.doubleValue));
  }
  return JSON.stringify(actual) === JSON.stringify(expected);
}

function expectedSpanset(set, view, spss) {
  const attributes = [];
  for (const attribute of set.attributes) {
    const value = staticToAnyValue(attribute.value);
    if (value) attributes.push({ key: attribute.key, value });
  }
  return { spanIds: set.spans.slice(0, spss).map((i) => view.spans[i].spanId), matched: set.spans.length, attributes, all: set.spans };
}

// Problems with one trace of an answer, compared with the reference's match.
function traceProblems(actual, match, spss) {
  const problems = [];
  const { view } = match;
  const id = trimTraceId(view.traceId);
  const say = (message) => problems.push(`trace ${id}: ${message}`);
  if (actual.startTimeUnixNano !== view.start.toString()) say(`startTimeUnixNano ${actual.startTimeUnixNano}, expected ${view.start}`);
  const durationMs = Number(view.duration / 1_000_000n);
  if ((actual.durationMs ?? 0) !== durationMs) say(`durationMs ${actual.durationMs}, expected ${durationMs || '(omitted)'}`);
  const rootService = view.root ? view.rootServiceName : ROOT_NOT_RECEIVED;
  if ((actual.rootServiceName ?? '') !== rootService) say(`rootServiceName ${JSON.stringify(actual.rootServiceName)}, expected ${JSON.stringify(rootService)}`);
  const rootName = view.root ? view.rootSpanName : undefined;
  if (actual.rootTraceName !== rootName) say(`rootTraceName ${JSON.stringify(actual.rootTraceName)}, expected ${JSON.stringify(rootName)}`);
  const stats = serviceStats(view);
  const expectedStats = Object.fromEntries(Object.entries(stats).map(([name, s]) => [name, { spanCount: s.spanCount, ...(s.errorCount ? { errorCount: s.errorCount } : {}) }]));
  if (JSON.stringify(sortObject(actual.serviceStats ?? {})) !== JSON.stringify(sortObject(expectedStats))) {
    say(`serviceStats ${JSON.stringify(actual.serviceStats)}, expected ${JSON.stringify(expectedStats)}`);
  }

  const expected = match.spansets.map((set) => expectedSpanset(set, view, spss));
  const actualSets = actual.spanSets ?? [];
  if (actual.spanSet !== undefined && JSON.stringify(actual.spanSet) !== JSON.stringify(actualSets[0])) say('spanSet is not the first of spanSets');
  if (actualSets.length !== expected.length) {
    say(`${actualSets.length} spansets, expected ${expected.length} (matched ${expected.map((e) => e.matched).join('/')})`);
    return problems;
  }
  // Groups (by()) come in no defined order: pair spansets by their first spans.
  const keyOf = (ids) => ids.join(',');
  const expectedByKey = new Map(expected.map((e) => [keyOf(e.spanIds), e]));
  for (const set of actualSets) {
    const ids = (set.spans ?? []).map((s) => s.spanID);
    const wanted = expectedByKey.get(keyOf(ids));
    if (!wanted) {
      const closest = expected.find((e) => e.matched === (set.matched ?? 0)) ?? expected[0];
      say(`spanset spans [${sample(ids, 4)}] (matched ${set.matched ?? 0}), expected [${sample(closest.spanIds, 4)}] (matched ${closest.matched})`);
      continue;
    }
    expectedByKey.delete(keyOf(ids));
    if ((set.matched ?? 0) !== wanted.matched) say(`spanset matched ${set.matched ?? 0}, expected ${wanted.matched}`);
    set.spans?.forEach((s, i) => {
      const reference = view.spans[wanted.all[i]];
      if (s.startTimeUnixNano !== reference.start.toString()) say(`span ${s.spanID} startTimeUnixNano ${s.startTimeUnixNano}, expected ${reference.start}`);
      const durationNanos = (reference.end - reference.start).toString();
      if (s.durationNanos !== durationNanos) say(`span ${s.spanID} durationNanos ${s.durationNanos}, expected ${durationNanos}`);
      if (s.name !== reference.span.name) say(`span ${s.spanID} name ${JSON.stringify(s.name)}, expected ${JSON.stringify(reference.span.name)}`);
    });
    // Tempo appends spanset attributes (a second count() adds another); compare the last
    // value of each key.
    const actualAttributes = new Map((set.attributes ?? []).map((kv) => [kv.key, kv.value]));
    const lastWanted = [...new Map(wanted.attributes.map((a) => [a.key, a])).values()];
    for (const attribute of lastWanted) {
      if (!attributeKeyChecked(attribute.key)) continue;
      if (!sameAnyValue(actualAttributes.get(attribute.key), attribute.value)) {
        say(`spanset attribute ${attribute.key} = ${JSON.stringify(actualAttributes.get(attribute.key))}, expected ${JSON.stringify(attribute.value)}`);
      }
    }
    const wantedKeys = new Set(wanted.attributes.map((a) => a.key));
    for (const key of actualAttributes.keys()) {
      if (attributeKeyChecked(key) && !wantedKeys.has(key) && !key.startsWith('by(')) say(`unexpected spanset attribute ${key}`);
    }
  }
  return problems;
}

function sortObject(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// Compares a whole answer. Returns { orderProblems, byPlacement: {block: [...], ...} }.
export function compareAnswer(answer, matches, { limit, spss, viewById }) {
  const result = { orderProblems: [], byPlacement: { block: [], live: [], split: [] } };
  const expectedTop = matches.slice(0, limit);
  const expectedIds = expectedTop.map((m) => trimTraceId(m.view.traceId));
  const actualTraces = answer.body?.traces ?? [];
  const actualIds = actualTraces.map((t) => t.traceID);
  const expectedSet = new Set(expectedIds);
  const actualSet = new Set(actualIds);
  for (const id of expectedIds) {
    if (!actualSet.has(id)) result.byPlacement[viewById.get(id).placement].push(`missing trace ${id}`);
  }
  for (const id of actualIds) {
    if (expectedSet.has(id)) continue;
    const view = viewById.get(id);
    if (!view) result.orderProblems.push(`trace ${id} was never sent`);
    else result.byPlacement[view.placement].push(`unexpected trace ${id}${matches.some((m) => m.view === view) ? ' (matches, but is not among the most recent)' : ''}`);
  }
  if (actualIds.length === expectedIds.length && actualIds.every((id) => expectedSet.has(id)) && actualIds.join() !== expectedIds.join()) {
    result.orderProblems.push(`order differs: got [${sample(actualIds, 6)}], expected [${sample(expectedIds, 6)}]`);
  }
  const matchById = new Map(expectedTop.map((m) => [trimTraceId(m.view.traceId), m]));
  for (const trace of actualTraces) {
    const match = matchById.get(trace.traceID);
    if (!match) continue;
    result.byPlacement[match.view.placement].push(...traceProblems(trace, match, spss));
  }
  return result;
}


// The answer the contract calls for, built from the reference's matches (what a correct server
// sends): used by selfcheck.mjs to prove the checks above accept it.
export function referenceAnswer(matches, { limit, spss }) {
  const traces = matches.slice(0, limit).map(({ view, spansets }) => {
    const sets = spansets.map((set) => {
      const out = {
        spans: set.spans.slice(0, spss).map((i) => {
          const s = view.spans[i];
          return { spanID: s.spanId, name: s.span.name, startTimeUnixNano: s.start.toString(), durationNanos: (s.end - s.start).toString() };
        }),
        matched: set.spans.length,
      };
      const attributes = set.attributes.map((a) => ({ key: a.key, value: staticToAnyValue(a.value) })).filter((a) => a.value);
      if (attributes.length) out.attributes = attributes;
      return out;
    });
    const trace = {
      traceID: trimTraceId(view.traceId),
      rootServiceName: view.root ? view.rootServiceName : ROOT_NOT_RECEIVED,
      ...(view.root ? { rootTraceName: view.rootSpanName } : {}),
      startTimeUnixNano: view.start.toString(),
    };
    const durationMs = Number(view.duration / 1_000_000n);
    if (durationMs) trace.durationMs = durationMs;
    trace.spanSet = sets[0];
    trace.spanSets = sets;
    trace.serviceStats = Object.fromEntries(Object.entries(serviceStats(view))
      .map(([name, s]) => [name, { spanCount: s.spanCount, ...(s.errorCount ? { errorCount: s.errorCount } : {}) }]));
    return trace;
  });
  return { ...(traces.length ? { traces } : {}), metrics: { inspectedTraces: matches.length || undefined, completedJobs: 1, totalJobs: 1 } };
}

// GET a query endpoint of `server` and parse its JSON (body null when it is not JSON).
export async function getJson(server, path, params = {}) {
  const url = new URL(path, server.httpUrl);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, String(value));
  const response = await httpRequest(url, { headers: { Accept: 'application/json' }, timeoutMs: 30_000 });
  const text = response.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* left null */ }
  return { status: response.status, text, body };
}

// Runs `work` over `items`, `concurrency` at a time.
export async function runConcurrently(items, concurrency, work) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index], index);
    }
  }));
}
