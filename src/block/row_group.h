// A row group: the spans of consecutive traces (sorted by trace ID) stored as columns, each
// column chunk zstd-compressed on its own. Layout in docs/block-format.md.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <zstd.h>

#include "block/span_filter.h"
#include "common/ids.h"
#include "common/status.h"
#include "otlp/model.h"

namespace tracery::block {

// Block format versions (docs/block-format.md). Readers take every version from the first to
// the newest; writers write the newest unless told otherwise (tests keep writing version 1 to
// prove old blocks stay readable).
constexpr uint32_t kFirstFormatVersion = 1;
// 2 adds dedicated columns for common span attributes; 3 adds to the index each row group's
// latest trace start and the values of its low-cardinality span attributes.
constexpr uint32_t kFormatVersion = 3;

// The distinct values of a row group's span attribute keys that have few (at most
// kMaxValues) and all of one scalar type: `key = value` rules out a row group whose summary
// holds the key but not the value, without reading it (format 3).
struct ValueSummary {
  static constexpr size_t kMaxValues = 16;
  static constexpr size_t kMaxValueBytes = 64;  // a key with a longer string value is left out
  enum class Type : uint8_t { kString = 1, kBool = 2, kInt = 4 };  // the index's type byte
  // A value as the summary compares it: a string's bytes, an int's 8 bytes (little-endian
  // two's complement), a bool's one byte (0 or 1).
  static std::string IntValue(int64_t value);
  static std::string BoolValue(bool value) { return std::string(1, value ? '\1' : '\0'); }

  // What a writer records: every summarised key, its type and its distinct values.
  struct Key {
    std::string name;
    Type type = Type::kString;
    std::vector<std::string> values;
  };
  std::vector<Key> keys;

  // What a reader keeps: 32-bit hashes of (key, type) and of (key, type, value), sorted (a
  // few hundred bytes a row group). A hash that collides only keeps a row group that could
  // have been ruled out.
  bool known = false;  // false: no summary (format 1 and 2): every value may be there
  std::vector<uint32_t> key_hashes, value_hashes;
  // Replaces `keys` with their hashes (what a reader keeps in memory).
  void Index();
  // False only when the row group has no span whose attribute `key` is `value` of `type`.
  bool MayHold(std::string_view key, Type type, std::string_view value) const;
  // The same with the hashes computed once for many row groups.
  struct Probe {
    uint32_t key_hash = 0, value_hash = 0;
  };
  static Probe ProbeFor(std::string_view key, Type type, std::string_view value);
  bool MayHold(const Probe& probe) const;
  uint64_t MemoryBytes() const { return (key_hashes.capacity() + value_hashes.capacity()) * sizeof(uint32_t); }
};

// What the index keeps of each row group, for pruning without reading it.
struct RowGroupStats {
  uint64_t offset = 0, size = 0;  // within the data object
  uint32_t trace_count = 0, span_count = 0;
  uint64_t min_start_unix_nano = UINT64_MAX, max_end_unix_nano = 0, max_duration_nano = 0;
  // No trace of the row group starts later (its start: its earliest span in the row group).
  // Format 3 records it; for older blocks a reader sets max_end_unix_nano, a looser bound.
  uint64_t max_trace_start_unix_nano = 0;
  std::set<std::string> services;
  std::set<std::string> attribute_keys;  // span attribute keys
  ValueSummary values;  // format 3
};

// Builds a row group straight from encoded OTLP: spans are read off the wire into columns,
// with no model objects and no allocation per span (interned strings are views into the
// row group's dictionary). Span attribute values wait in a list until Finish, which knows
// the row group's common keys and gives them their own columns (format 2). Not thread-safe;
// one builder per block being written.
class RowGroupBuilder {
 public:
  explicit RowGroupBuilder(int zstd_level, uint32_t format_version = kFormatVersion)
      : zstd_level_(zstd_level), format_version_(format_version), compression_(ZSTD_createCCtx(), ZSTD_freeCCtx) {
    Reset();
  }
  // Adds one trace given as encoded TracesData fields (fragments concatenated). Spans that
  // repeat (same span ID and kind) are stored once. Fails on malformed bytes, adding nothing.
  Status AddTrace(const TraceId& id, std::string_view encoded);
  // The same span by span, for a caller that streams a trace instead of holding it whole
  // (compaction merges a trace's fragments from several blocks): BeginTrace, AddStreamedSpan
  // for each span (the body of an OTLP Span message, with its resource and scope as encoded
  // in OTLP), EndTrace. The caller drops repeated spans. Held per span until EndTrace: its
  // ID, parent ID and start. After a failure the row group must be dropped.
  void BeginTrace();
  Status AddStreamedSpan(std::string_view span, std::string_view resource, std::string_view resource_schema,
                         std::string_view scope, std::string_view scope_schema);
  void EndTrace(const TraceId& id);
  uint32_t streamed_span_count() const { return uint32_t(streamed_starts_.size()); }
  uint32_t span_count() const { return stats_.span_count; }
  uint32_t trace_count() const { return stats_.trace_count; }
  // Encodes the row group and resets the builder for the next one.
  std::string Finish(RowGroupStats& stats);

 private:
  struct SpanRef {
    std::string_view bytes, span_id;
    uint8_t kind;
    uint64_t start;
    uint32_t resource, scope;
  };
  struct ViewHash {
    size_t operator()(std::string_view v) const;
  };
  // How many spans have a span attribute key (by dictionary ID), counted once per span.
  struct KeyUse {
    uint32_t spans = 0;
    uint32_t last_span = UINT32_MAX;
  };
  // A span attribute value waiting for Finish: its key's dictionary ID, its value type (the
  // generic stream's type byte) and what its column gets: a dictionary ID, a zigzag, a
  // double's bits, or where its encoding is in span_complex_values_.
  struct PendingValue {
    uint32_t key;
    uint8_t type;
    uint32_t complex_size;
    uint64_t value;
  };

  void Reset();
  uint32_t Intern(std::string_view text);
  uint32_t ResourceRef(std::string_view resource, std::string_view schema);
  uint32_t ScopeRef(std::string_view scope, std::string_view schema);
  bool CollectSpans(std::string_view encoded);
  bool AddSpan(const SpanRef& span, uint64_t trace_start);
  void PutParent(std::string_view parent);
  void PutTrace(const TraceId& id, uint32_t spans, uint64_t trace_start);
  bool AddAttribute(int set, std::string_view key_value);
  void PutGenericValue(int set, uint8_t type, uint64_t value, std::string_view complex);
  std::vector<uint32_t> ChooseDedicatedKeys() const;
  void SummarizeValues();
  void WriteSpanAttributeValues(const std::vector<uint32_t>& dedicated_keys);
  bool AddEvent(std::string_view event, uint64_t span_start);
  bool AddLink(std::string_view link);

  int zstd_level_;
  uint32_t format_version_;
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> compression_;  // reused for every column chunk
  RowGroupStats stats_;
  std::vector<std::string> columns_;
  std::deque<std::string> dictionary_;  // a deque: interned views stay valid as it grows
  std::unordered_map<std::string_view, uint32_t, ViewHash> dictionary_index_;
  std::vector<std::pair<std::string, std::string>> resources_, scopes_;  // encoded, schema url
  std::unordered_map<std::string, uint32_t> resource_index_, scope_index_;
  std::vector<KeyUse> span_key_use_;  // by dictionary ID
  // Span attribute values in span order (their keys are written at once), and each span's
  // attribute count: Finish writes them to the generic stream or to dedicated columns.
  std::vector<PendingValue> span_values_;
  std::vector<uint32_t> span_attribute_counts_;
  std::string span_complex_values_;  // encoded arrays, key-value lists and bytes
  uint64_t previous_trace_start_ = 0;
  // Scratch reused across traces.
  std::vector<SpanRef> spans_;
  std::vector<std::pair<std::string_view, uint32_t>> span_positions_;
  std::vector<bool> duplicate_;
  // A trace being streamed (BeginTrace to EndTrace): its spans' IDs and parent IDs
  // (length-prefixed) and starts; and the last streamed span's resource and scope.
  bool streaming_ = false;
  std::string streamed_ids_, streamed_parents_;
  std::vector<uint64_t> streamed_starts_;
  std::string last_resource_, last_resource_schema_, last_scope_, last_scope_schema_;
  uint32_t last_resource_ref_ = UINT32_MAX, last_scope_ref_ = UINT32_MAX;
};

// One trace of a row group as its trace columns tell it.
struct TraceEntry {
  TraceId id;
  uint32_t span_count = 0;
  uint64_t start_unix_nano = 0;  // of its earliest span
};

// Lists a row group's traces, decompressing only the three trace columns (of about forty):
// what compaction and trace-level search filters need without reading spans.
Status ListTracesInRowGroup(std::string_view row_group, std::vector<TraceEntry>& out);

// A span as a projected scan decodes it, with its resource and scope as indexes into the
// row group's tables (its trace_id is left empty: the visit carries the trace's ID).
struct DecodedSpan {
  otlp::Span span;
  uint32_t resource = 0, scope = 0;
};
// A row group's resources and scopes, decoded. Row groups of one block mostly repeat the same
// few, so each scanning thread decodes each distinct one once and keeps it: the pointers stay
// valid, pointing at the same content, for every RowGroupTables of the same non-zero
// `generation` (a value never given to another set of decoded tables).
struct RowGroupTables {
  std::vector<const otlp::Resource*> resources;
  std::vector<const otlp::Scope*> scopes;
  uint64_t generation = 0;
};
// One trace of a projected scan: spans[0, count) are its spans. Valid during the call only.
using DecodedTraceVisit =
    std::function<bool(const TraceId&, const std::vector<DecodedSpan>& spans, size_t count, const RowGroupTables&)>;

// Leaves a trace out of a scan before its spans are decoded (a top-N search that already
// holds N traces newer than it).
using TraceSkip = std::function<bool(const TraceEntry&)>;

// The scan search and metrics use: the traces with a span passing `filter` (all when it is
// empty) that `skip` (when given) keeps, decoding only the projection's columns, into buffers
// reused from trace to trace. A row group with no such trace decompresses no span column
// beyond the filter's, and decoding stops after the last trace visited.
Status ScanRowGroupProjected(std::string_view row_group, const SpanFilter& filter, const Projection& projection,
                             const DecodedTraceVisit& visit, uint64_t* spans_checked = nullptr,
                             const TraceSkip& skip = nullptr);

// Every trace of an encoded row group, decoded, in the order stored (by ID).
struct DecodedTrace {
  TraceId id;
  otlp::TracesData spans;
};
Status ReadTracesFromRowGroup(std::string_view row_group, uint32_t trace_count, std::vector<DecodedTrace>& out);

namespace internal {
class RowGroupDecoder;
}

// Reads a row group's traces in order, span by span, without building a trace: each span
// decoded into one reused Span and encoded again as the body of an OTLP Span message, with its
// resource and scope as the row group's tables hold them (encoded OTLP, schema URL). What
// compaction streams into a BlockWriter (RowGroupBuilder::AddStreamedSpan). Holds the row
// group's columns, decompressed (not its bytes). Not thread-safe.
class RowGroupSpanReader {
 public:
  RowGroupSpanReader();
  ~RowGroupSpanReader();
  RowGroupSpanReader(RowGroupSpanReader&&) noexcept;
  RowGroupSpanReader& operator=(RowGroupSpanReader&&) noexcept;
  // Decompresses a row group's columns (the bytes are not needed afterwards).
  Status Open(std::string_view row_group);
  // The next trace (ID, span count, start); `found` false after the last one.
  Status NextTrace(TraceEntry& trace, bool& found);
  struct StreamedSpan {
    const otlp::Span* span = nullptr;  // decoded (its trace_id left empty)
    std::string_view encoded;          // the same, encoded
    std::pair<std::string_view, std::string_view> resource, scope;  // encoded, schema URL
  };
  // The next span of the trace NextTrace gave; valid until the next call. Every span of a
  // trace must be read before the next trace.
  Status NextSpan(StreamedSpan& out);

 private:
  std::unique_ptr<internal::RowGroupDecoder> decoder_;
  otlp::Span span_;
  std::string encoded_;
};

// Decodes the trace at `ordinal` (0-based within the row group) from an encoded row group.
Status ReadTraceFromRowGroup(std::string_view row_group, uint32_t ordinal, TraceId& id, otlp::TracesData& out);

}  // namespace tracery::block
