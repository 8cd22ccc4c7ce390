// The OTLP/HTTP handler: paths, methods, content types and encodings, and the response
// bodies OTLP clients read.
#include <gtest/gtest.h>


#include <future>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "common/compress_for_tests.h"
#include "receiver/receivers.h"
#include "server/pipeline_for_tests.h"

namespace tracery::receiver {
namespace {

using tracery::testing::Pipeline;
namespace http = boost::beast::http;

HttpResponse Send(const HttpHandler& handler, http::verb method, const std::string& target, const std::string& type,
                  const std::string& body, const std::string& encoding = "") {
  HttpRequest request(method, target, 11);
  if (!type.empty()) request.set(http::field::content_type, type);
  if (!encoding.empty()) request.set(http::field::content_encoding, encoding);
  request.body() = body;
  std::promise<HttpResponse> answer;
  handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}

std::string Gzip(const std::string& data) { return CompressForTests(data, CompressedFormat::kGzip); }

TEST(OtlpHttpHandlerTest, AcceptsProtobufJsonAndGzip) {
  Pipeline pipeline;
  HttpHandler handler = MakeOtlpHttpHandler(pipeline.distributor(), 1 << 20);
  HttpResponse proto = Send(handler, http::verb::post, "/v1/traces", "application/x-protobuf", Pipeline::Request('d', {1}));
  EXPECT_EQ(proto.status, 200u);
  EXPECT_EQ(proto.content_type, "application/x-protobuf");
  EXPECT_TRUE(proto.body.empty());  // an empty ExportTraceServiceResponse
  HttpResponse gzip =
      Send(handler, http::verb::post, "/v1/traces", "application/x-protobuf", Gzip(Pipeline::Request('e', {1})), "gzip");
  EXPECT_EQ(gzip.status, 200u);
  HttpResponse json = Send(handler, http::verb::post, "/v1/traces", "application/json; charset=utf-8",
                           R"({"resourceSpans":[]})");
  EXPECT_EQ(json.status, 200u);
  EXPECT_EQ(json.body, "{}");
  EXPECT_TRUE(pipeline.reader().FindTrace(kSingleTenant, TraceId::FromBytes(std::string(16, 'e')))->has_value());
}

TEST(OtlpHttpHandlerTest, RefusesWithTheProtocolsCodes) {
  Pipeline pipeline;
  HttpHandler handler = MakeOtlpHttpHandler(pipeline.distributor(), 1 << 20);
  EXPECT_EQ(Send(handler, http::verb::post, "/v1/metrics", "application/x-protobuf", "").status, 404u);
  EXPECT_EQ(Send(handler, http::verb::get, "/v1/traces", "application/x-protobuf", "").status, 405u);
  EXPECT_EQ(Send(handler, http::verb::post, "/v1/traces", "text/plain", "x").status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/v1/traces", "application/x-protobuf", "x", "br").status, 415u);
  HttpResponse bad_gzip = Send(handler, http::verb::post, "/v1/traces", "application/json", "not gzip", "gzip");
  EXPECT_EQ(bad_gzip.status, 400u);
  EXPECT_EQ(bad_gzip.body.rfind("{\"code\":3,", 0), 0u) << bad_gzip.body;  // google.rpc.Status as JSON
  std::string bomb = Gzip(std::string(2 << 20, 'a'));
  EXPECT_EQ(Send(handler, http::verb::post, "/v1/traces", "application/x-protobuf", bomb, "gzip").status, 413u);
}

TEST(OtlpHttpHandlerTest, PartialSuccessEncodesAsOtlpSays) {
  std::string encoded = EncodeExportResponse(7, "trace too large");
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  ASSERT_TRUE(response.ParseFromString(encoded));
  EXPECT_EQ(response.partial_success().rejected_spans(), 7);
  EXPECT_EQ(response.partial_success().error_message(), "trace too large");
  EXPECT_TRUE(EncodeExportResponse(0, "").empty());
}

// On a gateway (the distributor routes), a request marked forwarded by a peer gateway is
// stored here; the header's name may come in any case, and only the value "1" marks it.
TEST(OtlpHttpHandlerTest, APeerGatewaysForwardIsStoredHereNotRoutedAgain) {
  int routed = 0;
  distributor::Options options;
  options.route = [&](const std::string&, const otlp::SplitRequest& split, std::vector<bool>& local,
                      std::function<void(Status)> done) {
    ++routed;
    local.assign(split.fragments.size(), false);  // as if every trace were another gateway's
    done(Status::Ok());
  };
  Pipeline pipeline(options);
  HttpHandler handler = MakeOtlpHttpHandler(pipeline.distributor(), 1 << 20);
  auto post = [&](char trace_byte, const char* name, const char* value) {
    HttpRequest request(http::verb::post, "/v1/traces", 11);
    request.set(http::field::content_type, "application/x-protobuf");
    if (name) request.set(name, value);
    request.body() = Pipeline::Request(trace_byte, {1});
    std::promise<HttpResponse> answer;
    handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
    EXPECT_EQ(answer.get_future().get().status, 200u);
    return pipeline.reader().FindTrace(kSingleTenant, TraceId::FromBytes(std::string(16, trace_byte)))->has_value();
  };
  EXPECT_FALSE(post('a', nullptr, nullptr));
  EXPECT_EQ(routed, 1);
  EXPECT_TRUE(post('b', "X-Tracery-Forwarded", "1"));
  EXPECT_TRUE(post('c', "x-tracery-forwarded", "1"));
  EXPECT_EQ(routed, 1);
  EXPECT_FALSE(post('d', "X-Tracery-Forwarded", "yes"));
  EXPECT_EQ(routed, 2);
}

}  // namespace
}  // namespace tracery::receiver
