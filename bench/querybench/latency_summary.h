// Percentiles of a set of latencies, reported the way the benchmark summary prints them.
#pragma once

#include <cstdint>
#include <vector>

namespace tracery::bench {

struct LatencySummary {
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
};

// Nearest-rank percentiles (no interpolation), so every figure is a latency that was
// actually observed. Sorts `latencies_ns` in place.
LatencySummary Summarize(std::vector<uint64_t>& latencies_ns);

}  // namespace tracery::bench
