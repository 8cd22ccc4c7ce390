#include "loadgen/export_driver.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::bench {
namespace {

using Clock = std::chrono::steady_clock;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

uint64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// State every connection thread reads or bumps; the main thread reads it for progress.
struct SharedProgress {
  std::atomic<uint64_t> next_request{0};
  std::atomic<uint64_t> traces_started{0};
  std::atomic<uint64_t> spans_acknowledged{0};
  std::atomic<int> connections_running{0};
  std::atomic<uint64_t> spans_scheduled{0};  // with a fixed rate: spans whose send time was given
  Clock::time_point start;
  Clock::time_point deadline = Clock::time_point::max();
};

// One request in flight. ClientContext cannot be reused, so each send gets a new Call.
struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  std::vector<TraceId> trace_ids;
  size_t span_count = 0;
  size_t request_bytes = 0;
  grpc::ByteBuffer request;  // kept so that a refused request can be sent again
  int attempt = 1;
};

// Like an OpenTelemetry exporter, a request the server refuses for now (overload) is sent
// again after a backoff instead of being counted as lost.
constexpr int kMaxAttempts = 20;
bool IsRetryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         status.error_code() == grpc::StatusCode::UNAVAILABLE;
}

class ConnectionWorker {
 public:
  ConnectionWorker(const std::vector<RequestTemplate>& pool, const LoadOptions& options,
                   std::shared_ptr<grpc::Channel> channel, SharedProgress& shared,
                   LoadResult& result)
      : pool_(pool), options_(options), stub_(std::move(channel)), shared_(shared),
        result_(result), ids_(options.id_salt) {}

  void Run(int in_flight_target) {
    int in_flight = 0;
    for (int i = 0; i < in_flight_target && StartCall(); ++i) ++in_flight;
    while (in_flight > 0) {
      void* tag = nullptr;
      bool ok = false;
      if (!queue_.Next(&tag, &ok)) break;
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      --in_flight;
      if (!call->status.ok() && IsRetryable(call->status) && call->attempt < kMaxAttempts) {
        result_.retries += 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(20 * call->attempt));
        Resend(std::move(call));
        ++in_flight;
        continue;
      }
      Record(*call);
      if (StartCall()) ++in_flight;
    }
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  }

 private:
  bool StartCall() {
    if (Clock::now() >= shared_.deadline) return false;
    const uint64_t request_number = shared_.next_request.fetch_add(1);
    const RequestTemplate& request = pool_[request_number % pool_.size()];
    const uint64_t trace_count = request.trace_id_offsets.size();
    const uint64_t first_trace_number = shared_.traces_started.fetch_add(trace_count);
    if (options_.max_traces > 0 && first_trace_number >= options_.max_traces) return false;
    if (options_.spans_per_second > 0) {
      // A fixed schedule: the request's first span is due once the spans before it were due.
      // Waiting here delays this connection's other completions, which only matters when the
      // server is slower than the rate, and then the rate was not reachable anyway.
      const uint64_t spans_before = shared_.spans_scheduled.fetch_add(request.span_count);
      const auto due = shared_.start + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(double(spans_before) / options_.spans_per_second));
      if (due >= shared_.deadline) return false;
      std::this_thread::sleep_until(due);
    }

    auto call = std::make_unique<Call>();
    grpc::Slice slice(request.encoded.size());
    // The slice was just allocated for us alone; writing through begin() is how it is filled.
    auto* bytes = const_cast<uint8_t*>(slice.begin());
    PatchRequest(request, ids_, first_trace_number, UnixNowNs() - request.generated_at_unix_ns,
                 bytes, call->trace_ids);
    call->request = grpc::ByteBuffer(&slice, 1);
    call->span_count = request.span_count;
    call->request_bytes = request.encoded.size();
    Call* raw = Send(std::move(call));

    result_.spans_sent += raw->span_count;
    result_.traces_sent += raw->trace_ids.size();
    result_.request_bytes_sent += raw->request_bytes;
    return true;
  }

  Call* Send(std::unique_ptr<Call> call) {
    call->context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_seconds * 1000)));
    if (!options_.tenant.empty()) call->context.AddMetadata("x-scope-orgid", options_.tenant);
    call->reader = stub_.PrepareUnaryCall(&call->context, kExportMethod, call->request, &queue_);
    call->reader->StartCall();
    Call* raw = call.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
    return raw;
  }

  // A ClientContext is single-use: the retry gets a fresh Call with the same payload.
  void Resend(std::unique_ptr<Call> previous) {
    auto call = std::make_unique<Call>();
    call->request = previous->request;
    call->trace_ids = std::move(previous->trace_ids);
    call->span_count = previous->span_count;
    call->request_bytes = previous->request_bytes;
    call->attempt = previous->attempt + 1;
    Send(std::move(call));
  }

  void Record(Call& call) {
    if (!call.status.ok()) {
      const int code = call.status.error_code();
      if (result_.requests_failed_by_code[code]++ == 0) {
        result_.first_error_by_code[code] = call.status.error_message();
      }
      return;
    }
    ExportTraceServiceResponse response;
    uint64_t rejected = 0;
    if (grpc::SerializationTraits<ExportTraceServiceResponse>::Deserialize(&call.response,
                                                                          &response)
            .ok()) {
      rejected = std::min<uint64_t>(response.partial_success().rejected_spans(), call.span_count);
    }
    result_.requests_ok += 1;
    result_.spans_rejected += rejected;
    result_.spans_acknowledged += call.span_count - rejected;
    shared_.spans_acknowledged.fetch_add(call.span_count - rejected, std::memory_order_relaxed);
    // With a partial rejection we cannot tell which traces were kept, so none is recorded.
    if (rejected == 0) {
      result_.traces_acknowledged += call.trace_ids.size();
      result_.request_bytes_acknowledged += call.request_bytes;
      if (options_.keep_acknowledged_ids) {
        result_.acknowledged_trace_ids.insert(result_.acknowledged_trace_ids.end(),
                                              call.trace_ids.begin(), call.trace_ids.end());
      }
    }
  }

  const std::vector<RequestTemplate>& pool_;
  const LoadOptions& options_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue queue_;
  SharedProgress& shared_;
  LoadResult& result_;
  TraceIdSequence ids_;
};

bool ReadFile(const std::string& path, std::string& contents, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  contents = buffer.str();
  return true;
}

bool ChannelCredentials(const LoadOptions& options,
                        std::shared_ptr<grpc::ChannelCredentials>& credentials, std::string& error) {
  if (options.tls_ca_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
    return true;
  }
  grpc::SslCredentialsOptions ssl;
  if (!ReadFile(options.tls_ca_file, ssl.pem_root_certs, error)) return false;
  if (!options.tls_cert_file.empty() &&
      (!ReadFile(options.tls_cert_file, ssl.pem_cert_chain, error) ||
       !ReadFile(options.tls_key_file, ssl.pem_private_key, error))) {
    return false;
  }
  credentials = grpc::SslCredentials(ssl);
  return true;
}

std::shared_ptr<grpc::Channel> Connect(const std::string& endpoint,
                                       const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments arguments;
  // A private subchannel pool gives each channel its own TCP connection.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(endpoint, credentials, arguments);
}

}  // namespace

void MergeLoadResult(const LoadResult& part, LoadResult& total) {
  total.requests_ok += part.requests_ok;
  for (const auto& [code, count] : part.requests_failed_by_code) {
    total.requests_failed_by_code[code] += count;
  }
  for (const auto& [code, message] : part.first_error_by_code) {
    total.first_error_by_code.try_emplace(code, message);
  }
  total.spans_sent += part.spans_sent;
  total.spans_acknowledged += part.spans_acknowledged;
  total.spans_rejected += part.spans_rejected;
  total.retries += part.retries;
  total.traces_sent += part.traces_sent;
  total.traces_acknowledged += part.traces_acknowledged;
  total.request_bytes_sent += part.request_bytes_sent;
  total.request_bytes_acknowledged += part.request_bytes_acknowledged;
  total.acknowledged_trace_ids.insert(total.acknowledged_trace_ids.end(),
                                      part.acknowledged_trace_ids.begin(),
                                      part.acknowledged_trace_ids.end());
}

bool RunLoad(const std::vector<RequestTemplate>& pool, const LoadOptions& options,
             LoadResult& result, std::string& error) {
  const int connections = std::max(1, options.connections);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!ChannelCredentials(options, credentials, error)) return false;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < connections; ++i) {
    channels.push_back(Connect(options.endpoint, credentials));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10))) {
      error = "cannot connect to " + options.endpoint + " within 10 s";
      return false;
    }
  }

  SharedProgress shared;
  const Clock::time_point start = Clock::now();
  shared.start = start;
  if (options.duration_seconds > 0) {
    shared.deadline = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(options.duration_seconds));
  }
  std::vector<LoadResult> parts(connections);
  std::vector<std::thread> threads;
  shared.connections_running = connections;
  const int concurrency = std::max(options.concurrency, connections);
  for (int i = 0; i < connections; ++i) {
    const int in_flight = concurrency / connections + (i < concurrency % connections ? 1 : 0);
    threads.emplace_back([&, i, in_flight] {
      ConnectionWorker(pool, options, channels[i], shared, parts[i]).Run(in_flight);
      shared.connections_running.fetch_sub(1);
    });
  }

  // Progress on stderr every five seconds, so a stalled server is visible while it stalls.
  uint64_t last_spans = 0;
  Clock::time_point last_report = start;
  while (shared.connections_running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const Clock::time_point now = Clock::now();
    if (now - last_report < std::chrono::seconds(5)) continue;
    const uint64_t spans = shared.spans_acknowledged.load(std::memory_order_relaxed);
    const double interval = std::chrono::duration<double>(now - last_report).count();
    std::fprintf(stderr, "loadgen: %6.1f s  %12llu spans acknowledged  %10.0f spans/s\n",
                 std::chrono::duration<double>(now - start).count(),
                 static_cast<unsigned long long>(spans), (spans - last_spans) / interval);
    last_spans = spans;
    last_report = now;
  }
  for (std::thread& thread : threads) thread.join();
  result.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const LoadResult& part : parts) MergeLoadResult(part, result);
  return true;
}

}  // namespace tracery::bench
