// Metrics queries end to end: parsed TraceQL over hand-built traces, checked series by series
// against Tempo's conventions (labels, buckets, empty-bucket values, second stages, compare,
// exemplars, merging and the series cap).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "traceql/engine.h"
#include "traceql/metrics.h"

namespace tracery::traceql {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;

double ExactQuantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

// A step-aligned origin: with start = kT0, end = kT0 + 180 s and step 60 s the buckets are
// stamped kT0, kT0+60 s, kT0+120 s and kT0+180 s, each covering the 60 s before its stamp.
constexpr uint64_t kT0 = 28'333'333ULL * 60 * kSecond;
constexpr int64_t kT0Ms = static_cast<int64_t>(kT0 / 1'000'000);
constexpr uint64_t kMs = 1'000'000ULL;

otlp::KeyValue IntAttr(std::string key, int64_t v) {
  otlp::KeyValue kv;
  kv.key = std::move(key);
  kv.value.type = otlp::AnyValue::Type::kInt;
  kv.value.int_value = v;
  return kv;
}

otlp::KeyValue StrAttr(std::string key, std::string v) {
  otlp::KeyValue kv;
  kv.key = std::move(key);
  kv.value.type = otlp::AnyValue::Type::kString;
  kv.value.string_value = std::move(v);
  return kv;
}

struct SpanSpec {
  std::string service = "api";
  uint64_t start = kT0 + 10 * kSecond;
  uint64_t duration = 100 * kMs;
  std::vector<otlp::KeyValue> attributes;
  otlp::StatusCode status = otlp::StatusCode::kUnset;
  std::string name = "GET /";
};

// Owns its TracesData so the view's pointers stay valid.
struct TestTrace {
  std::unique_ptr<otlp::TracesData> data = std::make_unique<otlp::TracesData>();
  TraceView view;
};

std::unique_ptr<TestTrace> MakeTrace(uint8_t trace_number, const std::vector<SpanSpec>& spans) {
  auto trace = std::make_unique<TestTrace>();
  TraceId id;
  id.bytes[0] = 0xab;
  id.bytes[15] = trace_number;
  uint8_t span_number = 0;
  for (const SpanSpec& spec : spans) {
    otlp::ResourceSpans resource_spans;
    resource_spans.resource.attributes.push_back(StrAttr("service.name", spec.service));
    otlp::ScopeSpans scope_spans;
    otlp::Span span;
    span.trace_id = std::string(id.View());
    span.span_id = std::string(7, '\0') + static_cast<char>(++span_number);
    span.span_id[0] = static_cast<char>(trace_number);
    span.name = spec.name;
    span.kind = otlp::SpanKind::kServer;
    span.start_time_unix_nano = spec.start;
    span.end_time_unix_nano = spec.start + spec.duration;
    span.attributes = spec.attributes;
    span.status_code = spec.status;
    scope_spans.spans.push_back(std::move(span));
    resource_spans.scope_spans.push_back(std::move(scope_spans));
    trace->data->resource_spans.push_back(std::move(resource_spans));
  }
  trace->view = BuildTraceView(id, *trace->data);
  return trace;
}

MetricsRange Range(uint64_t start = kT0, uint64_t end = kT0 + 180 * kSecond, uint64_t step = 60 * kSecond) {
  MetricsRange range;
  range.start_unix_nano = start;
  range.end_unix_nano = end;
  range.step_nanos = step;
  return range;
}

MetricsRange InstantRange(uint64_t start, uint64_t end) {
  MetricsRange range = Range(start, end, 0);
  range.instant = true;
  return range;
}

std::unique_ptr<MetricsEvaluator> NewEvaluator(const std::string& text, const MetricsRange& range) {
  Result<std::shared_ptr<const Query>> query = Parse(text);
  EXPECT_TRUE(query.ok()) << text << ": " << query.status().message();
  if (!query.ok()) return nullptr;
  Result<std::unique_ptr<MetricsEvaluator>> evaluator = MetricsEvaluator::Create(query.value(), range);
  EXPECT_TRUE(evaluator.ok()) << text << ": " << evaluator.status().message();
  if (!evaluator.ok()) return nullptr;
  return std::move(evaluator).value();
}

std::vector<MetricsSeries> RunQuery(const std::string& text, const std::vector<std::unique_ptr<TestTrace>>& traces,
                               const MetricsRange& range = Range()) {
  auto evaluator = NewEvaluator(text, range);
  if (evaluator == nullptr) return {};
  for (const auto& trace : traces) evaluator->Observe(trace->view);
  return evaluator->Finish();
}

// "key=value,key=value" with typed values shown as Tempo would print them.
std::string LabelText(const std::vector<otlp::KeyValue>& labels) {
  std::string out;
  for (const auto& label : labels) {
    if (!out.empty()) out += ",";
    out += label.key + "=";
    switch (label.value.type) {
      case otlp::AnyValue::Type::kString: out += "\"" + label.value.string_value + "\""; break;
      case otlp::AnyValue::Type::kInt: out += std::to_string(label.value.int_value); break;
      case otlp::AnyValue::Type::kDouble: {
        char buffer[32];
        std::snprintf(buffer, sizeof(buffer), "%g", label.value.double_value);
        out += buffer;
        break;
      }
      case otlp::AnyValue::Type::kBool: out += label.value.bool_value ? "true" : "false"; break;
      case otlp::AnyValue::Type::kEmpty: out += "nil"; break;
      default: out += "?"; break;
    }
  }
  return out;
}

// Sample values by offset from kT0 in seconds: "0:0 60:3 120:1".
std::string SampleText(const MetricsSeries& series) {
  std::string out;
  for (const auto& sample : series.samples) {
    if (!out.empty()) out += " ";
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%lld:%g", static_cast<long long>((sample.timestamp_ms - kT0Ms) / 1000),
                  sample.value);
    out += buffer;
  }
  return out;
}

std::vector<std::string> Describe(const std::vector<MetricsSeries>& series) {
  std::vector<std::string> out;
  for (const auto& s : series) out.push_back("{" + LabelText(s.labels) + "} " + SampleText(s));
  return out;
}

using Lines = std::vector<std::string>;

std::vector<std::unique_ptr<TestTrace>> ThreeServices() {
  std::vector<std::unique_ptr<TestTrace>> traces;
  traces.push_back(MakeTrace(1, {{.service = "api", .start = kT0 + 10 * kSecond, .duration = 100 * kMs,
                                  .attributes = {IntAttr("http.status_code", 200)}},
                                 {.service = "db", .start = kT0 + 20 * kSecond, .duration = 30 * kMs}}));
  traces.push_back(MakeTrace(2, {{.service = "api", .start = kT0 + 60 * kSecond, .duration = 300 * kMs,
                                  .attributes = {IntAttr("http.status_code", 500)},
                                  .status = otlp::StatusCode::kError},
                                 {.service = "db", .start = kT0 + 61 * kSecond, .duration = 50 * kMs}}));
  traces.push_back(MakeTrace(3, {{.service = "web", .start = kT0 + 150 * kSecond, .duration = 2 * kSecond,
                                  .attributes = {IntAttr("http.status_code", 200)}}}));
  return traces;
}

TEST(TraceQLMetricsQuery, CountOverTimeAndRateUngrouped) {
  auto traces = ThreeServices();
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time()", traces)),
            Lines({"{__name__=\"count_over_time\"} 0:0 60:3 120:1 180:1"}));
  EXPECT_EQ(Describe(RunQuery("{ } | rate()", traces)),
            Lines({"{__name__=\"rate\"} 0:0 60:0.05 120:0.0166667 180:0.0166667"}));
  EXPECT_EQ(Describe(RunQuery("{ resource.service.name = \"db\" } | count_over_time()", traces)),
            Lines({"{__name__=\"count_over_time\"} 0:0 60:1 120:1 180:0"}));
}

TEST(TraceQLMetricsQuery, BucketEdgesAreRightClosedOnSpanStart) {
  std::vector<std::unique_ptr<TestTrace>> traces;
  traces.push_back(MakeTrace(1, {{.start = kT0 - 60 * kSecond},        // the grid's open left edge: out
                                 {.start = kT0 - 60 * kSecond + 1},    // first bucket
                                 {.start = kT0},                       // still the first bucket
                                 {.start = kT0 + 1},                   // second
                                 {.start = kT0 + 180 * kSecond},       // last bucket's closed edge
                                 {.start = kT0 + 180 * kSecond + 1}}));  // past the end: out
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time()", traces)),
            Lines({"{__name__=\"count_over_time\"} 0:2 60:1 120:0 180:1"}));
}

TEST(TraceQLMetricsQuery, GroupedLabelsAreTypedAndNilsDropped) {
  auto traces = ThreeServices();
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name)", traces)),
            Lines({"{resource.service.name=\"api\"} 0:0 60:2 120:0 180:0",
                   "{resource.service.name=\"db\"} 0:0 60:1 120:1 180:0",
                   "{resource.service.name=\"web\"} 0:0 60:0 120:0 180:1"}));
  // db spans have no status code: the only by() value is nil, so the label is kept, with the
  // value "nil" as Tempo writes it.
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (span.http.status_code)", traces)),
            Lines({"{span.http.status_code=\"nil\"} 0:0 60:1 120:1 180:0",
                   "{span.http.status_code=200} 0:0 60:1 120:0 180:1",
                   "{span.http.status_code=500} 0:0 60:1 120:0 180:0"}));
  // With another value present the nil one is left out.
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name, span.http.status_code)", traces)),
            Lines({"{resource.service.name=\"api\",span.http.status_code=200} 0:0 60:1 120:0 180:0",
                   "{resource.service.name=\"api\",span.http.status_code=500} 0:0 60:1 120:0 180:0",
                   "{resource.service.name=\"db\"} 0:0 60:1 120:1 180:0",
                   "{resource.service.name=\"web\",span.http.status_code=200} 0:0 60:0 120:0 180:1"}));
}

TEST(TraceQLMetricsQuery, OverTimeFunctionsSkipEmptyBuckets) {
  auto traces = ThreeServices();
  // Durations in seconds; buckets without spans have no sample.
  EXPECT_EQ(Describe(RunQuery("{ } | max_over_time(duration)", traces)),
            Lines({"{__name__=\"max_over_time\"} 60:0.3 120:0.05 180:2"}));
  EXPECT_EQ(Describe(RunQuery("{ } | min_over_time(duration) by (resource.service.name)", traces)),
            Lines({"{resource.service.name=\"api\"} 60:0.1", "{resource.service.name=\"db\"} 60:0.03 120:0.05",
                   "{resource.service.name=\"web\"} 180:2"}));
  EXPECT_EQ(Describe(RunQuery("{ } | sum_over_time(span.http.status_code)", traces)),
            Lines({"{__name__=\"sum_over_time\"} 60:700 180:200"}));
  EXPECT_EQ(Describe(RunQuery("{ } | avg_over_time(span.http.status_code)", traces)),
            Lines({"{__name__=\"avg_over_time\"} 60:350 180:200"}));
  // No span has the attribute: no series at all.
  EXPECT_TRUE(RunQuery("{ } | avg_over_time(span.missing)", traces).empty());
}

TEST(TraceQLMetricsQuery, QuantileOverTimeWithinOnePercent) {
  std::vector<std::unique_ptr<TestTrace>> traces;
  std::vector<double> seconds;
  std::vector<SpanSpec> spans;
  for (int i = 1; i <= 200; ++i) {
    uint64_t duration = static_cast<uint64_t>(i) * 7 * kMs + static_cast<uint64_t>(i * i) * 1000;
    spans.push_back({.start = kT0 + 5 * kSecond + static_cast<uint64_t>(i) * kMs, .duration = duration});
    seconds.push_back(static_cast<double>(duration) / 1e9);
  }
  traces.push_back(MakeTrace(1, spans));
  auto series = RunQuery("{ } | quantile_over_time(duration, 0.5, 0.99)", traces);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(LabelText(series[0].labels), "p=0.5");
  EXPECT_EQ(LabelText(series[1].labels), "p=0.99");
  for (size_t i = 0; i < 2; ++i) {
    double q = i == 0 ? 0.5 : 0.99;
    // Tempo answers 0 for the empty buckets of a quantile series.
    ASSERT_EQ(series[i].samples.size(), 4u);
    EXPECT_EQ(series[i].samples[0].value, 0);
    EXPECT_EQ(series[i].samples[2].value, 0);
    double exact = ExactQuantile(seconds, q);
    EXPECT_LE(std::fabs(series[i].samples[1].value - exact), 0.01 * exact) << q;
  }
}

TEST(TraceQLMetricsQuery, HistogramOverTimeUsesPowerOfTwoBuckets) {
  auto traces = ThreeServices();
  // 100 ms -> 2^27 ns, 30 ms -> 2^25, 300 ms -> 2^29, 50 ms -> 2^26, 2 s -> 2^31.
  EXPECT_EQ(Describe(RunQuery("{ } | histogram_over_time(duration)", traces)),
            Lines({"{__bucket=0.0335544} 0:0 60:1 120:0 180:0", "{__bucket=0.0671089} 0:0 60:0 120:1 180:0",
                   "{__bucket=0.134218} 0:0 60:1 120:0 180:0", "{__bucket=0.536871} 0:0 60:1 120:0 180:0",
                   "{__bucket=2.14748} 0:0 60:0 120:0 180:1"}));
  EXPECT_EQ(Describe(RunQuery("{ } | histogram_over_time(span.http.status_code) by (resource.service.name)", traces)),
            Lines({"{resource.service.name=\"api\",__bucket=256} 0:0 60:1 120:0 180:0",
                   "{resource.service.name=\"api\",__bucket=512} 0:0 60:1 120:0 180:0",
                   "{resource.service.name=\"web\",__bucket=256} 0:0 60:0 120:0 180:1"}));
}

TEST(TraceQLMetricsQuery, InstantIsOneValueOverTheWholeRange) {
  auto traces = ThreeServices();
  MetricsRange range = InstantRange(kT0 + 10 * kSecond, kT0 + 150 * kSecond);
  // (start, end]: the span at exactly start is out, the one at exactly end is in.
  auto series = RunQuery("{ } | rate() by (resource.service.name)", traces, range);
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(LabelText(series[0].labels), "resource.service.name=\"api\"");
  ASSERT_EQ(series[0].samples.size(), 1u);
  EXPECT_EQ(series[0].samples[0].timestamp_ms, kT0Ms + 150'000);
  EXPECT_DOUBLE_EQ(series[0].samples[0].value, 1.0 / 140);
  EXPECT_DOUBLE_EQ(series[1].samples[0].value, 2.0 / 140);
  EXPECT_DOUBLE_EQ(series[2].samples[0].value, 1.0 / 140);
}

TEST(TraceQLMetricsQuery, TopKAndBottomKPerTimestamp) {
  auto traces = ThreeServices();
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name) | topk(1)", traces)),
            Lines({"{resource.service.name=\"api\"} 0:0 60:2", "{resource.service.name=\"db\"} 120:1",
                   "{resource.service.name=\"web\"} 180:1"}));
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name) | bottomk(2)", traces)),
            Lines({"{resource.service.name=\"api\"} 0:0 120:0 180:0",
                   "{resource.service.name=\"db\"} 0:0 60:1 180:0",
                   "{resource.service.name=\"web\"} 60:0 120:0"}));
}

TEST(TraceQLMetricsQuery, ComparisonFiltersDropSamplesAndChain) {
  auto traces = ThreeServices();
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name) > 0", traces)),
            Lines({"{resource.service.name=\"api\"} 60:2", "{resource.service.name=\"db\"} 60:1 120:1",
                   "{resource.service.name=\"web\"} 180:1"}));
  EXPECT_EQ(Describe(RunQuery("{ } | max_over_time(duration) by (resource.service.name) >= 100ms", traces)),
            Lines({"{resource.service.name=\"api\"} 60:0.3", "{resource.service.name=\"web\"} 180:2"}));
  EXPECT_EQ(Describe(RunQuery("{ } | count_over_time() by (resource.service.name) > 0 | topk(1)", traces)),
            Lines({"{resource.service.name=\"api\"} 60:2", "{resource.service.name=\"db\"} 120:1",
                   "{resource.service.name=\"web\"} 180:1"}));
}

TEST(TraceQLMetricsQuery, CompareSelectionAgainstBaseline) {
  auto traces = ThreeServices();
  MetricsRange range = InstantRange(kT0, kT0 + 180 * kSecond);
  auto lines = Describe(RunQuery("{ } | compare({ status = error })", traces, range));
  auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  EXPECT_TRUE(has("{__meta_type=\"baseline\",resource.service.name=\"api\"} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"baseline\",resource.service.name=\"db\"} 180:2"));
  EXPECT_TRUE(has("{__meta_type=\"baseline\",resource.service.name=\"web\"} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"selection\",resource.service.name=\"api\"} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"selection\",span.http.status_code=500} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"selection\",status=\"error\"} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"baseline\",status=\"unset\"} 180:4"));
  EXPECT_TRUE(has("{__meta_type=\"baseline_total\",resource.service.name=\"nil\"} 180:4"));
  EXPECT_TRUE(has("{__meta_type=\"baseline_total\",span.http.status_code=\"nil\"} 180:2"));
  EXPECT_TRUE(has("{__meta_type=\"selection_total\",kind=\"nil\"} 180:1"));
  EXPECT_FALSE(has("{__meta_type=\"selection\",resource.service.name=\"db\"} 180:0"));
  for (const auto& line : lines) EXPECT_EQ(line.find("__meta_error"), std::string::npos) << line;

  // topN 2: three services in the baseline is one too many.
  auto capped = RunQuery("{ } | compare({ status = error }, 2)", traces, range);
  auto capped_lines = Describe(capped);
  EXPECT_NE(std::find(capped_lines.begin(), capped_lines.end(),
                      "{__meta_error=\"__too_many_values__\",resource.service.name=\"nil\"} "),
            capped_lines.end());
  EXPECT_NE(std::find(capped_lines.begin(), capped_lines.end(),
                      "{__meta_type=\"baseline\",resource.service.name=\"db\"} 180:2"),
            capped_lines.end());
  // Equal totals (api and web have 1 each) are cut in value order: api stays, web goes.
  EXPECT_NE(std::find(capped_lines.begin(), capped_lines.end(),
                      "{__meta_type=\"baseline\",resource.service.name=\"api\"} 180:1"),
            capped_lines.end());
  EXPECT_EQ(std::find(capped_lines.begin(), capped_lines.end(),
                      "{__meta_type=\"baseline\",resource.service.name=\"web\"} 180:1"),
            capped_lines.end());
}

TEST(TraceQLMetricsQuery, CompareTimeWindowNarrowsTheSelection) {
  auto traces = ThreeServices();
  MetricsRange range = InstantRange(kT0, kT0 + 180 * kSecond);
  // Only spans starting in [kT0+100s, kT0+200s) can be selected: the web span.
  std::string text = "{ } | compare({ span.http.status_code = 200 }, 10, " + std::to_string(kT0 + 100 * kSecond) +
                     ", " + std::to_string(kT0 + 200 * kSecond) + ")";
  auto lines = Describe(RunQuery(text, traces, range));
  auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  EXPECT_TRUE(has("{__meta_type=\"selection\",resource.service.name=\"web\"} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"baseline\",span.http.status_code=200} 180:1"));
  EXPECT_TRUE(has("{__meta_type=\"selection_total\",resource.service.name=\"nil\"} 180:1"));
}

TEST(TraceQLMetricsQuery, ExemplarsAreBoundedDeterministicAndCarryIds) {
  auto traces = ThreeServices();
  MetricsRange range = Range();
  range.max_exemplars = 2;  // two time slots: (kT0-60s, kT0+60s] and (kT0+60s, kT0+180s]
  auto evaluator = NewEvaluator("{ } | count_over_time()", range);
  // Feed in reverse: the choice must not depend on order.
  for (auto it = traces.rbegin(); it != traces.rend(); ++it) evaluator->Observe((*it)->view);
  auto series = evaluator->Finish();
  ASSERT_EQ(series.size(), 1u);
  ASSERT_EQ(series[0].exemplars.size(), 2u);
  const MetricsExemplar& first = series[0].exemplars[0];
  ASSERT_EQ(first.labels.size(), 2u);
  EXPECT_EQ(first.labels[0].key, "trace:id");
  EXPECT_EQ(first.labels[0].value.string_value, "ab000000000000000000000000000001");
  EXPECT_EQ(first.labels[1].key, "span:id");
  EXPECT_EQ(first.labels[1].value.string_value, "0100000000000001");
  EXPECT_EQ(first.timestamp_ms, kT0Ms + 10'000);
  EXPECT_TRUE(std::isnan(first.value));  // counting functions carry no value, like Tempo
  // The second slot's smallest trace ID is trace 2's first span (trace 3 is larger).
  EXPECT_EQ(series[0].exemplars[1].labels[0].value.string_value, "ab000000000000000000000000000002");
  EXPECT_EQ(series[0].exemplars[1].timestamp_ms, kT0Ms + 61'000);

  // Value-based functions report the span's value, durations in seconds.
  auto valued = RunQuery("{ resource.service.name = \"web\" } | max_over_time(duration) with(exemplars=5)", traces);
  ASSERT_EQ(valued.size(), 1u);
  ASSERT_EQ(valued[0].exemplars.size(), 1u);
  EXPECT_DOUBLE_EQ(valued[0].exemplars[0].value, 2.0);

  range.max_exemplars = 10;
  auto none = RunQuery("{ } | rate() with(exemplars=false)", traces, range);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].exemplars.empty());
}

TEST(TraceQLMetricsQuery, QuantileExemplarsGoToTheSmallestQuantileAtOrAboveThem) {
  std::vector<SpanSpec> spans;
  for (uint64_t i = 1; i <= 10; ++i) {
    // 3 s apart: with 100 exemplar slots over 240 s each span has its own slot.
    spans.push_back({.start = kT0 + i * 3 * kSecond, .duration = i * 10 * kMs});
  }
  std::vector<std::unique_ptr<TestTrace>> traces;
  traces.push_back(MakeTrace(1, spans));
  MetricsRange range = Range();
  range.max_exemplars = 100;
  auto series = RunQuery("{ } | quantile_over_time(duration, 0.99, 0.5)", traces, range);
  ASSERT_EQ(series.size(), 2u);
  ASSERT_EQ(LabelText(series[0].labels), "p=0.5");
  double p50 = series[0].samples[1].value;
  EXPECT_EQ(series[0].exemplars.size() + series[1].exemplars.size(), 10u);
  for (const auto& exemplar : series[0].exemplars) EXPECT_LE(exemplar.value, p50);
  for (const auto& exemplar : series[1].exemplars) EXPECT_GT(exemplar.value, p50);
  // 10..40 ms for sure; 50 ms depends on which side of it the sketch's 1 % answer falls.
  EXPECT_GE(series[0].exemplars.size(), 4u);
  EXPECT_LE(series[0].exemplars.size(), 5u);
}

TEST(TraceQLMetricsQuery, MergedEvaluatorsEqualOneOverAllTraces) {
  auto traces = ThreeServices();
  traces.push_back(MakeTrace(4, {{.service = "api", .start = kT0 + 70 * kSecond, .duration = 900 * kMs,
                                  .attributes = {IntAttr("http.status_code", 404)}}}));
  MetricsRange range = Range();
  range.max_exemplars = 3;
  for (const char* text : {"{ } | rate() by (resource.service.name)",
                           "{ } | quantile_over_time(duration, 0.5, 0.9) by (resource.service.name)",
                           "{ } | avg_over_time(duration)", "{ } | min_over_time(span.http.status_code)",
                           "{ } | sum_over_time(duration) by (span.http.status_code) | topk(2)",
                           "{ } | histogram_over_time(duration)", "{ } | compare({ status = error }, 2)"}) {
    auto one = NewEvaluator(text, range);
    auto left = NewEvaluator(text, range);
    auto right = NewEvaluator(text, range);
    for (size_t i = 0; i < traces.size(); ++i) {
      one->Observe(traces[i]->view);
      (i % 2 == 0 ? left : right)->Observe(traces[i]->view);
    }
    left->Merge(*right);
    auto expected = one->Finish();
    auto merged = left->Finish();
    EXPECT_EQ(Describe(merged), Describe(expected)) << text;
    ASSERT_EQ(merged.size(), expected.size()) << text;
    for (size_t i = 0; i < merged.size(); ++i) {
      ASSERT_EQ(merged[i].exemplars.size(), expected[i].exemplars.size()) << text;
      for (size_t j = 0; j < merged[i].exemplars.size(); ++j) {
        EXPECT_EQ(merged[i].exemplars[j].labels, expected[i].exemplars[j].labels) << text;
      }
    }
    EXPECT_EQ(left->stats().spans_observed, one->stats().spans_observed);
  }
}

TEST(TraceQLMetricsQuery, SeriesCapMakesTheAnswerPartial) {
  auto traces = ThreeServices();
  MetricsRange range = Range();
  range.max_series = 2;
  auto evaluator = NewEvaluator("{ } | count_over_time() by (resource.service.name)", range);
  for (const auto& trace : traces) evaluator->Observe(trace->view);
  EXPECT_TRUE(evaluator->SeriesLimitReached());
  EXPECT_NE(evaluator->PartialMessage().find("series limit of 2"), std::string::npos);
  EXPECT_EQ(evaluator->Finish().size(), 2u);

  // Merging past the cap is flagged too.
  range.max_series = 1;
  auto left = NewEvaluator("{ } | count_over_time() by (resource.service.name)", range);
  auto right = NewEvaluator("{ } | count_over_time() by (resource.service.name)", range);
  left->Observe(traces[2]->view);  // web
  right->Observe(MakeTrace(9, {{.service = "api"}})->view);
  EXPECT_FALSE(left->SeriesLimitReached());
  left->Merge(*right);
  EXPECT_TRUE(left->SeriesLimitReached());
  EXPECT_TRUE(left->PartialMessage().size() > 0);

  auto complete = NewEvaluator("{ } | rate()", Range());
  for (const auto& trace : traces) complete->Observe(trace->view);
  EXPECT_FALSE(complete->SeriesLimitReached());
  EXPECT_EQ(complete->PartialMessage(), "");
}

TEST(TraceQLMetricsQuery, RejectsSearchQueriesAndBadRanges) {
  Result<std::shared_ptr<const Query>> search = Parse("{ status = error }");
  ASSERT_TRUE(search.ok());
  auto not_metrics = MetricsEvaluator::Create(search.value(), Range());
  ASSERT_FALSE(not_metrics.ok());
  EXPECT_EQ(not_metrics.status().code(), StatusCode::kInvalidArgument);

  Result<std::shared_ptr<const Query>> rate = Parse("{ } | rate()");
  ASSERT_TRUE(rate.ok());
  auto backwards = MetricsEvaluator::Create(rate.value(), Range(kT0, kT0 - kSecond));
  ASSERT_FALSE(backwards.ok());
  EXPECT_EQ(backwards.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(MetricsEvaluator::Create(nullptr, Range()).ok());
}

TEST(TraceQLMetricsQuery, WindowIsTheAlignedRange) {
  auto evaluator = NewEvaluator("{ } | rate()", Range(kT0 + 30 * kSecond, kT0 + 150 * kSecond));
  EXPECT_EQ(evaluator->window().start_unix_nano, kT0 - 60 * kSecond);
  EXPECT_EQ(evaluator->window().end_unix_nano, kT0 + 180 * kSecond);
  auto instant = NewEvaluator("{ } | rate()", InstantRange(kT0 + 30 * kSecond, kT0 + 150 * kSecond));
  EXPECT_EQ(instant->window().start_unix_nano, kT0 + 30 * kSecond);
  EXPECT_EQ(instant->window().end_unix_nano, kT0 + 150 * kSecond);
}

TEST(TraceQLMetricsQuery, StatsCountTracesAndSpansInRange) {
  auto traces = ThreeServices();
  traces.push_back(MakeTrace(5, {{.start = kT0 + 3600 * kSecond}}));  // out of range
  auto evaluator = NewEvaluator("{ } | rate()", Range());
  for (const auto& trace : traces) evaluator->Observe(trace->view);
  EXPECT_EQ(evaluator->stats().traces_observed, 4u);
  EXPECT_EQ(evaluator->stats().spans_observed, 5u);
}

}  // namespace
}  // namespace tracery::traceql
