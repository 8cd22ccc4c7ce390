// Test helpers for src/sampling: crafted traces built with the protobuf classes generated from
// the OTLP protos (an independent encoder), summarised through the splitter and the matcher as
// the ingester will, and decided with a manual clock.
// Test suites are named Tailsampling* (after the Collector's tailsamplingprocessor) so that
// `ctest -R sampling` selects them.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/fault_env.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/split.h"
#include "sampling/sampler.h"

namespace tracery::sampling::testing {

namespace pbc = opentelemetry::proto::common::v1;
namespace pbt = opentelemetry::proto::trace::v1;
using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// Random-looking IDs, as W3C trace IDs are: the probabilistic policy's FNV-1a hash spreads
// them evenly, but not IDs that differ only in their last bytes.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline std::string TraceIdBytes(uint64_t n) {
  std::string id(16, '\0');
  uint64_t high = SplitMix64(n), low = SplitMix64(~n);
  for (int i = 0; i < 8; ++i) {
    id[i] = char(high >> (8 * i));
    id[8 + i] = char(low >> (8 * i));
  }
  return id;
}
inline TraceId TraceIdOf(uint64_t n) { return TraceId::FromBytes(TraceIdBytes(n)); }

inline void Put(google::protobuf::RepeatedPtrField<pbc::KeyValue>* attributes, const std::string& key,
                const std::string& value) {
  auto* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}
inline void PutInt(google::protobuf::RepeatedPtrField<pbc::KeyValue>* attributes, const std::string& key, int64_t v) {
  auto* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(v);
}
inline void PutBool(google::protobuf::RepeatedPtrField<pbc::KeyValue>* attributes, const std::string& key, bool v) {
  auto* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_bool_value(v);
}
inline void PutDouble(google::protobuf::RepeatedPtrField<pbc::KeyValue>* attributes, const std::string& key, double v) {
  auto* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_double_value(v);
}

// One trace, spans added under the current resource; times in milliseconds from a fixed base.
class TraceBuilder {
 public:
  explicit TraceBuilder(uint64_t trace_number = 1) : trace_id_(TraceIdBytes(trace_number)) { Resource("svc"); }

  // Starts a new ResourceSpans whose service.name is `service`.
  opentelemetry::proto::resource::v1::Resource& Resource(const std::string& service) {
    auto* resource_spans = request_.add_resource_spans();
    Put(resource_spans->mutable_resource()->mutable_attributes(), "service.name", service);
    scope_ = resource_spans->add_scope_spans();
    return *resource_spans->mutable_resource();
  }
  pbt::Span& Span(uint64_t start_ms, uint64_t end_ms, int status = 0) {
    auto* span = scope_->add_spans();
    span->set_trace_id(trace_id_);
    std::string span_id(8, '\0');
    span_id[0] = 0x51;
    span_id[7] = char(++spans_);
    span_id[6] = char(spans_ >> 8);
    span->set_span_id(span_id);
    if (spans_ > 1) span->set_parent_span_id(std::string(7, '\0') + "\x01");
    span->set_name("op");
    span->set_start_time_unix_nano(kBaseNanos + start_ms * 1'000'000);
    span->set_end_time_unix_nano(kBaseNanos + end_ms * 1'000'000);
    if (status) span->mutable_status()->set_code(pbt::Status::StatusCode(status));
    return *span;
  }
  const Request& request() const { return request_; }
  TraceId id() const { return TraceId::FromBytes(trace_id_); }

  static constexpr uint64_t kBaseNanos = 1'700'000'000'000'000'000ull;

 private:
  std::string trace_id_;
  Request request_;
  pbt::ScopeSpans* scope_ = nullptr;
  int spans_ = 0;
};

// The summary the ingester would hold for the request's (single) trace.
inline TraceSummary Summarize(const PolicySet& policies, const Request& request) {
  std::string encoded = request.SerializeAsString();
  otlp::SplitRequest split;
  Status status = otlp::SplitByTrace(encoded, split);
  EXPECT_TRUE(status.ok()) << status.ToString();
  std::vector<TraceSummary> per_fragment(split.fragments.size());
  policies.matcher().ObserveRequest(split, per_fragment);
  TraceSummary whole;
  for (const auto& part : per_fragment) whole.Merge(part);
  return whole;
}

inline PolicySet MustParse(const std::string& yaml) {
  auto policies = ParseTailSampling(YAML::Load(yaml)["tail_sampling"], "test.yaml");
  EXPECT_TRUE(policies.ok()) << policies.status().ToString() << "\n" << yaml;
  if (!policies.ok()) std::abort();
  return std::move(policies).value();
}

// A decision engine on a manual clock.
struct Decider {
  explicit Decider(const std::string& yaml) : engine(MustParse(yaml), env) { env.UseManualClock(kStartNanos); }
  TraceDecision Decide(const TraceBuilder& trace) {
    return engine.Decide(trace.id(), Summarize(engine.policies(), trace.request()));
  }
  bool Sampled(const TraceBuilder& trace) { return Decide(trace).sampled; }

  static constexpr int64_t kStartNanos = 1'700'000'000'500'000'000;  // half way through a second
  FaultInjectionEnv env;
  DecisionEngine engine;
};

}  // namespace tracery::sampling::testing
