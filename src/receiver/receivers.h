// OTLP receivers: gRPC TraceService/Export and HTTP POST /v1/traces. Both read the raw
// request bytes (no generated-message parsing) and hand them to the distributor.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/http_server.h"
#include "common/status.h"
#include "common/tls.h"
#include "distributor/distributor.h"

namespace tracery::receiver {

class GrpcReceiver {
 public:
  // Served by GrpcH2Server (common/grpc_h2_server.h) on its own two io threads. Messages are
  // limited to `max_request_bytes` (as sent and as decompressed); bytes of messages being
  // received are charged to `max_inflight_bytes` as they arrive. With `tls` enabled the port
  // speaks only TLS (ALPN h2; common/tls.h, reloaded as the files change); errors name its
  // config block. A call with no DATA for `stall_timeout`, or whose message is not whole
  // `read_timeout` after its headers, is answered DEADLINE_EXCEEDED and its bytes released.
  static Result<std::unique_ptr<GrpcReceiver>> Start(const std::string& endpoint, uint64_t max_request_bytes,
                                                     uint64_t max_inflight_bytes, distributor::Distributor& distributor,
                                                     const TlsSettings& tls = {},
                                                     std::chrono::milliseconds stall_timeout = std::chrono::seconds(30),
                                                     std::chrono::milliseconds read_timeout = std::chrono::seconds(120));
  ~GrpcReceiver();
  void Shutdown();
  int port() const { return port_; }
  uint64_t connections_refused() const;  // closed at once: the listener was at its cap
  uint64_t connections_reset_flooding() const;  // closed with GOAWAY(ENHANCE_YOUR_CALM): stream resets

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The handler of POST /v1/traces, for an HttpServer.
HttpHandler MakeOtlpHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes);

// Encodes an ExportTraceServiceResponse (empty unless spans were rejected).
std::string EncodeExportResponse(uint64_t rejected_spans, const std::string& message);

}  // namespace tracery::receiver
