// Immutable blocks: one tenant, one retention tier, traces sorted by ID. Objects of a block
// "<tenant>/<block id>/": data (row groups), index (row-group stats + sorted trace-ID
// entries), bloom-<n> (sharded Bloom filters), meta.json (written last: a block without it
// is incomplete and ignored). Format: docs/block-format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/object_store.h"
#include "block/bloom.h"
#include "block/row_group.h"
#include "common/ids.h"
#include "common/status.h"
#include "otlp/model.h"

namespace tracery::block {

struct BlockMeta {
  uint32_t version = kFormatVersion;
  std::string block_id, tenant, tier = "sampled";
  uint64_t min_start_unix_nano = 0, max_end_unix_nano = 0;
  uint64_t trace_count = 0, span_count = 0, row_groups = 0;
  uint64_t data_bytes = 0, index_bytes = 0, index_entries_offset = 0;
  uint32_t bloom_shards = 1;
  int64_t created_unix_seconds = 0;
  // The blocks this one replaces, when compaction wrote it (docs/compaction.md); written to
  // meta.json only when non-empty.
  std::vector<std::string> compacted_from;

  std::string ToJson() const;
  static Result<BlockMeta> FromJson(std::string_view json);  // refuses versions it does not know
};

struct WriterOptions {
  uint32_t row_group_spans = 1024;  // a row group closes after the trace that reaches this
  int zstd_level = 3;
  uint64_t traces_per_bloom_shard = 200000;
  uint32_t format_version = kFormatVersion;  // kFirstFormatVersion..kFormatVersion (tests write old ones)
};

// One trace to write: its spans as encoded TracesData (fragments concatenated).
struct TraceInput {
  TraceId id;
  std::string_view otlp;
};

// Writes a block as a stream: traces are added in ascending ID order and row groups go to the
// data object as they fill, so memory holds one row group plus the index entries and Bloom
// filters. Finish writes index, Bloom filters and, last, meta.json; a writer destroyed before
// Finish succeeded leaves no visible block.
class BlockWriter {
 public:
  // `expected_traces` sizes the Bloom filters.
  static Result<std::unique_ptr<BlockWriter>> Create(backend::ObjectStore& store, const std::string& tenant,
                                                     const std::string& tier, uint64_t expected_traces,
                                                     const WriterOptions& options);
  // Adds one trace (encoded TracesData fields, fragments concatenated); IDs must ascend. Spans
  // that repeat within it (same span ID and kind) are stored once. InvalidArgument when the
  // bytes are malformed: nothing of the trace is added and the block stays writable.
  Status AddTrace(const TraceId& id, std::string_view otlp);
  // The same span by span, for compaction, which streams a trace's fragments from several
  // blocks instead of holding it whole: BeginTrace (IDs ascend as for AddTrace), AddSpan for
  // each span (RowGroupBuilder::AddStreamedSpan; the caller drops repeats), EndTrace. After a
  // failure the block cannot be finished.
  Status BeginTrace(const TraceId& id);
  Status AddSpan(std::string_view span, std::string_view resource, std::string_view resource_schema,
                 std::string_view scope, std::string_view scope_schema);
  Status EndTrace();
  // Spans of the row group being built, with those of a trace being streamed.
  uint64_t buffered_spans() const { return uint64_t(builder_.span_count()) + builder_.streamed_span_count(); }
  uint64_t trace_count() const { return meta_.trace_count; }
  // For compaction: the blocks the new one replaces, and the write time it inherits from them
  // (so retention counts from when the spans came, not from the merge); set before Finish.
  void SetCompactedFrom(std::vector<std::string> block_ids, int64_t created_unix_seconds) {
    meta_.compacted_from = std::move(block_ids);
    created_override_ = created_unix_seconds;
  }
  Result<BlockMeta> Finish();
  // Removes what was written of a block that was not finished (a full disk must not fill up
  // further with the remains of failed cuts).
  ~BlockWriter();

 private:
  BlockWriter(backend::ObjectStore& store, const WriterOptions& options) : store_(store), options_(options), builder_(options.zstd_level, options.format_version) {}
  Status CloseRowGroup();
  // Indexes the trace just added to the row group builder (at `ordinal`, after `spans_before`).
  Status Indexed(const TraceId& id, uint32_t ordinal, uint32_t spans_before);

  backend::ObjectStore& store_;
  WriterOptions options_;
  BlockMeta meta_;
  std::unique_ptr<backend::ObjectWriter> data_;
  RowGroupBuilder builder_;
  std::vector<BloomFilter> blooms_;
  std::string row_group_table_;  // the index's record of each row group written
  uint64_t row_group_count_ = 0;
  std::string entries_;
  TraceId last_id_;
  TraceId streamed_id_;  // BeginTrace..EndTrace
  int64_t created_override_ = 0;
  Status failed_;  // a data write failed: the block cannot be finished
  bool finished_ = false;
};

// Writes a block from traces sorted by ID (one entry per ID), through BlockWriter.
Result<BlockMeta> WriteBlock(backend::ObjectStore& store, const std::string& tenant, const std::string& tier,
                             const std::vector<TraceInput>& traces, const WriterOptions& options);

// What a lookup needs of a block besides meta.json: Bloom filters, row-group stats and a
// sparse index (every 256th trace ID). Loaded on first use, droppable under memory pressure.
struct BlockIndex {
  std::vector<BloomFilter> blooms;
  std::vector<RowGroupStats> row_groups;
  std::vector<TraceId> sparse_index;
  // 16 bits of a hash of each entry's trace ID, in entry order (2 bytes a trace): a lookup the
  // Bloom filter lets through reads its index page only when the page has the fingerprint.
  // Searches ask every nearby block whether it holds each trace they judge whole; without
  // this ~1 % of those questions would read a page for nothing.
  std::vector<uint16_t> fingerprints;
  uint64_t MemoryBytes() const;
};

// A block opened for trace-by-ID lookups: keeps meta.json; loads its BlockIndex when first
// needed (or at Open) and keeps it until Unload; reads an index page and one row group per
// lookup. Thread-safe.
class BlockReader {
 public:
  // Reads meta.json and loads the index now (fails when any object is missing or corrupt).
  static Result<std::unique_ptr<BlockReader>> Open(backend::ObjectStore& store, const std::string& tenant,
                                                   const std::string& block_id);
  // Reads only meta.json; the index loads on first use.
  static Result<std::unique_ptr<BlockReader>> OpenLazily(backend::ObjectStore& store, const std::string& tenant,
                                                         const std::string& block_id);
  const BlockMeta& meta() const { return meta_; }
  // The loaded index, loading it if needed.
  Result<std::shared_ptr<const BlockIndex>> Index() const;
  // Drops the loaded index (lookups in flight keep theirs); the next use loads it again.
  void Unload() const;
  bool Loaded() const;
  uint64_t MemoryBytes() const;  // of the loaded index, 0 when not loaded

  std::vector<RowGroupStats> row_groups() const;
  // False only when the Bloom filter rules the trace out (true when the index cannot load).
  bool MayContain(const TraceId& id) const;
  // The trace's spans, or nullopt when the block does not hold it.
  Result<std::optional<otlp::TracesData>> FindTrace(const TraceId& id) const;
  // Whether the block holds the trace: the Bloom filter, then an index page (no span read).
  Result<bool> Contains(const TraceId& id) const;
  // Decodes the traces of one row group that have a span passing `filter` (every trace when
  // it is empty), in ID order, until `visit` returns false: only the projection's columns,
  // into reused buffers. Adds the spans checked against the filter to `spans_checked`.
  // `skip` leaves traces out before their spans are decoded (row_group.h).
  Status ScanRowGroupProjected(uint32_t row_group, const SpanFilter& filter, const Projection& projection,
                               const DecodedTraceVisit& visit, uint64_t* spans_checked = nullptr,
                               const TraceSkip& skip = nullptr) const;
  // The traces of one row group (IDs, span counts, starts), reading only its trace columns.
  Result<std::vector<TraceEntry>> ListTraces(uint32_t row_group) const;
  // Every trace of one row group, decoded, in ID order.
  Result<std::vector<DecodedTrace>> ReadRowGroup(uint32_t row_group) const;
  // One row group's bytes, as stored (compaction streams them through RowGroupSpanReader).
  Result<std::string> ReadRowGroupBytes(uint32_t row_group) const;

 private:
  BlockReader(backend::ObjectStore& store, BlockMeta meta) : store_(store), meta_(std::move(meta)) {}
  std::string ObjectName(std::string_view object) const;
  Result<std::shared_ptr<const BlockIndex>> LoadIndex() const;
  // Where the index puts a trace: its row group and ordinal, or nullopt when absent.
  Result<std::optional<std::pair<uint32_t, uint32_t>>> Locate(const BlockIndex& index, const TraceId& id) const;

  backend::ObjectStore& store_;
  BlockMeta meta_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const BlockIndex> index_;
};

// Merges spans of one trace from several sources, dropping repeats (same span ID and kind).
void MergeTraceInto(otlp::TracesData& into, otlp::TracesData&& from);
void DeduplicateSpans(otlp::TracesData& trace);

std::string NewBlockId();

}  // namespace tracery::block
