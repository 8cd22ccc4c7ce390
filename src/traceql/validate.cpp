// Validation after parsing: static types of field expressions (attributes are typed only per
// span, so they fit anything), what Tempo parses but rejects, regex compilation, and the
// facts the evaluator wants precomputed (event/link use per filter, result attributes).
#include <re2/re2.h>

#include "traceql/parser.h"

namespace tracery::traceql {
namespace {

enum class StaticType { kUnknown, kInt, kFloat, kString, kBool, kDuration, kStatus, kKind };

bool IsNumeric(StaticType t) { return t == StaticType::kInt || t == StaticType::kFloat || t == StaticType::kDuration; }

StaticType FromValueType(ValueType t) {
  switch (t) {
    case ValueType::kInt: return StaticType::kInt;
    case ValueType::kFloat: return StaticType::kFloat;
    case ValueType::kString: return StaticType::kString;
    case ValueType::kBool: return StaticType::kBool;
    case ValueType::kDuration: return StaticType::kDuration;
    case ValueType::kStatus: return StaticType::kStatus;
    case ValueType::kKind: return StaticType::kKind;
    default: return StaticType::kUnknown;
  }
}

Status Invalid(const std::string& why, const FieldExpr& expr) {
  return Status::InvalidArgument("invalid TraceQL query: " + why + " in '" + FieldExprText(expr) + "'");
}

Status Unsupported(const std::string& why) { return Status::InvalidArgument("unsupported TraceQL: " + why); }

bool ShownInResults(const Attribute& attribute) {
  switch (attribute.intrinsic) {
    // Tempo reports these in the result's own fields, never as span attributes.
    case Intrinsic::kName:
    case Intrinsic::kDuration:
    case Intrinsic::kTraceDuration:
    case Intrinsic::kTraceRootName:
    case Intrinsic::kTraceRootService:
    case Intrinsic::kTraceId:
    case Intrinsic::kSpanId:
    case Intrinsic::kParent: return false;
    default: return true;
  }
}

class Validator {
 public:
  explicit Validator(std::vector<Attribute>& output) : output_(output) {}

  Status CheckAttribute(const Attribute& attribute) {
    if (attribute.parent || attribute.intrinsic == Intrinsic::kParent) {
      return Unsupported("parent attributes and the parent intrinsic are not supported ('" +
                         AttributeText(attribute) + "')");
    }
    if (attribute.scope == AttributeScope::kEvent || attribute.intrinsic == Intrinsic::kEventName ||
        attribute.intrinsic == Intrinsic::kEventTimeSinceStart) {
      uses_events_ = true;
    }
    if (attribute.scope == AttributeScope::kLink || attribute.intrinsic == Intrinsic::kLinkSpanId ||
        attribute.intrinsic == Intrinsic::kLinkTraceId) {
      uses_links_ = true;
    }
    if (ShownInResults(attribute)) {
      bool seen = false;
      for (const Attribute& known : output_) seen = seen || known == attribute;
      if (!seen) output_.push_back(attribute);
    }
    return Status::Ok();
  }

  // Returns the static type of `expr`, or an error when its operands cannot fit together.
  Result<StaticType> Check(FieldExpr& expr) {
    switch (expr.kind) {
      case FieldExpr::Kind::kStatic: return FromValueType(expr.literal.type);
      case FieldExpr::Kind::kAttribute: {
        TRACERY_RETURN_IF_ERROR(CheckAttribute(expr.attribute));
        return expr.attribute.IsIntrinsic() ? FromValueType(IntrinsicType(expr.attribute.intrinsic))
                                            : StaticType::kUnknown;
      }
      case FieldExpr::Kind::kUnary: return CheckUnary(expr);
      case FieldExpr::Kind::kBinary: return CheckBinary(expr);
    }
    return StaticType::kUnknown;
  }

  bool uses_events_ = false, uses_links_ = false;

 private:
  Result<StaticType> CheckUnary(FieldExpr& expr) {
    auto operand = Check(*expr.lhs);
    if (!operand.ok()) return operand.status();
    StaticType t = operand.value();
    switch (expr.op) {
      case Operator::kNegate:
        if (t != StaticType::kUnknown && !IsNumeric(t)) return Invalid("unary '-' needs a number", expr);
        return t;
      case Operator::kNot:
        if (t != StaticType::kUnknown && t != StaticType::kBool) return Invalid("'!' needs a boolean", expr);
        return StaticType::kBool;
      case Operator::kNotExists:
        if (expr.lhs->kind == FieldExpr::Kind::kAttribute) {
          const Attribute& a = expr.lhs->attribute;
          if (a.IsIntrinsic()) return Invalid("an intrinsic is never nil, '= nil' cannot match", expr);
          if (a.scope == AttributeScope::kResource && a.name == "service.name") {
            return Invalid("resource.service.name is never nil, '= nil' cannot match", expr);
          }
        }
        return StaticType::kBool;
      default: return StaticType::kBool;  // kExists
    }
  }

  Result<StaticType> CheckBinary(FieldExpr& expr) {
    auto left = Check(*expr.lhs);
    if (!left.ok()) return left.status();
    auto right = Check(*expr.rhs);
    if (!right.ok()) return right.status();
    StaticType l = left.value(), r = right.value();
    bool l_unknown = l == StaticType::kUnknown, r_unknown = r == StaticType::kUnknown;
    switch (expr.op) {
      case Operator::kAdd:
      case Operator::kSub:
      case Operator::kMul:
      case Operator::kDiv:
      case Operator::kMod:
      case Operator::kPow:
        if ((!l_unknown && !IsNumeric(l)) || (!r_unknown && !IsNumeric(r))) {
          return Invalid("arithmetic needs numbers", expr);
        }
        if (l_unknown || r_unknown) return StaticType::kUnknown;
        if (l == StaticType::kFloat || r == StaticType::kFloat) return StaticType::kFloat;
        if (l == StaticType::kDuration || r == StaticType::kDuration) return StaticType::kDuration;
        return StaticType::kInt;
      case Operator::kAnd:
      case Operator::kOr:
        if ((!l_unknown && l != StaticType::kBool) || (!r_unknown && r != StaticType::kBool)) {
          return Invalid("'&&' and '||' need booleans", expr);
        }
        return StaticType::kBool;
      case Operator::kRegex:
      case Operator::kNotRegex: {
        if (!l_unknown && l != StaticType::kString) return Invalid("a regex matches strings only", expr);
        if (expr.rhs->kind != FieldExpr::Kind::kStatic || expr.rhs->literal.type != ValueType::kString) {
          return Invalid("the right side of '=~' and '!~' must be a string literal", expr);
        }
        RE2::Options options;
        options.set_log_errors(false);
        options.set_dot_nl(true);
        auto regex = std::make_shared<RE2>(expr.rhs->string_literal, options);
        if (!regex->ok()) return Invalid("regex does not compile (" + regex->error() + ")", expr);
        expr.regex = std::move(regex);
        return StaticType::kBool;
      }
      default: {  // comparisons
        bool ordered = expr.op != Operator::kEqual && expr.op != Operator::kNotEqual;
        for (StaticType t : {l, r}) {
          if (ordered && (t == StaticType::kBool || t == StaticType::kStatus || t == StaticType::kKind)) {
            return Invalid("'" + std::string(OperatorText(expr.op)) + "' does not order this type", expr);
          }
        }
        if (!l_unknown && !r_unknown && l != r && !(IsNumeric(l) && IsNumeric(r))) {
          return Invalid("cannot compare values of different types", expr);
        }
        return StaticType::kBool;
      }
    }
  }

  std::vector<Attribute>& output_;
};

bool ReferencesSpan(const FieldExpr& expr) {
  if (expr.kind == FieldExpr::Kind::kAttribute) return true;
  if (expr.lhs && ReferencesSpan(*expr.lhs)) return true;
  return expr.rhs && ReferencesSpan(*expr.rhs);
}

Status CheckPipeline(Pipeline& pipeline, std::vector<Attribute>& output);

Status CheckSpanset(SpansetExpr& expr, std::vector<Attribute>& output) {
  switch (expr.kind) {
    case SpansetExpr::Kind::kFilter: {
      if (!expr.filter) return Status::Ok();
      Validator validator(output);
      auto type = validator.Check(*expr.filter);
      if (!type.ok()) return type.status();
      if (type.value() != StaticType::kUnknown && type.value() != StaticType::kBool) {
        return Invalid("a spanset filter must be a condition (evaluate to a boolean)", *expr.filter);
      }
      expr.uses_events = validator.uses_events_;
      expr.uses_links = validator.uses_links_;
      return Status::Ok();
    }
    case SpansetExpr::Kind::kOperation:
      TRACERY_RETURN_IF_ERROR(CheckSpanset(*expr.lhs, output));
      return CheckSpanset(*expr.rhs, output);
    case SpansetExpr::Kind::kPipeline: return CheckPipeline(*expr.pipeline, output);
  }
  return Status::Ok();
}

Status CheckPipeline(Pipeline& pipeline, std::vector<Attribute>& output) {
  for (Stage& stage : pipeline.stages) {
    switch (stage.kind) {
      case Stage::Kind::kSpanset: TRACERY_RETURN_IF_ERROR(CheckSpanset(*stage.spanset, output)); break;
      case Stage::Kind::kScalarFilter: {
        ScalarFilter& filter = stage.scalar_filter;
        if (!filter.argument) break;
        Validator validator(output);
        auto type = validator.Check(*filter.argument);
        if (!type.ok()) return type.status();
        if (type.value() != StaticType::kUnknown && !IsNumeric(type.value())) {
          return Invalid("an aggregate needs a number", *filter.argument);
        }
        if (!ReferencesSpan(*filter.argument)) {
          return Invalid("an aggregate must read a span field", *filter.argument);
        }
        break;
      }
      case Stage::Kind::kGroupBy: {
        Validator validator(output);
        auto type = validator.Check(*stage.group_by);
        if (!type.ok()) return type.status();
        if (!ReferencesSpan(*stage.group_by)) return Invalid("by() must read a span field", *stage.group_by);
        break;
      }
      case Stage::Kind::kSelect: {
        Validator validator(output);
        for (const Attribute& attribute : stage.select) TRACERY_RETURN_IF_ERROR(validator.CheckAttribute(attribute));
        break;
      }
      case Stage::Kind::kCoalesce: break;
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateQuery(Query& query, Pipeline& pipeline, MetricsStage* metrics, std::vector<Attribute>& output) {
  TRACERY_RETURN_IF_ERROR(CheckPipeline(pipeline, output));
  if (metrics == nullptr) return Status::Ok();
  std::vector<Attribute> ignored;  // metrics results carry no span attributes
  Validator validator(ignored);
  if (metrics->attribute) TRACERY_RETURN_IF_ERROR(validator.CheckAttribute(metrics->attribute->attribute));
  for (const FieldExpr& by : metrics->by) TRACERY_RETURN_IF_ERROR(validator.CheckAttribute(by.attribute));
  if (metrics->compare_filter) TRACERY_RETURN_IF_ERROR(CheckSpanset(*metrics->compare_filter, ignored));
  for (double q : metrics->quantiles) {
    if (q < 0 || q > 1) return Status::InvalidArgument("invalid TraceQL query: quantile " + std::to_string(q) + " is not between 0 and 1");
  }
  return Status::Ok();
}

}  // namespace tracery::traceql
