// Cutting a block: the completed traces of one tenant, read back from the WAL in ID order and
// streamed into a block. Runs on the background thread pool, one cut per tenant at a time.
//
// The order that keeps every acknowledged span readable exactly once, whatever fails:
//   1. the traces are marked as being cut (their fragments so far), and stay readable live;
//   2. the block is written; its meta.json last, each object synced and its directory too;
//   3. the block joins the block list (queries now find the traces there as well);
//   4. only then are the cut fragments dropped from the live index and their WAL references
//      released; a segment is deleted once sealed and unreferenced.
// A crash before 4 replays the traces again: they go into a further block, and queries
// remove the duplicate spans. A failure before 3 leaves the traces queued for the next cut.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "ingester/ingester.h"
#include "storage/tiers.h"

namespace tracery::ingester {

void Ingester::CutBlock(const std::shared_ptr<Tenant>& tenant) {
  // Take the oldest completed traces up to max_block_bytes: a cut of bounded size releases
  // its memory and WAL segments soon, and a backlog becomes a run of cuts, not one huge one.
  std::vector<TraceId> ids;
  {
    std::lock_guard lock(tenant->mutex);
    ids.swap(tenant->complete);
  }
  std::vector<TraceId> plan;
  uint64_t planned_bytes = 0;
  size_t taken = 0;
  for (; taken < ids.size() && planned_bytes < options_.max_block_bytes; ++taken) {
    LiveKey key{ids[taken], tenant->id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    LiveTrace* trace = shard.traces.Find(key.id, key.tenant);
    if (!trace || !trace->complete || trace->cutting > 0) continue;
    trace->cutting = trace->fragment_count;
    planned_bytes += trace->bytes;
    plan.push_back(ids[taken]);
  }
  {
    std::lock_guard lock(tenant->mutex);
    // What is left goes back in front of anything completed meanwhile.
    tenant->complete.insert(tenant->complete.begin(), ids.begin() + taken, ids.end());
    tenant->complete_bytes = tenant->complete_bytes > planned_bytes ? tenant->complete_bytes - planned_bytes : 0;
  }
  std::vector<TraceId>().swap(ids);
  std::sort(plan.begin(), plan.end());
  plan.erase(std::unique(plan.begin(), plan.end()), plan.end());

  auto started = std::chrono::steady_clock::now();
  std::vector<bool> written(plan.size(), false);
  Status status = plan.empty() ? Status::Ok() : WriteBlock(*tenant, plan, written);
  if (!status.ok()) {
    flush_failures_.Add();
    spdlog::error("ingester: cutting a block for tenant {} failed (its traces wait for the next cut): {}", tenant->name,
                  status.ToString());
    std::fill(written.begin(), written.end(), false);
  }
  FinishCut(*tenant, plan, written);

  bool failed = !status.ok();
  bool more = false;
  {
    std::lock_guard lock(tenant->mutex);
    // A backlog is cut on at once, one bounded block after the other.
    more = !failed && !closing_ && !tenant->complete.empty() &&
           (tenant->complete_bytes >= options_.max_block_bytes || OverHalfMemory() || flushing_.load());
    tenant->cutting = more;
    tenant->failed_cuts = failed ? tenant->failed_cuts + 1 : 0;
    // Back off after failures (a full disk), up to half a minute; a sink's exporters retry
    // within each delivery already, so its deliveries are tried again within 5 s.
    int64_t cap = options_.sink ? 5 : 30;
    int64_t backoff = failed ? std::min<int64_t>(cap, int64_t(1) << std::min(tenant->failed_cuts, 5)) * 1'000'000'000 : 0;
    tenant->next_cut_attempt = env_.NowMonotonicNanos() + backoff;
  }
  if (!failed && !plan.empty()) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    spdlog::debug("ingester: tenant {} cut {} traces in {} ms", tenant->name, plan.size(), ms);
    // Seal the segment the cut traces were in, so that it can go once nothing live is in it.
    wal_->Rotate();
    RemoveFreeSegments();
  }
  if (more && pool_.Submit([this, tenant] { CutBlock(tenant); })) return;  // still counted as running
  if (more) {
    std::lock_guard lock(tenant->mutex);
    tenant->cutting = false;
  }
  std::lock_guard lock(cut_mutex_);
  // Retryable for whoever asked (POST /flush answers 503): the spans are safe in the WAL.
  if (failed) last_cut_status_ = Status::Unavailable("a block cut failed, the spans wait in the WAL: " + status.message());
  cuts_running_--;
  cuts_done_.notify_all();
}

bool Ingester::FragmentsBeingCut(const Tenant& tenant, const TraceId& id, std::vector<FragmentLocation>& out,
                                 size_t* tier, uint32_t* spans) {
  LiveKey key{id, tenant.id};
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mutex);
  const LiveTrace* trace = shard.traces.Find(id, tenant.id);
  if (!trace || trace->cutting == 0) return false;
  out.clear();
  shard.traces.Fragments(*trace, out);
  out.resize(trace->cutting);
  if (tier) *tier = TierOf(*trace);
  if (spans) *spans = trace->span_count;
  return true;
}

bool Ingester::ReadTraceBeingCut(const Tenant& tenant, const TraceId& id, std::vector<FragmentLocation>& fragments,
                                 std::string& out, Status& unread, size_t* tier, uint32_t* spans) {
  if (!FragmentsBeingCut(tenant, id, fragments, tier, spans)) return false;
  Status read = ReadFragments(fragments, out);
  if (read.ok()) return true;
  // This trace waits for the next cut; the others go on.
  if (unread.ok()) unread = read;
  fragment_read_failures_.Add();
  spdlog::error("ingester: cannot read trace {} of tenant {} from the WAL: {}", id.Hex(), tenant.name, read.ToString());
  return false;
}

Status Ingester::WriteBlock(Tenant& tenant, const std::vector<TraceId>& plan, std::vector<bool>& written) {
  if (options_.sink) return DeliverToSink(tenant, plan, written);
  // One block per retention tier present in the plan, written side by side in ID order.
  std::array<std::unique_ptr<block::BlockWriter>, storage::kTiers.size()> writers;
  std::array<std::vector<size_t>, storage::kTiers.size()> added;
  std::string bytes;
  std::vector<FragmentLocation> fragments;
  uint64_t otlp_bytes = 0;
  Status unread;  // the first read failure: a cut that wrote nothing because of it failed
  for (size_t i = 0; i < plan.size(); ++i) {
    bytes.clear();
    size_t t = 0;
    if (!ReadTraceBeingCut(tenant, plan[i], fragments, bytes, unread, &t)) continue;
    if (bytes.empty()) {  // only decision records: nothing to store
      written[i] = true;
      continue;
    }
    if (!writers[t]) {
      auto writer = block::BlockWriter::Create(store_, tenant.name, std::string(storage::kTiers[t]), plan.size(), options_.block);
      if (!writer.ok()) return writer.status();
      writers[t] = std::move(writer).value();
    }
    Status status = writers[t]->AddTrace(plan[i], bytes);
    if (status.code() == StatusCode::kInvalidArgument) {
      // A trace that cannot be encoded must never block its tenant: keep its spans aside.
      Status kept = Quarantine(tenant.name, plan[i].Hex(), bytes);
      if (kept.ok()) {
        traces_quarantined_.Add();
        spdlog::error("ingester: trace {} of tenant {} cannot be encoded ({}); its spans are in the dead-letter directory",
                      plan[i].Hex(), tenant.name, status.message());
        written[i] = true;  // released with the block
      } else {
        spdlog::error("ingester: trace {} of tenant {} cannot be encoded ({}) nor kept aside ({}); it waits", plan[i].Hex(),
                      tenant.name, status.message(), kept.ToString());
      }
      continue;
    }
    TRACERY_RETURN_IF_ERROR(status);
    otlp_bytes += bytes.size();
    added[t].push_back(i);
  }
  // Each tier's block is made durable and joins the list before any trace is released.
  for (size_t t = 0; t < writers.size(); ++t) {
    if (!writers[t] || writers[t]->trace_count() == 0) continue;  // only quarantined or unreadable traces
    auto meta = writers[t]->Finish();
    if (!meta.ok()) return meta.status();
    auto reader = block::BlockReader::OpenLazily(store_, tenant.name, meta->block_id);
    if (!reader.ok()) return reader.status();
    blocks_.Add(std::move(reader).value());
    for (size_t i : added[t]) written[i] = true;
    blocks_cut_.Add();
    traces_flushed_.Add(meta->trace_count);
    tier_traces_[t]->Add(meta->trace_count);
    block_bytes_written_.Add(meta->data_bytes + meta->index_bytes);
    spdlog::info("ingester: tenant {} cut {} block {}: {} traces, {} spans -> {} bytes ({:.1f} B/span)", tenant.name,
                 storage::kTiers[t], meta->block_id, meta->trace_count, meta->span_count,
                 meta->data_bytes + meta->index_bytes,
                 meta->span_count ? double(meta->data_bytes + meta->index_bytes) / double(meta->span_count) : 0.0);
  }
  spdlog::debug("ingester: tenant {} cut {} OTLP bytes", tenant.name, otlp_bytes);
  // Nothing written and something unreadable: a failed cut, retried after a backoff (not at
  // once, which would spin on a failing disk).
  if (otlp_bytes == 0 && !unread.ok()) return unread;
  return Status::Ok();
}

Status Ingester::DeliverToSink(Tenant& tenant, const std::vector<TraceId>& plan, std::vector<bool>& written) {
  std::vector<KeptTrace> traces;
  std::vector<size_t> indexes;
  Status unread;
  std::array<uint64_t, storage::kTiers.size()> by_tier{};
  std::vector<FragmentLocation> fragments;
  for (size_t i = 0; i < plan.size(); ++i) {
    KeptTrace trace;
    trace.id = plan[i];
    size_t tier = 0;
    if (!ReadTraceBeingCut(tenant, plan[i], fragments, trace.bytes, unread, &tier, &trace.span_count)) continue;
    if (trace.bytes.empty()) {
      written[i] = true;
      continue;
    }
    by_tier[tier]++;
    traces.push_back(std::move(trace));
    indexes.push_back(i);
  }
  if (traces.empty()) return unread;
  TRACERY_RETURN_IF_ERROR(options_.sink->Deliver(tenant.name, traces));
  for (size_t i : indexes) written[i] = true;
  traces_flushed_.Add(traces.size());
  for (size_t t = 0; t < by_tier.size(); ++t) tier_traces_[t]->Add(by_tier[t]);
  return Status::Ok();
}

void Ingester::FinishCut(Tenant& tenant, const std::vector<TraceId>& plan, const std::vector<bool>& written) {
  std::map<uint64_t, int64_t> released;
  std::vector<TraceId> requeue;
  uint64_t requeue_bytes = 0;
  int64_t now = env_.NowMonotonicNanos();
  std::vector<FragmentLocation> fragments;
  for (size_t i = 0; i < plan.size(); ++i) {
    LiveKey key{plan[i], tenant.id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    LiveTrace* found = shard.traces.Find(key.id, key.tenant);
    if (!found) continue;
    LiveTrace& trace = *found;
    uint32_t cut = trace.cutting;
    trace.cutting = 0;
    if (!written[i]) {  // still complete: queued again for the next cut
      requeue.push_back(plan[i]);
      requeue_bytes += trace.bytes;
      continue;
    }
    fragments.clear();
    shard.traces.Fragments(trace, fragments);
    uint64_t cut_bytes = 0;
    for (uint32_t f = 0; f < cut; ++f) {
      released[fragments[f].segment]++;
      cut_bytes += fragments[f].length;
    }
    trace.bytes = trace.bytes > cut_bytes ? uint32_t(trace.bytes - cut_bytes) : 0;
    // What came after the cut started: spans, or only the places of decision records.
    bool spans_left = std::any_of(fragments.begin() + cut, fragments.end(),
                                  [](const FragmentLocation& f) { return f.length > 0; });
    size_t tier = TierOf(trace);
    if (!spans_left) {
      for (size_t f = cut; f < fragments.size(); ++f) released[fragments[f].segment]++;
      RememberSize(shard, key, trace.lifetime_bytes);
      RememberDecision(shard, key, Decision::kKept, uint8_t(1 + tier));
      shard.traces.Erase(trace);
      shard.traces.Trim();
      AccountMemory(shard);
      tenant.live_traces.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    // Spans that came while the block was written: the trace lives on with them.
    shard.traces.DropOldestFragments(trace, cut);
    AccountMemory(shard);
    trace.complete = false;
    trace.tier = uint8_t(1 + tier);  // its later spans go to the tier the cut ones went to
    trace.first_arrival = now;  // the summary (span count, times, flags) stays the whole trace's
  }
  for (const auto& [segment, count] : released) AddSegmentRefs(segment, -count);
  if (!requeue.empty()) {
    {
      std::lock_guard lock(tenant.mutex);
      if (tenant.complete.empty()) tenant.complete_since = now;
      tenant.complete.insert(tenant.complete.end(), requeue.begin(), requeue.end());
      tenant.complete_bytes += requeue_bytes;
    }
    std::lock_guard lock(waiting_mutex_);
    waiting_tenants_.insert(tenant.id);
  }
}

Status Ingester::Quarantine(const std::string& tenant, const std::string& what, std::string_view bytes) {
  std::string directory = JoinPath(options_.dead_letter_directory, tenant);
  TRACERY_RETURN_IF_ERROR(CreateDirs(env_, directory));
  std::string path = JoinPath(directory, what + "-" + std::to_string(env_.NowUnixNanos()) + ".otlp");
  auto file = env_.CreateWritable(path);
  if (!file.ok()) return file.status();
  TRACERY_RETURN_IF_ERROR((*file)->Append(bytes));
  TRACERY_RETURN_IF_ERROR((*file)->Sync());
  TRACERY_RETURN_IF_ERROR((*file)->Close());
  return env_.SyncDir(directory);
}

void Ingester::RemoveFreeSegments() {
  std::lock_guard removing(remove_segments_mutex_);  // cuts and sweeps may both get here
  for (uint64_t segment : wal_->SealedSegments()) {
    {
      std::lock_guard lock(segments_mutex_);
      if (segment_refs_.count(segment) > 0) continue;
    }
    Status status = wal_->RemoveSegment(segment);
    if (status.ok()) wal_segments_removed_.Add();
    else spdlog::warn("wal: {}", status.ToString());
  }
}

}  // namespace tracery::ingester
