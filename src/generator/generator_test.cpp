// Unit tests of the metrics generator on real encoded OTLP: span metrics labels and counts,
// filter policies, service-graph pairing across requests, virtual nodes, series limits.
#include "generator/generator.h"

#include <gtest/gtest.h>

#include <thread>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::generator {
namespace {

using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
namespace trace_pb = opentelemetry::proto::trace::v1;

struct SpanSpec {
  std::string service, name;
  int kind;
  uint8_t trace, id, parent;  // small numbers become IDs
  uint64_t duration_ms;
  bool error = false;
  std::vector<std::pair<std::string, std::string>> attributes;
};

std::string Id(uint8_t n, size_t size) {
  std::string id(size, '\0');
  id.back() = char(n);
  id.front() = 1;
  return id;
}

std::string Encode(const std::vector<SpanSpec>& specs) {
  ExportTraceServiceRequest request;
  for (const auto& spec : specs) {
    auto* rs = request.add_resource_spans();
    auto* attribute = rs->mutable_resource()->add_attributes();
    attribute->set_key("service.name");
    attribute->mutable_value()->set_string_value(spec.service);
    auto* span = rs->add_scope_spans()->add_spans();
    span->set_trace_id(Id(spec.trace, 16));
    span->set_span_id(Id(spec.id, 8));
    if (spec.parent) span->set_parent_span_id(Id(spec.parent, 8));
    span->set_name(spec.name);
    span->set_kind(trace_pb::Span::SpanKind(spec.kind));
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ull);
    span->set_end_time_unix_nano(1'700'000'000'000'000'000ull + spec.duration_ms * 1'000'000);
    if (spec.error) span->mutable_status()->set_code(trace_pb::Status::STATUS_CODE_ERROR);
    for (const auto& [k, v] : spec.attributes) {
      auto* a = span->add_attributes();
      a->set_key(k);
      a->mutable_value()->set_string_value(v);
    }
  }
  return request.SerializeAsString();
}

void Feed(Generator& generator, const std::vector<SpanSpec>& specs, const std::string& tenant = "single-tenant") {
  std::string bytes = Encode(specs);
  otlp::SplitRequest split;
  ASSERT_TRUE(otlp::SplitByTrace(bytes, split).ok());
  generator.Consume(tenant, split, std::vector<bool>(split.fragments.size(), true));
}

MetricsRegistry& SelfMetrics() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

bool HasLine(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

constexpr int kServer = 2, kClient = 3;

TEST(GeneratorTest, SpanMetricsCountEverySpanWithTempoLabels) {
  Options options;
  options.span_metrics = true;
  Generator generator(options, SelfMetrics());
  Feed(generator, {{"frontend", "GET /", kServer, 1, 1, 0, 20},
                   {"frontend", "GET /", kServer, 2, 2, 0, 700, true},
                   {"frontend", "GET /", kServer, 3, 3, 0, 20}});
  std::string text = generator.Render(false);
  EXPECT_TRUE(HasLine(text, "traces_spanmetrics_calls_total{service=\"frontend\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\","
                            "status_code=\"STATUS_CODE_UNSET\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "traces_spanmetrics_calls_total{service=\"frontend\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\","
                            "status_code=\"STATUS_CODE_ERROR\"} 1")) << text;
  // 20 ms falls in the 0.032 bucket, 700 ms in 1.024.
  EXPECT_TRUE(HasLine(text, "traces_spanmetrics_latency_bucket{service=\"frontend\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\","
                            "status_code=\"STATUS_CODE_UNSET\",le=\"0.032\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "traces_spanmetrics_latency_bucket{service=\"frontend\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\","
                            "status_code=\"STATUS_CODE_ERROR\",le=\"0.512\"} 0")) << text;
  std::string openmetrics = generator.Render(true);
  EXPECT_NE(openmetrics.find("# {trace_id=\"01000000000000000000000000000002\""), std::string::npos) << openmetrics;
  EXPECT_NE(openmetrics.find("# TYPE traces_spanmetrics_calls counter"), std::string::npos);
}

TEST(GeneratorTest, FilterPoliciesIncludeAndExclude) {
  Options options;
  options.span_metrics = true;
  FilterPolicy policy;
  policy.include = {{"kind", "SPAN_KIND_SERVER"}};
  policy.exclude_regex = true;
  policy.exclude = {{"span.http.target", "/health.*"}};
  options.filter_policies.push_back(policy);
  Generator generator(options, SelfMetrics());
  Feed(generator, {{"api", "GET /health", kServer, 1, 1, 0, 1, false, {{"http.target", "/healthz"}}},
                   {"api", "GET /orders", kServer, 2, 2, 0, 1, false, {{"http.target", "/orders"}}},
                   {"api", "SELECT", kClient, 2, 3, 2, 1}});
  std::string text = generator.Render(false);
  EXPECT_NE(text.find("span_name=\"GET /orders\""), std::string::npos) << text;
  EXPECT_EQ(text.find("span_name=\"GET /health\""), std::string::npos) << text;
  EXPECT_EQ(text.find("span_name=\"SELECT\""), std::string::npos) << text;
}

TEST(GeneratorTest, ServiceGraphPairsAcrossRequestsAndMakesVirtualNodes) {
  Options options;
  options.service_graphs = true;
  options.service_graph_wait = std::chrono::milliseconds(100);
  Generator generator(options, SelfMetrics());
  generator.Start();
  // The client half arrives first, the server half in a later request.
  Feed(generator, {{"frontend", "call", kClient, 1, 2, 1, 30}});
  Feed(generator, {{"checkout", "POST", kServer, 1, 3, 2, 20, true}});
  // A database call nobody answers: a virtual node once `wait` has passed.
  Feed(generator, {{"checkout", "SELECT", kClient, 1, 4, 3, 5, false, {{"db.system", "postgresql"}, {"db.name", "orders"}}}});
  // A client whose server never comes and that names no peer: unpaired.
  Feed(generator, {{"frontend", "call", kClient, 2, 5, 0, 5}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  std::string text = generator.Render(false);
  generator.Stop();
  EXPECT_TRUE(HasLine(text, "traces_service_graph_request_total{client=\"frontend\",server=\"checkout\",connection_type=\"\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "traces_service_graph_request_failed_total{client=\"frontend\",server=\"checkout\",connection_type=\"\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "traces_service_graph_request_total{client=\"checkout\",server=\"orders\",connection_type=\"database\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "traces_service_graph_unpaired_spans_total{client=\"frontend\",server=\"\"} 1")) << text;
}

TEST(GeneratorTest, MaxActiveSeriesDropsNewSeries) {
  Options options;
  options.span_metrics = true;
  options.max_active_series = 3;  // calls, latency and size of one label set
  Generator generator(options, SelfMetrics());
  Feed(generator, {{"a", "one", kServer, 1, 1, 0, 1}, {"b", "two", kServer, 2, 2, 0, 1}});
  std::string text = generator.Render(false);
  bool has_a = text.find("service=\"a\"") != std::string::npos, has_b = text.find("service=\"b\"") != std::string::npos;
  EXPECT_TRUE(has_a != has_b) << "exactly one label set fits under the limit\n" << text;
  EXPECT_NE(SelfMetrics().Render().find("tracery_generator_series_dropped"), std::string::npos);
}

TEST(GeneratorTest, TenantsRunTheProcessorsAndSeriesLimitOfTheirOverrides) {
  TenantLimits graphs_only, spans_limited, none;
  graphs_only.generator_processors_set = true;
  graphs_only.generator_service_graphs = true;
  spans_limited.generator_processors_set = true;
  spans_limited.generator_span_metrics = true;
  spans_limited.generator_max_active_series = 3;
  none.generator_processors_set = true;
  TenantLimitsTable limits(TenantLimits{}, {{"graphs", graphs_only}, {"limited", spans_limited}, {"off", none}});
  Options options;
  options.span_metrics = true;  // the main file's: tenants without overrides
  options.limits = &limits;
  Generator generator(options, SelfMetrics());
  const std::vector<SpanSpec> pair = {{"frontend", "GET /", kClient, 1, 1, 0, 1}, {"checkout", "GET /", kServer, 1, 2, 1, 1},
                                      {"a", "one", kServer, 2, 1, 0, 1}};
  for (const char* tenant : {"graphs", "limited", "off", "other"}) Feed(generator, pair, tenant);
  std::string text = generator.Render(false);
  auto has = [&](const std::string& family, const std::string& tenant) {
    std::string needle = family + "{";
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      std::string line = text.substr(at, text.find('\n', at) - at);
      if (line.find("tenant=\"" + tenant + "\"") != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("traces_service_graph_request_total", "graphs")) << text;
  EXPECT_FALSE(has("traces_spanmetrics_calls_total", "graphs")) << text;
  EXPECT_TRUE(has("traces_spanmetrics_calls_total", "limited")) << text;
  EXPECT_FALSE(has("traces_service_graph_request_total", "limited")) << text;
  EXPECT_FALSE(has("traces_spanmetrics_calls_total", "off")) << text;
  EXPECT_FALSE(has("traces_service_graph_request_total", "off")) << text;
  EXPECT_TRUE(text.find("tenant=\"other\"") != std::string::npos) << "the main file's processors: " << text;
  // limited: one label set fits under its 3 series (calls, latency, size), the others refused.
  size_t limited_calls = 0;
  for (size_t at = text.find("traces_spanmetrics_calls_total{"); at != std::string::npos;
       at = text.find("traces_spanmetrics_calls_total{", at + 1))
    limited_calls += text.substr(at, text.find('\n', at) - at).find("tenant=\"limited\"") != std::string::npos;
  EXPECT_EQ(limited_calls, 1u) << text;
}

TEST(GeneratorTest, StaleSeriesAreRemoved) {
  Options options;
  options.span_metrics = true;
  options.stale_duration = std::chrono::milliseconds(50);
  Generator generator(options, SelfMetrics());
  Feed(generator, {{"a", "one", kServer, 1, 1, 0, 1}});
  EXPECT_NE(generator.Render(false).find("service=\"a\""), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(generator.Render(false).find("service=\"a\""), std::string::npos);
}

TEST(GeneratorTest, IdleTenantsAreEvictedOnTheirOwnClock) {
  Options options;
  options.span_metrics = true;
  options.stale_duration = std::chrono::milliseconds(50);
  options.collection_interval = std::chrono::milliseconds(100);
  Generator generator(options, SelfMetrics());
  generator.Start();
  Feed(generator, {{"a", "one", kServer, 1, 1, 0, 1}});
  EXPECT_EQ(generator.TenantCount(), 1u);
  for (int i = 0; i < 50 && generator.TenantCount() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(generator.TenantCount(), 0u) << "no series left and idle: the tenant's state goes, with no scrape or write";
  Feed(generator, {{"a", "two", kServer, 2, 2, 0, 1}});
  EXPECT_NE(generator.Render(false).find("span_name=\"two\""), std::string::npos) << "and comes back with its next spans";
  generator.Stop();
}

}  // namespace
}  // namespace tracery::generator
