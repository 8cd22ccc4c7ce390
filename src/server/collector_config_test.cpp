// The gateway's Collector-format configuration: the seed's files as written, merging, and
// errors with their file and line.
#include "server/collector_config.h"

#include <gtest/gtest.h>

#include "sampling/sampler.h"

namespace tracery::server {
namespace {

using namespace std::chrono_literals;

// shared/seed/configs/collector-gateway.yaml, unchanged.
constexpr const char* kSeedGateway = R"(# The Collector pipeline from the seed article, indented as it is meant.
# memory_limiter and batch are referenced but not defined, exactly as in the article.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
exporters:
  otlp/tempo:
    endpoint: tempo:4317
    tls:
      insecure: true
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/tempo]
)";

// shared/seed/configs/tail-sampling.yaml, unchanged.
constexpr const char* kSeedTailSampling = R"(# The tail-sampling processor from the seed article.
processors:
  tail_sampling:
    policies:
      - name: errors
        type: status_code
        status_code: { status_codes: [ERROR] }
      - name: slow
        type: latency
        latency: { threshold_ms: 500 }
      - name: baseline
        type: probabilistic
        probabilistic: { sampling_percentage: 5 }
)";

Result<GatewayConfig> Parse(const std::string& text) { return ParseCollectorConfig({{"gateway.yaml", text}}); }

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CollectorConfigTest, SeedGatewayFileWorksAsWritten) {
  auto config = ParseCollectorConfig({{"collector-gateway.yaml", kSeedGateway}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->receivers.size(), 1u);
  EXPECT_EQ(config->receivers[0].id, "otlp");
  EXPECT_TRUE(config->receivers[0].grpc.enabled);
  EXPECT_EQ(config->receivers[0].grpc.endpoint, "0.0.0.0:4317");
  EXPECT_FALSE(config->receivers[0].http.enabled);
  ASSERT_EQ(config->exporters.size(), 1u);
  const auto& tempo = config->exporters[0].options;
  EXPECT_EQ(tempo.name, "otlp/tempo");
  EXPECT_EQ(tempo.protocol, exporter::Protocol::kGrpc);
  EXPECT_EQ(tempo.endpoint, "tempo:4317");
  EXPECT_TRUE(tempo.tls.insecure);
  EXPECT_EQ(tempo.compression, exporter::Compression::kGzip);
  EXPECT_EQ(tempo.timeout, 5s);
  EXPECT_TRUE(tempo.retry.enabled);
  EXPECT_EQ(tempo.retry.initial_interval, 5s);
  EXPECT_EQ(tempo.retry.max_interval, 30s);
  EXPECT_EQ(tempo.retry.max_elapsed_time, 300s);
  EXPECT_EQ(config->processors, (std::vector<std::string>{"memory_limiter", "batch"}));
  EXPECT_FALSE(config->memory_limiter.defined);
  EXPECT_EQ(config->memory_limiter.LimitBytes(1ull << 30), 0u);
  EXPECT_FALSE(config->batch.defined);
  EXPECT_FALSE(config->tail_sampling.has_value());
  EXPECT_TRUE(config->peers.empty());
}

TEST(CollectorConfigTest, SeedFilesMergeAndTailSamplingIsKeptAndFlagged) {
  auto config = ParseCollectorConfig({{"collector-gateway.yaml", kSeedGateway}, {"tail-sampling.yaml", kSeedTailSampling}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->tail_sampling.has_value());
  EXPECT_EQ(config->tail_sampling->id, "tail_sampling");
  EXPECT_EQ(config->tail_sampling->file, "tail-sampling.yaml");
  EXPECT_FALSE(config->tail_sampling->in_pipeline);  // the seed's pipeline does not list it
  auto policies = sampling::ParseTailSampling(config->tail_sampling->node, config->tail_sampling->file, "processors.tail_sampling");
  ASSERT_TRUE(policies.ok()) << policies.status().ToString();
  EXPECT_EQ(policies->config().policies.size(), 3u);

  // Listed in a third file's pipeline (a later list replaces the earlier one), it runs.
  auto listed = ParseCollectorConfig({{"collector-gateway.yaml", kSeedGateway},
                                      {"tail-sampling.yaml", kSeedTailSampling},
                                      {"pipeline.yaml", "service:\n  pipelines:\n    traces:\n"
                                                        "      processors: [memory_limiter, tail_sampling, batch]\n"}});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_TRUE(listed->tail_sampling.has_value());
  EXPECT_TRUE(listed->tail_sampling->in_pipeline);
  EXPECT_EQ(listed->exporters.size(), 1u);  // the other pipeline keys came from the first file
}

TEST(CollectorConfigTest, FullGatewayFile) {
  auto config = Parse(R"(
receivers:
  otlp:
    protocols:
      grpc:
      http:
        endpoint: localhost:4318
        tls: { cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, min_version: "1.3" }
processors:
  memory_limiter: { check_interval: 1s, limit_mib: 1000, spike_limit_mib: 200 }
  batch: { timeout: 1s, send_batch_size: 1024 }
  tail_sampling:
    decision_wait: 10s
    policies: [{ name: all, type: always_sample }]
exporters:
  otlphttp/backend:
    endpoint: https://backend:4318/
    headers: { Authorization: Bearer abc }
    compression: none
    timeout: 10s
    retry_on_failure: { enabled: true, initial_interval: 1s, max_interval: 10s, max_elapsed_time: 0s }
    sending_queue: { enabled: true, num_consumers: 4, queue_size: 1000 }
    tls: { ca_file: /ca.pem, insecure_skip_verify: true }
  otlp:
    endpoint: https://other:4317
service:
  telemetry:
    logs: { level: DEBUG }
    metrics: { address: 0.0.0.0:8888 }
  pipelines:
    traces/gateway:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: [otlphttp/backend, otlp]
tracery:
  peers: [gw-1:4317, gw-2:4317]
  self: gw-2:4317
  wal_path: /data/wal
  quiet_period: 2s
  peer_exporter: { timeout: 2s }
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const auto& receiver = config->receivers.at(0);
  EXPECT_EQ(receiver.grpc.endpoint, "0.0.0.0:4317");
  EXPECT_EQ(receiver.http.endpoint, "127.0.0.1:4318");
  EXPECT_EQ(receiver.http.tls.cert_file, "/c.pem");
  EXPECT_EQ(receiver.http.tls.client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(receiver.http.tls.min_version, TlsVersion::kTls13);
  EXPECT_TRUE(config->memory_limiter.defined);
  EXPECT_EQ(config->memory_limiter.LimitBytes(0), 1000ull << 20);
  EXPECT_EQ(config->memory_limiter.SoftLimitBytes(0), 800ull << 20);
  EXPECT_EQ(config->batch.send_batch_size, 1024u);
  ASSERT_TRUE(config->tail_sampling && config->tail_sampling->in_pipeline);
  ASSERT_EQ(config->exporters.size(), 2u);
  const auto& http = config->exporters[0].options;
  EXPECT_EQ(http.protocol, exporter::Protocol::kHttp);
  EXPECT_EQ(http.endpoint, "https://backend:4318/");
  EXPECT_EQ(http.headers, (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer abc"}}));
  EXPECT_EQ(http.compression, exporter::Compression::kNone);
  EXPECT_EQ(http.timeout, 10s);
  EXPECT_EQ(http.retry.max_elapsed_time, 0s);
  EXPECT_TRUE(http.tls.insecure_skip_verify);
  EXPECT_EQ(config->exporters[1].options.name, "otlp");
  EXPECT_EQ(config->pipeline_id, "traces/gateway");
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->metrics_address, "0.0.0.0:8888");
  EXPECT_EQ(config->peers, (std::vector<std::string>{"gw-1:4317", "gw-2:4317"}));
  EXPECT_EQ(config->self, "gw-2:4317");
  EXPECT_EQ(config->wal_path, "/data/wal");
  EXPECT_EQ(config->quiet_period, std::optional<std::chrono::nanoseconds>(2s));
  EXPECT_EQ(config->peer_exporter.timeout, 2s);
  EXPECT_TRUE(config->peer_exporter.tls.insecure);  // the peer default stays
}

TEST(CollectorConfigTest, ProblemsAreReportedTogetherWithLines) {
  auto config = Parse(R"(receivers:
  otlp:
    protocols:
      grpc:
        endpont: 0.0.0.0:4317
exporters:
  kafka:
    brokers: [k:9092]
  otlp/tempo:
    endpoint: tempo:4317
    compression: zstd
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [attributes]
      exporters: [otlp/tempo, otlp/missing]
)");
  ASSERT_FALSE(config.ok());
  const std::string& message = config.status().message();
  EXPECT_TRUE(Contains(message, "gateway.yaml:5: unknown key `receivers.otlp.protocols.grpc.endpont`")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:7: `exporters.kafka`: unknown or unsupported exporter type `kafka`")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:11: bad value `zstd` for `exporters.otlp/tempo.compression`")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:16: `service.pipelines.traces.processors`: processor `attributes` is not defined")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:17: `service.pipelines.traces.exporters`: exporter `otlp/missing` is not defined under `exporters`"))
      << message;
  EXPECT_TRUE(Contains(message, "5 problems:")) << message;
}

TEST(CollectorConfigTest, RefusesWhatTheGatewayDoesNotDo) {
  auto config = Parse(R"(receivers:
  otlp: { protocols: { grpc: } }
  jaeger: { protocols: { grpc: } }
processors:
  filter: {}
exporters:
  loadbalancing:
    protocol: { otlp: {} }
  otlp: { endpoint: b:4317 }
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
    metrics: { receivers: [otlp], exporters: [otlp] }
)");
  ASSERT_FALSE(config.ok());
  const std::string& message = config.status().message();
  EXPECT_TRUE(Contains(message, "gateway.yaml:3: `receivers.jaeger`: unknown or unsupported receiver type `jaeger`")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:5: `processors.filter`: unknown or unsupported processor type")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:7: `exporters.loadbalancing`: the loadbalancing exporter is not needed")) << message;
  EXPECT_TRUE(Contains(message, "tracery.peers")) << message;
  EXPECT_TRUE(Contains(message, "gateway.yaml:13: `service.pipelines.metrics`: metrics pipelines are not supported")) << message;
}

TEST(CollectorConfigTest, TailSamplingProblemsJoinTheReportWithTheirFile) {
  auto config = ParseCollectorConfig({{"collector-gateway.yaml", kSeedGateway},
                                      {"sampling.yaml", "processors:\n  tail_sampling:\n    policies:\n"
                                                        "      - { name: x, type: bytes_limited }\n"},
                                      {"more.yaml", "tracery:\n  peers: [a:1]\n  self: b:1\n  unknown: 1\n"}});
  ASSERT_FALSE(config.ok());
  const std::string& message = config.status().message();
  EXPECT_TRUE(Contains(message, "sampling.yaml:4:")) << message;
  EXPECT_TRUE(Contains(message, "unknown policy type `bytes_limited`")) << message;
  EXPECT_TRUE(Contains(message, "more.yaml:4: unknown key `tracery.unknown`")) << message;
  EXPECT_TRUE(Contains(message, "`tracery.self` must be this gateway's entry in `tracery.peers`")) << message;
}

TEST(CollectorConfigTest, MissingPipelineAndBadYamlAreErrors) {
  auto no_pipeline = Parse("receivers:\n  otlp: { protocols: { http: } }\n");
  ASSERT_FALSE(no_pipeline.ok());
  EXPECT_TRUE(Contains(no_pipeline.status().message(), "`service.pipelines.traces` is required")) << no_pipeline.status().message();
  auto bad_yaml = Parse("receivers: [\n");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_TRUE(Contains(bad_yaml.status().message(), "gateway.yaml:")) << bad_yaml.status().message();
}

TEST(CollectorConfigTest, MemoryLimiterPercentages) {
  MemoryLimiterConfig limiter;
  limiter.limit_percentage = 80;
  limiter.spike_limit_percentage = 25;
  EXPECT_EQ(limiter.LimitBytes(1000), 800u);
  EXPECT_EQ(limiter.SoftLimitBytes(1000), 550u);
  EXPECT_GT(SystemMemoryBytes(), 0u);
}

TEST(CollectorConfigTest, LooksLikeCollectorConfig) {
  EXPECT_TRUE(LooksLikeCollectorConfig(YAML::Load(kSeedGateway)));
  EXPECT_FALSE(LooksLikeCollectorConfig(YAML::Load(kSeedTailSampling)));
  EXPECT_FALSE(LooksLikeCollectorConfig(YAML::Load("server:\n  http_listen_port: 3200\n")));
  EXPECT_FALSE(LooksLikeCollectorConfig(YAML::Load("[1, 2]")));
}

}  // namespace
}  // namespace tracery::server
