// The hand-written recursive-descent TraceQL parser (private to src/traceql/). parser.cpp has
// pipelines, spanset expressions, metrics and hints; parser_field.cpp has field and scalar
// expressions; validate.cpp checks types and what Tempo does not support.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "traceql/ast.h"
#include "traceql/lexer.h"

namespace tracery::traceql {

// Deepest nesting accepted, counting parentheses, braces and chained operators: the parser,
// the validator and the evaluator recurse over the tree, so its height must stay bounded.
inline constexpr int kMaxQueryDepth = 200;

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string text) : tokens_(std::move(tokens)), text_(std::move(text)) {}

  Result<std::shared_ptr<const Query>> ParseQuery();
  // A single attribute reference and nothing else (for the tag-values API).
  Result<Attribute> ParseSingleAttribute();

 private:
  // Increments the depth for the lifetime of a recursive call.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& parser) : parser_(parser) { ++parser_.depth_; }
    ~DepthGuard() { --parser_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& parser_;
  };

  const Token& Current() const { return tokens_[position_]; }
  const Token& PeekToken(size_t ahead) const {
    size_t index = position_ + ahead;
    return tokens_[index < tokens_.size() ? index : tokens_.size() - 1];
  }
  bool At(TokenKind kind) const { return Current().kind == kind; }
  bool AtWord(const char* word) const { return Current().kind == TokenKind::kWord && Current().text == word; }
  void Advance() {
    if (position_ + 1 < tokens_.size()) ++position_;
  }
  Status Expected(const std::string& what) const;
  Status ExpectedAt(const Token& token, const std::string& what) const;
  Status Expect(TokenKind kind, const char* what);
  Status CheckDepth() const;

  // parser.cpp
  Status ParsePipeline(Pipeline& pipeline, bool top_level, Query* query);
  Status ParseStage(Stage& stage, bool first);
  Result<std::unique_ptr<SpansetExpr>> ParseSpansetExpr();
  Result<std::unique_ptr<SpansetExpr>> ParseSpansetStructural();
  Result<std::unique_ptr<SpansetExpr>> ParseSpansetPrimary();
  Result<std::unique_ptr<SpansetExpr>> ParseSpansetFilter();
  Status ParseMetrics(MetricsStage& metrics);
  Status ParseMetricsSecondStages(MetricsStage& metrics);
  Status ParseHints(Query& query);
  Status ParseAttributeList(std::vector<Attribute>& attributes);
  Result<Attribute> ParseAttributeOperand();
  Result<Value> ParseStatic(std::string& string_storage);

  // parser_field.cpp
  Result<std::unique_ptr<FieldExpr>> ParseFieldExpr(int min_precedence);
  Result<std::unique_ptr<FieldExpr>> ParseFieldPrefix();
  Status ParseScalarFilter(ScalarFilter& filter);

  std::vector<Token> tokens_;
  std::string text_;
  size_t position_ = 0;
  int depth_ = 0;
};

// Binary operator precedence of a token in a field expression (Tempo's yacc table), 0 when
// the token is no binary field operator.
int FieldPrecedence(TokenKind kind);
bool IsAggregateWord(const Token& token);  // count avg min max sum
// A legacy unscoped intrinsic word (`duration`, `rootServiceName`, ...), kNone otherwise.
Intrinsic LegacyIntrinsic(const std::string& word);

// Checks types and unsupported constructs, compiles regexes and fills the per-filter and
// per-query facts the evaluator needs (validate.cpp).
Status ValidateQuery(Query& query, Pipeline& pipeline, MetricsStage* metrics,
                     std::vector<Attribute>& output_attributes);

}  // namespace tracery::traceql
