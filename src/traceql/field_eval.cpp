// Field expressions over one span: attribute lookup by scope, intrinsics from the view, and
// Tempo's comparison rules. Runs once per span per condition, so it allocates nothing: values
// view the trace data and the query.
#include <re2/re2.h>

#include <cmath>

#include "traceql/evaluate.h"

namespace tracery::traceql {
namespace {

Value FindAttribute(const otlp::Attributes& attributes, const std::string& name) {
  for (const otlp::KeyValue& kv : attributes) {
    if (kv.key == name) return ValueFromAnyValue(kv.value);
  }
  return Value::Nil();
}

Value ReadIntrinsic(Intrinsic intrinsic, const FieldContext& context) {
  const TraceView& trace = *context.trace;
  const SpanRef& ref = trace.spans[context.span];
  const otlp::Span& span = *ref.span;
  switch (intrinsic) {
    case Intrinsic::kDuration: return Value::Duration(static_cast<int64_t>(ref.DurationNanos()));
    case Intrinsic::kName: return Value::String(span.name);
    case Intrinsic::kStatus: return Value::Status(span.status_code);
    case Intrinsic::kStatusMessage: return Value::String(span.status_message);
    case Intrinsic::kKind: return Value::Kind(span.kind);
    case Intrinsic::kSpanId: return Value::HexId(span.span_id);
    case Intrinsic::kParentId: return Value::HexId(span.parent_span_id);
    case Intrinsic::kChildCount: return Value::Int(ref.child_count);
    case Intrinsic::kTraceDuration: return Value::Duration(static_cast<int64_t>(trace.DurationNanos()));
    case Intrinsic::kTraceRootName: return trace.root < 0 ? Value::Nil() : Value::String(trace.RootSpanName());
    case Intrinsic::kTraceRootService: return trace.root < 0 ? Value::Nil() : Value::String(trace.RootServiceName());
    case Intrinsic::kTraceId: return Value::HexId(trace.id.View());
    case Intrinsic::kNestedSetLeft: return Value::Int(ref.nested_left);
    case Intrinsic::kNestedSetRight: return Value::Int(ref.nested_right);
    case Intrinsic::kNestedSetParent: return Value::Int(ref.nested_parent);
    case Intrinsic::kEventName:
      if (context.event < 0) return Value::Nil();
      return Value::String(span.events[static_cast<size_t>(context.event)].name);
    case Intrinsic::kEventTimeSinceStart: {
      if (context.event < 0) return Value::Nil();
      uint64_t at = span.events[static_cast<size_t>(context.event)].time_unix_nano;
      return Value::Duration(at > span.start_time_unix_nano ? static_cast<int64_t>(at - span.start_time_unix_nano) : 0);
    }
    case Intrinsic::kLinkTraceId:
      if (context.link < 0) return Value::Nil();
      return Value::HexId(span.links[static_cast<size_t>(context.link)].trace_id);
    case Intrinsic::kLinkSpanId:
      if (context.link < 0) return Value::Nil();
      return Value::HexId(span.links[static_cast<size_t>(context.link)].span_id);
    case Intrinsic::kInstrumentationName: return Value::String(ref.scope->name);
    case Intrinsic::kInstrumentationVersion: return Value::String(ref.scope->version);
    case Intrinsic::kParent:
    case Intrinsic::kNone: break;
  }
  return Value::Nil();
}

Value ReadAttribute(const Attribute& attribute, const FieldContext& context) {
  if (attribute.IsIntrinsic()) return ReadIntrinsic(attribute.intrinsic, context);
  const SpanRef& ref = context.trace->spans[context.span];
  switch (attribute.scope) {
    case AttributeScope::kSpan: return FindAttribute(ref.span->attributes, attribute.name);
    case AttributeScope::kResource: return FindAttribute(ref.resource->attributes, attribute.name);
    case AttributeScope::kNone: {
      Value value = FindAttribute(ref.span->attributes, attribute.name);
      return value.IsNil() ? FindAttribute(ref.resource->attributes, attribute.name) : value;
    }
    case AttributeScope::kEvent:
      if (context.event < 0) return Value::Nil();
      return FindAttribute(ref.span->events[static_cast<size_t>(context.event)].attributes, attribute.name);
    case AttributeScope::kLink:
      if (context.link < 0) return Value::Nil();
      return FindAttribute(ref.span->links[static_cast<size_t>(context.link)].attributes, attribute.name);
    case AttributeScope::kInstrumentation: return FindAttribute(ref.scope->attributes, attribute.name);
    case AttributeScope::kTrace: break;
  }
  return Value::Nil();
}

bool IntLike(ValueType t) { return t == ValueType::kInt || t == ValueType::kDuration; }

bool OrderResult(int order, Operator op) {
  switch (op) {
    case Operator::kEqual: return order == 0;
    case Operator::kNotEqual: return order != 0;
    case Operator::kLess: return order < 0;
    case Operator::kLessEqual: return order <= 0;
    case Operator::kGreater: return order > 0;
    case Operator::kGreaterEqual: return order >= 0;
    default: return false;
  }
}

// Two scalars; false when their types cannot be compared.
bool CompareScalars(const Value& a, const Value& b, Operator op) {
  if (a.IsNumeric() && b.IsNumeric()) {
    if (IntLike(a.type) && IntLike(b.type)) {
      return OrderResult(a.int_value < b.int_value ? -1 : a.int_value > b.int_value ? 1 : 0, op);
    }
    double x = a.AsDouble(), y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return false;
    return OrderResult(x < y ? -1 : x > y ? 1 : 0, op);
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case ValueType::kString: {
      int order = a.StringValue().compare(b.StringValue());
      return OrderResult(order < 0 ? -1 : order > 0 ? 1 : 0, op);
    }
    case ValueType::kBool:
    case ValueType::kStatus:
    case ValueType::kKind: {
      bool equal = a.type == ValueType::kBool ? a.bool_value == b.bool_value : a.int_value == b.int_value;
      if (op == Operator::kEqual) return equal;
      if (op == Operator::kNotEqual) return !equal;
      return false;
    }
    default: return false;
  }
}

bool Comparable(const Value& a, const Value& b) { return (a.IsNumeric() && b.IsNumeric()) || a.type == b.type; }

Operator Mirror(Operator op) {
  switch (op) {
    case Operator::kLess: return Operator::kGreater;
    case Operator::kLessEqual: return Operator::kGreaterEqual;
    case Operator::kGreater: return Operator::kLess;
    case Operator::kGreaterEqual: return Operator::kLessEqual;
    default: return op;
  }
}

bool RegexMatches(const Value& value, const FieldExpr& expr) {
  bool negate = expr.op == Operator::kNotRegex;
  const RE2& regex = *expr.regex;
  auto match = [&regex](const Value& v) {
    std::string_view text = v.StringValue();
    return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), regex);
  };
  if (value.type == ValueType::kString) return match(value) != negate;
  if (value.type == ValueType::kArray) {
    bool any_string = false, any_match = false;
    for (const otlp::AnyValue& element : value.array->array_values) {
      Value v = ValueFromAnyValue(element);
      if (v.type != ValueType::kString) continue;
      any_string = true;
      any_match = any_match || match(v);
    }
    return negate ? any_string && !any_match : any_match;
  }
  return false;
}

Value Arithmetic(const Value& a, const Value& b, Operator op) {
  if (!a.IsNumeric() || !b.IsNumeric()) return Value::Nil();
  // Integers stay integers, as in Tempo: 503 / 100 is 5 (division truncates).
  bool floating = a.type == ValueType::kFloat || b.type == ValueType::kFloat || op == Operator::kPow;
  if (!floating) {
    int64_t x = a.int_value, y = b.int_value, r = 0;
    switch (op) {
      case Operator::kAdd: r = static_cast<int64_t>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y)); break;
      case Operator::kSub: r = static_cast<int64_t>(static_cast<uint64_t>(x) - static_cast<uint64_t>(y)); break;
      case Operator::kMul: r = static_cast<int64_t>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y)); break;
      case Operator::kDiv:
        if (y == 0 || (x == INT64_MIN && y == -1)) return Value::Nil();
        r = x / y;
        break;
      case Operator::kMod:
        if (y == 0 || (x == INT64_MIN && y == -1)) return Value::Nil();
        r = x % y;
        break;
      default: return Value::Nil();
    }
    bool duration = a.type == ValueType::kDuration || b.type == ValueType::kDuration;
    return duration ? Value::Duration(r) : Value::Int(r);
  }
  double x = a.AsDouble(), y = b.AsDouble(), r = 0;
  switch (op) {
    case Operator::kAdd: r = x + y; break;
    case Operator::kSub: r = x - y; break;
    case Operator::kMul: r = x * y; break;
    case Operator::kDiv:
      if (y == 0) return Value::Nil();
      r = x / y;
      break;
    case Operator::kMod:
      if (y == 0) return Value::Nil();
      r = std::fmod(x, y);
      break;
    case Operator::kPow: r = std::pow(x, y); break;
    default: return Value::Nil();
  }
  return Value::Float(r);
}

}  // namespace

bool IsTrue(const Value& value) { return value.type == ValueType::kBool && value.bool_value; }

bool CompareValues(const Value& a, const Value& b, Operator op) {
  if (a.IsNil() || b.IsNil()) return false;
  if (a.type == ValueType::kArray && b.type == ValueType::kArray) return false;
  if (a.type == ValueType::kArray || b.type == ValueType::kArray) {
    const Value& array = a.type == ValueType::kArray ? a : b;
    const Value& scalar = a.type == ValueType::kArray ? b : a;
    Operator effective = a.type == ValueType::kArray ? op : Mirror(op);
    if (effective == Operator::kNotEqual) {
      bool any_comparable = false, any_equal = false;
      for (const otlp::AnyValue& element : array.array->array_values) {
        Value v = ValueFromAnyValue(element);
        if (!Comparable(v, scalar)) continue;
        any_comparable = true;
        any_equal = any_equal || CompareScalars(v, scalar, Operator::kEqual);
      }
      return any_comparable && !any_equal;
    }
    for (const otlp::AnyValue& element : array.array->array_values) {
      if (CompareScalars(ValueFromAnyValue(element), scalar, effective)) return true;
    }
    return false;
  }
  return CompareScalars(a, b, op);
}

Value EvaluateInContext(const FieldExpr& expr, const FieldContext& context) {
  switch (expr.kind) {
    case FieldExpr::Kind::kStatic: return expr.LiteralValue();
    case FieldExpr::Kind::kAttribute: return ReadAttribute(expr.attribute, context);
    case FieldExpr::Kind::kUnary: {
      Value v = EvaluateInContext(*expr.lhs, context);
      switch (expr.op) {
        case Operator::kExists: return Value::Bool(!v.IsNil());
        case Operator::kNotExists: return Value::Bool(v.IsNil());
        case Operator::kNot: return v.type == ValueType::kBool ? Value::Bool(!v.bool_value) : Value::Nil();
        case Operator::kNegate:
          if (v.type == ValueType::kFloat) return Value::Float(-v.float_value);
          if (IntLike(v.type)) {
            v.int_value = static_cast<int64_t>(0 - static_cast<uint64_t>(v.int_value));
            return v;
          }
          return Value::Nil();
        default: return Value::Nil();
      }
    }
    case FieldExpr::Kind::kBinary: {
      if (expr.op == Operator::kAnd) {
        if (!IsTrue(EvaluateInContext(*expr.lhs, context))) return Value::Bool(false);
        return Value::Bool(IsTrue(EvaluateInContext(*expr.rhs, context)));
      }
      if (expr.op == Operator::kOr) {
        if (IsTrue(EvaluateInContext(*expr.lhs, context))) return Value::Bool(true);
        return Value::Bool(IsTrue(EvaluateInContext(*expr.rhs, context)));
      }
      Value left = EvaluateInContext(*expr.lhs, context);
      if (expr.op == Operator::kRegex || expr.op == Operator::kNotRegex) {
        return Value::Bool(expr.regex && RegexMatches(left, expr));
      }
      Value right = EvaluateInContext(*expr.rhs, context);
      switch (expr.op) {
        case Operator::kEqual:
        case Operator::kNotEqual:
        case Operator::kLess:
        case Operator::kLessEqual:
        case Operator::kGreater:
        case Operator::kGreaterEqual: return Value::Bool(CompareValues(left, right, expr.op));
        default: return Arithmetic(left, right, expr.op);
      }
    }
  }
  return Value::Nil();
}

bool SpanMatchesFilter(const SpansetExpr& filter, const TraceView& trace, uint32_t span) {
  if (!filter.filter) return true;
  FieldContext context{&trace, span, -1, -1};
  if (!filter.uses_events && !filter.uses_links) return IsTrue(EvaluateInContext(*filter.filter, context));
  const otlp::Span& s = *trace.spans[span].span;
  int32_t events = filter.uses_events ? static_cast<int32_t>(s.events.size()) : 0;
  int32_t links = filter.uses_links ? static_cast<int32_t>(s.links.size()) : 0;
  // With no events (links) the condition is still evaluated once, event fields being nil, so
  // `{ event.x = 1 || span.y = 2 }` can match a span without events.
  for (int32_t e = events == 0 ? -1 : 0; e < events; ++e) {
    for (int32_t l = links == 0 ? -1 : 0; l < links; ++l) {
      context.event = e;
      context.link = l;
      if (IsTrue(EvaluateInContext(*filter.filter, context))) return true;
    }
  }
  return false;
}

namespace {

void FieldUses(const FieldExpr& expr, bool& events, bool& links) {
  if (expr.kind == FieldExpr::Kind::kAttribute) {
    const Attribute& a = expr.attribute;
    events = events || a.scope == AttributeScope::kEvent || a.intrinsic == Intrinsic::kEventName ||
             a.intrinsic == Intrinsic::kEventTimeSinceStart;
    links = links || a.scope == AttributeScope::kLink || a.intrinsic == Intrinsic::kLinkSpanId ||
            a.intrinsic == Intrinsic::kLinkTraceId;
  }
  if (expr.lhs) FieldUses(*expr.lhs, events, links);
  if (expr.rhs) FieldUses(*expr.rhs, events, links);
}

}  // namespace

Value EvaluateField(const FieldExpr& expr, const TraceView& trace, uint32_t span_index) {
  FieldContext context{&trace, span_index, -1, -1};
  bool events = false, links = false;
  FieldUses(expr, events, links);
  if (!events && !links) return EvaluateInContext(expr, context);
  // Event (link) fields: the value for the first event (link) that has one.
  const otlp::Span& s = *trace.spans[span_index].span;
  int32_t event_count = events ? static_cast<int32_t>(s.events.size()) : 0;
  int32_t link_count = links ? static_cast<int32_t>(s.links.size()) : 0;
  for (int32_t e = event_count == 0 ? -1 : 0; e < event_count; ++e) {
    for (int32_t l = link_count == 0 ? -1 : 0; l < link_count; ++l) {
      context.event = e;
      context.link = l;
      Value value = EvaluateInContext(expr, context);
      if (!value.IsNil()) return value;
    }
  }
  return Value::Nil();
}

}  // namespace tracery::traceql
