// Pieces of the metrics engine shared by metrics*.cpp and their test; private to traceql/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "otlp/model.h"
#include "traceql/ast.h"
#include "traceql/metrics.h"

namespace tracery::traceql::metrics_internal {

// The buckets of one request (see metrics.h): bucket i is (left + i*step, left + (i+1)*step].
struct TimeGrid {
  uint64_t left = 0;  // exclusive left edge of bucket 0
  uint64_t step = 0;  // bucket width; for an instant request end - start
  uint32_t count = 0;

  static Result<TimeGrid> Make(const MetricsRange& range);
  // The bucket holding a span that starts at `unix_nano`, or -1 outside the grid.
  int64_t BucketOf(uint64_t unix_nano) const;
  // Unix milliseconds of the bucket's right edge, the sample's timestamp.
  int64_t TimestampMs(uint32_t bucket) const;
  double StepSeconds() const { return static_cast<double>(step) / 1e9; }
  uint64_t right() const { return left + static_cast<uint64_t>(count) * step; }
};

// A mergeable quantile sketch with relative error at most kRelativeError: values are counted
// in logarithmic buckets (gamma^(i-1), gamma^i] with gamma = (1+a)/(1-a), and a quantile is
// answered with its bucket's midpoint 2*gamma^i/(gamma+1), which is within a relative `a` of
// every value in the bucket. The quantile of rank max(1, ceil(q*n)) (nearest rank, as Tempo
// ranks) is therefore within 1 % of the exact one. Magnitudes below kMinMagnitude count as 0.
// Memory: one counter per occupied bucket; 1e-9..1e18 spans about 3100 buckets at most.
// Counts by bucket index in one dense array (the indexes a sketch meets span a few thousand
// at most): adding is an array increment, not a tree insertion.
class BucketCounts {
 public:
  void Add(int32_t index, uint64_t n) {
    if (counts_.empty()) {
      base_ = index;
      counts_.assign(1, 0);
    } else if (index < base_) {
      counts_.insert(counts_.begin(), size_t(base_ - index), 0);
      base_ = index;
    } else if (size_t(index - base_) >= counts_.size()) {
      counts_.resize(size_t(index - base_) + 1, 0);
    }
    counts_[size_t(index - base_)] += n;
  }
  bool empty() const { return counts_.empty(); }
  int32_t base() const { return base_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // counts()[i] is index base() + i

 private:
  int32_t base_ = 0;
  std::vector<uint64_t> counts_;
};

class QuantileSketch {
 public:
  static constexpr double kRelativeError = 0.01;
  static constexpr double kMinMagnitude = 1e-9;

  void Add(double value);
  void Merge(const QuantileSketch& other);
  uint64_t count() const { return count_; }
  // NaN when empty; q is clamped to [0, 1].
  double Quantile(double q) const;

 private:
  static int32_t IndexOf(double magnitude);
  static double ValueOf(int32_t index);

  BucketCounts positive_, negative_;
  uint64_t zero_ = 0;
  uint64_t count_ = 0;
};

// histogram_over_time's bucket for a value, as Tempo buckets: the next power of two at or
// above it; durations bucketed in nanoseconds and labelled in seconds. Ints and durations
// below 2, and every other type, are not bucketed (the span is left out).
std::optional<double> HistogramBucketOf(const Value& value);

// The number a span contributes to min/max/sum/avg/quantile_over_time: ints and floats as
// they are, durations in seconds; nullopt for anything else.
std::optional<double> NumericValueOf(const Value& value);

// A byte string identifying a value by type and content, for keying series.
void AppendValueKey(const Value& value, std::string& key);

// Total order on label sets: by key, then by value (type, then content).
int CompareAnyValue(const otlp::AnyValue& a, const otlp::AnyValue& b);
bool LabelsLess(const std::vector<otlp::KeyValue>& a, const std::vector<otlp::KeyValue>& b);

otlp::KeyValue StringLabel(std::string key, std::string value);
otlp::KeyValue DoubleLabel(std::string key, double value);
otlp::KeyValue NilLabel(std::string key);

// A series before output: one value per bucket, NaN where it has no sample.
struct PendingExemplar {
  uint32_t bucket = 0;
  MetricsExemplar exemplar;
};
struct DenseSeries {
  std::vector<otlp::KeyValue> labels;
  std::vector<double> values;
  std::vector<PendingExemplar> exemplars;
  bool keep_without_samples = false;  // compare()'s __too_many_values__ marker
};

// topk/bottomk per bucket and comparison filters, in place. `series` must be sorted by labels
// (ties in topk/bottomk go to the earlier series, so the answer is deterministic).
void ApplySecondStage(const MetricsSecondStage& stage, std::vector<DenseSeries>& series);

// Samples for the non-NaN values, exemplars whose bucket kept a sample, series without
// samples dropped; sorted by labels.
std::vector<MetricsSeries> ToOutput(std::vector<DenseSeries> series, const TimeGrid& grid);

// compare({filter}, topN, start, end): for every attribute of every span, counts per bucket
// and per value, apart for spans the filter selects and for the rest (the baseline).
class CompareAccumulator {
 public:
  CompareAccumulator(const MetricsStage& stage, const TimeGrid& grid, uint32_t max_values);

  void Observe(const TraceView& trace, uint32_t span_index, uint32_t bucket);
  void Merge(CompareAccumulator& other);
  std::vector<DenseSeries> Finish() const;
  bool limit_reached() const { return limit_reached_; }

 private:
  struct ValueCounts {
    otlp::AnyValue value;
    std::vector<double> counts;
  };
  struct AttributeCounts {
    std::unordered_map<std::string, ValueCounts> values;  // by AppendValueKey
    std::vector<double> totals;
  };
  using Side = std::unordered_map<std::string, AttributeCounts>;  // by attribute text

  bool IsSelection(const TraceView& trace, uint32_t span_index) const;
  void Count(Side& side, const std::string& attribute, const Value& value, uint32_t bucket);
  void AddSeries(const Side& side, const char* meta_type, const char* total_type,
                 std::map<std::string, bool>& too_many, std::vector<DenseSeries>& out) const;

  const MetricsStage& stage_;
  TimeGrid grid_;
  uint32_t max_values_;
  uint32_t value_count_ = 0;
  bool limit_reached_ = false;
  Side baseline_, selection_;
  std::string key_buffer_, name_buffer_;
};

}  // namespace tracery::traceql::metrics_internal
