#include "loadgen/request_pool.h"

#include <map>
#include <tuple>

#include "loadgen/span_vocabulary.h"
#include "loadgen/trace_generator.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::bench {
namespace {

using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::resource::v1::Resource;
using opentelemetry::proto::trace::v1::ResourceSpans;
using opentelemetry::proto::trace::v1::ScopeSpans;
using opentelemetry::proto::trace::v1::Status;

void AddResourceString(Resource& resource, std::string_view key, std::string_view value) {
  KeyValue* attribute = resource.add_attributes();
  attribute->set_key(std::string(key));
  attribute->mutable_value()->set_string_value(std::string(value));
}

// Kubernetes-style pod name: stable per service instance, so the same few hosts recur.
std::string PodName(std::string_view service, int instance) {
  constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  uint64_t bits = std::hash<std::string_view>{}(service) * 31 + instance;
  std::string suffix;
  for (int i = 0; i < 5; ++i) {
    suffix.push_back(kAlphabet[bits % kAlphabet.size()]);
    bits /= kAlphabet.size();
  }
  return std::string(service) + "-7c9f8d6b5-" + suffix;
}

void FillResource(int service_index, int instance, Resource& resource) {
  const ServiceDescription& service = Services()[service_index];
  const std::string pod = PodName(service.name, instance);
  AddResourceString(resource, "service.name", service.name);
  AddResourceString(resource, "service.namespace", "shop");
  AddResourceString(resource, "service.version", service.version);
  AddResourceString(resource, "service.instance.id", pod);
  AddResourceString(resource, "host.name", pod);
  AddResourceString(resource, "deployment.environment", kDeploymentEnvironment);
  AddResourceString(resource, "telemetry.sdk.name", "opentelemetry");
  AddResourceString(resource, "telemetry.sdk.language", SdkLanguageName(service.language));
  AddResourceString(resource, "telemetry.sdk.version", SdkVersion(service.language));
}

// Groups the spans of whole traces into one request: resource per service instance, scope
// per instrumentation library, spans in generation order inside each scope.
ExportTraceServiceRequest GroupIntoRequest(std::vector<GeneratedSpan>& spans) {
  using ResourceKey = std::pair<int, int>;  // service, instance
  std::map<ResourceKey, ResourceSpans*> resources;
  std::map<std::tuple<int, int, ScopeCategory>, ScopeSpans*> scopes;
  ExportTraceServiceRequest request;
  for (GeneratedSpan& generated : spans) {
    const ResourceKey resource_key{generated.service, generated.instance};
    ResourceSpans*& resource_spans = resources[resource_key];
    if (resource_spans == nullptr) {
      resource_spans = request.add_resource_spans();
      FillResource(generated.service, generated.instance, *resource_spans->mutable_resource());
    }
    ScopeSpans*& scope_spans =
        scopes[std::tuple(generated.service, generated.instance, generated.scope)];
    if (scope_spans == nullptr) {
      scope_spans = resource_spans->add_scope_spans();
      const ScopeDescription scope =
          ScopeFor(Services()[generated.service].language, generated.scope);
      scope_spans->mutable_scope()->set_name(std::string(scope.name));
      scope_spans->mutable_scope()->set_version(std::string(scope.version));
    }
    *scope_spans->add_spans() = std::move(generated.span);
  }
  return request;
}

}  // namespace

bool BuildRequestPool(const PoolOptions& options, uint64_t now_unix_ns, RequestPool& pool,
                      std::string& error) {
  TraceGenerator generator(options.seed, options.max_spans_per_trace);
  std::vector<GeneratedSpan> spans;
  pool.requests.reserve(options.request_count);
  for (int request_index = 0; request_index < options.request_count; ++request_index) {
    spans.clear();
    uint64_t traces = 0;
    while (static_cast<int>(spans.size()) < options.spans_per_request) {
      generator.AppendTrace(now_unix_ns, spans);
      ++traces;
    }
    for (const GeneratedSpan& generated : spans) {
      if (generated.span.status().code() == Status::STATUS_CODE_ERROR) {
        ++pool.summary.error_spans;
      }
      if (generated.span.events_size() > 0) ++pool.summary.spans_with_events;
    }
    const ExportTraceServiceRequest request = GroupIntoRequest(spans);
    RequestTemplate indexed;
    if (!IndexRequest(request.SerializeAsString(), now_unix_ns, indexed, error)) return false;
    if (indexed.span_count != spans.size() || indexed.trace_id_offsets.size() != traces) {
      error = "request " + std::to_string(request_index) + ": indexer found " +
              std::to_string(indexed.span_count) + " spans in " +
              std::to_string(indexed.trace_id_offsets.size()) + " traces, generated " +
              std::to_string(spans.size()) + " in " + std::to_string(traces);
      return false;
    }
    pool.summary.requests += 1;
    pool.summary.traces += traces;
    pool.summary.spans += spans.size();
    pool.summary.encoded_bytes += indexed.encoded.size();
    pool.requests.push_back(std::move(indexed));
  }
  return true;
}

}  // namespace tracery::bench
