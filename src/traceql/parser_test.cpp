// Parsing every TraceQL construct, precedence round trips, and the metrics AST.
#include <gtest/gtest.h>

#include "traceql/ast.h"
#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

const char* kValidQueries[] = {
    // filters and literals
    "{ }", "{}", "{ true }", "{ !true }", "{ true && false }", "{ true || false }", "{ 1 = 2 }", "{ 1 != 2 }",
    "{ 1 > 2 }", "{ 1 >= 2 }", "{ 1 < 2 }", "{ 1 <= 2 }", "{ -1 = 2 }", "{ \"test\" =~ \"test\" }",
    "{ \"test\" !~ \"test\" }", "{ \"test\" = \"test\" }", "{ \"test\" != \"test\" }", "{ .a }", "{ !.a }",
    "{ .a && false }", "{ .a || true }", "{ .a = 2 }", "{ .a != 2 }", "{ .a > 2 }", "{ .a >= 2 }", "{ .a < 2 }",
    "{ .a <= 2 }", "{ -.a = 2 }", "{ .a =~ \"test\" }", "{ .a !~ \"test\" }", "{ .a = \"test\" }",
    "{ resource.a != 3 }", "{ span.a != 3 }", "{ !(\"test\" != .c || ((true && .b) || 3 < .a)) }",
    "{ status = ok }", "{ status = unset }", "{ status = error }", "{ status != error }",
    "{ statusMessage = \"m\" }", "{ statusMessage =~ \".*\" }", "{ kind = internal }", "{ kind = client }",
    "{ kind = consumer }", "{ kind = producer }", "{ kind = server }", "{ kind = unspecified }",
    "{ traceDuration > 1s }", "{ rootServiceName = \"foo\" }", "{ rootName != \"foo\" }", "{ duration > 1s }",
    "{ 1 < 1h }", "{ 1 <= 1.1 }", "{ event.foo = \"bar\" }", "{ link.foo = \"bar\" }",
    "{ instrumentation.foo = \"bar\" }", "{ trace:duration > 2s }", "{ trace:rootName = \"a\" }",
    "{ trace:rootService = \"a\" }", "{ trace:id = \"aasdf4ergf\" }", "{ span:duration > 2s }",
    "{ span:status = error }", "{ span:kind = client }", "{ span:name = \"x\" }", "{ span:statusMessage = \"m\" }",
    "{ span:id = \"61626364656667\" }", "{ span:parentID = \"0102\" }", "{ span:childCount > 2 }",
    "{ event:name = \"exception\" }", "{ event:timeSinceStart > 1s }", "{ link:traceID = \"f1\" }",
    "{ link:spanID = \"f1f1f1f1f1f1f1f1\" }", "{ instrumentation:name = \"grpc\" }",
    "{ instrumentation:version = \"v3.34\" }", "{ 1 + 1 = 2 }", "{ 1 - 1 = 2 }", "{ 1 * 1 = 2 }", "{ 1 / 1 = 2 }",
    "{ 1 ^ 1 = 2 }", "{ 1 % 1 = 0 }", "{ .a + 1 = 2 }", "{ .a - 1 = 2 }", "{ .a * 1 = 2 }", "{ .a / 1 = 2 }",
    "{ .a ^ 1 = 2 }", "{ duration > 1s * 2s }", "{ 1 * 1h = 1 }", "{ 1 / 1.1 = 1 }", "{ .http.status >= \"200\" }",
    "{ .a = nil }", "{ .a != nil }", "{ nil = .a }", "{ nil != .a }", "{ nil = nil }", "{ duration != nil }",
    "{ .a = minInt }", "{ .a = maxInt }", "{ .a = 1e3 }", "{ .a = 1.5e-3 }", "{ .a = `raw \\d+` }",
    "{ .a = \"esc \\\" \\\\ \\n \\t \\x41 \\u00e9 \\101\" }", "{ span.\"attr with space\" = 1 }",
    "{ span.attribute.\"x y\" = 1 }", "{ resource.\"a b\".c = 1 }", "{ .foo-bar = 1 }", "{ .a.b.c = 1 }",
    "{ duration > 1h30m }", "{ duration > 1.5s }", "{ duration > 100us }", "{ duration > 100\xC2\xB5s }",
    "{ duration > 10ns }", "{ duration > 2d }", "{ duration > 1w }", "{ duration > 1y }", "{ duration > 5m }",
    "{ nestedSetLeft > 3 }", "{ nestedSetParent < 0 }", "{ nestedSetRight = 2 }",
    "{nestedSetParent<0 && true && resource.service.name != nil}", "{\n  .a = 1\n}",
    "{ .bool = true }", "{ .bool = false }", "{ name = \"x\" && (status = error || kind = server) }",
    // spanset operators
    "{ true } && { true }", "{ true } || { true }", "{ true } >> { true }", "{ true } << { true }",
    "{ true } > { true }", "{ true } < { true }", "{ true } ~ { true }", "{ true } !> { true }",
    "{ true } !< { true }", "{ true } !~ { true }", "{ true } !>> { true }", "{ true } !<< { true }",
    "{ true } &> { true }", "{ true } &< { true }", "{ true } &~ { true }", "{ true } &>> { true }",
    "{ true } &<< { true }", "({ true } && { true }) > { true }", "{ .a } > { .b } > { .c }",
    "({ true } | count() > 1 | { false }) >> ({ true } | count() > 1 | { false })",
    "({ true } | count() > 1 | { false }) && ({ true } | count() > 1 | { false })",
    "({ true } | count() > 1 | { false }) || ({ true } | count() > 1 | { false })",
    "({ true } | by(.a))", "(({ .a } | count() > 1) && ({ .b } | by(.c)))",
    // pipelines
    "avg(.field) > 1", "max(duration) >= 1s", "max(duration) > 1", "{ true } | max(duration) = 1h",
    "{ true } | min(duration) = 1h", "{ true } | sum(duration) = 1h", "{ true } | max(.a) = 1",
    "{ true } | max(span.a) = 1", "{ true } | max(resource.a) = 1", "{ true } | max(1 + .a) = 1",
    "{ true } | max((1 + .a) * 2) = 1", "max(duration) > 3s | { status = error || .http.status = 500 }",
    "{ } | count() > -1", "{ } | avg(duration) > -1ms", "select(.a)", "{} | select(.a,.b,.c)",
    "{} | select(span.a, resource.b, duration, span:id, event:name)", "{ true } | { .a }",
    "{ true } | count() = 1", "{ true } | avg(duration) = 1h", "count() = 1 | { true }",
    "{ true } | count() = 1 | { true }", "{ true } | coalesce()", "{ true } | by(1 + .a) | coalesce()",
    "{ true } | by(.a)", "{ true } | by(1 + .a)", "by(.a) | { true }", "{ true } | by(name) | count() > 2",
    "{ true } | by(.field) | avg(.b) = 2", "{ true } | by(3 * .field - 2) | max(duration) < 1s",
    "{ } >> { kind = server } | select(nestedSetLeft, nestedSetRight, nestedSetParent)",
    "{ .a } | by(resource.service.name) | count() > 1 | coalesce() | select(.b)",
    // metrics
    "{} | rate()", "{} | count_over_time() by (name) with(sample=0.1)", "{} | min_over_time(duration) by (span.http.path)",
    "{} | max_over_time(duration) by (span.http.path)", "{} | avg_over_time(duration) by (span.http.path)",
    "{} | sum_over_time(span.bytes)", "{} | quantile_over_time(duration, 0, 0.9, 1) by (span.http.path)",
    "{} | histogram_over_time(duration) by (resource.service.name, span.http.method)",
    "{} | compare({status = error})", "{} | compare({status = error}, 5)",
    "{} | compare({status = error}, 5, 1000, 2000)", "{} | rate() by (resource.service.name) | topk(5)",
    "{} | rate() | bottomk(3)", "{} | rate() > 10", "{} | rate() >= 1.5", "{} | rate() < -1",
    "{} | quantile_over_time(duration, 0.99) > 100ms", "{} | rate() | topk(5) > 10", "{} | rate() != 0 | topk(2)",
    "{ resource.service.name = \"a\" } | rate() by (span:name)",
    // hints
    "{ } with(most_recent=true)", "{ } with(sample=0.5, exemplars=true)", "{ } | rate() with(span_sample=0.1)",
    "{ } with(a=\"s\", b=1, c=1s, d=ok, e=server) with(f=false)",
};

TEST(TraceQLParse, EveryValidQueryParses) {
  size_t count = 0;
  for (const char* text : kValidQueries) {
    auto query = Parse(text);
    EXPECT_TRUE(query.ok()) << text << " -> " << query.status().message();
    ++count;
  }
  EXPECT_GE(count, 150u);
}

std::string FilterText(const std::string& text) {
  auto query = Parse(text);
  if (!query.ok()) return "ERROR: " + query.status().message();
  const Stage& stage = query.value()->pipeline().stages.at(0);
  if (stage.kind != Stage::Kind::kSpanset || stage.spanset->kind != SpansetExpr::Kind::kFilter) return "not a filter";
  return FieldExprText(*stage.spanset->filter);
}

TEST(TraceQLParse, PrecedenceRoundTrips) {
  struct Case {
    const char* query;
    const char* text;
  } cases[] = {
      {"{ .a = 1 && .b = 2 || .c = 3 }", "((.a = 1) && (.b = 2)) || (.c = 3)"},
      {"{ .a = 1 || .b = 2 && .c = 3 }", "((.a = 1) || (.b = 2)) && (.c = 3)"},  // same level, left
      {"{ .a + 1 * 2 = 3 }", "(.a + (1 * 2)) = 3"},
      {"{ .a * 2 ^ 3 ^ 2 = 1 }", "(.a * (2 ^ (3 ^ 2))) = 1"},
      {"{ .a - 1 - 2 = 0 }", "((.a - 1) - 2) = 0"},
      {"{ !.a = true }", "(!.a) = true"},
      {"{ !.a * 2 = true }", "(!(.a * 2)) = true"},
      {"{ !.a = .b }", "(!.a) = .b"},
      {"{ !.a && .b }", "(!.a) && .b"},
      {"{ -.a ^ 2 = 1 }", "((-.a) ^ 2) = 1"},
      {"{ -1 = .a }", "(-1) = .a"},
      {"{ (.a + 1) * 2 = 4 }", "((.a + 1) * 2) = 4"},
      {"{ .a = nil }", ".a = nil"},
      {"{ nil != .a }", ".a != nil"},
      {"{ .a != nil && .b = nil }", "(.a != nil) && (.b = nil)"},
      {"{ span:duration > 1s }", "duration > 1s"},
      {"{ trace:rootService = \"x\" }", "rootServiceName = \"x\""},
      {"{ span.\"a b\" = 1 }", "span.\"a b\" = 1"},
      {"{ duration > 1h30m }", "duration > 1h30m0s"},
      {"{ duration > 1500us }", "duration > 1.5ms"},
      {"{ .a =~ \"x.*\" }", ".a =~ \"x.*\""},
      {"{ .a = 1.5 }", ".a = 1.5"},
      {"{ .a = 2.0 }", ".a = 2.0"},
  };
  for (const Case& c : cases) {
    std::string text = FilterText(c.query);
    EXPECT_EQ(text, c.text) << c.query;
    // Parsing the printed text gives the same text again.
    EXPECT_EQ(FilterText("{ " + text + " }"), text) << c.query;
  }
}

TEST(TraceQLParse, SpansetOperatorPrecedence) {
  auto query = Parse("{ .a } && { .b } > { .c } || { .d }");
  ASSERT_TRUE(query.ok());
  const SpansetExpr& root = *query.value()->pipeline().stages[0].spanset;
  ASSERT_EQ(root.kind, SpansetExpr::Kind::kOperation);
  EXPECT_EQ(root.op, SpansetOperator::kUnion);  // (A && (B > C)) || D
  ASSERT_EQ(root.lhs->kind, SpansetExpr::Kind::kOperation);
  EXPECT_EQ(root.lhs->op, SpansetOperator::kAnd);
  EXPECT_EQ(root.lhs->rhs->op, SpansetOperator::kChild);
  auto not_sibling = Parse("{ .a } !~ { .b }");
  ASSERT_TRUE(not_sibling.ok());
  EXPECT_EQ(not_sibling.value()->pipeline().stages[0].spanset->op, SpansetOperator::kNotSibling);
}

TEST(TraceQLParse, IntrinsicsResolveToEnums) {
  struct Case {
    const char* query;
    Intrinsic intrinsic;
    const char* text;
  } cases[] = {
      {"{ span:duration > 1s }", Intrinsic::kDuration, "duration"},
      {"{ duration > 1s }", Intrinsic::kDuration, "duration"},
      {"{ trace:duration > 1s }", Intrinsic::kTraceDuration, "traceDuration"},
      {"{ traceDuration > 1s }", Intrinsic::kTraceDuration, "traceDuration"},
      {"{ trace:rootName = \"a\" }", Intrinsic::kTraceRootName, "rootName"},
      {"{ trace:id = \"a\" }", Intrinsic::kTraceId, "trace:id"},
      {"{ span:id = \"a\" }", Intrinsic::kSpanId, "span:id"},
      {"{ span:parentID = \"a\" }", Intrinsic::kParentId, "span:parentID"},
      {"{ event:name = \"a\" }", Intrinsic::kEventName, "event:name"},
      {"{ link:spanID = \"a\" }", Intrinsic::kLinkSpanId, "link:spanID"},
      {"{ instrumentation:version = \"a\" }", Intrinsic::kInstrumentationVersion, "instrumentation:version"},
      {"{ nestedSetParent < 0 }", Intrinsic::kNestedSetParent, "nestedSetParent"},
  };
  for (const Case& c : cases) {
    auto query = Parse(c.query);
    ASSERT_TRUE(query.ok()) << c.query;
    const FieldExpr& filter = *query.value()->pipeline().stages[0].spanset->filter;
    EXPECT_EQ(filter.lhs->attribute.intrinsic, c.intrinsic) << c.query;
    EXPECT_EQ(AttributeText(filter.lhs->attribute), c.text);
  }
  auto scoped = Parse("{ resource.service.name = \"a\" && span.http.method = \"GET\" && .x = 1 && instrumentation.y = 2 }");
  ASSERT_TRUE(scoped.ok());
  auto attribute = ParseAttribute("resource.service.name");
  ASSERT_TRUE(attribute.ok());
  EXPECT_EQ(attribute.value().scope, AttributeScope::kResource);
  EXPECT_EQ(attribute.value().name, "service.name");
  EXPECT_EQ(AttributeText(attribute.value()), "resource.service.name");
  EXPECT_EQ(AttributeText(ParseAttribute(".foo").value()), ".foo");
  EXPECT_EQ(AttributeText(ParseAttribute("span:name").value()), "name");
  EXPECT_EQ(AttributeResultKey(ParseAttribute("span.http.status_code").value()), "http.status_code");
  EXPECT_FALSE(ParseAttribute("app.user.id").ok());
}

TEST(TraceQLParse, LiteralsDecode) {
  auto query = Parse("{ .a = \"x\\ty\\u00e9\\x41\" }");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query.value()->pipeline().stages[0].spanset->filter->rhs->string_literal, "x\ty\xC3\xA9"
                                                                                    "A");
  auto duration = Parse("{ duration > 1h30m }");
  ASSERT_TRUE(duration.ok());
  EXPECT_EQ(duration.value()->pipeline().stages[0].spanset->filter->rhs->literal.int_value, 5400000000000);
  auto minimum = Parse("{ .a > minInt }");
  ASSERT_TRUE(minimum.ok());
  EXPECT_EQ(minimum.value()->pipeline().stages[0].spanset->filter->rhs->literal.int_value, INT64_MIN);
}

TEST(TraceQLParse, PipelineStages) {
  auto query = Parse("{ .a } | by(resource.service.name) | count() > 2 | select(span.b) | coalesce()");
  ASSERT_TRUE(query.ok()) << query.status().message();
  const auto& stages = query.value()->pipeline().stages;
  ASSERT_EQ(stages.size(), 5u);
  EXPECT_EQ(stages[0].kind, Stage::Kind::kSpanset);
  EXPECT_EQ(stages[1].kind, Stage::Kind::kGroupBy);
  EXPECT_EQ(stages[2].kind, Stage::Kind::kScalarFilter);
  EXPECT_EQ(stages[2].scalar_filter.aggregate, AggregateKind::kCount);
  EXPECT_EQ(stages[2].scalar_filter.threshold.int_value, 2);
  EXPECT_EQ(AggregateText(stages[2].scalar_filter), "count()");
  EXPECT_EQ(stages[3].kind, Stage::Kind::kSelect);
  EXPECT_EQ(stages[4].kind, Stage::Kind::kCoalesce);
  EXPECT_FALSE(IsMetricsQuery(*query.value()));
  auto avg = Parse("{ } | avg(duration) > 20ms");
  ASSERT_TRUE(avg.ok());
  EXPECT_EQ(AggregateText(avg.value()->pipeline().stages[1].scalar_filter), "avg(duration)");
}

TEST(TraceQLParse, MetricsStage) {
  auto query = Parse("{ status = error } | quantile_over_time(duration, 0.5, 0.99) by (resource.service.name, span:name) "
                     "| topk(5) > 100ms with(exemplars=true)");
  ASSERT_TRUE(query.ok()) << query.status().message();
  ASSERT_TRUE(IsMetricsQuery(*query.value()));
  const MetricsStage& metrics = *query.value()->metrics();
  EXPECT_EQ(metrics.function, MetricsFunction::kQuantileOverTime);
  EXPECT_EQ(metrics.attribute->attribute.intrinsic, Intrinsic::kDuration);
  EXPECT_EQ(metrics.quantiles, (std::vector<double>{0.5, 0.99}));
  ASSERT_EQ(metrics.by.size(), 2u);
  EXPECT_EQ(AttributeText(metrics.by[0].attribute), "resource.service.name");
  EXPECT_EQ(AttributeText(metrics.by[1].attribute), "name");
  ASSERT_EQ(metrics.second_stages.size(), 2u);
  EXPECT_EQ(metrics.second_stages[0].kind, MetricsSecondStage::Kind::kTopK);
  EXPECT_EQ(metrics.second_stages[0].limit, 5);
  EXPECT_EQ(metrics.second_stages[1].kind, MetricsSecondStage::Kind::kFilter);
  EXPECT_EQ(metrics.second_stages[1].threshold.type, ValueType::kDuration);
  // Quantiles as Tempo's documentation writes them, without the leading zero.
  auto short_form = Parse("{ } | quantile_over_time(duration, .99, .9, .5)");
  ASSERT_TRUE(short_form.ok()) << short_form.status().message();
  EXPECT_EQ(short_form.value()->metrics()->quantiles, (std::vector<double>{0.99, 0.9, 0.5}));
  const otlp::AnyValue* exemplars = FindHint(*query.value(), "exemplars");
  ASSERT_NE(exemplars, nullptr);
  EXPECT_TRUE(exemplars->bool_value);
  EXPECT_EQ(FindHint(*query.value(), "sample"), nullptr);

  auto compare = Parse("{ } | compare({ status = error }, 20, 100, 200)");
  ASSERT_TRUE(compare.ok());
  EXPECT_EQ(compare.value()->metrics()->function, MetricsFunction::kCompare);
  EXPECT_EQ(compare.value()->metrics()->compare_top_n, 20);
  EXPECT_EQ(compare.value()->metrics()->compare_end_nanos, 200);
  EXPECT_NE(compare.value()->metrics()->compare_filter, nullptr);
}

TEST(TraceQLParse, HintValuesAsTempoEncodesThem) {
  auto query = Parse("{ } with(sample=0.25, job_size=3, cutoff=1s, name=\"x\", most_recent=true)");
  ASSERT_TRUE(query.ok());
  EXPECT_DOUBLE_EQ(FindHint(*query.value(), "sample")->double_value, 0.25);
  EXPECT_EQ(FindHint(*query.value(), "job_size")->int_value, 3);
  EXPECT_EQ(FindHint(*query.value(), "cutoff")->string_value, "1s");
  EXPECT_EQ(FindHint(*query.value(), "name")->string_value, "x");
  EXPECT_TRUE(FindHint(*query.value(), "most_recent")->bool_value);
}

TEST(TraceQLParse, GoDurationText) {
  EXPECT_EQ(FormatGoDuration(0), "0s");
  EXPECT_EQ(FormatGoDuration(999), "999ns");
  EXPECT_EQ(FormatGoDuration(1500), "1.5\xC2\xB5s");
  EXPECT_EQ(FormatGoDuration(120000000), "120ms");
  EXPECT_EQ(FormatGoDuration(1500000000), "1.5s");
  EXPECT_EQ(FormatGoDuration(90000000000), "1m30s");
  EXPECT_EQ(FormatGoDuration(3600000000000), "1h0m0s");
  EXPECT_EQ(FormatGoDuration(-2000000), "-2ms");
}

}  // namespace
}  // namespace tracery::traceql
