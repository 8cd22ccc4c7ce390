// sampler_bench: the tail sampler's cost per span on the load generator's realistic requests
// (already split by trace, as the ingest path hands them over): the per-span predicates at
// ingest, the decision per trace, and the two together with a pending-trace table, for the
// seed's three policies (errors, slow, 5 % baseline) and for a config heavy on attribute
// policies. Each reports items per second on one core; spans/s is the figure to hold against
// the 500 k spans/s target. Prints sizeof(TraceSummary), the memory a pending trace costs.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <unordered_map>

#include "common/env.h"
#include "loadgen/request_pool.h"
#include "otlp/split.h"
#include "sampling/sampler.h"

namespace {

using tracery::sampling::DecisionEngine;
using tracery::sampling::PolicySet;
using tracery::sampling::TraceSummary;

const char* kSeedPolicies = R"(tail_sampling:
  decision_wait: 10s
  policies:
    - name: errors
      type: status_code
      status_code: { status_codes: [ERROR] }
    - name: slow
      type: latency
      latency: { threshold_ms: 500 }
    - name: baseline
      type: probabilistic
      probabilistic: { sampling_percentage: 5 }
)";

// Every per-span predicate kind, on keys the shop's spans and resources carry.
const char* kAttributePolicies = R"(tail_sampling:
  decision_wait: 10s
  policies:
    - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
    - { name: server-errors, type: numeric_attribute,
        numeric_attribute: { key: http.response.status_code, min_value: 500, max_value: 599 } }
    - { name: checkout, type: string_attribute, string_attribute: { key: service.name, values: [checkout, payments] } }
    - { name: routes, type: string_attribute,
        string_attribute: { key: http.route, values: ['/api/v1/cart/.+', '^/health'], enabled_regex_matching: true } }
    - { name: forced, type: boolean_attribute, boolean_attribute: { key: app.force_sample, value: true } }
    - { name: no-postgres, type: drop, drop: { drop_sub_policy: [
        { name: pg, type: string_attribute, string_attribute: { key: db.system, values: [postgresql] } },
        { name: short, type: span_count, span_count: { min_spans: 1, max_spans: 2 } } ] } }
    - { name: baseline, type: probabilistic, probabilistic: { sampling_percentage: 5 } }
)";

struct Pool {
  tracery::bench::RequestPool requests;
  std::vector<tracery::otlp::SplitRequest> splits;
  uint64_t spans = 0, traces = 0;
};

const Pool& SplitPool() {
  static const Pool pool = [] {
    Pool built;
    tracery::bench::PoolOptions options;
    options.request_count = 200;
    std::string error;
    if (!tracery::bench::BuildRequestPool(options, uint64_t(std::time(nullptr)) * 1'000'000'000ull, built.requests,
                                          error))
      std::abort();
    for (const auto& request : built.requests.requests) {
      tracery::otlp::SplitRequest split;
      if (!tracery::otlp::SplitByTrace(request.encoded, split).ok()) std::abort();
      built.spans += split.span_count;
      built.traces += split.fragments.size();
      built.splits.push_back(std::move(split));
    }
    return built;
  }();
  return pool;
}

PolicySet Policies(const char* yaml) {
  auto policies = tracery::sampling::ParseTailSampling(YAML::Load(yaml)["tail_sampling"], "bench");
  if (!policies.ok()) {
    std::fprintf(stderr, "%s\n", policies.status().ToString().c_str());
    std::abort();
  }
  return std::move(policies).value();
}

// Ingest: every span's predicates folded into its fragment's summary.
void ObserveRequests(benchmark::State& state, const char* yaml) {
  const Pool& pool = SplitPool();
  PolicySet policies = Policies(yaml);
  auto matcher = policies.matcher();
  std::vector<TraceSummary> per_fragment;
  size_t i = 0;
  uint64_t spans = 0;
  for (auto _ : state) {
    const auto& split = pool.splits[i++ % pool.splits.size()];
    per_fragment.assign(split.fragments.size(), TraceSummary());
    matcher.ObserveRequest(split, per_fragment);
    benchmark::DoNotOptimize(per_fragment.data());
    spans += split.span_count;
  }
  state.SetItemsProcessed(int64_t(spans));
}
void BM_ObserveSeed(benchmark::State& state) { ObserveRequests(state, kSeedPolicies); }
void BM_ObserveAttributePolicies(benchmark::State& state) { ObserveRequests(state, kAttributePolicies); }
BENCHMARK(BM_ObserveSeed);
BENCHMARK(BM_ObserveAttributePolicies);

// The decision alone, per trace, on summaries of the pool's traces with fresh random IDs.
void Decide(benchmark::State& state, const char* yaml) {
  const Pool& pool = SplitPool();
  PolicySet policies = Policies(yaml);
  std::vector<TraceSummary> summaries;
  for (const auto& split : pool.splits) {
    std::vector<TraceSummary> per_fragment(split.fragments.size());
    policies.matcher().ObserveRequest(split, per_fragment);
    summaries.insert(summaries.end(), per_fragment.begin(), per_fragment.end());
  }
  DecisionEngine engine(policies, tracery::DefaultEnv());
  std::mt19937_64 random(7);
  std::vector<tracery::TraceId> ids(4096);
  for (auto& id : ids)
    for (auto& b : id.bytes) b = uint8_t(random());
  size_t i = 0;
  uint64_t sampled = 0;
  for (auto _ : state) {
    sampled += engine.Decide(ids[i % ids.size()], summaries[i % summaries.size()]).sampled;
    ++i;
  }
  state.SetItemsProcessed(int64_t(i));
  state.counters["sampled_fraction"] = double(sampled) / double(i);
}
void BM_DecideSeed(benchmark::State& state) { Decide(state, kSeedPolicies); }
void BM_DecideAttributePolicies(benchmark::State& state) { Decide(state, kAttributePolicies); }
BENCHMARK(BM_DecideSeed);
BENCHMARK(BM_DecideAttributePolicies);

// The whole sampler as the ingester will run it, minus the disk: observe each request, merge
// its fragments into a table of pending traces, and decide (and forget) every pending trace
// each 64 requests. Items are spans.
void WholeSampler(benchmark::State& state, const char* yaml) {
  const Pool& pool = SplitPool();
  PolicySet policies = Policies(yaml);
  auto matcher = policies.matcher();
  DecisionEngine engine(policies, tracery::DefaultEnv());
  std::unordered_map<tracery::TraceId, TraceSummary, tracery::TraceIdHasher> pending;
  pending.reserve(1 << 16);
  std::vector<TraceSummary> per_fragment;
  size_t i = 0;
  uint64_t spans = 0, sampled = 0, decided = 0;
  for (auto _ : state) {
    const auto& split = pool.splits[i % pool.splits.size()];
    per_fragment.assign(split.fragments.size(), TraceSummary());
    matcher.ObserveRequest(split, per_fragment);
    for (size_t f = 0; f < split.fragments.size(); ++f) pending[split.fragments[f].trace_id].Merge(per_fragment[f]);
    spans += split.span_count;
    if (++i % 64 == 0) {
      for (const auto& [id, summary] : pending) sampled += engine.Decide(id, summary).sampled;
      decided += pending.size();
      pending.clear();
    }
  }
  state.SetItemsProcessed(int64_t(spans));
  if (decided) state.counters["sampled_fraction"] = double(sampled) / double(decided);
}
void BM_WholeSamplerSeed(benchmark::State& state) { WholeSampler(state, kSeedPolicies); }
void BM_WholeSamplerAttributePolicies(benchmark::State& state) { WholeSampler(state, kAttributePolicies); }
BENCHMARK(BM_WholeSamplerSeed);
BENCHMARK(BM_WholeSamplerAttributePolicies);

}  // namespace

int main(int argc, char** argv) {
  const Pool& pool = SplitPool();
  std::printf("pool: %zu requests, %llu traces (fragments), %llu spans; sizeof(TraceSummary) = %zu bytes\n",
              pool.splits.size(), (unsigned long long)pool.traces, (unsigned long long)pool.spans,
              sizeof(TraceSummary));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
