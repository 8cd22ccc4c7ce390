// TraceQL search over everything a tenant has: live traces, traces waiting for their block,
// and blocks, through the storage library's interfaces (never the ingester's internals).
//
// Each trace is judged whole: a live trace is read whole (its block fragments too); a block
// fragment whose trace also lies in another block or is still live is read whole before it
// is judged, and only then. The answer is deterministic: the `limit` most recent matching
// traces by start time (ties by trace ID), whatever the order the parallel scan ran in.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "otlp/model.h"
#include "storage/block_list.h"
#include "storage/trace_source.h"
#include "traceql/engine.h"
#include "traceql/trace_view.h"

namespace tracery::query {

struct SearchRequest {
  std::string tenant;
  std::shared_ptr<const traceql::Query> query;  // a search (not metrics) query
  uint32_t limit = 20;
  uint32_t spans_per_spanset = 3;
  storage::TimeRange range;
  uint64_t min_trace_duration_nanos = 0, max_trace_duration_nanos = 0;  // 0: no bound
};

struct FoundSpan {
  std::string span_id;  // raw 8 bytes
  std::string name;
  uint64_t start_unix_nano = 0, duration_nanos = 0;
  std::vector<otlp::KeyValue> attributes;
};

struct FoundSpanset {
  std::vector<FoundSpan> spans;  // at most spans_per_spanset
  uint32_t matched = 0;
  std::vector<otlp::KeyValue> attributes;
};

struct ServiceStats {
  uint32_t span_count = 0, error_count = 0;
};

struct FoundTrace {
  TraceId id;
  bool has_root = false;
  std::string root_service_name, root_span_name;
  uint64_t start_unix_nano = 0, duration_nanos = 0;
  std::vector<FoundSpanset> spansets;
  std::map<std::string, ServiceStats> service_stats;
};

// What a search looked at, in Tempo's SearchMetrics terms.
struct SearchStats {
  uint64_t inspected_traces = 0, inspected_bytes = 0, inspected_spans = 0;
  uint32_t total_blocks = 0, completed_jobs = 0, total_jobs = 0;
  uint64_t total_block_bytes = 0;
};

struct SearchResult {
  std::vector<FoundTrace> traces;  // most recent first
  SearchStats stats;
  bool partial = false;  // a budget ran out; `message` says which
  std::string message;
};

struct SearchOptions {
  std::chrono::milliseconds timeout{30'000};
  uint64_t max_bytes_per_search = 0;  // of row groups read; 0: no bound
};

class Searcher {
 public:
  // Reads through `reader` (live and block sources) for whole traces, lists live traces with
  // `live` and scans `blocks`; runs scan jobs on `pool` and on the calling thread.
  Searcher(storage::BlockList& blocks, storage::LiveTraceLister& live, storage::TraceReader& reader, ThreadPool& pool,
           SearchOptions options)
      : blocks_(blocks), live_(live), reader_(reader), pool_(pool), options_(options) {}

  // The answer is exactly the `limit` newest matches (ties by trace ID); with the query hint
  // `with(most_recent=false)`, Tempo 2.7's rule: the first `limit` matching traces found (jobs
  // run newest first), where the scan ends.
  // `progress`, when given, is called (from the calling thread, between jobs, at most once
  // per `progress_interval`) with the results so far, so a streaming caller can send them as
  // they improve. Its traces are the settled part of the answer, all in the final `traces`:
  // with most_recent=false every trace found so far; otherwise those no job still to run can
  // push out (newer than anything left to scan), a prefix of the final `traces`. Its stats
  // count the jobs completed so far (completed_jobs of total_jobs). Returning false stops the
  // search (its caller went away): the answer is then partial.
  using Progress = std::function<bool(const SearchResult& so_far)>;
  Result<SearchResult> Search(const SearchRequest& request, const Progress& progress = nullptr,
                              std::chrono::milliseconds progress_interval = std::chrono::milliseconds(0));

  // Visits every trace (whole) of a tenant overlapping `range`, on the pool and the calling
  // thread (visit must be thread-safe), newest blocks first, until it returns false or a
  // budget runs out. What tag listings and metrics queries read through.
  // `projection` names the span columns visit reads (others are left empty, except in
  // traces read whole); the view is valid during the call only.
  using Visit = std::function<bool(const TraceId&, const traceql::TraceView&)>;
  // `whole_traces` false: visit may see a trace in fragments, one per block it lies in, and
  // the views carry no structure (parents, nested sets): what span-local queries and
  // listings need, and cheaper.
  Status ScanAll(const std::string& tenant, const storage::TimeRange& range, const traceql::PruneConditions& prune,
                 const block::Projection& projection, bool whole_traces, const Visit& visit, SearchStats& stats,
                 bool& partial, std::string& message);

 private:
  // Skips a job whose traces all start before this time (a top-N search that is already full
  // of newer traces). A job's bound: its row group's latest trace start (format 3) or latest
  // span end (older formats); for live traces their latest end. Jobs are asked newest bound
  // first, and once a job is skipped so are all jobs not yet started (the answer only gets
  // newer): a SkipJob must never keep a job with an earlier bound than one it skipped.
  using SkipJob = std::function<bool(uint64_t max_start_unix_nano)>;
  // Called on the calling thread after each of its jobs with the stats so far and the newest
  // start bound of the jobs not yet finished (0 when none is left): traces starting after it
  // can no longer be outdone by one still to be visited. False stops the scan.
  using AfterJob = std::function<bool(const SearchStats& so_far, uint64_t unfinished_max_start_unix_nano)>;
  // Skips a trace that starts no later than this (a fragment's start: the whole trace starts
  // no later than any of its fragments), before it is judged or looked for in other blocks.
  using SkipTrace = std::function<bool(uint64_t start_unix_nano, const TraceId& id)>;
  struct Skips {
    SkipJob job;
    SkipTrace trace;
  };
  Status Scan(const std::string& tenant, const storage::TimeRange& range, const traceql::PruneConditions& prune,
              const block::Projection& projection, bool whole_traces, const Visit& visit, const Skips& skips,
              const AfterJob& after_job, SearchStats& stats, bool& partial, std::string& message);

  storage::BlockList& blocks_;
  storage::LiveTraceLister& live_;
  storage::TraceReader& reader_;
  ThreadPool& pool_;
  SearchOptions options_;
};

}  // namespace tracery::query
