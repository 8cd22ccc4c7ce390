#include "generator/remote_write.h"

#include <curl/curl.h>
#include <snappy.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/tenant.h"
#include "generator/generator.h"
#include "otlp/wire.h"

namespace tracery::generator {
namespace {

constexpr size_t kMaxQueuedRequests = 1024;  // of at most 2000 series each
constexpr int kMaxAttempts = 6;

// prompb field numbers: WriteRequest{timeseries=1}; TimeSeries{labels=1,samples=2,exemplars=3};
// Label{name=1,value=2}; Sample{value=1 double,timestamp=2 int64}; Exemplar{labels=1,value=2,timestamp=3}.
void PutLabels(std::string& out, const Labels& labels) {
  for (const auto& [name, value] : labels) {
    otlp::PutMessageField(out, 1, [&](std::string& o) {
      otlp::PutBytesField(o, 1, name);
      otlp::PutBytesField(o, 2, value);
    });
  }
}

void PutDouble(std::string& out, uint32_t field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  otlp::PutTag(out, field, otlp::kFixed64);
  PutFixed64(out, bits);
}

size_t WriteSink(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

void AppendTimeSeries(std::string& write_request, Labels labels, const std::vector<SampleOut>& samples,
                      const std::vector<std::pair<const Exemplar*, Labels>>& exemplars) {
  std::sort(labels.begin(), labels.end());
  otlp::PutMessageField(write_request, 1, [&](std::string& ts) {
    PutLabels(ts, labels);
    for (const auto& sample : samples) {
      otlp::PutMessageField(ts, 2, [&](std::string& s) {
        PutDouble(s, 1, sample.value);
        otlp::PutTag(s, 2, otlp::kVarint);
        PutVarint(s, uint64_t(sample.timestamp_ms));
      });
    }
    for (const auto& [exemplar, exemplar_labels] : exemplars) {
      otlp::PutMessageField(ts, 3, [&](std::string& e) {
        PutLabels(e, exemplar_labels);
        PutDouble(e, 2, exemplar->value);
        otlp::PutTag(e, 3, otlp::kVarint);
        PutVarint(e, uint64_t(exemplar->timestamp_ms));
      });
    }
  });
}

RemoteWriter::RemoteWriter(std::vector<RemoteWriteTarget> targets, MetricsRegistry& m)
    : targets_(std::move(targets)),
      requests_ok_(m.GetCounter("tracery_generator_remote_write_requests_total", "Remote-write requests, by result.", {{"result", "success"}})),
      requests_failed_(m.GetCounter("tracery_generator_remote_write_requests_total", "Remote-write requests, by result.", {{"result", "dropped"}})),
      requests_retried_(m.GetCounter("tracery_generator_remote_write_retries_total", "Remote-write attempts that failed and were retried.")),
      samples_sent_(m.GetCounter("tracery_generator_remote_write_samples_total", "Samples delivered by remote write.")),
      exemplars_sent_(m.GetCounter("tracery_generator_remote_write_exemplars_total", "Exemplars delivered by remote write.")),
      samples_dropped_(m.GetCounter("tracery_generator_remote_write_samples_dropped_total",
                                    "Samples given up on: the receiver refused them, kept failing, or the queue was full.")) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  thread_ = std::thread([this] { Loop(); });
}

RemoteWriter::~RemoteWriter() { Stop(); }

bool RemoteWriter::sends_exemplars(size_t target) const { return targets_[target].send_exemplars; }

void RemoteWriter::Enqueue(size_t target, std::string tenant, std::string write_request, uint64_t samples, uint64_t exemplars) {
  std::string compressed;
  snappy::Compress(write_request.data(), write_request.size(), &compressed);
  std::lock_guard lock(mutex_);
  if (queue_.size() >= kMaxQueuedRequests) {
    samples_dropped_.Add(queue_.front().samples);
    requests_failed_.Add();
    queue_.pop_front();
  }
  queue_.push_back({target, std::move(tenant), std::move(compressed), samples, exemplars});
  wake_.notify_one();
}

long RemoteWriter::Post(const Item& item, std::string& error) {
  const RemoteWriteTarget& target = targets_[item.target];
  CURL* curl = curl_easy_init();
  if (!curl) {
    error = "curl init failed";
    return -1;
  }
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");
  headers = curl_slist_append(headers, "Content-Encoding: snappy");
  headers = curl_slist_append(headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
  headers = curl_slist_append(headers, "User-Agent: tracery-metrics-generator");
  if (item.tenant != kSingleTenant) headers = curl_slist_append(headers, ("X-Scope-OrgID: " + item.tenant).c_str());
  for (const auto& [name, value] : target.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, target.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, item.body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(item.body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, long(std::chrono::duration_cast<std::chrono::milliseconds>(target.timeout).count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteSink);
  CURLcode rc = curl_easy_perform(curl);
  long status = -1;
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  else error = curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (status >= 200 && status < 300) return 0;
  if (status > 0) error = "HTTP " + std::to_string(status);
  return status;
}

void RemoteWriter::Loop() {
  for (;;) {
    Item item;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    std::chrono::milliseconds backoff(100);
    for (int attempt = 1;; ++attempt) {
      std::string error;
      long status = Post(item, error);
      if (status == 0) {
        requests_ok_.Add();
        samples_sent_.Add(item.samples);
        exemplars_sent_.Add(item.exemplars);
        break;
      }
      bool retryable = status < 0 || status >= 500 || status == 429;
      bool stopping;
      {
        std::lock_guard lock(mutex_);
        stopping = stopping_;
      }
      if (!retryable || attempt >= kMaxAttempts || stopping) {
        spdlog::warn("generator: remote write to {} dropped {} samples: {}", targets_[item.target].url, item.samples, error);
        requests_failed_.Add();
        samples_dropped_.Add(item.samples);
        break;
      }
      requests_retried_.Add();
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

void RemoteWriter::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tracery::generator
