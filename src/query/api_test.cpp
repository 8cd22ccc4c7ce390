// Tempo's query API handler over a real ingester: trace by ID in JSON and protobuf, v1 and
// v2, status codes, /flush, /metrics negotiation.
#include "query/api.h"

#include <gtest/gtest.h>

#include <future>

#include "server/pipeline_for_tests.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::query {
namespace {

using tracery::testing::Pipeline;
namespace http = boost::beast::http;

HttpResponse Get(const HttpHandler& handler, const std::string& target, const std::string& accept = "",
                 http::verb method = http::verb::get) {
  HttpRequest request(method, target, 11);
  if (!accept.empty()) request.set(http::field::accept, accept);
  std::promise<HttpResponse> answer;
  handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}

class QueryApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pipeline_.Push(Pipeline::Request('c', {1, 2})).status.ok());
    handler_ = MakeQueryApiHandler(ApiOptions{}, pipeline_.reader(), pipeline_.metrics());
  }
  Pipeline pipeline_;
  HttpHandler handler_;
  const std::string id_ = "63636363636363636363636363636363";  // sixteen bytes of 'c'
};

TEST_F(QueryApiTest, TraceByIdInTempoShapes) {
  HttpResponse v1 = Get(handler_, "/api/traces/" + id_);
  EXPECT_EQ(v1.status, 200u);
  EXPECT_EQ(v1.body.rfind("{\"batches\":[", 0), 0u) << v1.body;
  EXPECT_NE(v1.body.find("\"spanId\":\"0202020202020202\""), std::string::npos);
  HttpResponse v2 = Get(handler_, "/api/v2/traces/" + id_);
  EXPECT_EQ(v2.body.rfind("{\"trace\":{\"resourceSpans\":[", 0), 0u) << v2.body;

  HttpResponse proto = Get(handler_, "/api/traces/" + id_, "application/protobuf");
  EXPECT_EQ(proto.content_type, "application/protobuf");
  opentelemetry::proto::trace::v1::TracesData decoded;  // Trace{batches=1} has TracesData's shape
  ASSERT_TRUE(decoded.ParseFromString(proto.body));
  ASSERT_EQ(decoded.resource_spans_size(), 1);
  EXPECT_EQ(decoded.resource_spans(0).scope_spans(0).spans_size(), 2);
}

TEST_F(QueryApiTest, StatusCodes) {
  EXPECT_EQ(Get(handler_, "/api/traces/xyz").status, 400u);
  EXPECT_EQ(Get(handler_, "/api/traces/" + std::string(33, '1')).status, 400u);
  EXPECT_EQ(Get(handler_, "/api/traces/1234").status, 404u);  // short IDs are left-padded, then absent
  EXPECT_EQ(Get(handler_, "/api/traces/" + id_ + "?start=abc").status, 400u);
  EXPECT_EQ(Get(handler_, "/nothing-here").status, 404u);
  EXPECT_EQ(Get(handler_, "/ready").status, 200u);
  EXPECT_EQ(Get(handler_, "/api/echo").body, "echo");
}

TEST_F(QueryApiTest, FlushKeepsTracesReadableAndMetricsNegotiate) {
  EXPECT_EQ(Get(handler_, "/flush", "", http::verb::post).status, 204u);
  EXPECT_EQ(Get(handler_, "/api/traces/" + id_).status, 200u);
  HttpResponse text = Get(handler_, "/metrics");
  EXPECT_NE(text.body.find("tracery_query_requests_total{endpoint=\"/api/traces\",status_code=\"200\"}"), std::string::npos);
  HttpResponse openmetrics = Get(handler_, "/metrics", "application/openmetrics-text;version=1.0.0");
  EXPECT_EQ(openmetrics.content_type.rfind("application/openmetrics-text", 0), 0u);
  EXPECT_TRUE(openmetrics.body.ends_with("# EOF\n"));
  EXPECT_NE(openmetrics.body.find("# TYPE tracery_query_requests counter"), std::string::npos);
}

}  // namespace
}  // namespace tracery::query
