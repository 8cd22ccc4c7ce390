// PlanPruning: conditions every matching trace must satisfy, read off the query conservatively.
// Only conjunctions are followed: a `{ }` filter's top-level `&&` terms, one side of spanset
// operators that need both sides to match (`&&`, structural and union-structural) and each
// later pipeline stage. Under `||`, `!`, negated spanset operators or wrapped pipelines
// nothing is claimed. Every condition is about one span, so that it holds for the row group
// of any fragment that has that span.
#include <algorithm>

#include "traceql/ast.h"
#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

bool IsLiteral(const FieldExpr& expr, ValueType type) {
  return expr.kind == FieldExpr::Kind::kStatic && expr.literal.type == type;
}

void FromCondition(const FieldExpr& expr, PruneConditions& out) {
  if (expr.kind == FieldExpr::Kind::kBinary && expr.op == Operator::kAnd) {
    FromCondition(*expr.lhs, out);
    FromCondition(*expr.rhs, out);
    return;
  }
  if (expr.kind == FieldExpr::Kind::kUnary && expr.op == Operator::kExists && expr.lhs->IsAttribute()) {
    const Attribute& a = expr.lhs->attribute;
    if (!a.IsIntrinsic() && a.scope == AttributeScope::kSpan) out.span_attribute_keys.push_back(a.name);
    return;
  }
  if (expr.kind != FieldExpr::Kind::kBinary) return;
  // Normalise to `attribute op literal`.
  const FieldExpr* attribute = expr.lhs.get();
  const FieldExpr* literal = expr.rhs.get();
  Operator op = expr.op;
  if (!attribute->IsAttribute()) {
    std::swap(attribute, literal);
    switch (op) {
      case Operator::kLess: op = Operator::kGreater; break;
      case Operator::kLessEqual: op = Operator::kGreaterEqual; break;
      case Operator::kGreater: op = Operator::kLess; break;
      case Operator::kGreaterEqual: op = Operator::kLessEqual; break;
      case Operator::kRegex:
      case Operator::kNotRegex: return;  // the regex is always on the right
      default: break;
    }
  }
  if (!attribute->IsAttribute() || literal->kind != FieldExpr::Kind::kStatic) return;
  bool comparison = op == Operator::kEqual || op == Operator::kNotEqual || op == Operator::kLess ||
                    op == Operator::kLessEqual || op == Operator::kGreater || op == Operator::kGreaterEqual ||
                    op == Operator::kRegex || op == Operator::kNotRegex;
  if (!comparison) return;
  const Attribute& a = attribute->attribute;
  // Any comparison is false on a missing attribute, so the key must be there.
  if (!a.IsIntrinsic() && a.scope == AttributeScope::kSpan) out.span_attribute_keys.push_back(a.name);
  if (!a.IsIntrinsic() && a.scope == AttributeScope::kResource && a.name == "service.name" &&
      op == Operator::kEqual && IsLiteral(*literal, ValueType::kString) && out.services_any_of.empty()) {
    out.services_any_of.push_back(literal->string_literal);
  }
  bool lower_bound = op == Operator::kGreater || op == Operator::kGreaterEqual || op == Operator::kEqual;
  if (lower_bound && IsLiteral(*literal, ValueType::kDuration) && literal->literal.int_value > 0) {
    auto bound = static_cast<uint64_t>(literal->literal.int_value);
    if (a.intrinsic == Intrinsic::kDuration) out.min_span_duration_nanos = std::max(out.min_span_duration_nanos, bound);
    if (a.intrinsic == Intrinsic::kTraceDuration) {
      out.min_trace_duration_nanos = std::max(out.min_trace_duration_nanos, bound);
    }
  }
}

// Folds conditions on the same span (one filter's terms, or later pipeline stages, which
// filter the spans the earlier ones kept) into `out`.
void MergeSameSpan(PruneConditions& out, const PruneConditions& in) {
  if (out.services_any_of.empty()) out.services_any_of = in.services_any_of;
  out.span_attribute_keys.insert(out.span_attribute_keys.end(), in.span_attribute_keys.begin(), in.span_attribute_keys.end());
  out.min_span_duration_nanos = std::max(out.min_span_duration_nanos, in.min_span_duration_nanos);
  out.min_trace_duration_nanos = std::max(out.min_trace_duration_nanos, in.min_trace_duration_nanos);
}

size_t Weight(const PruneConditions& c) {
  return (c.services_any_of.empty() ? 0 : 4) + c.span_attribute_keys.size() + (c.min_span_duration_nanos ? 1 : 0);
}

// What one span of every match must satisfy. The two sides of `&&` or a structural operator
// are different spans, which may lie in different blocks (a trace cut in two): the plan
// keeps one side's conditions only, so that a row group holding that side's span is never
// skipped — search reads the rest of the trace from there.
PruneConditions FromSpanset(const SpansetExpr& expr) {
  PruneConditions out;
  switch (expr.kind) {
    case SpansetExpr::Kind::kFilter:
      if (expr.filter) FromCondition(*expr.filter, out);
      return out;
    case SpansetExpr::Kind::kPipeline: return out;
    case SpansetExpr::Kind::kOperation:
      switch (expr.op) {
        case SpansetOperator::kUnion: return out;
        case SpansetOperator::kNotChild:
        case SpansetOperator::kNotParent:
        case SpansetOperator::kNotDescendant:
        case SpansetOperator::kNotAncestor:
        case SpansetOperator::kNotSibling: return FromSpanset(*expr.rhs);  // A need not match
        default: {
          PruneConditions left = FromSpanset(*expr.lhs), right = FromSpanset(*expr.rhs);
          PruneConditions& chosen = Weight(left) >= Weight(right) ? left : right;
          chosen.min_trace_duration_nanos = std::max(left.min_trace_duration_nanos, right.min_trace_duration_nanos);
          return chosen;
        }
      }
  }
  return out;
}

}  // namespace

PruneConditions PlanPruning(const Query& query) {
  PruneConditions out;
  for (const Stage& stage : query.pipeline().stages) {
    if (stage.kind == Stage::Kind::kSpanset) MergeSameSpan(out, FromSpanset(*stage.spanset));
  }
  std::sort(out.span_attribute_keys.begin(), out.span_attribute_keys.end());
  out.span_attribute_keys.erase(std::unique(out.span_attribute_keys.begin(), out.span_attribute_keys.end()),
                                out.span_attribute_keys.end());
  return out;
}

}  // namespace tracery::traceql
