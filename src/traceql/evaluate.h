// The evaluator's private interface (src/traceql/ only): reading fields of one span, with the
// event and link a per-event (per-link) condition is looking at, and the structural relations
// between spansets.
#pragma once

#include <cstdint>
#include <vector>

#include "traceql/ast.h"
#include "traceql/trace_view.h"

namespace tracery::traceql {

struct FieldContext {
  const TraceView* trace = nullptr;
  uint32_t span = 0;
  int32_t event = -1;  // index into the span's events, -1: none (event fields are nil)
  int32_t link = -1;
};

Value EvaluateInContext(const FieldExpr& expr, const FieldContext& context);
bool IsTrue(const Value& value);
// `a op b` for = != < <= > >= with Tempo's rules: nil and mismatched types never match (not even
// for !=), numbers compare across int/float/duration, arrays match if any element does (for
// != and !~: if no element does).
bool CompareValues(const Value& a, const Value& b, Operator op);
// Whether span `span` of `trace` satisfies a `{ filter }` node; for filters reading event or
// link fields, whether any of its events (links) does.
bool SpanMatchesFilter(const SpansetExpr& filter, const TraceView& trace, uint32_t span);

// Spans in view order (ascending indexes), no duplicates.
using SpanList = std::vector<uint32_t>;
// `lhs op rhs` for every spanset operator.
SpanList ApplySpansetOperator(SpansetOperator op, const SpanList& lhs, const SpanList& rhs, const TraceView& trace);
SpanList UnionSpans(const SpanList& a, const SpanList& b);

}  // namespace tracery::traceql
