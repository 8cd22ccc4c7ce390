// A brute-force reference for TraceQL metrics (/api/metrics/query_range and /api/metrics/query):
// the spanset part of a metrics query is evaluated by reference.mjs (which spans each trace
// selects, each span once), and everything after it here, with exact arithmetic and no
// sketches:
//
//   time buckets   a range request is aligned to its step (start rounded down, end rounded up)
//                  and gets one extra bucket before the start; bucket (T - step, T] is stamped
//                  T in ms; a span belongs to the bucket of its start time. An instant request
//                  (or a range exactly one step wide) is the one bucket (start, end].
//   functions      rate (count / step seconds), count_over_time, histogram_over_time (count per
//                  power-of-two bucket, label __bucket; durations bucketed in ns, labelled in
//                  seconds; ints and durations below 2 and other types left out), min / max /
//                  sum / avg_over_time (ints, floats, durations in seconds; other types left
//                  out), quantile_over_time (exact nearest rank ceil(q*n), the server's sketch
//                  may be 1 % off), compare({filter}, topN, start, end).
//   empty buckets  count-based functions 0, quantiles 0, min/max/sum/avg no sample.
//   labels         by() values keyed by Tempo's attribute text, nil values left out (all nil:
//                  the first attribute as "nil"), ungrouped: __name__ = function name;
//                  quantiles add p.
//   second stages  topk / bottomk per bucket (ties to the series that sorts first), comparison
//                  filters (durations in seconds); series sorted by labels; series without
//                  samples dropped.
//   exemplars      the grid cut into N equal slots, each keeping its smallest (trace ID, span ID)
//                  candidate; kept only when their bucket has a sample (metrics.h).
// These are tracery's documented choices (src/traceql/metrics*.{h,cpp}); where they differ from
// Tempo the test file says so.

import { tokenize, parseQuery, evaluateTrace, evaluateSpanField, staticToAnyValue, TraceQLError } from './reference.mjs';

const FIRST_STAGE = ['rate', 'count_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'avg_over_time',
  'quantile_over_time', 'histogram_over_time', 'compare'];
const COUNTING = new Set(['rate', 'count_over_time', 'histogram_over_time']);
const LEGACY_INTRINSICS = ['duration', 'name', 'status', 'statusMessage', 'kind', 'rootName', 'rootServiceName',
  'traceDuration', 'nestedSetLeft', 'nestedSetRight', 'nestedSetParent'];
const CMP = ['=', '!=', '<', '<=', '>', '>='];
export const MAX_EXEMPLARS = 100; // query_frontend.metrics.max_exemplars, tracery's default
const MAX_EXEMPLARS_FROM_HINT = 1000;

// Tempo's attribute text (Attribute.String()): what a by() label is keyed by.
export function attributeText(node) {
  if (node.k === 'intr') return node.name;
  let text = node.parent ? 'parent.' : '';
  if (node.scope !== 'none') text += `${node.scope}.`;
  else if (!node.parent) text = '.';
  return text + node.name;
}

// ---------------------------------------------------------------------------------------
// Parsing: <spanset pipeline> '|' <function>(...) [by(...)] [second stages] [with(...)]

export function parseMetricsQuery(text) {
  const tokens = tokenize(text);
  let depth = 0;
  let split = -1;
  for (let i = 0; i < tokens.length; i += 1) {
    const t = tokens[i];
    if (t.t === 'op' && (t.v === '(' || t.v === '{')) depth += 1;
    if (t.t === 'op' && (t.v === ')' || t.v === '}')) depth -= 1;
    if (depth === 0 && t.t === 'op' && t.v === '|' && tokens[i + 1]?.t === 'word' && FIRST_STAGE.includes(tokens[i + 1].v)) { split = i; break; }
  }
  if (split < 0) throw new TraceQLError('metrics', 'not a metrics query');
  const spanset = parseQuery(text.slice(0, tokens[split].offset));
  let at = split + 1;
  const peek = () => tokens[at];
  const next = () => tokens[at++];
  const fail = (message) => { throw new TraceQLError('syntax', `${message} at offset ${peek().offset}`); };
  const expectOp = (v) => { const t = next(); if (t.t !== 'op' || t.v !== v) fail(`expected ${v}`); return t; };
  const isOp = (v) => peek().t === 'op' && peek().v === v;
  const attribute = () => {
    const t = next();
    if (t.t === 'attr') return { k: 'attr', scope: t.scope, parent: t.parent, name: t.name };
    if (t.t === 'intr') return { k: 'intr', name: t.name };
    if (t.t === 'word' && LEGACY_INTRINSICS.includes(t.v)) return { k: 'intr', name: t.v };
    return fail('expected an attribute');
  };
  const number = () => {
    let sign = 1;
    if (isOp('-')) { next(); sign = -1; }
    const t = next();
    if (t.t === 'int' || t.t === 'float') return { t: t.t, v: sign * t.v };
    if (t.t === 'dur') return { t: 'duration', v: sign * t.v };
    return fail('expected a number');
  };

  const query = { text, spanset, fn: next().v, attr: null, quantiles: [], by: [], compare: null, second: [], hints: {} };
  expectOp('(');
  if (query.fn === 'compare') {
    const open = peek();
    let d = 0;
    let close = at;
    for (; close < tokens.length; close += 1) {
      if (tokens[close].t === 'op' && tokens[close].v === '{') d += 1;
      if (tokens[close].t === 'op' && tokens[close].v === '}') { d -= 1; if (d === 0) break; }
    }
    const filterText = text.slice(open.offset, tokens[close].offset + 1);
    const parsed = parseQuery(filterText);
    query.compare = { filter: parsed.root.elements[0].node, topN: 10, start: 0n, end: 0n };
    at = close + 1;
    const args = [];
    while (isOp(',')) { next(); args.push(next().v); }
    if (args[0] !== undefined) query.compare.topN = args[0];
    if (args.length >= 3) { query.compare.start = BigInt(args[1]); query.compare.end = BigInt(args[2]); }
  } else if (query.fn !== 'rate' && query.fn !== 'count_over_time') {
    query.attr = attribute();
    if (query.fn === 'quantile_over_time') {
      while (isOp(',')) { next(); query.quantiles.push(number().v); }
    }
  }
  expectOp(')');
  if (peek().t === 'word' && peek().v === 'by') {
    next();
    expectOp('(');
    for (;;) {
      query.by.push(attribute());
      if (isOp(',')) { next(); continue; }
      expectOp(')');
      break;
    }
  }
  for (;;) {
    if (isOp('|') && tokens[at + 1]?.t === 'word' && ['topk', 'bottomk'].includes(tokens[at + 1].v)) {
      next();
      const kind = next().v;
      expectOp('(');
      const n = next().v;
      expectOp(')');
      query.second.push({ kind, n });
      continue;
    }
    if (peek().t === 'op' && CMP.includes(peek().v)) {
      const op = next().v;
      const threshold = number();
      query.second.push({ kind: 'filter', op, threshold: threshold.t === 'duration' ? threshold.v / 1e9 : threshold.v });
      continue;
    }
    break;
  }
  if (peek().t === 'word' && peek().v === 'with') {
    next();
    expectOp('(');
    for (;;) {
      const name = next().v;
      expectOp('=');
      const value = next();
      query.hints[name] = value.t === 'word' ? { t: 'bool', v: value.v === 'true' } : { t: value.t, v: value.v };
      if (isOp(',')) { next(); continue; }
      expectOp(')');
      break;
    }
  }
  if (peek().t !== 'eof') fail('unexpected input');
  return query;
}

// ---------------------------------------------------------------------------------------
// Time buckets (BigInt nanoseconds)

const SECOND = 1_000_000_000n;

// Tempo's default step: about 240 points, a multiple of 5 s (or of 1 s below 5 s), at least 1 s.
export function defaultStepNanos(start, end) {
  const delta = end > start ? end - start : 0n;
  const baseline = delta / 240n;
  let interval = (baseline / (5n * SECOND)) * (5n * SECOND);
  if (interval < 5n * SECOND) interval = (baseline / SECOND) * SECOND;
  return interval < SECOND ? SECOND : interval;
}

export function makeGrid({ start, end, step, instant = false }) {
  start = BigInt(start);
  end = BigInt(end);
  if (instant || end - start === BigInt(step ?? 0)) return grid(start, end - start, 1);
  step = BigInt(step);
  let left = start - (start % step);
  const right = end % step === 0n ? end : end + (step - (end % step));
  if (left > step) left -= step;
  return grid(left, step, Number((right - left) / step));
}

function grid(left, step, count) {
  return {
    left,
    step,
    count,
    right: left + BigInt(count) * step,
    stepSeconds: Number(step) / 1e9,
    bucketOf(ns) { return ns <= left || ns > this.right ? -1 : Number((ns - left - 1n) / step); },
    timestampMs(bucket) { return (left + BigInt(bucket + 1) * step) / 1_000_000n; },
    // The span start times the bucket stamped `timestampMs` holds: (from, to].
    bucketRange(bucket) { return { from: left + BigInt(bucket) * step, to: left + BigInt(bucket + 1) * step }; },
  };
}

// ---------------------------------------------------------------------------------------
// Labels: AnyValue objects as the JSON carries them; a nil label is { nil: true } here.

export const NIL_LABEL = Object.freeze({ nil: true });
const TYPE_RANK = (v) => ('nil' in v ? 0 : 'stringValue' in v ? 1 : 'boolValue' in v ? 2 : 'intValue' in v ? 3
  : 'doubleValue' in v ? 4 : 'arrayValue' in v ? 5 : 'kvlistValue' in v ? 6 : 'bytesValue' in v ? 7 : 0);
const threeWay = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

export function compareAnyValue(a, b) {
  const ra = TYPE_RANK(a);
  const rb = TYPE_RANK(b);
  if (ra !== rb) return threeWay(ra, rb);
  if ('stringValue' in a) return Math.sign(Buffer.compare(Buffer.from(a.stringValue), Buffer.from(b.stringValue)));
  if ('boolValue' in a) return threeWay(Number(a.boolValue), Number(b.boolValue));
  if ('intValue' in a) return threeWay(BigInt(a.intValue), BigInt(b.intValue));
  if ('doubleValue' in a) {
    const x = Number(a.doubleValue);
    const y = Number(b.doubleValue);
    if (Number.isNaN(x) || Number.isNaN(y)) return threeWay(!Number.isNaN(x), !Number.isNaN(y));
    return threeWay(x, y);
  }
  if ('arrayValue' in a) {
    const xs = a.arrayValue.values ?? [];
    const ys = b.arrayValue.values ?? [];
    for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) { const c = compareAnyValue(xs[i], ys[i]); if (c) return c; }
    return threeWay(xs.length, ys.length);
  }
  return 0;
}

export function compareLabels(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const c = threeWay(a[i].key, b[i].key) || compareAnyValue(a[i].value, b[i].value);
    if (c) return c;
  }
  return threeWay(a.length, b.length);
}

// A canonical text of a label set, for matching series.
export function labelsKey(labels) {
  return JSON.stringify(labels.map(({ key, value }) => [key, canonicalValue(value)]));
}
function canonicalValue(value) {
  if ('nil' in value) return ['nil'];
  if ('doubleValue' in value) return ['double', Number(value.doubleValue)];
  if ('intValue' in value) return ['int', String(value.intValue)];
  if ('arrayValue' in value) return ['array', (value.arrayValue.values ?? []).map(canonicalValue)];
  const [k] = Object.keys(value);
  return [k, value[k]];
}

const valueKey = (s) => `${s.t}:${JSON.stringify(s.v ?? null)}`;

// ---------------------------------------------------------------------------------------
// Evaluation

export function numericValue(s) {
  if (s.t === 'int') return s.v;
  if (s.t === 'float') return Number.isNaN(s.v) ? null : s.v;
  if (s.t === 'duration') return s.v / 1e9;
  return null;
}

function bitCeil(n) {
  let b = 1;
  while (b < n) b *= 2;
  return b;
}

function histogramBucket(s) {
  if (s.t !== 'int' && s.t !== 'duration') return null;
  if (s.v < 2) return null;
  const bucket = bitCeil(s.v);
  return s.t === 'duration' ? bucket / 1e9 : bucket;
}

// Every selected span of every view, once, in the grid: [{ view, span, bucket }].
export function selectedSpans(query, views, g) {
  const out = [];
  for (const view of views) {
    const spansets = evaluateTrace(query.spanset, view);
    if (!spansets.length) continue;
    const seen = new Set();
    for (const set of spansets) {
      for (const index of set.spans) {
        if (seen.has(index)) continue;
        seen.add(index);
        const span = view.spans[index];
        const bucket = g.bucketOf(span.start);
        if (bucket >= 0) out.push({ view, span, bucket });
      }
    }
  }
  return out;
}

// How many exemplars a query may have: with(exemplars=N) replaces the request's (capped)
// number, with(exemplars=false) turns them off.
export function exemplarLimit(query, requested) {
  const hint = query.hints.exemplars;
  if (!hint) return requested;
  if (hint.t === 'int') return Math.max(0, Math.min(hint.v, MAX_EXEMPLARS_FROM_HINT));
  if (hint.t === 'bool' && !hint.v) return 0;
  return requested;
}

// The answer tracery must give: { series: [{ labels, samples: [{ timestampMs: BigInt, value }],
// exemplars: [{ traceId, spanId, value, timestampMs, bucket }] }], spans } with series sorted
// by labels. `exemplars` is the request's exemplars parameter (already capped).
export function evaluateMetrics(query, views, g, { exemplars = 0 } = {}) {
  const spans = selectedSpans(query, views, g);
  const dense = query.fn === 'compare' ? compareSeries(query, spans, g) : functionSeries(query, spans, g, exemplarLimit(query, exemplars));
  dense.sort((a, b) => compareLabels(a.labels, b.labels));
  // Quantiles are sketched within 1 %: where topk / bottomk must choose between values that
  // close, either choice is right and the sample is optional.
  const nearTie = query.fn === 'quantile_over_time' ? 2 * QUANTILE_RELATIVE_ERROR + 1e-9 : 0;
  if (query.fn !== 'compare') for (const stage of query.second) applySecondStage(stage, dense, nearTie);
  const series = [];
  for (const s of dense) {
    const samples = [];
    s.values.forEach((value, bucket) => {
      if (!Number.isNaN(value)) samples.push({ timestampMs: g.timestampMs(bucket), value, bucket, optional: Boolean(s.optional?.[bucket]) });
      else if (s.maybe?.[bucket] !== undefined) samples.push({ timestampMs: g.timestampMs(bucket), value: s.maybe[bucket], bucket, optional: true });
    });
    if (!samples.length && !s.keepWithoutSamples) continue;
    const kept = (s.exemplars ?? []).filter((e) => !Number.isNaN(s.values[e.bucket]));
    kept.sort((a, b) => threeWay(a.timestampMs, b.timestampMs) || threeWay(a.traceId, b.traceId) || threeWay(a.spanId, b.spanId));
    series.push({ labels: s.labels, samples, exemplars: kept, optional: samples.length > 0 && samples.every((x) => x.optional) });
  }
  return { series, spanCount: spans.length };
}

function functionSeries(query, spans, g, exemplarSlots) {
  const byKey = new Map();
  const slots = new Array(exemplarSlots).fill(null);
  const width = BigInt(g.count) * g.step;
  for (const { view, span, bucket } of spans) {
    const byValues = query.by.map((node) => evaluateSpanField(node, span, view));
    let key = byValues.map(valueKey).join('|');
    let measured = null;
    let histogram = null;
    if (query.fn === 'histogram_over_time') {
      histogram = histogramBucket(evaluateSpanField(query.attr, span, view));
      if (histogram === null) continue;
      key += `|bucket:${histogram}`;
    } else if (!COUNTING.has(query.fn)) {
      measured = numericValue(evaluateSpanField(query.attr, span, view));
      if (measured === null) continue;
    }
    let series = byKey.get(key);
    if (!series) {
      const labels = [];
      query.by.forEach((node, i) => { if (byValues[i].t !== 'nil') labels.push({ key: attributeText(node), value: staticToAnyValue(byValues[i]) }); });
      if (histogram !== null) labels.push({ key: '__bucket', value: { doubleValue: histogram } });
      else if (query.fn !== 'quantile_over_time' && labels.length === 0) {
        labels.push(query.by.length ? { key: attributeText(query.by[0]), value: NIL_LABEL } : { key: '__name__', value: { stringValue: query.fn } });
      }
      const startsEmpty = ['min_over_time', 'max_over_time', 'sum_over_time'].includes(query.fn);
      series = {
        key,
        labels,
        values: new Array(g.count).fill(startsEmpty ? NaN : 0),
        counts: new Array(g.count).fill(0),
        lists: query.fn === 'quantile_over_time' ? Array.from({ length: g.count }, () => []) : null,
      };
      byKey.set(key, series);
    }
    const v = series.values;
    switch (query.fn) {
      case 'rate': case 'count_over_time': case 'histogram_over_time': v[bucket] += 1; break;
      case 'min_over_time': if (Number.isNaN(v[bucket]) || measured < v[bucket]) v[bucket] = measured; break;
      case 'max_over_time': if (Number.isNaN(v[bucket]) || measured > v[bucket]) v[bucket] = measured; break;
      case 'sum_over_time': v[bucket] = Number.isNaN(v[bucket]) ? measured : v[bucket] + measured; break;
      case 'avg_over_time': v[bucket] += measured; series.counts[bucket] += 1; break;
      case 'quantile_over_time': series.lists[bucket].push(measured); break;
      default: throw new Error(query.fn);
    }
    if (slots.length) {
      const slot = Number(((span.start - g.left - 1n) * BigInt(slots.length)) / width);
      const index = Math.min(slot, slots.length - 1);
      const candidate = { traceId: view.traceId, spanId: span.spanId, start: span.start, value: measured ?? NaN, bucket, key };
      const held = slots[index];
      if (!held || candidate.traceId < held.traceId || (candidate.traceId === held.traceId && candidate.spanId < held.spanId)) slots[index] = candidate;
    }
  }

  const dense = [];
  const firstDense = new Map();
  for (const series of byKey.values()) {
    firstDense.set(series.key, dense.length);
    if (query.fn === 'quantile_over_time') {
      for (const q of query.quantiles) {
        dense.push({
          labels: [...series.labels, { key: 'p', value: { doubleValue: q } }],
          values: series.lists.map((list) => (list.length ? nearestRank(list, q) : 0)),
          exemplars: [],
          quantile: true,
        });
      }
      continue;
    }
    const values = series.values.map((value, b) => {
      if (query.fn === 'rate') return value / g.stepSeconds;
      if (query.fn === 'avg_over_time') return series.counts[b] > 0 ? value / series.counts[b] : NaN;
      return value;
    });
    dense.push({ labels: series.labels, values, exemplars: [] });
  }
  // Exemplars to their series (quantiles: the smallest quantile at or above the value).
  const order = query.quantiles.map((q, i) => i).sort((a, b) => query.quantiles[a] - query.quantiles[b]);
  for (const slot of slots) {
    if (!slot) continue;
    let target = firstDense.get(slot.key);
    if (query.fn === 'quantile_over_time') {
      let chosen = order[order.length - 1];
      for (const qi of order) if (slot.value <= dense[target + qi].values[slot.bucket]) { chosen = qi; break; }
      target += chosen;
    }
    dense[target].exemplars.push({
      traceId: slot.traceId,
      spanId: slot.spanId,
      value: COUNTING.has(query.fn) ? NaN : slot.value,
      timestampMs: slot.start / 1_000_000n,
      start: slot.start,
      bucket: slot.bucket,
    });
  }
  return dense;
}

export function nearestRank(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const clamped = Math.min(1, Math.max(0, q));
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(clamped * sorted.length)));
  return sorted[rank - 1];
}

// The sketch's relative error (metrics.h), for telling near-ties apart from real order.
export const QUANTILE_RELATIVE_ERROR = 0.01;

function applySecondStage(stage, series, nearTie = 0) {
  if (stage.kind === 'filter') {
    const passes = (value) => {
      switch (stage.op) {
        case '=': return value === stage.threshold;
        case '!=': return value !== stage.threshold;
        case '<': return value < stage.threshold;
        case '<=': return value <= stage.threshold;
        case '>': return value > stage.threshold;
        default: return value >= stage.threshold;
      }
    };
    for (const s of series) s.values = s.values.map((value) => (Number.isNaN(value) || passes(value) ? value : NaN));
    return;
  }
  const k = stage.n;
  if (k <= 0 || series.length <= k) return;
  const largest = stage.kind === 'topk';
  const buckets = Math.max(...series.map((s) => s.values.length));
  const kept = series.map((s) => new Array(s.values.length).fill(NaN));
  for (let b = 0; b < buckets; b += 1) {
    const candidates = [];
    series.forEach((s, i) => { if (b < s.values.length && !Number.isNaN(s.values[b])) candidates.push(i); });
    candidates.sort((x, y) => {
      const vx = series[x].values[b];
      const vy = series[y].values[b];
      if (vx !== vy) return largest ? vy - vx : vx - vy;
      return x - y;
    });
    for (const i of candidates.slice(0, k)) kept[i][b] = series[i].values[b];
    if (nearTie > 0) {
      const inside = candidates.slice(0, k);
      const outside = candidates.slice(k);
      const near = (x, y) => Math.abs(series[x].values[b] - series[y].values[b]) <= nearTie * Math.max(Math.abs(series[x].values[b]), Math.abs(series[y].values[b]));
      for (const i of inside) {
        for (const j of outside) {
          if (!near(i, j)) continue;
          (series[i].optional ??= [])[b] = true;
          (series[j].maybe ??= [])[b] = series[j].values[b];
        }
      }
    }
  }
  series.forEach((s, i) => { s.values = kept[i]; });
}

// compare(): per attribute of the spans, counts per bucket for the selection and the baseline.
const COMPARE_ARRAY_TYPES = new Set(['intArray', 'floatArray', 'stringArray', 'boolArray']);

function compareSeries(query, spans, g) {
  const { filter, topN, start, end } = query.compare;
  const sides = { baseline: new Map(), selection: new Map() };
  const isSelection = (span, view) => {
    if (start > 0n && end > 0n && (span.start < start || span.start >= end)) return false;
    if (filter.expression.k === 'static' && filter.expression.t === 'bool' && filter.expression.v) return true;
    const matched = evaluateSpanField(filter.expression, span, view);
    return matched.t === 'bool' && matched.v;
  };
  const count = (side, attribute, value, bucket) => {
    if (value.t === 'nil' || value.t === 'duration' || COMPARE_ARRAY_TYPES.has(value.t)) return;
    if (!side.has(attribute)) side.set(attribute, { totals: new Array(g.count).fill(0), values: new Map() });
    const counts = side.get(attribute);
    counts.totals[bucket] += 1;
    const key = valueKey(value);
    if (!counts.values.has(key)) counts.values.set(key, { value: staticToAnyValue(value), counts: new Array(g.count).fill(0) });
    counts.values.get(key).counts[bucket] += 1;
  };
  for (const { view, span, bucket } of spans) {
    const side = isSelection(span, view) ? sides.selection : sides.baseline;
    for (const [key, value] of span.attributes) count(side, `span.${key}`, value, bucket);
    for (const [key, value] of span.resource) count(side, `resource.${key}`, value, bucket);
    count(side, 'name', evaluateSpanField({ k: 'intr', name: 'name' }, span, view), bucket);
    count(side, 'status', evaluateSpanField({ k: 'intr', name: 'status' }, span, view), bucket);
    count(side, 'kind', evaluateSpanField({ k: 'intr', name: 'kind' }, span, view), bucket);
  }
  const out = [];
  const tooMany = new Set();
  for (const [name, side] of Object.entries(sides)) {
    for (const [attribute, counts] of side) {
      const ranked = [...counts.values.values()].map((v) => ({ ...v, total: v.counts.reduce((x, y) => x + y, 0) }));
      ranked.sort((a, b) => (a.total !== b.total ? b.total - a.total : compareAnyValue(a.value, b.value)));
      const n = Math.max(topN, 1);
      if (ranked.length > n) tooMany.add(attribute);
      for (const v of ranked.slice(0, n)) {
        out.push({ labels: [{ key: '__meta_type', value: { stringValue: name } }, { key: attribute, value: v.value }], values: v.counts });
      }
      out.push({ labels: [{ key: '__meta_type', value: { stringValue: `${name}_total` } }, { key: attribute, value: NIL_LABEL }], values: counts.totals });
    }
  }
  for (const attribute of tooMany) {
    out.push({ labels: [{ key: '__meta_error', value: { stringValue: '__too_many_values__' } }, { key: attribute, value: NIL_LABEL }], values: new Array(g.count).fill(NaN), keepWithoutSamples: true });
  }
  return out;
}
