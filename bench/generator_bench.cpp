// generator_bench: the metrics generator alone, on the load generator's realistic requests.
// Each round gives every trace of a pool of OTLP requests a new trace ID (as loadgen does, so
// that no round finds the previous round's half edges waiting), splits the requests as the
// distributor does (not timed), then feeds them to the generator (span metrics and service
// graph on, the seed's defaults) on one thread. Prints spans per CPU-second of Consume, i.e.
// per core, and the CPU cost per span.
#include <ctime>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/metrics.h"
#include "generator/generator.h"
#include "loadgen/request_pool.h"
#include "otlp/split.h"

namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"generator_bench: span metrics + service graph throughput on one core"};
  int requests = 500, rounds = 5;
  cli.add_option("--requests", requests, "distinct requests in the pool");
  cli.add_option("--rounds", rounds, "times the pool is fed");
  CLI11_PARSE(cli, argc, argv);

  tracery::bench::PoolOptions pool_options;
  pool_options.request_count = requests;
  tracery::bench::RequestPool pool;
  std::string error;
  uint64_t now = uint64_t(std::time(nullptr)) * 1'000'000'000ull;
  if (!tracery::bench::BuildRequestPool(pool_options, now, pool, error)) {
    std::fprintf(stderr, "generator_bench: %s\n", error.c_str());
    return 1;
  }
  std::vector<tracery::otlp::SplitRequest> splits(pool.requests.size());
  std::vector<std::string> patched(pool.requests.size());
  tracery::bench::TraceIdSequence ids(uint64_t(std::time(nullptr)));
  uint64_t next_trace = 0;
  double split_seconds = 0;
  // Round `round`: new trace IDs in every request, then split; false if a request is refused.
  auto prepare_round = [&]() {
    std::vector<tracery::bench::TraceId> trace_ids;
    double start = ThreadCpuSeconds();
    for (size_t i = 0; i < pool.requests.size(); ++i) {
      const auto& request = pool.requests[i];
      patched[i] = request.encoded;
      trace_ids.clear();
      tracery::bench::PatchRequest(request, ids, next_trace, 0, reinterpret_cast<uint8_t*>(patched[i].data()), trace_ids);
      next_trace += request.trace_id_offsets.size();
      splits[i].Clear();
      if (!tracery::otlp::SplitByTrace(patched[i], splits[i]).ok()) {
        std::fprintf(stderr, "generator_bench: request %zu does not split\n", i);
        return false;
      }
    }
    split_seconds += ThreadCpuSeconds() - start;
    return true;
  };
  uint64_t spans = 0;
  for (const auto& request : pool.requests) spans += request.span_count;

  tracery::MetricsRegistry self_metrics;
  tracery::generator::Options options;
  options.span_metrics = true;
  options.service_graphs = true;
  tracery::generator::Generator generator(options, self_metrics);
  generator.Start();
  std::vector<bool> accepted;
  double seconds = 0;
  for (int round = 0; round < rounds; ++round) {
    if (!prepare_round()) return 1;
    double start = ThreadCpuSeconds();
    for (const auto& split : splits) {
      accepted.assign(split.fragments.size(), true);
      generator.Consume("single-tenant", split, accepted);
    }
    seconds += ThreadCpuSeconds() - start;
  }
  generator.Stop();
  uint64_t fed = spans * uint64_t(rounds);

  std::printf("generator_bench: %llu spans (%d requests x %d rounds), span metrics + service graph\n",
              (unsigned long long)fed, requests, rounds);
  std::printf("  generator spans per CPU-second   %.0f\n", double(fed) / seconds);
  std::printf("  generator CPU per span           %.3f us\n", seconds / double(fed) * 1e6);
  std::printf("  split (validate + regroup) per span %.3f us (for comparison)\n", split_seconds / double(fed) * 1e6);
  return 0;
}
