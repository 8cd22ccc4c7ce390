// The ingest hot path's only look inside a request: validate it, and regroup its spans by
// trace without decoding them into objects. Each span's encoded bytes are copied once into a
// per-trace fragment, itself an encoded run of TracesData.resource_spans fields, so fragments
// of one trace concatenate into a valid TracesData message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace tracery::otlp {

struct TraceFragment {
  TraceId trace_id;
  uint32_t span_count = 0;
  uint64_t min_start_unix_nano = UINT64_MAX;
  uint64_t max_end_unix_nano = 0;
  bool has_error = false;  // a span with status ERROR
  bool has_root = false;   // a span without a parent
  std::string bytes;  // encoded `repeated ResourceSpans resource_spans = 1` fields
};

// A few fields of each span, read in passing, for the metrics generator and limits.
struct SpanSummary {
  uint32_t fragment_index;  // which TraceFragment the span went to
  uint32_t resource_index;  // ordinal of its ResourceSpans in the request
  std::string_view span_id, parent_span_id, name;
  uint8_t kind = 0, status_code = 0;
  uint64_t start_unix_nano = 0, end_unix_nano = 0;
  std::string_view encoded;  // the span message, a view into the request
};

struct SplitRequest {
  std::vector<TraceFragment> fragments;
  std::vector<SpanSummary> spans;
  std::vector<std::string_view> resources;  // encoded Resource message of each ResourceSpans
  size_t span_count = 0;
  void Clear();
};

// Splits an encoded ExportTraceServiceRequest (or TracesData). Fails with InvalidArgument,
// naming what was wrong, on malformed protobuf or invalid IDs (trace ID not 16 bytes or all
// zero, span ID not 8 bytes or zero, parent ID neither empty nor 8 bytes, a string that is not
// valid UTF-8: the whole request is refused, as protobuf runtimes that check proto3 strings
// refuse it). On failure `out`
// holds nothing usable and nothing may be stored.
Status SplitByTrace(std::string_view request, SplitRequest& out);

// Checks that bytes are a well-formed encoded message of the given OTLP type, deeply.
enum class MessageType { kTracesData, kResourceSpans, kResource, kScopeSpans, kScope, kSpan, kEvent, kLink, kStatus,
                         kKeyValue, kAnyValue, kArrayValue, kKeyValueList };
// Strings (proto3 `string` fields) must be valid UTF-8; `bad_text` is set when that is why
// the bytes are refused.
bool IsWellFormed(std::string_view bytes, MessageType type, int depth = 0, bool* bad_text = nullptr);

}  // namespace tracery::otlp
