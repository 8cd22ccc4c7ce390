// Second stages (topk, bottomk, comparison filters) and the final series shape.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "traceql/metrics_internal.h"

namespace tracery::traceql::metrics_internal {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool Passes(double value, Operator op, double threshold) {
  switch (op) {
    case Operator::kEqual: return value == threshold;
    case Operator::kNotEqual: return value != threshold;
    case Operator::kLess: return value < threshold;
    case Operator::kLessEqual: return value <= threshold;
    case Operator::kGreater: return value > threshold;
    case Operator::kGreaterEqual: return value >= threshold;
    default: return true;
  }
}

void ApplyFilter(const MetricsSecondStage& stage, std::vector<DenseSeries>& series) {
  // Durations compare in seconds, the unit series values carry.
  std::optional<double> threshold = NumericValueOf(stage.threshold);
  if (!threshold) return;
  for (auto& s : series) {
    for (double& value : s.values) {
      if (!std::isnan(value) && !Passes(value, stage.op, *threshold)) value = kNaN;
    }
  }
}

// Like PromQL and Tempo, topk/bottomk choose per bucket: a series keeps the buckets in which
// it ranks among the k largest (smallest) values and loses the others. With no more than k
// series there is nothing to choose.
void ApplyTopK(const MetricsSecondStage& stage, std::vector<DenseSeries>& series) {
  if (stage.limit <= 0 || series.size() <= static_cast<size_t>(stage.limit)) return;
  const size_t k = static_cast<size_t>(stage.limit);
  const bool largest = stage.kind == MetricsSecondStage::Kind::kTopK;
  size_t buckets = 0;
  for (const auto& s : series) buckets = std::max(buckets, s.values.size());

  std::vector<std::vector<double>> kept(series.size(), std::vector<double>(buckets, kNaN));
  std::vector<size_t> candidates;
  for (size_t b = 0; b < buckets; ++b) {
    candidates.clear();
    for (size_t i = 0; i < series.size(); ++i) {
      if (b < series[i].values.size() && !std::isnan(series[i].values[b])) candidates.push_back(i);
    }
    auto better = [&](size_t x, size_t y) {
      double vx = series[x].values[b], vy = series[y].values[b];
      if (vx != vy) return largest ? vx > vy : vx < vy;
      return x < y;  // ties to the series that sorts first
    };
    size_t n = std::min(k, candidates.size());
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n),
                      candidates.end(), better);
    for (size_t j = 0; j < n; ++j) kept[candidates[j]][b] = series[candidates[j]].values[b];
  }
  for (size_t i = 0; i < series.size(); ++i) {
    kept[i].resize(series[i].values.size());
    series[i].values = std::move(kept[i]);
  }
}

}  // namespace

void ApplySecondStage(const MetricsSecondStage& stage, std::vector<DenseSeries>& series) {
  switch (stage.kind) {
    case MetricsSecondStage::Kind::kTopK:
    case MetricsSecondStage::Kind::kBottomK:
      ApplyTopK(stage, series);
      break;
    case MetricsSecondStage::Kind::kFilter:
      ApplyFilter(stage, series);
      break;
  }
}

std::vector<MetricsSeries> ToOutput(std::vector<DenseSeries> series, const TimeGrid& grid) {
  std::vector<MetricsSeries> out;
  out.reserve(series.size());
  for (auto& s : series) {
    MetricsSeries result;
    for (uint32_t b = 0; b < s.values.size(); ++b) {
      if (!std::isnan(s.values[b])) result.samples.push_back({grid.TimestampMs(b), s.values[b]});
    }
    if (result.samples.empty() && !s.keep_without_samples) continue;
    for (auto& pending : s.exemplars) {
      // Like Tempo, an exemplar only accompanies a bucket that has a value.
      if (pending.bucket < s.values.size() && !std::isnan(s.values[pending.bucket])) {
        result.exemplars.push_back(std::move(pending.exemplar));
      }
    }
    std::stable_sort(result.exemplars.begin(), result.exemplars.end(),
                     [](const MetricsExemplar& a, const MetricsExemplar& b) {
                       if (a.timestamp_ms != b.timestamp_ms) return a.timestamp_ms < b.timestamp_ms;
                       return LabelsLess(a.labels, b.labels);
                     });
    result.labels = std::move(s.labels);
    out.push_back(std::move(result));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const MetricsSeries& a, const MetricsSeries& b) { return LabelsLess(a.labels, b.labels); });
  return out;
}

}  // namespace tracery::traceql::metrics_internal
