// TraceQL tokens. The lexer resolves what Tempo's lexer resolves: attribute references with
// their scope (`span.http.method`, `.x`, `parent.resource.y`, quoted segments) and scoped
// intrinsics (`span:duration`) are single tokens; numbers with a unit are durations. Keywords
// (`duration`, `rate`, `ok`, ...) stay words; the parser decides what a word means where.
// Private to src/traceql/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "traceql/ast.h"

namespace tracery::traceql {

enum class TokenKind : uint8_t {
  kEnd,
  kWord,             // keyword or identifier: [A-Za-z_][A-Za-z0-9_]*
  kString,           // text holds the unescaped value
  kInteger,          // int_value
  kFloat,            // float_value
  kDuration,         // int_value nanoseconds
  kAttribute,        // attribute (scope, parent, name)
  kScopedIntrinsic,  // text "span:duration"; intrinsic resolved
  kOpenBrace, kCloseBrace, kOpenParen, kCloseParen, kComma, kPipe,
  kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kRegex, kNotRegex,
  kAnd, kOr, kNot, kAdd, kSub, kMul, kDiv, kMod, kPow,
  kDescendant, kAncestor, kSibling,                       // >> << ~
  kNotChild, kNotParent, kNotDescendant, kNotAncestor,    // !> !< !>> !<<  (!~ is kNotRegex)
  kUnionChild, kUnionParent, kUnionDescendant, kUnionAncestor, kUnionSibling,  // &> &< &>> &<< &~
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  uint32_t line = 1, column = 1;  // 1-based, of the first character
  std::string text;               // source text, or the value of a string / attribute name
  int64_t int_value = 0;
  double float_value = 0;
  Attribute attribute;  // kAttribute, kScopedIntrinsic
};

// How a token is named in "expected X but found Y".
std::string DescribeToken(const Token& token);

// Splits the whole query into tokens, ending with kEnd. A character that starts no token, an
// unterminated string or a malformed number is InvalidArgument "parse error at L:C: ...".
Result<std::vector<Token>> Tokenize(std::string_view text);

// Parses a duration literal's text ("1h30m", "1.5s", "250µs", "3d"); false when malformed.
bool ParseDurationLiteral(std::string_view text, int64_t& nanos);

}  // namespace tracery::traceql
