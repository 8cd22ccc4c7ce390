#include "ingester/ingester.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/coding.h"

namespace tracery::ingester {
namespace {

// WAL record layouts (docs/wal-format.md). Version 2, the usual one, is the request as
// received; version 1 lists per-trace fragments and is used when a limit refused some spans,
// so that a refused span is never written.
//   both:  u8 version, tenant (length-prefixed)
//   v1:    varint fragment count, then per fragment: 16-byte trace ID, varint span count,
//          length-prefixed encoded resource_spans fields
//   v2:    the encoded ExportTraceServiceRequest, to the end of the record
constexpr uint8_t kFragmentsRecord = 1;
constexpr uint8_t kRequestRecord = 2;

std::string EncodeFragmentsRecord(const std::string& tenant, const std::vector<const otlp::TraceFragment*>& fragments) {
  size_t size = 32 + tenant.size();
  for (const auto* f : fragments) size += 32 + f->bytes.size();
  std::string record;
  record.reserve(size);
  record += char(kFragmentsRecord);
  PutLengthPrefixed(record, tenant);
  PutVarint(record, fragments.size());
  for (const auto* f : fragments) {
    record.append(f->trace_id.View());
    PutVarint(record, f->span_count);
    PutLengthPrefixed(record, f->bytes);
  }
  return record;
}

std::string EncodeRequestRecord(const std::string& tenant, std::string_view request) {
  std::string record;
  record.reserve(1 + 5 + tenant.size() + request.size());
  record += char(kRequestRecord);
  PutLengthPrefixed(record, tenant);
  record.append(request);
  return record;
}

bool DecodeRecord(std::string_view record, std::string& tenant, std::vector<otlp::TraceFragment>& fragments) {
  ByteReader in(record);
  std::string_view version, name, id, bytes;
  if (!in.ReadBytes(1, version) || !in.ReadLengthPrefixed(name)) return false;
  tenant.assign(name);
  if (uint8_t(version[0]) == kRequestRecord) {
    otlp::SplitRequest split;
    std::string_view request(in.position(), in.remaining());
    if (!otlp::SplitByTrace(request, split).ok()) return false;
    fragments = std::move(split.fragments);
    return true;
  }
  uint64_t count, spans;
  if (uint8_t(version[0]) != kFragmentsRecord || !in.ReadVarint(count) || count > in.remaining()) return false;
  for (uint64_t i = 0; i < count; ++i) {
    if (!in.ReadBytes(16, id) || !in.ReadVarint(spans) || !in.ReadLengthPrefixed(bytes)) return false;
    auto& f = fragments.emplace_back();
    f.trace_id = TraceId::FromBytes(id);
    f.span_count = uint32_t(spans);
    f.bytes.assign(bytes);
  }
  return true;
}


}  // namespace

Ingester::Ingester(Options options, backend::ObjectStore& store, MetricsRegistry& metrics)
    : options_(std::move(options)),
      store_(store),
      spans_ingested_(metrics.GetCounter("tracery_ingester_spans_ingested_total", "Spans made durable by the ingester.")),
      bytes_ingested_(metrics.GetCounter("tracery_ingester_bytes_ingested_total", "OTLP bytes of spans made durable.")),
      blocks_cut_(metrics.GetCounter("tracery_ingester_blocks_flushed_total", "Blocks cut and written to the backend.")),
      block_bytes_written_(metrics.GetCounter("tracery_ingester_block_bytes_written_total", "Bytes of block data and index written.")),
      traces_flushed_(metrics.GetCounter("tracery_ingester_traces_flushed_total", "Traces written into blocks.")),
      wal_segments_removed_(metrics.GetCounter("tracery_wal_segments_removed_total", "WAL segments deleted after their spans were flushed.")),
      replayed_records_(metrics.GetCounter("tracery_wal_replayed_records_total", "WAL records replayed at start.")),
      replay_torn_bytes_(metrics.GetCounter("tracery_wal_torn_bytes_total", "Bytes cut off torn WAL tails at start.")),
      spans_refused_trace_too_large_(metrics.GetCounter("tracery_distributor_spans_refused_total",
                                                        "Spans refused, by reason (whole refused requests are counted in "
                                                        "tracery_distributor_requests_refused_total).",
                                                        {{"reason", "trace_too_large"}})),
      spans_refused_live_traces_(metrics.GetCounter("tracery_distributor_spans_refused_total",
                                                    "Spans refused, by reason (whole refused requests are counted in "
                                                    "tracery_distributor_requests_refused_total).",
                                                    {{"reason", "live_traces_exceeded"}})),
      flush_failures_(metrics.GetCounter("tracery_ingester_flush_failures_total", "Block cuts that failed and will be retried.")) {}

Result<std::unique_ptr<Ingester>> Ingester::Open(Options options, backend::ObjectStore& store, MetricsRegistry& metrics) {
  std::unique_ptr<Ingester> ingester(new Ingester(std::move(options), store, metrics));
  TRACERY_RETURN_IF_ERROR(ingester->OpenStoredBlocks());
  wal::ReplayReport report;
  Ingester* self = ingester.get();
  auto wal = wal::WriteAheadLog::Open(
      self->options_.wal, [self](uint64_t segment, std::string_view record) { self->Replay(segment, record); }, &report);
  if (!wal.ok()) return wal.status();
  ingester->wal_ = std::move(wal).value();
  ingester->replayed_records_.Add(report.records);
  ingester->replay_torn_bytes_.Add(report.torn_bytes_cut);
  if (report.segments > 0)
    spdlog::info("wal: replayed {} records ({} bytes) from {} segments; {} torn bytes cut", report.records, report.bytes,
                 report.segments, report.torn_bytes_cut);
  auto& wal_ref = *ingester->wal_;
  metrics.AddCallbackGauge("tracery_wal_bytes_written", "Bytes written to the WAL since start.",
                           [&wal_ref] { return double(wal_ref.Stats().bytes_written); });
  metrics.AddCallbackGauge("tracery_wal_syncs", "WAL group-commit syncs since start.",
                           [&wal_ref] { return double(wal_ref.Stats().syncs); });
  metrics.AddCallbackGauge("tracery_ingester_live_traces", "Traces held in memory.",
                           [self] { return double(self->GetTotals().live_traces); });
  metrics.AddCallbackGauge("tracery_ingester_live_bytes", "OTLP bytes of traces held in memory.",
                           [self] { return double(self->GetTotals().live_bytes); });
  metrics.AddCallbackGauge("tracery_blocks", "Blocks open for queries.", [self] { return double(self->GetTotals().blocks); });
  ingester->sweeper_ = std::thread([self] { self->SweepLoop(); });
  return ingester;
}

Ingester::~Ingester() { Shutdown(false); }

Status Ingester::OpenStoredBlocks() {
  auto tenants = store_.List("");
  if (!tenants.ok()) return tenants.status();
  for (const auto& tenant_name : *tenants) {
    if (!backend::IsSafeObjectName(tenant_name)) continue;
    auto block_ids = store_.List(tenant_name);
    if (!block_ids.ok()) return block_ids.status();
    Tenant& tenant = GetTenant(tenant_name);
    for (const auto& block_id : *block_ids) {
      auto reader = block::BlockReader::Open(store_, tenant_name, block_id);
      if (!reader.ok()) {
        spdlog::warn("blocks: skipping {}/{}: {}", tenant_name, block_id, reader.status().ToString());
        continue;
      }
      tenant.blocks.push_back(std::move(reader).value());
    }
    spdlog::info("blocks: tenant {} has {} blocks", tenant_name, tenant.blocks.size());
  }
  return Status::Ok();
}

Ingester::Tenant& Ingester::GetTenant(const std::string& name) {
  {
    std::shared_lock lock(tenants_mutex_);
    auto it = tenants_.find(name);
    if (it != tenants_.end()) return *it->second;
  }
  std::unique_lock lock(tenants_mutex_);
  auto& slot = tenants_[name];
  if (!slot) slot = std::make_shared<Tenant>(name);
  return *slot;
}

std::shared_ptr<Ingester::Tenant> Ingester::FindTenant(const std::string& name) const {
  std::shared_lock lock(tenants_mutex_);
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Ingester::Tenant>> Ingester::AllTenants() const {
  std::shared_lock lock(tenants_mutex_);
  std::vector<std::shared_ptr<Tenant>> out;
  for (const auto& [name, tenant] : tenants_) out.push_back(tenant);
  return out;
}

void Ingester::Replay(uint64_t segment, std::string_view record) {
  std::string tenant;
  std::vector<otlp::TraceFragment> fragments;
  if (!DecodeRecord(record, tenant, fragments) || !backend::IsSafeObjectName(tenant)) {
    spdlog::error("wal: segment {} holds a record that does not decode; skipped", segment);
    return;
  }
  std::vector<const otlp::TraceFragment*> pointers;
  for (const auto& f : fragments) pointers.push_back(&f);
  AddSegmentRefs(segment, InsertLive(GetTenant(tenant), pointers, segment));
}

int64_t Ingester::InsertLive(Tenant& tenant, const std::vector<const otlp::TraceFragment*>& fragments, uint64_t segment) {
  int64_t new_refs = 0;
  Clock::time_point now = Clock::now();
  for (const auto* fragment : fragments) {
    const otlp::TraceFragment& f = *fragment;
    Shard& shard = tenant.shards[f.trace_id.Hash() % kShards];
    std::lock_guard lock(shard.mutex);
    auto [it, inserted] = shard.traces.try_emplace(f.trace_id);
    LiveTrace& trace = it->second;
    if (inserted) {
      trace.first_append = now;
      tenant.live_traces.fetch_add(1, std::memory_order_relaxed);
    }
    trace.last_append = now;
    // Exact growth: a trace's bytes wait in memory for trace_idle_period and more, and
    // doubling capacity would leave up to half of that memory unused.
    trace.bytes.reserve(trace.bytes.size() + f.bytes.size());
    trace.bytes += f.bytes;
    trace.span_count += f.span_count;
    tenant.live_bytes.fetch_add(int64_t(f.bytes.size()), std::memory_order_relaxed);
    memory_bytes_.fetch_add(int64_t(f.bytes.size()), std::memory_order_relaxed);
    if (std::find(trace.segments.begin(), trace.segments.end(), segment) == trace.segments.end()) {
      trace.segments.push_back(segment);
      new_refs++;
    }
  }
  return new_refs;
}

void Ingester::AddSegmentRefs(uint64_t segment, int64_t delta) {
  if (delta == 0) return;
  std::lock_guard lock(segments_mutex_);
  segment_refs_[segment] += delta;
}

std::vector<bool> Ingester::Push(const std::string& tenant_name, std::string_view request,
                                 const std::vector<otlp::TraceFragment>& all_fragments, Done done) {
  Tenant& tenant = GetTenant(tenant_name);
  PushOutcome outcome;
  std::vector<bool> accepted(all_fragments.size(), true);
  std::vector<const otlp::TraceFragment*> fragments;
  fragments.reserve(all_fragments.size());
  // Limits are checked before anything is written, so a refused span is never half-stored.
  for (size_t i = 0; i < all_fragments.size(); ++i) {
    const otlp::TraceFragment& f = all_fragments[i];
    if (options_.max_bytes_per_trace > 0 || options_.max_traces_per_tenant > 0) {
      Shard& shard = tenant.shards[f.trace_id.Hash() % kShards];
      size_t existing_bytes = 0;
      bool exists;
      {
        std::lock_guard lock(shard.mutex);
        auto it = shard.traces.find(f.trace_id);
        exists = it != shard.traces.end();
        if (exists) existing_bytes = it->second.bytes.size();
      }
      if (options_.max_bytes_per_trace > 0 && existing_bytes + f.bytes.size() > options_.max_bytes_per_trace) {
        outcome.rejected_spans += f.span_count;
        spans_refused_trace_too_large_.Add(f.span_count);
        outcome.rejected_reason = "trace " + f.trace_id.Hex() + " exceeds max_bytes_per_trace (" +
                                  std::to_string(options_.max_bytes_per_trace) + " bytes)";
        accepted[i] = false;
        continue;
      }
      if (!exists && options_.max_traces_per_tenant > 0 &&
          uint64_t(tenant.live_traces.load(std::memory_order_relaxed)) >= options_.max_traces_per_tenant) {
        outcome.rejected_spans += f.span_count;
        spans_refused_live_traces_.Add(f.span_count);
        outcome.rejected_reason = "tenant " + tenant_name + " has reached max_traces_per_user (" +
                                  std::to_string(options_.max_traces_per_tenant) + " live traces)";
        accepted[i] = false;
        continue;
      }
    }
    fragments.push_back(&f);
  }
  if (fragments.empty()) {
    done(std::move(outcome));
    return accepted;
  }
  uint64_t spans = 0, bytes = 0;
  for (const auto* f : fragments) {
    spans += f->span_count;
    bytes += f->bytes.size();
  }

  // Acknowledge when both the WAL write is durable and the spans are readable in memory.
  struct Pending {
    std::atomic<int> remaining{2};
    PushOutcome outcome;
    Done done;
    std::mutex mutex;
    void Finish() {
      if (remaining.fetch_sub(1) == 1) done(std::move(outcome));
    }
  };
  bool outcome_rejected = outcome.rejected_spans > 0;
  auto pending = std::make_shared<Pending>();
  pending->outcome = std::move(outcome);
  pending->done = std::move(done);
  uint64_t segment;
  {
    // The pin keeps the segment alive until this request's traces reference it.
    std::lock_guard lock(segments_mutex_);
    std::string record = outcome_rejected ? EncodeFragmentsRecord(tenant_name, fragments)
                                          : EncodeRequestRecord(tenant_name, request);
    segment = wal_->Append(std::move(record), [pending, this, spans, bytes](Status status) {
      if (status.ok()) {
        spans_ingested_.Add(spans);
        bytes_ingested_.Add(bytes);
      } else {
        std::lock_guard lock(pending->mutex);
        pending->outcome.status = status;
      }
      pending->Finish();
    });
    segment_refs_[segment] += 1;
  }
  int64_t new_refs = InsertLive(tenant, fragments, segment);
  AddSegmentRefs(segment, new_refs - 1);
  pending->Finish();
  return accepted;
}

Result<std::optional<otlp::TracesData>> Ingester::FindTrace(const std::string& tenant_name, const TraceId& id,
                                                            uint64_t start_unix_nano, uint64_t end_unix_nano) {
  std::shared_ptr<Tenant> tenant = FindTenant(tenant_name);
  if (!tenant) return std::optional<otlp::TracesData>();
  std::vector<std::string> encoded;
  {
    Shard& shard = tenant->shards[id.Hash() % kShards];
    std::lock_guard lock(shard.mutex);
    if (auto it = shard.traces.find(id); it != shard.traces.end()) encoded.push_back(it->second.bytes);
  }
  std::vector<std::shared_ptr<const TraceMap>> flushing;
  {
    std::lock_guard lock(tenant->completing_mutex);
    if (auto it = tenant->completing.find(id); it != tenant->completing.end()) encoded.push_back(it->second.bytes);
    flushing = tenant->flushing;
  }
  for (const auto& batch : flushing)
    if (auto it = batch->find(id); it != batch->end()) encoded.push_back(it->second.bytes);
  std::vector<std::shared_ptr<block::BlockReader>> blocks;
  {
    std::shared_lock lock(tenant->blocks_mutex);
    blocks = tenant->blocks;
  }

  otlp::TracesData merged;
  bool found = false;
  for (const auto& bytes : encoded) {
    otlp::TracesData part;
    TRACERY_RETURN_IF_ERROR(otlp::DecodeTracesData(bytes, part));
    for (auto& rs : part.resource_spans) merged.resource_spans.push_back(std::move(rs));
    found = true;
  }
  for (const auto& block : blocks) {
    const block::BlockMeta& meta = block->meta();
    if (meta.max_end_unix_nano < start_unix_nano || meta.min_start_unix_nano > end_unix_nano) continue;
    if (!block->MayContain(id)) continue;
    auto part = block->FindTrace(id);
    if (!part.ok()) {
      spdlog::error("query: {}", part.status().ToString());
      continue;
    }
    if (!part->has_value()) continue;
    for (auto& rs : (*part)->resource_spans) merged.resource_spans.push_back(std::move(rs));
    found = true;
  }
  if (!found) return std::optional<otlp::TracesData>();
  block::DeduplicateSpans(merged);
  return std::optional<otlp::TracesData>(std::move(merged));
}

void Ingester::MoveIdleTraces(Tenant& tenant, Clock::time_point now, bool everything) {
  for (auto& shard : tenant.shards) {
    std::vector<std::pair<TraceId, LiveTrace>> moved;
    {
      std::lock_guard lock(shard.mutex);
      for (auto it = shard.traces.begin(); it != shard.traces.end();) {
        bool idle = now - it->second.last_append >= options_.trace_idle_period;
        bool too_old = now - it->second.first_append >= options_.max_block_duration;
        if (everything || idle || too_old) {
          moved.emplace_back(it->first, std::move(it->second));
          it = shard.traces.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (moved.empty()) continue;
    std::lock_guard lock(tenant.completing_mutex);
    if (tenant.completing.empty()) tenant.completing_since = now;
    for (auto& [id, trace] : moved) {
      tenant.live_traces.fetch_sub(1, std::memory_order_relaxed);
      tenant.completing_bytes += trace.bytes.size();
      auto [it, inserted] = tenant.completing.try_emplace(id, std::move(trace));
      if (!inserted) {  // completed before, then got late spans: one entry, one block
        LiveTrace& existing = it->second;
        existing.bytes += trace.bytes;
        existing.span_count += trace.span_count;
        for (uint64_t s : trace.segments) {
          if (std::find(existing.segments.begin(), existing.segments.end(), s) == existing.segments.end())
            existing.segments.push_back(s);
          else
            AddSegmentRefs(s, -1);  // the two entries' references to s become one
        }
      }
    }
  }
}

Status Ingester::CutBlock(Tenant& tenant) {
  std::shared_ptr<TraceMap> batch;
  {
    std::lock_guard lock(tenant.completing_mutex);
    if (tenant.completing.empty()) return Status::Ok();
    batch = std::make_shared<TraceMap>(std::move(tenant.completing));
    tenant.completing.clear();
    tenant.completing_bytes = 0;
    tenant.flushing.push_back(batch);
  }
  std::vector<block::TraceInput> inputs;
  inputs.reserve(batch->size());
  uint64_t bytes = 0;
  for (const auto& [id, trace] : *batch) {
    inputs.push_back({id, trace.bytes});
    bytes += trace.bytes.size();
  }
  std::sort(inputs.begin(), inputs.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  auto started = Clock::now();
  auto meta = block::WriteBlock(store_, tenant.name, "sampled", inputs, options_.block);
  std::shared_ptr<block::BlockReader> reader;
  if (meta.ok()) {
    auto opened = block::BlockReader::Open(store_, tenant.name, meta->block_id);
    if (opened.ok()) reader = std::move(opened).value();
    else meta = opened.status();
  }
  if (!meta.ok()) {
    // Put the traces back: they stay readable, their WAL segments stay, and the next sweep retries.
    flush_failures_.Add();
    std::lock_guard lock(tenant.completing_mutex);
    for (auto& [id, trace] : *batch) {
      tenant.completing_bytes += trace.bytes.size();
      tenant.completing.try_emplace(id, trace);
    }
    std::erase(tenant.flushing, batch);
    return meta.status();
  }
  {
    std::unique_lock lock(tenant.blocks_mutex);
    tenant.blocks.push_back(reader);
  }
  {
    std::lock_guard lock(tenant.completing_mutex);
    std::erase(tenant.flushing, batch);
  }
  for (const auto& [id, trace] : *batch) {
    tenant.live_bytes.fetch_sub(int64_t(trace.bytes.size()), std::memory_order_relaxed);
    memory_bytes_.fetch_sub(int64_t(trace.bytes.size()), std::memory_order_relaxed);
    for (uint64_t s : trace.segments) AddSegmentRefs(s, -1);
  }
  blocks_cut_.Add();
  traces_flushed_.Add(meta->trace_count);
  block_bytes_written_.Add(meta->data_bytes + meta->index_bytes);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  spdlog::info("ingester: tenant {} cut block {}: {} traces, {} spans, {} OTLP bytes -> {} bytes ({:.1f} B/span) in {} ms",
               tenant.name, meta->block_id, meta->trace_count, meta->span_count, bytes, meta->data_bytes + meta->index_bytes,
               meta->span_count ? double(meta->data_bytes + meta->index_bytes) / double(meta->span_count) : 0.0, ms);
  return Status::Ok();
}

void Ingester::RemoveFreeSegments() {
  for (uint64_t segment : wal_->SealedSegments()) {
    {
      std::lock_guard lock(segments_mutex_);
      auto it = segment_refs_.find(segment);
      if (it != segment_refs_.end() && it->second > 0) continue;
      if (it != segment_refs_.end()) segment_refs_.erase(it);
    }
    Status status = wal_->RemoveSegment(segment);
    if (status.ok()) wal_segments_removed_.Add();
    else spdlog::warn("wal: {}", status.ToString());
  }
}

void Ingester::SweepLoop() {
  std::unique_lock lock(sweep_mutex_);
  while (!stopping_) {
    sweep_wake_.wait_for(lock, options_.sweep_interval);
    if (stopping_) break;
    lock.unlock();
    {
      std::lock_guard flush_lock(flush_mutex_);
      Clock::time_point now = Clock::now();
      bool cut_any = false;
      for (const auto& tenant : AllTenants()) {
        MoveIdleTraces(*tenant, now, false);
        bool cut;
        {
          std::lock_guard completing_lock(tenant->completing_mutex);
          cut = !tenant->completing.empty() &&
                (tenant->completing_bytes >= options_.max_block_bytes ||
                 now - tenant->completing_since >= options_.max_block_duration);
        }
        if (cut) {
          Status status = CutBlock(*tenant);
          if (!status.ok()) spdlog::error("ingester: cutting a block for {} failed: {}", tenant->name, status.ToString());
          cut_any = true;
        }
      }
      // Seal the segment the cut traces were in, so it can go once nothing live is in it.
      if (cut_any) wal_->Rotate();
      RemoveFreeSegments();
    }
    lock.lock();
  }
}

Status Ingester::FlushAll() {
  std::lock_guard flush_lock(flush_mutex_);
  Status result;
  for (const auto& tenant : AllTenants()) {
    MoveIdleTraces(*tenant, Clock::now(), true);
    Status status = CutBlock(*tenant);
    if (!status.ok()) result = status;
  }
  wal_->Rotate();
  RemoveFreeSegments();
  return result;
}

void Ingester::Stop() { Shutdown(true); }

void Ingester::Shutdown(bool flush) {
  {
    std::lock_guard lock(sweep_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  sweep_wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (wal_) {
    Status status = flush ? FlushAll() : Status::Ok();
    if (!status.ok()) spdlog::error("ingester: final flush failed (the WAL keeps the spans): {}", status.ToString());
    wal_->Close();
  }
}

Ingester::Totals Ingester::GetTotals() const {
  Totals totals;
  for (const auto& tenant : AllTenants()) {
    totals.live_traces += uint64_t(std::max<int64_t>(0, tenant->live_traces.load()));
    totals.live_bytes += uint64_t(std::max<int64_t>(0, tenant->live_bytes.load()));
    std::shared_lock lock(tenant->blocks_mutex);
    totals.blocks += tenant->blocks.size();
  }
  return totals;
}

}  // namespace tracery::ingester
