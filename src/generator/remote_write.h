// Prometheus remote write (protocol 0.1.0): snappy-compressed protobuf WriteRequests POSTed by
// one sender thread, retried with backoff on network errors, 5xx and 429, dropped and counted
// on other 4xx or when the queue is full. Enqueue never blocks the caller.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "generator/registry.h"

namespace tracery::generator {

struct RemoteWriteTarget;

// Appends one remote-write TimeSeries (labels sorted by name) to an encoded WriteRequest.
struct SampleOut {
  double value;
  int64_t timestamp_ms;
};
void AppendTimeSeries(std::string& write_request, Labels labels, const std::vector<SampleOut>& samples,
                      const std::vector<std::pair<const Exemplar*, Labels>>& exemplars);

class RemoteWriter {
 public:
  RemoteWriter(std::vector<RemoteWriteTarget> targets, MetricsRegistry& metrics);
  ~RemoteWriter();
  // Queues an uncompressed WriteRequest for target `target` (with `samples` samples).
  void Enqueue(size_t target, std::string tenant, std::string write_request, uint64_t samples, uint64_t exemplars);
  void Stop();  // sends what is queued (bounded by each request's timeout), then stops
  size_t target_count() const { return targets_.size(); }
  bool sends_exemplars(size_t target) const;

 private:
  struct Item {
    size_t target;
    std::string tenant, body;  // body: snappy-compressed
    uint64_t samples, exemplars;
  };
  void Loop();
  // 0: sent; otherwise the HTTP status or -1 for a network error.
  long Post(const Item& item, std::string& error);

  std::vector<RemoteWriteTarget> targets_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
  Counter &requests_ok_, &requests_failed_, &requests_retried_, &samples_sent_, &exemplars_sent_, &samples_dropped_;
};

}  // namespace tracery::generator
