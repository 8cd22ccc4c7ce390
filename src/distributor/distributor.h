// The distributor: the door of ingest. Resolves and validates the tenant, applies the
// per-tenant rate limit and the in-flight memory limit, validates and splits the request by
// trace, and hands the fragments to the ingester. Both receivers (gRPC and HTTP) call it.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/metrics.h"
#include "common/status.h"
#include "common/tenant.h"
#include "common/tenant_limits.h"
#include "generator/generator.h"
#include "ingester/ingester.h"
#include "otlp/split.h"

namespace tracery::distributor {

enum class Encoding { kProtobuf, kJson };

// Who sent a request: a client, or a peer gateway passing on the spans of traces it takes this
// gateway to own (its request carries exporter::kForwardedHeader; the receivers read it).
enum class Sender { kClient, kPeerGateway };

struct Options {
  bool multitenancy_enabled = false;
  uint64_t max_request_bytes = 16ull << 20;
  uint64_t max_inflight_bytes = 512ull << 20;
  uint64_t rate_limit_bytes = 100'000'000;
  uint64_t burst_size_bytes = 200'000'000;
  // Per-tenant rate and burst (the runtime overrides file); null: the two values above.
  const TenantLimitsTable* limits = nullptr;
  // Tempo's retry_after_on_resource_exhausted: when non-zero, every RESOURCE_EXHAUSTED's delay.
  std::chrono::seconds retry_after_on_resource_exhausted{0};
  // Tempo's log_received_spans / log_discarded_spans: a log line per span.
  struct SpanLog {
    bool enabled = false, include_all_attributes = false, filter_by_status_error = false;
  } log_received_spans, log_discarded_spans;
  // Gateways (exporter/peer_router.h): sends the fragments of traces another gateway owns to
  // it, marks those owned here in `local`, and calls `done` once every peer acknowledged. The
  // split (and the request body) live until then. Null: every trace is local.
  std::function<void(const std::string& tenant, const otlp::SplitRequest& split, std::vector<bool>& local,
                     std::function<void(Status)> done)>
      route;
  // Gateways, with `route`: the peer that owns a trace by this gateway's own list, empty when
  // it is this gateway. A request from a peer gateway is never routed again (its fragments
  // are all local, so spans cannot bounce between gateways whose lists disagree); its
  // fragments owned elsewhere by this list are counted as misrouted, with a warning.
  std::function<std::string_view(const TraceId& trace_id)> remote_owner;
};

struct PushReply {
  Status status;
  uint64_t rejected_spans = 0;
  std::string rejected_reason;
  std::chrono::seconds retry_after{0};  // set with ResourceExhausted from the rate limit
};

class Distributor {
 public:
  // `generator` may be null (no metrics generator configured).
  Distributor(Options options, ingester::Ingester& ingester, generator::Generator* generator, MetricsRegistry& metrics);

  // The tenant for a request, from its X-Scope-OrgID value (nullopt when absent).
  Result<std::string> ResolveTenant(std::optional<std::string_view> org_id) const {
    return tracery::ResolveTenant(options_.multitenancy_enabled, org_id);
  }

  // Takes an uncompressed request body. `done` runs exactly once, possibly on another thread.
  // `sender` matters only with Options::route: a peer gateway's request is stored here whole.
  void Push(const std::string& tenant, std::string_view body, Encoding encoding, std::function<void(PushReply)> done,
            Sender sender = Sender::kClient);
  // The fragments of `split` that `local` marks, with their spans re-indexed (gateways).
  static otlp::SplitRequest LocalPart(const otlp::SplitRequest& split, const std::vector<bool>& local);

  // Counts a request refused before it reached Push (bad tenant, bad encoding, too large).
  void CountRefused(const std::string& reason, uint64_t bytes);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point refreshed;
  };
  bool TakeTokens(const std::string& tenant, uint64_t bytes, double rate, double burst, std::chrono::seconds& retry_after);
  void LogSpans(const Options::SpanLog& log, const char* message, const std::string& tenant,
                const otlp::SplitRequest& split, const std::vector<bool>* accepted_fragments, bool discarded);
  void CountFromPeer(const otlp::SplitRequest& split);
  std::atomic<int64_t> log_second_{0};
  std::atomic<uint32_t> log_lines_this_second_{0};

  Options options_;
  ingester::Ingester& ingester_;
  generator::Generator* generator_;
  MetricsRegistry& metrics_;
  std::atomic<uint64_t> inflight_bytes_{0};
  std::mutex buckets_mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point next_bucket_sweep_;
  Counter& requests_received_;
  Counter& spans_received_;
  Counter& bytes_received_;
  // Gateways only (Options::route set): requests and spans forwarded by peers, and those of
  // traces another gateway owns by this one's list.
  Counter* forwarded_requests_received_ = nullptr;
  Counter* forwarded_spans_received_ = nullptr;
  Counter* misrouted_spans_received_ = nullptr;
  std::atomic<int64_t> next_misrouted_warning_{0};  // steady_clock nanoseconds
};

}  // namespace tracery::distributor
