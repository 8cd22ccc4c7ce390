#include "common/metrics.h"

#include <charconv>
#include <cmath>

namespace tracery {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(uint64_t(std::llround(std::max(0.0, v) * 1e6)), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::Snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const {
  cumulative.assign(bounds_.size() + 1, 0);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    cumulative[i] = running;
  }
  sum = double(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  count = running;
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') { out += "\\n"; continue; }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

MetricsRegistry::Family& MetricsRegistry::GetFamily(const std::string& name, const std::string& type,
                                                    const std::string& help) {
  Family& family = families_[name];
  if (family.type.empty()) {
    family.type = type;
    family.help = help;
  }
  return family;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = GetFamily(name, "counter", help).counters[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = GetFamily(name, "gauge", help).gauges[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = GetFamily(name, "histogram", help).histograms[FormatLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void MetricsRegistry::AddCallbackGauge(const std::string& name, const std::string& help, std::function<double()> read,
                                       const Labels& labels) {
  std::lock_guard lock(mutex_);
  GetFamily(name, "gauge", help).callbacks[FormatLabels(labels)] = std::move(read);
}

static std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  return std::string(buf, end);
}

// Inserts `le` into a rendered label set.
static std::string WithLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}

std::string MetricsRegistry::Render(bool openmetrics) const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    std::string family_name = name;
    if (openmetrics && family.type == "counter" && family_name.ends_with("_total")) family_name.resize(family_name.size() - 6);
    out += "# HELP " + family_name + " " + family.help + "\n# TYPE " + family_name + " " + family.type + "\n";
    for (const auto& [labels, counter] : family.counters) out += name + labels + " " + std::to_string(counter->Value()) + "\n";
    for (const auto& [labels, gauge] : family.gauges) out += name + labels + " " + std::to_string(gauge->Value()) + "\n";
    for (const auto& [labels, read] : family.callbacks) out += name + labels + " " + FormatNumber(read()) + "\n";
    for (const auto& [labels, histogram] : family.histograms) {
      std::vector<uint64_t> cumulative;
      double sum;
      uint64_t count;
      histogram->Snapshot(cumulative, sum, count);
      for (size_t i = 0; i < histogram->bounds().size(); ++i)
        out += name + "_bucket" + WithLe(labels, FormatNumber(histogram->bounds()[i])) + " " + std::to_string(cumulative[i]) + "\n";
      out += name + "_bucket" + WithLe(labels, "+Inf") + " " + std::to_string(count) + "\n";
      out += name + "_sum" + labels + " " + FormatNumber(sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(count) + "\n";
    }
  }
  return out;
}

}  // namespace tracery
