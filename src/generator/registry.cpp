#include "generator/registry.h"

#include <algorithm>

namespace tracery::generator {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string Registry::Key(const std::vector<std::string>& values) {
  size_t size = 0;
  for (const auto& v : values) size += v.size() + 1;
  std::string key;
  key.reserve(size);
  for (const auto& v : values) {
    key += v;
    key += '\xff';
  }
  return key;
}

size_t Registry::AddCounter(std::string name, std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  families_.push_back(Family{std::move(name), false, std::move(label_names), {}, {}});
  return families_.size() - 1;
}

size_t Registry::AddHistogram(std::string name, std::vector<std::string> label_names, std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  std::sort(bounds.begin(), bounds.end());
  families_.push_back(Family{std::move(name), true, std::move(label_names), std::move(bounds), {}});
  return families_.size() - 1;
}

Series* Registry::Batch::Find(size_t family_index, const std::string& key, const std::vector<std::string>& label_values) {
  Family& family = registry_.families_[family_index];
  auto it = family.series.find(key);
  if (it == family.series.end()) {
    const uint64_t max = registry_.max_active_series_.load(std::memory_order_relaxed);
    if (max > 0 && registry_.active_series_ >= max) {
      registry_.dropped_series_++;
      return nullptr;
    }
    Series series;
    series.label_values = label_values;
    if (family.histogram) {
      series.bucket_counts.assign(family.bounds.size() + 1, 0);
      series.exemplars.assign(family.bounds.size() + 1, Exemplar());
    }
    it = family.series.emplace(key, std::move(series)).first;
    registry_.active_series_++;
  }
  it->second.updated = now_;
  return &it->second;
}

void Registry::Batch::Add(size_t family, const std::string& key, const std::vector<std::string>& label_values,
                          double delta) {
  if (Series* series = Find(family, key, label_values)) series->value += delta;
}

void Registry::Batch::Observe(size_t family_index, const std::string& key, const std::vector<std::string>& label_values,
                              double value, std::string_view trace_id, std::string_view span_id) {
  Series* series = Find(family_index, key, label_values);
  if (!series) return;
  const auto& bounds = registry_.families_[family_index].bounds;
  size_t bucket = size_t(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  series->bucket_counts[bucket]++;
  series->sum += value;
  series->count++;
  if (!trace_id.empty()) SetExemplar(*series, bucket, trace_id, span_id, value);
}

void Registry::Batch::SetExemplar(Series& series, size_t bucket, std::string_view trace_id, std::string_view span_id,
                                  double value) {
  if (now_ms_ == 0) now_ms_ = NowMs();
  Exemplar& exemplar = series.exemplars[bucket];
  exemplar.trace_id.assign(trace_id);  // within the string's inline capacity: no allocation
  exemplar.span_id.assign(span_id);
  exemplar.value = value;
  exemplar.timestamp_ms = now_ms_;
  exemplar.sent = false;
}

void Registry::Collect(const std::function<void(Family&)>& visit) {
  std::lock_guard lock(mutex_);
  auto stale_before = std::chrono::steady_clock::now() - stale_duration_;
  for (auto& family : families_) {
    for (auto it = family.series.begin(); it != family.series.end();) {
      if (it->second.updated < stale_before) {
        it = family.series.erase(it);
        active_series_--;
        generation_++;
      } else {
        ++it;
      }
    }
    visit(family);
  }
}

uint64_t Registry::active_series() const {
  std::lock_guard lock(mutex_);
  return active_series_;
}

uint64_t Registry::dropped_series() const {
  std::lock_guard lock(mutex_);
  return dropped_series_;
}

}  // namespace tracery::generator
