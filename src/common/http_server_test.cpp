// The HTTP server's own logic that needs no socket: telling a connection that opens with
// HTTP/2's preface (handed to gRPC) from HTTP/1.1 by its first bytes, whatever they are so far,
// and the head of an answer, written by hand, byte for byte as Beast's serializer writes it.
// Serving both on one port end to end: tests/e2e/streaming.test.mjs. The read timeouts, over a
// socket.
#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>

namespace tracery {
namespace {

TEST(Http2PrefaceTest, DecidesAsSoonAsTheBytesAllow) {
  const std::string preface(kHttp2Preface);
  EXPECT_EQ(MatchHttp2Preface(""), PrefaceMatch::kUndecided);
  EXPECT_EQ(MatchHttp2Preface("P"), PrefaceMatch::kUndecided);
  EXPECT_EQ(MatchHttp2Preface("PRI * HTTP/2.0\r\n"), PrefaceMatch::kUndecided);
  EXPECT_EQ(MatchHttp2Preface(preface.substr(0, preface.size() - 1)), PrefaceMatch::kUndecided);
  EXPECT_EQ(MatchHttp2Preface(preface), PrefaceMatch::kHttp2);
  EXPECT_EQ(MatchHttp2Preface(preface + std::string("\0\0\0\4", 4)), PrefaceMatch::kHttp2);
  EXPECT_EQ(MatchHttp2Preface("G"), PrefaceMatch::kNotHttp2);
  EXPECT_EQ(MatchHttp2Preface("POST /v1/traces HTTP/1.1"), PrefaceMatch::kNotHttp2);  // 'P' then not 'R'
  EXPECT_EQ(MatchHttp2Preface("PRI * HTTP/1.1\r\n"), PrefaceMatch::kNotHttp2);
  EXPECT_EQ(MatchHttp2Preface(std::string("\x16\x03\x01", 3)), PrefaceMatch::kNotHttp2);  // a TLS hello
}

// What the server wrote before it formatted heads itself: Beast's response serializer.
std::string BeastHead(const HttpResponse& response, unsigned version, bool keep_alive) {
  namespace http = boost::beast::http;
  http::response<http::string_body> message(http::int_to_status(response.status), version);
  message.set(http::field::server, "tracery");
  message.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message.set(name, value);
  message.body() = response.body;
  message.keep_alive(keep_alive);
  message.prepare_payload();
  std::ostringstream out;
  out << message;
  std::string text = out.str();
  return text.substr(0, text.find("\r\n\r\n") + 4);
}

TEST(HttpResponseHeadTest, IsWhatBeastWrote) {
  std::vector<HttpResponse> responses = {
      HttpResponse::Text(200, "ok\n"),
      HttpResponse::Json(200, "{}"),
      {200, "application/x-protobuf", "", {}},
      {204, "text/plain", "", {}},
      {405, "text/plain; charset=utf-8", "use POST\n", {{"Allow", "POST"}}},
      {429, "application/x-protobuf", std::string(1000, 'x'), {{"Retry-After", "3"}, {"X-Tracery-Partial", "why"}}},
      HttpResponse::Text(408, "request headers not received in time\n"),
      HttpResponse::Text(503, "unavailable\n"),
  };
  for (const HttpResponse& response : responses) {
    for (unsigned version : {10u, 11u}) {
      for (bool keep_alive : {false, true}) {
        std::string head;
        AppendResponseHead(response, version, keep_alive, head);
        EXPECT_EQ(head, BeastHead(response, version, keep_alive))
            << "status " << response.status << " HTTP/" << version / 10 << "." << version % 10 << " keep-alive " << keep_alive;
      }
    }
  }
}

// A connection that sends `bytes` and then nothing: what it reads back within `wait`, and after
// how long the first byte came.
struct StalledClientResult {
  std::string received;
  std::chrono::milliseconds first_byte_after{-1};
};
StalledClientResult SendAndStall(uint16_t port, const std::string& bytes, std::chrono::milliseconds wait) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  StalledClientResult result;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return result;
  auto started = std::chrono::steady_clock::now();
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  for (pollfd p{fd, POLLIN, 0}; ::poll(&p, 1, int(wait.count())) == 1;) {
    char buffer[512];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    if (result.received.empty())
      result.first_byte_after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    result.received.append(buffer, size_t(n));
  }
  ::close(fd);
  return result;
}

TEST(HttpServerTimeoutTest, SlowHeadersAndBodiesGet408AfterTheirTimeouts) {
  using namespace std::chrono_literals;
  boost::asio::io_context io;
  HttpServerOptions options;
  options.header_timeout = 300ms;
  options.body_timeout = 600ms;
  auto server = HttpServer::Bind(io, "127.0.0.1", 0, options,
                                 [](HttpRequest&&, Responder respond) { respond(HttpResponse::Text(200, "ok\n")); });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  std::thread thread([&] {
    auto guard = boost::asio::make_work_guard(io);
    io.run();
  });
  auto headers = SendAndStall((*server)->port(), "POST /v1/traces HTTP/1.1\r\nHost: x\r\n", 3s);
  auto body = SendAndStall((*server)->port(), "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", 3s);
  auto whole = SendAndStall((*server)->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3s);
  (*server)->Stop();
  io.stop();
  thread.join();
  EXPECT_EQ(headers.received.substr(0, 21), "HTTP/1.1 408 Request ") << headers.received;
  EXPECT_GE(headers.first_byte_after, 250ms);
  EXPECT_LT(headers.first_byte_after, 1500ms);
  EXPECT_NE(headers.received.find("headers not received in time"), std::string::npos) << headers.received;
  EXPECT_EQ(body.received.substr(0, 21), "HTTP/1.1 408 Request ") << body.received;
  EXPECT_GE(body.first_byte_after, 550ms);
  EXPECT_NE(body.received.find("body not received in time"), std::string::npos) << body.received;
  EXPECT_EQ(whole.received.substr(0, 15), "HTTP/1.1 200 OK") << whole.received;
}

}  // namespace
}  // namespace tracery
