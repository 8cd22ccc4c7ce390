// Tail sampling inside the ingester: pending traces wait in the WAL with their summary in the
// live index; the sweeper decides the due ones, keeps or drops them, remembers the decision
// for late spans and writes it to the WAL so that a restart continues where it stopped.
//
// Why a decision is durable without being waited for: a kept or pinned decision record holds
// its WAL segment while its trace waits (a zero-length fragment location in the trace's list),
// so replay finds it after the spans it decided; a lost drop record only means replay decides
// the trace again from the same spans, which every policy but the rate-limited ones answers
// alike (and a rate-limited trace then is at worst kept).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "ingester/ingester.h"
#include "storage/tiers.h"

namespace tracery::ingester {

void Ingester::RememberDecision(Shard& shard, const LiveKey& key, Decision decision, uint8_t tier) {
  bool kept = decision != Decision::kDropped;
  Decision kind = kept ? Decision::kKept : Decision::kDropped;
  auto found = shard.decided.find(key);
  if (found != shard.decided.end() && found->second.decision == kind) {
    if (tier) found->second.tier = tier;
    return;  // its place in the order stays the first decision's
  }
  shard.decided.insert_or_assign(key, Shard::Remembered{kind, tier});
  std::deque<LiveKey>& order = kept ? shard.kept_order : shard.dropped_order;
  order.push_back(key);
  uint64_t bound = kept ? kept_cache_bound_ : dropped_cache_bound_;
  while (order.size() > bound) {
    auto old = shard.decided.find(order.front());
    // A key decided again the other way lives in the other order; only forget it from there.
    if (old != shard.decided.end() && old->second.decision == kind) shard.decided.erase(old);
    order.pop_front();
  }
}

std::optional<Decision> Ingester::RememberedDecision(Shard& shard, const LiveKey& key) const {
  auto it = shard.decided.find(key);
  if (it == shard.decided.end()) return std::nullopt;
  return it->second.decision;
}

uint8_t Ingester::RememberedTier(Shard& shard, const LiveKey& key) const {
  auto it = shard.decided.find(key);
  return it == shard.decided.end() || it->second.decision != Decision::kKept ? 0 : it->second.tier;
}

std::vector<uint64_t> Ingester::PolicyBits(std::string_view payload, const std::vector<RecordFragment>& layout) const {
  std::vector<uint64_t> bits;
  if (!policies_ || policies_->matcher().predicate_count() == 0) return bits;
  bits.resize(layout.size());
  otlp::SplitRequest split;
  std::vector<sampling::TraceSummary> summaries;
  for (size_t i = 0; i < layout.size(); ++i) {
    // A fragment is a TracesData of one trace: split it to look at its spans again.
    if (!otlp::SplitByTrace(payload.substr(layout[i].offset, layout[i].length), split).ok()) continue;
    summaries.assign(split.fragments.size(), sampling::TraceSummary());
    policies_->matcher().ObserveRequest(split, summaries);
    for (const auto& summary : summaries) bits[i] |= summary.matched;
  }
  return bits;
}

void Ingester::DropLive(Shard& shard, LiveTrace& trace, Tenant& tenant, std::map<uint64_t, int64_t>& released) {
  std::vector<FragmentLocation> fragments;
  shard.traces.Fragments(trace, fragments);
  for (const auto& f : fragments) released[f.segment]++;
  shard.traces.Erase(trace);
  shard.traces.Trim();  // the caller holds no other entry
  AccountMemory(shard);
  tenant.live_traces.fetch_sub(1, std::memory_order_relaxed);
}

void Ingester::DecideDue(int64_t now, bool everything) {
  const sampling::TailSamplingConfig& config = policies_->config();
  const int64_t wait = config.decision_wait.count();
  const int64_t quiet = options_.sampling.quiet_period.count();
  struct Candidate {
    LiveKey key;
    sampling::TraceSummary summary;
    int64_t first_arrival;
    bool pinned;
  };
  std::vector<Candidate> due, waiting;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    shard.traces.ForEach([&](const LiveTrace& trace) {
      if (trace.decided) return;
      LiveKey key{trace.id, trace.tenant};
      sampling::TraceSummary summary;
      summary.matched = trace.matched;
      summary.earliest_start_unix_nano = trace.min_start_unix_nano;
      summary.latest_end_unix_nano = trace.max_end_unix_nano;
      summary.span_count = trace.span_count;
      summary.has_root = trace.has_root;
      Candidate candidate{key, summary, trace.first_arrival, trace.pinned};
      bool is_due = everything || now - trace.first_arrival >= wait ||
                    (quiet > 0 && trace.has_root && now - trace.last_arrival >= quiet);
      (is_due ? due : waiting).push_back(candidate);
    });
  }
  // Memory stays bounded: past num_traces pending, the oldest are decided now.
  if (waiting.size() > config.num_traces) {
    size_t extra = waiting.size() - config.num_traces;
    std::nth_element(waiting.begin(), waiting.begin() + extra, waiting.end(),
                     [](const Candidate& a, const Candidate& b) { return a.first_arrival < b.first_arrival; });
    due.insert(due.end(), waiting.begin(), waiting.begin() + extra);
    early_decisions_->Add(extra);
  }
  if (due.empty()) return;
  // Oldest first: rate-limited policies spend their budget in arrival order.
  std::sort(due.begin(), due.end(), [](const Candidate& a, const Candidate& b) { return a.first_arrival < b.first_arrival; });
  std::vector<sampling::Verdict> verdicts(config.policies.size());
  std::vector<char> keep(due.size());
  {
    std::lock_guard lock(engine_mutex_);
    for (size_t i = 0; i < due.size(); ++i) {
      sampling::TraceDecision decision = engine_->Decide(due[i].key.id, due[i].summary, verdicts);
      keep[i] = decision.sampled || due[i].pinned;
      if (!decision.sampled && due[i].pinned) traces_pinned_kept_->Add();
      for (size_t p = 0; p < verdicts.size(); ++p) {
        bool sampled = verdicts[p] == sampling::Verdict::kSampled || verdicts[p] == sampling::Verdict::kInvertSampled;
        const PolicyCounters& c = policy_counters_[p];
        (sampled ? c.traces_sampled : c.traces_not_sampled)->Add();
        (sampled ? c.spans_sampled : c.spans_not_sampled)->Add(due[i].summary.span_count);
      }
      decision_latency_->Observe(double(now - due[i].first_arrival) / 1e9);
    }
  }
  std::unordered_map<uint32_t, std::vector<RecordDecision>> records;
  std::map<uint64_t, int64_t> released;
  int64_t decided = 0;
  for (size_t i = 0; i < due.size(); ++i) {
    const LiveKey& key = due[i].key;
    std::shared_ptr<Tenant> tenant = FindTenant(key.tenant);
    if (!tenant) continue;
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    LiveTrace* trace = shard.traces.Find(key.id, key.tenant);
    if (!trace || trace->decided) continue;
    decided++;
    uint32_t spans = trace->span_count;
    if (keep[i] || trace->pinned) {
      trace->decided = true;
      RememberDecision(shard, key, Decision::kKept);
      traces_kept_->Add();
      spans_kept_->Add(spans);
      records[key.tenant].push_back({key.id, Decision::kKept});
    } else {
      DropLive(shard, *trace, *tenant, released);
      RememberDecision(shard, key, Decision::kDropped);
      traces_dropped_->Add();
      spans_dropped_->Add(spans);
      records[key.tenant].push_back({key.id, Decision::kDropped});
    }
  }
  pending_traces_.fetch_sub(decided, std::memory_order_relaxed);
  for (const auto& [segment, count] : released) AddSegmentRefs(segment, -count);
  for (auto& [tenant_id, decisions] : records) {
    std::shared_ptr<Tenant> tenant = FindTenant(tenant_id);
    if (!tenant) continue;
    WriteDecisions(tenant, std::move(decisions), [](Status status) {
      if (!status.ok())
        spdlog::warn("sampler: decisions not written to the WAL ({}); after a restart their traces are decided again",
                     status.ToString());
    });
  }
}

void Ingester::WriteDecisions(const std::shared_ptr<Tenant>& tenant, std::vector<RecordDecision> decisions,
                              std::function<void(Status)> done) {
  std::string record = EncodeDecisions(tenant->name, decisions);
  auto shared = std::make_shared<std::vector<RecordDecision>>(std::move(decisions));
  wal_->Append(std::move(record), [this, tenant, shared, done = std::move(done)](Status status, wal::RecordLocation location) {
    if (status.ok()) {
      // Only the record's place is attached now: the decisions themselves took effect already.
      std::vector<RecordDecision> holding;
      for (const auto& d : *shared)
        if (d.decision == Decision::kKept || d.decision == Decision::kPinned) holding.push_back(d);
      int64_t refs = 0;
      for (const auto& d : holding) {
        LiveKey key{d.trace_id, tenant->id};
        Shard& shard = ShardFor(key);
        std::lock_guard lock(shard.mutex);
        LiveTrace* trace = shard.traces.Find(key.id, key.tenant);
        if (!trace) continue;
        shard.traces.AppendFragment(*trace, {uint32_t(location.segment), uint32_t(location.offset), 0});
        AccountMemory(shard);
        refs++;
      }
      AddSegmentRefs(location.segment, refs);
    }
    done(std::move(status));
  });
}

void Ingester::ApplyDecisions(Tenant& tenant, const std::vector<RecordDecision>& decisions,
                              const wal::RecordLocation* location) {
  std::map<uint64_t, int64_t> released;
  int64_t refs = 0, decided = 0;
  for (const auto& d : decisions) {
    LiveKey key{d.trace_id, tenant.id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    LiveTrace* found = shard.traces.Find(key.id, key.tenant);
    bool live = found != nullptr;
    if (d.decision == Decision::kDropped) {
      if (!policies_) continue;  // sampling is off now: what waits is kept
      RememberDecision(shard, key, Decision::kDropped);
      if (live && !found->decided && !found->pinned && found->cutting == 0) {
        DropLive(shard, *found, tenant, released);
        decided++;
      }
      continue;
    }
    if (d.decision == Decision::kUnpinned) {
      if (live) found->pinned = false;
      continue;
    }
    if (!live) {
      if (policies_ && d.decision == Decision::kKept) RememberDecision(shard, key, Decision::kKept);
      continue;
    }
    LiveTrace& trace = *found;
    if (d.decision == Decision::kPinned) {
      trace.pinned = true;  // kept when decided, whatever the policies say
    } else if (!trace.decided) {
      trace.decided = true;
      if (policies_) {
        RememberDecision(shard, key, Decision::kKept);
        decided++;
      }
    }
    if (location) {
      shard.traces.AppendFragment(trace, {uint32_t(location->segment), uint32_t(location->offset), 0});
      AccountMemory(shard);
      refs++;
    }
  }
  if (location) AddSegmentRefs(location->segment, refs);
  pending_traces_.fetch_sub(decided, std::memory_order_relaxed);
  for (const auto& [segment, count] : released) AddSegmentRefs(segment, -count);
}

void Ingester::Pin(const std::string& tenant_name, const TraceId& id, bool pin, std::function<void(Status)> done) {
  std::shared_ptr<Tenant> tenant = FindTenant(tenant_name);
  Status refused = Status::NotFound("trace " + id.Hex() + " is not waiting for its block");
  if (tenant) {
    LiveKey key{id, tenant->id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    if (LiveTrace* trace = shard.traces.Find(key.id, key.tenant)) {
      trace->pinned = pin;
      refused = Status::Ok();
    } else if (policies_ && RememberedDecision(shard, key) == Decision::kDropped) {
      refused = Status::NotFound("trace " + id.Hex() + " was dropped by tail sampling; its spans are gone");
    }
  }
  if (!refused.ok()) {
    done(refused);
    return;
  }
  WriteDecisions(tenant, {{id, pin ? Decision::kPinned : Decision::kUnpinned}}, std::move(done));
}

void Ingester::PinStored(const std::string& tenant_name, const TraceId& id, const otlp::SplitRequest& split,
                         std::function<void(Status)> done) {
  std::shared_ptr<Tenant> tenant = GetTenant(tenant_name);
  std::vector<const otlp::TraceFragment*> fragments;
  for (const auto& f : split.fragments)
    if (f.trace_id == id) fragments.push_back(&f);
  if (fragments.empty()) {
    done(Status::NotFound("trace " + id.Hex() + " has no spans to pin"));
    return;
  }
  {
    // Decided already: it was kept once, and is pinned at once below.
    LiveKey key{id, tenant->id};
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mutex);
    if (policies_) RememberDecision(shard, key, Decision::kKept);
  }
  AppendRecord(tenant, fragments, [this, tenant_name, id, done = std::move(done)](Status status) mutable {
    if (!status.ok()) {
      done(std::move(status));
      return;
    }
    Pin(tenant_name, id, true, std::move(done));
  });
}

bool Ingester::KeepForExemplar(const std::string& tenant_name, const TraceId& id) {
  std::shared_ptr<Tenant> tenant = FindTenant(tenant_name);
  if (!tenant) return false;
  LiveKey key{id, tenant->id};
  Shard& shard = ShardFor(key);
  {
    std::lock_guard lock(shard.mutex);
    LiveTrace* trace = shard.traces.Find(key.id, key.tenant);
    if (!trace) return !policies_ || RememberedDecision(shard, key) == Decision::kKept;
    if (!policies_ || trace->pinned) return true;
    trace->pinned = true;
  }
  // Durable with its record; an exemplar pin is never waited for (a restart before the record
  // is written leaves the trace to its policies).
  WriteDecisions(tenant, {{id, Decision::kPinned}}, [](Status) {});
  return true;
}

size_t Ingester::TierOf(const LiveTrace& trace) const {
  if (trace.pinned) return storage::TierIndex(storage::kTierPinned);
  // Late spans go where the trace's earlier spans went: a trace never spans two retentions.
  if (trace.tier > 0 && trace.tier <= storage::kTiers.size()) return trace.tier - 1;
  if (trace.has_error) return storage::TierIndex(storage::kTierError);
  int64_t slow = options_.slow_threshold.count();
  if (slow > 0 && trace.max_end_unix_nano > trace.min_start_unix_nano &&
      trace.max_end_unix_nano - trace.min_start_unix_nano > uint64_t(slow))
    return storage::TierIndex(storage::kTierSlow);
  return storage::TierIndex(storage::kTierBaseline);
}

}  // namespace tracery::ingester
