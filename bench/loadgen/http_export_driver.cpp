#include "loadgen/http_export_driver.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include <curl/curl.h>

namespace tracery::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxAttempts = 20;  // as the gRPC path: 429 and 503 are sent again
constexpr size_t kKeptErrorBytes = 200;

uint64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SharedProgress {
  std::atomic<uint64_t> next_group{0};
  std::atomic<uint64_t> traces_started{0};
  std::atomic<uint64_t> spans_scheduled{0};
  std::atomic<uint64_t> spans_acknowledged{0};
  std::atomic<int> workers_running{0};
  Clock::time_point start;
  Clock::time_point deadline = Clock::time_point::max();
};

// The trace IDs one replay of a group got, and whether all its bodies were acknowledged.
struct GroupSend {
  std::vector<TraceId> trace_ids;
  size_t bodies_outstanding = 0;
  bool any_failed = false;
};

// One request slot: an easy handle (its connection stays open between requests), the body
// buffer it sends from, and the send it belongs to.
struct Slot {
  CURL* handle = nullptr;
  std::string body;
  std::string response;  // the start of an error answer, for the report
  std::shared_ptr<GroupSend> group;
  size_t span_count = 0;
  int attempt = 1;
};

size_t KeepResponseStart(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (response->size() < kKeptErrorBytes) {
    response->append(data, std::min(bytes, kKeptErrorBytes - response->size()));
  }
  return bytes;
}

class HttpWorker {
 public:
  HttpWorker(const std::vector<HttpRequestGroup>& pool, HttpFormat format,
             const LoadOptions& options, const std::string& url, curl_slist* headers,
             SharedProgress& shared, LoadResult& result)
      : pool_(pool), format_(format), options_(options), url_(url), headers_(headers),
        shared_(shared), result_(result), ids_(options.id_salt), multi_(curl_multi_init()) {}

  ~HttpWorker() {
    for (Slot& slot : slots_) {
      curl_multi_remove_handle(multi_, slot.handle);
      curl_easy_cleanup(slot.handle);
    }
    curl_multi_cleanup(multi_);
  }

  void Run(int in_flight_target) {
    slots_.resize(in_flight_target);
    int running_slots = 0;
    for (Slot& slot : slots_) {
      slot.handle = curl_easy_init();
      curl_easy_setopt(slot.handle, CURLOPT_URL, url_.c_str());
      curl_easy_setopt(slot.handle, CURLOPT_POST, 1L);
      curl_easy_setopt(slot.handle, CURLOPT_HTTPHEADER, headers_);
      curl_easy_setopt(slot.handle, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(slot.handle, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(slot.handle, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(options_.timeout_seconds * 1000));
      curl_easy_setopt(slot.handle, CURLOPT_WRITEFUNCTION, KeepResponseStart);
      curl_easy_setopt(slot.handle, CURLOPT_WRITEDATA, &slot.response);
      curl_easy_setopt(slot.handle, CURLOPT_PRIVATE, &slot);
      if (StartNext(slot)) ++running_slots;
    }
    while (running_slots > 0) {
      int still_running = 0;
      curl_multi_perform(multi_, &still_running);
      int queued = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        Slot* slot = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &slot);
        const CURLcode transfer = message->data.result;
        curl_multi_remove_handle(multi_, slot->handle);
        if (Finish(*slot, transfer)) continue;  // sent again
        if (!StartNext(*slot)) --running_slots;
      }
      if (running_slots > 0) curl_multi_poll(multi_, nullptr, 0, 100, nullptr);
    }
  }

 private:
  // The next body of the group being sent, or the first body of a new replay of the pool.
  bool StartNext(Slot& slot) {
    if (!current_ || next_body_ == pool_[current_index_].bodies.size()) {
      if (Clock::now() >= shared_.deadline) return false;
      const size_t index = shared_.next_group.fetch_add(1) % pool_.size();
      const HttpRequestGroup& group = pool_[index];
      const uint64_t first_trace = shared_.traces_started.fetch_add(group.trace_count);
      if (options_.max_traces > 0 && first_trace >= options_.max_traces) return false;
      current_index_ = index;
      current_ = std::make_shared<GroupSend>();
      current_->bodies_outstanding = group.bodies.size();
      for (size_t i = 0; i < group.trace_count; ++i) {
        current_->trace_ids.push_back(ids_.Next(first_trace + i));
      }
      next_body_ = 0;
      result_.traces_sent += group.trace_count;
    }
    const HttpRequestGroup& group = pool_[current_index_];
    const HttpBody& body = group.bodies[next_body_++];
    if (options_.spans_per_second > 0) {
      // A fixed schedule, as RunLoad keeps it: a body is due once the spans before it were.
      const uint64_t spans_before = shared_.spans_scheduled.fetch_add(body.span_count);
      std::this_thread::sleep_until(
          shared_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                              double(spans_before) / options_.spans_per_second)));
    }
    slot.body.resize(body.encoded.size());
    PatchHttpBody(format_, body, current_->trace_ids, UnixNowNs() - group.generated_at_unix_ns,
                  slot.body.data());
    slot.group = current_;
    slot.span_count = body.span_count;
    slot.attempt = 1;
    result_.spans_sent += body.span_count;
    result_.request_bytes_sent += body.encoded.size();
    Send(slot);
    return true;
  }

  void Send(Slot& slot) {
    slot.response.clear();
    curl_easy_setopt(slot.handle, CURLOPT_POSTFIELDS, slot.body.data());
    curl_easy_setopt(slot.handle, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(slot.body.size()));
    curl_multi_add_handle(multi_, slot.handle);
  }

  // Counts a finished request; true when it was sent again instead (overload answers).
  bool Finish(Slot& slot, CURLcode transfer) {
    long status = 0;
    if (transfer == CURLE_OK) curl_easy_getinfo(slot.handle, CURLINFO_RESPONSE_CODE, &status);
    if ((status == 429 || status == 503) && slot.attempt < kMaxAttempts) {
      result_.retries += 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * slot.attempt));
      slot.attempt += 1;
      Send(slot);
      return true;
    }
    GroupSend& group = *slot.group;
    if (transfer == CURLE_OK && status >= 200 && status < 300) {
      result_.requests_ok += 1;
      result_.spans_acknowledged += slot.span_count;
      result_.request_bytes_acknowledged += slot.body.size();
      shared_.spans_acknowledged.fetch_add(slot.span_count, std::memory_order_relaxed);
    } else {
      const int code = transfer == CURLE_OK ? static_cast<int>(status) : -static_cast<int>(transfer);
      if (result_.requests_failed_by_code[code]++ == 0) {
        result_.first_error_by_code[code] =
            transfer == CURLE_OK ? slot.response : curl_easy_strerror(transfer);
      }
      group.any_failed = true;
    }
    if (--group.bodies_outstanding == 0 && !group.any_failed) {
      result_.traces_acknowledged += group.trace_ids.size();
      if (options_.keep_acknowledged_ids) {
        result_.acknowledged_trace_ids.insert(result_.acknowledged_trace_ids.end(),
                                              group.trace_ids.begin(), group.trace_ids.end());
      }
    }
    slot.group.reset();
    return false;
  }

  const std::vector<HttpRequestGroup>& pool_;
  HttpFormat format_;
  const LoadOptions& options_;
  const std::string& url_;
  curl_slist* headers_;
  SharedProgress& shared_;
  LoadResult& result_;
  TraceIdSequence ids_;
  CURLM* multi_;
  std::vector<Slot> slots_;  // sized once: handles point at their slot
  std::shared_ptr<GroupSend> current_;
  size_t current_index_ = 0;
  size_t next_body_ = 0;
};

}  // namespace

bool RunHttpLoad(const std::vector<HttpRequestGroup>& pool, HttpFormat format,
                 const LoadOptions& options, LoadResult& result, std::string& error) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    error = "libcurl failed to initialise";
    return false;
  }
  const bool zipkin = format == HttpFormat::kZipkinJson;
  const std::string base = options.endpoint.starts_with("http") ? options.endpoint
                                                                : "http://" + options.endpoint;
  const std::string url = base + (zipkin ? "/api/v2/spans" : "/api/traces");
  curl_slist* headers = nullptr;
  headers = curl_slist_append(
      headers, zipkin ? "Content-Type: application/json" : "Content-Type: application/x-thrift");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  if (!options.tenant.empty()) {
    headers = curl_slist_append(headers, ("X-Scope-OrgID: " + options.tenant).c_str());
  }

  SharedProgress shared;
  const Clock::time_point start = Clock::now();
  shared.start = start;
  if (options.duration_seconds > 0) {
    shared.deadline = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(options.duration_seconds));
  }
  const int workers = std::max(1, options.connections);
  const int concurrency = std::max(options.concurrency, workers);
  std::vector<LoadResult> parts(workers);
  std::vector<std::thread> threads;
  shared.workers_running = workers;
  for (int i = 0; i < workers; ++i) {
    const int in_flight = concurrency / workers + (i < concurrency % workers ? 1 : 0);
    threads.emplace_back([&, i, in_flight] {
      HttpWorker(pool, format, options, url, headers, shared, parts[i]).Run(in_flight);
      shared.workers_running.fetch_sub(1);
    });
  }
  uint64_t last_spans = 0;
  Clock::time_point last_report = start;
  while (shared.workers_running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const Clock::time_point now = Clock::now();
    if (now - last_report < std::chrono::seconds(5)) continue;
    const uint64_t spans = shared.spans_acknowledged.load(std::memory_order_relaxed);
    std::fprintf(stderr, "loadgen: %6.1f s  %12llu spans acknowledged  %10.0f spans/s\n",
                 std::chrono::duration<double>(now - start).count(),
                 static_cast<unsigned long long>(spans),
                 (spans - last_spans) / std::chrono::duration<double>(now - last_report).count());
    last_spans = spans;
    last_report = now;
  }
  for (std::thread& thread : threads) thread.join();
  result.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const LoadResult& part : parts) MergeLoadResult(part, result);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return true;
}

}  // namespace tracery::bench
