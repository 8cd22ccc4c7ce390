// The HTTP server's own logic that needs no socket: telling a connection that opens with
// HTTP/2's preface (handed to gRPC) from HTTP/1.1 by its first bytes, whatever they are so far,
// and the head of an answer, written by hand, byte for byte as Beast's serializer writes it.
// Serving both on one port end to end: tests/e2e/streaming.test.mjs.
#include "common/http_server.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

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

}  // namespace
}  // namespace tracery
