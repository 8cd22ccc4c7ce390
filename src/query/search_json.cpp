#include "query/search_json.h"

#include <cmath>
#include <charconv>
#include <cstdio>

#include "otlp/json.h"

namespace tracery::query {
namespace {

// Writes `"key":` with the separating comma when needed.
class Object {
 public:
  explicit Object(std::string& out) : out_(out) { out_ += '{'; }
  ~Object() { out_ += '}'; }
  std::string& Key(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    otlp::AppendJsonString(out_, key);
    out_ += ':';
    return out_;
  }
  void String(std::string_view key, std::string_view value) {
    if (!value.empty()) otlp::AppendJsonString(Key(key), value);
  }
  void Uint64(std::string_view key, uint64_t value) {  // jsonpb: 64-bit as a string
    if (value) Key(key) += '"' + std::to_string(value) + '"';
  }
  void Int64(std::string_view key, int64_t value) {
    if (value) Key(key) += '"' + std::to_string(value) + '"';
  }
  void Uint32(std::string_view key, uint64_t value) {
    if (value) Key(key) += std::to_string(value);
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void AppendDouble(std::string& out, double value) { otlp::AppendJsonDouble(out, value); }

void AppendKeyValues(std::string& out, const std::vector<otlp::KeyValue>& values) { otlp::WriteJsonKeyValues(values, out); }

void AppendSpanset(std::string& out, const FoundSpanset& set) {
  Object o(out);
  if (!set.spans.empty()) {
    std::string& list = o.Key("spans");
    list += '[';
    for (size_t i = 0; i < set.spans.size(); ++i) {
      if (i) list += ',';
      const FoundSpan& span = set.spans[i];
      Object s(list);
      s.String("spanID", HexEncode(span.span_id));
      s.String("name", span.name);
      s.Uint64("startTimeUnixNano", span.start_unix_nano);
      s.Uint64("durationNanos", span.duration_nanos);
      if (!span.attributes.empty()) AppendKeyValues(s.Key("attributes"), span.attributes);
    }
    list += ']';
  }
  o.Uint32("matched", set.matched);
  if (!set.attributes.empty()) AppendKeyValues(o.Key("attributes"), set.attributes);
}

void AppendSeriesLabels(Object& o, const std::vector<otlp::KeyValue>& labels) {
  if (!labels.empty()) AppendKeyValues(o.Key("labels"), labels);
}

void AppendExemplars(Object& o, const std::vector<traceql::MetricsExemplar>& exemplars) {
  if (exemplars.empty()) return;
  std::string& list = o.Key("exemplars");
  list += '[';
  for (size_t i = 0; i < exemplars.size(); ++i) {
    if (i) list += ',';
    Object e(list);
    AppendSeriesLabels(e, exemplars[i].labels);
    if (exemplars[i].value != 0 || std::isnan(exemplars[i].value)) AppendDouble(e.Key("value"), exemplars[i].value);
    e.Int64("timestampMs", exemplars[i].timestamp_ms);
  }
  list += ']';
}

// `["a","b"]`.
void AppendStringArray(std::string& out, const std::set<std::string>& items) {
  out += '[';
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ',';
    first = false;
    otlp::AppendJsonString(out, item);
  }
  out += ']';
}

void AppendStatus(Object& o, bool partial, const std::string& message) {
  if (partial) o.Key("status") += "\"PARTIAL\"";
  o.String("message", message);
}

}  // namespace

std::string TempoTraceIdHex(const TraceId& id) {
  std::string hex = id.Hex();
  size_t first = hex.find_first_not_of('0');
  return first == std::string::npos ? "0" : hex.substr(first);
}

void AppendSearchStatsJson(const SearchStats& stats, std::string& out) {
  Object o(out);
  o.Uint32("inspectedTraces", stats.inspected_traces);
  o.Uint64("inspectedBytes", stats.inspected_bytes);
  o.Uint32("totalBlocks", stats.total_blocks);
  o.Uint32("completedJobs", stats.completed_jobs);
  o.Uint32("totalJobs", stats.total_jobs);
  o.Uint64("totalBlockBytes", stats.total_block_bytes);
  o.Uint64("inspectedSpans", stats.inspected_spans);
}

std::string SearchResultJson(const SearchResult& result) {
  std::string out;
  out.reserve(256 + result.traces.size() * 512);
  Object o(out);
  std::string& traces = o.Key("traces");
  traces += '[';
  for (size_t i = 0; i < result.traces.size(); ++i) {
    if (i) traces += ',';
    const FoundTrace& trace = result.traces[i];
    Object t(traces);
    t.String("traceID", TempoTraceIdHex(trace.id));
    t.String("rootServiceName", trace.has_root ? trace.root_service_name : "<root span not yet received>");
    t.String("rootTraceName", trace.root_span_name);
    t.Uint64("startTimeUnixNano", trace.start_unix_nano);
    t.Uint32("durationMs", trace.duration_nanos / 1'000'000);
    if (!trace.spansets.empty()) {
      AppendSpanset(t.Key("spanSet"), trace.spansets.front());
      std::string& sets = t.Key("spanSets");
      sets += '[';
      for (size_t k = 0; k < trace.spansets.size(); ++k) {
        if (k) sets += ',';
        AppendSpanset(sets, trace.spansets[k]);
      }
      sets += ']';
    }
    if (!trace.service_stats.empty()) {
      Object stats(t.Key("serviceStats"));
      for (const auto& [service, counts] : trace.service_stats) {
        Object s(stats.Key(service));
        s.Uint32("spanCount", counts.span_count);
        s.Uint32("errorCount", counts.error_count);
      }
    }
  }
  traces += ']';
  AppendSearchStatsJson(result.stats, o.Key("metrics"));
  return out;
}

std::string TagScopesJson(const std::vector<std::pair<std::string, std::set<std::string>>>& scopes,
                          const SearchStats& stats) {
  std::string out;
  Object o(out);
  std::string& list = o.Key("scopes");
  list += '[';
  for (size_t i = 0; i < scopes.size(); ++i) {
    if (i) list += ',';
    Object s(list);
    s.String("name", scopes[i].first);
    AppendStringArray(s.Key("tags"), scopes[i].second);
  }
  list += ']';
  AppendSearchStatsJson(stats, o.Key("metrics"));
  return out;
}

std::string TagNamesJson(const std::set<std::string>& names, const SearchStats& stats) {
  std::string out;
  Object o(out);
  AppendStringArray(o.Key("tagNames"), names);
  AppendSearchStatsJson(stats, o.Key("metrics"));
  return out;
}

std::string TagValuesV2Json(const std::set<std::pair<std::string, std::string>>& values, const SearchStats& stats) {
  std::string out;
  Object o(out);
  std::string& list = o.Key("tagValues");
  list += '[';
  bool first = true;
  for (const auto& [type, value] : values) {
    if (!first) list += ',';
    first = false;
    Object v(list);
    v.String("type", type);
    v.String("value", value);
  }
  list += ']';
  AppendSearchStatsJson(stats, o.Key("metrics"));
  return out;
}

std::string TagValuesV1Json(const std::set<std::string>& values, const SearchStats& stats) {
  std::string out;
  Object o(out);
  AppendStringArray(o.Key("tagValues"), values);
  AppendSearchStatsJson(stats, o.Key("metrics"));
  return out;
}

std::string QueryRangeJson(const std::vector<traceql::MetricsSeries>& series, const SearchStats& stats, bool partial,
                           const std::string& message) {
  std::string out;
  Object o(out);
  std::string& list = o.Key("series");
  list += '[';
  for (size_t i = 0; i < series.size(); ++i) {
    if (i) list += ',';
    Object s(list);
    AppendSeriesLabels(s, series[i].labels);
    if (!series[i].samples.empty()) {
      std::string& samples = s.Key("samples");
      samples += '[';
      for (size_t k = 0; k < series[i].samples.size(); ++k) {
        if (k) samples += ',';
        Object sample(samples);
        sample.Int64("timestampMs", series[i].samples[k].timestamp_ms);
        if (series[i].samples[k].value != 0 || std::isnan(series[i].samples[k].value))
          AppendDouble(sample.Key("value"), series[i].samples[k].value);
      }
      samples += ']';
    }
    AppendExemplars(s, series[i].exemplars);
  }
  list += ']';
  AppendSearchStatsJson(stats, o.Key("metrics"));
  AppendStatus(o, partial, message);
  return out;
}

std::string QueryInstantJson(const std::vector<traceql::MetricsSeries>& series, const SearchStats& stats, bool partial,
                             const std::string& message) {
  std::string out;
  Object o(out);
  std::string& list = o.Key("series");
  list += '[';
  for (size_t i = 0; i < series.size(); ++i) {
    if (i) list += ',';
    Object s(list);
    AppendSeriesLabels(s, series[i].labels);
    double value = series[i].samples.empty() ? 0 : series[i].samples.back().value;
    if (value != 0 || std::isnan(value)) AppendDouble(s.Key("value"), value);
  }
  list += ']';
  AppendSearchStatsJson(stats, o.Key("metrics"));
  AppendStatus(o, partial, message);
  return out;
}

}  // namespace tracery::query
