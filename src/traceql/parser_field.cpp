// Field expressions (inside `{ }`, by(), aggregates) and scalar filters (`count() > 2`).
// Precedence follows Tempo's grammar, low to high: `&& ||` < comparisons < `+ -` < `!` <
// `* / %` < `^` (right-associative) < unary minus.
#include <utility>

#include "traceql/parser.h"

namespace tracery::traceql {
namespace {

constexpr int kLogicalPrecedence = 1;
constexpr int kComparisonPrecedence = 2;
constexpr int kNotPrecedence = 4;
constexpr int kPowerPrecedence = 6;

Operator BinaryOperator(TokenKind kind) {
  switch (kind) {
    case TokenKind::kAnd: return Operator::kAnd;
    case TokenKind::kOr: return Operator::kOr;
    case TokenKind::kEqual: return Operator::kEqual;
    case TokenKind::kNotEqual: return Operator::kNotEqual;
    case TokenKind::kLess: return Operator::kLess;
    case TokenKind::kLessEqual: return Operator::kLessEqual;
    case TokenKind::kGreater: return Operator::kGreater;
    case TokenKind::kGreaterEqual: return Operator::kGreaterEqual;
    case TokenKind::kRegex: return Operator::kRegex;
    case TokenKind::kNotRegex: return Operator::kNotRegex;
    case TokenKind::kAdd: return Operator::kAdd;
    case TokenKind::kSub: return Operator::kSub;
    case TokenKind::kMul: return Operator::kMul;
    case TokenKind::kDiv: return Operator::kDiv;
    case TokenKind::kMod: return Operator::kMod;
    case TokenKind::kPow: return Operator::kPow;
    default: return Operator::kNone;
  }
}

std::unique_ptr<FieldExpr> MakeStatic(Value value) {
  auto expr = std::make_unique<FieldExpr>();
  expr->kind = FieldExpr::Kind::kStatic;
  expr->literal = value;
  return expr;
}

std::unique_ptr<FieldExpr> MakeUnary(Operator op, std::unique_ptr<FieldExpr> operand) {
  auto expr = std::make_unique<FieldExpr>();
  expr->kind = FieldExpr::Kind::kUnary;
  expr->op = op;
  expr->lhs = std::move(operand);
  return expr;
}

}  // namespace

// Legacy unscoped intrinsics ("DO NOT ADD MORE" in Tempo's grammar; childCount was removed).
Intrinsic LegacyIntrinsic(const std::string& word) {
  if (word == "duration") return Intrinsic::kDuration;
  if (word == "name") return Intrinsic::kName;
  if (word == "status") return Intrinsic::kStatus;
  if (word == "statusMessage") return Intrinsic::kStatusMessage;
  if (word == "kind") return Intrinsic::kKind;
  if (word == "parent") return Intrinsic::kParent;
  if (word == "rootName") return Intrinsic::kTraceRootName;
  if (word == "rootServiceName") return Intrinsic::kTraceRootService;
  if (word == "traceDuration") return Intrinsic::kTraceDuration;
  if (word == "nestedSetLeft") return Intrinsic::kNestedSetLeft;
  if (word == "nestedSetRight") return Intrinsic::kNestedSetRight;
  if (word == "nestedSetParent") return Intrinsic::kNestedSetParent;
  return Intrinsic::kNone;
}

int FieldPrecedence(TokenKind kind) {
  switch (kind) {
    case TokenKind::kAnd:
    case TokenKind::kOr: return kLogicalPrecedence;
    case TokenKind::kEqual:
    case TokenKind::kNotEqual:
    case TokenKind::kLess:
    case TokenKind::kLessEqual:
    case TokenKind::kGreater:
    case TokenKind::kGreaterEqual:
    case TokenKind::kRegex:
    case TokenKind::kNotRegex: return kComparisonPrecedence;
    case TokenKind::kAdd:
    case TokenKind::kSub: return 3;
    case TokenKind::kMul:
    case TokenKind::kDiv:
    case TokenKind::kMod: return 5;
    case TokenKind::kPow: return kPowerPrecedence;
    default: return 0;
  }
}

Result<Value> Parser::ParseStatic(std::string& string_storage) {
  const Token& token = Current();
  Value value;
  switch (token.kind) {
    case TokenKind::kString:
      string_storage = token.text;
      value.type = ValueType::kString;
      break;
    case TokenKind::kInteger: value = Value::Int(token.int_value); break;
    case TokenKind::kFloat: value = Value::Float(token.float_value); break;
    case TokenKind::kDuration: value = Value::Duration(token.int_value); break;
    case TokenKind::kWord: {
      const std::string& w = token.text;
      if (w == "true") value = Value::Bool(true);
      else if (w == "false") value = Value::Bool(false);
      else if (w == "ok") value = Value::Status(otlp::StatusCode::kOk);
      else if (w == "error") value = Value::Status(otlp::StatusCode::kError);
      else if (w == "unset") value = Value::Status(otlp::StatusCode::kUnset);
      else if (w == "unspecified") value = Value::Kind(otlp::SpanKind::kUnspecified);
      else if (w == "internal") value = Value::Kind(otlp::SpanKind::kInternal);
      else if (w == "server") value = Value::Kind(otlp::SpanKind::kServer);
      else if (w == "client") value = Value::Kind(otlp::SpanKind::kClient);
      else if (w == "producer") value = Value::Kind(otlp::SpanKind::kProducer);
      else if (w == "consumer") value = Value::Kind(otlp::SpanKind::kConsumer);
      else if (w == "minInt") value = Value::Int(INT64_MIN);
      else if (w == "maxInt") value = Value::Int(INT64_MAX);
      else return Expected("a value");
      break;
    }
    default: return Expected("a value");
  }
  Advance();
  return value;
}

Result<std::unique_ptr<FieldExpr>> Parser::ParseFieldExpr(int min_precedence) {
  DepthGuard guard(*this);
  TRACERY_RETURN_IF_ERROR(CheckDepth());
  auto lhs = ParseFieldPrefix();
  if (!lhs.ok()) return lhs.status();
  std::unique_ptr<FieldExpr> expr = std::move(lhs.value());
  int chained = 0;  // a left-deep chain grows the tree as much as nesting does
  while (true) {
    TokenKind kind = Current().kind;
    int precedence = FieldPrecedence(kind);
    if (precedence == 0 || precedence < min_precedence) break;
    if (++chained + depth_ > kMaxQueryDepth) return Expected("a shallower expression (nesting limit " +
                                                             std::to_string(kMaxQueryDepth) + ")");
    Advance();
    if ((kind == TokenKind::kEqual || kind == TokenKind::kNotEqual) && AtWord("nil")) {
      Advance();
      expr = MakeUnary(kind == TokenKind::kEqual ? Operator::kNotExists : Operator::kExists, std::move(expr));
      continue;
    }
    // Left-associative operators bind their right operand one level tighter; `^` does not.
    int next = kind == TokenKind::kPow ? precedence : precedence + 1;
    auto rhs = ParseFieldExpr(next);
    if (!rhs.ok()) return rhs.status();
    auto binary = std::make_unique<FieldExpr>();
    binary->kind = FieldExpr::Kind::kBinary;
    binary->op = BinaryOperator(kind);
    binary->lhs = std::move(expr);
    binary->rhs = std::move(rhs.value());
    expr = std::move(binary);
  }
  return expr;
}

Result<std::unique_ptr<FieldExpr>> Parser::ParseFieldPrefix() {
  const Token& token = Current();
  switch (token.kind) {
    case TokenKind::kOpenParen: {
      Advance();
      auto inner = ParseFieldExpr(0);
      if (!inner.ok()) return inner.status();
      TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
      return std::move(inner.value());
    }
    case TokenKind::kSub: {
      DepthGuard guard(*this);  // `- - - x` recurses here without passing ParseFieldExpr
      TRACERY_RETURN_IF_ERROR(CheckDepth());
      Advance();
      auto operand = ParseFieldPrefix();  // unary minus binds tightest
      if (!operand.ok()) return operand.status();
      FieldExpr& inner = *operand.value();
      if (inner.kind == FieldExpr::Kind::kStatic && inner.literal.IsNumeric()) {
        // Fold `-3` into a literal, as Tempo's parser does.
        if (inner.literal.type == ValueType::kFloat) inner.literal.float_value = -inner.literal.float_value;
        else inner.literal.int_value = inner.literal.int_value == INT64_MIN ? INT64_MIN : -inner.literal.int_value;
        return std::move(operand.value());
      }
      return MakeUnary(Operator::kNegate, std::move(operand.value()));
    }
    case TokenKind::kNot: {
      Advance();
      auto operand = ParseFieldExpr(kNotPrecedence + 1);
      if (!operand.ok()) return operand.status();
      return MakeUnary(Operator::kNot, std::move(operand.value()));
    }
    case TokenKind::kAttribute:
    case TokenKind::kScopedIntrinsic: {
      auto expr = std::make_unique<FieldExpr>();
      expr->kind = FieldExpr::Kind::kAttribute;
      expr->attribute = token.attribute;
      Advance();
      return expr;
    }
    case TokenKind::kWord: {
      if (token.text == "nil") {
        // Only `nil = x`, `nil != x` (and `nil = nil`, which is false) exist.
        Advance();
        if (!At(TokenKind::kEqual) && !At(TokenKind::kNotEqual)) return Expected("'=' or '!=' after nil");
        bool equal = At(TokenKind::kEqual);
        Advance();
        if (AtWord("nil")) {
          Advance();
          return MakeStatic(Value::Bool(false));
        }
        auto operand = ParseFieldExpr(kComparisonPrecedence + 1);
        if (!operand.ok()) return operand.status();
        return MakeUnary(equal ? Operator::kNotExists : Operator::kExists, std::move(operand.value()));
      }
      Intrinsic intrinsic = LegacyIntrinsic(token.text);
      if (intrinsic != Intrinsic::kNone) {
        auto expr = std::make_unique<FieldExpr>();
        expr->kind = FieldExpr::Kind::kAttribute;
        expr->attribute.intrinsic = intrinsic;
        Advance();
        return expr;
      }
      [[fallthrough]];
    }
    case TokenKind::kString:
    case TokenKind::kInteger:
    case TokenKind::kFloat:
    case TokenKind::kDuration: {
      auto expr = std::make_unique<FieldExpr>();
      expr->kind = FieldExpr::Kind::kStatic;
      auto value = ParseStatic(expr->string_literal);
      if (!value.ok()) return Expected("a field expression");
      expr->literal = value.value();
      return expr;
    }
    default: return Expected("a field expression");
  }
}

// ---- scalar filters -----------------------------------------------------------------------

namespace {

// A scalar expression as parsed. Only "aggregate CMP literal" is supported; everything else
// the grammar allows is parsed so the error can say "unsupported" rather than "parse error".
struct ScalarTerm {
  enum class Kind { kAggregate, kLiteral, kArithmetic } kind = Kind::kLiteral;
  AggregateKind aggregate = AggregateKind::kCount;
  std::unique_ptr<FieldExpr> argument;
  Value literal;
};

bool IsComparison(TokenKind kind) {
  return kind == TokenKind::kEqual || kind == TokenKind::kNotEqual || kind == TokenKind::kLess ||
         kind == TokenKind::kLessEqual || kind == TokenKind::kGreater || kind == TokenKind::kGreaterEqual;
}

bool IsArithmetic(TokenKind kind) {
  return kind == TokenKind::kAdd || kind == TokenKind::kSub || kind == TokenKind::kMul ||
         kind == TokenKind::kDiv || kind == TokenKind::kMod || kind == TokenKind::kPow;
}

}  // namespace

bool IsAggregateWord(const Token& token) {
  if (token.kind != TokenKind::kWord) return false;
  const std::string& w = token.text;
  return w == "count" || w == "avg" || w == "min" || w == "max" || w == "sum";
}

Status Parser::ParseScalarFilter(ScalarFilter& filter) {
  // Parses one side: a term, or terms joined by arithmetic (kept only as "arithmetic").
  auto parse_side = [this](ScalarTerm& side) -> Status {
    int terms = 0;
    int open_parens = 0;
    while (true) {
      while (At(TokenKind::kOpenParen)) {
        ++open_parens;
        if (open_parens + depth_ > kMaxQueryDepth) return Expected("a shallower expression");
        Advance();
      }
      ScalarTerm term;
      const Token& token = Current();
      if (IsAggregateWord(token)) {
        term.kind = ScalarTerm::Kind::kAggregate;
        const std::string& w = token.text;
        term.aggregate = w == "count" ? AggregateKind::kCount
                         : w == "avg" ? AggregateKind::kAvg
                         : w == "min" ? AggregateKind::kMin
                         : w == "max" ? AggregateKind::kMax
                                      : AggregateKind::kSum;
        Advance();
        TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenParen, "'('"));
        if (term.aggregate != AggregateKind::kCount) {
          auto argument = ParseFieldExpr(0);
          if (!argument.ok()) return argument.status();
          term.argument = std::move(argument.value());
        }
        TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
      } else {
        bool negative = false;
        if (At(TokenKind::kSub)) {
          negative = true;
          Advance();
        }
        const Token& number = Current();
        if (number.kind == TokenKind::kInteger) term.literal = Value::Int(negative ? -number.int_value : number.int_value);
        else if (number.kind == TokenKind::kFloat) term.literal = Value::Float(negative ? -number.float_value : number.float_value);
        else if (number.kind == TokenKind::kDuration) term.literal = Value::Duration(negative ? -number.int_value : number.int_value);
        else return Expected("an aggregate (count(), avg(), min(), max(), sum()) or a number");
        Advance();
      }
      ++terms;
      while (open_parens > 0 && At(TokenKind::kCloseParen)) {
        --open_parens;
        Advance();
      }
      if (terms == 1) side = std::move(term);
      if (IsArithmetic(Current().kind)) {
        Advance();
        continue;
      }
      if (open_parens > 0) return Expected("')'");
      if (terms > 1) side.kind = ScalarTerm::Kind::kArithmetic;
      return Status::Ok();
    }
  };

  const Token start = Current();
  ScalarTerm lhs;
  TRACERY_RETURN_IF_ERROR(parse_side(lhs));
  if (!IsComparison(Current().kind)) {
    if (At(TokenKind::kCloseParen)) {
      return Status::InvalidArgument("unsupported TraceQL at " + std::to_string(start.line) + ":" +
                                     std::to_string(start.column) +
                                     ": comparing the results of pipelines is not supported");
    }
    return Expected("a comparison operator after the aggregate");
  }
  TokenKind comparison = Current().kind;
  Advance();
  ScalarTerm rhs;
  TRACERY_RETURN_IF_ERROR(parse_side(rhs));
  auto unsupported = [&start](const std::string& why) {
    return Status::InvalidArgument("unsupported TraceQL at " + std::to_string(start.line) + ":" +
                                   std::to_string(start.column) + ": " + why);
  };
  if (lhs.kind != ScalarTerm::Kind::kAggregate) {
    return unsupported("a scalar filter must compare an aggregate (count(), avg(x), ...) with a number");
  }
  if (rhs.kind != ScalarTerm::Kind::kLiteral) {
    return unsupported("a scalar filter must compare an aggregate with a number, not an expression");
  }
  filter.aggregate = lhs.aggregate;
  filter.argument = std::move(lhs.argument);
  filter.op = BinaryOperator(comparison);
  filter.threshold = rhs.literal;
  return Status::Ok();
}

}  // namespace tracery::traceql
