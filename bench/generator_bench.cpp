// generator_bench: the metrics generator alone, on the load generator's realistic requests.
// Splits a pool of OTLP requests once (as the distributor does), then feeds them to the
// generator (span metrics and service graph on) for a few rounds on one thread and prints
// spans per CPU-second, i.e. per core, and the CPU cost per span.
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
  double split_start = ThreadCpuSeconds();
  uint64_t spans = 0;
  for (size_t i = 0; i < pool.requests.size(); ++i) {
    if (!tracery::otlp::SplitByTrace(pool.requests[i].encoded, splits[i]).ok()) {
      std::fprintf(stderr, "generator_bench: request %zu does not split\n", i);
      return 1;
    }
    spans += splits[i].span_count;
  }
  double split_seconds = ThreadCpuSeconds() - split_start;

  tracery::MetricsRegistry self_metrics;
  tracery::generator::Options options;
  options.span_metrics = true;
  options.service_graphs = true;
  tracery::generator::Generator generator(options, self_metrics);
  generator.Start();
  std::vector<std::vector<bool>> accepted;
  for (const auto& split : splits) accepted.emplace_back(split.fragments.size(), true);
  double start = ThreadCpuSeconds();
  for (int round = 0; round < rounds; ++round)
    for (size_t i = 0; i < splits.size(); ++i) generator.Consume("single-tenant", splits[i], accepted[i]);
  double seconds = ThreadCpuSeconds() - start;
  generator.Stop();
  uint64_t fed = spans * uint64_t(rounds);

  std::printf("generator_bench: %llu spans (%d requests x %d rounds), span metrics + service graph\n",
              (unsigned long long)fed, requests, rounds);
  std::printf("  generator spans per CPU-second   %.0f\n", double(fed) / seconds);
  std::printf("  generator CPU per span           %.3f us\n", seconds / double(fed) * 1e6);
  std::printf("  split (validate + regroup) per span %.3f us (for comparison)\n", split_seconds / double(spans) * 1e6);
  return 0;
}
