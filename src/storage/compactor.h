// Compaction: a tenant's small blocks of one tier whose spans end in the same time window are
// merged into one block, as Tempo's compactor does (compactor.compaction.*). Fewer blocks mean
// fewer Bloom filters and index pages per trace-by-ID lookup and fewer objects per search.
//
// What is merged: per tenant and tier, the blocks whose end time falls in one
// `window` (by BlockMeta::max_end_unix_nano), once that window has ended by the wall clock
// (while it is open, blocks keep coming: merging them then would rewrite the window's data at
// every cycle; after it, one merge, and another only for late blocks); inputs are taken oldest
// first until the next one would pass `max_compaction_objects` traces, `max_block_bytes` bytes
// (data and index, an upper bound of the output: merging only removes duplicates) or the memory
// bound below; a job needs two inputs or more.
// The merge is k-way by trace ID (blocks store traces sorted by ID): a trace found in several
// inputs has its parts streamed one after the other and repeats (same span ID and kind)
// dropped; BlockWriter builds the index and Bloom filters as for a cut.
//
// Crash safety (docs/compaction.md): the output is written whole, meta.json last, and names
// its inputs in compactedFrom; then BlockList::Replace lists it and unlists the inputs in one
// step, so a query sees either the inputs or the output, never both; the inputs' objects are
// deleted once no query holds them (BlockDeleter), meta.json first. A crash before the
// output's meta.json leaves an output without it (removed at the next Open); a crash after it
// leaves inputs that BlockList::Open deletes because a listed block names them.
//
// Memory: bounded by compactor.compaction.max_spans_in_memory, whatever the block sizes and
// trace shapes. The merge streams span by span (block::RowGroupSpanReader into
// BlockWriter::AddSpan): no trace is ever held whole, decoded or encoded. What it holds is
// each input's current row group, its columns decompressed (a row group closes after the
// trace that reaches row_group_spans, so a huge trace makes its row group as large), and the
// row group it writes: fewer than row_group_spans spans, plus the trace being merged, each of
// whose parts fits in its input's row group. So, with L_i the span count of input i's
// largest row group (from its index),
//     spans held <= 2 * sum(L_i) + row_group_spans <= max_spans_in_memory,
// which PlanJobs keeps: inputs stop before passing it, and a block whose largest row group
// alone would pass it is not merged (left as it is, with a warning). Besides the spans: 24
// bytes of index entry and 10 bits of Bloom filter per output trace (at most
// max_compaction_objects), and for a trace found in several inputs its span IDs (a set).
// docs/compaction.md gives the bytes a span held costs, measured.
//
// Threads: RunOnce may be called from any thread; runs do not overlap. Start runs it every
// `cycle` on a thread of its own; Stop makes a merge in flight give up.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/object_store.h"
#include "common/metrics.h"
#include "storage/block_deleter.h"
#include "storage/block_list.h"

namespace tracery::storage {

struct CompactorOptions {
  std::chrono::nanoseconds window = std::chrono::hours(1);  // compaction_window
  uint64_t max_compaction_objects = 6'000'000;              // traces per output
  uint64_t max_block_bytes = 100ull << 30;                  // bytes per output
  std::chrono::nanoseconds cycle = std::chrono::seconds(30);  // between runs of the loop
  block::WriterOptions writer;
  MetricsRegistry* metrics = nullptr;  // where its counters are registered, if anywhere
  // The wall clock (Unix nanoseconds): a window is merged only once it has ended, so the blocks
  // a window still receives are not merged again and again into a growing output.
  std::function<int64_t()> now_unix_nanos;  // null: the system clock
  // Spans a merge holds at once, at most (the memory bound above): max_spans_in_memory.
  uint64_t max_spans_in_memory = 1'000'000;
};

struct CompactionRun {
  uint64_t compactions = 0;  // outputs written and listed
  uint64_t blocks_in = 0;    // inputs they replaced
  uint64_t bytes_in = 0, bytes_out = 0;  // data and index bytes
  uint64_t traces_out = 0;
  uint64_t failed = 0;       // jobs that failed or lost an input to retention (output dropped)
  uint64_t left_for_memory = 0;  // blocks not merged: their largest row group alone passes the bound
  DeletionSweep deletion;    // of inputs, this run's and earlier runs' still held by queries
};

class Compactor {
 public:
  Compactor(BlockList& blocks, backend::ObjectStore& store, CompactorOptions options);
  ~Compactor() { Stop(); }

  CompactionRun RunOnce();
  void Start();
  void Stop();

  // The most spans held at once by a merge (the inputs' row groups and the row group being
  // written, with the trace being merged), since construction: what the memory bound is about.
  uint64_t peak_decoded_spans() const { return peak_decoded_spans_.load(std::memory_order_relaxed); }

 private:
  // Groups of blocks to merge, each of one tenant, tier and window.
  // Blocks left alone for the memory bound are counted in `run`.
  std::vector<std::vector<std::shared_ptr<block::BlockReader>>> PlanJobs(const std::string& tenant,
                                                                         CompactionRun& run);
  // The span count of the block's largest row group (remembered per block), or nullopt when
  // its index does not load.
  std::optional<uint64_t> LargestRowGroupSpans(const std::shared_ptr<block::BlockReader>& block);
  // Writes the merged block; nullptr-free result on success.
  Result<std::shared_ptr<block::BlockReader>> Merge(const std::vector<std::shared_ptr<block::BlockReader>>& inputs);

  BlockList& blocks_;
  backend::ObjectStore& store_;
  CompactorOptions options_;
  std::mutex run_mutex_;
  BlockDeleter replaced_;
  std::atomic<uint64_t> peak_decoded_spans_{0};
  // Under run_mutex_: per listed block, its largest row group's spans; blocks warned about.
  std::unordered_map<std::string, uint64_t> largest_row_group_;
  std::unordered_set<std::string> warned_for_memory_;
  Counter* compactions_counter_ = nullptr;
  Counter* bytes_in_counter_ = nullptr;
  Counter* bytes_out_counter_ = nullptr;
  Counter* blocks_in_counter_ = nullptr;

  std::atomic<bool> abandon_{false};  // Stop: a merge in flight gives up (its output is removed)
  std::mutex loop_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tracery::storage
