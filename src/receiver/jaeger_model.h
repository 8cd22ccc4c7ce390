// Private to src/receiver: the Jaeger span model the decoders fill (Thrift and protobuf alike,
// one span at a time, tag values already as OTLP values) and its mapping to OTLP (jaeger.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "otlp/model.h"
#include "receiver/jaeger.h"

namespace tracery::receiver::jaeger {

enum RefType : int32_t { kChildOf = 0, kFollowsFrom = 1 };

struct Reference {
  int32_t type = kChildOf;
  uint64_t trace_high = 0, trace_low = 0, span_id = 0;
};

struct Log {
  uint64_t time_unix_nano = 0;
  otlp::Attributes fields;
};

struct Span {
  uint64_t trace_high = 0, trace_low = 0, span_id = 0;
  uint64_t parent_span_id = 0;  // Thrift only; protobuf spans name their parent in references
  std::string_view operation_name;
  std::vector<Reference> references;
  uint32_t flags = 0;
  uint64_t start_unix_nano = 0, end_unix_nano = 0;
  otlp::Attributes tags;
  std::vector<Log> logs;
  size_t items = 0;  // tags, logs, log fields, references: bounded by kJaegerMaxItemsPerSpan

  bool Blank() const;
};

struct Process {
  bool present = false;
  std::string_view service_name;
  otlp::Attributes tags;
};

otlp::AnyValue StringValue(std::string_view s);

// The encoded OTLP Resource of a process.
std::string EncodeProcess(const Process& process);

// Collects mapped spans by resource (an encoded Resource) and scope; writes the request.
class RequestBuilder {
 public:
  // Maps `span` (consuming its tags and logs) and adds it; an all-empty span is skipped, as
  // the Collector does. `index` names the span in errors.
  Status AddSpan(Span& span, size_t index, const std::string& resource);
  JaegerConversion Finish() const;

 private:
  struct ScopeGroup {
    otlp::Scope scope;
    std::string spans;  // encoded ScopeSpans.spans fields
  };
  struct ResourceGroup {
    std::string resource;
    std::vector<ScopeGroup> scopes;
    std::unordered_map<std::string, size_t> scope_index;
  };
  std::vector<ResourceGroup> groups_;
  std::unordered_map<std::string, size_t> resource_index_;
  size_t spans_ = 0;
};

}  // namespace tracery::receiver::jaeger
