// TraceQL metrics: turns the spans a metrics query selects into time series, as Tempo's
// /api/metrics/query_range and /api/metrics/query answer them.
//
//   auto evaluator = traceql::MetricsEvaluator::Create(query, range);   // per worker thread
//   for each trace: evaluator->Observe(view);
//   first->Merge(*other);                                              // combine workers
//   std::vector<MetricsSeries> series = first->Finish();
//   if (first->SeriesLimitReached()) -> status PARTIAL, message first->PartialMessage()
//
// Time buckets follow Tempo (v2.9+, "calculate metrics based on data in the past"): a range
// request is aligned to the step (start rounded down, end rounded up) and gets one extra
// bucket before the start; each bucket is the interval (T - step, T] and its sample carries
// the timestamp T, the bucket's right edge. A span belongs to the bucket of its start time.
// An instant request is one bucket (start, end] stamped `end`. Callers pass the request as
// the user gave it; the evaluator aligns it (window() tells which span start times count).
//
// Where this differs from Tempo on purpose: quantile_over_time uses a sketch with <= 1 %
// relative error (Tempo interpolates in power-of-two buckets, so its values can be off by tens
// of percent) and accepts float attributes; sampling hints (sample, span_sample,
// trace_sample) are ignored and every span is counted; compare() carries no exemplars.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "otlp/model.h"
#include "traceql/trace_view.h"

namespace tracery::traceql {

class Query;

inline constexpr uint32_t kDefaultMaxMetricsSeries = 10000;
// The most buckets one request may have; past it the step is too small for the range.
inline constexpr uint32_t kDefaultMaxMetricsIntervals = 100000;

struct MetricsRange {
  uint64_t start_unix_nano = 0, end_unix_nano = 0;
  uint64_t step_nanos = 0;  // ignored when instant
  // Upper bound on exemplars over the whole answer; with(exemplars=N) in the query replaces
  // it (N at most 1000; with(exemplars=false) turns them off). Exemplars are spread over the
  // range and chosen by smallest (trace ID, span ID), so the same data gives the same ones.
  uint32_t max_exemplars = 0;
  bool instant = false;
  // Series past this many are not created and SeriesLimitReached() turns true.
  uint32_t max_series = kDefaultMaxMetricsSeries;
  uint32_t max_intervals = kDefaultMaxMetricsIntervals;
};

// Tempo's default step when the request has none: about 240 points, rounded down to a
// multiple of 5 s (or of 1 s below 5 s), at least 1 s.
uint64_t DefaultMetricsStepNanos(uint64_t start_unix_nano, uint64_t end_unix_nano);

struct MetricsSample {
  int64_t timestamp_ms = 0;
  double value = 0;
};

// Labels `trace:id` (32 lower-case hex digits) and `span:id` (16). The value is the span's
// measured value (seconds for durations) for min/max/sum/avg/quantile_over_time and NaN for
// the counting functions (rate, count_over_time, histogram_over_time), as Tempo reports
// them: the JSON writer must encode NaN the way Go's jsonpb does, as the string "NaN".
struct MetricsExemplar {
  std::vector<otlp::KeyValue> labels;
  double value = 0;
  int64_t timestamp_ms = 0;  // the span's start
};

struct MetricsSeries {
  std::vector<otlp::KeyValue> labels;
  std::vector<MetricsSample> samples;  // ascending timestamps; instant: exactly one
  std::vector<MetricsExemplar> exemplars;
};

// The span start times a request covers after alignment: (start, end]. A scan must read every
// trace overlapping it; it reaches up to two steps before the requested start.
struct MetricsWindow {
  uint64_t start_unix_nano = 0;  // exclusive
  uint64_t end_unix_nano = 0;    // inclusive
};

struct MetricsStats {
  uint64_t traces_observed = 0;
  uint64_t spans_observed = 0;  // spans in range that reached the metrics function
};

// Accumulates one query over many traces. Not thread-safe: one evaluator per thread, then
// Merge them into one and call Finish on it once.
class MetricsEvaluator {
 public:
  // InvalidArgument when the query is not a metrics query or the range is unusable (end not
  // after start, zero step for a range request, more than max_intervals buckets).
  static Result<std::unique_ptr<MetricsEvaluator>> Create(std::shared_ptr<const Query> query,
                                                          const MetricsRange& range);
  ~MetricsEvaluator();
  MetricsEvaluator(const MetricsEvaluator&) = delete;
  MetricsEvaluator& operator=(const MetricsEvaluator&) = delete;

  // One whole trace: every span the query's pipeline selects (once, even when in several
  // spansets) whose start time falls in the range feeds the series.
  void Observe(const TraceView& trace);
  // Folds `other` (same query and range) into this one; `other` is left empty. The result is
  // the same as one evaluator having observed both inputs.
  void Merge(MetricsEvaluator& other);
  // The answer: second stages (topk, bottomk, comparison filters) applied, series sorted by
  // labels, series without samples dropped. Call once.
  std::vector<MetricsSeries> Finish();

  MetricsWindow window() const;
  bool SeriesLimitReached() const;
  std::string PartialMessage() const;  // empty unless SeriesLimitReached()
  MetricsStats stats() const;

  class State;  // private to metrics*.cpp

 private:
  explicit MetricsEvaluator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tracery::traceql
