// An OTLP trace exporter: sends encoded ExportTraceServiceRequest bodies to another backend
// over OTLP/gRPC or OTLP/HTTP (protobuf), with the OpenTelemetry Collector's `otlp` and
// `otlphttp` exporter options and retry rules. The request bytes go out as they are (no
// decoding, no re-encoding).
//
// Export blocks until the body is acknowledged, refused for good, or retrying ran out of
// time. There is no queue in here: in a gateway the ingester's WAL holds what waits, and
// Deliver is simply called again later (docs/gateway.md, "sending_queue").
//
//   auto exporter = OtlpExporter::Create(options, metrics);
//   Status s = (*exporter)->Export(tenant, request_bytes);
//   if (IsRetryableExportError(s)) ... keep the spans, try again later
//   else if (!s.ok()) ... the receiver refused them: drop and count
//
// Thread-safe: any number of threads may call Export at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace tracery::exporter {

enum class Protocol { kGrpc, kHttp };
enum class Compression { kNone, kGzip };

// The Collector's client `tls` block.
struct ClientTlsOptions {
  // gRPC only: plaintext instead of TLS (an `http://` endpoint means the same). OTLP/HTTP
  // takes TLS from the URL's scheme, as the Collector's otlphttp does.
  bool insecure = false;
  bool insecure_skip_verify = false;  // TLS without checking the server's certificate
  std::string ca_file;                // PEM roots for the server; empty: the system's
  std::string cert_file, key_file;    // client certificate (mutual TLS)
  std::string server_name_override;   // gRPC: name checked in the server's certificate
};

// The Collector's `retry_on_failure`: exponential backoff from initial_interval, times
// multiplier per retry, capped at max_interval, each wait randomised by ±randomization_factor
// and never shorter than the server's own hint (RetryInfo, Retry-After). Retrying stops once
// the next wait would end past max_elapsed_time after the first attempt (0: never stops).
struct RetryOptions {
  bool enabled = true;
  std::chrono::nanoseconds initial_interval = std::chrono::seconds(5);
  std::chrono::nanoseconds max_interval = std::chrono::seconds(30);
  std::chrono::nanoseconds max_elapsed_time = std::chrono::seconds(300);
  double multiplier = 1.5;
  double randomization_factor = 0.5;
};

struct ExporterOptions {
  std::string name = "otlp";  // the component ID ("otlp/tempo"): metric label and messages
  Protocol protocol = Protocol::kGrpc;
  // gRPC: host:port, optionally behind http:// (plaintext) or https:// (TLS).
  // HTTP: the base URL; traces go to endpoint + "/v1/traces".
  std::string endpoint;
  std::string traces_endpoint;  // HTTP only: the full URL, instead of endpoint + /v1/traces
  ClientTlsOptions tls;
  // Sent with every request (HTTP headers; gRPC metadata, names lowercased).
  std::vector<std::pair<std::string, std::string>> headers;
  Compression compression = Compression::kGzip;
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);  // per attempt
  RetryOptions retry;
};

// True for the errors Export returns when the spans should be offered again later
// (StatusCode::kUnavailable); every other error means the receiving end refused them.
inline bool IsRetryableExportError(const Status& status) { return status.code() == StatusCode::kUnavailable; }

namespace detail {
class Transport;
}

class OtlpExporter {
 public:
  // Fails (InvalidArgument, naming options.name) on a bad endpoint or an unreadable TLS file.
  static Result<std::unique_ptr<OtlpExporter>> Create(ExporterOptions options, MetricsRegistry& metrics);
  ~OtlpExporter();

  // Sends one encoded ExportTraceServiceRequest (or TracesData: the same bytes). `tenant` goes
  // out as X-Scope-OrgID unless it is kSingleTenant. Returns OK once accepted (a partial
  // success is logged and counted, not retried); Unavailable when retrying ran out of time or
  // the exporter is shutting down; another code (InvalidArgument, Unauthenticated, TooLarge...)
  // when the server refused the data for good.
  Status Export(const std::string& tenant, std::string_view encoded_export_trace_service_request);

  // Ends the waits between retries: Exports in progress return Unavailable after their
  // current attempt, later ones after their first.
  void Shutdown();

  const ExporterOptions& options() const { return options_; }

 private:
  OtlpExporter(ExporterOptions options, std::unique_ptr<detail::Transport> transport, MetricsRegistry& metrics);
  // Sleeps `wait` unless Shutdown comes first; false then.
  bool WaitBeforeRetry(std::chrono::nanoseconds wait);
  std::chrono::nanoseconds Jitter(std::chrono::nanoseconds interval);

  const ExporterOptions options_;
  std::unique_ptr<detail::Transport> transport_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool shutting_down_ = false;
  uint64_t jitter_state_;  // guarded by mutex_
  Counter &requests_sent_, &requests_failed_, &requests_retried_, &spans_sent_, &spans_failed_, &spans_rejected_;
};

// Spans in an encoded TracesData / ExportTraceServiceRequest (counted by walking its fields;
// malformed bytes count what could be read).
uint64_t CountSpans(std::string_view encoded_traces_data);

}  // namespace tracery::exporter
