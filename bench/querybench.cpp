// querybench: times trace-by-ID lookups (GET /api/traces/<id>) against a running server for
// IDs picked at random from a file (as written by `loadgen --record-ids`). See README.md.
//
// Each worker thread holds one keep-alive connection and issues its queries one after the
// other, so the latency figures are per request and the throughput is the concurrency's.
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "querybench/http_client.h"
#include "querybench/latency_summary.h"

namespace {

using Clock = std::chrono::steady_clock;
using tracery::bench::HttpConnection;
using tracery::bench::HttpResponse;

struct QueryOptions {
  std::string url = "http://127.0.0.1:3200";
  std::string ids_path;
  std::string path_template = "/api/traces/{id}";
  std::string tenant;
  std::string accept;
  int queries = 2000;
  int concurrency = 4;
  int warmup = 0;
  uint64_t seed = 1;
};

// What one worker saw; merged after the run.
struct WorkerTally {
  std::vector<uint64_t> ok_latencies_ns;
  std::map<int, uint64_t> failures_by_status;  // 200 with empty body counts as status 0
  uint64_t transport_errors = 0;
  std::string first_transport_error;
  uint64_t response_bytes = 0;
};

bool LooksLikeTraceId(const std::string& line) {
  if (line.empty() || line.size() > 32) return false;
  return line.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

std::vector<std::string> ReadTraceIds(const std::string& path) {
  std::vector<std::string> ids;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (LooksLikeTraceId(line)) ids.push_back(line);
  }
  return ids;
}

std::string PathFor(const QueryOptions& options, const std::string& prefix,
                    const std::string& id) {
  std::string path = options.path_template;
  const size_t placeholder = path.find("{id}");
  if (placeholder != std::string::npos) path.replace(placeholder, 4, id);
  return prefix + path;
}

void RunWorker(const QueryOptions& options, const std::string& host, int port,
               const std::string& prefix, const std::vector<std::string>& ids,
               std::atomic<int>& queries_left, int warmup, uint64_t seed, WorkerTally& tally) {
  std::vector<std::string> headers;
  if (!options.tenant.empty()) headers.push_back("X-Scope-OrgID: " + options.tenant);
  if (!options.accept.empty()) headers.push_back("Accept: " + options.accept);
  HttpConnection connection(host, port, headers);
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  HttpResponse response;
  std::string error;
  for (int i = 0; i < warmup; ++i) connection.Get(PathFor(options, prefix, ids[pick(random)]),
                                                   response, error);
  while (queries_left.fetch_sub(1) > 0) {
    const std::string path = PathFor(options, prefix, ids[pick(random)]);
    const Clock::time_point start = Clock::now();
    const bool answered = connection.Get(path, response, error);
    const auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    if (!answered) {
      if (tally.transport_errors++ == 0) tally.first_transport_error = error;
      continue;
    }
    if (response.status == 200 && !response.body.empty()) {
      tally.ok_latencies_ns.push_back(latency.count());
      tally.response_bytes += response.body.size();
    } else {
      tally.failures_by_status[response.status == 200 ? 0 : response.status] += 1;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"querybench: times GET /api/traces/<id> for random recorded trace IDs"};
  QueryOptions options;
  app.add_option("--url", options.url, "server's HTTP address")->capture_default_str();
  app.add_option("--ids", options.ids_path, "file of hex trace IDs, one per line")->required();
  app.add_option("--queries", options.queries, "lookups to time")->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--concurrency", options.concurrency, "connections querying at once")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--warmup", options.warmup, "untimed lookups per connection first")
      ->capture_default_str();
  app.add_option("--path", options.path_template, "request path; {id} is replaced")
      ->capture_default_str();
  app.add_option("--tenant", options.tenant, "sent as X-Scope-OrgID");
  app.add_option("--accept", options.accept, "Accept header, e.g. application/protobuf");
  app.add_option("--seed", options.seed, "seed for picking IDs")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string host, prefix;
  int port = 0;
  if (!tracery::bench::ParseHttpUrl(options.url, host, port, prefix)) {
    fmt::print(stderr, "querybench: --url must look like http://host:port, got {}\n", options.url);
    return 1;
  }
  const std::vector<std::string> ids = ReadTraceIds(options.ids_path);
  if (ids.empty()) {
    fmt::print(stderr, "querybench: no trace IDs in {}\n", options.ids_path);
    return 1;
  }

  std::atomic<int> queries_left = options.queries;
  std::vector<WorkerTally> tallies(options.concurrency);
  std::vector<std::thread> workers;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < options.concurrency; ++i) {
    workers.emplace_back([&, i] {
      RunWorker(options, host, port, prefix, ids, queries_left, options.warmup,
                options.seed * 1000003 + i, tallies[i]);
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  WorkerTally total;
  for (WorkerTally& tally : tallies) {
    total.ok_latencies_ns.insert(total.ok_latencies_ns.end(), tally.ok_latencies_ns.begin(),
                                 tally.ok_latencies_ns.end());
    for (const auto& [status, count] : tally.failures_by_status) {
      total.failures_by_status[status] += count;
    }
    total.transport_errors += tally.transport_errors;
    if (total.first_transport_error.empty()) total.first_transport_error = tally.first_transport_error;
    total.response_bytes += tally.response_bytes;
  }
  const size_t ok = total.ok_latencies_ns.size();
  const tracery::bench::LatencySummary latency = tracery::bench::Summarize(total.ok_latencies_ns);

  fmt::print("querybench summary ({} IDs in file, concurrency {})\n", ids.size(),
             options.concurrency);
  fmt::print("  queries                  {}\n", options.queries);
  fmt::print("  ok                       {}\n", ok);
  for (const auto& [status, count] : total.failures_by_status) {
    fmt::print("  {:<24} {}\n", status == 0 ? std::string("status_200_empty_body")
                                            : fmt::format("status_{}", status), count);
  }
  if (total.transport_errors > 0) {
    fmt::print("  transport_errors         {}  (first: {})\n", total.transport_errors,
               total.first_transport_error);
  }
  fmt::print("  queries_per_second       {:.1f}\n", options.queries / seconds);
  fmt::print("  latency_p50_ms           {:.3f}\n", latency.p50_ms);
  fmt::print("  latency_p90_ms           {:.3f}\n", latency.p90_ms);
  fmt::print("  latency_p99_ms           {:.3f}\n", latency.p99_ms);
  fmt::print("  latency_max_ms           {:.3f}\n", latency.max_ms);
  fmt::print("  latency_mean_ms          {:.3f}\n", latency.mean_ms);
  fmt::print("  response_bytes_mean      {:.0f}\n", ok ? double(total.response_bytes) / ok : 0.0);
  return ok > 0 ? 0 : 2;
}
