// An encoded ExportTraceServiceRequest kept as bytes, plus where its trace IDs and
// timestamps sit inside those bytes. Replaying a template means copying the bytes and
// overwriting those fields in place: every send carries new trace IDs and current times
// without generating or re-encoding anything, so the load generator costs the 2-core test
// machine little CPU next to the server it measures.
//
// Patching in place is safe because trace IDs are always 16 bytes and timestamps are
// fixed64 in OTLP: new values never change a field's length.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tracery::bench {

using TraceId = std::array<uint8_t, 16>;

struct RequestTemplate {
  std::string encoded;
  // For each distinct trace in the request, the offsets of every copy of its 16-byte ID
  // (one per span: Span.trace_id).
  std::vector<std::vector<uint32_t>> trace_id_offsets;
  // Offsets of every fixed64 timestamp: span start and end, event times.
  std::vector<uint32_t> timestamp_offsets;
  size_t span_count = 0;
  uint64_t generated_at_unix_ns = 0;
};

// Walks the OTLP wire format of `encoded` (request > resource spans > scope spans > span >
// event) and records the field offsets. Fails on bytes that are not a well-formed request.
bool IndexRequest(std::string encoded, uint64_t generated_at_unix_ns, RequestTemplate& result,
                  std::string& error);

// Hands out trace IDs that never repeat within a run and look uniformly random, as real
// ones do (servers shard and index by them). `salt` differs per run so that two runs
// against the same data directory do not collide.
class TraceIdSequence {
 public:
  explicit TraceIdSequence(uint64_t salt) : salt_(salt) {}
  TraceId Next(uint64_t number) const;

 private:
  uint64_t salt_;
};

// Writes `request` into `destination` (request.encoded.size() bytes) with trace i of the
// template given ID ids.Next(first_trace_number + i) and every timestamp moved forward by
// `shift_ns`. Appends the IDs used to `trace_ids`.
void PatchRequest(const RequestTemplate& request, const TraceIdSequence& ids,
                  uint64_t first_trace_number, uint64_t shift_ns, uint8_t* destination,
                  std::vector<TraceId>& trace_ids);

std::string HexOf(const TraceId& id);

}  // namespace tracery::bench
