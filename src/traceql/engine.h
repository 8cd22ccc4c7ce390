// TraceQL: parse a query once, then evaluate it over whole traces. This header is the
// folder's public face; the lexer, parser, AST and evaluator behind it are private.
//
//   auto query = traceql::Parse("{ resource.service.name = \"api\" && duration > 100ms }");
//   if (!query.ok()) -> 400 with query.status().message()
//   for each trace: auto spansets = traceql::EvaluateSearch(*query.value(), view);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "block/span_filter.h"
#include "common/status.h"
#include "otlp/model.h"
#include "traceql/trace_view.h"

namespace tracery::traceql {

class Query;  // parsed and validated; immutable and safe to share between threads

// Parses and validates. A syntax error is InvalidArgument naming the 1-based line and column
// and what was expected ("parse error at 1:14: expected '}' but found '&&'"); a query that
// parses but is not supported (parent. attributes, scalar filters other than an aggregate
// compared with a literal, ...) is InvalidArgument saying what is unsupported.
Result<std::shared_ptr<const Query>> Parse(std::string_view text);

bool IsMetricsQuery(const Query& query);  // ends in a metrics function (rate(), ...)

// Query hints from with(...), by name; unknown hints are kept (and ignored by callers).
const otlp::AnyValue* FindHint(const Query& query, std::string_view name);

// One span of a result spanset with the attributes Tempo shows for it: the ones the query's
// conditions and select(...) name, keyed as Tempo keys them ("http.status_code", "status",
// "duration", "kind", "service.name", ...), valued as Tempo encodes them (durations, status
// and kind as strings such as "120ms", "error", "server").
struct ResultSpan {
  uint32_t index = 0;  // into TraceView::spans
  std::vector<otlp::KeyValue> attributes;
};

struct ResultSpanset {
  std::vector<ResultSpan> spans;  // every matching span, in view order (callers truncate to spss)
  // Spanset-level attributes: by(...) groups as "by(resource.service.name)", aggregates as
  // "count()", "avg(duration)".
  std::vector<otlp::KeyValue> attributes;
};

// Evaluates a search (non-metrics) query over one whole trace. Empty when the trace does not
// match. Deterministic: the same query over the same trace gives the same answer.
std::vector<ResultSpanset> EvaluateSearch(const Query& query, const TraceView& trace);

// What every matching trace must have, for skipping row groups and blocks whose stats rule
// it out without reading them. Conservative: anything the planner cannot prove is left
// open (empty / zero).
struct PruneConditions {
  // The trace has a span of one of these services (resource.service.name); empty: any.
  std::vector<std::string> services_any_of;
  // The trace has spans carrying each of these span attribute keys.
  std::vector<std::string> span_attribute_keys;
  // The trace has a span at least this long.
  uint64_t min_span_duration_nanos = 0;
  // The trace lasts at least this long (trace:duration / traceDuration lower bound).
  uint64_t min_trace_duration_nanos = 0;
  // The trace has at least this many spans: a `count() > n` (`>= n`, `= n`) stage of the
  // query's pipeline, as every spanset holds spans of one trace.
  uint32_t min_trace_spans = 0;
  // A span every matching trace has meets these conditions (checked on block columns
  // before spans are decoded).
  block::SpanFilter span_filter;
};
PruneConditions PlanPruning(const Query& query);

// Whether every span's fate is decided by the span alone: spanset filters only (no
// structural operators, aggregates or groups) that read no trace-level or structural field
// (trace:*, rootName, nestedSet*, childCount, ...), nor do the metrics stage's attributes.
// Such a query gives the same spans over any fragment of a trace as over the whole trace.
bool IsSpanLocal(const Query& query);

// The span columns the query reads (its conditions, aggregates, by(), select() and metrics
// attributes), so a scan decodes no others.
block::Projection NeededColumns(const Query& query);

}  // namespace tracery::traceql
