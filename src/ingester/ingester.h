// The ingester: makes accepted spans durable (write-ahead log), keeps recent traces in memory
// and cuts completed ones into immutable blocks.
//
// A trace lives in one of four places, and FindTrace looks in all of them:
//   live        receiving spans; sharded maps, one mutex per shard
//   completing  idle for trace_idle_period; waits for the block being gathered
//   flushing    being written as a block (read-only snapshot)
//   blocks      on the backend
// A WAL segment is deleted only when no trace still in memory has spans in it, i.e. all of
// its spans are in flushed blocks.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend/object_store.h"
#include "block/block.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/status.h"
#include "otlp/model.h"
#include "otlp/split.h"
#include "wal/wal.h"

namespace tracery::ingester {

using Clock = std::chrono::steady_clock;

struct Options {
  std::chrono::nanoseconds trace_idle_period = std::chrono::seconds(10);
  std::chrono::nanoseconds max_block_duration = std::chrono::minutes(30);
  uint64_t max_block_bytes = 100ull << 20;
  uint64_t max_live_bytes = 2ull << 30;      // memory for spans; past it Push refuses
  uint64_t max_bytes_per_trace = 5'000'000;  // 0: unlimited
  uint64_t max_traces_per_tenant = 0;        // 0: unlimited
  std::chrono::milliseconds sweep_interval{500};
  wal::Options wal;
  block::WriterOptions block;
};

struct PushOutcome {
  Status status;                // durable, or why not
  uint64_t rejected_spans = 0;  // refused by per-trace limits (OTLP partial success)
  std::string rejected_reason;
};

class Ingester {
 public:
  using Done = std::function<void(PushOutcome)>;

  // Opens the blocks already stored, then replays the write-ahead log.
  static Result<std::unique_ptr<Ingester>> Open(Options options, backend::ObjectStore& store, MetricsRegistry& metrics);
  ~Ingester();  // stops without flushing: the WAL keeps what is not in blocks

  // Takes one request: its encoded bytes and its fragments (SplitByTrace). `done` runs once
  // every accepted span is durable and readable; spans refused by a per-trace limit are
  // never written. Returns at once which fragments were accepted.
  std::vector<bool> Push(const std::string& tenant, std::string_view request,
                         const std::vector<otlp::TraceFragment>& fragments, Done done);

  // The trace's spans from memory and blocks, merged, duplicates removed; nullopt if none.
  // Blocks whose time range misses [start, end] (unix ns) are not read; memory always is.
  Result<std::optional<otlp::TracesData>> FindTrace(const std::string& tenant, const TraceId& id, uint64_t start_unix_nano = 0,
                                                    uint64_t end_unix_nano = UINT64_MAX);

  // Cuts every trace in memory into blocks now (the /flush endpoint, and shutdown).
  Status FlushAll();
  void Stop();  // stops the sweeper, flushes, closes the WAL

  // True while spans held in memory exceed max_live_bytes: new pushes are refused.
  bool OverMemoryLimit() const { return memory_bytes_.load(std::memory_order_relaxed) > int64_t(options_.max_live_bytes); }

  struct Totals {
    uint64_t live_traces = 0, live_bytes = 0, blocks = 0;
  };
  Totals GetTotals() const;

 private:
  struct LiveTrace {
    std::string bytes;
    uint32_t span_count = 0;
    Clock::time_point first_append, last_append;
    std::vector<uint64_t> segments;  // WAL segments holding its spans
  };
  using TraceMap = std::unordered_map<TraceId, LiveTrace, TraceIdHasher>;
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mutex;
    TraceMap traces;
  };
  struct Tenant {
    explicit Tenant(std::string n) : name(std::move(n)) {}
    std::string name;
    std::array<Shard, kShards> shards;
    std::atomic<int64_t> live_traces{0}, live_bytes{0};
    std::mutex completing_mutex;  // guards completing, completing_bytes, completing_since, flushing
    TraceMap completing;
    uint64_t completing_bytes = 0;
    Clock::time_point completing_since;
    std::vector<std::shared_ptr<const TraceMap>> flushing;
    mutable std::shared_mutex blocks_mutex;
    std::vector<std::shared_ptr<block::BlockReader>> blocks;
  };

  Ingester(Options options, backend::ObjectStore& store, MetricsRegistry& metrics);
  void Shutdown(bool flush);
  Tenant& GetTenant(const std::string& name);
  std::shared_ptr<Tenant> FindTenant(const std::string& name) const;
  std::vector<std::shared_ptr<Tenant>> AllTenants() const;
  Status OpenStoredBlocks();
  void Replay(uint64_t segment, std::string_view record);
  // Appends fragments to live traces; returns how many (trace, segment) pairs are new.
  int64_t InsertLive(Tenant& tenant, const std::vector<const otlp::TraceFragment*>& fragments, uint64_t segment);
  void AddSegmentRefs(uint64_t segment, int64_t delta);
  void SweepLoop();
  // Moves traces idle for `idle` (all of them when `everything`) from live to completing.
  void MoveIdleTraces(Tenant& tenant, Clock::time_point now, bool everything);
  Status CutBlock(Tenant& tenant);
  void RemoveFreeSegments();

  Options options_;
  backend::ObjectStore& store_;
  std::unique_ptr<wal::WriteAheadLog> wal_;

  mutable std::shared_mutex tenants_mutex_;
  std::map<std::string, std::shared_ptr<Tenant>> tenants_;

  std::atomic<int64_t> memory_bytes_{0};  // all tenants' live_bytes
  std::mutex segments_mutex_;
  std::map<uint64_t, int64_t> segment_refs_;

  std::mutex flush_mutex_;  // one block cut at a time
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
};

}  // namespace tracery::ingester
