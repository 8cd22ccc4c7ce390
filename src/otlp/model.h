// The OTLP trace data model as plain structs, used off the hot path: when a block is cut,
// when a trace is read back, and by the JSON mapping. The ingest path never builds these; it
// works on the encoded bytes (see split.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tracery::otlp {

struct KeyValue;

struct AnyValue {
  enum class Type : uint8_t { kEmpty = 0, kString, kBool, kInt, kDouble, kArray, kKvList, kBytes };
  Type type = Type::kEmpty;
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0;
  std::string string_value;  // kString and kBytes
  std::vector<AnyValue> array_values;
  std::vector<KeyValue> kvlist_values;

  bool operator==(const AnyValue&) const;
};

struct KeyValue {
  std::string key;
  AnyValue value;
  bool operator==(const KeyValue&) const = default;
};

using Attributes = std::vector<KeyValue>;

struct Resource {
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  bool operator==(const Resource&) const = default;
};

struct Scope {
  std::string name;
  std::string version;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  bool operator==(const Scope&) const = default;
};

struct Event {
  uint64_t time_unix_nano = 0;
  std::string name;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  bool operator==(const Event&) const = default;
};

struct Link {
  std::string trace_id;  // 16 raw bytes
  std::string span_id;   // 8 raw bytes
  std::string trace_state;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  uint32_t flags = 0;
  bool operator==(const Link&) const = default;
};

enum class SpanKind : uint8_t { kUnspecified = 0, kInternal, kServer, kClient, kProducer, kConsumer };
enum class StatusCode : uint8_t { kUnset = 0, kOk, kError };

struct Span {
  std::string trace_id;  // 16 raw bytes
  std::string span_id;   // 8 raw bytes
  std::string trace_state;
  std::string parent_span_id;  // empty or 8 raw bytes
  uint32_t flags = 0;
  std::string name;
  SpanKind kind = SpanKind::kUnspecified;
  uint64_t start_time_unix_nano = 0;
  uint64_t end_time_unix_nano = 0;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  std::vector<Event> events;
  uint32_t dropped_events_count = 0;
  std::vector<Link> links;
  uint32_t dropped_links_count = 0;
  std::string status_message;
  StatusCode status_code = StatusCode::kUnset;
  bool operator==(const Span&) const = default;
};

struct ScopeSpans {
  Scope scope;
  std::vector<Span> spans;
  std::string schema_url;
};

struct ResourceSpans {
  Resource resource;
  std::vector<ScopeSpans> scope_spans;
  std::string schema_url;
};

// TracesData and ExportTraceServiceRequest share this shape (field 1: resource_spans).
struct TracesData {
  std::vector<ResourceSpans> resource_spans;
  size_t SpanCount() const;
};

// Protobuf wire format (decode.cpp / encode.cpp).
Status DecodeTracesData(std::string_view bytes, TracesData& out);
Status DecodeResource(std::string_view bytes, Resource& out);
Status DecodeScope(std::string_view bytes, Scope& out);
Status DecodeAttributes(std::string_view bytes, Attributes& out);  // a run of KeyValue records
std::string EncodeTracesData(const TracesData& data);
void EncodeResource(const Resource& resource, std::string& out);
void EncodeScope(const Scope& scope, std::string& out);
void EncodeAttributes(const Attributes& attributes, std::string& out);  // as a run of KeyValue records
void EncodeSpan(const Span& span, std::string& out);                   // the body of one Span message

const char* SpanKindName(SpanKind kind);      // "SPAN_KIND_SERVER"
const char* StatusCodeName(StatusCode code);  // "STATUS_CODE_ERROR"

}  // namespace tracery::otlp
