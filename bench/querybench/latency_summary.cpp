#include "querybench/latency_summary.h"

#include <algorithm>
#include <cmath>

namespace tracery::bench {
namespace {

constexpr double kNanosPerMilli = 1e6;

double NearestRank(const std::vector<uint64_t>& sorted, double percentile) {
  const auto rank = static_cast<size_t>(std::ceil(percentile / 100.0 * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1] / kNanosPerMilli;
}

}  // namespace

LatencySummary Summarize(std::vector<uint64_t>& latencies_ns) {
  LatencySummary summary;
  if (latencies_ns.empty()) return summary;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  summary.p50_ms = NearestRank(latencies_ns, 50);
  summary.p90_ms = NearestRank(latencies_ns, 90);
  summary.p99_ms = NearestRank(latencies_ns, 99);
  summary.max_ms = latencies_ns.back() / kNanosPerMilli;
  double total = 0;
  for (uint64_t latency : latencies_ns) total += latency;
  summary.mean_ms = total / latencies_ns.size() / kNanosPerMilli;
  return summary;
}

}  // namespace tracery::bench
