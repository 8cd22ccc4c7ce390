// The evaluator over hand-built traces: conditions, intrinsics, spanset operators, pipeline
// stages, result attributes, the trace view's numbering, and pruning plans.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "traceql/ast.h"
#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

otlp::AnyValue Str(const std::string& s) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kString;
  v.string_value = s;
  return v;
}
otlp::AnyValue Int(int64_t i) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kInt;
  v.int_value = i;
  return v;
}

std::string Id(int n) { return std::string(7, '\0') + static_cast<char>(n); }

// Tree: 1 root(api, server) -> 2 (api, client) -> 3 (db, server, error) -> 5 (db internal)
//                           -> 4 (auth, server)
// 6 is disconnected (parent 99 missing).
struct Fixture {
  otlp::TracesData data;
  TraceView view;

  otlp::Span& Add(const std::string& service, int id, int parent, uint64_t start, uint64_t end,
                  otlp::SpanKind kind, const std::string& name) {
    otlp::ResourceSpans* rs = nullptr;
    for (auto& r : data.resource_spans) {
      if (ServiceName(r.resource) == service) rs = &r;
    }
    if (rs == nullptr) {
      data.resource_spans.emplace_back();
      rs = &data.resource_spans.back();
      rs->resource.attributes.push_back({"service.name", Str(service)});
      rs->scope_spans.emplace_back();
      rs->scope_spans[0].scope.name = "lib-" + service;
      rs->scope_spans[0].scope.version = "1.0";
    }
    otlp::Span span;
    span.trace_id = std::string(16, '\x01');
    span.span_id = Id(id);
    if (parent > 0) span.parent_span_id = Id(parent);
    span.start_time_unix_nano = start;
    span.end_time_unix_nano = end;
    span.kind = kind;
    span.name = name;
    rs->scope_spans[0].spans.push_back(span);
    return rs->scope_spans[0].spans.back();
  }

  Fixture() {
    data.resource_spans.reserve(8);
    Add("api", 1, 0, 1000, 101000, otlp::SpanKind::kServer, "GET /").attributes.push_back({"http.status_code", Int(200)});
    Add("api", 2, 1, 2000, 90000, otlp::SpanKind::kClient, "call db").attributes.push_back({"peer", Str("db")});
    Add("auth", 4, 1, 3000, 5000, otlp::SpanKind::kServer, "check");
    Add("db", 3, 2, 2500, 80000, otlp::SpanKind::kServer, "query");
    Add("db", 5, 3, 2600, 2700, otlp::SpanKind::kInternal, "parse");
    Add("db", 6, 99, 50000, 60000, otlp::SpanKind::kInternal, "orphan");
    Finish();
  }

  void Finish() {
    // Spans were pushed into vectors that may have moved; set per-span fields after all adds.
    for (auto& rs : data.resource_spans) {
      for (auto& span : rs.scope_spans[0].spans) {
        if (span.name == "query") {
          span.status_code = otlp::StatusCode::kError;
          span.status_message = "boom";
          otlp::Event event;
          event.name = "exception";
          event.time_unix_nano = 3500;
          event.attributes.push_back({"exception.type", Str("Timeout")});
          span.events.push_back(event);
          otlp::AnyValue array;
          array.type = otlp::AnyValue::Type::kArray;
          array.array_values = {Str("a"), Str("b")};
          span.attributes.push_back({"tags", array});
          span.attributes.push_back({"rows", Int(7)});
        }
        if (span.name == "check") {
          otlp::Link link;
          link.trace_id = std::string(16, '\x02');
          link.span_id = Id(42);
          link.attributes.push_back({"reason", Str("follows")});
          span.links.push_back(link);
          span.attributes.push_back({"rows", otlp::AnyValue{otlp::AnyValue::Type::kDouble, false, 0, 7.0, "", {}, {}}});
        }
      }
    }
    data.resource_spans[0].resource.attributes.push_back({"env", Str("prod")});
    view = BuildTraceView(TraceId::FromBytes(std::string(16, '\x01')), data);
  }

  // Span names of each result spanset, "name,name|name".
  std::string Run(const std::string& text) {
    auto query = Parse(text);
    if (!query.ok()) return "ERROR " + query.status().message();
    std::string out;
    for (const ResultSpanset& spanset : EvaluateSearch(*query.value(), view)) {
      if (!out.empty()) out += "|";
      for (size_t i = 0; i < spanset.spans.size(); ++i) {
        out += (i ? "," : "") + view.spans[spanset.spans[i].index].span->name;
      }
    }
    return out;
  }
};

TEST(TraceQLTraceView, OrderParentsAndNestedSets) {
  Fixture f;
  std::vector<std::string> names;
  for (const SpanRef& ref : f.view.spans) names.push_back(ref.span->name);
  EXPECT_EQ(names, (std::vector<std::string>{"GET /", "call db", "query", "parse", "check", "orphan"}));
  EXPECT_EQ(f.view.root, 0);
  EXPECT_EQ(f.view.RootServiceName(), "api");
  EXPECT_EQ(f.view.RootSpanName(), "GET /");
  EXPECT_EQ(f.view.start_unix_nano, 1000u);
  EXPECT_EQ(f.view.end_unix_nano, 101000u);
  // DFS from the root, children in view order: GET(1 (call(2 (query(3 (parse 4,5) 6) 7) check(8,9)) 10)
  auto nested = [&](size_t i) {
    const SpanRef& r = f.view.spans[i];
    return std::vector<int32_t>{r.nested_left, r.nested_right, r.nested_parent, r.parent, static_cast<int32_t>(r.child_count)};
  };
  EXPECT_EQ(nested(0), (std::vector<int32_t>{1, 10, -1, -1, 2}));
  EXPECT_EQ(nested(1), (std::vector<int32_t>{2, 7, 1, 0, 1}));
  EXPECT_EQ(nested(2), (std::vector<int32_t>{3, 6, 2, 1, 1}));
  EXPECT_EQ(nested(3), (std::vector<int32_t>{4, 5, 3, 2, 0}));
  EXPECT_EQ(nested(4), (std::vector<int32_t>{8, 9, 1, 0, 0}));
  EXPECT_EQ(nested(5), (std::vector<int32_t>{0, 0, 0, -1, 0}));
}

TEST(TraceQLTraceView, EmptyAndRootlessTraces) {
  otlp::TracesData empty;
  TraceView view = BuildTraceView(TraceId{}, empty);
  EXPECT_TRUE(view.spans.empty());
  EXPECT_EQ(view.root, -1);
  EXPECT_EQ(view.start_unix_nano, 0u);
  EXPECT_EQ(view.RootServiceName(), "");
  auto query = Parse("{ }");
  EXPECT_TRUE(EvaluateSearch(*query.value(), view).empty());
}

TEST(TraceQLEvaluate, ConditionsAndIntrinsics) {
  Fixture f;
  EXPECT_EQ(f.Run("{ }"), "GET /,call db,query,parse,check,orphan");
  EXPECT_EQ(f.Run("{ resource.service.name = \"db\" }"), "query,parse,orphan");
  EXPECT_EQ(f.Run("{ .service.name = \"db\" && kind = server }"), "query");
  EXPECT_EQ(f.Run("{ span.http.status_code = 200 }"), "GET /");
  EXPECT_EQ(f.Run("{ span.http.status_code != 500 }"), "GET /");  // missing is false for != too
  EXPECT_EQ(f.Run("{ span.http.status_code >= 200.0 }"), "GET /");
  EXPECT_EQ(f.Run("{ .peer = \"db\" }"), "call db");
  EXPECT_EQ(f.Run("{ .peer != nil }"), "call db");
  EXPECT_EQ(f.Run("{ .peer = nil && resource.service.name = \"api\" }"), "GET /");
  EXPECT_EQ(f.Run("{ .env = \"prod\" }"), "GET /,call db");  // unscoped falls back to resource
  EXPECT_EQ(f.Run("{ status = error }"), "query");
  EXPECT_EQ(f.Run("{ span:status != error && kind = internal }"), "parse,orphan");
  EXPECT_EQ(f.Run("{ statusMessage = \"boom\" }"), "query");
  EXPECT_EQ(f.Run("{ duration > 70us }"), "GET /,call db,query");
  EXPECT_EQ(f.Run("{ span:duration <= 2us }"), "parse,check");
  EXPECT_EQ(f.Run("{ duration = 100ns }"), "parse");
  EXPECT_EQ(f.Run("{ name =~ \"c.*\" }"), "call db,check");
  EXPECT_EQ(f.Run("{ name =~ \"c\" }"), "");  // fully anchored
  EXPECT_EQ(f.Run("{ name !~ \".*e.*\" }"), "GET /,call db,orphan");
  EXPECT_EQ(f.Run("{ trace:rootService = \"api\" && name = \"parse\" }"), "parse");
  EXPECT_EQ(f.Run("{ rootName = \"GET /\" && trace:duration = 100us && name = \"check\" }"), "check");
  EXPECT_EQ(f.Run("{ span:id = \"0000000000000003\" }"), "query");
  EXPECT_EQ(f.Run("{ span:parentID = \"0000000000000001\" }"), "call db,check");
  EXPECT_EQ(f.Run("{ trace:id = \"01010101010101010101010101010101\" && span:childCount = 2 }"), "GET /");
  EXPECT_EQ(f.Run("{ nestedSetParent < 0 }"), "GET /");
  EXPECT_EQ(f.Run("{ nestedSetLeft = 3 || nestedSetRight = 9 }"), "query,check");
  EXPECT_EQ(f.Run("{ instrumentation:name = \"lib-auth\" && instrumentation:version = \"1.0\" }"), "check");
  EXPECT_EQ(f.Run("{ span.rows = 7 }"), "query,check");  // int and float compare numerically
  EXPECT_EQ(f.Run("{ span.rows * 2 + 1 = 15 }"), "query,check");
  EXPECT_EQ(f.Run("{ span.http.status_code / 100 = 2 }"), "GET /");  // integers divide as integers
  EXPECT_EQ(f.Run("{ span.http.status_code / 100.0 = 2 }"), "GET /");
  EXPECT_EQ(f.Run("{ span.http.status_code / 0 = 2 }"), "");
  EXPECT_EQ(f.Run("{ -span.rows < -6 }"), "query,check");
  EXPECT_EQ(f.Run("{ !(span.rows = 7) && kind = server }"), "GET /");
  EXPECT_EQ(f.Run("{ span.rows = \"7\" }"), "");  // mismatched types never match
  EXPECT_EQ(f.Run("{ kind = client || kind = producer }"), "call db");
}

TEST(TraceQLEvaluate, ArraysEventsAndLinks) {
  Fixture f;
  EXPECT_EQ(f.Run("{ span.tags = \"b\" }"), "query");
  EXPECT_EQ(f.Run("{ span.tags =~ \"[ab]\" }"), "query");
  EXPECT_EQ(f.Run("{ span.tags != \"b\" }"), "");
  EXPECT_EQ(f.Run("{ span.tags != \"c\" }"), "query");
  EXPECT_EQ(f.Run("{ span.tags !~ \"a\" }"), "");
  EXPECT_EQ(f.Run("{ event:name = \"exception\" }"), "query");
  EXPECT_EQ(f.Run("{ event.exception.type = \"Timeout\" && event:timeSinceStart = 1us }"), "query");
  EXPECT_EQ(f.Run("{ event.exception.type = \"Timeout\" && name = \"query\" }"), "query");
  EXPECT_EQ(f.Run("{ event:name = \"exception\" || name = \"check\" }"), "query,check");
  EXPECT_EQ(f.Run("{ link.reason = \"follows\" && link:spanID = \"000000000000002a\" }"), "check");
  EXPECT_EQ(f.Run("{ link:traceID = \"02020202020202020202020202020202\" }"), "check");
}

TEST(TraceQLEvaluate, SpansetOperators) {
  Fixture f;
  const std::string api = "{ resource.service.name = \"api\" }";
  const std::string db = "{ resource.service.name = \"db\" }";
  EXPECT_EQ(f.Run(api + " && " + db), "GET /,call db,query,parse,orphan");
  EXPECT_EQ(f.Run(api + " && { name = \"nope\" }"), "");
  EXPECT_EQ(f.Run("{ name = \"check\" } || { name = \"parse\" }"), "parse,check");
  EXPECT_EQ(f.Run(api + " > " + db), "query");
  EXPECT_EQ(f.Run(db + " < " + api), "call db");
  EXPECT_EQ(f.Run(api + " >> " + db), "query,parse");
  EXPECT_EQ(f.Run(db + " << " + api), "GET /,call db");
  EXPECT_EQ(f.Run("{ name = \"call db\" } ~ { }"), "check");
  EXPECT_EQ(f.Run("{ } !> " + db), "orphan");  // only the orphan has no parent at all
  EXPECT_EQ(f.Run(api + " !> { }"), "GET /,parse,orphan");
  EXPECT_EQ(f.Run(db + " !< { }"), "GET /,parse,check,orphan");
  EXPECT_EQ(f.Run(api + " !>> { }"), "GET /,orphan");
  EXPECT_EQ(f.Run(db + " !<< { }"), "parse,check,orphan");  // query is parse's ancestor
  EXPECT_EQ(f.Run("{ name = \"call db\" } !~ { }"), "GET /,call db,query,parse,orphan");
  EXPECT_EQ(f.Run(api + " &> " + db), "call db,query");
  EXPECT_EQ(f.Run(db + " &< " + api), "call db,query");
  EXPECT_EQ(f.Run("{ name = \"GET /\" } &>> " + db), "GET /,query,parse");
  EXPECT_EQ(f.Run(db + " &<< { name = \"GET /\" }"), "GET /,query,parse");
  EXPECT_EQ(f.Run("{ name = \"call db\" } &~ { name = \"check\" }"), "call db,check");
  EXPECT_EQ(f.Run("({ name = \"GET /\" } > { }) > { }"), "query");
  EXPECT_EQ(f.Run("({ } | count() > 5) >> ({ status = error })"), "query");
}

TEST(TraceQLEvaluate, PipelineStages) {
  Fixture f;
  EXPECT_EQ(f.Run("{ kind = server } | { resource.service.name != \"api\" }"), "query,check");
  EXPECT_EQ(f.Run("{ } | by(resource.service.name)"), "GET /,call db|query,parse,orphan|check");
  EXPECT_EQ(f.Run("{ } | by(resource.service.name) | count() > 1"), "GET /,call db|query,parse,orphan");
  EXPECT_EQ(f.Run("{ } | by(resource.service.name) | count() = 3 | coalesce()"), "query,parse,orphan");
  EXPECT_EQ(f.Run("{ } | by(resource.service.name) | coalesce()"), "GET /,call db,query,parse,check,orphan");
  EXPECT_EQ(f.Run("{ } | count() > 6"), "");
  EXPECT_EQ(f.Run("{ } | avg(duration) > 1ms"), "");
  EXPECT_EQ(f.Run("{ } | max(duration) >= 100us"), "GET /,call db,query,parse,check,orphan");
  EXPECT_EQ(f.Run("{ } | sum(span.rows) = 14"), "GET /,call db,query,parse,check,orphan");
  EXPECT_EQ(f.Run("{ } | by(span.peer)"), "GET /,query,parse,check,orphan|call db");  // nil is a group
  EXPECT_EQ(f.Run("by(kind) | { name != \"x\" } | count() = 2"), "parse,orphan");
  EXPECT_EQ(f.Run("by(kind) | { name != \"GET /\" } | count() = 2"), "query,check|parse,orphan");
  EXPECT_EQ(f.Run("count() > 1 | { status = error }"), "query");

  auto query = Parse("{ } | by(resource.service.name) | count() > 1 | avg(duration) > 1us");
  ASSERT_TRUE(query.ok());
  auto result = EvaluateSearch(*query.value(), f.view);
  ASSERT_EQ(result.size(), 2u);
  ASSERT_EQ(result[0].attributes.size(), 3u);
  EXPECT_EQ(result[0].attributes[0].key, "by(resource.service.name)");
  EXPECT_EQ(result[0].attributes[0].value.string_value, "api");
  EXPECT_EQ(result[0].attributes[1].key, "count()");
  EXPECT_EQ(result[0].attributes[1].value.int_value, 2);
  EXPECT_EQ(result[0].attributes[2].key, "avg(duration)");
  EXPECT_EQ(result[0].attributes[2].value.string_value, "94\xC2\xB5s");
}

TEST(TraceQLEvaluate, ResultAttributesAsTempoShowsThem) {
  Fixture f;
  auto query = Parse("{ status = error && kind = server && duration > 1us && name != \"\" && resource.service.name = \"db\" } "
                     "| select(span.rows, span.tags, event.exception.type, span:id, nestedSetParent)");
  ASSERT_TRUE(query.ok()) << query.status().message();
  auto result = EvaluateSearch(*query.value(), f.view);
  ASSERT_EQ(result.size(), 1u);
  ASSERT_EQ(result[0].spans.size(), 1u);
  std::vector<std::string> keys;
  for (const auto& kv : result[0].spans[0].attributes) keys.push_back(kv.key);
  // name, duration and span:id go to their own fields in Tempo's response, not attributes.
  EXPECT_EQ(keys, (std::vector<std::string>{"status", "kind", "service.name", "rows", "tags", "exception.type",
                                            "nestedSetParent"}));
  const auto& attributes = result[0].spans[0].attributes;
  EXPECT_EQ(attributes[0].value.string_value, "error");
  EXPECT_EQ(attributes[1].value.string_value, "server");
  EXPECT_EQ(attributes[2].value.string_value, "db");
  EXPECT_EQ(attributes[3].value.int_value, 7);
  EXPECT_EQ(attributes[4].value.type, otlp::AnyValue::Type::kArray);
  EXPECT_EQ(attributes[6].value.int_value, 2);
}

TEST(TraceQLEvaluate, MetricsQueriesEvaluateTheirPipeline) {
  Fixture f;
  auto query = Parse("{ kind = server } | rate() by (resource.service.name)");
  ASSERT_TRUE(query.ok());
  auto matched = EvaluatePipeline(*query.value(), f.view);
  ASSERT_EQ(matched.size(), 1u);
  EXPECT_EQ(matched[0].spans, (std::vector<uint32_t>{0, 2, 4}));
  EXPECT_EQ(EvaluateSearch(*query.value(), f.view).size(), 1u);
  const MetricsStage& metrics = *query.value()->metrics();
  Value service = EvaluateField(metrics.by[0], f.view, 2);
  EXPECT_EQ(service.StringValue(), "db");
  FieldExpr duration;
  duration.kind = FieldExpr::Kind::kAttribute;
  duration.attribute.intrinsic = Intrinsic::kDuration;
  EXPECT_EQ(EvaluateField(duration, f.view, 3).int_value, 100);
  EXPECT_EQ(ValueToAnyValue(EvaluateField(duration, f.view, 3)).string_value, "100ns");
  auto event_field = ParseAttribute("event.exception.type");
  FieldExpr event_expr;
  event_expr.kind = FieldExpr::Kind::kAttribute;
  event_expr.attribute = event_field.value();
  EXPECT_EQ(EvaluateField(event_expr, f.view, 2).StringValue(), "Timeout");
  EXPECT_TRUE(EvaluateField(event_expr, f.view, 0).IsNil());
}

TEST(TraceQLEvaluate, DeterministicAcrossRuns) {
  Fixture f;
  const char* queries[] = {"{ } | by(kind)", "{ } >> { }", "{ } | by(span.rows) | coalesce()"};
  for (const char* q : queries) EXPECT_EQ(f.Run(q), f.Run(q)) << q;
}

TEST(TraceQLPlan, PruningIsConservative) {
  auto plan = [](const char* text) { return PlanPruning(*Parse(text).value()); };
  PruneConditions p = plan("{ resource.service.name = \"a\" && span.x = 1 && duration > 2s } | { span.y != nil }");
  EXPECT_EQ(p.services_any_of, (std::vector<std::string>{"a"}));
  EXPECT_EQ(p.span_attribute_keys, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(p.min_span_duration_nanos, 2000000000u);
  EXPECT_EQ(plan("{ trace:duration >= 5s }").min_trace_duration_nanos, 5000000000u);
  // Two different spans (which may lie in different blocks): one side's conditions only.
  EXPECT_EQ(plan("{ span.a = 1 } > { span.b = 2 }").span_attribute_keys, (std::vector<std::string>{"a"}));
  EXPECT_EQ(plan("{ span.a = 1 } && { span.b = 2 && span.c = 3 }").span_attribute_keys,
            (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(plan("{ span.a = 1 } !> { span.b = 2 }").span_attribute_keys, (std::vector<std::string>{"b"}));
  for (const char* open : {"{ resource.service.name = \"a\" || span.x = 1 }", "{ !(span.x = 1) }",
                           "{ span.x = 1 } || { span.y = 2 }", "{ span.x = nil }", "{ .x = 1 }",
                           "({ span.x = 1 } | count() > 1) || ({ span.y = 1 })", "{ duration < 1s }"}) {
    PruneConditions none = plan(open);
    EXPECT_TRUE(none.services_any_of.empty()) << open;
    EXPECT_TRUE(none.span_attribute_keys.empty()) << open;
    EXPECT_EQ(none.min_span_duration_nanos, 0u) << open;
    EXPECT_EQ(none.min_trace_spans, 0u) << open;
  }
  // A count() stage bounds the trace's span count from below; other aggregates, `<` and
  // count() inside a wrapped pipeline do not.
  EXPECT_EQ(plan("{ } | count() > 20").min_trace_spans, 21u);
  EXPECT_EQ(plan("{ span.x = 1 } | by(name) | count() >= 3").min_trace_spans, 3u);
  EXPECT_EQ(plan("{ } | count() = 4 | count() > 1").min_trace_spans, 4u);
  EXPECT_EQ(plan("{ } | count() > -5").min_trace_spans, 0u);
  for (const char* open : {"{ } | count() < 20", "{ } | count() != 3", "{ } | avg(duration) > 20ms",
                           "{ } | sum(span.x) > 20", "({ } | count() > 5) || { span.y = 1 }"})
    EXPECT_EQ(plan(open).min_trace_spans, 0u) << open;
}

}  // namespace
}  // namespace tracery::traceql

namespace tracery::traceql {
namespace {

TEST(TraceQLPlan, SpanLocalQueriesAndNeededColumns) {
  auto local = [](const char* text) {
    auto query = Parse(text);
    EXPECT_TRUE(query.ok()) << text;
    return query.ok() && IsSpanLocal(*query.value());
  };
  EXPECT_TRUE(local("{ span.a = 1 } | { status = error }"));
  EXPECT_TRUE(local("{ } | rate() by (resource.service.name)"));
  EXPECT_TRUE(local("{ name = \"x\" } | quantile_over_time(duration, .9)"));
  EXPECT_FALSE(local("{ span.a = 1 } > { span.b = 1 }"));
  EXPECT_FALSE(local("{ } | count() > 2"));
  EXPECT_FALSE(local("{ traceDuration > 1s }"));
  EXPECT_FALSE(local("{ nestedSetParent < 0 }"));
  EXPECT_FALSE(local("{ } | rate() by (trace:rootService)"));
  EXPECT_FALSE(local("{ } | compare({ status = error })"));

  auto needs = [](const char* text) { return NeededColumns(*Parse(text).value()); };
  block::Projection none = needs("{ resource.service.name = \"a\" && duration > 1s } | rate()");
  EXPECT_FALSE(none.span_attributes || none.events || none.links || none.status_message);
  EXPECT_TRUE(needs("{ } | avg_over_time(span.size)").span_attributes);
  EXPECT_TRUE(needs("{ .x = 1 }").span_attributes);  // unscoped: the span's first
  EXPECT_TRUE(needs("{ event:name = \"e\" }").events);
  EXPECT_TRUE(needs("{ link.a = 1 }").links);
  EXPECT_TRUE(needs("{ statusMessage = \"boom\" }").status_message);
  EXPECT_TRUE(needs("{ } | select(span.a)").span_attributes);
}

}  // namespace
}  // namespace tracery::traceql
