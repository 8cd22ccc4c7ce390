#include "query/streaming_messages.h"

#include <functional>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/ids.h"
#include "query/search_json.h"

namespace tracery::query {
namespace {

namespace common_pb = opentelemetry::proto::common::v1;

void AnyValueToProto(const otlp::AnyValue& value, common_pb::AnyValue& out) {
  using Type = otlp::AnyValue::Type;
  switch (value.type) {
    case Type::kString: out.set_string_value(value.string_value); break;
    case Type::kBool: out.set_bool_value(value.bool_value); break;
    case Type::kInt: out.set_int_value(value.int_value); break;
    case Type::kDouble: out.set_double_value(value.double_value); break;
    case Type::kBytes: out.set_bytes_value(value.string_value); break;
    case Type::kArray: {
      auto* array = out.mutable_array_value();
      for (const auto& element : value.array_values) AnyValueToProto(element, *array->add_values());
      break;
    }
    case Type::kKvList: {
      auto* list = out.mutable_kvlist_value();
      for (const auto& kv : value.kvlist_values) ToProto(kv, *list->add_values());
      break;
    }
    case Type::kEmpty: break;
  }
}

void SpansetToProto(const FoundSpanset& set, tempopb::SpanSet& out) {
  for (const FoundSpan& span : set.spans) {
    tempopb::Span& s = *out.add_spans();
    s.set_spanid(HexEncode(span.span_id));
    s.set_name(span.name);
    s.set_starttimeunixnano(span.start_unix_nano);
    s.set_durationnanos(span.duration_nanos);
    for (const auto& kv : span.attributes) ToProto(kv, *s.add_attributes());
  }
  out.set_matched(set.matched);
  for (const auto& kv : set.attributes) ToProto(kv, *out.add_attributes());
}

// Map fields have no fixed order on the wire; deterministic bytes make "changed" mean changed.
std::string DeterministicBytes(const google::protobuf::MessageLite& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

// Room for a message's own framing around its fields (tags and lengths), so that the sum of
// the parts stays an upper bound of the whole.
constexpr size_t kFieldOverhead = 16;

// Splits `items` (already sized) into groups whose sizes plus `fixed` stay under max_bytes; an
// item too large on its own forms a group by itself.
std::vector<std::pair<size_t, size_t>> Segments(const std::vector<size_t>& sizes, size_t fixed, size_t max_bytes) {
  std::vector<std::pair<size_t, size_t>> segments;  // [begin, end)
  size_t begin = 0, bytes = fixed;
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t item = sizes[i] + kFieldOverhead;
    if (i > begin && bytes + item > max_bytes) {
      segments.emplace_back(begin, i);
      begin = i;
      bytes = fixed;
    }
    bytes += item;
  }
  if (begin < sizes.size()) segments.emplace_back(begin, sizes.size());
  return segments;
}

template <typename Response, typename AddSeries>
std::vector<Response> MetricsMessages(const MetricsAnswer& answer, size_t max_bytes, AddSeries add_series) {
  std::vector<Response> all(1);
  std::vector<size_t> sizes;
  for (const auto& series : answer.series) {
    add_series(series, all[0]);
    sizes.push_back(all[0].series(all[0].series_size() - 1).ByteSizeLong());
  }
  Response tail;
  ToProto(answer.stats, *tail.mutable_metrics());
  if (answer.partial) tail.set_status(tempopb::PARTIAL);
  tail.set_message(answer.message);
  std::vector<Response> out;
  for (auto [begin, end] : Segments(sizes, tail.ByteSizeLong() + kFieldOverhead, max_bytes)) {
    Response& message = out.emplace_back();
    for (size_t i = begin; i < end; ++i) message.mutable_series()->Add()->Swap(all[0].mutable_series(int(i)));
  }
  if (out.empty()) out.emplace_back();
  out.back().MergeFrom(tail);
  return out;
}

}  // namespace

void ToProto(const otlp::KeyValue& kv, common_pb::KeyValue& out) {
  out.set_key(kv.key);
  AnyValueToProto(kv.value, *out.mutable_value());
}

void ToProto(const FoundTrace& trace, tempopb::TraceSearchMetadata& out) {
  out.set_traceid(TempoTraceIdHex(trace.id));
  out.set_rootservicename(trace.has_root ? trace.root_service_name : "<root span not yet received>");
  out.set_roottracename(trace.root_span_name);
  out.set_starttimeunixnano(trace.start_unix_nano);
  out.set_durationms(uint32_t(trace.duration_nanos / 1'000'000));
  if (!trace.spansets.empty()) SpansetToProto(trace.spansets.front(), *out.mutable_spanset());
  for (const FoundSpanset& set : trace.spansets) SpansetToProto(set, *out.add_spansets());
  for (const auto& [service, counts] : trace.service_stats) {
    tempopb::ServiceStats& stats = (*out.mutable_servicestats())[service];
    stats.set_spancount(counts.span_count);
    stats.set_errorcount(counts.error_count);
  }
}

void ToProto(const SearchStats& stats, tempopb::SearchMetrics& out) {
  out.set_inspectedtraces(uint32_t(stats.inspected_traces));
  out.set_inspectedbytes(stats.inspected_bytes);
  out.set_totalblocks(stats.total_blocks);
  out.set_completedjobs(stats.completed_jobs);
  out.set_totaljobs(stats.total_jobs);
  out.set_totalblockbytes(stats.total_block_bytes);
  out.set_inspectedspans(stats.inspected_spans);
}

void ToProto(const SearchStats& stats, tempopb::MetadataMetrics& out) {
  out.set_inspectedbytes(stats.inspected_bytes);
  out.set_totaljobs(stats.total_jobs);
  out.set_completedjobs(stats.completed_jobs);
  out.set_totalblocks(stats.total_blocks);
  out.set_totalblockbytes(stats.total_block_bytes);
}

std::vector<tempopb::QueryRangeResponse> QueryRangeMessages(const MetricsAnswer& answer, size_t max_bytes) {
  return MetricsMessages<tempopb::QueryRangeResponse>(
      answer, max_bytes, [](const traceql::MetricsSeries& series, tempopb::QueryRangeResponse& out) {
        tempopb::TimeSeries& s = *out.add_series();
        for (const auto& kv : series.labels) ToProto(kv, *s.add_labels());
        for (const auto& sample : series.samples) {
          tempopb::Sample& p = *s.add_samples();
          p.set_timestamp_ms(sample.timestamp_ms);
          p.set_value(sample.value);
        }
        for (const auto& exemplar : series.exemplars) {
          tempopb::Exemplar& e = *s.add_exemplars();
          for (const auto& kv : exemplar.labels) ToProto(kv, *e.add_labels());
          e.set_value(exemplar.value);
          e.set_timestamp_ms(exemplar.timestamp_ms);
        }
      });
}

std::vector<tempopb::QueryInstantResponse> QueryInstantMessages(const MetricsAnswer& answer, size_t max_bytes) {
  return MetricsMessages<tempopb::QueryInstantResponse>(
      answer, max_bytes, [](const traceql::MetricsSeries& series, tempopb::QueryInstantResponse& out) {
        tempopb::InstantSeries& s = *out.add_series();
        for (const auto& kv : series.labels) ToProto(kv, *s.add_labels());
        s.set_value(series.samples.empty() ? 0 : series.samples.back().value);
      });
}

std::vector<tempopb::SearchResponse> SearchDiffer::Next(const SearchResult& so_far, bool final) {
  tempopb::SearchResponse changed;
  std::vector<size_t> sizes;
  for (const FoundTrace& trace : so_far.traces) {
    tempopb::TraceSearchMetadata metadata;
    ToProto(trace, metadata);
    size_t hash = std::hash<std::string>{}(DeterministicBytes(metadata));
    auto [it, inserted] = sent_.try_emplace(metadata.traceid(), hash);
    if (!inserted && it->second == hash) continue;
    it->second = hash;
    sizes.push_back(metadata.ByteSizeLong());
    changed.mutable_traces()->Add(std::move(metadata));
  }
  tempopb::SearchResponse metrics_only;
  ToProto(so_far.stats, *metrics_only.mutable_metrics());
  std::string metrics = DeterministicBytes(metrics_only);
  std::vector<tempopb::SearchResponse> out;
  if (sizes.empty() && !final && metrics == last_metrics_) return out;
  last_metrics_ = metrics;
  for (auto [begin, end] : Segments(sizes, metrics.size() + kFieldOverhead, max_bytes_)) {
    tempopb::SearchResponse& message = out.emplace_back();
    for (size_t i = begin; i < end; ++i) message.mutable_traces()->Add()->Swap(changed.mutable_traces(int(i)));
  }
  if (out.empty()) out.emplace_back();
  // Every message carries the metrics: Grafana takes each message's as the latest.
  for (auto& message : out) *message.mutable_metrics() = metrics_only.metrics();
  return out;
}

}  // namespace tracery::query
