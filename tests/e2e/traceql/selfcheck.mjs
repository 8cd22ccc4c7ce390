// Runs the corpus through the reference alone (no server): every valid query parses (ours and
// Grafana's lezer grammar), validates and evaluates without error; every malformed one is
// refused by our parser or validator; prints how many traces each query matches.
//
//   node traceql/selfcheck.mjs [--verbose]

import assert from 'node:assert/strict';
import { buildDataset, resourceAttributes } from './dataset.mjs';
import { buildCorpus } from './corpus.mjs';
import { parseQuery, buildView, searchViews, TraceQLError } from './reference.mjs';
import { lezerAccepts, lezerGapFor } from './lezer.mjs';
import { referenceAnswer, compareAnswer, shapeProblems } from './api.mjs';
import { trimTraceId } from './reference.mjs';

const verbose = process.argv.includes('--verbose');
const now = 1_700_000_000_000_000_000n;
const dataset = buildDataset({ now });
const views = dataset.traces.map((trace) => buildView(trace, resourceAttributes));
const { valid, malformed } = buildCorpus(dataset);
const viewById = new Map(views.map((view) => [trimTraceId(view.traceId), view]));

const problems = [];
const histogram = { none: 0, some: 0, all: 0 };
const lezerGaps = [];
for (const text of valid) {
  let query;
  try {
    query = parseQuery(text);
  } catch (error) {
    problems.push(`valid query refused by the reference: ${text}\n    ${error.message}`);
    continue;
  }
  if (!lezerAccepts(text)) {
    const gap = lezerGapFor(text);
    if (gap) lezerGaps.push(text);
    else problems.push(`valid query does not parse with @grafana/lezer-traceql: ${text}`);
  }
  let matches;
  try {
    matches = searchViews(query, views);
  } catch (error) {
    problems.push(`valid query failed to evaluate: ${text}\n    ${error.stack}`);
    continue;
  }
  // The checks of search.test.mjs must accept the answer the contract calls for.
  for (const [limit, spss] of [[1000, 100], [20, 3]]) {
    const body = JSON.parse(JSON.stringify(referenceAnswer(matches, { limit, spss })));
    const shape = shapeProblems(body);
    const result = compareAnswer({ status: 200, body }, matches, { limit, spss, viewById });
    const all = shape.concat(result.orderProblems, ...Object.values(result.byPlacement));
    if (all.length) problems.push(`the checks refuse the reference's own answer to ${text}: ${all.slice(0, 3).join('; ')}`);
  }
  const bucket = matches.length === 0 ? 'none' : matches.length === views.length ? 'all' : 'some';
  histogram[bucket] += 1;
  if (verbose) console.log(`${String(matches.length).padStart(4)}  ${text}`);
}
for (const text of malformed) {
  try {
    parseQuery(text);
    problems.push(`malformed query accepted by the reference: ${text}`);
  } catch (error) {
    if (!(error instanceof TraceQLError)) problems.push(`malformed query crashed the reference: ${text}\n    ${error.stack}`);
    else if (verbose) console.log(`  ${error.kind.padEnd(11)} ${text}   -- ${error.message}`);
  }
}
const spanCount = dataset.traces.reduce((n, t) => n + t.spans.length, 0);
console.log(`data set: ${dataset.traces.length} traces, ${spanCount} spans`);
console.log(`valid queries: ${valid.length} (match no trace: ${histogram.none}, some: ${histogram.some}, all: ${histogram.all}); `
  + `lezer gaps: ${lezerGaps.length}`);
console.log(`malformed queries: ${malformed.length}`);
if (problems.length) {
  console.log(`\n${problems.length} problems:\n${problems.join('\n')}`);
  process.exitCode = 1;
}
assert.ok(valid.length >= 250, 'at least 250 valid queries');
assert.ok(malformed.length >= 80, 'at least 80 malformed queries');

// ...and refuse wrong ones: a missing trace, a swapped order, a wrong matched count, an
// unknown field.
{
  const query = parseQuery('{ status = error }');
  const matches = searchViews(query, views);
  const fresh = () => JSON.parse(JSON.stringify(referenceAnswer(matches, { limit: 1000, spss: 100 })));
  const count = (body) => {
    const result = compareAnswer({ status: 200, body }, matches, { limit: 1000, spss: 100, viewById });
    return shapeProblems(body).length + result.orderProblems.length + Object.values(result.byPlacement).flat().length;
  };
  const mutations = {
    'drop a trace': (b) => b.traces.splice(3, 1),
    'swap two traces': (b) => { [b.traces[0], b.traces[1]] = [b.traces[1], b.traces[0]]; },
    'wrong matched': (b) => { b.traces[2].spanSets[0].matched += 1; },
    'unknown field': (b) => { b.traces[0].spanSets[0].spans[0].extra = 1; },
    'zero durationMs present': (b) => { b.traces[0].durationMs = 0; },
    'wrong spanset attribute': (b) => { b.traces[0].spanSets[0].attributes = [{ key: 'count()', value: { intValue: '1' } }]; },
    'padded trace ID': (b) => { b.traces[0].traceID = `0${b.traces[0].traceID}`; },
  };
  for (const [name, mutate] of Object.entries(mutations)) {
    const body = fresh();
    mutate(body);
    assert.ok(count(body) > 0, `the checks accept a wrong answer (${name})`);
  }
  console.log(`the checks refuse ${Object.keys(mutations).length} kinds of wrong answer`);
}
