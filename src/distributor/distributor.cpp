#include "distributor/distributor.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "otlp/json.h"
#include "otlp/split.h"

namespace tracery::distributor {

Distributor::Distributor(Options options, ingester::Ingester& ingester, generator::Generator* generator,
                         MetricsRegistry& metrics)
    : options_(options),
      ingester_(ingester),
      generator_(generator),
      metrics_(metrics),
      requests_received_(metrics.GetCounter("tracery_distributor_requests_received_total", "OTLP export requests received.")),
      spans_received_(metrics.GetCounter("tracery_distributor_spans_received_total", "Spans in requests that passed validation.")),
      bytes_received_(metrics.GetCounter("tracery_distributor_bytes_received_total", "Uncompressed bytes of requests received.")) {
  metrics.AddCallbackGauge("tracery_distributor_inflight_bytes", "Bytes of requests received and not yet acknowledged.",
                           [this] { return double(inflight_bytes_.load()); });
  if (options_.route) {
    forwarded_requests_received_ = &metrics.GetCounter("tracery_gateway_forwarded_requests_received_total",
                                                       "Requests forwarded here by peer gateways (stored here, never routed again).");
    forwarded_spans_received_ = &metrics.GetCounter("tracery_gateway_forwarded_spans_received_total",
                                                    "Spans in requests forwarded here by peer gateways.");
    misrouted_spans_received_ = &metrics.GetCounter(
        "tracery_gateway_misrouted_spans_received_total",
        "Spans forwarded here by peer gateways for traces another gateway owns by this one's peer list (the lists disagree).");
  }
}

// A peer gateway sent these spans here because its peer list says this gateway owns their
// traces. They are stored here whatever this gateway's list says: forwarding them on could
// send them back, and the two gateways would pass them to and fro until the client gave up.
void Distributor::CountFromPeer(const otlp::SplitRequest& split) {
  forwarded_requests_received_->Add();
  forwarded_spans_received_->Add(split.span_count);
  if (!options_.remote_owner) return;
  uint64_t misrouted_spans = 0;
  size_t example = 0;
  for (size_t i = 0; i < split.fragments.size(); ++i) {
    if (options_.remote_owner(split.fragments[i].trace_id).empty()) continue;
    if (misrouted_spans == 0) example = i;
    misrouted_spans += split.fragments[i].span_count;
  }
  if (misrouted_spans == 0) return;
  misrouted_spans_received_->Add(misrouted_spans);
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t next = next_misrouted_warning_.load();
  if (now < next || !next_misrouted_warning_.compare_exchange_strong(next, now + int64_t(60'000'000'000))) return;
  const TraceId& trace_id = split.fragments[example].trace_id;
  spdlog::warn("gateway: a peer forwarded {} spans of traces this gateway does not own by its own peer list (trace {} "
               "is {}'s by it): the gateways' tracery.peers lists disagree (a config change rolling out, or a peer "
               "written differently on some gateway). The spans are kept here, so a trace may be decided in parts. "
               "At most one such warning a minute; tracery_gateway_misrouted_spans_received_total counts them all",
               misrouted_spans, trace_id.Hex(), options_.remote_owner(trace_id));
}

void Distributor::CountRefused(const std::string& reason, uint64_t bytes) {
  metrics_.GetCounter("tracery_distributor_requests_refused_total", "Requests refused, by reason.", {{"reason", reason}}).Add();
  metrics_.GetCounter("tracery_distributor_bytes_refused_total", "Bytes of requests refused, by reason.", {{"reason", reason}})
      .Add(bytes);
}

bool Distributor::TakeTokens(const std::string& tenant, uint64_t bytes, double rate, double burst,
                             std::chrono::seconds& retry_after) {
  auto now = std::chrono::steady_clock::now();
  burst = std::max(burst, rate);
  std::lock_guard lock(buckets_mutex_);
  if (now >= next_bucket_sweep_) {
    // A bucket idle long enough to be full again is the same as a new one: drop it, so that
    // tenants that came once do not hold memory for ever.
    next_bucket_sweep_ = now + std::chrono::minutes(1);
    double refill_seconds = rate > 0 ? burst / rate : 3600;
    std::erase_if(buckets_, [&](const auto& entry) {
      return std::chrono::duration<double>(now - entry.second.refreshed).count() > refill_seconds;
    });
  }
  auto [it, inserted] = buckets_.try_emplace(tenant, Bucket{burst, now});
  Bucket& bucket = it->second;
  double elapsed = std::chrono::duration<double>(now - bucket.refreshed).count();
  bucket.tokens = std::min(burst, bucket.tokens + elapsed * rate);
  bucket.refreshed = now;
  if (bucket.tokens >= double(bytes)) {
    bucket.tokens -= double(bytes);
    return true;
  }
  double wait = rate > 0 ? (double(bytes) - bucket.tokens) / rate : 60;
  retry_after = std::chrono::seconds(std::max<int64_t>(1, int64_t(std::ceil(wait))));
  return false;
}

void Distributor::Push(const std::string& tenant, std::string_view body, Encoding encoding,
                       std::function<void(PushReply)> done, Sender sender) {
  requests_received_.Add();
  bytes_received_.Add(body.size());
  auto refuse = [&](const std::string& reason, Status status, std::chrono::seconds retry_after = {}) {
    CountRefused(reason, body.size());
    if (retry_after.count() > 0 && options_.retry_after_on_resource_exhausted.count() > 0)
      retry_after = options_.retry_after_on_resource_exhausted;
    done(PushReply{std::move(status), 0, {}, retry_after});
  };
  uint64_t rate_limit = options_.rate_limit_bytes, burst_size = options_.burst_size_bytes;
  if (options_.limits) {
    TenantLimits limits = options_.limits->For(tenant);
    rate_limit = limits.rate_limit_bytes;
    burst_size = limits.burst_size_bytes;
  }
  if (body.size() > options_.max_request_bytes)
    return refuse("too_large", Status::TooLarge("request of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                                                std::to_string(options_.max_request_bytes)));
  if (body.size() > burst_size && body.size() > rate_limit)
    return refuse("too_large", Status::TooLarge("request is larger than the tenant's burst size"));
  uint64_t inflight = inflight_bytes_.fetch_add(body.size()) + body.size();
  auto release = [this, size = body.size()] { inflight_bytes_.fetch_sub(size); };
  if (inflight > options_.max_inflight_bytes) {
    release();
    return refuse("inflight_limit", Status::ResourceExhausted("too many bytes in flight; retry later"), std::chrono::seconds(1));
  }
  if (ingester_.OverMemoryLimit()) {
    release();
    return refuse("ingester_memory_limit",
                  Status::ResourceExhausted("the ingester's live-trace index is at ingester.max_live_bytes; retry later"),
                  std::chrono::seconds(1));
  }
  std::chrono::seconds retry_after{0};
  if (!TakeTokens(tenant, body.size(), double(rate_limit), double(burst_size), retry_after)) {
    release();
    return refuse("rate_limited",
                  Status::ResourceExhausted("tenant " + tenant + " is over its ingestion rate limit (" +
                                            std::to_string(rate_limit) + " bytes/s)"),
                  retry_after);
  }

  otlp::SplitRequest split;
  Status status;
  std::string encoded;  // JSON requests are kept (and logged) as their protobuf encoding
  std::string_view request = body;
  if (encoding == Encoding::kJson) {
    otlp::TracesData data;
    status = otlp::ParseJsonRequest(body, data);
    if (status.ok()) {
      encoded = otlp::EncodeTracesData(data);
      request = encoded;
    }
  }
  if (status.ok()) status = otlp::SplitByTrace(request, split);
  if (!status.ok()) {
    release();
    return refuse("invalid", status);
  }
  spans_received_.Add(split.span_count);
  // Only a gateway trusts the marker, and all it does is skip a forward: every span of the
  // request is stored here, as a gateway without peers would store it.
  bool from_peer = options_.route && sender == Sender::kPeerGateway;
  if (from_peer) CountFromPeer(split);
  if (options_.route && !from_peer) {
    // A gateway: traces owned by another gateway go there first; the answer waits for them.
    struct Routed {
      otlp::SplitRequest split;
      std::string encoded;
      std::vector<bool> local;
    };
    auto routed = std::make_shared<Routed>();
    routed->encoded = std::move(encoded);
    if (!routed->encoded.empty()) status = otlp::SplitByTrace(routed->encoded, routed->split);
    else routed->split = std::move(split);
    routed->local.assign(routed->split.fragments.size(), true);
    Routed& ref = *routed;
    options_.route(tenant, ref.split, ref.local,
                   [this, routed, tenant, release, done = std::move(done)](Status forwarded) mutable {
                     if (!forwarded.ok()) {
                       release();
                       CountRefused("peer_unavailable", 0);
                       done(PushReply{Status::Unavailable("a peer gateway did not take its traces: " + forwarded.message()), 0, {}, {}});
                       return;
                     }
                     auto local = std::make_shared<otlp::SplitRequest>(LocalPart(routed->split, routed->local));
                     ingester_.Push(tenant, *local, [routed, local, release, done = std::move(done)](ingester::PushOutcome outcome) {
                       release();
                       done(PushReply{std::move(outcome.status), outcome.rejected_spans, std::move(outcome.rejected_reason), {}});
                     });
                   });
    return;
  }
  auto reply = [done = std::move(done), release](ingester::PushOutcome outcome) {
    release();
    done(PushReply{std::move(outcome.status), outcome.rejected_spans, std::move(outcome.rejected_reason), {}});
  };
  if (options_.log_received_spans.enabled) LogSpans(options_.log_received_spans, "received", tenant, split, nullptr, false);
  std::vector<bool> sampled_out;
  std::vector<bool> accepted = ingester_.Push(tenant, split, std::move(reply), &sampled_out);
  if (options_.log_discarded_spans.enabled && std::find(accepted.begin(), accepted.end(), false) != accepted.end())
    LogSpans(options_.log_discarded_spans, "discarded", tenant, split, &accepted, true);
  // The generator sees every accepted span, before sampling (late spans of dropped traces
  // too); its exemplars point only at traces that are stored.
  if (generator_) {
    for (size_t i = 0; i < accepted.size() && i < sampled_out.size(); ++i) accepted[i] = accepted[i] && sampled_out[i];
    generator_->Consume(tenant, split, accepted);
  }
}

// One logfmt line per span, as Tempo's distributor writes them (msg, spanid, traceid, and with
// include_all_attributes the span's name, kind, status and duration). At most 1000 lines a
// second, so that logging cannot slow ingest down; past it lines are counted, not written.
void Distributor::LogSpans(const Options::SpanLog& log, const char* message, const std::string& tenant,
                           const otlp::SplitRequest& split, const std::vector<bool>* accepted_fragments, bool) {
  static const char* kKinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                 "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
  static const char* kStatus[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
  auto hex = [](std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
    return out;
  };
  for (const auto& span : split.spans) {
    if (accepted_fragments && (*accepted_fragments)[span.fragment_index]) continue;
    if (log.filter_by_status_error && span.status_code != 2) continue;
    int64_t second = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (log_second_.exchange(second) != second) log_lines_this_second_ = 0;
    if (log_lines_this_second_.fetch_add(1) >= 1000) {
      metrics_.GetCounter("tracery_distributor_span_log_lines_dropped_total",
                          "Span log lines (log_received_spans / log_discarded_spans) not written: over 1000 a second.")
          .Add();
      continue;
    }
    std::string line = std::string("msg=") + message + " spanid=" + hex(span.span_id) +
                       " traceid=" + split.fragments[span.fragment_index].trace_id.Hex() + " tenant=" + tenant;
    if (log.include_all_attributes) {
      double seconds = span.end_unix_nano > span.start_unix_nano ? double(span.end_unix_nano - span.start_unix_nano) / 1e9 : 0;
      std::string name(span.name);
      for (char& c : name) if (c == '"') c = '\'';
      line += " span_name=\"" + name + "\" span_duration_seconds=" + std::to_string(seconds) +
              " span_kind=" + (span.kind < 6 ? kKinds[span.kind] : "SPAN_KIND_UNSPECIFIED") +
              " span_status=" + (span.status_code < 3 ? kStatus[span.status_code] : "STATUS_CODE_UNSET");
    }
    spdlog::info("{}", line);
  }
}

otlp::SplitRequest Distributor::LocalPart(const otlp::SplitRequest& split, const std::vector<bool>& local) {
  otlp::SplitRequest out;
  std::vector<uint32_t> index(split.fragments.size(), UINT32_MAX);
  for (size_t i = 0; i < split.fragments.size(); ++i) {
    if (i >= local.size() || !local[i]) continue;
    index[i] = uint32_t(out.fragments.size());
    out.fragments.push_back(split.fragments[i]);
  }
  out.resources = split.resources;
  for (const auto& span : split.spans) {
    if (span.fragment_index >= index.size() || index[span.fragment_index] == UINT32_MAX) continue;
    out.spans.push_back(span);
    out.spans.back().fragment_index = index[span.fragment_index];
  }
  out.span_count = out.spans.size();
  return out;
}

}  // namespace tracery::distributor
