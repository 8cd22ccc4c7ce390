// The metrics generator: RED span metrics and a service graph computed from every accepted
// span, with exemplars (trace and span IDs on histogram buckets). Series keep Tempo's names
// and labels, are remote-written to Prometheus every collection interval, and are served on
// /metrics (Prometheus text or OpenMetrics with exemplars).
//
// Consume runs on the ingest path (the request's thread): it reads the fields SplitByTrace
// already summarised, aggregates the request's spans by label set and pairs its client and
// server halves locally, then touches shared state once per label set (consume.cpp).
// Collection, pairing expiry and remote write run on the generator's own threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/tenant_limits.h"
#include "generator/registry.h"
#include "otlp/split.h"

namespace tracery::generator {

struct RemoteWriteTarget {
  std::string url;
  bool send_exemplars = true;  // Tempo defaults to false, which silently sends no exemplars
  std::map<std::string, std::string> headers;
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
};

// Tempo's span-metrics filter policy: a span is counted when it matches every `include`
// condition and not every `exclude` condition. Keys: `name`, `kind`, `status` (intrinsics,
// compared with their enum names), `span.<attribute>`, `resource.<attribute>`.
struct FilterCondition {
  std::string key, value;
};
struct FilterPolicy {
  bool include_regex = false, exclude_regex = false;
  std::vector<FilterCondition> include, exclude;
};

struct Options {
  bool span_metrics = false;
  bool service_graphs = false;
  std::map<std::string, std::string> external_labels;
  std::chrono::nanoseconds collection_interval = std::chrono::seconds(15);
  std::chrono::nanoseconds stale_duration = std::chrono::minutes(15);
  uint64_t max_active_series = 0;  // per tenant; 0: unlimited
  std::vector<RemoteWriteTarget> remote_write;

  std::vector<double> span_metrics_buckets = {0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
                                              0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384};
  std::vector<std::string> span_metrics_dimensions;  // span or resource attribute keys
  std::vector<FilterPolicy> filter_policies;
  bool intrinsic_service = true, intrinsic_span_name = true, intrinsic_span_kind = true,
       intrinsic_status_code = true, intrinsic_status_message = false;

  std::chrono::nanoseconds service_graph_wait = std::chrono::seconds(10);
  uint64_t service_graph_max_items = 10000;
  std::vector<double> service_graph_buckets = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8};
  std::vector<std::string> peer_attributes = {"peer.service", "db.name", "db.system"};

  // Asked before an exemplar goes out (remote write, /metrics): true when its trace is stored,
  // and then kept (tail sampling pins it). Null: every exemplar goes out.
  std::function<bool(const std::string& tenant, const TraceId& trace_id)> keep_exemplar;

  // Per-tenant processors and max_active_series (runtime overrides); null: the above for all.
  const TenantLimitsTable* limits = nullptr;

  bool enabled() const { return span_metrics || service_graphs; }
};

class RemoteWriter;
struct CachedLabelSet;

class Generator {
 public:
  Generator(Options options, MetricsRegistry& self_metrics);
  ~Generator();
  void Start();
  void Stop();  // one last collection and send

  // Feeds the spans of one accepted request; `accepted[i]` says whether fragment i was stored
  // (exemplars only ever point at stored traces).
  void Consume(const std::string& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted);

  // The generated series in Prometheus text (openmetrics=false) or OpenMetrics with exemplars.
  std::string Render(bool openmetrics);

  // Runs one collection now (tests and shutdown).
  void CollectNow();
  size_t TenantCount();  // tenants with state (idle ones are evicted)

 private:
  struct TenantState;
  struct PendingEdge;
  struct LocalHalf;
  struct RequestEdges;
  // The tenant's state, made on first use; held by the caller while it works on it.
  std::shared_ptr<TenantState> Tenant(const std::string& name);
  // Drops tenants idle past stale_duration whose series have all expired and that have no
  // half edge waiting: many tenants that came once do not hold memory for ever.
  void EvictIdleTenants();
  void ConsumeSpanMetrics(TenantState& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted,
                          const std::vector<std::string>& services, const std::vector<uint32_t>& service_slots);
  void ReadExtraLabels(const otlp::SplitRequest& split, const otlp::SpanSummary& span, std::string& extra,
                       std::string& value) const;
  void ConsumeServiceGraph(TenantState& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted,
                           const std::vector<std::string>& services, const std::vector<uint32_t>& service_slots);
  void JoinWaitingHalves(TenantState& tenant, const otlp::SplitRequest& split, std::vector<LocalHalf>& halves,
                         const std::vector<std::string>& services, RequestEdges& edges);
  void MergeEdges(TenantState& tenant, const std::vector<std::string>& services, const RequestEdges& edges);
  // The tenant's cached label set for `key` (inserted empty: the caller fills its labels).
  static constexpr size_t kMaxCachedLabelSets = 65536;
  static std::pair<CachedLabelSet&, bool> LabelSetOf(TenantState& tenant, const Registry::Batch& batch, std::string_view key);
  static Series* SeriesOf(Registry::Batch& batch, CachedLabelSet& set, size_t role, size_t family);
  void Loop();
  void ExpireEdges(TenantState& tenant, bool everything);
  // Remote-write requests for a tenant's series, at most kMaxSeriesPerWrite series each.
  struct WriteBatch {
    std::string body;  // encoded WriteRequest
    uint64_t samples = 0, exemplars = 0;
  };
  static constexpr size_t kMaxSeriesPerWrite = 2000;
  std::vector<WriteBatch> BuildWriteRequests(const std::string& tenant_name, TenantState& tenant, int64_t now_ms,
                                             bool with_exemplars);
  bool KeepExemplar(const std::string& tenant, std::string_view trace_id) const;
  bool PassesFilters(const otlp::SplitRequest& split, const otlp::SpanSummary& span, std::string_view body,
                     const std::string& service) const;
  // Regexes of regex-matched filter conditions, compiled once, by policy and condition.
  std::vector<std::vector<std::regex>> include_regexes_, exclude_regexes_;

  Options options_;
  std::vector<double> latency_bounds_, edge_bounds_;  // sorted, as the registry keeps them
  uint64_t hash_seed_;  // of request-local tables
  MetricsRegistry& self_metrics_;
  std::mutex tenants_mutex_;
  std::map<std::string, std::shared_ptr<TenantState>> tenants_;
  std::unique_ptr<RemoteWriter> writer_;
  std::mutex loop_mutex_;
  std::condition_variable loop_wake_;
  bool stopping_ = false;
  std::thread loop_;
  Counter& spans_received_;
  Counter& edges_expired_;
};

}  // namespace tracery::generator
