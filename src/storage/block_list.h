// The blocks of every tenant in the backend, as one TraceSource. Blocks are listed at Open
// (meta.json only); a block's index (Bloom filters, row-group stats, sparse trace-ID index)
// loads on first use and stays cached while the cached total is under a bound, least
// recently used dropped first. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/object_store.h"
#include "block/block.h"
#include "storage/trace_source.h"

namespace tracery::storage {

struct BlockListOptions {
  uint64_t max_cached_index_bytes = 256ull << 20;
};

class BlockList final : public TraceSource {
 public:
  BlockList(backend::ObjectStore& store, BlockListOptions options) : store_(store), options_(options) {}

  // Lists every tenant's blocks (reading meta.json of each); a block whose meta.json is
  // corrupt is skipped with an error. Removes what interrupted writes left: objects being
  // written and blocks without meta.json, and the inputs of a compaction whose output is
  // complete (listed in its compactedFrom), so no trace is listed twice. Call before anything
  // writes blocks.
  Status Open();
  void Add(std::shared_ptr<block::BlockReader> block);
  // Takes a block out of the list (queries that hold it keep reading it); false when it was
  // not there.
  bool Remove(const std::shared_ptr<block::BlockReader>& block);
  // In one step for queries: lists `added` and takes `removed` out (all of one tenant), or,
  // when one of `removed` is no longer listed (retention took it), changes nothing and
  // returns false.
  bool Replace(std::shared_ptr<block::BlockReader> added, const std::vector<std::shared_ptr<block::BlockReader>>& removed);
  // A tenant's blocks, oldest first.
  std::vector<std::shared_ptr<block::BlockReader>> Blocks(const std::string& tenant) const;
  std::vector<std::string> Tenants() const;
  uint64_t BlockCount() const;
  // Blocks and their stored bytes (data and index) of one retention tier (legacy blocks count
  // as baseline), over every tenant.
  struct TierTotals {
    uint64_t blocks = 0, bytes = 0;
  };
  TierTotals TotalsOfTier(std::string_view tier) const;
  uint64_t CachedIndexBytes() const { return cached_bytes_.load(std::memory_order_relaxed); }

  Status CollectTrace(const std::string& tenant, const TraceId& id, const TimeRange& range, otlp::TracesData& into,
                      bool& found) override;

 private:
  // Notes that a block's index is in use; drops the least recently used others over the bound.
  void Touch(const std::shared_ptr<block::BlockReader>& block);
  void Uncache(const std::shared_ptr<block::BlockReader>& block);
  // Open's part for compactions a crash interrupted: deletes the inputs still present of every
  // complete output and drops them from `opened`.
  void FinishInterruptedCompactions(const std::string& tenant, std::vector<std::shared_ptr<block::BlockReader>>& opened);

  backend::ObjectStore& store_;
  BlockListOptions options_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<block::BlockReader>>> blocks_;

  std::mutex cache_mutex_;
  std::list<std::shared_ptr<block::BlockReader>> recently_used_;  // front: most recent
  std::unordered_map<const block::BlockReader*, std::list<std::shared_ptr<block::BlockReader>>::iterator> cache_position_;
  std::atomic<uint64_t> cached_bytes_{0};
};

}  // namespace tracery::storage
