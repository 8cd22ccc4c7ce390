// compare(): selection against baseline, per attribute value, as Tempo's Traces Drilldown
// comparison reads it. Output series (all counts per bucket):
//   {__meta_type="selection"|"baseline", <attribute>=<value>}  the top N values by total count
//   {__meta_type="selection_total"|"baseline_total", <attribute>=nil}  spans having the attribute
//   {__meta_error="__too_many_values__", <attribute>=nil}  the attribute had more than N values
//                                                         on either side (no samples)
// The attributes are every span and resource attribute (duration-typed and array values left
// out, as Tempo leaves durations out) plus the intrinsics name, status and kind.
#include <algorithm>

#include "traceql/metrics_internal.h"

namespace tracery::traceql::metrics_internal {

CompareAccumulator::CompareAccumulator(const MetricsStage& stage, const TimeGrid& grid, uint32_t max_values)
    : stage_(stage), grid_(grid), max_values_(max_values) {}

bool CompareAccumulator::IsSelection(const TraceView& trace, uint32_t span_index) const {
  if (stage_.compare_start_nanos > 0 && stage_.compare_end_nanos > 0) {
    // The optional window narrows the selection to spans starting in [start, end).
    uint64_t start = trace.spans[span_index].span->start_time_unix_nano;
    if (start < static_cast<uint64_t>(stage_.compare_start_nanos) ||
        start >= static_cast<uint64_t>(stage_.compare_end_nanos)) {
      return false;
    }
  }
  const SpansetExpr* filter = stage_.compare_filter.get();
  if (filter == nullptr || filter->kind != SpansetExpr::Kind::kFilter) return false;
  if (filter->filter == nullptr) return true;  // compare({ })
  Value matched = EvaluateField(*filter->filter, trace, span_index);
  return matched.type == ValueType::kBool && matched.bool_value;
}

void CompareAccumulator::Count(Side& side, const std::string& attribute, const Value& value, uint32_t bucket) {
  if (value.IsNil() || value.type == ValueType::kDuration || value.type == ValueType::kArray) return;
  AttributeCounts& counts = side[attribute];
  if (counts.totals.empty()) counts.totals.assign(grid_.count, 0);
  counts.totals[bucket] += 1;

  key_buffer_.clear();
  AppendValueKey(value, key_buffer_);
  auto it = counts.values.find(key_buffer_);
  if (it == counts.values.end()) {
    if (value_count_ >= max_values_) {
      limit_reached_ = true;
      return;
    }
    ++value_count_;
    it = counts.values.emplace(key_buffer_, ValueCounts{ValueToAnyValue(value), std::vector<double>(grid_.count, 0)})
             .first;
  }
  it->second.counts[bucket] += 1;
}

void CompareAccumulator::Observe(const TraceView& trace, uint32_t span_index, uint32_t bucket) {
  const SpanRef& ref = trace.spans[span_index];
  Side& side = IsSelection(trace, span_index) ? selection_ : baseline_;
  for (const auto& attribute : ref.span->attributes) {
    name_buffer_.assign("span.").append(attribute.key);
    Count(side, name_buffer_, ValueFromAnyValue(attribute.value), bucket);
  }
  if (ref.resource != nullptr) {
    for (const auto& attribute : ref.resource->attributes) {
      name_buffer_.assign("resource.").append(attribute.key);
      Count(side, name_buffer_, ValueFromAnyValue(attribute.value), bucket);
    }
  }
  static const std::string kName = "name", kStatus = "status", kKind = "kind";
  Count(side, kName, Value::String(ref.span->name), bucket);
  Count(side, kStatus, Value::Status(ref.span->status_code), bucket);
  Count(side, kKind, Value::Kind(ref.span->kind), bucket);
}

void CompareAccumulator::Merge(CompareAccumulator& other) {
  auto merge_side = [&](Side& into, Side& from) {
    for (auto& [attribute, from_counts] : from) {
      AttributeCounts& counts = into[attribute];
      if (counts.totals.empty()) counts.totals.assign(grid_.count, 0);
      for (uint32_t b = 0; b < grid_.count; ++b) counts.totals[b] += from_counts.totals[b];
      for (auto& [key, value_counts] : from_counts.values) {
        auto it = counts.values.find(key);
        if (it == counts.values.end()) {
          if (value_count_ >= max_values_) {
            limit_reached_ = true;
            continue;
          }
          ++value_count_;
          counts.values.emplace(key, std::move(value_counts));
          continue;
        }
        for (uint32_t b = 0; b < grid_.count; ++b) it->second.counts[b] += value_counts.counts[b];
      }
    }
    from.clear();
  };
  merge_side(baseline_, other.baseline_);
  merge_side(selection_, other.selection_);
  limit_reached_ = limit_reached_ || other.limit_reached_;
  other.value_count_ = 0;
}

void CompareAccumulator::AddSeries(const Side& side, const char* meta_type, const char* total_type,
                                   std::map<std::string, bool>& too_many, std::vector<DenseSeries>& out) const {
  for (const auto& [attribute, counts] : side) {
    std::vector<std::pair<double, const ValueCounts*>> ranked;
    ranked.reserve(counts.values.size());
    for (const auto& [key, value_counts] : counts.values) {
      double total = 0;
      for (double c : value_counts.counts) total += c;
      ranked.emplace_back(total, &value_counts);
    }
    // Most frequent first; equal totals in value order so the cut is deterministic.
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first > b.first;
      return CompareAnyValue(a.second->value, b.second->value) < 0;
    });
    const size_t top_n = static_cast<size_t>(std::max<int64_t>(stage_.compare_top_n, 1));
    if (ranked.size() > top_n) {
      too_many[attribute] = true;
      ranked.resize(top_n);
    }
    for (const auto& [total, value_counts] : ranked) {
      DenseSeries series;
      series.labels.push_back(StringLabel("__meta_type", meta_type));
      series.labels.push_back(otlp::KeyValue{attribute, value_counts->value});
      series.values = value_counts->counts;
      out.push_back(std::move(series));
    }
    DenseSeries total;
    total.labels.push_back(StringLabel("__meta_type", total_type));
    total.labels.push_back(NilLabel(attribute));
    total.values = counts.totals;
    out.push_back(std::move(total));
  }
}

std::vector<DenseSeries> CompareAccumulator::Finish() const {
  std::vector<DenseSeries> out;
  std::map<std::string, bool> too_many;
  AddSeries(baseline_, "baseline", "baseline_total", too_many, out);
  AddSeries(selection_, "selection", "selection_total", too_many, out);
  for (const auto& [attribute, flagged] : too_many) {
    DenseSeries marker;
    marker.labels.push_back(StringLabel("__meta_error", "__too_many_values__"));
    marker.labels.push_back(NilLabel(attribute));
    marker.keep_without_samples = true;
    out.push_back(std::move(marker));
  }
  return out;
}

}  // namespace tracery::traceql::metrics_internal
