// Real OTLP servers on 127.0.0.1 for the exporter's tests: tracery's own receivers in front of
// an in-process pipeline (what is exported can be read back), and scripted gRPC / HTTP servers
// whose answers a test chooses (error codes, Retry-After) and which record what they got.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/grpc_h2_server.h"
#include "common/http_server.h"
#include "receiver/receivers.h"
#include "server/pipeline_for_tests.h"

namespace tracery::testing {

// Runs an io_context on one thread until destroyed.
class IoThread {
 public:
  IoThread() : guard_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// tracery's OTLP/gRPC and OTLP/HTTP receivers over a Pipeline. Ports: 0 for any.
class OtlpBackend {
 public:
  // With `tls` enabled both ports speak only TLS.
  explicit OtlpBackend(distributor::Options options = {}, uint16_t grpc_port = 0, uint16_t http_port = 0, const TlsSettings& tls = {})
      : pipeline_(options) {
    auto grpc = receiver::GrpcReceiver::Start("127.0.0.1:" + std::to_string(grpc_port), 16 << 20, 64 << 20, pipeline_.distributor(), tls);
    if (!grpc.ok()) throw std::runtime_error(grpc.status().ToString());
    grpc_ = std::move(grpc).value();
    HttpServerOptions http_options;
    if (tls.enabled()) {
      auto source = TlsContextSource::Create(tls, "test");
      if (!source.ok()) throw std::runtime_error(source.status().ToString());
      http_options.tls = *source;
    }
    auto http = HttpServer::Bind(io_.io(), "127.0.0.1", http_port, http_options, receiver::MakeOtlpHttpHandler(pipeline_.distributor(), 16 << 20));
    if (!http.ok()) throw std::runtime_error(http.status().ToString());
    http_ = std::move(http).value();
    http_->Start();
  }
  ~OtlpBackend() {
    grpc_->Shutdown();
    http_->Stop();
    io_.Stop();
  }
  std::string grpc_endpoint() const { return "127.0.0.1:" + std::to_string(grpc_->port()); }
  std::string http_endpoint() const { return "http://127.0.0.1:" + std::to_string(http_->port()); }
  std::string https_endpoint() const { return "https://127.0.0.1:" + std::to_string(http_->port()); }
  // Spans of the trace whose 16 ID bytes are all `trace_byte` (0 when absent).
  size_t SpanCount(char trace_byte, const std::string& tenant = kSingleTenant) { return SpanCount(TraceId::FromBytes(std::string(16, trace_byte)), tenant); }
  size_t SpanCount(const TraceId& id, const std::string& tenant = kSingleTenant) {
    auto trace = pipeline_.reader().FindTrace(tenant, id);
    return trace.ok() && trace->has_value() ? (*trace)->SpanCount() : 0;
  }
  Pipeline& pipeline() { return pipeline_; }

 private:
  Pipeline pipeline_;
  IoThread io_;
  std::unique_ptr<receiver::GrpcReceiver> grpc_;
  std::unique_ptr<HttpServer> http_;
};

// A gRPC server answering TraceService/Export as `answer` says, recording every request.
class ScriptedGrpcServer {
 public:
  using Answer = std::function<GrpcResponse(const GrpcRequest& request, int call_number)>;
  explicit ScriptedGrpcServer(Answer answer) : answer_(std::move(answer)) {
    std::map<std::string, GrpcUnaryHandler, std::less<>> methods;
    methods["/opentelemetry.proto.collector.trace.v1.TraceService/Export"] = [this](GrpcRequest&& request, GrpcRespond respond) {
      int number;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
        number = int(requests_.size());
      }
      respond(answer_(request, number));
    };
    auto server = GrpcH2Server::Bind(io_.io(), "127.0.0.1", 0, GrpcServerOptions{}, std::move(methods));
    if (!server.ok()) throw std::runtime_error(server.status().ToString());
    server_ = std::move(server).value();
    server_->Start();
  }
  ~ScriptedGrpcServer() {
    server_->Shutdown();
    io_.Stop();
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<GrpcRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  Answer answer_;
  IoThread io_;
  std::unique_ptr<GrpcH2Server> server_;
  std::mutex mutex_;
  std::vector<GrpcRequest> requests_;
};

// An HTTP server answering every request as `answer` says, counting them.
class ScriptedHttpServer {
 public:
  using Answer = std::function<HttpResponse(const HttpRequest& request, int call_number)>;
  explicit ScriptedHttpServer(Answer answer) : answer_(std::move(answer)) {
    auto server = HttpServer::Bind(io_.io(), "127.0.0.1", 0, 16 << 20, [this](HttpRequest&& request, Responder respond) {
      int number = ++calls_;
      respond(answer_(request, number));
    });
    if (!server.ok()) throw std::runtime_error(server.status().ToString());
    server_ = std::move(server).value();
    server_->Start();
  }
  ~ScriptedHttpServer() {
    server_->Stop();
    io_.Stop();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  int calls() const { return calls_; }

 private:
  Answer answer_;
  IoThread io_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> calls_{0};
};

}  // namespace tracery::testing
