// A small server of unary gRPC calls over HTTP/2: nghttp2's server session (fed with mem_recv,
// drained with mem_send) on Boost.Asio sockets, plaintext with prior knowledge or TLS with
// ALPN h2. It exists so that what gRPC core decides out of a service's reach is ours: framing
// errors are INVALID_ARGUMENT, a unary call carries one message, the compressed flag must match
// grpc-encoding, bytes being received are charged to a budget as they arrive, and a call costs
// no thread hand-off but the handler's own.
//
// Per call: the request's headers and message are checked (see docs/api.md, OTLP/gRPC), the
// message is decompressed (grpc_framing.h) and given to the method's handler, which answers
// once, from any thread; the answer is posted back to the connection's strand. A call whose
// grpc-timeout passes first is answered DEADLINE_EXCEEDED (the handler's later answer is
// dropped). Connections: SETTINGS_MAX_CONCURRENT_STREAMS, windows, stalled-stream and
// keepalive timeouts and the idle close come from GrpcServerOptions; past max_connections new
// connections are closed at once and counted; a connection resetting streams faster than
// GrpcServerOptions allows is closed with GOAWAY(ENHANCE_YOUR_CALM); accept errors back off 100 ms.
//
// Threads: Bind, Start, Shutdown and the counters from any thread; connections live on
// options.connection_contexts (one thread each) or on strands of the io_context given to Bind,
// which the caller runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/grpc_framing.h"
#include "common/status.h"
#include "common/tls.h"

namespace tracery {

struct GrpcRequest {
  std::string method;  // the :path, "/package.Service/Method"
  // Custom metadata in arrival order: lowercase names; -bin values as sent (base64).
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string message;  // decompressed
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  const std::string* FindMetadata(std::string_view name) const {
    for (const auto& [key, value] : metadata)
      if (key == name) return &value;
    return nullptr;
  }
};

struct GrpcResponse {
  GrpcCode code = GrpcCode::kOk;
  std::string message;         // grpc-message (percent-encoded on the wire)
  std::string status_details;  // google.rpc.Status, binary; sent as grpc-status-details-bin
  std::string body;            // the response message, serialized (with kOk)

  static GrpcResponse Ok(std::string body) { return {GrpcCode::kOk, {}, {}, std::move(body)}; }
  static GrpcResponse Error(GrpcCode code, std::string message, std::string details = {}) {
    return {code, std::move(message), std::move(details), {}};
  }
};

using GrpcRespond = std::function<void(GrpcResponse)>;  // call once, from any thread
using GrpcUnaryHandler = std::function<void(GrpcRequest&& request, GrpcRespond respond)>;

struct GrpcServerOptions {
  uint64_t max_message_bytes = 4ull << 20;   // a message, before and after decompression
  uint64_t receiving_budget = 64ull << 20;   // request bytes being received, all connections
  // Of those, what one connection may hold (its streams together), so that one client cannot
  // take the whole budget from the others; 0: a quarter of the budget, and at least one
  // message of max_message_bytes.
  uint64_t connection_receiving_cap = 0;
  size_t max_connections = 10000;            // beyond it new connections are closed (counted)
  uint32_t max_concurrent_streams = 100;     // per connection
  uint32_t stream_window = 1u << 20;         // initial flow-control window of a stream
  uint32_t connection_window = 16u << 20;    // of a connection
  uint32_t max_header_bytes = 16u << 10;     // a request's headers (HPACK-decoded, +32 each)
  std::chrono::milliseconds stall_timeout{30'000};      // no DATA for this long: DEADLINE_EXCEEDED
  std::chrono::milliseconds message_timeout{120'000};   // whole message not received by then: same
  std::chrono::milliseconds keepalive_time{2 * 3600'000};  // no frame for this long: PING
  std::chrono::milliseconds keepalive_timeout{20'000};     // PING unanswered this long: close
  std::chrono::milliseconds idle_timeout{600'000};         // no stream for this long: GOAWAY
  std::chrono::milliseconds handshake_timeout{30'000};     // TLS handshake and HTTP/2 preface
  std::chrono::milliseconds shutdown_grace{5'000};         // Shutdown: calls in flight get this long
  // Stream resets a connection may cause (RST_STREAM received, and RST_STREAM sent: streams
  // refused past max_concurrent_streams or answered before their request ended), as a token
  // bucket: `stream_reset_burst` at once, refilled at `stream_resets_per_second`. Past it the
  // connection gets GOAWAY(ENHANCE_YOUR_CALM) and is closed: opening and resetting streams
  // (HTTP/2 "rapid reset") would otherwise make the server start work no concurrency limit bounds.
  uint32_t stream_reset_burst = 400;
  uint32_t stream_resets_per_second = 100;
  // google.rpc.Status bytes for a refusal the client should retry (the receiving budget is
  // full); empty function: none.
  std::function<std::string(GrpcCode code, std::string_view message)> retry_details;
  // Connections are spread over these in turn, each context run by one thread (so a
  // connection needs no strand); empty: every connection on a strand of Bind's io_context.
  std::vector<boost::asio::io_context*> connection_contexts;
  // When set, every connection is TLS with the source's context at its accept; call
  // tls->OfferHttp2() first (gRPC clients ask for h2 by ALPN).
  std::shared_ptr<TlsContextSource> tls;
};

class GrpcH2Server {
 public:
  // Binds at once (so a port clash is reported at start); serves once Start is called. The
  // address as TcpAcceptor::Bind takes it ("" every interface, `localhost` the loopback).
  // `methods` maps a :path to its handler; other paths are answered UNIMPLEMENTED.
  static Result<std::unique_ptr<GrpcH2Server>> Bind(boost::asio::io_context& io, const std::string& address, uint16_t port,
                                                    GrpcServerOptions options,
                                                    std::map<std::string, GrpcUnaryHandler, std::less<>> methods);
  ~GrpcH2Server();
  void Start();
  // Stops accepting, sends GOAWAY on every connection, lets calls in flight finish for up to
  // shutdown_grace, then closes what is left. Blocks until done; the io_context must be running.
  void Shutdown();
  uint16_t port() const;
  uint64_t connections_refused() const;
  uint64_t connections_reset_flooding() const;  // closed with ENHANCE_YOUR_CALM (stream resets)
  uint64_t receiving_bytes() const;  // request bytes held now, all connections
  size_t connections() const;

 private:
  struct Impl;
  explicit GrpcH2Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracery
