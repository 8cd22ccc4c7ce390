// Deferred deletion of blocks that have left the block list (retention, compaction): a
// block's files are deleted only once no query holds its BlockReader any more, and
// meta.json goes first, so a crash in the middle leaves a block without meta.json, which the
// next BlockList::Open removes as an interrupted write. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/object_store.h"
#include "block/block.h"

namespace tracery::storage {

// Deletes one block's objects, meta.json first (a missing meta.json is not an error).
Status DeleteBlockObjects(backend::ObjectStore& store, const std::string& tenant, const std::string& block_id);

struct DeletionSweep {
  uint64_t deleted = 0;        // blocks whose objects were deleted in this sweep
  uint64_t bytes_deleted = 0;  // their data and index bytes
  uint64_t waiting = 0;        // blocks a query still holds, left for a later sweep
  uint64_t failed = 0;         // deletions that failed (tried again on the next sweep)
};

class BlockDeleter {
 public:
  BlockDeleter(backend::ObjectStore& store, std::string log_name) : store_(store), log_name_(std::move(log_name)) {}

  // Takes a block that is no longer listed; its objects go at a sweep after the last other
  // holder let go. The caller should drop its own references before the sweep.
  void Retire(std::shared_ptr<block::BlockReader> block);
  // Deletes every retired block nobody else holds.
  DeletionSweep Sweep();
  size_t pending() const;

 private:
  backend::ObjectStore& store_;
  const std::string log_name_;  // who deletes, for the log
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<block::BlockReader>> retired_;
};

}  // namespace tracery::storage
