// Jaeger receivers, as Tempo runs them (the OpenTelemetry Collector's jaeger receiver):
//   thrift_http     POST /api/traces, a Thrift-binary jaeger.Batch          (jaeger_server.cpp)
//   thrift_compact  UDP agent, Agent.emitBatch in the compact protocol      (jaeger_server.cpp)
//   thrift_binary   UDP agent, Agent.emitBatch in the binary protocol       (jaeger_server.cpp)
//   grpc            jaeger.api_v2.CollectorService/PostSpans, raw protobuf  (jaeger_server.cpp)
// Every one turns what it receives into an OTLP ExportTraceServiceRequest (jaeger.cpp, after
// the Collector's Jaeger translator; the rules are in docs/api.md) and hands it to
// Distributor::Push, so limits, the WAL, tenants and the generator apply as for OTLP.
//
// Decoding works span by span: memory beyond the input and the OTLP output is one span's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/status.h"
#include "distributor/distributor.h"
#include "receiver/thrift.h"

namespace tracery::receiver {

// An ExportTraceServiceRequest (protobuf) and the number of spans in it.
struct JaegerConversion {
  std::string otlp;
  size_t spans = 0;
};

// A span may hold at most this many tags, logs, log fields and references in all (a process
// this many tags): a bound on what one span can make the decoder hold, far above real spans.
inline constexpr size_t kJaegerMaxItemsPerSpan = 100'000;

// Malformed input is InvalidArgument naming what failed. A message for another agent method
// (emitZipkinBatch) is UnsupportedMedia.
Result<JaegerConversion> JaegerThriftBatchToOtlp(thrift::Protocol protocol, std::string_view batch);
Result<JaegerConversion> JaegerAgentMessageToOtlp(thrift::Protocol protocol, std::string_view message);
Result<JaegerConversion> JaegerPostSpansToOtlp(std::string_view request);  // api_v2 PostSpansRequest

// The handler of POST /api/traces (thrift_http), for an HttpServer.
HttpHandler MakeJaegerThriftHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes);

// A UDP agent endpoint: one socket, one datagram read at a time on `io`'s threads. Datagrams
// are never answered (emitBatch is oneway); bad ones are counted and dropped.
class JaegerAgentServer {
 public:
  // Binds at once, so a port clash is reported at start; receives once `io` runs.
  static Result<std::unique_ptr<JaegerAgentServer>> Start(boost::asio::io_context& io, const std::string& endpoint,
                                                          thrift::Protocol protocol, distributor::Distributor& distributor,
                                                          MetricsRegistry& metrics);
  ~JaegerAgentServer();
  void Stop();
  uint16_t port() const;

 private:
  struct Impl;
  explicit JaegerAgentServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// jaeger.api_v2.CollectorService/PostSpans on its own gRPC server.
class JaegerGrpcReceiver {
 public:
  // With `tls` enabled the port speaks only TLS (common/grpc_tls.h).
  static Result<std::unique_ptr<JaegerGrpcReceiver>> Start(const std::string& endpoint, uint64_t max_request_bytes,
                                                           uint64_t max_inflight_bytes, distributor::Distributor& distributor,
                                                           const TlsSettings& tls = {});
  ~JaegerGrpcReceiver();
  void Shutdown();
  int port() const { return port_; }

 private:
  JaegerGrpcReceiver() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The address to bind for an endpoint's host part: "localhost" (the Collector's default host)
// is the IPv4 loopback address; anything else is used as written.
std::string JaegerListenAddress(const std::string& host);

}  // namespace tracery::receiver
