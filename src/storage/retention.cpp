#include "storage/retention.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace tracery::storage {

Retention::Retention(BlockList& blocks, backend::ObjectStore& store, Env& env, RetentionOptions options)
    : blocks_(blocks), env_(env), options_(std::move(options)), expired_(store, "retention") {
  if (!options_.metrics) return;
  deleted_counter_ = &options_.metrics->GetCounter("tracery_retention_blocks_deleted_total",
                                                   "Blocks deleted because they were past their tenant's retention.");
  deleted_bytes_counter_ = &options_.metrics->GetCounter("tracery_retention_bytes_deleted_total",
                                                         "Bytes of blocks (data and index) deleted by retention.");
  failed_counter_ = &options_.metrics->GetCounter("tracery_retention_deletions_failed_total",
                                                  "Deletions of expired blocks that failed (tried again on the next pass).");
  for (std::string_view tier : kTiers)
    expired_by_tier_[tier] = &options_.metrics->GetCounter("tracery_retention_blocks_expired_total",
                                                           "Blocks taken out of queries by retention, by tier.",
                                                           {{"tier", std::string(tier)}});
}

std::chrono::nanoseconds TierRetention(std::string_view tier, const TenantLimits* tenant,
                                       const std::array<std::chrono::nanoseconds, 4>& tiers,
                                       std::chrono::nanoseconds block_retention) {
  size_t t = TierIndex(RetentionTierOf(tier));
  if (tenant) {
    if (tenant->tier_retention[t].count() > 0) return tenant->tier_retention[t];
    if (tenant->block_retention.count() > 0) return tenant->block_retention;
  }
  return tiers[t].count() > 0 ? tiers[t] : block_retention;
}

RetentionPass Retention::RunOnce() {
  std::lock_guard pass(pass_mutex_);
  RetentionPass out;
  const int64_t now = env_.NowUnixNanos();
  for (const std::string& tenant : blocks_.Tenants()) {
    for (const auto& block : blocks_.Blocks(tenant)) {
      const block::BlockMeta& meta = block->meta();
      // Each block follows its tier's retention (storage/tiers.h).
      const std::string_view tier = RetentionTierOf(meta.tier);
      const std::chrono::nanoseconds retention =
          options_.retention_of ? options_.retention_of(tenant, tier) : std::chrono::nanoseconds(0);
      if (retention.count() <= 0) continue;
      const int64_t cutoff = now - retention.count();
      const int64_t written = meta.created_unix_seconds * 1'000'000'000;
      if (int64_t(meta.max_end_unix_nano) >= cutoff || written >= cutoff) continue;
      if (!blocks_.Remove(block)) continue;  // another pass took it
      spdlog::info("retention: {} block {}/{} (spans up to {} s, written at {} s) is past the retention of {} s", tier,
                   tenant, meta.block_id, meta.max_end_unix_nano / 1'000'000'000, meta.created_unix_seconds,
                   std::chrono::duration_cast<std::chrono::seconds>(retention).count());
      expired_.Retire(block);
      ++out.expired;
      if (expired_by_tier_[tier]) expired_by_tier_[tier]->Add();
    }
  }
  // Delete what no query holds any more.
  DeletionSweep sweep = expired_.Sweep();
  out.deleted = sweep.deleted;
  out.waiting = sweep.waiting;
  out.failed = sweep.failed;
  blocks_deleted_.fetch_add(sweep.deleted, std::memory_order_relaxed);
  bytes_deleted_.fetch_add(sweep.bytes_deleted, std::memory_order_relaxed);
  deletions_failed_.fetch_add(sweep.failed, std::memory_order_relaxed);
  if (deleted_counter_ && sweep.deleted) deleted_counter_->Add(sweep.deleted);
  if (deleted_bytes_counter_ && sweep.bytes_deleted) deleted_bytes_counter_->Add(sweep.bytes_deleted);
  if (failed_counter_ && sweep.failed) failed_counter_->Add(sweep.failed);
  return out;
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
