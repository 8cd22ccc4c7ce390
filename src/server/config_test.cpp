// Unit tests of the configuration schema: defaults, Tempo's key names, error messages that
// name the key and line, and the generated reference.
#include "server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace tracery::server {
namespace {

using namespace std::chrono_literals;

Config ParseOk(const std::string& yaml) {
  auto config = ParseConfig(yaml, "tracery.yaml");
  EXPECT_TRUE(config.ok()) << config.status().ToString() << "\n" << yaml;
  return config.ok() ? config.value() : Config();
}

// Parses `yaml`, expects a failure whose message holds every one of `words`.
void ExpectError(const std::string& yaml, const std::vector<std::string>& words) {
  Result<Config> config = Status::Ok();
  bool threw = false;
  std::string what;
  try {
    config = ParseConfig(yaml, "tracery.yaml");
  } catch (const std::exception& e) {
    threw = true;
    what = e.what();
  } catch (...) {
    threw = true;
  }
  ASSERT_FALSE(threw) << "ParseConfig threw (" << what << ") instead of returning an error for:\n" << yaml;
  ASSERT_FALSE(config.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  for (const auto& word : words)
    EXPECT_NE(config.status().message().find(word), std::string::npos)
        << "message: " << config.status().message() << "\nwanted: " << word;
}

void ExpectDefaults(const Config& c) {
  Config defaults;
  EXPECT_EQ(c.target, "all");
  EXPECT_FALSE(c.multitenancy_enabled);
  EXPECT_EQ(c.http_listen_address, "0.0.0.0");
  EXPECT_EQ(c.http_listen_port, 3200);
  EXPECT_TRUE(c.otlp_grpc_enabled);
  EXPECT_EQ(c.otlp_grpc_endpoint, "0.0.0.0:4317");
  EXPECT_TRUE(c.otlp_http_enabled);
  EXPECT_EQ(c.otlp_http_endpoint, "0.0.0.0:4318");
  EXPECT_EQ(c.trace_idle_period, 10s);
  EXPECT_EQ(c.max_block_duration, 30min);
  EXPECT_EQ(c.storage_backend, "local");
  EXPECT_EQ(c.local_path, defaults.local_path);
  EXPECT_EQ(c.wal_path, defaults.wal_path);
  EXPECT_EQ(c.wal_fsync, "batch");
  EXPECT_EQ(c.limits.rate_limit_bytes, 100'000'000u);
  EXPECT_EQ(c.limits.max_bytes_per_trace, 5'000'000u);
  EXPECT_EQ(c.block_row_group_spans, defaults.block_row_group_spans);
}

TEST(ConfigTest, EmptyConfigGivesDefaults) {
  ExpectDefaults(ParseOk(""));
  ExpectDefaults(ParseOk("# only a comment\n"));
  ExpectDefaults(ParseOk("---\n"));
}

const char* kTempoStyle = R"(# A Tempo-style configuration.
target: all
multitenancy_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 3300
  log_level: debug
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 0.0.0.0:14317
        http:
          endpoint: "localhost:14318"
  max_request_bytes: 8MiB
  max_inflight_bytes: 1GiB
ingester:
  trace_idle_period: 5s
  max_block_duration: 1m30s
  max_block_bytes: 50MB
  max_live_bytes: 1GiB
storage:
  trace:
    backend: local
    local:
      path: /var/tempo/blocks
    wal:
      path: /var/tempo/wal
      fsync: none
      segment_bytes: 64MiB
    block:
      zstd_level: 3
      row_group_spans: 512
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 20MB
      burst_size_bytes: 30000000
      max_traces_per_user: 10000
    global:
      max_bytes_per_trace: 2MB
)";

TEST(ConfigTest, TempoStyleExampleParsesIntoTheRightFields) {
  Config c = ParseOk(kTempoStyle);
  EXPECT_EQ(c.target, "all");
  EXPECT_TRUE(c.multitenancy_enabled);
  EXPECT_EQ(c.http_listen_address, "127.0.0.1");
  EXPECT_EQ(c.http_listen_port, 3300);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(c.otlp_grpc_enabled);
  EXPECT_EQ(c.otlp_grpc_endpoint, "0.0.0.0:14317");
  EXPECT_TRUE(c.otlp_http_enabled);
  EXPECT_EQ(c.otlp_http_endpoint, "localhost:14318");
  EXPECT_EQ(c.max_request_bytes, 8ull << 20);
  EXPECT_EQ(c.max_inflight_bytes, 1ull << 30);
  EXPECT_EQ(c.trace_idle_period, 5s);
  EXPECT_EQ(c.max_block_duration, 90s);
  EXPECT_EQ(c.max_block_bytes, 50'000'000u);
  EXPECT_EQ(c.max_live_bytes, 1ull << 30);
  EXPECT_EQ(c.storage_backend, "local");
  EXPECT_EQ(c.local_path, "/var/tempo/blocks");
  EXPECT_EQ(c.wal_path, "/var/tempo/wal");
  EXPECT_EQ(c.wal_fsync, "none");
  EXPECT_EQ(c.wal_segment_bytes, 64ull << 20);
  EXPECT_EQ(c.block_zstd_level, 3);
  EXPECT_EQ(c.block_row_group_spans, 512u);
  EXPECT_EQ(c.limits.rate_limit_bytes, 20'000'000u);
  EXPECT_EQ(c.limits.burst_size_bytes, 30'000'000u);
  EXPECT_EQ(c.limits.max_traces_per_user, 10000u);
  EXPECT_EQ(c.limits.max_bytes_per_trace, 2'000'000u);
}

TEST(ConfigTest, OnlyTheListedReceiversRun) {
  Config grpc_only = ParseOk(R"(distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 0.0.0.0:5317
)");
  EXPECT_TRUE(grpc_only.otlp_grpc_enabled);
  EXPECT_EQ(grpc_only.otlp_grpc_endpoint, "0.0.0.0:5317");
  EXPECT_FALSE(grpc_only.otlp_http_enabled);

  Config http_only = ParseOk(R"(distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint: 0.0.0.0:5318
)");
  EXPECT_FALSE(http_only.otlp_grpc_enabled);
  EXPECT_TRUE(http_only.otlp_http_enabled);
  EXPECT_EQ(http_only.otlp_http_endpoint, "0.0.0.0:5318");
}

TEST(ConfigTest, AnEmptyProtocolSectionEnablesItWithItsDefaultEndpoint) {
  Config c = ParseOk(R"(distributor:
  receivers:
    otlp:
      protocols:
        grpc:
)");
  EXPECT_TRUE(c.otlp_grpc_enabled);
  EXPECT_EQ(c.otlp_grpc_endpoint, "localhost:4317");  // Tempo 2.7+, as the Collector
  EXPECT_FALSE(c.otlp_http_enabled);

  Config both = ParseOk(R"(distributor:
  receivers:
    otlp:
      protocols:
        grpc:
        http:
)");
  EXPECT_TRUE(both.otlp_grpc_enabled);
  EXPECT_TRUE(both.otlp_http_enabled);
  EXPECT_EQ(both.otlp_http_endpoint, "localhost:4318");
}

TEST(ConfigTest, DistributorWithoutReceiversKeepsBoth) {
  Config c = ParseOk("distributor:\n  max_request_bytes: 1MB\n");
  EXPECT_TRUE(c.otlp_grpc_enabled);
  EXPECT_TRUE(c.otlp_http_enabled);
  EXPECT_EQ(c.otlp_grpc_endpoint, "0.0.0.0:4317");  // tracery's own default: no receivers listed
  EXPECT_EQ(c.otlp_http_endpoint, "0.0.0.0:4318");
  EXPECT_EQ(c.max_request_bytes, 1'000'000u);
}

TEST(ConfigTest, ZipkinReceiverAsTempoConfiguresIt) {
  EXPECT_FALSE(ParseOk("").zipkin_enabled);
  Config listed = ParseOk("distributor:\n  receivers:\n    zipkin:\n");
  EXPECT_TRUE(listed.zipkin_enabled);
  EXPECT_EQ(listed.zipkin_endpoint, "localhost:9411");
  EXPECT_FALSE(listed.zipkin_parse_string_tags);
  EXPECT_FALSE(listed.otlp_grpc_enabled);  // only the listed receivers run
  EXPECT_FALSE(listed.otlp_http_enabled);
  EXPECT_TRUE(ParseOk("distributor:\n  receivers:\n    zipkin: {}\n").zipkin_enabled);
  Config set = ParseOk(R"(distributor:
  receivers:
    otlp:
      protocols:
        grpc:
    zipkin:
      endpoint: 0.0.0.0:9412
      parse_string_tags: true
)");
  EXPECT_TRUE(set.zipkin_enabled);
  EXPECT_EQ(set.zipkin_endpoint, "0.0.0.0:9412");
  EXPECT_TRUE(set.zipkin_parse_string_tags);
  EXPECT_TRUE(set.otlp_grpc_enabled);
  EXPECT_TRUE(ParseOk("distributor:\n  receivers:\n    zipkin:\n      parse_string_tags: false\n").zipkin_enabled);
  ExpectError("distributor:\n  receivers:\n    zipkin:\n      endpoint: nowhere\n",
              {"tracery.yaml:4:", "distributor.receivers.zipkin.endpoint"});
  ExpectError("distributor:\n  receivers:\n    zipkin:\n      parse_string_tags: maybe\n",
              {"tracery.yaml:4:", "distributor.receivers.zipkin.parse_string_tags"});
  ExpectError("distributor:\n  receivers:\n    zipkin:\n      cors: {}\n", {"distributor.receivers.zipkin.cors"});
  ExpectError("distributor:\n  receivers:\n    opencensus:\n", {"distributor.receivers.opencensus"});
}

TEST(ConfigTest, JaegerProtocolsAsTempoConfiguresThem) {
  Config none = ParseOk("");
  EXPECT_FALSE(none.jaeger_grpc_enabled || none.jaeger_thrift_http_enabled || none.jaeger_thrift_compact_enabled ||
               none.jaeger_thrift_binary_enabled);
  Config listed = ParseOk(R"(distributor:
  receivers:
    jaeger:
      protocols:
        grpc:
        thrift_http: {}
        thrift_compact:
          endpoint: 0.0.0.0:7831
)");
  EXPECT_TRUE(listed.jaeger_grpc_enabled);
  EXPECT_EQ(listed.jaeger_grpc_endpoint, "localhost:14250");
  EXPECT_TRUE(listed.jaeger_thrift_http_enabled);
  EXPECT_EQ(listed.jaeger_thrift_http_endpoint, "localhost:14268");
  EXPECT_TRUE(listed.jaeger_thrift_compact_enabled);
  EXPECT_EQ(listed.jaeger_thrift_compact_endpoint, "0.0.0.0:7831");
  EXPECT_FALSE(listed.jaeger_thrift_binary_enabled);
  EXPECT_EQ(listed.jaeger_thrift_binary_endpoint, "localhost:6832");
  EXPECT_FALSE(listed.otlp_grpc_enabled);  // only the listed receivers run
  ExpectError("distributor:\n  receivers:\n    jaeger:\n      protocols:\n        thrift_udp:\n",
              {"tracery.yaml:5:", "distributor.receivers.jaeger.protocols.thrift_udp"});
  ExpectError("distributor:\n  receivers:\n    jaeger:\n      protocols:\n        grpc:\n          endpoint: nowhere\n",
              {"tracery.yaml:6:", "distributor.receivers.jaeger.protocols.grpc.endpoint"});
}

TEST(ConfigTest, UnknownKeyNamesTheDottedKeyAndLine) {
  ExpectError("server:\n  http_listen_port: 3200\n  http_listen_prot: 3300\n",
              {"tracery.yaml:3:", "server.http_listen_prot"});
  ExpectError("multitenancy_enabled: true\nbogus: 1\n", {"tracery.yaml:2:", "bogus"});
  ExpectError(R"(storage:
  trace:
    backend: local
    local:
      path: /tmp/x
      pth: /tmp/y
)",
              {"tracery.yaml:6:", "storage.trace.local.pth"});
  ExpectError("server:\n  nope:\n", {"tracery.yaml:2:", "server.nope"});
  ExpectError("\n\ningester:\n  trace_idle_period: 5s\n  flush_interval: 1s\n",
              {"tracery.yaml:5:", "ingester.flush_interval"});
}

TEST(ConfigTest, BadValuesNameTheKeyAndLine) {
  ExpectError("server:\n  http_listen_port: abc\n", {"tracery.yaml:2:", "server.http_listen_port", "abc"});
  ExpectError("server:\n  http_listen_port: 70000\n", {"tracery.yaml:2:", "server.http_listen_port"});
  ExpectError("server:\n  http_listen_port: 0\n", {"tracery.yaml:2:", "server.http_listen_port"});
  ExpectError("server:\n  http_listen_port: -1\n", {"tracery.yaml:2:", "server.http_listen_port"});
  ExpectError("ingester:\n  trace_idle_period: forever\n", {"tracery.yaml:2:", "ingester.trace_idle_period", "forever"});
  ExpectError("ingester:\n  trace_idle_period: 0s\n", {"tracery.yaml:2:", "ingester.trace_idle_period"});
  ExpectError("storage:\n  trace:\n    backend: s4\n", {"tracery.yaml:3:", "storage.trace.backend", "s4"});
  ExpectError("storage:\n  trace:\n    wal:\n      fsync: always\n", {"tracery.yaml:4:", "storage.trace.wal.fsync"});
  ExpectError("multitenancy_enabled: maybe\n", {"tracery.yaml:1:", "multitenancy_enabled"});
  ExpectError("target: querier\n", {"tracery.yaml:1:", "target"});
  ExpectError("server:\n  log_level: verbose\n", {"tracery.yaml:2:", "server.log_level"});
  ExpectError("overrides:\n  defaults:\n    global:\n      max_bytes_per_trace: 2XB\n",
              {"tracery.yaml:4:", "overrides.defaults.global.max_bytes_per_trace"});
  ExpectError(R"(distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: no-port-here
)",
              {"tracery.yaml:6:", "distributor.receivers.otlp.protocols.grpc.endpoint"});
  ExpectError("storage:\n  trace:\n    block:\n      zstd_level: 30\n", {"tracery.yaml:4:", "storage.trace.block.zstd_level"});
  ExpectError("server:\n  http_listen_port: [1, 2]\n", {"tracery.yaml:2:", "server.http_listen_port"});
}

TEST(ConfigTest, InvalidYamlNamesTheLine) {
  ExpectError("server:\n  http_listen_port: 3200\n  log_level: \"unterminated\n", {"tracery.yaml:3:"});
  ExpectError("server:\n  http_listen_port: 3200\n bad_indent: 1\n", {"tracery.yaml:3:"});
  ExpectError("a: [1, 2\n", {"tracery.yaml:"});
}

TEST(ConfigTest, NonMappingDocumentsAreRefused) {
  ExpectError("- a\n- b\n", {"tracery.yaml"});
  ExpectError("just a string\n", {"tracery.yaml"});
}

TEST(ConfigTest, SectionsThatAreNotMappingsAreErrorsNotExceptions) {
  ExpectError("distributor: 5\n", {"tracery.yaml:1:", "distributor"});
  ExpectError("distributor:\n  receivers: 5\n", {"tracery.yaml:2:", "distributor.receivers"});
  ExpectError("server: [1]\n", {"tracery.yaml:1:", "server"});
}

TEST(ConfigTest, ReferenceListsEveryKey) {
  std::string reference = ConfigReference();
  for (const char* key : {"target", "multitenancy_enabled", "server.log_level", "server.http_listen_address",
                          "server.http_listen_port", "distributor.receivers.otlp.protocols.grpc.endpoint",
                          "distributor.receivers.otlp.protocols.http.endpoint", "distributor.max_request_bytes",
                          "distributor.max_inflight_bytes", "ingester.trace_idle_period", "ingester.max_block_duration",
                          "ingester.max_block_bytes", "ingester.max_live_bytes", "storage.trace.backend", "storage.trace.local.path",
                          "storage.trace.wal.path", "storage.trace.wal.fsync", "storage.trace.wal.segment_bytes",
                          "storage.trace.block.zstd_level", "storage.trace.block.row_group_spans",
                          "overrides.defaults.ingestion.rate_limit_bytes", "overrides.defaults.ingestion.burst_size_bytes",
                          "overrides.defaults.ingestion.max_traces_per_user",
                          "overrides.defaults.global.max_bytes_per_trace"}) {
    EXPECT_NE(reference.find(std::string("| `") + key + "` |"), std::string::npos) << key;
  }
  // And every key the reference lists is one the parser knows (a bogus value may be refused,
  // but never as an unknown key).
  size_t rows = 0;
  for (size_t at = reference.find("\n| `"); at != std::string::npos; at = reference.find("\n| `", at + 1)) {
    size_t end = reference.find('`', at + 4);
    ASSERT_NE(end, std::string::npos);
    std::string key = reference.substr(at + 4, end - at - 4);
    rows++;
    std::string yaml, indent;
    size_t start = 0;
    for (size_t dot = key.find('.'); dot != std::string::npos; start = dot + 1, dot = key.find('.', start)) {
      yaml += indent + key.substr(start, dot - start) + ":\n";
      indent += "  ";
    }
    yaml += indent + key.substr(start) + ": \"not-a-valid-value\"\n";
    auto parsed = ParseConfig(yaml, "tracery.yaml");
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().message().find("unknown key"), std::string::npos) << parsed.status().message();
    }
  }
  EXPECT_GE(rows, 24u) << reference;
  EXPECT_NE(reference.find("`3200`"), std::string::npos);
  EXPECT_NE(reference.find("`10s`"), std::string::npos);
  EXPECT_NE(reference.find("`0.0.0.0:4317`"), std::string::npos);
}

TEST(ConfigTest, LoadConfigFile) {
  char pattern[] = "/tmp/tracery-config-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  {
    std::ofstream out(dir + "/tracery.yaml");
    out << "server:\n  http_listen_port: 4000\n  bogus: 1\n";
  }
  auto bad = LoadConfigFile(dir + "/tracery.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir + "/tracery.yaml:3:"), std::string::npos) << bad.status().message();
  {
    std::ofstream out(dir + "/tracery.yaml");
    out << "server:\n  http_listen_port: 4000\n";
  }
  auto good = LoadConfigFile(dir + "/tracery.yaml");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->http_listen_port, 4000);
  EXPECT_FALSE(LoadConfigFile(dir + "/missing.yaml").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tracery::server

namespace tracery::server {
namespace {

const char* kTempo2SingleBinary = R"(# Tempo 2.x docker-compose (single binary), as Tempo's examples write it
stream_over_http_enabled: true
server:
  http_listen_port: 3200
  log_level: info
  grpc_listen_port: 9095
query_frontend:
  search:
    duration_slo: 5s
    throughput_bytes_slo: 1.073741824e+09
  trace_by_id:
    duration_slo: 5s
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: "0.0.0.0:4317"
        http:
ingester:
  max_block_duration: 5m
  trace_idle_period: 10s
  lifecycler:
    ring:
      replication_factor: 1
compactor:
  compaction:
    block_retention: 1h
memberlist:
  join_members: [tempo:7946]
metrics_generator:
  registry:
    external_labels:
      source: tempo
  storage:
    path: /var/tempo/generator/wal
    remote_write:
      - url: http://prometheus:9090/api/v1/write
        send_exemplars: true
        basic_auth: {username: u, password: p}
  traces_storage:
    path: /var/tempo/generator/traces
storage:
  trace:
    backend: local
    wal:
      path: /var/tempo/wal
    local:
      path: /var/tempo/blocks
    pool:
      max_workers: 100
      queue_depth: 10000
usage_report:
  reporting_enabled: false
overrides:
  defaults:
    metrics_generator:
      processors: [service-graphs, span-metrics]
)";

TEST(TempoConfigTest, Tempo2SingleBinaryFileStartsWithItsPlumbingReported) {
  Config c = ParseOk(kTempo2SingleBinary);
  EXPECT_EQ(c.max_block_duration, 5min);
  EXPECT_EQ(c.block_retention, 1h);
  EXPECT_TRUE(c.block_retention_set);
  EXPECT_EQ(c.wal_path, "/var/tempo/wal");
  EXPECT_TRUE(c.generator.span_metrics && c.generator.service_graphs);
  ASSERT_EQ(c.generator.remote_write.size(), 1u);
  EXPECT_EQ(c.generator.remote_write[0].headers["Authorization"], "Basic dTpw");
  EXPECT_EQ(c.grpc_listen_port, 9095);  // served: Tempo's streaming query API
  for (const char* key : {"query_frontend.search.duration_slo", "query_frontend.trace_by_id",
                          "ingester.lifecycler", "memberlist", "metrics_generator.storage.path",
                          "metrics_generator.traces_storage", "storage.trace.pool", "usage_report"})
    EXPECT_NE(std::find(c.not_applicable.begin(), c.not_applicable.end(), key), c.not_applicable.end()) << key;
}

TEST(TempoConfigTest, Tempo3LayoutMapsLiveStoreAndBackendWorker) {
  Config c = ParseOk(R"(target: all
live_store:
  max_trace_idle: 3s
  max_block_duration: 2m
  max_block_bytes: 1_000_000
  wal:
    path: /tmp/ls/wal
  ring:
    replication_factor: 1
backend_worker:
  compaction:
    block_retention: 7d
  ring:
    kvstore: {store: inmemory}
backend_scheduler:
  provider:
    compaction:
      compaction:
        block_retention: 2w
ingest:
  enabled: false
  kafka: {address: localhost:9092, topic: tempo-ingest}
block_builder:
  consume_cycle_duration: 30s
)");
  EXPECT_EQ(c.trace_idle_period, 3s);
  EXPECT_EQ(c.max_block_duration, 2min);
  EXPECT_EQ(c.max_block_bytes, 1'000'000u);
  EXPECT_EQ(c.wal_path, "/tmp/ls/wal");
  EXPECT_EQ(c.block_retention, std::chrono::hours(24 * 14));  // the later key wins: 2w
  for (const char* key : {"live_store.ring", "backend_worker.ring", "ingest", "block_builder"})
    EXPECT_NE(std::find(c.not_applicable.begin(), c.not_applicable.end(), key), c.not_applicable.end()) << key;
}

TEST(TempoConfigTest, CompactionKeysAreHonouredInBothLayouts) {
  Config c = ParseOk(R"(compactor:
  disabled: true
  compaction:
    compaction_window: 2h
    max_compaction_objects: 1000
    max_block_bytes: 1GiB
    compaction_cycle: 10s
)");
  EXPECT_TRUE(c.compactor_disabled);
  EXPECT_EQ(c.compaction_window, std::chrono::hours(2));
  EXPECT_EQ(c.max_compaction_objects, 1000u);
  EXPECT_EQ(c.compaction_max_block_bytes, 1ull << 30);
  EXPECT_EQ(c.compaction_cycle, std::chrono::seconds(10));
  EXPECT_TRUE(c.not_applicable.empty());
  Config v3 = ParseOk(R"(backend_worker:
  compaction:
    compaction_window: 30m
    max_block_bytes: 1MB
backend_scheduler:
  provider:
    compaction:
      compaction:
        max_compaction_objects: 5
        compaction_cycle: 1m
)");
  EXPECT_FALSE(v3.compactor_disabled);
  EXPECT_EQ(v3.compaction_window, std::chrono::minutes(30));
  EXPECT_EQ(v3.compaction_max_block_bytes, 1'000'000u);
  EXPECT_EQ(v3.max_compaction_objects, 5u);
  EXPECT_EQ(v3.compaction_cycle, std::chrono::minutes(1));
}

TEST(ConfigTest, CompactionMemoryBoundIsASpanCountOfAtLeastTwoRowGroups) {
  EXPECT_EQ(ParseOk("").compaction_max_spans_in_memory, 1'000'000u);
  EXPECT_EQ(ParseOk("compactor:\n  compaction:\n    max_spans_in_memory: 300000\n").compaction_max_spans_in_memory,
            300'000u);
  ExpectError("compactor:\n  compaction:\n    max_spans_in_memory: 100\n",
              {"compactor.compaction.max_spans_in_memory"});
  ExpectError("compactor:\n  compaction:\n    max_spans_in_memory: lots\n", {"compactor.compaction.max_spans_in_memory"});
}

TEST(TempoConfigTest, ValuesAsGoYamlAndDskitReadThem) {
  Config c = ParseOk(R"(server:
  http_listen_address: ""
ingester:
  max_block_bytes: 1_000_000
  max_block_duration: 1h30m
  trace_idle_period: 500ms
compactor:
  compaction:
    block_retention: 7d
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 0x100000
      max_traces_per_user: 10_000
query_frontend:
  search:
    query_timeout: 1.5h
)");
  EXPECT_EQ(c.http_listen_address, "0.0.0.0");
  EXPECT_EQ(c.max_block_bytes, 1'000'000u);
  EXPECT_EQ(c.max_block_duration, 90min);
  EXPECT_EQ(c.trace_idle_period, 500ms);
  EXPECT_EQ(c.block_retention, std::chrono::hours(24 * 7));
  EXPECT_EQ(c.limits.rate_limit_bytes, 1u << 20);
  EXPECT_EQ(c.limits.max_traces_per_user, 10'000u);
  EXPECT_EQ(c.search_timeout, 90min);
  ExpectError("ingester:\n  max_block_bytes: _1\n", {"tracery.yaml:2:", "ingester.max_block_bytes"});
}

TEST(TempoConfigTest, EveryProblemOfAFileIsReportedInOneRun) {
  auto config = ParseConfig(R"(server:
  http_listen_prot: 3200
ingester:
  trace_idle_period: forever
storage:
  trace:
    backend: s3
memberlist:
  join_members: [a]
)", "tempo.yaml");
  ASSERT_FALSE(config.ok());
  const std::string& m = config.status().message();
  EXPECT_NE(m.find("3 problems"), std::string::npos) << m;
  EXPECT_NE(m.find("tempo.yaml:2: unknown key `server.http_listen_prot`"), std::string::npos) << m;
  EXPECT_NE(m.find("tempo.yaml:4:"), std::string::npos) << m;
  EXPECT_NE(m.find("object storage is not served yet"), std::string::npos) << m;
  EXPECT_EQ(m.find("memberlist"), std::string::npos) << m;
}

TEST(TempoConfigTest, RefusedWithAReasonNeverDropped) {
  ExpectError("storage:\n  trace:\n    backend: gcs\n", {"tracery.yaml:3:", "object storage is not served yet", "use local"});
  ExpectError("distributor:\n  receivers:\n    otlp:\n      protocols:\n        grpc:\n          auth:\n            authenticator: x\n",
              {"tracery.yaml:6:", "unauthenticated"});
  ExpectError("metrics_generator:\n  storage:\n    remote_write:\n      - url: https://p/api/v1/write\n        tls_config: {ca_file: x}\n",
              {"tls_config", "not supported"});
  ExpectError("distributor:\n  forwarders: [a]\n", {"tracery.yaml:2:", "distributor.forwarders", "not forwarded"});
  EXPECT_TRUE(ParseOk("distributor:\n  forwarders: []\n").not_applicable.empty());
  EXPECT_TRUE(ParseOk("auth_enabled: true\n").multitenancy_enabled);
}

TEST(TempoConfigTest, FlagsInTempoSpellingOverrideTheFile) {
  char pattern[] = "/tmp/tracery-flags-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  std::ofstream(dir + "/tempo.yaml") << "server:\n  http_listen_port: ${TRACERY_TEST_PORT:-3999}\n"
                                        "storage:\n  trace:\n    local:\n      path: ${TRACERY_TEST_UNSET:/x/blocks}\n";
  ConfigSources sources{dir + "/tempo.yaml", true,
                        {{"storage.trace.wal.path", "/x/wal"}, {"log.level", "debug"}, {"mem-ballast-size-mbs", "1024"},
                         {"multitenancy.enabled", "true"}, {"memberlist.join", "a"}}};
  auto c = LoadConfig(sources);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->http_listen_port, 3999);
  EXPECT_EQ(c->local_path, "/x/blocks");
  EXPECT_EQ(c->wal_path, "/x/wal");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_TRUE(c->multitenancy_enabled);
  EXPECT_NE(std::find(c->not_applicable.begin(), c->not_applicable.end(), "-mem-ballast-size-mbs"), c->not_applicable.end());
  sources.key_flags = {{"server.http-listen-port", "4001"}};
  EXPECT_EQ(LoadConfig(sources)->http_listen_port, 4001);
  sources.key_flags = {{"server.http-listen-prot", "4001"}};
  EXPECT_FALSE(LoadConfig(sources).ok());
  sources.expand_env = false;  // ${...} left as is: not a port
  sources.key_flags = {};
  EXPECT_FALSE(LoadConfig(sources).ok());
  std::filesystem::remove_all(dir);
}

TEST(TempoConfigTest, RuntimeOverridesInBothLayouts) {
  TenantLimits defaults;
  defaults.rate_limit_bytes = 1000;
  auto o = ParseOverrides(R"(overrides:
  "*":
    ingestion:
      burst_size_bytes: 5000
  team-a:
    ingestion:
      rate_limit_bytes: 2_000
      max_traces_per_user: 7
    global:
      max_bytes_per_trace: 1MB
    read:
      max_bytes_per_tag_values_query: 10
    compaction:
      block_retention: 30d
    metrics_generator:
      processors: [service-graphs]
      max_active_series: 500
  team-b:
    ingestion_rate_limit_bytes: 3000
    max_bytes_per_trace: 9
    block_retention: 36h
    metrics_generator_processors: []
)", "overrides.yaml", defaults);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->defaults.burst_size_bytes, 5000u);
  EXPECT_EQ(o->defaults.rate_limit_bytes, 1000u);
  EXPECT_EQ(o->tenants["team-a"].rate_limit_bytes, 2000u);
  EXPECT_EQ(o->tenants["team-a"].burst_size_bytes, 5000u);
  EXPECT_EQ(o->tenants["team-a"].max_traces_per_user, 7u);
  EXPECT_EQ(o->tenants["team-a"].max_bytes_per_trace, 1'000'000u);
  EXPECT_EQ(o->tenants["team-b"].rate_limit_bytes, 3000u);
  EXPECT_EQ(o->tenants["team-b"].max_bytes_per_trace, 9u);
  EXPECT_EQ(o->tenants["team-a"].block_retention, std::chrono::hours(24 * 30));
  EXPECT_EQ(o->tenants["team-b"].block_retention, std::chrono::hours(36));
  EXPECT_EQ(o->defaults.block_retention.count(), 0) << "0: the main file's retention";
  EXPECT_TRUE(o->tenants["team-a"].generator_processors_set);
  EXPECT_TRUE(o->tenants["team-a"].generator_service_graphs);
  EXPECT_FALSE(o->tenants["team-a"].generator_span_metrics);
  EXPECT_EQ(o->tenants["team-a"].generator_max_active_series, 500u);
  EXPECT_TRUE(o->tenants["team-b"].generator_processors_set) << "an empty list turns the generator off";
  EXPECT_FALSE(o->tenants["team-b"].generator_span_metrics || o->tenants["team-b"].generator_service_graphs);
  EXPECT_FALSE(o->defaults.generator_processors_set);
  EXPECT_TRUE(ParseOverrides("overrides:\n  a:\n    metrics_generator:\n      generate_native_histograms: classic\n",
                             "o.yaml", defaults).ok())
      << "a setting the main file takes at its default is taken here too";
  auto refused = ParseOverrides("overrides:\n  a:\n    metrics_generator:\n      processors: [spam]\n      "
                                "collection_interval: 5s\n", "o.yaml", defaults);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("o.yaml:4:"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("o.yaml:5:"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(ParseOverrides("overrides:\n  a:\n    compaction:\n      block_retention: soon\n", "o.yaml", defaults).ok());
  auto bad = ParseOverrides("overrides:\n  a:\n    ingestion:\n      rate_limit_byts: 1\n  b:\n    max_traces_per_user: x\n",
                            "overrides.yaml", defaults);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("overrides.yaml:4:"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("overrides.yaml:6:"), std::string::npos) << bad.status().message();

  TenantLimitsTable table(defaults, o->tenants);
  EXPECT_EQ(table.For("team-a").rate_limit_bytes, 2000u);
  EXPECT_EQ(table.For("other").rate_limit_bytes, 1000u);
}

TEST(TempoConfigTest, ExpandEnvForms) {
  ::setenv("TRACERY_X", "x1", 1);
  ::unsetenv("TRACERY_NONE");
  EXPECT_EQ(ExpandEnv("a ${TRACERY_X} ${TRACERY_NONE} ${TRACERY_NONE:-d1} ${TRACERY_NONE:d2} $$ $HOME"),
            "a x1  d1 d2 $ $HOME");
}

}  // namespace
}  // namespace tracery::server

namespace tracery::server {
namespace {

// Tempo's own example files list the local-blocks processor (its source of TraceQL metrics)
// and search metadata SLOs: both start tracery.
TEST(TempoConfigTest, LocalBlocksProcessorAndMetadataSloAreAccepted) {
  Config c = ParseOk(R"(query_frontend:
  search:
    metadata_slo:
      duration_slo: 5s
      throughput_bytes_slo: 1.073741824e+09
overrides:
  defaults:
    metrics_generator:
      processors: [service-graphs, span-metrics, local-blocks]
)");
  EXPECT_TRUE(c.generator.span_metrics);
  EXPECT_TRUE(c.generator.service_graphs);
  EXPECT_NE(std::find(c.not_applicable.begin(), c.not_applicable.end(), "query_frontend.search.metadata_slo"),
            c.not_applicable.end());
}

}  // namespace
}  // namespace tracery::server

namespace tracery::server {
namespace {

// Keys of older and newer Tempo layouts found in Tempo's own example files.
TEST(TempoConfigTest, OlderAndNewerTempoSwitchesAreAccepted) {
  Config c = ParseOk(R"(search_enabled: true
metrics_generator_enabled: true
partition_ring_live_store: true
querier:
  query_live_store: true
query_frontend:
  mcp_server:
    enabled: true
overrides:
  defaults:
    metrics_generator:
      generate_native_histograms: both
storage:
  trace:
    block:
      index_downsample_bytes: 1000
)");
  for (const char* key : {"search_enabled", "metrics_generator_enabled", "partition_ring_live_store",
                          "querier.query_live_store", "storage.trace.block.index_downsample_bytes",
                          "query_frontend.mcp_server", "overrides.defaults.metrics_generator.generate_native_histograms"})
    EXPECT_NE(std::find(c.not_applicable.begin(), c.not_applicable.end(), key), c.not_applicable.end()) << key;
}

}  // namespace
}  // namespace tracery::server
