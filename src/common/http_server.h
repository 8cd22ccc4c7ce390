// A small asynchronous HTTP/1.1 server on Boost.Beast, shared by the OTLP/HTTP receiver and
// the query API. Handlers may answer later and from any thread: the Responder posts the
// answer back to the connection's strand, or its single-thread context (an answer given there,
// at once, is written then). Connections are kept alive; bodies over the limit are answered 413 without being
// read into memory; `Expect: 100-continue` is answered before a body is read; a sender too
// slow with its headers or body gets 408; connections past the cap are closed at once, and
// accept errors (no file descriptors left) back off.
//
// Optionally a listener also serves HTTP/2 with prior knowledge (how gRPC clients speak
// plaintext): a connection whose first bytes are HTTP/2's client preface is handed, as a
// file descriptor, to another server (gRPC) instead of being read as HTTP/1.1.
//
// With TLS (HttpServerOptions::tls) every connection is TLS: a plaintext client gets a 400 in
// plaintext and is closed, a failed handshake (wrong client certificate...) just closes. When
// HTTP/2 is handed off too, it is chosen by ALPN ("h2") instead of the preface, and the
// decrypted bytes reach the HTTP/2 owner through a socket pair.
#pragma once

#include <chrono>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "common/status.h"
#include "common/tls.h"

namespace tracery {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Text(unsigned status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body), {}}; }
  static HttpResponse Json(unsigned status, std::string body) { return {status, "application/json", std::move(body), {}}; }
};

using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest&& request, Responder respond)>;

// Limits of one listener. Bodies being received are charged to `receiving_budget` (shared by
// the listener's connections) as soon as their headers announce them, before they are read:
// a sender past it gets 429 at once, so stalled uploads cannot pile up memory.
struct HttpServerOptions {
  uint64_t body_limit = 16ull << 20;
  uint64_t receiving_budget = 512ull << 20;
  size_t max_connections = 10000;  // beyond it new connections are closed at once (and counted)
  std::chrono::milliseconds header_timeout{30'000};  // for a request's headers, from its first byte on
  std::chrono::milliseconds body_timeout{120'000};   // for its body; past either: 408, then close
  // When set, connections that open with the HTTP/2 client preface are given to it (it owns
  // the descriptor from then on) and the rest are served as HTTP/1.1. A connection that has
  // not shown which it is within header_timeout is closed. Handed-off connections count
  // against max_connections until they close.
  std::function<void(int fd)> http2_handoff;
  // When set, connections are TLS, each with the source's context at its accept (so a
  // reloaded certificate applies to new connections). Call tls->OfferHttp2() for http2_handoff.
  std::shared_ptr<TlsContextSource> tls;
  // Connections are spread over these in turn, each context run by one thread: a connection
  // needs no strand, and its reads, answers and writes never change threads (two threads on
  // one context hand each other every completion: a futex wake and a context switch or two a
  // request). Empty: every connection on a strand of Bind's io_context.
  std::vector<boost::asio::io_context*> connection_contexts;
};

// The client preface every HTTP/2 connection with prior knowledge opens with (RFC 9113 3.4).
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum class PrefaceMatch { kHttp2, kNotHttp2, kUndecided };
// Classifies a connection by its first bytes: kUndecided while they are a proper prefix of the
// preface (the client has not sent enough yet), kNotHttp2 as soon as one byte differs.
PrefaceMatch MatchHttp2Preface(std::string_view first_bytes);

class HttpServer {
 public:
  // Binds at once (so a port clash is reported at start); serves once Start is called. The
  // address as TcpAcceptor::Bind takes it ("" every interface, `localhost` the loopback).
  static Result<std::unique_ptr<HttpServer>> Bind(boost::asio::io_context& io, const std::string& address, uint16_t port,
                                                  HttpServerOptions options, HttpHandler handler);
  static Result<std::unique_ptr<HttpServer>> Bind(boost::asio::io_context& io, const std::string& address, uint16_t port,
                                                  uint64_t body_limit, HttpHandler handler) {
    HttpServerOptions options;
    options.body_limit = body_limit;
    return Bind(io, address, port, options, std::move(handler));
  }
  ~HttpServer();
  void Start();
  void Stop();
  uint16_t port() const;
  uint64_t connections_refused() const;
  uint64_t tls_handshakes_failed() const;  // plaintext clients included

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The head of an answer as the server writes it: status line, Server, Content-Type, the
// response's own headers, Connection as keep-alive requires for the version (10 or 11), and
// Content-Length (also 0 for 204, as Beast's serializer wrote it).
void AppendResponseHead(const HttpResponse& response, unsigned version, bool keep_alive, std::string& out);

// HTTP status for a Status code (400, 401, 404, 413, 415, 429, 503, 500).
unsigned HttpStatusFor(const Status& status);

// Splits "host:port"; "[::1]:4318" and ":4318" (all addresses) are understood.
bool SplitHostPort(const std::string& endpoint, std::string& host, uint16_t& port);

}  // namespace tracery
