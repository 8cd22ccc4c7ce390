// Request bodies for the HTTP ingest formats loadgen can send besides OTLP/gRPC (Zipkin v2
// JSON, Jaeger Thrift), kept as bytes plus where their trace IDs and timestamps sit, so that
// a send only copies the bytes and patches those fields in place, as request_template.h does
// for OTLP.
//
// In-place patching needs fields whose length never changes:
// - Zipkin JSON: a trace ID is 32 hex digits; a timestamp is microseconds since the epoch as a
//   16-digit decimal (true from 2001 to 2286), so a later time has as many digits.
// - Jaeger Thrift: traceIdLow and traceIdHigh are i64 fields written next to each other (the
//   offset is traceIdLow's value; traceIdHigh's value follows its 3-byte field header),
//   timestamps are big-endian i64 microseconds.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "loadgen/request_template.h"

namespace tracery::bench {

enum class HttpFormat { kZipkinJson, kJaegerThrift };

struct HttpBody {
  std::string encoded;
  // (trace index within the group, offset of one copy of that trace's ID), one per span.
  std::vector<std::pair<uint32_t, uint32_t>> trace_id_offsets;
  std::vector<uint32_t> timestamp_offsets;  // span starts and annotation / log times
  size_t span_count = 0;
};

// The bodies that carry one pool request's spans: one for Zipkin (a span names its own
// service), one per service instance for Jaeger (a Batch has one Process).
struct HttpRequestGroup {
  std::vector<HttpBody> bodies;
  size_t trace_count = 0;
  size_t span_count = 0;
  uint64_t generated_at_unix_ns = 0;
};

// Numbers the distinct trace IDs of a group in order of first appearance; the number is the
// index into the IDs a send hands out.
class TraceNumbering {
 public:
  uint32_t IndexOf(const std::string& trace_id) {
    return numbers_.try_emplace(trace_id, static_cast<uint32_t>(numbers_.size())).first->second;
  }
  size_t size() const { return numbers_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> numbers_;
};

// Writes `body` into `destination` (body.encoded.size() bytes) with trace i of the group given
// `trace_ids[i]` and every timestamp moved forward by `shift_ns` (rounded down to µs).
void PatchHttpBody(HttpFormat format, const HttpBody& body, const std::vector<TraceId>& trace_ids,
                   uint64_t shift_ns, char* destination);

}  // namespace tracery::bench
