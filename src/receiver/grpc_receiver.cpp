#include <grpcpp/grpcpp.h>

#include <spdlog/spdlog.h>

#include "common/grpc_tls.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "otlp/wire.h"
#include "receiver/receivers.h"

namespace tracery::receiver {
namespace {

using opentelemetry::proto::collector::trace::v1::TraceService;

grpc::StatusCode GrpcCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnsupportedMedia: return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case StatusCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kTooLarge:
    case StatusCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    default: return grpc::StatusCode::INTERNAL;
  }
}

// OTLP clients retry RESOURCE_EXHAUSTED only when the status carries google.rpc.RetryInfo,
// so overload refusals carry one (in grpc-status-details-bin) with the suggested delay.
//   google.rpc.Status{code=1, message=2, details=3 (google.protobuf.Any{type_url=1, value=2})}
//   google.rpc.RetryInfo{retry_delay=1 (google.protobuf.Duration{seconds=1, nanos=2})}
grpc::Status ErrorStatus(const Status& status, std::chrono::seconds retry_after) {
  grpc::StatusCode code = GrpcCodeFor(status);
  if (code != grpc::StatusCode::RESOURCE_EXHAUSTED || retry_after.count() <= 0 ||
      status.code() == StatusCode::kTooLarge)
    return grpc::Status(code, status.message());
  std::string details;
  otlp::PutVarintIfSet(details, 1, uint64_t(code));
  otlp::PutStringIfSet(details, 2, status.message());
  otlp::PutMessageField(details, 3, [&](std::string& any) {
    otlp::PutBytesField(any, 1, "type.googleapis.com/google.rpc.RetryInfo");
    otlp::PutMessageField(any, 2, [&](std::string& retry_info) {
      otlp::PutMessageField(retry_info, 1, [&](std::string& duration) {
        otlp::PutVarintIfSet(duration, 1, uint64_t(retry_after.count()));
      });
    });
  });
  return grpc::Status(code, status.message(), details);
}

// Export with raw request bytes: the generated message classes are never built on this path.
class RawTraceService final : public TraceService::WithRawCallbackMethod_Export<TraceService::Service> {
 public:
  explicit RawTraceService(distributor::Distributor& distributor) : distributor_(distributor) {}

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::optional<std::string_view> org_id;
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find("x-scope-orgid"); it != metadata.end()) org_id = std::string_view(it->second.data(), it->second.size());
    auto tenant = distributor_.ResolveTenant(org_id);
    if (!tenant.ok()) {
      distributor_.CountRefused("bad_tenant", request->Length());
      reactor->Finish(grpc::Status(GrpcCodeFor(tenant.status()), tenant.status().message()));
      return reactor;
    }
    grpc::Slice slice;
    if (!request->DumpToSingleSlice(&slice).ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read request"));
      return reactor;
    }
    std::string_view body(reinterpret_cast<const char*>(slice.begin()), slice.size());
    distributor_.Push(*tenant, body, distributor::Encoding::kProtobuf, [reactor, response](distributor::PushReply reply) {
      if (!reply.status.ok()) {
        reactor->Finish(ErrorStatus(reply.status, reply.retry_after));
        return;
      }
      std::string encoded = EncodeExportResponse(reply.rejected_spans, reply.rejected_reason);
      grpc::Slice out(encoded);
      *response = grpc::ByteBuffer(&out, 1);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  distributor::Distributor& distributor_;
};

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

struct GrpcReceiver::Impl {
  explicit Impl(distributor::Distributor& d) : service(d) {}
  RawTraceService service;
  std::unique_ptr<grpc::Server> server;
};

Result<std::unique_ptr<GrpcReceiver>> GrpcReceiver::Start(const std::string& endpoint, uint64_t max_request_bytes,
                                                          uint64_t max_inflight_bytes, distributor::Distributor& distributor,
                                                          const TlsSettings& tls) {
  auto credentials = MakeGrpcServerCredentials(tls, "distributor.receivers.otlp.protocols.grpc.tls");
  if (!credentials.ok()) return credentials.status();
  auto receiver = std::unique_ptr<GrpcReceiver>(new GrpcReceiver());
  receiver->impl_ = std::make_unique<Impl>(distributor);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(endpoint, *credentials, &receiver->port_);
  builder.SetMaxReceiveMessageSize(int(std::min<uint64_t>(max_request_bytes, INT32_MAX)));
  // Memory of messages being received (stalled streams included) is bounded as HTTP bodies are.
  grpc::ResourceQuota quota("otlp-grpc");
  quota.Resize(size_t(max_inflight_bytes));
  builder.SetResourceQuota(quota);
  // Idle and silent connections do not live for ever: ping after 2 h idle (as Go's gRPC
  // servers), drop after 20 s without an answer, close connections idle for 10 minutes.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 60 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 10 * 60 * 1000);
  builder.RegisterService(&receiver->impl_->service);
  receiver->impl_->server = builder.BuildAndStart();
  if (!receiver->impl_->server || receiver->port_ == 0) return Status::IoError("cannot listen for OTLP/gRPC on " + endpoint);
  return receiver;
}

GrpcReceiver::~GrpcReceiver() { Shutdown(); }

void GrpcReceiver::Shutdown() {
  if (impl_ && impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    impl_->server->Wait();
    impl_->server.reset();
  }
}

}  // namespace tracery::receiver
