// The ingester: makes accepted spans durable in the write-ahead log, keeps an index of the
// traces whose spans wait there, and cuts completed traces into immutable blocks.
//
// Spans wait on disk, not in memory: the WAL is the store of live traces. Memory holds, per
// live trace, where its fragments lie in the log and the summary tail sampling needs (span
// count, first and last arrival, start and end, error seen, root seen) — 96 bytes a trace
// plus its index slot and 16 bytes per later fragment, whatever its size (live_table.h). A
// trace with no new span for trace_idle_period is complete and queued for its tenant's next block; the block is cut (on the background thread pool) by
// reading the queued traces back in ID order and streaming row groups to the backend. Only
// once the block is durable are the traces' fragments released, and a WAL segment is deleted
// once it is sealed and no live fragment lies in it (docs/wal-format.md).
//
// Memory: past half of max_live_bytes traces are completed after a short idle time, past
// three quarters all of them are, and past max_live_bytes Push is refused (429) until blocks
// are cut.
//
// Tail sampling (options.sampling, docs/sampling.md): a trace is pending until decided, at
// decision_wait after its first span or, once its root span came, after a quiet period. Its
// spans wait in the WAL like any live trace's; memory holds only the summary the policies need
// (the fields below plus the bits of the per-span predicates). A kept trace then completes
// and is cut as before; a dropped one leaves the index and its WAL references are released.
// Decisions are remembered (decision cache) so that late spans follow them, and written to the
// WAL so that a restart continues them. When a block is cut, each trace goes to the block of
// its retention tier (storage/tiers.h): error, slow, pinned or baseline. With a sink
// (ingester/trace_sink.h, the gateway) kept traces are handed to it instead of cut into blocks.
#pragma once

#include "common/tenant_limits.h"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/object_store.h"
#include "block/block.h"
#include "common/env.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "ingester/live_table.h"
#include "ingester/trace_sink.h"
#include "ingester/wal_record.h"
#include "sampling/sampler.h"
#include "otlp/split.h"
#include "storage/block_list.h"
#include "storage/tiers.h"
#include "storage/trace_source.h"
#include "wal/wal.h"

namespace tracery::ingester {

struct SamplingOptions {
  std::optional<sampling::PolicySet> policies;  // none: no sampling, every trace is kept
  // A trace whose root span has arrived is decided once no span came for this long, before
  // decision_wait; 0: only at decision_wait, exactly as the Collector.
  std::chrono::nanoseconds quiet_period = std::chrono::seconds(2);
};

struct Options {
  std::chrono::nanoseconds trace_idle_period = std::chrono::seconds(10);
  std::chrono::nanoseconds max_block_duration = std::chrono::minutes(30);
  uint64_t max_block_bytes = 100ull << 20;
  uint64_t max_live_bytes = 192ull << 20;    // memory of the live-trace index; past it Push refuses
  uint64_t max_bytes_per_trace = 5'000'000;  // 0: unlimited
  uint64_t max_traces_per_tenant = 0;        // 0: unlimited
  // Per-tenant values of the two limits above (the runtime overrides file); null: those.
  const TenantLimitsTable* limits = nullptr;
  std::chrono::milliseconds sweep_interval{500};
  std::chrono::nanoseconds tenant_idle_eviction = std::chrono::minutes(15);
  // How many sizes of traces that left the index are kept for max_bytes_per_trace (about
  // 80 bytes each; only traces over an eighth of the limit are recorded).
  uint64_t trace_size_records = 100'000;
  std::string dead_letter_directory;  // traces that cannot be encoded go here
  SamplingOptions sampling;
  // A kept trace longer than this is cut into the `slow` tier; 0: no slow tier.
  std::chrono::nanoseconds slow_threshold{0};
  // Where kept traces go instead of blocks (the gateway); null: blocks.
  TraceSink* sink = nullptr;
  wal::Options wal;
  block::WriterOptions block;
};

struct PushOutcome {
  Status status;                // durable, or why not
  uint64_t rejected_spans = 0;  // refused by per-trace limits (OTLP partial success)
  std::string rejected_reason;
};

class Ingester final : public storage::TraceSource, public storage::LiveTraceLister {
 public:
  using Done = std::function<void(PushOutcome)>;

  // Replays the write-ahead log into the live-trace index. Cut blocks go to `blocks`; cuts
  // run on `pool`; files and clocks go through `env`.
  static Result<std::unique_ptr<Ingester>> Open(Options options, Env& env, backend::ObjectStore& store,
                                                storage::BlockList& blocks, ThreadPool& pool, MetricsRegistry& metrics);
  ~Ingester() override;  // stops without flushing: the WAL keeps what is not in blocks

  // Takes one request's fragments (SplitByTrace). `done` runs once every accepted span is
  // durable and readable, or failed (Unavailable when the disk is full or failing); spans
  // refused by a per-trace limit are never written. Returns at once which were accepted.
  std::vector<bool> Push(const std::string& tenant, const std::vector<otlp::TraceFragment>& fragments, Done done);
  // The same for a whole split request: with sampling on, each trace's policy bits are read
  // from its spans here. A fragment of a trace already dropped by sampling is acknowledged and
  // not written (`sampled_out`, when given, says which).
  std::vector<bool> Push(const std::string& tenant, const otlp::SplitRequest& split, Done done,
                         std::vector<bool>* sampled_out = nullptr);

  bool sampling() const { return policies_.has_value(); }

  // Pins a trace (keeps it whatever the policies say, in the pinned tier) or unpins it.
  // NotFound (saying why) when the trace is not waiting here or was dropped by sampling (the
  // caller copies a stored trace back here first). `done` runs once the pin is durable.
  void Pin(const std::string& tenant, const TraceId& id, bool pin, std::function<void(Status)> done);
  // Pins a trace found only in blocks: its spans (`split`, read back from the blocks) are
  // written to the WAL again, pinned, so that they are cut into the pinned tier (queries remove
  // the duplicate spans). Per-trace limits do not apply: the spans were accepted once.
  void PinStored(const std::string& tenant, const TraceId& id, const otlp::SplitRequest& split,
                 std::function<void(Status)> done);
  // For the metrics-generator: true when the trace is or will be stored, and then pins it so
  // that it stays (an exemplar always opens a stored trace). Never blocks.
  bool KeepForExemplar(const std::string& tenant, const TraceId& id);

  // Live traces and traces waiting for their block, read back from the WAL.
  Status CollectTrace(const std::string& tenant, const TraceId& id, const storage::TimeRange& range,
                      otlp::TracesData& into, bool& found) override;

  // Live traces and traces waiting for their block, for search.
  std::vector<storage::LiveTraceSummary> ListLiveTraces(const std::string& tenant, const storage::TimeRange& range) override;

  // Cuts every waiting trace into blocks now (the /flush endpoint, and shutdown); with sampling,
  // every pending trace is decided first.
  Status FlushAll();
  // One pass of the sweeper now (decisions due, traces idle), as its timer would run it (tests).
  void RunSweep() { Sweep(false); }
  void Stop();  // stops the sweeper, flushes, closes the WAL

  bool OverMemoryLimit() const { return memory_bytes_.load(std::memory_order_relaxed) > int64_t(options_.max_live_bytes); }
  bool OverHalfMemory() const { return memory_bytes_.load(std::memory_order_relaxed) > int64_t(options_.max_live_bytes / 2); }

  struct Totals {
    uint64_t live_traces = 0, index_bytes = 0, tenants = 0;
  };
  Totals GetTotals() const;

 private:
  struct LiveKey {
    TraceId id;
    uint32_t tenant;
    bool operator==(const LiveKey&) const = default;
  };
  struct LiveKeyHash {
    size_t operator()(const LiveKey& key) const { return key.id.Hash() ^ (uint64_t(key.tenant) * 0x9E3779B97F4A7C15ull); }
  };
  static constexpr size_t kShards = 64;
  struct Shard {
    std::mutex mutex;
    LiveTable traces;
    int64_t accounted_bytes = 0;  // what memory_bytes_ holds of traces.MemoryBytes()
    // Sizes of large traces that left the index, so that max_bytes_per_trace holds across
    // blocks for the trace's lifetime; oldest forgotten first, past a bound.
    std::unordered_map<LiveKey, uint64_t, LiveKeyHash> past_sizes;
    std::deque<LiveKey> past_order;
    // Sampling's decision cache: traces decided and gone from the index, oldest forgotten first.
    struct Remembered {
      Decision decision;
      uint8_t tier;  // kept traces cut into a block: 1 + its tier's index; 0: not yet
    };
    std::unordered_map<LiveKey, Remembered, LiveKeyHash> decided;
    std::deque<LiveKey> kept_order, dropped_order;
  };
  // Remembers a decision (kKept or kDropped); `tier`, when non-zero, the kept trace's tier.
  void RememberDecision(Shard& shard, const LiveKey& key, Decision decision, uint8_t tier = 0);
  uint8_t RememberedTier(Shard& shard, const LiveKey& key) const;
  // Kept, dropped, or nullopt when not remembered; under the shard lock.
  std::optional<Decision> RememberedDecision(Shard& shard, const LiveKey& key) const;
  // What a trace weighed before (its live entry, or the record of it), under the shard lock.
  uint64_t LifetimeBytes(Shard& shard, const LiveKey& key);
  void RememberSize(Shard& shard, const LiveKey& key, uint64_t bytes);
  struct Tenant {
    Tenant(std::string n, uint32_t i) : name(std::move(n)), id(i) {}
    const std::string name;
    const uint32_t id;
    std::atomic<int64_t> live_traces{0};
    std::atomic<int64_t> last_push{0};
    std::mutex mutex;  // guards what follows
    std::vector<TraceId> complete;  // queued for the next block
    uint64_t complete_bytes = 0;
    int64_t complete_since = 0;
    bool cutting = false;
    int64_t next_cut_attempt = 0;  // after a failed cut
    int failed_cuts = 0;
  };

  Ingester(Options options, Env& env, backend::ObjectStore& store, storage::BlockList& blocks, ThreadPool& pool,
           MetricsRegistry& metrics);
  std::shared_ptr<Tenant> GetTenant(const std::string& name);
  std::shared_ptr<Tenant> FindTenant(const std::string& name) const;
  std::shared_ptr<Tenant> FindTenant(uint32_t id) const;
  std::vector<std::shared_ptr<Tenant>> AllTenants() const;
  Shard& ShardFor(const LiveKey& key) { return shards_[LiveKeyHash()(key) % kShards]; }

  void ReplayRecord(wal::RecordLocation location, std::string_view payload);
  // Makes the fragments of a durable record live (the WAL callback, and replay).
  void InsertRecord(Tenant& tenant, const std::vector<RecordFragment>& layout, const wal::RecordLocation& location,
                    const uint64_t* matched = nullptr);
  void AppendRecord(const std::shared_ptr<Tenant>& tenant, const std::vector<const otlp::TraceFragment*>& fragments,
                    std::function<void(Status)> done, std::vector<uint64_t> matched = {});
  std::vector<bool> PushFragments(const std::string& tenant, const std::vector<otlp::TraceFragment>& fragments, Done done,
                                  std::vector<uint64_t> matched, std::vector<bool>* sampled_out);
  // Sampling (sampling.cpp).
  void DecideDue(int64_t now, bool everything);
  // Applies decisions read from the WAL at replay, or made now (kept and pinned ones then hold
  // their record's segment while the trace waits, so that a restart finds them).
  void ApplyDecisions(Tenant& tenant, const std::vector<RecordDecision>& decisions, const wal::RecordLocation* location);
  void WriteDecisions(const std::shared_ptr<Tenant>& tenant, std::vector<RecordDecision> decisions,
                      std::function<void(Status)> done);
  // Erases a live trace and releases its WAL references (a dropped trace); under the shard lock.
  void DropLive(Shard& shard, LiveTrace& trace, Tenant& tenant, std::map<uint64_t, int64_t>& released);
  // Brings memory_bytes_ up to date with the shard's table; under the shard lock.
  void AccountMemory(Shard& shard);
  std::vector<uint64_t> PolicyBits(std::string_view payload, const std::vector<RecordFragment>& layout) const;
  size_t TierOf(const LiveTrace& trace) const;  // index in storage::kTiers
  void AddSegmentRefs(uint64_t segment, int64_t delta);

  void SweepLoop();
  // Completes idle traces and starts the cuts that are due; `everything` completes all.
  void Sweep(bool everything);
  void CutBlock(const std::shared_ptr<Tenant>& tenant);
  // The plan is the IDs being cut; their fragments [0, cutting) are read at write time, so a
  // cut holds no copy of the index.
  Status WriteBlock(Tenant& tenant, const std::vector<TraceId>& plan, std::vector<bool>& written);
  void FinishCut(Tenant& tenant, const std::vector<TraceId>& plan, const std::vector<bool>& written);
  // The fragments of a trace that a cut took; false when it is not being cut.
  bool FragmentsBeingCut(const Tenant& tenant, const TraceId& id, std::vector<FragmentLocation>& out,
                         size_t* tier = nullptr, uint32_t* spans = nullptr);
  // FragmentsBeingCut and their bytes read from the WAL into `out`; false when the trace is not
  // being cut or cannot be read (then it waits for the next cut: counted, logged, and the
  // first such failure kept in `unread`).
  bool ReadTraceBeingCut(const Tenant& tenant, const TraceId& id, std::vector<FragmentLocation>& fragments,
                         std::string& out, Status& unread, size_t* tier, uint32_t* spans = nullptr);
  Status DeliverToSink(Tenant& tenant, const std::vector<TraceId>& plan, std::vector<bool>& written);
  Status Quarantine(const std::string& tenant, const std::string& what, std::string_view bytes);
  Status ReadFragments(const std::vector<FragmentLocation>& fragments, std::string& out);
  void RemoveFreeSegments();
  void EvictIdleTenants(int64_t now);

  Options options_;
  Env& env_;
  backend::ObjectStore& store_;
  storage::BlockList& blocks_;
  ThreadPool& pool_;
  std::unique_ptr<wal::WriteAheadLog> wal_;

  std::array<Shard, kShards> shards_;
  mutable std::shared_mutex tenants_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Tenant>> tenants_by_name_;
  std::unordered_map<uint32_t, std::shared_ptr<Tenant>> tenants_by_id_;
  uint32_t next_tenant_id_ = 1;
  std::mutex waiting_mutex_;
  std::unordered_set<uint32_t> waiting_tenants_;  // tenants that may have completed traces queued
  std::atomic<int64_t> next_eviction_{0};         // sweeps (the sweeper thread and FlushAll)
  std::atomic<int64_t> next_idle_walk_{0};

  std::atomic<int64_t> memory_bytes_{0};  // what the live-trace index really takes
  std::mutex segments_mutex_;
  std::mutex remove_segments_mutex_;
  std::map<uint64_t, int64_t> segment_refs_;  // live fragments per WAL segment

  std::mutex cut_mutex_;  // guards cuts_running_ and last_cut_status_
  std::condition_variable cuts_done_;
  int cuts_running_ = 0;
  std::atomic<bool> flushing_{false};  // FlushAll is running: cut everything, now
  std::atomic<bool> closing_{false};   // being destroyed: start no further cut
  Status last_cut_status_;

  std::mutex sweep_mutex_;
  std::condition_variable sweep_wake_;
  bool stopping_ = false;
  std::thread sweeper_;

  Counter& spans_ingested_;
  Counter& bytes_ingested_;
  Counter& blocks_cut_;
  Counter& block_bytes_written_;
  Counter& traces_flushed_;
  Counter& wal_segments_removed_;
  Counter& replayed_records_;
  Counter& replay_torn_bytes_;
  Counter& spans_refused_trace_too_large_;
  Counter& spans_refused_live_traces_;
  Counter& flush_failures_;
  Counter& traces_quarantined_;
  Counter& fragment_read_failures_;

  // Tail sampling.
  std::optional<sampling::PolicySet> policies_;
  std::unique_ptr<sampling::DecisionEngine> engine_;  // the sweeper's (and replay's), under engine_mutex_
  std::mutex engine_mutex_;
  uint64_t kept_cache_bound_ = 0, dropped_cache_bound_ = 0;  // per shard
  std::atomic<int64_t> pending_traces_{0};
  std::atomic<bool> early_wake_{false};  // the sweeper was woken because num_traces is passed
  struct PolicyCounters {
    Counter *traces_sampled, *traces_not_sampled, *spans_sampled, *spans_not_sampled;
  };
  std::vector<PolicyCounters> policy_counters_;
  Counter* traces_kept_ = nullptr;
  Counter* traces_dropped_ = nullptr;
  Counter* spans_kept_ = nullptr;
  Counter* spans_dropped_ = nullptr;
  Counter* traces_pinned_kept_ = nullptr;
  Counter* late_spans_kept_ = nullptr;
  Counter* late_spans_dropped_ = nullptr;
  Counter* early_decisions_ = nullptr;
  Histogram* decision_latency_ = nullptr;
  std::array<Counter*, 4> tier_traces_{};  // by storage::kTiers
};

}  // namespace tracery::ingester
