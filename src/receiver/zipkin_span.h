// Private to the Zipkin receiver: Zipkin's v2 span model as read off the wire, and the three
// readers that produce it (v2 JSON, zipkin.proto3, v1 JSON converted to v2). The mapping to
// OTLP (zipkin.cpp) works on this model only, so every format gets the same rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tracery::receiver::zipkin {

struct Endpoint {
  std::string service_name;
  std::string ipv4;  // textual ("10.0.0.1"), empty when absent
  std::string ipv6;  // textual ("2001:db8::1"), empty when absent
  int32_t port = 0;  // only a positive port is mapped
};

struct Annotation {
  uint64_t timestamp_nanos = 0;
  std::string value;
};

enum class Kind { kUnspecified, kClient, kServer, kProducer, kConsumer };

struct Span {
  std::string trace_id;   // 16 raw bytes (64-bit IDs left-padded with zeros)
  std::string id;         // 8 raw bytes
  std::string parent_id;  // empty or 8 raw bytes
  std::string name;
  Kind kind = Kind::kUnspecified;
  uint64_t timestamp_nanos = 0;  // 0: absent
  uint64_t duration_nanos = 0;
  bool has_local_endpoint = false, has_remote_endpoint = false;
  Endpoint local_endpoint, remote_endpoint;
  std::vector<Annotation> annotations;
  // In the order received. A key may repeat (a JSON object or proto map may repeat one);
  // the mapping keeps its last value, as a proto3 map would.
  std::vector<std::pair<std::string, std::string>> tags;
  bool debug = false, shared = false;  // read and checked; OTLP has no place for them
};

// Shared by the readers: an error about `where` ("spans[3].traceId"), and a span's name in them.
inline Status Invalid(const std::string& where, const std::string& what) {
  return Status::InvalidArgument(where + " " + what);
}
inline std::string SpanWhere(size_t index) { return "spans[" + std::to_string(index) + "]"; }
inline bool AllZero(std::string_view bytes) {
  for (char c : bytes)
    if (c != 0) return false;
  return true;
}

Status ReadJsonV2(std::string_view body, std::vector<Span>& out);      // zipkin_read.cpp
Status ReadProto3(std::string_view body, std::vector<Span>& out);      // zipkin_proto.cpp
// v1 spans (annotations cs/sr/ss/cr/ms/mr, binaryAnnotations) converted to the v2 model.
Status ReadJsonV1(std::string_view body, std::vector<Span>& out);

}  // namespace tracery::receiver::zipkin
