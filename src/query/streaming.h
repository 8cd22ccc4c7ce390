// Tempo's streaming query API: the gRPC service tempopb.StreamingQuerier (Search, the tag
// listings and TraceQL metrics), as Grafana's Tempo data source calls it when streaming is
// on. It has no port of its own: the query port's HTTP server hands over the connections that
// open with the HTTP/2 preface (HttpServerOptions::http2_handoff), as Tempo serves it on its
// HTTP port with stream_over_http_enabled. docs/api.md describes the stream.
//
//   auto streaming = StreamingServer::Start(searcher, options);
//   http_options.http2_handoff = [s = streaming->get()](int fd) { s->AddConnection(fd); };
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "common/status.h"
#include "query/search.h"
#include "query/search_api.h"

namespace tracery::query {

struct StreamingOptions {
  bool multitenancy_enabled = false;  // tenant from the x-scope-orgid metadata
  SearchApiOptions search;
  // A search sends what it has found at most this often (and its answer at the end).
  std::chrono::milliseconds progress_interval{100};
  // No message is larger (Tempo's max_grpc_streaming_packet_size); Grafana takes up to 4 MiB.
  size_t max_message_bytes = 1 << 20;
  // Calls served at once; each holds a thread while it runs. Past it: RESOURCE_EXHAUSTED.
  int max_calls = 32;
  // A gRPC port of its own as well (Tempo's server.grpc_listen_port), "host:port"; empty: only
  // the connections handed over by AddConnection. Null credentials: plaintext.
  std::string listen_address;
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

class StreamingServer {
 public:
  static Result<std::unique_ptr<StreamingServer>> Start(Searcher& searcher, StreamingOptions options);
  ~StreamingServer();
  StreamingServer(const StreamingServer&) = delete;
  StreamingServer& operator=(const StreamingServer&) = delete;

  // Serves one connection: a connected, non-blocking socket whose client opened with the
  // HTTP/2 preface (still unread). Takes the descriptor; closes it once stopped. Any thread.
  void AddConnection(int fd);
  // Ends the calls in progress (after up to `grace`) and closes every connection.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // The port of options.listen_address (the chosen one when it asked for port 0); 0 without.
  int port() const { return port_; }

 private:
  struct Impl;
  explicit StreamingServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace tracery::query
