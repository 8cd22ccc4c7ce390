#include "ingester/ingester.h"

#include <malloc.h>

#include <algorithm>
#include <future>

#include <spdlog/spdlog.h>

#include "common/tenant.h"
#include "otlp/model.h"

namespace tracery::ingester {

Ingester::Ingester(Options options, Env& env, backend::ObjectStore& store, storage::BlockList& blocks, ThreadPool& pool,
                   MetricsRegistry& metrics)
    : options_(std::move(options)),
      env_(env),
      store_(store),
      blocks_(blocks),
      pool_(pool),
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
      flush_failures_(metrics.GetCounter("tracery_ingester_flush_failures_total", "Block cuts that failed and will be retried.")),
      traces_quarantined_(metrics.GetCounter("tracery_ingester_traces_quarantined_total",
                                             "Traces (or WAL records) that could not be encoded, kept in the dead-letter directory.")),
      fragment_read_failures_(metrics.GetCounter("tracery_ingester_wal_read_failures_total",
                                                 "Reads of waiting spans from the WAL that failed during a block cut (retried).")) {
  for (size_t t = 0; t < storage::kTiers.size(); ++t)
    tier_traces_[t] = &metrics.GetCounter("tracery_ingester_traces_by_tier_total",
                                          "Traces written into blocks (or handed to the gateway's exporters), by retention tier.",
                                          {{"tier", std::string(storage::kTiers[t])}});
  // Tiers of traces cut, so that their late spans join them (and, with sampling, decisions).
  kept_cache_bound_ = 50'000 / kShards + 1;
  if (!options_.sampling.policies) return;
  policies_ = options_.sampling.policies;
  engine_ = std::make_unique<sampling::DecisionEngine>(*policies_, env);
  const sampling::TailSamplingConfig& config = policies_->config();
  // The decision cache: the configured sizes, and at least num_traces each (late spans follow
  // their trace's decision even where the Collector's config leaves the cache off).
  kept_cache_bound_ = std::max<uint64_t>(config.sampled_cache_size, config.num_traces) / kShards + 1;
  dropped_cache_bound_ = std::max<uint64_t>(config.non_sampled_cache_size, config.num_traces) / kShards + 1;
  const std::string traces_help = "Traces by each tail-sampling policy's own verdict (sampled: it wanted the trace).";
  const std::string spans_help = "Spans of the traces counted in tracery_sampler_policy_traces_total.";
  for (const auto& policy : config.policies) {
    PolicyCounters c;
    c.traces_sampled = &metrics.GetCounter("tracery_sampler_policy_traces_total", traces_help, {{"policy", policy.name}, {"sampled", "true"}});
    c.traces_not_sampled = &metrics.GetCounter("tracery_sampler_policy_traces_total", traces_help, {{"policy", policy.name}, {"sampled", "false"}});
    c.spans_sampled = &metrics.GetCounter("tracery_sampler_policy_spans_total", spans_help, {{"policy", policy.name}, {"sampled", "true"}});
    c.spans_not_sampled = &metrics.GetCounter("tracery_sampler_policy_spans_total", spans_help, {{"policy", policy.name}, {"sampled", "false"}});
    policy_counters_.push_back(c);
  }
  const std::string decided_help = "Traces decided by tail sampling: kept (stored) or dropped.";
  traces_kept_ = &metrics.GetCounter("tracery_sampler_traces_total", decided_help, {{"decision", "kept"}});
  traces_dropped_ = &metrics.GetCounter("tracery_sampler_traces_total", decided_help, {{"decision", "dropped"}});
  const std::string spans_decided_help = "Spans of the traces decided by tail sampling (late spans not included).";
  spans_kept_ = &metrics.GetCounter("tracery_sampler_spans_total", spans_decided_help, {{"decision", "kept"}});
  spans_dropped_ = &metrics.GetCounter("tracery_sampler_spans_total", spans_decided_help, {{"decision", "dropped"}});
  traces_pinned_kept_ = &metrics.GetCounter("tracery_sampler_traces_pinned_total",
                                            "Traces kept because they were pinned (API or exemplar) though no policy sampled them.");
  const std::string late_help = "Spans that came after their trace was decided, by the decision they followed.";
  late_spans_kept_ = &metrics.GetCounter("tracery_sampler_late_spans_total", late_help, {{"decision", "kept"}});
  late_spans_dropped_ = &metrics.GetCounter("tracery_sampler_late_spans_total", late_help, {{"decision", "dropped"}});
  early_decisions_ = &metrics.GetCounter("tracery_sampler_early_decisions_total",
                                         "Traces decided before decision_wait because more than num_traces were pending.");
  decision_latency_ = &metrics.GetHistogram("tracery_sampler_decision_latency_seconds",
                                            "Time from a trace's first span to its sampling decision.",
                                            {0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120});
  metrics.AddCallbackGauge("tracery_sampler_pending_traces", "Traces waiting for their tail-sampling decision.",
                           [this] { return double(std::max<int64_t>(0, pending_traces_.load())); });
}

Result<std::unique_ptr<Ingester>> Ingester::Open(Options options, Env& env, backend::ObjectStore& store,
                                                 storage::BlockList& blocks, ThreadPool& pool, MetricsRegistry& metrics) {
  options.wal.env = &env;
  if (options.wal.segment_bytes > kMaxWalSegmentBytes) {
    spdlog::warn("wal: segment_bytes {} is more than the largest segment, {}; using {}", options.wal.segment_bytes,
                 kMaxWalSegmentBytes, kMaxWalSegmentBytes);
    options.wal.segment_bytes = kMaxWalSegmentBytes;
  }
  if (options.dead_letter_directory.empty()) options.dead_letter_directory = JoinPath(options.wal.directory, "deadletter");
  std::unique_ptr<Ingester> ingester(new Ingester(std::move(options), env, store, blocks, pool, metrics));
  Ingester* self = ingester.get();
  auto wal = wal::WriteAheadLog::Open(self->options_.wal);
  if (!wal.ok()) return wal.status();
  self->wal_ = std::move(wal).value();
  wal::ReplayReport report;
  TRACERY_RETURN_IF_ERROR(self->wal_->Replay(
      [self](wal::RecordLocation location, std::string_view payload) { self->ReplayRecord(location, payload); }, &report));
  // Seal what replay wrote (records of earlier versions, written again), so that the next
  // sweep can delete the old segments they came from.
  self->wal_->Rotate();
  self->replayed_records_.Add(report.records);
  self->replay_torn_bytes_.Add(report.torn_bytes_cut);
  if (report.segments > 0)
    spdlog::info("wal: replayed {} records ({} bytes) from {} segments; {} torn bytes cut; {} traces waiting", report.records,
                 report.bytes, report.segments, report.torn_bytes_cut, self->GetTotals().live_traces);
  auto& wal_ref = *self->wal_;
  metrics.AddCallbackGauge("tracery_wal_bytes_written", "Bytes written to the WAL since start.",
                           [&wal_ref] { return double(wal_ref.Stats().bytes_written); });
  metrics.AddCallbackGauge("tracery_wal_syncs", "WAL group-commit syncs since start.",
                           [&wal_ref] { return double(wal_ref.Stats().syncs); });
  metrics.AddCallbackGauge("tracery_wal_failed_records", "WAL records refused since start because a write or sync failed.",
                           [&wal_ref] { return double(wal_ref.Stats().failed_records); });
  metrics.AddCallbackGauge("tracery_wal_writable", "1 while the WAL accepts records, 0 while it cannot take back a failed write.",
                           [&wal_ref] { return wal_ref.Writable() ? 1.0 : 0.0; });
  metrics.AddCallbackGauge("tracery_ingester_live_traces", "Traces whose spans wait in the WAL for their block.",
                           [self] { return double(self->GetTotals().live_traces); });
  metrics.AddCallbackGauge("tracery_ingester_live_index_bytes",
                           "Memory of the live-trace index (bounded by ingester.max_live_bytes).",
                           [self] { return double(self->memory_bytes_.load()); });
  metrics.AddCallbackGauge("tracery_ingester_tenants", "Tenants with state in the ingester.",
                           [self] { return double(self->GetTotals().tenants); });
  ingester->sweeper_ = std::thread([self] { self->SweepLoop(); });
  return ingester;
}

Ingester::~Ingester() {
  closing_ = true;  // a running backlog of cuts stops after the current one
  {
    std::lock_guard lock(sweep_mutex_);
    stopping_ = true;
  }
  sweep_wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  std::unique_lock lock(cut_mutex_);
  cuts_done_.wait(lock, [&] { return cuts_running_ == 0; });
  lock.unlock();
  if (wal_) wal_->Close();
}

std::shared_ptr<Ingester::Tenant> Ingester::GetTenant(const std::string& name) {
  // last_push is set under the tenants lock, so that eviction (which holds it exclusively)
  // never drops a tenant between a push finding it and the push's traces arriving.
  int64_t now = env_.NowMonotonicNanos();
  {
    std::shared_lock lock(tenants_mutex_);
    auto it = tenants_by_name_.find(name);
    if (it != tenants_by_name_.end()) {
      it->second->last_push.store(now, std::memory_order_relaxed);
      return it->second;
    }
  }
  std::unique_lock lock(tenants_mutex_);
  auto& slot = tenants_by_name_[name];
  if (!slot) {
    slot = std::make_shared<Tenant>(name, next_tenant_id_++);
    tenants_by_id_[slot->id] = slot;
  }
  slot->last_push.store(now, std::memory_order_relaxed);
  return slot;
}

std::shared_ptr<Ingester::Tenant> Ingester::FindTenant(const std::string& name) const {
  std::shared_lock lock(tenants_mutex_);
  auto it = tenants_by_name_.find(name);
  return it == tenants_by_name_.end() ? nullptr : it->second;
}

std::shared_ptr<Ingester::Tenant> Ingester::FindTenant(uint32_t id) const {
  std::shared_lock lock(tenants_mutex_);
  auto it = tenants_by_id_.find(id);
  return it == tenants_by_id_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Ingester::Tenant>> Ingester::AllTenants() const {
  std::shared_lock lock(tenants_mutex_);
  std::vector<std::shared_ptr<Tenant>> out;
  out.reserve(tenants_by_id_.size());
  for (const auto& [id, tenant] : tenants_by_id_) out.push_back(tenant);
  return out;
}

uint64_t Ingester::LifetimeBytes(Shard& shard, const LiveKey& key) {
  if (const LiveTrace* trace = shard.traces.Find(key.id, key.tenant)) return trace->lifetime_bytes;
  if (auto it = shard.past_sizes.find(key); it != shard.past_sizes.end()) return it->second;
  return 0;
}

void Ingester::RememberSize(Shard& shard, const LiveKey& key, uint64_t bytes) {
  if (options_.max_bytes_per_trace == 0 || bytes < options_.max_bytes_per_trace / 8) return;
  auto [it, inserted] = shard.past_sizes.insert_or_assign(key, bytes);
  if (!inserted) return;
  shard.past_order.push_back(key);
  size_t bound = std::max<size_t>(1, options_.trace_size_records / kShards);
  while (shard.past_order.size() > bound) {
    shard.past_sizes.erase(shard.past_order.front());
    shard.past_order.pop_front();
  }
}

void Ingester::AccountMemory(Shard& shard) {
  int64_t now = shard.traces.MemoryBytes();
  if (now == shard.accounted_bytes) return;
  memory_bytes_.fetch_add(now - shard.accounted_bytes, std::memory_order_relaxed);
  shard.accounted_bytes = now;
}

void Ingester::AddSegmentRefs(uint64_t segment, int64_t delta) {
  if (delta == 0) return;
  std::lock_guard lock(segments_mutex_);
  int64_t& refs = segment_refs_[segment];
  refs += delta;
  if (refs == 0) segment_refs_.erase(segment);
}

void Ingester::InsertRecord(Tenant& tenant, const std::vector<RecordFragment>& layout, const wal::RecordLocation& location,
                            const uint64_t* matched) {
  // References first: the segment must not look free while its fragments become live.
  AddSegmentRefs(location.segment, int64_t(layout.size()));
  int64_t now = env_.NowMonotonicNanos();
  int64_t skipped = 0, pending = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    const RecordFragment& f = layout[i];
    LiveKey key{f.trace_id, tenant.id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    LiveTrace* found = shard.traces.Find(key.id, key.tenant);
    if (found && policies_ && found->decided) late_spans_kept_->Add(f.span_count);
    if (!found) {
      bool decided = !policies_;
      uint8_t tier = RememberedTier(shard, key);
      if (policies_) {
        // A late span follows its trace's remembered decision.
        std::optional<Decision> earlier = RememberedDecision(shard, key);
        if (earlier == Decision::kDropped) {
          late_spans_dropped_->Add(f.span_count);
          skipped++;
          continue;
        }
        if (earlier) {
          late_spans_kept_->Add(f.span_count);
          decided = true;
        } else {
          pending++;
        }
      }
      found = &shard.traces.Insert(key.id, key.tenant);
      found->first_arrival = now;
      found->decided = decided;
      found->tier = tier;
      // What earlier blocks already hold of it.
      if (auto past = shard.past_sizes.find(key); past != shard.past_sizes.end())
        found->lifetime_bytes = LiveTrace::Saturated(past->second);
      tenant.live_traces.fetch_add(1, std::memory_order_relaxed);
    }
    LiveTrace& trace = *found;
    if (matched) trace.matched |= matched[i];
    shard.traces.AppendFragment(trace, {uint32_t(location.segment), uint32_t(location.offset + f.offset), f.length});
    AccountMemory(shard);
    trace.last_arrival = now;
    trace.span_count += f.span_count;
    trace.bytes = LiveTrace::Saturated(uint64_t(trace.bytes) + f.length);
    trace.lifetime_bytes = LiveTrace::Saturated(uint64_t(trace.lifetime_bytes) + f.length);
    trace.min_start_unix_nano = std::min(trace.min_start_unix_nano, f.min_start_unix_nano);
    trace.max_end_unix_nano = std::max(trace.max_end_unix_nano, f.max_end_unix_nano);
    trace.has_error |= f.has_error;
    trace.has_root |= f.has_root;
  }
  if (pending) {
    // Past num_traces the oldest are decided now, not at the next tick: memory stays bounded.
    int64_t now_pending = pending_traces_.fetch_add(pending, std::memory_order_relaxed) + pending;
    if (uint64_t(now_pending) > policies_->config().num_traces && !early_wake_.exchange(true)) sweep_wake_.notify_one();
  }
  if (skipped) AddSegmentRefs(location.segment, -skipped);
}

void Ingester::AppendRecord(const std::shared_ptr<Tenant>& tenant, const std::vector<const otlp::TraceFragment*>& fragments,
                            std::function<void(Status)> done, std::vector<uint64_t> matched) {
  auto layout = std::make_shared<std::vector<RecordFragment>>();
  std::string record = EncodeRecord(tenant->name, fragments, *layout);
  wal_->Append(std::move(record), [this, tenant, layout, matched = std::move(matched), done = std::move(done)](
                                      Status status, wal::RecordLocation location) {
    // On the thread that wrote the record's round (the WAL's writer, or with fsync: none the
    // appending one), before any later record: the spans become readable before the request
    // is acknowledged.
    if (status.ok()) InsertRecord(*tenant, *layout, location, matched.empty() ? nullptr : matched.data());
    done(std::move(status));
  });
}

std::vector<bool> Ingester::Push(const std::string& tenant_name, const std::vector<otlp::TraceFragment>& all_fragments,
                                 Done done) {
  return PushFragments(tenant_name, all_fragments, std::move(done), {}, nullptr);
}

std::vector<bool> Ingester::Push(const std::string& tenant_name, const otlp::SplitRequest& split, Done done,
                                 std::vector<bool>* sampled_out) {
  std::vector<uint64_t> matched;
  if (policies_) {
    // Each span is looked at once here, for the policies' per-span conditions; the decision
    // later needs only these bits and the summary the index keeps anyway.
    std::vector<sampling::TraceSummary> summaries(split.fragments.size());
    policies_->matcher().ObserveRequest(split, summaries);
    matched.resize(summaries.size());
    for (size_t i = 0; i < summaries.size(); ++i) matched[i] = summaries[i].matched;
  }
  return PushFragments(tenant_name, split.fragments, std::move(done), std::move(matched), sampled_out);
}

std::vector<bool> Ingester::PushFragments(const std::string& tenant_name, const std::vector<otlp::TraceFragment>& all_fragments,
                                          Done done, std::vector<uint64_t> all_matched, std::vector<bool>* sampled_out) {
  std::shared_ptr<Tenant> tenant = GetTenant(tenant_name);
  PushOutcome outcome;
  std::vector<bool> accepted(all_fragments.size(), true);
  std::vector<const otlp::TraceFragment*> fragments;
  fragments.reserve(all_fragments.size());
  uint64_t max_bytes_per_trace = options_.max_bytes_per_trace, max_traces_per_tenant = options_.max_traces_per_tenant;
  if (options_.limits) {
    TenantLimits limits = options_.limits->For(tenant_name);
    max_bytes_per_trace = limits.max_bytes_per_trace;
    max_traces_per_tenant = limits.max_traces_per_user;
  }
  if (sampled_out) sampled_out->assign(all_fragments.size(), true);
  std::vector<uint64_t> matched;
  // Limits are checked before anything is written, so a refused span is never half-stored.
  for (size_t i = 0; i < all_fragments.size(); ++i) {
    const otlp::TraceFragment& f = all_fragments[i];
    if (policies_) {
      // Spans of a trace already dropped are acknowledged and not written (a late span of a
      // kept trace is written, and stored with it).
      LiveKey key{f.trace_id, tenant->id};
      Shard& shard = ShardFor(key);
      bool dropped;
      {
        std::lock_guard lock(shard.mutex);
        dropped = !shard.traces.Find(key.id, key.tenant) && RememberedDecision(shard, key) == Decision::kDropped;
      }
      if (dropped) {
        late_spans_dropped_->Add(f.span_count);
        if (sampled_out) (*sampled_out)[i] = false;
        continue;
      }
    }
    if (max_bytes_per_trace > 0 || max_traces_per_tenant > 0) {
      LiveKey key{f.trace_id, tenant->id};
      Shard& shard = ShardFor(key);
      uint64_t existing_bytes = 0;
      bool exists;
      {
        std::lock_guard lock(shard.mutex);
        exists = shard.traces.Find(key.id, key.tenant) != nullptr;
        existing_bytes = LifetimeBytes(shard, key);
      }
      if (max_bytes_per_trace > 0 && existing_bytes + f.bytes.size() > max_bytes_per_trace) {
        outcome.rejected_spans += f.span_count;
        spans_refused_trace_too_large_.Add(f.span_count);
        outcome.rejected_reason = "trace " + f.trace_id.Hex() + " exceeds max_bytes_per_trace (" +
                                  std::to_string(max_bytes_per_trace) + " bytes)";
        accepted[i] = false;
        continue;
      }
      if (!exists && max_traces_per_tenant > 0 &&
          uint64_t(tenant->live_traces.load(std::memory_order_relaxed)) >= max_traces_per_tenant) {
        outcome.rejected_spans += f.span_count;
        spans_refused_live_traces_.Add(f.span_count);
        outcome.rejected_reason = "tenant " + tenant_name + " has reached max_traces_per_user (" +
                                  std::to_string(max_traces_per_tenant) + " live traces)";
        accepted[i] = false;
        continue;
      }
    }
    fragments.push_back(&f);
    if (!all_matched.empty()) matched.push_back(all_matched[i]);
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
  AppendRecord(tenant, fragments, [this, spans, bytes, outcome = std::move(outcome), done = std::move(done)](Status status) mutable {
    if (status.ok()) {
      spans_ingested_.Add(spans);
      bytes_ingested_.Add(bytes);
    }
    outcome.status = std::move(status);
    done(std::move(outcome));
  }, std::move(matched));
  return accepted;
}

void Ingester::ReplayRecord(wal::RecordLocation location, std::string_view payload) {
  std::string_view tenant_name;
  std::vector<RecordFragment> layout;
  if (RecordVersion(payload) == kIndexedRecordV3) {
    if (DecodeRecord(payload, tenant_name, layout) && ValidateTenantId(tenant_name).ok()) {
      std::vector<uint64_t> matched = PolicyBits(payload, layout);
      InsertRecord(*GetTenant(std::string(tenant_name)), layout, location, matched.empty() ? nullptr : matched.data());
      return;
    }
  } else if (RecordVersion(payload) == kDecisionsRecord) {
    std::vector<RecordDecision> decisions;
    if (DecodeDecisions(payload, tenant_name, decisions) && ValidateTenantId(tenant_name).ok()) {
      // Without sampling now, drops and keeps mean nothing; pins still do.
      ApplyDecisions(*GetTenant(std::string(tenant_name)), decisions, &location);
      return;
    }
  } else {
    // An earlier release's record: write it again in today's layout (its old segment is
    // deleted once nothing references it, after the new record is durable).
    std::string name;
    std::vector<otlp::TraceFragment> fragments;
    if (DecodeLegacyRecord(payload, name, fragments) && ValidateTenantId(name).ok()) {
      std::vector<const otlp::TraceFragment*> pointers;
      for (const auto& f : fragments) pointers.push_back(&f);
      auto migrated = std::make_shared<std::promise<Status>>();
      AppendRecord(GetTenant(name), pointers, [migrated](Status status) { migrated->set_value(status); });
      Status status = migrated->get_future().get();
      if (status.ok()) return;
      spdlog::error("wal: cannot write segment {}'s record again: {}", location.segment, status.ToString());
    }
  }
  // A record whose checksum holds but which does not decode: keep its bytes for a human.
  spdlog::error("wal: segment {} offset {} holds a record that does not decode; moved to the dead-letter directory",
                location.segment, location.offset);
  Status kept = Quarantine("_wal", "segment-" + std::to_string(location.segment) + "-" + std::to_string(location.offset), payload);
  if (!kept.ok()) spdlog::error("wal: cannot keep the undecodable record: {}", kept.ToString());
}

Status Ingester::CollectTrace(const std::string& tenant_name, const TraceId& id, const storage::TimeRange&,
                              otlp::TracesData& into, bool& found) {
  std::shared_ptr<Tenant> tenant = FindTenant(tenant_name);
  if (!tenant) return Status::Ok();
  std::vector<FragmentLocation> fragments;
  {
    LiveKey key{id, tenant->id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    const LiveTrace* trace = shard.traces.Find(key.id, key.tenant);
    if (!trace) return Status::Ok();
    shard.traces.Fragments(*trace, fragments);
  }
  std::string bytes;
  Status read = ReadFragments(fragments, bytes);
  if (read.code() == StatusCode::kNotFound)  // its segment went: the trace is in a block now
    return Status::Unavailable("trace " + id.Hex() + " moved to a block while it was read");
  TRACERY_RETURN_IF_ERROR(read);
  otlp::TracesData part;
  TRACERY_RETURN_IF_ERROR(otlp::DecodeTracesData(bytes, part));
  for (auto& rs : part.resource_spans) into.resource_spans.push_back(std::move(rs));
  found = true;
  return Status::Ok();
}

std::vector<storage::LiveTraceSummary> Ingester::ListLiveTraces(const std::string& tenant_name,
                                                                const storage::TimeRange& range) {
  std::vector<storage::LiveTraceSummary> out;
  std::shared_ptr<Tenant> tenant = FindTenant(tenant_name);
  if (!tenant) return out;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    shard.traces.ForEach([&](const LiveTrace& trace) {
      if (trace.tenant == tenant->id && range.Overlaps(trace.min_start_unix_nano, trace.max_end_unix_nano))
        out.push_back({trace.id, trace.min_start_unix_nano, trace.max_end_unix_nano});
    });
  }
  return out;
}

Status Ingester::ReadFragments(const std::vector<FragmentLocation>& fragments, std::string& out) {
  size_t total = out.size();
  for (const auto& f : fragments) total += f.length;
  out.reserve(total);
  for (const auto& f : fragments) {
    if (f.length == 0) continue;  // where a decision record lies, not spans
    size_t at = out.size();
    out.resize(at + f.length);
    TRACERY_RETURN_IF_ERROR(wal_->Read(f.segment, f.offset, f.length, out.data() + at));
  }
  return Status::Ok();
}

void Ingester::SweepLoop() {
  std::unique_lock lock(sweep_mutex_);
  while (!stopping_) {
    sweep_wake_.wait_for(lock, options_.sweep_interval);
    if (stopping_) break;
    lock.unlock();
    Sweep(false);
    lock.lock();
  }
}

void Ingester::Sweep(bool everything) {
  early_wake_.store(false, std::memory_order_relaxed);
  int64_t now = env_.NowMonotonicNanos();
  int64_t memory = memory_bytes_.load(std::memory_order_relaxed);
  int64_t limit = int64_t(options_.max_live_bytes);
  // Under memory pressure traces complete sooner, and past three quarters all of them do:
  // their spans are safe in the WAL, and a trace that gets more spans later is merged again
  // at query time.
  bool pressure = OverHalfMemory();
  everything |= memory > limit / 4 * 3;
  int64_t idle = options_.trace_idle_period.count();
  if (pressure) idle = std::min<int64_t>(idle, 1'000'000'000);
  int64_t max_age = options_.max_block_duration.count();

  if (policies_) DecideDue(now, everything || memory > limit / 4 * 3);
  std::unordered_map<uint32_t, std::pair<std::vector<TraceId>, uint64_t>> completed;
  // Walking every live trace is the sweep's cost (it was 14 % of a saturated core at every
  // 500 ms): walk them a fifth of the idle period apart, and at once under pressure.
  bool walk = everything || pressure || now >= next_idle_walk_;
  if (walk) next_idle_walk_ = now + std::max<int64_t>(options_.sweep_interval.count() * 1'000'000, idle / 5);
  for (auto& shard : shards_) {
    if (!walk) break;
    std::lock_guard lock(shard.mutex);
    shard.traces.ForEach([&](LiveTrace& trace) {
      if (trace.complete || trace.cutting > 0 || !trace.decided) return;
      if (everything || now - trace.last_arrival >= idle || now - trace.first_arrival >= max_age) {
        trace.complete = true;
        auto& [ids, bytes] = completed[trace.tenant];
        ids.push_back(trace.id);
        bytes += trace.bytes;
      }
    });
    // What a burst left (entries, index, fragment nodes) goes back.
    shard.traces.Trim();
    AccountMemory(shard);
  }
  for (auto& [tenant_id, entry] : completed) {
    std::shared_ptr<Tenant> tenant = FindTenant(tenant_id);
    if (!tenant) continue;
    std::lock_guard lock(tenant->mutex);
    if (tenant->complete.empty()) tenant->complete_since = now;
    tenant->complete.insert(tenant->complete.end(), entry.first.begin(), entry.first.end());
    tenant->complete_bytes += entry.second;
  }
  // Only tenants with completed traces are looked at: many idle tenants cost no sweep time.
  std::vector<uint32_t> candidates;
  {
    std::lock_guard lock(waiting_mutex_);
    for (const auto& [tenant_id, entry] : completed) waiting_tenants_.insert(tenant_id);
    candidates.assign(waiting_tenants_.begin(), waiting_tenants_.end());
  }
  for (uint32_t tenant_id : candidates) {
    std::shared_ptr<Tenant> tenant = FindTenant(tenant_id);
    auto forget = [&] {
      std::lock_guard waiting_lock(waiting_mutex_);
      waiting_tenants_.erase(tenant_id);
    };
    if (!tenant) {
      forget();
      continue;
    }
    {
      std::lock_guard lock(tenant->mutex);
      if (tenant->complete.empty() && !tenant->cutting) {
        forget();  // a cut puts a tenant back when it leaves traces queued
        continue;
      }
      // A sink (the gateway) takes kept traces as they complete: its requests are small.
      bool due = !tenant->complete.empty() &&
                 (everything || pressure || options_.sink != nullptr || tenant->complete_bytes >= options_.max_block_bytes ||
                  now - tenant->complete_since >= max_age);
      if (!due || tenant->cutting || now < tenant->next_cut_attempt) continue;
      tenant->cutting = true;
    }
    {
      std::lock_guard lock(cut_mutex_);
      cuts_running_++;
    }
    if (!pool_.Submit([this, tenant] { CutBlock(tenant); })) {
      std::lock_guard lock(tenant->mutex);
      tenant->cutting = false;
      std::lock_guard cut_lock(cut_mutex_);
      cuts_running_--;
      cuts_done_.notify_all();
    }
  }
  RemoveFreeSegments();
  if (now >= next_eviction_) {
    next_eviction_ = now + 60'000'000'000;
    EvictIdleTenants(now);
    // Give memory freed since (request bodies, cut blocks, index entries) back to the system:
    // glibc keeps freed memory in its arenas otherwise, and RSS would stay at its peak.
    malloc_trim(0);
  }
}

Status Ingester::FlushAll() {
  // Complete everything, cut, and repeat while cuts that were already running leave traces.
  Status result;
  flushing_ = true;
  for (int round = 0; round < 3; ++round) {
    {
      std::lock_guard lock(cut_mutex_);
      last_cut_status_ = Status::Ok();
    }
    for (const auto& tenant : AllTenants()) {
      std::lock_guard lock(tenant->mutex);
      tenant->next_cut_attempt = 0;
    }
    Sweep(true);
    std::unique_lock lock(cut_mutex_);
    cuts_done_.wait(lock, [&] { return cuts_running_ == 0; });
    result = last_cut_status_;
    lock.unlock();
    if (!result.ok()) break;
    bool waiting = false;
    for (const auto& tenant : AllTenants()) {
      std::lock_guard tenant_lock(tenant->mutex);
      waiting |= !tenant->complete.empty();
    }
    if (!waiting && GetTotals().live_traces == 0) break;
  }
  flushing_ = false;
  wal_->Rotate();
  RemoveFreeSegments();
  return result;
}

void Ingester::Stop() {
  {
    std::lock_guard lock(sweep_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  sweep_wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  Status status = FlushAll();
  if (!status.ok()) spdlog::error("ingester: final flush failed (the WAL keeps the spans): {}", status.ToString());
  wal_->Close();
}

void Ingester::EvictIdleTenants(int64_t now) {
  std::vector<std::shared_ptr<Tenant>> idle;
  for (const auto& tenant : AllTenants()) {
    if (tenant->live_traces.load() != 0 || now - tenant->last_push.load() < options_.tenant_idle_eviction.count()) continue;
    std::lock_guard lock(tenant->mutex);
    if (tenant->complete.empty() && !tenant->cutting) idle.push_back(tenant);
  }
  if (idle.empty()) return;
  std::unique_lock lock(tenants_mutex_);
  for (const auto& tenant : idle) {
    // A push may have raced in: it holds the shared pointer, and its traces carry the ID, so
    // keep a tenant that has traces again.
    if (tenant->live_traces.load() != 0) continue;
    tenants_by_name_.erase(tenant->name);
    tenants_by_id_.erase(tenant->id);
  }
}

Ingester::Totals Ingester::GetTotals() const {
  Totals totals;
  for (const auto& tenant : AllTenants()) {
    totals.live_traces += uint64_t(std::max<int64_t>(0, tenant->live_traces.load()));
    totals.tenants++;
  }
  totals.index_bytes = uint64_t(std::max<int64_t>(0, memory_bytes_.load()));
  return totals;
}

}  // namespace tracery::ingester
