#include "storage/retention.h"

#include <spdlog/spdlog.h>

namespace tracery::storage {

Retention::Retention(BlockList& blocks, backend::ObjectStore& store, Env& env, RetentionOptions options)
    : blocks_(blocks), store_(store), env_(env), options_(std::move(options)) {
  if (!options_.metrics) return;
  deleted_counter_ = &options_.metrics->GetCounter("tracery_retention_blocks_deleted_total",
                                                   "Blocks deleted because they were past their tenant's retention.");
  deleted_bytes_counter_ = &options_.metrics->GetCounter("tracery_retention_bytes_deleted_total",
                                                         "Bytes of blocks (data and index) deleted by retention.");
  failed_counter_ = &options_.metrics->GetCounter("tracery_retention_deletions_failed_total",
                                                  "Deletions of expired blocks that failed (tried again on the next pass).");
}

RetentionPass Retention::RunOnce() {
  std::lock_guard pass(pass_mutex_);
  RetentionPass out;
  const int64_t now = env_.NowUnixNanos();
  for (const std::string& tenant : blocks_.Tenants()) {
    const std::chrono::nanoseconds retention = options_.retention_of ? options_.retention_of(tenant)
                                                                     : std::chrono::nanoseconds(0);
    if (retention.count() <= 0) continue;
    const int64_t cutoff = now - retention.count();
    for (const auto& block : blocks_.Blocks(tenant)) {
      const block::BlockMeta& meta = block->meta();
      const int64_t written = meta.created_unix_seconds * 1'000'000'000;
      if (int64_t(meta.max_end_unix_nano) >= cutoff || written >= cutoff) continue;
      if (!blocks_.Remove(block)) continue;  // another pass took it
      spdlog::info("retention: block {}/{} (spans up to {} s, written at {} s) is past the retention of {} s", tenant,
                   meta.block_id, meta.max_end_unix_nano / 1'000'000'000, meta.created_unix_seconds,
                   std::chrono::duration_cast<std::chrono::seconds>(retention).count());
      expired_.push_back(block);
      ++out.expired;
    }
  }
  // Delete what no query holds any more (the list here is the only owner left).
  std::vector<std::shared_ptr<block::BlockReader>> still;
  for (auto& block : expired_) {
    if (block.use_count() > 1) {
      ++out.waiting;
      still.push_back(std::move(block));
      continue;
    }
    Status status = Delete(block->meta());
    if (!status.ok()) {
      ++out.failed;
      deletions_failed_.fetch_add(1, std::memory_order_relaxed);
      if (failed_counter_) failed_counter_->Add();
      spdlog::error("retention: cannot delete block {}/{} (tried again later): {}", block->meta().tenant,
                    block->meta().block_id, status.ToString());
      still.push_back(std::move(block));
      continue;
    }
    ++out.deleted;
    blocks_deleted_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t bytes = block->meta().data_bytes + block->meta().index_bytes;
    bytes_deleted_.fetch_add(bytes, std::memory_order_relaxed);
    if (deleted_counter_) deleted_counter_->Add();
    if (deleted_bytes_counter_) deleted_bytes_counter_->Add(bytes);
  }
  expired_ = std::move(still);
  return out;
}

Status Retention::Delete(const block::BlockMeta& meta) {
  const std::string folder = meta.tenant + "/" + meta.block_id;
  // meta.json first: a block without it is an interrupted write, removed at the next start.
  Status status = store_.Delete(folder + "/meta.json");
  if (!status.ok() && status.code() != StatusCode::kNotFound) return status;
  return store_.Delete(folder);
}

void Retention::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(loop_mutex_);
    while (!stopping_) {
      lock.unlock();
      RetentionPass pass = RunOnce();
      if (pass.deleted || pass.waiting || pass.failed)
        spdlog::debug("retention: {} blocks expired, {} deleted, {} still read by queries, {} failed", pass.expired,
                      pass.deleted, pass.waiting, pass.failed);
      lock.lock();
      wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
    }
  });
}

void Retention::Stop() {
  {
    std::lock_guard lock(loop_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tracery::storage
