// OTLP/HTTP protobuf: POST {endpoint}/v1/traces with libcurl, as the Collector's otlphttp
// exporter sends it. Easy handles are kept in a small free list so that connections are
// reused between requests (a handle is used by one thread at a time).
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <mutex>
#include <vector>

#include "exporter/transport.h"

namespace tracery::exporter::detail {
namespace {

constexpr size_t kMaxResponseBytes = 64 << 10;  // enough for any Status message worth logging
constexpr size_t kMaxIdleHandles = 8;

struct Response {
  std::string body;
  std::string retry_after;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<Response*>(user);
  size_t n = size * count;
  if (response->body.size() < kMaxResponseBytes) response->body.append(data, std::min(n, kMaxResponseBytes - response->body.size()));
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<Response*>(user);
  std::string_view line(data, size * count);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i)
      match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    if (match) {
      std::string_view value = line.substr(kName.size());
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
      response->retry_after = std::string(value);
    }
  }
  return size * count;
}

// Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
std::chrono::nanoseconds RetryAfterDelay(const std::string& value) {
  if (value.empty()) return std::chrono::nanoseconds(0);
  if (std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::chrono::seconds(std::stoll(value.substr(0, 9)));
  time_t when = curl_getdate(value.c_str(), nullptr);
  time_t now = time(nullptr);
  return when > now ? std::chrono::seconds(when - now) : std::chrono::nanoseconds(0);
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(ExporterOptions options, std::string url) : options_(std::move(options)), url_(std::move(url)) {
    static std::once_flag curl_once;
    std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  ~HttpTransport() override {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  Attempt Send(const std::string& tenant, std::string_view request) override {
    std::string compressed;
    if (options_.compression == Compression::kGzip) {
      compressed = GzipCompress(request);
      if (!compressed.empty()) request = compressed;
    }
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");
    if (!compressed.empty()) headers = curl_slist_append(headers, "Content-Encoding: gzip");
    headers = curl_slist_append(headers, "User-Agent: tracery-gateway");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    if (!tenant.empty()) headers = curl_slist_append(headers, ("X-Scope-OrgID: " + tenant).c_str());
    for (const auto& [name, value] : options_.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());

    CURL* curl = TakeHandle();
    if (curl == nullptr) {
      curl_slist_free_all(headers);
      Attempt failed;
      failed.retryable = true;
      failed.status = Status::Unavailable("exporter " + options_.name + ": libcurl cannot start a request");
      return failed;
    }
    Response response;
    curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, long(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout).count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
    const ClientTlsOptions& tls = options_.tls;
    if (!tls.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!tls.cert_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.cert_file.c_str());
    if (!tls.key_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.key_file.c_str());
    if (tls.insecure_skip_verify) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    // The handle keeps pointers to this call's headers and buffers: clear them before reuse.
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, nullptr);
    ReturnHandle(curl);

    Attempt attempt;
    const std::string where = "exporter " + options_.name + ": OTLP/HTTP export to " + url_ + " failed: ";
    if (rc != CURLE_OK) {
      // Connection refused, reset, timed out, TLS failed: the Collector retries them all.
      attempt.retryable = true;
      attempt.status = Status::Unavailable(where + curl_easy_strerror(rc));
      return attempt;
    }
    if (code >= 200 && code < 300) {
      ReadPartialSuccess(response.body, attempt);
      return attempt;
    }
    std::string message = where + "HTTP " + std::to_string(code);
    std::string detail = StatusMessage(response.body);
    if (detail.empty() && response.body.find('\0') == std::string::npos) detail = response.body.substr(0, 512);
    if (!detail.empty()) message += ": " + detail;
    attempt.retryable = code == 429 || code == 502 || code == 503 || code == 504;
    if (attempt.retryable) {
      attempt.retry_after = RetryAfterDelay(response.retry_after);
      attempt.status = Status::Unavailable(message);
    } else {
      StatusCode permanent = code == 401 || code == 403 ? StatusCode::kUnauthenticated
                             : code == 404            ? StatusCode::kNotFound
                             : code == 413            ? StatusCode::kTooLarge
                                                      : StatusCode::kInvalidArgument;
      attempt.status = Status(permanent, message);
    }
    return attempt;
  }

 private:
  CURL* TakeHandle() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return curl_easy_init();
  }
  void ReturnHandle(CURL* handle) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleHandles) idle_.push_back(handle);
    else curl_easy_cleanup(handle);
  }

  const ExporterOptions options_;
  const std::string url_;
  std::mutex mutex_;
  std::vector<CURL*> idle_;
};

}  // namespace

Result<std::unique_ptr<Transport>> MakeHttpTransport(const ExporterOptions& options) {
  std::string url = options.traces_endpoint;
  if (url.empty()) {
    url = options.endpoint;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/v1/traces";
  }
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return Status::InvalidArgument("exporter " + options.name + ": endpoint `" + url +
                                   "` must be a URL starting with http:// or https://");
  if (options.tls.cert_file.empty() != options.tls.key_file.empty())
    return Status::InvalidArgument("exporter " + options.name + ": tls.cert_file and tls.key_file go together");
  // Unreadable files are reported at start, not at the first export.
  for (const auto& [path, key] : {std::pair{options.tls.ca_file, "tls.ca_file"}, std::pair{options.tls.cert_file, "tls.cert_file"},
                                  std::pair{options.tls.key_file, "tls.key_file"}}) {
    if (path.empty()) continue;
    auto read = ReadTlsFile(path, options, key);
    if (!read.ok()) return read.status();
  }
  return std::unique_ptr<Transport>(std::make_unique<HttpTransport>(options, std::move(url)));
}

}  // namespace tracery::exporter::detail
