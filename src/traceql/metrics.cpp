// MetricsEvaluator: groups the selected spans into series and buckets, keeps per-bucket
// accumulators, and shapes the answer. Accumulators per function:
//   rate, count_over_time, histogram_over_time  span count (0 in an empty bucket, as Tempo)
//   min/max/sum_over_time                         NaN until a value arrives (no sample)
//   avg_over_time                                 sum and count; NaN without values
//   quantile_over_time                            a QuantileSketch per bucket; Tempo answers
//                                                 0 for the empty buckets of a series
//   compare                                       CompareAccumulator (metrics_compare.cpp)
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <string>
#include <unordered_map>

#include "traceql/engine.h"
#include "traceql/metrics_internal.h"

namespace tracery::traceql {

using metrics_internal::CompareAccumulator;
using metrics_internal::DenseSeries;
using metrics_internal::QuantileSketch;
using metrics_internal::TimeGrid;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool NeedsAttribute(MetricsFunction function) {
  return function != MetricsFunction::kRate && function != MetricsFunction::kCountOverTime &&
         function != MetricsFunction::kCompare;
}

bool CountsSpans(MetricsFunction function) {
  return function == MetricsFunction::kRate || function == MetricsFunction::kCountOverTime ||
         function == MetricsFunction::kHistogramOverTime;
}

// The exemplar cap: with(exemplars=N) replaces the request's (up to kMaxExemplarsFromHint,
// since the query text is the user's), with(exemplars=false) turns exemplars off.
constexpr int64_t kMaxExemplarsFromHint = 1000;

uint32_t ExemplarLimit(const Query& query, uint32_t requested) {
  const otlp::AnyValue* hint = FindHint(query, "exemplars");
  if (hint == nullptr) return requested;
  if (hint->type == otlp::AnyValue::Type::kInt) {
    return static_cast<uint32_t>(std::clamp<int64_t>(hint->int_value, 0, kMaxExemplarsFromHint));
  }
  if (hint->type == otlp::AnyValue::Type::kBool && !hint->bool_value) return 0;
  return requested;
}

}  // namespace

class MetricsEvaluator::State {
 public:
  struct Series {
    std::vector<otlp::KeyValue> labels;  // without quantile_over_time's `p`
    std::vector<double> values;          // count, min, max, sum; avg: sum
    std::vector<double> counts;          // avg only
    std::vector<QuantileSketch> sketches;  // quantile only
  };

  // Exemplars are spread over time: the grid is cut into max_exemplars equal slots and each
  // slot keeps the candidate span with the smallest (trace ID, span ID). That choice does not
  // depend on the order spans arrive in, so merged evaluators answer like a single one.
  struct ExemplarSlot {
    bool used = false;
    TraceId trace_id;
    std::string span_id;
    uint64_t start_unix_nano = 0;
    double value = 0;
    uint32_t bucket = 0;
    std::string series_key;
  };

  State(std::shared_ptr<const Query> query, const MetricsRange& range, const TimeGrid& grid)
      : query_(std::move(query)), stage_(*query_->metrics()), range_(range), grid_(grid) {
    slots_.resize(ExemplarLimit(*query_, range.max_exemplars));
    if (stage_.function == MetricsFunction::kCompare) compare_.emplace(stage_, grid_, range.max_series);
    by_values_.resize(stage_.by.size());
    const auto& stages = query_->pipeline().stages;
    every_span_ = stages.size() == 1 && stages[0].kind == Stage::Kind::kSpanset &&
                  stages[0].spanset->kind == SpansetExpr::Kind::kFilter && !stages[0].spanset->filter;
    by_resource_only_ = !stage_.by.empty();
    for (const FieldExpr& by : stage_.by)
      by_resource_only_ = by_resource_only_ && by.attribute.scope == AttributeScope::kResource && !by.attribute.IsIntrinsic();
    measures_duration_ = stage_.attribute && stage_.attribute->kind == FieldExpr::Kind::kAttribute &&
                         stage_.attribute->attribute.intrinsic == Intrinsic::kDuration;
  }

  void Observe(const TraceView& trace);
  void Merge(State& other);
  std::vector<MetricsSeries> Finish();

  bool limit_reached() const { return limit_reached_ || (compare_ && compare_->limit_reached()); }
  const MetricsRange& range() const { return range_; }
  const TimeGrid& grid() const { return grid_; }
  const MetricsStats& stats() const { return stats_; }

 private:
  void ObserveSpan(const TraceView& trace, uint32_t span_index, uint32_t bucket);
  static constexpr uint32_t kNoSeries = UINT32_MAX;  // past the series limit
  uint32_t SeriesOf(const TraceView& trace, uint32_t span_index, std::optional<double> histogram_bucket);
  uint32_t FindOrCreateSeries(std::optional<double> histogram_bucket);
  void OfferExemplar(const TraceView& trace, uint32_t span_index, uint32_t bucket, double value, uint32_t series);
  void MergeSeries(Series& into, const Series& from) const;
  std::vector<DenseSeries> DenseFromSeries();
  void AttachExemplars(std::vector<DenseSeries>& dense, const std::vector<size_t>& first_dense_of_series);

  std::shared_ptr<const Query> query_;
  const MetricsStage& stage_;
  MetricsRange range_;
  TimeGrid grid_;
  bool limit_reached_ = false;
  MetricsStats stats_;

  std::unordered_map<std::string, uint32_t> index_;  // series key -> series_
  std::vector<std::string> keys_;                    // parallel to series_
  std::vector<Series> series_;
  std::vector<ExemplarSlot> slots_;
  std::optional<CompareAccumulator> compare_;

  // Reused per span to keep allocation off the hot path.
  std::vector<uint8_t> seen_;
  std::string key_;
  std::vector<Value> by_values_;
  // by() of resource attributes only: a span's series follows from its resource, so it is
  // looked up once per resource of the trace being observed.
  bool by_resource_only_ = false;
  // The pipeline is `{ }`: every span is selected, without evaluating it.
  bool every_span_ = false;
  // The function reads the span's duration (in seconds, as Tempo): taken from the span itself.
  bool measures_duration_ = false;
  // Series per resource, for the trace being observed or, while views name the same resource
  // table, for every trace of that table.
  std::unordered_map<const otlp::Resource*, uint32_t> resource_series_;
  const otlp::Resource* last_resource_ = nullptr;  // and its series: neighbouring spans share one
  uint32_t last_resource_series_ = 0;
  uint64_t resource_table_ = 0;
  void ForgetResourcesUnlessShared(const TraceView& trace) {
    if (trace.resource_table != 0 && trace.resource_table == resource_table_) return;
    resource_series_.clear();
    last_resource_ = nullptr;
    resource_table_ = trace.resource_table;
  }
};

void MetricsEvaluator::State::Observe(const TraceView& trace) {
  ++stats_.traces_observed;
  ForgetResourcesUnlessShared(trace);
  if (every_span_) {
    for (uint32_t span_index = 0; span_index < trace.spans.size(); ++span_index) {
      int64_t bucket = grid_.BucketOf(trace.spans[span_index].span->start_time_unix_nano);
      if (bucket < 0) continue;
      ++stats_.spans_observed;
      ObserveSpan(trace, span_index, static_cast<uint32_t>(bucket));
    }
    return;
  }
  std::vector<MatchedSpanset> spansets = EvaluatePipeline(*query_, trace);
  if (spansets.empty()) return;
  seen_.assign(trace.spans.size(), 0);
  for (const auto& spanset : spansets) {
    for (uint32_t span_index : spanset.spans) {
      if (span_index >= trace.spans.size() || seen_[span_index]) continue;
      seen_[span_index] = 1;
      int64_t bucket = grid_.BucketOf(trace.spans[span_index].span->start_time_unix_nano);
      if (bucket < 0) continue;
      ++stats_.spans_observed;
      ObserveSpan(trace, span_index, static_cast<uint32_t>(bucket));
    }
  }
}

void MetricsEvaluator::State::ObserveSpan(const TraceView& trace, uint32_t span_index, uint32_t bucket) {
  if (compare_) {
    compare_->Observe(trace, span_index, bucket);
    return;
  }
  std::optional<double> measured, histogram_bucket;
  if (stage_.function == MetricsFunction::kHistogramOverTime) {
    histogram_bucket = metrics_internal::HistogramBucketOf(EvaluateField(*stage_.attribute, trace, span_index));
    if (!histogram_bucket) return;  // Tempo leaves such spans out
  } else if (measures_duration_) {
    measured = static_cast<double>(trace.spans[span_index].DurationNanos()) / 1e9;
  } else if (NeedsAttribute(stage_.function)) {
    // A span without a numeric value has nothing to add; its series would have no samples.
    measured = metrics_internal::NumericValueOf(EvaluateField(*stage_.attribute, trace, span_index));
    if (!measured) return;
  }

  const uint32_t series_index = SeriesOf(trace, span_index, histogram_bucket);
  if (series_index == kNoSeries) return;
  Series* series = &series_[series_index];
  double& slot = series->values[bucket];
  switch (stage_.function) {
    case MetricsFunction::kRate:
    case MetricsFunction::kCountOverTime:
    case MetricsFunction::kHistogramOverTime:
      slot += 1;
      break;
    case MetricsFunction::kMinOverTime:
      if (std::isnan(slot) || *measured < slot) slot = *measured;
      break;
    case MetricsFunction::kMaxOverTime:
      if (std::isnan(slot) || *measured > slot) slot = *measured;
      break;
    case MetricsFunction::kSumOverTime:
      slot = std::isnan(slot) ? *measured : slot + *measured;
      break;
    case MetricsFunction::kAvgOverTime:
      slot += *measured;
      series->counts[bucket] += 1;
      break;
    case MetricsFunction::kQuantileOverTime:
      series->sketches[bucket].Add(*measured);
      break;
    case MetricsFunction::kCompare:
      break;
  }
  OfferExemplar(trace, span_index, bucket, measured.value_or(kNaN), series_index);
}

uint32_t MetricsEvaluator::State::SeriesOf(const TraceView& trace, uint32_t span_index,
                                           std::optional<double> histogram_bucket) {
  const otlp::Resource* resource = trace.spans[span_index].resource;
  const bool by_resource = by_resource_only_ && !histogram_bucket;
  if (by_resource) {
    if (resource == last_resource_) return last_resource_series_;
    if (auto it = resource_series_.find(resource); it != resource_series_.end()) {
      last_resource_ = resource;
      return last_resource_series_ = it->second;
    }
  }
  key_.clear();
  for (size_t i = 0; i < stage_.by.size(); ++i) {
    by_values_[i] = EvaluateField(stage_.by[i], trace, span_index);
    metrics_internal::AppendValueKey(by_values_[i], key_);
  }
  if (histogram_bucket) metrics_internal::AppendValueKey(Value::Float(*histogram_bucket), key_);
  const uint32_t index = FindOrCreateSeries(histogram_bucket);
  if (by_resource) {
    resource_series_.emplace(resource, index);
    last_resource_ = resource;
    last_resource_series_ = index;
  }
  return index;
}

uint32_t MetricsEvaluator::State::FindOrCreateSeries(std::optional<double> histogram_bucket) {
  auto it = index_.find(key_);
  if (it != index_.end()) return it->second;
  if (series_.size() >= range_.max_series) {
    limit_reached_ = true;
    return kNoSeries;
  }
  Series series;
  // Tempo's labels: one per by() value, nil values left out; when all are nil and nothing
  // else labels the series, the first attribute with a nil value. Ungrouped: __name__.
  for (size_t i = 0; i < stage_.by.size(); ++i) {
    if (by_values_[i].IsNil()) continue;
    series.labels.push_back(otlp::KeyValue{AttributeText(stage_.by[i].attribute), ValueToAnyValue(by_values_[i])});
  }
  if (histogram_bucket) {
    series.labels.push_back(metrics_internal::DoubleLabel("__bucket", *histogram_bucket));
  } else if (stage_.function != MetricsFunction::kQuantileOverTime && series.labels.empty()) {
    if (stage_.by.empty()) {
      series.labels.push_back(metrics_internal::StringLabel("__name__", MetricsFunctionName(stage_.function)));
    } else {
      series.labels.push_back(metrics_internal::NilLabel(AttributeText(stage_.by[0].attribute)));
    }
  }
  const bool starts_empty = stage_.function == MetricsFunction::kMinOverTime ||
                            stage_.function == MetricsFunction::kMaxOverTime ||
                            stage_.function == MetricsFunction::kSumOverTime;
  series.values.assign(grid_.count, starts_empty ? kNaN : 0);
  if (stage_.function == MetricsFunction::kAvgOverTime) series.counts.assign(grid_.count, 0);
  if (stage_.function == MetricsFunction::kQuantileOverTime) series.sketches.resize(grid_.count);

  index_.emplace(key_, static_cast<uint32_t>(series_.size()));
  keys_.push_back(key_);
  series_.push_back(std::move(series));
  return static_cast<uint32_t>(series_.size() - 1);
}

void MetricsEvaluator::State::OfferExemplar(const TraceView& trace, uint32_t span_index, uint32_t bucket, double value,
                                            uint32_t series) {
  if (slots_.empty()) return;
  const otlp::Span& span = *trace.spans[span_index].span;
  unsigned __int128 offset = span.start_time_unix_nano - grid_.left - 1;  // > left in the grid
  unsigned __int128 width = static_cast<unsigned __int128>(grid_.count) * grid_.step;
  size_t slot_index = static_cast<size_t>(offset * slots_.size() / width);
  ExemplarSlot& slot = slots_[std::min(slot_index, slots_.size() - 1)];
  if (slot.used && std::tie(slot.trace_id, slot.span_id) <= std::tie(trace.id, span.span_id)) return;
  slot.used = true;
  slot.trace_id = trace.id;
  slot.span_id = span.span_id;
  slot.start_unix_nano = span.start_time_unix_nano;
  slot.value = value;
  slot.bucket = bucket;
  slot.series_key = keys_[series];
}

void MetricsEvaluator::State::MergeSeries(Series& into, const Series& from) const {
  for (uint32_t b = 0; b < grid_.count; ++b) {
    double& to = into.values[b];
    const double add = from.values[b];
    switch (stage_.function) {
      case MetricsFunction::kMinOverTime:
        if (!std::isnan(add) && (std::isnan(to) || add < to)) to = add;
        break;
      case MetricsFunction::kMaxOverTime:
        if (!std::isnan(add) && (std::isnan(to) || add > to)) to = add;
        break;
      case MetricsFunction::kSumOverTime:
        if (!std::isnan(add)) to = std::isnan(to) ? add : to + add;
        break;
      case MetricsFunction::kAvgOverTime:
        to += add;
        into.counts[b] += from.counts[b];
        break;
      case MetricsFunction::kQuantileOverTime:
        into.sketches[b].Merge(from.sketches[b]);
        break;
      default:
        to += add;
        break;
    }
  }
}

void MetricsEvaluator::State::Merge(State& other) {
  if (compare_ && other.compare_) compare_->Merge(*other.compare_);
  for (size_t i = 0; i < other.series_.size(); ++i) {
    auto it = index_.find(other.keys_[i]);
    if (it != index_.end()) {
      MergeSeries(series_[it->second], other.series_[i]);
      continue;
    }
    if (series_.size() >= range_.max_series) {
      limit_reached_ = true;
      continue;
    }
    index_.emplace(other.keys_[i], static_cast<uint32_t>(series_.size()));
    keys_.push_back(other.keys_[i]);
    series_.push_back(std::move(other.series_[i]));
  }
  for (size_t i = 0; i < slots_.size() && i < other.slots_.size(); ++i) {
    ExemplarSlot& mine = slots_[i];
    ExemplarSlot& theirs = other.slots_[i];
    if (!theirs.used) continue;
    if (!mine.used || std::tie(theirs.trace_id, theirs.span_id) < std::tie(mine.trace_id, mine.span_id)) {
      mine = std::move(theirs);
    }
  }
  limit_reached_ = limit_reached_ || other.limit_reached_;
  stats_.traces_observed += other.stats_.traces_observed;
  stats_.spans_observed += other.stats_.spans_observed;
  other.index_.clear();
  other.keys_.clear();
  other.series_.clear();
  other.slots_.assign(other.slots_.size(), ExemplarSlot{});
  other.stats_ = {};
}

// One dense series per accumulated series (per quantile for quantile_over_time), final
// values computed; first_dense_of_series maps series_ to the first of its dense series.
std::vector<DenseSeries> MetricsEvaluator::State::DenseFromSeries() {
  std::vector<DenseSeries> dense;
  std::vector<size_t> first_dense_of_series;
  const double rate_multiplier = 1.0 / grid_.StepSeconds();
  for (Series& series : series_) {
    first_dense_of_series.push_back(dense.size());
    if (stage_.function == MetricsFunction::kQuantileOverTime) {
      for (double q : stage_.quantiles) {
        DenseSeries out;
        out.labels = series.labels;
        out.labels.push_back(metrics_internal::DoubleLabel("p", q));
        out.values.resize(grid_.count);
        for (uint32_t b = 0; b < grid_.count; ++b) {
          out.values[b] = series.sketches[b].count() == 0 ? 0 : series.sketches[b].Quantile(q);
        }
        dense.push_back(std::move(out));
      }
      continue;
    }
    DenseSeries out;
    out.labels = std::move(series.labels);
    out.values = std::move(series.values);
    for (uint32_t b = 0; b < grid_.count; ++b) {
      if (stage_.function == MetricsFunction::kRate) out.values[b] *= rate_multiplier;
      if (stage_.function == MetricsFunction::kAvgOverTime) {
        out.values[b] = series.counts[b] > 0 ? out.values[b] / series.counts[b] : kNaN;
      }
    }
    dense.push_back(std::move(out));
  }
  AttachExemplars(dense, first_dense_of_series);
  return dense;
}

void MetricsEvaluator::State::AttachExemplars(std::vector<DenseSeries>& dense,
                                              const std::vector<size_t>& first_dense_of_series) {
  // quantile_over_time: an exemplar goes to the smallest quantile at or above its value in
  // its bucket (the largest when above all), as Tempo assigns them.
  std::vector<size_t> quantile_order(stage_.quantiles.size());
  for (size_t i = 0; i < quantile_order.size(); ++i) quantile_order[i] = i;
  std::stable_sort(quantile_order.begin(), quantile_order.end(),
                   [&](size_t a, size_t b) { return stage_.quantiles[a] < stage_.quantiles[b]; });

  for (ExemplarSlot& slot : slots_) {
    if (!slot.used) continue;
    auto it = index_.find(slot.series_key);
    if (it == index_.end()) continue;
    size_t target = first_dense_of_series[it->second];
    if (stage_.function == MetricsFunction::kQuantileOverTime) {
      if (quantile_order.empty()) continue;
      size_t chosen = quantile_order.back();
      for (size_t qi : quantile_order) {
        if (slot.value <= dense[target + qi].values[slot.bucket]) {
          chosen = qi;
          break;
        }
      }
      target += chosen;
    }
    metrics_internal::PendingExemplar pending;
    pending.bucket = slot.bucket;
    pending.exemplar.labels.push_back(metrics_internal::StringLabel("trace:id", slot.trace_id.Hex()));
    pending.exemplar.labels.push_back(metrics_internal::StringLabel("span:id", HexEncode(slot.span_id)));
    pending.exemplar.value = CountsSpans(stage_.function) ? kNaN : slot.value;
    pending.exemplar.timestamp_ms = static_cast<int64_t>(slot.start_unix_nano / 1'000'000ULL);
    dense[target].exemplars.push_back(std::move(pending));
  }
}

std::vector<MetricsSeries> MetricsEvaluator::State::Finish() {
  std::vector<DenseSeries> dense = compare_ ? compare_->Finish() : DenseFromSeries();
  std::stable_sort(dense.begin(), dense.end(), [](const DenseSeries& a, const DenseSeries& b) {
    return metrics_internal::LabelsLess(a.labels, b.labels);
  });
  if (!compare_) {
    for (const auto& stage : stage_.second_stages) metrics_internal::ApplySecondStage(stage, dense);
  }
  return metrics_internal::ToOutput(std::move(dense), grid_);
}

// ---- MetricsEvaluator -----------------------------------------------------------------------

Result<std::unique_ptr<MetricsEvaluator>> MetricsEvaluator::Create(std::shared_ptr<const Query> query,
                                                                   const MetricsRange& range) {
  if (query == nullptr || query->metrics() == nullptr) {
    return Status::InvalidArgument("not a metrics query: it must end in a metrics function such as rate()");
  }
  const MetricsStage& stage = *query->metrics();
  if (NeedsAttribute(stage.function) && stage.attribute == nullptr) {
    return Status::InvalidArgument(std::string(MetricsFunctionName(stage.function)) + "() needs an attribute");
  }
  if (stage.function == MetricsFunction::kQuantileOverTime && stage.quantiles.empty()) {
    return Status::InvalidArgument("quantile_over_time() needs at least one quantile");
  }
  Result<TimeGrid> grid = TimeGrid::Make(range);
  if (!grid.ok()) return grid.status();
  auto state = std::make_unique<State>(std::move(query), range, grid.value());
  return std::unique_ptr<MetricsEvaluator>(new MetricsEvaluator(std::move(state)));
}

MetricsEvaluator::MetricsEvaluator(std::unique_ptr<State> state) : state_(std::move(state)) {}
MetricsEvaluator::~MetricsEvaluator() = default;

void MetricsEvaluator::Observe(const TraceView& trace) { state_->Observe(trace); }
void MetricsEvaluator::Merge(MetricsEvaluator& other) {
  if (&other != this) state_->Merge(*other.state_);
}
std::vector<MetricsSeries> MetricsEvaluator::Finish() { return state_->Finish(); }
MetricsWindow MetricsEvaluator::window() const {
  return {state_->grid().left, state_->grid().right()};
}
bool MetricsEvaluator::SeriesLimitReached() const { return state_->limit_reached(); }
MetricsStats MetricsEvaluator::stats() const { return state_->stats(); }

std::string MetricsEvaluator::PartialMessage() const {
  if (!SeriesLimitReached()) return "";
  return "Response exceeds maximum series limit of " + std::to_string(state_->range().max_series) +
         ", a partial response is returned";
}

}  // namespace tracery::traceql
