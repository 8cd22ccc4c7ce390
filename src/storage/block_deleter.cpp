#include "storage/block_deleter.h"

#include <spdlog/spdlog.h>

namespace tracery::storage {

Status DeleteBlockObjects(backend::ObjectStore& store, const std::string& tenant, const std::string& block_id) {
  const std::string folder = tenant + "/" + block_id;
  // meta.json first: a block without it is an interrupted write, removed at the next start.
  Status status = store.Delete(folder + "/meta.json");
  if (!status.ok() && status.code() != StatusCode::kNotFound) return status;
  return store.Delete(folder);
}

void BlockDeleter::Retire(std::shared_ptr<block::BlockReader> block) {
  std::lock_guard lock(mutex_);
  retired_.push_back(std::move(block));
}

size_t BlockDeleter::pending() const {
  std::lock_guard lock(mutex_);
  return retired_.size();
}

DeletionSweep BlockDeleter::Sweep() {
  std::lock_guard lock(mutex_);
  DeletionSweep out;
  std::vector<std::shared_ptr<block::BlockReader>> still;
  for (auto& block : retired_) {
    // The list here is the only owner left once use_count is 1: no query can find it again.
    if (block.use_count() > 1) {
      ++out.waiting;
      still.push_back(std::move(block));
      continue;
    }
    const block::BlockMeta& meta = block->meta();
    Status status = DeleteBlockObjects(store_, meta.tenant, meta.block_id);
    if (!status.ok()) {
      ++out.failed;
      spdlog::error("{}: cannot delete block {}/{} (tried again later): {}", log_name_, meta.tenant, meta.block_id,
                    status.ToString());
      still.push_back(std::move(block));
      continue;
    }
    ++out.deleted;
    out.bytes_deleted += meta.data_bytes + meta.index_bytes;
  }
  retired_ = std::move(still);
  return out;
}

}  // namespace tracery::storage
