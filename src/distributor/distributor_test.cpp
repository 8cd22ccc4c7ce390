// The distributor's refusals and what passes through it, on a real ingester.
#include "distributor/distributor.h"

#include <gtest/gtest.h>

#include "server/pipeline_for_tests.h"

namespace tracery::distributor {
namespace {

using tracery::testing::Pipeline;

TEST(DistributorTest, AcceptedSpansAreReadable) {
  Pipeline pipeline;
  PushReply reply = pipeline.Push(Pipeline::Request('a', {1, 2, 3}));
  ASSERT_TRUE(reply.status.ok()) << reply.status.ToString();
  auto trace = pipeline.reader().FindTrace(kSingleTenant, TraceId::FromBytes(std::string(16, 'a')));
  ASSERT_TRUE(trace.ok() && trace->has_value());
  EXPECT_EQ((*trace)->SpanCount(), 3u);
}

TEST(DistributorTest, JsonIsAcceptedAndMalformedInputIsRefusedAndCounted) {
  Pipeline pipeline;
  std::string json = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
      "spanId":"0102030405060708","name":"x"}]}]}]})";
  EXPECT_TRUE(pipeline.Push(json, Encoding::kJson).status.ok());
  EXPECT_EQ(pipeline.Push("{not json", Encoding::kJson).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pipeline.Push("\xff\xff\xff", Encoding::kProtobuf).status.code(), StatusCode::kInvalidArgument);
  std::string zero_trace = Pipeline::Request('\0', {1});
  PushReply reply = pipeline.Push(zero_trace);
  EXPECT_EQ(reply.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status.message().find("all-zero trace_id"), std::string::npos);
  EXPECT_NE(pipeline.metrics().Render().find("tracery_distributor_requests_refused_total{reason=\"invalid\"} 3"),
            std::string::npos) << pipeline.metrics().Render();
}

TEST(DistributorTest, LimitsRefuseWithTheRightCodes) {
  std::string request = Pipeline::Request('b', {1});
  Options options;
  options.max_request_bytes = 4 * request.size();
  options.rate_limit_bytes = 1;                        // refills too slowly to matter here
  options.burst_size_bytes = 2 * request.size() + 10;  // room for two requests
  Pipeline pipeline(options);
  EXPECT_EQ(pipeline.Push(std::string(5 * request.size(), 'x')).status.code(), StatusCode::kTooLarge);
  EXPECT_TRUE(pipeline.Push(request).status.ok());
  EXPECT_TRUE(pipeline.Push(request).status.ok());
  PushReply refused = pipeline.Push(request);  // the burst is spent
  EXPECT_EQ(refused.status.code(), StatusCode::kResourceExhausted);
  EXPECT_GE(refused.retry_after.count(), 1);
}

TEST(DistributorTest, TenantsAreRequiredAndValidatedWithMultitenancy) {
  Options options;
  options.multitenancy_enabled = true;
  Pipeline pipeline(options);
  EXPECT_EQ(pipeline.distributor().ResolveTenant(std::nullopt).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(pipeline.distributor().ResolveTenant("../x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*pipeline.distributor().ResolveTenant("team-a"), "team-a");
}

// A gateway's distributor (Options::route set) whose peer list gives trace 'p' to another
// gateway and every other trace to itself.
struct GatewayOptions {
  std::atomic<int> routed{0};
  Options options;
  GatewayOptions() {
    options.route = [this](const std::string&, const otlp::SplitRequest& split, std::vector<bool>& local,
                           std::function<void(Status)> done) {
      ++routed;
      local.assign(split.fragments.size(), false);  // as if all went to their owner
      done(Status::Ok());
    };
    options.remote_owner = [](const TraceId& trace_id) {
      return trace_id.bytes[0] == 'p' ? std::string_view("gw-b:4317") : std::string_view();
    };
  }
};

size_t SpansStored(Pipeline& pipeline, char trace_byte) {
  auto trace = pipeline.reader().FindTrace(kSingleTenant, TraceId::FromBytes(std::string(16, trace_byte)));
  return trace.ok() && trace->has_value() ? (*trace)->SpanCount() : 0;
}

TEST(DistributorTest, APeerGatewaysRequestIsStoredWholeAndNeverRoutedAgain) {
  GatewayOptions gateway;
  Pipeline pipeline(gateway.options);
  ASSERT_TRUE(pipeline.Push(Pipeline::Request('c', {1})).status.ok());
  EXPECT_EQ(gateway.routed, 1) << "a client's request is routed";
  EXPECT_EQ(SpansStored(pipeline, 'c'), 0u);

  // Two requests' bytes concatenated are one request of both traces.
  std::string forwarded = Pipeline::Request('p', {1, 2}) + Pipeline::Request('q', {3});
  PushReply reply = pipeline.Push(forwarded, Encoding::kProtobuf, kSingleTenant, Sender::kPeerGateway);
  ASSERT_TRUE(reply.status.ok()) << reply.status.ToString();
  EXPECT_EQ(gateway.routed, 1) << "a peer's request is not routed again";
  EXPECT_EQ(SpansStored(pipeline, 'p'), 2u) << "kept here although this gateway's list says gw-b owns it";
  EXPECT_EQ(SpansStored(pipeline, 'q'), 1u);
  std::string metrics = pipeline.metrics().Render();
  EXPECT_NE(metrics.find("tracery_gateway_forwarded_requests_received_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tracery_gateway_forwarded_spans_received_total 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tracery_gateway_misrouted_spans_received_total 2\n"), std::string::npos) << metrics;
}

TEST(DistributorTest, TheForwardedMarkerMeansNothingWithoutPeers) {
  Pipeline pipeline;  // a plain server: no routing to skip
  ASSERT_TRUE(pipeline.Push(Pipeline::Request('p', {1}), Encoding::kProtobuf, kSingleTenant, Sender::kPeerGateway).status.ok());
  EXPECT_EQ(SpansStored(pipeline, 'p'), 1u);
  EXPECT_EQ(pipeline.metrics().Render().find("tracery_gateway_"), std::string::npos);
}

}  // namespace
}  // namespace tracery::distributor
