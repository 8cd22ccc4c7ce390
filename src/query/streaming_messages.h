// Private to query/: the streaming API's answers as tempopb messages, and the diffing that
// turns a search's successive snapshots into the messages Grafana accumulates.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "query/search.h"
#include "query/search_api.h"
#include "tempopb/tempo.pb.h"
#include "traceql/metrics.h"

namespace tracery::query {

void ToProto(const FoundTrace& trace, tempopb::TraceSearchMetadata& out);
void ToProto(const SearchStats& stats, tempopb::SearchMetrics& out);
void ToProto(const SearchStats& stats, tempopb::MetadataMetrics& out);
void ToProto(const otlp::KeyValue& kv, opentelemetry::proto::common::v1::KeyValue& out);

// A metrics answer as range (or instant) responses: series split over messages of at most
// `max_bytes` each (a series is never split), the last one carrying metrics and status.
std::vector<tempopb::QueryRangeResponse> QueryRangeMessages(const MetricsAnswer& answer, size_t max_bytes);
std::vector<tempopb::QueryInstantResponse> QueryInstantMessages(const MetricsAnswer& answer, size_t max_bytes);

// Turns snapshots of one search into Tempo's stream: each batch holds the traces that are
// new or changed since the previous batch, with the cumulative metrics, split so that no
// message is over `max_bytes` (a single trace larger than that travels alone). Not
// thread-safe: one per stream.
class SearchDiffer {
 public:
  explicit SearchDiffer(size_t max_bytes) : max_bytes_(max_bytes) {}
  // With no trace new or changed, one message of metrics alone when they moved (the progress
  // bar) or when `final` (the search's answer: the last message carries the final metrics);
  // otherwise none.
  std::vector<tempopb::SearchResponse> Next(const SearchResult& so_far, bool final);

 private:
  size_t max_bytes_;
  std::unordered_map<std::string, size_t> sent_;  // trace ID -> hash of what was sent
  std::string last_metrics_;                      // serialized metrics of the last message
};

}  // namespace tracery::query
