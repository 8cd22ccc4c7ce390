// Values, names and text forms of the syntax tree (ast.h).
#include "traceql/ast.h"

#include <re2/re2.h>

#include <cstdio>
#include <cstring>

namespace tracery::traceql {

// ---- Value ------------------------------------------------------------------------------

Value Value::Int(int64_t v) {
  Value value;
  value.type = ValueType::kInt;
  value.int_value = v;
  return value;
}
Value Value::Float(double v) {
  Value value;
  value.type = ValueType::kFloat;
  value.float_value = v;
  return value;
}
Value Value::String(std::string_view v) {
  Value value;
  value.type = ValueType::kString;
  value.string_value = v;
  return value;
}
Value Value::Bool(bool v) {
  Value value;
  value.type = ValueType::kBool;
  value.bool_value = v;
  return value;
}
Value Value::Duration(int64_t nanos) {
  Value value;
  value.type = ValueType::kDuration;
  value.int_value = nanos;
  return value;
}
Value Value::Status(otlp::StatusCode code) {
  Value value;
  value.type = ValueType::kStatus;
  value.int_value = static_cast<int64_t>(code);
  return value;
}
Value Value::Kind(otlp::SpanKind kind) {
  Value value;
  value.type = ValueType::kKind;
  value.int_value = static_cast<int64_t>(kind);
  return value;
}
Value Value::HexId(std::string_view raw_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  Value value;
  value.type = ValueType::kString;
  size_t n = raw_bytes.size() > 16 ? 16 : raw_bytes.size();
  for (size_t i = 0; i < n; ++i) {
    auto b = static_cast<uint8_t>(raw_bytes[i]);
    value.inline_text[2 * i] = kHex[b >> 4];
    value.inline_text[2 * i + 1] = kHex[b & 0xF];
  }
  value.inline_size = static_cast<uint8_t>(2 * n);
  return value;
}

double Value::AsDouble() const {
  switch (type) {
    case ValueType::kFloat: return float_value;
    case ValueType::kInt:
    case ValueType::kDuration: return static_cast<double>(int_value);
    default: return 0;
  }
}

Value ValueFromAnyValue(const otlp::AnyValue& any) {
  switch (any.type) {
    case otlp::AnyValue::Type::kString: return Value::String(any.string_value);
    case otlp::AnyValue::Type::kBool: return Value::Bool(any.bool_value);
    case otlp::AnyValue::Type::kInt: return Value::Int(any.int_value);
    case otlp::AnyValue::Type::kDouble: return Value::Float(any.double_value);
    case otlp::AnyValue::Type::kArray: {
      Value value;
      value.type = ValueType::kArray;
      value.array = &any;
      return value;
    }
    default: return Value::Nil();
  }
}

std::string FormatGoDuration(int64_t nanos) {
  if (nanos == 0) return "0s";
  bool negative = nanos < 0;
  uint64_t u = negative ? static_cast<uint64_t>(-(nanos + 1)) + 1 : static_cast<uint64_t>(nanos);
  // Writes whole.fraction with `precision` fraction digits, trailing zeros dropped.
  auto fraction = [](uint64_t value, int precision) {
    uint64_t scale = 1;
    for (int i = 0; i < precision; ++i) scale *= 10;
    std::string out = std::to_string(value / scale);
    uint64_t rest = value % scale;
    if (rest != 0) {
      std::string digits = std::to_string(rest);
      digits.insert(0, static_cast<size_t>(precision) - digits.size(), '0');
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    return out;
  };
  std::string out;
  if (u < 1000) {
    out = std::to_string(u) + "ns";
  } else if (u < 1000000) {
    out = fraction(u, 3) + "\xC2\xB5s";
  } else if (u < 1000000000) {
    out = fraction(u, 6) + "ms";
  } else {
    uint64_t seconds_part = u % 60000000000ull;
    uint64_t minutes = u / 60000000000ull;
    out = fraction(seconds_part, 9) + "s";
    if (minutes > 0) {
      uint64_t hours = minutes / 60;
      out = std::to_string(minutes % 60) + "m" + out;
      if (hours > 0) out = std::to_string(hours) + "h" + out;
    }
  }
  return negative ? "-" + out : out;
}

const char* StatusKeyword(otlp::StatusCode code) {
  switch (code) {
    case otlp::StatusCode::kOk: return "ok";
    case otlp::StatusCode::kError: return "error";
    default: return "unset";
  }
}

const char* KindKeyword(otlp::SpanKind kind) {
  switch (kind) {
    case otlp::SpanKind::kInternal: return "internal";
    case otlp::SpanKind::kServer: return "server";
    case otlp::SpanKind::kClient: return "client";
    case otlp::SpanKind::kProducer: return "producer";
    case otlp::SpanKind::kConsumer: return "consumer";
    default: return "unspecified";
  }
}

otlp::AnyValue ValueToAnyValue(const Value& value) {
  otlp::AnyValue any;
  switch (value.type) {
    case ValueType::kInt:
      any.type = otlp::AnyValue::Type::kInt;
      any.int_value = value.int_value;
      break;
    case ValueType::kFloat:
      any.type = otlp::AnyValue::Type::kDouble;
      any.double_value = value.float_value;
      break;
    case ValueType::kBool:
      any.type = otlp::AnyValue::Type::kBool;
      any.bool_value = value.bool_value;
      break;
    case ValueType::kString:
      any.type = otlp::AnyValue::Type::kString;
      any.string_value = std::string(value.StringValue());
      break;
    case ValueType::kDuration:
      any.type = otlp::AnyValue::Type::kString;
      any.string_value = FormatGoDuration(value.int_value);
      break;
    case ValueType::kStatus:
      any.type = otlp::AnyValue::Type::kString;
      any.string_value = StatusKeyword(static_cast<otlp::StatusCode>(value.int_value));
      break;
    case ValueType::kKind:
      any.type = otlp::AnyValue::Type::kString;
      any.string_value = KindKeyword(static_cast<otlp::SpanKind>(value.int_value));
      break;
    case ValueType::kArray:
      any.type = otlp::AnyValue::Type::kArray;
      for (const otlp::AnyValue& element : value.array->array_values) {
        any.array_values.push_back(ValueToAnyValue(ValueFromAnyValue(element)));
      }
      break;
    case ValueType::kNil:
      // Tempo writes a nil static as its text.
      any.type = otlp::AnyValue::Type::kString;
      any.string_value = "nil";
      break;
  }
  return any;
}

// ---- attributes ---------------------------------------------------------------------------

namespace {

const char* IntrinsicName(Intrinsic intrinsic) {
  switch (intrinsic) {
    case Intrinsic::kDuration: return "duration";
    case Intrinsic::kName: return "name";
    case Intrinsic::kStatus: return "status";
    case Intrinsic::kStatusMessage: return "statusMessage";
    case Intrinsic::kKind: return "kind";
    case Intrinsic::kSpanId: return "span:id";
    case Intrinsic::kParentId: return "span:parentID";
    case Intrinsic::kChildCount: return "span:childCount";
    case Intrinsic::kParent: return "parent";
    case Intrinsic::kTraceDuration: return "traceDuration";
    case Intrinsic::kTraceRootName: return "rootName";
    case Intrinsic::kTraceRootService: return "rootServiceName";
    case Intrinsic::kTraceId: return "trace:id";
    case Intrinsic::kNestedSetLeft: return "nestedSetLeft";
    case Intrinsic::kNestedSetRight: return "nestedSetRight";
    case Intrinsic::kNestedSetParent: return "nestedSetParent";
    case Intrinsic::kEventName: return "event:name";
    case Intrinsic::kEventTimeSinceStart: return "event:timeSinceStart";
    case Intrinsic::kLinkTraceId: return "link:traceID";
    case Intrinsic::kLinkSpanId: return "link:spanID";
    case Intrinsic::kInstrumentationName: return "instrumentation:name";
    case Intrinsic::kInstrumentationVersion: return "instrumentation:version";
    case Intrinsic::kNone: break;
  }
  return "none";
}

const char* ScopeName(AttributeScope scope) {
  switch (scope) {
    case AttributeScope::kSpan: return "span";
    case AttributeScope::kResource: return "resource";
    case AttributeScope::kEvent: return "event";
    case AttributeScope::kLink: return "link";
    case AttributeScope::kInstrumentation: return "instrumentation";
    case AttributeScope::kTrace: return "trace";
    case AttributeScope::kNone: break;
  }
  return "";
}

}  // namespace

std::string AttributeText(const Attribute& attribute) {
  if (attribute.IsIntrinsic()) return IntrinsicName(attribute.intrinsic);
  std::string text;
  if (attribute.parent) text = "parent.";
  if (attribute.scope != AttributeScope::kNone) {
    text += ScopeName(attribute.scope);
    text += ".";
  } else if (!attribute.parent) {
    text = ".";
  }
  return text + attribute.name;
}

std::string AttributeResultKey(const Attribute& attribute) {
  return attribute.IsIntrinsic() ? std::string(IntrinsicName(attribute.intrinsic)) : attribute.name;
}

ValueType IntrinsicType(Intrinsic intrinsic) {
  switch (intrinsic) {
    case Intrinsic::kDuration:
    case Intrinsic::kTraceDuration:
    case Intrinsic::kEventTimeSinceStart: return ValueType::kDuration;
    case Intrinsic::kStatus: return ValueType::kStatus;
    case Intrinsic::kKind: return ValueType::kKind;
    case Intrinsic::kChildCount:
    case Intrinsic::kNestedSetLeft:
    case Intrinsic::kNestedSetRight:
    case Intrinsic::kNestedSetParent: return ValueType::kInt;
    case Intrinsic::kNone:
    case Intrinsic::kParent: return ValueType::kNil;
    default: return ValueType::kString;
  }
}

const char* OperatorText(Operator op) {
  switch (op) {
    case Operator::kAdd: return "+";
    case Operator::kSub: return "-";
    case Operator::kMul: return "*";
    case Operator::kDiv: return "/";
    case Operator::kMod: return "%";
    case Operator::kPow: return "^";
    case Operator::kEqual: return "=";
    case Operator::kNotEqual: return "!=";
    case Operator::kLess: return "<";
    case Operator::kLessEqual: return "<=";
    case Operator::kGreater: return ">";
    case Operator::kGreaterEqual: return ">=";
    case Operator::kRegex: return "=~";
    case Operator::kNotRegex: return "!~";
    case Operator::kAnd: return "&&";
    case Operator::kOr: return "||";
    case Operator::kNot: return "!";
    case Operator::kNegate: return "-";
    case Operator::kExists: return "!= nil";
    case Operator::kNotExists: return "= nil";
    case Operator::kNone: break;
  }
  return "";
}

const char* SpansetOperatorText(SpansetOperator op) {
  switch (op) {
    case SpansetOperator::kAnd: return "&&";
    case SpansetOperator::kUnion: return "||";
    case SpansetOperator::kChild: return ">";
    case SpansetOperator::kParent: return "<";
    case SpansetOperator::kDescendant: return ">>";
    case SpansetOperator::kAncestor: return "<<";
    case SpansetOperator::kSibling: return "~";
    case SpansetOperator::kNotChild: return "!>";
    case SpansetOperator::kNotParent: return "!<";
    case SpansetOperator::kNotDescendant: return "!>>";
    case SpansetOperator::kNotAncestor: return "!<<";
    case SpansetOperator::kNotSibling: return "!~";
    case SpansetOperator::kUnionChild: return "&>";
    case SpansetOperator::kUnionParent: return "&<";
    case SpansetOperator::kUnionDescendant: return "&>>";
    case SpansetOperator::kUnionAncestor: return "&<<";
    case SpansetOperator::kUnionSibling: return "&~";
  }
  return "";
}

const char* MetricsFunctionName(MetricsFunction function) {
  switch (function) {
    case MetricsFunction::kRate: return "rate";
    case MetricsFunction::kCountOverTime: return "count_over_time";
    case MetricsFunction::kMinOverTime: return "min_over_time";
    case MetricsFunction::kMaxOverTime: return "max_over_time";
    case MetricsFunction::kSumOverTime: return "sum_over_time";
    case MetricsFunction::kAvgOverTime: return "avg_over_time";
    case MetricsFunction::kQuantileOverTime: return "quantile_over_time";
    case MetricsFunction::kHistogramOverTime: return "histogram_over_time";
    case MetricsFunction::kCompare: return "compare";
  }
  return "";
}

// ---- node plumbing -------------------------------------------------------------------------

FieldExpr::FieldExpr() = default;
FieldExpr::~FieldExpr() = default;
FieldExpr::FieldExpr(FieldExpr&&) noexcept = default;
FieldExpr& FieldExpr::operator=(FieldExpr&&) noexcept = default;

Value FieldExpr::LiteralValue() const {
  if (literal.type == ValueType::kString) return Value::String(string_literal);
  return literal;
}

SpansetExpr::SpansetExpr() = default;
SpansetExpr::~SpansetExpr() = default;
SpansetExpr::SpansetExpr(SpansetExpr&&) noexcept = default;
SpansetExpr& SpansetExpr::operator=(SpansetExpr&&) noexcept = default;

namespace {

std::string QuoteString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\x%02x", static_cast<uint8_t>(c));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string NumberText(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  std::string text = buffer;
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // stays a float on re-parse
  return text;
}

}  // namespace

std::string ValueText(const Value& value) {
  switch (value.type) {
    case ValueType::kInt: return std::to_string(value.int_value);
    case ValueType::kFloat: return NumberText(value.float_value);
    case ValueType::kString: return QuoteString(value.StringValue());
    case ValueType::kBool: return value.bool_value ? "true" : "false";
    case ValueType::kDuration: {
      // Go's text uses µ and compound units, both of which TraceQL reads back.
      return FormatGoDuration(value.int_value);
    }
    case ValueType::kStatus: return StatusKeyword(static_cast<otlp::StatusCode>(value.int_value));
    case ValueType::kKind: return KindKeyword(static_cast<otlp::SpanKind>(value.int_value));
    case ValueType::kArray: return "[array]";
    case ValueType::kNil: return "nil";
  }
  return "";
}

std::string AttributeReferenceText(const Attribute& attribute) {
  if (attribute.IsIntrinsic()) return AttributeText(attribute);
  bool plain = !attribute.name.empty();
  for (char c : attribute.name) {
    if (c == ' ' || c == '"' || std::strchr("{}()=~!<>&|^,\t\n\r", c) != nullptr) plain = false;
  }
  if (plain) return AttributeText(attribute);
  Attribute prefix = attribute;
  prefix.name.clear();
  std::string quoted = "\"";
  for (char c : attribute.name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return AttributeText(prefix) + quoted + "\"";
}

std::string FieldExprText(const FieldExpr& expr) {
  switch (expr.kind) {
    case FieldExpr::Kind::kStatic: {
      Value v = expr.LiteralValue();
      if (v.type == ValueType::kInt && v.int_value < 0) return "(" + ValueText(v) + ")";
      if (v.type == ValueType::kFloat && v.float_value < 0) return "(" + ValueText(v) + ")";
      if (v.type == ValueType::kDuration && v.int_value < 0) return "(" + ValueText(v) + ")";
      return ValueText(v);
    }
    case FieldExpr::Kind::kAttribute: return AttributeReferenceText(expr.attribute);
    case FieldExpr::Kind::kUnary: {
      std::string inner = FieldExprText(*expr.lhs);
      if (expr.lhs->kind == FieldExpr::Kind::kBinary || expr.lhs->kind == FieldExpr::Kind::kUnary) {
        inner = "(" + inner + ")";
      }
      if (expr.op == Operator::kExists) return inner + " != nil";
      if (expr.op == Operator::kNotExists) return inner + " = nil";
      return std::string(OperatorText(expr.op)) + inner;
    }
    case FieldExpr::Kind::kBinary: {
      auto side = [](const FieldExpr& e) {
        std::string t = FieldExprText(e);
        return (e.kind == FieldExpr::Kind::kBinary || e.kind == FieldExpr::Kind::kUnary) ? "(" + t + ")" : t;
      };
      return side(*expr.lhs) + " " + OperatorText(expr.op) + " " + side(*expr.rhs);
    }
  }
  return "";
}

std::string AggregateText(const ScalarFilter& filter) {
  switch (filter.aggregate) {
    case AggregateKind::kCount: return "count()";
    case AggregateKind::kAvg: return "avg(" + FieldExprText(*filter.argument) + ")";
    case AggregateKind::kMin: return "min(" + FieldExprText(*filter.argument) + ")";
    case AggregateKind::kMax: return "max(" + FieldExprText(*filter.argument) + ")";
    case AggregateKind::kSum: return "sum(" + FieldExprText(*filter.argument) + ")";
  }
  return "";
}

}  // namespace tracery::traceql
