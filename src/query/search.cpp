#include "query/search.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "traceql/trace_view.h"

namespace tracery::query {
namespace {

// How far apart in time two fragments of one trace may lie in different blocks and still be
// found to belong together: blocks whose spans are all further than this from a fragment
// are not asked whether they hold the rest of its trace.
constexpr uint64_t kSplitTraceWindowNanos = 3600ull * 1'000'000'000;

// A live trace is read whole per job of this many.
constexpr size_t kLiveTracesPerJob = 256;

// A scan makes a job of every row group that may hold a match (thousands), most of which a
// top-N search then skips: a job is a few plain numbers, cheap to make and sort.
struct Job {
  static constexpr uint32_t kLive = UINT32_MAX;
  uint32_t block = 0;      // in the scan's block list; kLive: a batch of live traces
  uint32_t row_group = 0;  // kLive: which batch
  // No trace of the job starts later: what orders jobs and lets a full top N skip them.
  uint64_t max_start_unix_nano = 0;
  uint64_t bytes = 0;
};

// The span filter's `span.key = literal` conditions as probes of a row group's value summary,
// hashed once per search.
std::vector<block::ValueSummary::Probe> SummaryProbes(const block::SpanFilter& filter) {
  using Condition = block::SpanCondition;
  using Summary = block::ValueSummary;
  std::vector<Summary::Probe> probes;
  for (const Condition& c : filter.all_of) {
    if (c.field != Condition::Field::kSpanAttribute || c.op != Condition::Op::kEqual) continue;
    switch (c.type) {
      case Condition::Type::kString: probes.push_back(Summary::ProbeFor(c.key, Summary::Type::kString, c.string_value)); break;
      case Condition::Type::kInt: probes.push_back(Summary::ProbeFor(c.key, Summary::Type::kInt, Summary::IntValue(c.int_value))); break;
      case Condition::Type::kBool: probes.push_back(Summary::ProbeFor(c.key, Summary::Type::kBool, Summary::BoolValue(c.bool_value))); break;
      case Condition::Type::kFloat: break;  // an int or a double may equal it: not summarised
    }
  }
  return probes;
}

bool PassesPrune(const block::RowGroupStats& rg, const traceql::PruneConditions& prune,
                 const std::vector<block::ValueSummary::Probe>& probes) {
  // Cheapest first: most row groups fail on the first test that can fail them.
  if (prune.min_span_duration_nanos > rg.max_duration_nano) return false;
  // `span.key = literal` against the row group's value summary (format 3): every condition
  // of the span filter must hold for one span, so one the row group cannot meet rules it out.
  for (const auto& probe : probes)
    if (!rg.values.MayHold(probe)) return false;
  if (!prune.services_any_of.empty() &&
      std::none_of(prune.services_any_of.begin(), prune.services_any_of.end(),
                   [&](const std::string& s) { return rg.services.count(s) > 0; }))
    return false;
  for (const auto& key : prune.span_attribute_keys)
    if (!rg.attribute_keys.count(key)) return false;
  return true;
}

// A block that may hold the rest of a trace whose fragment lies in another, with its index
// (Bloom filters).
struct Neighbour {
  const block::BlockReader* block;
  std::shared_ptr<const block::BlockIndex> index;
};
using Neighbours = std::vector<Neighbour>;

// The scan's shared state: jobs are taken in order by whoever is free (pool threads and the
// caller); a job that starts after a budget ran out is skipped.
struct ScanState {
  std::vector<Job> jobs;
  std::vector<std::vector<storage::LiveTraceSummary>> live_batches;
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0}, traces{0}, spans{0};
  std::atomic<uint32_t> completed{0};
  std::unique_ptr<std::atomic<bool>[]> finished_jobs;  // per job: run or skipped (progress reports)
  std::mutex mutex;
  std::condition_variable finished;
  size_t running_workers = 0;
  std::string budget_message;  // set once, under mutex
  std::unordered_set<TraceId, TraceIdHasher> judged_whole;  // split traces already visited, under mutex
  // Each block's neighbours, found when a job of it first asks (many jobs never do: a scan
  // whose filter passes no span), then shared by its other jobs; under mutex.
  std::unordered_map<const block::BlockReader*, std::shared_ptr<const Neighbours>> neighbours;
  // What could not be read (a damaged or unreadable block): skipped, and the answer says so.
  uint64_t unread = 0;  // under mutex
  std::string first_unread;
};

}  // namespace

Status Searcher::ScanAll(const std::string& tenant, const storage::TimeRange& range,
                         const traceql::PruneConditions& prune, const block::Projection& projection,
                         bool whole_traces, const Visit& visit, SearchStats& stats, bool& partial,
                         std::string& message) {
  return Scan(tenant, range, prune, projection, whole_traces, visit, Skips{}, nullptr, stats, partial, message);
}

Status Searcher::Scan(const std::string& tenant, const storage::TimeRange& range,
                      const traceql::PruneConditions& prune, const block::Projection& projection, bool whole_traces,
                      const Visit& visit, const Skips& skips, const AfterJob& after_job, SearchStats& stats,
                      bool& partial, std::string& message) {
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  auto state = std::make_shared<ScanState>();

  // Live traces: every one is known (a block fragment of a live trace is judged with it).
  std::vector<storage::LiveTraceSummary> live = live_.ListLiveTraces(tenant, storage::TimeRange{});
  std::unordered_set<TraceId, TraceIdHasher> live_ids;
  live_ids.reserve(live.size());
  std::vector<storage::LiveTraceSummary> live_in_range;
  for (const auto& trace : live) {
    live_ids.insert(trace.id);
    if (range.Overlaps(trace.start_unix_nano, trace.end_unix_nano)) live_in_range.push_back(trace);
  }
  std::sort(live_in_range.begin(), live_in_range.end(),
            [](const auto& a, const auto& b) { return a.end_unix_nano > b.end_unix_nano; });
  for (size_t i = 0; i < live_in_range.size(); i += kLiveTracesPerJob) {
    Job job;
    size_t end = std::min(live_in_range.size(), i + kLiveTracesPerJob);
    job.block = Job::kLive;
    job.row_group = uint32_t(state->live_batches.size());
    job.max_start_unix_nano = live_in_range[i].end_unix_nano;  // newest end first: no start is later
    state->live_batches.emplace_back(live_in_range.begin() + long(i), live_in_range.begin() + long(end));
    state->jobs.push_back(job);
  }

  // Blocks: one job per row group that overlaps the range and that the stats do not rule out.
  std::vector<std::shared_ptr<block::BlockReader>> all_blocks = blocks_.Blocks(tenant);
  const std::vector<block::ValueSummary::Probe> probes = SummaryProbes(prune.span_filter);
  for (uint32_t b = 0; b < all_blocks.size(); ++b) {
    const auto& block = all_blocks[b];
    const block::BlockMeta& meta = block->meta();
    if (!range.Overlaps(meta.min_start_unix_nano, meta.max_end_unix_nano)) continue;
    stats.total_blocks++;
    stats.total_block_bytes += meta.data_bytes;
    auto index = block->Index();
    if (!index.ok()) {
      state->unread++;
      if (state->first_unread.empty()) state->first_unread = index.status().ToString();
      continue;
    }
    const auto& row_groups = (*index)->row_groups;
    for (uint32_t r = 0; r < row_groups.size(); ++r) {
      const block::RowGroupStats& rg = row_groups[r];
      if (!range.Overlaps(rg.min_start_unix_nano, rg.max_end_unix_nano) || !PassesPrune(rg, prune, probes)) continue;
      Job job;
      job.block = b;
      job.row_group = r;
      job.max_start_unix_nano = rg.max_trace_start_unix_nano;
      job.bytes = rg.size;
      state->jobs.push_back(job);
    }
  }
  // Newest first, so that a top-N search can stop early; stable, so the order is the same
  // on every run.
  std::stable_sort(state->jobs.begin(), state->jobs.end(),
                   [](const Job& a, const Job& b) { return a.max_start_unix_nano > b.max_start_unix_nano; });
  stats.total_jobs = uint32_t(state->jobs.size());
  state->finished_jobs = std::make_unique<std::atomic<bool>[]>(state->jobs.size());

  // A read that failed: what it held is left out of the answer, which says so; the scan goes on.
  auto note_unread = [&](const Status& status) {
    std::lock_guard lock(state->mutex);
    state->unread++;
    if (state->first_unread.empty()) state->first_unread = status.ToString();
  };

  auto visit_whole = [&](const TraceId& id) -> bool {
    auto whole = reader_.FindTrace(tenant, id);
    if (!whole.ok()) {
      note_unread(whole.status());
      return true;
    }
    if (!whole->has_value()) return true;  // gone (retention) since it was listed
    state->spans.fetch_add((**whole).SpanCount(), std::memory_order_relaxed);
    return visit(id, traceql::BuildTraceView(id, **whole));
  };

  // The blocks that may hold the rest of a trace whose fragment lies in `holder`: those within
  // the split window of it in time, with their indexes (Bloom filters), found once per scan.
  auto find_neighbours = [&](const block::BlockReader* holder) -> Result<std::shared_ptr<const Neighbours>> {
    {
      std::lock_guard lock(state->mutex);
      auto it = state->neighbours.find(holder);
      if (it != state->neighbours.end()) return it->second;
    }
    const block::BlockMeta& own = holder->meta();
    uint64_t low = own.min_start_unix_nano > kSplitTraceWindowNanos ? own.min_start_unix_nano - kSplitTraceWindowNanos : 0;
    uint64_t high = own.max_end_unix_nano > UINT64_MAX - kSplitTraceWindowNanos ? UINT64_MAX
                                                                                 : own.max_end_unix_nano + kSplitTraceWindowNanos;
    auto out = std::make_shared<Neighbours>();
    for (const auto& other : all_blocks) {
      if (other.get() == holder) continue;
      const block::BlockMeta& meta = other->meta();
      if (meta.max_end_unix_nano < low || meta.min_start_unix_nano > high) continue;
      auto index = other->Index();
      if (!index.ok()) return index.status();
      out->push_back({other.get(), *index});
    }
    std::lock_guard lock(state->mutex);
    return state->neighbours.emplace(holder, std::move(out)).first->second;
  };
  // Whether a fragment's trace has spans in another block: then it is read whole.
  auto is_split = [&](const TraceId& id, const Neighbours& neighbours) -> Result<bool> {
    const block::BloomFilter::Key key = block::BloomFilter::KeyOf(id);  // hashed once for every block
    for (const Neighbour& n : neighbours) {
      if (!n.index->blooms[block::BloomFilter::ShardOf(key, n.block->meta().bloom_shards)].MayContain(key)) continue;
      auto contains = n.block->Contains(id);
      if (!contains.ok()) return contains.status();
      if (*contains) return true;
    }
    return false;
  };

  auto run_job = [&](const Job& job) {
    if (job.block == Job::kLive) {
      for (const auto& trace : state->live_batches[job.row_group]) {
        if (state->stop) return;
        if (skips.trace && skips.trace(trace.start_unix_nano, trace.id)) continue;
        if (!visit_whole(trace.id)) {
          state->stop = true;
          return;
        }
        state->traces.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    const block::BlockReader& block = *all_blocks[job.block];
    state->bytes.fetch_add(job.bytes, std::memory_order_relaxed);
    // Found on the first trace that needs them. When they cannot be (an unreadable index), the
    // rest of the job is left out (`neighbours_failed`), noted once.
    std::shared_ptr<const Neighbours> neighbours;
    bool neighbours_failed = false;
    auto job_neighbours = [&]() -> const Neighbours* {
      if (!neighbours && !neighbours_failed) {
        auto found = find_neighbours(&block);
        if (found.ok()) {
          neighbours = *found;
        } else {
          neighbours_failed = true;
          note_unread(found.status());
        }
      }
      return neighbours.get();
    };
    uint64_t checked = 0;
    std::vector<traceql::SpanRef> refs;  // reused from trace to trace
    auto visit_fragment = [&](const TraceId& id, const std::vector<block::DecodedSpan>& spans, size_t count,
                              const block::RowGroupTables& tables) {
      if (state->stop) return false;
      state->traces.fetch_add(1, std::memory_order_relaxed);
      if (!live_ids.empty() && live_ids.count(id)) return true;  // judged whole with the live traces
      if (skips.trace) {
        uint64_t start = UINT64_MAX;
        for (size_t i = 0; i < count; ++i) start = std::min(start, spans[i].span.start_time_unix_nano);
        if (skips.trace(start, id)) return true;
      }
      const Neighbours* around = whole_traces ? job_neighbours() : nullptr;
      if (whole_traces && !around) return false;
      auto split = whole_traces ? is_split(id, *around) : Result<bool>(false);
      if (!split.ok()) {  // the rest of the trace cannot be looked for: it is left out
        note_unread(split.status());
        return true;
      }
      if (*split) {
        {
          std::lock_guard lock(state->mutex);
          if (!state->judged_whole.insert(id).second) return true;
        }
        if (visit_whole(id)) return true;
        state->stop = true;
        return false;
      }
      refs.clear();
      for (size_t i = 0; i < count; ++i) {
        traceql::SpanRef ref;
        ref.span = &spans[i].span;
        ref.resource = tables.resources[spans[i].resource];
        ref.scope = tables.scopes[spans[i].scope];
        refs.push_back(ref);
      }
      traceql::TraceView view = traceql::BuildTraceViewFromRefs(id, std::move(refs), whole_traces);
      view.resource_table = tables.generation;  // decoded resources are shared (see RowGroupTables)
      bool more = !range.Overlaps(view.start_unix_nano, view.end_unix_nano) || visit(id, view);
      refs = std::move(view.spans);  // keep the buffer
      if (!more) state->stop = true;
      return more;
    };
    block::TraceSkip skip_trace;
    if (skips.trace || prune.min_trace_spans > 1)
      skip_trace = [&](const block::TraceEntry& entry) {
        if (skips.trace && skips.trace(entry.start_unix_nano, entry.id)) return true;
        if (entry.span_count >= prune.min_trace_spans) return false;
        // Too few spans for the query's count(), unless more of the trace lies elsewhere (live,
        // or in another block): such a trace is judged whole when it is visited.
        if (!live_ids.empty() && live_ids.count(entry.id)) return false;
        if (!whole_traces) return true;  // fragments are judged alone
        const Neighbours* around = job_neighbours();
        if (!around) return false;  // visited, where the job ends
        auto split = is_split(entry.id, *around);
        return split.ok() && !*split;
      };
    Status status = block.ScanRowGroupProjected(job.row_group, prune.span_filter, projection, visit_fragment,
                                                     &checked, skip_trace);
    state->spans.fetch_add(checked, std::memory_order_relaxed);
    if (!status.ok()) note_unread(status);
  };

  auto over_budget = [&]() -> bool {
    std::string why;
    if (std::chrono::steady_clock::now() > deadline)
      why = "search timed out after " + std::to_string(options_.timeout.count()) + " ms";
    else if (options_.max_bytes_per_search && state->bytes.load() > options_.max_bytes_per_search)
      why = "search read its limit of " + std::to_string(options_.max_bytes_per_search) + " bytes";
    if (why.empty()) return false;
    std::lock_guard lock(state->mutex);
    if (state->budget_message.empty()) state->budget_message = why;
    return true;
  };

  // Takes the next job and runs it; false when none is left or the scan stopped.
  auto take_and_run = [&]() -> bool {
    if (state->stop) return false;
    size_t j = state->next.fetch_add(1);
    if (j >= state->jobs.size()) return false;
    const Job& job = state->jobs[j];
    if (skips.job && skips.job(job.max_start_unix_nano)) {
      // Jobs run newest first and a skip stays a skip (SkipJob): every job not yet taken is
      // skipped too, all at once (a top-N search skips thousands of them).
      const size_t total = state->jobs.size();
      const size_t untaken = std::min(state->next.exchange(total), total);
      for (size_t k = untaken; k < total; ++k) state->finished_jobs[k].store(true, std::memory_order_relaxed);
      state->completed.fetch_add(uint32_t(total - untaken));
    } else {
      if (over_budget()) {
        state->stop = true;
        return false;
      }
      run_job(job);
    }
    state->finished_jobs[j].store(true);
    state->completed.fetch_add(1);
    return true;
  };

  size_t helpers = std::min(pool_.size(), state->jobs.size() > 1 ? state->jobs.size() - 1 : 0);
  {
    std::lock_guard lock(state->mutex);
    state->running_workers = helpers;
  }
  for (size_t i = 0; i < helpers; ++i) {
    bool submitted = pool_.Submit([&, state]() {
      while (take_and_run()) {
      }
      std::lock_guard lock(state->mutex);
      if (--state->running_workers == 0) state->finished.notify_all();
    });
    if (!submitted) {
      std::lock_guard lock(state->mutex);
      --state->running_workers;
    }
  }
  // The caller works too, and reports progress between its jobs. Jobs are sorted newest
  // first, so the first unfinished one has the newest end time of all unfinished ones.
  size_t first_unfinished = 0;
  while (take_and_run()) {
    if (!after_job) continue;
    while (first_unfinished < state->jobs.size() && state->finished_jobs[first_unfinished].load()) ++first_unfinished;
    SearchStats so_far = stats;
    so_far.inspected_bytes += state->bytes.load();
    so_far.inspected_traces += state->traces.load();
    so_far.inspected_spans += state->spans.load();
    so_far.completed_jobs = state->completed.load();
    if (!after_job(so_far, first_unfinished < state->jobs.size() ? state->jobs[first_unfinished].max_start_unix_nano : 0)) {
      std::lock_guard lock(state->mutex);
      if (state->budget_message.empty()) state->budget_message = "search stopped by its caller";
      state->stop = true;
    }
  }
  {
    std::unique_lock lock(state->mutex);
    state->finished.wait(lock, [&] { return state->running_workers == 0; });
  }
  stats.inspected_bytes += state->bytes.load();
  stats.inspected_traces += state->traces.load();
  stats.inspected_spans += state->spans.load();
  stats.completed_jobs = state->completed.load();
  if (!state->budget_message.empty()) {
    partial = true;
    message = state->budget_message;
  }
  if (state->unread) {
    partial = true;
    if (!message.empty()) message += "; ";
    message += std::to_string(state->unread) + " part(s) of the data could not be read and are left out (first: " +
               state->first_unread + ")";
  }
  return Status::Ok();
}

}  // namespace tracery::query

namespace tracery::query {
namespace {

bool Newer(const FoundTrace& a, const FoundTrace& b) {
  if (a.start_unix_nano != b.start_unix_nano) return a.start_unix_nano > b.start_unix_nano;
  return a.id < b.id;
}

FoundTrace Describe(const traceql::TraceView& view, std::vector<traceql::ResultSpanset>& spansets,
                    uint32_t spans_per_spanset) {
  FoundTrace found;
  found.id = view.id;
  found.start_unix_nano = view.start_unix_nano;
  found.duration_nanos = view.DurationNanos();
  found.has_root = view.root >= 0;
  if (found.has_root) {
    found.root_service_name.assign(view.RootServiceName());
    found.root_span_name.assign(view.RootSpanName());
  }
  for (const traceql::SpanRef& ref : view.spans) {
    ServiceStats& stats = found.service_stats[std::string(traceql::ServiceName(*ref.resource))];
    stats.span_count++;
    if (ref.span->status_code == otlp::StatusCode::kError) stats.error_count++;
  }
  for (auto& set : spansets) {
    FoundSpanset& out = found.spansets.emplace_back();
    out.matched = uint32_t(set.spans.size());
    out.attributes = std::move(set.attributes);
    size_t keep = std::min<size_t>(set.spans.size(), spans_per_spanset);
    for (size_t i = 0; i < keep; ++i) {
      const traceql::SpanRef& ref = view.spans[set.spans[i].index];
      FoundSpan& span = out.spans.emplace_back();
      span.span_id = ref.span->span_id;
      span.name = ref.span->name;
      span.start_unix_nano = ref.span->start_time_unix_nano;
      span.duration_nanos = ref.DurationNanos();
      span.attributes = std::move(set.spans[i].attributes);
    }
  }
  return found;
}

}  // namespace

Result<SearchResult> Searcher::Search(const SearchRequest& request, const Progress& progress,
                                      std::chrono::milliseconds progress_interval) {
  SearchResult result;
  const size_t limit = std::max<uint32_t>(1, request.limit);
  // By default the answer is exactly the `limit` newest matches: the same query over the same
  // data gives the same answer. `with(most_recent=false)` asks for Tempo 2.7's rule instead: the
  // scan ends as soon as `limit` matching traces are found (jobs run newest first, so these
  // are recent traces, not necessarily the newest), which reads less.
  const otlp::AnyValue* most_recent_hint = traceql::FindHint(*request.query, "most_recent");
  const bool most_recent = !(most_recent_hint && most_recent_hint->type == otlp::AnyValue::Type::kBool &&
                             !most_recent_hint->bool_value);
  // With most_recent=false, the first `limit` found are the answer: none is displaced later.
  auto full = [&] { return !most_recent && result.traces.size() >= limit; };
  std::mutex mutex;  // guards result.traces: the newest `limit` found so far, newest first
  // The oldest start a trace may have and still enter the result (under mutex).
  auto cannot_enter = [&](uint64_t start, const TraceId& id) {
    if (result.traces.size() < limit) return false;
    const FoundTrace& last = result.traces.back();
    return start < last.start_unix_nano || (start == last.start_unix_nano && !(id < last.id));
  };

  Visit visit = [&](const TraceId& id, const traceql::TraceView& view) {
    if (view.spans.empty() || !request.range.Overlaps(view.start_unix_nano, view.end_unix_nano)) return true;
    uint64_t duration = view.DurationNanos();
    if (duration < request.min_trace_duration_nanos) return true;
    if (request.max_trace_duration_nanos && duration > request.max_trace_duration_nanos) return true;
    {
      std::lock_guard lock(mutex);
      if (full()) return false;
      if (cannot_enter(view.start_unix_nano, id)) return true;
    }
    std::vector<traceql::ResultSpanset> spansets = traceql::EvaluateSearch(*request.query, view);
    if (spansets.empty()) return true;
    FoundTrace found = Describe(view, spansets, request.spans_per_spanset);
    std::lock_guard lock(mutex);
    if (full()) return false;
    if (cannot_enter(found.start_unix_nano, id)) return true;
    auto at = std::lower_bound(result.traces.begin(), result.traces.end(), found, Newer);
    result.traces.insert(at, std::move(found));
    if (result.traces.size() > limit) result.traces.pop_back();
    return !full();
  };
  Skips skips;
  skips.job = [&](uint64_t max_start) {
    std::lock_guard lock(mutex);
    return result.traces.size() >= limit && max_start < result.traces.back().start_unix_nano;
  };
  skips.trace = [&](uint64_t start, const TraceId& id) {
    std::lock_guard lock(mutex);
    return cannot_enter(start, id);
  };
  AfterJob after_job;
  auto last_progress = std::chrono::steady_clock::now();
  if (progress)
    after_job = [&](const SearchStats& so_far, uint64_t unfinished_max_start) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress < progress_interval) return true;
      last_progress = now;
      SearchResult snapshot;
      {
        // Only traces no unfinished job can displace: a trace that job could still find starts
        // no later than the job's newest start (with most_recent=false none is displaced).
        std::lock_guard lock(mutex);
        for (const FoundTrace& trace : result.traces) {
          if (most_recent && unfinished_max_start && trace.start_unix_nano <= unfinished_max_start) break;
          snapshot.traces.push_back(trace);
        }
      }
      snapshot.stats = so_far;
      return progress(snapshot);
    };
  // Search answers name every span's name, IDs, times, status and service.
  block::Projection projection = traceql::NeededColumns(*request.query);
  projection.names = true;
  TRACERY_RETURN_IF_ERROR(Scan(request.tenant, request.range, traceql::PlanPruning(*request.query), projection,
                               /*whole_traces=*/true, visit, skips,
                               after_job, result.stats, result.partial, result.message));
  return result;
}

}  // namespace tracery::query
