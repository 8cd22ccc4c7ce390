// The Jaeger listeners: thrift_http (an HttpServer handler), the UDP agent endpoints
// (thrift_compact, thrift_binary) and the gRPC collector service. Each turns its input into
// OTLP (jaeger.h) and pushes that through the distributor.
#include <atomic>
#include <cctype>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/grpc_tls.h"
#include "receiver/http_body.h"
#include "receiver/jaeger.h"

namespace tracery::receiver {
namespace {

namespace http = boost::beast::http;

HttpResponse TextError(const Status& status) {
  return HttpResponse::Text(HttpStatusFor(status), status.message() + "\n");
}

// Reasons a request or datagram was refused, for the counters.
const char* ReasonFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return "invalid";
    case StatusCode::kUnsupportedMedia: return "unsupported_method";
    case StatusCode::kUnauthenticated: return "bad_tenant";
    case StatusCode::kTooLarge: return "too_large";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kUnavailable: return "unavailable";
    default: return "error";
  }
}

}  // namespace

std::string JaegerListenAddress(const std::string& host) { return host == "localhost" ? "127.0.0.1" : host; }

// ---------------------------------------------------------------------------------------
// thrift_http: POST /api/traces with a Thrift-binary jaeger.Batch, answered 202 as Jaeger's
// collector answers.

HttpHandler MakeJaegerThriftHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes) {
  return [&distributor, max_request_bytes](HttpRequest&& request, Responder respond) {
    std::string target(request.target());
    if (target.substr(0, target.find('?')) != "/api/traces") {
      respond(HttpResponse::Text(404, "not found: Jaeger Thrift batches are POSTed to /api/traces\n"));
      return;
    }
    if (request.method() != http::verb::post) {
      respond({405, "text/plain; charset=utf-8", "use POST\n", {{"Allow", "POST"}}});
      return;
    }
    std::string_view content_type(request[http::field::content_type]);
    std::string media_type = MediaType(content_type);
    if (media_type != "application/x-thrift" && media_type != "application/vnd.apache.thrift.binary") {
      distributor.CountRefused("content_type", request.body().size());
      respond(TextError(Status::UnsupportedMedia("unsupported content type '" + std::string(content_type) +
                                                 "': use application/x-thrift or application/vnd.apache.thrift.binary")));
      return;
    }
    auto tenant = RequestTenant(request, distributor);
    if (!tenant.ok()) {
      respond(TextError(tenant.status()));
      return;
    }
    std::string body = std::move(request.body());
    const size_t received_bytes = body.size();
    if (Status decoded = DecodeContentEncoding(request[http::field::content_encoding], max_request_bytes, body);
        !decoded.ok()) {
      distributor.CountRefused(ContentEncodingRefusal(decoded), received_bytes);
      respond(TextError(decoded));
      return;
    }
    auto converted = JaegerThriftBatchToOtlp(thrift::Protocol::kBinary, body);
    if (!converted.ok()) {
      distributor.CountRefused("invalid", body.size());
      respond(TextError(converted.status()));
      return;
    }
    if (converted->spans == 0) {
      respond(HttpResponse::Text(202, ""));
      return;
    }
    auto otlp = std::make_shared<std::string>(std::move(converted->otlp));
    // Spans a per-trace limit refuses are counted by the distributor; Jaeger's protocol has no
    // partial success, so the batch is still answered 202.
    distributor.Push(*tenant, *otlp, distributor::Encoding::kProtobuf, [respond, otlp](distributor::PushReply reply) {
      if (!reply.status.ok()) {
        HttpResponse response = TextError(reply.status);
        if (reply.retry_after.count() > 0) response.headers.emplace_back("Retry-After", std::to_string(reply.retry_after.count()));
        respond(std::move(response));
        return;
      }
      respond(HttpResponse::Text(202, ""));
    });
  };
}

// ---------------------------------------------------------------------------------------
// UDP agent endpoints

namespace {
constexpr size_t kMaxDatagramBytes = 65'000;  // the Collector's max_packet_size
}

struct JaegerAgentServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, thrift::Protocol protocol, distributor::Distributor& distributor,
       MetricsRegistry& metrics, std::string protocol_name)
      : socket(io),
        protocol(protocol),
        protocol_name(std::move(protocol_name)),
        distributor(distributor),
        metrics(metrics),
        received(metrics.GetCounter("tracery_jaeger_agent_datagrams_received_total",
                                    "Datagrams received by the Jaeger agent endpoints.", {{"protocol", this->protocol_name}})) {}

  void Receive() {
    socket.async_receive_from(boost::asio::buffer(buffer), sender,
                              [self = shared_from_this()](const boost::system::error_code& error, size_t bytes) {
                                if (error == boost::asio::error::operation_aborted || self->stopped) return;
                                if (!error) self->Handle(std::string_view(self->buffer.data(), bytes));
                                self->Receive();
                              });
  }

  void Drop(const char* reason) {
    metrics.GetCounter("tracery_jaeger_agent_datagrams_refused_total",
                       "Datagrams the Jaeger agent endpoints dropped (nothing answers UDP), by reason.",
                       {{"protocol", protocol_name}, {"reason", reason}})
        .Add();
  }

  void Handle(std::string_view datagram) {
    received.Add();
    if (datagram.size() > kMaxDatagramBytes) {
      distributor.CountRefused("too_large", datagram.size());
      return Drop("too_large");
    }
    // A datagram has no headers: with multitenancy on there is no tenant, and it is refused
    // (as Tempo, whose receivers find no org ID in it).
    auto tenant = distributor.ResolveTenant(std::nullopt);
    if (!tenant.ok()) {
      distributor.CountRefused("bad_tenant", datagram.size());
      return Drop("bad_tenant");
    }
    auto converted = JaegerAgentMessageToOtlp(protocol, datagram);
    if (!converted.ok()) {
      const char* reason = ReasonFor(converted.status());
      distributor.CountRefused(reason, datagram.size());
      spdlog::debug("Jaeger {} datagram dropped: {}", protocol_name, converted.status().message());
      return Drop(reason);
    }
    if (converted->spans == 0) return;
    auto otlp = std::make_shared<std::string>(std::move(converted->otlp));
    distributor.Push(*tenant, *otlp, distributor::Encoding::kProtobuf,
                     [self = shared_from_this(), otlp](distributor::PushReply reply) {
                       if (!reply.status.ok()) self->Drop(ReasonFor(reply.status));
                     });
  }

  boost::asio::ip::udp::socket socket;
  boost::asio::ip::udp::endpoint sender;
  // One byte more than the largest datagram taken, so that a larger one shows as too large.
  std::vector<char> buffer = std::vector<char>(kMaxDatagramBytes + 1);
  thrift::Protocol protocol;
  std::string protocol_name;
  distributor::Distributor& distributor;
  MetricsRegistry& metrics;
  Counter& received;
  std::atomic<bool> stopped{false};
};

JaegerAgentServer::JaegerAgentServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JaegerAgentServer>> JaegerAgentServer::Start(boost::asio::io_context& io, const std::string& endpoint,
                                                                    thrift::Protocol protocol,
                                                                    distributor::Distributor& distributor,
                                                                    MetricsRegistry& metrics) {
  std::string name = protocol == thrift::Protocol::kCompact ? "thrift_compact" : "thrift_binary";
  std::string host;
  uint16_t port;
  if (!SplitHostPort(endpoint, host, port)) return Status::InvalidArgument("bad Jaeger " + name + " endpoint " + endpoint);
  boost::system::error_code error;
  auto address = boost::asio::ip::make_address(JaegerListenAddress(host), error);
  if (error) return Status::InvalidArgument("bad Jaeger " + name + " listen address " + host + ": " + error.message());
  auto impl = std::make_shared<Impl>(io, protocol, distributor, metrics, name);
  boost::asio::ip::udp::endpoint local(address, port);
  impl->socket.open(local.protocol(), error);
  if (!error) impl->socket.bind(local, error);
  if (error) return Status::IoError("cannot listen for Jaeger " + name + " on UDP " + endpoint + ": " + error.message());
  impl->Receive();
  return std::unique_ptr<JaegerAgentServer>(new JaegerAgentServer(std::move(impl)));
}

JaegerAgentServer::~JaegerAgentServer() { Stop(); }

void JaegerAgentServer::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // The socket belongs to the io threads: it is closed there (or with its last handler).
  boost::asio::post(impl_->socket.get_executor(), [impl = impl_] {
    boost::system::error_code ignored;
    impl->socket.close(ignored);
  });
}

uint16_t JaegerAgentServer::port() const {
  boost::system::error_code error;
  auto local = impl_->socket.local_endpoint(error);
  return error ? 0 : local.port();
}

// ---------------------------------------------------------------------------------------
// gRPC: jaeger.api_v2.CollectorService/PostSpans, served by a generic (raw bytes) service.

namespace {

constexpr const char* kPostSpansMethod = "/jaeger.api_v2.CollectorService/PostSpans";

grpc::Status GrpcStatusFor(const Status& status) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: case StatusCode::kUnsupportedMedia: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kUnauthenticated: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case StatusCode::kTooLarge: case StatusCode::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case StatusCode::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    default: break;
  }
  return grpc::Status(code, status.message());
}

// One call: read the request message, push it, answer an empty PostSpansResponse.
class PostSpansReactor final : public grpc::ServerGenericBidiReactor {
 public:
  PostSpansReactor(grpc::GenericCallbackServerContext* context, distributor::Distributor& distributor)
      : distributor_(distributor) {
    if (context->method() != kPostSpansMethod) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + context->method()));
      return;
    }
    std::optional<std::string_view> org_id;
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find("x-scope-orgid"); it != metadata.end())
      org_id = std::string_view(it->second.data(), it->second.size());
    auto tenant = distributor_.ResolveTenant(org_id);
    if (!tenant.ok()) {
      distributor_.CountRefused("bad_tenant", 0);
      Finish(GrpcStatusFor(tenant.status()));
      return;
    }
    tenant_ = std::move(tenant).value();
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no PostSpansRequest message"));
      return;
    }
    grpc::Slice slice;
    if (!request_.DumpToSingleSlice(&slice).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read request"));
      return;
    }
    std::string_view bytes(reinterpret_cast<const char*>(slice.begin()), slice.size());
    auto converted = JaegerPostSpansToOtlp(bytes);
    if (!converted.ok()) {
      distributor_.CountRefused("invalid", bytes.size());
      Finish(GrpcStatusFor(converted.status()));
      return;
    }
    if (converted->spans == 0) return Answer();
    auto otlp = std::make_shared<std::string>(std::move(converted->otlp));
    distributor_.Push(tenant_, *otlp, distributor::Encoding::kProtobuf, [this, otlp](distributor::PushReply reply) {
      if (!reply.status.ok()) {
        Finish(GrpcStatusFor(reply.status));
        return;
      }
      Answer();
    });
  }

  void OnDone() override { delete this; }

 private:
  void Answer() {
    grpc::Slice empty;  // PostSpansResponse has no fields
    response_ = grpc::ByteBuffer(&empty, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  distributor::Distributor& distributor_;
  std::string tenant_;
  grpc::ByteBuffer request_, response_;
};

class CollectorService final : public grpc::CallbackGenericService {
 public:
  explicit CollectorService(distributor::Distributor& distributor) : distributor_(distributor) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    return new PostSpansReactor(context, distributor_);
  }

 private:
  distributor::Distributor& distributor_;
};

}  // namespace

struct JaegerGrpcReceiver::Impl {
  explicit Impl(distributor::Distributor& distributor) : service(distributor) {}
  CollectorService service;
  std::unique_ptr<grpc::Server> server;
};

Result<std::unique_ptr<JaegerGrpcReceiver>> JaegerGrpcReceiver::Start(const std::string& endpoint, uint64_t max_request_bytes,
                                                                      uint64_t max_inflight_bytes,
                                                                      distributor::Distributor& distributor,
                                                                      const TlsSettings& tls) {
  auto credentials = MakeGrpcServerCredentials(tls, "distributor.receivers.jaeger.protocols.grpc.tls");
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<JaegerGrpcReceiver> receiver(new JaegerGrpcReceiver());
  receiver->impl_ = std::make_unique<Impl>(distributor);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(endpoint, *credentials, &receiver->port_);
  builder.SetMaxReceiveMessageSize(int(std::min<uint64_t>(max_request_bytes, INT32_MAX)));
  grpc::ResourceQuota quota("jaeger-grpc");
  quota.Resize(size_t(max_inflight_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 60 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 10 * 60 * 1000);
  builder.RegisterCallbackGenericService(&receiver->impl_->service);
  receiver->impl_->server = builder.BuildAndStart();
  if (!receiver->impl_->server || receiver->port_ == 0)
    return Status::IoError("cannot listen for Jaeger gRPC on " + endpoint + " (address in use or invalid)");
  return receiver;
}

JaegerGrpcReceiver::~JaegerGrpcReceiver() { Shutdown(); }

void JaegerGrpcReceiver::Shutdown() {
  if (impl_ && impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    impl_->server->Wait();
    impl_->server.reset();
  }
}

}  // namespace tracery::receiver
