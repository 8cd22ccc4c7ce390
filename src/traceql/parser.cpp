// Pipelines, spanset expressions, metrics functions and hints; Parse() and ParseAttribute().
#include "traceql/parser.h"

#include <utility>

#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

bool ContainsPipeline(const SpansetExpr& expr) {
  if (expr.kind == SpansetExpr::Kind::kPipeline) return true;
  if (expr.kind == SpansetExpr::Kind::kOperation) return ContainsPipeline(*expr.lhs) || ContainsPipeline(*expr.rhs);
  return false;
}

bool StructuralOperator(TokenKind kind, SpansetOperator& op) {
  switch (kind) {
    case TokenKind::kGreater: op = SpansetOperator::kChild; return true;
    case TokenKind::kLess: op = SpansetOperator::kParent; return true;
    case TokenKind::kDescendant: op = SpansetOperator::kDescendant; return true;
    case TokenKind::kAncestor: op = SpansetOperator::kAncestor; return true;
    case TokenKind::kSibling: op = SpansetOperator::kSibling; return true;
    case TokenKind::kNotChild: op = SpansetOperator::kNotChild; return true;
    case TokenKind::kNotParent: op = SpansetOperator::kNotParent; return true;
    case TokenKind::kNotDescendant: op = SpansetOperator::kNotDescendant; return true;
    case TokenKind::kNotAncestor: op = SpansetOperator::kNotAncestor; return true;
    case TokenKind::kNotRegex: op = SpansetOperator::kNotSibling; return true;  // `!~` between spansets
    case TokenKind::kUnionChild: op = SpansetOperator::kUnionChild; return true;
    case TokenKind::kUnionParent: op = SpansetOperator::kUnionParent; return true;
    case TokenKind::kUnionDescendant: op = SpansetOperator::kUnionDescendant; return true;
    case TokenKind::kUnionAncestor: op = SpansetOperator::kUnionAncestor; return true;
    case TokenKind::kUnionSibling: op = SpansetOperator::kUnionSibling; return true;
    default: return false;
  }
}

bool MetricsFunctionFromWord(const Token& token, MetricsFunction& function) {
  if (token.kind != TokenKind::kWord) return false;
  static constexpr MetricsFunction kAll[] = {
      MetricsFunction::kRate,        MetricsFunction::kCountOverTime,     MetricsFunction::kMinOverTime,
      MetricsFunction::kMaxOverTime, MetricsFunction::kSumOverTime,       MetricsFunction::kAvgOverTime,
      MetricsFunction::kQuantileOverTime, MetricsFunction::kHistogramOverTime, MetricsFunction::kCompare,
  };
  for (MetricsFunction f : kAll) {
    if (token.text == MetricsFunctionName(f)) {
      function = f;
      return true;
    }
  }
  return false;
}

}  // namespace

Status Parser::ExpectedAt(const Token& token, const std::string& what) const {
  return Status::InvalidArgument("parse error at " + std::to_string(token.line) + ":" + std::to_string(token.column) +
                                 ": expected " + what + " but found " + DescribeToken(token));
}

Status Parser::Expected(const std::string& what) const { return ExpectedAt(Current(), what); }

Status Parser::Expect(TokenKind kind, const char* what) {
  if (!At(kind)) return Expected(what);
  Advance();
  return Status::Ok();
}

Status Parser::CheckDepth() const {
  if (depth_ <= kMaxQueryDepth) return Status::Ok();
  return Status::InvalidArgument("parse error at " + std::to_string(Current().line) + ":" +
                                 std::to_string(Current().column) + ": query nests deeper than " +
                                 std::to_string(kMaxQueryDepth) + " levels");
}

Result<std::shared_ptr<const Query>> Parser::ParseQuery() {
  auto query = std::make_shared<Query>();
  query->text_ = text_;
  if (At(TokenKind::kEnd)) return Expected("a query such as '{ }'");
  TRACERY_RETURN_IF_ERROR(ParsePipeline(query->pipeline_, /*top_level=*/true, query.get()));
  TRACERY_RETURN_IF_ERROR(ParseHints(*query));
  if (!At(TokenKind::kEnd)) return Expected(query->metrics_ ? "end of query" : "'|' or end of query");
  TRACERY_RETURN_IF_ERROR(ValidateQuery(*query, query->pipeline_, query->metrics_.get(), query->output_attributes_));
  return std::shared_ptr<const Query>(std::move(query));
}

Result<Attribute> Parser::ParseSingleAttribute() {
  auto attribute = ParseAttributeOperand();
  if (!attribute.ok()) return attribute.status();
  if (!At(TokenKind::kEnd)) return Expected("end of attribute");
  return attribute;
}

Status Parser::ParsePipeline(Pipeline& pipeline, bool top_level, Query* query) {
  DepthGuard guard(*this);
  TRACERY_RETURN_IF_ERROR(CheckDepth());
  pipeline.stages.emplace_back();
  TRACERY_RETURN_IF_ERROR(ParseStage(pipeline.stages.back(), /*first=*/true));
  // Tempo's grammar lets wrapped pipelines joined by spanset operators stand only alone.
  bool alone = pipeline.stages.back().kind == Stage::Kind::kSpanset && ContainsPipeline(*pipeline.stages.back().spanset);
  while (At(TokenKind::kPipe)) {
    MetricsFunction function;
    if (MetricsFunctionFromWord(PeekToken(1), function)) {
      if (!top_level || alone) {
        return Status::InvalidArgument("unsupported TraceQL at " + std::to_string(PeekToken(1).line) + ":" +
                                       std::to_string(PeekToken(1).column) +
                                       ": a metrics function must end the query's single pipeline "
                                       "(metrics arithmetic is not supported)");
      }
      Advance();
      query->metrics_ = std::make_unique<MetricsStage>();
      TRACERY_RETURN_IF_ERROR(ParseMetrics(*query->metrics_));
      return ParseMetricsSecondStages(*query->metrics_);
    }
    if (alone) return Expected("end of query");
    Advance();
    Stage stage;
    TRACERY_RETURN_IF_ERROR(ParseStage(stage, /*first=*/false));
    if (stage.kind == Stage::Kind::kSpanset && ContainsPipeline(*stage.spanset)) {
      return Status::InvalidArgument("parse error: a wrapped pipeline '( ... | ... )' cannot follow '|'; "
                                     "combine wrapped pipelines with spanset operators only");
    }
    pipeline.stages.push_back(std::move(stage));
  }
  return Status::Ok();
}

Status Parser::ParseStage(Stage& stage, bool first) {
  const Token& token = Current();
  bool call = PeekToken(1).kind == TokenKind::kOpenParen;
  if (token.kind == TokenKind::kWord && call) {
    if (token.text == "by") {
      Advance();
      Advance();
      stage.kind = Stage::Kind::kGroupBy;
      auto expr = ParseFieldExpr(0);
      if (!expr.ok()) return expr.status();
      stage.group_by = std::move(expr.value());
      return Expect(TokenKind::kCloseParen, "')'");
    }
    if (token.text == "select") {
      Advance();
      Advance();
      stage.kind = Stage::Kind::kSelect;
      TRACERY_RETURN_IF_ERROR(ParseAttributeList(stage.select));
      return Expect(TokenKind::kCloseParen, "')'");
    }
    if (token.text == "coalesce") {
      if (first) return Expected("a spanset filter (a pipeline cannot start with coalesce())");
      Advance();
      Advance();
      stage.kind = Stage::Kind::kCoalesce;
      return Expect(TokenKind::kCloseParen, "')'");
    }
    MetricsFunction function;
    if (MetricsFunctionFromWord(token, function)) {
      return Status::InvalidArgument("unsupported TraceQL at " + std::to_string(token.line) + ":" +
                                     std::to_string(token.column) + ": " + token.text +
                                     "() must follow a spanset pipeline at the end of the query");
    }
  }
  if ((IsAggregateWord(token) && call) || token.kind == TokenKind::kInteger || token.kind == TokenKind::kFloat ||
      token.kind == TokenKind::kDuration || token.kind == TokenKind::kSub) {
    stage.kind = Stage::Kind::kScalarFilter;
    return ParseScalarFilter(stage.scalar_filter);
  }
  if (token.kind == TokenKind::kOpenBrace || token.kind == TokenKind::kOpenParen) {
    stage.kind = Stage::Kind::kSpanset;
    auto expr = ParseSpansetExpr();
    if (!expr.ok()) return expr.status();
    stage.spanset = std::move(expr.value());
    return Status::Ok();
  }
  return Expected("a spanset filter '{ ... }'");
}

Result<std::unique_ptr<SpansetExpr>> Parser::ParseSpansetExpr() {
  DepthGuard guard(*this);
  TRACERY_RETURN_IF_ERROR(CheckDepth());
  auto lhs = ParseSpansetStructural();
  if (!lhs.ok()) return lhs.status();
  std::unique_ptr<SpansetExpr> expr = std::move(lhs.value());
  int chained = 0;
  while (At(TokenKind::kAnd) || At(TokenKind::kOr)) {
    if (++chained + depth_ > kMaxQueryDepth) return Expected("fewer chained spanset operators");
    SpansetOperator op = At(TokenKind::kAnd) ? SpansetOperator::kAnd : SpansetOperator::kUnion;
    Advance();
    auto rhs = ParseSpansetStructural();
    if (!rhs.ok()) return rhs.status();
    auto node = std::make_unique<SpansetExpr>();
    node->kind = SpansetExpr::Kind::kOperation;
    node->op = op;
    node->lhs = std::move(expr);
    node->rhs = std::move(rhs.value());
    expr = std::move(node);
  }
  return expr;
}

Result<std::unique_ptr<SpansetExpr>> Parser::ParseSpansetStructural() {
  auto lhs = ParseSpansetPrimary();
  if (!lhs.ok()) return lhs.status();
  std::unique_ptr<SpansetExpr> expr = std::move(lhs.value());
  int chained = 0;
  SpansetOperator op;
  while (StructuralOperator(Current().kind, op)) {
    if (++chained + depth_ > kMaxQueryDepth) return Expected("fewer chained spanset operators");
    Advance();
    auto rhs = ParseSpansetPrimary();
    if (!rhs.ok()) return rhs.status();
    auto node = std::make_unique<SpansetExpr>();
    node->kind = SpansetExpr::Kind::kOperation;
    node->op = op;
    node->lhs = std::move(expr);
    node->rhs = std::move(rhs.value());
    expr = std::move(node);
  }
  return expr;
}

Result<std::unique_ptr<SpansetExpr>> Parser::ParseSpansetPrimary() {
  DepthGuard guard(*this);
  TRACERY_RETURN_IF_ERROR(CheckDepth());
  if (At(TokenKind::kOpenBrace)) return ParseSpansetFilter();
  if (!At(TokenKind::kOpenParen)) return Expected("'{' or '('");
  Advance();
  Pipeline inner;
  TRACERY_RETURN_IF_ERROR(ParsePipeline(inner, /*top_level=*/false, nullptr));
  TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
  if (inner.stages.size() == 1 && inner.stages[0].kind == Stage::Kind::kSpanset) {
    return std::move(inner.stages[0].spanset);  // just parentheses
  }
  auto node = std::make_unique<SpansetExpr>();
  node->kind = SpansetExpr::Kind::kPipeline;
  node->pipeline = std::make_unique<Pipeline>(std::move(inner));
  return node;
}

Result<std::unique_ptr<SpansetExpr>> Parser::ParseSpansetFilter() {
  TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenBrace, "'{'"));
  auto node = std::make_unique<SpansetExpr>();
  node->kind = SpansetExpr::Kind::kFilter;
  if (!At(TokenKind::kCloseBrace)) {
    auto filter = ParseFieldExpr(0);
    if (!filter.ok()) return filter.status();
    node->filter = std::move(filter.value());
  }
  TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseBrace, "'}'"));
  return node;
}

Result<Attribute> Parser::ParseAttributeOperand() {
  const Token& token = Current();
  if (token.kind == TokenKind::kAttribute || token.kind == TokenKind::kScopedIntrinsic) {
    Attribute attribute = token.attribute;
    Advance();
    return attribute;
  }
  if (token.kind == TokenKind::kWord) {
    Intrinsic intrinsic = LegacyIntrinsic(token.text);
    if (intrinsic != Intrinsic::kNone) {
      Attribute attribute;
      attribute.intrinsic = intrinsic;
      Advance();
      return attribute;
    }
  }
  return Expected("an attribute or intrinsic");
}

Status Parser::ParseAttributeList(std::vector<Attribute>& attributes) {
  while (true) {
    auto attribute = ParseAttributeOperand();
    if (!attribute.ok()) return attribute.status();
    attributes.push_back(std::move(attribute.value()));
    if (!At(TokenKind::kComma)) return Status::Ok();
    Advance();
  }
}

Status Parser::ParseMetrics(MetricsStage& metrics) {
  const Token& name = Current();
  MetricsFunctionFromWord(name, metrics.function);
  Advance();
  TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenParen, "'('"));
  auto attribute_expr = [this]() -> Result<std::unique_ptr<FieldExpr>> {
    auto attribute = ParseAttributeOperand();
    if (!attribute.ok()) return attribute.status();
    auto expr = std::make_unique<FieldExpr>();
    expr->kind = FieldExpr::Kind::kAttribute;
    expr->attribute = std::move(attribute.value());
    return expr;
  };
  switch (metrics.function) {
    case MetricsFunction::kRate:
    case MetricsFunction::kCountOverTime: break;
    case MetricsFunction::kCompare: {
      auto filter = ParseSpansetFilter();
      if (!filter.ok()) return filter.status();
      metrics.compare_filter = std::move(filter.value());
      int64_t* targets[] = {&metrics.compare_top_n, &metrics.compare_start_nanos, &metrics.compare_end_nanos};
      for (int i = 0; i < 3 && At(TokenKind::kComma); ++i) {
        Advance();
        if (!At(TokenKind::kInteger)) return Expected("an integer");
        *targets[i] = Current().int_value;
        Advance();
        if (i == 1 && !At(TokenKind::kComma)) return Expected("',' and the end of the comparison window");
      }
      if (metrics.compare_top_n <= 0) return ExpectedAt(name, "compare() with a positive topN");
      return Expect(TokenKind::kCloseParen, "')'");  // compare() takes no by()
    }
    case MetricsFunction::kQuantileOverTime: {
      auto attribute = attribute_expr();
      if (!attribute.ok()) return attribute.status();
      metrics.attribute = std::move(attribute.value());
      if (!At(TokenKind::kComma)) return Expected("',' and a quantile");
      while (At(TokenKind::kComma)) {
        Advance();
        if (At(TokenKind::kInteger)) metrics.quantiles.push_back(static_cast<double>(Current().int_value));
        else if (At(TokenKind::kFloat)) metrics.quantiles.push_back(Current().float_value);
        else if (const Attribute& a = Current().attribute;
                 At(TokenKind::kAttribute) && a.scope == AttributeScope::kNone && !a.IsIntrinsic() && !a.parent &&
                 !a.name.empty() && a.name.find_first_not_of("0123456789") == std::string::npos)
          // `.99`, as Tempo's documentation writes quantiles: the lexer reads it as an
          // unscoped attribute named "99".
          metrics.quantiles.push_back(std::stod("0." + a.name));
        else return Expected("a quantile number");
        Advance();
      }
      break;
    }
    default: {
      auto attribute = attribute_expr();
      if (!attribute.ok()) return attribute.status();
      metrics.attribute = std::move(attribute.value());
      break;
    }
  }
  TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
  if (AtWord("by")) {
    Advance();
    TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenParen, "'('"));
    std::vector<Attribute> attributes;
    TRACERY_RETURN_IF_ERROR(ParseAttributeList(attributes));
    TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
    for (Attribute& attribute : attributes) {
      FieldExpr expr;
      expr.kind = FieldExpr::Kind::kAttribute;
      expr.attribute = std::move(attribute);
      metrics.by.push_back(std::move(expr));
    }
  }
  return Status::Ok();
}

Status Parser::ParseMetricsSecondStages(MetricsStage& metrics) {
  while (true) {
    MetricsSecondStage stage;
    const Token& start = At(TokenKind::kPipe) ? PeekToken(1) : Current();
    if (At(TokenKind::kPipe) && (start.text == "topk" || start.text == "bottomk") && start.kind == TokenKind::kWord) {
      stage.kind = start.text == "topk" ? MetricsSecondStage::Kind::kTopK : MetricsSecondStage::Kind::kBottomK;
      Advance();
      Advance();
      TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenParen, "'('"));
      if (!At(TokenKind::kInteger)) return Expected("an integer");
      stage.limit = Current().int_value;
      if (stage.limit <= 0) return Expected("a positive integer");
      Advance();
      TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
    } else if (At(TokenKind::kEqual) || At(TokenKind::kNotEqual) || At(TokenKind::kLess) ||
               At(TokenKind::kLessEqual) || At(TokenKind::kGreater) || At(TokenKind::kGreaterEqual)) {
      stage.kind = MetricsSecondStage::Kind::kFilter;
      switch (Current().kind) {
        case TokenKind::kEqual: stage.op = Operator::kEqual; break;
        case TokenKind::kNotEqual: stage.op = Operator::kNotEqual; break;
        case TokenKind::kLess: stage.op = Operator::kLess; break;
        case TokenKind::kLessEqual: stage.op = Operator::kLessEqual; break;
        case TokenKind::kGreater: stage.op = Operator::kGreater; break;
        default: stage.op = Operator::kGreaterEqual; break;
      }
      Advance();
      bool negative = At(TokenKind::kSub);
      if (negative) Advance();
      const Token& number = Current();
      if (number.kind == TokenKind::kInteger) stage.threshold = Value::Int(negative ? -number.int_value : number.int_value);
      else if (number.kind == TokenKind::kFloat) stage.threshold = Value::Float(negative ? -number.float_value : number.float_value);
      else if (number.kind == TokenKind::kDuration) stage.threshold = Value::Duration(negative ? -number.int_value : number.int_value);
      else return Expected("a number or duration");
      Advance();
    } else {
      return Status::Ok();
    }
    if (metrics.function == MetricsFunction::kCompare) {
      return Status::InvalidArgument("unsupported TraceQL at " + std::to_string(start.line) + ":" +
                                     std::to_string(start.column) +
                                     ": compare() cannot be combined with topk, bottomk or filters");
    }
    metrics.second_stages.push_back(stage);
  }
}

Status Parser::ParseHints(Query& query) {
  while (AtWord("with")) {
    Advance();
    TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kOpenParen, "'('"));
    while (true) {
      if (!At(TokenKind::kWord)) return Expected("a hint name");
      Hint hint;
      hint.name = Current().text;
      Advance();
      TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kEqual, "'='"));
      auto value = ParseStatic(hint.string_literal);
      if (!value.ok()) return value.status();
      hint.value = value.value();
      Value shown = hint.value.type == ValueType::kString ? Value::String(hint.string_literal) : hint.value;
      hint.any_value = ValueToAnyValue(shown);
      query.hints_.push_back(std::move(hint));
      if (!At(TokenKind::kComma)) break;
      Advance();
    }
    TRACERY_RETURN_IF_ERROR(Expect(TokenKind::kCloseParen, "')'"));
  }
  return Status::Ok();
}

// ---- public entry points --------------------------------------------------------------

Result<std::shared_ptr<const Query>> Parse(std::string_view text) {
  auto tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  Parser parser(std::move(tokens.value()), std::string(text));
  return parser.ParseQuery();
}

Result<Attribute> ParseAttribute(std::string_view text) {
  auto tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  Parser parser(std::move(tokens.value()), std::string(text));
  return parser.ParseSingleAttribute();
}

bool IsMetricsQuery(const Query& query) { return query.metrics() != nullptr; }

const otlp::AnyValue* FindHint(const Query& query, std::string_view name) {
  for (const Hint& hint : query.hints()) {
    if (hint.name == name) return &hint.any_value;
  }
  return nullptr;
}

}  // namespace tracery::traceql
