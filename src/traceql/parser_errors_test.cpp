// Malformed and unsupported queries: each is InvalidArgument with a position or a reason.
#include <gtest/gtest.h>

#include <string>

#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

const char* kInvalidQueries[] = {
    // do not parse
    "", "   ", "true", "[ true ]", "( true )", "{ . }", "{ < }", "{ .a < }", "{ .a < 3", "{ (.a < 3 }",
    "{ attribute = 4 }", "{ .attribute == 4 }", "{ span. }", "{ true } + { true }", "{ true } - { true }",
    "{ true } * { true }", "{ true } / { true }", "{ true } ^ { true }", "{ true } = { true }",
    "{ true } <= { true }", "{ true } >= { true }", "avg(.field) + 1", "sum(3) - 2", "select(.a", "select()",
    "select(1 + \"string\")", "coalesce() | { true }", "count() > 3 && { true }", "{ true } | count()",
    "{ true } | notAnAggregate() = 1", "{ true } | count = 1", "{ true } | max() = 1", "{ true } | by()",
    "({ true }) + (count()) = 1", "({ true }) && (count())", "({ true } | count()) && ({ true } | count()) = 1",
    "({ true }) + ({ true }) = 1", "({ true } | count()) + ({ true } | count())",
    "{ trace:status = error }", "{ trace:kind = server }", "{ trace:name = \"a\" }",
    "{ trace:rootServiceName = \"a\" }", "{ span:rootName = \"bar\" }", "{ childCount > 1 }",
    "{ .a = \"unterminated }", "{ .a = `raw }", "{ .a = \"bad \\q escape\" }", "{ duration > 10parsecs }",
    "{ .a = 99999999999999999999 }", "{ .a = 1 } |", "{ .a = 1 } | | { }", "{ .a = 1 }}", "{ { .a } }",
    "{ .a = nil nil }", "{ nil }", "{ nil > .a }", "{ .a = 1 } @", "{ .a = 1 } with(", "{ } with()",
    "{ } with(a)", "{ } with(a=)", "{ } with(a=.b)", "{ } | rate(", "{ } | rate() by ()", "{ } | rate(duration)",
    "{ } | min_over_time()", "{ } | quantile_over_time(duration)", "{ } | quantile_over_time(duration, x)",
    "{ } | compare(status = error)", "{ } | compare({ }, 5, 100)", "{ } | compare({ }, 0)",
    "{ } | compare({ }) | topk(5)", "{ } | compare({ }) > 1", "{ } | rate() | topk()", "{ } | rate() | topk(0)",
    "{ } | rate() > x", "{ } | rate() | { .a }", "rate()", "({ } | rate()) * 2", "{ } | rate() | rate()",
    "{ } | by(.a) | compare({ }) by (.b)", "{ .a } { .b }", "{ .a } && ", "{ .a } >> ({ .b } | by(.c)) | { }",
    "{ } | ({ .a } | by(.b))", "{ .a = 1 ) }", "{ .\"unterminated = 1 }", "\x01", "{ .a = 1 } \xff",
    // parse, then fail validation
    "{ status }", "{ kind }", "{ ok }", "{ 1.1 }", "{ 1h }", "{ \"foo\" }", "{ 1 + 1 }", "{ 1 + \"foo\" = 1 }",
    "{ 1 - true = 1 }", "{ 1 / ok = 1 }", "{ 1 ^ name = 1 }", "{ 1 = \"foo\" }", "{ 1 != true }", "{ 1 > ok }",
    "{ 1 = name }", "{ 1 =~ 2 }", "{ 1 !~ 2 }", "{ 1 && \"foo\" }", "{ 1 || ok }", "{ true || 1.1 }",
    "{ status > ok }", "{ kind < consumer }", "{ traceDuration > \"test\" }", "{ rootServiceName = 1 }",
    "{ rootName != 3.2 }", "{ span.foo =~ \"[\" }", "{ span.foo !~ \"(\" }", "{ .a =~ .b }", "{ -true }",
    "{ -\"foo\" = \"bar\" }", "{ -ok = status }", "{ -name = \"foo\" }", "{ !\"foo\" = \"bar\" }",
    "{ !ok = status }", "{ !name = \"foo\" }", "{ !1 = 1 }", "{ !1h = 1 }", "min(1 = 3) = 1", "sum(3) = 2",
    "max(name) = 1", "max(status) = 1", "{ true } | by(1)", "{ true } | by(\"foo\")", "{ nestedSetLeft = \"foo\" }",
    "{ nestedSetRight = false }", "{ nestedSetParent > \"foo\" }", "{ duration = nil }", "{ name = nil }",
    "{ resource.service.name = nil }", "{ span:childCount = \"x\" }", "{ } | quantile_over_time(duration, 1.5)",
    // unsupported
    "min(.field) < max(duration)", "sum(.field) = min(.field)", "min(.field) + max(.field) > 1",
    "{ true } | max(parent.a) = 1", "{ .http.status = 200 } | max(.field) - min(.field) > 3",
    "{ parent.a != 3 }", "{ parent.resource.a && true }", "{ parent.span.a > 3 }", "{ parent.duration = 1h }",
    "{ parent = nil }", "{ parent }", "{ 1 % parent = 1 }", "{ 1 >= parent }", "{ true } | count() + count() = 1",
    "({ true } | count()) + ({ true } | count()) = 1", "({ .a } | count()) > ({ .b } | count())", "3 = 2",
    "avg(.field) > 1 - 3", "2 < count()", "{ } | select(parent.a)", "{ } | rate() by (parent.a)",
};

TEST(TraceQLParseErrors, EveryInvalidQueryIsRejectedWithAReason) {
  size_t count = 0;
  for (const char* text : kInvalidQueries) {
    auto query = Parse(text);
    ++count;
    if (query.ok()) {
      ADD_FAILURE() << "accepted: " << text;
      continue;
    }
    EXPECT_EQ(query.status().code(), StatusCode::kInvalidArgument) << text;
    const std::string& message = query.status().message();
    bool explains = message.find("parse error at ") == 0 || message.find("invalid TraceQL") == 0 ||
                    message.find("unsupported TraceQL") == 0 || message.find("parse error:") == 0;
    EXPECT_TRUE(explains) << text << " -> " << message;
  }
  EXPECT_GE(count, 80u);
}

TEST(TraceQLParseErrors, MessagesNamePositionAndExpectation) {
  auto query = Parse("{ .a = 1 && }");
  ASSERT_FALSE(query.ok());
  EXPECT_EQ(query.status().message(), "parse error at 1:13: expected a field expression but found '}'");
  auto missing_brace = Parse("{ .a = 1");
  ASSERT_FALSE(missing_brace.ok());
  EXPECT_EQ(missing_brace.status().message(), "parse error at 1:9: expected '}' but found end of query");
  auto second_line = Parse("{ .a = 1 }\n  | { .b = }");
  ASSERT_FALSE(second_line.ok());
  EXPECT_EQ(second_line.status().message(), "parse error at 2:12: expected a field expression but found '}'");
  auto parent = Parse("{ parent.a = 1 }");
  ASSERT_FALSE(parent.ok());
  EXPECT_NE(parent.status().message().find("parent"), std::string::npos);
  auto regex = Parse("{ .a =~ \"[\" }");
  ASSERT_FALSE(regex.ok());
  EXPECT_NE(regex.status().message().find("regex"), std::string::npos);
  auto types = Parse("{ 1 = \"a\" }");
  ASSERT_FALSE(types.ok());
  EXPECT_NE(types.status().message().find("different types"), std::string::npos);
}

TEST(TraceQLParseErrors, DeepNestingIsRejectedNotCrashed) {
  for (int depth : {150, 1000, 100000}) {
    std::string parens = "{ " + std::string(depth, '(') + ".a = 1" + std::string(depth, ')') + " }";
    auto query = Parse(parens);
    if (depth > 190) {
      ASSERT_FALSE(query.ok()) << depth;
      EXPECT_NE(query.status().message().find("deeper"), std::string::npos) << query.status().message();
    } else {
      EXPECT_TRUE(query.ok()) << depth << " " << query.status().message();
    }
    std::string chain = "{ .a = 1";
    for (int i = 0; i < depth; ++i) chain += " && .a = 1";
    EXPECT_EQ(Parse(chain + " }").ok(), depth < 190) << depth;
    std::string spansets = "{ .a }";
    for (int i = 0; i < depth; ++i) spansets += " >> { .a }";
    EXPECT_EQ(Parse(spansets).ok(), depth < 190) << depth;
    std::string wrapped = std::string(depth, '(') + "{ }" + std::string(depth, ')');
    EXPECT_FALSE(depth > 190 && Parse(wrapped).ok());
    std::string negations = "{ " + std::string(depth, '!') + "true }";
    EXPECT_FALSE(depth > 190 && Parse(negations).ok());
    std::string minus = "{ " + std::string(depth, '-') + ".a = 1 }";
    EXPECT_FALSE(depth > 190 && Parse(minus).ok());
  }
}

}  // namespace
}  // namespace tracery::traceql
