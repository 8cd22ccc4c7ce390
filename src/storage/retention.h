// Retention: blocks past their tenant's retention are deleted, as Tempo's
// compactor.compaction.block_retention does.
//
// A block expires when both its newest span ended and it was written longer ago than the
// retention (Tempo looks at the span time alone; requiring the write time too means spans
// sent with old timestamps, a backfill, still stay for the whole retention after they came).
//
// Deletion is safe for queries and crashes:
//   1. the block leaves the block list: no new query finds it;
//   2. its files are deleted only once no query still holds it (a later pass if one does);
//   3. meta.json goes first, so a crash in the middle leaves a block without meta.json, which
//      the next start removes as an interrupted write; a crash before 3 leaves the whole
//      block, and the next pass deletes it again.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/object_store.h"
#include "common/env.h"
#include "common/metrics.h"
#include "common/tenant_limits.h"
#include "storage/block_deleter.h"
#include "storage/block_list.h"
#include "storage/tiers.h"

namespace tracery::storage {

struct RetentionOptions {
  // The retention of a tenant's blocks of one tier (storage/tiers.h: error, slow, pinned,
  // baseline; blocks of older releases count as baseline); zero or negative: kept for ever.
  std::function<std::chrono::nanoseconds(const std::string& tenant, std::string_view tier)> retention_of;
  std::chrono::nanoseconds interval = std::chrono::minutes(1);  // between passes of the loop
  MetricsRegistry* metrics = nullptr;  // where its counters are registered, if anywhere
};

// A tier's retention as the configuration sets it: the tenant's own for the tier, else the
// tenant's block_retention (every tier at once, as Tempo's), else the main file's for the tier
// (compactor.compaction.retention_tiers), else its block_retention. `tenant` may be null.
std::chrono::nanoseconds TierRetention(std::string_view tier, const TenantLimits* tenant,
                                       const std::array<std::chrono::nanoseconds, 4>& tiers,
                                       std::chrono::nanoseconds block_retention);

struct RetentionPass {
  uint64_t expired = 0;   // blocks taken out of the list in this pass
  uint64_t deleted = 0;   // blocks whose files were deleted in this pass (of this or earlier passes)
  uint64_t waiting = 0;   // expired blocks a query still holds, deleted on a later pass
  uint64_t failed = 0;    // deletions that failed (tried again on the next pass)
};

class Retention {
 public:
  Retention(BlockList& blocks, backend::ObjectStore& store, Env& env, RetentionOptions options);
  ~Retention() { Stop(); }

  // One pass at the Env's clock. Thread-safe with queries; passes do not overlap.
  RetentionPass RunOnce();
  // Runs a pass every `interval` on a thread of its own until Stop.
  void Start();
  void Stop();

  uint64_t blocks_deleted() const { return blocks_deleted_.load(std::memory_order_relaxed); }
  uint64_t bytes_deleted() const { return bytes_deleted_.load(std::memory_order_relaxed); }
  uint64_t deletions_failed() const { return deletions_failed_.load(std::memory_order_relaxed); }

 private:
  BlockList& blocks_;
  Env& env_;
  RetentionOptions options_;
  std::mutex pass_mutex_;
  // Out of the list, files not yet deleted: held by a query, or a deletion failed.
  BlockDeleter expired_;
  std::atomic<uint64_t> blocks_deleted_{0}, bytes_deleted_{0}, deletions_failed_{0};
  Counter* deleted_counter_ = nullptr;
  Counter* deleted_bytes_counter_ = nullptr;
  Counter* failed_counter_ = nullptr;
  std::map<std::string_view, Counter*> expired_by_tier_;

  std::mutex loop_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tracery::storage
