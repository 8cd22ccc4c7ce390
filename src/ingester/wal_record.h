// The ingester's WAL records (docs/wal-format.md). Version 3, the one written, lists each
// trace's fragment with the summary the ingester keeps in memory, so that replay rebuilds the
// live-trace index without parsing a span, and each fragment's bytes can be read back alone
// from where they lie in the log. Versions 1 and 2 (written by earlier releases) are read at
// replay and written again as version 3.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "otlp/split.h"

namespace tracery::ingester {

constexpr uint8_t kFragmentsRecordV1 = 1;
constexpr uint8_t kRequestRecordV2 = 2;
constexpr uint8_t kIndexedRecordV3 = 3;
// Tail sampling's decisions (and pins), so that a restart continues them: replay applies them
// where they lie in the log, after the fragments they decided.
constexpr uint8_t kDecisionsRecord = 4;

enum class Decision : uint8_t { kDropped = 1, kKept = 2, kPinned = 3, kUnpinned = 4 };
struct RecordDecision {
  TraceId trace_id;
  Decision decision = Decision::kKept;
};
// u8 4, tenant (varint length + bytes), varint count, then per decision: 16-byte trace ID, u8.
std::string EncodeDecisions(std::string_view tenant, const std::vector<RecordDecision>& decisions);
bool DecodeDecisions(std::string_view payload, std::string_view& tenant, std::vector<RecordDecision>& decisions);

// One fragment of a version-3 record: its summary and where its bytes lie in the payload.
struct RecordFragment {
  TraceId trace_id;
  uint32_t span_count = 0;
  bool has_error = false, has_root = false;
  uint64_t min_start_unix_nano = 0, max_end_unix_nano = 0;
  uint64_t offset = 0;  // of the fragment's bytes, from the start of the payload
  uint32_t length = 0;
};

// Builds a WAL record buffer (wal::NewRecordBuffer) holding a version-3 payload, and fills
// `layout` with each fragment's summary and offset within the payload.
std::string EncodeRecord(std::string_view tenant, const std::vector<const otlp::TraceFragment*>& fragments,
                         std::vector<RecordFragment>& layout);

// Reads a version-3 payload without copying: its tenant (a view into it) and its fragments.
bool DecodeRecord(std::string_view payload, std::string_view& tenant, std::vector<RecordFragment>& fragments);

// Reads a version-1 or version-2 payload into fragments (with their bytes), to be written again.
bool DecodeLegacyRecord(std::string_view payload, std::string& tenant, std::vector<otlp::TraceFragment>& fragments);

inline uint8_t RecordVersion(std::string_view payload) { return payload.empty() ? 0 : uint8_t(payload[0]); }

}  // namespace tracery::ingester
