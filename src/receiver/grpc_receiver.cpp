#include <pthread.h>
#include <sys/resource.h>

#include <array>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <spdlog/spdlog.h>

#include "common/grpc_h2_server.h"
#include "common/thread_pool.h"
#include "exporter/peer_router.h"
#include "otlp/wire.h"
#include "receiver/receivers.h"

namespace tracery::receiver {
namespace {

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

GrpcCode GrpcCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return GrpcCode::kOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnsupportedMedia: return GrpcCode::kInvalidArgument;
    case StatusCode::kUnauthenticated: return GrpcCode::kUnauthenticated;
    case StatusCode::kNotFound: return GrpcCode::kNotFound;
    case StatusCode::kTooLarge:
    case StatusCode::kResourceExhausted: return GrpcCode::kResourceExhausted;
    case StatusCode::kUnavailable: return GrpcCode::kUnavailable;
    default: return GrpcCode::kInternal;
  }
}

// OTLP clients retry RESOURCE_EXHAUSTED only when the status carries google.rpc.RetryInfo,
// so overload refusals carry one (in grpc-status-details-bin) with the suggested delay.
//   google.rpc.Status{code=1, message=2, details=3 (google.protobuf.Any{type_url=1, value=2})}
//   google.rpc.RetryInfo{retry_delay=1 (google.protobuf.Duration{seconds=1, nanos=2})}
std::string RetryInfoStatus(GrpcCode code, std::string_view message, std::chrono::seconds retry_after) {
  std::string details;
  otlp::PutVarintIfSet(details, 1, uint64_t(code));
  otlp::PutStringIfSet(details, 2, message);
  otlp::PutMessageField(details, 3, [&](std::string& any) {
    otlp::PutBytesField(any, 1, "type.googleapis.com/google.rpc.RetryInfo");
    otlp::PutMessageField(any, 2, [&](std::string& retry_info) {
      otlp::PutMessageField(retry_info, 1, [&](std::string& duration) {
        otlp::PutVarintIfSet(duration, 1, uint64_t(retry_after.count()));
      });
    });
  });
  return details;
}

GrpcResponse ErrorStatus(const Status& status, std::chrono::seconds retry_after) {
  GrpcCode code = GrpcCodeFor(status);
  if (code != GrpcCode::kResourceExhausted || retry_after.count() <= 0 || status.code() == StatusCode::kTooLarge)
    return GrpcResponse::Error(code, status.message());
  return GrpcResponse::Error(code, status.message(), RetryInfoStatus(code, status.message(), retry_after));
}

// Export with raw request bytes: the generated message classes are never built on this path.
GrpcUnaryHandler MakeExportHandler(distributor::Distributor& distributor) {
  return [&distributor](GrpcRequest&& request, GrpcRespond respond) {
    std::optional<std::string_view> org_id;
    if (const std::string* value = request.FindMetadata("x-scope-orgid")) org_id = *value;
    auto tenant = distributor.ResolveTenant(org_id);
    if (!tenant.ok()) {
      distributor.CountRefused("bad_tenant", request.message.size());
      respond(GrpcResponse::Error(GrpcCodeFor(tenant.status()), tenant.status().message()));
      return;
    }
    // A peer gateway's forward: a look among the few metadata entries, nothing allocated.
    const std::string* forwarded = request.FindMetadata(exporter::kForwardedHeader);
    auto sender = forwarded && *forwarded == exporter::kForwardedValue ? distributor::Sender::kPeerGateway
                                                                      : distributor::Sender::kClient;
    // Push reads the bytes before it returns; the answer may come from the WAL's thread.
    distributor.Push(
        *tenant, request.message, distributor::Encoding::kProtobuf,
        [respond = std::move(respond)](distributor::PushReply reply) {
          if (!reply.status.ok()) return respond(ErrorStatus(reply.status, reply.retry_after));
          respond(GrpcResponse::Ok(EncodeExportResponse(reply.rejected_spans, reply.rejected_reason)));
        },
        sender);
  };
}

}  // namespace

std::string EncodeExportResponse(uint64_t rejected_spans, const std::string& message) {
  std::string out;
  if (rejected_spans == 0 && message.empty()) return out;
  otlp::PutMessageField(out, 1, [&](std::string& o) {
    otlp::PutVarintIfSet(o, 1, rejected_spans);
    otlp::PutStringIfSet(o, 2, message);
  });
  return out;
}

// The receiver's own io threads: two contexts of one thread each (one when the process has
// one CPU: a second would only add switches), connections spread over them. A call costs no
// thread of its own; one thread per context means no lock is shared between them and no
// strand is needed (two threads on one context cost about 10 µs more per one-span request, in
// scheduler lock hand-offs: bench/requests/request_cost.mjs).
struct GrpcReceiver::Impl {
  static constexpr int kThreads = 2;
  std::array<boost::asio::io_context, kThreads> io{boost::asio::io_context(1), boost::asio::io_context(1)};
  std::unique_ptr<GrpcH2Server> server;
  std::vector<std::thread> threads;
};

Result<std::unique_ptr<GrpcReceiver>> GrpcReceiver::Start(const std::string& endpoint, uint64_t max_request_bytes,
                                                          uint64_t max_inflight_bytes, distributor::Distributor& distributor,
                                                          const TlsSettings& tls, std::chrono::milliseconds stall_timeout,
                                                          std::chrono::milliseconds read_timeout) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(endpoint, host, port)) return Status::InvalidArgument("bad OTLP/gRPC endpoint " + endpoint);
  GrpcServerOptions options;
  if (tls.enabled()) {
    auto source = TlsContextSource::Create(tls, "distributor.receivers.otlp.protocols.grpc.tls");
    if (!source.ok()) return source.status();
    options.tls = *source;
    options.tls->OfferHttp2();
  }
  // The limit is the message as sent and, again, as decompressed.
  options.max_message_bytes = max_request_bytes;
  options.receiving_budget = max_inflight_bytes;
  options.stall_timeout = stall_timeout;
  options.message_timeout = read_timeout;
  // A quarter of the descriptor limit, as the smaller HTTP listeners: ingest never takes the
  // descriptors the query API, the WAL and the blocks need.
  rlimit files{};
  uint64_t descriptors = getrlimit(RLIMIT_NOFILE, &files) == 0 ? uint64_t(files.rlim_cur) : 1024;
  options.max_connections = std::max<uint64_t>(16, descriptors / 4);
  options.retry_details = [](GrpcCode code, std::string_view message) {
    return RetryInfoStatus(code, message, std::chrono::seconds(1));
  };
  auto receiver = std::unique_ptr<GrpcReceiver>(new GrpcReceiver());
  receiver->impl_ = std::make_unique<Impl>();
  const size_t threads = std::min<size_t>(Impl::kThreads, UsableCpus());
  for (size_t i = 0; i < threads; ++i) options.connection_contexts.push_back(&receiver->impl_->io[i]);
  auto server = GrpcH2Server::Bind(receiver->impl_->io[0], host, port, std::move(options),
                                   {{kExportMethod, MakeExportHandler(distributor)}});
  if (!server.ok()) return Status(server.status().code(), "OTLP/gRPC receiver: " + server.status().message());
  receiver->impl_->server = std::move(server).value();
  receiver->port_ = receiver->impl_->server->port();
  receiver->impl_->server->Start();
  for (size_t i = 0; i < threads; ++i) {
    receiver->impl_->threads.emplace_back([io = &receiver->impl_->io[i]] {
      pthread_setname_np(pthread_self(), "otlp-grpc-io");
      auto guard = boost::asio::make_work_guard(*io);
      io->run();
    });
  }
  return receiver;
}

GrpcReceiver::~GrpcReceiver() { Shutdown(); }

void GrpcReceiver::Shutdown() {
  if (!impl_ || !impl_->server) return;
  impl_->server->Shutdown();  // GOAWAY; calls in flight get up to 5 s
  for (auto& context : impl_->io) context.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  impl_->server.reset();
}

uint64_t GrpcReceiver::connections_refused() const { return impl_ && impl_->server ? impl_->server->connections_refused() : 0; }

uint64_t GrpcReceiver::connections_reset_flooding() const {
  return impl_ && impl_->server ? impl_->server->connections_reset_flooding() : 0;
}

}  // namespace tracery::receiver
