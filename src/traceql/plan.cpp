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

// The same comparison as a column test, when the columns can answer it: span name, status,
// kind, duration, and span, resource or unscoped attributes against a literal.
void AddSpanCondition(const Attribute& a, Operator op, const FieldExpr& literal,
                      const std::shared_ptr<const re2::RE2>& regex, block::SpanFilter& filter) {
  using Field = block::SpanCondition::Field;
  using Op = block::SpanCondition::Op;
  using Type = block::SpanCondition::Type;
  block::SpanCondition c;
  switch (op) {
    case Operator::kEqual: c.op = Op::kEqual; break;
    case Operator::kNotEqual: c.op = Op::kNotEqual; break;
    case Operator::kLess: c.op = Op::kLess; break;
    case Operator::kLessEqual: c.op = Op::kLessEqual; break;
    case Operator::kGreater: c.op = Op::kGreater; break;
    case Operator::kGreaterEqual: c.op = Op::kGreaterEqual; break;
    case Operator::kRegex: c.op = Op::kRegex; break;
    case Operator::kNotRegex: c.op = Op::kNotRegex; break;
    default: return;
  }
  if (c.op == Op::kRegex || c.op == Op::kNotRegex) {
    if (!regex) return;
    c.regex = regex;
  }
  const Value& value = literal.literal;
  auto set_literal = [&]() {
    switch (value.type) {
      case ValueType::kString: c.type = Type::kString; c.string_value = literal.string_literal; return true;
      case ValueType::kInt: c.type = Type::kInt; c.int_value = value.int_value; return true;
      case ValueType::kFloat: c.type = Type::kFloat; c.float_value = value.float_value; return true;
      case ValueType::kBool: c.type = Type::kBool; c.bool_value = value.bool_value; return true;
      default: return false;
    }
  };
  switch (a.intrinsic) {
    case Intrinsic::kName:
      if (value.type != ValueType::kString && !c.regex) return;
      c.field = Field::kName;
      set_literal();
      break;
    case Intrinsic::kStatus:
      if (value.type != ValueType::kStatus) return;
      c.field = Field::kStatus;
      c.type = Type::kInt;
      c.int_value = value.int_value;
      break;
    case Intrinsic::kKind:
      if (value.type != ValueType::kKind) return;
      c.field = Field::kKind;
      c.type = Type::kInt;
      c.int_value = value.int_value;
      break;
    case Intrinsic::kDuration:
      if (value.type != ValueType::kDuration) return;
      c.field = Field::kDuration;
      c.type = Type::kInt;
      c.int_value = value.int_value;
      break;
    case Intrinsic::kNone:
      if (a.parent) return;
      if (a.scope == AttributeScope::kSpan) c.field = Field::kSpanAttribute;
      else if (a.scope == AttributeScope::kResource) c.field = Field::kResourceAttribute;
      else if (a.scope == AttributeScope::kNone) c.field = Field::kAnyAttribute;
      else return;
      c.key = a.name;
      if (!set_literal() && !c.regex) return;
      break;
    default: return;
  }
  filter.all_of.push_back(std::move(c));
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
  AddSpanCondition(a, op, *literal, expr.regex, out.span_filter);
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
  out.span_filter.all_of.insert(out.span_filter.all_of.end(), in.span_filter.all_of.begin(), in.span_filter.all_of.end());
}

size_t Weight(const PruneConditions& c) {
  return (c.services_any_of.empty() ? 0 : 4) + c.span_attribute_keys.size() + (c.min_span_duration_nanos ? 1 : 0) +
         c.span_filter.all_of.size();
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

// The fewest spans a trace needs for a `count() op n` stage to keep a spanset of it (every
// spanset is a subset of one trace's spans); 0 when the stage sets no lower bound.
uint32_t MinSpansFor(const ScalarFilter& filter) {
  if (filter.aggregate != AggregateKind::kCount || filter.threshold.type != ValueType::kInt) return 0;
  int64_t n = filter.threshold.int_value;
  switch (filter.op) {
    case Operator::kGreater: n += n < INT64_MAX ? 1 : 0; break;
    case Operator::kGreaterEqual:
    case Operator::kEqual: break;
    default: return 0;
  }
  return uint32_t(std::clamp<int64_t>(n, 0, UINT32_MAX));
}

}  // namespace

PruneConditions PlanPruning(const Query& query) {
  PruneConditions out;
  for (const Stage& stage : query.pipeline().stages) {
    if (stage.kind == Stage::Kind::kSpanset) MergeSameSpan(out, FromSpanset(*stage.spanset));
    if (stage.kind == Stage::Kind::kScalarFilter)
      out.min_trace_spans = std::max(out.min_trace_spans, MinSpansFor(stage.scalar_filter));
  }
  std::sort(out.span_attribute_keys.begin(), out.span_attribute_keys.end());
  out.span_attribute_keys.erase(std::unique(out.span_attribute_keys.begin(), out.span_attribute_keys.end()),
                                out.span_attribute_keys.end());
  return out;
}

}  // namespace tracery::traceql

namespace tracery::traceql {
namespace {

void NeedAttribute(const Attribute& a, block::Projection& out) {
  switch (a.intrinsic) {
    case Intrinsic::kNone: break;
    case Intrinsic::kStatusMessage: out.status_message = true; return;
    case Intrinsic::kEventName:
    case Intrinsic::kEventTimeSinceStart: out.events = true; return;
    case Intrinsic::kLinkTraceId:
    case Intrinsic::kLinkSpanId: out.links = true; return;
    case Intrinsic::kName:
    case Intrinsic::kTraceRootName: out.names = true; return;
    default: return;  // read off the span's own fields, always decoded
  }
  switch (a.scope) {
    case AttributeScope::kSpan:
    case AttributeScope::kNone: out.span_attributes = true; break;
    case AttributeScope::kEvent: out.events = true; break;
    case AttributeScope::kLink: out.links = true; break;
    default: break;  // resource and instrumentation attributes come with their tables
  }
  if (a.parent) out.span_attributes = true;
}

void NeedField(const FieldExpr* expr, block::Projection& out) {
  if (!expr) return;
  if (expr->kind == FieldExpr::Kind::kAttribute) NeedAttribute(expr->attribute, out);
  NeedField(expr->lhs.get(), out);
  NeedField(expr->rhs.get(), out);
}

void NeedPipeline(const Pipeline& pipeline, block::Projection& out);

void NeedSpanset(const SpansetExpr* expr, block::Projection& out) {
  if (!expr) return;
  NeedField(expr->filter.get(), out);
  if (expr->uses_events) out.events = true;
  if (expr->uses_links) out.links = true;
  NeedSpanset(expr->lhs.get(), out);
  NeedSpanset(expr->rhs.get(), out);
  if (expr->pipeline) NeedPipeline(*expr->pipeline, out);
}

void NeedPipeline(const Pipeline& pipeline, block::Projection& out) {
  for (const Stage& stage : pipeline.stages) {
    NeedSpanset(stage.spanset.get(), out);
    NeedField(stage.scalar_filter.argument.get(), out);
    NeedField(stage.group_by.get(), out);
    for (const Attribute& a : stage.select) NeedAttribute(a, out);
  }
}

}  // namespace

block::Projection NeededColumns(const Query& query) {
  block::Projection out{false, false, false, false, false};
  NeedPipeline(query.pipeline(), out);
  if (const MetricsStage* metrics = query.metrics()) {
    if (metrics->function == MetricsFunction::kCompare) return block::Projection::All();  // counts every attribute
    NeedField(metrics->attribute.get(), out);
    for (const FieldExpr& by : metrics->by) NeedField(&by, out);
  }
  return out;
}

}  // namespace tracery::traceql

namespace tracery::traceql {
namespace {

bool SpanLocalAttribute(const Attribute& a) {
  switch (a.intrinsic) {
    case Intrinsic::kChildCount:
    case Intrinsic::kParent:
    case Intrinsic::kTraceDuration:
    case Intrinsic::kTraceRootName:
    case Intrinsic::kTraceRootService:
    case Intrinsic::kNestedSetLeft:
    case Intrinsic::kNestedSetRight:
    case Intrinsic::kNestedSetParent: return false;
    default: return !a.parent;
  }
}

bool SpanLocalField(const FieldExpr* expr) {
  if (!expr) return true;
  if (expr->kind == FieldExpr::Kind::kAttribute && !SpanLocalAttribute(expr->attribute)) return false;
  return SpanLocalField(expr->lhs.get()) && SpanLocalField(expr->rhs.get());
}

}  // namespace

bool IsSpanLocal(const Query& query) {
  for (const Stage& stage : query.pipeline().stages) {
    if (stage.kind != Stage::Kind::kSpanset || !stage.spanset) return false;
    if (stage.spanset->kind != SpansetExpr::Kind::kFilter || !SpanLocalField(stage.spanset->filter.get())) return false;
  }
  if (const MetricsStage* metrics = query.metrics()) {
    if (metrics->function == MetricsFunction::kCompare) return false;
    if (!SpanLocalField(metrics->attribute.get())) return false;
    for (const FieldExpr& by : metrics->by)
      if (!SpanLocalField(&by)) return false;
  }
  return true;
}

}  // namespace tracery::traceql
