// The OTLP exporter and the trace forwarder against real servers on 127.0.0.1: tracery's own
// receivers (what was exported is read back) and scripted servers for error answers.
#include "exporter/otlp_exporter.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include <boost/asio/ip/tcp.hpp>

#include "common/temp_dir_for_tests.h"
#include "exporter/otlp_servers_for_tests.h"
#include "exporter/trace_forwarder.h"
#include "otlp/wire.h"

namespace tracery::exporter {
namespace {

using namespace std::chrono_literals;
using tracery::testing::OtlpBackend;
using tracery::testing::Pipeline;
using tracery::testing::ScriptedGrpcServer;
using tracery::testing::ScriptedHttpServer;

ExporterOptions Options(Protocol protocol, const std::string& endpoint) {
  ExporterOptions options;
  options.name = protocol == Protocol::kGrpc ? "otlp/test" : "otlphttp/test";
  options.protocol = protocol;
  options.endpoint = endpoint;
  options.tls.insecure = true;
  options.timeout = 2s;
  options.retry.initial_interval = 20ms;
  options.retry.max_interval = 100ms;
  options.retry.max_elapsed_time = 10s;
  return options;
}

std::unique_ptr<OtlpExporter> Make(ExporterOptions options, MetricsRegistry& metrics) {
  auto exporter = OtlpExporter::Create(std::move(options), metrics);
  if (!exporter.ok()) throw std::runtime_error(exporter.status().ToString());
  return std::move(exporter).value();
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class ExporterProtocolTest : public ::testing::TestWithParam<Protocol> {
 protected:
  std::string Endpoint(OtlpBackend& backend) const {
    return GetParam() == Protocol::kGrpc ? backend.grpc_endpoint() : backend.http_endpoint();
  }
};

TEST_P(ExporterProtocolTest, ExportedSpansAreReadBack) {
  OtlpBackend backend;
  MetricsRegistry metrics;
  for (Compression compression : {Compression::kGzip, Compression::kNone}) {
    ExporterOptions options = Options(GetParam(), Endpoint(backend));
    options.compression = compression;
    auto exporter = Make(options, metrics);
    char trace = compression == Compression::kGzip ? 'a' : 'b';
    ASSERT_TRUE(exporter->Export(kSingleTenant, Pipeline::Request(trace, {1, 2, 3})).ok());
    EXPECT_EQ(backend.SpanCount(trace), 3u);
  }
  std::string rendered = metrics.Render();
  std::string name = GetParam() == Protocol::kGrpc ? "otlp/test" : "otlphttp/test";
  EXPECT_TRUE(Contains(rendered, "tracery_exporter_spans_total{exporter=\"" + name + "\",result=\"sent\"} 6")) << rendered;
  EXPECT_TRUE(Contains(rendered, "tracery_exporter_requests_total{exporter=\"" + name + "\",result=\"sent\"} 2")) << rendered;
}

TEST_P(ExporterProtocolTest, TenantGoesOutAsOrgIdUnlessSingleTenant) {
  distributor::Options multitenant;
  multitenant.multitenancy_enabled = true;
  OtlpBackend backend(multitenant);
  MetricsRegistry metrics;
  auto exporter = Make(Options(GetParam(), Endpoint(backend)), metrics);
  ASSERT_TRUE(exporter->Export("acme", Pipeline::Request('c', {1, 2})).ok());
  EXPECT_EQ(backend.SpanCount('c', "acme"), 2u);
  EXPECT_EQ(backend.SpanCount('c', "other"), 0u);
  // No X-Scope-OrgID for the single tenant: a multi-tenant backend refuses that for good.
  Status refused = exporter->Export(kSingleTenant, Pipeline::Request('d', {1}));
  EXPECT_EQ(refused.code(), StatusCode::kUnauthenticated) << refused.ToString();
}

TEST_P(ExporterProtocolTest, RetriesUntilTheServerComesUp) {
  // A free port, closed again: nothing listens there until the backend starts.
  uint16_t port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  std::string endpoint = GetParam() == Protocol::kGrpc ? "127.0.0.1:" + std::to_string(port)
                                                       : "http://127.0.0.1:" + std::to_string(port);
  MetricsRegistry metrics;
  auto exporter = Make(Options(GetParam(), endpoint), metrics);
  auto result = std::async(std::launch::async, [&] { return exporter->Export(kSingleTenant, Pipeline::Request('e', {1})); });
  std::this_thread::sleep_for(300ms);
  bool grpc = GetParam() == Protocol::kGrpc;
  OtlpBackend backend(distributor::Options{}, grpc ? port : 0, grpc ? 0 : port);
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready);
  Status status = result.get();
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(backend.SpanCount('e'), 1u);
  std::string rendered = metrics.Render();
  std::string retries = "tracery_exporter_retries_total{exporter=\"" + std::string(grpc ? "otlp/test" : "otlphttp/test") + "\"} ";
  ASSERT_TRUE(Contains(rendered, retries)) << rendered;
  EXPECT_FALSE(Contains(rendered, retries + "0\n")) << rendered;
}

TEST_P(ExporterProtocolTest, ShutdownEndsTheRetries) {
  MetricsRegistry metrics;
  ExporterOptions options = Options(GetParam(), GetParam() == Protocol::kGrpc ? "127.0.0.1:1" : "http://127.0.0.1:1");
  options.retry.initial_interval = 5s;
  auto exporter = Make(options, metrics);
  auto result = std::async(std::launch::async, [&] { return exporter->Export(kSingleTenant, Pipeline::Request('m', {1})); });
  std::this_thread::sleep_for(200ms);
  exporter->Shutdown();
  ASSERT_EQ(result.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(result.get().code(), StatusCode::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(Exporter, ExporterProtocolTest, ::testing::Values(Protocol::kGrpc, Protocol::kHttp),
                         [](const auto& info) { return info.param == Protocol::kGrpc ? "Grpc" : "Http"; });

TEST(ExporterTest, HttpWaitsAsLongAsRetryAfterAsks) {
  // 503 with Retry-After: 1 then accepted: the second attempt waits the server's second,
  // not the 20 ms backoff.
  ScriptedHttpServer server([](const HttpRequest&, int call) {
    if (call == 1) return HttpResponse{503, "text/plain", "busy", {{"Retry-After", "1"}}};
    return HttpResponse{200, "application/x-protobuf", "", {}};
  });
  MetricsRegistry metrics;
  auto exporter = Make(Options(Protocol::kHttp, server.endpoint()), metrics);
  auto start = std::chrono::steady_clock::now();
  Status status = exporter->Export(kSingleTenant, Pipeline::Request('f', {1}));
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(server.calls(), 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
}

TEST(ExporterTest, HttpBadRequestIsPermanent) {
  ScriptedHttpServer server([](const HttpRequest&, int) {
    std::string status;  // google.rpc.Status{code=3, message=2}
    otlp::PutVarintIfSet(status, 1, 3);
    otlp::PutStringIfSet(status, 2, "span 7 is bad");
    return HttpResponse{400, "application/x-protobuf", status, {}};
  });
  MetricsRegistry metrics;
  auto exporter = Make(Options(Protocol::kHttp, server.endpoint()), metrics);
  Status status = exporter->Export(kSingleTenant, Pipeline::Request('g', {1, 2}));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_FALSE(IsRetryableExportError(status));
  EXPECT_TRUE(Contains(status.message(), "HTTP 400: span 7 is bad")) << status.message();
  EXPECT_EQ(server.calls(), 1);
  EXPECT_TRUE(Contains(metrics.Render(), "tracery_exporter_spans_total{exporter=\"otlphttp/test\",result=\"failed\"} 2"));
}

TEST(ExporterTest, GrpcCodesDecideRetries) {
  ScriptedGrpcServer server([](const GrpcRequest& request, int call) {
    if (call == 1) return GrpcResponse::Error(GrpcCode::kUnavailable, "warming up");
    if (call == 2) return GrpcResponse::Error(GrpcCode::kResourceExhausted, "slow down");
    if (call == 3) return GrpcResponse::Ok({});
    return GrpcResponse::Error(GrpcCode::kInvalidArgument, "never");
  });
  MetricsRegistry metrics;
  auto exporter = Make(Options(Protocol::kGrpc, server.endpoint()), metrics);
  Status first = exporter->Export(kSingleTenant, Pipeline::Request('h', {1}));
  EXPECT_TRUE(first.ok()) << first.ToString();
  Status second = exporter->Export(kSingleTenant, Pipeline::Request('h', {1}));
  EXPECT_EQ(second.code(), StatusCode::kInvalidArgument) << second.ToString();
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_TRUE(Contains(metrics.Render(), "tracery_exporter_retries_total{exporter=\"otlp/test\"} 2")) << metrics.Render();
  // The forwarded bytes are the request as given, and headers travel as metadata.
  EXPECT_EQ(server.requests()[0].message, Pipeline::Request('h', {1}));
}

TEST(ExporterTest, GivesUpAfterMaxElapsedTimeWithUnavailable) {
  ScriptedGrpcServer server([](const GrpcRequest&, int) { return GrpcResponse::Error(GrpcCode::kUnavailable, "down"); });
  MetricsRegistry metrics;
  ExporterOptions options = Options(Protocol::kGrpc, server.endpoint());
  options.retry.max_elapsed_time = 300ms;
  options.headers = {{"Authorization", "Bearer x"}};
  auto exporter = Make(options, metrics);
  auto start = std::chrono::steady_clock::now();
  Status status = exporter->Export("acme", Pipeline::Request('i', {1}));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryableExportError(status));
  EXPECT_TRUE(Contains(status.message(), "gave up retrying")) << status.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  auto requests = server.requests();
  ASSERT_GE(requests.size(), 2u);
  ASSERT_NE(requests[0].FindMetadata("authorization"), nullptr);
  EXPECT_EQ(*requests[0].FindMetadata("authorization"), "Bearer x");
  ASSERT_NE(requests[0].FindMetadata("x-scope-orgid"), nullptr);
  EXPECT_EQ(*requests[0].FindMetadata("x-scope-orgid"), "acme");
}

TEST(ExporterTest, PartialSuccessIsCountedNotRetried) {
  ScriptedGrpcServer server([](const GrpcRequest&, int) { return GrpcResponse::Ok(receiver::EncodeExportResponse(1, "too old")); });
  MetricsRegistry metrics;
  auto exporter = Make(Options(Protocol::kGrpc, server.endpoint()), metrics);
  EXPECT_TRUE(exporter->Export(kSingleTenant, Pipeline::Request('j', {1, 2, 3})).ok());
  EXPECT_EQ(server.requests().size(), 1u);
  std::string rendered = metrics.Render();
  EXPECT_TRUE(Contains(rendered, "tracery_exporter_spans_total{exporter=\"otlp/test\",result=\"rejected\"} 1")) << rendered;
  EXPECT_TRUE(Contains(rendered, "tracery_exporter_spans_total{exporter=\"otlp/test\",result=\"sent\"} 2")) << rendered;
}

TEST(ExporterTest, BadOptionsFailAtCreate) {
  MetricsRegistry metrics;
  ExporterOptions no_endpoint;
  EXPECT_FALSE(OtlpExporter::Create(no_endpoint, metrics).ok());
  ExporterOptions http = Options(Protocol::kHttp, "127.0.0.1:4318");  // not a URL
  EXPECT_FALSE(OtlpExporter::Create(http, metrics).ok());
  ExporterOptions missing_ca = Options(Protocol::kGrpc, "127.0.0.1:4317");
  missing_ca.tls.insecure = false;
  missing_ca.tls.ca_file = "/nonexistent/ca.pem";
  auto created = OtlpExporter::Create(missing_ca, metrics);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(Contains(created.status().message(), "tls.ca_file /nonexistent/ca.pem")) << created.status().message();
}

TEST(ExporterTest, CountSpansWalksTheRequest) {
  EXPECT_EQ(CountSpans(Pipeline::Request('k', {1, 2, 3, 4})), 4u);
  EXPECT_EQ(CountSpans(Pipeline::Request('k', {1}) + Pipeline::Request('l', {1, 2})), 3u);
  EXPECT_EQ(CountSpans(""), 0u);
}

// A CA and a server certificate for 127.0.0.1, made with the openssl command line.
class ExporterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(Path("san.ext")) << "subjectAltName=IP:127.0.0.1\n";
    Run("openssl ecparam -name prime256v1 -genkey -noout -out ca.key");
    Run("openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=test-ca");
    Run("openssl ecparam -name prime256v1 -genkey -noout -out server.key");
    Run("openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1");
    Run("openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext");
  }
  void Run(const std::string& command) {
    std::string line = "cd '" + dir_.path() + "' && " + command + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(line.c_str()), 0) << command;
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  TlsSettings ServerTls() const {
    TlsSettings tls;
    tls.cert_file = Path("server.crt");
    tls.key_file = Path("server.key");
    return tls;
  }
  TempDir dir_{"tracery-exporter-tls-test"};
};

TEST_F(ExporterTlsTest, VerifiedAndUnverifiedTls) {
  OtlpBackend backend(distributor::Options{}, 0, 0, ServerTls());
  MetricsRegistry metrics;
  char trace = 'p';
  for (Protocol protocol : {Protocol::kGrpc, Protocol::kHttp}) {
    for (bool skip_verify : {false, true}) {
      ExporterOptions options = Options(protocol, protocol == Protocol::kGrpc ? backend.grpc_endpoint() : backend.https_endpoint());
      options.tls.insecure = false;
      if (skip_verify) options.tls.insecure_skip_verify = true;
      else options.tls.ca_file = Path("ca.crt");
      auto exporter = Make(options, metrics);
      Status status = exporter->Export(kSingleTenant, Pipeline::Request(trace, {1}));
      EXPECT_TRUE(status.ok()) << status.ToString();
      EXPECT_EQ(backend.SpanCount(trace), 1u);
      ++trace;
    }
    // Without the CA the server's certificate is not trusted: retried, then given up.
    ExporterOptions untrusted = Options(protocol, protocol == Protocol::kGrpc ? backend.grpc_endpoint() : backend.https_endpoint());
    untrusted.tls.insecure = false;
    untrusted.retry.max_elapsed_time = 200ms;
    Status refused = Make(untrusted, metrics)->Export(kSingleTenant, Pipeline::Request(trace, {1}));
    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(backend.SpanCount(trace), 0u);
  }
}

// ---- TraceForwarder ----

ingester::KeptTrace Kept(char trace_byte, std::initializer_list<char> spans) {
  return {TraceId::FromBytes(std::string(16, trace_byte)), Pipeline::Request(trace_byte, spans), uint32_t(spans.size())};
}

TEST(TraceForwarderTest, PacksWholeTracesUpToTheLimitAndSplitsLargeOnes) {
  std::string a = Pipeline::Request('a', {1}), b = Pipeline::Request('b', {1}), c = Pipeline::Request('c', {1});
  auto bodies = PackRequests({a, b, c}, a.size() + b.size());
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], a + b);
  EXPECT_EQ(bodies[1], c);
  // A trace of three ResourceSpans over the limit is cut between them.
  std::string large = a + b + c;
  bodies = PackRequests({large}, a.size() + 1);
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0] + bodies[1] + bodies[2], large);
}

TEST(TraceForwarderTest, DeliversToEveryExporter) {
  OtlpBackend first, second;
  MetricsRegistry metrics;
  std::vector<std::shared_ptr<OtlpExporter>> exporters{Make(Options(Protocol::kGrpc, first.grpc_endpoint()), metrics),
                                                       Make(Options(Protocol::kHttp, second.http_endpoint()), metrics)};
  TraceForwarder forwarder(exporters, TraceForwarderOptions{200});
  std::vector<ingester::KeptTrace> traces{Kept('a', {1, 2}), Kept('b', {1}), Kept('c', {1, 2, 3})};
  Status status = forwarder.Deliver(kSingleTenant, traces);
  ASSERT_TRUE(status.ok()) << status.ToString();
  for (OtlpBackend* backend : {&first, &second}) {
    EXPECT_EQ(backend->SpanCount('a'), 2u);
    EXPECT_EQ(backend->SpanCount('b'), 1u);
    EXPECT_EQ(backend->SpanCount('c'), 3u);
  }
}

TEST(TraceForwarderTest, FailsWhenAnyExporterFails) {
  OtlpBackend backend;
  ScriptedHttpServer refusing([](const HttpRequest&, int) { return HttpResponse{400, "text/plain", "no", {}}; });
  MetricsRegistry metrics;
  TraceForwarder forwarder({Make(Options(Protocol::kGrpc, backend.grpc_endpoint()), metrics),
                            Make(Options(Protocol::kHttp, refusing.endpoint()), metrics)});
  Status status = forwarder.Deliver(kSingleTenant, {Kept('d', {1})});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
}

}  // namespace
}  // namespace tracery::exporter
