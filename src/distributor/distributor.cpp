#include "distributor/distributor.h"

#include <cmath>

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
}

void Distributor::CountRefused(const std::string& reason, uint64_t bytes) {
  metrics_.GetCounter("tracery_distributor_requests_refused_total", "Requests refused, by reason.", {{"reason", reason}}).Add();
  metrics_.GetCounter("tracery_distributor_bytes_refused_total", "Bytes of requests refused, by reason.", {{"reason", reason}})
      .Add(bytes);
}

bool Distributor::TakeTokens(const std::string& tenant, uint64_t bytes, std::chrono::seconds& retry_after) {
  auto now = std::chrono::steady_clock::now();
  double rate = double(options_.rate_limit_bytes), burst = double(std::max(options_.burst_size_bytes, options_.rate_limit_bytes));
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
                       std::function<void(PushReply)> done) {
  requests_received_.Add();
  bytes_received_.Add(body.size());
  auto refuse = [&](const std::string& reason, Status status, std::chrono::seconds retry_after = {}) {
    CountRefused(reason, body.size());
    done(PushReply{std::move(status), 0, {}, retry_after});
  };
  if (body.size() > options_.max_request_bytes)
    return refuse("too_large", Status::TooLarge("request of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                                                std::to_string(options_.max_request_bytes)));
  if (body.size() > options_.burst_size_bytes && body.size() > options_.rate_limit_bytes)
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
  if (!TakeTokens(tenant, body.size(), retry_after)) {
    release();
    return refuse("rate_limited",
                  Status::ResourceExhausted("tenant " + tenant + " is over its ingestion rate limit (" +
                                            std::to_string(options_.rate_limit_bytes) + " bytes/s)"),
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
  auto reply = [done = std::move(done), release](ingester::PushOutcome outcome) {
    release();
    done(PushReply{std::move(outcome.status), outcome.rejected_spans, std::move(outcome.rejected_reason), {}});
  };
  std::vector<bool> accepted = ingester_.Push(tenant, split.fragments, std::move(reply));
  // The generator sees every accepted request, before sampling; its exemplars point only at
  // traces that were stored.
  if (generator_) generator_->Consume(tenant, split, accepted);
}

}  // namespace tracery::distributor
