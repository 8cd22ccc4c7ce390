// The generator's series registry, one per tenant: counters and histograms with fixed label
// names per family, a recent exemplar per histogram bucket, a limit on active series, and
// removal of series not updated for the stale duration. Thread-safe (one mutex; callers
// batch updates per request).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tracery::generator {

using Labels = std::vector<std::pair<std::string, std::string>>;  // sorted by name when emitted

struct Exemplar {
  std::string trace_id, span_id;  // raw bytes (16 and 8); hex when written out
  double value = 0;
  int64_t timestamp_ms = 0;
  bool sent = false;  // already remote-written
};

struct Series {
  std::vector<std::string> label_values;
  double value = 0;                        // counters
  std::vector<uint64_t> bucket_counts;     // histograms: per bound, non-cumulative, then +Inf
  double sum = 0;
  uint64_t count = 0;
  std::vector<Exemplar> exemplars;         // histograms: per bucket
  std::chrono::steady_clock::time_point updated;
  bool written = false;                    // has been remote-written at least once
};

struct Family {
  std::string name;  // counters end in _total; histograms get _bucket/_sum/_count
  bool histogram = false;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::unordered_map<std::string, Series> series;  // key: label values joined by \xff
};

class Registry {
 public:
  Registry(uint64_t max_active_series, std::chrono::nanoseconds stale_duration)
      : max_active_series_(max_active_series), stale_duration_(stale_duration) {}
  // A tenant's limit may change (runtime overrides); series over a lowered limit stay until stale.
  void SetMaxActiveSeries(uint64_t max) { max_active_series_.store(max, std::memory_order_relaxed); }

  // Declares a family once; the index is used for updates.
  size_t AddCounter(std::string name, std::vector<std::string> label_names);
  size_t AddHistogram(std::string name, std::vector<std::string> label_names, std::vector<double> bounds);

  // Updates take the registry lock: hold a Batch for a request's worth of updates.
  class Batch {
   public:
    explicit Batch(Registry& registry)
        : registry_(registry), lock_(registry.mutex_), now_(std::chrono::steady_clock::now()) {}
    // `key` is Key(label_values), computed once when several families share a label set.
    void Add(size_t family, const std::string& key, const std::vector<std::string>& label_values, double delta);
    void Observe(size_t family, const std::string& key, const std::vector<std::string>& label_values, double value,
                 std::string_view trace_id = {}, std::string_view span_id = {});
    void Add(size_t family, const std::vector<std::string>& label_values, double delta) {
      Add(family, Key(label_values), label_values, delta);
    }
    void Observe(size_t family, const std::vector<std::string>& label_values, double value,
                 std::string_view trace_id = {}, std::string_view span_id = {}) {
      Observe(family, Key(label_values), label_values, value, trace_id, span_id);
    }

    // The series of `family` with these labels, created if new (nullptr: refused by
    // max_active_series). The pointer stays valid while generation() is unchanged; a caller
    // that keeps it (a cache of label sets) checks that and marks its use with Touch.
    Series* Find(size_t family, const std::string& key, const std::vector<std::string>& label_values);
    uint64_t generation() const { return registry_.generation_; }
    void Touch(Series& series) const { series.updated = now_; }
    // Sets a bucket's exemplar to a raw trace and span ID (16 and 8 bytes).
    void SetExemplar(Series& series, size_t bucket, std::string_view trace_id, std::string_view span_id, double value);

   private:
    Registry& registry_;
    std::lock_guard<std::mutex> lock_;
    std::chrono::steady_clock::time_point now_;
    int64_t now_ms_ = 0;  // exemplar timestamps, read once per batch
  };
  static std::string Key(const std::vector<std::string>& label_values);

  // Removes stale series, then visits every family under the lock.
  void Collect(const std::function<void(Family&)>& visit);
  uint64_t active_series() const;
  uint64_t dropped_series() const;

 private:
  friend class Batch;
  mutable std::mutex mutex_;
  std::vector<Family> families_;
  std::atomic<uint64_t> max_active_series_;
  std::chrono::nanoseconds stale_duration_;
  uint64_t active_series_ = 0;
  uint64_t dropped_series_ = 0;
  uint64_t generation_ = 0;  // bumped whenever a series is removed (pointers to it are gone)
};

}  // namespace tracery::generator
