#include "storage/compactor.h"

#include <algorithm>
#include <map>
#include <queue>

#include <spdlog/spdlog.h>

namespace tracery::storage {
namespace {

using BlockPtr = std::shared_ptr<block::BlockReader>;

// One input's place in the merge: its current row group, decoded, and the next trace in it.
class InputCursor {
 public:
  explicit InputCursor(BlockPtr block) : block_(std::move(block)), was_loaded_(block_->Loaded()) {}
  // Leaves the index as it found it: a failed job must not keep indexes outside the list's cache.
  ~InputCursor() {
    if (!was_loaded_) block_->Unload();
  }

  Status Start() { return LoadFrom(0); }
  bool done() const { return position_ >= traces_.size(); }
  const TraceId& id() const { return traces_[position_].id; }
  otlp::TracesData TakeSpans() { return std::move(traces_[position_].spans); }
  // Moves to the next trace, reading the next row group when this one is used up.
  Status Advance() {
    if (++position_ < traces_.size()) return Status::Ok();
    return LoadFrom(row_group_ + 1);
  }
  uint64_t decoded_spans() const { return decoded_spans_; }

 private:
  Status LoadFrom(uint64_t row_group) {
    traces_.clear();
    position_ = 0;
    decoded_spans_ = 0;
    for (row_group_ = row_group; row_group_ < block_->meta().row_groups; ++row_group_) {
      auto traces = block_->ReadRowGroup(uint32_t(row_group_));
      if (!traces.ok()) return traces.status();
      traces_ = std::move(traces).value();
      if (traces_.empty()) continue;
      for (const auto& trace : traces_) decoded_spans_ += trace.spans.SpanCount();
      return Status::Ok();
    }
    return Status::Ok();  // past the last row group: done
  }

  BlockPtr block_;
  bool was_loaded_;
  uint64_t row_group_ = 0;
  std::vector<block::DecodedTrace> traces_;
  size_t position_ = 0;
  uint64_t decoded_spans_ = 0;
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

std::vector<std::vector<BlockPtr>> Compactor::PlanJobs(const std::string& tenant) const {
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
  std::vector<std::vector<BlockPtr>> jobs;
  for (auto& [key, group] : groups) {
    std::vector<BlockPtr> job;
    uint64_t traces = 0, bytes = 0;
    auto close_job = [&] {
      if (job.size() >= 2) jobs.push_back(std::move(job));
      job.clear();
      traces = bytes = 0;
    };
    for (auto& block : group) {
      const uint64_t block_traces = block->meta().trace_count, block_bytes = BlockBytes(block->meta());
      if (block_traces >= options_.max_compaction_objects || block_bytes >= options_.max_block_bytes) continue;
      if (traces + block_traces > options_.max_compaction_objects || bytes + block_bytes > options_.max_block_bytes)
        close_job();
      job.push_back(std::move(block));
      traces += block_traces;
      bytes += block_bytes;
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

  std::vector<InputCursor> cursors;
  cursors.reserve(inputs.size());
  // The smallest trace ID first; an input's index breaks ties, so parts keep the inputs' order.
  using Head = std::pair<TraceId, size_t>;
  auto later = [](const Head& a, const Head& b) { return b < a; };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  for (size_t i = 0; i < inputs.size(); ++i) {
    cursors.emplace_back(inputs[i]);
    TRACERY_RETURN_IF_ERROR(cursors[i].Start());
    if (!cursors[i].done()) heads.emplace(cursors[i].id(), i);
  }
  uint64_t peak = 0;
  while (!heads.empty()) {
    if (abandon_.load(std::memory_order_relaxed)) return Status::Unavailable("compaction: stopping");
    const TraceId id = heads.top().first;
    otlp::TracesData merged;
    size_t parts = 0;
    while (!heads.empty() && heads.top().first == id) {
      const size_t i = heads.top().second;
      heads.pop();
      otlp::TracesData part = cursors[i].TakeSpans();
      for (auto& rs : part.resource_spans) merged.resource_spans.push_back(std::move(rs));
      ++parts;
      TRACERY_RETURN_IF_ERROR(cursors[i].Advance());
      if (!cursors[i].done()) heads.emplace(cursors[i].id(), i);
    }
    if (parts > 1) block::DeduplicateSpans(merged);
    uint64_t decoded = merged.SpanCount();
    for (const auto& cursor : cursors) decoded += cursor.decoded_spans();
    peak = std::max(peak, decoded);
    Status added = (*writer)->AddTrace(id, otlp::EncodeTracesData(merged));
    if (!added.ok()) return Status(added.code(), "compaction of " + first.tenant + ": " + added.message());
  }
  uint64_t before = peak_decoded_spans_.load(std::memory_order_relaxed);
  while (peak > before && !peak_decoded_spans_.compare_exchange_weak(before, peak)) {
  }
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
    for (auto& job : PlanJobs(tenant)) {
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
