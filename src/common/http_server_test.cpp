// The HTTP server's own logic that needs no socket: telling a connection that opens with
// HTTP/2's preface (handed to gRPC) from HTTP/1.1 by its first bytes, whatever they are so far.
// Serving both on one port end to end: tests/e2e/streaming.test.mjs.
#include "common/http_server.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tracery
