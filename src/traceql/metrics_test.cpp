// Metrics engine building blocks: time buckets, the quantile sketch, histogram buckets, second
// stages and the output shape. Whole queries are in metrics_query_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "traceql/metrics.h"
#include "traceql/metrics_internal.h"

namespace tracery::traceql {
namespace {

using metrics_internal::DenseSeries;
using metrics_internal::QuantileSketch;
using metrics_internal::TimeGrid;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TimeGrid MakeGrid(uint64_t start, uint64_t end, uint64_t step, bool instant = false) {
  MetricsRange range;
  range.start_unix_nano = start;
  range.end_unix_nano = end;
  range.step_nanos = step;
  range.instant = instant;
  Result<TimeGrid> grid = TimeGrid::Make(range);
  EXPECT_TRUE(grid.ok()) << grid.status().message();
  return grid.ok() ? grid.value() : TimeGrid{};
}

// ---- time buckets ---------------------------------------------------------------------------

TEST(TraceQLMetricsGrid, AlignsToStepWithAnExtraFirstBucket) {
  // 1030 s .. 1100 s at 60 s: aligned to (1020, 1140], plus the bucket before: (960, 1140].
  TimeGrid grid = MakeGrid(1030 * kSecond, 1100 * kSecond, 60 * kSecond);
  EXPECT_EQ(grid.left, 960 * kSecond);
  EXPECT_EQ(grid.count, 3u);
  EXPECT_EQ(grid.TimestampMs(0), 1'020'000);
  EXPECT_EQ(grid.TimestampMs(2), 1'140'000);
  // Right-closed buckets: a span at exactly 1020 s belongs to the bucket stamped 1020 s.
  EXPECT_EQ(grid.BucketOf(960 * kSecond), -1);
  EXPECT_EQ(grid.BucketOf(960 * kSecond + 1), 0);
  EXPECT_EQ(grid.BucketOf(1020 * kSecond), 0);
  EXPECT_EQ(grid.BucketOf(1020 * kSecond + 1), 1);
  EXPECT_EQ(grid.BucketOf(1140 * kSecond), 2);
  EXPECT_EQ(grid.BucketOf(1140 * kSecond + 1), -1);
}

TEST(TraceQLMetricsGrid, AlignedRangeStillGetsTheExtraBucket) {
  TimeGrid grid = MakeGrid(1200 * kSecond, 1320 * kSecond, 60 * kSecond);
  EXPECT_EQ(grid.left, 1140 * kSecond);
  EXPECT_EQ(grid.count, 3u);
  EXPECT_EQ(grid.TimestampMs(0), 1'200'000);
  EXPECT_EQ(grid.TimestampMs(2), 1'320'000);
}

TEST(TraceQLMetricsGrid, InstantIsOneLeftOpenBucket) {
  TimeGrid grid = MakeGrid(1030 * kSecond, 1090 * kSecond, 0, /*instant=*/true);
  EXPECT_EQ(grid.count, 1u);
  EXPECT_EQ(grid.BucketOf(1030 * kSecond), -1);
  EXPECT_EQ(grid.BucketOf(1030 * kSecond + 1), 0);
  EXPECT_EQ(grid.BucketOf(1090 * kSecond), 0);
  EXPECT_EQ(grid.BucketOf(1090 * kSecond + 1), -1);
  EXPECT_EQ(grid.TimestampMs(0), 1'090'000);
  EXPECT_DOUBLE_EQ(grid.StepSeconds(), 60);
}

TEST(TraceQLMetricsGrid, RangeOfExactlyOneStepIsTreatedAsInstant) {
  TimeGrid grid = MakeGrid(1030 * kSecond, 1090 * kSecond, 60 * kSecond);
  EXPECT_EQ(grid.count, 1u);
  EXPECT_EQ(grid.left, 1030 * kSecond);
}

TEST(TraceQLMetricsGrid, RejectsUnusableRanges) {
  MetricsRange range;
  range.start_unix_nano = 10 * kSecond;
  range.end_unix_nano = 10 * kSecond;
  range.step_nanos = kSecond;
  EXPECT_FALSE(TimeGrid::Make(range).ok());
  range.end_unix_nano = 20 * kSecond;
  range.step_nanos = 0;
  EXPECT_FALSE(TimeGrid::Make(range).ok());
  range.step_nanos = 1;  // 10 s in 1 ns steps
  Result<TimeGrid> grid = TimeGrid::Make(range);
  ASSERT_FALSE(grid.ok());
  EXPECT_EQ(grid.status().code(), StatusCode::kInvalidArgument);
  range.start_unix_nano = 0;
  range.step_nanos = kSecond;
  EXPECT_FALSE(TimeGrid::Make(range).ok());
}

TEST(TraceQLMetricsGrid, DefaultStepLikeTempo) {
  EXPECT_EQ(DefaultMetricsStepNanos(0, 3600 * kSecond), 15 * kSecond);
  EXPECT_EQ(DefaultMetricsStepNanos(0, 24 * 3600 * kSecond), 360 * kSecond);
  EXPECT_EQ(DefaultMetricsStepNanos(0, 600 * kSecond), 2 * kSecond);  // 2.5 s rounds to 2 s
  EXPECT_EQ(DefaultMetricsStepNanos(0, 60 * kSecond), kSecond);
  EXPECT_EQ(DefaultMetricsStepNanos(0, 3700 * kSecond), 15 * kSecond);  // 15.4 s -> 15 s
}

// ---- quantile sketch ------------------------------------------------------------------------

double ExactQuantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

TEST(TraceQLMetricsSketch, QuantilesWithinOnePercentOfExact) {
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> durations(-3, 2);  // seconds, from microseconds to minutes
  std::vector<double> values;
  QuantileSketch sketch;
  for (int i = 0; i < 20000; ++i) {
    double v = durations(random);
    values.push_back(v);
    sketch.Add(v);
  }
  EXPECT_EQ(sketch.count(), values.size());
  for (double q : {0.0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    double exact = ExactQuantile(values, q);
    EXPECT_LE(std::fabs(sketch.Quantile(q) - exact), QuantileSketch::kRelativeError * exact) << "q=" << q;
  }
}

TEST(TraceQLMetricsSketch, HandlesNegativesZerosAndSmallCounts) {
  std::vector<double> values = {-250, -3.5, 0, 0, 1, 7, 1e6};
  QuantileSketch sketch;
  for (double v : values) sketch.Add(v);
  for (double q : {0.0, 0.1, 0.3, 0.5, 0.6, 0.8, 1.0}) {
    double exact = ExactQuantile(values, q);
    EXPECT_LE(std::fabs(sketch.Quantile(q) - exact), QuantileSketch::kRelativeError * std::fabs(exact)) << q;
  }
  QuantileSketch single;
  single.Add(0.123);
  EXPECT_NEAR(single.Quantile(0.5), 0.123, 0.00123);
  EXPECT_TRUE(std::isnan(QuantileSketch().Quantile(0.5)));
}

// Each value alone lands in a bucket whose representative is within the relative error, across
// the whole range of magnitudes: inside the tabulated bucket bounds, at their edges and past
// them (where the logarithm decides).
TEST(TraceQLMetricsSketch, EveryMagnitudeLandsInItsBucket) {
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> exponent(-8.99, 300);  // below 1e-9 counts as zero
  std::vector<double> values = {1e-9, 1.0000001e-9, 1, 1.0199, 1.02, 0.5, 2, 1e13, 3e13, 1e300, 5e-9};
  for (int i = 0; i < 200000; ++i) values.push_back(std::pow(10.0, exponent(random)));
  for (double v : values) {
    for (double signed_value : {v, -v}) {
      QuantileSketch single;
      single.Add(signed_value);
      ASSERT_LE(std::fabs(single.Quantile(0.5) - signed_value), QuantileSketch::kRelativeError * v) << signed_value;
    }
  }
}

TEST(TraceQLMetricsSketch, MergeEqualsOneSketchOverAllValues) {
  QuantileSketch a, b, all;
  for (int i = 1; i <= 1000; ++i) {
    double v = i * 0.37;
    (i % 3 == 0 ? a : b).Add(v);
    all.Add(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.Quantile(q), all.Quantile(q));
}

// ---- histogram buckets ----------------------------------------------------------------------

TEST(TraceQLMetricsHistogram, PowerOfTwoBucketsLikeTempo) {
  using metrics_internal::HistogramBucketOf;
  EXPECT_FALSE(HistogramBucketOf(Value::Int(1)).has_value());
  EXPECT_FALSE(HistogramBucketOf(Value::Int(-5)).has_value());
  EXPECT_EQ(HistogramBucketOf(Value::Int(2)), 2.0);
  EXPECT_EQ(HistogramBucketOf(Value::Int(3)), 4.0);
  EXPECT_EQ(HistogramBucketOf(Value::Int(1024)), 1024.0);
  EXPECT_EQ(HistogramBucketOf(Value::Int(1025)), 2048.0);
  // 100 ms = 1e8 ns -> 2^27 ns, labelled in seconds.
  EXPECT_EQ(HistogramBucketOf(Value::Duration(100'000'000)), 134217728 / 1e9);
  EXPECT_EQ(HistogramBucketOf(Value::Duration(1 << 20)), (1 << 20) / 1e9);
  EXPECT_FALSE(HistogramBucketOf(Value::Duration(1)).has_value());
  EXPECT_FALSE(HistogramBucketOf(Value::Float(12.5)).has_value());
  EXPECT_FALSE(HistogramBucketOf(Value::String("x")).has_value());
}

// ---- second stages --------------------------------------------------------------------------

DenseSeries Dense(const std::string& name, std::vector<double> values) {
  DenseSeries series;
  series.labels.push_back(metrics_internal::StringLabel("name", name));
  series.values = std::move(values);
  return series;
}

MetricsSecondStage TopK(int64_t k, bool largest = true) {
  MetricsSecondStage stage;
  stage.kind = largest ? MetricsSecondStage::Kind::kTopK : MetricsSecondStage::Kind::kBottomK;
  stage.limit = k;
  return stage;
}

bool SameValues(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) ? !std::isnan(got[i]) : got[i] != want[i]) return false;
  }
  return true;
}

TEST(TraceQLMetricsSecondStage, TopKChoosesPerBucket) {
  std::vector<DenseSeries> series = {Dense("a", {5, 1, kNaN}), Dense("b", {3, 4, 2}), Dense("c", {1, 9, 1})};
  metrics_internal::ApplySecondStage(TopK(2), series);
  EXPECT_TRUE(SameValues(series[0].values, {5, kNaN, kNaN}));
  EXPECT_TRUE(SameValues(series[1].values, {3, 4, 2}));
  EXPECT_TRUE(SameValues(series[2].values, {kNaN, 9, 1}));
}

TEST(TraceQLMetricsSecondStage, BottomKAndTiesGoToTheFirstSeries) {
  std::vector<DenseSeries> series = {Dense("a", {2, 7}), Dense("b", {2, 1}), Dense("c", {1, 7})};
  metrics_internal::ApplySecondStage(TopK(1, /*largest=*/false), series);
  EXPECT_TRUE(SameValues(series[0].values, {kNaN, kNaN}));
  EXPECT_TRUE(SameValues(series[1].values, {kNaN, 1}));
  EXPECT_TRUE(SameValues(series[2].values, {1, kNaN}));

  std::vector<DenseSeries> tied = {Dense("a", {4}), Dense("b", {4})};
  metrics_internal::ApplySecondStage(TopK(1), tied);
  EXPECT_TRUE(SameValues(tied[0].values, {4}));
  EXPECT_TRUE(SameValues(tied[1].values, {kNaN}));
}

TEST(TraceQLMetricsSecondStage, NoMoreSeriesThanKIsUnchanged) {
  std::vector<DenseSeries> series = {Dense("a", {1, 2}), Dense("b", {3, kNaN})};
  metrics_internal::ApplySecondStage(TopK(2), series);
  EXPECT_TRUE(SameValues(series[0].values, {1, 2}));
  EXPECT_TRUE(SameValues(series[1].values, {3, kNaN}));
}

TEST(TraceQLMetricsSecondStage, ComparisonFilterDropsFailingSamples) {
  MetricsSecondStage filter;
  filter.kind = MetricsSecondStage::Kind::kFilter;
  filter.op = Operator::kGreater;
  filter.threshold = Value::Int(10);
  std::vector<DenseSeries> series = {Dense("a", {5, 11, kNaN, 10})};
  metrics_internal::ApplySecondStage(filter, series);
  EXPECT_TRUE(SameValues(series[0].values, {kNaN, 11, kNaN, kNaN}));

  // A duration threshold compares in seconds.
  filter.op = Operator::kLessEqual;
  filter.threshold = Value::Duration(250'000'000);
  std::vector<DenseSeries> durations = {Dense("a", {0.1, 0.25, 0.3})};
  metrics_internal::ApplySecondStage(filter, durations);
  EXPECT_TRUE(SameValues(durations[0].values, {0.1, 0.25, kNaN}));
}

TEST(TraceQLMetricsOutput, DropsEmptySeriesKeepsExemplarsWithSamplesAndSorts) {
  TimeGrid grid = MakeGrid(1200 * kSecond, 1320 * kSecond, 60 * kSecond);
  std::vector<DenseSeries> series = {Dense("z", {1, kNaN, 2}), Dense("empty", {kNaN, kNaN, kNaN}),
                                     Dense("a", {kNaN, 0, kNaN})};
  metrics_internal::PendingExemplar kept, dropped;
  kept.bucket = 2;
  kept.exemplar.timestamp_ms = 1'300'000;
  dropped.bucket = 1;
  series[0].exemplars = {dropped, kept};
  std::vector<MetricsSeries> out = metrics_internal::ToOutput(std::move(series), grid);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].labels[0].value.string_value, "a");
  ASSERT_EQ(out[0].samples.size(), 1u);
  EXPECT_EQ(out[0].samples[0].timestamp_ms, 1'260'000);
  EXPECT_EQ(out[0].samples[0].value, 0);
  EXPECT_EQ(out[1].labels[0].value.string_value, "z");
  ASSERT_EQ(out[1].samples.size(), 2u);
  EXPECT_EQ(out[1].samples[1].timestamp_ms, 1'320'000);
  ASSERT_EQ(out[1].exemplars.size(), 1u);
  EXPECT_EQ(out[1].exemplars[0].timestamp_ms, 1'300'000);
}

}  // namespace
}  // namespace tracery::traceql
