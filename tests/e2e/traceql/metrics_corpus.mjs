// The metrics tests' queries: every first-stage function, by() on one and two attributes
// (present, sometimes missing, never present; string, int, float, bool, status and kind
// values), second stages (topk, bottomk, comparison filters, chained), structural and
// trace-level spanset parts (so traces split between a block and live data must be joined
// before they are evaluated), compare(), hints; and the malformed or wrong-kind queries the
// metrics endpoints refuse.
//
// Each range query comes with a step; the instant list is a subset asked of /api/metrics/query.

const STEPS = ['60s', '5m', '90', '2m', '1m30s', '45s'];

export function buildMetricsCorpus() {
  const range = [];
  const add = (...texts) => range.push(...texts);

  // --- counting
  add('{ } | rate()', '{ } | count_over_time()', '{ status = error } | rate()',
    '{ status = error } | count_over_time() by (resource.service.name)',
    '{ } | rate() by (resource.service.name)',
    '{ kind = server } | count_over_time() by (resource.service.name, span.http.method)',
    '{ } | count_over_time() by (span.db.system)',
    '{ } | count_over_time() by (span.does.not.exist)',
    '{ } | count_over_time() by (span.db.system, span.http.method)',
    '{ } | count_over_time() by (resource.service.name, kind)',
    '{ } | count_over_time() by (span.cache.hit)',
    '{ } | count_over_time() by (span.retry.ratio)',
    '{ } | count_over_time() by (.region)',
    '{ span.user.id < 3 } | count_over_time() by (span.user.id)',
    '{ event:name = "exception" } | count_over_time() by (resource.service.name)',
    '{ nestedSetParent < 0 } | rate() by (name)');

  // --- min / max / sum / avg
  add('{ } | min_over_time(duration)', '{ } | max_over_time(duration) by (resource.service.name)',
    '{ } | sum_over_time(span.payload.size)', '{ } | avg_over_time(duration) by (kind)',
    '{ } | avg_over_time(span.retry.ratio) by (resource.deployment.environment)',
    '{ } | min_over_time(span.score) by (status)', '{ } | max_over_time(span.user.id)',
    '{ span.http.method = "POST" } | sum_over_time(duration) by (span.http.status_code)',
    '{ span.user.id != nil } | avg_over_time(span.user.id) by (resource.host.cpu.count)',
    '{ } | min_over_time(span.http.method)',
    '{ } | sum_over_time(span.code) by (span.component)');

  // --- quantiles and histograms
  add('{ } | quantile_over_time(duration, 0.5, 0.9, 0.99)',
    '{ } | quantile_over_time(duration, 0.95) by (resource.service.name)',
    '{ span.http.status_code != nil } | quantile_over_time(span.http.status_code, 0.5, 0.75)',
    '{ } | quantile_over_time(span.score, 0.1, 0.5, 1)',
    '{ } | quantile_over_time(span.retry.ratio, 0.5) by (span.cache.hit)',
    '{ } | histogram_over_time(duration)', '{ } | histogram_over_time(duration) by (status)',
    '{ } | histogram_over_time(span.user.id)',
    '{ } | histogram_over_time(span.payload.size) by (resource.region)');

  // --- second stages
  add('{ } | count_over_time() by (resource.service.name) | topk(3)',
    '{ } | rate() by (resource.service.name) | bottomk(2)',
    '{ } | max_over_time(duration) by (resource.service.name) | topk(2)',
    '{ } | count_over_time() by (name) > 3',
    '{ } | avg_over_time(duration) by (resource.service.name) > 500ms',
    '{ } | rate() by (resource.service.name) >= 0.055',
    '{ } | count_over_time() by (resource.service.name) | topk(4) > 2',
    '{ status = error } | count_over_time() by (span.http.status_code) < 2',
    '{ } | min_over_time(span.score) by (resource.service.name) <= -1.5',
    '{ } | quantile_over_time(duration, 0.5) by (resource.service.name) | bottomk(3)');

  // --- spanset parts that need whole traces
  add('{ kind = server } >> { status = error } | count_over_time()',
    '{ trace:rootService = "frontend" } | rate() by (resource.service.name)',
    '{ traceDuration > 2s } | count_over_time()',
    '{ } | count() > 20 | count_over_time()',
    '{ resource.service.name = "checkout" } && { status = error } | count_over_time()',
    '{ span.http.method != nil } | by(resource.service.name) | count() > 2 | count_over_time() by (span.http.method)');

  // --- spans on bucket edges (edgeTraces)
  add('{ resource.service.name = "edge" } | count_over_time() by (span.edge.index)',
    '{ resource.service.name = "edge" } | histogram_over_time(duration)',
    '{ resource.service.name = "edge" } | histogram_over_time(span.user.id) by (status)',
    '{ resource.service.name = "edge" } | quantile_over_time(duration, 0, 0.5, 1)');

  // --- compare, hints
  add('{ } | compare({ status = error })',
    '{ resource.service.name = "checkout" } | compare({ span.http.status_code >= 500 }, 3)',
    '{ } | count_over_time() by (resource.service.name) with(sample=0.1)');

  const rangeCases = range.map((text, i) => ({ text, step: STEPS[i % STEPS.length] }));
  const instant = [
    '{ } | rate()', '{ } | count_over_time() by (resource.service.name)', '{ status = error } | count_over_time() by (span.db.system)',
    '{ } | min_over_time(duration) by (kind)', '{ } | max_over_time(span.user.id)', '{ } | sum_over_time(span.payload.size) by (resource.region)',
    '{ } | avg_over_time(span.retry.ratio)', '{ } | quantile_over_time(duration, 0.5, 0.99) by (status)',
    '{ } | histogram_over_time(duration)', '{ } | count_over_time() by (resource.service.name) | topk(3)',
    '{ } | rate() by (name) > 0.01', '{ kind = server } >> { status = error } | count_over_time()',
    '{ } | count_over_time() by (span.does.not.exist, span.db.system)', '{ } | compare({ status = error }, 2)',
    '{ resource.service.name = "edge" } | count_over_time() by (span.edge.index)',
  ];
  return { range: rangeCases, instant };
}

// Refused with 400. `position` marks syntax errors, whose message must say where.
export const MALFORMED_METRICS = [
  { text: '{ status = } | rate()', position: true },
  { text: '{ } | rate(', position: true },
  { text: '{ } | rate() by (', position: true },
  { text: '{ } | rate() by ()', position: true },
  { text: '{ } | count_over_time(duration', position: true },
  { text: '{ } | quantile_over_time(duration)', position: true },
  { text: '{ } | quantile_over_time(duration, "x")', position: true },
  { text: '{ } | min_over_time()', position: true },
  { text: '{ } | rate() | topk()', position: true },
  { text: '{ } | rate() | topk(0)', position: true },
  { text: '{ } | rate() | topk(x)', position: true },
  { text: '{ } | rate() > ', position: true },
  { text: '{ } | rate() > "a"', position: true },
  { text: '{ } | frobnicate()', position: true },
  { text: '{ } | rate() rate()', position: true },
  { text: '{ } | compare({ status = error }) | topk(2)', position: true },
  { text: '{ } | compare(status = error)', position: true },
  { text: '| rate()', position: true },
  { text: '{ .a = 1 } | rate() with(', position: true },
  { text: '{ 1 = "a" } | rate()', position: false },
];

// Search queries: a metrics endpoint refuses them with 400.
export const SEARCH_QUERIES = ['{ status = error }', '{ }', '{ } | count() > 2', '{ kind = server } >> { status = error }'];

// ---------------------------------------------------------------------------------------
// Time windows and edge-case spans

// The windows the tests ask about, in unix seconds around the data set's anchor. None is
// aligned to a step; the range holds every span of the data set.
export function metricsWindows(nowSec) {
  return {
    range: { start: nowSec - 1837, end: nowSec + 43 },
    instant: [
      { start: nowSec - 1850, end: nowSec + 30 }, // all the data
      { start: nowSec - 913, end: nowSec - 301 }, // cuts through it
    ],
    oneStep: { start: nowSec - 613, end: nowSec - 13, step: '10m' },
  };
}

// A few traces (one per placement) whose spans start exactly on bucket edges: on a multiple
// of 30 minutes (an edge for every step of the corpus), one nanosecond either side of it, and
// on the edges of the instant and one-step windows; with durations and int attributes on the
// power-of-two edges of histogram_over_time (1 and 0 ns are left out, 1024 ns is bucket 1024,
// 1025 ns bucket 2048). Shaped like dataset.mjs's spans, so sendPlan and buildView take them.
export function edgeTraces(nowSec) {
  const S = 1_000_000_000n;
  const windows = metricsWindows(nowSec);
  const edge = BigInt(Math.floor((nowSec - 60) / 1800) * 1800) * S;
  const service = { name: 'edge', namespace: 'test', env: 'prod', zone: 'eu-west-1a', cpus: 1, region: 'eu' };
  const scope = { name: 'tracery.edge', version: '1.0.0', attributes: [] };
  let spanCounter = 0;
  const trace = (n, placement, starts) => {
    const traceId = `edbe${String(n).padStart(28, '0')}`;
    const durations = [1024n, 1025n, 1n, 0n, 2n, 3n, 4096n];
    const userIds = [1, 2, 3, -4, 0, 1024, 1025];
    let root = null;
    const spans = starts.map((start, i) => {
      spanCounter += 1;
      const span = {
        traceId,
        spanId: `ed${String(spanCounter).padStart(14, '0')}`,
        parentSpanId: root ? root.spanId : '',
        name: i === 0 ? 'edge root' : 'edge child',
        kind: i === 0 ? 2 : 1,
        start,
        end: start + durations[i % durations.length],
        attributes: [{ key: 'user.id', value: { intValue: String(userIds[i % userIds.length]) } }, { key: 'edge.index', value: { intValue: String(i) } }],
        status: { code: i % 3 === 2 ? 2 : 0 },
        events: [],
        links: [],
        service,
        scope,
      };
      root ??= span;
      return span;
    });
    return { traceId, placement, spans, missingRoot: false };
  };
  const at = (sec) => BigInt(sec) * S;
  const [, cut] = windows.instant;
  return [
    trace(1, 'block', [edge, edge + 1n, edge - 1n, edge, edge + 2n, edge - 2n, edge]),
    trace(2, 'live', [at(cut.start), at(cut.start) + 1n, at(cut.end), at(cut.end) + 1n, at(cut.end) - 1n, at(cut.end)]),
    trace(3, 'split', [at(windows.oneStep.start), at(windows.oneStep.start) + 1n, at(windows.oneStep.end), at(windows.oneStep.end) + 1n, at(windows.oneStep.end),
      at(windows.range.start), at(windows.range.end)]),
  ];
}
