#include "storage/compactor.h"

#include <algorithm>
#include <map>
#include <optional>
#include <queue>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace tracery::storage {
namespace {

using BlockPtr = std::shared_ptr<block::BlockReader>;

// One input's place in the merge: its current row group (columns decompressed) and the trace
// at its head, whose ID and span count are read and whose spans are streamed on demand.
class InputCursor {
 public:
  explicit InputCursor(BlockPtr block) : block_(std::move(block)), was_loaded_(block_->Loaded()) {}
  // Leaves the index as it found it: a failed job must not keep indexes outside the list's cache.
  ~InputCursor() {
    if (!was_loaded_) block_->Unload();
  }

  Status Start() {
    auto index = block_->Index();
    if (!index.ok()) return index.status();
    index_ = std::move(index).value();
    return LoadFrom(0);
  }
  bool done() const { return done_; }
  const TraceId& id() const { return head_.id; }
  // Streams the head trace's spans into `visit` (Status(const StreamedSpan&)).
  template <typename Visit>
  Status StreamSpans(Visit&& visit) {
    block::RowGroupSpanReader::StreamedSpan span;
    for (uint32_t i = 0; i < head_.span_count; ++i) {
      Status read = reader_.NextSpan(span);
      if (!read.ok()) return Failed(read);
      TRACERY_RETURN_IF_ERROR(visit(span));
    }
    return Status::Ok();
  }
  // Moves to the next trace, reading the next row group when this one is used up.
  Status Advance() {
    bool found = false;
    Status read = reader_.NextTrace(head_, found);
    if (!read.ok()) return Failed(read);
    return found ? Status::Ok() : LoadFrom(row_group_ + 1);
  }
  // Spans of the row group held (decompressed).
  uint64_t held_spans() const { return held_spans_; }

 private:
  Status LoadFrom(uint64_t row_group) {
    held_spans_ = 0;
    reader_ = block::RowGroupSpanReader();  // the previous row group goes first
    for (row_group_ = row_group; row_group_ < index_->row_groups.size(); ++row_group_) {
      auto bytes = block_->ReadRowGroupBytes(uint32_t(row_group_));
      if (!bytes.ok()) return bytes.status();
      Status opened = reader_.Open(*bytes);
      if (!opened.ok()) return Failed(opened);
      bool found = false;
      Status read = reader_.NextTrace(head_, found);
      if (!read.ok()) return Failed(read);
      if (!found) continue;
      held_spans_ = index_->row_groups[row_group_].span_count;
      return Status::Ok();
    }
    done_ = true;
    return Status::Ok();
  }
  Status Failed(const Status& status) const {
    return Status(status.code(), block_->meta().tenant + "/" + block_->meta().block_id + " row group " +
                                     std::to_string(row_group_) + ": " + status.message());
  }

  BlockPtr block_;
  bool was_loaded_;
  std::shared_ptr<const block::BlockIndex> index_;
  uint64_t row_group_ = 0;
  block::RowGroupSpanReader reader_;
  block::TraceEntry head_;
  bool done_ = false;
  uint64_t held_spans_ = 0;
};

uint64_t BlockBytes(const block::BlockMeta& meta) { return meta.data_bytes + meta.index_bytes; }

}  // namespace

Compactor::Compactor(BlockList& blocks, backend::ObjectStore& store, CompactorOptions options)
    : blocks_(blocks), store_(store), options_(std::move(options)), replaced_(store, "compaction") {
  if (options_.window.count() <= 0) options_.window = std::chrono::hours(1);
  if (!options_.metrics) return;
  compactions_counter_ = &options_.metrics->GetCounter("tracery_compactions_total",
                                                       "Compactions done: blocks merged into one and listed.");
  bytes_in_counter_ = &options_.metrics->GetCounter("tracery_compaction_bytes_in_total",
                                                    "Bytes (data and index) of the blocks compactions replaced.");
  bytes_out_counter_ = &options_.metrics->GetCounter("tracery_compaction_bytes_out_total",
                                                     "Bytes (data and index) of the blocks compactions wrote.");
  blocks_in_counter_ = &options_.metrics->GetCounter("tracery_compaction_blocks_in_total",
                                                     "Blocks compactions replaced.");
}

std::optional<uint64_t> Compactor::LargestRowGroupSpans(const BlockPtr& block) {
  auto cached = largest_row_group_.find(block->meta().block_id);
  if (cached != largest_row_group_.end()) return cached->second;
  const bool was_loaded = block->Loaded();
  auto index = block->Index();
  if (!was_loaded) block->Unload();  // the merge loads it again if it takes the block
  if (!index.ok()) {
    spdlog::error("compaction: the index of {}/{} does not load: {}", block->meta().tenant, block->meta().block_id,
                  index.status().ToString());
    return std::nullopt;
  }
  uint64_t largest = 0;
  for (const auto& row_group : (*index)->row_groups) largest = std::max<uint64_t>(largest, row_group.span_count);
  largest_row_group_.emplace(block->meta().block_id, largest);
  return largest;
}

std::vector<std::vector<BlockPtr>> Compactor::PlanJobs(const std::string& tenant, CompactionRun& run) {
  // Blocks are listed oldest first; a group keeps that order.
  std::map<std::pair<std::string, uint64_t>, std::vector<BlockPtr>> groups;
  const uint64_t window = uint64_t(options_.window.count());
  const int64_t now = options_.now_unix_nanos
                          ? options_.now_unix_nanos()
                          : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto& block : blocks_.Blocks(tenant)) {
    const uint64_t index = block->meta().max_end_unix_nano / window;
    if (now < 0 || index + 1 > uint64_t(now) / window) continue;  // the window is still open
    groups[{block->meta().tier, index}].push_back(std::move(block));
  }
  // The spans a merge holds at once (compactor.h): each input's row group, and the row group
  // written, which holds fewer than row_group_spans spans and the trace being merged, whose
  // fragments each fit in their input's row group.
  const uint64_t output_spans = options_.writer.row_group_spans;
  std::vector<std::vector<BlockPtr>> jobs;
  for (auto& [key, group] : groups) {
    if (group.size() < 2) continue;
    std::vector<BlockPtr> job;
    uint64_t traces = 0, bytes = 0, spans = 0;  // spans: the sum of the inputs' largest row groups
    auto close_job = [&] {
      if (job.size() >= 2) jobs.push_back(std::move(job));
      job.clear();
      traces = bytes = spans = 0;
    };
    for (auto& block : group) {
      const uint64_t block_traces = block->meta().trace_count, block_bytes = BlockBytes(block->meta());
      if (block_traces >= options_.max_compaction_objects || block_bytes >= options_.max_block_bytes) continue;
      std::optional<uint64_t> block_spans = LargestRowGroupSpans(block);
      if (!block_spans) continue;
      if (2 * *block_spans + output_spans > options_.max_spans_in_memory) {
        // Its largest row group (a huge trace) alone would pass the bound: left as it is.
        ++run.left_for_memory;
        if (warned_for_memory_.insert(block->meta().block_id).second)
          spdlog::warn("compaction: {}/{} is not merged: its largest row group ({} spans) would take the merge past "
                       "max_spans_in_memory ({})",
                       tenant, block->meta().block_id, *block_spans, options_.max_spans_in_memory);
        continue;
      }
      if (traces + block_traces > options_.max_compaction_objects || bytes + block_bytes > options_.max_block_bytes ||
          2 * (spans + *block_spans) + output_spans > options_.max_spans_in_memory)
        close_job();
      job.push_back(std::move(block));
      traces += block_traces;
      bytes += block_bytes;
      spans += *block_spans;
    }
    close_job();
  }
  return jobs;
}

Result<BlockPtr> Compactor::Merge(const std::vector<BlockPtr>& inputs) {
  const block::BlockMeta& first = inputs.front()->meta();
  uint64_t expected_traces = 0;
  int64_t newest_write = 0;
  std::vector<std::string> input_ids;
  for (const auto& input : inputs) {
    expected_traces += input->meta().trace_count;
    newest_write = std::max(newest_write, input->meta().created_unix_seconds);
    input_ids.push_back(input->meta().block_id);
  }
  auto writer = block::BlockWriter::Create(store_, first.tenant, first.tier, expected_traces, options_.writer);
  if (!writer.ok()) return writer.status();
  (*writer)->SetCompactedFrom(std::move(input_ids), newest_write);
  auto failed = [&](const Status& status) {
    return Status(status.code(), "compaction of " + first.tenant + ": " + status.message());
  };

  std::vector<std::unique_ptr<InputCursor>> cursors;
  // The smallest trace ID first; an input's index breaks ties, so parts keep the inputs' order.
  using Head = std::pair<TraceId, size_t>;
  auto later = [](const Head& a, const Head& b) { return b < a; };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  for (size_t i = 0; i < inputs.size(); ++i) {
    cursors.push_back(std::make_unique<InputCursor>(inputs[i]));
    TRACERY_RETURN_IF_ERROR(cursors[i]->Start());
    if (!cursors[i]->done()) heads.emplace(cursors[i]->id(), i);
  }
  // A trace found in several inputs is streamed part after part; a span whose ID and kind an
  // earlier part had is dropped (each part was de-duplicated when its block was written).
  std::unordered_set<std::string> seen;
  std::string key;
  std::vector<size_t> parts;
  uint64_t peak = 0;
  while (!heads.empty()) {
    if (abandon_.load(std::memory_order_relaxed)) return Status::Unavailable("compaction: stopping");
    const TraceId id = heads.top().first;
    parts.clear();
    while (!heads.empty() && heads.top().first == id) {
      parts.push_back(heads.top().second);
      heads.pop();
    }
    if (Status begun = (*writer)->BeginTrace(id); !begun.ok()) return failed(begun);
    if (parts.size() > 1) {
      // After a huge trace the set has many buckets, which clear() would walk every time.
      if (seen.bucket_count() > 4096) seen = {};
      seen.clear();
    }
    for (size_t i : parts) {
      Status streamed = cursors[i]->StreamSpans([&](const block::RowGroupSpanReader::StreamedSpan& span) {
        if (parts.size() > 1) {
          key.assign(span.span->span_id);
          key += char(span.span->kind);
          if (!seen.insert(key).second) return Status::Ok();
        }
        return (*writer)->AddSpan(span.encoded, span.resource.first, span.resource.second, span.scope.first,
                                  span.scope.second);
      });
      if (!streamed.ok()) return failed(streamed);
    }
    uint64_t held = (*writer)->buffered_spans();
    for (const auto& cursor : cursors) held += cursor->held_spans();
    peak = std::max(peak, held);
    if (Status ended = (*writer)->EndTrace(); !ended.ok()) return failed(ended);
    for (size_t i : parts) {
      TRACERY_RETURN_IF_ERROR(cursors[i]->Advance());
      if (!cursors[i]->done()) heads.emplace(cursors[i]->id(), i);
    }
  }
  uint64_t before = peak_decoded_spans_.load(std::memory_order_relaxed);
  while (peak > before && !peak_decoded_spans_.compare_exchange_weak(before, peak)) {
  }
  cursors.clear();
  auto meta = (*writer)->Finish();
  if (!meta.ok()) return meta.status();
  auto output = block::BlockReader::OpenLazily(store_, meta->tenant, meta->block_id);
  if (!output.ok()) return output.status();
  return BlockPtr(std::move(output).value());
}

CompactionRun Compactor::RunOnce() {
  std::lock_guard run(run_mutex_);
  CompactionRun out;
  for (const std::string& tenant : blocks_.Tenants()) {
    for (auto& job : PlanJobs(tenant, out)) {
      auto output = Merge(job);
      if (!output.ok()) {
        ++out.failed;
        spdlog::error("compaction: merging {} blocks of {} failed (tried again next run): {}", job.size(), tenant,
                      output.status().ToString());
        continue;
      }
      const block::BlockMeta& meta = (*output)->meta();
      if (!blocks_.Replace(*output, job)) {
        // Retention took an input meanwhile: the output must not bring its traces back.
        ++out.failed;
        spdlog::info("compaction: an input of {}/{} left the list meanwhile; dropping the output", tenant, meta.block_id);
        replaced_.Retire(std::move(output).value());
        continue;
      }
      uint64_t bytes_in = 0;
      for (auto& input : job) {
        bytes_in += BlockBytes(input->meta());
        replaced_.Retire(std::move(input));
      }
      ++out.compactions;
      out.blocks_in += job.size();
      out.bytes_in += bytes_in;
      out.bytes_out += BlockBytes(meta);
      out.traces_out += meta.trace_count;
      spdlog::info("compaction: {} blocks of {} ({} bytes) merged into {} ({} traces, {} bytes)", job.size(), tenant,
                   bytes_in, meta.block_id, meta.trace_count, BlockBytes(meta));
      if (compactions_counter_) {
        compactions_counter_->Add();
        blocks_in_counter_->Add(job.size());
        bytes_in_counter_->Add(bytes_in);
        bytes_out_counter_->Add(BlockBytes(meta));
      }
    }
  }
  // What is remembered of blocks that are gone goes too.
  std::unordered_set<std::string> listed;
  for (const std::string& tenant : blocks_.Tenants())
    for (const auto& block : blocks_.Blocks(tenant)) listed.insert(block->meta().block_id);
  std::erase_if(largest_row_group_, [&](const auto& entry) { return !listed.contains(entry.first); });
  std::erase_if(warned_for_memory_, [&](const std::string& id) { return !listed.contains(id); });
  // The jobs' references are gone: a replaced input that no query holds can go now.
  out.deletion = replaced_.Sweep();
  return out;
}

void Compactor::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(loop_mutex_);
    while (!stopping_) {
      lock.unlock();
      CompactionRun run = RunOnce();
      if (run.compactions || run.failed || run.deletion.waiting)
        spdlog::debug("compaction: {} outputs from {} blocks, {} failed, {} inputs deleted, {} still read by queries",
                      run.compactions, run.blocks_in, run.failed, run.deletion.deleted, run.deletion.waiting);
      lock.lock();
      wake_.wait_for(lock, options_.cycle, [this] { return stopping_; });
    }
  });
}

void Compactor::Stop() {
  abandon_.store(true, std::memory_order_relaxed);
  {
    std::lock_guard lock(loop_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tracery::storage
