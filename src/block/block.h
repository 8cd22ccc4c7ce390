// Immutable blocks: one tenant, one retention tier, traces sorted by ID. Objects of a block
// "<tenant>/<block id>/": data (row groups), index (row-group stats + sorted trace-ID
// entries), bloom-<n> (sharded Bloom filters), meta.json (written last: a block without it
// is incomplete and ignored). Format: docs/block-format.md.
#pragma once

#include <cstdint>
#include <memory>
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

constexpr uint32_t kFormatVersion = 1;

struct BlockMeta {
  uint32_t version = kFormatVersion;
  std::string block_id, tenant, tier = "sampled";
  uint64_t min_start_unix_nano = 0, max_end_unix_nano = 0;
  uint64_t trace_count = 0, span_count = 0, row_groups = 0;
  uint64_t data_bytes = 0, index_bytes = 0, index_entries_offset = 0;
  uint32_t bloom_shards = 1;
  int64_t created_unix_seconds = 0;

  std::string ToJson() const;
  static Result<BlockMeta> FromJson(std::string_view json);  // refuses unknown versions
};

struct WriterOptions {
  uint32_t row_group_spans = 1024;  // a row group closes after the trace that reaches this
  int zstd_level = 3;
  uint64_t traces_per_bloom_shard = 200000;
};

// One trace to write: its spans as encoded TracesData (fragments concatenated).
struct TraceInput {
  TraceId id;
  std::string_view otlp;
};

// Writes a block from traces sorted by ID (one entry per ID). Spans that repeat within a
// trace (same span ID and kind) are stored once. meta.json is written last.
Result<BlockMeta> WriteBlock(backend::ObjectStore& store, const std::string& tenant, const std::string& tier,
                             const std::vector<TraceInput>& traces, const WriterOptions& options);

// A block opened for trace-by-ID lookups: keeps its meta, Bloom filters, row-group stats and
// a sparse index (every 256th trace ID) in memory; reads an index page and one row group per
// lookup. Thread-safe after Open.
class BlockReader {
 public:
  static Result<std::unique_ptr<BlockReader>> Open(backend::ObjectStore& store, const std::string& tenant,
                                                   const std::string& block_id);
  const BlockMeta& meta() const { return meta_; }
  const std::vector<RowGroupStats>& row_groups() const { return row_groups_; }
  bool MayContain(const TraceId& id) const;
  // The trace's spans, or nullopt when the block does not hold it.
  Result<std::optional<otlp::TracesData>> FindTrace(const TraceId& id) const;
  uint64_t MemoryBytes() const;

 private:
  BlockReader(backend::ObjectStore& store, BlockMeta meta) : store_(store), meta_(std::move(meta)) {}
  std::string ObjectName(std::string_view object) const;

  backend::ObjectStore& store_;
  BlockMeta meta_;
  std::vector<BloomFilter> blooms_;
  std::vector<RowGroupStats> row_groups_;
  std::vector<TraceId> sparse_index_;  // the ID of every kIndexPageEntries-th entry
};

// Merges spans of one trace from several sources, dropping repeats (same span ID and kind).
void MergeTraceInto(otlp::TracesData& into, otlp::TracesData&& from);
void DeduplicateSpans(otlp::TracesData& trace);

std::string NewBlockId();

}  // namespace tracery::block
