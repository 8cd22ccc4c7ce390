#include "storage/block_list.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "storage/block_deleter.h"
#include "storage/tiers.h"

namespace tracery::storage {

Status BlockList::Open() {
  Status cleaned = store_.RemoveAbandonedWrites();
  if (!cleaned.ok()) spdlog::warn("blocks: cannot remove interrupted writes: {}", cleaned.ToString());
  auto tenants = store_.List("");
  if (!tenants.ok()) return tenants.status();
  for (const auto& tenant : *tenants) {
    if (!backend::IsSafeObjectName(tenant) || tenant.find('/') != std::string::npos) continue;
    auto block_ids = store_.List(tenant);
    if (!block_ids.ok()) return block_ids.status();
    std::vector<std::shared_ptr<block::BlockReader>> opened;
    for (const auto& block_id : *block_ids) {
      auto reader = block::BlockReader::OpenLazily(store_, tenant, block_id);
      if (!reader.ok()) {
        if (reader.status().code() == StatusCode::kNotFound) {
          // No meta.json: a cut that a crash interrupted (its spans are still in the WAL).
          // Nothing writes blocks before the list is open, so it can go.
          Status removed = store_.Delete(tenant + "/" + block_id);
          spdlog::warn("blocks: removing {}/{}, a block whose writing was interrupted{}", tenant, block_id,
                       removed.ok() ? "" : ": " + removed.ToString());
        } else {
          spdlog::error("blocks: skipping {}/{}: {}", tenant, block_id, reader.status().ToString());
        }
        continue;
      }
      opened.push_back(std::move(reader).value());
    }
    FinishInterruptedCompactions(tenant, opened);
    std::sort(opened.begin(), opened.end(), [](const auto& a, const auto& b) {
      return a->meta().created_unix_seconds < b->meta().created_unix_seconds;
    });
    spdlog::info("blocks: tenant {} has {} blocks", tenant, opened.size());
    std::unique_lock lock(mutex_);
    auto& list = blocks_[tenant];
    list.insert(list.end(), opened.begin(), opened.end());
  }
  return Status::Ok();
}

void BlockList::Add(std::shared_ptr<block::BlockReader> block) {
  Touch(block);
  std::unique_lock lock(mutex_);
  blocks_[block->meta().tenant].push_back(std::move(block));
}

bool BlockList::Remove(const std::shared_ptr<block::BlockReader>& block) {
  {
    std::unique_lock lock(mutex_);
    auto it = blocks_.find(block->meta().tenant);
    if (it == blocks_.end()) return false;
    auto at = std::find(it->second.begin(), it->second.end(), block);
    if (at == it->second.end()) return false;
    it->second.erase(at);
    if (it->second.empty()) blocks_.erase(it);
  }
  Uncache(block);
  return true;
}

bool BlockList::Replace(std::shared_ptr<block::BlockReader> added,
                        const std::vector<std::shared_ptr<block::BlockReader>>& removed) {
  {
    std::unique_lock lock(mutex_);
    auto& list = blocks_[added->meta().tenant];
    for (const auto& block : removed)
      if (block->meta().tenant != added->meta().tenant || std::find(list.begin(), list.end(), block) == list.end()) {
        if (list.empty()) blocks_.erase(added->meta().tenant);
        return false;
      }
    for (const auto& block : removed) list.erase(std::find(list.begin(), list.end(), block));
    // Oldest first, as Open sorts: the output carries its inputs' newest write time.
    auto at = std::upper_bound(list.begin(), list.end(), added, [](const auto& a, const auto& b) {
      return a->meta().created_unix_seconds < b->meta().created_unix_seconds;
    });
    list.insert(at, std::move(added));
  }
  for (const auto& block : removed) Uncache(block);
  return true;
}

void BlockList::FinishInterruptedCompactions(const std::string& tenant,
                                             std::vector<std::shared_ptr<block::BlockReader>>& opened) {
  std::set<std::string> replaced;
  for (const auto& block : opened)
    for (const auto& input : block->meta().compacted_from) replaced.insert(input);
  if (replaced.empty()) return;
  std::erase_if(opened, [&](const std::shared_ptr<block::BlockReader>& block) {
    if (!replaced.count(block->meta().block_id)) return false;
    // Its compaction's output is complete (it has meta.json) and holds every trace of it.
    Status deleted = DeleteBlockObjects(store_, tenant, block->meta().block_id);
    spdlog::warn("blocks: removing {}/{}, the input of a compaction a restart interrupted{}", tenant,
                 block->meta().block_id, deleted.ok() ? "" : ": " + deleted.ToString());
    return true;
  });
}

void BlockList::Uncache(const std::shared_ptr<block::BlockReader>& block) {
  std::lock_guard lock(cache_mutex_);
  auto cached = cache_position_.find(block.get());
  if (cached != cache_position_.end()) {
    cached_bytes_.fetch_sub(std::min(cached_bytes_.load(), block->MemoryBytes()), std::memory_order_relaxed);
    recently_used_.erase(cached->second);
    cache_position_.erase(cached);
  }
}

std::vector<std::shared_ptr<block::BlockReader>> BlockList::Blocks(const std::string& tenant) const {
  std::shared_lock lock(mutex_);
  auto it = blocks_.find(tenant);
  return it == blocks_.end() ? std::vector<std::shared_ptr<block::BlockReader>>() : it->second;
}

std::vector<std::string> BlockList::Tenants() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [tenant, list] : blocks_) out.push_back(tenant);
  return out;
}

uint64_t BlockList::BlockCount() const {
  std::shared_lock lock(mutex_);
  uint64_t count = 0;
  for (const auto& [tenant, list] : blocks_) count += list.size();
  return count;
}

BlockList::TierTotals BlockList::TotalsOfTier(std::string_view tier) const {
  std::shared_lock lock(mutex_);
  TierTotals totals;
  for (const auto& [tenant, list] : blocks_)
    for (const auto& block : list) {
      const block::BlockMeta& meta = block->meta();
      if (RetentionTierOf(meta.tier) != tier) continue;
      totals.blocks++;
      totals.bytes += meta.data_bytes + meta.index_bytes;
    }
  return totals;
}

void BlockList::Touch(const std::shared_ptr<block::BlockReader>& block) {
  std::lock_guard lock(cache_mutex_);
  auto it = cache_position_.find(block.get());
  if (it != cache_position_.end()) {
    recently_used_.splice(recently_used_.begin(), recently_used_, it->second);
    return;
  }
  recently_used_.push_front(block);
  cache_position_[block.get()] = recently_used_.begin();
  uint64_t total = 0;
  for (const auto& cached : recently_used_) total += cached->MemoryBytes();
  // Drop from the least recently used end until under the bound (keep the one just used).
  while (total > options_.max_cached_index_bytes && recently_used_.size() > 1) {
    auto& victim = recently_used_.back();
    total -= victim->MemoryBytes();
    victim->Unload();
    cache_position_.erase(victim.get());
    recently_used_.pop_back();
  }
  cached_bytes_.store(total, std::memory_order_relaxed);
}

Status BlockList::CollectTrace(const std::string& tenant, const TraceId& id, const TimeRange& range,
                               otlp::TracesData& into, bool& found) {
  for (const auto& block : Blocks(tenant)) {
    const block::BlockMeta& meta = block->meta();
    if (!range.Overlaps(meta.min_start_unix_nano, meta.max_end_unix_nano)) continue;
    bool was_loaded = block->Loaded();
    auto part = block->FindTrace(id);
    if (!was_loaded || part.ok()) Touch(block);
    if (!part.ok()) {
      // A corrupt block stays corrupt: it must not hide the others' spans forever. A read that
      // failed may work next time, and answering "not found" meanwhile would be a lie.
      if (part.status().code() != StatusCode::kCorruption)
        return Status::Unavailable("block " + meta.block_id + " could not be read: " + part.status().message());
      spdlog::error("query: {}", part.status().ToString());
      continue;
    }
    if (!part->has_value()) continue;
    for (auto& rs : (*part)->resource_spans) into.resource_spans.push_back(std::move(rs));
    found = true;
  }
  return Status::Ok();
}

}  // namespace tracery::storage
