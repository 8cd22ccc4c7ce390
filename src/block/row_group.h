// A row group: the spans of consecutive traces (sorted by trace ID) stored as columns, each
// column chunk zstd-compressed on its own. Layout in docs/block-format.md.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "otlp/model.h"

namespace tracery::block {

// What the index keeps of each row group, for pruning without reading it.
struct RowGroupStats {
  uint64_t offset = 0, size = 0;  // within the data object
  uint32_t trace_count = 0, span_count = 0;
  uint64_t min_start_unix_nano = UINT64_MAX, max_end_unix_nano = 0, max_duration_nano = 0;
  std::set<std::string> services;
  std::set<std::string> attribute_keys;  // span attribute keys
};

class RowGroupBuilder {
 public:
  explicit RowGroupBuilder(int zstd_level) : zstd_level_(zstd_level) {}
  // Adds one trace: every span of `trace` must carry `id`.
  void AddTrace(const TraceId& id, const otlp::TracesData& trace);
  uint32_t span_count() const { return stats_.span_count; }
  uint32_t trace_count() const { return stats_.trace_count; }
  // Encodes the row group and resets the builder for the next one.
  std::string Finish(RowGroupStats& stats);

 private:
  void Reset();
  uint32_t Intern(std::string_view text);
  void AddAttributes(int set, const otlp::Attributes& attributes);

  int zstd_level_;
  RowGroupStats stats_;
  std::vector<std::string> columns_;
  std::vector<std::string> dictionary_;
  std::unordered_map<std::string, uint32_t> dictionary_index_;
  std::vector<std::pair<std::string, std::string>> resources_, scopes_;  // encoded, schema url
  uint64_t previous_trace_start_ = 0;
};

// Decodes the trace at `ordinal` (0-based within the row group) from an encoded row group.
Status ReadTraceFromRowGroup(std::string_view row_group, uint32_t ordinal, TraceId& id, otlp::TracesData& out);

}  // namespace tracery::block
